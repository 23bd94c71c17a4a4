//! Unit and property tests of the steering engine. Every random input comes from a seeded RNG,
//! so a failure reproduces exactly.
#![allow(
    clippy::disallowed_methods,
    reason = "tests pick an arbitrary instant to decide at"
)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::geo::GeoRules;
use crate::snapshot::RegionView;

fn region(id: usize, weight: u32) -> Region {
    Region {
        name: format!("r{id}"),
        id,
        lat: 0.0,
        lon: 0.0,
        vips: vec![
            IpAddr::from([192, 0, 2, id as u8]),
            format!("2001:db8::{id}").parse().unwrap(),
        ],
        cname: None,
        weight,
        cost: id as f64,
        backup: false,
        probes: Vec::new(),
        min_vips_up: 1,
        bias: 0.0,
        seed: hash::name_seed(&format!("r{id}")),
    }
}

fn regions(n: usize) -> Vec<Region> {
    (0..n).map(|i| region(i, 100)).collect()
}

fn service(n: usize, chain: &[Step], answers: usize, all_down: AllDown) -> Service {
    Service {
        name: hickory_proto::rr::Name::from_ascii("www.example.").unwrap(),
        label: "www".into(),
        regions: (0..n).collect(),
        chain: chain.to_vec(),
        score: ScoreWeights::default(),
        shed: Some(Shed {
            low: 0.6,
            high: 0.9,
            spill: 3,
        }),
        hash_prefix: (24, 56),
        explain_txt: false,
        ttl_follows_probes: true,
        use_ecs: true,
        ttl: 30,
        degraded_ttl: 15,
        min_ttl: 5,
        answers,
        all_down,
        map: 0,
        rules: GeoRules::default(),
    }
}

fn catchment(order: &[u16]) -> Catchment {
    Catchment {
        order: order.to_vec(),
        dist_km: Vec::new(),
    }
}

const PROX: &[Step] = &[Step::Geo, Step::Eligible];

struct Case<'a> {
    svc: &'a Service,
    regions: &'a [Region],
    catchment: &'a Catchment,
    health: &'a HealthSnapshot,
    family: Family,
    client: u64,
    slot: u64,
    now: Instant,
}

impl Case<'_> {
    fn decide(&self) -> Decision {
        let inp = Inputs {
            svc: self.svc,
            regions: self.regions,
            catchment: self.catchment,
            health: self.health,
            family: self.family,
            client_hash: self.client,
            slot: self.slot,
            now: self.now,
        };
        decide(&inp, &mut ())
    }
}

fn case<'a>(
    svc: &'a Service,
    regions: &'a [Region],
    c: &'a Catchment,
    h: &'a HealthSnapshot,
) -> Case<'a> {
    Case {
        svc,
        regions,
        catchment: c,
        health: h,
        family: Family::V4,
        client: 7,
        slot: 0,
        now: Instant::now(),
    }
}

#[test]
fn proximity_takes_the_first_eligible_regions_in_order() {
    let mut rs = regions(3);
    rs[1].vips.retain(|v| v.is_ipv4());
    let up = HealthSnapshot::all_up(3);
    let c = catchment(&[1, 0, 2]);
    let s1 = service(3, PROX, 1, AllDown::All);
    let d = case(&s1, &rs, &c, &up).decide();
    assert_eq!(
        (d.regions.to_vec(), d.outcome, d.ttl),
        (vec![1], Outcome::Normal, 30)
    );
    // Region 1 has no IPv6 VIP: skipped for AAAA, and that is not a failover.
    let mut k = case(&s1, &rs, &c, &up);
    k.family = Family::V6;
    let d = k.decide();
    assert_eq!((d.regions.to_vec(), d.outcome), (vec![0], Outcome::Normal));
    // Down regions are skipped, and the answer is degraded with the degraded TTL.
    let health = up.with(1, false);
    let s2 = service(3, PROX, 2, AllDown::All);
    let d = case(&s2, &rs, &c, &health).decide();
    assert_eq!(
        (d.regions.to_vec(), d.outcome, d.ttl),
        (vec![0, 2], Outcome::Degraded, 15)
    );
    // A down region behind the chosen one is not a failover.
    let health = up.with(2, false);
    let d = case(&s1, &rs, &c, &health).decide();
    assert_eq!((d.regions.to_vec(), d.outcome), (vec![1], Outcome::Normal));
}

