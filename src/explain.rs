//! `explain`: the decision behind an answer, as a table. It runs the same [`steer::steer`] and
//! [`steer::for_each_vip`] as the query path, with a [`Trace`] that records each step, and asks
//! the same placement rules as the geo maps ([`crate::geo::place`]) how the client was placed.

#![allow(
    clippy::disallowed_methods,
    reason = "`[[expect]]` cases are decided at the current time"
)]

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Instant;

use hickory_proto::rr::{LowerName, Name, RecordType};
use ipnet::IpNet;
use serde::Serialize;

use crate::geo::{GeoDefault, Placement, canonical, distance_km};
use crate::served::{Catalog, Served};
use crate::snapshot::HealthSnapshot;
use crate::steer::{self, Family, ScoreParts, Step, Trace, Why};
use crate::zone::{Region, Service, Zone};

/// How the client's location (or region list) was found.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    /// `ecs` or `source`: which address was used.
    pub address_from: &'static str,
    /// The address that was located: the ECS network's address (truncated to the prefix) or the
    /// source, IPv4-mapped addresses as IPv4.
    pub address: IpAddr,
    /// The ECS source prefix, when the client was given as a network.
    pub prefix: Option<u8>,
    /// `network rule 10.0.0.0/8`, `country rule DE`, `continent rule EU`, `database`,
    /// `default location`, `default regions`, `listed order`.
    pub how: String,
    /// The database network holding the address; `None` when the database has no record for it (or
    /// there is no database).
    pub network: Option<String>,
    /// Latitude in degrees: the database's, or the service's default location; `None` when neither
    /// applies.
    pub latitude: Option<f64>,
    /// Longitude in degrees, as `latitude`.
    pub longitude: Option<f64>,
    /// The database's country code (`DE`); `None` when absent.
    pub country: Option<String>,
    /// The database's continent code (`EU`); `None` when absent.
    pub continent: Option<String>,
    /// The database's subdivision (`US-CA`); `None` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subdivision: Option<String>,
    /// The client's autonomous system, from the ASN database; `None` without one or when it
    /// does not know the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
}

/// One region's line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The region's name.
    pub region: String,
    /// `up`, `partial` (some VIP down), `down` or `drained`, from the health snapshot.
    pub health: &'static str,
    /// Great-circle distance from the client's location, whole kilometres; `None` when the client
    /// has no location.
    pub distance_km: Option<f64>,
    /// The region's RTT moving average, milliseconds to one decimal; `None` without a
    /// successful probe.
    pub rtt_ms: Option<f64>,
    /// The region's load in the snapshot (an operator's, or a fresh probe reading); `None` when
    /// there is none.
    pub load: Option<f64>,
    /// The region's configured cost.
    pub cost: f64,
    /// The region's configured weight.
    pub weight: u32,
    /// The region's total score, to three decimals; `None` when the score step did not score it.
    pub score: Option<f64>,
    /// `chosen #1`, `down`, `drained`, `not selected`, `shed (30%) to eu-west`…
    pub result: String,
    /// When the region's timed override returns to `auto` (RFC 3339), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_until: Option<String>,
}

/// The whole explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The service's fully qualified name.
    pub name: String,
    /// The zone's origin.
    pub zone: String,
    /// The service's label as the zone file names it.
    pub service: String,
    /// `A` or `AAAA`.
    pub qtype: String,
    /// The service's steering steps by name, in order (`geo`, `priority`, …).
    pub chain: Vec<&'static str>,
    /// Where the client was placed, and how.
    pub located: Located,
    /// One line per region: those the chain kept, in its order, then the rest that the service
    /// or its geo catchment names.
    pub rows: Vec<Row>,
    /// The answer's data as text: the VIPs, or `CNAME target` when all down answers a CNAME; empty
    /// for NODATA.
    pub answer: Vec<String>,
    /// The TTL the answer would carry, in seconds.
    pub ttl: u32,
    /// `normal`, `degraded` or `alldown`.
    pub outcome: String,
    /// The ECS scope this answer would carry for the given client network.
    pub scope: u8,
    /// The zone region indices chosen, in answer order.
    #[serde(skip)]
    pub chosen: Vec<usize>,
}

#[derive(Default)]
struct Recorder {
    dropped: Vec<(usize, Why)>,
    scores: Vec<(usize, ScoreParts)>,
    shed: Vec<(usize, f64, Option<usize>)>,
    last: Vec<usize>,
}

