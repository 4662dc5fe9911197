//! The download path: one upstream transfer per file however many clients
//! wait, streamed to all of them as it arrives; cut connections resumed,
//! restarts never served as clean short bodies, crashes never leaving a file
//! that passes for complete.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::support::http::{sha256_hex, Conn};
use crate::support::origin::{etag_of, Fault, Origin};
use crate::support::{data, wait_for, Daemon, Setup};

const MB: usize = 1 << 20;
const PATH: &str = "/debian/pool/main/b/big/big_1.0_all.deb";
const URL: &str = "/m/pool/main/b/big/big_1.0_all.deb";

fn remap(origin: &Origin) -> String {
    format!("Remap-m: /m ; {}\n", origin.url("/debian"))
}

/// A client that reports when it has the headers, then reads the body.
/// Returns the status and the body bytes it got before the end or a cut.
fn client(
    addr: std::net::SocketAddr,
    headers_seen: mpsc::Sender<()>,
) -> thread::JoinHandle<(u16, Vec<u8>, usize)> {
    thread::spawn(move || {
        let mut c = Conn::open(addr);
        c.send("GET", URL, &[]);
        let head = c.read_head().expect("headers");
        let _ = headers_seen.send(());
        let len: usize = head
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = c.read_body(len).unwrap_or_default();
        (head.status, body, len)
    })
}

#[test]
fn thirty_two_clients_cause_one_upstream_download() {
    let origin = Origin::start();
    let file = data(50 * MB);
    origin.put(PATH, file.clone());
    let gate = origin.fault(PATH, Fault::PauseAt(0), 1).unwrap();
    let daemon = Daemon::start(&remap(&origin));
    let (tx, rx) = mpsc::channel();
    let clients: Vec<_> = (0..32).map(|_| client(daemon.addr, tx.clone())).collect();
    for _ in 0..32 {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("every client gets headers at 0 %");
    }
    gate.release();
    let want = sha256_hex(&file);
    for c in clients {
        let (status, body, len) = c.join().unwrap();
        assert_eq!((status, len, body.len()), (200, file.len(), file.len()));
        assert_eq!(sha256_hex(&body), want);
    }
    assert_eq!(origin.requests(PATH), 1, "exactly one request upstream");
}

#[test]
fn clients_joining_midway_and_after_completion_get_the_whole_file() {
    let origin = Origin::start();
    let file = data(50 * MB);
    origin.put(PATH, file.clone());
    let gate = origin.fault(PATH, Fault::PauseAt(25 * MB as u64), 1).unwrap();
    let daemon = Daemon::start(&remap(&origin));
    let (tx, rx) = mpsc::channel();
    let first = client(daemon.addr, tx.clone());
    gate.wait_reached();
    let midway = client(daemon.addr, tx.clone());
    rx.recv_timeout(Duration::from_secs(60)).unwrap();
    rx.recv_timeout(Duration::from_secs(60)).unwrap();
    gate.release();
    for c in [first, midway] {
        let (status, body, _) = c.join().unwrap();
        assert_eq!(status, 200);
        assert_eq!(sha256_hex(&body), sha256_hex(&file));
    }
    let after = client(daemon.addr, tx).join().unwrap();
    assert_eq!(sha256_hex(&after.1), sha256_hex(&file));
    assert_eq!(origin.requests(PATH), 1);
}

#[test]
fn a_cut_connection_is_resumed_and_clients_notice_nothing() {
    let origin = Origin::start();
    let file = data(8 * MB);
    origin.put(PATH, file.clone());
    origin.fault(PATH, Fault::CutAt(3 * MB as u64), 1);
    let daemon = Daemon::start(&remap(&origin));
    let r = Conn::open(daemon.addr).get(URL, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(sha256_hex(&r.body), sha256_hex(&file));
    let seen: Vec<_> = origin.seen().into_iter().filter(|s| s.path == PATH).collect();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].header("range"),
        Some(format!("bytes={}-", 3 * MB).as_str())
    );
    assert_eq!(seen[1].header("if-range"), Some(etag_of(&file).as_str()));
    // Complete on disk: served again without asking upstream.
    assert_eq!(
        sha256_hex(&Conn::open(daemon.addr).get(URL, &[]).body),
        sha256_hex(&file)
    );
    assert_eq!(origin.requests(PATH), 2);
}

