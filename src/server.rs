//! The server is a function of a config and shared state: [`start`] binds every listen address,
//! spawns the workers and returns the bound addresses; `main` and the tests call the same thing.
//!
//! Each worker has its own `SO_REUSEPORT` UDP and TCP sockets on every listen address, so the
//! kernel spreads queries over workers and a query never crosses threads. A UDP socket is served
//! by a blocking OS thread of its own ([`crate::dns::udp`]: batched `recvmmsg`/`sendmmsg`); the
//! worker's TCP sockets by one single-threaded tokio runtime ([`crate::dns::tcp`]). Both hand the
//! bytes to [`crate::dns::handler::respond_into`]: the wire fast path, else hickory's parser and
//! [`crate::dns::GslbHandler`]. With `listen_xdp` (feature `xdp`), an XDP program on one interface
//! hands the UDP datagrams for the listen addresses to AF_XDP sockets, one thread per receive
//! queue, which answer through the same function ([`crate::dns::xdp`]); the sockets get the rest.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;
use tracing::{error, info};

use crate::config::{Loaded, ServerConfig};
use crate::control::Control;
use crate::dns::tcp::TcpStats;
use crate::dns::{GslbHandler, Shared};
use crate::health::HealthHandle;
use crate::health::runner::{self, RunnerConfig};
use crate::metrics::Registry;

/// A running DNS server.
pub struct Running {
    /// The bound addresses (with real ports when the config asked for port 0), UDP and TCP alike.
    pub dns_addrs: Vec<SocketAddr>,
    /// The state every worker answers from (the served catalog, settings, counters).
    pub shared: Arc<Shared>,
    /// The TCP side's counters and open connections, shared by every worker.
    pub tcp: Arc<TcpStats>,
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    /// The XDP program on the `listen_xdp` interface (its queues' threads are in `workers`).
    #[cfg(feature = "xdp")]
    xdp: Option<crate::dns::xdp::Attached>,
}

impl Running {
    /// Stops accepting, lets in-flight work finish, and joins the workers. An XDP program is
    /// detached first, so the sockets see every datagram while they drain.
    pub fn shutdown(self) {
        #[cfg(feature = "xdp")]
        if let Some(x) = self.xdp {
            x.detach();
        }
        let _ = self.stop.send(true);
        for w in self.workers {
            let _ = w.join();
        }
    }
}

