//! Probe specifications in the model: what to probe for a region or a VIP, how often and with
//! which thresholds. `config` compiles them from the zone files; `health` runs them.

use std::net::SocketAddr;
use std::time::Duration;

use regex::Regex;
use reqwest::header::{HeaderMap, HeaderName};

/// Defaults, with their ranges (also in the README's health reference).
pub const DEFAULT_INTERVAL: f64 = 10.0; // seconds, 0.1–3600
pub const DEFAULT_TIMEOUT: f64 = 3.0; // seconds, 0.05–interval
pub const DEFAULT_RISE: u32 = 2; // 1–100
pub const DEFAULT_FALL: u32 = 3; // 1–100
pub const DEFAULT_LOAD_MAX_AGE: f64 = 60.0; // seconds
pub const DEFAULT_MAX_BODY: usize = 64 * 1024; // bytes, 0–16 MiB

/// What is probed and how.
#[derive(Debug, Clone)]
pub enum Check {
    Http(Box<HttpCheck>),
    Tcp { address: String },
}

#[derive(Debug, Clone)]
pub struct HttpCheck {
    pub url: reqwest::Url,
    /// Host header / SNI, and the address to connect to instead of resolving it.
    pub host: Option<String>,
    pub connect: Option<SocketAddr>,
    pub expect: Vec<(u16, u16)>,
    pub body: Option<String>,
    pub body_regex: Option<Regex>,
    pub headers: HeaderMap,
    pub verify_tls: bool,
    pub load_json: Option<Vec<String>>,
    pub load_header: Option<HeaderName>,
}

/// A compiled probe: the check and its timing and thresholds.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub check: Check,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub initial_up: bool,
    pub load_max_age: Duration,
    pub max_body: usize,
}
