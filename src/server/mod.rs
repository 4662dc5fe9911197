//! Listening and connections: a socket for every `BindAddress` at `Port`
//! (every address, IPv4 and IPv6, by default), the `SocketPath` socket with
//! its identification handshake (spec §2.1), one task per connection serving
//! HTTP/1.1 with keep-alive and pipelining (`connection`), and the shutdown
//! protocol:
//!
//! 1. the `shutdown` future resolves: accept loops stop, listeners close;
//! 2. every connection is asked to finish its current response and close;
//! 3. after `DrainTimeout`, connections still open are dropped: their bodies
//!    end abruptly, which clients see as a cut transfer.
//!
//! `MaxConThreads` caps connections by not accepting beyond the cap (the
//! kernel's accept queue waits); accept errors never end a loop.

mod connection;
mod head;
mod respond;
mod wire;

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixListener, UnixStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::config::{BindAddress, BindHost, Listen};
use crate::state::AppState;

/// The sockets the daemon serves.
#[derive(Debug)]
pub struct Listeners {
    pub tcp: Vec<TcpListener>,
    pub unix: Option<(UnixListener, PathBuf)>,
    /// Passed by systemd: its socket files are not ours to remove.
    pub inherited: bool,
}

impl Listeners {
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp.iter().filter_map(|l| l.local_addr().ok()).collect()
    }
}

#[derive(Debug)]
pub enum BindError {
    InUse(SocketAddr),
    Failed { what: String, source: io::Error },
    NothingBound,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::InUse(addr) => write!(
                f,
                "cannot listen on {addr}: the port is already in use (another debcache or apt-cacher-ng?); \
                 choose another with Port= or BindAddress="
            ),
            BindError::Failed { what, .. } => write!(f, "cannot listen on {what}"),
            BindError::NothingBound => f.write_str("no address could be bound"),
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BindError::Failed { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Binds every configured address, or takes the sockets systemd passed
/// (socket activation).
pub async fn bind(config: &Listen) -> Result<Listeners, BindError> {
    if let Some(inherited) = systemd_sockets()? {
        return Ok(inherited);
    }
    let mut tcp = Vec::new();
    if config.bind_addresses.is_empty() {
        if config.port != 0 {
            for ip in [
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ] {
                let addr = SocketAddr::new(ip, config.port);
                match bind_tcp(addr) {
                    Ok(l) => tcp.push(l),
                    // A host without IPv6 (or IPv4) still serves the other family.
                    Err(BindError::Failed { source, .. }) if lacks_family(&source) => {
                        tracing::warn!("not listening on {addr}: {source}");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    } else {
        for entry in &config.bind_addresses {
            let Some(port) = entry.port.or(Some(config.port).filter(|p| *p != 0)) else {
                continue;
            };
            for addr in resolve(entry, port).await? {
                tcp.push(bind_tcp(addr)?);
            }
        }
    }
    let unix = match &config.socket_path {
        Some(path) => Some((bind_unix(path)?, path.clone())),
        None => None,
    };
    if tcp.is_empty() && unix.is_none() {
        return Err(BindError::NothingBound);
    }
    Ok(Listeners {
        tcp,
        unix,
        inherited: false,
    })
}

/// Sockets passed by systemd (`LISTEN_FDS`, descriptors from 3 on, for
/// this process when `LISTEN_PID` says so, and only then): they replace the configured
/// addresses. `LISTEN_FDNAMES` names them in errors. One unix socket at
/// most: a second is refused rather than closing the first.
fn systemd_sockets() -> Result<Option<Listeners>, BindError> {
    let count: i32 = match std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse().ok()) {
        Some(n) if n > 0 => n,
        _ => return Ok(None),
    };
    // sd_listen_fds' rule: the sockets are this process's only when
    // LISTEN_PID says so. Variables inherited from a socket-activated
    // parent (or missing their PID) must not make descriptors 3… ours.
    if std::env::var("LISTEN_PID").ok() != Some(std::process::id().to_string()) {
        tracing::warn!("LISTEN_FDS={count} is for another process (LISTEN_PID missing or not ours): ignored");
        return Ok(None);
    }
    let mut listeners = Listeners {
        tcp: Vec::new(),
        unix: None,
        inherited: true,
    };
    let end = 3i32.checked_add(count).ok_or_else(|| BindError::Failed {
        what: format!("LISTEN_FDS={count}"),
        source: io::ErrorKind::InvalidInput.into(),
    })?;
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    let mut names = names.split(':');
    for fd in 3..end {
        let what = match names.next().filter(|n| !n.is_empty()) {
            Some(name) => format!("inherited descriptor {fd} ({name})"),
            None => format!("inherited descriptor {fd}"),
        };
        let failed = |source| BindError::Failed {
            what: what.clone(),
            source,
        };
        // Looked at before it is taken: a LISTEN_FDS larger than what was
        // passed must not take over (and close) descriptors in use.
        // SAFETY: the descriptor is only borrowed for this call; an unused
        // number gives EBADF.
        let family = rustix::net::getsockname(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
            .map_err(|e| failed(e.into()))?
            .address_family();
        // SAFETY: a socket systemd handed to this process, which owns it
        // from here on; nothing else in it uses it.
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // systemd passes them without FD_CLOEXEC: a hook or a check command
        // must not inherit the daemon's listening sockets.
        rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC).map_err(|e| failed(e.into()))?;
        if family == rustix::net::AddressFamily::UNIX {
            if listeners.unix.is_some() {
                return Err(failed(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a second unix socket; debcache serves one (give the socket unit one ListenStream= path)",
                )));
            }
            let std_listener = std::os::unix::net::UnixListener::from(owned);
            std_listener.set_nonblocking(true).map_err(failed)?;
            let path = std_listener
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(PathBuf::from))
                .unwrap_or_default();
            listeners.unix = Some((UnixListener::from_std(std_listener).map_err(failed)?, path));
        } else {
            let std_listener = std::net::TcpListener::from(owned);
            std_listener.set_nonblocking(true).map_err(failed)?;
            listeners
                .tcp
                .push(TcpListener::from_std(std_listener).map_err(failed)?);
        }
    }
    Ok(Some(listeners))
}

fn lacks_family(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL)
    )
}

async fn resolve(entry: &BindAddress, port: u16) -> Result<Vec<SocketAddr>, BindError> {
    match &entry.host {
        BindHost::Ip(ip) => Ok(vec![SocketAddr::new(*ip, port)]),
        BindHost::Name(name) => tokio::net::lookup_host((name.as_str(), port))
            .await
            .map(Iterator::collect)
            .map_err(|source| BindError::Failed {
                what: format!("{name}:{port}"),
                source,
            }),
    }
}

fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, BindError> {
    let failed = |source: io::Error| {
        if source.kind() == io::ErrorKind::AddrInUse {
            BindError::InUse(addr)
        } else {
            BindError::Failed {
                what: addr.to_string(),
                source,
            }
        }
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(failed)?;
    if addr.is_ipv6() {
        // Own socket per family, as acng: [::] must not take IPv4 too.
        rustix::net::sockopt::set_ipv6_v6only(&socket, true).map_err(|e| failed(e.into()))?;
    }
    socket.set_reuseaddr(true).map_err(failed)?;
    socket.bind(addr).map_err(failed)?;
    socket.listen(1024).map_err(failed)
}

fn bind_unix(path: &PathBuf) -> Result<UnixListener, BindError> {
    let failed = |source| BindError::Failed {
        what: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    // A socket left by a previous run; anything else is not ours to remove.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            std::fs::remove_file(path).map_err(failed)?;
        }
    }
    UnixListener::bind(path).map_err(failed)
}

/// Where the connections of a running daemon stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Finish the current response, then close.
    Draining,
    /// Close now.
    Closing,
}

