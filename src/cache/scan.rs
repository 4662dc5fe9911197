//! The cache walked: every data file with the verdict of its `.head`, for
//! counting (and, later, expiration), in memory that does not grow with
//! the number of files.
//!
//! | entry | found as |
//! |---|---|
//! | a top-level name starting with `_` (`_debcache`, `_xstore`, `_import`, …) | skipped (spec §6.4) |
//! | a top-level file | skipped: not in a repository |
//! | a top-level symlink resolved when the cache was opened (a linked repository, `storage`) | walked, nothing below it followed |
//! | any other symlink, FIFO, socket, device | skipped, never opened |
//! | `NAME`, a regular file | [`Found::Data`]: its repository (the first path component), its length, and whether `NAME.head` makes it complete, by the rule `Cache::lookup` serves by ([`Head::is_complete`]) |
//! | `NAME.head` without a regular `NAME` | [`Found::HeadAlone`] (acng's "gone" heads, or data removed by hand) |
//! | `.~debcache.*` | skipped: a download in progress (`storage`'s temporary names) |
//! | a directory that cannot be opened or read, or deeper than [`MAX_DEPTH`] | [`Found::Unreadable`], and the walk goes on beside it |
//!
//! Directories are read with `getdents` (`rustix::fs::Dir`), their entries'
//! types from the entry itself (`statat` without following only where the
//! file system does not say), each directory opened relative to its parent
//! with `O_NOFOLLOW | O_DIRECTORY`: no path is resolved twice and no symlink
//! is followed. Memory: one open directory per level (a descriptor and a
//! read buffer of at most 24 KiB), at most [`MAX_DEPTH`] levels, the path of
//! the current directory, one `.head` buffer; [`Census`] keeps one tally
//! per repository.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{fstat, openat, statat, AtFlags, Dir, FileType, Mode, OFlags};

use super::key::TEMP_PREFIX;
use super::meta::{Head, MAX_HEAD_SIZE};

/// Directories below a repository's own that the walk enters; real caches
/// are about ten deep.
pub const MAX_DEPTH: usize = 64;

/// What is wrong with a data file's `.head`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// There is none.
    NoHead,
    /// It does not parse.
    BadHead,
    /// The data is longer than it says.
    Longer,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Damage::NoHead => "no .head",
            Damage::BadHead => "its .head cannot be read",
            Damage::Longer => "longer than its .head says",
        })
    }
}

/// One thing the walk found.
#[derive(Debug)]
pub enum Found {
    /// A data file.
    Data {
        repo: Arc<str>,
        /// Below the cache directory (the text of its cache key).
        path: String,
        len: u64,
        /// Bytes the file system holds for it and its `.head`
        /// (preallocation included).
        allocated: u64,
        /// Its `.head` says it is whole: it would be served as a hit.
        complete: bool,
        /// Why it can be neither served nor resumed; `None` for a complete
        /// file or a partial one (shorter than its `.head` expects).
        damage: Option<Damage>,
        /// Its data's access time (a hit reads it; `relatime` renews it
        /// once a day at most).
        accessed: SystemTime,
        /// Its data's modification time.
        modified: SystemTime,
    },
    /// A `.head` with no data file beside it.
    HeadAlone { repo: Arc<str> },
    /// A directory not counted; its path below the cache directory.
    Unreadable { path: String, problem: Problem },
}

#[cfg(test)]
impl Found {
    /// A data file as the walk would report it, for tests of its readers.
    pub fn data(repo: &Arc<str>, len: u64, complete: bool) -> Found {
        Found::Data {
            repo: Arc::clone(repo),
            path: format!("{repo}/f"),
            len,
            allocated: len,
            complete,
            damage: None,
            accessed: UNIX_EPOCH,
            modified: UNIX_EPOCH,
        }
    }
}

