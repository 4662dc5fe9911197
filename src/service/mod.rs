//! The per-request handler: classify, then answer from the cache, with a
//! page, or with an error. The one place where failures become responses
//! (`error`) and transfer-log records.

mod answer;
pub mod conditional;
pub mod error;
mod file;
mod local_dir;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::admin::{auth, health, help, maintenance, metrics, report};
use crate::body::ResponseBody;
use crate::cache::{CacheKey, Joined};
use crate::config::Network;
use crate::error::Chain;
use crate::log::ConnLog;
use crate::request::{self, RequestLine, Target};
use crate::state::AppState;
use crate::stats::Served;
use crate::tunnel::Tunnel;
pub use error::ServeError;

/// What a connection becomes after a `200` to its CONNECT.
#[derive(Debug)]
pub enum Handoff {
    /// Bytes copied both ways.
    Tunnel(Tunnel),
    /// TLS answered here with this configuration; the requests inside are
    /// for `https://authority`.
    Intercept {
        authority: String,
        tls: Arc<rustls::ServerConfig>,
    },
}

/// Who is asking, for logs and for pages that name this server.
#[derive(Debug)]
pub struct Client {
    pub log: Arc<ConnLog>,
    /// The peer's address (TCP only).
    pub peer: Option<std::net::IpAddr>,
    /// The local address the connection came in on (TCP only).
    pub local: Option<SocketAddr>,
    /// The peer is in `AllowedClients` (unix-socket clients always are).
    allowed: bool,
    /// Downloads joined by reading ahead, claimed by the requests when
    /// their turn comes: the request gets that download's outcome, a
    /// failure included, rather than starting another one (a mirror is
    /// asked at most DlMaxRetries + 1 times per request).
    prefetched: std::sync::Mutex<std::collections::HashMap<CacheKey, Joined>>,
    /// A CONNECT answered `200`: what the connection becomes once the
    /// answer is sent.
    handoff: std::sync::Mutex<Option<Handoff>>,
}

impl Client {
    /// A client of the daemon; a TCP peer outside `allowed` gets only
    /// refusals (logged here, once per connection).
    pub fn new(
        log: Arc<ConnLog>,
        peer: Option<std::net::IpAddr>,
        local: Option<SocketAddr>,
        allowed: &[Network],
    ) -> Client {
        let allowed = peer.is_none_or(|ip| allowed.iter().any(|n| n.contains(ip)));
        if !allowed {
            tracing::warn!(client = log.client(), "refused: not in AllowedClients");
        }
        Client {
            log,
            peer,
            local,
            allowed,
            prefetched: Default::default(),
            handoff: Default::default(),
        }
    }

