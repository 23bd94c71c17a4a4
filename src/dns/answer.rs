//! The authoritative answer to one question, as data: rcode, AA, the three sections and the ECS
//! scope. No sockets and no EDNS encoding here; [`super::handler`] turns this into a message.

use std::net::IpAddr;
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::geo::Ecs;
use crate::geo::GeoMap;
use crate::served::Catalog;
use crate::snapshot::HealthSnapshot;
use crate::steer::{self, Family};
use crate::zone::{Found, Service, Zone, vip_rdata};

/// CNAME chains inside one zone are followed at most this far (loops end here too).
const MAX_CHAIN: usize = 8;

/// Who asked: the transport source and the validated ECS option, if any.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// The transport source address of the query.
    pub src: IpAddr,
    /// The query's ECS option, validated; `None` when it had none.
    pub ecs: Option<Ecs>,
}

impl Client {
    /// The address to locate: the ECS address when the source prefix is above 0 (RFC 7871 §7.1.2:
    /// a SOURCE PREFIX-LENGTH of 0 means the client opted out), else the transport source.
    pub fn locate_addr(&self) -> IpAddr {
        self.scoped_addr().unwrap_or(self.src)
    }

    /// The ECS address when the answer is to carry a scope (source prefix above 0).
    pub fn scoped_addr(&self) -> Option<IpAddr> {
        self.ecs.filter(|e| e.source_prefix > 0).map(|e| e.addr)
    }
}

/// The answer before encoding.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// The response code.
    pub rcode: ResponseCode,
    /// The AA bit: false when refused (a name outside our zones) and for a referral that no CNAME
    /// of ours led to.
    pub authoritative: bool,
    /// The answer section: DNAMEs and CNAMEs followed inside the zone, then the records asked for.
    pub answers: Vec<Record>,
    /// The authority section: the zone's negative SOA (NXDOMAIN, NODATA) or a delegation's NS
    /// records.
    pub authorities: Vec<Record>,
    /// The additional section: glue, the zone's addresses for NS, MX, SRV, SVCB and HTTPS targets.
    pub additionals: Vec<Record>,
    /// ECS SCOPE PREFIX-LENGTH: 0 unless the answer depended on the client's address.
    pub scope: u8,
    /// Which zone answered (index into the zone set), for metrics.
    pub zone: Option<usize>,
    /// Which service of that zone answered, for metrics.
    pub service: Option<usize>,
    /// The regions a steered answer named (zone region indices).
    pub chosen: smallvec::SmallVec<[usize; 4]>,
    /// An Extended DNS Error to add (RFC 8914), when the query had EDNS.
    pub ede: Option<super::wire::Ede>,
    /// Answer records not to sign: CNAMEs synthesised from a DNAME (RFC 6672 §5.3.1).
    pub unsigned: smallvec::SmallVec<[usize; 2]>,
}

impl Response {
    /// REFUSED, not authoritative, every section empty.
    pub fn refused() -> Self {
        Self {
            rcode: ResponseCode::Refused,
            ..Default::default()
        }
    }
}

