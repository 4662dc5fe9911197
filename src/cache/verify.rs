//! Hashing a download beside its transfer: each batch of pieces is hashed
//! on the blocking pool while the download receives and writes the next
//! one, so the digest costs the transfer no time, only a core. One batch is
//! hashed at a time, in order, and no thread waits between batches (a
//! thread held per download could starve the pool the writes need). A
//! resumed file's first bytes are read back from disk first (they may come
//! from an earlier run, or from apt-cacher-ng).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::expect::Expected;
use crate::digest::{Digest, Fingerprint, Hasher};

/// The hasher and the bytes it has seen.
type Hashed = io::Result<(Hasher, u64)>;

/// A download being hashed.
#[derive(Debug)]
pub struct Verifier {
    expected: Expected,
    /// The batch being hashed, which hands the hasher back (taken only
    /// while the next is handed over).
    hashing: Option<JoinHandle<Hashed>>,
}

/// What the bytes are, against what their index says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    Size { got: u64, expected: u64 },
    Digest { got: Digest, expected: Fingerprint },
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
        let mut hasher = Hasher::new(expected.sum.algorithm())?;
        let hashing = tokio::task::spawn_blocking(move || {
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
            Ok((hasher, at))
        });
        Some(Verifier {
            expected,
            hashing: Some(hashing),
        })
    }

    pub fn expected(&self) -> &Expected {
        &self.expected
    }

    /// The next bytes of the file, in order: hashed once the batch before
    /// them is, while the caller goes on. Waits only for that earlier
    /// batch, so memory stays bounded and the download cannot outrun its
    /// verification by more than one batch.
    pub async fn feed(&mut self, pieces: &[Bytes]) {
        let pieces = pieces.to_vec();
        let earlier = self.hashed().await;
        self.hashing = Some(tokio::task::spawn_blocking(move || {
            let (mut hasher, mut at) = earlier?;
            for piece in &pieces {
                hasher.update(piece);
                at += piece.len() as u64;
            }
            Ok((hasher, at))
        }));
    }

    /// The hasher once every batch fed is hashed.
    async fn hashed(&mut self) -> Hashed {
        match self.hashing.take() {
            Some(batch) => batch.await.unwrap_or_else(|e| Err(io::Error::other(e))),
            None => Err(io::Error::other("verification stopped")),
        }
    }

    /// The verdict on every byte fed. `Err` when the file could not be
    /// read back.
    pub async fn finish(mut self) -> io::Result<Result<(), Mismatch>> {
        let (hasher, size) = self.hashed().await?;
        let (expected, digest) = (self.expected, hasher.finish());
        Ok(if size != expected.size {
            Err(Mismatch::Size {
                got: size,
                expected: expected.size,
            })
        } else if digest.fingerprint() != expected.sum {
            Err(Mismatch::Digest {
                got: digest,
                expected: expected.sum,
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
            sum: Hasher::of(Algorithm::Sha256, content)
                .unwrap()
                .unwrap()
                .fingerprint(),
        }
    }

    fn file_with(content: &[u8]) -> Arc<File> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        Arc::new(f)
    }

    #[tokio::test]
    async fn a_resumed_file_is_hashed_from_its_first_byte() {
        let mut v = Verifier::start(expected(b"hello world"), file_with(b"hello"), 5).unwrap();
        v.feed(&[Bytes::from_static(b" wor"), Bytes::from_static(b"ld")])
            .await;
        assert_eq!(v.finish().await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn other_bytes_of_the_same_size_are_a_mismatch() {
        let mut v = Verifier::start(expected(b"hello world"), file_with(b""), 0).unwrap();
        v.feed(&[Bytes::from_static(b"hello World")]).await;
        assert!(matches!(v.finish().await.unwrap(), Err(Mismatch::Digest { .. })));
        let mut v = Verifier::start(expected(b"hello"), file_with(b""), 0).unwrap();
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
            sum: Digest::Sha1([0; 20]).fingerprint(),
        };
        assert!(Verifier::start(sha1, file_with(b""), 0).is_none());
    }
}
