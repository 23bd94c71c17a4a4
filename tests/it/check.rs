//! `gslbd check` and `gslbd serve` as a user runs them: the built binary, its exit status and
//! what it prints. Every mistake is reported with file, line and reason.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::harness::*;

fn gslbd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gslbd"))
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A zones directory with one of each mistake the issue names, and where each one is.
fn broken_zones(dir: &Path) {
    // a.toml: an unknown key (line 3).
    write(
        dir,
        "a.toml",
        "origin = \"a.example.\"\nns = [\"ns1\"]\nnameservers = [\"x\"]\n[soa]\nserial = 1\n",
    );
    // b.toml: bad address (line 9), CNAME beside other data (line 13), record outside the origin
    // (line 21), and a master file with a syntax error on its line 3.
    write(
        dir,
        "b.toml",
        r#"origin = "b.example."
ns = ["ns1"]
master_file = "b.zone"
[soa]
serial = 1
[[records]]
name = "ns1"
type = "A"
data = "192.0.2.300"
[[records]]
name = "www"
type = "A"
data = "192.0.2.1"
[[records]]
name = "www"
type = "CNAME"
data = "elsewhere.example."
[[records]]
name = "stray.example.org."
type = "A"
data = "192.0.2.2"
"#,
    );
    write(
        dir,
        "b.zone",
        "ok1   IN A 192.0.2.10\nok2   IN A 192.0.2.11\nbad   IN A not-an-address\nok3   IN A 192.0.2.12\n",
    );
    // c.toml: no SOA.
    write(
        dir,
        "c.toml",
        "origin = \"c.example.\"\nns = [\"ns1.c.example.\"]\n",
    );
}

