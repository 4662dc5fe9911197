//! debcache: a caching proxy for Debian and Ubuntu package repositories,
//! compatible with apt-cacher-ng's configuration, cache layout and clients.
//!
//! A request travels `server → service → request → remap → cache`; see
//! ARCHITECTURE.md for the whole picture.
//!
//! - `admin`: the daemon's own pages (help, report, health, metrics) and
//!   the maintenance tasks the report page runs.
//! - `beneath`: opening paths below a directory, never through a symlink.
//! - `body`: the one response body type (memory, file ranges, streams).
//! - `cache`: the cache directory: keys, `.head` sidecars, lookups.
//! - `calendar`: dates of Unix days, in UTC.
//! - `cli`: the command line and its exit codes.
//! - `config`: acng.conf-compatible loading into one validated `Config`.
//! - `daemon`: start-up and shutdown of the running daemon.
//! - `digest`: checksums as indexes give them, and their streaming hasher.
//! - `error`: error display shared by the layers.
//! - `index`: the files a repository's indexes name, parsed from their text.
//! - `intercept`: the local CA that answers CONNECTs to `TlsInterceptDomains`.
//! - `log`: the transfer log, `apt-cacher.log`, and `apt-cacher.err`.
//! - `logging`: the daemon's log: stderr (journald's form under systemd),
//!   its warnings and errors copied to `apt-cacher.err`.
//! - `maint`: keeping the cache in shape: expiration, import, precache, the
//!   size quota, and the checksum table downloads are verified against.
//! - `notify`: systemd's readiness protocol (`READY=1`, `STOPPING=1`,
//!   the watchdog).
//! - `remap`: which repository a URL is cached in, and its backends.
//! - `request`: what a client request is for (a `Target`), pure.
//! - `server`: listeners, connections and their HTTP/1.1 (sendfile), draining.
//! - `service`: the per-request handler; failures become responses here.
//! - `shutdown`: signals.
//! - `state`: the shared handle every connection gets.
//! - `stats`: counts of what was served and fetched, kept for a week.
//! - `tasks`: background work (downloads) that shutdown stops.
//! - `tool`: acngtool's commands (`printvar`, `cfgdump`, `retest`, `encb64`,
//!   `maint`), also under acngtool's names.
//! - `tunnel`: CONNECT tunnels, bytes copied both ways.
//! - `upstream`: fetching from mirrors: connections, TLS, redirects, failover.
//! - `url`: http(s) URLs parsed the way apt-cacher-ng parses them.

pub mod admin;
pub mod beneath;
pub mod body;
pub mod cache;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod digest;
pub mod error;
pub mod index;
pub mod intercept;
pub mod log;
pub mod logging;
pub mod maint;
pub mod notify;
pub mod remap;
pub mod request;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod state;
pub mod stats;
pub mod tasks;
pub mod tool;
pub mod tunnel;
pub mod upstream;
pub mod url;
