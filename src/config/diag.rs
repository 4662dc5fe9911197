//! Configuration problems: where they are (`file:line`, a command-line word)
//! and what they are. Loading collects every problem before deciding whether
//! the daemon may start, so an administrator fixes a file in one pass.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a setting or a problem comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A line of a configuration or list file (1-based).
    Line { file: Arc<Path>, line: usize },
    /// A whole file (it could not be read, or it holds no line to point at).
    File(Arc<Path>),
    /// The n-th `KEY=VALUE` word of the command line (1-based).
    CommandLine(usize),
    /// Built in: a default or a fall-back.
    BuiltIn,
}

impl Location {
    pub fn line(file: &Arc<Path>, line: usize) -> Location {
        Location::Line {
            file: Arc::clone(file),
            line,
        }
    }
}

impl Location {
    /// Files in the order they were read (their names sort that way), lines
    /// in order, then the command line, then built-in problems.
    pub fn sort_key(&self) -> (u8, Option<&Path>, usize) {
        match self {
            Location::Line { file, line } => (0, Some(file), *line),
            Location::File(file) => (0, Some(file), 0),
            Location::CommandLine(n) => (1, None, *n),
            Location::BuiltIn => (2, None, 0),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line { file, line } => write!(f, "{}:{line}", file.display()),
            Location::File(file) => write!(f, "{}", file.display()),
            Location::CommandLine(n) => write!(f, "command line:{n}"),
            Location::BuiltIn => f.write_str("built-in"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing; changes nothing.
    Note,
    /// The configuration works, probably not as intended.
    Warning,
    /// The daemon refuses to start.
    Error,
}

/// What is wrong. Each variant renders one line; causes stay reachable
/// through `source()`.
#[derive(Debug)]
pub enum Problem {
    NotAnAssignment,
    EmptyKey,
    UnknownKey {
        key: String,
    },
    NearMiss {
        key: String,
        known: &'static str,
    },
    UnknownSecurityKey {
        key: String,
    },
    UnknownOverride {
        key: String,
    },
    AlreadySet {
        key: &'static str,
        previous: Location,
    },
    ContinuationLine,
    MissingValue {
        key: &'static str,
    },
    NotANumber {
        key: &'static str,
        value: String,
    },
    ReservedNumber {
        key: &'static str,
    },
    OutOfRange {
        key: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },
    RaisedToMinimum {
        key: &'static str,
        value: i64,
        min: i64,
    },
    BadSize {
        key: &'static str,
        value: String,
    },
    BadTime {
        key: &'static str,
        value: String,
    },
    /// The built-in schedule and apt-cacher-ng's cron job both expire.
    ExpiresTwice,
    BadRegex {
        key: String,
        source: Box<regex::Error>,
    },
    BadPort {
        key: &'static str,
        value: String,
    },
    BadUrl {
        key: String,
        value: String,
        source: crate::url::UrlError,
    },
    BadBindAddress {
        value: String,
    },
    BadLocalDir {
        entry: String,
    },
    BadCredentials,
    BadProtocol {
        value: String,
    },
    BadNetwork {
        value: String,
    },
    NotAbsolute {
        key: &'static str,
        value: String,
    },
    Deprecated {
        key: &'static str,
        note: &'static str,
    },
    NotInEffect {
        key: &'static str,
    },
    IgnoredByDesign {
        key: &'static str,
        why: &'static str,
    },
    /// `NoSSLchecks: 1`.
    NoTlsChecks,
    /// `TlsInterceptDomains` set: where the CA is, how to renew it.
    InterceptCa,
    NothingToListenOn,
    /// The location names the directory.
    NoConfigDir,
    /// The location names the directory.
    ConfigDir {
        source: std::io::Error,
    },
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    NotUtf8,
    EmptyRemapName,
    BadRemapName {
        name: String,
    },
    EmptyRemap {
        name: String,
    },
    BadRemapFlag {
        flag: String,
    },
    EmptyFileToken,
    NestedFileToken {
        token: String,
    },
    ListUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    ListTooLarge {
        path: PathBuf,
        limit: u64,
    },
    ListLine {
        text: String,
    },
    ListPathWithoutSite,
    ListSitesWithoutPath {
        count: usize,
        first: String,
    },
    ListFallback {
        token: String,
        searched: String,
    },
    ListMatchedNothing {
        token: String,
        searched: String,
    },
    UnknownHookKey {
        key: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem::*;
        match self {
            NotAnAssignment => f.write_str("not a `Key: value` or `Key=value` line"),
            EmptyKey => f.write_str("a value without a key"),
            UnknownKey { key } => write!(f, "unknown directive `{key}`, ignored"),
            NearMiss { key, known } => write!(f, "unknown directive `{key}`; did you mean `{known}`?"),
            UnknownSecurityKey { key } => {
                write!(
                    f,
                    "unknown directive `{key}` in security.conf (only AdminAuth belongs there)"
                )
            }
            UnknownOverride { key } => write!(f, "unknown directive `{key}`"),
            AlreadySet { key, previous } => {
                write!(f, "{key} was already set at {previous}; the later value wins")
            }
            ContinuationLine => {
                f.write_str("a trailing `\\` does not continue the line (there are no continuation lines)")
            }
            MissingValue { key } => write!(f, "{key} needs a value"),
            NotANumber { key, value } => write!(f, "{key}: `{value}` is not a number"),
            ReservedNumber { key } => write!(f, "{key}: -4223 is a reserved value"),
            OutOfRange { key, value, min, max } => write!(f, "{key}: {value} is outside {min}..={max}"),
            RaisedToMinimum { key, value, min } => write!(f, "{key}: {value} is too small, using {min}"),
            BadSize { key, value } => write!(
                f,
                "{key}: `{value}` is not a size (a number with an optional k, K, m, M, g or G)"
            ),
            BadTime { key, value } => write!(f, "{key}: `{value}` is not a time of day (HH:MM, UTC) or 0"),
            ExpiresTwice => write!(
                f,
                "this cron job runs acngtool, a link to debcache, so with ExpireSchedule set the cache is expired twice a day: set ExpireSchedule: 0, or remove the link"
            ),
            BadRegex { key, .. } => write!(f, "{key}: invalid regular expression"),
            BadPort { key, value } => write!(f, "{key}: `{value}` is not a port number"),
            BadUrl { key, value, .. } => write!(f, "{key}: `{value}` is not a usable http(s) URL"),
            BadBindAddress { value } => {
                write!(f, "BindAddress: `{value}` is not a host, address or host:port")
            }
            BadLocalDir { entry } => write!(f, "LocalDirs: `{entry}` is not `name /absolute/path`"),
            BadCredentials => f.write_str("AdminAuth: expected `user:password`"),
            BadProtocol { value } => write!(f, "ConnectProto: `{value}` is not v4 or v6"),
            BadNetwork { value } => write!(
                f,
                "AllowedClients: `{value}` is not an address or address/prefix (0.0.0.0/0 ::/0 allows everyone)"
            ),
            NotAbsolute { key, value } => write!(f, "{key}: `{value}` must be an absolute path"),
            Deprecated { key, note } => write!(f, "{key} is deprecated: {note}"),
            NotInEffect { key } => write!(
                f,
                "{key} is parsed but not in effect yet in this version of debcache"
            ),
            IgnoredByDesign { key, why } => write!(f, "{key} is accepted and ignored by design: {why}"),
            InterceptCa => f.write_str(
                "TlsInterceptDomains: clients must trust the CA's ca.pem (served at /debcache-ca.crt), in \
                 TlsInterceptCaDir or else CacheDir/_debcache/ca; it covers the domains it was made for only: \
                 to cover new ones, remove that directory, restart, and give clients the new certificate",
            ),
            NoTlsChecks => f.write_str(
                "NoSSLchecks is on: certificates of https mirrors are not verified, so anyone on the path can pose as a mirror",
            ),
            NothingToListenOn => f.write_str(
                "Port is 0, BindAddress gives no port and SocketPath is unset: nothing to listen on",
            ),
            NoConfigDir => f.write_str("no such configuration directory"),
            ConfigDir { .. } => f.write_str("cannot read this configuration directory"),
            Unreadable { path, .. } => write!(f, "cannot read {}", path.display()),
            NotUtf8 => f.write_str("line is not valid UTF-8"),
            EmptyRemapName => f.write_str("Remap- needs a repository name (Remap-NAME: ...)"),
            BadRemapName { name } => write!(
                f,
                "repository name {name:?} is no cache directory name \
                 (one path component, not `.` or `..`, no leading `_`, no control characters)"
            ),
            EmptyRemap { name } => write!(f, "Remap-{name} has no URLs"),
            BadRemapFlag { flag } => write!(
                f,
                "unknown remap flag `{flag}` (known: keyfile=, deltasrc=, proxy=)"
            ),
            EmptyFileToken => f.write_str("`file:` needs a file name or pattern"),
            NestedFileToken { token } => write!(
                f,
                "`{token}` inside a pattern file: file: tokens go one level deep"
            ),
            ListUnreadable { path, .. } => write!(f, "cannot read list {}, skipped", path.display()),
            ListTooLarge { path, limit } => {
                write!(f, "list {} is larger than {limit} bytes, skipped", path.display())
            }
            ListLine { text } => write!(f, "neither a URL nor a `Field: value` line: `{text}`"),
            ListPathWithoutSite => f.write_str("Archive-http without a Site in this block"),
            ListSitesWithoutPath { count, first } => {
                write!(f, "{count} site(s) without Archive-http ignored, first: {first}")
            }
            ListFallback { token, searched } => write!(
                f,
                "`{token}` matched nothing in {searched}; using the list compiled into debcache"
            ),
            ListMatchedNothing { token, searched } => write!(f, "`{token}` matched nothing in {searched}"),
            UnknownHookKey { key } => write!(
                f,
                "unknown hooks key `{key}` (known: PreUp, Down, DownTimeout), ignored"
            ),
        }
    }
}

impl std::error::Error for Problem {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Problem::BadRegex { source, .. } => Some(source.as_ref()),
            Problem::BadUrl { source, .. } => Some(source),
            Problem::ConfigDir { source, .. }
            | Problem::Unreadable { source, .. }
            | Problem::ListUnreadable { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One problem, where it is and how bad it is.
#[derive(Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Location,
    pub problem: Problem,
}

impl Diagnostic {
    pub fn error(location: Location, problem: Problem) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            location,
            problem,
        }
    }

    pub fn warning(location: Location, problem: Problem) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            location,
            problem,
        }
    }

    pub fn note(location: Location, problem: Problem) -> Diagnostic {
        Diagnostic {
            severity: Severity::Note,
            location,
            problem,
        }
    }
}

/// `file:line: error: message: cause`, one line.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{}: {level}: {}", self.location, self.problem)?;
        let mut cause = std::error::Error::source(&self.problem);
        while let Some(c) = cause {
            write!(f, ": {}", single_line(&c.to_string()))?;
            cause = c.source();
        }
        Ok(())
    }
}

/// regex errors render as several lines with a caret; a diagnostic is one line.
fn single_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Collects diagnostics during loading.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn error(&mut self, location: Location, problem: Problem) {
        self.push(Diagnostic::error(location, problem));
    }

    pub fn warning(&mut self, location: Location, problem: Problem) {
        self.push(Diagnostic::warning(location, problem));
    }

    pub fn note(&mut self, location: Location, problem: Problem) {
        self.push(Diagnostic::note(location, problem));
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}
