//! Starting, sharing and stopping: the drain deadline, the second signal,
//! the cache lock, a port in use, the unix socket, the connection cap.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use crate::support::http::Conn;
use crate::support::{acng_head, put, Daemon, Setup};

const BIG: usize = 64 << 20;

/// A daemon with one large cached file and a client stalled in the middle
/// of downloading it. The cache's directory goes when the test drops it,
/// after the daemon.
fn stalled_transfer(drain: &str) -> (tempfile::TempDir, Daemon, Conn, usize) {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    put(&cache, "h.example/p/big.deb", &vec![7u8; BIG]);
    put(&cache, "h.example/p/big.deb.head", acng_head(BIG).as_bytes());
    let daemon = Daemon::start_with(Setup {
        conf: drain,
        cache: Some(&cache),
        ..Setup::default()
    });
    let mut c = Conn::open(daemon.addr);
    c.stream()
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    c.send("GET", "/h.example/p/big.deb", &[]);
    let mut first = [0u8; 4096];
    let n = c.stream().read(&mut first).unwrap();
    assert!(n > 0 && first.starts_with(b"HTTP/1.1 200"));
    (root, daemon, c, n)
}

#[test]
fn a_transfer_still_running_at_the_drain_deadline_is_cut() {
    let (_root, mut daemon, c, mut received) = stalled_transfer("DrainTimeout: 1");
    daemon.signal(libc::SIGTERM);
    let status = daemon
        .wait(Duration::from_secs(30))
        .expect("the daemon stops after the deadline");
    assert!(status.success(), "{status:?}");
    let mut rest = Vec::new();
    let mut stream = c.stream();
    let _ = stream.read_to_end(&mut rest);
    received += rest.len();
    assert!(
        received < BIG,
        "the body was cut, not completed ({received} bytes)"
    );
}

#[test]
fn a_second_signal_stops_at_once_and_leaves_no_pid_file_or_socket() {
    let files = tempfile::tempdir().unwrap();
    let (pid_file, socket) = (files.path().join("pid"), files.path().join("sock"));
    let conf = format!(
        "DrainTimeout: 30\nPidFile: {}\nSocketPath: {}\n",
        pid_file.display(),
        socket.display()
    );
    let (_root, mut daemon, _client, _) = stalled_transfer(&conf);
    assert!(pid_file.exists() && socket.exists());
    daemon.signal(libc::SIGTERM);
    for _ in 0..2000 {
        if daemon.stderr().contains("stopping") {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    daemon.signal(libc::SIGTERM);
    let status = daemon
        .wait(Duration::from_secs(20))
        .expect("exits long before the 30 s drain");
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert!(!pid_file.exists(), "the pid file is removed");
    assert!(!socket.exists(), "the unix socket is removed");
}

#[test]
fn an_idle_daemon_stops_cleanly_and_removes_its_pid_file() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("debcache.pid");
    let conf = format!("PidFile: {}", pid_file.display());
    let mut daemon = Daemon::start(&conf);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        daemon.pid().to_string()
    );
    assert!(daemon.stop().unwrap().success());
    assert!(!pid_file.exists());
}

#[test]
fn the_lock_refuses_a_second_daemon_on_the_same_cache() {
    let first = Daemon::start("");
    let cache = first.cache();
    let second = Daemon::try_start(Setup {
        cache: Some(&cache),
        ..Setup::default()
    });
    let (status, stderr) = second.err().expect("the second daemon must not start");
    assert_eq!(status.and_then(|s| s.code()), Some(69));
    assert!(
        stderr.contains(&format!(
            "another debcache (pid {}) is using this cache",
            first.pid()
        )),
        "{stderr}"
    );
}

/// The packaged service names its directories in its conffile; one it
/// cannot write stops it with EX_CONFIG (which the unit does not restart)
/// and a line naming the key, the directory and the user.
#[test]
fn a_directory_the_daemon_cannot_write_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let in_the_way = dir.path().join("file");
    std::fs::write(&in_the_way, "").unwrap();
    for (key, what) in [
        ("CacheDir", "the cache directory"),
        ("LogDir", "the log directory"),
    ] {
        let arg = format!("{key}={}", in_the_way.join("below").display());
        let (status, stderr) = Daemon::try_start(Setup {
            args: &[&arg],
            ..Setup::default()
        })
        .err()
        .expect("must not start");
        assert_eq!(status.and_then(|s| s.code()), Some(78), "{stderr}");
        let line = format!(
            "cannot write {what} {}/below ({key}, as uid ",
            in_the_way.display()
        );
        assert!(stderr.contains(&line), "{stderr}");
    }
}

