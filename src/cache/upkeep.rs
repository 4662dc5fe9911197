//! What maintenance may do to the store, and nothing more: walk it, see
//! the downloads, remove an entry, empty a damaged one. Each change holds
//! the key's claim ([`Flights::claim`](super::flight::Flights::claim)): it
//! is refused while a download of the key runs, and no download starts
//! until it is done (clients asking meanwhile wait, then look again). A
//! client already sending the file keeps its open descriptor and finishes.
//!
//! All of it waits for the disk: call it off the runtime's workers.

use std::io;
use std::sync::atomic::Ordering;

use std::sync::Arc;

use super::download::Job;
use super::flight::{Failure, State};
use super::key::CacheKey;
use super::meta::Head;
use super::scan::Walk;
use super::storage::{Disk, Incoming};
use super::{is_absent, Cache, Lookup};

/// Maintenance's own files in the cache directory, named as apt-cacher-ng
/// names them (spec §6.4), so an acng-written cache keeps its history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// `_expending_dat`: files no index references, since when.
    Orphans,
    /// `_expending_damaged`: files the last expiration found damaged.
    Damaged,
    /// `_exfail_cnt`: one line per failed expiration run.
    Failures,
    /// debcache's: when the last expiration ran to its end.
    LastExpiration,
}

impl Reserved {
    pub fn name(self) -> &'static str {
        match self {
            Reserved::Orphans => "_expending_dat",
            Reserved::Damaged => "_expending_damaged",
            Reserved::Failures => "_exfail_cnt",
            Reserved::LastExpiration => "_debcache/last-expiration",
        }
    }
}

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changed {
    /// Done; the bytes the file system gave back.
    Done { freed: u64 },
    /// A download of the key is running: nothing was touched.
    Busy,
    /// Neither the data nor its `.head` is there.
    Absent,
}

impl Cache {
    /// Walks the cache's repositories.
    pub fn walk(&self) -> io::Result<Walk> {
        self.storage.walk()
    }

    /// Bytes downloads have written since start, for estimates between
    /// walks.
    pub fn grown(&self) -> u64 {
        self.grown.load(Ordering::Relaxed)
    }

    /// Returns when downloads wrote more (at once if they did since the
    /// last call).
    pub async fn grew(&self) {
        self.grew.notified().await;
    }

    /// The keys being downloaded now.
    pub fn downloading(&self) -> Vec<CacheKey> {
        self.flights.keys()
    }

    /// Brings a cached file up to date as a client's request would, joining
    /// a download of it that already runs, and waits for its end.
    pub async fn refresh(self: &Arc<Self>, job: Job) -> Result<(), Failure> {
        let mut rx = self.fetch(job).await.progress;
        while rx.changed().await.is_ok() {}
        let state = rx.borrow().state.clone();
        match state {
            State::Streaming { done: true, .. } | State::Unchanged => Ok(()),
            State::Failed(failure) => Err(failure),
            State::Streaming { .. } | State::Connecting | State::Claimed => Err(Failure::Abandoned),
        }
    }

