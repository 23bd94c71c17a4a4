//! The server config: where to listen, where the zones and the geodata are, how to log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::diag::{Diagnostics, from_toml_error, line_of};

/// `gslbd.toml` as written. Relative paths are relative to the file's own directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfigInput {
    /// DNS listen addresses; each serves UDP and TCP. IPv4 and IPv6 alike.
    pub listen: Spanned<Vec<String>>,
    /// UDP queries to the `listen` addresses that arrive on one interface are answered from
    /// AF_XDP sockets (feature `xdp`). None: sockets only.
    #[serde(default)]
    pub listen_xdp: Option<Spanned<ListenXdpInput>>,
    /// Directory of zone files (`*.toml`, one zone each).
    #[serde(default = "default_zones")]
    pub zones: String,
    /// MaxMind DB (GeoIP2/GeoLite2 City or Country, DB-IP City Lite) used to locate clients,
    /// or a pair `[IPv4 file, IPv6 file]`. Optional: without it every client gets the zone's
    /// `[geo.default]`.
    #[serde(default)]
    pub geodata: Option<GeodataInput>,
    /// An ASN database in MaxMind format (GeoLite2-ASN, or `gslbd geodata build --asn`), for
    /// `asns` geo rules.
    #[serde(default)]
    pub asn_geodata: Option<String>,
    /// Started as root: once every socket is bound, become this user (name or uid).
    #[serde(default)]
    pub user: Option<String>,
    /// `[dns]`: protocol limits, NSID and cookies.
    #[serde(default)]
    pub dns: DnsInput,
    /// `[log]`: level, format and the query log.
    #[serde(default)]
    pub log: LogInput,
    /// `[health]`: probe defaults, the override state file and health-aware TTLs.
    #[serde(default)]
    pub health: HealthInput,
    /// `[admin]`: the HTTP API and zone directory watching.
    #[serde(default)]
    pub admin: AdminInput,
    /// `[rrl]`: response rate limiting; absent means off.
    #[serde(default)]
    pub rrl: Option<RrlInput>,
    /// `[cluster]`: a fleet coordinated through etcd. None: standalone.
    #[serde(default)]
    pub cluster: Option<super::cluster::ClusterInput>,
}

/// `listen_xdp = { interface = "eth0", queues = [0, 1], mode = "auto" }`: an XDP program on the
/// interface hands UDP datagrams for the `listen` addresses to AF_XDP sockets, one per receive
/// queue, answered by a thread each; everything else (TCP, other ports, fragments…) goes on to
/// the kernel and the `listen` sockets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenXdpInput {
    /// The network interface, e.g. `eth0`.
    pub interface: String,
    /// The receive queues to answer on (`ethtool -l`: usually one per CPU). Default `[0]`.
    #[serde(default = "default_xdp_queues")]
    pub queues: Vec<u32>,
    /// How the program is attached. Default `auto`.
    #[serde(default)]
    pub mode: XdpMode,
}

fn default_xdp_queues() -> Vec<u32> {
    vec![0]
}

/// `listen_xdp.mode`: where the XDP program runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// In the driver when it supports XDP, else generic (`auto`, the default).
    #[default]
    Auto,
    /// In the driver, or fail (`native`).
    Native,
    /// After the kernel has built its socket buffer: any interface, slower (`generic`).
    Generic,
}

/// The most receive queues `listen_xdp` can name (the XDP program's socket map).
pub const XDP_MAX_QUEUES: u32 = 256;

/// The validated `listen_xdp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenXdp {
    /// The interface name (1–15 bytes, no `/`, white space or NUL).
    pub interface: String,
    /// Receive queues, each below [`XDP_MAX_QUEUES`], without repeats; never empty.
    pub queues: Vec<u32>,
    /// How the program is attached.
    pub mode: XdpMode,
}

/// `geodata`: one file for both address families, or `[IPv4 file, IPv6 file]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum GeodataInput {
    /// One database for every address.
    One(String),
    /// A pair of single-family files, IPv4 first.
    Pair(Vec<String>),
}

