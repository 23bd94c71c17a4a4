//! Probes: dumb functions from a target to a [`Sample`]. Thresholds, state and overrides live in
//! [`super::state`]; timing lives in [`super::runner`].

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use regex::Regex;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::config::zonefile::{InitialInput, ProbeInput, ProbeKindInput, StatusInput};

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

/// Why a probe failed (also the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    Timeout,
    Refused,
    Connect,
    Tls,
    Status,
    Body,
    Protocol,
}

impl FailReason {
    pub const ALL: [FailReason; 7] = [
        FailReason::Timeout,
        FailReason::Refused,
        FailReason::Connect,
        FailReason::Tls,
        FailReason::Status,
        FailReason::Body,
        FailReason::Protocol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Timeout => "timeout",
            FailReason::Refused => "refused",
            FailReason::Connect => "connect",
            FailReason::Tls => "tls",
            FailReason::Status => "status",
            FailReason::Body => "body",
            FailReason::Protocol => "protocol",
        }
    }
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    Ok { rtt: Duration, load: Option<f64> },
    Fail { reason: FailReason, detail: String },
}

fn secs(v: f64, what: &str, lo: f64, hi: f64) -> Result<Duration, String> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("{what} {v} is outside {lo}–{hi} seconds"))
    }
}

fn parse_status(list: &[StatusInput]) -> Result<Vec<(u16, u16)>, String> {
    let mut out = Vec::new();
    for s in list {
        match s {
            StatusInput::Code(c) if (100..=599).contains(c) => out.push((*c, *c)),
            StatusInput::Code(c) => return Err(format!("status {c} is not an HTTP status")),
            StatusInput::Range(r) => {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
                    (Ok(a), Ok(b)) if a <= b && (100..=599).contains(&a) && b <= 599 => {
                        out.push((a, b))
                    }
                    _ => return Err(format!("status range {r:?} is not like \"200-299\"")),
                }
            }
        }
    }
    if out.is_empty() {
        return Err("expect_status is empty".into());
    }
    Ok(out)
}

impl ProbeSpec {
    /// Checks the timing keys of the server-wide defaults.
    pub fn check_defaults(p: &ProbeInput) -> Result<(), String> {
        Self::timing(p).map(|_| ())
    }

    #[allow(clippy::type_complexity)]
    fn timing(p: &ProbeInput) -> Result<(Duration, Duration, u32, u32, Duration, usize), String> {
        let interval = secs(
            p.interval.unwrap_or(DEFAULT_INTERVAL),
            "interval",
            0.1,
            3600.0,
        )?;
        let timeout = secs(
            p.timeout
                .unwrap_or(DEFAULT_TIMEOUT)
                .min(interval.as_secs_f64()),
            "timeout",
            0.05,
            3600.0,
        )?;
        if let Some(t) = p.timeout
            && t > interval.as_secs_f64()
        {
            return Err(format!(
                "timeout {t} is longer than the interval {}",
                interval.as_secs_f64()
            ));
        }
        let rise = p.rise.unwrap_or(DEFAULT_RISE);
        let fall = p.fall.unwrap_or(DEFAULT_FALL);
        if !(1..=100).contains(&rise) {
            return Err(format!("rise {rise} is outside 1–100"));
        }
        if !(1..=100).contains(&fall) {
            return Err(format!("fall {fall} is outside 1–100"));
        }
        let max_age = secs(
            p.load_max_age.unwrap_or(DEFAULT_LOAD_MAX_AGE),
            "load_max_age",
            0.1,
            86400.0,
        )?;
        let max_body = p.max_body.unwrap_or(DEFAULT_MAX_BODY);
        if max_body > 16 << 20 {
            return Err(format!("max_body {max_body} is above 16 MiB"));
        }
        Ok((interval, timeout, rise, fall, max_age, max_body))
    }

