//! Expiration (`doExpire`): after a real apt filled the cache from suite
//! v1, v2 drops packages; exactly those become orphans, are removed once
//! they have been for `ExThreshold` days, and everything still referenced
//! is served without asking the mirror. The acng-written fixture loses
//! nothing. A malformed index stops every deletion.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::apt::{self, Access, Apt, Repo};
use crate::support::http::{dechunk, get, Conn};
use crate::support::origin::Origin;
use crate::support::{copy_tree, fixture, put, Daemon};

const SUITE: &str = "synth";
const EXPIRE: &str = "/acng-report.html?doExpire=Start+Expiration&abortOnErrors=aOe&ignoreTradeOff=iTO";
const MARKER: &str = "41d_a6aeb8-26dfa";

/// Runs a task to its end; its whole page.
fn task(daemon: &Daemon, target: &str) -> String {
    let mut conn = Conn::open(daemon.addr);
    conn.send("GET", target, &[]);
    let head = conn.read_head().expect("a response");
    assert_eq!(head.status, 200, "{target}");
    let raw = conn.read_raw_to_end().expect("the page");
    String::from_utf8(dechunk(&raw).expect("a chunked page")).unwrap()
}

/// The orphan list's paths.
fn orphans(cache: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(cache.join("_expending_dat")) else {
        return Vec::new();
    };
    let mut paths: Vec<String> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "{l}");
            format!("{}{}", f[1], f[2])
        })
        .collect();
    paths.sort();
    paths
}

/// Moves the orphans' clock back `days`: as if the first run had been
/// that long ago.
fn age_orphans(cache: &Path, days: u64) {
    let path = cache.join("_expending_dat");
    let then = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() - days * 86_400;
    let text: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| format!("{then}\t{}\n", l.split_once('\t').unwrap().1))
        .collect();
    std::fs::write(path, text).unwrap();
}

fn publish(origin: &Origin, repo: &Repo) {
    for (path, bytes) in repo.files() {
        origin.put(&format!("/debian{path}"), bytes);
    }
}

/// A mock mirror serving suite v1 of `packages` under `/debian`, a daemon
/// with `Remap-synth` to it (and `conf`), and an apt using it, not run yet.
struct World {
    origin: Origin,
    dir: tempfile::TempDir,
    packages: Vec<apt::Package>,
    repo: Repo,
    daemon: Daemon,
    apt: Apt,
}

fn world(packages: Vec<apt::Package>, conf: &str) -> World {
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::build(&dir.path().join("v1"), SUITE, &packages);
    publish(&origin, &repo);
    let daemon = Daemon::start(&format!(
        "Remap-synth: /synth ; {}\n{conf}",
        origin.url("/debian")
    ));
    let apt = Apt::new(
        &format!("deb [trusted=yes] http://{}/synth {SUITE} main", daemon.addr),
        Access::Direct,
    );
    World {
        origin,
        dir,
        packages,
        repo,
        daemon,
        apt,
    }
}

