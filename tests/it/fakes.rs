//! Fake region health endpoints on loopback that a test steers while gslbd probes them.
//!
//! [`FakeHttp`] is a small HTTP/1.1 server on its own thread and tokio runtime, bound to a given
//! loopback address. The test switches its [`Mode`] at any moment (the next connection sees the
//! new mode: every response carries `Connection: close`, so nothing is reused across a switch)
//! and reads how many connections it accepted and the last request head it saw.
//! [`FakeHttp::https`] serves the same over TLS with a self-signed certificate made by `rcgen`
//! (so a verifying client fails and a non-verifying one succeeds). Dropping a fake stops it and
//! closes every connection it holds, so its port then refuses connections.

#![allow(dead_code)]

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// How the fake answers the next request.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// `status` with `body` and extra headers.
    Ok {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// This status with a short body.
    Status(u16),
    /// 200 `OK`, after this delay.
    Slow(Duration),
    /// Accepts, reads the request, never answers (until the fake is dropped).
    Hang,
    /// Writes bytes that are not HTTP and closes.
    Garbage,
    /// 200 with a `len`-byte body (streamed, `Content-Length` set) that starts with `prefix`
    /// and is padded with `x`.
    Huge { prefix: String, len: usize },
    /// Accepts and closes at once, before reading anything (before the TLS handshake too).
    Close,
}

