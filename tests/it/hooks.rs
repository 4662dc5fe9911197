//! A repository's hooks (spec §5.4): `m.hooks` beside acng.conf for
//! `Remap-m`; PreUp before the first upstream request, Down `DownTimeout`
//! after the last transfer, bounded by `HookTimeout`.

use std::path::Path;
use std::time::Duration;

use crate::support::daemon::Setup;
use crate::support::http::Conn;
use crate::support::origin::{Fault, Origin};
use crate::support::{debcache, wait_for, Daemon};

const A: &str = "/debian/pool/main/a/a/a_1.0_all.deb";
const B: &str = "/debian/pool/main/b/b/b_1.0_all.deb";

fn url(path: &str) -> String {
    path.replacen("/debian", "/m", 1)
}

/// A daemon with `Remap-m` on `origin` and `hooks` as `m.hooks`.
fn daemon(origin: &Origin, hooks: &str, args: &[&str]) -> Daemon {
    let conf = format!("Remap-m: /m ; {}\n", origin.url("/debian"));
    Daemon::start_with(Setup {
        conf: &conf,
        args,
        conf_files: &[("m.hooks", hooks)],
        ..Setup::default()
    })
}

/// Hooks that append `up` and `down` to `log`.
fn logging_hooks(log: &Path, down_timeout: u64) -> String {
    format!(
        "PreUp: echo up >> {log}\nDown: echo down >> {log}\nDownTimeout: {down_timeout}\n",
        log = log.display()
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn get(daemon: &Daemon, path: &str) -> Vec<u8> {
    let r = Conn::open(daemon.addr).get(&url(path), &[]);
    assert_eq!(r.status, 200, "{}", daemon.stderr());
    r.body
}

#[test]
fn pre_up_runs_before_the_origin_is_asked() {
    let origin = Origin::start();
    origin.put(A, b"a".to_vec());
    let gate = origin.fault(A, Fault::PauseAt(0), 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("up");
    // Slow, so that a hook run beside the request would still be running
    // when the request arrives.
    let hooks = format!("PreUp: sleep 1; touch {}\n", marker.display());
    let daemon = daemon(&origin, &hooks, &[]);
    let mut c = Conn::open(daemon.addr);
    c.send("GET", &url(A), &[]);
    origin.wait_requests(A, 1);
    assert!(marker.exists(), "the origin was asked before PreUp ended");
    gate.release();
    assert_eq!(c.read(false).unwrap().body, b"a");
}

#[test]
fn down_runs_once_down_timeout_after_the_last_transfer_and_pre_up_again_after_it() {
    let origin = Origin::start();
    origin.put(A, b"a".to_vec());
    origin.put(B, b"b".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let daemon = daemon(&origin, &logging_hooks(&log, 1), &[]);
    assert_eq!(get(&daemon, A), b"a");
    wait_for("Down", || read(&log) == "up\ndown\n");
    assert_eq!(get(&daemon, B), b"b");
    wait_for("PreUp and Down again", || read(&log) == "up\ndown\nup\ndown\n");
    assert_eq!(origin.requests(A) + origin.requests(B), 2);
}

#[test]
fn a_relayed_request_runs_the_hooks_too_and_a_hit_runs_none() {
    let origin = Origin::start();
    origin.put(A, b"a".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let daemon = daemon(&origin, &logging_hooks(&log, 1), &[]);
    let mut c = Conn::open(daemon.addr);
    c.send("HEAD", &url(A), &[]);
    assert_eq!(c.read(true).unwrap().status, 200);
    assert_eq!(origin.seen()[0].method, "HEAD");
    wait_for("PreUp and Down around the HEAD", || read(&log) == "up\ndown\n");
    assert_eq!(get(&daemon, A), b"a");
    wait_for("PreUp and Down around the download", || {
        read(&log) == "up\ndown\nup\ndown\n"
    });
    assert_eq!(get(&daemon, A), b"a", "a hit");
    assert_eq!(origin.requests(A), 2);
    // A hit that took the link would have waited for PreUp to answer.
    assert_eq!(read(&log), "up\ndown\nup\ndown\n", "the hit ran a hook");
}

#[test]
fn a_request_within_down_timeout_cancels_down_and_runs_no_pre_up() {
    let origin = Origin::start();
    origin.put(A, b"a".to_vec());
    origin.put(B, b"b".to_vec());
    let gate = origin.fault(B, Fault::PauseAt(0), 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let daemon = daemon(&origin, &logging_hooks(&log, 3), &[]);
    assert_eq!(get(&daemon, A), b"a");
    // B starts within A's DownTimeout and is held past it.
    let mut c = Conn::open(daemon.addr);
    c.send("GET", &url(B), &[]);
    origin.wait_requests(B, 1);
    // An observation window longer than DownTimeout, not a synchronisation.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        read(&log),
        "up\n",
        "Down ran while B was in flight, or PreUp ran again"
    );
    gate.release();
    assert_eq!(c.read(false).unwrap().body, b"b");
    wait_for("Down after B", || read(&log) == "up\ndown\n");
}

#[test]
fn a_hanging_pre_up_is_killed_with_its_group_and_the_download_goes_on() {
    let origin = Origin::start();
    origin.put(A, b"a".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // The sleep is a child of the shell: only a kill of the group ends it.
    let hooks = format!("PreUp: sleep 1000 & echo $! > {}; wait\n", pid_file.display());
    let daemon = daemon(&origin, &hooks, &["HookTimeout=1"]);
    assert_eq!(get(&daemon, A), b"a");
    let pid: i32 = read(&pid_file).trim().parse().expect("the hook's sleep");
    wait_for("the hook's sleep to be killed", || gone(pid));
    wait_for("the timeout in the log", || {
        daemon.stderr().contains("the PreUp hook")
            && daemon.stderr().contains("killed with its process group")
    });
}

#[test]
fn hooks_inherit_neither_systemds_sockets_nor_its_variables() {
    use std::os::fd::AsRawFd;
    let origin = Origin::start();
    origin.put(A, b"a".to_vec());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (fds, env, done) = (
        dir.path().join("fds"),
        dir.path().join("env"),
        dir.path().join("done"),
    );
    std::fs::write(
        dir.path().join("acng.conf"),
        format!(
            "CacheDir: {}\nLogDir:\nPort: 1\nRemap-m: /m ; {}\n",
            dir.path().join("cache").display(),
            origin.url("/debian")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("m.hooks"),
        format!(
            "PreUp: ls -l /proc/$$/fd > {}; env > {}; touch {}\n",
            fds.display(),
            env.display(),
            done.display()
        ),
    )
    .unwrap();
    let mut child = crate::lifecycle::socket_activated(dir.path(), &[listener.as_raw_fd()], None)
        .env("NOTIFY_SOCKET", dir.path().join("no-notify"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let r = Conn::open(addr).get(&url(A), &[]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"a"[..]));
    assert!(done.exists(), "PreUp ran");
    let fds = read(&fds);
    assert!(!fds.contains("socket:"), "a socket was inherited: {fds}");
    let env = read(&env);
    for name in ["LISTEN_FDS=", "LISTEN_PID=", "NOTIFY_SOCKET="] {
        assert!(
            !env.lines().any(|l| l.starts_with(name)),
            "{name} passed on: {env}"
        );
    }
}

/// No such process, or a zombie waiting for whoever reaps orphans.
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_failing_hook_is_logged_with_its_status_and_the_download_goes_on() {
    let origin = Origin::start();
    origin.put(A, b"a".to_vec());
    let daemon = daemon(&origin, "PreUp: exit 3\n", &[]);
    assert_eq!(get(&daemon, A), b"a");
    let err = daemon.log_dir().join("apt-cacher.err");
    // Both: the test's copy of stderr comes from a reader thread, which may
    // lag behind the file.
    wait_for("the failure in apt-cacher.err and on stderr", || {
        read(&err).contains("the PreUp hook `exit 3` failed (exit status: 3)")
            && daemon.stderr().contains("exit status: 3")
    });
}

#[test]
fn check_reports_bad_hooks_lines_with_file_and_line_and_reads_the_first_directory_only() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    std::fs::write(
        first.path().join("acng.conf"),
        "Remap-m: /m ; http://127.0.0.1:9/debian\n",
    )
    .unwrap();
    std::fs::write(
        first.path().join("m.hooks"),
        "PreUp: true\nDownTimeout: soon\nPreUpp: x\nNoSuchHookKey: 1\n",
    )
    .unwrap();
    std::fs::write(second.path().join("m.hooks"), "garbage\n").unwrap();
    let (first_dir, second_dir) = (first.path().to_str().unwrap(), second.path().to_str().unwrap());
    let out = debcache(&["--check", "-c", first_dir, "-c", second_dir]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{report}");
    let hooks = first.path().canonicalize().unwrap().join("m.hooks");
    let at = |line: usize| format!("{}:{line}:", hooks.display());
    assert!(
        report.contains(&format!("{} error: DownTimeout: `soon` is not a number", at(2))),
        "{report}"
    );
    assert!(
        report.contains(&format!("{} error: unknown directive `PreUpp`", at(3))),
        "{report}"
    );
    assert!(
        report.contains(&format!("{} warning: unknown hooks key `NoSuchHookKey`", at(4))),
        "{report}"
    );
    let second_hooks = second.path().canonicalize().unwrap().join("m.hooks");
    assert!(
        !report.contains(&second_hooks.display().to_string()),
        "the second directory's hooks were read: {report}"
    );
    std::fs::write(first.path().join("m.hooks"), "PreUp: true\nDown: true\n").unwrap();
    let out = debcache(&["--check", "-c", first_dir]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.contains(&format!(
            "  hooks {}: PreUp, Down 30 s after the last connection",
            hooks.display()
        )),
        "{report}"
    );
}
