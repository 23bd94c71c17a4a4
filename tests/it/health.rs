//! Health checking, end to end: gslbd probes fake endpoints on loopback (see `fakes`) and the
//! answers it gives over DNS follow, within a bounded detection time.
//!
//! What this module proves, each through DNS answers, their TTLs and the runner's status:
//! - a region goes down after `fall` failed probes of every kind (bad status, timeout by a hung or
//!   slow endpoint, connection refused, body mismatch, TLS failure, garbage, a closed connection)
//!   with the matching `last.reason`, London's answers move to the next nearest region within
//!   `interval × fall + interval` (+ 300 ms of scheduling slack), and come back after `rise`
//!   successes within the same kind of bound;
//! - TCP probes, per-VIP probes (`{vip}`, `vip_probes`, `min_vips_up`), the probe keys `host`,
//!   `headers`, `expect_status`, `body_regex`, and `max_body` against a 50 MB body;
//! - load (JSON body and header) and RTT reach the status, and a load reading older than
//!   `load_max_age` disappears, also between two probes (and stops steering `shed_load`);
//! - the failure reason comes from the error, not from words of the URL; IPv6 VIPs are probed
//!   per VIP and each address family fails over on its own;
//! - every `all_down` mode answers as declared with `degraded_ttl`, never SERVFAIL and never an
//!   accidental empty answer; `initial = "down"` keeps a region out from the first query on;
//! - operator overrides win over probes, through the API and the state file, and survive a
//!   restart; TTLs are capped by the next possible state change and floored at `min_ttl`;
//! - a hanging probe target does not slow DNS (p99 latency compared with a healthy twin).
//!
//! Each test binds its fakes on its own loopback network `127.20.<n>.0/24` (Linux answers on all
//! of 127/8; one test also uses `::1`), so that no two tests can ever share a port and a stopped
//! fake's port stays closed.
//! Probes run every 0.3 s with a 0.1 s timeout, `rise = fall = 2` and no jitter. Because
//! `fall × timeout ≤ interval`, a failure of any kind is seen within `interval × (fall + 1)`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use gslbd::health::runner::ProbeStatus;
use gslbd::health::{FailReason, Override, RegionStatus};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use super::fakes::{FakeHttp, Mode};
use super::harness::*;

const ZONE: &str = "gslb.example";
const INTERVAL: f64 = 0.3;
const TIMEOUT: f64 = 0.1;
const RISE: u32 = 2;
const FALL: u32 = 2;
/// Scheduling slack on top of every detection bound.
const SLACK: Duration = Duration::from_millis(300);
/// How long a test waits for anything before it calls it a failure (bounds are checked apart).
const PATIENCE: Duration = Duration::from_secs(6);

const US_EAST: &str = "192.0.2.10";
const EU_WEST: &str = "192.0.2.20";
const AP_SOUTHEAST: &str = "192.0.2.30";
const SA_EAST: &str = "192.0.2.40";
/// The client: London, nearest eu-west, then us-east, sa-east, ap-southeast.
const LONDON: &str = "81.2.3.0/24";
/// Service TTLs used unless a test says otherwise: the normal answer's TTL is then min_ttl (5,
/// the probes being sub-second) and a degraded answer's is 4.
const SERVICE: &str = "[services.www]\nttl = 30\ndegraded_ttl = 4\n";
const NORMAL_TTL: u32 = 5;
const DEGRADED_TTL: u32 = 4;

/// Detection bound for `n` consecutive results (`fall` or `rise`): `interval × n + interval`
/// plus slack.
fn bound(n: u32) -> Duration {
    Duration::from_secs_f64(INTERVAL * f64::from(n + 1)) + SLACK
}

/// `127.20.<net>.<host>`: each test has its own `net`.
fn lo(net: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 20, net, host))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ips(v: &[&str]) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = v.iter().map(|s| ip(s)).collect();
    v.sort();
    v
}

