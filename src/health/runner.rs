//! The probe runner: the only writer of health. One task per probe target sends results to one
//! aggregator loop, which applies rise/fall and overrides, logs transitions, and publishes
//! [`Served`] snapshots. Runs on its own thread so that probes never share a runtime with DNS.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rand::Rng;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use super::fleet::{DownRule, FleetInput, Observation};
use super::probe::{self, ProbeSpec, Sample};
use super::state::{Override, TargetState};
use super::{HealthSnapshot, RegionView, Served};
use crate::served::Catalog;
use crate::zone::{Region, Zone};

/// A probe target, stable across reloads: zone origin, region name, VIP (for per-VIP probes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    /// The zone's origin, lower case, without the trailing dot.
    pub zone: String,
    /// The region's name as written in the zone file.
    pub region: String,
    /// The VIP a per-VIP probe checks; `None` for the region as a whole.
    pub vip: Option<IpAddr>,
}

impl std::fmt::Display for TargetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.vip {
            Some(v) => write!(f, "{}/{}/{}", self.zone, self.region, v),
            None => write!(f, "{}/{}", self.zone, self.region),
        }
    }
}

impl TargetKey {
    /// Parses `zone/region[/vip]` (the state file's keys).
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.splitn(3, '/');
        let zone = it.next()?.trim_end_matches('.').to_ascii_lowercase();
        let region = it.next()?.to_string();
        let vip = match it.next() {
            Some(v) => Some(v.parse().ok()?),
            None => None,
        };
        if zone.is_empty() || region.is_empty() {
            return None;
        }
        Some(Self { zone, region, vip })
    }
}

fn zone_key(z: &Zone) -> String {
    z.origin
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// A health transition, for logs and status.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    /// The target, as `zone/region[/vip]`.
    pub target: String,
    /// The state before: `up`/`down` for a probe flip, the override's name for an operator change.
    pub from: &'static str,
    /// The state after, spelled as `from`.
    pub to: &'static str,
    /// Why: the rise/fall streak (with the last failure) or `operator override`.
    pub reason: String,
    /// Seconds since the runner started.
    pub at: f64,
}

/// Everything the runner knows, for `/v1/status`, tests and explain.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealthStatus {
    /// Every region of every zone, in zone then region order.
    pub regions: Vec<RegionStatus>,
    /// The most recent transitions (at most 200), oldest first.
    pub transitions: Vec<Transition>,
    /// Transitions since start by (target, new state), for metrics.
    #[serde(skip)]
    pub transition_counts: Vec<(String, &'static str, u64)>,
    /// The fleet view, in cluster mode.
    pub fleet: Option<FleetStatus>,
}

/// The fleet as this instance sees it (`/v1/cluster`, the status page, metrics).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FleetStatus {
    /// This instance's name.
    pub instance: String,
    /// The down rule.
    pub rule: String,
    /// Whether etcd is in reach (else our own probes decide, with the last overrides known).
    pub connected: bool,
    /// The live members and what they serve.
    pub members: BTreeMap<String, super::fleet::Member>,
    /// Every probe target: each member's observation and the fleet's verdict.
    pub targets: Vec<TargetFleet>,
    /// Zones whose files differ between members (by digest).
    pub zone_mismatches: Vec<String>,
    /// Targets on which the live members disagree (up for some, down for others).
    pub disagreements: usize,
}

/// One probe target across the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct TargetFleet {
    /// `zone/region[/vip]`.
    pub target: String,
    /// The fleet's verdict (this instance's own state when etcd is out of reach).
    pub up: bool,
    /// Members voting.
    pub voters: u32,
    /// Of them, those seeing it down.
    pub down: u32,
    /// Each member's observation.
    pub votes: BTreeMap<String, Observation>,
}

/// One region's health as `/v1/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RegionStatus {
    /// The zone's origin, lower case, without the trailing dot.
    pub zone: String,
    /// The region's name.
    pub name: String,
    /// The region's `Region::id` (its index in the health snapshot).
    pub id: usize,
    /// Latitude in degrees, from the zone file.
    pub lat: f64,
    /// Longitude in degrees, from the zone file.
    pub lon: f64,
    /// Probes (and VIP overrides) say up.
    pub up: bool,
    /// New answers may point here.
    pub eligible: bool,
    /// The operator's override of the region (`auto` when none).
    #[serde(rename = "override")]
    pub override_: Override,
    /// When a timed override of the region returns to `auto` (Unix seconds).
    pub override_until: Option<u64>,
    /// The hostname a region answered by name points to (`cname`); `None` for VIP regions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
    /// The mean of its probes' RTT averages, milliseconds; `None` before any success.
    pub rtt_ms: Option<f64>,
    /// The load in force: the operator's, else the highest fresh probe reading; `None` when
    /// neither.
    pub load: Option<f64>,
    /// Age of that load reading in seconds (0 for an operator's load).
    pub load_age_s: Option<f64>,
    /// Each VIP, in the zone file's order.
    pub vips: Vec<VipStatus>,
    /// The region-level probe, when the region is probed as a whole.
    pub probe: Option<ProbeStatus>,
}