#[test]
fn the_dropped_packages_become_orphans_and_go_after_the_threshold() {
    let World {
        origin,
        dir,
        packages,
        repo: v1,
        daemon,
        apt,
    } = world(apt::packages(6, 2_000, 20_000), "ExThreshold: 4\n");
    apt.update().assert_success();
    let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    apt.download(&names).assert_success();
    daemon.downloads_done();

    // v2 drops the last two packages.
    let v2 = Repo::build(&dir.path().join("v2"), SUITE, &packages[..4]);
    publish(&origin, &v2);
    let dropped: Vec<String> = packages[4..]
        .iter()
        .map(|p| format!("synth{}", v1.deb_path(&p.name)))
        .collect();
    for path in &dropped {
        origin.remove(&format!("/debian{}", &path["synth".len()..]));
    }
    let cache = daemon.cache();

    let page = task(&daemon, EXPIRE);
    eprintln!("PAGE1 {page}");
    assert!(page.contains("Done:"), "{page}");
    assert!(!page.contains(MARKER), "no error:\n{page}");
    assert_eq!(orphans(&cache), dropped, "{page}");
    for path in &dropped {
        assert!(cache.join(path).exists(), "tagged, not removed yet: {path}");
    }

    // Three days later: still kept. Five: removed.
    age_orphans(&cache, 3);
    let page = task(&daemon, EXPIRE);
    assert!(page.contains("Done: 0 files"), "{page}");
    assert_eq!(orphans(&cache), dropped);
    age_orphans(&cache, 5);
    let page = task(&daemon, EXPIRE);
    assert!(page.contains("Done: 2 files"), "{page}");
    for path in &dropped {
        assert!(!cache.join(path).exists(), "{path}");
        assert!(!cache.join(format!("{path}.head")).exists(), "{path}");
    }
    assert!(orphans(&cache).is_empty());

    // What v2 names is all there, served without asking the mirror.
    for p in &packages[..4] {
        let path = v2.deb_path(&p.name);
        let before = origin.requests(&format!("/debian{path}"));
        let r = get(daemon.addr, &format!("/synth{path}"));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(origin.requests(&format!("/debian{path}")), before, "{path}");
    }
    assert!(cache.join(format!("synth/dists/{SUITE}/Release")).exists());
    assert!(cache
        .join(format!("synth/dists/{SUITE}/main/binary-all/Packages.xz"))
        .exists());
}

#[test]
fn the_acng_written_cache_loses_nothing_it_references() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    copy_tree(&fixture("acng-3.7.4-cache"), &cache);
    // The mirror serves what the cache holds, so the refresh finds it
    // current.
    let origin = Origin::start();
    let suite = cache.join("synth");
    let mut files = Vec::new();
    collect(&suite, &suite, &mut files);
    for rel in &files {
        if !rel.ends_with(".head") {
            origin.put(&format!("/debian/{rel}"), std::fs::read(suite.join(rel)).unwrap());
        }
    }
    let before = every_file(&cache);
    let daemon = Daemon::start_with(crate::support::daemon::Setup {
        conf: &format!("Remap-synth: /synth ; {}\n", origin.url("/debian")),
        cache: Some(&cache),
        ..Default::default()
    });
    let page = task(&daemon, &format!("{EXPIRE}&purgeNow=pN"));
    assert!(page.contains("Done: 0 files"), "{page}");
    assert!(!page.contains(MARKER), "{page}");
    let after = every_file(&cache);
    for file in &before {
        assert!(after.contains(file), "{file} was removed:\n{page}");
    }
}

/// An expiration that reads the indexes as they are (and purges).
const BROKEN_RUN: &str =
    "/acng-report.html?doExpire=Start+Expiration&ignoreTradeOff=iTO&skipIxUp=si&purgeNow=pN";

/// Garbles the suite's cached Packages.xz, its length kept.
fn break_index(cache: &Path) {
    let packages_xz = cache.join(format!("synth/dists/{SUITE}/main/binary-all/Packages.xz"));
    let len = std::fs::metadata(&packages_xz).unwrap().len() as usize;
    std::fs::write(&packages_xz, vec![b'x'; len]).unwrap();
}

#[test]
fn cron_hears_of_failed_runs_past_ex_suppress_admin_notification() {
    let world = world(apt::packages(1, 2_000, 2_000), "ExSuppressAdminNotification: 1\n");
    let cache = world.daemon.cache();
    world.apt.update().assert_success();
    world.daemon.downloads_done();
    break_index(&cache);
    let first = task(&world.daemon, BROKEN_RUN);
    assert!(
        first.contains("class=\"ERROR\""),
        "the page shows the error:\n{first}"
    );
    assert!(
        !first.contains(&format!("{MARKER}2")),
        "one failed run is tolerated:\n{first}"
    );
    let second = task(&world.daemon, BROKEN_RUN);
    assert!(
        second.contains(&format!("{MARKER}2Errors found, aborting expiration...")),
        "the second in a row is mailed:\n{second}"
    );
    let failures = std::fs::read_to_string(cache.join("_exfail_cnt")).unwrap();
    assert_eq!(failures.lines().count(), 2, "{failures}");
}

