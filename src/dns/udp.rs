//! DNS over UDP: our own receive loop, batched.
//!
//! hickory's `Server` answers a malformed *response* (QR set) with FORMERR before any handler
//! sees it, which lets anyone bounce packets off the server (and two servers ping-pong); it
//! also spawns a task per query. Here every packet is checked before parsing: shorter than a
//! header or QR set → dropped silently (RFC 1035 §4.1.1, and no reflection); a header that
//! parses with a body that does not → FORMERR; anything else → the handler.
//!
//! Each UDP socket (one SO_REUSEPORT socket per worker and listen address) has its own OS
//! thread that answers its queries one after another: the handler never waits, so neither a
//! task per query nor an event loop would add anything but cost. The system calls are the larger
//! part of a query's cost, so the thread sleeps in `recvmmsg` until a datagram arrives, takes up
//! to [`BATCH`] queued datagrams with that one call and sends their answers with one `sendmmsg`
//! (through `nix`). Under light load a batch is one datagram and this is an ordinary blocking
//! receive/send loop; under heavy load the two calls are shared by the whole batch. Buffers are
//! allocated once per thread and reused.

use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use tokio::sync::watch;
use tracing::debug;

use super::GslbHandler;
use super::handler::{Outcome, respond_into};

/// The largest datagram read; longer ones are truncated by the kernel and fail to parse.
const MAX_DATAGRAM: usize = 4096;
/// Datagrams read (and answers sent) per system call at most.
pub const BATCH: usize = 32;
/// How often a waiting receive looks at the stop signal.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Serves `socket` on the calling thread until `stop` turns true. The socket is made blocking
/// with a receive timeout: a worker sleeps in `recvmmsg` until at least one datagram is there
/// (`MSG_WAITFORONE`), takes whatever else is queued, answers the batch and sends it.
pub fn serve(socket: std::net::UdpSocket, handler: GslbHandler, stop: watch::Receiver<bool>) {
    if let Err(e) = socket
        .set_nonblocking(false)
        .and_then(|()| socket.set_read_timeout(Some(STOP_CHECK)))
        .and_then(|()| socket.set_write_timeout(Some(STOP_CHECK)))
    {
        tracing::error!(error = %e, "cannot set up the UDP socket");
        return;
    }
    let fd = socket.as_raw_fd();
    let mut b = Batch::new();
    while !*stop.borrow() {
        let n = match b.receive(fd) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here on Linux; keep serving.
                debug!(error = %e, "udp receive");
                continue;
            }
        };
        b.answer(n, &handler);
        b.send(fd);
    }
}

/// One worker's buffers: the datagrams of a batch, their sources and their answers.
struct Batch {
    /// `BATCH` receive buffers of `MAX_DATAGRAM` bytes, back to back.
    bufs: Box<[u8]>,
    lens: [usize; BATCH],
    srcs: [Option<SockaddrStorage>; BATCH],
    /// The answers to send, `ready` of them, in the order of their datagrams.
    replies: Vec<Vec<u8>>,
    /// Where each reply goes.
    dests: Vec<Option<SockaddrStorage>>,
    ready: usize,
    recv_hdrs: MultiHeaders<SockaddrStorage>,
    send_hdrs: MultiHeaders<SockaddrStorage>,
}

impl Batch {
    fn new() -> Self {
        Self {
            bufs: vec![0u8; MAX_DATAGRAM * BATCH].into_boxed_slice(),
            lens: [0; BATCH],
            srcs: [None; BATCH],
            replies: (0..BATCH).map(|_| Vec::with_capacity(1232)).collect(),
            dests: vec![None; BATCH],
            ready: 0,
            recv_hdrs: MultiHeaders::preallocate(BATCH, None),
            send_hdrs: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Waits for a datagram on `fd`, then reads it and whatever else is queued (at most
    /// [`BATCH`]).
    fn receive(&mut self, fd: i32) -> std::io::Result<usize> {
        let mut chunks = self.bufs.chunks_exact_mut(MAX_DATAGRAM);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        let got = recvmmsg(
            fd,
            &mut self.recv_hdrs,
            iovs.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
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

    /// Answers the first `n` datagrams: the replies to send go to `replies[..ready]`.
    fn answer(&mut self, n: usize, handler: &GslbHandler) {
        self.ready = 0;
        for i in 0..n {
            let Some(src) = self.srcs[i].as_ref().and_then(socket_addr) else {
                continue;
            };
            if !answerable(src) {
                continue;
            }
            let at = i * MAX_DATAGRAM;
            let msg = &self.bufs[at..at + self.lens[i].min(MAX_DATAGRAM)];
            let out = &mut self.replies[self.ready];
            let send = match respond_into(handler, msg, src, Protocol::Udp, out) {
                Outcome::Reply | Outcome::Malformed => !out.is_empty(),
                Outcome::Silent => false,
            };
            if send {
                self.dests[self.ready] = self.srcs[i];
                self.ready += 1;
            }
        }
    }

    /// Sends the replies with `sendmmsg`, again for whatever the kernel did not take.
    ///
    /// Lengths here are run-time values on purpose: loops over constant 32-element buffers
    /// (inline small vectors) made LLVM unroll them into a scalar-evolution blow-up that took
    /// a release build many minutes.
    fn send(&mut self, fd: i32) {
        let mut done = 0;
        while done < self.ready {
            let pending = &self.replies[done..self.ready];
            let mut iovs = [[IoSlice::new(&[]); 1]; BATCH];
            for (iov, r) in iovs.iter_mut().zip(pending) {
                *iov = [IoSlice::new(r)];
            }
            match sendmmsg(
                fd,
                &mut self.send_hdrs,
                iovs[..pending.len()].iter(),
                &self.dests[done..self.ready],
                [],
                MsgFlags::empty(),
            ) {
                Ok(r) => done += r.count().max(1),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    // The first datagram could not go (an unreachable client, say): skip it.
                    debug!(error = %e, "udp send");
                    done += 1;
                }
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
