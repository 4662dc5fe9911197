//! How a task's output is written (spec §8.3): HTML lines separated by
//! `<br>`, in a `<span>` of class `GOOD`, `WARNING` or `ERROR` when they
//! are not plain, every text HTML-escaped; an error also as acng's control
//! line inside an HTML comment, which `acngtool maint` prints and cron
//! mails. The page around the lines is `templates/maint.html`, split where
//! the output goes; the log file in `LogDir` is the same document without
//! the links.

use askama::Template;

use crate::admin::help::escape;

/// The marker of acng's control lines: a type digit and a text follow.
pub const CONTROL_MARKER: &str = "41d_a6aeb8-26dfa";

/// What a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Good,
    Warning,
    /// An error the page shows, and a context control line: cron hears of
    /// it only with the error line of the task's verdict (an expiration's
    /// `ExSuppressAdminNotification`).
    Problem,
    /// Also a control line: cron mails it.
    Error,
}

/// One line of output, rendered.
pub fn line(kind: Kind, text: &str) -> String {
    let html = escape(text);
    match kind {
        Kind::Plain => format!("{html}<br>\n"),
        Kind::Good => format!("<span class=\"GOOD\">{html}</span><br>\n"),
        Kind::Warning => format!("<span class=\"WARNING\">{html}</span><br>\n"),
        // A context line: acngtool prints it only before an error line.
        Kind::Problem => format!(
            "<span class=\"ERROR\">{html}</span><br>\n{}",
            control_line(ControlType::Context, text)
        ),
        // The control line keeps the text as it is: acngtool prints it.
        Kind::Error => format!(
            "<span class=\"ERROR\">{html}</span><br>\n{}",
            control_line(ControlType::Error, text)
        ),
    }
}

/// The kinds of acng's control lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlType {
    /// Printed before an error, to say what led to it (an expiration's
    /// errors, before its verdict).
    Context = 1,
    Error = 2,
}

/// acng's machine-readable line, in a comment of its own: the marker, the
/// type digit, the text (on one line, and never ending the comment early).
pub fn control_line(kind: ControlType, text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    // `--` may not appear inside an HTML comment; `>` after it would end it.
    let safe = one_line.replace("--", "- -");
    format!("<!--\n{CONTROL_MARKER}{}{safe}\n-->\n", kind as u8)
}

#[derive(Template)]
#[template(path = "maint.html")]
struct Page<'a> {
    title: &'a str,
    name: &'a str,
    version: &'static str,
    cancel: Option<&'a str>,
    report: Option<&'a str>,
}

/// Where the output goes in the rendered template.
const OUTPUT: &str = "<!--output-->";

/// The parts of a page before and after a task's output.
#[derive(Clone, Debug)]
pub struct Frame {
    pub head: String,
    pub tail: String,
}

/// The page a browser gets: a Cancel link and one back to the report.
pub fn page(name: &str, authority: &str, cancel: &str, report: &str) -> Result<Frame, askama::Error> {
    frame(&Page {
        title: &format!("{name}: debcache at {authority}"),
        name,
        version: env!("CARGO_PKG_VERSION"),
        cancel: Some(cancel),
        report: Some(report),
    })
}

/// The log file's document: no links, the start in the title.
pub fn log_document(name: &str, started: &str) -> Result<Frame, askama::Error> {
    frame(&Page {
        title: &format!("{name}, started {started}"),
        name,
        version: env!("CARGO_PKG_VERSION"),
        cancel: None,
        report: None,
    })
}

fn frame(page: &Page<'_>) -> Result<Frame, askama::Error> {
    let text = page.render()?;
    // Values are escaped, so the marker is only the template's own.
    let (head, tail) = text.split_once(OUTPUT).unwrap_or((&text, ""));
    Ok(Frame {
        head: head.to_string(),
        tail: tail.to_string(),
    })
}

/// `2026-11-22 02:32`: a time in UTC to the minute, as acng's log
/// analysis labels its windows (`%Y-%m-%d %H:%M`).
pub fn utc_minute(unix: u64) -> String {
    let (days, secs) = ((unix / 86_400) as i64, unix % 86_400);
    let (y, m, d) = crate::calendar::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_acngs_labels() {
        for (unix, text) in [
            (0, "1970-01-01 00:00"),
            (1_795_314_756, "2026-11-22 02:32"),
            (951_782_400, "2000-02-29 00:00"),
            (4_107_542_400, "2100-03-01 00:00"),
        ] {
            assert_eq!(utc_minute(unix), text);
        }
    }

    #[test]
    fn lines_are_escaped_and_classed() {
        assert_eq!(line(Kind::Plain, "a < b & c"), "a &lt; b &amp; c<br>\n");
        assert_eq!(
            line(Kind::Good, "<done>"),
            "<span class=\"GOOD\">&lt;done&gt;</span><br>\n"
        );
        assert_eq!(
            line(Kind::Warning, "careful"),
            "<span class=\"WARNING\">careful</span><br>\n"
        );
        assert!(!line(Kind::Warning, "x").contains(CONTROL_MARKER));
        assert_eq!(
            line(Kind::Problem, "bad"),
            format!("<span class=\"ERROR\">bad</span><br>\n<!--\n{CONTROL_MARKER}1bad\n-->\n")
        );
    }

    #[test]
    fn errors_carry_acngs_control_line() {
        let text = line(Kind::Error, "cannot read r/<x>");
        assert_eq!(
            text,
            "<span class=\"ERROR\">cannot read r/&lt;x&gt;</span><br>\n<!--\n41d_a6aeb8-26dfa2cannot read r/<x>\n-->\n"
        );
    }

    #[test]
    fn a_control_line_stays_one_line_inside_its_comment() {
        let text = control_line(ControlType::Error, "a\nb --> c\r\n");
        assert_eq!(text, "<!--\n41d_a6aeb8-26dfa2a b - -> c  \n-->\n");
        assert_eq!(text.matches("-->").count(), 1);
        assert!(control_line(ControlType::Context, "x").contains("26dfa1x"));
    }

    #[test]
    fn the_page_frames_the_output_with_a_cancel_link() {
        let frame = page(
            "Count <Objects>",
            "cache:3142",
            "?doCount=1&sigabort=7",
            "/acng-report.html",
        )
        .unwrap();
        assert!(frame
            .head
            .contains("Maintenance task <b>Count &#60;Objects&#62;</b>, debcache"));
        assert!(frame
            .head
            .contains("<a href=\"?doCount=1&#38;sigabort=7\">Cancel</a>"));
        assert!(frame.head.contains(".WARNING{color:orange}") && frame.head.contains(".ERROR{color:red}"));
        assert!(frame.tail.contains("href=\"/acng-report.html\"") && frame.tail.ends_with("</html>"));
        assert!(!frame.head.contains(OUTPUT) && !frame.tail.contains(OUTPUT));
        let log = log_document("Count Objects", "2026-12-02 14:05").unwrap();
        assert!(!log.head.contains("Cancel") && !log.tail.contains("<a "));
        assert!(log.head.contains("started 2026-12-02 14:05"));
    }
}
