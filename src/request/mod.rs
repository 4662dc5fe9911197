//! What a client request is for: one pure function, [`classify`], turns the
//! method, the request target and the headers that matter into a [`Target`]
//! or a [`Reject`], normalising once in the order of spec §2.4. The `Host`
//! header plays no part (RFC 9112 for absolute-form targets; acng never
//! routes by it either).

pub mod kind;
pub mod path;

use std::borrow::Cow;

use http::Method;

use crate::config::Requests;
use crate::remap::RemapTable;
use crate::url::{strip_prefix_ignore_case, HttpUrl, Scheme, UrlError};
pub use kind::FileKind;

/// Every form of request debcache answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `GET http://deb.debian.org/debian/dists/bookworm/InRelease`
    Proxy(FileRequest),
    /// `GET /deb.debian.org/debian/dists/bookworm/InRelease`
    Path(FileRequest),
    /// `GET /debian/dists/bookworm/InRelease`, `/debian` being a remap's
    /// merging URL (or a repository name).
    Alias(FileRequest),
    /// `GET http://HTTPS///packages.example.com/debian/dists/stable/InRelease`,
    /// also `GET https://…` from a proxy client.
    HttpsProxy(FileRequest),
    /// `GET /HTTPS///packages.example.com/debian/dists/stable/InRelease`
    HttpsPath(FileRequest),
    /// `CONNECT bugs.debian.org:443`
    Connect { host: String, port: u16 },
    /// `POST http://bugs.debian.org:80/cgi-bin/soap.cgi` (reportbug): answered
    /// with a redirect to the https address.
    BtsSoap { location: String },
    /// `GET /`: the help page.
    Help,
    /// `GET /acng-report.html?doCount=Count+Data`
    Report { query: Option<String> },
    /// `GET /style.css`
    Style,
    /// `GET /favicon.ico`, which browsers ask for on their own: answered
    /// here, never fetched from a host named `favicon.ico`.
    Icon,
    /// `GET /debcache-ca.crt`: the interception CA's certificate.
    CaCertificate,
    /// `GET /metrics`: the statistics for Prometheus.
    Metrics,
    /// `GET /health`: whether this instance can serve (load balancers).
    Health,
    /// `GET /acng-doc/README`, `acng-doc` being a `LocalDirs` name; also
    /// `GET http://acng-doc/README`. `path` is normalised and starts with
    /// `/`, except for `GET /acng-doc`, the directory itself named without
    /// its slash, where it is empty.
    LocalDir { name: String, path: String },
}

impl Target {
    /// The file a cache request is for.
    pub fn file(&self) -> Option<&FileRequest> {
        match self {
            Target::Proxy(f)
            | Target::Path(f)
            | Target::Alias(f)
            | Target::HttpsProxy(f)
            | Target::HttpsPath(f) => Some(f),
            _ => None,
        }
    }
}

/// A request for a repository file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRequest {
    /// The URL as the client meant it: `https` for the HTTPS/// forms.
    pub url: HttpUrl,
    pub kind: FileKind,
    /// The client sent `Cache-Control: no-cache` and it is honoured.
    pub no_cache: bool,
    /// Fetch without storing unless complete in cache (`no-store`,
    /// `DontCacheRequested`, directory listings).
    pub pass_through: bool,
    /// No pattern classifies it: served as volatile because pattern
    /// tracing is on, and to be traced.
    pub unmatched: bool,
}

impl FileRequest {
    /// A directory URL (`…/pool/main/h/hello/`): relayed, never a cache entry.
    pub fn is_directory(&self) -> bool {
        self.url.path.ends_with('/')
    }
}

/// Why a request is refused before anything is looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Traversal, control bytes, reserved names, or a file type no pattern
    /// allows: acng's `403 Forbidden file type or location`.
    Forbidden,
    /// A port outside `AllowUserPorts`.
    Port(u16),
    /// The target is not a URL debcache understands.
    BadUrl(UrlError),
    /// Not GET, HEAD, CONNECT, or the bugs.debian.org POST.
    Method(Method),
}