/// What every connection task needs.
struct Shared {
    state: AppState,
    limit: Option<Arc<Semaphore>>,
    phase: watch::Receiver<Phase>,
}

/// Serves until `shutdown` resolves, then drains (see the module docs).
pub async fn run(listeners: Listeners, state: AppState, shutdown: impl Future<Output = ()>) {
    let listen = &state.config.listen;
    let drain = listen.drain_timeout;
    let (phase_tx, phase_rx) = watch::channel(Phase::Serving);
    let shared = Arc::new(Shared {
        limit: listen.max_connections.map(|n| Arc::new(Semaphore::new(n))),
        state,
        phase: phase_rx,
    });
    let mut loops = Vec::new();
    let unix = listeners.unix.map(|(l, _)| Listener::Unix(l));
    for listener in listeners.tcp.into_iter().map(Listener::Tcp).chain(unix) {
        loops.push(tokio::spawn(accept_loop(listener, Arc::clone(&shared))));
    }
    drop(shared);
    shutdown.await;
    tracing::info!(
        "stopping: no new connections; open ones finish within {}s",
        drain.as_secs()
    );
    let _ = phase_tx.send(Phase::Draining);
    for l in loops {
        let _ = l.await;
    }
    if tokio::time::timeout(drain, phase_tx.closed()).await.is_err() {
        tracing::warn!("drain deadline reached: closing the remaining connections");
        let _ = phase_tx.send(Phase::Closing);
        phase_tx.closed().await;
    }
}

/// A listening socket of either kind.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// A connection just accepted.
enum Accepted {
    Tcp(TcpStream, SocketAddr),
    Unix(UnixStream),
}

impl Listener {
    async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => l.accept().await.map(|(s, peer)| Accepted::Tcp(s, peer)),
            Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        }
    }
}

/// Accepts until the daemon stops; errors slow it down, never end it.
async fn accept_loop(listener: Listener, shared: Arc<Shared>) {
    let mut phase = shared.phase.clone();
    let mut backoff = AcceptBackoff::default();
    loop {
        let Some(permit) = acquire(&shared, &mut phase).await else {
            return;
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = phase.changed() => return,
        };
        match accepted {
            Ok(conn) => {
                backoff.reset();
                tokio::spawn(connection::start(conn, Arc::clone(&shared), permit));
            }
            Err(e) => backoff.wait(&e).await,
        }
    }
}

/// A connection slot, waiting while the cap is reached; `None` once
/// stopping.
async fn acquire(
    shared: &Shared,
    phase: &mut watch::Receiver<Phase>,
) -> Option<Option<OwnedSemaphorePermit>> {
    if *phase.borrow() != Phase::Serving {
        return None;
    }
    let Some(limit) = &shared.limit else {
        return Some(None);
    };
    tokio::select! {
        permit = Arc::clone(limit).acquire_owned() => permit.ok().map(Some),
        _ = phase.changed() => None,
    }
}

/// Backs off on accept errors that will not go away at once (descriptor or
/// memory exhaustion), logging at most once per episode.
#[derive(Default)]
struct AcceptBackoff {
    delay: Option<Duration>,
}

impl AcceptBackoff {
    fn reset(&mut self) {
        self.delay = None;
    }

    async fn wait(&mut self, e: &io::Error) {
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
        ) {
            return;
        }
        let delay = match self.delay {
            None => {
                tracing::warn!("accept failed: {e}; retrying");
                Duration::from_millis(10)
            }
            Some(d) => (d * 2).min(Duration::from_secs(1)),
        };
        self.delay = Some(delay);
        tokio::time::sleep(delay).await;
    }
}
