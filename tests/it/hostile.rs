//! Hostile packets over UDP and TCP: malformed, lying, slow. Never a panic, a stall or a leak.
//!
//! Every case is a raw packet with one expected outcome per transport, asserted exactly:
//! a reply with a given RCODE (the ID and opcode echoed, QR set, no records), a drop (no reply; on
//! TCP the connection stays usable and answers the next query), or, on TCP only, a close. After
//! every case the server must answer a normal query over UDP and TCP promptly.
//!
//! What this module proves:
//! - headers: shorter than 12 bytes → dropped (UDP) / closed (TCP); counts that lie → FORMERR;
//!   questions cut mid-name, mid-type, mid-class → FORMERR; an empty body → FORMERR;
//! - names: compression loops, pointers to themselves, forward pointers and pointers past the end,
//!   in the question and in additional records → FORMERR; labels over 63 and names over 255
//!   bytes → FORMERR, a name of exactly 255 bytes is fine, and the longest names (120+ labels)
//!   cost about as much as any other query (no CPU amplification);
//! - EDNS (RFC 6891): OPT outside the additional section, two OPTs, a non-root owner, option
//!   framing that runs past the record or the message → FORMERR; unknown options ignored;
//!   version 1 → BADVERS; DO answered normally;
//! - ECS (RFC 7871): every malformation and two ECS options → FORMERR; SOURCE PREFIX-LENGTH 0 →
//!   an answer with scope 0;
//! - responses (QR set) are never answered, even when malformed (no reflection);
//! - classes other than IN and ANY → REFUSED; unknown types, and OPT, TSIG, TKEY as QTYPE →
//!   NODATA; NOTIFY and UPDATE → NOTAUTH, every other opcode but QUERY → NOTIMP;
//! - TCP: partial messages are closed after the idle timeout while others are served, slowloris
//!   is closed, lengths 0 and 1 close, pipelined queries are answered in order, half-sent
//!   prefixes free the connection, 200 idle connections do not block anyone;
//! - 20 000 mixed hostile UDP packets: resident memory grows < 20 MiB, no query waits ≥ 1 s.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use gslbd::config::ServerConfig;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RecordType;

use super::harness::*;

// ---------------------------------------------------------------------------------------------
// Servers, probes, outcomes
// ---------------------------------------------------------------------------------------------

/// The ID of every hostile packet (distinct from the probe's).
const ID: u16 = 0xb0d1;
/// The ID of the normal query that checks the server is alive.
const PROBE_ID: u16 = 0x7e57;
/// How soon a normal query must be answered after a hostile case.
const PROMPT: Duration = Duration::from_millis(500);
/// How soon another client must be answered while a connection is stuck or trickling.
const OTHERS: Duration = Duration::from_millis(100);
/// How long we wait for a reply we expect.
const WAIT: Duration = Duration::from_secs(2);

const STATIC: &str = "static.gslb.example.";
const WWW: &str = "www.gslb.example.";

/// Tests that measure latency or memory run one at a time, so that they do not disturb each other.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shipped example zones and geodata with a 1 s TCP idle timeout, plus `tweak`.
fn server_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let mut cfg =
        ServerConfig::for_zones(repo().join("zones"), vec!["127.0.0.1:0".parse().unwrap()]);
    cfg.geodata = Some(sample_mmdb());
    cfg.tcp_timeout = Duration::from_secs(1);
    tweak(&mut cfg);
    TestServer::from_config(cfg, None)
}

fn server() -> TestServer {
    server_with(|_| {})
}

fn open_tcp(srv: &TestServer) -> usize {
    srv.gslbd().dns.tcp.open.load(Relaxed) as usize
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn frame(msg: &[u8]) -> Vec<u8> {
    let mut f = (msg.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    f
}

fn probe_bytes() -> Vec<u8> {
    let mut q = Q::new(STATIC, RecordType::A);
    q.id = PROBE_ID;
    q.to_bytes()
}

/// The probe's answer is the static A set.
fn assert_probe_answer(bytes: &[u8], ctx: &str) {
    let m = Message::from_vec(bytes).unwrap_or_else(|e| panic!("{ctx}: {e}: {}", hex(bytes)));
    assert_eq!(m.metadata.id, PROBE_ID, "{ctx}: probe reply expected\n{m}");
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "{ctx}\n{m}"
    );
    assert_eq!(
        addrs(&m),
        vec![
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 11)),
        ],
        "{ctx}\n{m}"
    );
}

/// A normal query over UDP; returns how long the answer took. Panics without one within `WAIT`.
fn udp_probe(addr: SocketAddr, ctx: &str) -> Duration {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let t0 = Instant::now();
    sock.send_to(&probe_bytes(), addr).unwrap();
    let mut buf = vec![0u8; 65535];
    let n = match sock.recv(&mut buf) {
        Ok(n) => n,
        Err(e) => panic!("{ctx}: no UDP answer to a normal query: {e}"),
    };
    let took = t0.elapsed();
    assert_probe_answer(&buf[..n], &format!("{ctx} (udp probe)"));
    took
}

/// A normal query over a fresh TCP connection; returns how long connect + answer took.
fn tcp_probe(addr: SocketAddr, ctx: &str) -> Duration {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&frame(&probe_bytes())).unwrap();
    match read_frame(&mut s) {
        Got::Frame(b) => {
            let took = t0.elapsed();
            assert_probe_answer(&b, &format!("{ctx} (tcp probe)"));
            took
        }
        other => panic!("{ctx}: no TCP answer to a normal query: {other:?}"),
    }
}

/// The server answers a normal query over both transports within `PROMPT`.
fn assert_alive(srv: &TestServer, ctx: &str) {
    let u = udp_probe(srv.addr, ctx);
    assert!(u < PROMPT, "{ctx}: UDP answer took {u:?}");
    let t = tcp_probe(srv.addr, ctx);
    assert!(t < PROMPT, "{ctx}: TCP answer took {t:?}");
}

/// What a TCP read saw.
#[derive(Debug)]
enum Got {
    Frame(Vec<u8>),
    Closed,
    Timeout,
}

fn read_full(s: &mut TcpStream, buf: &mut [u8]) -> Result<(), Got> {
    let mut at = 0;
    while at < buf.len() {
        match s.read(&mut buf[at..]) {
            Ok(0) => return Err(Got::Closed),
            Ok(n) => at += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Got::Timeout);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) =>
            {
                return Err(Got::Closed);
            }
            Err(e) => panic!("TCP read: {e}"),
        }
    }
    Ok(())
}

/// Reads one length-prefixed message.
fn read_frame(s: &mut TcpStream) -> Got {
    let mut len = [0u8; 2];
    if let Err(g) = read_full(s, &mut len) {
        return g;
    }
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    match read_full(s, &mut buf) {
        Ok(()) => Got::Frame(buf),
        Err(g) => g,
    }
}

/// The outcome we require of one hostile packet on one transport.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// A reply with this RCODE.
    Rcode(ResponseCode),
    /// No reply; the server goes on (on TCP, the same connection answers the next query).
    NoReply,
    /// TCP only: the server closes the connection at once, without a reply.
    Close,
}