    pub fn has_handoff(&self) -> bool {
        self.handoff.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// What a CONNECT made of the connection, once its `200` is sent.
    pub fn take_handoff(&self) -> Option<Handoff> {
        self.handoff.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Loopback TCP, the unix socket, or another host.
    pub fn locality(&self) -> auth::Locality {
        auth::Locality::of(self.peer)
    }

    fn hand_off(&self, handoff: Handoff) {
        *self.handoff.lock().unwrap_or_else(|p| p.into_inner()) = Some(handoff);
    }

    /// Keeps the flight a download read ahead joined, for its request.
    fn keep_flight(&self, key: &CacheKey, joined: Joined) {
        let mut map = self.prefetched.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() < AHEAD_QUEUE * 2 {
            map.insert(key.clone(), joined);
        }
    }

    fn take_prefetched(&self, key: &CacheKey) -> Option<Joined> {
        self.prefetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
    }
}

/// Requests read ahead in a pipeline that may wait for a look; more are
/// simply answered in their turn.
pub const AHEAD_QUEUE: usize = 32;

/// A request seen behind the one being answered, in a pipeline: apt sends
/// up to ten before the first answer, and answers go out in order, so
/// without a look ahead cold downloads would run one after the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ahead {
    pub method: Method,
    pub target: String,
    pub cache_control: Option<String>,
}

/// Starts the download of a request read ahead in a pipeline, when it is a
/// GET of a file that must be downloaded.
pub async fn prefetch(state: &AppState, client: &Client, ahead: &Ahead) {
    if ahead.method != Method::GET {
        return;
    }
    let line = RequestLine {
        method: &Method::GET,
        target: &ahead.target,
        cache_control: ahead.cache_control.as_deref(),
        tracing: state.trace.is_on(),
    };
    if let Ok(Target::Proxy(f) | Target::Path(f) | Target::Alias(f)) =
        request::classify(line, &state.config.requests, &state.remap)
    {
        file::prefetch(state, client, &f).await;
    }
}

/// Answers one request.
pub async fn handle<B>(state: &AppState, client: &Client, req: Request<B>) -> Response<ResponseBody> {
    let target = target_text(&req);
    let line = RequestLine {
        method: req.method(),
        target: &target,
        cache_control: req
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        tracing: state.trace.is_on(),
    };
    let outcome = if !client.allowed {
        Err(ServeError::ClientNotAllowed.into())
    } else {
        match request::classify(line, &state.config.requests, &state.remap) {
            Ok(target) => {
                if let Target::Proxy(f) | Target::Path(f) | Target::Alias(f) = &target {
                    if f.unmatched {
                        state.trace.record(&f.url.to_string());
                    }
                }
                answer(state, client, &req, target).await
            }
            Err(reject) => Err(ServeError::Rejected(reject).into()),
        }
    };
    let response = match outcome {
        Ok(response) => response,
        Err(Failed { error, path }) => failure(client, &error, path),
    };
    tracing::debug!(
        client = client.log.client(),
        "{} {target} -> {}",
        req.method(),
        response.status()
    );
    response
}

/// The request target as sent: origin form, absolute form, or the authority
/// of a CONNECT.
fn target_text<B>(req: &Request<B>) -> Cow<'_, str> {
    let uri = req.uri();
    if req.method() == Method::CONNECT {
        return Cow::Owned(uri.authority().map_or_else(String::new, |a| a.to_string()));
    }
    match (uri.scheme(), uri.path_and_query()) {
        (None, Some(pq)) => Cow::Borrowed(pq.as_str()),
        (None, None) => Cow::Borrowed("/"),
        _ => Cow::Owned(uri.to_string()),
    }
}

type Outcome = Result<Response<ResponseBody>, Failed>;

/// A request that got no answer of its own: why, and the name its
/// transfer-log record carries (empty before the request names a file).
#[derive(Debug)]
struct Failed {
    error: ServeError,
    path: String,
}

impl From<ServeError> for Failed {
    fn from(error: ServeError) -> Failed {
        Failed {
            error,
            path: String::new(),
        }
    }
}

impl ServeError {
    fn at(self, path: impl Into<String>) -> Failed {
        Failed {
            error: self,
            path: path.into(),
        }
    }
}

async fn answer<B>(state: &AppState, client: &Client, req: &Request<B>, target: Target) -> Outcome {
    let action = match &target {
        Target::Report { query: Some(query) } => admit(state, client, req, query)?,
        _ => auth::Action::Report,
    };
    match target {
        Target::Proxy(file)
        | Target::Path(file)
        | Target::Alias(file)
        | Target::HttpsProxy(file)
        | Target::HttpsPath(file) => file::serve(state, client, req, &file).await,
        Target::Connect { host, port } => connect(state, client, host, port).await,
        Target::BtsSoap { location } => Ok(redirect(&location)),
        Target::LocalDir { name, path } => local_dir::serve(state, client, req, name, path).await,
        Target::Help => {
            let page = help::page(&state.config, &authority(req, client)).map_err(ServeError::Page)?;
            Ok(page_response("text/html; charset=utf-8", page, req.method()))
        }
        Target::Report { query } => report_page(state, client, req, action, query.as_deref()).await,
        Target::Style => Ok(page_response("text/css", help::STYLE.to_string(), req.method())),
        Target::Icon => Ok(page_response(
            "image/svg+xml",
            help::ICON.to_string(),
            req.method(),
        )),
        Target::Metrics => {
            let status = health::check(&state.cache).await;
            let gauges = metrics::Gauges {
                downloads: state.cache.downloads(),
                checksums: state.cache.expectations().count(),
            };
            let text = metrics::render(&state.stats.snapshot(), &status, &gauges);
            Ok(page_response(metrics::CONTENT_TYPE, text, req.method()))
        }
        Target::Health => Ok(health_page(&health::check(&state.cache).await, req.method())),
        Target::CaCertificate => match &state.intercept {
            Some(intercept) => Ok(page_response(
                "application/x-x509-ca-cert",
                intercept.ca_pem().to_string(),
                req.method(),
            )),
            None => Err(ServeError::Rejected(request::Reject::Forbidden).into()),
        },
    }
}

