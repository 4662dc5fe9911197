//! Pages of the daemon itself: the help page at `/` (also served for the
//! report page until that is built) and its style sheet, and the
//! `LocalDirs` file server with its directory listings.

pub mod help;
pub mod local_dir;
mod mime;
