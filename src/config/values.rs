//! Typed directive values: each directive's text is parsed by its `Kind`
//! (spec §7.1 "Value parsing"), every problem reported with its location. A
//! value that fails keeps its default so checking can go on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use super::diag::{Diagnostics, Location, Problem};
use super::keys::{Directive, Key, Kind, DIRECTIVES};
use super::lists::{ListKind, Resolver};
use super::patterns;
use super::raw::words;
use super::store::Store;
use crate::url::{HttpUrl, Scheme, UrlError};

/// Which ports clients may name in their URLs (`AllowUserPorts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortPolicy {
    /// Unset: only port 80, as acng.
    Only80,
    Listed(BTreeSet<u16>),
    /// The list holds 0.
    Any,
}

impl PortPolicy {
    pub fn allows(&self, port: u16) -> bool {
        match self {
            PortPolicy::Only80 => port == 80,
            PortPolicy::Listed(ports) => ports.contains(&port),
            PortPolicy::Any => true,
        }
    }
}

/// One `BindAddress` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindAddress {
    pub host: BindHost,
    /// Overrides `Port` for this entry; `Some(0)` binds an ephemeral port.
    pub port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindHost {
    Ip(IpAddr),
    /// Resolved when the listener is bound.
    Name(String),
}

impl fmt::Display for BindAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, self.port) {
            (BindHost::Ip(IpAddr::V6(ip)), Some(p)) => write!(f, "[{ip}]:{p}"),
            (BindHost::Ip(ip), Some(p)) => write!(f, "{ip}:{p}"),
            (BindHost::Ip(ip), None) => write!(f, "{ip}"),
            (BindHost::Name(n), Some(p)) => write!(f, "{n}:{p}"),
            (BindHost::Name(n), None) => f.write_str(n),
        }
    }
}

/// `AdminAuth` credentials; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminAuth {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdminAuth({}:***)", self.user)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpFamily {
    V4,
    V6,
}

/// Which client `Cache-Control` directives are honoured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheControlPolicy {
    pub no_cache: bool,
    pub no_store: bool,
}

