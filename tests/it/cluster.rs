//! A fleet of gslbd instances through a real etcd (feature `cluster`): health decided by the
//! down rule over every vantage point, overrides applied fleet-wide, and the faults (etcd gone,
//! an instance killed, every instance restarted, an etcd node lost).
//!
//! Each test starts etcd (Debian `etcd-server`) on ephemeral loopback ports with a temporary
//! data directory, a fake region endpoint that fails for chosen instances only (keyed on the
//! `X-Gslbd-Instance` header every probe of a fleet carries), and three gslbd instances: in
//! this process, or as the built binary when a test must kill one outright.

#![cfg(feature = "cluster")]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gslbd::config::{ClusterConfig, DownRule};
use hickory_proto::rr::RecordType;

use super::harness::*;

/// The VIP of the probed region and of the backup that answers when it is down.
const PRIMARY: &str = "192.0.2.10";
const BACKUP: &str = "198.51.100.1";

fn require(bin: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = PathBuf::from(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "`{bin}` is not installed: run the README's test command (.ci/test), which installs etcd-server"
    );
}

/// One etcd node (or the nodes of one cluster), killed when dropped.
struct Etcd {
    nodes: Vec<Option<Child>>,
    clients: Vec<u16>,
    args: Vec<Vec<String>>,
    _dir: tempfile::TempDir,
}

impl Etcd {
    /// A cluster of `n` nodes on loopback.
    fn start(n: usize) -> Self {
        let bin = require("etcd");
        let dir = tempfile::tempdir().unwrap();
        let clients: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let peers: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let initial: Vec<String> = (0..n)
            .map(|i| format!("e{i}=http://127.0.0.1:{}", peers[i]))
            .collect();
        let args: Vec<Vec<String>> = (0..n)
            .map(|i| {
                let data = dir.path().join(format!("e{i}"));
                vec![
                    "--name".into(),
                    format!("e{i}"),
                    "--data-dir".into(),
                    data.display().to_string(),
                    "--listen-client-urls".into(),
                    format!("http://127.0.0.1:{}", clients[i]),
                    "--advertise-client-urls".into(),
                    format!("http://127.0.0.1:{}", clients[i]),
                    "--listen-peer-urls".into(),
                    format!("http://127.0.0.1:{}", peers[i]),
                    "--initial-advertise-peer-urls".into(),
                    format!("http://127.0.0.1:{}", peers[i]),
                    "--initial-cluster".into(),
                    initial.join(","),
                    "--initial-cluster-state".into(),
                    "new".into(),
                    "--heartbeat-interval".into(),
                    "50".into(),
                    "--election-timeout".into(),
                    "500".into(),
                    "--log-level".into(),
                    "error".into(),
                ]
            })
            .collect();
        let mut e = Etcd {
            nodes: Vec::new(),
            clients,
            args,
            _dir: dir,
        };
        for i in 0..n {
            let child = Command::new(&bin)
                .args(&e.args[i])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("etcd starts");
            e.nodes.push(Some(child));
        }
        e.wait_healthy();
        e
    }

    fn endpoints(&self) -> Vec<String> {
        self.clients
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect()
    }

