//! DNSSEC, judged by a real validating resolver: Unbound 1.17 (Debian `unbound`) with a trust
//! anchor, resolving through real delegations, finds every kind of gslbd answer secure, and finds
//! tampered, expired and unanchored answers bogus. Key rollovers are run step by step with the
//! resolver's caches in place, and no step may fail validation.
//!
//! **The chain** (`a_validating_resolver_finds_every_answer_secure`): a gslbd serving `example.`
//! (signed with an Ed25519 key; the trust anchor is its DS, as `gslbd dnssec ds` prints it)
//! delegates `gslb.example.` with a signed DS to a second gslbd (ECDSA P-256, a KSK and a ZSK,
//! steered `www`, a wildcard, a CNAME chain into the steered name). That zone delegates
//! `secure.gslb.example.` to Knot, which signs it itself (its DS comes from Knot's `keymgr`,
//! and is served by gslbd with its RRSIG), and `insecure.gslb.example.` to NSD, unsigned (gslbd
//! proves the absence of the DS with a signed NSEC). Unbound reaches `example.` through a stub
//! zone and follows the referrals; a referral carries no port, so the servers below the stub
//! listen on port 53 of their own loopback addresses in 127.53.2.0/24 (root needed, as in
//! `resolver`).
//!
//! "Secure" means Unbound sets AD in its answer, which it does only when every RRset in it
//! validated up to the trust anchor; "bogus" means SERVFAIL. The insecure delegation must come
//! back NOERROR without AD: proven insecure, not bogus.
//!
//! Negative denial: gslbd answers a name that does not exist with compact denial (RFC 9824):
//! NOERROR and an NSEC at the name listing only RRSIG, NSEC and NXNAME; Unbound 1.17 reads that
//! as a validated NODATA (it predates RFC 9824's NXNAME-to-NXDOMAIN rewrite), with AD.
//!
//! The other tests need no port 53: Unbound reaches gslbd through a stub zone with a port.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use super::harness::*;
use super::resolver::{
    Daemon, Nsd, Unbound, delegation, exchange, port53, require_binary, require_port_53,
    wait_for_soa,
};

/// gslbd serving `example.` (signed): the trust anchor's zone.
const PARENT: Ipv4Addr = Ipv4Addr::new(127, 53, 2, 2);
/// gslbd serving `gslb.example.` (signed, steered).
const CHILD: Ipv4Addr = Ipv4Addr::new(127, 53, 2, 11);
/// Knot serving `secure.gslb.example.`, signing it itself.
const SECURE: Ipv4Addr = Ipv4Addr::new(127, 53, 2, 21);
/// NSD serving `insecure.gslb.example.`, unsigned.
const INSECURE: Ipv4Addr = Ipv4Addr::new(127, 53, 2, 22);
/// Unbound, validating.
const RESOLVER: Ipv4Addr = Ipv4Addr::new(127, 53, 2, 53);
/// Where Unbound's root hints point: nothing listens there, and nothing here needs the root
/// (every name asked is under a stub zone); it keeps Unbound off the real root servers.
const NO_ROOT: Ipv4Addr = Ipv4Addr::new(127, 53, 2, 1);
/// The child gslbd of the double-DS rollover.
const ROLL_CHILD: Ipv4Addr = Ipv4Addr::new(127, 53, 3, 11);

/// VIPs of the steered `www` (documentation addresses).
const US_EAST: [&str; 2] = ["192.0.2.10", "2001:db8::10"];
const EU_WEST: [&str; 2] = ["192.0.2.20", "2001:db8::20"];