/// An address range, `address/prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<std::net::IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse().ok()?, None),
        };
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        (prefix <= bits).then_some(Network { addr, prefix })
    }

    /// Whether `ip` is in the range; an IPv4-mapped IPv6 address counts as
    /// the IPv4 one.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let mask = |bits: u32, width: u32| -> u128 {
            if bits == 0 {
                0
            } else {
                (u128::MAX << (width - bits)) & (u128::MAX >> (128 - width))
            }
        };
        match (self.addr, ip.to_canonical()) {
            (V4(net), V4(ip)) => {
                let m = mask(u32::from(self.prefix), 32);
                (u128::from(u32::from(net)) & m) == (u128::from(u32::from(ip)) & m)
            }
            (V6(net), V6(ip)) => {
                let m = mask(u32::from(self.prefix), 128);
                (u128::from(net) & m) == (u128::from(ip) & m)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A parsed directive value.
#[derive(Clone, Debug)]
pub enum Value {
    Text(String),
    Int(i64),
    Bool(bool),
    Regex(Option<Regex>),
    Regexes(Vec<Regex>),
    Ports(PortPolicy),
    Binds(Vec<BindAddress>),
    LocalDirs(BTreeMap<String, PathBuf>),
    Url(Option<HttpUrl>),
    Credentials(Option<AdminAuth>),
    Protocols(Vec<IpFamily>),
    CacheControl(CacheControlPolicy),
    Networks(Vec<Network>),
}

/// Keys whose too-small values acng raises to the minimum with a warning
/// instead of refusing them.
const RAISED_TO_MINIMUM: &[&str] = &["NetworkTimeout", "FastTimeout"];

/// Every directive's parsed value, plus its text as `--print-config` shows it.
#[derive(Clone, Debug, Default)]
pub struct Values {
    values: HashMap<&'static str, Value>,
    /// `(name, value)` in table order; secrets masked, derived defaults filled.
    pub effective: Vec<(&'static str, String)>,
}

impl Values {
    /// Parses every directive, set or default.
    pub fn check(store: &Store, resolver: &Resolver<'_>, diags: &mut Diagnostics) -> Values {
        let mut values = Values::default();
        for d in DIRECTIVES {
            let (text, location) = store.value(d);
            let value = match parse(d, text, &location, resolver, diags) {
                Some(v) => v,
                None => parse(
                    d,
                    d.default,
                    &Location::BuiltIn,
                    resolver,
                    &mut Diagnostics::default(),
                )
                .unwrap_or(Value::Text(String::new())),
            };
            values.values.insert(d.name, value);
        }
        values.derive_defaults(store);
        values.effective = DIRECTIVES
            .iter()
            .map(|d| (d.name, values.display(d, store)))
            .collect();
        values
    }

    /// Defaults that depend on other keys (spec §7.2).
    fn derive_defaults(&mut self, store: &Store) {
        let force_managed = self.bool(Key::ForceManaged);
        let fresh = self.int(Key::FreshIndexMaxAge);
        let threshold = self.int(Key::ExThreshold);
        let derived = [
            (Key::RedirMax, Value::Int(if force_managed { 0 } else { 5 })),
            (Key::ForwardBtsSoap, Value::Bool(!force_managed)),
            (Key::ResponseFreezeDetectTime, Value::Int(2 * (fresh + 3))),
            (
                Key::ExSuppressAdminNotification,
                Value::Int(i64::from(threshold >= 5)),
            ),
        ];
        for (key, value) in derived {
            if !store.is_set(key.name()) {
                self.values.insert(key.name(), value);
            }
        }
    }

    fn display(&self, d: &'static Directive, store: &Store) -> String {
        match (self.values.get(d.name), d.secret) {
            (Some(Value::Credentials(Some(_))), _) | (_, true) if store.is_set(d.name) => "********".into(),
            (Some(Value::Url(Some(url))), _) => url.masked(),
            // As written in acng.conf: `DirPerms: 0755`, not 493.
            (Some(Value::Int(n)), _) if d.kind == Kind::Octal => format!("0{n:03o}"),
            (Some(Value::Int(0)), _) if d.kind == Kind::Daily => "0".into(),
            (Some(Value::Int(n)), _) if d.kind == Kind::Daily => {
                format!("{:02}:{:02}", (n - 1) / 60, (n - 1) % 60)
            }
            (Some(Value::Int(n)), _) => n.to_string(),
            (Some(Value::Bool(b)), _) => u8::from(*b).to_string(),
            // Without its leading `/`, as acng and `requests()` read it.
            _ if d.name == Key::ReportPage.name() => store.value(d).0.trim_start_matches('/').to_string(),
            _ => store.value(d).0.to_string(),
        }
    }

    /// Every directive has a value (`check` parses them all).
    fn get(&self, key: Key) -> Option<&Value> {
        self.values.get(key.name())
    }

    pub fn text(&self, key: Key) -> &str {
        match self.get(key) {
            Some(Value::Text(t)) => t,
            _ => mismatch(key, ""),
        }
    }

    pub fn int(&self, key: Key) -> i64 {
        match self.get(key) {
            Some(Value::Int(n)) => *n,
            _ => mismatch(key, 0),
        }
    }

    /// Empty text is no path: the setting is off.
    pub fn path(&self, key: Key) -> Option<PathBuf> {
        Some(PathBuf::from(self.text(key))).filter(|p| !p.as_os_str().is_empty())
    }

    /// Whitespace-separated names (`TlsInterceptDomains`, `PrecacheFor`).
    pub fn names(&self, key: Key) -> Vec<String> {
        self.text(key).split_whitespace().map(str::to_string).collect()
    }

    /// A negative number of seconds counts as none.
    pub fn seconds(&self, key: Key) -> Duration {
        Duration::from_secs(self.int(key).max(0) as u64)
    }

    /// Clamped into `u32`: negative is 0, too large is `u32::MAX`.
    pub fn count(&self, key: Key) -> u32 {
        u32::try_from(self.int(key).max(0)).unwrap_or(u32::MAX)
    }

    pub fn bool(&self, key: Key) -> bool {
        match self.get(key) {
            Some(Value::Bool(b)) => *b,
            _ => mismatch(key, false),
        }
    }

    pub fn regex(&self, key: Key) -> Option<Regex> {
        match self.get(key) {
            Some(Value::Regex(r)) => r.clone(),
            _ => mismatch(key, None),
        }
    }

    pub fn regexes(&self, key: Key) -> Vec<Regex> {
        match self.get(key) {
            Some(Value::Regexes(r)) => r.clone(),
            _ => mismatch(key, Vec::new()),
        }
    }

    pub fn ports(&self, key: Key) -> PortPolicy {
        match self.get(key) {
            Some(Value::Ports(p)) => p.clone(),
            _ => mismatch(key, PortPolicy::Only80),
        }
    }

    pub fn binds(&self, key: Key) -> Vec<BindAddress> {
        match self.get(key) {
            Some(Value::Binds(b)) => b.clone(),
            _ => mismatch(key, Vec::new()),
        }
    }

    pub fn local_dirs(&self, key: Key) -> BTreeMap<String, PathBuf> {
        match self.get(key) {
            Some(Value::LocalDirs(m)) => m.clone(),
            _ => mismatch(key, BTreeMap::new()),
        }
    }

    pub fn url(&self, key: Key) -> Option<HttpUrl> {
        match self.get(key) {
            Some(Value::Url(u)) => u.clone(),
            _ => mismatch(key, None),
        }
    }

    pub fn credentials(&self, key: Key) -> Option<AdminAuth> {
        match self.get(key) {
            Some(Value::Credentials(c)) => c.clone(),
            _ => mismatch(key, None),
        }
    }

    pub fn protocols(&self, key: Key) -> Vec<IpFamily> {
        match self.get(key) {
            Some(Value::Protocols(p)) => p.clone(),
            _ => mismatch(key, Vec::new()),
        }
    }

    pub fn networks(&self, key: Key) -> Vec<Network> {
        match self.get(key) {
            Some(Value::Networks(n)) => n.clone(),
            _ => mismatch(key, Vec::new()),
        }
    }

    pub fn cache_control(&self, key: Key) -> CacheControlPolicy {
        match self.get(key) {
            Some(Value::CacheControl(c)) => *c,
            _ => mismatch(key, CacheControlPolicy::default()),
        }
    }
}

/// A getter used with the wrong name or type: a programming error that tests
/// catch; a release build falls back to an empty value rather than panic.
fn mismatch<T>(key: Key, fallback: T) -> T {
    debug_assert!(false, "directive {key:?} read with the wrong type");
    fallback
}

fn parse(
    d: &'static Directive,
    text: &str,
    at: &Location,
    resolver: &Resolver<'_>,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let parsed = match d.kind {
        Kind::Int { min, max } => return parse_bounded(d.name, text, min, max, at, diags).map(Value::Int),
        Kind::RegexList => {
            return Some(Value::Regexes(parse_regex_list(
                d.name, text, at, resolver, diags,
            )))
        }
        kind => parse_plain(d.name, kind, text),
    };
    parsed.map_err(|problem| diags.error(at.clone(), problem)).ok()
}

/// The kinds whose value stands alone: no list files, no warnings.
fn parse_plain(key: &'static str, kind: Kind, text: &str) -> Result<Value, Problem> {
    let not_a_number = || Problem::NotANumber {
        key,
        value: text.to_string(),
    };
    match kind {
        Kind::Text | Kind::Path => Ok(Value::Text(text.to_string())),
        Kind::AbsolutePath if !text.is_empty() && !text.starts_with('/') => Err(Problem::NotAbsolute {
            key,
            value: text.to_string(),
        }),
        Kind::AbsolutePath => Ok(Value::Text(text.to_string())),
        Kind::Bool => parse_int(key, text).map(|n| Value::Bool(n != 0)),
        Kind::Octal => match u32::from_str_radix(text, 8) {
            Ok(n) if n <= 0o7777 && !text.starts_with(['+', '-']) => Ok(Value::Int(i64::from(n))),
            _ => Err(not_a_number()),
        },
        Kind::Size => parse_size(text).map(Value::Int).ok_or_else(|| Problem::BadSize {
            key,
            value: text.to_string(),
        }),
        Kind::Daily => parse_daily(text).map(Value::Int).ok_or_else(|| Problem::BadTime {
            key,
            value: text.to_string(),
        }),
        Kind::Regex => patterns::compile(text)
            .map(Value::Regex)
            .map_err(|e| Problem::BadRegex {
                key: key.to_string(),
                source: Box::new(e),
            }),
        Kind::Ports => parse_ports(key, text).map(Value::Ports),
        Kind::BindAddresses => words(text)
            .map(|s| parse_bind(s).ok_or_else(|| Problem::BadBindAddress { value: s.to_string() }))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Binds),
        Kind::LocalDirs => parse_local_dirs(text).map(Value::LocalDirs),
        Kind::Url => parse_proxy(key, text).map(Value::Url),
        Kind::Credentials if text.is_empty() => Ok(Value::Credentials(None)),
        Kind::Credentials => match text.split_once(':') {
            Some((user, password)) => Ok(Value::Credentials(Some(AdminAuth {
                user: user.to_string(),
                password: password.to_string(),
            }))),
            None => Err(Problem::BadCredentials),
        },
        Kind::Protocols => parse_protocols(text).map(Value::Protocols),
        Kind::CacheControl => parse_cache_control(text).map(Value::CacheControl),
        Kind::Networks => words(text)
            .map(|w| Network::parse(w).ok_or_else(|| Problem::BadNetwork { value: w.to_string() }))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Networks),
        Kind::Int { .. } | Kind::RegexList => Err(not_a_number()),
    }
}

