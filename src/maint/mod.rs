//! Keeping the cache in shape, for the daemon, the report page and the
//! command line. Reads and changes the store only through `Cache`'s
//! maintenance operations (walk, remove, truncate, the downloads running).
//!
//! - `quota`: the size limit (`CacheSizeLimit`) and `debcache shrink`.

pub mod quota;
