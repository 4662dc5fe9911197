//! Scale-out (docs/scale-out.md): instances behind HAProxy or nginx with the
//! documented configuration, one file on one instance whatever style its
//! URL has, a stopped instance costing its own share and no request; and
//! the two-level hierarchy, edges asking a parent cache for https files
//! with `ProxyIsCache`.

use std::net::SocketAddr;

use crate::support::balancer::{Balancer, Kind};
use crate::support::http::Conn;
use crate::support::origin::{etag_of, Fault, Origin};
use crate::support::tls::{Leaf, TestCa};
use crate::support::{data, wait_for, Daemon};

/// The configurations the document shows, as files the tests run.
const HAPROXY_CFG: &str = include_str!("../../docs/scale-out/haproxy.cfg");
const NGINX_CONF: &str = include_str!("../../docs/scale-out/nginx.conf");
const DOC: &str = include_str!("../../docs/scale-out.md");

/// The ways a client can name one file of the repository `debrep`, whose
/// mirror is the origin at `o` (`/debian` there).
#[derive(Clone, Copy, Debug)]
enum Style {
    /// `GET http://o/debian/pool/…` (apt's `Acquire::http::Proxy`).
    Proxy,
    /// `GET /o/debian/pool/…`.
    Path,
    /// `GET /debian/pool/…`, the `Remap-` line's name for it.
    Alias,
    /// `GET /HTTPS///o/debian/pool/…`.
    HttpsPath,
    /// `GET http://HTTPS///o/debian/pool/…`.
    HttpsProxy,
}

const STYLES: [Style; 5] = [
    Style::Proxy,
    Style::Path,
    Style::Alias,
    Style::HttpsPath,
    Style::HttpsProxy,
];

/// The request head for `rel` (below the repository) in `style`, with the
/// `Host` apt would send: the absolute form's own authority.
fn head(style: Style, o: SocketAddr, rel: &str) -> String {
    let (target, host) = match style {
        Style::Proxy => (format!("http://{o}/debian/{rel}"), o.to_string()),
        Style::Path => (format!("/{o}/debian/{rel}"), "cache".into()),
        Style::Alias => (format!("/debian/{rel}"), "cache".into()),
        Style::HttpsPath => (format!("/HTTPS///{o}/debian/{rel}"), "cache".into()),
        Style::HttpsProxy => (format!("http://HTTPS///{o}/debian/{rel}"), "HTTPS".into()),
    };
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n")
}

/// Asks `at` for `rel` in `style` on a connection of its own and checks
/// the answer is the file.
fn fetch(at: SocketAddr, style: Style, o: SocketAddr, rel: &str, body: &[u8]) {
    let mut c = Conn::open(at);
    c.send_raw(head(style, o, rel).as_bytes());
    let r = c.read(false).unwrap_or_else(|e| panic!("{style:?} {rel}: {e}"));
    assert_eq!(r.status, 200, "{style:?} {rel}: {}", r.text());
    assert!(r.body == body, "{style:?} {rel}: not the file");
}

/// 300 files: package files, and by-hash objects below `dists/`.
fn files() -> Vec<(String, Vec<u8>)> {
    (0..300)
        .map(|i| {
            let rel = if i % 10 == 9 {
                format!("dists/stable/main/binary-amd64/by-hash/SHA256/{i:064x}")
            } else {
                format!("pool/main/p/pkg{i}/pkg{i}_1.0_all.deb")
            };
            let mut body = format!("{i}:").into_bytes();
            body.extend(data(200 + i));
            (rel, body)
        })
        .collect()
}

/// `text` with `from`, which it has once, replaced.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} in the configuration");
    text.replacen(from, to, 1)
}

/// `config` with the documented servers replaced by `caches`.
fn with_servers(config: &str, caches: &[SocketAddr]) -> String {
    let mut config = config.to_string();
    for (n, addr) in caches.iter().enumerate() {
        config = replace_once(&config, &format!("10.0.0.1{}:3142", n + 1), &addr.to_string());
    }
    config
}

/// The documented HAProxy configuration with the test's addresses: the
/// frontend on the socket [`Balancer`] hands over, the servers on the
/// instances.
fn haproxy_config(caches: &[SocketAddr]) -> String {
    with_servers(&replace_once(HAPROXY_CFG, "bind :3142", "bind fd@3"), caches)
}

/// The documented nginx lines in the `http` block of a configuration that
/// keeps nginx in the foreground, with one worker, and its files in `dir`.
fn nginx_config(caches: &[SocketAddr], listen: SocketAddr, dir: &std::path::Path) -> String {
    let http = with_servers(
        &replace_once(NGINX_CONF, "listen 3142;", &format!("listen {listen};")),
        caches,
    );
    let d = dir.display();
    format!(
        "daemon off;\nworker_processes 1;\nerror_log stderr notice;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 256; }}\n\
         http {{\naccess_log off;\nclient_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n{http}}}\n"
    )
}

