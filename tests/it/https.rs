//! HTTPS mirrors: the HTTPS/// forms and `https://` proxy requests fetched
//! over TLS and cached like plain ones, https backends in remaps with
//! failover, certificate verification and `NoSSLchecks`, `CAfile` adding to
//! the system's trust.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::support::http::{sha256_hex, Conn};
use crate::support::origin::{Fault, Origin};
use crate::support::proxy::TunnelProxy;
use crate::support::tls::{Leaf, TestCa};
use crate::support::{wait_for, Daemon, Setup};

const DEB: &str = "/debian/pool/main/a/a/a_1.0_all.deb";
const INRELEASE: &str = "/debian/dists/stable/InRelease";

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// A TLS origin whose certificate the test CA signed, and the CA.
struct Mirror {
    ca: TestCa,
    origin: Origin,
    /// Holds the CA file.
    dir: tempfile::TempDir,
}

impl Mirror {
    fn start(leaf: Leaf) -> Mirror {
        let ca = TestCa::new("debcache test CA");
        let origin = Origin::start_tls(ca.server(leaf));
        Mirror {
            ca,
            origin,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `CAfile` for this mirror's CA, and its port allowed.
    fn conf(&self) -> String {
        format!(
            "CAfile: {}\nAllowUserPorts: 80 {}\n",
            self.ca.write(self.dir.path(), "ca.pem").display(),
            self.origin.addr().port()
        )
    }

    /// `127.0.0.1:PORT` followed by `path`.
    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.origin.addr())
    }
}

#[test]
fn https_path_style_is_fetched_over_tls_and_then_served_from_the_cache() {
    let m = Mirror::start(Leaf::Good);
    let file = data(300_000);
    m.origin.put(DEB, file.clone());
    let daemon = Daemon::start(&m.conf());
    let target = format!("/HTTPS///{}", m.at(DEB));
    for _ in 0..2 {
        let r = Conn::open(daemon.addr).get(&target, &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(sha256_hex(&r.body), sha256_hex(&file));
    }
    assert_eq!(m.origin.requests(DEB), 1, "the second answer came from the cache");
    // The scheme and port are not part of the cache path (spec §6.1).
    let stored = daemon
        .cache()
        .join("127.0.0.1/debian/pool/main/a/a/a_1.0_all.deb");
    assert_eq!(std::fs::read(&stored).unwrap(), file);
    let head = std::fs::read_to_string(stored.with_file_name("a_1.0_all.deb.head")).unwrap();
    assert!(
        head.contains(&format!("X-Original-Source: https://{}", m.at(DEB))),
        "{head}"
    );
}

#[test]
fn https_proxy_style_both_forms_share_one_cached_copy() {
    let m = Mirror::start(Leaf::Good);
    let file = data(5000);
    m.origin.put(DEB, file.clone());
    let daemon = Daemon::start(&m.conf());
    let mut c = Conn::open(daemon.addr);
    let r = c.get(&format!("http://HTTPS///{}", m.at(DEB)), &[]);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, file.as_slice()),
        "{}",
        r.text()
    );
    let r = c.get(&format!("https://{}", m.at(DEB)), &[]);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, file.as_slice()),
        "{}",
        r.text()
    );
    assert_eq!(m.origin.requests(DEB), 1);
}

#[test]
fn sixteen_clients_of_an_https_file_cause_one_tls_transfer() {
    let m = Mirror::start(Leaf::Good);
    let file = data(4 << 20);
    m.origin.put(DEB, file.clone());
    let gate = m.origin.fault(DEB, Fault::PauseAt(1 << 20), 1).unwrap();
    let daemon = Daemon::start(&m.conf());
    let target = format!("/HTTPS///{}", m.at(DEB));
    let (tx, rx) = mpsc::channel();
    let addr = daemon.addr;
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (tx, target) = (tx.clone(), target.clone());
            thread::spawn(move || {
                let mut c = Conn::open(addr);
                c.send("GET", &target, &[]);
                let head = c.read_head().unwrap();
                tx.send(()).unwrap();
                let len: usize = head.header("content-length").unwrap().parse().unwrap();
                (head.status, c.read_body(len).unwrap())
            })
        })
        .collect();
    for _ in 0..16 {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("every client gets headers");
    }
    gate.release();
    for c in clients {
        let (status, body) = c.join().unwrap();
        assert_eq!(status, 200);
        assert_eq!(sha256_hex(&body), sha256_hex(&file));
    }
    assert_eq!(m.origin.requests(DEB), 1, "one TLS transfer");
}

