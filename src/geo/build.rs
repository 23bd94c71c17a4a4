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

use crate::config::{Diagnostic, Diagnostics};

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