/// Why a directory was not counted.
#[derive(Debug)]
pub enum Problem {
    Io(io::Error),
    TooDeep,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Io(e) => write!(f, "{e}"),
            Problem::TooDeep => write!(f, "more than {MAX_DEPTH} directories deep"),
        }
    }
}

impl std::error::Error for Problem {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Problem::Io(e) => Some(e),
            Problem::TooDeep => None,
        }
    }
}

/// The walk, one [`Found`] at a time (made by `Storage::walk`).
pub struct Walk {
    /// The cache root's entries: the repositories still to walk. `None`
    /// once read to the end, or when it could not be read.
    root: Option<Dir>,
    /// The cache root, for `*at` calls.
    root_fd: OwnedFd,
    /// Repository directories that are symlinks, resolved at start-up.
    linked: Vec<(String, OwnedFd)>,
    /// The directories being read, the repository's own first.
    stack: Vec<Level>,
    repo: Arc<str>,
    /// The innermost directory's path below the cache root.
    path: String,
    head: Vec<u8>,
}

impl fmt::Debug for Walk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Walk")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

struct Level {
    entries: Dir,
    /// The directory again, for `*at` calls (`Dir` reads from its own).
    fd: OwnedFd,
    /// `path`'s length before this level's name was added.
    parent_len: usize,
}

impl Walk {
    /// Walks the repositories below `root` (an open cache directory).
    pub(super) fn new(root: BorrowedFd<'_>, linked: &[(String, OwnedFd)]) -> io::Result<Walk> {
        let linked = linked
            .iter()
            .map(|(name, fd)| Ok((name.clone(), fd.try_clone()?)))
            .collect::<io::Result<_>>()?;
        Ok(Walk {
            // Its own open file, so that reading it moves no offset the
            // cache's descriptor shares.
            root: Some(Dir::read_from(root)?),
            root_fd: root.try_clone_to_owned()?,
            linked,
            stack: Vec::new(),
            repo: Arc::from(""),
            path: String::new(),
            head: Vec::with_capacity(1024),
        })
    }