/// `[rrl]`: response rate limiting per client network. Off unless the table is present and
/// `enabled = true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrlInput {
    /// Turns limiting on; the other keys are ignored (and not checked) while this is false.
    /// Default false.
    #[serde(default)]
    pub enabled: bool,
    /// Responses per second per client network. Default 20.
    #[serde(default)]
    pub responses_per_second: Option<u32>,
    /// Every Nth limited response goes out truncated; 0 drops all. Default 2.
    #[serde(default)]
    pub slip: Option<u32>,
    /// Client network lengths, `[ipv4, ipv6]`. Default `[24, 56]`.
    #[serde(default)]
    pub prefix: Option<[u8; 2]>,
    /// Networks never limited.
    #[serde(default)]
    pub exempt: Vec<String>,
}

/// `[admin]`: the HTTP API, metrics and status page.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminInput {
    /// Listen address, e.g. `127.0.0.1:8053`. Default: no admin server.
    #[serde(default)]
    pub listen: Option<String>,
    /// Bearer token for changes (overrides, load, reload). Without one, changes are refused.
    #[serde(default)]
    pub token: Option<String>,
    /// Or read the token from this file (first line).
    #[serde(default)]
    pub token_file: Option<String>,
    /// Watch the zones directory and reload on change. Default true.
    #[serde(default)]
    pub watch: Option<bool>,
}

/// `[health]`: probe defaults and state handling. Zone files may override the probe keys per
/// region and per VIP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthInput {
    /// `[health.probe]`: probe defaults (`interval`, `timeout`, `rise`, `fall`, `initial`,
    /// `verify_tls`, `expect_status`, `load_*`, `max_body`, …), the same keys as a zone file's
    /// `probe`, laid under every region's.
    #[serde(default)]
    pub probe: super::zonefile::ProbeInput,
    /// Where operator overrides persist (TOML). Default: none (overrides do not survive restarts).
    #[serde(default)]
    pub state_file: Option<String>,
    /// Lowest TTL a health-aware TTL cap may produce, seconds. Default 5.
    #[serde(default)]
    pub min_ttl: Option<u32>,
    /// Half-life of the RTT moving average, seconds. Default 30.
    #[serde(default)]
    pub rtt_half_life: Option<f64>,
    /// Random jitter of each probe interval, as a fraction (0–0.5). Default 0.1.
    #[serde(default)]
    pub jitter: Option<f64>,
    /// Services lower their TTL to the next probe that could change the answer (opt-in).
    #[serde(default)]
    pub ttl_follows_probes: bool,
}

/// `[dns]`: protocol limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsInput {
    /// Largest UDP response we send to an EDNS client (bytes, 512–4096). Default 1232, the DNS
    /// flag day 2020 value that avoids IP fragmentation.
    #[serde(default = "default_udp_payload")]
    pub udp_payload: u16,
    /// Seconds a TCP connection may stay idle between queries (1–300). Default 10.
    #[serde(default = "default_tcp_timeout")]
    pub tcp_timeout: u64,
    /// Worker threads, one single-threaded runtime each with its own SO_REUSEPORT UDP socket.
    /// 0 (default) means one per CPU core.
    #[serde(default)]
    pub workers: usize,
    /// Open TCP connections at most, in all. Default 1024.
    #[serde(default = "default_tcp_max")]
    pub tcp_max_connections: u32,
    /// Open TCP connections at most per client address. Default 16.
    #[serde(default = "default_tcp_per_source")]
    pub tcp_max_per_source: u32,
    /// Queries answered on one TCP connection before it is closed. Default 1000.
    #[serde(default = "default_tcp_queries")]
    pub tcp_max_queries: u32,
    /// Name server identifier sent to clients that ask with NSID (RFC 5001): a string, or
    /// `"hostname"` for the machine's host name. Off by default.
    #[serde(default)]
    pub nsid: Option<String>,
    /// Answer DNS Cookies (RFC 7873). Default true.
    #[serde(default = "default_true")]
    pub cookies: bool,
    /// Server cookie secrets, 32 hex digits each: the first makes cookies, all are accepted.
    /// Default: one random secret drawn at start.
    #[serde(default)]
    pub cookie_secrets: Vec<String>,
}

