//! The table of directives: every key apt-cacher-ng 3.7.4 knows (spec §7.2),
//! plus debcache's own, with its value type, its default when a configuration
//! directory is used (acng's built-in default, except `SocketPath` and
//! `ReportPage`, see ARCHITECTURE.md "Decisions") and whether debcache acts on
//! it. `conf/acng.conf` documents each of them for administrators.

use super::diag::Problem;

/// The value syntax of a directive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Any text; empty means unset where that makes sense.
    Text,
    /// A file-system path; empty means unset.
    Path,
    /// A path that must be absolute when set.
    AbsolutePath,
    /// A base-10 integer within bounds (acng's `strtol` rules).
    Int { min: i64, max: i64 },
    /// An integer read as a truth value (0 is false).
    Bool,
    /// An octal permission mask.
    Octal,
    /// A byte count with an optional k/K/m/M/g/G suffix.
    Size,
    /// A time of day, `HH:MM` in UTC, or `0` for never.
    Daily,
    /// One POSIX extended regular expression; empty means none.
    Regex,
    /// Space-separated regular expressions and `file:` tokens.
    RegexList,
    /// Space-separated port numbers, accumulated over lines; 0 means any.
    Ports,
    /// Space-separated `host`, `address`, `host:port` or `[v6]:port`.
    BindAddresses,
    /// `name /path ; name2 /path2`, accumulated over lines.
    LocalDirs,
    /// An `http://[user:pass@]host:port` URL; empty means none.
    Url,
    /// `user:password`.
    Credentials,
    /// `v4`, `v6`, `v6 v4` or `v4 v6`.
    Protocols,
    /// Cache-Control tokens a client may use.
    CacheControl,
    /// Space-separated networks, `address/prefix` or a bare address.
    Networks,
}

impl Kind {
    /// Repeated assignments add to the value instead of replacing it.
    pub fn accumulates(self) -> bool {
        matches!(self, Kind::Ports | Kind::LocalDirs)
    }
}

/// What debcache does with a directive (ARCHITECTURE.md "Decisions": the three
/// kinds reported once at start-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    InEffect,
    /// Parsed and validated; the feature that uses it has not landed yet.
    NotYetInEffect,
    /// Accepted for compatibility; debcache does not need it, and says why.
    Ignored(&'static str),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Directive {
    /// Canonical spelling, as `acngtool cfgdump` prints it.
    pub name: &'static str,
    pub kind: Kind,
    /// Default with a configuration directory, as text. Keys whose default is
    /// derived from other keys (`RedirMax`, `ForwardBtsSoap`, ...) hold the
    /// plain default here and are finished by the builder.
    pub default: &'static str,
    pub status: Status,
    /// Never printed (`AdminAuth`).
    pub secret: bool,
    /// debcache's own: apt-cacher-ng refuses to start on it.
    pub own: bool,
}

const fn d(name: &'static str, kind: Kind, default: &'static str, status: Status) -> Directive {
    Directive {
        name,
        kind,
        default,
        status,
        secret: false,
        own: false,
    }
}

/// One of debcache's own directives.
const fn own(name: &'static str, kind: Kind, default: &'static str) -> Directive {
    Directive {
        own: true,
        ..d(name, kind, default, Status::InEffect)
    }
}

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

const I32: i64 = i32::MAX as i64;

use Kind::*;
use Status::*;

const NO_POOL: Status = Ignored("there is no thread pool: each connection is a task");
const RESOLVER: Status = Ignored("names are resolved by the system resolver");
const NO_EFFECT: Status = Ignored("it has no effect in apt-cacher-ng 3.7.4 either");
const CONDITIONAL: Status =
    Ignored("volatile files are revalidated with conditional requests and never resumed");

/// Declares [`DIRECTIVES`] and, in the same order, one [`Key`] per entry.
macro_rules! directives {
    ($($key:ident => $directive:expr,)*) => {
        /// A directive of the table, for reading its value: the variant is
        /// the directive's canonical name, its index the table position.
        // Keys of directives not in effect, or ignored, are never read.
        #[allow(dead_code)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Key {
            $($key,)*
        }

        impl Key {
            #[cfg(test)]
            pub const ALL: &[Key] = &[$(Key::$key,)*];
        }

        pub static DIRECTIVES: &[Directive] = &[$($directive,)*];
    };
}

impl Key {
    pub fn directive(self) -> &'static Directive {
        &DIRECTIVES[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.directive().name
    }
}