/// A zone of the four regions of `geo.rs`; `eu_vips` replaces eu-west's VIPs when not empty,
/// `keys` adds lines to a region's table (`("eu-west", "probe = { … }")`), `services` follows.
fn zone(eu_vips: &[&str], keys: &[(&str, String)], services: &str) -> String {
    let mut out = String::from(
        "origin = \"gslb.example.\"\nns = [\"ns1\"]\n[soa]\nserial = 1\n\
         [[records]]\nname = \"ns1\"\ntype = \"A\"\ndata = \"192.0.2.53\"\n",
    );
    let eu: Vec<String> = if eu_vips.is_empty() {
        vec![EU_WEST.into(), "2001:db8::20".into()]
    } else {
        eu_vips.iter().map(|s| s.to_string()).collect()
    };
    let regions: [(&str, &str, Vec<String>); 4] = [
        (
            "us-east",
            "[39.0, -77.5]",
            vec![US_EAST.into(), "2001:db8::10".into()],
        ),
        ("eu-west", "[53.3, -6.3]", eu),
        (
            "ap-southeast",
            "[1.35, 103.8]",
            vec![AP_SOUTHEAST.into(), "2001:db8::30".into()],
        ),
        (
            "sa-east",
            "[-23.5, -46.6]",
            vec![SA_EAST.into(), "2001:db8::40".into()],
        ),
    ];
    for (name, loc, vips) in regions {
        out.push_str(&format!(
            "[regions.{name}]\nlocation = {loc}\nvips = {vips:?}\n"
        ));
        for (r, line) in keys {
            if *r == name {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str(services);
    out
}

/// `probe = { <target>, interval, timeout, rise, fall<extra> }` with the module's timings.
fn probe(target: &str, extra: &str) -> String {
    format!(
        "probe = {{ {target}, interval = {INTERVAL}, timeout = {TIMEOUT}, \
         rise = {RISE}, fall = {FALL}{extra} }}"
    )
}

fn url_of(fake: &FakeHttp) -> String {
    format!("url = \"http://{}/health\"", fake.addr)
}

/// A server for `zone_text` over the sample geodata, without probe jitter.
/// These tests read TTLs capped to the next probe that could change the answer, so they opt
/// in to it server-wide (`health.ttl_follows_probes`); the default (the TTL as written) is
/// tested in `the_ttl_written_is_answered_unless_a_service_opts_in_to_the_probe_cap`.
fn server(zone_text: &str, tweak: impl FnOnce(&mut gslbd::config::ServerConfig)) -> TestServer {
    TestServer::with_zones_cfg(&[("z.toml", zone_text)], Some(&sample_mmdb()), |cfg| {
        cfg.health.jitter = 0.0;
        cfg.health.ttl_follows_probes = true;
        tweak(cfg);
    })
}

fn ask(srv: &TestServer, name: &str, rtype: RecordType, ecs: &str) -> Message {
    srv.udp(&Q::new(name, rtype).ecs(ecs))
}

fn london(srv: &TestServer) -> Message {
    ask(srv, "www.gslb.example.", RecordType::A, LONDON)
}

fn sorted(m: &Message) -> Vec<IpAddr> {
    let mut v = addrs(m);
    v.sort();
    v
}

/// The answer's TTL; every record of the answer must have it.
fn ttl(m: &Message) -> u32 {
    let t = m.answers.first().expect("an answer").ttl;
    assert!(
        m.answers.iter().all(|r| r.ttl == t),
        "mixed TTLs: {:?}",
        rrs(&m.answers)
    );
    t
}

fn region(srv: &TestServer, name: &str) -> RegionStatus {
    srv.status()
        .region(ZONE, name)
        .unwrap_or_else(|| panic!("no status for {name}"))
        .clone()
}

fn reason(p: &Option<ProbeStatus>) -> Option<FailReason> {
    p.as_ref()?.last.as_ref()?.reason
}

/// Polls `cond` every 10 ms; `Some(elapsed)` once true, `None` after `limit`.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    loop {
        if cond() {
            return Some(t0.elapsed());
        }
        if t0.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until London's A answer is exactly `want`; returns how long that took, then lets the
/// status catch up (see [`settle`]).
fn wait_answer(srv: &TestServer, want: &[&str], what: &str) -> Duration {
    let want = ips(want);
    let mut last = Vec::new();
    let took = wait_until(PATIENCE, || {
        let m = london(srv);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{what}");
        last = sorted(&m);
        last == want
    })
    .unwrap_or_else(|| {
        panic!(
            "{what}: London never got {want:?} (last {last:?}); status: {:#?}",
            srv.status()
        )
    });
    settle();
    took
}

/// The runner stores the snapshot that queries read *before* the status (`publish` in
/// `src/health/runner.rs`), so for a moment after an answer changes the status may still show
/// the previous state (seen once in ~50,000 tries under load). Status checks that follow a
/// change seen through DNS wait this long first; nothing else changes within 20 ms.
fn settle() {
    std::thread::sleep(Duration::from_millis(20));
}

/// Waits until eu-west's region-level probe has a result and says up.
fn wait_probed_up(srv: &TestServer, name: &str) {
    wait_until(PATIENCE, || {
        region(srv, name)
            .probe
            .is_some_and(|p| p.probed && p.up && p.last.as_ref().is_some_and(|l| l.ok))
    })
    .unwrap_or_else(|| panic!("{name} never probed up: {:#?}", region(srv, name)));
}

fn assert_within(took: Duration, limit: Duration, what: &str) {
    eprintln!("{what}: {took:?} (bound {limit:?})");
    assert!(took <= limit, "{what} took {took:?}, bound {limit:?}");
}

/// How a fake goes wrong.
enum Failure {
    /// Switch it to this mode.
    Mode(Mode),
    /// Stop it: its port refuses connections.
    Stop,
}

/// The core scenario: eu-west probed on `net`'s fake (answering `ok`), London answered eu-west;
/// the fake fails as `failure` says; London moves to us-east within the fall bound and the status
/// says why; the fake recovers and London is back within the rise bound.
fn fails_then_recovers(net: u8, extra: &str, ok: Mode, failure: Failure, want: FailReason) {
    let mut fake = Some(FakeHttp::start(lo(net, 1), ok.clone()));
    let addr = fake.as_ref().unwrap().addr;
    let srv = server(
        &zone(
            &[],
            &[("eu-west", probe(&url_of(fake.as_ref().unwrap()), extra))],
            SERVICE,
        ),
        |_| {},
    );
    wait_probed_up(&srv, "eu-west");
    let m = london(&srv);
    assert_eq!(addrs(&m), ips(&[EU_WEST]));
    assert_eq!(
        ttl(&m),
        NORMAL_TTL,
        "normal answer: capped, floored at min_ttl"
    );

    let what = format!("{want:?}");
    match failure {
        Failure::Mode(mode) => fake.as_ref().unwrap().set(mode),
        Failure::Stop => drop(fake.take()),
    }
    let took = wait_answer(&srv, &[US_EAST], &format!("{what}: failover"));
    assert_within(took, bound(FALL), &format!("{what}: down"));
    let eu = region(&srv, "eu-west");
    assert!(!eu.up && !eu.eligible, "{what}: {eu:#?}");
    let p = eu.probe.clone().expect("region-level probe");
    assert!(!p.up && p.failures >= u64::from(FALL), "{what}: {p:#?}");
    assert_eq!(reason(&eu.probe), Some(want), "{what}: last reason: {p:#?}");
    let last = p.last.unwrap();
    assert!(!last.ok && !last.detail.is_empty(), "{what}: {last:?}");
    let t = srv
        .status()
        .transitions
        .iter()
        .rev()
        .find(|t| t.target == "gslb.example/eu-west")
        .cloned()
        .expect("transition recorded");
    assert_eq!((t.from, t.to), ("up", "down"), "{what}");
    assert!(
        t.reason.contains(want.as_str()),
        "{what}: transition reason {:?}",
        t.reason
    );
    // Failover is in effect: the degraded TTL, over UDP and TCP alike.
    let q = Q::new("www.gslb.example.", RecordType::A).ecs(LONDON);
    srv.both(&q, |m, via| {
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{via}");
        assert_eq!(addrs(m), ips(&[US_EAST]), "{what} via {via}");
        assert_eq!(ttl(m), DEGRADED_TTL, "{what} via {via}: degraded TTL");
    });

    match &fake {
        Some(f) => f.set(ok),
        None => fake = Some(FakeHttp::start_on(addr, ok)),
    }
    let took = wait_answer(&srv, &[EU_WEST], &format!("{what}: recovery"));
    assert_within(took, bound(RISE), &format!("{what}: up again"));
    let eu = region(&srv, "eu-west");
    assert!(eu.up && eu.eligible, "{what}: {eu:#?}");
    assert_eq!(ttl(&london(&srv)), NORMAL_TTL);
    drop(fake);
}

#[test]
fn non_2xx_status_takes_the_region_down_and_back() {
    fails_then_recovers(
        1,
        "",
        Mode::ok("OK"),
        Failure::Mode(Mode::Status(500)),
        FailReason::Status,
    );
}

#[test]
fn a_hanging_endpoint_is_a_timeout() {
    fails_then_recovers(
        2,
        "",
        Mode::ok("OK"),
        Failure::Mode(Mode::Hang),
        FailReason::Timeout,
    );
}

#[test]
fn a_slow_endpoint_beyond_the_timeout_is_a_timeout() {
    fails_then_recovers(
        3,
        "",
        Mode::ok("OK"),
        Failure::Mode(Mode::Slow(Duration::from_millis(250))),
        FailReason::Timeout,
    );
}

#[test]
fn a_stopped_endpoint_is_refused() {
    fails_then_recovers(4, "", Mode::ok("OK"), Failure::Stop, FailReason::Refused);
}

#[test]
fn a_body_without_the_required_text_is_a_body_failure() {
    fails_then_recovers(
        5,
        ", body = \"OK\"",
        Mode::ok("all OK here"),
        Failure::Mode(Mode::ok("maintenance")),
        FailReason::Body,
    );
}

#[test]
fn a_garbage_response_is_a_protocol_failure() {
    fails_then_recovers(
        6,
        "",
        Mode::ok("OK"),
        Failure::Mode(Mode::Garbage),
        FailReason::Protocol,
    );
}

#[test]
fn a_connection_closed_without_answer_is_a_protocol_failure() {
    fails_then_recovers(
        7,
        "",
        Mode::ok("OK"),
        Failure::Mode(Mode::Close),
        FailReason::Protocol,
    );
}

#[test]
fn a_self_signed_certificate_fails_verification_and_passes_without_it() {
    // One HTTPS fake with a self-signed certificate, probed by eu-west (verify_tls default true)
    // and by us-east (verify_tls = false).
    let fake = FakeHttp::https(lo(8, 1), Mode::ok("OK"));
    let url = format!("url = \"https://{}/health\"", fake.addr);
    let zone_text = zone(
        &[],
        &[
            ("eu-west", probe(&url, "")),
            ("us-east", probe(&url, ", verify_tls = false")),
        ],
        SERVICE,
    );
    let start = Instant::now();
    let srv = server(&zone_text, |_| {});
    let took = start.elapsed() + wait_answer(&srv, &[US_EAST], "TLS failure");
    // From start: the first probe runs at once, so the region is down after `fall` results.
    assert_within(took, bound(FALL), "tls: down from start");
    let eu = region(&srv, "eu-west");
    assert!(!eu.up && !eu.eligible);
    assert_eq!(reason(&eu.probe), Some(FailReason::Tls), "{eu:#?}");
    // The same endpoint without verification: up, and answering London now.
    wait_probed_up(&srv, "us-east");
    let us = region(&srv, "us-east");
    assert!(us.up && us.eligible && us.rtt_ms.is_some(), "{us:#?}");
    assert!(
        fake.requests() > 0,
        "the non-verifying probe got its answers"
    );
    let m = london(&srv);
    assert_eq!(ttl(&m), DEGRADED_TTL);
}

#[test]
fn tcp_probe_follows_the_listener() {
    let addr = SocketAddr::new(lo(9, 1), 0);
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = server(
        &zone(
            &[],
            &[("eu-west", probe(&format!("address = \"{addr}\""), ""))],
            SERVICE,
        ),
        |_| {},
    );
    wait_probed_up(&srv, "eu-west");
    assert_eq!(addrs(&london(&srv)), ips(&[EU_WEST]));
    assert!(region(&srv, "eu-west").rtt_ms.is_some());
    drop(listener);
    let took = wait_answer(&srv, &[US_EAST], "tcp: listener closed");
    assert_within(took, bound(FALL), "tcp: down");
    assert_eq!(
        reason(&region(&srv, "eu-west").probe),
        Some(FailReason::Refused)
    );
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let took = wait_answer(&srv, &[EU_WEST], "tcp: listener back");
    assert_within(took, bound(RISE), "tcp: up");
    drop(listener);
}

#[test]
fn a_failed_vip_leaves_the_answer_and_the_others_stay() {
    let (a, b) = (lo(10, 2), lo(10, 3));
    let fakes = FakeHttp::start_group(&[a, b], Mode::ok("OK"));
    let port = fakes[0].port();
    let (sa, sb) = (a.to_string(), b.to_string());
    let srv = server(
        &zone(
            &[&sa, &sb],
            &[(
                "eu-west",
                probe(&format!("url = \"http://{{vip}}:{port}/health\""), ""),
            )],
            SERVICE,
        ),
        |_| {},
    );
    wait_until(PATIENCE, || {
        region(&srv, "eu-west")
            .vips
            .iter()
            .all(|v| v.probe.as_ref().is_some_and(|p| p.probed && p.up))
    })
    .expect("both VIPs probed");
    let eu = region(&srv, "eu-west");
    assert!(eu.probe.is_none(), "per-VIP probes only: {eu:#?}");
    let m = london(&srv);
    assert_eq!(sorted(&m), ips(&[&sa, &sb]));
    assert_eq!(ttl(&m), NORMAL_TTL);

    fakes[1].set(Mode::Status(503));
    let took = wait_answer(&srv, &[&sa], "one VIP fails");
    assert_within(took, bound(FALL), "vip down");
    let eu = region(&srv, "eu-west");
    assert!(eu.up && eu.eligible, "the region stays up: {eu:#?}");
    assert!(eu.vips[0].up && !eu.vips[1].up);
    assert_eq!(reason(&eu.vips[1].probe), Some(FailReason::Status));
    assert_eq!(
        ttl(&london(&srv)),
        DEGRADED_TTL,
        "a dropped VIP is a degraded answer"
    );
    assert!(
        srv.status()
            .transitions
            .iter()
            .any(|t| t.target == format!("gslb.example/eu-west/{b}") && t.to == "down"),
        "per-VIP transition recorded"
    );

    fakes[1].set(Mode::ok("OK"));
    let took = wait_answer(&srv, &[&sa, &sb], "VIP back");
    assert_within(took, bound(RISE), "vip up");

    // A VIP override drops that VIP only, at once.
    srv.set_override(ZONE, "eu-west", Some(a), Override::ForceDown);
    assert_eq!(sorted(&london(&srv)), ips(&[&sb]));
    assert_eq!(
        region(&srv, "eu-west").vips[0].override_,
        Override::ForceDown
    );
    srv.set_override(ZONE, "eu-west", Some(a), Override::Auto);
    assert_eq!(sorted(&london(&srv)), ips(&[&sa, &sb]));
}

#[test]
fn min_vips_up_takes_the_region_down_when_one_vip_fails() {
    let (a, b) = (lo(11, 2), lo(11, 3));
    let fakes = FakeHttp::start_group(&[a, b], Mode::ok("OK"));
    let port = fakes[0].port();
    let (sa, sb) = (a.to_string(), b.to_string());
    let srv = server(
        &zone(
            &[&sa, &sb],
            &[
                (
                    "eu-west",
                    probe(&format!("url = \"http://{{vip}}:{port}/health\""), ""),
                ),
                ("eu-west", "min_vips_up = 2".into()),
            ],
            SERVICE,
        ),
        |_| {},
    );
    wait_answer(&srv, &[&sa, &sb], "both VIPs up");
    wait_until(PATIENCE, || {
        region(&srv, "eu-west")
            .vips
            .iter()
            .all(|v| v.probe.as_ref().is_some_and(|p| p.probed))
    })
    .expect("both VIPs probed");
    fakes[0].set(Mode::Hang);
    let took = wait_answer(&srv, &[US_EAST], "one of two VIPs fails, min_vips_up = 2");
    assert_within(took, bound(FALL), "region down by min_vips_up");
    let eu = region(&srv, "eu-west");
    assert!(!eu.up && !eu.eligible, "{eu:#?}");
    assert!(!eu.vips[0].up && eu.vips[1].up);
    assert_eq!(reason(&eu.vips[0].probe), Some(FailReason::Timeout));
    fakes[0].set(Mode::ok("OK"));
    let took = wait_answer(&srv, &[&sa, &sb], "VIP back");
    assert_within(took, bound(RISE), "region up");
}

#[test]
fn vip_probes_lay_settings_over_the_region_probe() {
    // Both VIPs answer "ready"; only the second one's probe wants "OK" in the body.
    let (a, b) = (lo(12, 2), lo(12, 3));
    let fakes = FakeHttp::start_group(&[a, b], Mode::ok("ready"));
    let port = fakes[0].port();
    let (sa, sb) = (a.to_string(), b.to_string());
    let srv = server(
        &zone(
            &[&sa, &sb],
            &[
                (
                    "eu-west",
                    probe(&format!("url = \"http://{{vip}}:{port}/health\""), ""),
                ),
                (
                    "eu-west",
                    format!("vip_probes = {{ \"{sb}\" = {{ body = \"OK\" }} }}"),
                ),
            ],
            SERVICE,
        ),
        |_| {},
    );
    let took = wait_answer(&srv, &[&sa], "second VIP fails its own body check");
    assert_within(took, bound(FALL), "vip_probes: down from start");
    let eu = region(&srv, "eu-west");
    assert!(eu.vips[0].up && !eu.vips[1].up, "{eu:#?}");
    assert_eq!(reason(&eu.vips[1].probe), Some(FailReason::Body));
    fakes[1].set(Mode::ok("OK"));
    wait_answer(&srv, &[&sa, &sb], "second VIP passes");
}

#[test]
fn probe_keys_host_headers_expect_status_and_body_regex() {
    let fake = FakeHttp::start(
        lo(13, 1),
        Mode::Ok {
            status: 418,
            body: "state=warm".into(),
            headers: Vec::new(),
        },
    );
    let target = format!("url = \"http://{}/healthz\"", fake.addr);
    let extra = ", host = \"health.gslb.example\", headers = { \"X-Probe\" = \"gslbd-test\" }, \
                 expect_status = [\"200-204\", 418], body_regex = \"^state=(ready|warm)$\"";
    let srv = server(
        &zone(&[], &[("eu-west", probe(&target, extra))], SERVICE),
        |_| {},
    );
    wait_probed_up(&srv, "eu-west");
    let head = fake.last_request().expect("a request").to_ascii_lowercase();
    assert!(head.starts_with("get /healthz http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nx-probe: gslbd-test\r\n"), "{head}");
    assert!(
        head.contains("\r\nhost: health.gslb.example"),
        "Host header from `host`: {head}"
    );
    assert_eq!(addrs(&london(&srv)), ips(&[EU_WEST]));
    // 418 was accepted; a body the regex rejects is not.
    fake.set(Mode::Ok {
        status: 204,
        body: "state=cold".into(),
        headers: Vec::new(),
    });
    wait_answer(&srv, &[US_EAST], "body_regex mismatch");
    assert_eq!(
        reason(&region(&srv, "eu-west").probe),
        Some(FailReason::Body)
    );
    // A status outside the list.
    fake.set(Mode::Status(205));
    wait_until(PATIENCE, || {
        reason(&region(&srv, "eu-west").probe) == Some(FailReason::Status)
    })
    .expect("205 is not in [200-204, 418]");
    fake.set(Mode::Ok {
        status: 200,
        body: "state=ready".into(),
        headers: Vec::new(),
    });
    wait_answer(&srv, &[EU_WEST], "200 and a matching body");
}

#[test]
fn load_and_rtt_reach_the_status_and_stale_load_disappears() {
    let json = FakeHttp::start(lo(14, 1), Mode::ok(r#"{"load": 0.42}"#));
    let header = FakeHttp::start(lo(14, 2), Mode::ok_with("fine", &[("X-Load", "0.7")]));
    let max_age = 1.0;
    let srv = server(
        &zone(
            &[],
            &[
                (
                    "eu-west",
                    probe(
                        &url_of(&json),
                        &format!(", load_json = \"load\", load_max_age = {max_age}"),
                    ),
                ),
                (
                    "us-east",
                    format!(
                        "probe = {{ {}, interval = {INTERVAL}, timeout = 0.25, \
                         load_header = \"X-Load\" }}",
                        url_of(&header)
                    ),
                ),
            ],
            SERVICE,
        ),
        |cfg| cfg.health.rtt_half_life = Duration::from_millis(300),
    );
    wait_until(PATIENCE, || {
        region(&srv, "eu-west").load == Some(0.42) && region(&srv, "us-east").load == Some(0.7)
    })
    .unwrap_or_else(|| panic!("loads never appeared: {:#?}", srv.status()));
    for name in ["eu-west", "us-east"] {
        let r = region(&srv, name);
        let rtt = r.rtt_ms.expect("RTT");
        assert!(rtt > 0.0 && rtt < 250.0, "{name} rtt {rtt} ms");
        assert!(r.probe.as_ref().unwrap().rtt_ms.is_some());
        let age = r.load_age_s.expect("load age");
        assert!((0.0..=max_age).contains(&age), "{name} load age {age}");
    }
    // Load informs, it does not steer London away from its nearest region.
    assert_eq!(addrs(&london(&srv)), ips(&[EU_WEST]));

    // RTT follows a slower endpoint (moving average with a 0.3 s half-life).
    let fast = region(&srv, "us-east").rtt_ms.unwrap();
    header.set(Mode::Slow(Duration::from_millis(120)));
    wait_until(PATIENCE, || {
        region(&srv, "us-east").rtt_ms.is_some_and(|r| r >= 80.0)
    })
    .unwrap_or_else(|| {
        panic!(
            "RTT never rose from {fast} ms: {:#?}",
            region(&srv, "us-east")
        )
    });
    assert!(region(&srv, "us-east").up, "slow but within the timeout");

    // No more load readings: the last one is ignored once older than load_max_age.
    json.set(Mode::ok(r#"{"status": "ok"}"#));
    let took = wait_until(PATIENCE, || region(&srv, "eu-west").load.is_none())
        .expect("stale load never disappeared");
    eprintln!("stale load gone after {took:?} (load_max_age {max_age} s)");
    let earliest = Duration::from_secs_f64(max_age - INTERVAL - 0.1);
    let latest = Duration::from_secs_f64(max_age + INTERVAL) + SLACK;
    assert!(
        took >= earliest && took <= latest,
        "load gone after {took:?}, expected {earliest:?}..{latest:?}"
    );
    let eu = region(&srv, "eu-west");
    assert!(eu.load_age_s.is_none() && eu.up, "{eu:#?}");
    assert_eq!(addrs(&london(&srv)), ips(&[EU_WEST]));
}

#[test]
fn a_huge_body_is_cut_at_max_body_and_dns_keeps_answering() {
    // eu-west wants "OK" in the first 64 KiB (the default max_body); us-east reads 1 byte only.
    let fake = FakeHttp::start(lo(15, 1), Mode::huge("OK"));
    let srv = server(
        &zone(
            &[],
            &[
                (
                    "eu-west",
                    format!(
                        "probe = {{ {}, interval = {INTERVAL}, timeout = 0.25, \
                         rise = {RISE}, fall = {FALL}, body = \"OK\" }}",
                        url_of(&fake)
                    ),
                ),
                (
                    "us-east",
                    format!(
                        "probe = {{ {}, interval = {INTERVAL}, timeout = 0.25, \
                         rise = 1, fall = 1, body = \"OK\", max_body = 1 }}",
                        url_of(&fake)
                    ),
                ),
            ],
            SERVICE,
        ),
        |_| {},
    );
    wait_probed_up(&srv, "eu-west");
    assert_eq!(addrs(&london(&srv)), ips(&[EU_WEST]));
    wait_until(PATIENCE, || {
        reason(&region(&srv, "us-east").probe) == Some(FailReason::Body)
    })
    .expect("max_body = 1 sees \"O\" only");
    assert!(!region(&srv, "us-east").up);

    // A 50 MB body without the text: down for the body, not a timeout; DNS answers throughout.
    fake.set(Mode::huge(""));
    let mut slowest = Duration::ZERO;
    let took = wait_until(PATIENCE, || {
        let t = Instant::now();
        let m = london(&srv);
        slowest = slowest.max(t.elapsed());
        addrs(&m) == ips(&[SA_EAST])
    })
    .unwrap_or_else(|| panic!("never failed over: {:#?}", srv.status()));
    settle();
    assert_within(took, bound(FALL), "huge body without OK: down");
    eprintln!("slowest DNS answer while probing 50 MB bodies: {slowest:?}");
    assert!(slowest < Duration::from_millis(200), "{slowest:?}");
    let eu = region(&srv, "eu-west");
    assert_eq!(reason(&eu.probe), Some(FailReason::Body), "{eu:#?}");
    // The prober is not stuck on a body: probes go on.
    let hits = fake.hits();
    wait_until(PATIENCE, || fake.hits() >= hits + 4).expect("probes go on");
    fake.set(Mode::huge("OK"));
    wait_answer(&srv, &[EU_WEST], "huge body with OK");
}

/// Every all-down mode as declared, A and AAAA, UDP and TCP, with `degraded_ttl`.
#[test]
fn every_all_down_mode_answers_as_declared_never_servfail() {
    let fake = FakeHttp::start(lo(16, 1), Mode::ok("OK"));
    let p = probe(&url_of(&fake), "");
    let keys: Vec<(&str, String)> = ["us-east", "eu-west", "ap-southeast", "sa-east"]
        .into_iter()
        .map(|r| (r, p.clone()))
        .collect();
    let services = r#"
[services.www]
[services.first]
all_down = "first"
degraded_ttl = 9
[services.sorry]
all_down = "fallback"
fallback_region = "ap-southeast"
degraded_ttl = 9
[services.away]
all_down = "fallback"
fallback_cname = "sorry.example.net."
degraded_ttl = 9
[services.none]
all_down = "nodata"
degraded_ttl = 9
"#;
    // min_ttl 20 lifts the health cap above degraded_ttl, so that the latter shows.
    let srv = server(&zone(&[], &keys, services), |cfg| cfg.health.min_ttl = 20);
    let names = ["www", "first", "sorry", "away", "none"];
    let q =
        |svc: &str, t: RecordType, ecs: &str| Q::new(&format!("{svc}.gslb.example."), t).ecs(ecs);
    for r in ["us-east", "eu-west", "ap-southeast", "sa-east"] {
        wait_probed_up(&srv, r);
    }
    for svc in names {
        let m = srv.udp(&q(svc, RecordType::A, LONDON));
        assert_eq!(addrs(&m), ips(&[EU_WEST]), "{svc} normally");
        assert_eq!(ttl(&m), 20, "{svc}: ttl 30 capped, floored at min_ttl 20");
    }

    fake.set(Mode::Status(503));
    // While regions fall one after the other: NOERROR and a non-empty answer, except nodata's
    // once everything is down.
    let took = wait_until(PATIENCE, || {
        for svc in names {
            let m = srv.udp(&q(svc, RecordType::A, LONDON));
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{svc}");
            if m.answers.is_empty() {
                assert_eq!(svc, "none", "accidental empty answer for {svc}");
                assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
            }
        }
        srv.status().regions.iter().all(|r| !r.up)
    })
    .unwrap_or_else(|| panic!("not all down: {:#?}", srv.status()));
    assert_within(took, bound(FALL), "all four regions down");

    let all_v4 = ips(&[US_EAST, EU_WEST, AP_SOUTHEAST, SA_EAST]);
    let all_v6 = ips(&[
        "2001:db8::10",
        "2001:db8::20",
        "2001:db8::30",
        "2001:db8::40",
    ]);
    let tokyo = "110.32.1.0/24";
    for (via, send) in [
        ("udp", TestServer::udp as fn(&TestServer, &Q) -> Message),
        ("tcp", TestServer::tcp),
    ] {
        let get = |svc: &str, t: RecordType, ecs: &str| {
            let m = send(&srv, &q(svc, t, ecs));
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NoError,
                "{svc} {t} via {via}"
            );
            assert!(m.metadata.authoritative);
            m
        };
        // all: every region's VIP of the family, with the default degraded TTL (ttl / 2).
        let m = get("www", RecordType::A, LONDON);
        assert_eq!(sorted(&m), all_v4, "all via {via}");
        assert_eq!(ttl(&m), 15, "all: default degraded_ttl = ttl / 2");
        assert_eq!(sorted(&get("www", RecordType::AAAA, LONDON)), all_v6);
        // first: the first region of the client's order.
        let m = get("first", RecordType::A, LONDON);
        assert_eq!(addrs(&m), ips(&[EU_WEST]), "first via {via}");
        assert_eq!(ttl(&m), 9);
        assert_eq!(
            addrs(&get("first", RecordType::AAAA, LONDON)),
            ips(&["2001:db8::20"])
        );
        assert_eq!(
            addrs(&get("first", RecordType::A, tokyo)),
            ips(&[AP_SOUTHEAST]),
            "first for Tokyo"
        );
        // fallback_region: that region's VIPs, wherever the client is.
        for ecs in [LONDON, tokyo] {
            let m = get("sorry", RecordType::A, ecs);
            assert_eq!(addrs(&m), ips(&[AP_SOUTHEAST]), "fallback_region via {via}");
            assert_eq!(ttl(&m), 9);
        }
        assert_eq!(
            addrs(&get("sorry", RecordType::AAAA, LONDON)),
            ips(&["2001:db8::30"])
        );
        // fallback_cname: one CNAME to the target.
        for t in [RecordType::A, RecordType::AAAA] {
            let m = get("away", t, LONDON);
            assert_eq!(m.answers.len(), 1, "{:?}", rrs(&m.answers));
            let r = &m.answers[0];
            assert_eq!(r.name.to_ascii(), "away.gslb.example.");
            match &r.data {
                RData::CNAME(c) => assert_eq!(c.0.to_ascii(), "sorry.example.net."),
                other => panic!("fallback_cname {t} via {via}: {other:?}"),
            }
            assert_eq!(r.ttl, 9);
        }
        // nodata: NOERROR, no answer, the SOA.
        for t in [RecordType::A, RecordType::AAAA] {
            let m = get("none", t, LONDON);
            assert!(m.answers.is_empty(), "nodata {t} via {via}");
            assert_eq!(m.authorities.len(), 1);
            assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
        }
    }
}

#[test]
fn the_first_round_of_probes_decides_before_the_first_answer() {
    // Both endpoints never answer. eu-west starts down, us-east up (the default): gslbd answers
    // nothing steered before the first round of probes is over (bounded by the timeout), and
    // each first result decides at once, so the very first answer already leaves both out.
    let fake = FakeHttp::start(lo(17, 1), Mode::Hang);
    let srv = server(
        &zone(
            &[],
            &[
                ("eu-west", probe(&url_of(&fake), ", initial = \"down\"")),
                ("us-east", probe(&url_of(&fake), "")),
            ],
            SERVICE,
        ),
        |_| {},
    );
    let first = london(&srv);
    assert_eq!(
        addrs(&first),
        ips(&[SA_EAST]),
        "first query: both timed out in the first round"
    );
    for r in ["eu-west", "us-east"] {
        let st = region(&srv, r);
        assert!(!st.up && !st.eligible, "{st:#?}");
        assert_eq!(reason(&st.probe), Some(FailReason::Timeout));
    }
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(addrs(&london(&srv)), ips(&[SA_EAST]));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Once ready, `rise` successes bring it in.
    fake.set(Mode::ok("OK"));
    let took = wait_answer(&srv, &[EU_WEST], "eu-west ready");
    assert_within(took, bound(RISE), "initially down region up");
}

#[test]
fn a_dead_region_is_not_answered_after_a_restart() {
    // initial = "up" (the default) on a refused endpoint: before, gslbd answered it after
    // every restart until `fall` probes had failed; now the first round says down, over UDP
    // and TCP, from the first query on.
    let fake = FakeHttp::start(lo(17, 3), Mode::ok("OK"));
    let url = url_of(&fake);
    drop(fake);
    let srv = server(&zone(&[], &[("eu-west", probe(&url, ""))], SERVICE), |_| {});
    srv.both(
        &Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24"),
        |m, via| assert_eq!(addrs(m), ips(&[US_EAST]), "{via}"),
    );
}

#[test]
fn overrides_win_over_probes() {
    let fake = FakeHttp::start(lo(18, 1), Mode::ok("OK"));
    let services = "[services.www]\nttl = 30\ndegraded_ttl = 7\n";
    let srv = server(
        &zone(&[], &[("eu-west", probe(&url_of(&fake), ""))], services),
        |_| {},
    );
    wait_probed_up(&srv, "eu-west");
    assert_eq!(ttl(&london(&srv)), NORMAL_TTL);

    // force-down on a healthy region: at once, with the full degraded TTL (nothing a probe
    // could change: eu-west is pinned, us-east is not probed).
    srv.set_override(ZONE, "eu-west", None, Override::ForceDown);
    let m = london(&srv);
    assert_eq!(addrs(&m), ips(&[US_EAST]));
    assert_eq!(ttl(&m), 7);
    let eu = region(&srv, "eu-west");
    assert_eq!(eu.override_, Override::ForceDown);
    assert!(
        !eu.up && !eu.eligible && eu.probe.as_ref().unwrap().up,
        "{eu:#?}"
    );
    srv.set_override(ZONE, "eu-west", None, Override::Auto);
    assert_eq!(addrs(&london(&srv)), ips(&[EU_WEST]));

    // force-up on a failing region.
    fake.set(Mode::Status(500));
    wait_answer(&srv, &[US_EAST], "probes fail");
    srv.set_override(ZONE, "eu-west", None, Override::ForceUp);
    let m = london(&srv);
    assert_eq!(addrs(&m), ips(&[EU_WEST]));
    assert_eq!(ttl(&m), 30, "pinned by the operator: no health cap");
    let eu = region(&srv, "eu-west");
    assert!(
        eu.up && eu.eligible && !eu.probe.as_ref().unwrap().up,
        "{eu:#?}"
    );
    // It stays up while probes keep failing.
    let failures = eu.probe.unwrap().failures;
    wait_until(PATIENCE, || {
        region(&srv, "eu-west").probe.unwrap().failures >= failures + 3
    })
    .expect("probes go on");
    assert_eq!(addrs(&london(&srv)), ips(&[EU_WEST]));
    srv.set_override(ZONE, "eu-west", None, Override::Auto);
    assert_eq!(addrs(&london(&srv)), ips(&[US_EAST]));

    // drain on a healthy region: no new answers, probed state up, probes go on.
    fake.set(Mode::ok("OK"));
    wait_answer(&srv, &[EU_WEST], "healthy again");
    srv.set_override(ZONE, "eu-west", None, Override::Drain);
    assert_eq!(addrs(&london(&srv)), ips(&[US_EAST]));
    let eu = region(&srv, "eu-west");
    assert_eq!(eu.override_, Override::Drain);
    assert!(eu.up && !eu.eligible, "{eu:#?}");
    let ok = eu.probe.unwrap().successes;
    wait_until(PATIENCE, || {
        region(&srv, "eu-west").probe.unwrap().successes >= ok + 2
    })
    .expect("probes go on while draining");
    assert_eq!(addrs(&london(&srv)), ips(&[US_EAST]));
    srv.set_override(ZONE, "eu-west", None, Override::Auto);
    assert_eq!(addrs(&london(&srv)), ips(&[EU_WEST]));
    assert!(
        srv.status()
            .transitions
            .iter()
            .any(|t| t.reason == "operator override" && t.to == "drain")
    );
}

fn write_state(path: &Path, body: &str) {
    // Write beside, then rename: the runner never reads half a file.
    let tmp = path.with_extension("edit");
    std::fs::write(&tmp, format!("[overrides]\n{body}")).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn state_file_edits_apply_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.toml");
    let fake = FakeHttp::start(lo(19, 1), Mode::ok("OK"));
    let st = state.clone();
    let srv = server(
        &zone(&[], &[("eu-west", probe(&url_of(&fake), ""))], SERVICE),
        move |cfg| cfg.health.state_file = Some(st),
    );
    wait_probed_up(&srv, "eu-west");
    // The API writes the file.
    srv.set_override(ZONE, "sa-east", None, Override::Drain);
    let text = std::fs::read_to_string(&state).unwrap();
    let v: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(
        v["overrides"]["gslb.example/sa-east"].as_str(),
        Some("drain"),
        "{text}"
    );
    // An edit: eu-west forced down (over healthy probes), us-east and sa-east drained: London
    // goes to its last region, ap-southeast.
    write_state(
        &state,
        "\"gslb.example/eu-west\" = \"force-down\"\n\
         \"gslb.example/us-east\" = \"drain\"\n\
         \"gslb.example/sa-east\" = \"drain\"\n",
    );
    let took = wait_answer(&srv, &[AP_SOUTHEAST], "state file edit");
    assert_within(
        took,
        Duration::from_secs(1) + SLACK,
        "state file edit applied",
    );
    assert_eq!(region(&srv, "eu-west").override_, Override::ForceDown);
    assert_eq!(region(&srv, "us-east").override_, Override::Drain);

    // A VIP key: eu-west's only IPv4 VIP forced down; AAAA still goes to eu-west.
    write_state(
        &state,
        "\"gslb.example/eu-west/192.0.2.20\" = \"force-down\"\n",
    );
    wait_answer(&srv, &[US_EAST], "VIP override from the state file");
    let m = ask(&srv, "www.gslb.example.", RecordType::AAAA, LONDON);
    assert_eq!(addrs(&m), ips(&["2001:db8::20"]));
    let eu = region(&srv, "eu-west");
    assert_eq!(eu.override_, Override::Auto);
    assert_eq!(eu.vips[0].override_, Override::ForceDown);
    assert!(!eu.vips[0].up && eu.vips[1].up);

    // A broken file changes nothing.
    std::fs::write(&state, "this is [ not toml").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(addrs(&london(&srv)), ips(&[US_EAST]));
    assert_eq!(
        region(&srv, "eu-west").vips[0].override_,
        Override::ForceDown
    );

    // Emptied: probes decide again.
    write_state(&state, "");
    wait_answer(&srv, &[EU_WEST], "overrides removed");
    assert!(
        srv.status()
            .regions
            .iter()
            .all(|r| r.override_ == Override::Auto)
    );
}

#[test]
fn overrides_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.toml");
    let fake = FakeHttp::start(lo(20, 1), Mode::ok("OK"));
    let zone_text = zone(&[], &[("eu-west", probe(&url_of(&fake), ""))], SERVICE);
    let st = state.clone();
    let first = server(&zone_text, move |cfg| cfg.health.state_file = Some(st));
    first.set_override(ZONE, "eu-west", None, Override::ForceDown);
    first.set_override(ZONE, "us-east", None, Override::Drain);
    first.set_override(ZONE, "sa-east", Some(ip(SA_EAST)), Override::ForceDown);
    assert_eq!(addrs(&london(&first)), ips(&[AP_SOUTHEAST]));
    drop(first);

    let st = state.clone();
    let second = server(&zone_text, move |cfg| cfg.health.state_file = Some(st));
    // The very first query, while eu-west's probe is healthy.
    assert_eq!(addrs(&london(&second)), ips(&[AP_SOUTHEAST]));
    assert_eq!(
        addrs(&ask(&second, "www.gslb.example.", RecordType::AAAA, LONDON)),
        ips(&["2001:db8::40"]),
        "sa-east's IPv4 VIP only was forced down"
    );
    assert_eq!(region(&second, "eu-west").override_, Override::ForceDown);
    assert_eq!(region(&second, "us-east").override_, Override::Drain);
    assert_eq!(
        region(&second, "sa-east").vips[0].override_,
        Override::ForceDown
    );
    wait_probed_up(&second, "eu-west");
    assert_eq!(addrs(&london(&second)), ips(&[AP_SOUTHEAST]));
}

#[test]
fn ttl_is_capped_by_the_next_possible_change_and_floored_at_min_ttl() {
    // eu-west: probed every 4 s with fall 3, so an up region cannot change for its next probe
    // plus two intervals (≤ 12 s). us-east: probed every 0.3 s, so the cap is below a second and
    // the floor (min_ttl 2) applies. ap-southeast: not probed, no cap.
    let fake = FakeHttp::start(lo(21, 1), Mode::ok("OK"));
    let srv = server(
        &zone(
            &[],
            &[
                (
                    "eu-west",
                    format!(
                        "probe = {{ {}, interval = 4, timeout = 0.2, fall = 3 }}",
                        url_of(&fake)
                    ),
                ),
                ("us-east", probe(&url_of(&fake), "")),
            ],
            "[services.www]\nttl = 30\n",
        ),
        |cfg| cfg.health.min_ttl = 2,
    );
    // Probed at once, not after an interval.
    let took = wait_until(PATIENCE, || {
        region(&srv, "eu-west").probe.is_some_and(|p| p.probed)
    })
    .unwrap();
    assert_within(
        took,
        Duration::from_secs(1),
        "first probe of a 4 s interval",
    );
    wait_probed_up(&srv, "us-east");
    let t = ttl(&london(&srv));
    assert!(
        (9..=12).contains(&t),
        "eu-west TTL {t}, expected ≤ 4 + 2 × 4"
    );
    let toronto = "24.100.1.0/24";
    let m = ask(&srv, "www.gslb.example.", RecordType::A, toronto);
    assert_eq!(addrs(&m), ips(&[US_EAST]));
    assert_eq!(ttl(&m), 2, "floored at min_ttl");
    let m = ask(&srv, "www.gslb.example.", RecordType::A, "110.32.1.0/24");
    assert_eq!(addrs(&m), ips(&[AP_SOUTHEAST]));
    assert_eq!(ttl(&m), 30, "not probed: the service TTL");
}

/// Times one UDP query on `sock` and records it in `out`.
fn timed_query(sock: &UdpSocket, to: SocketAddr, q: &[u8], out: &mut Vec<Duration>) {
    let mut buf = [0u8; 4096];
    let t = Instant::now();
    sock.send_to(q, to).unwrap();
    let (n, _) = sock.recv_from(&mut buf).expect("DNS answer within 1 s");
    out.push(t.elapsed());
    assert!(n > 12 && buf[3] & 0x0f == 0, "NOERROR");
}

/// The `pct` percentile (nearest rank) of `v`.
fn percentile(v: &mut [Duration], pct: usize) -> Duration {
    v.sort();
    v[(v.len() * pct).div_ceil(100) - 1]
}

#[test]
fn a_hanging_probe_target_never_slows_dns() {
    // Two servers side by side, queried alternately so both see the same background load, and
    // answering London the same (eu-west, probed on a healthy endpoint by both). In one the three
    // other regions probe a healthy endpoint too; in the other they probe, every 0.1 s, one that
    // hangs.
    let good = FakeHttp::start(lo(22, 1), Mode::ok("OK"));
    let hang = FakeHttp::start(lo(22, 2), Mode::Hang);
    let keys = |others: &FakeHttp| -> Vec<(&'static str, String)> {
        ["us-east", "eu-west", "ap-southeast", "sa-east"]
            .into_iter()
            .map(|r| {
                let fake = if r == "eu-west" { &good } else { others };
                let p = format!(
                    "probe = {{ {}, interval = 0.1, timeout = 0.1, fall = 2 }}",
                    url_of(fake)
                );
                (r, p)
            })
            .collect()
    };
    let base = server(&zone(&[], &keys(&good), SERVICE), |_| {});
    let hung = server(&zone(&[], &keys(&hang), SERVICE), |_| {});
    wait_until(PATIENCE, || {
        ["us-east", "ap-southeast", "sa-east"]
            .iter()
            .all(|r| region(&hung, r).probe.is_some_and(|p| !p.up))
    })
    .expect("hanging probes under way");
    let (ma, mb) = (london(&base), london(&hung));
    assert_eq!(addrs(&ma), ips(&[EU_WEST]));
    assert_eq!(
        (addrs(&mb), ttl(&mb)),
        (addrs(&ma), ttl(&ma)),
        "the same answer"
    );
    let q = Q::new("www.gslb.example.", RecordType::A)
        .ecs(LONDON)
        .to_bytes();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        timed_query(&sock, base.addr, &q, &mut Vec::new());
        timed_query(&sock, hung.addr, &q, &mut Vec::new());
    }
    // Paced over several seconds, so that many hanging probes start and time out meanwhile.
    let hits = hang.hits();
    const N: usize = 500;
    for i in 0..N {
        // The second query of a pair is measurably slower (the first server's worker is still
        // going back to sleep on a 2-CPU box): alternate which goes first.
        if i % 2 == 0 {
            timed_query(&sock, base.addr, &q, &mut a);
            timed_query(&sock, hung.addr, &q, &mut b);
        } else {
            timed_query(&sock, hung.addr, &q, &mut b);
            timed_query(&sock, base.addr, &q, &mut a);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let probed = hang.hits() - hits;
    let (pa, pb) = (percentile(&mut a, 99), percentile(&mut b, 99));
    println!(
        "DNS latency over {} UDP queries each: p50 {:?} / p99 {pa:?} with healthy targets, \
         p50 {:?} / p99 {pb:?} with hanging targets",
        a.len(),
        percentile(&mut a, 50),
        percentile(&mut b, 50)
    );
    assert!(
        probed >= 8,
        "the hanging target was being probed meanwhile: {probed} connections"
    );
    assert!(
        pb < pa * 2 + Duration::from_millis(2),
        "p99 with a hanging target {pb:?} vs {pa:?}"
    );
    drop(good);
}

#[test]
fn the_failure_reason_does_not_depend_on_the_words_in_the_url() {
    // A plain-HTTP health path that happens to mention TLS (a TLS terminator's own health page):
    // a refused connection is `refused`, a garbage answer `protocol`, never `tls`.
    let refused = FakeHttp::start(lo(23, 1), Mode::ok("OK"));
    let garbage = FakeHttp::start(lo(23, 2), Mode::Garbage);
    let path = "/tls-terminator/certificate-check/health";
    let url = |f: &FakeHttp| format!("url = \"http://{}{path}\"", f.addr);
    let srv = server(
        &zone(
            &[],
            &[
                ("eu-west", probe(&url(&refused), "")),
                ("us-east", probe(&url(&garbage), "")),
            ],
            SERVICE,
        ),
        |_| {},
    );
    wait_probed_up(&srv, "eu-west");
    drop(refused);
    wait_until(PATIENCE, || {
        !region(&srv, "eu-west").up && !region(&srv, "us-east").up
    })
    .unwrap_or_else(|| panic!("not down: {:#?}", srv.status()));
    let eu = region(&srv, "eu-west");
    let us = region(&srv, "us-east");
    assert_eq!(
        (reason(&eu.probe), reason(&us.probe)),
        (Some(FailReason::Refused), Some(FailReason::Protocol)),
        "eu-west: {:?}\nus-east: {:?}",
        eu.probe.as_ref().unwrap().last,
        us.probe.as_ref().unwrap().last
    );
    assert_eq!(addrs(&london(&srv)), ips(&[SA_EAST]));
}

#[test]
fn a_load_reading_older_than_load_max_age_is_ignored_between_probes() {
    // One probed region, probed every 2 s, whose load readings count for 0.5 s: between two
    // probes the reading grows older than load_max_age and must then be ignored, in the status
    // and by load shedding (eu-west at 0.95, above the high watermark, sheds London to a
    // neighbour while the reading is fresh; once it is stale nothing is known and London is
    // back). Nothing but the runner's once-a-second tick republishes between probes, so the
    // reading may outlive load_max_age by up to a second, never until the next probe.
    let fake = FakeHttp::start(lo(24, 1), Mode::ok(r#"{"load": 0.95}"#));
    let max_age = 0.5;
    let srv = server(
        &zone(
            &[],
            &[(
                "eu-west",
                format!(
                    "probe = {{ {}, interval = 2, timeout = 0.2, \
                     load_json = \"load\", load_max_age = {max_age} }}",
                    url_of(&fake)
                ),
            )],
            "[services.www]\nshed_load = { low = 0.5, high = 0.9 }\n",
        ),
        |_| {},
    );
    wait_until(PATIENCE, || region(&srv, "eu-west").load == Some(0.95)).expect("a load reading");
    let shed = addrs(&london(&srv));
    assert!(
        !shed.is_empty() && shed != ips(&[EU_WEST]),
        "a fresh load above the high watermark sheds London to a neighbour: {shed:?}"
    );
    // Before the next probe (2 s after the reading) the reading must be gone.
    let limit = Duration::from_secs_f64(max_age + 1.0) + SLACK;
    let mut last = (None, None, Vec::new());
    let took = wait_until(limit, || {
        let eu = region(&srv, "eu-west");
        let answer = addrs(&london(&srv));
        let gone = eu.load.is_none() && answer == ips(&[EU_WEST]);
        last = (eu.load, eu.load_age_s, answer);
        gone
    })
    .unwrap_or_else(|| {
        panic!(
            "{limit:?} after the reading (load_max_age {max_age} s, next probe after 2 s): \
             status load {:?} with load_age_s {:?}; London answered {:?}, want [{EU_WEST}]",
            last.0, last.1, last.2
        )
    });
    eprintln!("stale load left the snapshot {took:?} after the reading");
    assert!(
        took >= Duration::from_secs_f64(max_age - 0.05),
        "the reading was dropped before load_max_age: {took:?}"
    );
}

#[test]
fn per_vip_probes_reach_ipv6_vips_and_each_family_fails_over_alone() {
    // eu-west answers 127.20.25.2 for A and ::1 for AAAA, each probed on its own address
    // (`{vip}` puts the IPv6 one in brackets). ::1 failing moves AAAA to us-east; A stays.
    let (v4, v6) = (lo(25, 2), ip("::1"));
    let fakes = FakeHttp::start_group(&[v4, v6], Mode::ok("OK"));
    let port = fakes[0].port();
    let srv = server(
        &zone(
            &[&v4.to_string(), "::1"],
            &[(
                "eu-west",
                probe(&format!("url = \"http://{{vip}}:{port}/health\""), ""),
            )],
            SERVICE,
        ),
        |_| {},
    );
    let aaaa = || addrs(&ask(&srv, "www.gslb.example.", RecordType::AAAA, LONDON));
    wait_until(PATIENCE, || {
        region(&srv, "eu-west")
            .vips
            .iter()
            .all(|v| v.probe.as_ref().is_some_and(|p| p.probed && p.up))
    })
    .unwrap_or_else(|| panic!("both VIPs probed up: {:#?}", region(&srv, "eu-west")));
    assert!(fakes[1].requests() > 0, "the IPv6 fake was probed");
    assert_eq!(aaaa(), vec![v6]);
    assert_eq!(addrs(&london(&srv)), vec![v4]);
    fakes[1].set(Mode::Status(500));
    let took = wait_until(PATIENCE, || aaaa() == ips(&["2001:db8::10"]))
        .expect("AAAA fails over to us-east");
    settle();
    assert_within(took, bound(FALL), "IPv6 VIP down");
    let m = london(&srv);
    assert_eq!(addrs(&m), vec![v4], "A keeps eu-west");
    assert_eq!(ttl(&m), NORMAL_TTL, "A lost nothing: not degraded");
    let eu = region(&srv, "eu-west");
    assert!(eu.up && eu.vips[0].up && !eu.vips[1].up, "{eu:#?}");
}

#[test]
fn the_ttl_written_is_answered_unless_a_service_opts_in_to_the_probe_cap() {
    // eu-west probed every 4 s with fall 3: with the cap a London answer's TTL would be ≤ 12.
    let fake = FakeHttp::start(lo(30, 1), Mode::ok("OK"));
    let slow = format!(
        "probe = {{ {}, interval = 4, timeout = 0.2, fall = 3 }}",
        url_of(&fake)
    );
    let services =
        "[services.www]\nttl = 30\n[services.api]\nttl = 30\nttl_follows_probes = true\n";
    let srv = server(&zone(&[], &[("eu-west", slow)], services), |cfg| {
        cfg.health.ttl_follows_probes = false;
    });
    wait_probed_up(&srv, "eu-west");
    assert_eq!(ttl(&london(&srv)), 30, "the default: the TTL as written");
    let api = ask(&srv, "api.gslb.example.", RecordType::A, LONDON);
    assert_eq!(addrs(&api), ips(&[EU_WEST]));
    let t = ttl(&api);
    assert!((9..=12).contains(&t), "api opted in: TTL {t}, want ≤ 12");
}

#[test]
fn a_timed_override_ends_by_itself_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.toml");
    let fake = FakeHttp::start(lo(31, 1), Mode::ok("OK"));
    let zone_text = zone(&[], &[("eu-west", probe(&url_of(&fake), ""))], SERVICE);
    let st = state.clone();
    let first = server(&zone_text, move |cfg| cfg.health.state_file = Some(st));
    wait_probed_up(&first, "eu-west");
    let until = gslbd::rt::unix_seconds() + 4;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(first.health().set_override_until(
        ZONE,
        "eu-west",
        None,
        Override::Drain,
        Some(until),
    ))
    .unwrap();
    assert_eq!(addrs(&london(&first)), ips(&[US_EAST]));
    let eu = region(&first, "eu-west");
    assert_eq!(eu.override_, Override::Drain);
    assert_eq!(eu.override_until, Some(until));
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(saved.contains("drain until "), "state file: {saved}");
    drop(first);

    // A restart before the end keeps the drain and its end.
    let st = state.clone();
    let second = server(&zone_text, move |cfg| cfg.health.state_file = Some(st));
    assert_eq!(addrs(&london(&second)), ips(&[US_EAST]));
    assert_eq!(region(&second, "eu-west").override_until, Some(until));

    // At its end the override goes by itself: probes decide again and the state file forgets it.
    let left = Duration::from_secs(until.saturating_sub(gslbd::rt::unix_seconds()) + 3);
    wait_until(left, || {
        region(&second, "eu-west").override_ == Override::Auto
    })
    .expect("the timed override ends");
    assert_eq!(addrs(&london(&second)), ips(&[EU_WEST]));
    assert_eq!(region(&second, "eu-west").override_until, None);
    wait_until(PATIENCE, || {
        !std::fs::read_to_string(&state)
            .unwrap_or_default()
            .contains("eu-west")
    })
    .expect("the expired override leaves the state file");
}

#[test]
fn a_service_that_ignores_ecs_steers_by_the_resolver_and_says_scope_zero() {
    let services = "[services.www]\nttl = 30\n[services.cdn]\nttl = 30\necs = \"ignore\"\n";
    let srv = server(&zone(&[], &[], services), |_| {});
    let toronto = "24.100.1.0/24";
    // www uses the client subnet: London and Toronto differ.
    assert_eq!(addrs(&london(&srv)), ips(&[EU_WEST]));
    assert_eq!(
        addrs(&ask(&srv, "www.gslb.example.", RecordType::A, toronto)),
        ips(&[US_EAST])
    );
    // cdn ignores it: both get what the resolver's own address (loopback) gets, over UDP and TCP.
    let plain = addrs(&srv.udp(&Q::new("cdn.gslb.example.", RecordType::A)));
    for net in [LONDON, toronto] {
        let q = Q::new("cdn.gslb.example.", RecordType::A).ecs(net);
        srv.both(&q, |m, how| {
            assert_eq!(addrs(m), plain, "{how} {net}");
            let ecs = ecs_of(m).unwrap_or_else(|| panic!("{how}: ECS echoed"));
            assert_eq!(ecs.scope_prefix(), 0, "{how} {net}: valid for every client");
        });
    }
    // and scope 0 on www would be wrong: it does use the subnet.
    let ecs = ecs_of(&london(&srv)).unwrap();
    assert!(ecs.scope_prefix() > 0);
}
