//! Request validation, EDNS/ECS echo, truncation; the glue between hickory and [`super::answer`].

use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tracing::debug;

use super::account::{self, Tally};
use super::answer::{Client, Response, answer};
use super::rrl::Verdict;
use super::wire::{self, Ede};
use crate::geo::ecs::{self, Ecs};
use crate::health::HealthSnapshot;
use crate::metrics::Registry;
use crate::served::Served;
use crate::zone::ZoneSet;

/// What every query reads: the zones and their health, published together by the health runner.
#[derive(Debug)]
pub struct Shared {
    /// The served catalog and its health, swapped whole by the health runner; a query loads it
    /// once.
    pub served: Arc<ArcSwap<Served>>,
    /// Our largest UDP response to EDNS clients.
    pub udp_payload: u16,
    /// The counters queries bump.
    pub metrics: Arc<Registry>,
    /// Log one line per query at INFO (target `gslbd::query`).
    pub query_log: bool,
    /// Response rate limiting of UDP answers, when enabled.
    pub rrl: Option<super::rrl::Rrl>,
    /// Answer common queries on the wire fast path ([`super::fast`]). Always on in the server;
    /// off only to compare the two paths (tests, benchmarks).
    pub fast_path: bool,
    /// Our name server identifier for NSID (RFC 5001), when configured.
    pub nsid: Option<Box<[u8]>>,
    /// DNS Cookies (RFC 7873), when enabled.
    pub cookies: Option<super::cookie::Cookies>,
}

impl Shared {
    /// Shared state with the fast path on and query log, RRL, NSID and cookies off;
    /// [`crate::server`] sets those from the config before the workers start.
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
            nsid: None,
            cookies: None,
        })
    }

    /// A load's zones with every region up and no runner (benchmarks, tools, tests).
    pub fn standalone(loaded: crate::config::Loaded, udp_payload: u16) -> Arc<Self> {
        let metrics = Registry::new();
        let zones = super::catalog(loaded.zones, loaded.maps, loaded.geo, &metrics);
        let health = Arc::new(HealthSnapshot::all_up(zones.region_count()));
        Self::new(
            Arc::new(ArcSwap::from_pointee(Served {
                zones: Arc::new(zones),
                health,
            })),
            udp_payload,
            metrics,
        )
    }
}

/// The request handler: validation, lookup and encoding of the general path.
#[derive(Clone, Debug)]
pub struct GslbHandler {
    shared: Arc<Shared>,
}

