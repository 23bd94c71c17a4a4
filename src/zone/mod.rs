//! The COMPILED MODEL: zones, their static data, regions and services, immutable once built.
//!
//! Built by `config` and swapped in whole; the query path only reads it. The static
//! authoritative lookup lives here and returns outcomes as data ([`Found`]); it knows nothing of
//! sockets, probes or EDNS.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

pub mod policy;
pub mod probe;
pub mod rules;

pub use policy::{Family, ScoreWeights, Shed, Step};
pub use probe::ProbeSpec;

/// Every zone gslbd serves.
#[derive(Debug, Default)]
pub struct ZoneSet {
    /// The zones, in the order they were compiled (zone files sorted by name).
    pub zones: Vec<Zone>,
    by_origin: HashMap<LowerName, usize>,
    /// Regions of all zones, flattened: a region's `id` indexes this and the health snapshot.
    region_count: usize,
}

impl ZoneSet {
    /// Indexes `zones` by origin and counts their regions. Region ids must already number the
    /// regions of all zones in this order, from 0.
    pub fn new(zones: Vec<Zone>) -> Self {
        let by_origin = zones
            .iter()
            .enumerate()
            .map(|(i, z)| (z.lower_origin.clone(), i))
            .collect();
        let region_count = zones.iter().map(|z| z.regions.len()).sum();
        Self {
            zones,
            by_origin,
            region_count,
        }
    }

    /// The zone with the longest origin that contains `name` (the most specific one), if any.
    pub fn zone_for(&self, name: &LowerName) -> Option<&Zone> {
        let mut n = name.clone();
        loop {
            if let Some(&i) = self.by_origin.get(&n) {
                return self.zones.get(i);
            }
            if n.is_root() {
                return None;
            }
            n = n.base_name();
        }
    }

    /// Like [`Self::zone_for`], with the zone's index.
    pub fn zone_index_for(&self, name: &LowerName) -> Option<(usize, &Zone)> {
        let mut n = name.clone();
        loop {
            if let Some(&i) = self.by_origin.get(&n) {
                return self.zones.get(i).map(|z| (i, z));
            }
            if n.is_root() {
                return None;
            }
            n = n.base_name();
        }
    }

    /// The zone whose origin is exactly `origin`, if any.
    pub fn zone_by_origin(&self, origin: &LowerName) -> Option<&Zone> {
        self.by_origin.get(origin).and_then(|&i| self.zones.get(i))
    }

    /// The number of regions over all zones: the length the health snapshot needs.
    pub fn region_count(&self) -> usize {
        self.region_count
    }

    /// Every region with its zone, in `id` order.
    pub fn regions(&self) -> impl Iterator<Item = (&Zone, &Region)> {
        self.zones
            .iter()
            .flat_map(|z| z.regions.iter().map(move |r| (z, r)))
    }
}

/// One zone: its SOA, static nodes, regions and services.
#[derive(Debug)]
pub struct Zone {
    /// The zone's origin, absolute, as the zone file spells it.
    pub origin: Name,
    /// The origin in lower case, for lookups.
    pub lower_origin: LowerName,
    /// The zone file it came from (for messages).
    pub file: PathBuf,
    /// The apex SOA record, as answered to SOA queries.
    pub soa: Record,
    /// The SOA as sent in negative answers: TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §5).
    pub negative_soa: Record,
    /// Every owner name of the zone by its lower-case form: static data, steered names and the
    /// empty non-terminals above them.
    pub nodes: HashMap<LowerName, Node>,
    /// The zone's regions, in the zone file's order; services index this.
    pub regions: Vec<Region>,
    /// The zone's steered names, in the zone file's order; nodes index this.
    pub services: Vec<Service>,
    /// Decisions the zone file promises (`[[expect]]`), checked by `gslbd check`.
    pub expects: Vec<Expect>,
    /// Whether any node below the apex is a delegation; lets most lookups skip the cut walk.
    pub has_cuts: bool,
    /// Whether any node holds a DNAME; lets most lookups skip the DNAME walk.
    pub has_dnames: bool,
    /// Labels of the deepest node; no longer name can exist in the zone.
    pub max_labels: u8,
    /// A digest of the zone file's text and its master file's (fleet members compare them).
    pub digest: u64,
    /// The zone's signing keys and signature cache when it is signed (`[dnssec]`).
    pub dnssec: Option<ZoneSigning>,
}

