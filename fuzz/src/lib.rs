//! The fuzz harness: one function per target, each feeding one input to gslbd's real entry points
//! and panicking when an invariant breaks. The libFuzzer targets in `fuzz_targets/` call these;
//! `tests/it/fuzz_corpus.rs` compiles this same file (with `#[path]`) to replay the corpus and the
//! crashers in plain `cargo test`, so both check exactly the same things.
//!
//! - [`request`]: request bytes → `respond_into` over UDP and TCP → a response that parses,
//!   has QR set and the query's ID, and over UDP fits the client's payload size (512 without
//!   EDNS) and ours (1232).
//! - [`zonefile`]: zone file text → `compile_zone_file_text`.
//! - [`serverconfig`]: server config text → `parse_server_config`.
//! - [`geocsv`]: CSV bytes → `build_mmdb`; a database it builds must open with `maxminddb` and
//!   with `GeoDb` (the server's own loader), and both must agree on where addresses are.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use gslbd::config::{HealthDefaults, ServerConfig};
use gslbd::dns::{GslbHandler, Shared};
use hickory_proto::op::{Message, MessageType};
use hickory_server::net::xfer::Protocol;

/// Our largest UDP response, as in the shipped `gslbd.toml`.
pub const UDP_PAYLOAD: u16 = 1232;

/// The repository: the fuzz crate lives in its `fuzz/`, the test crate is the repository.
pub fn repo_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if manifest.join("zones").is_dir() {
        manifest.to_path_buf()
    } else {
        manifest.parent().expect("fuzz/ has a parent").to_path_buf()
    }
}

/// Lower-case hex, for failure messages (paste into `xxd -r -p`).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

// ---- request ---------------------------------------------------------------------------------

struct RequestHarness {
    handler: GslbHandler,
}

/// One handler over the shipped example (zones/ and the sample geodata), all regions up, built
/// on first use.
fn request_harness() -> &'static RequestHarness {
    static HARNESS: OnceLock<RequestHarness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let root = repo_dir();
        let mut cfg = ServerConfig::for_zones(
            root.join("zones"),
            vec!["127.0.0.1:0".parse().expect("socket address")],
        );
        cfg.geodata = Some(root.join("geodata/sample-city.mmdb"));
        let loaded = gslbd::config::load_with(cfg).expect("the shipped example loads");
        let handler = GslbHandler::new(Shared::standalone(loaded, UDP_PAYLOAD));
        RequestHarness { handler }
    })
}

/// Where queries come from: over UDP a London address that the sample database places, over
/// TCP an address of the zone's `[geo.networks]` (so both lookups paths run).
fn sources() -> [(Protocol, SocketAddr); 2] {
    [
        (
            Protocol::Udp,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(81, 2, 3, 4)), 5353),
        ),
        (
            Protocol::Tcp,
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7)),
                40000,
            ),
        ),
    ]
}

/// Target `request`: the bytes as a query over UDP and over TCP, answered as the UDP and TCP
/// loops answer: the handler's response, or a bare FORMERR when only the header parses.
pub fn request(data: &[u8]) {
    let h = request_harness();
    for (protocol, src) in sources() {
        let mut resp = Vec::new();
        // What the loops send: the reply, or the FORMERR of a malformed query; nothing for a
        // response, an RRL drop or less than a header.
        let outcome = gslbd::dns::handler::respond_into(&h.handler, data, src, protocol, &mut resp);
        let out = match outcome {
            gslbd::dns::handler::Outcome::Silent => None,
            _ if resp.is_empty() => None,
            _ => Some(resp),
        };
        if let Some(resp) = out {
            check_response(data, &resp, protocol);
        }
    }
}

/// The invariants of a response to `query`, which the UDP and TCP loops send as they are.
pub fn check_response(query: &[u8], resp: &[u8], protocol: Protocol) {
    let fail = |what: String| -> ! {
        panic!(
            "{what}\n  protocol: {protocol:?}\n  query:    {}\n  response: {}",
            hex(query),
            hex(resp)
        )
    };
    if resp.is_empty() {
        // Only response rate limiting drops a query, and it is off here.
        fail("the handler sent nothing".into());
    }
    let msg = match Message::from_vec(resp) {
        Ok(m) => m,
        Err(e) => fail(format!("the response does not parse: {e}")),
    };
    if msg.metadata.message_type != MessageType::Response {
        fail("the response does not have QR set".into());
    }
    // A query shorter than a header gets no response, so the ID is there.
    let id = u16::from_be_bytes([query[0], query[1]]);
    if msg.metadata.id != id {
        fail(format!(
            "the response has ID {} but the query {id}",
            msg.metadata.id
        ));
    }
    if protocol == Protocol::Udp {
        // The OPT we send back advertises the size we promised to stay within: the client's,
        // clamped to 512..=ours. No OPT: the client did not send one, so RFC 1035's 512.
        let limit = msg.edns.as_ref().map_or(512, |e| e.max_payload());
        if resp.len() > usize::from(UDP_PAYLOAD) || resp.len() > usize::from(limit) {
            fail(format!(
                "UDP response of {} bytes exceeds the limit (client/advertised {limit}, ours {UDP_PAYLOAD})",
                resp.len()
            ));
        }
    }
}

