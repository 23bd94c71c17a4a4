//! gslbd: a global server load balancing authoritative DNS server.
//!
//! One line per module, lowest layer first (a module imports only those above it in this
//! list; `tests/it/layers.rs` checks the README's table of the same layers):
//!
//! - [`memory`]: hands freed heap back to the OS after a (re)load.
//! - [`rt`]: threads with their own single-threaded tokio runtime.
//! - [`diag`]: mistakes as `file: line N: reason`.
//! - [`snapshot`]: the health snapshot the query path reads (plain data).
//! - [`dnssec`]: keys, RRSIGs over canonical RRsets, compact denial, the signature cache.
//! - [`process`]: systemd readiness/reload notifications, dropping root after binding.
//! - [`zone`]: the compiled model: zones, regions, services, policies, probe specs, static lookup.
//! - [`geo`]: ECS, the MaxMind reader, per-service geo maps, the placement precedence.
//! - [`steer`]: pure steering: locate, decide, ECS scope, VIP selection.
//! - [`metrics`]: counters resolved at load, read without locks on the query path.
//! - [`config`]: input: the server config, zone and master files, compiled to the model.
//! - [`served`]: what queries answer from: the catalog of a load and its health.
//! - [`health`]: probes, rise/fall and overrides, the fleet view, the runner that publishes
//!   `Served`.
//! - [`cluster`]: the etcd session of a fleet: membership, observations, overrides.
//! - [`explain`]: the decision table, from the same steering calls as the query path.
//! - [`dns`]: request bytes to response bytes: fast path, general path, accounting, UDP/TCP.
//! - [`control`]: reloads, validated whole and reported.
//! - [`delegation`]: `check --delegation`: the parent's NS and glue, lame servers, serial drift.
//! - [`admin`]: the HTTP API, `/metrics`, the status page, SIGHUP and the zones watcher.
//! - [`server`]: binds sockets, starts every thread, `launch` and shutdown.

pub mod admin;
pub mod cluster;
pub mod config;
pub mod control;
pub mod delegation;
pub mod diag;
pub mod dns;
pub mod dnssec;
pub mod explain;
pub mod geo;
pub mod health;
pub mod memory;
pub mod metrics;
pub mod process;
pub mod rt;
pub mod served;
pub mod server;
pub mod snapshot;
pub mod steer;
pub mod zone;

pub use config::{Diagnostic, Diagnostics, ServerConfig};
pub use health::HealthSnapshot;
pub use zone::{Region, Service, Zone, ZoneSet};
