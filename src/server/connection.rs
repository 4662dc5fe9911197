//! One client connection: who it is (the unix socket's handshake), hyper's
//! HTTP/1.1 with keep-alive and pipelining, and parking.
//!
//! hyper holds about 16 KiB per connection (its read and write buffers)
//! for as long as the connection lives, idle or not. So a connection only
//! gets hyper once its socket has something to read, and a connection with
//! nothing to answer, nothing half-read and no byte for [`PARK_AFTER`]
//! gives hyper back: hyper closes its side (with nothing in progress this
//! sends nothing), returns the socket and any bytes it read but did not
//! use, and the connection waits for its next request with only its socket
//! and a few hundred bytes of state. Keep-alive runs on the same clock as
//! before: `NetworkTimeout` without a request closes the connection.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::{Accepted, Phase, Shared};
use crate::body::ResponseBody;
use crate::log::ConnLog;
use crate::readahead::{self, Activity, Busy, ReadAhead};
use crate::service::{self, Client, Handoff};
use crate::tunnel;

/// How long a connection with nothing to do keeps its hyper state.
const PARK_AFTER: Duration = Duration::from_secs(1);

/// Bytes read from a parked connection in one go, before hyper takes it.
const FIRST_READ: usize = 2048;

/// A client socket, which can be waited on without a buffer.
pub trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Ready when a read may succeed (or may not: then `try_read` says
    /// `WouldBlock` and clears it).
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
}

impl Socket for TcpStream {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::readable(self)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        TcpStream::try_read(self, buf)
    }
}

impl Socket for UnixStream {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        UnixStream::readable(self)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        UnixStream::try_read(self, buf)
    }
}

