//! gslbd: a global server load balancing authoritative DNS server.
//!
//! Map of the crate (dependencies point inward, towards `steer`, `geo` and `zone`):
//!
//! - [`config`]: INPUT. serde types for the server config and the zone files (unknown keys
//!   rejected), and the compile step that turns them into the immutable model, reporting every
//!   mistake as `file: line N: reason`.
//! - [`zone`]: the COMPILED MODEL. `ZoneSet`, `Zone`, `Region`, `Service`; the static
//!   authoritative lookup (answer, NXDOMAIN, NODATA, CNAME, referral, wildcard).
//! - [`geo`]: where a client is. ECS parsing and validation, the MaxMind DB reader (the only geo
//!   I/O, at load time), the per-service network map that gives an ordered region list and the
//!   ECS scope in one lookup, the CSV → MMDB builder.
//! - [`steer`]: PURE decisions: `decide(service, health, location) -> Decision`.
//! - [`health`]: the health snapshot the query path reads lock-free.
//! - [`dns`]: request bytes → response bytes: the wire fast path for common queries, else parse,
//!   validate, answer, EDNS/ECS echo, truncation; the UDP and TCP loops.
//! - [`server`]: wires sockets, runtimes and the handler together; `run` is what `main` and the
//!   tests call.

pub mod admin;
pub mod config;
pub mod control;
pub mod diag;
pub mod dns;
pub mod explain;
pub mod geo;
pub mod health;
pub mod memory;
pub mod metrics;
pub mod rt;
pub mod served;
pub mod server;
pub mod snapshot;
pub mod steer;
pub mod zone;

pub use config::{Diagnostic, Diagnostics, ServerConfig};
pub use health::HealthSnapshot;
pub use zone::{Region, Service, Zone, ZoneSet};