impl GslbHandler {
    /// A handler answering from `shared`; each worker holds a clone.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// What the header, the OPT record and the transport decided before any lookup: an rcode that
/// replaces the answer's, and what the response's OPT carries.
#[derive(Debug, Default)]
struct Plan {
    /// An rcode decided before the lookup (FORMERR, NOTIMP, BADVERS…), replacing the answer's.
    early: Option<ResponseCode>,
    /// The validated ECS option, to echo with the answer's scope.
    ecs: Option<Ecs>,
    /// The query's OPT as sent, when it had one.
    opt: Option<OptSeen>,
    /// The COOKIE option to answer with: the client's cookie and a fresh server cookie.
    cookie: Option<[u8; 24]>,
    /// The query carried a valid server cookie of ours (RRL lets it through).
    cookie_valid: bool,
    /// Answer with TSIG error BADKEY (RFC 8945 §5.2): the query was signed with a key we do not
    /// know (we know none).
    tsig_badkey: Option<Vec<u8>>,
    /// The query got as far as its ECS option being judged (counted as with or without ECS).
    ecs_judged: bool,
}

/// The parts of the query's OPT that the response depends on.
#[derive(Debug, Clone, Copy)]
struct OptSeen {
    payload: u16,
    dnssec_ok: bool,
    nsid: bool,
}

impl GslbHandler {
    /// Answers a parsed request into `out` (cleared first). Returns false when nothing is to
    /// be sent (dropped by RRL). Synchronous: the answer never waits for anything.
    pub fn handle(&self, request: &Request, out: &mut Vec<u8>) -> bool {
        out.clear();
        let t0 = std::time::Instant::now();
        let g = &self.shared.metrics.global;
        let udp = request.protocol() == Protocol::Udp;
        // One atomic load: zones, their counters and health that belong together.
        let served = self.shared.served.load();
        let stats = &served.zones.stats;
        let layout = wire::layout(request.as_slice());
        if let Some(t) = layout.as_ref().and_then(|l| l.tsig.as_ref())
            && !(t.last && t.in_additional)
        {
            // RFC 8945 §5.1: the TSIG record must be the last additional record; anything else
            // is a format error (answered with the header alone, as NSD does).
            let rc = ResponseCode::FormErr;
            Tally::unzoned(udp, Verdict::Send, RecordType::Unknown(0), rc).commit(g, stats, t0);
            out.extend_from_slice(&error_header(request.as_slice(), rc));
            return true;
        }
        let mut plan = self.plan(request, layout.as_ref());
        let verdict = account::rrl(&self.shared, request.src().ip(), udp, plan.cookie_valid, t0);
        if verdict == Verdict::Drop {
            let rc = plan.early.unwrap_or(ResponseCode::NoError);
            Tally::unzoned(udp, verdict, RecordType::Unknown(0), rc).commit(g, stats, t0);
            return false;
        }
        // A limited client that sent a cookie is told BADCOOKIE with a fresh server cookie
        // instead of a truncated answer: it can retry at once with the cookie, which RRL lets
        // through (RFC 7873 §5.2.3, §5.4).
        let badcookie = verdict == Verdict::Slip && plan.cookie.is_some();
        if badcookie {
            plan.early = Some(ResponseCode::BADCOOKIE);
        }
        let resp = match plan.early {
            Some(rc) => Response {
                rcode: rc,
                ..Response::default()
            },
            None => self.lookup(request, &plan, &served),
        };
        let truncated = self.encode(request, &plan, &resp, verdict, badcookie, out);
        let qtype = match (plan.early, request.queries.queries().first()) {
            (None, Some(q)) => q.query_type(),
            _ => RecordType::Unknown(0),
        };
        Tally {
            udp,
            verdict,
            ecs: plan.ecs_judged.then_some(plan.ecs),
            zone: resp.zone,
            service: resp.service,
            qtype,
            rcode: resp.rcode,
            scope: resp.scope,
            chosen: &resp.chosen,
            truncated,
        }
        .commit(g, stats, t0);
        if self.shared.query_log {
            self.log_query(request, &resp, plan.ecs.as_ref(), t0.elapsed());
        }
        true
    }

