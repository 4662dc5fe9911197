//! The file-class patterns (spec §3.1), compiled once at load time. Each class
//! is acng's built-in pattern (overridable, though its docs say not to) OR-ed
//! with its `…Ex` companion for local additions. The precedence between
//! classes lives with the classifier in `request::kind`.

use regex::Regex;

/// acng 3.7.4's built-in `VfilePattern`, exactly as `acngtool cfgdump` prints it.
pub const VFILE_DEFAULT: &str = r"(^|.*/)(Index|Packages(\.gz|\.bz2|\.lzma|\.xz|\.zst)?|InRelease|Release|mirrors\.txt|.*\.gpg|NEWS\.Debian|Sources(\.gz|\.bz2|\.lzma|\.xz|\.zst)?|release|index\.db-.*\.gz|Contents-[^/]*(\.gz|\.bz2|\.lzma|\.xz|\.zst)?|pkglist[^/]*\.bz2|rclist[^/]*\.bz2|meta-release[^/]*|Translation[^/]*(\.gz|\.bz2|\.lzma|\.xz|\.zst)?|(SHA|MD)[0-9]+SUM|((setup|setup-legacy)(\.ini|\.bz2|\.hint)(\.sig)?)|mirrors\.lst|repo(index|md)\.xml(\.asc|\.key)?|directory\.yast|products|content(\.asc|\.key)?|media|filelists\.xml\.gz|filelists\.sqlite\.bz2|repomd\.xml|packages\.[[:alpha:]]{2}\.gz|info\.txt|license\.tar\.gz|license\.zip|.*\.(db|files|abs)(\.tar(\.gz|\.bz2|\.lzma|\.xz|\.zst)(\.sig)?)?|metalink\?repo|.*prestodelta\.xml\.gz|repodata/.*\.(yaml|yml|xml|sqlite)(\.gz|\.bz2|\.lzma|\.xz|\.zst)?|\.treeinfo|vmlinuz|(initrd|product|squashfs|updates)\.img|\.o|Components-.*yml(\.gz|\.bz2|\.lzma|\.xz|\.zst)?|icons-[x0-9]+\.tar(\.gz|\.bz2|\.lzma|\.xz|\.zst)?|CID-Index-[[:alnum:]]+\.json(\.gz|\.bz2|\.lzma|\.xz|\.zst)?|(latest|pub)\.ssl)$|/dists/.*/installer-[^/]+/[^0-9][^/]+/images/.*|/pks/lookup.op.get|centos/.*/images/.*img|connectivity-check.html|ubiquity/.*update|getubuntu/releasenotes|wiki.ubuntu.com/.*/ReleaseNotes|ubuntu/dists/.*\.html|metadata.(ftp-master.debian|tanglu).org/changelogs/.*|/refs/heads/app.*|/repo/(summary|config)(\.sig)?|/Service/News$";

/// acng 3.7.4's built-in `PfilePattern`.
pub const PFILE_DEFAULT: &str = r"^.*((\.[ud]?deb|\.rpm|\.drpm|\.dsc|\.tar(\.gz|\.bz2|\.lzma|\.xz|\.zst)(\.sig)?)|\.diff(\.gz|\.bz2|\.lzma|\.xz|\.zst)|\.jigdo|\.template|changelog|copyright|\.debdelta|\.diff/.*\.gz|[a-f0-9]+-(susedata|updateinfo|primary|deltainfo).xml.gz|fonts/(final/)?[a-z]+32.exe(\?download.*)?|/dists/.*/installer-[^/]+/[0-9][^/]+/images/.*|/[[:alpha:]]{1,2}/[a-f0-9]{64}(-[a-f0-9]{64})?(\.gz)?|/by-hash/(SHA|MD)[0-9]+/.*|\.asc$|changelogs/pool/.*/changelog.txt$|/objects/.*/.*\.(dirtree|filez|commit|commitmeta)|/repo/deltas/.*|[a-f0-9]+-modules.yaml.gz|[a-f0-9]+-(primary|filelists|comps-[^.]*.[^.]*|updateinfo|prestodelta).xml(|.gz|.xz|.zck))$";

/// acng 3.7.4's built-in `SVfilePattern`.
pub const SVFILE_DEFAULT: &str = r"/development/rawhide/.*|dists/.*dist-upgrader.*/current/.*|changelogs.ubuntu.com/meta.*|(^|.*/).*(\.[ud]?deb|\.rpm|\.drpm|\.dsc|\.tar(\.gz|\.bz2|\.lzma|\.xz|\.zst)(\.sig)?)\.gpg$";

/// acng 3.7.4's built-in `WfilePattern`.
pub const WFILE_DEFAULT: &str = r"(^|.*/)(Release|InRelease|.*\.gpg|(Packages|Sources)(\.gz|\.bz2|\.lzma|\.xz|\.zst)?|.*\.xml|setup\.bz2(.sig)?|.*\.(db|files|abs)(\.tar(\.gz|\.bz2|\.lzma|\.xz|\.zst)(\.sig)?)?|[a-z]+32.exe|mirrors.ubuntu.com/mirrors.txt|/[[:alpha:]]{1,2}/[a-f0-9]{64}(-[a-f0-9]{64})?(\.gz)?)$";

/// One class: the built-in pattern and the local `…Ex` addition; either may be
/// empty.
#[derive(Clone, Debug, Default)]
pub struct Class {
    pub base: Option<Regex>,
    pub extra: Option<Regex>,
}

impl Class {
    pub fn is_match(&self, path: &str) -> bool {
        self.base.as_ref().is_some_and(|r| r.is_match(path))
            || self.extra.as_ref().is_some_and(|r| r.is_match(path))
    }
}

/// All file classes of the configuration.
#[derive(Clone, Debug, Default)]
pub struct FilePatterns {
    /// `SVfilePattern`: volatile, overriding everything else.
    pub special_volatile: Class,
    /// `SPfilePattern`: solid, overriding `VfilePattern`.
    pub special_solid: Class,
    /// `VfilePattern`: index files, revalidated.
    pub volatile: Class,
    /// `PfilePattern`: packages, served from cache until expired.
    pub solid: Class,
    /// `WfilePattern`: never expired as unreferenced.
    pub whitelist: Class,
}

/// Compiles one pattern with acng's POSIX extended syntax (which the `regex`
/// crate accepts for every shipped pattern, `[[:alpha:]]` classes included).
pub fn compile(pattern: &str) -> Result<Option<Regex>, regex::Error> {
    if pattern.is_empty() {
        return Ok(None);
    }
    Regex::new(pattern).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_defaults_compile() {
        for p in [VFILE_DEFAULT, PFILE_DEFAULT, SVFILE_DEFAULT, WFILE_DEFAULT] {
            assert!(compile(p).unwrap().is_some());
        }
    }

    #[test]
    fn empty_pattern_matches_nothing() {
        let class = Class {
            base: compile("").unwrap(),
            extra: None,
        };
        assert!(!class.is_match("anything"));
    }

    #[test]
    fn extra_pattern_is_or_ed() {
        let class = Class {
            base: compile(r"\.deb$").unwrap(),
            extra: compile(r"\.snap$").unwrap(),
        };
        assert!(class.is_match("a.deb") && class.is_match("b.snap") && !class.is_match("c.txt"));
    }
}
