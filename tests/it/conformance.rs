//! Differential test: gslbd answers static data like NSD 4.6 and Knot DNS 3.2.
//!
//! The zone `conf.example.` (`tests/conformance/conf.example.zone`, with every record type we
//! serve, wildcards, empty non-terminals, delegations, CNAME chains and large RRsets) is served by
//! three servers at once: NSD and Knot as child processes on loopback ports, each from a
//! generated config in its own temporary directory, and gslbd in-process. A corpus of raw queries,
//! odd ones included (classes, opcodes, EDNS versions, QDCOUNT 0, meta types), goes to each over
//! UDP and TCP. Every response is reduced to a normal form by a wire parser written here, not
//! hickory's, so that a bug in one parser cannot hide a difference in the other. gslbd's normal
//! form must equal NSD's or Knot's (where those two disagree, either is right).
//!
//! Differences we mean to keep are declared in README.md, section `### Differences from NSD and
//! Knot`: a table whose first column is a backticked key. Each key names a rule below (see
//! [`RULES`]) that normalises that difference away before comparing; an unknown key fails the
//! test, so the README and the test cannot drift apart.
//!
//! Layout: servers (start, wait, stop) → queries (encoder, corpus) → responses (parser, normal
//! form) → comparison (rules, verdicts, report).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::{TestServer, free_port, repo};

/// The zone all three servers serve.
const ZONE: &str = "conf.example.";
/// The master file, in `tests/conformance/`, copied as-is to every server.
const MASTER_FILE: &str = "conf.example.zone";
/// gslbd's zone file for it, in `tests/conformance/`.
const ZONE_TOML: &str = "conf.example.toml";
/// The README section that lists the differences we keep, one rule key per table row.
const DIFFERENCES_HEADING: &str = "### Differences from NSD and Knot";
/// Every query carries this ID; every response must echo it.
const QUERY_ID: u16 = 0x5a5a;
/// How long to wait for a UDP answer before calling it "no answer" (generous: the other
/// integration tests run alongside on two cores).
const UDP_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long to wait for a TCP answer (a server may also just close the connection).
const TCP_TIMEOUT: Duration = Duration::from_millis(2000);
/// Queries in flight to one server at a time; no-answer cases wait out their timeout in
/// parallel, which keeps the whole test well under its time budget.
const LANES: usize = 8;

#[test]
fn gslbd_answers_static_data_like_nsd_and_knot() {
    let nsd_bin = require_binary("nsd");
    let knotd_bin = require_binary("knotd");
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("read README.md");
    let rules = declared_rules(&readme);
    let fixture = Fixture::load();

    // gslbd first: if it cannot load the zone, the references need not start.
    let gslbd = TestServer::with_zones(
        &[(ZONE_TOML, &fixture.toml), (MASTER_FILE, &fixture.master)],
        None,
    );
    wait_until_serving("gslbd", gslbd.addr, || None);
    let nsd = Peer::nsd(&nsd_bin, &fixture);
    let knot = Peer::knot(&knotd_bin, &fixture);

    let cases = corpus(&fixture.master);
    let all = &cases;
    let [g, n, k] = std::thread::scope(|s| {
        [gslbd.addr, nsd.addr, knot.addr]
            .map(|addr| s.spawn(move || run_corpus(addr, all)))
            .map(|h| h.join().expect("a query thread panicked"))
    });
    // Stopped before the verdict: a failing comparison needs no server files kept.
    drop((nsd, knot, gslbd));
    let report = compare(&cases, g, n, k, &rules);
    println!("{report}");
    assert_eq!(
        report.different.len(),
        0,
        "gslbd differs from both NSD and Knot in {} of {} cases (diffs above); fix gslbd or \
         declare the difference in README.md `{DIFFERENCES_HEADING}` with a rule key known to \
         tests/it/conformance.rs",
        report.different.len(),
        cases.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Servers: the fixture, NSD and Knot as child processes, readiness
// ---------------------------------------------------------------------------------------------

/// The committed zone data.
struct Fixture {
    master: String,
    toml: String,
}

impl Fixture {
    fn load() -> Self {
        let dir = repo().join("tests/conformance");
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("read {f}: {e}"))
        };
        Self {
            master: read(MASTER_FILE),
            toml: read(ZONE_TOML),
        }
    }
}

/// Finds a reference server's binary on `PATH` or in the sbin directories Debian installs to
/// (often not on a user's `PATH`). A missing binary fails the test: skipping would let the
/// comparison silently stop happening.
fn require_binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found: this test compares gslbd with NSD and Knot DNS. Run the \
                 README's test command (`.ci/test`), which installs them (Debian packages `nsd` \
                 and `knot`)"
            )
        })
}

/// A reference server running as a child process in its own process group, with its directory
/// (config, zone copy, pid, database and state files, log). Dropping it stops the whole group,
/// also when the test panics, so NSD's forked server and xfrd processes go too.
struct Peer {
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Peer {
    /// NSD in the foreground (`-d`), unprivileged-style: no user switch, no chroot, every file
    /// in its directory, no zone transfers, no remote control.
    fn nsd(bin: &Path, fixture: &Fixture) -> Self {
        let (dir, addr) = Self::prepare(fixture);
        let d = dir.path().display();
        let port = addr.port();
        let conf = format!(
            r#"server:
    ip-address: 127.0.0.1@{port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    zonelistfile: "{d}/zone.list"
    database: ""
    logfile: "{d}/nsd.log"
    verbosity: 0
    server-count: 1
    # Server identity is not zone data: without these, CH TXT version.bind answers "NSD 4.6.1".
    hide-version: yes
    hide-identity: yes
    # The corpus is a burst from one address; rate limiting would drop part of it.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: {ZONE}
    zonefile: {MASTER_FILE}
"#
        );
        Self::start("nsd", bin, dir, addr, &conf, &["-d", "-c"])
    }

    /// Knot in the foreground, with its run directory and storage (timers, journal, KASP
    /// database) in its directory and zone-file writing and journaling off.
    fn knot(bin: &Path, fixture: &Fixture) -> Self {
        let (dir, addr) = Self::prepare(fixture);
        let d = dir.path().display();
        let port = addr.port();
        let conf = format!(
            r#"server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    # Server identity is not zone data (see the NSD config).
    identity: ""
    version: ""
log:
  - target: stderr
    any: warning
database:
    storage: "{d}"
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: {ZONE}
    file: {MASTER_FILE}
"#
        );
        Self::start("knot", bin, dir, addr, &conf, &["-c"])
    }

    /// A fresh directory holding the zone, and the address the server will listen on.
    fn prepare(fixture: &Fixture) -> (tempfile::TempDir, SocketAddr) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(MASTER_FILE), &fixture.master).expect("write zone");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        (dir, addr)
    }