/// How a signed zone signs: its keys and policy, and the signatures made so far.
#[derive(Debug)]
pub struct ZoneSigning {
    /// Keys, validity and the DNSKEY/CDS/CDNSKEY RRsets.
    pub signer: Arc<crate::dnssec::Signer>,
    /// Signatures by RRset: static data signed at load, steered answers and denials signed on
    /// first use, each until its refresh time.
    pub cache: crate::dnssec::cache::SigCache,
    /// The steered RRsets' RRSIG RDATA by (service, type, VIPs), for the fast path: found
    /// without building the RRset, and filled from `cache`.
    pub steered: std::sync::RwLock<HashMap<SteeredKey, SteeredSigs>>,
    /// Most entries of `steered` before it starts over: what the load put there, and as many
    /// again for sets signed while answering.
    pub steered_capacity: std::sync::atomic::AtomicUsize,
    /// The static RRsets' RRSIG RDATA, for the fast path: keyed by the owner in lower-case
    /// wire form followed by the type (two bytes), filled at load from `cache` (where they are
    /// pinned) and renewed with it by the refresher. Fixed after the load.
    pub statics: std::sync::RwLock<HashMap<Box<[u8]>, StaticSigs>>,
}

/// The RRSIG RDATA of one static RRset, what renews it, and when it is due.
#[derive(Debug, Clone)]
pub struct StaticSigs {
    /// Each RRSIG's RDATA.
    pub rdatas: Arc<[Vec<u8>]>,
    /// The RRset's TTL (signed and answered).
    pub ttl: u32,
    /// Unix seconds.
    pub renew_at: u64,
    /// The owner as signed, the type and the canonical RDATA: the RRset, to renew it.
    owner: Name,
    rtype: RecordType,
    set: Vec<Vec<u8>>,
}

/// The RDATA of the RRSIG records `sigs` (as the signer makes them: unknown-type RDATA).
fn rrsig_rdatas(sigs: &[Record]) -> Arc<[Vec<u8>]> {
    sigs.iter()
        .filter_map(|r| match &r.data {
            RData::Unknown { rdata, .. } => Some(rdata.anything.to_vec()),
            _ => None,
        })
        .collect()
}

/// The key of [`ZoneSigning::statics`] for `owner` (lower-case wire form) and `rtype`, written
/// into `buf`; `None` when the name is longer than a name can be.
fn static_key<'a>(buf: &'a mut [u8; 257], owner: &[u8], rtype: u16) -> Option<&'a [u8]> {
    let n = owner.len();
    buf.get_mut(..n)?.copy_from_slice(owner);
    buf.get_mut(n..n + 2)?.copy_from_slice(&rtype.to_be_bytes());
    buf.get(..n + 2)
}

/// A steered RRset: the service (index in the zone), A or AAAA, its VIPs in ascending order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SteeredKey {
    /// Index into [`Zone::services`].
    pub service: u32,
    /// 1 (A) or 28 (AAAA).
    pub rtype: u16,
    /// The addresses, sorted.
    pub vips: smallvec::SmallVec<[IpAddr; 4]>,
}

/// The RRSIG RDATA of one steered RRset (one per signing key) and when it is due for renewal.
#[derive(Debug, Clone)]
pub struct SteeredSigs {
    /// Each RRSIG's RDATA.
    pub rdatas: Arc<[Vec<u8>]>,
    /// Unix seconds.
    pub renew_at: u64,
}

