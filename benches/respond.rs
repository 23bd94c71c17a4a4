//! Request bytes → response bytes in-process, through the real hickory `RequestHandler`: a
//! static name, a steered name without ECS, and a steered name with ECS.
//! Run: `cargo bench --bench respond`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use criterion::{Criterion, criterion_group, criterion_main};
use gslbd::config::{ServerConfig, load_with};
use gslbd::dns::{GslbHandler, Shared};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;

/// Encodes the response into a buffer instead of a socket.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut buf = self.0.lock().map_err(|_| NetError::from("poisoned"))?;
        buf.clear();
        let mut enc = BinEncoder::new(&mut buf);
        enc.set_max_size(1232);
        Ok(response.destructive_emit(&mut enc)?)
    }
}

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
    let loaded = load_with(cfg).expect("example loads");
    let handler = GslbHandler::new(Shared::standalone(loaded.zones, 1232));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let src: SocketAddr = "198.51.100.7:5353".parse().unwrap();
    let capture = Capture::default();
    let mut group = c.benchmark_group("respond");
    for (label, bytes) in [
        ("static", query("static.gslb.example.", None)),
        ("steered_no_ecs", query("www.gslb.example.", None)),
        (
            "steered_ecs",
            query("www.gslb.example.", Some("81.2.3.0/24")),
        ),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| {
                let req = Request::from_bytes(bytes.clone(), src, Protocol::Udp).unwrap();
                rt.block_on(handler.handle_request::<_, TokioTime>(&req, capture.clone()));
                black_box(capture.0.lock().unwrap().len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
