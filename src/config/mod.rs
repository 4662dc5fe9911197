//! acng.conf-compatible configuration (spec §7): every `*.conf` of the
//! configuration directory in alphabetical order, then the command-line
//! `KEY=VALUE` words, then `file:` lists resolved with the final `SupportDir`.
//! The result is one validated, immutable [`Config`]; every problem found on
//! the way is a [`Diagnostic`] with its `file:line`.
//!
//! Two default sets (ARCHITECTURE.md "Decisions"), never merged: with a
//! configuration directory, acng's built-in defaults (`keys`); without one,
//! `conf/` as compiled into the binary plus a writable cache directory.

mod diag;
mod files;
mod hooks;
mod keys;
mod lists;
mod patterns;
mod print;
mod raw;
mod remap;
mod store;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

pub use diag::{Diagnostic, Location, Problem, Severity};
pub use files::ConfigDir;
pub use hooks::Hooks;
pub use keys::{lookup, Lookup, Status};
pub use patterns::{Class, FilePatterns};
pub use print::{check_report, render};
pub use remap::{MergeUrl, Remap, RemapFlags, RemapProxy, Source};
pub use values::{
    parse_size, AdminAuth, BindAddress, BindHost, CacheControlPolicy, IpFamily, Network, PortPolicy,
};

use crate::url::HttpUrl;
use diag::Diagnostics;
use keys::Key;
use lists::Resolver;
use store::{Origin, Store};
use values::Values;

/// The configuration directory used when `-c` is not given and it exists.
pub const SYSTEM_CONFIG_DIR: &str = "/etc/debcache";

/// The whole, validated configuration, grouped by concern so that each
/// module is handed only the part it reads. Immutable; shared in an `Arc`.
#[derive(Debug)]
pub struct Config {
    pub source: Provenance,
    pub listen: Listen,
    pub requests: Requests,
    pub storage: StorageConfig,
    pub caching: Caching,
    pub upstream: UpstreamConfig,
    pub log: Logging,
    pub remaps: Vec<Remap>,
    pub maintenance: Maintenance,
}

impl Config {
    /// The directory of the interception CA: `TlsInterceptCaDir`, which
    /// instances behind one balancer set to one shared directory, or the
    /// cache directory's own.
    pub fn intercept_ca_dir(&self) -> PathBuf {
        match &self.requests.intercept_ca {
            Some(dir) => dir.clone(),
            None => self.storage.cache_dir.join("_debcache/ca"),
        }
    }
}

