//! What debcache sends upstream and how it takes the answers: headers,
//! HEAD, relayed errors, redirects, proxies, pass-through, key files.

use crate::support::http::{self, Conn};
use crate::support::origin::{Fault, Meta, Origin};
use crate::support::{wait_for, Daemon};

const PATH: &str = "/debian/pool/main/a/a/a_1.0_all.deb";
const URL: &str = "/m/pool/main/a/a/a_1.0_all.deb";

fn remap(origin: &Origin) -> String {
    format!("Remap-m: /m ; {}\n", origin.url("/debian"))
}

#[test]
fn the_request_upstream_names_host_port_agent_and_encoding() {
    let origin = Origin::start();
    origin.put("/debian/pool/main/g/gcc/g%2B%2B_1%3A12_all.deb", b"gxx".to_vec());
    let daemon = Daemon::start(&format!("{}ExposeOrigin: 1\n", remap(&origin)));
    let r = Conn::open(daemon.addr).get(
        "/m/pool/main/g/gcc/g%2b%2b_1%3a12_all.deb",
        &[("X-Forwarded-For", "198.51.100.7")],
    );
    assert_eq!((r.status, r.body.as_slice()), (200, &b"gxx"[..]));
    let seen = &origin.seen()[0];
    assert_eq!(
        seen.path, "/debian/pool/main/g/gcc/g%2B%2B_1%3A12_all.deb",
        "re-encoded, uppercase hex"
    );
    assert_eq!(
        seen.header("host"),
        Some(origin.addr().to_string().as_str()),
        "with its port"
    );
    assert_eq!(
        seen.header("user-agent"),
        Some(concat!("Debcache/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(seen.header("accept-encoding"), Some("identity"));
    assert_eq!(seen.header("x-forwarded-for"), Some("198.51.100.7, 127.0.0.1"));
}

#[test]
fn head_of_an_uncached_file_is_forwarded_and_nothing_is_stored() {
    let origin = Origin::start();
    origin.put(PATH, vec![1u8; 1234]);
    let daemon = Daemon::start(&remap(&origin));
    let mut c = Conn::open(daemon.addr);
    c.send("HEAD", URL, &[]);
    let r = c.read(true).unwrap();
    assert_eq!((r.status, r.header("content-length")), (200, Some("1234")));
    assert_eq!(origin.seen()[0].method, "HEAD");
    assert!(!daemon.cache().join("m/pool/main/a/a/a_1.0_all.deb").exists());
    assert_eq!(c.get(URL, &[]).body.len(), 1234, "the connection goes on");
}

#[test]
fn head_of_a_file_in_flight_comes_from_the_flight() {
    let origin = Origin::start();
    origin.put(PATH, vec![2u8; 5000]);
    let gate = origin.fault(PATH, Fault::PauseAt(0), 1).unwrap();
    let daemon = Daemon::start(&remap(&origin));
    let mut getter = Conn::open(daemon.addr);
    getter.send("GET", URL, &[]);
    assert_eq!(getter.read_head().unwrap().status, 200);
    let mut c = Conn::open(daemon.addr);
    c.send("HEAD", URL, &[]);
    let r = c.read(true).unwrap();
    assert_eq!((r.status, r.header("content-length")), (200, Some("5000")));
    gate.release();
    assert_eq!(getter.read_body(5000).unwrap().len(), 5000);
    assert_eq!(origin.requests(PATH), 1, "the HEAD was not sent upstream");
}

#[test]
fn upstream_errors_reach_the_client_with_their_status() {
    let origin = Origin::start();
    let daemon = Daemon::start(&remap(&origin));
    let r = http::get(daemon.addr, "/m/pool/main/n/no/no_1_all.deb");
    assert_eq!((r.status, r.reason.as_str()), (404, "Not Found"));
    origin.put(PATH, b"x".to_vec());
    origin.fault(PATH, Fault::Status(502), 1);
    assert_eq!(http::get(daemon.addr, URL).status, 502);
    assert_eq!(http::get(daemon.addr, URL).status, 200, "errors are not cached");
    let unreachable = Daemon::start("Remap-d: /d ; http://127.0.0.1:1/debian\n");
    let r = http::get(unreachable.addr, "/d/pool/x_1_all.deb");
    assert_eq!((r.status, r.reason.as_str()), (503, "Connection refused"));
}

#[test]
fn redirects_are_followed_relative_or_not_and_cached_under_the_asked_name() {
    let origin = Origin::start();
    origin.put("/debian/real/a.deb", b"real".to_vec());
    origin.fault(PATH, Fault::Redirect(302, "../../../../real/a.deb".into()), 1);
    origin.fault(
        "/debian/pool/b.deb",
        Fault::Redirect(301, "/debian/real/a.deb".into()),
        2,
    );
    origin.fault(
        "/debian/pool/c.deb",
        Fault::Redirect(307, origin.url("/debian/pool/b.deb")),
        1,
    );
    let daemon = Daemon::start(&remap(&origin));
    let mut c = Conn::open(daemon.addr);
    assert_eq!(c.get(URL, &[]).body, b"real");
    assert_eq!(
        c.get("/m/pool/b.deb", &[]).body,
        b"real",
        "a path-absolute Location (acng read it as a host)"
    );
    assert_eq!(c.get("/m/pool/c.deb", &[]).body, b"real", "a chain");
    assert_eq!(
        std::fs::read(daemon.cache().join("m/pool/main/a/a/a_1.0_all.deb")).unwrap(),
        b"real"
    );
    let head = std::fs::read_to_string(daemon.cache().join("m/pool/main/a/a/a_1.0_all.deb.head")).unwrap();
    assert!(
        head.contains(&format!(
            "X-Original-Source: {}",
            origin.url("/debian/real/a.deb")
        )),
        "{head}"
    );
}

#[test]
fn endless_redirects_and_captive_portals_are_refused() {
    let origin = Origin::start();
    origin.fault(PATH, Fault::Redirect(302, PATH.into()), 100);
    origin.put_with(
        "/portal.html",
        b"<html>log in</html>".to_vec(),
        Meta {
            content_type: Some("text/html; charset=utf-8".into()),
            ..Meta::default()
        },
    );
    origin.fault(
        "/debian/pool/p.deb",
        Fault::Redirect(302, "/portal.html".into()),
        1,
    );
    let daemon = Daemon::start(&remap(&origin));
    let r = http::get(daemon.addr, URL);
    assert_eq!((r.status, r.reason.as_str()), (503, "Redirection loop"));
    let r = http::get(daemon.addr, "/m/pool/p.deb");
    assert_eq!(
        (r.status, r.reason.as_str()),
        (501, "Redirected to invalid target")
    );
    assert!(!daemon.cache().join("m/pool/p.deb").exists());
}

#[test]
fn a_redirect_without_location_is_a_bad_redirection() {
    let origin = Origin::start();
    origin.put(PATH, b"never asked for twice".to_vec());
    origin.fault(PATH, Fault::Status(302), 1);
    let daemon = Daemon::start(&remap(&origin));
    let r = http::get(daemon.addr, URL);
    assert_eq!((r.status, r.reason.as_str()), (503, "Bad redirection"));
    assert_eq!(origin.requests(PATH), 1, "no hop to the same URL");
}

#[test]
fn with_redir_max_zero_redirects_are_passed_on() {
    let origin = Origin::start();
    origin.fault(
        PATH,
        Fault::Redirect(302, "http://elsewhere.example/x.deb".into()),
        1,
    );
    let daemon = Daemon::start(&format!("{}RedirMax: 0\n", remap(&origin)));
    let r = http::get(daemon.addr, URL);
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("http://elsewhere.example/x.deb"))
    );
}

#[test]
fn proxy_credentials_go_to_the_proxy_only() {
    let proxy = Origin::start();
    proxy.put(PATH, b"via proxy".to_vec());
    let at = proxy.url("").replacen("http://", "http://apt:s%40cret@", 1);
    let daemon = Daemon::start(&format!(
        "Proxy: {at}\nRemap-m: /m ; http://mirror.invalid/debian\n"
    ));
    assert_eq!(http::get(daemon.addr, URL).body, b"via proxy");
    let seen = &proxy.seen()[0];
    // base64("apt:s@cret")
    assert_eq!(seen.header("proxy-authorization"), Some("Basic YXB0OnNAY3JldA=="));
    assert_eq!(seen.header("authorization"), None);
}

#[test]
fn an_upstream_proxy_gets_absolute_form_requests() {
    let proxy = Origin::start();
    proxy.put(PATH, b"via proxy".to_vec());
    let conf = format!(
        "Proxy: {}\nRemap-m: /m ; http://mirror.invalid/debian\n",
        proxy.url("")
    );
    let daemon = Daemon::start(&conf);
    assert_eq!(http::get(daemon.addr, URL).body, b"via proxy");
    assert_eq!(proxy.seen()[0].path, format!("http://mirror.invalid{PATH}"));
    assert_eq!(proxy.seen()[0].header("host"), Some("mirror.invalid"));

    // proxy= per repository: another proxy, or none at all.
    let direct = Origin::start();
    direct.put(PATH, b"direct".to_vec());
    let conf = format!(
        "Proxy: http://127.0.0.1:1\nRemap-m: /m ; {} ; proxy=\nRemap-p: /p ; http://mirror.invalid/debian ; proxy={}\n",
        direct.url("/debian"),
        proxy.url("")
    );
    let daemon = Daemon::start(&conf);
    assert_eq!(http::get(daemon.addr, URL).body, b"direct");
    assert_eq!(
        http::get(daemon.addr, "/p/pool/main/a/a/a_1.0_all.deb").body,
        b"via proxy"
    );
}

#[test]
fn dont_cache_and_no_store_pass_through_without_storing() {
    let origin = Origin::start();
    origin.put("/debian/pool/nocache_1_all.deb", b"fresh every time".to_vec());
    origin.put(PATH, b"stored?".to_vec());
    let daemon = Daemon::start(&format!("{}DontCacheRequested: nocache_\n", remap(&origin)));
    let mut c = Conn::open(daemon.addr);
    for _ in 0..2 {
        assert_eq!(c.get("/m/pool/nocache_1_all.deb", &[]).body, b"fresh every time");
    }
    assert_eq!(origin.requests("/debian/pool/nocache_1_all.deb"), 2);
    assert!(!daemon.cache().join("m/pool/nocache_1_all.deb").exists());
    assert_eq!(c.get(URL, &[("Cache-Control", "no-store")]).body, b"stored?");
    assert!(!daemon.cache().join("m/pool/main/a/a/a_1.0_all.deb").exists());
}

#[test]
fn a_key_file_failure_moves_to_the_next_backend() {
    let broken = Origin::start();
    let good = Origin::start();
    good.put("/debian/dists/x/Release", b"Suite: x\n".to_vec());
    let backends = format!("{} {}", broken.url("/debian"), good.url("/debian"));
    let daemon = Daemon::start(&format!("Remap-k: /k ; {backends} ; keyfile=Release\n"));
    assert_eq!(http::get(daemon.addr, "/k/dists/x/Release").body, b"Suite: x\n");
    // A separate daemon: the first one now avoids the broken backend.
    let plain = Daemon::start(&format!("Remap-n: /n ; {backends}\n"));
    assert_eq!(
        http::get(plain.addr, "/n/dists/x/Release").status,
        404,
        "without keyfile= a 404 is an answer"
    );
}

#[test]
fn a_chunked_upstream_body_is_stored_complete() {
    let origin = Origin::start();
    origin.put(PATH, vec![5u8; 300_000]);
    origin.fault(PATH, Fault::Chunked, 1);
    let daemon = Daemon::start(&remap(&origin));
    let first = http::get(daemon.addr, URL);
    assert_eq!(first.body.len(), 300_000);
    let second = http::get(daemon.addr, URL);
    assert_eq!(second.header("content-length"), Some("300000"));
    assert_eq!(origin.requests(PATH), 1);
}

#[test]
fn a_hung_mirror_times_out() {
    let origin = Origin::start();
    origin.fault(PATH, Fault::Hang, 1);
    let daemon = Daemon::start(&format!("{}NetworkTimeout: 5\n", remap(&origin)));
    let r = http::get(daemon.addr, URL);
    assert_eq!((r.status, r.reason.as_str()), (503, "Connection timeout"));
}

#[test]
fn reading_ahead_respects_dont_cache() {
    let origin = Origin::start();
    origin.put(PATH, b"first".to_vec());
    origin.put("/debian/pool/nocache_2_all.deb", b"second".to_vec());
    let daemon = Daemon::start(&format!("{}DontCacheResolved: nocache_\n", remap(&origin)));
    let mut c = Conn::open(daemon.addr);
    let burst = format!(
        "{}{}",
        http::request("GET", URL, &[]),
        http::request("GET", "/m/pool/nocache_2_all.deb", &[])
    );
    c.send_raw(burst.as_bytes());
    assert_eq!(c.read(false).unwrap().body, b"first");
    assert_eq!(c.read(false).unwrap().body, b"second");
    assert!(!daemon.cache().join("m/pool/nocache_2_all.deb").exists());
    assert_eq!(origin.requests("/debian/pool/nocache_2_all.deb"), 1);
}

#[test]
fn a_pass_through_body_is_cut_when_the_mirror_stalls() {
    let origin = Origin::start();
    let path = "/debian/pool/nocache_3_all.deb";
    origin.put(path, vec![7u8; 2_000_000]);
    // Never released: the mirror stops after 500 kB and holds the socket.
    let _gate = origin.fault(path, Fault::PauseAt(500_000), 1).unwrap();
    let daemon = Daemon::start(&format!(
        "{}DontCacheRequested: nocache_\nNetworkTimeout: 2\n",
        remap(&origin)
    ));
    let mut c = Conn::open(daemon.addr);
    c.send("GET", "/m/pool/nocache_3_all.deb", &[]);
    let head = c.read_head().unwrap();
    assert_eq!(head.header("content-length"), Some("2000000"));
    // The daemon closes the connection instead of holding it as long as
    // the mirror does (the client's read timeout is 30 s).
    let body = c
        .read_body(2_000_000)
        .expect("the connection ends, not times out");
    assert_eq!(body.len(), 500_000, "what came before the stall, then the end");
}

#[test]
fn a_directory_url_is_relayed_uncached_in_both_styles() {
    let origin = Origin::start();
    let dir = "/debian/pool/main/h/hello/";
    let listing = b"<html><a href=\"hello_2.10-3_amd64.deb\">hello_2.10-3_amd64.deb</a></html>";
    origin.put_with(
        dir,
        listing.to_vec(),
        Meta {
            content_type: Some("text/html".into()),
            ..Meta::default()
        },
    );
    let daemon = Daemon::start(&format!("AllowUserPorts: {}\n", origin.addr().port()));
    let host = origin.addr().to_string();
    let mut c = Conn::open(daemon.addr);
    for url in [format!("http://{host}{dir}"), format!("/{host}{dir}")] {
        let r = c.get(&url, &[]);
        assert_eq!((r.status, r.body.as_slice()), (200, &listing[..]), "{url}");
        assert_eq!(
            r.header("content-type"),
            Some("text/html"),
            "{url}: the mirror's headers"
        );
    }
    assert_eq!(origin.requests(dir), 2, "each listing came from the mirror");
    assert!(
        !daemon.cache().join("127.0.0.1").exists(),
        "nothing was stored for the listing"
    );
}

#[test]
fn a_dot_segment_is_one_cache_entry_and_one_upstream_url() {
    let origin = Origin::start();
    origin.put(PATH, b"one file".to_vec());
    let daemon = Daemon::start(&remap(&origin));
    let mut c = Conn::open(daemon.addr);
    for url in [
        "/m/pool/./main/a/a/a_1.0_all.deb",
        "/m/pool/main/%2e/a/a/a_1.0_all.deb",
        URL,
        "http://m/./pool/main/a/a/./a_1.0_all.deb",
    ] {
        let r = c.get(url, &[]);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"one file"[..]), "{url}");
    }
    let paths: Vec<String> = origin.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, [PATH], "fetched once, under its normalised name");
    assert_eq!(
        std::fs::read(daemon.cache().join("m/pool/main/a/a/a_1.0_all.deb")).unwrap(),
        b"one file"
    );
}

