//! End-to-end peers: a synthetic Debian repository built on disk with
//! `dpkg-deb`, and `apt-get` run with a private configuration that reads
//! nothing from `/etc/apt` and talks only to the address it is given.
//!
//! Everything is deterministic: package payloads come from a seeded
//! generator, timestamps are pinned, so two builds give the same bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use super::http::sha256_hex;

/// Every timestamp in a built repository: 2023-11-14 22:13:20 UTC.
const EPOCH: u64 = 1_700_000_000;
const DATE: &str = "Tue, 14 Nov 2023 22:13:20 UTC";
const MAINTAINER: &str = "debcache tests <tests@debcache.invalid>";
/// What a gzip-compressed `.deb` adds around its payload: the ar headers,
/// `debian-binary`, `control.tar.gz` and the tar headers of `data.tar.gz`.
const DEB_OVERHEAD: u64 = 1024;
/// The index files of a component, relative to `dists/<suite>/main/`.
const INDEXES: [&str; 3] = ["Packages", "Packages.gz", "Packages.xz"];

/// A package to put into a [`Repo`].
#[derive(Clone, Debug)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Roughly the size of the `.deb`, in bytes.
    pub size: u64,
}

/// A flat-file repository with one suite, component `main` and architecture
/// `all`, unsigned (clients use `[trusted=yes]`).
pub struct Repo {
    /// The repository root, holding `dists/` and `pool/`.
    pub root: PathBuf,
    suite: String,
    /// Package name and pool path (with a leading '/') of every `.deb`.
    debs: Vec<(String, String)>,
}

impl Repo {
    /// Builds the repository under `dir/debian`, staging packages in
    /// `dir/staging` (removed afterwards).
    pub fn build(dir: &Path, suite: &str, packages: &[Package]) -> Repo {
        let root = dir.join("debian");
        let staging = dir.join("staging");
        let mut stanzas = Vec::new();
        let mut debs = Vec::new();
        for package in packages {
            let pool_path = pool_path(package);
            let deb = root.join(&pool_path[1..]);
            let installed_kib = build_deb(package, &staging, &deb);
            let bytes = std::fs::read(&deb).unwrap();
            stanzas.push(stanza(package, &pool_path, installed_kib, &bytes));
            debs.push((package.name.clone(), pool_path));
        }
        std::fs::remove_dir_all(&staging).unwrap();
        write_indexes(&root.join("dists").join(suite), suite, &stanzas.join("\n"));
        Repo {
            root,
            suite: suite.to_string(),
            debs,
        }
    }

    /// Every file of the repository, relative to the root with a leading
    /// '/', with its bytes, sorted by path.
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        collect_files(&self.root, &self.root, &mut files);
        files.sort();
        files
    }

    /// The URL path of a package's `.deb`, e.g. `/pool/main/h/hello/hello_1.0_all.deb`.
    pub fn deb_path(&self, name: &str) -> String {
        self.debs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, path)| path.clone())
            .unwrap_or_else(|| panic!("no package {name} in the repository"))
    }

    pub fn suite(&self) -> &str {
        &self.suite
    }
}

/// `n` dependency-free packages `synth-pkg01`, `synth-pkg02`, … at version
/// `1.0-1`, their sizes spread evenly from `min` to `max` bytes.
pub fn packages(n: usize, min: u64, max: u64) -> Vec<Package> {
    let steps = n.saturating_sub(1).max(1) as u64;
    (0..n)
        .map(|i| Package {
            name: format!("synth-pkg{:02}", i + 1),
            version: "1.0-1".to_string(),
            size: min + (max.saturating_sub(min)) * i as u64 / steps,
        })
        .collect()
}

/// Builds each package's `.deb` at its pool path below `root`, as
/// [`Repo::build`] does, but writes no index: for tests that index the
/// pool with other tools. Stages in `staging` (removed afterwards);
/// returns the pool paths, relative to `root`.
pub fn build_pool(root: &Path, staging: &Path, packages: &[Package]) -> Vec<String> {
    let paths = packages
        .iter()
        .map(|package| {
            let pool_path = pool_path(package);
            build_deb(package, staging, &root.join(&pool_path[1..]));
            pool_path[1..].to_string()
        })
        .collect();
    std::fs::remove_dir_all(staging).unwrap();
    paths
}

/// `/pool/main/<first letter>/<name>/<name>_<version>_all.deb`.
fn pool_path(package: &Package) -> String {
    let first = &package.name[..1];
    // Debian file names drop the epoch; the colon would need escaping in URLs.
    let version = package.version.rsplit(':').next().unwrap();
    format!("/pool/main/{first}/{0}/{0}_{version}_all.deb", package.name)
}