use Expect::{Close, NoReply};
const FORMERR: Expect = Expect::Rcode(ResponseCode::FormErr);
const REFUSED: Expect = Expect::Rcode(ResponseCode::Refused);
const NOTIMP: Expect = Expect::Rcode(ResponseCode::NotImp);
const NOERROR: Expect = Expect::Rcode(ResponseCode::NoError);
const NXDOMAIN: Expect = Expect::Rcode(ResponseCode::NXDomain);
const BADVERS: Expect = Expect::Rcode(ResponseCode::BADVERS);

/// One hostile packet and what each transport must do with it.
struct Case {
    what: String,
    bytes: Vec<u8>,
    udp: Expect,
    tcp: Expect,
}

fn case(what: impl Into<String>, bytes: Vec<u8>, udp: Expect, tcp: Expect) -> Case {
    Case {
        what: what.into(),
        bytes,
        udp,
        tcp,
    }
}

/// The same outcome over both transports.
fn same(what: impl Into<String>, bytes: Vec<u8>, expect: Expect) -> Case {
    case(what, bytes, expect, expect)
}

/// Checks a reply against the request: ID, QR, opcode echoed, RCODE; no records unless NOERROR
/// or NXDOMAIN. Returns the parsed reply.
fn check_reply(reply: &[u8], req: &[u8], rc: ResponseCode, ctx: &str) -> Message {
    let m = Message::from_vec(reply)
        .unwrap_or_else(|e| panic!("{ctx}: reply does not parse ({e}): {}", hex(reply)));
    // Compare numerically: 16 is BADVERS and BADSIG alike.
    assert_eq!(
        u16::from(m.metadata.response_code),
        u16::from(rc),
        "{ctx}: expected {rc}, got {}\n{m}",
        m.metadata.response_code
    );
    assert_eq!(
        m.metadata.message_type,
        MessageType::Response,
        "{ctx}: QR\n{m}"
    );
    if req.len() >= 2 {
        assert_eq!(
            m.metadata.id,
            u16::from_be_bytes([req[0], req[1]]),
            "{ctx}: ID echoed\n{m}"
        );
    }
    if req.len() >= 3 {
        assert_eq!(
            u8::from(m.metadata.op_code),
            (req[2] >> 3) & 0x0f,
            "{ctx}: opcode echoed\n{m}"
        );
    }
    if !matches!(rc, ResponseCode::NoError | ResponseCode::NXDomain) {
        assert!(m.answers.is_empty(), "{ctx}: no answers\n{m}");
        assert!(m.authorities.is_empty(), "{ctx}: no authorities\n{m}");
    }
    m
}

/// Sends `c` over UDP and checks the outcome; then that the server is alive.
fn run_udp(srv: &TestServer, c: &Case) -> Option<Message> {
    let ctx = format!("udp: {} [{}]", c.what, hex(&c.bytes));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.send_to(&c.bytes, srv.addr).unwrap();
    let mut buf = vec![0u8; 65535];
    let got = match c.udp {
        Expect::Rcode(rc) => {
            let n = sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("{ctx}: expected {rc}, got no reply ({e})"));
            Some(check_reply(&buf[..n], &c.bytes, rc, &ctx))
        }
        Expect::NoReply => {
            // Chase with a normal query on the same socket: its answer must be the only reply.
            sock.send_to(&probe_bytes(), srv.addr).unwrap();
            let mut others = Vec::new();
            let mut probe_seen = false;
            let deadline = Instant::now() + WAIT;
            loop {
                let left = if probe_seen {
                    Duration::from_millis(100)
                } else {
                    deadline.saturating_duration_since(Instant::now())
                };
                if left.is_zero() {
                    break;
                }
                sock.set_read_timeout(Some(left)).unwrap();
                match sock.recv(&mut buf) {
                    Ok(n) if !probe_seen && n >= 2 && buf[..2] == PROBE_ID.to_be_bytes() => {
                        assert_probe_answer(&buf[..n], &ctx);
                        probe_seen = true;
                    }
                    Ok(n) => others.push(buf[..n].to_vec()),
                    Err(_) => break,
                }
            }
            assert!(
                others.is_empty(),
                "{ctx}: expected no reply, got {:?}",
                others
                    .iter()
                    .map(|o| Message::from_vec(o)
                        .map(|m| m.to_string())
                        .unwrap_or_else(|_| hex(o)))
                    .collect::<Vec<_>>()
            );
            assert!(
                probe_seen,
                "{ctx}: the normal query after it was not answered"
            );
            None
        }
        Expect::Close => panic!("{ctx}: UDP cannot close"),
    };
    assert_alive(srv, &ctx);
    got
}

/// Sends `c` over a fresh TCP connection and checks the outcome; then that the server is alive.
fn run_tcp(srv: &TestServer, c: &Case) -> Option<Message> {
    let ctx = format!("tcp: {} [{}]", c.what, hex(&c.bytes));
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let t0 = Instant::now();
    s.write_all(&frame(&c.bytes)).unwrap();
    let got = match c.tcp {
        Expect::Rcode(rc) => match read_frame(&mut s) {
            Got::Frame(b) => Some(check_reply(&b, &c.bytes, rc, &ctx)),
            other => panic!("{ctx}: expected {rc}, got {other:?}"),
        },
        Expect::Close => {
            match read_frame(&mut s) {
                Got::Closed => {}
                Got::Frame(b) => panic!(
                    "{ctx}: expected a close, got a reply: {}",
                    Message::from_vec(&b)
                        .map(|m| m.to_string())
                        .unwrap_or_else(|_| hex(&b))
                ),
                Got::Timeout => panic!("{ctx}: expected a close, the connection stayed open"),
            }
            let took = t0.elapsed();
            assert!(took < PROMPT, "{ctx}: closed only after {took:?}");
            None
        }
        Expect::NoReply => {
            // No reply, and the connection is still in step: the next query is answered.
            if let Err(e) = s.write_all(&frame(&probe_bytes())) {
                panic!("{ctx}: connection unusable after the dropped message: {e}");
            }
            match read_frame(&mut s) {
                Got::Frame(b) => assert_probe_answer(&b, &ctx),
                other => panic!("{ctx}: the next query on the connection got {other:?}"),
            }
            None
        }
    };
    drop(s);
    assert_alive(srv, &ctx);
    got
}

/// Runs every case over both transports. Returns the (UDP, TCP) replies in order.
/// Every case runs even when an earlier one fails; the test then fails with the whole list.
fn run(srv: &TestServer, cases: &[Case]) -> Vec<(Option<Message>, Option<Message>)> {
    let mut failures = Vec::new();
    let mut soft = |f: &dyn Fn() -> Option<Message>| match std::panic::catch_unwind(
        std::panic::AssertUnwindSafe(f),
    ) {
        Ok(m) => m,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(msg);
            None
        }
    };
    let out = cases
        .iter()
        .map(|c| (soft(&|| run_udp(srv, c)), soft(&|| run_tcp(srv, c))))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} checks failed:\n\n{}",
        failures.len(),
        cases.len() * 2,
        failures.join("\n\n")
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Raw packet builders
// ---------------------------------------------------------------------------------------------

/// A header: ID, flags, QD/AN/NS/AR counts.
fn hdr(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut h = Vec::with_capacity(12);
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        h.extend_from_slice(&c.to_be_bytes());
    }
    h
}

/// An uncompressed wire name.
fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

fn question(name: &[u8], qtype: u16, qclass: u16) -> Vec<u8> {
    let mut q = name.to_vec();
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    q
}

