//! One HTTP/1.1 exchange with the daemon, blocking, for `maint`: connect
//! (the unix socket with the daemon's identification handshake, or TCP),
//! send one GET, read the answer's head and stream its body to a sink.
//!
//! - Every wait is bounded by the timeout (acngtool: 30 s): the connect
//!   (a unix socket's too: a full accept queue blocks it), each write, each
//!   read. A task that streams keeps the exchange alive however long it
//!   runs; one silent for that long ends it.
//! - Any answer is taken apart without panicking: a head over 64 KiB or of
//!   more than 100 fields, a bad status line, a framing that is not one, a
//!   body cut short are errors.
//! - [`ExchangeError::Unanswered`] means no answer came at all, so another
//!   way to the daemon may be tried; after a status line, never.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use super::chunked::{ChunkError, Dechunk};

/// acng's `FAKE_UDS_HOSTNAME`: the `Host` of a request on the unix socket.
const SOCKET_HOST: &str = "UNIX-DOMAIN-SOCKET";
/// The identification the daemon's unix socket wants before any request
/// (spec §2.1; acngtool names itself `localhost`).
const IDENTIFICATION: &[u8] = b"GET / HTTP/1.0\r\nX-Original-Source: localhost\r\n\r\n";
const MAX_HEAD: usize = 64 * 1024;
const MAX_FIELDS: usize = 100;
/// `1xx` answers taken before the real one.
const MAX_INTERIM: usize = 10;

/// A way to the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Socket(PathBuf),
    /// A host name or address literal, and a port.
    Tcp(String, u16),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Socket(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp(host, port) if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Tcp(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// What is asked.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The origin-form target, `/acng-report.html?…`; visible ASCII only.
    pub target: &'a str,
    /// The base64 of `user:password`, sent as Basic authentication.
    pub basic: Option<&'a str>,
    pub timeout: Duration,
}

/// The answer's status; its body went to the sink, to its end.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub reason: String,
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    /// Nothing answered: another way to the daemon may.
    Unanswered(Unanswered),
    /// The daemon answered `status`, but not to the end.
    Cut { status: u16, why: Cut },
}

#[derive(Debug)]
pub enum Unanswered {
    Connect(io::Error),
    Send(io::Error),
    /// Closed before a whole head (the daemon closes an unidentified unix
    /// connection so).
    Closed,
    Silent(Duration),
    Receive(io::Error),
    /// Bytes that are no HTTP/1.x response head.
    NotHttp(String),
}

#[derive(Debug)]
pub enum Cut {
    Closed,
    Silent(Duration),
    Receive(io::Error),
    Chunked(ChunkError),
    /// A `Content-Length` that is no length, or two that differ.
    BadLength,
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::Unanswered(why) => match why {
                Unanswered::Connect(_) => f.write_str("cannot connect"),
                Unanswered::Send(_) => f.write_str("cannot send the request"),
                Unanswered::Closed => f.write_str("the connection closed without an answer"),
                Unanswered::Silent(t) => write!(f, "no answer within {t:?}"),
                Unanswered::Receive(_) => f.write_str("cannot read the answer"),
                Unanswered::NotHttp(what) => write!(f, "the answer is not HTTP: {what}"),
            },
            ExchangeError::Cut { status, why } => {
                write!(f, "the answer ({status}) broke off: ")?;
                match why {
                    Cut::Closed => f.write_str("the connection closed before its end"),
                    Cut::Silent(t) => write!(f, "nothing more came for {t:?}"),
                    Cut::Receive(_) => f.write_str("cannot read it"),
                    Cut::Chunked(_) => f.write_str("its chunked framing is broken"),
                    Cut::BadLength => f.write_str("its Content-Length is not one"),
                }
            }
        }
    }
}

impl std::error::Error for ExchangeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExchangeError::Unanswered(
                Unanswered::Connect(e) | Unanswered::Send(e) | Unanswered::Receive(e),
            )
            | ExchangeError::Cut {
                why: Cut::Receive(e), ..
            } => Some(e),
            ExchangeError::Cut {
                why: Cut::Chunked(e), ..
            } => Some(e),
            _ => None,
        }
    }
}

