//! Every file-system access to the cache directory goes through here.
//!
//! | path below `CacheDir`        | what                                         |
//! |------------------------------|----------------------------------------------|
//! | `<repo-or-host>/<path>`      | a cached file's data (acng layout, §6.1)     |
//! | `<repo-or-host>/<path>.head` | its response metadata (`meta`, §6.2)         |
//! | `_debcache/lock`             | `flock`ed by the running daemon; holds its pid |
//! | `_debcache/tmp/`             | downloads of volatile files before rename    |
//! | `_xstore/`, `_import/`, …    | apt-cacher-ng's own; never served            |
//! | `.~debcache.<pid>.<n>`       | a temporary file (beside its target, or in `_debcache/tmp/`) |
//!
//! Files are opened relative to a descriptor of `CacheDir` through
//! [`crate::beneath`] (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` and
//! `O_NOFOLLOW`, or a walk on old kernels): no path, however it was built,
//! opens anything outside the cache, and no symlink planted inside it is
//! followed.
//!
//! One exception, made by the admin and never by a request: a repository
//! directory (a name directly under `CacheDir`) may be a symlink to a
//! directory elsewhere, as apt-cacher-ng installations often have
//! (`debrep -> /srv/big/debrep`). Those are resolved once, when the cache is
//! opened, and paths below them are opened beneath the directory they name
//! with the same discipline: no symlink below a repository is followed. A
//! repository symlink made later is refused until the next start.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustix::fs::{flock, mkdirat, openat, renameat, unlinkat, AtFlags, FlockOperation, Mode, OFlags};

use super::key::CacheKey;
use super::key::TEMP_PREFIX;
use super::meta::MAX_HEAD_SIZE;
use super::scan::Walk;

/// Where files to import are dropped (spec §6.4, §10.3).
pub const IMPORT_DIR: &str = "_import";

/// How deep below a repository empty directories are looked for.
const MAX_PRUNE_DEPTH: usize = 64;

/// How deep below it the import looks.
pub const MAX_IMPORT_DEPTH: usize = 16;

/// A file dropped in `_import`, found by [`Storage::import_files`].
#[derive(Debug)]
pub struct Incoming {
    /// Its directory, open.
    dir: Arc<OwnedFd>,
    name: String,
    /// Below `_import`.
    pub path: String,
    pub len: u64,
}

impl Incoming {
    /// Opens it for reading, never through a symlink.
    pub fn open(&self) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(File::from(openat(
            &*self.dir,
            self.name.as_str(),
            flags,
            Mode::empty(),
        )?))
    }

    /// Removes it from `_import`.
    pub fn remove(&self) -> io::Result<()> {
        unlinkat(&*self.dir, self.name.as_str(), AtFlags::empty()).map_err(Into::into)
    }
}

/// The most a maintenance file at the top of the cache may hold (an orphan
/// list of a million files is about 100 MB; acng's are far smaller).
pub const MAX_OWN_FILE: u64 = 256 << 20;

/// debcache's own directory inside the cache.
pub const OWN_DIR: &str = "_debcache";

/// Whether an access may wait for the disk (off the runtime's workers), or
/// must be answered from memory (on them) or fail with `WouldBlock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disk {
    Wait,
    Cached,
}

/// The cache directory, opened.
#[derive(Debug)]
pub struct Storage {
    root: OwnedFd,
    path: PathBuf,
    /// Repository directories that are symlinks, by name, with the
    /// directory each names, opened at start-up.
    linked: Vec<(String, OwnedFd)>,
    /// Makes temporary names unique within this process.
    temp_counter: AtomicU64,
    /// `DirPerms` and `FilePerms` (the umask applies on top).
    dir_mode: u32,
    file_mode: u32,
}

/// A directory inside the cache, open; entries are created and renamed
/// relative to it, so nothing resolves a path twice.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// Its path below the cache root (empty for the root).
    rel: String,
}

/// Why the cache directory cannot be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock; its pid when it wrote one.
    Held {
        path: PathBuf,
        pid: Option<u32>,
    },
    Io {
        path: PathBuf,
        source: io::Error,
    },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { path, pid: Some(pid) } => {
                write!(
                    f,
                    "another debcache (pid {pid}) is using this cache: {} is locked",
                    path.display()
                )
            }
            LockError::Held { path, pid: None } => {
                write!(
                    f,
                    "another debcache is using this cache: {} is locked",
                    path.display()
                )
            }
            LockError::Io { path, .. } => write!(f, "cannot lock {}", path.display()),
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Io { source, .. } => Some(source),
            LockError::Held { .. } => None,
        }
    }
}

