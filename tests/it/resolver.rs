//! gslbd behind a real recursive resolver: Unbound 1.17 (Debian `unbound`, built with
//! `--enable-subnet`) resolves `www.gslb.example.` down a loopback delegation chain and caches
//! gslbd's answers by the ECS scope gslbd returns.
//!
//! The chain is real at every hop: Unbound's root hints name a loopback root (NSD serving `.`
//! only), which refers `example.` to a second NSD, which refers `gslb.example.` to gslbd (`ns1`
//! and `ns2`, in-process, on two addresses; its apex NS set and addresses are checked equal to
//! the parent's delegation and glue). Nothing is forwarded or stubbed: Unbound is told the root's
//! address and nothing else, so a query reaching gslbd at all has followed both referrals.
//!
//! **Ports.** A recursive resolver iterating from the root sends every query to port 53 (root
//! hints and glue carry addresses, never ports; Unbound's `@port` syntax exists only for stub
//! and forward zones, which would skip the delegations under test). So every server here listens
//! on port 53, each on an address of its own in 127.53.1.0/24: loopback is the whole of
//! 127.0.0.0/8 on Linux, and `do-not-query-localhost: no` lets Unbound query it. No other test
//! uses that block (`deploy` binds 127.54.0.1:53; systemd-resolved, where it runs, holds
//! 127.0.0.53 and 127.0.0.54); another test needing port 53 should take 127.53.2.0/24 and up.
//! Binding port 53 needs root (or `CAP_NET_BIND_SERVICE`): CI runs the suite as root. Without
//! that privilege the test fails and says why; skipping would silently stop testing the
//! resolver path.
//!
//! **Modules.** `module-config: "subnetcache validator iterator"`, the order Unbound documents
//! for ECS and what an operator's validating resolver runs. No trust anchor is configured: the
//! loopback root is unsigned (as the chain to an unsigned `gslb.example.` would be insecure in
//! the real world), so the validator passes answers through unvalidated and the subnet cache is
//! what the test observes.
//!
//! What is proved, reading gslbd's own query counters around each client's question: answers
//! follow the client subnet Unbound forwards (London → eu-west, Toronto → us-east, Tokyo →
//! ap-southeast); a second client inside the scope gslbd answered (London's /16, Toronto's /4)
//! is served from Unbound's cache (the service's counter does not move) while a client in
//! another /16 is not, even one steered to the same region (Berlin); every query that reached
//! gslbd carried ECS; TTLs stay within the service's 30 s; a client without ECS is located by the
//! address Unbound derives from it (loopback: `[geo.default]`). The table of what each client saw
//! is printed (`--nocapture`).
//!
//! The helpers ([`Nsd`], [`zone_apex`], [`delegation`], [`require_port_53`], [`require_binary`])
//! are `pub(crate)` for other tests that need a loopback parent zone.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::harness::*;

/// The loopback root (NSD serving `.`).
const ROOT: Ipv4Addr = Ipv4Addr::new(127, 53, 1, 1);
/// The parent (NSD serving `example.`).
const PARENT: Ipv4Addr = Ipv4Addr::new(127, 53, 1, 2);
/// gslbd as `ns1.gslb.example.`.
const NS1: Ipv4Addr = Ipv4Addr::new(127, 53, 1, 11);
/// gslbd as `ns2.gslb.example.`.
const NS2: Ipv4Addr = Ipv4Addr::new(127, 53, 1, 12);
/// Unbound: where clients ask, and the source of its queries to the authoritative servers.
const RESOLVER: Ipv4Addr = Ipv4Addr::new(127, 53, 1, 53);

/// The steered service's TTL in [`gslb_zone`].
const WWW_TTL: u32 = 30;
/// VIPs of the regions in [`gslb_zone`] (as in `zones/gslb.example.toml`).
const US_EAST: &str = "192.0.2.10";
const EU_WEST: &str = "192.0.2.20";
const AP_SOUTHEAST: &str = "192.0.2.30";

/// How long a client waits for Unbound (a cache miss walks the whole chain).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a server may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(15);

