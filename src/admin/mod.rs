//! Pages of the daemon itself. So far: the help page at `/` (also served
//! for the report page and `LocalDirs` until those are built) and its style
//! sheet.

pub mod auth;
pub mod help;
