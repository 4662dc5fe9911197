//! The download task of a flight (ARCHITECTURE.md, "The download path"):
//! re-check the disk, ask upstream (a conditional request for a cached
//! volatile file, a ranged one for a partial solid file), stream the body to
//! disk publishing progress, resume on the same backend when the connection
//! breaks, commit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::entry::EntryWriter;
use super::expect::Expected;
use super::flight::{Body, Failure, Leader, State, Unusable};
use super::key::CacheKey;
use super::meta::Head;
use super::verify::{Mismatch, Verifier};
use super::{Cache, Meta};
use crate::config::RemapFlags;
use crate::error::Chain;
use crate::log::ConnLog;
use crate::request::FileKind;
use crate::upstream::{Ask, Attempt, Fetched, UpstreamError};
use crate::url::{HttpUrl, Scheme};

/// The first back-off after a broken transfer, and the longest.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(16);

/// Progress is published after this many new bytes...
const PUBLISH_BYTES: u64 = 64 * 1024;
/// ...or this long after the last publication, whichever comes first.
const PUBLISH_EVERY: Duration = Duration::from_millis(10);

/// The end of a verified download that clients get only once its digest
/// matched: less than the whole file is all a wrong one can give them.
const HELD_BACK: u64 = 64 * 1024;

/// Received bytes are written once this many have arrived (or when progress
/// is due): one trip to the blocking pool per write, not per frame.
const WRITE_BYTES: u64 = 128 * 1024;

/// Bytes received and not written yet, in order.
#[derive(Default)]
struct Unwritten {
    pieces: Vec<bytes::Bytes>,
    len: u64,
}

/// What to download and for whom.
#[derive(Debug)]
pub struct Job {
    pub key: CacheKey,
    pub kind: FileKind,
    pub backends: Vec<HttpUrl>,
    pub flags: Arc<crate::config::RemapFlags>,
    /// The `Remap-` repository of the file (`None`: a host's own
    /// directory): its hooks run around the download.
    pub remap: Option<String>,
    /// What to do with a complete copy found on disk.
    pub revalidate: Revalidate,
    /// `X-Forwarded-For` for `ExposeOrigin`.
    pub forwarded_for: Option<String>,
    /// The client that started the flight, whose transfer log gets the
    /// bytes received (`I` records).
    pub origin: Option<Origin>,
}

impl Job {
    /// Every backend is https: an index for this job must have come over
    /// TLS (a copy fetched over plain http is fetched again, whole: a 304
    /// would let a tampered copy pass). The signed index then
    /// authenticates the packages, so they are served whatever brought
    /// them.
    pub fn needs_tls(&self) -> bool {
        self.kind == FileKind::Volatile && needs_tls(&self.backends)
    }
}

/// Every backend of the list is https.
pub fn needs_tls(backends: &[HttpUrl]) -> bool {
    !backends.is_empty() && backends.iter().all(|b| b.scheme == Scheme::Https)
}

/// Whether a complete cached copy is asked about upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revalidate {
    /// It is served as it is (a download for a miss found it done).
    Never,
    /// Unless revalidated within `FreshIndexMaxAge` (a stale index).
    IfStale,
    /// Whatever the clock says (a client's `no-cache`).
    Always,
    /// Downloaded again whole, whatever the copy's validators say
    /// (expiration's `forceRedownload`).
    Refetch,
}

/// The requester of a download, whose transfer log records (and whose
/// statistics count) the bytes received.
#[derive(Debug, Clone)]
pub struct Origin {
    pub log: Arc<ConnLog>,
}

/// How the download ended, when it did not fail.
enum Done {
    /// The cached copy is current (or appeared meanwhile).
    Unchanged,
    /// A new copy is committed.
    Written,
}

