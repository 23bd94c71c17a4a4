//! PURE steering decisions: given a service, its regions, the client's catchment, the health
//! snapshot, the client's network hash, a random source and the time, which regions answer.
//! No I/O, no clocks, no global state: the same inputs (and RNG seed) give the same decision,
//! so this is unit-tested, property-tested and benchmarked without a runtime.
//!
//! A service's policy is a chain of steps, applied in order to a candidate list, like NS1's
//! filter chain: an ordering source (`geo` or `priority`), `eligible`, then any of `weighted`,
//! `score`, `shed`, `sticky`; the first `answers` candidates are the answer. A [`Trace`] sees
//! every step so that `explain` shows exactly what the query path did.

pub mod hash;

use std::time::Instant;

use smallvec::SmallVec;

use crate::geo::{Catchment, GeoMap};
use crate::snapshot::HealthSnapshot;
use crate::zone::{AllDown, Region, Service};

pub use crate::zone::policy::{Family, ScoreWeights, Shed, Step};

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
    /// The chosen regions, at most `answers` of them, in answer order (indices into the zone's
    /// regions); the one region answered by name for its CNAME; empty for NODATA or the
    /// all-down CNAME.
    pub regions: SmallVec<[usize; 4]>,
    /// Answer only the VIPs the health snapshot marks up (false when failing open).
    pub healthy_vips_only: bool,
    /// All-down fallback to a CNAME.
    pub cname: Option<hickory_proto::rr::Name>,
    /// Whether the answer is normal, degraded or the all-down fallback.
    pub outcome: Outcome,
    /// The answer's TTL in seconds: the service's `ttl`, or `degraded_ttl` when degraded or all
    /// down, capped by the earliest moment probes could change the answer (never below
    /// `min_ttl`). A service with no VIP of the family answers NODATA with its plain `ttl`.
    pub ttl: u32,
}

/// Why a candidate left the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The region has no VIP of the query's family.
    NoVipOfFamily,
    /// Probes (or a `force-down` override) say the region is down.
    Down,
    /// An operator drained the region.
    Drained,
    /// The region is up but every VIP of the query's family is down.
    VipsDown,
    /// A backup region, dropped because a primary is eligible.
    BackupNotNeeded,
}

/// The terms of one candidate's score.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ScoreParts {
    /// Distance from the client, divided by the largest among the candidates (0–1); the
    /// candidates' mean when unknown.
    pub distance: f64,
    /// RTT moving average, divided by the largest among the candidates (0–1); the candidates'
    /// mean when unknown.
    pub latency: f64,
    /// Load reading, divided by the largest among the candidates (0–1); the candidates' mean
    /// when there is no fresh reading.
    pub load: f64,
    /// Configured cost, divided by the largest among the candidates (0–1).
    pub cost: f64,
    /// The sum of the four terms, each times its weight from the policy; lower is better.
    pub total: f64,
}

/// Sees what each step does. `()` sees nothing and costs nothing.
pub trait Trace {
    /// Called after `_step` with the candidate list it left.
    fn after(&mut self, _step: Step, _candidates: &[usize]) {}
    /// Called when the eligible step removes region `_region` from the list.
    fn dropped(&mut self, _region: usize, _why: Why) {}
    /// Called with each candidate's score terms when the score step runs.
    fn scored(&mut self, _region: usize, _parts: ScoreParts) {}
    /// Called when the shed step picks this client to leave loaded region `_region` (which sheds
    /// `_fraction` of its clients): `_moved_to` is where it goes, `None` when no candidate has
    /// room and it stays.
    fn shed(&mut self, _region: usize, _fraction: f64, _moved_to: Option<usize>) {}
}

impl Trace for () {}

/// Everything one decision depends on.
pub struct Inputs<'a> {
    /// The service being answered.
    pub svc: &'a Service,
    /// The zone's regions (the service refers to them by index).
    pub regions: &'a [Region],
    /// The client's catchment from the service's geo map: its region order and distances.
    pub catchment: &'a Catchment,
    /// The health of every region, by `Region::id`.
    pub health: &'a HealthSnapshot,
    /// The query's address family (A or AAAA).
    pub family: Family,
    /// [`hash::client_hash`] of the client network.
    pub client_hash: u64,
    /// The time slot of a `weighted` draw (Unix seconds / the service TTL): the same client
    /// network gets the same draw from every instance for one TTL, and a new one the next.
    pub slot: u64,
    /// The time the TTL cap is measured from.
    pub now: Instant,
}

