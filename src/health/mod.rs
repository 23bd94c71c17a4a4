//! Region health: probes, the rise/fall state machine, overrides, and the snapshot that the
//! query path reads.
//!
//! One writer: the [`runner`] owns every probe's state, folds results and operator overrides in,
//! and publishes an immutable [`HealthSnapshot`] together with the zone set it belongs to
//! ([`Served`]) through `arc-swap`. A query loads that pair once, lock-free. Probes are dumb
//! ([`probe`]); thresholds and override rules are pure ([`state`]).

#![allow(
    clippy::disallowed_methods,
    reason = "the runner and the probes time what they do"
)]

pub mod fleet;
pub mod probe;
pub mod runner;
pub mod state;

pub use probe::{FailReason, ProbeSpec, Sample};
pub use runner::{HealthHandle, HealthStatus, RegionStatus, VipStatus};
pub use state::Override;

pub use crate::snapshot::{HealthSnapshot, RegionView};

pub use crate::served::Served;
