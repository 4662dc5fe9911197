//! The checksum table downloads are verified against
//! ([`Expectations`](crate::cache::Expectations)), made from the cached
//! indexes: for every suite at start, then for a suite again whenever one
//! of its indexes is committed (a second after the last, so one `apt-get
//! update` reads each suite once).
//!
//! A suite is the directory of a Release (`repo/dists/bookworm`): its
//! entries are the by-hash objects its Release lists and the files its
//! Packages and Sources list, each read in one compression, from its plain
//! name or its by-hash object. An index outside any cached suite (a flat
//! repository without a Release) is a unit of its own. Reading runs on a
//! thread at the lowest priority: clients never wait for it.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{Cache, CacheKey, Changes, Expected, Found, Listing, Lookup};
use crate::index::{self, IndexKind, Listed};

/// How long after an index's commit its suite is read: the rest of an
/// update's indexes arrive meanwhile.
const SETTLE: Duration = Duration::from_secs(1);

/// The most files one suite may list: Debian's largest suite with every
/// architecture lists under a million. Past it the suite is not verified
/// (40 bytes each in memory, twice that while its list grows).
const SUITE_MAX: usize = 2_000_000;

/// What to read again.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    /// A Release's directory.
    Suite(String),
    /// An index no cached Release covers.
    Alone(CacheKey),
}

impl Unit {
    fn name(&self) -> &str {
        match self {
            Unit::Suite(dir) => dir,
            Unit::Alone(key) => key.as_str(),
        }
    }
}

/// Keeps `cache`'s checksum table current, for as long as the daemon runs.
pub async fn keep(cache: Arc<Cache>) {
    // At start, every suite.
    let mut changes = Changes::All;
    loop {
        let c = Arc::clone(&cache);
        let read = crate::tasks::low_priority("debcache-sums", move || {
            let units: BTreeSet<Unit> = match changes {
                Changes::All => every_unit(&c).into_iter().collect(),
                Changes::Indexes(keys) => keys.iter().filter_map(|k| unit_of(&c, k)).collect(),
            };
            for unit in &units {
                load(&c, unit);
            }
        });
        match read {
            Ok(done) => {
                let _ = done.await;
            }
            Err(e) => tracing::warn!("cannot read the indexes' checksums: {e}"),
        }
        changes = settled_changes(&cache).await;
    }
}

/// The indexes committed next, with those that follow within [`SETTLE`].
async fn settled_changes(cache: &Cache) -> Changes {
    let first = cache.expectations().changes().await;
    tokio::time::sleep(SETTLE).await;
    let more = tokio::time::timeout(Duration::ZERO, cache.expectations().changes()).await;
    match (first, more) {
        (Changes::Indexes(mut keys), Ok(Changes::Indexes(more))) => {
            keys.extend(more);
            Changes::Indexes(keys)
        }
        (Changes::Indexes(keys), Err(_)) => Changes::Indexes(keys),
        _ => Changes::All,
    }
}

/// Every suite and lone index in the cache.
fn every_unit(cache: &Cache) -> Vec<Unit> {
    let walk = match cache.walk() {
        Ok(walk) => walk,
        Err(e) => {
            tracing::warn!("cannot walk the cache for its indexes: {e}");
            return Vec::new();
        }
    };
    let (mut releases, mut others) = (HashSet::new(), Vec::new());
    for found in walk {
        let Found::Data { path, .. } = found else {
            continue;
        };
        match index::classify(&path).map(|c| c.kind) {
            Some(IndexKind::Release) => {
                releases.insert(parent(&path).to_string());
            }
            Some(IndexKind::Packages | IndexKind::Sources) => others.push(path),
            _ => {}
        }
    }
    let mut units: Vec<Unit> = others
        .into_iter()
        .filter(|path| suite_dir(path, |dir| releases.contains(dir)).is_none())
        .filter_map(|path| CacheKey::parse(&path).ok())
        .map(Unit::Alone)
        .collect();
    units.extend(releases.into_iter().map(Unit::Suite));
    units.sort();
    units
}

