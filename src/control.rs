//! The control plane: what the admin API, signals and the file watcher act through. Reloads are
//! serialised, validated whole, and handed to the health runner, which publishes the new zones
//! together with their health; a reload that fails changes nothing.

#![allow(clippy::disallowed_methods, reason = "reloads are timed and stamped")]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde::Serialize;
use tracing::{error, info, warn};

use crate::config::{Diagnostics, Loaded, ServerConfig, load_server_config, load_with};
use crate::dns::tcp::TcpStats;
use crate::health::HealthHandle;
use crate::metrics::Registry;
use crate::zone::ZoneSet;

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// `sighup`, `api`, `watch`.
    pub trigger: String,
    /// Whether the new config and zones were validated and put in force; on `false` nothing
    /// changed.
    pub ok: bool,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// Every validation error, as `file: line N: reason`. On error nothing changed.
    pub errors: Vec<String>,
    /// Settings that changed in the file but need a restart.
    pub warnings: Vec<String>,
    /// Zone origins present after the reload that were not before.
    pub zones_added: Vec<String>,
    /// Zone origins present before the reload that are gone.
    pub zones_removed: Vec<String>,
    /// Regions new in this reload, as `origin/region`.
    pub regions_added: Vec<String>,
    /// Regions gone in this reload, as `origin/region`.
    pub regions_removed: Vec<String>,
    /// Service names (fully qualified) new in this reload.
    pub services_added: Vec<String>,
    /// Service names (fully qualified) gone in this reload.
    pub services_removed: Vec<String>,
}

/// Answers per (zone, service, region) counted at one moment.
type AnswerSample = (Instant, HashMap<(String, String, String), u64>);

/// How far ahead of their refresh time signatures are renewed by the minutely refresher.
pub const SIGNATURE_HORIZON: u64 = 600;

/// The control plane one server shares between the admin API, SIGHUP and the zones watcher: it
/// holds the config in force, serialises reloads and keeps the last reload's report.
pub struct Control {
    /// The health runner's handle; a reload hands it the new catalog.
    pub health: HealthHandle,
    /// The server's counters (`/metrics`, reload counts, answers per region).
    pub metrics: Arc<Registry>,
    /// The TCP side's counters, for `/metrics` and the status page.
    pub tcp: Arc<TcpStats>,
    /// The fleet's etcd session, in cluster mode.
    pub cluster: Option<crate::cluster::ClusterHandle>,
    /// The server config file re-read on each reload; `None`: reloads reuse the config in force.
    pub config_file: Option<PathBuf>,
    config: Mutex<ServerConfig>,
    /// The report of the last reload, successful or not; `None` until the first one.
    pub last_reload: ArcSwap<Option<ReloadReport>>,
    reload_lock: tokio::sync::Mutex<()>,
    /// When this control plane was made (the status page's uptime).
    pub started: Instant,
    answers: Mutex<VecDeque<AnswerSample>>,
}

fn names(z: &ZoneSet) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut zones = Vec::new();
    let mut regions = Vec::new();
    let mut services = Vec::new();
    for zone in &z.zones {
        let o = zone.origin.to_ascii();
        zones.push(o.clone());
        regions.extend(zone.regions.iter().map(|r| format!("{o}/{}", r.name)));
        services.extend(zone.services.iter().map(|s| s.name.to_ascii()));
    }
    (zones, regions, services)
}

fn diff(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>) {
    (
        new.iter().filter(|n| !old.contains(n)).cloned().collect(),
        old.iter().filter(|o| !new.contains(o)).cloned().collect(),
    )
}

impl Control {
    /// A control plane with `config` in force and no reload yet; `started` is now.
    pub fn new(
        config: ServerConfig,
        config_file: Option<PathBuf>,
        health: HealthHandle,
        metrics: Arc<Registry>,
        tcp: Arc<TcpStats>,
        cluster: Option<crate::cluster::ClusterHandle>,
    ) -> Self {
        Self {
            health,
            metrics,
            tcp,
            cluster,
            config_file,
            config: Mutex::new(config),
            last_reload: ArcSwap::from_pointee(None),
            reload_lock: tokio::sync::Mutex::new(()),
            started: Instant::now(),
            answers: Mutex::new(VecDeque::new()),
        }
    }

    /// Renews, off the query path, the signatures of every signed zone that fall due within
    /// [`SIGNATURE_HORIZON`] seconds; returns how many RRsets were signed. Run every minute, so
    /// that queries always find fresh signatures and sign nothing themselves.
    pub fn refresh_signatures(&self) -> usize {
        let served = self.health.served.load_full();
        let now = crate::rt::unix_seconds();
        served
            .zones
            .zones
            .iter()
            .filter_map(|z| {
                z.dnssec
                    .as_ref()
                    .map(|sg| sg.refresh(&z.services, now, SIGNATURE_HORIZON))
            })
            .sum()
    }

    /// The configuration in force.
    pub fn config(&self) -> Option<ServerConfig> {
        self.config.lock().ok().map(|c| c.clone())
    }

