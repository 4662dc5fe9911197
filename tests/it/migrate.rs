//! `debcache migrate`: the checks of an apt-cacher-ng installation (the
//! Debian package's configuration, with its cache and logs in a temporary
//! directory), the plan it prints, and the files `--apply` writes, under a
//! `--root` so the machine is not changed.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::support::{copy_tree, debcache, fixture};

/// The package's /etc/apt-cacher-ng, pointing at a cache and logs of its
/// own; `(tempdir, configuration directory)`.
fn installation() -> (tempfile::TempDir, PathBuf) {
    let top = tempfile::tempdir().unwrap();
    let conf = top.path().join("etc/apt-cacher-ng");
    copy_tree(&fixture("acng-3.7.4/etc/apt-cacher-ng"), &conf);
    for dir in ["cache", "log"] {
        fs::create_dir(top.path().join(dir)).unwrap();
    }
    fs::write(
        conf.join("zz_test.conf"),
        format!(
            "CacheDir: {0}/cache\nLogDir: {0}/log\nSupportDir: {1}\n",
            top.path().display(),
            fixture("acng-3.7.4/support").display()
        ),
    )
    .unwrap();
    (top, conf)
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = debcache(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The name of the user running the tests, from /etc/passwd.
fn me() -> String {
    let probe = tempfile::tempdir().unwrap();
    let uid = fs::metadata(probe.path()).unwrap().uid();
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
        .next()
        .unwrap_or_else(|| uid.to_string())
}

#[test]
fn the_dry_run_prints_the_plan_and_changes_nothing() {
    let (top, conf) = installation();
    let root = top.path().join("root");
    fs::create_dir(&root).unwrap();
    let from = conf.display().to_string();
    let (code, out, err) = run(&["migrate", "--from", &from, "--root", &root.display().to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let cache = top.path().join("cache");
    let log = top.path().join("log");
    for wanted in [
        format!("User={}", me()),
        format!("-c {} -c /etc/debcache/on-apt-cacher-ng", conf.display()),
        format!("ReadWritePaths={} {}", cache.display(), log.display()),
        "CacheDirectory=\n".to_string(),
        "systemctl disable --now apt-cacher-ng.service".to_string(),
        "systemctl enable --now apt-cacher-ng.service".to_string(),
        "Nothing was changed".to_string(),
    ] {
        assert!(out.contains(&wanted), "{wanted:?} missing from:\n{out}");
    }
    assert_eq!(
        fs::read_dir(&root).unwrap().count(),
        0,
        "a dry run writes nothing"
    );
}

#[test]
fn apply_writes_beside_apt_cacher_ngs_files_never_into_them() {
    let (top, conf) = installation();
    let before: Vec<PathBuf> = listing(&conf);
    let root = top.path().join("root");
    let args = [
        "migrate",
        "--from",
        conf.to_str().unwrap(),
        "--apply",
        "--root",
        root.to_str().unwrap(),
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, Some(0), "{out}{err}");
    let drop_in = root.join("etc/systemd/system/debcache.service.d/apt-cacher-ng.conf");
    let unit = fs::read_to_string(&drop_in).unwrap();
    assert!(unit.starts_with("# Written by `debcache migrate"), "{unit}");
    assert!(unit.contains("[Service]\n"));
    let own = root.join("etc/debcache/on-apt-cacher-ng");
    assert!(own.join("debcache.conf").is_file());
    assert_eq!(listing(&conf), before, "apt-cacher-ng's directory is untouched");

    // The two directories together are what the drop-in's ExecStart reads.
    let (code, out, err) = run(&[
        "--check",
        "-c",
        conf.to_str().unwrap(),
        "-c",
        own.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");

    // The admin's settings survive a second run.
    fs::write(own.join("debcache.conf"), "VerifyDownloads: 0\n").unwrap();
    let (code, _, err) = run(&args);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("kept"), "{err}");
    assert_eq!(
        fs::read_to_string(own.join("debcache.conf")).unwrap(),
        "VerifyDownloads: 0\n"
    );
}

#[test]
fn a_debcache_key_in_apt_cacher_ngs_files_stops_it() {
    let (top, conf) = installation();
    fs::write(conf.join("zz_mine.conf"), "# mine\nCacheSizeLimit: 10G\n").unwrap();
    let root = top.path().join("root");
    let (code, out, _) = run(&[
        "migrate",
        "--from",
        conf.to_str().unwrap(),
        "--apply",
        "--root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(78), "{out}");
    let at = format!(
        "{}:2: CacheSizeLimit is debcache's own",
        conf.join("zz_mine.conf").display()
    );
    assert!(out.contains(&at), "{out}");
    assert!(out.contains("Nothing was changed: solve the problems"), "{out}");
    assert!(!root.exists(), "nothing written");
}

#[test]
fn a_missing_directory_or_a_stray_c_is_refused() {
    let (code, _, err) = run(&["migrate", "--from", "/nonexistent/acng"]);
    assert_eq!(code, Some(78));
    assert!(err.contains("/nonexistent/acng"), "{err}");
    let (code, _, err) = run(&["-c", "/etc", "migrate"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--from"), "{err}");
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    names
}
