//! Expiration (`doExpire`, spec §10.1), debcache's way:
//!
//! 1. **Gate.** Unless `ignoreTradeOff` or `ExStartTradeOff: 0`: when less
//!    than `ExStartTradeOff` bytes were downloaded since the last run (as
//!    far back as the week's statistics go), the run is suppressed, as
//!    acng's is.
//! 2. **Walk.** Index files (`index::classify`: Release, InRelease,
//!    Packages, Sources, i18n and pdiff `Index`) are listed; every other
//!    file is remembered as 64-bit hashes of its path and of its name, so
//!    memory follows the number of files, not their names. A collision
//!    could only keep a file.
//! 3. **Refresh** (unless `skipIxUp` or `OfflineMode`). Every Release and
//!    InRelease, then every index a current Release lists, is brought up to
//!    date through the cache's own downloads ([`Cache::refresh`]): a client
//!    asking for the same file meanwhile shares the transfer. A Release
//!    upstream says is gone (404, 410) marks its suite gone when
//!    `FollowIndexFileRemoval` is set. With `abortOnErrors` any failure
//!    ends the run here ("Found errors during processing, aborting as
//!    requested."), before anything changes.
//! 4. **References.** Each current Release names its indexes, the other
//!    files of its suite (`Translation-*`, `Contents-*`) and their by-hash
//!    objects; each index not superseded (a Release of its suite that does
//!    not list it) and not of a gone suite names its packages. As acng
//!    does, a package file is referenced by its name in any directory (the
//!    same `.deb` fetched through two mirror names), volatile files only at
//!    their path; `byPath` asks for the path for all. An index that cannot
//!    be read or parsed is an error, and then nothing is deleted in this
//!    run.
//! 5. **Orphans.** A file nothing names is an orphan: kept, with the time
//!    it was first found so, in `_expending_dat` (acng's file and format);
//!    removed once it has been one for `ExThreshold` days in every run
//!    since (at once with `purgeNow`). Never removed: files being
//!    downloaded, the signatures beside a current Release, and outside the
//!    suites whose Release is in the cache (where nothing says what is
//!    current) `WfilePattern` matches and volatile files.
//! 6. **Summary**: files and bytes removed, kept as orphans, referenced;
//!    errors. `_exfail_cnt` gets a line per failed run, and is removed by a
//!    clean one.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::orphans::Orphans;
use super::{Context, Level, Report};
use crate::cache::{Cache, CacheKey, Changed, Failure, Files, Found, Lookup, Reserved, Revalidate};
use crate::config::Config;
use crate::index::{self, IndexKind, Listed};
use crate::request::kind::classify as file_class;
use crate::request::FileKind;

/// Blocks past a file's end beyond this much (its `.head`'s block
/// included) are a stopped download's reservation, given back once the
/// file is this old (acng's rule: about 10 KB, a day).
const PREALLOCATED_SLACK: u64 = 16 * 1024;
const PREALLOCATED_AGE: Duration = Duration::from_secs(86_400);

/// Empty directories go once unchanged this long (acng's 10 days).
const EMPTY_DIR_AGE: Duration = Duration::from_secs(10 * 86_400);

/// The report page's switches for a run (acng's names, spec §8.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `abortOnErrors=aOe`: stop before changing anything when an index
    /// could not be refreshed.
    pub abort_on_errors: bool,
    /// `ignoreTradeOff=iTO`.
    pub ignore_trade_off: bool,
    /// `skipIxUp=si`: use the indexes as they are.
    pub skip_index_update: bool,
    /// `purgeNow=pN`: remove orphans at once.
    pub purge_now: bool,
    /// `beVerbose=bV`: a line per orphan.
    pub verbose: bool,
    /// `byPath=bP`: a package file is referenced only at the path an index
    /// names, not by its name in any directory.
    pub by_path: bool,
    /// `byChecksum=bS`: every referenced file is hashed against its index
    /// entry; mismatches are listed as damaged (`_expending_damaged`).
    /// Implies `byPath`, skips the trade-off gate.
    pub by_checksum: bool,
    /// `truncNow=tN`: damaged files are emptied at once.
    pub truncate_now: bool,
    /// `forceRedownload=fRd`: every index is downloaded again whole.
    pub force_redownload: bool,
    /// `skipHeadChecks=sHC`: referenced files are not judged by their
    /// `.head`.
    pub skip_head_checks: bool,
    /// `incomAsDamaged=iad`: a referenced file still partial is damaged.
    pub incomplete_as_damaged: bool,
}