impl ZoneSigning {
    /// The signing state of a zone: `signer`, and a cache of at most `capacity` RRsets.
    pub fn new(signer: Arc<crate::dnssec::Signer>, capacity: usize) -> Self {
        Self {
            signer,
            cache: crate::dnssec::cache::SigCache::new(capacity),
            steered: std::sync::RwLock::new(HashMap::new()),
            steered_capacity: std::sync::atomic::AtomicUsize::new(65_536),
            statics: std::sync::RwLock::new(HashMap::new()),
        }
    }

    /// The RRSIG RDATA and TTL of the static RRset of `rtype` at `owner` (lower-case wire form)
    /// for the fast path; `None` when it is not indexed or due for renewal by `now` (Unix
    /// seconds): the general path answers those. Signs nothing.
    pub fn static_sigs(&self, owner: &[u8], rtype: u16, now: u64) -> Option<(Arc<[Vec<u8>]>, u32)> {
        let mut buf = [0u8; 257];
        let key = static_key(&mut buf, owner, rtype)?;
        let m = self.statics.read().ok()?;
        let s = m.get(key).filter(|s| s.renew_at > now)?;
        Some((s.rdatas.clone(), s.ttl))
    }

    /// Puts the static RRset (`owner`, `rtype`, `ttl`, canonical RDATA `set`) in the fast
    /// path's index, with its signatures from the cache (signed now when missing).
    pub fn index_static(
        &self,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        set: Vec<Vec<u8>>,
        now: u64,
    ) {
        let wire = crate::dnssec::name_wire_lower(owner);
        let mut buf = [0u8; 257];
        let Some(key) = static_key(&mut buf, &wire, u16::from(rtype)) else {
            return;
        };
        let key: Box<[u8]> = key.into();
        let (sigs, renew_at) =
            self.cache
                .lookup(&self.signer, owner, rtype, ttl, set.clone(), now, now);
        let entry = StaticSigs {
            rdatas: rrsig_rdatas(&sigs),
            ttl,
            renew_at,
            owner: owner.clone(),
            rtype,
            set,
        };
        if let Ok(mut m) = self.statics.write() {
            m.insert(key, entry);
        }
    }

    /// The RRSIG RDATA of service `si`'s RRset of `vips` (of one family, type `rtype`), signed
    /// over the service TTL; signed now when missing or due (`now`: Unix seconds).
    pub fn steered_sigs(
        &self,
        si: usize,
        svc: &Service,
        rtype: RecordType,
        vips: &[IpAddr],
        now: u64,
    ) -> Arc<[Vec<u8>]> {
        self.steered_sigs_due(si, svc, rtype, vips, now, now)
    }

