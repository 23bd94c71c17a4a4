//! The admin HTTP server (axum): Prometheus metrics, JSON status, explain, operator overrides,
//! reload, and the status page. It also owns the reload triggers that are not HTTP: SIGHUP and
//! the zones-directory watcher. Changes go through the health runner and [`Control::reload`];
//! nothing here touches health state directly.

#![allow(
    clippy::disallowed_methods,
    reason = "the API reports times and reads the clock for explain"
)]

mod scrape;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::control::Control;
use crate::health::Override;

/// Largest request body accepted (overrides and load are tiny JSON).
pub const BODY_LIMIT: usize = 4096;

#[derive(Clone)]
struct AppState {
    control: Arc<Control>,
    prom: Arc<prometheus_client::registry::Registry>,
}

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

/// Changes need `Authorization: Bearer <admin.token>`; without a configured token they are off.
/// Returns the refusal when the request is not allowed.
fn refuse(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = state.control.config().and_then(|c| c.admin_token) else {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "changes are disabled: no admin.token configured",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare in constant time so the token cannot be guessed byte by byte.
    let ok = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    (!ok).then(|| error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"))
}

/// The admin API's routes over `control`: the status page and its assets, `/metrics`,
/// `/v1/status`, `/v1/explain`, and the changes (reload, overrides, load), which need the bearer
/// token. Request bodies are capped at [`BODY_LIMIT`].
pub fn router(control: Arc<Control>) -> Router {
    let mut prom = prometheus_client::registry::Registry::default();
    prom.register_collector(Box::new(scrape::Scrape {
        registry: control.metrics.clone(),
        status: control.health.status.clone(),
        tcp: control.tcp.clone(),
        cluster: control.cluster.clone(),
        served: control.health.served.clone(),
    }));
    let state = AppState {
        control,
        prom: Arc::new(prom),
    };
    Router::new()
        .route("/", get(page))
        .route("/assets/{file}", get(asset))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/v1/cluster", get(cluster))
        .route("/v1/explain", get(explain))
        .route("/v1/reload", post(reload))
        .route("/v1/regions/{zone}/{region}/load", put(set_load))
        .route(
            "/v1/regions/{zone}/{region}/vips/{vip}/{action}",
            post(vip_action),
        )
        .route("/v1/regions/{zone}/{region}/{action}", post(region_action))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Headers of everything the page is made of: no caching across upgrades, nothing loaded from
/// elsewhere, no sniffing.
const PAGE_HEADERS: [(header::HeaderName, &str); 3] = [
    (header::CACHE_CONTROL, "no-cache"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
];

async fn page() -> Response {
    (
        PAGE_HEADERS,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("page/index.html"),
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, ty) = match file.as_str() {
        "app.js" => (
            include_str!("page/app.js"),
            "text/javascript; charset=utf-8",
        ),
        "app.css" => (include_str!("page/app.css"), "text/css; charset=utf-8"),
        "world.js" => (
            include_str!("page/world.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return error(StatusCode::NOT_FOUND, "no such asset"),
    };
    (
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &s.prom) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            out,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Serialize)]
struct ServiceJson {
    name: String,
    fqdn: String,
    chain: Vec<&'static str>,
    regions: Vec<String>,
    ttl: u32,
    answers: usize,
    /// Answers per region over about the last minute.
    answers_last_minute: std::collections::BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct ZoneJson {
    origin: String,
    file: String,
    services: Vec<ServiceJson>,
}

async fn status(State(s): State<AppState>) -> Response {
    let c = &s.control;
    let served = c.health.served.load();
    let last = c.answers_last_minute();
    let zones: Vec<ZoneJson> = served
        .zones
        .zones
        .iter()
        .map(|z| ZoneJson {
            origin: z.origin.to_ascii(),
            file: z.file.display().to_string(),
            services: z
                .services
                .iter()
                .map(|svc| ServiceJson {
                    name: svc.label.clone(),
                    fqdn: svc.name.to_ascii(),
                    chain: svc.chain.iter().map(|st| st.name()).collect(),
                    regions: svc
                        .regions
                        .iter()
                        .map(|&i| z.regions[i].name.clone())
                        .collect(),
                    ttl: svc.ttl,
                    answers: svc.answers,
                    answers_last_minute: last
                        .get(&format!(
                            "{}/{}",
                            z.origin.to_ascii().trim_end_matches('.'),
                            svc.label
                        ))
                        .cloned()
                        .unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    let health = c.health.status.load_full();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": c.started.elapsed().as_secs_f64(),
        // The clock of transitions[].at and probe.last.at.
        "health_now_s": c.health.started.elapsed().as_secs_f64(),
        "config_file": c.config_file.as_ref().map(|p| p.display().to_string()),
        "last_reload": **c.last_reload.load(),
        "tcp": { "accepted": c.tcp.accepted.load(std::sync::atomic::Ordering::Relaxed), "open": c.tcp.open.load(std::sync::atomic::Ordering::Relaxed) },
        "zones": zones,
        "regions": health.regions,
        "transitions": health.transitions,
    }))
    .into_response()
}

/// `GET /v1/cluster`: the fleet as this instance sees it — members, every member's observation
/// of every target, the verdicts, zone data mismatches — and the etcd session's counters.
async fn cluster(State(s): State<AppState>) -> Response {
    let health = s.control.health.status.load_full();
    let Some(c) = &s.control.cluster else {
        return Json(json!({ "mode": "standalone" })).into_response();
    };
    let r = std::sync::atomic::Ordering::Relaxed;
    Json(json!({
        "mode": "cluster",
        "etcd": {
            "endpoints": c.config.endpoints,
            "prefix": c.config.prefix,
            "connected": c.stats.connected.load(r),
            "sessions": c.stats.sessions.load(r),
            "errors": c.stats.errors.load(r),
            "writes": c.stats.writes.load(r),
        },
        "fleet": health.fleet,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct ExplainQuery {
    name: String,
    client: String,
    #[serde(default, rename = "type")]
    qtype: Option<String>,
}

async fn explain(State(s): State<AppState>, Query(q): Query<ExplainQuery>) -> Response {
    let (ip, prefix) = match q.client.split_once('/') {
        Some((a, p)) => (
            a.parse::<std::net::IpAddr>().ok(),
            p.parse::<u8>().ok().map(Some),
        ),
        None => (q.client.parse().ok(), Some(None)),
    };
    let (Some(ip), Some(prefix)) = (ip, prefix) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("client {:?} is not an address or network", q.client),
        );
    };
    let qtype = match q.qtype.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("A") => hickory_proto::rr::RecordType::A,
        Some("AAAA") => hickory_proto::rr::RecordType::AAAA,
        Some(t) => return error(StatusCode::BAD_REQUEST, format!("type {t}: A or AAAA")),
    };
    let mut fqdn = q.name.clone();
    if !fqdn.ends_with('.') {
        fqdn.push('.');
    }
    let Ok(name) = hickory_proto::rr::Name::from_ascii(&fqdn) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("name {:?} is not a DNS name", q.name),
        );
    };
    let served = s.control.health.served.load();
    match crate::explain::explain(&served, &name, qtype, ip, prefix, std::time::Instant::now()) {
        Ok(x) => Json(x).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, e),
    }
}

async fn reload(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse(&s, &headers) {
        return r;
    }
    let report = s.control.reload("api").await;
    let code = if report.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (code, Json(report)).into_response()
}

/// `?for=30m` or `?until=2026-12-06T10:00:00Z` (or Unix seconds): a timed override.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Timing {
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

impl Timing {
    /// When the override ends (Unix seconds), if it is timed.
    fn until(&self) -> Result<Option<u64>, String> {
        let now = crate::rt::unix_seconds();
        match (&self.for_, &self.until) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err("give `for` or `until`, not both".into()),
            (Some(d), None) => {
                let d = humantime::parse_duration(d)
                    .map_err(|e| format!("for={d:?}: {e} (e.g. 90s, 30m, 2h)"))?;
                Ok(Some(now + d.as_secs().max(1)))
            }
            (None, Some(t)) => {
                let at = match t.parse::<u64>() {
                    Ok(secs) => secs,
                    Err(_) => humantime::parse_rfc3339_weak(t)
                        .map_err(|e| format!("until={t:?}: {e} (RFC 3339 or Unix seconds)"))?
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                };
                if at <= now {
                    return Err(format!("until={t:?} is not in the future"));
                }
                Ok(Some(at))
            }
        }
    }
}

async fn region_action(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((zone, region, action)): Path<(String, String, String)>,
    Query(t): Query<Timing>,
) -> Response {
    set_override(&s, &headers, &zone, &region, None, &action, &t).await
}

async fn vip_action(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((zone, region, vip, action)): Path<(String, String, String, String)>,
    Query(t): Query<Timing>,
) -> Response {
    let Ok(ip) = vip.parse() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{vip:?} is not an IP address"),
        );
    };
    set_override(&s, &headers, &zone, &region, Some(ip), &action, &t).await
}

async fn set_override(
    s: &AppState,
    headers: &HeaderMap,
    zone: &str,
    region: &str,
    vip: Option<std::net::IpAddr>,
    action: &str,
    timing: &Timing,
) -> Response {
    if let Some(r) = refuse(s, headers) {
        return r;
    }
    let until = match timing.until() {
        Ok(u) => u,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some(ov) = Override::parse(action) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("unknown action {action:?}: force-up, force-down, drain, auto"),
        );
    };
    let done = match &s.control.cluster {
        // In a fleet the override goes to etcd; every instance applies it from its watch.
        Some(c) => match fleet_target(s, zone, region, vip) {
            Ok(key) => c.set_override(key, ov, until).await.map_err(Unreachable),
            Err(e) => return error(StatusCode::NOT_FOUND, e),
        },
        None => s
            .control
            .health
            .set_override_until(zone, region, vip, ov, until)
            .await
            .map_err(Refused),
    };
    match done {
        Ok(()) => Json(
            json!({ "zone": zone, "region": region, "vip": vip, "override": ov, "until": until }),
        )
        .into_response(),
        Err(Refused(e)) if e.starts_with("no such") => error(StatusCode::NOT_FOUND, e),
        Err(Refused(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(Unreachable(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// Why a change was not made: the runner refused it, or etcd could not be reached.
enum Failed {
    Refused(String),
    Unreachable(String),
}
use Failed::{Refused, Unreachable};

/// The probe target of an override or load in the zones served now; "no such …" otherwise.
fn fleet_target(
    s: &AppState,
    zone: &str,
    region: &str,
    vip: Option<std::net::IpAddr>,
) -> Result<crate::health::runner::TargetKey, String> {
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    let served = s.control.health.served.load();
    let exists = served.zones.zones.iter().any(|z| {
        z.origin
            .to_ascii()
            .trim_end_matches('.')
            .eq_ignore_ascii_case(&zone)
            && z.regions
                .iter()
                .any(|r| r.name == region && vip.is_none_or(|v| r.vips.contains(&v)))
    });
    if !exists {
        return Err(format!("no such region or VIP: {zone}/{region}"));
    }
    Ok(crate::health::runner::TargetKey {
        zone,
        region: region.to_string(),
        vip,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadBody {
    /// A fraction of capacity, or null to return to probe readings.
    load: Option<f64>,
}

async fn set_load(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((zone, region)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = refuse(&s, &headers) {
        return r;
    }
    let parsed: LoadBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("body must be {{\"load\": <number or null>}}: {e}"),
            );
        }
    };
    if let Some(l) = parsed.load
        && !(l.is_finite() && l >= 0.0)
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("load {l} must be a number ≥ 0"),
        );
    }
    let done = match &s.control.cluster {
        Some(c) => match fleet_target(&s, &zone, &region, None) {
            Ok(key) => c.set_load(key, parsed.load).await.map_err(Unreachable),
            Err(e) => return error(StatusCode::NOT_FOUND, e),
        },
        None => s
            .control
            .health
            .set_load(&zone, &region, parsed.load)
            .await
            .map_err(Refused),
    };
    match done {
        Ok(()) => {
            Json(json!({ "zone": zone, "region": region, "load": parsed.load })).into_response()
        }
        Err(Refused(e)) if e.starts_with("no such") => error(StatusCode::NOT_FOUND, e),
        Err(Refused(e)) => error(StatusCode::BAD_REQUEST, e),
        Err(Unreachable(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// Starts the admin thread: the HTTP server (when `admin.listen` is set), SIGHUP (when asked),
/// the zones-directory watcher (when `admin.watch`), and the answer sampler.
pub fn start(
    control: Arc<Control>,
    sighup: bool,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<(Option<SocketAddr>, JoinHandle<()>)> {
    let cfg = control.config();
    let listener = match cfg.as_ref().and_then(|c| c.admin_listen) {
        Some(addr) => {
            let l = std::net::TcpListener::bind(addr).map_err(|e| {
                std::io::Error::new(e.kind(), format!("admin: cannot listen on {addr}: {e}"))
            })?;
            l.set_nonblocking(true)?;
            Some(l)
        }
        None => None,
    };
    let addr = listener.as_ref().and_then(|l| l.local_addr().ok());
    let watch_dir = cfg
        .as_ref()
        .filter(|c| c.watch)
        .map(|c| c.zones_dir.clone());
    let thread = crate::rt::on_own_thread("gslbd-admin", move || {
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            let mut http = None;
            if let Some(l) = listener {
                match tokio::net::TcpListener::from_std(l) {
                    Ok(l) => {
                        let app = router(control.clone());
                        let mut st = stop.clone();
                        http = Some(tokio::spawn(async move {
                            let _ = axum::serve(l, app)
                                .with_graceful_shutdown(async move {
                                    let _ = st.wait_for(|s| *s).await;
                                })
                                .await;
                        }));
                    }
                    Err(e) => warn!(error = %e, "admin listener"),
                }
            }
            let c = control.clone();
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    c.sample_answers();
                }
            });
            let c = control.clone();
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let c = c.clone();
                    if let Ok(n) = tokio::task::spawn_blocking(move || c.refresh_signatures()).await
                        && n > 0
                    {
                        info!(
                            rrsets = n,
                            "DNSSEC signatures renewed ahead of their refresh time"
                        );
                    }
                }
            });
            if sighup {
                let c = control.clone();
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                    Ok(mut hup) => {
                        tasks.spawn(async move {
                            while hup.recv().await.is_some() {
                                info!("SIGHUP: reloading");
                                c.reload("sighup").await;
                            }
                        });
                    }
                    Err(e) => warn!(error = %e, "cannot handle SIGHUP"),
                }
            }
            if let Some(dir) = watch_dir {
                tasks.spawn(watch_zones(control.clone(), dir));
            }
            let _ = stop.wait_for(|s| *s).await;
            // Give the HTTP server its graceful shutdown (bounded), then end the rest.
            if let Some(h) = http {
                let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
            }
            tasks.abort_all();
        }
    })?;
    if let Some(a) = addr {
        info!(addr = %a, "admin listening");
    }
    Ok((addr, thread))
}

/// Reloads when files in the zones directory change, debounced: editors write a temporary file
/// and rename it, which is several events; one reload follows 300 ms after the last.
async fn watch_zones(control: Arc<Control>, dir: std::path::PathBuf) {
    use notify::{RecursiveMode, Watcher};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = match notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev
            && !ev.kind.is_access()
        {
            let _ = tx.send(());
        }
    }) {
        Ok(w) => w,
        Err(e) => {
            warn!(error = %e, "cannot watch the zones directory");
            return;
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        warn!(dir = %dir.display(), error = %e, "cannot watch the zones directory");
        return;
    }
    while rx.recv().await.is_some() {
        // Debounce: wait until 300 ms pass without another event.
        loop {
            match tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        info!(dir = %dir.display(), "zones changed on disk: reloading");
        control.reload("watch").await;
    }
}
