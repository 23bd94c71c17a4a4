//! Request validation, EDNS/ECS echo, truncation; the glue between hickory and [`super::answer`].

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, Record, RecordType};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use hickory_server::zone_handler::MessageResponseBuilder;
use tracing::debug;

use super::answer::{Client, Response, answer};
use crate::geo::ecs::{self, Ecs};
use crate::health::{HealthSnapshot, Served};
use crate::metrics::Registry;
use crate::zone::ZoneSet;

/// What every query reads: the zones and their health, published together by the health runner.
#[derive(Debug)]
pub struct Shared {
    pub served: Arc<ArcSwap<Served>>,
    /// Our largest UDP response to EDNS clients.
    pub udp_payload: u16,
    pub metrics: Arc<Registry>,
    /// Log one line per query at INFO (target `gslbd::query`).
    pub query_log: bool,
    /// Response rate limiting of UDP answers, when enabled.
    pub rrl: Option<super::rrl::Rrl>,
    /// Answer common queries on the wire fast path ([`super::fast`]). Always on in the server;
    /// off only to compare the two paths (tests, benchmarks).
    pub fast_path: bool,
}

impl Shared {
    pub fn new(
        served: Arc<ArcSwap<Served>>,
        udp_payload: u16,
        metrics: Arc<Registry>,
    ) -> Arc<Self> {
        Arc::new(Self {
            served,
            udp_payload,
            metrics,
            query_log: false,
            rrl: None,
            fast_path: true,
        })
    }

    /// Zones with every region up and no runner (benchmarks, tools).
    pub fn standalone(zones: ZoneSet, udp_payload: u16) -> Arc<Self> {
        let health = Arc::new(HealthSnapshot::all_up(zones.region_count()));
        Self::new(
            Arc::new(ArcSwap::from_pointee(Served {
                zones: Arc::new(zones),
                health,
            })),
            udp_payload,
            Registry::new(),
        )
    }
}

/// The request handler registered with hickory's `Server`.
#[derive(Clone, Debug)]
pub struct GslbHandler {
    shared: Arc<Shared>,
}

