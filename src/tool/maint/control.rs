//! Reading a task's page as it streams: its lines, however the reads cut
//! them; acng's control lines among them (spec §8.3: the marker, a type
//! digit, the text to the end of the line), which go to stderr, cron's
//! mail; and the task's own lines (`text<br>`), for its progress.
//!
//! - A "context" line (type 1) waits for the next error (type 2) and is
//!   printed before it, once. acngtool prints every context line seen so
//!   far again with each error; once is what the context is for.
//! - Any bytes are taken: a line longer than [`MAX_LINE`] is cut there,
//!   at most [`MAX_CONTEXT`] context lines wait, text that is not UTF-8 or
//!   holds control characters (a terminal's escapes) is made printable.

use std::collections::VecDeque;

use crate::admin::maintenance::CONTROL_MARKER;

/// The longest line kept; the rest of a longer one is dropped.
pub const MAX_LINE: usize = 64 * 1024;
/// Context lines kept waiting for an error; older ones are dropped.
pub const MAX_CONTEXT: usize = 100;

/// Splits a byte stream into lines (without their `\n`).
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
    /// The line being gathered was cut at `MAX_LINE`.
    cut: bool,
}

impl Lines {
    /// Hands every line that `bytes` completes to `each`.
    pub fn feed(&mut self, mut bytes: &[u8], each: &mut dyn FnMut(&[u8])) {
        while let Some(at) = memchr::memchr(b'\n', bytes) {
            let (line, rest) = (&bytes[..at], &bytes[at + 1..]);
            if self.partial.is_empty() && !self.cut {
                each(&line[..line.len().min(MAX_LINE)]);
            } else {
                self.gather(line);
                each(&self.partial);
                self.partial.clear();
            }
            self.cut = false;
            bytes = rest;
        }
        self.gather(bytes);
    }

    /// The end of the stream: a last line without its `\n`.
    pub fn finish(&mut self, each: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() {
            each(&self.partial);
        }
        self.partial.clear();
        self.cut = false;
    }

    fn gather(&mut self, bytes: &[u8]) {
        let room = MAX_LINE - self.partial.len();
        if bytes.len() > room {
            self.cut = true;
        }
        self.partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// A control line's meaning.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    /// Where the next error happened.
    Context(String),
    Error(String),
}

/// The control line in `line`, if it is one (an empty text or an unknown
/// type is none, as for acngtool).
pub fn control(line: &[u8]) -> Option<Control> {
    let at = memchr::memmem::find(line, CONTROL_MARKER.as_bytes())?;
    let (&kind, text) = line[at + CONTROL_MARKER.len()..].split_first()?;
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if text.is_empty() {
        return None;
    }
    let text = printable(&String::from_utf8_lossy(text));
    match kind {
        b'1' => Some(Control::Context(text)),
        b'2' => Some(Control::Error(text)),
        _ => None,
    }
}

/// Context lines waiting for their error, and the errors seen.
#[derive(Debug, Default)]
pub struct Errors {
    context: VecDeque<String>,
    pub count: usize,
}

impl Errors {
    /// The lines to print now for a control line, in order.
    pub fn take(&mut self, control: Control) -> Vec<String> {
        match control {
            Control::Context(text) => {
                if self.context.len() == MAX_CONTEXT {
                    self.context.pop_front();
                }
                self.context.push_back(text);
                Vec::new()
            }
            Control::Error(text) => {
                self.count += 1;
                let mut lines: Vec<String> = self.context.drain(..).collect();
                lines.push(text);
                lines
            }
        }
    }
}

/// The text of one of the task's output lines (`text<br>`, in a `<span>`
/// or not), its tags dropped and its character references decoded; `None`
/// for any other line of the page.
pub fn task_line(line: &[u8]) -> Option<String> {
    let html = String::from_utf8_lossy(line);
    let html = html.trim_end();
    let body = html.strip_suffix("<br>")?;
    let mut text = String::with_capacity(body.len());
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = printable(&unescape(&text));
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// `&lt;`, `&#60;`, `&#x3c;` and the other references an escaper writes;
/// anything else stays as it is.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest[1..]
            .find(';')
            .filter(|&end| end <= 10)
            .and_then(|end| reference(&rest[1..=end]).map(|c| (c, end + 2)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character of a reference's name (`lt`, `#60`, `#x3c`).
fn reference(name: &str) -> Option<char> {
    let code = match name {
        "lt" => return Some('<'),
        "gt" => return Some('>'),
        "amp" => return Some('&'),
        "quot" => return Some('"'),
        "apos" => return Some('\''),
        "nbsp" => return Some(' '),
        _ => {
            let number = name.strip_prefix('#')?;
            match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            }
        }
    };
    char::from_u32(code)
}

/// Control characters (a terminal's escape sequences among them) made
/// visible as `�`; tabs stay.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::maintenance::{control_line, ControlType};

    fn lines_of(input: &[u8], step: usize) -> Vec<Vec<u8>> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            lines.feed(piece, &mut |l| out.push(l.to_vec()));
        }
        lines.finish(&mut |l| out.push(l.to_vec()));
        out
    }

