//! The one table that turns a failure into a status, the reason phrase apt
//! prints (apt-cacher-ng's texts, spec §2.9), and a small HTML body. Internal
//! details go to the log, never to the client.

use std::borrow::Cow;
use std::fmt;

use askama::Template;
use http::{Response, StatusCode};

use crate::admin::auth::Denied;
use crate::admin::local_dir::LocalDirError;
use crate::admin::maintenance;
use crate::body::ResponseBody;
use crate::cache::{Failure, KeyError};
use crate::intercept::InterceptError;
use crate::request::Reject;
use crate::upstream::UpstreamError;

/// Why a request got no file.
#[derive(Debug)]
pub enum ServeError {
    Rejected(Reject),
    BadKey(KeyError),
    /// A CONNECT to a target `PassThroughPattern` does not allow.
    ConnectDenied,
    /// The client's address is not in `AllowedClients`.
    ClientNotAllowed,
    /// The admin gate refused a query on the report page.
    Admin(Denied),
    /// The file is not complete in the cache and nothing is downloaded.
    Offline,
    /// The cache layout cannot hold the file: a parent is a cached file,
    /// or the name is a directory of the cache.
    LayoutConflict,
    /// The cache could not be read.
    Storage(std::io::Error),
    /// No certificate could be made for an intercepted host.
    Intercept(InterceptError),
    /// A page of the daemon could not be rendered (a bug).
    Page(askama::Error),
    /// An upstream answer could not be passed on (a bug: its parts were
    /// valid where they came from).
    Response(http::Error),
    /// The file's download produced nothing.
    Download(Failure),
    /// A request relayed upstream got no answer.
    Upstream(UpstreamError),
    /// A `LocalDirs` path that names no file or directory served.
    LocalDir(LocalDirError),
}