impl Options {
    pub fn from_query(query: &str) -> Options {
        Options {
            abort_on_errors: query.contains("abortOnErrors=aOe"),
            ignore_trade_off: query.contains("ignoreTradeOff=iTO"),
            skip_index_update: query.contains("skipIxUp=si"),
            purge_now: query.contains("purgeNow=pN"),
            verbose: query.contains("beVerbose=bV"),
            by_path: query.contains("byPath=bP") || query.contains("byChecksum=bS"),
            by_checksum: query.contains("byChecksum=bS"),
            truncate_now: query.contains("truncNow=tN"),
            force_redownload: query.contains("forceRedownload=fRd"),
            skip_head_checks: query.contains("skipHeadChecks=sHC"),
            incomplete_as_damaged: query.contains("incomAsDamaged=iad"),
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ended {
    #[default]
    Done,
    /// Too little was downloaded since the last run (`ExStartTradeOff`).
    Suppressed,
    /// An error, with `abortOnErrors`: nothing was changed.
    Aborted,
    Cancelled,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub ended: Ended,
    pub removed: Files,
    /// Orphans kept (tagged), not yet `ExThreshold` days old.
    pub tagged: Files,
    pub referenced: Files,
    /// Files nothing needs to name to keep (see the module's list).
    pub spared: Files,
    /// With `byChecksum`: referenced files whose content is not what their
    /// index says.
    pub damaged: Files,
    /// Files whose reserved blocks past their end were given back, and
    /// the bytes.
    pub trimmed: Files,
    pub errors: u64,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files ({} bytes) removed, {} ({} bytes) kept as orphans, {} ({} bytes) referenced, {} kept otherwise; {} damaged; {} trimmed ({} bytes); {} error(s)",
            self.removed.count,
            self.removed.bytes,
            self.tagged.count,
            self.tagged.bytes,
            self.referenced.count,
            self.referenced.bytes,
            self.spared.count,
            self.damaged.count,
            self.trimmed.count,
            self.trimmed.bytes,
            self.errors
        )
    }
}

/// Runs an expiration (blocking: on the maintenance task's thread).
pub fn run(ctx: &Context, options: Options, out: &mut dyn Report) -> Outcome {
    let mut run = Run {
        ctx,
        options,
        out,
        outcome: Outcome::default(),
        expected: HashMap::new(),
        damaged: Vec::new(),
    };
    match run.go() {
        Ok(ended) => run.outcome.ended = ended,
        Err(Stop::Cancelled) => run.outcome.ended = Ended::Cancelled,
        Err(Stop::Io(e)) => {
            run.error(&format!("The cache could not be walked: {e}"));
            run.outcome.ended = Ended::Aborted;
        }
    }
    run.account();
    run.outcome
}

enum Stop {
    Cancelled,
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Io(e)
    }
}

/// What is known about a suite (a directory with a Release or InRelease).
#[derive(Debug)]
enum Suite {
    /// Its Release is current: the paths (cache-relative) it lists.
    Current(HashSet<String>),
    /// Upstream says its Release is gone.
    Gone,
}

struct Run<'a> {
    ctx: &'a Context,
    options: Options,
    out: &'a mut dyn Report,
    outcome: Outcome,
    /// With `byChecksum`: what the indexes say of the files on disk, by
    /// [`by_path`].
    expected: HashMap<u64, (u64, index::Digest)>,
    /// With `byChecksum`: the files found damaged.
    damaged: Vec<String>,
}

