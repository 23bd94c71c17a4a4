//! The admin HTTP API, metrics, reloads and shutdown, as an operator uses them.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};
use serde_json::Value;

use super::harness::*;

const TOKEN: &str = "test-token-0123456789";

/// A raw HTTP/1.1 request; returns (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Chunked bodies (axum streams JSON that way sometimes): strip the chunk sizes.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    (status, body)
}

fn dechunk(b: &str) -> String {
    let mut out = String::new();
    let mut rest = b;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The example zones with the admin server on and a token; zones copied so tests may edit them.
fn admin_server(tweak: impl FnOnce(&mut gslbd::config::ServerConfig)) -> TestServer {
    let zone = std::fs::read_to_string(repo().join("zones/gslb.example.toml")).unwrap();
    let master = std::fs::read_to_string(repo().join("zones/gslb.example.zone")).unwrap();
    TestServer::with_zones_cfg(
        &[("gslb.example.toml", &zone), ("gslb.example.zone", &master)],
        Some(&sample_mmdb()),
        |c| {
            c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
            c.admin_token = Some(TOKEN.into());
            tweak(c);
        },
    )
}

fn admin(srv: &TestServer) -> SocketAddr {
    srv.gslbd().admin_addr.expect("admin listening")
}

fn london(srv: &TestServer) -> Vec<IpAddr> {
    addrs(&srv.udp(&Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24")))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The value of the metric line that starts with `prefix` (name and labels), if present.
fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn overrides_need_the_token_and_change_answers_only_with_it() {
    let srv = admin_server(|_| {});
    let a = admin(&srv);
    assert_eq!(london(&srv), vec![ip("192.0.2.20")]);
    let path = "/v1/regions/gslb.example/eu-west/force-down";
    let (code, body) = http(a, "POST", path, None, b"");
    assert_eq!(code, 401, "{body}");
    let (code, _) = http(a, "POST", path, Some("wrong-token-0123456789"), b"");
    assert_eq!(code, 401);
    let (code, _) = http(a, "POST", path, Some(&TOKEN[..TOKEN.len() - 1]), b"");
    assert_eq!(code, 401, "a prefix of the token is not the token");
    assert_eq!(london(&srv), vec![ip("192.0.2.20")], "nothing changed");
    let (code, body) = http(a, "POST", path, Some(TOKEN), b"");
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["override"], "force-down");
    assert_eq!(london(&srv), vec![ip("192.0.2.10")]);
    // Drain, then auto.
    let (code, _) = http(
        a,
        "POST",
        "/v1/regions/gslb.example/eu-west/auto",
        Some(TOKEN),
        b"",
    );
    assert_eq!(code, 200);
    assert_eq!(london(&srv), vec![ip("192.0.2.20")]);
    let (code, _) = http(
        a,
        "POST",
        "/v1/regions/gslb.example/eu-west/drain",
        Some(TOKEN),
        b"",
    );
    assert_eq!(code, 200);
    assert_eq!(london(&srv), vec![ip("192.0.2.10")]);
    let st = json(&http(a, "GET", "/v1/status", None, b"").1);
    let eu = st["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "eu-west")
        .unwrap()
        .clone();
    assert_eq!(
        (eu["override"].as_str(), eu["eligible"].as_bool()),
        (Some("drain"), Some(false))
    );
    // A VIP override: eu-west's IPv6 VIP down; AAAA moves, A stays.
    http(
        a,
        "POST",
        "/v1/regions/gslb.example/eu-west/auto",
        Some(TOKEN),
        b"",
    );
    let (code, body) = http(
        a,
        "POST",
        "/v1/regions/gslb.example/eu-west/vips/2001:db8::20/force-down",
        Some(TOKEN),
        b"",
    );
    assert_eq!(code, 200, "{body}");
    let m = srv.udp(&Q::new("www.gslb.example.", RecordType::AAAA).ecs("81.2.3.0/24"));
    assert_eq!(addrs(&m), vec![ip("2001:db8::10")]);
    assert_eq!(london(&srv), vec![ip("192.0.2.20")]);
    // Unknown action, region, VIP: 404; a VIP that is not an address: 400.
    assert_eq!(
        http(
            a,
            "POST",
            "/v1/regions/gslb.example/eu-west/explode",
            Some(TOKEN),
            b""
        )
        .0,
        404
    );
    assert_eq!(
        http(
            a,
            "POST",
            "/v1/regions/gslb.example/mars/force-up",
            Some(TOKEN),
            b""
        )
        .0,
        404
    );
    assert_eq!(
        http(
            a,
            "POST",
            "/v1/regions/gslb.example/eu-west/vips/192.0.2.99/force-up",
            Some(TOKEN),
            b""
        )
        .0,
        404
    );
    assert_eq!(
        http(
            a,
            "POST",
            "/v1/regions/gslb.example/eu-west/vips/nope/force-up",
            Some(TOKEN),
            b""
        )
        .0,
        400
    );
}

#[test]
fn changes_are_refused_when_no_token_is_configured() {
    let srv = admin_server(|c| c.admin_token = None);
    let (code, body) = http(
        admin(&srv),
        "POST",
        "/v1/regions/gslb.example/eu-west/force-down",
        Some(TOKEN),
        b"",
    );
    assert_eq!(code, 401);
    assert!(body.contains("no admin.token configured"), "{body}");
    assert_eq!(london(&srv), vec![ip("192.0.2.20")]);
    // Reading needs no token.
    assert_eq!(http(admin(&srv), "GET", "/v1/status", None, b"").0, 200);
}

#[test]
fn load_is_set_through_the_api_and_bad_bodies_are_refused() {
    let srv = admin_server(|_| {});
    let a = admin(&srv);
    let path = "/v1/regions/gslb.example/eu-west/load";
    assert_eq!(http(a, "PUT", path, None, br#"{"load": 0.5}"#).0, 401);
    let (code, body) = http(a, "PUT", path, Some(TOKEN), br#"{"load": 0.5}"#);
    assert_eq!(code, 200, "{body}");
    let st = json(&http(a, "GET", "/v1/status", None, b"").1);
    let eu = st["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "eu-west")
        .unwrap()
        .clone();
    assert_eq!(eu["load"].as_f64(), Some(0.5));
    for bad in [
        &b"not json"[..],
        br#"{"load": "high"}"#,
        br#"{"load": 0.5, "extra": 1}"#,
        br#"{"load": -1}"#,
        b"",
    ] {
        let (code, body) = http(a, "PUT", path, Some(TOKEN), bad);
        assert_eq!(code, 400, "{} → {body}", String::from_utf8_lossy(bad));
    }
    let big = format!("{{\"load\": 0.5, \"pad\": \"{}\"}}", "x".repeat(10_000));
    assert_eq!(
        http(a, "PUT", path, Some(TOKEN), big.as_bytes()).0,
        413,
        "bodies are size-limited"
    );
    assert_eq!(
        http(
            a,
            "PUT",
            "/v1/regions/gslb.example/mars/load",
            Some(TOKEN),
            br#"{"load": 1}"#
        )
        .0,
        404
    );
    // Back to probe readings.
    assert_eq!(
        http(a, "PUT", path, Some(TOKEN), br#"{"load": null}"#).0,
        200
    );
    let st = json(&http(a, "GET", "/v1/status", None, b"").1);
    let eu = st["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "eu-west")
        .unwrap()
        .clone();
    assert!(eu["load"].is_null());
}

#[test]
fn explain_and_status_describe_the_decision() {
    let srv = admin_server(|_| {});
    let a = admin(&srv);
    let (code, body) = http(
        a,
        "GET",
        "/v1/explain?name=www.gslb.example&client=81.2.3.0/24&type=A",
        None,
        b"",
    );
    assert_eq!(code, 200, "{body}");
    let x = json(&body);
    assert_eq!(x["answer"][0], "192.0.2.20");
    assert_eq!(x["scope"], 16);
    assert_eq!(x["located"]["how"], "database");
    assert_eq!(x["rows"][0]["region"], "eu-west");
    assert_eq!(x["rows"][0]["result"], "chosen #1");
    assert_eq!(
        http(
            a,
            "GET",
            "/v1/explain?name=www.gslb.example&client=banana",
            None,
            b""
        )
        .0,
        400
    );
    assert_eq!(
        http(
            a,
            "GET",
            "/v1/explain?name=static.gslb.example&client=81.2.3.4",
            None,
            b""
        )
        .0,
        404
    );
    assert_eq!(
        http(
            a,
            "GET",
            "/v1/explain?name=www.gslb.example&client=81.2.3.4&type=MX",
            None,
            b""
        )
        .0,
        400
    );
    assert_eq!(
        http(a, "GET", "/v1/explain?client=81.2.3.4", None, b"").0,
        400,
        "name is required"
    );
    // Status: zones, services with their share of answers, regions with coordinates.
    for _ in 0..5 {
        london(&srv);
    }
    let st = json(&http(a, "GET", "/v1/status", None, b"").1);
    assert_eq!(st["zones"][0]["origin"], "gslb.example.");
    let www = &st["zones"][0]["services"][0];
    assert_eq!(www["name"], "www");
    assert!(
        www["answers_last_minute"]["eu-west"].as_u64().unwrap() >= 5,
        "{www}"
    );
    let regions = st["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 4);
    assert!(
        regions
            .iter()
            .any(|r| r["name"] == "sa-east" && r["lat"] == -23.5)
    );
    // The page and its assets are served by gslbd itself.
    let (code, page) = http(a, "GET", "/", None, b"");
    assert_eq!(code, 200);
    assert!(page.contains("/assets/app.js"));
    for asset in ["app.js", "app.css", "world.js"] {
        assert_eq!(
            http(a, "GET", &format!("/assets/{asset}"), None, b"").0,
            200
        );
    }
    assert_eq!(http(a, "GET", "/assets/../../etc/passwd", None, b"").0, 404);
}

#[test]
fn metrics_follow_real_queries() {
    let srv = admin_server(|_| {});
    let a = admin(&srv);
    for _ in 0..3 {
        srv.udp(&Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24"));
    }
    srv.tcp(&Q::new("www.gslb.example.", RecordType::AAAA).ecs("2a02:8100:1::/48"));
    srv.udp(&Q::new("static.gslb.example.", RecordType::A));
    srv.udp(&Q::new("nope.gslb.example.", RecordType::TXT));
    srv.udp(&Q::new("example.com.", RecordType::A));
    let (code, text) = http(a, "GET", "/metrics", None, b"");
    assert_eq!(code, 200);
    let m = |p: &str| metric(&text, p).unwrap_or_else(|| panic!("no {p} in\n{text}"));
    assert_eq!(
        m(r#"gslbd_queries_total{zone="gslb.example.",service="www",qtype="A",rcode="NOERROR"}"#),
        3.0
    );
    assert_eq!(
        m(
            r#"gslbd_queries_total{zone="gslb.example.",service="www",qtype="AAAA",rcode="NOERROR"}"#
        ),
        1.0
    );
    assert_eq!(
        m(r#"gslbd_queries_total{zone="gslb.example.",service="",qtype="A",rcode="NOERROR"}"#),
        1.0
    );
    assert_eq!(
        m(r#"gslbd_queries_total{zone="gslb.example.",service="",qtype="TXT",rcode="NXDOMAIN"}"#),
        1.0
    );
    assert_eq!(
        m(r#"gslbd_queries_total{zone="",service="",qtype="A",rcode="REFUSED"}"#),
        1.0
    );
    assert_eq!(
        m(r#"gslbd_answers_total{zone="gslb.example.",service="www",region="eu-west"}"#),
        4.0
    );
    assert_eq!(m(r#"gslbd_ecs_queries_total{ecs="true"}"#), 4.0);
    assert_eq!(m(r#"gslbd_ecs_queries_total{ecs="false"}"#), 3.0);
    assert_eq!(m(r#"gslbd_ecs_scope_total{family="ipv4",scope="16"}"#), 3.0);
    assert_eq!(m(r#"gslbd_ecs_scope_total{family="ipv6",scope="32"}"#), 1.0);
    assert_eq!(m(r#"gslbd_transport_queries_total{protocol="tcp"}"#), 1.0);
    assert_eq!(m(r#"gslbd_transport_queries_total{protocol="udp"}"#), 6.0);
    assert_eq!(m("gslbd_answer_duration_seconds_count"), 7.0);
    assert_eq!(
        m(r#"gslbd_answer_duration_seconds_bucket{le="+Inf"}"#),
        7.0,
        "buckets are cumulative, +Inf holds all"
    );
    assert_eq!(m("gslbd_tcp_connections_total"), 1.0);
    assert_eq!(
        m(r#"gslbd_region_up{zone="gslb.example",region="eu-west"}"#),
        1.0
    );
    assert_eq!(
        m(r#"gslbd_build_info{version=""#.trim_end_matches('"')),
        1.0
    );
    // Label values are names, never indices.
    assert!(!text.contains("region=\"0\""));
}

#[test]
fn metrics_follow_real_health_transitions() {
    // eu-west probed at a closed port: it goes down, and the metrics say so and why.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let zone = std::fs::read_to_string(repo().join("zones/gslb.example.toml")).unwrap().replace(
        "[regions.eu-west]",
        &format!("[regions.eu-west]\nprobe = {{ address = \"127.0.0.1:{closed}\", interval = 0.2, timeout = 0.1, rise = 1, fall = 2 }}"),
    );
    let master = std::fs::read_to_string(repo().join("zones/gslb.example.zone")).unwrap();
    let srv = TestServer::with_zones_cfg(
        &[("z.toml", &zone), ("gslb.example.zone", &master)],
        Some(&sample_mmdb()),
        |c| {
            c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while london(&srv) != vec![ip("192.0.2.10")] {
        assert!(Instant::now() < deadline, "eu-west never went down");
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = http(admin(&srv), "GET", "/metrics", None, b"").1;
    let m = |p: &str| metric(&text, p).unwrap_or_else(|| panic!("no {p} in\n{text}"));
    assert_eq!(
        m(r#"gslbd_region_up{zone="gslb.example",region="eu-west"}"#),
        0.0
    );
    assert_eq!(
        m(r#"gslbd_region_eligible{zone="gslb.example",region="eu-west"}"#),
        0.0
    );
    assert!(
        m(r#"gslbd_probes_total{zone="gslb.example",region="eu-west",vip="",result="refused"}"#)
            >= 1.0
    );
    assert_eq!(
        m(r#"gslbd_health_transitions_total{target="gslb.example/eu-west",to="down"}"#),
        1.0
    );
    assert_eq!(
        m(r#"gslbd_vip_up{zone="gslb.example",region="eu-west",vip="192.0.2.20"}"#),
        0.0
    );
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_failed_reload_changes_nothing_and_says_why() {
    let srv = admin_server(|c| c.watch = false);
    let a = admin(&srv);
    let zones = srv.gslbd().control.config().unwrap().zones_dir;
    let file = zones.join("gslb.example.toml");
    let good = std::fs::read_to_string(&file).unwrap();
    assert_eq!(http(a, "POST", "/v1/reload", None, b"").0, 401);
    std::fs::write(
        &file,
        good.replace("data = \"192.0.2.25\"", "data = \"192.0.2.999\""),
    )
    .unwrap();
    let (code, body) = http(a, "POST", "/v1/reload", Some(TOKEN), b"");
    assert_eq!(code, 422, "{body}");
    let r = json(&body);
    assert_eq!(r["ok"], false);
    assert!(
        r["errors"][0]
            .as_str()
            .unwrap()
            .contains("gslb.example.toml: line "),
        "{r}"
    );
    // The old zones still answer, and status and metrics show the failure.
    let m = srv.udp(&Q::new("mail.gslb.example.", RecordType::A));
    assert_eq!(addrs(&m), vec![ip("192.0.2.25")]);
    let st = json(&http(a, "GET", "/v1/status", None, b"").1);
    assert_eq!(st["last_reload"]["ok"], false);
    let text = http(a, "GET", "/metrics", None, b"").1;
    assert_eq!(
        metric(&text, r#"gslbd_config_reloads_total{result="failed"}"#),
        Some(1.0)
    );
    // Fixed: the reload goes through and reports what changed.
    std::fs::write(
        &file,
        good.replace("[services.www]", "[services.api2]\n[services.www]"),
    )
    .unwrap();
    let (code, body) = http(a, "POST", "/v1/reload", Some(TOKEN), b"");
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["services_added"][0], "api2.gslb.example.");
    assert_eq!(
        addrs(&srv.udp(&Q::new("api2.gslb.example.", RecordType::A).ecs("81.2.3.0/24"))),
        vec![ip("192.0.2.20")]
    );
}

#[test]
fn reloads_keep_health_history_and_stop_probes_of_removed_regions() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let zone = std::fs::read_to_string(repo().join("zones/gslb.example.toml")).unwrap();
    let probed = zone
        .replace("[regions.eu-west]", &format!("[regions.eu-west]\nprobe = {{ address = \"127.0.0.1:{closed}\", interval = 0.2, timeout = 0.1, fall = 1 }}"))
        .replace("[regions.sa-east]", &format!("[regions.sa-east]\nprobe = {{ address = \"127.0.0.1:{closed}\", interval = 0.2, timeout = 0.1, fall = 1 }}"));
    let master = std::fs::read_to_string(repo().join("zones/gslb.example.zone")).unwrap();
    let srv = TestServer::with_zones_cfg(
        &[
            ("gslb.example.toml", &probed),
            ("gslb.example.zone", &master),
        ],
        Some(&sample_mmdb()),
        |c| {
            c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
            c.admin_token = Some(TOKEN.into());
            c.watch = false;
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while srv
        .status()
        .region("gslb.example", "eu-west")
        .is_none_or(|r| r.up)
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(srv.health().probe_tasks()), 2);
    let before = srv
        .status()
        .region("gslb.example", "eu-west")
        .unwrap()
        .probe
        .clone()
        .unwrap()
        .failures;
    // Remove sa-east (and its probe) and change an unrelated record.
    let zones = srv.gslbd().control.config().unwrap().zones_dir;
    let mut next = probed.replace("data = \"192.0.2.25\"", "data = \"192.0.2.26\"");
    let a = next.find("[regions.sa-east]").unwrap();
    let b = next[a..].find("# --- steered").map(|i| a + i).unwrap();
    next.replace_range(a..b, "");
    next = next.replace(
        "regions = [\"us-east\", \"eu-west\", \"ap-southeast\", \"sa-east\"]",
        "regions = [\"us-east\", \"eu-west\", \"ap-southeast\"]",
    );
    next = next.replace(
        "regions = [\"us-east\", \"eu-west\", \"sa-east\", \"ap-southeast\"]",
        "regions = [\"us-east\", \"eu-west\", \"ap-southeast\"]",
    );
    std::fs::write(zones.join("gslb.example.toml"), &next).unwrap();
    let (code, body) = http(admin(&srv), "POST", "/v1/reload", Some(TOKEN), b"");
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["regions_removed"][0], "gslb.example./sa-east");
    assert_eq!(
        rt.block_on(srv.health().probe_tasks()),
        1,
        "the removed region's probe stopped"
    );
    let after = srv
        .status()
        .region("gslb.example", "eu-west")
        .unwrap()
        .clone();
    assert!(!after.up, "eu-west keeps its state across the reload");
    assert!(after.probe.unwrap().failures >= before, "and its history");
    assert_eq!(
        addrs(&srv.udp(&Q::new("mail.gslb.example.", RecordType::A))),
        vec![ip("192.0.2.26")]
    );
}

/// Queries continuously on other threads; counts failures and wrong answers.
struct Hammer {
    stop: Arc<AtomicBool>,
    bad: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hammer {
    fn start(dns: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let bad = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let threads = (0..2)
            .map(|i| {
                let (stop, bad, total) = (stop.clone(), bad.clone(), total.clone());
                std::thread::spawn(move || {
                    let q = Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24");
                    let s = Q::new("static.gslb.example.", RecordType::A);
                    while !stop.load(Ordering::Relaxed) {
                        let (q, want): (&Q, &[&str]) = if i == 0 {
                            (&q, &["192.0.2.20"])
                        } else {
                            (&s, &["203.0.113.10", "203.0.113.11"])
                        };
                        let ok = udp_raw(dns, &q.to_bytes())
                            .and_then(|b| hickory_proto::op::Message::from_vec(&b).ok())
                            .is_some_and(|m| {
                                m.metadata.response_code == hickory_proto::op::ResponseCode::NoError
                                    && addrs(&m).iter().map(|a| a.to_string()).collect::<Vec<_>>()
                                        == want
                            });
                        if !ok {
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                        total.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Self {
            stop,
            bad,
            total,
            threads,
        }
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        (
            self.bad.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

fn txt_of(m: &hickory_proto::op::Message) -> String {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(t.to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn wait_txt(dns: SocketAddr, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = udp_raw(dns, &Q::new("gslb.example.", RecordType::TXT).to_bytes())
            .and_then(|b| hickory_proto::op::Message::from_vec(&b).ok());
        if m.as_ref().is_some_and(|m| txt_of(m).contains(want)) {
            return;
        }
        assert!(Instant::now() < deadline, "reload to {want:?} never showed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn twenty_reloads_under_load_lose_no_query() {
    // The built binary, so that SIGHUP can be sent to it alone.
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    let zone = std::fs::read_to_string(repo().join("zones/gslb.example.toml")).unwrap();
    std::fs::copy(
        repo().join("zones/gslb.example.zone"),
        zones.join("gslb.example.zone"),
    )
    .unwrap();
    let zfile = zones.join("gslb.example.toml");
    let version = |n: usize| {
        zone.replace(
            "data = \"v=spf1 mx -all\"",
            &format!("data = \"v=spf1 mx -all gen{n}-end\""),
        )
    };
    std::fs::write(&zfile, version(0)).unwrap();
    let dport = free_port();
    let aport = free_port();
    let cfg = dir.path().join("gslbd.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = [\"127.0.0.1:{dport}\"]\nzones = \"zones\"\ngeodata = \"{}\"\n[dns]\nworkers = 2\n[admin]\nlisten = \"127.0.0.1:{aport}\"\ntoken = \"{TOKEN}\"\n",
            sample_mmdb().display()
        ),
    )
    .unwrap();
    let mut child = Spawned(
        std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
            .args(["serve", "--config"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let dns: SocketAddr = format!("127.0.0.1:{dport}").parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{aport}").parse().unwrap();
    wait_txt(dns, "gen0-end");
    let hammer = Hammer::start(dns);
    for n in 1..=20 {
        std::fs::write(&zfile, version(n)).unwrap_or(());
        match n % 3 {
            // API: the file was written first; reload it now.
            0 => assert_eq!(http(admin, "POST", "/v1/reload", Some(TOKEN), b"").0, 200),
            // SIGHUP.
            1 => assert!(
                std::process::Command::new("kill")
                    .args(["-HUP", &child.id().to_string()])
                    .status()
                    .unwrap()
                    .success()
            ),
            // File change alone: the watcher reloads (write atomically, as editors do).
            _ => write_atomically(&zfile, &version(n)),
        }
        wait_txt(dns, &format!("gen{n}-end"));
    }
    let (bad, total) = hammer.finish();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait();
    assert!(status.success(), "{status}");
    eprintln!(
        "20 reloads (SIGHUP, API, file watch) under load: {total} queries, {bad} failed or wrong"
    );
    assert!(total > 200, "the hammer ran: {total}");
    assert_eq!(
        bad, 0,
        "{bad} of {total} queries failed or were wrong during 20 reloads"
    );
}

#[test]
fn sigterm_answers_the_query_in_flight_and_exits_cleanly() {
    let dport = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gslbd.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = [\"127.0.0.1:{dport}\"]\nzones = \"{}\"\n[dns]\nworkers = 1\n",
            repo().join("zones").display()
        ),
    )
    .unwrap();
    let mut child = Spawned(
        std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
            .args(["serve", "--config"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let dns: SocketAddr = format!("127.0.0.1:{dport}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while udp_raw(
        dns,
        &Q::new("static.gslb.example.", RecordType::A).to_bytes(),
    )
    .is_none()
    {
        assert!(Instant::now() < deadline, "never started");
    }
    // An idle TCP connection, and one with a query on the wire when SIGTERM lands.
    let idle = TcpStream::connect(dns).unwrap();
    let mut busy = TcpStream::connect(dns).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let q = Q::new("static.gslb.example.", RecordType::A).to_bytes();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    busy.write_all(&framed).unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut len = [0u8; 2];
    busy.read_exact(&mut len)
        .expect("the query in flight is answered");
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    busy.read_exact(&mut body).unwrap();
    let m = hickory_proto::op::Message::from_vec(&body).unwrap();
    assert_eq!(addrs(&m).len(), 2);
    let t0 = Instant::now();
    let status = child.wait();
    assert!(status.success(), "exit status {status}");
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "shutdown is bounded even with an idle connection open"
    );
    drop(idle);
}

#[test]
fn timed_overrides_through_the_api_and_their_bad_spellings() {
    let srv = admin_server(|_| {});
    let a = admin(&srv);
    let base = "/v1/regions/gslb.example/eu-west/drain";
    for (query, why) in [
        ("?for=soon", "not a duration"),
        ("?until=yesterday", "not a time"),
        ("?until=1000", "in the past"),
        ("?for=1h&until=2099-01-01T00:00:00Z", "both"),
        ("?when=1h", "unknown parameter"),
    ] {
        let (code, body) = http(a, "POST", &format!("{base}{query}"), Some(TOKEN), b"");
        assert_eq!(code, 400, "{why}: {body}");
    }
    assert_eq!(london(&srv), vec![ip("192.0.2.20")], "nothing changed");

    let before = gslbd::rt::unix_seconds();
    let (code, body) = http(a, "POST", &format!("{base}?for=30m"), Some(TOKEN), b"");
    assert_eq!(code, 200, "{body}");
    let until = json(&body)["until"].as_u64().expect("until in the reply");
    assert!((before + 1800..=before + 1801).contains(&until), "{until}");
    assert_ne!(london(&srv), vec![ip("192.0.2.20")], "drained");
    let (_, status) = http(a, "GET", "/v1/status", None, b"");
    let status = json(&status);
    let eu = status["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "eu-west")
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(eu["override_until"].as_u64(), Some(until), "{eu}");
    let (_, text) = http(a, "GET", "/metrics", None, b"");
    let expires = metric(
        &text,
        "gslbd_override_expires_timestamp_seconds{zone=\"gslb.example\",region=\"eu-west\"",
    );
    assert_eq!(expires, Some(until as f64), "{text}");

    let (code, body) = http(
        a,
        "POST",
        "/v1/regions/gslb.example/eu-west/auto",
        Some(TOKEN),
        b"",
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(london(&srv), vec![ip("192.0.2.20")]);
}