#[test]
fn a_validating_resolver_finds_every_answer_secure() {
    let unbound_bin = require_binary("unbound", "unbound");
    let nsd_bin = require_binary("nsd", "nsd");
    let knotd_bin = require_binary("knotd", "knot");
    let keymgr_bin = require_binary("keymgr", "knot");
    require_port_53(&[PARENT, CHILD, SECURE, INSECURE, RESOLVER].map(IpAddr::V4));

    // Knot first: gslbd's zone carries the DS of the key Knot makes for itself.
    let knot = Knot::start(&knotd_bin, SECURE);
    let secure_ds = knot.ds(&keymgr_bin);
    assert!(!secure_ds.is_empty(), "keymgr printed no DS");
    let insecure_zone = format!(
        "{}host.insecure.gslb.example. IN A 198.51.100.8\n",
        super::resolver::zone_apex(
            "insecure.gslb.example.",
            "ns.insecure.gslb.example.",
            INSECURE
        )
    );
    let _nsd = Nsd::start(
        &nsd_bin,
        &[("insecure.gslb.example.", &insecure_zone)],
        &[port53(INSECURE)],
    );

    // gslb.example.: a KSK and a ZSK (ECDSA P-256).
    let keys = KeyDir::new();
    let ksk = keys.generate("gslb.example.", "ecdsap256sha256", true);
    let zsk = keys.generate("gslb.example.", "ecdsap256sha256", false);
    let mut extra = String::new();
    extra.push_str(&delegation(
        "secure.gslb.example.",
        &[("ns.secure.gslb.example.", SECURE)],
    ));
    for ds in &secure_ds {
        extra.push_str(ds);
        extra.push('\n');
    }
    extra.push_str(&delegation(
        "insecure.gslb.example.",
        &[("ns.insecure.gslb.example.", INSECURE)],
    ));
    let child = keys.serve_child(
        &[&ksk, &zsk],
        &[],
        3600,
        &extra,
        |cfg| cfg.listen = vec![port53(CHILD)],
        CHILD,
    );
    wait_for_soa("gslbd", port53(CHILD), "gslb.example.", || None);

    // example.: one Ed25519 key (a CSK), the DS of gslb.example.'s KSK.
    let pkeys = KeyDir::new();
    let pkey = pkeys.generate("example.", "ed25519", true);
    let parent = pkeys.serve_parent(&[&pkey], &ds_lines(&[keys.path(&ksk)]), 3600, CHILD);
    let anchor = ds_lines(&[pkeys.path(&pkey)]);

    let unbound = validating_unbound(
        &unbound_bin,
        port53(RESOLVER),
        &anchor,
        &[("example.", parent.addr)],
        &[CHILD],
        "",
    );
    let secure = |q: Q, want: &[&str]| {
        let q = q.rd().dnssec_ok();
        let m = unbound.ask(&q);
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{} {}\n{}",
            q.name,
            q.rtype,
            show(&m, &unbound)
        );
        assert!(
            m.metadata.authentic_data,
            "not validated as secure: {} {}\n{}",
            q.name,
            q.rtype,
            show(&m, &unbound)
        );
        let got = answer_data(&m);
        for w in want {
            assert!(got.iter().any(|g| g == w), "{w} not in {got:?}");
        }
        m
    };

    // Steered, by the client's subnet (London → eu-west, Toronto → us-east), both families.
    let m = secure(
        Q::new("www.gslb.example.", RecordType::A).ecs("81.2.3.0/24"),
        &[EU_WEST[0]],
    );
    assert_eq!(addrs(&m).len(), 1);
    secure(
        Q::new("www.gslb.example.", RecordType::AAAA).ecs("81.2.3.0/24"),
        &[EU_WEST[1]],
    );
    secure(
        Q::new("www.gslb.example.", RecordType::A).ecs("24.100.5.0/24"),
        &[US_EAST[0]],
    );
    secure(
        Q::new("www.gslb.example.", RecordType::AAAA).ecs("24.100.5.0/24"),
        &[US_EAST[1]],
    );
    // Static data, the keys, CDS/CDNSKEY at the apex.
    secure(
        Q::new("static.gslb.example.", RecordType::A),
        &["203.0.113.10"],
    );
    let keys_seen = secure(Q::new("gslb.example.", RecordType::DNSKEY), &[]);
    assert_eq!(
        key_tags(&keys_seen, RecordType::DNSKEY),
        BTreeSet::from([ksk.tag, zsk.tag]),
        "the DNSKEY RRset"
    );
    secure(Q::new("gslb.example.", RecordType::CDS), &[]);
    secure(Q::new("gslb.example.", RecordType::CDNSKEY), &[]);
    // Denial: a missing name and a missing type.
    let nx = secure(Q::new("nothere.gslb.example.", RecordType::A), &[]);
    assert!(nx.answers.is_empty());
    let nodata = secure(Q::new("static.gslb.example.", RecordType::AAAA), &[]);
    assert!(nodata.answers.is_empty());
    // A wildcard, and a type the wildcard does not have.
    secure(
        Q::new("anything.apps.gslb.example.", RecordType::A),
        &["203.0.113.80"],
    );
    let wnodata = secure(Q::new("other.apps.gslb.example.", RecordType::TXT), &[]);
    assert!(wnodata.answers.is_empty());
    // A CNAME chain into the steered name: chain → alias → www, each link signed.
    let m = secure(
        Q::new("chain.gslb.example.", RecordType::A).ecs("81.2.3.0/24"),
        &["alias.gslb.example.", "www.gslb.example.", EU_WEST[0]],
    );
    assert_eq!(
        m.answers
            .iter()
            .filter(|r| r.record_type() == RecordType::CNAME)
            .count(),
        2
    );
    // A secure delegation (Knot's zone) and its DS; the insecure one (NSD's): no AD, no SERVFAIL.
    secure(Q::new("secure.gslb.example.", RecordType::DS), &[]);
    secure(
        Q::new("host.secure.gslb.example.", RecordType::A),
        &["198.51.100.7"],
    );
    let m = unbound.ask(
        &Q::new("host.insecure.gslb.example.", RecordType::A)
            .rd()
            .dnssec_ok(),
    );
    assert_eq!(
        (m.metadata.response_code, m.metadata.authentic_data),
        (ResponseCode::NoError, false),
        "an insecure delegation answers, unvalidated\n{}",
        show(&m, &unbound)
    );
    assert_eq!(answer_data(&m), ["198.51.100.8"]);

    // What the resolver was given, straight from gslbd: the compact denial of a missing name
    // (RFC 9824: NOERROR, an NSEC at the name with NXNAME), and the plain NXDOMAIN without DO.
    let direct = child.udp(&Q::new("nothere.gslb.example.", RecordType::A).dnssec_ok());
    assert_eq!(direct.metadata.response_code, ResponseCode::NoError);
    let nsec = direct
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::NSEC)
        .expect("an NSEC in the authority section");
    assert_eq!(nsec.name.to_ascii(), "nothere.gslb.example.");
    // Next name `\000.nothere…`, then window 0: RRSIG (46), NSEC (47) and NXNAME (128) only.
    let mut bitmap = vec![0u8, 17, 0, 0, 0, 0, 0, 0x03];
    bitmap.extend([0; 10]);
    bitmap.push(0x80);
    assert!(rdata_bytes(nsec).ends_with(&bitmap), "{nsec}");
    let plain = child.udp(&Q::new("nothere.gslb.example.", RecordType::A).edns(1232));
    assert_eq!(plain.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        plain
            .authorities
            .iter()
            .all(|r| r.record_type() == RecordType::SOA)
    );
    drop(knot);
}

