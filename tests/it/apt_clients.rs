//! A real apt-get through debcache, in each plain-HTTP style: as a proxy,
//! with a path-style sources line, through a remap alias, and with
//! `HTTPS///` lines (both styles) to a TLS mirror. Cold, then warm with no
//! upstream request for package files; and the transfer log of both runs.

use std::collections::BTreeMap;

use crate::support::apt::{self, Access, Apt, Repo};
use crate::support::http::sha256_hex;
use crate::support::origin::Origin;
use crate::support::tls::{Leaf, TestCa};
use crate::support::Daemon;

const SUITE: &str = "synth";

struct World {
    _dir: tempfile::TempDir,
    repo: Repo,
    origin: Origin,
    names: Vec<String>,
}

/// A five-package repository served by a mock mirror under `/debian`.
fn world() -> World {
    world_on(Origin::start())
}

fn world_on(origin: Origin) -> World {
    let dir = tempfile::tempdir().unwrap();
    let packages = apt::packages(5, 20_000, 200_000);
    let names = packages.iter().map(|p| p.name.clone()).collect();
    let repo = Repo::build(dir.path(), SUITE, &packages);
    for (path, bytes) in repo.files() {
        origin.put(&format!("/debian{path}"), bytes);
    }
    World {
        _dir: dir,
        repo,
        origin,
        names,
    }
}

impl World {
    fn debs(&self) -> Vec<String> {
        self.names
            .iter()
            .map(|n| format!("/debian{}", self.repo.deb_path(n)))
            .collect()
    }

    fn deb_requests(&self) -> usize {
        self.debs().iter().map(|p| self.origin.requests(p)).sum()
    }

    /// Runs `apt-get update` and downloads every package; checks the files.
    fn run(&self, sources: &str, access: Access) {
        let apt = Apt::new(sources, access);
        apt.update().assert_success();
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        apt.download(&names).assert_success();
        let files: BTreeMap<String, Vec<u8>> = self.repo.files().into_iter().collect();
        for name in &self.names {
            let path = self.repo.deb_path(name);
            let file_name = path.rsplit('/').next().unwrap();
            let got = std::fs::read(apt.archives().join(file_name)).unwrap();
            assert_eq!(sha256_hex(&got), sha256_hex(&files[&path]), "{name}");
        }
    }
}

fn check_cold_then_warm(world: &World, daemon: &Daemon, sources: &str, access: impl Fn() -> Access) {
    world.run(sources, access());
    assert_eq!(
        world.deb_requests(),
        world.names.len(),
        "each package fetched once"
    );
    world.run(sources, access());
    assert_eq!(
        world.deb_requests(),
        world.names.len(),
        "warm: no upstream request for package files"
    );
    let _ = daemon;
}

#[test]
fn apt_through_the_proxy_setting() {
    let world = world();
    let port = world.origin.addr().port();
    let daemon = Daemon::start(&format!("AllowUserPorts: {port}\n"));
    let sources = format!("deb [trusted=yes] {} {SUITE} main", world.origin.url("/debian"));
    let proxy = format!("http://{}", daemon.addr);
    check_cold_then_warm(&world, &daemon, &sources, || Access::Proxy(proxy.clone()));
    assert!(daemon
        .cache()
        .join(format!(
            "127.0.0.1/debian{}",
            world.repo.deb_path(&world.names[0])
        ))
        .exists());
}

#[test]
fn apt_with_a_path_style_sources_line() {
    let world = world();
    let port = world.origin.addr().port();
    let daemon = Daemon::start(&format!("AllowUserPorts: {port}\n"));
    let sources = format!(
        "deb [trusted=yes] http://{}/127.0.0.1:{port}/debian {SUITE} main",
        daemon.addr
    );
    check_cold_then_warm(&world, &daemon, &sources, || Access::Direct);
}

/// The world on a TLS mirror, and a daemon trusting its CA.
fn tls_world() -> (World, Daemon) {
    let ca = TestCa::new("apt test CA");
    let world = world_on(Origin::start_tls(ca.server(Leaf::Good)));
    let ca_file = ca.write(world._dir.path(), "ca.pem");
    let daemon = Daemon::start(&format!(
        "CAfile: {}\nAllowUserPorts: 80 {}\n",
        ca_file.display(),
        world.origin.addr().port()
    ));
    (world, daemon)
}

#[test]
fn apt_with_an_https_line_through_the_proxy_setting() {
    let (world, daemon) = tls_world();
    let sources = format!(
        "deb [trusted=yes] http://HTTPS///{}/debian {SUITE} main",
        world.origin.addr()
    );
    let proxy = format!("http://{}", daemon.addr);
    check_cold_then_warm(&world, &daemon, &sources, || Access::Proxy(proxy.clone()));
}

#[test]
fn apt_with_an_https_line_in_path_style() {
    let (world, daemon) = tls_world();
    let sources = format!(
        "deb [trusted=yes] http://{}/HTTPS///{}/debian {SUITE} main",
        daemon.addr,
        world.origin.addr()
    );
    check_cold_then_warm(&world, &daemon, &sources, || Access::Direct);
}