/// A resource record with `owner` as wire bytes.
fn rr(owner: &[u8], rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    rr_rdlen(owner, rtype, class, ttl, rdata.len() as u16, rdata)
}

/// A resource record whose RDLENGTH says `rdlen`, whatever `rdata` holds.
fn rr_rdlen(owner: &[u8], rtype: u16, class: u16, ttl: u32, rdlen: u16, rdata: &[u8]) -> Vec<u8> {
    let mut r = owner.to_vec();
    r.extend_from_slice(&rtype.to_be_bytes());
    r.extend_from_slice(&class.to_be_bytes());
    r.extend_from_slice(&ttl.to_be_bytes());
    r.extend_from_slice(&rdlen.to_be_bytes());
    r.extend_from_slice(rdata);
    r
}

/// An OPT record (root owner, payload 1232) with this version, flags and RDATA.
fn opt(version: u8, flags: u16, rdata: &[u8]) -> Vec<u8> {
    rr(
        &[0],
        41,
        1232,
        (u32::from(version) << 16) | u32::from(flags),
        rdata,
    )
}

/// One EDNS option: code, length, data.
fn option(code: u16, data: &[u8]) -> Vec<u8> {
    let mut o = code.to_be_bytes().to_vec();
    o.extend_from_slice(&(data.len() as u16).to_be_bytes());
    o.extend_from_slice(data);
    o
}

/// A query for `name`/`qtype`/IN with `flags` and these additional records.
fn query_with(flags: u16, name: &str, qtype: u16, additional: &[Vec<u8>]) -> Vec<u8> {
    let mut m = hdr(ID, flags, [1, 0, 0, additional.len() as u16]);
    m.extend(question(&wire_name(name), qtype, 1));
    for r in additional {
        m.extend_from_slice(r);
    }
    m
}

/// `static.gslb.example. A IN` with these additional records.
fn static_query(additional: &[Vec<u8>]) -> Vec<u8> {
    query_with(0, STATIC, 1, additional)
}

/// `www.gslb.example. A IN` with EDNS carrying these OPTION bytes.
fn edns_query(options: &[u8]) -> Vec<u8> {
    query_with(0, WWW, 1, &[opt(0, 0, options)])
}

/// `www.gslb.example. A IN` with one ECS option of exactly these OPTION-DATA bytes.
fn ecs_query(data: &[u8]) -> Vec<u8> {
    edns_query(&option(8, data))
}

/// Offset just past the question of a `static_query` (12 + 21-byte name + 4).
const STATIC_Q_END: u8 = 12 + 21 + 4;

// ---------------------------------------------------------------------------------------------
// Case lists (shared with the memory test)
// ---------------------------------------------------------------------------------------------

fn truncated_header_cases() -> Vec<Case> {
    let full = static_query(&[]);
    (0..12)
        .map(|n| {
            case(
                format!("{n}-byte header"),
                full[..n].to_vec(),
                NoReply,
                Close,
            )
        })
        .collect()
}

fn lying_count_cases() -> Vec<Case> {
    let q = question(&wire_name(STATIC), 1, 1);
    let with = |counts: [u16; 4]| {
        let mut m = hdr(ID, 0, counts);
        m.extend_from_slice(&q);
        m
    };
    vec![
        same("QDCOUNT 3, one question", with([3, 0, 0, 0]), FORMERR),
        same(
            "QDCOUNT 65535, one question",
            with([65535, 0, 0, 0]),
            FORMERR,
        ),
        same("ANCOUNT 50, no answers", with([1, 50, 0, 0]), FORMERR),
        same("NSCOUNT 1, no authority", with([1, 0, 1, 0]), FORMERR),
        same("ARCOUNT 1, no OPT", with([1, 0, 0, 1]), FORMERR),
        same(
            "ARCOUNT 65535, one OPT",
            {
                let mut m = with([1, 0, 0, 65535]);
                m.extend(opt(0, 0, &[]));
                m
            },
            FORMERR,
        ),
        // The question is trailing garbage: zero questions is a format error (RFC 9619).
        same("QDCOUNT 0, a question after", with([0, 0, 0, 0]), FORMERR),
    ]
}

fn cut_question_cases() -> Vec<Case> {
    let full = static_query(&[]);
    let name_end = 12 + wire_name(STATIC).len();
    let mut cases = vec![
        same("question cut mid-label", full[..15].to_vec(), FORMERR),
        same(
            "question cut after a label length",
            full[..19].to_vec(),
            FORMERR,
        ),
        same(
            "question cut before the root label",
            full[..name_end - 1].to_vec(),
            FORMERR,
        ),
        same(
            "question cut after the name",
            full[..name_end].to_vec(),
            FORMERR,
        ),
        same(
            "question cut mid-type",
            full[..name_end + 1].to_vec(),
            FORMERR,
        ),
        same(
            "question cut before the class",
            full[..name_end + 2].to_vec(),
            FORMERR,
        ),
        same(
            "question cut mid-class",
            full[..name_end + 3].to_vec(),
            FORMERR,
        ),
    ];
    // The header alone, with one question announced.
    cases.push(same(
        "empty body after a header with QDCOUNT 1",
        hdr(ID, 0, [1, 0, 0, 0]),
        FORMERR,
    ));
    cases.push(same(
        "empty body after a header with every count 0",
        hdr(ID, 0, [0, 0, 0, 0]),
        FORMERR,
    ));
    cases
}

fn pointer_cases() -> Vec<Case> {
    let q_with_name = |name: &[u8], tail: &[u8]| {
        let mut m = hdr(ID, 0, [1, 0, 0, 0]);
        m.extend(question(name, 1, 1));
        m.extend_from_slice(tail);
        m
    };
    // Additional-section records start right after a static question.
    let at = STATIC_Q_END;
    let rdata_at = at + 2 + 10; // after a 2-byte (pointer) owner and the fixed fields
    vec![
        same(
            "question name points at itself",
            q_with_name(&[0xc0, 12], &[]),
            FORMERR,
        ),
        same(
            "question label then a pointer back to it (loop)",
            q_with_name(&[1, b'a', 0xc0, 12], &[]),
            FORMERR,
        ),
        same(
            "question: two pointers at each other",
            q_with_name(&[0xc0, 14, 0xc0, 12], &[]),
            FORMERR,
        ),
        same(
            "question name is a forward pointer to a valid name after it",
            q_with_name(&[0xc0, 18], &wire_name(STATIC)),
            FORMERR,
        ),
        same(
            "question pointer past the end",
            q_with_name(&[0xc0, 0xff], &[]),
            FORMERR,
        ),
        same(
            "question pointer 0x3fff",
            q_with_name(&[0xff, 0xff], &[]),
            FORMERR,
        ),
        same(
            "question pointer cut after its first byte",
            {
                let mut m = hdr(ID, 0, [1, 0, 0, 0]);
                m.push(0xc0);
                m
            },
            FORMERR,
        ),
        same(
            "additional owner points at itself",
            static_query(&[rr(&[0xc0, at], 1, 1, 0, &[192, 0, 2, 1])]),
            FORMERR,
        ),
        same(
            "additional owner: label then a pointer back to it (loop)",
            static_query(&[rr(&[1, b'a', 0xc0, at], 1, 1, 0, &[192, 0, 2, 1])]),
            FORMERR,
        ),
        same(
            "additional owner is a forward pointer into its RDATA",
            static_query(&[rr(&[0xc0, rdata_at], 10, 1, 0, &wire_name("x."))]),
            FORMERR,
        ),
        same(
            "additional owner pointer past the end",
            static_query(&[rr(&[0xc0, 0xf0], 1, 1, 0, &[192, 0, 2, 1])]),
            FORMERR,
        ),
        same(
            "additional CNAME whose RDATA points at itself",
            static_query(&[rr(&[0xc0, 12], 5, 1, 0, &[0xc0, rdata_at])]),
            FORMERR,
        ),
        same(
            "additional CNAME whose RDATA points past the end",
            static_query(&[rr(&[0xc0, 12], 5, 1, 0, &[0xc0, 0xfe])]),
            FORMERR,
        ),
        same(
            "additional A with RDLENGTH past the end",
            static_query(&[rr_rdlen(&[0xc0, 12], 1, 1, 0, 200, &[192, 0, 2, 1])]),
            FORMERR,
        ),
        same(
            "additional A with RDLENGTH 0",
            static_query(&[rr(&[0xc0, 12], 1, 1, 0, &[])]),
            FORMERR,
        ),
        // Control: a proper backward pointer in an additional record is fine (and ignored).
        same(
            "additional A with a backward pointer to the question name",
            static_query(&[rr(&[0xc0, 12], 1, 1, 0, &[192, 0, 2, 1])]),
            NOERROR,
        ),
    ]
}

