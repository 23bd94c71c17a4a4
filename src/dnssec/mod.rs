//! DNSSEC signing, online (RFC 4033–4035): keys and their files ([`keys`]), RRSIGs over
//! RRsets in canonical form, the DNSKEY/CDS/CDNSKEY RRsets of a zone, and compact denial of
//! existence (RFC 9824: one NSEC at the query name, NXNAME for names that do not exist).
//!
//! Neutral: hickory records and ring's crypto; no clocks (the signing time is an argument) and no
//! knowledge of zones or queries. Everything that can be signed ahead of time is signed at load
//! by `config`; what depends on the answer (steered RRsets, denial records) is signed once and
//! cached by [`cache`].

pub mod cache;
pub mod keys;

use std::sync::Arc;

use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

pub use keys::{Algorithm, Key, PublicKey};

/// RFC 9824's NXNAME meta type: in the NSEC bitmap of a name that does not exist.
pub const NXNAME: u16 = 128;

/// The signing policy and keys of one zone.
#[derive(Debug)]
pub struct Signer {
    /// The zone (signer name), lower case.
    pub zone: Name,
    /// Keys that sign the DNSKEY, CDS and CDNSKEY RRsets (KSKs, or the CSK).
    pub ksks: Vec<Arc<Key>>,
    /// Keys that sign everything else (ZSKs, or the CSK).
    pub zsks: Vec<Arc<Key>>,
    /// Every key published in the DNSKEY RRset: the signing keys and those only published
    /// (a rollover's incoming or outgoing key).
    pub published: Vec<Arc<Key>>,
    /// Seconds a signature is valid from its inception.
    pub validity: u32,
    /// Seconds the inception is set back, for resolvers with slow clocks.
    pub inception_offset: u32,
    /// A cached signature is made anew when less than this many seconds of it are left.
    pub refresh: u32,
    /// TTL of the DNSKEY, CDS and CDNSKEY RRsets.
    pub dnskey_ttl: u32,
    /// Publish CDS and CDNSKEY for the SEP keys (RFC 7344, RFC 8078).
    pub cds: bool,
}

impl Signer {
    /// RRSIGs over one RRset: `owner` (as the RRSIG is to be written), `rtype`, `ttl` (the
    /// original TTL), the RDATA of each record in canonical form. One signature per signing key
    /// of the right kind. `labels` is the owner's label count unless the owner is a wildcard
    /// (RFC 4034 §3.1.3); `now` is Unix seconds.
    pub fn sign(
        &self,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        rdatas: &[Vec<u8>],
        now: u64,
    ) -> Vec<Record> {
        let keys = if matches!(
            rtype,
            RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY
        ) {
            &self.ksks
        } else {
            &self.zsks
        };
        let inception = (now as u32).wrapping_sub(self.inception_offset);
        let expiration = (now as u32).wrapping_add(self.validity);
        keys.iter()
            .filter_map(|k| {
                rrsig(
                    k, &self.zone, owner, rtype, ttl, rdatas, inception, expiration,
                )
            })
            .collect()
    }

    /// The RRSIG's expiration (Unix seconds, from a signature made at `now`) minus the refresh
    /// margin: when a cached signature must be made anew.
    pub fn renew_at(&self, now: u64) -> u64 {
        now + u64::from(self.validity.saturating_sub(self.refresh))
    }

    /// The apex DNSKEY RRset (every published key), and CDS and CDNSKEY for the SEP keys that
    /// sign, each as (type, records). TTL `dnskey_ttl`.
    pub fn apex_key_sets(&self) -> Vec<(RecordType, Vec<Record>)> {
        let rec = |t: RecordType, rdata: Vec<u8>| {
            Record::from_rdata(self.zone.clone(), self.dnskey_ttl, unknown(t, rdata))
        };
        let mut out = vec![(
            RecordType::DNSKEY,
            self.published
                .iter()
                .map(|k| rec(RecordType::DNSKEY, k.dnskey_rdata()))
                .collect(),
        )];
        if self.cds {
            let seps: Vec<&Arc<Key>> = self.ksks.iter().filter(|k| k.is_sep()).collect();
            if !seps.is_empty() {
                out.push((
                    RecordType::CDS,
                    seps.iter()
                        .map(|k| rec(RecordType::CDS, k.ds_rdata()))
                        .collect(),
                ));
                out.push((
                    RecordType::CDNSKEY,
                    seps.iter()
                        .map(|k| rec(RecordType::CDNSKEY, k.dnskey_rdata()))
                        .collect(),
                ));
            }
        }
        out
    }
}