/// acng's `strtol` rules: optional sign, base-10 digits, nothing else; empty
/// is an error, and -4223 is acng's "unset" marker, refused.
pub(super) fn parse_int(key: &'static str, text: &str) -> Result<i64, Problem> {
    if text.is_empty() {
        return Err(Problem::MissingValue { key });
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::NotANumber {
            key,
            value: text.to_string(),
        });
    }
    let n = text.parse::<i64>().map_err(|_| Problem::NotANumber {
        key,
        value: text.to_string(),
    })?;
    if n == -4223 {
        return Err(Problem::ReservedNumber { key });
    }
    Ok(n)
}

fn parse_bounded(
    key: &'static str,
    text: &str,
    min: i64,
    max: i64,
    at: &Location,
    diags: &mut Diagnostics,
) -> Option<i64> {
    match parse_int(key, text) {
        Err(p) => {
            diags.error(at.clone(), p);
            None
        }
        Ok(n) if n < min && RAISED_TO_MINIMUM.contains(&key) => {
            diags.warning(at.clone(), Problem::RaisedToMinimum { key, value: n, min });
            Some(min)
        }
        Ok(n) if n < min || n > max => {
            diags.error(
                at.clone(),
                Problem::OutOfRange {
                    key,
                    value: n,
                    min,
                    max,
                },
            );
            None
        }
        Ok(n) => Some(n),
    }
}