    /// Renews, off the query path, every signature of the zone due by `now + horizon` (Unix
    /// seconds), the steered index included; returns how many RRsets were signed.
    pub fn refresh(&self, services: &[Service], now: u64, horizon: u64) -> usize {
        let renew_before = now.saturating_add(horizon);
        let signed = self.cache.refresh_due(&self.signer, now, renew_before);
        let due: Vec<SteeredKey> = match self.steered.read() {
            Ok(m) => m
                .iter()
                .filter(|(_, s)| s.renew_at <= renew_before)
                .map(|(k, _)| k.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        for k in due {
            if let Some(svc) = services.get(k.service as usize) {
                let rtype = RecordType::from(k.rtype);
                self.steered_sigs_due(k.service as usize, svc, rtype, &k.vips, now, renew_before);
            }
        }
        // The static index: its RRsets were renewed in the cache above; take the new ones.
        let due: Vec<(Box<[u8]>, StaticSigs)> = match self.statics.read() {
            Ok(m) => m
                .iter()
                .filter(|(_, s)| s.renew_at <= renew_before)
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect(),
            Err(_) => Vec::new(),
        };
        for (key, mut s) in due {
            let (sigs, renew_at) = self.cache.lookup(
                &self.signer,
                &s.owner,
                s.rtype,
                s.ttl,
                s.set.clone(),
                now,
                renew_before,
            );
            s.rdatas = rrsig_rdatas(&sigs);
            s.renew_at = renew_at;
            if let Ok(mut m) = self.statics.write() {
                m.insert(key, s);
            }
        }
        signed
    }

    /// [`Self::steered_sigs`], treating signatures due by `renew_before` as due.
    fn steered_sigs_due(
        &self,
        si: usize,
        svc: &Service,
        rtype: RecordType,
        vips: &[IpAddr],
        now: u64,
        renew_before: u64,
    ) -> Arc<[Vec<u8>]> {
        let mut sorted: smallvec::SmallVec<[IpAddr; 4]> = vips.iter().copied().collect();
        sorted.sort_unstable();
        let key = SteeredKey {
            service: si as u32,
            rtype: u16::from(rtype),
            vips: sorted,
        };
        if let Ok(m) = self.steered.read()
            && let Some(s) = m.get(&key).filter(|s| s.renew_at > renew_before)
        {
            return s.rdatas.clone();
        }
        let rdatas = key
            .vips
            .iter()
            .map(|ip| {
                crate::dnssec::canonical_rdata(&Record::from_rdata(
                    svc.name.clone(),
                    svc.ttl,
                    vip_rdata(*ip),
                ))
            })
            .collect();
        let (sigs, renew_at) = self.cache.lookup(
            &self.signer,
            &svc.name,
            rtype,
            svc.ttl,
            rdatas,
            now,
            renew_before,
        );
        let rdatas = rrsig_rdatas(&sigs);
        if let Ok(mut m) = self.steered.write() {
            // Bounded like the cache it mirrors: start over when full.
            if m.len()
                >= self
                    .steered_capacity
                    .load(std::sync::atomic::Ordering::Relaxed)
            {
                m.clear();
            }
            m.insert(
                key,
                SteeredSigs {
                    rdatas: rdatas.clone(),
                    renew_at,
                },
            );
        }
        rdatas
    }
}

/// An owner name of the zone. A node with no RRsets and no service is an empty non-terminal.
#[derive(Debug, Default)]
pub struct Node {
    /// The name's static RRsets, one per type.
    pub rrsets: Vec<RrSet>,
    /// Index into [`Zone::services`] when this name is steered.
    pub service: Option<usize>,
    /// An NS RRset below the apex: a delegation (zone cut).
    pub cut: bool,
}

impl Node {
    /// The RRset of type `rtype`, if the node has one.
    pub fn rrset(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|r| r.rtype == rtype)
    }
    /// True for an empty non-terminal: no RRset and no service.
    pub fn is_empty(&self) -> bool {
        self.rrsets.is_empty() && self.service.is_none()
    }
}

/// Records of one owner and type; all share one TTL.
#[derive(Debug, Clone)]
pub struct RrSet {
    /// The type of every record in the set.
    pub rtype: RecordType,
    /// The records in the order first written, duplicates dropped; each has the lowest TTL
    /// written for the set (RFC 2181 §5.2).
    pub records: Vec<Record>,
}

/// What the static lookup found for a name.
#[derive(Debug)]
pub enum Found<'z> {
    /// The name exists (possibly as a wildcard expansion when `wildcard` is set).
    Node {
        /// The node holding the data: the name's own, or the wildcard's.
        node: &'z Node,
        /// The node is the wildcard `*.<closest encloser>`, expanded for this name.
        wildcard: bool,
    },
    /// The name is at or below a delegation: refer to these name servers.
    Referral {
        /// The NS RRset at the zone cut.
        ns: &'z RrSet,
    },
    /// The name is below a DNAME (RFC 6672): substitute `owner_labels` trailing labels.
    Dname {
        /// The DNAME RRset of the ancestor.
        dname: &'z RrSet,
        /// The label count of the DNAME's owner: the query name's suffix that the target
        /// replaces.
        owner_labels: u8,
    },
    /// No such name (and no wildcard covers it).
    NxDomain,
}