    /// Reads the header, OPT and TSIG of the request and decides what they require.
    fn plan(&self, request: &Request, layout: Option<&wire::Layout>) -> Plan {
        let mut plan = Plan::default();
        let msg = request.as_slice();
        let opt = match layout.and_then(|l| l.opt.as_ref()) {
            Some(at) => match wire::read_opt(msg, at) {
                Ok(o) => Some(o),
                Err(_) => {
                    // RFC 6891 §6.1.2 / RFC 7871 §7.1.1: broken option framing, several ECS.
                    plan.opt = Some(OptSeen {
                        payload: at.class,
                        dnssec_ok: at.ttl[2] & 0x80 != 0,
                        nsid: false,
                    });
                    plan.early = Some(ResponseCode::FormErr);
                    return plan;
                }
            },
            None => None,
        };
        if let Some(o) = &opt {
            plan.opt = Some(OptSeen {
                payload: o.payload,
                dnssec_ok: o.dnssec_ok,
                nsid: o.nsid,
            });
        }
        if layout.is_some_and(|l| l.tsig.is_some()) {
            plan.tsig_badkey = tsig_badkey(request);
        }
        // The cookie is answered whatever the rcode (RFC 7873 §5.2), so read it first.
        if let (Some(cookies), Some(data)) = (&self.shared.cookies, opt.and_then(|o| o.cookie)) {
            match cookies.check(data, request.src().ip(), crate::rt::unix_seconds() as u32) {
                Ok(c) => {
                    plan.cookie_valid = c.server_valid;
                    plan.cookie = Some(cookies.answer(
                        &c.client,
                        request.src().ip(),
                        crate::rt::unix_seconds() as u32,
                    ));
                }
                Err(_) => {
                    // RFC 7873 §5.2.2: a malformed COOKIE option is a format error.
                    plan.early = Some(ResponseCode::FormErr);
                    return plan;
                }
            }
        }
        if plan.tsig_badkey.is_some() {
            plan.early = Some(ResponseCode::NotAuth);
            return plan;
        }
        if let Some(o) = &opt
            && o.version > 0
        {
            // RFC 6891 §6.1.3: "If a responder does not implement the VERSION level of the
            // request, then it MUST respond with RCODE=BADVERS."
            plan.early = Some(ResponseCode::BADVERS);
            return plan;
        }
        if request.queries.queries().len() != 1 || question_has_pointer(msg) {
            // One question per message (RFC 9619); zero or several is a format error. The only
            // name before a lone question is none: a compression pointer there points into
            // the header, which is not a name (RFC 1035 §4.1.4 points at prior names).
            plan.early = Some(ResponseCode::FormErr);
            return plan;
        }
        if let Some(data) = opt.and_then(|o| o.ecs) {
            match ecs::parse_ecs(data) {
                Ok(e) => plan.ecs = Some(e),
                // RFC 7871 §7.1.1: malformed ECS → FORMERR.
                Err(_) => {
                    plan.early = Some(ResponseCode::FormErr);
                    return plan;
                }
            }
        }
        plan.ecs_judged = true;
        match request.metadata.op_code {
            OpCode::Query => {}
            // RFC 1996: we are no secondary (NOTIFY); RFC 2136: we take no dynamic updates, the
            // zone files are the source of truth. Knot answers both NOTAUTH.
            OpCode::Notify | OpCode::Update => plan.early = Some(ResponseCode::NotAuth),
            // RFC 1035 §4.1.1: NOTIMP for kinds of query we do not support (IQUERY, STATUS…).
            _ => plan.early = Some(ResponseCode::NotImp),
        }
        plan
    }

    /// The answer to a valid one-question QUERY.
    fn lookup(&self, request: &Request, plan: &Plan, served: &Served) -> Response {
        let Some(q) = request.queries.queries().first() else {
            return Response::default();
        };
        let qtype = q.query_type();
        // We hold IN data; QCLASS ANY (255) is answered from it, as NSD and Knot do. Other
        // classes (CHAOS, HESIOD, NONE) are refused: we are not authoritative for them. The
        // CHAOS names that ask a server who it is are refused as prohibited: like NSD with
        // `hide-version` and `hide-identity`, gslbd does not tell (NSID does, when configured).
        if !matches!(q.query_class(), DNSClass::IN | DNSClass::ANY) {
            let identity = q.query_class() == DNSClass::CH
                && [
                    "version.bind.",
                    "version.server.",
                    "id.server.",
                    "hostname.bind.",
                ]
                .iter()
                .any(|n| q.name().to_string().eq_ignore_ascii_case(n));
            return Response {
                ede: Some(if identity {
                    Ede::Prohibited
                } else {
                    Ede::NotSupported
                }),
                ..Response::refused()
            };
        }
        let qname = q.original().name();
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return transfer(&served.zones, qname, qtype, request.protocol());
        }
        let client = Client {
            src: request.src().ip(),
            ecs: plan.ecs,
        };
        let mut resp = answer(
            &served.zones,
            &served.health,
            qname,
            qtype,
            &client,
            std::time::Instant::now(),
        );
        super::case::spell_as_asked(&mut resp, qname);
        if plan.opt.is_some_and(|o| o.dnssec_ok) {
            super::sign::add_dnssec(&served.zones, &mut resp, qname, qtype);
        }
        resp
    }