fn default_true() -> bool {
    true
}

fn default_tcp_max() -> u32 {
    1024
}
fn default_tcp_per_source() -> u32 {
    16
}
fn default_tcp_queries() -> u32 {
    1000
}

impl Default for DnsInput {
    fn default() -> Self {
        Self {
            udp_payload: default_udp_payload(),
            tcp_timeout: default_tcp_timeout(),
            workers: 0,
            tcp_max_connections: default_tcp_max(),
            tcp_max_per_source: default_tcp_per_source(),
            tcp_max_queries: default_tcp_queries(),
            nsid: None,
            cookies: true,
            cookie_secrets: Vec::new(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogInput {
    /// A tracing filter: `info`, `debug`, `gslbd=debug,info`… Default `info`.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// `text` (default) or `json` (one object per line).
    #[serde(default)]
    pub format: LogFormat,
    /// One line per query (client, ECS, decision, answer, rcode, time) at INFO on target
    /// `gslbd::query`. Default false.
    #[serde(default)]
    pub query_log: bool,
}

impl Default for LogInput {
    fn default() -> Self {
        Self {
            level: default_log_level(),
            format: LogFormat::Text,
            query_log: false,
        }
    }
}

/// `log.format`: how log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (`text`, the default).
    #[default]
    Text,
    /// One JSON object per line (`json`), for log collectors.
    Json,
}

fn default_zones() -> String {
    "zones".into()
}
fn default_udp_payload() -> u16 {
    1232
}
fn default_tcp_timeout() -> u64 {
    10
}
fn default_log_level() -> String {
    "info".into()
}

/// The validated server config.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The file this was read from; `<built-in>` for [`ServerConfig::for_zones`].
    pub file: PathBuf,
    /// DNS listen addresses, each served over UDP and TCP. Never empty once validated.
    pub listen: Vec<SocketAddr>,
    /// Answer UDP to `listen` arriving on this interface from AF_XDP sockets (feature `xdp`).
    pub listen_xdp: Option<ListenXdp>,
    /// Directory of zone files, resolved against the config file's directory.
    pub zones_dir: PathBuf,
    /// The MaxMind DB that locates clients, resolved like `zones_dir`; `None`: every client gets
    /// its zone's `[geo.default]`. With `geodata_v6`, the IPv4 file of a pair.
    pub geodata: Option<PathBuf>,
    /// The IPv6 file of a `geodata = [v4, v6]` pair.
    pub geodata_v6: Option<PathBuf>,
    /// The ASN database (`asn_geodata`), for `asns` rules.
    pub asn_geodata: Option<PathBuf>,
    /// The user to become once every socket is bound (`user`); `None`: stay who we are.
    pub user: Option<String>,
    /// Largest UDP response sent to an EDNS client, bytes (512–4096).
    pub udp_payload: u16,
    /// How long a TCP connection may stay idle between queries (1–300 s).
    pub tcp_timeout: std::time::Duration,
    /// DNS worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// The tracing filter (`info`, `gslbd=debug,info`…), already checked to parse.
    pub log_level: String,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// Log one line per query on target `gslbd::query`.
    pub query_log: bool,
    /// `[health]` with its defaults filled in.
    pub health: HealthDefaults,
    /// Where the admin HTTP server listens; `None`: no admin server.
    pub admin_listen: Option<SocketAddr>,
    /// Bearer token for admin changes (at least 16 characters); `None`: changes are refused.
    pub admin_token: Option<String>,
    /// Watch `zones_dir` and reload when it changes.
    pub watch: bool,
    /// Limits on TCP clients.
    pub tcp_limits: TcpLimits,
    /// Response rate limiting, when enabled.
    pub rrl: Option<RrlConfig>,
    /// NSID payload (RFC 5001), when configured.
    pub nsid: Option<Vec<u8>>,
    /// Server cookie secrets when cookies are on (empty: a random one), `None` when off.
    pub cookie_secrets: Option<Vec<[u8; 16]>>,
    /// The fleet this instance belongs to; `None`: standalone.
    pub cluster: Option<super::cluster::ClusterConfig>,
}

/// Health settings from the server config, validated.
#[derive(Debug, Clone)]
pub struct HealthDefaults {
    /// Probe defaults laid under every zone file probe.
    pub probe: super::zonefile::ProbeInput,
    /// Where operator overrides persist, resolved against the config file's directory;
    /// `None`: overrides do not survive a restart.
    pub state_file: Option<PathBuf>,
    /// Lowest TTL a health-aware TTL cap may produce, seconds (at most 3600); copied into
    /// every service.
    pub min_ttl: u32,
    /// Half-life of the RTT moving average (0.1–3600 s).
    pub rtt_half_life: std::time::Duration,
    /// Random jitter of each probe interval, as a fraction of it (0–0.5).
    pub jitter: f64,
    /// Services lower their TTL to the time until a probe could change the answer, unless a
    /// service says otherwise (`health.ttl_follows_probes`, default false).
    pub ttl_follows_probes: bool,
}

impl Default for HealthDefaults {
    fn default() -> Self {
        Self {
            probe: Default::default(),
            state_file: None,
            min_ttl: 5,
            rtt_half_life: std::time::Duration::from_secs(30),
            ttl_follows_probes: false,
            jitter: 0.1,
        }
    }
}

impl ServerConfig {
    /// A config for tests and embedding: the given zones, no geodata, defaults elsewhere.
    pub fn for_zones(zones_dir: impl Into<PathBuf>, listen: Vec<SocketAddr>) -> Self {
        Self {
            file: PathBuf::from("<built-in>"),
            listen,
            listen_xdp: None,
            zones_dir: zones_dir.into(),
            geodata: None,
            geodata_v6: None,
            asn_geodata: None,
            user: None,
            udp_payload: default_udp_payload(),
            tcp_timeout: std::time::Duration::from_secs(default_tcp_timeout()),
            workers: 1,
            log_level: default_log_level(),
            log_format: LogFormat::Text,
            query_log: false,
            health: HealthDefaults::default(),
            admin_listen: None,
            admin_token: None,
            watch: false,
            tcp_limits: TcpLimits::default(),
            rrl: None,
            nsid: None,
            cookie_secrets: Some(Vec::new()),
            cluster: None,
        }
    }
}

/// Reads and validates `gslbd.toml`.
pub fn load_server_config(file: &Path) -> Result<ServerConfig, Diagnostics> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Diagnostics::one(file, None, format!("cannot read: {e}")))?;
    parse_server_config(file, &text)
}

