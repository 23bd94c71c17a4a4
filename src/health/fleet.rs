//! The fleet view: health decided by several vantage points. Pure: the etcd side (`cluster`)
//! delivers what the live members observed, and these rules turn that, together with this
//! instance's own probes, into the state every member computes alike.
//!
//! - A target is down when the down rule says so over the votes of the live members that
//!   observe it (this instance's own probe state is its vote): `majority` (more than half),
//!   `all`, `any`, or at least N.
//! - RTT stays per vantage point: each instance steers with its own.
//! - Load is the median of the fresh readings of the live members.
//! - Without a fleet input (etcd unreachable, or not yet read) an instance uses its own
//!   probes and the last overrides it knew.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::runner::TargetKey;
use super::state::Override;

pub use crate::config::DownRule;

/// What one instance observed of one probe target, as it publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The target's state after rise/fall on this vantage point.
    pub up: bool,
    /// The RTT moving average, milliseconds (shown, never voted on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// The latest fresh load reading, a fraction of capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<f64>,
    /// Unix seconds of that load reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_at: Option<u64>,
    /// The last failure's reason and detail, while the last result is a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Unix seconds when this observation was made (its last change).
    pub at: u64,
}

impl Observation {
    /// Whether publishing `self` after `before` is worth a write: the state, the error or the
    /// presence of a load changed, the load moved by 0.05 or more, or the RTT by a quarter.
    /// Everything else waits for the next change (writes per state change, never per probe).
    pub fn differs_from(&self, before: &Observation) -> bool {
        let moved = |a: Option<f64>, b: Option<f64>, by: f64, relative: bool| match (a, b) {
            (Some(x), Some(y)) => {
                let d = (x - y).abs();
                if relative {
                    d > by * y.abs().max(1.0)
                } else {
                    d >= by
                }
            }
            (None, None) => false,
            _ => true,
        };
        self.up != before.up
            || self.error != before.error
            || moved(self.load, before.load, 0.05, false)
            || moved(self.rtt_ms, before.rtt_ms, 0.25, true)
    }
}

/// What a member publishes about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The gslbd version.
    pub version: String,
    /// A digest of the server config file.
    pub config_digest: String,
    /// Each zone's origin → (SOA serial, digest of its files).
    pub zones: BTreeMap<String, ZoneSeen>,
    /// Unix seconds when it (re)joined.
    pub since: u64,
}

/// One zone as a member serves it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneSeen {
    /// The SOA serial.
    pub serial: u32,
    /// A digest of the zone file and its master file.
    pub digest: String,
}

/// Everything the fleet knows, as read from etcd: the live members (their leases alive), their
/// observations, and the fleet-wide overrides and pinned loads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetInput {
    /// Live members by instance name.
    pub members: BTreeMap<String, Member>,
    /// Observations by target, then by instance.
    pub observations: HashMap<TargetKey, BTreeMap<String, Observation>>,
    /// Fleet-wide operator overrides.
    pub overrides: HashMap<TargetKey, Override>,
    /// When timed ones return to `auto` (Unix seconds).
    pub expiries: HashMap<TargetKey, u64>,
    /// Fleet-wide pinned loads by region.
    pub loads: HashMap<TargetKey, f64>,
}

/// The fleet's verdict on one target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Up under the down rule.
    pub up: bool,
    /// Members voting (this instance included).
    pub voters: u32,
    /// Of them, those seeing it down.
    pub down: u32,
}

/// The verdict on `key` from `own` (this instance's state, `None` when it does not probe the
/// target) and the live members' observations in `fleet`, this instance's own entry replaced
/// by `own` (its freshest state).
pub fn verdict(
    rule: DownRule,
    me: &str,
    own: Option<bool>,
    key: &TargetKey,
    fleet: &FleetInput,
) -> Verdict {
    let mut voters = 0u32;
    let mut down = 0u32;
    if let Some(seen) = fleet.observations.get(key) {
        for (who, o) in seen {
            if who == me || !fleet.members.contains_key(who) {
                continue;
            }
            voters += 1;
            down += u32::from(!o.up);
        }
    }
    if let Some(up) = own {
        voters += 1;
        down += u32::from(!up);
    }
    Verdict {
        up: !rule.down(down, voters),
        voters,
        down,
    }
}

