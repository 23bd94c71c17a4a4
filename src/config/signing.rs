//! `[dnssec]` of a zone file: the keys read from their BIND files, the policy checked, and
//! everything that can be signed before the first query signed at load: every authoritative
//! static RRset (the DNSKEY, CDS and CDNSKEY RRsets with the KSKs) and every steered RRset a
//! service answers when all its VIPs are up (each region's addresses per family, or its CNAME).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use hickory_proto::rr::{Name, Record, RecordType};

use super::zonefile::DnssecInput;
use crate::dnssec::{Key, Signer, canonical_rdata, compact_nsec};
use crate::zone::{Found, Zone, ZoneSigning, vip_rdata};

/// A duration written as `14d`, `12h`, `3600s` or plain seconds.
fn seconds(what: &str, v: Option<&str>, default: u32) -> Result<u32, String> {
    let Some(v) = v else {
        return Ok(default);
    };
    let d = match v.trim().parse::<u64>() {
        Ok(s) => std::time::Duration::from_secs(s),
        Err(_) => humantime::parse_duration(v.trim())
            .map_err(|e| format!("{what} {v:?}: {e} (e.g. 14d, 12h)"))?,
    };
    u32::try_from(d.as_secs()).map_err(|_| format!("{what} {v:?} is too long"))
}

