//! Reading ahead in pipelined requests. apt sends up to ten requests on a
//! connection before the first answer; hyper answers them one at a time, in
//! order, and would only look at the second once the first is done, so cold
//! downloads would run one after the other. This wrapper sees the bytes
//! hyper reads, picks out the request heads in them, and hands each to a
//! task that starts the downloads of misses at once. Responses still go out
//! in order; they just find their downloads under way.
//!
//! Seeing every byte, it also keeps the connection's [`Activity`]: when the
//! last byte came or went, and whether the bytes read end between requests,
//! which is when the connection may be parked (`server::connection`).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};

/// Bytes kept while waiting for the end of a request head.
const MAX_PENDING: usize = 64 * 1024;
/// Requests waiting to be looked at; more are simply not read ahead.
pub const QUEUE: usize = 32;

/// A request seen in the byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ahead {
    pub method: String,
    pub target: String,
    pub cache_control: Option<String>,
}

/// What a connection's byte stream tells the loop serving it, without a
/// lock: written by the stream and by the responses, read by the loop.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    /// Milliseconds from `epoch` to the last byte read or written, or the
    /// end of the last response.
    last: AtomicU64,
    /// Requests whose response is not finished.
    in_flight: AtomicUsize,
    /// The bytes read so far end between two requests, and could all be
    /// followed (no request body, no garbage).
    between_requests: AtomicBool,
    /// The last write found the socket full: hyper holds bytes it has not
    /// sent (dropping hyper now would lose them).
    write_blocked: AtomicBool,
}

impl Activity {
    pub fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            between_requests: AtomicBool::new(true),
            write_blocked: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last.fetch_max(now, Ordering::Relaxed);
    }

    /// When the connection last did anything.
    pub fn last(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    /// A request is being answered, until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(self))
    }

    /// Nothing to answer, nothing half-read, nothing waiting to be sent,
    /// and quiet since `since`.
    pub fn idle_since(&self, since: Instant) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && self.between_requests.load(Ordering::Relaxed)
            && !self.write_blocked.load(Ordering::Relaxed)
            && self.last() <= since
    }
}

impl Default for Activity {
    fn default() -> Activity {
        Activity::new()
    }
}

/// A request in progress; its end counts as activity.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream whose incoming request heads are reported as they are read.
pub struct ReadAhead<S> {
    inner: S,
    /// Bytes already read from `inner` (after a handshake), read first.
    prefix: Bytes,
    /// Bytes read and scanned, handed back unparsed (by a parked hyper
    /// connection): read before anything else, not scanned again.
    rewound: Bytes,
    scanner: Scanner,
    /// Boxed: a channel holds a block of 32 slots from the start, on
    /// every connection, and most never pipeline.
    tx: Option<mpsc::Sender<Box<Ahead>>>,
    activity: Arc<Activity>,
}

