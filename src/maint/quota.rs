//! Keeping the cache under a size: `CacheSizeLimit` in the daemon, and
//! `debcache shrink` (acngtool shrink, spec §10.5) offline.
//!
//! 1. A walk adds up what the files take on disk (their allocated blocks,
//!    `.head` files included).
//! 2. When that is over the target, a second walk keeps the least recently
//!    used files that together free the excess: a heap ordered newest on
//!    top drops any file the older ones already cover, so memory follows
//!    the number of files to remove, not the number in the cache.
//! 3. They are removed oldest first through [`Cache::remove`], which
//!    refuses a file being downloaded (a client sending it finishes from
//!    its open descriptor), until the excess is freed. Files downloading
//!    when the walk began are not chosen at all, so the others cover the
//!    excess.
//!
//! "Recently used": the later of the data's access and modification times
//! (not its status change: copying a cache with `cp -a` renews that of
//! every file). acng's `TrackFileUse` (the `.head` touched on every hit) is
//! not in effect: access times say the same without a write per hit. Volatile
//! files (indexes) are taken only when every other file is not enough
//! ([`Volatile::Last`]) or never ([`Volatile::Keep`], shrink without `-x`).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};
use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cache::{Cache, CacheKey, Changed, Files, Found};
use crate::config::{Config, FilePatterns};
use crate::request::kind::classify;
use crate::request::FileKind;

/// Whether index files may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Volatile {
    /// After every other file.
    Last,
    /// Never.
    Keep,
}

#[derive(Clone, Copy, Debug)]
pub struct Policy<'a> {
    pub patterns: &'a FilePatterns,
    pub volatile: Volatile,
}

/// A file that may go, and when it was last used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub key: CacheKey,
    pub allocated: u64,
    pub used: SystemTime,
    pub volatile: bool,
}

impl Ord for Candidate {
    /// The order of removal: solid before volatile, then oldest first.
    fn cmp(&self, other: &Candidate) -> Ordering {
        (self.volatile, self.used, &self.key).cmp(&(other.volatile, other.used, &other.key))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Candidate) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What the files take, and what a shrink did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The files before, by allocated bytes.
    pub before: Files,
    /// Removed (with `dry_run`: would be).
    pub removed: Files,
    /// Left alone because a download of them was running.
    pub busy: u64,
    /// Directories the walk could not read: their files were not counted.
    pub unreadable: u64,
}

/// When to shrink, and to what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// Nothing is done unless the files take more than this.
    pub over: u64,
    /// Then files go until they take at most this.
    pub down_to: u64,
}

impl Target {
    /// For `CacheSizeLimit`: past the limit, 5 % below it, so that the
    /// next download does not start it all over again.
    pub fn limit(limit: u64) -> Target {
        Target {
            over: limit,
            down_to: limit - limit / 20,
        }
    }

    /// For `debcache shrink SIZE`: exactly to the size.
    pub fn exactly(size: u64) -> Target {
        Target {
            over: size,
            down_to: size,
        }
    }
}

/// The work stopped because it was cancelled.
fn cancelled() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "cancelled")
}

/// Sums what the cache's files take on disk (blocking).
pub fn usage(cache: &Cache, cancel: &AtomicBool) -> io::Result<(Files, u64)> {
    let (mut files, mut unreadable) = (Files::default(), 0);
    for found in cache.walk()? {
        if cancel.load(Relaxed) {
            return Err(cancelled());
        }
        match found {
            Found::Data { allocated, .. } => files.add(allocated),
            Found::Unreadable { .. } => unreadable += 1,
            Found::HeadAlone { .. } => {}
        }
    }
    Ok((files, unreadable))
}