// Every directive, in the order `--print-config` prints them, each with
// its `Key`: code reads values by key, so a wrong name does not compile.
directives! {
    CacheDir => d("CacheDir", AbsolutePath, "/var/cache/apt-cacher-ng", InEffect),
    LogDir => d("LogDir", Path, "/var/log/apt-cacher-ng", InEffect),
    SupportDir => d("SupportDir", Path, "/usr/lib/apt-cacher-ng", InEffect),
    SocketPath => d("SocketPath", Path, "", InEffect),
    PidFile => d("PidFile", AbsolutePath, "", InEffect),
    ReportPage => d("ReportPage", Text, "acng-report.html", InEffect),
    Port => d("Port", int(0, 65535), "3142", InEffect),
    BindAddress => d("BindAddress", BindAddresses, "", InEffect),
    AllowUserPorts => d("AllowUserPorts", Ports, "", InEffect),
    ForceManaged => d("ForceManaged", Bool, "0", InEffect),
    OfflineMode => d("OfflineMode", Bool, "0", InEffect),
    ForwardBtsSoap => d("ForwardBtsSoap", Bool, "1", InEffect),
    PassThroughPattern => d(
        "PassThroughPattern",
        Regex,
        r"^(bugs\.debian\.org|changelogs\.ubuntu\.com):443$",
        InEffect,
    ),
    LocalDirs => d("LocalDirs", LocalDirs, "", InEffect),
    VfilePattern => d("VfilePattern", Regex, super::patterns::VFILE_DEFAULT, InEffect),
    PfilePattern => d("PfilePattern", Regex, super::patterns::PFILE_DEFAULT, InEffect),
    SPfilePattern => d("SPfilePattern", Regex, "", InEffect),
    SVfilePattern => d("SVfilePattern", Regex, super::patterns::SVFILE_DEFAULT, InEffect),
    WfilePattern => d(
        "WfilePattern",
        Regex,
        super::patterns::WFILE_DEFAULT,
        InEffect,
    ),
    VfilePatternEx => d("VfilePatternEx", Regex, "", InEffect),
    PfilePatternEx => d("PfilePatternEx", Regex, "", InEffect),
    SPfilePatternEx => d("SPfilePatternEx", Regex, "", InEffect),
    SVfilePatternEx => d("SVfilePatternEx", Regex, "", InEffect),
    WfilePatternEx => d("WfilePatternEx", Regex, "", InEffect),
    DontCache => d("DontCache", RegexList, "", InEffect),
    DontCacheRequested => d("DontCacheRequested", RegexList, "", InEffect),
    DontCacheResolved => d("DontCacheResolved", RegexList, "", InEffect),
    PermitCacheControl => d("PermitCacheControl", CacheControl, "no-cache no-store", InEffect),
    Proxy => d("Proxy", Url, "", InEffect),
    OptProxyTimeout => d("OptProxyTimeout", int(-1, I32), "-1", InEffect),
    OptProxyCheckCommand => d("OptProxyCheckCommand", Text, "", InEffect),
    OptProxyCheckInterval => d("OptProxyCheckInterval", int(-1, I32), "99", InEffect),
    NetworkTimeout => d("NetworkTimeout", int(5, 86400), "17", InEffect),
    FastTimeout => d("FastTimeout", int(2, 86400), "4", InEffect),
    DisconnectTimeout => d("DisconnectTimeout", int(0, 86400), "15", NotYetInEffect),
    DlMaxRetries => d("DlMaxRetries", int(0, 1000), "2", InEffect),
    RedirMax => d("RedirMax", int(0, 100), "5", InEffect),
    ReuseConnections => d("ReuseConnections", Bool, "1", InEffect),
    PipelineDepth => d(
        "PipelineDepth",
        int(0, 1000),
        "10",
        Ignored("upstream requests are not pipelined; connections are pooled instead"),
    ),
    ConnectProto => d("ConnectProto", Protocols, "", InEffect),
    DnsCacheSeconds => d("DnsCacheSeconds", int(-1, I32), "1800", RESOLVER),
    UserAgent => d(
        "UserAgent",
        Text,
        concat!("Debcache/", env!("CARGO_PKG_VERSION")),
        InEffect,
    ),
    RequestAppendix => d("RequestAppendix", Text, "", InEffect),
    ExposeOrigin => d("ExposeOrigin", Bool, "0", InEffect),
    LogSubmittedOrigin => d("LogSubmittedOrigin", Bool, "0", NotYetInEffect),
    BadRedirDetectMime => d("BadRedirDetectMime", Text, "text/html", InEffect),
    FreshIndexMaxAge => d("FreshIndexMaxAge", int(0, I32), "27", InEffect),
    VfileUseRangeOps => d("VfileUseRangeOps", int(-1000, 1000), "1", CONDITIONAL),
    ResponseFreezeDetectTime => d(
        "ResponseFreezeDetectTime",
        int(0, I32),
        "60",
        Ignored("a download that stalls for NetworkTimeout fails and the next request starts a new one"),
    ),
    MaxDlSpeed => d("MaxDlSpeed", int(-1, I32), "-1", NotYetInEffect),
    ReserveSpace => d(
        "ReserveSpace",
        int(0, I32),
        "1048576",
        Ignored("debcache reserves the announced length of each download when it starts"),
    ),
    CApath => d("CApath", Path, "/etc/ssl/certs", InEffect),
    CAfile => d("CAfile", Path, "", InEffect),
    NoSSLchecks => d("NoSSLchecks", Bool, "0", InEffect),
    DirPerms => d("DirPerms", Octal, "755", InEffect),
    FilePerms => d("FilePerms", Octal, "664", InEffect),
    StupidFs => d("StupidFs", Bool, "0", NotYetInEffect),
    VerboseLog => d("VerboseLog", Bool, "1", InEffect),
    UnbufferLogs => d("UnbufferLogs", Bool, "0", InEffect),
    Debug => d(
        "Debug",
        int(i64::MIN, i64::MAX),
        "0",
        Ignored("debcache logs through tracing; set RUST_LOG=debug for more"),
    ),
    MaxConThreads => d("MaxConThreads", int(-1, I32), "-1", InEffect),
    MaxStandbyConThreads => d("MaxStandbyConThreads", int(-1, I32), "8", NO_POOL),
    MaxInresponsiveDlSize => d("MaxInresponsiveDlSize", int(0, I32), "65536", NO_EFFECT),
    ExThreshold => d("ExThreshold", int(0, I32), "20", InEffect),
    ExAbortOnProblems => d("ExAbortOnProblems", Bool, "1", InEffect),
    ExSuppressAdminNotification => d("ExSuppressAdminNotification", int(0, I32), "1", InEffect),
    ExStartTradeOff => d("ExStartTradeOff", Size, "500000000", InEffect),
    FollowIndexFileRemoval => d("FollowIndexFileRemoval", Bool, "1", InEffect),
    KeepExtraVersions => d("KeepExtraVersions", int(0, I32), "0", InEffect),
    PrecacheFor => d("PrecacheFor", Text, "", InEffect),
    TrackFileUse => d("TrackFileUse", Bool, "0", NotYetInEffect),
    Patrace => d("Patrace", Bool, "0", InEffect),
    RecompBz2 => d("RecompBz2", Bool, "0", NO_EFFECT),
    MinUpdateInterval => d("MinUpdateInterval", int(0, I32), "0", NO_EFFECT),
    ForeGround => d(
        "ForeGround",
        Bool,
        "0",
        Ignored("debcache never forks into the background; systemd supervises it"),
    ),
    UseWrap => d(
        "UseWrap",
        Bool,
        "0",
        Ignored("libwrap (hosts.allow) is obsolete; AllowedClients says who may connect"),
    ),
    BusAction => d(
        "BusAction",
        Text,
        "",
        Ignored("debcache maps no files, so there is no SIGBUS to act on"),
    ),
    EvDnsResolvConf => d("EvDnsResolvConf", Path, "/etc/resolv.conf", RESOLVER),
    EvDnsOpts => d("EvDnsOpts", int(i64::MIN, i64::MAX), "0", RESOLVER),
    AdminAuth => Directive {
        secret: true,
        ..d("AdminAuth", Credentials, "", InEffect)
    },
    DrainTimeout => own("DrainTimeout", int(0, 30), "15"),
    HookTimeout => own("HookTimeout", int(1, 3600), "30"),
    CacheSizeLimit => own("CacheSizeLimit", Size, "0"),
    ExpireSchedule => own("ExpireSchedule", Daily, "03:40"),
    PrecacheDownloads => own("PrecacheDownloads", int(1, 64), "4"),
    VerifyDownloads => own("VerifyDownloads", Bool, "1"),
    AllowedClients => own("AllowedClients", Networks, DEFAULT_CLIENTS),
    TlsInterceptDomains => own("TlsInterceptDomains", Text, ""),
    TlsInterceptCaDir => own("TlsInterceptCaDir", Path, ""),
    ProxyIsCache => own("ProxyIsCache", Bool, "0"),
}

