//! What the cache did, for the report page and `/metrics`: counted from
//! one record per finished transfer (the records that also make the
//! transfer log's lines), with atomics, so that counting takes no lock.
//!
//! Counts are kept since start, per hour for the last week (the report's
//! rolling 24-hour windows, as acng's log analysis has them, spec §8.4),
//! and per repository: the configured `Remap-` names, every other
//! repository under `other`, so that clients cannot make the list grow.
//! The hours survive a restart in `CacheDir/_debcache/stats`
//! ([`Stats::save`]); without that file they are rebuilt from the transfer
//! logs ([`Stats::rebuild`]).

mod counters;
mod from_log;
mod state_file;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use counters::Totals;
use counters::{Counters, Hours, HOURS};

/// The name every repository without a `Remap-` line counts under.
pub const OTHER: &str = "other";

/// How a request for a file was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// From a complete copy, without asking a mirror.
    Hit,
    /// From the cache, after the mirror said the copy is current.
    Revalidated,
    /// From a download another request had started.
    Coalesced,
    /// From a download this request started.
    Miss,
    /// Neither from the cache nor stored: passed on from a mirror
    /// (`DontCache*`, directory listings), or a `LocalDirs` file.
    Relayed,
    /// With an error status.
    Error,
}

/// Why a download failed, as `/metrics` labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    Dns,
    Connect,
    Timeout,
    Closed,
    Tls,
    Proxy,
    Redirect,
    /// The mirror answered an error status.
    Status,
    /// The answers could not be stored (cut short, no length, ...).
    Unusable,
    DiskFull,
    Storage,
    /// The bytes were not what the indexes say.
    Mismatch,
    Other,
}

impl FailureClass {
    const ALL: [FailureClass; 13] = [
        FailureClass::Dns,
        FailureClass::Connect,
        FailureClass::Timeout,
        FailureClass::Closed,
        FailureClass::Tls,
        FailureClass::Proxy,
        FailureClass::Redirect,
        FailureClass::Status,
        FailureClass::Unusable,
        FailureClass::DiskFull,
        FailureClass::Storage,
        FailureClass::Mismatch,
        FailureClass::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FailureClass::Dns => "dns",
            FailureClass::Connect => "connect",
            FailureClass::Timeout => "timeout",
            FailureClass::Closed => "closed",
            FailureClass::Tls => "tls",
            FailureClass::Proxy => "proxy",
            FailureClass::Redirect => "redirect",
            FailureClass::Status => "status",
            FailureClass::Unusable => "unusable",
            FailureClass::DiskFull => "disk_full",
            FailureClass::Storage => "storage",
            FailureClass::Mismatch => "mismatch",
            FailureClass::Other => "other",
        }
    }
}

/// A repository's place in the per-repository counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepoId(usize);

/// The counters of one daemon.
#[derive(Debug)]
pub struct Stats {
    started: SystemTime,
    since_start: Counters,
    hours: Hours,
    /// Sorted; [`OTHER`] is not among them but last in `per_repo`.
    repos: Vec<String>,
    per_repo: Vec<Counters>,
    failures: [AtomicU64; FailureClass::ALL.len()],
    /// Responses whose body is being sent.
    active: AtomicU64,
}

/// Everything counted, at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub started: SystemTime,
    pub since_start: Totals,
    /// The last 24 hours, the 24 before, ... (7 windows ending now).
    pub days: Vec<Totals>,
    /// Per repository, [`OTHER`] last, since start.
    pub repos: Vec<(String, Totals)>,
    pub failures: Vec<(FailureClass, u64)>,
    pub active: u64,
}

impl Snapshot {
    /// The last 7 days together.
    pub fn week(&self) -> Totals {
        self.days.iter().fold(Totals::default(), |sum, d| sum.plus(d))
    }
}