    /// The cache's `.head` of `key`, whatever the state of its data.
    pub fn head_of(&self, key: &CacheKey) -> io::Result<Option<Head>> {
        match self.storage.read_head(key, Disk::Wait) {
            Ok(bytes) => Ok(Head::parse(&bytes).ok()),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads one of maintenance's own files in the cache directory (`None`
    /// when there is none).
    pub fn read_reserved(&self, file: Reserved) -> io::Result<Option<Vec<u8>>> {
        match self.storage.read_root_file(file.name()) {
            Err(e) if is_absent(&e) => Ok(None),
            read => read.map(Some),
        }
    }

    /// Replaces one of maintenance's own files, atomically and durably;
    /// `None` removes it.
    pub fn write_reserved(&self, file: Reserved, bytes: Option<&[u8]>) -> io::Result<()> {
        self.storage.write_root_file(file.name(), bytes)
    }

    /// The files dropped in `CacheDir/_import`, and the problems met
    /// finding them; `None` when there is no such directory.
    pub fn incoming(&self) -> io::Result<Option<(Vec<Incoming>, Vec<String>)>> {
        self.storage.import_files()
    }

    /// Imports `file` as `key` (spec §10.3): linked (or copied) into place
    /// with a `.head` that says its length, then removed from `_import`.
    /// The caller has checked its content against an index. A complete
    /// copy already there is left as it is (`Absent`: nothing imported).
    pub fn import(&self, key: &CacheKey, file: &Incoming) -> io::Result<Changed> {
        let Some(_claim) = self.flights.claim(key) else {
            return Ok(Changed::Busy);
        };
        if matches!(self.lookup(key)?, Lookup::Complete(_)) {
            return Ok(Changed::Absent);
        }
        let dir = self.storage.place(file, key)?;
        let head = Head {
            content_length: Some(file.len),
            ..Head::default()
        };
        let head_name = format!("{}.head", key.file_name());
        self.storage
            .write_atomic(&dir, &head_name, head.render().as_bytes(), true)?;
        dir.sync()?;
        self.forget(key);
        file.remove()?;
        Ok(Changed::Done { freed: 0 })
    }

    /// Removes the repositories' empty directories not changed for `age`
    /// (acng: 10 days, so a directory a download is about to fill is not
    /// taken from under it); how many.
    pub fn prune_empty_dirs(&self, age: std::time::Duration) -> io::Result<u64> {
        self.storage.prune_empty_dirs(age)
    }

    /// Removes a file and its `.head`.
    pub fn remove(&self, key: &CacheKey) -> io::Result<Changed> {
        let Some(_claim) = self.flights.claim(key) else {
            return Ok(Changed::Busy);
        };
        let dir = match self.storage.existing_parent(key) {
            Err(e) if is_absent(&e) => return Ok(Changed::Absent),
            dir => dir?,
        };
        let (name, head) = (key.file_name(), format!("{}.head", key.file_name()));
        let mut freed = None;
        for name in [name, head.as_str()] {
            if let Some(bytes) = dir.allocated(name)? {
                match dir.remove(name) {
                    Err(e) if is_absent(&e) => {}
                    removed => {
                        removed?;
                        *freed.get_or_insert(0) += bytes;
                    }
                }
            }
        }
        self.forget(key);
        Ok(freed.map_or(Changed::Absent, |freed| Changed::Done { freed }))
    }

    /// Empties a damaged file and keeps its `.head` (acng's "truncate"):
    /// an empty new inode replaces the data, so nothing reading the old one
    /// sees it shrink, and the next request downloads it again.
    pub fn truncate(&self, key: &CacheKey) -> io::Result<Changed> {
        let Some(_claim) = self.flights.claim(key) else {
            return Ok(Changed::Busy);
        };
        let dir = match self.storage.existing_parent(key) {
            Err(e) if is_absent(&e) => return Ok(Changed::Absent),
            dir => dir?,
        };
        let Some(freed) = dir.allocated(key.file_name())? else {
            return Ok(Changed::Absent);
        };
        let (file, temp) = self.storage.create_temp(&dir)?;
        drop(file);
        if let Err(e) = dir.rename(&temp, &dir, key.file_name()) {
            let _ = dir.remove(&temp);
            return Err(e);
        }
        self.forget(key);
        Ok(Changed::Done { freed })
    }

    /// Gives back the blocks reserved past a file's end (a download's
    /// reservation, left by one that stopped), its bytes untouched: a
    /// truncation to its own length (ext4 and XFS free what lies past the
    /// end; a hole punched there is a no-op on ext4).
    pub fn trim(&self, key: &CacheKey) -> io::Result<Changed> {
        let Some(_claim) = self.flights.claim(key) else {
            return Ok(Changed::Busy);
        };
        let file = match self.storage.open_data_rw(key) {
            Err(e) if is_absent(&e) => return Ok(Changed::Absent),
            file => file?,
        };
        let before = rustix::fs::fstat(&file)?;
        let len = before.st_size as u64;
        let blocks = before.st_blocks as u64 * 512;
        if blocks <= len.next_multiple_of(4096) {
            return Ok(Changed::Done { freed: 0 });
        }
        file.set_len(len)?;
        // The truncation renews the times; the size quota orders by them.
        let times = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: before.st_atime,
                tv_nsec: before.st_atime_nsec as _,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: before.st_mtime,
                tv_nsec: before.st_mtime_nsec as _,
            },
        };
        rustix::fs::futimens(&file, &times)?;
        self.forget(key);
        let after = rustix::fs::fstat(&file)?.st_blocks as u64 * 512;
        Ok(Changed::Done {
            freed: blocks.saturating_sub(after),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const HEAD5: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";

    fn cache() -> (tempfile::TempDir, Arc<Cache>) {
        let dir = tempfile::tempdir().unwrap();
        for (path, bytes) in [("h/p/a.deb", &b"12345"[..]), ("h/p/a.deb.head", HEAD5)] {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, bytes).unwrap();
        }
        let cache = super::super::tests::cache_at(dir.path());
        (dir, Arc::new(cache))
    }

    fn key(path: &str) -> CacheKey {
        CacheKey::parse(path).unwrap()
    }

    #[test]
    fn trim_gives_back_what_a_download_reserved_past_the_end() {
        use rustix::fs::{fallocate, FallocateFlags};
        let (dir, cache) = cache();
        let path = dir.path().join("h/p/a.deb");
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        if fallocate(&file, FallocateFlags::KEEP_SIZE, 0, 1 << 20).is_err() {
            return; // A file system without reservations: nothing to give back.
        }
        let blocks = || rustix::fs::stat(&path).unwrap().st_blocks * 512;
        assert!(blocks() >= 1 << 20);
        let mtime = |p: &std::path::Path| fs::metadata(p).unwrap().modified().unwrap();
        let stamp = mtime(&path);
        let Changed::Done { freed } = cache.trim(&key("h/p/a.deb")).unwrap() else {
            panic!("not trimmed");
        };
        assert!(freed >= (1 << 20) - 8192, "{freed}");
        assert!(blocks() <= 8192);
        assert_eq!(fs::read(&path).unwrap(), b"12345");
        assert_eq!(
            mtime(&path),
            stamp,
            "its times are kept: the size quota orders by them"
        );
        assert_eq!(cache.trim(&key("h/p/a.deb")).unwrap(), Changed::Done { freed: 0 });
        assert_eq!(cache.trim(&key("h/p/gone.deb")).unwrap(), Changed::Absent);
    }

    #[test]
    fn remove_takes_the_pair_and_what_was_remembered() {
        let (dir, cache) = cache();
        assert!(matches!(
            cache.lookup(&key("h/p/a.deb")).unwrap(),
            Lookup::Complete(_)
        ));
        assert!(matches!(cache.remove(&key("h/p/a.deb")).unwrap(), Changed::Done { freed } if freed > 0));
        assert!(!dir.path().join("h/p/a.deb").exists());
        assert!(!dir.path().join("h/p/a.deb.head").exists());
        assert!(matches!(
            cache.lookup(&key("h/p/a.deb")).unwrap(),
            Lookup::Missing
        ));
        assert_eq!(cache.remove(&key("h/p/a.deb")).unwrap(), Changed::Absent);
        assert_eq!(cache.remove(&key("h/none/x.deb")).unwrap(), Changed::Absent);
    }

    #[test]
    fn nothing_is_touched_while_a_download_runs() {
        let (dir, cache) = cache();
        let (leader, _rx) = cache.flights.join(&key("h/p/a.deb"));
        assert_eq!(cache.downloading(), vec![key("h/p/a.deb")]);
        assert_eq!(cache.remove(&key("h/p/a.deb")).unwrap(), Changed::Busy);
        assert_eq!(cache.truncate(&key("h/p/a.deb")).unwrap(), Changed::Busy);
        assert_eq!(fs::read(dir.path().join("h/p/a.deb")).unwrap(), b"12345");
        drop(leader);
        assert!(cache.downloading().is_empty());
    }

    #[test]
    fn a_claim_holds_off_downloads_and_hides_from_the_list() {
        let (_dir, cache) = cache();
        let claim = cache.flights.claim(&key("h/p/a.deb")).unwrap();
        assert!(cache.downloading().is_empty(), "a claim is not a download");
        assert!(cache.in_flight(&key("h/p/a.deb")).is_none());
        let (leader, rx) = cache.flights.join(&key("h/p/a.deb"));
        assert!(leader.is_none(), "no download starts while it is claimed");
        assert!(matches!(rx.borrow().state, State::Claimed));
        assert!(cache.flights.claim(&key("h/p/a.deb")).is_none());
        drop(claim);
        let (leader, _rx) = cache.flights.join(&key("h/p/a.deb"));
        assert!(leader.is_some(), "released: the next request downloads");
    }

    #[test]
    fn truncate_keeps_the_head_and_spares_readers_of_the_old_inode() {
        let (dir, cache) = cache();
        let reader = fs::File::open(dir.path().join("h/p/a.deb")).unwrap();
        assert!(matches!(
            cache.truncate(&key("h/p/a.deb")).unwrap(),
            Changed::Done { .. }
        ));
        assert_eq!(fs::read(dir.path().join("h/p/a.deb")).unwrap(), b"");
        assert_eq!(fs::read(dir.path().join("h/p/a.deb.head")).unwrap(), HEAD5);
        assert_eq!(reader.metadata().unwrap().len(), 5);
        assert!(matches!(
            cache.lookup(&key("h/p/a.deb")).unwrap(),
            Lookup::Incomplete { len: 0, .. }
        ));
    }

    #[test]
    fn reserved_files_round_trip_and_are_never_followed() {
        let (dir, cache) = cache();
        assert_eq!(cache.read_reserved(Reserved::Orphans).unwrap(), None);
        cache
            .write_reserved(Reserved::Orphans, Some(b"1\th/p/\ta.deb\n"))
            .unwrap();
        assert_eq!(
            fs::read(dir.path().join("_expending_dat")).unwrap(),
            b"1\th/p/\ta.deb\n"
        );
        assert_eq!(
            cache.read_reserved(Reserved::Orphans).unwrap().as_deref(),
            Some(&b"1\th/p/\ta.deb\n"[..])
        );
        cache.write_reserved(Reserved::Orphans, None).unwrap();
        cache.write_reserved(Reserved::Orphans, None).unwrap();
        assert!(!dir.path().join("_expending_dat").exists());
        std::os::unix::fs::symlink(
            dir.path().join("h/p/a.deb"),
            dir.path().join("_expending_damaged"),
        )
        .unwrap();
        assert_eq!(
            cache.read_reserved(Reserved::Damaged).unwrap(),
            None,
            "not followed"
        );
    }

    #[test]
    fn symlinks_and_directories_are_never_removed() {
        let (dir, cache) = cache();
        fs::create_dir_all(dir.path().join("h/p/d.deb")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("h/p/a.deb"), dir.path().join("h/p/l.deb")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("h/p"), dir.path().join("h/up")).unwrap();
        for path in ["h/p/d.deb", "h/p/l.deb", "h/up/a.deb"] {
            assert_eq!(cache.remove(&key(path)).unwrap(), Changed::Absent, "{path}");
        }
        assert!(dir.path().join("h/p/a.deb").exists());
        assert!(dir.path().join("h/p/d.deb").is_dir());
    }
}
