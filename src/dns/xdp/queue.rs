//! One AF_XDP socket on one receive queue, and the loop that answers from it.
//!
//! Each socket has a UMEM of its own: [`FRAMES`] frames of [`FRAME_SIZE`] bytes in one anonymous
//! mapping, shared with the kernel. A frame goes round: fill ring (the kernel may write a packet
//! into it) → receive ring (a query for us) → answered in place → transmit ring → completion
//! ring → fill ring again; a frame with nothing to send goes straight back to the fill ring. The
//! rings are as large as the frame count, so a ring is never too full for a frame that comes
//! back. Everything here runs on the queue's own thread; nothing is shared but the counters.
//!
//! The loop takes up to [`BATCH`] frames per round, answers each with
//! [`respond_into`](crate::dns::handler::respond_into) (fast path, general path, RRL and metrics
//! as over a socket) into one reused buffer, writes the reply over the query in its frame, and
//! sends the round's replies with one `sendto` (copy mode sends at most 32 frames a call, hence
//! the batch). When the receive ring is empty it sleeps in `poll` for at most [`STOP_CHECK`].

use std::ffi::{CStr, CString};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_server::net::xfer::Protocol;
use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};
use tokio::sync::watch;
use tracing::debug;
use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User};

use super::frame;
use crate::dns::GslbHandler;
use crate::dns::handler::{Outcome, respond_into};
use crate::metrics::XdpQueueStats;

/// Bytes per UMEM frame: an Ethernet frame of a 1500-byte MTU after the kernel's 256 bytes of
/// headroom, as Knot DNS sizes them. Longer queries are dropped by the kernel (and counted).
pub const FRAME_SIZE: u32 = 2048;
/// Frames per socket (4 MiB of locked memory), and the size of each of its four rings.
pub const FRAMES: u32 = 2048;
/// Frames taken from the receive ring per round.
const BATCH: usize = 32;
/// How long an idle loop sleeps before it looks at the stop signal again.
const STOP_CHECK: Duration = Duration::from_millis(100);
/// How often the kernel's drop count and the interface MTU are read again.
const TICK: Duration = Duration::from_secs(1);

/// A bound AF_XDP socket with its UMEM and rings. Fields drop in order: rings and sockets
/// (closing the socket) before the memory they point into.
pub struct Queue {
    rx: RingRx,
    tx: RingTx,
    device: DeviceQueue,
    user: User,
    _umem: Umem,
    /// The UMEM's first byte; `area` keeps it mapped.
    base: NonNull<u8>,
    _area: memmap2::MmapMut,
    /// Whether the driver took the socket in zero-copy mode.
    pub zero_copy: bool,
}

fn errno(e: xdpilone::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.get_raw())
}

