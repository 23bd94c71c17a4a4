//! Where a client is: EDNS Client Subnet handling, the geolocation database, and the per-service
//! network map that turns a client address into an ordered region list and an ECS scope.
//!
//! The database is read once per load ([`GeoDb::open`]); each service then gets a [`GeoMap`]
//! compiled from it and from the operator's geo rules, so answering a query costs one binary
//! search. This module decides nothing about health; `steer` does that with the order it gets.

pub mod build;
mod db;
pub mod ecs;
pub mod table;

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

pub use db::{DbLookup, GeoDb, GeoDbError, GeoRecord, NO_RECORD, code as db_code};
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
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let dlat = lat2 - lat1;
    let dlon = lon2 - lon1;
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

/// Operator geo rules, compiled: region lists are indices into the zone's regions.
#[derive(Debug, Clone, Default)]
pub struct GeoRules {
    pub networks: Vec<(IpNet, Vec<usize>)>,
    pub countries: HashMap<[u8; 2], Vec<usize>>,
    pub continents: HashMap<[u8; 2], Vec<usize>>,
    pub default: GeoDefault,
}

/// What to do with clients the database cannot place.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum GeoDefault {
    /// Use the service's regions in the order they are listed.
    #[default]
    ListedOrder,
    /// Treat such clients as if they were at this latitude/longitude.
    Location(f64, f64),
    /// Answer with this ordered region list.
    Regions(Vec<usize>),
}

impl GeoRules {
    /// `self` (a service's rules) laid over `zone` (the zone's rules): entries of the service win.
    pub fn over(&self, zone: &GeoRules) -> GeoRules {
        let mut out = zone.clone();
        for (net, list) in &self.networks {
            out.networks.retain(|(n, _)| n != net);
            out.networks.push((*net, list.clone()));
        }
        out.countries
            .extend(self.countries.iter().map(|(k, v)| (*k, v.clone())));
        out.continents
            .extend(self.continents.iter().map(|(k, v)| (*k, v.clone())));
        if self.default != GeoDefault::ListedOrder {
            out.default = self.default.clone();
        }
        out
    }
}

/// A region for ordering: its index in the zone and its coordinates.
#[derive(Debug, Clone, Copy)]
pub struct Site {
    pub index: usize,
    pub lat: f64,
    pub lon: f64,
}

/// Client network → ordered region list, with the widest prefix that shares the list.
#[derive(Debug, Clone)]
pub struct GeoMap {
    /// Distinct ordered lists of zone region indices; table values index this.
    pub orders: Vec<Box<[u16]>>,
    v4: RangeTable<u32>,
    v6: RangeTable<u128>,
}

impl GeoMap {
    /// The ordered region list for `ip` and the ECS scope prefix for which it holds.
    #[inline]
    pub fn locate(&self, ip: IpAddr) -> (&[u16], u8) {
        let (id, scope) = match canonical(ip) {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        };
        let order = self.orders.get(id as usize).map_or(&[][..], |o| &o[..]);
        (order, scope)
    }