    /// Encodes `resp` for `request` into `out`: header, question, sections, OPT (payload, DO,
    /// ECS, NSID, COOKIE, EDE) and TSIG, truncated for UDP when it does not fit.
    fn encode(
        &self,
        request: &Request,
        plan: &Plan,
        resp: &Response,
        verdict: Verdict,
        badcookie: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        // RFC 6891 §6.1.1: a request with OPT gets an OPT back. We advertise the smaller of the
        // client's and our payload size (RFC 6891 §6.2.5 has us honour the requestor's).
        let udp_limit = match &plan.opt {
            Some(o) => o.payload.clamp(512, self.shared.udp_payload),
            None => 512,
        };
        // FORMERR about several questions carries no OPT either (NSD's answer): nothing about
        // such a message is worth echoing.
        let several = request.queries.len() > 1;
        let resp_edns = plan.opt.filter(|_| !several).map(|o| {
            let mut e = Edns::new();
            e.set_max_payload(udp_limit).set_version(0);
            // RFC 3225 §3: the DO bit of the query MUST be copied into the response.
            e.set_dnssec_ok(o.dnssec_ok);
            let opts = e.options_mut();
            if let Some(ecs) = &plan.ecs {
                // RFC 7871 §7.2.1: echo FAMILY, SOURCE PREFIX-LENGTH and ADDRESS, with our SCOPE.
                opts.insert(EdnsOption::Subnet(ecs::response_subnet(ecs, resp.scope)));
            }
            if let (true, Some(id)) = (o.nsid, &self.shared.nsid) {
                // RFC 5001 §2.2: answer an (empty) NSID option with our identifier.
                opts.insert(EdnsOption::Unknown(3, id.to_vec()));
            }
            if let Some(c) = &plan.cookie {
                opts.insert(EdnsOption::Unknown(10, c.to_vec()));
            }
            if let Some(ede) = resp.ede {
                // RFC 8914: INFO-CODE, no EXTRA-TEXT.
                opts.insert(EdnsOption::Unknown(15, (ede as u16).to_be_bytes().to_vec()));
            }
            e
        });

        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.authoritative = resp.authoritative && plan.early.is_none();
        meta.recursion_available = false;
        meta.response_code = plan.early.unwrap_or(resp.rcode);

        // Echo the question only when there is exactly one: an error about several (or a
        // malformed one) must not grow with them past the client's limit. A class we know
        // nothing of (neither IN, ANY nor CHAOS) is not echoed either, as NSD answers it.
        let odd_class = request.queries.queries().first().is_some_and(|q| {
            !matches!(q.query_class(), DNSClass::IN | DNSClass::ANY | DNSClass::CH)
        });
        let echo: &[hickory_proto::op::LowerQuery] = if request.queries.len() != 1
            || question_has_pointer(request.as_slice())
            || odd_class
        {
            &[]
        } else {
            request.queries.queries()
        };
        // The question is encoded (not copied) so that the names after it are compressed
        // against it, as NSD and Knot compress them.
        let emit = |out: &mut Vec<u8>, additionals: &[Record], truncated: bool, records: bool| {
            out.clear();
            let mut meta = meta;
            meta.truncation = truncated;
            let mut enc = hickory_proto::serialize::binary::BinEncoder::new(out);
            enc.set_max_size(u16::MAX);
            let none: &[Record] = &[];
            let (answers, authorities, additionals) = if records {
                (&resp.answers[..], &resp.authorities[..], additionals)
            } else {
                (none, none, none)
            };
            hickory_proto::op::emit_message_parts(
                &meta,
                &mut echo.iter().map(|q| q.original()),
                &mut answers.iter(),
                &mut authorities.iter(),
                &mut additionals.iter(),
                resp_edns.as_ref(),
                None,
                &mut enc,
            )
            .map(|_| ())
        };

        // A slipped answer goes out truncated: a real client retries over TCP.
        let udp = request.protocol() == Protocol::Udp;
        let slipped = !(verdict == Verdict::Send || badcookie);
        let limit = if udp {
            usize::from(udp_limit)
        } else {
            usize::from(u16::MAX)
        };
        let mut truncated = slipped;
        let mut result = if slipped {
            emit(out, &[], true, false)
        } else {
            emit(out, &resp.additionals, false, true)
        };
        if result.is_ok() && !slipped && out.len() > limit {
            // Too big: drop additional RRsets from the end while the rest does not fit. Dropped
            // glue of a referral sets TC (RFC 9471: glue is not optional), other additional data
            // goes quietly (RFC 2181 §9), as Knot does. When the answer and authority sections
            // alone do not fit, set TC and send the question and OPT alone, so that the client
            // retries over TCP instead of using a partial RRset.
            let referral = resp
                .authorities
                .iter()
                .any(|r| r.record_type() == RecordType::NS);
            let mut fitted = false;
            for keep in rrset_starts(&resp.additionals).into_iter().rev() {
                let cut = referral && keep < resp.additionals.len();
                result = emit(out, &resp.additionals[..keep], cut, true);
                if result.is_err() || out.len() <= limit {
                    truncated = cut;
                    fitted = true;
                    break;
                }
            }
            if !fitted {
                truncated = true;
                result = emit(out, &[], true, false);
            }
        }
        if let Err(error) = result {
            debug!(%error, "cannot encode the response");
            out.clear();
            out.extend_from_slice(&error_header(request.as_slice(), ResponseCode::ServFail));
            return false;
        }
        if let Some(tsig) = &plan.tsig_badkey {
            append_additional(out, tsig);
        }
        truncated
    }
}

