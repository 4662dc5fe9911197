//! Indexes that are one paragraph of checksum lists, `hex size path` per
//! continuation line, paths relative to the index's own directory:
//!
//! | kind | lists | also |
//! |---|---|---|
//! | `Release`, `InRelease` | `MD5Sum`, `SHA1`, `SHA256`, `SHA512` | `Acquire-By-Hash`; the by-hash objects; the clear-signed frame stripped |
//! | `i18n/Index` | the same | |
//! | pdiff `Index` (`Packages.diff/Index`) | `SHA1-Download`, `SHA256-Download`, `SHA512-Download` (the patches as fetched); `*-History`, `*-Patches`, `*-Current` describe content, not files, and are passed over | |
//!
//! A path may be in several lists: the lists are merged per path (sizes
//! must agree, and digests of one algorithm), and each path is reported
//! once, with its strongest digest, after the whole file is read. The
//! memory this takes is one entry per path (≤ [`MAX_FILES`](super::MAX_FILES)); the lines
//! themselves are never kept.

use std::collections::BTreeMap;

use super::armour::Armour;
use super::deb822::{Line, Reader};
use super::error::{IndexError, Problem};
use super::fields::{entry, join, merge};
use super::sums::Sums;
use super::{Listed, Reference, Summary};
use crate::digest::Algorithm;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flavour {
    Release,
    Translations,
    Diffs,
}

const RELEASE_LISTS: [(&str, Algorithm); 4] = [
    ("MD5Sum", Algorithm::Md5),
    ("SHA1", Algorithm::Sha1),
    ("SHA256", Algorithm::Sha256),
    ("SHA512", Algorithm::Sha512),
];

const DIFF_LISTS: [(&str, Algorithm); 3] = [
    ("SHA1-Download", Algorithm::Sha1),
    ("SHA256-Download", Algorithm::Sha256),
    ("SHA512-Download", Algorithm::Sha512),
];

impl Flavour {
    /// The armour this kind of file may come in.
    pub(super) fn armour(self) -> Armour {
        match self {
            Flavour::Release => Armour::First,
            Flavour::Translations | Flavour::Diffs => Armour::Off,
        }
    }

    /// The list a field starts, if it is one of this kind's.
    fn list(self, field: &str) -> Option<(&'static str, Algorithm)> {
        let lists: &[(&'static str, Algorithm)] = match self {
            Flavour::Release | Flavour::Translations => &RELEASE_LISTS,
            Flavour::Diffs => &DIFF_LISTS,
        };
        lists
            .iter()
            .copied()
            .find(|(name, _)| name.eq_ignore_ascii_case(field))
    }
}

/// What has been read so far.
#[derive(Default)]
struct State {
    files: BTreeMap<String, Sums>,
    /// The list whose lines are being read.
    list: Option<Algorithm>,
    seen: [bool; 4],
    paragraphs: u64,
    acquire_by_hash: bool,
}

pub(super) fn parse(
    reader: &mut Reader<'_>,
    flavour: Flavour,
    each: &mut dyn FnMut(Listed),
) -> Result<Summary, IndexError> {
    let mut state = State::default();
    while let Some(line) = reader.next_line()? {
        let read = match line {
            Line::Field { name, value } => state.field(flavour, name, value),
            Line::Continuation(text) => state.line(text),
            Line::End => {
                state.paragraphs += 1;
                state.list = None;
                Ok(())
            }
        };
        read.map_err(|problem| reader.error(problem))?;
    }
    if state.paragraphs == 0 {
        return Err(IndexError::whole(Problem::Empty));
    }
    let mut summary = Summary {
        acquire_by_hash: state.acquire_by_hash,
        signed: reader.signed(),
        ..Summary::default()
    };
    for (path, sums) in state.files {
        let (Some(digest), Some(size)) = (sums.strongest(), sums.known_size()) else {
            continue;
        };
        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir).to_string();
        each(Listed::File(Reference { path, size, digest }));
        summary.files += 1;
        if flavour != Flavour::Release {
            continue;
        }
        for digest in sums.all() {
            let object = format!("by-hash/{}/{digest}", digest.algorithm().release_name());
            each(Listed::ByHash(Reference {
                path: join(&dir, &object),
                size,
                digest,
            }));
            summary.by_hash += 1;
        }
    }
    Ok(summary)
}

impl State {
    fn field(&mut self, flavour: Flavour, name: &str, value: &[u8]) -> Result<(), Problem> {
        if self.paragraphs > 0 {
            return Err(Problem::SecondParagraph);
        }
        self.list = None;
        if let Some((field, algorithm)) = flavour.list(name) {
            if std::mem::replace(&mut self.seen[algorithm as usize], true) {
                return Err(Problem::Duplicate { field });
            }
            if !value.is_empty() {
                return Err(Problem::ValueOnListLine { field });
            }
            self.list = Some(algorithm);
        } else if flavour == Flavour::Release && name.eq_ignore_ascii_case("Acquire-By-Hash") {
            self.acquire_by_hash = value.eq_ignore_ascii_case(b"yes");
        }
        Ok(())
    }

