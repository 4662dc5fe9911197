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
    checked: Mutex<BTreeMap<String, Instant>>,
}

impl Freshness {
    pub fn new(max_age: Duration) -> Freshness {
        Freshness {
            max_age,
            checked: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn is_fresh(&self, key: &CacheKey) -> bool {
        let checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        checked
            .get(key.as_str())
            .is_some_and(|t| t.elapsed() < self.max_age)
    }

    /// Records a successful revalidation (or download) now.
    pub fn mark(&self, key: &CacheKey) {
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        // Forget what went stale long ago so the table stays small.
        let horizon = self.max_age * 4;
        if checked.len() > 4096 {
            checked.retain(|_, t| t.elapsed() < horizon);
        }
        checked.insert(key.as_str().to_string(), Instant::now());
    }

    /// A new `InRelease`/`Release` arrived for `key`'s suite: everything
    /// below `…/dists/<suite>/` is stale.
    pub fn invalidate_suite(&self, key: &CacheKey) {
        let Some(dir) = suite_dir(key) else {
            return;
        };
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        checked.retain(|k, _| !k.starts_with(dir));
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
        f.mark(&k);
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
            f.mark(k);
        }
        f.invalidate_suite(&key("debrep/dists/bookworm/InRelease"));
        assert!(!f.is_fresh(&packages));
        assert!(f.is_fresh(&other_suite) && f.is_fresh(&other_repo));
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
