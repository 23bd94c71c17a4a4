//! Start gslbd on 127.0.0.1:0, send it queries, read the answers.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use gslbd::config::{self, ServerConfig};
use gslbd::health::{HealthHandle, HealthStatus, Override};
use gslbd::server::{self, Gslbd};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// RRsets signed so far by every signed zone being served (at load and since).
pub fn rrsets_signed(served: &gslbd::served::Served) -> u64 {
    served
        .zones
        .zones
        .iter()
        .filter_map(|z| z.dnssec.as_ref())
        .map(|sg| sg.cache.signed())
        .sum()
}

pub fn sample_mmdb() -> PathBuf {
    repo().join("geodata/sample-city.mmdb")
}

/// A running gslbd. Stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    running: Option<Gslbd>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// The shipped example: `zones/` and the sample geodata.
    pub fn example() -> Self {
        let mut cfg =
            ServerConfig::for_zones(repo().join("zones"), vec!["127.0.0.1:0".parse().unwrap()]);
        cfg.geodata = Some(sample_mmdb());
        Self::from_config(cfg, None)
    }

    /// A server for the given zone files (name, TOML text), with optional geodata.
    pub fn with_zones(files: &[(&str, &str)], geodata: Option<&Path>) -> Self {
        Self::with_zones_cfg(files, geodata, |_| {})
    }

    /// Like [`Self::with_zones`], with a chance to change the server config (its zone directory
    /// is passed along so a state file can sit beside it).
    pub fn with_zones_cfg(
        files: &[(&str, &str)],
        geodata: Option<&Path>,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let zones = dir.path().join("zones");
        std::fs::create_dir(&zones).unwrap();
        for (name, text) in files {
            std::fs::write(zones.join(name), text).unwrap();
        }
        let mut cfg = ServerConfig::for_zones(&zones, vec!["127.0.0.1:0".parse().unwrap()]);
        cfg.geodata = geodata.map(Path::to_path_buf);
        tweak(&mut cfg);
        Self::from_config(cfg, Some(dir))
    }

    pub fn from_config(cfg: ServerConfig, dir: Option<tempfile::TempDir>) -> Self {
        let loaded = match config::load_with(cfg) {
            Ok(l) => l,
            Err(d) => panic!("config does not load:\n{d}"),
        };
        let running = server::launch(loaded, server::LaunchOptions::default()).unwrap();
        Self {
            addr: running.dns_addrs()[0],
            running: Some(running),
            _dir: dir,
        }
    }

    pub fn health(&self) -> &HealthHandle {
        self.running.as_ref().unwrap().health()
    }

    pub fn gslbd(&self) -> &Gslbd {
        self.running.as_ref().unwrap()
    }

    /// The runner's current view of every region.
    pub fn status(&self) -> std::sync::Arc<HealthStatus> {
        self.health().status.load_full()
    }

    /// Sets an operator override and waits until it is applied.
    pub fn set_override(&self, zone: &str, region: &str, vip: Option<IpAddr>, ov: Override) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(self.health().set_override(zone, region, vip, ov))
            .unwrap();
    }

    /// Sends over UDP and parses the answer; panics if none comes.
    pub fn udp(&self, q: &Q) -> Message {
        let bytes = udp_raw(self.addr, &q.to_bytes()).expect("no UDP answer");
        Message::from_vec(&bytes).expect("answer does not parse")
    }

    /// Sends over TCP and parses the answer; panics if none comes.
    pub fn tcp(&self, q: &Q) -> Message {
        let bytes = tcp_raw(self.addr, &q.to_bytes()).expect("no TCP answer");
        Message::from_vec(&bytes).expect("answer does not parse")
    }

    /// Both transports: the same query over UDP and TCP, each answer passed to `check`.
    pub fn both(&self, q: &Q, check: impl Fn(&Message, &str)) {
        check(&self.udp(q), "udp");
        check(&self.tcp(q), "tcp");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

/// Sends raw bytes over UDP; `None` when nothing comes back within a second.
pub fn udp_raw(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    sock.send_to(bytes, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// Sends raw bytes over TCP with the 2-byte length prefix; `None` on close or timeout.
pub fn tcp_raw(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(2000)))
        .unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// A query under construction.
#[derive(Clone)]
pub struct Q {
    pub name: String,
    pub rtype: RecordType,
    pub class: DNSClass,
    pub op: OpCode,
    pub rd: bool,
    pub edns: Option<Edns>,
    pub id: u16,
}

impl Q {
    pub fn new(name: &str, rtype: RecordType) -> Self {
        Self {
            name: name.to_string(),
            rtype,
            class: DNSClass::IN,
            op: OpCode::Query,
            rd: false,
            edns: None,
            id: 0x4242,
        }
    }
    pub fn rd(mut self) -> Self {
        self.rd = true;
        self
    }
    pub fn class(mut self, c: DNSClass) -> Self {
        self.class = c;
        self
    }
    pub fn op(mut self, op: OpCode) -> Self {
        self.op = op;
        self
    }
    /// EDNS0 with this UDP payload size.
    pub fn edns(mut self, payload: u16) -> Self {
        let mut e = self.edns.take().unwrap_or_default();
        e.set_max_payload(payload);
        self.edns = Some(e);
        self
    }
    pub fn edns_version(mut self, v: u8) -> Self {
        let mut e = self.edns.take().unwrap_or_default();
        e.set_max_payload(1232).set_version(v);
        self.edns = Some(e);
        self
    }
    /// EDNS with a well-formed ECS option for `net` (`"81.2.3.0/24"`).
    pub fn ecs(self, net: &str) -> Self {
        let subnet: ClientSubnet = net.parse().unwrap();
        self.option(EdnsOption::Subnet(subnet))
    }
    /// EDNS with an ECS option of exactly these OPTION-DATA bytes (for malformed cases).
    pub fn raw_ecs(self, data: &[u8]) -> Self {
        self.option(EdnsOption::Unknown(8, data.to_vec()))
    }
    /// EDNS with the DO bit (RFC 3225).
    pub fn dnssec_ok(mut self) -> Self {
        let mut e = self.edns.take().unwrap_or_else(|| {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            e
        });
        e.set_dnssec_ok(true);
        self.edns = Some(e);
        self
    }
    pub fn option(mut self, o: EdnsOption) -> Self {
        let mut e = self.edns.take().unwrap_or_else(|| {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            e
        });
        e.options_mut().insert(o);
        self.edns = Some(e);
        self
    }
    pub fn message(&self) -> Message {
        let mut m = Message::new(self.id, MessageType::Query, self.op);
        m.metadata.recursion_desired = self.rd;
        let mut q = Query::query(Name::from_ascii(&self.name).unwrap(), self.rtype);
        q.set_query_class(self.class);
        m.add_query(q);
        if let Some(e) = &self.edns {
            m.set_edns(e.clone());
        }
        m
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        self.message().to_vec().unwrap()
    }
}

/// The ECS option of a response.
pub fn ecs_of(m: &Message) -> Option<ClientSubnet> {
    match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) => Some(*s),
        _ => None,
    }
}

/// The addresses in the answer section, in order.
pub fn addrs(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// `name type` of each record of a section, for readable assertions.
pub fn rrs(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect()
}

/// A spawned `gslbd` process that is killed when dropped, so a failing test leaves nothing
/// running.
pub struct Spawned(pub std::process::Child);

impl Spawned {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Waits for exit (after the test sent a signal itself).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.0.wait().expect("wait for gslbd")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A port for a server another process binds: free on `ip` for UDP and TCP when asked, and
/// outside the kernel's ephemeral range (32768–60999), so no socket bound to port 0 by a test
/// running beside this one can take it before the server binds it.
pub fn free_port_on(ip: &str) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Tests in this binary take turns through the range; each process starts at its own place.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20_000 + (std::process::id() % 5_000) as u16;
    for _ in 0..5_000 {
        let port = 20_000 + (start - 20_000 + NEXT.fetch_add(1, Ordering::Relaxed)) % 10_000;
        let udp = UdpSocket::bind((ip, port));
        let tcp = std::net::TcpListener::bind((ip, port));
        if udp.is_ok() && tcp.is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip} in 20000-29999");
}

/// [`free_port_on`] 127.0.0.1.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}
