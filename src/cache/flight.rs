//! Single flight: at most one download per cache key at a time. The first
//! request for a key becomes the leader and starts the download task (owned
//! by the cache, not by that client); every request, before or during the
//! transfer, gets a `watch` receiver of the flight's [`Progress`] and reads
//! the file on disk as it grows (`follow`). Memory does not depend on the
//! number of clients or the file size.
//!
//! A [`Leader`] that is dropped without finishing publishes
//! [`Failure::Abandoned`] and leaves the registry: nobody waits forever.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::key::CacheKey;
use super::verify::Mismatch;
use super::Meta;
use crate::stats::FailureClass;
use crate::upstream::UpstreamError;

/// What a flight has to show.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Bumped when the download starts over from byte 0 (in a new file):
    /// clients that already sent bytes of the old one must abort.
    pub generation: u32,
    pub state: State,
}

#[derive(Clone, Debug)]
pub enum State {
    /// Asking upstream.
    Connecting,
    /// `[0, committed)` of the body is in `body.file`; `done` once every
    /// byte is (durability follows, off the clients' path).
    Streaming {
        body: Arc<Body>,
        committed: u64,
        done: bool,
    },
    /// A revalidation found the cached copy current: serve it from disk.
    Unchanged,
    Failed(Failure),
    /// Maintenance is changing the key's files (a removal, an import): no
    /// download. Clients wait for the claim to end, then look again.
    Claimed,
}

/// The response a flight is downloading.
#[derive(Debug)]
pub struct Body {
    pub file: Arc<File>,
    /// Validators and origin of this response (no length: see `total`).
    pub meta: Arc<Meta>,
    /// The length upstream announced; `None` for a chunked response.
    pub total: Option<u64>,
    /// A verified download's: the bytes from here on reach clients only
    /// once the digest matched (`done`), never after a failure.
    pub held: Option<u64>,
}

/// Why a flight produced no file.
#[derive(Clone, Debug)]
pub enum Failure {
    /// Upstream answered this status; it is relayed to the clients.
    Status {
        code: u16,
        reason: String,
        location: Option<String>,
    },
    /// No upstream answer: the cause, whose reason is the `503`'s.
    Upstream(Arc<UpstreamError>),
    /// The answers could not be stored.
    Unusable(Unusable),
    /// A redirect led to a captive-portal page (`BadRedirDetectMime`).
    RedirectedToInvalidTarget,
    /// The cache file system is full.
    DiskFull,
    /// The cache could not be written: the cause, for the log.
    Storage(Arc<std::io::Error>),
    /// The cache layout cannot hold the file (a file stands where a
    /// directory of its path must be, or the reverse).
    LayoutConflict,
    /// The download task ended without a word (a bug, or shutdown).
    Abandoned,
    /// The bytes are not what the cached indexes say the file is: nothing
    /// was kept, and clients got less than the whole body.
    Mismatch(Arc<Mismatch>),
}

/// Why upstream's answers could not be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// Cut short on every attempt.
    CutShort,
    /// A resumed transfer came back with another range than asked for.
    WrongRange,
    /// A body whose end cannot be told from a cut one.
    NoLength,
    /// A `Content-Encoding` other than identity.
    Encoded,
    /// An https mirror redirected to plain http.
    Downgraded,
}

impl Unusable {
    /// apt-cacher-ng's reason phrase for the `503` (spec §2.9), ours for
    /// what acng does not check.
    pub fn reason(self) -> &'static str {
        match self {
            Unusable::CutShort => "Connection closed, check DlMaxRetries",
            Unusable::WrongRange => "Server reports unexpected range",
            Unusable::NoLength => "Missing Content-Length",
            Unusable::Encoded => "Unexpected response type",
            Unusable::Downgraded => "Redirected from https to plain http",
        }
    }
}

impl Failure {
    /// How `/metrics` counts it.
    pub fn class(&self) -> FailureClass {
        match self {
            Failure::Status { .. } => FailureClass::Status,
            Failure::Upstream(e) => e.class(),
            Failure::Unusable(Unusable::Downgraded) | Failure::RedirectedToInvalidTarget => {
                FailureClass::Redirect
            }
            Failure::Unusable(_) => FailureClass::Unusable,
            Failure::DiskFull => FailureClass::DiskFull,
            Failure::Storage(_) | Failure::LayoutConflict => FailureClass::Storage,
            Failure::Abandoned => FailureClass::Other,
            Failure::Mismatch(_) => FailureClass::Mismatch,
        }
    }

