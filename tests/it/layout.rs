//! The edges of apt-cacher-ng's cache layout, kept on purpose: one host's
//! ports share a directory, repository directories may be symlinks to
//! another disk, and a name the layout cannot hold is refused cleanly.

use std::path::{Path, PathBuf};

use crate::support::http::{sha256_hex, Conn};
use crate::support::origin::Origin;
use crate::support::{copy_tree, fixture, fixture_sums, wait_for, Daemon, Setup};

const PATH: &str = "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb";

/// Two mirrors on one host, the same path, different bytes.
fn two_ports() -> (Origin, Origin, String) {
    let (a, b) = (Origin::start(), Origin::start());
    a.put(PATH, b"from port a".to_vec());
    b.put(PATH, b"from port b".to_vec());
    let ports = format!("AllowUserPorts: {} {}\n", a.addr().port(), b.addr().port());
    (a, b, ports)
}

#[test]
fn ports_of_one_host_share_cache_entries_as_in_apt_cacher_ng() {
    let (a, b, ports) = two_ports();
    let daemon = Daemon::start(&ports);
    let mut c = Conn::open(daemon.addr);
    assert_eq!(c.get(&a.url(PATH), &[]).body, b"from port a");
    let r = c.get(&b.url(PATH), &[]);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"from port a"[..]),
        "the port is not part of the cache path (spec §6.1)"
    );
    assert_eq!((a.requests(PATH), b.requests(PATH)), (1, 0));
    assert_eq!(
        std::fs::read(daemon.cache().join(format!("127.0.0.1{PATH}"))).unwrap(),
        b"from port a"
    );
}

#[test]
fn a_remap_per_port_keeps_two_repositories_of_one_host_apart() {
    let (a, b, ports) = two_ports();
    // The README's remedy: the second port gets a repository of its own.
    let daemon = Daemon::start(&format!("{ports}Remap-portb: {}\n", b.url("/debian")));
    let mut c = Conn::open(daemon.addr);
    for _ in 0..2 {
        assert_eq!(c.get(&a.url(PATH), &[]).body, b"from port a");
        assert_eq!(c.get(&b.url(PATH), &[]).body, b"from port b");
    }
    assert_eq!((a.requests(PATH), b.requests(PATH)), (1, 1), "both cached");
    let rel = PATH.trim_start_matches("/debian/");
    assert_eq!(
        std::fs::read(daemon.cache().join("portb").join(rel)).unwrap(),
        b"from port b"
    );
    assert_eq!(
        std::fs::read(daemon.cache().join(format!("127.0.0.1{PATH}"))).unwrap(),
        b"from port a"
    );
}

/// A copy of the acng-written fixture cache in `root/cache` whose two
/// repository directories live in `root/<elsewhere>`, reached by symlinks:
/// `synth` absolute, `127.0.0.1` relative. Returns the cache directory.
fn linked_fixture(root: &Path, elsewhere: &str) -> PathBuf {
    let cache = root.join("cache");
    copy_tree(&fixture("acng-3.7.4-cache"), &cache);
    for (repo, link) in [
        ("synth", root.join(elsewhere).join("synth")),
        ("127.0.0.1", PathBuf::from(format!("../{elsewhere}/127.0.0.1"))),
    ] {
        copy_tree(&cache.join(repo), &root.join(elsewhere).join(repo));
        std::fs::remove_dir_all(cache.join(repo)).unwrap();
        std::os::unix::fs::symlink(link, cache.join(repo)).unwrap();
    }
    cache
}