impl Trace for Recorder {
    fn after(&mut self, _step: Step, candidates: &[usize]) {
        self.last = candidates.to_vec();
    }
    fn dropped(&mut self, region: usize, why: Why) {
        self.dropped.push((region, why));
    }
    fn scored(&mut self, region: usize, parts: ScoreParts) {
        self.scores.push((region, parts));
    }
    fn shed(&mut self, region: usize, fraction: f64, moved_to: Option<usize>) {
        self.shed.push((region, fraction, moved_to));
    }
}

/// Explains the answer to `name`/`qtype` for a client at `client` (an ECS network when
/// `prefix` is given, else a resolver's source address).
pub fn explain(
    served: &Served,
    name: &Name,
    qtype: RecordType,
    client: IpAddr,
    prefix: Option<u8>,
    now: Instant,
) -> Result<Explanation, String> {
    let zones = &served.zones;
    let lname = LowerName::new(name);
    let zone = zones
        .zone_for(&lname)
        .ok_or_else(|| format!("{name} is in none of our zones"))?;
    let svc = zone
        .services
        .iter()
        .find(|s| LowerName::new(&s.name) == lname)
        .ok_or_else(|| format!("{name} is not a steered name (static data needs no explaining)"))?;
    let family = match qtype {
        RecordType::A => Family::V4,
        RecordType::AAAA => Family::V6,
        t => return Err(format!("services answer A and AAAA, not {t}")),
    };
    // A service that ignores ECS locates the resolver: a network given as the client counts
    // as that resolver's address.
    let prefix = prefix.filter(|_| svc.use_ecs);
    let addr = match prefix {
        Some(p) => IpNet::new(canonical(client), p)
            .map_err(|e| format!("{client}/{p}: {e}"))?
            .trunc()
            .addr(),
        None => canonical(client),
    };
    Ok(explain_service(
        zones,
        &served.health,
        zone,
        svc,
        family,
        addr,
        prefix,
        now,
        crate::rt::unix_seconds(),
    ))
}

/// Explains one service's decision (also what `_explain.<name> TXT` answers).
#[allow(clippy::too_many_arguments)]
pub fn explain_service(
    zones: &Catalog,
    health: &HealthSnapshot,
    zone: &Zone,
    svc: &Service,
    family: Family,
    addr: IpAddr,
    prefix: Option<u8>,
    now: Instant,
    wall: u64,
) -> Explanation {
    let mut located = locate(zones, svc, addr, prefix.is_some_and(|p| p > 0));
    located.prefix = prefix;
    let coords = located.latitude.zip(located.longitude);
    let map = zones.map(svc);
    let (catchment, _) = map.locate(addr);
    let mut rec = Recorder::default();
    let scoped = prefix.is_some_and(|p| p > 0).then_some(addr);
    let (d, scope) = steer::steer(
        svc,
        map,
        &zone.regions,
        health,
        family,
        addr,
        scoped,
        now,
        wall,
        &mut rec,
    );
    let mut rows = Vec::new();
    // Regions in the order the chain left them, then the rest of the service's.
    let mut order: Vec<usize> = rec.last.clone();
    for &i in catchment
        .order
        .iter()
        .map(|i| usize::from(*i))
        .collect::<Vec<_>>()
        .iter()
        .chain(svc.regions.iter())
    {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    for i in order {
        let Some(r) = zone.regions.get(i) else {
            continue;
        };
        let view = health.region(r.id);
        let result = if let Some(pos) = d.regions.iter().position(|x| *x == i) {
            match d.outcome {
                steer::Outcome::AllDown => format!("answered #{} (all down: fail-open)", pos + 1),
                _ => format!("chosen #{}", pos + 1),
            }
        } else if r.cname.is_some()
            && !d.regions.is_empty()
            && rec.last.contains(&i)
            && !rec.dropped.iter().any(|(x, _)| *x == i)
        {
            "answers by name; an address answer comes first".into()
        } else if let Some((_, why)) = rec.dropped.iter().find(|(x, _)| *x == i) {
            match why {
                Why::NoVipOfFamily => format!(
                    "no {} VIP",
                    if family == Family::V4 { "IPv4" } else { "IPv6" }
                ),
                Why::Down => "down".into(),
                Why::Drained => "drained".into(),
                Why::VipsDown => "every VIP of the family down".into(),
                Why::BackupNotNeeded => "backup, a primary is up".into(),
            }
        } else if let Some((_, f, to)) = rec.shed.iter().find(|(x, _, _)| *x == i) {
            match to {
                Some(t) => format!(
                    "shed ({:.0}% of clients) to {}",
                    f * 100.0,
                    zone.regions[*t].name
                ),
                None => format!("shedding {:.0}%, no room elsewhere", f * 100.0),
            }
        } else if !svc.regions.contains(&i) {
            "not in this service".into()
        } else if !catchment.order.contains(&(i as u16)) && svc.chain.first() == Some(&Step::Geo) {
            "excluded by a geo rule".into()
        } else {
            "not selected".into()
        };
        rows.push(Row {
            region: r.name.clone(),
            health: health_word(health, r),
            override_until: view.override_until.map(|t| {
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
                )
                .to_string()
            }),
            distance_km: coords.map(|c| distance_km(c, (r.lat, r.lon)).round()),
            rtt_ms: view.rtt_ms.map(|v| (f64::from(v) * 10.0).round() / 10.0),
            load: view.load.map(f64::from),
            cost: r.cost,
            weight: r.weight,
            score: rec
                .scores
                .iter()
                .find(|(x, _)| *x == i)
                .map(|(_, p)| (p.total * 1000.0).round() / 1000.0),
            result,
        });
    }
    let mut answer = Vec::new();
    if let Some(c) = &d.cname {
        answer.push(format!("CNAME {c}"));
    }
    steer::for_each_vip(&zone.regions, health, family, &d, |ip| {
        answer.push(ip.to_string())
    });
    Explanation {
        name: svc.name.to_string(),
        zone: zone.origin.to_string(),
        service: svc.label.clone(),
        qtype: if family == Family::V4 {
            "A".into()
        } else {
            "AAAA".into()
        },
        chain: svc.chain.iter().map(|s| s.name()).collect(),
        located,
        rows,
        answer,
        ttl: d.ttl,
        outcome: format!("{:?}", d.outcome).to_lowercase(),
        scope,
        chosen: d.regions.to_vec(),
    }
}

