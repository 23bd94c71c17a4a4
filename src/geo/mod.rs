//! Where a client is: EDNS Client Subnet handling, the geolocation database, and the per-service
//! network map that turns a client address into an ordered region list and an ECS scope.
//!
//! The database is read once per load ([`GeoDb::open`]); each service then gets a [`GeoMap`]
//! compiled from it and from the operator's geo rules, so answering a query costs one binary
//! search. This module decides nothing about health; `steer` does that with the order it gets.

pub mod build;
pub mod continent;
mod db;
pub mod ecs;
pub mod table;

use std::net::IpAddr;

use ipnet::IpNet;

pub use db::{
    ALIAS_BASE, DbLookup, GeoDb, GeoDbError, GeoRecord, NO_RECORD, Tables, code as db_code,
    subdivision_code, subdivision_text,
};
pub use ecs::{Ecs, EcsError};
use table::RangeTable;

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers)
/// are IPv4 clients.
#[inline]
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Great-circle distance in kilometres (haversine, mean Earth radius 6371 km).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    Point::new(a.0, a.1).distance_km(&Point::new(b.0, b.1))
}

/// A place in radians with the cosine of its latitude, for many distances from it: the same
/// arithmetic as [`distance_km`], in the same order (bit-identical results), with each
/// cosine computed once.
#[derive(Debug, Clone, Copy)]
struct Point {
    lat: f64,
    lon: f64,
    cos_lat: f64,
}

impl Point {
    fn new(lat_deg: f64, lon_deg: f64) -> Self {
        let lat = lat_deg.to_radians();
        Self {
            lat,
            lon: lon_deg.to_radians(),
            cos_lat: lat.cos(),
        }
    }

    fn distance_km(&self, to: &Point) -> f64 {
        let dlat = to.lat - self.lat;
        let dlon = to.lon - self.lon;
        let h = (dlat / 2.0).sin().powi(2) + self.cos_lat * to.cos_lat * (dlon / 2.0).sin().powi(2);
        2.0 * 6371.0 * h.sqrt().min(1.0).asin()
    }
}

pub use crate::zone::rules::{GeoDefault, GeoRules};

/// A table value that lets the layer below show through ([`RangeTable::overlay`]); below the
/// IPv4 alias markers, far above any catchment id.
const SEE_THROUGH: u32 = db::ALIAS_BASE - 1;

/// Which rule of the precedence places a client. [`GeoMap::build`] places every network with
/// these same functions, and `explain` asks them about one client, so the two cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Placement {
    /// A `networks` rule (the longest prefix that lists one of the service's regions).
    Network(IpNet),
    /// An `asns` rule: the client's autonomous system, from the ASN database.
    Asn(u32),
    /// A `subdivisions` rule (`US-CA`).
    Subdivision([u8; 2], [u8; 3]),
    /// A `countries` rule.
    Country([u8; 2]),
    /// A `continents` rule.
    Continent([u8; 2]),
    /// The database's coordinates: nearest first.
    Coordinates,
    /// The database does not place the client: `default`.
    Default,
}

/// Whether a rule's region list names one of the service's regions (else it does not apply).
fn applies(list: &[usize], service_regions: &[usize]) -> bool {
    list.iter().any(|r| service_regions.contains(r))
}

/// The `networks` rule for `addr`, if one applies: the longest prefix containing it.
pub fn network_rule<'r>(
    rules: &'r GeoRules,
    service_regions: &[usize],
    addr: IpAddr,
) -> Option<&'r (IpNet, Vec<usize>)> {
    rules
        .networks
        .iter()
        .filter(|(n, l)| n.contains(&addr) && applies(l, service_regions))
        .max_by_key(|(n, _)| n.prefix_len())
}

/// Where the rules after `networks` and `asns` place a database record (or its absence):
/// subdivisions → countries → continents → coordinates → default.
pub fn place_record(
    rules: &GeoRules,
    service_regions: &[usize],
    rec: Option<&GeoRecord>,
) -> Placement {
    let Some(rec) = rec else {
        return Placement::Default;
    };
    if rec.subdivision != [0, 0, 0]
        && rules
            .subdivisions
            .get(&(rec.country, rec.subdivision))
            .is_some_and(|l| applies(l, service_regions))
    {
        return Placement::Subdivision(rec.country, rec.subdivision);
    }
    if rules
        .countries
        .get(&rec.country)
        .is_some_and(|l| applies(l, service_regions))
    {
        return Placement::Country(rec.country);
    }
    if rules
        .continents
        .get(&rec.continent)
        .is_some_and(|l| applies(l, service_regions))
    {
        return Placement::Continent(rec.continent);
    }
    if rec.coords().is_some() {
        return Placement::Coordinates;
    }
    Placement::Default
}