/// Which instance's cache holds `rel`: exactly one does.
fn holder(caches: &[Daemon], rel: &str) -> usize {
    let holding: Vec<usize> = (0..caches.len())
        .filter(|&n| caches[n].cache().join("debrep").join(rel).exists())
        .collect();
    assert_eq!(holding.len(), 1, "{rel} is held by instances {holding:?}");
    holding[0]
}

/// Three instances behind the balancer `start` runs on their addresses:
/// each of 300 files asked for twice, in two styles, is fetched once; then
/// the second instance stops, every file is asked for twice again, and
/// only the files it held are fetched again. Returns the balancer.
fn scale_out(start: impl FnOnce(&[SocketAddr]) -> Balancer) -> Balancer {
    let origin = Origin::start();
    let o = origin.addr();
    let files = files();
    for (rel, body) in &files {
        origin.put(&format!("/debian/{rel}"), body.clone());
    }
    let conf = format!(
        "AllowUserPorts: 80 {}\nRemap-debrep: /debian {o}/debian ; http://{o}/debian/\n",
        o.port()
    );
    let mut caches: Vec<Daemon> = (0..3).map(|_| Daemon::start(&conf)).collect();
    let addrs: Vec<SocketAddr> = caches.iter().map(|d| d.addr).collect();
    let balancer = start(&addrs);

    // Each file twice, in two different styles: one instance fetches it.
    for (i, (rel, body)) in files.iter().enumerate() {
        for style in [STYLES[i % 5], STYLES[(i + 2) % 5]] {
            fetch(balancer.addr, style, o, rel, body);
        }
    }
    for (rel, _) in &files {
        assert_eq!(origin.requests(&format!("/debian/{rel}")), 1, "{rel}");
    }
    let first: Vec<usize> = files.iter().map(|(rel, _)| holder(&caches, rel)).collect();
    for n in 0..caches.len() {
        assert!(first.contains(&n), "instance {n} got none of the files");
    }

    // The second instance stops: the first request it refuses is sent to
    // another instance, and the instance is taken out, so every later
    // request for its files goes to that other instance too.
    let stopped = 1;
    assert!(caches[stopped].stop().is_some_and(|s| s.success()));
    for (i, (rel, body)) in files.iter().enumerate() {
        for style in [STYLES[(i + 1) % 5], STYLES[(i + 3) % 5]] {
            fetch(balancer.addr, style, o, rel, body);
        }
    }
    for (i, (rel, _)) in files.iter().enumerate() {
        let again = usize::from(first[i] == stopped);
        assert_eq!(
            origin.requests(&format!("/debian/{rel}")),
            1 + again,
            "{rel}, first held by instance {}",
            first[i]
        );
    }
    balancer
}

#[test]
fn behind_haproxy_each_file_is_fetched_once_and_a_stopped_instance_costs_only_its_share() {
    let Some(binary) = Kind::Haproxy.binary_or_skip("scale, haproxy") else {
        return;
    };
    let balancer = scale_out(|caches| Balancer::start(Kind::Haproxy, &binary, |_, _| haproxy_config(caches)));
    let said = balancer.stderr();
    assert!(said.contains("Server debcache/cache2 is DOWN"), "{said}");
}

#[test]
fn behind_nginx_each_file_is_fetched_once_and_a_stopped_instance_costs_only_its_share() {
    let Some(binary) = Kind::Nginx.binary_or_skip("scale, nginx") else {
        return;
    };
    scale_out(|caches| {
        Balancer::start(Kind::Nginx, &binary, |listen, dir| {
            nginx_config(caches, listen, dir)
        })
    });
}

/// The body of the document's first code block of `lang`.
fn block<'a>(doc: &'a str, lang: &str) -> &'a str {
    let start = doc
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no {lang} block"))
        + lang.len()
        + 4;
    let len = doc[start..].find("```\n").unwrap();
    &doc[start..start + len]
}

#[test]
fn the_document_shows_the_configurations_the_tests_run() {
    assert_eq!(block(DOC, "haproxy"), HAPROXY_CFG);
    assert_eq!(block(DOC, "nginx"), NGINX_CONF);
}

