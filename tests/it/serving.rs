//! Serving an existing cache with no upstream at all: the cache apt-cacher-ng
//! 3.7.4 wrote, hand-written `.head` files, ranges and conditionals,
//! pipelining, the daemon's own pages and its refusals.

use crate::support::http::{self, sha256_hex, Conn};
use crate::support::{acng_head, copy_tree, fixture, fixture_sums, put, Daemon, Setup};

/// A daemon on a copy of the fixture cache, configured as the acng that
/// wrote it (whose upstream, 127.0.0.1:28080, is not running).
fn acng_cache_daemon() -> (tempfile::TempDir, Daemon) {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&fixture("acng-3.7.4-cache"), copy.path());
    let conf =
        "AllowUserPorts: 80 28080\nRemap-synth: /synth ; http://127.0.0.1:28080/debian\nOfflineMode: 1\n";
    let daemon = Daemon::start_with(Setup {
        conf,
        cache: Some(copy.path()),
        ..Setup::default()
    });
    (copy, daemon)
}

/// The URLs that reach a cached path: proxy style and path style.
fn urls_for(path: &str) -> Vec<String> {
    match path.split_once('/') {
        Some(("synth", rest)) => vec![format!("http://synth/{rest}"), format!("/synth/{rest}")],
        Some(("127.0.0.1", rest)) => vec![
            format!("http://127.0.0.1:28080/{rest}"),
            format!("/127.0.0.1:28080/{rest}"),
            format!("/127.0.0.1/{rest}"),
        ],
        _ => panic!("unexpected fixture path {path}"),
    }
}

#[test]
fn every_file_apt_cacher_ng_cached_is_served_byte_for_byte() {
    let (_copy, daemon) = acng_cache_daemon();
    let sums = fixture_sums();
    assert_eq!(sums.len(), 8);
    let mut conn = Conn::open(daemon.addr);
    for (sum, path) in &sums {
        let head = std::fs::read_to_string(fixture(&format!("acng-3.7.4-cache/{path}.head"))).unwrap();
        let last_modified = head
            .lines()
            .find_map(|l| l.strip_prefix("Last-Modified: "))
            .map(str::trim);
        assert!(last_modified.is_some(), "{path}.head has a date");
        for url in urls_for(path) {
            let r = conn.get(&url, &[]);
            assert_eq!(r.status, 200, "{url}: {} {}", r.status, r.reason);
            assert_eq!(&sha256_hex(&r.body), sum, "{url}");
            assert_eq!(r.header("content-length").unwrap(), r.body.len().to_string());
            assert_eq!(r.header("accept-ranges"), Some("bytes"));
            assert_eq!(r.header("last-modified"), last_modified, "{url}: acng's date");
        }
    }
}

#[test]
fn a_file_not_in_the_cache_is_503_offline() {
    let (_copy, daemon) = acng_cache_daemon();
    for url in [
        "http://synth/pool/main/s/nothere_1_all.deb",
        "/synth/dists/other/InRelease",
        "/deb.debian.org/debian/pool/a.deb",
    ] {
        let r = http::get(daemon.addr, url);
        assert_eq!(
            (r.status, r.reason.as_str()),
            (503, "Unable to download in offline mode"),
            "{url}"
        );
    }
    // The repository's backend URL is not a merging URL: it is cached apart.
    let r = http::get(daemon.addr, "http://127.0.0.1:28080/debian/dists/synth/InRelease");
    assert_eq!(r.status, 503);
}

#[test]
fn hand_written_heads_decide_completeness() {
    let daemon = Daemon::start("");
    let cache = daemon.cache();
    let data = b"0123456789";
    let heads: &[(&str, String, u16)] = &[
        ("crlf.deb", acng_head(10), 200),
        ("lf.deb", "HTTP/1.1 200 OK\nContent-Length: 10\n\n".into(), 200),
        (
            "extra.deb",
            "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 10\r\nETag: \"v1\"\r\nX-Debcache-Expected-Length: 10\r\nX-Future: 1\r\n\r\n".into(),
            200,
        ),
        ("nolength.deb", "HTTP/1.1 200 OK\r\nLast-Modified: Sun, 22 Nov 2026 02:58:26 GMT\r\n\r\n".into(), 503),
        ("expected-only.deb", "HTTP/1.1 200 OK\r\nX-Debcache-Expected-Length: 10\r\n\r\n".into(), 503),
        ("short.deb", acng_head(11), 503),
        ("long.deb", acng_head(9), 503),
        ("error.deb", "HTTP/1.1 404 Not Found\r\nX-Original-Source: http://x/y\r\n\r\n".into(), 503),
        ("garbage.deb", "\u{0}\u{1}not a head".into(), 503),
    ];
    for (name, head, _) in heads {
        put(&cache, &format!("h.example/pool/{name}"), data);
        put(&cache, &format!("h.example/pool/{name}.head"), head.as_bytes());
    }
    put(&cache, "h.example/pool/headless.deb", data);
    let mut conn = Conn::open(daemon.addr);
    for (name, _, status) in heads {
        let r = conn.get(&format!("/h.example/pool/{name}"), &[]);
        assert_eq!(r.status, *status, "{name}");
        if *status == 200 {
            assert_eq!(r.body, data);
        }
    }
    assert_eq!(conn.get("/h.example/pool/headless.deb", &[]).status, 503);
    let r = conn.get("/h.example/pool/extra.deb", &[]);
    assert_eq!(r.header("etag"), Some("\"v1\""));
}