#[test]
fn every_all_down_mode_answers_as_declared() {
    let mut rs = regions(3);
    rs[1].vips.retain(|v| v.is_ipv4());
    let none = HealthSnapshot::all_up(3)
        .with(0, false)
        .with(1, false)
        .with(2, false);
    let c = catchment(&[2, 0, 1]);
    let run = |mode: AllDown, family: Family| {
        let s = service(3, PROX, 1, mode);
        let mut k = case(&s, &rs, &c, &none);
        k.family = family;
        k.decide()
    };
    let d = run(AllDown::All, Family::V4);
    assert_eq!(
        (d.regions.to_vec(), d.outcome, d.healthy_vips_only, d.ttl),
        (vec![2, 0, 1], Outcome::AllDown, false, 15)
    );
    assert_eq!(run(AllDown::First, Family::V4).regions.to_vec(), vec![2]);
    assert_eq!(
        run(AllDown::Region(1), Family::V4).regions.to_vec(),
        vec![1]
    );
    let target = hickory_proto::rr::Name::from_ascii("sorry.example.net.").unwrap();
    let d = run(AllDown::Cname(target.clone()), Family::V4);
    assert_eq!((d.regions.len(), d.cname), (0, Some(target)));
    let d = run(AllDown::NoData, Family::V4);
    assert!(d.regions.is_empty() && d.cname.is_none() && d.outcome == Outcome::AllDown);
    // AAAA with all down: region 1 has no IPv6 and is never answered for it.
    assert_eq!(run(AllDown::All, Family::V6).regions.to_vec(), vec![2, 0]);
}

#[test]
fn a_region_with_a_failed_vip_answers_the_rest() {
    let rs = regions(1);
    let mut v = RegionView::UP;
    v.vip_up = 0b10; // the IPv4 VIP (index 0) down, the IPv6 one up
    let h = HealthSnapshot::from_views(vec![v]);
    let c = catchment(&[0]);
    let s = service(1, PROX, 1, AllDown::NoData);
    let mut k = case(&s, &rs, &c, &h);
    k.family = Family::V6;
    assert_eq!(k.decide().outcome, Outcome::Normal);
    k.family = Family::V4;
    assert_eq!(
        k.decide().outcome,
        Outcome::AllDown,
        "no IPv4 VIP up: nothing eligible for A"
    );
}

#[test]
fn ttl_never_outlives_the_next_possible_state_change() {
    let rs = regions(2);
    let now = Instant::now();
    let mut views = vec![RegionView::UP, RegionView::UP];
    views[0].stable_until = Some(now + Duration::from_secs(12));
    views[1].stable_until = Some(now + Duration::from_secs(2));
    let h = HealthSnapshot::from_views(views);
    let s = service(2, PROX, 1, AllDown::All);
    let c01 = catchment(&[0, 1]);
    let c10 = catchment(&[1, 0]);
    let mut k = case(&s, &rs, &c01, &h);
    k.now = now;
    assert_eq!(k.decide().ttl, 12, "only region 0 decides: capped at 12 s");
    k.catchment = &c10;
    assert_eq!(k.decide().ttl, 5, "region 1 first: 2 s, floored at min_ttl");
    assert_eq!(cap_ttl(30, None, now, 5), 30);
    assert_eq!(
        cap_ttl(3, Some(now + Duration::from_secs(60)), now, 5),
        3,
        "never above base"
    );
}

#[test]
fn priority_uses_backups_only_when_every_primary_is_down() {
    let mut rs = regions(4);
    rs[1].backup = true;
    rs[3].backup = true;
    let s = service(4, &[Step::Priority, Step::Eligible], 2, AllDown::NoData);
    let c = catchment(&[3, 2, 1, 0]); // ignored by priority
    let up = HealthSnapshot::all_up(4);
    assert_eq!(case(&s, &rs, &c, &up).decide().regions.to_vec(), vec![0, 2]);
    let h = up.with(0, false);
    assert_eq!(
        case(&s, &rs, &c, &h).decide().regions.to_vec(),
        vec![2],
        "a primary remains: no backup"
    );
    let h = up.with(0, false).with(2, false);
    let d = case(&s, &rs, &c, &h).decide();
    assert_eq!(
        (d.regions.to_vec(), d.outcome),
        (vec![1, 3], Outcome::Degraded)
    );
}