    /// Enters the next repository; `None` when there is none left.
    fn next_repo(&mut self) -> Option<Result<(), Found>> {
        loop {
            let root = self.root.as_mut()?;
            let entry = match root.read() {
                None => {
                    self.root = None;
                    return None;
                }
                Some(Err(e)) => {
                    self.root = None;
                    return Some(Err(unreadable(String::new(), e.into())));
                }
                Some(Ok(entry)) => entry,
            };
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." || name.starts_with(b"_") {
                continue;
            }
            let name_text = String::from_utf8_lossy(name).into_owned();
            let at = self.root_fd.as_fd();
            let opened = match kind(at, &entry) {
                FileType::Directory => open_dir(at, entry.file_name()),
                FileType::Symlink => match self.linked.iter().find(|(n, _)| *n == name_text) {
                    Some((_, fd)) => fd.try_clone(),
                    None => continue,
                },
                _ => continue,
            };
            self.path.clear();
            self.path.push_str(&name_text);
            self.repo = Arc::from(name_text);
            return Some(self.enter(opened, 0));
        }
    }

    /// Pushes an opened directory whose name was just added to `path`.
    fn enter(&mut self, opened: io::Result<OwnedFd>, parent_len: usize) -> Result<(), Found> {
        let level = opened.and_then(|fd| {
            Ok(Level {
                entries: Dir::read_from(&fd).map_err(io::Error::from)?,
                fd,
                parent_len,
            })
        });
        match level {
            Ok(level) => {
                self.stack.push(level);
                Ok(())
            }
            Err(e) => {
                let path = self.path.clone();
                self.path.truncate(parent_len);
                Err(unreadable(path, e))
            }
        }
    }

    fn leave(&mut self) {
        if let Some(level) = self.stack.pop() {
            self.path.truncate(level.parent_len);
        }
    }

    /// What one entry of the innermost directory is, if it is counted.
    fn visit(&mut self, entry: &rustix::fs::DirEntry) -> Option<Found> {
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            return None;
        }
        let at = self.stack.last()?.fd.as_fd();
        match kind(at, entry) {
            FileType::Directory => {
                let parent_len = self.path.len();
                self.path.push('/');
                self.path.push_str(&String::from_utf8_lossy(bytes));
                if self.stack.len() > MAX_DEPTH {
                    let path = self.path.clone();
                    self.path.truncate(parent_len);
                    return Some(Found::Unreadable {
                        path,
                        problem: Problem::TooDeep,
                    });
                }
                let opened = open_dir(at, name);
                self.enter(opened, parent_len).err()
            }
            FileType::RegularFile if bytes.starts_with(TEMP_PREFIX.as_bytes()) => None,
            FileType::RegularFile => match bytes.strip_suffix(b".head") {
                Some(data) => {
                    let beside = statat(at, data, AtFlags::SYMLINK_NOFOLLOW);
                    let has_data =
                        beside.is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile);
                    (!has_data).then(|| Found::HeadAlone {
                        repo: Arc::clone(&self.repo),
                    })
                }
                None => {
                    // Gone since it was listed: nothing to count.
                    let st = statat(at, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
                    let len = st.st_size as u64;
                    let head = read_head(at, bytes, &mut self.head).ok();
                    let parsed = head.map(|_| Head::parse(&self.head));
                    let complete = matches!(&parsed, Some(Ok(h)) if h.is_complete(len));
                    let damage = match &parsed {
                        None => Some(Damage::NoHead),
                        Some(Err(_)) => Some(Damage::BadHead),
                        Some(Ok(h)) if h.expected_length.or(h.content_length).is_some_and(|n| n < len) => {
                            Some(Damage::Longer)
                        }
                        Some(Ok(_)) => None,
                    };
                    Some(Found::Data {
                        repo: Arc::clone(&self.repo),
                        path: format!("{}/{}", self.path, String::from_utf8_lossy(bytes)),
                        len,
                        allocated: (st.st_blocks as u64 + head.unwrap_or(0)) * 512,
                        complete,
                        damage,
                        accessed: time(st.st_atime, st.st_atime_nsec),
                        modified: time(st.st_mtime, st.st_mtime_nsec),
                    })
                }
            },
            _ => None,
        }
    }
}

impl Iterator for Walk {
    type Item = Found;

    fn next(&mut self) -> Option<Found> {
        loop {
            let Some(level) = self.stack.last_mut() else {
                match self.next_repo()? {
                    Ok(()) => continue,
                    Err(found) => return Some(found),
                }
            };
            match level.entries.read() {
                None => self.leave(),
                Some(Err(e)) => {
                    let path = self.path.clone();
                    self.leave();
                    return Some(unreadable(path, e.into()));
                }
                Some(Ok(entry)) => {
                    if let Some(found) = self.visit(&entry) {
                        return Some(found);
                    }
                }
            }
        }
    }
}

fn unreadable(path: String, e: io::Error) -> Found {
    Found::Unreadable {
        path,
        problem: Problem::Io(e),
    }
}

