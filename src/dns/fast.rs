//! The fast path: the common query answered straight from its bytes.
//!
//! Most queries a GSLB server sees have one shape: one question for an exact name gslbd holds
//! (a steered name, A or AAAA, or a static RRset), class IN, no records but perhaps an OPT with
//! an ECS option. For those, building hickory's `Request` and `MessageResponse` costs more than
//! the steering decision itself (name parsing and lower-casing, a message struct, allocations,
//! re-encoding names). This module reads such a query in place and writes the response with
//! precomputed pieces: the question bytes are copied, answer owners are a pointer to the
//! question (`0xC00C`), static answers are encoded once per zone load, steered A/AAAA records
//! are written from the decision's VIPs.
//!
//! Anything else — another shape, another name (NXDOMAIN, wildcards, CNAME chains, referrals,
//! NODATA), a response that would be truncated, a malformed or unusual OPT, the query log on —
//! returns `None` and takes the general path in [`super::handler`], which owns the protocol
//! rules. The fast path only ever produces what the general path would (the tests compare the
//! two on every shape), counts the same metrics and applies the same RRL.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{CNAME, NS, PTR};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use hickory_server::net::xfer::Protocol;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::account::Tally;
use super::answer::{Client, answer};
use super::handler::{Outcome, Shared};
use super::rrl::Verdict;
use super::wire;
use crate::geo::ecs;
use crate::served::{Catalog, FastIndex, FastName, FastWhat, Prebuilt};
use crate::snapshot::HealthSnapshot;
use crate::steer::Family;
use crate::zone::Found;

/// Indexes every name of `zones` that the fast path can answer. Static answers are produced by
/// the general [`answer`] itself, then kept only when they are plain: NOERROR, authoritative,
/// answer records owned by the name and nothing in the other sections.
pub fn index(zones: &Catalog) -> FastIndex {
    {
        let health = HealthSnapshot::all_up(zones.region_count());
        let nobody = Client {
            src: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            ecs: None,
        };
        let now = Instant::now();
        let mut names = FxHashMap::default();
        for (zi, zone) in zones.zones.iter().enumerate() {
            for (lname, node) in &zone.nodes {
                // Only the most specific zone answers a name, and only names that are not
                // below a delegation.
                if zones.zone_index_for(lname).map(|(i, _)| i) != Some(zi) {
                    continue;
                }
                match zone.find(lname, RecordType::A) {
                    Found::Node { node: n, wildcard } if !wildcard && std::ptr::eq(n, node) => {}
                    _ => continue,
                }
                let name = Name::from(lname.clone());
                let Some(key) = wire(&name) else {
                    continue;
                };
                let what = match node.service {
                    Some(si) => FastWhat::Service(si),
                    None if node.rrsets.is_empty() => continue,
                    None => {
                        let pre: Vec<Prebuilt> = node
                            .rrsets
                            .iter()
                            .filter_map(|set| {
                                let resp = answer(zones, &health, &name, set.rtype, &nobody, now);
                                let plain = resp.rcode == ResponseCode::NoError
                                    && resp.authoritative
                                    && resp.authorities.is_empty()
                                    && resp.additionals.is_empty()
                                    && !resp.answers.is_empty()
                                    && resp
                                        .answers
                                        .iter()
                                        .all(|r| LowerName::new(&r.name) == *lname);
                                if !plain {
                                    return None;
                                }
                                prebuild(&resp.answers, &key, key.len()).map(|(count, bytes)| {
                                    Prebuilt {
                                        rtype: u16::from(set.rtype),
                                        count,
                                        bytes,
                                    }
                                })
                            })
                            .collect();
                        if pre.is_empty() {
                            continue;
                        }
                        FastWhat::Static(pre)
                    }
                };
                names.insert(key, FastName { zone: zi, what });
            }
        }
        FastIndex { names }
    }
}

/// The lower-case wire form of `name`.
fn wire(name: &Name) -> Option<Box<[u8]>> {
    let mut buf = Vec::with_capacity(name.len() + 1);
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_name_encoding(NameEncoding::UncompressedLowercase);
    name.emit(&mut enc).ok()?;
    Some(buf.into_boxed_slice())
}

