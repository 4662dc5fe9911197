//! The `debcache` binary: command line → configuration → log → runtime →
//! `server::run`. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use debcache::cli::{self, Cli, Next};

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging();
    match cli::run(cli) {
        Next::Exit(code) => ExitCode::from(code),
        Next::Serve(config) => ExitCode::from(debcache::daemon::run(*config)),
    }
}
