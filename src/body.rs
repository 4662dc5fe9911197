//! The one response body type: nothing, bytes in memory, a range of a
//! file, or pieces of a page as something produces them (a maintenance
//! task's output). It counts what it hands to the connection, and when it
//! is dropped (finished, or the client went away) it reports that count to
//! the connection's transfer log.
//!
//! Bytes of files go to a plain socket as spans of the file, which the
//! connection sends with `sendfile` (no copy through memory); to a TLS one
//! in chunks of at most [`CHUNK`] bytes, read only when the connection asks
//! for the next, so a slow client holds one chunk, never the file. A stream
//! holds what its bounded channel holds.

use std::fs::File;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;

use crate::cache::Follow;
use crate::cache::{ChunkReader, CHUNK};
use crate::log::Transfer;
use crate::upstream::Link;

pub struct ResponseBody {
    source: Source,
    transfer: Option<Transfer>,
}

enum Source {
    Empty,
    Full(Option<Bytes>),
    File(FileRange),
    /// A file still being downloaded.
    Follow(Follow),
    /// An upstream response relayed without storing (pass-through).
    Upstream(Relay),
    /// Pieces sent by a producer; the body ends when it drops its sender.
    Stream(tokio::sync::mpsc::Receiver<Bytes>),
}

/// An upstream body passed through, cut when the mirror stalls.
struct Relay {
    body: Incoming,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// The repository's link to its mirrors, held while the body flows.
    _link: Link,
}

impl Relay {
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Bytes>>> {
        match http_body::Body::poll_frame(Pin::new(&mut self.body), cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.deadline
                    .as_mut()
                    .reset(tokio::time::Instant::now() + self.idle);
                Poll::Ready(Some(Ok(frame.into_data().unwrap_or_default())))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(std::io::Error::other(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(self.deadline.as_mut().poll(cx));
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the mirror stopped sending",
                ))))
            }
        }
    }
}

/// `[pos, end)` of an open file.
struct FileRange {
    reader: ChunkReader,
    pos: u64,
    end: u64,
}

impl ResponseBody {
    pub fn empty() -> ResponseBody {
        ResponseBody {
            source: Source::Empty,
            transfer: None,
        }
    }

    pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
        let bytes = bytes.into();
        ResponseBody {
            source: if bytes.is_empty() {
                Source::Empty
            } else {
                Source::Full(Some(bytes))
            },
            transfer: None,
        }
    }

    /// Bytes `start..end` of `file`, read as hyper asks for them.
    pub fn file(file: Arc<File>, start: u64, end: u64) -> ResponseBody {
        ResponseBody {
            source: Source::File(FileRange {
                reader: ChunkReader::new(file),
                pos: start,
                end,
            }),
            transfer: None,
        }
    }

    /// Bytes of a download in progress, as they are committed.
    pub fn follow(follow: Follow) -> ResponseBody {
        ResponseBody {
            source: Source::Follow(follow),
            transfer: None,
        }
    }

    /// An upstream body, relayed as it comes; `idle` without a byte ends
    /// it with an error. `link` is held until the body is dropped.
    pub fn upstream(body: Incoming, idle: Duration, link: Link) -> ResponseBody {
        ResponseBody {
            source: Source::Upstream(Relay {
                body,
                idle,
                deadline: Box::pin(tokio::time::sleep(idle)),
                _link: link,
            }),
            transfer: None,
        }
    }

    /// Pieces as `rx` delivers them, sent chunked (the length is unknown);
    /// the body ends when every sender is gone. Dropping the body (the
    /// client went away) makes the producer's sends fail.
    pub fn stream(rx: tokio::sync::mpsc::Receiver<Bytes>) -> ResponseBody {
        ResponseBody {
            source: Source::Stream(rx),
            transfer: None,
        }
    }

    /// Reports the bytes sent to this transfer-log record when done.
    pub fn with_transfer(mut self, transfer: Transfer) -> ResponseBody {
        self.transfer = Some(transfer);
        self
    }
}

/// What a body hands the connection next.
#[derive(Debug)]
pub enum Piece {
    Bytes(Bytes),
    /// Bytes `[start, end)` of a file, for the connection to send from the
    /// file itself (`sendfile`).
    File {
        file: Arc<File>,
        start: u64,
        end: u64,
    },
}