#[test]
fn a_full_answer_to_a_resume_restarts_and_aborts_clients_that_had_bytes() {
    let origin = Origin::start();
    let file = data(8 * MB);
    origin.put(PATH, file.clone());
    let gate = origin.fault(PATH, Fault::PauseAt(2 * MB as u64), 1).unwrap();
    origin.fault(PATH, Fault::CutAt(3 * MB as u64), 1);
    origin.fault(PATH, Fault::IgnoreRange, 1);
    let daemon = Daemon::start(&remap(&origin));
    let mut early = Conn::open(daemon.addr);
    early.send("GET", URL, &[]);
    let head = early.read_head().unwrap();
    assert_eq!(head.status, 200);
    let first_bytes = early.read_body(MB).unwrap();
    assert_eq!(
        first_bytes,
        &file[..MB],
        "the early client has bytes of the first attempt"
    );
    gate.release();
    origin.wait_requests(PATH, 2);
    let rest = early.read_body(file.len()).unwrap_or_default();
    assert!(
        MB + rest.len() < file.len(),
        "the early client is cut off, never handed a clean short body"
    );
    assert_eq!(&rest[..], &file[MB..MB + rest.len()], "and what it got was right");
    let later = Conn::open(daemon.addr).get(URL, &[]);
    assert_eq!(
        sha256_hex(&later.body),
        sha256_hex(&file),
        "a later client gets the whole file"
    );
}

#[test]
fn a_daemon_killed_mid_download_leaves_a_partial_file_that_is_resumed() {
    let origin = Origin::start();
    let file = data(20 * MB);
    origin.put(PATH, file.clone());
    let gate = origin.fault(PATH, Fault::PauseAt(8 * MB as u64), 1).unwrap();
    let cache_root = tempfile::tempdir().unwrap();
    let cache = cache_root.path().join("cache");
    let data_file = cache.join("m/pool/main/b/big/big_1.0_all.deb");
    let conf = remap(&origin);
    let mut first = Daemon::start_with(Setup {
        conf: &conf,
        cache: Some(&cache),
        ..Setup::default()
    });
    let mut c = Conn::open(first.addr);
    c.send("GET", URL, &[]);
    gate.wait_reached();
    wait_for("8 MB on disk", || {
        std::fs::metadata(&data_file).map(|m| m.len()).unwrap_or(0) == 8 * MB as u64
    });
    first.signal(libc::SIGKILL);
    first.wait(Duration::from_secs(20)).expect("killed");
    gate.release();
    let head = std::fs::read_to_string(cache.join("m/pool/main/b/big/big_1.0_all.deb.head")).unwrap();
    assert!(
        !head.contains("Content-Length"),
        "a partial file never says it is complete: {head}"
    );

    let offline = Daemon::start_with(Setup {
        conf: &format!("{conf}OfflineMode: 1\n"),
        cache: Some(&cache),
        ..Setup::default()
    });
    assert_eq!(
        Conn::open(offline.addr).get(URL, &[]).status,
        503,
        "not served as complete"
    );
    drop(offline);

    let second = Daemon::start_with(Setup {
        conf: &conf,
        cache: Some(&cache),
        ..Setup::default()
    });
    let r = Conn::open(second.addr).get(URL, &[]);
    assert_eq!(sha256_hex(&r.body), sha256_hex(&file));
    let last = origin.seen().into_iter().rev().find(|s| s.path == PATH).unwrap();
    assert_eq!(
        last.header("range"),
        Some(format!("bytes={}-", 8 * MB).as_str()),
        "resumed, not refetched"
    );
}

#[test]
fn a_dead_first_backend_fails_over_to_the_next() {
    let origin = Origin::start();
    origin.put(PATH, data(1000));
    let conf = format!(
        "Remap-m: /m ; http://127.0.0.1:1/debian {}\n",
        origin.url("/debian")
    );
    let daemon = Daemon::start(&conf);
    let r = Conn::open(daemon.addr).get(URL, &[]);
    assert_eq!((r.status, r.body.len()), (200, 1000));
    wait_for("the avoidance log line", || {
        daemon.stderr().contains("avoiding 127.0.0.1:1")
    });
}