#[test]
fn a_cut_tls_transfer_is_resumed_with_range() {
    let m = Mirror::start(Leaf::Good);
    let file = data(3 << 20);
    m.origin.put(DEB, file.clone());
    m.origin.fault(DEB, Fault::CutAt(1 << 20), 1);
    let daemon = Daemon::start(&m.conf());
    let r = Conn::open(daemon.addr).get(&format!("/HTTPS///{}", m.at(DEB)), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(sha256_hex(&r.body), sha256_hex(&file));
    let seen = m.origin.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let range = seen[1].header("range").unwrap_or_default().to_string();
    assert!(
        range.starts_with("bytes=") && range != "bytes=0-",
        "resumed: {range}"
    );
}

#[test]
fn a_remap_with_an_https_backend_serves_plain_http_clients() {
    let m = Mirror::start(Leaf::Good);
    m.origin.put(DEB, b"over tls".to_vec());
    let daemon = Daemon::start(&format!(
        "{}Remap-sec: /sec ; {}\n",
        m.conf(),
        m.origin.url("/debian")
    ));
    let r = Conn::open(daemon.addr).get("/sec/pool/main/a/a/a_1.0_all.deb", &[]);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"over tls"[..]),
        "{}",
        r.text()
    );
    assert!(daemon.cache().join("sec/pool/main/a/a/a_1.0_all.deb").exists());
}

#[test]
fn a_backend_with_a_bad_certificate_fails_over_to_the_next() {
    let bad = Mirror::start(Leaf::OtherName);
    let good = Mirror::start(Leaf::Good);
    good.origin.put(DEB, b"from the good one".to_vec());
    // Both CAs trusted: the first backend's certificate fails on its name.
    let cas = good.dir.path().join("both.pem");
    std::fs::write(&cas, format!("{}{}", bad.ca.pem(), good.ca.pem())).unwrap();
    let daemon = Daemon::start(&format!(
        "CAfile: {}\nRemap-sec: /sec ; {} {}\n",
        cas.display(),
        bad.origin.url("/debian"),
        good.origin.url("/debian")
    ));
    let r = Conn::open(daemon.addr).get("/sec/pool/main/a/a/a_1.0_all.deb", &[]);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"from the good one"[..]),
        "{}",
        r.text()
    );
    assert_eq!(bad.origin.seen().len(), 0, "no request reached the impostor");
    wait_for("the failover logged", || {
        daemon.stderr().contains("for another host name")
    });
}

/// What a client gets for an https file whose mirror presents `leaf`
/// signed by `ca`, with `extra` configuration.
fn fetch_from(leaf: Leaf, trusted: bool, extra: &str) -> (crate::support::http::Response, Daemon, Origin) {
    let served_by = TestCa::new("the mirror's CA");
    let other = TestCa::new("another CA");
    let origin = Origin::start_tls(served_by.server(leaf));
    origin.put(DEB, b"payload".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let ca = if trusted { &served_by } else { &other };
    let conf = format!(
        "CAfile: {}\nAllowUserPorts: {}\n{extra}",
        ca.write(dir.path(), "ca.pem").display(),
        origin.addr().port()
    );
    let daemon = Daemon::start(&conf);
    let r = Conn::open(daemon.addr).get(&format!("/HTTPS///{}{DEB}", origin.addr()), &[]);
    (r, daemon, origin)
}

#[test]
fn certificates_that_fail_verification_give_a_503_with_the_reason() {
    for (leaf, trusted, reason) in [
        (
            Leaf::OtherName,
            true,
            "TLS certificate of the mirror is for another host name",
        ),
        (Leaf::Expired, true, "TLS certificate of the mirror has expired"),
        (
            Leaf::Good,
            false,
            "TLS certificate of the mirror has an unknown issuer",
        ),
    ] {
        let (r, daemon, origin) = fetch_from(leaf, trusted, "");
        assert_eq!((r.status, r.reason.as_str()), (503, reason), "{leaf:?}");
        assert!(
            r.text().contains(reason),
            "{leaf:?}: the body says why: {}",
            r.text()
        );
        assert!(
            origin.seen().is_empty(),
            "{leaf:?}: nothing was asked over a bad TLS session"
        );
        wait_for("the reason logged", || daemon.stderr().contains(reason));
    }
}

#[test]
fn no_ssl_checks_accepts_any_certificate_and_warns() {
    for leaf in [Leaf::OtherName, Leaf::Expired] {
        let (r, daemon, _origin) = fetch_from(leaf, false, "NoSSLchecks: 1\n");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"payload"[..]),
            "{leaf:?}: {}",
            r.text()
        );
        assert!(
            daemon.stderr().contains("NoSSLchecks is set"),
            "{}",
            daemon.stderr()
        );
    }
}