impl Queue {
    /// Opens, configures and binds an AF_XDP socket on `queue` of `ifname`, copy or zero-copy
    /// as the driver allows, and hands every frame to the kernel's fill ring.
    pub fn open(ifname: &CStr, queue: u32) -> std::io::Result<Queue> {
        let len = (FRAMES * FRAME_SIZE) as usize;
        let mut area = memmap2::MmapOptions::new().len(len).populate().map_anon()?;
        let base = NonNull::new(area.as_mut_ptr())
            .ok_or_else(|| std::io::Error::other("mmap returned NULL"))?;
        let config = UmemConfig {
            fill_size: FRAMES,
            complete_size: FRAMES,
            frame_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
        };
        #[allow(
            unsafe_code,
            reason = "the kernel writes packets into this memory; it stays mapped while the socket lives"
        )]
        // SAFETY: `area` is a page-aligned anonymous mapping of `len` bytes, owned by the Queue
        // returned, whose field order unmaps it only after the socket is closed.
        let umem = unsafe { Umem::new(config, NonNull::slice_from_raw_parts(base, len)) }
            .map_err(errno)?;
        let mut info = IfInfo::invalid();
        info.from_name(ifname).map_err(errno)?;
        info.set_queue(queue);
        let sock = Socket::with_shared(&info, &umem).map_err(errno)?;
        let mut device = umem.fq_cq(&sock).map_err(errno)?;
        let user = umem
            .rx_tx(
                &sock,
                &SocketConfig {
                    rx_size: NonZeroU32::new(FRAMES),
                    tx_size: NonZeroU32::new(FRAMES),
                    // Neither COPY nor ZEROCOPY: the kernel tries zero-copy, then copies.
                    bind_flags: SocketConfig::XDP_BIND_NEED_WAKEUP,
                },
            )
            .map_err(errno)?;
        let rx = user.map_rx().map_err(errno)?;
        let tx = user.map_tx().map_err(errno)?;
        umem.bind(&user).map_err(errno)?;
        let mut filled = 0;
        while filled < FRAMES {
            let mut w = device.fill(FRAMES - filled);
            let n = w.capacity();
            let got = w.insert((filled..filled + n).map(|i| u64::from(i) * u64::from(FRAME_SIZE)));
            w.commit();
            if got == 0 {
                return Err(std::io::Error::other("the fill ring takes no frames"));
            }
            filled += got;
        }
        let zero_copy = zero_copy(rx.as_raw_fd());
        Ok(Queue {
            rx,
            tx,
            device,
            user,
            _umem: umem,
            base,
            _area: area,
            zero_copy,
        })
    }

    /// The socket's descriptor, for the XDP program's socket map.
    pub fn fd(&self) -> i32 {
        self.rx.as_raw_fd()
    }

    /// The frame holding the packet at UMEM address `addr`, from there to the frame's end: where
    /// the packet is read and its reply written.
    fn frame(&mut self, addr: u64) -> Option<&mut [u8]> {
        let chunk = addr / u64::from(FRAME_SIZE);
        if chunk >= u64::from(FRAMES) {
            return None;
        }
        let end = (chunk + 1) * u64::from(FRAME_SIZE);
        #[allow(
            unsafe_code,
            reason = "a frame of the UMEM, shared with the kernel, seen as a slice"
        )]
        // SAFETY: [addr, end) lies within the mapping (chunk < FRAMES). The frame came from the
        // receive ring, so the kernel leaves it alone until we put it on the transmit or fill
        // ring, and the returned borrow of `self` ends before either.
        Some(unsafe {
            std::slice::from_raw_parts_mut(
                self.base.as_ptr().add(addr as usize),
                (end - addr) as usize,
            )
        })
    }

    /// Takes up to `descs.len()` received frames; returns how many.
    fn receive(&mut self, descs: &mut [XdpDesc]) -> usize {
        let mut r = self.rx.receive(descs.len() as u32);
        let mut n = 0;
        while n < descs.len() {
            let Some(d) = r.read() else { break };
            descs[n] = d;
            n += 1;
        }
        r.release();
        n
    }

    /// Puts `descs` (at most [`BATCH`]) on the transmit ring and has the kernel send them; returns
    /// how many went. Frames the ring does not take (it never should: it has room for every
    /// frame) go back to the fill ring.
    fn transmit(&mut self, descs: &[XdpDesc]) -> usize {
        let mut sent = 0;
        let mut stalls = 0;
        while sent < descs.len() {
            let mut w = self.tx.transmit((descs.len() - sent) as u32);
            let room = w.capacity() as usize;
            // At most `room`: `insert` loses the item it has no slot for.
            let n = w.insert(descs[sent..sent + room].iter().copied()) as usize;
            w.commit();
            drop(w);
            sent += n;
            if n == 0 {
                self.tx.wake();
                self.recycle_completed();
                stalls += 1;
                if stalls > 8 {
                    let mut rest = [0u64; BATCH];
                    let rest = &mut rest[..descs.len() - sent];
                    for (r, d) in rest.iter_mut().zip(&descs[sent..]) {
                        *r = d.addr;
                    }
                    self.give_back(rest);
                    break;
                }
            }
        }
        // Copy mode sends at most 32 frames per call: call again while frames are waiting.
        for _ in 0..8 {
            if self.tx.pending() == 0 || !self.tx.needs_wakeup() {
                break;
            }
            self.tx.wake();
        }
        sent
    }

    /// Frames back to the fill ring (their chunk's start: any address in a chunk names it).
    fn give_back(&mut self, addrs: &[u64]) {
        let mut done = 0;
        let mut stalls = 0;
        while done < addrs.len() && stalls < 8 {
            let mut w = self.device.fill((addrs.len() - done) as u32);
            let room = w.capacity() as usize;
            let n = w.insert(
                addrs[done..done + room]
                    .iter()
                    .map(|a| a - a % u64::from(FRAME_SIZE)),
            ) as usize;
            w.commit();
            done += n;
            if n == 0 {
                stalls += 1;
            }
        }
        if self.device.needs_wakeup() {
            self.device.wake();
        }
    }

    /// Moves the frames the kernel has finished sending to the fill ring.
    fn recycle_completed(&mut self) {
        let mut addrs = [0u64; BATCH];
        loop {
            let mut c = self.device.complete(BATCH as u32);
            let mut n = 0;
            while n < BATCH {
                let Some(a) = c.read() else { break };
                addrs[n] = a;
                n += 1;
            }
            c.release();
            drop(c);
            if n == 0 {
                return;
            }
            self.give_back(&addrs[..n]);
        }
    }

    /// Sleeps until a frame arrives or `timeout` passes.
    fn wait(&self, timeout: Duration) {
        let mut pfd = libc::pollfd {
            fd: self.rx.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        #[allow(unsafe_code, reason = "poll(2) on our own socket")]
        // SAFETY: one valid pollfd, for the length passed.
        let _ = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
    }

    /// The kernel's count of frames dropped for this socket (receive ring full, no fill frame).
    fn kernel_dropped(&self) -> Option<u64> {
        let s = self.user.statistics_v2().ok()?;
        Some(s.rx_dropped + s.rx_ring_full)
    }
}

