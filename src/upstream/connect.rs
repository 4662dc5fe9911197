//! How upstream connections are made: resolve, connect (the next address
//! after `FastTimeout`, in `ConnectProto` order), then TLS for https. Through
//! a proxy, http targets get absolute-form requests on the proxy connection
//! and https targets a `CONNECT` tunnel with TLS inside it. Every failure is
//! a [`ConnectError`], so the reasons clients see come from types, not from
//! another crate's message text.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::tls::TlsFailure;
use crate::config::IpFamily;
use crate::url::HttpUrl;

/// Largest response head a proxy may send to a `CONNECT`.
const MAX_PROXY_HEAD: usize = 8 * 1024;
/// Bytes read from a TLS connection per system call.
const TLS_READ_BUFFER: usize = 128 * 1024;

/// Why no connection was made.
#[derive(Debug)]
pub enum ConnectError {
    /// The name does not resolve (or to no address of `ConnectProto`).
    Dns { host: String, source: Option<io::Error> },
    /// Every address refused or was unreachable.
    Refused { host: String, source: io::Error },
    /// Not connected (handshakes included) within `NetworkTimeout`.
    Timeout { host: String },
    /// The proxy would not open a tunnel.
    Proxy { proxy: String, why: String },
    /// The proxy itself cannot be reached (or not within `OptProxyTimeout`).
    ProxyUnreachable {
        proxy: String,
        source: Box<ConnectError>,
    },
    /// The TLS handshake or the certificate failed.
    Tls {
        host: String,
        failure: TlsFailure,
        source: io::Error,
    },
    /// The request had no host to connect to.
    NoHost,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Dns { host, .. } => write!(f, "cannot resolve {host}"),
            ConnectError::Refused { host, .. } => write!(f, "cannot connect to {host}"),
            ConnectError::Timeout { host } => write!(f, "no connection to {host} in time"),
            ConnectError::Proxy { proxy, why } => write!(f, "proxy {proxy}: {why}"),
            ConnectError::ProxyUnreachable { proxy, .. } => write!(f, "proxy {proxy} unreachable"),
            ConnectError::Tls { host, source, .. } => write!(f, "TLS with {host}: {source}"),
            ConnectError::NoHost => f.write_str("no host to connect to"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Dns { source, .. } => source.as_ref().map(|e| e as _),
            ConnectError::Refused { source, .. } => Some(source),
            ConnectError::ProxyUnreachable { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// A proxy to go through.
#[derive(Clone, Debug)]
struct Proxy {
    host: String,
    port: u16,
    /// `Proxy-Authorization` for the tunnels (plain requests carry their own).
    auth: Option<HeaderValue>,
}

/// Connects to the destination, or through `proxy` when set.
#[derive(Clone)]
pub struct Connector {
    tls: TlsConnector,
    proxy: Option<Proxy>,
    timeout: Duration,
    /// `OptProxyTimeout`: the limit for reaching the proxy.
    proxy_timeout: Option<Duration>,
    fast_timeout: Duration,
    families: Arc<[IpFamily]>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector").field("proxy", &self.proxy).finish()
    }
}

/// What a [`Connector`] is made from.
pub struct Settings<'a> {
    pub tls: Arc<rustls::ClientConfig>,
    pub proxy: Option<(&'a HttpUrl, Option<HeaderValue>)>,
    pub timeout: Duration,
    pub proxy_timeout: Option<Duration>,
    pub fast_timeout: Duration,
    pub families: &'a [IpFamily],
}

impl Connector {
    pub fn new(settings: Settings<'_>) -> Connector {
        Connector {
            tls: TlsConnector::from(settings.tls),
            proxy: settings.proxy.map(|(p, auth)| Proxy {
                host: p.host.clone(),
                port: p.port,
                auth,
            }),
            timeout: settings.timeout,
            proxy_timeout: settings.proxy_timeout,
            fast_timeout: settings.fast_timeout,
            families: settings.families.into(),
        }
    }

    async fn connect(self, destination: Uri) -> Result<Conn, ConnectError> {
        let https = destination.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = destination
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .ok_or(ConnectError::NoHost)?;
        let port = destination.port_u16().unwrap_or(if https { 443 } else { 80 });
        let shown = if destination.port().is_some() {
            format!("{host}:{port}")
        } else {
            host.clone()
        };
        let deadline = self.timeout;
        let connecting = async {
            match (&self.proxy, https) {
                (None, false) => Ok(Conn::plain(self.tcp(&host, port).await?, false)),
                (None, true) => self.tls(self.tcp(&host, port).await?, &host).await,
                (Some(proxy), false) => Ok(Conn::plain(self.reach(proxy).await?, true)),
                (Some(proxy), true) => {
                    let mut tcp = self.reach(proxy).await?;
                    tunnel(&mut tcp, proxy, &host, port).await?;
                    self.tls(tcp, &host).await
                }
            }
        };
        tokio::time::timeout(deadline, connecting)
            .await
            .unwrap_or(Err(ConnectError::Timeout { host: shown }))
    }

    /// A plain TCP connection to `host:port` for a CONNECT tunnel: direct,
    /// or through the proxy's own tunnel.
    pub async fn open(&self, host: &str, port: u16) -> Result<TcpStream, ConnectError> {
        let connecting = async {
            match &self.proxy {
                None => self.tcp(host, port).await,
                Some(proxy) => {
                    let mut tcp = self.reach(proxy).await?;
                    tunnel(&mut tcp, proxy, host, port).await?;
                    Ok(tcp)
                }
            }
        };
        tokio::time::timeout(self.timeout, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(ConnectError::Timeout {
                    host: format!("{host}:{port}"),
                })
            })
    }

    /// A TCP connection to the proxy, within `OptProxyTimeout` when set.
    async fn reach(&self, proxy: &Proxy) -> Result<TcpStream, ConnectError> {
        let name = format!("{}:{}", proxy.host, proxy.port);
        let connecting = self.tcp(&proxy.host, proxy.port);
        let reached = match self.proxy_timeout {
            Some(limit) => tokio::time::timeout(limit, connecting)
                .await
                .unwrap_or_else(|_| Err(ConnectError::Timeout { host: name.clone() })),
            None => connecting.await,
        };
        reached.map_err(|e| ConnectError::ProxyUnreachable {
            proxy: name,
            source: Box::new(e),
        })
    }

    /// A TCP connection to any address of `host`.
    async fn tcp(&self, host: &str, port: u16) -> Result<TcpStream, ConnectError> {
        let resolved = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| ConnectError::Dns {
                host: host.to_string(),
                source: Some(e),
            })?;
        let addrs = order(resolved.collect(), &self.families);
        if addrs.is_empty() {
            return Err(ConnectError::Dns {
                host: host.to_string(),
                source: None,
            });
        }
        let stream = race(addrs, self.fast_timeout)
            .await
            .map_err(|source| ConnectError::Refused {
                host: host.to_string(),
                source,
            })?;
        // Requests are small and sent whole: no reason to hold them back.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn tls(&self, tcp: TcpStream, host: &str) -> Result<Conn, ConnectError> {
        let name = ServerName::try_from(host.to_string()).map_err(|e| ConnectError::Tls {
            host: host.to_string(),
            failure: TlsFailure::Handshake,
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })?;
        // rustls reads one record (16 KiB) at a time: a buffer below it
        // makes a 100 MB body 800 reads, as hyper does on a plain
        // connection, instead of 6,400.
        let tcp = BufReader::with_capacity(TLS_READ_BUFFER, tcp);
        let stream = self.tls.connect(name, tcp).await.map_err(|source| {
            let failure = source
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
                .map_or(TlsFailure::Handshake, TlsFailure::of);
            ConnectError::Tls {
                host: host.to_string(),
                failure,
                source,
            }
        })?;
        Ok(Conn {
            io: Transport::Tls(Box::new(TokioIo::new(stream))),
            proxied: false,
        })
    }
}