/// Loopback and the private ranges (RFC 1918, RFC 4193): a cache exposed
/// to the Internet must not become an open proxy by default.
pub const DEFAULT_CLIENTS: &str = "127.0.0.0/8 ::1 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 fc00::/7";

/// Other spellings acng accepts for a directive.
static ALIASES: &[(&str, &str)] = &[
    ("ExTreshold", "ExThreshold"),
    ("MaxSpareThreadSets", "MaxStandbyConThreads"),
];

/// Directives acng accepts and throws away.
static DEPRECATED: &[(&str, &str)] = &[
    ("Verbose", "the value is ignored"),
    ("OldIndexUpdater", "the value is ignored"),
];

/// What a configuration key names.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Directive(&'static Directive),
    /// A deprecated spelling of a directive.
    Alias(&'static Directive, &'static str),
    /// `Remap-NAME`, with NAME as written.
    Remap(String),
    Deprecated(&'static str, &'static str),
    /// Unknown, with the known directive it is probably a typo of.
    Unknown(Option<&'static str>),
}

/// Looks a key up case-insensitively, as acng does.
pub fn lookup(key: &str) -> Lookup {
    // `get`: the sixth byte may fall inside a character (`Remapé`).
    if key.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("remap-")) {
        return Lookup::Remap(key[6..].to_string());
    }
    if let Some(dir) = directive(key) {
        return Lookup::Directive(dir);
    }
    if let Some((alias, target)) = ALIASES.iter().find(|(a, _)| a.eq_ignore_ascii_case(key)) {
        if let Some(dir) = directive(target) {
            return Lookup::Alias(dir, alias);
        }
    }
    if let Some((name, note)) = DEPRECATED.iter().find(|(n, _)| n.eq_ignore_ascii_case(key)) {
        return Lookup::Deprecated(name, note);
    }
    Lookup::Unknown(near_miss(key))
}

