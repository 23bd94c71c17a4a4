//! A fleet of instances coordinated through etcd (the `cluster` cargo feature; README, Running
//! a fleet). One task on its own thread owns the etcd session:
//!
//! - it holds a lease (`lease_ttl`) and keeps it alive; every key it writes about itself lives
//!   under that lease, so a dead instance's votes vanish when the lease runs out;
//! - it publishes this instance (`members/<instance>`: version, config digest, each zone's
//!   serial and digest) and its observations (`obs/<instance>/<zone>/<region>[/<vip>]`),
//!   writing an observation only when it changed enough (never once per probe);
//! - it reads the whole prefix once, then watches it, and hands the health runner the fleet's
//!   members, observations, overrides (`overrides/<target>`) and pinned loads
//!   (`loads/<zone>/<region>`) whenever they change;
//! - overrides and loads set through any instance's API are written here and reach every
//!   instance through its watch; they carry no lease, so they survive restarts.
//!
//! Faults: any failed or slow etcd call (each bounded by `timeout`) ends the session. The
//! runner is told the fleet is out of reach and goes on with its own probes and the last
//! overrides it knew; the query path never waits for etcd. The task reconnects with backoff and
//! re-publishes everything.

#![allow(
    clippy::disallowed_methods,
    reason = "the etcd session times its calls and stamps waiting changes"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use tokio::sync::{mpsc, oneshot};

use crate::config::ClusterConfig;
use crate::health::fleet::{FleetInput, Member, Observation, ZoneSeen};
use crate::health::runner::TargetKey;
use crate::health::{HealthHandle, Override};

#[cfg(feature = "cluster")]
mod etcd;

/// Counters of the etcd side, for metrics and `/v1/cluster`.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// A session is up (lease granted, watch running).
    pub connected: AtomicBool,
    /// Sessions started (the first one and every reconnection).
    pub sessions: AtomicU64,
    /// etcd calls that failed or timed out.
    pub errors: AtomicU64,
    /// Keys written (observations, membership, overrides).
    pub writes: AtomicU64,
}

/// What the API asks of the cluster task.
#[cfg_attr(
    not(feature = "cluster"),
    allow(dead_code, reason = "only the etcd session reads these")
)]
enum Cmd {
    /// Write (or with `Override::Auto`, delete) a fleet-wide override.
    Override {
        key: TargetKey,
        value: Override,
        until: Option<u64>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Write (or with `None`, delete) a fleet-wide pinned load.
    Load {
        key: TargetKey,
        value: Option<f64>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Publish new membership data (after a reload).
    Member(Member),
    Stop,
}

impl Cmd {
    /// The caller waiting for this change, if any.
    #[cfg_attr(
        not(feature = "cluster"),
        allow(dead_code, reason = "used by the etcd session")
    )]
    fn take_reply(&mut self) -> Option<oneshot::Sender<Result<(), String>>> {
        match self {
            Cmd::Override { reply, .. } | Cmd::Load { reply, .. } => {
                let (dummy, _) = oneshot::channel();
                Some(std::mem::replace(reply, dummy))
            }
            Cmd::Member(_) | Cmd::Stop => None,
        }
    }
}

/// What the rest of the server holds of the cluster task.
#[derive(Clone)]
pub struct ClusterHandle {
    cmd: mpsc::UnboundedSender<Cmd>,
    /// The `[cluster]` settings in force.
    pub config: Arc<ClusterConfig>,
    /// Counters of the etcd side.
    pub stats: Arc<ClusterStats>,
}

impl std::fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHandle")
            .field("instance", &self.config.instance)
            .finish()
    }
}

impl ClusterHandle {
    /// Sets a fleet-wide override (etcd), answered once etcd has it; every instance applies
    /// it when its watch delivers it. Fails when etcd is out of reach.
    pub async fn set_override(
        &self,
        key: TargetKey,
        value: Override,
        until: Option<u64>,
    ) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Override {
                key,
                value,
                until,
                reply,
            })
            .map_err(|_| "cluster task stopped".to_string())?;
        rx.await.map_err(|_| "cluster task stopped".to_string())?
    }

    /// Pins a region's load fleet-wide (`None`: back to probe readings).
    pub async fn set_load(&self, key: TargetKey, value: Option<f64>) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Load { key, value, reply })
            .map_err(|_| "cluster task stopped".to_string())?;
        rx.await.map_err(|_| "cluster task stopped".to_string())?
    }

    /// Publishes new membership data (zones and config after a reload).
    pub fn member(&self, m: Member) {
        let _ = self.cmd.send(Cmd::Member(m));
    }

    /// Ends the session (the lease is revoked, so this instance's votes go at once).
    pub fn stop(&self) {
        let _ = self.cmd.send(Cmd::Stop);
    }
}

/// Starts the cluster task on its own thread.
pub fn start(
    config: ClusterConfig,
    health: HealthHandle,
    member: Member,
) -> std::io::Result<(ClusterHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = ClusterHandle {
        cmd: tx,
        config: Arc::new(config),
        stats: Arc::new(ClusterStats::default()),
    };
    let thread = spawn(&handle, health, member, rx)?;
    Ok((handle, thread))
}

