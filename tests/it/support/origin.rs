//! A mock Debian mirror on an ephemeral loopback port: files held in memory,
//! every request recorded, and faults armed per path (pauses, cuts, odd
//! statuses, redirects, hangs) for the proxy to meet upstream.
//!
//! The server runs on its own multi-threaded tokio runtime, so tests stay
//! plain synchronous `#[test]` functions; dropping the [`Origin`] stops it.
//!
//! Files and faults are looked up by the exact request target (path and
//! query, percent-encoding intact) and, failing that, by the path without its
//! query. [`Origin::requests`] and [`Origin::seen`] use the exact target.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::mem::discriminant;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

use super::http::sha256_hex;

/// `Last-Modified` of every file put without one of its own.
pub const LAST_MODIFIED: &str = "Sun, 22 Nov 2026 02:58:26 GMT";

/// Largest body frame. Pause and cut points split frames wherever they fall.
const CHUNK: usize = 64 * 1024;

/// How long the waiting hooks wait before they fail the test.
const HOOK_LIMIT: Duration = Duration::from_secs(30);

/// The mirror. Stops its server, and every response in flight, on drop.
pub struct Origin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Owns the server's worker threads; taken and shut down on drop.
    runtime: Option<tokio::runtime::Runtime>,
    scheme: &'static str,
}

/// How to serve a file besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    /// Sent verbatim instead of the default strong tag; may be weak (`W/"x"`).
    pub etag: Option<String>,
    /// Sent verbatim instead of [`LAST_MODIFIED`].
    pub last_modified: Option<String>,
    /// Instead of `application/octet-stream`.
    pub content_type: Option<String>,
    /// Send neither `ETag` nor `Last-Modified`.
    pub no_validators: bool,
}

/// One request as the origin received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The target as received, percent-encoding intact, query included.
    pub path: String,
    /// Lowercase names, in the order hyper keeps them (grouped by name).
    pub headers: Vec<(String, String)>,
}

/// Misbehaviour armed for a path with [`Origin::fault`]. Faults of different
/// kinds combine (`Chunked` with `CutAt` cuts a chunked body); `Hang`, then
/// `Status`, then `Redirect` take precedence over serving the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Send status, headers and the first N body bytes, then wait until the
    /// [`Gate`] is released, then send the rest. N at or past the end of a
    /// body with a `Content-Length` never pauses; with `Chunked` it pauses
    /// before the terminating chunk. Bodiless responses (HEAD, 304) never
    /// pause.
    PauseAt(u64),
    /// Send headers and the first N body bytes, then close the connection
    /// (no more bytes, no chunk terminator). Past the end, as `PauseAt`.
    CutAt(u64),
    /// Answer a Range request with 200 and the whole body (requests
    /// without a Range neither use it up nor feel it).
    IgnoreRange,
    /// Answer with this status and a small text body.
    Status(u16),
    /// Read the request and never answer, until the origin is dropped.
    Hang,
    /// Answer with this 3xx status and this `Location`, verbatim.
    Redirect(u16, String),
    /// Send the body chunked, without `Content-Length`.
    Chunked,
    /// Serve normally but with this `Content-Type`.
    Mime(String),
}

/// Holds the responses paused by one [`Fault::PauseAt`]. Clones share the
/// gate; dropping one neither releases nor blocks anything.
#[derive(Clone, Default)]
pub struct Gate(Arc<GateState>);

#[derive(Default)]
struct GateState {
    flags: Mutex<GateFlags>,
    reached: Condvar,
}

#[derive(Default)]
struct GateFlags {
    reached: bool,
    released: bool,
    /// The tasks of the paused connections, woken by `release`.
    wakers: Vec<Waker>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a request is recorded.
    arrived: Condvar,
}

#[derive(Default)]
struct State {
    files: HashMap<String, File>,
    faults: HashMap<String, Vec<Armed>>,
    seen: Vec<Seen>,
}

#[derive(Clone)]
struct File {
    body: Bytes,
    etag: Option<String>,
    last_modified: Option<String>,
    content_type: String,
}

