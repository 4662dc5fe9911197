//! Checksums as the indexes give them: an algorithm and its bytes, parsed
//! strictly from hex (exact length, hex digits only, either case).

use std::fmt;

/// The checksum algorithms of Debian's indexes, weakest first: `Ord` is
/// strength, so the strongest of several is their maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// Every algorithm, weakest first.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Md5,
        Algorithm::Sha1,
        Algorithm::Sha256,
        Algorithm::Sha512,
    ];

    /// Length of a digest in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    /// The name of its list in a Release file, which is also the name of
    /// its `by-hash/` directory: `MD5Sum`, `SHA1`, `SHA256`, `SHA512`.
    pub const fn release_name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5Sum",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.release_name())
    }
}

/// A checksum of one file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digest {
    Md5([u8; 16]),
    Sha1([u8; 20]),
    Sha256([u8; 32]),
    Sha512([u8; 64]),
}

/// Why a hex string is not a digest of the expected algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HexError {
    /// Not the algorithm's number of hex digits.
    Length { expected: usize, found: usize },
    /// A character that is not a hex digit.
    NotHex,
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::Length { expected, found } => {
                write!(f, "{found} hex digits where {expected} belong")
            }
            HexError::NotHex => f.write_str("not a hex digit"),
        }
    }
}

impl std::error::Error for HexError {}

impl Digest {
    /// Parses the hex form of a digest of `algorithm`.
    pub fn parse(algorithm: Algorithm, hex: &str) -> Result<Digest, HexError> {
        Ok(match algorithm {
            Algorithm::Md5 => Digest::Md5(decode(hex)?),
            Algorithm::Sha1 => Digest::Sha1(decode(hex)?),
            Algorithm::Sha256 => Digest::Sha256(decode(hex)?),
            Algorithm::Sha512 => Digest::Sha512(decode(hex)?),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Digest::Md5(_) => Algorithm::Md5,
            Digest::Sha1(_) => Algorithm::Sha1,
            Digest::Sha256(_) => Algorithm::Sha256,
            Digest::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Digest::Md5(b) => b,
            Digest::Sha1(b) => b,
            Digest::Sha256(b) => b,
            Digest::Sha512(b) => b,
        }
    }
}

fn decode<const N: usize>(hex: &str) -> Result<[u8; N], HexError> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * N {
        return Err(HexError::Length {
            expected: 2 * N,
            found: digits.len(),
        });
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(out)
}

fn nibble(c: u8) -> Result<u8, HexError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(HexError::NotHex),
    }
}

/// Lower-case hex, as the indexes write it.
impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes().iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({self})", self.algorithm())
    }
}

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
        digests[digest.algorithm().index()] = Some(digest);
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
        let slot = &mut self.digests[digest.algorithm().index()];
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

    const MD5_EMPTY: &str = "d41d8cd98f00b204e9800998ecf8427e";
    const SHA256_EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hex_of_the_right_length_parses_in_either_case() {
        let d = Digest::parse(Algorithm::Md5, MD5_EMPTY).unwrap();
        assert_eq!(d.to_string(), MD5_EMPTY);
        assert_eq!(d.as_bytes()[0], 0xd4);
        let upper = Digest::parse(Algorithm::Md5, &MD5_EMPTY.to_uppercase()).unwrap();
        assert_eq!(upper, d);
        let s = Digest::parse(Algorithm::Sha256, SHA256_EMPTY).unwrap();
        assert_eq!(s.algorithm(), Algorithm::Sha256);
        assert_eq!(format!("{s:?}"), format!("SHA256({SHA256_EMPTY})"));
    }

    #[test]
    fn wrong_length_or_non_hex_is_an_error() {
        assert_eq!(
            Digest::parse(Algorithm::Sha256, MD5_EMPTY),
            Err(HexError::Length {
                expected: 64,
                found: 32
            })
        );
        assert_eq!(
            Digest::parse(Algorithm::Sha1, ""),
            Err(HexError::Length {
                expected: 40,
                found: 0
            })
        );
        let bad = format!("{}g", &MD5_EMPTY[..31]);
        assert_eq!(Digest::parse(Algorithm::Md5, &bad), Err(HexError::NotHex));
        let spaced = format!(" {}", &MD5_EMPTY[..31]);
        assert_eq!(Digest::parse(Algorithm::Md5, &spaced), Err(HexError::NotHex));
        // Multi-byte characters count as bytes, and are not hex.
        let wide = format!("é{}", &MD5_EMPTY[..30]);
        assert_eq!(Digest::parse(Algorithm::Md5, &wide), Err(HexError::NotHex));
    }

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