    /// Writes `conf`, runs `bin <args> <conf>` with output to `<name>.out`, and waits for it to
    /// answer the zone's SOA.
    fn start(
        name: &'static str,
        bin: &Path,
        dir: tempfile::TempDir,
        addr: SocketAddr,
        conf: &str,
        args: &[&str],
    ) -> Self {
        let conf_path = dir.path().join(format!("{name}.conf"));
        std::fs::write(&conf_path, conf).expect("write config");
        let out = std::fs::File::create(dir.path().join(format!("{name}.out"))).expect("log");
        let child = Command::new(bin)
            .args(args)
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut peer = Self { addr, child, dir };
        let dir = peer.dir.path().to_path_buf();
        let child = &mut peer.child;
        wait_until_serving(name, addr, || match child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "it exited ({status}); its output:\n{}",
                output(&dir)
            )),
            _ => None,
        });
        peer
    }

    /// Sends `sig` to the server's process group (its id is the child's pid).
    fn signal_group(&self, sig: libc::c_int) {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) takes plain integers; a negative pid addresses only the process group
        // this test created for the child (`process_group(0)` above).
        #[allow(unsafe_code, reason = "kill(2) is a C call")]
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

impl Drop for Peer {
    /// SIGTERM to the group lets NSD stop its own children before it exits; SIGKILL follows
    /// only while the leader is still there (once it is reaped, its group id could in theory
    /// name someone else's processes).
    fn drop(&mut self) {
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut exited = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !exited {
            self.signal_group(libc::SIGKILL);
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            // Something failed while the server ran: keep its config and logs to read.
            eprintln!("kept {} (config, zone, logs)", self.dir.path().display());
            let _ = std::mem::replace(&mut self.dir, tempfile::TempDir::new().expect("temp dir"))
                .keep();
        }
    }
}

/// What a server wrote to its output and log files in `dir`.
fn output(dir: &Path) -> String {
    ["nsd.out", "nsd.log", "knot.out"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(dir.join(f)).ok())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until `addr` answers the zone's SOA with NOERROR and an answer. `died` reports why the
/// server cannot come up any more (its process exited), which ends the wait early.
fn wait_until_serving(name: &str, addr: SocketAddr, mut died: impl FnMut() -> Option<String>) {
    let probe = Query::new(ZONE, rtype::SOA).encode();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(reply) = udp_exchange(addr, &probe, Duration::from_millis(200))
            && let Outcome::Answer(m) = parse_response(&reply).outcome
            && m.rcode == 0
            && !m.answer.is_empty()
        {
            return;
        }
        if let Some(why) = died() {
            panic!("{name} did not start: {why}");
        }
        assert!(
            Instant::now() < deadline,
            "{name} on {addr} did not answer `{ZONE} SOA` within 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// Queries: a raw encoder (odd queries included) and the corpus
// ---------------------------------------------------------------------------------------------

/// Type codes used by the corpus and in printed records.
mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const DS: u16 = 43;
    pub const OPT: u16 = 41;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const DNSKEY: u16 = 48;
    pub const TKEY: u16 = 249;
    pub const TSIG: u16 = 250;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const MAILB: u16 = 253;
    pub const MAILA: u16 = 254;
    pub const ANY: u16 = 255;
}

/// Mnemonics of the types this test writes or prints; others print as `TYPEnnn`.
const TYPE_NAMES: &[(&str, u16)] = &[
    ("A", 1),
    ("NS", 2),
    ("MD", 3),
    ("MF", 4),
    ("CNAME", 5),
    ("SOA", 6),
    ("MB", 7),
    ("MG", 8),
    ("MR", 9),
    ("NULL", 10),
    ("PTR", 12),
    ("HINFO", 13),
    ("MINFO", 14),
    ("MX", 15),
    ("TXT", 16),
    ("RP", 17),
    ("AFSDB", 18),
    ("AAAA", 28),
    ("LOC", 29),
    ("SRV", 33),
    ("NAPTR", 35),
    ("CERT", 37),
    ("DNAME", 39),
    ("OPT", 41),
    ("DS", 43),
    ("SSHFP", 44),
    ("RRSIG", 46),
    ("NSEC", 47),
    ("DNSKEY", 48),
    ("NSEC3", 50),
    ("TLSA", 52),
    ("SMIMEA", 53),
    ("CDS", 59),
    ("CDNSKEY", 60),
    ("OPENPGPKEY", 61),
    ("SVCB", 64),
    ("HTTPS", 65),
    ("SPF", 99),
    ("EUI48", 108),
    ("EUI64", 109),
    ("TKEY", 249),
    ("TSIG", 250),
    ("IXFR", 251),
    ("AXFR", 252),
    ("MAILB", 253),
    ("MAILA", 254),
    ("ANY", 255),
    ("URI", 256),
    ("CAA", 257),
];

fn type_name(t: u16) -> String {
    TYPE_NAMES
        .iter()
        .find(|(_, c)| *c == t)
        .map_or_else(|| format!("TYPE{t}"), |(n, _)| n.to_string())
}

fn type_code(name: &str) -> Option<u16> {
    let up = name.to_ascii_uppercase();
    TYPE_NAMES
        .iter()
        .find(|(n, _)| *n == up)
        .map(|(_, c)| *c)
        .or_else(|| up.strip_prefix("TYPE")?.parse().ok())
}

/// Query classes other than IN (1).
mod class {
    pub const CH: u16 = 3;
    pub const HS: u16 = 4;
    pub const NONE: u16 = 254;
    pub const ANY: u16 = 255;
}

fn class_name(c: u16) -> String {
    match c {
        1 => "IN".into(),
        3 => "CH".into(),
        4 => "HS".into(),
        254 => "NONE".into(),
        255 => "ANY".into(),
        _ => format!("CLASS{c}"),
    }
}

fn rcode_name(r: u16) -> String {
    const NAMES: [&str; 11] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE",
    ];
    match r {
        16 => "BADVERS".into(),
        _ => NAMES
            .get(usize::from(r))
            .map_or_else(|| format!("RCODE{r}"), |n| n.to_string()),
    }
}

/// Header bits of the second 16-bit word, below the opcode.
mod bit {
    pub const QR: u16 = 0x8000;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const Z: u16 = 0x0040;
    pub const AD: u16 = 0x0020;
    pub const CD: u16 = 0x0010;
}

/// EDNS option codes the corpus sends or the normaliser treats specially.
mod option {
    pub const NSID: u16 = 3;
    pub const ECS: u16 = 8;
    pub const COOKIE: u16 = 10;
    pub const EDE: u16 = 15;
    /// From the local/experimental range (RFC 6891 §9): nobody implements it.
    pub const UNKNOWN: u16 = 65001;
}

/// One question as written on the wire: the name keeps its case.
#[derive(Clone, Debug)]
struct Question {
    name: String,
    qtype: u16,
    qclass: u16,
}

/// The OPT pseudo-record of a query.
#[derive(Clone, Debug)]
struct QueryOpt {
    payload: u16,
    version: u8,
    dnssec_ok: bool,
    options: Vec<(u16, Vec<u8>)>,
}

/// EDNS as resolvers send it today (the DNS flag day 2020 payload), no options.
const STANDARD_EDNS: QueryOpt = QueryOpt {
    payload: 1232,
    version: 0,
    dnssec_ok: false,
    options: Vec::new(),
};

/// A query, encoded by hand so that odd ones (no question, two questions, any class, opcode or
/// flag) are possible.
#[derive(Clone, Debug)]
struct Query {
    opcode: u8,
    /// Header bits (see [`bit`]) set in the query.
    bits: u16,
    questions: Vec<Question>,
    edns: Option<QueryOpt>,
}

impl Query {
    /// A standard query as resolvers send it today: class IN, RD clear, EDNS with payload 1232.
    fn new(name: &str, qtype: u16) -> Self {
        Self {
            opcode: 0,
            bits: 0,
            questions: vec![Question {
                name: name.to_string(),
                qtype,
                qclass: 1,
            }],
            edns: Some(STANDARD_EDNS),
        }
    }

    fn no_edns(mut self) -> Self {
        self.edns = None;
        self
    }

    fn set(mut self, bits: u16) -> Self {
        self.bits |= bits;
        self
    }

    fn opcode(mut self, opcode: u8) -> Self {
        self.opcode = opcode;
        self
    }

    fn class(mut self, qclass: u16) -> Self {
        for q in &mut self.questions {
            q.qclass = qclass;
        }
        self
    }

    fn questions(mut self, questions: Vec<Question>) -> Self {
        self.questions = questions;
        self
    }

    /// The query's OPT, [`STANDARD_EDNS`] added if it has none.
    fn opt(&mut self) -> &mut QueryOpt {
        self.edns.get_or_insert(STANDARD_EDNS)
    }

    fn payload(mut self, payload: u16) -> Self {
        self.opt().payload = payload;
        self
    }

    fn dnssec_ok(mut self) -> Self {
        self.opt().dnssec_ok = true;
        self
    }

    fn version(mut self, version: u8) -> Self {
        self.opt().version = version;
        self
    }

    fn option(mut self, code: u16, data: &[u8]) -> Self {
        self.opt().options.push((code, data.to_vec()));
        self
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(64);
        let flags = (u16::from(self.opcode & 0x0f) << 11) | self.bits;
        for v in [QUERY_ID, flags, self.questions.len() as u16, 0, 0] {
            w.extend_from_slice(&v.to_be_bytes());
        }
        w.extend_from_slice(&u16::from(self.edns.is_some()).to_be_bytes());
        for q in &self.questions {
            encode_name(&mut w, &q.name);
            w.extend_from_slice(&q.qtype.to_be_bytes());
            w.extend_from_slice(&q.qclass.to_be_bytes());
        }
        if let Some(opt) = &self.edns {
            w.push(0);
            w.extend_from_slice(&rtype::OPT.to_be_bytes());
            w.extend_from_slice(&opt.payload.to_be_bytes());
            let ttl = (u32::from(opt.version) << 16) | if opt.dnssec_ok { 0x8000 } else { 0 };
            w.extend_from_slice(&ttl.to_be_bytes());
            let rdata: Vec<u8> = opt
                .options
                .iter()
                .flat_map(|(code, data)| {
                    [code.to_be_bytes(), (data.len() as u16).to_be_bytes()]
                        .concat()
                        .into_iter()
                        .chain(data.iter().copied())
                })
                .collect();
            w.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            w.extend_from_slice(&rdata);
        }
        w
    }
}

/// Writes `name` (dot-separated ASCII labels, case kept, `.` for the root) uncompressed.
fn encode_name(w: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        assert!(label.len() < 64, "label too long in {name}");
        w.push(label.len() as u8);
        w.extend_from_slice(label.as_bytes());
    }
    w.push(0);
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.opcode != 0 {
            write!(f, "opcode={} ", self.opcode)?;
        }
        if self.questions.len() != 1 {
            write!(f, "qdcount={} ", self.questions.len())?;
        }
        for q in &self.questions {
            write!(
                f,
                "{} {} {} ",
                q.name,
                class_name(q.qclass),
                type_name(q.qtype)
            )?;
        }
        write!(f, "{}", flag_names(self.bits))?;
        match &self.edns {
            None => write!(f, " no-edns"),
            Some(o) => {
                write!(f, " edns(v{} payload={}", o.version, o.payload)?;
                if o.dnssec_ok {
                    write!(f, " do")?;
                }
                for (code, data) in &o.options {
                    write!(f, " opt{code}={}", hex(data))?;
                }
                write!(f, ")")
            }
        }
    }
}

