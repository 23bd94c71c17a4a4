//! Operator geo rules in the model (`[geo]` of a zone, `geo` of a service): networks, ASNs,
//! subdivisions, countries and continents mapped to ordered region lists, and what to do with
//! clients the database cannot place. `geo` compiles them into each service's map.

use std::collections::HashMap;

use ipnet::IpNet;

/// Operator geo rules, compiled: region lists are indices into the zone's regions.
#[derive(Debug, Clone, Default)]
pub struct GeoRules {
    /// Client networks and their region lists; the longest matching prefix wins.
    pub networks: Vec<(IpNet, Vec<usize>)>,
    /// Autonomous system number (from the ASN database) to region list.
    pub asns: HashMap<u32, Vec<usize>>,
    /// Subdivision (country code, ISO 3166-2 subdivision code zero-padded: `US-CA` is
    /// (`US`, `CA\0`)) to region list.
    pub subdivisions: HashMap<([u8; 2], [u8; 3]), Vec<usize>>,
    /// Country code (ISO 3166-1 alpha-2, upper case) to region list.
    pub countries: HashMap<[u8; 2], Vec<usize>>,
    /// Continent code (`EU`, `NA`…) to region list.
    pub continents: HashMap<[u8; 2], Vec<usize>>,
    /// Where clients go that the database cannot place.
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
        out.asns
            .extend(self.asns.iter().map(|(k, v)| (*k, v.clone())));
        out.subdivisions
            .extend(self.subdivisions.iter().map(|(k, v)| (*k, v.clone())));
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
