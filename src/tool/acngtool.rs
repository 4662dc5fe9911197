//! acngtool's own command line, for the binary linked as `acngtool` (or
//! `expire-caller.pl`, which is `acngtool maint`), parsed as acngtool
//! 3.7.4 parses it, so that scripts written for it, Debian's cron job
//! first, run unchanged:
//!
//! `acngtool COMMAND [ARGS] [OPTIONS]`, the options anywhere among the
//! words, in order:
//!
//! | word | meaning |
//! |---|---|
//! | `-h…` (any word that starts so) | the usage on stderr, exit 0 |
//! | `-c DIR` | the configuration directory (the last one counts); `-c` last: the usage, exit 2 |
//! | `--verbose` | `maint` prints every line of the task's output |
//! | `-i` | accepted (acng: configuration read errors are not fatal); debcache refuses a bad configuration whatever |
//! | empty | skipped |
//! | `KEY=VALUE`, `KEY:VALUE` with a known key | a setting, over the files |
//! | anything else | the command, then its arguments |
//!
//! Then: no command → the usage on stdout, exit 3; a command debcache
//! does not have → exit 1 (so too acngtool's `curl`, `patch`); more
//! arguments than it takes → exit 2; fewer → exit 4 (acngtool says
//! nothing, debcache says what is missing). `shrink SIZE` takes its flags
//! `-n`, `-f`, `-x`, `-v` among the words; neither `-n` nor `-f` → exit
//! 97, both → 107, acngtool's codes.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;

use crate::cli::{stderr_line, Alias, Command};
use crate::config::{self, Lookup};

const USAGE: &str = "\
Usage: acngtool command parameter... [options]

command := { printvar, cfgdump, retest, encb64, maint, shrink }
parameter := (specific to command)
options := -c DIR, KEY=VALUE... (as for the daemon, see debcache --help)
extra options := -h, --verbose
";

/// What the words come to.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run {
        config_dir: Option<PathBuf>,
        command: Command,
    },
    Exit(Usage),
}

/// A usage outcome: what to print and the exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum Usage {
    /// `-h`: the usage on stderr, exit 0.
    Help,
    /// The usage on stdout, exit with this code.
    Wrong(u8),
    /// A command given without its argument: exit 4.
    Missing {
        command: &'static str,
        argument: &'static str,
    },
    /// `shrink` without `-n` or `-f` (97), or with both (107).
    ShrinkMode(u8),
}

impl Usage {
    /// Prints it; the exit code.
    pub fn report(&self) -> u8 {
        match self {
            Usage::Help => {
                let _ = std::io::stderr().lock().write_all(USAGE.as_bytes());
                0
            }
            Usage::Wrong(code) => {
                let _ = std::io::stdout().lock().write_all(USAGE.as_bytes());
                *code
            }
            Usage::Missing { command, argument } => {
                stderr_line(format_args!("acngtool: {command} needs {argument}"));
                4
            }
            Usage::ShrinkMode(code) => {
                let what = if *code == 97 {
                    "needs -f or -n"
                } else {
                    "-f and -n are mutually exclusive"
                };
                stderr_line(format_args!(
                    "acngtool: shrink {what}: shrink SIZE (-f | -n) [-x] [-v]"
                ));
                *code
            }
        }
    }
}

/// The commands: name, argument (if it takes one).
const COMMANDS: [(&str, Option<&str>); 6] = [
    ("printvar", Some("the name of a setting")),
    ("cfgdump", None),
    ("retest", Some("a path")),
    ("encb64", Some("USER:PASSWORD")),
    ("maint", None),
    ("shrink", Some("a size")),
];

/// Parses the command line; `args` include the program name.
pub fn parse(alias: Alias, args: Vec<OsString>) -> Parsed {
    let mut words = args.into_iter();
    // expire-caller.pl's own name stands where the command would.
    let _program = words.next();
    let words: Vec<OsString> = match alias {
        Alias::Acngtool => words.collect(),
        Alias::ExpireCaller => std::iter::once(OsString::from("maint")).chain(words).collect(),
    };
    match parse_words(words) {
        Ok(parsed) => parsed,
        Err(usage) => Parsed::Exit(usage),
    }
}