fn flag_names(bits: u16) -> String {
    let names = [
        (bit::QR, "qr"),
        (bit::AA, "aa"),
        (bit::TC, "tc"),
        (bit::RD, "rd"),
        (bit::RA, "ra"),
        (bit::Z, "z"),
        (bit::AD, "ad"),
        (bit::CD, "cd"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    format!("[{}]", set.join(" "))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

/// One query over one transport.
struct Case {
    transport: Transport,
    query: Query,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        write!(f, "{t} {}", self.query)
    }
}

/// The corpus under construction.
#[derive(Default)]
struct Corpus(Vec<Case>);

impl Corpus {
    fn udp(&mut self, query: Query) {
        self.0.push(Case {
            transport: Transport::Udp,
            query,
        });
    }

    fn tcp(&mut self, query: Query) {
        self.0.push(Case {
            transport: Transport::Tcp,
            query,
        });
    }

    fn both(&mut self, query: Query) {
        self.udp(query.clone());
        self.tcp(query);
    }
}

/// `rel` made absolute in the zone (`@` is the apex).
fn fq(rel: &str) -> String {
    match rel {
        "@" => ZONE.to_string(),
        _ if rel.ends_with('.') => rel.to_string(),
        _ => format!("{rel}.{ZONE}"),
    }
}

/// Every query of the test, over the transports each is meant for.
fn corpus(master: &str) -> Vec<Case> {
    let mut c = Corpus::default();
    every_name_and_type(&mut c, master);
    names_not_in_the_file(&mut c);
    mangled_case(&mut c);
    header_bits(&mut c);
    edns_variants(&mut c);
    truncation(&mut c);
    classes(&mut c);
    opcodes(&mut c);
    transfers_and_meta_types(&mut c);
    outside_the_zone(&mut c);
    question_counts(&mut c);
    c.0
}

/// Owner names of our master file (as written, made absolute) with the types at each. The file
/// keeps one record per line with the owner in the first column, so no full parser is needed.
fn zone_names(master: &str) -> BTreeMap<String, BTreeSet<u16>> {
    let mut names: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    let mut spelling: BTreeMap<String, String> = BTreeMap::new();
    for line in master.lines() {
        let line = line.split(';').next().unwrap_or("");
        assert!(
            !line.starts_with([' ', '\t']) || line.trim().is_empty(),
            "{MASTER_FILE}: write the owner of every record in the first column: {line:?}"
        );
        let mut tokens = line.split_whitespace();
        let Some(owner) = tokens.next() else { continue };
        if owner.starts_with('$') {
            continue;
        }
        let rtype = tokens
            .find(|t| !t.chars().all(|c| c.is_ascii_digit()) && *t != "IN")
            .and_then(type_code)
            .unwrap_or_else(|| panic!("{MASTER_FILE}: no type I know in {line:?}"));
        let owner = fq(owner);
        let name = spelling
            .entry(owner.to_ascii_lowercase())
            .or_insert(owner)
            .clone();
        names.entry(name).or_default().insert(rtype);
    }
    names
}

/// Every owner name × (each type it has, one it lacks, ANY), with EDNS over UDP and TCP and
/// without EDNS over UDP; DS at every delegation and at names where it is not.
fn every_name_and_type(c: &mut Corpus, master: &str) {
    for (name, types) in zone_names(master) {
        let absent = [rtype::A, rtype::TXT, rtype::MX]
            .into_iter()
            .find(|t| !types.contains(t))
            .unwrap_or(rtype::MX);
        for t in types.iter().copied().chain([absent, rtype::ANY]) {
            c.both(Query::new(&name, t));
            c.udp(Query::new(&name, t).no_edns());
        }
        if types.contains(&rtype::NS) && !types.contains(&rtype::DS) {
            c.both(Query::new(&name, rtype::DS));
        }
    }
    c.both(Query::new(&fq("www"), rtype::DS));
}

/// NXDOMAIN (below an existing name, below the wildcard's siblings, below empty non-terminals),
/// wildcard synthesis, empty non-terminals, and names below zone cuts.
fn names_not_in_the_file(c: &mut Corpus) {
    let cases: &[(&str, &[u16])] = &[
        // NXDOMAIN.
        ("nope", &[rtype::A, rtype::ANY]),
        ("x.www", &[rtype::A]),
        ("nowhere", &[rtype::A]),
        ("a.nope", &[rtype::TXT]),
        ("x.host.wild", &[rtype::A]),
        ("y.ent.wild", &[rtype::A]),
        ("x.c.deep", &[rtype::A]),
        ("x.b.c.deep", &[rtype::AAAA]),
        // Wildcard synthesis (RFC 4592): types present, absent, ANY, deeper names.
        ("foo.wild", &[rtype::A, rtype::TXT, rtype::MX, rtype::ANY]),
        ("a.b.wild", &[rtype::A]),
        ("foo.wcname", &[rtype::A, rtype::CNAME, rtype::TXT]),
        // Empty non-terminals.
        ("c.deep", &[rtype::A, rtype::ANY]),
        ("b.c.deep", &[rtype::TXT]),
        ("ent.wild", &[rtype::A, rtype::TXT]),
        ("_tcp.www", &[rtype::A]),
        ("_udp", &[rtype::TXT]),
        ("_smimecert", &[rtype::A]),
        // Below zone cuts: referrals.
        ("host.sub", &[rtype::A, rtype::DS]),
        ("a.b.sub", &[rtype::AAAA]),
        ("host.signed", &[rtype::A, rtype::DS]),
        ("host.outns", &[rtype::A]),
        ("x.manyns", &[rtype::A]),
        // Below a DNAME: synthesis, followed into the zone (to data, a wildcard, nothing) or
        // not (out of the zone); the CNAME type itself.
        ("x.tree", &[rtype::A, rtype::CNAME, rtype::ANY]),
        ("a.b.tree", &[rtype::TXT]),
        ("foo.wtree", &[rtype::A, rtype::TXT]),
        ("x.outtree", &[rtype::A]),
    ];
    for (name, types) in cases {
        for &t in *types {
            c.both(Query::new(&fq(name), t));
        }
    }
}

/// Query names in mixed case (DNS 0x20): the question comes back as sent, owners follow it.
fn mangled_case(c: &mut Corpus) {
    let cases: &[(&str, u16)] = &[
        ("cOnF.ExAmPlE.", rtype::SOA),
        ("CONF.EXAMPLE.", rtype::NS),
        ("WwW.cOnF.eXaMpLe.", rtype::A),
        ("mixed.conf.example.", rtype::A),
        ("MIXED.conf.example.", rtype::TXT),
        ("FoO.WiLd.conf.example.", rtype::A),
        ("ChAiN1.CoNf.ExAmPlE.", rtype::A),
        ("alias2.conf.example.", rtype::A),
        ("HoSt.SuB.conf.example.", rtype::A),
        ("NoPe.CoNf.ExAmPlE.", rtype::A),
        ("C.DeEp.conf.example.", rtype::A),
        ("_SIP._UDP.conf.example.", rtype::SRV),
    ];
    for &(name, t) in cases {
        c.both(Query::new(name, t));
    }
}

/// RD, CD and AD in queries, the reserved Z bit, TC, and queries that claim to be responses.
fn header_bits(c: &mut Corpus) {
    let bases = [
        Query::new(&fq("www"), rtype::A),
        Query::new(&fq("nope"), rtype::A),
        Query::new(&fq("host.sub"), rtype::A),
    ];
    for base in bases {
        for bits in [
            bit::RD,
            bit::CD,
            bit::RD | bit::CD,
            bit::AD,
            bit::Z,
            bit::TC,
            bit::AA | bit::RA,
        ] {
            c.both(base.clone().set(bits));
        }
        c.udp(base.clone().set(bit::RD).no_edns());
    }
    c.both(Query::new(&fq("www"), rtype::A).set(bit::QR));
}

/// EDNS (RFC 6891): payload sizes, DO, an unknown option, version 1 (BADVERS), ECS (RFC 7871),
/// NSID and COOKIE requests.
fn edns_variants(c: &mut Corpus) {
    let bases = [
        Query::new(ZONE, rtype::SOA),
        Query::new(&fq("www"), rtype::A),
        Query::new(&fq("nope"), rtype::A),
        Query::new(&fq("foo.wild"), rtype::TXT),
        Query::new(&fq("host.signed"), rtype::A),
        Query::new(&fq("signed"), rtype::DS),
    ];
    let ecs4 = [0, 1, 24, 0, 192, 0, 2];
    let ecs6 = [0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0];
    for base in bases {
        let variants = [
            base.clone().payload(512),
            base.clone().payload(4096),
            base.clone().payload(0),
            base.clone().dnssec_ok(),
            base.clone().dnssec_ok().set(bit::CD),
            base.clone().option(option::UNKNOWN, b"gslbd"),
            base.clone().version(1),
            base.clone().version(1).dnssec_ok(),
            base.clone().option(option::ECS, &ecs4),
            base.clone().option(option::ECS, &ecs6),
            base.clone().option(option::ECS, &[0, 1, 0, 0]),
            base.clone().option(option::NSID, &[]),
            base.clone().option(option::COOKIE, b"8bytes!!"),
        ];
        for q in variants {
            c.both(q);
        }
    }
}

/// Answers and referrals larger than 512 and 1232 bytes over UDP without EDNS and with each
/// payload size, and the same questions over TCP, where they come whole.
fn truncation(c: &mut Corpus) {
    let questions = [
        ("big", rtype::TXT),
        ("big", rtype::ANY),
        ("mid", rtype::AAAA),
        ("txt", rtype::TXT),
        ("host.manyns", rtype::A),
        ("manyns", rtype::NS),
        ("@", rtype::ANY),
        ("@", rtype::DNSKEY),
    ];
    for (name, t) in questions {
        let base = Query::new(&fq(name), t);
        c.udp(base.clone().no_edns());
        for payload in [512, 1232, 4096] {
            c.udp(base.clone().payload(payload));
        }
        c.udp(base.clone().payload(4096).dnssec_ok());
        c.tcp(base.clone().no_edns());
        c.tcp(base.payload(512));
    }
}

/// Classes other than IN: CH (including the server-identity names), HS, NONE and ANY.
fn classes(c: &mut Corpus) {
    for class in [class::CH, class::HS, class::NONE, class::ANY] {
        c.both(Query::new(ZONE, rtype::SOA).class(class));
        c.both(Query::new(&fq("www"), rtype::A).class(class));
        c.both(Query::new(&fq("nope"), rtype::A).class(class));
    }
    for name in [
        "version.bind.",
        "version.server.",
        "id.server.",
        "hostname.bind.",
    ] {
        c.both(Query::new(name, rtype::TXT).class(class::CH));
    }
}

/// Opcodes other than QUERY: IQUERY, STATUS, unassigned 3, NOTIFY, UPDATE, DSO, 15.
fn opcodes(c: &mut Corpus) {
    for opcode in [1, 2, 3, 4, 5, 6, 15] {
        c.both(Query::new(ZONE, rtype::SOA).opcode(opcode));
        c.udp(Query::new(ZONE, rtype::SOA).opcode(opcode).no_edns());
    }
    c.both(Query::new(&fq("www"), rtype::A).opcode(4).set(bit::AA));
}

/// AXFR and IXFR at the apex and elsewhere (no transfers are allowed), and meta or DNSSEC types
/// as QTYPE: OPT, TSIG, TKEY, MAILA, MAILB, type 0, RRSIG, NSEC.
fn transfers_and_meta_types(c: &mut Corpus) {
    for name in [ZONE.to_string(), fq("www")] {
        for t in [rtype::IXFR, rtype::AXFR] {
            c.both(Query::new(&name, t));
            c.both(Query::new(&name, t).no_edns());
        }
        let meta = [
            rtype::OPT,
            rtype::TSIG,
            rtype::TKEY,
            rtype::MAILB,
            rtype::MAILA,
            0,
            rtype::RRSIG,
            rtype::NSEC,
        ];
        for t in meta {
            c.both(Query::new(&name, t));
        }
    }
}

/// Names outside `conf.example.`: REFUSED, including look-alikes and the root.
fn outside_the_zone(c: &mut Corpus) {
    for (name, t) in [
        (".", rtype::NS),
        ("example.", rtype::SOA),
        ("test.", rtype::SOA),
        ("outside.test.", rtype::A),
        ("xconf.example.", rtype::A),
        ("conf.example.net.", rtype::A),
        ("www.conf.example.net.", rtype::A),
        ("example.com.", rtype::ANY),
    ] {
        c.both(Query::new(name, t));
        c.udp(Query::new(name, t).no_edns().set(bit::RD));
    }
}

/// QDCOUNT 0 (with and without EDNS) and QDCOUNT 2.
fn question_counts(c: &mut Corpus) {
    let none = Query::new(ZONE, rtype::SOA).questions(Vec::new());
    c.both(none.clone());
    c.both(none.no_edns());
    let one = |name: &str, qtype| Question {
        name: name.to_string(),
        qtype,
        qclass: 1,
    };
    c.both(
        Query::new(ZONE, rtype::SOA)
            .questions(vec![one(ZONE, rtype::SOA), one(&fq("www"), rtype::A)]),
    );
}

// ---------------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------------

/// Sends every case to `addr`, [`LANES`] at a time, and returns the observations in case order.
fn run_corpus(addr: SocketAddr, cases: &[Case]) -> Vec<Observed> {
    let chunk = cases.len().div_ceil(LANES).max(1);
    std::thread::scope(|s| {
        let lanes: Vec<_> = cases
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|c| ask(addr, c)).collect::<Vec<_>>()))
            .collect();
        lanes
            .into_iter()
            .flat_map(|h| h.join().expect("a query lane panicked"))
            .collect()
    })
}