#[test]
fn tampered_expired_and_unanchored_answers_fail_validation() {
    let unbound_bin = require_binary("unbound", "unbound");
    let keys = KeyDir::new();
    let csk = keys.generate("gslb.example.", "ecdsap256sha256", true);
    let child = keys.serve_child(&[&csk], &[], 3600, "", |_| {}, Ipv4Addr::LOCALHOST);
    let anchor = ds_lines(&[keys.path(&csk)]);
    let stub = |addr: SocketAddr| [("gslb.example.", addr)];
    let local = || SocketAddr::from(([127, 0, 0, 1], free_port()));
    let www = || {
        Q::new("www.gslb.example.", RecordType::A)
            .ecs("81.2.3.0/24")
            .rd()
            .dnssec_ok()
    };
    let stat = || {
        Q::new("static.gslb.example.", RecordType::A)
            .rd()
            .dnssec_ok()
    };

    // The control: the same set-up untouched validates.
    let good = validating_unbound(&unbound_bin, local(), &anchor, &stub(child.addr), &[], "");
    let m = good.ask(&www());
    assert!(m.metadata.authentic_data, "{}", show(&m, &good));
    drop(good);

    // One flipped bit in the signatures of www's answers: bogus; the rest still validates.
    let relay = TamperingRelay::start(child.addr, "www.gslb.example.");
    let tampered = validating_unbound(&unbound_bin, local(), &anchor, &stub(relay.addr), &[], "");
    let m = tampered.ask(&stat());
    assert!(m.metadata.authentic_data, "{}", show(&m, &tampered));
    expect_servfail(&tampered, &www(), "a tampered signature must not validate");
    assert!(relay.tampered() > 0, "the relay changed nothing");
    drop(tampered);

    // The resolver's clock 30 days ahead: the signatures (valid 14 days) have expired.
    let later = SystemTime::now() + Duration::from_secs(30 * 86_400);
    let date = humantime::format_rfc3339_seconds(later)
        .to_string()
        .replace(['-', ':', 'T', 'Z'], "");
    let expired = validating_unbound(
        &unbound_bin,
        local(),
        &anchor,
        &stub(child.addr),
        &[],
        &format!("    val-override-date: \"{date}\"\n"),
    );
    for q in [www(), stat()] {
        expect_servfail(&expired, &q, "expired signatures must not validate");
    }
    drop(expired);

    // A trust anchor for a key the zone does not have.
    let stranger = keys.generate("gslb.example.", "ecdsap256sha256", true);
    let wrong = validating_unbound(
        &unbound_bin,
        local(),
        &ds_lines(&[keys.path(&stranger)]),
        &stub(child.addr),
        &[],
        "",
    );
    expect_servfail(
        &wrong,
        &stat(),
        "an anchor for a key the zone lacks must not validate",
    );
}

/// The validating resolver answers `q` SERVFAIL (`why` says what must not validate).
fn expect_servfail(unbound: &Unbound, q: &Q, why: &str) {
    let m = unbound.ask(q);
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::ServFail,
        "{why} ({})\n{}",
        q.name,
        show(&m, unbound)
    );
}

