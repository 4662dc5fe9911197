//! `LocalDirs` (spec §2.7): a directory served read-only, with the cache's
//! guarantees. Files come with their type, length and date, Range, HEAD and
//! If-Modified-Since; directories redirect to their slash form and list;
//! nothing outside the directory is ever served, through `..` in any
//! encoding or a symlink inside it.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::support::http::{sha256_hex, Conn, Response};
use crate::support::{put, Daemon};

const SECRET: &str = "TOP-SECRET-CONTENT";

/// A served tree in a temporary directory, a secret beside it:
///
/// ```text
/// outside/secret.txt       never served
/// root/small.txt           text, read at once
/// root/big.zzqx            300 KB of bytes, an unknown extension
/// root/page.html
/// root/sub/a.txt, sub/b/   a directory to list
/// root/evil -> /etc        symlinks out of the tree
/// root/up -> ../outside
/// root/fifo
/// root/locked.txt          mode 000
/// ```
struct Tree {
    dir: tempfile::TempDir,
    big: Vec<u8>,
}

const SMALL: &[u8] = b"hello from a local directory\n";

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        put(dir.path(), "outside/secret.txt", SECRET.as_bytes());
        put(&root, "small.txt", SMALL);
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8 | 0x80).collect();
        put(&root, "big.zzqx", &big);
        put(&root, "page.html", b"<p>page</p>\n");
        put(&root, "sub/a.txt", b"a\n");
        std::fs::create_dir_all(root.join("sub/b")).unwrap();
        symlink("/etc", root.join("evil")).unwrap();
        symlink("../outside", root.join("up")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        put(&root, "locked.txt", SECRET.as_bytes());
        std::fs::set_permissions(root.join("locked.txt"), std::fs::Permissions::from_mode(0o000)).unwrap();
        Tree { dir, big }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn daemon(&self) -> Daemon {
        Daemon::start(&format!(
            "LocalDirs: vdir {} ; other /nonexistent\n",
            self.root().display()
        ))
    }
}

fn http_date_of(path: &Path) -> String {
    httpdate::fmt_http_date(std::fs::metadata(path).unwrap().modified().unwrap())
}

fn head(c: &mut Conn, target: &str, headers: &[(&str, &str)]) -> Response {
    c.send("HEAD", target, headers);
    c.read(true).expect("response")
}

#[test]
fn files_come_with_type_length_date_range_head_and_304() {
    let tree = Tree::new();
    let mut daemon = tree.daemon();
    let mut c = Conn::open(daemon.addr);

    let r = c.get("/vdir/small.txt", &[]);
    assert_eq!((r.status, r.body.as_slice()), (200, SMALL));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("content-length"), Some(SMALL.len().to_string().as_str()));
    let modified = http_date_of(&tree.root().join("small.txt"));
    assert_eq!(r.header("last-modified"), Some(modified.as_str()));

    let r = c.get("/vdir/small.txt", &[("Range", "bytes=6-9")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &SMALL[6..10]));
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 6-9/{}", SMALL.len()).as_str())
    );

    let r = head(&mut c, "/vdir/small.txt", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(SMALL.len().to_string().as_str()));

    let r = c.get("/vdir/small.txt", &[("If-Modified-Since", &modified)]);
    assert_eq!((r.status, r.body.len()), (304, 0));

    let r = c.get("/vdir/big.zzqx", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(sha256_hex(&r.body), sha256_hex(&tree.big));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let r = c.get("/vdir/big.zzqx", &[("Range", "bytes=-100000")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &tree.big[200_000..]));

    let r = c.get("/vdir/page.html", &[]);
    assert_eq!(r.header("content-type"), Some("text/html"));

    let r = c.get("http://vdir/small.txt", &[]);
    assert_eq!((r.status, r.body.as_slice()), (200, SMALL), "proxy style");

    let r = c.get("/vdir/missing", &[]);
    assert_eq!(r.status, 404);
    drop(c);
    daemon.stop();
    let log = daemon.transfer_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("O|") && l.ends_with("|127.0.0.1|vdir/small.txt")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("E|") && l.ends_with("|vdir/missing [HTTP error, code: 404]")),
        "{log:?}"
    );
}

