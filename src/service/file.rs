//! Answering a request for a repository file: from the cache when the copy
//! there is current, else through the file's flight (download or
//! revalidation), or straight from upstream without storing (pass-through,
//! HEAD of an uncached file).
//!
//! | cached copy      | kind / request                         | answer                              |
//! |------------------|----------------------------------------|-------------------------------------|
//! | complete         | solid, HEAD, OfflineMode, no-store     | from disk                           |
//! | complete         | volatile, revalidated < FreshIndexMaxAge | from disk                         |
//! | complete         | volatile and stale, or `no-cache`      | flight: conditional request         |
//! | complete, over http | volatile, every backend https       | flight: whole file over TLS         |
//! | layout conflict  | a parent is a file, or the name a directory | 403, nothing asked upstream    |
//! | none or partial  | OfflineMode                            | 503 offline                         |
//! | none or partial  | ForceManaged, no backends              | 403                                 |
//! | none or partial  | DontCache*, no-store, directory        | relayed from upstream, not stored   |
//! | none or partial  | HEAD                                   | the flight's headers, else upstream HEAD |
//! | none or partial  | GET                                    | flight: download (or resume)        |

use std::sync::Arc;

use http::header::{self, HeaderMap};
use http::{Method, Request, Response};

use super::answer::{complete_file_body, file_answer, OCTETS};
use super::{account, failure, Client, Outcome, ServeError};
use crate::body::ResponseBody;
use crate::cache::Body;
use crate::cache::Follow;
use crate::cache::{needs_tls, CacheKey, Hit, Job, Lookup, Origin, Progress, Revalidate, State};
use crate::remap::Resolved;
use crate::request::{self, FileKind, FileRequest, Reject};
use crate::state::AppState;
use crate::stats::Served;
use crate::upstream::{self, Ask};

pub async fn serve<B>(state: &AppState, client: &Client, req: &Request<B>, file: &FileRequest) -> Outcome {
    let resolved = state.remap.resolve(&file.url);
    if file.is_directory() {
        return listing(state, client, req, file, &resolved).await;
    }
    let key = CacheKey::new(&resolved.repo, &resolved.rel_path).map_err(ServeError::BadKey)?;
    let fail = |err: ServeError| err.at(key.to_string());
    let head_only = req.method() == Method::HEAD;
    let lookup = state
        .cache
        .find(&key)
        .await
        .map_err(|e| fail(ServeError::Storage(e)))?;
    if let Lookup::Conflict = lookup {
        return Err(fail(ServeError::LayoutConflict));
    }
    if let Lookup::Complete(hit) = lookup {
        let current = state.config.caching.offline
            || head_only
            || file.pass_through
            || (!file.no_cache && (file.kind == FileKind::Solid || state.cache.is_fresh(&key)));
        // An index the client asked for over https never comes from a copy
        // that came over plain http, not even when offline.
        let untrusted = file.kind == FileKind::Volatile
            && needs_tls(&resolved.backends)
            && !hit.meta.head.came_over_tls();
        if untrusted {
            return through_flight(state, client, req, file, &resolved, &key, Cached::Untrusted).await;
        }
        if current {
            // A download read ahead for this request may have finished first.
            let how = match client.take_prefetched(&key) {
                Some(joined) if joined.started => Served::Miss,
                _ => Served::Hit,
            };
            return serve_hit(client, req, &key, hit, how).map_err(|e| fail(ServeError::Storage(e)));
        }
        return through_flight(state, client, req, file, &resolved, &key, Cached::Stale(hit)).await;
    }
    match miss(state, file, &resolved) {
        Miss::Offline => Err(fail(ServeError::Offline)),
        Miss::Refused => Err(fail(ServeError::Rejected(Reject::Forbidden))),
        Miss::Relay => relay(state, client, req, &resolved, key.to_string()).await,
        Miss::Download if head_only && state.cache.in_flight(&key).is_none() => {
            relay(state, client, req, &resolved, key.to_string()).await
        }
        Miss::Download => through_flight(state, client, req, file, &resolved, &key, Cached::Nothing).await,
    }
}

/// A directory URL (`…/pool/main/h/hello/`): the mirror's own listing,
/// relayed and never stored (spec §2.4 step 10), so that admins can browse
/// mirrors through the cache. No cache entry can have a name ending in `/`;
/// the name without it is still held to a key's rules (length, reserved
/// names), and OfflineMode and ForceManaged apply as to a miss.
async fn listing<B>(
    state: &AppState,
    client: &Client,
    req: &Request<B>,
    file: &FileRequest,
    resolved: &Resolved,
) -> Outcome {
    let name = format!("{}/{}", resolved.repo, resolved.rel_path);
    CacheKey::parse(name.trim_end_matches('/')).map_err(ServeError::BadKey)?;
    match miss(state, file, resolved) {
        Miss::Offline => Err(ServeError::Offline.at(name)),
        Miss::Refused => Err(ServeError::Rejected(Reject::Forbidden).at(name)),
        Miss::Relay | Miss::Download => relay(state, client, req, resolved, name).await,
    }
}