impl ResponseBody {
    /// The next piece: `None` at the end, an error when the body broke (the
    /// connection must be cut, never ended as if complete). With `spans`,
    /// bytes of files come as [`Piece::File`], else read into memory.
    pub fn poll_piece(&mut self, cx: &mut Context<'_>, spans: bool) -> Poll<Option<std::io::Result<Piece>>> {
        let span = match &mut self.source {
            Source::Follow(follow) if spans => match ready!(follow.poll_span(cx, u64::MAX)) {
                Some(Ok((start, end))) => Some((Arc::clone(follow.file()), start, end)),
                Some(Err(e)) => {
                    self.source = Source::Empty;
                    return Poll::Ready(Some(Err(e)));
                }
                None => return Poll::Ready(None),
            },
            Source::File(range) if spans && range.pos < range.end => {
                let (start, end) = (range.pos, range.end);
                range.pos = end;
                Some((Arc::clone(range.reader.file()), start, end))
            }
            _ => None,
        };
        Poll::Ready(Some(Ok(match span {
            Some((file, start, end)) => {
                self.count(end - start);
                Piece::File { file, start, end }
            }
            None => match ready!(self.poll_bytes(cx)) {
                Some(Ok(bytes)) => Piece::Bytes(bytes),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => return Poll::Ready(None),
            },
        })))
    }

    /// The next piece as bytes in memory.
    fn poll_bytes(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Bytes>>> {
        let next = match &mut self.source {
            Source::Follow(follow) => ready!(follow.poll_chunk(cx)),
            Source::Upstream(relay) => ready!(relay.poll_data(cx)),
            Source::Stream(rx) => ready!(rx.poll_recv(cx)).map(Ok),
            Source::Empty => None,
            Source::Full(bytes) => bytes.take().map(Ok),
            Source::File(range) if range.pos >= range.end => None,
            // From the page cache at once in the common case (handing every
            // read to a blocking thread and back would cost more than the
            // read); from the blocking pool when the disk is needed.
            Source::File(range) => Some(ready!(range.poll_chunk(cx))),
        };
        match &next {
            Some(Ok(bytes)) => self.count(bytes.len() as u64),
            // A broken body stays ended.
            Some(Err(_)) => self.source = Source::Empty,
            None => {}
        }
        Poll::Ready(next)
    }

    fn count(&mut self, n: u64) {
        if let Some(t) = &mut self.transfer {
            t.add_body(n);
        }
    }

    /// The body's length, when it is known before it is sent.
    pub fn exact_len(&self) -> Option<u64> {
        match &self.source {
            Source::Empty => Some(0),
            Source::Full(b) => Some(b.as_ref().map_or(0, |b| b.len() as u64)),
            Source::File(r) => Some(r.end.saturating_sub(r.pos)),
            Source::Follow(f) => f.remaining(),
            Source::Upstream(r) => http_body::Body::size_hint(&r.body).exact(),
            Source::Stream(_) => None,
        }
    }
}

/// For whoever reads a body as frames (the tests, an HTTP/1.1 stack).
impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.poll_bytes(cx).map(|next| next.map(|r| r.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        self.exact_len()
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

impl FileRange {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<Bytes>> {
        let until = self.end.min(self.pos + CHUNK as u64);
        let chunk = ready!(self.reader.poll_read(cx, self.pos, until))?;
        self.pos = until;
        Poll::Ready(Ok(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::io::Write;

    fn temp_file(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        (f, data)
    }

    #[tokio::test]
    async fn file_ranges_arrive_whole_in_bounded_chunks() {
        let (f, data) = temp_file(CHUNK * 2 + 123);
        let file = Arc::new(File::open(f.path()).unwrap());
        let mut body = ResponseBody::file(Arc::clone(&file), 10, data.len() as u64);
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            let chunk = frame.unwrap().into_data().unwrap();
            assert!(chunk.len() <= CHUNK);
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, &data[10..]);
    }

    #[tokio::test]
    async fn a_stream_ends_when_its_producer_is_gone() {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let mut body = ResponseBody::stream(rx);
        assert!(
            http_body::Body::size_hint(&body).exact().is_none(),
            "sent chunked"
        );
        let producer = tokio::spawn(async move {
            for piece in ["<p>", "one", "</p>"] {
                tx.send(Bytes::from(piece)).await.unwrap();
            }
        });
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            got.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        producer.await.unwrap();
        assert_eq!(got, b"<p>one</p>");
    }

    #[tokio::test]
    async fn a_file_that_shrinks_ends_the_body_with_an_error() {
        let (f, _) = temp_file(1000);
        let file = Arc::new(File::open(f.path()).unwrap());
        let mut body = ResponseBody::file(file, 0, 2000);
        assert!(body.frame().await.unwrap().is_err());
        assert!(body.frame().await.is_none());
    }
}
