//! Fetching from mirrors: one pooled hyper client per way out (direct, the
//! global `Proxy`, each remap's `proxy=`), the request apt-cacher-ng would
//! send (spec §4.2, with the `Host` port and relative redirects fixed),
//! redirects up to `RedirMax`, and failover among a repository's backends
//! before any byte of a response has been used. With `ProxyIsCache` the
//! `Proxy` is a parent cache, asked for https files as `HTTPS///` URLs in
//! plain http instead of through a tunnel. A `Remap-` repository's hooks
//! run around its transfers: whoever goes upstream for a repository holds
//! its [`Link`] (from [`Upstream::link`]) until the transfer ends.

mod connect;
mod error;
mod failover;
mod hooks;
mod proxy_check;
mod shell;
mod tls;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{Remap, RemapProxy, UpstreamConfig};
use crate::url::{HttpUrl, Scheme};
use connect::Connector;
pub use error::UpstreamError;
use failover::Avoid;
pub use hooks::Link;
pub use tls::{SetupError, TlsFailure, Trust};

/// How long an idle upstream connection is kept for reuse (as acng).
const POOL_IDLE: Duration = Duration::from_secs(33);

type HttpClient = Client<Connector, Empty<Bytes>>;

/// Per-request upstream settings.
#[derive(Debug)]
pub struct Ask<'a> {
    pub method: Method,
    /// Range, If-Range, conditional and cache-control headers.
    pub headers: HeaderMap,
    pub proxy: &'a RemapProxy,
    /// `X-Forwarded-For` to send with `ExposeOrigin`.
    pub forwarded_for: Option<String>,
}

impl<'a> Ask<'a> {
    pub fn get(proxy: &'a RemapProxy) -> Ask<'a> {
        Ask {
            method: Method::GET,
            headers: HeaderMap::new(),
            proxy,
            forwarded_for: None,
        }
    }
}

/// What one backend made of one attempt.
#[derive(Debug)]
pub enum Attempt {
    /// A response to use, whatever its status.
    Answer(Fetched),
    /// The backend failed as a whole and is avoided for a while: the next
    /// one is worth trying. Its answer is what to report when none is left.
    BackendFailed(Result<Fetched, UpstreamError>),
    /// A failure that no other backend would mend.
    Failed(UpstreamError),
}

/// A response, and where it came from.
#[derive(Debug)]
pub struct Fetched {
    pub response: Response<Incoming>,
    /// The URL that answered, after redirects.
    pub url: HttpUrl,
    pub redirected: bool,
}

/// One way out: a client, and what it tells the proxy it goes through
/// (plain http requests carry it; tunnels send it with their CONNECT).
struct Route {
    client: HttpClient,
    /// For CONNECT tunnels, which bypass the HTTP client.
    connector: Connector,
    proxy_auth: Option<HeaderValue>,
    /// `ProxyIsCache`: the proxy is a parent cache, asked for https files
    /// in plain http (see [`parent_uri`]).
    parent: bool,
    /// With `OptProxyTimeout`: until when this proxy is gone around.
    down_until: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Route {
    fn asks_parent(&self, url: &HttpUrl) -> bool {
        self.parent && asks_parent(url)
    }

    fn is_down(&self) -> bool {
        let until = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        until.is_some_and(|t| tokio::time::Instant::now() < t)
    }

    fn mark_down(&self, for_: Duration) {
        *self.down_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokio::time::Instant::now() + for_);
    }
}

pub struct Upstream {
    /// Straight to the mirrors.
    direct: Route,
    /// Through each proxy the configuration names (`Proxy`, `proxy=`).
    proxied: HashMap<HttpUrl, Route>,
    global_proxy: Option<HttpUrl>,
    avoid: Avoid,
    timeout: Duration,
    redir_max: u32,
    user_agent: Option<HeaderValue>,
    appendix: Vec<(HeaderName, HeaderValue)>,
    trust: Trust,
    /// `OptProxyCheckInterval`, when `OptProxyTimeout` lets a proxy be gone
    /// around.
    proxy_retry_after: Option<Duration>,
    /// `OptProxyCheckCommand`, for the global `Proxy`.
    proxy_check: Option<proxy_check::ProxyCheck>,
    /// The repositories with hooks.
    links: hooks::Links,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("proxies", &self.proxied.len())
            .finish()
    }
}

