//! `debcache shrink SIZE -n|-f [-x] [-v]` (acngtool shrink, spec §10.5):
//! the least recently used files removed until the cache takes at most
//! SIZE, by the selection the daemon's `CacheSizeLimit` uses
//! (`maint::quota`). Offline, as acngtool's, but refused while a daemon
//! holds the cache's lock: removing files under a running daemon is what
//! its own limit is for.
//!
//! Output as acngtool's: `Delete: PATH` for the data and the `.head` of each
//! file chosen (with `-n`, chosen only), and with `-v` the sizes before and
//! after. Files being downloaded cannot be, offline.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::cache::{Cache, Changed, LockError, Storage};
use crate::cli::{exit, stderr_line};
use crate::config::{parse_size, Config};
use crate::maint::quota::{shrink, Policy, Target, Volatile};
use crate::stats::Stats;
use crate::upstream::Upstream;

#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub dry_run: bool,
    /// `-x`: index files may go too.
    pub volatile: bool,
    pub verbose: bool,
}

pub fn run(config: &Config, size: &str, options: Options) -> u8 {
    let Some(size) = parse_size(size).and_then(|n| u64::try_from(n).ok()) else {
        stderr_line(format_args!(
            "debcache shrink: {size:?} is not a size (bytes, or with k, m, g, K, M, G)"
        ));
        return exit::USAGE;
    };
    let dir = &config.storage.cache_dir;
    let storage = match Storage::open(dir) {
        Ok(storage) => storage,
        Err(e) => {
            stderr_line(format_args!(
                "debcache shrink: cannot open {}: {e}",
                dir.display()
            ));
            return exit::UNAVAILABLE;
        }
    };
    let _lock = match storage.lock() {
        Ok(lock) => lock,
        Err(e @ LockError::Held { .. }) => {
            stderr_line(format_args!(
                "debcache shrink: {e}: stop it first, or let its CacheSizeLimit keep the size"
            ));
            return exit::UNAVAILABLE;
        }
        Err(e) => {
            stderr_line(format_args!("debcache shrink: {e}"));
            return exit::UNAVAILABLE;
        }
    };
    let upstream = match Upstream::new(&config.upstream, &config.remaps) {
        Ok(upstream) => upstream,
        Err(e) => {
            stderr_line(format_args!("debcache shrink: {e}"));
            return exit::CONFIG;
        }
    };
    let cache = Cache::new(storage, upstream, &config.caching, Arc::new(Stats::new([])));
    let policy = Policy {
        patterns: &config.requests.file_patterns,
        volatile: if options.volatile {
            Volatile::Last
        } else {
            Volatile::Keep
        },
    };
    let mut out = std::io::stdout().lock();
    let mut written = Ok(());
    let root = dir.display().to_string();
    let shrunk = shrink(
        &cache,
        Target::exactly(size),
        policy,
        options.dry_run,
        &AtomicBool::new(false),
        |candidate, changed| {
            if written.is_err() || matches!(changed, Some(Changed::Busy | Changed::Absent)) {
                return;
            }
            let path = candidate.key.as_str();
            written = writeln!(out, "Delete: {root}/{path}\nDelete: {root}/{path}.head");
        },
    );
    let outcome = match shrunk {
        Ok(outcome) => outcome,
        Err(e) => {
            stderr_line(format_args!("debcache shrink: cannot walk {root}: {e}"));
            return exit::UNAVAILABLE;
        }
    };
    if options.verbose {
        let before = outcome.before.bytes;
        let after = before.saturating_sub(outcome.removed.bytes);
        let _ = writeln!(
            out,
            "Found {before} bytes in {} files, reducing to {size}\nNew size: {after} (before: {before})",
            outcome.before.count
        );
    }
    if outcome.unreadable > 0 {
        stderr_line(format_args!(
            "debcache shrink: {} directories could not be read; their files were not counted",
            outcome.unreadable
        ));
    }
    match written.and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            stderr_line(format_args!("debcache shrink: cannot write the list: {e}"));
            exit::OUTPUT
        }
    }
}