#[test]
fn a_full_disk_is_503_and_nothing_is_marked_complete() {
    let root = tempfile::tempdir().unwrap();
    let mount = root.path().join("small");
    let Some(_mounted) = crate::support::Tmpfs::mount(&mount, "1m") else {
        return;
    };
    let origin = Origin::start();
    origin.put(PATH, data(3 * MB));
    let cache = mount.join("cache");
    let daemon = Daemon::start_with(Setup {
        conf: &remap(&origin),
        cache: Some(&cache),
        ..Setup::default()
    });
    let mut c = Conn::open(daemon.addr);
    c.send("GET", URL, &[]);
    let head = c.read_head().unwrap();
    if head.status == 200 {
        let len: usize = head.header("content-length").unwrap().parse().unwrap();
        let got = c.read_body(len).unwrap_or_default();
        assert!(
            got.len() < len,
            "a body that cannot be stored is cut, not completed"
        );
    } else {
        assert_eq!((head.status, head.reason.as_str()), (503, "Cache disk full"));
    }
    let sidecar =
        std::fs::read_to_string(cache.join("m/pool/main/b/big/big_1.0_all.deb.head")).unwrap_or_default();
    assert!(!sidecar.contains("Content-Length"), "{sidecar}");
    drop(daemon);
}

#[test]
fn a_cut_index_file_is_fetched_again_whole_never_resumed() {
    let origin = Origin::start();
    let index = data(2 * MB);
    origin.put("/debian/dists/x/main/binary-all/Packages.xz", index.clone());
    origin.fault(
        "/debian/dists/x/main/binary-all/Packages.xz",
        Fault::CutAt(MB as u64),
        1,
    );
    let daemon = Daemon::start(&remap(&origin));
    let mut c = Conn::open(daemon.addr);
    c.send("GET", "/m/dists/x/main/binary-all/Packages.xz", &[]);
    let head = c.read_head().unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(index.len().to_string().as_str()),
        "the whole length is announced, never the length of a cut"
    );
    let got = c.read_body(index.len()).unwrap_or_default();
    if got.len() == index.len() {
        assert_eq!(sha256_hex(&got), sha256_hex(&index));
    } else {
        // A client that had bytes of the cut attempt is cut too: its
        // connection ends short of the announced length.
        assert_eq!(&got[..], &index[..got.len()]);
        assert_eq!(c.read_body(1).unwrap_or_default(), b"", "closed, not kept alive");
    }
    let seen: Vec<_> = origin
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("Packages.xz"))
        .collect();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("range"), None, "volatile files are never resumed");
    let again = Conn::open(daemon.addr).get("/m/dists/x/main/binary-all/Packages.xz", &[]);
    assert_eq!(sha256_hex(&again.body), sha256_hex(&index));
}

#[test]
fn unfinished_downloads_of_an_earlier_run_are_swept_at_start() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    crate::support::put(&cache, "_debcache/tmp/.~debcache.1.0", b"half an index");
    let daemon = Daemon::start_with(Setup {
        cache: Some(&cache),
        ..Setup::default()
    });
    assert_eq!(
        std::fs::read_dir(cache.join("_debcache/tmp")).unwrap().count(),
        0,
        "{}",
        daemon.stderr()
    );
}

