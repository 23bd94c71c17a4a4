//! `GET /metrics`: the query-path counters of [`metrics`](crate::metrics), the TCP side's and
//! the health runner's status, encoded with prometheus-client at scrape time. Every family is
//! one small function; label values are names, never indices.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::dns::tcp::TcpStats;
use crate::health::HealthStatus;
use crate::health::runner::{ProbeStatus, RegionStatus};
use crate::metrics::Registry;

/// Encodes everything at scrape time.
#[derive(Debug)]
pub struct Scrape {
    pub registry: Arc<Registry>,
    pub status: Arc<arc_swap::ArcSwap<HealthStatus>>,
    pub tcp: Arc<TcpStats>,
    /// The fleet's etcd session, in cluster mode.
    pub cluster: Option<crate::cluster::ClusterHandle>,
    /// What queries are answered from (the signed zones' signature caches).
    pub served: Arc<arc_swap::ArcSwap<crate::served::Served>>,
}

type Labels = Vec<(&'static str, String)>;
type Enc<'a, 'b> = &'a mut DescriptorEncoder<'b>;

fn counter(e: Enc<'_, '_>, name: &str, help: &str, rows: &[(Labels, u64)]) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(e: Enc<'_, '_>, name: &str, help: &str, rows: &[(Labels, f64)]) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

/// A counter family with no labels.
fn single(e: Enc<'_, '_>, name: &str, help: &str, v: u64) -> std::fmt::Result {
    counter(e, name, help, &[(vec![], v)])
}

/// One label, one value each.
fn by(label: &'static str, rows: &[(&str, u64)]) -> Vec<(Labels, u64)> {
    rows.iter()
        .map(|(k, v)| (vec![(label, k.to_string())], *v))
        .collect()
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        self.queries(&mut e)?;
        self.edns(&mut e)?;
        self.transport(&mut e)?;
        answer_times(&mut e, &self.registry)?;
        self.health(&mut e)?;
        self.fleet(&mut e)?;
        self.dnssec(&mut e)?;
        self.xdp(&mut e)?;
        gauge(
            &mut e,
            "gslbd_build_info",
            "Build information.",
            &[(
                vec![("version", env!("CARGO_PKG_VERSION").to_string())],
                1.0,
            )],
        )
    }
}

impl Scrape {
    /// Queries by zone, service, type and rcode; steered answers by region.
    fn queries(&self, e: Enc<'_, '_>) -> std::fmt::Result {
        let rows: Vec<(Labels, u64)> = self
            .registry
            .query_counts()
            .into_iter()
            .map(|((zone, service, t, r), v)| {
                let labels = vec![
                    ("zone", zone),
                    ("service", service),
                    ("qtype", t.to_string()),
                    ("rcode", r.to_string()),
                ];
                (labels, v)
            })
            .collect();
        counter(
            e,
            "gslbd_queries",
            "DNS queries by zone, service (empty: static names), query type and rcode.",
            &rows,
        )?;
        let mut answers = self.registry.answer_counts();
        answers.sort();
        let rows: Vec<(Labels, u64)> = answers
            .into_iter()
            .map(|((z, s, r), v)| (vec![("zone", z), ("service", s), ("region", r)], v))
            .collect();
        counter(
            e,
            "gslbd_answers",
            "Steered answers naming each region.",
            &rows,
        )
    }

    /// ECS use and scopes, truncation.
    fn edns(&self, e: Enc<'_, '_>) -> std::fmt::Result {
        let g = &self.registry.global;
        counter(
            e,
            "gslbd_ecs_queries",
            "Queries with and without an EDNS Client Subnet option.",
            &by(
                "ecs",
                &[
                    ("true", g.with_ecs.load(Relaxed)),
                    ("false", g.without_ecs.load(Relaxed)),
                ],
            ),
        )?;
        let mut rows = Vec::new();
        for (fam, arr) in [("ipv4", &g.scope_v4[..]), ("ipv6", &g.scope_v6[..])] {
            for (p, c) in arr.iter().enumerate() {
                let v = c.load(Relaxed);
                if v > 0 {
                    let labels = vec![("family", fam.to_string()), ("scope", p.to_string())];
                    rows.push((labels, v));
                }
            }
        }
        counter(
            e,
            "gslbd_ecs_scope",
            "ECS answers by family and scope prefix length answered.",
            &rows,
        )?;
        single(
            e,
            "gslbd_truncated",
            "UDP answers sent truncated (TC).",
            g.truncated.load(Relaxed),
        )
    }

