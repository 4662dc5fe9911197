//! Opening a path beneath a directory without ever leaving it: the one
//! discipline the cache directory and `LocalDirs` share.
//!
//! [`open`] resolves `rel` relative to an open directory with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`
//! and `O_NOFOLLOW`, so no spelling of a path opens anything outside the
//! directory, and **no symlink below it is followed**, not even one that
//! points inside (apt-cacher-ng follows them; a symlink planted in a served
//! tree is how a tree leaks what is beside it). The directory itself was
//! opened by the caller and may have been reached through symlinks: that is
//! the administrator's choice, made once per use.
//!
//! Kernels before Linux 5.6 have no `openat2`: there the path is walked one
//! component at a time with `O_NOFOLLOW`, with the same outcome. Either way
//! a symlink on the path fails with `ELOOP`, an escape with `EXDEV` (or
//! `EINVAL` for a `..`, `.` or empty component in the walk).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{openat, openat2, statat, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Opens `rel` (relative, `/`-separated, not empty) beneath `base` with
/// `flags`; `O_NOFOLLOW` and `O_CLOEXEC` are always added.
pub fn open(base: BorrowedFd<'_>, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let mut attempts = 0;
    loop {
        match openat2(base, rel, flags, Mode::empty(), resolve) {
            // A concurrent rename inside the tree: the kernel asks to retry.
            Err(Errno::AGAIN) if attempts < 8 => attempts += 1,
            Err(Errno::NOSYS) => return walk(base, rel, flags),
            other => return other.map_err(io::Error::from),
        }
    }
}

/// [`open`] from what the kernel has in memory only: `WouldBlock` when
/// resolving `rel` would need the disk (`RESOLVE_CACHED`, Linux 5.12; a
/// rename racing the lookup says the same), and the caller then calls
/// [`open`] where waiting is fine. Kernels without it open as [`open`] does.
pub fn open_cached(base: BorrowedFd<'_>, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH
        | ResolveFlags::NO_SYMLINKS
        | ResolveFlags::NO_MAGICLINKS
        | ResolveFlags::CACHED;
    match openat2(base, rel, flags, Mode::empty(), resolve) {
        Err(Errno::AGAIN) => Err(io::ErrorKind::WouldBlock.into()),
        // No RESOLVE_CACHED (EINVAL) or no openat2 at all.
        Err(Errno::INVAL | Errno::NOSYS) => open(base, rel, flags),
        other => other.map_err(io::Error::from),
    }
}

/// The same guarantee without openat2 (Linux before 5.6): one component at a
/// time, none of them a symlink.
fn walk(base: BorrowedFd<'_>, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let mut components = rel.split('/').peekable();
    let mut dir: Option<OwnedFd> = None;
    while let Some(name) = components.next() {
        if name.is_empty() || name == "." || name == ".." {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let at = dir.as_ref().map_or(base, |d| d.as_fd());
        if components.peek().is_none() {
            return openat(at, name, flags | OFlags::NOFOLLOW, Mode::empty()).map_err(Into::into);
        }
        let step = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match openat(at, name, step, Mode::empty()) {
            Ok(fd) => dir = Some(fd),
            // `O_DIRECTORY` on a symlink says ENOTDIR; openat2 says ELOOP,
            // and so must this, or callers would tell them apart by kernel.
            Err(Errno::NOTDIR) if is_symlink(at, name) => return Err(Errno::LOOP.into()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::from(io::ErrorKind::InvalidInput))
}

fn is_symlink(at: BorrowedFd<'_>, name: &str) -> bool {
    statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    /// A tree with a file, a directory, and symlinks out of and within it;
    /// `secret` lies beside the tree.
    fn tree() -> (tempfile::TempDir, OwnedFd) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("d")).unwrap();
        fs::write(root.join("d/a.txt"), "inside").unwrap();
        fs::write(dir.path().join("secret"), "outside").unwrap();
        symlink(dir.path().join("secret"), root.join("d/out")).unwrap();
        symlink(dir.path(), root.join("up")).unwrap();
        symlink("d", root.join("same")).unwrap();
        let fd = openat(
            rustix::fs::CWD,
            &root,
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        (dir, fd)
    }

    fn read(fd: OwnedFd) -> String {
        let mut text = String::new();
        fs::File::from(fd).read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn files_below_open_both_ways() {
        let (_dir, root) = tree();
        assert_eq!(
            read(open(root.as_fd(), "d/a.txt", OFlags::RDONLY).unwrap()),
            "inside"
        );
        assert_eq!(
            read(walk(root.as_fd(), "d/a.txt", OFlags::RDONLY).unwrap()),
            "inside"
        );
    }

    #[test]
    fn symlinks_fail_with_eloop_both_ways_even_pointing_inside() {
        let (_dir, root) = tree();
        for rel in ["d/out", "up/secret", "same/a.txt", "same", "up"] {
            for (how, got) in [
                ("openat2", open(root.as_fd(), rel, OFlags::RDONLY)),
                ("walk", walk(root.as_fd(), rel, OFlags::RDONLY)),
            ] {
                assert_eq!(got.unwrap_err().raw_os_error(), Some(libc::ELOOP), "{how} {rel}");
            }
        }
    }

    #[test]
    fn climbing_out_is_refused_both_ways() {
        let (_dir, root) = tree();
        for rel in ["../secret", "d/../../secret", "/etc/passwd"] {
            assert!(open(root.as_fd(), rel, OFlags::RDONLY).is_err(), "openat2 {rel}");
            assert!(walk(root.as_fd(), rel, OFlags::RDONLY).is_err(), "walk {rel}");
        }
    }

    #[test]
    fn a_file_used_as_a_directory_is_enotdir() {
        let (_dir, root) = tree();
        for got in [
            open(root.as_fd(), "d/a.txt/x", OFlags::RDONLY),
            walk(root.as_fd(), "d/a.txt/x", OFlags::RDONLY),
        ] {
            assert_eq!(got.unwrap_err().raw_os_error(), Some(libc::ENOTDIR));
        }
    }
}