/// Record data kept as wire octets (types hickory does not model without its DNSSEC feature).
pub fn unknown(t: RecordType, rdata: Vec<u8>) -> RData {
    RData::Unknown {
        code: t,
        rdata: NULL::with(rdata),
    }
}

/// One RRSIG record over the canonical `rdatas` (sorted and deduplicated here).
#[allow(clippy::too_many_arguments)]
fn rrsig(
    key: &Key,
    zone: &Name,
    owner: &Name,
    rtype: RecordType,
    ttl: u32,
    rdatas: &[Vec<u8>],
    inception: u32,
    expiration: u32,
) -> Option<Record> {
    let mut sorted: Vec<&Vec<u8>> = rdatas.iter().collect();
    sorted.sort();
    sorted.dedup();
    let labels = {
        let n = owner.num_labels();
        if owner.is_wildcard() { n - 1 } else { n }
    };
    // RFC 4034 §3.1.8.1: the RRSIG RDATA without the signature, then each RR in canonical
    // form and order.
    let mut head = Vec::with_capacity(64);
    head.extend_from_slice(&u16::from(rtype).to_be_bytes());
    head.push(key.alg.number());
    head.push(labels);
    head.extend_from_slice(&ttl.to_be_bytes());
    head.extend_from_slice(&expiration.to_be_bytes());
    head.extend_from_slice(&inception.to_be_bytes());
    head.extend_from_slice(&key.tag.to_be_bytes());
    head.extend_from_slice(&name_wire_lower(zone));
    let owner_wire = name_wire_lower(owner);
    let mut data = head.clone();
    for rd in &sorted {
        data.extend_from_slice(&owner_wire);
        data.extend_from_slice(&u16::from(rtype).to_be_bytes());
        data.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
        data.extend_from_slice(&ttl.to_be_bytes());
        data.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        data.extend_from_slice(rd);
    }
    let sig = key.sign(&data).ok()?;
    let mut rdata = head;
    rdata.extend_from_slice(&sig);
    Some(Record::from_rdata(
        owner.clone(),
        ttl,
        unknown(RecordType::RRSIG, rdata),
    ))
}

/// `name` in uncompressed wire form, lower case (the canonical form of an owner name).
pub fn name_wire_lower(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    let mut enc = BinEncoder::new(&mut out);
    enc.set_name_encoding(NameEncoding::UncompressedLowercase);
    let _ = name.emit(&mut enc);
    out
}

/// The RDATA of `record` in DNSSEC canonical form (RFC 4034 §6.2, RFC 6840 §5.1): no
/// compression, and the domain names inside the RDATA of the types listed there in lower case.
pub fn canonical_rdata(record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    let mut enc = BinEncoder::new(&mut out);
    enc.set_name_encoding(NameEncoding::UncompressedLowercase);
    let _ = record.data.emit(&mut enc);
    if let RData::Unknown { code, .. } = &record.data {
        lower_names_in(*code, &mut out);
    }
    out
}

/// Lower-cases the domain names inside raw RDATA of the RFC 4034 §6.2 types hickory keeps as
/// octets (the typed ones were lower-cased by the encoder). Names here are uncompressed.
fn lower_names_in(t: RecordType, rdata: &mut [u8]) {
    // (bytes before the first name, number of names); NAPTR's three strings come first.
    let layout: Option<(usize, usize)> = match u16::from(t) {
        3 | 4 | 7 | 8 | 9 | 39 => Some((0, 1)), // MD MF MB MG MR DNAME
        14 | 17 => Some((0, 2)),                // MINFO RP
        18 | 21 | 36 => Some((2, 1)),           // AFSDB RT KX
        26 => Some((2, 2)),                     // PX
        35 => naptr_skip(rdata).map(|s| (s, 1)),
        _ => None,
    };
    let Some((mut at, names)) = layout else {
        return;
    };
    for _ in 0..names {
        while let Some(&len) = rdata.get(at) {
            at += 1;
            if len == 0 {
                break;
            }
            let end = (at + usize::from(len)).min(rdata.len());
            if let Some(label) = rdata.get_mut(at..end) {
                label.make_ascii_lowercase();
            }
            at = end;
        }
    }
}

