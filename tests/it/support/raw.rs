//! A mirror that answers every request with the same bytes, verbatim: the
//! responses hyper would never send (garbage in a chunked body, a length it
//! does not keep). After them it holds the connection open until the mirror
//! is dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct RawOrigin {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl RawOrigin {
    pub fn start(response: &[u8]) -> RawOrigin {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("raw-origin")
            .enable_all()
            .build()
            .expect("raw origin runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the raw origin");
        let addr = listener.local_addr().expect("raw origin address");
        let requests = Arc::<AtomicUsize>::default();
        let (response, counter) = (Arc::new(response.to_vec()), Arc::clone(&requests));
        runtime.spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (response, counter) = (Arc::clone(&response), Arc::clone(&counter));
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    if stream.write_all(&response).await.is_ok() {
                        std::future::pending::<()>().await;
                    }
                });
            }
        });
        RawOrigin {
            addr,
            requests,
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests whose head arrived.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for RawOrigin {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}
