//! `gslbd check --delegation` against a real parent: NSD serves `example.` on loopback and
//! delegates `gslb.example.` to a running gslbd; the check is the built binary as an operator
//! runs it, told where the parent is (`--parent`) and which port the name servers answer on
//! (`--ns-port`), since nothing here listens on port 53.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use super::harness::*;
use super::resolver::{Nsd, delegation, require_binary, zone_apex};

const NS1: &str = "127.55.0.11";
const NS2: &str = "127.55.0.12";
const PARENT: &str = "127.55.0.1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A port free on the gslbd addresses and the parent's.
fn free_port() -> u16 {
    free_port_on(NS1)
}

/// The child zone as gslbd serves it: NS ns1/ns2 with their addresses, serial `serial`.
fn child_zone(serial: u32) -> String {
    format!(
        r#"origin = "gslb.example."
ns = ["ns1", "ns2"]
[soa]
serial = {serial}
[[records]]
name = "ns1"
type = "A"
data = "{NS1}"
[[records]]
name = "ns2"
type = "A"
data = "{NS2}"
[regions.eu-west]
location = [53.3, -6.3]
vips = ["192.0.2.20"]
[services.www]
"#
    )
}

/// The parent `example.` with the given delegation lines, served by NSD on `PARENT:port`.
fn parent(port: u16, lines: &str) -> Nsd {
    let text = format!(
        "{}{lines}",
        zone_apex("example.", "ns.example.", ip(PARENT))
    );
    Nsd::start(
        &require_binary("nsd", "nsd"),
        &[("example.", &text)],
        &[SocketAddr::new(ip(PARENT), port)],
    )
}

/// Runs `gslbd check --delegation` with the zone text `zone` (which may differ from what the
/// running server serves) listening where the server listens; returns (success, stdout).
fn check(zone: &str, port: u16, parent_port: u16) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/gslb.toml"), zone).unwrap();
    std::fs::write(
        dir.path().join("gslbd.toml"),
        format!("listen = [\"{NS1}:{port}\", \"{NS2}:{port}\"]\nzones = \"zones\"\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["check", "--delegation", "--config"])
        .arg(dir.path().join("gslbd.toml"))
        .args(["--parent", &format!("{PARENT}:{parent_port}")])
        .args(["--ns-port", &port.to_string()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn serve(port: u16, serial: u32) -> TestServer {
    TestServer::with_zones_cfg(&[("gslb.toml", &child_zone(serial))], None, |cfg| {
        cfg.listen = vec![
            SocketAddr::new(ip(NS1), port),
            SocketAddr::new(ip(NS2), port),
        ];
    })
}

#[test]
fn a_correct_delegation_passes_and_says_what_it_checked() {
    let port = free_port();
    let _gslbd = serve(port, 7);
    let parent_port = free_port();
    let _parent = parent(
        parent_port,
        &delegation(
            "gslb.example.",
            &[
                ("ns1.gslb.example.", ip(NS1)),
                ("ns2.gslb.example.", ip(NS2)),
            ],
        ),
    );
    let (ok, out) = check(&child_zone(7), port, parent_port);
    assert!(ok, "{out}");
    for want in [
        "gslb.example.: ok: the parent's NS set matches the zone's: ns1.gslb.example. ns2.gslb.example.",
        "gslb.example.: ok: glue for ns1.gslb.example. matches the zone: 127.55.0.11",
        "gslb.example.: ok: glue for ns2.gslb.example. matches the zone: 127.55.0.12",
        &format!(
            "gslb.example.: ok: ns1.gslb.example. at 127.55.0.11:{port} is authoritative, serial 7"
        ),
        &format!(
            "gslb.example.: ok: ns2.gslb.example. at 127.55.0.12:{port} is authoritative, serial 7"
        ),
        "delegation: 0 error(s), 0 warning(s)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn missing_and_stale_glue_lame_servers_and_serial_drift_are_reported() {
    let port = free_port();
    // The running server still serves serial 7; the zone file says 8 (edited, not reloaded).
    let _gslbd = serve(port, 7);
    let parent_port = free_port();
    // The parent: ns1's glue is stale (an address where nothing answers), ns2 has no glue,
    // and it names a third server the zone does not.
    let lines = "gslb.example. IN NS ns1.gslb.example.\n\
                 gslb.example. IN NS ns2.gslb.example.\n\
                 gslb.example. IN NS ns3.gslb.example.\n\
                 ns1.gslb.example. IN A 127.55.0.99\n"
        .to_string();
    let _parent = parent(parent_port, &lines);
    let (ok, out) = check(&child_zone(8), port, parent_port);
    assert!(!ok, "{out}");
    for want in [
        "error: NS at the parent but not in the zone: ns3.gslb.example.",
        "error: stale glue: the parent gives 127.55.0.99 for ns1.gslb.example., the zone does not",
        "error: missing glue: the parent has no address for ns2.gslb.example.",
        "error: missing glue: the parent has no address for ns3.gslb.example.",
        &format!("error: lame: ns1.gslb.example. at 127.55.0.99:{port}: no answer"),
        &format!(
            "error: serial drift: ns2.gslb.example. at 127.55.0.12:{port} serves serial 7, the zone file has 8"
        ),
        "warning: ns1.gslb.example. is 127.55.0.99, which is not one of gslbd's listen addresses",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn a_parent_that_does_not_delegate_is_an_error() {
    let port = free_port();
    let _gslbd = serve(port, 1);
    let parent_port = free_port();
    let _parent = parent(parent_port, "");
    let (ok, out) = check(&child_zone(1), port, parent_port);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "error: parent server {PARENT}:{parent_port} does not delegate gslb.example.: NXDomain with no NS for it"
        )),
        "{out}"
    );
}
