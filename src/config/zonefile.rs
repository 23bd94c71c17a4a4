//! One zone file (`zones/<name>.toml`) exactly as written. Every key is documented in the
//! README's zone file reference; keep the two in step.

use std::collections::BTreeMap;

use indexmap::IndexMap;

use serde::Deserialize;
use toml::Spanned;

/// A whole zone file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneFileInput {
    /// The zone's origin, e.g. `gslb.example.` (a trailing dot is implied).
    pub origin: Spanned<String>,
    /// Default TTL of static records in seconds. Default 3600.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// The SOA. Required unless `master_file` carries one.
    #[serde(default)]
    pub soa: Option<Spanned<SoaInput>>,
    /// Name servers of the zone (apex NS set), relative to the origin or absolute.
    #[serde(default)]
    pub ns: Vec<Spanned<String>>,
    /// Static records.
    #[serde(default)]
    pub records: Vec<Spanned<RecordInput>>,
    /// An RFC 1035 master file with more static data, relative to this file.
    #[serde(default)]
    pub master_file: Option<Spanned<String>>,
    /// Data centers, by name.
    #[serde(default)]
    pub regions: IndexMap<String, Spanned<RegionInput>>,
    /// Steered names, by owner name relative to the origin.
    #[serde(default)]
    pub services: IndexMap<String, Spanned<ServiceInput>>,
    /// Operator geo rules for every service of the zone.
    #[serde(default)]
    pub geo: Option<Spanned<GeoRulesInput>>,
    /// Decisions this zone promises; `gslbd check` evaluates them.
    #[serde(default)]
    pub expect: Vec<Spanned<ExpectInput>>,
    /// Online DNSSEC signing.
    #[serde(default)]
    pub dnssec: Option<Spanned<DnssecInput>>,
}

/// `[dnssec]`: the zone's keys and signature policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnssecInput {
    /// Keys that sign, as BIND file names without the extension (`keys/Kgslb.example.+013+12345`,
    /// relative to the zone file; `.key` and `.private` are read). A key with flags 257 signs
    /// the DNSKEY RRset (a KSK), one with 256 the rest (a ZSK); without a ZSK the 257 keys sign
    /// everything (a CSK).
    pub keys: Vec<String>,
    /// Keys published in the DNSKEY RRset without signing (rollovers).
    #[serde(default)]
    pub publish_only: Vec<String>,
    /// How long a signature is valid. Default 14 days.
    #[serde(default)]
    pub validity: Option<String>,
    /// A signature is made anew when less than this is left. Default: half the validity.
    #[serde(default)]
    pub refresh: Option<String>,
    /// How far the inception is set back for slow clocks. Default 1 hour.
    #[serde(default)]
    pub inception_offset: Option<String>,
    /// TTL of DNSKEY, CDS and CDNSKEY. Default 3600.
    #[serde(default)]
    pub dnskey_ttl: Option<u32>,
    /// Publish CDS and CDNSKEY for the KSKs (RFC 7344, RFC 8078). Default true.
    #[serde(default)]
    pub cds: Option<bool>,
    /// Most RRsets whose signatures are kept. Default 100 000 (and never below what load signs).
    #[serde(default)]
    pub cache_size: Option<usize>,
}

/// The zone's TTL when the file gives none: 3600 seconds.
pub fn default_ttl() -> u32 {
    3600
}

/// `soa = { … }`: the SOA's fields; required unless `master_file` carries an SOA.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoaInput {
    /// Primary name server. Default: the first `ns`.
    #[serde(default)]
    pub mname: Option<String>,
    /// Mailbox of the responsible person as a DNS name (`hostmaster` → hostmaster.<origin>).
    /// Default `hostmaster`.
    #[serde(default)]
    pub rname: Option<String>,
    /// SERIAL. Required.
    pub serial: u32,
    /// REFRESH, seconds. Default 3600.
    #[serde(default = "default_refresh")]
    pub refresh: i32,
    /// RETRY, seconds. Default 600.
    #[serde(default = "default_retry")]
    pub retry: i32,
    /// EXPIRE, seconds. Default 1 209 600 (14 days).
    #[serde(default = "default_expire")]
    pub expire: i32,
    /// Negative-caching TTL (RFC 2308). Default 60.
    #[serde(default = "default_minimum")]
    pub minimum: u32,
    /// TTL of the SOA record itself. Default: the zone's `ttl`.
    #[serde(default)]
    pub ttl: Option<u32>,
}

