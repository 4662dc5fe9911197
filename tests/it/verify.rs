//! Downloads verified against the cached indexes as they arrive: a mirror
//! sending a package file of the right size and the wrong bytes never gets
//! it served as complete. Streaming clients are cut before the last 64 KiB,
//! nothing is kept, the error log says why, and the next request is
//! answered by the next backend. A real apt sees a failed download, never
//! "Hash Sum mismatch".

use std::io::Read;
use std::time::Duration;

use crate::support::apt::{self, Access, Apt, Repo};
use crate::support::http::{get, sha256_hex, Conn};
use crate::support::origin::{Origin, LAST_MODIFIED};
use crate::support::{acng_head, data, put, wait_for, Daemon, Setup};

/// The daemon's checksum table has at least `n` files.
fn wait_for_checksums(daemon: &Daemon, n: u64) {
    wait_for("the indexes' checksums", || {
        let metrics = get(daemon.addr, "/metrics").text();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("debcache_index_checksums "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|have| have >= n)
    });
}

/// The bytes of `body` with one changed in the middle.
fn corrupt(body: &[u8]) -> Vec<u8> {
    let mut bad = body.to_vec();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    bad
}

/// A flat repository's index naming `pool/big.deb` with `body`'s size and
/// digest.
fn packages_for(body: &[u8]) -> String {
    format!(
        "Package: big\nVersion: 1.0\nArchitecture: all\nFilename: pool/big.deb\nSize: {}\nSHA256: {}\n",
        body.len(),
        sha256_hex(body)
    )
}

const INDEX: &str = "/dists/s/main/binary-all/Packages";

/// Reads one response to `GET target` to its end or its cut: the status,
/// the announced length and the body bytes that came.
fn fetch(daemon: &Daemon, target: &str) -> (u16, Option<usize>, Vec<u8>) {
    let mut conn = Conn::open(daemon.addr);
    conn.stream()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.send("GET", target, &[("Connection", "close")]);
    let head = conn.read_head().expect("a response head");
    let length = head.header("content-length").and_then(|v| v.parse().ok());
    let mut body = Vec::new();
    let _ = conn.stream().read_to_end(&mut body);
    (head.status, length, body)
}

#[test]
fn a_wrong_file_is_cut_short_and_the_next_backend_sends_the_right_one() {
    let good = data(600 * 1024);
    let bad = corrupt(&good);
    let (wrong, right) = (Origin::start(), Origin::start());
    for origin in [&wrong, &right] {
        origin.put(&format!("/d{INDEX}"), packages_for(&good));
    }
    wrong.put("/d/pool/big.deb", bad);
    right.put("/d/pool/big.deb", good.clone());
    let daemon = Daemon::start(&format!(
        "Remap-v: /v ; {} {}\n",
        wrong.url("/d"),
        right.url("/d")
    ));
    assert_eq!(get(daemon.addr, &format!("/v{INDEX}")).status, 200);
    wait_for_checksums(&daemon, 1);

    let (status, length, body) = fetch(&daemon, "/v/pool/big.deb");
    assert_eq!((status, length), (200, Some(good.len())));
    assert!(
        body.len() <= good.len() - 64 * 1024,
        "{} of {} bytes: the held-back end reached the client",
        body.len(),
        good.len()
    );
    assert_eq!(wrong.requests("/d/pool/big.deb"), 1);

    // The download went on to the second backend and kept its file.
    right.wait_requests("/d/pool/big.deb", 1);
    let again = get(daemon.addr, "/v/pool/big.deb");
    assert_eq!(again.status, 200);
    assert_eq!(sha256_hex(&again.body), sha256_hex(&good));
    assert_eq!(right.requests("/d/pool/big.deb"), 1, "the retry was a hit");
    assert_eq!(wrong.requests("/d/pool/big.deb"), 1);
    wait_for("the error log saying why", || {
        let log = daemon.stderr();
        log.contains("v/pool/big.deb") && log.contains("where its index says")
    });
}

#[test]
fn a_wrong_file_from_the_only_backend_is_not_kept() {
    let good = data(200 * 1024);
    let origin = Origin::start();
    origin.put(&format!("/d{INDEX}"), packages_for(&good));
    origin.put("/d/pool/big.deb", corrupt(&good));
    let daemon = Daemon::start(&format!("Remap-v: /v ; {}\n", origin.url("/d")));
    assert_eq!(get(daemon.addr, &format!("/v{INDEX}")).status, 200);
    wait_for_checksums(&daemon, 1);

    let (status, _, body) = fetch(&daemon, "/v/pool/big.deb");
    assert_eq!(status, 200);
    assert!(body.len() < good.len(), "cut short");
    let cached = daemon.cache().join("v/pool/big.deb");
    wait_for("the rejected file to go", || !cached.exists());
    assert!(!daemon.cache().join("v/pool/big.deb.head").exists());
    // Told at once to whoever asks before the flight is over; afterwards a
    // new download, which finds the mirror fixed.
    origin.put("/d/pool/big.deb", good.clone());
    wait_for("a good download", || {
        let r = get(daemon.addr, "/v/pool/big.deb");
        r.status == 200 && r.body == good
    });
    assert!(cached.exists());
}

