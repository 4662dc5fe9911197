//! The Debian package, built by `packaging/build-deb` from the binaries of
//! this test run: its files, its control fields, lintian, the man page, the
//! shipped configuration; and, as root when `CI` or `DEBCACHE_TEST_PACKAGE=1`
//! says the machine may be changed, installed, run as its unit runs it, and
//! purged.
//!
//! A test binary of its own: cargo runs test binaries one after another, so
//! no other test reads `/etc/debcache` (the default configuration directory
//! when it exists) while the package is installed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const TOOLS: [(&str, &str); 5] = [
    ("dpkg-deb", "dpkg"),
    ("dpkg-shlibdeps", "dpkg-dev"),
    ("lintian", "lintian"),
    ("mandoc", "mandoc"),
    ("groff", "groff-base"),
];

/// Every file the package installs.
const FILES: &[&str] = &[
    "etc/avahi/services/debcache.service",
    "etc/debcache/acng.conf",
    "etc/debcache/backends_debian",
    "etc/debcache/backends_ubuntu",
    "etc/debcache/security.conf",
    "etc/logrotate.d/debcache",
    "lib/systemd/system/debcache.service",
    "lib/systemd/system/debcache.socket",
    "usr/lib/tmpfiles.d/debcache.conf",
    "usr/sbin/debcache",
    "usr/share/debcache/archlx_mirrors",
    "usr/share/debcache/backends_debian.default",
    "usr/share/debcache/backends_gentoo.default",
    "usr/share/debcache/backends_kali.default",
    "usr/share/debcache/backends_ubuntu.default",
    "usr/share/debcache/cygwin_mirrors",
    "usr/share/debcache/deb_mirrors.gz",
    "usr/share/debcache/debvol_mirrors.gz",
    "usr/share/debcache/epel_mirrors",
    "usr/share/debcache/fedora_mirrors",
    "usr/share/debcache/gentoo_mirrors.gz",
    "usr/share/debcache/kali_mirrors",
    "usr/share/debcache/sfnet_mirrors",
    "usr/share/debcache/sl_mirrors",
    "usr/share/debcache/ubuntu_mirrors",
    "usr/share/doc/debcache/README.md",
    "usr/share/doc/debcache/changelog.gz",
    "usr/share/doc/debcache/copyright",
    "usr/share/lintian/overrides/debcache",
    "usr/share/man/man8/debcache.8.gz",
];

/// The paths the shipped acng.conf sets: debcache's own, never
/// apt-cacher-ng's built-in defaults.
const PATHS: [(&str, &str); 5] = [
    ("CacheDir", "/var/cache/debcache"),
    ("LogDir", "/var/log/debcache"),
    ("SupportDir", "/usr/share/debcache"),
    ("SocketPath", "/run/debcache/socket"),
    ("PidFile", "/run/debcache/pid"),
];

struct Built {
    deb: PathBuf,
    /// The tree the package was made from.
    root: PathBuf,
}

/// The package, built once for every test of this binary; `None` (after a
/// line saying why) when this machine cannot build it outside CI.
fn package() -> Option<&'static Built> {
    static BUILT: OnceLock<Option<Built>> = OnceLock::new();
    BUILT.get_or_init(build).as_ref()
}