#[test]
fn unbound_steers_by_client_subnet_and_caches_by_gslbd_scope() {
    let nsd_bin = require_binary("nsd", "nsd");
    let unbound_bin = require_binary("unbound", "unbound");
    require_port_53(&[ROOT, PARENT, NS1, NS2, RESOLVER].map(IpAddr::V4));

    // gslbd first, on both glue addresses: if it cannot load the zone nothing else need start.
    let zone = gslb_zone();
    let gslbd = TestServer::with_zones_cfg(
        &[("gslb.example.toml", &zone)],
        Some(&sample_mmdb()),
        |cfg| cfg.listen = vec![port53(NS1), port53(NS2)],
    );
    for ip in [NS1, NS2] {
        wait_for_soa("gslbd", port53(ip), "gslb.example.", || None);
    }

    let gslb_ns = [("ns1.gslb.example.", NS1), ("ns2.gslb.example.", NS2)];
    let root_zone = format!(
        "{}{}",
        zone_apex(".", "a.root-servers.net.", ROOT),
        delegation("example.", &[("ns.example.", PARENT)])
    );
    let parent_zone = format!(
        "{}{}",
        zone_apex("example.", "ns.example.", PARENT),
        delegation("gslb.example.", &gslb_ns)
    );
    let root = Nsd::start(&nsd_bin, &[(".", &root_zone)], &[port53(ROOT)]);
    let parent = Nsd::start(&nsd_bin, &[("example.", &parent_zone)], &[port53(PARENT)]);

    // The child's NS set and addresses are the parent's delegation and glue (RFC 1034 §4.2.2).
    let referral = exchange(
        parent.addr(),
        &Q::new("gslb.example.", RecordType::NS),
        CLIENT_TIMEOUT,
    )
    .unwrap_or_else(|| panic!("no referral from the parent:\n{}", parent.output()));
    let apex = gslbd.udp(&Q::new("gslb.example.", RecordType::NS));
    assert!(!referral.metadata.authoritative && referral.answers.is_empty());
    assert!(apex.metadata.authoritative);
    let delegated = ns_and_addresses(&referral.authorities, &referral.additionals);
    assert_eq!(delegated.len(), 2 * gslb_ns.len(), "{delegated:#?}");
    assert_eq!(
        delegated,
        ns_and_addresses(&apex.answers, &apex.additionals),
        "the parent's delegation and glue (left) differ from gslbd's apex NS and addresses"
    );

    // Unbound knows only the root's address: reaching gslbd at all means it followed the
    // referrals root → example. → gslb.example.
    let unbound = Unbound::start(
        &unbound_bin,
        port53(RESOLVER),
        &[("a.root-servers.net.", root.addr().ip())],
        &[NS1, NS2].map(IpAddr::V4),
    );

    let metrics = || gslbd.gslbd().control.metrics.counters();
    let mut seen = Observations::default();
    let mut ask = |who: &str, ecs: Option<&str>| {
        let before = metrics();
        let m = unbound.resolve("www.gslb.example.", RecordType::A, ecs);
        let after = metrics();
        seen.record(who, ecs, &m, &before, &after)
    };
    // A cache miss asks gslbd (once; the test allows Unbound's retries to a slow server); a cache
    // hit asks nothing.

    // London: eu-west, resolved through the chain.
    let london = ask("London", Some("81.2.3.0/24"));
    assert_eq!(london.addrs, [EU_WEST], "{seen}");
    assert!(london.reached_gslbd >= 1, "{seen}");
    assert!(
        (WWW_TTL - 2..=WWW_TTL).contains(&london.ttl),
        "a fresh answer keeps the service TTL\n{seen}"
    );
    // Unbound tells its client the scope gslbd answered: the sample database's London /16 (the
    // widening may make it wider, never narrower, so the next client is inside it).
    let (source, scope) = london.ecs.expect("Unbound echoes ECS to an ECS client");
    assert_eq!(source, 24, "{seen}");
    assert!((1..=16).contains(&scope), "scope /{scope}\n{seen}");

    // Another /24 inside the same /16: from Unbound's cache, gslbd not asked.
    let london2 = ask("London, other /24", Some("81.2.200.0/24"));
    assert_eq!(london2.addrs, [EU_WEST], "{seen}");
    assert_eq!(
        london2.reached_gslbd, 0,
        "served from the subnet cache\n{seen}"
    );
    assert!(london2.ttl <= london.ttl, "{seen}");
    assert_eq!(london2.ecs, london.ecs, "the cached scope\n{seen}");

    // Berlin: the same region, but another /16 of the database: not in the cache.
    let berlin = ask("Berlin", Some("85.214.7.0/24"));
    assert_eq!(berlin.addrs, [EU_WEST], "{seen}");
    assert!(
        berlin.reached_gslbd >= 1,
        "another /16 is a cache miss\n{seen}"
    );

    // Toronto and Tokyo: other countries, other regions.
    let toronto = ask("Toronto", Some("24.100.5.0/24"));
    assert_eq!(toronto.addrs, [US_EAST], "{seen}");
    assert!(toronto.reached_gslbd >= 1, "{seen}");
    let tokyo = ask("Tokyo", Some("110.32.9.0/24"));
    assert_eq!(tokyo.addrs, [AP_SOUTHEAST], "{seen}");
    assert!(tokyo.reached_gslbd >= 1, "{seen}");

    // The cache did not mix subnets up: each client still gets its own region, from the cache.
    let toronto2 = ask("Toronto, other /24", Some("24.100.77.0/24"));
    assert_eq!(toronto2.addrs, [US_EAST], "{seen}");
    assert_eq!(toronto2.reached_gslbd, 0, "{seen}");
    let london3 = ask("London again", Some("81.2.3.0/24"));
    assert_eq!(london3.addrs, [EU_WEST], "{seen}");
    assert_eq!(london3.reached_gslbd, 0, "{seen}");

    // No ECS from the client: Unbound sends ECS made from the client's own address (loopback),
    // which the database does not place, so `[geo.default]` decides: us-east first. The client
    // asked without ECS, so it gets none back.
    let local = ask("no ECS (127.0.0.1)", None);
    assert_eq!(local.addrs, [US_EAST], "{seen}");
    assert!(local.reached_gslbd >= 1, "{seen}");
    assert_eq!(local.ecs, None, "{seen}");

    println!("{seen}");
    for o in &seen.rows {
        assert!(
            (1..=WWW_TTL).contains(&o.ttl),
            "{}: TTL {} outside 1..={WWW_TTL}\n{seen}",
            o.who,
            o.ttl
        );
        // Every query that reached gslbd carried the ECS option Unbound sent.
        assert_eq!(o.no_ecs_to_gslbd, 0, "{}: {seen}", o.who);
        assert!(o.ecs_to_gslbd >= o.reached_gslbd, "{}: {seen}", o.who);
        // And Unbound relayed the scope gslbd answered.
        if let (true, Some((_, scope))) = (o.reached_gslbd > 0, o.ecs) {
            let gslbd_said = format!("v4_{scope}×");
            assert!(
                o.scopes.iter().all(|s| s.starts_with(&gslbd_said)),
                "{}: {seen}",
                o.who
            );
        }
    }
}

