//! Keeping the cache in shape, for the daemon, the report page and the
//! command line. Reads and changes the store only through `Cache`'s
//! maintenance operations (walk, remove, truncate, refresh, its own files).
//!
//! - `expire`: expiration by the repositories' indexes (`doExpire`).
//! - `import`: files dropped in `_import` put in place (`doImport`).
//! - `orphans`: the orphan list, `_expending_dat`.
//! - `quota`: the size limit (`CacheSizeLimit`) and `debcache shrink`.

pub mod expire;
pub mod import;
mod orphans;
pub mod quota;

/// How important a line of a task's output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    /// The good end.
    Good,
    Warning,
    /// Also an error line for cron (acng's control line).
    Error,
}

/// Where a long task says what it does, and hears whether to stop.
pub trait Report {
    fn say(&mut self, level: Level, text: &str);
    fn should_stop(&self) -> bool;
}
