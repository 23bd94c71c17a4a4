//! Protocol details where gslbd answers as NSD and Knot do (issue 14), each over UDP and TCP:
//!
//! - master-file data served byte-exact: binary TXT, DS at a delegation, RFC 3597 types;
//! - the DO bit copied into the response's OPT (RFC 3225), on the fast and the general path;
//! - a CNAME chain into a delegation answered with the chain and the referral (RFC 1034 §4.3.2);
//! - ANY at a CNAME owner answered with the CNAME alone;
//! - QCLASS ANY answered from the IN data;
//! - Extended DNS Errors (RFC 8914) on refusals;
//! - TSIG: signed queries get NOTAUTH/BADKEY (RFC 8945 §5.2), a misplaced TSIG FORMERR;
//! - opcodes and meta-types: NOTIFY, UPDATE, AXFR/IXFR by transport and name, OPT/TSIG/TKEY as
//!   QTYPE;
//! - the query's spelling in every name that shares labels with it (0x20);
//! - NSID (RFC 5001) and DNS Cookies (RFC 7873, RFC 9018), with RRL letting valid cookies
//!   through and telling cookie clients BADCOOKIE.

use std::net::SocketAddr;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RData, RecordType};

use super::harness::*;

const ZONE: &str = r#"origin = "p.test."
ttl = 300
ns = ["ns1", "ns2.elsewhere.example."]
master_file = "p.test.zone"

[soa]
serial = 1
minimum = 60
"#;

const MASTER: &str = "\
ns1    A     192.0.2.1
mail   A     192.0.2.2
@      MX    10 mail
www    A     192.0.2.3
alias  CNAME www
deleg  CNAME host.sub
chain  CNAME deleg
sub    NS    ns.sub
ns.sub A     192.0.2.53
sub    DS    12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
bin    TXT   \"bin\\000\\255\" \"\\\"quoted\\\"\"
generic TYPE65534 \\# 4 0A000001
";

fn server() -> TestServer {
    TestServer::with_zones(&[("p.test.toml", ZONE), ("p.test.zone", MASTER)], None)
}

fn server_cfg(tweak: impl FnOnce(&mut gslbd::ServerConfig)) -> TestServer {
    TestServer::with_zones_cfg(
        &[("p.test.toml", ZONE), ("p.test.zone", MASTER)],
        None,
        tweak,
    )
}

fn rcode(m: &Message) -> ResponseCode {
    m.metadata.response_code
}

fn with_do(q: Q) -> Q {
    let mut q = q.edns(1232);
    if let Some(e) = q.edns.as_mut() {
        e.set_dnssec_ok(true);
    }
    q
}