/// One VIP's health as `/v1/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct VipStatus {
    /// The VIP's address.
    pub addr: IpAddr,
    /// May be answered: its probe (or the region's, when the VIP has none) says up after its
    /// override, and it is not drained.
    pub up: bool,
    /// The operator's override of this VIP (`auto` when none).
    #[serde(rename = "override")]
    pub override_: Override,
    /// When a timed override of the VIP returns to `auto` (Unix seconds).
    pub override_until: Option<u64>,
    /// The VIP's own probe; `None` when only the region is probed (or nothing).
    pub probe: Option<ProbeStatus>,
}

/// One probe target's counters and state, as `/v1/status` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeStatus {
    /// The probed state after rise/fall, before overrides.
    pub up: bool,
    /// Whether any result has arrived yet (before that, `up` is the configured initial state).
    pub probed: bool,
    /// RTT moving average of successful probes, milliseconds; `None` before the first success.
    pub rtt_ms: Option<f64>,
    /// Successful probes so far.
    pub successes: u64,
    /// Failed probes so far.
    pub failures: u64,
    /// Failures by reason (`timeout`, `refused`, …), only those seen.
    pub failures_by_reason: Vec<(&'static str, u64)>,
    /// The most recent result; `None` before the first.
    pub last: Option<super::state::LastResult>,
}

impl HealthStatus {
    /// The status of region `name` of `zone` (lower case; a trailing dot is ignored); `None` when
    /// there is no such region.
    pub fn region(&self, zone: &str, name: &str) -> Option<&RegionStatus> {
        let zone = zone.trim_end_matches('.');
        self.regions
            .iter()
            .find(|r| r.zone == zone && r.name == name)
    }
}

enum Cmd {
    Sample {
        key: TargetKey,
        generation: u64,
        sample: Sample,
        next_at: Instant,
    },
    SetOverride {
        key: TargetKey,
        value: Override,
        /// Unix seconds after which it returns to `auto`.
        until: Option<u64>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    SetLoad {
        key: TargetKey,
        value: Option<f64>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Reload {
        zones: Arc<Catalog>,
        reply: oneshot::Sender<()>,
    },
    /// Probe tasks currently running, for tests of reload.
    Tasks(oneshot::Sender<usize>),
    /// What the fleet knows (`None`: etcd is out of reach; go on with our own probes and the
    /// last overrides we knew).
    Fleet(Option<Arc<FleetInput>>),
    Stop,
}

/// Settings of the runner from the server config.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Where overrides and operator loads persist; `None`: they do not survive a restart.
    pub state_file: Option<PathBuf>,
    /// Half-life of each target's RTT moving average.
    pub rtt_half_life: Duration,
    /// Random spread of each probe interval, as a fraction (0–0.5): an interval of `i` waits
    /// between `i × (1 − jitter)` and `i × (1 + jitter)`.
    pub jitter: f64,
    /// In a fleet: this instance's name and the down rule.
    pub fleet: Option<FleetMember>,
}

/// This instance in a fleet.
#[derive(Debug, Clone)]
pub struct FleetMember {
    /// The instance name (also sent to probed endpoints as `X-Gslbd-Instance`).
    pub instance: String,
    /// When a target is down.
    pub rule: DownRule,
}

/// This instance's own observations of its probe targets, by target.
pub type Observations = BTreeMap<TargetKey, Observation>;

/// The handle the rest of the server holds: read status, set overrides, reload.
#[derive(Clone)]
pub struct HealthHandle {
    cmd: mpsc::UnboundedSender<Cmd>,
    /// When the runner started: `transitions[].at` and `last.at` count seconds from here.
    pub started: Instant,
    /// The last published status, for the admin API and metrics.
    pub status: Arc<ArcSwap<HealthStatus>>,
    /// The catalog and its health as last published; queries load this.
    pub served: Arc<ArcSwap<Served>>,
    /// This instance's own observations, renewed when one changes enough to publish.
    pub observations: watch::Receiver<Arc<Observations>>,
}

impl HealthHandle {
    /// Hands the runner what the fleet knows (`None`: etcd is out of reach).
    pub fn fleet(&self, input: Option<Arc<FleetInput>>) {
        let _ = self.cmd.send(Cmd::Fleet(input));
    }

    /// Sets an operator override (`vip` None: the region) and persists it.
    pub async fn set_override(
        &self,
        zone: &str,
        region: &str,
        vip: Option<IpAddr>,
        value: Override,
    ) -> Result<(), String> {
        self.set_override_until(zone, region, vip, value, None)
            .await
    }

    /// Sets an operator override that returns to `auto` at `until` (Unix seconds), or never.
    pub async fn set_override_until(
        &self,
        zone: &str,
        region: &str,
        vip: Option<IpAddr>,
        value: Override,
        until: Option<u64>,
    ) -> Result<(), String> {
        let key = TargetKey {
            zone: zone.trim_end_matches('.').to_ascii_lowercase(),
            region: region.to_string(),
            vip,
        };
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::SetOverride {
                key,
                value,
                until,
                reply,
            })
            .map_err(|_| "health runner stopped".to_string())?;
        rx.await.map_err(|_| "health runner stopped".to_string())?
    }

