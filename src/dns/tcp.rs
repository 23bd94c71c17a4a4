//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766): our own accept loop around the same
//! [`super::handler::respond_into`] the UDP side uses. hickory's `Server` neither limits nor counts TCP
//! connections and aborts in-flight ones at shutdown; here each connection is a task we track,
//! idle connections are closed after `idle`, and shutdown lets the queries in flight finish
//! within a bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::debug;

use super::GslbHandler;
use super::handler::{Outcome, respond_into};

/// Counters of the TCP side, shared by every worker.
#[derive(Debug, Default)]
pub struct TcpStats {
    pub accepted: AtomicU64,
    pub open: AtomicU64,
    /// Connections closed at once because a limit was reached.
    pub refused: AtomicU64,
    /// Open connections per client address (touched on accept and close, never per query).
    per_source: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, u32>>,
}

/// Limits on TCP clients (`[dns]` tcp_max_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    pub max_connections: u32,
    pub max_per_source: u32,
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

impl TcpStats {
    /// Takes a place for a new connection from `ip`, or says no.
    fn admit(&self, ip: std::net::IpAddr, limits: &TcpLimits) -> bool {
        let Ok(mut per) = self.per_source.lock() else {
            return false;
        };
        if self.open.load(Relaxed) >= u64::from(limits.max_connections) {
            return false;
        }
        let n = per.entry(ip).or_insert(0);
        if *n >= limits.max_per_source {
            return false;
        }
        *n += 1;
        self.open.fetch_add(1, Relaxed);
        true
    }

    fn release(&self, ip: std::net::IpAddr) {
        if let Ok(mut per) = self.per_source.lock()
            && let Some(n) = per.get_mut(&ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(&ip);
            }
        }
        self.open.fetch_sub(1, Relaxed);
    }
}

/// Serves DNS over TCP on `listener` until `stop` turns true; then waits up to `drain` for the
/// open connections to finish the query they are answering.
pub async fn serve(
    listener: TcpListener,
    handler: GslbHandler,
    idle: Duration,
    drain: Duration,
    limits: TcpLimits,
    stats: Arc<TcpStats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    let conn_stop = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                                Ok((stream, peer)) => {
                    stats.accepted.fetch_add(1, Relaxed);
                    if !stats.admit(peer.ip(), &limits) {
                        // Full: close at once (the client sees EOF and can retry or use
                        // another server); UDP is not affected.
                        stats.refused.fetch_add(1, Relaxed);
                        drop(stream);
                        continue;
                    }
                    let (h, s, st) = (handler.clone(), stats.clone(), conn_stop.clone());
                    let max_queries = limits.max_queries;
                    conns.spawn(async move {
                        connection(stream, peer, h, idle, max_queries, st).await;
                        s.release(peer.ip());
                    });
                }
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    // Connections see `stop` and close after the query in hand; give them `drain` at most.
    let _ = tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} }).await;
    conns.abort_all();
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    handler: GslbHandler,
    idle: Duration,
    max_queries: u32,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (mut msg, mut reply, mut framed) = (Vec::new(), Vec::new(), Vec::new());
    let mut answered = 0u32;
    loop {
        if answered >= max_queries {
            return; // enough for one connection; the client reconnects
        }
        let mut len = [0u8; 2];
        // Wait for the next query's length, unless idle too long or shutting down.
        let read = tokio::select! {
            // A query already on the wire is answered even when shutdown has begun.
            biased;
            r = tokio::time::timeout(idle, stream.read_exact(&mut len)) => r,
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        };
        match read {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let n = usize::from(u16::from_be_bytes(len));
        msg.clear();
        msg.resize(n, 0);
        // The rest of the message must follow promptly; a client that trickles bytes is closed.
        match tokio::time::timeout(idle, stream.read_exact(&mut msg)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let outcome = respond_into(&handler, &msg, peer, Protocol::Tcp, &mut reply);
        if outcome == Outcome::Silent {
            continue; // a response (never answered: no reflection) or nothing to send
        }
        if !reply.is_empty() {
            let Ok(l) = u16::try_from(reply.len()) else {
                return;
            };
            framed.clear();
            framed.extend_from_slice(&l.to_be_bytes());
            framed.extend_from_slice(&reply);
            if stream.write_all(&framed).await.is_err() {
                return;
            }
        }
        if outcome == Outcome::Malformed {
            // After the FORMERR (if the header read as a query's), close: the stream may be
            // out of step.
            return;
        }
        answered += 1;
    }
}
