//! Running under a service manager as an operator deploys it: the built binary started as root
//! binds its sockets and drops to an unprivileged user with nothing of root left, and tells
//! systemd (`Type=notify`, through `$NOTIFY_SOCKET`) when it is ready, reloading and stopping.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::harness::*;

fn gslbd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gslbd"))
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// A directory anyone may read (the dropped user must read the config on reload).
fn open_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn london(addr: SocketAddr) -> Option<Vec<std::net::IpAddr>> {
    let q = Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24");
    let bytes = udp_raw(addr, &q.to_bytes())?;
    let m = hickory_proto::op::Message::from_vec(&bytes).ok()?;
    Some(addrs(&m))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| gslbd::process::Identity::parse(&s).uids[0] == 0)
        .unwrap_or(false)
}

#[test]
fn started_as_root_it_binds_port_53_then_keeps_nothing_of_root() {
    assert!(
        is_root(),
        "this test starts gslbd as root to watch it drop root: run the suite as root (CI does)"
    );
    let dir = open_dir();
    // Port 53 needs root (or CAP_NET_BIND_SERVICE) to bind; an address of our own on loopback.
    let dns: SocketAddr = "127.54.0.1:53".parse().unwrap();
    let cfg = format!(
        "listen = [\"{dns}\"]\nuser = \"nobody\"\nzones = \"{}\"\ngeodata = \"{}\"\n",
        repo().join("zones").display(),
        sample_mmdb().display()
    );
    std::fs::write(dir.path().join("gslbd.toml"), cfg).unwrap();
    let mut child = Spawned(
        gslbd()
            .args(["serve", "--config"])
            .arg(dir.path().join("gslbd.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Some(a) = london(dns) {
            break a;
        }
        assert!(Instant::now() < deadline, "never answered on {dns}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        answer,
        vec!["192.0.2.20".parse::<std::net::IpAddr>().unwrap()]
    );
    // Every thread of the process: uid and gid nobody in every slot, no capabilities.
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let tasks = std::fs::read_dir(format!("/proc/{}/task", child.id())).unwrap();
    let mut threads = 0;
    for t in tasks {
        let id = gslbd::process::Identity::read(&t.unwrap().path().join("status")).unwrap();
        assert!(id.unprivileged(), "{id:?}");
        assert_eq!(id.uids, [nobody.uid.as_raw(); 4], "{id:?}");
        assert_eq!(id.gids, [nobody.gid.as_raw(); 4], "{id:?}");
        assert_eq!(id.caps, [0; 4], "{id:?}");
        threads += 1;
    }
    assert!(threads > 2, "workers, health and admin threads: {threads}");
    // A reload as nobody still works (the files are readable), and it keeps answering.
    signal(child.id(), "-HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert!(london(dns).is_some());
    signal(child.id(), "-TERM");
    assert!(child.wait().success());
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("dropped privileges") && err.contains("reload"),
        "{err}"
    );
}

#[test]
fn a_user_that_does_not_exist_stops_the_start_with_the_reason() {
    let dir = open_dir();
    let port = free_port();
    let cfg = format!(
        "listen = [\"127.0.0.1:{port}\"]\nuser = \"no-such-user-gslbd\"\nzones = \"{}\"\n",
        repo().join("zones").display(),
    );
    std::fs::write(dir.path().join("gslbd.toml"), cfg).unwrap();
    let out = gslbd()
        .args(["serve", "--config"])
        .arg(dir.path().join("gslbd.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("user \"no-such-user-gslbd\" does not exist"),
        "{err}"
    );
}

/// Receives one notification datagram (up to `within`).
fn recv(sock: &UnixDatagram, within: Duration) -> Option<String> {
    sock.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).to_string())
}

#[test]
fn systemd_hears_ready_after_the_first_probe_round_then_reloading_and_stopping() {
    let dir = open_dir();
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    // eu-west's health endpoint accepts connections and never answers: its first probe takes
    // the whole 1.5 s timeout and fails. Until then it would be answered (initial = up).
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let zone = std::fs::read_to_string(repo().join("zones/gslb.example.toml"))
        .unwrap()
        .replace(
            "[regions.eu-west]\n",
            &format!(
                "[regions.eu-west]\nprobe = {{ url = \"http://{}/health\", timeout = 1.5, interval = 5 }}\n",
                hang.local_addr().unwrap()
            ),
        );
    assert!(
        zone.contains("/health\", timeout = 1.5"),
        "the zone has an eu-west table"
    );
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    std::fs::write(zones.join("gslb.example.toml"), zone).unwrap();
    std::fs::copy(
        repo().join("zones/gslb.example.zone"),
        zones.join("gslb.example.zone"),
    )
    .unwrap();
    let port = free_port();
    let dns: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    std::fs::write(
        dir.path().join("gslbd.toml"),
        format!(
            "listen = [\"{dns}\"]\nzones = \"zones\"\ngeodata = \"{}\"\n[health]\njitter = 0\n",
            sample_mmdb().display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut child = Spawned(
        gslbd()
            .args(["serve", "--config"])
            .arg(dir.path().join("gslbd.toml"))
            .env("NOTIFY_SOCKET", &notify)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ready = recv(&sock, Duration::from_secs(20)).expect("READY=1 within 20 s");
    let took = started.elapsed();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(ready.contains("STATUS="), "{ready:?}");
    assert!(
        took >= Duration::from_millis(1400),
        "ready after {took:?}: before the probe timed out"
    );
    // Ready means answering, and the dead region is already out.
    let first = london(dns).expect("answers as soon as it says ready");
    assert_eq!(
        first,
        vec!["192.0.2.10".parse::<std::net::IpAddr>().unwrap()],
        "us-east, not the dead eu-west"
    );

    signal(child.id(), "-HUP");
    let reloading = recv(&sock, Duration::from_secs(10)).expect("RELOADING=1");
    assert!(
        reloading.lines().any(|l| l == "RELOADING=1"),
        "{reloading:?}"
    );
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading:?}");
    let again = recv(&sock, Duration::from_secs(10)).expect("READY=1 after the reload");
    assert!(again.lines().any(|l| l == "READY=1"), "{again:?}");
    assert!(again.contains("last reload ok"), "{again:?}");

    signal(child.id(), "-TERM");
    let stopping = recv(&sock, Duration::from_secs(10)).expect("STOPPING=1");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert!(child.wait().success());
    drop(hang);
}
