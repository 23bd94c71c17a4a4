//! PURE health state: rise/fall thresholds, the RTT moving average and load readings, and how
//! operator overrides combine with probe results. Time is an argument (`now` as a `Duration`
//! since the runner started), never read here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::probe::{FailReason, Sample};

/// Exponentially weighted moving average over irregular samples: each sample's weight depends
/// on the time since the previous one, so the average has a fixed half-life in time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ewma {
    value: Option<f64>,
    at: Duration,
    half_life: Duration,
}

impl Ewma {
    /// An empty average (no value until the first sample) with the given half-life.
    pub fn new(half_life: Duration) -> Self {
        Self {
            value: None,
            at: Duration::ZERO,
            half_life,
        }
    }

    /// Folds in `sample` observed at `now`.
    pub fn observe(&mut self, sample: f64, now: Duration) {
        self.value = Some(match self.value {
            None => sample,
            Some(v) => {
                let dt = now.saturating_sub(self.at).as_secs_f64();
                // Weight of the old value after dt: 2^(-dt / half_life).
                let keep = (-dt / self.half_life.as_secs_f64().max(1e-9)).exp2();
                v * keep + sample * (1.0 - keep)
            }
        });
        self.at = now;
    }

    /// The current average; `None` before the first sample.
    pub fn get(&self) -> Option<f64> {
        self.value
    }
}

/// An operator's word on a region or VIP, over what probes say.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Override {
    /// Probes decide.
    #[default]
    Auto,
    /// Up whatever probes say.
    ForceUp,
    /// Down whatever probes say.
    ForceDown,
    /// No new answers point here; answers already given run out their TTL. Probes go on.
    Drain,
}

/// An override as stored (state file, etcd): `drain`, or `drain until 2026-12-06T10:00:00Z`.
pub fn format_timed(value: Override, until: Option<u64>) -> String {
    match until {
        Some(t) => format!(
            "{} until {}",
            value.as_str(),
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)
            )
        ),
        None => value.as_str().to_string(),
    }
}

/// Reads what [`format_timed`] writes; `None` for anything else.
pub fn parse_timed(s: &str) -> Option<(Override, Option<u64>)> {
    let s = s.trim();
    match s.split_once(" until ") {
        Some((v, t)) => {
            let at = humantime::parse_rfc3339_weak(t.trim()).ok()?;
            let secs = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
            Some((Override::parse(v.trim())?, Some(secs)))
        }
        None => Some((Override::parse(s)?, None)),
    }
}

impl Override {
    /// The override's name as the admin API and the state file spell it (`force-up`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Override::Auto => "auto",
            Override::ForceUp => "force-up",
            Override::ForceDown => "force-down",
            Override::Drain => "drain",
        }
    }
    /// The override named `s` (as [`as_str`](Self::as_str) spells it); `None` for any other text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Override::Auto),
            "force-up" => Some(Override::ForceUp),
            "force-down" => Some(Override::ForceDown),
            "drain" => Some(Override::Drain),
            _ => None,
        }
    }
    /// The state after applying this override to a probed state.
    pub fn apply(self, probed_up: bool) -> bool {
        match self {
            Override::Auto | Override::Drain => probed_up,
            Override::ForceUp => true,
            Override::ForceDown => false,
        }
    }
}

/// The last probe result, for status and logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastResult {
    /// Whether the probe succeeded.
    pub ok: bool,
    /// Why it failed; `None` when it succeeded.
    pub reason: Option<FailReason>,
    /// The failure's detail for operators (`status 500`, the I/O error); empty on success.
    pub detail: String,
    /// Seconds since the runner started.
    pub at: f64,
}

/// The probed state of one target (a region or one VIP).
#[derive(Debug, Clone)]
pub struct TargetState {
    /// The probed state, after rise/fall (overrides are not applied here).
    pub up: bool,
    /// Consecutive results that disagree with `up` (failures while up, successes while down).
    pub streak: u32,
    /// Consecutive successes that bring a down target up (1–100).
    pub rise: u32,
    /// Consecutive failures that take an up target down (1–100).
    pub fall: u32,
    /// The RTT of successful probes, a moving average in milliseconds.
    pub rtt: Ewma,
    /// Last load reading and when it was taken.
    pub load: Option<(f64, Duration)>,
    /// The last probe result; `None` until one arrives.
    pub last: Option<LastResult>,
    /// Successful probes since the target was created.
    pub successes: u64,
    /// Failed probes since the target was created.
    pub failures: u64,
    /// Failures by [`FailReason`] (index = `reason as usize`).
    pub failures_by_reason: [u64; 7],
    /// Whether any result has arrived yet (before that, `up` is the configured initial state).
    pub probed: bool,
}

/// A change of a target's probed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flip {
    /// True: the target came up; false: it went down.
    pub to_up: bool,
}

impl TargetState {
    /// A target in `initial_up` state, not yet probed, with an RTT average of the given half-life.
    pub fn new(initial_up: bool, rise: u32, fall: u32, rtt_half_life: Duration) -> Self {
        Self {
            up: initial_up,
            streak: 0,
            rise,
            fall,
            rtt: Ewma::new(rtt_half_life),
            load: None,
            last: None,
            successes: 0,
            failures: 0,
            failures_by_reason: [0; 7],
            probed: false,
        }
    }

