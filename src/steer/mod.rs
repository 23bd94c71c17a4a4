//! PURE steering decisions: given a service, the health snapshot and where the client is,
//! which regions answer. No I/O, no clocks, no global state: the same inputs give the same
//! decision, so this is unit-tested and benchmarked without a runtime.

use crate::health::HealthSnapshot;
use crate::zone::{Policy, Region};

/// Which address family the answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Region {
    /// Whether the region has a VIP of this family.
    pub fn serves(&self, family: Family) -> bool {
        match family {
            Family::V4 => !self.v4.is_empty(),
            Family::V6 => !self.v6.is_empty(),
        }
    }
}

/// The regions chosen, in answer order (indices into the zone's regions), at most `N`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub regions: Vec<usize>,
}

/// Picks regions for one query.
///
/// `order` is the client's ordered region list from the service's geo map (nearest first, or an
/// operator rule's order). Proximity walks it, skipping regions that are down and regions with no
/// VIP of the asked family, and keeps the first `answers`.
pub fn decide(
    policy: Policy,
    answers: usize,
    regions: &[Region],
    order: &[u16],
    health: &HealthSnapshot,
    family: Family,
) -> Decision {
    match policy {
        Policy::Proximity => {
            let mut chosen = Vec::with_capacity(answers.min(order.len()));
            for &i in order {
                if chosen.len() >= answers {
                    break;
                }
                let Some(r) = regions.get(usize::from(i)) else {
                    continue;
                };
                if r.serves(family) && health.is_eligible(r.id) {
                    chosen.push(usize::from(i));
                }
            }
            Decision { regions: chosen }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(id: usize, v6: bool) -> Region {
        Region {
            name: format!("r{id}"),
            id,
            lat: 0.0,
            lon: 0.0,
            v4: vec![std::net::Ipv4Addr::new(192, 0, 2, id as u8)],
            v6: if v6 {
                vec!["2001:db8::1".parse().unwrap()]
            } else {
                vec![]
            },
            weight: 100,
            cost: 0.0,
            backup: false,
        }
    }

    #[test]
    fn proximity_takes_the_first_eligible_regions_in_order() {
        let regions = vec![region(0, true), region(1, false), region(2, true)];
        let up = HealthSnapshot::all_up(3);
        let d = decide(Policy::Proximity, 1, &regions, &[1, 0, 2], &up, Family::V4);
        assert_eq!(d.regions, vec![1]);
        // Region 1 has no IPv6 VIP: skipped for AAAA.
        let d = decide(Policy::Proximity, 1, &regions, &[1, 0, 2], &up, Family::V6);
        assert_eq!(d.regions, vec![0]);
        // Down regions are skipped.
        let health = up.with(1, false);
        let d = decide(
            Policy::Proximity,
            2,
            &regions,
            &[1, 0, 2],
            &health,
            Family::V4,
        );
        assert_eq!(d.regions, vec![0, 2]);
        // Nothing eligible: empty decision (all-down behaviour is the caller's).
        let none = up.with(0, false).with(1, false).with(2, false);
        assert!(
            decide(
                Policy::Proximity,
                1,
                &regions,
                &[0, 1, 2],
                &none,
                Family::V4
            )
            .regions
            .is_empty()
        );
    }
}