/// Sends one case and observes the reply. "No answer" is asked a second time, so that one
/// datagram lost on a busy machine does not pass for a server that stays silent.
fn ask(addr: SocketAddr, case: &Case) -> Observed {
    let wire = case.query.encode();
    let send = || match case.transport {
        Transport::Udp => udp_exchange(addr, &wire, UDP_TIMEOUT),
        Transport::Tcp => tcp_exchange(addr, &wire),
    };
    match send().or_else(send) {
        Some(bytes) => parse_response(&bytes),
        None => Observed {
            outcome: Outcome::NoAnswer,
            payload: None,
        },
    }
}

/// One datagram out, one back from the same address; `None` on timeout.
fn udp_exchange(addr: SocketAddr, wire: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    sock.connect(addr).expect("connect UDP");
    sock.set_read_timeout(Some(timeout)).expect("UDP timeout");
    sock.send(wire).ok()?;
    let mut buf = vec![0u8; 65535];
    let n = sock.recv(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// One length-prefixed message out and the first one back; `None` when the server closes the
/// connection or says nothing in time.
fn tcp_exchange(addr: SocketAddr, wire: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, TCP_TIMEOUT).ok()?;
    s.set_read_timeout(Some(TCP_TIMEOUT)).ok()?;
    let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(wire);
    s.write_all(&framed).ok()?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

// ---------------------------------------------------------------------------------------------
// Responses: wire parser and normal form
// ---------------------------------------------------------------------------------------------

/// What a server did with one query, in comparable form.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// Nothing came back in time (or the TCP connection was closed).
    NoAnswer,
    /// Something came back that does not parse as a DNS message: the reason and the bytes.
    Garbled(String),
    Answer(Box<Normal>),
}

/// An outcome plus what is recorded but not compared.
#[derive(Clone, Debug)]
struct Observed {
    outcome: Outcome,
    /// The OPT record's UDP payload size: servers choose it freely (RFC 6891 §6.2.5).
    payload: Option<u16>,
}

/// A response with everything that may legitimately vary in order or encoding taken out:
/// sections are sorted multisets, names are decompressed (case kept), options that carry a
/// server's identity or state are dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Normal {
    id: u16,
    flags: Flags,
    /// The 12-bit RCODE: the header's 4 bits with the OPT record's 8 extended bits above.
    rcode: u16,
    /// `name CLASS TYPE` per question, name exactly as it came back.
    question: Vec<String>,
    answer: Vec<Rr>,
    authority: Vec<Rr>,
    /// Without the OPT record, which is [`Normal::opt`].
    additional: Vec<Rr>,
    opt: Option<OptSummary>,
    /// Bytes after the last record the header counts.
    trailing: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flags {
    qr: bool,
    opcode: u8,
    aa: bool,
    tc: bool,
    rd: bool,
    ra: bool,
    z: bool,
    ad: bool,
    cd: bool,
}

impl Flags {
    fn from_word(w: u16) -> Self {
        Self {
            qr: w & bit::QR != 0,
            opcode: ((w >> 11) & 0x0f) as u8,
            aa: w & bit::AA != 0,
            tc: w & bit::TC != 0,
            rd: w & bit::RD != 0,
            ra: w & bit::RA != 0,
            z: w & bit::Z != 0,
            ad: w & bit::AD != 0,
            cd: w & bit::CD != 0,
        }
    }

    fn bits(&self) -> u16 {
        [
            (self.qr, bit::QR),
            (self.aa, bit::AA),
            (self.tc, bit::TC),
            (self.rd, bit::RD),
            (self.ra, bit::RA),
            (self.z, bit::Z),
            (self.ad, bit::AD),
            (self.cd, bit::CD),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |acc, (_, b)| acc | b)
    }
}

/// One resource record. RDATA is text for types whose names may be compressed (RFC 3597 §4
/// lists them: they are decompressed here) and for A, AAAA and TXT (for readable diffs);
/// anything else is `\# len hex`, compared byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rr {
    owner: String,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: String,
}

