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
use crate::digest::Fingerprint;

/// Committed indexes remembered between two looks of maintenance; past
/// this many, it is told to read every suite again.
const CHANGED_MAX: usize = 4096;

/// A file as its index lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    pub size: u64,
    pub sum: Fingerprint,
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
    /// Each suite's files, sorted by path hash. A lookup asks every suite
    /// (a few dozen binary searches), so replacing a suite is a swap.
    suites: HashMap<String, Box<[Slot]>>,
    /// Seeds the path hashes, per process: a hostile index cannot aim
    /// collisions at another path.
    seed: RandomState,
}

/// One file of a suite, in 40 bytes: a cache of a million files keeps its
/// table in 40 MB.
#[derive(Clone, Copy, Debug)]
struct Slot {
    path: u64,
    size: u64,
    /// `None`: listed twice with different contents.
    sum: Option<Fingerprint>,
}

impl Slot {
    fn expected(&self) -> Option<Expected> {
        self.sum.map(|sum| Expected { size: self.size, sum })
    }
}

/// A suite's files, gathered before they replace what it listed; made by
/// [`Expectations::listing`], whose path hashes it uses.
#[derive(Debug)]
pub struct Listing {
    seed: RandomState,
    slots: Vec<Slot>,
}

impl Listing {
    pub fn add(&mut self, path: &str, expected: Expected) {
        self.slots.push(Slot {
            path: self.seed.hash_one(path),
            size: expected.size,
            sum: Some(expected.sum),
        });
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Sorted, each path once: disputed where its entries differ.
    fn into_slots(mut self) -> Box<[Slot]> {
        self.slots.sort_unstable_by_key(|s| s.path);
        self.slots.dedup_by(|later, kept| {
            if later.path != kept.path {
                return false;
            }
            if later.expected() != kept.expected() {
                kept.sum = None;
            }
            true
        });
        self.slots.into_boxed_slice()
    }
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
        let mut listed = table.suites.values().filter_map(|slots| {
            let at = slots.binary_search_by_key(&h, |s| s.path).ok()?;
            Some(slots[at].expected())
        });
        let first = listed.next()?;
        // Two suites that disagree: not verified.
        listed.all(|other| other == first).then_some(first).flatten()
    }

    /// An empty list of a suite's files, to fill and hand to
    /// [`Expectations::replace`].
    pub fn listing(&self) -> Listing {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        Listing {
            seed: table.seed.clone(),
            slots: Vec::new(),
        }
    }

    /// Makes `listing` the whole list of `suite`, replacing what it listed
    /// before.
    pub fn replace(&self, suite: &str, listing: Listing) {
        let slots = listing.into_slots();
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if slots.is_empty() {
            table.suites.remove(suite);
        } else {
            table.suites.insert(suite.to_string(), slots);
        }
    }

    /// Entries of every suite (verified or disputed; a path two suites
    /// list counts twice).
    pub fn count(&self) -> usize {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.suites.values().map(|slots| slots.len()).sum()
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
    use crate::digest::Digest;

    fn key(path: &str) -> CacheKey {
        CacheKey::parse(path).unwrap()
    }

    fn sum(size: u64, byte: u8) -> Expected {
        Expected {
            size,
            sum: Digest::Sha256([byte; 32]).fingerprint(),
        }
    }

    fn listing(x: &Expectations, files: &[(&str, Expected)]) -> Listing {
        let mut listing = x.listing();
        for (path, expected) in files {
            listing.add(path, *expected);
        }
        listing
    }

    #[test]
    fn a_suite_replaces_only_its_own_entries() {
        let x = Expectations::default();
        x.replace(
            "r/dists/a",
            listing(&x, &[("r/pool/1.deb", sum(1, 1)), ("r/pool/2.deb", sum(2, 2))]),
        );
        x.replace("r/dists/b", listing(&x, &[("r/pool/3.deb", sum(3, 3))]));
        assert_eq!(x.get(&key("r/pool/1.deb")), Some(sum(1, 1)));
        x.replace("r/dists/a", listing(&x, &[("r/pool/2.deb", sum(2, 2))]));
        assert_eq!(x.get(&key("r/pool/1.deb")), None, "no longer listed");
        assert_eq!(x.get(&key("r/pool/2.deb")), Some(sum(2, 2)));
        assert_eq!(x.get(&key("r/pool/3.deb")), Some(sum(3, 3)), "another suite's");
        assert_eq!(x.count(), 2);
    }

    #[test]
    fn two_suites_that_disagree_leave_the_path_unverified() {
        let x = Expectations::default();
        x.replace("r/dists/a", listing(&x, &[("r/pool/1.deb", sum(1, 1))]));
        x.replace("r/dists/b", listing(&x, &[("r/pool/1.deb", sum(1, 1))]));
        assert_eq!(x.get(&key("r/pool/1.deb")), Some(sum(1, 1)), "agreement is fine");
        x.replace("r/dists/b", listing(&x, &[("r/pool/1.deb", sum(1, 9))]));
        assert_eq!(x.get(&key("r/pool/1.deb")), None);
        x.replace("r/dists/b", x.listing());
        assert_eq!(
            x.get(&key("r/pool/1.deb")),
            Some(sum(1, 1)),
            "b lists nothing now"
        );
    }

    #[test]
    fn a_suite_listing_a_path_twice_differently_leaves_it_unverified() {
        let x = Expectations::default();
        let files = [
            ("r/pool/1.deb", sum(1, 1)),
            ("r/pool/2.deb", sum(2, 2)),
            ("r/pool/1.deb", sum(1, 1)),
            ("r/pool/2.deb", sum(3, 2)),
        ];
        x.replace("r/dists/a", listing(&x, &files));
        assert_eq!(x.get(&key("r/pool/1.deb")), Some(sum(1, 1)), "twice the same");
        assert_eq!(x.get(&key("r/pool/2.deb")), None);
        assert_eq!(x.count(), 2);
    }

    #[test]
    fn an_entry_takes_40_bytes() {
        assert!(std::mem::size_of::<Slot>() <= 40);
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