fn default_refresh() -> i32 {
    3600
}
fn default_retry() -> i32 {
    600
}
fn default_expire() -> i32 {
    1_209_600
}
fn default_minimum() -> u32 {
    60
}

/// `data` may be one string or a list of strings (one record each).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// `data = "…"`: one record.
    One(String),
    /// `data = ["…", "…"]`: one record per string.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The data strings, one per record.
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// One entry of `records`: a static record, or several of one owner and type when `data` is a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    /// Owner, relative to the origin (`www`, `@` for the apex) or absolute (`www.gslb.example.`).
    pub name: Spanned<String>,
    /// A, AAAA, CNAME, MX, TXT, SRV, CAA, PTR or NS.
    #[serde(rename = "type")]
    pub rtype: String,
    /// RDATA in master-file syntax; relative names are relative to the origin.
    pub data: Spanned<OneOrMany>,
    /// TTL in seconds. Default: the zone's `ttl`.
    #[serde(default)]
    pub ttl: Option<u32>,
}

/// `[regions.<name>]`: one data center.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionInput {
    /// `[latitude, longitude]` in degrees.
    pub location: [f64; 2],
    /// Virtual IPs answered for this region (IPv4 and/or IPv6).
    #[serde(default)]
    pub vips: Vec<String>,
    /// A hostname answered (as a CNAME) instead of VIPs.
    #[serde(default)]
    pub cname: Option<String>,
    /// Capacity weight, 1–65535. Default 100.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Relative cost, ≥ 0. Default 0.
    #[serde(default)]
    pub cost: f64,
    /// Backup regions are used only when no primary is eligible.
    #[serde(default)]
    pub backup: bool,
    /// Proximity bias −99…99: positive grows the region's catchment (distances to it count as
    /// `d × (1 − bias/100)`), negative shrinks it. Default 0.
    #[serde(default)]
    pub bias: f64,
    /// How to probe the region (or each VIP, when the target contains `{vip}`).
    #[serde(default)]
    pub probe: Option<ProbeInput>,
    /// Per-VIP probe settings, laid over `probe` for that VIP: `"192.0.2.10" = { url = "…" }`.
    #[serde(default)]
    pub vip_probes: IndexMap<String, ProbeInput>,
    /// The region is down when fewer of its VIPs than this are up. Default 1.
    #[serde(default)]
    pub min_vips_up: Option<u32>,
}

/// A health probe. Every key is optional so that per-VIP settings can be laid over the
/// region's and the region's over the server's `[health]` defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeInput {
    /// `http`, `https` or `tcp`. Default: from the URL's scheme, or `tcp` with `address`.
    #[serde(default, rename = "type")]
    pub kind: Option<ProbeKindInput>,
    /// HTTP(S) URL to GET. `{vip}` is replaced by each VIP (one probe per VIP).
    #[serde(default)]
    pub url: Option<String>,
    /// TCP target `host:port`; `{vip}` as for `url`.
    #[serde(default)]
    pub address: Option<String>,
    /// Host header and TLS SNI name, when the URL names an address.
    #[serde(default)]
    pub host: Option<String>,
    /// Accepted status codes: numbers and `"200-299"` ranges. Default 200–299.
    #[serde(default)]
    pub expect_status: Option<Vec<StatusInput>>,
    /// The body must contain this text.
    #[serde(default)]
    pub body: Option<String>,
    /// The body must match this regular expression.
    #[serde(default)]
    pub body_regex: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: Option<IndexMap<String, String>>,
    /// Verify the TLS certificate (chain and name). Default true.
    #[serde(default)]
    pub verify_tls: Option<bool>,
    /// Seconds between probes, 0.1–3600. Default 10.
    #[serde(default)]
    pub interval: Option<f64>,
    /// Seconds one probe may take, 0.05 up to `interval`. Default 3 (or the interval, when
    /// shorter).
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Consecutive successes that bring a down target up, 1–100. Default 2.
    #[serde(default)]
    pub rise: Option<u32>,
    /// Consecutive failures that take an up target down, 1–100. Default 3.
    #[serde(default)]
    pub fall: Option<u32>,
    /// State before the first result: `up` (default) or `down`.
    #[serde(default)]
    pub initial: Option<InitialInput>,
    /// Read the load from this JSON body field (dotted path, e.g. `load` or `stats.load`).
    #[serde(default)]
    pub load_json: Option<String>,
    /// Read the load from this response header (e.g. `X-Load`).
    #[serde(default)]
    pub load_header: Option<String>,
    /// Seconds after which a load reading is ignored.
    #[serde(default)]
    pub load_max_age: Option<f64>,
    /// Bytes of body read at most.
    #[serde(default)]
    pub max_body: Option<usize>,
}