/// The directive of this name (canonical or any case), if any.
pub fn directive(name: &str) -> Option<&'static Directive> {
    DIRECTIVES.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// A known name within edit distance 2: most likely a typo, which the
/// Decisions table makes an error instead of a warning.
fn near_miss(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    let names = DIRECTIVES
        .iter()
        .map(|d| d.name)
        .chain(ALIASES.iter().map(|(a, _)| *a))
        .chain(DEPRECATED.iter().map(|(n, _)| *n))
        .chain(std::iter::once("Remap-"));
    names
        .map(|n| (edit_distance(&key, &n.to_ascii_lowercase()), n))
        .filter(|(dist, _)| *dist <= 2)
        .min_by_key(|(dist, _)| *dist)
        .map(|(_, n)| n)
}

/// Levenshtein distance over bytes; keys are ASCII.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The problem to report for an unknown key outside security.conf and the
/// command line: a near miss is an error, anything else a warning.
pub fn unknown_key_problem(key: &str, near: Option<&'static str>) -> (bool, Problem) {
    match near {
        Some(known) => (
            true,
            Problem::NearMiss {
                key: key.to_string(),
                known,
            },
        ),
        None => (false, Problem::UnknownKey { key: key.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive() {
        assert!(matches!(lookup("port"), Lookup::Directive(d) if d.name == "Port"));
        assert!(matches!(lookup("OFFLINEMODE"), Lookup::Directive(d) if d.name == "OfflineMode"));
        assert!(matches!(lookup("NoSSLChecks"), Lookup::Directive(d) if d.name == "NoSSLchecks"));
    }

    #[test]
    fn remap_keys_carry_their_name() {
        assert_eq!(lookup("Remap-debrep"), Lookup::Remap("debrep".into()));
        assert_eq!(lookup("remap-"), Lookup::Remap(String::new()));
        // The sixth byte inside a character is no `Remap-` prefix.
        assert_eq!(lookup("Remapé"), Lookup::Unknown(Some("Remap-")));
    }

    #[test]
    fn old_spellings_map_to_their_directive() {
        assert!(matches!(lookup("ExTreshold"), Lookup::Alias(d, _) if d.name == "ExThreshold"));
        assert!(
            matches!(lookup("MaxSpareThreadSets"), Lookup::Alias(d, _) if d.name == "MaxStandbyConThreads")
        );
        assert!(matches!(lookup("verbose"), Lookup::Deprecated("Verbose", _)));
    }

    #[test]
    fn typos_are_recognised_as_near_misses() {
        assert_eq!(lookup("Prot"), Lookup::Unknown(Some("Port")));
        assert_eq!(lookup("CacheDri"), Lookup::Unknown(Some("CacheDir")));
        assert_eq!(lookup("Remapdebrep"), Lookup::Unknown(None));
        assert_eq!(lookup("SomethingElseEntirely"), Lookup::Unknown(None));
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("port", "port"), 0);
        assert_eq!(edit_distance("prot", "port"), 2);
        assert_eq!(edit_distance("ports", "port"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn every_name_is_unique() {
        let mut names: Vec<String> = DIRECTIVES.iter().map(|d| d.name.to_ascii_lowercase()).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn shipped_acng_conf_documents_every_directive() {
        let conf = include_str!("../../conf/acng.conf");
        for dir in DIRECTIVES {
            let documented = conf.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.len() > dir.name.len()
                    && l[..dir.name.len()].eq_ignore_ascii_case(dir.name)
                    && l[dir.name.len()..].starts_with(':')
            });
            assert!(documented, "conf/acng.conf does not document {}", dir.name);
        }
    }

    #[test]
    fn every_key_is_its_directive() {
        assert_eq!(Key::ALL.len(), DIRECTIVES.len());
        for key in Key::ALL {
            assert_eq!(format!("{key:?}"), key.name());
        }
    }
}