/// `owner type data` of the NS records in `ns` and of the addresses in `addrs` they name, sorted
/// (TTLs left out: the parent's and the child's may differ).
fn ns_and_addresses(ns: &[Record], addrs: &[Record]) -> Vec<String> {
    let names: Vec<&Name> = ns
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(n) => Some(&n.0),
            _ => None,
        })
        .collect();
    let mut out: Vec<String> = ns
        .iter()
        .filter(|r| r.record_type() == RecordType::NS)
        .chain(
            addrs
                .iter()
                .filter(|r| matches!(r.data, RData::A(_) | RData::AAAA(_)))
                .filter(|r| names.contains(&&r.name)),
        )
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// What each client saw, and what reached gslbd meanwhile
// ---------------------------------------------------------------------------------------------

/// One client's answer from Unbound and the change in gslbd's counters while it was resolved.
#[derive(Debug, Clone)]
struct Observed {
    who: String,
    client_ecs: Option<String>,
    addrs: Vec<String>,
    ttl: u32,
    /// The ECS option of Unbound's answer: (source, scope).
    ecs: Option<(u8, u8)>,
    /// `www.gslb.example. A` queries gslbd answered meanwhile.
    reached_gslbd: u64,
    /// Queries with an ECS option gslbd saw meanwhile (any name).
    ecs_to_gslbd: u64,
    /// Queries without one gslbd saw meanwhile (any name).
    no_ecs_to_gslbd: u64,
    /// ECS scopes gslbd answered meanwhile (`v4_16`…).
    scopes: Vec<String>,
}