/// Reads `<stem>.key` and `<stem>.private` (the stem may carry either extension).
fn read_key(base: &Path, stem: &str, origin: &Name) -> Result<Key, String> {
    let stem = stem
        .strip_suffix(".key")
        .or_else(|| stem.strip_suffix(".private"))
        .unwrap_or(stem);
    let path = base.join(stem);
    let read = |ext: &str| {
        let p = path.with_file_name(format!(
            "{}.{ext}",
            path.file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        ));
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let key = Key::from_bind(&read("key")?, &read("private")?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if key.zone != origin.to_lowercase() {
        return Err(format!(
            "{}: the key is for {}, not {}",
            path.display(),
            key.zone,
            origin
        ));
    }
    Ok(key)
}

/// The zone's signer and the signature cache size, from `[dnssec]`.
pub fn signer(d: &DnssecInput, origin: &Name, base: &Path) -> Result<(Arc<Signer>, usize), String> {
    if d.keys.is_empty() {
        return Err("keys: give at least one key (gslbd dnssec keygen makes one)".into());
    }
    let mut signing = Vec::new();
    for k in &d.keys {
        signing.push(Arc::new(read_key(base, k, origin)?));
    }
    let mut published = signing.clone();
    for k in &d.publish_only {
        published.push(Arc::new(read_key(base, k, origin)?));
    }
    let mut tags: Vec<(u16, u8)> = published.iter().map(|k| (k.tag, k.alg.number())).collect();
    tags.sort_unstable();
    if tags.windows(2).any(|w| w[0] == w[1]) {
        return Err("two keys share a key tag and algorithm: generate another".into());
    }
    let ksks: Vec<Arc<Key>> = signing.iter().filter(|k| k.is_sep()).cloned().collect();
    let zsks_only: Vec<Arc<Key>> = signing.iter().filter(|k| !k.is_sep()).cloned().collect();
    if ksks.is_empty() {
        return Err("no key with flags 257 signs: the DNSKEY RRset needs a KSK or a CSK".into());
    }
    // Without a ZSK the SEP keys sign everything: a combined signing key.
    let zsks = if zsks_only.is_empty() {
        ksks.clone()
    } else {
        zsks_only
    };
    let validity = seconds("validity", d.validity.as_deref(), 14 * 86_400)?;
    let refresh = seconds("refresh", d.refresh.as_deref(), validity / 2)?;
    let inception_offset = seconds("inception_offset", d.inception_offset.as_deref(), 3600)?;
    if validity < 3600 {
        return Err(format!("validity {validity} s: at least an hour"));
    }
    if refresh >= validity || refresh < 60 {
        return Err(format!(
            "refresh {refresh} s must be at least a minute and below the validity ({validity} s)"
        ));
    }
    let signer = Signer {
        zone: origin.to_lowercase(),
        ksks,
        zsks,
        published,
        validity,
        inception_offset,
        refresh,
        dnskey_ttl: d.dnskey_ttl.unwrap_or(3600),
        cds: d.cds.unwrap_or(true),
    };
    Ok((Arc::new(signer), d.cache_size.unwrap_or(100_000)))
}

/// One RRset to sign: owner, type, original TTL, canonical RDATA.
type Job = (Name, RecordType, u32, Vec<Vec<u8>>);

/// The zone's signing state with everything signable ahead of time already signed.
pub fn sign_at_load(zone: &Zone, signer: Arc<Signer>, cache_size: usize) -> ZoneSigning {
    let mut jobs: Vec<Job> = Vec::new();
    // Which jobs are static RRsets for the fast path's index.
    let mut indexed: Vec<usize> = Vec::new();
    // The SOA as negative answers carry it (TTL min(SOA TTL, minimum)).
    let neg_ttl = zone.negative_soa.ttl;
    jobs.push((
        zone.negative_soa.name.clone(),
        RecordType::SOA,
        neg_ttl,
        vec![canonical_rdata(&zone.negative_soa)],
    ));
    for (lname, node) in &zone.nodes {
        for set in &node.rrsets {
            // Authoritative data only: not a delegation's NS, not glue below a cut.
            match zone.find(lname, set.rtype) {
                Found::Node { node: n, wildcard } if !wildcard && std::ptr::eq(n, node) => {}
                _ => continue,
            }
            let Some(first) = set.records.first() else {
                continue;
            };
            // The fast path answers plain static RRsets with these signatures; the keys' own
            // RRsets (signed by the KSK) and DNSSEC types stay with the general path.
            if !matches!(
                set.rtype,
                RecordType::DNSKEY
                    | RecordType::CDS
                    | RecordType::CDNSKEY
                    | RecordType::RRSIG
                    | RecordType::NSEC
                    | RecordType::NSEC3
                    | RecordType::NSEC3PARAM
            ) {
                indexed.push(jobs.len());
            }
            jobs.push((
                first.name.clone(),
                set.rtype,
                first.ttl,
                set.records.iter().map(canonical_rdata).collect(),
            ));
        }
        // The compact-denial NSEC of the name, for NODATA answers and for referrals without a
        // DS (the proof of an insecure delegation).
        let own = match zone.find(lname, RecordType::NSEC) {
            Found::Node { node: n, wildcard } => !wildcard && std::ptr::eq(n, node),
            Found::Referral { ns } => {
                node.rrset(RecordType::NS)
                    .is_some_and(|own| std::ptr::eq(own, ns))
                    && node.rrset(RecordType::DS).is_none()
            }
            _ => false,
        };
        if own {
            let name: Name = lname.into();
            if let Some(nsec) = compact_nsec(&name, &zone.nsec_types(node), neg_ttl) {
                jobs.push((
                    name,
                    RecordType::NSEC,
                    neg_ttl,
                    vec![canonical_rdata(&nsec)],
                ));
            }
        }
        if let Some(svc) = node.service.and_then(|i| zone.services.get(i)) {
            for &ri in svc.regions.iter() {
                let Some(r) = zone.regions.get(ri) else {
                    continue;
                };
                if let Some(c) = &r.cname {
                    let rec = Record::from_rdata(
                        svc.name.clone(),
                        svc.ttl,
                        hickory_proto::rr::RData::CNAME(hickory_proto::rr::rdata::CNAME(c.clone())),
                    );
                    jobs.push((
                        svc.name.clone(),
                        RecordType::CNAME,
                        svc.ttl,
                        vec![canonical_rdata(&rec)],
                    ));
                }
            }
        }
    }
    // Steered RRsets, up to `cache_size` of them: every service's single-region sets first,
    // then the combinations of `answers > 1`. The rest is signed on first use.
    let mut steered: Vec<(usize, RecordType, Vec<IpAddr>)> = Vec::new();
    let most_answers = zone.services.iter().map(|s| s.answers).max().unwrap_or(1);
    for size in 1..=most_answers.max(1) {
        for (si, svc) in zone.services.iter().enumerate() {
            let room = cache_size.saturating_sub(steered.len());
            if room == 0 {
                break;
            }
            steered.extend(
                steered_sets(zone, svc, size, room)
                    .into_iter()
                    .map(|(t, vips)| (si, t, vips)),
            );
        }
    }
    for (si, t, vips) in &steered {
        let Some(svc) = zone.services.get(*si) else {
            continue;
        };
        let rdatas = vips
            .iter()
            .map(|ip| {
                canonical_rdata(&Record::from_rdata(
                    svc.name.clone(),
                    svc.ttl,
                    vip_rdata(*ip),
                ))
            })
            .collect();
        jobs.push((svc.name.clone(), *t, svc.ttl, rdatas));
    }
    let sg = ZoneSigning::new(signer, cache_size);
    sg.steered_capacity.store(
        (2 * steered.len()).max(65_536),
        std::sync::atomic::Ordering::Relaxed,
    );
    let now = crate::rt::unix_seconds();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for part in jobs.chunks(chunk) {
            let sg = &sg;
            s.spawn(move || {
                for (owner, t, ttl, rdatas) in part {
                    sg.cache
                        .pin(&sg.signer, owner, *t, *ttl, rdatas.clone(), now);
                }
            });
        }
    });
    // The fast path's indexes of static and steered RRsets (signed above: cache hits).
    for (owner, t, ttl, rdatas) in indexed.iter().filter_map(|&i| jobs.get(i)) {
        sg.index_static(owner, *t, *ttl, rdatas.clone(), now);
    }
    for (si, t, vips) in &steered {
        if let Some(svc) = zone.services.get(*si) {
            sg.steered_sigs(*si, svc, *t, vips, now);
        }
    }
    sg
}