fn parse_words(words: Vec<OsString>) -> Result<Parsed, Usage> {
    let mut config_dir = None;
    let mut verbose = false;
    let mut rest = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        match word.as_encoded_bytes() {
            w if w.starts_with(b"-h") => return Err(Usage::Help),
            b"-c" => config_dir = Some(PathBuf::from(words.next().ok_or(Usage::Wrong(2))?)),
            b"--verbose" => verbose = true,
            b"-i" | b"" => {}
            _ => rest.push(word),
        }
    }
    let (overrides, mut positional): (Vec<OsString>, Vec<OsString>) =
        rest.into_iter().partition(|w| w.to_str().is_some_and(is_setting));
    let overrides = overrides
        .into_iter()
        .filter_map(|w| w.into_string().ok())
        .collect();
    if positional.is_empty() {
        return Err(Usage::Wrong(3));
    }
    let first = positional.remove(0);
    // shrink's flags are words of their own.
    let mut flags = HashSet::new();
    if first == "shrink" {
        positional.retain(|w| match w.to_str() {
            Some(flag @ ("-n" | "-f" | "-x" | "-v")) => {
                flags.insert(flag.to_string());
                false
            }
            _ => true,
        });
    }
    let Some(&(name, argument)) = COMMANDS.iter().find(|(n, _)| first == *n) else {
        return Err(Usage::Wrong(1));
    };
    let wanted = usize::from(argument.is_some());
    if positional.len() > wanted {
        return Err(Usage::Wrong(2));
    }
    let mut arg = positional.pop();
    let mut missing = || {
        arg.take().ok_or(Usage::Missing {
            command: name,
            argument: argument.unwrap_or_default(),
        })
    };
    let text = |arg: OsString| arg.to_string_lossy().into_owned();
    let command = match name {
        "printvar" => Command::Printvar {
            name: text(missing()?),
            overrides,
        },
        "retest" => Command::Retest {
            path: text(missing()?),
            overrides,
        },
        "encb64" => Command::Encb64 {
            credentials: missing()?,
        },
        "cfgdump" => Command::Cfgdump { overrides },
        "shrink" => {
            let size = text(missing()?);
            let (dry_run, force) = (flags.contains("-n"), flags.contains("-f"));
            if dry_run == force {
                return Err(Usage::ShrinkMode(if dry_run { 107 } else { 97 }));
            }
            Command::Shrink {
                size,
                dry_run,
                force,
                volatile: flags.contains("-x"),
                verbose: flags.contains("-v"),
                overrides,
            }
        }
        _ => Command::Maint { verbose, overrides },
    };
    Ok(Parsed::Run { config_dir, command })
}