/// `records` (all owned by the question name `owner`, `name_len` bytes in wire form) encoded
/// with owner `0xC00C`, so the bytes fit after any question for that name. Names inside NS,
/// CNAME, PTR, MX and SOA data are compressed against the question, as the general path and
/// NSD do: the labels they share with the question read as the query spelled them (0x20).
fn prebuild(records: &[Record], owner: &[u8], name_len: usize) -> Option<(u16, Box<[u8]>)> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(&[0xC0, 0x0C]);
        out.extend_from_slice(&u16::from(r.record_type()).to_be_bytes());
        out.extend_from_slice(&u16::from(r.dns_class).to_be_bytes());
        out.extend_from_slice(&r.ttl.to_be_bytes());
        let len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        match &r.data {
            RData::NS(NS(n)) | RData::CNAME(CNAME(n)) | RData::PTR(PTR(n)) => {
                name_against(&mut out, n, owner)?
            }
            RData::MX(mx) => {
                out.extend_from_slice(&mx.preference.to_be_bytes());
                name_against(&mut out, &mx.exchange, owner)?;
            }
            RData::SOA(soa) => {
                name_against(&mut out, &soa.mname, owner)?;
                name_against(&mut out, &soa.rname, owner)?;
                for v in [
                    soa.serial,
                    soa.refresh as u32,
                    soa.retry as u32,
                    soa.expire as u32,
                    soa.minimum,
                ] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
            _ => {
                let mut one = Vec::new();
                let mut enc = BinEncoder::new(&mut one);
                enc.set_name_encoding(NameEncoding::Uncompressed);
                r.emit(&mut enc).ok()?;
                out.extend_from_slice(one.get(name_len + 10..)?);
            }
        }
        let rdlen = u16::try_from(out.len() - len_at - 2).ok()?;
        out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }
    Some((u16::try_from(records.len()).ok()?, out.into_boxed_slice()))
}

/// Writes `name`: its labels not shared with the question name (`qwire`, its uncompressed wire
/// form; case does not matter), then a pointer to the shared part in the question (which starts
/// at offset 12), or the whole name when nothing is shared.
fn name_against(out: &mut Vec<u8>, name: &Name, qwire: &[u8]) -> Option<()> {
    let mine: SmallVec<[&[u8]; 8]> = name.iter().collect();
    let mut asked: SmallVec<[&[u8]; 8]> = SmallVec::new();
    let mut pos = 0;
    while let Some(&len) = qwire.get(pos) {
        if len == 0 {
            break;
        }
        asked.push(qwire.get(pos + 1..pos + 1 + usize::from(len))?);
        pos += 1 + usize::from(len);
    }
    let shared = mine
        .iter()
        .rev()
        .zip(asked.iter().rev())
        .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
        .count();
    for label in &mine[..mine.len() - shared] {
        out.push(u8::try_from(label.len()).ok()?);
        out.extend_from_slice(label);
    }
    if shared == 0 {
        out.push(0);
        return Some(());
    }
    let skipped: usize = asked[..asked.len() - shared]
        .iter()
        .map(|l| l.len() + 1)
        .sum();
    let at = u16::try_from(12 + skipped).ok()?;
    out.extend_from_slice(&(0xC000 | at).to_be_bytes());
    Some(())
}

/// A query read in place.
struct Query<'m> {
    /// Lower-case question name in wire form.
    key: [u8; 255],
    key_len: usize,
    /// End of the question section.
    qend: usize,
    qtype: u16,
    /// The requestor's UDP payload size, when the query has an OPT record.
    edns: Option<u16>,
    /// The ECS option's data as sent, and what it says.
    ecs: Option<(&'m [u8], ecs::Ecs)>,
    /// The DO bit (RFC 3225), copied into the response's OPT.
    dnssec_ok: bool,
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]))
}