    /// Folds one probe result in. Returns the flip when the state changed.
    ///
    /// An up target goes down after `fall` consecutive failures; a down one comes up after
    /// `rise` consecutive successes (gdnsd's up_thresh/down_thresh, HAProxy's rise/fall).
    pub fn observe(&mut self, sample: &Sample, now: Duration) -> Option<Flip> {
        let first = !self.probed;
        self.probed = true;
        let ok = matches!(sample, Sample::Ok { .. });
        match sample {
            Sample::Ok { rtt, load } => {
                self.successes += 1;
                self.rtt.observe(rtt.as_secs_f64() * 1000.0, now);
                if let Some(l) = load {
                    self.load = Some((*l, now));
                }
                self.last = Some(LastResult {
                    ok: true,
                    reason: None,
                    detail: String::new(),
                    at: now.as_secs_f64(),
                });
            }
            Sample::Fail { reason, detail } => {
                self.failures += 1;
                if let Some(n) = self.failures_by_reason.get_mut(*reason as usize) {
                    *n += 1;
                }
                self.last = Some(LastResult {
                    ok: false,
                    reason: Some(*reason),
                    detail: detail.clone(),
                    at: now.as_secs_f64(),
                });
            }
        }
        if ok == self.up {
            self.streak = 0;
            return None;
        }
        // The first result decides at once (gdnsd's first monitoring round): the configured
        // `initial` state is a guess for before any probe, not a history for rise/fall.
        if first {
            self.up = ok;
            self.streak = 0;
            return Some(Flip { to_up: ok });
        }
        self.streak += 1;
        let needed = if self.up { self.fall } else { self.rise };
        if self.streak >= needed {
            self.up = ok;
            self.streak = 0;
            Some(Flip { to_up: ok })
        } else {
            None
        }
    }

    /// How many more probe results could flip the state at the earliest.
    pub fn results_to_flip(&self) -> u32 {
        let needed = if self.up { self.fall } else { self.rise };
        needed.saturating_sub(self.streak).max(1)
    }

    /// The load reading if it is younger than `max_age` at `now`.
    pub fn fresh_load(&self, now: Duration, max_age: Duration) -> Option<f64> {
        self.load
            .filter(|(_, at)| now.saturating_sub(*at) <= max_age)
            .map(|(l, _)| l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Sample {
        Sample::Ok {
            rtt: Duration::from_millis(10),
            load: None,
        }
    }
    fn bad() -> Sample {
        Sample::Fail {
            reason: FailReason::Status,
            detail: "status 500".into(),
        }
    }
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_result_decides_at_once() {
        // Initial up, first probe fails: down now, not after `fall` failures.
        let mut t = TargetState::new(true, 2, 3, Duration::from_secs(30));
        assert_eq!(t.observe(&bad(), S), Some(Flip { to_up: false }));
        // Initial down, first probe succeeds: up now.
        let mut t = TargetState::new(false, 2, 3, Duration::from_secs(30));
        assert_eq!(t.observe(&ok(), S), Some(Flip { to_up: true }));
        // Agreeing with the initial state changes nothing.
        let mut t = TargetState::new(true, 2, 3, Duration::from_secs(30));
        assert_eq!(t.observe(&ok(), S), None);
    }

    #[test]
    fn falls_after_fall_failures_and_rises_after_rise_successes() {
        let mut t = TargetState::new(true, 2, 3, Duration::from_secs(30));
        assert_eq!(
            t.observe(&ok(), S / 2),
            None,
            "the first result: up, as initial"
        );
        assert_eq!(t.observe(&bad(), S), None);
        assert_eq!(t.observe(&bad(), 2 * S), None);
        assert_eq!(t.results_to_flip(), 1);
        assert_eq!(t.observe(&bad(), 3 * S), Some(Flip { to_up: false }));
        assert!(!t.up);
        assert_eq!(t.observe(&ok(), 4 * S), None);
        assert_eq!(
            t.observe(&bad(), 5 * S),
            None,
            "a failure resets the rise streak"
        );
        assert_eq!(t.observe(&ok(), 6 * S), None);
        assert_eq!(t.observe(&ok(), 7 * S), Some(Flip { to_up: true }));
        assert_eq!((t.successes, t.failures), (4, 4));
    }

    #[test]
    fn a_success_resets_the_fall_streak() {
        let mut t = TargetState::new(true, 1, 2, Duration::from_secs(30));
        t.observe(&ok(), S / 2);
        t.observe(&bad(), S);
        t.observe(&ok(), 2 * S);
        assert_eq!(t.observe(&bad(), 3 * S), None);
        assert!(t.up);
    }

    #[test]
    fn ewma_has_a_half_life_in_time() {
        let mut e = Ewma::new(Duration::from_secs(10));
        e.observe(100.0, Duration::ZERO);
        assert_eq!(e.get(), Some(100.0));
        // One half-life later the old value weighs one half.
        e.observe(0.0, Duration::from_secs(10));
        assert!((e.get().unwrap() - 50.0).abs() < 1e-9);
        // Samples at the same instant do not move it (weight of the new sample 0).
        e.observe(1000.0, Duration::from_secs(10));
        assert!((e.get().unwrap() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn stale_load_is_ignored() {
        let mut t = TargetState::new(true, 1, 1, Duration::from_secs(30));
        t.observe(
            &Sample::Ok {
                rtt: Duration::from_millis(5),
                load: Some(0.4),
            },
            10 * S,
        );
        assert_eq!(t.fresh_load(20 * S, 60 * S), Some(0.4));
        assert_eq!(t.fresh_load(71 * S, 60 * S), None);
        // A success without a load reading keeps the last one (and its age).
        t.observe(&ok(), 30 * S);
        assert_eq!(t.fresh_load(69 * S, 60 * S), Some(0.4));
    }

    #[test]
    fn overrides_combine_with_probes() {
        assert!(Override::ForceUp.apply(false));
        assert!(!Override::ForceDown.apply(true));
        assert!(Override::Auto.apply(true));
        assert!(
            Override::Drain.apply(true),
            "drain keeps the probed state; eligibility is separate"
        );
        assert_eq!(Override::parse("force-down"), Some(Override::ForceDown));
        assert_eq!(Override::parse("down"), None);
    }
}