/// `ConnectProto`: only the families named, in that order; none named keeps
/// the resolver's order.
fn order(addrs: Vec<SocketAddr>, families: &[IpFamily]) -> Vec<SocketAddr> {
    if families.is_empty() {
        return addrs;
    }
    let family = |a: &SocketAddr| if a.is_ipv4() { IpFamily::V4 } else { IpFamily::V6 };
    families
        .iter()
        .flat_map(|f| addrs.iter().filter(move |a| family(a) == *f).copied())
        .collect()
}

/// Connects to the first address that answers: the next one is tried when
/// the ones before have failed or have not answered within `fast`.
async fn race(addrs: Vec<SocketAddr>, fast: Duration) -> io::Result<TcpStream> {
    let mut waiting = addrs.into_iter();
    let mut attempts = JoinSet::new();
    let mut last = None;
    loop {
        if attempts.is_empty() {
            match waiting.next() {
                Some(addr) => {
                    attempts.spawn(TcpStream::connect(addr));
                }
                None => return Err(last.unwrap_or_else(|| io::Error::other("no address"))),
            }
        }
        tokio::select! {
            Some(done) = attempts.join_next() => match done {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(e)) => last = Some(e),
                Err(e) => last = Some(io::Error::other(e)),
            },
            _ = tokio::time::sleep(fast), if waiting.len() > 0 => {
                if let Some(addr) = waiting.next() {
                    attempts.spawn(TcpStream::connect(addr));
                }
            }
        }
    }
}

