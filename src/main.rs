//! The `gslbd` command: a thin shell over the library. `anyhow` lives here only.

#![allow(
    clippy::disallowed_methods,
    reason = "the command line stamps `explain` with the current time"
)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gslbd::config::{self, LogFormat};
use tracing::{error, info};

/// gslbd: a GSLB authoritative DNS server. It answers steered names with the VIPs of the
/// nearest healthy data center, located by EDNS Client Subnet or the resolver's address.
#[derive(Parser)]
#[command(name = "gslbd", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve DNS for the configured zones until SIGINT/SIGTERM.
    Serve {
        /// Server config file [default: ./gslbd.toml, else the repository's example]
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Validate the server config, the geodata and every zone file; print each error as
    /// `file: line N: reason` and exit non-zero if there is any.
    ///
    /// With --delegation, also ask each zone's parent for its delegation (NS set and glue),
    /// compare it with the zone and the listen addresses, and ask every listed name server for
    /// the SOA: reports missing or stale glue, lame servers and serial drift.
    Check {
        /// Server config file [default: ./gslbd.toml, else the repository's example]
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Check each zone's delegation from its parent, and every name server it lists.
        #[arg(long)]
        delegation: bool,
        /// With --delegation: a server of the parent zone to ask (IP or IP:port; repeat for
        /// several) [default: the parent's name servers, found through the resolver]
        #[arg(long, value_name = "ADDR")]
        parent: Vec<String>,
        /// With --delegation: the recursive resolver used to find the parent and to resolve
        /// out-of-zone name servers [default: the first nameserver of /etc/resolv.conf]
        #[arg(long, value_name = "ADDR")]
        resolver: Option<String>,
        /// With --delegation: the port the zone's name servers are asked on.
        #[arg(long, default_value_t = 53)]
        ns_port: u16,
    },
    /// Explain the answer a steered name gives a client: where the client is believed to be,
    /// every region with its health, distance, latency, load, cost and score, and why it was
    /// chosen or not. Uses the configured initial health and the state file's overrides.
    Explain {
        /// The steered name, e.g. www.gslb.example
        name: String,
        /// The client: an address (a resolver's) or a network (an ECS subnet), e.g. 81.2.3.0/24
        #[arg(long)]
        client: String,
        /// A or AAAA
        #[arg(long = "type", default_value = "A")]
        qtype: String,
        /// Server config file [default: ./gslbd.toml, else the repository's example]
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set an operator override (or a pinned load) through a running instance's admin API. In
    /// a fleet the instance writes it to etcd, and every instance applies it within a second;
    /// standalone it persists in the instance's state file.
    Override {
        /// `zone/region` or `zone/region/vip`, e.g. gslb.example/eu-west
        target: String,
        /// force-up, force-down, drain or auto; or load=0.42 (pin the region's load) or
        /// load=auto (back to probe readings)
        action: String,
        /// Server config file whose `[admin]` table says where the API listens and its token
        /// [default: ./gslbd.toml, else the repository's example]
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The admin API's base URL instead of the config's `admin.listen`, e.g.
        /// http://127.0.0.1:8053
        #[arg(long)]
        admin: Option<String>,
        /// Return to auto after this long, e.g. 30m or 2h
        #[arg(long = "for", value_name = "DURATION")]
        for_: Option<String>,
        /// Return to auto at this time (RFC 3339, e.g. 2026-12-06T10:00:00Z, or Unix seconds)
        #[arg(long)]
        until: Option<String>,
    },
    /// DNSSEC keys: make them, and print the DS records the parent publishes.
    Dnssec {
        #[command(subcommand)]
        command: DnssecCommand,
    },
    /// Build or inspect geolocation databases (MaxMind DB format).
    Geodata {
        #[command(subcommand)]
        command: GeodataCommand,
    },
}

#[derive(Subcommand)]
enum DnssecCommand {
    /// Make a key: writes K<zone>+<alg>+<tag>.key and .private (BIND's format) and prints the
    /// file stem to put in the zone's `[dnssec] keys`.
    Keygen {
        /// The zone, e.g. gslb.example
        #[arg(long)]
        zone: String,
        /// ecdsap256sha256 (13) or ed25519 (15)
        #[arg(long, default_value = "ecdsap256sha256")]
        algorithm: String,
        /// A key-signing key (flags 257; also what a single combined key is); without it a
        /// zone-signing key (256).
        #[arg(long)]
        ksk: bool,
        /// Directory to write the files in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Print the DS records (SHA-256) of every signed zone's key-signing keys, for the parent;
    /// with --key, of those key files instead (a new KSK's DS goes to the parent before the key
    /// is published: the double-DS rollover).
    Ds {
        /// Server config file [default: ./gslbd.toml, else the repository's example]
        #[arg(short, long, conflicts_with = "key")]
        config: Option<PathBuf>,
        /// A key file (K<zone>+<alg>+<tag>.key, or its stem); repeatable.
        #[arg(long)]
        key: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum GeodataCommand {
    /// Build a .mmdb from CSV: a GeoIP2-City-compatible database by default, a
    /// GeoLite2-ASN-compatible one with --asn.
    ///
    /// City: one CSV with the header
    /// network,city,country_iso_code,continent_code,latitude,longitude and optionally a 7th
    /// column subdivision_code (ISO 3166-2 without the country: CA for US-CA).
    ///
    /// ASN: one or more CSVs in the @ip-location-db/asn layout, no header, rows
    /// start,end,asn,org with inclusive IPv4 or IPv6 ranges, e.g.
    /// `gslbd geodata build --asn asn-ipv4.csv asn-ipv6.csv -o asn.mmdb`.
    Build {
        /// The CSV file; with --asn, one or more, read in order into one database.
        #[arg(required = true, num_args = 1..)]
        csv: Vec<PathBuf>,
        /// Build a GeoLite2-ASN-compatible database from start,end,asn,org rows.
        #[arg(long)]
        asn: bool,
        /// Where to write the database (replaced atomically).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print what a database says about an address: location, country, continent, network.
    Lookup {
        /// The .mmdb file.
        db: PathBuf,
        /// The address to look up.
        ip: IpAddr,
    },
}

/// `./gslbd.toml` when present, else the example at the repository root this binary was built from.
fn default_config() -> PathBuf {
    let here = Path::new("gslbd.toml");
    if here.exists() {
        here.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("gslbd.toml")
    }
}

fn init_logging(level: &str, format: LogFormat) {
    // hickory logs two INFO lines per query; keep it to warnings.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| {
        format!("{level},hickory_server=warn,hickory_net=warn,hickory_proto=warn")
    });
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(&config.unwrap_or_else(default_config)),
        Command::Check {
            config,
            delegation,
            parent,
            resolver,
            ns_port,
        } => {
            let path = config.unwrap_or_else(default_config);
            let code = check(&path);
            if !delegation || code != ExitCode::SUCCESS {
                return code;
            }
            return check_delegation(&path, &parent, resolver.as_deref(), ns_port);
        }
        Command::Geodata { command } => geodata(command),
        Command::Dnssec { command } => dnssec(command),
        Command::Override {
            target,
            action,
            config,
            admin,
            for_,
            until,
        } => set_override(
            &config.unwrap_or_else(default_config),
            &target,
            &action,
            admin.as_deref(),
            (for_.as_deref(), until.as_deref()),
        ),
        Command::Explain {
            name,
            client,
            qtype,
            config,
            json,
        } => explain(
            &config.unwrap_or_else(default_config),
            &name,
            &client,
            &qtype,
            json,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gslbd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `gslbd override TARGET ACTION`: one request to the admin API (token from the config).
fn set_override(
    config: &Path,
    target: &str,
    action: &str,
    admin: Option<&str>,
    timing: (Option<&str>, Option<&str>),
) -> anyhow::Result<()> {
    let cfg = config::load_server_config(config).map_err(|d| anyhow::anyhow!("{d}"))?;
    let base = match (admin, cfg.admin_listen) {
        (Some(a), _) => a.trim_end_matches('/').to_string(),
        (None, Some(addr)) => format!("http://{addr}"),
        (None, None) => anyhow::bail!(
            "{}: no [admin] listen address; give the API with --admin URL",
            config.display()
        ),
    };
    let parts: Vec<&str> = target.trim_matches('/').split('/').collect();
    let (zone, region, vip) = match parts.as_slice() {
        [z, r] => (*z, *r, None),
        [z, r, v] => (*z, *r, Some(*v)),
        _ => anyhow::bail!("target {target:?} is not zone/region or zone/region/vip"),
    };
    let (method, url, body) = match action.strip_prefix("load=") {
        Some(load) => {
            anyhow::ensure!(vip.is_none(), "a load is pinned for a region, not a VIP");
            let value = match load {
                "auto" => serde_json::Value::Null,
                l => serde_json::json!(l.parse::<f64>().with_context(|| format!("load {l:?}"))?),
            };
            (
                reqwest::Method::PUT,
                format!("{base}/v1/regions/{zone}/{region}/load"),
                serde_json::json!({ "load": value }).to_string(),
            )
        }
        None => {
            let path = match vip {
                Some(v) => format!("{zone}/{region}/vips/{v}/{action}"),
                None => format!("{zone}/{region}/{action}"),
            };
            let query = match timing {
                (Some(d), None) => format!("?for={d}"),
                (None, Some(t)) => format!("?until={t}"),
                (None, None) => String::new(),
                (Some(_), Some(_)) => anyhow::bail!("--for or --until, not both"),
            };
            (
                reqwest::Method::POST,
                format!("{base}/v1/regions/{path}{query}"),
                String::new(),
            )
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, text) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        let mut req = client.request(method, &url).body(body);
        if let Some(t) = &cfg.admin_token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status();
        Ok::<_, reqwest::Error>((status, resp.text().await.unwrap_or_default()))
    })?;
    anyhow::ensure!(status.is_success(), "{url}: {status}: {text}");
    println!("{text}");
    Ok(())
}

/// `IP` or `IP:port` (port 53 by default).
fn server_addr(s: &str) -> anyhow::Result<std::net::SocketAddr> {
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    let ip: IpAddr = s
        .parse()
        .map_err(|_| anyhow::anyhow!("{s:?} is not an address (IP or IP:port)"))?;
    Ok(std::net::SocketAddr::new(ip, 53))
}

fn check_delegation(
    path: &Path,
    parents: &[String],
    resolver: Option<&str>,
    ns_port: u16,
) -> ExitCode {
    let run = || -> anyhow::Result<bool> {
        let l = config::load_all(path).map_err(|d| anyhow::anyhow!("{d}"))?;
        let opts = gslbd::delegation::Options {
            parents: parents
                .iter()
                .map(|p| server_addr(p))
                .collect::<anyhow::Result<_>>()?,
            resolver: resolver.map(server_addr).transpose()?,
            ns_port,
            ..Default::default()
        };
        let findings = gslbd::delegation::check(&l.zones, &l.config.listen, &opts);
        for f in &findings {
            println!("{f}");
        }
        let errors = findings
            .iter()
            .filter(|f| f.level == gslbd::delegation::Level::Error)
            .count();
        let warnings = findings
            .iter()
            .filter(|f| f.level == gslbd::delegation::Level::Warning)
            .count();
        println!("delegation: {errors} error(s), {warnings} warning(s)");
        Ok(errors == 0)
    };
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("gslbd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What `check` and `explain` answer from: a load's catalog, with counters nobody reads.
fn catalog(l: config::Loaded) -> gslbd::served::Catalog {
    gslbd::dns::catalog(l.zones, l.maps, l.geo, &gslbd::metrics::Registry::default())
}

fn check(path: &Path) -> ExitCode {
    match config::load_all(path) {
        Ok(l) => {
            let l = catalog(l);
            let failed = gslbd::explain::check_expectations(&l);
            let cases: usize = l.zones.iter().map(|z| z.expects.len()).sum();
            if !failed.is_empty() {
                for d in &failed {
                    eprintln!("{d}");
                }
                eprintln!("{} of {} expectation(s) failed", failed.len(), cases);
                return ExitCode::FAILURE;
            }
            let services: usize = l.zones.iter().map(|z| z.services.len()).sum();
            println!(
                "{}: ok: {} zone(s), {} region(s), {} service(s), {} expectation(s) met",
                path.display(),
                l.zones.len(),
                l.region_count(),
                services,
                cases
            );
            ExitCode::SUCCESS
        }
        Err(diags) => {
            for d in diags.iter() {
                eprintln!("{d}");
            }
            eprintln!("{} error(s)", diags.len());
            ExitCode::FAILURE
        }
    }
}

fn serve(path: &Path) -> anyhow::Result<()> {
    let cfg =
        config::load_server_config(path).map_err(|d| anyhow::anyhow!("invalid config:\n{d}"))?;
    init_logging(&cfg.log_level, cfg.log_format);
    info!(config = %path.display(), version = env!("CARGO_PKG_VERSION"), "gslbd starting");
    let loaded = match config::load_with(cfg) {
        Ok(l) => l,
        Err(d) => {
            for e in d.iter() {
                error!("{e}");
            }
            anyhow::bail!(
                "refusing to start: {} error(s) in the configuration",
                d.len()
            );
        }
    };
    if let Some(g) = &loaded.geo {
        info!(path = %g.describe(), kind = %g.database_type, networks = g.networks, records = g.distinct, ms = loaded.took.geodata.as_millis() as u64, "geodata loaded");
        if let Some(a) = &g.asn {
            info!(path = %a.describe(), kind = %a.database_type, networks = a.networks, records = a.distinct, "ASN geodata loaded");
        }
    }
    info!(
        zones = loaded.zones.zones.len(),
        ms = loaded.took.zones.as_millis() as u64,
        "zones compiled"
    );
    for z in &loaded.zones.zones {
        info!(zone = %z.origin, file = %z.file.display(), names = z.nodes.len(), regions = z.regions.len(), services = z.services.len(), "zone loaded");
    }
    let user = loaded.config.user.clone();
    let gslbd = gslbd::server::launch(
        loaded,
        gslbd::server::LaunchOptions {
            config_file: Some(path.to_path_buf()),
            sighup: true,
        },
    )
    .context("cannot start")?;
    // Every socket is bound (DNS and admin); root is not needed any more.
    if let Some(user) = &user {
        match gslbd::process::drop_privileges(user) {
            Ok(id) => {
                info!(user = %user, uid = id.uids[0], gid = id.gids[0], "dropped privileges: no root identity, no capabilities")
            }
            Err(e) => {
                error!("cannot drop privileges: {e}");
                gslbd.shutdown();
                anyhow::bail!("refusing to serve as root: {e}");
            }
        }
    }
    gslbd::process::notify_ready("serving");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start signal runtime")?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
            _ = term.recv() => info!("SIGTERM: shutting down"),
        }
        Ok::<_, std::io::Error>(())
    })?;
    gslbd::process::notify_stopping();
    gslbd.shutdown();
    info!("stopped");
    Ok(())
}

fn dnssec(cmd: DnssecCommand) -> anyhow::Result<()> {
    use base64::Engine as _;
    match cmd {
        DnssecCommand::Keygen {
            zone,
            algorithm,
            ksk,
            dir,
        } => {
            let name = hickory_proto::rr::Name::from_ascii(if zone.ends_with('.') {
                zone.clone()
            } else {
                format!("{zone}.")
            })
            .map_err(|e| anyhow::anyhow!("--zone {zone:?}: {e}"))?;
            let alg = gslbd::dnssec::Algorithm::parse(&algorithm).ok_or_else(|| {
                anyhow::anyhow!("--algorithm {algorithm:?}: ecdsap256sha256 (13) or ed25519 (15)")
            })?;
            let key = gslbd::dnssec::Key::generate(&name, alg, if ksk { 257 } else { 256 })
                .map_err(|e| anyhow::anyhow!(e))?;
            let stem = dir.join(key.file_stem());
            let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string()
                .replace(['-', ':', 'T', 'Z'], "");
            let write = |ext: &str, text: &str, mode: u32| -> anyhow::Result<()> {
                use std::os::unix::fs::OpenOptionsExt;
                let path = stem.with_extension(format!(
                    "{}.{ext}",
                    stem.extension()
                        .map(|e| e.to_string_lossy())
                        .unwrap_or_default()
                ));
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&path)
                    .with_context(|| format!("{}", path.display()))?;
                std::io::Write::write_all(&mut f, text.as_bytes())?;
                Ok(())
            };
            write("key", &key.key_file(), 0o644)?;
            write("private", &key.private_file(&created), 0o600)?;
            println!("{}", stem.display());
            Ok(())
        }
        DnssecCommand::Ds { config, key } => {
            let print = |k: &gslbd::dnssec::PublicKey| {
                let hex: String = k.ds[4..].iter().map(|b| format!("{b:02X}")).collect();
                let zone = k.zone.to_ascii();
                println!("{zone} IN DS {} {} 2 {hex}", k.tag, k.alg.number());
                println!(
                    "; {zone} IN DNSKEY {} 3 {} {}",
                    k.flags,
                    k.alg.number(),
                    base64::engine::general_purpose::STANDARD.encode(&k.dnskey[4..])
                );
            };
            if !key.is_empty() {
                for path in key {
                    let stem = path.to_string_lossy();
                    let stem = stem.strip_suffix(".key").unwrap_or(&stem);
                    let text = std::fs::read_to_string(format!("{stem}.key"))
                        .with_context(|| format!("{stem}.key"))?;
                    let k = gslbd::dnssec::PublicKey::from_key_file(&text)
                        .map_err(|e| anyhow::anyhow!("{stem}.key: {e}"))?;
                    print(&k);
                }
                return Ok(());
            }
            let path = config.unwrap_or_else(default_config);
            let l = config::load_all(&path).map_err(|d| anyhow::anyhow!("{d}"))?;
            let mut any = false;
            for z in &l.zones.zones {
                let Some(sg) = &z.dnssec else { continue };
                for k in sg.signer.published.iter().filter(|k| k.is_sep()) {
                    print(&k.public_key());
                    any = true;
                }
            }
            anyhow::ensure!(any, "no zone of {} is signed", path.display());
            Ok(())
        }
    }
}

fn geodata(cmd: GeodataCommand) -> anyhow::Result<()> {
    match cmd {
        GeodataCommand::Build {
            csv,
            asn: true,
            output,
        } => {
            let summary = gslbd::geo::build::build_asn_file(&csv, &output)
                .map_err(|d| anyhow::anyhow!("\n{d}"))?;
            for w in &summary.warnings {
                eprintln!("warning: {w}");
            }
            if summary.overlaps > summary.warnings.len() {
                eprintln!(
                    "warning: {} more overlapping row(s)",
                    summary.overlaps - summary.warnings.len()
                );
            }
            let db = gslbd::geo::GeoDb::open(&output)?;
            println!(
                "{}: {} networks, {} distinct records ({} rows in {} CIDR blocks)",
                output.display(),
                db.networks,
                db.records.len(),
                summary.rows,
                summary.blocks
            );
            if summary.aliased > 0 {
                println!(
                    "{} IPv6 block(s) in ::ffff:0:0/96, 2001::/32 or 2002::/16 left out: those \
                     addresses resolve through the IPv4 rows",
                    summary.aliased
                );
            }
            Ok(())
        }
        GeodataCommand::Build {
            csv,
            asn: false,
            output,
        } => {
            let [csv] = csv.as_slice() else {
                anyhow::bail!(
                    "a city database is built from one CSV ({} given); several are for --asn",
                    csv.len()
                );
            };
            gslbd::geo::build::build_file(csv, &output).map_err(|d| anyhow::anyhow!("\n{d}"))?;
            let db = gslbd::geo::GeoDb::open(&output)?;
            println!(
                "{}: {} networks, {} distinct locations",
                output.display(),
                db.networks,
                db.records.len()
            );
            Ok(())
        }
        GeodataCommand::Lookup { db, ip } => {
            let db = gslbd::geo::GeoDb::open(&db)?;
            let r = db.lookup(ip)?;
            println!("address:   {ip}");
            println!("network:   {} (prefix /{})", r.network, r.prefix);
            match r.record {
                Some(rec) => {
                    match rec.coords() {
                        Some((lat, lon)) => println!("location:  {lat}, {lon}"),
                        None => println!("location:  (none)"),
                    }
                    println!("country:   {}", rec.country_str().unwrap_or("(none)"));
                    println!("continent: {}", rec.continent_str().unwrap_or("(none)"));
                    if let Some(sub) = rec.subdivision_str() {
                        println!("subdivision: {sub}");
                    }
                    if rec.asn != 0 {
                        println!("asn:       AS{}", rec.asn);
                    }
                }
                None => println!("record:    (not in the database)"),
            }
            Ok(())
        }
    }
}

fn explain(path: &Path, name: &str, client: &str, qtype: &str, json: bool) -> anyhow::Result<()> {
    let loaded =
        config::load_all(path).map_err(|d| anyhow::anyhow!("invalid configuration:\n{d}"))?;
    let (ip, prefix) = match client.split_once('/') {
        Some((a, p)) => (a.parse::<IpAddr>()?, Some(p.parse::<u8>()?)),
        None => (client.parse::<IpAddr>()?, None),
    };
    let qtype = match qtype.to_ascii_uppercase().as_str() {
        "A" => hickory_proto::rr::RecordType::A,
        "AAAA" => hickory_proto::rr::RecordType::AAAA,
        t => anyhow::bail!("--type {t}: A or AAAA"),
    };
    let mut fqdn = name.to_string();
    if !fqdn.ends_with('.') {
        fqdn.push('.');
    }
    let name = hickory_proto::rr::Name::from_ascii(&fqdn)?;
    let cfg = gslbd::health::runner::RunnerConfig {
        state_file: loaded.config.health.state_file.clone(),
        rtt_half_life: loaded.config.health.rtt_half_life,
        jitter: loaded.config.health.jitter,
        fleet: None,
    };
    let (served, _) = gslbd::health::runner::initial(std::sync::Arc::new(catalog(loaded)), cfg);
    let x = gslbd::explain::explain(&served, &name, qtype, ip, prefix, std::time::Instant::now())
        .map_err(|e| anyhow::anyhow!(e))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&x)?);
    } else {
        print!("{}", x.to_text());
    }
    Ok(())
}