/// What a committed file makes to read again: its suite, or itself.
fn unit_of(cache: &Cache, key: &CacheKey) -> Option<Unit> {
    let path = key.as_str();
    let has_release = |dir: &str| {
        ["InRelease", "Release"].iter().any(|name| {
            CacheKey::parse(&format!("{dir}/{name}"))
                .is_ok_and(|k| matches!(cache.lookup(&k), Ok(Lookup::Complete(_))))
        })
    };
    match index::classify(path).map(|c| c.kind) {
        Some(IndexKind::Release) => Some(Unit::Suite(parent(path).to_string())),
        Some(IndexKind::Packages | IndexKind::Sources) => Some(match suite_dir(path, has_release) {
            Some(dir) => Unit::Suite(dir.to_string()),
            None => Unit::Alone(key.clone()),
        }),
        _ if path.contains("/by-hash/") => suite_dir(path, has_release).map(|d| Unit::Suite(d.to_string())),
        _ => None,
    }
}

/// The nearest directory above `path`, up to the `dists` one, that holds
/// a Release (as `is_suite` says).
fn suite_dir(path: &str, is_suite: impl Fn(&str) -> bool) -> Option<&str> {
    let mut dir = parent(path);
    while !dir.is_empty() && !dir.ends_with("/dists") && dir != "dists" {
        if is_suite(dir) {
            return Some(dir);
        }
        dir = parent(dir);
    }
    None
}

/// Reads `unit` into the table; on any problem the unit keeps no entries
/// (unverified rather than verified against what may be wrong).
fn load(cache: &Cache, unit: &Unit) {
    let entries = match unit {
        Unit::Suite(dir) => suite(cache, dir),
        Unit::Alone(key) => {
            let mut entries = cache.expectations().listing();
            index_entries(cache, key, key.as_str(), &mut entries).map(|_| entries)
        }
    };
    let entries = entries.unwrap_or_else(|why| {
        tracing::warn!("{}: downloads are not verified: {why}", unit.name());
        cache.expectations().listing()
    });
    tracing::debug!(
        "{}: {} files to verify downloads against",
        unit.name(),
        entries.len()
    );
    cache.expectations().replace(unit.name(), entries);
}

/// A suite's entries, from its newest Release.
fn suite(cache: &Cache, dir: &str) -> Result<Listing, String> {
    let Some(release) = newest_release(cache, dir) else {
        // Gone (expired): nothing of it is listed any more.
        return Ok(cache.expectations().listing());
    };
    // Each Packages or Sources listed, with its by-hash objects.
    let mut indexes: Vec<(String, Vec<String>)> = Vec::new();
    let mut entries = cache.expectations().listing();
    let mut last_is_index = false;
    super::read_index(
        cache,
        &release,
        release.as_str(),
        IndexKind::Release,
        dir,
        |listed, path| {
            let (by_hash, r) = match &listed {
                Listed::File(r) => (false, r),
                Listed::ByHash(r) => (true, r),
            };
            if !by_hash {
                last_is_index = matches!(
                    index::classify(&path).map(|c| c.kind),
                    Some(IndexKind::Packages | IndexKind::Sources)
                );
                if last_is_index {
                    indexes.push((path, Vec::new()));
                }
                return;
            }
            if let (true, Some((_, objects))) = (last_is_index, indexes.last_mut()) {
                objects.push(path.clone());
            }
            entries.add(&path, expected(r));
        },
    )?;
    // One compression of each index: the first one cached.
    let mut read: HashSet<String> = HashSet::new();
    for (path, objects) in &indexes {
        let stem = index::uncompressed(path).to_string();
        if read.contains(&stem) {
            continue;
        }
        for at in std::iter::once(path).chain(objects) {
            let Ok(key) = CacheKey::parse(at) else { continue };
            if index_entries(cache, &key, path, &mut entries)? {
                read.insert(stem);
                break;
            }
        }
        if entries.len() > SUITE_MAX {
            return Err(format!("it lists more than {SUITE_MAX} files"));
        }
    }
    Ok(entries)
}