struct Armed {
    fault: Fault,
    gate: Option<Gate>,
    left: usize,
}

/// What the faults taken by one request make of its response.
#[derive(Default)]
struct Plan {
    hang: bool,
    status: Option<u16>,
    redirect: Option<(u16, String)>,
    ignore_range: bool,
    chunked: bool,
    mime: Option<String>,
    stops: Vec<Stop>,
}

/// A point in a response body where the origin stops sending.
struct Stop {
    at: u64,
    gate: Option<Gate>,
}

impl Origin {
    pub fn start() -> Origin {
        Origin::start_with(None)
    }

    /// The same mirror over TLS, presenting `tls`'s certificate: its URLs
    /// are `https://127.0.0.1:PORT/...`.
    pub fn start_tls(tls: Arc<rustls::ServerConfig>) -> Origin {
        Origin::start_with(Some(tls))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Origin {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("origin")
            .enable_all()
            .build()
            .expect("origin runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the origin");
        let addr = listener.local_addr().expect("origin address");
        let shared = Arc::default();
        runtime.spawn(accept(
            listener,
            tls.clone().map(tokio_rustls::TlsAcceptor::from),
            Arc::clone(&shared),
        ));
        Origin {
            addr,
            shared,
            runtime: Some(runtime),
            scheme: if tls.is_some() { "https" } else { "http" },
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (https for a TLS origin) followed by `path`,
    /// which starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// Serves `body` at `path` with the default validators: the strong
    /// [`etag_of`] the body and [`LAST_MODIFIED`].
    pub fn put(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.put_with(path, body, Meta::default());
    }

    pub fn put_with(&self, path: &str, body: impl Into<Vec<u8>>, meta: Meta) {
        for value in [&meta.etag, &meta.last_modified, &meta.content_type]
            .into_iter()
            .flatten()
        {
            header_value(value);
        }
        let file = File::new(Bytes::from(body.into()), meta);
        self.lock().files.insert(path.to_string(), file);
    }

    /// Forgets `path`, which then answers 404.
    pub fn remove(&self, path: &str) {
        self.lock().files.remove(path);
    }

    /// How many requests arrived for exactly this target, whatever their
    /// method or outcome.
    pub fn requests(&self, path: &str) -> usize {
        self.lock().requests(path)
    }

    /// Blocks until `n` requests for exactly this target have arrived (been
    /// recorded, before any answer). Panics after 30 s.
    pub fn wait_requests(&self, path: &str, n: usize) {
        let what = format!("{n} requests for {path}");
        wait_until(&self.shared.state, &self.shared.arrived, &what, |s| {
            s.requests(path) >= n
        });
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Arms `fault` for the next `times` requests for `path`, replacing a
    /// fault of the same kind armed before. Returns the gate of a
    /// [`Fault::PauseAt`], shared by all the responses it pauses.
    pub fn fault(&self, path: &str, fault: Fault, times: usize) -> Option<Gate> {
        match &fault {
            Fault::Status(code) => _ = status(*code),
            Fault::Redirect(code, location) => _ = (status(*code), header_value(location)),
            Fault::Mime(mime) => _ = header_value(mime),
            _ => {}
        }
        let gate = matches!(fault, Fault::PauseAt(_)).then(Gate::default);
        let armed = Armed {
            fault,
            gate: gate.clone(),
            left: times,
        };
        let mut state = self.lock();
        let list = state.faults.entry(path.to_string()).or_default();
        list.retain(|a| discriminant(&a.fault) != discriminant(&armed.fault));
        if times > 0 {
            list.push(armed);
        }
        gate
    }

    /// Disarms every fault of `path`. Responses already paused stay paused.
    pub fn clear_faults(&self, path: &str) {
        self.lock().faults.remove(path);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Waits for the workers so that the port is closed when the drop
            // returns. Every task is async and dropped at its next await, so
            // this is quick; the limit only guards against a bug.
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// The default strong entity tag of a body: `"<len>-<16 hex of its SHA-256>"`.
pub fn etag_of(body: &[u8]) -> String {
    format!("\"{}-{}\"", body.len(), &sha256_hex(body)[..16])
}

impl Seen {
    fn of(req: &Request<Incoming>) -> Seen {
        let headers = req
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_string(), value)
            })
            .collect();
        Seen {
            method: req.method().to_string(),
            path: req.uri().to_string(),
            headers,
        }
    }

    /// The first value of header `name`, whatever its case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Gate {
    /// Blocks until the origin has written the status, the headers and the
    /// first N body bytes of a paused response to the socket. Panics after
    /// 30 s.
    pub fn wait_reached(&self) {
        let what = "a response at its pause point";
        wait_until(&self.0.flags, &self.0.reached, what, |f| f.reached);
    }

    /// Lets paused responses continue, and any that reach the gate later pass.
    pub fn release(&self) {
        let wakers = {
            let mut flags = lock(&self.0.flags);
            flags.released = true;
            std::mem::take(&mut flags.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    fn reach(&self) {
        lock(&self.0.flags).reached = true;
        self.0.reached.notify_all();
    }

    fn poll_released(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut flags = lock(&self.0.flags);
        if flags.released {
            return Poll::Ready(());
        }
        if !flags.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            flags.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Blocks until `done` holds, failing the test after [`HOOK_LIMIT`].
fn wait_until<T>(mutex: &Mutex<T>, changed: &Condvar, what: &str, mut done: impl FnMut(&T) -> bool) {
    let guard = lock(mutex);
    let (guard, _) = changed
        .wait_timeout_while(guard, HOOK_LIMIT, |value| !done(value))
        .unwrap_or_else(PoisonError::into_inner);
    let ok = done(&guard);
    // Unlocked before failing, so that the panic poisons nothing.
    drop(guard);
    assert!(ok, "no {what} within {HOOK_LIMIT:?}");
}

/// Our locks guard plain data and are never held across user code, so a
/// poisoned one is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl File {
    fn new(body: Bytes, meta: Meta) -> File {
        let (etag, last_modified) = if meta.no_validators {
            (None, None)
        } else {
            let etag = meta.etag.unwrap_or_else(|| etag_of(&body));
            let last_modified = meta.last_modified.unwrap_or_else(|| LAST_MODIFIED.to_string());
            (Some(etag), Some(last_modified))
        };
        File {
            body,
            etag,
            last_modified,
            content_type: meta
                .content_type
                .unwrap_or_else(|| "application/octet-stream".to_string()),
        }
    }

    fn validators(&self, mut reply: Reply) -> Reply {
        if let Some(etag) = &self.etag {
            reply = reply.header(header::ETAG, etag);
        }
        if let Some(date) = &self.last_modified {
            reply = reply.header(header::LAST_MODIFIED, date);
        }
        reply
    }

    /// The headers of a 200 or 206 and the given part of the body.
    fn entity(&self, status: StatusCode, body: Bytes) -> Reply {
        let reply = Reply::new(status, body)
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CONTENT_TYPE, &self.content_type);
        self.validators(reply)
    }
}

impl State {
    fn requests(&self, path: &str) -> usize {
        self.seen.iter().filter(|s| s.path == path).count()
    }

    /// Records the request and takes one use of each fault armed for the
    /// path and query of its target (`IgnoreRange` only from requests with
    /// a Range).
    fn admit(&mut self, seen: Seen, target: &str) -> (Option<File>, Plan) {
        let file = key(&self.files, target).map(|k| self.files[k].clone());
        let mut plan = Plan::default();
        if let Some(k) = key(&self.faults, target).map(str::to_string) {
            let list = self.faults.get_mut(&k).expect("armed faults");
            let ranged = seen.header("range").is_some();
            for armed in list.iter_mut() {
                // IgnoreRange waits for a request that has a Range to ignore.
                if matches!(armed.fault, Fault::IgnoreRange) && !ranged {
                    continue;
                }
                armed.left -= 1;
                plan.add(&armed.fault, &armed.gate);
            }
            list.retain(|a| a.left > 0);
            if list.is_empty() {
                self.faults.remove(&k);
            }
        }
        self.seen.push(seen);
        (file, plan)
    }
}

/// The key under which `map` holds `target`: the target itself, or its path
/// without the query.
fn key<'t, T>(map: &HashMap<String, T>, target: &'t str) -> Option<&'t str> {
    if map.contains_key(target) {
        return Some(target);
    }
    let (path, _query) = target.split_once('?')?;
    map.contains_key(path).then_some(path)
}

impl Plan {
    fn add(&mut self, fault: &Fault, gate: &Option<Gate>) {
        match fault {
            Fault::PauseAt(at) => self.stops.push(Stop {
                at: *at,
                gate: gate.clone(),
            }),
            Fault::CutAt(at) => self.stops.push(Stop { at: *at, gate: None }),
            Fault::IgnoreRange => self.ignore_range = true,
            Fault::Status(code) => self.status = Some(*code),
            Fault::Hang => self.hang = true,
            Fault::Redirect(code, location) => self.redirect = Some((*code, location.clone())),
            Fault::Chunked => self.chunked = true,
            Fault::Mime(mime) => self.mime = Some(mime.clone()),
        }
    }
}

async fn accept(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let shared = Arc::clone(&shared);
                match tls.clone() {
                    None => tokio::spawn(connection(Box::new(stream), shared)),
                    Some(tls) => tokio::spawn(async move {
                        // A client that refuses the certificate ends here.
                        if let Ok(stream) = tls.accept(stream).await {
                            connection(Box::new(stream), shared).await;
                        }
                    }),
                };
            }
            // Out of descriptors or the like: back off rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// A connection's byte stream: TCP, or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn connection(stream: Box<dyn Stream>, shared: Arc<Shared>) {
    let flushes = Flushes::default();
    let io = TokioIo::new(Watched {
        stream,
        flushes: flushes.clone(),
    });
    let service = hyper::service::service_fn(move |req| serve(Arc::clone(&shared), flushes.clone(), req));
    // Errors are the cuts the tests asked for, or clients that went away.
    let _ = http1::Builder::new().serve_connection(io, service).await;
}

async fn serve(
    shared: Arc<Shared>,
    flushes: Flushes,
    req: Request<Incoming>,
) -> Result<Response<Payload>, Infallible> {
    let target = req.uri().path_and_query().map_or("", |pq| pq.as_str());
    let (file, plan) = lock(&shared.state).admit(Seen::of(&req), target);
    shared.arrived.notify_all();
    if plan.hang {
        std::future::pending::<()>().await;
    }
    let reply = answer(&req, file.as_ref(), &plan);
    Ok(reply.into_response(req.method() == Method::HEAD, plan, flushes))
}

/// A response before the faults that shape its body apply.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn new(status: StatusCode, body: Bytes) -> Reply {
        Reply {
            status,
            headers: HeaderMap::new(),
            body,
        }
    }

    fn text(status: StatusCode, text: &str) -> Reply {
        Reply::new(status, Bytes::from(format!("{text}\n")))
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
    }

    fn header(mut self, name: HeaderName, value: &str) -> Reply {
        self.headers.insert(name, header_value(value));
        self
    }

    fn into_response(self, head: bool, plan: Plan, flushes: Flushes) -> Response<Payload> {
        let mut headers = self.headers;
        if let Some(mime) = &plan.mime {
            headers.insert(header::CONTENT_TYPE, header_value(mime));
        }
        let bodiless = matches!(self.status.as_u16(), 100..=199 | 204 | 304);
        // Without a Content-Length hyper sends the body chunked.
        if !bodiless && !plan.chunked {
            headers.insert(header::CONTENT_LENGTH, self.body.len().into());
        }
        let payload = if head || bodiless {
            Payload::new(Bytes::new(), Vec::new(), flushes)
        } else {
            Payload::new(self.body, plan.stops, flushes)
        };
        let mut response = Response::new(payload);
        *response.status_mut() = self.status;
        *response.headers_mut() = headers;
        response
    }
}

/// Decides the response: faulted status or redirect, 404, 405, 304, 206,
/// 416 or 200, in that order.
fn answer(req: &Request<Incoming>, file: Option<&File>, plan: &Plan) -> Reply {
    if let Some(code) = plan.status {
        return Reply::text(status(code), &format!("{code} from the origin"));
    }
    if let Some((code, location)) = &plan.redirect {
        return Reply::text(status(*code), "moved").header(header::LOCATION, location);
    }
    let Some(file) = file else {
        return Reply::text(StatusCode::NOT_FOUND, "no such file");
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Reply::text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only")
            .header(header::ALLOW, "GET, HEAD");
    }
    let headers = req.headers();
    if not_modified(file, headers) {
        return file.validators(Reply::new(StatusCode::NOT_MODIFIED, Bytes::new()));
    }
    let len = file.body.len();
    let range = match text(headers, header::RANGE) {
        Some(range) if !plan.ignore_range && if_range_holds(file, headers) => byte_range(range, len),
        _ => ByteRange::Whole,
    };
    match range {
        ByteRange::Whole => file.entity(StatusCode::OK, file.body.clone()),
        ByteRange::Part(first, last) => file
            .entity(StatusCode::PARTIAL_CONTENT, file.body.slice(first..=last))
            .header(header::CONTENT_RANGE, &format!("bytes {first}-{last}/{len}")),
        ByteRange::Unsatisfiable => Reply::text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable")
            .header(header::CONTENT_RANGE, &format!("bytes */{len}")),
    }
}

/// Panics (in the test, when the fault is armed) on a code out of range.
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or_else(|_| panic!("{code} is no status code"))
}