fn health_word(h: &HealthSnapshot, r: &Region) -> &'static str {
    let v = h.region(r.id);
    if v.drained {
        "drained"
    } else if !v.eligible {
        "down"
    } else if r
        .vips
        .iter()
        .enumerate()
        .any(|(i, _)| i < 64 && v.vip_up & (1 << i) == 0)
    {
        "partial"
    } else {
        "up"
    }
}

/// How the client was placed, from the same placement rules the geo maps are built with.
fn locate(zones: &Catalog, svc: &Service, addr: IpAddr, from_ecs: bool) -> Located {
    let mut l = Located {
        address_from: if from_ecs { "ecs" } else { "source" },
        address: addr,
        prefix: None,
        how: String::new(),
        network: None,
        latitude: None,
        longitude: None,
        country: None,
        continent: None,
        subdivision: None,
        asn: zones.geo.as_ref().and_then(|g| g.asn_of(addr)),
    };
    let db = zones.geo.as_ref().and_then(|g| g.lookup(addr).ok());
    if let Some(d) = &db {
        l.network = d.record.map(|_| d.network.clone());
        if let Some(rec) = d.record {
            l.latitude = rec.coords().map(|c| c.0);
            l.longitude = rec.coords().map(|c| c.1);
            l.country = rec.country_str().map(str::to_string);
            l.continent = rec.continent_str().map(str::to_string);
            l.subdivision = rec.subdivision_str();
        }
    }
    let rules = &svc.rules;
    let rec = db.as_ref().and_then(|d| d.record);
    l.how = match crate::geo::place(rules, &svc.regions, addr, rec.as_ref(), l.asn) {
        Placement::Network(net) => format!("network rule {net}"),
        Placement::Asn(a) => format!("ASN rule AS{a}"),
        Placement::Subdivision(..) => format!(
            "subdivision rule {}",
            rec.as_ref()
                .and_then(|r| r.subdivision_str())
                .unwrap_or_default()
        ),
        Placement::Country(_) => format!(
            "country rule {}",
            rec.as_ref().and_then(|r| r.country_str()).unwrap_or("?")
        ),
        Placement::Continent(_) => format!(
            "continent rule {}",
            rec.as_ref().and_then(|r| r.continent_str()).unwrap_or("?")
        ),
        Placement::Coordinates => "database".into(),
        Placement::Default => match &rules.default {
            GeoDefault::Location(lat, lon) => {
                l.latitude = Some(*lat);
                l.longitude = Some(*lon);
                "default location (not in the database)".into()
            }
            GeoDefault::Regions(_) => "default regions (not in the database)".into(),
            GeoDefault::ListedOrder => "listed order (not in the database)".into(),
        },
    };
    l
}

