//! Pages of the daemon itself: the help page at `/` (also served for the
//! report page and `LocalDirs` until those are built) and its style sheet,
//! `/health` and `/metrics`, and the gate in front of the report page's
//! actions (`auth`).

pub mod auth;
pub mod health;
pub mod help;
pub mod metrics;
pub mod report;