#[derive(Default)]
struct Observations {
    rows: Vec<Observed>,
}

impl Observations {
    fn record(
        &mut self,
        who: &str,
        ecs: Option<&str>,
        m: &Message,
        before: &BTreeMap<String, u64>,
        after: &BTreeMap<String, u64>,
    ) -> Observed {
        let delta = |key: &str| {
            after.get(key).copied().unwrap_or(0) - before.get(key).copied().unwrap_or(0)
        };
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{who}: {m:?}"
        );
        let www = after
            .keys()
            .filter(|k| is_www_a_query(k))
            .map(|k| delta(k))
            .sum();
        let scopes = after
            .keys()
            .filter_map(|k| {
                let s = k.strip_prefix("ecs_scope_")?;
                let d = delta(k);
                (d > 0).then(|| format!("{s}×{d}"))
            })
            .collect();
        let o = Observed {
            who: who.to_string(),
            client_ecs: ecs.map(str::to_string),
            addrs: addrs(m).iter().map(ToString::to_string).collect(),
            ttl: m.answers.iter().map(|r| r.ttl).min().unwrap_or(0),
            ecs: ecs_of(m).map(|s| (s.source_prefix(), s.scope_prefix())),
            reached_gslbd: www,
            ecs_to_gslbd: delta("with_ecs"),
            no_ecs_to_gslbd: delta("without_ecs"),
            scopes,
        };
        self.rows.push(o.clone());
        o
    }
}

/// A counter key of [`gslbd::metrics::Registry::counters`] for `www.gslb.example.` A queries
/// (`queries <zone>/<service>/<qtype>/<rcode>`), whatever the rcode.
fn is_www_a_query(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("queries ") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(parts.as_slice(), [zone, "www", "A", _] if zone.trim_end_matches('.') == "gslb.example")
}

impl std::fmt::Display for Observations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "=== resolver: clients of Unbound, and what reached gslbd for www.gslb.example. A"
        )?;
        for o in &self.rows {
            let mut line = String::new();
            let _ = write!(
                line,
                "{:<20} ecs {:<14} → {:<12} ttl {:>2}",
                o.who,
                o.client_ecs.as_deref().unwrap_or("-"),
                o.addrs.join(","),
                o.ttl
            );
            let ecs = o
                .ecs
                .map_or("-".to_string(), |(src, scope)| format!("/{src}/{scope}"));
            let _ = write!(line, "  answer ECS {ecs:<7}");
            writeln!(
                f,
                "{line}  gslbd: {} queries, {} with ECS, {} without, scopes [{}]",
                o.reached_gslbd,
                o.ecs_to_gslbd,
                o.no_ecs_to_gslbd,
                o.scopes.join(" ")
            )?;
        }
        Ok(())
    }
}

/// The zone gslbd serves: the example's regions and `www` service (`zones/gslb.example.toml`),
/// with the NS set and glue the parent delegates with.
fn gslb_zone() -> String {
    format!(
        r#"origin = "gslb.example."
ns = ["ns1", "ns2"]
[soa]
mname = "ns1"
rname = "hostmaster"
serial = 1
minimum = 60
[[records]]
name = "ns1"
type = "A"
data = "{NS1}"
[[records]]
name = "ns2"
type = "A"
data = "{NS2}"
[regions.us-east]
location = [39.0, -77.5]
vips = ["{US_EAST}", "2001:db8::10"]
[regions.eu-west]
location = [53.3, -6.3]
vips = ["{EU_WEST}", "2001:db8::20"]
[regions.ap-southeast]
location = [1.35, 103.8]
vips = ["{AP_SOUTHEAST}", "2001:db8::30"]
[regions.sa-east]
location = [-23.5, -46.6]
vips = ["192.0.2.40", "2001:db8::40"]
[services.www]
regions = ["us-east", "eu-west", "ap-southeast", "sa-east"]
policy = "proximity"
ttl = {WWW_TTL}
answers = 1
[geo.default]
regions = ["us-east", "eu-west", "sa-east", "ap-southeast"]
"#
    )
}