#[test]
fn directories_redirect_to_their_slash_and_list_directories_first() {
    let tree = Tree::new();
    let daemon = tree.daemon();
    let mut c = Conn::open(daemon.addr);
    for (target, location) in [
        ("/vdir/sub", "/vdir/sub/"),
        ("/vdir", "/vdir/"),
        ("/vdir/sub/b?x=1", "/vdir/sub/b/"),
        ("http://vdir/sub", "http://vdir/sub/"),
    ] {
        let r = c.get(target, &[]);
        assert_eq!(
            (r.status, r.reason.as_str(), r.header("location")),
            (301, "Moved Permanently", Some(location)),
            "{target}"
        );
        assert!(r.text().contains(location), "{target}: {}", r.text());
    }

    let r = c.get("/vdir/sub/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    assert!(page.contains("Index of /vdir/sub/"), "{page}");
    assert!(page.contains("href=\"../\""), "{page}");
    let (dir, file) = (
        page.find("href=\"b/\"").unwrap(),
        page.find("href=\"a.txt\"").unwrap(),
    );
    assert!(dir < file, "directories first: {page}");

    let page = c.get("/vdir/", &[]).text();
    assert!(!page.contains("href=\"../\""), "no way up from the root: {page}");
    for linked in ["small.txt", "big.zzqx", "sub/"] {
        assert!(page.contains(&format!("href=\"{linked}\"")), "{linked}: {page}");
    }
    for unlinked in ["evil", "up", "fifo"] {
        assert!(
            page.contains(&format!("<td>{unlinked}</td>")),
            "{unlinked}: {page}"
        );
        assert!(
            !page.contains(&format!("href=\"{unlinked}")),
            "{unlinked}: {page}"
        );
    }
    let r = c.get("http://vdir/sub/", &[]);
    assert!(r.text().contains("href=\"a.txt\""), "proxy style lists too");
    let r = head(&mut c, "/vdir/sub/", &[]);
    assert_eq!(r.status, 200);
}

#[test]
fn nothing_outside_the_directory_is_ever_served() {
    let tree = Tree::new();
    let daemon = tree.daemon();
    const TRAVERSAL: (u16, &str) = (403, "Forbidden file type or location");
    const MISSING: (u16, &str) = (404, "File or directory not found");
    let mut table = vec![
        ("/vdir/missing", MISSING),
        ("/vdir/sub/missing/", MISSING),
        ("/vdir/small.txt/", MISSING),
        ("/vdir/small.txt/x", MISSING),
        ("/other/anything", MISSING),
        ("/vdir/../etc/passwd", TRAVERSAL),
        ("/vdir/..%2fetc/passwd", TRAVERSAL),
        ("/vdir/%2e%2e/etc/passwd", TRAVERSAL),
        ("/vdir/%2E%2E%2Foutside%2Fsecret.txt", TRAVERSAL),
        ("/vdir/%252e%252e%252foutside/secret.txt", TRAVERSAL),
        ("/vdir/sub/../../outside/secret.txt", TRAVERSAL),
        ("/vdir/.%2e/outside/secret.txt", TRAVERSAL),
        ("http://vdir/../outside/secret.txt", TRAVERSAL),
        ("http://vdir/%2e%2e/outside/secret.txt", TRAVERSAL),
        // Symlinks inside the tree: neither as files nor as directories.
        ("/vdir/evil", TRAVERSAL),
        ("/vdir/evil/", TRAVERSAL),
        ("/vdir/evil/passwd", TRAVERSAL),
        ("/vdir/up/secret.txt", TRAVERSAL),
        ("/vdir/up/", TRAVERSAL),
        ("http://vdir/evil/passwd", TRAVERSAL),
        ("/vdir/fifo", (403, "Unsupported data type")),
        ("/vdir/x%00/../../etc/passwd", TRAVERSAL),
    ];
    let long = format!("/vdir/{}", "n".repeat(300));
    table.push((&long, (414, "URI Too Long")));
    // Root reads every file whatever its mode: the case needs an ordinary user.
    if !rustix::process::geteuid().is_root() {
        table.push(("/vdir/locked.txt", (403, "Permission denied")));
    }
    let mut c = Conn::open(daemon.addr);
    for (target, (status, reason)) in table {
        let r = c.get(target, &[]);
        let body = r.text();
        assert!(
            !body.contains(SECRET) && !body.contains("root:"),
            "{target} leaked: {body}"
        );
        assert_eq!((r.status, r.reason.as_str()), (status, reason), "{target}");
    }
    assert_eq!(c.get("/vdir/small.txt", &[]).body, SMALL, "still serving");
}