impl Zone {
    /// The types an NSEC says `node` has (RRSIG and NSEC are added by the NSEC's maker): its
    /// static RRsets, and A/AAAA for a service with regions that answer them.
    pub fn nsec_types(&self, node: &Node) -> Vec<u16> {
        let mut t: Vec<u16> = node.rrsets.iter().map(|s| u16::from(s.rtype)).collect();
        if let Some(svc) = node.service.and_then(|i| self.services.get(i)) {
            let regions = || svc.regions.iter().filter_map(|&i| self.regions.get(i));
            if regions().any(|r| r.cname.is_some() || r.vips.iter().any(|v| v.is_ipv4())) {
                t.push(u16::from(RecordType::A));
            }
            if regions().any(|r| r.cname.is_some() || r.vips.iter().any(|v| v.is_ipv6())) {
                t.push(u16::from(RecordType::AAAA));
            }
        }
        t
    }

    /// The authoritative lookup of `name` (which must be at or below the origin).
    pub fn find(&self, name: &LowerName, qtype: RecordType) -> Found<'_> {
        if self.has_cuts
            && let Some(ns) = self.cut_above(name, qtype)
        {
            return Found::Referral { ns };
        }
        if self.has_dnames
            && let Some(found) = self.dname_above(name)
        {
            return found;
        }
        if let Some(node) = self.nodes.get(name) {
            return Found::Node {
                node,
                wildcard: false,
            };
        }
        // RFC 4592 §3.3.1: find the closest encloser (the longest existing ancestor), then the
        // source of synthesis `*.<closest encloser>`. Names that exist, empty non-terminals
        // included, never reach this point, so a wildcard never matches an existing name.
        // Only names up to the zone's deepest node can exist, so the search starts there: a long
        // hostile name costs no more than a short one.
        let top = name.num_labels().saturating_sub(1).min(self.max_labels);
        let mut labels = top;
        while labels >= self.lower_origin.num_labels() {
            let encloser = ancestor(name, labels);
            if self.nodes.contains_key(&encloser) {
                let wild = encloser.into_wildcard_child();
                if let Some(node) = wild.and_then(|w| self.nodes.get(&w)) {
                    return Found::Node {
                        node,
                        wildcard: true,
                    };
                }
                return Found::NxDomain;
            }
            if labels == 0 {
                break;
            }
            labels -= 1;
        }
        Found::NxDomain
    }

    /// The delegation at or above `name` (below the apex), if any. A DS query at the cut itself
    /// belongs to the parent side (RFC 4035 §3.1.4.1), so it is not referred.
    fn cut_above(&self, name: &LowerName, qtype: RecordType) -> Option<&RrSet> {
        let origin_labels = self.lower_origin.num_labels();
        // Nodes deeper than the deepest one do not exist: no cut can be there.
        let deepest = name.num_labels().min(self.max_labels);
        let mut labels = origin_labels + 1;
        while labels <= deepest {
            if let Some(node) = self.nodes.get(&ancestor(name, labels))
                && node.cut
                && !(qtype == RecordType::DS && labels == name.num_labels())
            {
                return node.rrset(RecordType::NS);
            }
            labels += 1;
        }
        None
    }

    /// The DNAME at an ancestor of `name` (the apex included, `name` itself not), if any.
    fn dname_above(&self, name: &LowerName) -> Option<Found<'_>> {
        let deepest = name.num_labels().min(self.max_labels.saturating_add(1));
        let mut labels = self.lower_origin.num_labels();
        while labels < deepest {
            if let Some(dname) = self
                .nodes
                .get(&ancestor(name, labels))
                .and_then(|n| n.rrset(RecordType::DNAME))
            {
                return Some(Found::Dname {
                    dname,
                    owner_labels: labels,
                });
            }
            labels += 1;
        }
        None
    }

    /// The A and AAAA records of `name` when it is inside this zone (glue and additional data).
    pub fn addresses<'a>(&'a self, name: &Name) -> impl Iterator<Item = &'a Record> + 'a {
        let node = self.nodes.get(&LowerName::new(name));
        node.into_iter().flat_map(|n| {
            n.rrsets
                .iter()
                .filter(|r| matches!(r.rtype, RecordType::A | RecordType::AAAA))
                .flat_map(|r| r.records.iter())
        })
    }
}