/// The parts of a request that decide what it is.
#[derive(Clone, Copy, Debug)]
pub struct RequestLine<'a> {
    pub method: &'a Method,
    /// The request target as sent (origin form, absolute form, or
    /// `host:port` for CONNECT).
    pub target: &'a str,
    /// The `Cache-Control` header, if any.
    pub cache_control: Option<&'a str>,
    /// Pattern tracing is on (`Patrace`, the report page): a file no
    /// pattern classifies is served as volatile, not refused.
    pub tracing: bool,
}

/// Classifies a request (spec §2.4).
pub fn classify(req: RequestLine<'_>, config: &Requests, remap: &RemapTable) -> Result<Target, Reject> {
    match *req.method {
        Method::GET | Method::HEAD => {}
        Method::CONNECT => return connect(req.target),
        Method::POST => return bts_soap(req.target, config),
        _ => return Err(Reject::Method(req.method.clone())),
    }
    let decoded = path::decode(req.target).map_err(|_| Reject::Forbidden)?;
    let (style, text) = Style::of(&decoded)?;
    if style == Style::Path {
        if let Some(page) = local_page(text, config) {
            return Ok(page);
        }
    }
    let parsed = match style {
        Style::HttpsProxy | Style::HttpsPath => HttpUrl::parse(&format!("https://{text}")),
        Style::Proxy | Style::Path => HttpUrl::parse(text),
    };
    let mut url = parsed.map_err(|e| match e {
        UrlError::ReservedHost(_) => Reject::Forbidden,
        e => Reject::BadUrl(e),
    })?;
    if config.local_dirs.contains_key(&url.host) {
        return Ok(Target::LocalDir {
            path: path::normalise(&url.path).into_owned(),
            name: url.host,
        });
    }
    let https = url.scheme == Scheme::Https;
    if !(config.allow_user_ports.allows(url.port) || https && url.port == 443) {
        return Err(Reject::Port(url.port));
    }
    if let Cow::Owned(normal) = path::normalise(&url.path) {
        url.path = normal;
    }
    let file = file_request(url, req.cache_control, req.tracing, config)?;
    Ok(match style {
        Style::Proxy if https => Target::HttpsProxy(file),
        Style::Proxy => Target::Proxy(file),
        Style::HttpsProxy => Target::HttpsProxy(file),
        Style::HttpsPath => Target::HttpsPath(file),
        Style::Path if remap.is_alias(&file.url.host, file.url.port) => Target::Alias(file),
        Style::Path => Target::Path(file),
    })
}

/// How the target names its URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// `http://host/…` or `https://host/…`: the whole text is the URL.
    Proxy,
    /// `http://HTTPS///host/…`: the text after the prefix, fetched with TLS.
    HttpsProxy,
    /// `/HTTPS///host/…`: likewise.
    HttpsPath,
    /// `/host/…`: the first segment is the host.
    Path,
}

impl Style {
    /// The style of a decoded target and the text to parse as its URL.
    fn of(decoded: &str) -> Result<(Style, &str), Reject> {
        if let Some(rest) = decoded.strip_prefix("/HTTPS///") {
            return Ok((Style::HttpsPath, rest));
        }
        if let Some(rest) = strip_prefix_ignore_case(decoded, "http://https///") {
            return Ok((Style::HttpsProxy, rest));
        }
        if strip_prefix_ignore_case(decoded, "http://").is_some()
            || strip_prefix_ignore_case(decoded, "https://").is_some()
        {
            return Ok((Style::Proxy, decoded));
        }
        if decoded.starts_with('/') {
            return Ok((Style::Path, decoded));
        }
        Err(Reject::BadUrl(match decoded.split_once("://") {
            Some((scheme, _)) => UrlError::UnsupportedScheme(scheme.to_string()),
            None => UrlError::EmptyHost,
        }))
    }
}

/// Pages of the daemon itself, recognised in path style only (spec §2.5).
/// Where the help page offers the interception CA.
pub const CA_CERTIFICATE: &str = "debcache-ca.crt";