/// Whether the socket `fd` was bound in zero-copy mode (`XDP_OPTIONS`).
fn zero_copy(fd: i32) -> bool {
    let mut opts = libc::xdp_options { flags: 0 };
    let mut len = std::mem::size_of::<libc::xdp_options>() as libc::socklen_t;
    #[allow(unsafe_code, reason = "getsockopt(2) into a struct of ours")]
    // SAFETY: `opts` is writable for `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_OPTIONS,
            (&raw mut opts).cast(),
            &mut len,
        )
    };
    r == 0 && opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0
}

/// The MTU of interface `ifname` (`SIOCGIFMTU` on `sock`, any socket of the namespace), or
/// `None` if it cannot be read.
pub fn mtu(sock: &socket2::Socket, ifname: &CStr) -> Option<usize> {
    let name = ifname.to_bytes();
    #[allow(unsafe_code, reason = "an ioctl(2) with a zeroed C struct")]
    // SAFETY: ifreq is plain data (zero is valid); the name is copied in bounds and stays
    // NUL-terminated; SIOCGIFMTU writes the union's `ifru_mtu`, which is then read.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        if name.len() >= req.ifr_name.len() {
            return None;
        }
        for (d, s) in req.ifr_name.iter_mut().zip(name) {
            *d = *s as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFMTU, &mut req) != 0 {
            return None;
        }
        usize::try_from(req.ifr_ifru.ifru_mtu).ok()
    }
}

/// Replies that do not fit their frame or the link go out through the kernel, from the `listen`
/// socket the query was sent to (one of its SO_REUSEPORT sockets), so they are fragmented like
/// any socket reply.
pub struct Fallback {
    /// Each bound listen address with one of its UDP sockets.
    pub sockets: Vec<(SocketAddr, std::net::UdpSocket)>,
}

impl Fallback {
    /// Sends `msg` from `from` (our address the query went to) to `to`. False when there is no
    /// socket for `from` or the kernel refused it.
    fn send(&self, from: SocketAddr, to: SocketAddr, msg: &[u8]) -> bool {
        let exact = self.sockets.iter().find(|(a, _)| *a == from);
        let wildcard = || {
            self.sockets.iter().find(|(a, _)| {
                a.port() == from.port() && a.is_ipv4() == from.is_ipv4() && a.ip().is_unspecified()
            })
        };
        let Some((bound, sock)) = exact.or_else(wildcard) else {
            return false;
        };
        let iov = [std::io::IoSlice::new(msg)];
        let dest = SockaddrStorage::from(to);
        let flags = MsgFlags::MSG_DONTWAIT;
        let fd = sock.as_raw_fd();
        let sent = match (bound.ip().is_unspecified(), from) {
            (false, _) => sendmsg(fd, &iov, &[], flags, Some(&dest)),
            // A wildcard socket: the source address is the one the client asked.
            (true, SocketAddr::V4(a)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                sendmsg(
                    fd,
                    &iov,
                    &[ControlMessage::Ipv4PacketInfo(&info)],
                    flags,
                    Some(&dest),
                )
            }
            (true, SocketAddr::V6(a)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    ipi6_ifindex: 0,
                };
                sendmsg(
                    fd,
                    &iov,
                    &[ControlMessage::Ipv6PacketInfo(&info)],
                    flags,
                    Some(&dest),
                )
            }
        };
        match sent {
            Ok(_) => true,
            Err(e) => {
                debug!(error = %e, %to, "xdp: reply through the socket");
                false
            }
        }
    }
}