pub(crate) fn port53(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::from((ip, 53))
}

// ---------------------------------------------------------------------------------------------
// Reusable: privileges, binaries, zone text, NSD and Unbound as child processes
// ---------------------------------------------------------------------------------------------

/// Finds `name` on `PATH` or in the sbin directories Debian installs daemons to. A missing binary
/// fails the test with the package to install (skipping would hide that nothing was tested).
pub(crate) fn require_binary(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found: run the README's test command (`.ci/test`), which installs \
                 the Debian package `{package}`"
            )
        })
}

/// Checks that port 53 can be bound on each address (UDP and TCP), and fails the test saying why
/// when not: no privilege (run as root, as CI does) or something already there (a server left
/// over from an interrupted run).
pub(crate) fn require_port_53(ips: &[IpAddr]) {
    for ip in ips {
        let addr = SocketAddr::new(*ip, 53);
        let udp = UdpSocket::bind(addr);
        let tcp = udp.as_ref().ok().map(|_| std::net::TcpListener::bind(addr));
        let err = match (udp, tcp) {
            (Err(e), _) | (Ok(_), Some(Err(e))) => e,
            _ => continue,
        };
        match err.kind() {
            std::io::ErrorKind::PermissionDenied => panic!(
                "cannot bind {addr}: a recursive resolver queries authoritative servers on port \
                 53 only, so this test binds port 53 on loopback addresses, which needs root \
                 (or CAP_NET_BIND_SERVICE). Run the suite as root, as CI does ({err})"
            ),
            _ => panic!(
                "cannot bind {addr}: {err}. Is a server from an interrupted run still there? \
                 (`ss -lnup 'sport = 53'`)"
            ),
        }
    }
}

/// The apex of a master file: SOA, one NS and its address (TTL 3600 throughout).
pub(crate) fn zone_apex(origin: &str, ns: &str, ns_addr: impl Into<IpAddr>) -> String {
    let rname = match origin {
        "." => "hostmaster.".to_string(),
        _ => format!("hostmaster.{origin}"),
    };
    format!(
        "$TTL 3600\n\
         {origin} IN SOA {ns} {rname} 1 3600 600 86400 60\n\
         {origin} IN NS {ns}\n\
         {}",
        address_record(ns, ns_addr.into())
    )
}

/// Master-file lines delegating `child` to `servers` (name, address): NS records and glue.
pub(crate) fn delegation<A: Copy + Into<IpAddr>>(child: &str, servers: &[(&str, A)]) -> String {
    let mut s = String::new();
    for (ns, _) in servers {
        let _ = writeln!(s, "{child} IN NS {ns}");
    }
    for (ns, ip) in servers {
        s.push_str(&address_record(ns, (*ip).into()));
    }
    s
}

/// `name IN A|AAAA ip`, one line.
fn address_record(name: &str, ip: IpAddr) -> String {
    let rtype = if ip.is_ipv4() { "A" } else { "AAAA" };
    format!("{name} IN {rtype} {ip}\n")
}

/// A daemon in its own process group with its own directory (config, data, logs). Dropping it
/// stops the whole group (SIGTERM, then SIGKILL), also when the test panics; when it does, the
/// directory is kept to read.
pub(crate) struct Daemon {
    name: &'static str,
    child: Child,
    dir: tempfile::TempDir,
}

impl Daemon {
    /// Runs `bin <args> <dir>/<name>.conf` (already written) with its output in `<name>.out`.
    pub(crate) fn spawn(
        name: &'static str,
        bin: &Path,
        dir: tempfile::TempDir,
        args: &[&str],
    ) -> Self {
        let conf = dir.path().join(format!("{name}.conf"));
        let out = std::fs::File::create(dir.path().join(format!("{name}.out"))).expect("out");
        let child = Command::new(bin)
            .args(args)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup out"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        Self { name, child, dir }
    }

