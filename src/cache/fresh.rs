//! The freshness clock of volatile files (Decisions table): a file
//! revalidated with its mirror within the last `FreshIndexMaxAge` seconds is
//! served without asking again, so clients updating together see one
//! snapshot. When a suite's `InRelease` or `Release` changes, every volatile
//! file of that suite becomes stale at once: a client that got the new
//! Release never gets the old Packages with it. The clock is in memory; after
//! a restart everything is revalidated once.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::key::CacheKey;

#[derive(Debug)]
pub struct Freshness {
    max_age: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When each file was last found current by its mirror.
    checked: BTreeMap<String, Instant>,
    /// When each suite (`…/dists/<suite>/`) last got a new Release: a
    /// file asked for before then cannot be marked current afterwards.
    invalidated: BTreeMap<String, Instant>,
}

/// Entries of either table kept at most; the oldest go first.
const MAX_ENTRIES: usize = 4096;

impl Freshness {
    pub fn new(max_age: Duration) -> Freshness {
        Freshness {
            max_age,
            state: Mutex::default(),
        }
    }

    pub fn is_fresh(&self, key: &CacheKey) -> bool {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .checked
            .get(key.as_str())
            .is_some_and(|t| t.elapsed() < self.max_age)
    }

    /// Records that the mirror found `key` current (or sent it) in answer
    /// to a request made at `asked`. Not when the suite got a new Release
    /// since: a download of the old Packages that ends after the new
    /// InRelease arrived must not make the old copy current again.
    pub fn mark(&self, key: &CacheKey, asked: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let outdated = suite_dir(key).is_none()
            && state
                .invalidated
                .iter()
                .any(|(dir, at)| key.as_str().starts_with(dir.as_str()) && *at > asked);
        if outdated {
            return;
        }
        // Forget what went stale long ago so the table stays small.
        let horizon = self.max_age * 4;
        if state.checked.len() > MAX_ENTRIES {
            state.checked.retain(|_, t| t.elapsed() < horizon);
        }
        state.checked.insert(key.as_str().to_string(), asked);
    }

    /// A new `InRelease`/`Release` arrived for `key`'s suite: everything
    /// below `…/dists/<suite>/` is stale.
    pub fn invalidate_suite(&self, key: &CacheKey) {
        let Some(dir) = suite_dir(key) else {
            return;
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.checked.retain(|k, _| !k.starts_with(dir));
        if state.invalidated.len() >= MAX_ENTRIES {
            if let Some(oldest) = state
                .invalidated
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
            {
                state.invalidated.remove(&oldest);
            }
        }
        state.invalidated.insert(dir.to_string(), Instant::now());
    }
}

/// `repo/dists/bookworm/` for `repo/dists/bookworm/InRelease` (or
/// `Release`); `None` for any other file.
pub fn suite_dir(key: &CacheKey) -> Option<&str> {
    let (dir, name) = key.as_str().rsplit_once('/')?;
    if name != "InRelease" && name != "Release" {
        return None;
    }
    let (_, suite) = dir
        .rsplit_once("/dists/")
        .or_else(|| dir.strip_prefix("dists/").map(|s| ("", s)))?;
    (!suite.is_empty()).then(|| &key.as_str()[..dir.len() + 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> CacheKey {
        CacheKey::parse(s).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_for_max_age_then_stale() {
        let f = Freshness::new(Duration::from_secs(27));
        let k = key("debrep/dists/bookworm/main/binary-amd64/Packages.xz");
        assert!(!f.is_fresh(&k));
        f.mark(&k, Instant::now());
        tokio::time::advance(Duration::from_secs(26)).await;
        assert!(f.is_fresh(&k));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!f.is_fresh(&k));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_release_makes_its_suite_stale_and_only_it() {
        let f = Freshness::new(Duration::from_secs(27));
        let packages = key("debrep/dists/bookworm/main/binary-amd64/Packages.xz");
        let other_suite = key("debrep/dists/bookworm-updates/main/binary-amd64/Packages.xz");
        let other_repo = key("uburep/dists/bookworm/main/binary-amd64/Packages.xz");
        for k in [&packages, &other_suite, &other_repo] {
            f.mark(k, Instant::now());
        }
        f.invalidate_suite(&key("debrep/dists/bookworm/InRelease"));
        assert!(!f.is_fresh(&packages));
        assert!(f.is_fresh(&other_suite) && f.is_fresh(&other_repo));
    }

    #[tokio::test(start_paused = true)]
    async fn a_download_asked_for_before_a_new_release_does_not_make_its_copy_current() {
        let f = Freshness::new(Duration::from_secs(27));
        let packages = key("debrep/dists/bookworm/main/binary-amd64/Packages.xz");
        let in_release = key("debrep/dists/bookworm/InRelease");
        let asked = Instant::now();
        tokio::time::advance(Duration::from_millis(10)).await;
        // The new InRelease arrives while the old Packages is still coming.
        let release_asked = Instant::now();
        f.invalidate_suite(&in_release);
        tokio::time::advance(Duration::from_millis(10)).await;
        f.mark(&packages, asked);
        assert!(!f.is_fresh(&packages), "the old Packages stays stale");
        f.mark(&in_release, release_asked);
        assert!(f.is_fresh(&in_release), "the Release that invalidated is current");
        f.mark(&packages, Instant::now());
        assert!(f.is_fresh(&packages), "asked for after the new Release");
    }

    #[test]
    fn suite_directories() {
        assert_eq!(
            suite_dir(&key("debrep/dists/bookworm/InRelease")),
            Some("debrep/dists/bookworm/")
        );
        assert_eq!(
            suite_dir(&key("h/debian/dists/sid/Release")),
            Some("h/debian/dists/sid/")
        );
        assert_eq!(
            suite_dir(&key("h/dists/x/updates/Release")),
            Some("h/dists/x/updates/")
        );
        assert_eq!(suite_dir(&key("debrep/dists/bookworm/Release.gpg")), None);
        assert_eq!(suite_dir(&key("debrep/pool/Release")), None);
    }
}