impl GslbHandler {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// What went wrong before a lookup could run.
enum Early {
    Rcode(ResponseCode),
}

impl GslbHandler {
    /// Answers a parsed request into `out` (cleared first). Returns false when nothing is to
    /// be sent (dropped by RRL). Synchronous: the answer never waits for anything.
    pub fn handle(&self, request: &Request, out: &mut Vec<u8>) -> bool {
        out.clear();
        let t0 = std::time::Instant::now();
        let g = &self.shared.metrics.global;
        match request.protocol() {
            Protocol::Udp => g.udp.fetch_add(1, Relaxed),
            _ => g.tcp.fetch_add(1, Relaxed),
        };
        // RRL: UDP only (a TCP client has proven its address), before any work.
        let verdict = match (&self.shared.rrl, request.protocol()) {
            (Some(rrl), Protocol::Udp) => rrl.check(request.src().ip(), t0),
            _ => super::rrl::Verdict::Send,
        };
        match verdict {
            super::rrl::Verdict::Drop => g.rrl_dropped.fetch_add(1, Relaxed),
            super::rrl::Verdict::Slip => g.rrl_slipped.fetch_add(1, Relaxed),
            super::rrl::Verdict::Send => 0,
        };
        if verdict == super::rrl::Verdict::Drop {
            return false;
        }
        let (resp, ecs, early) = self.respond(request);
        let req_edns = request.edns.as_ref();

        // RFC 6891 §6.1.1: a request with OPT gets an OPT back. We advertise the smaller of the
        // client's and our payload size: hickory truncates UDP at the response OPT's size, and
        // RFC 6891 §6.2.5 has us honour the requestor's.
        let udp_limit = match req_edns {
            Some(e) => e.max_payload().clamp(512, self.shared.udp_payload),
            None => 512,
        };
        let resp_edns = req_edns.map(|_| {
            let mut e = Edns::new();
            e.set_max_payload(udp_limit).set_version(0);
            if let Some(ecs) = &ecs {
                // RFC 7871 §7.2.1: echo FAMILY, SOURCE PREFIX-LENGTH and ADDRESS, with our SCOPE.
                e.options_mut()
                    .insert(EdnsOption::Subnet(ecs::response_subnet(ecs, resp.scope)));
            }
            e
        });

        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.authoritative = resp.authoritative;
        meta.recursion_available = false;
        meta.response_code = match early {
            Some(Early::Rcode(rc)) => rc,
            None => resp.rcode,
        };

        // Echo the question only when there is exactly one: an error about several (or a
        // malformed one) must not grow with them past the client's limit.
        let no_questions = hickory_server::zone_handler::Queries::read(
            &mut hickory_proto::serialize::binary::BinDecoder::new(&[]),
            0,
        )
        .ok();
        let echo = match &no_questions {
            Some(none)
                if request.queries.len() != 1 || question_has_pointer(request.as_slice()) =>
            {
                none
            }
            _ => &request.queries,
        };
        let mut builder = MessageResponseBuilder::new(echo, None);
        if let Some(e) = &resp_edns {
            builder.edns(e);
        }

        // A slipped answer goes out truncated: a real client retries over TCP.
        let fits = verdict == super::rrl::Verdict::Send
            && (request.protocol() != Protocol::Udp || fits_in(&resp, udp_limit, request));
        let mut enc = hickory_proto::serialize::binary::BinEncoder::new(out);
        enc.set_max_size(u16::MAX);
        let result = if fits {
            builder
                .build(
                    meta,
                    resp.answers.iter(),
                    resp.authorities.iter(),
                    std::iter::empty::<&Record>(),
                    resp.additionals.iter(),
                )
                .destructive_emit(&mut enc)
        } else {
            // RFC 2181 §9: set TC when the answer does not fit; we send the question and OPT
            // alone so that the client retries over TCP instead of using a partial RRset.
            meta.truncation = true;
            g.truncated.fetch_add(1, Relaxed);
            builder.build_no_records(meta).destructive_emit(&mut enc)
        };
        if let Err(error) = result {
            debug!(%error, "cannot encode the response");
            out.clear();
            out.extend_from_slice(&error_header(request.as_slice(), ResponseCode::ServFail));
        }
        let took = t0.elapsed();
        g.observe_time(took.as_secs_f64());
        if self.shared.query_log {
            self.log_query(request, &resp, ecs.as_ref(), took);
        }
        true
    }
}

impl GslbHandler {
    /// The query log line: client, ECS, question, decision, answer, rcode, time.
    fn log_query(
        &self,
        request: &Request,
        resp: &Response,
        ecs: Option<&Ecs>,
        took: std::time::Duration,
    ) {
        let served = self.shared.served.load();
        let regions: Vec<&str> = resp
            .zone
            .and_then(|z| served.zones.zones.get(z))
            .map(|z| {
                resp.chosen
                    .iter()
                    .filter_map(|&i| z.regions.get(i).map(|r| r.name.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let answer: Vec<String> = resp.answers.iter().map(|r| r.data.to_string()).collect();
        let (qname, qtype) = request
            .queries
            .queries()
            .first()
            .map_or((String::new(), String::new()), |q| {
                (q.name().to_string(), q.query_type().to_string())
            });
        tracing::info!(
            target: "gslbd::query",
            client = %request.src(),
            ecs = ecs.map(|e| format!("{}/{}", e.addr, e.source_prefix)).unwrap_or_default(),
            qname,
            qtype,
            rcode = %resp.rcode,
            regions = ?regions,
            answer = ?answer,
            scope = resp.scope,
            us = took.as_micros() as u64,
            "query"
        );
    }

    /// Validates the request and computes the answer. Returns the answer, the validated ECS option
    /// (to echo) and an early rcode that replaces the answer's.
    fn respond(&self, request: &Request) -> (Response, Option<Ecs>, Option<Early>) {
        let g = &self.shared.metrics.global;
        let fail = |rc| {
            g.unzoned.count(RecordType::Unknown(0), rc);
            (Response::default(), None, Some(Early::Rcode(rc)))
        };
        if request.metadata.op_code != OpCode::Query {
            // RFC 1035 §4.1.1: NOTIMP for kinds of query we do not support (UPDATE, NOTIFY…).
            return fail(ResponseCode::NotImp);
        }
        if let Some(edns) = &request.edns {
            // RFC 6891 §6.1.3: "If a responder does not implement the VERSION level of the
            // request, then it MUST respond with RCODE=BADVERS."
            if edns.version() > 0 {
                return fail(ResponseCode::BADVERS);
            }
        }
        let queries = request.queries.queries();
        if queries.len() != 1 {
            // One question per message (RFC 9619); zero or several is a format error.
            return fail(ResponseCode::FormErr);
        }
        if question_has_pointer(request.as_slice()) {
            // The only name before a lone question is none: a compression pointer there points
            // into the header, which is not a name (RFC 1035 §4.1.4 points at prior names).
            return fail(ResponseCode::FormErr);
        }
        let mut ecs = None;
        if request.edns.is_some() {
            match ecs::scan_opt(request.as_slice()) {
                Ok(None) => {}
                Ok(Some(data)) => match ecs::parse_ecs(data) {
                    Ok(e) => ecs = Some(e),
                    // RFC 7871 §7.1.1: malformed ECS → FORMERR.
                    Err(_) => return fail(ResponseCode::FormErr),
                },
                // RFC 6891 §6.1.2 / RFC 7871 §7.1.1: broken option framing, several ECS options.
                Err(_) => return fail(ResponseCode::FormErr),
            }
        }
        if ecs.is_some() {
            g.with_ecs.fetch_add(1, Relaxed);
        } else {
            g.without_ecs.fetch_add(1, Relaxed);
        }
        let q = &queries[0];
        let qtype = q.query_type();
        if q.query_class() != DNSClass::IN {
            g.unzoned.count(qtype, ResponseCode::Refused);
            // We hold IN data only. REFUSED (not NOTIMP): the opcode is implemented, we just
            // are not authoritative for CHAOS/HESIOD or class ANY, like most authoritative servers.
            return (Response::refused(), ecs, None);
        }
        match qtype {
            // Zone transfers are not offered: the zone files are the source of truth.
            RecordType::AXFR | RecordType::IXFR => {
                g.unzoned.count(qtype, ResponseCode::Refused);
                return (Response::refused(), ecs, None);
            }
            // RFC 6891 §6.1.1: OPT is a pseudo-RR, never a question; TSIG (RFC 8945) and TKEY
            // (RFC 2930) are transaction meta-types with no data to ask for (BIND answers
            // FORMERR too).
            RecordType::OPT | RecordType::TSIG | RecordType::Unknown(249) => {
                g.unzoned.count(qtype, ResponseCode::FormErr);
                return (
                    Response::default(),
                    ecs,
                    Some(Early::Rcode(ResponseCode::FormErr)),
                );
            }
            _ => {}
        }
        let client = Client {
            src: request.src().ip(),
            ecs,
        };
        // One atomic load: zones and health that belong together.
        let served = self.shared.served.load();
        let resp = answer(
            &served.zones,
            &served.health,
            q.original().name(),
            qtype,
            &client,
            std::time::Instant::now(),
        );
        // Count where the answer came from: the zone's static names or one of its services.
        let slot = resp
            .zone
            .and_then(|zi| served.zones.stats.zones.get(zi))
            .map(|z| match resp.service {
                Some(si) => z.services.get(si).map_or(&z.static_names, |s| &s.queries),
                None => &z.static_names,
            });
        slot.unwrap_or(&g.unzoned).count(qtype, resp.rcode);
        if let Some(e) = &ecs
            && e.source_prefix > 0
        {
            g.observe_scope(crate::geo::canonical(e.addr).is_ipv4(), resp.scope);
        }
        (resp, ecs, None)
    }
}

/// Whether the response fits `limit` bytes. Cheap upper bound first (no name compression); only
/// when that exceeds the limit is the message really encoded.
fn fits_in(resp: &Response, limit: u16, request: &Request) -> bool {
    let limit = usize::from(limit);
    let rec = |r: &Record| r.name.len() + 10 + rdata_upper(r);
    let q = request.queries.as_bytes().len();
    let upper = 12
        + q
        + resp.answers.iter().map(rec).sum::<usize>()
        + resp.authorities.iter().map(rec).sum::<usize>()
        + resp.additionals.iter().map(rec).sum::<usize>()
        + 11
        + 12;
    if upper <= limit {
        return true;
    }
    let mut buf = Vec::with_capacity(upper);
    let mut enc = hickory_proto::serialize::binary::BinEncoder::new(&mut buf);
    enc.set_max_size(u16::MAX);
    let meta = Metadata::response_from_request(&request.metadata);
    let edns = request.edns.as_ref().map(|_| {
        let mut e = Edns::new();
        e.set_max_payload(512);
        e
    });
    let header = hickory_proto::op::emit_message_parts(
        &meta,
        &mut request
            .queries
            .queries()
            .iter()
            .map(|q| q.original().clone())
            .collect::<Vec<_>>()
            .iter(),
        &mut resp.answers.iter(),
        &mut resp.authorities.iter(),
        &mut resp.additionals.iter(),
        edns.as_ref(),
        None,
        &mut enc,
    );
    // ECS option: at most 4 + 16 + 4 bytes more.
    header.is_ok() && buf.len() + 24 <= limit
}

/// An upper bound of a record's RDATA length.
fn rdata_upper(r: &Record) -> usize {
    use hickory_proto::rr::RData;
    match &r.data {
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        RData::CNAME(n) => n.0.len(),
        RData::NS(n) => n.0.len(),
        RData::PTR(n) => n.0.len(),
        RData::MX(mx) => 2 + mx.exchange.len(),
        RData::SRV(s) => 6 + s.target.len(),
        RData::SOA(s) => s.mname.len() + s.rname.len() + 20,
        RData::TXT(t) => t.txt_data.iter().map(|s| s.len() + 1).sum(),
        // Anything else: assume the worst; the exact check runs.
        _ => usize::from(u16::MAX),
    }
}

/// What became of one message handed to [`respond_into`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `out` holds the response to send.
    Reply,
    /// The message does not parse. `out` holds a FORMERR header (RFC 1035 §4.1.1) when the
    /// header reads and the message is a query, else nothing. A stream transport closes after
    /// sending it, since it may be out of step.
    Malformed,
    /// Send nothing, and the stream is in step: a response (never answered: no reflection),
    /// or a query dropped by RRL.
    Silent,
}

/// Request bytes → response bytes in `out`, the whole way through the handler, as the UDP and
/// TCP loops use it with buffers they keep.
pub fn respond_into(
    handler: &GslbHandler,
    bytes: &[u8],
    src: std::net::SocketAddr,
    protocol: Protocol,
    out: &mut Vec<u8>,
) -> Outcome {
    out.clear();
    if bytes.len() < 12 {
        return Outcome::Malformed; // not even a header: nothing to answer, a stream is lost
    }
    if bytes[2] & 0x80 != 0 {
        // A response is never answered (no reflection); one that does not parse still puts a
        // stream out of step.
        return match Request::from_bytes(bytes.to_vec(), src, protocol) {
            Ok(_) => Outcome::Silent,
            Err(_) => Outcome::Malformed,
        };
    }
    if let Some(outcome) = super::fast::respond(&handler.shared, bytes, src, protocol, out) {
        return outcome;
    }
    let request = match Request::from_bytes(bytes.to_vec(), src, protocol) {
        Ok(r) => r,
        Err(_) => {
            out.extend_from_slice(&error_header(bytes, ResponseCode::FormErr));
            return Outcome::Malformed;
        }
    };
    if handler.handle(&request, out) {
        Outcome::Reply
    } else {
        Outcome::Silent
    }
}

/// A FORMERR header for a message whose 12-byte header is readable and that is not a response
/// (RFC 1035 §4.1.1): the query's ID, opcode and RD, no records. `None` when there is nothing to
/// answer.
pub fn formerr(msg: &[u8]) -> Option<[u8; 12]> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 {
        return None;
    }
    Some(error_header(msg, ResponseCode::FormErr))
}

/// A header-only response with `rcode` to the query whose header starts `msg` (at least 12
/// bytes): its ID, opcode and RD.
fn error_header(msg: &[u8], rcode: ResponseCode) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = msg[0];
    h[1] = msg[1];
    h[2] = 0x80 | (msg[2] & 0x79); // QR, the opcode and RD of the query
    h[3] = u16::from(rcode) as u8 & 0x0f;
    h
}

/// Whether the first question's name, as sent, contains a compression pointer.
fn question_has_pointer(msg: &[u8]) -> bool {
    let mut pos = 12;
    while let Some(&len) = msg.get(pos) {
        match len {
            0 => return false,
            l if l & 0xc0 == 0xc0 => return true,
            l => pos += 1 + usize::from(l),
        }
    }
    false
}
