//! The MaxMind DB reader: the only geo I/O, done once per (re)load.
//!
//! Every network of the database is read once, its record decoded once per distinct record
//! (cached by data offset) into a small [`GeoRecord`], and the address space flattened into two
//! [`RangeTable`]s whose values index those records. Queries then never touch the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{MaxMindDbError, Reader, WithinOptions};
use serde::Deserialize;

use super::table::RangeTable;

/// Value of a range with no database record.
pub const NO_RECORD: u32 = u32::MAX;

/// What the database says about a network, reduced to what steering uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoRecord {
    /// Latitude and longitude in degrees, when the record has them.
    pub coords: Option<(f64, f64)>,
    /// ISO 3166-1 alpha-2, upper case; `[0, 0]` when absent.
    pub country: [u8; 2],
    /// Continent code (`EU`, `NA`…); `[0, 0]` when absent.
    pub continent: [u8; 2],
}

impl GeoRecord {
    pub fn country_str(&self) -> Option<&str> {
        code_str(&self.country)
    }
    pub fn continent_str(&self) -> Option<&str> {
        code_str(&self.continent)
    }
}

fn code_str(c: &[u8; 2]) -> Option<&str> {
    if c == &[0, 0] {
        None
    } else {
        std::str::from_utf8(c).ok()
    }
}

pub fn code(s: &str) -> [u8; 2] {
    let b = s.as_bytes();
    if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
        [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()]
    } else {
        [0, 0]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GeoDbError {
    #[error("{path}: cannot open MaxMind DB: {source}")]
    Open {
        path: PathBuf,
        source: MaxMindDbError,
    },
    #[error("{path}: cannot read MaxMind DB: {source}")]
    Read {
        path: PathBuf,
        source: MaxMindDbError,
    },
}

/// The borrowed subset of a GeoIP2 City/Country (or DB-IP) record we decode. Unknown keys are
/// skipped by the decoder, so only these fields cost anything.
#[derive(Deserialize, Default)]
struct RawRecord<'a> {
    #[serde(default)]
    location: Option<RawLocation>,
    #[serde(default, borrow)]
    country: Option<RawCountry<'a>>,
    #[serde(default, borrow)]
    continent: Option<RawContinent<'a>>,
    // The flat DB-IP layout (`@ip-location-db`): top-level coordinates and country.
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default, borrow)]
    country_code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct RawLocation {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
}

#[derive(Deserialize, Default)]
struct RawCountry<'a> {
    #[serde(default, borrow)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct RawContinent<'a> {
    #[serde(default, borrow)]
    code: Option<&'a str>,
}

impl RawRecord<'_> {
    fn reduce(&self) -> GeoRecord {
        let lat = self
            .location
            .as_ref()
            .and_then(|l| l.latitude)
            .or(self.latitude);
        let lon = self
            .location
            .as_ref()
            .and_then(|l| l.longitude)
            .or(self.longitude);
        let coords = match (lat, lon) {
            (Some(a), Some(o)) if a.is_finite() && o.is_finite() => Some((a, o)),
            _ => None,
        };
        let country = self
            .country
            .as_ref()
            .and_then(|c| c.iso_code)
            .or(self.country_code)
            .map(code)
            .unwrap_or([0, 0]);
        let continent = self
            .continent
            .as_ref()
            .and_then(|c| c.code)
            .map(code)
            .unwrap_or([0, 0]);
        GeoRecord {
            coords,
            country,
            continent,
        }
    }
}

/// A loaded geolocation database.
pub struct GeoDb {
    pub path: PathBuf,
    /// The database type from its metadata (`GeoLite2-City`, …).
    pub database_type: String,
    /// Distinct records; range values index this.
    pub records: Vec<GeoRecord>,
    pub v4: RangeTable<u32>,
    pub v6: RangeTable<u128>,
    /// Networks read from the file.
    pub networks: usize,
    reader: Reader<maxminddb::Mmap>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("records", &self.records.len())
            .field("v4_ranges", &self.v4.len())
            .field("v6_ranges", &self.v6.len())
            .finish()
    }
}

/// One lookup straight from the database (for `geodata lookup` and `explain`, not the query path).
#[derive(Debug, Clone, PartialEq)]
pub struct DbLookup {
    pub record: Option<GeoRecord>,
    /// The matched network's prefix length.
    pub prefix: u8,
    pub network: String,
}