impl<'a> Inputs<'a> {
    /// The inputs for a client at `addr`: its catchment from the service's geo map and the hash of
    /// its network. Also returns the geo map's ECS scope for that address.
    #[allow(clippy::too_many_arguments)]
    pub fn for_client(
        svc: &'a Service,
        map: &'a GeoMap,
        regions: &'a [Region],
        health: &'a HealthSnapshot,
        family: Family,
        addr: std::net::IpAddr,
        now: Instant,
        wall: u64,
    ) -> (Self, u8) {
        let (catchment, geo_scope) = map.locate(addr);
        let inputs = Inputs {
            svc,
            regions,
            catchment,
            health,
            family,
            client_hash: hash::client_hash(addr, svc.hash_prefix.0, svc.hash_prefix.1),
            slot: wall / u64::from(svc.ttl.max(1)),
            now,
        };
        (inputs, geo_scope)
    }
}

/// One client's steered answer: the decision and the ECS scope it holds for. What the query
/// path answers and what `explain` shows both come from here.
///
/// `addr` is the address the client is located by; `ecs_addr` is the ECS address when the
/// client sent one with a source prefix above 0 (the answer is scoped only then).
/// `now` bounds TTLs by the next probe times; `wall` (Unix seconds) sets the time slot of a
/// weighted draw, so every instance of a fleet draws alike.
#[allow(clippy::too_many_arguments)]
pub fn steer<T: Trace>(
    svc: &Service,
    map: &GeoMap,
    regions: &[Region],
    health: &HealthSnapshot,
    family: Family,
    addr: std::net::IpAddr,
    ecs_addr: Option<std::net::IpAddr>,
    now: Instant,
    wall: u64,
    trace: &mut T,
) -> (Decision, u8) {
    let (inputs, geo_scope) =
        Inputs::for_client(svc, map, regions, health, family, addr, now, wall);
    let scope = ecs_addr.map_or(0, |a| scope_for(svc, a, geo_scope));
    (decide(&inputs, trace), scope)
}

/// The ECS scope of a steered answer: the geo scope when the answer depends on the client's
/// location, raised to the hashed network length when it depends on the client's hash
/// (weighted, sticky, shed), 0 when it depends on neither (priority, failover…).
pub fn scope_for(svc: &Service, ecs_addr: std::net::IpAddr, geo_scope: u8) -> u8 {
    let located_as_v4 = crate::geo::canonical(ecs_addr).is_ipv4();
    let mut scope = if svc.uses_location() { geo_scope } else { 0 };
    if svc.uses_client_hash() {
        let hashed = if located_as_v4 {
            svc.hash_prefix.0
        } else {
            svc.hash_prefix.1
        };
        scope = scope.max(hashed);
    }
    // An IPv4-mapped IPv6 address (family 2, ::ffff:a.b.c.d) is located as IPv4: its scope
    // counts the 96 bits in front as well.
    if ecs_addr.is_ipv6() && located_as_v4 && scope > 0 {
        scope = scope.saturating_add(96).min(128);
    }
    scope
}

/// Calls `f` with each VIP of `family` that `decision` answers, in answer order: every VIP of
/// each chosen region, or only those the snapshot marks up.
pub fn for_each_vip(
    regions: &[Region],
    health: &HealthSnapshot,
    family: Family,
    decision: &Decision,
    mut f: impl FnMut(std::net::IpAddr),
) {
    for &ri in &decision.regions {
        let Some(region) = regions.get(ri) else {
            continue;
        };
        let mask = if decision.healthy_vips_only {
            health.region(region.id).vip_up
        } else {
            u64::MAX
        };
        for (i, ip) in region.vips.iter().enumerate() {
            if family.matches(ip) && i < 64 && mask & (1 << i) != 0 {
                f(*ip);
            }
        }
    }
}

type Cands = SmallVec<[usize; 16]>;

