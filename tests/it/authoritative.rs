//! Authoritative DNS semantics of static zones, over the wire (UDP and TCP).
//!
//! What this module proves:
//! - header flags: AA on every answer from our zones, RA never, RD copied; the ID and QR echoed;
//! - REFUSED (AA clear) outside our zones, for classes other than IN and ANY, and for zone
//!   transfers at our apexes;
//! - negative answers (RFC 2308): NXDOMAIN and NODATA (including empty non-terminals) carry the
//!   zone SOA with TTL min(SOA TTL, MINIMUM);
//! - CNAME chains inside the zone, out-of-zone targets, CNAME queries, loops, dangling targets;
//! - delegations: referrals without AA with NS and glue, DS answered by the parent side;
//! - apex SOA/NS and additional-section processing for NS and MX (and SRV);
//! - wildcards (RFC 4592): synthesis with the query name, deeper names, NODATA at the wildcard,
//!   and no synthesis for existing names or empty non-terminals;
//! - ANY answered minimally (RFC 8482);
//! - EDNS (RFC 6891): OPT echoed only when asked, payload min(client, 1232) floored at 512,
//!   BADVERS for version 1, unknown options ignored and not echoed;
//! - truncation: TC and no records when the answer exceeds 512 (no EDNS) or the EDNS limit,
//!   whole answers over TCP;
//! - QNAME case preserved in the question and the answer owner;
//! - NOTIMP for opcodes other than QUERY, NOTIFY and UPDATE (NOTAUTH), FORMERR for zero or two
//!   questions;
//! - no reply to responses or to packets shorter than a header, FORMERR or silence for
//!   malformed questions (compression loops included), and the server keeps answering.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::harness::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A test zone `t.test.` with SOA TTL (30) below its MINIMUM (300), CNAME oddities, a wildcard
/// beside existing names and empty non-terminals, and TXT sets of two sizes for truncation.
fn test_zone_text() -> String {
    let txt = |n: usize, tag: &str| -> String {
        (0..n)
            .map(|i| format!("\"{tag}-{i:02}-{}\"", "x".repeat(54)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"origin = "t.test."
ttl = 3600
ns = ["ns1"]

[soa]
serial = 7
ttl = 30
minimum = 300

[[records]]
name = "ns1"
type = "A"
data = "192.0.2.1"

[[records]]
name = "host"
type = "A"
data = "192.0.2.2"

[[records]]
name = "out"
type = "CNAME"
data = "target.example.net."

[[records]]
name = "dangling"
type = "CNAME"
data = "nowhere"

[[records]]
name = "loop-a"
type = "CNAME"
data = "loop-b"

[[records]]
name = "loop-b"
type = "CNAME"
data = "loop-a"

[[records]]
name = "self"
type = "CNAME"
data = "self"

[[records]]
name = "*.w"
type = "A"
data = "192.0.2.80"

[[records]]
name = "real.w"
type = "TXT"
data = "real"

[[records]]
name = "x.y.w"
type = "TXT"
data = "deep"

[[records]]
name = "mid"
type = "TXT"
data = [{mid}]

[[records]]
name = "big"
type = "TXT"
data = [{big}]
"#,
        mid = txt(10, "mid"),
        big = txt(40, "big"),
    )
}

fn test_zone() -> TestServer {
    TestServer::with_zones(&[("t.test.toml", &test_zone_text())], None)
}

fn example() -> TestServer {
    TestServer::example()
}

fn rcode(m: &Message) -> ResponseCode {
    m.metadata.response_code
}

/// `rrs` sorted, for order-independent comparisons.
fn sorted(records: &[Record]) -> Vec<String> {
    let mut v = rrs(records);
    v.sort();
    v
}

fn strings(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// A negative answer: `rc`, AA, no answers, exactly the zone SOA in authority with `ttl`.
fn assert_negative(m: &Message, via: &str, rc: ResponseCode, apex: &str, ttl: u32) {
    assert_eq!(rcode(m), rc, "{via}: rcode\n{m}");
    assert!(m.metadata.authoritative, "{via}: AA must be set\n{m}");
    assert!(m.answers.is_empty(), "{via}: no answers expected\n{m}");
    assert_eq!(m.authorities.len(), 1, "{via}: one SOA in authority\n{m}");
    let soa = &m.authorities[0];
    assert_eq!(soa.record_type(), RecordType::SOA, "{via}\n{m}");
    assert_eq!(soa.name.to_ascii(), apex, "{via}: SOA owner\n{m}");
    assert_eq!(soa.ttl, ttl, "{via}: negative SOA TTL\n{m}");
    assert!(m.additionals.is_empty(), "{via}: no additionals\n{m}");
}

/// A REFUSED answer: no records at all and AA clear.
fn assert_refused(m: &Message, via: &str) {
    assert_eq!(rcode(m), ResponseCode::Refused, "{via}\n{m}");
    assert!(!m.metadata.authoritative, "{via}: AA must be clear\n{m}");
    assert!(m.answers.is_empty(), "{via}\n{m}");
    assert!(m.authorities.is_empty(), "{via}\n{m}");
    assert!(m.additionals.is_empty(), "{via}\n{m}");
}

/// The server still answers a normal query over both transports.
fn assert_alive(srv: &TestServer) {
    srv.both(&Q::new("static.gslb.example.", RecordType::A), |m, via| {
        assert_eq!(rcode(m), ResponseCode::NoError, "{via}\n{m}");
        assert_eq!(
            addrs(m),
            vec![
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, 11)),
            ],
            "{via}\n{m}"
        );
    });
}

/// A 12-byte header: `id`, `flags`, QDCOUNT `qd`, the other counts 0.
fn header(id: u16, flags: u16, qd: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(12);
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&flags.to_be_bytes());
    h.extend_from_slice(&qd.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    h
}

/// A malformed request either gets FORMERR (with our ID) or no reply at all.
fn assert_formerr_or_silence(reply: Option<Vec<u8>>, id: u16, via: &str) {
    if let Some(bytes) = reply {
        let m = Message::from_vec(&bytes).expect("reply does not parse");
        assert_eq!(m.metadata.id, id, "{via}\n{m}");
        assert_eq!(m.metadata.message_type, MessageType::Response, "{via}");
        assert_eq!(rcode(&m), ResponseCode::FormErr, "{via}\n{m}");
        assert!(m.answers.is_empty(), "{via}\n{m}");
    }
}

fn soa_of(r: &Record) -> &hickory_proto::rr::rdata::SOA {
    match &r.data {
        RData::SOA(s) => s,
        other => panic!("not an SOA: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Header flags
// ---------------------------------------------------------------------------------------------

#[test]
fn aa_on_every_zone_answer_ra_clear_rd_copied() {
    let srv = example();
    let queries = [
        ("static.gslb.example.", RecordType::A),        // static data
        ("www.gslb.example.", RecordType::A),           // steered name
        ("gslb.example.", RecordType::SOA),             // apex
        ("gslb.example.", RecordType::NS),              // apex NS with glue
        ("nope.gslb.example.", RecordType::A),          // NXDOMAIN
        ("static.gslb.example.", RecordType::TXT),      // NODATA
        ("docs.gslb.example.", RecordType::A),          // CNAME chain
        ("anything.apps.gslb.example.", RecordType::A), // wildcard
        ("sub.gslb.example.", RecordType::DS),          // parent side of a cut
        ("legacy.gslb.example.", RecordType::TXT),      // master file data
    ];
    for (name, rtype) in queries {
        for rd in [false, true] {
            let mut q = Q::new(name, rtype);
            q.rd = rd;
            q.id = 0x1234;
            srv.both(&q, |m, via| {
                let ctx = format!("{via} {name} {rtype} rd={rd}");
                assert_eq!(m.metadata.id, 0x1234, "{ctx}: ID");
                assert_eq!(m.metadata.message_type, MessageType::Response, "{ctx}: QR");
                assert_eq!(m.metadata.op_code, OpCode::Query, "{ctx}: opcode");
                assert!(m.metadata.authoritative, "{ctx}: AA\n{m}");
                assert!(!m.metadata.recursion_available, "{ctx}: RA\n{m}");
                assert_eq!(m.metadata.recursion_desired, rd, "{ctx}: RD\n{m}");
                assert!(!m.metadata.truncation, "{ctx}: TC\n{m}");
                assert_eq!(m.queries.len(), 1, "{ctx}");
                assert_eq!(m.queries[0].name().to_ascii(), name, "{ctx}");
                assert_eq!(m.queries[0].query_type(), rtype, "{ctx}");
            });
        }
    }
}

#[test]
fn rd_is_copied_on_refused_and_referral_answers_too() {
    let srv = example();
    for rd in [false, true] {
        for (name, rtype) in [
            ("example.com.", RecordType::A),
            ("foo.sub.gslb.example.", RecordType::A),
        ] {
            let mut q = Q::new(name, rtype);
            q.rd = rd;
            srv.both(&q, |m, via| {
                assert_eq!(m.metadata.recursion_desired, rd, "{via} {name}\n{m}");
                assert!(!m.metadata.recursion_available, "{via} {name}\n{m}");
                assert!(!m.metadata.authoritative, "{via} {name}\n{m}");
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Outside our zones
// ---------------------------------------------------------------------------------------------

#[test]
fn names_outside_every_zone_are_refused_without_aa() {
    let srv = example();
    for (name, rtype) in [
        ("example.com.", RecordType::A),
        ("www.example.com.", RecordType::AAAA),
        ("example.", RecordType::SOA), // the parent of our zone
        (".", RecordType::NS),         // the root
        ("gslb.example.com.", RecordType::A),
        ("xgslb.example.", RecordType::A), // shares a suffix string, not a label
    ] {
        srv.both(&Q::new(name, rtype).rd(), |m, via| {
            assert_refused(m, &format!("{via} {name} {rtype}"));
            assert_eq!(m.queries[0].name().to_ascii(), name, "{via}");
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Negative answers (RFC 2308)
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_name_is_nxdomain_with_soa_and_negative_ttl() {
    let srv = example();
    for name in [
        "nope.gslb.example.",
        "a.b.c.gslb.example.",
        "x.static.gslb.example.", // below an existing leaf
        "foo.www.gslb.example.",  // below a steered name
        "ns3.gslb.example.",
    ] {
        for rtype in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
            srv.both(&Q::new(name, rtype), |m, via| {
                // example zone: SOA TTL 3600, MINIMUM 60 → 60.
                assert_negative(
                    m,
                    &format!("{via} {name} {rtype}"),
                    ResponseCode::NXDomain,
                    "gslb.example.",
                    60,
                );
                let soa = soa_of(&m.authorities[0]);
                assert_eq!(soa.serial, 2026112701);
                assert_eq!(soa.minimum, 60);
            });
        }
    }
}

#[test]
fn negative_soa_ttl_is_the_soa_ttl_when_below_minimum() {
    let srv = test_zone();
    // t.test: SOA TTL 30, MINIMUM 300 → 30.
    srv.both(&Q::new("missing.t.test.", RecordType::A), |m, via| {
        assert_negative(m, via, ResponseCode::NXDomain, "t.test.", 30);
        let soa = soa_of(&m.authorities[0]);
        assert_eq!(soa.minimum, 300, "{via}: MINIMUM is sent unchanged");
        assert_eq!(soa.serial, 7);
    });
    srv.both(&Q::new("host.t.test.", RecordType::AAAA), |m, via| {
        assert_negative(m, via, ResponseCode::NoError, "t.test.", 30);
    });
    // The SOA itself, asked for, keeps its own TTL.
    srv.both(&Q::new("t.test.", RecordType::SOA), |m, via| {
        assert_eq!(rcode(m), ResponseCode::NoError, "{via}");
        assert_eq!(m.answers.len(), 1, "{via}\n{m}");
        assert_eq!(m.answers[0].ttl, 30, "{via}\n{m}");
    });
}

#[test]
fn existing_name_without_the_type_is_nodata_with_soa() {
    let srv = example();
    for (name, rtype) in [
        ("static.gslb.example.", RecordType::TXT),
        ("static.gslb.example.", RecordType::AAAA),
        ("static.gslb.example.", RecordType::MX),
        ("mail.gslb.example.", RecordType::AAAA),
        ("www.gslb.example.", RecordType::TXT), // steered names answer A/AAAA only
        ("www.gslb.example.", RecordType::MX),
        ("gslb.example.", RecordType::A), // the apex has no address
        ("legacy.gslb.example.", RecordType::AAAA),
    ] {
        srv.both(&Q::new(name, rtype), |m, via| {
            assert_negative(
                m,
                &format!("{via} {name} {rtype}"),
                ResponseCode::NoError,
                "gslb.example.",
                60,
            );
        });
    }
}

#[test]
fn empty_non_terminals_are_nodata_not_nxdomain() {
    let srv = example();
    for name in [
        "_tcp.gslb.example.", // exists because of _sip._tcp
        "apps.gslb.example.", // exists because of *.apps
        "arpa.gslb.example.", // above 10.2.0.192.in-addr.arpa.gslb.example.
        "0.192.in-addr.arpa.gslb.example.",
    ] {
        for rtype in [RecordType::A, RecordType::TXT, RecordType::SRV] {
            srv.both(&Q::new(name, rtype), |m, via| {
                assert_negative(
                    m,
                    &format!("{via} {name} {rtype}"),
                    ResponseCode::NoError,
                    "gslb.example.",
                    60,
                );
            });
        }
    }
    // The leaf below the empty non-terminal answers.
    srv.both(
        &Q::new("_sip._tcp.gslb.example.", RecordType::SRV),
        |m, via| {
            assert_eq!(rcode(m), ResponseCode::NoError, "{via}");
            assert_eq!(
                rrs(&m.answers),
                vec!["_sip._tcp.gslb.example. SRV 10 60 5060 sip.gslb.example."],
                "{via}"
            );
            // RFC 2782: the target's address in additional.
            assert_eq!(
                rrs(&m.additionals),
                vec!["sip.gslb.example. A 203.0.113.60"],
                "{via}"
            );
        },
    );
}

// ---------------------------------------------------------------------------------------------
// CNAME
// ---------------------------------------------------------------------------------------------

#[test]
fn cname_to_static_name_is_followed_in_zone() {
    let srv = example();
    srv.both(&Q::new("docs.gslb.example.", RecordType::A), |m, via| {
        assert_eq!(rcode(m), ResponseCode::NoError, "{via}\n{m}");
        assert!(m.metadata.authoritative, "{via}");
        assert_eq!(
            rrs(&m.answers),
            vec![
                "docs.gslb.example. CNAME static.gslb.example.",
                "static.gslb.example. A 203.0.113.10",
                "static.gslb.example. A 203.0.113.11",
            ],
            "{via}"
        );
        assert_eq!(m.answers[0].ttl, 3600, "{via}: CNAME TTL");
        assert_eq!(m.answers[1].ttl, 300, "{via}: A TTL");
        assert_eq!(m.answers[2].ttl, 300, "{via}: A TTL");
        assert!(m.authorities.is_empty(), "{via}\n{m}");
    });
    // The target lacks AAAA: the CNAME, then NODATA for the target (SOA in authority).
    srv.both(&Q::new("docs.gslb.example.", RecordType::AAAA), |m, via| {
        assert_eq!(rcode(m), ResponseCode::NoError, "{via}\n{m}");
        assert_eq!(
            rrs(&m.answers),
            vec!["docs.gslb.example. CNAME static.gslb.example."],
            "{via}"
        );
        assert_eq!(rrs(&m.authorities).len(), 1, "{via}\n{m}");
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA, "{via}");
        assert_eq!(m.authorities[0].ttl, 60, "{via}");
    });
}

#[test]
fn cname_to_steered_name_answers_the_steered_address() {
    let srv = example();
    srv.both(&Q::new("api.gslb.example.", RecordType::A), |m, via| {
        assert_eq!(rcode(m), ResponseCode::NoError, "{via}\n{m}");
        assert!(m.metadata.authoritative, "{via}");
        // Loopback is unknown to the database: the zone's default puts us-east first.
        assert_eq!(
            rrs(&m.answers),
            vec![
                "api.gslb.example. CNAME www.gslb.example.",
                "www.gslb.example. A 192.0.2.10",
            ],
            "{via}"
        );
        assert_eq!(m.answers[0].ttl, 3600, "{via}");
        assert_eq!(m.answers[1].ttl, 30, "{via}: the service TTL");
    });
    srv.both(
        &Q::new("old-www.gslb.example.", RecordType::AAAA),
        |m, via| {
            assert_eq!(
                rrs(&m.answers),
                vec![
                    "old-www.gslb.example. CNAME www.gslb.example.",
                    "www.gslb.example. AAAA 2001:db8::10",
                ],
                "{via}"
            );
        },
    );
}

#[test]
fn cname_query_returns_only_the_cname() {
    let srv = example();
    srv.both(
        &Q::new("docs.gslb.example.", RecordType::CNAME),
        |m, via| {
            assert_eq!(rcode(m), ResponseCode::NoError, "{via}");
            assert!(m.metadata.authoritative, "{via}");
            assert_eq!(
                rrs(&m.answers),
                vec!["docs.gslb.example. CNAME static.gslb.example."],
                "{via}"
            );
            assert!(m.authorities.is_empty(), "{via}\n{m}");
            assert!(m.additionals.is_empty(), "{via}\n{m}");
        },
    );
    // A CNAME query at a name that has none is NODATA.
    srv.both(
        &Q::new("static.gslb.example.", RecordType::CNAME),
        |m, via| {
            assert_negative(m, via, ResponseCode::NoError, "gslb.example.", 60);
        },
    );
}

#[test]
fn cname_to_out_of_zone_target_answers_just_the_cname() {
    let srv = test_zone();
    for rtype in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
        srv.both(&Q::new("out.t.test.", rtype), |m, via| {
            assert_eq!(rcode(m), ResponseCode::NoError, "{via} {rtype}\n{m}");
            assert!(m.metadata.authoritative, "{via}");
            assert_eq!(
                rrs(&m.answers),
                vec!["out.t.test. CNAME target.example.net."],
                "{via} {rtype}"
            );
            assert!(m.authorities.is_empty(), "{via}\n{m}");
        });
    }
}

#[test]
fn cname_to_missing_in_zone_name_is_nxdomain_with_the_cname() {
    // RFC 6604 §3: the rcode is that of the last name in the chain.
    let srv = test_zone();
    srv.both(&Q::new("dangling.t.test.", RecordType::A), |m, via| {
        assert_eq!(rcode(m), ResponseCode::NXDomain, "{via}\n{m}");
        assert!(m.metadata.authoritative, "{via}");
        assert_eq!(
            rrs(&m.answers),
            vec!["dangling.t.test. CNAME nowhere.t.test."],
            "{via}"
        );
        assert_eq!(m.authorities.len(), 1, "{via}\n{m}");
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA, "{via}");
        assert_eq!(m.authorities[0].ttl, 30, "{via}");
    });
}

/// The loops of the test zone and the CNAMEs each must answer (each once).
const LOOPS: [(&str, &[&str]); 2] = [
    (
        "loop-a.t.test.",
        &[
            "loop-a.t.test. CNAME loop-b.t.test.",
            "loop-b.t.test. CNAME loop-a.t.test.",
        ],
    ),
    ("self.t.test.", &["self.t.test. CNAME self.t.test."]),
];

#[test]
fn cname_loop_terminates_with_an_answer() {
    let srv = test_zone();
    for (name, expected) in LOOPS {
        let start = Instant::now();
        srv.both(&Q::new(name, RecordType::A), |m, via| {
            assert_ne!(rcode(m), ResponseCode::ServFail, "{via} {name}\n{m}");
            assert_eq!(rcode(m), ResponseCode::NoError, "{via} {name}\n{m}");
            assert!(m.metadata.authoritative, "{via} {name}");
            // Only the loop's CNAMEs, starting at the query name.
            assert_eq!(m.answers[0].name.to_ascii(), name, "{via}\n{m}");
            let mut distinct = sorted(&m.answers);
            distinct.dedup();
            assert_eq!(distinct, strings(expected), "{via} {name}\n{m}");
        });
        assert!(start.elapsed() < Duration::from_secs(2), "{name}: slow");
    }
}

#[test]
fn cname_loop_answer_has_no_duplicate_records() {
    // RFC 2181 §5: RRs with equal name, class, type and data are meaningless twice; "servers
    // should suppress such duplicates if encountered".
    let srv = test_zone();
    for (name, expected) in LOOPS {
        srv.both(&Q::new(name, RecordType::A), |m, via| {
            assert_eq!(sorted(&m.answers), strings(expected), "{via} {name}\n{m}");
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Delegation
// ---------------------------------------------------------------------------------------------

fn assert_referral_to_sub(m: &Message, via: &str) {
    assert_eq!(rcode(m), ResponseCode::NoError, "{via}\n{m}");
    assert!(
        !m.metadata.authoritative,
        "{via}: a referral is not authoritative\n{m}"
    );
    assert!(m.answers.is_empty(), "{via}\n{m}");
    assert_eq!(
        sorted(&m.authorities),
        strings(&[
            "sub.gslb.example. NS ns1.sub.gslb.example.",
            "sub.gslb.example. NS ns2.sub.gslb.example.",
        ]),
        "{via}"
    );
    assert!(m.authorities.iter().all(|r| r.ttl == 3600), "{via}\n{m}");
    assert_eq!(
        sorted(&m.additionals),
        strings(&[
            "ns1.sub.gslb.example. A 198.51.100.1",
            "ns2.sub.gslb.example. AAAA 2001:db8:2::1",
        ]),
        "{via}"
    );
}

#[test]
fn names_at_and_below_a_delegation_get_a_referral_with_glue() {
    let srv = example();
    for (name, rtype) in [
        ("sub.gslb.example.", RecordType::A),
        ("sub.gslb.example.", RecordType::NS),
        ("sub.gslb.example.", RecordType::SOA),
        ("foo.sub.gslb.example.", RecordType::A),
        ("a.b.foo.sub.gslb.example.", RecordType::TXT),
        ("foo.sub.gslb.example.", RecordType::DS), // DS below the cut is the child's
        ("ns1.sub.gslb.example.", RecordType::A),  // glue is not authoritative data
    ] {
        srv.both(&Q::new(name, rtype), |m, via| {
            assert_referral_to_sub(m, &format!("{via} {name} {rtype}"));
        });
    }
}

#[test]
fn ds_at_a_delegation_is_answered_by_the_parent() {
    let srv = example();
    // RFC 4035 §3.1.4.1: the parent is authoritative for DS at the cut; none here → NODATA.
    srv.both(&Q::new("sub.gslb.example.", RecordType::DS), |m, via| {
        assert_negative(m, via, ResponseCode::NoError, "gslb.example.", 60);
    });
}

// ---------------------------------------------------------------------------------------------
// Apex and additional-section processing
// ---------------------------------------------------------------------------------------------

#[test]
fn apex_soa_is_answered_with_its_fields() {
    let srv = example();
    srv.both(&Q::new("gslb.example.", RecordType::SOA), |m, via| {
        assert_eq!(rcode(m), ResponseCode::NoError, "{via}");
        assert!(m.metadata.authoritative, "{via}");
        assert_eq!(m.answers.len(), 1, "{via}\n{m}");
        let r = &m.answers[0];
        assert_eq!(r.name.to_ascii(), "gslb.example.", "{via}");
        assert_eq!(r.ttl, 3600, "{via}: the SOA keeps its TTL when asked for");
        let soa = soa_of(r);
        assert_eq!(soa.mname.to_ascii(), "ns1.gslb.example.", "{via}");
        assert_eq!(soa.rname.to_ascii(), "hostmaster.gslb.example.", "{via}");
        assert_eq!(
            (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum),
            (2026112701, 3600, 600, 1209600, 60),
            "{via}"
        );
        assert!(m.authorities.is_empty(), "{via}\n{m}");
    });
}

#[test]
fn apex_ns_answer_carries_glue() {
    let srv = example();
    srv.both(&Q::new("gslb.example.", RecordType::NS), |m, via| {
        assert_eq!(rcode(m), ResponseCode::NoError, "{via}");
        assert!(m.metadata.authoritative, "{via}");
        assert_eq!(
            sorted(&m.answers),
            strings(&[
                "gslb.example. NS ns1.gslb.example.",
                "gslb.example. NS ns2.gslb.example.",
            ]),
            "{via}"
        );
        assert!(m.answers.iter().all(|r| r.ttl == 3600), "{via}\n{m}");
        assert_eq!(
            sorted(&m.additionals),
            strings(&[
                "ns1.gslb.example. A 192.0.2.53",
                "ns1.gslb.example. AAAA 2001:db8::53",
                "ns2.gslb.example. A 198.51.100.53",
                "ns2.gslb.example. AAAA 2001:db8:1::53",
            ]),
            "{via}"
        );
    });
}

#[test]
fn mx_answer_carries_the_in_zone_exchange_address() {
    let srv = example();
    srv.both(&Q::new("gslb.example.", RecordType::MX), |m, via| {
        assert_eq!(rcode(m), ResponseCode::NoError, "{via}");
        assert!(m.metadata.authoritative, "{via}");
        assert_eq!(
            sorted(&m.answers),
            strings(&[
                "gslb.example. MX 10 mail.gslb.example.",
                "gslb.example. MX 20 mail-backup.example.net.",
            ]),
            "{via}"
        );
        // Only the in-zone exchange has data here; mail has no AAAA.
        assert_eq!(
            rrs(&m.additionals),
            vec!["mail.gslb.example. A 192.0.2.25"],
            "{via}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Wildcards (RFC 4592)
// ---------------------------------------------------------------------------------------------

#[test]
fn wildcard_synthesizes_with_the_query_name() {
    let srv = example();
    for name in [
        "anything.apps.gslb.example.",
        "a.b.apps.gslb.example.", // the wildcard covers deeper names too
        "*.apps.gslb.example.",   // the wildcard's own name
    ] {
        srv.both(&Q::new(name, RecordType::A), |m, via| {
            assert_eq!(rcode(m), ResponseCode::NoError, "{via} {name}\n{m}");
            assert!(m.metadata.authoritative, "{via} {name}");
            assert_eq!(
                rrs(&m.answers),
                vec![format!("{name} A 203.0.113.80")],
                "{via} {name}"
            );
            assert_eq!(m.answers[0].ttl, 3600, "{via} {name}");
            assert!(m.authorities.is_empty(), "{via}\n{m}");
        });
    }
}

#[test]
fn wildcard_without_the_type_is_nodata() {
    let srv = example();
    srv.both(
        &Q::new("x.apps.gslb.example.", RecordType::AAAA),
        |m, via| {
            assert_negative(m, via, ResponseCode::NoError, "gslb.example.", 60);
        },
    );
}

#[test]
fn wildcard_does_not_match_existing_names_or_empty_non_terminals() {
    let srv = test_zone();
    // Control: a name that does not exist is synthesized.
    srv.both(&Q::new("other.w.t.test.", RecordType::A), |m, via| {
        assert_eq!(rcode(m), ResponseCode::NoError, "{via}\n{m}");
        assert_eq!(
            rrs(&m.answers),
            vec!["other.w.t.test. A 192.0.2.80"],
            "{via}"
        );
    });
    // real.w exists (TXT only): NODATA for A, not the wildcard's A.
    srv.both(&Q::new("real.w.t.test.", RecordType::A), |m, via| {
        assert_negative(m, via, ResponseCode::NoError, "t.test.", 30);
    });
    srv.both(&Q::new("real.w.t.test.", RecordType::TXT), |m, via| {
        assert_eq!(rrs(&m.answers), vec!["real.w.t.test. TXT real"], "{via}");
    });
    // y.w exists as an empty non-terminal (x.y.w has data): NODATA, not the wildcard.
    srv.both(&Q::new("y.w.t.test.", RecordType::A), |m, via| {
        assert_negative(m, via, ResponseCode::NoError, "t.test.", 30);
    });
    // Below y.w the closest encloser is y.w, which has no wildcard: NXDOMAIN (RFC 4592 §2.2.1).
    srv.both(&Q::new("z.y.w.t.test.", RecordType::A), |m, via| {
        assert_negative(m, via, ResponseCode::NXDomain, "t.test.", 30);
    });
    // Below real.w likewise.
    srv.both(&Q::new("a.real.w.t.test.", RecordType::A), |m, via| {
        assert_negative(m, via, ResponseCode::NXDomain, "t.test.", 30);
    });
}

// ---------------------------------------------------------------------------------------------
// ANY (RFC 8482)
// ---------------------------------------------------------------------------------------------

#[test]
fn any_is_answered_with_one_rrset() {
    let srv = example();
    srv.both(&Q::new("gslb.example.", RecordType::ANY), |m, via| {
        assert_eq!(rcode(m), ResponseCode::NoError, "{via}\n{m}");
        assert!(m.metadata.authoritative, "{via}");
        assert!(!m.answers.is_empty(), "{via}\n{m}");
        let t = m.answers[0].record_type();
        assert!(
            m.answers.iter().all(|r| r.record_type() == t),
            "{via}: one RRset only, not the whole node\n{m}"
        );
        assert!(
            m.answers
                .iter()
                .all(|r| r.name.to_ascii() == "gslb.example."),
            "{via}\n{m}"
        );
        // It is the node's whole RRset of that type.
        let direct = srv.tcp(&Q::new("gslb.example.", t));
        assert_eq!(sorted(&m.answers), sorted(&direct.answers), "{via}: {t}");
    });
    // A static name with one type answers that type.
    srv.both(
        &Q::new("static.gslb.example.", RecordType::ANY),
        |m, via| {
            assert_eq!(
                sorted(&m.answers),
                strings(&[
                    "static.gslb.example. A 203.0.113.10",
                    "static.gslb.example. A 203.0.113.11",
                ]),
                "{via}"
            );
        },
    );
    // legacy has A and TXT: one of them.
    srv.both(
        &Q::new("legacy.gslb.example.", RecordType::ANY),
        |m, via| {
            assert!(!m.answers.is_empty(), "{via}\n{m}");
            let t = m.answers[0].record_type();
            assert!(m.answers.iter().all(|r| r.record_type() == t), "{via}\n{m}");
        },
    );
    // ANY at a missing name is NXDOMAIN.
    srv.both(&Q::new("nope.gslb.example.", RecordType::ANY), |m, via| {
        assert_negative(m, via, ResponseCode::NXDomain, "gslb.example.", 60);
    });
}

// ---------------------------------------------------------------------------------------------
// EDNS (RFC 6891)
// ---------------------------------------------------------------------------------------------

/// `q` with EDNS, with the OPT's UDP payload field overwritten to `payload` (hickory's encoder
/// floors it at 512, so values below need patching).
fn with_raw_payload(q: &Q, payload: u16) -> Vec<u8> {
    let mut bytes = q.clone().edns(512).to_bytes();
    let n = bytes.len();
    // The OPT without options is the last 11 bytes: root, TYPE 41, CLASS (payload), TTL, RDLEN 0.
    assert_eq!(&bytes[n - 11..n - 6], &[0, 0, 41, 2, 0], "OPT layout");
    bytes[n - 8..n - 6].copy_from_slice(&payload.to_be_bytes());
    bytes
}

#[test]
fn edns_payload_is_min_of_client_and_ours_floored_at_512() {
    let srv = example();
    for (client, expected) in [(4096, 1232), (1232, 1232), (1000, 1000), (512, 512)] {
        srv.both(
            &Q::new("static.gslb.example.", RecordType::A).edns(client),
            |m, via| {
                assert_eq!(rcode(m), ResponseCode::NoError, "{via}");
                assert_eq!(addrs(m).len(), 2, "{via}\n{m}");
                let e = m.edns.as_ref().expect("OPT in the response");
                assert_eq!(e.version(), 0, "{via}");
                assert_eq!(e.max_payload(), expected, "{via}: client {client}");
            },
        );
    }
    // A client advertising less than 512 gets 512 (RFC 6891 §6.2.5).
    let bytes = with_raw_payload(&Q::new("static.gslb.example.", RecordType::A), 100);
    for (via, reply) in [
        ("udp", udp_raw(srv.addr, &bytes)),
        ("tcp", tcp_raw(srv.addr, &bytes)),
    ] {
        let m = Message::from_vec(&reply.expect("no answer")).unwrap();
        assert_eq!(rcode(&m), ResponseCode::NoError, "{via}");
        assert_eq!(addrs(&m).len(), 2, "{via}\n{m}");
        let e = m.edns.as_ref().expect("OPT in the response");
        assert_eq!(e.max_payload(), 512, "{via}");
        assert_eq!(e.version(), 0, "{via}");
    }
}

#[test]
fn no_opt_in_query_means_no_opt_in_response() {
    let srv = example();
    for q in [
        Q::new("static.gslb.example.", RecordType::A),
        Q::new("nope.gslb.example.", RecordType::A),
        Q::new("example.com.", RecordType::A),
        Q::new("static.gslb.example.", RecordType::A).op(OpCode::Status),
    ] {
        srv.both(&q, |m, via| {
            assert!(m.edns.is_none(), "{via} {}: unexpected OPT\n{m}", q.name);
            assert!(
                m.additionals
                    .iter()
                    .all(|r| r.record_type() != RecordType::OPT),
                "{via}"
            );
        });
    }
    // And with OPT, every kind of answer carries one.
    for q in [
        Q::new("nope.gslb.example.", RecordType::A).edns(1232),
        Q::new("example.com.", RecordType::A).edns(1232),
        Q::new("foo.sub.gslb.example.", RecordType::A).edns(1232),
        Q::new("static.gslb.example.", RecordType::A)
            .edns(1232)
            .op(OpCode::Status),
    ] {
        srv.both(&q, |m, via| {
            let e = m.edns.as_ref().expect("OPT in the response");
            assert_eq!(e.max_payload(), 1232, "{via} {}", q.name);
        });
    }
}

#[test]
fn edns_version_1_is_badvers_with_opt() {
    let srv = example();
    srv.both(
        &Q::new("static.gslb.example.", RecordType::A).edns_version(1),
        |m, via| {
            // RCODE 16 is BADVERS with an OPT (RFC 6891 §6.1.3) and BADSIG in TSIG (RFC 8945);
            // hickory decodes 16 as BADSIG, so compare the number.
            assert_eq!(u16::from(rcode(m)), 16, "{via}: BADVERS\n{m}");
            let e = m.edns.as_ref().expect("BADVERS needs an OPT to carry it");
            assert_eq!(e.rcode_high(), 1, "{via}: upper RCODE bits in the OPT");
            assert_eq!(e.version(), 0, "{via}: the version we implement");
            assert!(m.answers.is_empty(), "{via}\n{m}");
            assert!(m.authorities.is_empty(), "{via}\n{m}");
        },
    );
}

#[test]
fn unknown_edns_option_is_ignored_and_not_echoed() {
    let srv = example();
    let q = Q::new("static.gslb.example.", RecordType::A)
        .edns(1232)
        .option(EdnsOption::Unknown(65001, vec![1, 2, 3]));
    srv.both(&q, |m, via| {
        assert_eq!(rcode(m), ResponseCode::NoError, "{via}\n{m}");
        assert!(m.metadata.authoritative, "{via}");
        assert_eq!(
            rrs(&m.answers),
            vec![
                "static.gslb.example. A 203.0.113.10",
                "static.gslb.example. A 203.0.113.11",
            ],
            "{via}"
        );
        let e = m.edns.as_ref().expect("OPT in the response");
        assert!(
            e.option(EdnsCode::from(65001)).is_none(),
            "{via}: unknown option echoed\n{m}"
        );
        assert!(e.options().options.is_empty(), "{via}: {:?}", e.options());
    });
}

// ---------------------------------------------------------------------------------------------
// Truncation
// ---------------------------------------------------------------------------------------------

fn assert_truncated(m: &Message, via: &str) {
    assert!(m.metadata.truncation, "{via}: TC expected\n{m}");
    assert_eq!(rcode(m), ResponseCode::NoError, "{via}");
    assert!(m.answers.is_empty(), "{via}: no partial RRset\n{m}");
    assert!(m.authorities.is_empty(), "{via}\n{m}");
    assert!(m.additionals.is_empty(), "{via}\n{m}");
    assert_eq!(m.queries.len(), 1, "{via}: the question is kept");
}

#[test]
fn large_answer_truncates_over_udp_and_is_whole_over_tcp() {
    let srv = test_zone();
    let big = Q::new("big.t.test.", RecordType::TXT);
    // No EDNS: 512 bytes.
    assert_truncated(&srv.udp(&big), "udp");
    // EDNS 4096: still above our 1232 cap.
    let m = srv.udp(&big.clone().edns(4096));
    assert_truncated(&m, "udp edns 4096");
    assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(1232));
    // TCP: every record, no TC, with or without EDNS.
    for q in [big.clone(), big.clone().edns(4096)] {
        let m = srv.tcp(&q);
        assert!(!m.metadata.truncation, "tcp\n{m}");
        assert_eq!(rcode(&m), ResponseCode::NoError);
        assert_eq!(m.answers.len(), 40, "tcp");
        let mut texts: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), 40, "tcp: 40 distinct records");
        assert!(
            m.answers
                .iter()
                .all(|r| r.ttl == 3600 && r.name.to_ascii() == "big.t.test."),
            "tcp"
        );
    }
}

#[test]
fn medium_answer_truncates_at_512_but_fits_with_edns() {
    let srv = test_zone();
    // 10 TXT of 60 bytes: about 760 bytes.
    let mid = Q::new("mid.t.test.", RecordType::TXT);
    assert_truncated(&srv.udp(&mid), "udp no edns");
    assert_truncated(&srv.udp(&mid.clone().edns(512)), "udp edns 512");
    for payload in [1000, 1232, 4096] {
        let m = srv.udp(&mid.clone().edns(payload));
        assert!(!m.metadata.truncation, "udp edns {payload}\n{m}");
        assert_eq!(m.answers.len(), 10, "udp edns {payload}");
    }
    let m = srv.tcp(&mid);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 10);
}

#[test]
fn small_answer_is_not_truncated() {
    let srv = example();
    for q in [
        Q::new("static.gslb.example.", RecordType::A),
        Q::new("gslb.example.", RecordType::NS),
        Q::new("nope.gslb.example.", RecordType::A),
    ] {
        srv.both(&q, |m, via| {
            assert!(!m.metadata.truncation, "{via} {}\n{m}", q.name);
            assert!(!m.answers.is_empty() || !m.authorities.is_empty(), "{via}");
        });
    }
}

// ---------------------------------------------------------------------------------------------
// QNAME case
// ---------------------------------------------------------------------------------------------

#[test]
fn qname_case_is_preserved_in_question_and_answer() {
    let srv = example();
    for (name, rtype, ip) in [
        ("WwW.GsLb.ExAmPlE.", RecordType::A, "192.0.2.10"),
        ("StAtIc.gslb.example.", RecordType::A, "203.0.113.10"),
        ("AnYtHiNg.ApPs.gslb.example.", RecordType::A, "203.0.113.80"),
        ("MAIL.GSLB.EXAMPLE.", RecordType::A, "192.0.2.25"),
    ] {
        srv.both(&Q::new(name, rtype), |m, via| {
            assert_eq!(rcode(m), ResponseCode::NoError, "{via} {name}");
            assert_eq!(m.queries[0].name().to_ascii(), name, "{via}: question");
            assert!(!m.answers.is_empty(), "{via} {name}\n{m}");
            assert_eq!(m.answers[0].name.to_ascii(), name, "{via}: answer owner");
            assert_eq!(m.answers[0].data.to_string(), ip, "{via} {name}");
        });
    }
    // Negative answers echo the question's case too.
    srv.both(&Q::new("NoPe.GsLb.ExAmPlE.", RecordType::A), |m, via| {
        assert_eq!(rcode(m), ResponseCode::NXDomain, "{via}");
        assert_eq!(
            m.queries[0].name().to_ascii(),
            "NoPe.GsLb.ExAmPlE.",
            "{via}"
        );
    });
    // And a CNAME's owner.
    srv.both(&Q::new("DoCs.gslb.example.", RecordType::A), |m, via| {
        assert_eq!(m.answers[0].name.to_ascii(), "DoCs.gslb.example.", "{via}");
        assert_eq!(m.answers[0].record_type(), RecordType::CNAME, "{via}");
        assert_eq!(m.answers.len(), 3, "{via}\n{m}");
    });
}

// ---------------------------------------------------------------------------------------------
// Class, opcode, question count
// ---------------------------------------------------------------------------------------------

#[test]
fn classes_other_than_in_and_any_are_refused() {
    let srv = example();
    for (name, rtype) in [
        ("static.gslb.example.", RecordType::A),
        ("gslb.example.", RecordType::SOA),
        ("version.bind.", RecordType::TXT),
    ] {
        for class in [DNSClass::CH, DNSClass::HS, DNSClass::NONE] {
            srv.both(&Q::new(name, rtype).class(class), |m, via| {
                let ctx = format!("{via} {name} {rtype} {class}");
                assert_refused(m, &ctx);
                // The question is echoed for CHAOS; other classes get none (as NSD answers).
                if class == DNSClass::CH {
                    assert_eq!(m.queries[0].query_class(), class, "{ctx}");
                } else {
                    assert!(m.queries.is_empty(), "{ctx}");
                }
            });
        }
    }
    // Class ANY is answered from the IN data (tests/it/protocol.rs has the details).
    srv.both(
        &Q::new("static.gslb.example.", RecordType::A).class(DNSClass::ANY),
        |m, via| {
            assert_eq!(rcode(m), ResponseCode::NoError, "{via}\n{m}");
            assert_eq!(addrs(m).len(), 2, "{via}");
        },
    );
}

#[test]
fn opcodes_other_than_query_are_notimp_and_notify_and_update_notauth() {
    let srv = example();
    for op in [OpCode::Status, OpCode::Notify, OpCode::Update] {
        let want = if matches!(op, OpCode::Notify | OpCode::Update) {
            ResponseCode::NotAuth
        } else {
            ResponseCode::NotImp
        };
        for q in [
            Q::new("gslb.example.", RecordType::SOA).op(op),
            Q::new("static.gslb.example.", RecordType::A).op(op).rd(),
        ] {
            srv.both(&q, |m, via| {
                assert_eq!(rcode(m), want, "{via} {op}\n{m}");
                assert_eq!(m.metadata.op_code, op, "{via}: opcode echoed");
                assert_eq!(m.metadata.message_type, MessageType::Response, "{via}");
                assert_eq!(m.metadata.recursion_desired, q.rd, "{via}");
                assert!(m.answers.is_empty(), "{via}\n{m}");
                assert!(m.authorities.is_empty(), "{via}\n{m}");
            });
        }
    }
}

/// A query message with these questions.
fn with_questions(names: &[&str]) -> Vec<u8> {
    let mut m = Message::new(0x7777, MessageType::Query, OpCode::Query);
    for n in names {
        m.add_query(Query::query(Name::from_ascii(n).unwrap(), RecordType::A));
    }
    m.to_vec().unwrap()
}

#[test]
fn zero_or_two_questions_are_formerr() {
    let srv = example();
    for names in [
        &[][..],
        &["static.gslb.example.", "mail.gslb.example."][..],
        &["static.gslb.example.", "static.gslb.example."][..],
    ] {
        let bytes = with_questions(names);
        for (via, reply) in [
            ("udp", udp_raw(srv.addr, &bytes)),
            ("tcp", tcp_raw(srv.addr, &bytes)),
        ] {
            let m = Message::from_vec(&reply.expect("FORMERR expected, got nothing")).unwrap();
            let ctx = format!("{via} {} questions", names.len());
            assert_eq!(m.metadata.id, 0x7777, "{ctx}");
            assert_eq!(rcode(&m), ResponseCode::FormErr, "{ctx}\n{m}");
            assert!(m.answers.is_empty(), "{ctx}\n{m}");
            assert!(m.authorities.is_empty(), "{ctx}\n{m}");
        }
    }
    assert_alive(&srv);
}

// ---------------------------------------------------------------------------------------------
// Responses and malformed packets
// ---------------------------------------------------------------------------------------------

#[test]
fn a_response_gets_no_reply() {
    let srv = example();
    let mut m = Message::new(0x5151, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("static.gslb.example.").unwrap(),
        RecordType::A,
    ));
    assert_eq!(udp_raw(srv.addr, &m.to_vec().unwrap()), None);
    assert_alive(&srv);
}

#[test]
fn packet_shorter_than_a_header_gets_no_reply() {
    let srv = example();
    for bytes in [&[0x12, 0x34, 0x01, 0x00, 0x00][..], &[][..], &[0u8; 11][..]] {
        assert_eq!(udp_raw(srv.addr, bytes), None, "{} bytes", bytes.len());
    }
    assert_eq!(
        tcp_raw(srv.addr, &[0x12, 0x34, 0x01, 0x00, 0x00]),
        None,
        "tcp"
    );
    assert_alive(&srv);
}

#[test]
fn garbage_after_the_header_is_formerr_or_dropped() {
    let srv = example();
    let garbage: [&[u8]; 4] = [
        &[0x05, b'a', 0xff],                   // label longer than the packet
        &[0x41, 0x01, 0x02, 0x03, 0x04, 0x05], // reserved label type 01
        &[0x03, b'w', b'w', b'w', 0x00, 0x00], // name, then a cut-off type
        &[0xde, 0xad, 0xbe, 0xef, 0xde, 0xad], // noise
    ];
    for g in garbage {
        let mut bytes = header(0xbeef, 0x0100, 1);
        bytes.extend_from_slice(g);
        let start = Instant::now();
        assert_formerr_or_silence(udp_raw(srv.addr, &bytes), 0xbeef, "udp");
        assert_formerr_or_silence(tcp_raw(srv.addr, &bytes), 0xbeef, "tcp");
        assert!(start.elapsed() < Duration::from_secs(4), "{g:?}: hang");
        assert_alive(&srv);
    }
}

#[test]
fn compression_pointer_loop_is_formerr_or_dropped() {
    let srv = example();
    let names: [&[u8]; 3] = [
        &[0xc0, 0x0c],             // points at itself
        &[0x01, b'a', 0xc0, 0x0c], // a.<back to a.>…
        &[0xc0, 0x0e, 0xc0, 0x0c], // two pointers pointing at each other
    ];
    for name in names {
        let mut bytes = header(0xabcd, 0x0000, 1);
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(&[0x00, 0x01, 0x00, 0x01]); // A IN
        let start = Instant::now();
        assert_formerr_or_silence(udp_raw(srv.addr, &bytes), 0xabcd, "udp");
        assert_formerr_or_silence(tcp_raw(srv.addr, &bytes), 0xabcd, "tcp");
        assert!(start.elapsed() < Duration::from_secs(4), "{name:?}: hang");
        assert_alive(&srv);
    }
}

// ---------------------------------------------------------------------------------------------
// Zone transfers
// ---------------------------------------------------------------------------------------------

#[test]
fn zone_transfers_are_refused() {
    // As NSD answers: over TCP (and IXFR over UDP) at an apex REFUSED, AXFR over UDP NOTIMP,
    // for a name that is no apex of ours NOTAUTH.
    let srv = example();
    for rtype in [RecordType::AXFR, RecordType::IXFR] {
        let q = Q::new("gslb.example.", rtype);
        let m = srv.tcp(&q);
        assert_refused(&m, &format!("tcp {rtype}"));
        assert_eq!(m.queries[0].query_type(), rtype);
    }
    assert_refused(
        &srv.udp(&Q::new("gslb.example.", RecordType::IXFR)),
        "udp IXFR",
    );
    let m = srv.udp(&Q::new("gslb.example.", RecordType::AXFR));
    assert_eq!(rcode(&m), ResponseCode::NotImp, "{m}");
    // Not for a name the server is not authoritative for.
    let m = srv.tcp(&Q::new("example.com.", RecordType::AXFR));
    assert_eq!(rcode(&m), ResponseCode::NotAuth, "{m}");
    // And the address data is still served.
    assert_alive(&srv);
}