#[test]
fn a_port_in_use_is_reported_with_exit_69() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let arg = format!("BindAddress=127.0.0.1:{port}");
    let (status, stderr) = Daemon::try_start(Setup {
        args: &[&arg],
        ..Setup::default()
    })
    .err()
    .expect("must not start");
    assert_eq!(status.and_then(|s| s.code()), Some(69));
    assert!(stderr.contains("already in use"), "{stderr}");
}

#[test]
fn the_unix_socket_serves_identified_clients() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/debcache.sock");
    let mut daemon = Daemon::start(&format!("SocketPath: {}", socket.display()));
    put(&daemon.cache(), "h.example/p/a.deb", b"abc");
    put(&daemon.cache(), "h.example/p/a.deb.head", acng_head(3).as_bytes());

    let mut s = UnixStream::connect(&socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nX-Original-Source: 192.0.2.44\r\n\r\n")
        .unwrap();
    s.write_all(b"GET /h.example/p/a.deb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200 OK"),
        "only the second request is answered: {answer}"
    );
    assert!(answer.ends_with("abc"));

    let mut anonymous = UnixStream::connect(&socket).unwrap();
    anonymous.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    anonymous
        .write_all(b"GET /h.example/p/a.deb HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut nothing = Vec::new();
    let _ = anonymous.read_to_end(&mut nothing);
    assert!(nothing.is_empty(), "closed without an answer");

    assert!(daemon.stop().unwrap().success());
    assert_eq!(
        daemon
            .transfer_log()
            .iter()
            .filter(|l| l.contains("|192.0.2.44|h.example/p/a.deb"))
            .count(),
        1
    );
    assert!(!socket.exists(), "the socket is removed at exit");
}

#[test]
fn the_connection_cap_makes_clients_wait_not_fail() {
    let daemon = Daemon::start("MaxConThreads: 1");
    put(&daemon.cache(), "h.example/p/a.deb", b"abc");
    put(&daemon.cache(), "h.example/p/a.deb.head", acng_head(3).as_bytes());
    let mut first = Conn::open(daemon.addr);
    assert_eq!(first.get("/h.example/p/a.deb", &[]).status, 200);
    let mut second = Conn::open(daemon.addr);
    second.send("GET", "/h.example/p/a.deb", &[]);
    // The daemon answers the first connection after the second asked...
    assert_eq!(first.get("/h.example/p/a.deb", &[]).body, b"abc");
    // ...and has not answered the second, not even with a 503: it was
    // never accepted. True whenever it is checked, so checked without waiting.
    second.stream().set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let early = second.stream().peek(&mut byte).map_err(|e| e.kind());
    assert_eq!(
        early.err(),
        Some(std::io::ErrorKind::WouldBlock),
        "no answer while the first holds the slot: {early:?}"
    );
    second.stream().set_nonblocking(false).unwrap();
    drop(first);
    let r = second.read(false).expect("answered once the slot is free");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
}