/// A wire name of `n` one-letter labels followed by `tail` (wire, with its root label).
fn many_labels(n: usize, tail: &[u8]) -> Vec<u8> {
    let mut name = Vec::new();
    for _ in 0..n {
        name.extend_from_slice(&[1, b'a']);
    }
    name.extend_from_slice(tail);
    name
}

fn long_name_cases() -> Vec<Case> {
    let q = |name: &[u8]| {
        let mut m = hdr(ID, 0, [1, 0, 0, 0]);
        m.extend(question(name, 1, 1));
        m
    };
    let zone = wire_name("gslb.example.");
    let mut label64 = vec![64];
    label64.extend_from_slice(&[b'x'; 64]);
    label64.extend_from_slice(&zone);
    let mut label63 = vec![63];
    label63.extend_from_slice(&[b'x'; 63]);
    label63.extend_from_slice(&zone);
    // 119 × "a" (238 bytes) + "bb" (3) + gslb.example. (14) = 255 bytes: the longest legal name.
    let mut longest = many_labels(119, &[2, b'b', b'b']);
    longest.extend_from_slice(&zone);
    assert_eq!(longest.len(), 255);
    let mut too_long = many_labels(120, &[2, b'b', b'b']);
    too_long.extend_from_slice(&zone);
    assert_eq!(too_long.len(), 257);
    // Four 63-byte labels: 256 bytes with the root.
    let mut big_labels = Vec::new();
    for _ in 0..4 {
        big_labels.push(63);
        big_labels.extend_from_slice(&[b'y'; 63]);
    }
    big_labels.push(0);
    vec![
        same("a 64-byte label", q(&label64), FORMERR),
        same("label length 0x7f", q(&[0x7f, b'a', 0]), FORMERR),
        same(
            "label length 0xbf (reserved 10 type)",
            q(&[0xbf, 0]),
            FORMERR,
        ),
        same("a 257-byte name of 121 labels", q(&too_long), FORMERR),
        same(
            "a 4000-byte name of 2000 labels",
            q(&many_labels(2000, &[0])),
            FORMERR,
        ),
        same(
            "a 256-byte name of four 63-byte labels",
            q(&big_labels),
            FORMERR,
        ),
        // Controls: the limits themselves are legal.
        same("a 63-byte label in our zone", q(&label63), NXDOMAIN),
        same("a 255-byte name in our zone", q(&longest), NXDOMAIN),
    ]
}

fn opt_placement_cases() -> Vec<Case> {
    let q = question(&wire_name(STATIC), 1, 1);
    let with = |counts: [u16; 4], records: &[Vec<u8>]| {
        let mut m = hdr(ID, 0, counts);
        m.extend_from_slice(&q);
        for r in records {
            m.extend_from_slice(r);
        }
        m
    };
    vec![
        same(
            "OPT in the answer section",
            with([1, 1, 0, 0], &[opt(0, 0, &[])]),
            FORMERR,
        ),
        same(
            "OPT in the authority section",
            with([1, 0, 1, 0], &[opt(0, 0, &[])]),
            FORMERR,
        ),
        // RFC 6891 §6.1.1: "If a query message with more than one OPT RR is received, a FORMERR
        // (RCODE=1) MUST be returned."
        same(
            "two OPT records",
            with([1, 0, 0, 2], &[opt(0, 0, &[]), opt(0, 0, &[])]),
            FORMERR,
        ),
        // RFC 6891 §6.1.2: NAME MUST be 0 (root domain).
        same(
            "OPT with owner gslb.example.",
            with(
                [1, 0, 0, 1],
                &[rr(&wire_name("gslb.example."), 41, 1232, 0, &[])],
            ),
            FORMERR,
        ),
        same(
            "OPT with a compressed non-root owner",
            with([1, 0, 0, 1], &[rr(&[0xc0, 12], 41, 1232, 0, &[])]),
            FORMERR,
        ),
    ]
}

fn option_framing_cases() -> Vec<Case> {
    let q = edns_query;
    vec![
        // OPTION-LENGTH larger than the whole RDATA.
        same(
            "option length 50 in an 8-byte OPT RDATA",
            q(&[0, 10, 0, 50, 1, 2, 3, 4]),
            FORMERR,
        ),
        // OPTION-LENGTH within RDLENGTH but past the end of the record.
        same(
            "COOKIE option of length 8 with 4 bytes left in the record",
            q(&[0, 10, 0, 8, 1, 2, 3, 4]),
            FORMERR,
        ),
        same(
            "ECS option of length 8 with 4 bytes left in the record",
            q(&[0, 8, 0, 8, 0, 1, 24, 0]),
            FORMERR,
        ),
        same(
            "valid ECS then an option of length 4 with 1 byte left",
            {
                let mut o = option(8, &[0, 1, 24, 0, 81, 2, 3]);
                o.extend_from_slice(&[0xfd, 0xe9, 0, 4, 0xaa]);
                q(&o)
            },
            FORMERR,
        ),
        same("OPT RDATA of one stray byte", q(&[0xde]), FORMERR),
        same(
            "OPT RDATA of three stray bytes",
            q(&[0xde, 0xad, 0xbe]),
            FORMERR,
        ),
        same(
            "a valid option then one stray byte",
            {
                let mut o = option(65001, b"ok");
                o.push(0xff);
                q(&o)
            },
            FORMERR,
        ),
        same(
            "OPT RDLENGTH past the end of the message",
            query_with(
                0,
                WWW,
                1,
                &[rr_rdlen(&[0], 41, 1232, 0, 40, &[0, 10, 0, 0])],
            ),
            FORMERR,
        ),
    ]
}