    /// Waits until every running node says it is healthy.
    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for (i, port) in self.clients.iter().enumerate() {
            if self.nodes[i].is_none() {
                continue;
            }
            loop {
                if http_get(*port, "/health").is_some_and(|b| b.contains("\"true\"")) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd node {i} never became healthy"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a killed node again on its data directory.
    fn restart(&mut self, i: usize) {
        let child = Command::new(require("etcd"))
            .args(&self.args[i])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd starts");
        self.nodes[i] = Some(child);
        self.wait_healthy();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// A plain HTTP/1.0 GET on loopback; the body, or `None`.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A region health endpoint that answers 503 to the instances in `failing` (by their
/// `X-Gslbd-Instance` header) and 200 to everyone else.
struct Endpoint {
    port: u16,
    failing: Arc<Mutex<BTreeSet<String>>>,
    seen: Arc<Mutex<BTreeSet<String>>>,
}

impl Endpoint {
    fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let failing: Arc<Mutex<BTreeSet<String>>> = Default::default();
        let seen: Arc<Mutex<BTreeSet<String>>> = Default::default();
        let (f, sn) = (failing.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let (f, sn) = (f.clone(), sn.clone());
                std::thread::spawn(move || {
                    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 4096];
                    let n = c.read(&mut buf).unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                    let who = head
                        .lines()
                        .find_map(|l| l.strip_prefix("x-gslbd-instance:"))
                        .map(|v| v.trim().to_string())
                        .unwrap_or_default();
                    sn.lock().unwrap().insert(who.clone());
                    let fail = f.lock().unwrap().contains(&who);
                    let status = if fail { "503 Down" } else { "200 OK" };
                    let _ = write!(
                        c,
                        "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                });
            }
        });
        Endpoint {
            port,
            failing,
            seen,
        }
    }

    fn fail_for(&self, instances: &[&str]) {
        *self.failing.lock().unwrap() = instances.iter().map(|s| s.to_string()).collect();
    }
}

fn zone(port: u16) -> String {
    format!(
        r#"origin = "f.test."
ns = ["ns1"]
[soa]
serial = 1
[[records]]
name = "ns1"
type = "A"
data = "192.0.2.1"
[regions.r]
location = [50.0, 8.0]
vips = ["{PRIMARY}"]
probe = {{ url = "http://127.0.0.1:{port}/health", interval = 0.2, timeout = 0.15, rise = 1, fall = 1 }}
[regions.b]
location = [40.0, -75.0]
vips = ["{BACKUP}"]
[services.www]
policy = "failover"
regions = ["r", "b"]
ttl = 5
"#
    )
}

fn cluster_config(etcd: &Etcd, name: &str, rule: DownRule) -> ClusterConfig {
    ClusterConfig {
        endpoints: etcd.endpoints(),
        instance: name.to_string(),
        prefix: "/gslbd-test".into(),
        down: rule,
        lease_ttl: Duration::from_secs(2),
        timeout: Duration::from_millis(500),
        tls: None,
        auth: None,
    }
}

/// An in-process instance of the fleet, with an admin API.
fn instance(etcd: &Etcd, name: &str, rule: DownRule, port: u16) -> TestServer {
    let cfg = cluster_config(etcd, name, rule);
    TestServer::with_zones_cfg(&[("f.toml", &zone(port))], None, move |c| {
        c.cluster = Some(cfg);
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.admin_token = Some("fleet-test-token-0123".into());
    })
}

fn answer(addr: SocketAddr) -> Option<IpAddr> {
    let bytes = udp_raw(addr, &Q::new("www.f.test.", RecordType::A).to_bytes())?;
    let m = hickory_proto::op::Message::from_vec(&bytes).ok()?;
    addrs(&m).first().copied()
}

/// Waits until every address answers `want` (at most `within`); panics with what they said.
fn all_answer(addrs: &[SocketAddr], want: &str, within: Duration, ctx: &str) -> Duration {
    let want: IpAddr = want.parse().unwrap();
    let t0 = Instant::now();
    loop {
        let got: Vec<Option<IpAddr>> = addrs.iter().map(|a| answer(*a)).collect();
        if got.iter().all(|g| *g == Some(want)) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < within,
            "{ctx}: want {want} everywhere, got {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks for `during` that every address keeps answering `want`.
fn all_keep_answering(addrs: &[SocketAddr], want: &str, during: Duration, ctx: &str) {
    let want: IpAddr = want.parse().unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < during {
        let got: Vec<Option<IpAddr>> = addrs.iter().map(|a| answer(*a)).collect();
        assert!(
            got.iter().all(|g| *g == Some(want)),
            "{ctx}: want {want} everywhere, got {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The fleet's view as instance `s` reports it (`/v1/cluster`).
fn cluster_view(s: &TestServer) -> serde_json::Value {
    let addr = s.gslbd().admin_addr.expect("admin listens");
    let body = http_get(addr.port(), "/v1/cluster").expect("/v1/cluster answers");
    let json = body.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(json).expect("JSON")
}

fn wait_members(s: &TestServer, n: usize) {
    let t0 = Instant::now();
    loop {
        let v = cluster_view(s);
        if v["fleet"]["members"]
            .as_object()
            .is_some_and(|m| m.len() == n)
        {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{n} members never seen: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Detection: fall 1 × (interval 0.2 + timeout 0.15) plus the jitter, plus one second.
const DETECT: Duration = Duration::from_millis(1600);

#[test]
fn a_majority_of_vantage_points_decides_and_one_alone_does_not() {
    let etcd = Etcd::start(1);
    let ep = Endpoint::start();
    let fleet: Vec<TestServer> = ["a", "b", "c"]
        .iter()
        .map(|n| instance(&etcd, n, DownRule::Majority, ep.port))
        .collect();
    let addrs: Vec<SocketAddr> = fleet.iter().map(|s| s.addr).collect();
    wait_members(&fleet[0], 3);
    all_answer(&addrs, PRIMARY, Duration::from_secs(5), "all up");
    // Every instance probes with its own name.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        *ep.seen.lock().unwrap(),
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
    );

    // One vantage point sees the region down: the fleet still answers it, everywhere.
    ep.fail_for(&["a"]);
    std::thread::sleep(DETECT);
    all_keep_answering(&addrs, PRIMARY, Duration::from_secs(2), "1 of 3 down");
    let v = cluster_view(&fleet[1]);
    let t = &v["fleet"]["targets"][0];
    assert_eq!(
        (t["voters"].as_u64(), t["down"].as_u64()),
        (Some(3), Some(1)),
        "{v}"
    );
    assert_eq!(v["fleet"]["disagreements"], 1, "{v}");
    assert_eq!(t["votes"]["a"]["up"], false, "{v}");

    // Two of three: every instance stops answering it within the detection window + 1 s.
    ep.fail_for(&["a", "b"]);
    all_answer(&addrs, BACKUP, DETECT, "2 of 3 down");
    // Back for one of them: 1 of 3 again, up.
    ep.fail_for(&["a"]);
    all_answer(&addrs, PRIMARY, DETECT, "1 of 3 down again");
}

#[test]
fn the_any_and_all_rules_behave_as_named() {
    let etcd = Etcd::start(1);
    for (rule, one_down, two_down) in [
        (DownRule::Any, BACKUP, BACKUP),
        (DownRule::All, PRIMARY, PRIMARY),
        (DownRule::AtLeast(2), PRIMARY, BACKUP),
    ] {
        let ep = Endpoint::start();
        let fleet: Vec<TestServer> = ["a", "b", "c"]
            .iter()
            .map(|n| instance(&etcd, n, rule, ep.port))
            .collect();
        let addrs: Vec<SocketAddr> = fleet.iter().map(|s| s.addr).collect();
        wait_members(&fleet[0], 3);
        all_answer(&addrs, PRIMARY, Duration::from_secs(5), "all up");
        ep.fail_for(&["c"]);
        std::thread::sleep(DETECT);
        all_answer(&addrs, one_down, DETECT, &format!("{rule:?}: 1 of 3 down"));
        ep.fail_for(&["b", "c"]);
        std::thread::sleep(DETECT);
        all_answer(&addrs, two_down, DETECT, &format!("{rule:?}: 2 of 3 down"));
        ep.fail_for(&["a", "b", "c"]);
        all_answer(&addrs, BACKUP, DETECT, &format!("{rule:?}: 3 of 3 down"));
        drop(fleet);
    }
}

/// Sets an override through instance `s`'s admin API.
fn api_override(s: &TestServer, action: &str) -> u16 {
    let addr = s.gslbd().admin_addr.expect("admin listens");
    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /v1/regions/f.test/r/{action} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer fleet-test-token-0123\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn an_override_through_one_instance_reaches_all_within_a_second_and_survives_restarts() {
    let etcd = Etcd::start(1);
    let ep = Endpoint::start();
    let start = || -> Vec<TestServer> {
        ["a", "b", "c"]
            .iter()
            .map(|n| instance(&etcd, n, DownRule::Majority, ep.port))
            .collect()
    };
    let fleet = start();
    let addrs: Vec<SocketAddr> = fleet.iter().map(|s| s.addr).collect();
    wait_members(&fleet[0], 3);
    all_answer(&addrs, PRIMARY, Duration::from_secs(5), "all up");
    assert_eq!(api_override(&fleet[1], "drain"), 200);
    let took = all_answer(&addrs, BACKUP, Duration::from_secs(1), "drained through b");
    eprintln!("override reached all three in {took:?}");
    // Every instance restarts: the override is still there.
    drop(fleet);
    let fleet = start();
    let addrs: Vec<SocketAddr> = fleet.iter().map(|s| s.addr).collect();
    all_answer(
        &addrs,
        BACKUP,
        Duration::from_secs(5),
        "still drained after restarts",
    );
    assert_eq!(api_override(&fleet[2], "auto"), 200);
    all_answer(&addrs, PRIMARY, Duration::from_secs(1), "auto through c");
    // A timed drain: on every instance, and over on every instance when its time is up.
    assert_eq!(api_override(&fleet[0], "drain?for=4s"), 200);
    all_answer(
        &addrs,
        BACKUP,
        Duration::from_secs(1),
        "timed drain through a",
    );
    let took = all_answer(
        &addrs,
        PRIMARY,
        Duration::from_secs(7),
        "the timed drain ends everywhere",
    );
    assert!(
        took >= Duration::from_secs(2),
        "ended after {took:?}, not 4 s"
    );
}

#[test]
fn without_etcd_every_instance_answers_from_its_own_probes_and_rejoins() {
    let mut etcd = Etcd::start(1);
    let ep = Endpoint::start();
    let fleet: Vec<TestServer> = ["a", "b", "c"]
        .iter()
        .map(|n| instance(&etcd, n, DownRule::Majority, ep.port))
        .collect();
    let addrs: Vec<SocketAddr> = fleet.iter().map(|s| s.addr).collect();
    wait_members(&fleet[0], 3);
    // a alone sees the region down: the fleet keeps it.
    ep.fail_for(&["a"]);
    std::thread::sleep(DETECT);
    all_keep_answering(&addrs, PRIMARY, Duration::from_secs(1), "quorum");
    // etcd dies: everyone keeps answering, each from its own probes (a: the backup).
    etcd.kill(0);
    let t0 = Instant::now();
    loop {
        let got: Vec<Option<IpAddr>> = addrs.iter().map(|a| answer(*a)).collect();
        assert!(
            got.iter().all(Option::is_some),
            "an instance stopped answering: {got:?}"
        );
        if got[0] == Some(BACKUP.parse().unwrap()) && got[1] == Some(PRIMARY.parse().unwrap()) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "never fell back to own probes: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cluster_view(&fleet[0])["etcd"]["connected"], false);
    // etcd returns: the quorum view is back everywhere.
    etcd.restart(0);
    all_answer(&addrs, PRIMARY, Duration::from_secs(8), "quorum again");
    assert!(cluster_view(&fleet[0])["etcd"]["errors"].as_u64() >= Some(1));
}

/// The built binary as one member of the fleet (so that it can be killed outright).
fn spawn_instance(etcd: &Etcd, name: &str, port: u16) -> (Spawned, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/f.toml"), zone(port)).unwrap();
    let dns = free_port();
    let endpoints: Vec<String> = etcd.endpoints().iter().map(|e| format!("{e:?}")).collect();
    std::fs::write(
        dir.path().join("gslbd.toml"),
        format!(
            "listen = [\"127.0.0.1:{dns}\"]\nzones = \"zones\"\n[cluster]\nendpoints = [{}]\ninstance = \"{name}\"\nprefix = \"/gslbd-test\"\nlease_ttl = 2\ntimeout = 0.5\n",
            endpoints.join(", ")
        ),
    )
    .unwrap();
    let child = Spawned(
        Command::new(env!("CARGO_BIN_EXE_gslbd"))
            .args(["serve", "--config"])
            .arg(dir.path().join("gslbd.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gslbd starts"),
    );
    let addr: SocketAddr = format!("127.0.0.1:{dns}").parse().unwrap();
    let t0 = Instant::now();
    while answer(addr).is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{name} never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr, dir)
}

#[test]
fn a_killed_instance_stops_voting_when_its_lease_expires() {
    let etcd = Etcd::start(1);
    let ep = Endpoint::start();
    let a = instance(&etcd, "a", DownRule::Majority, ep.port);
    let b = instance(&etcd, "b", DownRule::Majority, ep.port);
    let (mut c, c_addr, _dir) = spawn_instance(&etcd, "c", ep.port);
    wait_members(&a, 3);
    // a and c see it down: down by majority, everywhere.
    ep.fail_for(&["a", "c"]);
    all_answer(&[a.addr, b.addr, c_addr], BACKUP, DETECT, "2 of 3 down");
    // c dies without a word (SIGKILL: no lease revoke). Until its lease (2 s) expires its vote
    // stands; after that a alone of a and b sees it down: 1 of 2 is no majority.
    let _ = c.0.kill();
    let killed = Instant::now();
    let took = all_answer(
        &[a.addr, b.addr],
        PRIMARY,
        Duration::from_secs(6),
        "c's vote gone",
    );
    let after = killed.elapsed();
    eprintln!("c's vote was gone {after:?} after the kill ({took:?} of waiting)");
    // The lease (2 s) runs from the last keep-alive, sent every third of it: the vote cannot go
    // before 2 − 0.67 s after the kill.
    assert!(
        after >= Duration::from_millis(1300),
        "gone before the lease could expire: {after:?}"
    );
    wait_members(&a, 2);
}

#[test]
fn a_three_node_etcd_that_loses_a_node_keeps_the_fleet_working() {
    let mut etcd = Etcd::start(3);
    let ep = Endpoint::start();
    let fleet: Vec<TestServer> = ["a", "b", "c"]
        .iter()
        .map(|n| instance(&etcd, n, DownRule::Majority, ep.port))
        .collect();
    let addrs: Vec<SocketAddr> = fleet.iter().map(|s| s.addr).collect();
    wait_members(&fleet[0], 3);
    etcd.kill(1);
    // The quorum view still works: two of three down → down everywhere, and back.
    ep.fail_for(&["a", "b"]);
    all_answer(
        &addrs,
        BACKUP,
        Duration::from_secs(6),
        "2 of 3 down, one etcd node lost",
    );
    ep.fail_for(&[]);
    all_answer(&addrs, PRIMARY, Duration::from_secs(6), "up again");
    // And overrides still reach everyone.
    assert_eq!(api_override(&fleet[0], "drain"), 200);
    all_answer(&addrs, BACKUP, Duration::from_secs(2), "drained");
    assert_eq!(api_override(&fleet[0], "auto"), 200);
}
