//! The `debcache` binary: command line → configuration → log → runtime →
//! `server::run`. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use debcache::cli::{self, Cli, Next};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // A broken stderr would otherwise be reported with `eprintln!`, which
        // panics in whichever task was logging.
        .log_internal_errors(false)
        .init();
    match cli::run(cli) {
        Next::Exit(code) => ExitCode::from(code),
        Next::Serve(config) => ExitCode::from(debcache::daemon::run(*config)),
    }
}
