//! Client location, EDNS Client Subnet and proximity steering, over the wire.
//!
//! The expected region and ECS scope are computed here independently of the server: nearest
//! region by haversine from the CSV's coordinates, and the scope as the shortest prefix whose
//! block around the client holds one ordered region list only.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use ipnet::IpNet;

use super::harness::*;

/// The four regions of the example (name, lat, lon, v4 VIP, v6 VIP).
const REGIONS: [(&str, f64, f64, &str, &str); 4] = [
    ("us-east", 39.0, -77.5, "192.0.2.10", "2001:db8::10"),
    ("eu-west", 53.3, -6.3, "192.0.2.20", "2001:db8::20"),
    ("ap-southeast", 1.35, 103.8, "192.0.2.30", "2001:db8::30"),
    ("sa-east", -23.5, -46.6, "192.0.2.40", "2001:db8::40"),
];

const REGIONS_TOML: &str = r#"
[regions.us-east]
location = [39.0, -77.5]
vips = ["192.0.2.10", "2001:db8::10"]
[regions.eu-west]
location = [53.3, -6.3]
vips = ["192.0.2.20", "2001:db8::20"]
[regions.ap-southeast]
location = [1.35, 103.8]
vips = ["192.0.2.30", "2001:db8::30"]
[regions.sa-east]
location = [-23.5, -46.6]
vips = ["192.0.2.40", "2001:db8::40"]
"#;

fn zone(extra: &str) -> String {
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
name = "static"
type = "A"
data = "203.0.113.10"
{REGIONS_TOML}
{extra}
"#
    )
}

/// Haversine, written again here so the test does not trust the server's.
fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = |d: f64| d.to_radians();
    let h = ((r(b.0) - r(a.0)) / 2.0).sin().powi(2)
        + r(a.0).cos() * r(b.0).cos() * ((r(b.1) - r(a.1)) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// Region indices ordered by distance from `p` (ties: listed order).
fn order_from(p: (f64, f64)) -> Vec<usize> {
    let mut v: Vec<usize> = (0..REGIONS.len()).collect();
    v.sort_by(|&a, &b| {
        km(p, (REGIONS[a].1, REGIONS[a].2))
            .total_cmp(&km(p, (REGIONS[b].1, REGIONS[b].2)))
            .then(a.cmp(&b))
    });
    v
}

struct CsvNet {
    net: IpNet,
    city: String,
    lat: f64,
    lon: f64,
}

fn sample_csv() -> Vec<CsvNet> {
    let text = std::fs::read_to_string(repo().join("geodata/sample-city.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            CsvNet {
                net: f[0].parse().unwrap(),
                city: f[1].to_string(),
                lat: f[4].parse().unwrap(),
                lon: f[5].parse().unwrap(),
            }
        })
        .collect()
}

/// The block `addr/prefix`.
fn block(addr: IpAddr, prefix: u8) -> IpNet {
    IpNet::new(addr, prefix).unwrap().trunc()
}

/// Shortest prefix whose block around `addr` sees one ordered list only, given the networks
/// with their orders and the order of everything else.
fn expected_scope(addr: IpAddr, nets: &[(IpNet, Vec<usize>)], other: &[usize]) -> u8 {
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    for p in 0..=bits {
        let b = block(addr, p);
        let mut orders: Vec<&[usize]> = Vec::new();
        let mut covered = false;
        for (n, o) in nets {
            if n.contains(&b) {
                covered = true;
                orders.push(o);
            } else if b.contains(n) {
                orders.push(o);
            }
        }
        // Part of the block no network covers has the order of everything else. (The sample's
        // networks never tile a block completely, so "not inside one network" means "has gaps".)
        if !covered {
            orders.push(other);
        }
        if orders.iter().all(|o| *o == orders[0]) {
            return p;
        }
    }
    bits
}