#[test]
fn with_opt_proxy_timeout_a_dead_proxy_is_gone_around() {
    let origin = Origin::start();
    origin.put(PATH, b"direct".to_vec());
    origin.put("/debian/pool/main/b/b/b_1.0_all.deb", b"direct".to_vec());
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let conf = |extra: &str| format!("Proxy: http://{dead}\n{extra}{}", remap(&origin));
    let daemon = Daemon::start(&conf(""));
    let r = http::get(daemon.addr, URL);
    assert_eq!((r.status, r.reason.as_str()), (503, "Upstream proxy unreachable"));
    let daemon = Daemon::start(&conf("OptProxyTimeout: 2\n"));
    for file in ["a/a/a", "b/b/b"] {
        let url = format!("/m/pool/main/{file}_1.0_all.deb");
        assert_eq!(http::get(daemon.addr, &url).body, b"direct");
    }
    wait_for("the go-around logged", || {
        daemon.stderr().contains("going direct for 99s")
    });
    let log = daemon.stderr();
    assert_eq!(
        log.matches("going direct for 99s").count(),
        1,
        "marked once: {log}"
    );
}

#[test]
fn opt_proxy_check_command_decides_whether_the_proxy_is_used() {
    let origin = Origin::start();
    origin.put(PATH, b"direct".to_vec());
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let conf = |command: &str| {
        format!(
            "Proxy: http://{dead}\nOptProxyCheckCommand: {command}\n{}",
            remap(&origin)
        )
    };
    let daemon = Daemon::start(&conf("exit 3"));
    assert_eq!(
        http::get(daemon.addr, URL).body,
        b"direct",
        "the command said: go direct"
    );
    let daemon = Daemon::start(&conf("true"));
    let r = http::get(daemon.addr, URL);
    assert_eq!(
        (r.status, r.reason.as_str()),
        (503, "Upstream proxy unreachable"),
        "the command said: use it"
    );
}
