//! File classes and their precedence (spec §3.2): special volatile, then
//! special solid, then volatile, then solid; a path matching none is not
//! served.

use crate::config::FilePatterns;

/// How a cached file is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Index files (`InRelease`, `Packages.xz`): revalidated with the mirror.
    Volatile,
    /// Package files (`.deb`, `by-hash/…`): served from cache until expired.
    Solid,
}

/// The class of a URL path (without the host), or `None` when no pattern
/// matches.
pub fn classify(path: &str, patterns: &FilePatterns) -> Option<FileKind> {
    if patterns.special_volatile.is_match(path) {
        Some(FileKind::Volatile)
    } else if patterns.special_solid.is_match(path) {
        Some(FileKind::Solid)
    } else if patterns.volatile.is_match(path) {
        Some(FileKind::Volatile)
    } else if patterns.solid.is_match(path) {
        Some(FileKind::Solid)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, ConfigDir};

    fn patterns(overrides: &[&str]) -> FilePatterns {
        let words: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        load(ConfigDir::Embedded, &words)
            .config
            .unwrap()
            .requests
            .file_patterns
    }

    #[test]
    fn acng_classifications_hold() {
        let p = patterns(&[]);
        let volatile = [
            "/debian/dists/bookworm/InRelease",
            "/debian/dists/bookworm/main/binary-amd64/Packages.xz",
            "/debian/dists/bookworm/main/i18n/Translation-en.bz2",
            "/debian/dists/bookworm/main/Contents-amd64.gz",
            "/debian/dists/bookworm/main/dep11/Components-amd64.yml.gz",
            "/debian/dists/bookworm/main/dep11/icons-64x64.tar.gz",
            "/debian/dists/bookworm/Release.gpg",
            "/debian/dists/bookworm/main/installer-amd64/current/images/SHA256SUMS",
            "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb.gpg",
        ];
        for path in volatile {
            assert_eq!(classify(path, &p), Some(FileKind::Volatile), "{path}");
        }
        let solid = [
            "/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/0123abcd",
            "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb",
            "/debian/pool/main/h/hello/hello_2.10-3.dsc",
            "/debian/pool/main/h/hello/hello_2.10.orig.tar.gz",
            "/debian/dists/bookworm/main/installer-amd64/20230607/images/netboot/mini.iso",
        ];
        for path in solid {
            assert_eq!(classify(path, &p), Some(FileKind::Solid), "{path}");
        }
        for path in [
            "/foo/bar.html",
            "/debian/dists/bookworm/Release?x=1",
            "/debian/README",
        ] {
            assert_eq!(classify(path, &p), None, "{path}");
        }
    }

    #[test]
    fn md5sum_by_hash_is_refused_as_in_acng() {
        // The default pattern spells the algorithm `(SHA|MD)[0-9]+`.
        assert_eq!(
            classify("/d/dists/x/main/by-hash/MD5Sum/abc", &patterns(&[])),
            None
        );
    }

    #[test]
    fn ex_patterns_extend_their_class_and_special_classes_win() {
        let p = patterns(&[r"PfilePatternEx=\.snap$", r"SPfilePatternEx=special/Packages$"]);
        assert_eq!(classify("/x/a.snap", &p), Some(FileKind::Solid));
        assert_eq!(classify("/x/special/Packages", &p), Some(FileKind::Solid));
        assert_eq!(classify("/x/other/Packages", &p), Some(FileKind::Volatile));
    }
}