/// The speed design, observed: after the load, steered answers for any number of clients and
/// the static data are answered from signatures made at load; nothing is signed on the query
/// path. Every DO answer is the same over UDP (the fast path, for steered names) and TCP (the
/// general path).
#[test]
fn steady_state_signs_nothing_on_the_query_path_and_both_paths_agree() {
    let keys = KeyDir::new();
    let ksk = keys.generate("gslb.example.", "ecdsap256sha256", true);
    let zsk = keys.generate("gslb.example.", "ecdsap256sha256", false);
    // A secure and an insecure delegation.
    let mut cuts = delegation(
        "signed.gslb.example.",
        &[("ns.signed.gslb.example.", Ipv4Addr::LOCALHOST)],
    );
    cuts.push_str(&format!(
        "signed.gslb.example. IN DS 12345 13 2 {}\n",
        "AB".repeat(32)
    ));
    cuts.push_str(&delegation(
        "plain.gslb.example.",
        &[("ns.plain.gslb.example.", Ipv4Addr::LOCALHOST)],
    ));
    let srv = keys.serve_child(&[&ksk, &zsk], &[], 3600, &cuts, |_| {}, Ipv4Addr::LOCALHOST);
    let signed = || crate::harness::rrsets_signed(&srv.gslbd().control.health.served.load());
    let at_load = signed();
    assert!(at_load > 0, "nothing signed at load");
    let mut queries = Vec::new();
    for i in 0..200u32 {
        // Clients all over the sample database and outside it.
        let net = format!("{}.{}.{}.0/24", 1 + i % 223, (i * 7) % 256, (i * 13) % 256);
        for t in [RecordType::A, RecordType::AAAA] {
            queries.push(Q::new("www.gslb.example.", t).ecs(&net).dnssec_ok());
            queries.push(Q::new("pair.gslb.example.", t).ecs(&net).dnssec_ok());
        }
    }
    for (name, t) in [
        ("www.gslb.example.", RecordType::A),
        ("static.gslb.example.", RecordType::A),
        ("gslb.example.", RecordType::DNSKEY),
        ("gslb.example.", RecordType::SOA),
        ("gslb.example.", RecordType::NS),
        ("chain.gslb.example.", RecordType::A),
        ("www.gslb.example.", RecordType::TXT),
        ("WwW.gSlB.eXaMpLe.", RecordType::TXT),
        ("static.gslb.example.", RecordType::AAAA),
        ("apps.gslb.example.", RecordType::A),
        ("signed.gslb.example.", RecordType::DS),
        ("host.signed.gslb.example.", RecordType::A),
        ("host.plain.gslb.example.", RecordType::A),
    ] {
        queries.push(Q::new(name, t).dnssec_ok());
    }
    for q in &queries {
        let (u, t) = (srv.udp(q), srv.tcp(q));
        assert_eq!(
            u.metadata.response_code,
            ResponseCode::NoError,
            "{}",
            q.name
        );
        assert!(
            u.answers
                .iter()
                .any(|r| r.record_type() == RecordType::RRSIG)
                || u.authorities
                    .iter()
                    .any(|r| r.record_type() == RecordType::RRSIG),
            "{} {}: unsigned",
            q.name,
            q.rtype
        );
        assert_eq!(rrs(&u.answers), rrs(&t.answers), "{} {}", q.name, q.rtype);
        assert_eq!(
            rrs(&u.authorities),
            rrs(&t.authorities),
            "{} {}",
            q.name,
            q.rtype
        );
    }
    assert_eq!(
        signed(),
        at_load,
        "{} queries signed RRsets on the query path",
        queries.len()
    );
}

/// ZSK pre-publish (RFC 6781 §4.1.1.1): publish the new ZSK, wait a DNSKEY TTL, sign with it
/// (the old one still published), wait the longest TTL of what the old one signed, retire it.
/// The resolver keeps its caches throughout; each step is checked at once (its cache from the
/// step before) and again after the DNSKEY TTL (its cache refreshed). Ed25519 keys.
///
/// The "at once" checks are what catch a wrong procedure: with step 2 made without step 1 (the
/// new ZSK signs before the resolver has seen it), Unbound answered SERVFAIL at step 2 in each
/// trial run. Not kept as a test of its own: whether Unbound recovers from such a failure by
/// fetching the DNSKEY RRset again is its own business, and varies.
#[test]
fn zsk_prepublish_rollover_validates_at_every_step() {
    let unbound_bin = require_binary("unbound", "unbound");
    let keys = KeyDir::new();
    let ksk = keys.generate("gslb.example.", "ed25519", true);
    let zsk1 = keys.generate("gslb.example.", "ed25519", false);
    let zsk2 = keys.generate("gslb.example.", "ed25519", false);
    let ttl = 4;
    let child = keys.serve_child(
        &[&ksk, &zsk1],
        &[],
        ttl,
        "",
        |c| c.watch = true,
        Ipv4Addr::LOCALHOST,
    );
    let anchor = ds_lines(&[keys.path(&ksk)]);
    let unbound = validating_unbound(
        &unbound_bin,
        SocketAddr::from(([127, 0, 0, 1], free_port())),
        &anchor,
        &[("gslb.example.", child.addr)],
        &[],
        "",
    );
    let mut names = 0;
    let steps: [(&str, &[&GenKey], &[&GenKey], &GenKey); 4] = [
        ("start: KSK + ZSK1", &[&ksk, &zsk1], &[], &zsk1),
        ("publish ZSK2", &[&ksk, &zsk1], &[&zsk2], &zsk1),
        (
            "sign with ZSK2, ZSK1 still published",
            &[&ksk, &zsk2],
            &[&zsk1],
            &zsk2,
        ),
        ("retire ZSK1", &[&ksk, &zsk2], &[], &zsk2),
    ];
    for (what, signing, publish, signer) in steps {
        keys.rewrite_child(&child, signing, publish, ttl, "");
        let published: BTreeSet<u16> = signing.iter().chain(publish).map(|k| k.tag).collect();
        wait_for_keys(&child, "gslb.example.", &published, signer.tag);
        validate_step(&unbound, &mut names, ttl, what, "www.gslb.example.");
    }
}

