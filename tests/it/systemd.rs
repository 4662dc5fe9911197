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
    let out = Command::new("systemd-analyze")
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

    let (_, said) = analyze(&["security", "--offline=true", "--no-pager", &service]);
    let level: f64 = said
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for debcache.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{said}"));
    assert!(level <= MAX_EXPOSURE, "exposure {level}:\n{said}");
}