/// Every file acng cached is served byte for byte through the links (the
/// daemon offline, as the acng that wrote them is gone), then a daemon
/// with a mirror stores new files, solid and volatile, through them.
fn serve_and_fill(root: &Path, elsewhere: &str) {
    let cache = linked_fixture(root, elsewhere);
    let daemon = Daemon::start_with(Setup {
        conf: "OfflineMode: 1\nRemap-synth: /synth ; http://127.0.0.1:28080/debian\n",
        cache: Some(&cache),
        ..Setup::default()
    });
    let mut c = Conn::open(daemon.addr);
    let sums = fixture_sums();
    assert_eq!(sums.len(), 8);
    for (sum, path) in &sums {
        let r = c.get(&format!("/{path}"), &[]);
        assert_eq!(r.status, 200, "{path}: {} {}", r.status, r.reason);
        assert_eq!(&sha256_hex(&r.body), sum, "{path}");
    }
    drop(daemon);

    let origin = Origin::start();
    let deb = "/debian/pool/main/n/new/new_1_all.deb";
    let index = "/debian/dists/other/InRelease";
    origin.put(deb, b"a new package".to_vec());
    origin.put(index, b"a new index".to_vec());
    let daemon = Daemon::start_with(Setup {
        conf: &format!(
            "AllowUserPorts: 80 {}\nRemap-synth: /synth ; {}\n",
            origin.addr().port(),
            origin.url("/debian")
        ),
        cache: Some(&cache),
        ..Setup::default()
    });
    let mut c = Conn::open(daemon.addr);
    let there = root.join(elsewhere);
    let landed = [
        (
            "/synth/pool/main/n/new/new_1_all.deb".to_string(),
            there.join("synth/pool/main/n/new/new_1_all.deb"),
        ),
        (
            "/synth/dists/other/InRelease".to_string(),
            there.join("synth/dists/other/InRelease"),
        ),
        (origin.url(deb), there.join(format!("127.0.0.1{deb}"))),
    ];
    for (url, file) in &landed {
        let r = c.get(url, &[]);
        assert_eq!(r.status, 200, "{url}");
        wait_for("the commit", || {
            file.with_extension(extension_head(file)).exists()
        });
        assert_eq!(
            std::fs::read(file).unwrap(),
            r.body,
            "{url} stored through the link"
        );
    }
    for repo in ["synth", "127.0.0.1"] {
        assert!(cache.join(repo).is_symlink(), "{repo} is still a link");
    }
    assert_eq!(std::fs::read_dir(cache.join("_debcache/tmp")).unwrap().count(), 0);
}

/// `InRelease` → `InRelease.head`, `x.deb` → `x.deb.head`.
fn extension_head(file: &Path) -> String {
    match file.extension() {
        Some(e) => format!("{}.head", e.to_string_lossy()),
        None => "head".to_string(),
    }
}

#[test]
fn a_repository_directory_that_is_a_symlink_is_served_and_filled_through_it() {
    let root = tempfile::tempdir().unwrap();
    serve_and_fill(root.path(), "big");
}

#[test]
fn a_repository_symlink_to_another_file_system_is_served_and_filled_through_it() {
    let root = tempfile::tempdir().unwrap();
    let Some(_mounted) = crate::support::Tmpfs::mount(&root.path().join("disk"), "16m") else {
        return;
    };
    serve_and_fill(root.path(), "disk");
}

#[test]
fn a_path_below_a_cached_file_is_403_not_a_cache_write_error() {
    let origin = Origin::start();
    for path in [
        "/debian/pool/a.deb",
        "/debian/pool/a.deb/x.deb",
        "/debian/pool/dir.deb/inner.deb",
        "/debian/pool/dir.deb",
    ] {
        origin.put(path, path.as_bytes().to_vec());
    }
    let daemon = Daemon::start(&format!("Remap-m: /m ; {}\n", origin.url("/debian")));
    let mut c = Conn::open(daemon.addr);
    assert_eq!(c.get("/m/pool/a.deb", &[]).status, 200);
    assert_eq!(c.get("/m/pool/dir.deb/inner.deb", &[]).status, 200);
    for (url, path) in [
        ("/m/pool/a.deb/x.deb", "/debian/pool/a.deb/x.deb"),
        ("/m/pool/dir.deb", "/debian/pool/dir.deb"),
    ] {
        let r = c.get(url, &[]);
        assert_eq!(
            (r.status, r.reason.as_str()),
            (403, "Forbidden file type or location"),
            "{url}"
        );
        assert_eq!(origin.requests(path), 0, "{url}: nothing asked upstream");
    }
    assert_eq!(c.get("/m/pool/a.deb", &[]).body, b"/debian/pool/a.deb");
    assert!(
        !daemon.stderr().contains("ERROR"),
        "a layout conflict is not an internal error:\n{}",
        daemon.stderr()
    );
}
