use std::fs;
use std::os::unix::fs::symlink;

use super::*;

fn entry(name: &[u8], kind: Kind, size: u64) -> Entry {
    Entry {
        name: name.to_vec(),
        kind,
        size,
        modified: Some(UNIX_EPOCH + Duration::from_secs(1_795_314_706)),
    }
}

fn listing(entries: Vec<Entry>) -> Listing {
    Listing {
        title: "/docs/sub/".into(),
        below_root: true,
        entries,
        left_out: 0,
    }
}

fn dir_fd(path: &Path) -> OwnedFd {
    openat(
        rustix::fs::CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY,
        Mode::empty(),
    )
    .unwrap()
}

fn names(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect()
}

#[test]
fn directories_come_first_then_everything_else_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for d in ["zeta", "Alpha", "mid"] {
        fs::create_dir(dir.path().join(d)).unwrap();
    }
    for f in ["b.txt", "B.txt", "a.deb"] {
        fs::write(dir.path().join(f), f).unwrap();
    }
    symlink("/etc", dir.path().join("evil")).unwrap();
    let (entries, left_out) = read_dir(dir_fd(dir.path()), 100).unwrap();
    assert_eq!(
        names(&entries),
        ["Alpha", "mid", "zeta", "B.txt", "a.deb", "b.txt", "evil"]
    );
    assert_eq!(left_out, 0);
    assert_eq!(
        entries[6].kind,
        Kind::Symlink,
        "a symlink is not taken for its target"
    );
    assert_eq!(entries[4].size, 5);
}

#[test]
fn a_listing_keeps_the_first_entries_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["e", "d", "c", "b"] {
        fs::write(dir.path().join(f), "").unwrap();
    }
    fs::create_dir(dir.path().join("z")).unwrap();
    let (entries, left_out) = read_dir(dir_fd(dir.path()), 3).unwrap();
    assert_eq!(names(&entries), ["z", "b", "c"]);
    assert_eq!(left_out, 2);
}

#[test]
fn sizes_read_like_ls_h() {
    let cases = [
        (0, "0"),
        (1023, "1023"),
        (1024, "1.0K"),
        (1536, "1.5K"),
        (10 * 1024, "10K"),
        (123_456_789, "118M"),
        (5 * 1024 * 1024 * 1024, "5.0G"),
        (u64::MAX, "16E"),
    ];
    for (bytes, want) in cases {
        assert_eq!(human_size(bytes), want, "{bytes}");
    }
}

#[test]
fn dates_are_day_month_year_hour_minute_in_utc() {
    let t = UNIX_EPOCH + Duration::from_secs(1_795_314_706);
    assert_eq!(listing_date(t), "22-Nov-2026 02:31");
    assert_eq!(listing_date(UNIX_EPOCH), "01-Jan-1970 00:00");
}

#[test]
fn mtimes_no_http_date_can_hold_are_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old");
    fs::write(&path, "").unwrap();
    let mut st = rustix::fs::stat(&path).unwrap();
    assert!(mtime(&st).is_some());
    st.st_mtime = -1;
    assert_eq!(mtime(&st), None);
    st.st_mtime = 253_402_300_800;
    assert_eq!(mtime(&st), None);
}

#[test]
fn hostile_names_are_escaped_in_text_and_encoded_in_links() {
    let page = listing(vec![
        entry(b"\"><script>alert(1)<", Kind::File, 1),
        entry(b"<img src=x onerror=alert(1)>", Kind::Directory, 0),
        entry(b"100%", Kind::File, 1),
        entry(b"x&y 'q'", Kind::File, 1),
        entry(b"javascript:alert(1)", Kind::File, 1),
    ])
    .render()
    .unwrap();
    for raw in [
        "<script",
        "<img",
        "onerror=alert(1)>",
        "\"><s",
        "href=\"javascript:",
    ] {
        assert!(!page.contains(raw), "{raw} reached the page:\n{page}");
    }
    for escaped in [
        "href=\"%22%3E%3Cscript%3Ealert%281%29%3C\"",
        "&#34;&#62;&#60;script&#62;alert(1)&#60;",
        "href=\"%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E/\"",
        "href=\"100%25\">100%</a>",
        "href=\"x%26y%20%27q%27\">x&#38;y &#39;q&#39;</a>",
        "href=\"javascript%3Aalert%281%29\"",
    ] {
        assert!(page.contains(escaped), "{escaped} missing:\n{page}");
    }
}