/// The report page, after the action its query asked for (the gate let
/// it through); `format=json` gives its numbers as JSON.
async fn report_page<B>(
    state: &AppState,
    client: &Client,
    req: &Request<B>,
    action: auth::Action,
    query: Option<&str>,
) -> Outcome {
    let report_path = format!(
        "/{}",
        state.config.requests.report_page.as_deref().unwrap_or_default()
    );
    let notice = match action {
        auth::Action::TraceStart => {
            state.trace.set(true);
            tracing::info!(client = client.log.client(), "pattern tracing started");
            Some(report::Notice::TraceStarted)
        }
        // acng's page names its button doTraceStop; doTraceEnd is its trigger.
        auth::Action::TraceEnd => stop_trace(state, client),
        auth::Action::Report if has_param(query, "doTraceStop") => stop_trace(state, client),
        auth::Action::Report if has_param(query, "doTraceClear") => {
            state.trace.clear();
            Some(report::Notice::TraceCleared)
        }
        auth::Action::Report => None,
        auth::Action::ResetStats => {
            state.stats.reset();
            tracing::info!(client = client.log.client(), "statistics reset");
            Some(report::Notice::StatsReset)
        }
        auth::Action::Count => {
            let links = maintenance::Links {
                authority: &authority(req, client),
                report: &report_path,
            };
            let head_only = req.method() == Method::HEAD;
            return state
                .maintenance
                .count(&state.cache, links, head_only)
                .map_err(|e| ServeError::Page(e).into());
        }
        auth::Action::Expire
        | auth::Action::ListOrphans
        | auth::Action::RemoveOrphans
        | auth::Action::Import
        | auth::Action::Mirror
        | auth::Action::ListDamaged
        | auth::Action::RemoveDamaged
        | auth::Action::TruncateDamaged
        | auth::Action::ConfirmDelete
        | auth::Action::ConfirmTruncate
        | auth::Action::Delete
        | auth::Action::Truncate => {
            let links = maintenance::Links {
                authority: &authority(req, client),
                report: &report_path,
            };
            let context = crate::maint::Context {
                cache: Arc::clone(&state.cache),
                remap: Arc::clone(&state.remap),
                config: Arc::clone(&state.config),
                stats: Arc::clone(&state.stats),
                runtime: tokio::runtime::Handle::current(),
                now: std::time::SystemTime::now(),
            };
            let head_only = req.method() == Method::HEAD;
            return state
                .maintenance
                .upkeep(action, context, query.unwrap_or_default(), links, head_only)
                .map_err(|e| ServeError::Page(e).into());
        }
        auth::Action::Abort => {
            let client_name = client.log.client();
            match query.and_then(maintenance::abort_id) {
                Some(id) => match state.maintenance.cancel(id) {
                    Some(task) => tracing::info!(client = client_name, "maintenance task {task} cancelled"),
                    None => tracing::info!(client = client_name, "cancel: task {id} is not running"),
                },
                None => tracing::info!(client = client_name, "cancel: no task id in the query"),
            }
            return Ok(redirect(&report_path));
        }
    };
    let status = health::check(&state.cache).await;
    let snapshot = state.stats.snapshot();
    let tasks = report::Tasks {
        running: state.maintenance.running(),
        last_count: state.maintenance.last_count(),
        abort_on_problems: state.config.maintenance.expiration.abort_on_problems,
    };
    if query.is_some_and(|q| q.split('&').any(|p| p == "format=json")) {
        let text = report::json(&snapshot, &status, state.cache.downloads(), &tasks);
        return Ok(no_store(page_response("application/json", text, req.method())));
    }
    let page = report::html(
        &snapshot,
        &status,
        &authority(req, client),
        notice,
        &tasks,
        state.trace.snapshot(),
    )
    .map_err(ServeError::Page)?;
    Ok(no_store(page_response(
        "text/html; charset=utf-8",
        page,
        req.method(),
    )))
}

fn stop_trace(state: &AppState, client: &Client) -> Option<report::Notice> {
    state.trace.set(false);
    tracing::info!(client = client.log.client(), "pattern tracing stopped");
    Some(report::Notice::TraceStopped)
}

/// Whether the query has the parameter `name` (with any value).
fn has_param(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|q| q.split('&').any(|p| p.split('=').next() == Some(name)))
}

