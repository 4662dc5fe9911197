//! Hashing a download beside its transfer: the received pieces go to a
//! blocking thread of their own as they are written, so the digest costs
//! the transfer no time, only a core. A resumed file's first bytes are read
//! back from disk first (they may come from an earlier run, or from
//! apt-cacher-ng).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::expect::Expected;
use crate::digest::{Digest, Hasher};

/// Batches of pieces queued for the hasher: with the download's writes of
/// about 128 KiB, at most a few MiB wait per download.
const QUEUE: usize = 16;

/// A download being hashed.
#[derive(Debug)]
pub struct Verifier {
    expected: Expected,
    tx: mpsc::Sender<Vec<Bytes>>,
    hashed: JoinHandle<io::Result<(u64, Digest)>>,
}

/// What the bytes are, against what their index says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    Size { got: u64, expected: u64 },
    Digest { got: Digest, expected: Digest },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Size { got, expected } => {
                write!(f, "{got} bytes where its index says {expected}")
            }
            Mismatch::Digest { got, expected } => write!(
                f,
                "{} {got} where its index says {expected}",
                expected.algorithm()
            ),
        }
    }
}

impl Verifier {
    /// Starts hashing `file` against `expected`: its first `prefix` bytes
    /// from disk, then what [`Verifier::feed`] gives. `None` when the
    /// digest is one this build cannot compute.
    pub fn start(expected: Expected, file: Arc<File>, prefix: u64) -> Option<Verifier> {
        let mut hasher = Hasher::new(expected.digest.algorithm())?;
        let (tx, mut rx) = mpsc::channel::<Vec<Bytes>>(QUEUE);
        let hashed = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0; 256 * 1024];
            let mut at = 0;
            while at < prefix {
                let want = buf.len().min(usize::try_from(prefix - at).unwrap_or(usize::MAX));
                match file.read_at(&mut buf[..want], at) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => {
                        hasher.update(&buf[..n]);
                        at += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            while let Some(pieces) = rx.blocking_recv() {
                for piece in pieces {
                    hasher.update(&piece);
                    at += piece.len() as u64;
                }
            }
            Ok((at, hasher.finish()))
        });
        Some(Verifier { expected, tx, hashed })
    }

    pub fn expected(&self) -> &Expected {
        &self.expected
    }

    /// The next bytes of the file, in order. Waits while the hasher is
    /// behind: memory stays bounded, and a download cannot outrun its
    /// verification by more than the queue.
    pub async fn feed(&self, pieces: &[Bytes]) {
        // A hasher that stopped (an unreadable prefix) says so in `finish`.
        let _ = self.tx.send(pieces.to_vec()).await;
    }

    /// The verdict on every byte fed. `Err` when the file could not be
    /// read back.
    pub async fn finish(self) -> io::Result<Result<(), Mismatch>> {
        let Verifier { expected, tx, hashed } = self;
        drop(tx);
        let (size, digest) = hashed.await.map_err(io::Error::other)??;
        Ok(if size != expected.size {
            Err(Mismatch::Size {
                got: size,
                expected: expected.size,
            })
        } else if digest != expected.digest {
            Err(Mismatch::Digest {
                got: digest,
                expected: expected.digest,
            })
        } else {
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;
    use std::io::Write;

    fn expected(content: &[u8]) -> Expected {
        Expected {
            size: content.len() as u64,
            digest: Hasher::of(Algorithm::Sha256, content).unwrap().unwrap(),
        }
    }

    fn file_with(content: &[u8]) -> Arc<File> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        Arc::new(f)
    }

    #[tokio::test]
    async fn a_resumed_file_is_hashed_from_its_first_byte() {
        let v = Verifier::start(expected(b"hello world"), file_with(b"hello"), 5).unwrap();
        v.feed(&[Bytes::from_static(b" wor"), Bytes::from_static(b"ld")])
            .await;
        assert_eq!(v.finish().await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn other_bytes_of_the_same_size_are_a_mismatch() {
        let v = Verifier::start(expected(b"hello world"), file_with(b""), 0).unwrap();
        v.feed(&[Bytes::from_static(b"hello World")]).await;
        assert!(matches!(v.finish().await.unwrap(), Err(Mismatch::Digest { .. })));
        let v = Verifier::start(expected(b"hello"), file_with(b""), 0).unwrap();
        v.feed(&[Bytes::from_static(b"hell")]).await;
        assert_eq!(
            v.finish().await.unwrap(),
            Err(Mismatch::Size { got: 4, expected: 5 })
        );
    }

    #[tokio::test]
    async fn a_prefix_that_cannot_be_read_is_an_error() {
        let v = Verifier::start(expected(b"hello"), file_with(b"he"), 5).unwrap();
        assert!(v.finish().await.is_err());
    }

    #[test]
    fn sha1_is_not_verified() {
        let sha1 = Expected {
            size: 1,
            digest: Digest::Sha1([0; 20]),
        };
        assert!(Verifier::start(sha1, file_with(b""), 0).is_none());
    }
}
