//! acngtool's commands in the debcache binary (spec §11.1): `printvar`,
//! `cfgdump`, `retest`, `encb64` on the daemon's configuration, `maint`
//! against a running daemon over its unix socket and over TCP, the binary
//! linked as `acngtool` and `expire-caller.pl`, and Debian's cron job.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{acng_head, put, Daemon};

const COUNT: &str = "?doCount=Count+Objects";
/// What the admin gate says to wrong credentials, as acng's error line.
const REFUSED: &str = "Maintenance refused: wrong AdminAuth credentials";

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

/// A directory with the binary linked as `name`.
fn linked(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join(name);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_debcache"), &link).unwrap();
    (dir, link)
}

/// A configuration directory holding one `acng.conf`.
fn conf_dir(conf: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acng.conf"), conf).unwrap();
    dir
}

/// A daemon with a unix socket and a TCP port, `conf` besides. Its
/// configuration says `Port: 0` (the daemon's port comes from its command
/// line), so a tool reading it has no TCP way to fall back on unless told.
struct WithSocket {
    daemon: Daemon,
    _dir: tempfile::TempDir,
    socket: PathBuf,
}

impl WithSocket {
    fn start(conf: &str) -> WithSocket {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("sock");
        let daemon = Daemon::start(&format!("Port: 0\nSocketPath: {}\n{conf}", socket.display()));
        WithSocket {
            daemon,
            _dir: dir,
            socket,
        }
    }

    /// The daemon's own configuration directory.
    fn conf(&self) -> String {
        self.daemon.dir.path().join("conf").display().to_string()
    }

    /// The setting that sends `maint` to this daemon's TCP port.
    fn tcp(&self) -> String {
        format!("BindAddress={}", self.daemon.addr)
    }
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
    let (code, _, stderr) = outcome(&debcache(&["maint", "-c", "/nonexistent/debcache-conf"], &[]));
    assert_eq!(code, Some(78));
    assert!(stderr.contains("/nonexistent/debcache-conf: error:"), "{stderr}");
    let (code, _, stderr) = outcome(&debcache(&["cfgdump", "Prot=1"], &[]));
    assert_eq!(code, Some(2), "an unknown key is a usage error");
    assert!(stderr.contains("did you mean `Port`"), "{stderr}");
}

#[test]
fn maint_runs_a_task_over_the_unix_socket() {
    let d = WithSocket::start("");
    put(&d.daemon.cache(), "r/a.deb", b"12");
    put(&d.daemon.cache(), "r/a.deb.head", acng_head(2).as_bytes());
    let out = debcache(&["maint", "-c", &d.conf()], &[("ACNGREQ", COUNT)]);
    assert_eq!(
        outcome(&out),
        (Some(0), String::new(), String::new()),
        "silent, as cron wants"
    );
    let out = debcache(&["maint", "--verbose", "-c", &d.conf()], &[("ACNGREQ", COUNT)]);
    let (code, stdout, _) = outcome(&out);
    assert_eq!(code, Some(0));
    assert!(
        stdout.lines().any(|l| l == "Scanned 1 files, 2 bytes."),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("Done."), "{stdout}");
    assert!(!stdout.contains('<'), "text, not HTML: {stdout}");
}

#[test]
fn maint_prints_the_tasks_errors_and_exits_0_for_a_whole_answer() {
    let d = WithSocket::start("");
    let deep = format!("r/{}", "d/".repeat(70));
    put(&d.daemon.cache(), &format!("{deep}x.deb"), b"1");
    let out = debcache(&["maint", "-c", &d.conf()], &[("ACNGREQ", COUNT)]);
    let (code, stdout, stderr) = outcome(&out);
    let error = format!(
        "Not counted: r/{}: more than 64 directories deep",
        "d/".repeat(65).trim_end_matches('/')
    );
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (Some(0), "", format!("{error}\n").as_str())
    );
}

#[test]
fn maint_by_default_runs_the_expiration() {
    let d = WithSocket::start("");
    // A fresh cache: the expiration is suppressed (ExStartTradeOff), a
    // warning, not an error: nothing for cron to mail.
    let out = debcache(&["maint", "-c", &d.conf()], &[]);
    assert_eq!(outcome(&out), (Some(0), String::new(), String::new()));
    let out = debcache(&["maint", "-c", &d.conf(), "--verbose"], &[]);
    let (code, stdout, _) = outcome(&out);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("Expiration suppressed"), "{stdout}");
}

