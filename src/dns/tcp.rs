//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766): our own accept loop around the same
//! [`RequestHandler`] the UDP side uses. hickory's `Server` neither limits nor counts TCP
//! connections and aborts in-flight ones at shutdown; here each connection is a task we track,
//! idle connections are closed after `idle`, and shutdown lets the queries in flight finish
//! within a bound.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::debug;

use super::GslbHandler;
use super::handler::Collect;

/// Counters of the TCP side.
#[derive(Debug, Default)]
pub struct TcpStats {
    pub accepted: AtomicU64,
    pub open: AtomicU64,
}

/// Serves DNS over TCP on `listener` until `stop` turns true; then waits up to `drain` for the
/// open connections to finish the query they are answering.
pub async fn serve(
    listener: TcpListener,
    handler: GslbHandler,
    idle: Duration,
    drain: Duration,
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
                    stats.open.fetch_add(1, Relaxed);
                    let (h, s, st) = (handler.clone(), stats.clone(), conn_stop.clone());
                    conns.spawn(async move {
                        connection(stream, peer, h, idle, st).await;
                        s.open.fetch_sub(1, Relaxed);
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
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let out = Collect::default();
    loop {
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
        let mut msg = vec![0u8; n];
        // The rest of the message must follow promptly; a client that trickles bytes is closed.
        match tokio::time::timeout(idle, stream.read_exact(&mut msg)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let request = match Request::from_bytes(msg.clone(), peer, Protocol::Tcp) {
            Ok(r) => r,
            Err(_) => {
                // A header we can read but a body we cannot: FORMERR (RFC 1035 §4.1.1), then
                // close, since the stream may be out of step. Less than a header: just close.
                if let Some(reply) = formerr(&msg) {
                    let _ = stream.write_all(&reply).await;
                }
                return;
            }
        };
        if request.metadata.message_type == hickory_proto::op::MessageType::Response {
            continue; // never answer responses (reflection)
        }
        handler
            .handle_request::<_, TokioTime>(&request, out.clone())
            .await;
        let bytes = match out.0.lock() {
            Ok(mut b) => std::mem::take(&mut *b),
            Err(_) => return,
        };
        if bytes.is_empty() {
            continue;
        }
        let Ok(l) = u16::try_from(bytes.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&l.to_be_bytes());
        framed.extend_from_slice(&bytes);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// A framed FORMERR for a message whose 12-byte header is readable and that is not a response.
fn formerr(msg: &[u8]) -> Option<Vec<u8>> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 {
        return None;
    }
    let mut h = [0u8; 12];
    h[0] = msg[0];
    h[1] = msg[1];
    h[2] = 0x80 | (msg[2] & 0x79); // QR, the opcode and RD of the query
    h[3] = 1; // FORMERR
    let mut out = vec![0, 12];
    out.extend_from_slice(&h);
    Some(out)
}
