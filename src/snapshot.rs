//! The health snapshot the query path reads: per region, whether new answers may point at it,
//! which VIPs are up, RTT, load and how long that can hold. Plain data, built by the health
//! runner and read lock-free by queries, `explain` and the pure steering code. Neutral: imports
//! nothing of the crate.

use std::time::Instant;

/// What the query path knows of one region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegionView {
    /// Up, not drained, not forced down: new answers may point here.
    pub eligible: bool,
    /// Drained by an operator (not eligible, but up).
    pub drained: bool,
    /// Bit `i` set: `Region::vips[i]` may be answered.
    pub vip_up: u64,
    /// RTT moving average of the region's probes, milliseconds.
    pub rtt_ms: Option<f32>,
    /// Load as a fraction of capacity, when a fresh reading exists.
    pub load: Option<f32>,
    /// The earliest instant probes could change this region's answers; `None` when they cannot
    /// (not probed, or pinned by an override).
    pub stable_until: Option<Instant>,
    /// When the region's timed override returns to `auto` (Unix seconds), for `explain`.
    pub override_until: Option<u64>,
}

impl RegionView {
    /// Up, every VIP answered, never changing: a region nobody probes.
    pub const UP: RegionView = RegionView {
        eligible: true,
        drained: false,
        vip_up: u64::MAX,
        rtt_ms: None,
        load: None,
        stable_until: None,
        override_until: None,
    };
}

/// Eligibility of every region, indexed by `Region::id` of the zone set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthSnapshot {
    regions: Vec<RegionView>,
}

impl HealthSnapshot {
    /// Every region up.
    pub fn all_up(regions: usize) -> Self {
        Self {
            regions: vec![RegionView::UP; regions],
        }
    }

    /// A snapshot from one view per region, indexed by `Region::id`.
    pub fn from_views(regions: Vec<RegionView>) -> Self {
        Self { regions }
    }

    /// The region's view. Regions the snapshot does not know count as up.
    #[inline]
    pub fn region(&self, region_id: usize) -> RegionView {
        self.regions
            .get(region_id)
            .copied()
            .unwrap_or(RegionView::UP)
    }

    /// Whether new answers may point at the region (unknown regions count as eligible).
    #[inline]
    pub fn is_eligible(&self, region_id: usize) -> bool {
        self.region(region_id).eligible
    }

    /// Whether an operator drained the region (unknown regions are not drained).
    #[inline]
    pub fn is_drained(&self, region_id: usize) -> bool {
        self.region(region_id).drained
    }

    /// A copy with one region's load set (tests and tools).
    pub fn with_load(&self, region_id: usize, load: Option<f32>) -> Self {
        let mut s = self.clone();
        if s.regions.len() <= region_id {
            s.regions.resize(region_id + 1, RegionView::UP);
        }
        s.regions[region_id].load = load;
        s
    }

    /// A copy with one region's eligibility set (tests and tools).
    pub fn with(&self, region_id: usize, up: bool) -> Self {
        let mut s = self.clone();
        if s.regions.len() <= region_id {
            s.regions.resize(region_id + 1, RegionView::UP);
        }
        s.regions[region_id].eligible = up;
        s
    }
}