/// Where NAPTR's replacement name starts: after order, preference and three strings.
fn naptr_skip(rdata: &[u8]) -> Option<usize> {
    let mut at = 4;
    for _ in 0..3 {
        at += 1 + usize::from(*rdata.get(at)?);
    }
    Some(at)
}

/// NSEC RDATA: the next name (as written, not lower-cased: RFC 6840 §5.1) and the type bitmap
/// of `types` (RFC 4034 §4.1.2).
pub fn nsec_rdata(next: &Name, types: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(next.len() + 12);
    let mut enc = BinEncoder::new(&mut out);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    let _ = next.emit(&mut enc);
    let mut sorted = types.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut i = 0;
    while i < sorted.len() {
        let window = (sorted[i] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut len = 0;
        while i < sorted.len() && (sorted[i] >> 8) as u8 == window {
            let low = (sorted[i] & 0xFF) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            len = len.max(low / 8 + 1);
            i += 1;
        }
        out.push(window);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
    out
}

/// The compact-denial NSEC of `qname` (RFC 9824 §3): next name `\000.<qname>`, the types that
/// exist at the name (for a name that does not exist: NXNAME), plus RRSIG and NSEC.
pub fn compact_nsec(qname: &Name, types: &[u16], ttl: u32) -> Option<Record> {
    // The next name in lower case whatever the query's spelling, so that one signature serves
    // every spelling of the name.
    let next = qname.to_lowercase().prepend_label(&b"\0"[..]).ok()?;
    let mut all = types.to_vec();
    all.push(u16::from(RecordType::RRSIG));
    all.push(u16::from(RecordType::NSEC));
    Some(Record::from_rdata(
        qname.clone(),
        ttl,
        unknown(RecordType::NSEC, nsec_rdata(&next, &all)),
    ))
}

/// A signer for tests: one Ed25519 CSK for `gslb.example.`, 14 days' validity, renewed after 7.
#[cfg(test)]
pub(crate) fn test_signer() -> Signer {
    let zone = Name::from_ascii("gslb.example.").unwrap();
    let key = Arc::new(Key::generate(&zone, Algorithm::Ed25519, 257).unwrap());
    Signer {
        zone,
        ksks: vec![key.clone()],
        zsks: vec![key.clone()],
        published: vec![key],
        validity: 14 * 86_400,
        inception_offset: 3600,
        refresh: 7 * 86_400,
        dnskey_ttl: 3600,
        cds: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_bitmaps_are_encoded_by_window() {
        // RFC 4034 §4.3's example: A MX RRSIG NSEC TYPE1234.
        let next = Name::from_ascii("host.example.com.").unwrap();
        let rd = nsec_rdata(&next, &[1, 15, 46, 47, 1234]);
        let bitmap = &rd[next.len() + 1..];
        // Window 0: A (1), MX (15), RRSIG (46), NSEC (47) in 6 bytes; window 4: 1234 is bit
        // 210, the 27th byte.
        let mut want = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b];
        want.extend([0u8; 26]);
        want.push(0x20);
        assert_eq!(bitmap, want.as_slice());
    }

    #[test]
    fn names_in_rdata_are_lower_cased_for_the_listed_types_only() {
        let rp = {
            let mut v = Vec::new();
            for n in ["Admin.Example.", "TXT.Example."] {
                v.extend(Name::from_ascii(n).unwrap().to_bytes().unwrap_or_default());
            }
            v
        };
        let rec = Record::from_rdata(Name::root(), 1, unknown(RecordType::from(17), rp.clone()));
        let canon = canonical_rdata(&rec);
        assert_eq!(canon, rp.to_ascii_lowercase());
        // HINFO's strings keep their case; so does an unknown type.
        let other = Record::from_rdata(
            Name::root(),
            1,
            unknown(RecordType::from(65000), rp.clone()),
        );
        assert_eq!(canonical_rdata(&other), rp);
    }
}
