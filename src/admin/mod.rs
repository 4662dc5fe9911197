//! Pages of the daemon itself: the help page at `/` and its style sheet,
//! the report page, `/health` and `/metrics`, the gate in front of the
//! report page's actions (`auth`), the maintenance tasks those actions run
//! (`maintenance`), and the `LocalDirs` file server with its directory
//! listings.

pub mod auth;
pub mod health;
pub mod help;
pub mod local_dir;
pub mod maintenance;
pub mod metrics;
mod mime;
pub mod report;
pub mod trace;
