//! The cache: what is stored for a key and whether it can be served.
//!
//! A lookup opens the data file, takes its `fstat`, and finds the parsed
//! `.head` in a small in-memory table keyed by path and checked against the
//! data file's (device, inode, size, mtime): a hit costs one open and one
//! fstat, no sidecar read. Any change to the data file (a rename, a write, a
//! truncation) changes that stamp, and writers in this process drop the entry
//! when they replace a sidecar.

mod download;
mod entry;
mod expect;
mod flight;
mod follow;
mod fresh;
mod key;
mod meta;
mod read;
mod scan;
mod storage;
mod upkeep;
mod verify;

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http::HeaderValue;
use tokio::sync::watch;

use crate::config::Caching;
use crate::stats::Stats;
use crate::tasks::Tasks;
use crate::upstream::Upstream;
pub use download::{longest_wait, needs_tls, Job, Origin, Revalidate};
pub use expect::{Changes, Expectations, Expected, Listing};
use flight::Flights;
pub use flight::{Body, Failure, Progress, State, Unusable};
pub use follow::Follow;
use fresh::Freshness;
pub use key::{check_relative, CacheKey, KeyError};
pub use meta::{Head, HeadError, MAX_HEAD_SIZE};
pub use read::{prefetch, read_range, resident, ChunkReader, CHUNK};
pub use scan::{Census, Damage, Files, Found, Problem, Tally, Walk};
use storage::Disk;
pub use storage::{CacheLock, Incoming, LockError, Storage};
pub use upkeep::{Changed, Reserved};
pub use verify::Mismatch;

/// Entries kept in the metadata table (a few hundred bytes each).
const META_CAPACITY: usize = 16 * 1024;

/// The response metadata of a complete file, ready to serve.
#[derive(Debug)]
pub struct Meta {
    pub head: Head,
    /// `Last-Modified` as sent, and parsed for comparisons.
    pub last_modified: Option<(HeaderValue, SystemTime)>,
    pub etag: Option<HeaderValue>,
}

impl Meta {
    pub fn new(head: Head) -> Meta {
        let last_modified = head.last_modified.as_deref().and_then(|lm| {
            let time = httpdate::parse_http_date(lm).ok()?;
            Some((HeaderValue::from_str(lm).ok()?, time))
        });
        let etag = head.etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok());
        Meta {
            head,
            last_modified,
            etag,
        }
    }
}

/// A complete cached file, open.
#[derive(Debug)]
pub struct Hit {
    pub file: File,
    pub len: u64,
    pub meta: Arc<Meta>,
}

/// What the cache holds for a key.
#[derive(Debug)]
pub enum Lookup {
    Complete(Hit),
    /// Data without a matching complete `.head`: partial, damaged, or an
    /// error head. `head` is the sidecar when it parses; `len` the data's.
    Incomplete {
        head: Option<Head>,
        len: u64,
    },
    Missing,
    /// The layout cannot hold this key: a parent is a file (`a.deb` cached,
    /// `a.deb/x` asked), the key names a directory, or a symlink stands on
    /// its path (never followed, never replaced).
    Conflict,
}

/// Identity of a data file's current content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(st: &rustix::fs::Stat) -> Stamp {
        Stamp {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec as i64),
        }
    }
}

/// Settings of the download path.
#[derive(Debug)]
struct Settings {
    dl_max_retries: u32,
    bad_redirect_mime: String,
}

#[derive(Debug)]
pub struct Cache {
    storage: Storage,
    meta: Mutex<HashMap<CacheKey, (Stamp, Arc<Meta>)>>,
    flights: Arc<Flights>,
    fresh: Freshness,
    upstream: Upstream,
    /// The downloads running, each owned by the cache, not by a client.
    downloads: Arc<Tasks>,
    settings: Settings,
    /// When "disk full" was last logged: once a minute is enough.
    disk_full_logged: Mutex<Option<Instant>>,
    /// Where downloads count their failures.
    stats: Arc<Stats>,
    /// Bytes downloads wrote since start (the size quota's estimate), and
    /// its waker.
    grown: AtomicU64,
    grew: tokio::sync::Notify,
    /// What the indexes say the files are, for verifying downloads.
    expected: Expectations,
}