impl Run<'_> {
    /// An error of the run, counted; cron hears of the run's errors at
    /// its end (`ExSuppressAdminNotification`).
    fn error(&mut self, text: &str) {
        self.outcome.errors += 1;
        self.out.say(Level::Problem, text);
    }

    fn check(&self) -> Result<(), Stop> {
        if self.out.should_stop() {
            Err(Stop::Cancelled)
        } else {
            Ok(())
        }
    }

    fn go(&mut self) -> Result<Ended, Stop> {
        if self.suppressed() {
            return Ok(Ended::Suppressed);
        }
        let (indexes, solid) = self.scan()?;
        let releases: Vec<&CacheKey> = indexes.iter().filter(|k| is_release(k)).collect();
        let mut gone = HashSet::new();
        if self.may_download() {
            self.out.say(
                Level::Info,
                &format!("Refreshing {} Release files…", releases.len()),
            );
            for key in &releases {
                self.check()?;
                if let Err(Failure::Status { code: 404 | 410, .. }) = self.refresh(key) {
                    gone.insert((*key).clone());
                }
            }
        }
        let follow_removal = self.ctx.config.maintenance.expiration.follow_index_removal;
        let mut problems = false;
        let mut suites: HashMap<String, Suite> = HashMap::new();
        let mut referenced: HashSet<u64> = HashSet::new();
        for key in &releases {
            self.check()?;
            let dir = parent(key.as_str()).to_string();
            let listed = if follow_removal && gone.contains(*key) {
                self.out.say(
                    Level::Warning,
                    &format!("{key} is gone upstream: its suite's files are no longer referenced"),
                );
                None
            } else {
                match self.release(key, &solid, &mut referenced) {
                    Ok(listed) => listed,
                    Err(()) => {
                        problems = true;
                        None
                    }
                }
            };
            // One current Release (InRelease or Release) makes its suite
            // current.
            match (suites.remove(&dir), listed) {
                (Some(Suite::Current(mut all)), Some(listed)) => {
                    all.extend(listed);
                    suites.insert(dir, Suite::Current(all));
                }
                (_, Some(listed)) => {
                    suites.insert(dir, Suite::Current(listed));
                }
                (Some(current @ Suite::Current(_)), None) => {
                    suites.insert(dir, current);
                }
                (_, None) => {
                    suites.insert(dir, Suite::Gone);
                }
            }
        }
        let current: Vec<&CacheKey> = indexes
            .iter()
            .filter(|k| !is_release(k) && index_is_current(&suites, k.as_str()))
            .collect();
        if self.may_download() {
            self.out
                .say(Level::Info, &format!("Refreshing {} index files…", current.len()));
            for key in &current {
                self.check()?;
                let _ = self.refresh(key);
            }
        }
        if self.outcome.errors > 0 && self.options.abort_on_errors {
            self.error("Found errors during processing, aborting as requested.");
            return Ok(Ended::Aborted);
        }
        for key in &current {
            self.check()?;
            if self.references(key, &solid, &mut referenced).is_err() {
                problems = true;
            }
        }
        if problems {
            self.out.say(
                Level::Warning,
                "An index could not be read: nothing is removed in this run.",
            );
        }
        self.sweep(&suites, &referenced, problems)?;
        if !problems {
            match self.ctx.cache.prune_empty_dirs(EMPTY_DIR_AGE) {
                Ok(0) => {}
                Ok(n) => self
                    .out
                    .say(Level::Info, &format!("Removed {n} empty directories.")),
                Err(e) => self
                    .out
                    .say(Level::Warning, &format!("Cannot remove empty directories: {e}")),
            }
        }
        Ok(Ended::Done)
    }

    /// The trade-off gate: whether too little came in since the last run.
    fn suppressed(&mut self) -> bool {
        let threshold = self.ctx.config.maintenance.expiration.start_trade_off;
        if self.options.ignore_trade_off || self.options.by_checksum || threshold == 0 {
            return false;
        }
        let last = self
            .ctx
            .cache
            .read_reserved(Reserved::LastExpiration)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.trim().parse::<u64>().ok())
            // A damaged file's time past the clock's range: as if none.
            .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
            .unwrap_or(UNIX_EPOCH);
        let fetched = self.ctx.stats.fetched_since(last);
        if fetched >= threshold {
            return false;
        }
        self.out.say(
            Level::Warning,
            &format!(
                "Expiration suppressed due to costs-vs.-benefit considerations ({} vs. {} downloaded since the last run; ExStartTradeOff, or ignoreTradeOff to override this check now)",
                human(fetched),
                human(threshold)
            ),
        );
        true
    }

    fn may_download(&mut self) -> bool {
        if self.options.skip_index_update {
            return false;
        }
        if self.ctx.config.caching.offline {
            self.out.say(
                Level::Warning,
                "OfflineMode: the index files are used as they are.",
            );
            return false;
        }
        true
    }

    /// Walk 1: the index files, and a hash of every other file's path.
    fn scan(&mut self) -> Result<(Vec<CacheKey>, HashSet<u64>), Stop> {
        let (mut indexes, mut solid) = (Vec::new(), HashSet::new());
        for (n, found) in self.ctx.cache.walk()?.enumerate() {
            if n % 1024 == 0 {
                self.check()?;
            }
            match found {
                Found::Data { path, .. } => match CacheKey::parse(&path) {
                    Ok(key) if index::classify(key.as_str()).is_some() => indexes.push(key),
                    _ => {
                        solid.insert(by_path(&path));
                        solid.insert(by_name(&path));
                    }
                },
                Found::Unreadable { path, problem } => {
                    self.error(&format!("Cannot read the directory {path}: {problem}"));
                }
                Found::HeadAlone { .. } => {}
            }
        }
        indexes.sort();
        self.out.say(
            Level::Info,
            &format!(
                "Found {} index files and {} other files.",
                indexes.len(),
                solid.len() / 2
            ),
        );
        Ok((indexes, solid))
    }

    /// Brings one index up to date; an error is said and counted.
    fn refresh(&mut self, key: &CacheKey) -> Result<(), Failure> {
        // A Release is asked about whatever the freshness clock says: the
        // run must see the mirror as it is now. A changed one makes its
        // suite's indexes stale, so those follow.
        let revalidate = if self.options.force_redownload {
            Revalidate::Refetch
        } else if is_release(key) {
            Revalidate::Always
        } else {
            Revalidate::IfStale
        };
        let Some(job) = self.ctx.job(key, FileKind::Volatile, revalidate, None) else {
            self.error(&format!("{key}: no mirror to refresh it from"));
            return Err(Failure::Abandoned);
        };
        let cache = Arc::clone(&self.ctx.cache);
        let refreshed = self.ctx.runtime.block_on(cache.refresh(job));
        match &refreshed {
            Ok(()) => {}
            Err(Failure::Status { code: 404 | 410, .. }) if is_release(key) => {}
            Err(e) => self.error(&format!("{key}: {e}")),
        }
        refreshed
    }

    /// The paths a Release lists (its by-hash objects among them, marked
    /// referenced), with the Release files and signature beside it; `None`
    /// when it is not in the cache (an error head), `Err` when it cannot be
    /// read.
    fn release(
        &mut self,
        key: &CacheKey,
        solid: &HashSet<u64>,
        referenced: &mut HashSet<u64>,
    ) -> Result<Option<HashSet<String>>, ()> {
        let dir = parent(key.as_str()).to_string();
        let mut listed = HashSet::new();
        let found = self.parse(key, IndexKind::Release, &dir, |path, _| {
            mark(&path, solid, referenced);
            listed.insert(path);
        })?;
        if !found {
            return Ok(None);
        }
        for sig in ["Release.gpg", "InRelease", "Release"] {
            listed.insert(format!("{dir}/{sig}"));
        }
        Ok(Some(listed))
    }

    /// Marks what a (non-Release) index names.
    fn references(
        &mut self,
        key: &CacheKey,
        solid: &HashSet<u64>,
        referenced: &mut HashSet<u64>,
    ) -> Result<(), ()> {
        let Some(classified) = index::classify(key.as_str()) else {
            return Ok(());
        };
        let base = classified.base.to_string();
        let expected = &mut self.expected;
        let by_checksum = self.options.by_checksum;
        let parsed = Self::parse_with(
            self.ctx,
            &mut self.outcome,
            self.out,
            key,
            classified.kind,
            &base,
            |path, r| {
                mark(&path, solid, referenced);
                let h = by_path(&path);
                if by_checksum && solid.contains(&h) {
                    expected.insert(h, (r.size, r.digest));
                }
            },
        );
        parsed.map(|_| ())
    }

    /// Parses the cached index `key`, handing each path it names (relative
    /// to the cache) to `each`. `Ok(false)`: the index is not there (or is
    /// an error head: gone upstream).
    fn parse(
        &mut self,
        key: &CacheKey,
        kind: IndexKind,
        base: &str,
        each: impl FnMut(String, &index::Reference),
    ) -> Result<bool, ()> {
        Self::parse_with(self.ctx, &mut self.outcome, self.out, key, kind, base, each)
    }

    fn parse_with(
        ctx: &Context,
        outcome: &mut Outcome,
        out: &mut dyn Report,
        key: &CacheKey,
        kind: IndexKind,
        base: &str,
        mut each: impl FnMut(String, &index::Reference),
    ) -> Result<bool, ()> {
        let read = super::read_index(&ctx.cache, key, key.as_str(), kind, base, |listed, path| {
            let (Listed::File(r) | Listed::ByHash(r)) = &listed;
            each(path, r);
        });
        read.map_err(|text| {
            outcome.errors += 1;
            out.say(Level::Problem, &text);
        })
    }

    /// Walk 2: every file referenced, spared, tagged or removed.
    fn sweep(
        &mut self,
        suites: &HashMap<String, Suite>,
        referenced: &HashSet<u64>,
        problems: bool,
    ) -> Result<(), Stop> {
        let cache = &self.ctx.cache;
        let config = &self.ctx.config;
        let threshold = Duration::from_secs(u64::from(config.maintenance.expiration.threshold_days) * 86_400);
        let (old, bad) = match cache.read_reserved(Reserved::Orphans)? {
            Some(bytes) => Orphans::parse(&bytes),
            None => (Orphans::default(), 0),
        };
        if bad > 0 {
            self.out.say(
                Level::Warning,
                &format!("{bad} damaged lines of _expending_dat were dropped"),
            );
        }
        let downloading: HashSet<CacheKey> = cache.downloading().into_iter().collect();
        let mut orphans = Orphans::default();
        let keep_extra = config.maintenance.expiration.keep_extra_versions as usize;
        let mut extra_versions = (keep_extra > 0).then(ExtraVersions::default);
        let may_remove = !problems;
        for (n, found) in cache.walk()?.enumerate() {
            if n % 1024 == 0 {
                self.check()?;
            }
            let Found::Data {
                path,
                len,
                mut allocated,
                complete,
                damage,
                modified,
                ..
            } = found
            else {
                continue;
            };
            let Ok(key) = CacheKey::parse(&path) else {
                continue;
            };
            if allocated > len + PREALLOCATED_SLACK
                && !downloading.contains(&key)
                && self
                    .ctx
                    .now
                    .duration_since(modified)
                    .is_ok_and(|age| age >= PREALLOCATED_AGE)
            {
                // A stopped download's reservation (acng's trimming).
                match cache.trim(&key) {
                    Ok(Changed::Done { freed }) if freed > 0 => {
                        allocated -= freed.min(allocated);
                        self.outcome.trimmed.add(freed);
                    }
                    Ok(_) => {}
                    Err(e) => self.error(&format!("Cannot trim {path}: {e}")),
                }
            }
            match verdict(&key, suites, referenced, config, self.options.by_path) {
                Verdict::Referenced => {
                    self.outcome.referenced.add(allocated);
                    if downloading.contains(&key) {
                        continue;
                    }
                    match (self.options.skip_head_checks, damage, complete) {
                        (false, Some(damage), _) => self.damaged(&key, allocated, &damage.to_string()),
                        (false, None, false) if self.options.incomplete_as_damaged => {
                            self.damaged(&key, allocated, "incomplete")
                        }
                        _ if self.options.by_checksum => self.verify(&key, allocated),
                        _ => {}
                    }
                    continue;
                }
                Verdict::Spared => {
                    self.outcome.spared.add(allocated);
                    continue;
                }
                Verdict::Orphan if downloading.contains(&key) => {
                    self.outcome.spared.add(allocated);
                    continue;
                }
                Verdict::Orphan => {}
            }
            let since = old.since(&path).unwrap_or(self.ctx.now);
            let orphan = Orphaned {
                key,
                since,
                allocated,
            };
            let left = match extra_versions.as_mut() {
                Some(versions) => versions.hold(orphan),
                None => Some(orphan),
            };
            if let Some(orphan) = left {
                self.settle(orphan, threshold, may_remove, &mut orphans);
            }
        }
        if let Some(versions) = extra_versions {
            for (orphan, keep) in versions.sorted(keep_extra) {
                if keep {
                    // The newest versions are orphaned anew each run: kept.
                    self.outcome.tagged.add(orphan.allocated);
                    orphans.insert(orphan.key.as_str().to_string(), self.ctx.now);
                } else {
                    self.settle(orphan, threshold, may_remove, &mut orphans);
                }
            }
        }
        let rendered = orphans.render();
        let written = cache.write_reserved(
            Reserved::Orphans,
            (!orphans.is_empty()).then_some(rendered.as_bytes()),
        );
        if let Err(e) = written {
            self.error(&format!("Cannot write _expending_dat: {e}"));
        }
        let list: String = self.damaged.iter().map(|p| format!("{p}\n")).collect();
        let written = cache.write_reserved(Reserved::Damaged, (!list.is_empty()).then_some(list.as_bytes()));
        if let Err(e) = written {
            self.error(&format!("Cannot write _expending_damaged: {e}"));
        }
        if !self.damaged.is_empty() {
            self.out.say(
                Level::Warning,
                &format!(
                    "{} damaged files are listed: justShowDamaged shows them, justRemoveDamaged or justTruncDamaged acts on them.",
                    self.damaged.len()
                ),
            );
        }
        Ok(())
    }

    /// An orphan removed when due, else tagged.
    fn settle(&mut self, orphan: Orphaned, threshold: Duration, may_remove: bool, orphans: &mut Orphans) {
        let Orphaned {
            key,
            since,
            allocated,
        } = orphan;
        let due = self.options.purge_now
            || self
                .ctx
                .now
                .duration_since(since)
                .is_ok_and(|age| age >= threshold);
        if due && may_remove {
            match self.ctx.cache.remove(&key) {
                Ok(Changed::Done { freed }) => {
                    self.outcome.removed.add(freed);
                    if self.options.verbose {
                        self.out.say(Level::Info, &format!("Removed {key}"));
                    }
                    return;
                }
                Ok(Changed::Absent) => return,
                Ok(Changed::Busy) => {}
                Err(e) => self.error(&format!("Cannot remove {key}: {e}")),
            }
        }
        if self.options.verbose {
            self.out.say(Level::Info, &format!("Tagging {key}"));
        }
        self.outcome.tagged.add(allocated);
        orphans.insert(key.as_str().to_string(), since);
    }

    /// `byChecksum`: the file against what its index says.
    fn verify(&mut self, key: &CacheKey, allocated: u64) {
        let Some(&(size, digest)) = self.expected.get(&by_path(key.as_str())) else {
            return;
        };
        let hit = match self.ctx.cache.lookup(key) {
            Ok(Lookup::Complete(hit)) => hit,
            Ok(_) => return,
            Err(e) => {
                self.error(&format!("{key}: cannot read it: {e}"));
                return;
            }
        };
        let problem = if hit.len > size {
            Some(format!("{} bytes, its index says {size}", hit.len))
        } else if hit.len < size {
            self.out.say(
                Level::Info,
                &format!("{key}: incomplete ({} of {size} bytes)", hit.len),
            );
            None
        } else {
            match crate::digest::Hasher::of(digest.algorithm(), hit.file) {
                Ok(Some(got)) if got != digest => {
                    Some(format!("its {:?} is not its index's", digest.algorithm()))
                }
                Ok(_) => None,
                Err(e) => Some(format!("cannot read it: {e}")),
            }
        };
        if let Some(problem) = problem {
            self.damaged(key, allocated, &problem);
        }
    }

    /// Lists a referenced file as damaged, or empties it (`truncNow`).
    fn damaged(&mut self, key: &CacheKey, allocated: u64, problem: &str) {
        self.outcome.damaged.add(allocated);
        self.out
            .say(Level::Warning, &format!("Damaged: {key}: {problem}"));
        if self.options.truncate_now {
            match self.ctx.cache.truncate(key) {
                Ok(Changed::Done { .. }) => self.out.say(Level::Info, &format!("Truncated {key}")),
                Ok(_) => self.damaged.push(key.as_str().to_string()),
                Err(e) => self.error(&format!("Cannot truncate {key}: {e}")),
            }
        } else {
            self.damaged.push(key.as_str().to_string());
        }
    }

    /// `_exfail_cnt` and the time of the last run, then the summary.
    fn account(&mut self) {
        let cache = &self.ctx.cache;
        let now = self.ctx.now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match self.outcome.ended {
            Ended::Suppressed | Ended::Cancelled => return,
            Ended::Done | Ended::Aborted => {}
        }
        let failures = if self.outcome.errors > 0 {
            let mut text = cache
                .read_reserved(Reserved::Failures)
                .ok()
                .flatten()
                .unwrap_or_default();
            // acng's rule: cron is told once the failed runs in a row pass
            // ExSuppressAdminNotification.
            let before = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
            let tolerated = self.ctx.config.maintenance.expiration.suppress_admin_notification;
            if before + 1 > tolerated as usize {
                self.out.say(Level::Error, "Errors found, aborting expiration...");
            }
            text.extend_from_slice(format!("{now}\n").as_bytes());
            cache.write_reserved(Reserved::Failures, Some(&text))
        } else {
            cache.write_reserved(Reserved::Failures, None)
        };
        if let Err(e) = failures {
            self.out
                .say(Level::Warning, &format!("Cannot update _exfail_cnt: {e}"));
        }
        if self.outcome.ended == Ended::Done {
            if let Err(e) =
                cache.write_reserved(Reserved::LastExpiration, Some(format!("{now}\n").as_bytes()))
            {
                self.out
                    .say(Level::Warning, &format!("Cannot record this run's time: {e}"));
            }
            let summary = self.outcome.to_string();
            tracing::info!("expiration: {summary}");
            self.out.say(Level::Good, &format!("Done: {summary}."));
        }
    }
}