fn build() -> Option<Built> {
    let mut missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(_, package)| *package)
        .collect();
    // build-deb lists the crates the binary is built from with `cargo
    // tree`: cargo test names itself in CARGO.
    if std::env::var_os("CARGO").is_none() && !on_path("cargo") {
        missing.push("cargo (run it through cargo test)");
    }
    let binary = Path::new(env!("CARGO_BIN_EXE_debcache"));
    let generator = binary.parent().unwrap().join("examples/man");
    if !missing.is_empty() || !generator.exists() {
        let why = if missing.is_empty() {
            format!(
                "{} is not built (a whole `cargo test` builds it)",
                generator.display()
            )
        } else {
            format!("missing Debian packages: {}", missing.join(" "))
        };
        assert!(
            std::env::var_os("CI").is_none(),
            "cannot build the package in CI: {why}"
        );
        eprintln!("skipped: {why}");
        return None;
    }
    // Under target/, in one place made afresh by each run: a static is never
    // dropped, so a temporary directory here would outlive every run.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/build-deb"))
            .arg("--binary")
            .arg(binary)
            .arg("--man-generator")
            .arg(&generator)
            .arg("--out")
            .arg(&dir),
    );
    let deb = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let root = dir.join("root");
    Some(Built { deb, root })
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// Runs a command that must succeed; its output.
fn run(command: &mut Command) -> Output {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_package_holds_its_files_with_their_modes_and_fields() {
    let Some(built) = package() else { return };
    let listing = text(&run(Command::new("dpkg-deb").arg("-c").arg(&built.deb)));
    let mut files = Vec::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (mode, owner, path) = (fields[0], fields[1], fields[5]);
        assert_eq!(owner, "root/root", "{line}");
        if mode.starts_with('-') {
            let path = path.trim_start_matches("./");
            let expected = if path == "usr/sbin/debcache" {
                "-rwxr-xr-x"
            } else {
                "-rw-r--r--"
            };
            assert_eq!(mode, expected, "{line}");
            files.push(path.to_string());
        }
    }
    files.sort();
    assert_eq!(files, FILES);

    let field = |name: &str| {
        let out = run(Command::new("dpkg-deb").arg("-f").arg(&built.deb).arg(name));
        text(&out).trim().to_string()
    };
    assert_eq!(field("Package"), "debcache");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    let depends = field("Depends");
    assert!(
        depends.starts_with("libc6 (>= ") && depends.ends_with(", adduser"),
        "{depends}"
    );
    let conffiles = std::fs::read_to_string(built.root.join("DEBIAN/conffiles")).unwrap();
    let mut expected: Vec<String> = FILES
        .iter()
        .filter(|f| f.starts_with("etc/"))
        .map(|f| format!("/{f}"))
        .collect();
    expected.sort();
    assert_eq!(conffiles.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn lintian_passes_with_each_override_explained() {
    let Some(built) = package() else { return };
    // lintian leaves its ELF cache (`mldbm-elf-*`) in TMPDIR: one of ours.
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new("lintian")
        .env("TMPDIR", scratch.path())
        .args(["--info", "--display-experimental", "--pedantic"])
        .args(["--fail-on", "error,warning,info,pedantic,experimental"])
        .arg(&built.deb)
        .output()
        .unwrap();
    let report = text(&out);
    assert!(
        out.status.success() && report.trim().is_empty(),
        "lintian: {report}"
    );
    // An override without the comment above it that says why is not
    // allowed here.
    let overrides = std::fs::read_to_string(built.root.join("usr/share/lintian/overrides/debcache")).unwrap();
    let mut commented = false;
    for line in overrides.lines() {
        if line.starts_with('#') {
            commented = true;
        } else if !line.trim().is_empty() {
            assert!(commented, "an override without its reason: {line}");
        } else {
            commented = false;
        }
    }
}

#[test]
fn the_man_page_is_lint_clean_and_lists_every_command() {
    let Some(built) = package() else { return };
    let gz = std::fs::File::open(built.root.join("usr/share/man/man8/debcache.8.gz")).unwrap();
    let mut page = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut page)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("debcache.8");
    std::fs::write(&file, &page).unwrap();
    let mandoc = Command::new("mandoc").arg("-Tlint").arg(&file).output().unwrap();
    let lint =
        String::from_utf8_lossy(&mandoc.stdout).into_owned() + &String::from_utf8_lossy(&mandoc.stderr);
    assert!(mandoc.status.success() && lint.is_empty(), "mandoc: {lint}");
    let groff = Command::new("groff")
        .args(["-ww", "-z", "-man"])
        .arg(&file)
        .output()
        .unwrap();
    let warnings = String::from_utf8_lossy(&groff.stderr);
    assert!(groff.status.success() && warnings.is_empty(), "groff: {warnings}");
    for section in [
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH COMMANDS",
        ".SH CONFIGURATION",
        ".SH EXIT STATUS",
    ] {
        assert!(page.contains(section), "{section}");
    }
    for command in [
        "printvar", "cfgdump", "retest", "encb64", "maint", "shrink", "migrate",
    ] {
        assert!(page.contains(&format!("debcache {command}")), "{command}");
    }
    assert!(page.contains(&format!("debcache {}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn the_shipped_configuration_uses_debcache_s_own_paths() {
    let Some(built) = package() else { return };
    let conf = built.root.join("etc/debcache");
    // The mirror lists are read from where the package puts them.
    let support = format!("SupportDir={}", built.root.join("usr/share/debcache").display());
    let check = Command::new(env!("CARGO_BIN_EXE_debcache"))
        .arg("--check")
        .arg("-c")
        .arg(&conf)
        .arg(&support)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        text(&check),
        String::from_utf8_lossy(&check.stderr)
    );
    for (key, value) in PATHS {
        let out = run(Command::new(env!("CARGO_BIN_EXE_debcache"))
            .args(["printvar", key, "-c"])
            .arg(&conf));
        assert_eq!(text(&out).trim(), value, "{key}");
    }
    // The unit and the tmpfiles line agree with them.
    let unit = std::fs::read_to_string(built.root.join("lib/systemd/system/debcache.service")).unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/sbin/debcache -c /etc/debcache\n"),
        "{unit}"
    );
    let socket = std::fs::read_to_string(built.root.join("lib/systemd/system/debcache.socket")).unwrap();
    assert!(
        socket.contains("\nListenStream=/run/debcache/socket\n"),
        "{socket}"
    );
}

/// Installs the package, so only as root and when told the machine may be
/// changed; purged again however the test ends.
#[test]
fn installed_it_runs_as_its_user_serves_and_purges_without_a_trace() {
    let asked =
        std::env::var_os("CI").is_some() || std::env::var("DEBCACHE_TEST_PACKAGE").as_deref() == Ok("1");
    if !asked || !is_root() {
        eprintln!("skipped: installs the package (as root, with CI or DEBCACHE_TEST_PACKAGE=1)");
        return;
    }
    let Some(built) = package() else { return };
    assert!(
        !Path::new("/var/lib/dpkg/info/debcache.list").exists(),
        "debcache is installed on this machine already; the test would purge it"
    );
    // Beside apt-cacher-ng, or anything on port 3142, the units stay
    // disabled and the postinst says what to do; else both are enabled.
    let collides =
        Path::new("/usr/sbin/apt-cacher-ng").exists() || TcpStream::connect(("127.0.0.1", 3142)).is_ok();
    let (installed, said) = Installed::new(&built.deb);
    let wants = [
        "/etc/systemd/system/multi-user.target.wants/debcache.service",
        "/etc/systemd/system/sockets.target.wants/debcache.socket",
    ];
    for link in wants {
        assert_eq!(
            Path::new(link).exists(),
            !collides,
            "{link} (collides: {collides}): {said}"
        );
    }
    assert_eq!(
        said.contains("debcache: not enabled nor started"),
        collides,
        "{said}"
    );
    if collides {
        assert!(said.contains("debcache migrate"), "{said}");
    }

    let user = text(&run(Command::new("getent").args(["passwd", "debcache"])));
    let fields: Vec<&str> = user.trim().split(':').collect();
    assert_eq!(fields[5], "/var/cache/debcache", "{user}");
    assert!(fields[6].ends_with("nologin"), "{user}");
    for dir in ["/var/cache/debcache", "/var/log/debcache"] {
        let owner = text(&run(Command::new("stat").args(["-c", "%U:%G %a"]).arg(dir)));
        assert_eq!(owner.trim(), "debcache:debcache 755", "{dir}");
    }
    let security = text(&run(Command::new("stat").args([
        "-c",
        "%U:%G %a",
        "/etc/debcache/security.conf",
    ])));
    assert_eq!(security.trim(), "root:debcache 640");
    run(Command::new("/usr/sbin/debcache").args(["--check", "-c", "/etc/debcache"]));

    // The unit's ExecStart line, run by hand as the unit's user, on a
    // loopback port of its own (never 3142): it serves, and caches what it
    // fetched where the package says.
    let unit = std::fs::read_to_string("/lib/systemd/system/debcache.service").unwrap();
    let exec_start = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    let origin = Origin::start(b"Package: hello\n");
    let mut daemon = Daemon::start(exec_start);
    assert_eq!(daemon.get("/health").0, 200);
    let url = format!(
        "http://127.0.0.1:{}/debian/pool/main/h/hello/hello_1.0_all.deb",
        origin.port
    );
    let (status, body) = daemon.get(&url);
    assert_eq!((status, body.as_slice()), (200, &b"Package: hello\n"[..]));
    let cached = "/var/cache/debcache/127.0.0.1/debian/pool/main/h/hello/hello_1.0_all.deb";
    wait_for("the cached file", || Path::new(cached).exists());
    let owner = text(&run(Command::new("stat").args(["-c", "%U", cached])));
    assert_eq!(owner.trim(), "debcache");
    daemon.stop();
    let log = std::fs::read_to_string("/var/log/debcache/apt-cacher.log").unwrap();
    assert!(log.contains("hello_1.0_all.deb"), "{log}");

    installed.purge();
    let made = [
        "/var/cache/debcache",
        "/var/log/debcache",
        "/run/debcache",
        "/etc/debcache",
    ];
    let shipped = ["/usr/share/debcache", "/usr/share/doc/debcache"];
    for path in FILES
        .iter()
        .map(|f| format!("/{f}"))
        .chain(made.into_iter().chain(shipped).map(String::from))
    {
        assert!(!Path::new(&path).exists(), "{path} outlived the purge");
    }
    let user = Command::new("getent")
        .args(["passwd", "debcache"])
        .output()
        .unwrap();
    assert!(!user.status.success(), "the user outlived the purge");
    let overrides = text(&run(Command::new("dpkg-statoverride").arg("--list")));
    assert!(!overrides.contains("debcache"), "{overrides}");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The package installed; purged when dropped, if the test did not.
struct Installed {
    purged: bool,
}

impl Installed {
    /// Installs; what dpkg and the maintainer scripts printed.
    fn new(deb: &Path) -> (Installed, String) {
        let out = run(Command::new("dpkg")
            .arg("-i")
            .arg(deb)
            .env("DEBIAN_FRONTEND", "noninteractive"));
        let said = text(&out) + &String::from_utf8_lossy(&out.stderr);
        (Installed { purged: false }, said)
    }

    fn purge(mut self) {
        self.purged = true;
        run(Command::new("dpkg").args(["--purge", "debcache"]));
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if !self.purged {
            let _ = Command::new("dpkg").args(["--purge", "debcache"]).status();
        }
    }
}

/// An origin that answers every request with one body.
struct Origin {
    port: u16,
}

impl Origin {
    fn start(body: &'static [u8]) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(stream, body);
            }
        });
        Origin { port }
    }
}

