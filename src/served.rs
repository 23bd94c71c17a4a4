//! What the query path answers from: the compiled model of one (re)load together with what is
//! built from it for queries — each service's geo map, the geolocation database (for
//! `explain`), the metric slots and the fast path's index — and, beside it, the health of its
//! regions. The health runner publishes a [`Served`] pair with `arc-swap`; a query loads it once.
//!
//! The fast index is plain data here; `dns::fast` builds it and reads it.

use std::ops::Deref;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::geo::{GeoDb, GeoMap};
use crate::metrics::ZoneStats;
use crate::snapshot::HealthSnapshot;
use crate::zone::{Service, ZoneSet};

/// One load's model and what queries need beside it. Derefs to the model.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The compiled zones of this load; `Catalog` derefs to it.
    pub model: ZoneSet,
    /// Geo maps; a service's `map` indexes this (services with the same regions and rules share
    /// one).
    pub maps: Vec<Arc<GeoMap>>,
    /// The geolocation database the maps were built from (for `explain`).
    pub geo: Option<Arc<GeoDb>>,
    /// The counters this load's queries bump.
    pub stats: ZoneStats,
    /// The names the wire fast path answers.
    pub fast: FastIndex,
}

impl Deref for Catalog {
    type Target = ZoneSet;
    fn deref(&self) -> &ZoneSet {
        &self.model
    }
}

static EMPTY_MAP: std::sync::LazyLock<GeoMap> = std::sync::LazyLock::new(GeoMap::empty);

impl Catalog {
    /// The geo map of `svc` (an empty one, placing nobody, if the index is out of range).
    #[inline]
    pub fn map(&self, svc: &Service) -> &GeoMap {
        self.maps.get(svc.map).map_or(&EMPTY_MAP, |m| m)
    }
}

/// What queries are answered from: a catalog and the health of its regions, swapped together so
/// region ids always match.
#[derive(Debug)]
pub struct Served {
    /// The catalog of the current load.
    pub zones: Arc<Catalog>,
    /// The health of the catalog's regions, indexed by `Region::id` of that same catalog.
    pub health: Arc<HealthSnapshot>,
}

/// Exact names the fast path answers, by lower-case wire-format name.
#[derive(Debug, Default)]
pub struct FastIndex {
    /// Each answerable name, keyed by its lower-case uncompressed wire form.
    pub names: FxHashMap<Box<[u8]>, FastName>,
}

/// One name of the fast index: its zone and what it is.
#[derive(Debug)]
pub struct FastName {
    /// Index of the name's zone in `ZoneSet::zones` (the most specific zone holding it).
    pub zone: usize,
    /// Whether the name is steered or answered from prebuilt records.
    pub what: FastWhat,
}

/// A fast-path name is a service or static data.
#[derive(Debug)]
pub enum FastWhat {
    /// A steered name: index into the zone's services.
    Service(usize),
    /// A static name's answers, one per RRset type.
    Static(Vec<Prebuilt>),
}

/// The encoded answer section for one (name, type), owners pointing at the question.
#[derive(Debug)]
pub struct Prebuilt {
    /// The RR type these records answer (numeric, as in the question).
    pub rtype: u16,
    /// The number of records in `bytes`, written as ANCOUNT.
    pub count: u16,
    /// The answer records in wire form, each owner a pointer to the question (`0xC00C`).
    pub bytes: Box<[u8]>,
}
