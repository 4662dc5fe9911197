//! acngtool's commands (spec §11.1) in the debcache binary: `debcache
//! COMMAND`, or the binary linked as `acngtool` / `expire-caller.pl`
//! (`acngtool`: acngtool's own command line). Every command but `encb64`
//! reads the daemon's configuration the way the daemon does; a
//! configuration with errors is reported as the daemon reports it and the
//! command does not run.
//!
//! | command | prints | exit |
//! |---|---|---|
//! | `printvar NAME` | the setting's effective value | 0; 23 no such setting (AdminAuth, `Remap-…` and deprecated names included) |
//! | `cfgdump` | `Name = value` for every setting, AdminAuth and passwords masked | 0 |
//! | `retest PATH` | `FILE_SOLID`, `FILE_VOLATILE` or `NOMATCH` | 0 |
//! | `encb64 USER:PASSWORD` | the base64 of the bytes given | 0 |
//! | `maint` | the task's errors (acng's control lines) on stderr (`maint`) | 0 answered 200 to the end; 1 otherwise; 255 `ReportPage` empty |
//! | `shrink SIZE -n\|-f [-x] [-v]` | `Delete: PATH` per file removed (`-n`: that would be) | 0; 2 a bad size; 69 a daemon holds the cache |
//! | `migrate [--from DIR] [--apply] [--root DIR]` | the checks of an apt-cacher-ng installation, the files and steps that put debcache in its place, the way back | 0; 78 a check failed (nothing changed); 1 a step failed |
//!
//! And for all: 78 configuration errors, 74 stdout could not be written,
//! 2 usage (under acngtool's name its own usage codes, `acngtool`).

mod acngtool;
mod encb64;
mod maint;
mod migrate;
mod retest;
mod shrink;
mod vars;

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::{self, exit, stderr_line, Alias, Command};
use crate::config::{self, Config, Severity};

/// Runs `debcache COMMAND`; the exit code.
pub fn run(config_dirs: Vec<PathBuf>, command: Command) -> u8 {
    match command {
        Command::Encb64 { credentials } => encb64::run(&credentials),
        Command::Printvar { name, overrides } => {
            with_config(&config_dirs, &overrides, |config| vars::printvar(config, &name))
        }
        Command::Cfgdump { overrides } => with_config(&config_dirs, &overrides, vars::cfgdump),
        Command::Retest { path, overrides } => {
            with_config(&config_dirs, &overrides, |config| retest::run(config, &path))
        }
        Command::Maint { verbose, overrides } => {
            with_config(&config_dirs, &overrides, |config| maint::run(config, verbose))
        }
        Command::Migrate { from, apply, root } => {
            if !config_dirs.is_empty() {
                stderr_line(format_args!(
                    "debcache migrate: -c has no meaning here; --from names apt-cacher-ng's directory"
                ));
                return exit::USAGE;
            }
            migrate::run(&migrate::Options { from, apply, root })
        }
        Command::Shrink {
            size,
            dry_run,
            force: _,
            volatile,
            verbose,
            overrides,
        } => with_config(&config_dirs, &overrides, |config| {
            shrink::run(
                config,
                &size,
                shrink::Options {
                    dry_run,
                    volatile,
                    verbose,
                },
            )
        }),
    }
}

/// Runs the binary under one of acngtool's names with acngtool's command
/// line; `args` include the program name.
pub fn run_as(alias: Alias, args: Vec<OsString>) -> u8 {
    match acngtool::parse(alias, args) {
        acngtool::Parsed::Run { config_dir, command } => run(config_dir.into_iter().collect(), command),
        acngtool::Parsed::Exit(usage) => usage.report(),
    }
}

/// Loads the configuration and hands it to `command`. Warnings and errors
/// go to stderr as `--print-config` shows them (notes, the daemon's
/// start-up report, do not); with errors the command does not run.
fn with_config(config_dirs: &[PathBuf], overrides: &[String], command: impl FnOnce(&Config) -> u8) -> u8 {
    if let Err(msg) = cli::validate_overrides(overrides) {
        stderr_line(format_args!("debcache: {msg}"));
        return exit::USAGE;
    }
    let loaded = config::load_dirs(config_dirs, overrides);
    for d in loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity >= Severity::Warning)
    {
        stderr_line(format_args!("{d}"));
    }
    match &loaded.config {
        Some(config) if !loaded.has_errors() => command(config),
        _ => {
            stderr_line(format_args!(
                "debcache: configuration errors, the command did not run"
            ));
            exit::CONFIG
        }
    }
}
