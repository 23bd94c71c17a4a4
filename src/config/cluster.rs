//! `[cluster]` of `gslbd.toml`: a fleet of instances coordinated through etcd (README, Running a
//! fleet). Without the table an instance is standalone and needs no etcd.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// `[cluster]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterInput {
    /// etcd client URLs, e.g. `["http://10.0.0.1:2379"]` (`https://` with `tls`).
    pub endpoints: Vec<String>,
    /// This instance's name in the fleet. Default: the host name.
    #[serde(default)]
    pub instance: Option<String>,
    /// The key prefix of the fleet's keys. Default `/gslbd`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// When a target is down: `"majority"` (default), `"all"`, `"any"`, or a number of
    /// instances.
    #[serde(default)]
    pub down: Option<DownInput>,
    /// Seconds an instance's lease (and so its votes) outlives its last keep-alive. Default 10.
    #[serde(default)]
    pub lease_ttl: Option<u64>,
    /// Seconds one etcd operation may take before the session counts as lost. Default 3.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// TLS to etcd: `{ ca = "ca.pem", cert = "client.pem", key = "client-key.pem" }`.
    #[serde(default)]
    pub tls: Option<ClusterTlsInput>,
    /// etcd user name (with `password` or `password_file`).
    #[serde(default)]
    pub user: Option<String>,
    /// etcd password.
    #[serde(default)]
    pub password: Option<String>,
    /// A file whose first line is the etcd password.
    #[serde(default)]
    pub password_file: Option<String>,
}

/// `down = "majority" | "all" | "any" | N`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DownInput {
    /// `"majority"`, `"all"` or `"any"`.
    Word(String),
    /// At least this many instances.
    Count(u32),
}

/// `[cluster.tls]` as written; paths relative to the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTlsInput {
    /// CA certificate (PEM) that signed etcd's server certificate.
    #[serde(default)]
    pub ca: Option<String>,
    /// Client certificate (PEM), for etcd's `--client-cert-auth`.
    #[serde(default)]
    pub cert: Option<String>,
    /// The client certificate's private key (PEM).
    #[serde(default)]
    pub key: Option<String>,
}

/// When a target counts as down in a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DownRule {
    /// Down when more than half of the members observing it see it down.
    #[default]
    Majority,
    /// Down only when every member observing it sees it down.
    All,
    /// Down as soon as one member sees it down.
    Any,
    /// Down when at least this many members see it down (capped at the observers).
    AtLeast(u32),
}

impl DownRule {
    /// Whether `down` votes out of `voters` make the target down.
    pub fn down(self, down: u32, voters: u32) -> bool {
        if voters == 0 {
            return false;
        }
        match self {
            DownRule::Majority => 2 * down > voters,
            DownRule::All => down == voters,
            DownRule::Any => down >= 1,
            DownRule::AtLeast(n) => down >= n.clamp(1, voters),
        }
    }

    /// The rule as written in the config (`"majority"`, `"all"`, `"any"`, or a number).
    pub fn name(self) -> String {
        match self {
            DownRule::Majority => "majority".into(),
            DownRule::All => "all".into(),
            DownRule::Any => "any".into(),
            DownRule::AtLeast(n) => n.to_string(),
        }
    }
}

/// The compiled `[cluster]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// etcd client URLs.
    pub endpoints: Vec<String>,
    /// This instance's name (no `/`).
    pub instance: String,
    /// Key prefix, without a trailing `/`.
    pub prefix: String,
    /// The down rule.
    pub down: DownRule,
    /// Lease time to live.
    pub lease_ttl: Duration,
    /// The limit of one etcd operation.
    pub timeout: Duration,
    /// TLS files, when etcd speaks TLS.
    pub tls: Option<ClusterTls>,
    /// User name and password, when etcd has authentication on.
    pub auth: Option<(String, String)>,
}