/// The cached InRelease or Release of `dir`, the newer when both are.
fn newest_release(cache: &Cache, dir: &str) -> Option<CacheKey> {
    ["InRelease", "Release"]
        .iter()
        .filter_map(|name| {
            let key = CacheKey::parse(&format!("{dir}/{name}")).ok()?;
            let Ok(Lookup::Complete(hit)) = cache.lookup(&key) else {
                return None;
            };
            Some((hit.file.metadata().and_then(|m| m.modified()).ok()?, key))
        })
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, key)| key)
}

/// Adds what the Packages or Sources index at `key` lists (named `name`,
/// which says its compression and base); `Ok(false)` when it is not cached.
fn index_entries(cache: &Cache, key: &CacheKey, name: &str, entries: &mut Listing) -> Result<bool, String> {
    let Some(classified) = index::classify(name) else {
        return Ok(false);
    };
    let base = classified.base.to_string();
    super::read_index(cache, key, name, classified.kind, &base, |listed, path| {
        let (Listed::File(r) | Listed::ByHash(r)) = &listed;
        entries.add(&path, expected(r));
    })
}

fn expected(r: &index::Reference) -> Expected {
    Expected {
        size: r.size,
        sum: r.digest.fingerprint(),
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Head, Storage};
    use crate::digest::{Algorithm, Digest, Hasher};
    use std::fs;
    use std::path::Path;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/index");
    const DEB: &str = "r/pool/main/h/hello/hello_1.0-1_amd64.deb";
    const DSC: &str = "r/pool/main/h/hello/hello_1.0.dsc";

    fn cache_at(dir: &Path) -> Cache {
        let config = crate::config::load(crate::config::ConfigDir::Embedded, &[])
            .config
            .unwrap();
        Cache::new(
            Storage::open(dir).unwrap(),
            crate::upstream::Upstream::new(&config.upstream, &config.remaps).unwrap(),
            &config.caching,
            Arc::new(crate::stats::Stats::new([])),
        )
    }

    /// A cached copy of the fixture archive under `r/`, minus `skip`ped
    /// paths (relative to the archive), each file with a complete `.head`.
    fn cached(skip: &[&str]) -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let mut stack = vec![PathBuf::from(FIXTURES)];
        while let Some(at) = stack.pop() {
            for entry in fs::read_dir(&at).unwrap() {
                let path = entry.unwrap().path();
                let rel = path.strip_prefix(FIXTURES).unwrap().to_str().unwrap().to_string();
                if path.is_dir() {
                    stack.push(path);
                } else if rel != "make.sh" && !skip.contains(&rel.as_str()) {
                    put(dir.path(), &format!("r/{rel}"), &fs::read(&path).unwrap());
                }
            }
        }
        let cache = cache_at(dir.path());
        (dir, cache)
    }

    fn put(root: &Path, rel: &str, bytes: &[u8]) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        let head = Head {
            content_length: Some(bytes.len() as u64),
            ..Head::default()
        };
        fs::write(root.join(format!("{rel}.head")), head.render()).unwrap();
    }

    fn sha256_of(root: &Path, rel: &str) -> Digest {
        Hasher::of(Algorithm::Sha256, fs::File::open(root.join(rel)).unwrap())
            .unwrap()
            .unwrap()
    }

    fn key(path: &str) -> CacheKey {
        CacheKey::parse(path).unwrap()
    }

    use std::path::PathBuf;

    #[test]
    fn a_suite_lists_its_packages_sources_and_by_hash_objects() {
        let (dir, cache) = cached(&[]);
        assert_eq!(every_unit(&cache), vec![Unit::Suite("r/dists/test".into())]);
        load(&cache, &Unit::Suite("r/dists/test".into()));
        let got = |path: &str| cache.expectations().get(&key(path));
        let deb = got(DEB).expect("the .deb from Packages");
        assert_eq!(deb.size, fs::metadata(dir.path().join(DEB)).unwrap().len());
        let file = fs::File::open(dir.path().join(DEB)).unwrap();
        assert_eq!(
            Some(deb.sum),
            Hasher::of(deb.sum.algorithm(), file)
                .unwrap()
                .map(|d| d.fingerprint())
        );
        assert!(got(DSC).is_some(), "the .dsc from Sources");
        let packages = "r/dists/test/main/binary-amd64/Packages.xz";
        let by_hash = format!(
            "r/dists/test/main/binary-amd64/by-hash/SHA256/{}",
            sha256_of(dir.path(), packages)
        );
        assert!(got(&by_hash).is_some(), "{by_hash}: the Release's object");
        assert!(
            got(packages).is_none(),
            "an index under its name changes: never verified"
        );
    }

    #[test]
    fn an_index_cached_only_by_hash_is_read_there() {
        let amd64 = "dists/test/main/binary-amd64";
        let all: Vec<String> = [
            "Packages",
            "Packages.gz",
            "Packages.bz2",
            "Packages.xz",
            "Packages.zst",
        ]
        .iter()
        .map(|n| format!("{amd64}/{n}"))
        .collect();
        let skip: Vec<&str> = all.iter().map(String::as_str).collect();
        let (dir, cache) = cached(&skip);
        let xz = fs::read(Path::new(FIXTURES).join(&all[3])).unwrap();
        let hex = Hasher::of(Algorithm::Sha256, &xz[..]).unwrap().unwrap();
        put(dir.path(), &format!("r/{amd64}/by-hash/SHA256/{hex}"), &xz);
        assert_eq!(
            unit_of(&cache, &key(&format!("r/{amd64}/by-hash/SHA256/{hex}"))),
            Some(Unit::Suite("r/dists/test".into()))
        );
        load(&cache, &Unit::Suite("r/dists/test".into()));
        assert!(cache.expectations().get(&key(DEB)).is_some());
    }

    #[test]
    fn a_broken_index_leaves_its_suite_unverified() {
        let (dir, cache) = cached(&[]);
        load(&cache, &Unit::Suite("r/dists/test".into()));
        assert!(cache.expectations().get(&key(DEB)).is_some());
        // The first compression listed and cached is the one read.
        for name in [
            "Packages",
            "Packages.gz",
            "Packages.bz2",
            "Packages.xz",
            "Packages.zst",
        ] {
            put(
                dir.path(),
                &format!("r/dists/test/main/binary-amd64/{name}"),
                b"Package: x\nFilename: pool/x.deb\nSize: many\n",
            );
        }
        load(&cache, &Unit::Suite("r/dists/test".into()));
        assert_eq!(cache.expectations().get(&key(DEB)), None);
        assert_eq!(cache.expectations().get(&key(DSC)), None, "the whole suite");
    }

    #[test]
    fn an_index_without_a_release_is_a_unit_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let packages = fs::read(Path::new(FIXTURES).join("dists/test/main/binary-amd64/Packages")).unwrap();
        put(dir.path(), "flat/Packages", &packages);
        let cache = cache_at(dir.path());
        let units = every_unit(&cache);
        assert_eq!(units, vec![Unit::Alone(key("flat/Packages"))]);
        assert_eq!(unit_of(&cache, &key("flat/Packages")), Some(units[0].clone()));
        load(&cache, &units[0]);
        assert!(cache
            .expectations()
            .get(&key("flat/pool/main/h/hello/hello_1.0-1_amd64.deb"))
            .is_some());
        assert_eq!(unit_of(&cache, &key("flat/hello.deb")), None, "not an index");
    }

    #[test]
    fn a_suite_is_the_nearest_directory_with_a_release() {
        let suites = ["r/dists/old/updates", "r/dists/new"];
        let is = |d: &str| suites.contains(&d);
        assert_eq!(
            suite_dir("r/dists/new/main/binary-all/Packages", is),
            Some("r/dists/new")
        );
        assert_eq!(
            suite_dir("r/dists/old/updates/main/source/Sources.xz", is),
            Some("r/dists/old/updates")
        );
        assert_eq!(suite_dir("r/dists/none/main/binary-all/Packages", is), None);
        assert_eq!(suite_dir("r/pool/a.deb", |_| false), None);
    }
}