#[test]
fn a_malformed_index_stops_every_deletion() {
    let World {
        origin: _origin,
        dir: _dir,
        packages: _packages,
        repo: _repo,
        daemon,
        apt,
    } = world(apt::packages(2, 2_000, 4_000), "ExSuppressAdminNotification: 0\n");
    let cache = daemon.cache();
    apt.update().assert_success();
    daemon.downloads_done();
    // An orphan due for removal, and the Packages file broken in the cache
    // (skipIxUp: it is read as it is).
    put(&cache, "synth/pool/main/o/old/old_1_all.deb", b"old");
    put(
        &cache,
        "synth/pool/main/o/old/old_1_all.deb.head",
        crate::support::acng_head(3).as_bytes(),
    );
    break_index(&cache);
    let page = task(&daemon, BROKEN_RUN);
    assert!(
        page.contains(&format!("{MARKER}2Errors found, aborting expiration...")),
        "an error line for cron:\n{page}"
    );
    assert!(page.contains("nothing is removed"), "{page}");
    assert!(cache.join("synth/pool/main/o/old/old_1_all.deb").exists());

    // What cron mails: `debcache maint` prints the error, and exits 0 (the
    // daemon answered; acngtool's contract).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_debcache"))
        .args(["maint", "-c"])
        .arg(daemon.dir.path().join("conf"))
        .arg(format!("BindAddress={}", daemon.addr))
        .env(
            "ACNGREQ",
            "?doExpire=Start+Expiration&ignoreTradeOff=iTO&skipIxUp=si&purgeNow=pN",
        )
        .env_remove("ACNG_INSECURE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Packages.xz"), "{stderr}");
    assert!(cache.join("synth/pool/main/o/old/old_1_all.deb").exists());
}

#[test]
fn show_lists_the_orphans_and_remove_removes_them() {
    let daemon = Daemon::start("");
    let cache = daemon.cache();
    put(&cache, "h/pool/a.deb", b"12345");
    put(
        &cache,
        "h/pool/a.deb.head",
        crate::support::acng_head(5).as_bytes(),
    );
    // The last line is damaged: a time no clock can hold.
    std::fs::write(
        cache.join("_expending_dat"),
        "1795318600\th/pool/\ta.deb\n1795318600\th/pool/\tgone.deb\n18446744073709551615\th/pool/\ta.deb\n",
    )
    .unwrap();
    let page = task(&daemon, "/acng-report.html?justShow=Show+unreferenced");
    assert!(page.contains("<td>h/pool/a.deb</td><td>5 bytes</td>"), "{page}");
    assert!(!page.contains("gone.deb"), "{page}");
    assert!(page.contains("justRemove=Delete+unreferenced"), "{page}");
    let page = task(&daemon, "/acng-report.html?justRemove=Delete+unreferenced");
    assert!(page.contains("Done: 1 files"), "{page}");
    assert!(!cache.join("h/pool/a.deb").exists());
    assert!(!cache.join("_expending_dat").exists());
}

#[test]
fn too_little_downloaded_suppresses_the_run() {
    let daemon = Daemon::start("");
    // A damaged time of the last run counts as no last run.
    std::fs::write(
        daemon.cache().join("_debcache/last-expiration"),
        "18446744073709551615\n",
    )
    .unwrap();
    let page = task(&daemon, "/acng-report.html?doExpire=Start+Expiration");
    assert!(
        page.contains("Expiration suppressed due to costs-vs.-benefit considerations"),
        "{page}"
    );
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().to_str().unwrap().to_string());
        }
    }
}

fn every_file(cache: &Path) -> Vec<String> {
    let mut files = Vec::new();
    collect(cache, cache, &mut files);
    files.retain(|f| !f.starts_with('_'));
    files.sort();
    files
}