/// TLS files for etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTls {
    /// CA certificate (PEM), if not the system's roots.
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM), for client-certificate authentication.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// Validates `[cluster]`; `base` is the config file's directory.
pub fn compile(c: &ClusterInput, base: &Path) -> Result<ClusterConfig, String> {
    if c.endpoints.is_empty() {
        return Err("cluster.endpoints is empty".into());
    }
    for e in &c.endpoints {
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            return Err(format!(
                "cluster.endpoints: {e:?} is not an http:// or https:// URL"
            ));
        }
    }
    let instance = match &c.instance {
        Some(i) => i.trim().to_string(),
        None => super::hostname(),
    };
    if instance.is_empty() || instance.contains('/') || instance.len() > 64 {
        return Err(format!(
            "cluster.instance {instance:?} must be 1–64 characters without '/'"
        ));
    }
    let prefix = c
        .prefix
        .as_deref()
        .unwrap_or("/gslbd")
        .trim_end_matches('/');
    if prefix.is_empty() {
        return Err("cluster.prefix must not be empty or \"/\"".into());
    }
    let down = match &c.down {
        None => DownRule::Majority,
        Some(DownInput::Word(w)) => match w.as_str() {
            "majority" => DownRule::Majority,
            "all" => DownRule::All,
            "any" => DownRule::Any,
            other => {
                return Err(format!(
                    "cluster.down {other:?}: use \"majority\", \"all\", \"any\" or a number"
                ));
            }
        },
        Some(DownInput::Count(0)) => return Err("cluster.down must be at least 1".into()),
        Some(DownInput::Count(n)) => DownRule::AtLeast(*n),
    };
    let ttl = c.lease_ttl.unwrap_or(10);
    if !(2..=300).contains(&ttl) {
        return Err(format!("cluster.lease_ttl {ttl} is outside 2–300 seconds"));
    }
    let timeout = c.timeout.unwrap_or(3.0);
    if !(timeout.is_finite() && (0.1..=60.0).contains(&timeout)) {
        return Err(format!(
            "cluster.timeout {timeout} is outside 0.1–60 seconds"
        ));
    }
    let resolve = |p: &str| super::server::resolve_path(base, p);
    let tls = match &c.tls {
        None => None,
        Some(t) => Some(ClusterTls {
            ca: t.ca.as_deref().map(resolve),
            identity: match (&t.cert, &t.key) {
                (Some(c), Some(k)) => Some((resolve(c), resolve(k))),
                (None, None) => None,
                _ => return Err("cluster.tls: cert and key go together".into()),
            },
        }),
    };
    let password = match (&c.password, &c.password_file) {
        (Some(p), None) => Some(p.clone()),
        (None, Some(f)) => match std::fs::read_to_string(resolve(f)) {
            Ok(t) => Some(t.lines().next().unwrap_or_default().to_string()),
            Err(e) => return Err(format!("cluster.password_file {f}: {e}")),
        },
        (Some(_), Some(_)) => return Err("cluster: password or password_file, not both".into()),
        (None, None) => None,
    };
    let auth = match (&c.user, password) {
        (Some(u), Some(p)) => Some((u.clone(), p)),
        (None, None) => None,
        _ => return Err("cluster: user and password go together".into()),
    };
    Ok(ClusterConfig {
        endpoints: c.endpoints.clone(),
        instance,
        prefix: prefix.to_string(),
        down,
        lease_ttl: Duration::from_secs(ttl),
        timeout: Duration::from_secs_f64(timeout),
        tls,
        auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(toml_text: &str) -> ClusterInput {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn defaults_and_rules() {
        let c = compile(
            &input("endpoints = [\"http://127.0.0.1:2379\"]\ninstance = \"a\""),
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.prefix, "/gslbd");
        assert_eq!(c.down, DownRule::Majority);
        assert_eq!(c.lease_ttl, Duration::from_secs(10));
        for (text, rule) in [
            ("\"all\"", DownRule::All),
            ("\"any\"", DownRule::Any),
            ("2", DownRule::AtLeast(2)),
        ] {
            let c = compile(
                &input(&format!(
                    "endpoints = [\"http://e:1\"]\ninstance = \"a\"\ndown = {text}"
                )),
                Path::new("."),
            )
            .unwrap();
            assert_eq!(c.down, rule);
        }
    }

    #[test]
    fn mistakes_are_named() {
        for (text, says) in [
            ("endpoints = []", "endpoints is empty"),
            ("endpoints = [\"127.0.0.1:2379\"]", "not an http"),
            (
                "endpoints = [\"http://e:1\"]\ninstance = \"a/b\"",
                "without '/'",
            ),
            (
                "endpoints = [\"http://e:1\"]\ndown = \"most\"",
                "cluster.down",
            ),
            ("endpoints = [\"http://e:1\"]\ndown = 0", "at least 1"),
            ("endpoints = [\"http://e:1\"]\nlease_ttl = 1", "lease_ttl"),
            ("endpoints = [\"http://e:1\"]\nuser = \"u\"", "go together"),
            (
                "endpoints = [\"http://e:1\"]\ntls = { cert = \"c.pem\" }",
                "go together",
            ),
        ] {
            let e = compile(&input(text), Path::new(".")).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_rules_count_votes_as_named() {
        // 3 voters: 1 down, 2 down, 3 down.
        let cases = [
            (DownRule::Majority, [false, true, true]),
            (DownRule::All, [false, false, true]),
            (DownRule::Any, [true, true, true]),
            (DownRule::AtLeast(2), [false, true, true]),
            (DownRule::AtLeast(9), [false, false, true]),
        ];
        for (rule, want) in cases {
            for (d, w) in (1..=3).zip(want) {
                assert_eq!(rule.down(d, 3), w, "{rule:?} {d}/3");
            }
            assert!(!rule.down(0, 0), "nobody voting is never down");
        }
        // Majority of an even number: exactly half is not more than half.
        assert!(!DownRule::Majority.down(2, 4));
        assert!(DownRule::Majority.down(3, 4));
    }
}