/// The answer to AXFR or IXFR: we offer no transfers (the zone files are the source of truth).
/// Like NSD: over UDP, AXFR is not implemented; at one of our apexes a transfer is refused with
/// EDE 18 (Prohibited); elsewhere we are not authoritative for a zone there (NOTAUTH).
fn transfer(
    zones: &ZoneSet,
    qname: &hickory_proto::rr::Name,
    qtype: RecordType,
    protocol: Protocol,
) -> Response {
    let apex = zones
        .zone_by_origin(&hickory_proto::rr::LowerName::new(qname))
        .is_some();
    let (rcode, ede) = match (qtype, protocol) {
        (RecordType::AXFR, Protocol::Udp) => (ResponseCode::NotImp, None),
        _ if apex => (ResponseCode::Refused, Some(Ede::Prohibited)),
        _ => (ResponseCode::NotAuth, None),
    };
    Response {
        rcode,
        ede,
        ..Response::default()
    }
}

/// The TSIG record of a BADKEY answer to a signed query (RFC 8945 §5.2.1): the query's key name
/// and algorithm, its time signed and fudge, an empty MAC, the query's ID, error 17 (BADKEY).
/// Encoded uncompressed, to be appended as the last additional record.
fn tsig_badkey(request: &Request) -> Option<Vec<u8>> {
    use hickory_proto::rr::rdata::TSIG;
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
    let rec = request
        .additionals
        .iter()
        .rev()
        .find(|r| r.record_type() == RecordType::TSIG)?;
    let RData::TSIG(t) = &rec.data else {
        return None;
    };
    let answer = TSIG::new(
        t.algorithm.clone(),
        t.time,
        t.fudge,
        Vec::new(),
        request.metadata.id,
        Some(hickory_proto::rr::rdata::tsig::TsigError::BadKey),
        Vec::new(),
    );
    let mut r = Record::from_rdata(rec.name.clone(), 0, RData::TSIG(answer));
    r.dns_class = DNSClass::ANY;
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    r.emit(&mut enc).ok()?;
    Some(buf)
}

/// Appends an encoded record to the additional section of the message in `out`.
fn append_additional(out: &mut Vec<u8>, record: &[u8]) {
    if out.len() < 12 || out.len() + record.len() > usize::from(u16::MAX) {
        return;
    }
    let ar = u16::from_be_bytes([out[10], out[11]]).saturating_add(1);
    out[10..12].copy_from_slice(&ar.to_be_bytes());
    out.extend_from_slice(record);
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
}

/// The indices where each RRset of `records` starts (consecutive records of one owner and type
/// form an RRset), with 0 first.
fn rrset_starts(records: &[Record]) -> Vec<usize> {
    let mut starts = vec![0];
    for (i, w) in records.windows(2).enumerate() {
        if w[0].name != w[1].name || w[0].record_type() != w[1].record_type() {
            starts.push(i + 1);
        }
    }
    starts
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