/// A file no index names, found by this run's walk.
struct Orphaned {
    key: CacheKey,
    /// Since when (`_expending_dat`), or now.
    since: SystemTime,
    allocated: u64,
}

/// `KeepExtraVersions`: the orphaned `.deb`s held until the walk is over,
/// by directory, package and architecture, so the newest of each can stay.
#[derive(Default)]
struct ExtraVersions {
    groups: HashMap<(String, String, String), Vec<(String, Orphaned)>>,
}

impl ExtraVersions {
    /// Takes `orphan` when it is a `.deb` named `name_version_arch.deb`,
    /// else gives it back.
    fn hold(&mut self, orphan: Orphaned) -> Option<Orphaned> {
        let Some((name, version, arch)) = index::version::deb_name(orphan.key.file_name()) else {
            return Some(orphan);
        };
        let group = (
            parent(orphan.key.as_str()).to_string(),
            name.to_string(),
            arch.to_string(),
        );
        let version = version.to_string();
        self.groups.entry(group).or_default().push((version, orphan));
        None
    }

    /// Every orphan held, with whether it is among its group's `keep`
    /// newest versions.
    fn sorted(self, keep: usize) -> impl Iterator<Item = (Orphaned, bool)> {
        self.groups.into_values().flat_map(move |mut versions| {
            versions.sort_by(|(a, _), (b, _)| index::version::compare(b, a));
            versions
                .into_iter()
                .enumerate()
                .map(move |(n, (_, orphan))| (orphan, n < keep))
        })
    }
}

