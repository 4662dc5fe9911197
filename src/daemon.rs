//! The running daemon, assembled: lock the cache, open the transfer log,
//! bind, install signal handlers, write the pid file, serve until
//! signalled, clean up. Returns the process exit code (`cli::exit`).

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::admin::maintenance::Maintenance;
use crate::cache::{Cache, LockError, Storage};
use crate::cli::{exit, stderr_line};
use crate::config::Config;
use crate::error::Chain;
use crate::intercept::Interceptor;
use crate::log::TransferLog;
use crate::remap::RemapTable;
use crate::server;
use crate::shutdown;
use crate::state::AppState;
use crate::stats::{self, Stats};
use crate::upstream::Upstream;

/// How long shutdown waits for a cut maintenance task: it stops within a
/// second of being told, unless the disk hangs.
const TASK_STOP: Duration = Duration::from_secs(5);

/// Why the daemon could not start, and the exit code that says so.
struct Fatal {
    code: u8,
    message: String,
}

fn fatal(code: u8, message: impl Display) -> Fatal {
    Fatal {
        code,
        message: message.to_string(),
    }
}

/// The directories the configuration names that the daemon must write.
#[derive(Clone, Copy)]
enum Writable {
    Cache,
    Log,
}

/// A directory the daemon cannot create or write, as one line naming the
/// directory, its key, the user and the cause. Denied access, a read-only
/// file system or a file in the way is the configuration's fault for the
/// user the daemon runs as: EX_CONFIG, so that systemd does not restart it
/// to fail the same way (the unit's `RestartPreventExitStatus`). Other
/// errors (a full disk, EIO) may pass. `at` is the file below it that
/// failed, when that is not the directory.
fn unwritable(which: Writable, dir: &Path, at: Option<&Path>, cause: &std::io::Error) -> Fatal {
    use std::io::ErrorKind::{NotADirectory, PermissionDenied, ReadOnlyFilesystem};
    let code = match cause.kind() {
        PermissionDenied | ReadOnlyFilesystem | NotADirectory => exit::CONFIG,
        _ => exit::UNAVAILABLE,
    };
    let (what, key) = match which {
        Writable::Cache => ("the cache directory", "CacheDir"),
        Writable::Log => ("the log directory", "LogDir"),
    };
    let who = rustix::process::geteuid().as_raw();
    let at = at.map(|p| format!("{}: ", p.display())).unwrap_or_default();
    let dir = dir.display();
    fatal(
        code,
        format!("cannot write {what} {dir} ({key}, as uid {who}): {at}{cause}"),
    )
}

/// Runs the daemon; `errors` is the log's handle for `apt-cacher.err`.
pub fn run(config: Config, errors: crate::logging::ErrorLog) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            stderr_line(format_args!("debcache: cannot start the runtime: {e}"));
            return exit::UNAVAILABLE;
        }
    };
    let finish_within = config.listen.drain_timeout;
    let outcome = runtime.block_on(serve(config, errors));
    // Once the server has stopped, work may remain on the blocking pool: a
    // download being committed (the fdatasync of a large file, seconds for
    // a gigabyte, then the `.head` that marks it complete) or a name lookup
    // for a client long gone. Dropping the runtime waited for all of it,
    // silently and without a bound, after `stopped` had been logged. Wait
    // here, up to DrainTimeout again, and log `stopped` when it is true. A
    // commit cut by the bound leaves an entry that looks partial and is
    // resumed later, never one served as complete.
    default_stop_signals();
    runtime.shutdown_timeout(finish_within);
    match outcome {
        Ok(log) => {
            log.flush();
            tracing::info!("stopped");
            exit::OK
        }
        Err(f) => {
            stderr_line(format_args!("debcache: {}", f.message));
            f.code
        }
    }
}

/// From here on nothing is left to drain, and the signal task is gone with
/// the runtime: a second SIGTERM or SIGINT ends the process at once, by the
/// signal's default action.
fn default_stop_signals() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: SIG_DFL installs no handler, so no code of ours can run
        // in signal context; nothing else reads these dispositions.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
}

