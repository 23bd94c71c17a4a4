//! Request bytes → response bytes in-process, through `respond_into` with a reused output
//! buffer, exactly as the UDP and TCP loops call it: a static name, a steered name without ECS,
//! and a steered name with ECS.
//! Run: `cargo bench --bench respond`.

#![allow(clippy::disallowed_methods, reason = "a benchmark reads the clock")]
#![allow(missing_docs, reason = "criterion's macros generate the entry points")]

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use gslbd::config::{ServerConfig, load_with};
use gslbd::dns::handler::respond_into;
use gslbd::dns::{GslbHandler, Shared};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;

fn query(name: &str, ecs: Option<&str>) -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    if let Some(net) = ecs {
        e.options_mut()
            .insert(EdnsOption::Subnet(net.parse::<ClientSubnet>().unwrap()));
    }
    m.set_edns(e);
    m.to_vec().unwrap()
}

fn bench(c: &mut Criterion) {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut cfg = ServerConfig::for_zones(root.join("zones"), vec!["127.0.0.1:0".parse().unwrap()]);
    cfg.geodata = Some(root.join("geodata/sample-city.mmdb"));
    let loaded = load_with(cfg.clone()).expect("example loads");
    let fast = GslbHandler::new(Shared::standalone(loaded, 1232));
    // The same zones with the wire fast path off: what every query cost before it, and what
    // the shapes it does not take (NXDOMAIN, CNAME chains, …) cost now.
    let loaded = load_with(cfg).expect("example loads");
    let mut shared = Shared::standalone(loaded, 1232);
    if let Some(s) = std::sync::Arc::get_mut(&mut shared) {
        s.fast_path = false;
    }
    let general = GslbHandler::new(shared);
    let src: SocketAddr = "198.51.100.7:5353".parse().unwrap();
    let mut group = c.benchmark_group("respond");
    for (label, bytes) in [
        ("static", query("static.gslb.example.", None)),
        ("steered_no_ecs", query("www.gslb.example.", None)),
        (
            "steered_ecs",
            query("www.gslb.example.", Some("81.2.3.0/24")),
        ),
    ] {
        let mut out = Vec::with_capacity(1232);
        for (path, handler) in [("fast", &fast), ("general", &general)] {
            group.bench_function(format!("{label}/{path}"), |b| {
                b.iter(|| black_box(respond_into(handler, &bytes, src, Protocol::Udp, &mut out)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