impl ServeError {
    /// Status and reason phrase.
    pub fn status(&self) -> (StatusCode, Cow<'static, str>) {
        let (status, reason): (StatusCode, &'static str) = match self {
            // The cache cannot hold a name that long (acng 3.7.4 tried and
            // answered 500 Cache Error); the client can only shorten it.
            ServeError::BadKey(KeyError::TooLong) => (StatusCode::URI_TOO_LONG, "URI Too Long"),
            // Not internal (500) nor transient (503): the same request
            // always gets it, and no client can resolve it (unlike a 409).
            ServeError::Rejected(Reject::Forbidden)
            | ServeError::BadKey(_)
            | ServeError::LayoutConflict
            | ServeError::Download(Failure::LayoutConflict) => {
                (StatusCode::FORBIDDEN, "Forbidden file type or location")
            }
            ServeError::Rejected(Reject::Port(_)) => (
                StatusCode::FORBIDDEN,
                "Configuration error (confusing proxy mode) or prohibited port (see AllowUserPorts)",
            ),
            ServeError::Rejected(Reject::BadUrl(_)) => (StatusCode::BAD_REQUEST, "Bad Request"),
            ServeError::Rejected(Reject::Method(_)) => (StatusCode::NOT_IMPLEMENTED, "Not Implemented"),
            ServeError::ConnectDenied => (
                StatusCode::FORBIDDEN,
                "CONNECT denied (ask the admin to allow HTTPS tunnels)",
            ),
            ServeError::ClientNotAllowed => (
                StatusCode::FORBIDDEN,
                "Client not allowed to use this cache (see AllowedClients)",
            ),
            // acng's 401 (spec §8.2); the challenge is in `challenge()`.
            ServeError::Admin(Denied::NeedsCredentials | Denied::WrongCredentials) => {
                (StatusCode::UNAUTHORIZED, "Not Authorized")
            }
            ServeError::Admin(Denied::NotLocal) => (
                StatusCode::FORBIDDEN,
                "Set AdminAuth to run maintenance from another host",
            ),
            ServeError::Admin(Denied::CrossSite) => (StatusCode::FORBIDDEN, "Cross-site request refused"),
            ServeError::Offline => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unable to download in offline mode",
            ),
            ServeError::Storage(_)
            | ServeError::Intercept(_)
            | ServeError::Page(_)
            | ServeError::Response(_)
            | ServeError::Download(Failure::Storage(_)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Cache Error, check the server log",
            ),
            ServeError::Download(Failure::Status { code, reason, .. }) => {
                let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY);
                return (status, Cow::Owned(reason.clone()));
            }
            ServeError::Download(Failure::Unusable(why)) => (StatusCode::SERVICE_UNAVAILABLE, why.reason()),
            ServeError::Download(Failure::Upstream(e)) => (StatusCode::SERVICE_UNAVAILABLE, e.reason()),
            ServeError::Download(Failure::RedirectedToInvalidTarget) => {
                (StatusCode::NOT_IMPLEMENTED, "Redirected to invalid target")
            }
            ServeError::Download(Failure::DiskFull) => (StatusCode::SERVICE_UNAVAILABLE, "Cache disk full"),
            ServeError::Download(Failure::Mismatch(_)) => (
                StatusCode::BAD_GATEWAY,
                "Checksum mismatch, see the cache's error log",
            ),
            ServeError::Download(Failure::Abandoned) => {
                (StatusCode::SERVICE_UNAVAILABLE, "Remote or cache error")
            }
            ServeError::Upstream(e) => (StatusCode::SERVICE_UNAVAILABLE, e.reason()),
            ServeError::LocalDir(e) => local_dir_status(e),
        };
        (status, Cow::Borrowed(reason))
    }

    /// `Location` of a relayed redirect (`RedirMax: 0`).
    pub fn location(&self) -> Option<&str> {
        match self {
            ServeError::Download(Failure::Status { location, .. }) => location.as_deref(),
            _ => None,
        }
    }

    /// `WWW-Authenticate` of a refusal that asks for credentials.
    pub fn challenge(&self) -> Option<&'static str> {
        match self {
            ServeError::Admin(denied) => denied.challenge(),
            _ => None,
        }
    }

    /// Internal failures are logged as errors; refusals only at debug level.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            ServeError::Storage(_)
                | ServeError::Intercept(_)
                | ServeError::Page(_)
                | ServeError::Response(_)
                | ServeError::Download(Failure::Storage(_))
                | ServeError::LocalDir(LocalDirError::Io(_) | LocalDirError::Render(_))
        )
    }
}

/// apt-cacher-ng's texts for its local file server (spec §2.7), where they
/// fit what the error means here.
fn local_dir_status(err: &LocalDirError) -> (StatusCode, &'static str) {
    match err {
        // acng's status line reads `404, File or directory not found`: the
        // comma is a slip no client depends on.
        LocalDirError::NotFound(_) => (StatusCode::NOT_FOUND, "File or directory not found"),
        LocalDirError::PermissionDenied(_) => (StatusCode::FORBIDDEN, "Permission denied"),
        // acng follows symlinks, so ELOOP could only mean a loop there:
        // `500 Infinite link recursion`. Here it means a symlink below the
        // root, which is never followed, or a path leaving the root: a
        // refusal that every such request gets, the traversal guard's 403.
        LocalDirError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden file type or location"),
        // Not acng's `500 File name too long`: the server is not at fault
        // and the client can only shorten the name, as with a cache name
        // too long (`KeyError::TooLong`).
        LocalDirError::NameTooLong(_) => (StatusCode::URI_TOO_LONG, "URI Too Long"),
        LocalDirError::Unsupported => (StatusCode::FORBIDDEN, "Unsupported data type"),
        LocalDirError::Io(_) | LocalDirError::Render(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Cache Error, check the server log",
        ),
    }
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Rejected(Reject::BadUrl(e)) => write!(f, "unusable URL: {e}"),
            ServeError::Rejected(Reject::Port(p)) => write!(f, "port {p} is not in AllowUserPorts"),
            ServeError::Rejected(Reject::Method(m)) => write!(f, "method {m} is not supported"),
            ServeError::BadKey(_) => f.write_str("not a cache path"),
            ServeError::LayoutConflict => f.write_str("conflicts with a file or directory in the cache"),
            ServeError::Download(_) => f.write_str("download failed"),
            ServeError::Upstream(e) => write!(f, "{e}"),
            ServeError::Admin(denied) => write!(f, "{denied}"),
            ServeError::Intercept(_) => f.write_str("no certificate for an intercepted host"),
            ServeError::Page(_) => f.write_str("the page cannot be rendered"),
            ServeError::Response(_) => f.write_str("the upstream answer cannot be passed on"),
            ServeError::LocalDir(e) => write!(f, "{e}"),
            other => f.write_str(&other.status().1),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Storage(e) => Some(e),
            ServeError::Intercept(e) => Some(e),
            ServeError::Page(e) => Some(e),
            ServeError::Response(e) => Some(e),
            ServeError::BadKey(e) => Some(e),
            // Transparent: its text is the upstream error's own.
            ServeError::Upstream(e) => e.source(),
            ServeError::Download(e) => Some(e),
            // Transparent, like Upstream.
            ServeError::LocalDir(e) => e.source(),
            _ => None,
        }
    }
}

