//! What `maint` shows while a task's page streams in: acng's control lines
//! on stderr (context before its error), and the task's progress:
//!
//! | stderr | `--verbose` | shows |
//! |---|---|---|
//! | a terminal | no | the task's latest line, rewritten in place on stderr, cleared at the end |
//! | anything | yes | every line of the task's output on stdout |
//! | not a terminal | no | nothing but the errors: cron mails any output, so a run that went well stays silent |

use std::io::{self, Write};

use super::control::{control, task_line, Errors, Lines};
use crate::cli::stderr_line;

/// The longest status line drawn (a terminal of 80 columns).
const STATUS_WIDTH: usize = 79;

/// The stream's lines and what becomes of them.
#[derive(Debug)]
pub struct View {
    lines: Lines,
    shown: Shown,
}

#[derive(Debug)]
struct Shown {
    errors: Errors,
    progress: Progress,
}

#[derive(Debug)]
enum Progress {
    /// A status line on the terminal (every line redraws it: a line
    /// skipped to save writes could stay up through a quiet phase);
    /// whether one is drawn.
    Status {
        drawn: bool,
    },
    Verbose,
    Quiet,
}

impl View {
    pub fn new(verbose: bool, terminal: bool) -> View {
        let progress = match (verbose, terminal) {
            (true, _) => Progress::Verbose,
            (false, true) => Progress::Status { drawn: false },
            (false, false) => Progress::Quiet,
        };
        View {
            lines: Lines::default(),
            shown: Shown {
                errors: Errors::default(),
                progress,
            },
        }
    }

    /// Bytes of the page's body, as they come.
    pub fn feed(&mut self, bytes: &[u8]) {
        let shown = &mut self.shown;
        self.lines.feed(bytes, &mut |line| shown.line(line));
    }

    /// The page has ended (or broken off): its last line, the status line
    /// cleared.
    pub fn finish(&mut self) {
        let shown = &mut self.shown;
        self.lines.finish(&mut |line| shown.line(line));
        shown.clear_status();
    }
}

impl Shown {
    fn line(&mut self, line: &[u8]) {
        if let Some(control) = control(line) {
            let lines = self.errors.take(control);
            if !lines.is_empty() {
                self.clear_status();
            }
            for text in lines {
                stderr_line(format_args!("{text}"));
            }
            return;
        }
        let Some(text) = task_line(line) else {
            return;
        };
        match &mut self.progress {
            Progress::Verbose => {
                let _ = writeln!(io::stdout().lock(), "{text}");
            }
            Progress::Status { drawn } => {
                let shown: String = text.chars().take(STATUS_WIDTH).collect();
                let mut err = io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K{shown}");
                let _ = err.flush();
                *drawn = true;
            }
            Progress::Quiet => {}
        }
    }

    fn clear_status(&mut self) {
        if let Progress::Status { drawn } = &mut self.progress {
            if *drawn {
                let mut err = io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
                *drawn = false;
            }
        }
    }
}