/// `KEY=VALUE` or `KEY:VALUE` with a key the configuration knows: acngtool
/// takes a word as a setting when its configuration accepts it.
fn is_setting(word: &str) -> bool {
    word.find([':', '='])
        .is_some_and(|sep| !matches!(config::lookup(word[..sep].trim()), Lookup::Unknown(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    fn acngtool(line: &str) -> Parsed {
        parse(
            Alias::Acngtool,
            words(&format!("/usr/lib/apt-cacher-ng/acngtool {line}")),
        )
    }

    fn run(config_dir: Option<&str>, command: Command) -> Parsed {
        Parsed::Run {
            config_dir: config_dir.map(PathBuf::from),
            command,
        }
    }

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn debians_cron_job_parses() {
        assert_eq!(
            acngtool("-c /etc/apt-cacher-ng printvar ReportPage"),
            run(
                Some("/etc/apt-cacher-ng"),
                Command::Printvar {
                    name: "ReportPage".into(),
                    overrides: vec![]
                }
            )
        );
        assert_eq!(
            acngtool("maint -c /etc/apt-cacher-ng SocketPath=/var/run/apt-cacher-ng/socket"),
            run(
                Some("/etc/apt-cacher-ng"),
                Command::Maint {
                    verbose: false,
                    overrides: strings(&["SocketPath=/var/run/apt-cacher-ng/socket"])
                }
            )
        );
    }

    #[test]
    fn options_and_settings_go_anywhere() {
        assert_eq!(
            acngtool("Port:3143 --verbose maint -c a -i  -c b reportpage=x.html"),
            run(
                Some("b"),
                Command::Maint {
                    verbose: true,
                    overrides: strings(&["Port:3143", "reportpage=x.html"])
                }
            )
        );
        assert_eq!(
            acngtool("retest CacheDir=/x /debian/pool/a.deb"),
            run(
                None,
                Command::Retest {
                    path: "/debian/pool/a.deb".into(),
                    overrides: strings(&["CacheDir=/x"])
                }
            )
        );
        assert_eq!(
            acngtool("encb64 admin:secret"),
            run(
                None,
                Command::Encb64 {
                    credentials: "admin:secret".into()
                }
            )
        );
        assert_eq!(
            acngtool("cfgdump Remap-x=/x"),
            run(
                None,
                Command::Cfgdump {
                    overrides: strings(&["Remap-x=/x"])
                }
            )
        );
    }

    #[test]
    fn usage_codes_are_acngtools() {
        assert_eq!(acngtool("-h"), Parsed::Exit(Usage::Help));
        assert_eq!(acngtool("maint -help"), Parsed::Exit(Usage::Help));
        assert_eq!(acngtool(""), Parsed::Exit(Usage::Wrong(3)));
        assert_eq!(acngtool("Port=1"), Parsed::Exit(Usage::Wrong(3)));
        assert_eq!(acngtool("--help"), Parsed::Exit(Usage::Wrong(1)));
        assert_eq!(acngtool("bogus"), Parsed::Exit(Usage::Wrong(1)));
        assert_eq!(acngtool("shrink 10G"), Parsed::Exit(Usage::ShrinkMode(97)));
        assert_eq!(acngtool("shrink -n 10G -f"), Parsed::Exit(Usage::ShrinkMode(107)));
        assert_eq!(
            acngtool("shrink -n"),
            Parsed::Exit(Usage::Missing {
                command: "shrink",
                argument: "a size"
            })
        );
        assert_eq!(
            acngtool("shrink -x 10G -f -c /etc/acng Port=1"),
            Parsed::Run {
                config_dir: Some(PathBuf::from("/etc/acng")),
                command: Command::Shrink {
                    size: "10G".into(),
                    dry_run: false,
                    force: true,
                    volatile: true,
                    verbose: false,
                    overrides: vec!["Port=1".into()],
                },
            }
        );
        assert_eq!(acngtool("Maint"), Parsed::Exit(Usage::Wrong(1)));
        assert_eq!(acngtool("maint extra"), Parsed::Exit(Usage::Wrong(2)));
        assert_eq!(acngtool("encb64 a b"), Parsed::Exit(Usage::Wrong(2)));
        assert_eq!(acngtool("printvar Port Bogus=1"), Parsed::Exit(Usage::Wrong(2)));
        assert_eq!(acngtool("maint -c"), Parsed::Exit(Usage::Wrong(2)));
        assert_eq!(
            acngtool("printvar"),
            Parsed::Exit(Usage::Missing {
                command: "printvar",
                argument: "the name of a setting"
            })
        );
        assert!(matches!(
            acngtool("retest -c /x"),
            Parsed::Exit(Usage::Missing {
                command: "retest",
                ..
            })
        ));
    }

    #[test]
    fn expire_caller_is_maint() {
        assert_eq!(
            parse(
                Alias::ExpireCaller,
                words("/usr/share/apt-cacher-ng/expire-caller.pl -c d Port=1")
            ),
            run(
                Some("d"),
                Command::Maint {
                    verbose: false,
                    overrides: strings(&["Port=1"])
                }
            )
        );
        assert_eq!(
            parse(Alias::ExpireCaller, words("expire-caller.pl printvar")),
            Parsed::Exit(Usage::Wrong(2))
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_arguments() {
        use std::os::unix::ffi::OsStringExt as _;
        let odd = OsString::from_vec(b"u:\xff".to_vec());
        let args = vec!["acngtool".into(), "encb64".into(), odd.clone()];
        assert_eq!(
            parse(Alias::Acngtool, args),
            run(None, Command::Encb64 { credentials: odd })
        );
    }

    #[test]
    fn the_names_are_recognised_by_their_last_component() {
        use std::ffi::OsStr;
        assert_eq!(
            Alias::of(OsStr::new("/usr/lib/apt-cacher-ng/acngtool")),
            Some(Alias::Acngtool)
        );
        assert_eq!(Alias::of(OsStr::new("acngtool")), Some(Alias::Acngtool));
        assert_eq!(
            Alias::of(OsStr::new("./expire-caller.pl")),
            Some(Alias::ExpireCaller)
        );
        assert_eq!(Alias::of(OsStr::new("/usr/sbin/debcache")), None);
        assert_eq!(Alias::of(OsStr::new("acngtool2")), None);
        assert_eq!(Alias::of(OsStr::new("")), None);
    }
}