#[test]
fn ranges_heads_and_conditionals_follow_rfc_9110() {
    let daemon = Daemon::start("");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    put(&daemon.cache(), "h.example/pool/big.deb", &data);
    put(
        &daemon.cache(),
        "h.example/pool/big.deb.head",
        b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\nLast-Modified: Sun, 22 Nov 2026 02:58:26 GMT\r\nETag: \"big1\"\r\n\r\n",
    );
    let url = "/h.example/pool/big.deb";
    let mut c = Conn::open(daemon.addr);

    let r = c.get(url, &[("Range", "bytes=100-199")]);
    assert_eq!(
        (r.status, r.header("content-range")),
        (206, Some("bytes 100-199/200000"))
    );
    assert_eq!(r.body, &data[100..200]);

    let r = c.get(url, &[("Range", "bytes=-1000")]);
    assert_eq!(
        (r.status, r.header("content-range")),
        (206, Some("bytes 199000-199999/200000"))
    );
    assert_eq!(r.body, &data[199_000..]);

    let r = c.get(url, &[("Range", "bytes=150000-999999")]);
    assert_eq!(r.header("content-range"), Some("bytes 150000-199999/200000"));
    assert_eq!(r.body, &data[150_000..]);

    let r = c.get(url, &[("Range", "bytes=200000-")]);
    assert_eq!(
        (r.status, r.header("content-range")),
        (416, Some("bytes */200000"))
    );

    let r = c.get(url, &[("Range", "bytes=10-19"), ("If-Range", "\"big1\"")]);
    assert_eq!(r.status, 206);
    let r = c.get(url, &[("Range", "bytes=10-19"), ("If-Range", "\"other\"")]);
    assert_eq!((r.status, r.body.len()), (200, 200_000));
    let r = c.get(
        url,
        &[
            ("Range", "bytes=10-19"),
            ("If-Range", "Sun, 22 Nov 2026 02:58:26 GMT"),
        ],
    );
    assert_eq!(r.status, 206);

    let r = c.get(url, &[("If-Modified-Since", "Sun, 22 Nov 2026 02:58:26 GMT")]);
    assert_eq!((r.status, r.body.len()), (304, 0));
    let r = c.get(url, &[("If-Modified-Since", "Sat, 21 Nov 2026 02:58:26 GMT")]);
    assert_eq!((r.status, r.body.len()), (200, 200_000));
    let r = c.get(url, &[("If-None-Match", "\"big1\"")]);
    assert_eq!(r.status, 304);

    c.send("HEAD", url, &[]);
    let r = c.read(true).unwrap();
    assert_eq!((r.status, r.header("content-length")), (200, Some("200000")));
    assert_eq!(r.header("last-modified"), Some("Sun, 22 Nov 2026 02:58:26 GMT"));
    // The connection is still usable after a HEAD: nothing was sent after it.
    assert_eq!(c.get(url, &[]).body, data);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let daemon = Daemon::start("");
    let files = [
        ("a.deb", vec![b'a'; 10]),
        ("b.deb", vec![b'b'; 70_000]),
        ("c.deb", vec![b'c'; 300_000]),
    ];
    for (name, data) in &files {
        put(&daemon.cache(), &format!("h.example/p/{name}"), data);
        put(
            &daemon.cache(),
            &format!("h.example/p/{name}.head"),
            acng_head(data.len()).as_bytes(),
        );
    }
    let mut c = Conn::open(daemon.addr);
    let mut burst = String::new();
    for name in ["c.deb", "a.deb", "missing.deb", "b.deb", "a.deb"] {
        burst.push_str(&http::request("GET", &format!("/h.example/p/{name}"), &[]));
    }
    c.send_raw(burst.as_bytes());
    let expect = [
        ("c.deb", 200),
        ("a.deb", 200),
        ("missing.deb", 503),
        ("b.deb", 200),
        ("a.deb", 200),
    ];
    for (name, status) in expect {
        let r = c.read(false).unwrap();
        assert_eq!(r.status, status, "{name}");
        if let Some((_, data)) = files.iter().find(|(n, _)| *n == name) {
            assert_eq!(&r.body, data, "{name}");
        }
    }
}