    /// Compiles a merged probe for one target; `vip` replaces `{vip}` in the URL or address.
    pub fn compile(p: &ProbeInput, vip: Option<IpAddr>) -> Result<ProbeSpec, String> {
        let (interval, timeout, rise, fall, load_max_age, max_body) = Self::timing(p)?;
        let subst = |s: &str| -> Result<String, String> {
            if s.contains("{vip}") {
                match vip {
                    Some(IpAddr::V4(a)) => Ok(s.replace("{vip}", &a.to_string())),
                    Some(IpAddr::V6(a)) => Ok(s.replace("{vip}", &format!("[{a}]"))),
                    None => Err("{vip} needs a VIP".into()),
                }
            } else {
                Ok(s.to_string())
            }
        };
        let kind = match (p.kind, &p.url, &p.address) {
            (Some(k), _, _) => k,
            (None, Some(u), _) if u.starts_with("https:") => ProbeKindInput::Https,
            (None, Some(_), _) => ProbeKindInput::Http,
            (None, None, Some(_)) => ProbeKindInput::Tcp,
            (None, None, None) => {
                return Err("probe needs `url` (http/https) or `address` (tcp)".into());
            }
        };
        let check = match kind {
            ProbeKindInput::Tcp => {
                let a = p
                    .address
                    .as_deref()
                    .ok_or("a tcp probe needs `address` (host:port)")?;
                let a = subst(a)?;
                if a.rsplit_once(':')
                    .and_then(|(_, port)| port.parse::<u16>().ok())
                    .is_none()
                {
                    return Err(format!("tcp address {a:?} is not host:port"));
                }
                Check::Tcp { address: a }
            }
            ProbeKindInput::Http | ProbeKindInput::Https => {
                let u = p.url.as_deref().ok_or("an http probe needs `url`")?;
                let u = subst(u)?;
                let mut url = reqwest::Url::parse(&u).map_err(|e| format!("url {u:?}: {e}"))?;
                let want = if kind == ProbeKindInput::Https {
                    "https"
                } else {
                    "http"
                };
                if url.scheme() != want {
                    return Err(format!("url {u:?} is not {want}"));
                }
                let mut connect = None;
                if let Some(h) = &p.host {
                    // Connect to the URL's address but speak to `host` (Host header and SNI).
                    let port = url.port_or_known_default().unwrap_or(80);
                    if let Some(ip) = url
                        .host_str()
                        .and_then(|s| s.trim_matches(['[', ']']).parse::<IpAddr>().ok())
                    {
                        connect = Some(SocketAddr::new(ip, port));
                        url.set_host(Some(h))
                            .map_err(|e| format!("host {h:?}: {e}"))?;
                    }
                }
                let mut headers = HeaderMap::new();
                for (k, v) in p.headers.iter().flatten() {
                    let name = HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| format!("header name {k:?}"))?;
                    let value =
                        HeaderValue::from_str(v).map_err(|_| format!("header value {v:?}"))?;
                    headers.insert(name, value);
                }
                if connect.is_none()
                    && let Some(h) = &p.host
                {
                    let value = HeaderValue::from_str(h).map_err(|_| format!("host {h:?}"))?;
                    headers.insert(reqwest::header::HOST, value);
                }
                let body_regex = match &p.body_regex {
                    Some(r) => Some(Regex::new(r).map_err(|e| format!("body_regex: {e}"))?),
                    None => None,
                };
                let load_header = match &p.load_header {
                    Some(h) => Some(
                        HeaderName::from_bytes(h.as_bytes())
                            .map_err(|_| format!("load_header {h:?}"))?,
                    ),
                    None => None,
                };
                Check::Http(Box::new(HttpCheck {
                    url,
                    host: p.host.clone(),
                    connect,
                    expect: match &p.expect_status {
                        Some(l) => parse_status(l)?,
                        None => vec![(200, 299)],
                    },
                    body: p.body.clone(),
                    body_regex,
                    headers,
                    verify_tls: p.verify_tls.unwrap_or(true),
                    load_json: p
                        .load_json
                        .as_ref()
                        .map(|s| s.split('.').map(str::to_string).collect()),
                    load_header,
                }))
            }
        };
        Ok(ProbeSpec {
            check,
            interval,
            timeout,
            rise,
            fall,
            initial_up: p.initial != Some(InitialInput::Down),
            load_max_age,
            max_body,
        })
    }

    /// Whether `{vip}` appears in the target (one probe per VIP).
    pub fn is_per_vip(p: &ProbeInput) -> bool {
        p.url.as_deref().is_some_and(|u| u.contains("{vip}"))
            || p.address.as_deref().is_some_and(|a| a.contains("{vip}"))
    }

    /// A reusable client for this probe's target (connection reuse across probes).
    pub fn client(&self) -> Result<Option<reqwest::Client>, String> {
        let Check::Http(h) = &self.check else {
            return Ok(None);
        };
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .pool_max_idle_per_host(1)
            .no_proxy()
            .danger_accept_invalid_certs(!h.verify_tls);
        if let (Some(host), Some(addr)) = (&h.host, h.connect) {
            b = b.resolve(host, addr);
        }
        b.build()
            .map(Some)
            .map_err(|e| format!("cannot build HTTP client: {e}"))
    }
}