impl Explanation {
    /// The table as text, for the CLI.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let l = &self.located;
        let _ = writeln!(
            s,
            "{} {}  (service {} in zone {}, chain: {})",
            self.name,
            self.qtype,
            self.service,
            self.zone,
            self.chain.join(" → ")
        );
        let client = match l.prefix {
            Some(p) => format!("{}/{p}", l.address),
            None => l.address.to_string(),
        };
        let _ = write!(s, "client {client} (from {}): {}", l.address_from, l.how);
        if let Some(n) = &l.network {
            let _ = write!(s, ", network {n}");
        }
        if let (Some(a), Some(o)) = (l.latitude, l.longitude) {
            let _ = write!(s, ", at {a:.2}, {o:.2}");
        }
        if let Some(c) = &l.country {
            let _ = write!(s, ", {c}");
        }
        if let Some(c) = &l.continent {
            let _ = write!(s, "/{c}");
        }
        if let Some(c) = &l.subdivision {
            let _ = write!(s, ", {c}");
        }
        if let Some(a) = l.asn {
            let _ = write!(s, ", AS{a}");
        }
        s.push('\n');
        let _ = writeln!(
            s,
            "{:<16} {:<8} {:>9} {:>8} {:>6} {:>6} {:>7} {:>7}  result",
            "region", "health", "dist km", "rtt ms", "load", "cost", "weight", "score"
        );
        let opt =
            |v: Option<f64>, prec: usize| v.map_or("-".to_string(), |x| format!("{x:.prec$}"));
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{:<16} {:<8} {:>9} {:>8} {:>6} {:>6.2} {:>7} {:>7}  {}",
                r.region,
                r.health,
                opt(r.distance_km, 0),
                opt(r.rtt_ms, 1),
                opt(r.load, 2),
                r.cost,
                r.weight,
                opt(r.score, 3),
                match &r.override_until {
                    Some(t) => format!("{} (override until {t})", r.result),
                    None => r.result.clone(),
                }
            );
        }
        let _ = writeln!(
            s,
            "answer: {}  ttl {}  ({})  ecs scope /{}",
            if self.answer.is_empty() {
                "(none: NODATA)".to_string()
            } else {
                self.answer.join(" ")
            },
            self.ttl,
            self.outcome,
            self.scope
        );
        s
    }
}

/// Evaluates every zone's `[[expect]]` cases: each runs the real decision with every region up
/// except those it names down, and the loads it names. Returns one diagnostic per failed case.
pub fn check_expectations(zones: &Catalog) -> Vec<crate::diag::Diagnostic> {
    let mut out = Vec::new();
    let now = Instant::now();
    for zone in &zones.zones {
        for e in &zone.expects {
            let Some(svc) = zone.services.get(e.service) else {
                continue;
            };
            let mut h = HealthSnapshot::all_up(zones.region_count());
            for &d in &e.down {
                h = h.with(zone.regions[d].id, false);
            }
            for &(r, l) in &e.load {
                h = h.with_load(zone.regions[r].id, Some(l as f32));
            }
            let addr = match e.prefix {
                Some(p) => IpNet::new(canonical(e.client), p)
                    .map(|n| n.trunc().addr())
                    .unwrap_or(e.client),
                None => canonical(e.client),
            };
            // Time slot 0: a weighted case decides the same way on every run.
            let x = explain_service(zones, &h, zone, svc, e.family, addr, e.prefix, now, 0);
            let names = |v: &[usize]| {
                v.iter()
                    .map(|&i| zone.regions[i].name.clone())
                    .collect::<Vec<_>>()
            };
            let got = &x.chosen;
            if *got != e.regions {
                out.push(crate::diag::Diagnostic::new(
                    &zone.file,
                    e.line,
                    format!(
                        "expect: {} for {} gives {:?}, expected {:?} ({})",
                        svc.label,
                        e.client,
                        names(got),
                        names(&e.regions),
                        x.located.how
                    ),
                ));
            }
        }
    }
    out
}
