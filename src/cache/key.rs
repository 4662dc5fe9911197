//! `CacheKey`: the path of a cached file relative to `CacheDir`, in
//! apt-cacher-ng's layout (`<repo-or-host>/<path>`, spec §6.1). Built only
//! through validation, so a key can never name anything outside the cache,
//! a sidecar, or debcache's and acng's own files.

use std::fmt;

/// Longest relative path accepted; real ones are under 300 bytes. This is
/// debcache's limit on a URL: a request whose cache path is longer (or one
/// of whose names is longer than [`MAX_COMPONENT`]) gets `414 URI Too Long`.
/// Before it comes hyper's: a request head that does not fit its 64 KiB
/// buffer (`max_buf_size` in `server.rs`) gets `431 Request Header Fields
/// Too Large` and the connection is closed.
/// How the names of debcache's temporary files begin (a pid and a counter
/// follow): never a key's last component, and the walk passes over them.
pub(super) const TEMP_PREFIX: &str = ".~debcache.";

const MAX_LEN: usize = 3000;
/// `NAME_MAX` of Linux file systems.
const MAX_COMPONENT: usize = 255;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

/// Why a path cannot be a cache key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    Empty,
    /// Longer than `MAX_LEN`, or a name longer than `NAME_MAX`.
    TooLong,
    /// `.`, `..`, an empty component, or a NUL byte.
    BadComponent,
    /// The first component starts with `_`: reserved (spec §6.4).
    Reserved,
    /// Ends in `.head`: that name belongs to another file's metadata.
    Sidecar,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::Empty => "empty cache path",
            KeyError::TooLong => "cache path too long",
            KeyError::BadComponent => "invalid path component",
            KeyError::Reserved => "reserved name",
            KeyError::Sidecar => "a .head name",
        })
    }
}

impl std::error::Error for KeyError {}

impl CacheKey {
    /// The key of `rel_path` below the top-level directory `repo`.
    pub fn new(repo: &str, rel_path: &str) -> Result<CacheKey, KeyError> {
        let mut path = String::with_capacity(repo.len() + rel_path.len() + 1);
        path.push_str(repo);
        path.push('/');
        path.push_str(rel_path);
        validate(&path)?;
        Ok(CacheKey(path))
    }

    /// Validates a relative path as found in the cache.
    pub fn parse(path: &str) -> Result<CacheKey, KeyError> {
        validate(path)?;
        Ok(CacheKey(path.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component: the file's name in its directory.
    pub fn file_name(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, name)| name)
    }

    /// The sidecar holding this file's response metadata.
    pub fn head_path(&self) -> String {
        format!("{}.head", self.0)
    }
}

fn validate(path: &str) -> Result<(), KeyError> {
    if path.starts_with('_') {
        return Err(KeyError::Reserved);
    }
    if path.ends_with(".head") {
        return Err(KeyError::Sidecar);
    }
    check_relative(path)
}

/// Checks a path meant to be joined below some directory of the cache (an
/// index's `pool/main/h/hello/hello_2.10-3_amd64.deb`) by the rules of a
/// key's components: not empty, no longer than a key, no `.`, `..` or empty
/// component (so nothing absolute), no NUL, no name over `NAME_MAX`. The
/// rules of a whole key (reserved first names, `.head`) are the caller's
/// once it has joined the path.
pub fn check_relative(path: &str) -> Result<(), KeyError> {
    if path.is_empty() {
        return Err(KeyError::Empty);
    }
    if path.len() > MAX_LEN {
        return Err(KeyError::TooLong);
    }
    for component in path.split('/') {
        if component.is_empty() || component == "." || component == ".." || component.contains('\0') {
            return Err(KeyError::BadComponent);
        }
        if component.len() > MAX_COMPONENT {
            return Err(KeyError::TooLong);
        }
    }
    Ok(())
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_and_path_join() {
        let key = CacheKey::new("debrep", "pool/main/h/hello/hello_2.10-3_amd64.deb").unwrap();
        assert_eq!(key.as_str(), "debrep/pool/main/h/hello/hello_2.10-3_amd64.deb");
        assert_eq!(
            key.head_path(),
            "debrep/pool/main/h/hello/hello_2.10-3_amd64.deb.head"
        );
    }

    #[test]
    fn nothing_outside_or_reserved_is_a_key() {
        let bad = [
            ("", KeyError::Empty),
            ("_xstore/qstats", KeyError::Reserved),
            ("_debcache/lock", KeyError::Reserved),
            ("a/../b", KeyError::BadComponent),
            ("../etc/passwd", KeyError::BadComponent),
            ("a/./b", KeyError::BadComponent),
            ("a//b", KeyError::BadComponent),
            ("/abs/path", KeyError::BadComponent),
            ("a/b/", KeyError::BadComponent),
            ("a/b\0c", KeyError::BadComponent),
            ("debrep/pool/a.deb.head", KeyError::Sidecar),
        ];
        for (path, err) in bad {
            assert_eq!(CacheKey::parse(path), Err(err), "{path:?}");
        }
        assert_eq!(CacheKey::parse(&"x/".repeat(2000)), Err(KeyError::TooLong));
        assert_eq!(
            CacheKey::parse(&format!("h/{}", "n".repeat(256))),
            Err(KeyError::TooLong)
        );
    }

    #[test]
    fn odd_but_legal_names_are_keys() {
        for path in [
            "h/a b_1.0_amd64.deb",
            "h/x_1:2.0~rc1_amd64.deb",
            "h/dir/_under.deb",
            "h/..deb",
            "h/q?x=1",
        ] {
            assert!(CacheKey::parse(path).is_ok(), "{path}");
        }
    }
}
