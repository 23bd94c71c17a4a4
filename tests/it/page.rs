//! The status page in headless Chromium: gslbd serves the page and its assets itself, the page
//! polls `/v1/status` and draws every region on the map and in the table with machine-readable
//! `data-region` / `data-state` attributes. The test forces a region down through the admin API,
//! renders the page in Chromium (`--dump-dom`) and checks what it shows, then takes a screenshot
//! into `target/status-page.png` for people to look at.
//!
//! Chromium is required: `apt-get install -y chromium` (Debian), or set `CHROMIUM` to its path.
//! Without it the test fails, it does not skip.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::*;

const TOKEN: &str = "a-token-of-16-chars-or-more";
const ZONE: &str = "gslb.example";
const REGIONS: [&str; 4] = ["us-east", "eu-west", "ap-southeast", "sa-east"];
/// A Chromium run that takes longer than this is killed and the test fails.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// One HTTP/1.1 request over a fresh connection; returns the status code and the body.
fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).expect("the response is not UTF-8");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header/body separator in {raw:?}"));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (code, body)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("truncated chunk size");
        let n = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
            .expect("bad chunk size");
        if n == 0 {
            return out;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
}

/// The shipped example zone (and its master file) with the admin server on an ephemeral port.
fn server() -> TestServer {
    let toml = std::fs::read_to_string(repo().join("zones/gslb.example.toml")).unwrap();
    let master = std::fs::read_to_string(repo().join("zones/gslb.example.zone")).unwrap();
    TestServer::with_zones_cfg(
        &[("gslb.example.toml", &toml), ("gslb.example.zone", &master)],
        Some(&sample_mmdb()),
        |cfg| {
            cfg.admin_listen = Some("127.0.0.1:0".parse().unwrap());
            cfg.admin_token = Some(TOKEN.into());
        },
    )
}

fn chromium_path() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "Chromium is required for the status page test and was not found at {}: install it \
         (Debian: `apt-get install -y chromium`) or set CHROMIUM to its path",
        path.display()
    );
    path
}

/// The directory Cargo builds into: `CARGO_TARGET_DIR` or the repository's `target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => repo().join(d),
        None => repo().join("target"),
    }
}

struct Run {
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs headless Chromium on `url` with `extra` arguments, in its own process group so that a
/// run over [`CHROMIUM_TIMEOUT`] can be killed with every process it started.
fn chromium(url: &str, extra: &[&str]) -> Run {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium_path());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=8000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium_path().display()));
    let pgid = child.id();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    // `--` matters: procps-ng 4.0.2 reads `kill -KILL -12345` as `kill(-1, SIGKILL)` (every
    // process we may signal); with `--` the group id is taken whole.
    let kill_group = || {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
    };
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            kill_group();
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "chromium did not finish within {CHROMIUM_TIMEOUT:?} on {url} {extra:?}; killed. \
                 stderr:\n{stderr}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    // Helpers left behind by the browser (none normally) would hold the pipes open.
    kill_group();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    assert!(
        status.success(),
        "chromium failed ({status}) on {url} {extra:?}; stderr:\n{stderr}"
    );
    Run {
        stdout,
        stderr,
        took,
    }
}

/// The start tags of `html` that carry a `data-region` attribute, each as (tag name, attributes).
fn region_elements(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let Some(end) = rest.find('>') else { break };
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if !tag.contains("data-region=") {
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect();
        found.push((name, attributes(tag)));
    }
    found
}

/// `name="value"` pairs of a start tag as Chromium serialises them (always double-quoted).
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut attrs = Vec::new();
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_string();
        let after = &rest[eq + 2..];
        let Some(close) = after.find('"') else { break };
        let value = after[..close]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        attrs.push((name, value));
        rest = &after[close + 1..];
    }
    attrs
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The state shown for `region` by the elements of kind `kind` (`marker`, `row`), one per
/// element, with the element's tag name.
fn shown(html: &str, region: &str, kind: &str) -> Vec<(String, String)> {
    region_elements(html)
        .into_iter()
        .filter(|(_, a)| {
            attr(a, "data-region") == Some(region)
                && attr(a, "data-kind") == Some(kind)
                && attr(a, "data-zone") == Some(ZONE)
        })
        .map(|(tag, a)| (tag, attr(&a, "data-state").unwrap_or("").to_string()))
        .collect()
}