/// Reads `msg` when it has the common shape; `None` for anything the general path must judge.
fn read(msg: &[u8]) -> Option<Query<'_>> {
    // Header: a standard query (QR, opcode, AA, TC clear; RD may be set), no RCODE bits, one
    // question, no answer or authority records, at most one additional (the OPT).
    if msg.len() < 17 || msg[2] & 0xFE != 0 || msg[3] & 0x0F != 0 {
        return None;
    }
    if be16(msg, 4)? != 1 || be16(msg, 6)? != 0 || be16(msg, 8)? != 0 {
        return None;
    }
    let additional = be16(msg, 10)?;
    if additional > 1 {
        return None;
    }
    let mut key = [0u8; 255];
    let mut key_len = 0;
    let mut pos = 12;
    loop {
        let len = usize::from(*msg.get(pos)?);
        if len == 0 {
            *key.get_mut(key_len)? = 0;
            key_len += 1;
            pos += 1;
            break;
        }
        // Pointers (and the reserved label types) go the general way.
        if len > 63 || key_len + 1 + len + 1 > 255 {
            return None;
        }
        key[key_len] = len as u8;
        let label = msg.get(pos + 1..pos + 1 + len)?;
        for (k, b) in key[key_len + 1..key_len + 1 + len].iter_mut().zip(label) {
            *k = b.to_ascii_lowercase();
        }
        key_len += 1 + len;
        pos += 1 + len;
    }
    let qtype = be16(msg, pos)?;
    if be16(msg, pos + 2)? != 1 {
        return None; // class IN only
    }
    let qend = pos + 4;
    let mut dnssec_ok = false;
    let (edns, ecs) = if additional == 1 {
        // OPT: root owner, TYPE 41, CLASS = payload size, extended RCODE and VERSION 0.
        let o = qend;
        if *msg.get(o)? != 0 || be16(msg, o + 1)? != 41 || *msg.get(o + 5)? != 0 {
            return None;
        }
        if *msg.get(o + 6)? != 0 {
            return None; // EDNS version > 0: BADVERS, the general path's answer
        }
        let payload = be16(msg, o + 3)?;
        let rdlen = usize::from(be16(msg, o + 9)?);
        if o + 11 + rdlen != msg.len() {
            return None;
        }
        let at = wire::OptAt {
            class: payload,
            ttl: [msg[o + 5], msg[o + 6], msg[o + 7], msg[o + 8]],
            rdata: o + 11..msg.len(),
        };
        let opt = wire::read_opt(msg, &at).ok()?;
        // Cookies and NSID are the general path's business.
        if opt.cookie.is_some() || opt.nsid {
            return None;
        }
        dnssec_ok = opt.dnssec_ok;
        let ecs = match opt.ecs {
            Some(data) => Some((data, ecs::parse_ecs(data).ok()?)),
            None => None,
        };
        (Some(payload), ecs)
    } else {
        if qend != msg.len() {
            return None;
        }
        (None, None)
    };
    Some(Query {
        key,
        key_len,
        qend,
        qtype,
        edns,
        ecs,
        dnssec_ok,
    })
}