#[test]
fn the_daemon_answers_its_own_pages_and_refusals() {
    let daemon = Daemon::start("");
    let addr = daemon.addr;
    let r = http::get(addr, "/");
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("Acquire::http::Proxy \"http://test\";"),
        "the Host header names the server"
    );
    assert!(r.text().contains("/HTTPS///"), "HTTPS/// is offered");
    assert_eq!(
        http::get(addr, "/style.css").header("content-type"),
        Some("text/css")
    );
    // The report page arrives with the web interface; it shows help until then.
    assert!(http::get(addr, "/acng-report.html")
        .text()
        .contains("debcache at"));

    let cases: &[(&str, &str, u16, &str)] = &[
        (
            // Not in the default PassThroughPattern: refused without a lookup.
            "CONNECT",
            "deb.debian.org:443",
            403,
            "CONNECT denied (ask the admin to allow HTTPS tunnels)",
        ),
        ("PUT", "/deb.debian.org/debian/pool/a.deb", 501, "Not Implemented"),
        (
            "OPTIONS",
            "/deb.debian.org/debian/pool/a.deb",
            501,
            "Not Implemented",
        ),
        (
            "GET",
            "/deb.debian.org/debian/index.html",
            403,
            "Forbidden file type or location",
        ),
        ("GET", "/_xstore/qstats/i", 403, "Forbidden file type or location"),
        (
            "GET",
            "http://deb.debian.org:3142/debian/pool/a.deb",
            403,
            "Configuration error (confusing proxy mode) or prohibited port (see AllowUserPorts)",
        ),
        (
            "POST",
            "http://bugs.debian.org:80/cgi-bin/soap.cgi",
            302,
            "Redirect",
        ),
    ];
    for (method, target, status, reason) in cases {
        let mut c = Conn::open(addr);
        c.send(method, target, &[]);
        let r = c.read(*method == "CONNECT").unwrap();
        assert_eq!(
            (r.status, r.reason.as_str()),
            (*status, *reason),
            "{method} {target}"
        );
    }
    let mut c = Conn::open(addr);
    c.send(
        "POST",
        "http://bugs.debian.org:80/cgi-bin/soap.cgi",
        &[("Content-Length", "0")],
    );
    assert_eq!(
        c.read(false).unwrap().header("location"),
        Some("https://bugs.debian.org:443/cgi-bin/soap.cgi")
    );
}

#[test]
fn garbage_gets_an_answer_and_the_daemon_keeps_serving() {
    let daemon = Daemon::start("");
    for junk in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /x HTTP/9.9\r\n\r\n",
        b"GET /a b c HTTP/1.1\r\n\r\n",
    ] {
        let mut c = Conn::open(daemon.addr);
        c.send_raw(junk);
        if let Ok(r) = c.read(false) {
            assert!(r.status >= 400, "{junk:?} got {}", r.status);
        }
    }
    assert_eq!(http::get(daemon.addr, "/").status, 200);
}

#[test]
fn the_transfer_log_records_what_was_sent() {
    let mut daemon = Daemon::start("");
    put(&daemon.cache(), "h.example/p/a.deb", b"0123456789");
    put(
        &daemon.cache(),
        "h.example/p/a.deb.head",
        acng_head(10).as_bytes(),
    );
    let mut c = Conn::open(daemon.addr);
    c.get("/h.example/p/a.deb", &[]);
    c.get("http://h.example/p/a.deb", &[("Range", "bytes=0-4")]);
    c.get("/h.example/p/missing.deb", &[]);
    c.get("/h.example/p/index.html", &[]);
    drop(c);
    assert!(daemon.stop().unwrap().success());
    let log = daemon.transfer_log();
    assert_eq!(log.len(), 3, "{log:?}");
    let (kind, rest) = log[0].split_once('|').unwrap();
    let (bytes, rest) = rest.split_once('|').unwrap();
    assert_eq!(
        (kind, rest),
        ("O", "127.0.0.1|h.example/p/a.deb"),
        "two transfers of one file, one record"
    );
    assert!(bytes.parse::<u64>().unwrap() > 15, "headers count too: {bytes}");
    assert!(
        log[1].starts_with("E|")
            && log[1].ends_with("|127.0.0.1|h.example/p/missing.deb [HTTP error, code: 503]")
    );
    assert!(log[2].starts_with("E|") && log[2].ends_with("|127.0.0.1| [HTTP error, code: 403]"));
}