/// KSK double-DS (RFC 6781 §4.1.2): the new KSK's DS goes to the parent beside the old one;
/// after the DS TTL the child swaps the KSKs in its DNSKEY RRset; after the DNSKEY TTL the old
/// DS is withdrawn. The parent here is a signed gslbd (`example.`, the trust anchor); both zones
/// are reloaded by their file watchers as an operator's edits would be.
#[test]
fn ksk_double_ds_rollover_validates_at_every_step() {
    let unbound_bin = require_binary("unbound", "unbound");
    require_port_53(&[IpAddr::V4(ROLL_CHILD)]);
    let ttl = 4;
    let keys = KeyDir::new();
    let ksk1 = keys.generate("gslb.example.", "ecdsap256sha256", true);
    let ksk2 = keys.generate("gslb.example.", "ecdsap256sha256", true);
    let zsk = keys.generate("gslb.example.", "ecdsap256sha256", false);
    let child = keys.serve_child(
        &[&ksk1, &zsk],
        &[],
        ttl,
        "",
        |c| {
            c.listen = vec![port53(ROLL_CHILD)];
            c.watch = true;
        },
        ROLL_CHILD,
    );
    let pkeys = KeyDir::new();
    let pkey = pkeys.generate("example.", "ecdsap256sha256", true);
    let ds = |ks: &[&GenKey]| -> Vec<String> {
        ds_lines(&ks.iter().map(|k| keys.path(k)).collect::<Vec<_>>())
            .into_iter()
            .map(|l| l.replacen(" IN DS ", &format!(" {ttl} IN DS "), 1))
            .collect()
    };
    let parent = pkeys.serve_parent(&[&pkey], &ds(&[&ksk1]), ttl, ROLL_CHILD);
    let unbound = validating_unbound(
        &unbound_bin,
        SocketAddr::from(([127, 0, 0, 1], free_port())),
        &ds_lines(&[pkeys.path(&pkey)]),
        &[("example.", parent.addr)],
        &[],
        "",
    );
    let mut names = 0;
    let mut check = |what: &str| validate_step(&unbound, &mut names, ttl, what, "gslb.example.");
    check("start: DS(KSK1), KSK1 signs the keys");

    pkeys.rewrite_parent(&parent, &[&pkey], &ds(&[&ksk1, &ksk2]), ttl, ROLL_CHILD);
    wait_for_ds(&parent, &BTreeSet::from([ksk1.tag, ksk2.tag]));
    check("DS(KSK2) added at the parent");

    keys.rewrite_child(&child, &[&ksk2, &zsk], &[], ttl, "");
    wait_for_keys(
        &child,
        "gslb.example.",
        &BTreeSet::from([ksk2.tag, zsk.tag]),
        zsk.tag,
    );
    check("the child's DNSKEY RRset: KSK2 in, KSK1 out");

    pkeys.rewrite_parent(&parent, &[&pkey], &ds(&[&ksk2]), ttl, ROLL_CHILD);
    wait_for_ds(&parent, &BTreeSet::from([ksk2.tag]));
    check("DS(KSK1) withdrawn");
}