/// The first bytes of the next request, read without any buffer held while
/// waiting; `None` when the client closed.
async fn first_bytes<S: Socket>(socket: &S) -> io::Result<Option<Bytes>> {
    loop {
        socket.readable().await?;
        let mut buf = [0u8; FIRST_READ];
        match socket.try_read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => return Ok(Some(Bytes::copy_from_slice(&buf[..n]))),
            // Readiness can be stale (a new socket reports it at once).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Names the client of a new connection, then serves it.
pub async fn start(conn: Accepted, shared: Arc<Shared>, permit: Option<OwnedSemaphorePermit>) {
    match conn {
        Accepted::Tcp(stream, peer) => {
            let _ = stream.set_nodelay(true);
            let log = ConnLog::new(
                Arc::clone(&shared.state.log),
                Arc::clone(&shared.state.stats),
                client_name(peer.ip()),
            );
            let allowed = &shared.state.config.listen.allowed_clients;
            let client = Client::new(log, Some(peer.ip()), stream.local_addr().ok(), allowed);
            serve(stream, Bytes::new(), client, shared, permit).await;
        }
        Accepted::Unix(stream) => {
            let timeout = shared.state.config.listen.network_timeout;
            match tokio::time::timeout(timeout, identify(stream)).await {
                Ok(Ok(Some((name, stream, rest)))) => {
                    let log = ConnLog::new(
                        Arc::clone(&shared.state.log),
                        Arc::clone(&shared.state.stats),
                        name,
                    );
                    let client = Client::new(log, None, None, &[]);
                    serve(stream, rest, client, shared, permit).await;
                }
                // No identification: closed without a word, as acng.
                Ok(Ok(None)) => tracing::debug!("unix socket client sent no X-Original-Source"),
                Ok(Err(e)) => tracing::debug!("unix socket client: {e}"),
                Err(_) => tracing::debug!("unix socket client did not identify itself in time"),
            }
        }
    }
}

/// Serves one connection until it ends or the daemon stops.
/// `prefix`: what was read of it already.
async fn serve<S: Socket>(
    stream: S,
    prefix: Bytes,
    client: Client,
    shared: Arc<Shared>,
    _permit: Option<OwnedSemaphorePermit>,
) {
    let client = Arc::new(client);
    let activity = Arc::new(Activity::new());
    let (ahead_tx, mut ahead_rx) = tokio::sync::mpsc::channel(readahead::QUEUE);
    let mut io = ReadAhead::new(stream, prefix, ahead_tx, Arc::clone(&activity));
    let (ahead_state, ahead_client) = (shared.state.clone(), Arc::clone(&client));
    tokio::spawn(async move {
        while let Some(ahead) = ahead_rx.recv().await {
            // Boxed: the waiting task stays small on connections that never
            // pipeline.
            Box::pin(service::prefetch(&ahead_state, &ahead_client, &ahead)).await;
        }
    });
    let state = shared.state.clone();
    let (handler_client, handler_activity) = (Arc::clone(&client), Arc::clone(&activity));
    // Boxed, so that hyper can hand the connection back (`poll_without_shutdown`
    // wants an `Unpin` future).
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        let client = Arc::clone(&handler_client);
        let busy = handler_activity.begin();
        Box::pin(async move {
            let response = service::handle(&state, &client, req).await;
            Ok::<_, Infallible>(response.map(|body| Tracked { body, _busy: busy }))
        }) as Pin<Box<dyn Future<Output = _> + Send>>
    });
    let keep_alive = shared.state.config.listen.network_timeout;
    let mut phase = shared.phase.clone();
    loop {
        // Parked (or new): only the socket, until a byte of the next request.
        if !io.has_buffered() {
            let deadline = activity.last() + keep_alive;
            tokio::select! {
                read = tokio::time::timeout_at(deadline, first_bytes(io.get_ref())) => match read {
                    Ok(Ok(Some(bytes))) => io.feed(bytes),
                    Ok(Ok(None)) => return,
                    Ok(Err(e)) => return tracing::debug!(client = client.log.client(), "connection ended: {e}"),
                    Err(_) => return,
                },
                // An idle connection just closes when the daemon stops.
                _ = phase.wait_for(|p| *p != Phase::Serving) => return,
            }
        }
        let mut conn = shared.http.serve_connection(TokioIo::new(io), service.clone());
        if *phase.borrow() != Phase::Serving {
            Pin::new(&mut conn).graceful_shutdown();
        }
        let mut parking = false;
        let mut check = Instant::now() + PARK_AFTER;
        let result = loop {
            tokio::select! {
                result = poll_fn(|cx| conn.poll_without_shutdown(cx)) => break result,
                changed = phase.changed() => match (changed, *phase.borrow()) {
                    (Ok(()), Phase::Draining) => Pin::new(&mut conn).graceful_shutdown(),
                    (Ok(()), Phase::Serving) => {}
                    (_, Phase::Closing) | (Err(_), _) => return,
                },
                _ = tokio::time::sleep_until(check), if !parking => {
                    let now = Instant::now();
                    if activity.idle_since(now - PARK_AFTER) {
                        // Nothing in progress: hyper closes at once.
                        parking = true;
                        Pin::new(&mut conn).graceful_shutdown();
                    } else {
                        check = (activity.last() + PARK_AFTER).max(now + PARK_AFTER);
                    }
                }
            }
        };
        match result {
            // A CONNECT was answered 200: the connection is the tunnel's now,
            // with whatever the client sent after its request.
            Ok(()) if client.has_handoff() => {
                let Some(handoff) = client.take_handoff() else {
                    return;
                };
                let parts = conn.into_parts();
                let mut io = parts.io.into_inner();
                io.rewind(parts.read_buf);
                let closing = async move {
                    let _ = phase.wait_for(|p| *p == Phase::Closing).await;
                };
                let idle = shared.state.config.listen.network_timeout;
                return match handoff {
                    Handoff::Tunnel(tunnel) => tunnel::run(io, tunnel, idle, closing, &client.log).await,
                    Handoff::Intercept { authority, tls } => {
                        intercepted(io, &authority, tls, client, &shared, closing).await
                    }
                };
            }
            Ok(()) if parking && *phase.borrow() == Phase::Serving => {
                let parts = conn.into_parts();
                io = parts.io.into_inner();
                io.rewind(parts.read_buf);
                tracing::debug!(client = client.log.client(), "connection parked");
            }
            // The client closed, or the daemon is stopping.
            Ok(()) => return,
            // hyper answered an unparsable request with 400 and closed.
            Err(e) if e.is_parse() || e.is_parse_too_large() => {
                return tracing::info!(client = client.log.client(), "malformed request: {e}");
            }
            // Idle timeouts and clients that went away mid-response.
            Err(e) => return tracing::debug!(client = client.log.client(), "connection ended: {e}"),
        }
    }
}