fn ecs_malformation_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = [
        ("family 0", &[0, 0, 24, 0, 81, 2, 3][..]),
        ("family 3", &[0, 3, 24, 0, 81, 2, 3]),
        ("family 65535", &[0xff, 0xff, 0, 0]),
        ("IPv4 source prefix 33", &[0, 1, 33, 0, 81, 2, 3, 4, 5]),
        ("IPv4 source prefix 255", &[0, 1, 255, 0, 81, 2, 3, 4]),
        ("IPv6 source prefix 129", &[0, 2, 129, 0]),
        ("IPv4 /24 with 2 address bytes", &[0, 1, 24, 0, 81, 2]),
        ("IPv4 /32 with no address", &[0, 1, 32, 0]),
        ("IPv6 /48 with 2 address bytes", &[0, 2, 48, 0, 0x20, 0x01]),
        ("IPv4 /16 with 4 address bytes", &[0, 1, 16, 0, 81, 2, 0, 0]),
        ("IPv4 /0 with an address byte", &[0, 1, 0, 0, 81]),
        (
            "IPv6 /32 with 16 address bytes",
            &[
                0, 2, 32, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ),
        (
            "IPv4 /20 with bits past the prefix",
            &[0, 1, 20, 0, 81, 2, 0x11],
        ),
        ("IPv4 /1 with bits past the prefix", &[0, 1, 1, 0, 0x40]),
        (
            "IPv6 /50 with bits past the prefix",
            &[0, 2, 50, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x3f],
        ),
        ("non-zero scope in a query", &[0, 1, 24, 16, 81, 2, 3]),
        ("scope 255 with source 0", &[0, 1, 0, 255]),
        ("option length 0", &[]),
        ("option length 1", &[0]),
        ("option length 2", &[0, 1]),
        ("option length 3", &[0, 1, 24]),
    ]
    .into_iter()
    .map(|(what, data)| same(format!("ECS {what}"), ecs_query(data), FORMERR))
    .collect();
    let two = |a: &[u8], b: &[u8]| {
        let mut o = option(8, a);
        o.extend(option(8, b));
        edns_query(&o)
    };
    cases.push(same(
        "two valid ECS options",
        two(&[0, 1, 24, 0, 81, 2, 3], &[0, 1, 24, 0, 81, 2, 3]),
        FORMERR,
    ));
    cases.push(same(
        "two ECS options, the second malformed",
        two(&[0, 1, 24, 0, 81, 2, 3], &[0, 1, 24, 8, 81, 2, 3]),
        FORMERR,
    ));
    cases.push(same(
        "two ECS options around an unknown one",
        {
            let mut o = option(8, &[0, 1, 24, 0, 81, 2, 3]);
            o.extend(option(65001, b"x"));
            o.extend(option(8, &[0, 2, 0, 0]));
            edns_query(&o)
        },
        FORMERR,
    ));
    cases
}

/// A header flag word with this opcode and the QR bit.
fn flags(qr: bool, opcode: u8) -> u16 {
    (u16::from(qr) << 15) | (u16::from(opcode) << 11)
}

fn response_cases() -> Vec<Case> {
    vec![
        same(
            "a well-formed response",
            query_with(flags(true, 0), STATIC, 1, &[]),
            NoReply,
        ),
        same(
            "a response with EDNS and ECS",
            query_with(
                flags(true, 0),
                WWW,
                1,
                &[opt(0, 0, &option(8, &[0, 1, 24, 0, 81, 2, 3]))],
            ),
            NoReply,
        ),
        same(
            "a NOTIFY response",
            query_with(flags(true, 4), STATIC, 1, &[]),
            NoReply,
        ),
        // A response we cannot parse: answering it with FORMERR would reflect and could loop
        // with another server. TCP closes (the stream may be out of step).
        case(
            "a response whose question is cut",
            static_query(&[])[..20]
                .iter()
                .enumerate()
                .map(|(i, &b)| if i == 2 { b | 0x80 } else { b })
                .collect(),
            NoReply,
            Close,
        ),
        case(
            "a response with a compression loop",
            {
                let mut m = hdr(ID, flags(true, 0), [1, 0, 0, 0]);
                m.extend(question(&[0xc0, 12], 1, 1));
                m
            },
            NoReply,
            Close,
        ),
        case(
            "a response with two OPT records",
            {
                let mut m = hdr(ID, flags(true, 0), [1, 0, 0, 2]);
                m.extend(question(&wire_name(STATIC), 1, 1));
                m.extend(opt(0, 0, &[]));
                m.extend(opt(0, 0, &[]));
                m
            },
            NoReply,
            Close,
        ),
    ]
}

fn class_cases() -> Vec<Case> {
    // Class ANY (255) is answered from the IN data, as NSD and Knot do.
    [0u16, 2, 3, 4, 7, 254, 255, 65535]
        .into_iter()
        .map(|class| {
            let mut m = hdr(ID, 0, [1, 0, 0, 0]);
            m.extend(question(&wire_name(STATIC), 1, class));
            let want = if class == 255 { NOERROR } else { REFUSED };
            same(format!("class {class}"), m, want)
        })
        .collect()
}

fn type_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = [0u16, 999, 65534, 65535]
        .into_iter()
        .map(|t| same(format!("QTYPE {t}"), query_with(0, STATIC, t, &[]), NOERROR))
        .collect();
    // Pseudo-RRs that live only in the additional section are looked up like any type (NODATA
    // with the SOA), as NSD and Knot answer them.
    for (t, what) in [(41u16, "OPT"), (250, "TSIG"), (249, "TKEY")] {
        cases.push(same(
            format!("QTYPE {what} ({t})"),
            query_with(0, STATIC, t, &[]),
            NOERROR,
        ));
        cases.push(same(
            format!("QTYPE {what} ({t}) with EDNS"),
            query_with(0, STATIC, t, &[opt(0, 0, &[])]),
            NOERROR,
        ));
    }
    cases
}

