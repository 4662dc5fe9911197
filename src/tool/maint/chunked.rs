//! `Transfer-Encoding: chunked` (RFC 9112 §7.1) decoded as the bytes come,
//! however the reads cut them: the data passes through as slices of the
//! input; only a size or trailer line is gathered, and it is bounded.

use std::fmt;

/// The longest chunk-size or trailer line taken (with extensions).
const MAX_LINE: usize = 4096;
/// Trailer lines taken before the body counts as garbage.
const MAX_TRAILERS: usize = 64;

/// The decoder's state between two pieces of input.
#[derive(Debug, Default)]
pub struct Dechunk {
    state: State,
    line: Vec<u8>,
    trailers: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// This many data bytes to go in the current chunk.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines, up to an empty one.
    Trailer,
    Done,
}

/// Why a chunked body is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// A chunk-size line that is not a hexadecimal number (or one too large).
    BadSize,
    /// A chunk's data not followed by CRLF.
    NoCrlf,
    /// A size or trailer line longer than any real one.
    LineTooLong,
    TooManyTrailers,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChunkError::BadSize => "a chunk size that is not one",
            ChunkError::NoCrlf => "a chunk not ended by CRLF",
            ChunkError::LineTooLong => "a chunk-size or trailer line too long",
            ChunkError::TooManyTrailers => "too many trailer lines",
        })
    }
}

impl std::error::Error for ChunkError {}

impl Dechunk {
    /// The body's last chunk and its trailers have been read; whatever
    /// follows is not the body's.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, handing each run of data to `data`.
    pub fn feed(&mut self, mut input: &[u8], data: &mut dyn FnMut(&[u8])) -> Result<(), ChunkError> {
        while !input.is_empty() {
            match self.state {
                State::Done => return Ok(()),
                State::Data(left) => {
                    let take = usize::try_from(left).map_or(input.len(), |l| l.min(input.len()));
                    let (now, rest) = input.split_at(take);
                    data(now);
                    input = rest;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::Size | State::DataEnd | State::Trailer => {
                    let Some(line) = self.line(&mut input)? else {
                        return Ok(());
                    };
                    self.state = self.after_line(&line)?;
                }
            }
        }
        Ok(())
    }

    /// Gathers a line up to its LF; `None` while it is incomplete. The
    /// line is returned without its CRLF (a bare LF is taken too).
    fn line(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, ChunkError> {
        let (piece, complete) = match memchr::memchr(b'\n', input) {
            Some(at) => (&input[..at], Some(at + 1)),
            None => (*input, None),
        };
        if self.line.len() + piece.len() > MAX_LINE {
            return Err(ChunkError::LineTooLong);
        }
        self.line.extend_from_slice(piece);
        let Some(used) = complete else {
            *input = &[];
            return Ok(None);
        };
        *input = &input[used..];
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(line))
    }

    fn after_line(&mut self, line: &[u8]) -> Result<State, ChunkError> {
        match self.state {
            State::Size => match size(line)? {
                0 => Ok(State::Trailer),
                n => Ok(State::Data(n)),
            },
            State::DataEnd if line.is_empty() => Ok(State::Size),
            State::DataEnd => Err(ChunkError::NoCrlf),
            State::Trailer if line.is_empty() => Ok(State::Done),
            State::Trailer => {
                self.trailers += 1;
                if self.trailers > MAX_TRAILERS {
                    return Err(ChunkError::TooManyTrailers);
                }
                Ok(State::Trailer)
            }
            State::Data(_) | State::Done => Ok(self.state),
        }
    }
}

/// A chunk-size line: hexadecimal digits, then optional `;extensions`.
fn size(line: &[u8]) -> Result<u64, ChunkError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(ChunkError::BadSize);
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = (b as char).to_digit(16).ok_or(ChunkError::BadSize)?;
        Ok((n << 4) | u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes.
    fn decode(input: &[u8], step: usize) -> (Result<Vec<u8>, ChunkError>, bool) {
        let mut d = Dechunk::default();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            if let Err(e) = d.feed(piece, &mut |b| out.extend_from_slice(b)) {
                return (Err(e), d.is_done());
            }
        }
        (Ok(out), d.is_done())
    }

    const BODY: &[u8] = b"5\r\nhello\r\n7;name=value\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nNOT BODY";

    #[test]
    fn a_body_decodes_the_same_however_it_is_cut() {
        for step in 1..=BODY.len() {
            let (out, done) = decode(BODY, step);
            assert_eq!(out.unwrap(), b"hello, world", "step {step}");
            assert!(done, "step {step}");
        }
    }

    #[test]
    fn bare_line_feeds_and_upper_case_sizes_are_taken() {
        let (out, done) = decode(b"A\nabcdefghij\n0\n\n", 3);
        assert_eq!((out.unwrap(), done), (b"abcdefghij".to_vec(), true));
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        for cut in [&BODY[..3], &BODY[..12], &BODY[..30], &BODY[..BODY.len() - 12]] {
            let (out, done) = decode(cut, 4);
            assert!(out.is_ok() && !done, "{:?}", String::from_utf8_lossy(cut));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let cases: [(&[u8], ChunkError); 6] = [
            (b"zz\r\n", ChunkError::BadSize),
            (b"\r\n", ChunkError::BadSize),
            (b"ffffffffffffffff\r\n", ChunkError::BadSize),
            (b"-1\r\n", ChunkError::BadSize),
            (b"3\r\nabcX\r\n", ChunkError::NoCrlf),
            (b"1;", ChunkError::LineTooLong),
        ];
        for (input, error) in cases {
            let input = if error == ChunkError::LineTooLong {
                let mut long = input.to_vec();
                long.resize(MAX_LINE + 10, b'x');
                long
            } else {
                input.to_vec()
            };
            assert_eq!(decode(&input, 7).0, Err(error));
        }
        let mut trailers = b"0\r\n".to_vec();
        trailers.extend(std::iter::repeat_n(&b"A: b\r\n"[..], MAX_TRAILERS + 1).flatten());
        assert_eq!(decode(&trailers, 5).0, Err(ChunkError::TooManyTrailers));
    }

    #[test]
    fn a_huge_announced_chunk_streams_what_comes() {
        let (out, done) = decode(b"fffffffffffffff\r\nabc", 2);
        assert_eq!((out.unwrap(), done), (b"abc".to_vec(), false));
    }
}