fn bind(addr: SocketAddr, ty: Type) -> io::Result<Socket> {
    let proto = if ty == Type::DGRAM {
        Protocol::UDP
    } else {
        Protocol::TCP
    };
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_port(true)?;
    if ty == Type::STREAM {
        s.set_reuse_address(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    if ty == Type::STREAM {
        s.listen(1024)?;
    }
    Ok(s)
}

/// Binds `workers` UDP and TCP sockets on `addr`, all on one port (the kernel's pick if 0).
fn bind_all(addr: SocketAddr, workers: usize) -> io::Result<(SocketAddr, Vec<(Socket, Socket)>)> {
    let mut last_err = None;
    for _ in 0..8 {
        match try_bind_all(addr, workers) {
            Ok(v) => return Ok(v),
            // With port 0 the TCP side of the kernel's UDP pick may be taken: pick again.
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => {
                last_err = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("cannot bind")))
}

fn try_bind_all(
    addr: SocketAddr,
    workers: usize,
) -> io::Result<(SocketAddr, Vec<(Socket, Socket)>)> {
    if addr.port() != 0 {
        // SO_REUSEPORT would let a second gslbd (or anything else of this user) share the port
        // silently and split the traffic; a plain bind first turns that into "address in use".
        for ty in [Type::DGRAM, Type::STREAM] {
            let probe = Socket::new(Domain::for_address(addr), ty, None)?;
            if addr.is_ipv6() {
                probe.set_only_v6(true)?;
            }
            probe.bind(&addr.into())?;
        }
    }
    let first = bind(addr, Type::DGRAM)?;
    let bound = first
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP socket"))?;
    let mut out = vec![(first, bind(bound, Type::STREAM)?)];
    for _ in 1..workers {
        out.push((bind(bound, Type::DGRAM)?, bind(bound, Type::STREAM)?));
    }
    Ok((bound, out))
}

/// Starts the DNS workers on every listen address of `config`, answering from `shared`; with
/// `listen_xdp`, also the XDP program and a thread per AF_XDP queue ([`crate::dns::xdp`]).
pub fn start(config: &ServerConfig, shared: Arc<Shared>) -> io::Result<Running> {
    #[cfg(not(feature = "xdp"))]
    if config.listen_xdp.is_some() {
        return Err(io::Error::other(
            "listen_xdp: this gslbd was built without XDP support (cargo feature `xdp`)",
        ));
    }
    let workers = if config.workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        config.workers
    };
    let mut per_worker: Vec<Vec<(Socket, Socket)>> = (0..workers).map(|_| Vec::new()).collect();
    let mut dns_addrs = Vec::new();
    // The XDP path's way out for replies too large for a frame: a UDP socket of each address.
    #[cfg(feature = "xdp")]
    let mut xdp_sockets = Vec::new();
    for &addr in &config.listen {
        let (bound, socks) = bind_all(addr, workers)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        dns_addrs.push(bound);
        #[cfg(feature = "xdp")]
        if let (Some(_), Some((udp, _))) = (&config.listen_xdp, socks.first()) {
            xdp_sockets.push((bound, std::net::UdpSocket::from(udp.try_clone()?)));
        }
        for (w, pair) in socks.into_iter().enumerate() {
            per_worker[w].push(pair);
        }
    }
    let (stop, stop_rx) = watch::channel(false);
    let tcp = Arc::new(TcpStats::default());
    let mut handles = Vec::new();
    for (w, socks) in per_worker.into_iter().enumerate() {
        let handler = GslbHandler::new(shared.clone());
        let stop_rx = stop_rx.clone();
        let tcp_timeout = config.tcp_timeout;
        let tcp_limits = config.tcp_limits;
        let tcp = tcp.clone();
        let mut listeners = Vec::new();
        for (i, (udp, listener)) in socks.into_iter().enumerate() {
            // UDP: a blocking thread of its own per socket (see `dns::udp`).
            let udp: std::net::UdpSocket = udp.into();
            let (h, stop_rx) = (handler.clone(), stop_rx.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("gslbd-udp-{w}.{i}"))
                    .spawn(move || crate::dns::udp::serve(udp, h, stop_rx))?,
            );
            listeners.push(std::net::TcpListener::from(listener));
        }
        // TCP: the worker's connections as tasks of one single-threaded runtime.
        let handle = crate::rt::on_own_thread(&format!("gslbd-tcp-{w}"), move || async move {
            let mut tasks = Vec::new();
            for listener in listeners {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(t) => tasks.push(tokio::spawn(crate::dns::tcp::serve(
                        t,
                        handler.clone(),
                        tcp_timeout,
                        TCP_DRAIN,
                        tcp_limits,
                        tcp.clone(),
                        stop_rx.clone(),
                    ))),
                    Err(e) => error!(worker = w, error = %e, "cannot register socket"),
                }
            }
            for t in tasks {
                let _ = t.await;
            }
        })?;
        handles.push(handle);
    }
    // XDP last: until it is attached the sockets above get every datagram.
    #[cfg(feature = "xdp")]
    let xdp = match &config.listen_xdp {
        None => None,
        Some(x) => match crate::dns::xdp::start(x, xdp_sockets, &shared, &stop_rx) {
            Ok((attached, threads)) => {
                handles.extend(threads);
                Some(attached)
            }
            Err(e) => {
                let _ = stop.send(true);
                for h in handles {
                    let _ = h.join();
                }
                return Err(e);
            }
        },
    };
    info!(addrs = ?dns_addrs, workers, "DNS listening (UDP and TCP)");
    Ok(Running {
        dns_addrs,
        shared,
        tcp,
        stop,
        workers: handles,
        #[cfg(feature = "xdp")]
        xdp,
    })
}