impl Stats {
    /// Counters for these repository names (the `Remap-` names).
    pub fn new<'a>(repos: impl IntoIterator<Item = &'a str>) -> Stats {
        let mut repos: Vec<String> = repos
            .into_iter()
            .filter(|r| *r != OTHER)
            .map(str::to_string)
            .collect();
        repos.sort();
        repos.dedup();
        let per_repo = (0..=repos.len()).map(|_| Counters::default()).collect();
        Stats {
            started: SystemTime::now(),
            since_start: Counters::default(),
            hours: Hours::default(),
            repos,
            per_repo,
            failures: Default::default(),
            active: AtomicU64::new(0),
        }
    }

    /// Where `repo`'s counts go.
    pub fn repo(&self, repo: &str) -> RepoId {
        RepoId(
            self.repos
                .binary_search_by(|r| r.as_str().cmp(repo))
                .unwrap_or(self.repos.len()),
        )
    }

    /// A response for a file of `repo` ended, having sent `bytes`.
    pub fn served(&self, repo: RepoId, how: Served, bytes: u64) {
        let hour = self.hours.at(now_hour());
        for c in [&self.since_start, hour, &self.per_repo[repo.0]] {
            c.served(how, bytes);
        }
    }

    /// A download into `repo` ended, having received `bytes`.
    pub fn fetched(&self, repo: RepoId, bytes: u64) {
        let hour = self.hours.at(now_hour());
        for c in [&self.since_start, hour, &self.per_repo[repo.0]] {
            c.fetched(bytes);
        }
    }

    /// Bytes downloads received since `since`, as far as the week's hours
    /// go back (whole hours: the one `since` falls in counts).
    pub fn fetched_since(&self, since: SystemTime) -> u64 {
        let now = now_hour();
        let from = since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 3600);
        let hours = now.saturating_sub(from).min(HOURS as u64 - 1) + 1;
        self.hours.window(now, hours).bytes_fetched
    }

    /// A download failed (counted once, however many clients waited).
    pub fn failed(&self, class: FailureClass) {
        let i = FailureClass::ALL.iter().position(|c| *c == class).unwrap_or(0);
        self.failures[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A response body starts; it ends when the guard drops.
    pub fn sending(self: &std::sync::Arc<Self>) -> Sending {
        self.active.fetch_add(1, Ordering::Relaxed);
        Sending(std::sync::Arc::clone(self))
    }

    pub fn snapshot(&self) -> Snapshot {
        let now = now_hour();
        Snapshot {
            started: self.started,
            since_start: self.since_start.totals(),
            days: (0..7).map(|d| self.hours.window(now - d * 24, 24)).collect(),
            repos: self
                .repos
                .iter()
                .map(String::as_str)
                .chain([OTHER])
                .zip(&self.per_repo)
                .map(|(name, c)| (name.to_string(), c.totals()))
                .collect(),
            failures: FailureClass::ALL
                .iter()
                .zip(&self.failures)
                .map(|(class, n)| (*class, n.load(Ordering::Relaxed)))
                .collect(),
            active: self.active.load(Ordering::Relaxed),
        }
    }

    /// Forgets everything counted (the report page's reset).
    pub fn reset(&self) {
        self.since_start.clear();
        self.hours.clear();
        for c in &self.per_repo {
            c.clear();
        }
        for f in &self.failures {
            f.store(0, Ordering::Relaxed);
        }
    }

    /// Writes the last week's hours to `path`, atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let now = now_hour();
        let hours: Vec<(u64, Totals)> = (now + 1 - HOURS as u64..=now)
            .filter_map(|h| self.hours.get(h).map(|t| (h, t)))
            .filter(|(_, t)| !t.is_empty())
            .collect();
        state_file::write(path, &hours)
    }

    /// Adds the hours saved in `path`; `false` when there is no such file.
    pub fn load(&self, path: &Path) -> std::io::Result<bool> {
        let Some(hours) = state_file::read(path)? else {
            return Ok(false);
        };
        self.add_hours(hours);
        Ok(true)
    }

    /// Adds what the transfer logs in `log_dir` say about the last week:
    /// `name` (`apt-cacher.log`) and its rotated copies, compressed ones too.
    pub fn rebuild(&self, log_dir: &Path, name: &str) -> std::io::Result<usize> {
        let since = now_hour() + 1 - HOURS as u64;
        let (hours, lines) = from_log::hours(log_dir, name, since, &|| true)?;
        self.add_hours(hours);
        Ok(lines)
    }

    fn add_hours(&self, hours: impl IntoIterator<Item = (u64, Totals)>) {
        let now = now_hour();
        for (hour, totals) in hours {
            if hour <= now && now - hour < HOURS as u64 {
                self.hours.at(hour).add(&totals);
            }
        }
    }
}

/// One of the log analysis' rolling 24-hour windows (spec §8.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogWindow {
    /// Unix seconds: the first hour's start, and the window's end (now for
    /// the latest window).
    pub start: u64,
    pub end: u64,
    pub totals: Totals,
}

/// acng's log analysis: what the transfer logs in `log_dir` (`name` and its
/// rotated and compressed copies) say of each of the 7 rolling 24-hour windows
/// ending now, the latest first, by acng's reckoning (`from_log`). The
/// windows are whole hours, the latest ending with the hour in progress.
/// Reading stops early when `keep_going` says no.
pub fn log_windows(
    log_dir: &Path,
    name: &str,
    keep_going: &dyn Fn() -> bool,
) -> std::io::Result<Vec<LogWindow>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let since = (now / 3600 + 1).saturating_sub(HOURS as u64);
    let (hours, _) = from_log::hours(log_dir, name, since, keep_going)?;
    Ok(windows(&hours, now))
}