    /// Swaps in a new zone set: keeps the state of targets that still exist, stops the probes of
    /// targets that are gone, starts the new ones, and publishes zones and health together.
    pub async fn reload(&self, zones: Arc<Catalog>) {
        let (reply, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Reload { zones, reply }).is_ok() {
            let _ = rx.await;
        }
    }

    /// Pins a region's load (`None`: back to probe readings) and persists it.
    pub async fn set_load(
        &self,
        zone: &str,
        region: &str,
        value: Option<f64>,
    ) -> Result<(), String> {
        let key = TargetKey {
            zone: zone.trim_end_matches('.').to_ascii_lowercase(),
            region: region.to_string(),
            vip: None,
        };
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::SetLoad { key, value, reply })
            .map_err(|_| "health runner stopped".to_string())?;
        rx.await.map_err(|_| "health runner stopped".to_string())?
    }

    /// Stops every probe and the runner.
    pub fn stop(&self) {
        let _ = self.cmd.send(Cmd::Stop);
    }

    /// Number of running probe tasks.
    pub async fn probe_tasks(&self) -> usize {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Tasks(tx)).is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }
}

struct Target {
    spec: Arc<ProbeSpec>,
    state: TargetState,
    next_at: Instant,
    /// None when nothing probes it (a standalone snapshot).
    task: Option<tokio::task::AbortHandle>,
    generation: u64,
}

