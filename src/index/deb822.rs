//! The deb822 control-file syntax (deb822(5)) read line by line from any
//! `BufRead`: one line in memory at a time, at most [`MAX_LINE`] bytes,
//! however long a paragraph or a field is. The parsers above keep what they
//! need of the fields they know and let the rest go by.
//!
//! | line | is |
//! |---|---|
//! | `Name: value` | a field; the name is printable ASCII without `:`, not starting with `-` or `#`; the value trimmed |
//! | starting with a space or a tab | a continuation of the paragraph's last field, trimmed; before any field [`Problem::OrphanContinuation`] |
//! | empty, or only spaces and tabs | the end of a paragraph (several in a row end one) |
//! | starting with `#` | a comment, skipped (deb822(5); index writers never emit one, and skipping one loses nothing) |
//! | anything else | [`Problem::NoColon`] or [`Problem::BadFieldName`] |
//!
//! A trailing `\r` is dropped. Field values stay bytes: only the parsers
//! know which must be UTF-8 (paths, sizes, digests) and which need not be
//! (an old `Description` in Latin-1).

use std::io::{BufRead, Read};

use super::armour::Armour;
use super::compression::read_problem;
use super::error::{IndexError, Problem};
use super::MAX_LINE;

/// One line of a paragraph, as the parsers see it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line<'a> {
    /// `name: value`; the name is ASCII, compare it ignoring case.
    Field { name: &'a str, value: &'a [u8] },
    /// A continuation line of the last field, trimmed.
    Continuation(&'a [u8]),
    /// The end of a paragraph, at a blank line or the end of the input.
    End,
}

/// What the next line is, by offsets into the line buffer, so that the
/// borrow of the buffer starts only once the line is chosen.
enum Found {
    Field {
        name: (usize, usize),
        value: (usize, usize),
    },
    Continuation(usize, usize),
    End,
    Eof,
}

pub(super) struct Reader<'r> {
    input: &'r mut dyn BufRead,
    buf: Vec<u8>,
    /// The number of the last line read, from 1.
    line: u64,
    armour: Armour,
    in_paragraph: bool,
}

impl<'r> Reader<'r> {
    pub(super) fn new(input: &'r mut dyn BufRead, armour: Armour) -> Reader<'r> {
        Reader {
            input,
            buf: Vec::new(),
            line: 0,
            armour,
            in_paragraph: false,
        }
    }

    /// An error at the line last read.
    pub(super) fn error(&self, problem: Problem) -> IndexError {
        IndexError::at(self.line.max(1), problem)
    }

    /// Whether the input was a clear-signed message.
    pub(super) fn signed(&self) -> bool {
        self.armour.signed()
    }

    /// The next line of a paragraph; `None` at the end of the input, after
    /// the last paragraph's [`Line::End`].
    pub(super) fn next_line(&mut self) -> Result<Option<Line<'_>>, IndexError> {
        let found = self.find()?;
        let buf = &self.buf;
        Ok(match found {
            Found::Eof => None,
            Found::End => Some(Line::End),
            Found::Continuation(from, to) => Some(Line::Continuation(&buf[from..to])),
            Found::Field { name, value } => Some(Line::Field {
                // Checked to be ASCII in `find`.
                name: std::str::from_utf8(&buf[name.0..name.1]).unwrap_or_default(),
                value: &buf[value.0..value.1],
            }),
        })
    }

    fn find(&mut self) -> Result<Found, IndexError> {
        loop {
            let Some(from) = self.read_text_line()? else {
                if self.in_paragraph {
                    self.in_paragraph = false;
                    return Ok(Found::End);
                }
                return Ok(Found::Eof);
            };
            let line = &self.buf[from..];
            let (start, end) = trim(line);
            if start == end {
                if self.in_paragraph {
                    self.in_paragraph = false;
                    return Ok(Found::End);
                }
                continue;
            }
            match line[0] {
                b'#' => continue,
                b' ' | b'\t' if !self.in_paragraph => return Err(self.error(Problem::OrphanContinuation)),
                b' ' | b'\t' => return Ok(Found::Continuation(from + start, from + end)),
                _ => {}
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(self.error(Problem::NoColon));
            };
            let name = &line[..colon];
            if name.is_empty() || name[0] == b'-' || !name.iter().all(|b| b.is_ascii_graphic()) {
                return Err(self.error(Problem::BadFieldName));
            }
            let (v_start, v_end) = trim(&line[colon + 1..]);
            self.in_paragraph = true;
            let value_at = from + colon + 1;
            return Ok(Found::Field {
                name: (from, from + colon),
                value: (value_at + v_start, value_at + v_end),
            });
        }
    }

    /// Reads the next line of text (what the armour lets through) into
    /// `buf`; the text starts at the offset returned.
    fn read_text_line(&mut self) -> Result<Option<usize>, IndexError> {
        loop {
            if !self.read_line()? {
                self.armour.finish().map_err(|p| self.error(p))?;
                return Ok(None);
            }
            match self.armour.filter(&self.buf) {
                Ok(Some(from)) => return Ok(Some(from)),
                Ok(None) => continue,
                Err(problem) => return Err(self.error(problem)),
            }
        }
    }