#[cfg(feature = "cluster")]
fn spawn(
    handle: &ClusterHandle,
    health: HealthHandle,
    member: Member,
    rx: mpsc::UnboundedReceiver<Cmd>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let task = etcd::Task {
        cfg: handle.config.clone(),
        stats: handle.stats.clone(),
        health,
        member,
        pending: Vec::new(),
    };
    crate::rt::on_own_thread("gslbd-cluster", move || task.run(rx))
}

#[cfg(not(feature = "cluster"))]
fn spawn(
    _: &ClusterHandle,
    _: HealthHandle,
    _: Member,
    _: mpsc::UnboundedReceiver<Cmd>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    Err(std::io::Error::other(
        "[cluster] is set, but this gslbd was built without cluster support: build it with `--features cluster`",
    ))
}

/// What this instance publishes about itself: its version, a digest of its config file, and
/// each zone's SOA serial and digest.
pub fn member_of(config_text: &str, zones: &crate::zone::ZoneSet) -> Member {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new();
    h.write(config_text.as_bytes());
    let zones = zones
        .zones
        .iter()
        .map(|z| {
            let serial = match &z.soa.data {
                hickory_proto::rr::RData::SOA(s) => s.serial,
                _ => 0,
            };
            let origin = z
                .origin
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            (
                origin,
                ZoneSeen {
                    serial,
                    digest: format!("{:016x}", z.digest),
                },
            )
        })
        .collect();
    Member {
        version: env!("CARGO_PKG_VERSION").to_string(),
        config_digest: format!("{:016x}", h.finish()),
        zones,
        since: crate::rt::unix_seconds(),
    }
}

/// Applies one key (`put`: its new value; else its deletion) to `fleet`. Returns whether the
/// fleet changed. Keys it cannot read are ignored (they are not ours).
pub fn apply(fleet: &mut FleetInput, root: &str, key: &str, value: &str, put: bool) -> bool {
    let Some(rest) = key.strip_prefix(root) else {
        return false;
    };
    match parse_key(rest) {
        Some(Key::Member(who)) => {
            if put {
                let m: Member = serde_json::from_str(value).unwrap_or_default();
                fleet.members.insert(who, m);
            } else {
                fleet.members.remove(&who);
                // Its observations went with its lease; drop what we still hold of them.
                for seen in fleet.observations.values_mut() {
                    seen.remove(&who);
                }
            }
            true
        }
        Some(Key::Observation(who, target)) => {
            let seen = fleet.observations.entry(target).or_default();
            match (put, serde_json::from_str::<Observation>(value)) {
                (true, Ok(o)) => {
                    seen.insert(who, o);
                }
                _ => {
                    seen.remove(&who);
                }
            }
            true
        }
        Some(Key::Override(target)) => {
            fleet.expiries.remove(&target);
            match (put, crate::health::state::parse_timed(value)) {
                (true, Some((o, until))) if o != Override::Auto => {
                    if let Some(t) = until {
                        fleet.expiries.insert(target.clone(), t);
                    }
                    fleet.overrides.insert(target, o);
                }
                _ => {
                    fleet.overrides.remove(&target);
                }
            }
            true
        }
        Some(Key::Load(target)) => {
            match (put, value.trim().parse::<f64>()) {
                (true, Ok(l)) if l.is_finite() && l >= 0.0 => {
                    fleet.loads.insert(target, l);
                }
                _ => {
                    fleet.loads.remove(&target);
                }
            }
            true
        }
        None => false,
    }
}

/// The kinds of keys under the prefix.
#[derive(Debug, PartialEq, Eq)]
pub enum Key {
    /// `members/<instance>`
    Member(String),
    /// `obs/<instance>/<zone>/<region>[/<vip>]`
    Observation(String, TargetKey),
    /// `overrides/<zone>/<region>[/<vip>]`
    Override(TargetKey),
    /// `loads/<zone>/<region>`
    Load(TargetKey),
}

/// Reads a key relative to the prefix (`members/a`, `obs/a/gslb.example/eu-west`…).
pub fn parse_key(rest: &str) -> Option<Key> {
    let (kind, rest) = rest.split_once('/')?;
    match kind {
        "members" if !rest.is_empty() && !rest.contains('/') => Some(Key::Member(rest.into())),
        "obs" => {
            let (who, target) = rest.split_once('/')?;
            Some(Key::Observation(who.into(), TargetKey::parse(target)?))
        }
        "overrides" => Some(Key::Override(TargetKey::parse(rest)?)),
        "loads" => Some(Key::Load(TargetKey::parse(rest)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_back() {
        let t = TargetKey::parse("gslb.example/eu-west").unwrap();
        assert_eq!(parse_key("members/ns1"), Some(Key::Member("ns1".into())));
        assert_eq!(
            parse_key("obs/ns1/gslb.example/eu-west"),
            Some(Key::Observation("ns1".into(), t.clone()))
        );
        assert_eq!(
            parse_key("obs/ns1/gslb.example/eu-west/192.0.2.20"),
            Some(Key::Observation(
                "ns1".into(),
                TargetKey::parse("gslb.example/eu-west/192.0.2.20").unwrap()
            ))
        );
        assert_eq!(
            parse_key("overrides/gslb.example/eu-west"),
            Some(Key::Override(t.clone()))
        );
        assert_eq!(parse_key("loads/gslb.example/eu-west"), Some(Key::Load(t)));
        assert_eq!(parse_key("members/a/b"), None);
        assert_eq!(parse_key("other/x"), None);
        assert_eq!(parse_key("obs/ns1"), None);
    }
}