#[test]
fn every_sample_network_is_answered_with_its_nearest_region_and_exact_scope() {
    // Unknown addresses are placed at us-east, so networks whose whole order equals us-east's
    // merge with the unknown space and get wide scopes.
    let default_at = (39.0, -77.5);
    let srv = TestServer::with_zones(
        &[(
            "z.toml",
            &zone("[services.www]\n[geo.default]\nlocation = [39.0, -77.5]\n"),
        )],
        Some(&sample_mmdb()),
    );
    let csv = sample_csv();
    let mut nets: Vec<(IpNet, Vec<usize>)> = csv
        .iter()
        .map(|c| (c.net, order_from((c.lat, c.lon))))
        .collect();
    // A MaxMind reader also finds IPv4 data at its IPv6 aliases (IPv4-mapped, Teredo and 6to4),
    // and so does gslbd: they are networks of the IPv6 space too.
    for c in &csv {
        if let IpNet::V4(n) = c.net {
            let o = n.network().octets();
            let mapped = std::net::Ipv6Addr::new(
                0,
                0,
                0,
                0,
                0,
                0xffff,
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
            );
            let six_to_four = std::net::Ipv6Addr::new(
                0x2002,
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
                0,
                0,
                0,
                0,
                0,
            );
            let order = order_from((c.lat, c.lon));
            nets.push((
                IpNet::new(IpAddr::V6(mapped), 96 + n.prefix_len()).unwrap(),
                order.clone(),
            ));
            let teredo = std::net::Ipv6Addr::new(
                0x2001,
                0,
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
                0,
                0,
                0,
                0,
            );
            nets.push((
                IpNet::new(IpAddr::V6(six_to_four), 16 + n.prefix_len()).unwrap(),
                order.clone(),
            ));
            nets.push((
                IpNet::new(IpAddr::V6(teredo), 32 + n.prefix_len()).unwrap(),
                order,
            ));
        }
    }
    let other = order_from(default_at);
    let mut checked = 0;
    for c in &csv {
        let nearest = order_from((c.lat, c.lon))[0];
        // A client subnet inside the network: /24 of IPv4, /48 of IPv6.
        let (sub, plen) = match c.net {
            IpNet::V4(n) => (IpAddr::V4(n.network()), 24u8),
            IpNet::V6(n) => (IpAddr::V6(n.network()), 48u8),
        };
        let ecs = format!("{sub}/{plen}");
        let scope = expected_scope(sub, &nets, &other);
        for rtype in [RecordType::A, RecordType::AAAA] {
            let q = Q::new("www.gslb.example.", rtype).ecs(&ecs);
            srv.both(&q, |m, via| {
                let want: IpAddr = if rtype == RecordType::A {
                    REGIONS[nearest].3.parse().unwrap()
                } else {
                    REGIONS[nearest].4.parse().unwrap()
                };
                assert_eq!(
                    m.metadata.response_code,
                    ResponseCode::NoError,
                    "{} {ecs} {via}",
                    c.city
                );
                assert!(m.metadata.authoritative);
                assert_eq!(
                    addrs(m),
                    vec![want],
                    "{} ({ecs}) {rtype} via {via}: nearest is {}",
                    c.city,
                    REGIONS[nearest].0
                );
                assert_eq!(m.answers[0].ttl, 30);
                let e = ecs_of(m).expect("ECS echoed");
                assert_eq!(e.addr(), sub, "{}", c.city);
                assert_eq!(e.source_prefix(), plen);
                assert_eq!(
                    e.scope_prefix(),
                    scope,
                    "{} ({ecs}) scope via {via}",
                    c.city
                );
            });
            checked += 1;
        }
    }
    assert_eq!(checked, 70, "35 networks × A and AAAA");
}

#[test]
fn close_calls_go_where_the_great_circle_says() {
    // Independently of the model above: these are the cities where the nearest region is a
    // close or surprising call.
    let srv = TestServer::with_zones(
        &[("z.toml", &zone("[services.www]\n"))],
        Some(&sample_mmdb()),
    );
    for (ecs, want, city) in [
        (
            "190.60.1.0/24",
            "192.0.2.10",
            "Bogotá → us-east (3,829 km; São Paulo 4,326 km)",
        ),
        (
            "5.62.1.0/24",
            "192.0.2.30",
            "Dubai → ap-southeast (5,835 km; Dublin 5,917 km)",
        ),
        (
            "196.200.1.0/24",
            "192.0.2.20",
            "Nairobi → eu-west (7,260 km; Singapore 7,453 km)",
        ),
        (
            "41.0.1.0/24",
            "192.0.2.40",
            "Johannesburg → sa-east (7,428 km; Singapore 8,657 km)",
        ),
    ] {
        let got = addrs(&srv.udp(&Q::new("www.gslb.example.", RecordType::A).ecs(ecs)));
        // Cross-check the expectation with the test's own haversine before asserting it.
        let c = sample_csv()
            .into_iter()
            .find(|c| c.net.contains(&ecs.parse::<IpNet>().unwrap().addr()))
            .unwrap();
        let nearest = order_from((c.lat, c.lon))[0];
        assert_eq!(
            REGIONS[nearest].3, want,
            "{city}: test expectation disagrees with haversine"
        );
        assert_eq!(got, vec![want.parse::<IpAddr>().unwrap()], "{city}");
    }
}

