//! The edges of apt-cacher-ng's cache layout, kept on purpose: one host's
//! ports share a directory, repository directories may be symlinks to
//! another disk, and a name the layout cannot hold is refused cleanly.

use crate::support::http::Conn;
use crate::support::origin::Origin;
use crate::support::Daemon;

const PATH: &str = "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb";

/// Two mirrors on one host, the same path, different bytes.
fn two_ports() -> (Origin, Origin, String) {
    let (a, b) = (Origin::start(), Origin::start());
    a.put(PATH, b"from port a".to_vec());
    b.put(PATH, b"from port b".to_vec());
    let ports = format!("AllowUserPorts: {} {}\n", a.addr().port(), b.addr().port());
    (a, b, ports)
}

#[test]
fn ports_of_one_host_share_cache_entries_as_in_apt_cacher_ng() {
    let (a, b, ports) = two_ports();
    let daemon = Daemon::start(&ports);
    let mut c = Conn::open(daemon.addr);
    assert_eq!(c.get(&a.url(PATH), &[]).body, b"from port a");
    let r = c.get(&b.url(PATH), &[]);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"from port a"[..]),
        "the port is not part of the cache path (spec §6.1)"
    );
    assert_eq!((a.requests(PATH), b.requests(PATH)), (1, 0));
    assert_eq!(
        std::fs::read(daemon.cache().join(format!("127.0.0.1{PATH}"))).unwrap(),
        b"from port a"
    );
}

#[test]
fn a_remap_per_port_keeps_two_repositories_of_one_host_apart() {
    let (a, b, ports) = two_ports();
    // The README's remedy: the second port gets a repository of its own.
    let daemon = Daemon::start(&format!("{ports}Remap-portb: {}\n", b.url("/debian")));
    let mut c = Conn::open(daemon.addr);
    for _ in 0..2 {
        assert_eq!(c.get(&a.url(PATH), &[]).body, b"from port a");
        assert_eq!(c.get(&b.url(PATH), &[]).body, b"from port b");
    }
    assert_eq!((a.requests(PATH), b.requests(PATH)), (1, 1), "both cached");
    let rel = PATH.trim_start_matches("/debian/");
    assert_eq!(
        std::fs::read(daemon.cache().join("portb").join(rel)).unwrap(),
        b"from port b"
    );
    assert_eq!(
        std::fs::read(daemon.cache().join(format!("127.0.0.1{PATH}"))).unwrap(),
        b"from port a"
    );
}
