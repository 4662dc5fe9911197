//! Precaching (`doMirror`, spec §10.4): the packages the indexes named by
//! `PrecacheFor` list are fetched ahead of the clients.
//!
//! 1. `PrecacheFor`: shell patterns below the cache directory
//!    (`debrep/dists/bookworm/*/binary-amd64/Packages*`), `*` never
//!    crossing a `/`. The index files they match are found on disk and
//!    among the paths the cached Release files list.
//! 2. Of the compressions of one index, one is read: one in the cache
//!    (`.xz`, `.bz2`, `.gz`, `.lzma`, plain in that order), else the first
//!    of them a Release lists. Each is refreshed first (unless `skipIxUp`),
//!    through the clients' own downloads.
//! 3. `calcSize`: the bytes the indexes name, and the bytes not in the
//!    cache yet. `doDownload`: those files are downloaded, at most
//!    `PrecacheDownloads` at a time, each through [`Cache::refresh`] (a
//!    client asking meanwhile shares the transfer). `asNeeded`: only the
//!    packages of which the cache already holds a version (the same
//!    directory and the name before the first `_`): "keep what is used up
//!    to date".

use std::collections::{BTreeMap, HashSet};
use std::io::BufReader;
use std::sync::Arc;

use glob::{MatchOptions, Pattern};

use super::{Context, Level, Report};
use crate::cache::{CacheKey, Files, Found, Lookup, Revalidate};
use crate::index::{self, IndexKind, Listed};
use crate::request::FileKind;
use crate::url::HttpUrl;

/// The report page's switches (acng's names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `calcSize=cs`.
    pub calc_size: bool,
    /// `doDownload=dd`.
    pub download: bool,
    /// `asNeeded=an`.
    pub as_needed: bool,
    /// `skipIxUp=si`.
    pub skip_index_update: bool,
}

impl Options {
    pub fn from_query(query: &str) -> Options {
        Options {
            calc_size: query.contains("calcSize=cs"),
            download: query.contains("doDownload=dd"),
            as_needed: query.contains("asNeeded=an"),
            skip_index_update: query.contains("skipIxUp=si"),
        }
    }
}

/// What a run found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub indexes: usize,
    /// What the indexes name (with `asNeeded`: of the packages in use).
    pub named: Files,
    /// Of that, not complete in the cache.
    pub missing: Files,
    pub downloaded: Files,
    pub errors: u64,
}

/// The preference among one index's compressions.
const PREFERRED: [&str; 5] = [".xz", ".bz2", ".gz", ".lzma", ""];

