//! Metrics. The query path only touches atomics: every counter it bumps is resolved to a slot
//! when a zone set is loaded ([`Registry::attach`]), so a query costs no lock, no hash lookup and
//! no allocation. Slots are kept by name in the registry, so counts carry over reloads. At
//! scrape time a prometheus-client [`Collector`] encodes the atomics and the health runner's
//! status as text.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::health::HealthStatus;
use crate::zone::ZoneSet;

/// Query types with their own label value; everything else is `other`.
pub const QTYPES: [&str; 14] = [
    "A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS", "SOA", "PTR", "CAA", "ANY", "DS", "AXFR",
    "other",
];
/// Response codes with their own label value.
pub const RCODES: [&str; 8] = [
    "NOERROR", "NXDOMAIN", "REFUSED", "FORMERR", "NOTIMP", "SERVFAIL", "BADVERS", "other",
];

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
    #[inline]
    pub fn count(&self, qtype: RecordType, rcode: ResponseCode) {
        self.counts[qtype_index(qtype)][rcode_index(rcode)].fetch_add(1, Relaxed);
    }
}

/// Counters of one service: its queries and the answers per region.
#[derive(Debug)]
pub struct ServiceSlot {
    pub queries: Arc<QuerySlot>,
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
    pub services: Vec<ServiceSlot>,
}