    /// Transports, TCP connections, RRL and reloads.
    fn transport(&self, e: Enc<'_, '_>) -> std::fmt::Result {
        let g = &self.registry.global;
        let tcp = &self.tcp;
        counter(
            e,
            "gslbd_transport_queries",
            "Queries by transport.",
            &by(
                "protocol",
                &[("udp", g.udp.load(Relaxed)), ("tcp", g.tcp.load(Relaxed))],
            ),
        )?;
        counter(
            e,
            "gslbd_config_reloads",
            "Configuration reloads by result.",
            &by(
                "result",
                &[
                    ("ok", g.reloads_ok.load(Relaxed)),
                    ("failed", g.reloads_failed.load(Relaxed)),
                ],
            ),
        )?;
        single(
            e,
            "gslbd_tcp_connections",
            "TCP connections accepted.",
            tcp.accepted.load(Relaxed),
        )?;
        single(
            e,
            "gslbd_tcp_refused",
            "TCP connections closed at once because a limit was reached and every connection in the way was busy.",
            tcp.refused.load(Relaxed),
        )?;
        single(
            e,
            "gslbd_tcp_evicted",
            "Idle TCP connections closed to make room for a new one when a limit was reached.",
            tcp.evicted.load(Relaxed),
        )?;
        counter(
            e,
            "gslbd_rrl_limited",
            "UDP responses limited by response rate limiting, by action.",
            &by(
                "action",
                &[
                    ("dropped", g.rrl_dropped.load(Relaxed)),
                    ("slipped", g.rrl_slipped.load(Relaxed)),
                ],
            ),
        )?;
        gauge(
            e,
            "gslbd_tcp_connections_open",
            "TCP connections open now.",
            &[(vec![], tcp.open.load(Relaxed) as f64)],
        )
    }

    /// Regions, VIPs, probes and transitions, from the runner's status.
    fn health(&self, e: Enc<'_, '_>) -> std::fmt::Result {
        let st = self.status.load();
        let mut rows = HealthRows::default();
        for r in &st.regions {
            rows.add(r);
        }
        rows.encode(e)?;
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
            e,
            "gslbd_health_transitions",
            "Health transitions by target (zone/region[/vip]) and new state.",
            &rows,
        )
    }
}

impl Scrape {
    /// AF_XDP queues (`listen_xdp`): frames in and out, what went unanswered or through the
    /// kernel, and the kernel's drops. Nothing without `listen_xdp`.
    fn xdp(&self, e: Enc<'_, '_>) -> std::fmt::Result {
        let queues = self.registry.xdp_queues();
        if queues.is_empty() {
            return Ok(());
        }
        let per_queue = |f: &dyn Fn(&crate::metrics::XdpQueueStats) -> u64| -> Vec<(Labels, u64)> {
            queues
                .iter()
                .map(|q| (vec![("queue", q.queue.to_string())], f(q)))
                .collect()
        };
        let mut packets = Vec::new();
        for q in &queues {
            for (direction, v) in [("rx", &q.rx), ("tx", &q.tx)] {
                let labels = vec![
                    ("queue", q.queue.to_string()),
                    ("direction", direction.to_string()),
                ];
                packets.push((labels, v.load(Relaxed)));
            }
        }
        counter(
            e,
            "gslbd_xdp_packets",
            "Frames received from (rx) and replies sent to (tx) the AF_XDP socket of each receive queue.",
            &packets,
        )?;
        counter(
            e,
            "gslbd_xdp_unanswered",
            "AF_XDP frames given back with nothing sent (responses, RRL drops, bad headers).",
            &per_queue(&|q| q.unanswered.load(Relaxed)),
        )?;
        counter(
            e,
            "gslbd_xdp_socket_replies",
            "Replies too large for their AF_XDP frame or the link, sent through the UDP socket.",
            &per_queue(&|q| q.via_socket.load(Relaxed)),
        )?;
        counter(
            e,
            "gslbd_xdp_kernel_dropped",
            "Frames the kernel dropped for an AF_XDP socket (receive ring full, no free frame).",
            &per_queue(&|q| q.kernel_dropped.load(Relaxed)),
        )
    }

