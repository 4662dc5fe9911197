//! The integration test binary: the daemon and its command line, driven
//! from outside over loopback.

mod cli;
mod lifecycle;
mod serving;
mod support;
mod traversal;
