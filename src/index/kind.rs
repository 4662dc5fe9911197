//! Which cached files are indexes that name other files, and which
//! directory the names they give are relative to. Pure: the path alone
//! decides, never the content.
//!
//! | path (cache-relative) | kind | base |
//! |---|---|---|
//! | `debrep/dists/bookworm/InRelease`, `…/Release` | [`IndexKind::Release`] | its directory |
//! | `debrep/dists/bookworm/main/binary-amd64/Packages{,.gz,.bz2,.xz,.lzma,.zst,.lz4}` | [`IndexKind::Packages`] | the part before the last `/dists/`: `debrep` |
//! | `debrep/dists/bookworm/main/source/Sources.xz` | [`IndexKind::Sources`] | the same |
//! | `flat/Packages.gz` (a flat repository, no `dists/`) | Packages, Sources | its directory |
//! | `debrep/dists/bookworm/main/i18n/Index` | [`IndexKind::Translations`] | its directory |
//! | `debrep/dists/bookworm/main/binary-amd64/Packages.diff/Index` | [`IndexKind::Diffs`] | its directory |
//! | `Translation-*`, `Contents-*`, `Release.gpg`, by-hash objects, patches | none: data files a Release lists, not indexes naming others | |

use super::suffix::split_suffix;

/// The kinds of index [`parse`](super::parse) reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// `dists/bookworm/InRelease`: the suite's checksum lists (and by-hash).
    Release,
    /// `dists/bookworm/main/binary-amd64/Packages.xz`: binary packages.
    Packages,
    /// `dists/bookworm/main/source/Sources.xz`: source packages.
    Sources,
    /// `dists/bookworm/main/i18n/Index`: the `Translation-*` files.
    Translations,
    /// `dists/bookworm/main/binary-amd64/Packages.diff/Index`: pdiff patches.
    Diffs,
}

impl IndexKind {
    pub const ALL: [IndexKind; 5] = [
        IndexKind::Release,
        IndexKind::Packages,
        IndexKind::Sources,
        IndexKind::Translations,
        IndexKind::Diffs,
    ];
}

/// An index file's kind and the directory its paths are relative to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classified<'a> {
    pub kind: IndexKind,
    /// A prefix of the path, without a trailing `/`; empty for the top.
    pub base: &'a str,
}

/// What the index file at `path` (relative to the cache directory) is.
pub fn classify(path: &str) -> Option<Classified<'_>> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let (stem, suffix) = split_suffix(name);
    let kind = match (stem, suffix) {
        ("Release" | "InRelease", None) => IndexKind::Release,
        ("Packages", _) => IndexKind::Packages,
        ("Sources", _) => IndexKind::Sources,
        ("Index", None) => {
            let parent = dir.rsplit('/').next().unwrap_or(dir);
            if parent == "i18n" {
                IndexKind::Translations
            } else if parent.len() > ".diff".len() && parent.ends_with(".diff") {
                IndexKind::Diffs
            } else {
                return None;
            }
        }
        _ => return None,
    };
    let base = match kind {
        IndexKind::Packages | IndexKind::Sources => archive_root(dir),
        IndexKind::Release | IndexKind::Translations | IndexKind::Diffs => dir,
    };
    Some(Classified { kind, base })
}

/// The directory above `dists/` for a directory below it; a flat
/// repository's index is at its root.
fn archive_root(dir: &str) -> &str {
    if let Some(at) = dir.rfind("/dists/") {
        &dir[..at]
    } else if dir.starts_with("dists/") {
        ""
    } else {
        dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_classify_with_their_base() {
        let cases = [
            (
                "debrep/dists/bookworm/InRelease",
                IndexKind::Release,
                "debrep/dists/bookworm",
            ),
            (
                "debrep/dists/bookworm/Release",
                IndexKind::Release,
                "debrep/dists/bookworm",
            ),
            (
                "debrep/dists/bookworm/main/binary-amd64/Release",
                IndexKind::Release,
                "debrep/dists/bookworm/main/binary-amd64",
            ),
            (
                "debrep/dists/bookworm/main/binary-amd64/Packages.xz",
                IndexKind::Packages,
                "debrep",
            ),
            (
                "debrep/dists/bookworm/main/binary-amd64/Packages",
                IndexKind::Packages,
                "debrep",
            ),
            (
                "debrep/dists/bookworm/main/binary-amd64/Packages.zst",
                IndexKind::Packages,
                "debrep",
            ),
            (
                "debrep/dists/bookworm/main/binary-amd64/Packages.lz4",
                IndexKind::Packages,
                "debrep",
            ),
            (
                "security.debian.org/debian-security/dists/bookworm-security/main/source/Sources.gz",
                IndexKind::Sources,
                "security.debian.org/debian-security",
            ),
            (
                "uburep/dists/jammy/universe/i18n/Index",
                IndexKind::Translations,
                "uburep/dists/jammy/universe/i18n",
            ),
            (
                "debrep/dists/sid/main/binary-amd64/Packages.diff/Index",
                IndexKind::Diffs,
                "debrep/dists/sid/main/binary-amd64/Packages.diff",
            ),
            (
                "debrep/dists/sid/main/i18n/Translation-en.diff/Index",
                IndexKind::Diffs,
                "debrep/dists/sid/main/i18n/Translation-en.diff",
            ),
            (
                "example.org/flat/Packages.gz",
                IndexKind::Packages,
                "example.org/flat",
            ),
            ("example.org/flat/Release", IndexKind::Release, "example.org/flat"),
            ("Packages", IndexKind::Packages, ""),
            ("dists/x/main/binary-all/Packages", IndexKind::Packages, ""),
        ];
        for (path, kind, base) in cases {
            assert_eq!(classify(path), Some(Classified { kind, base }), "{path}");
        }
    }

    #[test]
    fn data_files_are_not_indexes() {
        for path in [
            "debrep/dists/bookworm/main/i18n/Translation-en.bz2",
            "debrep/dists/bookworm/main/i18n/Translation-en",
            "debrep/dists/bookworm/main/Contents-amd64.gz",
            "debrep/dists/bookworm/Release.gpg",
            "debrep/dists/bookworm/InRelease.gz",
            "debrep/dists/bookworm/main/binary-amd64/by-hash/SHA256/e3b0c44298fc1c14",
            "debrep/dists/sid/main/binary-amd64/Packages.diff/T-2024-01-01-0000.00-F-2023.gz",
            "debrep/dists/bookworm/main/Index",
            "debrep/dists/bookworm/main/.diff/Index",
            "debrep/pool/main/h/hello/hello_2.10-3_amd64.deb",
            "debrep/dists/bookworm/main/binary-amd64/Packages.old",
        ] {
            assert_eq!(classify(path), None, "{path}");
        }
    }
}