#[test]
fn malformed_ecs_is_formerr() {
    let srv = TestServer::example();
    let cases: [(&str, &[u8]); 7] = [
        ("unknown family 3", &[0, 3, 24, 0, 81, 2, 3]),
        ("IPv4 source prefix 33", &[0, 1, 33, 0, 81, 2, 3, 4, 5]),
        ("IPv6 source prefix 129", &[0, 2, 129, 0]),
        (
            "address bytes beyond the prefix (/16 with 4 bytes)",
            &[0, 1, 16, 0, 81, 2, 0, 0],
        ),
        (
            "address shorter than the prefix (/24 with 2 bytes)",
            &[0, 1, 24, 0, 81, 2],
        ),
        (
            "bits set past the prefix (/20 with .0x1f)",
            &[0, 1, 20, 0, 81, 2, 0x1f],
        ),
        ("non-zero scope in a query", &[0, 1, 24, 16, 81, 2, 3]),
    ];
    for (what, data) in cases {
        let q = Q::new("www.gslb.example.", RecordType::A).raw_ecs(data);
        for (via, raw) in [
            ("udp", udp_raw(srv.addr, &q.to_bytes())),
            ("tcp", tcp_raw(srv.addr, &q.to_bytes())),
        ] {
            let raw = raw.unwrap_or_else(|| panic!("{what}: no answer via {via}"));
            // The rcode's low 4 bits are in the header; FORMERR is 1 and needs no OPT.
            assert_eq!(raw[3] & 0x0f, 1, "{what} via {via}: expected FORMERR");
            assert_eq!(raw[2] & 0x80, 0x80, "{what}: QR");
        }
    }
    // The well-formed twin of the last case is answered.
    let ok = srv.udp(&Q::new("www.gslb.example.", RecordType::A).raw_ecs(&[0, 1, 24, 0, 81, 2, 3]));
    assert_eq!(ok.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&ok), vec!["192.0.2.20".parse::<IpAddr>().unwrap()]);
}

#[test]
fn source_prefix_zero_opts_out_and_gets_scope_zero() {
    // 127.0.0.0/8 (the test's own source) is pinned to sa-east by an override; the ECS address
    // 81.2.0.0 (London) must be ignored when its source prefix is 0.
    let srv = TestServer::with_zones(
        &[(
            "z.toml",
            &zone("[services.www]\n[geo.networks]\n\"127.0.0.0/8\" = [\"sa-east\"]\n"),
        )],
        Some(&sample_mmdb()),
    );
    let m = srv.udp(&Q::new("www.gslb.example.", RecordType::A).raw_ecs(&[0, 1, 0, 0]));
    assert_eq!(addrs(&m), vec!["192.0.2.40".parse::<IpAddr>().unwrap()]);
    let e = ecs_of(&m).expect("ECS echoed");
    assert_eq!((e.source_prefix(), e.scope_prefix()), (0, 0));
    // Without ECS: located by the source address, and no ECS option in the answer.
    let m = srv.udp(&Q::new("www.gslb.example.", RecordType::A).edns(1232));
    assert_eq!(addrs(&m), vec!["192.0.2.40".parse::<IpAddr>().unwrap()]);
    assert!(
        ecs_of(&m).is_none(),
        "no ECS in the query, none in the answer"
    );
    let m = srv.tcp(&Q::new("www.gslb.example.", RecordType::A));
    assert_eq!(addrs(&m), vec!["192.0.2.40".parse::<IpAddr>().unwrap()]);
    assert!(m.edns.is_none());
}

#[test]
fn overrides_win_over_the_database_most_specific_first() {
    let rules = r#"
[services.www]
[geo.networks]
"81.2.3.0/24" = ["sa-east"]
"81.2.0.0/16" = ["ap-southeast", "us-east"]
[geo.countries]
DE = ["us-east"]
[geo.continents]
EU = ["sa-east", "eu-west"]
AF = ["ap-southeast"]
[geo.default]
regions = ["eu-west"]
"#;
    let srv = TestServer::with_zones(&[("z.toml", &zone(rules))], Some(&sample_mmdb()));
    let ask = |ecs: &str| {
        let m = srv.udp(&Q::new("www.gslb.example.", RecordType::A).ecs(ecs));
        (addrs(&m), ecs_of(&m).map(|e| e.scope_prefix()))
    };
    let ip = |s: &str| vec![s.parse::<IpAddr>().unwrap()];
    // London: the /24 override beats the /16 override beats the EU continent rule.
    assert_eq!(ask("81.2.3.0/24"), (ip("192.0.2.40"), Some(24)));
    assert_eq!(ask("81.2.9.0/24").0, ip("192.0.2.30"));
    // Berlin: the country rule beats the continent rule.
    assert_eq!(ask("85.214.1.0/24").0, ip("192.0.2.10"));
    // Paris: the continent rule beats the database's nearest (eu-west).
    assert_eq!(ask("90.80.1.0/24").0, ip("192.0.2.40"));
    // Cairo (AF) goes to ap-southeast although eu-west is nearer.
    assert_eq!(ask("156.160.1.0/24").0, ip("192.0.2.30"));
    // Unknown to the database: the default list.
    assert_eq!(ask("192.0.2.0/24").0, ip("192.0.2.20"));
    // Tokyo (no rule): nearest, ap-southeast.
    assert_eq!(ask("110.32.1.0/24").0, ip("192.0.2.30"));
}

