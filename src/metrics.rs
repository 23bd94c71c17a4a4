//! Metrics. The query path only touches atomics: every counter it bumps is resolved to a slot
//! when a zone set is loaded ([`Registry::slots`]), so a query costs no lock, no hash lookup and
//! no allocation. Slots are kept by name in the registry, so counts carry over reloads. The
//! admin server renders them (and the health runner's status) for Prometheus at scrape time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::zone::ZoneSet;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// Query types with their own label value; everything else is `other`.
pub const QTYPES: [&str; 14] = [
    "A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS", "SOA", "PTR", "CAA", "ANY", "DS", "AXFR",
    "other",
];
/// Response codes with their own label value.
pub const RCODES: [&str; 8] = [
    "NOERROR", "NXDOMAIN", "REFUSED", "FORMERR", "NOTIMP", "SERVFAIL", "BADVERS", "other",
];

/// The index of `t`'s label in [`QTYPES`] (IXFR counts as AXFR; unlisted types as `other`).
pub fn qtype_index(t: RecordType) -> usize {
    match t {
        RecordType::A => 0,
        RecordType::AAAA => 1,
        RecordType::CNAME => 2,
        RecordType::MX => 3,
        RecordType::TXT => 4,
        RecordType::SRV => 5,
        RecordType::NS => 6,
        RecordType::SOA => 7,
        RecordType::PTR => 8,
        RecordType::CAA => 9,
        RecordType::ANY => 10,
        RecordType::DS => 11,
        RecordType::AXFR | RecordType::IXFR => 12,
        _ => 13,
    }
}

/// The index of `r`'s label in [`RCODES`] (unlisted codes as `other`).
pub fn rcode_index(r: ResponseCode) -> usize {
    match r {
        ResponseCode::NoError => 0,
        ResponseCode::NXDomain => 1,
        ResponseCode::Refused => 2,
        ResponseCode::FormErr => 3,
        ResponseCode::NotImp => 4,
        ResponseCode::ServFail => 5,
        ResponseCode::BADVERS => 6,
        _ => 7,
    }
}

/// Query counters of one (zone, service) pair, by query type and rcode.
#[derive(Debug, Default)]
pub struct QuerySlot {
    counts: [[AtomicU64; RCODES.len()]; QTYPES.len()],
}

impl QuerySlot {
    /// Counts one query of type `qtype` answered with `rcode`.
    #[inline]
    pub fn count(&self, qtype: RecordType, rcode: ResponseCode) {
        self.counts[qtype_index(qtype)][rcode_index(rcode)].fetch_add(1, Relaxed);
    }
}

/// Counters of one service: its queries and the answers per region.
#[derive(Debug)]
pub struct ServiceSlot {
    /// The service's queries by type and rcode, shared with the registry so counts survive reloads.
    pub queries: Arc<QuerySlot>,
    /// Steered answers naming each region of the zone, also kept by the registry.
    pub answers: Arc<AnswerCounts>,
}

/// Steered answers of one service naming each region of its zone: one flat array, so a zone of
/// 1 000 regions and 10 000 services costs 8 bytes a pair and no strings.
#[derive(Debug)]
pub struct AnswerCounts {
    /// The zone's region names, shared by all its services; `counts` follows this order.
    regions: Arc<[String]>,
    counts: Box<[AtomicU64]>,
}

impl AnswerCounts {
    /// The counter of the zone's region `index`.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&AtomicU64> {
        self.counts.get(index)
    }
}

/// Counters of one zone.
#[derive(Debug)]
pub struct ZoneSlot {
    /// Queries for static names of the zone.
    pub static_names: Arc<QuerySlot>,
    /// One slot per service, in the order of the zone's `services`.
    pub services: Vec<ServiceSlot>,
}

/// The counters a zone set's queries bump, resolved at load.
#[derive(Debug, Default)]
pub struct ZoneStats {
    /// One slot per zone, in the order of `ZoneSet::zones`.
    pub zones: Vec<ZoneSlot>,
}

/// Buckets of the answer-time histogram, seconds.
pub const TIME_BUCKETS: [f64; 12] = [
    0.000_005, 0.000_01, 0.000_02, 0.000_05, 0.000_1, 0.000_2, 0.000_5, 0.001, 0.002, 0.005, 0.01,
    0.05,
];

/// Process-wide counters that do not depend on the zone set.
#[derive(Debug)]
pub struct Global {
    /// Queries with no zone (REFUSED names, FORMERR, NOTIMP…).
    pub unzoned: Arc<QuerySlot>,
    /// Queries whose ECS option was valid (counted once their EDNS was judged).
    pub with_ecs: AtomicU64,
    /// Queries judged to carry no ECS option (with or without EDNS).
    pub without_ecs: AtomicU64,
    /// Answered ECS scope lengths: IPv4 0–32, IPv6 0–128.
    pub scope_v4: [AtomicU64; 33],
    /// Answered ECS scope lengths for IPv6 ECS addresses, indexed by the scope (0–128).
    pub scope_v6: [AtomicU64; 129],
    /// Responses sent with TC set, RRL slips included.
    pub truncated: AtomicU64,
    /// Queries that came over UDP, RRL-dropped ones included.
    pub udp: AtomicU64,
    /// Queries that came over TCP.
    pub tcp: AtomicU64,
    time_buckets: [AtomicU64; TIME_BUCKETS.len()],
    time_count: AtomicU64,
    /// Sum of answer times in nanoseconds.
    time_sum_ns: AtomicU64,
    /// Reloads that validated and took effect.
    pub reloads_ok: AtomicU64,
    /// Reloads rejected (nothing changed).
    pub reloads_failed: AtomicU64,
    /// UDP responses RRL dropped / sent truncated.
    pub rrl_dropped: AtomicU64,
    /// UDP responses RRL sent truncated (slipped) instead of dropping them.
    pub rrl_slipped: AtomicU64,
}

