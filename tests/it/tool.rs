//! acngtool's commands in the debcache binary (spec §11.1): `printvar`,
//! `cfgdump`, `retest`, `encb64` on the daemon's configuration.

use std::path::Path;
use std::process::{Command, Output};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `program` (the binary or a link to it) with `args` and `env`.
fn run_as(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(program)
        .args(args)
        .env_remove("ACNGREQ")
        .env_remove("ACNG_INSECURE")
        .envs(env.iter().copied())
        .output()
        .expect("run debcache")
}

fn debcache(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_as(Path::new(env!("CARGO_BIN_EXE_debcache")), args, env)
}

/// `(code, stdout, stderr)`.
fn outcome(out: &Output) -> (Option<i32>, String, String) {
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// A configuration directory holding one `acng.conf`.
fn conf_dir(conf: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acng.conf"), conf).unwrap();
    dir
}

#[test]
fn printvar_prints_one_setting_and_exits_23_for_no_setting() {
    let conf = conf_dir("ReportPage: /my-report.html\nExThreshold: 4\nAdminAuth: admin:secret\n");
    let c = conf.path().to_str().unwrap();
    let out = debcache(&["printvar", "ReportPage", "-c", c], &[]);
    assert_eq!(outcome(&out), (Some(0), "my-report.html\n".into(), String::new()));
    let out = debcache(&["-c", c, "printvar", "extreshold"], &[]);
    assert_eq!(
        outcome(&out),
        (Some(0), "4\n".into(), String::new()),
        "an old spelling, any case"
    );
    let out = debcache(&["printvar", "Port", "-c", c, "Port=3143"], &[]);
    assert_eq!(text(&out.stdout), "3143\n");
    for name in ["NoSuchSetting", "AdminAuth", "Remap-debrep"] {
        let (code, stdout, stderr) = outcome(&debcache(&["printvar", name, "-c", c], &[]));
        assert_eq!((code, stdout.as_str()), (Some(23), ""), "{name}");
        assert!(!stderr.contains("secret"), "{stderr}");
    }
}

#[test]
fn cfgdump_lists_every_setting_with_admin_auth_hidden() {
    let conf = tempfile::tempdir().unwrap();
    std::fs::write(
        conf.path().join("acng.conf"),
        "Proxy: http://user:proxypw@proxy:3128/\n",
    )
    .unwrap();
    std::fs::write(conf.path().join("security.conf"), "AdminAuth: admin:secret\n").unwrap();
    let out = debcache(&["cfgdump", "-c", conf.path().to_str().unwrap()], &[]);
    let (code, dump, stderr) = outcome(&out);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        dump.starts_with("CacheDir = /var/cache/apt-cacher-ng\n"),
        "{dump}"
    );
    for line in [
        "AdminAuth = ********",
        "Proxy = http://user:***@proxy:3128/",
        "ReportPage = acng-report.html",
        "Port = 3142",
    ] {
        assert!(dump.lines().any(|l| l == line), "{line} missing:\n{dump}");
    }
    assert!(!dump.contains("secret") && !dump.contains("proxypw"), "{dump}");
    assert!(dump.lines().all(|l| l.contains(" = ")), "{dump}");
}

#[test]
fn retest_classifies_paths_as_the_daemon_does() {
    for (path, verdict) in [
        ("/debian/pool/main/h/hello/hello_2.10-3_amd64.deb", "FILE_SOLID"),
        ("/debian/dists/bookworm/InRelease", "FILE_VOLATILE"),
        (
            "/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/0123abcd",
            "FILE_SOLID",
        ),
        ("garbage", "NOMATCH"),
        ("/foo/bar.html", "NOMATCH"),
    ] {
        let out = debcache(&["retest", path], &[]);
        assert_eq!(
            outcome(&out),
            (Some(0), format!("{verdict}\n"), String::new()),
            "{path}"
        );
    }
    let out = debcache(&["retest", "/x/y.snap", r"PfilePatternEx=\.snap$"], &[]);
    assert_eq!(text(&out.stdout), "FILE_SOLID\n", "the configuration's patterns");
}

#[test]
fn encb64_prints_the_basic_credentials() {
    let out = debcache(&["encb64", "admin:secret"], &[]);
    assert_eq!(
        outcome(&out),
        (Some(0), "YWRtaW46c2VjcmV0\n".into(), String::new())
    );
}

#[test]
fn a_bad_configuration_is_reported_as_the_daemon_reports_it() {
    let conf = conf_dir("Port: many\n");
    let c = conf.path().to_str().unwrap();
    let (code, stdout, stderr) = outcome(&debcache(&["printvar", "Port", "-c", c], &[]));
    assert_eq!((code, stdout.as_str()), (Some(78), ""));
    assert!(stderr.contains("acng.conf:1: error:"), "{stderr}");
    let (code, _, stderr) = outcome(&debcache(&["cfgdump", "-c", "/nonexistent/debcache-conf"], &[]));
    assert_eq!(code, Some(78));
    assert!(stderr.contains("/nonexistent/debcache-conf: error:"), "{stderr}");
    let (code, _, stderr) = outcome(&debcache(&["cfgdump", "Prot=1"], &[]));
    assert_eq!(code, Some(2), "an unknown key is a usage error");
    assert!(stderr.contains("did you mean `Port`"), "{stderr}");
}
