//! Steering reach (issue 17): regions answered by hostname, steering at the zone apex, geo rules
//! by subdivision and ASN, real DB-IP data. Every answer is read over UDP and TCP.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use super::fakes::{FakeHttp, Mode};
use super::harness::*;

const LONDON: &str = "81.2.3.0/24";
const TORONTO: &str = "24.100.1.0/24";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `127.21.<net>.<host>`: this module's own loopback networks for fake endpoints.
fn lo(net: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 21, net, host))
}

fn server(zone_text: &str) -> TestServer {
    TestServer::with_zones_cfg(&[("z.toml", zone_text)], Some(&sample_mmdb()), |cfg| {
        cfg.health.jitter = 0.0;
    })
}

/// The CNAME targets in the answer section, in order.
fn cnames(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.to_string()),
            _ => None,
        })
        .collect()
}

/// Asks `name`/`rtype` for `ecs` over UDP and TCP; `check` sees each answer.
fn both(
    srv: &TestServer,
    name: &str,
    rtype: RecordType,
    ecs: &str,
    check: impl Fn(&Message, &str),
) {
    srv.both(&Q::new(name, rtype).ecs(ecs), |m, how| {
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{how}: {m:?}"
        );
        assert!(m.metadata.authoritative, "{how}: AA");
        check(m, how);
    });
}

/// Regions: eu-west by VIPs, us-east by name (a CDN or another load balancer), ap-northeast by
/// VIPs; `extra` is added to us-east's table, `services` follows.
fn hostname_zone(extra: &str, services: &str) -> String {
    format!(
        r#"origin = "gslb.example."
ns = ["ns1"]
[soa]
serial = 1
[[records]]
name = "ns1"
type = "A"
data = "192.0.2.53"
[regions.eu-west]
location = [53.3, -6.3]
vips = ["192.0.2.20", "2001:db8::20"]
[regions.us-east]
location = [39.0, -77.5]
cname = "us-east.lb.example.net."
{extra}
[regions.ap-northeast]
location = [35.7, 139.7]
vips = ["192.0.2.30", "2001:db8::30"]
{services}"#
    )
}

#[test]
fn a_region_answered_by_name_gets_a_cname_and_the_others_their_vips() {
    let srv = server(&hostname_zone(
        "",
        "[services.www]\nttl = 30\n[services.two]\nttl = 30\nanswers = 2\n",
    ));
    for rtype in [RecordType::A, RecordType::AAAA] {
        // Toronto's nearest region answers by name: a CNAME, alone, for both families.
        both(&srv, "www.gslb.example.", rtype, TORONTO, |m, how| {
            assert_eq!(cnames(m), ["us-east.lb.example.net."], "{how} {rtype}");
            assert_eq!(
                m.answers.len(),
                1,
                "{how}: a CNAME owner holds nothing else"
            );
            assert_eq!(m.answers[0].ttl, 30, "{how}");
            let scope = ecs_of(m).expect("ECS echoed").scope_prefix();
            assert_eq!(
                scope, 16,
                "{how}: scoped like a VIP answer (the /16 of the database)"
            );
        });
    }
    // London's nearest answers VIPs.
    both(
        &srv,
        "www.gslb.example.",
        RecordType::A,
        LONDON,
        |m, how| {
            assert_eq!(addrs(m), [ip("192.0.2.20")], "{how}");
            assert!(cnames(m).is_empty());
        },
    );
    // Two answers: London gets eu-west and the next VIP region (us-east, by name, cannot join
    // an address answer); Toronto's first region answers by name, so the CNAME alone.
    both(
        &srv,
        "two.gslb.example.",
        RecordType::A,
        LONDON,
        |m, how| {
            assert_eq!(addrs(m), [ip("192.0.2.20"), ip("192.0.2.30")], "{how}");
        },
    );
    both(
        &srv,
        "two.gslb.example.",
        RecordType::A,
        TORONTO,
        |m, how| {
            assert_eq!(cnames(m), ["us-east.lb.example.net."], "{how}");
            assert_eq!(m.answers.len(), 1, "{how}");
        },
    );
    // Other types at the name: NODATA with the SOA, as for any service.
    both(
        &srv,
        "www.gslb.example.",
        RecordType::TXT,
        TORONTO,
        |m, how| {
            assert!(m.answers.is_empty(), "{how}");
            assert_eq!(m.authorities.len(), 1, "{how}");
        },
    );
}