/// An entry's type, from the entry when the file system says it.
fn kind(at: BorrowedFd<'_>, entry: &rustix::fs::DirEntry) -> FileType {
    match entry.file_type() {
        FileType::Unknown => statat(at, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
            .map_or(FileType::Unknown, |st| FileType::from_raw_mode(st.st_mode)),
        known => known,
    }
}

fn open_dir(at: BorrowedFd<'_>, name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    openat(at, name, flags, Mode::empty()).map_err(Into::into)
}

/// A file time from `stat`'s seconds and nanoseconds (before 1970: 1970).
fn time(secs: i64, nanos: impl TryInto<u32>) -> SystemTime {
    let nanos = nanos.try_into().unwrap_or(0).min(999_999_999);
    u64::try_from(secs).map_or(UNIX_EPOCH, |secs| UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Reads `data.head` beside a data file into `buf`, at most one byte more
/// than a head may have (`Head::parse` refuses that), and says how many
/// 512-byte blocks it holds. Only a regular file is read: `O_NONBLOCK` keeps
/// a FIFO planted there from stalling the walk.
fn read_head(at: BorrowedFd<'_>, data: &[u8], buf: &mut Vec<u8>) -> io::Result<u64> {
    buf.clear();
    let mut name = Vec::with_capacity(data.len() + 5);
    name.extend_from_slice(data);
    name.extend_from_slice(b".head");
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = openat(at, name.as_slice(), flags, Mode::empty())?;
    let st = fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    std::fs::File::from(fd)
        .take(MAX_HEAD_SIZE as u64 + 1)
        .read_to_end(buf)?;
    Ok(st.st_blocks as u64)
}

/// Files and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Files {
    pub count: u64,
    pub bytes: u64,
}

impl Files {
    pub fn add(&mut self, len: u64) {
        self.count += 1;
        self.bytes = self.bytes.saturating_add(len);
    }

    fn plus(self, other: Files) -> Files {
        Files {
            count: self.count + other.count,
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

/// What one repository holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Served as hits.
    pub complete: Files,
    /// Data without a `.head` that makes it whole: partial downloads,
    /// files without a `.head`, damaged ones.
    pub partial: Files,
    /// `.head` files without data.
    pub heads_alone: u64,
}

impl Tally {
    pub fn plus(&self, other: &Tally) -> Tally {
        Tally {
            complete: self.complete.plus(other.complete),
            partial: self.partial.plus(other.partial),
            heads_alone: self.heads_alone + other.heads_alone,
        }
    }
}

/// The walk's findings summed per repository as they come.
#[derive(Clone, Debug, Default)]
pub struct Census {
    pub repos: BTreeMap<Arc<str>, Tally>,
    /// Directories not counted.
    pub unreadable: u64,
}

impl Census {
    pub fn add(&mut self, found: &Found) {
        match found {
            Found::Data {
                repo, len, complete, ..
            } => {
                let tally = self.tally(repo);
                if *complete {
                    tally.complete.add(*len);
                } else {
                    tally.partial.add(*len);
                }
            }
            Found::HeadAlone { repo } => self.tally(repo).heads_alone += 1,
            Found::Unreadable { .. } => self.unreadable += 1,
        }
    }

    fn tally(&mut self, repo: &Arc<str>) -> &mut Tally {
        self.repos.entry(Arc::clone(repo)).or_default()
    }

    /// All repositories together.
    pub fn total(&self) -> Tally {
        self.repos.values().fold(Tally::default(), |sum, t| sum.plus(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Storage;
    use std::fs;
    use std::path::Path;

    fn put(root: &Path, rel: &str, bytes: &[u8]) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    fn head(len: usize) -> String {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")
    }

    fn census(root: &Path) -> (Census, Vec<String>) {
        let storage = Storage::open(root).unwrap();
        let mut census = Census::default();
        let mut problems = Vec::new();
        for found in storage.walk().unwrap() {
            if let Found::Unreadable { path, problem } = &found {
                problems.push(format!("{path}: {problem}"));
            }
            census.add(&found);
        }
        (census, problems)
    }

    #[test]
    fn files_are_summed_per_repository_by_the_lookup_rule() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        put(root, "debian/pool/a.deb", b"12345");
        put(root, "debian/pool/a.deb.head", head(5).as_bytes());
        put(root, "debian/pool/deep/er/b.deb", b"123");
        put(root, "debian/pool/deep/er/b.deb.head", head(3).as_bytes());
        // Partial: acng's head with the full length, debcache's without one.
        put(root, "debian/pool/p.deb", b"12");
        put(root, "debian/pool/p.deb.head", head(10).as_bytes());
        put(root, "debian/pool/q.deb", b"1234");
        put(
            root,
            "debian/pool/q.deb.head",
            b"HTTP/1.1 200 OK\r\nX-Debcache-Expected-Length: 9\r\n\r\n",
        );
        // No head, a longer file than its head says, an error head alone.
        put(root, "debian/pool/nohead.deb", b"1");
        put(root, "debian/pool/long.deb", b"123456");
        put(root, "debian/pool/long.deb.head", head(5).as_bytes());
        put(
            root,
            "debian/pool/gone.deb.head",
            b"HTTP/1.1 404 Not Found\r\n\r\n",
        );
        put(root, "ubuntu/dists/x/InRelease", b"abc");
        put(root, "ubuntu/dists/x/InRelease.head", head(3).as_bytes());
        // Not counted: reserved names, top-level files, temporary files.
        put(root, "_xstore/rsnap/x", b"12345678");
        put(root, "_import/y.deb", b"12345678");
        put(root, "testfile.1", b"x");
        put(root, "ubuntu/dists/x/.~debcache.1.2", b"growing");
        let (census, problems) = census(root);
        assert!(problems.is_empty(), "{problems:?}");
        let names: Vec<&str> = census.repos.keys().map(|k| &**k).collect();
        assert_eq!(
            names,
            ["debian", "ubuntu"],
            "_debcache made by open is skipped too"
        );
        let debian = census.repos["debian"];
        assert_eq!(debian.complete, Files { count: 2, bytes: 8 });
        assert_eq!(debian.partial, Files { count: 4, bytes: 13 });
        assert_eq!(debian.heads_alone, 1);
        let total = census.total();
        assert_eq!((total.complete.count, total.complete.bytes), (3, 11));
    }

    #[test]
    fn symlinks_are_not_followed_but_linked_repositories_are_walked() {
        let dir = tempfile::tempdir().unwrap();
        let (root, elsewhere) = (dir.path().join("cache"), dir.path().join("big"));
        put(&elsewhere, "repo/pool/a.deb", b"12345");
        put(&elsewhere, "repo/pool/a.deb.head", head(5).as_bytes());
        put(&elsewhere, "outside/secret.deb", b"123");
        put(&root, "h/pool/x.deb", b"1");
        std::os::unix::fs::symlink(elsewhere.join("repo"), root.join("linked")).unwrap();
        std::os::unix::fs::symlink(elsewhere.join("outside"), root.join("h/pool/up")).unwrap();
        std::os::unix::fs::symlink(elsewhere.join("outside/secret.deb"), root.join("h/pool/s.deb")).unwrap();
        let (census, problems) = census(&root);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(census.repos["linked"].complete, Files { count: 1, bytes: 5 });
        assert_eq!(census.repos["h"].partial, Files { count: 1, bytes: 1 });
        assert_eq!(
            census.total().partial.count,
            1,
            "nothing through the symlinks below"
        );
    }

    #[test]
    fn too_deep_a_tree_is_reported_and_the_rest_counted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let deep = format!("r/{}", "d/".repeat(MAX_DEPTH + 1));
        put(root, &format!("{deep}x.deb"), b"1");
        put(root, "r/a.deb", b"12");
        put(root, "r/a.deb.head", head(2).as_bytes());
        // At the limit exactly: still counted.
        put(root, &format!("r/{}ok.deb", "e/".repeat(MAX_DEPTH)), b"123");
        let (census, problems) = census(root);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].ends_with(&format!("more than {MAX_DEPTH} directories deep")));
        assert!(problems[0].starts_with(&format!("r/{}", "d/".repeat(MAX_DEPTH - 1))));
        assert_eq!(census.unreadable, 1);
        assert_eq!(census.repos["r"].complete, Files { count: 1, bytes: 2 });
        assert_eq!(census.repos["r"].partial, Files { count: 1, bytes: 3 });
    }

    #[test]
    fn a_fifo_where_a_head_belongs_does_not_stall_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        put(root, "r/a.deb", b"12");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("r/a.deb.head"),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let (census, _) = census(root);
        assert_eq!(census.repos["r"].partial, Files { count: 1, bytes: 2 });
    }
}