/// The INFO-CODEs of the Extended DNS Errors in a response.
fn ede(m: &Message) -> Vec<u16> {
    m.edns
        .as_ref()
        .map(|e| {
            e.options()
                .options
                .iter()
                .filter_map(|(_, o)| match o {
                    EdnsOption::Unknown(15, d) if d.len() >= 2 => {
                        Some(u16::from_be_bytes([d[0], d[1]]))
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn option(m: &Message, code: u16) -> Option<Vec<u8>> {
    let e = m.edns.as_ref()?;
    match e.option(EdnsCode::from(code))? {
        EdnsOption::Unknown(_, d) => Some(d.clone()),
        EdnsOption::NSID(p) => Some(p.as_ref().to_vec()),
        _ => None,
    }
}

#[test]
fn master_file_data_is_served_byte_exact() {
    let srv = server();
    srv.both(&Q::new("bin.p.test.", RecordType::TXT), |m, via| {
        let RData::TXT(t) = &m.answers[0].data else {
            panic!("{via}\n{m}")
        };
        let strings: Vec<&[u8]> = t.txt_data.iter().map(|s| &s[..]).collect();
        assert_eq!(strings, [&b"bin\x00\xff"[..], &b"\"quoted\""[..]], "{via}");
    });
    // DS at a delegation: answered by the parent side, authoritative.
    srv.both(&Q::new("sub.p.test.", RecordType::DS), |m, via| {
        assert!(m.metadata.authoritative, "{via}\n{m}");
        assert_eq!(m.answers.len(), 1, "{via}\n{m}");
        assert_eq!(m.answers[0].record_type(), RecordType::DS, "{via}");
        let wire = raw_rdata(m, 0);
        assert_eq!(
            &wire[..4],
            &[0x30, 0x39, 13, 2],
            "{via}: key tag, algorithm, digest type"
        );
        assert_eq!(wire.len(), 4 + 32, "{via}");
        assert_eq!(wire[4], 0x01, "{via}");
    });
    srv.both(
        &Q::new("generic.p.test.", RecordType::from(65534)),
        |m, via| {
            assert_eq!(raw_rdata(m, 0), [10, 0, 0, 1], "{via}\n{m}");
        },
    );
}

/// The wire RDATA of answer `i` (re-encoded by hickory, uncompressed: for data types without
/// names it is the bytes as sent).
fn raw_rdata(m: &Message, i: usize) -> Vec<u8> {
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    m.answers[i].data.emit(&mut enc).unwrap();
    buf
}

#[test]
fn the_do_bit_is_copied_into_the_response() {
    // The example: a static name and a steered one take the fast path, NXDOMAIN the general.
    let srv = TestServer::example();
    for name in [
        "static.gslb.example.",
        "www.gslb.example.",
        "nope.gslb.example.",
    ] {
        srv.both(&with_do(Q::new(name, RecordType::A)), |m, via| {
            let e = m.edns.as_ref().expect("OPT in the response");
            assert!(e.flags().dnssec_ok, "{via} {name}: DO copied\n{m}");
        });
        srv.both(&Q::new(name, RecordType::A).edns(1232), |m, via| {
            let e = m.edns.as_ref().expect("OPT in the response");
            assert!(!e.flags().dnssec_ok, "{via} {name}: DO stays clear\n{m}");
        });
    }
}

#[test]
fn a_cname_into_a_delegation_is_followed_by_the_referral() {
    let srv = server();
    for name in ["deleg.p.test.", "chain.p.test."] {
        srv.both(&Q::new(name, RecordType::A), |m, via| {
            assert_eq!(rcode(m), ResponseCode::NoError, "{via}\n{m}");
            assert!(
                m.metadata.authoritative,
                "{via}: our CNAME is authoritative\n{m}"
            );
            let chain = rrs(&m.answers);
            assert!(
                chain.iter().all(|r| r.contains(" CNAME ")) && !chain.is_empty(),
                "{via}: {chain:?}"
            );
            assert_eq!(
                rrs(&m.authorities),
                ["sub.p.test. NS ns.sub.p.test."],
                "{via}: the child's NS\n{m}"
            );
            assert_eq!(
                rrs(&m.additionals),
                ["ns.sub.p.test. A 192.0.2.53"],
                "{via}: glue\n{m}"
            );
        });
    }
    // A plain referral stays non-authoritative.
    srv.both(&Q::new("x.sub.p.test.", RecordType::A), |m, via| {
        assert!(!m.metadata.authoritative, "{via}\n{m}");
        assert!(m.answers.is_empty(), "{via}\n{m}");
    });
}

#[test]
fn any_at_a_cname_owner_is_the_cname_alone() {
    let srv = server();
    srv.both(&Q::new("alias.p.test.", RecordType::ANY), |m, via| {
        assert_eq!(
            rrs(&m.answers),
            ["alias.p.test. CNAME www.p.test."],
            "{via}\n{m}"
        );
        assert!(m.metadata.authoritative, "{via}");
    });
}

#[test]
fn qclass_any_is_answered_from_the_in_data() {
    let srv = server();
    srv.both(
        &Q::new("www.p.test.", RecordType::A).class(DNSClass::ANY),
        |m, via| {
            assert_eq!(rcode(m), ResponseCode::NoError, "{via}\n{m}");
            assert!(m.metadata.authoritative, "{via}");
            assert_eq!(rrs(&m.answers), ["www.p.test. A 192.0.2.3"], "{via}\n{m}");
            assert_eq!(
                m.answers[0].dns_class,
                DNSClass::IN,
                "{via}: the data is IN"
            );
            assert_eq!(
                m.queries[0].query_class(),
                DNSClass::ANY,
                "{via}: question echoed"
            );
        },
    );
    srv.both(
        &Q::new("nope.p.test.", RecordType::A).class(DNSClass::ANY),
        |m, via| {
            assert_eq!(rcode(m), ResponseCode::NXDomain, "{via}\n{m}");
            assert_eq!(m.authorities.len(), 1, "{via}: SOA\n{m}");
        },
    );
    // Other classes stay refused, with EDE 21 (Not Supported) when the query has EDNS; as NSD
    // answers, the question is echoed for CHAOS only.
    for class in [DNSClass::CH, DNSClass::HS, DNSClass::NONE] {
        srv.both(
            &Q::new("www.p.test.", RecordType::A).class(class).edns(1232),
            |m, via| {
                assert_eq!(rcode(m), ResponseCode::Refused, "{via} {class}\n{m}");
                assert_eq!(ede(m), [21], "{via} {class}");
                assert_eq!(
                    m.queries.len(),
                    usize::from(class == DNSClass::CH),
                    "{via} {class}"
                );
            },
        );
    }
    // Who-are-you names in CHAOS are refused as prohibited (gslbd tells through NSID only).
    srv.both(
        &Q::new("version.bind.", RecordType::TXT)
            .class(DNSClass::CH)
            .edns(1232),
        |m, via| {
            assert_eq!(rcode(m), ResponseCode::Refused, "{via}\n{m}");
            assert_eq!(ede(m), [18], "{via}");
        },
    );
}

#[test]
fn refusals_carry_extended_dns_errors() {
    let srv = server();
    srv.both(
        &Q::new("www.example.org.", RecordType::A).edns(1232),
        |m, via| {
            assert_eq!(rcode(m), ResponseCode::Refused, "{via}\n{m}");
            assert_eq!(ede(m), [20], "{via}: Not Authoritative");
        },
    );
    // No EDNS in the query, no OPT (and so no EDE) in the answer.
    srv.both(&Q::new("www.example.org.", RecordType::A), |m, via| {
        assert_eq!(rcode(m), ResponseCode::Refused, "{via}");
        assert!(m.edns.is_none(), "{via}");
    });
    // A refused transfer says it is prohibited.
    let m = srv.tcp(&Q::new("p.test.", RecordType::AXFR).edns(1232));
    assert_eq!(rcode(&m), ResponseCode::Refused, "{m}");
    assert_eq!(ede(&m), [18]);
    // Answers carry none.
    srv.both(
        &Q::new("www.p.test.", RecordType::A).edns(1232),
        |m, via| {
            assert!(ede(m).is_empty(), "{via}");
        },
    );
}

#[test]
fn transfers_and_meta_types_are_answered_like_nsd() {
    let srv = server();
    let rc = |m: Message| rcode(&m);
    // AXFR over UDP: not implemented, whatever the name.
    for name in ["p.test.", "www.p.test."] {
        assert_eq!(
            rc(srv.udp(&Q::new(name, RecordType::AXFR))),
            ResponseCode::NotImp
        );
    }
    // At an apex (TCP, and IXFR over UDP): refused. Elsewhere: not authoritative.
    assert_eq!(
        rc(srv.tcp(&Q::new("p.test.", RecordType::AXFR))),
        ResponseCode::Refused
    );
    assert_eq!(
        rc(srv.tcp(&Q::new("p.test.", RecordType::IXFR))),
        ResponseCode::Refused
    );
    assert_eq!(
        rc(srv.udp(&Q::new("p.test.", RecordType::IXFR))),
        ResponseCode::Refused
    );
    for rtype in [RecordType::AXFR, RecordType::IXFR] {
        assert_eq!(
            rc(srv.tcp(&Q::new("www.p.test.", rtype))),
            ResponseCode::NotAuth
        );
        assert_eq!(
            rc(srv.tcp(&Q::new("example.org.", rtype))),
            ResponseCode::NotAuth
        );
    }
    // OPT, TSIG and TKEY as QTYPE are looked up like any type: NODATA with the SOA.
    for t in [41u16, 250, 249] {
        srv.both(&Q::new("www.p.test.", RecordType::from(t)), |m, via| {
            assert_eq!(rcode(m), ResponseCode::NoError, "{via} {t}\n{m}");
            assert!(m.answers.is_empty(), "{via} {t}");
            assert_eq!(m.authorities.len(), 1, "{via} {t}: SOA\n{m}");
            assert!(m.metadata.authoritative, "{via} {t}");
        });
    }
    // NOTIFY and UPDATE: we are no secondary and take no updates (Knot's NOTAUTH); other
    // opcodes are not implemented.
    for op in [OpCode::Notify, OpCode::Update] {
        srv.both(&Q::new("p.test.", RecordType::SOA).op(op), |m, via| {
            assert_eq!(rcode(m), ResponseCode::NotAuth, "{via} {op}\n{m}");
            assert_eq!(m.metadata.op_code, op, "{via}");
        });
    }
    srv.both(
        &Q::new("p.test.", RecordType::SOA).op(OpCode::Status),
        |m, via| assert_eq!(rcode(m), ResponseCode::NotImp, "{via}\n{m}"),
    );
}

/// `www.p.test. A` signed with TSIG key `foo.` (hmac-sha256, a made-up MAC), with `extra`
/// records after the TSIG.
fn signed_query(id: u16, after_tsig: bool) -> Vec<u8> {
    let mut m = vec![(id >> 8) as u8, id as u8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(b"\x03www\x01p\x04test\x00\x00\x01\x00\x01");
    let mut rdata = Vec::new();
    rdata.extend_from_slice(b"\x0bhmac-sha256\x00");
    rdata.extend_from_slice(&[0, 0, 0x6b, 0x1a, 0x2b, 0x3c]); // time signed (48 bits)
    rdata.extend_from_slice(&300u16.to_be_bytes()); // fudge
    rdata.extend_from_slice(&32u16.to_be_bytes());
    rdata.extend_from_slice(&[0xab; 32]); // MAC
    rdata.extend_from_slice(&id.to_be_bytes()); // original ID
    rdata.extend_from_slice(&[0, 0, 0, 0]); // error, other length
    m.extend_from_slice(b"\x03foo\x00\x00\xfa\x00\xff\x00\x00\x00\x00");
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend_from_slice(&rdata);
    if after_tsig {
        m[11] = 2;
        m.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 192, 0, 2, 1]);
    }
    m
}

fn both_raw(addr: SocketAddr, bytes: &[u8]) -> [(&'static str, Vec<u8>); 2] {
    [
        ("udp", udp_raw(addr, bytes).expect("UDP answer")),
        ("tcp", tcp_raw(addr, bytes).expect("TCP answer")),
    ]
}

#[test]
fn signed_queries_get_badkey_and_a_misplaced_tsig_formerr() {
    let srv = server();
    for (via, b) in both_raw(srv.addr, &signed_query(0x5151, false)) {
        let m = Message::from_vec(&b).expect("the BADKEY answer parses");
        assert_eq!(rcode(&m), ResponseCode::NotAuth, "{via}\n{m}");
        assert!(m.answers.is_empty(), "{via}: nothing is answered\n{m}");
        // hickory puts a last TSIG in `signature` with its DNSSEC features, else in additionals.
        let (name, t) = match m.signature() {
            Some(s) => (s.name.clone(), s.data.clone()),
            None => {
                let r = m.additionals.last().expect("a TSIG record, last");
                let RData::TSIG(t) = &r.data else {
                    panic!("{via}: the last record is not TSIG\n{m}")
                };
                (r.name.clone(), t.clone())
            }
        };
        assert_eq!(name.to_string(), "foo.", "{via}: the query's key name");
        assert_eq!(t.mac, Vec::<u8>::new(), "{via}: no MAC (RFC 8945 §5.2.1)");
        assert_eq!(u16::from(t.error.unwrap()), 17, "{via}: BADKEY");
        assert_eq!(t.oid, 0x5151, "{via}: original ID");
        assert_eq!(t.fudge, 300, "{via}");
        // dig's view: the raw record is the last one, ARCOUNT counts it.
        assert_eq!(b[11], 1, "{via}: one additional (the TSIG)");
    }
    for (via, b) in both_raw(srv.addr, &signed_query(0x5252, true)) {
        assert_eq!(b.len(), 12, "{via}: FORMERR, header only (as NSD)");
        assert_eq!(b[3] & 0x0f, 1, "{via}: FORMERR");
    }
}

#[test]
fn names_sharing_labels_with_the_question_are_spelled_as_asked() {
    let srv = server();
    // MX at the apex (the fast path's prebuilt answer when the case matches), the NXDOMAIN's
    // SOA, the NS set and its glue.
    srv.both(&Q::new("P.TeSt.", RecordType::MX), |m, via| {
        assert_eq!(
            rrs(&m.answers),
            ["P.TeSt. MX 10 mail.P.TeSt."],
            "{via}\n{m}"
        );
        assert_eq!(
            rrs(&m.additionals),
            ["mail.P.TeSt. A 192.0.2.2"],
            "{via}\n{m}"
        );
    });
    srv.both(&Q::new("NoPe.P.TeSt.", RecordType::A), |m, via| {
        let soa = &m.authorities[0];
        assert_eq!(soa.name.to_string(), "P.TeSt.", "{via}\n{m}");
        let RData::SOA(s) = &soa.data else { panic!() };
        assert_eq!(s.mname.to_string(), "ns1.P.TeSt.", "{via}");
    });
    srv.both(&Q::new("p.TEST.", RecordType::NS), |m, via| {
        let mut got = rrs(&m.answers);
        got.sort();
        assert_eq!(
            got,
            [
                "p.TEST. NS ns1.p.TEST.",
                "p.TEST. NS ns2.elsewhere.example."
            ],
            "{via}: only shared labels take the query's spelling\n{m}"
        );
        assert_eq!(rrs(&m.additionals), ["ns1.p.TEST. A 192.0.2.1"], "{via}");
    });
    // The SOA asked for directly: the fast path writes it; the same spelling.
    srv.both(&Q::new("P.TEST.", RecordType::SOA), |m, via| {
        let RData::SOA(s) = &m.answers[0].data else {
            panic!("{via}\n{m}")
        };
        assert_eq!(s.mname.to_string(), "ns1.P.TEST.", "{via}");
        assert_eq!(s.rname.to_string(), "hostmaster.P.TEST.", "{via}");
    });
}

#[test]
fn nsid_is_answered_when_configured() {
    let with = server_cfg(|c| c.nsid = Some(b"gslbd-test-1".to_vec()));
    let q = Q::new("www.p.test.", RecordType::A).option(EdnsOption::Unknown(3, Vec::new()));
    with.both(&q, |m, via| {
        assert_eq!(
            option(m, 3).as_deref(),
            Some(&b"gslbd-test-1"[..]),
            "{via}\n{m}"
        );
        assert_eq!(m.answers.len(), 1, "{via}");
    });
    // Not asked: not sent. Not configured: not sent.
    with.both(
        &Q::new("www.p.test.", RecordType::A).edns(1232),
        |m, via| {
            assert!(option(m, 3).is_none(), "{via}");
        },
    );
    let without = server();
    without.both(&q, |m, via| assert!(option(m, 3).is_none(), "{via}"));
}

fn cookie_query(name: &str, cookie: &[u8]) -> Q {
    Q::new(name, RecordType::A).option(EdnsOption::Unknown(10, cookie.to_vec()))
}

#[test]
fn client_cookies_get_server_cookies_and_bad_ones_formerr() {
    let srv = server_cfg(|c| c.cookie_secrets = Some(vec![[9; 16]]));
    let cc = [1u8, 2, 3, 4, 5, 6, 7, 8];
    srv.both(&cookie_query("www.p.test.", &cc), |m, via| {
        let got = option(m, 10).expect("a COOKIE option");
        assert_eq!(got.len(), 24, "{via}: client 8 + server 16");
        assert_eq!(&got[..8], &cc, "{via}: the client cookie echoed");
        assert_eq!(got[8], 1, "{via}: RFC 9018 version 1");
        assert_eq!(m.answers.len(), 1, "{via}: answered normally");
        // Sent back, the cookie is valid and answered again (with a fresh server cookie).
        let again = srv.udp(&cookie_query("www.p.test.", &got));
        assert_eq!(option(&again, 10).unwrap()[..8], cc);
        assert_eq!(again.answers.len(), 1);
    });
    // Other names and rcodes carry the cookie too.
    srv.both(&cookie_query("example.org.", &cc), |m, via| {
        assert_eq!(rcode(m), ResponseCode::Refused, "{via}");
        assert!(option(m, 10).is_some(), "{via}");
    });
    // RFC 7873 §5.2.2: a malformed COOKIE is FORMERR.
    for len in [3usize, 12, 41] {
        srv.both(&cookie_query("www.p.test.", &vec![7; len]), |m, via| {
            assert_eq!(rcode(m), ResponseCode::FormErr, "{via} {len}\n{m}");
        });
    }
    // Cookies off: the option is ignored like any unknown one.
    let off = server_cfg(|c| c.cookie_secrets = None);
    off.both(&cookie_query("www.p.test.", &cc), |m, via| {
        assert!(option(m, 10).is_none(), "{via}");
        assert_eq!(m.answers.len(), 1, "{via}");
    });
}

#[test]
fn rrl_lets_valid_cookies_through_and_tells_cookie_clients_badcookie() {
    let srv = server_cfg(|c| {
        c.cookie_secrets = Some(vec![[9; 16]]);
        c.rrl = Some(gslbd::dns::rrl::RrlConfig {
            responses_per_second: 2,
            slip: 1,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: vec![],
        });
    });
    let cc = [8u8, 7, 6, 5, 4, 3, 2, 1];
    // Learn a server cookie first (within the budget).
    let first = srv.udp(&cookie_query("www.p.test.", &cc));
    let full = option(&first, 10).expect("a server cookie");
    // Use up the budget, then: without a cookie → TC; with a client cookie only → BADCOOKIE
    // and a fresh server cookie; with the valid server cookie → answered, every time.
    for _ in 0..5 {
        srv.udp(&Q::new("www.p.test.", RecordType::A).edns(1232));
    }
    let plain = srv.udp(&Q::new("www.p.test.", RecordType::A).edns(1232));
    assert!(plain.metadata.truncation, "{plain}");
    let client_only = srv.udp(&cookie_query("www.p.test.", &cc));
    assert_eq!(
        rcode(&client_only),
        ResponseCode::BADCOOKIE,
        "{client_only}"
    );
    assert!(client_only.answers.is_empty());
    let fresh = option(&client_only, 10).expect("BADCOOKIE carries a server cookie");
    assert_eq!(fresh.len(), 24);
    for cookie in [&full, &fresh] {
        for _ in 0..10 {
            let m = srv.udp(&cookie_query("www.p.test.", cookie));
            assert_eq!(rcode(&m), ResponseCode::NoError, "{m}");
            assert_eq!(m.answers.len(), 1, "{m}");
            assert!(!m.metadata.truncation);
        }
    }
    // TCP is never limited.
    assert_eq!(srv.tcp(&cookie_query("www.p.test.", &cc)).answers.len(), 1);
}

#[test]
fn badvers_still_answers_the_cookie() {
    // RFC 7873 §5.2: the COOKIE is answered whatever the rcode, BADVERS included.
    let srv = server();
    let mut q = cookie_query("www.p.test.", &[1, 1, 1, 1, 1, 1, 1, 1]);
    if let Some(x) = q.edns.as_mut() {
        x.set_version(1);
    }
    srv.both(&q, |m, via| {
        // RCODE 16 (BADVERS): 0 in the header, 1 in the OPT's upper bits.
        let e = m.edns.as_ref().expect("OPT");
        assert_eq!(
            (e.rcode_high(), u16::from(rcode(m)) & 0xf),
            (1, 0),
            "{via}\n{m}"
        );
        assert!(option(m, 10).is_some(), "{via}");
    });
}