#[test]
fn running_out_of_descriptors_does_not_end_the_accept_loop() {
    let daemon = Daemon::start_with(Setup {
        fd_limit: Some(40),
        ..Setup::default()
    });
    put(&daemon.cache(), "h.example/p/a.deb", b"abc");
    put(&daemon.cache(), "h.example/p/a.deb.head", acng_head(3).as_bytes());
    let hogs: Vec<_> = (0..60)
        .map(|_| std::net::TcpStream::connect(daemon.addr).unwrap())
        .collect();
    for _ in 0..2000 {
        if daemon.stderr().contains("accept failed") {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(daemon.stderr().contains("accept failed"), "{}", daemon.stderr());
    drop(hogs);
    // The daemon notices the closed connections one by one; until then a
    // request may still find no descriptor for the cached file (a 500).
    let mut body = Vec::new();
    for _ in 0..500 {
        body = Conn::open(daemon.addr).get("/h.example/p/a.deb", &[]).body;
        if body == b"abc" {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(body, b"abc", "serving again once descriptors are free");
}

#[test]
fn sigusr1_reopens_the_transfer_log() {
    let mut daemon = Daemon::start("UnbufferLogs: 1");
    put(&daemon.cache(), "h.example/p/a.deb", b"abc");
    put(&daemon.cache(), "h.example/p/a.deb.head", acng_head(3).as_bytes());
    let log = daemon.log_dir().join("apt-cacher.log");
    drop(Conn::open(daemon.addr).get("/h.example/p/a.deb", &[]));
    let rotated = daemon.log_dir().join("apt-cacher.log.1");
    for _ in 0..2000 {
        if std::fs::metadata(&log).map(|m| m.len() > 0).unwrap_or(false) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::rename(&log, &rotated).unwrap();
    daemon.signal(libc::SIGUSR1);
    for _ in 0..2000 {
        if log.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(Conn::open(daemon.addr).get("/h.example/p/a.deb", &[]));
    assert!(daemon.stop().unwrap().success());
    assert_eq!(std::fs::read_to_string(&rotated).unwrap().lines().count(), 1);
    assert_eq!(
        daemon.transfer_log().len(),
        1,
        "the second transfer went to the new file"
    );
}

/// How systemd would start the daemon on `dir`'s configuration with `fds`
/// as descriptors 3, 4, …: `LISTEN_FDS`, and `LISTEN_PID` the daemon's own
/// (a shell's `$$`, which `exec` keeps), or `pid`, or none when `pid` is
/// empty.
pub(crate) fn socket_activated(
    dir: &std::path::Path,
    fds: &[i32],
    pid: Option<&str>,
) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let assign = match pid {
        None => "LISTEN_PID=$$ ".to_string(),
        Some("") => String::new(),
        Some(pid) => format!("LISTEN_PID={pid} "),
    };
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{assign}exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_debcache"))
        .arg("-c")
        .arg(dir)
        .env("LISTEN_FDS", fds.len().to_string())
        .env("RUST_LOG", "warn")
        .env_remove("LISTEN_PID");
    let fds = fds.to_vec();
    // SAFETY: only dup2 and fcntl, async-signal-safe, run between fork and exec.
    unsafe {
        command.pre_exec(move || {
            for (n, &from) in fds.iter().enumerate() {
                let to = 3 + n as i32;
                if libc::dup2(from, to) < 0 || libc::fcntl(to, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command
}

#[test]
fn sockets_passed_by_systemd_are_used_instead_of_binding() {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acng.conf"),
        format!(
            "CacheDir: {}\nLogDir:\nPort: 1\n",
            dir.path().join("cache").display()
        ),
    )
    .unwrap();
    let mut child = socket_activated(dir.path(), &[listener.as_raw_fd()], None)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = Conn::open(addr);
    assert_eq!(c.get("/", &[]).status, 200, "served on the inherited socket");
    let port_1 = std::net::TcpStream::connect("127.0.0.1:1").map_err(|e| e.kind());
    assert_eq!(
        port_1.err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "the configured Port: 1 was never bound"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sockets_for_another_process_or_without_listen_pid_are_left_alone() {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acng.conf"),
        format!("CacheDir: {}\nLogDir:\n", dir.path().join("cache").display()),
    )
    .unwrap();
    for pid in ["1", ""] {
        let mut child = socket_activated(dir.path(), &[listener.as_raw_fd()], Some(pid))
            .arg("BindAddress=127.0.0.1:0")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
        let mut said = String::new();
        let bound = loop {
            let line = lines.next().expect("a line").unwrap();
            said.push_str(&line);
            said.push('\n');
            if let Some(addr) = line.strip_prefix("debcache: listening on ") {
                break addr.parse::<std::net::SocketAddr>().unwrap();
            }
        };
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            said.contains("is for another process"),
            "LISTEN_PID={pid}: {said}"
        );
        assert_ne!(bound, listener.local_addr().unwrap(), "its own address, bound");
    }
}

#[test]
fn a_download_still_running_at_shutdown_is_cut_and_stays_partial() {
    use crate::support::origin::{Fault, Origin};
    let origin = Origin::start();
    origin.put("/debian/pool/a.deb", vec![5u8; 1 << 20]);
    let _gate = origin
        .fault("/debian/pool/a.deb", Fault::PauseAt(1000), 1)
        .unwrap();
    let mut daemon = Daemon::start(&format!(
        "DrainTimeout: 1\nRemap-m: /m ; {}\n",
        origin.url("/debian")
    ));
    let mut c = Conn::open(daemon.addr);
    c.send("GET", "/m/pool/a.deb", &[]);
    assert_eq!(c.read_head().unwrap().status, 200);
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait(Duration::from_secs(30)).expect("stopped");
    assert!(status.success(), "{status:?}");
    assert!(
        daemon.stderr().contains("1 download(s) cut at shutdown"),
        "{}",
        daemon.stderr()
    );
    let head = std::fs::read_to_string(daemon.cache().join("m/pool/a.deb.head")).unwrap();
    assert!(!head.contains("Content-Length"), "still partial: {head}");
}

#[test]
fn systemd_is_told_ready_after_the_port_listens_then_stopping_and_the_watchdog_is_fed() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let socket = path.to_str().unwrap();
    // WATCHDOG_PID unset: the watchdog is this process's, every 0.1 s.
    let mut daemon = Daemon::start_with(Setup {
        env: &[("NOTIFY_SOCKET", socket), ("WATCHDOG_USEC", "200000")],
        ..Setup::default()
    });
    let mut buf = [0u8; 512];
    let mut next = || {
        let n = notify.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = next();
    assert!(ready.starts_with("READY=1\nSTATUS=serving"), "{ready}");
    assert!(ready.contains(&format!("MAINPID={}", daemon.pid())), "{ready}");
    // Ready means serving: the port answers (Daemon::start saw it listen
    // before this, and READY=1 was sent after that line).
    assert_eq!(Conn::open(daemon.addr).get("/health", &[]).status, 200);
    let mut pings = 0;
    while pings < 2 {
        match next().as_str() {
            "WATCHDOG=1" => pings += 1,
            other => panic!("unexpected {other}"),
        }
    }
    daemon.signal(libc::SIGTERM);
    let stopping = loop {
        let m = next();
        if m != "WATCHDOG=1" {
            break m;
        }
    };
    assert!(stopping.starts_with("STOPPING=1"), "{stopping}");
    assert!(daemon.wait(Duration::from_secs(20)).is_some_and(|s| s.success()));
}

#[test]
fn a_watchdog_meant_for_another_process_is_not_fed() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&path).unwrap();
    notify.set_read_timeout(Some(Duration::from_millis(600))).unwrap();
    let _daemon = Daemon::start_with(Setup {
        env: &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "100000"),
            ("WATCHDOG_PID", "1"),
        ],
        ..Setup::default()
    });
    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"READY=1"));
    assert!(
        notify.recv(&mut buf).is_err(),
        "no WATCHDOG=1 for pid 1's watchdog"
    );
}

#[test]
fn two_inherited_unix_sockets_are_refused_not_one_closed() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let a = std::os::unix::net::UnixListener::bind(dir.path().join("a")).unwrap();
    let b = std::os::unix::net::UnixListener::bind(dir.path().join("b")).unwrap();
    std::fs::write(
        dir.path().join("acng.conf"),
        format!("CacheDir: {}\nLogDir:\n", dir.path().join("cache").display()),
    )
    .unwrap();
    let mut command = socket_activated(dir.path(), &[a.as_raw_fd(), b.as_raw_fd()], None);
    command.env("LISTEN_FDNAMES", "first:second");
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains("inherited descriptor 4 (second)") && stderr.contains("a second unix socket"),
        "{stderr}"
    );
}

#[test]
fn warnings_and_errors_go_to_apt_cacher_err_as_acng_writes_it() {
    // A mirror that refuses connections: the download's give-up is a
    // warning.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let daemon = Daemon::start(&format!(
        "Remap-d: /d ; http://127.0.0.1:{port}/\nDlMaxRetries: 0\n"
    ));
    let status = Conn::open(daemon.addr).get("/d/pool/a.deb", &[]).status;
    assert_eq!(status, 503);
    let err = daemon.log_dir().join("apt-cacher.err");
    crate::support::wait_for("apt-cacher.err", || {
        std::fs::read_to_string(&err).is_ok_and(|t| t.contains("d/pool/a.deb"))
    });
    let text = std::fs::read_to_string(&err).unwrap();
    let line = text.lines().find(|l| l.contains("d/pool/a.deb")).unwrap();
    // `Sun Nov 22 02:33:56 2026|…`: ctime's fields, then the text.
    let (time, message) = line.split_once('|').expect(line);
    let fields: Vec<&str> = time.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "{line}");
    assert_eq!(fields[3].matches(':').count(), 2, "{line}");
    assert!(message.contains("d/pool/a.deb"), "{line}");
    assert!(
        !text.contains("listening on"),
        "only warnings and errors:\n{text}"
    );
}