struct Aggregator {
    cfg: RunnerConfig,
    start: Instant,
    zones: Arc<Catalog>,
    targets: HashMap<TargetKey, Target>,
    overrides: HashMap<TargetKey, Override>,
    /// When timed overrides return to `auto` (Unix seconds).
    expiries: HashMap<TargetKey, u64>,
    /// Operator-set loads by region, over probe readings.
    loads: HashMap<TargetKey, f64>,
    transitions: VecDeque<Transition>,
    transition_counts: HashMap<(String, &'static str), u64>,
    served: Arc<ArcSwap<Served>>,
    status: Arc<ArcSwap<HealthStatus>>,
    tx: mpsc::UnboundedSender<Cmd>,
    generation: u64,
    /// What we last read from or wrote to the state file, to notice outside edits.
    state_text: Option<String>,
    /// What the fleet knows; `None` in standalone mode or while etcd is out of reach.
    fleet: Option<Arc<FleetInput>>,
    /// Our own observations as last handed out, and where to hand them.
    observed: Arc<Observations>,
    observations: watch::Sender<Arc<Observations>>,
    /// Unix time at `start`, to stamp observations.
    wall_start: u64,
    /// Told once every target has its first result (the first round of probes).
    first_round: Option<std::sync::mpsc::Sender<()>>,
}

/// The region's probe targets: `(key, spec)` for the region-level probe or one per VIP.
fn targets_of(zone: &Zone, region: &Region) -> Vec<(TargetKey, Arc<ProbeSpec>)> {
    region
        .probes
        .iter()
        .map(|p| {
            (
                TargetKey {
                    zone: zone_key(zone),
                    region: region.name.clone(),
                    vip: p.vip.and_then(|i| region.vips.get(i).copied()),
                },
                p.spec.clone(),
            )
        })
        .collect()
}

/// Starts the runner thread. Every region is probed at once; until its first result a region is
/// in its configured initial state.
pub fn start(
    zones: Arc<Catalog>,
    cfg: RunnerConfig,
) -> std::io::Result<(HealthHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let served = Arc::new(ArcSwap::from_pointee(Served {
        zones: zones.clone(),
        health: Arc::new(HealthSnapshot::all_up(zones.region_count())),
    }));
    let status = Arc::new(ArcSwap::from_pointee(HealthStatus::default()));
    let mut agg = Aggregator::new(
        zones.clone(),
        cfg,
        served.clone(),
        status.clone(),
        tx.clone(),
    );
    let handle = HealthHandle {
        cmd: tx,
        started: agg.start,
        status,
        served,
        observations: agg.observations.subscribe(),
    };
    // Overrides from the state file count before the first answer.
    agg.read_state_file();
    agg.publish();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (round_tx, round_rx) = std::sync::mpsc::channel();
    // The first round of probes ends when every target has a result, or when the slowest
    // probe's timeout has passed: then targets still waiting keep their `initial` state.
    let round_limit = zones
        .zones
        .iter()
        .flat_map(|z| z.regions.iter().flat_map(|r| r.probes.iter()))
        .map(|p| p.spec.timeout)
        .max();
    agg.first_round = Some(round_tx);
    let thread = crate::rt::on_own_thread("gslbd-health", move || async move {
        agg.sync_targets(true);
        agg.publish();
        agg.first_round_done();
        let _ = ready_tx.send(());
        agg.run(rx).await;
    })?;
    let _ = ready_rx.recv_timeout(Duration::from_secs(5));
    if let Some(limit) = round_limit {
        let t0 = Instant::now();
        let done = round_rx
            .recv_timeout(limit + Duration::from_millis(250))
            .is_ok();
        info!(
            ms = t0.elapsed().as_millis() as u64,
            complete = done,
            "first round of probes done: steered names answer from here"
        );
    }
    Ok((handle, thread))
}

/// The health a server would start with, without probing anything: every target in its
/// configured initial state, with the state file's overrides. For `explain` and `check`.
pub fn initial(zones: Arc<Catalog>, cfg: RunnerConfig) -> (Arc<Served>, Arc<HealthStatus>) {
    let (tx, _rx) = mpsc::unbounded_channel();
    let served = Arc::new(ArcSwap::from_pointee(Served {
        zones: zones.clone(),
        health: Arc::new(HealthSnapshot::all_up(zones.region_count())),
    }));
    let status = Arc::new(ArcSwap::from_pointee(HealthStatus::default()));
    let mut agg = Aggregator::new(zones, cfg, served, status, tx);
    agg.read_state_file();
    agg.sync_targets(false);
    agg.publish();
    (agg.served.load_full(), agg.status.load_full())
}

impl Aggregator {
    fn new(
        zones: Arc<Catalog>,
        cfg: RunnerConfig,
        served: Arc<ArcSwap<Served>>,
        status: Arc<ArcSwap<HealthStatus>>,
        tx: mpsc::UnboundedSender<Cmd>,
    ) -> Self {
        let (observations, _) = watch::channel(Arc::new(Observations::new()));
        Self {
            cfg,
            start: Instant::now(),
            zones,
            targets: HashMap::new(),
            overrides: HashMap::new(),
            expiries: HashMap::new(),
            loads: HashMap::new(),
            transitions: VecDeque::new(),
            transition_counts: HashMap::new(),
            served,
            status,
            tx,
            generation: 0,
            state_text: None,
            fleet: None,
            observed: Arc::new(Observations::new()),
            observations,
            wall_start: crate::rt::unix_seconds(),
            first_round: None,
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Stop) | None => break,
                    Some(c) => self.handle(c),
                },
                _ = tick.tick() => {
                    // Republish when overrides changed on disk, and while any load reading is
                    // held, so that a reading past `load_max_age` leaves the snapshot even when
                    // no new probe result arrives.
                    let holds_load = self.targets.values().any(|t| t.state.load.is_some());
                    let expired = self.expire_overrides();
                    if self.read_state_file() || holds_load || expired {
                        self.publish();
                    }
                }
            }
        }
        for t in self.targets.values() {
            if let Some(task) = &t.task {
                task.abort();
            }
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Sample {
                key,
                generation,
                sample,
                next_at,
            } => {
                let now = self.now();
                let Some(t) = self.targets.get_mut(&key) else {
                    return;
                };
                if t.generation != generation {
                    return; // a result from a probe task that a reload replaced
                }
                t.next_at = next_at;
                let was_up = t.state.up;
                if let Some(flip) = t.state.observe(&sample, now) {
                    let reason = match &sample {
                        Sample::Ok { .. } => format!("{} consecutive successes", t.state.rise),
                        Sample::Fail { reason, detail } => {
                            format!(
                                "{} consecutive failures, last: {}: {detail}",
                                t.state.fall,
                                reason.as_str()
                            )
                        }
                    };
                    let from = if was_up { "up" } else { "down" };
                    let to = if flip.to_up { "up" } else { "down" };
                    let vip = key.vip.map(|v| v.to_string()).unwrap_or_default();
                    if flip.to_up {
                        info!(zone = %key.zone, region = %key.region, vip, from, to, reason = %reason, "health transition");
                    } else {
                        warn!(zone = %key.zone, region = %key.region, vip, from, to, reason = %reason, "health transition");
                    }
                    self.record(key.to_string(), from, to, reason);
                }
                self.publish();
                self.first_round_done();
            }
            Cmd::SetOverride {
                key,
                value,
                until,
                reply,
            } => {
                let r = self.set_override(key, value, until);
                let _ = reply.send(r);
            }
            Cmd::SetLoad { key, value, reply } => {
                let r = self.set_load(key, value);
                let _ = reply.send(r);
            }
            Cmd::Reload { zones, reply } => {
                self.zones = zones;
                self.sync_targets(true);
                self.publish();
                let _ = reply.send(());
            }
            Cmd::Tasks(reply) => {
                let _ = reply.send(
                    self.targets
                        .values()
                        .filter(|t| t.task.as_ref().is_some_and(|h| !h.is_finished()))
                        .count(),
                );
            }
            Cmd::Fleet(input) => {
                if let Some(f) = &input {
                    // The fleet's overrides and pinned loads replace ours; without etcd we keep
                    // the last ones we knew. Timed ones past their time are over already.
                    let now = crate::rt::unix_seconds();
                    self.overrides = f.overrides.clone();
                    self.expiries = f.expiries.clone();
                    for (k, t) in &f.expiries {
                        if *t <= now {
                            self.overrides.remove(k);
                            self.expiries.remove(k);
                        }
                    }
                    self.loads = f.loads.clone();
                }
                self.fleet = input;
                self.publish();
            }
            Cmd::Stop => {}
        }
    }

    fn record(&mut self, target: String, from: &'static str, to: &'static str, reason: String) {
        *self
            .transition_counts
            .entry((target.clone(), to))
            .or_default() += 1;
        self.transitions.push_back(Transition {
            target,
            from,
            to,
            reason,
            at: self.now().as_secs_f64(),
        });
        while self.transitions.len() > 200 {
            self.transitions.pop_front();
        }
    }

    fn set_override(
        &mut self,
        key: TargetKey,
        value: Override,
        until: Option<u64>,
    ) -> Result<(), String> {
        let exists = self.zones.zones.iter().any(|z| {
            zone_key(z) == key.zone
                && z.regions
                    .iter()
                    .any(|r| r.name == key.region && key.vip.is_none_or(|v| r.vips.contains(&v)))
        });
        if !exists {
            return Err(format!("no such region or VIP: {key}"));
        }
        let old = self.overrides.get(&key).copied().unwrap_or_default();
        self.expiries.remove(&key);
        if value == Override::Auto {
            self.overrides.remove(&key);
        } else {
            self.overrides.insert(key.clone(), value);
            if let Some(t) = until {
                self.expiries.insert(key.clone(), t);
            }
        }
        if old != value {
            let vip = key.vip.map(|v| v.to_string()).unwrap_or_default();
            info!(zone = %key.zone, region = %key.region, vip, from = old.as_str(), to = value.as_str(), "override set");
            self.record(
                key.to_string(),
                old.as_str(),
                value.as_str(),
                "operator override".into(),
            );
        }
        self.write_state_file()?;
        self.publish();
        Ok(())
    }

    /// Tells `start` when every target has its first result.
    fn first_round_done(&mut self) {
        if self.first_round.is_some()
            && self.targets.values().all(|t| t.state.probed)
            && let Some(tx) = self.first_round.take()
        {
            let _ = tx.send(());
        }
    }

    /// Returns timed overrides whose time has come to `auto`. Returns whether any did.
    fn expire_overrides(&mut self) -> bool {
        let now = crate::rt::unix_seconds();
        let due: Vec<TargetKey> = self
            .expiries
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &due {
            self.expiries.remove(k);
            if let Some(old) = self.overrides.remove(k) {
                info!(target = %k, from = old.as_str(), "timed override expired: back to auto");
                self.record(
                    k.to_string(),
                    old.as_str(),
                    "auto",
                    "override expired".into(),
                );
            }
        }
        if !due.is_empty() {
            let _ = self.write_state_file();
        }
        !due.is_empty()
    }

    fn set_load(&mut self, key: TargetKey, value: Option<f64>) -> Result<(), String> {
        let exists = self
            .zones
            .zones
            .iter()
            .any(|z| zone_key(z) == key.zone && z.regions.iter().any(|r| r.name == key.region));
        if !exists {
            return Err(format!("no such region: {key}"));
        }
        match value {
            Some(v) if v.is_finite() && v >= 0.0 => {
                self.loads.insert(key.clone(), v);
            }
            Some(v) => return Err(format!("load {v} must be a number ≥ 0")),
            None => {
                self.loads.remove(&key);
            }
        }
        info!(target = %key, load = ?value, "load set by operator");
        self.write_state_file()?;
        self.publish();
        Ok(())
    }

    /// Starts probes for new targets, stops those of targets that are gone, keeps the rest.
    fn sync_targets(&mut self, spawn: bool) {
        self.generation += 1;
        let mut wanted: HashMap<TargetKey, Arc<ProbeSpec>> = HashMap::new();
        for z in &self.zones.zones {
            for r in &z.regions {
                for (k, spec) in targets_of(z, r) {
                    wanted.insert(k, spec);
                }
            }
        }
        self.targets.retain(|k, t| {
            let keep = wanted.contains_key(k);
            if !keep && let Some(task) = &t.task {
                task.abort();
            }
            keep
        });
        for (key, spec) in wanted {
            let restart = match self.targets.get(&key) {
                Some(t) => !same_probe(&t.spec, &spec),
                None => true,
            };
            if !restart {
                continue;
            }
            let state = match self.targets.remove(&key) {
                // Same target, new settings: keep its history, take the new thresholds.
                Some(old) => {
                    if let Some(task) = &old.task {
                        task.abort();
                    }
                    let mut s = old.state;
                    s.rise = spec.rise;
                    s.fall = spec.fall;
                    s
                }
                None => TargetState::new(
                    spec.initial_up,
                    spec.rise,
                    spec.fall,
                    self.cfg.rtt_half_life,
                ),
            };
            let task = spawn.then(|| self.spawn_probe(key.clone(), spec.clone()));
            self.targets.insert(
                key,
                Target {
                    spec,
                    state,
                    next_at: Instant::now(),
                    task,
                    generation: self.generation,
                },
            );
        }
    }

    fn spawn_probe(&self, key: TargetKey, spec: Arc<ProbeSpec>) -> tokio::task::AbortHandle {
        // In a fleet every HTTP probe says which vantage point sends it.
        let spec = match &self.cfg.fleet {
            Some(me) => Arc::new(probe::with_instance(&spec, &me.instance)),
            None => spec,
        };
        let tx = self.tx.clone();
        let generation = self.generation;
        let jitter = self.cfg.jitter;
        tokio::spawn(async move {
            let client = match super::probe::client(&spec) {
                Ok(c) => c,
                Err(e) => {
                    warn!(target = %key, error = %e, "probe disabled");
                    return;
                }
            };
            probe_loop(&spec, client.as_ref(), jitter, |sample, next_at| {
                tx.send(Cmd::Sample {
                    key: key.clone(),
                    generation,
                    sample,
                    next_at,
                })
                .is_ok()
            })
            .await;
        })
        .abort_handle()
    }

    /// Recomputes every region's view and status and publishes them.
    fn publish(&mut self) {
        let now = self.now();
        self.publish_observations(now);
        let zones = self.zones.clone();
        let mut views = Vec::with_capacity(zones.region_count());
        let mut regions = Vec::with_capacity(zones.region_count());
        for z in &zones.zones {
            let zk = zone_key(z);
            for r in &z.regions {
                let (view, status) = self.region_view(&zk, r, now);
                views.push(view);
                regions.push(status);
            }
        }
        // Status first: whoever sees an answer change through DNS finds the status already
        // saying why.
        self.status.store(Arc::new(HealthStatus {
            regions,
            transitions: self.transitions.iter().cloned().collect(),
            transition_counts: self
                .transition_counts
                .iter()
                .map(|((t, to), n)| (t.clone(), *to, *n))
                .collect(),
            fleet: self.fleet_status(),
        }));
        self.served.store(Arc::new(Served {
            zones,
            health: Arc::new(HealthSnapshot::from_views(views)),
        }));
    }

    fn region_view(&self, zone: &str, r: &Region, now: Duration) -> (RegionView, RegionStatus) {
        let key = |vip| TargetKey {
            zone: zone.to_string(),
            region: r.name.clone(),
            vip,
        };
        let region_key = key(None);
        let region_target = self.targets.get(&region_key);
        let mut vip_up = 0u64;
        let mut vips = Vec::with_capacity(r.vips.len());
        let mut stable: Option<Instant> = None;
        let mut rtts = Vec::new();
        let mut load: Option<(f64, Duration)> = None;
        let mut consider = |k: &TargetKey, t: &Target, stable: &mut Option<Instant>| {
            let flips_at = t.next_at + t.spec.interval * (t.state.results_to_flip() - 1);
            *stable = Some(stable.map_or(flips_at, |s| s.min(flips_at)));
            if let Some(v) = t.state.rtt.get() {
                rtts.push(v);
            }
            if let Some((l, at)) = self.target_load(k, t, now)
                && load.is_none_or(|(m, _)| l > m)
            {
                load = Some((l, at));
            }
        };
        if let Some(t) = region_target {
            consider(&region_key, t, &mut stable);
        }
        for (i, ip) in r.vips.iter().enumerate() {
            let vk = key(Some(*ip));
            let (tk, t) = match self.targets.get(&vk) {
                Some(t) => (&vk, Some(t)),
                None => (&region_key, region_target),
            };
            if let Some(t) = self.targets.get(&vk) {
                consider(&vk, t, &mut stable);
            }
            let probed_up = t.is_none_or(|t| self.target_up(tk, t));
            let ov = self.overrides.get(&vk).copied().unwrap_or_default();
            let up = ov.apply(probed_up) && ov != Override::Drain;
            if up && i < 64 {
                vip_up |= 1 << i;
            }
            vips.push(VipStatus {
                addr: *ip,
                up,
                override_: ov,
                override_until: self.expiries.get(&vk).copied(),
                probe: self.targets.get(&vk).map(probe_status),
            });
        }
        let up_count = vip_up.count_ones() as usize;
        // A region answered by name has no VIPs: its own probe decides.
        let probed_up = if r.vips.is_empty() {
            region_target.is_none_or(|t| self.target_up(&region_key, t))
        } else {
            up_count >= r.min_vips_up
        };
        let ov = self.overrides.get(&region_key).copied().unwrap_or_default();
        let eligible = match ov {
            Override::Auto => probed_up,
            Override::ForceUp => true,
            Override::ForceDown | Override::Drain => false,
        };
        if ov == Override::ForceUp && vip_up == 0 {
            // Forced up with every VIP down: answer them all rather than nothing.
            vip_up = u64::MAX;
        }
        if ov != Override::Auto {
            stable = None; // pinned by the operator: probes cannot change the answer
        }
        // An operator's load wins over probe readings and never goes stale.
        if let Some(l) = self.loads.get(&region_key) {
            load = Some((*l, now));
        }
        let rtt_ms = if rtts.is_empty() {
            None
        } else {
            Some(rtts.iter().sum::<f64>() / rtts.len() as f64)
        };
        let view = RegionView {
            eligible,
            drained: ov == Override::Drain,
            vip_up,
            rtt_ms: rtt_ms.map(|v| v as f32),
            load: load.map(|(l, _)| l as f32),
            stable_until: stable,
            override_until: self.expiries.get(&region_key).copied(),
        };
        let status = RegionStatus {
            zone: zone.to_string(),
            name: r.name.clone(),
            id: r.id,
            lat: r.lat,
            lon: r.lon,
            up: ov.apply(probed_up),
            eligible,
            override_: ov,
            override_until: self.expiries.get(&region_key).copied(),
            cname: r.cname.as_ref().map(|c| c.to_string()),
            rtt_ms,
            load: load.map(|(l, _)| l),
            load_age_s: load.map(|(_, at)| now.saturating_sub(at).as_secs_f64()),
            vips,
            probe: region_target.map(probe_status),
        };
        (view, status)
    }

    /// Whether the target counts as up: our own probe state, or in a fleet with etcd in reach,
    /// the down rule over every live member's vote.
    fn target_up(&self, key: &TargetKey, t: &Target) -> bool {
        match (&self.cfg.fleet, &self.fleet) {
            (Some(me), Some(f)) => {
                super::fleet::verdict(me.rule, &me.instance, Some(t.state.up), key, f).up
            }
            _ => t.state.up,
        }
    }

    /// The target's load: our own fresh reading, or in a fleet the median of the live members'
    /// fresh readings; with the age of ours (a fleet median counts as fresh now).
    fn target_load(&self, key: &TargetKey, t: &Target, now: Duration) -> Option<(f64, Duration)> {
        let own = t
            .state
            .load
            .filter(|(_, at)| now.saturating_sub(*at) <= t.spec.load_max_age);
        match (&self.cfg.fleet, &self.fleet) {
            (Some(me), Some(f)) => {
                let wall = self.wall_start + now.as_secs();
                let max_age = t.spec.load_max_age.as_secs().max(1);
                super::fleet::median_load(&me.instance, own.map(|l| l.0), key, f, wall, max_age)
                    .map(|l| (l, own.map_or(now, |o| o.1)))
            }
            _ => own,
        }
    }

    /// The fleet view for status and metrics (`None` standalone).
    fn fleet_status(&self) -> Option<FleetStatus> {
        let me = self.cfg.fleet.as_ref()?;
        let empty = FleetInput::default();
        let input = self.fleet.as_deref().unwrap_or(&empty);
        let mut targets = Vec::new();
        let mut disagreements = 0;
        for (k, own) in self.observed.iter() {
            let mut votes: BTreeMap<String, Observation> = input
                .observations
                .get(k)
                .map(|seen| {
                    seen.iter()
                        .filter(|(who, _)| input.members.contains_key(*who) && **who != me.instance)
                        .map(|(w, o)| (w.clone(), o.clone()))
                        .collect()
                })
                .unwrap_or_default();
            votes.insert(me.instance.clone(), own.clone());
            let v = super::fleet::verdict(me.rule, &me.instance, Some(own.up), k, input);
            if v.down > 0 && v.down < v.voters {
                disagreements += 1;
            }
            targets.push(TargetFleet {
                target: k.to_string(),
                up: v.up,
                voters: v.voters,
                down: v.down,
                votes,
            });
        }
        let mut zone_mismatches = Vec::new();
        let mut digests: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
        for m in input.members.values() {
            for (z, seen) in &m.zones {
                digests.entry(z).or_default().insert(&seen.digest);
            }
        }
        for (z, d) in digests {
            if d.len() > 1 {
                zone_mismatches.push(z.to_string());
            }
        }
        Some(FleetStatus {
            instance: me.instance.clone(),
            rule: me.rule.name(),
            connected: self.fleet.is_some(),
            members: input.members.clone(),
            targets,
            zone_mismatches,
            disagreements,
        })
    }

    /// Our own observation of every target, handed out when one changed enough to publish
    /// (in a fleet the cluster task writes the changed ones to etcd).
    fn publish_observations(&mut self, now: Duration) {
        if self.cfg.fleet.is_none() {
            return;
        }
        let wall = self.wall_start + now.as_secs();
        let mut next = Observations::new();
        let mut changed = self.observed.len() != self.targets.len();
        for (k, t) in &self.targets {
            let fresh = t
                .state
                .load
                .filter(|(_, at)| now.saturating_sub(*at) <= t.spec.load_max_age);
            let mut o = Observation {
                up: t.state.up,
                rtt_ms: t.state.rtt.get(),
                load: fresh.map(|l| l.0),
                load_at: fresh.map(|l| self.wall_start + l.1.as_secs()),
                error: t
                    .state
                    .last
                    .as_ref()
                    .filter(|l| !l.ok)
                    .map(|l| format!("{}: {}", l.reason.map_or("", |r| r.as_str()), l.detail)),
                at: wall,
            };
            match self.observed.get(k) {
                Some(old) if !o.differs_from(old) => o = old.clone(),
                _ => changed = true,
            }
            next.insert(k.clone(), o);
        }
        if changed {
            self.observed = Arc::new(next);
            self.observations.send_replace(self.observed.clone());
        }
    }

    /// Reads overrides from the state file if it changed since we last saw it. Returns whether
    /// anything changed.
    fn read_state_file(&mut self) -> bool {
        if self.cfg.fleet.is_some() {
            return false; // a fleet keeps its overrides in etcd
        }
        let Some(path) = self.cfg.state_file.clone() else {
            return false;
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot read state file");
                return false;
            }
        };
        if self.state_text.as_deref() == Some(text.as_str()) {
            return false;
        }
        self.state_text = Some(text.clone());
        match parse_state(&path, &text) {
            Ok(StateData {
                overrides: ov,
                expiries,
                loads,
            }) => {
                if ov != self.overrides || loads != self.loads || expiries != self.expiries {
                    info!(path = %path.display(), overrides = ov.len(), loads = loads.len(), "overrides loaded from state file");
                    self.overrides = ov;
                    self.expiries = expiries;
                    self.loads = loads;
                    return true;
                }
                false
            }
            Err(e) => {
                // A broken state file changes nothing: the overrides in force stay.
                warn!(path = %path.display(), error = %e, "state file ignored");
                false
            }
        }
    }

    fn write_state_file(&mut self) -> Result<(), String> {
        if self.cfg.fleet.is_some() {
            return Ok(());
        }
        let Some(path) = self.cfg.state_file.clone() else {
            return Ok(());
        };
        let mut keys: Vec<(&TargetKey, &Override)> = self.overrides.iter().collect();
        keys.sort();
        let mut text = String::from(
            "# gslbd operator overrides: \"zone/region\" or \"zone/region/vip\" = force-up | force-down | drain\n# (\"drain until 2026-12-06T10:00:00Z\": back to auto then). Written by gslbd; edits are picked\n# up within a second.\n[overrides]\n",
        );
        for (k, v) in keys {
            let value = super::state::format_timed(*v, self.expiries.get(k).copied());
            text.push_str(&format!("{:?} = {:?}\n", k.to_string(), value));
        }
        let mut loads: Vec<(&TargetKey, &f64)> = self.loads.iter().collect();
        loads.sort_by(|a, b| a.0.cmp(b.0));
        if !loads.is_empty() {
            text.push_str(
                "\n# Region loads pinned by an operator (fraction of capacity).\n[load]\n",
            );
            for (k, v) in loads {
                text.push_str(&format!("{:?} = {v}\n", k.to_string()));
            }
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &text)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.state_text = Some(text);
        Ok(())
    }
}

