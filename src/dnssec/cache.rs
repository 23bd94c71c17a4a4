//! Signatures made while answering, kept until their refresh time: a steered answer comes from a
//! finite set of RRsets (a region's VIPs per family, or a few regions' together), and a denial
//! from the query name, so after the first query for each nothing is signed again until the
//! signature nears its expiry. Bounded: at `capacity` entries the cache starts over (a flood of
//! random names costs a signature each, as it would without a cache, and nothing more).

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
    sigs: Arc<[Record]>,
    renew_at: u64,
}

/// RRSIGs by RRset (owner in lower case, type, TTL, canonical RDATA set).
pub struct SigCache {
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
        mut rdatas: Vec<Vec<u8>>,
        now: u64,
    ) -> Vec<Record> {
        let (sigs, _) = self.lookup(signer, owner, rtype, ttl, std::mem::take(&mut rdatas), now);
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
    /// renewal (Unix seconds), signing them now when they are missing or due.
    pub fn lookup(
        &self,
        signer: &Signer,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        mut rdatas: Vec<Vec<u8>>,
        now: u64,
    ) -> (Arc<[Record]>, u64) {
        rdatas.sort();
        rdatas.dedup();
        let key = Key {
            owner: super::name_wire_lower(owner),
            rtype: u16::from(rtype),
            ttl,
            rdatas,
        };
        let cached = self.map.read().ok().and_then(|m| {
            m.get(&key)
                .filter(|e| e.renew_at > now)
                .map(|e| (e.sigs.clone(), e.renew_at))
        });
        match cached {
            Some(hit) => hit,
            None => {
                let fresh: Arc<[Record]> = signer.sign(owner, rtype, ttl, &key.rdatas, now).into();
                self.signed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let renew_at = signer.renew_at(now);
                if let Ok(mut m) = self.map.write() {
                    if m.len() >= self.capacity {
                        m.clear();
                    }
                    m.insert(
                        key,
                        Entry {
                            sigs: fresh.clone(),
                            renew_at,
                        },
                    );
                }
                (fresh, renew_at)
            }
        }
    }
}
