//! `CacheSizeLimit`: past it, the daemon removes the least recently used
//! files until the cache is 5 % below it, and never a file being
//! downloaded.

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::support::daemon::Daemon;
use crate::support::http::{get, Conn};
use crate::support::origin::{Fault, Origin};
use crate::support::{acng_head, data, put, wait_for};

const MIB: u64 = 1 << 20;

/// What the files below `dir` take on disk, as the quota counts them:
/// allocated blocks of data files and their `.head`s.
fn allocated(dir: &Path) -> u64 {
    let mut sum = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            if !entry.file_name().to_string_lossy().starts_with('_') {
                sum += allocated(&entry.path());
            }
        } else if meta.is_file() {
            sum += meta.blocks() * 512;
        }
    }
    sum
}

/// Sets a file's access and modification times to `days_ago` days ago.
fn age(path: &Path, days_ago: u64) {
    let t = SystemTime::now() - Duration::from_secs(days_ago * 86_400);
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_times(FileTimes::new().set_accessed(t).set_modified(t))
        .unwrap();
}

#[test]
fn past_the_limit_the_least_recently_used_go_and_a_download_stays() {
    let origin = Origin::start();
    let busy_body = data(4 * MIB as usize);
    origin.put("/debian/pool/busy.deb", busy_body.clone());
    origin.put("/debian/pool/new.deb", data(2 * MIB as usize));
    let gate = origin
        .fault("/debian/pool/busy.deb", Fault::PauseAt(256 * 1024), 1)
        .unwrap();

    // Eight complete files of a MiB, f0 the least recently used.
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for i in 0..8 {
        let rel = format!("deb/pool/f{i}.deb");
        put(&cache, &rel, &data(MIB as usize));
        put(&cache, &format!("{rel}.head"), acng_head(MIB as usize).as_bytes());
        age(&cache.join(&rel), 100 - i);
    }
    let before = allocated(&cache);
    let limit = before + MIB;
    let daemon = Daemon::start_with(crate::support::daemon::Setup {
        conf: &format!(
            "Remap-deb: /deb ; {}\nCacheSizeLimit: {limit}\n",
            origin.url("/debian")
        ),
        cache: Some(&cache),
        ..Default::default()
    });

    // The walk at start first: the download below preallocates its whole
    // length, which would pass the limit at once.
    wait_for("the first walk", || daemon.stderr().contains("the cache takes"));
    // A download that stops at 256 KiB, its partial file made the least
    // recently used of all.
    let mut busy = Conn::open(daemon.addr);
    busy.send("GET", "/deb/pool/busy.deb", &[]);
    let head = busy.read_head().unwrap();
    assert_eq!(head.status, 200);
    gate.wait_reached();
    let partial = cache.join("deb/pool/busy.deb");
    wait_for("the partial file", || {
        fs::metadata(&partial).is_ok_and(|m| m.len() == 256 * 1024)
    });
    age(&partial, 1000);
    assert!(daemon.stderr().contains("listening"), "{}", daemon.stderr());
    assert!(
        (0..8).all(|i| cache.join(format!("deb/pool/f{i}.deb")).exists()),
        "under the limit, nothing went"
    );

    // Two more MiB pass the limit.
    assert_eq!(get(daemon.addr, "/deb/pool/new.deb").status, 200);
    wait_for("the quota's log line", || {
        daemon.stderr().contains("least recently used")
    });
    let target = limit - limit / 20;
    let gone: Vec<u64> = (0..8)
        .filter(|i| !cache.join(format!("deb/pool/f{i}.deb")).exists())
        .collect();
    assert!(!gone.is_empty(), "{}", daemon.stderr());
    assert_eq!(
        gone,
        (0..gone.len() as u64).collect::<Vec<_>>(),
        "the least recently used first"
    );
    for i in &gone {
        assert!(!cache.join(format!("deb/pool/f{i}.deb.head")).exists());
    }
    assert!(partial.exists(), "the file being downloaded stays");
    assert!(cache.join("deb/pool/new.deb").exists());
    assert!(allocated(&cache) <= target, "{} > {target}", allocated(&cache));
    assert!(
        daemon.stderr().contains(" being downloaded were left"),
        "{}",
        daemon.stderr()
    );

    // What stayed is served from the cache, the download finishes whole.
    let kept = gone.len();
    for i in kept..8 {
        let r = get(daemon.addr, &format!("/deb/pool/f{i}.deb"));
        assert_eq!((r.status, r.body.len()), (200, MIB as usize), "f{i}");
    }
    gate.release();
    let rest = busy.read_body(busy_body.len()).unwrap();
    assert_eq!(rest, busy_body);
    assert_eq!(origin.requests("/debian/pool/busy.deb"), 1);
}