#[test]
fn stored_files_and_directories_get_the_configured_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let origin = Origin::start();
    origin.put(PATH, data(1000));
    let daemon = Daemon::start(&format!("{}DirPerms: 750\nFilePerms: 640\n", remap(&origin)));
    assert_eq!(Conn::open(daemon.addr).get(URL, &[]).body.len(), 1000);
    let mode = |p: &str| {
        std::fs::metadata(daemon.cache().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    wait_for("the sidecar", || {
        daemon
            .cache()
            .join("m/pool/main/b/big/big_1.0_all.deb.head")
            .exists()
    });
    assert_eq!(mode("m/pool/main/b/big/big_1.0_all.deb"), 0o640);
    assert_eq!(mode("m/pool/main/b/big/big_1.0_all.deb.head"), 0o640);
    assert_eq!(mode("m/pool/main/b"), 0o750);
}

#[test]
fn pipelined_misses_download_together_not_one_after_the_other() {
    let origin = Origin::start();
    let files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| (format!("/debian/pool/p{i}.deb"), data(300_000 + i)))
        .collect();
    for (path, bytes) in &files {
        origin.put(path, bytes.clone());
    }
    // The first answer is held back until every other file was asked for.
    let gate = origin.fault(&files[0].0, Fault::PauseAt(0), 1).unwrap();
    let mut daemon = Daemon::start(&remap(&origin));
    let mut c = Conn::open(daemon.addr);
    let burst: String = files
        .iter()
        .map(|(p, _)| crate::support::http::request("GET", &p.replace("/debian/", "/m/"), &[]))
        .collect();
    c.send_raw(burst.as_bytes());
    for (path, _) in &files[1..] {
        origin.wait_requests(path, 1);
    }
    gate.release();
    for (path, bytes) in &files {
        let r = c.read(false).unwrap();
        assert_eq!(sha256_hex(&r.body), sha256_hex(bytes), "{path}, in order");
    }
    drop(c);
    assert!(daemon.stop().unwrap().success());
    let log = daemon.transfer_log();
    let kinds: Vec<&str> = log.iter().map(|l| &l[..1]).collect();
    assert_eq!(kinds, ["I", "O", "I", "O", "I", "O", "I", "O"], "{log:#?}");
}

#[test]
fn a_range_of_bytes_not_yet_downloaded_waits_for_them_and_gets_206() {
    let origin = Origin::start();
    let file = data(8 * MB);
    origin.put(PATH, file.clone());
    let gate = origin.fault(PATH, Fault::PauseAt(MB as u64), 1).unwrap();
    let daemon = Daemon::start(&remap(&origin));
    let mut first = Conn::open(daemon.addr);
    first.send("GET", URL, &[]);
    gate.wait_reached();
    let (tx, rx) = mpsc::channel();
    let ranged = thread::spawn({
        let addr = daemon.addr;
        move || {
            let mut c = Conn::open(addr);
            c.send("GET", URL, &[("Range", "bytes=6000000-6000099")]);
            let head = c.read_head().unwrap();
            tx.send((head.status, head.header("content-range").map(str::to_string)))
                .unwrap();
            c.read_body(100).unwrap()
        }
    });
    // The headers come while the bytes are still on their way.
    let (status, range) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(
        (status, range.as_deref()),
        (206, Some("bytes 6000000-6000099/8388608"))
    );
    gate.release();
    assert_eq!(ranged.join().unwrap(), &file[6_000_000..6_000_100]);
    assert_eq!(first.read(false).unwrap().body.len(), file.len());
    assert_eq!(origin.requests(PATH), 1);
}

#[test]
fn a_client_that_leaves_does_not_stop_the_download() {
    let origin = Origin::start();
    let file = data(8 * MB);
    origin.put(PATH, file.clone());
    let gate = origin.fault(PATH, Fault::PauseAt(MB as u64), 1).unwrap();
    let daemon = Daemon::start(&remap(&origin));
    let mut leaver = Conn::open(daemon.addr);
    leaver.send("GET", URL, &[]);
    assert_eq!(leaver.read_head().unwrap().status, 200);
    gate.wait_reached();
    drop(leaver);
    gate.release();
    let sidecar = daemon.cache().join("m/pool/main/b/big/big_1.0_all.deb.head");
    wait_for("the download to complete", || {
        std::fs::read_to_string(&sidecar)
            .is_ok_and(|h| h.contains(&format!("Content-Length: {}", file.len())))
    });
    assert_eq!(
        sha256_hex(&Conn::open(daemon.addr).get(URL, &[]).body),
        sha256_hex(&file)
    );
    assert_eq!(origin.requests(PATH), 1);
}

#[test]
fn a_stalled_mirror_is_resumed_after_the_network_timeout() {
    let origin = Origin::start();
    let file = data(4 * MB);
    origin.put(PATH, file.clone());
    // Never released: the first response stalls for good after 1 MB.
    let _gate = origin.fault(PATH, Fault::PauseAt(MB as u64), 1).unwrap();
    let daemon = Daemon::start(&format!("{}NetworkTimeout: 5\n", remap(&origin)));
    let r = Conn::open(daemon.addr).get(URL, &[]);
    assert_eq!(sha256_hex(&r.body), sha256_hex(&file));
    let last = origin.seen().into_iter().rev().find(|s| s.path == PATH).unwrap();
    assert!(
        last.header("range").is_some_and(|r| r.starts_with("bytes=")),
        "resumed where it stalled"
    );
}