/// The median of the live members' fresh load readings of `key` (this instance's own reading
/// `own` replacing its published one); a reading is fresh when taken at most `max_age_s`
/// seconds before `now` (Unix seconds).
pub fn median_load(
    me: &str,
    own: Option<f64>,
    key: &TargetKey,
    fleet: &FleetInput,
    now: u64,
    max_age_s: u64,
) -> Option<f64> {
    let mut loads: Vec<f64> = own.into_iter().collect();
    if let Some(seen) = fleet.observations.get(key) {
        for (who, o) in seen {
            if who == me || !fleet.members.contains_key(who) {
                continue;
            }
            if let (Some(l), Some(at)) = (o.load, o.load_at)
                && now.saturating_sub(at) <= max_age_s
            {
                loads.push(l);
            }
        }
    }
    if loads.is_empty() {
        return None;
    }
    loads.sort_by(f64::total_cmp);
    let n = loads.len();
    Some(if n % 2 == 1 {
        loads[n / 2]
    } else {
        (loads[n / 2 - 1] + loads[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TargetKey {
        TargetKey::parse("gslb.example/eu-west").unwrap()
    }

    fn obs(up: bool) -> Observation {
        Observation {
            up,
            rtt_ms: None,
            load: None,
            load_at: None,
            error: None,
            at: 0,
        }
    }

    fn fleet(members: &[&str], seen: &[(&str, bool)]) -> FleetInput {
        let mut f = FleetInput::default();
        for m in members {
            f.members.insert(m.to_string(), Member::default());
        }
        f.observations.insert(
            key(),
            seen.iter().map(|(w, u)| (w.to_string(), obs(*u))).collect(),
        );
        f
    }

    #[test]
    fn own_state_replaces_own_published_vote_and_dead_members_do_not_vote() {
        let f = fleet(
            &["a", "b", "c"],
            &[("a", true), ("b", false), ("c", false), ("d", false)],
        );
        // a sees it down now (its own fresh state), b and c too: 3 of 3.
        let v = verdict(DownRule::Majority, "a", Some(false), &key(), &f);
        assert_eq!((v.up, v.voters, v.down), (false, 3, 3));
        // a sees it up: 2 of 3 down, still down by majority; d is not a live member.
        let v = verdict(DownRule::Majority, "a", Some(true), &key(), &f);
        assert_eq!((v.up, v.voters, v.down), (false, 3, 2));
        let v = verdict(DownRule::All, "a", Some(true), &key(), &f);
        assert!(v.up);
        // Nothing from the fleet: own state alone.
        let v = verdict(
            DownRule::Majority,
            "a",
            Some(false),
            &key(),
            &FleetInput::default(),
        );
        assert_eq!((v.up, v.voters), (false, 1));
    }

    #[test]
    fn load_is_the_median_of_fresh_readings() {
        let mut f = fleet(&["a", "b", "c", "d"], &[]);
        let seen = f.observations.get_mut(&key()).unwrap();
        for (who, load, at) in [("b", 0.2, 100), ("c", 0.9, 100), ("d", 0.5, 10)] {
            seen.insert(
                who.to_string(),
                Observation {
                    load: Some(load),
                    load_at: Some(at),
                    ..obs(true)
                },
            );
        }
        // d's reading is 90 s old (stale at 60); a's own 0.4 with b 0.2 and c 0.9 → 0.4.
        assert_eq!(median_load("a", Some(0.4), &key(), &f, 100, 60), Some(0.4));
        // Without a's: 0.2 and 0.9 → 0.55.
        assert_eq!(median_load("a", None, &key(), &f, 100, 60), Some(0.55));
        assert_eq!(
            median_load("a", None, &key(), &FleetInput::default(), 100, 60),
            None
        );
    }

    #[test]
    fn observations_are_rewritten_only_on_changes_that_matter() {
        let base = Observation {
            rtt_ms: Some(20.0),
            load: Some(0.5),
            ..obs(true)
        };
        let same = Observation {
            rtt_ms: Some(22.0),
            load: Some(0.52),
            at: 99,
            ..base.clone()
        };
        assert!(!same.differs_from(&base));
        assert!(
            Observation {
                up: false,
                ..base.clone()
            }
            .differs_from(&base)
        );
        assert!(
            Observation {
                load: Some(0.56),
                ..base.clone()
            }
            .differs_from(&base)
        );
        assert!(
            Observation {
                rtt_ms: Some(30.0),
                ..base.clone()
            }
            .differs_from(&base)
        );
        assert!(
            Observation {
                error: Some("timeout".into()),
                ..base.clone()
            }
            .differs_from(&base)
        );
    }
}
