//! Responses on the wire (RFC 9112): the head, framed by the length when it
//! is known, chunked when not (close-delimited for HTTP/1.0), and the body
//! piece by piece as it comes:
//!
//! | piece                          | how it is sent                                                  |
//! |--------------------------------|-----------------------------------------------------------------|
//! | bytes in memory                | one `writev` with the head (or the chunk framing) before them   |
//! | a file span, plain socket      | the head, then `sendfile` from the page cache                   |
//! | a file span, pages not cached  | `sendfile` on the blocking pool, so no worker waits for the disk |
//! | any piece over TLS             | read into memory by the body, then written                      |
//!
//! Every write that makes no progress for `NetworkTimeout` ends the
//! connection: a client that stops reading holds a socket, never a worker
//! or more than one piece of memory.

use std::fmt::Write as _;
use std::fs::File;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, Version};
use tokio::io::AsyncWriteExt;

use super::head::has_token;
use super::wire::{self, Socket, Wire};
use crate::body::{Piece, ResponseBody};
use crate::cache::{prefetch, resident};

/// Largest `sendfile` asked for at once: the range whose residency is
/// checked before it. Not larger: on 10 MB hits at 64 connections under
/// BBR (whose pacing timers fire on the core that armed them), 1 MiB steps
/// left more of each body to be sent from this core's timers, with the
/// client's share of the loopback work: 1.45x nginx's CPU per request,
/// against 1.28x for 512 KiB and for 256 KiB (see ARCHITECTURE.md).
const SENDFILE_STEP: usize = 512 * 1024;

/// How far past a step that needs the disk its pages are asked for at
/// once, so that the steps after it find them in memory and are sent from
/// the worker: one trip to the blocking pool per window, not per step.
const PREFETCH_WINDOW: u64 = 8 * 1024 * 1024;

/// What the connection knows of the request being answered.
#[derive(Clone, Copy, Debug)]
pub struct Exchange {
    /// A HEAD: the head says what a GET's body would be; none is sent.
    pub head_only: bool,
    pub version: Version,
    /// The client wants the connection kept, and the server would keep it.
    pub keep_alive: bool,
    /// Longest wait for the client to take bytes.
    pub timeout: Duration,
}

/// How the body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    Length(u64),
    Chunked,
    /// Until the connection closes (HTTP/1.0, length unknown).
    Close,
}