/// Parses and validates server config text (`file` names it in errors).
///
/// Two rounds, as before the split: the checks that cannot depend on each other (listen, `[dns]`
/// ranges, `[log]`, `[health]`) all report together; then admin, RRL, TCP limits, NSID and
/// cookies stop at their first mistake, in that order.
pub fn parse_server_config(file: &Path, text: &str) -> Result<ServerConfig, Diagnostics> {
    let input: ServerConfigInput =
        toml::from_str(text).map_err(|e| Diagnostics(vec![from_toml_error(file, text, &e)]))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let resolve = |p: &str| resolve_path(base, p);

    let mut diags = Diagnostics::default();
    let listen = check_listen(file, text, &input.listen, &mut diags);
    let listen_xdp = input
        .listen_xdp
        .as_ref()
        .and_then(|x| check_listen_xdp(file, text, x, &mut diags));
    check_dns_ranges(file, &input.dns, &mut diags);
    check_log(file, &input.log, &mut diags);
    let health = check_health(file, &input.health, resolve, &mut diags);
    // `health` is `None` only when it reported a mistake, so `diags` is not empty then.
    let (true, Some(health)) = (diags.is_empty(), health) else {
        return Err(diags);
    };

    let at_file = |msg: String| Diagnostics::one(file, None, msg);
    let admin_listen = admin_listen(&input.admin).map_err(at_file)?;
    let admin_token = admin_token(&input.admin, resolve).map_err(at_file)?;
    let rrl = rrl_config(input.rrl.as_ref()).map_err(at_file)?;
    let tcp_limits = tcp_limits(&input.dns).map_err(at_file)?;
    let nsid = nsid(input.dns.nsid.as_deref()).map_err(at_file)?;
    let cookie_secrets = cookie_secrets(&input.dns).map_err(at_file)?;
    let (geodata, geodata_v6) = match &input.geodata {
        None => (None, None),
        Some(GeodataInput::One(p)) => (Some(resolve(p)), None),
        Some(GeodataInput::Pair(v)) => match v.as_slice() {
            [a, b] => (Some(resolve(a)), Some(resolve(b))),
            _ => {
                return Err(at_file(format!(
                    "geodata: give one file, or two: [\"IPv4 file\", \"IPv6 file\"] (got {})",
                    v.len()
                )));
            }
        },
    };
    let cluster = match &input.cluster {
        Some(c) => Some(super::cluster::compile(c, base).map_err(at_file)?),
        None => None,
    };
    Ok(ServerConfig {
        file: file.to_path_buf(),
        listen,
        listen_xdp,
        zones_dir: resolve(&input.zones),
        geodata,
        geodata_v6,
        asn_geodata: input.asn_geodata.as_deref().map(resolve),
        user: input.user.clone(),
        udp_payload: input.dns.udp_payload,
        tcp_timeout: std::time::Duration::from_secs(input.dns.tcp_timeout),
        workers: input.dns.workers,
        log_level: input.log.level,
        log_format: input.log.format,
        query_log: input.log.query_log,
        health,
        admin_listen,
        admin_token,
        watch: input.admin.watch.unwrap_or(true),
        tcp_limits,
        rrl,
        nsid,
        cookie_secrets,
        cluster,
    })
}

