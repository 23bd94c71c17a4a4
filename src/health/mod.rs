//! Region health as the query path sees it: an immutable [`HealthSnapshot`] published through
//! `arc-swap` by the one writer (the probe runner, next) and loaded once per query.
//!
//! Until probers exist every region is up; the steering code already takes the snapshot as input
//! so that nothing on the query path changes when they arrive.

use std::sync::Arc;

use arc_swap::ArcSwap;

/// Eligibility of every region, indexed by [`crate::zone::Region::id`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthSnapshot {
    down: Vec<bool>,
}

impl HealthSnapshot {
    /// Every region up.
    pub fn all_up(regions: usize) -> Self {
        Self {
            down: vec![false; regions],
        }
    }

    /// Whether the region may be answered. Regions the snapshot does not know yet (a zone
    /// loaded a moment before the runner published) count as up, their initial state.
    #[inline]
    pub fn is_eligible(&self, region_id: usize) -> bool {
        !self.down.get(region_id).copied().unwrap_or(false)
    }

    /// A copy with one region marked down or up (used by the runner and by tests).
    pub fn with(&self, region_id: usize, up: bool) -> Self {
        let mut s = self.clone();
        if s.down.len() <= region_id {
            s.down.resize(region_id + 1, false);
        }
        s.down[region_id] = !up;
        s
    }
}

/// The published snapshot: one writer stores, every query loads.
pub type HealthCell = Arc<ArcSwap<HealthSnapshot>>;