impl Upstream {
    /// The clients of every way out (direct, the `Proxy`, each remap's
    /// `proxy=`), sharing one TLS configuration; fails when the trust
    /// settings cannot be used.
    pub fn new(config: &UpstreamConfig, remaps: &[Remap]) -> Result<Upstream, SetupError> {
        let (tls, trust) = tls::client_config(&config.tls)?;
        let route = |proxy: Option<&HttpUrl>| {
            // A `proxy=` naming the same URL shares the `Proxy`'s route.
            let parent = config.proxy_is_cache && proxy.is_some() && proxy == config.proxy.as_ref();
            let proxy_auth = proxy
                .and_then(|p| p.credentials.as_ref())
                .map(|c| basic(&c.user, &c.password));
            let connector = Connector::new(connect::Settings {
                tls: Arc::clone(&tls),
                proxy: proxy.map(|p| (p, proxy_auth.clone())),
                timeout: config.network_timeout,
                proxy_timeout: config.proxy_fallback,
                fast_timeout: config.fast_timeout,
                families: &config.connect_proto,
            });
            Route {
                client: Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(POOL_IDLE)
                    .pool_max_idle_per_host(if config.reuse_connections { 32 } else { 0 })
                    .pool_timer(TokioTimer::new())
                    .build(connector.clone()),
                connector,
                proxy_auth,
                parent,
                down_until: Default::default(),
            }
        };
        let proxies = config
            .proxy
            .iter()
            .chain(remaps.iter().filter_map(|r| match &r.flags.proxy {
                RemapProxy::Via(p) => Some(p),
                _ => None,
            }));
        Ok(Upstream {
            direct: route(None),
            proxied: proxies.map(|p| (p.clone(), route(Some(p)))).collect(),
            global_proxy: config.proxy.clone(),
            avoid: Avoid::default(),
            timeout: config.network_timeout,
            redir_max: config.redir_max,
            user_agent: config
                .user_agent
                .as_deref()
                .and_then(|ua| HeaderValue::from_str(ua).ok()),
            appendix: config
                .request_appendix
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        HeaderName::from_bytes(k.as_bytes()).ok()?,
                        HeaderValue::from_str(v).ok()?,
                    ))
                })
                .collect(),
            trust,
            proxy_retry_after: config.proxy_fallback.map(|_| config.proxy_retry_after),
            proxy_check: config
                .proxy_check
                .clone()
                .filter(|_| config.proxy.is_some())
                .map(|c| proxy_check::ProxyCheck::new(c, config.proxy_retry_after, config.network_timeout)),
            links: hooks::Links::new(remaps, config.hook_timeout),
        })
    }

    /// A connection to `host:port` for a client's CONNECT tunnel, through
    /// the `Proxy` when one is set.
    pub async fn open_tunnel(&self, host: &str, port: u16) -> Result<tokio::net::TcpStream, UpstreamError> {
        let route = self.checked_route(&RemapProxy::Global).await;
        let authority = crate::url::host_port(host, port);
        let (route, fallback) = self.way_out(route);
        let opened = route.connector.open(host, port).await;
        match (
            opened.map_err(|e| error::from_connect(authority.clone(), e)),
            fallback,
        ) {
            (Err(e @ UpstreamError::ProxyUnreachable { .. }), Some(retry_after)) => {
                self.go_around(route, retry_after, &e);
                let opened = self.direct.connector.open(host, port).await;
                opened.map_err(|e| error::from_connect(authority, e))
            }
            (opened, _) => opened,
        }
    }

    /// The link of the `Remap-` repository `repo` (`None`: a host's own
    /// directory, which has no hooks), brought up first by its PreUp hook
    /// when it is down. Held until the transfer ends; dropping the last
    /// one makes the repository's Down hook due.
    pub async fn link(&self, repo: Option<&str>) -> Link {
        self.links.up(repo).await
    }

    /// What TLS connections trust.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    pub fn network_timeout(&self) -> Duration {
        self.timeout
    }

    /// Tries `backends` in failover order until one gives a response that is
    /// not a backend failure; `keyfile` makes a 4xx count as one too.
    pub async fn fetch(
        &self,
        backends: &[HttpUrl],
        ask: &Ask<'_>,
        keyfile: bool,
    ) -> Result<Fetched, UpstreamError> {
        let order = self.order(backends);
        let mut last = None;
        for (n, backend) in order.iter().enumerate() {
            let more = n + 1 < order.len();
            match self.attempt(backend, backend, ask, keyfile && more).await {
                Attempt::Answer(f) => return Ok(f),
                Attempt::BackendFailed(answer) => last = Some(answer),
                Attempt::Failed(e) => return Err(e),
            }
        }
        last.unwrap_or(Err(UpstreamError::AllBackendsFailed))
    }

    /// The order to try `backends` in: as configured, the ones failing of
    /// late last (see `failover`).
    pub fn order<'b>(&self, backends: &'b [HttpUrl]) -> Vec<&'b HttpUrl> {
        self.avoid
            .order(backends)
            .into_iter()
            .map(|i| &backends[i])
            .collect()
    }

    /// The mirrors avoided now (they failed of late), and for how long.
    pub fn avoided(&self) -> Vec<(String, Duration)> {
        self.avoid.current()
    }

    /// Avoids `backend` for a while, for a failure its caller found.
    pub fn avoid(&self, backend: &HttpUrl, why: &dyn std::fmt::Display) {
        self.avoid.mark(backend, why);
    }

    /// One request for a file to `backend`, redirects included: to `url`,
    /// which is the backend itself or where it sent an earlier attempt.
    /// Judged for failover: a backend that fails as a whole is avoided from
    /// now on; `keyfile` makes a 4xx such a failure too.
    pub async fn attempt(&self, backend: &HttpUrl, url: &HttpUrl, ask: &Ask<'_>, keyfile: bool) -> Attempt {
        match self.fetch_one(url, ask).await {
            Ok(f) if f.response.status().is_server_error() => {
                self.avoid.mark(backend, &f.response.status());
                Attempt::BackendFailed(Ok(f))
            }
            Ok(f) if keyfile && f.response.status().is_client_error() => {
                self.avoid.mark(
                    backend,
                    &format_args!("key file answered {}", f.response.status()),
                );
                Attempt::BackendFailed(Ok(f))
            }
            Ok(f) => Attempt::Answer(f),
            Err(e) if e.is_backend_failure() => {
                self.avoid.mark(backend, &e);
                Attempt::BackendFailed(Err(e))
            }
            Err(e) => Attempt::Failed(e),
        }
    }

    /// One URL, following redirects, all within `NetworkTimeout`; no
    /// failover.
    async fn fetch_one(&self, url: &HttpUrl, ask: &Ask<'_>) -> Result<Fetched, UpstreamError> {
        tokio::time::timeout(self.timeout, self.follow(url, ask))
            .await
            .unwrap_or_else(|_| Err(UpstreamError::Timeout { url: url.masked() }))
    }

    async fn follow(&self, url: &HttpUrl, ask: &Ask<'_>) -> Result<Fetched, UpstreamError> {
        let mut current = url.clone();
        let mut hops = 0;
        loop {
            let response = self.send(&current, ask).await?;
            if !is_redirect(response.status()) || self.redir_max == 0 {
                return Ok(Fetched {
                    response,
                    url: current,
                    redirected: hops > 0,
                });
            }
            hops += 1;
            if hops > self.redir_max {
                return Err(UpstreamError::RedirectLoop {
                    url: current.masked(),
                });
            }
            // A missing or empty Location would resolve to the same URL
            // and spend the hops on it.
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let next = match location.as_str() {
                "" => None,
                l => current.resolve(l).ok(),
            };
            current = next.ok_or_else(|| UpstreamError::BadRedirect {
                url: current.masked(),
                location,
            })?;
            tracing::debug!("redirected to {}", current.masked());
        }
    }

    /// Through the repository's proxy; with `OptProxyTimeout`, direct
    /// while that proxy is down (spec §4.8).
    async fn send(&self, url: &HttpUrl, ask: &Ask<'_>) -> Result<Response<Incoming>, UpstreamError> {
        let (route, fallback) = self.way_out(self.checked_route(ask.proxy).await);
        match (self.send_on(route, url, ask).await, fallback) {
            (Err(e @ UpstreamError::ProxyUnreachable { .. }), Some(retry_after)) => {
                self.go_around(route, retry_after, &e);
                self.send_on(&self.direct, url, ask).await
            }
            (sent, _) => sent,
        }
    }

    /// With `OptProxyTimeout`, a proxy route that is gone around becomes
    /// the direct one; the interval is returned for a proxy route that may
    /// be gone around if it fails.
    fn way_out<'r>(&'r self, route: &'r Route) -> (&'r Route, Option<Duration>) {
        match self.proxy_retry_after {
            Some(_) if std::ptr::eq(route, &self.direct) => (route, None),
            Some(_) if route.is_down() => (&self.direct, None),
            fallback => (route, fallback),
        }
    }

    /// A proxy that could not be reached: direct for `retry_after`.
    fn go_around(&self, route: &Route, retry_after: Duration, why: &UpstreamError) {
        tracing::warn!(
            "{}; going direct for {}s (OptProxyCheckInterval)",
            crate::error::Chain(why),
            retry_after.as_secs()
        );
        route.mark_down(retry_after);
    }

    async fn send_on(
        &self,
        route: &Route,
        url: &HttpUrl,
        ask: &Ask<'_>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let parent = route.asks_parent(url);
        // Inside a tunnel the mirror would see the proxy's credentials.
        let proxy_auth = route
            .proxy_auth
            .as_ref()
            .filter(|_| url.scheme == Scheme::Http || parent);
        let uri = if parent {
            parent_uri(url)
        } else {
            format!(
                "{}://{}{}",
                url.scheme.as_str(),
                url.authority(),
                url.encoded_path()
            )
        };
        let request = self.request(url, uri, ask, proxy_auth)?;
        route
            .client
            .request(request)
            .await
            .map_err(|e| error::classify(url, e))
    }

    /// A repository's way out, direct when `OptProxyCheckCommand` says the
    /// global `Proxy` is not to be used now.
    async fn checked_route(&self, choice: &RemapProxy) -> &Route {
        let route = self.route(choice);
        match &self.proxy_check {
            Some(check) if matches!(choice, RemapProxy::Global) && !std::ptr::eq(route, &self.direct) => {
                if check.use_proxy().await {
                    route
                } else {
                    &self.direct
                }
            }
            _ => route,
        }
    }

    /// A repository's way out.
    fn route(&self, choice: &RemapProxy) -> &Route {
        let proxy = match choice {
            RemapProxy::Global => self.global_proxy.as_ref(),
            RemapProxy::Direct => None,
            RemapProxy::Via(p) => Some(p),
        };
        // Every proxy of the configuration has its route (`new`).
        proxy.and_then(|p| self.proxied.get(p)).unwrap_or(&self.direct)
    }

    /// The request apt-cacher-ng sends (spec §4.2).
    fn request(
        &self,
        url: &HttpUrl,
        uri: String,
        ask: &Ask<'_>,
        proxy_auth: Option<&HeaderValue>,
    ) -> Result<Request<Empty<Bytes>>, UpstreamError> {
        let mut builder = Request::builder().method(ask.method.clone()).uri(uri);
        let headers = builder
            .headers_mut()
            .ok_or_else(|| UpstreamError::Unrequestable { url: url.masked() })?;
        if let Some(ua) = &self.user_agent {
            headers.insert(header::USER_AGENT, ua.clone());
        }
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        // Stored bytes must be the file itself, never a compressed transfer.
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        if let Some(c) = &url.credentials {
            headers.insert(header::AUTHORIZATION, basic(&c.user, &c.password));
        }
        if let Some(auth) = proxy_auth {
            headers.insert(header::PROXY_AUTHORIZATION, auth.clone());
        }
        for (k, v) in &self.appendix {
            headers.append(k.clone(), v.clone());
        }
        if let Some(xff) = ask
            .forwarded_for
            .as_deref()
            .and_then(|x| HeaderValue::from_str(x).ok())
        {
            headers.insert(HeaderName::from_static("x-forwarded-for"), xff);
        }
        for (k, v) in &ask.headers {
            headers.insert(k.clone(), v.clone());
        }
        builder
            .body(Empty::new())
            .map_err(|_| UpstreamError::Unrequestable { url: url.masked() })
    }
}

