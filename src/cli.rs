//! The command line: `debcache [-c DIR] [--check | --print-config]
//! [KEY=VALUE | KEY:VALUE ...]`, acngtool's commands as `debcache [-c DIR]
//! COMMAND ...`, the binary under acngtool's names (a link), and the exit
//! codes of the Decisions table.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{self, Lookup, Severity};

/// Exit codes (README "Exit codes"; ARCHITECTURE.md "Decisions").
pub mod exit {
    pub const OK: u8 = 0;
    /// `--check` found errors.
    pub const CHECK_FAILED: u8 = 1;
    /// Command-line usage.
    pub const USAGE: u8 = 2;
    /// EX_UNAVAILABLE: cannot bind or lock.
    pub const UNAVAILABLE: u8 = 69;
    /// EX_IOERR: `--check` or `--print-config` could not write its output
    /// (a full disk; a reader that went away is not an error).
    pub const OUTPUT: u8 = 74;
    /// EX_CONFIG: the daemon refuses to start on bad configuration, or on
    /// a CacheDir or LogDir it cannot write (and a command refuses to run).
    pub const CONFIG: u8 = 78;
    /// `printvar`: no such setting (acngtool's code).
    pub const NO_SUCH_SETTING: u8 = 23;
    /// `maint`: the daemon was not reached, or did not answer 200 to the
    /// end (acngtool's `EXIT_FAILURE`).
    pub const MAINT_FAILED: u8 = 1;
    /// `maint`: `ReportPage` is empty, so there is nothing to ask
    /// (acngtool's `-1`).
    pub const NO_REPORT_PAGE: u8 = 255;
}

/// A caching proxy for Debian and Ubuntu package repositories, compatible
/// with apt-cacher-ng.
#[derive(Debug, Parser)]
#[command(
    name = "debcache",
    version,
    disable_help_subcommand = true,
    after_help = "Run `debcache --help` for examples, common settings, exit codes and signals.",
    after_long_help = long_help()
)]
pub struct Cli {
    /// Configuration directory: every *.conf in it is read (default:
    /// /etc/debcache when it exists, else the built-in configuration).
    /// Given again, the *.conf files of each further directory are read
    /// after the first's: debcache's own settings beside apt-cacher-ng's
    /// directory, which refuses keys it does not know.
    #[arg(short = 'c', long = "config", value_name = "DIR", global = true)]
    pub config_dirs: Vec<PathBuf>,

    /// Load and validate the configuration; print what was read, each
    /// problem as `file:line: message` and the verdict; exit 1 on errors.
    #[arg(long, conflicts_with = "print_config")]
    pub check: bool,

    /// Print the effective configuration and exit: every directive, then
    /// each remap with its lists by name and URL count.
    #[arg(long)]
    pub print_config: bool,

    /// With --print-config: every merging and backend URL of each remap,
    /// one a line, instead of each list's name and count.
    #[arg(long, requires = "print_config")]
    pub full: bool,