/// Probes `spec` forever: the first probe at once (no waiting a whole interval at start), then
/// every interval ± `jitter` (a fraction) so that probes of many regions never synchronise.
/// `report(sample, next_probe_at)` returns false to stop. Uses tokio's clock, so tests can run it
/// under paused time.
pub async fn probe_loop(
    spec: &ProbeSpec,
    client: Option<&reqwest::Client>,
    jitter: f64,
    mut report: impl FnMut(Sample, Instant) -> bool,
) {
    loop {
        let sample = probe::run(spec, client).await;
        let f = 1.0 + jitter * rand::rng().random_range(-1.0..=1.0);
        let delay = spec.interval.mul_f64(f.max(0.05));
        let next_at = tokio::time::Instant::now() + delay;
        if !report(sample, next_at.into_std()) {
            return;
        }
        tokio::time::sleep_until(next_at).await;
    }
}

fn probe_status(t: &Target) -> ProbeStatus {
    ProbeStatus {
        up: t.state.up,
        probed: t.state.probed,
        rtt_ms: t.state.rtt.get(),
        successes: t.state.successes,
        failures: t.state.failures,
        failures_by_reason: super::probe::FailReason::ALL
            .iter()
            .zip(t.state.failures_by_reason)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (r.as_str(), n))
            .collect(),
        last: t.state.last.clone(),
    }
}

