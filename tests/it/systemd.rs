//! The unit files in `systemd/`: `systemd-analyze verify` accepts them, and
//! `systemd-analyze security` rates the service's exposure low. Needs
//! systemd's tools (`.ci/run` installs the `systemd` package), no running
//! systemd.

use std::path::Path;
use std::process::Command;

/// The most exposure `systemd-analyze security` may find (0 is the least,
/// 10 the most; "OK" is below 2.0). 1.4 when written.
const MAX_EXPOSURE: f64 = 2.0;

/// The units with `ExecStart` pointing at the binary under test, in `dir`.
fn units(dir: &Path) -> (String, String) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let service = std::fs::read_to_string(repo.join("debcache.service"))
        .unwrap()
        .replace("/usr/sbin/debcache", env!("CARGO_BIN_EXE_debcache"));
    let socket = std::fs::read_to_string(repo.join("debcache.socket")).unwrap();
    let (s, k) = (dir.join("debcache.service"), dir.join("debcache.socket"));
    std::fs::write(&s, service).unwrap();
    std::fs::write(&k, socket).unwrap();
    (s.display().to_string(), k.display().to_string())
}

fn analyze(args: &[&str]) -> (bool, String) {
    analyze_in(None, args)
}

/// `systemd-analyze` with `dir` first in the unit search path, so drop-ins
/// beside the units there apply.
fn analyze_in(dir: Option<&Path>, args: &[&str]) -> (bool, String) {
    let mut command = Command::new("systemd-analyze");
    if let Some(dir) = dir {
        command.env("SYSTEMD_UNIT_PATH", format!("{}:", dir.display()));
    }
    let out = command
        .args(args)
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_units_verify_and_the_service_is_well_confined() {
    let dir = tempfile::tempdir().unwrap();
    let (service, socket) = units(dir.path());
    let (ok, said) = analyze(&["verify", "--man=no", &service, &socket]);
    assert!(ok && said.trim().is_empty(), "systemd-analyze verify:\n{said}");

    let level = exposure(None, &service);
    assert!(level <= MAX_EXPOSURE, "exposure {level}");
}

/// The exposure level `systemd-analyze security` gives the service.
fn exposure(dir: Option<&Path>, service: &str) -> f64 {
    let (_, said) = analyze_in(dir, &["security", "--offline=true", "--no-pager", service]);
    said.lines()
        .find_map(|l| l.split_once("Overall exposure level for debcache.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{said}"))
}

/// `debcache migrate`'s drop-in on the packaged unit: systemd reads it
/// cleanly, and it opens no more than acng's directories.
#[test]
fn the_migration_drop_in_verifies_and_keeps_the_confinement() {
    let top = tempfile::tempdir().unwrap();
    let conf = top.path().join("acng");
    std::fs::create_dir_all(top.path().join("cache")).unwrap();
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("acng.conf"),
        format!("CacheDir: {}/cache\n", top.path().display()),
    )
    .unwrap();
    let root = top.path().join("root");
    let out = Command::new(env!("CARGO_BIN_EXE_debcache"))
        .args(["migrate", "--from", conf.to_str().unwrap(), "--apply", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let units_dir = top.path().join("units");
    std::fs::create_dir(&units_dir).unwrap();
    let (service, socket) = units(&units_dir);
    let drop_ins = units_dir.join("debcache.service.d");
    std::fs::create_dir(&drop_ins).unwrap();
    std::fs::copy(
        root.join("etc/systemd/system/debcache.service.d/apt-cacher-ng.conf"),
        drop_ins.join("apt-cacher-ng.conf"),
    )
    .unwrap();
    // Run as nobody, the test's cache is nobody's: migrate warns of it, as
    // systemd does, and that warning is the one allowed.
    let as_nobody = String::from_utf8_lossy(&out.stdout).contains("the cache is owned by nobody");
    let (ok, said) = analyze_in(Some(&units_dir), &["verify", "--man=no", &service, &socket]);
    let said: Vec<&str> = said
        .lines()
        .filter(|l| !(as_nobody && l.ends_with("Special user nobody configured, this is not safe!")))
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        ok && said.is_empty(),
        "systemd-analyze verify:\n{}",
        said.join("\n")
    );
    let level = exposure(Some(&units_dir), &service);
    assert!(level <= MAX_EXPOSURE, "exposure {level}");
}
