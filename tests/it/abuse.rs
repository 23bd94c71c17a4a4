//! Abuse controls: response rate limiting per client network (UDP), and TCP connection limits.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use gslbd::dns::rrl::RrlConfig;
use gslbd::dns::tcp::TcpLimits;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use super::harness::*;

fn server(tweak: impl FnOnce(&mut gslbd::config::ServerConfig)) -> TestServer {
    let mut cfg = gslbd::config::ServerConfig::for_zones(
        repo().join("zones"),
        vec!["127.0.0.1:0".parse().unwrap()],
    );
    cfg.geodata = Some(sample_mmdb());
    tweak(&mut cfg);
    TestServer::from_config(cfg, None)
}

/// Sends `n` queries from `from` as fast as possible; returns (answered, truncated, silent).
fn burst(dns: SocketAddr, from: &str, n: usize) -> (usize, usize, usize) {
    let sock = UdpSocket::bind(format!("{from}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let q = Q::new("static.gslb.example.", RecordType::A).to_bytes();
    for _ in 0..n {
        sock.send_to(&q, dns).unwrap();
    }
    let (mut answered, mut truncated) = (0, 0);
    let mut buf = [0u8; 1500];
    while let Ok((len, _)) = sock.recv_from(&mut buf) {
        let m = Message::from_vec(&buf[..len]).unwrap();
        if m.metadata.truncation {
            assert!(m.answers.is_empty());
            truncated += 1;
        } else {
            assert_eq!(addrs(&m).len(), 2);
            answered += 1;
        }
    }
    (answered, truncated, n - answered - truncated)
}

fn rrl(rate: u32, slip: u32, exempt: &[&str]) -> RrlConfig {
    RrlConfig {
        responses_per_second: rate,
        slip,
        ipv4_prefix: 24,
        ipv6_prefix: 56,
        exempt: exempt.iter().map(|e| e.parse().unwrap()).collect(),
    }
}

#[test]
fn rrl_limits_each_network_and_slips_every_second_response() {
    let srv = server(|c| c.rrl = Some(rrl(10, 2, &["127.3.0.0/16"])));
    // Within one second: 10 answered, then of 40 limited every 2nd goes out truncated.
    let t0 = Instant::now();
    let (ok, tc, silent) = burst(srv.addr, "127.1.0.1", 50);
    if t0.elapsed() < Duration::from_millis(900) {
        assert_eq!(
            (ok, tc, silent),
            (10, 20, 20),
            "answered, truncated, dropped"
        );
    } else {
        // A slow machine crossed a second boundary: the budget refilled once.
        assert!(ok <= 20 && tc >= 10, "{ok} {tc} {silent}");
    }
    // Another /24 has its own budget, exempt networks have none, TCP is never limited.
    let (ok, _, _) = burst(srv.addr, "127.2.0.1", 5);
    assert_eq!(ok, 5);
    let (ok, tc, _) = burst(srv.addr, "127.3.9.9", 100);
    assert_eq!((ok, tc), (100, 0), "exempt");
    for _ in 0..20 {
        let m = srv.tcp(&Q::new("static.gslb.example.", RecordType::A));
        assert_eq!(addrs(&m).len(), 2);
    }
    // What was limited is counted (gslbd_rrl_limited_total).
    let g = &srv.gslbd().control.metrics.global;
    assert!(g.rrl_slipped.load(std::sync::atomic::Ordering::Relaxed) >= 10);
    assert!(g.rrl_dropped.load(std::sync::atomic::Ordering::Relaxed) >= 10);
}

#[test]
fn rrl_with_slip_zero_drops_and_recovers_next_second() {
    let srv = server(|c| c.rrl = Some(rrl(3, 0, &[])));
    let (ok, tc, silent) = burst(srv.addr, "127.4.0.1", 20);
    assert!(ok <= 6 && tc == 0 && silent >= 14, "{ok} {tc} {silent}");
    std::thread::sleep(Duration::from_millis(1100));
    let (ok, _, _) = burst(srv.addr, "127.4.0.1", 3);
    assert_eq!(ok, 3, "a new second, a new budget");
}

#[test]
fn rrl_is_off_by_default() {
    let srv = server(|_| {});
    assert_eq!(burst(srv.addr, "127.5.0.1", 200).0, 200);
}

fn connect(from: &str, to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&format!("{from}:0").parse::<SocketAddr>().unwrap().into())
        .unwrap();
    s.connect(&to.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

fn ask(s: &mut TcpStream) -> Option<Message> {
    let q = Q::new("static.gslb.example.", RecordType::A).to_bytes();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).ok()?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut b = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut b).ok()?;
    Message::from_vec(&b).ok()
}

/// True when the server closed the connection without answering.
fn closed(s: &mut TcpStream) -> bool {
    ask(s).is_none()
}

/// Sends the length prefix and the first bytes of a query, and no more: the connection is
/// busy (a message is arriving) until the idle timeout.
fn start_query(s: &mut TcpStream) {
    let q = Q::new("static.gslb.example.", RecordType::A).to_bytes();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q[..3]);
    s.write_all(&framed).unwrap();
}

