//! `gslbd geodata build`: MaxMind DB files from CSV, for private networks and tests.
//!
//! - **City** ([`build_mmdb`], [`build_file`]): a GeoIP2-City-compatible database from a CSV
//!   with the header `network,city,country_iso_code,continent_code,latitude,longitude` and an
//!   optional seventh column `subdivision_code` (the ISO 3166-2 code without the country: `CA`
//!   for `US-CA`). The records have the GeoIP2 City layout (`city.names.en`,
//!   `country.iso_code`, `continent.code`, `location.latitude/longitude`,
//!   `subdivisions[0].iso_code`).
//! - **ASN** ([`build_asn_mmdb`], [`build_asn_file`]): a GeoLite2-ASN-compatible database
//!   (`autonomous_system_number`, `autonomous_system_organization`) from CSVs in the layout of
//!   the npm package `@ip-location-db/asn`: no header, rows `start,end,asn,org` with inclusive
//!   IPv4 or IPv6 ranges.
//!
//! `mmdblookup` and every MaxMind reader understand both.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Subnets, Ipv6Net, Ipv6Subnets};
use mmdb_writer::{Value, Writer};
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

/// One entry of GeoIP2's `subdivisions` array.
#[derive(Serialize)]
struct Subdivision {
    iso_code: String,
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
    /// GeoIP2 lists subdivisions largest first; the CSV gives at most one.
    #[serde(skip_serializing_if = "Option::is_none")]
    subdivisions: Option<Vec<Subdivision>>,
}

const COLUMNS: [&str; 6] = [
    "network",
    "city",
    "country_iso_code",
    "continent_code",
    "latitude",
    "longitude",
];

/// The optional column after [`COLUMNS`]: a CSV without it builds records without subdivisions.
const SUBDIVISION_COLUMN: &str = "subdivision_code";

const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// Builds the database bytes from CSV text read from `input`. `file` names it in errors.
pub fn build_mmdb(file: &Path, input: impl Read) -> Result<Vec<u8>, Diagnostics> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
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
    let subdivision_idx = col(SUBDIVISION_COLUMN);

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
        // A row may leave out trailing optional columns, not required ones.
        if rec.len() > headers.len() || idx.iter().flatten().any(|&i| i >= rec.len()) {
            bad(format!(
                "found {} field(s), the header has {}",
                rec.len(),
                headers.len()
            ));
            continue;
        }
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
        let subdivision = subdivision_idx
            .and_then(|i| rec.get(i))
            .unwrap_or("")
            .to_string();
        if !subdivision.is_empty() {
            if !is_subdivision_code(&subdivision) {
                bad(format!(
                    "subdivision {subdivision:?} is not 1 to 3 letters or digits (the ISO 3166-2 \
                     code without the country: CA for US-CA)"
                ));
                continue;
            }
            if country.is_empty() {
                bad(format!(
                    "subdivision {subdivision:?} needs a country_iso_code"
                ));
                continue;
            }
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
            subdivisions: (!subdivision.is_empty()).then(|| {
                vec![Subdivision {
                    iso_code: subdivision.to_ascii_uppercase(),
                }]
            }),
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

/// An ISO 3166-2 subdivision code without its country prefix: 1 to 3 ASCII letters or digits.
fn is_subdivision_code(s: &str) -> bool {
    (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Builds `output` from the CSV file `input`, replacing it atomically (write, then rename), so
/// a running gslbd that has the old file mapped is never handed a half-written one.
pub fn build_file(input: &Path, output: &Path) -> Result<(), Diagnostics> {
    let f = std::fs::File::open(input)
        .map_err(|e| Diagnostics::one(input, None, format!("cannot open: {e}")))?;
    let bytes = build_mmdb(input, f)?;
    write_atomically(output, &bytes)
}

/// Writes `bytes` to `output.tmp`, then renames it over `output`.
fn write_atomically(output: &Path, bytes: &[u8]) -> Result<(), Diagnostics> {
    let tmp = output.with_extension("mmdb.tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, output))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Diagnostics::one(output, None, format!("cannot write: {e}"))
        })
}

/// The GeoLite2-ASN record keys.
const ASN_NUMBER: &str = "autonomous_system_number";
const ASN_ORGANIZATION: &str = "autonomous_system_organization";

/// An ASN build lists at most this many errors (and as many overlap warnings): a file in the
/// wrong format would otherwise give one per row.
pub const MAX_ASN_ERRORS: usize = 100;

/// What an ASN build read and wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AsnSummary {
    /// Data rows read from every input (header rows not counted).
    pub rows: usize,
    /// CIDR blocks inserted: each row's range split into the fewest blocks that cover it.
    pub blocks: usize,
    /// CIDR blocks left out because they lie in IPv6 space the database aliases to the IPv4
    /// tree (`::ffff:0:0/96`, Teredo `2001::/32`, 6to4 `2002::/16`): addresses there resolve
    /// through the IPv4 rows, as in MaxMind's own databases.
    pub aliased: usize,
    /// Rows whose range overlaps an earlier-sorted row's. The database holds both; where they
    /// overlap the row later in the input wins (the npm files have a few such rows).
    pub overlaps: usize,
    /// The first [`MAX_ASN_ERRORS`] overlaps, with file and line, to show as warnings.
    pub warnings: Vec<Diagnostic>,
}

/// One row's inclusive range for the overlap check, in the single 128-bit space of the
/// database's tree: IPv4 `a.b.c.d` is `::a.b.c.d`, where the writer stores it.
struct Span {
    first: u128,
    last: u128,
    v4: bool,
    /// Index into [`AsnBuilder::files`].
    file: usize,
    line: usize,
}

impl Span {
    fn addr(&self, bits: u128) -> IpAddr {
        match u32::try_from(bits) {
            Ok(v4) if self.v4 => IpAddr::V4(Ipv4Addr::from(v4)),
            _ => IpAddr::V6(Ipv6Addr::from(bits)),
        }
    }
    fn range(&self) -> String {
        format!("{}-{}", self.addr(self.first), self.addr(self.last))
    }
}

/// One parsed ASN row.
struct AsnRow {
    first: IpAddr,
    last: IpAddr,
    asn: u32,
    org: String,
}

/// The IPv6 networks the writer links to the IPv4 tree and refuses inserts into.
fn alias_networks() -> [Ipv6Net; 3] {
    [
        Ipv6Net::new_assert(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96),
        Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32),
        Ipv6Net::new_assert(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16),
    ]
}