/// Runs a precache (blocking: on the maintenance task's thread).
pub fn run(ctx: &Context, options: Options, out: &mut dyn Report) -> Outcome {
    let mut outcome = Outcome::default();
    let config = &ctx.config.maintenance;
    if config.precache_for.is_empty() {
        outcome.errors += 1;
        out.say(Level::Error, "PrecacheFor is not set: no index files to mirror.");
        return outcome;
    }
    let patterns: Vec<Pattern> = config
        .precache_for
        .iter()
        .filter_map(|p| match Pattern::new(p) {
            Ok(pattern) => Some(pattern),
            Err(e) => {
                out.say(Level::Warning, &format!("PrecacheFor: {p}: {e}"));
                None
            }
        })
        .collect();
    let (on_disk, listed, in_use) = match survey(ctx, &patterns, options.as_needed) {
        Ok(found) => found,
        Err(e) => {
            outcome.errors += 1;
            out.say(Level::Error, &format!("Cannot walk the cache: {e}"));
            return outcome;
        }
    };
    let chosen = choose(&on_disk, &listed);
    outcome.indexes = chosen.len();
    out.say(
        Level::Info,
        &format!("{} index files match PrecacheFor.", chosen.len()),
    );
    let mut wanted: BTreeMap<String, (u64, Option<HttpUrl>)> = BTreeMap::new();
    for key in &chosen {
        if out.should_stop() {
            return outcome;
        }
        if !options.skip_index_update && !ctx.config.caching.offline {
            refresh(
                ctx,
                key,
                FileKind::Volatile,
                Revalidate::IfStale,
                None,
                &mut outcome,
                out,
            );
        }
        let Some(c) = index::classify(key.as_str()) else {
            continue;
        };
        // Where the index came from gives the package files' URLs when no
        // remap says (a host directory's port is not in the cache path).
        let source = ctx
            .cache
            .head_of(key)
            .ok()
            .flatten()
            .and_then(|h| h.original_source)
            .and_then(|url| {
                let suffix = key.as_str().strip_prefix(c.base)?;
                url.strip_suffix(suffix).map(str::to_string)
            });
        let parsed = super::read_index(&ctx.cache, key, key.as_str(), c.kind, c.base, |listed, path| {
            let Listed::File(r) = listed else { return };
            if options.as_needed && !in_use.contains(&package_of(&path)) {
                return;
            }
            let original = source
                .as_ref()
                .and_then(|s| HttpUrl::parse(&format!("{s}/{}", r.path)).ok());
            wanted.insert(path, (r.size, original));
        });
        if let Err(text) = parsed {
            outcome.errors += 1;
            out.say(Level::Error, &text);
        }
    }
    let mut missing = Vec::new();
    for (path, (size, original)) in wanted {
        outcome.named.add(size);
        let Ok(key) = CacheKey::parse(&path) else { continue };
        if !matches!(ctx.cache.lookup(&key), Ok(Lookup::Complete(_))) {
            outcome.missing.add(size);
            missing.push((key, size, original));
        }
    }
    if options.calc_size || !options.download {
        out.say(
            Level::Info,
            &format!(
                "The indexes name {} files ({} bytes); {} of them ({} bytes) are not in the cache.",
                outcome.named.count, outcome.named.bytes, outcome.missing.count, outcome.missing.bytes
            ),
        );
    }
    if options.download {
        download(ctx, missing, &mut outcome, out);
    }
    if !out.should_stop() {
        let summary = format!(
            "{} index files; {} files ({} bytes) downloaded; {} error(s)",
            outcome.indexes, outcome.downloaded.count, outcome.downloaded.bytes, outcome.errors
        );
        tracing::info!("precache: {summary}");
        out.say(Level::Good, &format!("Done: {summary}."));
    }
    outcome
}

/// Index files on disk matching the patterns, index paths the cached
/// Release files list matching them, and (for `asNeeded`) the packages the
/// cache holds a version of.
#[allow(clippy::type_complexity)]
fn survey(
    ctx: &Context,
    patterns: &[Pattern],
    as_needed: bool,
) -> std::io::Result<(Vec<String>, Vec<String>, HashSet<String>)> {
    let options = MatchOptions {
        require_literal_separator: true,
        ..MatchOptions::new()
    };
    let matches = |path: &str| patterns.iter().any(|p| p.matches_with(path, options));
    let (mut on_disk, mut releases, mut in_use) = (Vec::new(), Vec::new(), HashSet::new());
    for found in ctx.cache.walk()? {
        let Found::Data { path, complete, .. } = found else {
            continue;
        };
        match index::classify(&path).map(|c| c.kind) {
            Some(IndexKind::Release) if complete => releases.push(path),
            Some(IndexKind::Packages | IndexKind::Sources) if matches(&path) => on_disk.push(path),
            Some(_) => {}
            None if as_needed && complete => {
                in_use.insert(package_of(&path));
            }
            None => {}
        }
    }
    let mut listed = Vec::new();
    for release in releases {
        let Ok(key) = CacheKey::parse(&release) else {
            continue;
        };
        let Ok(Lookup::Complete(hit)) = ctx.cache.lookup(&key) else {
            continue;
        };
        let dir = release.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        let _ = index::parse(IndexKind::Release, BufReader::new(hit.file), |l| {
            if let Listed::File(r) = l {
                let path = format!("{dir}/{}", r.path);
                let kind = index::classify(&path).map(|c| c.kind);
                if matches!(kind, Some(IndexKind::Packages | IndexKind::Sources)) && matches(&path) {
                    listed.push(path);
                }
            }
        });
    }
    Ok((on_disk, listed, in_use))
}