/// What a file that is not complete in the cache gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Miss {
    /// `OfflineMode`: nothing is downloaded.
    Offline,
    /// `ForceManaged` and no backends (spec §2.4 step 14).
    Refused,
    /// Fetched and passed on, not stored (`DontCache*`, `no-store`,
    /// directory listings).
    Relay,
    Download,
}

fn miss(state: &AppState, file: &FileRequest, resolved: &Resolved) -> Miss {
    let config = &state.config.caching;
    let dont_cache = resolved
        .backends
        .first()
        .is_some_and(|b| request::dont_cache(&config.dont_cache_resolved, b));
    if config.offline {
        Miss::Offline
    } else if config.force_managed && !resolved.managed {
        Miss::Refused
    } else if file.pass_through || dont_cache {
        Miss::Relay
    } else {
        Miss::Download
    }
}

/// The download of `key` for `client`, whose log records what it fetches.
fn job(client: &Client, file: &FileRequest, resolved: &Resolved, key: &CacheKey) -> Job {
    Job {
        key: key.clone(),
        kind: file.kind,
        backends: resolved.backends.clone(),
        flags: Arc::clone(&resolved.flags),
        remap: resolved.hooked_repo().map(str::to_string),
        revalidate: Revalidate::Never,
        forwarded_for: None,
        origin: Some(Origin {
            log: Arc::clone(&client.log),
        }),
    }
}

/// Starts the download of a miss ahead of its request (`readahead`): the
/// same decisions as [`serve`], without an answer.
pub async fn prefetch(state: &AppState, client: &Client, file: &FileRequest) {
    let resolved = state.remap.resolve(&file.url);
    let Ok(key) = CacheKey::new(&resolved.repo, &resolved.rel_path) else {
        return;
    };
    // The cheap test first: the lookup costs an open and a stat.
    if miss(state, file, &resolved) != Miss::Download
        || !matches!(
            state.cache.find(&key).await,
            Ok(Lookup::Missing | Lookup::Incomplete { .. })
        )
    {
        return;
    }
    let joined = state.cache.fetch(job(client, file, &resolved, &key)).await;
    client.keep_flight(&key, joined);
}

/// What the cache holds for a request that goes through a flight.
enum Cached {
    Nothing,
    /// A complete copy to revalidate, served if the mirror cannot be
    /// reached.
    Stale(Hit),
    /// A complete copy that must not be served: fetched again, whole.
    Untrusted,
}

/// Joins (or starts) the key's flight and answers from it.
async fn through_flight<B>(
    state: &AppState,
    client: &Client,
    req: &Request<B>,
    file: &FileRequest,
    resolved: &Resolved,
    key: &CacheKey,
    cached: Cached,
) -> Outcome {
    let prefetched = client.take_prefetched(key);
    let mut job = job(client, file, resolved, key);
    job.forwarded_for = forwarded_for(state, client, req);
    job.revalidate = match &cached {
        Cached::Nothing => Revalidate::Never,
        Cached::Untrusted => Revalidate::Always,
        Cached::Stale(_) if file.no_cache => Revalidate::Always,
        Cached::Stale(_) => Revalidate::IfStale,
    };
    let stale = match cached {
        Cached::Stale(hit) => Some(hit),
        Cached::Nothing | Cached::Untrusted => None,
    };
    // A copy the mirror confirmed is revalidated; one a download found
    // complete when it began is a hit.
    let confirmed = if stale.is_some() || job.revalidate == Revalidate::Always {
        Served::Revalidated
    } else {
        Served::Hit
    };
    let joined = match (prefetched, &stale) {
        // Read ahead for this very request: its download's outcome is the
        // answer, a failure included.
        (Some(joined), None) => joined,
        _ => state.cache.fetch(job).await,
    };
    let streamed = if joined.started {
        Served::Miss
    } else {
        Served::Coalesced
    };
    let rx = joined.progress;
    let progress = first_answer(rx.clone()).await;
    let outcome = match progress.state {
        State::Streaming { body, .. } => {
            return Ok(from_flight(
                client,
                req,
                key,
                rx,
                progress.generation,
                body,
                streamed,
            ));
        }
        State::Unchanged => match state.cache.find(key).await.map_err(ServeError::Storage) {
            Ok(Lookup::Complete(hit)) => {
                serve_hit(client, req, key, hit, confirmed).map_err(ServeError::Storage)
            }
            Ok(_) => match stale {
                Some(hit) => serve_hit(client, req, key, hit, confirmed).map_err(ServeError::Storage),
                None => Err(ServeError::Download(crate::cache::Failure::Abandoned)),
            },
            Err(e) => Err(e),
        },
        State::Failed(failure) => match stale {
            // The mirror is away: the copy we have is better than an error.
            Some(hit) if failure.is_transient() => {
                tracing::warn!("{key}: revalidation failed ({failure}); serving the cached copy");
                serve_hit(client, req, key, hit, Served::Hit).map_err(ServeError::Storage)
            }
            _ => Err(ServeError::Download(failure)),
        },
        State::Connecting | State::Claimed => Err(ServeError::Download(crate::cache::Failure::Abandoned)),
    };
    Ok(outcome.unwrap_or_else(|err| failure(client, &err, key.to_string())))
}