// ---- zone files and server config ------------------------------------------------------------

/// Whether gslbd may read `value` (a path relative to `base`, from fuzz input) without harm: a
/// relative path that stays below `base` and names no file, or a small regular file. Keeps the
/// fuzzer away from `/dev/zero`, `/dev/stdin` and the like, which would hang or exhaust memory
/// without telling anything about gslbd.
fn harmless_path(base: &Path, value: &str) -> bool {
    let p = Path::new(value);
    if p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return false;
    }
    match std::fs::metadata(base.join(p)) {
        Ok(m) => m.is_file() && m.len() <= 64 * 1024,
        Err(_) => true,
    }
}

/// Whether every path the text names under `keys` (a table path) is [`harmless_path`]. Text that
/// is not TOML passes: gslbd rejects it before reading anything.
fn paths_harmless(text: &str, keys: &[&str], base: &Path) -> bool {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return true;
    };
    let (last, tables) = keys.split_last().expect("a key");
    let mut table = &doc;
    for k in tables {
        match table.get(*k) {
            Some(toml::Value::Table(t)) => table = t,
            _ => return true,
        }
    }
    match table.get(*last) {
        Some(toml::Value::String(s)) => harmless_path(base, s),
        _ => true,
    }
}

/// Target `zonefile`: the text as a zone file, compiled without geodata. The file is named
/// `zones/fuzz.toml` in the repository so that `master_file = "gslb.example.zone"` reads the
/// shipped master file wherever the fuzzer runs.
pub fn zonefile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let zones = repo_dir().join("zones");
    if !paths_harmless(text, &["master_file"], &zones) {
        return;
    }
    let _ = gslbd::config::compile_zone_file_text(
        &zones.join("fuzz.toml"),
        text,
        None,
        &HealthDefaults::default(),
        0,
        &mut Vec::new(),
    );
}

/// Target `masterfile`: bytes as an RFC 1035 master file (any bytes: a master file need not be
/// UTF-8 inside quoted strings, but the loader reads text, so non-UTF-8 input is skipped as the
/// loader would reject it). `$INCLUDE` is skipped (it would read arbitrary files). Every record
/// that parses must re-encode to the same wire RDATA through the generic syntax.
pub fn masterfile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.to_ascii_uppercase().contains("$INCLUDE") {
        return;
    }
    let origin = hickory_proto::rr::Name::from_ascii("fuzz.example.").expect("a valid name");
    let path = repo_dir().join("zones").join("fuzz.zone");
    let Ok(records) = gslbd::config::master::parse_master_file(&path, text, &origin, 3600) else {
        return;
    };
    for r in records {
        let wire = gslbd::config::master::rdata_wire(&r.rdata);
        let generic = format!("\\# {} {}", wire.len(), hex(&wire));
        let again = gslbd::config::master::parse_rdata(r.rtype(), &generic, &origin)
            .unwrap_or_else(|e| {
                panic!(
                    "{} {}: generic form {generic:?} refused: {e}",
                    r.name,
                    r.rtype()
                )
            });
        assert_eq!(
            gslbd::config::master::rdata_wire(&again),
            wire,
            "{} {}: generic form differs",
            r.name,
            r.rtype()
        );
    }
}

/// Target `serverconfig`: the text as `gslbd.toml` (in the repository, for relative paths).
pub fn serverconfig(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let root = repo_dir();
    if !paths_harmless(text, &["admin", "token_file"], &root) {
        return;
    }
    let _ = gslbd::config::parse_server_config(&root.join("gslbd.toml"), text);
}

// ---- geodata ---------------------------------------------------------------------------------

