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
    /// The country code as text; `None` when the record has none.
    pub fn country_str(&self) -> Option<&str> {
        code_str(&self.country)
    }
    /// The continent code as text; `None` when the record has none.
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

/// A loaded geolocation database.
pub struct GeoDb {
    /// The file the database was opened from.
    pub path: PathBuf,
    /// The database type from its metadata (`GeoLite2-City`, …).
    pub database_type: String,
    /// Distinct records; record ids index this. Emptied by [`drop_index`](Self::drop_index).
    pub records: Vec<GeoRecord>,
    /// How many distinct records the file has (kept after the index is dropped).
    pub distinct: usize,
    /// Data-section offset → record id.
    ids: FxHashMap<u32, u32>,
    /// Networks (non-empty leaves) in the file, IPv4 aliases in IPv6 space not counted.
    pub networks: usize,
    tree: Tree,
    map: Shared,
    reader: Reader<Shared>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("records", &self.records.len())
            .field("networks", &self.networks)
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

impl GeoDb {
    /// Opens (memory-maps) the database at `path`, checks its search tree and decodes its
    /// distinct records.
    pub fn open(path: &Path) -> Result<Self, GeoDbError> {
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
        let mut db = Self {
            path: path.to_path_buf(),
            database_type: meta.database_type.clone(),
            records: Vec::new(),
            distinct: 0,
            ids: FxHashMap::default(),
            networks: 0,
            tree: Tree {
                node_count: meta.node_count as usize,
                record_size: meta.record_size,
                ip_version: meta.ip_version,
                v4_root: 0,
            },
            map,
            reader,
        };
        db.load().map_err(|source| GeoDbError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        db.release_pages();
        Ok(db)
    }

    /// Finds the IPv4 root, then walks the whole tree once: validates it, counts the networks
    /// and decodes every distinct record.
    fn load(&mut self) -> Result<(), MaxMindDbError> {
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
        // The IPv4 and IPv6 parts of the tree are disjoint (the IPv6 walk skips the IPv4
        // subtree): walk them side by side, then decode the distinct records on every core.
        let (v4, v6) = std::thread::scope(|s| {
            let v6 = s.spawn(|| match self.tree.ip_version {
                6 => self.leaves(Family::V6),
                _ => Ok(Leaves::default()),
            });
            let v4 = self.leaves(Family::V4);
            let v6 = v6
                .join()
                .unwrap_or_else(|_| Err(invalid("walker thread failed")));
            (v4, v6)
        });
        let (v4, v6) = (v4?, v6?);
        let mut ids = FxHashMap::default();
        let mut first: Vec<IpAddr> = Vec::with_capacity(v4.first.len() + v6.first.len());
        for (offset, ip) in v4.first.into_iter().chain(v6.first) {
            if let std::collections::hash_map::Entry::Vacant(e) = ids.entry(offset) {
                e.insert(u32::try_from(first.len()).unwrap_or(NO_RECORD - 1));
                first.push(ip);
            }
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = first.len().div_ceil(threads).max(1);
        let this = &*self;
        let decoded: Vec<Result<Vec<GeoRecord>, MaxMindDbError>> = std::thread::scope(|s| {
            let handles: Vec<_> = first
                .chunks(chunk)
                .map(|ips| s.spawn(move || this.decode_all(ips)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(invalid("decoder thread failed")))
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

    /// The networks of one family, and each record's first network.
    fn leaves(&self, family: Family) -> Result<Leaves, MaxMindDbError> {
        let mut out = Leaves::default();
        let mut seen = rustc_hash::FxHashSet::default();
        self.walk(family, |first, leaf| {
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

    /// Decodes the record at each address, through the reader (which checks the data section).
    fn decode_all(&self, ips: &[IpAddr]) -> Result<Vec<GeoRecord>, MaxMindDbError> {
        ips.iter()
            .map(|ip| {
                let raw: Option<RawRecord> = self.reader.lookup(*ip)?.decode()?;
                Ok(raw.unwrap_or_default().reduce())
            })
            .collect()
    }

    /// Frees the record index once every map is built: a running server needs only the maps
    /// (and the file, for `explain`). [`tables`](Self::tables) fails afterwards.
    pub fn drop_index(&mut self) {
        self.records = Vec::new();
        self.ids = FxHashMap::default();
    }

    /// Drops the mapped pages from this process (they stay in the page cache); later reads
    /// fault them back in. Called once the tables are built, so a steady server does not carry
    /// the whole file in its resident memory.
    pub fn release_pages(&self) {
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

    /// One service's tables: every network's record id (or [`NO_RECORD`]) mapped through `f`,
    /// equal neighbours merged.
    pub fn tables(&self, f: impl Fn(u32) -> u32 + Sync) -> Result<Tables, GeoDbError> {
        let read_err = |source| GeoDbError::Read {
            path: self.path.clone(),
            source,
        };
        if self.records.len() != self.distinct {
            return Err(read_err(invalid("the record index was dropped")));
        }
        let value = |leaf: Leaf| match leaf {
            Leaf::Data(o) => f(self.ids.get(&o).copied().unwrap_or(NO_RECORD)),
            _ => f(NO_RECORD),
        };
        // Both families are walked side by side.
        let (v4, v6) = std::thread::scope(|s| {
            let v6 = s.spawn(|| {
                let mut v6 = RangeTable::<u128>::empty();
                let mut aliases: Vec<u8> = Vec::new();
                if self.tree.ip_version == 6 {
                    self.walk(Family::V6, |first, leaf| match leaf {
                        Leaf::V4 { depth } => {
                            let k = u32::try_from(aliases.len()).unwrap_or(u32::MAX);
                            v6.push(first, ALIAS_BASE.saturating_add(k));
                            aliases.push(depth);
                        }
                        _ => v6.push(first, value(leaf)),
                    })?;
                    if aliases.len() > MAX_ALIASES {
                        return Err(invalid("too many IPv4 aliases"));
                    }
                } else {
                    v6.push(0, f(NO_RECORD));
                }
                Ok((v6, aliases))
            });
            let mut v4 = RangeTable::<u32>::empty();
            let v4 = self
                .walk(Family::V4, |first, leaf| v4.push(first as u32, value(leaf)))
                .map(|()| v4);
            let v6 = v6
                .join()
                .unwrap_or_else(|_| Err(invalid("walker thread failed")));
            (v4, v6)
        });
        let v4 = v4.map_err(read_err)?;
        let (v6, aliases) = v6.map_err(read_err)?;
        self.release_pages();
        Ok(Tables { v4, v6, aliases })
    }

    /// The record for `ip`, read from the file (tests and tools; not the query path).
    pub fn record(&self, ip: IpAddr) -> Option<GeoRecord> {
        self.lookup(ip).ok().and_then(|l| l.record)
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