/// What to ask upstream for.
#[derive(Clone, Debug)]
enum Plan {
    Whole,
    /// Revalidate a complete copy.
    Conditional {
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// Continue a partial file at `offset`, guarded by the task's
    /// validator, expecting its total.
    Resume {
        offset: u64,
    },
}

/// Runs the download of `job` as `leader` of its flight.
pub async fn run(cache: Arc<Cache>, job: Job, leader: Leader) {
    let mut task = Task {
        cache: &cache,
        job: &job,
        leader: &leader,
        writer: None,
        verifier: None,
        source: None,
        validator: None,
        total: None,
        requests: 0,
        revalidating: false,
        fetched: 0,
        started: tokio::time::Instant::now(),
    };
    let outcome = task.download().await;
    // What a failed or revalidating download received (a complete one
    // recorded its bytes before its clients could finish).
    task.record_fetched();
    let (requests, revalidating, started) = (task.requests, task.revalidating, task.started);
    drop(task);
    match outcome {
        Ok(Done::Written) => leader.finish(None),
        Ok(Done::Unchanged) => leader.finish(Some(State::Unchanged)),
        Err(failure) => {
            if revalidating && failure.is_transient() {
                // The cached copy is served instead (`service::file`), and
                // without asking again for FreshIndexMaxAge, as after a
                // check: every client of a failing mirror would otherwise
                // wait for it in turn.
                cache.fresh.mark(&job.key, started);
            }
            cache.stats.failed(failure.class());
            match &failure {
                Failure::DiskFull => cache.warn_disk_full(),
                Failure::Storage(_) => tracing::error!("{}: {}", job.key, Chain(&failure)),
                Failure::Status { .. } | Failure::LayoutConflict => tracing::debug!("{}: {failure}", job.key),
                _ => tracing::warn!(
                    "{}: {}; gave up after {requests} requests upstream",
                    job.key,
                    Chain(&failure)
                ),
            }
            leader.finish(Some(State::Failed(failure)));
        }
    }
}

struct Task<'a> {
    cache: &'a Arc<Cache>,
    job: &'a Job,
    leader: &'a Leader,
    writer: Option<EntryWriter>,
    /// Hashes the writer's file when its index gives a digest.
    verifier: Option<Verifier>,
    /// The URL that is sending the bytes: resumes go there and nowhere else.
    source: Option<HttpUrl>,
    /// The strong validator of the response being stored.
    validator: Option<String>,
    total: Option<u64>,
    /// Requests sent upstream, for the log.
    requests: u32,
    /// The download asks whether a complete copy is current.
    revalidating: bool,
    /// Bytes received and not recorded yet.
    fetched: u64,
    /// When the download began: the freshness clock of what it finds.
    started: tokio::time::Instant,
}

/// Why a backend gave no file.
enum Spent {
    /// This backend is done with; the next may do better. The failure is
    /// what to report when none is left.
    Backend(Failure),
    /// No other backend would do better (a 404, a full disk).
    Download(Failure),
}

/// The wait before the `n`-th retry (from 1) on a backend after a broken
/// transfer: 1 s, doubling, at most [`BACKOFF_MAX`].
pub fn backoff(n: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(1 << n.saturating_sub(1).min(16))
        .min(BACKOFF_MAX)
}

/// The longest a client waits without a byte, or the end of its response,
/// on a download that fails, with `backends` backends: every attempt of
/// every backend waits up to `NetworkTimeout` for its headers and again for
/// a first body byte, and the retries on one backend wait their back-offs.
/// The README states this bound; a failure reaches the clients at once.
pub fn longest_wait(network_timeout: Duration, dl_max_retries: u32, backends: usize) -> Duration {
    let attempts = dl_max_retries.saturating_add(1);
    let mut per_backend = network_timeout.saturating_mul(2).saturating_mul(attempts);
    for n in 1..=dl_max_retries {
        let wait = backoff(n);
        if wait == BACKOFF_MAX {
            // Capped from here on: the rest in one step.
            per_backend = per_backend.saturating_add(wait.saturating_mul(dl_max_retries - n + 1));
            break;
        }
        per_backend = per_backend.saturating_add(wait);
    }
    per_backend.saturating_mul(u32::try_from(backends.max(1)).unwrap_or(u32::MAX))
}

/// Why a body stopped early.
enum BodyError {
    /// The connection broke or stalled: worth resuming.
    Upstream(String),
    Disk(std::io::Error),
}

