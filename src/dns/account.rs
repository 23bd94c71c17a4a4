//! One place accounts for a query. The fast path and the general path each describe what they
//! did as a [`Tally`] and [`Tally::commit`] it, and both ask [`rrl`] for the rate-limiting
//! verdict, so the counters — transport, RRL, ECS, queries per zone and service, answers per
//! region, ECS scopes, truncation, answer time — cannot count differently on the two paths.

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::handler::Shared;
use super::rrl::Verdict;
use crate::geo::Ecs;
use crate::metrics::{Global, ZoneStats};

/// Whether a UDP response to `src` may go out (TCP is never limited: a TCP client has proven its
/// address, and so has one with a valid server cookie, RFC 7873 §5.3).
#[inline]
pub fn rrl(shared: &Shared, src: IpAddr, udp: bool, cookie_valid: bool, now: Instant) -> Verdict {
    match (&shared.rrl, udp && !cookie_valid) {
        (Some(rrl), true) => rrl.check(src, now),
        _ => Verdict::Send,
    }
}

/// What one query was and what it got, for the counters.
#[derive(Debug, Clone, Copy)]
pub struct Tally<'a> {
    /// Came over UDP (else TCP).
    pub udp: bool,
    /// What RRL said of the response; a dropped one counts only its transport and the drop.
    pub verdict: Verdict,
    /// `None` when the query was refused before its EDNS options were judged (not counted as
    /// with or without ECS); `Some(ecs)` once they were.
    pub ecs: Option<Option<Ecs>>,
    /// The zone and service that answered (`None`: names outside our zones, errors).
    pub zone: Option<usize>,
    /// The service that answered, an index into the zone's services; `None` for a static name
    /// (counted under the zone's static names) and for a query with no zone.
    pub service: Option<usize>,
    /// The question's type.
    pub qtype: RecordType,
    /// The response code sent.
    pub rcode: ResponseCode,
    /// The ECS scope answered.
    pub scope: u8,
    /// The zone regions a steered answer named.
    pub chosen: &'a [usize],
    /// Sent with TC set (RRL's slip included).
    pub truncated: bool,
}

impl<'a> Tally<'a> {
    /// A query that got `rcode` without reaching a zone.
    pub fn unzoned(udp: bool, verdict: Verdict, qtype: RecordType, rcode: ResponseCode) -> Self {
        Self {
            udp,
            verdict,
            ecs: None,
            zone: None,
            service: None,
            qtype,
            rcode,
            scope: 0,
            chosen: &[],
            truncated: false,
        }
    }

    /// Bumps every counter this query touches. `t0` is when its bytes were handed over.
    pub fn commit(&self, g: &Global, stats: &ZoneStats, t0: Instant) {
        if self.udp {
            g.udp.fetch_add(1, Relaxed);
        } else {
            g.tcp.fetch_add(1, Relaxed);
        }
        match self.verdict {
            Verdict::Drop => {
                g.rrl_dropped.fetch_add(1, Relaxed);
                return;
            }
            Verdict::Slip => {
                g.rrl_slipped.fetch_add(1, Relaxed);
            }
            Verdict::Send => {}
        }
        match self.ecs {
            Some(Some(e)) => {
                g.with_ecs.fetch_add(1, Relaxed);
                if e.source_prefix > 0 {
                    g.observe_scope(crate::geo::canonical(e.addr).is_ipv4(), self.scope);
                }
            }
            Some(None) => {
                g.without_ecs.fetch_add(1, Relaxed);
            }
            None => {}
        }
        let zone = self.zone.and_then(|z| stats.zones.get(z));
        let slot = match (zone, self.service) {
            (Some(z), Some(si)) => match z.services.get(si) {
                Some(s) => {
                    for &r in self.chosen {
                        if let Some(c) = s.answers.get(r) {
                            c.fetch_add(1, Relaxed);
                        }
                    }
                    &s.queries
                }
                None => &z.static_names,
            },
            (Some(z), None) => &z.static_names,
            (None, _) => &g.unzoned,
        };
        slot.count(self.qtype, self.rcode);
        if self.truncated {
            g.truncated.fetch_add(1, Relaxed);
        }
        g.observe_time(t0.elapsed().as_secs_f64());
    }
}
