//! One client connection: who it is (the unix socket's handshake), and its
//! requests, answered in order by our own HTTP/1.1 loop (`head` parses,
//! `respond` sends; see ARCHITECTURE.md for why not hyper's server): keep-alive,
//! pipelining with the requests queued behind the current one read ahead,
//! CONNECT handed to the tunnel or the interception.
//!
//! A connection waiting for its next request holds its socket and a few
//! hundred bytes of state, no buffer ("parked"): memory for a request is
//! taken when its first bytes arrive. `NetworkTimeout` bounds every wait: no
//! request on a kept-alive connection, a head not complete that long after
//! its first byte (408), a client that takes no byte of its answer.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode, Version};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::head::{self, BodyLength};
use super::respond::{self, Exchange};
use super::wire::{Prefixed, Socket, Wire};
use super::{Accepted, Phase, Shared};
use crate::body::ResponseBody;
use crate::log::ConnLog;
use crate::service::{self, Ahead, Client, Handoff};
use crate::tunnel;

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
async fn serve<W: Wire + 'static>(
    wire: W,
    prefix: Bytes,
    client: Client,
    shared: Arc<Shared>,
    _permit: Option<OwnedSemaphorePermit>,
) {
    let client = Arc::new(client);
    // Boxed: a connection waiting for its next request keeps only this
    // future's small state, not that of a request being answered.
    let ended = Box::pin(requests(
        wire,
        BytesMut::from(&prefix[..]),
        &client,
        &shared,
        None,
    ))
    .await;
    let Some((wire, rest, handoff)) = ended else {
        return;
    };
    // A CONNECT was answered 200: the connection is the tunnel's now, with
    // whatever the client sent after its request.
    let io = Prefixed::new(rest, wire);
    let idle = shared.state.config.listen.network_timeout;
    let closing = closing(&shared);
    match handoff {
        Handoff::Tunnel(tunnel) => tunnel::run(io, tunnel, idle, closing, &client.log).await,
        Handoff::Intercept { authority, tls } => {
            Box::pin(intercepted(io, &authority, tls, client, &shared, closing)).await
        }
    }
}

/// Resolves when the daemon cuts its remaining connections.
fn closing(shared: &Shared) -> impl Future<Output = ()> + Send + 'static {
    let mut phase = shared.phase.clone();
    async move {
        let _ = phase.wait_for(|p| *p == Phase::Closing).await;
    }
}