impl Task<'_> {
    /// Tries the backends in failover order, each with its own budget of
    /// attempts; fails when every backend has spent its budget.
    async fn download(&mut self) -> Result<Done, Failure> {
        let Some(first) = self.plan()? else {
            return Ok(Done::Unchanged);
        };
        self.revalidating = matches!(first, Plan::Conditional { .. });
        // Before the first request upstream, held to the download's end.
        let _link = self.cache.upstream.link(self.job.remap.as_deref()).await;
        let order = self.cache.upstream.order(&self.job.backends);
        let keyfile = is_keyfile(&self.job.key, &self.job.flags);
        let mut last = Failure::Upstream(Arc::new(UpstreamError::AllBackendsFailed));
        for (n, backend) in order.iter().enumerate() {
            // Bytes another backend sent are never continued here.
            let plan = match self.source.take() {
                Some(_) => Plan::Whole,
                None => first.clone(),
            };
            match self
                .on_backend(backend, plan, keyfile && n + 1 < order.len())
                .await
            {
                Ok(done) => return Ok(done),
                Err(Spent::Backend(failure)) => last = failure,
                Err(Spent::Download(failure)) => return Err(failure),
            }
        }
        Err(last)
    }

    /// At most `DlMaxRetries + 1` attempts on `backend`: a body that breaks
    /// is resumed (or started over) after a back-off. Nothing refills the
    /// budget, so a mirror that keeps cutting a file short is asked a bounded
    /// number of times however many bytes each answer brings.
    async fn on_backend(&mut self, backend: &HttpUrl, mut plan: Plan, keyfile: bool) -> Result<Done, Spent> {
        let budget = self.cache.settings.dl_max_retries.saturating_add(1);
        let mut losses = 0;
        let mut why = Unusable::CutShort;
        for attempt in 1..=budget {
            let fetched = match self.ask(backend, &plan, keyfile).await {
                Attempt::Answer(fetched) => fetched,
                Attempt::BackendFailed(Ok(answer)) => return Err(Spent::Backend(relayed(&answer.response))),
                Attempt::BackendFailed(Err(e)) => return Err(Spent::Backend(Failure::Upstream(Arc::new(e)))),
                Attempt::Failed(e) => return Err(Spent::Download(Failure::Upstream(Arc::new(e)))),
            };
            match self.accept(fetched, &plan).await.map_err(Spent::Download)? {
                Accepted::NotModified => return Ok(Done::Unchanged),
                Accepted::Restart => {
                    why = Unusable::WrongRange;
                    plan = Plan::Whole;
                }
                Accepted::Mismatch(m) => return Err(Spent::Backend(self.reject(backend, m).await)),
                Accepted::Body(body) => match self.stream(body).await {
                    Ok(()) => return self.commit(backend).await,
                    Err(BodyError::Disk(e)) => return Err(Spent::Download(disk_failure(e))),
                    Err(BodyError::Upstream(broke)) => {
                        why = Unusable::CutShort;
                        losses += 1;
                        if attempt < budget {
                            let wait = backoff(losses);
                            tracing::debug!(
                                "{}: {broke} at byte {}; again in {}s",
                                self.job.key,
                                self.written(),
                                wait.as_secs_f32()
                            );
                            tokio::time::sleep(wait).await;
                        } else {
                            tracing::debug!("{}: {broke} at byte {}", self.job.key, self.written());
                        }
                        plan = self.resume_plan();
                    }
                },
            }
        }
        if losses > 0 {
            self.cache.upstream.avoid(
                backend,
                &format_args!("{losses} broken transfers of {}", self.job.key),
            );
        }
        Err(Spent::Backend(Failure::Unusable(why)))
    }

    fn written(&self) -> u64 {
        self.writer.as_ref().map_or(0, EntryWriter::len)
    }

    /// Decides from the disk what to ask for; `None` when the cached copy
    /// needs nothing (a previous flight just finished it).
    fn plan(&mut self) -> Result<Option<Plan>, Failure> {
        let on_disk = self.cache.inspect(&self.job.key).map_err(disk_failure)?;
        Ok(match on_disk {
            Some((head, len)) if head.is_complete(len) && self.job.needs_tls() && !head.came_over_tls() => {
                tracing::info!(
                    "{}: the cached copy came over plain http; fetching it over https",
                    self.job.key
                );
                Some(Plan::Whole)
            }
            Some((head, len)) if head.is_complete(len) => {
                let current = match self.job.revalidate {
                    Revalidate::Never => true,
                    Revalidate::IfStale => self.cache.fresh.is_fresh(&self.job.key),
                    Revalidate::Always => false,
                    Revalidate::Refetch => return Ok(Some(Plan::Whole)),
                };
                if current {
                    return Ok(None);
                }
                Some(Plan::Conditional {
                    etag: head.etag.clone(),
                    last_modified: head.last_modified.clone(),
                })
            }
            Some((head, len)) if self.job.kind == FileKind::Solid && len > 0 => {
                let total = head.expected_length.or(head.content_length);
                let validator = strong_validator(head.etag.as_deref(), head.last_modified.as_deref());
                match (total, validator) {
                    (Some(total), Some(validator)) if len < total => {
                        self.validator = Some(validator);
                        self.total = Some(total);
                        Some(Plan::Resume { offset: len })
                    }
                    _ => Some(Plan::Whole),
                }
            }
            _ => Some(Plan::Whole),
        })
    }

    /// After a broken connection: continue where the file ends when the
    /// response can be resumed, else start over.
    fn resume_plan(&self) -> Plan {
        match (self.job.kind, &self.validator, self.total, self.written()) {
            (FileKind::Solid, Some(_), Some(total), offset) if offset > 0 && offset < total => {
                Plan::Resume { offset }
            }
            _ => Plan::Whole,
        }
    }

    /// One attempt on `backend`: to the URL that sent the bytes on disk when
    /// continuing them, else to the backend.
    async fn ask(&mut self, backend: &HttpUrl, plan: &Plan, keyfile: bool) -> Attempt {
        let mut headers = HeaderMap::new();
        if self.job.kind == FileKind::Volatile || matches!(plan, Plan::Conditional { .. }) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=0"));
        }
        match plan {
            Plan::Whole => {}
            Plan::Conditional { etag, last_modified } => {
                if let Some(v) = etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
                    headers.insert(header::IF_NONE_MATCH, v);
                } else if let Some(v) = last_modified
                    .as_deref()
                    .and_then(|l| HeaderValue::from_str(l).ok())
                {
                    headers.insert(header::IF_MODIFIED_SINCE, v);
                }
            }
            Plan::Resume { offset } => {
                if let (Ok(range), Some(Ok(v))) = (
                    HeaderValue::from_str(&format!("bytes={offset}-")),
                    self.validator.as_deref().map(HeaderValue::from_str),
                ) {
                    headers.insert(header::RANGE, range);
                    headers.insert(header::IF_RANGE, v);
                }
            }
        }
        let ask = Ask {
            headers,
            forwarded_for: self.job.forwarded_for.clone(),
            ..Ask::get(&self.job.flags.proxy)
        };
        let url = self.source.clone().unwrap_or_else(|| backend.clone());
        self.requests += 1;
        let attempt = self.cache.upstream.attempt(backend, &url, &ask, keyfile).await;
        if let Attempt::BackendFailed(Err(e)) | Attempt::Failed(e) = &attempt {
            tracing::debug!("{}: {}", self.job.key, crate::error::Chain(e));
        }
        attempt
    }

    /// Judges a response: where its body goes, or why there is none.
    async fn accept(&mut self, fetched: Fetched, plan: &Plan) -> Result<Accepted, Failure> {
        let Fetched {
            response,
            url,
            redirected,
        } = fetched;
        let status = response.status();
        self.count_in(crate::log::head_bytes(response.headers()));
        match (status, plan) {
            (StatusCode::NOT_MODIFIED, Plan::Conditional { .. }) => {
                self.cache.fresh.mark(&self.job.key, self.started);
                return Ok(Accepted::NotModified);
            }
            (StatusCode::PARTIAL_CONTENT, Plan::Resume { offset }) => {
                let Some(total) = self
                    .total
                    .filter(|&t| content_range(response.headers()) == Some((*offset, t)))
                else {
                    return Ok(Accepted::Restart);
                };
                if self.writer.is_none() {
                    if self.expected().is_some_and(|e| e.size != total) {
                        // The partial file is of another version than the
                        // index lists.
                        return Ok(Accepted::Restart);
                    }
                    let head = head_for(&response, &url, Some(total));
                    let offset = *offset;
                    let writer = self
                        .on_disk(head.clone(), move |storage, key, head| {
                            EntryWriter::resume_solid(storage, key, head, offset)
                        })
                        .await?;
                    self.publish_new(&writer, head, Some(total));
                    self.writer = Some(writer);
                }
                self.source = Some(url);
                return Ok(Accepted::Body(response));
            }
            (StatusCode::RANGE_NOT_SATISFIABLE, Plan::Resume { .. }) => return Ok(Accepted::Restart),
            (StatusCode::OK, _) => {}
            _ => return Err(relayed(&response)),
        }
        check_transfer(&response)?;
        if self.job.needs_tls() && url.scheme != Scheme::Https {
            tracing::warn!(
                "{}: an https mirror redirected to {}; refused",
                self.job.key,
                url.masked()
            );
            return Err(Failure::Unusable(Unusable::Downgraded));
        }
        if redirected && self.is_captive_portal(&response) {
            return Err(Failure::RedirectedToInvalidTarget);
        }
        let total = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        if let (Some(expected), Some(total)) = (self.expected(), total) {
            if expected.size != total {
                // The log names this URL, and the next backend starts whole.
                self.source = Some(url);
                return Ok(Accepted::Mismatch(Mismatch::Size {
                    got: total,
                    expected: expected.size,
                }));
            }
        }
        self.total = total;
        let etag = response.headers().get(header::ETAG).and_then(|v| v.to_str().ok());
        let last_modified = response
            .headers()
            .get(header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok());
        self.validator = strong_validator(etag, last_modified);
        let head = head_for(&response, &url, total);
        self.source = Some(url);
        if self.job.kind == FileKind::Volatile {
            // A new Release: the suite's other indexes are stale from now on,
            // before any client can have a byte of it.
            self.cache.fresh.invalidate_suite(&self.job.key);
        }
        let kind = self.job.kind;
        let writer = self
            .on_disk(head.clone(), move |storage, key, head| {
                let writer = match kind {
                    FileKind::Solid => EntryWriter::start_solid(storage, key, head),
                    FileKind::Volatile => EntryWriter::start_volatile(storage, key, head),
                }?;
                if let Some(total) = total {
                    writer.reserve(total)?;
                }
                Ok(writer)
            })
            .await?;
        self.publish_new(&writer, head, total);
        self.writer = Some(writer);
        Ok(Accepted::Body(response))
    }

    /// Makes the entry's writer on the blocking pool: directories, the
    /// `.head`, the data file and its space may all wait for the disk.
    async fn on_disk(
        &self,
        head: Head,
        make: impl FnOnce(&super::Storage, &CacheKey, Head) -> std::io::Result<EntryWriter> + Send + 'static,
    ) -> Result<EntryWriter, Failure> {
        let (cache, key) = (Arc::clone(self.cache), self.job.key.clone());
        tokio::task::spawn_blocking(move || make(&cache.storage, &key, head))
            .await
            .map_err(|e| disk_failure(std::io::Error::other(e)))?
            .map_err(disk_failure)
    }

    fn is_captive_portal(&self, response: &Response<Incoming>) -> bool {
        let mime = &self.cache.settings.bad_redirect_mime;
        !mime.is_empty()
            && response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.contains(mime.as_str()))
    }

    /// A new body: clients see it, and its hashing starts when the index
    /// gives a digest.
    fn publish_new(&mut self, writer: &EntryWriter, head: Head, total: Option<u64>) {
        self.verifier = self
            .expected()
            .and_then(|e| Verifier::start(e, Arc::clone(writer.file()), writer.len()));
        let body = Arc::new(Body {
            file: Arc::clone(writer.file()),
            meta: Arc::new(Meta::new(head)),
            total,
            held: self.held(),
        });
        self.leader.start_body(body, self.visible(writer.len()));
    }

    /// What the cached indexes say this file is (package files only: an
    /// index changes under its name, and its Release is apt's to check).
    fn expected(&self) -> Option<Expected> {
        match self.job.kind {
            FileKind::Solid => self.cache.expected.get(&self.job.key),
            FileKind::Volatile => None,
        }
    }

    /// Bytes from `backend` that are not the file: keep none of them, and
    /// ask the next backend (this one is avoided for a while).
    async fn reject(&mut self, backend: &HttpUrl, mismatch: Mismatch) -> Failure {
        self.verifier = None;
        let from = self
            .source
            .as_ref()
            .map_or_else(|| backend.masked(), HttpUrl::masked);
        tracing::warn!("{}: from {from}: {mismatch}; nothing kept", self.job.key);
        self.cache
            .upstream
            .avoid(backend, &format_args!("sent {} unlike its index", self.job.key));
        if let Some(writer) = self.writer.take() {
            let discarded = tokio::task::spawn_blocking(move || writer.discard())
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            if let Err(e) = discarded {
                tracing::error!("{}: cannot remove the rejected file: {e}", self.job.key);
            }
            self.cache.forget(&self.job.key);
        }
        Failure::Mismatch(Arc::new(mismatch))
    }

    /// Writes the body to disk, publishing progress.
    async fn stream(&mut self, body: Response<Incoming>) -> Result<(), BodyError> {
        let received = self.receive(body).await;
        // What arrived before a break is good: waiting clients may have it
        // while the rest is asked for again.
        self.publish();
        received
    }

    async fn receive(&mut self, mut body: Response<Incoming>) -> Result<(), BodyError> {
        let idle = self.cache.upstream.network_timeout();
        let mut published = self.written();
        let mut last_publish = Instant::now();
        let mut unwritten = Unwritten::default();
        let broke = loop {
            let unpublished = self.written() + unwritten.len > published;
            let next = tokio::time::timeout(idle, body.body_mut().frame());
            let frame = if unpublished {
                tokio::select! {
                    f = next => f,
                    _ = tokio::time::sleep(PUBLISH_EVERY.saturating_sub(last_publish.elapsed())) => {
                        self.write(&mut unwritten).await?;
                        self.publish();
                        published = self.written();
                        last_publish = Instant::now();
                        continue;
                    }
                }
            } else {
                next.await
            };
            let data = match frame {
                Err(_) => break Some(format!("no data for {}s", idle.as_secs())),
                Ok(None) => break None,
                Ok(Some(Err(e))) => break Some(e.to_string()),
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
            };
            if self.writer.is_none() {
                return Err(BodyError::Upstream("no writer".into()));
            }
            if self
                .total
                .is_some_and(|t| self.written() + unwritten.len + data.len() as u64 > t)
            {
                break Some("more bytes than announced".into());
            }
            self.count_in(data.len() as u64);
            unwritten.len += data.len() as u64;
            unwritten.pieces.push(data);
            if unwritten.len >= WRITE_BYTES {
                self.write(&mut unwritten).await?;
            }
            let new = self.written() - published;
            if new >= PUBLISH_BYTES || (new > 0 && last_publish.elapsed() >= PUBLISH_EVERY) {
                self.publish();
                published = self.written();
                last_publish = Instant::now();
            }
        };
        // What arrived before a break is good.
        self.write(&mut unwritten).await?;
        if let Some(broke) = broke {
            return Err(BodyError::Upstream(broke));
        }
        if self.total.is_some_and(|t| self.written() < t) {
            return Err(BodyError::Upstream("connection closed before the end".into()));
        }
        Ok(())
    }

    /// Writes what was received since the last write, in order, off the
    /// runtime workers.
    async fn write(&mut self, unwritten: &mut Unwritten) -> Result<(), BodyError> {
        let pieces = std::mem::take(&mut unwritten.pieces);
        let len = std::mem::take(&mut unwritten.len);
        if let (Some(verifier), false) = (&mut self.verifier, pieces.is_empty()) {
            verifier.feed(&pieces).await;
        }
        match &mut self.writer {
            Some(writer) if !pieces.is_empty() => {
                writer.append(pieces).await.map_err(BodyError::Disk)?;
                self.cache.grown.fetch_add(len, Ordering::Relaxed);
                self.cache.grew.notify_one();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Every byte is written: clients may finish; then make it durable.
    /// The syncs run on the blocking pool: a gigabyte's `fdatasync` takes
    /// seconds, and on a runtime worker it would stall every client that
    /// worker serves, the ones still sending this very file included.
    /// A verified download commits only when its digest matches.
    async fn commit(&mut self, backend: &HttpUrl) -> Result<Done, Spent> {
        if let Some(verifier) = self.verifier.take() {
            match verifier.finish().await {
                Ok(Ok(())) => {}
                Ok(Err(mismatch)) => return Err(Spent::Backend(self.reject(backend, mismatch).await)),
                Err(e) => return Err(Spent::Download(disk_failure(e))),
            }
        }
        self.durable().await.map_err(Spent::Download)
    }

    async fn durable(&mut self) -> Result<Done, Failure> {
        let Some(writer) = self.writer.take() else {
            return Err(Failure::Storage(Arc::new(std::io::Error::other(
                "a body ended without a file to commit",
            ))));
        };
        // Before the clients can finish: the `I` record comes first.
        self.record_fetched();
        self.leader.all_written(writer.len());
        let cache = Arc::clone(self.cache);
        tokio::task::spawn_blocking(move || writer.finish(&cache.storage))
            .await
            .map_err(|e| Failure::Storage(Arc::new(std::io::Error::other(e))))?
            .map_err(disk_failure)?;
        self.cache.forget(&self.job.key);
        if self.job.kind == FileKind::Volatile {
            self.cache.fresh.mark(&self.job.key, self.started);
        }
        if self.job.kind == FileKind::Volatile || self.job.key.as_str().contains("/by-hash/") {
            // Perhaps an index: what it lists is to be verified now.
            self.cache.expected.committed(&self.job.key);
        }
        Ok(Done::Written)
    }

    fn count_in(&mut self, n: u64) {
        self.fetched += n;
    }

    /// Tells the clients what is written. Once that is the whole body they
    /// may finish, so the requester's `I` record goes first: it comes
    /// before their `O` records in the log.
    fn publish(&mut self) {
        if self.total.is_some_and(|t| self.written() >= t) {
            self.record_fetched();
        }
        self.leader.committed(self.visible(self.written()));
    }

    /// Where the bytes held back until verification begin.
    fn held(&self) -> Option<u64> {
        self.verifier
            .as_ref()
            .map(|v| v.expected().size.saturating_sub(HELD_BACK))
    }

    /// What clients may have of `written` bytes.
    fn visible(&self, written: u64) -> u64 {
        written.min(self.held().unwrap_or(u64::MAX))
    }

    /// The requester's `I` record of the bytes received so far.
    fn record_fetched(&mut self) {
        let bytes = std::mem::take(&mut self.fetched);
        if let Some(origin) = &self.job.origin {
            origin.log.fetched(self.job.key.as_str(), bytes);
        }
    }
}

enum Accepted {
    NotModified,
    /// The partial response does not fit the file: start over.
    Restart,
    /// Not the file the index lists (its length says so).
    Mismatch(Mismatch),
    Body(Response<Incoming>),
}

/// A strong validator for `If-Range`: a strong entity tag, else the
/// Last-Modified date (mirrors' files are older than a second, which makes
/// it strong in the sense of RFC 9110 §8.8.2.2).
fn strong_validator(etag: Option<&str>, last_modified: Option<&str>) -> Option<String> {
    match etag {
        Some(e) if e.starts_with('"') => Some(e.to_string()),
        _ => last_modified.map(str::to_string),
    }
}

/// `Content-Range: bytes a-b/total` → `(a, total)`.
fn content_range(headers: &HeaderMap) -> Option<(u64, u64)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let spec = value.strip_prefix("bytes")?.trim_start_matches([' ', '=']);
    let (range, total) = spec.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()?))
}

