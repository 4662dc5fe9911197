//! Pages of the daemon itself: the help page at `/` (also served for the
//! report page and `LocalDirs` until those are built) and its style sheet,
//! `/health` and `/metrics`.

pub mod health;
pub mod help;
pub mod metrics;