/// `p` as written when absolute, else relative to `base` (the config file's directory).
pub(super) fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// `listen`: every address `IP:port`, and at least one. Mistakes name the `listen` line.
fn check_listen(
    file: &Path,
    text: &str,
    listen: &Spanned<Vec<String>>,
    diags: &mut Diagnostics,
) -> Vec<SocketAddr> {
    let line = line_of(text, listen.span().start);
    let mut out = Vec::new();
    for a in listen.get_ref() {
        match a.parse::<SocketAddr>() {
            Ok(sa) => out.push(sa),
            Err(_) => diags.push(super::Diagnostic::new(
                file,
                Some(line),
                format!("listen address {a:?} is not IP:port (IPv6 as [addr]:port)"),
            )),
        }
    }
    if listen.get_ref().is_empty() {
        diags.push(super::Diagnostic::new(file, Some(line), "listen is empty"));
    }
    out
}

/// `listen_xdp`: a plausible interface name and distinct queues in range, in a build with the
/// `xdp` feature. Whether the interface and its queues exist is found out at start.
fn check_listen_xdp(
    file: &Path,
    text: &str,
    xdp: &Spanned<ListenXdpInput>,
    diags: &mut Diagnostics,
) -> Option<ListenXdp> {
    let line = line_of(text, xdp.span().start);
    let before = diags.len();
    let mut problem = |msg: String| diags.push(super::Diagnostic::new(file, Some(line), msg));
    if !cfg!(feature = "xdp") {
        problem(
            "listen_xdp: this gslbd was built without XDP support (cargo feature `xdp`); \
             remove listen_xdp or build with --features xdp"
                .to_string(),
        );
        return None;
    }
    let x = xdp.get_ref();
    let name = &x.interface;
    // Linux interface names: at most IFNAMSIZ - 1 bytes, no slash, white space or NUL.
    if name.is_empty()
        || name.len() > 15
        || name
            .chars()
            .any(|c| c == '/' || c == '\0' || c.is_whitespace())
    {
        problem(format!(
            "listen_xdp.interface {name:?} is not an interface name (1 to 15 bytes, no '/', white space or NUL)"
        ));
    }
    if x.queues.is_empty() {
        problem("listen_xdp.queues is empty".to_string());
    }
    for (i, q) in x.queues.iter().enumerate() {
        if *q >= XDP_MAX_QUEUES {
            problem(format!(
                "listen_xdp.queues: {q} is not below {XDP_MAX_QUEUES}"
            ));
        } else if x.queues[..i].contains(q) {
            problem(format!("listen_xdp.queues: {q} is listed twice"));
        }
    }
    (diags.len() == before).then(|| ListenXdp {
        interface: name.clone(),
        queues: x.queues.clone(),
        mode: x.mode,
    })
}

