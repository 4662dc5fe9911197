//! The byte streams a connection is served on: TCP and unix sockets, which
//! take file bodies by `sendfile`, and TLS (an intercepted CONNECT), which
//! takes them as bytes; and a stream with bytes already read put back in
//! front of it (what a CONNECT's client sent after its request).

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Bytes read from a quiet connection in one go (the next request head,
/// usually all of it).
const FIRST_READ: usize = 4096;

/// A stream a connection is served on.
pub trait Wire: AsyncRead + AsyncWrite + Unpin + Send {
    /// The first bytes of the next request, `None` when the client closed.
    /// Sockets wait for them without a buffer.
    fn first_bytes(&mut self) -> impl Future<Output = io::Result<Option<BytesMut>>> + Send {
        async {
            let mut buf = BytesMut::with_capacity(FIRST_READ);
            Ok((self.read_buf(&mut buf).await? > 0).then_some(buf))
        }
    }

    /// The socket itself, when bytes written to it reach the client as they
    /// are (so a file can be handed to the kernel).
    fn socket(&self) -> Option<Socket<'_>> {
        None
    }
}

/// A socket that takes `sendfile`.
#[derive(Clone, Copy)]
pub enum Socket<'a> {
    Tcp(&'a TcpStream),
    Unix(&'a UnixStream),
}

impl Wire for TcpStream {
    async fn first_bytes(&mut self) -> io::Result<Option<BytesMut>> {
        first_bytes(Socket::Tcp(self)).await
    }

    fn socket(&self) -> Option<Socket<'_>> {
        Some(Socket::Tcp(self))
    }
}

impl Wire for UnixStream {
    async fn first_bytes(&mut self) -> io::Result<Option<BytesMut>> {
        first_bytes(Socket::Unix(self)).await
    }

    fn socket(&self) -> Option<Socket<'_>> {
        Some(Socket::Unix(self))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Wire for tokio_rustls::server::TlsStream<S> {}

/// A socket shared by the two halves of a connection: the response being
/// written, and the requests read ahead meanwhile.
impl Wire for Socket<'_> {
    async fn first_bytes(&mut self) -> io::Result<Option<BytesMut>> {
        first_bytes(*self).await
    }

    fn socket(&self) -> Option<Socket<'_>> {
        Some(*self)
    }
}

impl AsyncRead for Socket<'_> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let read = match *self {
                Socket::Tcp(s) => {
                    ready!(s.poll_read_ready(cx))?;
                    s.try_read(buf.initialize_unfilled())
                }
                Socket::Unix(s) => {
                    ready!(s.poll_read_ready(cx))?;
                    s.try_read(buf.initialize_unfilled())
                }
            };
            match read {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Socket<'_> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            let written = match *self {
                Socket::Tcp(s) => {
                    ready!(s.poll_write_ready(cx))?;
                    s.try_write_vectored(bufs)
                }
                Socket::Unix(s) => {
                    ready!(s.poll_write_ready(cx))?;
                    s.try_write_vectored(bufs)
                }
            };
            match written {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(rustix::net::shutdown(self.fd(), rustix::net::Shutdown::Write).map_err(io::Error::from))
    }
}

/// Waits for the socket to have bytes, and only then takes memory for them.
async fn first_bytes(socket: Socket<'_>) -> io::Result<Option<BytesMut>> {
    loop {
        match socket {
            Socket::Tcp(s) => s.readable().await?,
            Socket::Unix(s) => s.readable().await?,
        }
        let mut buf = BytesMut::with_capacity(FIRST_READ);
        let read = match socket {
            Socket::Tcp(s) => s.try_read_buf(&mut buf),
            Socket::Unix(s) => s.try_read_buf(&mut buf),
        };
        match read {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(buf)),
            // Readiness can be stale (a new socket reports it at once).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

impl Socket<'_> {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
        }
    }

    /// Ready when the socket may have bytes to read.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.readable().await,
            Socket::Unix(s) => s.readable().await,
        }
    }

    /// What the socket has now, appended to `buf` (`WouldBlock` if nothing).
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_read_buf(buf),
            Socket::Unix(s) => s.try_read_buf(buf),
        }
    }

    /// Ready when the socket can take bytes (or says it cannot: then the
    /// write gets `WouldBlock`).
    pub async fn writable(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.writable().await,
            Socket::Unix(s) => s.writable().await,
        }
    }

    /// Sends up to `len` bytes of `file` from `offset` as soon as the socket
    /// takes some; how many it took. The file's pages must be in memory
    /// (else the worker waits for the disk: see [`send_blocking`]).
    pub fn poll_sendfile(
        &self,
        cx: &mut Context<'_>,
        file: &File,
        offset: u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            // A short send means the socket is full: its readiness is
            // cleared (as a `WouldBlock` does), so the next send waits for
            // the kernel to say there is room, and goes out in one large
            // piece rather than many small ones (half the CPU of a 10 MB
            // hit went to those).
            let mut short = None;
            let send = || {
                let mut at = offset;
                let n = rustix::fs::sendfile(self.fd(), file, Some(&mut at), len)?;
                if n > 0 && n < len {
                    short = Some(n);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            };
            let sent = match self {
                Socket::Tcp(s) => {
                    ready!(s.poll_write_ready(cx))?;
                    s.try_io(Interest::WRITABLE, send)
                }
                Socket::Unix(s) => {
                    ready!(s.poll_write_ready(cx))?;
                    s.try_io(Interest::WRITABLE, send)
                }
            };
            match (sent, short) {
                (_, Some(n)) => return Poll::Ready(Ok(n)),
                (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => {}
                (Err(e), None) if e.kind() == io::ErrorKind::Interrupted => {}
                (other, None) => return Poll::Ready(other),
            }
        }
    }

    /// Sends bytes of `buf` as soon as the socket takes some; with `more`,
    /// telling TCP that more follows at once (`MSG_MORE`: a head and a
    /// short file after it leave in one segment, not a small one first).
    pub async fn send(&self, buf: &[u8], more: bool) -> io::Result<usize> {
        let flags = if more {
            rustix::net::SendFlags::MORE
        } else {
            rustix::net::SendFlags::empty()
        };
        let send = || rustix::net::send(self.fd(), buf, flags).map_err(io::Error::from);
        loop {
            let sent = match self {
                Socket::Tcp(s) => s.async_io(Interest::WRITABLE, send).await,
                Socket::Unix(s) => s.async_io(Interest::WRITABLE, send).await,
            };
            match sent {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// A descriptor of the socket of its own, for a `sendfile` on the
    /// blocking pool: one that outlives the connection's task, should that
    /// be dropped meanwhile (the number could be another client's by then).
    pub fn dup(&self) -> io::Result<OwnedFd> {
        self.fd().try_clone_to_owned()
    }
}

/// `sendfile` that may wait for the disk, for the blocking pool. The
/// socket does not block: a full one gives `WouldBlock`.
pub fn send_blocking(socket: &OwnedFd, file: &File, offset: u64, len: usize) -> io::Result<usize> {
    loop {
        let mut at = offset;
        match rustix::fs::sendfile(socket, file, Some(&mut at), len) {
            Err(rustix::io::Errno::INTR) => {}
            other => return other.map_err(io::Error::from),
        }
    }
}

/// A stream with bytes already read from it put back in front.
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Bytes, inner: S) -> Prefixed<S> {
        Prefixed { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let n = self.prefix.len().min(buf.remaining());
        buf.put_slice(&self.prefix[..n]);
        self.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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