/// Writes `deb` from a staged tree of `DEBIAN/control` and a payload of
/// incompressible bytes; returns the installed size in KiB.
fn build_deb(package: &Package, staging: &Path, deb: &Path) -> u64 {
    let tree = staging.join(&package.name);
    let payload_len = package.size.saturating_sub(DEB_OVERHEAD);
    let installed_kib = payload_len.div_ceil(1024).max(1);
    let control = format!(
        "Package: {}\nVersion: {}\nArchitecture: all\nMaintainer: {MAINTAINER}\n\
         Installed-Size: {installed_kib}\nDescription: synthetic package for debcache tests\n",
        package.name, package.version
    );
    let payload_dir = tree.join("usr/share/synth");
    std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(&payload_dir).unwrap();
    std::fs::write(tree.join("DEBIAN/control"), control).unwrap();
    std::fs::write(payload_dir.join(&package.name), noise(&package.name, payload_len)).unwrap();
    pin_tree(&tree);
    std::fs::create_dir_all(deb.parent().unwrap()).unwrap();
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zgzip", "-z1", "--build"])
        .arg(&tree)
        .arg(deb)
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
        .output()
        .expect("run dpkg-deb");
    assert!(
        out.status.success(),
        "dpkg-deb --build {} failed: {}",
        package.name,
        String::from_utf8_lossy(&out.stderr)
    );
    installed_kib
}

/// `len` bytes from an xorshift generator seeded by `seed`: gzip cannot
/// shrink them, so a `.deb` is about as large as asked for.
fn noise(seed: &str, len: u64) -> Vec<u8> {
    let mut state = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut bytes = Vec::with_capacity(len as usize + 8);
    while (bytes.len() as u64) < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len as usize);
    bytes
}

/// Fixes modes (whatever the umask) and modification times under `dir`.
fn pin_tree(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(EPOCH);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            pin_tree(&path);
        } else {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::File::open(&path).unwrap().set_modified(mtime).unwrap();
        }
    }
    // After the children: pinning them does not touch the directory's mtime.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::File::open(dir).unwrap().set_modified(mtime).unwrap();
}

/// The `Packages` stanza of one package, without the separating blank line.
fn stanza(package: &Package, pool_path: &str, installed_kib: u64, deb: &[u8]) -> String {
    format!(
        "Package: {}\nVersion: {}\nInstalled-Size: {installed_kib}\nMaintainer: {MAINTAINER}\n\
         Architecture: all\nDescription: synthetic package for debcache tests\n\
         Filename: {}\nSize: {}\nSHA256: {}\n",
        package.name,
        package.version,
        &pool_path[1..],
        deb.len(),
        sha256_hex(deb)
    )
}

/// Writes `main/binary-all/Packages{,.gz,.xz}` and `Release` under `dists`.
fn write_indexes(dists: &Path, suite: &str, packages: &str) {
    let index_dir = dists.join("main/binary-all");
    std::fs::create_dir_all(&index_dir).unwrap();
    let plain = packages.as_bytes().to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&plain).unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&plain).unwrap();
    let mut release = format!(
        "Origin: debcache-tests\nLabel: debcache-tests\nSuite: {suite}\nCodename: {suite}\n\
         Date: {DATE}\nArchitectures: all\nComponents: main\nAcquire-By-Hash: no\n\
         Description: synthetic repository for debcache tests\nSHA256:\n"
    );
    for (name, bytes) in INDEXES
        .iter()
        .zip([plain, gz.finish().unwrap(), xz.finish().unwrap()])
    {
        let rel = format!("main/binary-all/{name}");
        release.push_str(&format!(" {} {:>16} {rel}\n", sha256_hex(&bytes), bytes.len()));
        std::fs::write(dists.join(&rel), bytes).unwrap();
    }
    std::fs::write(dists.join("Release"), release).unwrap();
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).unwrap().to_str().unwrap();
            out.push((format!("/{rel}"), std::fs::read(&path).unwrap()));
        }
    }
}

/// How apt reaches the repository.
pub enum Access {
    /// Through an HTTP proxy, e.g. `"http://127.0.0.1:3142"`.
    Proxy(String),
    /// Straight to the host in the sources line.
    Direct,
    /// https sources through an HTTP proxy (CONNECT), trusting the CA in
    /// this PEM file.
    HttpsProxy {
        proxy: String,
        ca_file: std::path::PathBuf,
    },
}

