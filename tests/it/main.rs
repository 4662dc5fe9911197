//! The integration test binary: the daemon and its command line, driven
//! from outside over loopback.

mod admin_auth;
mod apt_clients;
mod apt_selftest;
mod browser;
mod cli;
mod connections;
mod download;
mod expire;
mod framing;
mod freshness;
mod fuzz;
mod hooks;
mod https;
mod index;
mod layout;
mod lifecycle;
mod local_dirs;
mod maintenance;
mod migrate;
mod observability;
mod origin_selftest;
mod quota;
mod report;
mod scale;
mod serving;
mod support;
mod systemd;
mod tool;
mod traversal;
mod tunnel;
mod upstream;
mod verify;
