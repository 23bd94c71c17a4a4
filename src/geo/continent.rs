//! The continent of a country, for databases that give only the country (DB-IP's flat layout,
//! CSVs without a continent column).
//!
//! The assignment is the GeoNames country table's `Continent` column, which MaxMind's GeoIP2 and
//! GeoLite2 records follow: Russia and Cyprus are in Europe; Turkey, the Caucasus (Armenia,
//! Azerbaijan, Georgia) and Kazakhstan are in Asia; Egypt is in Africa; Panama and Trinidad and
//! Tobago are in North America; Timor-Leste and the US Minor Outlying Islands are in Oceania; and
//! Antarctica with the uninhabited southern islands (`AQ`, `BV`, `GS`, `HM`, `TF`) is its own
//! continent, `AN`.
//!
//! Besides every assigned ISO 3166-1 alpha-2 code, the table knows the codes geolocation
//! databases use in practice: `XK` (Kosovo, Europe) and MaxMind's legacy `EU` (Europe, no
//! single country) and `AP` (Asia/Pacific, no single country).

/// Africa.
const AF: [u8; 2] = *b"AF";
/// Antarctica.
const AN: [u8; 2] = *b"AN";
/// Asia.
const AS: [u8; 2] = *b"AS";
/// Europe.
const EU: [u8; 2] = *b"EU";
/// North America (with Central America and the Caribbean).
const NA: [u8; 2] = *b"NA";
/// Oceania.
const OC: [u8; 2] = *b"OC";
/// South America.
const SA: [u8; 2] = *b"SA";

