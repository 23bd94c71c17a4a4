//! UDP queries answered from AF_XDP sockets (`listen_xdp`, feature `xdp`), past the kernel's
//! IP and UDP stack.
//!
//! An XDP program (`bpf/xdp_dns.c`, embedded as the committed `bpf/xdp_dns.o`) runs on every
//! frame the interface receives. UDP datagrams to one of the bound `listen` addresses, in IPv4
//! without options and not fragmented or IPv6 without extension headers, it redirects to the
//! AF_XDP socket of the receive queue they arrived on; everything else (ARP, ICMP, TCP, other
//! addresses and ports, fragments, IP options, queues without a socket) it passes to the kernel,
//! where the `listen` sockets answer as they do without XDP.
//!
//! One thread per configured queue ([`queue`]) takes the frames, answers each with
//! [`respond_into`](crate::dns::handler::respond_into) exactly as a UDP socket worker does (fast
//! path, general path, RRL, metrics), writes the reply over the query in the same frame
//! ([`frame`]: addresses and ports swapped, checksums) and transmits it. Replies too large for
//! the frame or the link's MTU go out through a `listen` socket instead, which fragments them.
//!
//! The program is attached in the driver when it can be (`mode = "auto"`) and the sockets
//! bound in zero-copy mode when the driver offers it, else in copy mode. Attaching needs
//! CAP_NET_ADMIN and CAP_BPF (or root), the sockets CAP_NET_RAW and locked memory (4 MiB each);
//! all of it happens at start, before `user` drops privileges. The attachment is a BPF link:
//! it goes when gslbd exits, however it exits.

pub mod frame;
pub mod queue;

use std::ffi::CString;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use aya::Ebpf;
use aya::maps::{HashMap as BpfHashMap, XskMap};
use aya::programs::{Xdp, XdpMode as AyaMode, xdp::XdpLinkId};
use tokio::sync::watch;
use tracing::{info, warn};

use super::{GslbHandler, Shared};
use crate::config::{ListenXdp, XdpMode};

pub use queue::Fallback;

/// The program's name in the object (its function).
const PROGRAM_NAME: &str = "xdp_dns";
/// Its listen-address map: 16 address bytes (IPv4 mapped), the port in network order, padding.
const LISTEN_MAP: &str = "listen_addrs";
/// Its receive queue → AF_XDP socket map.
const SOCKET_MAP: &str = "xsks";
/// The listen map's size in the program (`MAX_LISTEN`).
const MAX_LISTEN: usize = 256;
/// How long opening a socket is retried while the queue is still busy (a socket closed just
/// before, by a previous gslbd, takes about a second to let go of it).
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// The listen map's key for `addr`: what the program builds from a datagram's destination.
pub fn listen_key(addr: SocketAddr) -> [u8; 20] {
    let mut key = [0u8; 20];
    let ip = match addr.ip() {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    };
    key[..16].copy_from_slice(&ip.octets());
    key[16..18].copy_from_slice(&addr.port().to_be_bytes());
    key
}

/// The XDP program attached to the `listen_xdp` interface. Dropping it detaches the program
/// (the kernel's sockets then get every datagram again); [`Attached::detach`] says so in the log.
pub struct Attached {
    ebpf: Ebpf,
    link: Option<XdpLinkId>,
    interface: String,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached")
            .field("interface", &self.interface)
            .finish_non_exhaustive()
    }
}

impl Attached {
    /// Detaches the program from the interface.
    pub fn detach(mut self) {
        let Some(link) = self.link.take() else {
            return;
        };
        let prog: Option<&mut Xdp> = self
            .ebpf
            .program_mut(PROGRAM_NAME)
            .and_then(|p| p.try_into().ok());
        match prog.map(|p| p.detach(link)) {
            Some(Ok(())) => info!(interface = %self.interface, "XDP program detached"),
            Some(Err(e)) => {
                warn!(interface = %self.interface, error = %e, "cannot detach the XDP program")
            }
            None => {}
        }
    }
}

fn failed(interface: &str, what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("listen_xdp on {interface}: {what}: {e}"))
}

