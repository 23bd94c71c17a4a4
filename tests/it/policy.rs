//! Every steering policy through DNS on the running server: bias, priority with backups,
//! weighted shares, score, load shedding from probe-reported load, stickiness, several answers,
//! `_explain` TXT, and `[[expect]]` cases checked by `gslbd check`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use gslbd::health::Override;
use hickory_proto::rr::{RData, RecordType};

use super::fakes::{FakeHttp, Mode};
use super::harness::*;

const REGIONS: &str = r#"
[regions.us-east]
location = [39.0, -77.5]
vips = ["192.0.2.10", "2001:db8::10"]
cost = 1.0
[regions.eu-west]
location = [53.3, -6.3]
vips = ["192.0.2.20", "2001:db8::20"]
cost = 1.2
[regions.ap-southeast]
location = [1.35, 103.8]
vips = ["192.0.2.30", "2001:db8::30"]
cost = 1.5
[regions.sa-east]
location = [-23.5, -46.6]
vips = ["192.0.2.40", "2001:db8::40"]
cost = 0.9
"#;

fn zone(regions: &str, extra: &str) -> String {
    format!(
        "origin = \"gslb.example.\"\nns = [\"ns1.example.net.\"]\n[soa]\nserial = 1\n{regions}\n{extra}\n"
    )
}

fn server(regions: &str, extra: &str) -> TestServer {
    TestServer::with_zones(&[("z.toml", &zone(regions, extra))], Some(&sample_mmdb()))
}

fn ask(srv: &TestServer, ecs: &str) -> (Vec<IpAddr>, u8) {
    let m = srv.udp(&Q::new("www.gslb.example.", RecordType::A).ecs(ecs));
    (addrs(&m), ecs_of(&m).map_or(0, |e| e.scope_prefix()))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const LONDON: &str = "81.2.3.0/24";

/// `n` distinct /24s inside London's 81.2.0.0/16.
fn london_nets(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("81.2.{}.0/24", i % 256)).collect()
}

#[test]
fn bias_grows_a_regions_catchment() {
    // London → Dublin 463 km, Ashburn 5,921 km. With bias 95 Ashburn counts 296 km.
    let plain = server(REGIONS, "[services.www]\n");
    assert_eq!(ask(&plain, LONDON).0, vec![ip("192.0.2.20")]);
    let biased = server(
        &REGIONS.replace("cost = 1.0", "cost = 1.0\nbias = 95"),
        "[services.www]\n",
    );
    assert_eq!(ask(&biased, LONDON).0, vec![ip("192.0.2.10")]);
    // Bias 90 (592 km) is not enough.
    let less = server(
        &REGIONS.replace("cost = 1.0", "cost = 1.0\nbias = 90"),
        "[services.www]\n",
    );
    assert_eq!(ask(&less, LONDON).0, vec![ip("192.0.2.20")]);
}

#[test]
fn priority_fails_over_in_listed_order_and_uses_backups_last() {
    let regions = REGIONS.replace("cost = 1.2", "cost = 1.2\nbackup = true");
    let srv = server(
        &regions,
        "[services.www]\npolicy = \"priority\"\nregions = [\"eu-west\", \"sa-east\", \"us-east\"]\n",
    );
    // eu-west is a backup: the first primary listed, sa-east, answers everyone (scope 0).
    assert_eq!(ask(&srv, LONDON), (vec![ip("192.0.2.40")], 0));
    srv.set_override("gslb.example", "sa-east", None, Override::ForceDown);
    assert_eq!(ask(&srv, LONDON).0, vec![ip("192.0.2.10")]);
    srv.set_override("gslb.example", "us-east", None, Override::ForceDown);
    let m = srv.udp(&Q::new("www.gslb.example.", RecordType::A).ecs(LONDON));
    assert_eq!(
        addrs(&m),
        vec![ip("192.0.2.20")],
        "every primary down: the backup"
    );
    assert_eq!(m.answers[0].ttl, 15, "degraded TTL while failing over");
    srv.set_override("gslb.example", "sa-east", None, Override::Auto);
    assert_eq!(ask(&srv, LONDON).0, vec![ip("192.0.2.40")]);
}

