//! Keeping the cache in shape, for the daemon, the report page and the
//! command line. Reads and changes the store only through `Cache`'s
//! maintenance operations (walk, remove, truncate, refresh, its own files).
//!
//! - `expire`: expiration by the repositories' indexes (`doExpire`).
//! - `import`: files dropped in `_import` put in place (`doImport`).
//! - `orphans`: the orphan list, `_expending_dat`.
//! - `precache`: the packages of `PrecacheFor`'s indexes fetched ahead
//!   (`doMirror`).
//! - `quota`: the size limit (`CacheSizeLimit`) and `debcache shrink`.

use std::sync::Arc;
use std::time::SystemTime;

use crate::cache::{Cache, CacheKey, Job, Lookup, Revalidate};
use crate::config::Config;
use crate::index::{self, IndexKind, Listed};
use crate::remap::RemapTable;
use crate::request::FileKind;
use crate::stats::Stats;
use crate::url::HttpUrl;

pub mod expire;
pub mod import;
mod orphans;
pub mod precache;
pub mod quota;
pub mod sums;

/// How important a line of a task's output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    /// The good end.
    Good,
    Warning,
    /// An error counted by the task; whether cron hears of it is the
    /// task's verdict at its end.
    Problem,
    /// Also an error line for cron (acng's control line).
    Error,
}

/// Where a long task says what it does, and hears whether to stop.
pub trait Report {
    fn say(&mut self, level: Level, text: &str);
    fn should_stop(&self) -> bool;
}

/// What a run needs besides its options.
#[derive(Clone)]
pub struct Context {
    pub cache: Arc<Cache>,
    pub remap: Arc<RemapTable>,
    pub config: Arc<Config>,
    pub stats: Arc<Stats>,
    /// The daemon's runtime, for the downloads (the run is on a blocking
    /// thread).
    pub runtime: tokio::runtime::Handle,
    /// The clock (tests move it).
    pub now: SystemTime,
}

impl Context {
    /// The download of a cached file's key as maintenance asks for it:
    /// from its repository's backends, else from `original` or the URL its
    /// `.head` says it came from.
    pub fn job(
        &self,
        key: &CacheKey,
        kind: FileKind,
        revalidate: Revalidate,
        original: Option<HttpUrl>,
    ) -> Option<Job> {
        let (repo, rel) = key.as_str().split_once('/')?;
        let original = original.or_else(|| {
            let head = self.cache.head_of(key).ok().flatten()?;
            HttpUrl::parse(&head.original_source?).ok()
        });
        let resolved = self.remap.for_cached(repo, rel, original.as_ref())?;
        Some(Job {
            key: key.clone(),
            kind,
            remap: resolved.hooked_repo().map(str::to_string),
            backends: resolved.backends,
            flags: resolved.flags,
            revalidate,
            forwarded_for: None,
            origin: None,
        })
    }
}

/// Reads the cached index `key`, whose name `name` says its compression,
/// as `kind`, handing each thing it lists to `each` with that thing's path
/// below the cache (its path joined to `base`). `Ok(false)`: the index is
/// not complete in the cache. The error is the line to say.
pub fn read_index(
    cache: &Cache,
    key: &CacheKey,
    name: &str,
    kind: IndexKind,
    base: &str,
    mut each: impl FnMut(Listed, String),
) -> Result<bool, String> {
    let file = match cache.lookup(key) {
        Ok(Lookup::Complete(hit)) => hit.file,
        Ok(_) => return Ok(false),
        Err(e) => return Err(format!("{key}: cannot read it: {e}")),
    };
    let text = index::decompress(name, std::io::BufReader::new(file)).map_err(|e| format!("{key}: {e}"))?;
    index::parse(kind, text, |listed| {
        let (Listed::File(r) | Listed::ByHash(r)) = &listed;
        let path = match base {
            "" => r.path.clone(),
            _ => format!("{base}/{}", r.path),
        };
        each(listed, path);
    })
    .map_err(|e| format!("{key}: {e}"))?;
    Ok(true)
}