#[test]
fn under_the_journal_lines_carry_syslog_priorities_and_no_time() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array it is given.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both are new descriptors this test owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let write_file = std::fs::File::from(write);
    let meta = write_file.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acng.conf"),
        format!("CacheDir: {}\nLogDir:\n", dir.path().join("cache").display()),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_debcache"))
        .arg("-c")
        .arg(dir.path())
        .arg("BindAddress=127.0.0.1:0")
        .env("JOURNAL_STREAM", &stream)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::from(write_file))
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(std::fs::File::from(read)));
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let done = line.starts_with("debcache: listening on");
        seen.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let logged: Vec<&String> = seen.iter().filter(|l| l.starts_with('<')).collect();
    assert!(!logged.is_empty(), "{seen:?}");
    for line in logged {
        assert!(
            line.starts_with("<6>debcache") || line.starts_with("<4>debcache"),
            "{line}"
        );
        assert!(!line.contains("2026-") && !line.contains("Z "), "no time: {line}");
    }
}

#[test]
fn logrotate_with_the_shipped_file_loses_no_transfer_log_line_under_load() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    for name in ["a", "b"] {
        put(&cache, &format!("h.example/p/{name}.deb"), b"12345");
        put(
            &cache,
            &format!("h.example/p/{name}.deb.head"),
            acng_head(5).as_bytes(),
        );
    }
    let pid_file = root.path().join("pid");
    let mut daemon = Daemon::start_with(Setup {
        conf: &format!("PidFile: {}\n", pid_file.display()),
        cache: Some(&cache),
        ..Setup::default()
    });
    let logs = daemon.log_dir();
    // The shipped file, pointed at this daemon: its log directory and pid
    // file, without `su` (it needs root and the debcache user).
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/debcache.logrotate"
    ))
    .unwrap();
    let conf = shipped
        .replace("/var/log/debcache", logs.to_str().unwrap())
        .replace("/run/debcache/pid", pid_file.to_str().unwrap())
        .replace("/run/systemd/system", "/nonexistent")
        .lines()
        .filter(|l| !l.trim_start().starts_with("su "))
        .collect::<Vec<_>>()
        .join("\n");
    let conf_path = root.path().join("logrotate.conf");
    std::fs::write(&conf_path, conf + "\n").unwrap();

    let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, done, addr) = (Arc::clone(&stop), Arc::clone(&done), daemon.addr);
            std::thread::spawn(move || {
                // Two files in turn: one connection's hits of one file in a
                // row are one line (acng's rule), so each response is one.
                let mut c = Conn::open(addr);
                for name in ["a", "b"].iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    assert_eq!(c.get(&format!("/h.example/p/{name}.deb"), &[]).status, 200);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    crate::support::wait_for("some traffic", || done.load(Ordering::Relaxed) > 200);
    // Flushed once a second: wait for the file to have lines to rotate.
    crate::support::wait_for("a written log", || {
        std::fs::metadata(logs.join("apt-cacher.log")).is_ok_and(|m| m.len() > 0)
    });
    // In /usr/sbin, which an ordinary user's PATH may lack.
    let logrotate = ["/usr/sbin/logrotate", "logrotate"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("logrotate");
    let out = Command::new(logrotate)
        .arg("-f")
        .arg("-s")
        .arg(root.path().join("state"))
        .arg(&conf_path)
        .output()
        .expect("logrotate (apt-get install logrotate)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = |name: &str| {
        std::fs::read_to_string(logs.join(name))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("|O|"))
            .count()
    };
    // The load goes on until the reopened file holds a line: a count of
    // responses alone may be reached before the daemon has taken the
    // signal, and then every line rightly lands in the rotated file.
    crate::support::wait_for("a line in the reopened log", || lines("apt-cacher.log") > 0);
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait(Duration::from_secs(20)).is_some_and(|s| s.success()));

    let (before, after) = (lines("apt-cacher.log.1"), lines("apt-cacher.log"));
    assert!(before > 0 && after > 0, "rotated mid-load: {before} then {after}");
    assert_eq!(
        before + after,
        done.load(Ordering::Relaxed),
        "one line per response, none lost"
    );
}
