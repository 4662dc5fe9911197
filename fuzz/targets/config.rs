//! Fuzz target: configuration loading, from the raw line reader through
//! value parsing, `Remap-*` lines and `file:` lists to the validated
//! `Config`, with `KEY=VALUE` words from the command line.
//!
//! Input: up to four sections separated by a 0xFF byte (which no UTF-8
//! text holds): `acng.conf`, `security.conf`, a list file named `list`
//! (which the others reach as `file:list`), and command-line words, one a
//! line. Absent sections are absent files.
//!
//! Invariants: loading never panics; a configuration comes out exactly
//! when no error was found; every diagnostic points into the input (a line
//! that exists in its file, a command-line word that was given) and prints
//! as one line; every repository name is a safe cache directory name; the
//! configuration prints, and its URLs print in a form that reads back.

use std::fs;
use std::path::Path;

use debcache::cache::CacheKey;
use debcache::config::{load, render, ConfigDir, Location, Severity};
use debcache::remap::RemapTable;
use debcache::url::HttpUrl;

const FILES: [&str; 3] = ["acng.conf", "security.conf", "list"];

/// Loads the configuration `data` describes from files written in `dir`,
/// an empty directory the caller owns (and removes).
pub fn run_in(dir: &Path, data: &[u8]) {
    let mut sections = data.split(|&b| b == 0xff);
    let mut lines = Vec::new();
    for name in FILES {
        let path = dir.join(name);
        match sections.next() {
            Some(text) => {
                fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                lines.push((name, line_count(name, text)));
            }
            None => match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("{}: {e}", path.display()),
            },
        }
    }
    let words: Vec<String> = sections
        .next()
        .map(|w| String::from_utf8_lossy(w).lines().map(str::to_string).collect())
        .unwrap_or_default();

    let loaded = load(ConfigDir::Path(dir.to_path_buf()), &words);
    let real_dir = fs::canonicalize(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for d in &loaded.diagnostics {
        let shown = d.to_string();
        assert!(!shown.contains('\n'), "{shown:?}");
        match &d.location {
            Location::Line { file, line } => {
                assert!(*line >= 1, "{shown}");
                let ours = file.parent() == Some(&real_dir);
                let known = lines
                    .iter()
                    .find(|(name, _)| file.file_name() == Some(name.as_ref()));
                if let (true, Some((_, Some(count)))) = (ours, known) {
                    assert!(line <= count, "{shown}: the file has {count} lines");
                }
            }
            Location::CommandLine(n) => {
                assert!((1..=words.len()).contains(n), "{shown}: {} words", words.len())
            }
            Location::File(file) => assert!(!file.as_os_str().is_empty(), "{shown}"),
            Location::BuiltIn => {}
        }
    }
    let failed = loaded.diagnostics.iter().any(|d| d.severity == Severity::Error);
    assert_eq!(loaded.config.is_none(), failed, "{:?}", loaded.diagnostics);
    assert_eq!(loaded.has_errors(), failed);
    let Some(config) = loaded.config else {
        return;
    };
    for remap in &config.remaps {
        assert!(
            !remap.name.contains('/') && CacheKey::new(&remap.name, "x").is_ok(),
            "repository name {:?} is no cache directory ({})",
            remap.name,
            remap.location
        );
        for url in remap.backends.iter().chain(&remap.flags.deltasrc) {
            reads_back(url);
        }
    }
    config.upstream.proxy.iter().for_each(reads_back);
    let _ = RemapTable::new(&config.remaps);
    assert!(!render(&config, false).is_empty() && !render(&config, true).is_empty());
}

/// The lines a diagnostic may name in a file: `None` when the list reader
/// would decompress it first (the lines are those of the decompressed text).
fn line_count(name: &str, text: &[u8]) -> Option<usize> {
    let compressed = [&b"\x1f\x8b"[..], b"BZh", b"\xfd7zXZ\0", b"\x5d\0\0"]
        .iter()
        .any(|magic| text.starts_with(magic));
    (name.ends_with(".conf") || !compressed).then(|| text.split(|&b| b == b'\n').count())
}

fn reads_back(url: &HttpUrl) {
    let printed = url.to_string();
    assert_eq!(HttpUrl::parse(&printed).as_ref(), Ok(url), "{printed:?}");
}