/// Panics (in the test, when the file is put or the fault armed) on a value
/// no header may carry. Other bytes are sent verbatim.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_bytes(text.as_bytes()).unwrap_or_else(|_| panic!("{text:?} is no header value"))
}

fn text(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name)?.to_str().ok()
}

fn date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

/// `If-None-Match` decides alone when present (RFC 9110, 13.2.2), with weak
/// comparison; otherwise `If-Modified-Since`.
fn not_modified(file: &File, headers: &HeaderMap) -> bool {
    if let Some(tags) = text(headers, header::IF_NONE_MATCH) {
        let etag = file.etag.as_deref();
        return tags
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || etag.is_some_and(|etag| weak_tag(tag) == weak_tag(etag)));
    }
    let since = text(headers, header::IF_MODIFIED_SINCE).and_then(date);
    let modified = file.last_modified.as_deref().and_then(date);
    matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
}

fn weak_tag(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// Whether a Range may be honoured: no `If-Range`, or one naming the current
/// entity tag (strong comparison) or exactly the current `Last-Modified`.
fn if_range_holds(file: &File, headers: &HeaderMap) -> bool {
    let Some(cond) = text(headers, header::IF_RANGE).map(str::trim) else {
        return true;
    };
    if cond.starts_with('"') || cond.starts_with("W/") {
        let strong = |tag: &str| !tag.starts_with("W/");
        return strong(cond) && file.etag.as_deref() == Some(cond);
    }
    let modified = file.last_modified.as_deref().and_then(date);
    matches!((date(cond), modified), (Some(a), Some(b)) if a == b)
}

#[derive(Debug, PartialEq)]
enum ByteRange {
    Whole,
    /// First and last byte, inclusive.
    Part(usize, usize),
    Unsatisfiable,
}

/// One `bytes=` range of a body of `len` bytes. Anything else (several
/// ranges, other units, bad syntax) is ignored, as RFC 9110 allows.
fn byte_range(value: &str, len: usize) -> ByteRange {
    let Some((first, last)) = value
        .trim()
        .strip_prefix("bytes=")
        .filter(|spec| !spec.contains(','))
        .and_then(|spec| spec.split_once('-'))
    else {
        return ByteRange::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<usize>().ok();
    // From `first` to `last` or the end, if `first` lies within the body.
    let span = |first: usize, last: usize| match len.checked_sub(1) {
        Some(end) if first <= end => ByteRange::Part(first, last.min(end)),
        _ => ByteRange::Unsatisfiable,
    };
    match (number(first), number(last)) {
        (None, Some(suffix)) if first.is_empty() => match suffix.min(len) {
            0 => ByteRange::Unsatisfiable,
            n => ByteRange::Part(len - n, len - 1),
        },
        (Some(a), None) if last.is_empty() => span(a, usize::MAX),
        (Some(a), Some(b)) if a <= b => span(a, b),
        _ => ByteRange::Whole,
    }
}

/// Counts the connection's flushes. hyper flushes its socket only once its
/// own write buffer is empty, so a flush that follows a body frame means the
/// frame's bytes are in the kernel, on their way to the client.
#[derive(Clone, Default)]
struct Flushes(Arc<FlushState>);

#[derive(Default)]
struct FlushState {
    count: AtomicU64,
    waker: Mutex<Option<Waker>>,
}

impl Flushes {
    fn count(&self) -> u64 {
        self.0.count.load(Ordering::SeqCst)
    }

    fn bump(&self) {
        self.0.count.fetch_add(1, Ordering::SeqCst);
        if let Some(waker) = lock(&self.0.waker).take() {
            waker.wake();
        }
    }

    /// Ready once a flush happened after the count was `mark`. A body that
    /// returns pending makes hyper flush right away, in the same task.
    fn poll_past(&self, mark: u64, cx: &mut Context<'_>) -> Poll<()> {
        if self.count() > mark {
            return Poll::Ready(());
        }
        *lock(&self.0.waker) = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The connection's socket, counting flushes.
struct Watched {
    stream: Box<dyn Stream>,
    flushes: Flushes,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = ready!(Pin::new(&mut this.stream).poll_flush(cx));
        this.flushes.bump();
        Poll::Ready(flushed)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A response body sent in frames of at most [`CHUNK`] bytes, stopping at
/// each [`Stop`]: once the bytes before it are flushed, a pause waits for its
/// gate and a cut fails the body, which makes hyper drop the connection.
struct Payload {
    data: Bytes,
    sent: usize,
    /// Sorted by offset, each at most `data.len()`.
    stops: Vec<Stop>,
    flushes: Flushes,
    /// The flush count when the body arrived at the first stop. hyper has
    /// buffered every earlier frame by then (it buffers a frame before it
    /// polls for the next), so a later flush has sent them all.
    mark: Option<u64>,
}

impl Payload {
    fn new(data: Bytes, mut stops: Vec<Stop>, flushes: Flushes) -> Payload {
        let len = data.len() as u64;
        for stop in &mut stops {
            stop.at = stop.at.min(len);
        }
        stops.sort_by_key(|s| s.at);
        Payload {
            data,
            sent: 0,
            stops,
            flushes,
            mark: None,
        }
    }

    /// Where the next frame must end: the next stop or the end, at most a
    /// chunk away.
    fn frame_end(&self) -> usize {
        let limit = self.stops.first().map_or(self.data.len(), |s| s.at as usize);
        limit.min(self.sent + CHUNK)
    }

    /// Waits at the first stop until what came before is flushed, then
    /// passes a released gate or cuts.
    fn poll_stop(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mark = *self.mark.get_or_insert_with(|| self.flushes.count());
        ready!(self.flushes.poll_past(mark, cx));
        let Some(gate) = &self.stops[0].gate else {
            return Poll::Ready(Err(io::Error::other("cut by the test")));
        };
        gate.reach();
        ready!(gate.poll_released(cx));
        self.stops.remove(0);
        self.mark = None;
        Poll::Ready(Ok(()))
    }
}

impl Body for Payload {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = self.get_mut();
        while this.stops.first().is_some_and(|s| s.at as usize == this.sent) {
            ready!(this.poll_stop(cx))?;
        }
        if this.sent == this.data.len() {
            return Poll::Ready(None);
        }
        let end = this.frame_end();
        let frame = this.data.slice(this.sent..end);
        this.sent = end;
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.sent == self.data.len() && self.stops.is_empty()
    }
}
