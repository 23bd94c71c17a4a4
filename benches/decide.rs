//! One steering decision (geo lookup + decide) for 4, 16 and 64 regions, per policy.
//! Run: `cargo bench --bench decide`.

#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark decides at the current time"
)]
#![allow(missing_docs, reason = "criterion's macros generate the entry points")]

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use gslbd::config::{HealthDefaults, compile_zone_file_text};
use gslbd::health::HealthSnapshot;
use gslbd::steer::{self, Family, Inputs, hash};

fn zone(n: usize, policy: &str) -> String {
    let mut z = String::from(
        "origin = \"bench.example.\"\nns = [\"ns1.example.net.\"]\n[soa]\nserial = 1\n",
    );
    for i in 0..n {
        let lat = -60.0 + (i as f64 * 37.0) % 120.0;
        let lon = -170.0 + (i as f64 * 71.0) % 340.0;
        z.push_str(&format!(
            "[regions.r{i}]\nlocation = [{lat}, {lon}]\nvips = [\"192.0.2.{}\", \"2001:db8::{:x}\"]\nweight = {}\ncost = {}\n",
            i % 250 + 1,
            i + 1,
            50 + i * 7 % 200,
            (i % 5) as f64 * 0.3
        ));
    }
    z.push_str(&format!("[services.www]\n{policy}\n"));
    z
}

fn bench(c: &mut Criterion) {
    let geo = gslbd::geo::GeoDb::open(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/geodata/sample-city.mmdb"
    )))
    .ok();
    let policies = [
        ("proximity", "policy = \"proximity\""),
        (
            "score",
            "policy = \"score\"\nscore = { distance = 0.4, latency = 0.3, load = 0.2, cost = 0.1 }",
        ),
        (
            "sticky+shed",
            "policy = \"sticky\"\nshed_load = { low = 0.6, high = 0.9 }",
        ),
        ("weighted", "policy = \"weighted\""),
    ];
    let clients: Vec<std::net::IpAddr> = [
        "81.2.3.0",
        "110.32.1.0",
        "177.30.0.0",
        "2a02:8100::",
        "196.200.1.0",
        "24.100.5.0",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    for (pname, policy) in policies {
        let mut group = c.benchmark_group(format!("decide/{pname}"));
        for n in [4usize, 16, 64] {
            let mut maps = Vec::new();
            let z = compile_zone_file_text(
                std::path::Path::new("bench.toml"),
                &zone(n, policy),
                geo.as_ref(),
                &HealthDefaults::default(),
                0,
                &mut maps,
            )
            .expect("bench zone compiles");
            let mut h = HealthSnapshot::all_up(n).with(1, false);
            for i in 0..n {
                h = h.with_load(i, Some((i % 10) as f32 / 10.0));
            }
            let svc = &z.services[0];
            let now = Instant::now();
            let mut k = 0usize;
            group.bench_function(format!("{n}_regions"), |b| {
                b.iter(|| {
                    k = (k + 1) % clients.len();
                    let addr = clients[k];
                    let (catchment, _scope) = maps[svc.map].locate(addr);
                    let inp = Inputs {
                        svc,
                        regions: &z.regions,
                        catchment,
                        health: &h,
                        family: Family::V4,
                        client_hash: hash::client_hash(addr, 24, 56),
                        slot: k as u64,
                        now,
                    };
                    black_box(steer::decide(&inp, &mut ()))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
