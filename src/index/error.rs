//! Why an index cannot be used, and on which line. An index with any
//! problem is unusable as a whole: its consumers act on no reference of it.

use std::fmt;
use std::io;
use std::num::ParseIntError;
use std::str::Utf8Error;

use super::suffix::Compression;
use crate::cache::KeyError;
use crate::digest::{Algorithm, HexError};

/// An index that cannot be used: the line where that showed (none for the
/// file as a whole) and the problem.
#[derive(Debug)]
pub struct IndexError {
    line: Option<u64>,
    problem: Problem,
}

/// What is wrong. A variant with a `source` names its cause through
/// [`std::error::Error::source`], never in its own text.
#[derive(Debug)]
#[non_exhaustive]
pub enum Problem {
    /// The input could not be read.
    Read(io::Error),
    /// The compressed data is corrupt or ends too soon.
    Corrupt {
        compression: Compression,
        source: io::Error,
    },
    /// A compression debcache cannot decode (`.lz4`).
    UnsupportedCompression { suffix: &'static str },
    /// A line longer than [`MAX_LINE`](super::MAX_LINE) bytes.
    LineTooLong,
    /// Text that has to be UTF-8 (field names, paths, sizes, digests) is not.
    NotUtf8(Utf8Error),
    /// A line that is neither a field, a continuation, blank, nor a comment.
    NoColon,
    /// A field name with a space or control byte, or starting with `-`.
    BadFieldName,
    /// A continuation line (starting with white space) before any field of
    /// its paragraph.
    OrphanContinuation,
    /// A clear-signed message whose armour headers are not `Hash:` lines
    /// ended by a blank line.
    ArmourHeader,
    /// A line of signed text that starts with `-` without being dash-escaped.
    UnescapedDash,
    /// A clear-signed message that ends before its signature.
    NoSignature,
    /// A signature without its `-----END PGP SIGNATURE-----`.
    UnterminatedSignature,
    /// Text after the signature.
    AfterSignature,
    /// A one-line field (`Filename`, `Size`, a digest) with continuation lines.
    ContinuedField { field: &'static str },
    /// A checksum list (`SHA256`, `Files`) with a value on its first line.
    ValueOnListLine { field: &'static str },
    /// A field given twice in one paragraph.
    Duplicate { field: &'static str },
    /// A paragraph without a field it needs.
    Missing { field: &'static str },
    /// A file listed without any checksum.
    NoDigest { path: String },
    /// A list line that is not `hex size name`.
    NotAnEntry,
    /// A digest that is not hex of its algorithm's length.
    Digest { algorithm: Algorithm, source: HexError },
    /// A size that is not a decimal number (or does not fit 64 bits).
    Size {
        value: String,
        source: Option<ParseIntError>,
    },
    /// A path that is absolute, climbs (`..`), or has an empty or overlong
    /// component or a NUL byte.
    Path { path: String, source: KeyError },
    /// A path with a control byte.
    ControlInPath { path: String },
    /// A file listed with two sizes, or two digests of one algorithm.
    Conflict { path: String },
    /// More files in one paragraph (a Release, a source package) than
    /// debcache keeps track of at once.
    TooManyFiles,
    /// An index without a paragraph, of a kind that always has one.
    Empty,
    /// A second paragraph where the format has one (a Release file).
    SecondParagraph,
}

/// Paths and values quoted in messages are cut to this many bytes.
const QUOTE_MAX: usize = 80;

impl IndexError {
    pub(super) fn at(line: u64, problem: Problem) -> IndexError {
        IndexError {
            line: Some(line),
            problem,
        }
    }

    pub(super) fn whole(problem: Problem) -> IndexError {
        IndexError { line: None, problem }
    }

    /// The line (counting from 1) where the problem showed; `None` for a
    /// problem of the file as a whole (its compression).
    pub fn line(&self) -> Option<u64> {
        self.line
    }

    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    pub fn into_problem(self) -> Problem {
        self.problem
    }
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        fmt::Display::fmt(&self.problem, f)
    }
}

impl std::error::Error for IndexError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            Problem::Read(source) | Problem::Corrupt { source, .. } => Some(source),
            Problem::NotUtf8(source) => Some(source),
            Problem::Digest { source, .. } => Some(source),
            Problem::Size {
                source: Some(source), ..
            } => Some(source),
            Problem::Path { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Read(_) => f.write_str("cannot read the index"),
            Problem::Corrupt { compression, .. } => {
                write!(f, "corrupt or truncated {compression} data")
            }
            Problem::UnsupportedCompression { suffix } => {
                write!(f, "unsupported compression {suffix}")
            }
            Problem::LineTooLong => write!(f, "a line longer than {} bytes", super::MAX_LINE),
            Problem::NotUtf8(_) => f.write_str("text that is not UTF-8"),
            Problem::NoColon => f.write_str("a line without a colon"),
            Problem::BadFieldName => f.write_str("an invalid field name"),
            Problem::OrphanContinuation => f.write_str("a continuation line before any field"),
            Problem::ArmourHeader => f.write_str("malformed armour headers of a signed message"),
            Problem::UnescapedDash => f.write_str("a signed line starting with an unescaped dash"),
            Problem::NoSignature => f.write_str("a signed message without its signature"),
            Problem::UnterminatedSignature => f.write_str("a signature without its end line"),
            Problem::AfterSignature => f.write_str("text after the signature"),
            Problem::ContinuedField { field } => write!(f, "field {field} continues on another line"),
            Problem::ValueOnListLine { field } => {
                write!(f, "field {field} has a value on its first line")
            }
            Problem::Duplicate { field } => write!(f, "field {field} given twice"),
            Problem::Missing { field } => write!(f, "a paragraph without {field}"),
            Problem::NoDigest { path } => write!(f, "no checksum for {:?}", quote(path)),
            Problem::NotAnEntry => f.write_str("not a `hex size name` line"),
            Problem::Digest { algorithm, .. } => write!(f, "a bad {algorithm} digest"),
            Problem::Size { value, .. } => write!(f, "size {:?} is not a number", quote(value)),
            Problem::Path { path, .. } => write!(f, "unsafe path {:?}", quote(path)),
            Problem::ControlInPath { path } => {
                write!(f, "a control character in path {:?}", quote(path))
            }
            Problem::Conflict { path } => {
                write!(f, "{:?} is listed with two sizes or checksums", quote(path))
            }
            Problem::TooManyFiles => {
                write!(f, "more than {} files in one paragraph", super::MAX_FILES)
            }
            Problem::Empty => f.write_str("no paragraph"),
            Problem::SecondParagraph => f.write_str("a second paragraph"),
        }
    }
}

/// The start of `text`, cut at a character boundary.
fn quote(text: &str) -> &str {
    if text.len() <= QUOTE_MAX {
        return text;
    }
    let mut end = QUOTE_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Chain;

    #[test]
    fn display_names_the_line_and_each_cause_once() {
        let err = IndexError::at(
            7,
            Problem::Digest {
                algorithm: Algorithm::Sha256,
                source: HexError::NotHex,
            },
        );
        assert_eq!(err.to_string(), "line 7: a bad SHA256 digest");
        assert_eq!(
            Chain(&err).to_string(),
            "line 7: a bad SHA256 digest: not a hex digit"
        );
        let whole = IndexError::whole(Problem::UnsupportedCompression { suffix: ".lz4" });
        assert_eq!(whole.to_string(), "unsupported compression .lz4");
        assert_eq!(whole.line(), None);
    }

    #[test]
    fn long_quotes_are_cut_on_a_character_boundary() {
        let path = "é".repeat(100);
        let err = IndexError::at(1, Problem::ControlInPath { path });
        let shown = err.to_string();
        assert!(shown.len() < 120, "{shown}");
    }
}