/// The `asns` rule for a client in autonomous system `asn`, if one applies.
pub fn asn_rule<'r>(
    rules: &'r GeoRules,
    service_regions: &[usize],
    asn: u32,
) -> Option<&'r Vec<usize>> {
    rules
        .asns
        .get(&asn)
        .filter(|l| asn != 0 && applies(l, service_regions))
}

/// Where the whole precedence places a client at `addr` whose database record is `rec` and
/// whose autonomous system (from the ASN database) is `asn`: networks → ASNs → subdivisions →
/// countries → continents → coordinates → default.
pub fn place(
    rules: &GeoRules,
    service_regions: &[usize],
    addr: IpAddr,
    rec: Option<&GeoRecord>,
    asn: Option<u32>,
) -> Placement {
    if let Some((net, _)) = network_rule(rules, service_regions, addr) {
        return Placement::Network(*net);
    }
    if let Some(a) = asn.filter(|a| asn_rule(rules, service_regions, *a).is_some()) {
        return Placement::Asn(a);
    }
    place_record(rules, service_regions, rec)
}

/// A region for ordering: its index in the zone, its coordinates and its bias.
#[derive(Debug, Clone, Copy)]
pub struct Site {
    /// The region's index in its zone's `regions`.
    pub index: usize,
    /// Latitude in degrees, north positive.
    pub lat: f64,
    /// Longitude in degrees, east positive.
    pub lon: f64,
    /// −99…99: positive grows the region's catchment, negative shrinks it. Distances to the
    /// region count as `d × (1 − bias/100)` (Route 53 geoproximity's bias).
    pub bias: f64,
}

/// Where a client's answer starts: the ordered region list, and (when the service scores
/// distance) the distance to each of the service's regions.
#[derive(Debug, Clone, PartialEq)]
pub struct Catchment {
    /// Zone region indices, best first.
    pub order: Vec<u16>,
    /// Kilometres from the client to each service region, by position in the service's region
    /// list; empty when unknown or not needed.
    pub dist_km: Vec<f32>,
}

/// Client network → catchment, with the widest prefix that shares it.
#[derive(Debug, Clone)]
pub struct GeoMap {
    /// Distinct catchments; table values index this.
    pub catchments: Vec<Catchment>,
    tables: Tables,
}

static EMPTY: Catchment = Catchment {
    order: Vec::new(),
    dist_km: Vec::new(),
};

impl GeoMap {
    /// The catchment for `ip` and the ECS scope prefix for which it holds.
    #[inline]
    pub fn locate(&self, ip: IpAddr) -> (&Catchment, u8) {
        let (id, scope) = self.tables.lookup(ip);
        (self.catchments.get(id as usize).unwrap_or(&EMPTY), scope)
    }

    /// Number of ranges in the two tables (a measure of how well the map merged).
    pub fn ranges(&self) -> (usize, usize) {
        (self.tables.v4.len(), self.tables.v6.len())
    }

    /// A map that places nobody: every address gets an empty catchment, scope 0.
    pub fn empty() -> GeoMap {
        GeoMap {
            catchments: Vec::new(),
            tables: Tables {
                v4: RangeTable::uniform(u32::MAX),
                v6: RangeTable::uniform(u32::MAX),
                aliases: Vec::new(),
            },
        }
    }

