//! A load balancer (HAProxy or nginx) in front of debcache instances, on a
//! loopback port the test binds itself: the listening socket is handed over
//! as descriptor 3 (HAProxy's `bind fd@3`; nginx's inherited sockets, the
//! `NGINX` variable of its binary upgrade), so no port is chosen, freed and
//! hoped for. Stopped on drop.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::http::Conn;

/// Which balancer, and how it is run.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Haproxy,
    Nginx,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Haproxy => "haproxy",
            Kind::Nginx => "nginx",
        }
    }

    /// The binary, where Debian puts it or on `PATH`.
    pub fn binary(self) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
            .map(|dir| dir.join(self.name()))
            .find(|p| p.is_file())
    }

    /// The binary, or `None` and a line saying `test` is skipped; with `CI`
    /// set a missing balancer fails the test instead.
    pub fn binary_or_skip(self, test: &str) -> Option<PathBuf> {
        let found = self.binary();
        if found.is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: {} is not installed (CI is set, so this is a failure)",
                self.name()
            );
            eprintln!("skipped {test}: {} is not installed", self.name());
        }
        found
    }
}

pub struct Balancer {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Balancer {
    /// Runs `binary` on the configuration `config` makes of the address it
    /// is to listen on (`bind fd@3` for HAProxy, that address for nginx)
    /// and a directory for its files; returns once it answers
    /// `GET /health` (passed to an instance) with 200, panics with its
    /// messages if it exits.
    pub fn start(kind: Kind, binary: &Path, config: impl FnOnce(SocketAddr, &Path) -> String) -> Balancer {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let file = dir.path().join("balancer.conf");
        std::fs::write(&file, config(addr, dir.path())).unwrap();
        let log = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let mut command = Command::new(binary);
        match kind {
            Kind::Haproxy => command.arg("-db").arg("-f").arg(&file),
            Kind::Nginx => command
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&file)
                .env("NGINX", "3;"),
        };
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let fd = listener.as_raw_fd();
        // SAFETY: only async-signal-safe dup2 and fcntl run between fork and
        // exec; the listener stays open in the parent until `spawn` returns.
        unsafe {
            command.pre_exec(move || {
                let ok = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0) == 0
                } else {
                    libc::dup2(fd, 3) == 3
                };
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let child = command.spawn().expect("spawn the balancer");
        // Only the balancer holds the socket now: if it dies, connections
        // are refused instead of waiting in a backlog nobody reads.
        drop(listener);
        let mut balancer = Balancer { child, addr, dir };
        super::wait_for("the balancer to answer", || {
            if let Ok(Some(status)) = balancer.child.try_wait() {
                panic!("{} exited ({status}):\n{}", kind.name(), balancer.stderr());
            }
            if std::net::TcpStream::connect(addr).is_err() {
                return false;
            }
            let mut c = Conn::open(addr);
            c.send("GET", "/health", &[]);
            c.read(false).is_ok_and(|r| r.status == 200)
        });
        balancer
    }

    /// What the balancer printed (HAProxy: servers going down and up).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }
}

impl Drop for Balancer {
    /// SIGTERM, which nginx's master passes on to its worker, then SIGKILL
    /// for a balancer still there after 5 s.
    fn drop(&mut self) {
        // SAFETY: kill(2) with our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        for _ in 0..500 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
