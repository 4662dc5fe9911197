//! The `debcache` binary: command line → configuration → log → runtime →
//! `server::run`, or one of acngtool's commands (`tool`). Everything else
//! lives in the library.

use std::process::ExitCode;

use debcache::cli::{self, Invocation, Next};
use debcache::tool;

/// jemalloc, not the C library's allocator: with glibc's per-thread arenas
/// the memory of a burst of connections stayed with the process after they
/// closed (10,000 connections: 9 MB to 211 MB, and more with each burst).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings (its `malloc_conf`): freed pages go back to the
/// system within about a second, from a background thread rather than from
/// the threads serving requests (jemalloc's defaults wait ten seconds, and
/// only while allocating).
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    let code = match cli::invocation(std::env::args_os().collect()) {
        Invocation::Daemon(cli) => {
            let errors = debcache::logging::init();
            match cli::run(cli) {
                Next::Exit(code) => code,
                Next::Serve(config) => debcache::daemon::run(*config, errors),
            }
        }
        Invocation::Command { config_dirs, command } => tool::run(config_dirs, command),
        Invocation::Alias(alias, args) => tool::run_as(alias, args),
    };
    ExitCode::from(code)
}