    /// One physical line into `buf`, without its line break; false at the
    /// end of the input.
    fn read_line(&mut self) -> Result<bool, IndexError> {
        self.buf.clear();
        let limit = MAX_LINE as u64 + 1;
        let n = (&mut *self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| IndexError::at(self.line + 1, read_problem(e)))?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if self.buf.len() > MAX_LINE {
            return Err(self.error(Problem::LineTooLong));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(true)
    }
}

/// The offsets of `bytes` without leading and trailing spaces and tabs.
fn trim(bytes: &[u8]) -> (usize, usize) {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    match bytes.iter().position(|b| !blank(b)) {
        None => (0, 0),
        Some(start) => {
            let end = bytes.iter().rposition(|b| !blank(b)).map_or(start, |e| e + 1);
            (start, end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line as text, `End` as `--`, or the error's line and text.
    fn lines(input: &[u8]) -> Result<Vec<String>, (u64, String)> {
        let mut input = input;
        let mut reader = Reader::new(&mut input, Armour::Off);
        let mut out = Vec::new();
        loop {
            match reader.next_line() {
                Ok(None) => return Ok(out),
                Ok(Some(Line::End)) => out.push("--".to_string()),
                Ok(Some(Line::Field { name, value })) => {
                    out.push(format!("{name}={}", String::from_utf8_lossy(value)))
                }
                Ok(Some(Line::Continuation(text))) => out.push(format!("+{}", String::from_utf8_lossy(text))),
                Err(e) => return Err((e.line().unwrap(), e.problem().to_string())),
            }
        }
    }

    #[test]
    fn fields_continuations_and_paragraphs() {
        let text =
            b"Package: a\nDescription: short\n long\n .\n\tmore  \n\n\n \t\nPackage: b\r\nSize:  12 \n";
        assert_eq!(
            lines(text).unwrap(),
            [
                "Package=a",
                "Description=short",
                "+long",
                "+.",
                "+more",
                "--",
                "Package=b",
                "Size=12",
                "--"
            ]
        );
    }

    #[test]
    fn empty_values_and_colons_in_values_are_kept() {
        assert_eq!(
            lines(b"SHA256:\nHomepage: http://x:80/\n").unwrap(),
            ["SHA256=", "Homepage=http://x:80/", "--"]
        );
    }

    #[test]
    fn comments_are_skipped_even_inside_a_paragraph() {
        assert_eq!(
            lines(b"# head\nA: 1\n# inside\n more\n").unwrap(),
            ["A=1", "+more", "--"]
        );
    }

    #[test]
    fn malformed_lines_are_errors_with_their_number() {
        assert_eq!(
            lines(b" early\n"),
            Err((1, "a continuation line before any field".into()))
        );
        assert_eq!(
            lines(b"A: 1\n\n continued after the end\n"),
            Err((3, "a continuation line before any field".into()))
        );
        assert_eq!(
            lines(b"A: 1\nno colon here\n"),
            Err((2, "a line without a colon".into()))
        );
        assert_eq!(
            lines(b"A: 1\nBad Name: 2\n"),
            Err((2, "an invalid field name".into()))
        );
        assert_eq!(lines(b": 2\n"), Err((1, "an invalid field name".into())));
        assert_eq!(lines(b"-A: 2\n"), Err((1, "an invalid field name".into())));
        assert_eq!(
            lines(b"A: 1\nN\xc3\xa4me: 2\n"),
            Err((2, "an invalid field name".into()))
        );
    }

    #[test]
    fn values_need_not_be_utf8() {
        assert_eq!(
            lines(b"Description: caf\xe9\n").unwrap(),
            ["Description=caf\u{fffd}", "--"]
        );
    }

    #[test]
    fn lines_longer_than_the_limit_are_refused_without_reading_them_whole() {
        let mut long = b"Description: ".to_vec();
        long.resize(MAX_LINE + 10, b'x');
        long.extend_from_slice(b"\nA: 1\n");
        assert_eq!(
            lines(&long),
            Err((1, format!("a line longer than {MAX_LINE} bytes")))
        );
        // A line of exactly the limit, with or without its line break.
        let mut exact = b"A: ".to_vec();
        exact.resize(MAX_LINE, b'y');
        assert_eq!(lines(&exact).unwrap().len(), 2);
        exact.push(b'\n');
        assert_eq!(lines(&exact).unwrap().len(), 2);
    }

    #[test]
    fn armour_is_stripped_when_asked() {
        let text = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nA: 1\n- -B: x\n-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n";
        let mut input = &text[..];
        let mut reader = Reader::new(&mut input, Armour::First);
        assert_eq!(
            reader.next_line().unwrap(),
            Some(Line::Field {
                name: "A",
                value: b"1"
            })
        );
        // `-B` unescaped is a bad field name, on line 5.
        let err = reader.next_line().unwrap_err();
        assert_eq!(
            (err.line(), err.problem().to_string()),
            (Some(5), "an invalid field name".into())
        );
        assert!(reader.signed());
    }
}