    /// Builds the map of one service.
    ///
    /// Precedence, most specific first: `networks` (longest prefix wins, and wins over the
    /// database whatever its prefix), `countries`, `continents`, the database's coordinates
    /// (nearest first), then `default`. A rule listing only regions the service does not use
    /// does not apply. With `with_distances`, catchments also carry the distance to every
    /// region (the score policy needs them), so fewer neighbours merge.
    pub fn build(
        db: Option<&GeoDb>,
        sites: &[Site],
        rules: &GeoRules,
        with_distances: bool,
    ) -> GeoMap {
        let mut interner = Interner::default();
        let service_regions: Vec<usize> = sites.iter().map(|s| s.index).collect();
        let dists = |at: Option<(f64, f64)>| -> Vec<f32> {
            match (with_distances, at) {
                (true, Some(p)) => sites
                    .iter()
                    .map(|s| distance_km(p, (s.lat, s.lon)) as f32)
                    .collect(),
                _ => Vec::new(),
            }
        };
        let allowed = |list: &[usize]| -> Vec<u16> {
            list.iter()
                .filter(|i| sites.iter().any(|s| s.index == **i))
                .filter_map(|&i| u16::try_from(i).ok())
                .collect()
        };
        let site_points: Vec<Point> = sites.iter().map(|s| Point::new(s.lat, s.lon)).collect();
        let proximity = |lat: f64, lon: f64| -> Vec<u16> {
            let here = Point::new(lat, lon);
            let mut v: Vec<(f64, usize, u16)> = sites
                .iter()
                .zip(&site_points)
                .enumerate()
                .map(|(pos, (s, at))| {
                    let d = here.distance_km(at) * (1.0 - s.bias / 100.0);
                    (d, pos, u16::try_from(s.index).unwrap_or(u16::MAX))
                })
                .collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            v.into_iter().map(|x| x.2).collect()
        };
        let listed: Vec<u16> = sites
            .iter()
            .filter_map(|s| u16::try_from(s.index).ok())
            .collect();
        let default_order = match &rules.default {
            GeoDefault::ListedOrder => listed.clone(),
            GeoDefault::Location(lat, lon) => proximity(*lat, *lon),
            GeoDefault::Regions(list) => {
                let l = allowed(list);
                if l.is_empty() { listed.clone() } else { l }
            }
        };
        let default_at = match &rules.default {
            GeoDefault::Location(lat, lon) => Some((*lat, *lon)),
            _ => None,
        };
        let default_id = interner.id(default_order, dists(default_at));

        let tables = match db {
            Some(db) => {
                // The distinct places records are ranked at, in first-seen order, ranked ahead
                // (on every core when there is much to rank: 1 000 regions at each of GeoLite2's
                // places is most of such a map's build); interned below in the same order as
                // one by one, so the ids are the same.
                let mut place_of: rustc_hash::FxHashMap<(u64, u64), usize> = Default::default();
                let mut places: Vec<(f64, f64)> = Vec::new();
                for rec in &db.records {
                    if let (Placement::Coordinates, Some((lat, lon))) = (
                        place_record(rules, &service_regions, Some(rec)),
                        rec.coords(),
                    ) {
                        place_of
                            .entry((lat.to_bits(), lon.to_bits()))
                            .or_insert_with(|| {
                                places.push((lat, lon));
                                places.len() - 1
                            });
                    }
                }
                let rank =
                    |&(lat, lon): &(f64, f64)| Some((proximity(lat, lon), dists(Some((lat, lon)))));
                let mut ranked: Vec<Option<(Vec<u16>, Vec<f32>)>> =
                    if places.len().saturating_mul(sites.len()) < PARALLEL_RANKING {
                        places.iter().map(rank).collect()
                    } else {
                        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                        let chunk = places.len().div_ceil(threads).max(1);
                        std::thread::scope(|s| {
                            let parts: Vec<_> = places
                                .chunks(chunk)
                                .map(|part| {
                                    let h =
                                        s.spawn(move || part.iter().map(rank).collect::<Vec<_>>());
                                    (part.len(), h)
                                })
                                .collect();
                            // A part whose thread failed stays unranked (`None`): ranked one by
                            // one below, so every place keeps its own index.
                            parts
                                .into_iter()
                                .flat_map(|(n, h)| h.join().unwrap_or_else(|_| vec![None; n]))
                                .collect()
                        })
                    };
                let mut place_ids: Vec<Option<u32>> = vec![None; places.len()];
                let mut memo = Vec::with_capacity(db.records.len());
                for rec in &db.records {
                    let rule_list = |list: Option<&Vec<usize>>| allowed(list.map_or(&[], |l| l));
                    let id = match (
                        place_record(rules, &service_regions, Some(rec)),
                        rec.coords(),
                    ) {
                        (Placement::Subdivision(c, s), at) => {
                            interner.id(rule_list(rules.subdivisions.get(&(c, s))), dists(at))
                        }
                        (Placement::Country(c), at) => {
                            interner.id(rule_list(rules.countries.get(&c)), dists(at))
                        }
                        (Placement::Continent(c), at) => {
                            interner.id(rule_list(rules.continents.get(&c)), dists(at))
                        }
                        // Many records share a place (one per city and network owner):
                        // order each place once.
                        (Placement::Coordinates, Some((lat, lon))) => {
                            let fresh = |ranked: Option<(Vec<u16>, Vec<f32>)>| {
                                ranked.unwrap_or_else(|| {
                                    (proximity(lat, lon), dists(Some((lat, lon))))
                                })
                            };
                            match place_of.get(&(lat.to_bits(), lon.to_bits())) {
                                Some(&i) => *place_ids[i].get_or_insert_with(|| {
                                    let (order, d) =
                                        fresh(ranked.get_mut(i).and_then(Option::take));
                                    interner.id(order, d)
                                }),
                                // Every such record was collected above.
                                None => {
                                    let (order, d) = fresh(None);
                                    interner.id(order, d)
                                }
                            }
                        }
                        _ => default_id,
                    };
                    memo.push(id);
                }
                let f = |id: u32| memo.get(id as usize).copied().unwrap_or(default_id);
                // `open` walked this same tree without error, so this cannot fail; if it
                // did, everyone would get the default rather than a partial map.
                db.tables(f).unwrap_or_else(|_| Tables {
                    v4: RangeTable::uniform(default_id),
                    v6: RangeTable::uniform(default_id),
                    aliases: Vec::new(),
                })
            }
            None => Tables {
                v4: RangeTable::uniform(default_id),
                v6: RangeTable::uniform(default_id),
                aliases: Vec::new(),
            },
        };
        // ASN rules win over everything the city database says: their ranges are laid over
        // the tables (networks rules are painted over both below).
        let asn_db = db.and_then(|d| d.asn.as_deref());
        let tables = match asn_db {
            Some(adb)
                if rules
                    .asns
                    .keys()
                    .any(|a| asn_rule(rules, &service_regions, *a).is_some()) =>
            {
                let memo: Vec<u32> = adb
                    .records
                    .iter()
                    .map(|r| match asn_rule(rules, &service_regions, r.asn) {
                        Some(list) => interner.id(allowed(list), Vec::new()),
                        None => SEE_THROUGH,
                    })
                    .collect();
                let f = |id: u32| memo.get(id as usize).copied().unwrap_or(SEE_THROUGH);
                match adb.tables(f) {
                    Ok(top) => {
                        // The ASN file's own IPv4 alias markers are transparent as well: the city
                        // tables' markers send those blocks to the IPv4 table, already overlaid.
                        let clear = |v: u32| v == SEE_THROUGH || v >= db::ALIAS_BASE;
                        Tables {
                            v4: tables.v4.overlay(&top.v4, clear),
                            v6: tables.v6.overlay(&top.v6, clear),
                            aliases: tables.aliases,
                        }
                    }
                    Err(_) => tables,
                }
            }
            _ => tables,
        };
        let mut map = GeoMap {
            catchments: Vec::new(),
            tables,
        };
        let mut nets: Vec<&(IpNet, Vec<usize>)> = rules
            .networks
            .iter()
            .filter(|(_, l)| applies(l, &service_regions))
            .collect();
        nets.sort_by_key(|(n, _)| n.prefix_len());
        for (net, list) in nets {
            let l = allowed(list);
            let id = interner.id(l, Vec::new());
            match net {
                IpNet::V4(n) => {
                    map.tables
                        .v4
                        .paint(u32::from(n.network()), u32::from(n.broadcast()), id)
                }
                IpNet::V6(n) => {
                    map.tables
                        .v6
                        .paint(u128::from(n.network()), u128::from(n.broadcast()), id)
                }
            }
        }
        map.catchments = interner.lists;
        map
    }
}