/// Pages whose numbers change: never from a browser's or a proxy's cache.
fn no_store(mut response: Response<ResponseBody>) -> Response<ResponseBody> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The admin gate in front of a report-page query; a wrong password is
/// logged with the client, being someone trying.
fn admit<B>(
    state: &AppState,
    client: &Client,
    req: &Request<B>,
    query: &str,
) -> Result<auth::Action, Failed> {
    let auth = state.config.requests.admin_auth.as_ref();
    auth::check(query, req.headers(), client.locality(), auth).map_err(|denied| {
        if denied == auth::Denied::WrongCredentials {
            tracing::info!(
                client = client.log.client(),
                "report page: wrong AdminAuth credentials"
            );
        }
        ServeError::Admin(denied).into()
    })
}

/// A CONNECT: answered here for a `TlsInterceptDomains` host (even one
/// `PassThroughPattern` also allows), opened to a target `PassThroughPattern`
/// allows, refused otherwise (acng's text, which apt prints).
async fn connect(state: &AppState, client: &Client, host: String, port: u16) -> Outcome {
    let name = crate::url::host_port(&host, port);
    if let Some(intercept) = state.intercept.as_ref().filter(|i| i.covers(&host)) {
        let tls = intercept
            .server_config(&host)
            .map_err(|e| ServeError::Intercept(e).at(&name))?;
        client.hand_off(Handoff::Intercept { authority: name, tls });
        return Ok(established());
    }
    if !state
        .config
        .requests
        .pass_through
        .as_ref()
        .is_some_and(|p| p.is_match(&name))
    {
        tracing::info!(
            client = client.log.client(),
            "CONNECT {name} refused: not in PassThroughPattern"
        );
        return Err(ServeError::ConnectDenied.at(name));
    }
    let upstream = state
        .cache
        .upstream()
        .open_tunnel(&host, port)
        .await
        .map_err(|e| ServeError::Upstream(e).at(&name))?;
    client.hand_off(Handoff::Tunnel(Tunnel { name, upstream }));
    Ok(established())
}

fn established() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    response
        .extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(b"Connection established"));
    response
}

/// The transfer-log record of a response answered `how`, written and
/// counted when its body is done.
fn account(client: &Client, response: &mut Response<ResponseBody>, path: String, how: Served) {
    let transfer = client
        .log
        .transfer(path, response.status().as_u16(), header_bytes(response), how);
    let body = std::mem::replace(response.body_mut(), ResponseBody::empty());
    *response.body_mut() = body.with_transfer(transfer);
}

/// About what the status line and headers take on the wire (hyper adds
/// `date`), for the transfer log's byte counts.
fn header_bytes<B>(response: &Response<B>) -> u64 {
    let date = "date: Sun, 22 Nov 2026 02:58:26 GMT\r\n".len() as u64;
    crate::log::head_bytes(response.headers()) + date
}

fn failure(client: &Client, err: &ServeError, path: String) -> Response<ResponseBody> {
    if err.is_internal() {
        tracing::error!(client = client.log.client(), path, "{}", Chain(err));
    }
    let mut response = error::response(err);
    account(client, &mut response, path, Served::Error);
    response
}

fn redirect(location: &str) -> Response<ResponseBody> {
    let mut response = Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .header(header::CONTENT_LENGTH, 0)
        .body(ResponseBody::empty())
        .unwrap_or_else(|_| Response::new(ResponseBody::empty()));
    error::with_reason(&mut response, "Redirect");
    response
}

/// `200 OK` while this instance can serve, else `503` with the reason;
/// the body lists every problem, one per line.
fn health_page(status: &health::Status, method: &Method) -> Response<ResponseBody> {
    let mut text: String = status.problems.iter().map(|p| format!("{p}\n")).collect();
    if status.problems.is_empty() {
        text.push_str("OK\n");
    }
    let mut response = page_response("text/plain; charset=utf-8", text, method);
    if !status.serving() {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        error::with_reason(&mut response, "Cache directory not writable");
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn page_response(content_type: &'static str, text: String, method: &Method) -> Response<ResponseBody> {
    let len = text.len();
    let body = if method == Method::HEAD {
        ResponseBody::empty()
    } else {
        ResponseBody::full(text)
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, len)
        .body(body)
        .unwrap_or_else(|_| Response::new(ResponseBody::empty()))
}

/// How the client reached this server, for the help page: its `Host`
/// header when that is a plain host[:port], else the local address.
fn authority<B>(req: &Request<B>, client: &Client) -> String {
    let plain = |h: &&str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
    };
    if let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(plain)
    {
        return host.to_string();
    }
    match client.local {
        Some(addr) => addr.to_string(),
        None => "localhost:3142".to_string(),
    }
}