/// `[dns]`: the UDP payload and TCP idle timeout ranges.
fn check_dns_ranges(file: &Path, dns: &DnsInput, diags: &mut Diagnostics) {
    if !(512..=4096).contains(&dns.udp_payload) {
        diags.push(super::Diagnostic::new(
            file,
            None,
            format!("dns.udp_payload {} is outside 512–4096", dns.udp_payload),
        ));
    }
    if !(1..=300).contains(&dns.tcp_timeout) {
        diags.push(super::Diagnostic::new(
            file,
            None,
            format!(
                "dns.tcp_timeout {} is outside 1–300 seconds",
                dns.tcp_timeout
            ),
        ));
    }
}

/// `[log]`: the level must be a filter `tracing_subscriber` accepts.
fn check_log(file: &Path, log: &LogInput, diags: &mut Diagnostics) {
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log.level) {
        diags.push(super::Diagnostic::new(
            file,
            None,
            format!("log.level {:?} is not a valid filter: {e}", log.level),
        ));
    }
}

/// `[health]` with its defaults filled in, or `None` after reporting what is out of range.
fn check_health(
    file: &Path,
    h: &HealthInput,
    resolve: impl Fn(&str) -> PathBuf,
    diags: &mut Diagnostics,
) -> Option<HealthDefaults> {
    let before = diags.len();
    let jitter = h.jitter.unwrap_or(0.1);
    if !(0.0..=0.5).contains(&jitter) {
        diags.push(super::Diagnostic::new(
            file,
            None,
            format!("health.jitter {jitter} is outside 0–0.5"),
        ));
    }
    let half_life = h.rtt_half_life.unwrap_or(30.0);
    if !(half_life.is_finite() && (0.1..=3600.0).contains(&half_life)) {
        diags.push(super::Diagnostic::new(
            file,
            None,
            format!("health.rtt_half_life {half_life} is outside 0.1–3600 seconds"),
        ));
    }
    let min_ttl = h.min_ttl.unwrap_or(5);
    if min_ttl > 3600 {
        diags.push(super::Diagnostic::new(
            file,
            None,
            format!("health.min_ttl {min_ttl} is above 3600"),
        ));
    }
    if let Err(e) = super::probe::check_defaults(&h.probe) {
        diags.push(super::Diagnostic::new(file, None, format!("health: {e}")));
    }
    // Only a checked half-life reaches `from_secs_f64`, which panics on negative or huge input.
    (diags.len() == before).then(|| HealthDefaults {
        probe: h.probe.clone(),
        state_file: h.state_file.as_deref().map(resolve),
        min_ttl,
        rtt_half_life: std::time::Duration::from_secs_f64(half_life),
        jitter,
        ttl_follows_probes: h.ttl_follows_probes,
    })
}

/// `admin.listen`, when set, as `IP:port`.
fn admin_listen(admin: &AdminInput) -> Result<Option<SocketAddr>, String> {
    match &admin.listen {
        Some(a) => match a.parse::<SocketAddr>() {
            Ok(sa) => Ok(Some(sa)),
            Err(_) => Err(format!("admin.listen {a:?} is not IP:port")),
        },
        None => Ok(None),
    }
}

