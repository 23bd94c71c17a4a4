//! The DNS edge: request bytes to response bytes for our zones.
//!
//! [`handler::respond_into`] is the entry point of both transports. Common queries (one exact
//! steered or static name, class IN, optional OPT/ECS) are answered in place by [`fast`];
//! everything else is parsed by hickory and handled by [`handler::GslbHandler`], which validates
//! the header, EDNS and ECS, loads the current zone set and health snapshot (one atomic load),
//! asks [`answer::answer`] for the answer as data, and encodes it with the EDNS/ECS echo and UDP
//! truncation. No steering logic lives here.

#![allow(
    clippy::disallowed_methods,
    reason = "the query path stamps each query with the time and draws from the thread RNG for weighted choices"
)]

pub mod account;
pub mod answer;
pub mod case;
pub mod cookie;
pub mod fast;
pub mod handler;
pub mod rrl;
pub mod sign;
pub mod tcp;
pub mod udp;
pub mod wire;
#[cfg(feature = "xdp")]
pub mod xdp;

pub use answer::{Client, Response, answer};
pub use handler::{GslbHandler, Shared};

use std::sync::Arc;

use crate::geo::{GeoDb, GeoMap};
use crate::metrics::Registry;
use crate::served::Catalog;
use crate::zone::ZoneSet;

/// The catalog queries answer from, built from one load: the model, its geo maps, the counter
/// slots resolved in `metrics`, and the fast path's index of exact names.
pub fn catalog(
    zones: ZoneSet,
    maps: Vec<Arc<GeoMap>>,
    geo: Option<Arc<GeoDb>>,
    metrics: &Registry,
) -> Catalog {
    let stats = metrics.slots(&zones);
    let mut c = Catalog {
        model: zones,
        maps,
        geo,
        stats,
        fast: Default::default(),
    };
    c.fast = fast::index(&c);
    c
}