#[test]
fn weighted_answers_follow_the_weights() {
    let regions = REGIONS.replace("cost = 1.0", "cost = 1.0\nweight = 300");
    let srv = server(
        &regions,
        "[services.www]\npolicy = \"weighted\"\nregions = [\"us-east\", \"eu-west\"]\n",
    );
    // The draw is a hash of the client network and the time slot (the TTL): across client
    // networks the shares follow the weights…
    let n = 4000;
    let mut count = HashMap::new();
    for i in 0..n {
        let net = format!("{}.{}.{}.0/24", 20 + i % 200, i / 200, i % 251);
        *count.entry(ask(&srv, &net).0[0]).or_insert(0usize) += 1;
    }
    let us = count[&ip("192.0.2.10")] as f64 / n as f64;
    assert!(
        (us - 0.75).abs() < 0.03,
        "us-east share {us}, weight 300 of 400"
    );
    // …and one client network gets one answer (within a slot), scoped to its hashed network so
    // that resolvers cache it for that network only.
    let (_, scope) = ask(&srv, LONDON);
    assert_eq!(scope, 24);
    let seen: Vec<Vec<IpAddr>> = (0..50).map(|_| ask(&srv, LONDON).0).collect();
    let changes = seen.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        changes <= 1,
        "one client, one answer per 30 s slot: {seen:?}"
    );
}

#[test]
fn score_prefers_the_lowest_score() {
    // Cost only: sa-east (0.9) is cheapest for everyone.
    let srv = server(
        REGIONS,
        "[services.www]\npolicy = \"score\"\nscore = { latency = 0, load = 0, cost = 1 }\n",
    );
    assert_eq!(ask(&srv, LONDON).0, vec![ip("192.0.2.40")]);
    assert_eq!(ask(&srv, "110.32.1.0/24").0, vec![ip("192.0.2.40")]);
    // Distance only: the nearest, with the database network as the scope.
    let srv = server(
        REGIONS,
        "[services.www]\npolicy = \"score\"\nscore = { distance = 1, latency = 0, load = 0, cost = 0 }\n",
    );
    assert_eq!(ask(&srv, LONDON), (vec![ip("192.0.2.20")], 16));
    assert_eq!(ask(&srv, "110.32.1.0/24").0, vec![ip("192.0.2.30")]);
}

/// eu-west probed on a fake endpoint that reports `load`.
fn shed_server(load: f64) -> (TestServer, FakeHttp) {
    let fake = FakeHttp::start(ip("127.0.0.1"), Mode::ok(&format!("{{\"load\": {load}}}")));
    let regions = REGIONS.replace(
        "cost = 1.2",
        &format!(
            "cost = 1.2\nprobe = {{ url = \"http://127.0.0.1:{}/health\", load_json = \"load\", interval = 0.2, timeout = 0.15, rise = 1, fall = 1 }}",
            fake.port()
        ),
    );
    let srv = server(
        &regions,
        "[services.www]\nshed_load = { low = 0.5, high = 0.9 }\n",
    );
    (srv, fake)
}

fn wait_load(srv: &TestServer, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let st = srv.status();
        if st
            .region("gslb.example", "eu-west")
            .and_then(|r| r.load)
            .is_some_and(|l| (l - want).abs() < 1e-9)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("eu-west load never became {want}");
}

fn moved_share(srv: &TestServer, nets: &[String]) -> f64 {
    let moved = nets
        .iter()
        .filter(|n| ask(srv, n).0 != vec![ip("192.0.2.20")])
        .count();
    moved as f64 / nets.len() as f64
}

#[test]
fn shed_load_moves_a_share_of_clients_set_by_the_watermarks() {
    let (srv, fake) = shed_server(0.3);
    wait_load(&srv, 0.3);
    let nets = london_nets(256);
    assert_eq!(
        moved_share(&srv, &nets),
        0.0,
        "below the low watermark nobody moves"
    );
    fake.set(Mode::ok("{\"load\": 0.7}"));
    wait_load(&srv, 0.7);
    let half = moved_share(&srv, &nets);
    assert!(
        (half - 0.5).abs() < 0.1,
        "halfway between the watermarks: {half}"
    );
    // The same networks stay where they were put, and the scope is the hashed /24.
    for n in nets.iter().take(20) {
        let (a, scope) = ask(&srv, n);
        assert_eq!(ask(&srv, n).0, a);
        assert_eq!(scope, 24);
    }
    // Moved clients spill to several regions, not one neighbour.
    let targets: std::collections::HashSet<IpAddr> =
        nets.iter().map(|n| ask(&srv, n).0[0]).collect();
    assert!(targets.len() >= 3, "{targets:?}");
    fake.set(Mode::ok("{\"load\": 0.95}"));
    wait_load(&srv, 0.95);
    // Above the high watermark everyone moves. The status can show the reading a moment before
    // every answer does, so allow the snapshot a few seconds to settle.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut share = moved_share(&srv, &nets);
    while share < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        share = moved_share(&srv, &nets);
    }
    assert_eq!(share, 1.0, "above the high watermark everyone moves");
}