/// Decides one answer. No randomness: `weighted` draws from the client network's hash and the
/// time slot.
pub fn decide<T: Trace>(inp: &Inputs<'_>, trace: &mut T) -> Decision {
    let svc = inp.svc;
    let regions = inp.regions;
    let family = inp.family;
    let serving = |i: usize| regions.get(i).is_some_and(|r| r.serves(family));
    let mut cands: Cands = SmallVec::new();
    // The list before eligibility, for the degraded check and the TTL cap.
    let mut initial: Cands = SmallVec::new();
    let mut dropped: SmallVec<[usize; 8]> = SmallVec::new();
    let mut partial = false;
    let mut reordered_after_eligible = false;
    let mut seen_eligible = false;
    for &step in &svc.chain {
        reordered_after_eligible |= seen_eligible && step.reorders();
        match step {
            Step::Geo => {
                cands = inp
                    .catchment
                    .order
                    .iter()
                    .map(|&i| usize::from(i))
                    .collect();
            }
            Step::Priority => {
                if cands.is_empty() {
                    cands = svc.regions.iter().copied().collect();
                }
                let pos = |i: &usize| {
                    svc.regions
                        .iter()
                        .position(|r| r == i)
                        .unwrap_or(usize::MAX)
                };
                cands.sort_by_key(|i| (regions.get(*i).is_some_and(|r| r.backup), pos(i)));
            }
            Step::Eligible => {
                seen_eligible = true;
                let before = std::mem::take(&mut cands);
                for i in before {
                    let Some(r) = regions.get(i) else { continue };
                    if !r.serves(family) {
                        trace.dropped(i, Why::NoVipOfFamily);
                        continue;
                    }
                    initial.push(i);
                    let view = inp.health.region(r.id);
                    if !view.eligible {
                        trace.dropped(
                            i,
                            if inp.health.is_drained(r.id) {
                                Why::Drained
                            } else {
                                Why::Down
                            },
                        );
                        dropped.push(i);
                        continue;
                    }
                    // A region answered by name is up or down as a whole.
                    let (up, total) = if r.cname.is_some() {
                        (1, 1)
                    } else {
                        family_vips(r, view.vip_up, family)
                    };
                    if up == 0 {
                        trace.dropped(i, Why::VipsDown);
                        dropped.push(i);
                        continue;
                    }
                    if up < total {
                        partial = true;
                    }
                    cands.push(i);
                }
                if cands.iter().any(|&i| !regions[i].backup) {
                    cands.retain(|i| {
                        let keep = !regions[*i].backup;
                        if !keep {
                            trace.dropped(*i, Why::BackupNotNeeded);
                        }
                        keep
                    });
                }
            }
            Step::Weighted => {
                weighted_order(
                    &mut cands,
                    regions,
                    hash::mix64(inp.client_hash ^ hash::mix64(inp.slot)),
                );
            }
            Step::Score => {
                score_order(&mut cands, inp, trace);
            }
            Step::Shed => {
                if let Some(shed) = svc.shed {
                    shed_order(&mut cands, inp, &shed, trace);
                }
            }
            Step::Sticky => {
                let mut keyed: SmallVec<[(f64, usize); 16]> = cands
                    .iter()
                    .map(|&i| (rendezvous_key(inp.client_hash, &regions[i]), i))
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                cands.clear();
                cands.extend(keyed.into_iter().map(|(_, i)| i));
            }
        }
        trace.after(step, &cands);
    }
    answerable(&mut cands, regions);
    cands.truncate(svc.answers);

    // The TTL cap covers every region whose change could change this answer: with an ordered
    // chain, those up to the last chosen; when later steps reorder, all of them.
    let last_pos = cands
        .iter()
        .filter_map(|c| initial.iter().position(|i| i == c))
        .max()
        .unwrap_or(initial.len().saturating_sub(1));
    let considered = if reordered_after_eligible || cands.is_empty() {
        &initial[..]
    } else {
        &initial[..(last_pos + 1).min(initial.len())]
    };
    // The TTL the operator wrote, lowered to the next probe that could change the answer only
    // when the service opts in (`ttl_follows_probes`).
    let cap = if svc.ttl_follows_probes {
        considered
            .iter()
            .filter_map(|&i| inp.health.region(regions[i].id).stable_until)
            .min()
    } else {
        None
    };

    if !cands.is_empty() {
        let degraded = partial
            || if reordered_after_eligible {
                !dropped.is_empty()
            } else {
                dropped.iter().any(|d| {
                    initial
                        .iter()
                        .position(|i| i == d)
                        .is_some_and(|p| p < last_pos)
                })
            };
        let base = if degraded { svc.degraded_ttl } else { svc.ttl };
        return Decision {
            regions: cands.iter().copied().collect(),
            healthy_vips_only: true,
            cname: target_of(&cands, regions),
            outcome: if degraded {
                Outcome::Degraded
            } else {
                Outcome::Normal
            },
            ttl: cap_ttl(base, cap, inp.now, svc.min_ttl),
        };
    }
    if !svc.regions.iter().any(|&i| serving(i)) {
        // No region of this service has a VIP of this family: a plain NODATA, not an outage.
        return Decision {
            regions: SmallVec::new(),
            healthy_vips_only: true,
            cname: None,
            outcome: Outcome::Normal,
            ttl: svc.ttl,
        };
    }
    // Nothing eligible: the client's order (before eligibility) for the fail-open modes.
    let order: Cands = if initial.is_empty() {
        svc.regions
            .iter()
            .copied()
            .filter(|&i| serving(i))
            .collect()
    } else {
        initial.clone()
    };
    let (regions_out, cname): (SmallVec<[usize; 4]>, _) = match &svc.all_down {
        // Every region of the service, the client's order first.
        AllDown::All => {
            let mut all: SmallVec<[usize; 4]> = order.iter().copied().collect();
            all.extend(
                svc.regions
                    .iter()
                    .copied()
                    .filter(|&i| serving(i) && !order.contains(&i)),
            );
            (all, None)
        }
        AllDown::First => (order.iter().copied().take(1).collect(), None),
        AllDown::Region(ri) => (
            if serving(*ri) {
                SmallVec::from_slice(&[*ri])
            } else {
                SmallVec::new()
            },
            None,
        ),
        AllDown::Cname(name) => (SmallVec::new(), Some(name.clone())),
        AllDown::NoData => (SmallVec::new(), None),
    };
    let mut regions_out = regions_out;
    answerable(&mut regions_out, regions);
    let cname = cname.or_else(|| target_of(&regions_out, regions));
    Decision {
        regions: regions_out,
        healthy_vips_only: false,
        cname,
        outcome: Outcome::AllDown,
        ttl: cap_ttl(svc.degraded_ttl, cap, inp.now, svc.min_ttl),
    }
}