/// Runs one probe. Costs at most the probe's timeout and `max_body` bytes.
pub async fn run(spec: &ProbeSpec, client: Option<&reqwest::Client>) -> Sample {
    let start = Instant::now();
    let result = tokio::time::timeout(spec.timeout, run_inner(spec, client, start)).await;
    match result {
        Ok(s) => s,
        Err(_) => Sample::Fail {
            reason: FailReason::Timeout,
            detail: format!("no answer within {:?}", spec.timeout),
        },
    }
}

async fn run_inner(spec: &ProbeSpec, client: Option<&reqwest::Client>, start: Instant) -> Sample {
    match (&spec.check, client) {
        (Check::Tcp { address }, _) => match tokio::net::TcpStream::connect(address.as_str()).await
        {
            Ok(_) => Sample::Ok {
                rtt: start.elapsed(),
                load: None,
            },
            Err(e) => Sample::Fail {
                reason: if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    FailReason::Refused
                } else {
                    FailReason::Connect
                },
                detail: e.to_string(),
            },
        },
        (Check::Http(h), Some(client)) => http(spec, h, client, start).await,
        (Check::Http(_), None) => Sample::Fail {
            reason: FailReason::Connect,
            detail: "no HTTP client".into(),
        },
    }
}

async fn http(spec: &ProbeSpec, h: &HttpCheck, client: &reqwest::Client, start: Instant) -> Sample {
    let fail = |reason, detail: String| Sample::Fail { reason, detail };
    let mut resp = match client
        .get(h.url.clone())
        .headers(h.headers.clone())
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(classify(&e), error_chain(&e)),
    };
    let status = resp.status().as_u16();
    let header_load = h
        .load_header
        .as_ref()
        .and_then(|n| resp.headers().get(n))
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0);
    let need_body = h.body.is_some() || h.body_regex.is_some() || h.load_json.is_some();
    let mut body = Vec::new();
    if need_body {
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    let room = spec.max_body.saturating_sub(body.len());
                    body.extend_from_slice(&c[..c.len().min(room)]);
                    if body.len() >= spec.max_body {
                        break; // read no more than the limit; judge what we have
                    }
                }
                Ok(None) => break,
                Err(e) => return fail(classify(&e), format!("reading body: {}", error_chain(&e))),
            }
        }
    }
    let rtt = start.elapsed();
    if !h.expect.iter().any(|(a, b)| (*a..=*b).contains(&status)) {
        return fail(FailReason::Status, format!("status {status}"));
    }
    let text = String::from_utf8_lossy(&body);
    if let Some(want) = &h.body
        && !text.contains(want.as_str())
    {
        return fail(FailReason::Body, format!("body does not contain {want:?}"));
    }
    if let Some(re) = &h.body_regex
        && !re.is_match(&text)
    {
        return fail(
            FailReason::Body,
            format!("body does not match /{}/", re.as_str()),
        );
    }
    let json_load = h.load_json.as_ref().and_then(|path| {
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        let mut cur = &v;
        for k in path {
            cur = cur.get(k)?;
        }
        cur.as_f64().filter(|x| x.is_finite() && *x >= 0.0)
    });
    Sample::Ok {
        rtt,
        load: json_load.or(header_load),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// Classifies by the error types in the chain, not by their text (a URL may contain any word).
fn classify(e: &reqwest::Error) -> FailReason {
    if e.is_timeout() {
        return FailReason::Timeout;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = classify_one(err) {
            return r;
        }
        cur = err.source();
    }
    if e.is_connect() {
        FailReason::Connect
    } else {
        FailReason::Protocol
    }
}

/// One link of the chain. io errors are descended through `get_ref()`, because
/// `io::Error::source()` skips the error it wraps (hyper and tokio-rustls nest them:
/// `io(Other, io(InvalidData, rustls::Error))`).
fn classify_one(err: &(dyn std::error::Error + 'static)) -> Option<FailReason> {
    if err.downcast_ref::<rustls::Error>().is_some() {
        return Some(FailReason::Tls);
    }
    let io = err.downcast_ref::<std::io::Error>()?;
    match io.kind() {
        std::io::ErrorKind::ConnectionRefused => return Some(FailReason::Refused),
        std::io::ErrorKind::TimedOut => return Some(FailReason::Timeout),
        _ => {}
    }
    let inner: &(dyn std::error::Error + 'static) = io.get_ref()?;
    classify_one(inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::zonefile::ProbeInput;

    fn spec(url: &str, timeout: f64) -> ProbeSpec {
        ProbeSpec::compile(
            &ProbeInput {
                url: Some(url.into()),
                timeout: Some(timeout),
                interval: Some(10.0),
                ..Default::default()
            },
            None,
        )
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_target_costs_exactly_its_timeout() {
        // Accepts connections (the kernel does) and never answers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let s = spec(&format!("http://127.0.0.1:{port}/health"), 2.0);
        let client = s.client().unwrap();
        let t0 = tokio::time::Instant::now();
        let sample = run(&s, client.as_ref()).await;
        assert!(
            matches!(
                sample,
                Sample::Fail {
                    reason: FailReason::Timeout,
                    ..
                }
            ),
            "{sample:?}"
        );
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(2),
            "paused clock: exactly the timeout"
        );
        drop(l);
    }

    #[tokio::test(start_paused = true)]
    async fn probes_start_at_once_then_follow_the_interval_with_jitter() {
        // Nothing listens: each probe fails fast with "refused", so only the schedule costs time.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let s = ProbeSpec::compile(
            &ProbeInput {
                address: Some(format!("127.0.0.1:{port}")),
                interval: Some(10.0),
                timeout: Some(1.0),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        let t0 = tokio::time::Instant::now();
        let mut at = Vec::new();
        crate::health::runner::probe_loop(&s, None, 0.1, |sample, _next| {
            assert!(
                matches!(
                    sample,
                    Sample::Fail {
                        reason: FailReason::Refused,
                        ..
                    }
                ),
                "{sample:?}"
            );
            at.push(t0.elapsed().as_secs_f64());
            at.len() < 20
        })
        .await;
        assert!(
            at[0] < 0.01,
            "first probe at start, not after an interval: {}",
            at[0]
        );
        let gaps: Vec<f64> = at.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| (9.0..=11.0 + 1e-6).contains(g)),
            "{gaps:?}"
        );
        let distinct = gaps
            .iter()
            .map(|g| (g * 1000.0) as i64)
            .collect::<std::collections::HashSet<_>>();
        assert!(distinct.len() > 5, "jitter spreads the probes: {gaps:?}");
    }

    #[test]
    fn compile_checks_ranges_and_targets() {
        let bad = |p: ProbeInput| ProbeSpec::compile(&p, None).unwrap_err();
        assert!(bad(ProbeInput::default()).contains("needs `url`"));
        assert!(
            bad(ProbeInput {
                url: Some("http://x/".into()),
                rise: Some(0),
                ..Default::default()
            })
            .contains("rise 0")
        );
        assert!(
            bad(ProbeInput {
                url: Some("http://x/".into()),
                interval: Some(1.0),
                timeout: Some(2.0),
                ..Default::default()
            })
            .contains("longer than the interval")
        );
        assert!(
            bad(ProbeInput {
                address: Some("nohost".into()),
                ..Default::default()
            })
            .contains("host:port")
        );
        assert!(
            bad(ProbeInput {
                url: Some("http://{vip}/".into()),
                ..Default::default()
            })
            .contains("{vip}")
        );
        let s = ProbeSpec::compile(
            &ProbeInput {
                url: Some("https://{vip}:8443/h".into()),
                host: Some("www.example.com".into()),
                ..Default::default()
            },
            Some("2001:db8::1".parse().unwrap()),
        )
        .unwrap();
        let Check::Http(h) = &s.check else { panic!() };
        assert_eq!(h.url.as_str(), "https://www.example.com:8443/h");
        assert_eq!(h.connect, Some("[2001:db8::1]:8443".parse().unwrap()));
        assert_eq!(h.expect, vec![(200, 299)]);
        assert!(h.verify_tls);
    }
}