/// Removes the least recently used files when the cache takes more than
/// `target.over`, until it takes at most `target.down_to` (blocking). With
/// `dry_run`, only says which; `each` hears of every file chosen, with what
/// removing it did (`None` in a dry run). `cancel` stops it between files.
pub fn shrink(
    cache: &Cache,
    target: Target,
    policy: Policy<'_>,
    dry_run: bool,
    cancel: &AtomicBool,
    mut each: impl FnMut(&Candidate, Option<Changed>),
) -> io::Result<Outcome> {
    let (before, unreadable) = usage(cache, cancel)?;
    let mut outcome = Outcome {
        before,
        unreadable,
        ..Outcome::default()
    };
    if before.bytes <= target.over {
        return Ok(outcome);
    }
    let need = before.bytes - target.down_to.min(target.over);
    // Files being downloaded cannot go: the others must free the bytes.
    let downloading: HashSet<CacheKey> = cache.downloading().into_iter().collect();
    let mut oldest = Oldest::new(need);
    for found in cache.walk()? {
        if cancel.load(Relaxed) {
            return Err(cancelled());
        }
        match candidate(found, policy) {
            Some(c) if downloading.contains(&c.key) => outcome.busy += 1,
            Some(c) => oldest.offer(c),
            None => {}
        }
    }
    let mut freed = 0;
    for candidate in oldest.into_sorted() {
        if freed >= need {
            break;
        }
        if cancel.load(Relaxed) {
            return Err(cancelled());
        }
        if dry_run {
            freed += candidate.allocated;
            outcome.removed.add(candidate.allocated);
            each(&candidate, None);
            continue;
        }
        let changed = cache.remove(&candidate.key)?;
        match changed {
            Changed::Done { freed: bytes } => {
                freed += bytes;
                outcome.removed.add(bytes);
            }
            Changed::Busy => outcome.busy += 1,
            Changed::Absent => {}
        }
        each(&candidate, Some(changed));
    }
    Ok(outcome)
}

/// How old the daemon's estimate of the cache's size (a walk, plus what
/// downloads wrote since) may get: files removed or added by hand are
/// noticed within this.
const WALK_EVERY: Duration = Duration::from_secs(3600);

/// Keeps the cache under `CacheSizeLimit` while the daemon runs: a walk at
/// start and every hour, and as soon as the downloads since the last one
/// may have passed the limit; when over it, [`shrink`] to [`Target::limit`],
/// index files last. Ends (between files) when the future is dropped.
pub async fn keep_under(cache: Arc<Cache>, config: Arc<Config>, limit: u64) {
    let cancel = Cancel(Arc::new(AtomicBool::new(false)));
    loop {
        let grown = cache.grown();
        let (c, cfg, stop) = (Arc::clone(&cache), Arc::clone(&config), Arc::clone(&cancel.0));
        let checked =
            match crate::tasks::low_priority("debcache-quota", move || enforce(&c, &cfg, limit, &stop)) {
                Ok(rx) => rx
                    .await
                    .map_err(|_| io::Error::other("the check ended without a word")),
                Err(e) => Err(e),
            };
        let bytes = match checked {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => return,
            Ok(Err(e)) => {
                tracing::warn!("CacheSizeLimit: cannot walk the cache: {e}; trying again in an hour");
                0
            }
            Err(e) => {
                tracing::error!("CacheSizeLimit: the check failed: {e}; trying again in an hour");
                0
            }
        };
        let next_walk = tokio::time::Instant::now() + WALK_EVERY;
        loop {
            tokio::select! {
                () = cache.grew() => {}
                () = tokio::time::sleep_until(next_walk) => break,
            }
            if bytes.saturating_add(cache.grown().saturating_sub(grown)) > limit {
                break;
            }
        }
    }
}

/// Sets its flag when dropped: the blocking work sees it.
struct Cancel(Arc<AtomicBool>);