/// The response for a failure: acng's status line and a page naming it.
pub fn response(err: &ServeError) -> Response<ResponseBody> {
    let (status, reason) = err.status();
    // acng's machine-readable error line (spec §8.3), which `acngtool
    // maint` prints, so that a cron job the admin gate refuses mails
    // someone why.
    let detail = match err {
        ServeError::Admin(denied) => Some(format!("Maintenance refused: {denied}")),
        _ => None,
    };
    let control = detail
        .as_deref()
        .map(|d| maintenance::control_line(maintenance::ControlType::Error, d))
        .unwrap_or_default();
    let page = ErrorPage {
        code: status.as_u16(),
        reason: &reason,
        detail: detail.as_deref(),
        control: &control,
        version: env!("CARGO_PKG_VERSION"),
    };
    // A page of literals and escaped values cannot fail to render; if it
    // did, the status line still says it all.
    let body = page.render().unwrap_or_default();
    let mut builder = Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(http::header::CONTENT_LENGTH, body.len());
    if let Some(location) = err.location() {
        builder = builder.header(http::header::LOCATION, location);
    }
    if let Some(challenge) = err.challenge() {
        builder = builder.header(http::header::WWW_AUTHENTICATE, challenge);
    }
    let mut response = builder
        .body(ResponseBody::full(body))
        .unwrap_or_else(|_| Response::new(ResponseBody::empty()));
    with_reason(&mut response, &reason);
    response
}

/// `templates/error.html`; `control` is made by `control_line`, the rest
/// is escaped.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    code: u16,
    reason: &'a str,
    detail: Option<&'a str>,
    control: &'a str,
    version: &'static str,
}

