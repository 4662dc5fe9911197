//! Import (`doImport`, spec §10.3): files dropped in `CacheDir/_import/`
//! (a client's `/var/cache/apt/archives` copied there, or another cache's
//! pool) are matched against the cached Packages and Sources files by size
//! and checksum, and put in place with a `.head`, as acng does.
//!
//! 1. The files in `_import` (no symlink followed; files under 50 bytes,
//!    acng's floor, are left).
//! 2. Every cached Packages and Sources file is read as it is (not
//!    refreshed: a file that matches a checksum an index gives is that
//!    file, whatever the index's age). Only the entries whose size equals a
//!    dropped file's are hashed against, each file once per algorithm.
//! 3. A match is linked (or copied) into place through
//!    [`Cache::import`] and leaves `_import`; a complete copy already in
//!    the cache, and a file being downloaded, are left. What matches
//!    nothing stays in `_import` and is listed.

use std::collections::HashMap;
use std::io;

use super::{Level, Report};
use crate::cache::{Cache, CacheKey, Changed, Files, Found};
use crate::digest::Hasher;
use crate::index::{self, Algorithm, IndexKind, Listed};

/// acng skips smaller files (nothing in a pool is that small).
const MIN_SIZE: u64 = 50;

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub imported: Files,
    /// Left in `_import`: matching nothing, already cached, or busy.
    pub left: Files,
    pub errors: u64,
}

/// Runs an import (blocking: on the maintenance task's thread).
pub fn run(cache: &Cache, out: &mut dyn Report) -> Outcome {
    let mut outcome = Outcome::default();
    let (files, problems) = match cache.incoming() {
        Ok(Some(found)) => found,
        Ok(None) => {
            out.say(
                Level::Info,
                "Nothing to import: put the files in the cache directory's _import/.",
            );
            return outcome;
        }
        Err(e) => {
            outcome.errors += 1;
            out.say(Level::Error, &format!("Cannot read _import: {e}"));
            return outcome;
        }
    };
    for problem in problems {
        out.say(Level::Warning, &problem);
    }
    let mut by_size: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, file) in files.iter().enumerate() {
        if file.len >= MIN_SIZE {
            by_size.entry(file.len).or_default().push(i);
        }
    }
    out.say(Level::Info, &format!("{} files to import.", files.len()));
    let indexes = match package_indexes(cache) {
        Ok(indexes) => indexes,
        Err(e) => {
            outcome.errors += 1;
            out.say(Level::Error, &format!("Cannot walk the cache: {e}"));
            return outcome;
        }
    };
    if indexes.is_empty() {
        outcome.errors += 1;
        out.say(
            Level::Error,
            "No index files detected. Unable to continue, cannot map files to internal locations.",
        );
        return outcome;
    }
    let mut digests: Vec<HashMap<Algorithm, Option<crate::digest::Digest>>> =
        vec![HashMap::new(); files.len()];
    let mut targets: Vec<Option<String>> = vec![None; files.len()];
    for (key, kind, base) in &indexes {
        if out.should_stop() {
            return outcome;
        }
        let parsed = super::read_index(cache, key, key.as_str(), *kind, base, |listed, path| {
            let Listed::File(r) = listed else { return };
            let Some(candidates) = by_size.get(&r.size) else {
                return;
            };
            for &i in candidates {
                if targets[i].is_some() {
                    continue;
                }
                let algorithm = r.digest.algorithm();
                let digest = digests[i].entry(algorithm).or_insert_with(|| {
                    files[i]
                        .open()
                        .and_then(|f| Hasher::of(algorithm, f))
                        .ok()
                        .flatten()
                });
                if *digest == Some(r.digest) {
                    targets[i] = Some(path);
                    break;
                }
            }
        });
        if let Err(text) = parsed {
            out.say(Level::Warning, &text);
        }
    }
    for (file, target) in files.iter().zip(&targets) {
        if out.should_stop() {
            return outcome;
        }
        let Some(key) = target.as_deref().and_then(|t| CacheKey::parse(t).ok()) else {
            outcome.left.add(file.len);
            out.say(
                Level::Warning,
                &format!("Left behind: _import/{} matches no index entry", file.path),
            );
            continue;
        };
        match cache.import(&key, file) {
            Ok(Changed::Done { .. }) => {
                outcome.imported.add(file.len);
                out.say(Level::Info, &format!("Imported _import/{} as {key}", file.path));
            }
            Ok(Changed::Absent) => {
                outcome.left.add(file.len);
                out.say(
                    Level::Info,
                    &format!(
                        "Left behind: _import/{}: {key} is already in the cache",
                        file.path
                    ),
                );
            }
            Ok(Changed::Busy) => {
                outcome.left.add(file.len);
                out.say(
                    Level::Info,
                    &format!("Left behind: _import/{}: {key} is being downloaded", file.path),
                );
            }
            Err(e) => {
                outcome.errors += 1;
                outcome.left.add(file.len);
                out.say(
                    Level::Error,
                    &format!("Cannot import _import/{} as {key}: {e}", file.path),
                );
            }
        }
    }
    let summary = format!(
        "{} files ({} bytes) imported; {} files ({} bytes) left behind",
        outcome.imported.count, outcome.imported.bytes, outcome.left.count, outcome.left.bytes
    );
    tracing::info!("import: {summary}");
    out.say(Level::Good, &format!("Done: {summary}."));
    outcome
}

/// The cached Packages and Sources files, with their kind and base.
fn package_indexes(cache: &Cache) -> io::Result<Vec<(CacheKey, IndexKind, String)>> {
    let mut found = Vec::new();
    for entry in cache.walk()? {
        let Found::Data {
            path, complete: true, ..
        } = entry
        else {
            continue;
        };
        let Some(c) = index::classify(&path) else {
            continue;
        };
        if matches!(c.kind, IndexKind::Packages | IndexKind::Sources) {
            let base = c.base.to_string();
            if let Ok(key) = CacheKey::parse(&path) {
                found.push((key, c.kind, base));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}