/// Asks `endpoint`; the body goes to `body` as it comes.
pub fn exchange(
    endpoint: &Endpoint,
    request: &Request<'_>,
    body: &mut dyn FnMut(&[u8]),
) -> Result<Answer, ExchangeError> {
    let unanswered = ExchangeError::Unanswered;
    let mut conn = connect(endpoint, request.timeout).map_err(|e| unanswered(Unanswered::Connect(e)))?;
    conn.write_all(&request_bytes(endpoint, request))
        .and_then(|()| conn.flush())
        .map_err(|e| unanswered(Unanswered::Send(e)))?;
    let mut reader = Reader {
        conn,
        buf: vec![0; 16 * 1024],
        timeout: request.timeout,
    };
    let (answer, framing, rest) = read_head(&mut reader).map_err(unanswered)?;
    let status = answer.status;
    read_body(&mut reader, framing, &rest, body).map_err(|why| ExchangeError::Cut { status, why })?;
    Ok(answer)
}

/// The request's bytes: on the unix socket the identification first.
fn request_bytes(endpoint: &Endpoint, request: &Request<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let host = match endpoint {
        Endpoint::Socket(_) => {
            out.extend_from_slice(IDENTIFICATION);
            SOCKET_HOST.to_string()
        }
        tcp @ Endpoint::Tcp(..) => tcp.to_string(),
    };
    let mut head = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: debcache/{} maint\r\nConnection: close\r\n",
        request.target,
        env!("CARGO_PKG_VERSION")
    );
    if let Some(basic) = request.basic {
        head.push_str(&format!("Authorization: Basic {basic}\r\n"));
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    out
}

/// A connected stream, TCP or unix.
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.flush(),
            Conn::Unix(s) => s.flush(),
        }
    }
}

fn connect(endpoint: &Endpoint, timeout: Duration) -> io::Result<Conn> {
    let conn = match endpoint {
        Endpoint::Socket(path) => {
            use rustix::net::{self, sockopt, AddressFamily, SocketFlags, SocketType};
            let fd = net::socket_with(
                AddressFamily::UNIX,
                SocketType::STREAM,
                SocketFlags::CLOEXEC,
                None,
            )?;
            // A unix connect waits for room in a full accept queue up to
            // the send timeout.
            sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(timeout))?;
            net::connect(&fd, &net::SocketAddrUnix::new(path.as_path())?)?;
            let stream = UnixStream::from(fd);
            stream.set_read_timeout(Some(timeout))?;
            Conn::Unix(stream)
        }
        Endpoint::Tcp(host, port) => {
            let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
            let mut connected = None;
            for addr in (host.as_str(), *port).to_socket_addrs()? {
                match TcpStream::connect_timeout(&addr, timeout) {
                    Ok(stream) => {
                        connected = Some(stream);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            let stream = connected.ok_or(last)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(timeout))?;
            stream.set_write_timeout(Some(timeout))?;
            Conn::Tcp(stream)
        }
    };
    Ok(conn)
}

/// Reads with the timeout, interruptions retried.
struct Reader {
    conn: Conn,
    buf: Vec<u8>,
    timeout: Duration,
}

/// One read's outcome.
enum Got<'a> {
    Bytes(&'a [u8]),
    End,
    Silent,
    Failed(io::Error),
}

impl Reader {
    fn read(&mut self) -> Got<'_> {
        loop {
            match self.conn.read(&mut self.buf) {
                Ok(0) => return Got::End,
                Ok(n) => return Got::Bytes(&self.buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Got::Silent
                }
                Err(e) => return Got::Failed(e),
            }
        }
    }
}

/// How the body ends.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    Chunked,
    Length(u64),
    Close,
}

