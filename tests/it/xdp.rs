//! The AF_XDP listener (feature `xdp`, `listen_xdp`) against socket mode, on a veth pair between
//! two network namespaces made for the test (198.18.0.0/30 and 2001:2::/64, the benchmarking
//! ranges; nothing leaves them). The built binary runs in the server namespace three times:
//! socket mode, then XDP on the server's veth (native, specific listen addresses), then XDP in
//! generic mode with wildcard listen addresses. The same queries, sent from the client
//! namespace, must get the same bytes back every time: steered A/AAAA with ECS from several
//! subnets and without, static names, NXDOMAIN, NODATA, DO, malformed ECS (FORMERR), a message
//! too broken to parse, a response (never answered), truncation at a small EDNS size, an answer
//! larger than the link's MTU (the XDP path hands it to the kernel's socket, which fragments it),
//! TCP, a fragmented query and a datagram to another port (both passed to the kernel), over IPv4
//! and IPv6; and an RRL burst gives the same answers, slips and drops.
//!
//! In XDP mode the AF_XDP counters must account for exactly the datagrams the program should
//! have redirected, and every query counter of gslbd must equal socket mode's: the XDP path
//! answered them, and counted them as the socket path does.
//!
//! Needs root (namespaces, XDP); the test says so rather than skipping.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::EdnsOption;

use super::harness::*;

const CLIENT4: &str = "198.18.0.1";
const SERVER4: &str = "198.18.0.2";
const CLIENT6: &str = "2001:2::1";
const SERVER6: &str = "2001:2::2";
/// A second client network, routed through the client's veth: the RRL burst comes from here
/// (the test's own network is exempt).
const RRL_CLIENT: &str = "198.19.0.1";
const ADMIN: &str = "198.18.0.2:8053";
/// A UDP port in the server namespace that gslbd does not listen on: an echo socket of the test.
const OTHER_PORT: u16 = 5301;
const MTU: usize = 1500;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two network namespaces joined by a veth pair, deleted (with everything in them) on drop.
struct Pair {
    client: String,
    server: String,
    /// The server side of the veth.
    veth: String,
}

impl Pair {
    fn new() -> Pair {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let pair = Pair {
            client: format!("gslbd-xdp-c{id}"),
            server: format!("gslbd-xdp-s{id}"),
            veth: format!("gxs{id}"),
        };
        let (c, s) = (pair.client.as_str(), pair.server.as_str());
        let cveth = format!("gxc{id}");
        ip(&["netns", "add", c]);
        ip(&["netns", "add", s]);
        ip(&[
            "-n", c, "link", "add", &cveth, "type", "veth", "peer", "name", &pair.veth, "netns", s,
        ]);
        for (ns, dev, v4, v6) in [
            (c, cveth.as_str(), CLIENT4, CLIENT6),
            (s, pair.veth.as_str(), SERVER4, SERVER6),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/30"), "dev", dev]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                dev,
                "nodad",
            ]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", dev, "mtu", &MTU.to_string(), "up"]);
        }
        ip(&[
            "-n",
            c,
            "addr",
            "add",
            &format!("{RRL_CLIENT}/32"),
            "dev",
            &cveth,
        ]);
        ip(&[
            "-n",
            s,
            "route",
            "add",
            &format!("{RRL_CLIENT}/32"),
            "via",
            CLIENT4,
        ]);
        pair
    }

    /// Runs `f` on a thread inside namespace `ns`: its sockets are that namespace's.
    fn within<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                let fd = std::fs::File::open(format!("/run/netns/{ns}")).expect("netns file");
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    fn client<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        Self::within(&self.client, f)
    }

    /// Whether an XDP program is attached to the server's veth.
    fn xdp_attached(&self) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.server, "link", "show", &self.veth])
            .output()
            .expect("ip runs");
        String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.client, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// How gslbd runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Sockets,
    /// `listen_xdp`, mode native, listening on the veth's addresses.
    XdpNative,
    /// `listen_xdp`, mode generic, listening on 0.0.0.0 and ::.
    XdpGenericWildcard,
}

