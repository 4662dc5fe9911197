//! No request, however encoded, reads anything outside the cache directory:
//! a secret is planted beside the cache and every trick is tried. Each one
//! is refused before anything is asked upstream.

use crate::support::http::Conn;
use crate::support::origin::Origin;
use crate::support::{acng_head, put, Daemon, Setup};

const SECRET: &str = "TOP-SECRET-CONTENT";

#[test]
fn nothing_outside_the_cache_is_ever_served() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    // Beside the cache, with a .head that would make it "complete".
    put(root.path(), "secret.deb", SECRET.as_bytes());
    put(root.path(), "secret.deb.head", acng_head(SECRET.len()).as_bytes());
    put(&cache, "h/ok.deb", b"fine");
    put(&cache, "h/ok.deb.head", acng_head(4).as_bytes());
    // Symlinks planted inside the cache pointing out of it.
    std::os::unix::fs::symlink(root.path().join("secret.deb"), cache.join("h/link.deb")).unwrap();
    std::os::unix::fs::symlink(root.path().join("secret.deb.head"), cache.join("h/link.deb.head")).unwrap();
    std::os::unix::fs::symlink(root.path(), cache.join("h/up")).unwrap();
    // Every file below /h has a mirror, which must never be asked.
    let origin = Origin::start();
    let daemon = Daemon::start_with(Setup {
        conf: &format!("Remap-h: /h ; {}\n", origin.url("/debian")),
        cache: Some(&cache),
        ..Setup::default()
    });
    let forbidden = [
        "/h/../secret.deb",
        "/h/%2e%2e/secret.deb",
        "/h/%2E%2E%2Fsecret.deb",
        "/h/..%2fsecret.deb",
        "/h/%252e%252e%252fsecret.deb",
        "/h/%252e%252e/secret.deb",
        "/h/.%2e/secret.deb",
        "/h/..%5csecret.deb",
        "/h/..\\secret.deb",
        "/h/%00/../secret.deb",
        "/h/ok.deb%00/../../secret.deb",
        "http://h/../secret.deb",
        "http://h/%2e%2e/secret.deb",
        "/../secret.deb",
        "/%2e%2e/secret.deb",
        "/h/./../secret.deb",
        "/..%2f..%2f..%2fetc/passwd.deb",
        // Planted symlinks: neither followed nor downloaded over.
        "/h/link.deb",
        "/h/up/secret.deb",
    ];
    let mut c = Conn::open(daemon.addr);
    for t in forbidden {
        let r = c.get(t, &[]);
        assert!(!r.text().contains(SECRET), "{t} leaked the secret");
        assert_eq!(
            (r.status, r.reason.as_str()),
            (403, "Forbidden file type or location"),
            "{t}"
        );
    }
    assert!(origin.seen().is_empty(), "asked upstream: {:?}", origin.seen());
    assert_eq!(
        Conn::open(daemon.addr).get("/h/ok.deb", &[]).body,
        b"fine",
        "the cache itself still serves"
    );
}