/// The requests of a connection, answered in order, until it closes, the
/// daemon stops, or a CONNECT hands it over (returned with the bytes read
/// after that request). `base`: the origin requests are for, on an
/// intercepted connection.
async fn requests<W: Wire>(
    mut wire: W,
    mut buf: BytesMut,
    client: &Arc<Client>,
    shared: &Shared,
    base: Option<&str>,
) -> Option<(W, Bytes, Handoff)> {
    let timeout = shared.state.config.listen.network_timeout;
    let mut phase = shared.phase.clone();
    let mut ahead = ReadAhead::default();
    let mut answered = false;
    let mut head_began = Instant::now();
    loop {
        // A whole head, read with the connection's buffer held only while
        // some bytes of it are there.
        let (head, len) = loop {
            match head::parse(&buf) {
                Ok(Some(found)) => break found,
                Ok(None) => {}
                Err(e) => {
                    tracing::info!(client = client.log.client(), "{e}");
                    return refuse(&mut wire, e.status(), &e.to_string(), timeout).await;
                }
            }
            if buf.is_empty() {
                if answered {
                    tracing::debug!(client = client.log.client(), "connection parked");
                }
                // The buffer of the last request goes back while waiting.
                drop(std::mem::take(&mut buf));
                let bytes = tokio::select! {
                    read = tokio::time::timeout(timeout, wire.first_bytes()) => match read {
                        Ok(Ok(Some(bytes))) => bytes,
                        Ok(Ok(None)) | Err(_) => return None,
                        Ok(Err(e)) => return ended(client, &e),
                    },
                    // An idle connection just closes when the daemon stops.
                    _ = phase.wait_for(|p| *p != Phase::Serving) => return None,
                };
                buf = bytes;
                head_began = Instant::now();
                continue;
            }
            buf.reserve(READ);
            let read = tokio::select! {
                read = tokio::time::timeout_at(head_began + timeout, wire.read_buf(&mut buf)) => read,
                _ = phase.wait_for(|p| *p == Phase::Closing) => return None,
            };
            match read {
                Ok(Ok(0)) => return None,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return ended(client, &e),
                Err(_) => {
                    tracing::info!(
                        client = client.log.client(),
                        "request head not complete in {}s",
                        timeout.as_secs()
                    );
                    return refuse(
                        &mut wire,
                        StatusCode::REQUEST_TIMEOUT,
                        "request head too slow",
                        timeout,
                    )
                    .await;
                }
            }
        };
        ahead.look(&buf, len, client, shared);
        let _ = buf.split_to(len);
        ahead.consumed(len);
        // Bodies are never used (the one POST served is answered without
        // it): skipped when small and sent, else the connection ends after
        // the answer.
        let mut reusable = true;
        match head.body {
            BodyLength::None => {}
            // Sent at once despite the `Expect` (or without one): skipped.
            BodyLength::Bytes(n)
                if n <= MAX_SKIPPED as u64 && (!head.expect_continue || buf.len() as u64 >= n) =>
            {
                if skip(&mut wire, &mut buf, n as usize, head_began + timeout)
                    .await
                    .is_err()
                {
                    return None;
                }
                ahead.consumed(n as usize);
            }
            BodyLength::Bytes(_) | BodyLength::Chunked => reusable = false,
        }
        let mut request = head.request;
        if let Some(base) = base {
            for_origin(&mut request, base);
        }
        let exchange = Exchange {
            head_only: request.method() == Method::HEAD,
            version: request.version(),
            keep_alive: head.keep_alive && reusable && serving(&phase),
            timeout,
        };
        let answering = async {
            match wire.socket() {
                // While this request is answered, the ones the client sends
                // behind it are read and their downloads started.
                Some(socket) if exchange.keep_alive => {
                    let mut out = socket;
                    let answer = answer(&mut out, request, exchange, client, shared);
                    reading_ahead(answer, socket, &mut buf, &mut ahead, client, shared).await
                }
                _ => answer(&mut wire, request, exchange, client, shared).await,
            }
        };
        let sent = tokio::select! {
            sent = answering => sent,
            _ = phase.wait_for(|p| *p == Phase::Closing) => return None,
        };
        answered = true;
        if let Some(handoff) = client.take_handoff() {
            return match sent {
                Ok(_) if base.is_none() => Some((wire, buf.freeze(), handoff)),
                _ => None,
            };
        }
        match sent {
            Ok(true) if serving(&phase) => {}
            Ok(_) => return None,
            Err(e) => return ended(client, &e),
        }
        if buf.is_empty() {
            // Back to the idle clock of a kept-alive connection.
            head_began = Instant::now();
        }
    }
}

/// Answers `request` on `out`; whether the connection may carry another.
async fn answer<V: Wire>(
    out: &mut V,
    request: http::Request<()>,
    exchange: Exchange,
    client: &Client,
    shared: &Shared,
) -> io::Result<bool> {
    let response = Box::pin(service::handle(&shared.state, client, request)).await;
    respond::send(out, response, exchange).await
}

/// `answer`, and meanwhile what the client sends behind its request read
/// (up to a head's worth) and looked at for requests to start early. The
/// bytes stay in `buf` for the loop to serve in their turn.
async fn reading_ahead<T>(
    answer: impl Future<Output = T>,
    socket: Socket<'_>,
    buf: &mut BytesMut,
    ahead: &mut ReadAhead,
    client: &Arc<Client>,
    shared: &Shared,
) -> T {
    tokio::pin!(answer);
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            done = &mut answer => return done,
            ready = socket.readable(), if open && !ahead.stopped && buf.len() < head::MAX_HEAD => {
                if ready.is_err() {
                    open = false;
                    continue;
                }
                buf.reserve(READ);
                match socket.try_read_buf(buf) {
                    Ok(0) => open = false,
                    Ok(_) => ahead.look(buf, 0, client, shared),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // The loop's next read meets the error too.
                    Err(_) => open = false,
                }
            }
        }
    }
}

fn serving(phase: &watch::Receiver<Phase>) -> bool {
    *phase.borrow() == Phase::Serving
}

/// Bytes read from a connection in one go while a head is incomplete.
const READ: usize = 4096;
/// Largest request body skipped to keep the connection.
const MAX_SKIPPED: usize = 64 * 1024;

