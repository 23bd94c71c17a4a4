//! The wire fast path against the general path: for every query shape, the two must give the
//! same message (header, sections, EDNS and ECS), and the fast path must take exactly the
//! shapes it is meant to.

use std::net::SocketAddr;

use gslbd::config::{ServerConfig, load_with};
use gslbd::dns::handler::{Outcome, respond_into};
use gslbd::dns::{GslbHandler, Shared};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;

use crate::harness::{repo, sample_mmdb};

/// The example zones over the sample database, with the fast path on or off.
fn handler(fast: bool) -> (GslbHandler, std::sync::Arc<Shared>) {
    let mut cfg =
        ServerConfig::for_zones(repo().join("zones"), vec!["127.0.0.1:0".parse().unwrap()]);
    cfg.geodata = Some(sample_mmdb());
    let loaded = load_with(cfg).expect("the example loads");
    let mut shared = Shared::standalone(loaded, 1232);
    std::sync::Arc::get_mut(&mut shared).unwrap().fast_path = fast;
    (GslbHandler::new(shared.clone()), shared)
}

fn src() -> SocketAddr {
    "198.51.100.7:5353".parse().unwrap()
}

struct Q {
    name: &'static str,
    qtype: RecordType,
    /// None: no OPT record.
    edns: Option<u16>,
    ecs: Option<&'static str>,
    /// Another option besides ECS (an unknown one).
    other_option: bool,
    rd: bool,
    cd: bool,
    dnssec_ok: bool,
}