/// `name` cut down to its last `labels` labels, in one step (repeated `base_name` would cost the
/// square of the name's length).
fn ancestor(name: &LowerName, labels: u8) -> LowerName {
    if name.num_labels() <= labels {
        return name.clone();
    }
    let full: Name = name.clone().into();
    LowerName::new(&full.trim_to(usize::from(labels)))
}

trait WildcardChild: Sized {
    fn into_wildcard_child(self) -> Option<Self>;
}

impl WildcardChild for LowerName {
    /// `*.<self>`
    fn into_wildcard_child(self) -> Option<Self> {
        let name: Name = self.into();
        name.prepend_label("*").ok().map(|n| LowerName::new(&n))
    }
}

/// A data center: where it is, what it answers with, how much it can take.
#[derive(Debug, Clone)]
pub struct Region {
    /// The region's name, as the zone file's `regions` table keys it.
    pub name: String,
    /// Index into the zone set's flattened region list and into the health snapshot.
    pub id: usize,
    /// Latitude in degrees, from `location`.
    pub lat: f64,
    /// Longitude in degrees, from `location`.
    pub lon: f64,
    /// VIPs in the order written (at most 64); health masks index this. Empty for a region
    /// answered by name (`cname`).
    pub vips: Vec<IpAddr>,
    /// A hostname target instead of VIPs: steered names answer a CNAME to it (like gdnsd's
    /// DYNC or a Route 53 alias to another load balancer). Serves both address families.
    pub cname: Option<hickory_proto::rr::Name>,
    /// Capacity weight, 1–65535 (default 100): the odds of `weighted`, the share of `sticky`, the
    /// room counted by `shed`.
    pub weight: u32,
    /// Relative cost, ≥ 0 (default 0): a term of the `score` step.
    pub cost: f64,
    /// Used only when no primary region of the service is eligible.
    pub backup: bool,
    /// Probe targets: one for the whole region, or one per VIP.
    pub probes: Vec<ProbeTarget>,
    /// The region is down when fewer VIPs than this are up.
    pub min_vips_up: usize,
    /// Proximity bias, −99…99 (positive grows the catchment).
    pub bias: f64,
    /// Stable hash of the name, for sticky and shed-load hashing.
    pub seed: u64,
}

/// One probed thing: the region as a whole (`vip` None) or one VIP (index into `vips`).
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// Index into the region's `vips` of the VIP probed; `None` for the region as a whole.
    pub vip: Option<usize>,
    /// What to probe, how often and with which thresholds.
    pub spec: Arc<ProbeSpec>,
}

/// What a service answers when none of its regions is eligible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllDown {
    /// Every region of the service, ignoring health (Route 53's fail-open).
    All,
    /// The first region of the client's order (gdnsd's).
    First,
    /// This region's VIPs (index into the zone's regions).
    Region(usize),
    /// A CNAME to this name.
    Cname(Name),
    /// NOERROR, no answer, the SOA.
    NoData,
}

/// A steered name.
#[derive(Debug)]
pub struct Service {
    /// The owner name (absolute).
    pub name: Name,
    /// The owner relative to the origin, for logs and metrics (`www`).
    pub label: String,
    /// Indices into the zone's regions that this service may use (shared by the services
    /// that list the same regions).
    pub regions: Arc<[usize]>,
    /// The policy as a chain of steps (applied by `steer`).
    pub chain: Vec<Step>,
    /// Weights of the `score` step's terms (the defaults when the zone file gives none).
    pub score: ScoreWeights,
    /// Load shedding watermarks, from `shed_load`; `None`: a `shed` step does nothing.
    pub shed: Option<Shed>,
    /// Client network length hashed by sticky and shed (IPv4, IPv6).
    pub hash_prefix: (u8, u8),
    /// Answer `_explain.<name> TXT` with the decision table.
    pub explain_txt: bool,
    /// Lower the TTL to the time until a probe could change the answer (opt-in).
    pub ttl_follows_probes: bool,
    /// Locate clients by their ECS subnet (`true`) or by the resolver's address (`false`).
    pub use_ecs: bool,
    /// TTL of steered answers, seconds (default 30).
    pub ttl: u32,
    /// TTL while failover is in effect or everything is down.
    pub degraded_ttl: u32,
    /// The lowest TTL the health-aware cap may give.
    pub min_ttl: u32,
    /// The most regions one answer names (at least 1, default 1).
    pub answers: usize,
    /// What to answer when no region of the service is eligible.
    pub all_down: AllDown,
    /// Index of the service's geo map (client network → catchment and ECS scope) among the
    /// maps built at load; services of a zone with the same regions and geo rules share one.
    pub map: usize,
    /// The geo rules the map was built from (for `explain`).
    pub rules: rules::GeoRules,
}

