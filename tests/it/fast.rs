//! The wire fast path against the general path: for every query shape, the two must give the
//! same message (header, sections, EDNS and ECS), and the fast path must take exactly the
//! shapes it is meant to.

use std::net::SocketAddr;

use gslbd::config::{ServerConfig, load_with};
use gslbd::dns::handler::{Outcome, respond_into};
use gslbd::dns::{GslbHandler, Shared};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;

use crate::harness::{repo, sample_mmdb};

/// The example zones over the sample database, with the fast path on or off.
fn handler(fast: bool) -> (GslbHandler, std::sync::Arc<Shared>) {
    let mut cfg =
        ServerConfig::for_zones(repo().join("zones"), vec!["127.0.0.1:0".parse().unwrap()]);
    cfg.geodata = Some(sample_mmdb());
    let loaded = load_with(cfg).expect("the example loads");
    let mut shared = Shared::standalone(loaded.zones, 1232);
    std::sync::Arc::get_mut(&mut shared).unwrap().fast_path = fast;
    (GslbHandler::new(shared.clone()), shared)
}

fn src() -> SocketAddr {
    "198.51.100.7:5353".parse().unwrap()
}

struct Q {
    name: &'static str,
    qtype: RecordType,
    /// None: no OPT record.
    edns: Option<u16>,
    ecs: Option<&'static str>,
    /// Another option besides ECS (an unknown one).
    other_option: bool,
    rd: bool,
    cd: bool,
    dnssec_ok: bool,
}