/// The OPT record of a response, without the payload size (kept in [`Observed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
struct OptSummary {
    version: u8,
    dnssec_ok: bool,
    /// Sorted (code, data); NSID and COOKIE dropped (server identity and state), Extended DNS
    /// Errors (RFC 8914) reduced to their INFO-CODE (the EXTRA-TEXT is free text).
    options: Vec<(u16, Vec<u8>)>,
}

/// A cursor over a whole message: compressed names may point anywhere in it.
struct Wire<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Wire<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let bytes = self
            .msg
            .get(self.pos..self.pos + n)
            .ok_or_else(|| format!("{n} bytes wanted at offset {}, message ends", self.pos))?;
        self.pos += n;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A domain name, decompressed, in presentation form with its case kept.
    fn name(&mut self) -> Result<String, String> {
        let mut labels = Vec::new();
        let mut pos = self.pos;
        let mut resume = None;
        let mut wire_len = 1;
        for _ in 0..256 {
            let len = *self.msg.get(pos).ok_or("name runs past the end")?;
            match len & 0xc0 {
                0x00 if len == 0 => {
                    self.pos = resume.unwrap_or(pos + 1);
                    return Ok(if labels.is_empty() {
                        ".".into()
                    } else {
                        labels.join(".") + "."
                    });
                }
                0x00 => {
                    let label = self
                        .msg
                        .get(pos + 1..pos + 1 + usize::from(len))
                        .ok_or("label runs past the end")?;
                    wire_len += label.len() + 1;
                    if wire_len > 255 {
                        return Err("name longer than 255 bytes".into());
                    }
                    labels.push(escape_label(label));
                    pos += 1 + label.len();
                }
                0xc0 => {
                    let low = *self.msg.get(pos + 1).ok_or("pointer runs past the end")?;
                    resume.get_or_insert(pos + 2);
                    pos = (usize::from(len & 0x3f) << 8) | usize::from(low);
                }
                _ => return Err(format!("label type {:#04x}", len & 0xc0)),
            }
        }
        Err("compression loop".into())
    }
}