    fn line(&mut self, text: &[u8]) -> Result<(), Problem> {
        let Some(algorithm) = self.list else {
            return Ok(());
        };
        let (digest, size, path) = entry(algorithm, text)?;
        merge(&mut self.files, path, size, digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{parse as parse_kind, IndexKind};

    const MD5_A: &str = "0123456789abcdef0123456789abcdef";
    const SHA1_A: &str = "0123456789abcdef0123456789abcdef01234567";
    const SHA256_A: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn run(kind: IndexKind, text: &str) -> Result<(Vec<Listed>, Summary), IndexError> {
        let mut got = Vec::new();
        let summary = parse_kind(kind, text.as_bytes(), |l| got.push(l))?;
        Ok((got, summary))
    }

    fn paths(listed: &[Listed]) -> Vec<String> {
        listed
            .iter()
            .map(|l| match l {
                Listed::File(r) => format!("{} {} {:?}", r.path, r.size, r.digest.algorithm()),
                Listed::ByHash(r) => format!("#{} {}", r.path, r.size),
            })
            .collect()
    }

    #[test]
    fn release_lists_merge_per_path_to_the_strongest_digest() {
        let text = format!(
            "Origin: x\nAcquire-By-Hash: yes\nMD5Sum:\n {MD5_A} 10 main/binary-all/Packages\n {MD5_A} 3 Contents-all\n\
             SHA256:\n {SHA256_A} 10 main/binary-all/Packages\n"
        );
        let (listed, summary) = run(IndexKind::Release, &text).unwrap();
        assert_eq!(
            paths(&listed),
            [
                "Contents-all 3 Md5".to_string(),
                format!("#by-hash/MD5Sum/{MD5_A} 3"),
                "main/binary-all/Packages 10 Sha256".to_string(),
                format!("#main/binary-all/by-hash/MD5Sum/{MD5_A} 10"),
                format!("#main/binary-all/by-hash/SHA256/{SHA256_A} 10"),
            ]
        );
        assert_eq!(
            summary,
            Summary {
                files: 2,
                by_hash: 3,
                acquire_by_hash: true,
                signed: false
            }
        );
    }

    #[test]
    fn other_fields_and_their_continuations_are_passed_over() {
        let text = format!("Description: a\n long one\nSHA1:\n {SHA1_A} 1 a\nChangelogs: x\n");
        let (listed, summary) = run(IndexKind::Release, &text).unwrap();
        assert_eq!(
            paths(&listed),
            ["a 1 Sha1".to_string(), format!("#by-hash/SHA1/{SHA1_A} 1")]
        );
        assert!(!summary.acquire_by_hash);
    }

    #[test]
    fn contradicting_lists_and_bad_lines_are_errors_at_their_line() {
        let cases = [
            (
                format!("MD5Sum:\n {MD5_A} 10 a\nSHA1:\n {SHA1_A} 11 a\n"),
                4,
                "\"a\" is listed with two sizes or checksums",
            ),
            (
                format!("MD5Sum:\n {MD5_A} 10 a\n 00112233445566778899aabbccddeeff 10 a\n"),
                3,
                "\"a\" is listed with two sizes or checksums",
            ),
            (format!("SHA256:\n {MD5_A} 10 a\n"), 2, "a bad SHA256 digest"),
            (
                "SHA256: x\n".to_string(),
                1,
                "field SHA256 has a value on its first line",
            ),
            (
                format!("SHA1:\n {SHA1_A} 1 a\nsha1:\n"),
                3,
                "field SHA1 given twice",
            ),
            (format!("SHA1:\n {SHA1_A} 1 ../a\n"), 2, "unsafe path \"../a\""),
            (format!("SHA1:\n {SHA1_A} 1\n"), 2, "not a `hex size name` line"),
            (
                format!("SHA1:\n {SHA1_A} -1 a\n"),
                2,
                "size \"-1\" is not a number",
            ),
            ("Origin: a\n\nOrigin: b\n".to_string(), 3, "a second paragraph"),
        ];
        for (text, line, message) in cases {
            let err = run(IndexKind::Release, &text).unwrap_err();
            assert_eq!(
                (err.line(), err.problem().to_string()),
                (Some(line), message.to_string()),
                "{text}"
            );
        }
        let err = run(IndexKind::Release, "").unwrap_err();
        assert!(matches!(err.problem(), Problem::Empty));
    }

    #[test]
    fn clear_signed_release_parses_like_plain_and_says_so() {
        let text = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSHA1:\n {SHA1_A} 1 a\n\
             -----BEGIN PGP SIGNATURE-----\n\nxx\n-----END PGP SIGNATURE-----\n"
        );
        let (listed, summary) = run(IndexKind::Release, &text).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(summary.signed);
        let cut = &text[..text.find("-----BEGIN PGP SIGNATURE").unwrap()];
        assert!(matches!(
            run(IndexKind::Release, cut).unwrap_err().problem(),
            Problem::NoSignature
        ));
    }

    #[test]
    fn i18n_index_lists_translations_without_by_hash() {
        let text = format!("SHA1:\n {SHA1_A} 1093 Translation-en.bz2\n {SHA1_A} 1093 Translation-de.bz2\n");
        let (listed, summary) = run(IndexKind::Translations, &text).unwrap();
        assert_eq!(
            paths(&listed),
            ["Translation-de.bz2 1093 Sha1", "Translation-en.bz2 1093 Sha1"]
        );
        assert_eq!(summary.by_hash, 0);
    }

    #[test]
    fn pdiff_index_lists_the_downloads_only() {
        let text = format!(
            "SHA256-Current: {SHA256_A} 1000\nSHA256-History:\n {SHA256_A} 900 T-1\n\
             SHA256-Patches:\n {SHA256_A} 50 T-1\nSHA256-Download:\n {SHA256_A} 40 T-1.gz\n\
             X-Patch-Precedence: merged\n"
        );
        let (listed, _) = run(IndexKind::Diffs, &text).unwrap();
        assert_eq!(paths(&listed), ["T-1.gz 40 Sha256"]);
    }

    #[test]
    fn a_release_is_signed_only_in_release_files() {
        let text = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSHA1:\n";
        assert!(matches!(
            run(IndexKind::Translations, text).unwrap_err().problem(),
            Problem::NoColon
        ));
    }
}
