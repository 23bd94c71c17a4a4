//! Configuration INPUT: the server config (`gslbd.toml`) and the zone files (`zones/*.toml`).
//!
//! Two phases, like a compiler: serde types with `deny_unknown_fields` read the TOML exactly as
//! written (with spans, so every later error can name its line), then [`compile`] resolves names
//! to indices, parses record data and checks every reference, producing the immutable
//! model (`zone::ZoneSet`) and each service's geo map. This module reads files and nothing else.

#![allow(clippy::disallowed_methods, reason = "loading is timed")]

pub mod cluster;
mod compile;
pub mod master;
pub mod probe;
mod server;
mod signing;
pub mod zonefile;

pub use crate::diag::{Diagnostic, Diagnostics, line_of};
pub use cluster::{ClusterConfig, DownRule};
pub use compile::{Compiled, compile_zone_dir, compile_zone_file_text};
pub use server::{
    HealthDefaults, ListenXdp, LogFormat, RrlConfig, ServerConfig, TcpLimits, XDP_MAX_QUEUES,
    XdpMode, hostname, load_server_config, parse_secret, parse_server_config,
};

use std::path::Path;

use crate::geo::GeoDb;
use crate::zone::ZoneSet;

/// Everything a server runs on, loaded and validated together.
#[derive(Debug)]
pub struct Loaded {
    /// The server config, as read and validated.
    pub config: ServerConfig,
    /// The geolocation database named by `geodata`, with its record index already dropped (the maps
    /// are built); `None` when the config names no geodata.
    pub geo: Option<std::sync::Arc<GeoDb>>,
    /// The compiled zones of `zones_dir`.
    pub zones: ZoneSet,
    /// The services' geo maps (a service's `map` indexes this).
    pub maps: Vec<std::sync::Arc<crate::geo::GeoMap>>,
    /// How long reading the geodata and compiling the zones took.
    pub took: LoadTimes,
}

/// Wall-clock time spent on each phase of a load (`main` logs them at startup).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadTimes {
    /// Opening and reading the geodata file (zero when there is none).
    pub geodata: std::time::Duration,
    /// Compiling every zone file and building the geo maps, after the geodata was read.
    pub zones: std::time::Duration,
}

/// Loads the server config, the geodata and every zone file; returns all mistakes at once.
pub fn load_all(config_file: &Path) -> Result<Loaded, Diagnostics> {
    let config = load_server_config(config_file)?;
    load_with(config)
}

/// Loads the geodata and zones named by an already validated config.
pub fn load_with(config: ServerConfig) -> Result<Loaded, Diagnostics> {
    let t0 = std::time::Instant::now();
    let geo_err = |p: &Path, e: crate::geo::GeoDbError| Diagnostics::one(p, None, e.to_string());
    let mut geo = match (&config.geodata, &config.geodata_v6) {
        (Some(p), None) => Some(GeoDb::open(p).map_err(|e| geo_err(p, e))?),
        (Some(p), Some(q)) => Some(GeoDb::open_pair(p, q).map_err(|e| geo_err(p, e))?),
        _ => None,
    };
    if let Some(a) = &config.asn_geodata {
        let asn = GeoDb::open(a).map_err(|e| geo_err(a, e))?;
        match &mut geo {
            Some(g) => g.asn = Some(Box::new(asn)),
            None => {
                return Err(Diagnostics::one(
                    &config.file,
                    None,
                    "asn_geodata needs geodata (the ASN database refines a location database)",
                ));
            }
        }
    }
    let t1 = std::time::Instant::now();
    let Compiled { zones, maps } =
        compile_zone_dir(&config.zones_dir, geo.as_ref(), &config.health)?;
    let geo = geo.map(|mut g| {
        g.drop_index();
        g
    });
    crate::memory::give_back();
    let took = LoadTimes {
        geodata: t1 - t0,
        zones: t1.elapsed(),
    };
    let geo = geo.map(std::sync::Arc::new);
    Ok(Loaded {
        config,
        geo,
        zones,
        maps,
        took,
    })
}