/// One rollover step, validated twice through `unbound`: at once, while the resolver still holds
/// what it fetched at the end of the step before (less than a TTL ago), and again once that has
/// expired and been fetched anew. Each pass asks a name never asked before (a wildcard
/// expansion, so nothing of it is cached) and `also`.
fn validate_step(unbound: &Unbound, names: &mut u32, ttl: u32, what: &str, also: &str) {
    for pass in ["at once", "after the TTLs"] {
        if pass != "at once" {
            std::thread::sleep(Duration::from_millis(u64::from(ttl) * 1000 + 500));
        }
        *names += 1;
        expect_secure(unbound, &format!("n{names}.apps.gslb.example."), what, pass);
        expect_secure(unbound, also, what, pass);
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and zones
// ---------------------------------------------------------------------------------------------

/// A key made by `gslbd dnssec keygen`: its file stem relative to the zone directory and tag.
struct GenKey {
    stem: String,
    tag: u16,
}

/// A zone directory with a `keys/` directory, for one gslbd.
struct KeyDir {
    dir: tempfile::TempDir,
}

impl KeyDir {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("zones/keys")).expect("mkdir");
        Self { dir }
    }

    fn zones(&self) -> PathBuf {
        self.dir.path().join("zones")
    }

    /// `gslbd dnssec keygen`, as an operator runs it.
    fn generate(&self, zone: &str, alg: &str, ksk: bool) -> GenKey {
        let keys = self.zones().join("keys");
        let mut args = vec![
            "dnssec",
            "keygen",
            "--zone",
            zone,
            "--algorithm",
            alg,
            "--dir",
        ];
        let dir = keys.to_string_lossy().to_string();
        args.push(&dir);
        if ksk {
            args.push("--ksk");
        }
        let out = gslbd_cli(&args);
        let path = PathBuf::from(out.trim());
        let file = path
            .file_name()
            .expect("keygen prints a path")
            .to_string_lossy()
            .to_string();
        let tag = file
            .rsplit('+')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no key tag in {file}"));
        assert!(keys.join(format!("{file}.key")).is_file());
        assert!(keys.join(format!("{file}.private")).is_file());
        GenKey {
            stem: format!("keys/{file}"),
            tag,
        }
    }

    fn path(&self, k: &GenKey) -> PathBuf {
        self.zones().join(&k.stem)
    }

    fn dnssec_table(signing: &[&GenKey], publish: &[&GenKey], ttl: u32) -> String {
        let list = |ks: &[&GenKey]| {
            ks.iter()
                .map(|k| format!("{:?}", k.stem))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "[dnssec]\nkeys = [{}]\npublish_only = [{}]\ndnskey_ttl = {ttl}\n",
            list(signing),
            list(publish)
        )
    }

    /// Writes `gslb.example.`: steered `www` over two regions, static data, a wildcard, a CNAME
    /// chain into `www`, `extra` master-file lines, signed by `signing`.
    fn write_child(
        &self,
        signing: &[&GenKey],
        publish: &[&GenKey],
        ttl: u32,
        extra: &str,
        ns: Ipv4Addr,
    ) {
        let master = format!(
            "ns1 IN A {ns}\n\
             static IN A 203.0.113.10\n\
             *.apps {ttl} IN A 203.0.113.80\n\
             alias IN CNAME www\n\
             chain IN CNAME alias\n\
             {extra}"
        );
        let toml = format!(
            r#"origin = "gslb.example."
ttl = 3600
ns = ["ns1"]
master_file = "gslb.example.zone"
[soa]
mname = "ns1"
rname = "hostmaster"
serial = 1
refresh = 3600
retry = 600
expire = 1209600
minimum = {ttl}
[regions.us-east]
location = [39.0, -77.5]
vips = ["{}", "{}"]
[regions.eu-west]
location = [53.3, -6.3]
vips = ["{}", "{}"]
[services.www]
regions = ["us-east", "eu-west"]
policy = "proximity"
ttl = 30
[services.pair]
regions = ["us-east", "eu-west"]
answers = 2
ttl = 30
[geo.default]
regions = ["us-east", "eu-west"]
{}"#,
            US_EAST[0],
            US_EAST[1],
            EU_WEST[0],
            EU_WEST[1],
            Self::dnssec_table(signing, publish, ttl)
        );
        // The master file first: the watcher reloads on the TOML's change.
        std::fs::write(self.zones().join("gslb.example.zone"), master).expect("write zone");
        std::fs::write(self.zones().join("gslb.example.toml"), toml).expect("write zone");
    }

    fn serve_child(
        &self,
        signing: &[&GenKey],
        publish: &[&GenKey],
        ttl: u32,
        extra: &str,
        tweak: impl FnOnce(&mut gslbd::config::ServerConfig),
        ns: Ipv4Addr,
    ) -> TestServer {
        self.write_child(signing, publish, ttl, extra, ns);
        let mut cfg = gslbd::config::ServerConfig::for_zones(
            self.zones(),
            vec!["127.0.0.1:0".parse().expect("addr")],
        );
        cfg.geodata = Some(sample_mmdb());
        tweak(&mut cfg);
        TestServer::from_config(cfg, None)
    }

    fn rewrite_child(
        &self,
        child: &TestServer,
        signing: &[&GenKey],
        publish: &[&GenKey],
        ttl: u32,
        extra: &str,
    ) {
        let ns = match child.addr.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
        };
        self.write_child(signing, publish, ttl, extra, ns);
    }

    /// `example.`: the delegation of `gslb.example.` to `child` with `ds`.
    fn write_parent(&self, signing: &[&GenKey], ds: &[String], ttl: u32, child: Ipv4Addr) {
        let mut master = format!(
            "ns IN A 127.0.0.1\n{}",
            delegation("gslb.example.", &[("ns1.gslb.example.", child)])
        );
        for d in ds {
            master.push_str(d);
            master.push('\n');
        }
        let toml = format!(
            r#"origin = "example."
ttl = 3600
ns = ["ns"]
master_file = "example.zone"
[soa]
mname = "ns"
rname = "hostmaster"
serial = 1
refresh = 3600
retry = 600
expire = 1209600
minimum = {ttl}
{}"#,
            Self::dnssec_table(signing, &[], ttl)
        );
        std::fs::write(self.zones().join("example.zone"), master).expect("write zone");
        std::fs::write(self.zones().join("example.toml"), toml).expect("write zone");
    }

    fn serve_parent(
        &self,
        signing: &[&GenKey],
        ds: &[String],
        ttl: u32,
        child: Ipv4Addr,
    ) -> TestServer {
        self.write_parent(signing, ds, ttl, child);
        let mut cfg = gslbd::config::ServerConfig::for_zones(
            self.zones(),
            vec!["127.0.0.1:0".parse().expect("addr")],
        );
        cfg.watch = true;
        TestServer::from_config(cfg, None)
    }

    fn rewrite_parent(
        &self,
        _parent: &TestServer,
        signing: &[&GenKey],
        ds: &[String],
        ttl: u32,
        child: Ipv4Addr,
    ) {
        self.write_parent(signing, ds, ttl, child);
    }
}

