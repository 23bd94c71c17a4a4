//! Signatures made while answering, kept until their refresh time: a steered answer comes from a
//! finite set of RRsets (a region's VIPs per family, or a few regions' together), and a denial
//! from the query name, so after the first query for each nothing is signed again until the
//! signature nears its expiry. What is signed at load is *pinned*: kept (and renewed) for the
//! zone's lifetime. The rest is bounded: at `capacity` entries that part starts over (a flood
//! of random names costs a signature each, as it would without a cache, and never evicts what
//! the load signed).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use hickory_proto::rr::{Name, Record, RecordType};

use super::Signer;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    owner: Vec<u8>,
    rtype: u16,
    ttl: u32,
    rdatas: Vec<Vec<u8>>,
}

struct Entry {
    /// The owner as first signed (to sign it again when due).
    owner: Name,
    sigs: Arc<[Record]>,
    renew_at: u64,
}

/// RRSIGs by RRset (owner in lower case, type, TTL, canonical RDATA set).
pub struct SigCache {
    /// Signed at load, never evicted.
    pinned: RwLock<HashMap<Key, Entry>>,
    /// Signed while answering, bounded by `capacity`.
    map: RwLock<HashMap<Key, Entry>>,
    capacity: usize,
    signed: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for SigCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl SigCache {
    /// An empty cache of at most `capacity` RRsets.
    pub fn new(capacity: usize) -> Self {
        Self {
            pinned: RwLock::new(HashMap::new()),
            map: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
            signed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many RRsets were signed through this cache (each miss or renewal is one).
    pub fn signed(&self) -> u64 {
        self.signed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The RRSIGs of the RRset, from the cache or signed now (`now`: Unix seconds): signed
    /// over the original TTL `ttl`, sent with the TTL the RRset is answered with, `served_ttl`
    /// (lower when a steered answer is degraded). Their owner is `owner` as given (the query's
    /// spelling).
    #[allow(clippy::too_many_arguments)]
    pub fn get_or_sign(
        &self,
        signer: &Signer,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        served_ttl: u32,
        rdatas: Vec<Vec<u8>>,
        now: u64,
    ) -> Vec<Record> {
        let (sigs, _) = self.lookup(signer, owner, rtype, ttl, rdatas, now, now);
        sigs.iter()
            .map(|r| {
                let mut r = r.clone();
                r.name = owner.clone();
                r.ttl = served_ttl.min(ttl);
                r
            })
            .collect()
    }

    /// The RRset's signatures as cached (owner and TTL as signed) and when they are due for
    /// renewal (Unix seconds), signing them at `now` when they are missing or due by
    /// `renew_before` (`now` on the query path; later for the refresher).
    #[allow(clippy::too_many_arguments)]
    pub fn lookup(
        &self,
        signer: &Signer,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        rdatas: Vec<Vec<u8>>,
        now: u64,
        renew_before: u64,
    ) -> (Arc<[Record]>, u64) {
        self.get(signer, owner, rtype, ttl, rdatas, now, renew_before, false)
    }

    /// Signs the RRset at load and keeps its signatures for the zone's lifetime (renewed by
    /// [`Self::refresh_due`], never evicted).
    pub fn pin(
        &self,
        signer: &Signer,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        rdatas: Vec<Vec<u8>>,
        now: u64,
    ) {
        self.get(signer, owner, rtype, ttl, rdatas, now, now, true);
    }

    #[allow(clippy::too_many_arguments)]
    fn get(
        &self,
        signer: &Signer,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        mut rdatas: Vec<Vec<u8>>,
        now: u64,
        renew_before: u64,
        pin: bool,
    ) -> (Arc<[Record]>, u64) {
        rdatas.sort();
        rdatas.dedup();
        let key = Key {
            owner: super::name_wire_lower(owner),
            rtype: u16::from(rtype),
            ttl,
            rdatas,
        };
        let find = |map: &RwLock<HashMap<Key, Entry>>| {
            map.read().ok().and_then(|m| {
                m.get(&key)
                    .map(|e| (e.sigs.clone(), e.renew_at, e.renew_at > renew_before))
            })
        };
        // A pinned RRset stays pinned when it is renewed here.
        let (found, pinned) = match find(&self.pinned) {
            Some(f) => (Some(f), true),
            None => (find(&self.map), pin),
        };
        if let Some((sigs, renew_at, true)) = found {
            return (sigs, renew_at);
        }
        let fresh: Arc<[Record]> = signer.sign(owner, rtype, ttl, &key.rdatas, now).into();
        self.signed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let renew_at = signer.renew_at(now);
        let entry = Entry {
            owner: owner.clone(),
            sigs: fresh.clone(),
            renew_at,
        };
        if pinned {
            if let Ok(mut m) = self.pinned.write() {
                m.insert(key, entry);
            }
        } else if let Ok(mut m) = self.map.write() {
            if m.len() >= self.capacity {
                m.clear();
            }
            m.insert(key, entry);
        }
        (fresh, renew_at)
    }

    /// Signs again, at `now`, every cached RRset whose signatures are due for renewal by
    /// `renew_before`; returns how many. Run off the query path ahead of the refresh times, so
    /// that queries find fresh signatures and sign nothing.
    pub fn refresh_due(&self, signer: &Signer, now: u64, renew_before: u64) -> usize {
        [&self.pinned, &self.map]
            .into_iter()
            .map(|map| Self::refresh_map(map, &self.signed, signer, now, renew_before))
            .sum()
    }

    fn refresh_map(
        map: &RwLock<HashMap<Key, Entry>>,
        signed: &std::sync::atomic::AtomicU64,
        signer: &Signer,
        now: u64,
        renew_before: u64,
    ) -> usize {
        let due: Vec<(Key, Name)> = match map.read() {
            Ok(m) => m
                .iter()
                .filter(|(_, e)| e.renew_at <= renew_before)
                .map(|(k, e)| (k.clone(), e.owner.clone()))
                .collect(),
            Err(_) => return 0,
        };
        let count = due.len();
        for (key, owner) in due {
            let rtype = RecordType::from(key.rtype);
            let fresh: Arc<[Record]> = signer.sign(&owner, rtype, key.ttl, &key.rdatas, now).into();
            signed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let renew_at = signer.renew_at(now);
            if let Ok(mut m) = map.write() {
                m.insert(
                    key,
                    Entry {
                        owner,
                        sigs: fresh,
                        renew_at,
                    },
                );
            }
        }
        count
    }

    /// How many RRsets are cached.
    pub fn len(&self) -> usize {
        [&self.pinned, &self.map]
            .iter()
            .map(|m| m.read().map_or(0, |m| m.len()))
            .sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::test_signer as signer;

    /// The expiration field of the first RRSIG (RFC 4034 §3.1: bytes 8..12 of the RDATA).
    fn expiration(sigs: &[Record]) -> u32 {
        match &sigs[0].data {
            hickory_proto::rr::RData::Unknown { rdata, .. } => {
                let b = &rdata.anything;
                u32::from_be_bytes([b[8], b[9], b[10], b[11]])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signatures_are_reused_until_due_and_renewed_ahead_by_the_refresher() {
        let s = signer();
        let cache = SigCache::new(10);
        let owner = Name::from_ascii("www.gslb.example.").unwrap();
        let rdatas = vec![vec![192, 0, 2, 10]];
        let t0 = 1_800_000_000;
        let (first, renew_at) = cache.lookup(&s, &owner, RecordType::A, 30, rdatas.clone(), t0, t0);
        assert_eq!(renew_at, t0 + 7 * 86_400);
        assert_eq!(cache.signed(), 1);
        // A day later: the same signatures, nothing signed.
        let t1 = t0 + 86_400;
        let (again, _) = cache.lookup(&s, &owner, RecordType::A, 30, rdatas.clone(), t1, t1);
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(cache.signed(), 1);
        // The refresher, ten minutes before the refresh time, renews it (and only when due).
        assert_eq!(cache.refresh_due(&s, t1, t1 + 600), 0);
        let t2 = renew_at - 300;
        assert_eq!(cache.refresh_due(&s, t2, t2 + 600), 1);
        assert_eq!(cache.signed(), 2);
        // Queries after the old refresh time find the renewed signatures and sign nothing.
        let t3 = renew_at + 60;
        let (renewed, _) = cache.lookup(&s, &owner, RecordType::A, 30, rdatas, t3, t3);
        assert_eq!(cache.signed(), 2);
        assert_eq!(
            u64::from(expiration(&renewed)),
            t2 + 14 * 86_400,
            "signed at the refresher's time"
        );
        assert!(expiration(&renewed) > expiration(&first));
    }

    #[test]
    fn a_flood_of_new_names_never_evicts_what_the_load_signed() {
        let s = signer();
        let cache = SigCache::new(4);
        let t = 1_800_000_000;
        let www = Name::from_ascii("www.gslb.example.").unwrap();
        cache.pin(&s, &www, RecordType::A, 30, vec![vec![192, 0, 2, 10]], t);
        for i in 0..100u8 {
            let n = Name::from_ascii(format!("x{i}.gslb.example.")).unwrap();
            cache.lookup(&s, &n, RecordType::NSEC, 60, vec![vec![i]], t, t);
        }
        assert_eq!(cache.signed(), 101);
        assert!(cache.len() <= 1 + 4, "bounded: {}", cache.len());
        cache.lookup(&s, &www, RecordType::A, 30, vec![vec![192, 0, 2, 10]], t, t);
        assert_eq!(cache.signed(), 101, "the pinned RRset was signed again");
    }
}