/// Held for the daemon's lifetime; the lock goes with the descriptor.
#[derive(Debug)]
pub struct CacheLock {
    _fd: OwnedFd,
}

impl Storage {
    /// Opens (creating it if needed) the cache directory.
    pub fn open(path: &Path) -> io::Result<Storage> {
        std::fs::create_dir_all(path)?;
        let root = openat(
            rustix::fs::CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let linked = linked_repositories(&root, path)?;
        Ok(Storage {
            root,
            path: path.to_path_buf(),
            linked,
            temp_counter: AtomicU64::new(0),
            dir_mode: 0o755,
            file_mode: 0o664,
        })
    }

    /// Permissions for created directories and files.
    pub fn with_modes(mut self, dir_mode: u32, file_mode: u32) -> Storage {
        self.dir_mode = dir_mode;
        self.file_mode = file_mode;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes `_debcache/lock` so that two daemons never share a cache.
    pub fn lock(&self) -> Result<CacheLock, LockError> {
        let path = self.path.join(OWN_DIR).join("lock");
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(self.path.join(OWN_DIR).join("tmp")).map_err(io_err)?;
        let fd = openat(
            &self.root,
            format!("{OWN_DIR}/lock"),
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| io_err(e.into()))?;
        match flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                let mut text = String::new();
                let _ = File::from(fd).read_to_string(&mut text);
                return Err(LockError::Held {
                    path,
                    pid: text.trim().parse().ok(),
                });
            }
            Err(e) => return Err(io_err(e.into())),
        }
        let mut file = File::from(fd);
        file.set_len(0).map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        Ok(CacheLock { _fd: file.into() })
    }

    /// Opens a cached file's data for reading and appending (resuming).
    pub fn open_data_rw(&self, key: &CacheKey) -> io::Result<File> {
        self.open_beneath(key.as_str(), OFlags::RDWR, Disk::Wait)
            .map(File::from)
    }

    /// Opens a cached file's data for reading; with [`Disk::Cached`],
    /// `WouldBlock` when that needs the disk.
    pub fn open_data(&self, key: &CacheKey, disk: Disk) -> io::Result<File> {
        self.open_beneath(key.as_str(), OFlags::RDONLY, disk)
            .map(File::from)
    }