/// What a file is to this run.
enum Verdict {
    Referenced,
    /// Kept without a reference: see the module's list.
    Spared,
    Orphan,
}

fn verdict(
    key: &CacheKey,
    suites: &HashMap<String, Suite>,
    referenced: &HashSet<u64>,
    config: &Config,
    by_path_only: bool,
) -> Verdict {
    let path = key.as_str();
    let suite = suite_of(suites, path);
    // acng's whitelist protects files where no Release says what is
    // current; inside a known suite the Release decides.
    if suite.is_none() && config.maintenance.expiration.whitelist.is_match(path) {
        return Verdict::Spared;
    }
    if index::classify(path).is_some() {
        return match suite {
            None => Verdict::Spared,
            Some(Suite::Gone) => Verdict::Orphan,
            Some(Suite::Current(listed)) if listed.contains(path) => Verdict::Referenced,
            Some(Suite::Current(_)) => Verdict::Orphan,
        };
    }
    if let Some(Suite::Current(listed)) = suite {
        if listed.contains(path) {
            return Verdict::Referenced;
        }
    }
    let volatile = file_class(path, &config.requests.file_patterns) == Some(FileKind::Volatile);
    let named = if volatile || by_path_only {
        by_path(path)
    } else {
        by_name(path)
    };
    if referenced.contains(&named) {
        return Verdict::Referenced;
    }
    match (volatile, suite) {
        // A volatile file outside any known suite: nothing says what is
        // current there (acng keeps every such file too).
        (true, None) => Verdict::Spared,
        _ => Verdict::Orphan,
    }
}