#[test]
fn edges_ask_a_parent_cache_for_https_files_and_the_parent_keeps_them() {
    let ca = TestCa::new("debcache test CA");
    let origin = Origin::start_tls(ca.server(Leaf::Good));
    let path = "/debian/pool/main/h/hello/hello_2.10_amd64.deb";
    let file = data(300_000);
    origin.put(path, file.clone());
    let port = origin.addr().port();
    let dir = tempfile::tempdir().unwrap();
    // Only the parent trusts the mirror's CA: an edge speaking TLS itself
    // would fail.
    let parent = Daemon::start(&format!(
        "CAfile: {}\nAllowUserPorts: 80 {port}\n",
        ca.write(dir.path(), "ca.pem").display()
    ));
    let edge_conf = format!(
        "Proxy: http://{}\nProxyIsCache: 1\nAllowUserPorts: 80 {port}\n\
         Remap-secure: /secure ; https://127.0.0.1:{port}/debian/\n",
        parent.addr
    );
    let edges = [Daemon::start(&edge_conf), Daemon::start(&edge_conf)];
    // One edge by the HTTPS/// form, the other by a remap's https backend.
    let r = Conn::open(edges[0].addr).get(&format!("/HTTPS///127.0.0.1:{port}{path}"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == file);
    let r = Conn::open(edges[1].addr).get("/secure/pool/main/h/hello/hello_2.10_amd64.deb", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == file);
    assert_eq!(
        origin.requests(path),
        1,
        "the second edge was served from the parent"
    );
    let kept = parent.cache().join(format!("127.0.0.1{path}"));
    assert_eq!(std::fs::read(kept).unwrap(), file);
    // The edges keep copies too.
    assert!(edges[0].cache().join(format!("127.0.0.1{path}")).exists());
    assert!(edges[1]
        .cache()
        .join("secure/pool/main/h/hello/hello_2.10_amd64.deb")
        .exists());
    // The parent downloaded once and served both edges.
    let mut parent = parent;
    parent.stop();
    let log = parent.transfer_log();
    let lines = |kind: &str| {
        log.iter()
            .filter(|l| l.starts_with(kind) && l.ends_with(path))
            .count()
    };
    assert_eq!((lines("I|"), lines("O|")), (1, 2), "{log:?}");
}

#[test]
fn without_proxy_is_cache_an_https_file_goes_through_a_connect_tunnel() {
    let ca = TestCa::new("debcache test CA");
    let origin = Origin::start_tls(ca.server(Leaf::Good));
    let path = "/debian/pool/main/h/hello/hello_2.10_amd64.deb";
    origin.put(path, b"hello".to_vec());
    let port = origin.addr().port();
    let parent = Daemon::start(&format!("AllowUserPorts: 80 {port}\n"));
    let edge = Daemon::start(&format!(
        "Proxy: http://{}\nAllowUserPorts: 80 {port}\n",
        parent.addr
    ));
    // The parent refuses the tunnel (PassThroughPattern), so the edge fails.
    let r = Conn::open(edge.addr).get(&format!("/HTTPS///127.0.0.1:{port}{path}"), &[]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(origin.requests(path), 0);
}

#[test]
fn a_parent_cache_gets_https_files_in_plain_http_with_ranges_validators_and_credentials() {
    // A mock in the parent's place, to see each request as it arrives.
    let parent = Origin::start();
    let deb = "/debian/pool/main/h/hello/hello_2.10_amd64.deb";
    let release = "/debian/dists/stable/InRelease";
    let file = data(4 << 20);
    parent.put(&format!("///mirror.invalid{deb}"), file.clone());
    parent.put(&format!("///mirror.invalid{release}"), b"release v1".to_vec());
    parent.fault(&format!("///mirror.invalid{deb}"), Fault::CutAt(1 << 20), 1);
    let proxy = parent.url("").replacen("http://", "http://apt:s%40cret@", 1);
    let edge = Daemon::start(&format!(
        "Proxy: {proxy}\nProxyIsCache: 1\nFreshIndexMaxAge: 0\n\
         Remap-s: /s ; https://mirror.invalid/debian/\n"
    ));
    let r = Conn::open(edge.addr).get("/s/pool/main/h/hello/hello_2.10_amd64.deb", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == file, "resumed after the cut");
    let mut c = Conn::open(edge.addr);
    assert_eq!(c.get("/s/dists/stable/InRelease", &[]).body, b"release v1");
    let head = edge.cache().join("s/dists/stable/InRelease.head");
    wait_for("InRelease to be committed", || {
        std::fs::read_to_string(&head).is_ok_and(|h| h.contains("Content-Length: 10\r\n"))
    });
    assert_eq!(c.get("/s/dists/stable/InRelease", &[]).body, b"release v1");

    let seen = parent.seen();
    let targets: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    let absolute = |path: &str| format!("http://HTTPS///mirror.invalid{path}");
    assert_eq!(
        targets,
        [absolute(deb), absolute(deb), absolute(release), absolute(release)],
        "no CONNECT: plain requests in the proxy-style HTTPS/// form"
    );
    assert_eq!(
        seen[1].header("range"),
        Some(format!("bytes={}-", 1 << 20).as_str())
    );
    assert_eq!(seen[1].header("if-range"), Some(etag_of(&file).as_str()));
    assert_eq!(
        seen[3].header("if-none-match"),
        Some(etag_of(b"release v1").as_str())
    );
    for s in &seen {
        assert_eq!(s.header("host"), Some("HTTPS"), "the target's own authority");
        assert_eq!(s.header("proxy-authorization"), Some("Basic YXB0OnNAY3JldA=="));
    }
}