/// A flight joined by [`Cache::fetch`].
#[derive(Debug)]
pub struct Joined {
    pub progress: watch::Receiver<Progress>,
    /// This call started the download (rather than joining one).
    pub started: bool,
}

impl Cache {
    pub fn new(storage: Storage, upstream: Upstream, config: &Caching, stats: Arc<Stats>) -> Cache {
        Cache {
            stats,
            storage,
            meta: Mutex::new(HashMap::new()),
            flights: Arc::new(Flights::default()),
            fresh: Freshness::new(config.fresh_index_max_age),
            upstream,
            downloads: Arc::default(),
            settings: Settings {
                dl_max_retries: config.dl_max_retries,
                bad_redirect_mime: config.bad_redirect_mime.clone(),
            },
            disk_full_logged: Mutex::new(None),
            grown: AtomicU64::new(0),
            grew: tokio::sync::Notify::new(),
            expected: Expectations::default(),
        }
    }

    /// Cuts the downloads still running (shutdown, after the clients): their
    /// files stay partial, resumed by the next request. Returns how many.
    pub async fn stop_downloads(&self) -> usize {
        self.downloads.stop().await
    }

    /// The sizes and digests downloads are verified against.
    pub fn expectations(&self) -> &Expectations {
        &self.expected
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Whether a new file can be made in the cache now (`/health`).
    pub fn probe(&self) -> io::Result<()> {
        self.storage.probe()
    }

    /// Bytes free and in all on the cache's file system.
    pub fn space(&self) -> io::Result<(u64, u64)> {
        self.storage.space()
    }

    /// Downloads running now.
    pub fn downloads(&self) -> usize {
        self.downloads.running()
    }

    /// A volatile file revalidated within `FreshIndexMaxAge`.
    pub fn is_fresh(&self, key: &CacheKey) -> bool {
        self.fresh.is_fresh(key)
    }

    /// Joins the download of `job.key`, starting it when none is running.
    /// A revalidation does not join a flight that already has its answer
    /// (it was asked before this request came): it waits for that flight to
    /// end and asks again.
    pub async fn fetch(self: &Arc<Self>, job: Job) -> Joined {
        loop {
            let (leader, mut rx) = self.flights.join(&job.key);
            if let Some(leader) = leader {
                self.downloads.spawn(download::run(Arc::clone(self), job, leader));
                return Joined {
                    progress: rx,
                    started: true,
                };
            }
            // Maintenance holds the key: when it lets go, look again.
            let claimed = matches!(rx.borrow().state, State::Claimed);
            let answered = match &rx.borrow().state {
                // Every byte committed: clients already got the whole body.
                State::Streaming {
                    done,
                    committed,
                    body,
                } => *done || body.total.is_some_and(|t| *committed >= t),
                State::Unchanged | State::Failed(_) | State::Claimed => true,
                State::Connecting => false,
            };
            // A flight bringing an index over plain http cannot answer a
            // client that needs it over TLS: wait for it, then start one.
            let plain = job.needs_tls()
                && matches!(&rx.borrow().state, State::Streaming { body, .. } if !body.meta.head.came_over_tls());
            if (job.revalidate == Revalidate::Never || !answered) && !plain && !claimed {
                return Joined {
                    progress: rx,
                    started: false,
                };
            }
            while rx.changed().await.is_ok() {}
        }
    }

    /// The download of `key`, if one is running.
    pub fn in_flight(&self, key: &CacheKey) -> Option<watch::Receiver<Progress>> {
        self.flights.watch(key)
    }

    /// The sidecar and data length of a key, whatever their state.
    fn inspect(&self, key: &CacheKey) -> io::Result<Option<(Head, u64)>> {
        Ok(match self.lookup(key)? {
            Lookup::Complete(hit) => Some((hit.meta.head.clone(), hit.len)),
            Lookup::Incomplete { head, len } => head.map(|h| (h, len)),
            Lookup::Missing | Lookup::Conflict => None,
        })
    }

    fn warn_disk_full(&self) {
        let mut last = self.disk_full_logged.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            tracing::error!(
                "cache disk full at {}: downloads fail until space is freed",
                self.storage.path().display()
            );
            *last = Some(Instant::now());
        }
    }