/// The admin token from `admin.token` or the first line of `admin.token_file` (one of them),
/// trimmed; at least 16 characters.
fn admin_token(
    admin: &AdminInput,
    resolve: impl Fn(&str) -> PathBuf,
) -> Result<Option<String>, String> {
    let token = match (&admin.token, &admin.token_file) {
        (Some(t), None) => Some(t.trim().to_string()),
        (None, Some(f)) => match std::fs::read_to_string(resolve(f)) {
            Ok(t) => t.lines().next().map(|l| l.trim().to_string()),
            Err(e) => return Err(format!("admin.token_file {f}: {e}")),
        },
        (Some(_), Some(_)) => return Err("admin: token or token_file, not both".into()),
        (None, None) => None,
    };
    if token.as_ref().is_some_and(|t| t.len() < 16) {
        return Err("admin.token must be at least 16 characters".into());
    }
    Ok(token)
}

/// `[rrl]` with its defaults filled in; `None` when absent or not enabled.
fn rrl_config(rrl: Option<&RrlInput>) -> Result<Option<RrlConfig>, String> {
    let Some(r) = rrl.filter(|r| r.enabled) else {
        return Ok(None);
    };
    let mut exempt = Vec::new();
    for e in &r.exempt {
        match e.parse::<ipnet::IpNet>() {
            Ok(n) => exempt.push(n.trunc()),
            Err(_) => return Err(format!("rrl.exempt {e:?} is not a CIDR network")),
        }
    }
    let [p4, p6] = r.prefix.unwrap_or([24, 56]);
    if p4 > 32 || p6 > 128 {
        return Err(format!("rrl.prefix [{p4}, {p6}] is beyond [32, 128]"));
    }
    let rate = r.responses_per_second.unwrap_or(20);
    if rate == 0 {
        return Err("rrl.responses_per_second must be at least 1".into());
    }
    Ok(Some(RrlConfig {
        responses_per_second: rate,
        slip: r.slip.unwrap_or(2),
        ipv4_prefix: p4,
        ipv6_prefix: p6,
        exempt,
    }))
}

/// `[dns]` tcp_max_*: each at least 1.
fn tcp_limits(dns: &DnsInput) -> Result<TcpLimits, String> {
    if dns.tcp_max_connections == 0 || dns.tcp_max_per_source == 0 || dns.tcp_max_queries == 0 {
        return Err(
            "dns.tcp_max_connections, tcp_max_per_source and tcp_max_queries must be at least 1"
                .into(),
        );
    }
    Ok(TcpLimits {
        max_connections: dns.tcp_max_connections,
        max_per_source: dns.tcp_max_per_source,
        max_queries: dns.tcp_max_queries,
    })
}

/// `dns.nsid` as the bytes to send: the host name for `"hostname"`, else the string itself
/// (1 to 512 bytes).
fn nsid(nsid: Option<&str>) -> Result<Option<Vec<u8>>, String> {
    match nsid {
        None => Ok(None),
        Some("hostname") => Ok(Some(hostname().into_bytes())),
        Some(s) if s.is_empty() || s.len() > 512 => {
            Err("dns.nsid must be 1 to 512 bytes (or \"hostname\")".into())
        }
        Some(s) => Ok(Some(s.as_bytes().to_vec())),
    }
}

/// `dns.cookie_secrets` parsed (each is checked even when cookies are off); `None` when
/// `dns.cookies = false`.
fn cookie_secrets(dns: &DnsInput) -> Result<Option<Vec<[u8; 16]>>, String> {
    let mut secrets = Vec::new();
    for s in &dns.cookie_secrets {
        match parse_secret(s) {
            Some(k) => secrets.push(k),
            None => {
                return Err("dns.cookie_secrets: each secret is 32 hex digits (16 bytes)".into());
            }
        }
    }
    Ok(dns.cookies.then_some(secrets))
}