/// Runs the gslbd binary and returns its standard output; fails the test when it fails.
fn gslbd_cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gslbd"))
        .args(args)
        .output()
        .expect("run gslbd");
    assert!(
        out.status.success(),
        "gslbd {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `gslbd dnssec ds --key …`: the DS records (no comment lines).
fn ds_lines(keys: &[PathBuf]) -> Vec<String> {
    let mut args = vec!["dnssec".to_string(), "ds".to_string()];
    for k in keys {
        args.push("--key".into());
        args.push(k.to_string_lossy().into_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    gslbd_cli(&args)
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Waits until `server` publishes exactly `tags` as its DNSKEY RRset and signs its SOA with
/// `signer`: the reload went through.
fn wait_for_keys(server: &TestServer, zone: &str, tags: &BTreeSet<u16>, signer: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let keys = server.udp(&Q::new(zone, RecordType::DNSKEY).dnssec_ok());
        let soa = server.udp(&Q::new(zone, RecordType::SOA).dnssec_ok());
        let signers = key_tags(&soa, RecordType::RRSIG);
        if key_tags(&keys, RecordType::DNSKEY) == *tags && signers == BTreeSet::from([signer]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{zone}: keys {:?} signed by {signers:?}, want {tags:?} signed by {signer}",
            key_tags(&keys, RecordType::DNSKEY)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the parent's DS RRset for `gslb.example.` names exactly `tags`.
fn wait_for_ds(parent: &TestServer, tags: &BTreeSet<u16>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = parent.udp(&Q::new("gslb.example.", RecordType::DS).dnssec_ok());
        let got = key_tags(&m, RecordType::DS);
        if got == *tags {
            return;
        }
        assert!(Instant::now() < deadline, "DS {got:?}, want {tags:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Key tags in the answer: of DNSKEYs (computed), of DS records and of RRSIGs (their fields).
fn key_tags(m: &Message, rtype: RecordType) -> BTreeSet<u16> {
    m.answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .map(|r| {
            let b = rdata_bytes(r);
            match rtype {
                RecordType::DNSKEY => tag_of(&b),
                RecordType::DS => u16::from_be_bytes([b[0], b[1]]),
                _ => u16::from_be_bytes([b[16], b[17]]),
            }
        })
        .collect()
}

/// RFC 4034 Appendix B, written again here so the test does not trust gslbd's own.
fn tag_of(dnskey: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for (i, b) in dnskey.iter().enumerate() {
        acc += if i % 2 == 0 {
            u32::from(*b) << 8
        } else {
            u32::from(*b)
        };
    }
    acc += (acc >> 16) & 0xffff;
    (acc & 0xffff) as u16
}

fn rdata_bytes(r: &Record) -> Vec<u8> {
    r.data.to_bytes().expect("encode rdata")
}

/// The answer section as text: addresses and CNAME targets.
fn answer_data(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            RData::CNAME(c) => Some(c.0.to_ascii()),
            _ => None,
        })
        .collect()
}

fn show(m: &Message, unbound: &Unbound) -> String {
    let log = unbound.output();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    format!(
        "rcode {:?} AD {}\n{}\n--- unbound log (last lines, newest first):\n{}",
        m.metadata.response_code,
        m.metadata.authentic_data,
        rrs(&m.answers).join("\n"),
        tail.join("\n")
    )
}

/// Asks `name A` with DO and fails unless Unbound validated the answer as secure.
fn expect_secure(unbound: &Unbound, name: &str, step: &str, pass: &str) {
    let m = unbound.ask(
        &Q::new(name, RecordType::A)
            .ecs("81.2.3.0/24")
            .rd()
            .dnssec_ok(),
    );
    assert!(
        m.metadata.response_code == ResponseCode::NoError && m.metadata.authentic_data,
        "{step}, {pass}: {name} A is not secure\n{}",
        show(&m, unbound)
    );
}

/// A validating Unbound: `anchors` (DS lines) as trust anchors, `stubs` (zone, address with
/// port) as stub zones, ECS sent to `ecs_to`.
fn validating_unbound(
    bin: &Path,
    addr: SocketAddr,
    anchors: &[String],
    stubs: &[(&str, SocketAddr)],
    ecs_to: &[Ipv4Addr],
    more: &str,
) -> Unbound {
    let mut server = String::from("    val-log-level: 2\n");
    for a in anchors {
        server.push_str(&format!("    trust-anchor: \"{a}\"\n"));
    }
    for ip in ecs_to {
        server.push_str(&format!("    send-client-subnet: {ip}\n"));
    }
    // The stub zones' servers are on loopback ports; the test wants every query answered, not
    // the resolver's patience with slow servers.
    server.push_str(more);
    let mut clauses = String::new();
    for (zone, a) in stubs {
        clauses.push_str(&format!(
            "stub-zone:\n    name: \"{zone}\"\n    stub-addr: {}@{}\n",
            a.ip(),
            a.port()
        ));
    }
    Unbound::start_conf(
        bin,
        addr,
        &[("a.root-servers.net.", IpAddr::V4(NO_ROOT))],
        &server,
        &clauses,
    )
}

// ---------------------------------------------------------------------------------------------
// Knot, signing its own zone
// ---------------------------------------------------------------------------------------------

/// Knot serving `secure.gslb.example.` on port 53 of `ip`, signing it with a key it makes at
/// start-up (its default policy, with a single ECDSA P-256 CSK).
struct Knot {
    daemon: Daemon,
    conf: PathBuf,
}

impl Knot {
    fn start(bin: &Path, ip: Ipv4Addr) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("secure.zone"),
            format!(
                "$ORIGIN secure.gslb.example.\n$TTL 3600\n\
                 @ IN SOA ns hostmaster 1 3600 600 86400 60\n\
                 @ IN NS ns\n\
                 ns IN A {ip}\n\
                 host IN A 198.51.100.7\n"
            ),
        )
        .expect("write zone");
        let conf = dir.path().join("knot.conf");
        std::fs::write(
            &conf,
            format!(
                r#"server:
    rundir: "{d}"
    listen: {ip}@53
log:
  - target: stderr
    any: info
database:
    storage: "{d}"
policy:
  - id: csk
    algorithm: ecdsap256sha256
    single-type-signing: on
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
zone:
  - domain: secure.gslb.example.
    file: "secure.zone"
    dnssec-signing: on
    dnssec-policy: csk
"#
            ),
        )
        .expect("write knot.conf");
        let mut daemon = Daemon::spawn("knot", bin, dir, &["-c"]);
        // Up, and signed: the DNSKEY RRset is there.
        let deadline = Instant::now() + Duration::from_secs(15);
        let q = Q::new("secure.gslb.example.", RecordType::DNSKEY).dnssec_ok();
        loop {
            if let Some(m) = exchange(port53(ip), &q, Duration::from_millis(200))
                && m.answers
                    .iter()
                    .any(|r| r.record_type() == RecordType::DNSKEY)
            {
                break;
            }
            if let Some(why) = daemon.died() {
                panic!("knot did not start: {why}");
            }
            assert!(
                Instant::now() < deadline,
                "knot did not serve a signed zone:\n{}",
                daemon.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { daemon, conf }
    }

    /// The DS records of its KSK, from `keymgr … ds` (master-file lines).
    fn ds(&self, keymgr: &Path) -> Vec<String> {
        let out = Command::new(keymgr)
            .arg("-c")
            .arg(&self.conf)
            .args(["secure.gslb.example.", "ds"])
            .output()
            .expect("run keymgr");
        assert!(
            out.status.success(),
            "keymgr ds: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.daemon.output()
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(" DS "))
            .map(str::to_string)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// A relay that breaks signatures
// ---------------------------------------------------------------------------------------------

/// A UDP relay to gslbd that flips one bit in the last byte of every RRSIG in the answer
/// section of responses for `qname`, and passes everything else through unchanged.
struct TamperingRelay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    count: Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TamperingRelay {
    fn start(upstream: SocketAddr, qname: &str) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind relay");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let addr = sock.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let qname = qname.to_ascii_lowercase();
        let thread = {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || {
                let up = UdpSocket::bind("127.0.0.1:0").expect("bind upstream");
                up.set_read_timeout(Some(Duration::from_secs(2)))
                    .expect("timeout");
                let mut buf = vec![0u8; 65535];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, client)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    let _ = up.send_to(&buf[..n], upstream);
                    let Ok(m) = up.recv(&mut buf) else { continue };
                    let mut reply = buf[..m].to_vec();
                    let asked = Message::from_vec(&reply)
                        .ok()
                        .and_then(|m| m.queries.first().map(|q| q.name().to_ascii()))
                        .map(|n| n.to_ascii_lowercase());
                    if asked.as_deref() == Some(qname.as_str()) {
                        count.fetch_add(flip_rrsigs(&mut reply), Ordering::Relaxed);
                    }
                    let _ = sock.send_to(&reply, client);
                }
            })
        };
        Self {
            addr,
            stop,
            count,
            thread: Some(thread),
        }
    }

    fn tampered(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for TamperingRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Flips the low bit of the last signature byte of each RRSIG in the answer section; returns
/// how many it changed.
fn flip_rrsigs(msg: &mut [u8]) -> usize {
    fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
        loop {
            let len = *msg.get(at)?;
            match len {
                0 => return Some(at + 1),
                l if l & 0xc0 == 0xc0 => return Some(at + 2),
                l => at += 1 + usize::from(l),
            }
        }
    }
    let word = |msg: &[u8], at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *msg.get(at)?,
            *msg.get(at + 1)?,
        ])))
    };
    let (Some(qd), Some(an)) = (word(msg, 4), word(msg, 6)) else {
        return 0;
    };
    let mut at = 12;
    for _ in 0..qd {
        let Some(next) = skip_name(msg, at) else {
            return 0;
        };
        at = next + 4;
    }
    let mut changed = 0;
    for _ in 0..an {
        let Some(next) = skip_name(msg, at) else {
            return changed;
        };
        let (Some(rtype), Some(len)) = (word(msg, next), word(msg, next + 8)) else {
            return changed;
        };
        let end = next + 10 + len;
        if rtype == 46 && end <= msg.len() && len > 0 {
            msg[end - 1] ^= 1;
            changed += 1;
        }
        at = end;
    }
    changed
}
