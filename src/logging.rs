//! The daemon's own log: to stderr, `RUST_LOG` choosing what (`info` by
//! default), in journald's form when stderr is the journal, and its
//! warnings and errors also to `LogDir/apt-cacher.err` (acng's error log),
//! once the configuration says where that is.
//!
//! | stderr is | a line looks like |
//! |---|---|
//! | the journal (`JOURNAL_STREAM` names it) | `<4>debcache::cache: text`: the level as syslog's priority, no time (the journal keeps its own) |
//! | a terminal | tracing's default, in colour unless `NO_COLOR` |
//! | anything else | tracing's default, without colour |

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, IsTerminal};
use std::sync::{Arc, OnceLock};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::log::TransferLog;

/// Where warnings and errors are copied once the daemon opened its logs.
#[derive(Clone, Debug, Default)]
pub struct ErrorLog(Arc<OnceLock<Arc<TransferLog>>>);

impl ErrorLog {
    /// From now on, warnings and errors go to `log`'s `apt-cacher.err` too.
    pub fn attach(&self, log: &Arc<TransferLog>) {
        let _ = self.0.set(Arc::clone(log));
    }
}

/// Installs the log; the returned handle attaches `apt-cacher.err`.
pub fn init() -> ErrorLog {
    let errors = ErrorLog::default();
    let journal = is_journal(std::env::var_os("JOURNAL_STREAM").as_deref());
    let colour = !journal
        && wants_colour(
            io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(io::stderr)
        .with_ansi(colour)
        // A broken stderr would otherwise be reported with `eprintln!`, which
        // panics in whichever task was logging.
        .log_internal_errors(false)
        .event_format(Style {
            journal,
            default: format::Format::default(),
        });
    tracing_subscriber::registry()
        .with(stderr.with_filter(filter()))
        .with(ErrorFile(errors.clone()).with_filter(filter()))
        .init();
    errors
}

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
}

/// Colour is for people: only on a terminal, and never when `NO_COLOR` is
/// set to anything but the empty string (no-color.org). A file or the
/// journal would keep the escape codes as noise.
fn wants_colour(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Whether stderr is the stream `JOURNAL_STREAM` (`device:inode`) names:
/// systemd sets it for the service, and a child whose stderr went
/// elsewhere must not take it for the journal.
fn is_journal(stream: Option<&OsStr>) -> bool {
    let Some((dev, ino)) = stream.and_then(OsStr::to_str).and_then(|s| s.split_once(':')) else {
        return false;
    };
    let Ok(st) = rustix::fs::fstat(std::os::fd::AsFd::as_fd(&io::stderr())) else {
        return false;
    };
    dev.parse() == Ok(st.st_dev) && ino.parse() == Ok(st.st_ino)
}

/// syslog's priority of a level, as journald reads it from `<N>`.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

struct Style {
    journal: bool,
    default: format::Format,
}

impl<S, N> FormatEvent<S, N> for Style
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if !self.journal {
            return self.default.format_event(ctx, writer, event);
        }
        let meta = event.metadata();
        write!(writer, "<{}>{}: ", priority(*meta.level()), meta.target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Copies warnings and errors to `apt-cacher.err`.
struct ErrorFile(ErrorLog);

impl<S: Subscriber> Layer<S> for ErrorFile {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() > Level::WARN {
            return;
        }
        let Some(log) = self.0 .0.get() else { return };
        let mut text = Text::default();
        event.record(&mut text);
        log.error_line(&text.0);
    }
}

/// An event's message, then its other fields as `name=value`.
#[derive(Default)]
struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        use std::fmt::Write;
        let sep = if self.0.is_empty() { "" } else { " " };
        let _ = match field.name() {
            "message" => write!(self.0, "{sep}{value:?}"),
            name => write!(self.0, "{sep}{name}={value:?}"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(wants_colour(true, None));
        assert!(wants_colour(true, Some(OsStr::new(""))));
        assert!(!wants_colour(true, Some(OsStr::new("1"))));
        assert!(!wants_colour(false, None));
        assert!(!wants_colour(false, Some(OsStr::new(""))));
    }

    #[test]
    fn levels_are_syslog_priorities() {
        assert_eq!(
            [Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG, Level::TRACE].map(priority),
            [3, 4, 6, 7, 7]
        );
    }

    #[test]
    fn only_the_stream_it_names_is_the_journal() {
        let st = rustix::fs::fstat(std::os::fd::AsFd::as_fd(&io::stderr())).unwrap();
        let ours = format!("{}:{}", st.st_dev, st.st_ino);
        assert!(is_journal(Some(OsStr::new(&ours))));
        assert!(!is_journal(Some(OsStr::new("1:2"))));
        assert!(!is_journal(Some(OsStr::new("garbage"))));
        assert!(!is_journal(None));
    }
}
