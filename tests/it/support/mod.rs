//! Shared helpers: the fixtures, the debcache binary, temporary directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Runs the debcache binary with `args`, outside any configuration the host
/// may have (`/etc/debcache` is not consulted when `-c` is given).
pub fn debcache(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_debcache"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run debcache")
}

/// Copies a directory tree (files and symlinks) into `dest`.
pub fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dest.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
