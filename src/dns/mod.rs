//! The DNS edge: request bytes to response bytes for our zones.
//!
//! [`handler::respond_into`] is the entry point of both transports. Common queries (one exact
//! steered or static name, class IN, optional OPT/ECS) are answered in place by [`fast`];
//! everything else is parsed by hickory and handled by [`handler::GslbHandler`], which validates
//! the header, EDNS and ECS, loads the current zone set and health snapshot (one atomic load),
//! asks [`answer::answer`] for the answer as data, and encodes it with the EDNS/ECS echo and UDP
//! truncation. No steering logic lives here.

pub mod answer;
pub mod case;
pub mod cookie;
pub mod fast;
pub mod handler;
pub mod rrl;
pub mod tcp;
pub mod udp;
pub mod wire;

pub use answer::{Client, Response, answer};
pub use handler::{GslbHandler, Shared};
