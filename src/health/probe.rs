//! Probes: dumb functions from a target to a [`Sample`]. Thresholds, state and overrides live in
//! [`super::state`]; timing lives in [`super::runner`]. What to probe is the model's
//! [`ProbeSpec`], compiled by `config`.

use std::time::{Duration, Instant};

pub use crate::zone::probe::{Check, HttpCheck, ProbeSpec};

/// Why a probe failed (also the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// No answer within the probe's timeout (or the OS timed the connection out).
    Timeout,
    /// The connection was refused.
    Refused,
    /// Any other failure to connect: unreachable, reset, no HTTP client.
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The HTTP status is not one of the expected ones.
    Status,
    /// The body lacks the expected text or does not match the expected pattern.
    Body,
    /// Any other HTTP-level failure (a malformed response, a broken body).
    Protocol,
}

impl FailReason {
    /// Every reason, in declaration order, so that `ALL[r as usize] == r` (failure counters are
    /// indexed that way).
    pub const ALL: [FailReason; 7] = [
        FailReason::Timeout,
        FailReason::Refused,
        FailReason::Connect,
        FailReason::Tls,
        FailReason::Status,
        FailReason::Body,
        FailReason::Protocol,
    ];

    /// The reason's name as in metric labels and the status JSON.
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
    /// The target answered as expected.
    Ok {
        /// From the start of the probe to the TCP connection, or to the HTTP response headers
        /// (and the body, when it is checked).
        rtt: Duration,
        /// The load the target reported (the JSON path, else the header), when configured,
        /// present, finite and not negative.
        load: Option<f64>,
    },
    /// The probe failed.
    Fail {
        /// The failure's class (the metric label).
        reason: FailReason,
        /// What happened, for operators: the error chain, the status, the body mismatch.
        detail: String,
    },
}

/// `spec` with the header `X-Gslbd-Instance: <instance>` on its HTTP requests, so that a
/// region's endpoint can tell the vantage points of a fleet apart (and tests can fail a region
/// for some of them only).
pub fn with_instance(spec: &ProbeSpec, instance: &str) -> ProbeSpec {
    let mut spec = spec.clone();
    if let Check::Http(h) = &mut spec.check
        && let Ok(v) = reqwest::header::HeaderValue::from_str(instance)
    {
        h.headers.insert("x-gslbd-instance", v);
    }
    spec
}

/// A reusable client for `spec`'s target (connection reuse across probes).
pub fn client(spec: &ProbeSpec) -> Result<Option<reqwest::Client>, String> {
    {
        let Check::Http(h) = &spec.check else {
            return Ok(None);
        };
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(spec.timeout)
            .connect_timeout(spec.timeout)
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
        crate::config::probe::compile(
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
        let client = client(&s).unwrap();
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
        let s = crate::config::probe::compile(
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
        let bad = |p: ProbeInput| crate::config::probe::compile(&p, None).unwrap_err();
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
        let s = crate::config::probe::compile(
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
