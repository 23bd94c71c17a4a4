//! PURE steering decisions: given a service, the health snapshot and where the client is,
//! which regions answer. No I/O, no clocks, no global state: the same inputs give the same
//! decision, so this is unit-tested and benchmarked without a runtime.

use std::time::Instant;

use crate::health::HealthSnapshot;
use crate::zone::{AllDown, Policy, Region, Service};

/// Which address family the answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn matches(self, ip: &std::net::IpAddr) -> bool {
        matches!(
            (self, ip),
            (Family::V4, std::net::IpAddr::V4(_)) | (Family::V6, std::net::IpAddr::V6(_))
        )
    }
}

impl Region {
    /// Whether the region has a VIP of this family.
    pub fn serves(&self, family: Family) -> bool {
        self.vips.iter().any(|v| family.matches(v))
    }
}

/// How healthy the answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The client's first choices answered with all their VIPs.
    Normal,
    /// Failover in effect: a region ahead in the client's order, or some VIP, was skipped.
    Degraded,
    /// No region was eligible; the service's `all_down` mode answered.
    AllDown,
}

/// The regions chosen, in answer order (indices into the zone's regions), and how to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub regions: Vec<usize>,
    /// Answer only the VIPs the health snapshot marks up (false when failing open).
    pub healthy_vips_only: bool,
    /// All-down fallback to a CNAME.
    pub cname: Option<hickory_proto::rr::Name>,
    pub outcome: Outcome,
    pub ttl: u32,
}

/// Picks regions for one query.
///
/// `order` is the client's ordered region list from the service's geo map (nearest first, or an
/// operator rule's order). Proximity walks it, skipping regions that are not eligible and regions
/// with no VIP of the asked family up, and keeps the first `answers`. When nothing is eligible the
/// service's all-down mode answers. The TTL is the service's (its degraded TTL while failover is in
/// effect), never above the time until a probe could change any region the walk looked at, and
/// never below `min_ttl` because of that cap.
pub fn decide(
    svc: &Service,
    regions: &[Region],
    order: &[u16],
    health: &HealthSnapshot,
    family: Family,
    now: Instant,
) -> Decision {
    match svc.policy {
        Policy::Proximity => {}
    }
    let mut chosen = Vec::with_capacity(svc.answers.min(order.len()));
    let mut degraded = false;
    let mut cap: Option<Instant> = None;
    let mut any_family = false;
    for &i in order {
        if chosen.len() >= svc.answers {
            break;
        }
        let i = usize::from(i);
        let Some(r) = regions.get(i) else { continue };
        if !r.serves(family) {
            continue;
        }
        any_family = true;
        let view = health.region(r.id);
        if let Some(s) = view.stable_until {
            cap = Some(cap.map_or(s, |c| c.min(s)));
        }
        if !view.eligible {
            degraded = true;
            continue;
        }
        let (up, total) = family_vips(r, view.vip_up, family);
        if up == 0 {
            degraded = true;
            continue;
        }
        if up < total {
            degraded = true;
        }
        chosen.push(i);
    }
    if !chosen.is_empty() {
        let base = if degraded { svc.degraded_ttl } else { svc.ttl };
        return Decision {
            regions: chosen,
            healthy_vips_only: true,
            cname: None,
            outcome: if degraded {
                Outcome::Degraded
            } else {
                Outcome::Normal
            },
            ttl: cap_ttl(base, cap, now, svc.min_ttl),
        };
    }
    let any_family = any_family
        || order.iter().any(|&i| {
            regions
                .get(usize::from(i))
                .is_some_and(|r| r.serves(family))
        });
    if !any_family {
        // No region of this service has a VIP of this family: a plain NODATA, not an outage.
        return Decision {
            regions: Vec::new(),
            healthy_vips_only: true,
            cname: None,
            outcome: Outcome::Normal,
            ttl: svc.ttl,
        };
    }
    let serving = |i: &&u16| {
        regions
            .get(usize::from(**i))
            .is_some_and(|r| r.serves(family))
    };
    let (regions_out, cname) = match &svc.all_down {
        AllDown::All => (
            order
                .iter()
                .filter(serving)
                .map(|&i| usize::from(i))
                .collect(),
            None,
        ),
        AllDown::First => (
            order
                .iter()
                .find(serving)
                .map(|&i| vec![usize::from(i)])
                .unwrap_or_default(),
            None,
        ),
        AllDown::Region(ri) => (
            if regions.get(*ri).is_some_and(|r| r.serves(family)) {
                vec![*ri]
            } else {
                Vec::new()
            },
            None,
        ),
        AllDown::Cname(name) => (Vec::new(), Some(name.clone())),
        AllDown::NoData => (Vec::new(), None),
    };
    Decision {
        regions: regions_out,
        healthy_vips_only: false,
        cname,
        outcome: Outcome::AllDown,
        ttl: cap_ttl(svc.degraded_ttl, cap, now, svc.min_ttl),
    }
}