#[test]
fn check_lists_every_mistake_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    broken_zones(&zones);
    write(
        dir.path(),
        "gslbd.toml",
        "listen = [\"127.0.0.1:0\"]\nzones = \"zones\"\n",
    );
    let out = gslbd()
        .args(["check", "--config"])
        .arg(dir.path().join("gslbd.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "check must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    let z = zones.display().to_string();
    let expect = [
        (
            format!("{z}/a.toml: line 3: "),
            "unknown field `nameservers`",
        ),
        (format!("{z}/b.toml: line 9: "), "192.0.2.300"),
        (
            format!("{z}/b.toml: line 14: "),
            "CNAME at www.b.example. beside other data (A)",
        ),
        (
            format!("{z}/b.toml: line 18: "),
            "outside the zone b.example.",
        ),
        (format!("{z}/b.zone: line 3: "), ""),
        (format!("{z}/c.toml: line 1: "), "has no SOA"),
    ];
    for (prefix, reason) in &expect {
        assert!(
            err.lines()
                .any(|l| l.starts_with(prefix.as_str()) && l.contains(reason)),
            "missing `{prefix}…{reason}` in:\n{err}"
        );
    }
    assert!(err.contains("6 error(s)"), "{err}");
}

#[test]
fn check_passes_on_the_shipped_example() {
    let out = gslbd()
        .args(["check", "--config"])
        .arg(repo().join("gslbd.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok: 1 zone(s), 4 region(s), 1 service(s)")
    );
}

#[test]
fn serve_refuses_to_start_on_an_invalid_config_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    write(
        &zones,
        "c.toml",
        "origin = \"c.example.\"\nns = [\"ns1.c.example.\"]\n",
    );
    write(
        dir.path(),
        "gslbd.toml",
        "listen = [\"127.0.0.1:0\"]\nzones = \"zones\"\n",
    );
    let out = gslbd()
        .args(["serve", "--config"])
        .arg(dir.path().join("gslbd.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("c.toml: line 1: zone c.example. has no SOA"),
        "{err}"
    );
    assert!(err.contains("refusing to start"), "{err}");
    // A broken server config is rejected too, with its line.
    write(
        dir.path(),
        "bad.toml",
        "listen = [\"127.0.0.1:0\"]\nlisten_tcp = true\n",
    );
    let out = gslbd()
        .args(["serve", "--config"])
        .arg(dir.path().join("bad.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml: line 2: unknown field `listen_tcp`"),
        "{err}"
    );
}

#[test]
fn the_built_binary_serves_the_example_over_udp_and_tcp() {
    let (mut child, addr, _dir) = serve_example("");
    let q = Q::new("www.gslb.example.", RecordType::A).ecs("85.214.1.0/24");
    let answer =
        hickory_proto::op::Message::from_vec(&udp_raw(addr, &q.to_bytes()).unwrap()).unwrap();
    assert_eq!(
        addrs(&answer),
        vec!["192.0.2.20".parse::<std::net::IpAddr>().unwrap()]
    );
    let tcp = hickory_proto::op::Message::from_vec(&tcp_raw(addr, &q.to_bytes()).unwrap()).unwrap();
    assert_eq!(addrs(&tcp), addrs(&answer));
    // SIGTERM: a clean exit with status 0.
    unsafe_kill_term(child.id());
    let status = child.wait();
    assert!(status.success(), "exit status {status}");
}

fn unsafe_kill_term(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Starts the built binary on the example zones and sample geodata, on a free loopback port,
/// with `extra` appended to its config; returns once it answers (stderr is piped).
fn serve_example(extra: &str) -> (Spawned, std::net::SocketAddr, tempfile::TempDir) {
    // Find a free port, then hand it to the binary (the server binds explicit addresses).
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "listen = [\"127.0.0.1:{port}\"]\nzones = \"{}\"\ngeodata = \"{}\"\n[dns]\nworkers = 1\n{extra}",
        repo().join("zones").display(),
        sample_mmdb().display()
    );
    write(dir.path(), "gslbd.toml", &cfg);
    let child = Spawned(
        gslbd()
            .args(["serve", "--config"])
            .arg(dir.path().join("gslbd.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let probe = Q::new("static.gslb.example.", RecordType::A).to_bytes();
    let deadline = Instant::now() + Duration::from_secs(20);
    while udp_raw(addr, &probe).is_none() {
        assert!(Instant::now() < deadline, "the binary never answered");
    }
    (child, addr, dir)
}

#[test]
fn geodata_lookup_prints_what_the_database_says() {
    let out = gslbd()
        .args(["geodata", "lookup"])
        .arg(sample_mmdb())
        .arg("196.200.1.1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "network:   196.200.0.0/16 (prefix /16)",
        "location:  -1.29, 36.82",
        "country:   KE",
        "continent: AF",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
}

#[test]
fn geodata_build_writes_a_database_that_the_server_and_mmdblookup_read() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("s.mmdb");
    let out = gslbd()
        .args(["geodata", "build"])
        .arg(repo().join("geodata/sample-city.csv"))
        .arg("-o")
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("35 networks, 29 distinct locations"));
    // The shipped database is exactly what the command builds from the shipped CSV, apart
    // from the build time in the metadata: compare what a reader sees.
    let a = gslbd::geo::GeoDb::open(&out_path).unwrap();
    let b = gslbd::geo::GeoDb::open(&sample_mmdb()).unwrap();
    let (ta, tb) = (a.tables(|id| id).unwrap(), b.tables(|id| id).unwrap());
    assert_eq!(
        (&a.records, &ta.v4, &ta.v6, &ta.aliases),
        (&b.records, &tb.v4, &tb.v6, &tb.aliases)
    );
    // libmaxminddb reads it too, when mmdblookup is installed (CI installs mmdb-bin).
    if let Ok(o) = Command::new("mmdblookup")
        .args(["--file"])
        .arg(&out_path)
        .args(["--ip", "81.2.3.4", "country", "iso_code"])
        .output()
    {
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("\"GB\""),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    // A bad CSV: every bad row with its line, exit non-zero, nothing written.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "network,city,country_iso_code,continent_code,latitude,longitude\n10.0.0.0/8,X,ZZZ,EU,1,1\n").unwrap();
    let out = gslbd()
        .args(["geodata", "build"])
        .arg(&bad)
        .arg("-o")
        .arg(dir.path().join("b.mmdb"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("bad.csv: line 2: country \"ZZZ\" is not a two-letter ISO code")
    );
    assert!(!dir.path().join("b.mmdb").exists());
}

#[test]
fn a_name_is_static_or_a_service_never_both() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    write(
        &zones,
        "z.toml",
        "origin = \"z.example.\"\nns = [\"ns1.example.net.\"]\n[soa]\nserial = 1\n[[records]]\nname = \"www\"\ntype = \"TXT\"\ndata = \"hi\"\n[regions.a]\nlocation = [0, 0]\nvips = [\"192.0.2.1\"]\n[services.www]\n",
    );
    write(
        dir.path(),
        "gslbd.toml",
        "listen = [\"127.0.0.1:0\"]\nzones = \"zones\"\n",
    );
    let out = gslbd()
        .args(["check", "--config"])
        .arg(dir.path().join("gslbd.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("z.toml: line 12: www.z.example. is both a service and static data (TXT)"),
        "{err}"
    );
}

#[test]
fn the_query_log_writes_one_line_per_query() {
    let (mut child, addr, _dir) = serve_example("[log]\nquery_log = true\nformat = \"json\"\n");
    let q = Q::new("www.gslb.example.", RecordType::A).ecs("85.214.1.0/24");
    assert!(udp_raw(addr, &q.to_bytes()).is_some());
    let mut stderr = child.0.stderr.take().unwrap();
    unsafe_kill_term(child.id());
    assert!(child.wait().success());
    let mut log = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("\"target\":\"gslbd::query\"") && l.contains("www.gslb.example."))
        .unwrap_or_else(|| panic!("no query line in\n{log}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let f = &v["fields"];
    assert_eq!(f["ecs"], "85.214.1.0/24");
    assert_eq!(f["qname"], "www.gslb.example.");
    assert_eq!(f["rcode"], "No Error");
    assert!(f["regions"].as_str().unwrap().contains("eu-west"), "{f}");
    assert!(f["answer"].as_str().unwrap().contains("192.0.2.20"), "{f}");
    assert_eq!(f["scope"], 16);
}

#[test]
fn explain_prints_the_decision_table() {
    let dir = tempfile::tempdir().unwrap();
    // The example zones, no state file (so no overrides left by a local run can leak in).
    let cfg = format!(
        "listen = [\"127.0.0.1:0\"]\nzones = \"{}\"\ngeodata = \"{}\"\n",
        repo().join("zones").display(),
        sample_mmdb().display()
    );
    write(dir.path(), "gslbd.toml", &cfg);
    let out = gslbd()
        .args([
            "explain",
            "www.gslb.example",
            "--client",
            "196.200.1.0/24",
            "--config",
        ])
        .arg(dir.path().join("gslbd.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |region: &str| {
        text.lines()
            .find(|l| l.starts_with(region))
            .unwrap_or_else(|| panic!("{region} in\n{text}"))
            .to_string()
    };
    assert!(
        text.contains("client 196.200.1.0/24 (from ecs): database, network 196.200.0.0/16"),
        "{text}"
    );
    assert!(
        line("eu-west").contains("7260") && line("eu-west").ends_with("chosen #1"),
        "{text}"
    );
    assert!(
        line("ap-southeast").contains("7453") && line("ap-southeast").ends_with("not selected"),
        "{text}"
    );
    assert!(
        text.contains("answer: 192.0.2.20  ttl 30  (normal)  ecs scope /16"),
        "{text}"
    );
    // JSON, and errors for names that are not steered.
    let out = gslbd()
        .args([
            "explain",
            "www.gslb.example",
            "--client",
            "2a02:8100::1",
            "--type",
            "AAAA",
            "--json",
            "--config",
        ])
        .arg(dir.path().join("gslbd.toml"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["answer"][0], "2001:db8::20");
    let out = gslbd()
        .args([
            "explain",
            "static.gslb.example",
            "--client",
            "81.2.3.4",
            "--config",
        ])
        .arg(dir.path().join("gslbd.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a steered name"));
}

#[test]
fn listens_on_ipv4_and_ipv6_at_once() {
    let mut cfg = gslbd::config::ServerConfig::for_zones(
        repo().join("zones"),
        vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()],
    );
    cfg.geodata = Some(sample_mmdb());
    let srv = TestServer::from_config(cfg, None);
    let addrs_ = srv.gslbd().dns_addrs().to_vec();
    assert_eq!(addrs_.len(), 2);
    assert!(addrs_[1].is_ipv6());
    for a in addrs_ {
        let q = Q::new("static.gslb.example.", RecordType::A);
        let sock = std::net::UdpSocket::bind(if a.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        })
        .unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        sock.send_to(&q.to_bytes(), a).unwrap();
        let mut buf = [0u8; 1500];
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        let m = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(addrs(&m).len(), 2, "over UDP on {a}");
        let m = hickory_proto::op::Message::from_vec(&tcp_raw(a, &q.to_bytes()).unwrap()).unwrap();
        assert_eq!(addrs(&m).len(), 2, "over TCP on {a}");
    }
}
