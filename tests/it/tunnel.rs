//! CONNECT: refused unless `PassThroughPattern` allows the target; allowed,
//! a TLS session runs end to end through the tunnel (directly, or through
//! an upstream proxy's tunnel), and the transfer log records it. Clients
//! outside `AllowedClients` get nothing at all.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::http::Conn;
use crate::support::origin::Origin;
use crate::support::proxy::TunnelProxy;
use crate::support::tls::{Leaf, TestCa};
use crate::support::{wait_for, Daemon};

const DEB: &str = "/debian/pool/main/a/a/a_1.0_all.deb";

/// Opens a tunnel to `target` through the daemon; returns the stream after
/// the daemon's answer head, and that head.
fn connect(daemon: &Daemon, target: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(daemon.addr).unwrap();
    write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "answer head: {head:?}");
        head.push(byte[0]);
    }
    (s, String::from_utf8(head).unwrap())
}

/// A GET over TLS inside the tunnel, verified against `ca`.
fn get_over_tls(stream: TcpStream, ca: &TestCa, path: &str) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(ca.client(), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, stream);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    answer
}

fn tls_origin(ca: &TestCa) -> Origin {
    let origin = Origin::start_tls(ca.server(Leaf::Good));
    origin.put(DEB, b"through the tunnel".to_vec());
    origin
}

#[test]
fn connect_is_refused_unless_pass_through_pattern_allows_it() {
    let ca = TestCa::new("tunnel CA");
    let origin = tls_origin(&ca);
    let daemon = Daemon::start("");
    let (_, head) = connect(&daemon, &origin.addr().to_string());
    assert!(
        head.starts_with("HTTP/1.1 403 CONNECT denied (ask the admin to allow HTTPS tunnels)\r\n"),
        "{head}"
    );
    assert!(origin.seen().is_empty());
}

#[test]
fn an_allowed_tunnel_carries_tls_end_to_end_and_is_logged() {
    let ca = TestCa::new("tunnel CA");
    let origin = tls_origin(&ca);
    let target = origin.addr().to_string();
    let daemon = Daemon::start(&format!(
        "PassThroughPattern: ^127\\.0\\.0\\.1:{}$\n",
        origin.addr().port()
    ));
    let (stream, head) = connect(&daemon, &target);
    assert!(
        head.starts_with("HTTP/1.1 200 Connection established\r\n"),
        "{head}"
    );
    let answer = get_over_tls(stream, &ca, DEB);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("through the tunnel"), "{text}");
    assert_eq!(origin.requests(DEB), 1);
    // Nothing is cached; one record each way, under the target's name.
    assert!(!daemon.cache().join("127.0.0.1").exists());
    wait_for("the tunnel's records", || {
        let log = daemon.transfer_log();
        log.iter()
            .any(|l| l.starts_with("O|") && l.ends_with(&format!("|{target}")))
            && log
                .iter()
                .any(|l| l.starts_with("I|") && l.ends_with(&format!("|{target}")))
    });
}

#[test]
fn a_tunnel_through_an_upstream_proxy_is_opened_with_connect_there() {
    let ca = TestCa::new("tunnel CA");
    let origin = tls_origin(&ca);
    let proxy = TunnelProxy::start();
    let daemon = Daemon::start(&format!(
        "Proxy: http://{}\nPassThroughPattern: ^127\\.0\\.0\\.1:{}$\n",
        proxy.addr,
        origin.addr().port()
    ));
    let (stream, head) = connect(&daemon, &origin.addr().to_string());
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(String::from_utf8_lossy(&get_over_tls(stream, &ca, DEB)).ends_with("through the tunnel"));
    assert_eq!(
        proxy.asked()[0].line,
        format!("CONNECT {} HTTP/1.1", origin.addr())
    );
}

#[test]
fn a_tunnel_to_a_closed_port_answers_503() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let daemon = Daemon::start(&format!(
        "PassThroughPattern: ^127\\.0\\.0\\.1:{}$\n",
        dead.port()
    ));
    let (_, head) = connect(&daemon, &dead.to_string());
    assert!(head.starts_with("HTTP/1.1 503 Connection refused\r\n"), "{head}");
}

#[test]
fn clients_outside_allowed_clients_get_403_for_everything() {
    let origin = Origin::start();
    origin.put(DEB, b"x".to_vec());
    let daemon = Daemon::start(&format!(
        "AllowedClients: 10.0.0.0/8\nPassThroughPattern: .*\nRemap-m: /m ; {}\n",
        origin.url("/debian")
    ));
    let reason = "Client not allowed to use this cache (see AllowedClients)";
    let mut c = Conn::open(daemon.addr);
    for target in ["/m/pool/main/a/a/a_1.0_all.deb", "/", "/acng-report.html"] {
        let r = c.get(target, &[]);
        assert_eq!((r.status, r.reason.as_str()), (403, reason), "{target}");
    }
    let (_, head) = connect(&daemon, &origin.addr().to_string());
    assert!(head.starts_with(&format!("HTTP/1.1 403 {reason}\r\n")), "{head}");
    assert!(origin.seen().is_empty());
    wait_for("the refusal logged", || {
        daemon.stderr().contains("refused: not in AllowedClients")
    });
}