#[test]
fn weighted_shares_match_the_weights_within_two_percent() {
    let weights = [100u32, 300, 600];
    let rs: Vec<Region> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| region(i, *w))
        .collect();
    let s = service(
        3,
        &[Step::Geo, Step::Eligible, Step::Weighted],
        1,
        AllDown::All,
    );
    let c = catchment(&[0, 1, 2]);
    let h = HealthSnapshot::all_up(3);
    // Across client networks (and across time slots for one network) the first place follows
    // the weights.
    let mut k = case(&s, &rs, &c, &h);
    let n = 100_000;
    let mut counts = [0usize; 3];
    for i in 0..n {
        k.client = hash::mix64(i);
        counts[k.decide().regions[0]] += 1;
    }
    let mut by_slot = [0usize; 3];
    k.client = 42;
    for slot in 0..n {
        k.slot = slot;
        by_slot[k.decide().regions[0]] += 1;
    }
    let total: u32 = weights.iter().sum();
    for i in 0..3 {
        let want = f64::from(weights[i]) / f64::from(total);
        for (what, c) in [("clients", counts), ("slots", by_slot)] {
            let share = c[i] as f64 / n as f64;
            assert!(
                (share - want).abs() < 0.02,
                "{what}: region {i}: {share:.4} vs {want:.4}"
            );
        }
    }
}

#[test]
fn a_weighted_draw_is_the_same_for_one_client_and_slot_everywhere() {
    let rs = regions(4);
    let s = service(
        4,
        &[Step::Geo, Step::Eligible, Step::Weighted],
        1,
        AllDown::All,
    );
    let c = catchment(&[0, 1, 2, 3]);
    let h = HealthSnapshot::all_up(4);
    let mut k = case(&s, &rs, &c, &h);
    k.client = 99;
    k.slot = 1234;
    let first = k.decide();
    // Another process (here: another call) with the same inputs draws the same.
    assert!((0..100).all(|_| k.decide() == first));
    // Some slot changes the draw.
    let changed = (0..50).any(|slot| {
        k.slot = slot;
        k.decide().regions[0] != first.regions[0]
    });
    assert!(changed);
}

#[test]
fn no_ineligible_region_is_chosen_while_an_eligible_one_exists() {
    let mut rng = StdRng::seed_from_u64(9);
    let chains: [&[Step]; 5] = [
        PROX,
        &[Step::Priority, Step::Eligible],
        &[Step::Geo, Step::Eligible, Step::Weighted],
        &[Step::Geo, Step::Eligible, Step::Score],
        &[Step::Geo, Step::Eligible, Step::Shed, Step::Sticky],
    ];
    for round in 0..2000 {
        let n = rng.random_range(1..8);
        let rs = regions(n);
        let mut h = HealthSnapshot::all_up(n);
        for i in 0..n {
            if rng.random_bool(0.4) {
                h = h.with(i, false);
            }
            h = h.with_load(i, Some(rng.random_range(0.0..1.2)));
        }
        let chain = chains[round % chains.len()];
        let s = service(n, chain, rng.random_range(1..4), AllDown::All);
        let order: Vec<u16> = (0..n as u16).collect();
        let c = catchment(&order);
        let mut k = case(&s, &rs, &c, &h);
        k.client = rng.random();
        k.slot = rng.random();
        let d = k.decide();
        let any_up = (0..n).any(|i| h.is_eligible(i));
        if any_up {
            assert!(
                d.regions.iter().all(|&i| h.is_eligible(i)),
                "chain {chain:?}: chose a down region {d:?}"
            );
            assert_ne!(d.outcome, Outcome::AllDown);
            assert!(!d.regions.is_empty());
        } else {
            assert_eq!(d.outcome, Outcome::AllDown, "fail-open is declared");
        }
    }
}

fn sticky_choice(rs: &[Region], h: &HealthSnapshot, client: u64) -> usize {
    let n = rs.len();
    let s = service(
        n,
        &[Step::Geo, Step::Eligible, Step::Sticky],
        1,
        AllDown::All,
    );
    let order: Vec<u16> = (0..n as u16).collect();
    let c = catchment(&order);
    let mut k = case(&s, rs, &c, h);
    k.client = client;
    k.decide().regions[0]
}

