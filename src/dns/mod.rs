//! The DNS edge: hickory's `RequestHandler` for our zones.
//!
//! [`handler::GslbHandler`] validates the header, EDNS and ECS, loads the current zone set and
//! health snapshot (one atomic load each), asks [`answer::answer`] for the answer as data, and
//! encodes it with the EDNS/ECS echo and UDP truncation. No steering logic lives here.

pub mod answer;
pub mod fast;
pub mod handler;
pub mod rrl;
pub mod tcp;
pub mod udp;

pub use answer::{Client, Response, answer};
pub use handler::{GslbHandler, Shared};