    /// Settings that override the files, as apt-cacher-ng takes them
    /// (`Port=3143`, `CacheDir:/srv/cache`).
    #[arg(value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// acngtool's commands (spec §11.1), on the daemon's configuration. Each
/// takes `KEY=VALUE` overrides after its arguments, as the daemon does.
#[derive(Debug, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Print one setting's effective value; exit 23 if there is no such
    /// setting (AdminAuth is never printed).
    Printvar {
        /// A directive's name, in any case (`ReportPage`).
        name: String,
        /// Settings that override the files, as for the daemon.
        #[arg(value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Print every setting as `Name = value`, passwords hidden.
    Cfgdump {
        /// Settings that override the files, as for the daemon.
        #[arg(value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Print how a path is cached, as the daemon classifies it:
    /// FILE_SOLID, FILE_VOLATILE or NOMATCH.
    Retest {
        /// A URL path (`/debian/dists/sid/InRelease`) or a whole URL.
        path: String,
        /// Settings that override the files, as for the daemon.
        #[arg(value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Print the base64 of USER:PASSWORD, as HTTP Basic authentication
    /// sends it.
    Encb64 {
        #[arg(value_name = "USER:PASSWORD")]
        credentials: OsString,
    },
    /// Run a report-page action in the running daemon (by default the
    /// expiration; `ACNGREQ` chooses another) and print its errors on
    /// stderr; exit 0 when the daemon answered 200 to the end, else 1
    /// (255: ReportPage is empty). AdminAuth goes over the unix socket
    /// only, unless `ACNG_INSECURE` is set.
    Maint {
        /// Print every line of the task's output on stdout.
        #[arg(long)]
        verbose: bool,
        /// Settings that override the files, as for the daemon.
        #[arg(value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Remove the least recently used files until the cache takes at most
    /// SIZE on disk (`acngtool shrink`); offline: refused while a daemon
    /// uses the cache directory. Exactly one of -n and -f.
    #[command(group(clap::ArgGroup::new("mode").required(true).args(["dry_run", "force"])))]
    Shrink {
        /// Bytes, or with k, m, g (powers of 1000) or K, M, G (of 1024).
        size: String,
        /// List what would go, remove nothing.
        #[arg(short = 'n')]
        dry_run: bool,
        /// Remove.
        #[arg(short = 'f')]
        force: bool,
        /// Index files may go too (after every other file).
        #[arg(short = 'x')]
        volatile: bool,
        /// Say the sizes before and after.
        #[arg(short = 'v')]
        verbose: bool,
        /// Settings that override the files, as for the daemon.
        #[arg(value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Check an apt-cacher-ng installation and print the steps that run
    /// debcache on its configuration and cache in place: a systemd drop-in
    /// (the cache's owner as the user, acng's directories writable), a
    /// directory for debcache's own settings, stopping apt-cacher-ng and
    /// its cron job, and the way back. Exit 78 when a check fails.
    Migrate {
        /// apt-cacher-ng's configuration directory.
        #[arg(long, value_name = "DIR", default_value = "/etc/apt-cacher-ng")]
        from: PathBuf,
        /// Write the files and run the steps (as root) instead of printing
        /// them only.
        #[arg(long)]
        apply: bool,
        /// With --apply: write the files under DIR instead of /, and run
        /// no command (an image being built).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
}

/// How the binary was started.
#[derive(Debug)]
pub enum Invocation {
    /// `debcache [options] [KEY=VALUE...]`: the daemon, or a
    /// configuration-only mode.
    Daemon(Cli),
    /// `debcache [-c DIR] COMMAND ...`.
    Command {
        config_dirs: Vec<PathBuf>,
        command: Command,
    },
    /// Under one of acngtool's names, with every argument as given.
    Alias(Alias, Vec<OsString>),
}

/// The names under which the binary behaves as acngtool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alias {
    /// `acngtool COMMAND [args] [-c DIR] [KEY=VALUE...]`.
    Acngtool,
    /// `expire-caller.pl [-c DIR] [KEY=VALUE...]`: acngtool's `maint` (its
    /// old name).
    ExpireCaller,
}

impl Alias {
    /// The alias a program name (`argv[0]`, a path or not) stands for.
    pub fn of(program: &OsStr) -> Option<Alias> {
        match Path::new(program).file_name()?.as_encoded_bytes() {
            b"acngtool" => Some(Alias::Acngtool),
            b"expire-caller.pl" => Some(Alias::ExpireCaller),
            _ => None,
        }
    }
}

/// Reads the command line; prints clap's message and exits 2 on a usage
/// error, as `Cli::parse` does.
pub fn invocation(args: Vec<OsString>) -> Invocation {
    if let Some(alias) = args.first().and_then(|p| Alias::of(p)) {
        return Invocation::Alias(alias, args);
    }
    let mut cli = Cli::parse_from(args);
    if let Some(conflict) = cli.command_conflict() {
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, conflict)
            .exit();
    }
    match cli.command.take() {
        None => Invocation::Daemon(cli),
        Some(command) => Invocation::Command {
            config_dirs: cli.config_dirs,
            command,
        },
    }
}

impl Cli {
    /// What of the daemon's command line was given with a command.
    fn command_conflict(&self) -> Option<String> {
        self.command.as_ref()?;
        let what = match (self.check, self.print_config) {
            (true, _) => "--check".to_string(),
            (_, true) => "--print-config".to_string(),
            _ if !self.overrides.is_empty() => format!("`{}` before the command", self.overrides.join(" ")),
            _ => return None,
        };
        Some(format!(
            "{what} cannot be used with a command; settings go after it"
        ))
    }
}

/// The part of `--help` a newcomer needs beyond the options. Everything
/// here works today; exit codes come from [`exit`].
fn long_help() -> String {
    format!(
        "\
Examples:
  debcache                                  serve with the built-in configuration
  debcache -c /etc/apt-cacher-ng            serve an apt-cacher-ng installation as it is
  debcache -c /etc/apt-cacher-ng Port=3143  the same, one setting overridden
  debcache --check -c /etc/apt-cacher-ng    what would be read, and every problem
  debcache --print-config | less            every setting's effective value

acngtool's commands, on the same configuration:
  debcache printvar ReportPage              one setting's value (exit 23: no such setting)
  debcache cfgdump                          every setting as `Name = value`
  debcache retest /debian/dists/sid/InRelease
                                            FILE_SOLID, FILE_VOLATILE or NOMATCH
  debcache encb64 user:password             the base64 of HTTP Basic authentication
  debcache maint -c /etc/apt-cacher-ng      run the expiration in the running daemon
                                            (ACNGREQ=?doCount=Count+Objects another
                                            action), its errors on stderr, as cron does
  debcache migrate --from /etc/apt-cacher-ng
                                            check an apt-cacher-ng installation and print
                                            the steps that serve it with debcache
                                            (--apply takes them)
  Linked as `acngtool` (or `expire-caller.pl`), the binary takes acngtool's
  own command line: acngtool printvar ReportPage -c /etc/apt-cacher-ng

Configuration:
  Without -c, /etc/debcache is used when it exists, else the built-in one:
  port 3142 on every address, the Debian and Ubuntu repositories, a cache in
  /var/cache/debcache when writable (else ~/.cache/debcache), no transfer log.
  A directory's *.conf files are read in alphabetical order; apt-cacher-ng's
  defaults apply to what they leave unset.

  KEY=VALUE (or KEY:VALUE) words after the options override the files, as
  with apt-cacher-ng; keys are case-insensitive, an unknown key is a usage
  error. The same keys go in the files, one `Key: value` a line.

Common settings:
  Port=3142                  TCP port, on every address unless BindAddress
                             says otherwise; 0: no TCP port
  BindAddress=ADDR...        addresses to listen on, each as HOST or HOST:PORT;
                             127.0.0.1:0 picks a free port and prints it
  CacheDir=DIR               the cache (with -c: /var/cache/apt-cacher-ng)
  LogDir=DIR                 where apt-cacher.log is written (with -c:
                             /var/log/apt-cacher-ng)
  AllowUserPorts=80          ports clients may ask for in their URLs; a mirror
                             on another port answers 403 \"prohibited port\"
                             until listed (80 8080), 0 allows any
  Proxy=http://HOST:PORT/    fetch from the mirrors through this HTTP proxy
  DrainTimeout=15            seconds open transfers get to finish on SIGTERM
  Remap-NAME=MERGING... ; BACKENDS... ; FLAGS
                             a repository, cached under CacheDir/NAME:
                             requests for any MERGING URL, or for
                             http://CACHE:3142/NAME/, share its files,
                             fetched from the BACKENDS in order (none: from
                             the URL asked for); a /WORD among the MERGING
                             URLs is one more name like NAME. In acng.conf:
                             Remap-deb: /deb deb.debian.org/debian ; http://ftp.de.debian.org/debian/

Exit codes:
  {ok:<4}success
  {check:<4}--check found errors
  {usage:<4}command-line usage error
  {unavailable:<4}cannot bind the listening sockets or lock the cache directory
  {output:<4}--check, --print-config or a command could not write its output
  {config:<4}the configuration has errors, or names a directory the daemon
      cannot write: the daemon did not start, the command did not run
  {no_such:<4}printvar: no such setting
  {maint:<4}maint: the daemon was not reached, or did not answer 200 to the end
  {no_page:<4}maint: ReportPage is empty
  128+N stopped at once by a second signal N

Signals:
  SIGTERM, SIGINT  stop accepting; open transfers get DrainTimeout seconds,
                   then are cut; a second signal stops at once
  SIGUSR1          reopen the transfer log (logrotate)
  SIGHUP           the same; the configuration is read at start-up only

Log: stderr, coloured only on a terminal and unless NO_COLOR is set;
RUST_LOG=debug adds a line per request.",
        ok = exit::OK,
        check = exit::CHECK_FAILED,
        usage = exit::USAGE,
        unavailable = exit::UNAVAILABLE,
        output = exit::OUTPUT,
        config = exit::CONFIG,
        no_such = exit::NO_SUCH_SETTING,
        maint = exit::MAINT_FAILED,
        no_page = exit::NO_REPORT_PAGE,
    )
}

impl Cli {
    /// Refuses override words that are not `KEY=VALUE` with a known key: a
    /// usage error, as acng treats them.
    pub fn validate_overrides(&self) -> Result<(), String> {
        validate_overrides(&self.overrides)
    }
}

/// The check of [`Cli::validate_overrides`], for any list of words.
pub fn validate_overrides(words: &[String]) -> Result<(), String> {
    for word in words {
        let Some(sep) = word.find([':', '=']) else {
            return Err(format!("`{word}` is not KEY=VALUE"));
        };
        let key = word[..sep].trim();
        if let Lookup::Unknown(near) = config::lookup(key) {
            let hint = near.map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
            return Err(format!("unknown directive `{key}` in `{word}`{hint}"));
        }
    }
    Ok(())
}

/// What `main` should do after the configuration-only modes.
pub enum Next {
    Exit(u8),
    Serve(Box<config::Config>),
}

/// Loads the configuration and runs `--check` / `--print-config`; for the
/// daemon, prints every problem and refuses to start on errors.
pub fn run(cli: Cli) -> Next {
    if let Err(msg) = cli.validate_overrides() {
        stderr_line(format_args!("debcache: {msg}"));
        return Next::Exit(exit::USAGE);
    }
    let loaded = config::load_dirs(&cli.config_dirs, &cli.overrides);
    if cli.check {
        let verdict = if loaded.has_errors() {
            exit::CHECK_FAILED
        } else {
            exit::OK
        };
        return Next::Exit(to_stdout(verdict, |out| {
            out.write_all(config::check_report(&loaded).as_bytes())
        }));
    }
    let failed = loaded.has_errors();
    for d in &loaded.diagnostics {
        if failed || cli.print_config {
            if d.severity >= Severity::Warning {
                stderr_line(format_args!("{d}"));
            }
        } else {
            log_diagnostic(d);
        }
    }
    match loaded.config {
        Some(config) if !failed && cli.print_config => Next::Exit(to_stdout(exit::OK, |out| {
            out.write_all(config::render(&config, cli.full).as_bytes())
        })),
        Some(config) if !failed => Next::Serve(Box::new(config)),
        _ => {
            stderr_line(format_args!("debcache: configuration errors, not starting"));
            Next::Exit(exit::CONFIG)
        }
    }
}

/// Writes a configuration-only mode's output and returns its exit code. A
/// reader that went away (`--print-config | head`) ends the command quietly
/// with the code it had anyway, as Unix tools do; any other failure to
/// write is reported.
pub(crate) fn to_stdout(code: u8, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> u8 {
    let mut out = io::BufWriter::new(io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            stderr_line(format_args!("debcache: cannot write the output: {e}"));
            exit::OUTPUT
        }
    }
}

/// One line on stderr. A closed or broken stderr (`2>&-`, a journal that
/// went away) loses the line, not the process: `eprintln!` would panic.
pub fn stderr_line(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// The start-up report of the daemon: once, through the log.
fn log_diagnostic(d: &config::Diagnostic) {
    match d.severity {
        Severity::Note => tracing::info!("{d}"),
        Severity::Warning => tracing::warn!("{d}"),
        Severity::Error => tracing::error!("{d}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("debcache").chain(args.iter().copied()))
    }

    #[test]
    fn overrides_follow_the_options() {
        let cli = parse(&["-c", "/etc/apt-cacher-ng", "--check", "Port=1", "CacheDir:/x"]).unwrap();
        assert_eq!(cli.config_dirs, [PathBuf::from("/etc/apt-cacher-ng")]);
        assert!(cli.check);
        assert_eq!(cli.overrides, ["Port=1", "CacheDir:/x"]);
        assert!(cli.validate_overrides().is_ok());
    }

    #[test]
    fn unknown_or_malformed_overrides_are_usage_errors() {
        assert!(parse(&["Nonsense=1"])
            .unwrap()
            .validate_overrides()
            .unwrap_err()
            .contains("unknown directive"));
        assert!(parse(&["Prot=1"])
            .unwrap()
            .validate_overrides()
            .unwrap_err()
            .contains("did you mean `Port`"));
        assert!(parse(&["Port"]).unwrap().validate_overrides().is_err());
        assert!(parse(&["remap-x=/x"]).unwrap().validate_overrides().is_ok());
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn commands_take_their_settings_after_them_and_the_directory_anywhere() {
        let cli = parse(&["printvar", "ReportPage", "-c", "/etc/apt-cacher-ng", "Port=1"]).unwrap();
        assert_eq!(cli.config_dirs, [PathBuf::from("/etc/apt-cacher-ng")]);
        assert_eq!(
            cli.command,
            Some(Command::Printvar {
                name: "ReportPage".into(),
                overrides: vec!["Port=1".into()]
            })
        );
        assert!(cli.overrides.is_empty() && cli.command_conflict().is_none());
        let cli = parse(&["-c", "d", "maint", "--verbose", "SocketPath=/s"]).unwrap();
        assert_eq!(
            (cli.config_dirs, cli.command),
            (
                vec![PathBuf::from("d")],
                Some(Command::Maint {
                    verbose: true,
                    overrides: vec!["SocketPath=/s".into()]
                })
            )
        );
        let cli = parse(&["encb64", "a:b"]).unwrap();
        assert_eq!(
            cli.command,
            Some(Command::Encb64 {
                credentials: "a:b".into()
            })
        );
        assert!(parse(&["retest"]).is_err(), "retest needs a path");
        assert!(parse(&["cfgdump", "--bogus"]).is_err());
    }

    #[test]
    fn the_daemons_modes_do_not_mix_with_commands() {
        for (args, conflict) in [
            (
                &["--check", "cfgdump"][..],
                "--check cannot be used with a command",
            ),
            (
                &["--print-config", "cfgdump"],
                "--print-config cannot be used with a command",
            ),
        ] {
            let cli = parse(args).unwrap();
            assert!(cli.command_conflict().unwrap().contains(conflict), "{args:?}");
        }
        // A word after a setting is a setting: `cfgdump` fails as one.
        let cli = parse(&["Port=1", "cfgdump"]).unwrap();
        assert_eq!(cli.command, None);
        assert!(cli
            .validate_overrides()
            .unwrap_err()
            .contains("`cfgdump` is not KEY=VALUE"));
        assert_eq!(parse(&["help"]).unwrap().command, None, "no help command");
    }

    #[test]
    fn check_and_print_config_exclude_each_other() {
        assert!(parse(&["--check", "--print-config"]).is_err());
        assert_eq!(
            parse(&["--bogus"]).unwrap_err().exit_code(),
            i32::from(exit::USAGE)
        );
    }
}