#[test]
fn force_managed_refuses_repositories_without_backends() {
    let conf = "ForceManaged: 1\nRemap-managed: /managed ; http://127.0.0.1:9/debian\nRemap-loose: /loose\n";
    let daemon = Daemon::start(conf);
    put(&daemon.cache(), "loose/pool/cached.deb", b"abc");
    put(
        &daemon.cache(),
        "loose/pool/cached.deb.head",
        acng_head(3).as_bytes(),
    );
    let mut c = Conn::open(daemon.addr);
    let r = c.get("/loose/pool/missing.deb", &[]);
    assert_eq!(
        (r.status, r.reason.as_str()),
        (403, "Forbidden file type or location")
    );
    let r = c.get("http://elsewhere.example/pool/a.deb", &[]);
    assert_eq!(r.status, 403, "direct downloads are refused too");
    assert_eq!(
        c.get("/loose/pool/cached.deb", &[]).body,
        b"abc",
        "cached content is still served"
    );
    assert_eq!(c.get("/managed/pool/missing.deb", &[]).status, 503);
    let offline = Daemon::start(&format!("{conf}OfflineMode: 1\n"));
    assert_eq!(
        http::get(offline.addr, "/loose/pool/missing.deb").status,
        503,
        "offline is checked first"
    );
}

#[test]
fn a_range_with_a_blank_after_the_equals_sign_gets_206() {
    let daemon = Daemon::start("");
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    put(&daemon.cache(), "h.example/pool/r.deb", &data);
    put(
        &daemon.cache(),
        "h.example/pool/r.deb.head",
        acng_head(data.len()).as_bytes(),
    );
    let mut c = Conn::open(daemon.addr);
    for range in ["bytes= 0-9", "bytes=0- 9", "Bytes=0-9", "bytes=0-9,"] {
        let r = c.get("/h.example/pool/r.deb", &[("Range", range)]);
        assert_eq!(
            (r.status, r.header("content-range")),
            (206, Some("bytes 0-9/1000")),
            "{range}"
        );
        assert_eq!(r.body, &data[..10], "{range}");
    }
}

/// debcache's limits: a cache path of 3000 bytes, a name of 255 (its own
/// page, the connection goes on); a request target of 16 KiB (the HTTP
/// server's answer, then the connection closes: see `framing`).
#[test]
fn a_url_too_long_to_cache_is_414_uri_too_long() {
    let daemon = Daemon::start("");
    put(&daemon.cache(), "h.example/p/a.deb", b"abc");
    put(&daemon.cache(), "h.example/p/a.deb.head", acng_head(3).as_bytes());
    let mut c = Conn::open(daemon.addr);
    let deep = format!("/h.example/{}a.deb", "pool/".repeat(2000));
    let long_name = format!("/h.example/p/{}.deb", "n".repeat(300));
    for target in [&deep, &long_name] {
        let r = c.get(target, &[]);
        assert_eq!(
            (r.status, r.reason.as_str()),
            (414, "URI Too Long"),
            "{} bytes",
            target.len()
        );
        assert!(r.text().contains("414 URI Too Long"), "debcache's own page");
    }
    assert_eq!(
        c.get("/h.example/p/a.deb", &[]).body,
        b"abc",
        "the connection goes on"
    );
    let huge = format!("http://h.example/{}.deb", "x".repeat(60_000));
    let r = Conn::open(daemon.addr).get(&huge, &[]);
    assert_eq!((r.status, r.reason.as_str()), (414, "URI Too Long"));
    assert!(r.text().contains("414 URI Too Long"), "{}", r.text());

    // A request line that never ends: answered as soon as it is too long.
    let mut line = b"GET /h.example/".to_vec();
    line.resize(64 * 1024, b'y');
    let mut c = Conn::open(daemon.addr);
    c.send_raw(&line);
    let r = c.read(false).unwrap();
    assert_eq!(r.status, 414);
    assert_eq!(http::get(daemon.addr, "/h.example/p/a.deb").body, b"abc");
}