/// `500m` is 500·10⁶ bytes, `500M` 500·2²⁰ (spec §7.1).
/// `HH:MM` (UTC) as its minute of the day plus one; `0` (never) as 0.
fn parse_daily(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    let (h, m) = text.split_once(':')?;
    let digits = |s: &str, max: i64| {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i64>().ok())
            .flatten()
            .filter(|&n| n <= max)
    };
    Some(digits(h, 23)? * 60 + digits(m, 59)? + 1)
}

pub fn parse_size(text: &str) -> Option<i64> {
    let (digits, factor) = match text.as_bytes().last()? {
        b'k' => (&text[..text.len() - 1], 1_000),
        b'K' => (&text[..text.len() - 1], 1 << 10),
        b'm' => (&text[..text.len() - 1], 1_000_000),
        b'M' => (&text[..text.len() - 1], 1 << 20),
        b'g' => (&text[..text.len() - 1], 1_000_000_000),
        b'G' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(factor)
}

fn parse_ports(key: &'static str, text: &str) -> Result<PortPolicy, Problem> {
    let mut ports = BTreeSet::new();
    for word in words(text) {
        let bad = || Problem::BadPort {
            key,
            value: word.to_string(),
        };
        if !word.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        match word.parse::<u16>().map_err(|_| bad())? {
            0 => return Ok(PortPolicy::Any),
            p => ports.insert(p),
        };
    }
    Ok(if ports.is_empty() {
        PortPolicy::Only80
    } else {
        PortPolicy::Listed(ports)
    })
}

/// `host`, `1.2.3.4`, `::1`, `host:port`, `1.2.3.4:port`, `[::1]:port`.
fn parse_bind(s: &str) -> Option<BindAddress> {
    let port = |p: &str| -> Option<u16> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    if let Some(v6) = s.strip_prefix('[') {
        let (addr, rest) = v6.split_once(']')?;
        let port = match rest {
            "" => None,
            r => Some(port(r.strip_prefix(':')?)?),
        };
        return Some(BindAddress {
            host: BindHost::Ip(addr.parse().ok()?),
            port,
        });
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(BindAddress {
            host: BindHost::Ip(ip),
            port: None,
        });
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(port(p)?)),
        None => (s, None),
    };
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => BindHost::Ip(ip),
        Err(_) => {
            let valid = !host.is_empty()
                && host.as_bytes()[0].is_ascii_alphanumeric()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid {
                return None;
            }
            BindHost::Name(host.to_string())
        }
    };
    Some(BindAddress { host, port })
}