/// The sidecar of a response from `source` while its body arrives.
fn head_for(response: &Response<Incoming>, source: &HttpUrl, total: Option<u64>) -> Head {
    let text = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let mut plain = source.clone();
    plain.credentials = None;
    Head {
        content_length: None,
        expected_length: total,
        last_modified: text(header::LAST_MODIFIED),
        etag: text(header::ETAG),
        original_source: Some(plain.to_string()),
        other: Vec::new(),
    }
}

/// Only bodies whose end is known can be stored: a length, or chunks (a
/// body ended by closing the connection cannot be told from a cut one).
fn check_transfer(response: &Response<Incoming>) -> Result<(), Failure> {
    let headers = response.headers();
    let chunked = headers
        .get(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if !chunked && !headers.contains_key(header::CONTENT_LENGTH) {
        return Err(Failure::Unusable(Unusable::NoLength));
    }
    let encoded = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"));
    if encoded {
        return Err(Failure::Unusable(Unusable::Encoded));
    }
    Ok(())
}

fn relayed(response: &Response<Incoming>) -> Failure {
    let status = response.status();
    let reason = response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .and_then(|r| std::str::from_utf8(r.as_bytes()).ok().map(str::to_string))
        .or_else(|| status.canonical_reason().map(str::to_string))
        .unwrap_or_default();
    Failure::Status {
        code: status.as_u16(),
        reason,
        location: response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string),
    }
}

