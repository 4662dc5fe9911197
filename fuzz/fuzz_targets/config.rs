#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

#[path = "../targets/config.rs"]
mod target;

/// The directory the configuration files are written to, made once:
/// `DEBCACHE_FUZZ_DIR` (run.sh makes it and removes it afterwards), else a
/// directory named after the process below the system's temporary one.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("DEBCACHE_FUZZ_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!("debcache-fuzz-config-{}", std::process::id()))
            });
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        dir
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run_in(dir(), data));
