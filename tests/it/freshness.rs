//! Volatile files: served without asking within `FreshIndexMaxAge`,
//! revalidated with conditional requests after it, replaced atomically when
//! they changed, and a new Release making its whole suite stale at once.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::support::http::{self, Conn};
use crate::support::origin::{etag_of, Fault, Origin};
use crate::support::Daemon;

const IN_RELEASE: &str = "/debian/dists/synth/InRelease";
const PACKAGES: &str = "/debian/dists/synth/main/binary-all/Packages.xz";

fn daemon(origin: &Origin, fresh: u32) -> Daemon {
    Daemon::start(&format!(
        "Remap-m: /m ; {}\nFreshIndexMaxAge: {fresh}\n",
        origin.url("/debian")
    ))
}

fn url(path: &str) -> String {
    path.replace("/debian/", "/m/")
}

/// Gets a file and waits until its download is committed: a request that
/// arrives while the download finishes is served by it, not revalidated.
fn get_committed(c: &mut Conn, daemon: &Daemon, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let body = c.get(&url(path), headers).body;
    let sidecar = daemon
        .cache()
        .join(format!("{}.head", url(path).trim_start_matches('/')));
    let want = format!("Content-Length: {}\r\n", body.len());
    for _ in 0..2000 {
        if std::fs::read_to_string(&sidecar).is_ok_and(|h| h.contains(&want)) {
            return body;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!("{path} was not committed");
}

#[test]
fn inside_the_window_nothing_is_asked_upstream() {
    let origin = Origin::start();
    origin.put(IN_RELEASE, b"release v1".to_vec());
    let daemon = daemon(&origin, 3600);
    let mut c = Conn::open(daemon.addr);
    for _ in 0..3 {
        assert_eq!(
            c.get(&url(IN_RELEASE), &[("Cache-Control", "max-age=0")]).body,
            b"release v1"
        );
    }
    assert_eq!(
        origin.requests(IN_RELEASE),
        1,
        "apt's max-age=0 does not force a revalidation"
    );
}

#[test]
fn after_the_window_one_conditional_request_keeps_or_replaces_the_file() {
    let origin = Origin::start();
    origin.put(IN_RELEASE, b"release v1".to_vec());
    let daemon = daemon(&origin, 0);
    let mut c = Conn::open(daemon.addr);
    assert_eq!(get_committed(&mut c, &daemon, IN_RELEASE, &[]), b"release v1");
    assert_eq!(c.get(&url(IN_RELEASE), &[]).body, b"release v1");
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].header("if-none-match"),
        Some(etag_of(b"release v1").as_str()),
        "a conditional request"
    );
    origin.put(IN_RELEASE, b"release v2, longer".to_vec());
    assert_eq!(
        get_committed(&mut c, &daemon, IN_RELEASE, &[]),
        b"release v2, longer"
    );
    let on_disk = daemon.cache().join("m/dists/synth/InRelease");
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"release v2, longer");
    let head = std::fs::read_to_string(on_disk.with_file_name("InRelease.head")).unwrap();
    assert!(head.contains("Content-Length: 18"), "{head}");
    assert_eq!(
        std::fs::read_dir(daemon.cache().join("_debcache/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_new_release_makes_the_suite_stale_at_once() {
    let origin = Origin::start();
    origin.put(IN_RELEASE, b"release v1".to_vec());
    origin.put(PACKAGES, b"packages v1".to_vec());
    let daemon = daemon(&origin, 3600);
    let mut c = Conn::open(daemon.addr);
    assert_eq!(get_committed(&mut c, &daemon, IN_RELEASE, &[]), b"release v1");
    assert_eq!(get_committed(&mut c, &daemon, PACKAGES, &[]), b"packages v1");
    origin.put(IN_RELEASE, b"release v2".to_vec());
    origin.put(PACKAGES, b"packages v2".to_vec());
    assert_eq!(c.get(&url(PACKAGES), &[]).body, b"packages v1", "still fresh");
    // The client insists on a current Release (apt update after a while).
    assert_eq!(
        c.get(&url(IN_RELEASE), &[("Cache-Control", "no-cache")]).body,
        b"release v2"
    );
    assert_eq!(
        c.get(&url(PACKAGES), &[]).body,
        b"packages v2",
        "never the old Packages with the new Release"
    );
    assert_eq!(origin.requests(PACKAGES), 2);
}

#[test]
fn no_cache_revalidates_even_package_files() {
    let origin = Origin::start();
    let deb = "/debian/pool/main/a/a_1_all.deb";
    origin.put(deb, b"deb v1".to_vec());
    let daemon = daemon(&origin, 3600);
    let mut c = Conn::open(daemon.addr);
    assert_eq!(get_committed(&mut c, &daemon, deb, &[]), b"deb v1");
    assert_eq!(c.get(&url(deb), &[]).body, b"deb v1");
    assert_eq!(origin.requests(deb), 1, "solid files are not revalidated");
    origin.put(deb, b"deb v2 (republished)".to_vec());
    assert_eq!(
        c.get(&url(deb), &[("Cache-Control", "no-cache")]).body,
        b"deb v2 (republished)"
    );
    assert_eq!(
        origin.seen()[1].header("if-none-match"),
        Some(etag_of(b"deb v1").as_str())
    );
}

#[test]
fn revalidations_of_one_file_share_one_request() {
    let origin = Origin::start();
    origin.put(IN_RELEASE, b"release v1".to_vec());
    let daemon = daemon(&origin, 0);
    assert_eq!(
        get_committed(&mut Conn::open(daemon.addr), &daemon, IN_RELEASE, &[]),
        b"release v1"
    );
    origin.put(IN_RELEASE, b"release v2".to_vec());
    let gate = origin.fault(IN_RELEASE, Fault::PauseAt(0), 1).unwrap();
    let (tx, rx) = mpsc::channel();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let tx = tx.clone();
            let addr = daemon.addr;
            thread::spawn(move || {
                let mut c = Conn::open(addr);
                c.send("GET", &url(IN_RELEASE), &[]);
                let head = c.read_head().unwrap();
                tx.send(()).unwrap();
                let len: usize = head.header("content-length").unwrap().parse().unwrap();
                c.read_body(len).unwrap()
            })
        })
        .collect();
    for _ in 0..8 {
        rx.recv_timeout(Duration::from_secs(60)).unwrap();
    }
    gate.release();
    for c in clients {
        assert_eq!(c.join().unwrap(), b"release v2");
    }
    assert_eq!(
        origin.requests(IN_RELEASE),
        2,
        "one download, one revalidation for eight clients"
    );
}

