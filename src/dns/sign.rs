//! DNSSEC on the general path: a finished [`Response`] for a DO query in a signed zone gets
//! its RRSIGs and proofs. Every RRset of the answer section is signed (CNAME chains link by link;
//! a CNAME synthesised from a DNAME is not, RFC 6672 §5.3.1); a negative answer gets the signed
//! SOA and the compact-denial NSEC of the name denied (RFC 9824: NXDOMAIN answers NOERROR with
//! an NSEC whose bitmap holds NXNAME); a referral gets the signed DS, or the NSEC proving there
//! is none (an insecure delegation). Signatures come from the zone's cache: only the first
//! query for an RRset (or a new denied name) signs.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::answer::Response;
use crate::dnssec::{NXNAME, canonical_rdata, compact_nsec};
use crate::served::Catalog;
use crate::zone::{Found, Zone, ZoneSigning};

/// Adds the signatures and proofs `resp` needs; `qname`/`qtype` are the question.
pub fn add_dnssec(zones: &Catalog, resp: &mut Response, qname: &Name, qtype: RecordType) {
    let Some(zone) = resp.zone.and_then(|i| zones.zones.get(i)) else {
        return;
    };
    let Some(sg) = &zone.dnssec else {
        return;
    };
    let now = crate::rt::unix_seconds();
    // The steered RRset is signed over the service's TTL; it may be answered lower.
    let steered_ttl = resp
        .service
        .and_then(|i| zone.services.get(i))
        .map(|s| (LowerName::new(&s.name), s.ttl));

    let answers = std::mem::take(&mut resp.answers);
    resp.answers = sign_section(sg, answers, &resp.unsigned, steered_ttl.as_ref(), now);

    let referral = resp
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::NS)
        .map(|r| r.name.clone());
    if let Some(cut) = referral {
        let node = zone.nodes.get(&LowerName::new(&cut));
        match node.and_then(|n| n.rrset(RecordType::DS)) {
            Some(ds) => {
                let mut set: Vec<Record> = ds
                    .records
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        r.name = cut.clone();
                        r
                    })
                    .collect();
                let sigs = sign_rrset(sg, &set, None, now);
                set.extend(sigs);
                resp.authorities.extend(set);
            }
            None => {
                if let Some(n) = node {
                    deny(zone, sg, resp, &cut, zone.nsec_types(n), now);
                }
            }
        }
        return;
    }

    let negative = resp
        .authorities
        .iter()
        .any(|r| r.record_type() == RecordType::SOA);
    if !negative {
        return;
    }
    // The name denied: the end of a CNAME chain, else the question.
    let denied = resp
        .answers
        .iter()
        .rev()
        .find_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.clone()),
            _ => None,
        })
        .unwrap_or_else(|| qname.clone());
    let types = match zone.find(&LowerName::new(&denied), qtype) {
        Found::Node { node, .. } => zone.nsec_types(node),
        _ => vec![NXNAME],
    };
    // RFC 9824 §3.2: a name that does not exist is answered NOERROR, the NSEC saying NXNAME.
    if resp.rcode == ResponseCode::NXDomain {
        resp.rcode = ResponseCode::NoError;
    }
    let soa: Vec<Record> = resp
        .authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .cloned()
        .collect();
    let sigs = sign_rrset(sg, &soa, None, now);
    resp.authorities.extend(sigs);
    deny(zone, sg, resp, &denied, types, now);
}

/// The signed compact-denial NSEC of `name` with `types`, in the authority section.
fn deny(
    zone: &Zone,
    sg: &ZoneSigning,
    resp: &mut Response,
    name: &Name,
    types: Vec<u16>,
    now: u64,
) {
    let ttl = zone.negative_soa.ttl;
    if let Some(nsec) = compact_nsec(name, &types, ttl) {
        let sigs = sign_rrset(sg, std::slice::from_ref(&nsec), None, now);
        resp.authorities.push(nsec);
        resp.authorities.extend(sigs);
    }
}

/// `records` with the RRSIGs of each RRset after it (RRsets are runs of one owner and type).
fn sign_section(
    sg: &ZoneSigning,
    records: Vec<Record>,
    unsigned: &[usize],
    steered: Option<&(LowerName, u32)>,
    now: u64,
) -> Vec<Record> {
    let mut out = Vec::with_capacity(records.len() * 2);
    let mut i = 0;
    while i < records.len() {
        let (name, t) = (LowerName::new(&records[i].name), records[i].record_type());
        let mut j = i + 1;
        while j < records.len()
            && records[j].record_type() == t
            && LowerName::new(&records[j].name) == name
        {
            j += 1;
        }
        let set = &records[i..j];
        out.extend_from_slice(set);
        if !unsigned.contains(&i) {
            let orig = steered
                .filter(|(owner, _)| *owner == name)
                .map(|(_, ttl)| *ttl);
            out.extend(sign_rrset(sg, set, orig, now));
        }
        i = j;
    }
    out
}

/// The RRSIGs of one RRset, over `orig_ttl` (default: the records' own).
fn sign_rrset(sg: &ZoneSigning, set: &[Record], orig_ttl: Option<u32>, now: u64) -> Vec<Record> {
    let Some(first) = set.first() else {
        return Vec::new();
    };
    let served = first.ttl;
    let orig = orig_ttl.unwrap_or(served).max(served);
    sg.cache.get_or_sign(
        &sg.signer,
        &first.name,
        first.record_type(),
        orig,
        served,
        set.iter().map(canonical_rdata).collect(),
        now,
    )
}
