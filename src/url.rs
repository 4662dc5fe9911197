//! `HttpUrl`: an `http://` or `https://` URL parsed the way apt-cacher-ng parses
//! them (spec §2.3 "URL parsing details"), shared by the configuration (remap
//! tokens, `Proxy`), request classification and the upstream client.
//!
//! Invariants of a parsed value: the host is non-empty, made of DNS-name
//! characters or an IPv6 literal (stored without brackets), never starts with
//! `_` or `.`, never contains `..`, so it is safe as a cache directory name; the
//! port is 1..=65535; the path starts with `/`.

use std::fmt;

/// The two schemes apt-cacher-ng understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// `user:password` embedded in a URL, sent upstream as Basic authentication.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:***)", self.user)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpUrl {
    pub scheme: Scheme,
    /// Host name or IP address; IPv6 literals without their brackets.
    pub host: String,
    pub port: u16,
    /// Starts with `/`; a query string, if any, is part of it.
    pub path: String,
    pub credentials: Option<Credentials>,
}

/// Why a string is not an [`HttpUrl`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlError {
    UnsupportedScheme(String),
    EmptyHost,
    BadHost(String),
    ReservedHost(String),
    BadPort(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::UnsupportedScheme(s) => write!(f, "unsupported scheme `{s}`"),
            UrlError::EmptyHost => f.write_str("no host name"),
            UrlError::BadHost(h) => write!(f, "invalid host name `{h}`"),
            UrlError::ReservedHost(h) => write!(f, "host names starting with `_` are reserved (`{h}`)"),
            UrlError::BadPort(p) => write!(f, "invalid port `{p}`"),
        }
    }
}

impl std::error::Error for UrlError {}

impl HttpUrl {
    /// Parses `[scheme://][user:pass@]host[:port][/path]`. Without a scheme the
    /// URL is `http`. Leading slashes before the host are skipped, so `/debian`
    /// is host `debian` with path `/` (the remap alias form).
    pub fn parse(input: &str) -> Result<HttpUrl, UrlError> {
        let (scheme, rest) = split_scheme(input)?;
        let rest = rest.trim_start_matches('/');
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (credentials, hostport) = match authority.rfind('@') {
            Some(at) => (Some(parse_credentials(&authority[..at])), &authority[at + 1..]),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport, scheme)?;
        validate_host(&host)?;
        let path = normalise_path(tail);
        Ok(HttpUrl {
            scheme,
            host,
            port,
            path,
            credentials,
        })
    }

    /// The `Host` header value: the port only when it is not the scheme's
    /// default (spec §13 #3 fixed), IPv6 literals in brackets.
    pub fn authority(&self) -> String {
        authority(self.scheme, &self.host, self.port)
    }

    /// The URL with any password replaced by `***`, for logs and printouts.
    pub fn masked(&self) -> String {
        self.render(true)
    }

    fn render(&self, mask: bool) -> String {
        let userinfo = match &self.credentials {
            Some(c) if mask => format!("{}:***@", encode_userinfo(&c.user)),
            Some(c) => format!("{}:{}@", encode_userinfo(&c.user), encode_userinfo(&c.password)),
            None => String::new(),
        };
        format!(
            "{}://{userinfo}{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path
        )
    }

    /// The request target sent upstream: the path re-encoded (spec §4.2),
    /// keeping `A-Z a-z 0-9 - . _ ~ / ? & =` and percent-encoding every other
    /// byte. `+` is encoded: object stores behind some mirrors read a literal
    /// `+` in a path as a space.
    pub fn encoded_path(&self) -> String {
        let mut out = String::with_capacity(self.path.len() + 16);
        for &b in self.path.as_bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/?&=".contains(&b) {
                out.push(b as char);
            } else {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
        out
    }