fn parse_local_dirs(text: &str) -> Result<BTreeMap<String, PathBuf>, Problem> {
    let mut dirs = BTreeMap::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || Problem::BadLocalDir {
            entry: entry.to_string(),
        };
        let (name, path) = entry.split_once(char::is_whitespace).ok_or_else(bad)?;
        let name = name.trim_matches('/');
        let path = path.trim_matches(|c: char| c.is_whitespace() || c == '\'' || c == '"');
        if name.is_empty() || name.starts_with('_') || name.contains('/') || !path.starts_with('/') {
            return Err(bad());
        }
        dirs.insert(name.to_string(), PathBuf::from(path));
    }
    Ok(dirs)
}

fn parse_proxy(key: &'static str, text: &str) -> Result<Option<HttpUrl>, Problem> {
    if text.is_empty() {
        return Ok(None);
    }
    let bad = |source| Problem::BadUrl {
        key: key.to_string(),
        value: text.to_string(),
        source,
    };
    let url = HttpUrl::parse(text).map_err(bad)?;
    if url.scheme != Scheme::Http {
        return Err(bad(UrlError::UnsupportedScheme(url.scheme.as_str().to_string())));
    }
    Ok(Some(url))
}

fn parse_protocols(text: &str) -> Result<Vec<IpFamily>, Problem> {
    let families = text
        .split_whitespace()
        .map(|w| match w {
            "v4" => Ok(IpFamily::V4),
            "v6" => Ok(IpFamily::V6),
            other => Err(Problem::BadProtocol {
                value: other.to_string(),
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if families.len() > 2 {
        return Err(Problem::BadProtocol {
            value: text.to_string(),
        });
    }
    Ok(families)
}

fn parse_cache_control(text: &str) -> Result<CacheControlPolicy, Problem> {
    let mut policy = CacheControlPolicy::default();
    for token in words(text) {
        match token {
            "no-cache" => policy.no_cache = true,
            "no-store" => policy.no_store = true,
            other => {
                return Err(Problem::NotANumber {
                    key: "PermitCacheControl",
                    value: format!("{other} (expected no-cache and/or no-store)"),
                })
            }
        }
    }
    Ok(policy)
}

/// Space-separated regular expressions; `file:X` reads one per line from X,
/// one level deep (spec §3.1).
fn parse_regex_list(
    key: &'static str,
    text: &str,
    at: &Location,
    resolver: &Resolver<'_>,
    diags: &mut Diagnostics,
) -> Vec<Regex> {
    let mut out = Vec::new();
    let mut compile = |pattern: &str, location: &Location, diags: &mut Diagnostics| match Regex::new(pattern)
    {
        Ok(r) => out.push(r),
        Err(e) => diags.error(
            location.clone(),
            Problem::BadRegex {
                key: key.to_string(),
                source: Box::new(e),
            },
        ),
    };
    for token in text.split_whitespace() {
        match token.strip_prefix("file:") {
            None => compile(token, at, diags),
            Some(pattern) => {
                for entry in resolver.expand(pattern, ListKind::Patterns, at, diags) {
                    if entry.text.starts_with("file:") {
                        diags.error(entry.location, Problem::NestedFileToken { token: entry.text });
                    } else {
                        compile(&entry.text, &entry.location, diags);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_strtol_rules() {
        assert_eq!(parse_int("Port", "3142").unwrap(), 3142);
        assert_eq!(parse_int("Port", "-1").unwrap(), -1);
        assert_eq!(parse_int("Port", "+7").unwrap(), 7);
        for bad in ["", "12a", "0x10", "1.5", "-", " 1"] {
            assert!(parse_int("Port", bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            parse_int("Port", "-4223"),
            Err(Problem::ReservedNumber { .. })
        ));
    }

    #[test]
    fn sizes_use_decimal_lower_and_binary_upper_suffixes() {
        assert_eq!(parse_size("500m"), Some(500_000_000));
        assert_eq!(parse_size("500M"), Some(500 << 20));
        assert_eq!(parse_size("2k"), Some(2000));
        assert_eq!(parse_size("2K"), Some(2048));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("7"), Some(7));
        for bad in ["", "m", "1x", "1.5m", "-1"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn port_lists_understand_zero_as_any() {
        assert_eq!(parse_ports("AllowUserPorts", "").unwrap(), PortPolicy::Only80);
        assert_eq!(
            parse_ports("AllowUserPorts", "80 443").unwrap(),
            PortPolicy::Listed([80, 443].into())
        );
        assert_eq!(
            parse_ports("AllowUserPorts", "80 0 443").unwrap(),
            PortPolicy::Any
        );
        assert!(parse_ports("AllowUserPorts", "80 http").is_err());
        assert!(parse_ports("AllowUserPorts", "65536").is_err());
        assert!(PortPolicy::Only80.allows(80) && !PortPolicy::Only80.allows(443));
    }

    #[test]
    fn bind_addresses_take_every_form() {
        let b = |s: &str| parse_bind(s).map(|b| b.to_string());
        assert_eq!(b("127.0.0.1:0").as_deref(), Some("127.0.0.1:0"));
        assert_eq!(b("0.0.0.0").as_deref(), Some("0.0.0.0"));
        assert_eq!(b("::1").as_deref(), Some("::1"));
        assert_eq!(b("[::1]:3142").as_deref(), Some("[::1]:3142"));
        assert_eq!(b("localhost:3142").as_deref(), Some("localhost:3142"));
        assert_eq!(b("cache.lan").as_deref(), Some("cache.lan"));
        for bad in [
            "[::1",
            "[::1]x",
            "host:",
            "host:99999",
            "-host",
            "ho/st",
            "[nothex]:1",
        ] {
            assert_eq!(b(bad), None, "{bad}");
        }
    }

    #[test]
    fn local_dirs_need_a_name_and_an_absolute_path() {
        let dirs = parse_local_dirs("acng-doc /usr/share/doc/apt-cacher-ng ; /x/ '/srv/x'").unwrap();
        assert_eq!(dirs["acng-doc"], PathBuf::from("/usr/share/doc/apt-cacher-ng"));
        assert_eq!(dirs["x"], PathBuf::from("/srv/x"));
        for bad in ["lonely", "rel relative/path", "_x /y", "a/b /y"] {
            assert!(parse_local_dirs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxy_must_be_plain_http() {
        assert_eq!(parse_proxy("Proxy", "").unwrap(), None);
        let p = parse_proxy("Proxy", "http://u:p@proxy:3128").unwrap().unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy", 3128));
        assert!(parse_proxy("Proxy", "https://proxy:3128").is_err());
        assert!(parse_proxy("Proxy", "http://:3128").is_err());
    }

    #[test]
    fn protocols_and_cache_control_are_closed_vocabularies() {
        assert_eq!(parse_protocols("v6 v4").unwrap(), [IpFamily::V6, IpFamily::V4]);
        assert!(parse_protocols("v5").is_err());
        assert!(parse_protocols("v4 v6 v4").is_err());
        let cc = parse_cache_control(" no-cache, no-store").unwrap();
        assert!(cc.no_cache && cc.no_store);
        assert_eq!(parse_cache_control("").unwrap(), CacheControlPolicy::default());
        assert!(parse_cache_control("max-age").is_err());
    }
}