/// Country code → continent code, sorted by country code (the tests check it).
static TABLE: [([u8; 2], [u8; 2]); 252] = [
    (*b"AD", EU),
    (*b"AE", AS),
    (*b"AF", AS),
    (*b"AG", NA),
    (*b"AI", NA),
    (*b"AL", EU),
    (*b"AM", AS),
    (*b"AO", AF),
    (*b"AP", AS), // MaxMind: Asia/Pacific region
    (*b"AQ", AN),
    (*b"AR", SA),
    (*b"AS", OC),
    (*b"AT", EU),
    (*b"AU", OC),
    (*b"AW", NA),
    (*b"AX", EU),
    (*b"AZ", AS),
    (*b"BA", EU),
    (*b"BB", NA),
    (*b"BD", AS),
    (*b"BE", EU),
    (*b"BF", AF),
    (*b"BG", EU),
    (*b"BH", AS),
    (*b"BI", AF),
    (*b"BJ", AF),
    (*b"BL", NA),
    (*b"BM", NA),
    (*b"BN", AS),
    (*b"BO", SA),
    (*b"BQ", NA),
    (*b"BR", SA),
    (*b"BS", NA),
    (*b"BT", AS),
    (*b"BV", AN),
    (*b"BW", AF),
    (*b"BY", EU),
    (*b"BZ", NA),
    (*b"CA", NA),
    (*b"CC", AS),
    (*b"CD", AF),
    (*b"CF", AF),
    (*b"CG", AF),
    (*b"CH", EU),
    (*b"CI", AF),
    (*b"CK", OC),
    (*b"CL", SA),
    (*b"CM", AF),
    (*b"CN", AS),
    (*b"CO", SA),
    (*b"CR", NA),
    (*b"CU", NA),
    (*b"CV", AF),
    (*b"CW", NA),
    (*b"CX", OC),
    (*b"CY", EU),
    (*b"CZ", EU),
    (*b"DE", EU),
    (*b"DJ", AF),
    (*b"DK", EU),
    (*b"DM", NA),
    (*b"DO", NA),
    (*b"DZ", AF),
    (*b"EC", SA),
    (*b"EE", EU),
    (*b"EG", AF),
    (*b"EH", AF),
    (*b"ER", AF),
    (*b"ES", EU),
    (*b"ET", AF),
    (*b"EU", EU), // MaxMind: Europe, no single country
    (*b"FI", EU),
    (*b"FJ", OC),
    (*b"FK", SA),
    (*b"FM", OC),
    (*b"FO", EU),
    (*b"FR", EU),
    (*b"GA", AF),
    (*b"GB", EU),
    (*b"GD", NA),
    (*b"GE", AS),
    (*b"GF", SA),
    (*b"GG", EU),
    (*b"GH", AF),
    (*b"GI", EU),
    (*b"GL", NA),
    (*b"GM", AF),
    (*b"GN", AF),
    (*b"GP", NA),
    (*b"GQ", AF),
    (*b"GR", EU),
    (*b"GS", AN),
    (*b"GT", NA),
    (*b"GU", OC),
    (*b"GW", AF),
    (*b"GY", SA),
    (*b"HK", AS),
    (*b"HM", AN),
    (*b"HN", NA),
    (*b"HR", EU),
    (*b"HT", NA),
    (*b"HU", EU),
    (*b"ID", AS),
    (*b"IE", EU),
    (*b"IL", AS),
    (*b"IM", EU),
    (*b"IN", AS),
    (*b"IO", AS),
    (*b"IQ", AS),
    (*b"IR", AS),
    (*b"IS", EU),
    (*b"IT", EU),
    (*b"JE", EU),
    (*b"JM", NA),
    (*b"JO", AS),
    (*b"JP", AS),
    (*b"KE", AF),
    (*b"KG", AS),
    (*b"KH", AS),
    (*b"KI", OC),
    (*b"KM", AF),
    (*b"KN", NA),
    (*b"KP", AS),
    (*b"KR", AS),
    (*b"KW", AS),
    (*b"KY", NA),
    (*b"KZ", AS),
    (*b"LA", AS),
    (*b"LB", AS),
    (*b"LC", NA),
    (*b"LI", EU),
    (*b"LK", AS),
    (*b"LR", AF),
    (*b"LS", AF),
    (*b"LT", EU),
    (*b"LU", EU),
    (*b"LV", EU),
    (*b"LY", AF),
    (*b"MA", AF),
    (*b"MC", EU),
    (*b"MD", EU),
    (*b"ME", EU),
    (*b"MF", NA),
    (*b"MG", AF),
    (*b"MH", OC),
    (*b"MK", EU),
    (*b"ML", AF),
    (*b"MM", AS),
    (*b"MN", AS),
    (*b"MO", AS),
    (*b"MP", OC),
    (*b"MQ", NA),
    (*b"MR", AF),
    (*b"MS", NA),
    (*b"MT", EU),
    (*b"MU", AF),
    (*b"MV", AS),
    (*b"MW", AF),
    (*b"MX", NA),
    (*b"MY", AS),
    (*b"MZ", AF),
    (*b"NA", AF),
    (*b"NC", OC),
    (*b"NE", AF),
    (*b"NF", OC),
    (*b"NG", AF),
    (*b"NI", NA),
    (*b"NL", EU),
    (*b"NO", EU),
    (*b"NP", AS),
    (*b"NR", OC),
    (*b"NU", OC),
    (*b"NZ", OC),
    (*b"OM", AS),
    (*b"PA", NA),
    (*b"PE", SA),
    (*b"PF", OC),
    (*b"PG", OC),
    (*b"PH", AS),
    (*b"PK", AS),
    (*b"PL", EU),
    (*b"PM", NA),
    (*b"PN", OC),
    (*b"PR", NA),
    (*b"PS", AS),
    (*b"PT", EU),
    (*b"PW", OC),
    (*b"PY", SA),
    (*b"QA", AS),
    (*b"RE", AF),
    (*b"RO", EU),
    (*b"RS", EU),
    (*b"RU", EU),
    (*b"RW", AF),
    (*b"SA", AS),
    (*b"SB", OC),
    (*b"SC", AF),
    (*b"SD", AF),
    (*b"SE", EU),
    (*b"SG", AS),
    (*b"SH", AF),
    (*b"SI", EU),
    (*b"SJ", EU),
    (*b"SK", EU),
    (*b"SL", AF),
    (*b"SM", EU),
    (*b"SN", AF),
    (*b"SO", AF),
    (*b"SR", SA),
    (*b"SS", AF),
    (*b"ST", AF),
    (*b"SV", NA),
    (*b"SX", NA),
    (*b"SY", AS),
    (*b"SZ", AF),
    (*b"TC", NA),
    (*b"TD", AF),
    (*b"TF", AN),
    (*b"TG", AF),
    (*b"TH", AS),
    (*b"TJ", AS),
    (*b"TK", OC),
    (*b"TL", OC),
    (*b"TM", AS),
    (*b"TN", AF),
    (*b"TO", OC),
    (*b"TR", AS),
    (*b"TT", NA),
    (*b"TV", OC),
    (*b"TW", AS),
    (*b"TZ", AF),
    (*b"UA", EU),
    (*b"UG", AF),
    (*b"UM", OC),
    (*b"US", NA),
    (*b"UY", SA),
    (*b"UZ", AS),
    (*b"VA", EU),
    (*b"VC", NA),
    (*b"VE", SA),
    (*b"VG", NA),
    (*b"VI", NA),
    (*b"VN", AS),
    (*b"VU", OC),
    (*b"WF", OC),
    (*b"WS", OC),
    (*b"XK", EU), // Kosovo: user-assigned, used by GeoNames, MaxMind and DB-IP
    (*b"YE", AS),
    (*b"YT", AF),
    (*b"ZA", AF),
    (*b"ZM", AF),
    (*b"ZW", AF),
];

