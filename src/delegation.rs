//! `gslbd check --delegation`: does the world reach these zones? For each zone, ask its
//! parent's servers for the delegation (NS set and glue), compare it with the zone's own NS set,
//! its addresses for in-zone name servers and the addresses gslbd listens on, then ask every
//! listed name server for the SOA: missing or stale glue, lame servers (no answer, not
//! authoritative) and serial drift are reported. A DNS client, used from the command line only.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RData, RecordType};

use crate::zone::{Zone, ZoneSet};

/// Where to look and how long to wait.
#[derive(Debug, Clone)]
pub struct Options {
    /// The parent zone's servers to ask; empty: find them through `resolver`.
    pub parents: Vec<SocketAddr>,
    /// A recursive resolver, to find the parent's servers and out-of-zone name server addresses;
    /// `None`: the first `nameserver` of `/etc/resolv.conf`.
    pub resolver: Option<SocketAddr>,
    /// The port the zone's name servers are asked on (53 in production).
    pub ns_port: u16,
    /// How long one query may take (UDP, then TCP when truncated).
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            parents: Vec::new(),
            resolver: None,
            ns_port: 53,
            timeout: Duration::from_secs(3),
        }
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// As it should be.
    Ok,
    /// Works, but worth a look (a glue address gslbd does not listen on: NAT, anycast…).
    Warning,
    /// Broken: some resolvers will fail.
    Error,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The zone it is about.
    pub zone: String,
    /// How bad.
    pub level: Level,
    /// What was found.
    pub text: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = match self.level {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "error",
        };
        write!(f, "{}: {l}: {}", self.zone, self.text)
    }
}

/// Checks the delegation of every zone of `zones`; `listen` are gslbd's DNS addresses.
pub fn check(zones: &ZoneSet, listen: &[SocketAddr], opts: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    for zone in &zones.zones {
        check_zone(zone, listen, opts, &mut out);
    }
    out
}

/// What the parent says: the NS names and, for each, the glue addresses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Delegation {
    ns: BTreeSet<Name>,
    glue: BTreeMap<Name, BTreeSet<IpAddr>>,
}