    /// Resolves a `Location` value against this URL (RFC 3986 §5.2): an
    /// absolute URL, a scheme-relative `//host/path`, an absolute path, or a
    /// relative one. Credentials are kept only on the same host.
    pub fn resolve(&self, reference: &str) -> Result<HttpUrl, UrlError> {
        let reference = reference.trim();
        let mut url = if strip_prefix_ignore_case(reference, "http://").is_some()
            || strip_prefix_ignore_case(reference, "https://").is_some()
        {
            HttpUrl::parse(reference)?
        } else if let Some(rest) = reference.strip_prefix("//") {
            let mut u = HttpUrl::parse(&format!("{}://{rest}", self.scheme.as_str()))?;
            u.path = remove_dot_segments(&u.path);
            u
        } else if let Some((scheme, _)) = reference
            .split_once("://")
            .filter(|(scheme, _)| !scheme.contains(['/', '?', '#']))
        {
            // Only before any `/`, `?` or `#` is it a scheme: a relative
            // `get?from=http://x` is a path with a query (RFC 3986 §4.2).
            return Err(UrlError::UnsupportedScheme(scheme.to_string()));
        } else {
            let mut u = self.clone();
            let (ref_path, ref_query) = match reference.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (reference, None),
            };
            let (base_path, base_query) = match self.path.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (self.path.as_str(), None),
            };
            let merged = if ref_path.is_empty() {
                base_path.to_string()
            } else if ref_path.starts_with('/') {
                ref_path.to_string()
            } else {
                let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
                format!("{dir}{ref_path}")
            };
            let mut path = remove_dot_segments(&merged);
            match (ref_query, ref_path.is_empty()) {
                (Some(q), _) => path = format!("{path}?{q}"),
                (None, true) => {
                    if let Some(q) = base_query {
                        path = format!("{path}?{q}");
                    }
                }
                _ => {}
            }
            u.path = path;
            return Ok(u);
        };
        if (url.host.as_str(), url.port) != (self.host.as_str(), self.port) {
            // Never hand credentials for one host to another.
        } else if url.credentials.is_none() {
            url.credentials = self.credentials.clone();
        }
        Ok(url)
    }

    /// The same URL with `rest` appended to its path (a backend base plus the
    /// part of the request below the matched prefix).
    pub fn join_path(&self, rest: &str) -> HttpUrl {
        let mut url = self.clone();
        if !url.path.ends_with('/') {
            url.path.push('/');
        }
        url.path.push_str(rest.trim_start_matches('/'));
        url
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

/// `host[:port]` as a URL writes it: the port only when it is not the
/// scheme's default, IPv6 literals in brackets.
pub fn authority(scheme: Scheme, host: &str, port: u16) -> String {
    match (host.contains(':'), port == scheme.default_port()) {
        (false, true) => host.to_string(),
        (true, true) => format!("[{host}]"),
        (_, false) => host_port(host, port),
    }
}

/// `host:port`, an IPv6 address in brackets: the authority of a CONNECT.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `s` without `prefix`, compared ASCII case-insensitively (schemes).
pub fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn split_scheme(input: &str) -> Result<(Scheme, &str), UrlError> {
    for (prefix, scheme) in [("http://", Scheme::Http), ("https://", Scheme::Https)] {
        if let Some(rest) = strip_prefix_ignore_case(input, prefix) {
            return Ok((scheme, rest));
        }
    }
    let first_slash = input.find('/').unwrap_or(input.len());
    if let Some(pos) = input[..first_slash].find("://") {
        return Err(UrlError::UnsupportedScheme(input[..pos].to_string()));
    }
    if first_slash > 0 && input[..first_slash].ends_with(':') && input[first_slash..].starts_with("//") {
        return Err(UrlError::UnsupportedScheme(input[..first_slash - 1].to_string()));
    }
    Ok((Scheme::Http, input))
}

fn parse_credentials(userinfo: &str) -> Credentials {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    Credentials {
        user: percent_decode_lossy(user),
        password: percent_decode_lossy(password),
    }
}

fn split_host_port(hostport: &str, scheme: Scheme) -> Result<(String, u16), UrlError> {
    if hostport.is_empty() {
        return Err(UrlError::EmptyHost);
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let close = v6
            .find(']')
            .ok_or_else(|| UrlError::BadHost(hostport.to_string()))?;
        let after = &v6[close + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| UrlError::BadHost(hostport.to_string()))?,
            ),
        };
        (&v6[..close], port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None => scheme.default_port(),
        Some(p) => parse_port(p).ok_or_else(|| UrlError::BadPort(p.to_string()))?,
    };
    Ok((host.to_string(), port))
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&n| n > 0)
}

