//! The debcache binary as a daemon on an ephemeral loopback port, with its
//! own configuration, cache and log directories; stopped on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
    /// The thread copying stderr into `stderr`: done at the pipe's end.
    reader: std::thread::JoinHandle<()>,
}

/// How to start one.
#[derive(Default)]
pub struct Setup<'a> {
    /// acng.conf lines besides CacheDir and LogDir.
    pub conf: &'a str,
    /// Extra KEY=VALUE words.
    pub args: &'a [&'a str],
    /// Extra environment variables.
    pub env: &'a [(&'a str, &'a str)],
    /// Cache directory to use instead of a fresh one.
    pub cache: Option<&'a Path>,
    /// A hard limit on open descriptors.
    pub fd_limit: Option<u64>,
    /// Files beside acng.conf in the configuration directory (name, text):
    /// hooks files, lists.
    pub conf_files: &'a [(&'a str, &'a str)],
}

impl Daemon {
    pub fn start(conf: &str) -> Daemon {
        Daemon::start_with(Setup {
            conf,
            ..Setup::default()
        })
    }

    pub fn start_with(setup: Setup<'_>) -> Daemon {
        match Daemon::try_start(setup) {
            Ok(d) => d,
            Err((status, stderr)) => panic!("debcache did not start ({status:?}):\n{stderr}"),
        }
    }

    /// Starts a daemon, or returns how it exited and what it printed.
    pub fn try_start(setup: Setup<'_>) -> Result<Daemon, (Option<ExitStatus>, String)> {
        let dir = tempfile::tempdir().unwrap();
        let conf_dir = dir.path().join("conf");
        std::fs::create_dir_all(&conf_dir).unwrap();
        let cache = setup
            .cache
            .map_or_else(|| dir.path().join("cache"), Path::to_path_buf);
        // No daily expiration at 03:40 UTC in the middle of a test run.
        let conf = format!(
            "CacheDir: {}\nLogDir: {}\nExpireSchedule: 0\n{}\n",
            cache.display(),
            dir.path().join("log").display(),
            setup.conf
        );
        std::fs::write(conf_dir.join("acng.conf"), conf).unwrap();
        for (name, text) in setup.conf_files {
            std::fs::write(conf_dir.join(name), text).unwrap();
        }
        let mut command = Command::new(env!("CARGO_BIN_EXE_debcache"));
        if let Some(limit) = setup.fd_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe setrlimit runs between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let rlim = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .arg("-c")
            .arg(&conf_dir)
            .arg("BindAddress=127.0.0.1:0")
            .args(setup.args)
            .env("RUST_LOG", "debcache=debug")
            .envs(setup.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn debcache");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("debcache: listening on ") {
                    let _ = tx.send(addr.to_string());
                }
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(50)) {
                if let Ok(addr) = addr.parse() {
                    return Ok(Daemon {
                        child: Some(child),
                        addr,
                        dir,
                        stderr,
                        reader,
                    });
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                read_to_end(&reader);
                return Err((Some(status), stderr.lock().unwrap().clone()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err((None, stderr.lock().unwrap().clone()));
            }
        }
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with our own child's pid.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Waits for the process to end, up to `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                read_to_end(&self.reader);
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// SIGTERM, then the exit status (the transfer log is flushed by then).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(40))
    }

    /// Waits until no download runs. A download commits (syncs, writes the
    /// `.head`, leaves its flight) after its clients have every byte; until
    /// then expiration leaves the file alone, and a `.head` a test changes
    /// may be written over.
    pub fn downloads_done(&self) {
        crate::support::wait_for("the downloads to commit", || {
            crate::support::http::get(self.addr, "/metrics")
                .text()
                .lines()
                .any(|l| l == "debcache_downloads_in_progress 0")
        });
    }

    /// The transfer log's lines without their time stamps.
    pub fn transfer_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.log_dir().join("apt-cacher.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_once('|').map_or(l, |(_, rest)| rest).to_string())
            .collect()
    }
}

/// Waits, a few seconds at most, for `reader` to have copied the last lines
/// of an ended process: an orphan it left (a hook's child) may hold the
/// pipe open longer.
fn read_to_end(reader: &std::thread::JoinHandle<()>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