/// How long shutdown waits for open TCP connections to finish their query.
const TCP_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// A whole gslbd: the health runner, the DNS workers and the admin server over one configuration.
pub struct Gslbd {
    /// The DNS workers.
    pub dns: Running,
    /// The control plane: config, health handle, counters, reloads.
    pub control: Arc<Control>,
    /// The admin server's address, when one is configured.
    pub admin_addr: Option<SocketAddr>,
    health_thread: Option<JoinHandle<()>>,
    cluster_thread: Option<JoinHandle<()>>,
    admin_thread: Option<JoinHandle<()>>,
    admin_stop: Option<watch::Sender<bool>>,
}

impl Gslbd {
    /// The addresses DNS is answered on, with the real ports when the config asked for port 0.
    pub fn dns_addrs(&self) -> &[SocketAddr] {
        &self.dns.dns_addrs
    }

    /// The health runner's handle: status, overrides, the served catalog.
    pub fn health(&self) -> &HealthHandle {
        &self.control.health
    }

    /// Stops DNS (draining TCP queries in flight), then the admin server, then the runner.
    pub fn shutdown(mut self) {
        self.dns.shutdown();
        if let Some(s) = self.admin_stop.take() {
            let _ = s.send(true);
        }
        if let Some(t) = self.admin_thread.take() {
            let _ = t.join();
        }
        // Leaving the fleet revokes our lease: our votes go at once, not after its TTL.
        if let Some(c) = &self.control.cluster {
            c.stop();
        }
        if let Some(t) = self.cluster_thread.take() {
            let _ = t.join();
        }
        self.control.health.stop();
        if let Some(t) = self.health_thread.take() {
            let _ = t.join();
        }
    }
}

/// Options of [`launch`] that are not configuration.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// The server config file, re-read on reload. None: reloads reuse the config in force.
    pub config_file: Option<std::path::PathBuf>,
    /// Reload on SIGHUP (the binary sets this; tests that are one process with others do not).
    pub sighup: bool,
}

/// Starts the runner (which probes every region at once), the DNS workers and the admin server.
pub fn launch(loaded: Loaded, opts: LaunchOptions) -> io::Result<Gslbd> {
    let Loaded {
        config,
        geo,
        took: _,
        zones,
        maps,
    } = loaded;
    let metrics = Registry::new();
    let member = config.cluster.as_ref().map(|_| {
        let text = std::fs::read_to_string(&config.file).unwrap_or_default();
        crate::cluster::member_of(&text, &zones)
    });
    let catalog = crate::dns::catalog(zones, maps, geo, &metrics);
    let (health, health_thread) = runner::start(
        Arc::new(catalog),
        RunnerConfig {
            state_file: config.health.state_file.clone(),
            rtt_half_life: config.health.rtt_half_life,
            jitter: config.health.jitter,
            fleet: config.cluster.as_ref().map(|c| runner::FleetMember {
                instance: c.instance.clone(),
                rule: c.down,
            }),
        },
    )?;
    let cluster = match (&config.cluster, member) {
        (Some(c), Some(m)) => Some(crate::cluster::start(c.clone(), health.clone(), m)?),
        _ => None,
    };
    let mut shared = Shared::new(health.served.clone(), config.udp_payload, metrics.clone());
    if let Some(s) = Arc::get_mut(&mut shared) {
        s.query_log = config.query_log;
        s.rrl = config.rrl.clone().map(crate::dns::rrl::Rrl::new);
        s.nsid = config.nsid.clone().map(Vec::into_boxed_slice);
        s.cookies = config
            .cookie_secrets
            .clone()
            .map(crate::dns::cookie::Cookies::new);
    }
    let dns = start(&config, shared)?;
    let (cluster, cluster_thread) = match cluster {
        Some((h, t)) => (Some(h), Some(t)),
        None => (None, None),
    };
    let control = Arc::new(Control::new(
        config.clone(),
        opts.config_file.clone(),
        health,
        metrics,
        dns.tcp.clone(),
        cluster,
    ));
    let (admin_stop, admin_rx) = watch::channel(false);
    let (admin_addr, admin_thread) = crate::admin::start(control.clone(), opts.sighup, admin_rx)?;
    Ok(Gslbd {
        dns,
        control,
        admin_addr,
        health_thread: Some(health_thread),
        cluster_thread,
        admin_thread: Some(admin_thread),
        admin_stop: Some(admin_stop),
    })
}