fn same_probe(a: &ProbeSpec, b: &ProbeSpec) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    #[serde(default)]
    overrides: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    load: std::collections::BTreeMap<String, f64>,
}

/// What a state file holds.
#[derive(Debug, Default)]
pub struct StateData {
    /// Overrides in force (never `auto`).
    pub overrides: HashMap<TargetKey, Override>,
    /// When timed ones return to `auto` (Unix seconds).
    pub expiries: HashMap<TargetKey, u64>,
    /// Pinned loads by region.
    pub loads: HashMap<TargetKey, f64>,
}

/// Parses the state file's overrides (`"drain"`, `"drain until 2026-12-06T10:00:00Z"`) and loads.
pub fn parse_state(path: &Path, text: &str) -> Result<StateData, String> {
    let f: StateFile =
        toml::from_str(text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    let mut out = HashMap::new();
    let mut expiries = HashMap::new();
    for (k, v) in f.overrides {
        let key = TargetKey::parse(&k)
            .ok_or_else(|| format!("{}: bad key {k:?} (zone/region[/vip])", path.display()))?;
        let (ov, until) = super::state::parse_timed(&v).ok_or_else(|| {
            format!(
                "{}: {k}: bad value {v:?} (force-up, force-down, drain, auto, optionally \"… until <RFC 3339 time>\")",
                path.display()
            )
        })?;
        if ov != Override::Auto {
            if let Some(t) = until {
                expiries.insert(key.clone(), t);
            }
            out.insert(key, ov);
        }
    }
    let mut loads = HashMap::new();
    for (k, v) in f.load {
        let key = TargetKey::parse(&k)
            .ok_or_else(|| format!("{}: bad load key {k:?} (zone/region)", path.display()))?;
        if !(v.is_finite() && v >= 0.0) {
            return Err(format!(
                "{}: load {k}: {v} must be a number ≥ 0",
                path.display()
            ));
        }
        loads.insert(key, v);
    }
    Ok(StateData {
        overrides: out,
        expiries,
        loads,
    })
}
