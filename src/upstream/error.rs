//! Why upstream gave no usable answer, with apt-cacher-ng's reason texts
//! (spec §2.9): clients see `503 <reason>`, and apt prints the reason.

use std::fmt;

use super::connect::ConnectError;
use super::tls::TlsFailure;
use crate::stats::FailureClass;
use crate::url::HttpUrl;

/// URLs in these errors are for messages: credentials masked.
#[derive(Debug)]
pub enum UpstreamError {
    /// The name does not resolve.
    HostNotFound { url: String, source: BoxError },
    /// Refused, unreachable, or reset while connecting.
    Connect { url: String, source: BoxError },
    /// No connection, or no response head, within `NetworkTimeout`.
    Timeout { url: String },
    /// The connection broke before a response arrived.
    Closed { url: String, source: BoxError },
    /// More redirects than `RedirMax`.
    RedirectLoop { url: String },
    /// A redirect without a usable `Location`.
    BadRedirect { url: String, location: String },
    /// The URL cannot be put in a request line.
    Unrequestable { url: String },
    /// The TLS handshake failed, or the mirror's certificate did.
    Tls {
        url: String,
        failure: TlsFailure,
        source: BoxError,
    },
    /// The upstream proxy would not open a tunnel to the mirror.
    Proxy { url: String, source: BoxError },
    /// The upstream proxy cannot be reached.
    ProxyUnreachable { url: String, source: BoxError },
    /// Every backend is failing.
    AllBackendsFailed,
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl UpstreamError {
    /// The reason phrase of the `503` clients get.
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::HostNotFound { .. } => "Host not found",
            UpstreamError::Connect { .. } => "Connection refused",
            UpstreamError::Timeout { .. } => "Connection timeout",
            UpstreamError::Closed { .. } => "Connection closed, check DlMaxRetries",
            UpstreamError::RedirectLoop { .. } => "Redirection loop",
            UpstreamError::BadRedirect { .. } => "Bad redirection",
            UpstreamError::Unrequestable { .. } => "Invalid URL",
            UpstreamError::Tls { failure, .. } => failure.reason(),
            UpstreamError::Proxy { .. } => "Proxy refused the connection to the mirror",
            UpstreamError::ProxyUnreachable { .. } => "Upstream proxy unreachable",
            UpstreamError::AllBackendsFailed => "Mirror blocked due to repeated errors",
        }
    }

    /// How `/metrics` counts it.
    pub fn class(&self) -> FailureClass {
        match self {
            UpstreamError::HostNotFound { .. } => FailureClass::Dns,
            UpstreamError::Connect { .. } => FailureClass::Connect,
            UpstreamError::Timeout { .. } => FailureClass::Timeout,
            UpstreamError::Closed { .. } => FailureClass::Closed,
            UpstreamError::RedirectLoop { .. } | UpstreamError::BadRedirect { .. } => FailureClass::Redirect,
            UpstreamError::Tls { .. } => FailureClass::Tls,
            UpstreamError::Proxy { .. } | UpstreamError::ProxyUnreachable { .. } => FailureClass::Proxy,
            UpstreamError::Unrequestable { .. } | UpstreamError::AllBackendsFailed => FailureClass::Other,
        }
    }

    /// Failures of a backend as a whole (rather than of this file): the next
    /// backend is worth trying, and this one worth avoiding for a while.
    pub fn is_backend_failure(&self) -> bool {
        matches!(
            self,
            UpstreamError::HostNotFound { .. }
                | UpstreamError::Connect { .. }
                | UpstreamError::Timeout { .. }
                | UpstreamError::Closed { .. }
                | UpstreamError::Tls { .. }
                | UpstreamError::Proxy { .. }
        )
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::HostNotFound { url, .. } => write!(f, "{url}: host not found"),
            UpstreamError::Connect { url, .. } => write!(f, "{url}: cannot connect"),
            UpstreamError::Timeout { url } => write!(f, "{url}: no answer in time"),
            UpstreamError::Closed { url, .. } => write!(f, "{url}: connection closed"),
            UpstreamError::RedirectLoop { url } => write!(f, "{url}: too many redirects"),
            UpstreamError::BadRedirect { url, location } => {
                write!(f, "{url}: unusable redirect to {location:?}")
            }
            UpstreamError::Unrequestable { url } => write!(f, "{url}: cannot be requested"),
            UpstreamError::Tls { url, failure, .. } => write!(f, "{url}: {}", failure.reason()),
            UpstreamError::Proxy { url, .. } => write!(f, "{url}: the proxy refused a tunnel"),
            UpstreamError::ProxyUnreachable { url, .. } => {
                write!(f, "{url}: the upstream proxy is unreachable")
            }
            UpstreamError::AllBackendsFailed => f.write_str("every backend failed"),
        }
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamError::HostNotFound { source, .. }
            | UpstreamError::Connect { source, .. }
            | UpstreamError::Closed { source, .. }
            | UpstreamError::Tls { source, .. }
            | UpstreamError::Proxy { source, .. }
            | UpstreamError::ProxyUnreachable { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// What kind of [`UpstreamError`] a connector failure is.
#[derive(Clone, Copy)]
enum Class {
    HostNotFound,
    Connect,
    Timeout,
    Proxy,
    ProxyUnreachable,
    Tls(TlsFailure),
}

impl Class {
    fn of(connect: &ConnectError) -> Class {
        match connect {
            ConnectError::Dns { .. } | ConnectError::NoHost => Class::HostNotFound,
            ConnectError::Refused { .. } => Class::Connect,
            ConnectError::Timeout { .. } => Class::Timeout,
            ConnectError::Proxy { .. } => Class::Proxy,
            ConnectError::ProxyUnreachable { .. } => Class::ProxyUnreachable,
            ConnectError::Tls { failure, .. } => Class::Tls(*failure),
        }
    }

    /// The error, naming `url` and keeping `source` as its cause.
    fn error(self, url: String, source: BoxError) -> UpstreamError {
        match self {
            Class::HostNotFound => UpstreamError::HostNotFound { url, source },
            Class::Connect => UpstreamError::Connect { url, source },
            Class::Timeout => UpstreamError::Timeout { url },
            Class::Proxy => UpstreamError::Proxy { url, source },
            Class::ProxyUnreachable => UpstreamError::ProxyUnreachable { url, source },
            Class::Tls(failure) => UpstreamError::Tls { url, failure, source },
        }
    }
}

/// A connector failure of a tunnel to `authority`.
pub fn from_connect(authority: String, error: ConnectError) -> UpstreamError {
    Class::of(&error).error(authority, Box::new(error))
}

/// Sorts a hyper client error: connection failures by the connector's
/// own [`ConnectError`], the rest by whether a read timed out.
pub fn classify(url: &HttpUrl, error: hyper_util::client::legacy::Error) -> UpstreamError {
    let url = url.masked();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut timed_out = false;
    while let Some(c) = cause {
        if let Some(connect) = c.downcast_ref::<ConnectError>() {
            let class = Class::of(connect);
            return class.error(url, Box::new(error));
        }
        timed_out |= c
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
        cause = c.source();
    }
    if timed_out {
        UpstreamError::Timeout { url }
    } else {
        UpstreamError::Closed {
            url,
            source: Box::new(error),
        }
    }
}