/// What was read and what it came to: `--check`, `--print-config` and the
/// report page.
#[derive(Debug)]
pub struct Provenance {
    /// Where the `*.conf` files came from.
    pub config_dir: ConfigDir,
    /// The `*.conf` files read, in the order they were read.
    pub conf_files: Vec<Arc<Path>>,
    pub support_dir: Option<PathBuf>,
    /// Every directive's effective value as text, in table order, secrets
    /// masked: `--print-config` and the report page's `${cfg:...}`.
    pub effective: Vec<(&'static str, String)>,
}

/// Where the daemon listens, whom it lets in, and how it stops.
#[derive(Debug)]
pub struct Listen {
    /// 0: no default TCP listener (acng's meaning).
    pub port: u16,
    pub bind_addresses: Vec<BindAddress>,
    pub socket_path: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    /// Who may use the daemon over TCP (unix-socket clients always may).
    pub allowed_clients: Vec<Network>,
    /// `None`: no connection cap.
    pub max_connections: Option<usize>,
    pub drain_timeout: Duration,
    /// `NetworkTimeout` as clients see it: a TLS handshake, a request's
    /// headers, an idle kept-alive connection or tunnel. The same value as
    /// [`UpstreamConfig::network_timeout`], kept here so that the server
    /// reads no upstream settings.
    pub network_timeout: Duration,
}

/// How a request is classified: which URLs, ports and methods are taken,
/// and what each kind of file is.
#[derive(Debug)]
pub struct Requests {
    pub allow_user_ports: PortPolicy,
    pub forward_bts_soap: bool,
    /// CONNECT targets (`host:port`) allowed through.
    pub pass_through: Option<Regex>,
    /// Hosts whose CONNECTs are answered with TLS here and cached.
    pub intercept_domains: Vec<String>,
    /// `TlsInterceptCaDir`: where their CA is; `None`: in the cache
    /// directory ([`Config::intercept_ca_dir`]).
    pub intercept_ca: Option<PathBuf>,
    pub local_dirs: BTreeMap<String, PathBuf>,
    /// The admin page's name, without a leading `/`.
    pub report_page: Option<String>,
    pub admin_auth: Option<AdminAuth>,
    pub file_patterns: FilePatterns,
    /// Matched against the requested URL: pass through without caching.
    pub dont_cache_requested: Vec<Regex>,
    pub cache_control: CacheControlPolicy,
}

/// The cache directory and how files in it are made.
#[derive(Debug)]
pub struct StorageConfig {
    pub cache_dir: PathBuf,
    pub dir_perms: u32,
    pub file_perms: u32,
    pub stupid_fs: bool,
    pub reserve_space: u64,
}

/// What a miss gets, when a copy is current, and how downloads into the
/// cache are judged.
#[derive(Debug)]
pub struct Caching {
    pub offline: bool,
    pub force_managed: bool,
    /// Matched against the URL actually fetched.
    pub dont_cache_resolved: Vec<Regex>,
    pub fresh_index_max_age: Duration,
    pub dl_max_retries: u32,
    pub bad_redirect_mime: String,
}

/// How mirrors are reached: proxies, timeouts, connections, the headers
/// sent, TLS trust.
#[derive(Debug)]
pub struct UpstreamConfig {
    pub proxy: Option<HttpUrl>,
    /// `OptProxyTimeout`: how long to wait for a proxy's connection before
    /// going direct; `None` never goes around a proxy.
    pub proxy_fallback: Option<Duration>,
    /// `OptProxyCheckInterval`: how long a proxy that failed is gone around,
    /// and how often `proxy_check` runs.
    pub proxy_retry_after: Duration,
    /// `OptProxyCheckCommand`: exit status 0 means "use the `Proxy`".
    pub proxy_check: Option<String>,
    /// `ProxyIsCache`: the `Proxy` is a debcache (or apt-cacher-ng) that
    /// fetches https mirrors itself, so https downloads go to it as plain
    /// `http://HTTPS///host/path` requests, not through a `CONNECT` tunnel.
    pub proxy_is_cache: bool,
    pub network_timeout: Duration,
    pub fast_timeout: Duration,
    pub redir_max: u32,
    pub reuse_connections: bool,
    pub connect_proto: Vec<IpFamily>,
    /// `None`: send no `User-Agent`.
    pub user_agent: Option<String>,
    /// Extra upstream header lines (`RequestAppendix`, escapes expanded).
    pub request_appendix: Vec<(String, String)>,
    pub expose_origin: bool,
    /// KiB/s; `None` is unlimited.
    pub max_download_speed: Option<u32>,
    /// `HookTimeout`: the longest a repository's `PreUp` or `Down` hook may
    /// run before its process group is killed.
    pub hook_timeout: Duration,
    pub tls: TlsConfig,
}

/// Which certificates of https mirrors are trusted.
#[derive(Debug)]
pub struct TlsConfig {
    pub ca_path: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub no_tls_checks: bool,
}

/// The transfer log and what goes into it.
#[derive(Debug)]
pub struct Logging {
    /// `None`: no transfer log, diagnostics to stderr only.
    pub log_dir: Option<PathBuf>,
    pub verbose_log: bool,
    pub unbuffered_log: bool,
    pub log_submitted_origin: bool,
    pub pattern_tracing: bool,
}

/// The cache's upkeep: expiration and what it keeps.
#[derive(Debug)]
pub struct Maintenance {
    pub expiration: Expiration,
    /// `CacheSizeLimit`: the bytes the cached files may take; `None`: no
    /// limit.
    pub size_limit: Option<u64>,
    /// `ExpireSchedule`: the minute of the day (UTC) the daemon runs the
    /// expiration itself; `None`: never (acng's cron job does).
    pub expire_at: Option<u32>,
    pub precache_for: Vec<String>,
    /// `PrecacheDownloads`: downloads a precache runs at once.
    pub precache_downloads: usize,
    /// `VerifyDownloads`: package files are checked against the cached
    /// indexes as they arrive.
    pub verify_downloads: bool,
    pub track_file_use: bool,
}

/// The expiration settings (spec §10.1).
#[derive(Clone, Debug)]
pub struct Expiration {
    pub threshold_days: u32,
    pub abort_on_problems: bool,
    pub suppress_admin_notification: u32,
    pub start_trade_off: u64,
    pub follow_index_removal: bool,
    pub keep_extra_versions: u32,
    pub whitelist: Class,
}

/// The outcome of loading: a configuration when there was no error, and
/// every diagnostic either way.
#[derive(Debug)]
pub struct Loaded {
    pub config: Option<Config>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

/// `-c DIR` when given, else `/etc/debcache` when it exists, else the
/// embedded defaults.
pub fn choose_dir(explicit: Option<PathBuf>) -> ConfigDir {
    match explicit {
        Some(dir) => ConfigDir::Path(dir),
        None if Path::new(SYSTEM_CONFIG_DIR).is_dir() => ConfigDir::Path(SYSTEM_CONFIG_DIR.into()),
        None => ConfigDir::Embedded,
    }
}

/// Reads, checks and builds the configuration.
pub fn load(config_dir: ConfigDir, overrides: &[String]) -> Loaded {
    load_with(config_dir, &[], overrides)
}

/// `-c` as given, once or more: the first directory is the configuration
/// (its `file:` lists, its hooks), the `*.conf` files of each one after it
/// are read after its own. That is where debcache's own settings go beside
/// apt-cacher-ng's directory, which refuses keys it does not know.
pub fn load_dirs(explicit: &[PathBuf], overrides: &[String]) -> Loaded {
    let (first, after) = match explicit.split_first() {
        Some((first, after)) => (Some(first.clone()), after),
        None => (None, &[][..]),
    };
    load_with(choose_dir(first), after, overrides)
}

fn load_with(config_dir: ConfigDir, after: &[PathBuf], overrides: &[String]) -> Loaded {
    let mut diags = Diagnostics::default();
    let real = |p: &Path, diags: &mut Diagnostics| match std::fs::canonicalize(p) {
        Ok(real) => Some(real),
        Err(source) => {
            diags.push(config_dir_problem(p, source));
            None
        }
    };
    let config_dir = match config_dir {
        ConfigDir::Path(p) => match real(&p, &mut diags) {
            Some(real) => ConfigDir::Path(real),
            None => return finish(None, diags),
        },
        embedded => embedded,
    };
    let mut after_dirs = Vec::new();
    for dir in after {
        match real(dir, &mut diags) {
            Some(real) => after_dirs.push(ConfigDir::Path(real)),
            None => return finish(None, diags),
        }
    }
    let mut store = match config_dir {
        ConfigDir::Embedded => Store::new([
            ("CacheDir", default_cache_dir().display().to_string()),
            ("LogDir", String::new()),
            ("SupportDir", String::new()),
        ]),
        ConfigDir::Path(_) => Store::new([]),
    };
    let mut conf_files = read_conf_files(&config_dir, &mut store, &mut diags);
    for dir in &after_dirs {
        conf_files.extend(read_conf_files(dir, &mut store, &mut diags));
    }
    for (i, word) in overrides.iter().enumerate() {
        if let Some(a) = raw::parse_word(word, i + 1, &mut diags) {
            store.apply(a, Origin::CommandLine, &mut diags);
        }
    }
    let support_dir = Some(PathBuf::from(store.text(Key::SupportDir))).filter(|p| !p.as_os_str().is_empty());
    let resolver = Resolver {
        config_dir: &config_dir,
        support_dir: support_dir.as_deref(),
    };
    let values = Values::check(&store, &resolver, &mut diags);
    let remaps = remap::build(&store.remap_lines, &resolver, &mut diags);
    report_directives(&store, &mut diags);
    let source = Provenance {
        config_dir,
        conf_files,
        support_dir,
        effective: values.effective.clone(),
    };
    let config = build(source, &values, remaps, &mut diags);
    if config.maintenance.expire_at.is_some() {
        if let Some(cron) = acng_cron_reaching_debcache() {
            diags.warning(Location::File(Arc::from(cron.as_path())), Problem::ExpiresTwice);
        }
    }
    finish(Some(config), diags)
}

/// Debian's `/etc/cron.daily/apt-cacher-ng`, when the `acngtool` it runs is
/// a link to a debcache binary: then the cron job expires debcache's cache
/// too.
fn acng_cron_reaching_debcache() -> Option<PathBuf> {
    let cron = PathBuf::from("/etc/cron.daily/apt-cacher-ng");
    let tool = std::fs::canonicalize("/usr/lib/apt-cacher-ng/acngtool").ok()?;
    let named = tool.file_name()?.to_str()?.starts_with("debcache");
    (named && cron.is_file()).then_some(cron)
}

fn finish(config: Option<Config>, diags: Diagnostics) -> Loaded {
    let failed = diags.has_errors();
    let mut diagnostics = diags.into_vec();
    diagnostics.sort_by(|a, b| a.location.sort_key().cmp(&b.location.sort_key()));
    Loaded {
        config: if failed { None } else { config },
        diagnostics,
    }
}

/// A directory that cannot be used is its own problem, not a built-in one:
/// `/nonexistent: error: no such configuration directory`.
fn config_dir_problem(dir: &Path, source: std::io::Error) -> Diagnostic {
    let location = Location::File(Arc::from(dir));
    match source.kind() {
        std::io::ErrorKind::NotFound => Diagnostic::error(location, Problem::NoConfigDir),
        _ => Diagnostic::error(location, Problem::ConfigDir { source }),
    }
}

/// Reads every `*.conf` into `store`; returns the files read.
fn read_conf_files(dir: &ConfigDir, store: &mut Store, diags: &mut Diagnostics) -> Vec<Arc<Path>> {
    let found = match dir.conf_files() {
        Ok(found) => found,
        Err(source) => {
            let path = match dir {
                ConfigDir::Path(p) => p.clone(),
                ConfigDir::Embedded => PathBuf::from(dir.describe()),
            };
            diags.push(config_dir_problem(&path, source));
            return Vec::new();
        }
    };
    let mut read = Vec::new();
    for file in found {
        let origin = match file.path.file_name() {
            Some(n) if n == "security.conf" => Origin::SecurityConf,
            _ => Origin::ConfFile,
        };
        match &file.content {
            Ok(text) => {
                for a in raw::parse_file(text, &file.path, diags) {
                    store.apply(a, origin, diags);
                }
                read.push(Arc::clone(&file.path));
            }
            // An unreadable security.conf would silently open the admin
            // pages; any unreadable file refuses the start.
            Err(e) => diags.error(
                Location::File(file.path.clone()),
                Problem::Unreadable {
                    path: file.path.to_path_buf(),
                    source: std::io::Error::new(e.kind(), e.to_string()),
                },
            ),
        }
    }
    read
}

/// Where the `*.conf` files of `dir` set one of debcache's own keys, which
/// apt-cacher-ng refuses to start on.
pub fn own_keys_in(dir: &Path) -> std::io::Result<Vec<(Location, &'static str)>> {
    let mut diags = Diagnostics::default();
    let mut found = Vec::new();
    for file in ConfigDir::Path(dir.to_path_buf()).conf_files()? {
        let Ok(text) = &file.content else { continue };
        for a in raw::parse_file(text, &file.path, &mut diags) {
            if let Lookup::Directive(d) = keys::lookup(&a.key) {
                if d.own {
                    found.push((a.location, d.name));
                }
            }
        }
    }
    Ok(found)
}

/// The Decisions table's three kinds of directive, for the ones set: notes,
/// reported once at start-up.
fn report_directives(store: &Store, diags: &mut Diagnostics) {
    for (d, setting) in store.set_directives() {
        // acng's strtol: leading digits, 0 is false.
        let on = |v: &str| v.trim().parse::<i64>().is_ok_and(|n| n != 0);
        if d.name == Key::NoSSLchecks.name() && on(&setting.value) {
            diags.warning(setting.location.clone(), Problem::NoTlsChecks);
        }
        if d.name == Key::TlsInterceptDomains.name() && !setting.value.trim().is_empty() {
            diags.note(setting.location.clone(), Problem::InterceptCa);
        }
        match d.status {
            Status::InEffect => {}
            Status::NotYetInEffect => {
                diags.note(setting.location.clone(), Problem::NotInEffect { key: d.name })
            }
            Status::Ignored(why) => diags.note(
                setting.location.clone(),
                Problem::IgnoredByDesign { key: d.name, why },
            ),
        }
    }
}

fn build(source: Provenance, v: &Values, remaps: Vec<Remap>, diags: &mut Diagnostics) -> Config {
    // `storage` before `listen`: both may report a built-in error, and
    // built-in diagnostics are listed in the order they were found.
    let storage = storage(v, diags);
    Config {
        source,
        listen: listen(v, diags),
        requests: requests(v),
        storage,
        caching: caching(v),
        upstream: upstream(v),
        log: logging(v),
        remaps,
        maintenance: maintenance(v),
    }
}

fn listen(v: &Values, diags: &mut Diagnostics) -> Listen {
    let port = u16::try_from(v.int(Key::Port)).unwrap_or(0);
    let bind_addresses = v.binds(Key::BindAddress);
    let socket_path = v.path(Key::SocketPath);
    if port == 0 && socket_path.is_none() && !bind_addresses.iter().any(|b| b.port.is_some()) {
        diags.error(Location::BuiltIn, Problem::NothingToListenOn);
    }
    Listen {
        port,
        bind_addresses,
        socket_path,
        pid_file: v.path(Key::PidFile),
        allowed_clients: v.networks(Key::AllowedClients),
        max_connections: usize::try_from(v.int(Key::MaxConThreads)).ok().filter(|&n| n > 0),
        drain_timeout: v.seconds(Key::DrainTimeout),
        network_timeout: v.seconds(Key::NetworkTimeout),
    }
}

fn requests(v: &Values) -> Requests {
    Requests {
        allow_user_ports: v.ports(Key::AllowUserPorts),
        forward_bts_soap: v.bool(Key::ForwardBtsSoap),
        pass_through: v.regex(Key::PassThroughPattern),
        intercept_domains: v.names(Key::TlsInterceptDomains),
        intercept_ca: v.path(Key::TlsInterceptCaDir),
        local_dirs: v.local_dirs(Key::LocalDirs),
        report_page: Some(v.text(Key::ReportPage).trim_start_matches('/').to_string())
            .filter(|p| !p.is_empty()),
        admin_auth: v.credentials(Key::AdminAuth),
        file_patterns: file_patterns(v),
        dont_cache_requested: dont_cache(v, Key::DontCacheRequested),
        cache_control: v.cache_control(Key::PermitCacheControl),
    }
}

fn storage(v: &Values, diags: &mut Diagnostics) -> StorageConfig {
    let cache_dir = PathBuf::from(v.text(Key::CacheDir));
    if cache_dir.as_os_str().is_empty() {
        diags.error(
            Location::BuiltIn,
            Problem::NotAbsolute {
                key: "CacheDir",
                value: String::new(),
            },
        );
    }
    StorageConfig {
        cache_dir,
        dir_perms: v.count(Key::DirPerms),
        file_perms: v.count(Key::FilePerms),
        stupid_fs: v.bool(Key::StupidFs),
        reserve_space: v.int(Key::ReserveSpace).max(0) as u64,
    }
}

fn caching(v: &Values) -> Caching {
    Caching {
        offline: v.bool(Key::OfflineMode),
        force_managed: v.bool(Key::ForceManaged),
        dont_cache_resolved: dont_cache(v, Key::DontCacheResolved),
        fresh_index_max_age: v.seconds(Key::FreshIndexMaxAge),
        dl_max_retries: v.count(Key::DlMaxRetries),
        bad_redirect_mime: v.text(Key::BadRedirDetectMime).to_string(),
    }
}

fn upstream(v: &Values) -> UpstreamConfig {
    UpstreamConfig {
        proxy: v.url(Key::Proxy),
        proxy_fallback: u64::try_from(v.int(Key::OptProxyTimeout))
            .ok()
            .filter(|&s| s > 0)
            .map(Duration::from_secs),
        proxy_retry_after: v.seconds(Key::OptProxyCheckInterval),
        proxy_check: Some(v.text(Key::OptProxyCheckCommand).to_string()).filter(|c| !c.trim().is_empty()),
        proxy_is_cache: v.bool(Key::ProxyIsCache),
        network_timeout: v.seconds(Key::NetworkTimeout),
        fast_timeout: v.seconds(Key::FastTimeout),
        redir_max: v.count(Key::RedirMax),
        reuse_connections: v.bool(Key::ReuseConnections),
        connect_proto: v.protocols(Key::ConnectProto),
        user_agent: Some(v.text(Key::UserAgent).to_string()).filter(|a| !a.is_empty()),
        request_appendix: request_appendix(v.text(Key::RequestAppendix)),
        expose_origin: v.bool(Key::ExposeOrigin),
        max_download_speed: u32::try_from(v.int(Key::MaxDlSpeed)).ok().filter(|&s| s > 0),
        hook_timeout: v.seconds(Key::HookTimeout),
        tls: TlsConfig {
            ca_path: v.path(Key::CApath),
            ca_file: v.path(Key::CAfile),
            no_tls_checks: v.bool(Key::NoSSLchecks),
        },
    }
}

fn logging(v: &Values) -> Logging {
    Logging {
        log_dir: v.path(Key::LogDir),
        verbose_log: v.bool(Key::VerboseLog),
        unbuffered_log: v.bool(Key::UnbufferLogs),
        log_submitted_origin: v.bool(Key::LogSubmittedOrigin),
        pattern_tracing: v.bool(Key::Patrace),
    }
}

fn maintenance(v: &Values) -> Maintenance {
    Maintenance {
        expiration: Expiration {
            threshold_days: v.count(Key::ExThreshold),
            abort_on_problems: v.bool(Key::ExAbortOnProblems),
            suppress_admin_notification: v.count(Key::ExSuppressAdminNotification),
            start_trade_off: v.int(Key::ExStartTradeOff).max(0) as u64,
            follow_index_removal: v.bool(Key::FollowIndexFileRemoval),
            keep_extra_versions: v.count(Key::KeepExtraVersions),
            whitelist: Class {
                base: v.regex(Key::WfilePattern),
                extra: v.regex(Key::WfilePatternEx),
            },
        },
        precache_for: v.names(Key::PrecacheFor),
        precache_downloads: v.count(Key::PrecacheDownloads) as usize,
        verify_downloads: v.bool(Key::VerifyDownloads),
        track_file_use: v.bool(Key::TrackFileUse),
        size_limit: u64::try_from(v.int(Key::CacheSizeLimit)).ok().filter(|&n| n > 0),
        expire_at: u32::try_from(v.int(Key::ExpireSchedule) - 1).ok(),
    }
}

/// `DontCache` stands in for whichever of `DontCacheRequested` and
/// `DontCacheResolved` has no pattern.
fn dont_cache(v: &Values, own: Key) -> Vec<Regex> {
    let own = v.regexes(own);
    if own.is_empty() {
        v.regexes(Key::DontCache)
    } else {
        own
    }
}

fn file_patterns(v: &Values) -> FilePatterns {
    let class = |base: Key, extra: Key| Class {
        base: v.regex(base),
        extra: v.regex(extra),
    };
    FilePatterns {
        special_volatile: class(Key::SVfilePattern, Key::SVfilePatternEx),
        special_solid: class(Key::SPfilePattern, Key::SPfilePatternEx),
        volatile: class(Key::VfilePattern, Key::VfilePatternEx),
        solid: class(Key::PfilePattern, Key::PfilePatternEx),
        whitelist: class(Key::WfilePattern, Key::WfilePatternEx),
    }
}

/// `RequestAppendix`: header lines with `\r\n`-style escapes; lines without
/// a `:` are dropped, as acng drops the whole value.
fn request_appendix(text: &str) -> Vec<(String, String)> {
    let unescaped = text
        .replace("\\r", "\r")
        .replace("\\n", "\n")
        .replace("\\t", "\t");
    unescaped
        .split(['\r', '\n'])
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic()))
        .collect()
}

/// A cache directory the current user can write: `/var/cache/debcache` when
/// possible, else `$XDG_CACHE_HOME/debcache` or `~/.cache/debcache`.
fn default_cache_dir() -> PathBuf {
    let system = Path::new("/var/cache/debcache");
    let usable = if system.exists() {
        writable(system)
    } else {
        system.parent().is_some_and(writable)
    };
    if usable {
        return system.to_path_buf();
    }
    let home_cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    match home_cache {
        Some(dir) => dir.join("debcache"),
        None => std::env::temp_dir().join("debcache"),
    }
}

fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(test)]
mod tests;