#[test]
fn a_size_the_index_does_not_give_is_refused_before_any_byte() {
    let good = data(100 * 1024);
    let origin = Origin::start();
    origin.put(&format!("/d{INDEX}"), packages_for(&good));
    origin.put("/d/pool/big.deb", data(100 * 1024 + 1));
    let daemon = Daemon::start(&format!("Remap-v: /v ; {}\n", origin.url("/d")));
    assert_eq!(get(daemon.addr, &format!("/v{INDEX}")).status, 200);
    wait_for_checksums(&daemon, 1);
    let r = get(daemon.addr, "/v/pool/big.deb");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(!daemon.cache().join("v/pool/big.deb").exists());
}

#[test]
fn apt_sees_a_failed_download_and_never_a_hash_sum_mismatch() {
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let packages = apt::packages(2, 90_000, 120_000);
    let repo = Repo::build(&dir.path().join("v1"), "synth", &packages);
    for (path, bytes) in repo.files() {
        origin.put(&format!("/debian{path}"), bytes);
    }
    let daemon = Daemon::start(&format!("Remap-synth: /synth ; {}\n", origin.url("/debian")));
    let apt = Apt::new(
        &format!("deb [trusted=yes] http://{}/synth synth main", daemon.addr),
        Access::Direct,
    );
    apt.update().assert_success();
    wait_for_checksums(&daemon, 2);

    let name = packages[0].name.as_str();
    let deb = format!("/debian{}", repo.deb_path(name));
    let good = std::fs::read(repo.root.join(&repo.deb_path(name)[1..])).unwrap();
    origin.put(&deb, corrupt(&good));
    let out = apt.download(&[name]);
    assert!(!out.status.success(), "apt-get succeeded with a wrong file");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(!said.contains("Hash Sum mismatch"), "{said}");
    assert!(said.contains("Failed to fetch"), "{said}");

    origin.put(&deb, good);
    apt.download(&[name]).assert_success();
}

/// A cache holding the index for `good` and, as an earlier run left it,
/// the first `prefix` bytes of `partial` at `v/pool/big.deb`.
fn cache_with_partial(root: &std::path::Path, good: &[u8], partial: &[u8], prefix: usize) {
    let index = packages_for(good);
    put(root, &format!("v{INDEX}"), index.as_bytes());
    put(root, &format!("v{INDEX}.head"), acng_head(index.len()).as_bytes());
    put(root, "v/pool/big.deb", &partial[..prefix]);
    let head = format!(
        "HTTP/1.1 200 OK\r\nLast-Modified: {LAST_MODIFIED}\r\nX-Debcache-Expected-Length: {}\r\n\r\n",
        good.len()
    );
    put(root, "v/pool/big.deb.head", head.as_bytes());
}

#[test]
fn a_resumed_download_is_verified_from_its_first_byte_on_disk() {
    let good = data(300 * 1024);
    let origin = Origin::start();
    origin.put(&format!("/d{INDEX}"), packages_for(&good));
    origin.put("/d/pool/big.deb", good.clone());
    let conf = format!("Remap-v: /v ; {}\n", origin.url("/d"));
    let start = |cache: &std::path::Path| {
        let daemon = Daemon::start_with(Setup {
            conf: &conf,
            cache: Some(cache),
            ..Setup::default()
        });
        wait_for_checksums(&daemon, 1);
        daemon
    };

    // A good prefix: resumed with a Range request, and kept.
    let root = tempfile::tempdir().unwrap();
    cache_with_partial(root.path(), &good, &good, 100 * 1024);
    let daemon = start(root.path());
    let r = get(daemon.addr, "/v/pool/big.deb");
    assert_eq!(sha256_hex(&r.body), sha256_hex(&good));
    let asked = origin
        .seen()
        .into_iter()
        .rev()
        .find(|s| s.path == "/d/pool/big.deb")
        .unwrap();
    assert_eq!(asked.header("range"), Some("bytes=102400-"));
    drop(daemon);

    // A damaged prefix: the resumed file does not match, and goes.
    let root = tempfile::tempdir().unwrap();
    cache_with_partial(root.path(), &good, &corrupt(&good[..200 * 1024]), 100 * 1024);
    let daemon = start(root.path());
    let (status, _, body) = fetch(&daemon, "/v/pool/big.deb");
    assert_eq!(status, 200);
    assert!(body.len() < good.len());
    let r = get(daemon.addr, "/v/pool/big.deb");
    assert_eq!(
        (r.status, sha256_hex(&r.body)),
        (200, sha256_hex(&good)),
        "fetched again, whole"
    );
}