#[test]
fn an_open_tunnel_is_cut_when_the_drain_deadline_passes() {
    let ca = TestCa::new("tunnel CA");
    let origin = tls_origin(&ca);
    let mut daemon = Daemon::start(&format!(
        "DrainTimeout: 1\nPassThroughPattern: ^127\\.0\\.0\\.1:{}$\n",
        origin.addr().port()
    ));
    let (mut stream, head) = connect(&daemon, &origin.addr().to_string());
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait(std::time::Duration::from_secs(20)).expect("stopped");
    assert_eq!(status.code(), Some(0));
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(
        daemon.stderr().contains("drain deadline reached"),
        "{}",
        daemon.stderr()
    );
}

/// A GET inside TLS verified against a CA given as PEM.
fn get_trusting(stream: TcpStream, ca_pem: &[u8], path: &str) -> std::io::Result<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, stream);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    match tls.read_to_end(&mut answer) {
        Ok(_) => Ok(answer),
        // A peer closing without close_notify, after its answer.
        Err(_) if !answer.is_empty() => Ok(answer),
        Err(e) => Err(e),
    }
}

#[test]
fn an_intercepted_host_is_answered_by_debcaches_ca_and_never_with_a_local_page() {
    let ca = TestCa::new("tunnel CA");
    let origin = tls_origin(&ca);
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&format!(
        "CAfile: {}\nAllowUserPorts: 80 {}\nTlsInterceptDomains: 127.0.0.1\n",
        ca.write(dir.path(), "ca.pem").display(),
        origin.addr().port()
    ));
    let ours = crate::support::http::get(daemon.addr, "/debcache-ca.crt").body;
    for _ in 0..2 {
        let (stream, head) = connect(&daemon, &origin.addr().to_string());
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let answer = get_trusting(stream, &ours, DEB).unwrap();
        assert!(String::from_utf8_lossy(&answer).ends_with("through the tunnel"));
    }
    assert_eq!(origin.requests(DEB), 1, "the second came from the cache");
    // The mirror's own CA does not verify what answered: debcache did.
    let (stream, _) = connect(&daemon, &origin.addr().to_string());
    assert!(get_trusting(stream, ca.pem().as_bytes(), DEB).is_err());
    // Inside, every request is for the mirror: no page of the daemon's.
    let (stream, _) = connect(&daemon, &origin.addr().to_string());
    let page =
        String::from_utf8_lossy(&get_trusting(stream, &ours, "/acng-report.html").unwrap()).to_string();
    // Judged as a file of the mirror (not one apt fetches: refused), not
    // answered with the report page.
    assert!(page.starts_with("HTTP/1.1 403 Forbidden file type"), "{page}");
    assert!(!page.contains("debcache at"), "{page}");
}

#[test]
fn a_host_outside_the_interception_list_is_tunnelled_or_refused_never_intercepted() {
    let ca = TestCa::new("tunnel CA");
    let origin = tls_origin(&ca);
    let target = origin.addr().to_string();
    let refused = Daemon::start("TlsInterceptDomains: mirror.example.org\n");
    let (_, head) = connect(&refused, &target);
    assert!(head.starts_with("HTTP/1.1 403 CONNECT denied"), "{head}");
    let tunnelled = Daemon::start(&format!(
        "TlsInterceptDomains: mirror.example.org\nPassThroughPattern: ^127\\.0\\.0\\.1:{}$\n",
        origin.addr().port()
    ));
    let (stream, head) = connect(&tunnelled, &target);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The mirror's own certificate came through: a tunnel.
    assert!(String::from_utf8_lossy(&get_over_tls(stream, &ca, DEB)).ends_with("through the tunnel"));
}

#[test]
fn instances_behind_one_balancer_share_one_interception_ca() {
    let ca = TestCa::new("tunnel CA");
    let origin = tls_origin(&ca);
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared-ca");
    let conf = format!(
        "CAfile: {}\nAllowUserPorts: 80 {}\nTlsInterceptDomains: 127.0.0.1\nTlsInterceptCaDir: {}\n",
        ca.write(dir.path(), "ca.pem").display(),
        origin.addr().port(),
        shared.display()
    );
    let (one, two) = (Daemon::start(&conf), Daemon::start(&conf));
    let ours = crate::support::http::get(one.addr, "/debcache-ca.crt").body;
    assert_eq!(crate::support::http::get(two.addr, "/debcache-ca.crt").body, ours);
    // A client trusting that one certificate is answered by either.
    for daemon in [&one, &two] {
        let (stream, head) = connect(daemon, &origin.addr().to_string());
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            String::from_utf8_lossy(&get_trusting(stream, &ours, DEB).unwrap())
                .ends_with("through the tunnel")
        );
    }
    assert!(shared.join("ca.key").exists() && !one.cache().join("_debcache/ca").exists());
}