impl Default for Global {
    fn default() -> Self {
        Self {
            unzoned: Default::default(),
            with_ecs: AtomicU64::new(0),
            without_ecs: AtomicU64::new(0),
            scope_v4: std::array::from_fn(|_| AtomicU64::new(0)),
            scope_v6: std::array::from_fn(|_| AtomicU64::new(0)),
            truncated: AtomicU64::new(0),
            udp: AtomicU64::new(0),
            tcp: AtomicU64::new(0),
            time_buckets: Default::default(),
            time_count: AtomicU64::new(0),
            time_sum_ns: AtomicU64::new(0),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            rrl_dropped: AtomicU64::new(0),
            rrl_slipped: AtomicU64::new(0),
        }
    }
}

impl Global {
    /// Adds one answer time, in seconds, to the histogram: the first bucket of [`TIME_BUCKETS`] it
    /// fits in (none when longer than the last), the count and the sum.
    #[inline]
    pub fn observe_time(&self, seconds: f64) {
        for (i, b) in TIME_BUCKETS.iter().enumerate() {
            if seconds <= *b {
                self.time_buckets[i].fetch_add(1, Relaxed);
                break;
            }
        }
        self.time_count.fetch_add(1, Relaxed);
        self.time_sum_ns.fetch_add((seconds * 1e9) as u64, Relaxed);
    }

    /// Counts one answered ECS scope of the given family; a scope beyond the family's width is
    /// ignored.
    #[inline]
    pub fn observe_scope(&self, v4: bool, scope: u8) {
        let slot = if v4 {
            self.scope_v4.get(usize::from(scope))
        } else {
            self.scope_v6.get(usize::from(scope))
        };
        if let Some(s) = slot {
            s.fetch_add(1, Relaxed);
        }
    }
}

/// Counters of one AF_XDP receive queue (`listen_xdp`, feature `xdp`), registered when its socket
/// opens. Its thread is the only writer.
#[derive(Debug, Default)]
pub struct XdpQueueStats {
    /// The interface's receive queue.
    pub queue: u32,
    /// Frames taken from the socket's receive ring (the queries the XDP program redirected).
    pub rx: AtomicU64,
    /// Replies put on the socket's transmit ring.
    pub tx: AtomicU64,
    /// Frames received and given back with nothing sent: responses, RRL drops, headers that do
    /// not check out, messages too broken for even a FORMERR.
    pub unanswered: AtomicU64,
    /// Replies too large for their frame or the link, sent through the kernel's UDP socket
    /// instead (which fragments them like any socket reply).
    pub via_socket: AtomicU64,
    /// The kernel's count of frames it dropped for this socket (no room in the receive ring or
    /// no free frame in the fill ring), as last read.
    pub kernel_dropped: AtomicU64,
}

/// (zone, service, query type label, rcode label) of a query counter.
pub type QueryKey = (String, String, &'static str, &'static str);

/// Counters by name, so that a reload hands the same counters to the new zone set.
#[derive(Debug, Default)]
pub struct Registry {
    /// The counters that do not depend on the zone set.
    pub global: Global,
    queries: Mutex<HashMap<(String, String), Arc<QuerySlot>>>,
    answers: Mutex<HashMap<(String, String), Arc<AnswerCounts>>>,
    xdp: Mutex<Vec<Arc<XdpQueueStats>>>,
}

impl Registry {
    /// An empty registry, shared by the DNS workers, the control plane and the admin server.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Resolves the counters of every zone, service and region of `zones` (at load, not per
    /// query); counters of names that existed before are the same counters.
    pub fn slots(&self, zones: &ZoneSet) -> ZoneStats {
        let (Ok(mut q), Ok(mut a)) = (self.queries.lock(), self.answers.lock()) else {
            return ZoneStats::default();
        };
        let mut stats = ZoneStats::default();
        for z in &zones.zones {
            let origin = z.origin.to_ascii();
            let static_names = q
                .entry((origin.clone(), String::new()))
                .or_default()
                .clone();
            let regions: Arc<[String]> = z.regions.iter().map(|r| r.name.clone()).collect();
            let services = z
                .services
                .iter()
                .map(|s| {
                    let key = (origin.clone(), s.label.clone());
                    let answers = match a.get(&key) {
                        Some(c) if c.regions == regions => c.clone(),
                        old => {
                            // New, or the zone's regions changed: carry each region's count
                            // over by name.
                            let counts: Box<[AtomicU64]> = regions
                                .iter()
                                .map(|name| {
                                    let before = old.and_then(|o| {
                                        let i = o.regions.iter().position(|n| n == name)?;
                                        Some(o.counts[i].load(Relaxed))
                                    });
                                    AtomicU64::new(before.unwrap_or(0))
                                })
                                .collect();
                            let c = Arc::new(AnswerCounts {
                                regions: regions.clone(),
                                counts,
                            });
                            a.insert(key, c.clone());
                            c
                        }
                    };
                    ServiceSlot {
                        queries: q
                            .entry((origin.clone(), s.label.clone()))
                            .or_default()
                            .clone(),
                        answers,
                    }
                })
                .collect();
            stats.zones.push(ZoneSlot {
                static_names,
                services,
            });
        }
        stats
    }