/// Waits until the flight has headers, or an outcome.
async fn first_answer(mut rx: tokio::sync::watch::Receiver<Progress>) -> Progress {
    let answered = rx
        .wait_for(|p| !matches!(p.state, State::Connecting))
        .await
        .map(|p| p.clone());
    // When the sender is gone its last value is the outcome.
    answered.unwrap_or_else(|_| rx.borrow().clone())
}

/// The response for a file still downloading: headers from the flight,
/// bytes as they are committed. A range waits for its bytes and gets 206.
fn from_flight<B>(
    client: &Client,
    req: &Request<B>,
    key: &CacheKey,
    rx: tokio::sync::watch::Receiver<Progress>,
    generation: u32,
    body: Arc<Body>,
    how: Served,
) -> Response<ResponseBody> {
    let (builder, range) = file_answer(req, body.total, &body.meta, OCTETS);
    let response_body = match range {
        Some((start, end)) if req.method() != Method::HEAD => {
            ResponseBody::follow(Follow::new(rx, generation, body, start, end))
        }
        _ => ResponseBody::empty(),
    };
    let mut response = builder
        .body(response_body)
        .unwrap_or_else(|_| Response::new(ResponseBody::empty()));
    account(client, &mut response, key.to_string(), how);
    response
}

/// Fetches from upstream and passes the answer on without storing it
/// (`DontCache*`, `no-store`, directory listings, HEAD of uncached files).
async fn relay<B>(
    state: &AppState,
    client: &Client,
    req: &Request<B>,
    resolved: &Resolved,
    name: String,
) -> Outcome {
    let mut headers = HeaderMap::new();
    for name in [
        header::RANGE,
        header::IF_RANGE,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
    ] {
        if let Some(v) = req.headers().get(&name) {
            headers.insert(name, v.clone());
        }
    }
    let method = if req.method() == Method::HEAD {
        Method::HEAD
    } else {
        Method::GET
    };
    let ask = Ask {
        method: method.clone(),
        headers,
        proxy: &resolved.flags.proxy,
        forwarded_for: forwarded_for(state, client, req),
    };
    let upstream = state.cache.upstream();
    let link = upstream.link(resolved.hooked_repo()).await;
    let fetched = upstream
        .fetch(&resolved.backends, &ask, false)
        .await
        .map_err(|e| ServeError::Upstream(e).at(&name))?;
    let upstream_response = fetched.response;
    let mut builder = Response::builder().status(upstream_response.status());
    for (name, value) in upstream_response.headers() {
        if !is_hop_by_hop(name) {
            builder = builder.header(name, value.clone());
        }
    }
    let reason = upstream_response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .cloned();
    let body = if method == Method::HEAD {
        ResponseBody::empty()
    } else {
        ResponseBody::upstream(
            upstream_response.into_body(),
            state.config.upstream.network_timeout,
            link,
        )
    };
    let mut response = builder
        .body(body)
        .map_err(|e| ServeError::Response(e).at(&name))?;
    if let Some(reason) = reason {
        response.extensions_mut().insert(reason);
    }
    account(client, &mut response, name, Served::Relayed);
    Ok(response)
}

fn is_hop_by_hop(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-authenticate"
            | "proxy-authorization"
    )
}

/// `X-Forwarded-For` to send upstream when `ExposeOrigin` is on.
fn forwarded_for<B>(state: &AppState, client: &Client, req: &Request<B>) -> Option<String> {
    if !state.config.upstream.expose_origin {
        return None;
    }
    let incoming = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    upstream::forwarded_for(incoming, client.peer)
}

/// A complete cached file: 200, 206, 304 or 416 as the request asks.
fn serve_hit<B>(
    client: &Client,
    req: &Request<B>,
    key: &CacheKey,
    hit: Hit,
    how: Served,
) -> std::io::Result<Response<ResponseBody>> {
    let (builder, range) = file_answer(req, Some(hit.len), &hit.meta, OCTETS);
    let body = complete_file_body(req, hit.file, range)?;
    let mut response = builder.body(body).map_err(std::io::Error::other)?;
    account(client, &mut response, key.to_string(), how);
    Ok(response)
}
