//! Pattern tracing (acng's `Patrace`, spec §2.4 step 11): while it is on,
//! a file no pattern classifies is served as volatile instead of refused,
//! and its URL is kept here for the report page, so an administrator can
//! see which patterns a new kind of repository needs.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// URLs kept; past this many the rest are only counted.
const KEPT: usize = 1000;

#[derive(Debug, Default)]
pub struct PatternTrace {
    on: AtomicBool,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    urls: BTreeSet<String>,
    /// Further URLs not kept.
    dropped: u64,
}

/// What the trace holds, for the page.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Traced {
    pub on: bool,
    pub urls: Vec<String>,
    pub dropped: u64,
}

impl PatternTrace {
    pub fn new(on: bool) -> PatternTrace {
        PatternTrace {
            on: AtomicBool::new(on),
            seen: Mutex::default(),
        }
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    pub fn set(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    pub fn clear(&self) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Seen::default();
    }

    /// A request no pattern classified.
    pub fn record(&self, url: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.urls.len() < KEPT {
            seen.urls.insert(url.to_string());
        } else if !seen.urls.contains(url) {
            seen.dropped += 1;
        }
    }

    pub fn snapshot(&self) -> Traced {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        Traced {
            on: self.is_on(),
            urls: seen.urls.iter().cloned().collect(),
            dropped: seen.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_kept_once_up_to_a_bound() {
        let trace = PatternTrace::new(true);
        trace.record("http://m/b");
        trace.record("http://m/a");
        trace.record("http://m/a");
        assert_eq!(
            trace.snapshot(),
            Traced {
                on: true,
                urls: vec!["http://m/a".into(), "http://m/b".into()],
                dropped: 0
            }
        );
        for n in 0..KEPT + 5 {
            trace.record(&format!("http://m/{n}"));
        }
        let full = trace.snapshot();
        assert_eq!(full.urls.len(), KEPT);
        assert!(full.dropped > 0);
        trace.set(false);
        trace.clear();
        assert_eq!(trace.snapshot(), Traced::default());
    }
}