/// The suite whose directory is the longest prefix of `path`'s.
fn suite_of<'s>(suites: &'s HashMap<String, Suite>, path: &str) -> Option<&'s Suite> {
    let mut dir = parent(path);
    loop {
        if let Some(suite) = suites.get(dir) {
            return Some(suite);
        }
        if dir.is_empty() {
            return None;
        }
        dir = parent(dir);
    }
}

/// An index is read unless its suite's current Release does not list it
/// (superseded) or its suite is gone.
fn index_is_current(suites: &HashMap<String, Suite>, path: &str) -> bool {
    match suite_of(suites, path) {
        None => true,
        Some(Suite::Gone) => false,
        Some(Suite::Current(listed)) => listed.contains(path),
    }
}

fn is_release(key: &CacheKey) -> bool {
    matches!(key.file_name(), "InRelease" | "Release")
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// A path an index names: referenced at that path, and by its name.
fn mark(path: &str, on_disk: &HashSet<u64>, referenced: &mut HashSet<u64>) {
    for h in [by_path(path), by_name(path)] {
        if on_disk.contains(&h) {
            referenced.insert(h);
        }
    }
}

fn by_path(path: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (b'p', path).hash(&mut h);
    h.finish()
}

fn by_name(path: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (b'n', path.rsplit('/').next().unwrap_or(path)).hash(&mut h);
    h.finish()
}

fn human(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    format!("{:.1} MiB", bytes as f64 / MIB)
}

/// An orphan of the list, as `justShow` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orphan {
    pub path: String,
    /// The data's length; `None` when only its `.head` is left.
    pub len: Option<u64>,
    pub since: SystemTime,
}