#[test]
fn sticky_keeps_each_client_network_on_one_region() {
    let srv = server(REGIONS, "[services.www]\npolicy = \"sticky\"\n");
    let nets = london_nets(200);
    let first: Vec<IpAddr> = nets.iter().map(|n| ask(&srv, n).0[0]).collect();
    for (n, a) in nets.iter().zip(&first) {
        let (b, scope) = ask(&srv, n);
        assert_eq!(&b[0], a, "{n} moved without a cause");
        assert_eq!(scope, 24);
    }
    let distinct: std::collections::HashSet<_> = first.iter().collect();
    assert_eq!(
        distinct.len(),
        4,
        "200 networks spread over all four regions"
    );
    // One region leaves: only its clients move.
    srv.set_override("gslb.example", "ap-southeast", None, Override::ForceDown);
    for (n, a) in nets.iter().zip(&first) {
        let b = ask(&srv, n).0[0];
        if *a != ip("192.0.2.30") {
            assert_eq!(b, *a, "{n} moved although its region stayed up");
        } else {
            assert_ne!(b, *a);
        }
    }
}

#[test]
fn several_answers_in_order() {
    let srv = server(REGIONS, "[services.www]\nanswers = 3\n");
    assert_eq!(
        ask(&srv, LONDON).0,
        vec![ip("192.0.2.20"), ip("192.0.2.10"), ip("192.0.2.40")]
    );
}

#[test]
fn explain_txt_answers_the_decision_table() {
    let srv = server(REGIONS, "[services.www]\nexplain_txt = true\n");
    let m = srv.udp(&Q::new("_explain.www.gslb.example.", RecordType::TXT).ecs(LONDON));
    let text: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(t.to_string()),
            _ => None,
        })
        .collect();
    let all = text.join("\n");
    assert!(all.contains("database, network 81.2.0.0/16"), "{all}");
    assert!(
        all.contains("eu-west") && all.contains("chosen #1"),
        "{all}"
    );
    assert!(all.contains("answer: 192.0.2.20"), "{all}");
    assert_eq!(ecs_of(&m).unwrap().scope_prefix(), 16);
    // Off by default: NXDOMAIN.
    let off = server(REGIONS, "[services.www]\n");
    let m = off.udp(&Q::new("_explain.www.gslb.example.", RecordType::TXT));
    assert_eq!(
        m.metadata.response_code,
        hickory_proto::op::ResponseCode::NXDomain
    );
}

#[test]
fn check_evaluates_expectations_and_names_the_failing_line() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    let body = zone(
        REGIONS,
        r#"[services.www]

[[expect]]
service = "www"
client = "81.2.3.0/24"
regions = ["eu-west"]

[[expect]]
service = "www"
client = "81.2.3.0/24"
down = ["eu-west"]
regions = ["us-east"]

[[expect]]
service = "www"
client = "110.32.1.0/24"
regions = ["eu-west"]
"#,
    );
    std::fs::write(zones.join("z.toml"), &body).unwrap();
    std::fs::write(
        dir.path().join("gslbd.toml"),
        format!(
            "listen = [\"127.0.0.1:0\"]\nzones = \"zones\"\ngeodata = \"{}\"\n",
            sample_mmdb().display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["check", "--config"])
        .arg(dir.path().join("gslbd.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = body
        .lines()
        .position(|l| l.contains("client = \"110.32.1.0/24\""))
        .unwrap();
    // The [[expect]] header is two lines above the client line (1-based: +1).
    let expect_line = line - 2 + 1;
    assert!(
        err.contains(&format!("z.toml: line {expect_line}: expect: www for 110.32.1.0 gives [\"ap-southeast\"], expected [\"eu-west\"]")),
        "{err}"
    );
    assert!(err.contains("1 of 3 expectation(s) failed"), "{err}");
}