/// Asks the proxy on `tcp` for a tunnel to `host:port`.
async fn tunnel(tcp: &mut TcpStream, proxy: &Proxy, host: &str, port: u16) -> Result<(), ConnectError> {
    let refused = |why: String| ConnectError::Proxy {
        proxy: format!("{}:{}", proxy.host, proxy.port),
        why,
    };
    let authority = crate::url::host_port(host, port);
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = proxy.auth.as_ref().and_then(|a| a.to_str().ok()) {
        head.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())
        .await
        .map_err(|e| refused(format!("cannot send CONNECT: {e}")))?;
    // Byte by byte up to the blank line: whatever follows is the tunnel's.
    let mut answer = Vec::with_capacity(256);
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= MAX_PROXY_HEAD {
            return Err(refused("answer head too long".into()));
        }
        let byte = tcp
            .read_u8()
            .await
            .map_err(|e| refused(format!("closed before answering: {e}")))?;
        answer.push(byte);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&answer) {
        Ok(httparse::Status::Complete(_)) if response.code.is_some_and(|c| (200..300).contains(&c)) => Ok(()),
        Ok(httparse::Status::Complete(_)) => Err(refused(format!(
            "CONNECT answered {} {}",
            response.code.unwrap_or(0),
            response.reason.unwrap_or("")
        ))),
        _ => Err(refused("unreadable answer to CONNECT".into())),
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, destination: Uri) -> Self::Future {
        Box::pin(self.clone().connect(destination))
    }
}

/// A connection, remembering whether hyper must send absolute-form request
/// targets on it (plain http through a proxy).
pub struct Conn {
    io: Transport,
    proxied: bool,
}

enum Transport {
    Plain(TokioIo<TcpStream>),
    /// Boxed: a TLS session is large, and most connections are plain.
    Tls(Box<TokioIo<TlsStream<BufReader<TcpStream>>>>),
}

impl Conn {
    fn plain(tcp: TcpStream, proxied: bool) -> Conn {
        Conn {
            io: Transport::Plain(TokioIo::new(tcp)),
            proxied,
        }
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        let connected = match &self.io {
            Transport::Plain(io) => io.connected(),
            Transport::Tls(io) => io.inner().get_ref().0.get_ref().connected(),
        };
        connected.proxy(self.proxied)
    }
}

/// Calls `$method` on whichever transport the connection has.
macro_rules! on_transport {
    ($self:ident, $method:ident($($arg:expr),*)) => {
        match &mut $self.io {
            Transport::Plain(io) => Pin::new(io).$method($($arg),*),
            Transport::Tls(io) => Pin::new(&mut **io).$method($($arg),*),
        }
    };
}

impl Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        on_transport!(self, poll_read(cx, buf))
    }
}

impl Write for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        on_transport!(self, poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_transport!(self, poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_transport!(self, poll_shutdown(cx))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Transport::Plain(io) => io.is_write_vectored(),
            Transport::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_transport!(self, poll_write_vectored(cx, bufs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_proto_filters_and_orders() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(order(vec![v4, v6], &[]), vec![v4, v6]);
        assert_eq!(order(vec![v4, v6], &[IpFamily::V6, IpFamily::V4]), vec![v6, v4]);
        assert_eq!(order(vec![v4, v6], &[IpFamily::V4]), vec![v4]);
    }

    #[tokio::test]
    async fn the_next_address_is_tried_when_one_refuses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good = listener.local_addr().unwrap();
        // A port just freed: refused at once.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let stream = race(vec![dead, good], Duration::from_secs(5)).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), good);
        assert!(race(vec![dead], Duration::from_secs(5)).await.is_err());
    }
}
