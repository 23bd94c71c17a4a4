//! Probe specifications in the model: what to probe for a region or a VIP, how often and with
//! which thresholds. `config` compiles them from the zone files; `health` runs them.

use std::net::SocketAddr;
use std::time::Duration;

use regex::Regex;
use reqwest::header::{HeaderMap, HeaderName};

/// Defaults, with their ranges (also in the README's health reference).
pub const DEFAULT_INTERVAL: f64 = 10.0; // seconds, 0.1–3600
/// Default probe timeout, seconds (0.05 up to the interval; a default above the interval is cut to
/// it).
pub const DEFAULT_TIMEOUT: f64 = 3.0; // seconds, 0.05–interval
/// Default number of consecutive successes that bring a down target up (1–100).
pub const DEFAULT_RISE: u32 = 2; // 1–100
/// Default number of consecutive failures that take an up target down (1–100).
pub const DEFAULT_FALL: u32 = 3; // 1–100
/// Default age after which a load reading is ignored, seconds (0.1–86400).
pub const DEFAULT_LOAD_MAX_AGE: f64 = 60.0; // seconds
/// Default cap on the body bytes an HTTP probe reads (up to 16 MiB).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024; // bytes, 0–16 MiB

/// What is probed and how.
#[derive(Debug, Clone)]
pub enum Check {
    /// An HTTP or HTTPS GET, judged by status, body and (optionally) a load reading.
    Http(Box<HttpCheck>),
    /// A TCP connect: success once the connection is established.
    Tcp {
        /// The target as `host:port`, `{vip}` substituted (an IPv6 VIP in brackets).
        address: String,
    },
}

/// An HTTP(S) probe, compiled: `{vip}` substituted, headers and patterns parsed.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// The URL to GET; when `connect` is set, its host is already the `host` name.
    pub url: reqwest::Url,
    /// Host header / SNI, and the address to connect to instead of resolving it.
    pub host: Option<String>,
    /// Where to connect instead of resolving the URL's host: the address the zone file's URL named,
    /// when `host` was given with it.
    pub connect: Option<SocketAddr>,
    /// Accepted status codes as inclusive ranges (default `[(200, 299)]`).
    pub expect: Vec<(u16, u16)>,
    /// Text the body must contain; `None`: not checked.
    pub body: Option<String>,
    /// Pattern the body must match; `None`: not checked.
    pub body_regex: Option<Regex>,
    /// Extra request headers, and `Host` when `host` is set but the URL named no address.
    pub headers: HeaderMap,
    /// Whether the TLS certificate (chain and name) is verified.
    pub verify_tls: bool,
    /// The JSON field to read the load from, as a path of keys (`stats.load` → `["stats",
    /// "load"]`); `None`: no JSON load.
    pub load_json: Option<Vec<String>>,
    /// The response header to read the load from; `None`: no header load.
    pub load_header: Option<HeaderName>,
}

/// A compiled probe: the check and its timing and thresholds.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// What is probed.
    pub check: Check,
    /// Time between the starts of two probes (before jitter).
    pub interval: Duration,
    /// How long one probe may take before it counts as a `timeout` failure (at most `interval`).
    pub timeout: Duration,
    /// Consecutive successes that bring a down target up (1–100).
    pub rise: u32,
    /// Consecutive failures that take an up target down (1–100).
    pub fall: u32,
    /// The state before the first result (`initial = "down"` in the zone file makes it false).
    pub initial_up: bool,
    /// Age after which a load reading no longer counts.
    pub load_max_age: Duration,
    /// Most body bytes an HTTP probe reads; the body checks see only these.
    pub max_body: usize,
}