fn local_page(decoded: &str, config: &Requests) -> Option<Target> {
    let trimmed = decoded.trim_start_matches('/');
    let (name, query) = match trimmed.split_once('?') {
        Some((n, q)) => (n, Some(q)),
        None => (trimmed, None),
    };
    if name.is_empty() {
        return Some(Target::Help);
    }
    if config.report_page.as_deref() == Some(name) {
        return Some(Target::Report {
            query: query.map(str::to_string),
        });
    }
    if name == "style.css" {
        return Some(Target::Style);
    }
    if name == "favicon.ico" {
        return Some(Target::Icon);
    }
    if name == CA_CERTIFICATE {
        return Some(Target::CaCertificate);
    }
    if name == "metrics" {
        return Some(Target::Metrics);
    }
    if name == "health" {
        return Some(Target::Health);
    }
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    // Every path-style request passes here: normalise only a LocalDirs one.
    if !config.local_dirs.contains_key(first) {
        return None;
    }
    Some(Target::LocalDir {
        name: first.to_string(),
        path: match rest {
            Some(rest) => path::normalise(&format!("/{rest}")).into_owned(),
            // `/acng-doc` itself: a directory named without its slash, which
            // gets a redirect so that the listing's relative links resolve.
            None => String::new(),
        },
    })
}

fn file_request(
    url: HttpUrl,
    cache_control: Option<&str>,
    tracing: bool,
    config: &Requests,
) -> Result<FileRequest, Reject> {
    let (no_cache, no_store) = cache_control.map_or((false, false), |cc| {
        let has = |token: &str| {
            cc.split(',').any(|t| {
                t.trim()
                    .split('=')
                    .next()
                    .is_some_and(|n| n.eq_ignore_ascii_case(token))
            })
        };
        (has("no-cache"), has("no-store"))
    });
    let no_cache = no_cache && config.cache_control.no_cache;
    let no_store = no_store && config.cache_control.no_store;
    let directory = url.path.ends_with('/');
    let dont_cache = dont_cache(&config.dont_cache_requested, &url);
    let (kind, unmatched) = if directory {
        (FileKind::Solid, false)
    } else {
        match kind::classify(&url.path, &config.file_patterns) {
            Some(kind) => (kind, false),
            None if tracing => (FileKind::Volatile, true),
            None => return Err(Reject::Forbidden),
        }
    };
    Ok(FileRequest {
        url,
        kind,
        no_cache,
        pass_through: directory || dont_cache || no_store,
        unmatched,
    })
}

/// Whether one of `patterns` (`DontCacheRequested`, `DontCacheResolved`)
/// matches `http(s)://host[:port]/path`, the port only when not the
/// default. Most configurations have none: then nothing is formatted.
pub fn dont_cache(patterns: &[regex::Regex], url: &HttpUrl) -> bool {
    if patterns.is_empty() {
        return false;
    }
    let text = format!("{}://{}{}", url.scheme.as_str(), url.authority(), url.path);
    patterns.iter().any(|r| r.is_match(&text))
}

fn connect(target: &str) -> Result<Target, Reject> {
    let url = HttpUrl::parse(&format!("https://{target}")).map_err(Reject::BadUrl)?;
    if url.path != "/" {
        return Err(Reject::BadUrl(UrlError::BadHost(target.to_string())));
    }
    Ok(Target::Connect {
        host: url.host,
        port: url.port,
    })
}

/// reportbug's SOAP POST to bugs.debian.org gets a redirect to https when
/// `ForwardBtsSoap` is on (spec §2.2); any other POST gets a 501.
fn bts_soap(target: &str, config: &Requests) -> Result<Target, Reject> {
    let rest = target
        .strip_prefix("http://bugs.debian.org:80/")
        .or_else(|| target.strip_prefix("http://bugs.debian.org/"));
    match rest {
        Some(rest) if config.forward_bts_soap => Ok(Target::BtsSoap {
            location: format!("https://bugs.debian.org:443/{rest}"),
        }),
        _ => Err(Reject::Method(Method::POST)),
    }
}

#[cfg(test)]
mod tests;