/// Sends `response`; whether the connection may carry another request.
/// An error means the connection must be dropped (the client went away,
/// stopped reading, or the body broke: the client sees a cut transfer).
pub async fn send<W: Wire>(wire: &mut W, response: Response<ResponseBody>, ex: Exchange) -> io::Result<bool> {
    let (mut parts, mut body) = response.into_parts();
    let status = parts.status;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let framing = if ex.head_only
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::None
    } else if let Some(n) = declared.or_else(|| body.exact_len()) {
        if declared.is_none() {
            parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        Framing::Length(n)
    } else if ex.version == Version::HTTP_11 {
        parts
            .headers
            .insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        Framing::Chunked
    } else {
        Framing::Close
    };
    let keep_alive =
        ex.keep_alive && framing != Framing::Close && !has_token(&parts.headers, header::CONNECTION, "close");
    if !keep_alive {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    } else if ex.version == Version::HTTP_10 {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
    let reason = reason.map_or(status.canonical_reason().unwrap_or("").as_bytes(), |r| {
        r.as_bytes()
    });
    let head = encode_head(status, reason, &parts.headers);
    if framing == Framing::None {
        write_all(wire, &mut [IoSlice::new(&head)], ex.timeout).await?;
        return finish(wire, keep_alive, ex.timeout).await;
    }
    let spans = wire.socket().is_some();
    let mut out = Out {
        framing,
        left: match framing {
            Framing::Length(n) => n,
            _ => u64::MAX,
        },
        head: Some(head),
        timeout: ex.timeout,
    };
    // The head goes out with the first piece when that is ready at once,
    // else alone (the client learns of its answer while a download starts).
    loop {
        let next = poll_fn(|cx| Poll::Ready(body.poll_piece(cx, spans))).await;
        let piece = match next {
            Poll::Ready(piece) => piece,
            Poll::Pending => {
                out.flush_head(wire).await?;
                poll_fn(|cx| body.poll_piece(cx, spans)).await
            }
        };
        match piece {
            Some(Ok(piece)) => out.piece(wire, piece).await?,
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    out.end(wire).await?;
    finish(wire, keep_alive, ex.timeout).await
}

/// The connection after a response: flushed (TLS holds bytes back), and
/// closed properly when it is not kept.
async fn finish<W: Wire>(wire: &mut W, keep_alive: bool, timeout: Duration) -> io::Result<bool> {
    timed(timeout, wire.flush()).await?;
    if !keep_alive {
        let _ = timed(timeout, wire.shutdown()).await;
    }
    Ok(keep_alive)
}

/// The body going out.
struct Out {
    framing: Framing,
    /// Bytes still announced (`Length`).
    left: u64,
    /// Not sent yet.
    head: Option<Vec<u8>>,
    timeout: Duration,
}

impl Out {
    async fn flush_head<W: Wire>(&mut self, wire: &mut W) -> io::Result<()> {
        match self.head.take() {
            Some(head) => write_all(wire, &mut [IoSlice::new(&head)], self.timeout).await,
            None => Ok(()),
        }
    }

    fn take(&mut self, n: u64) -> io::Result<()> {
        if n > self.left {
            return Err(io::Error::other("body longer than its Content-Length"));
        }
        if matches!(self.framing, Framing::Length(_)) {
            self.left -= n;
        }
        Ok(())
    }

    async fn piece<W: Wire>(&mut self, wire: &mut W, piece: Piece) -> io::Result<()> {
        let len = match &piece {
            Piece::Bytes(b) => b.len() as u64,
            Piece::File { start, end, .. } => end - start,
        };
        if len == 0 {
            return Ok(());
        }
        self.take(len)?;
        let head = self.head.take().unwrap_or_default();
        let mut size = String::new();
        if self.framing == Framing::Chunked {
            let _ = write!(size, "{len:x}\r\n");
        }
        match piece {
            Piece::Bytes(bytes) => {
                let trailer: &[u8] = if self.framing == Framing::Chunked {
                    b"\r\n"
                } else {
                    b""
                };
                let mut slices = [
                    IoSlice::new(&head),
                    IoSlice::new(size.as_bytes()),
                    IoSlice::new(&bytes),
                    IoSlice::new(trailer),
                ];
                write_all(wire, &mut slices, self.timeout).await
            }
            Piece::File { file, start, end } => {
                let socket = wire
                    .socket()
                    .ok_or_else(|| io::Error::other("a file span for a TLS stream"))?;
                let mut before = head;
                before.extend_from_slice(size.as_bytes());
                // Held back (`MSG_MORE`), a head leaves with the body's
                // first bytes: one segment for a short body. Before a long
                // one it saves nothing that counts and cost CPU (1.51x
                // nginx's per 10 MB hit against 1.45x sent alone, as nginx
                // sends it).
                let more = end - start <= SENDFILE_STEP as u64;
                send_bytes(socket, &before, more, self.timeout).await?;
                send_span(socket, &file, start, end, self.timeout).await?;
                if self.framing == Framing::Chunked {
                    write_all(wire, &mut [IoSlice::new(b"\r\n")], self.timeout).await?;
                }
                Ok(())
            }
        }
    }

    async fn end<W: Wire>(&mut self, wire: &mut W) -> io::Result<()> {
        if matches!(self.framing, Framing::Length(_)) && self.left > 0 {
            return Err(io::Error::other("body shorter than its Content-Length"));
        }
        let head = self.head.take().unwrap_or_default();
        let last: &[u8] = if self.framing == Framing::Chunked {
            b"0\r\n\r\n"
        } else {
            b""
        };
        if head.is_empty() && last.is_empty() {
            return Ok(());
        }
        write_all(wire, &mut [IoSlice::new(&head), IoSlice::new(last)], self.timeout).await
    }
}

/// The status line and header fields.
fn encode_head(status: StatusCode, reason: &[u8], headers: &HeaderMap) -> Vec<u8> {
    let mut head = Vec::with_capacity(256 + headers.len() * 32);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(reason);
    head.extend_from_slice(b"\r\n");
    if !headers.contains_key(header::DATE) {
        head.extend_from_slice(b"date: ");
        DATE.with(|d| head.extend_from_slice(d.borrow_mut().now().as_bytes()));
        head.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// The `Date` of this second, formatted once per second per thread.
struct Clock {
    second: u64,
    text: String,
}

impl Clock {
    fn now(&mut self) -> &str {
        let now = SystemTime::now();
        let second = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(now);
        }
        &self.text
    }
}

thread_local! {
    static DATE: std::cell::RefCell<Clock> = const {
        std::cell::RefCell::new(Clock { second: 0, text: String::new() })
    };
}

/// `fut`, or `TimedOut` when it makes no progress for `timeout`.
async fn timed<T>(timeout: Duration, fut: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client stopped reading",
        )),
    }
}

/// All of `slices`, each write given `timeout` to make progress.
async fn write_all<W: Wire>(
    wire: &mut W,
    mut slices: &mut [IoSlice<'_>],
    timeout: Duration,
) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let n = timed(timeout, wire.write_vectored(slices)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

async fn send_bytes(socket: Socket<'_>, mut bytes: &[u8], more: bool, timeout: Duration) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = timed(timeout, socket.send(bytes, more)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    Ok(())
}

/// `[start, end)` of `file` by `sendfile`: on the worker while the pages
/// are in memory, on the blocking pool when the disk must be read, which
/// then asks for the next `PREFETCH_WINDOW` bytes too.
async fn send_span(
    socket: Socket<'_>,
    file: &Arc<File>,
    mut pos: u64,
    end: u64,
    timeout: Duration,
) -> io::Result<()> {
    while pos < end {
        let len = (end - pos).min(SENDFILE_STEP as u64) as usize;
        let sent = if resident(file, pos, len as u64) {
            // The timer is set only for a wait: most steps find room at once.
            let step = |cx: &mut Context<'_>| socket.poll_sendfile(cx, file, pos, len);
            match poll_fn(|cx| Poll::Ready(step(cx))).await {
                Poll::Ready(sent) => sent?,
                Poll::Pending => timed(timeout, poll_fn(step)).await?,
            }
        } else {
            timed(timeout, socket.writable()).await?;
            let (fd, file) = (socket.dup()?, Arc::clone(file));
            let ahead = (end - pos).min(PREFETCH_WINDOW);
            let job = tokio::task::spawn_blocking(move || {
                prefetch(&file, pos, ahead);
                wire::send_blocking(&fd, &file, pos, len)
            });
            match job.await.map_err(io::Error::other)? {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => other?,
            }
        };
        if sent == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "cached file shrank while being served",
            ));
        }
        pos += sent as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::io::Write;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    fn exchange(version: Version) -> Exchange {
        Exchange {
            head_only: false,
            version,
            keep_alive: true,
            timeout: Duration::from_secs(5),
        }
    }

    async fn answer(response: Response<ResponseBody>, ex: Exchange) -> (bool, String) {
        let (mut server, mut client) = pair().await;
        let kept = send(&mut server, response, ex).await.unwrap();
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        (kept, String::from_utf8_lossy(&got).into_owned())
    }

    #[tokio::test]
    async fn lengths_are_announced_and_unknown_ones_chunked() {
        let (kept, text) = answer(
            Response::new(ResponseBody::full("hello")),
            exchange(Version::HTTP_11),
        )
        .await;
        assert!(kept);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ndate: "), "{text}");
        assert!(
            text.contains("\r\ncontent-length: 5\r\n") && text.ends_with("\r\n\r\nhello"),
            "{text}"
        );
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            for p in ["ab", "cde"] {
                tx.send(Bytes::from(p)).await.unwrap();
            }
        });
        let (kept, text) = answer(
            Response::new(ResponseBody::stream(rx)),
            exchange(Version::HTTP_11),
        )
        .await;
        assert!(kept);
        assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn http_1_0_gets_a_closed_connection_for_an_unknown_length() {
        let (_tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        drop(_tx);
        let (kept, text) = answer(
            Response::new(ResponseBody::stream(rx)),
            exchange(Version::HTTP_10),
        )
        .await;
        assert!(!kept);
        assert!(
            text.contains("connection: close\r\n") && !text.contains("chunked"),
            "{text}"
        );
        let (kept, text) = answer(Response::new(ResponseBody::full("x")), exchange(Version::HTTP_10)).await;
        assert!(kept && text.contains("connection: keep-alive\r\n"), "{text}");
    }

    #[tokio::test]
    async fn heads_and_304s_carry_no_body() {
        let mut ex = exchange(Version::HTTP_11);
        ex.head_only = true;
        let response = Response::builder()
            .header(header::CONTENT_LENGTH, 1000)
            .body(ResponseBody::empty())
            .unwrap();
        let (_, text) = answer(response, ex).await;
        assert!(text.ends_with("content-length: 1000\r\n\r\n"), "{text}");
        let response = Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .body(ResponseBody::empty())
            .unwrap();
        let (_, text) = answer(response, exchange(Version::HTTP_11)).await;
        assert!(
            !text.contains("content-length") && text.ends_with("\r\n\r\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn file_spans_go_by_sendfile_and_a_short_file_cuts_the_body() {
        let data: Vec<u8> = (0..3 * SENDFILE_STEP + 17).map(|i| (i % 251) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        let file = Arc::new(File::open(f.path()).unwrap());
        let body = ResponseBody::file(Arc::clone(&file), 5, data.len() as u64);
        let (kept, text) = answer(Response::new(body), exchange(Version::HTTP_11)).await;
        assert!(kept);
        let (head, got) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", data.len() - 5)));
        assert_eq!(got.as_bytes(), String::from_utf8_lossy(&data[5..]).as_bytes());
        // Announced longer than the file is: an error, never a clean end.
        let (mut server, _client) = pair().await;
        let body = ResponseBody::file(file, 0, data.len() as u64 + 10);
        assert!(send(&mut server, Response::new(body), exchange(Version::HTTP_11))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_after_the_timeout() {
        tokio::time::pause();
        let (mut server, _client) = pair().await;
        let body = ResponseBody::full(vec![7u8; 64 * 1024 * 1024]);
        let mut ex = exchange(Version::HTTP_11);
        ex.timeout = Duration::from_secs(2);
        let error = send(&mut server, Response::new(body), ex).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn reasons_and_dates_are_in_the_head() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::DATE,
            HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        let head = encode_head(StatusCode::SERVICE_UNAVAILABLE, b"Connection refused", &headers);
        assert_eq!(
            head,
            b"HTTP/1.1 503 Connection refused\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n"
        );
    }
}