/// The shipped zones plus one with an answer larger than the MTU.
fn zones_dir(dir: &Path) -> PathBuf {
    let zones = dir.join("zones");
    std::fs::create_dir(&zones).unwrap();
    for f in std::fs::read_dir(repo().join("zones")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, zones.join(f.file_name().unwrap())).unwrap();
    }
    let txt: Vec<String> = (0..12)
        .map(|i| format!("\"record {i:02} {}\"", "x".repeat(190)))
        .collect();
    std::fs::write(
        zones.join("big.test.toml"),
        format!(
            "origin = \"big.test.\"\nttl = 300\nns = [\"ns1\"]\n\n[soa]\nmname = \"ns1\"\n\
             rname = \"hostmaster\"\nserial = 1\nrefresh = 3600\nretry = 600\nexpire = 1209600\n\
             minimum = 60\n\n[[records]]\nname = \"ns1\"\ntype = \"A\"\ndata = \"{SERVER4}\"\n\n\
             [[records]]\nname = \"big\"\ntype = \"TXT\"\ndata = [{}]\n",
            txt.join(", ")
        ),
    )
    .unwrap();
    zones
}

/// gslbd in the server namespace, stopped with SIGTERM by [`Server::stop`] (killed if dropped).
struct Server {
    child: Spawned,
    log: PathBuf,
}

