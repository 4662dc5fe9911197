//! The values the parsers read, checked strictly: sizes, paths, and the
//! `hex size name` lines of checksum lists. A hostile or broken value is a
//! [`Problem`], never a reference.

use std::collections::btree_map::{BTreeMap, Entry};

use super::error::Problem;
use super::sums::Sums;
use super::MAX_FILES;
use crate::cache::{check_relative, KeyError};
use crate::digest::{Algorithm, Digest};
use crate::request::path::normalise;

/// `bytes` as text.
pub(super) fn text(bytes: &[u8]) -> Result<&str, Problem> {
    std::str::from_utf8(bytes).map_err(Problem::NotUtf8)
}

/// A size: decimal digits only (no sign, no space), fitting 64 bits.
pub(super) fn size(value: &str) -> Result<u64, Problem> {
    let bad = |source| Problem::Size {
        value: value.to_string(),
        source,
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(None));
    }
    value.parse().map_err(|e| bad(Some(e)))
}

/// A digest of `algorithm` from its hex.
pub(super) fn digest(algorithm: Algorithm, hex: &str) -> Result<Digest, Problem> {
    Digest::parse(algorithm, hex).map_err(|source| Problem::Digest { algorithm, source })
}

/// A path below the index's base directory, with `.` components and
/// repeated slashes taken out (`./pool/a.deb` from `dpkg-scanpackages .`
/// is `pool/a.deb`), refused when absolute, climbing, or carrying a control
/// byte. The empty path (`.`, a Sources `Directory` of a flat repository)
/// is allowed only where `empty_ok`.
pub(super) fn path(raw: &str, empty_ok: bool) -> Result<String, Problem> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(Problem::ControlInPath {
            path: raw.to_string(),
        });
    }
    let refuse = |source| Problem::Path {
        path: raw.to_string(),
        source,
    };
    if raw.starts_with('/') {
        // An empty first component, as a key check would say; normalising
        // below would otherwise make it relative.
        return Err(refuse(KeyError::BadComponent));
    }
    let rooted = format!("/{raw}");
    let normal = normalise(&rooted);
    let relative = normal.strip_prefix('/').unwrap_or(&normal);
    if relative.is_empty() && empty_ok {
        return Ok(String::new());
    }
    check_relative(relative).map_err(refuse)?;
    Ok(relative.to_string())
}

/// `dir/name`, or `name` when `dir` is empty.
pub(super) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// One line of a checksum list, `hex size name` separated by spaces or
/// tabs: the digest, the size and the checked path.
pub(super) fn entry(algorithm: Algorithm, line: &[u8]) -> Result<(Digest, u64, String), Problem> {
    let line = text(line)?;
    let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
    let (Some(hex), Some(size_text), Some(name), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(Problem::NotAnEntry);
    };
    Ok((digest(algorithm, hex)?, size(size_text)?, path(name, false)?))
}

/// Adds what one list line says of `path` to what the other lists said:
/// the same size, and for each algorithm one digest. At most
/// [`MAX_FILES`] paths.
pub(super) fn merge(
    files: &mut BTreeMap<String, Sums>,
    path: String,
    size: u64,
    digest: Digest,
) -> Result<(), Problem> {
    let count = files.len();
    match files.entry(path) {
        Entry::Occupied(mut known) => {
            let sums = known.get_mut();
            if sums.size(size).is_err() || sums.digest(digest).is_err() {
                return Err(Problem::Conflict {
                    path: known.key().clone(),
                });
            }
            Ok(())
        }
        Entry::Vacant(_) if count >= MAX_FILES => Err(Problem::TooManyFiles),
        Entry::Vacant(new) => {
            new.insert(Sums::of(size, digest));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_plain_decimal() {
        assert!(matches!(size("0"), Ok(0)));
        assert!(matches!(size("12345"), Ok(12345)));
        for bad in ["", "+1", "-1", "1 ", "0x10", "1e3", "½"] {
            assert!(
                matches!(size(bad), Err(Problem::Size { source: None, .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            size("99999999999999999999"),
            Err(Problem::Size { source: Some(_), .. })
        ));
    }

    #[test]
    fn paths_are_normalised_or_refused() {
        assert_eq!(path("pool/main/a.deb", false).unwrap(), "pool/main/a.deb");
        assert_eq!(path("./a_1.0_all.deb", false).unwrap(), "a_1.0_all.deb");
        assert_eq!(path("pool//./x.deb", false).unwrap(), "pool/x.deb");
        assert_eq!(path(".", true).unwrap(), "");
        assert!(matches!(
            path(".", false),
            Err(Problem::Path {
                source: KeyError::Empty,
                ..
            })
        ));
        for climbing in ["../etc/passwd", "pool/../../x", "a/.."] {
            assert!(
                matches!(
                    path(climbing, false),
                    Err(Problem::Path {
                        source: KeyError::BadComponent,
                        ..
                    })
                ),
                "{climbing}"
            );
        }
        assert!(matches!(
            path("/etc/passwd", false),
            Err(Problem::Path {
                source: KeyError::BadComponent,
                ..
            })
        ));
        for control in ["a\0b", "a\nb", "a\x1bb", "a\x7fb"] {
            assert!(
                matches!(path(control, false), Err(Problem::ControlInPath { .. })),
                "{control:?}"
            );
        }
        assert!(matches!(
            path(&"n".repeat(300), false),
            Err(Problem::Path {
                source: KeyError::TooLong,
                ..
            })
        ));
    }

    #[test]
    fn entries_are_exactly_three_words() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        let (d, n, p) = entry(Algorithm::Md5, format!("{md5}  \t 0 main/x").as_bytes()).unwrap();
        assert_eq!((d.to_string(), n, p.as_str()), (md5.to_string(), 0, "main/x"));
        for bad in [
            String::new(),
            md5.to_string(),
            format!("{md5} 0"),
            format!("{md5} 0 a b"),
        ] {
            assert!(
                matches!(entry(Algorithm::Md5, bad.as_bytes()), Err(Problem::NotAnEntry)),
                "{bad:?}"
            );
        }
        assert!(matches!(
            entry(Algorithm::Sha1, format!("{md5} 0 a").as_bytes()),
            Err(Problem::Digest { .. })
        ));
        assert!(matches!(
            entry(Algorithm::Md5, format!("{md5} x 0").as_bytes()),
            Err(Problem::Size { .. })
        ));
        assert!(matches!(
            entry(Algorithm::Md5, b"\xff 0 a"),
            Err(Problem::NotUtf8(_))
        ));
    }
}