#[derive(Default)]
struct Interner {
    ids: rustc_hash::FxHashMap<(Vec<u16>, Vec<u32>), u32>,
    /// Orders of at most [`SMALL`] regions without distances, packed into one integer: found
    /// without comparing vectors (most lookups of a map over a few regions).
    small: rustc_hash::FxHashMap<u128, u32>,
    lists: Vec<Catchment>,
}

/// Below this many (place, region) distances a map ranks its places on one thread.
const PARALLEL_RANKING: usize = 1 << 20;

/// The longest order [`Interner::small`] holds: seven 16-bit region indices and the length.
const SMALL: usize = 7;

impl Interner {
    fn id(&mut self, order: Vec<u16>, dist_km: Vec<f32>) -> u32 {
        if dist_km.is_empty() && order.len() <= SMALL {
            // The length, then each index in 16 bits: at most 3 + 7 * 16 bits, and the length
            // keeps [1] and [0, 1] apart.
            let packed = order
                .iter()
                .fold(order.len() as u128, |k, &r| (k << 16) | u128::from(r));
            if let Some(&id) = self.small.get(&packed) {
                return id;
            }
            let id = self.push(order, dist_km);
            self.small.insert(packed, id);
            return id;
        }
        let key = (
            order,
            dist_km.iter().map(|d| d.to_bits()).collect::<Vec<u32>>(),
        );
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.push(key.0.clone(), dist_km);
        self.ids.insert(key, id);
        id
    }