fn answer(mut stream: TcpStream, body: &[u8]) {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Tue, 01 Dec 2026 00:00:00 GMT\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.write_all(body);
}

/// The unit's command line run as `debcache`, with a loopback port.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(exec_start: &str) -> Daemon {
        // An origin on an ephemeral port: clients may name other ports
        // than 80 only when AllowUserPorts says so.
        let command = format!("exec {exec_start} BindAddress=127.0.0.1:0 AllowUserPorts=0");
        let mut child = Command::new("setpriv")
            .args(["--reuid=debcache", "--regid=debcache", "--clear-groups", "--"])
            .args(["/bin/sh", "-c", &command])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let mut seen = String::new();
        let mut byte = [0u8];
        let port = loop {
            match stderr.read(&mut byte) {
                Ok(1) => seen.push(byte[0] as char),
                _ => panic!("the daemon stopped before it listened: {seen}"),
            }
            if seen.ends_with('\n') {
                if let Some(port) = seen
                    .lines()
                    .filter_map(|l| l.strip_prefix("debcache: listening on 127.0.0.1:"))
                    .find_map(|p| p.trim().parse().ok())
                {
                    break port;
                }
            }
        };
        // The rest of its log is not read: it goes to a thread that drops
        // it, so that the daemon never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Daemon { child, port }
    }

    /// A GET through the daemon: the status and the body.
    fn get(&self, target: &str) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: cache\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        let split = reply.windows(4).position(|w| w == b"\r\n\r\n").expect("a head");
        let head = String::from_utf8_lossy(&reply[..split]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        (status, reply[split + 4..].to_vec())
    }

    fn stop(&mut self) {
        // SAFETY: kill with a pid this test spawned and has not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
