//! The handle every connection gets: configuration, remap table, cache,
//! transfer log, statistics and the maintenance task slot, shared and
//! immutable (the cache and the slot synchronise themselves). No globals:
//! tests run several daemons in one process.

use std::sync::Arc;

use crate::admin::maintenance::Maintenance;
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
    /// The maintenance task slot (one task at a time).
    pub maintenance: Arc<Maintenance>,
    /// Pattern tracing: its switch and what it found.
    pub trace: Arc<crate::admin::trace::PatternTrace>,
}