/// VIPs of `family` that are up, and how many there are.
fn family_vips(r: &Region, mask: u64, family: Family) -> (u32, u32) {
    let mut up = 0;
    let mut total = 0;
    for (i, v) in r.vips.iter().enumerate() {
        if family.matches(v) {
            total += 1;
            if i < 64 && mask & (1 << i) != 0 {
                up += 1;
            }
        }
    }
    (up, total)
}

/// TTL is the minimum of its inputs: `base`, and the seconds until `cap` (a possible state
/// change), the latter floored at `min_ttl` so a probe due now does not produce TTL 0.
pub fn cap_ttl(base: u32, cap: Option<Instant>, now: Instant, min_ttl: u32) -> u32 {
    match cap {
        Some(c) => {
            let left =
                u32::try_from(c.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX);
            base.min(left.max(min_ttl))
        }
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::geo::{GeoMap, GeoRules};
    use crate::health::RegionView;

    fn region(id: usize, v6: bool) -> Region {
        let mut vips = vec![std::net::IpAddr::from([192, 0, 2, id as u8])];
        if v6 {
            vips.push("2001:db8::1".parse().unwrap());
        }
        Region {
            name: format!("r{id}"),
            id,
            lat: 0.0,
            lon: 0.0,
            vips,
            weight: 100,
            cost: 0.0,
            backup: false,
            probes: Vec::new(),
            min_vips_up: 1,
        }
    }

    fn service(answers: usize, all_down: AllDown) -> Service {
        Service {
            name: hickory_proto::rr::Name::from_ascii("www.example.").unwrap(),
            label: "www".into(),
            regions: vec![0, 1, 2],
            policy: Policy::Proximity,
            ttl: 30,
            degraded_ttl: 15,
            min_ttl: 5,
            answers,
            all_down,
            geomap: GeoMap::build(None, &[], &GeoRules::default()),
        }
    }

    #[test]
    fn proximity_takes_the_first_eligible_regions_in_order() {
        let regions = vec![region(0, true), region(1, false), region(2, true)];
        let up = HealthSnapshot::all_up(3);
        let now = Instant::now();
        let s1 = service(1, AllDown::All);
        let d = decide(&s1, &regions, &[1, 0, 2], &up, Family::V4, now);
        assert_eq!(
            (d.regions.clone(), d.outcome, d.ttl),
            (vec![1], Outcome::Normal, 30)
        );
        // Region 1 has no IPv6 VIP: skipped for AAAA, and that is not a failover.
        let d = decide(&s1, &regions, &[1, 0, 2], &up, Family::V6, now);
        assert_eq!((d.regions.clone(), d.outcome), (vec![0], Outcome::Normal));
        // Down regions are skipped, and the answer is degraded with the degraded TTL.
        let health = up.with(1, false);
        let d = decide(
            &service(2, AllDown::All),
            &regions,
            &[1, 0, 2],
            &health,
            Family::V4,
            now,
        );
        assert_eq!(
            (d.regions.clone(), d.outcome, d.ttl),
            (vec![0, 2], Outcome::Degraded, 15)
        );
    }

    #[test]
    fn every_all_down_mode_answers_as_declared() {
        let regions = vec![region(0, true), region(1, false), region(2, true)];
        let none = HealthSnapshot::all_up(3)
            .with(0, false)
            .with(1, false)
            .with(2, false);
        let now = Instant::now();
        let order = [2u16, 0, 1];
        let d = decide(
            &service(1, AllDown::All),
            &regions,
            &order,
            &none,
            Family::V4,
            now,
        );
        assert_eq!(
            (d.regions.clone(), d.outcome, d.healthy_vips_only),
            (vec![2, 0, 1], Outcome::AllDown, false)
        );
        assert_eq!(d.ttl, 15);
        let d = decide(
            &service(1, AllDown::First),
            &regions,
            &order,
            &none,
            Family::V4,
            now,
        );
        assert_eq!(d.regions, vec![2]);
        let d = decide(
            &service(1, AllDown::Region(1)),
            &regions,
            &order,
            &none,
            Family::V4,
            now,
        );
        assert_eq!(d.regions, vec![1]);
        let target = hickory_proto::rr::Name::from_ascii("sorry.example.net.").unwrap();
        let d = decide(
            &service(1, AllDown::Cname(target.clone())),
            &regions,
            &order,
            &none,
            Family::V4,
            now,
        );
        assert_eq!((d.regions.len(), d.cname), (0, Some(target)));
        let d = decide(
            &service(1, AllDown::NoData),
            &regions,
            &order,
            &none,
            Family::V4,
            now,
        );
        assert!(d.regions.is_empty() && d.cname.is_none());
        assert_eq!(d.outcome, Outcome::AllDown);
        // AAAA with all down: region 1 has no IPv6 and is never answered for it.
        let d = decide(
            &service(1, AllDown::All),
            &regions,
            &order,
            &none,
            Family::V6,
            now,
        );
        assert_eq!(d.regions, vec![2, 0]);
    }

    #[test]
    fn a_region_with_a_failed_vip_answers_the_rest_degraded() {
        let regions = vec![region(0, true)];
        let mut views = vec![RegionView::UP];
        views[0].vip_up = 0b10; // the IPv4 VIP (index 0) is down, the IPv6 one up
        let h = HealthSnapshot::from_views(views);
        let now = Instant::now();
        let s = service(1, AllDown::NoData);
        let d = decide(&s, &regions, &[0], &h, Family::V6, now);
        assert_eq!((d.regions.clone(), d.outcome), (vec![0], Outcome::Normal));
        let d = decide(&s, &regions, &[0], &h, Family::V4, now);
        assert_eq!(
            d.outcome,
            Outcome::AllDown,
            "no IPv4 VIP up: nothing eligible for A"
        );
    }

    #[test]
    fn ttl_never_outlives_the_next_possible_state_change() {
        let regions = vec![region(0, true), region(1, true)];
        let now = Instant::now();
        let mut views = vec![RegionView::UP, RegionView::UP];
        views[0].stable_until = Some(now + Duration::from_secs(12));
        views[1].stable_until = Some(now + Duration::from_secs(2));
        let h = HealthSnapshot::from_views(views);
        let s = service(1, AllDown::All);
        // Only region 0 is looked at: capped at 12 s.
        assert_eq!(decide(&s, &regions, &[0, 1], &h, Family::V4, now).ttl, 12);
        // Region 1 first: 2 s, floored at min_ttl 5.
        assert_eq!(decide(&s, &regions, &[1, 0], &h, Family::V4, now).ttl, 5);
        assert_eq!(cap_ttl(30, None, now, 5), 30);
        assert_eq!(
            cap_ttl(3, Some(now + Duration::from_secs(60)), now, 5),
            3,
            "never above base"
        );
    }

    #[test]
    fn identical_inputs_give_identical_decisions() {
        let regions = vec![region(0, true), region(1, true), region(2, true)];
        let h = HealthSnapshot::all_up(3).with(1, false);
        let now = Instant::now();
        let s = service(2, AllDown::All);
        let a = decide(&s, &regions, &[1, 2, 0], &h, Family::V4, now);
        let b = decide(&s, &regions, &[1, 2, 0], &h, Family::V4, now);
        assert_eq!(a, b);
    }
}
