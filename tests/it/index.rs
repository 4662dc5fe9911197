//! The index parsers on what apt-ftparchive (apt-utils) writes, run live
//! on a fresh pool of generated `.deb`s: every reference is a file on disk
//! with that size and that digest.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use debcache::index::{classify, decompress, parse, Algorithm, IndexKind, Listed, Reference};
use sha2::Digest as _;

use crate::support::apt::{build_pool, packages};

/// Fails the test unless apt-ftparchive can run: these tests are about
/// its output, and skipping would hide that they never ran.
fn require_apt_ftparchive() {
    match Command::new("apt-ftparchive").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("apt-ftparchive --version failed: {}", out.status),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("apt-ftparchive is missing: install apt-utils (apt-get install apt-utils)")
        }
        Err(e) => panic!("cannot run apt-ftparchive: {e}"),
    }
}

/// The standard output of `apt-ftparchive ARGS` run in `dir`.
fn apt_ftparchive(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("apt-ftparchive")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run apt-ftparchive");
    assert!(
        out.status.success(),
        "apt-ftparchive {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sha512_hex(bytes: &[u8]) -> String {
    sha2::Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The file references of an index text of `kind`.
fn references(kind: IndexKind, text: impl std::io::BufRead) -> (Vec<Reference>, u64) {
    let mut files = Vec::new();
    let mut by_hash = 0;
    parse(kind, text, |listed| match listed {
        Listed::File(r) => files.push(r),
        Listed::ByHash(_) => by_hash += 1,
    })
    .unwrap_or_else(|e| panic!("{}", debcache::error::Chain(&e)));
    (files, by_hash)
}

/// `reference`, relative to `base`, is a file there of its size and digest.
fn assert_on_disk(base: &Path, reference: &Reference) {
    let bytes =
        std::fs::read(base.join(&reference.path)).unwrap_or_else(|e| panic!("{}: {e}", reference.path));
    assert_eq!(reference.size, bytes.len() as u64, "{}", reference.path);
    assert_eq!(
        reference.digest.algorithm(),
        Algorithm::Sha512,
        "{}",
        reference.path
    );
    assert_eq!(
        reference.digest.to_string(),
        sha512_hex(&bytes),
        "{}",
        reference.path
    );
}

#[test]
fn packages_from_apt_ftparchive_name_the_pool_exactly() {
    require_apt_ftparchive();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("debian");
    let mut pool = build_pool(&root, &dir.path().join("staging"), &packages(6, 1_500, 30_000));
    let text = apt_ftparchive(&root, &["packages", "pool"]);

    let (files, by_hash) = references(IndexKind::Packages, &text[..]);
    assert_eq!(by_hash, 0);
    for reference in &files {
        assert_on_disk(&root, reference);
    }
    let mut named: Vec<String> = files.into_iter().map(|r| r.path).collect();
    named.sort();
    pool.sort();
    assert_eq!(named, pool);
}

#[test]
fn release_from_apt_ftparchive_names_each_index_by_name_and_hash() {
    require_apt_ftparchive();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("debian");
    build_pool(&root, &dir.path().join("staging"), &packages(3, 1_500, 5_000));
    let packages_text = apt_ftparchive(&root, &["packages", "pool"]);
    let index_dir = root.join("dists/synth/main/binary-all");
    std::fs::create_dir_all(&index_dir).unwrap();
    std::fs::write(index_dir.join("Packages"), &packages_text).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&packages_text).unwrap();
    std::fs::write(index_dir.join("Packages.gz"), gz.finish().unwrap()).unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&packages_text).unwrap();
    std::fs::write(index_dir.join("Packages.xz"), xz.finish().unwrap()).unwrap();
    let release = apt_ftparchive(&root, &["release", "dists/synth"]);
    std::fs::write(root.join("dists/synth/Release"), &release).unwrap();

    let cached = "debrep/dists/synth/Release";
    let classified = classify(cached).unwrap();
    assert_eq!(classified.kind, IndexKind::Release);
    let (files, by_hash) = references(classified.kind, &release[..]);
    let suite = root.join("dists/synth");
    let mut named: Vec<&str> = files.iter().map(|r| r.path.as_str()).collect();
    named.sort();
    assert_eq!(
        named,
        [
            "main/binary-all/Packages",
            "main/binary-all/Packages.gz",
            "main/binary-all/Packages.xz"
        ]
    );
    for reference in &files {
        assert_on_disk(&suite, reference);
    }
    assert_eq!(by_hash, 4 * files.len() as u64, "one object per algorithm");

    // The compressed Packages, as a cache would hold it, names the same pool.
    let cached = "debrep/dists/synth/main/binary-all/Packages.xz";
    let classified = classify(cached).unwrap();
    assert_eq!(classified.base, "debrep");
    let file = std::fs::File::open(index_dir.join("Packages.xz")).unwrap();
    let (pool, _) = references(classified.kind, decompress(cached, file).unwrap());
    assert_eq!(pool.len(), 3);
    for reference in &pool {
        assert_on_disk(&root, reference);
    }
}
