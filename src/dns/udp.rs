//! DNS over UDP: our own receive loop, batched.
//!
//! hickory's `Server` answers a malformed *response* (QR set) with FORMERR before any handler
//! sees it, which lets anyone bounce packets off the server (and two servers ping-pong); it
//! also spawns a task per query. Here every packet is checked before parsing: shorter than a
//! header or QR set → dropped silently (RFC 1035 §4.1.1, and no reflection); a header that
//! parses with a body that does not → FORMERR; anything else → the handler.
//!
//! Each worker owns one SO_REUSEPORT socket and answers its queries one after another: the
//! handler never waits, so a task per query would only add cost. The system calls are the
//! larger part of a query's cost, so a worker reads up to [`BATCH`] queued datagrams with one
//! `recvmmsg` and sends their answers with one `sendmmsg` (through `nix`). Under light load a
//! batch is one datagram and this is an ordinary receive/send loop; under heavy load the two
//! calls are shared by the whole batch. Buffers are allocated once per worker and reused.

use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use hickory_server::net::xfer::Protocol;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use smallvec::SmallVec;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::debug;

use super::GslbHandler;
use super::handler::{Outcome, respond_into};

/// The largest datagram read; longer ones are truncated by the kernel and fail to parse.
const MAX_DATAGRAM: usize = 4096;
/// Datagrams read (and answers sent) per system call at most.
pub const BATCH: usize = 32;
/// Batches answered before the worker lets its other tasks (TCP) run.
const BATCHES_PER_TURN: usize = 8;

pub async fn serve(socket: UdpSocket, handler: GslbHandler, mut stop: watch::Receiver<bool>) {
    let mut b = Batch::new();
    loop {
        tokio::select! {
            r = socket.readable() => if let Err(e) = r {
                debug!(error = %e, "udp readiness");
                continue;
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        }
        for _ in 0..BATCHES_PER_TURN {
            let n = match socket.try_io(Interest::READABLE, || b.receive(socket.as_raw_fd())) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on Linux; keep serving.
                    debug!(error = %e, "udp receive");
                    continue;
                }
            };
            if n == 0 {
                break;
            }
            b.answer(n, &handler);
            b.send(&socket).await;
        }
        tokio::task::yield_now().await;
    }
}

/// One worker's buffers: the datagrams of a batch, their sources and their answers.
struct Batch {
    bufs: Box<[[u8; MAX_DATAGRAM]; BATCH]>,
    lens: [usize; BATCH],
    srcs: [Option<SockaddrStorage>; BATCH],
    replies: Vec<Vec<u8>>,
    /// Which of the batch's datagrams get an answer.
    answer: [bool; BATCH],
    recv_hdrs: MultiHeaders<SockaddrStorage>,
    send_hdrs: MultiHeaders<SockaddrStorage>,
}

impl Batch {
    fn new() -> Self {
        Self {
            bufs: Box::new([[0u8; MAX_DATAGRAM]; BATCH]),
            lens: [0; BATCH],
            srcs: [None; BATCH],
            replies: (0..BATCH).map(|_| Vec::with_capacity(1232)).collect(),
            answer: [false; BATCH],
            recv_hdrs: MultiHeaders::preallocate(BATCH, None),
            send_hdrs: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Reads the datagrams waiting on `fd` (at most [`BATCH`]) without blocking.
    fn receive(&mut self, fd: i32) -> std::io::Result<usize> {
        let mut iovs = self.bufs.each_mut().map(|b| [IoSliceMut::new(b)]);
        let got = recvmmsg(
            fd,
            &mut self.recv_hdrs,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(std::io::Error::from)?;
        let mut n = 0;
        for (i, m) in got.enumerate() {
            self.lens[i] = m.bytes;
            self.srcs[i] = m.address;
            n = i + 1;
        }
        Ok(n)
    }

    /// Answers the first `n` datagrams into their reply buffers.
    fn answer(&mut self, n: usize, handler: &GslbHandler) {
        for i in 0..n {
            self.answer[i] = false;
            let Some(src) = self.srcs[i].as_ref().and_then(socket_addr) else {
                continue;
            };
            if !answerable(src) {
                continue;
            }
            let msg = &self.bufs[i][..self.lens[i].min(MAX_DATAGRAM)];
            let out = &mut self.replies[i];
            self.answer[i] = match respond_into(handler, msg, src, Protocol::Udp, out) {
                Outcome::Reply | Outcome::Malformed => !out.is_empty(),
                Outcome::Silent => false,
            };
        }
        for a in &mut self.answer[n..] {
            *a = false;
        }
    }

    /// Sends the answers with one `sendmmsg`; whatever the kernel did not take (a full send
    /// buffer) goes out one datagram at a time, waiting for the socket.
    async fn send(&mut self, socket: &UdpSocket) {
        let idx: SmallVec<[usize; BATCH]> = (0..BATCH).filter(|&i| self.answer[i]).collect();
        if idx.is_empty() {
            return;
        }
        let iovs: SmallVec<[[IoSlice<'_>; 1]; BATCH]> = idx
            .iter()
            .map(|&i| [IoSlice::new(&self.replies[i])])
            .collect();
        let addrs: SmallVec<[Option<SockaddrStorage>; BATCH]> =
            idx.iter().map(|&i| self.srcs[i]).collect();
        let fd = socket.as_raw_fd();
        let sent = socket
            .try_io(Interest::WRITABLE, || {
                sendmmsg(
                    fd,
                    &mut self.send_hdrs,
                    iovs.iter(),
                    &addrs[..],
                    [],
                    MsgFlags::MSG_DONTWAIT,
                )
                .map(|r| r.count())
                .map_err(std::io::Error::from)
            })
            .unwrap_or(0);
        for &i in &idx[sent.min(idx.len())..] {
            let Some(dst) = self.srcs[i].as_ref().and_then(socket_addr) else {
                continue;
            };
            if let Err(e) = socket.send_to(&self.replies[i], dst).await {
                debug!(error = %e, %dst, "udp send");
            }
        }
    }
}

fn socket_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(a) = s.as_sockaddr_in() {
        return Some(SocketAddr::from(*a));
    }
    s.as_sockaddr_in6().map(|a| SocketAddr::from(*a))
}

/// Replies to port 0 or an unspecified address cannot arrive; do not send them.
fn answerable(src: SocketAddr) -> bool {
    src.port() != 0 && !src.ip().is_unspecified()
}