#[test]
fn an_unreachable_mirror_leaves_the_cached_index_in_service() {
    let origin = Origin::start();
    origin.put(IN_RELEASE, b"release v1".to_vec());
    let daemon = daemon(&origin, 0);
    assert_eq!(
        get_committed(&mut Conn::open(daemon.addr), &daemon, IN_RELEASE, &[]),
        b"release v1"
    );
    drop(origin);
    let r = http::get(daemon.addr, &url(IN_RELEASE));
    assert_eq!((r.status, r.body.as_slice()), (200, &b"release v1"[..]));
    // HEAD of a complete file is answered from its .head, upstream or not.
    let mut c = Conn::open(daemon.addr);
    c.send("HEAD", &url(IN_RELEASE), &[]);
    assert_eq!(c.read(true).unwrap().header("content-length"), Some("10"));
}

#[test]
fn a_failed_revalidation_is_not_repeated_by_every_client_within_the_window() {
    let origin = Origin::start();
    origin.put(IN_RELEASE, b"release v1".to_vec());
    origin.put(PACKAGES, b"packages v1".to_vec());
    let daemon = daemon(&origin, 600);
    let mut c = Conn::open(daemon.addr);
    get_committed(&mut c, &daemon, IN_RELEASE, &[]);
    get_committed(&mut c, &daemon, PACKAGES, &[]);
    // A new Release makes the suite's Packages stale, and the mirror then
    // fails to answer for it.
    origin.put(IN_RELEASE, b"release v2".to_vec());
    get_committed(&mut c, &daemon, IN_RELEASE, &[("Cache-Control", "no-cache")]);
    origin.fault(PACKAGES, Fault::Status(503), 1000);
    for _ in 0..3 {
        let r = c.get(&url(PACKAGES), &[]);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"packages v1"[..]),
            "the cached copy"
        );
    }
    assert_eq!(
        origin.requests(PACKAGES),
        2,
        "one download, one failed revalidation; the next clients are not made to wait for it"
    );
}