#[test]
fn a_resume_that_does_not_fit_the_file_starts_over() {
    // A mirror that answers If-Range with the same tag for a different file
    // (the "mixed stale and fresh index" failure of spec §14 #8): the total
    // in Content-Range gives it away.
    let origin = Origin::start();
    let old = data(4 * MB);
    let new: Vec<u8> = data(5 * MB).into_iter().map(|b| b ^ 0x5a).collect();
    let meta = || crate::support::origin::Meta {
        etag: Some("\"same-tag\"".into()),
        ..Default::default()
    };
    origin.put_with(PATH, old.clone(), meta());
    let gate = origin.fault(PATH, Fault::PauseAt(MB as u64), 1).unwrap();
    origin.fault(PATH, Fault::CutAt(2 * MB as u64), 1);
    let daemon = Daemon::start(&remap(&origin));
    let mut early = Conn::open(daemon.addr);
    early.send("GET", URL, &[]);
    gate.wait_reached();
    origin.put_with(PATH, new.clone(), meta());
    gate.release();
    let head = early.read_head().unwrap();
    let got = early
        .read_body(head.header("content-length").unwrap().parse().unwrap())
        .unwrap_or_default();
    assert!(got.len() < old.len(), "the client of the old file is cut");
    assert_eq!(&got[..], &old[..got.len()]);
    let seen: Vec<_> = origin.seen().into_iter().filter(|s| s.path == PATH).collect();
    assert!(
        seen.len() >= 3,
        "cut, a resume refused, a full download: {seen:#?}"
    );
    let later = Conn::open(daemon.addr).get(URL, &[]);
    assert_eq!(
        sha256_hex(&later.body),
        sha256_hex(&new),
        "never a mix of the two"
    );
}

#[test]
fn a_repository_on_another_file_system_still_gets_atomic_index_files() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    let repo = cache.join("m");
    let Some(_mounted) = crate::support::Tmpfs::mount(&repo, "16m") else {
        return;
    };
    let origin = Origin::start();
    origin.put("/debian/dists/x/InRelease", b"release on another device".to_vec());
    let daemon = Daemon::start_with(Setup {
        conf: &remap(&origin),
        cache: Some(&cache),
        ..Setup::default()
    });
    let r = Conn::open(daemon.addr).get("/m/dists/x/InRelease", &[]);
    assert_eq!(r.body, b"release on another device");
    wait_for("the commit", || repo.join("dists/x/InRelease.head").exists());
    assert_eq!(
        std::fs::read(repo.join("dists/x/InRelease")).unwrap(),
        b"release on another device"
    );
    assert_eq!(std::fs::read_dir(cache.join("_debcache/tmp")).unwrap().count(), 0);
    drop(daemon);
}

#[test]
fn a_304_from_a_download_in_progress_has_no_content_length() {
    let origin = Origin::start();
    origin.put(PATH, data(MB));
    // Held at half the file until the answer is checked.
    let gate = origin.fault(PATH, Fault::PauseAt(MB as u64 / 2), 1).unwrap();
    let daemon = Daemon::start(&remap(&origin));
    let mut c = Conn::open(daemon.addr);
    let r = c.get(
        URL,
        &[("If-Modified-Since", crate::support::origin::LAST_MODIFIED)],
    );
    assert_eq!(r.status, 304);
    assert_eq!(r.header("content-length"), None, "RFC 9110 §8.6");
    gate.release();
    // The connection is still in step: the next answer is whole.
    assert_eq!(c.get(URL, &[]).body.len(), MB);
}