/// `justShow`: the orphan list's files still in the cache (blocking).
pub fn orphans(cache: &Cache) -> io::Result<Vec<Orphan>> {
    let Some(bytes) = cache.read_reserved(Reserved::Orphans)? else {
        return Ok(Vec::new());
    };
    let (list, _) = Orphans::parse(&bytes);
    let mut shown = Vec::new();
    for path in list.paths() {
        let Ok(key) = CacheKey::parse(path) else {
            continue;
        };
        let len = match cache.lookup(&key)? {
            Lookup::Complete(hit) => Some(hit.len),
            Lookup::Incomplete { len, .. } => Some(len),
            Lookup::Missing | Lookup::Conflict => match cache.head_of(&key)? {
                Some(_) => None,
                None => continue,
            },
        };
        shown.push(Orphan {
            path: path.to_string(),
            len,
            since: list.since(path).unwrap_or(UNIX_EPOCH),
        });
    }
    Ok(shown)
}

/// `justRemove`: removes every file of the orphan list now, but those
/// being downloaded, which stay listed (blocking).
pub fn remove_orphans(cache: &Cache, out: &mut dyn Report) -> io::Result<Files> {
    let Some(bytes) = cache.read_reserved(Reserved::Orphans)? else {
        out.say(Level::Info, "The orphan list is empty.");
        return Ok(Files::default());
    };
    let (list, _) = Orphans::parse(&bytes);
    let mut left = Orphans::default();
    let mut removed = Files::default();
    for path in list.paths() {
        if out.should_stop() {
            left.insert(path.to_string(), list.since(path).unwrap_or(UNIX_EPOCH));
            continue;
        }
        let Ok(key) = CacheKey::parse(path) else {
            continue;
        };
        match cache.remove(&key) {
            Ok(Changed::Done { freed }) => {
                removed.add(freed);
                out.say(Level::Info, &format!("Removed {path}"));
            }
            Ok(Changed::Absent) => {}
            Ok(Changed::Busy) => {
                out.say(Level::Warning, &format!("{path} is being downloaded: kept"));
                left.insert(path.to_string(), list.since(path).unwrap_or(UNIX_EPOCH));
            }
            Err(e) => {
                out.say(Level::Error, &format!("Cannot remove {path}: {e}"));
                left.insert(path.to_string(), list.since(path).unwrap_or(UNIX_EPOCH));
            }
        }
    }
    let rendered = left.render();
    cache.write_reserved(
        Reserved::Orphans,
        (!left.is_empty()).then_some(rendered.as_bytes()),
    )?;
    Ok(removed)
}