impl Q {
    fn new(name: &'static str, qtype: RecordType) -> Self {
        Self {
            name,
            qtype,
            edns: Some(1232),
            ecs: None,
            other_option: false,
            rd: false,
            cd: false,
            dnssec_ok: false,
        }
    }
    fn ecs(mut self, net: &'static str) -> Self {
        self.ecs = Some(net);
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let mut m = Message::new(0x5a17, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = self.rd;
        m.metadata.checking_disabled = self.cd;
        m.add_query(Query::query(
            Name::from_ascii(self.name).unwrap(),
            self.qtype,
        ));
        if let Some(size) = self.edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            e.set_dnssec_ok(self.dnssec_ok);
            if let Some(net) = self.ecs {
                e.options_mut()
                    .insert(EdnsOption::Subnet(net.parse::<ClientSubnet>().unwrap()));
            }
            if self.other_option {
                e.options_mut()
                    .insert(EdnsOption::Unknown(65001, vec![1, 2, 3]));
            }
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }
}

fn run(h: &GslbHandler, bytes: &[u8]) -> (Outcome, Vec<u8>) {
    let mut out = Vec::new();
    let o = respond_into(h, bytes, src(), Protocol::Udp, &mut out);
    (o, out)
}

/// Everything a client sees, in a comparable form.
fn seen(bytes: &[u8]) -> String {
    let m = Message::from_vec(bytes).expect("the response parses");
    let mut s = format!(
        "id={} qr={:?} op={:?} aa={} tc={} rd={} ra={} ad={} cd={} rcode={:?}\nquestion={:?}\n",
        m.metadata.id,
        m.metadata.message_type,
        m.metadata.op_code,
        m.metadata.authoritative,
        m.metadata.truncation,
        m.metadata.recursion_desired,
        m.metadata.recursion_available,
        m.metadata.authentic_data,
        m.metadata.checking_disabled,
        m.metadata.response_code,
        m.queries,
    );
    for (label, recs) in [
        ("answer", &m.answers),
        ("authority", &m.authorities),
        ("additional", &m.additionals),
    ] {
        for r in recs {
            s += &format!("{label}: {r}\n");
        }
    }
    if let Some(e) = &m.edns {
        s += &format!(
            "edns: payload={} version={} do={} options={:?}\n",
            e.max_payload(),
            e.version(),
            e.flags().dnssec_ok,
            e.options()
        );
    }
    s
}

#[test]
fn the_fast_path_answers_common_queries_exactly_as_the_general_path() {
    let ((fast, shared), (general, _)) = (handler(true), handler(false));
    let mut cases = vec![
        (Q::new("www.gslb.example.", RecordType::A), true),
        (Q::new("www.gslb.example.", RecordType::AAAA), true),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24"),
            true,
        ),
        (
            Q::new("WwW.GSLB.example.", RecordType::A).ecs("81.2.3.0/24"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::AAAA).ecs("81.2.3.0/24"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("116.88.1.0/24"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("10.20.5.0/24"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("2001:db8::/32"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("::ffff:81.2.3.4/128"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("2002:5102:0300::/40"),
            true,
        ),
        (
            Q::new("www.gslb.example.", RecordType::A).ecs("0.0.0.0/0"),
            true,
        ),
        (Q::new("static.gslb.example.", RecordType::A), true),
        (
            Q::new("Static.Gslb.Example.", RecordType::A).ecs("81.2.3.0/24"),
            true,
        ),
        (Q::new("gslb.example.", RecordType::SOA), true),
        (Q::new("gslb.example.", RecordType::TXT), true),
        (Q::new("gslb.example.", RecordType::CAA), true),
        (Q::new("ns1.gslb.example.", RecordType::AAAA), true),
        // Shapes for the general path: additional data, CNAMEs, NODATA, NXDOMAIN, referral,
        // wildcard, ANY, non-address types at a steered name.
        (Q::new("gslb.example.", RecordType::MX), false),
        (Q::new("gslb.example.", RecordType::NS), false),
        (Q::new("_sip._tcp.gslb.example.", RecordType::SRV), false),
        (Q::new("api.gslb.example.", RecordType::A), false),
        (Q::new("static.gslb.example.", RecordType::AAAA), false),
        (Q::new("nope.gslb.example.", RecordType::A), false),
        (Q::new("host.sub.gslb.example.", RecordType::A), false),
        (Q::new("x.apps.gslb.example.", RecordType::A), false),
        (Q::new("www.gslb.example.", RecordType::ANY), false),
        (Q::new("www.gslb.example.", RecordType::TXT), false),
        (Q::new("www.example.org.", RecordType::A), false),
    ];
    // Header and EDNS variations on the commonest queries.
    for name in ["www.gslb.example.", "static.gslb.example."] {
        let mut q = Q::new(name, RecordType::A);
        q.edns = None;
        cases.push((q, true));
        let mut q = Q::new(name, RecordType::A).ecs("81.2.3.0/24");
        q.rd = true;
        q.cd = true;
        q.dnssec_ok = true;
        cases.push((q, true));
        let mut q = Q::new(name, RecordType::A).ecs("81.2.3.0/24");
        q.edns = Some(100); // below 512: answered with 512
        cases.push((q, true));
        let mut q = Q::new(name, RecordType::A).ecs("81.2.3.0/24");
        q.edns = Some(4096); // above ours: answered with ours
        q.other_option = true;
        cases.push((q, true));
    }
    let mut failures = Vec::new();
    for (q, want_fast) in &cases {
        let bytes = q.bytes();
        let (of, bf) = run(&fast, &bytes);
        let (og, bg) = run(&general, &bytes);
        let label = format!("{} {:?} ecs={:?} edns={:?}", q.name, q.qtype, q.ecs, q.edns);
        assert_eq!(of, og, "{label}: outcome");
        let (sf, sg) = (seen(&bf), seen(&bg));
        if sf != sg {
            failures.push(format!("{label}:\n fast:\n{sf}\n general:\n{sg}"));
        }
        let mut scratch = Vec::new();
        let took_fast =
            gslbd::dns::fast::respond(&shared, &bytes, src(), Protocol::Udp, &mut scratch)
                .is_some();
        if took_fast != *want_fast {
            failures.push(format!(
                "{label}: fast path taken: {took_fast}, expected {want_fast}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn queries_the_fast_path_must_not_judge_get_the_general_answer() {
    let ((fast, shared), (general, _)) = (handler(true), handler(false));
    let base = Q::new("www.gslb.example.", RecordType::A)
        .ecs("81.2.3.0/24")
        .bytes();
    let mut variants: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut v = base.clone();
    v[2] |= 0x78 & (5 << 3); // opcode UPDATE: NOTIMP
    variants.push(("opcode", v));
    let mut v = base.clone();
    let opt = v.len() - 23; // OPT owner: 11 bytes of fixed fields + the 12-byte ECS option
    v[opt + 6] = 1; // EDNS version 1: BADVERS
    variants.push(("edns version", v));
    let mut v = base.clone();
    // The ECS option ends the message: family (2), source (1), scope (1), address (3).
    let scope = v.len() - 4;
    v[scope] = 8; // a non-zero scope in a query: FORMERR
    variants.push(("ecs scope", v));
    let mut v = base.clone();
    v.push(0); // a trailing byte after the OPT record
    variants.push(("trailing", v));
    let mut v = base.clone();
    v[5] = 2; // QDCOUNT 2
    variants.push(("two questions", v));
    for (label, bytes) in variants {
        let (of, bf) = run(&fast, &bytes);
        let (og, bg) = run(&general, &bytes);
        assert_eq!((of, &bf), (og, &bg), "{label}");
        let mut scratch = Vec::new();
        assert!(
            gslbd::dns::fast::respond(&shared, &bytes, src(), Protocol::Udp, &mut scratch)
                .is_none(),
            "{label}: the fast path took it"
        );
    }
}