/// Serves until the first stop signal; returns the transfer log for its
/// last flush.
async fn serve(config: Config, errors: crate::logging::ErrorLog) -> Result<Arc<TransferLog>, Fatal> {
    raise_fd_limit();
    let cache_dir = config.storage.cache_dir.display().to_string();
    let storage = Storage::open(&config.storage.cache_dir)
        .map_err(|e| unwritable(Writable::Cache, &config.storage.cache_dir, None, &e))?
        .with_modes(config.storage.dir_perms, config.storage.file_perms);
    let _lock = storage.lock().map_err(|e| match &e {
        LockError::Io { path, source } => {
            unwritable(Writable::Cache, &config.storage.cache_dir, Some(path), source)
        }
        LockError::Held { .. } => fatal(exit::UNAVAILABLE, e),
    })?;
    let upstream = Upstream::new(&config.upstream, &config.remaps).map_err(|e| fatal(exit::CONFIG, e))?;
    let intercept = Interceptor::open(&config.intercept_ca_dir(), &config.requests.intercept_domains)
        .map_err(|e| fatal(exit::UNAVAILABLE, format!("cannot use the interception CA: {e}")))?
        .map(Arc::new);
    if upstream.trust().unchecked {
        tracing::warn!("NoSSLchecks is set: https mirrors are not authenticated, anyone on the path can impersonate them");
    } else {
        tracing::info!("TLS trust: {}", upstream.trust());
    }
    match storage.sweep_tmp() {
        Ok(0) => {}
        Ok(n) => tracing::info!("removed {n} unfinished download(s) left by an earlier run"),
        Err(e) => tracing::warn!("cannot clean {cache_dir}/_debcache/tmp: {e}"),
    }
    let log_dir = config.log.log_dir.as_deref();
    let log = TransferLog::open(log_dir, config.log.verbose_log, config.log.unbuffered_log)
        .map(Arc::new)
        .map_err(|e| unwritable(Writable::Log, log_dir.unwrap_or(Path::new("")), None, &e))?;
    errors.attach(&log);
    let listeners = server::bind(&config.listen)
        .await
        .map_err(|e| fatal(exit::UNAVAILABLE, Chain(&e)))?;
    let socket_path = listeners
        .unix
        .as_ref()
        .filter(|_| !listeners.inherited)
        .map(|(_, p)| p.clone());
    let ours = config
        .listen
        .pid_file
        .iter()
        .chain(socket_path.iter())
        .cloned()
        .collect();
    let stop = shutdown::signals(Arc::clone(&log), ours)
        .map_err(|e| fatal(exit::UNAVAILABLE, format!("cannot install signal handlers: {e}")))?;
    if let Some(pid_file) = &config.listen.pid_file {
        if let Err(e) = std::fs::write(pid_file, format!("{}\n", std::process::id())) {
            tracing::warn!("cannot write the pid file {}: {e}", pid_file.display());
        }
    }
    // Printed once everything is ready: scripts and tests wait for it.
    for addr in listeners.tcp_addrs() {
        stderr_line(format_args!("debcache: listening on {addr}"));
    }
    if let Some((_, path)) = &listeners.unix {
        stderr_line(format_args!("debcache: listening on {}", path.display()));
    }
    tracing::info!("cache directory {cache_dir}");
    let notifier = Arc::new(crate::notify::Notifier::from_env());
    notifier.ready(&format!("serving; cache directory {cache_dir}"));
    let watchdog = notifier.watchdog_every().map(|every| {
        let notifier = Arc::clone(&notifier);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                notifier.watchdog();
            }
        })
    });
    let flusher = tokio::spawn(flush_every_second(Arc::clone(&log)));
    let config = Arc::new(config);
    let stats = Arc::new(Stats::new(config.remaps.iter().map(|r| r.name.as_str())));
    let stats_path = stats::state_path(&config.storage.cache_dir);
    restore_stats(&stats, &stats_path, config.log.log_dir.clone()).await;
    let saver = tokio::spawn(save_stats_every_minute(Arc::clone(&stats), stats_path.clone()));
    let maintenance = Arc::new(Maintenance::new(config.log.log_dir.clone()));
    let state = AppState {
        remap: Arc::new(RemapTable::new(&config.remaps)),
        cache: Arc::new(Cache::new(storage, upstream, &config.caching, Arc::clone(&stats))),
        log: Arc::clone(&log),
        stats: Arc::clone(&stats),
        config: Arc::clone(&config),
        intercept,
        maintenance: Arc::clone(&maintenance),
        trace: Arc::new(crate::admin::trace::PatternTrace::new(config.log.pattern_tracing)),
    };
    let cache = Arc::clone(&state.cache);
    let daily = config.maintenance.expire_at.map(|minute| {
        let context = crate::maint::Context {
            cache: Arc::clone(&cache),
            remap: Arc::clone(&state.remap),
            config: Arc::clone(&config),
            stats: Arc::clone(&stats),
            runtime: tokio::runtime::Handle::current(),
            now: std::time::SystemTime::now(),
        };
        tokio::spawn(Arc::clone(&maintenance).expire_daily(context, minute))
    });
    let sums = config
        .maintenance
        .verify_downloads
        .then(|| tokio::spawn(crate::maint::sums::keep(Arc::clone(&cache))));
    let quota = config.maintenance.size_limit.map(|limit| {
        tokio::spawn(crate::maint::quota::keep_under(
            Arc::clone(&cache),
            Arc::clone(&config),
            limit,
        ))
    });
    // The running task is cut when the stop begins: its viewers' pages end
    // with it, so they do not hold the drain.
    let tasks = Arc::clone(&maintenance);
    let stopping = Arc::clone(&notifier);
    let stop = async move {
        stop.await;
        stopping.stopping("draining connections");
        if let Some(task) = tasks.shut() {
            tracing::info!("stopping: maintenance task {task} cut");
        }
    };
    server::run(listeners, state, stop).await;
    if !maintenance.idle(TASK_STOP).await {
        tracing::warn!(
            "a maintenance task did not stop within {}s; it is left to the runtime's end",
            TASK_STOP.as_secs()
        );
    }
    let cut = cache.stop_downloads().await;
    if cut > 0 {
        tracing::info!(
            "{cut} download(s) cut at shutdown; their partial files are resumed on the next request"
        );
    }
    flusher.abort();
    saver.abort();
    for task in quota.into_iter().chain(daily).chain(sums).chain(watchdog) {
        task.abort();
    }
    save_stats(Arc::clone(&stats), stats_path).await;
    for path in config.listen.pid_file.iter().chain(socket_path.iter()) {
        let _ = std::fs::remove_file(path);
    }
    Ok(log)
}