/// The damaged-file list's actions (spec §10.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDamaged {
    /// `justShowDamaged`.
    Show,
    /// `justRemoveDamaged`: data and `.head`.
    Remove,
    /// `justTruncDamaged`: the data emptied, the `.head` kept.
    Truncate,
}

/// Said when `_expending_damaged` lists nothing.
pub const NO_DAMAGED: &str = "No damaged files are listed (an expiration with byChecksum lists them).";

/// The paths `_expending_damaged` lists, in its order (the numbers the
/// page's check boxes give are indexes into it).
pub fn damaged_list(cache: &Cache) -> io::Result<Vec<String>> {
    let Some(bytes) = cache.read_reserved(Reserved::Damaged)? else {
        return Ok(Vec::new());
    };
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Acts on `_expending_damaged`: shows it, or removes or empties the files
/// it lists (`only`: those of these indexes) and takes them off the list;
/// files being downloaded stay listed (blocking).
pub fn damaged(
    cache: &Cache,
    action: OnDamaged,
    only: Option<&[usize]>,
    out: &mut dyn Report,
) -> io::Result<Files> {
    let listed = damaged_list(cache)?;
    if listed.is_empty() {
        out.say(Level::Info, NO_DAMAGED);
        return Ok(Files::default());
    }
    let mut done = Files::default();
    let mut left = String::new();
    for (i, path) in listed.iter().enumerate() {
        let path = path.as_str();
        let Ok(key) = CacheKey::parse(path) else {
            continue;
        };
        let chosen = only.is_none_or(|ids| ids.contains(&i));
        if action == OnDamaged::Show || !chosen || out.should_stop() {
            if action == OnDamaged::Show {
                out.say(Level::Info, path);
            }
            left.push_str(path);
            left.push('\n');
            continue;
        }
        let changed = match action {
            OnDamaged::Remove => cache.remove(&key),
            _ => cache.truncate(&key),
        };
        match changed {
            Ok(Changed::Done { freed }) => {
                done.add(freed);
                let verb = if action == OnDamaged::Remove {
                    "Removed"
                } else {
                    "Truncated"
                };
                out.say(Level::Info, &format!("{verb} {path}"));
            }
            Ok(Changed::Absent) => {}
            Ok(Changed::Busy) => {
                out.say(Level::Warning, &format!("{path} is being downloaded: kept"));
                left.push_str(path);
                left.push('\n');
            }
            Err(e) => {
                out.say(Level::Error, &format!("Cannot change {path}: {e}"));
                left.push_str(path);
                left.push('\n');
            }
        }
    }
    if action != OnDamaged::Show {
        cache.write_reserved(Reserved::Damaged, (!left.is_empty()).then_some(left.as_bytes()))?;
    }
    Ok(done)
}