#[test]
fn only_what_a_request_can_reach_is_linked() {
    let page = listing(vec![
        entry(b"sub", Kind::Directory, 0),
        entry(b"file.txt", Kind::File, 1),
        entry(b"evil", Kind::Symlink, 4),
        entry(b"fifo", Kind::Special, 0),
        entry(b"dots..", Kind::File, 1),
        entry(b"bad\xffname", Kind::File, 1),
        entry(b"tab\tname", Kind::File, 1),
    ])
    .render()
    .unwrap();
    assert!(page.contains("<a href=\"sub/\">sub/</a>"), "{page}");
    assert!(page.contains("<a href=\"file.txt\">file.txt</a>"), "{page}");
    assert!(page.contains("<a href=\"../\">"), "{page}");
    for unlinked in ["evil", "fifo", "dots..", "bad\u{fffd}name", "tab\tname"] {
        assert!(
            page.contains(&format!("<td>{unlinked}</td>")),
            "{unlinked}:\n{page}"
        );
    }
    assert!(page.contains("[LNK]") && page.contains("[SPC]") && page.contains("[DIR]"));
    assert!(page.contains("22-Nov-2026 02:31"), "{page}");
}

#[test]
fn the_root_has_no_parent_link_and_cut_listings_say_so() {
    let mut root = listing(vec![entry(b"a", Kind::File, 1)]);
    root.below_root = false;
    root.left_out = 7;
    let page = root.render().unwrap();
    assert!(!page.contains("href=\"../\""), "{page}");
    assert!(page.contains("7 more entries are not listed"), "{page}");
    assert!(!page.contains("Entries without a link"), "{page}");
}

#[test]
fn open_tells_files_directories_and_refusals_apart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("sub/page.html"), "<p>hi</p>").unwrap();
    fs::write(root.join("README"), "plain").unwrap();
    symlink("/etc", root.join("evil")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo").as_path(),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let open = |path: &str| open("docs", &root, path);
    match open("/sub/page.html").unwrap() {
        Found::File(f) => {
            assert_eq!((f.len, f.content_type), (9, "text/html"));
            assert!(f.modified.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(open("/README"), Ok(Found::File(f)) if f.content_type == "text/plain"));
    assert!(matches!(open("/sub"), Ok(Found::Redirect { path }) if path == "/sub/"));
    assert!(matches!(open(""), Ok(Found::Redirect { path }) if path == "/"));
    match open("/?x=1").unwrap() {
        Found::Listing(l) => {
            assert_eq!(l.title, "/docs/");
            assert!(!l.below_root);
            assert_eq!(names(&l.entries), ["sub", "README", "evil", "fifo"]);
        }
        other => panic!("{other:?}"),
    }
    for refused in [
        "/evil",
        "/evil/",
        "/evil/passwd",
        "/sub/../evil",
        "/sub//page.html",
    ] {
        assert!(
            matches!(open(refused), Err(LocalDirError::Forbidden(_))),
            "{refused}"
        );
    }
    assert!(matches!(open("/fifo"), Err(LocalDirError::Unsupported)));
    for missing in ["/nothing", "/README/", "/README/x", "/sub/nothing/"] {
        assert!(
            matches!(open(missing), Err(LocalDirError::NotFound(_))),
            "{missing}"
        );
    }
    let long = format!("/{}", "x".repeat(300));
    assert!(matches!(open(&long), Err(LocalDirError::NameTooLong(_))));
    assert!(matches!(
        super::open("docs", &dir.path().join("gone"), "/"),
        Err(LocalDirError::NotFound(_))
    ));
}

#[test]
fn locations_keep_the_form_of_the_request() {
    assert_eq!(location("acng-doc", "/html/", false), "/acng-doc/html/");
    assert_eq!(location("acng-doc", "/html/", true), "http://acng-doc/html/");
    assert_eq!(location("my docs", "/a%20b/", false), "/my%20docs/a%20b/");
}