fn validate_host(host: &str) -> Result<(), UrlError> {
    if host.is_empty() {
        return Err(UrlError::EmptyHost);
    }
    if host.starts_with('_') {
        return Err(UrlError::ReservedHost(host.to_string()));
    }
    let bad = || UrlError::BadHost(host.to_string());
    if host.contains(':') {
        // An IPv6 literal (brackets already removed). Only a real address:
        // the characters alone let `.::1` through, a hidden directory name.
        return host.parse::<std::net::Ipv6Addr>().map(|_| ()).map_err(|_| bad());
    }
    let ok = host.len() <= 253
        && host.as_bytes()[0].is_ascii_alphanumeric()
        && !host.contains("..")
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Collapses runs of leading slashes and makes the path absolute; `?q` alone
/// becomes `/?q` as acng does.
fn normalise_path(tail: &str) -> String {
    let trimmed = tail.trim_start_matches('/');
    let mut path = String::with_capacity(trimmed.len() + 1);
    path.push('/');
    path.push_str(trimmed);
    path
}

/// Decodes `%XX` sequences; invalid sequences stay literal, as acng keeps them.
/// Bytes that do not form UTF-8 are replaced, which only matters for
/// credentials (request paths are decoded by `request::path`).
pub fn percent_decode_lossy(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode(s.as_bytes())).into_owned()
}

/// Decodes `%XX` sequences into bytes; invalid sequences stay literal.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex_value(input[i + 1]), hex_value(input[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// A user name or password as a URL writes it (RFC 3986 §3.2.1): parsing
/// decodes them, so a `:`, `@`, `/` or `%` in one must be encoded to read
/// back the same.
fn encode_userinfo(s: &str) -> String {
    percent_encode(s.as_bytes(), |b| {
        b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
    })
}