impl GeoDb {
    /// Opens (memory-maps) and indexes the database at `path`.
    pub fn open(path: &Path) -> Result<Self, GeoDbError> {
        // SAFETY: the mapping is read-only. gslbd never writes the file; operators must replace it
        // by writing a new file and renaming it over the old one (documented in the README), which
        // leaves this mapping on the old inode.
        let reader = unsafe { Reader::open_mmap(path) }.map_err(|source| GeoDbError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let read_err = |source| GeoDbError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut records = Vec::new();
        let mut by_offset: HashMap<usize, u32> = HashMap::new();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut networks = 0usize;
        for item in reader
            // Aliased networks too: a reader finds the IPv4 data under ::ffff:0:0/96 and
            // 2002::/16, and a writer that merged the IPv4 subtree into a wider leaf leaves no
            // other way to see which IPv6 networks share its record.
            .networks(WithinOptions::default().include_aliased_networks())
            .map_err(read_err)?
        {
            let item = item.map_err(read_err)?;
            let Some(offset) = item.offset() else {
                continue;
            };
            let id = match by_offset.get(&offset) {
                Some(&id) => id,
                None => {
                    let raw: RawRecord = item.decode().map_err(read_err)?.unwrap_or_default();
                    let id = u32::try_from(records.len()).unwrap_or(NO_RECORD - 1);
                    records.push(raw.reduce());
                    by_offset.insert(offset, id);
                    id
                }
            };
            let net = item.network().map_err(read_err)?;
            // Count each network once: the IPv4 aliases in IPv6 space (IPv4-compatible ::/96,
            // IPv4-mapped ::ffff:0:0/96, Teredo 2001::/32, 6to4 2002::/16) are not networks of
            // their own.
            let alias = match net {
                ipnetwork::IpNetwork::V6(n) => {
                    let seg = n.network().segments();
                    (seg[0] == 0x2002 && n.prefix() >= 16)
                        || (seg[0] == 0x2001 && seg[1] == 0 && n.prefix() >= 32)
                        || (seg[..5] == [0; 5]
                            && (seg[5] == 0xffff || seg[5] == 0)
                            && n.prefix() >= 96)
                }
                ipnetwork::IpNetwork::V4(_) => false,
            };
            if !alias {
                networks += 1;
            }
            match net {
                ipnetwork::IpNetwork::V4(n) => {
                    let first = u32::from(n.network());
                    v4.push((first, u32::from(n.broadcast()), id));
                }
                ipnetwork::IpNetwork::V6(n) => {
                    let first = u128::from(n.network());
                    let prefix = n.prefix();
                    let last = first
                        | if prefix == 0 {
                            u128::MAX
                        } else {
                            !(u128::MAX << (128 - u32::from(prefix)))
                        };
                    // IPv4 networks of an IPv6 database live at ::/96.
                    if first >> 32 == 0 && prefix >= 96 {
                        v4.push((first as u32, last as u32, id));
                    } else {
                        if first == 0 && last >> 32 != 0 {
                            // A leaf wider than ::/96 holds all of IPv4 too.
                            v4.push((0, u32::MAX, id));
                        }
                        v6.push((first, last, id));
                    }
                }
            }
        }
        v4.sort_unstable_by_key(|r| r.0);
        v6.sort_unstable_by_key(|r| r.0);
        Ok(Self {
            path: path.to_path_buf(),
            database_type: reader.metadata().database_type.clone(),
            records,
            v4: RangeTable::from_sorted(v4, NO_RECORD),
            v6: RangeTable::from_sorted(v6, NO_RECORD),
            networks,
            reader,
        })
    }

    /// The record for `ip` from the indexed tables (what the query path sees).
    pub fn record(&self, ip: IpAddr) -> Option<&GeoRecord> {
        let id = match super::canonical(ip) {
            IpAddr::V4(a) => self.v4.get(u32::from(a)),
            IpAddr::V6(a) => self.v6.get(u128::from(a)),
        };
        self.records.get(id as usize)
    }

    /// Looks `ip` up in the file itself, with the matched network.
    pub fn lookup(&self, ip: IpAddr) -> Result<DbLookup, GeoDbError> {
        let read_err = |source| GeoDbError::Read {
            path: self.path.clone(),
            source,
        };
        let r = self.reader.lookup(ip).map_err(read_err)?;
        let net = r.network().map_err(read_err)?;
        let record = if r.has_data() {
            let raw: Option<RawRecord> = r.decode().map_err(read_err)?;
            raw.map(|r| r.reduce())
        } else {
            None
        };
        Ok(DbLookup {
            record,
            prefix: net.prefix(),
            network: net.to_string(),
        })
    }
}
