//! Request heads: found in the bytes a connection has read, checked against
//! RFC 9112's framing rules and our limits, and turned into an
//! `http::Request<()>` with what the connection needs to know about it (how
//! its body is framed, whether the client wants to keep the connection).
//! Pure: no I/O, so every rule is a unit test.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};

/// Largest request head: a larger one is 431.
pub const MAX_HEAD: usize = 64 * 1024;
/// Longest request target: a longer one is 414.
pub const MAX_TARGET: usize = 16 * 1024;
/// Most header fields in a request: more is 431.
const MAX_FIELDS: usize = 100;

/// A request head and its framing.
#[derive(Debug)]
pub struct Head {
    pub request: Request<()>,
    pub body: BodyLength,
    /// The client's wish: HTTP/1.1 without `Connection: close`, or HTTP/1.0
    /// with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the body may not come before an answer.
    pub expect_continue: bool,
}

/// How the request's body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLength {
    None,
    Bytes(u64),
    Chunked,
}

/// Why a head cannot be served; each is answered with its status and the
/// connection is closed (what follows it cannot be framed).
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    Malformed(&'static str),
    TooLarge,
    TargetTooLong,
    Version,
    /// A transfer coding other than `chunked` (RFC 9112 §6.1: 501).
    UnknownCoding,
}

impl HeadError {
    pub fn status(&self) -> StatusCode {
        match self {
            HeadError::Malformed(_) => StatusCode::BAD_REQUEST,
            HeadError::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            HeadError::TargetTooLong => StatusCode::URI_TOO_LONG,
            HeadError::Version => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            HeadError::UnknownCoding => StatusCode::NOT_IMPLEMENTED,
        }
    }
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Malformed(why) => write!(f, "malformed request: {why}"),
            HeadError::TooLarge => write!(
                f,
                "request head larger than {MAX_HEAD} bytes or {MAX_FIELDS} fields"
            ),
            HeadError::TargetTooLong => write!(f, "request target longer than {MAX_TARGET} bytes"),
            HeadError::Version => f.write_str("HTTP version not supported"),
            HeadError::UnknownCoding => f.write_str("request body with an unsupported transfer coding"),
        }
    }
}

impl std::error::Error for HeadError {}

/// The head at the start of `buf` and its length in bytes, `None` while it
/// is incomplete (read more), or why it cannot be served.
pub fn parse(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    let skipped = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    let bytes = &buf[skipped..];
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            let line_end = memchr::memchr(b'\n', bytes);
            if line_end.is_none() && bytes.len() > MAX_TARGET + 32 {
                return Err(HeadError::TargetTooLong);
            }
            if bytes.len() > MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(httparse::Error::Version) => return Err(version_error(bytes)),
        Err(e) => return Err(HeadError::Malformed(parse_error(e))),
    };
    let target = req.path.unwrap_or_default();
    if target.len() > MAX_TARGET {
        return Err(HeadError::TargetTooLong);
    }
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| HeadError::Malformed("invalid method"))?;
    let uri = Uri::try_from(target).map_err(|_| HeadError::Malformed("invalid request target"))?;
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for field in req.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| HeadError::Malformed("invalid header name"))?;
        let value =
            HeaderValue::from_bytes(field.value).map_err(|_| HeadError::Malformed("invalid header value"))?;
        headers.append(name, value);
    }
    let body = body_length(&headers, version)?;
    let keep_alive = match version {
        Version::HTTP_10 => has_token(&headers, header::CONNECTION, "keep-alive"),
        _ => !has_token(&headers, header::CONNECTION, "close"),
    };
    let expect_continue = has_token(&headers, header::EXPECT, "100-continue");
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Some((
        Head {
            request,
            body,
            keep_alive,
            expect_continue,
        },
        skipped + len,
    )))
}

/// `HTTP/2.0` and the like are 505; a version that is not one at all is a
/// malformed request.
fn version_error(bytes: &[u8]) -> HeadError {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    let version = version.strip_suffix(b"\r").unwrap_or(version);
    match version.strip_prefix(b"HTTP/") {
        Some([major, b'.', minor]) if major.is_ascii_digit() && minor.is_ascii_digit() => HeadError::Version,
        _ => HeadError::Malformed("invalid HTTP version"),
    }
}

fn parse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid method or target",
        _ => "invalid request line",
    }
}

/// RFC 9112 §6.3: `Transfer-Encoding` wins, but with a `Content-Length` too
/// the request is refused (a smuggling attempt or a broken client), as is
/// one whose length cannot be known.
fn body_length(headers: &HeaderMap, version: Version) -> Result<BodyLength, HeadError> {
    let mut codings = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty())
        .peekable();
    if codings.peek().is_some() {
        if version == Version::HTTP_10 {
            return Err(HeadError::Malformed("transfer coding in an HTTP/1.0 request"));
        }
        if headers.contains_key(header::CONTENT_LENGTH) {
            return Err(HeadError::Malformed("both Transfer-Encoding and Content-Length"));
        }
        let codings: Vec<&[u8]> = codings.collect();
        return match codings.as_slice() {
            [last] if last.eq_ignore_ascii_case(b"chunked") => Ok(BodyLength::Chunked),
            [.., last] if last.eq_ignore_ascii_case(b"chunked") => Err(HeadError::UnknownCoding),
            _ => Err(HeadError::Malformed("chunked is not the final transfer coding")),
        };
    }
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(HeadError::Malformed("invalid Content-Length"));
            }
            let n: u64 = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(HeadError::Malformed("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::Malformed("differing Content-Length values"));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        None | Some(0) => BodyLength::None,
        Some(n) => BodyLength::Bytes(n),
    })
}