#[test]
fn ca_file_adds_to_the_system_store_and_a_bad_one_stops_the_start() {
    let m = Mirror::start(Leaf::Good);
    let daemon = Daemon::start(&m.conf());
    let log = daemon.stderr();
    assert!(log.contains("1 from CAfile"), "{log}");
    drop(daemon);
    let bad = m.dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let (status, stderr) = Daemon::try_start(Setup {
        conf: &format!("CAfile: {}\n", bad.display()),
        ..Setup::default()
    })
    .err()
    .expect("refused");
    assert_eq!(status.and_then(|s| s.code()), Some(78), "{stderr}");
    assert!(stderr.contains("bad.pem"), "{stderr}");
}

#[test]
fn an_index_cached_over_plain_http_is_fetched_again_over_tls_in_full() {
    // One host, two ports: the plain and the TLS mirror share cache paths.
    let plain = Origin::start();
    let m = Mirror::start(Leaf::Good);
    for o in [&plain, &m.origin] {
        o.put(INRELEASE, b"signed index".to_vec());
        o.put(DEB, b"package".to_vec());
    }
    let daemon = Daemon::start(&format!(
        "{}AllowUserPorts: 80 {} {}\n",
        m.conf(),
        plain.addr().port(),
        m.origin.addr().port()
    ));
    let mut c = Conn::open(daemon.addr);
    for path in [INRELEASE, DEB] {
        assert_eq!(c.get(&format!("/{}{path}", plain.addr()), &[]).status, 200);
    }
    let https = |path: &str| format!("/HTTPS///{}", m.at(path));
    let r = c.get(&https(INRELEASE), &[]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"signed index"[..]));
    let seen = m.origin.seen();
    assert_eq!(seen.len(), 1, "the index came again, over TLS");
    assert_eq!(
        seen[0].header("if-modified-since"),
        None,
        "a whole GET, not a revalidation"
    );
    assert_eq!(seen[0].header("if-none-match"), None);
    // The package is authenticated by the index: the cached copy serves.
    assert_eq!(c.get(&https(DEB), &[]).body, b"package");
    assert_eq!(m.origin.requests(DEB), 0);
}

#[test]
fn through_an_upstream_proxy_https_goes_in_a_connect_tunnel() {
    let m = Mirror::start(Leaf::Good);
    m.origin.put(DEB, b"tunnelled".to_vec());
    let proxy = TunnelProxy::start();
    let daemon = Daemon::start(&format!(
        "{}Proxy: http://apt:s%40cret@{}\n",
        m.conf(),
        proxy.addr
    ));
    let r = Conn::open(daemon.addr).get(&format!("/HTTPS///{}", m.at(DEB)), &[]);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"tunnelled"[..]),
        "{}",
        r.text()
    );
    let asked = proxy.asked();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].line, format!("CONNECT {} HTTP/1.1", m.origin.addr()));
    // base64("apt:s@cret")
    assert_eq!(
        asked[0].proxy_authorization.as_deref(),
        Some("Basic YXB0OnNAY3JldA==")
    );
    let seen = &m.origin.seen()[0];
    assert_eq!(seen.path, DEB, "origin form inside the tunnel");
    assert_eq!(
        seen.header("proxy-authorization"),
        None,
        "the mirror never sees the proxy's credentials"
    );
}
