//! The handle every connection gets: configuration, remap table, cache and
//! transfer log and statistics, shared and immutable (the cache synchronises itself). No
//! globals: tests run several daemons in one process.

use std::sync::Arc;

use crate::cache::Cache;
use crate::config::Config;
use crate::intercept::Interceptor;
use crate::log::TransferLog;
use crate::remap::RemapTable;
use crate::stats::Stats;

#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub remap: Arc<RemapTable>,
    pub cache: Arc<Cache>,
    pub log: Arc<TransferLog>,
    pub stats: Arc<Stats>,
    /// `TlsInterceptDomains`' CA, when any domain is listed.
    pub intercept: Option<Arc<Interceptor>>,
}
