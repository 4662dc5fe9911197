//! Checksums as the indexes give them: an algorithm and its bytes, parsed
//! strictly from hex (exact length, hex digits only, either case), and
//! computed over a stream ([`Hasher`]). Below both the index model and the
//! cache, which verifies downloads with it.

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

    /// Its algorithm and first [`FINGERPRINT_LEN`] bytes.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut bytes = [0; FINGERPRINT_LEN];
        let own = self.as_bytes();
        let n = own.len().min(FINGERPRINT_LEN);
        bytes[..n].copy_from_slice(&own[..n]);
        Fingerprint {
            algorithm: self.algorithm(),
            bytes,
        }
    }
}

/// Bytes of a digest a [`Fingerprint`] keeps: MD5's whole length.
pub const FINGERPRINT_LEN: usize = 16;

/// The first 128 bits of a digest, with its algorithm: what the checksum
/// table keeps of each file, a quarter of a SHA-512's room. Other bytes
/// with the same first 128 bits of a SHA-256 are as far out of reach as
/// with all 256: a second preimage costs 2^128 tries either way.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    algorithm: Algorithm,
    bytes: [u8; FINGERPRINT_LEN],
}

impl Fingerprint {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// Lower-case hex, then `…` where the digest goes on.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        if self.algorithm.digest_len() > FINGERPRINT_LEN {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({self})", self.algorithm)
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

/// A digest being computed over bytes fed in order. SHA-1 has none: no
/// current index gives it as its strongest, and we carry no SHA-1 code.
pub struct Hasher(State);

enum State {
    Md5(md5::Md5),
    Sha256(sha2::Sha256),
    Sha512(Box<sha2::Sha512>),
}

impl Hasher {
    /// A hasher for `algorithm`; `None` for SHA-1.
    pub fn new(algorithm: Algorithm) -> Option<Hasher> {
        use sha2::Digest as _;
        Some(Hasher(match algorithm {
            Algorithm::Md5 => State::Md5(md5::Md5::new()),
            Algorithm::Sha1 => return None,
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => State::Sha512(Box::new(sha2::Sha512::new())),
        }))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest as _;
        match &mut self.0 {
            State::Md5(h) => h.update(bytes),
            State::Sha256(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        use sha2::Digest as _;
        match self.0 {
            State::Md5(h) => Digest::Md5(h.finalize().into()),
            State::Sha256(h) => Digest::Sha256(h.finalize().into()),
            State::Sha512(h) => Digest::Sha512(h.finalize().into()),
        }
    }

    /// The digest of everything `input` gives; `None` for SHA-1.
    pub fn of(algorithm: Algorithm, mut input: impl std::io::Read) -> std::io::Result<Option<Digest>> {
        let Some(mut hasher) = Hasher::new(algorithm) else {
            return Ok(None);
        };
        let mut buf = vec![0; 256 * 1024];
        loop {
            match input.read(&mut buf) {
                Ok(0) => return Ok(Some(hasher.finish())),
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The digests of nothing, for tests here and in the index model.
    pub(crate) const MD5_EMPTY: &str = "d41d8cd98f00b204e9800998ecf8427e";
    pub(crate) const SHA256_EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

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
    fn hashers_agree_with_the_known_digests_of_nothing() {
        for (algorithm, hex) in [(Algorithm::Md5, MD5_EMPTY), (Algorithm::Sha256, SHA256_EMPTY)] {
            let digest = Hasher::of(algorithm, &b""[..]).unwrap().unwrap();
            assert_eq!(digest, Digest::parse(algorithm, hex).unwrap());
        }
        let mut split = Hasher::new(Algorithm::Sha512).unwrap();
        split.update(b"ab");
        split.update(b"c");
        assert_eq!(
            Some(split.finish()),
            Hasher::of(Algorithm::Sha512, &b"abc"[..]).unwrap(),
            "fed in pieces or at once, the same digest"
        );
        assert!(Hasher::new(Algorithm::Sha1).is_none());
    }

    #[test]
    fn a_fingerprint_is_the_digests_first_128_bits() {
        let sha = Digest::parse(Algorithm::Sha256, SHA256_EMPTY).unwrap();
        let print = sha.fingerprint();
        assert_eq!(print.algorithm(), Algorithm::Sha256);
        assert_eq!(print.to_string(), format!("{}…", &SHA256_EMPTY[..32]));
        let md5 = Digest::parse(Algorithm::Md5, MD5_EMPTY).unwrap();
        assert_eq!(md5.fingerprint().to_string(), MD5_EMPTY, "all of it");
        let mut other = *sha.as_bytes().first_chunk::<32>().unwrap();
        other[31] ^= 1;
        assert_eq!(
            Digest::Sha256(other).fingerprint(),
            print,
            "past 128 bits: the same"
        );
        other[0] ^= 1;
        assert_ne!(Digest::Sha256(other).fingerprint(), print);
        assert_ne!(
            Digest::Md5(*sha.as_bytes().first_chunk::<16>().unwrap()).fingerprint(),
            print,
            "the algorithm is part of it"
        );
    }
}