#[test]
fn a_hostname_region_is_probed_and_fails_over_like_any_other() {
    let fake = FakeHttp::start(lo(1, 1), Mode::ok("OK"));
    let probe = format!(
        "probe = {{ url = \"http://{}/health\", interval = 0.3, timeout = 0.1, rise = 2, fall = 2 }}",
        fake.addr
    );
    let srv = server(&hostname_zone(&probe, "[services.www]\nttl = 30\n"));
    let toronto = || srv.udp(&Q::new("www.gslb.example.", RecordType::A).ecs(TORONTO));
    assert_eq!(cnames(&toronto()), ["us-east.lb.example.net."]);
    fake.set(Mode::Status(503));
    let deadline = Instant::now() + Duration::from_secs(6);
    while !cnames(&toronto()).is_empty() {
        assert!(Instant::now() < deadline, "us-east never failed over");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Down: Toronto goes to the next region, by address, with the degraded TTL.
    both(
        &srv,
        "www.gslb.example.",
        RecordType::A,
        TORONTO,
        |m, how| {
            assert_eq!(addrs(m), [ip("192.0.2.20")], "{how}");
            assert_eq!(m.answers[0].ttl, 15, "{how}: degraded_ttl = ttl / 2");
        },
    );
    let st = srv.status();
    let us = st.regions.iter().find(|r| r.name == "us-east").unwrap();
    assert!(!us.up, "{us:#?}");
    assert_eq!(us.cname.as_deref(), Some("us-east.lb.example.net."));
    fake.set(Mode::ok("OK"));
    let deadline = Instant::now() + Duration::from_secs(6);
    while cnames(&toronto()).is_empty() {
        assert!(Instant::now() < deadline, "us-east never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The example's apex data plus a service at the apex.
fn apex_zone(regions: &str, services: &str) -> String {
    format!(
        r#"origin = "gslb.example."
ns = ["ns1"]
[soa]
serial = 1
[[records]]
name = "ns1"
type = "A"
data = "192.0.2.53"
[[records]]
name = "@"
type = "MX"
data = "10 mail.example.net."
[[records]]
name = "@"
type = "TXT"
data = "v=spf1 -all"
[regions.eu-west]
location = [53.3, -6.3]
vips = ["192.0.2.20", "2001:db8::20"]
[regions.us-east]
location = [39.0, -77.5]
vips = ["192.0.2.10", "2001:db8::10"]
{regions}
[services."@"]
ttl = 20
{services}"#
    )
}

#[test]
fn the_apex_is_steered_for_addresses_and_static_for_everything_else() {
    let srv = server(&apex_zone("", ""));
    both(&srv, "gslb.example.", RecordType::A, LONDON, |m, how| {
        assert_eq!(addrs(m), [ip("192.0.2.20")], "{how}");
        assert_eq!(m.answers[0].ttl, 20, "{how}");
        assert!(ecs_of(m).unwrap().scope_prefix() > 0, "{how}");
    });
    both(
        &srv,
        "gslb.example.",
        RecordType::AAAA,
        TORONTO,
        |m, how| {
            assert_eq!(addrs(m), [ip("2001:db8::10")], "{how}");
        },
    );
    for (rtype, want) in [
        (RecordType::SOA, "SOA"),
        (RecordType::NS, "NS"),
        (RecordType::MX, "MX"),
        (RecordType::TXT, "TXT"),
    ] {
        both(&srv, "gslb.example.", rtype, LONDON, |m, how| {
            assert_eq!(m.answers.len(), 1, "{how} {want}: {m:?}");
            assert_eq!(m.answers[0].record_type().to_string(), want, "{how}");
            assert_eq!(ecs_of(m).unwrap().scope_prefix(), 0, "{how}: static data");
        });
    }
    // A type the apex does not have: NODATA with the SOA.
    both(&srv, "gslb.example.", RecordType::CAA, LONDON, |m, how| {
        assert!(m.answers.is_empty(), "{how}");
        assert_eq!(m.authorities.len(), 1, "{how}");
    });
    // Names below the apex are unaffected: NXDOMAIN stays NXDOMAIN.
    let m = srv.udp(&Q::new("nope.gslb.example.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

/// `gslbd check` on a zones directory holding `zone_text` as `z.toml`: its stderr, after
/// asserting that it failed.
fn check_fails(zone_text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    std::fs::write(zones.join("z.toml"), zone_text).unwrap();
    std::fs::write(
        dir.path().join("gslbd.toml"),
        "listen = [\"127.0.0.1:0\"]\nzones = \"zones\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["check", "--config"])
        .arg(dir.path().join("gslbd.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "check passed");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The 1-based line of the first line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines().position(|l| l.starts_with(prefix)).unwrap() + 1
}

#[test]
fn check_names_the_file_and_line_of_every_hostname_and_apex_mistake() {
    let apex_named = apex_zone(
        "[regions.cdn]\nlocation = [0, 0]\ncname = \"cdn.example.net.\"\n",
        "",
    );
    let err = check_fails(&apex_named);
    let at = line_of(&apex_named, "[services.\"@\"]");
    assert!(
        err.contains(&format!("z.toml: line {at}: service \"@\" is at the zone apex, where a CNAME cannot be answered, but its region(s) cdn answer by cname")),
        "{err}"
    );

    let apex_a = format!(
        "{}\n[[records]]\nname = \"@\"\ntype = \"A\"\ndata = \"192.0.2.99\"\n",
        apex_zone("", "")
    );
    let err = check_fails(&apex_a);
    let at = line_of(&apex_a, "[services.\"@\"]");
    assert!(
        err.contains(&format!(
            "z.toml: line {at}: service \"@\" steers the apex, which also has static A"
        )),
        "{err}"
    );

    let both_kinds = hostname_zone("vips = [\"192.0.2.11\"]", "[services.www]\n");
    let err = check_fails(&both_kinds);
    let at = line_of(&both_kinds, "[regions.us-east]");
    assert!(
        err.contains(&format!(
            "z.toml: line {at}: region \"us-east\": give vips or cname, not both"
        )),
        "{err}"
    );

    let per_vip = hostname_zone(
        "probe = { url = \"http://{vip}/health\" }",
        "[services.www]\n",
    );
    let err = check_fails(&per_vip);
    assert!(
        err.contains(&format!(
            "z.toml: line {at}: region \"us-east\": the probe names {{vip}}"
        )),
        "{err}"
    );

    let bad_name =
        hostname_zone("", "[services.www]\n").replace("us-east.lb.example.net.", "bad..name");
    let err = check_fails(&bad_name);
    assert!(
        err.contains(&format!("z.toml: line {at}: region \"us-east\": cname:")),
        "{err}"
    );
}

#[test]
fn explain_shows_the_cname_of_a_hostname_region() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    std::fs::write(zones.join("z.toml"), hostname_zone("", "[services.www]\n")).unwrap();
    std::fs::write(
        dir.path().join("gslbd.toml"),
        format!(
            "listen = [\"127.0.0.1:0\"]\nzones = \"zones\"\ngeodata = {:?}\n",
            sample_mmdb()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["explain", "--config"])
        .arg(dir.path().join("gslbd.toml"))
        .args(["www.gslb.example", "--client", "24.100.1.1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("answer: CNAME us-east.lb.example.net."),
        "{text}"
    );
}

/// `gslbd geodata build --asn geodata/sample-asn.csv` into `dir`, as an operator runs it.
fn sample_asn_db(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("asn.mmdb");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["geodata", "build", "--asn"])
        .arg(repo().join("geodata/sample-asn.csv"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// Three regions; US clients go to us-east by country, except Illinois (subdivision) to
/// us-west; AS64500 (half of the London network) goes to us-east; 81.2.3.0/24 has a network
/// rule on top.
const RULES_ZONE: &str = r#"origin = "gslb.example."
ns = ["ns1"]
[soa]
serial = 1
[[records]]
name = "ns1"
type = "A"
data = "192.0.2.53"
[regions.us-west]
location = [47.6, -122.3]
vips = ["192.0.2.1"]
[regions.us-east]
location = [39.0, -77.5]
vips = ["192.0.2.2"]
[regions.eu-west]
location = [53.3, -6.3]
vips = ["192.0.2.3"]
[geo.countries]
US = ["us-east"]
[geo.subdivisions]
US-IL = ["us-west"]
[geo.asns]
AS64500 = ["us-east"]
[geo.networks]
"81.2.3.0/24" = ["us-west"]
[services.www]
ttl = 30
"#;

#[test]
fn asn_and_subdivision_rules_follow_the_documented_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let asn = sample_asn_db(dir.path());
    let srv = TestServer::with_zones_cfg(&[("z.toml", RULES_ZONE)], Some(&sample_mmdb()), |cfg| {
        cfg.asn_geodata = Some(asn.clone());
    });
    let cases = [
        // (client, answer, ECS scope, why)
        (
            "66.40.1.0/24",
            "192.0.2.1",
            16,
            "Chicago: subdivision US-IL over country US",
        ),
        (
            "98.128.1.0/24",
            "192.0.2.2",
            16,
            "Seattle: country US, though us-west is nearer",
        ),
        ("71.80.1.0/24", "192.0.2.2", 16, "Miami: country US"),
        // AS64500 is 81.2.0.0/17, but the network rule cuts 81.2.3.0/24 out of it: the widest
        // block around 81.2.64.0 that is all AS64500 is 81.2.64.0/18.
        (
            "81.2.64.0/24",
            "192.0.2.2",
            18,
            "AS64500 over the database's London",
        ),
        (
            "81.2.200.0/24",
            "192.0.2.3",
            17,
            "AS64501 has no rule: London, nearest eu-west",
        ),
        (
            "81.2.3.0/24",
            "192.0.2.1",
            24,
            "a network rule over the ASN rule",
        ),
    ];
    for (client, want, scope, why) in cases {
        both(
            &srv,
            "www.gslb.example.",
            RecordType::A,
            client,
            |m, how| {
                assert_eq!(addrs(m), [ip(want)], "{how} {why}");
                let got = ecs_of(m).unwrap().scope_prefix();
                assert_eq!(got, scope, "{how} {why}: scope");
            },
        );
    }
}

#[test]
fn explain_and_check_name_asns_and_subdivisions() {
    let dir = tempfile::tempdir().unwrap();
    let asn = sample_asn_db(dir.path());
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    std::fs::write(zones.join("z.toml"), RULES_ZONE).unwrap();
    let cfg = dir.path().join("gslbd.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = [\"127.0.0.1:0\"]\nzones = \"zones\"\ngeodata = {:?}\nasn_geodata = {:?}\n",
            sample_mmdb(),
            asn
        ),
    )
    .unwrap();
    let explain = |client: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
            .args(["explain", "--config"])
            .arg(&cfg)
            .args(["www.gslb.example", "--client", client])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let t = explain("81.2.64.1");
    assert!(
        t.contains("ASN rule AS64500") && t.contains(", AS64500"),
        "{t}"
    );
    let t = explain("66.40.1.1");
    assert!(
        t.contains("subdivision rule US-IL") && t.contains(", US-IL"),
        "{t}"
    );

    // Without the ASN database the zone is refused, at the line of [geo.asns]'s table.
    std::fs::write(
        &cfg,
        format!(
            "listen = [\"127.0.0.1:0\"]\nzones = \"zones\"\ngeodata = {:?}\n",
            sample_mmdb()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("z.toml: line") && err.contains("asns rules need an ASN database"),
        "{err}"
    );
    // Bad keys.
    let bad = RULES_ZONE
        .replace("US-IL = ", "USIL = ")
        .replace("AS64500 = ", "ASX = ");
    let err = check_fails(&bad);
    assert!(
        err.contains("subdivision \"USIL\" is not an ISO 3166-2 code"),
        "{err}"
    );
    assert!(err.contains("\"ASX\" is not an AS number"), "{err}");
}
