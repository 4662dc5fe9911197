//! What several checksum lists say of one file, merged.

use crate::digest::Digest;

/// The digests one file is listed with, one slot per algorithm, and its
/// size: what several lists (a Release's `MD5Sum` … `SHA512`, a Sources
/// paragraph's `Files` … `Checksums-Sha512`) say of one path, merged.
#[derive(Clone, Debug, Default)]
pub(super) struct Sums {
    size: Option<u64>,
    digests: [Option<Digest>; 4],
}

/// Two lists disagree about a file.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Conflict;

impl Sums {
    pub(super) fn of(size: u64, digest: Digest) -> Sums {
        let mut digests = [None; 4];
        digests[digest.algorithm() as usize] = Some(digest);
        Sums {
            size: Some(size),
            digests,
        }
    }

    /// Records a size; a different size given before is a conflict.
    pub(super) fn size(&mut self, size: u64) -> Result<(), Conflict> {
        match self.size {
            Some(known) if known != size => Err(Conflict),
            _ => {
                self.size = Some(size);
                Ok(())
            }
        }
    }

    /// Records a digest; a different one of the same algorithm is a
    /// conflict, the same one again is not.
    pub(super) fn digest(&mut self, digest: Digest) -> Result<(), Conflict> {
        let slot = &mut self.digests[digest.algorithm() as usize];
        match slot {
            Some(known) if *known != digest => Err(Conflict),
            _ => {
                *slot = Some(digest);
                Ok(())
            }
        }
    }

    pub(super) fn known_size(&self) -> Option<u64> {
        self.size
    }

    pub(super) fn strongest(&self) -> Option<Digest> {
        self.digests.iter().rev().flatten().next().copied()
    }

    /// Every digest given, weakest first.
    pub(super) fn all(&self) -> impl Iterator<Item = Digest> + '_ {
        self.digests.iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::tests::{MD5_EMPTY, SHA256_EMPTY};
    use crate::digest::Algorithm;

    #[test]
    fn strongest_digest_wins_whatever_the_order() {
        let md5 = Digest::parse(Algorithm::Md5, MD5_EMPTY).unwrap();
        let sha256 = Digest::parse(Algorithm::Sha256, SHA256_EMPTY).unwrap();
        let sha1 = Digest::Sha1([7; 20]);
        let mut sums = Sums::default();
        assert_eq!(sums.strongest(), None);
        sums.digest(sha256).unwrap();
        sums.digest(md5).unwrap();
        sums.digest(sha1).unwrap();
        assert_eq!(sums.strongest(), Some(sha256));
        assert_eq!(sums.all().collect::<Vec<_>>(), vec![md5, sha1, sha256]);
        assert!(Algorithm::Sha512 > Algorithm::Sha256 && Algorithm::Sha1 > Algorithm::Md5);
    }

    #[test]
    fn merging_keeps_agreement_and_refuses_contradiction() {
        let mut sums = Sums::default();
        sums.size(10).unwrap();
        sums.size(10).unwrap();
        assert_eq!(sums.size(11), Err(Conflict));
        sums.digest(Digest::Sha1([1; 20])).unwrap();
        sums.digest(Digest::Sha1([1; 20])).unwrap();
        assert_eq!(sums.digest(Digest::Sha1([2; 20])), Err(Conflict));
        assert_eq!(sums.known_size(), Some(10));
    }
}
