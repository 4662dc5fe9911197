//! The counters themselves: a set of atomics, and a ring of them per hour.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Served;

/// Hours kept: a week, and the hour in progress.
pub const HOURS: usize = 7 * 24 + 1;

/// Counts at one moment (or summed over hours).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Requests for files answered, errors included.
    pub requests: u64,
    pub hits: u64,
    pub revalidated: u64,
    pub coalesced: u64,
    pub misses: u64,
    pub relayed: u64,
    pub errors: u64,
    /// Sent to clients, heads included (the transfer log's `O` and `E`).
    pub bytes_served: u64,
    /// Of those, the bytes of answers no download of their own made:
    /// hits, revalidated copies and coalesced followers.
    pub bytes_from_cache: u64,
    /// Received from mirrors (the transfer log's `I`).
    pub bytes_fetched: u64,
}

/// The fields in the order of [`Totals::values`]: the state file's columns.
pub const FIELDS: [&str; 10] = [
    "requests",
    "hits",
    "revalidated",
    "coalesced",
    "misses",
    "relayed",
    "errors",
    "bytes_served",
    "bytes_from_cache",
    "bytes_fetched",
];

impl Totals {
    pub fn values(&self) -> [u64; 10] {
        [
            self.requests,
            self.hits,
            self.revalidated,
            self.coalesced,
            self.misses,
            self.relayed,
            self.errors,
            self.bytes_served,
            self.bytes_from_cache,
            self.bytes_fetched,
        ]
    }

    pub fn from_values(v: [u64; 10]) -> Totals {
        Totals {
            requests: v[0],
            hits: v[1],
            revalidated: v[2],
            coalesced: v[3],
            misses: v[4],
            relayed: v[5],
            errors: v[6],
            bytes_served: v[7],
            bytes_from_cache: v[8],
            bytes_fetched: v[9],
        }
    }

    pub fn plus(&self, other: &Totals) -> Totals {
        let (a, b) = (self.values(), other.values());
        Totals::from_values(std::array::from_fn(|i| a[i].saturating_add(b[i])))
    }

    pub fn is_empty(&self) -> bool {
        self.values().iter().all(|v| *v == 0)
    }

    /// Requests answered without a download of their own, of those that
    /// were for a cacheable file; `None` before the first.
    pub fn hit_ratio(&self) -> Option<f64> {
        let cached = self.hits + self.revalidated + self.coalesced;
        ratio(cached, cached + self.misses)
    }

    /// Bytes served that no mirror sent for them.
    pub fn byte_hit_ratio(&self) -> Option<f64> {
        ratio(self.bytes_from_cache, self.bytes_served)
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part.min(whole) as f64 / whole as f64)
}

/// The places of [`Totals`]' fields in [`Totals::values`] and [`Counters`].
#[derive(Clone, Copy)]
enum Field {
    Requests,
    Hits,
    Revalidated,
    Coalesced,
    Misses,
    Relayed,
    Errors,
    BytesServed,
    BytesFromCache,
    BytesFetched,
}

/// [`Totals`] as atomics.
#[derive(Debug, Default)]
pub struct Counters([AtomicU64; 10]);

impl Counters {
    pub fn served(&self, how: Served, bytes: u64) {
        let kind = match how {
            Served::Hit => Field::Hits,
            Served::Revalidated => Field::Revalidated,
            Served::Coalesced => Field::Coalesced,
            Served::Miss => Field::Misses,
            Served::Relayed => Field::Relayed,
            Served::Error => Field::Errors,
        };
        self.bump(Field::Requests, 1);
        self.bump(kind, 1);
        self.bump(Field::BytesServed, bytes);
        if matches!(how, Served::Hit | Served::Revalidated | Served::Coalesced) {
            self.bump(Field::BytesFromCache, bytes);
        }
    }

    pub fn fetched(&self, bytes: u64) {
        self.bump(Field::BytesFetched, bytes);
    }

    fn bump(&self, field: Field, n: u64) {
        self.0[field as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn add(&self, totals: &Totals) {
        for (c, v) in self.0.iter().zip(totals.values()) {
            c.fetch_add(v, Ordering::Relaxed);
        }
    }

    pub fn totals(&self) -> Totals {
        Totals::from_values(std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed)))
    }

    pub fn clear(&self) {
        for c in &self.0 {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// A ring of [`Counters`], one per hour since the Unix epoch, the last
/// [`HOURS`] of them kept.
#[derive(Debug)]
pub struct Hours {
    slots: Box<[Slot]>,
}

#[derive(Debug, Default)]
struct Slot {
    /// The hour these counts are for, plus one; 0: never used.
    stamp: AtomicU64,
    counts: Counters,
}

impl Default for Hours {
    fn default() -> Hours {
        Hours {
            slots: (0..HOURS).map(|_| Slot::default()).collect(),
        }
    }
}

impl Hours {
    /// The counters of `hour`, taking over the slot of the hour a week
    /// before. Without a lock: a count made by another thread between the
    /// takeover and the clearing is lost, once an hour at most.
    pub fn at(&self, hour: u64) -> &Counters {
        let slot = &self.slots[(hour % HOURS as u64) as usize];
        let stamp = slot.stamp.load(Ordering::Acquire);
        if stamp != hour + 1
            && slot
                .stamp
                .compare_exchange(stamp, hour + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            slot.counts.clear();
        }
        &slot.counts
    }

    /// The counts of `hour`, when the ring still holds it.
    pub fn get(&self, hour: u64) -> Option<Totals> {
        let slot = &self.slots[(hour % HOURS as u64) as usize];
        (slot.stamp.load(Ordering::Acquire) == hour + 1).then(|| slot.counts.totals())
    }

    /// The `len` hours ending with `last`, summed.
    pub fn window(&self, last: u64, len: u64) -> Totals {
        (last.saturating_sub(len - 1)..=last)
            .filter_map(|h| self.get(h))
            .fold(Totals::default(), |sum, t| sum.plus(&t))
    }

    pub fn clear(&self) {
        for slot in self.slots.iter() {
            slot.stamp.store(0, Ordering::Release);
            slot.counts.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_a_week_later_takes_over_the_slot() {
        let hours = Hours::default();
        hours.at(1000).served(Served::Hit, 10);
        hours.at(1001).served(Served::Miss, 20);
        assert_eq!(hours.window(1001, 24).requests, 2);
        assert_eq!(hours.window(1000, 1).hits, 1);
        let later = 1000 + HOURS as u64;
        hours.at(later).served(Served::Miss, 1);
        assert_eq!(hours.get(1000), None, "taken over");
        assert_eq!(hours.get(later).unwrap().requests, 1);
        assert_eq!(
            hours.window(later, 24).requests,
            1,
            "1001 is more than a day before"
        );
    }

    #[test]
    fn ratios_need_something_to_divide() {
        assert_eq!(Totals::default().hit_ratio(), None);
        let t = Totals {
            hits: 3,
            misses: 1,
            bytes_served: 100,
            bytes_from_cache: 25,
            ..Totals::default()
        };
        assert_eq!(t.hit_ratio(), Some(0.75));
        assert_eq!(t.byte_hit_ratio(), Some(0.25));
    }
}