fn check_zone(zone: &Zone, listen: &[SocketAddr], opts: &Options, out: &mut Vec<Finding>) {
    let name = zone.origin.to_ascii();
    let mut say = |level: Level, text: String| {
        out.push(Finding {
            zone: name.clone(),
            level,
            text,
        })
    };
    let ours: BTreeSet<Name> = zone
        .nodes
        .get(&zone.lower_origin)
        .and_then(|n| n.rrset(RecordType::NS))
        .map(|s| {
            s.records
                .iter()
                .filter_map(|r| match &r.data {
                    RData::NS(ns) => Some(ns.0.to_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let serial = match &zone.soa.data {
        RData::SOA(s) => s.serial,
        _ => 0,
    };

    // 1. The parent's servers.
    let parents = if opts.parents.is_empty() {
        match find_parents(&zone.origin, opts) {
            Ok(p) => p,
            Err(e) => {
                say(
                    Level::Error,
                    format!("cannot find the parent's servers: {e}"),
                );
                return;
            }
        }
    } else {
        opts.parents.clone()
    };

    // 2. The delegation, from each of them.
    let mut seen: Vec<(SocketAddr, Delegation)> = Vec::new();
    for p in &parents {
        match ask(*p, &zone.origin, RecordType::NS, false, opts.timeout) {
            Err(e) => say(Level::Error, format!("parent server {p}: {e}")),
            Ok(m) => match delegation_in(&m, &zone.origin) {
                Some(d) => seen.push((*p, d)),
                None => say(
                    Level::Error,
                    format!(
                        "parent server {p} does not delegate {}: {:?} with no NS for it",
                        zone.origin, m.metadata.response_code
                    ),
                ),
            },
        }
    }
    let Some((first, parent)) = seen.first().cloned() else {
        return;
    };
    for (p, d) in &seen[1..] {
        if *d != parent {
            say(
                Level::Error,
                format!("parent servers disagree: {first} and {p} give different NS sets or glue"),
            );
        }
    }
    let names = |s: &BTreeSet<Name>| s.iter().map(|n| n.to_ascii()).collect::<Vec<_>>().join(" ");
    if parent.ns == ours {
        say(
            Level::Ok,
            format!("the parent's NS set matches the zone's: {}", names(&ours)),
        );
    } else {
        let missing: BTreeSet<Name> = ours.difference(&parent.ns).cloned().collect();
        let extra: BTreeSet<Name> = parent.ns.difference(&ours).cloned().collect();
        if !missing.is_empty() {
            say(
                Level::Error,
                format!("NS in the zone but not at the parent: {}", names(&missing)),
            );
        }
        if !extra.is_empty() {
            say(
                Level::Error,
                format!("NS at the parent but not in the zone: {}", names(&extra)),
            );
        }
    }

    // 3. Glue: in-zone name servers need it, and it must be what the zone says.
    let origin = LowerName::new(&zone.origin);
    let listening: BTreeSet<IpAddr> = listen.iter().map(|a| a.ip()).collect();
    let wildcard = listening.iter().any(|a| a.is_unspecified());
    let mut targets: BTreeMap<Name, BTreeSet<IpAddr>> = BTreeMap::new();
    for ns in parent.ns.union(&ours) {
        let glue = parent.glue.get(ns).cloned().unwrap_or_default();
        let in_zone = origin.zone_of(&LowerName::new(ns));
        if in_zone {
            let zone_addrs: BTreeSet<IpAddr> = zone
                .addresses(ns)
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            if glue.is_empty() && parent.ns.contains(ns) {
                say(
                    Level::Error,
                    format!(
                        "missing glue: the parent has no address for {ns}, which only this zone can resolve (the zone has {})",
                        list(&zone_addrs)
                    ),
                );
            }
            for a in glue.difference(&zone_addrs) {
                say(
                    Level::Error,
                    format!("stale glue: the parent gives {a} for {ns}, the zone does not"),
                );
            }
            for a in zone_addrs.difference(&glue) {
                if !glue.is_empty() {
                    say(
                        Level::Warning,
                        format!("the zone gives {a} for {ns}, the parent's glue does not"),
                    );
                }
            }
            if !glue.is_empty() && glue == zone_addrs {
                say(
                    Level::Ok,
                    format!("glue for {ns} matches the zone: {}", list(&glue)),
                );
            }
            let addrs = if glue.is_empty() { zone_addrs } else { glue };
            for a in &addrs {
                if !wildcard && !listening.contains(a) {
                    say(
                        Level::Warning,
                        format!(
                            "{ns} is {a}, which is not one of gslbd's listen addresses (fine behind NAT or anycast)"
                        ),
                    );
                }
            }
            targets.insert(ns.clone(), addrs);
        } else {
            match resolve_addrs(ns, opts) {
                Ok(a) => {
                    targets.insert(ns.clone(), a);
                }
                Err(e) => say(Level::Error, format!("cannot resolve {ns}: {e}")),
            }
        }
    }

    // 4. Every name server, at every address: authoritative, and on our serial.
    for (ns, addrs) in &targets {
        for a in addrs {
            let server = SocketAddr::new(*a, opts.ns_port);
            match ask(server, &zone.origin, RecordType::SOA, false, opts.timeout) {
                Err(e) => say(Level::Error, format!("lame: {ns} at {server}: {e}")),
                Ok(m) if m.metadata.response_code != ResponseCode::NoError => say(
                    Level::Error,
                    format!(
                        "lame: {ns} at {server} answers {:?}",
                        m.metadata.response_code
                    ),
                ),
                Ok(m) if !m.metadata.authoritative => say(
                    Level::Error,
                    format!("lame: {ns} at {server} answers without AA: not authoritative"),
                ),
                Ok(m) => match soa_serial(&m, &zone.origin) {
                    None => say(
                        Level::Error,
                        format!("lame: {ns} at {server} has no SOA for the zone"),
                    ),
                    Some(s) if s != serial => say(
                        Level::Error,
                        format!(
                            "serial drift: {ns} at {server} serves serial {s}, the zone file has {serial}"
                        ),
                    ),
                    Some(_) => say(
                        Level::Ok,
                        format!("{ns} at {server} is authoritative, serial {serial}"),
                    ),
                },
            }
        }
    }
}

fn list(a: &BTreeSet<IpAddr>) -> String {
    if a.is_empty() {
        return "no address".into();
    }
    a.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The NS set and glue for `zone` in a parent's answer: a referral (authority section) or, from
/// a server that also serves the child, an answer.
fn delegation_in(m: &Message, zone: &Name) -> Option<Delegation> {
    let want = LowerName::new(zone);
    let mut d = Delegation::default();
    for r in m.answers.iter().chain(&m.authorities) {
        if let RData::NS(ns) = &r.data
            && LowerName::new(&r.name) == want
        {
            d.ns.insert(ns.0.to_lowercase());
        }
    }
    if d.ns.is_empty() {
        return None;
    }
    for r in &m.additionals {
        let name = r.name.to_lowercase();
        if !d.ns.contains(&name) {
            continue;
        }
        let a = match &r.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        d.glue.entry(name).or_default().insert(a);
    }
    Some(d)
}

fn soa_serial(m: &Message, zone: &Name) -> Option<u32> {
    let want = LowerName::new(zone);
    m.answers.iter().find_map(|r| match &r.data {
        RData::SOA(s) if LowerName::new(&r.name) == want => Some(s.serial),
        _ => None,
    })
}

/// The resolver to use: the option, else the first `nameserver` of `/etc/resolv.conf`.
fn resolver(opts: &Options) -> Result<SocketAddr, String> {
    if let Some(r) = opts.resolver {
        return Ok(r);
    }
    let text = std::fs::read_to_string("/etc/resolv.conf")
        .map_err(|e| format!("/etc/resolv.conf: {e} (give --resolver)"))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .find_map(|a| a.trim().parse::<IpAddr>().ok())
        .map(|a| SocketAddr::new(a, 53))
        .ok_or_else(|| "no nameserver in /etc/resolv.conf (give --resolver)".into())
}

/// The parent zone's servers, through the resolver: the zone that holds `zone`'s parent name,
/// its NS set, and their addresses.
fn find_parents(zone: &Name, opts: &Options) -> Result<Vec<SocketAddr>, String> {
    let r = resolver(opts)?;
    let parent_name = zone.base_name();
    let m = ask(r, &parent_name, RecordType::SOA, true, opts.timeout)
        .map_err(|e| format!("resolver {r}: {e}"))?;
    // The SOA's owner is the parent zone: in the answer when the name is its apex, in the
    // authority section (NODATA) when it is a name inside it.
    let parent_zone = m
        .answers
        .iter()
        .chain(&m.authorities)
        .find_map(|rec| matches!(rec.data, RData::SOA(_)).then(|| rec.name.clone()))
        .ok_or_else(|| format!("resolver {r} knows no zone above {zone}"))?;
    let m = ask(r, &parent_zone, RecordType::NS, true, opts.timeout)
        .map_err(|e| format!("resolver {r}: {e}"))?;
    let mut out = Vec::new();
    for rec in &m.answers {
        if let RData::NS(ns) = &rec.data {
            for a in resolve_addrs(&ns.0, opts)? {
                out.push(SocketAddr::new(a, 53));
            }
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no name server address for the parent zone {parent_zone}"
        ));
    }
    Ok(out)
}

/// A and AAAA of `name` through the resolver.
fn resolve_addrs(name: &Name, opts: &Options) -> Result<BTreeSet<IpAddr>, String> {
    let r = resolver(opts)?;
    let mut out = BTreeSet::new();
    for t in [RecordType::A, RecordType::AAAA] {
        let m = ask(r, name, t, true, opts.timeout).map_err(|e| format!("resolver {r}: {e}"))?;
        for rec in &m.answers {
            match &rec.data {
                RData::A(a) => {
                    out.insert(IpAddr::V4(a.0));
                }
                RData::AAAA(a) => {
                    out.insert(IpAddr::V6(a.0));
                }
                _ => {}
            }
        }
    }
    if out.is_empty() {
        return Err(format!("{name} has no address"));
    }
    Ok(out)
}

/// One query: UDP with EDNS (1232 bytes), TCP when the answer is truncated.
fn ask(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    recursion: bool,
    timeout: Duration,
) -> Result<Message, String> {
    let id = (std::process::id() as u16) ^ u16::from(rtype).rotate_left(7);
    let mut q = Message::new(id, MessageType::Query, OpCode::Query);
    q.metadata.recursion_desired = recursion;
    q.add_query(Query::query(name.clone(), rtype));
    let mut edns = hickory_proto::op::Edns::new();
    edns.set_max_payload(1232);
    q.set_edns(edns);
    let bytes = q.to_vec().map_err(|e| e.to_string())?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| "bind")?
    } else {
        "[::]:0".parse().map_err(|_| "bind")?
    };
    let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    sock.connect(server).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65535];
    let mut reply = None;
    for _ in 0..2 {
        sock.send(&bytes).map_err(|e| e.to_string())?;
        match sock.recv(&mut buf) {
            Ok(n) => match Message::from_vec(&buf[..n]) {
                Ok(m) if m.metadata.id == id => {
                    reply = Some(m);
                    break;
                }
                _ => continue,
            },
            Err(_) => continue,
        }
    }
    let m = reply.ok_or_else(|| format!("no answer within {timeout:?} (twice)"))?;
    if !m.metadata.truncation {
        return Ok(m);
    }
    let mut tcp = TcpStream::connect_timeout(&server, timeout).map_err(|e| format!("TCP: {e}"))?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(bytes.len()).map_err(|_| "query too long")?;
    tcp.write_all(&len.to_be_bytes())
        .and_then(|_| tcp.write_all(&bytes))
        .map_err(|e| format!("TCP: {e}"))?;
    let mut lenb = [0u8; 2];
    tcp.read_exact(&mut lenb).map_err(|e| format!("TCP: {e}"))?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(lenb))];
    tcp.read_exact(&mut body).map_err(|e| format!("TCP: {e}"))?;
    Message::from_vec(&body).map_err(|e| format!("TCP: {e}"))
}