/// The counters a zone set's queries bump, resolved at load.
#[derive(Debug, Default)]
pub struct ZoneStats {
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
    pub with_ecs: AtomicU64,
    pub without_ecs: AtomicU64,
    /// Answered ECS scope lengths: IPv4 0–32, IPv6 0–128.
    pub scope_v4: [AtomicU64; 33],
    pub scope_v6: [AtomicU64; 129],
    pub truncated: AtomicU64,
    pub udp: AtomicU64,
    pub tcp: AtomicU64,
    time_buckets: [AtomicU64; TIME_BUCKETS.len()],
    time_count: AtomicU64,
    /// Sum of answer times in nanoseconds.
    time_sum_ns: AtomicU64,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// UDP responses RRL dropped / sent truncated.
    pub rrl_dropped: AtomicU64,
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

/// Counters by name, so that a reload hands the same counters to the new zone set.
#[derive(Debug, Default)]
pub struct Registry {
    pub global: Global,
    queries: Mutex<HashMap<(String, String), Arc<QuerySlot>>>,
    answers: Mutex<HashMap<(String, String), Arc<AnswerCounts>>>,
}

impl Registry {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Resolves the counters of every zone, service and region of `zones` (at load, not per query).
    pub fn attach(&self, zones: &mut ZoneSet) {
        let (Ok(mut q), Ok(mut a)) = (self.queries.lock(), self.answers.lock()) else {
            return;
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
        zones.stats = stats;
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

/// Encodes everything at scrape time.
#[derive(Debug)]
pub struct Scrape {
    pub registry: Arc<Registry>,
    pub status: Arc<arc_swap::ArcSwap<HealthStatus>>,
    pub tcp: Arc<crate::dns::tcp::TcpStats>,
}

type Labels = Vec<(&'static str, String)>;

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, f64)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let g = &self.registry.global;
        // Queries by zone, service, type and rcode.
        let mut rows = Vec::new();
        let mut push = |zone: &str, service: &str, slot: &QuerySlot| {
            for (ti, t) in QTYPES.iter().enumerate() {
                for (ri, r) in RCODES.iter().enumerate() {
                    let v = slot.counts[ti][ri].load(Relaxed);
                    if v > 0 {
                        rows.push((
                            vec![
                                ("zone", zone.to_string()),
                                ("service", service.to_string()),
                                ("qtype", t.to_string()),
                                ("rcode", r.to_string()),
                            ],
                            v,
                        ));
                    }
                }
            }
        };
        push("", "", &g.unzoned);
        if let Ok(q) = self.registry.queries.lock() {
            let mut keys: Vec<_> = q.iter().collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            for ((zone, service), slot) in keys {
                push(zone, service, slot);
            }
        }
        counter(
            &mut e,
            "gslbd_queries",
            "DNS queries by zone, service (empty: static names), query type and rcode.",
            &rows,
        )?;
        let mut answers: Vec<_> = self.registry.answer_counts();
        answers.sort();
        let rows: Vec<(Labels, u64)> = answers
            .into_iter()
            .map(|((z, s, r), v)| (vec![("zone", z), ("service", s), ("region", r)], v))
            .collect();
        counter(
            &mut e,
            "gslbd_answers",
            "Steered answers naming each region.",
            &rows,
        )?;
        counter(
            &mut e,
            "gslbd_ecs_queries",
            "Queries with and without an EDNS Client Subnet option.",
            &[
                (vec![("ecs", "true".into())], g.with_ecs.load(Relaxed)),
                (vec![("ecs", "false".into())], g.without_ecs.load(Relaxed)),
            ],
        )?;
        let mut rows = Vec::new();
        for (fam, arr) in [("ipv4", &g.scope_v4[..]), ("ipv6", &g.scope_v6[..])] {
            for (p, c) in arr.iter().enumerate() {
                let v = c.load(Relaxed);
                if v > 0 {
                    rows.push((
                        vec![("family", fam.to_string()), ("scope", p.to_string())],
                        v,
                    ));
                }
            }
        }
        counter(
            &mut e,
            "gslbd_ecs_scope",
            "ECS answers by family and scope prefix length answered.",
            &rows,
        )?;
        counter(
            &mut e,
            "gslbd_truncated",
            "UDP answers sent truncated (TC).",
            &[(vec![], g.truncated.load(Relaxed))],
        )?;
        counter(
            &mut e,
            "gslbd_transport_queries",
            "Queries by transport.",
            &[
                (vec![("protocol", "udp".into())], g.udp.load(Relaxed)),
                (vec![("protocol", "tcp".into())], g.tcp.load(Relaxed)),
            ],
        )?;
        {
            // prometheus-client accumulates the buckets itself: hand it per-bucket counts, and
            // whatever fell above the last bound to +Inf.
            let count = g.time_count.load(Relaxed);
            let sum = g.time_sum_ns.load(Relaxed) as f64 / 1e9;
            let mut all: Vec<(f64, u64)> = TIME_BUCKETS
                .iter()
                .zip(&g.time_buckets)
                .map(|(b, c)| (*b, c.load(Relaxed)))
                .collect();
            let bucketed: u64 = all.iter().map(|(_, c)| c).sum();
            all.push((f64::INFINITY, count.saturating_sub(bucketed)));
            let mut m = e.encode_descriptor(
                "gslbd_answer_duration_seconds",
                "Time from parsed query to encoded answer.",
                None,
                MetricType::Histogram,
            )?;
            m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &all, None)?;
        }
        counter(
            &mut e,
            "gslbd_config_reloads",
            "Configuration reloads by result.",
            &[
                (vec![("result", "ok".into())], g.reloads_ok.load(Relaxed)),
                (
                    vec![("result", "failed".into())],
                    g.reloads_failed.load(Relaxed),
                ),
            ],
        )?;
        counter(
            &mut e,
            "gslbd_tcp_connections",
            "TCP connections accepted.",
            &[(vec![], self.tcp.accepted.load(Relaxed))],
        )?;
        counter(
            &mut e,
            "gslbd_tcp_refused",
            "TCP connections closed at once because a limit was reached and every connection in the way was busy.",
            &[(vec![], self.tcp.refused.load(Relaxed))],
        )?;
        counter(
            &mut e,
            "gslbd_tcp_evicted",
            "Idle TCP connections closed to make room for a new one when a limit was reached.",
            &[(vec![], self.tcp.evicted.load(Relaxed))],
        )?;
        counter(
            &mut e,
            "gslbd_rrl_limited",
            "UDP responses limited by response rate limiting, by action.",
            &[
                (
                    vec![("action", "dropped".into())],
                    g.rrl_dropped.load(Relaxed),
                ),
                (
                    vec![("action", "slipped".into())],
                    g.rrl_slipped.load(Relaxed),
                ),
            ],
        )?;
        gauge(
            &mut e,
            "gslbd_tcp_connections_open",
            "TCP connections open now.",
            &[(vec![], self.tcp.open.load(Relaxed) as f64)],
        )?;
        gauge(
            &mut e,
            "gslbd_build_info",
            "Build information.",
            &[(
                vec![("version", env!("CARGO_PKG_VERSION").to_string())],
                1.0,
            )],
        )?;

        // Health, from the runner's status.
        let st = self.status.load();
        let mut up = Vec::new();
        let mut eligible = Vec::new();
        let mut forced = Vec::new();
        let mut rtt = Vec::new();
        let mut load = Vec::new();
        let mut load_age = Vec::new();
        let mut vip_up = Vec::new();
        let mut probes = Vec::new();
        let mut probe_rtt = Vec::new();
        for r in &st.regions {
            let l = || vec![("zone", r.zone.clone()), ("region", r.name.clone())];
            up.push((l(), if r.up { 1.0 } else { 0.0 }));
            eligible.push((l(), if r.eligible { 1.0 } else { 0.0 }));
            for ov in ["force-up", "force-down", "drain"] {
                let mut ll = l();
                ll.push(("state", ov.to_string()));
                forced.push((ll, if r.override_.as_str() == ov { 1.0 } else { 0.0 }));
            }
            if let Some(v) = r.rtt_ms {
                rtt.push((l(), v / 1000.0));
            }
            if let Some(v) = r.load {
                load.push((l(), v));
            }
            if let Some(v) = r.load_age_s {
                load_age.push((l(), v));
            }
            let mut targets: Vec<(String, &crate::health::runner::ProbeStatus)> = Vec::new();
            if let Some(p) = &r.probe {
                targets.push((String::new(), p));
            }
            for v in &r.vips {
                vip_up.push((
                    vec![
                        ("zone", r.zone.clone()),
                        ("region", r.name.clone()),
                        ("vip", v.addr.to_string()),
                    ],
                    if v.up { 1.0 } else { 0.0 },
                ));
                if let Some(p) = &v.probe {
                    targets.push((v.addr.to_string(), p));
                }
            }
            for (vip, p) in targets {
                let base = || {
                    vec![
                        ("zone", r.zone.clone()),
                        ("region", r.name.clone()),
                        ("vip", vip.clone()),
                    ]
                };
                let mut ok = base();
                ok.push(("result", "success".into()));
                probes.push((ok, p.successes));
                for (reason, n) in &p.failures_by_reason {
                    let mut f = base();
                    f.push(("result", reason.to_string()));
                    probes.push((f, *n));
                }
                if let Some(v) = p.rtt_ms {
                    probe_rtt.push((base(), v / 1000.0));
                }
            }
        }
        gauge(
            &mut e,
            "gslbd_region_up",
            "1 when probes (and VIP overrides) say the region is up.",
            &up,
        )?;
        gauge(
            &mut e,
            "gslbd_region_eligible",
            "1 when new answers may point at the region.",
            &eligible,
        )?;
        gauge(
            &mut e,
            "gslbd_region_override",
            "1 for the operator override in force.",
            &forced,
        )?;
        gauge(
            &mut e,
            "gslbd_region_rtt_seconds",
            "Moving average of the region's probe round-trip time.",
            &rtt,
        )?;
        gauge(
            &mut e,
            "gslbd_region_load",
            "Region load as a fraction of capacity (fresh readings only).",
            &load,
        )?;
        gauge(
            &mut e,
            "gslbd_region_load_age_seconds",
            "Age of the region's load reading.",
            &load_age,
        )?;
        gauge(
            &mut e,
            "gslbd_vip_up",
            "1 when the VIP is answered.",
            &vip_up,
        )?;
        counter(
            &mut e,
            "gslbd_probes",
            "Probe results by target (vip empty: the region) and result (success or failure reason).",
            &probes,
        )?;
        gauge(
            &mut e,
            "gslbd_probe_rtt_seconds",
            "Moving average of each probe target's round-trip time.",
            &probe_rtt,
        )?;
        let mut tr: HashMap<(String, String), u64> = HashMap::new();
        for t in &st.transition_counts {
            *tr.entry((t.0.clone(), t.1.to_string())).or_default() += t.2;
        }
        let mut rows: Vec<(Labels, u64)> = tr
            .into_iter()
            .map(|((target, to), n)| (vec![("target", target), ("to", to)], n))
            .collect();
        rows.sort();
        counter(
            &mut e,
            "gslbd_health_transitions",
            "Health transitions by target (zone/region[/vip]) and new state.",
            &rows,
        )?;
        Ok(())
    }
}