/// `apt-get` with its state, cache, sources and configuration in a
/// temporary directory; `/etc/apt` is never read, so neither the host's
/// sources nor its hooks (a Docker image's `docker-clean` would delete
/// downloaded archives) take part.
pub struct Apt {
    pub dir: tempfile::TempDir,
    config: PathBuf,
}

/// What one `apt-get` run did.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn assert_success(&self) {
        assert!(
            self.status.success(),
            "apt-get failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

/// Proxy variables apt would honour from the environment.
const PROXY_VARS: [&str; 9] = [
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "ftp_proxy",
];

impl Apt {
    /// `sources_line` is a complete line of `sources.list`, e.g.
    /// `deb [trusted=yes] http://127.0.0.1:PORT/synth synth main`.
    pub fn new(sources_line: &str, access: Access) -> Apt {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in [
            "etc/sources.list.d",
            "etc/apt.conf.d",
            "etc/preferences.d",
            "etc/trusted.gpg.d",
            "etc/auth.conf.d",
            "state/lists/partial",
            "cache/archives/partial",
            "log",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        for empty in [
            "etc/main.conf",
            "etc/preferences",
            "etc/auth.conf",
            "state/status",
        ] {
            std::fs::write(d.join(empty), "").unwrap();
        }
        std::fs::write(d.join("etc/sources.list"), format!("{sources_line}\n")).unwrap();
        let config = d.join("apt.conf");
        std::fs::write(&config, config_text(d, &access)).unwrap();
        Apt { dir, config }
    }

    /// The file `APT_CONFIG` points at.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// `apt-get update`.
    pub fn update(&self) -> Output {
        self.run(&["update"])
    }

    /// `apt-get install --download-only -y <packages>`.
    pub fn download(&self, packages: &[&str]) -> Output {
        let mut args = vec!["install", "--download-only", "-y"];
        args.extend_from_slice(packages);
        self.run(&args)
    }

    /// Where downloaded `.deb`s land.
    pub fn archives(&self) -> PathBuf {
        self.dir.path().join("cache/archives")
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("apt-get");
        cmd.args(args)
            .env("APT_CONFIG", &self.config)
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null());
        for var in PROXY_VARS {
            cmd.env_remove(var);
        }
        let out = cmd.output().expect("run apt-get");
        Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The private `apt.conf`. Paths are set one by one rather than through a
/// private `Dir`, which would also move apt's methods and dpkg.
fn config_text(d: &Path, access: &Access) -> String {
    let p = |rel: &str| d.join(rel).display().to_string();
    let (proxy, https_proxy) = match access {
        Access::Proxy(url) => (url.as_str(), "DIRECT"),
        Access::Direct => ("DIRECT", "DIRECT"),
        Access::HttpsProxy { proxy, .. } => ("DIRECT", proxy.as_str()),
    };
    let mut text = String::new();
    let mut set = |key: &str, value: &str| text.push_str(&format!("{key} \"{value}\";\n"));
    set("Dir::State", &p("state"));
    set("Dir::State::status", &p("state/status"));
    set("Dir::Cache", &p("cache"));
    set("Dir::Cache::archives", &p("cache/archives"));
    set("Dir::Etc::sourcelist", &p("etc/sources.list"));
    set("Dir::Etc::sourceparts", &p("etc/sources.list.d"));
    set("Dir::Etc::parts", &p("etc/apt.conf.d"));
    set("Dir::Etc::main", &p("etc/main.conf"));
    set("Dir::Etc::preferences", &p("etc/preferences"));
    set("Dir::Etc::preferencesparts", &p("etc/preferences.d"));
    set("Dir::Etc::trustedparts", &p("etc/trusted.gpg.d"));
    set("Dir::Etc::netrc", &p("etc/auth.conf"));
    set("Dir::Etc::netrcparts", &p("etc/auth.conf.d"));
    set("Dir::Log", &p("log"));
    set("Acquire::Languages", "none");
    set("Acquire::Retries", "0");
    set("Acquire::http::Proxy", proxy);
    set("Acquire::https::Proxy", https_proxy);
    if let Access::HttpsProxy { ca_file, .. } = access {
        set("Acquire::https::CaInfo", &ca_file.display().to_string());
    }
    set("Acquire::Check-Valid-Until", "false");
    set("Acquire::Check-Date", "false");
    set("APT::Architecture", "amd64");
    set("Debug::NoLocking", "true");
    set("Dpkg::Use-Pty", "false");
    set("quiet", "1");
    if rustix::process::geteuid().is_root() {
        // Root would otherwise hand the methods to `_apt`, which cannot
        // enter a 0700 temporary directory.
        set("APT::Sandbox::User", "root");
    }
    text.push_str("APT::Architectures { \"amd64\"; };\n");
    text
}