    /// Signed zones: RRsets signed since the load, and signatures held.
    fn dnssec(&self, e: Enc<'_, '_>) -> std::fmt::Result {
        let served = self.served.load();
        let signed: Vec<_> = served
            .zones
            .zones
            .iter()
            .filter_map(|z| z.dnssec.as_ref().map(|sg| (z.origin.to_ascii(), sg)))
            .collect();
        if signed.is_empty() {
            return Ok(());
        }
        counter(
            e,
            "gslbd_dnssec_rrsets_signed",
            "RRsets signed since the zone was loaded: at load, by the refresher ahead of the \
             refresh time, and on the query path (an RRset not seen before: a denied name, a \
             partial VIP set).",
            &signed
                .iter()
                .map(|(z, sg)| (vec![("zone", z.clone())], sg.cache.signed()))
                .collect::<Vec<_>>(),
        )?;
        gauge(
            e,
            "gslbd_dnssec_cached_rrsets",
            "RRsets whose signatures are held for reuse (bounded by [dnssec] cache_size).",
            &signed
                .iter()
                .map(|(z, sg)| (vec![("zone", z.clone())], sg.cache.len() as f64))
                .collect::<Vec<_>>(),
        )
    }

    /// Cluster mode: etcd session, members, observations and disagreements.
    fn fleet(&self, e: Enc<'_, '_>) -> std::fmt::Result {
        let Some(c) = &self.cluster else {
            return Ok(());
        };
        let st = self.status.load();
        let (members, observations, disagreements) = st.fleet.as_ref().map_or((0, 0, 0), |f| {
            let obs: usize = f.targets.iter().map(|t| t.votes.len()).sum();
            (f.members.len(), obs, f.disagreements)
        });
        gauge(
            e,
            "gslbd_cluster_connected",
            "1 while the etcd session is up (else our own probes decide).",
            &[(vec![], flag(c.stats.connected.load(Relaxed)))],
        )?;
        gauge(
            e,
            "gslbd_cluster_members",
            "Live fleet members (leases alive), this instance included.",
            &[(vec![], members as f64)],
        )?;
        gauge(
            e,
            "gslbd_cluster_observations",
            "Observations in the fleet view (members × targets observed).",
            &[(vec![], observations as f64)],
        )?;
        gauge(
            e,
            "gslbd_cluster_disagreements",
            "Targets the live members disagree on (up for some, down for others).",
            &[(vec![], disagreements as f64)],
        )?;
        single(
            e,
            "gslbd_cluster_etcd_errors",
            "etcd calls that failed or timed out (each ends the session; it reconnects).",
            c.stats.errors.load(Relaxed),
        )?;
        single(
            e,
            "gslbd_cluster_writes",
            "Keys written to etcd (observations on change, membership, overrides).",
            c.stats.writes.load(Relaxed),
        )
    }
}

/// The answer-time histogram. prometheus-client accumulates the buckets itself: hand it
/// per-bucket counts, and whatever fell above the last bound to +Inf.
fn answer_times(e: Enc<'_, '_>, registry: &Registry) -> std::fmt::Result {
    let (mut all, count, sum) = registry.answer_times();
    let bucketed: u64 = all.iter().map(|(_, c)| c).sum();
    all.push((f64::INFINITY, count.saturating_sub(bucketed)));
    let mut m = e.encode_descriptor(
        "gslbd_answer_duration_seconds",
        "Time from parsed query to encoded answer.",
        None,
        MetricType::Histogram,
    )?;
    m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &all, None)
}