/// The RData type an answer for `rtype` at a steered name carries, if it is an address type.
pub fn vip_rdata(ip: std::net::IpAddr) -> RData {
    match ip {
        std::net::IpAddr::V4(a) => RData::A(a.into()),
        std::net::IpAddr::V6(a) => RData::AAAA(a.into()),
    }
}

impl Service {
    /// Whether the answer depends on where the client is (so the ECS scope is the geo scope).
    pub fn uses_location(&self) -> bool {
        self.chain.contains(&Step::Geo)
            || (self.chain.contains(&Step::Score) && self.score.distance > 0.0)
    }

    /// Whether a decision draws by time slot (`weighted`): only then does the query path read
    /// the wall clock for it.
    pub fn draws_by_slot(&self) -> bool {
        self.chain.contains(&Step::Weighted)
    }

    /// Whether the answer depends on a hash of the client network.
    pub fn uses_client_hash(&self) -> bool {
        self.chain.contains(&Step::Sticky)
            || self.chain.contains(&Step::Weighted)
            || (self.chain.contains(&Step::Shed) && self.shed.is_some())
    }
}

/// One `[[expect]]` case: for this client, with these assumptions, the answer names these regions.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The zone file line of the `[[expect]]` case, for messages.
    pub line: Option<usize>,
    /// Index into the zone's services.
    pub service: usize,
    /// The client's address as written (with `prefix`, the network's address).
    pub client: IpAddr,
    /// ECS source prefix given with the client (`/24`), if any.
    pub prefix: Option<u8>,
    /// The query's family: `A` (the default) or `AAAA`.
    pub family: Family,
    /// Zone region indices assumed down.
    pub down: Vec<usize>,
    /// Zone region index → load assumed.
    pub load: Vec<(usize, f64)>,
    /// The regions the answer must name, in order (zone region indices).
    pub regions: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_index_serves_fresh_signatures_only_and_the_refresher_renews_them() {
        let sg = ZoneSigning::new(Arc::new(crate::dnssec::test_signer()), 16);
        let owner = Name::from_ascii("Static.gslb.example.").unwrap();
        let wire = crate::dnssec::name_wire_lower(&owner);
        let t0 = 1_800_000_000;
        sg.index_static(&owner, RecordType::A, 300, vec![vec![203, 0, 113, 10]], t0);
        let (first, ttl) = sg.static_sigs(&wire, 1, t0).expect("indexed");
        assert_eq!((first.len(), ttl), (1, 300));
        assert!(sg.static_sigs(&wire, 28, t0).is_none(), "another type");
        // Due at the refresh time: the fast path leaves it to the general path.
        let due = t0 + 7 * 86_400;
        assert!(sg.static_sigs(&wire, 1, due).is_none());
        // The refresher, ahead of that time, renews the index with the cache.
        assert_eq!(sg.cache.signed(), 1);
        sg.refresh(&[], due - 300, 600);
        assert_eq!(sg.cache.signed(), 2);
        let (renewed, _) = sg.static_sigs(&wire, 1, due).expect("renewed");
        assert_ne!(renewed[0], first[0]);
        // Expiration (RRSIG RDATA bytes 8..12) moved on by the time between the signings.
        let exp = |r: &[u8]| u32::from_be_bytes([r[8], r[9], r[10], r[11]]);
        assert_eq!(exp(&renewed[0]) - exp(&first[0]), 7 * 86_400 - 300);
    }
}