/// A label in presentation form: `.` and `\` escaped, bytes outside printable ASCII as `\DDD`.
fn escape_label(label: &[u8]) -> String {
    let mut s = String::new();
    for &b in label {
        match b {
            b'.' | b'\\' => {
                s.push('\\');
                s.push(b as char);
            }
            0x21..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\{b:03}");
            }
        }
    }
    s
}

/// A character-string in presentation form: quoted, `"` and `\` escaped, other bytes outside
/// printable ASCII as `\DDD`.
fn quote_string(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(b as char);
            }
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\{b:03}");
            }
        }
    }
    s.push('"');
    s
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Parses and normalises one response. A message that does not parse is an outcome too.
fn parse_response(msg: &[u8]) -> Observed {
    match normalise(msg) {
        Ok((normal, payload)) => Observed {
            outcome: Outcome::Answer(Box::new(normal)),
            payload,
        },
        Err(why) => Observed {
            outcome: Outcome::Garbled(format!("{why}; bytes: {}", hex(msg))),
            payload: None,
        },
    }
}

/// A record as it is on the wire, RDATA still in the message.
struct RawRr {
    owner: String,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: std::ops::Range<usize>,
}

fn raw_record(w: &mut Wire<'_>) -> Result<RawRr, String> {
    let owner = w.name()?;
    let rtype = w.u16()?;
    let class = w.u16()?;
    let ttl = w.u32()?;
    let len = usize::from(w.u16()?);
    let start = w.pos;
    w.take(len)?;
    Ok(RawRr {
        owner,
        rtype,
        class,
        ttl,
        rdata: start..start + len,
    })
}

fn normalise(msg: &[u8]) -> Result<(Normal, Option<u16>), String> {
    let mut w = Wire { msg, pos: 0 };
    let id = w.u16()?;
    let flags_word = w.u16()?;
    let counts = [w.u16()?, w.u16()?, w.u16()?, w.u16()?];
    let mut question = Vec::new();
    for _ in 0..counts[0] {
        let name = w.name()?;
        let qtype = w.u16()?;
        let qclass = w.u16()?;
        question.push(format!(
            "{name} {} {}",
            class_name(qclass),
            type_name(qtype)
        ));
    }
    let mut sections: [Vec<Rr>; 3] = Default::default();
    let mut opt = None;
    let mut payload = None;
    let mut ext_rcode = 0u16;
    for (i, section) in sections.iter_mut().enumerate() {
        for _ in 0..counts[i + 1] {
            let raw = raw_record(&mut w)?;
            if i == 2 && raw.rtype == rtype::OPT && opt.is_none() {
                payload = Some(raw.class);
                ext_rcode = (raw.ttl >> 24) as u16;
                opt = Some(OptSummary {
                    version: (raw.ttl >> 16) as u8,
                    dnssec_ok: raw.ttl & 0x8000 != 0,
                    options: edns_options(&msg[raw.rdata]),
                });
            } else {
                section.push(Rr {
                    rdata: rdata_text(msg, raw.rtype, raw.rdata),
                    owner: raw.owner,
                    rtype: raw.rtype,
                    class: raw.class,
                    ttl: raw.ttl,
                });
            }
        }
        section.sort();
    }
    let [answer, authority, additional] = sections;
    let normal = Normal {
        id,
        flags: Flags::from_word(flags_word),
        rcode: (ext_rcode << 4) | (flags_word & 0x0f),
        question,
        answer,
        authority,
        additional,
        opt,
        trailing: msg.len() - w.pos,
    };
    Ok((normal, payload))
}