impl Drop for Cancel {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

/// One look: shrinks when over the limit, logs what it did, and returns
/// what the files take now.
fn enforce(cache: &Cache, config: &Config, limit: u64, cancel: &AtomicBool) -> io::Result<u64> {
    let policy = Policy {
        patterns: &config.requests.file_patterns,
        volatile: Volatile::Last,
    };
    let outcome = shrink(cache, Target::limit(limit), policy, false, cancel, |_, _| {})?;
    if outcome.unreadable > 0 {
        tracing::warn!(
            "CacheSizeLimit: {} directories of the cache could not be read; their files are not counted",
            outcome.unreadable
        );
    }
    let now = outcome.before.bytes.saturating_sub(outcome.removed.bytes);
    tracing::debug!(
        "CacheSizeLimit {limit}: the cache takes {} bytes",
        outcome.before.bytes
    );
    if outcome.removed.count > 0 || outcome.busy > 0 {
        tracing::info!(
            "CacheSizeLimit {limit}: the cache took {} bytes in {} files; removed the {} least recently used ({} bytes), now {now} bytes{}",
            outcome.before.bytes,
            outcome.before.count,
            outcome.removed.count,
            outcome.removed.bytes,
            if outcome.busy > 0 {
                format!("; {} being downloaded were left", outcome.busy)
            } else {
                String::new()
            }
        );
    }
    if now > limit {
        tracing::warn!("CacheSizeLimit {limit}: the cache still takes {now} bytes: nothing more may go");
    }
    Ok(now)
}

fn candidate(found: Found, policy: Policy<'_>) -> Option<Candidate> {
    let Found::Data {
        path,
        allocated,
        accessed,
        modified,
        ..
    } = found
    else {
        return None;
    };
    let key = CacheKey::parse(&path).ok()?;
    let volatile = classify(key.as_str(), policy.patterns) == Some(FileKind::Volatile);
    if volatile && policy.volatile == Volatile::Keep {
        return None;
    }
    Some(Candidate {
        key,
        allocated,
        used: accessed.max(modified),
        volatile,
    })
}

/// The first files in removal order that together free `need` bytes.
struct Oldest {
    need: u64,
    /// Bytes of the files in `heap`.
    sum: u64,
    /// The last in removal order on top.
    heap: BinaryHeap<Candidate>,
}

impl Oldest {
    fn new(need: u64) -> Oldest {
        Oldest {
            need,
            sum: 0,
            heap: BinaryHeap::new(),
        }
    }

    fn offer(&mut self, candidate: Candidate) {
        if self.sum >= self.need && self.heap.peek().is_some_and(|last| candidate >= *last) {
            return;
        }
        self.sum += candidate.allocated;
        self.heap.push(candidate);
        while let Some(last) = self.heap.peek() {
            if self.sum - last.allocated < self.need {
                break;
            }
            self.sum -= last.allocated;
            self.heap.pop();
        }
    }

    fn into_sorted(self) -> Vec<Candidate> {
        self.heap.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn c(name: &str, allocated: u64, age: u64, volatile: bool) -> Candidate {
        Candidate {
            key: CacheKey::parse(&format!("r/{name}")).unwrap(),
            allocated,
            used: UNIX_EPOCH + Duration::from_secs(1_000_000 - age),
            volatile,
        }
    }

    fn names(v: &[Candidate]) -> Vec<&str> {
        v.iter().map(|c| c.key.file_name()).collect()
    }

    #[test]
    fn the_oldest_that_cover_the_need_are_kept_whatever_the_order() {
        let all = [
            c("new.deb", 10, 1, false),
            c("old.deb", 10, 100, false),
            c("older.deb", 5, 200, false),
            c("index", 50, 999, true),
            c("mid.deb", 10, 50, false),
        ];
        for rotation in 0..all.len() {
            let mut oldest = Oldest::new(20);
            for candidate in all.iter().cycle().skip(rotation).take(all.len()) {
                oldest.offer(candidate.clone());
            }
            assert_eq!(
                names(&oldest.into_sorted()),
                ["older.deb", "old.deb", "mid.deb"],
                "rotation {rotation}"
            );
        }
    }

    #[test]
    fn volatile_files_come_only_after_every_other() {
        let mut oldest = Oldest::new(100);
        for candidate in [
            c("index", 50, 999, true),
            c("a.deb", 10, 1, false),
            c("b.deb", 10, 2, false),
        ] {
            oldest.offer(candidate);
        }
        assert_eq!(names(&oldest.into_sorted()), ["b.deb", "a.deb", "index"]);
    }

    #[test]
    fn memory_follows_what_is_to_go() {
        let mut oldest = Oldest::new(30);
        for i in 0..10_000u64 {
            oldest.offer(c(&format!("{i}.deb"), 10, i % 977, false));
        }
        assert!(oldest.heap.len() <= 4, "{}", oldest.heap.len());
        assert!(oldest.sum >= 30);
    }
}