#[test]
fn tcp_limits_make_room_by_closing_the_idlest_connection() {
    let srv = server(|c| {
        c.tcp_limits = TcpLimits {
            max_connections: 4,
            max_per_source: 2,
            max_queries: 1000,
        }
    });
    let evicted = || {
        srv.gslbd()
            .dns
            .tcp
            .evicted
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let refused = || {
        srv.gslbd()
            .dns
            .tcp
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    // Per source: two idle connections do not lock their address out. The third connection
    // is answered and the one idle longest is closed.
    let mut a1 = connect("127.6.0.1", srv.addr);
    assert!(ask(&mut a1).is_some());
    std::thread::sleep(Duration::from_millis(20));
    let mut a2 = connect("127.6.0.1", srv.addr);
    assert!(ask(&mut a2).is_some());
    let mut a3 = connect("127.6.0.1", srv.addr);
    assert!(
        ask(&mut a3).is_some(),
        "an idle pair never locks its source out"
    );
    assert!(closed(&mut a1), "the idlest connection made room");
    assert!(ask(&mut a2).is_some(), "the other one stays open");
    assert_eq!(evicted(), 1);
    // Busy connections (a query arriving) are never closed for another: then the new one is.
    let mut b1 = connect("127.6.0.2", srv.addr);
    let mut b2 = connect("127.6.0.2", srv.addr);
    start_query(&mut b1);
    start_query(&mut b2);
    std::thread::sleep(Duration::from_millis(200));
    let mut b3 = connect("127.6.0.2", srv.addr);
    assert!(
        closed(&mut b3),
        "no room: both connections of the source are busy"
    );
    assert_eq!(refused(), 1);
    // In all: four open (a2, a3, b1, b2). A newcomer takes the place of the idlest of all
    // (a2 or a3), never of a busy one.
    let mut c1 = connect("127.6.0.3", srv.addr);
    assert!(ask(&mut c1).is_some(), "the total limit makes room too");
    assert_eq!(evicted(), 2);
    let mut open_a = 0;
    for s in [&mut a2, &mut a3] {
        open_a += usize::from(ask(s).is_some());
    }
    assert_eq!(open_a, 1, "exactly one idle connection was closed");
    // UDP keeps working throughout.
    assert_eq!(
        addrs(&srv.udp(&Q::new("static.gslb.example.", RecordType::A))).len(),
        2
    );
}

#[test]
fn a_connection_is_closed_after_its_query_budget_and_when_idle() {
    let srv = server(|c| {
        c.tcp_limits = TcpLimits {
            max_connections: 100,
            max_per_source: 10,
            max_queries: 3,
        };
        c.tcp_timeout = Duration::from_millis(500);
    });
    let mut s = connect("127.7.0.1", srv.addr);
    for i in 0..3 {
        assert!(ask(&mut s).is_some(), "query {i}");
    }
    assert!(
        closed(&mut s),
        "the fourth query finds the connection closed"
    );
    // Idle: closed after the timeout.
    let mut idle = connect("127.7.0.1", srv.addr);
    let t0 = Instant::now();
    let mut buf = [0u8; 1];
    let n = idle.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}