fn ended<T>(client: &Client, e: &io::Error) -> Option<T> {
    tracing::debug!(client = client.log.client(), "connection ended: {e}");
    None
}

/// Answers a request that cannot be served with `status`, then closes.
async fn refuse<W: Wire, T>(wire: &mut W, status: StatusCode, why: &str, timeout: Duration) -> Option<T> {
    let response = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(ResponseBody::full(format!(
            "{} {}: {why}\n",
            status.as_str(),
            status.canonical_reason().unwrap_or_default()
        )))
        .ok()?;
    let exchange = Exchange {
        head_only: false,
        version: Version::HTTP_11,
        keep_alive: false,
        timeout,
    };
    let _ = respond::send(wire, response, exchange).await;
    None
}

/// Drops the next `n` bytes of the connection, those in `buf` first.
async fn skip<W: Wire>(wire: &mut W, buf: &mut BytesMut, n: usize, deadline: Instant) -> io::Result<()> {
    let mut left = n;
    loop {
        let here = left.min(buf.len());
        let _ = buf.split_to(here);
        left -= here;
        if left == 0 {
            return Ok(());
        }
        buf.reserve(READ.min(left));
        match tokio::time::timeout_at(deadline, wire.read_buf(buf)).await {
            Ok(Ok(0)) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

/// An origin-form target on an intercepted connection is a request for
/// `https://authority` (so it is cached like an `HTTPS///` one, and never a
/// local page).
fn for_origin(request: &mut http::Request<()>, base: &str) {
    if request.uri().scheme().is_none() {
        let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        if let Ok(uri) = format!("{base}{target}").parse() {
            *request.uri_mut() = uri;
        }
    }
}

/// Requests queued behind the one being answered, handed to a task that
/// starts their downloads at once (started with the first such request:
/// most connections never pipeline). Responses still go out in order; they
/// just find their downloads under way.
#[derive(Default)]
struct ReadAhead {
    tx: Option<mpsc::Sender<Box<Ahead>>>,
    /// Bytes of the buffer already looked at.
    seen: usize,
    /// Something in the stream cannot be followed (a body, garbage): no
    /// more looking on this connection.
    stopped: bool,
}

impl ReadAhead {
    /// Looks at the heads in `buf` after the first `first` bytes (the head
    /// being answered).
    fn look(&mut self, buf: &[u8], first: usize, client: &Arc<Client>, shared: &Shared) {
        let mut at = self.seen.max(first);
        while !self.stopped && at < buf.len() {
            match head::parse(&buf[at..]) {
                Ok(Some((head, len))) if head.body == BodyLength::None => {
                    at += len;
                    let request = head.request;
                    let ahead = Ahead {
                        method: request.method().clone(),
                        target: request.uri().to_string(),
                        cache_control: request
                            .headers()
                            .get(http::header::CACHE_CONTROL)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                    };
                    // A full queue means the reader is far behind: the rest
                    // is served without reading ahead.
                    let _ = self.sender(client, shared).try_send(Box::new(ahead));
                }
                Ok(None) => break,
                _ => self.stopped = true,
            }
        }
        self.seen = at;
    }

    /// `n` bytes left the front of the buffer.
    fn consumed(&mut self, n: usize) {
        self.seen = self.seen.saturating_sub(n);
    }

    fn sender(&mut self, client: &Arc<Client>, shared: &Shared) -> &mpsc::Sender<Box<Ahead>> {
        self.tx.get_or_insert_with(|| {
            let (tx, mut rx) = mpsc::channel::<Box<Ahead>>(service::AHEAD_QUEUE);
            let (state, client) = (shared.state.clone(), Arc::clone(client));
            tokio::spawn(async move {
                while let Some(ahead) = rx.recv().await {
                    Box::pin(service::prefetch(&state, &client, &ahead)).await;
                }
            });
            tx
        })
    }
}

/// A CONNECT to an intercepted host: TLS answered here, then HTTP/1.1
/// inside it, each request taken as one for `https://authority`.
async fn intercepted<W: Wire + 'static>(
    io: Prefixed<W>,
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
    let base = format!("https://{authority}");
    tokio::select! {
        _ = requests(stream, BytesMut::new(), &client, shared, Some(&base)) => {}
        () = closing => {}
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
        let mut served = Prefixed::new(rest, stream);
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