#[test]
fn status_page_shows_a_forced_down_region_in_chromium() {
    // Fail early and clearly when there is no browser.
    chromium_path();
    let srv = server();
    let admin = srv
        .gslbd()
        .admin_addr
        .expect("the admin server is not listening");

    // The page and its assets are served by gslbd itself.
    let (code, page) = http(admin, "GET", "/", None);
    assert_eq!(code, 200, "GET /: {page}");
    let mut texts = vec![("/".to_string(), page.clone())];
    for asset in ["/assets/app.js", "/assets/app.css", "/assets/world.js"] {
        assert!(page.contains(asset), "the page does not load {asset}");
        let (code, body) = http(admin, "GET", asset, None);
        assert_eq!(code, 200, "GET {asset}");
        assert!(body.len() > 500, "{asset} is nearly empty");
        texts.push((asset.to_string(), body));
    }
    // Self-contained: no URL elsewhere (the SVG namespace is a name, not a fetch).
    for (path, text) in &texts {
        let text = text.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"),
            "{path} refers to something outside gslbd"
        );
    }

    // Force eu-west down through the API; the change is applied when the call returns.
    let (code, body) = http(
        admin,
        "POST",
        &format!("/v1/regions/{ZONE}/eu-west/force-down"),
        Some(TOKEN),
    );
    assert_eq!(code, 200, "force-down: {body}");
    let (code, body) = http(admin, "GET", "/v1/status", None);
    assert_eq!(code, 200, "status: {body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    let eu = status["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "eu-west")
        .expect("eu-west in /v1/status");
    assert_eq!(eu["override"], "force-down", "{eu}");
    assert_eq!(eu["eligible"], false, "{eu}");

    let url = format!("http://{admin}/");

    // What the page shows, once its scripts have fetched /v1/status.
    let dom = chromium(&url, &["--dump-dom"]);
    eprintln!("chromium --dump-dom took {:?}", dom.took);
    let html = &dom.stdout;
    assert!(
        html.contains("data-loaded=\"true\""),
        "the page never rendered /v1/status; chromium stderr:\n{}\nDOM:\n{html}",
        dom.stderr
    );
    for region in REGIONS {
        let want = if region == "eu-west" { "down" } else { "up" };
        for (kind, tag) in [("marker", "g"), ("row", "tr")] {
            let got = shown(html, region, kind);
            assert_eq!(
                got,
                vec![(tag.to_string(), want.to_string())],
                "{region}: expected one {kind} <{tag}> with data-state={want:?}; DOM:\n{html}"
            );
        }
    }
    let eu_row = region_elements(html)
        .into_iter()
        .find(|(t, a)| t == "tr" && attr(a, "data-region") == Some("eu-west"))
        .unwrap();
    assert_eq!(attr(&eu_row.1, "data-override"), Some("force-down"));
    // The transition to down is listed.
    assert!(
        html.contains("data-target=\"gslb.example/eu-west\""),
        "no transition listed for eu-west; DOM:\n{html}"
    );

    // A screenshot for people to look at.
    let png = target_dir().join("status-page.png");
    let _ = std::fs::remove_file(&png);
    std::fs::create_dir_all(png.parent().unwrap()).unwrap();
    let shot = chromium(
        &url,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1400,900",
            "--hide-scrollbars",
        ],
    );
    eprintln!(
        "chromium --screenshot took {:?}; screenshot at {}",
        shot.took,
        png.display()
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {} ({e}); chromium stderr:\n{}",
            png.display(),
            shot.stderr
        )
    });
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1400, 900), "screenshot size");
    // A blank or error page compresses to a few kilobytes; the map and tables do not.
    assert!(
        bytes.len() > 60_000,
        "the screenshot is only {} bytes: {}",
        bytes.len(),
        png.display()
    );
}