impl Mode {
    /// 200 with this body.
    pub fn ok(body: &str) -> Mode {
        Mode::Ok {
            status: 200,
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    /// 200 with this body and these extra headers.
    pub fn ok_with(body: &str, headers: &[(&str, &str)]) -> Mode {
        Mode::Ok {
            status: 200,
            body: body.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// 50 MB starting with `prefix`.
    pub fn huge(prefix: &str) -> Mode {
        Mode::Huge {
            prefix: prefix.to_string(),
            len: 50 * 1024 * 1024,
        }
    }
}

struct Shared {
    mode: Mutex<Mode>,
    /// Connections accepted (each serves at most one request).
    accepted: AtomicUsize,
    /// Request heads read completely.
    requests: AtomicUsize,
    last_request: Mutex<Option<String>>,
}

/// A fake health endpoint. Stops (and closes its port) when dropped.
pub struct FakeHttp {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHttp {
    /// Plain HTTP on `ip`, on a port the kernel picks.
    pub fn start(ip: IpAddr, mode: Mode) -> Self {
        Self::start_on(SocketAddr::new(ip, 0), mode)
    }

    /// Plain HTTP on exactly `addr` (port 0: the kernel picks).
    pub fn start_on(addr: SocketAddr, mode: Mode) -> Self {
        Self::try_start(addr, mode, None).unwrap_or_else(|e| panic!("cannot bind {addr}: {e}"))
    }

    /// HTTPS with a fresh self-signed certificate for `localhost` and `ip`.
    pub fn https(ip: IpAddr, mode: Mode) -> Self {
        let addr = SocketAddr::new(ip, 0);
        Self::try_start(addr, mode, Some(self_signed_acceptor(ip)))
            .unwrap_or_else(|e| panic!("cannot bind {addr}: {e}"))
    }

    /// One plain HTTP fake per address, all on the same port number (for `{vip}` probes whose
    /// URL names one port). The first binds port 0; the others take its port, and the whole
    /// group is tried again should that port be taken on another address.
    pub fn start_group(ips: &[IpAddr], mode: Mode) -> Vec<Self> {
        'again: for _ in 0..50 {
            let first = Self::start(ips[0], mode.clone());
            let port = first.addr.port();
            let mut group = vec![first];
            for ip in &ips[1..] {
                match Self::try_start(SocketAddr::new(*ip, port), mode.clone(), None) {
                    Ok(f) => group.push(f),
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue 'again,
                    Err(e) => panic!("cannot bind {ip}:{port}: {e}"),
                }
            }
            return group;
        }
        panic!("no port free on every one of {ips:?}");
    }

    fn try_start(addr: SocketAddr, mode: Mode, tls: Option<TlsAcceptor>) -> io::Result<Self> {
        assert!(addr.ip().is_loopback(), "fakes stay on loopback: {addr}");
        let std_listener = TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            accepted: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            last_request: Mutex::new(None),
        });
        let (stop, mut stop_rx) = watch::channel(false);
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-http-{addr}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("fake runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(std_listener).expect("fake listener");
                    loop {
                        tokio::select! {
                            _ = stop_rx.wait_for(|s| *s) => break,
                            acc = listener.accept() => {
                                let Ok((sock, _)) = acc else { continue };
                                sh.accepted.fetch_add(1, Ordering::SeqCst);
                                let sh = sh.clone();
                                let tls = tls.clone();
                                tokio::spawn(async move {
                                    serve(sock, sh, tls).await;
                                });
                            }
                        }
                    }
                });
                // Dropping the runtime drops every connection task: hung connections close.
                drop(rt);
            })
            .expect("fake thread");
        Ok(Self {
            addr,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Switches what the next connection gets.
    pub fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn mode(&self) -> Mode {
        self.shared.mode.lock().unwrap().clone()
    }

    /// Connections accepted so far (each serves at most one request).
    pub fn hits(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Requests whose head was read completely.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The head (request line and headers) of the last request read.
    pub fn last_request(&self) -> Option<String> {
        self.shared.last_request.lock().unwrap().clone()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(sock: tokio::net::TcpStream, sh: Arc<Shared>, tls: Option<TlsAcceptor>) {
    if *sh.mode.lock().unwrap() == Mode::Close {
        drop(sock);
        return;
    }
    let _ = sock.set_nodelay(true);
    match tls {
        None => respond(sock, &sh).await,
        Some(acceptor) => {
            // A client that rejects the certificate aborts the handshake: nothing to answer.
            if let Ok(s) = acceptor.accept(sock).await {
                respond(s, &sh).await;
            }
        }
    }
}

/// Reads one request head (up to 16 KiB), then answers it as the current mode says.
async fn respond<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, sh: &Shared) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    sh.requests.fetch_add(1, Ordering::SeqCst);
    *sh.last_request.lock().unwrap() = Some(String::from_utf8_lossy(&head).into_owned());
    // The mode when the request arrived decides (a switch mid-request applies to the next one).
    let mode = sh.mode.lock().unwrap().clone();
    match mode {
        Mode::Ok {
            status,
            body,
            headers,
        } => {
            let _ = write_response(&mut s, status, &headers, body.as_bytes()).await;
        }
        Mode::Status(code) => {
            let _ = write_response(&mut s, code, &[], b"failing\n").await;
        }
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            let _ = write_response(&mut s, 200, &[], b"OK\n").await;
        }
        Mode::Hang => {
            // Hold the connection open without a byte until the peer or the fake goes away.
            let mut sink = [0u8; 512];
            while let Ok(n) = s.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        }
        Mode::Garbage => {
            let _ = s
                .write_all(b"\x00\x01\x02 this is no http at all \xff\xfe\r\n\r\n")
                .await;
            let _ = s.shutdown().await;
        }
        Mode::Huge { prefix, len } => {
            let _ = write_huge(&mut s, prefix.as_bytes(), len).await;
        }
        Mode::Close => {}
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        404 => "Not Found",
        418 => "I'm a teapot",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

async fn write_response<S: AsyncWrite + Unpin>(
    s: &mut S,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\
         Connection: close\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).await?;
    s.flush().await?;
    s.shutdown().await
}

/// Streams `len` bytes in 64 KiB chunks; stops as soon as the peer stops reading and closes.
async fn write_huge<S: AsyncWrite + Unpin>(s: &mut S, prefix: &[u8], len: usize) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: text/plain\r\n\
         Connection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await?;
    let mut chunk = vec![b'x'; 64 * 1024];
    let p = prefix.len().min(chunk.len()).min(len);
    chunk[..p].copy_from_slice(&prefix[..p]);
    let mut left = len;
    let mut first = true;
    while left > 0 {
        let n = left.min(chunk.len());
        s.write_all(&chunk[..n]).await?;
        if first {
            chunk[..p].fill(b'x');
            first = false;
        }
        left -= n;
    }
    s.shutdown().await
}

/// A TLS acceptor with a fresh self-signed certificate for `localhost` and `ip`.
fn self_signed_acceptor(ip: IpAddr) -> TlsAcceptor {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), ip.to_string()])
            .expect("self-signed certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("TLS server config");
    TlsAcceptor::from(Arc::new(config))
}
