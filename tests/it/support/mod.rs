//! Shared helpers: the fixtures, the debcache binary as a command and as a
//! daemon, a raw HTTP client.

pub mod apt;
pub mod balancer;
pub mod daemon;
pub mod http;
pub mod origin;
pub mod proxy;
pub mod raw;
pub mod tls;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use daemon::{Daemon, Setup};

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// `(sha256, path)` of every file in the acng-written fixture cache, the
/// path relative to the cache directory.
pub fn fixture_sums() -> Vec<(String, String)> {
    std::fs::read_to_string(fixture("acng-3.7.4-cache.SHA256SUMS"))
        .unwrap()
        .lines()
        .map(|l| {
            let (sum, path) = l.split_once("  ").unwrap();
            (sum.to_string(), path.trim_start_matches("./").to_string())
        })
        .collect()
}

/// Polls `ready` until it holds, for what the daemon finishes after the
/// response (an index file's rename, a `.head`'s commit). Panics after 30 s.
/// Stable bytes of any length (a xorshift stream): file bodies whose every
/// offset differs.
pub fn data(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if ready() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

/// Runs the debcache binary with `args`.
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

/// Writes `bytes` at `root/rel`, creating directories.
pub fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A `.head` as apt-cacher-ng writes it for a complete file of `len` bytes.
pub fn acng_head(len: usize) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nLast-Modified: Sun, 22 Nov 2026 02:58:26 GMT\r\n\r\n"
    )
}

/// A tmpfs mounted for a test (root only), unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `dir`, or says why the test is skipped.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status();
        if !mounted.is_ok_and(|s| s.success()) {
            eprintln!("skipped: cannot mount a tmpfs here");
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A size from `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`, ...).
pub fn proc_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