/// Addresses to look up in a database built from `csv`: the edges of the first networks the CSV
/// names (and their neighbours), and a few fixed ones.
fn probe_addresses(csv: &[u8]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = [
        "0.0.0.0",
        "81.2.3.4",
        "10.20.1.1",
        "255.255.255.255",
        "::",
        "::1",
        "2001:db8::1",
        "fd00::7",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ]
    .iter()
    .map(|s| s.parse().expect("address"))
    .collect();
    let text = String::from_utf8_lossy(csv);
    for line in text.lines().take(64) {
        let field = line.split(',').next().unwrap_or("").trim();
        let Some((addr, len)) = field.split_once('/') else {
            continue;
        };
        let (Ok(addr), Ok(len)) = (addr.parse::<IpAddr>(), len.parse::<u32>()) else {
            continue;
        };
        match addr {
            IpAddr::V4(a) if len <= 32 => {
                let host = u32::MAX.checked_shr(len).unwrap_or(0);
                let first = u32::from(a) & !host;
                let last = first | host;
                for v in [
                    Some(first),
                    Some(last),
                    first.checked_sub(1),
                    last.checked_add(1),
                ]
                .into_iter()
                .flatten()
                {
                    out.push(IpAddr::V4(Ipv4Addr::from(v)));
                }
            }
            IpAddr::V6(a) if len <= 128 => {
                let host = u128::MAX.checked_shr(len).unwrap_or(0);
                let first = u128::from(a) & !host;
                let last = first | host;
                for v in [
                    Some(first),
                    Some(last),
                    first.checked_sub(1),
                    last.checked_add(1),
                ]
                .into_iter()
                .flatten()
                {
                    out.push(IpAddr::V6(Ipv6Addr::from(v)));
                }
            }
            _ => {}
        }
        if out.len() >= 64 {
            break;
        }
    }
    out.sort();
    out.dedup();
    out
}

/// IPv6 space where a database reader and gslbd's tables may legitimately differ: IPv4 lives at
/// `::/96` of the tree and is aliased at `::ffff:0:0/96`, `2001::/32` (Teredo), `2002::/16`.
fn aliased(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => false,
        IpAddr::V6(a) => {
            let s = a.segments();
            u128::from(a) >> 32 == 0
                || a.to_ipv4_mapped().is_some()
                || (s[0] == 0x2001 && s[1] == 0)
                || s[0] == 0x2002
        }
    }
}

/// A database file per process, on tmpfs when there is one.
fn scratch_db_path() -> PathBuf {
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("gslbd-fuzz-geocsv-{}.mmdb", std::process::id()))
}

/// Target `geocsv`: the bytes as the CSV of `gslbd geodata build`.
pub fn geocsv(data: &[u8]) {
    let Ok(db) = gslbd::geo::build::build_mmdb(Path::new("f.csv"), data) else {
        return;
    };
    let fail = |what: String| -> ! { panic!("{what}\n  csv: {}", hex(data)) };
    let reader = match maxminddb::Reader::from_source(db.as_slice()) {
        Ok(r) => r,
        Err(e) => fail(format!("maxminddb cannot open the database we built: {e}")),
    };
    let probes = probe_addresses(data);
    for &ip in &probes {
        let r = match reader.lookup(ip) {
            Ok(r) => r,
            Err(e) => fail(format!("lookup {ip}: {e}")),
        };
        if let Err(e) = r.network() {
            fail(format!("lookup {ip}: no network: {e}"));
        }
        if r.has_data()
            && let Err(e) = r.decode::<maxminddb::geoip2::City>()
        {
            fail(format!("lookup {ip}: not a City record: {e}"));
        }
    }

    // The server's loader: it flattens the tree into range tables; queries read those, so they
    // must say what the file says.
    let path = scratch_db_path();
    if let Err(e) = std::fs::write(&path, &db) {
        fail(format!("cannot write {}: {e}", path.display()));
    }
    let geo = gslbd::geo::GeoDb::open(&path);
    let _ = std::fs::remove_file(&path);
    let geo = match geo {
        Ok(g) => g,
        Err(e) => fail(format!("GeoDb cannot open the database we built: {e}")),
    };
    let tables = match geo.tables(|id| id) {
        Ok(t) => t,
        Err(e) => fail(format!("GeoDb cannot build tables: {e}")),
    };
    let mut wrong = Vec::new();
    for &ip in &probes {
        let looked = match geo.lookup(ip) {
            Ok(l) => l,
            Err(e) => fail(format!("GeoDb::lookup {ip}: {e}")),
        };
        if aliased(ip) {
            continue;
        }
        let table = geo.records.get(tables.lookup(ip).0 as usize).copied();
        if table != looked.record {
            wrong.push(format!(
                "{ip}: the range tables say {table:?}, the file says {:?} (network {})",
                looked.record, looked.network
            ));
        }
    }
    if !wrong.is_empty() {
        fail(format!(
            "the query path's tables differ from the file:\n  {}",
            wrong.join("\n  ")
        ));
    }
}