/// OPT options, sorted, with NSID and COOKIE dropped and EDE cut to its INFO-CODE. Bytes that
/// do not form an option are kept as one pseudo-option with code 65535, so they still compare.
fn edns_options(mut rdata: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while !rdata.is_empty() {
        let (code, data, rest) = match rdata {
            [c0, c1, l0, l1, rest @ ..]
                if rest.len() >= usize::from(u16::from_be_bytes([*l0, *l1])) =>
            {
                let len = usize::from(u16::from_be_bytes([*l0, *l1]));
                (u16::from_be_bytes([*c0, *c1]), &rest[..len], &rest[len..])
            }
            _ => (u16::MAX, rdata, &[][..]),
        };
        match code {
            option::NSID | option::COOKIE => {}
            option::EDE => out.push((code, data.iter().take(2).copied().collect())),
            _ => out.push((code, data.to_vec())),
        }
        rdata = rest;
    }
    out.sort();
    out
}

/// RDATA in the form described at [`Rr`]; `\# len hex` when the type is not one we print or
/// the data does not parse as that type.
fn rdata_text(msg: &[u8], rtype: u16, range: std::ops::Range<usize>) -> String {
    let mut w = Wire {
        msg,
        pos: range.start,
    };
    match rdata_fields(&mut w, rtype, range.end) {
        Ok(Some(text)) if w.pos == range.end => text,
        _ => {
            let raw = &msg[range];
            format!("\\# {} {}", raw.len(), hex(raw))
        }
    }
}