impl<S> ReadAhead<S> {
    pub fn new(
        inner: S,
        prefix: Bytes,
        tx: mpsc::Sender<Box<Ahead>>,
        activity: Arc<Activity>,
    ) -> ReadAhead<S> {
        ReadAhead {
            inner,
            prefix,
            rewound: Bytes::new(),
            scanner: Scanner::default(),
            tx: Some(tx),
            activity,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether bytes are waiting to be read without asking the socket.
    pub fn has_buffered(&self) -> bool {
        !self.prefix.is_empty() || !self.rewound.is_empty()
    }

    /// Bytes read from the socket by the caller, to be read (and scanned)
    /// first.
    pub fn feed(&mut self, bytes: Bytes) {
        self.prefix = bytes;
    }

    /// Gives back bytes read but not used, to be read again first; frees
    /// the memory of a scanner that holds nothing.
    pub fn rewind(&mut self, unread: Bytes) {
        self.rewound = unread;
        self.scanner.shrink();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        if !this.rewound.is_empty() {
            let n = this.rewound.len().min(buf.remaining());
            buf.put_slice(&this.rewound.split_to(n));
            return Poll::Ready(Ok(()));
        }
        if this.prefix.is_empty() {
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        } else {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
        }
        if let Some(tx) = &this.tx {
            match this.scanner.feed(&buf.filled()[before..]) {
                Some(heads) => {
                    // hyper reads only when it has no whole request left, so
                    // the first head of a read is answered at once: only the
                    // ones queued behind it gain from an early start (and a
                    // client that does not pipeline costs nothing extra).
                    for head in heads.into_iter().skip(1) {
                        // A full queue means the reader is far behind: the
                        // rest is served without reading ahead.
                        let _ = tx.try_send(Box::new(head));
                    }
                }
                None => this.tx = None,
            }
        }
        if buf.filled().len() > before {
            this.activity.touch();
            let between = this.tx.is_some() && this.scanner.pending.is_empty();
            this.activity.between_requests.store(between, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S> ReadAhead<S> {
    fn wrote(&self, written: &Poll<io::Result<usize>>) {
        let blocked = written.is_pending();
        self.activity.write_blocked.store(blocked, Ordering::Relaxed);
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.activity.touch();
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Finds complete request heads in a byte stream of bodiless requests.
#[derive(Debug, Default)]
struct Scanner {
    pending: Vec<u8>,
}

impl Scanner {
    /// Frees what a scanner that holds nothing kept of the largest burst.
    fn shrink(&mut self) {
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
    }

    /// The heads completed by `bytes`; `None` when this stream cannot be
    /// followed (a request with a body, garbage, an oversized head): reading
    /// ahead stops for the connection, hyper deals with it.
    fn feed(&mut self, bytes: &[u8]) -> Option<Vec<Ahead>> {
        if self.pending.is_empty() && lone_head(bytes) {
            // The common case: one whole request and nothing queued behind
            // it, which hyper answers at once. Nothing to read ahead, and no
            // need to parse it twice (1,300 instructions of a 2 KB hit).
            return Some(Vec::new());
        }
        self.pending.extend_from_slice(bytes);
        let mut heads = Vec::new();
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&self.pending) {
                Ok(httparse::Status::Complete(len)) => {
                    let has_body = request.headers.iter().any(|h| {
                        (h.name.eq_ignore_ascii_case("content-length") && h.value != b"0")
                            || h.name.eq_ignore_ascii_case("transfer-encoding")
                    });
                    if has_body {
                        return None;
                    }
                    let cache_control = request
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("cache-control"))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .map(str::to_string);
                    heads.push(Ahead {
                        method: request.method.unwrap_or_default().to_string(),
                        target: request.path.unwrap_or_default().to_string(),
                        cache_control,
                    });
                    self.pending.drain(..len);
                }
                Ok(httparse::Status::Partial) if self.pending.len() <= MAX_PENDING => return Some(heads),
                _ => return None,
            }
        }
    }
}

/// `bytes` is one whole GET or HEAD head (which has no body) and nothing
/// after it.
fn lone_head(bytes: &[u8]) -> bool {
    (bytes.starts_with(b"GET ") || bytes.starts_with(b"HEAD "))
        && memchr::memmem::find(bytes, b"\r\n\r\n") == Some(bytes.len().saturating_sub(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> String {
        format!("GET {target} HTTP/1.1\r\nHost: cache\r\nCache-Control: max-age=0\r\n\r\n")
    }

    #[test]
    fn heads_are_found_across_reads() {
        let mut s = Scanner::default();
        let burst = format!("{}{}{}", get("/a.deb"), get("/b.deb"), get("/c.deb"));
        let (first, rest) = burst.as_bytes().split_at(70);
        let seen = s.feed(first).unwrap();
        assert_eq!(seen.len(), 1);
        let more = s.feed(rest).unwrap();
        let targets: Vec<_> = seen.iter().chain(&more).map(|a| a.target.as_str()).collect();
        assert_eq!(targets, ["/a.deb", "/b.deb", "/c.deb"]);
        assert_eq!(more[0].cache_control.as_deref(), Some("max-age=0"));
    }

    #[test]
    fn a_lone_head_is_not_parsed_but_one_with_others_behind_it_is() {
        let mut s = Scanner::default();
        assert_eq!(s.feed(get("/a.deb").as_bytes()).unwrap().len(), 0);
        assert!(s.pending.is_empty());
        // Two in one read: both found (the caller answers the first itself).
        let two = format!("{}{}", get("/a.deb"), get("/b.deb"));
        assert_eq!(s.feed(two.as_bytes()).unwrap().len(), 2);
        // Half a head, then its end and nothing else: still parsed.
        let head = get("/c.deb");
        let (start, end) = head.as_bytes().split_at(10);
        assert!(s.feed(start).unwrap().is_empty());
        let done = s.feed(end).unwrap();
        assert_eq!(done[0].target, "/c.deb");
        assert!(!lone_head(b"POST /x HTTP/1.1\r\n\r\n") && !lone_head(b"GET /x HTTP/1.1\r\n"));
    }

    #[test]
    fn bodies_and_garbage_stop_the_reading_ahead() {
        let mut s = Scanner::default();
        assert!(s
            .feed(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
            .is_none());
        let mut s = Scanner::default();
        assert!(s.feed(b"\x00\x01 not http\r\n\r\n").is_none());
        let mut s = Scanner::default();
        assert!(s.feed(&vec![b'a'; MAX_PENDING + 10]).is_none());
    }

    #[tokio::test]
    async fn the_stream_reports_requests_queued_behind_the_first() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(4096);
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let mut stream = ReadAhead::new(server, Bytes::new(), tx, Arc::default());
        let burst = format!("{}{}{}", get("/a"), get("/b"), get("/c"));
        client.write_all(burst.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        assert!(stream.read(&mut buf).await.unwrap() > 0);
        // The first is answered at once; the ones behind it are reported.
        assert_eq!(rx.recv().await.unwrap().target, "/b");
        assert_eq!(rx.recv().await.unwrap().target, "/c");
        client.write_all(get("/d").as_bytes()).await.unwrap();
        assert!(stream.read(&mut buf).await.unwrap() > 0);
        assert!(rx.try_recv().is_err(), "a lone request is not read ahead");
    }

    #[tokio::test]
    async fn a_connection_whose_writes_wait_for_the_client_is_not_idle() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(64);
        let (tx, _rx) = mpsc::channel(QUEUE);
        let activity = Arc::new(Activity::new());
        let mut stream = ReadAhead::new(server, Bytes::new(), tx, Arc::clone(&activity));
        let later = Instant::now() + Duration::from_secs(3600);
        assert!(activity.idle_since(later));
        // More than the pipe holds: the write waits for the client.
        let writing = tokio::spawn(async move {
            stream.write_all(&[7u8; 256]).await.unwrap();
            stream
        });
        while !activity.write_blocked.load(Ordering::Relaxed) {
            tokio::task::yield_now().await;
        }
        assert!(!activity.idle_since(later), "bytes wait to be sent");
        let mut got = vec![0u8; 256];
        client.read_exact(&mut got).await.unwrap();
        let _stream = writing.await.unwrap();
        assert!(activity.idle_since(later), "all sent");
    }

    #[tokio::test]
    async fn bytes_read_before_come_first_and_are_scanned() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(4096);
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let prefix = Bytes::from(format!("{}{}", get("/a"), get("/b")));
        let mut stream = ReadAhead::new(server, prefix.clone(), tx, Arc::default());
        let mut buf = vec![0u8; prefix.len()];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, prefix);
        assert_eq!(rx.recv().await.unwrap().target, "/b");
        client.write_all(b"more").await.unwrap();
        let mut more = [0u8; 4];
        stream.read_exact(&mut more).await.unwrap();
        assert_eq!(&more, b"more");
    }
}