fn opcode_cases() -> Vec<Case> {
    // NOTIFY (4) and UPDATE (5) are NOTAUTH (no secondary, no updates: Knot's answer); the rest
    // NOTIMP.
    (1u8..=15)
        .map(|op| {
            let want = if op == 4 || op == 5 {
                Expect::Rcode(ResponseCode::NotAuth)
            } else {
                NOTIMP
            };
            same(
                format!("opcode {op}"),
                query_with(flags(false, op) | 0x0100, STATIC, 1, &[]),
                want,
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Headers, questions, names
// ---------------------------------------------------------------------------------------------

#[test]
fn headers_shorter_than_12_bytes_are_dropped_over_udp_and_closed_over_tcp() {
    let srv = server();
    run(&srv, &truncated_header_cases());
}

#[test]
fn headers_whose_counts_lie_are_formerr() {
    let srv = server();
    run(&srv, &lying_count_cases());
}

#[test]
fn questions_cut_short_and_empty_bodies_are_formerr() {
    let srv = server();
    run(&srv, &cut_question_cases());
}

#[test]
fn compression_loops_forward_and_wild_pointers_are_formerr_in_question_and_additional() {
    let srv = server();
    let got = run(&srv, &pointer_cases());
    // The control answer (a backward pointer in an additional record) is the normal A set.
    let (u, t) = got.last().unwrap();
    for m in [u, t] {
        assert_eq!(addrs(m.as_ref().unwrap()).len(), 2);
    }
}

#[test]
fn labels_over_63_and_names_over_255_bytes_are_formerr() {
    let srv = server();
    run(&srv, &long_name_cases());
}

/// A question for a name of `n` one-letter labels (plus "bb" when `bb`) above `suffix`.
fn many_label_query(n: usize, bb: bool, suffix: &str) -> Vec<u8> {
    let mut name = many_labels(n, &[]);
    if bb {
        name.extend_from_slice(&[2, b'b', b'b']);
    }
    name.extend(wire_name(suffix));
    assert!(name.len() <= 255);
    let mut m = hdr(ID, 0, [1, 0, 0, 0]);
    m.extend(question(&name, 1, 1));
    m
}

#[test]
fn names_with_many_labels_cost_about_as_much_as_any_other() {
    let _g = heavy();
    let srv = server();
    // The longest names (up to 127 labels) in each part of the zone and outside it.
    let cases = [
        (
            "122 labels in our zone",
            many_label_query(119, true, "gslb.example."),
        ),
        (
            "121 labels under *.apps",
            many_label_query(116, true, "apps.gslb.example."),
        ),
        (
            "121 labels below the delegation sub",
            many_label_query(117, false, "sub.gslb.example."),
        ),
        (
            "127 labels outside our zones",
            many_label_query(127, false, ""),
        ),
    ];
    let mut slow = Vec::new();
    for (what, bytes) in &cases {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t0 = Instant::now();
        sock.send_to(bytes, srv.addr).unwrap();
        let mut buf = vec![0u8; 65535];
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let took = t0.elapsed();
        let m = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(m.metadata.id, ID, "{what}");
        if took >= OTHERS {
            slow.push(format!("{what}: {took:?} [{}]", hex(bytes)));
        }
    }
    // A burst of them must not hold up another client.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (_, bytes) in cases.iter().cycle().take(12) {
        sock.send_to(bytes, srv.addr).unwrap();
    }
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t0 = Instant::now();
    probe.send_to(&probe_bytes(), srv.addr).unwrap();
    let mut buf = vec![0u8; 512];
    let n = probe
        .recv(&mut buf)
        .expect("a normal query after the burst");
    let waited = t0.elapsed();
    assert_probe_answer(&buf[..n], "after a burst of long names");
    assert!(
        slow.is_empty() && waited < Duration::from_millis(250),
        "long names are expensive: each of these took at least {OTHERS:?}:\n{}\n\
         and a normal query waited {waited:?} behind 12 of them",
        slow.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// EDNS and ECS
// ---------------------------------------------------------------------------------------------

#[test]
fn opt_outside_additional_twice_or_with_a_non_root_owner_is_formerr() {
    let srv = server();
    run(&srv, &opt_placement_cases());
}

#[test]
fn edns_options_that_overrun_their_record_are_formerr() {
    let srv = server();
    run(&srv, &option_framing_cases());
}

#[test]
fn unknown_edns_options_with_garbage_data_are_ignored() {
    let srv = server();
    let mut opts = option(65001, &[0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]);
    opts.extend(option(0xffff, &[0; 40]));
    opts.extend(option(12, &[])); // PADDING, empty
    let got = run(
        &srv,
        &[same(
            "unknown options with garbage data",
            query_with(0, STATIC, 1, &[opt(0, 0, &opts)]),
            NOERROR,
        )],
    );
    let (u, t) = &got[0];
    for m in [u, t] {
        let m = m.as_ref().unwrap();
        assert_eq!(addrs(m).len(), 2, "{m}");
        let e = m.edns.as_ref().expect("OPT echoed");
        assert!(e.options().as_ref().is_empty(), "not echoed: {m}");
    }
}

#[test]
fn edns_version_above_zero_is_badvers() {
    let srv = server();
    let cases: Vec<Case> = [1u8, 2, 255]
        .into_iter()
        .map(|v| {
            same(
                format!("EDNS version {v}"),
                query_with(0, STATIC, 1, &[opt(v, 0, &[])]),
                BADVERS,
            )
        })
        .collect();
    for (u, t) in run(&srv, &cases) {
        for m in [u, t] {
            let m = m.unwrap();
            let e = m.edns.as_ref().expect("BADVERS carries an OPT");
            assert_eq!(e.version(), 0, "{m}");
            assert!(m.answers.is_empty(), "{m}");
        }
    }
}

#[test]
fn do_bit_is_answered_normally_without_dnssec_records() {
    let srv = server();
    let got = run(
        &srv,
        &[
            same(
                "DO bit set",
                query_with(0, STATIC, 1, &[opt(0, 0x8000, &[])]),
                NOERROR,
            ),
            same(
                "DO and every Z bit set",
                query_with(0, STATIC, 1, &[opt(0, 0xffff, &[])]),
                NOERROR,
            ),
        ],
    );
    for (u, t) in got {
        for m in [u, t] {
            let m = m.unwrap();
            assert_eq!(addrs(&m).len(), 2, "{m}");
            assert!(m.edns.is_some(), "OPT echoed: {m}");
            for r in m.answers.iter().chain(&m.authorities).chain(&m.additionals) {
                assert!(
                    !matches!(
                        r.record_type(),
                        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
                    ),
                    "no DNSSEC records: {m}"
                );
            }
        }
    }
}

#[test]
fn every_ecs_malformation_is_formerr() {
    let srv = server();
    run(&srv, &ecs_malformation_cases());
}

#[test]
fn ecs_source_prefix_zero_is_answered_with_scope_zero() {
    let srv = server();
    let got = run(
        &srv,
        &[
            same("ECS IPv4 /0", ecs_query(&[0, 1, 0, 0]), NOERROR),
            same("ECS IPv6 /0", ecs_query(&[0, 2, 0, 0]), NOERROR),
        ],
    );
    for (u, t) in got {
        for m in [u, t] {
            let m = m.unwrap();
            assert!(!addrs(&m).is_empty(), "an answer: {m}");
            let e = ecs_of(&m).unwrap_or_else(|| panic!("ECS echoed: {m}"));
            assert_eq!((e.source_prefix(), e.scope_prefix()), (0, 0), "{m}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// QR, class, type, opcode
// ---------------------------------------------------------------------------------------------

#[test]
fn responses_are_never_answered_even_when_malformed() {
    let srv = server();
    run(&srv, &response_cases());
}

#[test]
fn classes_other_than_in_are_refused() {
    let srv = server();
    run(&srv, &class_cases());
}

#[test]
fn unknown_and_pseudo_types_as_qtype_are_answered_as_nodata() {
    let srv = server();
    let got = run(&srv, &type_cases());
    // Unknown types at an existing name: NODATA with the SOA (RFC 3597 treats them like any
    // type), and so are OPT, TSIG and TKEY.
    for (u, t) in got.into_iter() {
        for m in [u, t] {
            let m = m.unwrap();
            assert!(m.answers.is_empty(), "{m}");
            assert!(m.metadata.authoritative, "{m}");
            assert_eq!(
                m.authorities.first().map(|r| r.record_type()),
                Some(RecordType::SOA),
                "{m}"
            );
        }
    }
}

#[test]
fn every_opcode_but_query_is_notimp() {
    let srv = server();
    for (u, t) in run(&srv, &opcode_cases()) {
        for m in [u, t] {
            assert!(m.unwrap().metadata.recursion_desired, "RD copied");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TCP: framing, slowness, pipelining, many connections
// ---------------------------------------------------------------------------------------------

/// Times a UDP and a TCP query from other clients; both must be answered within `OTHERS`.
fn assert_others_served(srv: &TestServer, ctx: &str) {
    let u = udp_probe(srv.addr, ctx);
    assert!(u < OTHERS, "{ctx}: another UDP client waited {u:?}");
    let t = tcp_probe(srv.addr, ctx);
    assert!(t < OTHERS, "{ctx}: another TCP client waited {t:?}");
}

/// Waits (on another thread) until the peer closes `s`: `Ok(when)`, or `Err` on a reply or when
/// still open after `limit`.
fn watch_close(s: &TcpStream, limit: Duration) -> std::thread::JoinHandle<Result<Instant, String>> {
    let mut s = s.try_clone().unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => Ok(Instant::now()),
            Ok(n) => Err(format!("got {n} bytes: {}", hex(&buf[..n]))),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(format!("still open after {limit:?}"))
            }
            Err(_) => Ok(Instant::now()), // reset: closed
        }
    })
}

#[test]
fn tcp_length_prefix_beyond_the_data_closes_after_the_idle_timeout_while_others_are_served() {
    let _g = heavy();
    let idle = Duration::from_secs(1);
    let srv = server_with(|c| c.tcp_timeout = idle);
    let q = static_query(&[]);
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_nodelay(true).unwrap();
    // Announce 64 bytes, send 20, then nothing.
    let mut stuck = vec![0, 64];
    stuck.extend_from_slice(&q[..20]);
    let watcher = watch_close(&s, idle * 4);
    let t0 = Instant::now();
    s.write_all(&stuck).unwrap();
    // While it hangs, other clients are served at once.
    while t0.elapsed() < idle - Duration::from_millis(200) {
        assert_others_served(&srv, "while a TCP message is incomplete");
        std::thread::sleep(Duration::from_millis(50));
    }
    let closed = watcher
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("stuck connection: {e}"));
    let after = closed - t0;
    assert!(
        after >= idle - Duration::from_millis(200) && after <= idle + Duration::from_millis(1000),
        "closed after {after:?}, idle timeout {idle:?}"
    );
    assert_alive(&srv, "after the stuck connection");
    let deadline = Instant::now() + Duration::from_secs(1);
    while open_tcp(&srv) != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(open_tcp(&srv), 0, "connection count back to 0");
}

#[test]
fn tcp_lengths_zero_and_one_close_at_once() {
    let srv = server();
    run(
        &srv,
        &[
            case("length 0", vec![], NoReply, Close),
            case("length 1", vec![0x12], NoReply, Close),
        ],
    );
    // Also a length of 0 followed by a good query in the same write: the connection is closed
    // rather than silently resynchronised.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut w = vec![0, 0];
    w.extend(frame(&probe_bytes()));
    s.write_all(&w).unwrap();
    assert!(matches!(read_frame(&mut s), Got::Closed));
    assert_alive(&srv, "after length 0");
}

#[test]
fn tcp_slowloris_is_closed_within_the_idle_timeout_and_others_are_served() {
    let _g = heavy();
    let idle = Duration::from_secs(2);
    let srv = server_with(|c| c.tcp_timeout = idle);
    let bytes = frame(&static_query(&[]));
    let s = TcpStream::connect(srv.addr).unwrap();
    s.set_nodelay(true).unwrap();
    // One byte a second: the length prefix completes after 1 s, then the message would take
    // another 37 s. Each stage gets one idle period at most, so the close comes within 2 × idle.
    let watcher = watch_close(&s, idle * 4);
    let t0 = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let mut w = s.try_clone().unwrap();
        let stop = stop.clone();
        std::thread::spawn(move || {
            for (i, b) in bytes.iter().enumerate() {
                if stop.load(Relaxed) || w.write_all(&[*b]).is_err() {
                    return i;
                }
                let next = t0 + Duration::from_secs(i as u64 + 1);
                while Instant::now() < next && !stop.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            bytes.len()
        })
    };
    while !watcher.is_finished() && t0.elapsed() < idle * 3 {
        assert_others_served(&srv, "during slowloris");
        std::thread::sleep(Duration::from_millis(200));
    }
    let closed = watcher.join().unwrap();
    stop.store(true, Relaxed);
    let sent = writer.join().unwrap();
    let closed = closed.unwrap_or_else(|e| panic!("slowloris connection ({sent} bytes sent): {e}"));
    let after = closed - t0;
    assert!(
        after <= idle * 2 + Duration::from_millis(700),
        "slowloris closed only after {after:?} ({sent} bytes sent), idle timeout {idle:?}"
    );
    assert!(
        after >= idle - Duration::from_millis(200),
        "closed after {after:?}, before the idle timeout {idle:?}, though bytes kept coming"
    );
    assert_alive(&srv, "after slowloris");
}

/// The normal queries of a pipeline, with what each must get.
fn pipeline_queries() -> Vec<(Q, ResponseCode)> {
    let mut out = Vec::new();
    let kinds = [
        (STATIC, RecordType::A, ResponseCode::NoError),
        ("mail.gslb.example.", RecordType::A, ResponseCode::NoError),
        ("ns1.gslb.example.", RecordType::AAAA, ResponseCode::NoError),
        ("nope.gslb.example.", RecordType::A, ResponseCode::NXDomain),
        ("example.com.", RecordType::A, ResponseCode::Refused),
        (WWW, RecordType::A, ResponseCode::NoError),
    ];
    for i in 0..120u16 {
        let (name, t, rc) = kinds[usize::from(i) % kinds.len()];
        let mut q = Q::new(name, t);
        q.id = 1000 + i;
        if i % 2 == 0 {
            q = q.edns(1232);
        }
        out.push((q, rc));
    }
    out
}

#[test]
fn tcp_pipelined_queries_in_one_write_are_all_answered_in_order() {
    let srv = server();
    let queries = pipeline_queries();
    let mut all = Vec::new();
    for (q, _) in &queries {
        all.extend(frame(&q.to_bytes()));
    }
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let t0 = Instant::now();
    s.write_all(&all).unwrap();
    for (q, rc) in &queries {
        match read_frame(&mut s) {
            Got::Frame(b) => {
                let m = Message::from_vec(&b).unwrap();
                assert_eq!(m.metadata.id, q.id, "in order\n{m}");
                assert_eq!(m.metadata.response_code, *rc, "{}\n{m}", q.name);
                assert_eq!(m.queries[0].name().to_ascii(), q.name);
            }
            other => panic!("query {} ({}) got {other:?}", q.id, q.name),
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // And the connection is still open for more.
    s.write_all(&frame(&probe_bytes())).unwrap();
    match read_frame(&mut s) {
        Got::Frame(b) => assert_probe_answer(&b, "after the pipeline"),
        other => panic!("after the pipeline: {other:?}"),
    }
}

#[test]
fn tcp_pipeline_with_hostile_messages_answers_up_to_the_unparseable_one_then_closes() {
    let srv = server();
    let good = |id: u16| {
        let mut q = Q::new(STATIC, RecordType::A);
        q.id = id;
        frame(&q.to_bytes())
    };
    let mut all = Vec::new();
    all.extend(good(1));
    // A response: skipped without a reply, the stream stays in step.
    all.extend(frame(&query_with(flags(true, 0), STATIC, 1, &[])));
    all.extend(good(2));
    // NOTIMP and FORMERR from the handler (parseable): answered, the stream stays in step.
    all.extend(frame(&query_with(flags(false, 9), STATIC, 1, &[])));
    all.extend(frame(&ecs_query(&[0, 1, 24, 8, 81, 2, 3])));
    all.extend(good(3));
    // Unparseable body: FORMERR, then the connection closes; what follows is not read.
    all.extend(frame(&static_query(&[])[..20]));
    all.extend(good(4));
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&all).unwrap();
    let mut seen = Vec::new();
    loop {
        match read_frame(&mut s) {
            Got::Frame(b) => {
                let m = Message::from_vec(&b).unwrap();
                seen.push((m.metadata.id, m.metadata.response_code));
            }
            Got::Closed => break,
            Got::Timeout => panic!("connection left open after an unparseable message: {seen:?}"),
        }
    }
    assert_eq!(
        seen,
        vec![
            (1, ResponseCode::NoError),
            (2, ResponseCode::NoError),
            (ID, ResponseCode::NotImp),
            (ID, ResponseCode::FormErr),
            (3, ResponseCode::NoError),
            (ID, ResponseCode::FormErr),
        ]
    );
    assert_alive(&srv, "after the hostile pipeline");
}

#[test]
fn tcp_connections_closed_mid_message_are_released_at_once() {
    let srv = server_with(|c| c.tcp_timeout = Duration::from_secs(5));
    let q = frame(&static_query(&[]));
    for (what, part) in [
        ("mid-length-prefix", &q[..1]),
        ("after the length prefix", &q[..2]),
        ("mid-message", &q[..15]),
        ("mid-message, half-closed", &q[..15]),
    ] {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.write_all(part).unwrap();
        let t0 = Instant::now();
        if what.ends_with("half-closed") {
            s.shutdown(std::net::Shutdown::Write).unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            assert!(matches!(read_frame(&mut s), Got::Closed), "{what}");
        }
        drop(s);
        // Released long before the 5 s idle timeout: the server saw EOF.
        while open_tcp(&srv) != 0 && t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(open_tcp(&srv), 0, "{what}: connection still held");
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "{what}: {:?}",
            t0.elapsed()
        );
        assert_alive(&srv, what);
    }
}

#[test]
fn tcp_200_idle_connections_do_not_block_udp_or_tcp_clients() {
    let _g = heavy();
    let idle = Duration::from_secs(2);
    // The per-source cap would otherwise refuse most of them: every test client is 127.0.0.1.
    let srv = server_with(|c| {
        c.tcp_timeout = idle;
        c.tcp_limits.max_per_source = 1000;
    });
    let t0 = Instant::now();
    let conns: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(srv.addr).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(2);
    while open_tcp(&srv) < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(open_tcp(&srv), 200, "all 200 accepted");
    for _ in 0..5 {
        assert_others_served(&srv, "with 200 idle TCP connections");
    }
    assert!(t0.elapsed() < idle, "the check ran while they were open");
    // Each idle one is then closed by the server.
    let watchers: Vec<_> = conns.iter().map(|c| watch_close(c, idle * 3)).collect();
    for (i, w) in watchers.into_iter().enumerate() {
        let closed = w
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("idle connection {i}: {e}"));
        assert!(closed - t0 < idle + Duration::from_millis(1500), "{i}");
    }
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(2);
    while open_tcp(&srv) != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(open_tcp(&srv), 0);
    assert_alive(&srv, "after 200 idle connections");
}

// ---------------------------------------------------------------------------------------------
// Memory and latency under a flood
// ---------------------------------------------------------------------------------------------

/// Resident memory of this process (the server runs in it), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Every hostile packet of this module, for the flood.
fn corpus() -> Vec<Vec<u8>> {
    [
        truncated_header_cases(),
        lying_count_cases(),
        cut_question_cases(),
        pointer_cases(),
        long_name_cases(),
        opt_placement_cases(),
        option_framing_cases(),
        ecs_malformation_cases(),
        response_cases(),
        class_cases(),
        type_cases(),
        opcode_cases(),
    ]
    .into_iter()
    .flatten()
    // Left out: the longest legal name in our zone is legal, and its cost has its own test
    // (`names_with_many_labels_cost_about_as_much_as_any_other`); here it would only stall.
    .filter(|c| !c.what.contains("name in our zone"))
    .map(|c| c.bytes)
    .collect()
}

/// A xorshift generator: reproducible noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Packet `i` of the flood: a corpus packet (with its ID varied and, sometimes, a byte flipped
/// or the tail cut), or pure noise.
fn flood_packet(i: usize, corpus: &[Vec<u8>], rng: &mut Noise) -> Vec<u8> {
    let r = rng.next();
    if i % 5 == 4 {
        let len = (r % 300) as usize;
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut p = corpus[i % corpus.len()].clone();
    if p.len() >= 2 {
        p[..2].copy_from_slice(&(i as u16 | 0x8000).to_be_bytes());
    }
    match (r >> 8) % 4 {
        0 if p.len() > 12 => {
            let at = 12 + (r >> 16) as usize % (p.len() - 12);
            p[at] ^= 1 << ((r >> 40) % 8);
        }
        1 if p.len() > 13 => p.truncate(12 + (r >> 16) as usize % (p.len() - 12)),
        _ => {}
    }
    p
}

/// Sends `n` flood packets in batches; after each batch a normal query from another socket
/// must be answered. Returns the slowest normal query.
fn flood(srv: &TestServer, n: usize, rng: &mut Noise, corpus: &[Vec<u8>]) -> Duration {
    let hostile = UdpSocket::bind("127.0.0.1:0").unwrap();
    hostile.set_nonblocking(true).unwrap();
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut slowest = Duration::ZERO;
    let mut buf = vec![0u8; 65535];
    let batch = 50;
    for start in (0..n).step_by(batch) {
        for i in start..(start + batch).min(n) {
            hostile
                .send_to(&flood_packet(i, corpus, rng), srv.addr)
                .unwrap();
        }
        let t0 = Instant::now();
        probe.send_to(&probe_bytes(), srv.addr).unwrap();
        let got = probe.recv(&mut buf);
        let took = t0.elapsed();
        let Ok(len) = got else {
            panic!("after {start} hostile packets a normal query got no answer within 1 s");
        };
        assert_probe_answer(&buf[..len], &format!("after {start} hostile packets"));
        slowest = slowest.max(took);
        // Drain the replies to the hostile packets (FORMERR and friends).
        while hostile.recv(&mut buf).is_ok() {}
    }
    slowest
}

#[test]
fn twenty_thousand_hostile_udp_packets_neither_grow_memory_nor_stall() {
    let _g = heavy();
    let srv = server();
    let corpus = corpus();
    let mut rng = Noise(0x9e37_79b9_7f4a_7c15);
    // Warm up: allocator pools, buffers and lazily built state reach their steady size.
    flood(&srv, 2_000, &mut rng, &corpus);
    let before = rss_kib();
    let slowest = flood(&srv, 20_000, &mut rng, &corpus);
    let after = rss_kib();
    let grew = after.saturating_sub(before);
    eprintln!("flood: VmRSS {before} → {after} KiB, slowest normal query {slowest:?}");
    assert!(
        grew < 20 * 1024,
        "resident memory grew by {grew} KiB ({before} → {after} KiB) over 20 000 hostile packets"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "a normal query took {slowest:?}"
    );
    assert_alive(&srv, "after the flood");
}