#[test]
fn import_puts_matching_files_in_place_and_leaves_the_rest() {
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let packages = apt::packages(3, 2_000, 6_000);
    let repo = Repo::build(&dir.path().join("v1"), SUITE, &packages);
    publish(&origin, &repo);
    let daemon = Daemon::start(&format!("Remap-synth: /synth ; {}\n", origin.url("/debian")));
    let cache = daemon.cache();
    // Nothing to map files to yet.
    put(&cache, "_import/early.deb", &[7u8; 100]);
    let page = task(&daemon, "/acng-report.html?doImport=Start+Import");
    assert!(page.contains("No index files detected"), "{page}");
    assert!(page.contains(MARKER), "{page}");

    let apt = Apt::new(
        &format!("deb [trusted=yes] http://{}/synth {SUITE} main", daemon.addr),
        Access::Direct,
    );
    apt.update().assert_success();
    daemon.downloads_done();
    let files: std::collections::BTreeMap<String, Vec<u8>> = repo.files().into_iter().collect();
    // Two of the packages as a client's archive holds them, one damaged
    // copy, and a stranger.
    let (a, b, c) = (&packages[0].name, &packages[1].name, &packages[2].name);
    let deb = |name: &str| files[&repo.deb_path(name)].clone();
    let base = |name: &str| repo.deb_path(name).rsplit('/').next().unwrap().to_string();
    put(&cache, &format!("_import/archives/{}", base(a)), &deb(a));
    put(&cache, &format!("_import/{}", base(b)), &deb(b));
    let mut damaged = deb(c);
    damaged[100] ^= 1;
    put(&cache, &format!("_import/{}", base(c)), &damaged);
    let page = task(&daemon, "/acng-report.html?doImport=Start+Import");
    assert!(page.contains("Done: 2 files"), "{page}");
    assert!(
        page.contains(&format!(
            "Left behind: _import/{} matches no index entry",
            base(c)
        )),
        "{page}"
    );
    assert!(page.contains("Left behind: _import/early.deb"), "{page}");
    assert!(!cache.join(format!("_import/archives/{}", base(a))).exists());
    assert!(cache.join(format!("_import/{}", base(c))).exists());

    for name in [a, b] {
        let path = repo.deb_path(name);
        let r = get(daemon.addr, &format!("/synth{path}"));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, deb(name), "{path}");
        assert_eq!(
            origin.requests(&format!("/debian{path}")),
            0,
            "{path}: served from the import"
        );
    }
    // The damaged one is fetched from the mirror, whole and right.
    let path = repo.deb_path(c);
    assert_eq!(get(daemon.addr, &format!("/synth{path}")).body, deb(c));
    assert_eq!(origin.requests(&format!("/debian{path}")), 1);
}

#[test]
fn the_schedule_is_a_time_of_day_or_0() {
    let check = |value: &str| crate::support::debcache(&["--check", &format!("ExpireSchedule={value}")]);
    for good in ["0", "03:40", "23:59", "00:00"] {
        assert!(check(good).status.success(), "{good}: {:?}", check(good));
    }
    for bad in ["24:00", "3:40", "03:60", "noon", ""] {
        let out = check(bad);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("is not a time of day"),
            "{bad}: {out:?}"
        );
    }
    let out = crate::support::debcache(&["--print-config", "ExpireSchedule=4:5"]);
    assert!(!out.status.success());
    let out = crate::support::debcache(&["--print-config"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\nExpireSchedule: 03:40\n"),
        "{out:?}"
    );
}

#[test]
fn precache_fetches_what_precachefor_names_and_apt_then_needs_no_mirror() {
    let World {
        origin,
        dir: _dir,
        packages,
        repo,
        daemon,
        apt,
    } = world(
        apt::packages(5, 2_000, 20_000),
        "PrecacheFor: synth/dists/*/main/binary-*/Packages*\nPrecacheDownloads: 2\n",
    );
    apt.update().assert_success();
    let debs: Vec<String> = packages
        .iter()
        .map(|p| format!("/debian{}", repo.deb_path(&p.name)))
        .collect();
    let deb_requests = || debs.iter().map(|p| origin.requests(p)).sum::<usize>();

    // asNeeded with nothing cached: nothing to fetch.
    let page = task(
        &daemon,
        "/acng-report.html?doMirror=Start+Mirroring&calcSize=cs&doDownload=dd&asNeeded=an",
    );
    assert!(page.contains("Done: 1 index files; 0 files"), "{page}");
    assert_eq!(deb_requests(), 0);

    let page = task(&daemon, "/acng-report.html?doMirror=Start+Mirroring&calcSize=cs");
    assert!(page.contains("name 5 files"), "{page}");
    assert!(page.contains("5 of them"), "{page}");
    let page = task(
        &daemon,
        "/acng-report.html?doMirror=Start+Mirroring&doDownload=dd",
    );
    assert!(page.contains("Done: 1 index files; 5 files"), "{page}");
    assert!(!page.contains(MARKER), "{page}");
    assert_eq!(deb_requests(), 5);

    let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    apt.download(&names).assert_success();
    assert_eq!(deb_requests(), 5, "apt's downloads were all hits");
}

