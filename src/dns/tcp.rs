//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766): our own accept loop around the same
//! [`super::handler::respond_into`] the UDP side uses. hickory's `Server` neither limits nor counts TCP
//! connections and aborts in-flight ones at shutdown; here each connection is a task we track,
//! idle connections are closed after `idle`, and shutdown lets the queries in flight finish
//! within a bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hickory_server::net::xfer::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tracing::debug;

use super::GslbHandler;
use super::handler::{Outcome, respond_into};

/// Counters and open connections of the TCP side, shared by every worker.
#[derive(Debug, Default)]
pub struct TcpStats {
    /// Connections accepted since the start, refused ones included.
    pub accepted: AtomicU64,
    /// Connections open now (a gauge, set on each admit and close).
    pub open: AtomicU64,
    /// Connections closed at once because a limit was reached and none could make room.
    pub refused: AtomicU64,
    /// Idle connections closed to make room for a new one.
    pub evicted: AtomicU64,
    conns: std::sync::Mutex<Conns>,
}

/// The open connections, touched on accept, close and each query (never on the UDP path).
#[derive(Debug, Default)]
struct Conns {
    next_id: u64,
    by_id: std::collections::HashMap<u64, Conn>,
    per_source: std::collections::HashMap<std::net::IpAddr, u32>,
}

#[derive(Debug)]
struct Conn {
    ip: std::net::IpAddr,
    /// Since when it waits for its next query; `None` while a query is arriving or answered.
    idle_since: Option<Instant>,
    close: Arc<Notify>,
}

/// A connection's place: its id and the signal that asks it to close.
#[derive(Debug)]
struct Admitted {
    id: u64,
    close: Arc<Notify>,
}

pub use crate::config::TcpLimits;

impl TcpStats {
    /// Takes a place for a new connection from `ip`. When a limit is reached, the connection
    /// that has waited longest for its next query (from `ip` for the per-source limit, from
    /// anyone for the total) is asked to close to make room: idle connections never keep out a
    /// client with a query to send. Says no only when every connection in the way is busy.
    fn admit(&self, ip: std::net::IpAddr, limits: &TcpLimits, now: Instant) -> Option<Admitted> {
        let Ok(mut c) = self.conns.lock() else {
            return None;
        };
        if c.per_source.get(&ip).copied().unwrap_or(0) >= limits.max_per_source {
            c.evict_idlest(Some(ip), &self.evicted)?;
        }
        if c.by_id.len() >= limits.max_connections as usize {
            c.evict_idlest(None, &self.evicted)?;
        }
        c.next_id += 1;
        let id = c.next_id;
        let close = Arc::new(Notify::new());
        c.by_id.insert(
            id,
            Conn {
                ip,
                idle_since: Some(now),
                close: close.clone(),
            },
        );
        *c.per_source.entry(ip).or_insert(0) += 1;
        self.open.store(c.by_id.len() as u64, Relaxed);
        Some(Admitted { id, close })
    }

    /// Marks connection `id` idle (waiting for a query) or busy.
    fn set_idle(&self, id: u64, idle: bool) {
        if let Ok(mut c) = self.conns.lock()
            && let Some(conn) = c.by_id.get_mut(&id)
        {
            conn.idle_since = idle.then(Instant::now);
        }
    }

    fn release(&self, id: u64) {
        if let Ok(mut c) = self.conns.lock() {
            c.remove(id);
            self.open.store(c.by_id.len() as u64, Relaxed);
        }
    }
}

impl Conns {
    /// Asks the longest-idle connection (of `ip`, or of anyone) to close and frees its place.
    fn evict_idlest(&mut self, ip: Option<std::net::IpAddr>, evicted: &AtomicU64) -> Option<()> {
        let (&id, _) = self
            .by_id
            .iter()
            .filter(|(_, c)| ip.is_none_or(|ip| c.ip == ip))
            .filter_map(|(id, c)| c.idle_since.map(|t| (id, t)))
            .min_by_key(|(_, t)| *t)?;
        if let Some(conn) = self.remove(id) {
            conn.close.notify_one();
            evicted.fetch_add(1, Relaxed);
        }
        Some(())
    }

    fn remove(&mut self, id: u64) -> Option<Conn> {
        let conn = self.by_id.remove(&id)?;
        if let Some(n) = self.per_source.get_mut(&conn.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_source.remove(&conn.ip);
            }
        }
        Some(conn)
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
                    let Some(place) = stats.admit(peer.ip(), &limits, Instant::now()) else {
                        // Full of busy connections: close at once (the client sees EOF and can
                        // retry or use another server); UDP is not affected.
                        stats.refused.fetch_add(1, Relaxed);
                        drop(stream);
                        continue;
                    };
                    let (h, s, st) = (handler.clone(), stats.clone(), conn_stop.clone());
                    let max_queries = limits.max_queries;
                    conns.spawn(async move {
                        let conn = Connection { peer, handler: h, idle, max_queries, stats: s.clone(), id: place.id };
                        conn.serve(stream, place.close, st).await;
                        s.release(place.id);
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

/// One client connection and what it may do.
struct Connection {
    peer: SocketAddr,
    handler: GslbHandler,
    idle: Duration,
    max_queries: u32,
    stats: Arc<TcpStats>,
    id: u64,
}

impl Connection {
    /// Answers queries until the client closes, idles too long, sends `max_queries`, is asked
    /// to make room (`close`), or the server stops.
    async fn serve(
        self,
        mut stream: TcpStream,
        close: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
    ) {
        let Connection {
            peer,
            handler,
            idle,
            max_queries,
            stats,
            id,
        } = self;
        let _ = stream.set_nodelay(true);
        let (mut msg, mut reply, mut framed) = (Vec::new(), Vec::new(), Vec::new());
        let mut answered = 0u32;
        loop {
            if answered >= max_queries {
                return; // enough for one connection; the client reconnects
            }
            let mut len = [0u8; 2];
            if answered > 0 {
                stats.set_idle(id, true);
            }
            // Wait for the next query's length, unless idle too long, asked to make room for
            // another client, or shutting down.
            let read = tokio::select! {
                // A query already on the wire is answered even when shutdown has begun.
                biased;
                r = tokio::time::timeout(idle, stream.read_exact(&mut len)) => r,
                _ = close.notified() => return,
                _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            };
            match read {
                Ok(Ok(_)) => {}
                _ => return,
            }
            stats.set_idle(id, false);
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
}