    /// Reads a cached file's `.head`, at most [`MAX_HEAD_SIZE`] + 1 bytes;
    /// with [`Disk::Cached`], `WouldBlock` when that needs the disk.
    pub fn read_head(&self, key: &CacheKey, disk: Disk) -> io::Result<Vec<u8>> {
        let file = File::from(self.open_beneath(&key.head_path(), OFlags::RDONLY, disk)?);
        if disk == Disk::Cached {
            // An fstat of an open file needs no disk.
            let len = file.metadata()?.len().min(MAX_HEAD_SIZE as u64 + 1);
            return super::read::read_cached(&file, len as usize).map(|b| b.to_vec());
        }
        let mut bytes = Vec::with_capacity(512);
        file.take(MAX_HEAD_SIZE as u64 + 1).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// The directory holding `key`, created as needed, none of its
    /// components a symlink.
    pub fn parent_dir(&self, key: &CacheKey) -> io::Result<Dir> {
        let rel = key.as_str().rsplit_once('/').map_or("", |(dir, _)| dir);
        self.dir(rel)
    }

    /// Reads one of maintenance's own files at the top of the cache
    /// directory (`_expending_dat`, …), never through a symlink, at most
    /// [`MAX_OWN_FILE`] bytes.
    pub fn read_root_file(&self, name: &str) -> io::Result<Vec<u8>> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let file = File::from(openat(&self.root, name, flags, Mode::empty())?);
        let mut bytes = Vec::new();
        file.take(MAX_OWN_FILE + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_OWN_FILE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name} is larger than {MAX_OWN_FILE} bytes"),
            ));
        }
        Ok(bytes)
    }

    /// Replaces such a file atomically and durably; `None` removes it.
    pub fn write_root_file(&self, name: &str, bytes: Option<&[u8]>) -> io::Result<()> {
        let root = self.root_dir()?;
        match bytes {
            Some(bytes) => self.write_atomic(&root, name, bytes, true)?,
            None => match root.remove(name) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                removed => removed?,
            },
        }
        root.sync()
    }

    /// The regular files below `CacheDir/_import` (spec §6.4), at most
    /// [`MAX_IMPORT_DEPTH`] directories deep, no symlink followed; `None`
    /// when there is no such directory. Problems with parts of it are
    /// listed beside the files.
    pub fn import_files(&self) -> io::Result<Option<(Vec<Incoming>, Vec<String>)>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let top = match openat(&self.root, IMPORT_DIR, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let (mut files, mut problems) = (Vec::new(), Vec::new());
        let mut todo = vec![(Arc::new(top), String::new(), 0)];
        while let Some((dir, rel, depth)) = todo.pop() {
            let entries = match rustix::fs::Dir::read_from(&*dir) {
                Ok(entries) => entries,
                Err(e) => {
                    problems.push(format!("{IMPORT_DIR}/{rel}: {e}"));
                    continue;
                }
            };
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) => {
                        problems.push(format!("{IMPORT_DIR}/{rel}: {e}"));
                        break;
                    }
                };
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let Ok(name) = std::str::from_utf8(name).map(str::to_string) else {
                    problems.push(format!("{IMPORT_DIR}/{rel}: a name that is not UTF-8"));
                    continue;
                };
                let path = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                let st = match rustix::fs::statat(&*dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => st,
                    Err(_) => continue,
                };
                match rustix::fs::FileType::from_raw_mode(st.st_mode) {
                    rustix::fs::FileType::Directory if depth < MAX_IMPORT_DEPTH => {
                        match openat(&*dir, name.as_str(), flags, Mode::empty()) {
                            Ok(fd) => todo.push((Arc::new(fd), path, depth + 1)),
                            Err(e) => problems.push(format!("{IMPORT_DIR}/{path}: {e}")),
                        }
                    }
                    rustix::fs::FileType::Directory => problems.push(format!(
                        "{IMPORT_DIR}/{path}: more than {MAX_IMPORT_DEPTH} directories deep"
                    )),
                    rustix::fs::FileType::RegularFile => files.push(Incoming {
                        dir: Arc::clone(&dir),
                        name,
                        path,
                        len: st.st_size as u64,
                    }),
                    _ => problems.push(format!(
                        "{IMPORT_DIR}/{path}: not a regular file (symlinks are not followed)"
                    )),
                }
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Some((files, problems)))
    }

    /// Removes the empty directories below the repositories (never a
    /// repository's own, nothing under a `_` name, no symlink followed)
    /// not changed for `age`; how many. Deepest first, so a tree that is
    /// empty but for empty directories goes in one pass.
    pub fn prune_empty_dirs(&self, age: std::time::Duration) -> io::Result<u64> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let cutoff = std::time::SystemTime::now()
            .checked_sub(age)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        fn prune(dir: &OwnedFd, flags: OFlags, cutoff: i64, depth: usize) -> u64 {
            let Ok(entries) = rustix::fs::Dir::read_from(dir) else {
                return 0;
            };
            let mut subdirs = Vec::new();
            for entry in entries.flatten() {
                let name = entry.file_name().to_owned();
                if matches!(name.to_bytes(), b"." | b"..") {
                    continue;
                }
                if entry.file_type() == rustix::fs::FileType::Directory
                    || (entry.file_type() == rustix::fs::FileType::Unknown
                        && rustix::fs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok_and(
                            |st| {
                                rustix::fs::FileType::from_raw_mode(st.st_mode)
                                    == rustix::fs::FileType::Directory
                            },
                        ))
                {
                    subdirs.push(name);
                }
            }
            let mut removed = 0;
            for name in subdirs {
                // Its age before its own empty directories go (which
                // changes it).
                let old = rustix::fs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| st.st_mtime < cutoff);
                if depth < MAX_PRUNE_DEPTH {
                    if let Ok(sub) = openat(dir, name.as_c_str(), flags, Mode::empty()) {
                        removed += prune(&sub, flags, cutoff, depth + 1);
                    }
                }
                // Refused with ENOTEMPTY unless it is empty: nothing else to check.
                if old && unlinkat(dir, name.as_c_str(), AtFlags::REMOVEDIR).is_ok() {
                    removed += 1;
                }
            }
            removed
        }
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.path)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.as_encoded_bytes().starts_with(b"_") || !entry.file_type()?.is_dir() {
                continue;
            }
            if let Ok(repo) = openat(&self.root, name.as_os_str(), flags, Mode::empty()) {
                removed += prune(&repo, flags, cutoff, 0);
            }
        }
        Ok(removed)
    }

    /// Puts an incoming file at `key`'s name: a hard link when both are on
    /// one file system, else a copy, made at a temporary name and renamed
    /// over the name (durably), so a reader sees the old file or the new.
    pub fn place(&self, file: &Incoming, key: &CacheKey) -> io::Result<Dir> {
        let dir = self.parent_dir(key)?;
        let temp = loop {
            let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
            let name = format!("{TEMP_PREFIX}{}.{n}", std::process::id());
            match rustix::fs::linkat(
                &*file.dir,
                file.name.as_str(),
                &dir.fd,
                name.as_str(),
                AtFlags::empty(),
            ) {
                Ok(()) => break name,
                Err(rustix::io::Errno::EXIST) => continue,
                Err(rustix::io::Errno::XDEV | rustix::io::Errno::PERM | rustix::io::Errno::MLINK) => {
                    let (mut copy, name) = self.create_temp(&dir)?;
                    let copied = file
                        .open()
                        .and_then(|mut source| io::copy(&mut source, &mut copy))
                        .and_then(|_| copy.sync_data());
                    if let Err(e) = copied {
                        let _ = dir.remove(&name);
                        return Err(e);
                    }
                    break name;
                }
                Err(e) => return Err(e.into()),
            }
        };
        if let Err(e) = dir.rename(&temp, &dir, key.file_name()) {
            let _ = dir.remove(&temp);
            return Err(e);
        }
        Ok(dir)
    }

    /// The directory holding `key` if it exists (nothing is created), none
    /// of its components a symlink.
    pub fn existing_parent(&self, key: &CacheKey) -> io::Result<Dir> {
        let rel = key.as_str().rsplit_once('/').map_or("", |(dir, _)| dir);
        if rel.is_empty() {
            return self.root_dir();
        }
        let fd = self.open_beneath(rel, OFlags::RDONLY | OFlags::DIRECTORY, Disk::Wait)?;
        Ok(Dir {
            fd,
            rel: rel.to_string(),
        })
    }

    /// `_debcache/tmp`, where volatile downloads grow before their rename.
    pub fn tmp_dir(&self) -> io::Result<Dir> {
        self.dir(&format!("{OWN_DIR}/tmp"))
    }

    fn dir(&self, rel: &str) -> io::Result<Dir> {
        if rel.is_empty() {
            return self.root_dir();
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY;
        match self.open_beneath(rel, flags, Disk::Wait) {
            Ok(fd) => Ok(Dir {
                fd,
                rel: rel.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
                let parent = if parent.is_empty() {
                    self.root_dir()?
                } else {
                    self.dir(parent)?
                };
                match mkdirat(&parent.fd, name, Mode::from_raw_mode(self.dir_mode)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                let fd = self.open_beneath(rel, flags, Disk::Wait)?;
                Ok(Dir {
                    fd,
                    rel: rel.to_string(),
                })
            }
            Err(e) => Err(e),
        }
    }

    fn root_dir(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.root.try_clone()?,
            rel: String::new(),
        })
    }

    /// Creates a new, empty file with a unique temporary name in `dir`.
    pub fn create_temp(&self, dir: &Dir) -> io::Result<(File, String)> {
        loop {
            let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
            let name = format!("{TEMP_PREFIX}{}.{n}", std::process::id());
            let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match openat(&dir.fd, name.as_str(), flags, Mode::from_raw_mode(self.file_mode)) {
                Ok(fd) => return Ok((File::from(fd), name)),
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Writes `bytes` as `dir/name` atomically: a temporary file, fsynced
    /// when `durable`, renamed over the name.
    pub fn write_atomic(&self, dir: &Dir, name: &str, bytes: &[u8], durable: bool) -> io::Result<()> {
        let (file, temp) = self.create_temp(dir)?;
        let written = file
            .write_all_at(bytes, 0)
            .and_then(|()| if durable { file.sync_data() } else { Ok(()) });
        if let Err(e) = written.and_then(|()| dir.rename(&temp, dir, name)) {
            let _ = dir.remove(&temp);
            return Err(e);
        }
        Ok(())
    }

    /// Walks the repositories and counts nothing itself (`scan`).
    pub fn walk(&self) -> io::Result<Walk> {
        Walk::new(self.root.as_fd(), &self.linked)
    }

    /// Whether a file can be made in the cache now: one byte written to a
    /// new file in `_debcache/tmp`, then removed (`/health`).
    pub fn probe(&self) -> io::Result<()> {
        let dir = self.tmp_dir()?;
        let (file, name) = self.create_temp(&dir)?;
        let written = file.write_all_at(b"\n", 0);
        let removed = dir.remove(&name);
        written.and(removed)
    }

    /// Bytes free (for this user) and in all on the cache's file system.
    pub fn space(&self) -> io::Result<(u64, u64)> {
        let vfs = rustix::fs::fstatvfs(&self.root)?;
        Ok((
            vfs.f_bavail.saturating_mul(vfs.f_frsize),
            vfs.f_blocks.saturating_mul(vfs.f_frsize),
        ))
    }

    /// Removes every file left in `_debcache/tmp` by an earlier run.
    pub fn sweep_tmp(&self) -> io::Result<usize> {
        let dir = self.tmp_dir()?;
        let mut removed = 0;
        for entry in std::fs::read_dir(self.path.join(&dir.rel))? {
            let name = entry?.file_name();
            if let Some(name) = name.to_str() {
                if dir.remove(name).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn open_beneath(&self, rel: &str, flags: OFlags, disk: Disk) -> io::Result<OwnedFd> {
        let (base, rel) = self.base(rel);
        if rel.is_empty() {
            // A linked repository itself: only ever opened as a directory.
            if !flags.contains(OFlags::DIRECTORY) {
                return Err(rustix::io::Errno::LOOP.into());
            }
            return base.try_clone_to_owned();
        }
        match disk {
            Disk::Wait => crate::beneath::open(base, rel, flags),
            Disk::Cached => crate::beneath::open_cached(base, rel, flags),
        }
    }

    /// The directory `rel` is resolved beneath, and `rel` relative to it:
    /// a linked repository's own directory for the paths below it, else
    /// the cache root.
    fn base<'a>(&self, rel: &'a str) -> (std::os::fd::BorrowedFd<'_>, &'a str) {
        if !self.linked.is_empty() {
            let (first, rest) = rel.split_once('/').unwrap_or((rel, ""));
            if let Some((_, fd)) = self.linked.iter().find(|(name, _)| name == first) {
                return (fd.as_fd(), rest);
            }
        }
        (self.root.as_fd(), rel)
    }
}

/// The symlinks directly under the cache root that name a directory,
/// opened (following them, the one place where that happens). A symlink
/// to anything else, or to nothing, stays refused like any other.
fn linked_repositories(root: &OwnedFd, path: &Path) -> io::Result<Vec<(String, OwnedFd)>> {
    let mut linked = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if !entry.file_type()?.is_symlink() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        match openat(
            root,
            name.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => {
                tracing::info!(
                    "repository {name} is a symlink to {}: followed, nothing below it is",
                    target.display()
                );
                linked.push((name, fd));
            }
            Err(e) => tracing::warn!(
                "{} is a symlink to {}, not to a directory ({e}): refused until a restart finds one there",
                entry.path().display(),
                target.display()
            ),
        }
    }
    Ok(linked)
}

impl Dir {
    /// The device this directory lives on: a rename across devices fails.
    pub fn device(&self) -> io::Result<u64> {
        Ok(rustix::fs::fstat(&self.fd)?.st_dev)
    }

    /// Renames `from` in this directory to `to` in `target`.
    pub fn rename(&self, from: &str, target: &Dir, to: &str) -> io::Result<()> {
        renameat(&self.fd, from, &target.fd, to).map_err(Into::into)
    }

    pub fn remove(&self, name: &str) -> io::Result<()> {
        unlinkat(&self.fd, name, AtFlags::empty()).map_err(Into::into)
    }

    /// The regular file `name` here (never through a symlink): its bytes
    /// on disk, `None` when there is none.
    pub fn allocated(&self, name: &str) -> io::Result<Option<u64>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st)
                if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile =>
            {
                Ok(Some(st.st_blocks as u64 * 512))
            }
            Ok(_) | Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes renames and creations in this directory durable.
    pub fn sync(&self) -> io::Result<()> {
        rustix::fs::fsync(&self.fd).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let storage = Storage::open(&cache).unwrap();
        (dir, storage)
    }

    #[test]
    fn symlinks_inside_the_cache_are_not_followed() {
        let (dir, storage) = storage();
        fs::write(dir.path().join("secret"), "outside").unwrap();
        fs::create_dir_all(storage.path().join("h/d")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), storage.path().join("h/d/link.deb")).unwrap();
        std::os::unix::fs::symlink(dir.path(), storage.path().join("h/escape")).unwrap();
        let key = CacheKey::parse("h/d/link.deb").unwrap();
        assert!(storage.open_data(&key, Disk::Wait).is_err());
        let through_dir = CacheKey::parse("h/escape/secret").unwrap();
        assert!(storage.open_data(&through_dir, Disk::Wait).is_err());
    }

    #[test]
    fn a_repository_that_is_a_symlink_is_followed_and_nothing_below_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let big = dir.path().join("big/debrep");
        fs::create_dir_all(big.join("pool")).unwrap();
        fs::create_dir_all(&cache).unwrap();
        fs::write(big.join("pool/a.deb"), "on the big disk").unwrap();
        fs::write(dir.path().join("secret"), "outside").unwrap();
        std::os::unix::fs::symlink(&big, cache.join("debrep")).unwrap();
        std::os::unix::fs::symlink("../big", cache.join("relative")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), cache.join("tofile")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nothing"), cache.join("dangling")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), big.join("pool/link.deb")).unwrap();
        std::os::unix::fs::symlink(dir.path(), big.join("up")).unwrap();
        let storage = Storage::open(&cache).unwrap();
        let open = |path: &str| {
            let mut text = String::new();
            storage
                .open_data(&CacheKey::parse(path).unwrap(), Disk::Wait)
                .and_then(|mut f| f.read_to_string(&mut text))
                .map(|_| text)
        };
        assert_eq!(open("debrep/pool/a.deb").unwrap(), "on the big disk");
        assert_eq!(open("relative/debrep/pool/a.deb").unwrap(), "on the big disk");
        for refused in [
            "debrep/pool/link.deb",
            "debrep/up/secret",
            "tofile/x",
            "dangling/x",
        ] {
            assert!(open(refused).is_err(), "{refused}");
        }
        let names: Vec<&str> = storage.linked.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // New directories and files are made through the link.
        let key = CacheKey::parse("debrep/dists/x/Release").unwrap();
        let parent = storage.parent_dir(&key).unwrap();
        storage.write_atomic(&parent, "Release", b"new", false).unwrap();
        assert_eq!(fs::read(big.join("dists/x/Release")).unwrap(), b"new");
        assert!(cache.join("debrep").is_symlink());
    }

    #[test]
    fn regular_files_open_both_ways() {
        let (_dir, storage) = storage();
        fs::create_dir_all(storage.path().join("h/d")).unwrap();
        fs::write(storage.path().join("h/d/a.deb"), "data").unwrap();
        fs::write(storage.path().join("h/d/a.deb.head"), "HTTP/1.1 200 OK\r\n\r\n").unwrap();
        let key = CacheKey::parse("h/d/a.deb").unwrap();
        let mut text = String::new();
        storage
            .open_data(&key, Disk::Wait)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "data");
        assert_eq!(
            storage.read_head(&key, Disk::Wait).unwrap(),
            b"HTTP/1.1 200 OK\r\n\r\n"
        );
    }

    #[test]
    fn a_second_lock_is_refused_with_the_holder() {
        let (_dir, storage) = storage();
        let _held = storage.lock().unwrap();
        let again = Storage::open(storage.path()).unwrap();
        match again.lock() {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        assert!(storage.path().join("_debcache/tmp").is_dir());
    }
}