    /// Number of ranges in the two tables (a measure of how well the map merged).
    pub fn ranges(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    /// Builds the map of one service.
    ///
    /// Precedence, most specific first: `networks` (longest prefix wins, and wins over the
    /// database whatever its prefix), `countries`, `continents`, the database's coordinates
    /// (nearest first), then `default`. A rule listing only regions the service does not use
    /// does not apply.
    pub fn build(db: Option<&GeoDb>, sites: &[Site], rules: &GeoRules) -> GeoMap {
        let mut interner = Interner::default();
        let allowed = |list: &[usize]| -> Vec<u16> {
            list.iter()
                .filter(|i| sites.iter().any(|s| s.index == **i))
                .filter_map(|&i| u16::try_from(i).ok())
                .collect()
        };
        let proximity = |lat: f64, lon: f64| -> Vec<u16> {
            let mut v: Vec<(f64, usize, u16)> = sites
                .iter()
                .enumerate()
                .map(|(pos, s)| {
                    let d = distance_km((lat, lon), (s.lat, s.lon));
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
        let default_id = interner.id(default_order);

        let (v4, v6) = match db {
            Some(db) => {
                let mut memo = Vec::with_capacity(db.records.len());
                for rec in &db.records {
                    let by_rule = rules
                        .countries
                        .get(&rec.country)
                        .map(|l| allowed(l))
                        .filter(|l| !l.is_empty())
                        .or_else(|| {
                            rules
                                .continents
                                .get(&rec.continent)
                                .map(|l| allowed(l))
                                .filter(|l| !l.is_empty())
                        });
                    let id = match (by_rule, rec.coords) {
                        (Some(list), _) => interner.id(list),
                        (None, Some((lat, lon))) => interner.id(proximity(lat, lon)),
                        (None, None) => default_id,
                    };
                    memo.push(id);
                }
                let f = |id: u32| memo.get(id as usize).copied().unwrap_or(default_id);
                (db.v4.map(f), db.v6.map(f))
            }
            None => (
                RangeTable::uniform(default_id),
                RangeTable::uniform(default_id),
            ),
        };
        let mut map = GeoMap {
            orders: Vec::new(),
            v4,
            v6,
        };
        let mut nets: Vec<&(IpNet, Vec<usize>)> = rules.networks.iter().collect();
        nets.sort_by_key(|(n, _)| n.prefix_len());
        for (net, list) in nets {
            let l = allowed(list);
            if l.is_empty() {
                continue;
            }
            let id = interner.id(l);
            match net {
                IpNet::V4(n) => map
                    .v4
                    .paint(u32::from(n.network()), u32::from(n.broadcast()), id),
                IpNet::V6(n) => {
                    map.v6
                        .paint(u128::from(n.network()), u128::from(n.broadcast()), id)
                }
            }
        }
        map.orders = interner.lists;
        map
    }
}

#[derive(Default)]
struct Interner {
    ids: HashMap<Vec<u16>, u32>,
    lists: Vec<Box<[u16]>>,
}

impl Interner {
    fn id(&mut self, list: Vec<u16>) -> u32 {
        if let Some(&id) = self.ids.get(&list) {
            return id;
        }
        let id = u32::try_from(self.lists.len()).unwrap_or(u32::MAX);
        self.lists.push(list.clone().into_boxed_slice());
        self.ids.insert(list, id);
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
            },
            Site {
                index: 1,
                lat: 53.3,
                lon: -6.3,
            },
        ]
    }

    #[test]
    fn without_a_database_everyone_gets_the_default_with_scope_zero() {
        let m = GeoMap::build(None, &sites(), &GeoRules::default());
        assert_eq!(m.locate("8.8.8.8".parse().unwrap()), (&[0u16, 1][..], 0));
        let rules = GeoRules {
            default: GeoDefault::Location(50.0, 0.0),
            ..Default::default()
        };
        let m = GeoMap::build(None, &sites(), &rules);
        assert_eq!(
            m.locate("2001:db8::1".parse().unwrap()),
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
        let m = GeoMap::build(None, &sites(), &rules);
        assert_eq!(m.locate("10.1.2.3".parse().unwrap()), (&[0u16][..], 24));
        assert_eq!(m.locate("10.9.9.9".parse().unwrap()).0, &[1u16, 0][..]);
        // 10.0.0.0/16 holds no exception but 10.0.0.0/15 does (10.1.2.0/24): scope /16.
        assert_eq!(m.locate("10.0.0.1".parse().unwrap()).1, 16);
        assert_eq!(m.locate("11.0.0.1".parse().unwrap()).0, &[0u16, 1][..]);
        // A rule naming only regions the service does not use is skipped.
        let rules = GeoRules {
            networks: vec![("10.0.0.0/8".parse().unwrap(), vec![7])],
            ..Default::default()
        };
        let m = GeoMap::build(None, &sites(), &rules);
        assert_eq!(m.locate("10.0.0.1".parse().unwrap()), (&[0u16, 1][..], 0));
    }
}
