//! How upstream connections are made: straight to the mirror, or to an HTTP
//! proxy that is then sent absolute-form requests. The transport is
//! plain TCP; TLS plugs in here when it lands.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::BoxError;
use crate::url::HttpUrl;

/// Connects to the destination, or to `proxy` when set.
#[derive(Clone, Debug)]
pub struct Connector {
    tcp: HttpConnector,
    /// The proxy's address; an error when it cannot be one, which fails
    /// each connection rather than going around the proxy.
    proxy: Option<Result<Uri, String>>,
}

impl Connector {
    pub fn new(proxy: Option<&HttpUrl>, connect_timeout: Duration, fast_timeout: Duration) -> Connector {
        let mut tcp = HttpConnector::new();
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.set_happy_eyeballs_timeout(Some(fast_timeout));
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let proxy = proxy.map(|p| {
            let authority = p.authority();
            format!("http://{authority}/").parse().map_err(|_| authority)
        });
        Connector { tcp, proxy }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, destination: Uri) -> Self::Future {
        let proxied = self.proxy.is_some();
        let target = match &self.proxy {
            None => destination,
            Some(Ok(proxy)) => proxy.clone(),
            Some(Err(proxy)) => {
                let error = format!("unusable proxy address {proxy}");
                return Box::pin(async move { Err(error.into()) });
            }
        };
        let connecting = self.tcp.call(target);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(Conn { io, proxied })
        })
    }
}

/// A connection, remembering whether it goes through a proxy (hyper then
/// sends absolute-form request targets).
pub struct Conn {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