/// A client of a download that fails: each response ends, by a cut or an
/// error status, within the stated bound; never by the client's own patience.
fn read_until_the_end(addr: std::net::SocketAddr, target: &str, bound: Duration) -> (u16, usize) {
    let mut c = Conn::open(addr);
    c.stream().set_read_timeout(Some(bound)).unwrap();
    c.send("GET", target, &[]);
    let head = match c.read_head() {
        Ok(head) => head,
        Err(e) => panic!("no answer within {bound:?}: {e}"),
    };
    let mut got = 0;
    loop {
        match c.read_body(64 * 1024) {
            Ok(bytes) if bytes.is_empty() => return (head.status, got),
            Ok(bytes) => got += bytes.len(),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the response was still open after {bound:?}, {got} bytes in")
            }
            Err(_) => return (head.status, got),
        }
    }
}

/// How many downloads the daemon gave up so far.
fn given_up(daemon: &Daemon) -> usize {
    daemon.stderr().matches("gave up after").count()
}

/// The bound of the README, with a margin for a busy machine.
fn bound(network_timeout: u64, dl_max_retries: u32) -> Duration {
    debcache::cache::longest_wait(Duration::from_secs(network_timeout), dl_max_retries, 1)
        + Duration::from_secs(10)
}

#[test]
fn retry_storm_a_mirror_that_keeps_cutting_a_file_short_is_asked_dl_max_retries_plus_one_times() {
    // The reproduction of the report: 300,000 bytes announced, 100,000 sent,
    // and every resume answered from the start.
    let origin = Origin::start();
    let file = data(300_000);
    origin.put(PATH, file.clone());
    origin.fault(PATH, Fault::CutAt(100_000), 1000);
    origin.fault(PATH, Fault::IgnoreRange, 1000);
    let daemon = Daemon::start(&format!("{}DlMaxRetries: 2\n", remap(&origin)));
    let (status, got) = read_until_the_end(daemon.addr, URL, bound(17, 2));
    assert_eq!(status, 200);
    assert!(got < file.len(), "cut, never complete: {got}");
    wait_for("the download to be given up", || given_up(&daemon) == 1);
    assert_eq!(origin.requests(PATH), 3, "DlMaxRetries + 1 attempts, then none");
    // Only a client asking again starts a new download, with a new budget.
    let (_, got) = read_until_the_end(daemon.addr, URL, bound(17, 2));
    assert!(got < file.len());
    wait_for("the second download to be given up", || given_up(&daemon) == 2);
    assert_eq!(origin.requests(PATH), 6, "{}", daemon.stderr());
}

#[test]
fn retry_budget_is_not_refilled_by_bytes_that_arrive() {
    // Every answer brings 50,000 new bytes, resumed where the last one
    // broke: progress, but the budget is spent all the same.
    let origin = Origin::start();
    let file = data(300_000);
    origin.put(PATH, file.clone());
    origin.fault(PATH, Fault::CutAt(50_000), 1000);
    let daemon = Daemon::start(&format!("{}DlMaxRetries: 2\n", remap(&origin)));
    let mut c = Conn::open(daemon.addr);
    c.send("GET", URL, &[]);
    assert_eq!(c.read_head().unwrap().status, 200);
    let mut got = Vec::new();
    while let Ok(bytes) = c.read_body(16 * 1024) {
        if bytes.is_empty() {
            break;
        }
        got.extend_from_slice(&bytes);
    }
    assert_eq!(got.len(), 150_000, "three attempts of 50,000 bytes, then the cut");
    assert_eq!(&got[..], &file[..150_000]);
    wait_for("the download to be given up", || given_up(&daemon) == 1);
    assert_eq!(origin.requests(PATH), 3);
    // A client asking again resumes the partial file with a new budget,
    // which is just enough here.
    let whole = Conn::open(daemon.addr).get(URL, &[]);
    assert_eq!(sha256_hex(&whole.body), sha256_hex(&file));
    assert_eq!(origin.requests(PATH), 6);
}

#[test]
fn retry_storm_a_stalled_mirror_is_given_up_within_the_stated_bound() {
    // Every answer stalls after 100,000 bytes for good.
    let origin = Origin::start();
    let file = data(1_000_000);
    origin.put(PATH, file.clone());
    let _stalled = origin.fault(PATH, Fault::PauseAt(100_000), 1000).unwrap();
    let daemon = Daemon::start(&format!("{}NetworkTimeout: 5\nDlMaxRetries: 1\n", remap(&origin)));
    let (status, got) = read_until_the_end(daemon.addr, URL, bound(5, 1));
    assert_eq!((status, got), (200, 200_000), "two attempts, then the cut");
    wait_for("the download to be given up", || given_up(&daemon) == 1);
    assert_eq!(origin.requests(PATH), 2);
}