/// The continent code (`AF`, `AN`, `AS`, `EU`, `NA`, `OC` or `SA`) of the ISO 3166-1 alpha-2
/// country `cc`, given as upper-case ASCII (`*b"FR"` → `*b"EU"`); `[0, 0]` for a code the
/// table does not know, including lower-case input and `[0, 0]` itself.
pub fn of_country(cc: [u8; 2]) -> [u8; 2] {
    TABLE
        .binary_search_by_key(&cc, |&(country, _)| country)
        .map_or([0, 0], |i| TABLE[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(cc: &str) -> &'static str {
        let bytes: [u8; 2] = cc.as_bytes().try_into().unwrap();
        match &of_country(bytes) {
            b"AF" => "AF",
            b"AN" => "AN",
            b"AS" => "AS",
            b"EU" => "EU",
            b"NA" => "NA",
            b"OC" => "OC",
            b"SA" => "SA",
            [0, 0] => "",
            other => panic!("{cc}: unexpected continent {other:?}"),
        }
    }

    #[test]
    fn well_known_countries() {
        for (cc, want) in [
            ("US", "NA"),
            ("CA", "NA"),
            ("MX", "NA"),
            ("BR", "SA"),
            ("AR", "SA"),
            ("GB", "EU"),
            ("DE", "EU"),
            ("FR", "EU"),
            ("JP", "AS"),
            ("CN", "AS"),
            ("IN", "AS"),
            ("AU", "OC"),
            ("NZ", "OC"),
            ("ZA", "AF"),
            ("NG", "AF"),
            ("KE", "AF"),
        ] {
            assert_eq!(of(cc), want, "{cc}");
        }
    }

    #[test]
    fn geonames_edge_cases() {
        for (cc, want) in [
            ("RU", "EU"),
            ("TR", "AS"),
            ("CY", "EU"),
            ("AM", "AS"),
            ("AZ", "AS"),
            ("GE", "AS"),
            ("KZ", "AS"),
            ("EG", "AF"),
            ("PA", "NA"),
            ("TT", "NA"),
            ("UM", "OC"),
            ("TL", "OC"),
            ("GL", "NA"),
            ("FK", "SA"),
            ("IO", "AS"),
            ("AQ", "AN"),
            ("BV", "AN"),
            ("GS", "AN"),
            ("HM", "AN"),
            ("TF", "AN"),
            // Codes databases use beside ISO 3166-1.
            ("EU", "EU"),
            ("AP", "AS"),
            ("XK", "EU"),
        ] {
            assert_eq!(of(cc), want, "{cc}");
        }
    }

    #[test]
    fn unknown_codes_have_no_continent() {
        for cc in ["ZZ", "XX", "UK", "AN", "CS", "YU", "A1", "us", "Us"] {
            assert_eq!(of(cc), "", "{cc}");
        }
        assert_eq!(of_country([0, 0]), [0, 0]);
        assert_eq!(of_country([0xff, 0xff]), [0, 0]);
    }

    #[test]
    fn the_table_is_sorted_unique_and_uses_the_seven_continents() {
        for w in TABLE.windows(2) {
            assert!(w[0].0 < w[1].0, "{:?} before {:?}", w[0].0, w[1].0);
        }
        let continents = [AF, AN, AS, EU, NA, OC, SA];
        for (cc, cont) in TABLE {
            assert!(cc.iter().all(u8::is_ascii_uppercase), "{cc:?}");
            assert!(continents.contains(&cont), "{cc:?} → {cont:?}");
            assert_eq!(of_country(cc), cont);
        }
        // 249 assigned ISO 3166-1 alpha-2 codes, plus XK, EU and AP.
        assert_eq!(TABLE.len(), 249 + 3);
    }
}