/// Answers `msg` into `out` when it is a fast-path query; `None` leaves `out` untouched. Once
/// the fast path has decided a steered answer it writes it, whatever it is (addresses, the
/// all-down CNAME, NODATA, or TC when it does not fit): it never hands a decided query on.
pub fn respond(
    shared: &Shared,
    msg: &[u8],
    src: SocketAddr,
    protocol: Protocol,
    out: &mut Vec<u8>,
) -> Option<Outcome> {
    if shared.query_log || !shared.fast_path {
        return None;
    }
    let t0 = Instant::now();
    let q = read(msg)?;
    let served = shared.served.load();
    let zones = &served.zones;
    let entry = zones.fast.names.get(&q.key[..q.key_len])?;
    let zone = zones.zones.get(entry.zone)?;
    // A signed zone's DO queries: steered addresses and static RRsets get their cached RRSIGs
    // here; anything without a fresh signature in the indexes takes the general path, which
    // signs it.
    let signing = zone.dnssec.as_ref().filter(|_| q.dnssec_ok);
    let udp = protocol == Protocol::Udp;
    let udp_limit = q.edns.map_or(512, |p| p.clamp(512, shared.udp_payload));
    let limit = if udp {
        usize::from(udp_limit)
    } else {
        usize::from(u16::MAX)
    };
    let ecs_len = q.ecs.map_or(0, |(data, _)| 4 + data.len());
    let opt_len = q.edns.map_or(0, |_| 11 + ecs_len);

    // What to write: static answers, or a steered decision (decided at most once, here).
    let mut vips: SmallVec<[IpAddr; 8]> = SmallVec::new();
    let mut steered: Option<(crate::steer::Decision, u8, usize)> = None;
    let pre: Option<&Prebuilt> = match &entry.what {
        FastWhat::Service(si) => {
            let svc = zone.services.get(*si)?;
            let family = match q.qtype {
                1 => Family::V4,
                28 => Family::V6,
                _ => return None,
            };
            // `ecs = "ignore"`: located by the resolver, scope 0.
            let ecs = q
                .ecs
                .map(|(_, e)| e)
                .filter(|e| e.source_prefix > 0 && svc.use_ecs);
            let addr = ecs.map_or(src.ip(), |e| e.addr);
            let (decision, scope) = crate::steer::steer(
                svc,
                zones.map(svc),
                &zone.regions,
                &served.health,
                family,
                addr,
                ecs.map(|e| e.addr),
                t0,
                if svc.draws_by_slot() {
                    crate::rt::unix_seconds()
                } else {
                    0
                },
                &mut (),
            );
            if decision.cname.is_none() {
                crate::steer::for_each_vip(
                    &zone.regions,
                    &served.health,
                    family,
                    &decision,
                    |ip| vips.push(ip),
                );
            }
            // A signed CNAME or NODATA needs more than cached RRSIGs: the general path (which
            // decides again) answers those.
            if signing.is_some() && (decision.cname.is_some() || vips.is_empty()) {
                return None;
            }
            steered = Some((decision, scope, *si));
            None
        }
        FastWhat::Static(pre) => Some(pre.iter().find(|p| p.rtype == q.qtype)?),
    };
    let static_sigs = match (signing, pre) {
        (Some(sg), Some(p)) => {
            Some(sg.static_sigs(&q.key[..q.key_len], p.rtype, crate::rt::unix_seconds())?)
        }
        _ => None,
    };

    // RRL, after the name is known to be ours and before any bytes are written.
    let verdict = super::account::rrl(shared, src.ip(), udp, false, t0);
    let qtype = RecordType::from(q.qtype);
    let scope = steered.as_ref().map_or(0, |s| s.1);
    let chosen: &[usize] = match &steered {
        Some((d, _, _)) => &d.regions,
        None => &[],
    };
    let mut tally = Tally {
        udp,
        verdict,
        ecs: Some(q.ecs.map(|(_, e)| e)),
        zone: Some(entry.zone),
        service: steered.as_ref().map(|s| s.2),
        qtype,
        rcode: ResponseCode::NoError,
        scope,
        chosen,
        truncated: false,
    };
    if verdict == Verdict::Drop {
        tally.commit(&shared.metrics.global, &zones.stats, t0);
        return Some(Outcome::Silent);
    }

    // Header and question as sent; then the answer, the NODATA authority or nothing (TC).
    out.clear();
    out.extend_from_slice(&msg[..2]);
    out.push(0x80 | 0x04 | (msg[2] & 0x01));
    out.push(msg[3] & 0x10);
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(q.edns.is_some())]);
    out.extend_from_slice(&msg[12..q.qend]);
    let (an, ns): (u16, u16) = match (&steered, pre) {
        (_, Some(p)) => {
            out.extend_from_slice(&p.bytes);
            let mut an = p.count;
            if let Some((sigs, ttl)) = &static_sigs {
                for rdata in sigs.iter() {
                    rr_header(out, 46, *ttl);
                    out.extend_from_slice(&u16::try_from(rdata.len()).ok()?.to_be_bytes());
                    out.extend_from_slice(rdata);
                    an += 1;
                }
            }
            (an, 0)
        }
        (Some((d, _, _)), None) => match &d.cname {
            Some(target) => {
                // A hostname region's target or the all-down CNAME: the name compressed
                // against the question, as the general path's encoder does it.
                rr_header(out, 5, d.ttl);
                out.extend_from_slice(&[0, 0]);
                let at = out.len();
                name_against(out, target, &q.key[..q.key_len])?;
                set_rdlen(out, at)?;
                (1, 0)
            }
            None if vips.is_empty() => {
                // No VIP of the family to answer: NODATA with the zone's SOA.
                negative_soa(out, zone, &q.key[..q.key_len])?;
                (0, 1)
            }
            None => {
                for ip in &vips {
                    match ip {
                        IpAddr::V4(a) => {
                            rr_header(out, 1, d.ttl);
                            out.extend_from_slice(&[0, 4]);
                            out.extend_from_slice(&a.octets());
                        }
                        IpAddr::V6(a) => {
                            rr_header(out, 28, d.ttl);
                            out.extend_from_slice(&[0, 16]);
                            out.extend_from_slice(&a.octets());
                        }
                    }
                }
                let mut an = u16::try_from(vips.len()).ok()?;
                if let (Some(sg), Some((_, _, si))) = (signing, &steered) {
                    let svc = zone.services.get(*si)?;
                    let now = crate::rt::unix_seconds();
                    for rdata in sg.steered_sigs(*si, svc, qtype, &vips, now).iter() {
                        rr_header(out, 46, d.ttl);
                        out.extend_from_slice(&u16::try_from(rdata.len()).ok()?.to_be_bytes());
                        out.extend_from_slice(rdata);
                        an += 1;
                    }
                }
                (an, 0)
            }
        },
        (None, None) => return None,
    };
    // A slipped answer, or one that does not fit, goes out as header, question and OPT with TC:
    // the client retries over TCP.
    if verdict == Verdict::Slip || out.len() + opt_len > limit {
        out.truncate(q.qend);
        out[2] |= 0x02;
        tally.truncated = true;
    } else {
        out[6..8].copy_from_slice(&an.to_be_bytes());
        out[8..10].copy_from_slice(&ns.to_be_bytes());
    }
    if q.edns.is_some() {
        out.extend_from_slice(&[0, 0, 41]);
        out.extend_from_slice(&udp_limit.to_be_bytes());
        out.extend_from_slice(&[0, 0, if q.dnssec_ok { 0x80 } else { 0 }, 0]);
        out.extend_from_slice(&(ecs_len as u16).to_be_bytes());
        if let Some((data, _)) = q.ecs {
            // RFC 7871 §7.2.1: FAMILY, SOURCE PREFIX-LENGTH and ADDRESS as sent, our SCOPE.
            out.extend_from_slice(&[0, 8]);
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(&data[..3]);
            out.push(scope);
            out.extend_from_slice(&data[4..]);
        }
    }
    tally.commit(&shared.metrics.global, &zones.stats, t0);
    Some(Outcome::Reply)
}