/// What a queue's loop answers with.
pub struct Worker {
    /// The handler every query goes through.
    pub handler: GslbHandler,
    /// The queue's counters.
    pub stats: Arc<XdpQueueStats>,
    /// Where replies too large for a frame go.
    pub fallback: Arc<Fallback>,
    /// The interface, for its MTU.
    pub ifname: CString,
    /// Turns true at shutdown.
    pub stop: watch::Receiver<bool>,
}

/// Answers the queries arriving on `q` until `w.stop` turns true.
pub fn serve(mut q: Queue, w: Worker) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = Vec::with_capacity(FRAME_SIZE as usize);
    let mut rx = [XdpDesc::default(); BATCH];
    let mut tx = [XdpDesc::default(); BATCH];
    let mut back = [0u64; BATCH];
    // An unbound socket to ask the interface's MTU with.
    let ioctl_sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).ok();
    let read_mtu = |now: usize| {
        ioctl_sock
            .as_ref()
            .and_then(|s| mtu(s, &w.ifname))
            .unwrap_or(now)
    };
    let mut mtu_now = read_mtu(1500);
    let mut next_tick = Instant::now() + TICK;
    while !*w.stop.borrow() {
        q.recycle_completed();
        let n = q.receive(&mut rx);
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + TICK;
            if let Some(d) = q.kernel_dropped() {
                w.stats.kernel_dropped.store(d, Relaxed);
            }
            mtu_now = read_mtu(mtu_now);
        }
        if n == 0 {
            q.wait(STOP_CHECK);
            continue;
        }
        let (mut sends, mut backs, mut unanswered) = (0, 0, 0);
        for d in &rx[..n] {
            let addr = d.addr;
            let reply = match q.frame(addr) {
                Some(f) => answer(f, d.len as usize, mtu_now, &w, &mut out),
                None => Reply::Nothing,
            };
            if let Reply::Frame(len) = reply {
                tx[sends] = XdpDesc {
                    addr,
                    len: len as u32,
                    options: 0,
                };
                sends += 1;
            } else {
                unanswered += u64::from(reply == Reply::Nothing);
                back[backs] = addr;
                backs += 1;
            }
        }
        w.stats.rx.fetch_add(n as u64, Relaxed);
        w.stats.unanswered.fetch_add(unanswered, Relaxed);
        let sent = q.transmit(&tx[..sends]);
        w.stats.tx.fetch_add(sent as u64, Relaxed);
        q.give_back(&back[..backs]);
    }
}

/// What became of one received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// The frame now holds the reply, this many bytes: transmit it.
    Frame(usize),
    /// The reply went through the kernel's socket: the frame goes back.
    Socket,
    /// Nothing to send: the frame goes back.
    Nothing,
}

/// Answers the query in `frame` (`len` bytes received). A reply that fits the frame and an
/// `mtu`-sized IP packet is written over the query; a larger one goes through the socket.
fn answer(frame: &mut [u8], len: usize, mtu: usize, w: &Worker, out: &mut Vec<u8>) -> Reply {
    let Some(d) = frame.get(..len).and_then(frame::parse) else {
        return Reply::Nothing;
    };
    // Replies to port 0 or an unspecified address cannot arrive.
    if d.src.port() == 0 || d.src.ip().is_unspecified() {
        return Reply::Nothing;
    }
    let send = match respond_into(&w.handler, &frame[d.payload()], d.src, Protocol::Udp, out) {
        Outcome::Reply | Outcome::Malformed => !out.is_empty(),
        Outcome::Silent => false,
    };
    if !send {
        return Reply::Nothing;
    }
    if d.header_len + out.len() > frame.len() || d.ip_overhead() + out.len() > mtu {
        if !w.fallback.send(d.dst, d.src, out) {
            return Reply::Nothing;
        }
        w.stats
            .via_socket
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Reply::Socket;
    }
    frame[d.header_len..d.header_len + out.len()].copy_from_slice(out);
    Reply::Frame(frame::reply(frame, &d, out.len()))
}