/// One compression of each index: one on disk first, by [`PREFERRED`],
/// else the preferred one a Release lists.
fn choose(on_disk: &[String], listed: &[String]) -> Vec<CacheKey> {
    let stem = |path: &str| {
        PREFERRED
            .iter()
            .find_map(|s| path.strip_suffix(s).filter(|_| !s.is_empty()))
            .unwrap_or(path)
            .to_string()
    };
    let rank = |path: &str| {
        PREFERRED
            .iter()
            .position(|s| !s.is_empty() && path.ends_with(s))
            .unwrap_or(PREFERRED.len())
    };
    let mut best: BTreeMap<String, (bool, usize, &String)> = BTreeMap::new();
    for (cached, path) in on_disk
        .iter()
        .map(|p| (true, p))
        .chain(listed.iter().map(|p| (false, p)))
    {
        let candidate = (!cached, rank(path), path);
        best.entry(stem(path))
            .and_modify(|b| {
                if (candidate.0, candidate.1) < (b.0, b.1) {
                    *b = candidate;
                }
            })
            .or_insert(candidate);
    }
    best.into_values()
        .filter_map(|(_, _, p)| CacheKey::parse(p).ok())
        .collect()
}

/// `dir/name` of a package file `dir/name_version_arch.deb`.
fn package_of(path: &str) -> String {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    let name = file.split('_').next().unwrap_or(file);
    format!("{dir}/{name}")
}

/// Downloads `missing`, at most `PrecacheDownloads` at a time.
fn download(
    ctx: &Context,
    missing: Vec<(CacheKey, u64, Option<HttpUrl>)>,
    outcome: &mut Outcome,
    out: &mut dyn Report,
) {
    let parallel = ctx.config.maintenance.precache_downloads.max(1);
    let total = missing.len();
    out.say(
        Level::Info,
        &format!("Downloading {total} files, {parallel} at a time…"),
    );
    let mut jobs = Vec::new();
    for (key, size, original) in missing {
        match ctx.job(&key, FileKind::Solid, Revalidate::Never, original) {
            Some(job) => jobs.push((job, size)),
            None => {
                outcome.errors += 1;
                out.say(Level::Error, &format!("{key}: no mirror to download it from"));
            }
        }
    }
    let cache = Arc::clone(&ctx.cache);
    let mut pending = jobs.into_iter();
    let mut done = 0;
    ctx.runtime.block_on(async {
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < parallel && !out.should_stop() {
                let Some((job, size)) = pending.next() else { break };
                let (cache, key) = (Arc::clone(&cache), job.key.clone());
                running.spawn(async move { (key, size, cache.refresh(job).await) });
            }
            let Some(ended) = running.join_next().await else {
                break;
            };
            done += 1;
            match ended {
                Ok((key, size, Ok(()))) => {
                    outcome.downloaded.add(size);
                    out.say(Level::Info, &format!("[{done}/{total}] {key}"));
                }
                Ok((key, _, Err(e))) => {
                    outcome.errors += 1;
                    out.say(Level::Error, &format!("[{done}/{total}] {key}: {e}"));
                }
                Err(e) => {
                    outcome.errors += 1;
                    out.say(Level::Error, &format!("a download ended without a word: {e}"));
                }
            }
        }
    });
}

fn refresh(
    ctx: &Context,
    key: &CacheKey,
    kind: FileKind,
    revalidate: Revalidate,
    original: Option<HttpUrl>,
    outcome: &mut Outcome,
    out: &mut dyn Report,
) {
    let Some(job) = ctx.job(key, kind, revalidate, original) else {
        outcome.errors += 1;
        out.say(Level::Error, &format!("{key}: no mirror to refresh it from"));
        return;
    };
    let cache = Arc::clone(&ctx.cache);
    if let Err(e) = ctx.runtime.block_on(cache.refresh(job)) {
        outcome.errors += 1;
        out.say(Level::Error, &format!("{key}: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_compression_per_index_the_cached_one_first() {
        let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let d = "r/dists/s/main/binary-all";
        let chosen = choose(
            &s(&[&format!("{d}/Packages.gz")]),
            &s(&[
                &format!("{d}/Packages"),
                &format!("{d}/Packages.xz"),
                "r/dists/s/main/source/Sources.gz",
                "r/dists/s/main/source/Sources.xz",
            ]),
        );
        let chosen: Vec<&str> = chosen.iter().map(CacheKey::as_str).collect();
        assert_eq!(
            chosen,
            [
                format!("{d}/Packages.gz").as_str(),
                "r/dists/s/main/source/Sources.xz"
            ]
        );
    }

    #[test]
    fn a_package_is_its_directory_and_name() {
        assert_eq!(
            package_of("r/pool/main/h/hello/hello_2.10-3_amd64.deb"),
            "r/pool/main/h/hello/hello"
        );
    }
}