/// Answers `qname`/`qtype` (class IN) from `zones`.
pub fn answer(
    zones: &Catalog,
    health: &HealthSnapshot,
    qname: &Name,
    qtype: RecordType,
    client: &Client,
    now: Instant,
) -> Response {
    let mut lname = LowerName::new(qname);
    let Some((zi, zone)) = zones.zone_index_for(&lname) else {
        // RFC 8914 §4.21: not authoritative for the name (NSD and Knot add it too).
        return Response {
            ede: Some(super::wire::Ede::NotAuthoritative),
            ..Response::refused()
        };
    };
    let mut resp = Response {
        rcode: ResponseCode::NoError,
        authoritative: true,
        zone: Some(zi),
        ..Default::default()
    };
    let mut owner = qname.clone();
    for hop in 0..MAX_CHAIN {
        match zone.find(&lname, qtype) {
            Found::Referral { ns } => {
                // RFC 1034 §4.3.2 step 3b: refer to the child's servers, with glue. A referral
                // is not authoritative, unless a CNAME of ours led here: then the answer
                // section holds our authoritative data, and the referral follows it (as NSD
                // and Knot answer).
                if hop == 0 {
                    resp.authoritative = false;
                }
                resp.authorities.extend(ns.records.iter().cloned());
                add_glue(zone, ns.records.iter(), &mut resp.additionals);
                return resp;
            }
            Found::Dname {
                dname,
                owner_labels,
            } => {
                // RFC 6672 §2.2: the DNAME, a CNAME synthesised from it (same TTL), and the
                // chain followed on from there like any CNAME's.
                let Some(drec) = dname.records.first() else {
                    return resp;
                };
                resp.answers.push(drec.clone());
                let Some(target) = dname_target(drec) else {
                    return resp;
                };
                let Some(synth) = substitute(&owner, owner_labels, &target) else {
                    // RFC 6672 §2.2: the substituted name is too long.
                    resp.rcode = ResponseCode::YXDomain;
                    return resp;
                };
                resp.unsigned.push(resp.answers.len());
                resp.answers.push(Record::from_rdata(
                    owner.clone(),
                    drec.ttl,
                    RData::CNAME(hickory_proto::rr::rdata::CNAME(synth.clone())),
                ));
                let next = LowerName::new(&synth);
                if qtype == RecordType::CNAME
                    || !zone.lower_origin.zone_of(&next)
                    || resp.answers.iter().any(|r| LowerName::new(&r.name) == next)
                {
                    return resp;
                }
                lname = next;
                owner = synth;
                continue;
            }
            Found::NxDomain => {
                // RFC 6604 §3: after a CNAME the rcode is that of the last name.
                resp.rcode = ResponseCode::NXDomain;
                resp.authorities.push(zone.negative_soa.clone());
                return resp;
            }
            Found::Node { node, wildcard: _ } => {
                // A service answers A and AAAA (and ANY, as A), and NODATA for other types,
                // unless it steers the apex: there the static SOA, NS, MX… answer them.
                let steered =
                    matches!(qtype, RecordType::A | RecordType::AAAA) || node.rrsets.is_empty();
                if let Some(si) = node.service.filter(|_| steered) {
                    if let Some(svc) = zone.services.get(si) {
                        resp.service = Some(si);
                        let map = zones.map(svc);
                        answer_service(
                            zone, svc, map, health, &owner, qtype, client, now, &mut resp,
                        );
                    }
                    return resp;
                }
                // A CNAME is followed for any type but CNAME itself and ANY: ANY at a CNAME
                // owner is answered with the CNAME alone (as NSD and Knot do).
                if !matches!(qtype, RecordType::CNAME | RecordType::ANY)
                    && let Some(cname) = node.rrset(RecordType::CNAME)
                {
                    push_owned(&mut resp.answers, &cname.records, &owner);
                    let target = cname.records.first().and_then(|r| match &r.data {
                        RData::CNAME(c) => Some(c.0.clone()),
                        _ => None,
                    });
                    match target {
                        Some(t) if zone.lower_origin.zone_of(&LowerName::new(&t)) => {
                            let next = LowerName::new(&t);
                            // A loop: each of its names is in the answer once; stop there.
                            if resp.answers.iter().any(|r| LowerName::new(&r.name) == next) {
                                return resp;
                            }
                            lname = next;
                            owner = t;
                            continue;
                        }
                        _ => return resp,
                    }
                }
                if qtype == RecordType::TXT
                    && node.rrsets.is_empty()
                    && let Some(txt) =
                        explain_txt(zones, zone, health, &owner, client, now, &mut resp)
                {
                    resp.answers.extend(txt);
                    return resp;
                }
                let rrset = if qtype == RecordType::ANY {
                    // RFC 8482 §4.2: answer ANY with one RRset of the node, not all of them.
                    node.rrsets.first()
                } else {
                    node.rrset(qtype)
                };
                match rrset {
                    Some(set) => {
                        push_owned(&mut resp.answers, &set.records, &owner);
                        if matches!(
                            set.rtype,
                            RecordType::NS
                                | RecordType::MX
                                | RecordType::SRV
                                | RecordType::SVCB
                                | RecordType::HTTPS
                        ) {
                            add_glue(zone, set.records.iter(), &mut resp.additionals);
                        }
                    }
                    None => resp.authorities.push(zone.negative_soa.clone()),
                }
                return resp;
            }
        }
    }
    resp
}

#[allow(clippy::too_many_arguments)]
fn answer_service(
    zone: &Zone,
    svc: &Service,
    map: &GeoMap,
    health: &HealthSnapshot,
    owner: &Name,
    qtype: RecordType,
    client: &Client,
    now: Instant,
    resp: &mut Response,
) {
    let family = match qtype {
        RecordType::A | RecordType::ANY => Family::V4,
        RecordType::AAAA => Family::V6,
        _ => {
            // Services answer A and AAAA only: NODATA for anything else, not client-dependent.
            resp.authorities.push(zone.negative_soa.clone());
            return;
        }
    };
    let (decision, scope) = steer::steer(
        svc,
        map,
        &zone.regions,
        health,
        family,
        // `ecs = "ignore"`: located by the resolver, and the answer holds for every subnet.
        if svc.use_ecs {
            client.locate_addr()
        } else {
            client.src
        },
        client.scoped_addr().filter(|_| svc.use_ecs),
        now,
        if svc.draws_by_slot() {
            crate::rt::unix_seconds()
        } else {
            0
        },
        &mut (),
    );
    resp.scope = scope;
    resp.chosen = decision.regions.clone();
    if let Some(target) = &decision.cname {
        resp.answers.push(Record::from_rdata(
            owner.clone(),
            decision.ttl,
            RData::CNAME(hickory_proto::rr::rdata::CNAME(target.clone())),
        ));
        return;
    }
    steer::for_each_vip(&zone.regions, health, family, &decision, |ip| {
        resp.answers.push(Record::from_rdata(
            owner.clone(),
            decision.ttl,
            vip_rdata(ip),
        ));
    });
    if resp.answers.is_empty() {
        resp.authorities.push(zone.negative_soa.clone());
    }
}

