//! What the indexes say the cached files are: a size and a digest per path,
//! against which downloads are verified as they arrive (`download.rs`).
//! Maintenance fills it from the cached indexes, one suite at a time
//! (`maint::sums`); the cache reads it, and says when an index was
//! committed, so the suite's entries can be made again.
//!
//! A path two suites list with different contents is not verified at all:
//! a false mismatch would refuse a good file to every client, the worst
//! this table could do.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use tokio::sync::Notify;

use super::key::CacheKey;
use crate::digest::Digest;

/// Committed indexes remembered between two looks of maintenance; past
/// this many, it is told to read every suite again.
const CHANGED_MAX: usize = 4096;

/// A file as its index lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    pub size: u64,
    pub digest: Digest,
}

/// Indexes committed since maintenance last looked.
#[derive(Debug, PartialEq, Eq)]
pub enum Changes {
    Indexes(Vec<CacheKey>),
    /// Too many to remember: read them all.
    All,
}

#[derive(Debug, Default)]
pub struct Expectations {
    table: Mutex<Table>,
    changed: Mutex<Pending>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct Table {
    /// Keyed by a hash of the cache path, seeded per process: a hostile
    /// index cannot aim collisions at another path.
    entries: HashMap<u64, Entry>,
    suites: HashMap<String, u32>,
    seed: RandomState,
}

#[derive(Debug)]
struct Entry {
    suite: u32,
    /// `None`: listed by two suites with different contents.
    expected: Option<Expected>,
}

#[derive(Debug, Default)]
struct Pending {
    keys: HashSet<CacheKey>,
    overflowed: bool,
}

impl Expectations {
    /// What the indexes say `key` is.
    pub fn get(&self, key: &CacheKey) -> Option<Expected> {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let h = table.seed.hash_one(key.as_str());
        table.entries.get(&h)?.expected
    }

    /// Makes `entries` (cache paths) the whole list of `suite`, replacing
    /// what it listed before.
    pub fn replace(&self, suite: &str, entries: Vec<(String, Expected)>) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let next = u32::try_from(table.suites.len()).unwrap_or(u32::MAX);
        let id = *table.suites.entry(suite.to_string()).or_insert(next);
        table.entries.retain(|_, e| e.suite != id);
        let hashed: Vec<(u64, Expected)> = entries
            .into_iter()
            .map(|(path, expected)| (table.seed.hash_one(path.as_str()), expected))
            .collect();
        for (h, expected) in hashed {
            table
                .entries
                .entry(h)
                .and_modify(|e| {
                    if e.expected != Some(expected) {
                        e.expected = None;
                    }
                })
                .or_insert(Entry {
                    suite: id,
                    expected: Some(expected),
                });
        }
    }

    /// Paths with an entry (verified or disputed).
    pub fn count(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).entries.len()
    }

    /// An index file was committed.
    pub fn committed(&self, key: &CacheKey) {
        let mut pending = self.changed.lock().unwrap_or_else(|p| p.into_inner());
        if pending.keys.len() < CHANGED_MAX {
            pending.keys.insert(key.clone());
        } else {
            pending.overflowed = true;
        }
        drop(pending);
        self.wake.notify_one();
    }

    /// Waits for committed indexes, then hands them over.
    pub async fn changes(&self) -> Changes {
        loop {
            {
                let mut pending = self.changed.lock().unwrap_or_else(|p| p.into_inner());
                if std::mem::take(&mut pending.overflowed) {
                    pending.keys.clear();
                    return Changes::All;
                }
                if !pending.keys.is_empty() {
                    let mut keys: Vec<CacheKey> = pending.keys.drain().collect();
                    keys.sort();
                    return Changes::Indexes(keys);
                }
            }
            self.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str) -> CacheKey {
        CacheKey::parse(path).unwrap()
    }

    fn sum(size: u64, byte: u8) -> Expected {
        Expected {
            size,
            digest: Digest::Sha256([byte; 32]),
        }
    }

    #[test]
    fn a_suite_replaces_only_its_own_entries() {
        let x = Expectations::default();
        x.replace(
            "r/dists/a",
            vec![
                ("r/pool/1.deb".into(), sum(1, 1)),
                ("r/pool/2.deb".into(), sum(2, 2)),
            ],
        );
        x.replace("r/dists/b", vec![("r/pool/3.deb".into(), sum(3, 3))]);
        assert_eq!(x.get(&key("r/pool/1.deb")), Some(sum(1, 1)));
        x.replace("r/dists/a", vec![("r/pool/2.deb".into(), sum(2, 2))]);
        assert_eq!(x.get(&key("r/pool/1.deb")), None, "no longer listed");
        assert_eq!(x.get(&key("r/pool/2.deb")), Some(sum(2, 2)));
        assert_eq!(x.get(&key("r/pool/3.deb")), Some(sum(3, 3)), "another suite's");
        assert_eq!(x.count(), 2);
    }

    #[test]
    fn two_suites_that_disagree_leave_the_path_unverified() {
        let x = Expectations::default();
        x.replace("r/dists/a", vec![("r/pool/1.deb".into(), sum(1, 1))]);
        x.replace("r/dists/b", vec![("r/pool/1.deb".into(), sum(1, 1))]);
        assert_eq!(x.get(&key("r/pool/1.deb")), Some(sum(1, 1)), "agreement is fine");
        x.replace("r/dists/b", vec![("r/pool/1.deb".into(), sum(1, 9))]);
        assert_eq!(x.get(&key("r/pool/1.deb")), None);
    }

    #[tokio::test]
    async fn committed_indexes_are_handed_over_once() {
        let x = Expectations::default();
        x.committed(&key("r/dists/a/InRelease"));
        x.committed(&key("r/dists/a/InRelease"));
        x.committed(&key("r/dists/a/main/binary-amd64/Packages.xz"));
        assert_eq!(
            x.changes().await,
            Changes::Indexes(vec![
                key("r/dists/a/InRelease"),
                key("r/dists/a/main/binary-amd64/Packages.xz")
            ])
        );
        for n in 0..=CHANGED_MAX {
            x.committed(&key(&format!("r/dists/{n}/InRelease")));
        }
        assert_eq!(x.changes().await, Changes::All);
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), x.changes()).await;
        assert!(waiting.is_err(), "nothing new: it waits");
    }
}