/// `bytes` with every byte `keep` refuses written as `%XX`.
pub fn percent_encode(bytes: &[u8], keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// RFC 3986 §5.2.4: `.` and `..` segments of a merged path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    // `/.//x` merges to `//x`: collapsed as parsing does, or the URL would
    // not read back as itself.
    normalise_path(&out.join("/"))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> HttpUrl {
        HttpUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn scheme_is_optional_and_case_insensitive() {
        assert_eq!(url("deb.debian.org/debian/").scheme, Scheme::Http);
        let u = url("HTTPS://deb.debian.org/debian");
        assert_eq!(
            (u.scheme, u.port, u.path.as_str()),
            (Scheme::Https, 443, "/debian")
        );
    }

    #[test]
    fn leading_slashes_make_an_alias_host() {
        let u = url("/debian");
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("debian", 80, "/"));
        assert_eq!(url("//host//x").path, "/x");
    }

    #[test]
    fn port_and_credentials_are_split_off() {
        let u = url("http://me:s%3Acret@proxy.lan:3128/");
        assert_eq!(u.port, 3128);
        let c = u.credentials.clone().unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("me", "s:cret"));
        assert_eq!(u.masked(), "http://me:***@proxy.lan:3128/");
        assert_eq!(u.authority(), "proxy.lan:3128");
    }

    #[test]
    fn credentials_with_url_delimiters_print_in_a_form_that_reads_back() {
        // Found by fuzzing: `a%40b:c%2Fd@h` printed as `a@b:c/d@h`, which
        // reads back as host `b`, port `c`.
        for text in [
            "http://a%40b:c%2Fd@h/",
            "http://u%3Ax:p%40ss@proxy.lan:3128/",
            "http://%25:%3F%23@h/",
        ] {
            let u = url(text);
            assert_eq!(u.to_string(), text);
            assert_eq!(url(&u.to_string()), u);
        }
        let u = url("http://a%3Ab:secret@h/");
        assert_eq!(u.masked(), "http://a%3Ab:***@h/");
        assert_eq!(url("http://caf%C3%A9:p@h/").to_string(), "http://caf%C3%A9:p@h/");
    }

    #[test]
    fn ipv6_literals_lose_their_brackets() {
        let u = url("http://[::1]:8080/x");
        assert_eq!((u.host.as_str(), u.port), ("::1", 8080));
        assert_eq!(u.authority(), "[::1]:8080");
    }

    #[test]
    fn ipv6_literal_that_is_no_address_is_refused() {
        // Found by fuzzing: `[.::1]` passed the character check and became
        // the cache directory `.::1`.
        for bad in [
            "http://[.::1]/",
            "http://[..:1]/",
            "http://[::1::2]/",
            "http://[12345::1]/",
            "http://[:]/",
        ] {
            assert!(matches!(HttpUrl::parse(bad), Err(UrlError::BadHost(_))), "{bad}");
        }
        for good in [
            "http://[2001:db8::1]/",
            "http://[::ffff:192.0.2.1]:8080/",
            "http://[::]/",
        ] {
            assert!(HttpUrl::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn query_without_path_becomes_root_query() {
        assert_eq!(url("host?x=1").path, "/?x=1");
    }

    #[test]
    fn rejects_what_acng_rejects() {
        for bad in [
            "ftp://x/",
            "http://:80/",
            "http://host:/",
            "http://host:65536/",
            "http://host:0/",
            "http://_reserved/",
            "http://../etc",
            "http://a..b/",
            "http://[::1/",
            "http://[1:::2]/",
            "http://ho st/",
            "",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn join_path_appends_below_the_base() {
        let base = url("http://ftp.debian.org/debian/");
        assert_eq!(base.join_path("pool/x.deb").path, "/debian/pool/x.deb");
        assert_eq!(url("http://h/debian").join_path("/dists").path, "/debian/dists");
    }

    #[test]
    fn paths_are_re_encoded_for_upstream() {
        let mut u = url("http://h/pool/main/g/gcc/");
        u.path = "/pool/g++_1:2.0~rc1 a%b.deb".into();
        assert_eq!(u.encoded_path(), "/pool/g%2B%2B_1%3A2.0~rc1%20a%25b.deb");
        u.path = "/caf\u{e9}.deb?x=1&y=2".into();
        assert_eq!(u.encoded_path(), "/caf%C3%A9.deb?x=1&y=2");
    }

    #[test]
    fn redirects_resolve_per_rfc_3986() {
        let base = url("http://u:p@mirror.example:8080/debian/pool/main/a.deb");
        let r = |loc: &str| base.resolve(loc).map(|u| u.to_string());
        assert_eq!(
            r("http://other.example/x.deb").unwrap(),
            "http://other.example/x.deb"
        );
        assert_eq!(r("//cdn.example/y/z.deb").unwrap(), "http://cdn.example/y/z.deb");
        assert_eq!(
            r("/mirror/a.deb").unwrap(),
            "http://u:p@mirror.example:8080/mirror/a.deb"
        );
        assert_eq!(
            r("b.deb").unwrap(),
            "http://u:p@mirror.example:8080/debian/pool/main/b.deb"
        );
        assert_eq!(
            r("../../x/c.deb").unwrap(),
            "http://u:p@mirror.example:8080/debian/x/c.deb"
        );
        assert_eq!(
            r("../../../../../../c.deb").unwrap(),
            "http://u:p@mirror.example:8080/c.deb"
        );
        assert_eq!(
            r("./d.deb?v=1").unwrap(),
            "http://u:p@mirror.example:8080/debian/pool/main/d.deb?v=1"
        );
        assert_eq!(
            r("HTTPS://secure.example/e.deb").unwrap(),
            "https://secure.example/e.deb"
        );
        assert!(r("ftp://x/y").is_err());
        assert!(base
            .resolve("http://other.example/")
            .unwrap()
            .credentials
            .is_none());
    }

    #[test]
    fn relative_redirect_with_a_url_in_its_query_resolves() {
        // It was refused as an unsupported scheme `get.cgi?from=http`.
        let base = url("http://mirror.example/debian/pool/a.deb");
        let r = base.resolve("get.cgi?from=http://x/y").unwrap();
        assert_eq!(
            r.to_string(),
            "http://mirror.example/debian/pool/get.cgi?from=http://x/y"
        );
        assert!(matches!(base.resolve("ftp://x/y"), Err(UrlError::UnsupportedScheme(s)) if s == "ftp"));
    }

    #[test]
    fn redirect_path_starting_with_two_slashes_reads_back() {
        // Found by fuzzing: `.//.q/b/../c` against `http://http/` resolved to
        // path `//.q/c`, printed as `http://http//.q/c`, read back as `/.q/c`.
        let base = url("http://http/");
        for (location, path) in [(".//.q/b/../c", "/.q/c"), ("/.//x", "/x"), ("//h2/.//y", "/y")] {
            let r = base.resolve(location).unwrap();
            assert_eq!(r.path, path, "{location}");
            assert_eq!(url(&r.to_string()), r, "{location}");
        }
    }

    #[test]
    fn percent_decoding_keeps_invalid_sequences() {
        assert_eq!(percent_decode(b"a%2fb%zz%4"), b"a/b%zz%4");
        assert_eq!(percent_decode(b"%2e%2E"), b"..");
    }
}