/// Whether a comma-separated header lists `token` (case-blind).
pub fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_head(text: &str) -> Result<Option<(Head, usize)>, HeadError> {
        parse(text.as_bytes())
    }

    fn whole(text: &str) -> Head {
        let (head, len) = try_head(text).unwrap().unwrap();
        assert_eq!(len, text.len());
        head
    }

    #[test]
    fn a_head_is_complete_at_its_empty_line() {
        let text = "GET http://deb.debian.org/debian/x.deb HTTP/1.1\r\nHost: cache\r\n\r\nGET /next";
        let (head, len) = try_head(text).unwrap().unwrap();
        assert_eq!(&text[len..], "GET /next");
        assert_eq!(head.request.method(), Method::GET);
        assert_eq!(head.request.uri().host(), Some("deb.debian.org"));
        assert_eq!(head.request.headers()["host"], "cache");
        assert!(head.keep_alive && !head.expect_continue);
        assert_eq!(head.body, BodyLength::None);
        assert!(try_head("GET /x HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
        // Blank lines before a request are skipped, bare LF is taken.
        let (_, len) = try_head("\r\n\r\nGET /x HTTP/1.1\nHost: a\n\n").unwrap().unwrap();
        assert_eq!(len, 4 + 25);
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        assert!(!whole("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").keep_alive);
        assert!(!whole("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(whole("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(whole("GET / HTTP/1.1\r\nConnection: te, keep-alive\r\n\r\n").keep_alive);
        assert!(
            whole("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n").expect_continue
        );
    }

    #[test]
    fn body_lengths_follow_rfc_9112() {
        let len = |h: &str| try_head(&format!("POST / HTTP/1.1\r\n{h}\r\n\r\n")).map(|h| h.unwrap().0.body);
        assert_eq!(len("Content-Length: 5"), Ok(BodyLength::Bytes(5)));
        assert_eq!(len("Content-Length: 5, 5"), Ok(BodyLength::Bytes(5)));
        assert_eq!(len("Content-Length: 0"), Ok(BodyLength::None));
        assert_eq!(len("Transfer-Encoding: chunked"), Ok(BodyLength::Chunked));
        assert_eq!(
            len("Transfer-Encoding: gzip, chunked"),
            Err(HeadError::UnknownCoding)
        );
        for bad in [
            "Content-Length: 5\r\nContent-Length: 6",
            "Content-Length: +5",
            "Content-Length: five",
            "Content-Length: 99999999999999999999999",
            "Transfer-Encoding: chunked\r\nContent-Length: 5",
            "Transfer-Encoding: gzip",
        ] {
            assert!(matches!(len(bad), Err(HeadError::Malformed(_))), "{bad}");
        }
        assert!(matches!(
            try_head("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_heads_are_400() {
        for bad in [
            "GARBAGE\r\n\r\n",
            "GET\r\n\r\n",
            "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
            "GET / HTTX/1.1\r\n\r\n",
            "G\x01T / HTTP/1.1\r\n\r\n",
        ] {
            let error = try_head(bad).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{bad:?}: {error}");
        }
    }

    #[test]
    fn other_versions_are_505() {
        for line in [
            "GET / HTTP/2.0\r\n\r\n",
            "GET / HTTP/3.0\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            assert_eq!(try_head(line).unwrap_err(), HeadError::Version, "{line:?}");
        }
    }

    #[test]
    fn limits_are_431_and_414() {
        let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET));
        assert_eq!(try_head(&long_target).unwrap_err(), HeadError::TargetTooLong);
        // Still arriving, and already too long.
        let arriving = format!("GET /{}", "a".repeat(MAX_TARGET + 100));
        assert_eq!(try_head(&arriving).unwrap_err(), HeadError::TargetTooLong);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "v".repeat(MAX_HEAD));
        assert_eq!(try_head(&big).unwrap_err(), HeadError::TooLarge);
        let many: String = (0..=MAX_FIELDS).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            try_head(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap_err(),
            HeadError::TooLarge
        );
        let fine: String = (0..MAX_FIELDS).map(|i| format!("X-{i}: v\r\n")).collect();
        assert!(try_head(&format!("GET / HTTP/1.1\r\n{fine}\r\n"))
            .unwrap()
            .is_some());
    }

    proptest::proptest! {
        /// Any bytes: an answer, never a panic; a head found lies within
        /// them, and so do the limits.
        #[test]
        fn any_bytes_get_an_answer(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
                                   prefix in "(GET|HEAD|POST|CONNECT) [ -~]{0,40} HTTP/1\\.[01]\r\n([A-Za-z-]{1,12}: [ -~]{0,20}\r\n){0,4}") {
            for input in [bytes.clone(), [prefix.as_bytes(), &bytes].concat(), [prefix.as_bytes(), b"\r\n"].concat()] {
                match parse(&input) {
                    Ok(Some((head, len))) => {
                        proptest::prop_assert!(len <= input.len() && len <= MAX_HEAD + 64);
                        proptest::prop_assert!(head.request.uri().to_string().len() <= MAX_TARGET + 8);
                    }
                    Ok(None) => proptest::prop_assert!(input.len() <= MAX_HEAD),
                    Err(e) => proptest::prop_assert!(e.status().is_client_error() || e.status().is_server_error()),
                }
            }
        }
    }

    #[test]
    fn connect_targets_are_authorities() {
        let h = whole("CONNECT deb.debian.org:443 HTTP/1.1\r\n\r\n");
        assert_eq!(
            h.request.uri().authority().unwrap().as_str(),
            "deb.debian.org:443"
        );
    }
}