impl Q {
    fn new(name: &'static str, qtype: RecordType) -> Self {
        Self {
            name,
            qtype,
            edns: Some(1232),
            ecs: None,
            other_option: false,
            rd: false,
            cd: false,
            dnssec_ok: false,
        }
    }
    fn ecs(mut self, net: &'static str) -> Self {
        self.ecs = Some(net);
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let mut m = Message::new(0x5a17, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = self.rd;
        m.metadata.checking_disabled = self.cd;
        m.add_query(Query::query(
            Name::from_ascii(self.name).unwrap(),
            self.qtype,
        ));
        if let Some(size) = self.edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            e.set_dnssec_ok(self.dnssec_ok);
            if let Some(net) = self.ecs {
                e.options_mut()
                    .insert(EdnsOption::Subnet(net.parse::<ClientSubnet>().unwrap()));
            }
            if self.other_option {
                e.options_mut()
                    .insert(EdnsOption::Unknown(65001, vec![1, 2, 3]));
            }
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }
}

fn run(h: &GslbHandler, bytes: &[u8]) -> (Outcome, Vec<u8>) {
    let mut out = Vec::new();
    let o = respond_into(h, bytes, src(), Protocol::Udp, &mut out);
    (o, out)
}

/// Everything a client sees, in a comparable form.
fn seen(bytes: &[u8]) -> String {
    let m = Message::from_vec(bytes).expect("the response parses");
    let mut s = format!(
        "id={} qr={:?} op={:?} aa={} tc={} rd={} ra={} ad={} cd={} rcode={:?}\nquestion={:?}\n",
        m.metadata.id,
        m.metadata.message_type,
        m.metadata.op_code,
        m.metadata.authoritative,
        m.metadata.truncation,
        m.metadata.recursion_desired,
        m.metadata.recursion_available,
        m.metadata.authentic_data,
        m.metadata.checking_disabled,
        m.metadata.response_code,
        m.queries,
    );
    for (label, recs) in [
        ("answer", &m.answers),
        ("authority", &m.authorities),
        ("additional", &m.additionals),
    ] {
        for r in recs {
            s += &format!("{label}: {r}\n");
        }
    }
    if let Some(e) = &m.edns {
        s += &format!(
            "edns: payload={} version={} do={} options={:?}\n",
            e.max_payload(),
            e.version(),
            e.flags().dnssec_ok,
            e.options()
        );
    }
    s
}

#[test]
fn the_fast_path_answers_common_queries_exactly_as_the_general_path() {
    let ((fast, shared), (general, _)) = (handler(true), handler(false));
    let mut cases = vec![
        (Q::new("www.gslb.example.", RecordType::A), true),
        (Q::new("www.gslb.example.", RecordType::AAAA), true),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24"),
            true,
        ),
        (
            Q::new("WwW.GSLB.example.", RecordType::A).ecs("81.2.3.0/24"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::AAAA).ecs("81.2.3.0/24"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("116.88.1.0/24"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("10.20.5.0/24"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("2001:db8::/32"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("::ffff:81.2.3.4/128"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("2002:5102:0300::/40"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("0.0.0.0/0"),
            true,
        ),
        (Q::new("static.gslb.example.", RecordType::A), true),
        (
            Q::new("Static.Gslb.Example.", RecordType::A).ecs("81.2.3.0/24"),
            true,
        ),
        (Q::new("gslb.example.", RecordType::SOA), true),
        (Q::new("gslb.example.", RecordType::TXT), true),
        (Q::new("gslb.example.", RecordType::CAA), true),
        (Q::new("ns1.gslb.example.", RecordType::AAAA), true),
        // Shapes for the general path: additional data, CNAMEs, NODATA, NXDOMAIN, referral,
        // wildcard, ANY, non-address types at a steered name.
        (Q::new("gslb.example.", RecordType::MX), false),
        (Q::new("gslb.example.", RecordType::NS), false),
        (Q::new("_sip._tcp.gslb.example.", RecordType::SRV), false),
        (Q::new("api.gslb.example.", RecordType::A), false),
        (Q::new("static.gslb.example.", RecordType::AAAA), false),
        (Q::new("nope.gslb.example.", RecordType::A), false),
        (Q::new("host.sub.gslb.example.", RecordType::A), false),
        (Q::new("x.apps.gslb.example.", RecordType::A), false),
        (Q::new("www.gslb.example.", RecordType::ANY), false),
        (Q::new("www.gslb.example.", RecordType::TXT), false),
        (Q::new("www.example.org.", RecordType::A), false),
    ];
    // Header and EDNS variations on the commonest queries.
    for name in ["www.gslb.example.", "static.gslb.example."] {
        let mut q = Q::new(name, RecordType::A);
        q.edns = None;
        cases.push((q, true));
        let mut q = Q::new(name, RecordType::A).ecs("81.2.3.0/24");
        q.rd = true;
        q.cd = true;
        q.dnssec_ok = true;
        cases.push((q, true));
        let mut q = Q::new(name, RecordType::A).ecs("81.2.3.0/24");
        q.edns = Some(100); // below 512: answered with 512
        cases.push((q, true));
        let mut q = Q::new(name, RecordType::A).ecs("81.2.3.0/24");
        q.edns = Some(4096); // above ours: answered with ours
        q.other_option = true;
        cases.push((q, true));
    }
    let mut failures = Vec::new();
    for (q, want_fast) in &cases {
        let bytes = q.bytes();
        let (of, bf) = run(&fast, &bytes);
        let (og, bg) = run(&general, &bytes);
        let label = format!("{} {:?} ecs={:?} edns={:?}", q.name, q.qtype, q.ecs, q.edns);
        assert_eq!(of, og, "{label}: outcome");
        let (sf, sg) = (seen(&bf), seen(&bg));
        if sf != sg {
            failures.push(format!("{label}:\n fast:\n{sf}\n general:\n{sg}"));
        }
        let mut scratch = Vec::new();
        let took_fast =
            gslbd::dns::fast::respond(&shared, &bytes, src(), Protocol::Udp, &mut scratch)
                .is_some();
        if took_fast != *want_fast {
            failures.push(format!(
                "{label}: fast path taken: {took_fast}, expected {want_fast}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn queries_the_fast_path_must_not_judge_get_the_general_answer() {
    let ((fast, shared), (general, _)) = (handler(true), handler(false));
    let base = Q::new("www.gslb.example.", RecordType::A)
        .ecs("81.2.3.0/24")
        .bytes();
    let mut variants: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut v = base.clone();
    v[2] |= 0x78 & (5 << 3); // opcode UPDATE: NOTIMP
    variants.push(("opcode", v));
    let mut v = base.clone();
    let opt = v.len() - 23; // OPT owner: 11 bytes of fixed fields + the 12-byte ECS option
    v[opt + 6] = 1; // EDNS version 1: BADVERS
    variants.push(("edns version", v));
    let mut v = base.clone();
    // The ECS option ends the message: family (2), source (1), scope (1), address (3).
    let scope = v.len() - 4;
    v[scope] = 8; // a non-zero scope in a query: FORMERR
    variants.push(("ecs scope", v));
    let mut v = base.clone();
    v.push(0); // a trailing byte after the OPT record
    variants.push(("trailing", v));
    let mut v = base.clone();
    v[5] = 2; // QDCOUNT 2
    variants.push(("two questions", v));
    for (label, bytes) in variants {
        let (of, bf) = run(&fast, &bytes);
        let (og, bg) = run(&general, &bytes);
        assert_eq!((of, &bf), (og, &bg), "{label}");
        let mut scratch = Vec::new();
        assert!(
            gslbd::dns::fast::respond(&shared, &bytes, src(), Protocol::Udp, &mut scratch)
                .is_none(),
            "{label}: the fast path took it"
        );
    }
}

/// A zone whose steered names end in every way a decision can: addresses, the all-down CNAME,
/// NODATA (no VIP of the family), more addresses than 512 bytes hold, a region answered by
/// name, and the apex steered beside its static SOA and NS.
const ENDINGS: &str = r#"origin = "f.test."
ns = ["ns1"]
[soa]
serial = 1
[[records]]
name = "ns1"
type = "A"
data = "192.0.2.1"
[regions.a]
location = [50.0, 8.0]
vips = ["192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14", "192.0.2.15", "192.0.2.16", "192.0.2.17", "192.0.2.18", "192.0.2.19", "192.0.2.20", "192.0.2.21", "192.0.2.22", "192.0.2.23", "192.0.2.24", "192.0.2.25", "192.0.2.26", "192.0.2.27", "192.0.2.28", "192.0.2.29", "192.0.2.30", "192.0.2.31", "192.0.2.32", "192.0.2.33", "192.0.2.34", "192.0.2.35", "192.0.2.36", "192.0.2.37", "192.0.2.38", "192.0.2.39", "192.0.2.40", "192.0.2.41"]
[regions.b]
location = [40.0, -75.0]
vips = ["198.51.100.1"]
[services.www]
regions = ["b"]
all_down = "fallback"
fallback_cname = "sorry.example.net."
[services.big]
regions = ["a"]
[services.v4only]
regions = ["b"]
all_down = "nodata"
[regions.c]
location = [35.0, 139.0]
cname = "c.cdn.example.net."
[services.named]
regions = ["c"]
[services."@"]
regions = ["b"]
"#;

fn handlers_for(zone: &str) -> [(GslbHandler, std::sync::Arc<Shared>); 2] {
    [true, false].map(|fast| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.toml"), zone).unwrap();
        let cfg = ServerConfig::for_zones(dir.path(), vec!["127.0.0.1:0".parse().unwrap()]);
        let loaded = load_with(cfg).expect("the zone loads");
        let mut shared = Shared::standalone(loaded, 1232);
        let s = std::sync::Arc::get_mut(&mut shared).unwrap();
        s.fast_path = fast;
        s.rrl = Some(gslbd::dns::rrl::Rrl::new(gslbd::dns::rrl::RrlConfig {
            responses_per_second: 40,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: vec![],
        }));
        (GslbHandler::new(shared.clone()), shared)
    })
}

/// Marks every region of the handler's zones down (or up again).
fn all_down(shared: &Shared, down: bool) {
    use gslbd::snapshot::{HealthSnapshot, RegionView};
    let now = shared.served.load();
    let views = (0..now.zones.region_count())
        .map(|_| RegionView {
            eligible: !down,
            vip_up: if down { 0 } else { u64::MAX },
            ..RegionView::UP
        })
        .collect();
    shared
        .served
        .store(std::sync::Arc::new(gslbd::served::Served {
            zones: now.zones.clone(),
            health: std::sync::Arc::new(HealthSnapshot::from_views(views)),
        }));
}

#[test]
fn both_paths_end_every_decision_alike_and_count_alike() {
    let [(fast, fshared), (general, gshared)] = handlers_for(ENDINGS);
    let mut cases = vec![
        // Addresses; more than 512 bytes of them without EDNS (TC), and within 1232 with it.
        Q::new("www.f.test.", RecordType::A).ecs("81.2.3.0/24"),
        {
            let mut q = Q::new("big.f.test.", RecordType::A);
            q.edns = None;
            q
        },
        Q::new("big.f.test.", RecordType::A),
        {
            let mut q = Q::new("big.f.test.", RecordType::A);
            q.edns = Some(512);
            q
        },
        // No IPv6 VIP: NODATA with the SOA (spelled as asked).
        Q::new("V4only.F.test.", RecordType::AAAA),
        Q::new("www.f.test.", RecordType::AAAA).ecs("81.2.3.0/24"),
        Q::new("named.f.test.", RecordType::A).ecs("81.2.3.0/24"),
        Q::new("Named.F.Test.", RecordType::AAAA),
        Q::new("f.test.", RecordType::A).ecs("81.2.3.0/24"),
        Q::new("F.test.", RecordType::AAAA),
        Q::new("f.test.", RecordType::SOA),
        Q::new("f.test.", RecordType::NS),
    ];
    // A burst beyond the RRL budget from one network: both paths drop and slip alike.
    for _ in 0..60 {
        cases.push(Q::new("big.f.test.", RecordType::A));
    }
    let mut failures = Vec::new();
    let mut check = |label: &str, q: &Q| {
        let bytes = q.bytes();
        let (of, bf) = run(&fast, &bytes);
        let (og, bg) = run(&general, &bytes);
        if of != og || (of == Outcome::Reply && seen(&bf) != seen(&bg)) {
            failures.push(format!(
                "{label} {} {:?}: fast {of:?}\n{}\n general {og:?}\n{}",
                q.name,
                q.qtype,
                if bf.is_empty() {
                    String::new()
                } else {
                    seen(&bf)
                },
                if bg.is_empty() {
                    String::new()
                } else {
                    seen(&bg)
                },
            ));
        }
    };
    for q in &cases {
        check("up", q);
    }
    // Everything down: the CNAME fallback and the NODATA mode, decided once on the fast path.
    all_down(&fshared, true);
    all_down(&gshared, true);
    for q in [
        Q::new("www.f.test.", RecordType::A).ecs("81.2.3.0/24"),
        Q::new("WWW.F.TEST.", RecordType::A),
        Q::new("v4only.f.test.", RecordType::A),
    ] {
        check("down", &q);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Every counter the query path bumps agrees (RRL verdicts, truncation, ECS, scopes,
    // queries per zone and service, answers per region).
    assert_eq!(fshared.metrics.counters(), gshared.metrics.counters());
    let c = fshared.metrics.counters();
    assert!(c["rrl_dropped"] > 0 && c["rrl_slipped"] > 0, "{c:?}");
    assert!(c["truncated"] > 0, "{c:?}");
    // And the fast path did take them.
    let q = Q::new("www.f.test.", RecordType::A).bytes();
    let mut scratch = Vec::new();
    assert!(gslbd::dns::fast::respond(&fshared, &q, src(), Protocol::Udp, &mut scratch).is_some());
}

#[test]
fn both_paths_count_the_example_alike() {
    let ((fast, fshared), (general, gshared)) = (handler(true), handler(false));
    for q in [
        Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24"),
        Q::new("www.gslb.example.", RecordType::AAAA).ecs("2a02:8100:1::/48"),
        Q::new("static.gslb.example.", RecordType::A),
        Q::new("gslb.example.", RecordType::SOA),
        Q::new("nope.gslb.example.", RecordType::A).ecs("81.2.3.0/24"),
        Q::new("www.example.org.", RecordType::A),
    ] {
        let b = q.bytes();
        run(&fast, &b);
        run(&general, &b);
    }
    assert_eq!(fshared.metrics.counters(), gshared.metrics.counters());
}

/// The example zones signed with a fresh key (written as `gslbd dnssec keygen` writes it), and
/// two handlers over the same signed zones: the fast path on, and off.
fn signed_handlers() -> (
    GslbHandler,
    GslbHandler,
    std::sync::Arc<Shared>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(zones.join("keys")).unwrap();
    for f in ["gslb.example.toml", "gslb.example.zone"] {
        std::fs::copy(repo().join("zones").join(f), zones.join(f)).unwrap();
    }
    let apex = Name::from_ascii("gslb.example.").unwrap();
    let key = gslbd::dnssec::Key::generate(&apex, gslbd::dnssec::Algorithm::Ed25519, 257).unwrap();
    let stem = key.file_stem();
    std::fs::write(
        zones.join("keys").join(format!("{stem}.key")),
        key.key_file(),
    )
    .unwrap();
    std::fs::write(
        zones.join("keys").join(format!("{stem}.private")),
        key.private_file("2026-01-01T00:00:00Z"),
    )
    .unwrap();
    let toml = zones.join("gslb.example.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(&format!("\n[dnssec]\nkeys = [\"keys/{stem}\"]\n"));
    std::fs::write(&toml, text).unwrap();
    let mut cfg = ServerConfig::for_zones(zones, vec!["127.0.0.1:0".parse().unwrap()]);
    cfg.geodata = Some(sample_mmdb());
    let loaded = load_with(cfg).expect("the signed example loads");
    let fast = Shared::standalone(loaded, 1232);
    let mut general = Shared::new(fast.served.clone(), 1232, fast.metrics.clone());
    std::sync::Arc::get_mut(&mut general).unwrap().fast_path = false;
    (
        GslbHandler::new(fast.clone()),
        GslbHandler::new(general),
        fast,
        dir,
    )
}

/// In a signed zone, DO queries for plain static RRsets and steered names are answered by the
/// fast path with the signatures made at load, exactly as the general path answers them; what
/// needs more than cached RRSIGs (denials, DNSKEY, additional data) still goes the general way.
/// Neither signs anything but the denial of a new name.
#[test]
fn signed_answers_take_the_fast_path_and_match_the_general_path() {
    let (fast, general, shared, _dir) = signed_handlers();
    let signed = || crate::harness::rrsets_signed(&shared.served.load());
    let at_load = signed();
    assert!(at_load > 0, "nothing signed at load");
    let cases = [
        (Q::new("static.gslb.example.", RecordType::A), true),
        (Q::new("StAtIc.gslb.EXAMPLE.", RecordType::A), true),
        (Q::new("gslb.example.", RecordType::SOA), true),
        (Q::new("gslb.example.", RecordType::TXT), true),
        (Q::new("gslb.example.", RecordType::CAA), true),
        (Q::new("ns1.gslb.example.", RecordType::AAAA), true),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::AAAA).ecs("116.88.1.0/24"),
            true,
        ),
        (Q::new("gslb.example.", RecordType::DNSKEY), false),
        (Q::new("gslb.example.", RecordType::MX), false),
        (Q::new("static.gslb.example.", RecordType::AAAA), false),
        (Q::new("nope.gslb.example.", RecordType::A), false),
        (Q::new("api.gslb.example.", RecordType::A), false),
    ];
    let mut failures = Vec::new();
    for (mut q, want_fast) in cases {
        q.dnssec_ok = true;
        let bytes = q.bytes();
        let label = format!("{} {:?} ecs={:?}", q.name, q.qtype, q.ecs);
        let before = signed();
        let (of, bf) = run(&fast, &bytes);
        let (og, bg) = run(&general, &bytes);
        // The one thing the load cannot sign ahead: the denial of a name that does not exist,
        // signed once on first use (and found in the cache by the second path).
        let may_sign = u64::from(q.name.starts_with("nope."));
        if signed() - before != may_sign {
            failures.push(format!("{label}: {} RRsets signed", signed() - before));
        }
        assert_eq!(of, og, "{label}: outcome");
        let (sf, sg) = (seen(&bf), seen(&bg));
        if sf != sg {
            failures.push(format!("{label}:\n fast:\n{sf}\n general:\n{sg}"));
        }
        if !sf.contains("RRSIG") {
            failures.push(format!("{label}: unsigned:\n{sf}"));
        }
        let mut scratch = Vec::new();
        let took_fast =
            gslbd::dns::fast::respond(&shared, &bytes, src(), Protocol::Udp, &mut scratch)
                .is_some();
        if took_fast != want_fast {
            failures.push(format!(
                "{label}: fast path taken: {took_fast}, expected {want_fast}"
            ));
        }
        // Without DO the same static names carry no signature, whichever path.
        q.dnssec_ok = false;
        let (_, plain) = run(&fast, &q.bytes());
        if seen(&plain).contains("RRSIG") {
            failures.push(format!("{label}: RRSIG without DO"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(signed(), at_load + 1, "answers signed on the query path");
}