/// The RRsets of exactly `size` regions a service can answer with all VIPs up, per family
/// (the union of their VIPs of that family), at most `limit`: with `size` 1 each region's own
/// set; larger sizes only for a service with `answers >= size` (an answer lists up to
/// `answers` regions, fewer when fewer are eligible). Regions answered by name (CNAME) are
/// signed as CNAMEs, not here.
fn steered_sets(
    zone: &Zone,
    svc: &crate::zone::Service,
    size: usize,
    limit: usize,
) -> Vec<(RecordType, Vec<IpAddr>)> {
    let mut out = Vec::new();
    if size > svc.answers.max(1) {
        return out;
    }
    for (t, v6) in [(RecordType::A, false), (RecordType::AAAA, true)] {
        let per_region: Vec<Vec<IpAddr>> = svc
            .regions
            .iter()
            .filter_map(|&i| zone.regions.get(i))
            .filter(|r| r.cname.is_none())
            .map(|r| {
                r.vips
                    .iter()
                    .copied()
                    .filter(|ip| ip.is_ipv6() == v6)
                    .collect()
            })
            .filter(|v: &Vec<IpAddr>| !v.is_empty())
            .collect();
        let n = per_region.len();
        if size > n {
            continue;
        }
        // Every `size`-subset of the regions, in lexicographic order of their indices.
        let mut idx: Vec<usize> = (0..size).collect();
        loop {
            if out.len() >= limit {
                return out;
            }
            let mut vips: Vec<IpAddr> = idx
                .iter()
                .flat_map(|&i| per_region[i].iter().copied())
                .collect();
            vips.sort_unstable();
            vips.dedup();
            out.push((t, vips));
            // The next subset: bump the rightmost index that can move, reset those after it.
            let Some(k) = (0..size).rev().find(|&k| idx[k] < n - size + k) else {
                break;
            };
            idx[k] += 1;
            for j in k + 1..size {
                idx[j] = idx[j - 1] + 1;
            }
        }
    }
    out
}