#[test]
fn check_reports_the_limit_and_a_bad_one_is_an_error() {
    let out = crate::support::debcache(&["--check", "CacheSizeLimit=50G"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("CacheSizeLimit: 53687091200 bytes (50.0 GiB)"),
        "{text}"
    );
    let out = crate::support::debcache(&["--check", "CacheSizeLimit=lots"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn shrink_lists_with_n_removes_with_f_and_leaves_a_running_daemons_cache_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for i in 0..4 {
        let rel = format!("deb/pool/f{i}.deb");
        put(&cache, &rel, &data(MIB as usize));
        put(&cache, &format!("{rel}.head"), acng_head(MIB as usize).as_bytes());
        age(&cache.join(&rel), 10 - i);
    }
    put(&cache, "deb/dists/s/InRelease", b"old index");
    put(&cache, "deb/dists/s/InRelease.head", acng_head(9).as_bytes());
    age(&cache.join("deb/dists/s/InRelease"), 100);
    let conf = dir.path().join("conf");
    fs::create_dir_all(&conf).unwrap();
    fs::write(conf.join("acng.conf"), format!("CacheDir: {}\n", cache.display())).unwrap();
    let conf = conf.to_str().unwrap();
    let size = (allocated(&cache) - 2 * MIB).to_string();
    let run = |args: &[&str]| {
        let out = crate::support::debcache(&[&["shrink"], args, &["-c", conf]].concat());
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            out.status.code(),
            text,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, listed, _) = run(&[&size, "-n"]);
    assert_eq!(code, Some(0));
    let root = cache.display();
    assert_eq!(
        listed,
        format!(
            "Delete: {root}/deb/pool/f0.deb\nDelete: {root}/deb/pool/f0.deb.head\n\
             Delete: {root}/deb/pool/f1.deb\nDelete: {root}/deb/pool/f1.deb.head\n"
        ),
        "the two least recently used; the index is kept without -x"
    );
    assert!(cache.join("deb/pool/f0.deb").exists(), "-n removes nothing");

    assert_eq!(run(&[&size]).0, Some(2), "one of -n and -f is needed");
    assert_eq!(run(&["lots", "-n"]).0, Some(2));

    let daemon = crate::support::daemon::Daemon::start_with(crate::support::daemon::Setup {
        cache: Some(&cache),
        ..Default::default()
    });
    let (code, _, stderr) = run(&[&size, "-f"]);
    assert_eq!(code, Some(69), "{stderr}");
    assert!(cache.join("deb/pool/f0.deb").exists());
    drop(daemon);

    let (code, removed, _) = run(&[&size, "-f", "-v"]);
    assert_eq!(code, Some(0));
    assert!(removed.starts_with(&listed), "{removed}");
    assert!(removed.contains("New size: "), "{removed}");
    for i in 0..2 {
        assert!(!cache.join(format!("deb/pool/f{i}.deb")).exists());
    }
    for i in 2..4 {
        assert!(cache.join(format!("deb/pool/f{i}.deb")).exists());
    }
    assert!(cache.join("deb/dists/s/InRelease").exists());

    // -x: the index may go, after every other file.
    let (code, removed, _) = run(&["0", "-f", "-x"]);
    assert_eq!(code, Some(0));
    assert!(removed.ends_with("InRelease.head\n"), "{removed}");
    assert!(!cache.join("deb/dists/s/InRelease").exists());
}