    /// Reloads the server config (when it came from a file), the geodata and the zones. All of it
    /// is validated before anything changes; health state of regions that still exist is kept.
    pub async fn reload(&self, trigger: &str) -> ReloadReport {
        let _one_at_a_time = self.reload_lock.lock().await;
        crate::process::notify_reloading();
        let report = self.reload_locked(trigger).await;
        crate::process::notify_ready(if report.ok {
            "serving; last reload ok"
        } else {
            "serving; last reload failed, previous configuration in force"
        });
        report
    }

    /// The reload itself, under the reload lock.
    async fn reload_locked(&self, trigger: &str) -> ReloadReport {
        let current = self.config();
        let file = self.config_file.clone();
        let loaded = tokio::task::spawn_blocking(move || -> Result<Loaded, Diagnostics> {
            let cfg = match (file, current) {
                (Some(f), _) => load_server_config(&f)?,
                (None, Some(c)) => c,
                (None, None) => {
                    return Err(Diagnostics::one(
                        std::path::Path::new("<config>"),
                        None,
                        "no configuration",
                    ));
                }
            };
            load_with(cfg)
        })
        .await;
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut report = ReloadReport {
            trigger: trigger.to_string(),
            ok: false,
            at,
            errors: Vec::new(),
            warnings: Vec::new(),
            zones_added: Vec::new(),
            zones_removed: Vec::new(),
            regions_added: Vec::new(),
            regions_removed: Vec::new(),
            services_added: Vec::new(),
            services_removed: Vec::new(),
        };
        match loaded {
            Ok(Ok(l)) => {
                if let Some(old) = self.config() {
                    let c = &l.config;
                    let mut restart = |what: &str, changed: bool| {
                        if changed {
                            report
                                .warnings
                                .push(format!("{what} changed: takes effect after a restart"));
                        }
                    };
                    restart("listen", old.listen != c.listen);
                    restart("listen_xdp", old.listen_xdp != c.listen_xdp);
                    restart("dns.workers", old.workers != c.workers);
                    restart("dns.udp_payload", old.udp_payload != c.udp_payload);
                    restart("dns.tcp_timeout", old.tcp_timeout != c.tcp_timeout);
                    restart(
                        "admin",
                        old.admin_listen != c.admin_listen || old.admin_token != c.admin_token,
                    );
                    restart(
                        "health.state_file",
                        old.health.state_file != c.health.state_file,
                    );
                    restart(
                        "log",
                        old.log_level != c.log_level
                            || old.log_format != c.log_format
                            || old.query_log != c.query_log,
                    );
                }
                let before = self.health.served.load().zones.clone();
                let (oz, or, os) = names(&before);
                let (nz, nr, ns) = names(&l.zones);
                (report.zones_added, report.zones_removed) = diff(&oz, &nz);
                (report.regions_added, report.regions_removed) = diff(&or, &nr);
                (report.services_added, report.services_removed) = diff(&os, &ns);
                if let Some(c) = &self.cluster {
                    let text = std::fs::read_to_string(&l.config.file).unwrap_or_default();
                    c.member(crate::cluster::member_of(&text, &l.zones));
                }
                let catalog = crate::dns::catalog(l.zones, l.maps, l.geo, &self.metrics);
                self.health.reload(Arc::new(catalog)).await;
                if let Ok(mut c) = self.config.lock() {
                    *c = l.config;
                }
                report.ok = true;
                self.metrics
                    .global
                    .reloads_ok
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                info!(
                    trigger,
                    zones_added = ?report.zones_added,
                    zones_removed = ?report.zones_removed,
                    regions_added = ?report.regions_added,
                    regions_removed = ?report.regions_removed,
                    "reloaded"
                );
                for w in &report.warnings {
                    warn!(trigger, "{w}");
                }
            }
            Ok(Err(diags)) => {
                report.errors = diags.iter().map(|d| d.to_string()).collect();
                self.metrics
                    .global
                    .reloads_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                for d in diags.iter() {
                    error!(trigger, "reload rejected: {d}");
                }
            }
            Err(e) => {
                report.errors.push(format!("reload task failed: {e}"));
                self.metrics
                    .global
                    .reloads_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.last_reload.store(Arc::new(Some(report.clone())));
        report
    }

    /// Records the answer counters now (the admin server calls this every few seconds).
    pub fn sample_answers(&self) {
        let now = Instant::now();
        let counts: HashMap<_, _> = self.metrics.answer_counts().into_iter().collect();
        if let Ok(mut q) = self.answers.lock() {
            q.push_back((now, counts));
            // Keep one sample at least a minute old.
            while q.len() > 2
                && q.get(1)
                    .is_some_and(|(t, _)| now.duration_since(*t).as_secs() >= 60)
            {
                q.pop_front();
            }
        }
    }

    /// Answers per region for each service over about the last minute:
    /// `"zone/service" → region → count`.
    pub fn answers_last_minute(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let now: HashMap<_, _> = self.metrics.answer_counts().into_iter().collect();
        let base = self
            .answers
            .lock()
            .ok()
            .and_then(|q| q.front().map(|(_, c)| c.clone()))
            .unwrap_or_default();
        for ((zone, service, region), v) in now {
            let d = v.saturating_sub(
                base.get(&(zone.clone(), service.clone(), region.clone()))
                    .copied()
                    .unwrap_or(0),
            );
            out.entry(format!("{}/{service}", zone.trim_end_matches('.')))
                .or_default()
                .insert(region, d);
        }
        out
    }
}