/// A CONNECT to an intercepted host: TLS answered here, then HTTP/1.1
/// inside it, each request taken as one for `https://authority` (so it is
/// cached like an `HTTPS///` one, and never a local page).
async fn intercepted<S: Socket>(
    io: ReadAhead<S>,
    authority: &str,
    tls: Arc<rustls::ServerConfig>,
    client: Arc<Client>,
    shared: &Shared,
    closing: impl Future<Output = ()>,
) {
    let timeout = shared.state.config.listen.network_timeout;
    let accepted = tokio::time::timeout(timeout, tokio_rustls::TlsAcceptor::from(tls).accept(io)).await;
    let stream = match accepted {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return tracing::info!(
                client = client.log.client(),
                "TLS for {authority} refused by the client: {e}"
            )
        }
        Err(_) => {
            return tracing::debug!(
                client = client.log.client(),
                "no TLS handshake for {authority} in time"
            )
        }
    };
    let state = shared.state.clone();
    let base = format!("https://{authority}");
    let service = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        let (state, client) = (state.clone(), Arc::clone(&client));
        let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        if req.uri().scheme().is_none() {
            if let Ok(uri) = format!("{base}{target}").parse() {
                *req.uri_mut() = uri;
            }
        }
        async move { Ok::<_, Infallible>(service::handle(&state, &client, req).await) }
    });
    let conn = shared.http.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = conn => if let Err(e) = result {
            tracing::debug!("intercepted connection to {authority} ended: {e}");
        },
        () = closing => {}
    }
}

/// A response body, counted as a request in progress until hyper is done
/// with it.
struct Tracked {
    body: ResponseBody,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The client's name in the transfer log: its numeric address, IPv4-mapped
/// IPv6 shortened.
fn client_name(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

/// The unix-socket handshake (spec §2.1): the first request carries only
/// `X-Original-Source: <client name>` and gets no answer. Returns the name
/// the stream, and whatever was read of it after that request.
async fn identify(mut stream: UnixStream) -> io::Result<Option<(String, UnixStream, Bytes)>> {
    const MAX: usize = 32 * 1024;
    // Read straight into the vector: a buffer on the stack would be part of
    // every connection's task, TCP ones included.
    let mut buf = Vec::with_capacity(4096);
    let end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() >= MAX {
            return Ok(None);
        }
        buf.reserve(4096);
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let name = head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("X-Original-Source")
            .then(|| v.trim().to_string())
    });
    Ok(name
        .filter(|n| !n.is_empty() && !n.contains('|'))
        .map(|name| (name, stream, Bytes::copy_from_slice(&buf[end..]))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn mapped_addresses_are_shortened() {
        assert_eq!(client_name("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_eq!(client_name("2001:db8::1".parse().unwrap()), "2001:db8::1");
    }

    #[tokio::test]
    async fn the_handshake_names_the_client_and_keeps_what_follows() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"GET / HTTP/1.0\r\nX-Original-Source: 192.0.2.9\r\n\r\nGET /next HTTP/1.1\r\n")
            .await
            .unwrap();
        let (name, stream, rest) = identify(b).await.unwrap().unwrap();
        assert_eq!(name, "192.0.2.9");
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let mut served = ReadAhead::new(stream, rest, tx, Arc::default());
        let mut next = [0u8; 10];
        served.read_exact(&mut next).await.unwrap();
        assert_eq!(&next, b"GET /next ");
    }

    #[tokio::test]
    async fn no_identification_no_service() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"GET /x HTTP/1.1\r\nHost: y\r\n\r\n").await.unwrap();
        assert!(identify(b).await.unwrap().is_none());
    }
}