    /// Looks a key up without holding up a runtime worker: from what the
    /// kernel has in memory (the common case: a hot file costs an open and
    /// an fstat), else on the blocking pool.
    pub async fn find(self: &Arc<Self>, key: &CacheKey) -> io::Result<Lookup> {
        match self.lookup_with(key, Disk::Cached) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let (cache, key) = (Arc::clone(self), key.clone());
                tokio::task::spawn_blocking(move || cache.lookup(&key))
                    .await
                    .map_err(io::Error::other)?
            }
            found => found,
        }
    }

    /// Looks a key up, waiting for the disk if need be. Only I/O errors
    /// other than "not there" are errors.
    pub fn lookup(&self, key: &CacheKey) -> io::Result<Lookup> {
        self.lookup_with(key, Disk::Wait)
    }

    fn lookup_with(&self, key: &CacheKey, disk: Disk) -> io::Result<Lookup> {
        let file = match self.storage.open_data(key, disk) {
            Ok(file) => file,
            // A symlink where a file or directory of the key should be:
            // debcache never makes one, and neither follows nor replaces it.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR) | Some(libc::ELOOP)) => {
                return Ok(Lookup::Conflict)
            }
            Err(e) if is_absent(&e) => return Ok(Lookup::Missing),
            Err(e) => return Err(e),
        };
        let st = rustix::fs::fstat(&file)?;
        match rustix::fs::FileType::from_raw_mode(st.st_mode) {
            rustix::fs::FileType::RegularFile => {}
            rustix::fs::FileType::Directory => return Ok(Lookup::Conflict),
            _ => return Ok(Lookup::Missing),
        }
        let stamp = Stamp::of(&st);
        if let Some(meta) = self.remembered(key, stamp) {
            return Ok(Lookup::Complete(Hit {
                file,
                len: stamp.size,
                meta,
            }));
        }
        let head = match self.storage.read_head(key, disk) {
            Ok(bytes) => Head::parse(&bytes).ok(),
            Err(e) if is_absent(&e) => None,
            Err(e) => return Err(e),
        };
        match head {
            Some(head) if head.is_complete(stamp.size) => {
                let meta = Arc::new(Meta::new(head));
                self.remember(key, stamp, Arc::clone(&meta));
                Ok(Lookup::Complete(Hit {
                    file,
                    len: stamp.size,
                    meta,
                }))
            }
            head => Ok(Lookup::Incomplete {
                head,
                len: stamp.size,
            }),
        }
    }

    fn remembered(&self, key: &CacheKey, stamp: Stamp) -> Option<Arc<Meta>> {
        let table = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        match table.get(key) {
            Some((s, meta)) if *s == stamp => Some(Arc::clone(meta)),
            _ => None,
        }
    }

    fn remember(&self, key: &CacheKey, stamp: Stamp, meta: Arc<Meta>) {
        let mut table = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= META_CAPACITY {
            // Cheaper than an LRU and good enough: hot entries come back at
            // the cost of one sidecar read each.
            table.clear();
        }
        table.insert(key.clone(), (stamp, meta));
    }

    /// Drops what is remembered about a key (its sidecar was replaced).
    pub fn forget(&self, key: &CacheKey) {
        self.meta.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// "Not in the cache" rather than "the cache is broken": missing, a
/// directory where a file was expected, or a symlink refused by O_NOFOLLOW
/// (a `.head`; the data file's lookup tells those apart as conflicts).
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP) | Some(libc::EXDEV) | Some(libc::EISDIR)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A cache on `dir` with the embedded configuration.
    pub(super) fn cache_at(dir: &std::path::Path) -> Cache {
        let config = crate::config::load(crate::config::ConfigDir::Embedded, &[])
            .config
            .unwrap();
        Cache::new(
            Storage::open(dir).unwrap(),
            Upstream::new(&config.upstream, &config.remaps).unwrap(),
            &config.caching,
            Arc::new(Stats::new([])),
        )
    }

    fn cache_with(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        for (path, bytes) in files {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, bytes).unwrap();
        }
        let cache = cache_at(dir.path());
        (dir, cache)
    }

    fn lookup(cache: &Cache, path: &str) -> Lookup {
        cache.lookup(&CacheKey::parse(path).unwrap()).unwrap()
    }

    const HEAD5: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nLast-Modified: Sun, 22 Nov 2026 02:58:26 GMT\r\n\r\n";

    #[test]
    fn complete_when_length_matches() {
        let (_d, cache) = cache_with(&[("h/a.deb", b"12345"), ("h/a.deb.head", HEAD5)]);
        match lookup(&cache, "h/a.deb") {
            Lookup::Complete(hit) => {
                assert_eq!(hit.len, 5);
                assert_eq!(
                    hit.meta.last_modified.as_ref().unwrap().0,
                    "Sun, 22 Nov 2026 02:58:26 GMT"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partial_missing_head_and_error_heads_are_incomplete() {
        let (_d, cache) = cache_with(&[
            ("h/short.deb", b"123"),
            ("h/short.deb.head", HEAD5),
            ("h/nohead.deb", b"12345"),
            ("h/gone.deb", b""),
            ("h/gone.deb.head", b"HTTP/1.1 404 Not Found\r\n\r\n"),
            ("h/nolen.deb", b"12345"),
            (
                "h/nolen.deb.head",
                b"HTTP/1.1 200 OK\r\nX-Debcache-Expected-Length: 5\r\n\r\n",
            ),
        ]);
        for path in ["h/short.deb", "h/nohead.deb", "h/gone.deb", "h/nolen.deb"] {
            assert!(
                matches!(lookup(&cache, path), Lookup::Incomplete { .. }),
                "{path}"
            );
        }
        assert!(matches!(lookup(&cache, "h/none.deb"), Lookup::Missing));
    }

    #[test]
    fn a_key_the_layout_cannot_hold_is_a_conflict() {
        let (d, cache) = cache_with(&[("h/a.deb", b"12345"), ("h/dir.deb/inner.deb", b"x")]);
        std::os::unix::fs::symlink(d.path().join("h/a.deb"), d.path().join("h/link.deb")).unwrap();
        std::os::unix::fs::symlink(d.path().join("h/dir.deb"), d.path().join("h/up")).unwrap();
        for path in [
            "h/a.deb/below",
            "h/a.deb/below/deeper.deb",
            "h/dir.deb",
            "h/link.deb",
            "h/up/inner.deb",
        ] {
            assert!(matches!(lookup(&cache, path), Lookup::Conflict), "{path}");
        }
    }

    #[test]
    fn a_changed_file_is_noticed() {
        let (dir, cache) = cache_with(&[("h/a.deb", b"12345"), ("h/a.deb.head", HEAD5)]);
        assert!(matches!(lookup(&cache, "h/a.deb"), Lookup::Complete(_)));
        fs::write(dir.path().join("h/a.deb"), b"123456").unwrap();
        assert!(matches!(lookup(&cache, "h/a.deb"), Lookup::Incomplete { .. }));
        // Replaced as writers do it: a new inode renamed into place.
        fs::write(dir.path().join("h/new"), b"54321").unwrap();
        fs::rename(dir.path().join("h/new"), dir.path().join("h/a.deb")).unwrap();
        fs::write(
            dir.path().join("h/a.deb.head"),
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
        match lookup(&cache, "h/a.deb") {
            Lookup::Complete(hit) => assert!(hit.meta.last_modified.is_none(), "the new head was read"),
            other => panic!("{other:?}"),
        }
    }
}