impl Server {
    fn start(pair: &Pair, dir: &Path, zones: &Path, mode: Mode) -> Server {
        let listen = match mode {
            Mode::Sockets | Mode::XdpNative => format!("[\"{SERVER4}:53\", \"[{SERVER6}]:53\"]"),
            Mode::XdpGenericWildcard => "[\"0.0.0.0:53\", \"[::]:53\"]".to_string(),
        };
        let xdp = match mode {
            Mode::Sockets => String::new(),
            Mode::XdpNative => format!(
                "listen_xdp = {{ interface = \"{}\", queues = [0], mode = \"native\" }}\n",
                pair.veth
            ),
            Mode::XdpGenericWildcard => format!(
                "listen_xdp = {{ interface = \"{}\", mode = \"generic\" }}\n",
                pair.veth
            ),
        };
        let cfg = dir.join(format!("{mode:?}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "listen = {listen}\n{xdp}zones = \"{}\"\ngeodata = \"{}\"\n\
                 [dns]\nworkers = 1\nudp_payload = 4096\n\
                 [rrl]\nenabled = true\nresponses_per_second = 5\nslip = 2\n\
                 exempt = [\"198.18.0.0/30\", \"2001:2::/64\"]\n\
                 [admin]\nlisten = \"{ADMIN}\"\nwatch = false\n[log]\nformat = \"json\"\n",
                zones.display(),
                sample_mmdb().display()
            ),
        )
        .unwrap();
        let log = dir.join(format!("{mode:?}.log"));
        let child = Spawned(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &pair.server,
                    env!("CARGO_BIN_EXE_gslbd"),
                    "serve",
                ])
                .arg("--config")
                .arg(&cfg)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("ip netns exec gslbd"),
        );
        let mut s = Server { child, log };
        // The admin server starts last, after XDP is attached: once it answers, all is up.
        let deadline = Instant::now() + Duration::from_secs(20);
        while pair.client(metrics_text).is_none() {
            if let Ok(Some(status)) = s.child.0.try_wait() {
                panic!("gslbd ({mode:?}) exited with {status}:\n{}", s.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "gslbd ({mode:?}) not up in 20 s:\n{}",
                s.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the log of the whole run.
    fn stop(mut self) -> String {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        assert!(self.child.wait().success(), "{}", self.log_text());
        self.log_text()
    }
}

/// `/metrics` from the admin server (run in the client namespace), or `None` while it is down.
fn metrics_text() -> Option<String> {
    let mut s = TcpStream::connect_timeout(&ADMIN.parse().unwrap(), Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: gslbd\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Every sample of the families that start with `prefix`, by name and labels.
fn samples(text: &str, prefix: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// How a case is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Via {
    Udp4,
    Udp6,
    Tcp4,
    Tcp6,
    /// UDP to [`OTHER_PORT`], where the test's echo socket answers.
    OtherPort,
}

struct Case {
    name: &'static str,
    via: Via,
    bytes: Vec<u8>,
    /// What the socket-mode answer must be: the case is what its name says.
    check: fn(&Option<Vec<u8>>),
}

fn msg(r: &Option<Vec<u8>>) -> Message {
    Message::from_vec(r.as_deref().expect("an answer")).expect("the answer parses")
}

fn rcode(r: &Option<Vec<u8>>) -> ResponseCode {
    msg(r).metadata.response_code
}

fn first_addr(r: &Option<Vec<u8>>) -> String {
    addrs(&msg(r))
        .first()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// A query with an EDNS Padding option (RFC 7830) of `pad` bytes: big enough to be fragmented.
fn padded(q: Q, pad: usize) -> Vec<u8> {
    q.option(EdnsOption::Unknown(12, vec![0; pad])).to_bytes()
}

fn cases() -> Vec<Case> {
    let www = |t| Q::new("www.gslb.example.", t);
    let mut out = vec![];
    let mut add = |name, via, q: Vec<u8>, check: fn(&Option<Vec<u8>>)| {
        out.push(Case {
            name,
            via,
            bytes: q,
            check,
        })
    };
    // Steered, with ECS of several places (IPv4 and IPv6 subnets), over both transports' UDP.
    add(
        "london",
        Via::Udp4,
        www(RecordType::A).ecs("81.2.3.0/24").to_bytes(),
        |r| assert_eq!(first_addr(r), "192.0.2.20"),
    );
    add(
        "singapore",
        Via::Udp4,
        www(RecordType::A).ecs("116.88.1.0/24").to_bytes(),
        |r| assert_eq!(first_addr(r), "192.0.2.30"),
    );
    add(
        "sao paulo",
        Via::Udp6,
        www(RecordType::A).ecs("177.30.5.0/24").to_bytes(),
        |r| assert_eq!(first_addr(r), "192.0.2.40"),
    );
    add(
        "chicago aaaa",
        Via::Udp4,
        www(RecordType::AAAA).ecs("66.40.1.0/24").to_bytes(),
        |r| assert_eq!(first_addr(r), "2001:db8::10"),
    );
    add(
        "tokyo v6 ecs",
        Via::Udp6,
        www(RecordType::AAAA).ecs("2400:4000:1::/48").to_bytes(),
        |r| assert_eq!(first_addr(r), "2001:db8::30"),
    );
    add(
        "frankfurt v6 ecs",
        Via::Udp4,
        www(RecordType::A).ecs("2a02:8100:5::/56").to_bytes(),
        |r| assert_eq!(first_addr(r), "192.0.2.20"),
    );
    add(
        "dublin office",
        Via::Udp4,
        www(RecordType::AAAA).ecs("10.20.5.0/24").to_bytes(),
        |r| assert_eq!(first_addr(r), "2001:db8::20"),
    );
    add(
        "source prefix 0",
        Via::Udp4,
        www(RecordType::A).ecs("0.0.0.0/0").to_bytes(),
        |r| assert_eq!(rcode(r), ResponseCode::NoError),
    );
    // Without ECS: the client's own address (not in the database: the default regions).
    add(
        "no ecs",
        Via::Udp4,
        www(RecordType::A).edns(1232).to_bytes(),
        |r| assert_eq!(first_addr(r), "192.0.2.10"),
    );
    add(
        "no edns",
        Via::Udp6,
        www(RecordType::AAAA).to_bytes(),
        |r| assert_eq!(first_addr(r), "2001:db8::10"),
    );
    add(
        "rd, 0x20 case",
        Via::Udp4,
        Q::new("wWw.GsLb.ExAmPlE.", RecordType::A)
            .rd()
            .ecs("85.214.0.0/16")
            .to_bytes(),
        |r| assert_eq!(first_addr(r), "192.0.2.20"),
    );
    // Static data.
    add(
        "static",
        Via::Udp4,
        Q::new("static.gslb.example.", RecordType::A)
            .edns(1232)
            .to_bytes(),
        |r| assert_eq!(msg(r).answers.len(), 2),
    );
    add(
        "static v6",
        Via::Udp6,
        Q::new("static.gslb.example.", RecordType::A).to_bytes(),
        |r| assert_eq!(msg(r).answers.len(), 2),
    );
    add(
        "mx",
        Via::Udp4,
        Q::new("gslb.example.", RecordType::MX)
            .edns(1232)
            .to_bytes(),
        |r| assert_eq!(msg(r).answers.len(), 2),
    );
    add(
        "cname into steered",
        Via::Udp4,
        Q::new("api.gslb.example.", RecordType::A)
            .ecs("110.32.0.0/24")
            .to_bytes(),
        |r| assert_eq!(msg(r).answers.len(), 2),
    );
    add(
        "wildcard",
        Via::Udp4,
        Q::new("x.apps.gslb.example.", RecordType::A)
            .edns(1232)
            .to_bytes(),
        |r| assert_eq!(first_addr(r), "203.0.113.80"),
    );
    add(
        "referral",
        Via::Udp4,
        Q::new("a.sub.gslb.example.", RecordType::A)
            .edns(1232)
            .to_bytes(),
        |r| assert!(!msg(r).authorities.is_empty()),
    );
    add(
        "refused",
        Via::Udp4,
        Q::new("example.org.", RecordType::A).edns(1232).to_bytes(),
        |r| assert_eq!(rcode(r), ResponseCode::Refused),
    );
    // Negative answers.
    add(
        "nxdomain",
        Via::Udp4,
        Q::new("nope.gslb.example.", RecordType::A)
            .edns(1232)
            .to_bytes(),
        |r| assert_eq!(rcode(r), ResponseCode::NXDomain),
    );
    add(
        "nxdomain v6",
        Via::Udp6,
        Q::new("nope.gslb.example.", RecordType::AAAA).to_bytes(),
        |r| assert_eq!(rcode(r), ResponseCode::NXDomain),
    );
    add(
        "nodata",
        Via::Udp4,
        Q::new("static.gslb.example.", RecordType::AAAA)
            .edns(1232)
            .to_bytes(),
        |r| {
            let m = msg(r);
            assert_eq!(
                (m.metadata.response_code, m.answers.len()),
                (ResponseCode::NoError, 0)
            )
        },
    );
    add(
        "nodata steered",
        Via::Udp4,
        www(RecordType::MX).ecs("81.2.3.0/24").to_bytes(),
        |r| assert_eq!(msg(r).answers.len(), 0),
    );
    // DO bit.
    add(
        "do steered",
        Via::Udp4,
        www(RecordType::A).ecs("81.2.3.0/24").dnssec_ok().to_bytes(),
        |r| assert!(msg(r).edns.as_ref().is_some_and(|e| e.flags().dnssec_ok)),
    );
    add(
        "do static",
        Via::Udp6,
        Q::new("static.gslb.example.", RecordType::A)
            .dnssec_ok()
            .to_bytes(),
        |r| assert!(msg(r).edns.as_ref().is_some_and(|e| e.flags().dnssec_ok)),
    );
    // Malformed: an ECS option that lies about its family, a question cut short, a response.
    add(
        "malformed ecs",
        Via::Udp4,
        www(RecordType::A)
            .raw_ecs(&[0, 7, 24, 0, 81, 2, 3])
            .to_bytes(),
        |r| assert_eq!(rcode(r), ResponseCode::FormErr),
    );
    add(
        "ecs source beyond 32",
        Via::Udp4,
        www(RecordType::A)
            .raw_ecs(&[0, 1, 33, 0, 81, 2, 3, 4, 5])
            .to_bytes(),
        |r| assert_eq!(rcode(r), ResponseCode::FormErr),
    );
    add(
        "cut question",
        Via::Udp4,
        {
            let mut b = www(RecordType::A).to_bytes();
            b.truncate(20);
            b
        },
        |r| assert_eq!(rcode(r), ResponseCode::FormErr),
    );
    add(
        "a response",
        Via::Udp4,
        {
            let mut b = www(RecordType::A).to_bytes();
            b[2] |= 0x80;
            b
        },
        |r| assert!(r.is_none(), "responses are never answered"),
    );
    add("short", Via::Udp6, vec![0x42; 7], |r| assert!(r.is_none()));
    // Size: truncated at a small EDNS size and without EDNS, and one larger than the MTU.
    add(
        "truncated",
        Via::Udp4,
        Q::new("big.big.test.", RecordType::TXT)
            .edns(512)
            .to_bytes(),
        |r| {
            let m = msg(r);
            assert!(m.metadata.truncation && m.answers.is_empty(), "TC")
        },
    );
    add(
        "truncated no edns",
        Via::Udp6,
        Q::new("big.big.test.", RecordType::TXT).to_bytes(),
        |r| assert!(msg(r).metadata.truncation),
    );
    add(
        "larger than the mtu",
        Via::Udp4,
        Q::new("big.big.test.", RecordType::TXT)
            .edns(4096)
            .to_bytes(),
        |r| {
            let m = msg(r);
            assert!(!m.metadata.truncation && m.answers.len() == 12);
            assert!(r.as_ref().unwrap().len() > MTU, "fragmented");
        },
    );
    add(
        "larger than the mtu v6",
        Via::Udp6,
        Q::new("big.big.test.", RecordType::TXT)
            .edns(4096)
            .to_bytes(),
        |r| assert_eq!(msg(r).answers.len(), 12),
    );
    // Fragmented queries: the program passes fragments to the kernel, whose socket answers.
    add(
        "fragmented query",
        Via::Udp4,
        padded(www(RecordType::A).ecs("81.2.3.0/24"), 1600),
        |r| assert_eq!(first_addr(r), "192.0.2.20"),
    );
    add(
        "fragmented query v6",
        Via::Udp6,
        padded(www(RecordType::AAAA), 1600),
        |r| assert_eq!(first_addr(r), "2001:db8::10"),
    );
    // TCP: always the kernel's.
    add(
        "tcp steered",
        Via::Tcp4,
        www(RecordType::A).ecs("81.2.3.0/24").to_bytes(),
        |r| assert_eq!(first_addr(r), "192.0.2.20"),
    );
    add(
        "tcp big",
        Via::Tcp6,
        Q::new("big.big.test.", RecordType::TXT).to_bytes(),
        |r| assert_eq!(msg(r).answers.len(), 12),
    );
    // Another port: passed to the kernel, answered by the test's echo socket.
    add(
        "other port",
        Via::OtherPort,
        www(RecordType::A).to_bytes(),
        |r| assert!(r.as_ref().is_some_and(|b| b.starts_with(b"echo:"))),
    );
    out
}

/// IP and UDP header bytes of a datagram sent this way.
fn overhead(via: Via) -> usize {
    if via == Via::Udp6 { 48 } else { 28 }
}

/// Whether the program should redirect this case's datagram to gslbd: UDP to port 53 that is
/// not fragmented.
fn redirected(c: &Case) -> bool {
    matches!(c.via, Via::Udp4 | Via::Udp6) && c.bytes.len() + overhead(c.via) <= MTU
}

/// Sends one case from the client namespace; the answer, or `None` after `wait`.
fn send(c: &Case, wait: Duration) -> Option<Vec<u8>> {
    let (v4, v6): (IpAddr, IpAddr) = (SERVER4.parse().unwrap(), SERVER6.parse().unwrap());
    let udp = |to: SocketAddr| {
        let any = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let s = UdpSocket::bind(any).unwrap();
        s.set_read_timeout(Some(wait)).unwrap();
        s.send_to(&c.bytes, to).unwrap();
        let mut buf = vec![0u8; 65535];
        let (n, from) = s.recv_from(&mut buf).ok()?;
        assert_eq!(
            from, to,
            "{}: the answer comes from where the query went",
            c.name
        );
        Some(buf[..n].to_vec())
    };
    let tcp = |to: SocketAddr| {
        let mut s = TcpStream::connect_timeout(&to, wait).ok()?;
        s.set_read_timeout(Some(wait)).unwrap();
        let mut framed = (c.bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&c.bytes);
        s.write_all(&framed).ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).ok()?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).ok()?;
        Some(buf)
    };
    match c.via {
        Via::Udp4 => udp(SocketAddr::new(v4, 53)),
        Via::Udp6 => udp(SocketAddr::new(v6, 53)),
        Via::Tcp4 => tcp(SocketAddr::new(v4, 53)),
        Via::Tcp6 => tcp(SocketAddr::new(v6, 53)),
        Via::OtherPort => udp(SocketAddr::new(v4, OTHER_PORT)),
    }
}

/// Every case's answer, in order.
fn ask(pair: &Pair, cases: &[Case]) -> Vec<Option<Vec<u8>>> {
    pair.client(|| {
        cases
            .iter()
            .map(|c| {
                // Silence is the expected answer to some: wait less for those.
                let wait = if c.name == "a response" || c.name == "short" {
                    Duration::from_millis(500)
                } else {
                    Duration::from_secs(3)
                };
                send(c, wait)
            })
            .collect()
    })
}

/// An RRL burst from [`RRL_CLIENT`]: 20 queries sent at once (IDs 1–20), then whatever comes
/// back within half a second, by ID. With 5 responses a second and slip 2: the first 5 answered,
/// then every other one slipped (TC, no records) and the rest dropped; tried again in a fresh
/// second if the burst happened to straddle one.
fn rrl_burst(pair: &Pair) -> BTreeMap<u16, Vec<u8>> {
    for _ in 0..3 {
        let got = pair.client(|| {
            let s = UdpSocket::bind(format!("{RRL_CLIENT}:0")).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            for id in 1..=20u16 {
                let mut q = Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24");
                q.id = id;
                s.send_to(&q.to_bytes(), (SERVER4, 53)).unwrap();
            }
            let mut got = BTreeMap::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.recv(&mut buf) {
                got.insert(u16::from_be_bytes([buf[0], buf[1]]), buf[..n].to_vec());
            }
            got
        });
        let full = got
            .values()
            .filter(|b| !Message::from_vec(b).unwrap().metadata.truncation)
            .count();
        if full == 5 {
            return got;
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
    panic!("RRL never limited a burst to 5 answers");
}

/// What one mode's run saw: every case's answer, the query-path counters, the RRL burst.
struct Run {
    answers: Vec<Option<Vec<u8>>>,
    counted: BTreeMap<String, f64>,
    rrl: BTreeMap<u16, Vec<u8>>,
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

#[test]
fn xdp_answers_what_the_sockets_answer_and_passes_the_rest_to_them() {
    assert!(
        is_root(),
        "this test creates network namespaces and attaches XDP programs: run the suite as root (CI does)"
    );
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    let zones = zones_dir(dir.path());
    // The other port's echo socket, in the server namespace; served from here.
    let echo = Pair::within(&pair.server, || {
        UdpSocket::bind((SERVER4, OTHER_PORT)).unwrap()
    });
    echo.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let echo_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let echo_thread = {
        let stop = echo_stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, from)) = echo.recv_from(&mut buf) {
                    let mut reply = b"echo:".to_vec();
                    reply.extend_from_slice(&buf[..n]);
                    let _ = echo.send_to(&reply, from);
                }
            }
        })
    };

    let cases = cases();
    let mut baseline: Option<Run> = None;
    for mode in [Mode::Sockets, Mode::XdpNative, Mode::XdpGenericWildcard] {
        let server = Server::start(&pair, dir.path(), &zones, mode);
        assert_eq!(pair.xdp_attached(), mode != Mode::Sockets, "{mode:?}");
        let answers = ask(&pair, &cases);
        let metrics = pair.client(metrics_text).expect("metrics");
        // The query-path counters, which must not depend on the transport's implementation.
        let mut counted = BTreeMap::new();
        for family in [
            "gslbd_queries_total",
            "gslbd_answers_total",
            "gslbd_ecs_",
            "gslbd_truncated_total",
            "gslbd_transport_queries_total",
            "gslbd_answer_duration_seconds_count",
        ] {
            counted.extend(samples(&metrics, family));
        }
        let xdp = samples(&metrics, "gslbd_xdp_");
        let rrl = rrl_burst(&pair);
        let after_rrl = samples(&pair.client(metrics_text).expect("metrics"), "gslbd_rrl_");
        let slipped = after_rrl["gslbd_rrl_limited_total{action=\"slipped\"}"];
        let dropped = after_rrl["gslbd_rrl_limited_total{action=\"dropped\"}"];
        assert!(
            slipped >= 7.0 && slipped + dropped >= 15.0,
            "{mode:?}: {after_rrl:?}"
        );
        let log = server.stop();
        assert!(!pair.xdp_attached(), "{mode:?}: detached at shutdown");

        match &baseline {
            None => {
                for (c, a) in cases.iter().zip(&answers) {
                    (c.check)(a);
                }
                assert!(xdp.is_empty(), "no XDP counters in socket mode: {xdp:?}");
                baseline = Some(Run {
                    answers,
                    counted,
                    rrl,
                });
            }
            Some(Run {
                answers: want,
                counted: want_counted,
                rrl: want_rrl,
            }) => {
                for ((c, got), want) in cases.iter().zip(&answers).zip(want) {
                    assert_eq!(
                        got, want,
                        "{mode:?}: {} ({:?}) differs from socket mode",
                        c.name, c.via
                    );
                }
                assert_eq!(
                    &counted, want_counted,
                    "{mode:?}: the query counters differ"
                );
                assert_eq!(&rrl, want_rrl, "{mode:?}: the RRL burst differs");
                // The XDP path took exactly the datagrams it should have, and accounts for each.
                let (mut rx, mut silent, mut large) = (0.0, 0.0, 0.0);
                for (c, a) in cases.iter().zip(want) {
                    if redirected(c) {
                        rx += 1.0;
                        match a {
                            None => silent += 1.0,
                            Some(b) if b.len() + overhead(c.via) > MTU => large += 1.0,
                            Some(_) => {}
                        }
                    }
                }
                let get = |k: &str| xdp.get(k).copied().unwrap_or(-1.0);
                assert_eq!(
                    get("gslbd_xdp_packets_total{queue=\"0\",direction=\"rx\"}"),
                    rx,
                    "{xdp:?}"
                );
                assert_eq!(
                    get("gslbd_xdp_unanswered_total{queue=\"0\"}"),
                    silent,
                    "{xdp:?}"
                );
                assert_eq!(
                    get("gslbd_xdp_socket_replies_total{queue=\"0\"}"),
                    large,
                    "{xdp:?}"
                );
                assert_eq!(
                    get("gslbd_xdp_packets_total{queue=\"0\",direction=\"tx\"}"),
                    rx - silent - large,
                    "{xdp:?}"
                );
                assert_eq!(
                    get("gslbd_xdp_kernel_dropped_total{queue=\"0\"}"),
                    0.0,
                    "{xdp:?}"
                );
                let attached = if mode == Mode::XdpNative {
                    "native"
                } else {
                    "generic"
                };
                assert!(
                    log.contains("XDP listening")
                        && log.contains(&format!("\"mode\":\"{attached}\"")),
                    "{log}"
                );
                assert!(log.contains("XDP program detached"), "{log}");
            }
        }
    }
    echo_stop.store(true, Ordering::Relaxed);
    echo_thread.join().unwrap();
}

#[test]
fn a_missing_interface_stops_the_start_with_its_name() {
    let mut cfg = gslbd::config::ServerConfig::for_zones(
        repo().join("zones"),
        vec!["127.0.0.1:0".parse().unwrap()],
    );
    cfg.listen_xdp = Some(gslbd::config::ListenXdp {
        interface: "gslbd-none0".into(),
        queues: vec![0],
        mode: gslbd::config::XdpMode::Auto,
    });
    let loaded = gslbd::config::load_with(cfg).expect("the example loads");
    let err = gslbd::server::launch(loaded, Default::default())
        .err()
        .expect("no start without the interface")
        .to_string();
    assert!(
        err.contains("listen_xdp on gslbd-none0: no such interface"),
        "{err}"
    );
}