    /// Upstream-side failures after which a stale cached copy is better than
    /// nothing.
    pub fn is_transient(&self) -> bool {
        match self {
            Failure::Status { code, .. } => *code >= 500,
            Failure::Upstream(_) | Failure::Unusable(_) | Failure::Abandoned | Failure::Mismatch(_) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status { code, reason, .. } => write!(f, "upstream answered {code} {reason}"),
            Failure::Upstream(e) => write!(f, "{e}"),
            Failure::Unusable(why) => f.write_str(why.reason()),
            Failure::RedirectedToInvalidTarget => f.write_str("redirected to an HTML page"),
            Failure::DiskFull => f.write_str("cache disk full"),
            Failure::Storage(_) => f.write_str("cache write error"),
            Failure::LayoutConflict => f.write_str("conflicts with a file or directory in the cache"),
            Failure::Abandoned => f.write_str("download abandoned"),
            Failure::Mismatch(why) => write!(f, "not the file its index lists: {why}"),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Transparent: its text is the upstream error's own.
            Failure::Upstream(e) => e.source(),
            Failure::Storage(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

/// The registry of flights in progress.
#[derive(Debug, Default)]
pub struct Flights {
    map: Mutex<HashMap<CacheKey, watch::Sender<Progress>>>,
}

/// The right (and duty) to run a key's download and publish its progress.
#[derive(Debug)]
pub struct Leader {
    flights: Arc<Flights>,
    key: CacheKey,
    tx: watch::Sender<Progress>,
    finished: bool,
}

impl Flights {
    /// Joins the flight for `key`, or starts one: then the caller gets the
    /// [`Leader`] and must run the download.
    pub fn join(self: &Arc<Self>, key: &CacheKey) -> (Option<Leader>, watch::Receiver<Progress>) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(key) {
            return (None, tx.subscribe());
        }
        let (tx, rx) = watch::channel(Progress {
            generation: 0,
            state: State::Connecting,
        });
        map.insert(key.clone(), tx.clone());
        let leader = Leader {
            flights: Arc::clone(self),
            key: key.clone(),
            tx,
            finished: false,
        };
        (Some(leader), rx)
    }

    /// The flight for `key`, if one is running.
    pub fn watch(&self, key: &CacheKey) -> Option<watch::Receiver<Progress>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .map(watch::Sender::subscribe)
            .filter(|rx| !matches!(rx.borrow().state, State::Claimed))
    }

    /// Claims `key` for maintenance: `None` while a download runs. Until
    /// the claim is dropped no download of the key starts.
    pub fn claim(self: &Arc<Self>, key: &CacheKey) -> Option<Claim> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(key) {
            return None;
        }
        let (tx, _) = watch::channel(Progress {
            generation: 0,
            state: State::Claimed,
        });
        map.insert(key.clone(), tx.clone());
        Some(Claim {
            flights: Arc::clone(self),
            key: key.clone(),
            tx,
        })
    }

    /// The keys being downloaded now (not those claimed).
    pub fn keys(&self) -> Vec<CacheKey> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, tx)| !matches!(tx.borrow().state, State::Claimed))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// No flight left (tests: every leader cleaned up after itself).
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    fn remove(&self, key: &CacheKey, tx: &watch::Sender<Progress>) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(key).is_some_and(|t| t.same_channel(tx)) {
            map.remove(key);
        }
    }
}

/// A key held by maintenance ([`Flights::claim`]); released on drop, which
/// wakes the clients that waited.
#[derive(Debug)]
pub struct Claim {
    flights: Arc<Flights>,
    key: CacheKey,
    tx: watch::Sender<Progress>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.flights.remove(&self.key, &self.tx);
    }
}

impl Leader {
    /// Starts a (new) response body: a new generation when one was already
    /// streaming.
    pub fn start_body(&self, body: Arc<Body>, committed: u64) -> u32 {
        let mut generation = 0;
        self.tx.send_modify(|p| {
            if matches!(p.state, State::Streaming { .. }) {
                p.generation += 1;
            }
            generation = p.generation;
            p.state = State::Streaming {
                body,
                committed,
                done: false,
            };
        });
        generation
    }

    /// `committed` bytes are written.
    pub fn committed(&self, committed: u64) {
        self.tx.send_modify(|p| {
            if let State::Streaming { committed: c, .. } = &mut p.state {
                *c = committed;
            }
        });
    }

    /// Every byte is written: clients may finish. A body whose length was
    /// unknown (chunked) now announces it, for clients joining during the
    /// commit.
    pub fn all_written(&self, len: u64) {
        self.tx.send_modify(|p| {
            if let State::Streaming {
                body,
                committed,
                done,
            } = &mut p.state
            {
                if body.total.is_none() {
                    *body = Arc::new(Body {
                        file: Arc::clone(&body.file),
                        meta: Arc::clone(&body.meta),
                        total: Some(len),
                        held: body.held,
                    });
                }
                *committed = len;
                *done = true;
            }
        });
    }

    /// The last word: leaves the registry after publishing `state` (nothing
    /// to publish after a completed body: it already says `done`).
    pub fn finish(mut self, state: Option<State>) {
        if let Some(state) = state {
            self.tx.send_modify(|p| p.state = state);
        }
        self.finished = true;
        self.flights.remove(&self.key, &self.tx);
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if !self.finished {
            self.tx
                .send_modify(|p| p.state = State::Failed(Failure::Abandoned));
            self.flights.remove(&self.key, &self.tx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey::parse("repo/pool/a.deb").unwrap()
    }

    #[test]
    fn the_second_request_joins_the_first_ones_flight() {
        let flights = Arc::new(Flights::default());
        let (leader, _rx) = flights.join(&key());
        assert!(leader.is_some());
        let (again, _rx2) = flights.join(&key());
        assert!(again.is_none(), "one download per key");
        assert!(flights.watch(&key()).is_some());
        leader.unwrap().finish(Some(State::Unchanged));
        assert!(flights.is_empty());
        let (next, _) = flights.join(&key());
        assert!(next.is_some(), "a finished flight makes room for a new one");
    }

    #[test]
    fn a_dropped_leader_fails_its_followers() {
        let flights = Arc::new(Flights::default());
        let (leader, rx) = flights.join(&key());
        drop(leader);
        assert!(matches!(rx.borrow().state, State::Failed(Failure::Abandoned)));
        assert!(flights.is_empty());
    }

    #[test]
    fn a_restart_bumps_the_generation() {
        let flights = Arc::new(Flights::default());
        let (leader, rx) = flights.join(&key());
        let leader = leader.unwrap();
        let body = || {
            Arc::new(Body {
                file: Arc::new(tempfile::tempfile().unwrap()),
                meta: Arc::new(Meta::new(crate::cache::Head::default())),
                total: Some(10),
                held: None,
            })
        };
        assert_eq!(leader.start_body(body(), 0), 0);
        leader.committed(5);
        assert_eq!(leader.start_body(body(), 0), 1);
        assert_eq!(rx.borrow().generation, 1);
        leader.finish(None);
    }
}
