//! Every file-system access to the cache directory goes through here.
//!
//! | path below `CacheDir`        | what                                         |
//! |------------------------------|----------------------------------------------|
//! | `<repo-or-host>/<path>`      | a cached file's data (acng layout, §6.1)     |
//! | `<repo-or-host>/<path>.head` | its response metadata (`meta`, §6.2)         |
//! | `_debcache/lock`             | `flock`ed by the running daemon; holds its pid |
//! | `_debcache/tmp/`             | downloads of volatile files before rename    |
//! | `_xstore/`, `_import/`, …    | apt-cacher-ng's own; never served            |
//!
//! Files are opened relative to a descriptor of `CacheDir` with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` and `O_NOFOLLOW`: no
//! path, however it was built, opens anything outside the cache, and no
//! symlink planted inside it is followed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, openat, openat2, FlockOperation, Mode, OFlags, ResolveFlags};

use super::key::CacheKey;
use super::meta::MAX_HEAD_SIZE;

/// debcache's own directory inside the cache.
pub const OWN_DIR: &str = "_debcache";

/// The cache directory, opened.
#[derive(Debug)]
pub struct Storage {
    root: OwnedFd,
    path: PathBuf,
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
        Ok(Storage {
            root,
            path: path.to_path_buf(),
        })
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

    /// Opens a cached file's data for reading.
    pub fn open_data(&self, key: &CacheKey) -> io::Result<File> {
        self.open_beneath(key.as_str(), OFlags::RDONLY).map(File::from)
    }

    /// Reads a cached file's `.head`, at most [`MAX_HEAD_SIZE`] + 1 bytes.
    pub fn read_head(&self, key: &CacheKey) -> io::Result<Vec<u8>> {
        let file = File::from(self.open_beneath(&key.head_path(), OFlags::RDONLY)?);
        let mut bytes = Vec::with_capacity(512);
        file.take(MAX_HEAD_SIZE as u64 + 1).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn open_beneath(&self, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        let mut attempts = 0;
        loop {
            match openat2(&self.root, rel, flags, Mode::empty(), resolve) {
                // A concurrent rename inside the tree: the kernel asks to retry.
                Err(e) if e == rustix::io::Errno::AGAIN && attempts < 8 => attempts += 1,
                Err(e) if e == rustix::io::Errno::NOSYS => {
                    return walk_beneath(self.root.as_fd(), rel, flags)
                }
                other => return other.map_err(io::Error::from),
            }
        }
    }
}

/// The same guarantee without openat2 (Linux before 5.6): one component at a
/// time, none of them a symlink.
fn walk_beneath(root: std::os::fd::BorrowedFd<'_>, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let mut components = rel.split('/').peekable();
    let mut dir: Option<OwnedFd> = None;
    while let Some(name) = components.next() {
        if name.is_empty() || name == "." || name == ".." {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let at = dir.as_ref().map_or(root, |d| d.as_fd());
        let last = components.peek().is_none();
        let step_flags = if last {
            flags | OFlags::NOFOLLOW
        } else {
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        };
        let fd = openat(at, name, step_flags, Mode::empty())?;
        if last {
            return Ok(fd);
        }
        dir = Some(fd);
    }
    Err(io::Error::from(io::ErrorKind::InvalidInput))
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
        assert!(storage.open_data(&key).is_err());
        let through_dir = CacheKey::parse("h/escape/secret").unwrap();
        assert!(storage.open_data(&through_dir).is_err());
        assert!(walk_beneath(storage.root.as_fd(), "h/escape/secret", OFlags::RDONLY).is_err());
        assert!(walk_beneath(storage.root.as_fd(), "h/d/link.deb", OFlags::RDONLY).is_err());
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
            .open_data(&key)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "data");
        assert_eq!(storage.read_head(&key).unwrap(), b"HTTP/1.1 200 OK\r\n\r\n");
        assert!(walk_beneath(storage.root.as_fd(), "h/d/a.deb", OFlags::RDONLY).is_ok());
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