/// Copies `records` into `out` with `owner` as their name (the query's case, or the wildcard
/// expansion's name).
fn push_owned(out: &mut Vec<Record>, records: &[Record], owner: &Name) {
    out.extend(records.iter().map(|r| {
        let mut r = r.clone();
        r.name = owner.clone();
        r
    }));
}

/// A and AAAA of in-zone NS, MX, SRV, SVCB and HTTPS targets, for the additional section
/// (RFC 1035 §3.3.9 and §3.3.11, RFC 2782, RFC 9460 §4.1 — Knot adds the last two too).
fn add_glue<'a>(zone: &Zone, records: impl Iterator<Item = &'a Record>, out: &mut Vec<Record>) {
    for r in records {
        let svcb;
        let target = match &r.data {
            RData::NS(ns) => &ns.0,
            RData::MX(mx) => &mx.exchange,
            RData::SRV(srv) => &srv.target,
            RData::Unknown {
                code: RecordType::SVCB | RecordType::HTTPS,
                rdata,
            } => match svcb_target(&rdata.anything, &r.name) {
                Some(t) => {
                    svcb = t;
                    &svcb
                }
                None => continue,
            },
            _ => continue,
        };
        for a in zone.addresses(target) {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
    }
}

/// The target of a DNAME record (kept as wire RDATA).
fn dname_target(r: &Record) -> Option<Name> {
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
    match &r.data {
        RData::Unknown { rdata, .. } => Name::read(&mut BinDecoder::new(&rdata.anything)).ok(),
        _ => None,
    }
}

/// `name` with its last `suffix_labels` labels replaced by `target`; `None` when too long.
fn substitute(name: &Name, suffix_labels: u8, target: &Name) -> Option<Name> {
    let keep = usize::from(name.num_labels().checked_sub(suffix_labels)?);
    let head = Name::from_labels(name.iter().take(keep)).ok()?;
    head.append_name(target).ok()
}

/// The TargetName of SVCB or HTTPS RDATA (RFC 9460 §2.2), the owner for "." in ServiceMode.
fn svcb_target(rdata: &[u8], owner: &Name) -> Option<Name> {
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
    let priority = u16::from_be_bytes([*rdata.first()?, *rdata.get(1)?]);
    let target = Name::read(&mut BinDecoder::new(rdata.get(2..)?)).ok()?;
    match (target.is_root(), priority) {
        (false, _) => Some(target),
        (true, 0) => None,
        (true, _) => Some(owner.clone()),
    }
}

/// `_explain.<service> TXT`, when the service allows it: the decision table, one line per string.
fn explain_txt(
    zones: &Catalog,
    zone: &Zone,
    health: &HealthSnapshot,
    owner: &Name,
    client: &Client,
    now: Instant,
    resp: &mut Response,
) -> Option<Vec<Record>> {
    let first = owner.iter().next()?;
    if !first.eq_ignore_ascii_case(b"_explain") {
        return None;
    }
    let target = LowerName::new(&owner.base_name());
    let svc = zone
        .services
        .iter()
        .find(|s| s.explain_txt && LowerName::new(&s.name) == target)?;
    let (addr, prefix) = if svc.use_ecs {
        let prefix = client.ecs.map(|e| e.source_prefix).filter(|p| *p > 0);
        (client.locate_addr(), prefix)
    } else {
        (client.src, None)
    };
    let x = crate::explain::explain_service(
        zones,
        health,
        zone,
        svc,
        Family::V4,
        addr,
        prefix,
        now,
        crate::rt::unix_seconds(),
    );
    resp.scope = x.scope;
    let text = x.to_text();
    Some(
        text.lines()
            .map(|l| {
                let l: String = l.chars().take(250).collect();
                let txt = hickory_proto::rr::rdata::TXT::new(vec![l]);
                Record::from_rdata(owner.clone(), 0, RData::TXT(txt))
            })
            .collect(),
    )
}