async fn flush_every_second(log: Arc<TransferLog>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        log.flush();
    }
}

/// The last week's counts: from the state file, or rebuilt from the
/// transfer logs when there is none (a first start after apt-cacher-ng,
/// or a lost file). On a blocking thread: logs can be large.
async fn restore_stats(stats: &Arc<Stats>, path: &Path, log_dir: Option<PathBuf>) {
    let (stats, path) = (Arc::clone(stats), path.to_path_buf());
    let restored = tokio::task::spawn_blocking(move || match stats.load(&path) {
        Ok(true) => {}
        Ok(false) => match log_dir.map(|dir| stats.rebuild(&dir, crate::log::FILE_NAME)) {
            Some(Ok(lines)) if lines > 0 => {
                tracing::info!("statistics rebuilt from {lines} transfer-log lines");
            }
            Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!("cannot read the transfer logs for statistics: {e}");
            }
            _ => {}
        },
        Err(e) => tracing::warn!("statistics start from zero: {e}"),
    })
    .await;
    if let Err(e) = restored {
        tracing::warn!("statistics start from zero: {e}");
    }
}

async fn save_stats_every_minute(stats: Arc<Stats>, path: PathBuf) {
    let mut tick = tokio::time::interval(stats::SAVE_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        save_stats(Arc::clone(&stats), path.clone()).await;
    }
}

async fn save_stats(stats: Arc<Stats>, path: PathBuf) {
    let saved = tokio::task::spawn_blocking(move || {
        stats
            .save(&path)
            .map_err(|e| format!("cannot save statistics to {}: {e}", path.display()))
    })
    .await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("{e}"),
        Err(e) => tracing::warn!("cannot save statistics: {e}"),
    }
}

/// Many clients mean many descriptors: take the hard limit.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!("cannot raise the descriptor limit: {e}");
        }
    }
}