/// A probe's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKindInput {
    /// GET `url` over HTTP.
    Http,
    /// GET `url` over HTTPS.
    Https,
    /// Connect to `address` over TCP.
    Tcp,
}

/// `initial`: a target's state before its first probe result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitialInput {
    /// Answered until probes say otherwise (the default).
    Up,
    /// Not answered until `rise` consecutive successes.
    Down,
}

/// One entry of `expect_status`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusInput {
    /// One status code, 100–599.
    Code(u16),
    /// An inclusive range such as `"200-299"`.
    Range(String),
}

impl ProbeInput {
    /// `self` laid over `base`: keys set here win.
    pub fn over(&self, base: &ProbeInput) -> ProbeInput {
        ProbeInput {
            kind: self.kind.or(base.kind),
            url: self.url.clone().or_else(|| base.url.clone()),
            address: self.address.clone().or_else(|| base.address.clone()),
            host: self.host.clone().or_else(|| base.host.clone()),
            expect_status: self
                .expect_status
                .clone()
                .or_else(|| base.expect_status.clone()),
            body: self.body.clone().or_else(|| base.body.clone()),
            body_regex: self.body_regex.clone().or_else(|| base.body_regex.clone()),
            headers: self.headers.clone().or_else(|| base.headers.clone()),
            verify_tls: self.verify_tls.or(base.verify_tls),
            interval: self.interval.or(base.interval),
            timeout: self.timeout.or(base.timeout),
            rise: self.rise.or(base.rise),
            fall: self.fall.or(base.fall),
            initial: self.initial.or(base.initial),
            load_json: self.load_json.clone().or_else(|| base.load_json.clone()),
            load_header: self
                .load_header
                .clone()
                .or_else(|| base.load_header.clone()),
            load_max_age: self.load_max_age.or(base.load_max_age),
            max_body: self.max_body.or(base.max_body),
        }
    }
}

fn default_weight() -> u32 {
    100
}

/// `policy`: a standard chain by name (an explicit `chain` overrides it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyInput {
    /// Nearest eligible regions first: `geo, eligible`.
    #[default]
    Proximity,
    /// The listed order, backups last: `priority, eligible`.
    Priority,
    /// Same as `priority`.
    Failover,
    /// Weighted random among the client's allowed regions: `geo, eligible, weighted`.
    Weighted,
    /// Lowest score first: `geo, eligible, score`.
    Score,
    /// Rendezvous hashing of the client network: `geo, eligible, sticky`.
    Sticky,
}

/// `score = { … }`: weights of the normalised terms.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreInput {
    /// Weight of the distance from the client, ≥ 0. Default 0.
    #[serde(default)]
    pub distance: Option<f64>,
    /// Weight of the RTT moving average, ≥ 0. Default 0.5.
    #[serde(default)]
    pub latency: Option<f64>,
    /// Weight of the load reading, ≥ 0. Default 0.3.
    #[serde(default)]
    pub load: Option<f64>,
    /// Weight of the region's cost, ≥ 0. Default 0.2.
    #[serde(default)]
    pub cost: Option<f64>,
}

/// `shed_load = { low = 0.8, high = 0.95 }`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShedInput {
    /// Load (a fraction of capacity) up to which a region keeps all its clients; 0 ≤ low < high.
    pub low: f64,
    /// Load at which a region sheds every client that can go elsewhere.
    pub high: f64,
    /// How many following candidates may receive a shed client. Default 3.
    #[serde(default)]
    pub spill: Option<usize>,
}

/// `[[expect]]`: a decision the zone promises, checked by `gslbd check`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectInput {
    /// The service (relative owner name, e.g. `www`).
    pub service: String,
    /// Client address or network, e.g. `81.2.3.0/24`.
    pub client: String,
    /// `A` (default) or `AAAA`.
    #[serde(default, rename = "type")]
    pub rtype: Option<String>,
    /// Regions assumed down for this case.
    #[serde(default)]
    pub down: Vec<String>,
    /// Loads assumed, region → fraction.
    #[serde(default)]
    pub load: IndexMap<String, f64>,
    /// The regions the answer must name, in order.
    pub regions: Vec<String>,
}