#[test]
fn sticky_moves_about_one_in_n_clients_when_a_region_leaves() {
    for n in [3usize, 4, 8] {
        let rs = regions(n);
        let up = HealthSnapshot::all_up(n);
        let gone = up.with(n / 2, false);
        let clients: Vec<u64> = (0..10_000u64).map(hash::mix64).collect();
        let moved = clients
            .iter()
            .filter(|&&c| sticky_choice(&rs, &up, c) != sticky_choice(&rs, &gone, c))
            .count();
        let share = moved as f64 / clients.len() as f64;
        assert!(share <= 1.0 / n as f64 + 0.02, "n={n}: {share:.4} moved");
        // Exactly the clients of the region that left move.
        for &c in &clients {
            let before = sticky_choice(&rs, &up, c);
            if before != n / 2 {
                assert_eq!(sticky_choice(&rs, &gone, c), before);
            }
        }
    }
}

#[test]
fn sticky_weight_change_moves_clients_only_to_or_from_that_region() {
    let rs = regions(4);
    let mut heavier = rs.clone();
    heavier[2].weight = 250;
    let h = HealthSnapshot::all_up(4);
    let mut to_two = 0;
    for c in (0..10_000u64).map(hash::mix64) {
        let (a, b) = (sticky_choice(&rs, &h, c), sticky_choice(&heavier, &h, c));
        if a != b {
            assert_eq!(
                b, 2,
                "a client moved from {a} to {b}, not to the region that grew"
            );
            to_two += 1;
        }
    }
    assert!(to_two > 0);
    // Shares follow the weights: region 2 should now hold about 250/550.
    let share = (0..10_000u64)
        .map(hash::mix64)
        .filter(|&c| sticky_choice(&heavier, &h, c) == 2)
        .count() as f64
        / 10_000.0;
    assert!((share - 250.0 / 550.0).abs() < 0.02, "{share}");
}

fn shed_choice(rs: &[Region], h: &HealthSnapshot, client: u64) -> usize {
    let n = rs.len();
    let s = service(n, &[Step::Geo, Step::Eligible, Step::Shed], 1, AllDown::All);
    let order: Vec<u16> = (0..n as u16).collect();
    let c = catchment(&order);
    let mut k = case(&s, rs, &c, h);
    k.client = client;
    k.decide().regions[0]
}

#[test]
fn shed_moves_a_growing_share_and_the_same_clients() {
    let rs = regions(4);
    let clients: Vec<u64> = (0..10_000u64).map(hash::mix64).collect();
    let mut last_moved: Vec<u64> = Vec::new();
    let mut last_share = -1.0;
    for step in 0..=12 {
        let load = 0.5 + step as f32 * 0.04; // 0.5 … 0.98, across low 0.6 and high 0.9
        let h = HealthSnapshot::all_up(4)
            .with_load(0, Some(load))
            .with_load(1, Some(0.2))
            .with_load(2, Some(0.3));
        let moved: Vec<u64> = clients
            .iter()
            .copied()
            .filter(|&c| shed_choice(&rs, &h, c) != 0)
            .collect();
        let share = moved.len() as f64 / clients.len() as f64;
        let want = Shed {
            low: 0.6,
            high: 0.9,
            spill: 3,
        }
        .fraction(f64::from(load));
        assert!(
            share >= last_share,
            "load {load}: share {share} fell from {last_share}"
        );
        assert!(
            (share - want).abs() < 0.02,
            "load {load}: moved {share}, watermarks say {want}"
        );
        // Clients that moved at a lower load still move (the same clients, growing).
        assert!(
            last_moved.iter().all(|c| moved.contains(c)),
            "load {load}: a moved client came back"
        );
        last_moved = moved;
        last_share = share;
    }
}

#[test]
fn shed_never_sends_clients_above_their_high_watermark_when_another_has_room() {
    let rs = regions(4);
    // Region 0 sheds everyone; region 1 is above high; regions 2 and 3 have room.
    let h = HealthSnapshot::all_up(4)
        .with_load(0, Some(0.95))
        .with_load(1, Some(0.92))
        .with_load(2, Some(0.5))
        .with_load(3, Some(0.1));
    let mut to = [0usize; 4];
    for c in (0..10_000u64).map(hash::mix64) {
        to[shed_choice(&rs, &h, c)] += 1;
    }
    assert_eq!(to[0] + to[1], 0, "{to:?}");
    // Spill is in proportion to spare capacity: 0.4 vs 0.8 → about 1:2.
    let ratio = to[2] as f64 / to[3] as f64;
    assert!((0.4..0.6).contains(&ratio), "{to:?}");
    // With no room anywhere, clients stay where they are.
    let full = HealthSnapshot::all_up(2)
        .with_load(0, Some(0.95))
        .with_load(1, Some(0.99));
    let rs2 = regions(2);
    assert!(
        (0..1000u64)
            .map(hash::mix64)
            .all(|c| shed_choice(&rs2, &full, c) == 0)
    );
}