#[test]
fn maint_over_tcp_without_a_socket() {
    let d = WithSocket::start("");
    let tcp = d.tcp();
    let out = debcache(
        &["maint", "-c", &d.conf(), "SocketPath=", &tcp],
        &[("ACNGREQ", COUNT)],
    );
    assert_eq!(outcome(&out), (Some(0), String::new(), String::new()));
}

#[test]
fn maint_sends_admin_auth_over_the_socket_and_over_tcp_only_when_insecure_is_set() {
    let d = WithSocket::start("AdminAuth: admin:secret");
    let conf = d.conf();
    let tcp = d.tcp();
    let count = [("ACNGREQ", COUNT)];
    let out = debcache(&["maint", "-c", &conf, &tcp], &count);
    assert_eq!(
        outcome(&out),
        (Some(0), String::new(), String::new()),
        "the socket, credentials and all"
    );

    let out = debcache(&["maint", "-c", &conf, "SocketPath=", &tcp], &count);
    let (code, _, stderr) = outcome(&out);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("AdminAuth is set") && stderr.contains("SocketPath is not set"),
        "{stderr}"
    );
    let missing = d.socket.with_file_name("missing");
    let elsewhere = format!("SocketPath={}", missing.display());
    let (code, _, stderr) = outcome(&debcache(&["maint", "-c", &conf, &elsewhere, &tcp], &count));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(&format!("{} is not accessible", missing.display())),
        "{stderr}"
    );

    let insecure = [("ACNGREQ", COUNT), ("ACNG_INSECURE", "1")];
    let out = debcache(&["maint", "-c", &conf, "SocketPath=", &tcp], &insecure);
    assert_eq!(outcome(&out), (Some(0), String::new(), String::new()), "over TCP");

    let out = debcache(&["maint", "-c", &conf, "AdminAuth=admin:wrong"], &count);
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[0], REFUSED, "the refusal's error line first: {stderr}");
    assert!(
        lines[1].contains(&format!(
            "{} answered 401 Not Authorized to /acng-report.html?doCount=Count+Objects",
            d.socket.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("is AdminAuth here the daemon's?"), "{stderr}");

    let wrong = [("ACNGREQ", COUNT), ("ACNG_INSECURE", "1")];
    let out = debcache(
        &["maint", "-c", &conf, "SocketPath=", &tcp, "AdminAuth=admin:wrong"],
        &wrong,
    );
    let (code, _, stderr) = outcome(&out);
    assert_eq!(code, Some(1));
    assert!(stderr.starts_with(&format!("{REFUSED}\n")), "{stderr}");
    assert!(
        stderr.contains(&format!("{} answered 401", d.daemon.addr)),
        "over TCP too: {stderr}"
    );
}

#[test]
fn maint_without_a_running_daemon_says_so_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    // A socket file nobody listens on, and a TCP port nobody listens on.
    let socket = dir.path().join("sock");
    drop(UnixListener::bind(&socket).unwrap());
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let conf = conf_dir(&format!(
        "SocketPath: {}\nBindAddress: 127.0.0.1:{port}\n",
        socket.display()
    ));
    let out = debcache(&["maint", "-c", conf.path().to_str().unwrap()], &[]);
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(lines[0].starts_with(&format!("debcache maint: {}: cannot connect: ", socket.display())));
    assert!(lines[1].starts_with(&format!("debcache maint: 127.0.0.1:{port}: cannot connect: ")));
    assert_eq!(
        lines[2],
        "debcache maint: could not reach the daemon; is it running?"
    );
}

#[test]
fn maint_with_no_report_page_exits_255() {
    let conf = conf_dir("ReportPage:\n");
    let out = debcache(&["maint", "-c", conf.path().to_str().unwrap()], &[]);
    let (code, _, stderr) = outcome(&out);
    assert_eq!(code, Some(255));
    assert!(stderr.contains("ReportPage is not set"), "{stderr}");
}

