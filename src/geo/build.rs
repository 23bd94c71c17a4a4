//! `gslbd geodata build`: a GeoIP2-City-compatible MMDB from a CSV of
//! `network,city,country_iso_code,continent_code,latitude,longitude`.
//!
//! Operators use it for private networks and tests; the records have the GeoIP2 City layout
//! (`city.names.en`, `country.iso_code`, `continent.code`, `location.latitude/longitude`), so
//! `mmdblookup` and every MaxMind reader understand them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use ipnet::IpNet;
use mmdb_writer::Writer;
use serde::Serialize;

use crate::diag::{Diagnostic, Diagnostics};

#[derive(Serialize)]
struct Names {
    en: String,
}

#[derive(Serialize)]
struct City {
    names: Names,
}

#[derive(Serialize)]
struct Country {
    iso_code: String,
}

#[derive(Serialize)]
struct Continent {
    code: String,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize)]
struct CityRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<City>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<Country>,
    #[serde(skip_serializing_if = "Option::is_none")]
    continent: Option<Continent>,
    location: Location,
}

const COLUMNS: [&str; 6] = [
    "network",
    "city",
    "country_iso_code",
    "continent_code",
    "latitude",
    "longitude",
];

const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// Builds the database bytes from CSV text read from `input`. `file` names it in errors.
pub fn build_mmdb(file: &Path, input: impl Read) -> Result<Vec<u8>, Diagnostics> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut diags = Diagnostics::default();
    let headers = rdr
        .headers()
        .map_err(|e| Diagnostics::one(file, Some(1), format!("cannot read header: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let idx: Vec<Option<usize>> = COLUMNS.iter().map(|c| col(c)).collect();
    for (c, i) in COLUMNS.iter().zip(&idx) {
        if i.is_none() {
            diags.push(Diagnostic::new(
                file,
                Some(1),
                format!("missing column {c:?}"),
            ));
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let get = |rec: &csv::StringRecord, k: usize| -> String {
        idx[k].and_then(|i| rec.get(i)).unwrap_or("").to_string()
    };

    let mut writer = Writer::builder("GeoIP2-City")
        .description(&[("en", "gslbd geodata built from CSV")])
        .build();
    let mut seen: BTreeMap<IpNet, usize> = BTreeMap::new();
    let mut rows = 0usize;
    for (n, rec) in rdr.records().enumerate() {
        let line = n + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line() as usize);
                diags.push(Diagnostic::new(file, Some(line), format!("bad row: {e}")));
                continue;
            }
        };
        let line = rec.position().map_or(line, |p| p.line() as usize);
        let mut bad = |msg: String| diags.push(Diagnostic::new(file, Some(line), msg));
        let net_s = get(&rec, 0);
        let Ok(net) = net_s.parse::<IpNet>() else {
            bad(format!(
                "network {net_s:?} is not a CIDR (e.g. 192.0.2.0/24)"
            ));
            continue;
        };
        if net.trunc() != net {
            bad(format!(
                "network {net} has host bits set (did you mean {}?)",
                net.trunc()
            ));
            continue;
        }
        if let Some(prev) = seen.insert(net, line) {
            bad(format!("network {net} already given on line {prev}"));
            continue;
        }
        let lat_s = get(&rec, 4);
        let lon_s = get(&rec, 5);
        let lat = match lat_s.parse::<f64>() {
            Ok(v) if (-90.0..=90.0).contains(&v) => v,
            _ => {
                bad(format!("latitude {lat_s:?} is not a number in -90..90"));
                continue;
            }
        };
        let lon = match lon_s.parse::<f64>() {
            Ok(v) if (-180.0..=180.0).contains(&v) => v,
            _ => {
                bad(format!("longitude {lon_s:?} is not a number in -180..180"));
                continue;
            }
        };
        let country = get(&rec, 2);
        if !country.is_empty() && super::db::code(&country) == [0, 0] {
            bad(format!("country {country:?} is not a two-letter ISO code"));
            continue;
        }
        let continent = get(&rec, 3).to_ascii_uppercase();
        if !continent.is_empty() && !CONTINENTS.contains(&continent.as_str()) {
            bad(format!(
                "continent {continent:?} is not one of {}",
                CONTINENTS.join(" ")
            ));
            continue;
        }
        let city = get(&rec, 1);
        let record = CityRecord {
            city: (!city.is_empty()).then_some(City {
                names: Names { en: city },
            }),
            country: (!country.is_empty()).then(|| Country {
                iso_code: country.to_ascii_uppercase(),
            }),
            continent: (!continent.is_empty()).then_some(Continent { code: continent }),
            location: Location {
                latitude: lat,
                longitude: lon,
            },
        };
        if let Err(e) = writer.insert(net, &record) {
            bad(format!("cannot insert {net}: {e}"));
            continue;
        }
        rows += 1;
    }
    if rows == 0 && diags.is_empty() {
        diags.push(Diagnostic::new(file, None, "no rows"));
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    writer
        .to_bytes()
        .map_err(|e| Diagnostics::one(file, None, format!("cannot write database: {e}")))
}

/// Builds `output` from the CSV file `input`, replacing it atomically (write, then rename), so
/// a running gslbd that has the old file mapped is never handed a half-written one.
pub fn build_file(input: &Path, output: &Path) -> Result<(), Diagnostics> {
    let f = std::fs::File::open(input)
        .map_err(|e| Diagnostics::one(input, None, format!("cannot open: {e}")))?;
    let bytes = build_mmdb(input, f)?;
    let tmp = output.with_extension("mmdb.tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, output))
        .map_err(|e| Diagnostics::one(output, None, format!("cannot write: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::{GeoDb, GeoMap, GeoRules, Site};

    fn db_from_csv(rows: &str) -> (tempfile::TempDir, GeoDb) {
        let csv =
            format!("network,city,country_iso_code,continent_code,latitude,longitude\n{rows}");
        let bytes = build_mmdb(Path::new("t.csv"), csv.as_bytes()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.mmdb");
        std::fs::write(&p, bytes).unwrap();
        let db = GeoDb::open(&p).unwrap();
        (dir, db)
    }

    fn sites() -> Vec<Site> {
        vec![
            Site {
                index: 0,
                lat: 39.0,
                lon: -77.5,
                bias: 0.0,
            }, // Ashburn
            Site {
                index: 1,
                lat: 53.3,
                lon: -6.3,
                bias: 0.0,
            }, // Dublin
        ]
    }

    fn scope(m: &GeoMap, ip: &str) -> (Vec<u16>, u8) {
        let (c, s) = m.locate(ip.parse().unwrap());
        (c.order.clone(), s)
    }

    #[test]
    fn ipv4_aliases_in_ipv6_space_resolve_through_the_ipv4_table() {
        // 10.0.0.0/23 is Paris + Berlin (nearest Dublin); the rest of 10/8 is unknown.
        let (_d, db) = db_from_csv(
            "10.0.0.0/24,Paris,FR,EU,48.86,2.35\n10.0.1.0/24,Berlin,DE,EU,52.52,13.40\n2a00::/16,Paris,FR,EU,48.86,2.35\n",
        );
        let m = GeoMap::build(Some(&db), &sites(), &GeoRules::default(), false);
        let v4 = scope(&m, "10.0.1.7");
        assert_eq!(v4, (vec![1, 0], 23));
        // The same client through each alias the writer links to the IPv4 subtree: the
        // IPv4 scope counts below the alias prefix.
        assert_eq!(scope(&m, "::ffff:10.0.1.7"), v4);
        assert_eq!(scope(&m, "2002:0a00:0107::1"), (vec![1, 0], 16 + 23));
        assert_eq!(scope(&m, "2001:0:0a00:0107::1"), (vec![1, 0], 32 + 23));
        assert_eq!(scope(&m, "::10.0.1.7"), (vec![1, 0], 96 + 23));
        // Native IPv6 is read from the IPv6 part of the tree.
        assert_eq!(scope(&m, "2a00:1::1").0, vec![1, 0]);
        // The walk saw each network once: three networks, two of them (Paris) one record.
        assert_eq!(db.networks, 3);
        assert_eq!(db.distinct, 2);
    }

    #[test]
    fn a_corrupt_search_tree_is_refused_not_followed() {
        let (dir, db) = db_from_csv("10.0.0.0/24,Paris,FR,EU,48.86,2.35\n");
        let good = std::fs::read(&db.path).unwrap();
        let width = 7; // the writer uses 28-bit records: 7 bytes a node
        let p = dir.path().join("bad.mmdb");
        // Node 0's left child pointing back at node 0: a cycle.
        let mut bad = good.clone();
        bad[..width].fill(0);
        std::fs::write(&p, &bad).unwrap();
        let e = GeoDb::open(&p).unwrap_err().to_string();
        assert!(e.contains("search tree"), "{e}");
        // A data pointer far past the end of the file.
        let mut bad = good.clone();
        bad[..3].fill(0xff);
        bad[3] |= 0xf0;
        std::fs::write(&p, &bad).unwrap();
        assert!(GeoDb::open(&p).is_err());
        // Every single-byte corruption of the tree is either refused or read; none panics.
        for at in 0..good.len().min(2000) {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            std::fs::write(&p, &bad).unwrap();
            if let Ok(db) = GeoDb::open(&p) {
                let m = GeoMap::build(Some(&db), &sites(), &GeoRules::default(), false);
                let _ = m.locate("10.0.0.1".parse().unwrap());
            }
        }
    }

    #[test]
    fn adjacent_networks_with_the_same_nearest_list_widen_the_scope() {
        // Two adjacent /24s in Paris and Berlin: both nearest Dublin, then Ashburn. Together they
        // are 10.0.0.0/23; the /23 next to them (Boston) orders the other way.
        let (_d, db) = db_from_csv(
            "10.0.0.0/24,Paris,FR,EU,48.86,2.35\n10.0.1.0/24,Berlin,DE,EU,52.52,13.40\n10.0.2.0/23,Boston,US,NA,42.36,-71.06\n",
        );
        let m = GeoMap::build(Some(&db), &sites(), &GeoRules::default(), false);
        assert_eq!(scope(&m, "10.0.0.7"), (vec![1, 0], 23));
        assert_eq!(scope(&m, "10.0.1.7"), (vec![1, 0], 23));
        assert_eq!(scope(&m, "10.0.3.7"), (vec![0, 1], 23));
        // With distances kept (score policy), Paris and Berlin differ: no widening past /24.
        let m = GeoMap::build(Some(&db), &sites(), &GeoRules::default(), true);
        assert_eq!(scope(&m, "10.0.0.7").1, 24);
        assert_eq!(scope(&m, "10.0.1.7").1, 24);
    }

    #[test]
    fn adjacent_networks_with_different_nearest_regions_keep_their_own_prefix() {
        let (_d, db) = db_from_csv(
            "10.0.0.0/24,Paris,FR,EU,48.86,2.35\n10.0.1.0/24,Boston,US,NA,42.36,-71.06\n",
        );
        let m = GeoMap::build(Some(&db), &sites(), &GeoRules::default(), false);
        assert_eq!(scope(&m, "10.0.0.7"), (vec![1, 0], 24));
        assert_eq!(scope(&m, "10.0.1.7"), (vec![0, 1], 24));
        // Unknown space takes the listed order [0, 1], Boston's too, so the two merge: an
        // unknown address next to Boston gets the widest block that avoids Paris, /23.
        assert_eq!(scope(&m, "10.0.2.1"), (vec![0, 1], 23));
    }

    #[test]
    fn bad_rows_are_rejected_with_their_line_and_reason() {
        let csv = "network,city,country_iso_code,continent_code,latitude,longitude\n\
                   10.0.0.0/24,A,FR,EU,48.8,2.3\n\
                   10.0.0.1/24,B,FR,EU,48.8,2.3\n\
                   not-a-net,C,FR,EU,1,1\n\
                   10.0.1.0/24,D,FR,EU,91,1\n\
                   10.0.2.0/24,E,FRA,EU,1,1\n\
                   10.0.3.0/24,F,FR,XX,1,1\n\
                   10.0.0.0/24,G,FR,EU,1,1\n";
        let d = build_mmdb(Path::new("bad.csv"), csv.as_bytes()).unwrap_err();
        let lines: Vec<String> = d.iter().map(|x| x.to_string()).collect();
        let want = [
            "bad.csv: line 3: network 10.0.0.1/24 has host bits set (did you mean 10.0.0.0/24?)",
            "bad.csv: line 4: network \"not-a-net\" is not a CIDR",
            "bad.csv: line 5: latitude \"91\" is not a number in -90..90",
            "bad.csv: line 6: country \"FRA\" is not a two-letter ISO code",
            "bad.csv: line 7: continent \"XX\" is not one of AF AN AS EU NA OC SA",
            "bad.csv: line 8: network 10.0.0.0/24 already given on line 2",
        ];
        for w in want {
            assert!(
                lines.iter().any(|l| l.starts_with(w)),
                "missing {w:?} in {lines:#?}"
            );
        }
        assert_eq!(lines.len(), want.len(), "{lines:#?}");
        let missing = build_mmdb(Path::new("m.csv"), "network,city\n".as_bytes()).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("m.csv: line 1: missing column \"latitude\""),
            "{missing}"
        );
    }

    #[test]
    fn country_databases_and_flat_dbip_records_are_read() {
        use serde::Serialize;
        #[derive(Serialize)]
        struct Iso {
            iso_code: &'static str,
        }
        #[derive(Serialize)]
        struct Code {
            code: &'static str,
        }
        // A GeoIP2-Country record: country and continent, no location.
        #[derive(Serialize)]
        struct CountryRec {
            country: Iso,
            continent: Code,
        }
        // The flat DB-IP layout of `@ip-location-db`.
        #[derive(Serialize)]
        struct Flat {
            city: &'static str,
            country_code: &'static str,
            latitude: f64,
            longitude: f64,
        }
        let mut w = mmdb_writer::Writer::new("GeoIP2-Country");
        w.insert(
            "10.1.0.0/16".parse::<IpNet>().unwrap(),
            &CountryRec {
                country: Iso { iso_code: "DE" },
                continent: Code { code: "EU" },
            },
        )
        .unwrap();
        w.insert(
            "10.2.0.0/16".parse::<IpNet>().unwrap(),
            &Flat {
                city: "Tokyo",
                country_code: "JP",
                latitude: 35.68,
                longitude: 139.69,
            },
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.mmdb");
        std::fs::write(&p, w.to_bytes().unwrap()).unwrap();
        let db = GeoDb::open(&p).unwrap();
        let de = db.record("10.1.2.3".parse().unwrap()).unwrap();
        assert_eq!(
            (de.coords, de.country_str(), de.continent_str()),
            (None, Some("DE"), Some("EU"))
        );
        let jp = db.record("10.2.2.3".parse().unwrap()).unwrap();
        assert_eq!(
            (jp.coords, jp.country_str()),
            (Some((35.68, 139.69)), Some("JP"))
        );
        let l = db.lookup("10.1.9.9".parse().unwrap()).unwrap();
        assert_eq!((l.prefix, l.network.as_str()), (16, "10.1.0.0/16"));
        // A country rule places the coordinate-less record; without one it gets the default.
        let rules = GeoRules {
            countries: [([b'D', b'E'], vec![1])].into_iter().collect(),
            ..Default::default()
        };
        let m = GeoMap::build(Some(&db), &sites(), &rules, false);
        assert_eq!(scope(&m, "10.1.2.3").0, vec![1]);
        let m = GeoMap::build(Some(&db), &sites(), &GeoRules::default(), false);
        assert_eq!(
            scope(&m, "10.1.2.3").0,
            vec![0, 1],
            "no coordinates, no rule: listed order"
        );
    }
}