#[test]
fn score_order_matches_a_brute_force_reference() {
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..500 {
        let n = rng.random_range(2..9);
        let mut rs = regions(n);
        let mut h = HealthSnapshot::all_up(n);
        let mut views = Vec::new();
        for (i, r) in rs.iter_mut().enumerate() {
            r.cost = rng.random_range(0.0..5.0);
            let mut v = RegionView::UP;
            v.rtt_ms = rng.random_bool(0.9).then(|| rng.random_range(1.0..200.0));
            v.load = rng.random_bool(0.9).then(|| rng.random_range(0.0..1.0));
            views.push(v);
            let _ = i;
        }
        h = HealthSnapshot::from_views(views.clone()).with(0, h.is_eligible(0));
        let mut s = service(
            n,
            &[Step::Geo, Step::Eligible, Step::Score],
            n,
            AllDown::All,
        );
        s.score = ScoreWeights {
            distance: rng.random_range(0.0..1.0),
            latency: rng.random_range(0.0..1.0),
            load: rng.random_range(0.0..1.0),
            cost: rng.random_range(0.0..1.0),
        };
        let order: Vec<u16> = (0..n as u16).collect();
        let dist: Vec<f32> = (0..n).map(|_| rng.random_range(0.0..15000.0)).collect();
        let c = Catchment {
            order: order.clone(),
            dist_km: dist.clone(),
        };
        let d = case(&s, &rs, &c, &h).decide();
        // Reference: straight from the definition.
        let col = |f: &dyn Fn(usize) -> Option<f64>| -> Vec<f64> {
            let known: Vec<f64> = (0..n).filter_map(f).collect();
            let max = known.iter().copied().fold(0.0, f64::max);
            let mean = if known.is_empty() {
                0.0
            } else {
                known.iter().sum::<f64>() / known.len() as f64
            };
            (0..n)
                .map(|i| {
                    if max > 0.0 {
                        f(i).unwrap_or(mean) / max
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let dn = col(&|i| Some(f64::from(dist[i])));
        let ln = col(&|i| views[i].rtt_ms.map(f64::from));
        let lo = col(&|i| views[i].load.map(f64::from));
        let co = col(&|i| Some(rs[i].cost));
        let mut want: Vec<(f64, usize)> = (0..n)
            .map(|i| {
                (
                    s.score.distance * dn[i]
                        + s.score.latency * ln[i]
                        + s.score.load * lo[i]
                        + s.score.cost * co[i],
                    i,
                )
            })
            .collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let want: Vec<usize> = want.into_iter().map(|x| x.1).collect();
        assert_eq!(d.regions.to_vec(), want);
    }
}

#[test]
fn identical_inputs_and_seeds_give_identical_decisions() {
    let rs = regions(6);
    let h = HealthSnapshot::all_up(6)
        .with(1, false)
        .with_load(2, Some(0.8));
    let c = catchment(&[5, 4, 3, 2, 1, 0]);
    for chain in [
        PROX,
        &[Step::Geo, Step::Eligible, Step::Weighted][..],
        &[Step::Geo, Step::Eligible, Step::Shed, Step::Sticky][..],
    ] {
        let s = service(6, chain, 2, AllDown::All);
        let k = case(&s, &rs, &c, &h);
        for _ in 0..50 {
            assert_eq!(k.decide(), k.decide());
        }
    }
}

#[test]
fn fail_open_all_answers_every_region_of_the_service_client_order_first() {
    // A geo rule restricted this client to region 2; with everything down, `all` still answers
    // all three, region 2 first.
    let rs = regions(3);
    let none = HealthSnapshot::all_up(3)
        .with(0, false)
        .with(1, false)
        .with(2, false);
    let c = catchment(&[2]);
    let s = service(3, PROX, 1, AllDown::All);
    let d = case(&s, &rs, &c, &none).decide();
    assert_eq!(
        (d.regions.to_vec(), d.outcome),
        (vec![2, 0, 1], Outcome::AllDown)
    );
}
