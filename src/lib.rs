//! debcache: a caching proxy for Debian and Ubuntu package repositories,
//! compatible with apt-cacher-ng's configuration, cache layout and clients.
//!
//! A request travels `server → service → request → remap → cache → upstream`;
//! see ARCHITECTURE.md for the whole picture.
//!
//! - `cli`: the command line and its exit codes.
//! - `config`: acng.conf-compatible loading into one validated `Config`.
//! - `url`: http(s) URLs parsed the way apt-cacher-ng parses them.

pub mod cli;
pub mod config;
pub mod url;