#[test]
fn unknown_addresses_fall_back_to_the_default_location_or_listed_order() {
    let at_dublin = TestServer::with_zones(
        &[(
            "z.toml",
            &zone("[services.www]\n[geo.default]\nlocation = [53.3, -6.3]\n"),
        )],
        Some(&sample_mmdb()),
    );
    let m = at_dublin.udp(&Q::new("www.gslb.example.", RecordType::A).ecs("198.51.100.0/24"));
    assert_eq!(addrs(&m), vec!["192.0.2.20".parse::<IpAddr>().unwrap()]);
    // No default given: the service's regions in the order listed.
    let listed = TestServer::with_zones(
        &[(
            "z.toml",
            &zone("[services.www]\nregions = [\"ap-southeast\", \"us-east\"]\n"),
        )],
        Some(&sample_mmdb()),
    );
    let m = listed.udp(&Q::new("www.gslb.example.", RecordType::A).ecs("198.51.100.0/24"));
    assert_eq!(addrs(&m), vec!["192.0.2.30".parse::<IpAddr>().unwrap()]);
    // And without any database at all, everyone gets that order, with scope 0.
    let nodb = TestServer::with_zones(&[("z.toml", &zone("[services.www]\n"))], None);
    let m = nodb.udp(&Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24"));
    assert_eq!(addrs(&m), vec!["192.0.2.10".parse::<IpAddr>().unwrap()]);
    assert_eq!(ecs_of(&m).unwrap().scope_prefix(), 0);
}

#[test]
fn several_answers_families_and_other_types() {
    let srv = TestServer::with_zones(
        &[(
            "z.toml",
            &zone(
                r#"
[regions.v4only]
location = [51.5, -0.1]
vips = ["198.51.100.7"]
[services.www]
answers = 2
ttl = 20
[services.v6]
regions = ["v4only"]
"#,
            ),
        )],
        Some(&sample_mmdb()),
    );
    // London: v4only (London) then eu-west (Dublin).
    let m = srv.udp(&Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24"));
    assert_eq!(
        addrs(&m),
        vec![
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "192.0.2.20".parse().unwrap()
        ]
    );
    assert!(m.answers.iter().all(|r| r.ttl == 20));
    // AAAA skips the region without IPv6: eu-west, then us-east.
    let m = srv.udp(&Q::new("www.gslb.example.", RecordType::AAAA).ecs("81.2.3.0/24"));
    assert_eq!(
        addrs(&m),
        vec![
            "2001:db8::20".parse::<IpAddr>().unwrap(),
            "2001:db8::10".parse().unwrap()
        ]
    );
    // A service with no IPv6 VIP at all: AAAA is NODATA with the SOA, scope 0 not required.
    let m = srv.udp(&Q::new("v6.gslb.example.", RecordType::AAAA).ecs("81.2.3.0/24"));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    // Other types at a service: NODATA with the SOA and scope 0 (not client-dependent).
    for t in [RecordType::TXT, RecordType::MX, RecordType::CNAME] {
        let m = srv.udp(&Q::new("www.gslb.example.", t).ecs("81.2.3.0/24"));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{t}");
        assert!(m.answers.is_empty(), "{t}");
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA, "{t}");
        assert_eq!(ecs_of(&m).unwrap().scope_prefix(), 0, "{t}");
    }
    // Static names and NXDOMAIN are not client-dependent: scope 0.
    let m = srv.udp(&Q::new("static.gslb.example.", RecordType::A).ecs("81.2.3.0/24"));
    assert_eq!(ecs_of(&m).unwrap().scope_prefix(), 0);
    let m = srv.udp(&Q::new("nope.gslb.example.", RecordType::A).ecs("81.2.3.0/24"));
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(ecs_of(&m).unwrap().scope_prefix(), 0);
    let m = srv.udp(&Q::new("example.com.", RecordType::A).ecs("81.2.3.0/24"));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(ecs_of(&m).unwrap().scope_prefix(), 0);
}

#[test]
fn health_snapshot_is_an_input_down_regions_are_skipped() {
    // Mark eu-west down (an operator override, applied by the health runner) and London moves
    // to its next nearest region.
    let srv = TestServer::with_zones(
        &[("z.toml", &zone("[services.www]\n"))],
        Some(&sample_mmdb()),
    );
    let q = Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24");
    assert_eq!(
        addrs(&srv.udp(&q)),
        vec!["192.0.2.20".parse::<IpAddr>().unwrap()]
    );
    srv.set_override(
        "gslb.example",
        "eu-west",
        None,
        gslbd::health::Override::ForceDown,
    );
    assert_eq!(
        addrs(&srv.udp(&q)),
        vec!["192.0.2.10".parse::<IpAddr>().unwrap()]
    );
}
