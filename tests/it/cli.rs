//! The command line on real configuration: `--check`, `--print-config`, the
//! exit codes, and the Debian package's `/etc/apt-cacher-ng` loaded unchanged.

use std::path::Path;

use crate::support::http::{self, Conn};
use crate::support::origin::Origin;
use crate::support::{copy_tree, debcache, fixture, Daemon};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The indented lines of `Remap-NAME:` in a `--print-config` output.
fn remap_block<'a>(printed: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("Remap-{name}:");
    printed
        .lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect()
}

fn count(block: &[&str], kind: &str) -> usize {
    block.iter().filter(|l| l.trim_start().starts_with(kind)).count()
}

fn fixture_args(conf: &Path) -> Vec<String> {
    vec![
        "-c".into(),
        conf.display().to_string(),
        format!("SupportDir={}", fixture("acng-3.7.4/support").display()),
    ]
}

fn run(extra: &[&str], conf: &Path) -> std::process::Output {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.extend(fixture_args(conf));
    debcache(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn debian_package_configuration_checks_clean() {
    let conf = fixture("acng-3.7.4/etc/apt-cacher-ng");
    let out = run(&["--check"], &conf);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(!stdout(&out).contains(": error:"), "{}", stdout(&out));
}

#[test]
fn check_says_what_it_checked_and_no_problems() {
    let conf = fixture("acng-3.7.4/etc/apt-cacher-ng");
    let report = stdout(&run(&["--check"], &conf));
    let lines: Vec<&str> = report.lines().collect();
    let conf = conf.display();
    let support = fixture("acng-3.7.4/support");
    let support = support.display();
    assert_eq!(
        lines[..6],
        [
            format!("read {conf}/acng.conf"),
            format!("read {conf}/security.conf"),
            format!("read {conf}/zz_debconf.conf"),
            "Remap-debrep: 506 merging URLs, 1 backend".to_string(),
            format!("  list {support}/deb_mirrors.gz: 505 URLs"),
            format!("  list {conf}/backends_debian.default: 1 URL"),
        ]
    );
    assert!(lines.contains(&"Remap-secdeb: 5 merging URLs, 3 backends"));
    assert!(lines.contains(&"Remap-cygwin: 51 merging URLs, no backend (downloads go to the URL asked for)"));
    assert!(lines.contains(&"11 remaps: 2217 merging URLs and 8 backends; 14 list files read"));
    assert_eq!(lines.last(), Some(&"no problems"), "{report}");
}

#[test]
fn print_config_resolves_the_debian_remaps() {
    let out = run(
        &["--print-config", "--full"],
        &fixture("acng-3.7.4/etc/apt-cacher-ng"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = stdout(&out);
    let debrep = remap_block(&printed, "debrep");
    assert_eq!((count(&debrep, "merge "), count(&debrep, "backend ")), (506, 1));
    assert!(debrep.contains(&"  merge http://ftp.de.debian.org/debian/"));
    assert!(debrep.contains(&"  merge http://debian/"), "the /debian alias");
    assert!(debrep.contains(&"  backend http://ftp.debian.org/debian/"));
    let uburep = remap_block(&printed, "uburep");
    assert_eq!((count(&uburep, "merge "), count(&uburep, "backend ")), (790, 1));
    assert!(uburep.contains(&"  merge http://ac.archive.ubuntu.com/ubuntu/"));
    assert!(uburep.contains(&"  backend http://archive.ubuntu.com/ubuntu/"));
    let secdeb = remap_block(&printed, "secdeb");
    assert_eq!(
        secdeb,
        [
            "  merge http://security.debian.org/",
            "  merge http://security.debian.org/debian-security/",
            "  merge http://deb.debian.org/debian-security/",
            "  merge http://debian-security/",
            "  merge http://cdn-fastly.deb.debian.org/debian-security/",
            "  backend http://deb.debian.org/debian-security/",
            "  backend http://security.debian.org/",
            "  backend http://cdn-fastly.deb.debian.org/debian-security/",
        ]
    );
    assert!(printed.contains("\nReportPage: acng-report.html\n"));
    assert!(printed.contains("\nExThreshold: 4\n"));
    assert!(printed.starts_with("CacheDir: /var/cache/apt-cacher-ng\n"));
}

#[test]
fn print_config_shows_lists_by_name_and_count_and_perms_in_octal() {
    let out = run(&["--print-config"], &fixture("acng-3.7.4/etc/apt-cacher-ng"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(
        printed.contains("\nDirPerms: 0755\nFilePerms: 0664\n"),
        "{printed}"
    );
    let remaps: Vec<&str> = printed.lines().filter(|l| l.starts_with("Remap-")).collect();
    assert_eq!(remaps.len(), 11, "{printed}");
    assert_eq!(
        remaps[0],
        "Remap-debrep: file:deb_mirror*.gz (505 URLs) /debian ; file:backends_debian (1 URL)"
    );
    assert!(remaps.contains(&"Remap-cygwin: file:cygwin_mirrors (50 URLs) /cygwin"));
    assert!(!printed.contains("\n  merge "));
    assert!(printed.lines().count() < 150, "{printed}");
    let usage = debcache(&["--full"]);
    assert_eq!(usage.status.code(), Some(2), "--full needs --print-config");
}

#[test]
fn purged_default_lists_fall_back_to_the_compiled_ones() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("apt-cacher-ng");
    copy_tree(&fixture("acng-3.7.4/etc/apt-cacher-ng"), &conf);
    for name in [
        "backends_debian.default",
        "backends_ubuntu.default",
        "backends_gentoo.default",
        "backends_kali.default",
    ] {
        std::fs::remove_file(conf.join(name)).unwrap();
        std::os::unix::fs::symlink(
            format!("/nonexistent/var/lib/apt-cacher-ng/{name}"),
            conf.join(name),
        )
        .unwrap();
    }
    let checked = run(&["--check"], &conf);
    assert_eq!(checked.status.code(), Some(0), "{}", stdout(&checked));
    let report = stdout(&checked);
    for token in ["file:backends_debian", "file:backends_ubuntu"] {
        assert!(
            report.contains(&format!("`{token}` matched nothing in"))
                && report.contains("using the list compiled into debcache"),
            "{token}: {report}"
        );
    }
    assert!(report.contains("cannot read list"), "{report}");
    let printed = stdout(&run(&["--print-config", "--full"], &conf));
    let debrep = remap_block(&printed, "debrep");
    assert_eq!((count(&debrep, "merge "), count(&debrep, "backend ")), (506, 1));
    assert!(remap_block(&printed, "uburep").contains(&"  backend http://archive.ubuntu.com/ubuntu/"));
}

#[test]
fn rfc822_mirror_lists_resolve_sites_paths_and_aliases() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("mirror-lists/rfc822-sample"),
        dir.path().join("rfc822-sample"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("acng.conf"),
        "Remap-sample: file:rfc822-sample ; file:rfc822-sample\n",
    )
    .unwrap();
    let out = debcache(&["--print-config", "--full", "-c", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = stdout(&out);
    let block = remap_block(&printed, "sample");
    let merges: Vec<_> = block
        .iter()
        .filter(|l| l.trim_start().starts_with("merge "))
        .copied()
        .collect();
    assert_eq!(
        merges,
        [
            "  merge http://ftp.example-one.org/debian/",
            "  merge http://ftp2.example-one.org/debian/",
            "  merge http://mirror.example-two.net/pub/linux/debian/",
            "  merge http://debian.example-two.net/pub/linux/debian/",
            "  merge http://deb.example-two.net/pub/linux/debian/",
            "  merge http://old.example-three.com/mirror/debian/",
        ]
    );
    assert_eq!(count(&block, "backend "), 6);
    assert!(
        stderr(&out).contains("site(s) without Archive-http ignored, first: cdimage-only.example-four.org")
    );
}

#[test]
fn bad_configuration_lists_every_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acng.conf"),
        "Port: many\nRemap-x: /x ; ftp://nope/\nNetworkTimeOut: 10\nVfilePatternEx: (\nCachDir: /tmp\n",
    )
    .unwrap();
    let conf = dir.path().to_str().unwrap();
    let daemon = debcache(&["-c", conf, "BindAddress=127.0.0.1:0"]);
    assert_eq!(daemon.status.code(), Some(78));
    let listed = stderr(&daemon);
    for line in [1, 2, 4, 5] {
        assert!(
            listed.contains(&format!("acng.conf:{line}: error:")),
            "line {line}: {listed}"
        );
    }
    let checked = debcache(&["--check", "-c", conf]);
    assert_eq!(checked.status.code(), Some(1));
    assert_eq!(
        stdout(&checked)
            .lines()
            .filter(|l| l.contains(": error:"))
            .count(),
        4,
        "{}",
        stdout(&checked)
    );
    assert!(
        stdout(&checked).ends_with("\n4 errors: debcache would not start\n"),
        "{}",
        stdout(&checked)
    );
}

#[test]
fn warnings_alone_pass_the_check() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acng.conf"), "SomeFutureKnob: 1\nUseWrap: 1\n").unwrap();
    let out = debcache(&["--check", "-c", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let report = stdout(&out);
    assert!(
        report.contains("acng.conf:1: warning: unknown directive `SomeFutureKnob`"),
        "{report}"
    );
    assert!(
        report.contains("acng.conf:2: note: UseWrap is accepted and ignored by design"),
        "{report}"
    );
    assert!(report.ends_with("\n1 warning, no errors\n"), "{report}");
}

#[test]
fn unknown_override_is_a_usage_error() {
    let out = debcache(&["--check", "NoSuchDirective=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown directive `NoSuchDirective`"));
    assert_eq!(debcache(&["--no-such-flag"]).status.code(), Some(2));
}

#[test]
fn overrides_win_over_files_case_insensitively() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acng.conf"), "Port: 1111\n").unwrap();
    let out = debcache(&[
        "--print-config",
        "-c",
        dir.path().to_str().unwrap(),
        "port:2222",
        "OFFLINEMODE=1",
    ]);
    let printed = stdout(&out);
    assert!(
        printed.contains("\nPort: 2222\n") && printed.contains("\nOfflineMode: 1\n"),
        "{printed}"
    );
}

/// Runs debcache with stdout (`stdout: true`) or stderr a pipe whose reader
/// is closed before it starts, so its first write there fails with EPIPE.
fn with_closed_pipe(stdout: bool, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_debcache"));
    command.args(args).env("RUST_LOG", "warn");
    if stdout {
        command.stdout(writer).stderr(std::process::Stdio::piped());
    } else {
        command.stderr(writer).stdout(std::process::Stdio::piped());
    }
    command.output().unwrap()
}

#[test]
fn print_config_into_a_closed_pipe_ends_quietly() {
    let conf = fixture("acng-3.7.4/etc/apt-cacher-ng");
    let args = fixture_args(&conf);
    let mut words: Vec<&str> = args.iter().map(String::as_str).collect();
    for mode in ["--print-config", "--check", "--help"] {
        words.insert(0, mode);
        let out = with_closed_pipe(true, &words);
        words.remove(0);
        assert_eq!(out.status.code(), Some(0), "{mode}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{mode}");
    }
}

#[test]
fn check_into_a_closed_pipe_keeps_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acng.conf"), "Port: many\n").unwrap();
    let out = with_closed_pipe(true, &["--check", "-c", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn a_closed_stderr_does_not_turn_a_refusal_into_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acng.conf"), "Port: many\n").unwrap();
    let out = with_closed_pipe(false, &["-c", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn print_config_onto_a_full_disk_says_so() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full here");
        return;
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_debcache"))
        .args([
            "--print-config",
            "-c",
            fixture("acng-3.7.4/etc/apt-cacher-ng").to_str().unwrap(),
        ])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(74));
    assert!(
        stderr(&out).contains("cannot write the output: No space left on device"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_log_that_is_not_a_terminal_carries_no_colour_codes() {
    let mut daemon = Daemon::start("");
    let mut c = Conn::open(daemon.addr);
    c.send("GET", "/", &[]);
    assert_eq!(c.read(false).unwrap().status, 200);
    assert!(daemon.stop().unwrap().success());
    let log = daemon.stderr();
    assert!(log.contains("stopped"), "{log}");
    assert!(!log.contains('\x1b'), "{log:?}");
}

/// The daemon's stderr, read from a terminal it was given, from its start
/// to its exit after one SIGTERM.
fn stderr_on_a_terminal(no_color: Option<&str>) -> String {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: plain libc calls on a descriptor this function owns; the name
    // buffer is large enough and NUL-terminated by ptsname_r.
    let (master, slave) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = std::fs::File::from(OwnedFd::from_raw_fd(fd));
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_str()
            .unwrap()
            .to_string();
        let slave = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        (master, slave)
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acng.conf"),
        format!(
            "CacheDir: {}\nLogDir: {}\n",
            dir.path().join("cache").display(),
            dir.path().join("log").display()
        ),
    )
    .unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_debcache"));
    command
        .args(["-c", dir.path().to_str().unwrap(), "BindAddress=127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(slave);
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let mut child = command.spawn().unwrap();
    drop(command);
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut master = master;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the daemon, the last holder of the terminal, exits.
        while let Ok(n @ 1..) = master.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains("cache directory") {
                let _ = tx.send(());
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("the daemon logs its cache directory");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    reader.join().unwrap()
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let coloured = stderr_on_a_terminal(None);
    assert!(
        coloured.contains("stopped") && coloured.contains('\x1b'),
        "{coloured:?}"
    );
    let empty = stderr_on_a_terminal(Some(""));
    assert!(empty.contains('\x1b'), "an empty NO_COLOR is unset: {empty:?}");
    let plain = stderr_on_a_terminal(Some("1"));
    assert!(plain.contains("stopped") && !plain.contains('\x1b'), "{plain:?}");
}

#[test]
fn a_missing_config_directory_is_reported_as_its_own_not_built_in() {
    let daemon = debcache(&["-c", "/nonexistent/debcache-conf", "BindAddress=127.0.0.1:0"]);
    assert_eq!(daemon.status.code(), Some(78));
    assert!(
        stderr(&daemon).starts_with("/nonexistent/debcache-conf: error: no such configuration directory\n"),
        "{}",
        stderr(&daemon)
    );
    let checked = debcache(&["--check", "-c", "/nonexistent/debcache-conf"]);
    assert_eq!(checked.status.code(), Some(1));
    assert!(
        stdout(&checked).starts_with("/nonexistent/debcache-conf: error: no such configuration directory\n"),
        "{}",
        stdout(&checked)
    );
    assert!(!stdout(&checked).contains("built-in"));
}

#[test]
fn help_names_common_keys_overrides_exit_codes_and_signals() {
    let out = debcache(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for needle in [
        "Port=3142",
        "BindAddress=",
        "CacheDir=",
        "AllowUserPorts=",
        "KEY=VALUE (or KEY:VALUE) words after the options override the files",
        "--full",
        "SIGTERM, SIGINT",
        "SIGUSR1",
        "SIGHUP",
        "NO_COLOR",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    for (code, meaning) in [
        (0, "success"),
        (1, "--check found errors"),
        (2, "command-line usage error"),
        (69, "cannot bind"),
        (
            74,
            "--check, --print-config or a command could not write its output",
        ),
        (78, "the configuration has errors"),
        (23, "printvar: no such setting"),
        (1, "maint: the daemon was not reached"),
        (255, "maint: ReportPage is empty"),
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code:<4}{meaning}"))),
            "exit code {code}: {help}"
        );
    }
    // The worked example must stay a line that works.
    let example = help
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Remap-deb: "))
        .expect("a Remap example");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acng.conf"), format!("{example}\n")).unwrap();
    let checked = debcache(&["--check", "-c", dir.path().to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(0), "{}", stdout(&checked));
    assert!(
        stdout(&checked).contains("Remap-deb: 2 merging URLs, 1 backend\n"),
        "{}",
        stdout(&checked)
    );
    let short = stdout(&debcache(&["-h"]));
    assert!(short.contains("Run `debcache --help` for examples"), "{short}");
}

#[test]
fn the_readme_remap_example_is_a_working_line() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let example = readme
        .lines()
        .find(|l| l.starts_with("Remap-corp: "))
        .expect("the README's Remap example");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acng.conf"), format!("{example}\n")).unwrap();
    let checked = debcache(&["--check", "-c", dir.path().to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(0), "{}", stdout(&checked));
    assert!(
        stdout(&checked).contains("\nRemap-corp: 2 merging URLs, 2 backends\n"),
        "{}",
        stdout(&checked)
    );
}

/// The runtime's threads (workers and blocking pool) of process `pid`:
/// besides them there are only the main thread and jemalloc's background
/// thread.
fn runtime_threads(pid: i32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("tokio"))
        .count()
}

#[test]
fn stopped_is_logged_when_nothing_is_left_running_and_the_exit_follows() {
    const LEN: usize = 32 << 20;
    let origin = Origin::start();
    origin.put("/debian/pool/big.deb", vec![7u8; LEN]);
    let conf = format!("Remap-r: /r ; {}\n", origin.url("/debian/"));
    let mut daemon = Daemon::start(&conf);
    // The download's commit (an fdatasync, then the .head) is likely still
    // running on the blocking pool when the signal arrives.
    let got = http::get(daemon.addr, "/r/pool/big.deb");
    assert_eq!((got.status, got.body.len()), (200, LEN));
    daemon.signal(libc::SIGTERM);
    let guard = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let head = daemon.cache().join("r/pool/big.deb.head");
    let committed = loop {
        if daemon.stderr().contains("debcache::daemon: stopped") {
            // The sidecar is there from the download's start; complete only
            // once committed.
            break std::fs::read(&head).is_ok_and(|bytes| {
                debcache::cache::Head::parse(&bytes).is_ok_and(|h| h.is_complete(LEN as u64))
            });
        }
        assert!(
            std::time::Instant::now() < guard,
            "no `stopped`: {}",
            daemon.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    assert!(
        committed,
        "`stopped` was logged before the download was committed"
    );
    // A pool thread signals its end a moment before the kernel lets it
    // go: on a loaded machine /proc may list it for a while after
    // `stopped`, running nothing.
    let gone = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while runtime_threads(daemon.pid()) > 0 {
        assert!(
            std::time::Instant::now() < gone,
            "runtime threads still running after `stopped`"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let status = daemon
        .wait(std::time::Duration::from_secs(10))
        .expect("exits after `stopped`");
    assert!(status.success());
    let log = daemon.stderr();
    assert!(log.trim_end().ends_with("debcache::daemon: stopped"), "{log}");
}