/// `[services.<name>]`: one steered name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    /// Regions this service may answer with. Default: every region of the zone.
    #[serde(default)]
    pub regions: Option<Vec<String>>,
    /// The standard chain, unless `chain` is given. Default `proximity`.
    #[serde(default)]
    pub policy: PolicyInput,
    /// TTL of steered answers, seconds. Default 30.
    #[serde(default = "default_service_ttl")]
    pub ttl: u32,
    /// How many regions to answer with. Default 1.
    #[serde(default = "default_answers")]
    pub answers: u32,
    /// Geo rules for this service only; they win over the zone's `[geo]`.
    #[serde(default)]
    pub geo: Option<GeoRulesInput>,
    /// When no region is eligible: `all` (default), `first`, `fallback` or `nodata`.
    #[serde(default)]
    pub all_down: AllDownInput,
    /// With `all_down = "fallback"`: answer this region's VIPs…
    #[serde(default)]
    pub fallback_region: Option<String>,
    /// …or a CNAME to this name.
    #[serde(default)]
    pub fallback_cname: Option<String>,
    /// TTL while the answer is degraded (failover in effect). Default `ttl / 2`.
    #[serde(default)]
    pub degraded_ttl: Option<u32>,
    /// An explicit chain of steps, overriding `policy`: e.g. `["geo", "eligible", "shed", "sticky"]`.
    #[serde(default)]
    pub chain: Option<Vec<String>>,
    /// Score weights (policy `score`). Default latency 0.5, load 0.3, cost 0.2, distance 0.
    #[serde(default)]
    pub score: Option<ScoreInput>,
    /// Load shedding watermarks; adds a `shed` step to the policy's chain.
    #[serde(default)]
    pub shed_load: Option<ShedInput>,
    /// Network lengths hashed by `sticky` and `shed`, `[ipv4, ipv6]`. Default `[24, 56]`.
    #[serde(default)]
    pub hash_prefix: Option<[u8; 2]>,
    /// Answer `_explain.<name> TXT` with the decision. Default false.
    #[serde(default)]
    pub explain_txt: bool,
    /// Lower the TTL to the time until a probe could change the answer. Default: the server's
    /// `health.ttl_follows_probes` (false): answers carry the TTL written.
    #[serde(default)]
    pub ttl_follows_probes: Option<bool>,
    /// `use` (default): locate clients by their ECS subnet; `ignore`: by the resolver's address
    /// (the answer then does not depend on the ECS option: scope 0), like gdnsd's `ignore_ecs`.
    #[serde(default)]
    pub ecs: EcsUseInput,
}

/// `ecs = "use" | "ignore"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EcsUseInput {
    /// Locate by the ECS subnet when the query has one.
    #[default]
    Use,
    /// Locate by the resolver's address.
    Ignore,
}

/// `all_down`: what a service answers when none of its regions is eligible.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllDownInput {
    /// Fail open: answer every region of the service (Route 53's behaviour).
    #[default]
    All,
    /// Fail open: answer the first region of the client's order (gdnsd's behaviour).
    First,
    /// Answer `fallback_region` or `fallback_cname`.
    Fallback,
    /// NOERROR with no answer and the SOA.
    Nodata,
}

fn default_service_ttl() -> u32 {
    30
}
fn default_answers() -> u32 {
    1
}

/// Operator geo rules, checked before the database, most specific first:
/// `networks` (longest prefix wins) → `countries` → `continents` → database → `default`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoRulesInput {
    /// CIDR → ordered region list.
    #[serde(default)]
    pub networks: BTreeMap<String, Vec<String>>,
    /// Autonomous system number (`"AS64500"` or `"64500"`) → ordered region list; needs
    /// `asn_geodata`.
    #[serde(default)]
    pub asns: BTreeMap<String, Vec<String>>,
    /// ISO 3166-2 subdivision code (`"US-CA"`) → ordered region list.
    #[serde(default)]
    pub subdivisions: BTreeMap<String, Vec<String>>,
    /// ISO 3166-1 alpha-2 country code → ordered region list.
    #[serde(default)]
    pub countries: BTreeMap<String, Vec<String>>,
    /// Continent code (AF AN AS EU NA OC SA) → ordered region list.
    #[serde(default)]
    pub continents: BTreeMap<String, Vec<String>>,
    /// For addresses the database does not know (or has no coordinates for).
    #[serde(default)]
    pub default: Option<GeoDefaultInput>,
}

/// `default` of the geo rules: give `location` or `regions`, not both; with neither, clients the
/// database cannot place get the service's listed order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoDefaultInput {
    /// Locate unknown clients here, `[latitude, longitude]`.
    #[serde(default)]
    pub location: Option<[f64; 2]>,
    /// Or answer unknown clients with this ordered region list.
    #[serde(default)]
    pub regions: Option<Vec<String>>,
}
