//! A client's view of a flight: the bytes `[pos, end)` of the file being
//! downloaded, read from disk as they are committed, woken by the flight's
//! progress. Never fans bytes out through memory: a slow client holds one
//! chunk, and many clients share the page cache. A chunk whose pages are not
//! in memory is read on the blocking pool ([`ChunkReader`]).

use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::sync::watch;

use super::flight::{Body, Progress, State};
use super::read::{ChunkReader, CHUNK};

type Wait = Pin<Box<dyn Future<Output = bool> + Send>>;

pub struct Follow {
    rx: watch::Receiver<Progress>,
    generation: u32,
    body: Arc<Body>,
    /// Reads `body.file`.
    reader: ChunkReader,
    start: u64,
    pos: u64,
    /// Exclusive end (a range); `None` reads to the end of the body.
    end: Option<u64>,
    wait: Option<Wait>,
}

impl fmt::Debug for Follow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follow")
            .field("generation", &self.generation)
            .field("pos", &self.pos)
            .field("end", &self.end)
            .finish()
    }
}

impl Follow {
    pub fn new(
        rx: watch::Receiver<Progress>,
        generation: u32,
        body: Arc<Body>,
        start: u64,
        end: Option<u64>,
    ) -> Follow {
        Follow {
            rx,
            generation,
            reader: ChunkReader::new(Arc::clone(&body.file)),
            body,
            start,
            pos: start,
            end,
            wait: None,
        }
    }

    /// The file the bytes are read from.
    pub fn file(&self) -> &Arc<File> {
        &self.body.file
    }

    /// The next chunk: `None` at the end, an error when the flight failed or
    /// restarted after this client got bytes (the connection must be cut,
    /// never ended as if complete).
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        // A chunk of committed bytes being read from the disk comes first,
        // whatever the flight did meanwhile (as it would had it been read at
        // once).
        if let Some((from, until)) = self.reader.pending() {
            return Poll::Ready(Some(ready!(self.reader.poll_read(cx, from, until))));
        }
        match ready!(self.poll_span(cx, CHUNK as u64)) {
            Some(Ok((from, until))) => Poll::Ready(Some(ready!(self.reader.poll_read(cx, from, until)))),
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None => Poll::Ready(None),
        }
    }

    /// The next committed bytes `[from, until)` not handed out yet, at most
    /// `max` of them, for the caller to send from [`Follow::file`]: `None`
    /// at the end, an error as [`Follow::poll_chunk`] gives one.
    pub fn poll_span(&mut self, cx: &mut Context<'_>, max: u64) -> Poll<Option<io::Result<(u64, u64)>>> {
        loop {
            if let Some(wait) = &mut self.wait {
                let alive = ready!(wait.as_mut().poll(cx));
                self.wait = None;
                if !alive && !self.can_progress() {
                    return Poll::Ready(Some(Err(io::Error::other(
                        "download ended without its last bytes",
                    ))));
                }
            }
            let progress = self.rx.borrow_and_update().clone();
            if let Some(step) = self.step(progress, max) {
                return Poll::Ready(step);
            }
            let mut rx = self.rx.clone();
            self.wait = Some(Box::pin(async move { rx.changed().await.is_ok() }));
        }
    }

    /// `None` means: wait for the flight to move.
    fn step(&mut self, progress: Progress, max: u64) -> Option<Option<io::Result<(u64, u64)>>> {
        if progress.generation != self.generation {
            match &progress.state {
                // Nothing sent yet and the same length announced: carry on
                // with the new download.
                State::Streaming { body, .. } if self.pos == self.start && body.total == self.body.total => {
                    self.generation = progress.generation;
                    self.body = Arc::clone(body);
                    self.reader = ChunkReader::new(Arc::clone(&body.file));
                }
                _ => {
                    return Some(Some(Err(io::Error::other(
                        "the download restarted from the beginning",
                    ))))
                }
            }
        }
        match progress.state {
            // What was written before the download broke is good (the
            // failure may have replaced the last progress before this
            // client saw it): those bytes first, then the error. Not the
            // held bytes of a verified download: they may be what failed.
            State::Failed(f) => {
                // An fstat of the open file: its inode is in memory.
                let written = self.body.file.metadata().map_or(0, |m| m.len());
                let written = written.min(self.body.held.unwrap_or(u64::MAX));
                Some(Some(
                    self.span_to(written, max).ok_or_else(|| io::Error::other(f)),
                ))
            }
            State::Connecting | State::Unchanged | State::Claimed => None,
            State::Streaming { committed, done, .. } => {
                if let Some(span) = self.span_to(committed, max) {
                    return Some(Some(Ok(span)));
                }
                match (self.end, done) {
                    (Some(end), _) if self.pos >= end => Some(None),
                    (Some(_), true) => Some(Some(Err(io::Error::other("download ended short of the range")))),
                    (None, true) => Some(None),
                    (_, false) => None,
                }
            }
        }
    }

    /// The next span of `[pos, committed)` within the range, if any, handed
    /// out.
    fn span_to(&mut self, committed: u64, max: u64) -> Option<(u64, u64)> {
        let limit = self.end.map_or(committed, |e| e.min(committed));
        if self.pos >= limit {
            return None;
        }
        let span = (self.pos, limit.min(self.pos.saturating_add(max)));
        self.pos = span.1;
        Some(span)
    }

    /// Whether the current state alone still lets this client finish.
    fn can_progress(&self) -> bool {
        match &self.rx.borrow().state {
            State::Streaming { committed, done, .. } => *done || *committed > self.pos,
            State::Failed(_) => true,
            _ => false,
        }
    }

    pub fn remaining(&self) -> Option<u64> {
        self.end.or(self.body.total).map(|e| e.saturating_sub(self.pos))
    }
}
