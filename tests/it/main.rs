//! gslbd integration tests: one binary, each module a capability. Every test starts the real
//! server in-process on an ephemeral loopback port and queries it over the wire as a resolver
//! would (UDP and TCP).
//!
//! - `harness`: starting servers, building queries, reading answers. Start here.
//! - `authoritative`: DNS semantics of static zones (issue: authoritative core).
//! - `conformance`: static data answered like NSD and Knot (differential, over UDP and TCP).
//! - `cluster`: a fleet through a real etcd: quorum health, fleet-wide overrides, faults (feature
//!   `cluster`).
//! - `check`: `gslbd check` / zone compile errors with file and line, and the binary itself.
//! - `delegation`: `gslbd check --delegation` against an NSD parent on loopback.
//! - `deploy`: the binary under a service manager: dropping root after binding port 53, systemd
//!   notifications.
//! - `fuzz_corpus`: every saved fuzz input and crasher replayed through the real entry points.
//! - `fast`: the wire fast path gives the general path's answers, for the shapes it takes.
//! - `layers`: the README's layering table checked against the imports of `src/`.
//! - `hostile`: hostile packets over UDP and TCP: malformed, lying, slow; never a panic or stall.
//! - `geo`: client location, ECS scope, proximity steering over the sample database.
//! - `fakes`: fake region health endpoints (HTTP and HTTPS with a self-signed certificate).
//! - `health`: probes, rise/fall, per-VIP failure, load and RTT, all-down modes, overrides.
//! - `abuse`: response rate limiting and TCP connection limits.
//! - `admin`: the admin API, metrics, reload (API, file watch, SIGHUP) and shutdown.
//! - `page`: the status page in headless Chromium.
//! - `protocol`: protocol details answered like NSD and Knot: DO, EDE, TSIG, opcodes, 0x20 case,
//!   NSID, cookies.
//! - `policy`: every steering policy through DNS, `_explain` TXT, `[[expect]]` in `check`.
//! - `reach`: hostname regions, apex steering, subdivision and ASN rules, DB-IP data.
//! - `xdp`: the AF_XDP listener (feature `xdp`) against socket mode on a veth pair between two
//!   network namespaces: the same bytes for every query shape, fall-through to the sockets.
//! - `resolver`: behind a real Unbound iterating down a loopback root → `example.` →
//!   `gslb.example.` chain on port 53: answers by client subnet, cached by gslbd's ECS scope.

#![allow(
    clippy::disallowed_methods,
    reason = "tests measure and wait in real time"
)]

mod abuse;
mod admin;
mod authoritative;
mod check;
mod cluster;
mod conformance;
mod delegation;
mod deploy;
mod dnssec;
mod fakes;
mod fast;
mod fuzz_corpus;
mod geo;
mod harness;
mod health;
mod hostile;
mod layers;
mod page;
mod policy;
mod protocol;
mod reach;
mod resolver;
#[cfg(feature = "xdp")]
mod xdp;
