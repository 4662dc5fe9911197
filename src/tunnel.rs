//! CONNECT tunnels: once the client got `200 Connection established`, bytes
//! are copied both ways until both sides have closed, neither has sent a
//! byte for the idle timeout, or the daemon closes its last connections.
//! A side that closes is passed on as a half-close, so a client that has
//! sent everything still gets the whole answer. Nothing is cached.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::log::ConnLog;

/// Each direction's buffer.
const BUF: usize = 16 * 1024;

/// An opened tunnel, waiting for the `200` to reach the client.
#[derive(Debug)]
pub struct Tunnel {
    /// `host:port`, for the transfer log.
    pub name: String,
    pub upstream: TcpStream,
}

/// Bytes moved, each way.
#[derive(Debug, Default)]
struct Counts {
    to_upstream: AtomicU64,
    to_client: AtomicU64,
}

/// Runs the tunnel between `client` and its upstream; `closing` resolves
/// when the daemon cuts its remaining connections. Writes one transfer-log
/// record: O the bytes sent to the client, I the bytes the client sent
/// through the tunnel.
pub async fn run<C>(
    client: C,
    tunnel: Tunnel,
    idle: Duration,
    closing: impl Future<Output = ()>,
    log: &Arc<ConnLog>,
) where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let counts = Counts::default();
    let last = std::sync::Mutex::new(Instant::now());
    let touch = || *last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut up_read, mut up_write) = tunnel.upstream.into_split();
    let both = async {
        tokio::join!(
            pump(&mut client_read, &mut up_write, &counts.to_upstream, &touch),
            pump(&mut up_read, &mut client_write, &counts.to_client, &touch),
        )
    };
    let watchdog = async {
        loop {
            let deadline = *last.lock().unwrap_or_else(|p| p.into_inner()) + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    let ended = tokio::select! {
        (up, down) = both => match up.and(down) {
            Ok(()) => "closed",
            Err(_) => "broken",
        },
        _ = watchdog => "idle",
        _ = closing => "cut at shutdown",
    };
    let (up, down) = (
        counts.to_upstream.load(Ordering::Relaxed),
        counts.to_client.load(Ordering::Relaxed),
    );
    tracing::debug!(
        client = log.client(),
        "tunnel to {} {ended}: {up} bytes up, {down} down",
        tunnel.name
    );
    log.tunnel(tunnel.name, up, down);
}

/// Copies `from` to `to` until `from` ends, then half-closes `to`.
async fn pump<R, W>(from: &mut R, to: &mut W, count: &AtomicU64, touch: &impl Fn()) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        touch();
        to.write_all(&buf[..n]).await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    /// A running tunnel with `idle`: the client's end, the mirror's end,
    /// and the task.
    async fn tunnel(idle: Duration) -> (TcpStream, TcpStream, tokio::task::JoinHandle<()>) {
        let (client, served) = pair().await;
        let (upstream, mirror) = pair().await;
        let sink = Arc::new(crate::log::TransferLog::open(None, false, false).unwrap());
        let log = ConnLog::new(sink, Arc::new(crate::stats::Stats::new([])), "test");
        let tunnel = Tunnel {
            name: "mirror:443".into(),
            upstream,
        };
        let running = tokio::spawn(async move {
            run(served, tunnel, idle, std::future::pending(), &log).await;
        });
        (client, mirror, running)
    }

    #[tokio::test]
    async fn bytes_go_both_ways_and_a_half_close_passes_through() {
        let (mut client, mut mirror, running) = tunnel(Duration::from_secs(30)).await;
        client.write_all(b"hello").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        mirror.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello", "the client's half-close reached the mirror");
        mirror.write_all(b"answer after the client's end").await.unwrap();
        drop(mirror);
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"answer after the client's end");
        running.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_tunnel_is_closed() {
        let (mut client, _mirror, running) = tunnel(Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        running.await.unwrap();
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0, "closed");
    }
}