    /// What the daemon writes for a task with an error (output.rs).
    fn page() -> String {
        format!(
            "<p>Maintenance task <b>Expiration</b></p>\nChecking &lt;x&gt;...<br>\n{}{}<span class=\"ERROR\">bad</span><br>\n",
            control_line(ControlType::Context, "in dists/sid/InRelease"),
            control_line(ControlType::Error, "Errors found, aborting expiration..."),
        )
    }

    /// The control lines of a stream fed in pieces of `step` bytes.
    fn controls(input: &[u8], step: usize) -> Vec<Control> {
        lines_of(input, step).iter().filter_map(|l| control(l)).collect()
    }

    #[test]
    fn control_lines_are_found_however_the_stream_is_cut() {
        let page = page();
        for step in 1..=page.len() {
            assert_eq!(
                controls(page.as_bytes(), step),
                [
                    Control::Context("in dists/sid/InRelease".into()),
                    Control::Error("Errors found, aborting expiration...".into())
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn context_waits_for_its_error_and_is_printed_once() {
        let mut errors = Errors::default();
        assert!(errors.take(Control::Context("a".into())).is_empty());
        assert!(errors.take(Control::Context("b".into())).is_empty());
        assert_eq!(errors.take(Control::Error("e1".into())), ["a", "b", "e1"]);
        assert_eq!(errors.take(Control::Error("e2".into())), ["e2"]);
        for i in 0..MAX_CONTEXT + 5 {
            errors.take(Control::Context(i.to_string()));
        }
        let printed = errors.take(Control::Error("e3".into()));
        assert_eq!(printed.len(), MAX_CONTEXT + 1);
        assert_eq!(printed[0], "5");
        assert_eq!(errors.count, 3);
    }

    #[test]
    fn a_control_line_is_the_marker_a_type_and_a_text() {
        let m = CONTROL_MARKER;
        let of = |s: &str| control(s.as_bytes());
        assert_eq!(of(&format!("{m}2oops\r")), Some(Control::Error("oops".into())));
        assert_eq!(
            of(&format!("junk {m}1where")),
            Some(Control::Context("where".into()))
        );
        assert_eq!(of(&format!("{m}2")), None, "no text");
        assert_eq!(of(m), None, "no type");
        assert_eq!(of(&format!("{m}3text")), None, "no such type");
        assert_eq!(of("41d_a6aeb8-26df2 almost"), None);
        assert_eq!(
            of(&format!("{m}2red \x1b[31m alert\x07")),
            Some(Control::Error("red \u{fffd}[31m alert\u{fffd}".into()))
        );
        assert_eq!(
            control(&[m.as_bytes(), b"2\xff\xfe"].concat()),
            Some(Control::Error("\u{fffd}\u{fffd}".into()))
        );
    }

    #[test]
    fn long_lines_are_cut_and_the_next_line_survives() {
        let mut input = vec![b'x'; MAX_LINE * 3];
        input.push(b'\n');
        input.extend_from_slice(format!("{CONTROL_MARKER}2after\n").as_bytes());
        input.extend_from_slice(b"tail without newline");
        for step in [1000, MAX_LINE - 1, MAX_LINE * 4] {
            let lines = lines_of(&input, step);
            assert_eq!(lines.len(), 3, "step {step}");
            assert_eq!(lines[0].len(), MAX_LINE);
            assert_eq!(control(&lines[1]), Some(Control::Error("after".into())));
            assert_eq!(lines[2], b"tail without newline");
        }
    }

    #[test]
    fn garbage_streams_yield_nothing_but_do_not_fail() {
        let noise: Vec<u8> = (0..20_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for step in [1, 7, 4096] {
            for line in lines_of(&noise, step) {
                let _ = control(&line);
                let _ = task_line(&line);
            }
        }
    }

    #[test]
    fn task_lines_are_the_text_of_br_lines() {
        let of = |s: &str| task_line(s.as_bytes());
        assert_eq!(
            of("Scanned 4 files, 5.9 KiB...<br>"),
            Some("Scanned 4 files, 5.9 KiB...".into())
        );
        assert_eq!(
            of("<span class=\"ERROR\">cannot read r/&lt;x&gt; &amp; &#60;y&#62; &#x41;</span><br>\r"),
            Some("cannot read r/<x> & <y> A".into())
        );
        assert_eq!(
            of("&bogus; &#xzz; & &#99999999;<br>"),
            Some("&bogus; &#xzz; & &#99999999;".into())
        );
        assert_eq!(of("<p>Maintenance task <b>Count</b></p>"), None);
        assert_eq!(of("<br>"), None);
        assert_eq!(of("<hr>"), None);
        assert_eq!(of("<span>unterminated <tag<br>"), Some("unterminated".into()));
    }
}