/// The head (1xx heads skipped), its framing, and the bytes read past it.
fn read_head(reader: &mut Reader) -> Result<(Answer, Framing, Vec<u8>), Unanswered> {
    let mut head = Vec::new();
    let mut interim = 0;
    loop {
        match reader.read() {
            Got::Bytes(b) => head.extend_from_slice(b),
            Got::End => return Err(Unanswered::Closed),
            Got::Silent => return Err(Unanswered::Silent(reader.timeout)),
            Got::Failed(e) => return Err(Unanswered::Receive(e)),
        }
        while let Some((answer, framing, len)) = parse_head(&head)? {
            if (100..200).contains(&answer.status) {
                interim += 1;
                if interim > MAX_INTERIM {
                    return Err(Unanswered::NotHttp("interim answers without end".into()));
                }
                head.drain(..len);
                continue;
            }
            return Ok((answer, framing, head.split_off(len)));
        }
        if head.len() > MAX_HEAD {
            return Err(Unanswered::NotHttp("a head longer than 64 KiB".into()));
        }
    }
}

/// A complete head at the start of `bytes`: the answer, its framing, its
/// length; `None` while incomplete.
fn parse_head(bytes: &[u8]) -> Result<Option<(Answer, Framing, usize)>, Unanswered> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut response = httparse::Response::new(&mut fields);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Unanswered::NotHttp(e.to_string())),
    };
    let status = response.code.unwrap_or_default();
    let reason = super::control::printable(response.reason.unwrap_or_default());
    let framing = framing(status, response.headers);
    Ok(Some((Answer { status, reason }, framing, len)))
}

/// RFC 9112 §6.3: chunked when it is the last coding, else until the
/// close; else `Content-Length`; else until the close. A length that is
/// not one is `Length(u64::MAX)`, refused by `read_body`.
fn framing(status: u16, fields: &[httparse::Header<'_>]) -> Framing {
    if status == 204 || status == 304 {
        return Framing::Length(0);
    }
    let values = |name: &str| {
        fields
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| {
                String::from_utf8_lossy(h.value)
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<String>>()
    };
    let codings = values("transfer-encoding");
    if let Some(last) = codings.last() {
        return if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::Close
        };
    }
    let lengths = values("content-length");
    let Some(first) = lengths.first() else {
        return Framing::Close;
    };
    match first.parse::<u64>() {
        Ok(n) if n != u64::MAX && lengths.iter().all(|l| l == first) => Framing::Length(n),
        _ => Framing::Length(u64::MAX),
    }
}

fn read_body(
    reader: &mut Reader,
    framing: Framing,
    rest: &[u8],
    body: &mut dyn FnMut(&[u8]),
) -> Result<(), Cut> {
    let timeout = reader.timeout;
    let mut left = match framing {
        Framing::Chunked => Body::Chunked(Dechunk::default()),
        Framing::Length(u64::MAX) => return Err(Cut::BadLength),
        Framing::Length(n) => Body::Length(n),
        Framing::Close => Body::Close,
    };
    left.take(rest, body)?;
    while !left.is_done() {
        match reader.read() {
            Got::Bytes(b) => left.take(b, body)?,
            Got::End if matches!(left, Body::Close) => return Ok(()),
            Got::End => return Err(Cut::Closed),
            Got::Silent => return Err(Cut::Silent(timeout)),
            Got::Failed(e) => return Err(Cut::Receive(e)),
        }
    }
    Ok(())
}

/// What is left of a body.
enum Body {
    Chunked(Dechunk),
    /// Bytes to go.
    Length(u64),
    /// Until the connection closes.
    Close,
}

impl Body {
    fn take(&mut self, bytes: &[u8], body: &mut dyn FnMut(&[u8])) -> Result<(), Cut> {
        match self {
            Body::Chunked(dechunk) => dechunk.feed(bytes, body).map_err(Cut::Chunked)?,
            Body::Length(left) => {
                let n = usize::try_from(*left).map_or(bytes.len(), |l| l.min(bytes.len()));
                body(&bytes[..n]);
                *left -= n as u64;
            }
            Body::Close => body(bytes),
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        match self {
            Body::Chunked(dechunk) => dechunk.is_done(),
            Body::Length(left) => *left == 0,
            Body::Close => false,
        }
    }
}

#[cfg(test)]
mod tests;
