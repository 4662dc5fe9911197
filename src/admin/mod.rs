//! Pages of the daemon itself: the help page at `/` (also served for the
//! report page until that is built) and its style sheet, `/health` and
//! `/metrics`, the gate in front of the report page's actions (`auth`),
//! and the `LocalDirs` file server with its directory listings.

pub mod auth;
pub mod health;
pub mod help;
pub mod local_dir;
pub mod metrics;
mod mime;
pub mod report;