/// The machine's host name (for `dns.nsid = "hostname"`), or `localhost` when unknown.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Limits on TCP clients (`[dns]` tcp_max_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Open TCP connections at most, in all; at the limit the idlest one is asked to close.
    pub max_connections: u32,
    /// Open TCP connections at most per client address; at the limit that client's idlest one
    /// is asked to close.
    pub max_per_source: u32,
    /// Queries answered on one connection before it is closed.
    pub max_queries: u32,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_per_source: 16,
            max_queries: 1000,
        }
    }
}

/// RRL settings (`[rrl]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RrlConfig {
    /// Responses per second per client network before limiting.
    pub responses_per_second: u32,
    /// Every `slip`-th limited response goes out truncated (TC) so real clients retry over TCP;
    /// the others are dropped. 0: drop them all; 1: truncate them all.
    pub slip: u32,
    /// Length of the IPv4 client network counted as one client (0–32).
    pub ipv4_prefix: u8,
    /// Length of the IPv6 client network counted as one client (0–128).
    pub ipv6_prefix: u8,
    /// Networks never limited (monitoring, known resolvers).
    pub exempt: Vec<ipnet::IpNet>,
}

/// Parses a secret written as 32 hex digits.
pub fn parse_secret(s: &str) -> Option<[u8; 16]> {
    let s = s.trim();
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<ServerConfig, String> {
        let text = format!("listen = [\"127.0.0.1:5300\"]\n{extra}\n");
        parse_server_config(Path::new("/etc/gslbd/gslbd.toml"), &text).map_err(|d| d.to_string())
    }

    #[test]
    fn without_listen_xdp_there_is_none() {
        assert_eq!(parse("").unwrap().listen_xdp, None);
    }

    #[cfg(not(feature = "xdp"))]
    #[test]
    fn listen_xdp_is_refused_by_a_build_without_the_feature_naming_the_key_and_line() {
        let err = parse("listen_xdp = { interface = \"eth0\" }").unwrap_err();
        assert!(err.contains("gslbd.toml: line 2"), "{err}");
        assert!(err.contains("listen_xdp"), "{err}");
        assert!(err.contains("feature `xdp`"), "{err}");
    }

    #[cfg(feature = "xdp")]
    #[test]
    fn listen_xdp_defaults_to_queue_0_and_auto() {
        let c = parse("listen_xdp = { interface = \"veth-b\" }").unwrap();
        assert_eq!(
            c.listen_xdp,
            Some(ListenXdp {
                interface: "veth-b".into(),
                queues: vec![0],
                mode: XdpMode::Auto,
            })
        );
        let c = parse("listen_xdp = { interface = \"eth0\", queues = [3, 1], mode = \"generic\" }")
            .unwrap();
        let x = c.listen_xdp.unwrap();
        assert_eq!((x.queues, x.mode), (vec![3, 1], XdpMode::Generic));
    }

    #[cfg(feature = "xdp")]
    #[test]
    fn listen_xdp_mistakes_name_the_key() {
        for (extra, want) in [
            (
                "listen_xdp = { interface = \"\" }",
                "listen_xdp.interface \"\" is not an interface name",
            ),
            (
                "listen_xdp = { interface = \"a-very-long-name0\" }",
                "is not an interface name",
            ),
            (
                "listen_xdp = { interface = \"a/b\" }",
                "is not an interface name",
            ),
            (
                "listen_xdp = { interface = \"eth0\", queues = [] }",
                "listen_xdp.queues is empty",
            ),
            (
                "listen_xdp = { interface = \"eth0\", queues = [0, 256] }",
                "listen_xdp.queues: 256 is not below 256",
            ),
            (
                "listen_xdp = { interface = \"eth0\", queues = [1, 1] }",
                "listen_xdp.queues: 1 is listed twice",
            ),
            (
                "listen_xdp = { interface = \"eth0\", mode = \"fast\" }",
                "unknown variant",
            ),
            (
                "listen_xdp = { interface = \"eth0\", queue = [0] }",
                "unknown field",
            ),
        ] {
            let err = parse(extra).unwrap_err();
            assert!(err.contains(want), "{extra}: {err}");
            assert!(err.contains("line 2"), "{extra}: {err}");
        }
    }
}