#[test]
fn by_checksum_lists_a_damaged_file_and_truncating_it_brings_a_good_copy() {
    let World {
        origin: _origin,
        dir: _dir,
        packages,
        repo,
        daemon,
        apt,
    } = world(apt::packages(2, 4_000, 8_000), "");
    let cache = daemon.cache();
    apt.update().assert_success();
    let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    apt.download(&names).assert_success();
    daemon.downloads_done();
    // One .deb rots on disk: same size, one byte changed.
    let rotten = format!("synth{}", repo.deb_path(names[0]));
    let mut bytes = std::fs::read(cache.join(&rotten)).unwrap();
    bytes[500] ^= 0xff;
    std::fs::write(cache.join(&rotten), &bytes).unwrap();

    let page = task(&daemon, &format!("{EXPIRE}&byChecksum=bS"));
    assert!(page.contains(&format!("Damaged: {rotten}")), "{page}");
    assert!(page.contains("1 damaged;"), "{page}");
    assert_eq!(
        std::fs::read_to_string(cache.join("_expending_damaged")).unwrap(),
        format!("{rotten}\n")
    );
    let page = task(&daemon, "/acng-report.html?justShowDamaged=Show+damaged");
    assert!(page.contains(&rotten), "{page}");
    let page = task(&daemon, "/acng-report.html?justTruncDamaged=Truncate+damaged");
    assert!(page.contains("Done: 1 files"), "{page}");
    assert!(!cache.join("_expending_damaged").exists());
    assert_eq!(std::fs::metadata(cache.join(&rotten)).unwrap().len(), 0);
    assert!(
        cache.join(format!("{rotten}.head")).exists(),
        "truncation keeps the .head"
    );

    let files: std::collections::BTreeMap<String, Vec<u8>> = repo.files().into_iter().collect();
    let r = get(daemon.addr, &format!("/synth{}", repo.deb_path(names[0])));
    assert_eq!(r.body, files[&repo.deb_path(names[0])], "a good copy again");
}

#[test]
fn ticked_damaged_files_go_only_after_the_confirmation() {
    let daemon = Daemon::start("");
    let cache = daemon.cache();
    for name in ["a", "b", "c"] {
        put(&cache, &format!("h/pool/{name}.deb"), b"12345");
        put(
            &cache,
            &format!("h/pool/{name}.deb.head"),
            crate::support::acng_head(5).as_bytes(),
        );
    }
    std::fs::write(
        cache.join("_expending_damaged"),
        "h/pool/a.deb\nh/pool/b.deb\nh/pool/c.deb\n",
    )
    .unwrap();
    let page = task(&daemon, "/acng-report.html?justShowDamaged=Show+damaged");
    assert!(page.contains("name=\"kf\" value=\"1\"> h/pool/b.deb"), "{page}");
    assert!(page.contains("name=\"doDelete\""), "{page}");

    let page = task(&daemon, "/acng-report.html?doDelete=Delete+selected&kf=0&kf=2");
    assert!(page.contains("These 2 files will be deleted"), "{page}");
    assert!(
        page.contains("h/pool/a.deb") && page.contains("h/pool/c.deb") && !page.contains("h/pool/b.deb"),
        "{page}"
    );
    assert!(page.contains("name=\"doDeleteYes\""), "{page}");
    assert!(
        cache.join("h/pool/a.deb").exists(),
        "the confirmation page changes nothing"
    );

    let page = task(&daemon, "/acng-report.html?doDeleteYes=Delete&kf=0&kf=2");
    assert!(page.contains("Done: 2 files"), "{page}");
    assert!(!cache.join("h/pool/a.deb").exists() && !cache.join("h/pool/c.deb").exists());
    assert!(cache.join("h/pool/b.deb").exists());
    assert_eq!(
        std::fs::read_to_string(cache.join("_expending_damaged")).unwrap(),
        "h/pool/b.deb\n"
    );

    let page = task(&daemon, "/acng-report.html?doTruncateYes=Truncate&kf=0");
    assert!(page.contains("Done: 1 files"), "{page}");
    assert_eq!(std::fs::metadata(cache.join("h/pool/b.deb")).unwrap().len(), 0);
    assert!(!cache.join("_expending_damaged").exists());
}