/// What one answer can hold: a CNAME owner has no other data (RFC 1034 §3.6.2), so when the
/// first region answers by name (`cname`) it answers alone; otherwise regions answered by name
/// are skipped and the VIP regions answer.
fn answerable<A: smallvec::Array<Item = usize>>(order: &mut SmallVec<A>, regions: &[Region]) {
    let named = |i: &usize| regions.get(*i).is_some_and(|r| r.cname.is_some());
    match order.first() {
        Some(first) if named(first) => order.truncate(1),
        _ => order.retain(|i| !named(i)),
    }
}

/// The CNAME target of an answer whose (only) region answers by name.
fn target_of(order: &[usize], regions: &[Region]) -> Option<hickory_proto::rr::Name> {
    order
        .first()
        .and_then(|&i| regions.get(i))
        .and_then(|r| r.cname.clone())
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

/// Weighted random order without replacement (Efraimidis–Spirakis: key = u^(1/w), largest
/// first), where each region's `u` comes from `draw` (the client network and time slot) and the
/// region's seed: over many clients the first place goes to each region with probability
/// w / Σw, and one client gets the same order from every instance for a whole slot.
fn weighted_order(cands: &mut Cands, regions: &[Region], draw: u64) {
    if cands.len() < 2 {
        return;
    }
    let mut keyed: SmallVec<[(f64, usize); 16]> = cands
        .iter()
        .map(|&i| {
            let w = f64::from(regions[i].weight.max(1));
            let u = hash::unit(draw, regions[i].seed);
            (u.ln() / w, i)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    cands.clear();
    cands.extend(keyed.into_iter().map(|(_, i)| i));
}

/// Weighted rendezvous (highest random weight) key: lower wins. `-ln(u) / w` is an exponential
/// variable with rate `w`, so the minimum falls on each region with probability w / Σw, and a
/// region's key does not depend on the others: removing one moves only its own clients.
fn rendezvous_key(client: u64, r: &Region) -> f64 {
    -hash::unit(client, r.seed).ln() / f64::from(r.weight.max(1))
}

/// The score of each candidate (lower is better): the weighted sum of its distance, latency,
/// load and cost, each divided by the largest among the candidates so that terms are 0…1.
/// A missing value (no RTT yet, no fresh load) counts as the mean of the known ones.
pub fn score_parts(inp: &Inputs<'_>, cands: &[usize]) -> SmallVec<[ScoreParts; 16]> {
    let w = inp.svc.score;
    let pos_in_service = |i: usize| inp.svc.regions.iter().position(|r| *r == i);
    let raw: SmallVec<[[Option<f64>; 4]; 16]> = cands
        .iter()
        .map(|&i| {
            let r = &inp.regions[i];
            let view = inp.health.region(r.id);
            let dist = pos_in_service(i)
                .and_then(|p| inp.catchment.dist_km.get(p))
                .map(|d| f64::from(*d));
            [
                dist,
                view.rtt_ms.map(f64::from),
                view.load.map(f64::from),
                Some(r.cost),
            ]
        })
        .collect();
    let mut norm = [(0.0f64, 0.0f64); 4]; // (max, mean of known)
    for (k, slot) in norm.iter_mut().enumerate() {
        let known: SmallVec<[f64; 16]> = raw.iter().filter_map(|v| v[k]).collect();
        let max = known.iter().copied().fold(0.0, f64::max);
        let mean = if known.is_empty() {
            0.0
        } else {
            known.iter().sum::<f64>() / known.len() as f64
        };
        *slot = (max, mean);
    }
    raw.iter()
        .map(|v| {
            let t = |k: usize| {
                let (max, mean) = norm[k];
                let x = v[k].unwrap_or(mean);
                if max > 0.0 { x / max } else { 0.0 }
            };
            let mut p = ScoreParts {
                distance: t(0),
                latency: t(1),
                load: t(2),
                cost: t(3),
                total: 0.0,
            };
            p.total =
                w.distance * p.distance + w.latency * p.latency + w.load * p.load + w.cost * p.cost;
            p
        })
        .collect()
}

fn score_order<T: Trace>(cands: &mut Cands, inp: &Inputs<'_>, trace: &mut T) {
    let parts = score_parts(inp, cands);
    for (c, p) in cands.iter().zip(&parts) {
        trace.scored(*c, *p);
    }
    let mut keyed: SmallVec<[(f64, usize, usize); 16]> = cands
        .iter()
        .zip(&parts)
        .enumerate()
        .map(|(pos, (c, p))| (p.total, pos, *c))
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    cands.clear();
    cands.extend(keyed.into_iter().map(|x| x.2));
}

/// Load shedding (NS1's shed_load, with spill-over to several neighbours): walking the order, a
/// candidate whose load is between the watermarks keeps a client unless the client's stable hash
/// for it falls under the shed fraction. A shed client goes to one of the next `spill`
/// candidates that have room below the high watermark, chosen by rendezvous weighted by spare
/// capacity, and the loaded region moves to the end. With no room anywhere the client stays.
fn shed_order<T: Trace>(cands: &mut Cands, inp: &Inputs<'_>, shed: &Shed, trace: &mut T) {
    let load = |i: usize| inp.health.region(inp.regions[i].id).load.map(f64::from);
    let mut out: Cands = SmallVec::new();
    let mut rest: Cands = cands.clone();
    // Only the places that will be answered need deciding; the rest keep their order.
    while !rest.is_empty() && out.len() < inp.svc.answers {
        let head = rest[0];
        let f = load(head).map_or(0.0, |l| shed.fraction(l));
        let stays = f <= 0.0 || hash::unit(inp.client_hash, inp.regions[head].seed ^ 0x5eed) >= f;
        if stays {
            out.push(rest.remove(0));
            continue;
        }
        let spare = |i: usize| {
            let l = load(i).unwrap_or(0.0);
            (shed.high - l).max(0.0) * f64::from(inp.regions[i].weight.max(1))
        };
        let target = rest
            .iter()
            .skip(1)
            .take(shed.spill)
            .copied()
            .filter(|&i| spare(i) > 0.0)
            .min_by(|&a, &b| {
                let ka = -hash::unit(inp.client_hash, inp.regions[a].seed).ln() / spare(a);
                let kb = -hash::unit(inp.client_hash, inp.regions[b].seed).ln() / spare(b);
                ka.total_cmp(&kb)
            });
        trace.shed(head, f, target);
        match target {
            Some(t) => {
                out.push(t);
                rest.retain(|x| *x != t);
                // The loaded region stays a last resort for this client.
                let h = rest.remove(0);
                rest.push(h);
            }
            None => out.push(rest.remove(0)),
        }
    }
    out.extend(rest);
    *cands = out;
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
mod tests;