#[test]
fn linked_as_acngtool_it_takes_acngtools_command_line() {
    let (_dir, acngtool) = linked("acngtool");
    let conf = conf_dir("ReportPage: r.html\n");
    let c = conf.path().to_str().unwrap();
    let run = |args: &[&str]| outcome(&run_as(&acngtool, args, &[]));
    let (code, stdout, _) = run(&[]);
    assert_eq!(code, Some(3));
    assert!(
        stdout.starts_with("Usage: acngtool command parameter... [options]\n"),
        "{stdout}"
    );
    let (code, stdout, stderr) = run(&["-h"]);
    assert_eq!((code, stdout.as_str()), (Some(0), ""));
    assert!(stderr.starts_with("Usage: acngtool"), "{stderr}");
    for (args, wanted) in [
        (&["bogus"][..], 1),
        (&["--help"], 1),
        (&["shrink", "10G"], 97),
        (&["shrink", "10G", "-n", "-f"], 107),
        (&["printvar", "Port", "extra"], 2),
        (&["maint", "-c"], 2),
        (&["printvar"], 4),
        (&["retest"], 4),
        (&["printvar", "NoSuchSetting", "-c", c], 23),
    ] {
        assert_eq!(run(args).0, Some(wanted), "{args:?}");
    }
    assert_eq!(
        run(&["-c", c, "printvar", "ReportPage"]),
        (Some(0), "r.html\n".into(), String::new())
    );
    assert_eq!(
        run(&["printvar", "Port", "-c", c, "Port=3143"]).1,
        "3143\n",
        "options and settings after the command"
    );
    assert_eq!(run(&["retest", "/pool/a.deb", "-c", c]).1, "FILE_SOLID\n");
    assert_eq!(run(&["encb64", "user:pass"]).1, "dXNlcjpwYXNz\n");
    assert!(run(&["cfgdump", "-c", c]).1.contains("\nReportPage = r.html\n"));
}

#[test]
fn linked_as_expire_caller_it_is_maint() {
    let d = WithSocket::start("AdminAuth: admin:right\n");
    let (_dir, caller) = linked("expire-caller.pl");
    let out = run_as(&caller, &["-c", &d.conf()], &[("ACNGREQ", COUNT)]);
    assert_eq!(outcome(&out), (Some(0), String::new(), String::new()));
    let wrong = conf_dir(&format!(
        "SocketPath: {}\nAdminAuth: admin:wrong\n",
        d.socket.display()
    ));
    let out = run_as(
        &caller,
        &["-c", wrong.path().to_str().unwrap()],
        &[("ACNGREQ", COUNT)],
    );
    let (code, _, stderr) = outcome(&out);
    assert_eq!(code, Some(1));
    assert!(stderr.starts_with(&format!("{REFUSED}\n")), "{stderr}");
}

/// `/etc/cron.daily/apt-cacher-ng` of Debian's package (spec §11.2), its
/// paths made arguments: the tool, the configuration, the socket.
const CRON: &str = r#"
rpage=$("$1" -c "$2" 2>/dev/null printvar ReportPage)
if test 0 = $(echo "$rpage" | wc -w)
then
	echo Warning: ReportPage setting of apt-cacher-ng was disabled by administrator. >&2
	exit 42
fi
"$1" maint -c "$2" SocketPath="$3"
"#;

fn cron(acngtool: &Path, conf: &str, socket: &Path, env: &[(&str, &str)]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(CRON)
        .arg("cron.daily")
        .arg(acngtool)
        .arg(conf)
        .arg(socket)
        .env_remove("ACNGREQ")
        .env_remove("ACNG_INSECURE")
        .envs(env.iter().copied())
        .output()
        .expect("run sh")
}

#[test]
fn debians_cron_job_runs_against_debcache() {
    let d = WithSocket::start("AdminAuth: admin:right\n");
    let (_dir, acngtool) = linked("acngtool");
    // The socket given on the command line, as cron gives it; the
    // configuration has no TCP port to try instead.
    let conf = d.conf();
    let out = cron(&acngtool, &conf, &d.socket, &[("ACNGREQ", COUNT)]);
    assert_eq!(
        outcome(&out),
        (Some(0), String::new(), String::new()),
        "a quiet night"
    );

    // The default action, the expiration: suppressed on a fresh cache,
    // quietly.
    let out = cron(&acngtool, &conf, &d.socket, &[]);
    assert_eq!(outcome(&out), (Some(0), String::new(), String::new()));

    // Refused (the credentials changed on one side): cron gets output and
    // a failure.
    let wrong = conf_dir("AdminAuth: admin:wrong\n");
    let out = cron(&acngtool, wrong.path().to_str().unwrap(), &d.socket, &[]);
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert!(stderr.starts_with(&format!("{REFUSED}\n")), "{stderr}");

    let disabled = conf_dir("ReportPage:\n");
    let out = cron(&acngtool, disabled.path().to_str().unwrap(), &d.socket, &[]);
    let (code, _, stderr) = outcome(&out);
    assert_eq!(code, Some(42));
    assert!(
        stderr.contains("ReportPage setting of apt-cacher-ng was disabled"),
        "{stderr}"
    );
}