/// Loads the program, opens an AF_XDP socket on each of `cfg.queues`, attaches the program to
/// `cfg.interface` and starts one thread per queue answering from `shared` until `stop` turns
/// true. `listen` holds each bound listen address (real ports, not 0) with one of its UDP
/// sockets: the program redirects datagrams to those addresses, and replies too large for a
/// frame leave through those sockets.
pub fn start(
    cfg: &ListenXdp,
    listen: Vec<(SocketAddr, std::net::UdpSocket)>,
    shared: &Arc<Shared>,
    stop: &watch::Receiver<bool>,
) -> io::Result<(Attached, Vec<JoinHandle<()>>)> {
    let name = cfg.interface.as_str();
    let ifname = CString::new(name).map_err(|e| failed(name, "interface name", e))?;
    let ifindex = nix::net::if_::if_nametoindex(ifname.as_c_str())
        .map_err(|e| failed(name, "no such interface", e))?;
    if listen.len() > MAX_LISTEN {
        return Err(failed(
            name,
            "listen addresses",
            format!("{} is more than {MAX_LISTEN}", listen.len()),
        ));
    }
    let program =
        aya::include_bytes_aligned!(concat!(env!("CARGO_MANIFEST_DIR"), "/bpf/xdp_dns.o"));
    let mut ebpf = Ebpf::load(program).map_err(|e| {
        failed(
            name,
            "cannot load the XDP program (CAP_BPF, CAP_NET_ADMIN?)",
            e,
        )
    })?;
    {
        let map = ebpf
            .map_mut(LISTEN_MAP)
            .ok_or_else(|| failed(name, "the program", "has no listen map"))?;
        let mut addrs: BpfHashMap<_, [u8; 20], u8> =
            BpfHashMap::try_from(map).map_err(|e| failed(name, "the listen map", e))?;
        for (addr, _) in &listen {
            addrs
                .insert(listen_key(*addr), 1, 0)
                .map_err(|e| failed(name, "the listen map", e))?;
        }
    }
    let prog: &mut Xdp = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or_else(|| failed(name, "the program", "not in the object"))?
        .try_into()
        .map_err(|e| failed(name, "the program", e))?;
    prog.load()
        .map_err(|e| failed(name, "the kernel refused the XDP program", e))?;

    // The sockets, each opened on its own thread (a UMEM and its rings stay on one thread),
    // which then waits for the word to serve: no if anything below fails.
    let fallback = Arc::new(Fallback { sockets: listen });
    let mut handles = Vec::new();
    let mut go = Vec::new();
    let mut opened = Vec::new();
    for &q in &cfg.queues {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let worker = queue::Worker {
            handler: GslbHandler::new(shared.clone()),
            stats: shared.metrics.xdp_queue(q),
            fallback: fallback.clone(),
            ifname: ifname.clone(),
            stop: stop.clone(),
        };
        let thread_ifname = ifname.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("gslbd-xdp-{q}"))
                .spawn(move || {
                    let sock = open_retrying(&thread_ifname, q);
                    let sock = match sock {
                        Ok(s) => {
                            let _ = ready_tx.send(Ok((s.fd(), s.zero_copy)));
                            s
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    if go_rx.recv().is_ok() {
                        queue::serve(sock, worker);
                    }
                })?,
        );
        go.push(go_tx);
        let opened_q = ready_rx
            .recv()
            .map_err(|e| failed(name, &format!("queue {q}"), e))?
            .map_err(|e| {
                failed(
                    name,
                    &format!("cannot open an AF_XDP socket on queue {q}"),
                    e,
                )
            })?;
        opened.push((q, opened_q));
    }
    {
        let map = ebpf
            .map_mut(SOCKET_MAP)
            .ok_or_else(|| failed(name, "the program", "has no socket map"))?;
        let mut socks = XskMap::try_from(map).map_err(|e| failed(name, "the socket map", e))?;
        for (q, (fd, _)) in &opened {
            socks
                .set(*q, *fd, 0)
                .map_err(|e| failed(name, &format!("the socket map, queue {q}"), e))?;
        }
    }
    let prog: &mut Xdp = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or_else(|| failed(name, "the program", "not in the object"))?
        .try_into()
        .map_err(|e| failed(name, "the program", e))?;
    let (link, mode) =
        attach(prog, ifindex, cfg.mode).map_err(|e| failed(name, "cannot attach", e))?;
    for g in go {
        let _ = g.send(());
    }
    let zero_copy: Vec<u32> = opened
        .iter()
        .filter(|(_, (_, z))| *z)
        .map(|(q, _)| *q)
        .collect();
    info!(
        interface = name,
        mode,
        queues = ?cfg.queues,
        zero_copy = ?zero_copy,
        "XDP listening: UDP to the listen addresses answered from AF_XDP sockets"
    );
    Ok((
        Attached {
            ebpf,
            link: Some(link),
            interface: name.to_string(),
        },
        handles,
    ))
}

/// Attaches `prog` to interface `ifindex` as `mode` asks: `auto` tries the driver, then
/// generic. Returns the link and the mode's name.
fn attach(
    prog: &mut Xdp,
    ifindex: u32,
    mode: XdpMode,
) -> Result<(XdpLinkId, &'static str), String> {
    match mode {
        XdpMode::Native => prog_attach(prog, ifindex, AyaMode::Driver).map(|l| (l, "native")),
        XdpMode::Generic => prog_attach(prog, ifindex, AyaMode::Skb).map(|l| (l, "generic")),
        XdpMode::Auto => match prog_attach(prog, ifindex, AyaMode::Driver) {
            Ok(l) => Ok((l, "native")),
            Err(e) => {
                info!(error = %e, "XDP in the driver not possible; attaching generic XDP");
                prog_attach(prog, ifindex, AyaMode::Skb).map(|l| (l, "generic"))
            }
        },
    }
}

fn prog_attach(prog: &mut Xdp, ifindex: u32, mode: AyaMode) -> Result<XdpLinkId, String> {
    prog.attach_to_if_index(ifindex, mode).map_err(|e| {
        // aya's error says which call failed; the OS error below it says why.
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        msg
    })
}

/// [`queue::Queue::open`], again while the queue is busy (EBUSY) for up to [`BUSY_RETRY`].
fn open_retrying(ifname: &std::ffi::CStr, q: u32) -> io::Result<queue::Queue> {
    let until = std::time::Instant::now() + BUSY_RETRY;
    loop {
        match queue::Queue::open(ifname, q) {
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY) && std::time::Instant::now() < until =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_keys_are_what_the_program_builds() {
        let k = listen_key("198.18.0.2:53".parse().unwrap());
        assert_eq!(
            &k[..16],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 2]
        );
        assert_eq!(&k[16..], &[0, 53, 0, 0]);
        // Wildcards: the program zeroes the IPv4 part, or all 16 bytes for IPv6.
        let k = listen_key("0.0.0.0:5300".parse().unwrap());
        assert_eq!(
            &k[..16],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(&k[16..18], &5300u16.to_be_bytes());
        let k = listen_key("[::]:53".parse().unwrap());
        assert_eq!(
            &k[..18],
            &[0; 16].iter().chain(&[0, 53]).copied().collect::<Vec<_>>()[..]
        );
    }
}