/// An answer record's owner (the question, `0xC00C`), TYPE, CLASS IN and TTL; RDLENGTH and
/// RDATA follow.
fn rr_header(out: &mut Vec<u8>, rtype: u16, ttl: u32) {
    out.extend_from_slice(&[0xC0, 0x0C]);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&ttl.to_be_bytes());
}

/// Fills in the RDLENGTH placeholder that precedes the RDATA started at `at`.
fn set_rdlen(out: &mut [u8], at: usize) -> Option<()> {
    let len = u16::try_from(out.len().checked_sub(at)?).ok()?;
    let field = out.get_mut(at.checked_sub(2)?..at)?;
    field.copy_from_slice(&len.to_be_bytes());
    Some(())
}

/// The zone's negative SOA (RFC 2308 TTL) in the authority section, its names compressed
/// against the question (`qname` in wire form) as the general path writes them.
fn negative_soa(out: &mut Vec<u8>, zone: &crate::zone::Zone, qname: &[u8]) -> Option<()> {
    let RData::SOA(soa) = &zone.negative_soa.data else {
        return None;
    };
    let apex = Name::from(zone.lower_origin.clone());
    name_against(out, &apex, qname)?;
    out.extend_from_slice(&[0, 6, 0, 1]);
    out.extend_from_slice(&zone.negative_soa.ttl.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    let at = out.len();
    name_against(out, &soa.mname, qname)?;
    name_against(out, &soa.rname, qname)?;
    for v in [
        soa.serial,
        soa.refresh as u32,
        soa.retry as u32,
        soa.expire as u32,
        soa.minimum,
    ] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    set_rdlen(out, at)
}