/// The rows of the per-region and per-probe families.
#[derive(Default)]
struct HealthRows {
    up: Vec<(Labels, f64)>,
    eligible: Vec<(Labels, f64)>,
    forced: Vec<(Labels, f64)>,
    rtt: Vec<(Labels, f64)>,
    load: Vec<(Labels, f64)>,
    load_age: Vec<(Labels, f64)>,
    vip_up: Vec<(Labels, f64)>,
    probes: Vec<(Labels, u64)>,
    probe_rtt: Vec<(Labels, f64)>,
    expires: Vec<(Labels, f64)>,
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

impl HealthRows {
    fn add(&mut self, r: &RegionStatus) {
        let l = || vec![("zone", r.zone.clone()), ("region", r.name.clone())];
        self.up.push((l(), flag(r.up)));
        self.eligible.push((l(), flag(r.eligible)));
        for ov in ["force-up", "force-down", "drain"] {
            let mut ll = l();
            ll.push(("state", ov.to_string()));
            self.forced.push((ll, flag(r.override_.as_str() == ov)));
        }
        if let Some(t) = r.override_until {
            let mut ll = l();
            ll.push(("vip", String::new()));
            self.expires.push((ll, t as f64));
        }
        if let Some(v) = r.rtt_ms {
            self.rtt.push((l(), v / 1000.0));
        }
        if let Some(v) = r.load {
            self.load.push((l(), v));
        }
        if let Some(v) = r.load_age_s {
            self.load_age.push((l(), v));
        }
        let mut targets: Vec<(String, &ProbeStatus)> = Vec::new();
        if let Some(p) = &r.probe {
            targets.push((String::new(), p));
        }
        for v in &r.vips {
            let mut labels = l();
            labels.push(("vip", v.addr.to_string()));
            if let Some(t) = v.override_until {
                self.expires.push((labels.clone(), t as f64));
            }
            self.vip_up.push((labels, flag(v.up)));
            if let Some(p) = &v.probe {
                targets.push((v.addr.to_string(), p));
            }
        }
        for (vip, p) in targets {
            self.add_probe(r, vip, p);
        }
    }

    fn add_probe(&mut self, r: &RegionStatus, vip: String, p: &ProbeStatus) {
        let base = || {
            vec![
                ("zone", r.zone.clone()),
                ("region", r.name.clone()),
                ("vip", vip.clone()),
            ]
        };
        let mut ok = base();
        ok.push(("result", "success".into()));
        self.probes.push((ok, p.successes));
        for (reason, n) in &p.failures_by_reason {
            let mut f = base();
            f.push(("result", reason.to_string()));
            self.probes.push((f, *n));
        }
        if let Some(v) = p.rtt_ms {
            self.probe_rtt.push((base(), v / 1000.0));
        }
    }

    fn encode(&self, e: Enc<'_, '_>) -> std::fmt::Result {
        for (name, help, rows) in [
            (
                "gslbd_region_up",
                "1 when probes (and VIP overrides) say the region is up.",
                &self.up,
            ),
            (
                "gslbd_region_eligible",
                "1 when new answers may point at the region.",
                &self.eligible,
            ),
            (
                "gslbd_region_override",
                "1 for the operator override in force.",
                &self.forced,
            ),
            (
                "gslbd_region_rtt_seconds",
                "Moving average of the region's probe round-trip time.",
                &self.rtt,
            ),
            (
                "gslbd_region_load",
                "Region load as a fraction of capacity (fresh readings only).",
                &self.load,
            ),
            (
                "gslbd_region_load_age_seconds",
                "Age of the region's load reading.",
                &self.load_age,
            ),
            ("gslbd_vip_up", "1 when the VIP is answered.", &self.vip_up),
        ] {
            gauge(e, name, help, rows)?;
        }
        counter(
            e,
            "gslbd_probes",
            "Probe results by target (vip empty: the region) and result (success or failure reason).",
            &self.probes,
        )?;
        gauge(
            e,
            "gslbd_probe_rtt_seconds",
            "Moving average of each probe target's round-trip time.",
            &self.probe_rtt,
        )?;
        gauge(
            e,
            "gslbd_override_expires_timestamp_seconds",
            "When a timed override returns to auto (Unix time), by target (vip empty: the region).",
            &self.expires,
        )
    }
}
