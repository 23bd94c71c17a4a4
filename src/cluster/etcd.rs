//! The etcd session of the cluster task (feature `cluster`): etcd-client over gRPC.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, EventType, GetOptions, PutOptions, WatchOptions};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{ClusterStats, Cmd, apply};
use crate::config::ClusterConfig;
use crate::health::fleet::{FleetInput, Member, Observation};
use crate::health::runner::Observations;
use crate::health::{HealthHandle, Override};

pub(super) struct Task {
    pub(super) cfg: Arc<ClusterConfig>,
    pub(super) stats: Arc<ClusterStats>,
    pub(super) health: HealthHandle,
    pub(super) member: Member,
    /// Changes asked for while etcd was out of reach, with when; sent when a session is up.
    pub(super) pending: Vec<(std::time::Instant, Cmd)>,
}

/// Why a session ended.
enum End {
    Stop,
    Lost(String),
}

impl Task {
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        let mut backoff = Duration::from_millis(250);
        loop {
            self.stats.sessions.fetch_add(1, Relaxed);
            match self.session(&mut rx).await {
                End::Stop => break,
                End::Lost(why) => {
                    self.stats.errors.fetch_add(1, Relaxed);
                    if self.stats.connected.swap(false, Relaxed) {
                        // A session that worked: retry soon (an etcd leader change, a lost node).
                        backoff = Duration::from_millis(100);
                        warn!(error = %why, "etcd out of reach: answering from our own probes and the last overrides known");
                    } else {
                        warn!(error = %why, "cannot reach etcd");
                    }
                    self.health.fleet(None);
                }
            }
            // Wait before retrying. A change asked for meanwhile waits for the next session
            // (at most a lease TTL: long enough for an etcd leader election or a lost node),
            // then fails: it cannot reach the fleet.
            let deadline = tokio::time::sleep(backoff);
            tokio::pin!(deadline);
            loop {
                self.pending.retain_mut(|(at, cmd)| {
                    if at.elapsed() < self.cfg.lease_ttl {
                        return true;
                    }
                    if let Some(reply) = cmd.take_reply() {
                        let _ = reply.send(Err(
                            "etcd is out of reach: the change cannot reach the fleet".into(),
                        ));
                    }
                    false
                });
                tokio::select! {
                    _ = &mut deadline => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    cmd = rx.recv() => match cmd {
                        None | Some(Cmd::Stop) => return,
                        Some(Cmd::Member(m)) => self.member = m,
                        Some(c) => self.pending.push((std::time::Instant::now(), c)),
                    },
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Writes one override or pinned load and answers its caller. `Some` when the session is
    /// lost doing so.
    async fn change(&mut self, client: &mut Client, cmd: Cmd) -> Option<End> {
        let t = self.cfg.timeout;
        let (k, value, reply) = match cmd {
            Cmd::Override {
                key,
                value,
                until,
                reply,
            } => (
                self.key(&format!("overrides/{key}")),
                (value != Override::Auto).then(|| crate::health::state::format_timed(value, until)),
                reply,
            ),
            Cmd::Load { key, value, reply } => (
                self.key(&format!("loads/{key}")),
                value.map(|v| v.to_string()),
                reply,
            ),
            Cmd::Member(_) | Cmd::Stop => return None,
        };
        let r = match value {
            None => tokio::time::timeout(t, client.delete(k, None))
                .await
                .map(|r| r.map(|_| ())),
            Some(v) => tokio::time::timeout(t, client.put(k, v, None))
                .await
                .map(|r| r.map(|_| ())),
        };
        match r {
            Ok(Ok(())) => {
                self.stats.writes.fetch_add(1, Relaxed);
                let _ = reply.send(Ok(()));
                None
            }
            Ok(Err(e)) => {
                let _ = reply.send(Err(format!("etcd: {e}")));
                Some(End::Lost(format!("write: {e}")))
            }
            Err(_) => {
                let _ = reply.send(Err("etcd did not answer in time".into()));
                Some(End::Lost("write: timeout".into()))
            }
        }
    }

    fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.cfg.prefix)
    }

    /// One etcd session, from connection to failure or stop.
    async fn session(&mut self, rx: &mut mpsc::UnboundedReceiver<Cmd>) -> End {
        let cfg = self.cfg.clone();
        let t = cfg.timeout;
        macro_rules! call {
            ($what:expr, $fut:expr) => {
                match tokio::time::timeout(t, $fut).await {
                    Ok(Ok(v)) => v,
                    Ok(Err(e)) => return End::Lost(format!("{}: {e}", $what)),
                    Err(_) => return End::Lost(format!("{}: no answer within {t:?}", $what)),
                }
            };
        }
        let mut client = call!("connect", connect(&cfg));
        let lease = call!(
            "lease grant",
            client.lease_grant(cfg.lease_ttl.as_secs() as i64, None)
        )
        .id();
        let (mut keeper, mut alive) = call!("lease keep-alive", client.lease_keep_alive(lease));
        let with_lease = || Some(PutOptions::new().with_lease(lease));
        let me = self.key(&format!("members/{}", cfg.instance));
        let member = serde_json::to_string(&self.member).unwrap_or_default();
        call!("put member", client.put(me.clone(), member, with_lease()));
        self.stats.writes.fetch_add(1, Relaxed);

        // Our observations, then the fleet as it is now, then every change after that.
        let mut obs_rx = self.health.observations.clone();
        let mut written: BTreeMap<String, Observation> = BTreeMap::new();
        let own = obs_rx.borrow_and_update().clone();
        for (k, v) in own.iter() {
            let key = self.key(&format!("obs/{}/{k}", cfg.instance));
            let value = serde_json::to_string(v).unwrap_or_default();
            call!(
                "put observation",
                client.put(key.clone(), value, with_lease())
            );
            self.stats.writes.fetch_add(1, Relaxed);
            written.insert(key, v.clone());
        }
        let root = self.key("");
        let snapshot = call!(
            "read",
            client.get(root.clone(), Some(GetOptions::new().with_prefix()))
        );
        let revision = snapshot.header().map_or(0, |h| h.revision());
        let mut fleet = FleetInput::default();
        for kv in snapshot.kvs() {
            if let (Ok(k), Ok(v)) = (kv.key_str(), kv.value_str()) {
                apply(&mut fleet, &root, k, v, true);
            }
        }
        self.health.fleet(Some(Arc::new(fleet.clone())));
        let mut watch = call!(
            "watch",
            client.watch(
                root.clone(),
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(revision + 1)
                )
            )
        );
        if !self.stats.connected.swap(true, Relaxed) {
            info!(instance = %cfg.instance, members = fleet.members.len(), "joined the fleet through etcd");
        }

        for (_, cmd) in std::mem::take(&mut self.pending) {
            if let Some(end) = self.change(&mut client, cmd).await {
                return end;
            }
        }
        let mut keep_alive = tokio::time::interval(cfg.lease_ttl / 3);
        keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = watch.message() => {
                    let resp = match msg {
                        Ok(Some(r)) => r,
                        Ok(None) => return End::Lost("the watch ended".into()),
                        Err(e) => return End::Lost(format!("watch: {e}")),
                    };
                    if resp.canceled() {
                        return End::Lost(format!("watch cancelled: {}", resp.cancel_reason()));
                    }
                    let mut changed = false;
                    for ev in resp.events() {
                        if let Some(kv) = ev.kv()
                            && let Ok(k) = kv.key_str()
                        {
                            let v = kv.value_str().unwrap_or_default();
                            changed |= apply(&mut fleet, &root, k, v, ev.event_type() == EventType::Put);
                        }
                    }
                    if changed {
                        self.health.fleet(Some(Arc::new(fleet.clone())));
                    }
                }
                _ = keep_alive.tick() => {
                    call!("lease keep-alive", keeper.keep_alive());
                    match call!("lease keep-alive", alive.message()) {
                        Some(r) if r.ttl() > 0 => {}
                        _ => return End::Lost("our lease expired".into()),
                    }
                }
                changed = obs_rx.changed() => {
                    if changed.is_err() {
                        return End::Stop; // the runner is gone
                    }
                    let own: Arc<Observations> = obs_rx.borrow_and_update().clone();
                    let mut now_keys = BTreeMap::new();
                    for (k, v) in own.iter() {
                        let key = self.key(&format!("obs/{}/{k}", cfg.instance));
                        if written.get(&key) != Some(v) {
                            let value = serde_json::to_string(v).unwrap_or_default();
                            call!("put observation", client.put(key.clone(), value, with_lease()));
                            self.stats.writes.fetch_add(1, Relaxed);
                        }
                        now_keys.insert(key, v.clone());
                    }
                    for gone in written.keys().filter(|k| !now_keys.contains_key(*k)) {
                        call!("delete observation", client.delete(gone.clone(), None));
                    }
                    written = now_keys;
                }
                cmd = rx.recv() => match cmd {
                    None | Some(Cmd::Stop) => {
                        let _ = tokio::time::timeout(t, client.lease_revoke(lease)).await;
                        return End::Stop;
                    }
                    Some(Cmd::Member(m)) => {
                        self.member = m;
                        let member = serde_json::to_string(&self.member).unwrap_or_default();
                        call!("put member", client.put(me.clone(), member, with_lease()));
                    }
                    Some(c) => {
                        if let Some(end) = self.change(&mut client, c).await {
                            return end;
                        }
                    }
                },
            }
        }
    }
}