    /// Queries per (zone, service, query type, rcode) so far, the names outside our zones first
    /// (zone and service empty), then by zone and service; zero counts are left out.
    pub fn query_counts(&self) -> Vec<(QueryKey, u64)> {
        let mut out = Vec::new();
        let mut push = |zone: &str, service: &str, slot: &QuerySlot| {
            for (ti, t) in QTYPES.iter().enumerate() {
                for (ri, r) in RCODES.iter().enumerate() {
                    let v = slot.counts[ti][ri].load(Relaxed);
                    if v > 0 {
                        out.push(((zone.to_string(), service.to_string(), *t, *r), v));
                    }
                }
            }
        };
        push("", "", &self.global.unzoned);
        if let Ok(q) = self.queries.lock() {
            let mut keys: Vec<_> = q.iter().collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            for ((zone, service), slot) in keys {
                push(zone, service, slot);
            }
        }
        out
    }

    /// Every query-path counter by a readable key (`udp`, `ecs_scope_v4_24`, `queries
    /// zone/service/A/NOERROR`…), the answer-time histogram excepted: for comparing two
    /// registries in tests and tools.
    pub fn counters(&self) -> std::collections::BTreeMap<String, u64> {
        let g = &self.global;
        let mut out = std::collections::BTreeMap::new();
        for (k, v) in [
            ("udp", &g.udp),
            ("tcp", &g.tcp),
            ("with_ecs", &g.with_ecs),
            ("without_ecs", &g.without_ecs),
            ("truncated", &g.truncated),
            ("rrl_dropped", &g.rrl_dropped),
            ("rrl_slipped", &g.rrl_slipped),
            ("answered", &g.time_count),
        ] {
            out.insert(k.to_string(), v.load(Relaxed));
        }
        for (fam, arr) in [("v4", &g.scope_v4[..]), ("v6", &g.scope_v6[..])] {
            for (p, c) in arr.iter().enumerate() {
                let v = c.load(Relaxed);
                if v > 0 {
                    out.insert(format!("ecs_scope_{fam}_{p}"), v);
                }
            }
        }
        for ((z, s, t, r), v) in self.query_counts() {
            out.insert(format!("queries {z}/{s}/{t}/{r}"), v);
        }
        for ((z, s, r), v) in self.answer_counts() {
            out.insert(format!("answers {z}/{s}/{r}"), v);
        }
        out
    }

    /// The answer-time histogram: per-bucket counts (bounds [`TIME_BUCKETS`]), the total count
    /// and the sum in seconds.
    pub fn answer_times(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let g = &self.global;
        let buckets = TIME_BUCKETS
            .iter()
            .zip(&g.time_buckets)
            .map(|(b, c)| (*b, c.load(Relaxed)))
            .collect();
        (
            buckets,
            g.time_count.load(Relaxed),
            g.time_sum_ns.load(Relaxed) as f64 / 1e9,
        )
    }

    /// The counters of AF_XDP receive queue `queue`, created on first use.
    pub fn xdp_queue(&self, queue: u32) -> Arc<XdpQueueStats> {
        let Ok(mut all) = self.xdp.lock() else {
            return Arc::new(XdpQueueStats {
                queue,
                ..Default::default()
            });
        };
        if let Some(q) = all.iter().find(|q| q.queue == queue) {
            return q.clone();
        }
        let q = Arc::new(XdpQueueStats {
            queue,
            ..Default::default()
        });
        all.push(q.clone());
        all.sort_by_key(|q| q.queue);
        q
    }

    /// The AF_XDP queues' counters, by queue; empty without `listen_xdp`.
    pub fn xdp_queues(&self) -> Vec<Arc<XdpQueueStats>> {
        self.xdp.lock().map(|q| q.clone()).unwrap_or_default()
    }

    /// Answers per (zone, service, region) so far; regions never answered are left out.
    pub fn answer_counts(&self) -> Vec<((String, String, String), u64)> {
        let Ok(a) = self.answers.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for ((zone, service), c) in a.iter() {
            for (name, n) in c.regions.iter().zip(c.counts.iter()) {
                let n = n.load(Relaxed);
                if n > 0 {
                    out.push(((zone.clone(), service.clone(), name.clone()), n));
                }
            }
        }
        out
    }
}