/// The RDATA fields of the types printed as text, read from `w` up to `end`; `None` for the
/// types kept as bytes. The caller checks that exactly the RDATA was consumed.
fn rdata_fields(w: &mut Wire<'_>, rtype: u16, end: usize) -> Result<Option<String>, String> {
    let text = match rtype {
        1 => {
            let b = w.take(4)?;
            Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()
        }
        28 => {
            let b: [u8; 16] = w.take(16)?.try_into().map_err(|_| "AAAA length")?;
            Ipv6Addr::from(b).to_string()
        }
        // NS, MD, MF, CNAME, MB, MG, MR, PTR: one name.
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 => w.name()?,
        // SOA: two names and five numbers.
        6 => {
            let (mname, rname) = (w.name()?, w.name()?);
            let mut text = format!("{mname} {rname}");
            for _ in 0..5 {
                let _ = write!(text, " {}", w.u32()?);
            }
            text
        }
        // MINFO, RP: two names.
        14 | 17 => format!("{} {}", w.name()?, w.name()?),
        // MX, AFSDB: a number and a name.
        15 | 18 => format!("{} {}", w.u16()?, w.name()?),
        // TXT, SPF: character-strings.
        16 | 99 => {
            let mut parts = Vec::new();
            while w.pos < end {
                let len = usize::from(w.u8()?);
                parts.push(quote_string(w.take(len)?));
            }
            parts.join(" ")
        }
        _ => return Ok(None),
    };
    Ok(Some(text))
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::NoAnswer => writeln!(f, "no answer"),
            Outcome::Garbled(why) => writeln!(f, "unparsable: {why}"),
            Outcome::Answer(m) => {
                write!(
                    f,
                    "{} {} opcode={} id={:#06x}",
                    rcode_name(m.rcode),
                    flag_names(m.flags.bits()),
                    m.flags.opcode,
                    m.id
                )?;
                if m.trailing > 0 {
                    write!(f, " trailing-bytes={}", m.trailing)?;
                }
                writeln!(f)?;
                for q in &m.question {
                    writeln!(f, "      question:   {q}")?;
                }
                for (label, rrs) in [
                    ("answer", &m.answer),
                    ("authority", &m.authority),
                    ("additional", &m.additional),
                ] {
                    for r in rrs {
                        writeln!(
                            f,
                            "      {label:<11} {} {} {} {} {}",
                            r.owner,
                            r.ttl,
                            class_name(r.class),
                            type_name(r.rtype),
                            r.rdata
                        )?;
                    }
                }
                match &m.opt {
                    None => writeln!(f, "      opt:        none"),
                    Some(o) => {
                        let options: Vec<String> = o
                            .options
                            .iter()
                            .map(|(c, d)| format!("{c}={}", hex(d)))
                            .collect();
                        writeln!(
                            f,
                            "      opt:        v{} do={} options=[{}] (payload {}, not compared)",
                            o.version,
                            u8::from(o.dnssec_ok),
                            options.join(" "),
                            self.payload.unwrap_or(0)
                        )
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison: declared differences, verdicts, report
// ---------------------------------------------------------------------------------------------

/// The three observations of one case.
#[derive(Clone)]
struct Trio {
    gslbd: Observed,
    nsd: Observed,
    knot: Observed,
}

impl Trio {
    fn outcomes(&self) -> [&Outcome; 3] {
        [&self.gslbd.outcome, &self.nsd.outcome, &self.knot.outcome]
    }
}

/// A declared difference: the README key and the normalisation that removes it. A rule sees
/// the case and may change any of the three outcomes; it must change nothing when its
/// difference is absent, so that listing it cannot hide anything else.
struct Rule {
    key: &'static str,
    apply: fn(&Case, &mut Trio),
}

/// Every rule the test knows. README.md may list any of them; it may not list others. Each one
/// takes one aspect out of the comparison for all three servers alike (never only for gslbd),
/// so a rule cannot turn a mismatch elsewhere into a match.
const RULES: &[Rule] = &[
    Rule {
        key: "ecs-echo",
        apply: rule_ecs_echo,
    },
    Rule {
        key: "cd-bit",
        apply: rule_cd_bit,
    },
];

/// The parsed responses of a trio, for rules that treat all three alike.
fn answers(t: &mut Trio) -> impl Iterator<Item = &mut Normal> {
    [&mut t.gslbd, &mut t.nsd, &mut t.knot]
        .into_iter()
        .filter_map(|o| match &mut o.outcome {
            Outcome::Answer(m) => Some(&mut **m),
            _ => None,
        })
}

/// `ecs-echo`: gslbd implements EDNS Client Subnet (RFC 7871) and echoes the option with the
/// scope its answer depends on (0 for static data); NSD and Knot without their ECS modules ignore
/// the option. ECS options are not compared.
fn rule_ecs_echo(_: &Case, t: &mut Trio) {
    for m in answers(t) {
        if let Some(opt) = &mut m.opt {
            opt.options.retain(|(code, _)| *code != option::ECS);
        }
    }
}

/// `cd-bit`: gslbd copies CD from the query into the response ("a security-aware name server
/// MUST copy the CD bit from a query into the corresponding response", RFC 4035 §3.1.6); NSD
/// 4.6 and Knot 3.2 clear it. CD in responses is not compared.
fn rule_cd_bit(_: &Case, t: &mut Trio) {
    for m in answers(t) {
        m.flags.cd = false;
    }
}

/// The rules README.md declares, in its order. Fails on a key the test does not know.
fn declared_rules(readme: &str) -> Vec<&'static Rule> {
    declared_keys(readme)
        .iter()
        .map(|key| {
            RULES.iter().find(|r| r.key == key).unwrap_or_else(|| {
                let known: Vec<&str> = RULES.iter().map(|r| r.key).collect();
                panic!(
                    "README.md `{DIFFERENCES_HEADING}` lists `{key}`, which \
                         tests/it/conformance.rs has no rule for (known: {})",
                    known.join(", ")
                )
            })
        })
        .collect()
}

/// The backticked first cells of the table rows in the differences section (which ends at the
/// next heading of level 1–3; fenced code blocks are skipped). No section, no keys.
fn declared_keys(readme: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut in_section = false;
    let mut in_code = false;
    for line in readme.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if ["# ", "## ", "### "].iter().any(|h| trimmed.starts_with(h)) {
            in_section = trimmed == DIFFERENCES_HEADING;
            continue;
        }
        if !in_section || !trimmed.starts_with('|') {
            continue;
        }
        let first = trimmed[1..].split('|').next().unwrap_or("").trim();
        if let Some(key) = first.strip_prefix('`').and_then(|r| r.split('`').next()) {
            keys.push(key.to_string());
        }
    }
    keys
}

#[derive(Default)]
struct Report {
    cases: usize,
    identical_to_both: usize,
    identical_to_one: usize,
    /// Readable diffs of the cases where gslbd matches neither reference.
    different: Vec<String>,
    /// Per declared rule: how many cases it changed.
    rule_counts: Vec<(&'static str, usize)>,
    /// Cases where NSD and Knot disagree with each other (after the rules); gslbd can match
    /// only one of them there.
    references_disagree: usize,
    /// Readable diffs of the cases identical to only one reference.
    one_sided: Vec<String>,
}

fn compare(
    cases: &[Case],
    gslbd: Vec<Observed>,
    nsd: Vec<Observed>,
    knot: Vec<Observed>,
    rules: &[&'static Rule],
) -> Report {
    let mut report = Report {
        cases: cases.len(),
        rule_counts: rules.iter().map(|r| (r.key, 0)).collect(),
        ..Report::default()
    };
    for (i, (((case, g), n), k)) in cases.iter().zip(gslbd).zip(nsd).zip(knot).enumerate() {
        let mut trio = Trio {
            gslbd: g,
            nsd: n,
            knot: k,
        };
        for (rule, count) in rules.iter().zip(&mut report.rule_counts) {
            let before = trio.clone();
            (rule.apply)(case, &mut trio);
            if before.outcomes() != trio.outcomes() {
                count.1 += 1;
            }
        }
        let [g, n, k] = trio.outcomes();
        if n != k {
            report.references_disagree += 1;
        }
        match (g == n, g == k) {
            (true, true) => report.identical_to_both += 1,
            (true, false) | (false, true) => {
                report.identical_to_one += 1;
                report.one_sided.push(diff(i, case, &trio));
            }
            (false, false) => report.different.push(diff(i, case, &trio)),
        }
    }
    report
}

/// The query and the three responses.
fn diff(i: usize, case: &Case, t: &Trio) -> String {
    let mut s = format!("--- #{i} {case}\n  gslbd: {}", t.gslbd);
    if t.nsd.outcome == t.knot.outcome {
        let _ = write!(s, "  nsd = knot: {}", t.nsd);
    } else {
        let _ = write!(s, "  nsd:   {}  knot:  {}", t.nsd, t.knot);
    }
    s
}

impl fmt::Display for Report {
    /// The diffs of the different cases, then the counts. With `CONFORMANCE_SHOW_ALL` set in
    /// the environment, also the diffs of the cases identical to only one reference (to see
    /// where NSD and Knot part ways).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if std::env::var_os("CONFORMANCE_SHOW_ALL").is_some() {
            writeln!(f, "=== identical to one reference only")?;
            for d in &self.one_sided {
                writeln!(f, "{d}")?;
            }
            writeln!(f, "=== different")?;
        }
        for d in &self.different {
            writeln!(f, "{d}")?;
        }
        writeln!(f, "=== conformance: gslbd against NSD 4.6 and Knot 3.2")?;
        writeln!(f, "cases:               {}", self.cases)?;
        writeln!(f, "identical to both:   {}", self.identical_to_both)?;
        writeln!(f, "identical to one:    {}", self.identical_to_one)?;
        writeln!(f, "different:           {}", self.different.len())?;
        writeln!(f, "NSD and Knot differ: {}", self.references_disagree)?;
        if self.rule_counts.is_empty() {
            writeln!(f, "declared differences (README): none")?;
        }
        for (key, n) in &self.rule_counts {
            writeln!(f, "rule `{key}` changed {n} cases")?;
        }
        Ok(())
    }
}

#[test]
fn differences_are_read_from_the_readme_table_only() {
    let readme = "\
## Other
| `not-this` | a table elsewhere |

### Differences from NSD and Knot

| key | what | why |
|---|---|---|
| `ecs-echo` | ECS echoed | RFC 7871 |
```sh
# a comment in a code block is not a heading
```
| `cd-bit` | CD copied | RFC 4035 |

#### A subheading stays inside
| `ecs-echo` | listed twice | still one rule |

## Next section
| `not-this-either` | x |
";
    assert_eq!(declared_keys(readme), ["ecs-echo", "cd-bit", "ecs-echo"]);
    assert!(declared_keys("# gslbd\nno section\n").is_empty());
    assert_eq!(declared_rules(readme).len(), 3);
}

#[test]
#[should_panic(expected = "has no rule for")]
fn an_unknown_difference_in_the_readme_fails() {
    declared_rules("### Differences from NSD and Knot\n| `no-such-rule` | x |\n");
}

#[test]
#[should_panic(expected = "Run the README's test command")]
fn a_missing_reference_server_fails_instead_of_skipping() {
    require_binary("gslbd-test-no-such-server");
}