/// Connects to etcd with the configured TLS and authentication, through the endpoints that
/// answer now: a node that is down stays out of the session (the next session tries it again),
/// so one lost node of an etcd cluster costs one reconnection, not every call.
async fn connect(cfg: &ClusterConfig) -> Result<Client, String> {
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(cfg.timeout)
        .with_timeout(cfg.timeout)
        .with_keep_alive(cfg.timeout, cfg.timeout);
    if let Some((user, password)) = &cfg.auth {
        opts = opts.with_user(user.clone(), password.clone());
    }
    if let Some(tls) = &cfg.tls {
        let mut t = etcd_client::TlsOptions::new();
        if let Some(ca) = &tls.ca {
            let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
            t = t.ca_certificate(etcd_client::Certificate::from_pem(pem));
        }
        if let Some((cert, key)) = &tls.identity {
            let c = std::fs::read(cert).map_err(|e| format!("{}: {e}", cert.display()))?;
            let k = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
            t = t.identity(etcd_client::Identity::from_pem(c, k));
        }
        opts = opts.with_tls(t);
    }
    let mut live = Vec::new();
    let mut why = String::new();
    for e in &cfg.endpoints {
        let probe = async {
            let mut c = Client::connect([e.as_str()], Some(opts.clone())).await?;
            c.status().await
        };
        match tokio::time::timeout(cfg.timeout, probe).await {
            Ok(Ok(_)) => live.push(e.clone()),
            Ok(Err(err)) => why = format!("{e}: {err}"),
            Err(_) => why = format!("{e}: no answer within {:?}", cfg.timeout),
        }
    }
    if live.is_empty() {
        return Err(format!("no etcd endpoint answers (last: {why})"));
    }
    Client::connect(&live, Some(opts))
        .await
        .map_err(|e| e.to_string())
}