/// Reads ASN CSVs into one writer.
struct AsnBuilder {
    writer: Writer,
    aliases: [Ipv6Net; 3],
    files: Vec<PathBuf>,
    spans: Vec<Span>,
    diags: Diagnostics,
    summary: AsnSummary,
}

impl AsnBuilder {
    fn new() -> Self {
        Self {
            writer: Writer::builder("GeoLite2-ASN")
                .description(&[("en", "gslbd geodata built from ASN CSV")])
                .build(),
            aliases: alias_networks(),
            files: Vec::new(),
            spans: Vec::new(),
            diags: Diagnostics::default(),
            summary: AsnSummary::default(),
        }
    }

    /// Room for more errors; once full, reading stops.
    fn has_room(&self) -> bool {
        self.diags.len() < MAX_ASN_ERRORS
    }

    fn error(&mut self, file: &Path, line: Option<usize>, message: String) {
        if self.has_room() {
            self.diags.push(Diagnostic::new(file, line, message));
            if !self.has_room() {
                self.diags.push(Diagnostic::new(
                    file,
                    line,
                    format!("stopped after {MAX_ASN_ERRORS} errors"),
                ));
            }
        }
    }

    /// Reads one CSV; `file` names it in errors.
    fn read(&mut self, file: &Path, input: impl Read) {
        let index = self.files.len();
        self.files.push(file.to_path_buf());
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(input);
        let mut rec = csv::StringRecord::new();
        let mut rows = 0usize;
        let mut first_row = true;
        while self.has_room() {
            let line = rdr.position().line() as usize;
            match rdr.read_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let line = e.position().map_or(line, |p| p.line() as usize);
                    self.error(file, Some(line), format!("bad row: {e}"));
                    // An I/O error repeats forever; a malformed row does not.
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        break;
                    }
                    continue;
                }
            }
            let line = rec.position().map_or(line, |p| p.line() as usize);
            if std::mem::take(&mut first_row) && is_asn_header(&rec) {
                continue;
            }
            rows += 1;
            match parse_asn_row(&rec) {
                Ok(row) => self.insert(index, line, row),
                Err(msg) => self.error(file, Some(line), msg),
            }
        }
        if rows == 0 && self.has_room() {
            self.error(file, None, "no rows".to_string());
        }
        self.summary.rows += rows;
    }

    /// Inserts one row's range as CIDR blocks and remembers it for the overlap check.
    fn insert(&mut self, file: usize, line: usize, row: AsnRow) {
        let mut value = vec![(ASN_NUMBER, Value::U32(row.asn))];
        if !row.org.is_empty() {
            value.push((ASN_ORGANIZATION, Value::String(row.org)));
        }
        let value = Value::map(value);
        let mut failed = None;
        let (first, last, v4) = match (row.first, row.last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                for net in Ipv4Subnets::new(a, b, 0) {
                    if let Err(e) = self.writer.insert_value(net, value.clone()) {
                        failed = Some(format!("cannot insert {net}: {e}"));
                        break;
                    }
                    self.summary.blocks += 1;
                }
                (u128::from(u32::from(a)), u128::from(u32::from(b)), true)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                for net in Ipv6Subnets::new(a, b, 0) {
                    if self.aliases.iter().any(|alias| alias.contains(&net)) {
                        self.summary.aliased += 1;
                        continue;
                    }
                    if let Err(e) = self.writer.insert_value(net, value.clone()) {
                        failed = Some(format!("cannot insert {net}: {e}"));
                        break;
                    }
                    self.summary.blocks += 1;
                }
                (u128::from(a), u128::from(b), false)
            }
            // parse_asn_row refuses mixed families.
            _ => return,
        };
        if let Some(msg) = failed {
            let path = self.files[file].clone();
            self.error(&path, Some(line), msg);
        }
        self.spans.push(Span {
            first,
            last,
            v4,
            file,
            line,
        });
    }

    /// Finds rows whose ranges overlap. The writer lets the later insert win, so they are
    /// warnings, not errors: real data has a few (one in the npm package's IPv4 file).
    fn check_overlaps(&mut self) {
        let mut spans = std::mem::take(&mut self.spans);
        spans.sort_unstable_by_key(|s| (s.first, s.last, s.file, s.line));
        // The span reaching furthest so far: any later span starting at or before its end
        // overlaps it.
        let mut reach: Option<usize> = None;
        for i in 0..spans.len() {
            let cur = &spans[i];
            match reach {
                Some(r) if cur.first <= spans[r].last => {
                    let prev = &spans[r];
                    self.summary.overlaps += 1;
                    if self.summary.warnings.len() < MAX_ASN_ERRORS {
                        let at = if prev.file == cur.file {
                            format!("line {}", prev.line)
                        } else {
                            format!("{}: line {}", self.files[prev.file].display(), prev.line)
                        };
                        let msg = format!(
                            "range {} overlaps {} on {at}; the row later in the input wins \
                             where they overlap",
                            cur.range(),
                            prev.range()
                        );
                        let path = &self.files[cur.file];
                        self.summary
                            .warnings
                            .push(Diagnostic::new(path, Some(cur.line), msg));
                    }
                    if cur.last > prev.last {
                        reach = Some(i);
                    }
                }
                _ => reach = Some(i),
            }
        }
    }

    fn finish(mut self) -> Result<(Vec<u8>, AsnSummary), Diagnostics> {
        if !self.diags.is_empty() {
            return Err(self.diags);
        }
        // Before the writer copies its tree to serialize it: the spans go with the check.
        self.check_overlaps();
        let file = self.files.first().cloned().unwrap_or_default();
        let bytes = self
            .writer
            .to_bytes()
            .map_err(|e| Diagnostics::one(&file, None, format!("cannot write database: {e}")))?;
        Ok((bytes, self.summary))
    }
}