/// Sets a non-canonical reason phrase (HTTP/1): apt shows it to the user.
pub fn with_reason<B>(response: &mut Response<B>, reason: &str) {
    if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason.as_bytes()) {
        response.extensions_mut().insert(phrase);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::UrlError;

    #[test]
    fn acng_texts_for_acng_cases() {
        let table = [
            (
                ServeError::Rejected(Reject::Forbidden),
                403,
                "Forbidden file type or location",
            ),
            (
                ServeError::BadKey(KeyError::Reserved),
                403,
                "Forbidden file type or location",
            ),
            (
                ServeError::Rejected(Reject::Port(3142)),
                403,
                "Configuration error (confusing proxy mode) or prohibited port (see AllowUserPorts)",
            ),
            (
                ServeError::Rejected(Reject::BadUrl(UrlError::EmptyHost)),
                400,
                "Bad Request",
            ),
            (
                ServeError::Rejected(Reject::Method(http::Method::PUT)),
                501,
                "Not Implemented",
            ),
            (
                ServeError::ConnectDenied,
                403,
                "CONNECT denied (ask the admin to allow HTTPS tunnels)",
            ),
            (ServeError::Offline, 503, "Unable to download in offline mode"),
            (ServeError::BadKey(KeyError::TooLong), 414, "URI Too Long"),
            (ServeError::LayoutConflict, 403, "Forbidden file type or location"),
            (
                ServeError::Download(Failure::LayoutConflict),
                403,
                "Forbidden file type or location",
            ),
            (ServeError::Admin(Denied::NeedsCredentials), 401, "Not Authorized"),
            (ServeError::Admin(Denied::WrongCredentials), 401, "Not Authorized"),
            (
                ServeError::Admin(Denied::NotLocal),
                403,
                "Set AdminAuth to run maintenance from another host",
            ),
            (
                ServeError::Admin(Denied::CrossSite),
                403,
                "Cross-site request refused",
            ),
            (
                ServeError::LocalDir(LocalDirError::from(os(libc::ENOENT))),
                404,
                "File or directory not found",
            ),
            (
                ServeError::LocalDir(LocalDirError::from(os(libc::ENOTDIR))),
                404,
                "File or directory not found",
            ),
            (
                ServeError::LocalDir(LocalDirError::from(os(libc::EACCES))),
                403,
                "Permission denied",
            ),
            (
                ServeError::LocalDir(LocalDirError::from(os(libc::ELOOP))),
                403,
                "Forbidden file type or location",
            ),
            (
                ServeError::LocalDir(LocalDirError::from(os(libc::EXDEV))),
                403,
                "Forbidden file type or location",
            ),
            (
                ServeError::LocalDir(LocalDirError::from(os(libc::ENAMETOOLONG))),
                414,
                "URI Too Long",
            ),
            (
                ServeError::LocalDir(LocalDirError::Unsupported),
                403,
                "Unsupported data type",
            ),
            (
                ServeError::LocalDir(LocalDirError::from(os(libc::EIO))),
                500,
                "Cache Error, check the server log",
            ),
        ];
        for (err, code, reason) in table {
            assert_eq!(err.is_internal(), code == 500, "{err:?}");
            let r = response(&err);
            assert_eq!(r.status().as_u16(), code);
            assert_eq!(
                r.extensions()
                    .get::<hyper::ext::ReasonPhrase>()
                    .unwrap()
                    .as_bytes(),
                reason.as_bytes()
            );
        }
    }

    fn os(errno: i32) -> std::io::Error {
        std::io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn only_a_request_for_credentials_carries_the_challenge() {
        let challenge = |denied| {
            response(&ServeError::Admin(denied))
                .headers()
                .get(http::header::WWW_AUTHENTICATE)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let realm = "Basic realm=\"For login data, see AdminAuth in Apt-Cacher NG config files\"";
        assert_eq!(challenge(Denied::NeedsCredentials).as_deref(), Some(realm));
        assert_eq!(challenge(Denied::WrongCredentials).as_deref(), Some(realm));
        assert_eq!(challenge(Denied::NotLocal), None);
        assert_eq!(challenge(Denied::CrossSite), None);
        assert!(response(&ServeError::Offline)
            .headers()
            .get(http::header::WWW_AUTHENTICATE)
            .is_none());
    }

    #[test]
    fn the_log_gets_each_cause_once() {
        let disk = std::io::Error::from_raw_os_error(libc::EIO);
        let text = disk.to_string();
        let err = ServeError::Download(Failure::Storage(std::sync::Arc::new(disk)));
        assert!(err.is_internal());
        assert_eq!(
            crate::error::Chain(&err).to_string(),
            format!("download failed: cache write error: {text}")
        );
        let (status, reason) = err.status();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(reason, "Cache Error, check the server log");
    }

    #[tokio::test]
    async fn internals_stay_in_the_log() {
        use http_body_util::BodyExt;
        let err = ServeError::Storage(std::io::Error::other("disk on fire at /var/cache/x"));
        assert!(err.is_internal());
        let r = response(&err);
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let reason = r
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .unwrap()
            .as_bytes()
            .to_vec();
        assert_eq!(reason, b"Cache Error, check the server log");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("500 Cache Error, check the server log"), "{body}");
        for internal in ["/var/cache", "disk on fire"] {
            assert!(!body.contains(internal), "{internal} reached the client: {body}");
        }
    }
}
