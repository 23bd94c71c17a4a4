//! Response rate limiting per client network (like BIND's and Knot's RRL), so that gslbd cannot
//! be used to flood a spoofed victim with answers.
//!
//! Lock-free and allocation-free: a fixed table of atomic slots, indexed by a hash of the client
//! network (/24 or /56 by default); each slot packs the current second and the responses counted
//! in it. Two networks that land on one slot share a budget (over-limiting, never under-limiting);
//! with 65 536 slots that is rare. Only UDP is limited: a TCP client has proven its address.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

pub use crate::config::RrlConfig;

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the response as it is.
    Send,
    /// Send a truncated answer (TC, no records).
    Slip,
    /// Send nothing.
    Drop,
}

const SLOTS: usize = 1 << 16;

/// The rate limiter: one budget of `responses_per_second` per client network, shared by every
/// worker. Built only when the config has an `[rrl]` section.
pub struct Rrl {
    cfg: RrlConfig,
    /// High 32 bits: second; low 32 bits: responses in that second.
    slots: Box<[AtomicU64]>,
    /// Responses this limiter dropped since it was built (the `/metrics` counter is
    /// `Global::rrl_dropped`, bumped by the accounting).
    pub dropped: AtomicU64,
    /// Responses this limiter sent truncated (slipped) since it was built.
    pub slipped: AtomicU64,
}

impl std::fmt::Debug for Rrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rrl").field("cfg", &self.cfg).finish()
    }
}

fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

impl Rrl {
    /// A limiter with every slot empty; also fixes the epoch its seconds count from.
    pub fn new(cfg: RrlConfig) -> Self {
        epoch();
        Self {
            cfg,
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            dropped: AtomicU64::new(0),
            slipped: AtomicU64::new(0),
        }
    }

    /// Counts one response to `client` at `now` and says what to do with it.
    pub fn check(&self, client: IpAddr, now: Instant) -> Verdict {
        let client = crate::geo::canonical(client);
        if self.cfg.exempt.iter().any(|n| n.contains(&client)) {
            return Verdict::Send;
        }
        let key =
            crate::steer::hash::client_hash(client, self.cfg.ipv4_prefix, self.cfg.ipv6_prefix);
        let slot = &self.slots[(key as usize) & (SLOTS - 1)];
        let sec = now.saturating_duration_since(epoch()).as_secs() as u32;
        let mut cur = slot.load(Relaxed);
        let count = loop {
            let (s, c) = ((cur >> 32) as u32, cur as u32);
            let next_count = if s == sec { c.saturating_add(1) } else { 1 };
            let next = (u64::from(sec) << 32) | u64::from(next_count);
            match slot.compare_exchange_weak(cur, next, Relaxed, Relaxed) {
                Ok(_) => break next_count,
                Err(actual) => cur = actual,
            }
        };
        if count <= self.cfg.responses_per_second {
            return Verdict::Send;
        }
        let over = count - self.cfg.responses_per_second;
        if self.cfg.slip > 0 && over.is_multiple_of(self.cfg.slip) {
            self.slipped.fetch_add(1, Relaxed);
            Verdict::Slip
        } else {
            self.dropped.fetch_add(1, Relaxed);
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rrl(rate: u32, slip: u32) -> Rrl {
        Rrl::new(RrlConfig {
            responses_per_second: rate,
            slip,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: vec!["10.9.0.0/16".parse().unwrap()],
        })
    }

    #[test]
    fn limits_per_network_per_second_with_slip() {
        let r = rrl(5, 2);
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let v: Vec<Verdict> = (0..11).map(|_| r.check(a, t)).collect();
        assert_eq!(&v[..5], &[Verdict::Send; 5]);
        assert_eq!(
            &v[5..],
            &[
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip
            ]
        );
        // Same /24, same budget; another /24 has its own.
        assert_eq!(r.check("192.0.2.200".parse().unwrap(), t), Verdict::Drop);
        assert_eq!(r.check("192.0.3.1".parse().unwrap(), t), Verdict::Send);
        // The next second starts afresh.
        assert_eq!(r.check(a, t + Duration::from_secs(1)), Verdict::Send);
        // Exempt networks are never limited.
        let e: IpAddr = "10.9.1.1".parse().unwrap();
        assert!((0..100).all(|_| r.check(e, t) == Verdict::Send));
        assert_eq!(r.slipped.load(Relaxed), 3);
    }

    #[test]
    fn slip_zero_drops_everything_over_the_limit() {
        let r = rrl(1, 0);
        let t = Instant::now();
        let a: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(r.check(a, t), Verdict::Send);
        assert!((0..10).all(|_| r.check(a, t) == Verdict::Drop));
        // Another address in the same /56 shares the budget.
        assert_eq!(
            r.check("2001:db8:0:ff::1".parse().unwrap(), t),
            Verdict::Drop
        );
    }
}