/// Whether a parent cache is asked for `url` as an `HTTPS///` URL: an
/// https one without credentials (they would cross to the parent in the
/// clear, and the parent would serve what they open to anyone).
fn asks_parent(url: &HttpUrl) -> bool {
    url.scheme == Scheme::Https && url.credentials.is_none()
}

/// What a parent cache is asked for an https file: `http://HTTPS///` and
/// the host, port (when not 443) and path, the proxy-style form apt sends
/// for an `HTTPS///` line. The parent fetches it over TLS and caches it
/// under the host and path, as it would for its own clients.
fn parent_uri(url: &HttpUrl) -> String {
    format!("http://HTTPS///{}{}", url.authority(), url.encoded_path())
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn basic(user: &str, password: &str) -> HeaderValue {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    HeaderValue::from_str(&format!("Basic {token}")).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `X-Forwarded-For` for `ExposeOrigin`: the incoming chain plus the client.
pub fn forwarded_for(incoming: Option<&str>, client: Option<IpAddr>) -> Option<String> {
    let client = client?.to_canonical().to_string();
    Some(match incoming.map(str::trim).filter(|s| !s.is_empty()) {
        Some(chain) => format!("{chain}, {client}"),
        None => client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_base64() {
        assert_eq!(
            basic("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn a_parent_cache_is_asked_for_https_files_in_https_slash_form() {
        let url = HttpUrl::parse("https://mirror.example/debian/pool/a+b.deb").unwrap();
        assert_eq!(
            parent_uri(&url),
            "http://HTTPS///mirror.example/debian/pool/a%2Bb.deb"
        );
        let url = HttpUrl::parse("https://mirror.example:8443/d/x").unwrap();
        assert_eq!(parent_uri(&url), "http://HTTPS///mirror.example:8443/d/x");
        // hyper takes it: the authority is `HTTPS`, the rest its path.
        let uri: http::Uri = parent_uri(&url).parse().unwrap();
        assert_eq!(uri.host(), Some("HTTPS"));
        assert_eq!(uri.path(), "///mirror.example:8443/d/x");
    }

    #[test]
    fn only_https_files_without_credentials_are_asked_of_a_parent() {
        let asks = |u: &str| asks_parent(&HttpUrl::parse(u).unwrap());
        assert!(asks("https://mirror.example/debian/"));
        assert!(
            !asks("http://mirror.example/debian/"),
            "plain http is proxy style anyway"
        );
        assert!(
            !asks("https://user:secret@mirror.example/debian/"),
            "keeps its tunnel"
        );
    }

    #[test]
    fn forwarded_for_appends_the_client() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(forwarded_for(None, Some(ip)).unwrap(), "192.0.2.1");
        assert_eq!(
            forwarded_for(Some("198.51.100.7"), Some(ip)).unwrap(),
            "198.51.100.7, 192.0.2.1"
        );
        assert_eq!(forwarded_for(Some("x"), None), None);
    }
}
