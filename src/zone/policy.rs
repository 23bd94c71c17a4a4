//! The policy vocabulary of the model: address families, the steps of a policy chain, score
//! weights and load-shedding watermarks. `config` compiles zone files into these; `steer`
//! applies them.

/// Which address family the answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4: A queries, IPv4 VIPs.
    V4,
    /// IPv6: AAAA queries, IPv6 VIPs.
    V6,
}

impl Family {
    /// Whether `ip` is of this family (an IPv4-mapped IPv6 address counts as IPv6).
    pub fn matches(self, ip: &std::net::IpAddr) -> bool {
        matches!(
            (self, ip),
            (Family::V4, std::net::IpAddr::V4(_)) | (Family::V6, std::net::IpAddr::V6(_))
        )
    }
}

impl super::Region {
    /// Whether the region has a VIP of this family.
    pub fn serves(&self, family: Family) -> bool {
        self.cname.is_some() || self.vips.iter().any(|v| family.matches(v))
    }
}

/// One step of a policy chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Start from the client's catchment: operator geo rules, then nearest first (with bias).
    Geo,
    /// Order by the service's region list, backups last.
    Priority,
    /// Drop regions that are down, drained or have no VIP of the family up; drop backups while
    /// a primary remains.
    Eligible,
    /// Weighted random order (weights = region weights).
    Weighted,
    /// Order by score (lower is better) over distance, latency, load and cost.
    Score,
    /// Move a growing share of a loaded region's clients to the next candidates.
    Shed,
    /// Rendezvous hashing of the client network over the candidates, weights respected.
    Sticky,
}

impl Step {
    /// The step's name as `explain` shows it and a zone file's `chain` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Step::Geo => "geo",
            Step::Priority => "priority",
            Step::Eligible => "eligible",
            Step::Weighted => "weighted",
            Step::Score => "score",
            Step::Shed => "shed",
            Step::Sticky => "sticky",
        }
    }
    /// The step named `s`, aliases included (`proximity`, `failover`, `shed_load`); `None` for an
    /// unknown name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "geo" | "proximity" => Step::Geo,
            "priority" | "failover" => Step::Priority,
            "eligible" => Step::Eligible,
            "weighted" => Step::Weighted,
            "score" => Step::Score,
            "shed" | "shed_load" => Step::Shed,
            "sticky" => Step::Sticky,
            _ => return None,
        })
    }
    /// Steps that reorder candidates after eligibility (so "ahead in the order" loses meaning).
    pub fn reorders(self) -> bool {
        matches!(
            self,
            Step::Weighted | Step::Score | Step::Shed | Step::Sticky
        )
    }
}

/// Weights of the score terms; each term is normalised to 0…1 over the candidates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreWeights {
    /// Weight of the distance from the client (default 0).
    pub distance: f64,
    /// Weight of the RTT moving average (default 0.5).
    pub latency: f64,
    /// Weight of the load reading (default 0.3).
    pub load: f64,
    /// Weight of the region's configured cost (default 0.2).
    pub cost: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        Self {
            distance: 0.0,
            latency: 0.5,
            load: 0.3,
            cost: 0.2,
        }
    }
}

/// Load shedding watermarks (fractions of capacity).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shed {
    /// The load at and below which a region keeps all its clients (0 ≤ low < high).
    pub low: f64,
    /// The load at and above which a region sheds every client it can.
    pub high: f64,
    /// How many following candidates a shed client may spill to.
    pub spill: usize,
}

impl Shed {
    /// The share of a region's clients moved away at `load`: 0 below `low`, 1 at `high`.
    pub fn fraction(&self, load: f64) -> f64 {
        if load <= self.low {
            0.0
        } else if load >= self.high {
            1.0
        } else {
            (load - self.low) / (self.high - self.low)
        }
    }
}