#[test]
fn hung_clients_of_a_garbled_chunked_body_all_see_their_response_end() {
    // A chunk of five bytes, then garbage where the next size should be,
    // on a connection the mirror keeps open.
    let origin = crate::support::raw::RawOrigin::start(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
    );
    let daemon = Daemon::start(&format!(
        "Remap-m: /m ; {}\nDlMaxRetries: 2\n",
        origin.url("/debian")
    ));
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let addr = daemon.addr;
            thread::spawn(move || read_until_the_end(addr, URL, bound(17, 2)))
        })
        .collect();
    for c in clients {
        let (status, got) = c.join().unwrap();
        // At most the five bytes the mirror sent, in one chunk: a clean
        // end would have kept the connection open.
        assert!(
            (status == 200 && got <= 16) || status == 503,
            "a cut body or an error: {status}, {got} bytes"
        );
    }
    wait_for("every download to be given up", || {
        given_up(&daemon) >= 1 && origin.requests() == 3 * given_up(&daemon)
    });
    assert_eq!(origin.requests(), 3 * given_up(&daemon), "{}", daemon.stderr());
}

#[test]
fn a_follower_that_stops_reading_holds_back_neither_the_download_nor_memory() {
    let origin = Origin::start();
    let file = data(64 * MB);
    origin.put(PATH, file.clone());
    let daemon = Daemon::start(&remap(&origin));
    let mut stuck = Conn::open(daemon.addr);
    stuck.send("GET", URL, &[]);
    assert_eq!(stuck.read_head().unwrap().status, 200);
    assert_eq!(stuck.read_body(MB).unwrap().len(), MB);
    // It reads nothing more; another client gets the whole file meanwhile.
    let other = Conn::open(daemon.addr).get(URL, &[]);
    assert_eq!(sha256_hex(&other.body), sha256_hex(&file));
    let sidecar = daemon.cache().join("m/pool/main/b/big/big_1.0_all.deb.head");
    wait_for("the download to complete", || {
        std::fs::read_to_string(&sidecar)
            .is_ok_and(|h| h.contains(&format!("Content-Length: {}", file.len())))
    });
    let peak = crate::support::proc_kib(daemon.pid(), "VmHWM");
    assert!(
        peak < 32 * 1024,
        "the stuck client's part of the file is not held in memory: peak RSS {peak} KiB"
    );
    assert_eq!(origin.requests(PATH), 1);
    drop(stuck);
}

#[test]
fn retry_storm_a_pipelined_request_gets_the_failure_of_the_download_read_ahead_for_it() {
    let origin = Origin::start();
    let first = "/debian/pool/first.deb";
    let broken = "/debian/pool/broken.deb";
    origin.put(first, data(1000));
    origin.put(broken, data(300_000));
    // The first answer waits until the download read ahead for the second
    // request has spent its budget.
    let gate = origin.fault(first, Fault::PauseAt(0), 1).unwrap();
    origin.fault(broken, Fault::CutAt(100_000), 1000);
    origin.fault(broken, Fault::IgnoreRange, 1000);
    let daemon = Daemon::start(&format!("{}DlMaxRetries: 2\n", remap(&origin)));
    let mut c = Conn::open(daemon.addr);
    let burst: String = [first, broken]
        .iter()
        .map(|p| crate::support::http::request("GET", &p.replace("/debian/", "/m/"), &[]))
        .collect();
    c.send_raw(burst.as_bytes());
    wait_for("the read-ahead download to be given up", || {
        given_up(&daemon) == 1
    });
    gate.release();
    assert_eq!(c.read(false).unwrap().body.len(), 1000);
    let second = c.read(false);
    assert!(
        second
            .as_ref()
            .map_or(true, |r| r.status == 503 || r.body.len() < 300_000),
        "the second answer is the failure: {:?}",
        second.map(|r| r.status)
    );
    assert_eq!(
        origin.requests(broken),
        3,
        "DlMaxRetries + 1 for the one request, not again for its answer"
    );
}