/// A first row that names columns instead of giving a range: its first field is not an
/// address and its third not an AS number.
fn is_asn_header(rec: &csv::StringRecord) -> bool {
    let field = |i| rec.get(i).unwrap_or("");
    field(0).parse::<IpAddr>().is_err() && parse_asn(field(2)).is_none()
}

/// An AS number, `13335` or `AS13335`; 0 is reserved and refused.
fn parse_asn(s: &str) -> Option<u32> {
    let digits = s
        .strip_prefix("AS")
        .or_else(|| s.strip_prefix("as"))
        .unwrap_or(s);
    digits.parse::<u32>().ok().filter(|n| *n != 0)
}

fn parse_asn_row(rec: &csv::StringRecord) -> Result<AsnRow, String> {
    if !(3..=4).contains(&rec.len()) {
        return Err(format!(
            "expected start,end,asn,org; found {} field(s)",
            rec.len()
        ));
    }
    let field = |i| rec.get(i).unwrap_or("");
    let addr = |what: &str, s: &str| {
        s.parse::<IpAddr>()
            .map_err(|_| format!("{what} {s:?} is not an IPv4 or IPv6 address"))
    };
    let first = addr("start", field(0))?;
    let last = addr("end", field(1))?;
    match (first, last) {
        (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => {
            return Err(format!(
                "start {first} and end {last} are not the same address family"
            ));
        }
        _ if first > last => {
            return Err(format!("start {first} is after end {last}"));
        }
        _ => {}
    }
    let asn_s = field(2);
    let asn = parse_asn(asn_s)
        .ok_or_else(|| format!("AS number {asn_s:?} is not a number in 1..4294967295"))?;
    Ok(AsnRow {
        first,
        last,
        asn,
        org: field(3).to_string(),
    })
}

/// Builds a GeoLite2-ASN-compatible database from one CSV in the `@ip-location-db/asn`
/// layout (`start,end,asn,org`, inclusive ranges, IPv4 or IPv6; a first row that is not a
/// range is taken for a header). `file` names the input in errors.
///
/// Each range is split into CIDR blocks; blocks inside the IPv6 space aliased to IPv4 are
/// left out ([`AsnSummary::aliased`]). Bad rows are errors with their line; where ranges
/// overlap, the row later in the input wins ([`AsnSummary::overlaps`]).
pub fn build_asn_mmdb(file: &Path, input: impl Read) -> Result<Vec<u8>, Diagnostics> {
    build_asn_mmdb_from([(file, input)]).map(|(bytes, _)| bytes)
}

/// [`build_asn_mmdb`] over several CSVs read in order into one database (the npm package
/// ships IPv4 and IPv6 in two files), with a summary of what was read. Ranges may not overlap
/// across files either.
pub fn build_asn_mmdb_from<P: AsRef<Path>, R: Read>(
    inputs: impl IntoIterator<Item = (P, R)>,
) -> Result<(Vec<u8>, AsnSummary), Diagnostics> {
    let mut b = AsnBuilder::new();
    for (file, input) in inputs {
        b.read(file.as_ref(), input);
    }
    b.finish()
}

/// Builds `output` from the ASN CSV files `inputs` (see [`build_asn_mmdb_from`]), replacing it
/// atomically like [`build_file`].
pub fn build_asn_file(inputs: &[PathBuf], output: &Path) -> Result<AsnSummary, Diagnostics> {
    let mut b = AsnBuilder::new();
    for input in inputs {
        match std::fs::File::open(input) {
            Ok(f) => b.read(input, std::io::BufReader::new(f)),
            Err(e) => b.error(input, None, format!("cannot open: {e}")),
        }
    }
    if inputs.is_empty() {
        b.error(output, None, "no input CSV".to_string());
    }
    let (bytes, summary) = b.finish()?;
    write_atomically(output, &bytes)?;
    Ok(summary)
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
    fn tables_built_after_many_maps_are_the_same_aliases_included() {
        // Past a few maps a load builds the rest from a flat list of the tree's leaves.
        let (_d, db) = db_from_csv(
            "10.0.0.0/24,Paris,FR,EU,48.86,2.35\n10.0.1.0/24,Berlin,DE,EU,52.52,13.40\n2a00::/16,Paris,FR,EU,48.86,2.35\n",
        );
        let f = |id: u32| id.wrapping_add(1);
        let first = db.tables(f).unwrap();
        assert_eq!(
            first.aliases.len(),
            4,
            "::/96, ::ffff:0:0/96, 6to4 and Teredo"
        );
        for _ in 0..4 {
            db.tables(|id| id % 2).unwrap();
        }
        let later = db.tables(f).unwrap();
        assert_eq!(
            (&later.v4, &later.v6, &later.aliases),
            (&first.v4, &first.v6, &first.aliases)
        );
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
            (de.coords(), de.country_str(), de.continent_str()),
            (None, Some("DE"), Some("EU"))
        );
        let jp = db.record("10.2.2.3".parse().unwrap()).unwrap();
        assert_eq!(
            (jp.coords(), jp.country_str()),
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
    /// The ASN test data: documentation ranges and ASNs, one range not CIDR-aligned.
    const ASN_CSV: &str = "192.0.2.0,192.0.2.255,64496,\"Example, Inc.\"\n\
                           198.51.100.0,198.51.100.127,64497,Example Net\n\
                           203.0.113.5,203.0.113.20,64498,Unaligned\n\
                           2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,64499,Example v6\n\
                           2002::,2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff,64500,6to4\n";

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Asn<'a> {
        autonomous_system_number: u32,
        #[serde(default)]
        autonomous_system_organization: Option<&'a str>,
    }

    /// The AS number the database gives `ip`, `None` when it has no record.
    fn asn_at(bytes: &[u8], ip: &str) -> Option<u32> {
        let reader = maxminddb::Reader::from_source(bytes).unwrap();
        let r = reader.lookup(ip.parse().unwrap()).unwrap();
        r.decode::<Asn>()
            .unwrap()
            .map(|a| a.autonomous_system_number)
    }

    fn messages(d: &Diagnostics) -> Vec<String> {
        d.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn asn_ranges_are_split_into_blocks_and_read_back() {
        let bytes = build_asn_mmdb(Path::new("asn.csv"), ASN_CSV.as_bytes()).unwrap();
        let reader = maxminddb::Reader::from_source(bytes.as_slice()).unwrap();
        assert_eq!(reader.metadata().database_type, "GeoLite2-ASN");
        let r = reader.lookup("192.0.2.77".parse().unwrap()).unwrap();
        assert_eq!(
            r.decode::<Asn>().unwrap(),
            Some(Asn {
                autonomous_system_number: 64496,
                autonomous_system_organization: Some("Example, Inc."),
            })
        );
        for (ip, want) in [
            ("192.0.2.0", Some(64496)),
            ("192.0.2.255", Some(64496)),
            ("192.0.3.0", None),
            ("198.51.100.0", Some(64497)),
            ("198.51.100.127", Some(64497)),
            ("198.51.100.128", None),
            // The unaligned range: both ends, and just outside them.
            ("203.0.113.4", None),
            ("203.0.113.5", Some(64498)),
            ("203.0.113.12", Some(64498)),
            ("203.0.113.20", Some(64498)),
            ("203.0.113.21", None),
            ("2001:db8::", Some(64499)),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Some(64499)),
            ("2001:db9::", None),
            ("2001:db7:ffff::1", None),
            // IPv4 through the IPv6 aliases: IPv4-mapped and 6to4 (2002:c000:0201:: is
            // 192.0.2.1), so the 2002::/16 row is left out.
            ("::ffff:192.0.2.1", Some(64496)),
            ("2002:c000:0201::1", Some(64496)),
            ("2002:cb00:7104::", None),
        ] {
            assert_eq!(asn_at(&bytes, ip), want, "{ip}");
        }
        // The same rows as two files with a header each, as the npm package ships them.
        let (v4, v6) = ASN_CSV.split_at(ASN_CSV.find("2001:").unwrap());
        let v4 = format!("ip_range_start,ip_range_end,autonomous_system_number,org\n{v4}");
        let (two, summary) = build_asn_mmdb_from([
            (Path::new("v4.csv"), v4.as_bytes()),
            (Path::new("v6.csv"), v6.as_bytes()),
        ])
        .unwrap();
        // 203.0.113.5-20 is .5/32 .6/31 .8/29 .16/30 .20/32.
        assert_eq!(
            summary,
            AsnSummary {
                rows: 5,
                blocks: 8,
                aliased: 1,
                overlaps: 0,
                warnings: vec![],
            }
        );
        for ip in ["203.0.113.5", "203.0.113.21", "2001:db8::1", "192.0.2.1"] {
            assert_eq!(asn_at(&two, ip), asn_at(&bytes, ip), "{ip}");
        }
    }

    #[test]
    fn overlapping_asn_rows_warn_and_the_later_row_wins() {
        let csv = "198.51.100.0,198.51.100.127,64500,A\n\
                   198.51.100.100,198.51.100.200,64501,B\n\
                   203.0.113.0,203.0.113.255,64502,C\n";
        let other = "203.0.113.16,203.0.113.31,64503,D\n";
        let (bytes, summary) = build_asn_mmdb_from([
            (Path::new("a.csv"), csv.as_bytes()),
            (Path::new("b.csv"), other.as_bytes()),
        ])
        .unwrap();
        assert_eq!(summary.overlaps, 2);
        assert_eq!(
            messages(&Diagnostics(summary.warnings)),
            [
                "a.csv: line 2: range 198.51.100.100-198.51.100.200 overlaps \
                 198.51.100.0-198.51.100.127 on line 1; the row later in the input wins where \
                 they overlap",
                "b.csv: line 1: range 203.0.113.16-203.0.113.31 overlaps \
                 203.0.113.0-203.0.113.255 on a.csv: line 3; the row later in the input wins \
                 where they overlap",
            ]
        );
        for (ip, want) in [
            ("198.51.100.99", Some(64500)),
            ("198.51.100.100", Some(64501)),
            ("198.51.100.200", Some(64501)),
            ("198.51.100.201", None),
            ("203.0.113.15", Some(64502)),
            ("203.0.113.16", Some(64503)),
            ("203.0.113.32", Some(64502)),
        ] {
            assert_eq!(asn_at(&bytes, ip), want, "{ip}");
        }
    }

    #[test]
    fn bad_asn_rows_are_rejected_with_their_line_and_reason() {
        let csv = "192.0.2.0,192.0.2.255,64496,ok\n\
                   192.0.2.x,192.0.2.255,64496,bad start\n\
                   198.51.100.0,nope,64497,bad end\n\
                   198.51.100.10,198.51.100.9,64497,reversed\n\
                   198.51.100.0,2001:db8::,64497,mixed\n\
                   2001:db8::,198.51.100.0,64497,mixed\n\
                   203.0.113.0,203.0.113.255,AS-X,bad asn\n\
                   203.0.113.0,203.0.113.255,0,zero\n\
                   203.0.113.0,203.0.113.255,4294967296,too big\n\
                   203.0.113.0,203.0.113.255\n\
                   203.0.113.0,203.0.113.255,64498,a,b\n\
                   203.0.113.0,203.0.113.255,AS64498\n";
        let d = build_asn_mmdb(Path::new("bad.csv"), csv.as_bytes()).unwrap_err();
        assert_eq!(
            messages(&d),
            [
                "bad.csv: line 2: start \"192.0.2.x\" is not an IPv4 or IPv6 address",
                "bad.csv: line 3: end \"nope\" is not an IPv4 or IPv6 address",
                "bad.csv: line 4: start 198.51.100.10 is after end 198.51.100.9",
                "bad.csv: line 5: start 198.51.100.0 and end 2001:db8:: are not the same \
                 address family",
                "bad.csv: line 6: start 2001:db8:: and end 198.51.100.0 are not the same \
                 address family",
                "bad.csv: line 7: AS number \"AS-X\" is not a number in 1..4294967295",
                "bad.csv: line 8: AS number \"0\" is not a number in 1..4294967295",
                "bad.csv: line 9: AS number \"4294967296\" is not a number in 1..4294967295",
                "bad.csv: line 10: expected start,end,asn,org; found 2 field(s)",
                "bad.csv: line 11: expected start,end,asn,org; found 5 field(s)",
            ]
        );
        // A bad first row is an error, not a header: its AS number is a number.
        let d = build_asn_mmdb(
            Path::new("f.csv"),
            "192.0.2.256,192.0.2.255,1,x\n".as_bytes(),
        )
        .unwrap_err();
        assert_eq!(
            messages(&d),
            ["f.csv: line 1: start \"192.0.2.256\" is not an IPv4 or IPv6 address"]
        );
        // Only a header, or nothing: no rows.
        for text in ["start,end,asn,org\n", ""] {
            let d = build_asn_mmdb(Path::new("h.csv"), text.as_bytes()).unwrap_err();
            assert_eq!(messages(&d), ["h.csv: no rows"], "{text:?}");
        }
        // A file of garbage stops after MAX_ASN_ERRORS.
        let junk = "x,y,1,z\n".repeat(500);
        let d = build_asn_mmdb(Path::new("j.csv"), junk.as_bytes()).unwrap_err();
        assert_eq!(d.len(), MAX_ASN_ERRORS + 1);
        assert!(
            messages(&d)[MAX_ASN_ERRORS].ends_with("stopped after 100 errors"),
            "{d}"
        );
    }

    #[test]
    fn city_subdivisions_are_written_as_geoip2_has_them() {
        #[derive(serde::Deserialize)]
        struct Sub<'a> {
            iso_code: &'a str,
        }
        #[derive(serde::Deserialize)]
        struct Rec<'a> {
            #[serde(default, borrow)]
            subdivisions: Option<Vec<Sub<'a>>>,
        }
        let csv = "network,city,country_iso_code,continent_code,latitude,longitude,subdivision_code\n\
                   10.0.0.0/24,Chicago,US,NA,41.88,-87.63,IL\n\
                   10.0.1.0/24,London,GB,EU,51.51,-0.13,eng\n\
                   10.0.2.0/24,Paris,FR,EU,48.86,2.35,\n\
                   10.0.3.0/24,Paris,FR,EU,48.86,2.35\n";
        let bytes = build_mmdb(Path::new("s.csv"), csv.as_bytes()).unwrap();
        let reader = maxminddb::Reader::from_source(bytes.as_slice()).unwrap();
        let subs = |ip: &str| -> Option<Vec<String>> {
            let r = reader.lookup(ip.parse().unwrap()).unwrap();
            let rec = r.decode::<Rec>().unwrap().unwrap();
            rec.subdivisions
                .map(|v| v.iter().map(|s| s.iso_code.to_string()).collect())
        };
        assert_eq!(subs("10.0.0.1"), Some(vec!["IL".to_string()]));
        assert_eq!(subs("10.0.1.1"), Some(vec!["ENG".to_string()]));
        assert_eq!(subs("10.0.2.1"), None);
        assert_eq!(subs("10.0.3.1"), None);
        // The standard GeoIP2 City model reads it too.
        let r = reader.lookup("10.0.0.1".parse().unwrap()).unwrap();
        let city = r.decode::<maxminddb::geoip2::City>().unwrap().unwrap();
        assert_eq!(
            city.subdivisions.first().and_then(|s| s.iso_code),
            Some("IL")
        );

        let csv = "network,city,country_iso_code,continent_code,latitude,longitude,subdivision_code\n\
                   10.0.0.0/24,A,US,NA,1,1,US-CA\n\
                   10.0.1.0/24,B,US,NA,1,1,ABCD\n\
                   10.0.2.0/24,C,,NA,1,1,CA\n\
                   10.0.3.0/24,D,US,NA,1,1,C_\n\
                   10.0.4.0/24,E,US,NA,1,1,CA,x\n\
                   10.0.5.0/24,F,US,NA,1\n";
        let d = build_mmdb(Path::new("bad.csv"), csv.as_bytes()).unwrap_err();
        let hint = "is not 1 to 3 letters or digits (the ISO 3166-2 code without the country: \
                    CA for US-CA)";
        assert_eq!(
            messages(&d),
            [
                format!("bad.csv: line 2: subdivision \"US-CA\" {hint}"),
                format!("bad.csv: line 3: subdivision \"ABCD\" {hint}"),
                "bad.csv: line 4: subdivision \"CA\" needs a country_iso_code".to_string(),
                format!("bad.csv: line 5: subdivision \"C_\" {hint}"),
                "bad.csv: line 6: found 8 field(s), the header has 7".to_string(),
                "bad.csv: line 7: found 5 field(s), the header has 7".to_string(),
            ]
        );
    }
}
