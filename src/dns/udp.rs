//! DNS over UDP: our own receive loop around the same [`RequestHandler`] as TCP.
//!
//! hickory's `Server` answers a malformed *response* (QR set) with FORMERR before any handler
//! sees it, which lets anyone bounce packets off the server (and two servers ping-pong); it
//! also spawns a task per query. Here every packet is checked before parsing: shorter than a
//! header or QR set → dropped silently (RFC 1035 §4.1.1, and no reflection); a header that
//! parses with a body that does not → FORMERR; anything else → the handler. Each worker answers
//! its queries one after another on its own SO_REUSEPORT socket: the handler never waits, so a
//! task per query would only add cost.

use std::net::SocketAddr;

use hickory_server::net::xfer::Protocol;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::debug;

use super::GslbHandler;
use super::handler::{formerr, respond_to_bytes};

/// The largest datagram read; longer ones are truncated by the kernel and fail to parse.
const MAX_DATAGRAM: usize = 4096;

pub async fn serve(socket: UdpSocket, handler: GslbHandler, mut stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, src) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on Linux; keep serving.
                    debug!(error = %e, "udp receive");
                    continue;
                }
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        };
        let msg = &buf[..n];
        if n < 12 || msg[2] & 0x80 != 0 || !answerable(src) {
            continue;
        }
        let reply = match respond_to_bytes(&handler, msg, src, Protocol::Udp).await {
            Some(r) if !r.is_empty() => r,
            Some(_) => continue, // dropped by RRL
            None => match formerr(msg) {
                Some(h) => h.to_vec(),
                None => continue,
            },
        };
        if let Err(e) = socket.send_to(&reply, src).await {
            debug!(error = %e, %src, "udp send");
        }
    }
}

/// Replies to port 0 or an unspecified address cannot arrive; do not send them.
fn answerable(src: SocketAddr) -> bool {
    src.port() != 0 && !src.ip().is_unspecified()
}