fn disk_failure(e: std::io::Error) -> Failure {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => Failure::DiskFull,
        // Another download made a file where this one needs a directory (or
        // the reverse) since the lookup: the layout's conflict, not a fault.
        Some(libc::ENOTDIR) | Some(libc::EISDIR) | Some(libc::ELOOP) => Failure::LayoutConflict,
        _ => Failure::Storage(Arc::new(e)),
    }
}

/// `keyfile=` suffixes (spec §5.2): a failure of one of these files marks
/// the backend as broken.
fn is_keyfile(key: &CacheKey, flags: &RemapFlags) -> bool {
    flags.keyfiles.iter().any(|k| key.as_str().ends_with(k.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_static("bytes 100-199/1000"),
        );
        assert_eq!(content_range(&h), Some((100, 1000)));
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static("bytes=5-9/10"));
        assert_eq!(content_range(&h), Some((5, 10)));
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static("bytes */1000"));
        assert_eq!(content_range(&h), None);
    }

    #[test]
    fn the_back_off_doubles_up_to_its_cap() {
        let secs: Vec<u64> = [1, 2, 3, 4, 5, 6, 40, u32::MAX]
            .map(|n| backoff(n).as_secs())
            .to_vec();
        assert_eq!(secs, [1, 2, 4, 8, 16, 16, 16, 16]);
    }

    #[test]
    fn the_longest_wait_on_a_failing_download() {
        let wait = |timeout, retries, backends| {
            longest_wait(Duration::from_secs(timeout), retries, backends).as_secs()
        };
        // acng's defaults: three attempts of up to 2 x 17 s, and 1 s + 2 s.
        assert_eq!(wait(17, 2, 1), 105);
        assert_eq!(wait(17, 2, 2), 210);
        assert_eq!(wait(5, 1, 1), 21);
        assert_eq!(wait(5, 0, 1), 10);
        assert_eq!(wait(5, 7, 1), 80 + 1 + 2 + 4 + 8 + 16 * 3);
        assert!(
            wait(u64::MAX / 4, u32::MAX, usize::MAX) > 0,
            "saturates, never overflows"
        );
    }

    #[test]
    fn only_strong_validators_guard_a_resume() {
        assert_eq!(
            strong_validator(Some("\"a\""), Some("d")).as_deref(),
            Some("\"a\"")
        );
        assert_eq!(strong_validator(Some("W/\"a\""), Some("d")).as_deref(), Some("d"));
        assert_eq!(strong_validator(None, None), None);
    }
}
