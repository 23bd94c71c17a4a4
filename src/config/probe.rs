//! Probe settings → the model's [`ProbeSpec`]: defaults, ranges, `{vip}` substitution, URL and
//! header checks. Every error is a sentence for `file: line N: reason`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use regex::Regex;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::zonefile::{InitialInput, ProbeInput, ProbeKindInput, StatusInput};
use crate::zone::probe::{
    Check, DEFAULT_FALL, DEFAULT_INTERVAL, DEFAULT_LOAD_MAX_AGE, DEFAULT_MAX_BODY, DEFAULT_RISE,
    DEFAULT_TIMEOUT, HttpCheck, ProbeSpec,
};

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

/// Checks the timing keys of the server-wide defaults.
pub fn check_defaults(p: &ProbeInput) -> Result<(), String> {
    timing(p).map(|_| ())
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
    let (interval, timeout, rise, fall, load_max_age, max_body) = timing(p)?;
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
                let value = HeaderValue::from_str(v).map_err(|_| format!("header value {v:?}"))?;
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