    /// Why it cannot come up any more: it exited (with its output and log).
    pub(crate) fn died(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("it exited ({status}):\n{}", self.output())),
            _ => None,
        }
    }

    pub(crate) fn output(&self) -> String {
        ["out", "log"]
            .iter()
            .filter_map(|ext| {
                std::fs::read_to_string(self.dir.path().join(format!("{}.{ext}", self.name))).ok()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

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

impl Drop for Daemon {
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
            // Only while the leader is unreaped does its group id surely name our processes.
            self.signal_group(libc::SIGKILL);
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "kept {} ({} config, zones, logs)",
                self.dir.path().display(),
                self.name
            );
            let _ = std::mem::replace(&mut self.dir, tempfile::TempDir::new().expect("temp dir"))
                .keep();
        }
    }
}

/// NSD 4 serving master files on loopback, unprivileged-style (no user switch, no chroot, every
/// file in its own directory, no zone transfers, no remote control, no rate limiting). Stops
/// when dropped.
pub(crate) struct Nsd {
    /// The addresses it answers on, as given.
    listen: Vec<SocketAddr>,
    daemon: Daemon,
}

impl Nsd {
    /// Serves `zones` (origin, master file text; relative names are relative to the origin) on
    /// every address of `listen`, and returns once each address answers every zone's SOA with
    /// authority.
    pub(crate) fn start(bin: &Path, zones: &[(&str, &str)], listen: &[SocketAddr]) -> Self {
        assert!(!listen.is_empty(), "NSD needs an address to listen on");
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display();
        let mut conf = String::from("server:\n");
        for a in listen {
            let _ = writeln!(conf, "    ip-address: {}@{}", a.ip(), a.port());
        }
        let _ = write!(
            conf,
            r#"    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    zonelistfile: "{d}/zone.list"
    database: ""
    logfile: "{d}/nsd.log"
    verbosity: 1
    server-count: 1
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
"#
        );
        for (i, (origin, text)) in zones.iter().enumerate() {
            let file = format!("zone{i}.db");
            std::fs::write(dir.path().join(&file), text).expect("write zone");
            let _ = write!(
                conf,
                "zone:\n    name: \"{origin}\"\n    zonefile: \"{file}\"\n"
            );
        }
        std::fs::write(dir.path().join("nsd.conf"), conf).expect("write nsd.conf");
        let mut daemon = Daemon::spawn("nsd", bin, dir, &["-d", "-c"]);
        for a in listen {
            for (origin, _) in zones {
                wait_for_soa("nsd", *a, origin, || daemon.died());
            }
        }
        Self {
            listen: listen.to_vec(),
            daemon,
        }
    }

    /// The first address it answers on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.listen[0]
    }

    /// NSD's output and log so far (for failure messages).
    pub(crate) fn output(&self) -> String {
        self.daemon.output()
    }
}

/// Unbound as an ECS-aware recursive resolver, iterating from loopback root hints. Stops when
/// dropped.
pub(crate) struct Unbound {
    addr: SocketAddr,
    daemon: Daemon,
}

impl Unbound {
    /// Listens on `addr` (and queries from its address), starts iteration at `roots` (name,
    /// address), and sends ECS to the authoritative servers at `ecs_to` only.
    fn start(bin: &Path, addr: SocketAddr, roots: &[(&str, IpAddr)], ecs_to: &[IpAddr]) -> Self {
        let ecs: String = ecs_to
            .iter()
            .map(|ip| format!("    send-client-subnet: {ip}\n"))
            .collect();
        Self::start_conf(bin, addr, roots, &ecs, "")
    }

