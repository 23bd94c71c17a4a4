//! The query's spelling in the answer (DNS 0x20).
//!
//! NSD and Knot compress every name of a response against the question, so wherever a name
//! shares trailing labels with the question name those labels read as the query spelled them:
//! a resolver that randomises the case of its queries (draft-vixie-dnsext-dns0x20) sees its own
//! spelling in owner names and in the names inside NS, CNAME, PTR, MX and SOA data (the types
//! RFC 1035 lets a server compress). Names inside other types are never compressed and keep the
//! zone's spelling. [`spell_as_asked`] gives a response the same spelling.

use hickory_proto::rr::rdata::{CNAME, NS, PTR};
use hickory_proto::rr::{Name, RData, Record};
use smallvec::SmallVec;

use super::answer::Response;

/// Respells every name of `resp` that shares trailing labels with `qname` with `qname`'s
/// spelling of those labels.
pub fn spell_as_asked(resp: &mut Response, qname: &Name) {
    // Nothing to do when the query is spelled in lower case and the zone data is too, which is
    // the common case; `respell` checks cheaply before it allocates.
    for r in resp
        .answers
        .iter_mut()
        .chain(resp.authorities.iter_mut())
        .chain(resp.additionals.iter_mut())
    {
        respell_record(r, qname);
    }
}

fn respell_record(r: &mut Record, qname: &Name) {
    if let Some(n) = respell(&r.name, qname) {
        r.name = n;
    }
    match &mut r.data {
        RData::NS(NS(n)) | RData::CNAME(CNAME(n)) | RData::PTR(PTR(n)) => {
            if let Some(x) = respell(n, qname) {
                *n = x;
            }
        }
        RData::MX(mx) => {
            if let Some(x) = respell(&mx.exchange, qname) {
                mx.exchange = x;
            }
        }
        RData::SOA(soa) => {
            if let Some(x) = respell(&soa.mname, qname) {
                soa.mname = x;
            }
            if let Some(x) = respell(&soa.rname, qname) {
                soa.rname = x;
            }
        }
        _ => {}
    }
}

/// `name` with its trailing labels shared with `qname` (compared without case) spelled as in
/// `qname`; `None` when that changes nothing.
pub fn respell(name: &Name, qname: &Name) -> Option<Name> {
    let mine: SmallVec<[&[u8]; 8]> = name.iter().collect();
    let asked: SmallVec<[&[u8]; 8]> = qname.iter().collect();
    let shared = mine
        .iter()
        .rev()
        .zip(asked.iter().rev())
        .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
        .count();
    let from = mine.len() - shared;
    let differs = mine[from..]
        .iter()
        .zip(&asked[asked.len() - shared..])
        .any(|(a, b)| a != b);
    if !differs {
        return None;
    }
    let labels = mine[..from]
        .iter()
        .chain(&asked[asked.len() - shared..])
        .copied();
    let mut out = Name::from_labels(labels).ok()?;
    out.set_fqdn(name.is_fqdn());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn shared_suffix_takes_the_query_spelling() {
        let q = n("NoPe.T.eXaMpLe.");
        assert_eq!(
            respell(&n("t.example."), &q).unwrap().to_string(),
            "T.eXaMpLe."
        );
        assert_eq!(
            respell(&n("ns2.other.example."), &q).unwrap().to_string(),
            "ns2.other.eXaMpLe."
        );
        assert_eq!(
            respell(&n("nope.t.example."), &q).unwrap().to_string(),
            "NoPe.T.eXaMpLe."
        );
        // Nothing shared, or already spelled so: unchanged.
        assert!(respell(&n("example.org."), &q).is_none());
        assert!(respell(&n("x.T.eXaMpLe."), &q).is_none());
        assert!(respell(&n("x.t.example."), &n("t.example.")).is_none());
    }

    #[test]
    fn names_inside_compressible_data_follow_others_keep_the_zone_spelling() {
        use hickory_proto::rr::rdata::{MX, SRV};
        let q = n("WWW.T.EXAMPLE.");
        let mut resp = Response {
            answers: vec![
                Record::from_rdata(
                    n("www.t.example."),
                    1,
                    RData::CNAME(CNAME(n("a.t.example."))),
                ),
                Record::from_rdata(
                    n("www.t.example."),
                    1,
                    RData::MX(MX::new(1, n("m.t.example."))),
                ),
                Record::from_rdata(
                    n("www.t.example."),
                    1,
                    RData::SRV(SRV::new(0, 0, 1, n("s.t.example."))),
                ),
            ],
            ..Response::default()
        };
        spell_as_asked(&mut resp, &q);
        let text: Vec<String> = resp
            .answers
            .iter()
            .map(|r| format!("{} {}", r.name, r.data))
            .collect();
        assert_eq!(
            text,
            [
                "WWW.T.EXAMPLE. a.T.EXAMPLE.",
                "WWW.T.EXAMPLE. 1 m.T.EXAMPLE.",
                "WWW.T.EXAMPLE. 0 0 1 s.t.example."
            ]
        );
    }
}