#[test]
fn apt_through_a_remap_alias_and_its_transfer_log() {
    let world = world();
    // The golden warm run serves the Release without asking the mirror:
    // still fresh, however slow the machine is between the two runs.
    let mut daemon = Daemon::start(&format!(
        "Remap-synth: /synth ; {}\nFreshIndexMaxAge: 3600\n",
        world.origin.url("/debian")
    ));
    let sources = format!("deb [trusted=yes] http://{}/synth {SUITE} main", daemon.addr);
    check_cold_then_warm(&world, &daemon, &sources, || Access::Direct);
    assert!(daemon.stop().unwrap().success());

    // Golden records, byte counts aside: the cold run fetches (I) and serves
    // (O) each file, the 404s of the unsigned suite are errors, the warm run
    // only serves.
    let log: Vec<String> = daemon
        .transfer_log()
        .iter()
        .map(|l| {
            let mut f = l.splitn(3, '|');
            let (kind, bytes, rest) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            assert!(bytes.parse::<u64>().unwrap() > 0, "{l}");
            format!("{kind}|{rest}")
        })
        .collect();
    let c = "127.0.0.1";
    let dists = format!("synth/dists/{SUITE}");
    let mut cold = vec![
        format!("I|{c}|{dists}/InRelease"),
        format!("E|{c}|{dists}/InRelease [HTTP error, code: 404]"),
        format!("I|{c}|{dists}/Release"),
        format!("O|{c}|{dists}/Release"),
        format!("I|{c}|{dists}/Release.gpg"),
        format!("E|{c}|{dists}/Release.gpg [HTTP error, code: 404]"),
        format!("I|{c}|{dists}/main/binary-all/Packages.xz"),
        format!("O|{c}|{dists}/main/binary-all/Packages.xz"),
    ];
    let mut warm = vec![
        format!("I|{c}|{dists}/InRelease"),
        format!("E|{c}|{dists}/InRelease [HTTP error, code: 404]"),
        format!("O|{c}|{dists}/Release"),
        format!("I|{c}|{dists}/Release.gpg"),
        format!("E|{c}|{dists}/Release.gpg [HTTP error, code: 404]"),
        format!("O|{c}|{dists}/main/binary-all/Packages.xz"),
    ];
    let mut debs: Vec<String> = world
        .names
        .iter()
        .map(|n| format!("synth{}", world.repo.deb_path(n)))
        .collect();
    debs.sort();
    for deb in &debs {
        cold.push(format!("I|{c}|{deb}"));
        cold.push(format!("O|{c}|{deb}"));
        warm.push(format!("O|{c}|{deb}"));
    }
    let (got_cold, got_warm) = log.split_at(log.len().min(cold.len()));
    assert_eq!(
        sorted_debs(got_cold, cold.len() - 2 * debs.len()),
        cold,
        "cold run"
    );
    assert_eq!(sorted_debs(got_warm, warm.len() - debs.len()), warm, "warm run");
}

/// apt downloads packages in its own order: sort the part after the
/// indexes, keeping each file's records together.
fn sorted_debs(lines: &[String], index_lines: usize) -> Vec<String> {
    let (indexes, debs) = lines.split_at(index_lines.min(lines.len()));
    let mut groups: Vec<Vec<String>> = Vec::new();
    for line in debs {
        let path = line.rsplit('|').next().unwrap_or("");
        match groups.last_mut() {
            Some(g) if g[0].rsplit('|').next() == Some(path) => g.push(line.clone()),
            _ => groups.push(vec![line.clone()]),
        }
    }
    groups.sort_by(|a, b| a[0].rsplit('|').next().cmp(&b[0].rsplit('|').next()));
    indexes
        .iter()
        .cloned()
        .chain(groups.into_iter().flatten())
        .collect()
}

#[test]
fn apt_with_an_unchanged_https_line_is_cached_by_interception() {
    let ca = TestCa::new("mirror CA");
    let world = world_on(Origin::start_tls(ca.server(Leaf::Good)));
    let mirror_ca = ca.write(world._dir.path(), "mirror-ca.pem");
    let port = world.origin.addr().port();
    let daemon = Daemon::start(&format!(
        "CAfile: {}\nAllowUserPorts: 80 {port}\nTlsInterceptDomains: 127.0.0.1\n",
        mirror_ca.display()
    ));
    // The client trusts debcache's CA, fetched from the daemon as the help
    // page says; not the mirror's.
    let ours = crate::support::http::get(daemon.addr, "/debcache-ca.crt");
    assert_eq!(ours.status, 200);
    let ca_file = world._dir.path().join("debcache-ca.pem");
    std::fs::write(&ca_file, &ours.body).unwrap();
    let sources = format!("deb [trusted=yes] https://127.0.0.1:{port}/debian {SUITE} main");
    let proxy = format!("http://{}", daemon.addr);
    check_cold_then_warm(&world, &daemon, &sources, || Access::HttpsProxy {
        proxy: proxy.clone(),
        ca_file: ca_file.clone(),
    });
    assert!(daemon
        .cache()
        .join(format!(
            "127.0.0.1/debian{}",
            world.repo.deb_path(&world.names[0])
        ))
        .exists());
    // The CA is limited to what it was made for (checked with openssl).
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(daemon.cache().join("_debcache/ca/ca.pem"))
        .output()
        .expect("openssl (the openssl package)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");
    assert!(text.contains("IP:127.0.0.1/255.255.255.255"), "{text}");
}