    /// Like [`Self::start`], with more `server:` lines (each indented, ending in a newline:
    /// trust anchors, `val-override-date`…) and clauses after it (`stub-zone:`…).
    pub(crate) fn start_conf(
        bin: &Path,
        addr: SocketAddr,
        roots: &[(&str, IpAddr)],
        server_lines: &str,
        clauses: &str,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display();
        let mut hints = String::new();
        for (name, _) in roots {
            let _ = writeln!(hints, ". 3600000 IN NS {name}");
        }
        for (name, ip) in roots {
            let _ = writeln!(hints, "{name} 3600000 IN A {ip}");
        }
        std::fs::write(dir.path().join("root.hints"), hints).expect("write root hints");
        let conf = format!(
            r#"server:
    interface: {ip}@{port}
    outgoing-interface: {ip}
    port: {port}
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    num-threads: 1
    so-reuseport: no
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    use-syslog: no
    logfile: "{d}/unbound.log"
    log-time-ascii: yes
    verbosity: 1
    root-hints: "{d}/root.hints"
    do-not-query-localhost: no
    module-config: "subnetcache validator iterator"
{server_lines}    max-client-subnet-ipv4: 24
    max-client-subnet-ipv6: 56
remote-control:
    control-enable: no
{clauses}"#,
            ip = addr.ip(),
            port = addr.port(),
        );
        std::fs::write(dir.path().join("unbound.conf"), conf).expect("write unbound.conf");
        let mut daemon = Daemon::spawn("unbound", bin, dir, &["-d", "-c"]);
        // Ready when it answers at all: `version.server CH TXT` is answered locally, so waiting
        // puts nothing in the cache.
        let probe = Q::new("version.server.", RecordType::TXT)
            .class(DNSClass::CH)
            .rd();
        let deadline = Instant::now() + START_TIMEOUT;
        while exchange(addr, &probe, Duration::from_millis(200)).is_none() {
            if let Some(why) = daemon.died() {
                panic!("unbound did not start: {why}");
            }
            assert!(
                Instant::now() < deadline,
                "unbound on {addr} did not answer within {START_TIMEOUT:?}:\n{}",
                daemon.output()
            );
        }
        Self { addr, daemon }
    }

    /// Asks Unbound (recursion desired) from 127.0.0.1, with the client's ECS if given.
    fn resolve(&self, name: &str, rtype: RecordType, ecs: Option<&str>) -> Message {
        let mut q = Q::new(name, rtype).rd().edns(1232);
        if let Some(net) = ecs {
            q = q.ecs(net);
        }
        self.ask(&q)
    }

    /// Sends `q` as it is and returns Unbound's answer.
    pub(crate) fn ask(&self, q: &Q) -> Message {
        exchange(self.addr, q, CLIENT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "no answer from unbound for {} {} within {CLIENT_TIMEOUT:?}; its log:\n{}",
                q.name,
                q.rtype,
                self.daemon.output()
            )
        })
    }

    /// Unbound's log so far.
    pub(crate) fn output(&self) -> String {
        self.daemon.output()
    }
}

/// Sends `q` over UDP from 127.0.0.1 and returns the first response with its ID, `None` when none
/// comes within `timeout`.
pub(crate) fn exchange(addr: SocketAddr, q: &Q, timeout: Duration) -> Option<Message> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind client socket");
    sock.send_to(&q.to_bytes(), addr).expect("send");
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("set timeout");
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        if let Ok(m) = Message::from_vec(&buf[..n])
            && m.metadata.id == q.id
        {
            return Some(m);
        }
    }
}

/// Waits until `addr` answers `origin SOA` authoritatively with the SOA. `died` says why the
/// server cannot come up any more, which ends the wait early.
pub(crate) fn wait_for_soa(
    name: &str,
    addr: SocketAddr,
    origin: &str,
    mut died: impl FnMut() -> Option<String>,
) {
    let probe = Q::new(origin, RecordType::SOA);
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(m) = exchange(addr, &probe, Duration::from_millis(200))
            && m.metadata.response_code == ResponseCode::NoError
            && m.metadata.authoritative
            && !m.answers.is_empty()
        {
            return;
        }
        if let Some(why) = died() {
            panic!("{name} on {addr} did not start: {why}");
        }
        assert!(
            Instant::now() < deadline,
            "{name} on {addr} did not answer `{origin} SOA` within {START_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
