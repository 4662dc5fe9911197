//! Writes debcache(8) to stdout: the parts clap knows (synopsis, options,
//! each command and its arguments) generated from the command-line
//! definitions, so the page cannot drift from `--help`, then the
//! hand-written part on configuration, signals, files and exit codes.
//!
//! `cargo run --example man -- packaging/debcache.8.in DATE > debcache.8`
//! (`packaging/build-deb` runs it; DATE is the changelog's, so that the page
//! of one version is always the same bytes).

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command, CommandFactory};
use clap_mangen::Man;
use roff::{bold, italic, roman, Inline, Roff};

/// `mandoc -Tlint` asks for source lines of at most 80 bytes.
const WIDTH: usize = 80;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(hand_written), Some(date), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: man HAND-WRITTEN.8.in DATE");
        return ExitCode::from(2);
    };
    let hand_written = match std::fs::read_to_string(&hand_written) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("man: cannot read {hand_written}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match render(&hand_written, &date) {
        Ok(page) => match io::stdout().lock().write_all(wrap(&page).as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("man: cannot write the page: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("man: cannot render the page: {e}");
            ExitCode::FAILURE
        }
    }
}

fn render(hand_written: &str, date: &str) -> io::Result<String> {
    let mut cli = debcache::cli::Cli::command();
    cli.build();
    let man = Man::new(cli.clone())
        .title("DEBCACHE")
        .section("8")
        .date(date)
        .source(format!("debcache {}", env!("CARGO_PKG_VERSION")))
        .manual("System Administration");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    commands(&cli).to_writer(&mut page)?;
    page.extend_from_slice(hand_written.as_bytes());
    String::from_utf8(page).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// COMMANDS: each subcommand's usage, its description and its arguments.
/// clap_mangen lists subcommands by name only, pointing at a page each.
fn commands(cli: &Command) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut line = vec![bold(format!("debcache {}", sub.get_name()))];
        for arg in visible(sub).filter(|a| a.is_positional()) {
            line.push(roman(" "));
            line.extend(usage(arg));
        }
        if visible(sub).any(|a| !a.is_positional()) {
            line.push(roman(" [options]"));
        }
        roff.control("TP", []).text(line);
        let about = sub.get_long_about().or(sub.get_about());
        roff.text([roman(about.map(|s| s.to_string()).unwrap_or_default())]);
        let described: Vec<(&Arg, String)> = visible(sub)
            .filter_map(|arg| Some((arg, arg.get_long_help().or(arg.get_help())?.to_string())))
            .collect();
        if described.is_empty() {
            continue;
        }
        roff.control("RS", []);
        for (arg, mut text) in described {
            if let Some(default) = arg.get_default_values().first().filter(|_| takes_value(arg)) {
                text.push_str(&format!(" (default: {})", default.to_string_lossy()));
            }
            roff.control("TP", []).text(usage(arg)).text([roman(text)]);
        }
        roff.control("RE", []);
    }
    roff
}

fn visible(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set())
        .filter(|a| {
            !matches!(
                a.get_action(),
                ArgAction::Help | ArgAction::HelpLong | ArgAction::Version
            )
        })
}

fn takes_value(arg: &Arg) -> bool {
    !matches!(
        arg.get_action(),
        ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count
    )
}

/// `-n`, `--from DIR`, `NAME` or `[KEY=VALUE...]`, as a synopsis spells it.
fn usage(arg: &Arg) -> Vec<Inline> {
    let value = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(|n| n.to_string())
        .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
    if arg.is_positional() {
        let mut text = value;
        if matches!(arg.get_action(), ArgAction::Append) {
            text.push_str("...");
        }
        return if arg.is_required_set() {
            vec![italic(text)]
        } else {
            vec![roman("["), italic(text), roman("]")]
        };
    }
    let flag = match (arg.get_short(), arg.get_long()) {
        (_, Some(long)) => format!("--{long}"),
        (Some(short), None) => format!("-{short}"),
        (None, None) => value.clone(),
    };
    let mut inlines = vec![bold(flag)];
    if takes_value(arg) {
        inlines.extend([roman(" "), italic(value)]);
    }
    inlines
}

/// Breaks text lines longer than WIDTH between words: the roff crate
/// writes each paragraph as one line. In fill mode a line break is a space
/// to roff. A line is never broken at an escaped space (`\ `), nor before a
/// word that would then read as a request (`.` or `'`); requests are left
/// as they are.
fn wrap(page: &str) -> String {
    let mut out = String::with_capacity(page.len() + page.len() / WIDTH);
    for line in page.lines() {
        if line.len() <= WIDTH || line.starts_with(['.', '\'']) {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut width = 0;
        let mut words = line.split(' ').peekable();
        while let Some(word) = words.next() {
            out.push_str(word);
            width += word.len();
            let Some(next) = words.peek() else { break };
            let escaped = word.ends_with('\\') && !word.ends_with("\\\\");
            let breakable = !escaped && !next.is_empty() && !next.starts_with(['.', '\'']);
            if breakable && width + 1 + next.len() > WIDTH {
                out.push('\n');
                width = 0;
            } else {
                out.push(' ');
                width += 1;
            }
        }
        out.push('\n');
    }
    out
}