#[test]
fn empty_directories_unchanged_for_ten_days_go() {
    let daemon = Daemon::start("");
    let cache = daemon.cache();
    put(&cache, "h/pool/kept/a.deb", b"12345");
    put(
        &cache,
        "h/pool/kept/a.deb.head",
        crate::support::acng_head(5).as_bytes(),
    );
    for dir in ["h/pool/old/empty", "h/pool/fresh", "_import/old"] {
        std::fs::create_dir_all(cache.join(dir)).unwrap();
    }
    for dir in ["h/pool/old/empty", "h/pool/old", "h/pool/kept", "_import/old"] {
        let status = std::process::Command::new("touch")
            .args(["-d", "20 days ago"])
            .arg(cache.join(dir))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let page = task(&daemon, EXPIRE);
    assert!(page.contains("Removed 2 empty directories."), "{page}");
    assert!(!cache.join("h/pool/old").exists());
    assert!(cache.join("h/pool/fresh").exists(), "changed within ten days");
    assert!(cache.join("h/pool/kept/a.deb").exists());
    assert!(
        cache.join("_import/old").exists(),
        "debcache's and acng's own names are not touched"
    );
}

#[test]
fn keep_extra_versions_keeps_the_newest_unreferenced_versions() {
    let world = world(apt::packages(1, 2_000, 2_000), "KeepExtraVersions: 1\n");
    let cache = world.daemon.cache();
    world.apt.update().assert_success();
    world.apt.download(&["synth-pkg01"]).assert_success();
    let current = format!("synth{}", world.repo.deb_path("synth-pkg01"));
    let dir = &current[..current.rfind('/').unwrap()];
    // dpkg's order: 0.8~rc1 < 0.9 < 0.10; another architecture is a group
    // of its own.
    let old = ["0.8~rc1-1_all", "0.9-1_all", "0.10-1_all", "0.9-1_amd64"];
    for v in old {
        let path = format!("{dir}/synth-pkg01_{v}.deb");
        put(&cache, &path, b"old");
        put(
            &cache,
            &format!("{path}.head"),
            crate::support::acng_head(3).as_bytes(),
        );
    }
    let page = task(
        &world.daemon,
        "/acng-report.html?doExpire=Start+Expiration&ignoreTradeOff=iTO&skipIxUp=si&purgeNow=pN",
    );
    let exists = |v: &str| cache.join(format!("{dir}/synth-pkg01_{v}.deb")).exists();
    assert!(
        exists("0.10-1_all") && exists("0.9-1_amd64"),
        "the newest of each:\n{page}"
    );
    assert!(
        !exists("0.9-1_all") && !exists("0.8~rc1-1_all"),
        "the older go:\n{page}"
    );
    assert!(cache.join(&current).exists(), "the referenced one stays");
    assert!(orphans(&cache).contains(&format!("{dir}/synth-pkg01_0.10-1_all.deb")));
}

#[test]
fn referenced_files_are_judged_by_their_head_and_force_redownload_fetches_indexes_whole() {
    let world = world(apt::packages(2, 20_000, 20_000), "");
    let cache = world.daemon.cache();
    world.apt.update().assert_success();
    world
        .apt
        .download(&["synth-pkg01", "synth-pkg02"])
        .assert_success();
    world.daemon.downloads_done();
    let deb = |n: &str| format!("synth{}", world.repo.deb_path(n));
    let (headless, partial) = (deb("synth-pkg01"), deb("synth-pkg02"));
    std::fs::remove_file(cache.join(format!("{headless}.head"))).unwrap();
    let len = std::fs::metadata(cache.join(&partial)).unwrap().len();
    let half = std::fs::read(cache.join(&partial)).unwrap()[..len as usize / 2].to_vec();
    put(&cache, &partial, &half);
    put(
        &cache,
        &format!("{partial}.head"),
        format!("HTTP/1.1 200 OK\r\nX-Debcache-Expected-Length: {len}\r\n\r\n").as_bytes(),
    );
    let damaged = || std::fs::read_to_string(cache.join("_expending_damaged")).unwrap_or_default();
    let run = |extra: &str| {
        task(
            &world.daemon,
            &format!("/acng-report.html?doExpire=Start+Expiration&ignoreTradeOff=iTO&skipIxUp=si{extra}"),
        )
    };

    let page = run("");
    assert!(page.contains(&format!("Damaged: {headless}: no .head")), "{page}");
    assert_eq!(
        damaged(),
        format!("{headless}\n"),
        "a partial download is kept:\n{page}"
    );
    let page = run("&incomAsDamaged=iad");
    assert!(
        page.contains(&format!("Damaged: {partial}: incomplete")),
        "{page}"
    );
    assert_eq!(damaged().lines().count(), 2, "{page}");
    let page = run("&skipHeadChecks=sHC");
    assert!(!page.contains("Damaged:"), "{page}");
    assert_eq!(damaged(), "");
    assert!(
        cache.join(&headless).exists() && cache.join(&partial).exists(),
        "nothing removed"
    );

    let index = format!("/debian/dists/{SUITE}/main/binary-all/Packages.xz");
    let before = world.origin.requests(&index);
    let page = task(
        &world.daemon,
        "/acng-report.html?doExpire=Start+Expiration&ignoreTradeOff=iTO&forceRedownload=fRd",
    );
    assert!(page.contains("Done:"), "{page}");
    let asked: Vec<_> = world
        .origin
        .seen()
        .into_iter()
        .filter(|s| s.path == index)
        .skip(before)
        .collect();
    assert_eq!(asked.len(), 1, "fetched again");
    assert!(
        asked[0].header("if-none-match").is_none() && asked[0].header("if-modified-since").is_none(),
        "whole, not revalidated: {:?}",
        asked[0].headers
    );
}

#[test]
fn a_stopped_downloads_reservation_is_given_back() {
    let world = world(apt::packages(1, 5_000, 5_000), "");
    let cache = world.daemon.cache();
    world.apt.update().assert_success();
    world.apt.download(&["synth-pkg01"]).assert_success();
    world.daemon.downloads_done();
    let deb = cache.join(format!("synth{}", world.repo.deb_path("synth-pkg01")));
    let file = std::fs::OpenOptions::new().write(true).open(&deb).unwrap();
    let reserved = unsafe {
        use std::os::fd::AsRawFd;
        libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, 4 << 20)
    };
    if reserved != 0 {
        return; // No reservations on this file system: nothing to give back.
    }
    let two_days_ago = SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    file.set_modified(two_days_ago).unwrap();
    drop(file);
    let blocks = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&deb).unwrap().blocks() * 512
    };
    assert!(blocks() >= 4 << 20);
    let page = task(
        &world.daemon,
        "/acng-report.html?doExpire=Start+Expiration&ignoreTradeOff=iTO&skipIxUp=si",
    );
    assert!(page.contains("; 1 trimmed ("), "{page}");
    assert!(blocks() < 64 * 1024, "{} bytes still allocated", blocks());
    assert_eq!(std::fs::metadata(&deb).unwrap().modified().unwrap(), two_days_ago);
    let path = format!("/synth{}", world.repo.deb_path("synth-pkg01"));
    assert_eq!(get(world.daemon.addr, &path).status, 200, "still a hit");
}