/// The hours summed into 7 windows of 24 ending with the hour of `now`.
fn windows(hours: &[(u64, Totals)], now: u64) -> Vec<LogWindow> {
    let this_hour = now / 3600;
    (0..7u64)
        .map(|day| {
            let last = this_hour.saturating_sub(day * 24);
            let first = (last + 1).saturating_sub(24);
            let totals = hours
                .iter()
                .filter(|(h, _)| (first..=last).contains(h))
                .fold(Totals::default(), |sum, (_, t)| sum.plus(t));
            let end = if day == 0 { now } else { (last + 1) * 3600 };
            LogWindow {
                start: first * 3600,
                end,
                totals,
            }
        })
        .collect()
}

/// A response body being sent: counted in [`Snapshot::active`].
#[derive(Debug)]
pub struct Sending(std::sync::Arc<Stats>);

impl Drop for Sending {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The state file under a cache directory.
pub fn state_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join("_debcache/stats")
}

/// How often the state file is written while running.
pub const SAVE_EVERY: Duration = Duration::from_secs(60);

fn now_hour() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_count_since_start_per_hour_and_per_repository() {
        let stats = Stats::new(["debian", "ubuntu"]);
        let debian = stats.repo("debian");
        let other = stats.repo("deb.example.org");
        stats.served(debian, Served::Hit, 100);
        stats.served(debian, Served::Miss, 1000);
        stats.fetched(debian, 990);
        stats.served(other, Served::Coalesced, 1000);
        stats.served(other, Served::Error, 10);
        stats.failed(FailureClass::Tls);
        let s = stats.snapshot();
        let t = &s.since_start;
        assert_eq!(
            (t.requests, t.hits, t.misses, t.coalesced, t.errors),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(
            (t.bytes_served, t.bytes_fetched, t.bytes_from_cache),
            (2110, 990, 1100)
        );
        assert_eq!(s.days[0].requests, 4, "this hour is in the last 24 hours");
        assert!(s.days[1..].iter().all(Totals::is_empty));
        let names: Vec<&str> = s.repos.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["debian", "ubuntu", OTHER]);
        assert_eq!(s.repos[0].1.requests, 2);
        assert_eq!(s.repos[2].1.requests, 2);
        assert_eq!(
            s.failures
                .iter()
                .find(|(c, _)| *c == FailureClass::Tls)
                .unwrap()
                .1,
            1
        );
        stats.reset();
        assert!(stats.snapshot().since_start.is_empty());
    }

    #[test]
    fn active_responses_are_counted_while_they_last() {
        let stats = std::sync::Arc::new(Stats::new([]));
        let a = stats.sending();
        let b = stats.sending();
        assert_eq!(stats.snapshot().active, 2);
        drop((a, b));
        assert_eq!(stats.snapshot().active, 0);
    }

    #[test]
    fn log_hours_sum_into_seven_rolling_days_ending_now() {
        let now = 1_000 * 3600 + 1_234;
        let one = |requests| Totals {
            requests,
            ..Totals::default()
        };
        let hours = [
            (1_000, one(1)),
            (977, one(2)),
            (976, one(4)),
            (1_000 - 7 * 24 + 1, one(8)),
            (1_000 - 7 * 24, one(16)),
            (1_001, one(32)),
        ];
        let w = windows(&hours, now);
        assert_eq!(w.len(), 7);
        assert_eq!((w[0].totals.requests, w[1].totals.requests), (3, 4));
        assert_eq!(w[6].totals.requests, 8, "older hours and later ones are left out");
        assert!(w[2..6].iter().all(|w| w.totals.is_empty()));
        assert_eq!((w[0].start, w[0].end), (977 * 3600, now));
        assert_eq!((w[1].start, w[1].end), (953 * 3600, 977 * 3600));
    }

    #[test]
    fn the_hours_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        let first = Stats::new([]);
        assert!(!first.load(&path).unwrap(), "no file yet");
        first.served(first.repo("x"), Served::Hit, 5);
        first.fetched(first.repo("x"), 7);
        first.save(&path).unwrap();
        let second = Stats::new([]);
        assert!(second.load(&path).unwrap());
        let s = second.snapshot();
        assert_eq!((s.days[0].hits, s.days[0].bytes_fetched), (1, 7));
        assert!(s.since_start.is_empty(), "since start means this process");
    }
}