    /// A new catchment; its id.
    fn push(&mut self, order: Vec<u16>, dist_km: Vec<f32>) -> u32 {
        let id = u32::try_from(self.lists.len()).unwrap_or(u32::MAX);
        self.lists.push(Catchment { order, dist_km });
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_great_circle() {
        // Dublin – Ashburn is about 5,500 km; Singapore – São Paulo about 15,900 km.
        let d = distance_km((53.3, -6.3), (39.0, -77.5));
        assert!((5400.0..5600.0).contains(&d), "{d}");
        let d = distance_km((1.35, 103.8), (-23.5, -46.6));
        assert!((15800.0..16100.0).contains(&d), "{d}");
        assert_eq!(distance_km((10.0, 10.0), (10.0, 10.0)), 0.0);
    }

    fn sites() -> Vec<Site> {
        vec![
            Site {
                index: 0,
                lat: 39.0,
                lon: -77.5,
                bias: 0.0,
            },
            Site {
                index: 1,
                lat: 53.3,
                lon: -6.3,
                bias: 0.0,
            },
        ]
    }

    fn order_scope(m: &GeoMap, ip: IpAddr) -> (&[u16], u8) {
        let (c, scope) = m.locate(ip);
        (&c.order[..], scope)
    }

    #[test]
    fn bias_grows_or_shrinks_a_catchment() {
        // A client in Reykjavik (64.1, -21.9): Dublin 1,500 km, Ashburn 4,400 km.
        let at = GeoRules {
            default: GeoDefault::Location(64.1, -21.9),
            ..Default::default()
        };
        let m = GeoMap::build(None, &sites(), &at, false);
        assert_eq!(
            order_scope(&m, "192.0.2.1".parse().unwrap()).0,
            &[1u16, 0][..]
        );
        // Ashburn with bias 70 counts 4,400 × 0.3 = 1,320 km: now nearer.
        let mut biased = sites();
        biased[0].bias = 70.0;
        let m = GeoMap::build(None, &biased, &at, false);
        assert_eq!(
            order_scope(&m, "192.0.2.1".parse().unwrap()).0,
            &[0u16, 1][..]
        );
        // Distances are kept only when asked for.
        let m = GeoMap::build(None, &sites(), &at, true);
        let (c, _) = m.locate("192.0.2.1".parse().unwrap());
        assert_eq!(c.dist_km.len(), 2);
        assert!((1400.0..1600.0).contains(&c.dist_km[1]), "{:?}", c.dist_km);
    }

    #[test]
    fn without_a_database_everyone_gets_the_default_with_scope_zero() {
        let m = GeoMap::build(None, &sites(), &GeoRules::default(), false);
        assert_eq!(
            order_scope(&m, "8.8.8.8".parse().unwrap()),
            (&[0u16, 1][..], 0)
        );
        let rules = GeoRules {
            default: GeoDefault::Location(50.0, 0.0),
            ..Default::default()
        };
        let m = GeoMap::build(None, &sites(), &rules, false);
        assert_eq!(
            order_scope(&m, "2001:db8::1".parse().unwrap()),
            (&[1u16, 0][..], 0)
        );
    }

    #[test]
    fn network_rules_nest_longest_prefix_first() {
        let rules = GeoRules {
            networks: vec![
                ("10.1.2.0/24".parse().unwrap(), vec![0]),
                ("10.0.0.0/8".parse().unwrap(), vec![1, 0]),
            ],
            ..Default::default()
        };
        let m = GeoMap::build(None, &sites(), &rules, false);
        assert_eq!(
            order_scope(&m, "10.1.2.3".parse().unwrap()),
            (&[0u16][..], 24)
        );
        assert_eq!(m.locate("10.9.9.9".parse().unwrap()).0.order[..], [1u16, 0]);
        // 10.0.0.0/16 holds no exception but 10.0.0.0/15 does (10.1.2.0/24): scope /16.
        assert_eq!(m.locate("10.0.0.1".parse().unwrap()).1, 16);
        assert_eq!(m.locate("11.0.0.1".parse().unwrap()).0.order[..], [0u16, 1]);
        // A rule naming only regions the service does not use is skipped.
        let rules = GeoRules {
            networks: vec![("10.0.0.0/8".parse().unwrap(), vec![7])],
            ..Default::default()
        };
        let m = GeoMap::build(None, &sites(), &rules, false);
        assert_eq!(
            order_scope(&m, "10.0.0.1".parse().unwrap()),
            (&[0u16, 1][..], 0)
        );
    }
}
