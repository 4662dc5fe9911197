//! HTTP/1.1 framing and limits as a client meets them on the wire: bad
//! heads refused and the connection closed, the size limits, the deadline
//! for a head, `Expect`, persistence in 1.1 and 1.0, request bodies skipped
//! and never taken for requests, pipelining, and responses of unknown
//! length. The contract for debcache's own server (issue 11), checked
//! against raw bytes only: statuses, headers, bodies and when the
//! connection ends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::http::{self, sha256_hex, Conn, Response};
use crate::support::origin::{Fault, Origin};
use crate::support::{acng_head, data, put, wait_for, Daemon};

/// The smallest `NetworkTimeout` debcache takes (it raises 2 to 5).
const TIMEOUT: &str = "NetworkTimeout: 5\n";

/// Longer than [`Conn::is_closed`] waits, so that a connection closed is
/// one closed for its request, never one idle for too long.
const PATIENT: &str = "NetworkTimeout: 600\n";

/// The POST debcache answers itself (302 to https), without the network.
const SOAP: &str = "http://bugs.debian.org:80/cgi-bin/soap.cgi";

const CACHED: &str = "/h.example/p/a.deb";
const CACHED_BODY: &[u8] = b"0123456789abcdef";

const MB: usize = 1 << 20;

/// A daemon with [`CACHED`] in its cache.
fn daemon_with_a_file() -> Daemon {
    let daemon = Daemon::start(PATIENT);
    put(&daemon.cache(), "h.example/p/a.deb", CACHED_BODY);
    put(
        &daemon.cache(),
        "h.example/p/a.deb.head",
        acng_head(CACHED_BODY.len()).as_bytes(),
    );
    daemon
}

/// Sends `bytes` on a new connection and reads one response.
fn answer_to(daemon: &Daemon, bytes: &[u8]) -> (Conn, Response) {
    let mut c = Conn::open(daemon.addr);
    // The daemon may answer and close before it has read everything.
    let _ = c.stream().write_all(bytes);
    let r = c
        .read(false)
        .unwrap_or_else(|e| panic!("no answer to {:?}: {e}", String::from_utf8_lossy(bytes)));
    (c, r)
}

/// `bytes` get `status`, the connection ends after it, and the daemon
/// goes on serving new connections.
fn refused(daemon: &Daemon, bytes: &[u8], status: u16) {
    let what = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]).into_owned();
    let (mut c, r) = answer_to(daemon, bytes);
    assert_eq!(r.status, status, "{what:?}: {} {}", r.status, r.reason);
    assert!(c.is_closed(), "{what:?}: the connection is closed");
    assert_eq!(http::get(daemon.addr, "/").status, 200, "after {what:?}");
}

/// A request as an HTTP/1.0 client writes it.
fn request_10(target: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!("GET {target} HTTP/1.0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req + "\r\n"
}

/// A POST of [`SOAP`] with these header lines, ready for its body.
fn soap_post(headers: &str) -> String {
    format!("POST {SOAP} HTTP/1.1\r\nHost: bugs.debian.org\r\n{headers}\r\n")
}

fn is_soap_redirect(r: &Response) -> bool {
    r.status == 302 && r.header("location") == Some("https://bugs.debian.org:443/cgi-bin/soap.cgi")
}

/// A request head with `n` header fields, `Host` among them, each value
/// `len` bytes.
fn head_with_fields(n: usize, len: usize) -> String {
    let mut head = "GET / HTTP/1.1\r\nHost: test\r\n".to_string();
    for i in 1..n {
        head.push_str(&format!("X-Field-{i}: {}\r\n", "v".repeat(len)));
    }
    head + "\r\n"
}

#[test]
fn malformed_request_heads_get_400_and_a_closed_connection() {
    let daemon = Daemon::start(PATIENT);
    // RFC 9112 §2.2: a request that does not match the grammar gets 400 and
    // the connection closed; §5.1: whitespace before the colon MUST be 400.
    // A bare LF as line end is one a server MAY accept, so it is not here.
    for bad in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"GET /\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nNoColonHere\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nX-Ctl: a\x01b\r\n\r\n",
    ] {
        refused(&daemon, bad, 400);
    }
}

#[test]
fn a_request_head_over_64_kib_is_431_and_closed() {
    let daemon = Daemon::start(PATIENT);
    let (_, r) = answer_to(&daemon, head_with_fields(24, 2000).as_bytes());
    assert_eq!(r.status, 200, "48 KiB of head is served");
    refused(&daemon, head_with_fields(40, 2000).as_bytes(), 431);
}

#[test]
fn a_request_line_over_16_kib_is_414_and_closed() {
    let daemon = Daemon::start(PATIENT);
    // A server that stops reading a line at 16 KiB cannot find the next
    // request. (A path merely too long to cache gets debcache's own 414 and
    // keeps the connection: serving.rs.)
    let target = format!("/h.example/{}a.deb", "d/".repeat(9000));
    refused(&daemon, http::request("GET", &target, &[]).as_bytes(), 414);
}

#[test]
fn more_than_100_header_fields_is_431_and_closed() {
    let daemon = Daemon::start(PATIENT);
    let (_, r) = answer_to(&daemon, head_with_fields(100, 1).as_bytes());
    assert_eq!(r.status, 200, "100 fields are served");
    refused(&daemon, head_with_fields(101, 1).as_bytes(), 431);
}

#[test]
fn a_head_sent_a_byte_at_a_time_is_cut_at_a_deadline_for_the_whole_head() {
    let daemon = Daemon::start(TIMEOUT);
    let mut s = TcpStream::connect(daemon.addr).unwrap();
    // Reading for 300 ms between bytes paces them: far more often than any
    // idle timeout, so only a deadline for the whole head ends this.
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let head = b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ";
    let (start, mut answer, mut buf) = (Instant::now(), Vec::new(), [0u8; 1024]);
    let ended = (0..).any(|i: usize| {
        // Past the bound anyway: stop sending, the assertion says why.
        if start.elapsed() > Duration::from_secs(60) {
            return true;
        }
        if s.write_all(&[head.get(i).copied().unwrap_or(b'a')]).is_err() {
            return true;
        }
        match s.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                false
            }
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    });
    let took = start.elapsed();
    assert!(
        ended && took < Duration::from_secs(20),
        "still open after {took:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 408 "),
        "nothing, or a 408: {}",
        String::from_utf8_lossy(&answer)
    );
}

#[test]
fn a_get_expecting_100_continue_is_answered_and_the_connection_goes_on() {
    let daemon = daemon_with_a_file();
    let mut c = Conn::open(daemon.addr);
    c.send("GET", CACHED, &[("Expect", "100-continue")]);
    assert_eq!(c.read_final(false).unwrap().body, CACHED_BODY);
    assert_eq!(c.get(CACHED, &[]).body, CACHED_BODY);
}

#[test]
fn a_request_expecting_100_continue_is_answered_without_its_body() {
    let daemon = Daemon::start(PATIENT);
    let mut c = Conn::open(daemon.addr);
    c.send_raw(soap_post("Content-Length: 5\r\nExpect: 100-continue\r\n").as_bytes());
    // The redirect needs no body: it comes without one ever being sent.
    let r = c.read_final(false).expect("the final response, body or not");
    assert!(is_soap_redirect(&r), "{r:?}");
}

#[test]
fn a_request_body_is_skipped_and_the_next_pipelined_request_answered() {
    let daemon = daemon_with_a_file();
    let mut c = Conn::open(daemon.addr);
    // The body is a request itself: answering it would be a smuggling hole.
    let body = http::request("GET", "/h.example/p/smuggled.deb", &[]);
    let post = soap_post(&format!(
        "Content-Length: {}\r\nExpect: 100-continue\r\n",
        body.len()
    ));
    c.send_raw(format!("{post}{body}{}", http::request("GET", CACHED, &[])).as_bytes());
    assert!(is_soap_redirect(&c.read_final(false).unwrap()));
    let r = c.read(false).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, CACHED_BODY));
}

#[test]
fn connection_close_is_honoured_and_said() {
    let daemon = daemon_with_a_file();
    let mut c = Conn::open(daemon.addr);
    let r = c.get(CACHED, &[("Connection", "close")]);
    assert_eq!(r.body, CACHED_BODY);
    assert_eq!(
        r.header("connection").map(str::to_ascii_lowercase).as_deref(),
        Some("close")
    );
    assert!(c.is_closed());
}

#[test]
fn an_http_1_0_connection_ends_after_its_response_unless_kept_alive() {
    let daemon = daemon_with_a_file();
    let mut c = Conn::open(daemon.addr);
    c.send_raw(request_10(CACHED, &[]).as_bytes());
    assert_eq!(c.read(false).unwrap().body, CACHED_BODY);
    assert!(c.is_closed(), "1.0 without keep-alive");

    let mut c = Conn::open(daemon.addr);
    for _ in 0..2 {
        c.send_raw(request_10(CACHED, &[("Connection", "keep-alive")]).as_bytes());
        let r = c.read(false).unwrap();
        assert_eq!(r.body, CACHED_BODY);
        assert_eq!(
            r.header("connection").map(str::to_ascii_lowercase).as_deref(),
            Some("keep-alive")
        );
        assert_eq!(r.header("content-length"), Some("16"));
    }
}

const BIG_PATH: &str = "/debian/pool/main/b/big/big_1.0_all.deb";
const BIG_URL: &str = "/m/pool/main/b/big/big_1.0_all.deb";

/// A mirror with a 32 MiB file and a daemon that has fetched it whole.
fn big_file_cached() -> (Origin, Daemon, Vec<u8>) {
    let origin = Origin::start();
    let file = data(32 * MB);
    origin.put(BIG_PATH, file.clone());
    let daemon = Daemon::start(&format!("Remap-m: /m ; {}\n{TIMEOUT}", origin.url("/debian")));
    let r = http::get(daemon.addr, BIG_URL);
    assert_eq!((r.status, r.body.len()), (200, file.len()));
    daemon.downloads_done();
    (origin, daemon, file)
}

/// A client that asks for the big file, reads its head and 4 KiB of it,
/// and reads no more.
fn stalled_client(daemon: &Daemon) -> Conn {
    let mut c = Conn::open(daemon.addr);
    c.send("GET", BIG_URL, &[]);
    assert_eq!(c.read_head().unwrap().status, 200);
    assert_eq!(c.read_body(4096).unwrap().len(), 4096);
    c
}

/// The TCP state (`/proc/net/tcp`'s `st`) of the daemon's end of the
/// connection whose client end is `client`; `None` once it is gone.
fn daemon_end_state(daemon: SocketAddr, client: SocketAddr) -> Option<u8> {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(a) => format!("{:08X}:{:04X}", u32::from_le_bytes(a.ip().octets()), a.port()),
        SocketAddr::V6(_) => unreachable!("the tests use 127.0.0.1"),
    };
    let (local, remote) = (hex(daemon), hex(client));
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f[1] == local && f[2] == remote).then(|| u8::from_str_radix(f[3], 16).unwrap())
        })
}

const TCP_ESTABLISHED: u8 = 1;

#[test]
fn a_client_that_stops_reading_a_body_is_cut_after_the_network_timeout() {
    let (_origin, daemon, file) = big_file_cached();
    let stalled = stalled_client(&daemon);
    let client = stalled.stream().local_addr().unwrap();
    assert_eq!(daemon_end_state(daemon.addr, client), Some(TCP_ESTABLISHED));
    // The daemon's end leaves ESTABLISHED when it closes, or vanishes when
    // it resets; the body in the socket buffers is still on its way.
    wait_for("the daemon to give up on the stalled client", || {
        daemon_end_state(daemon.addr, client) != Some(TCP_ESTABLISHED)
    });
    let mut rest = Vec::new();
    let _ = stalled.stream().read_to_end(&mut rest);
    assert!(
        4096 + rest.len() < file.len(),
        "cut short: {} bytes",
        4096 + rest.len()
    );
}

#[test]
fn a_client_that_stops_reading_holds_up_neither_other_clients_nor_memory() {
    let (origin, daemon, file) = big_file_cached();
    let before = crate::support::proc_kib(daemon.pid(), "VmRSS");
    let _stalled = stalled_client(&daemon);
    let r = http::get(daemon.addr, BIG_URL);
    assert_eq!(r.status, 200);
    assert_eq!(sha256_hex(&r.body), sha256_hex(&file));
    let grown = crate::support::proc_kib(daemon.pid(), "VmRSS").saturating_sub(before);
    assert!(grown < 8 * 1024, "RSS grew by {grown} KiB for a 32 MiB file");
    assert_eq!(origin.requests(BIG_PATH), 1, "served from the cache");
}

#[test]
fn chunked_with_content_length_is_refused_or_answered_and_closed() {
    let daemon = daemon_with_a_file();
    let mut c = Conn::open(daemon.addr);
    let post = soap_post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n");
    c.send_raw(
        format!(
            "{post}5\r\nhello\r\n0\r\n\r\n{}",
            http::request("GET", CACHED, &[])
        )
        .as_bytes(),
    );
    // RFC 9112 §6.3: a server MAY reject this or read the body by its
    // chunks, and MUST close the connection after its response either way.
    let r = c.read(false).unwrap();
    assert!(r.status == 400 || is_soap_redirect(&r), "{r:?}");
    assert!(c.is_closed(), "closed, the GET unanswered");
}

#[test]
fn a_transfer_coding_that_does_not_end_in_chunked_is_400_and_closed() {
    let daemon = Daemon::start(PATIENT);
    // RFC 9112 §6.3: the body's length is unknown; 400 and close, a MUST.
    for coding in ["gzip", "x-unknown"] {
        let post = soap_post(&format!("Transfer-Encoding: {coding}\r\n"));
        refused(&daemon, format!("{post}hello").as_bytes(), 400);
    }
}

#[test]
fn an_unknown_transfer_coding_is_501() {
    let daemon = Daemon::start(PATIENT);
    // RFC 9112 §6.1: a coding the server does not understand is 501; the
    // chunked framing at its end says where the request ends, so nothing
    // requires the connection to close.
    let post = soap_post("Transfer-Encoding: x-unknown, chunked\r\n");
    let (_, r) = answer_to(&daemon, format!("{post}5\r\nhello\r\n0\r\n\r\n").as_bytes());
    assert_eq!(r.status, 501, "{r:?}");
}

#[test]
fn a_bad_or_conflicting_content_length_is_400_and_closed() {
    let daemon = Daemon::start(PATIENT);
    // RFC 9112 §6.3: an invalid Content-Length MUST be 400 and closed.
    for lengths in ["abc", "-5", "5, 6", "5\r\nContent-Length: 6"] {
        let post = soap_post(&format!("Content-Length: {lengths}\r\n"));
        refused(&daemon, format!("{post}hello!").as_bytes(), 400);
    }
}

#[test]
fn a_chunked_body_is_skipped_and_never_answered_as_a_request() {
    let daemon = daemon_with_a_file();
    let mut c = Conn::open(daemon.addr);
    // The body's chunks spell a request of their own.
    let smuggled = http::request("GET", "/h.example/p/smuggled.deb", &[]);
    let (one, two) = smuggled.split_at(20);
    let body = format!(
        "{:x}\r\n{one}\r\n{:x}\r\n{two}\r\n0\r\n\r\n",
        one.len(),
        two.len()
    );
    let next = http::request("GET", CACHED, &[("Connection", "close")]);
    c.send_raw(format!("{}{body}{next}", soap_post("Transfer-Encoding: chunked\r\n")).as_bytes());
    assert!(is_soap_redirect(&c.read(false).unwrap()));
    // The GET is answered, or the daemon closes before it (a client retries
    // an unanswered pipelined request); nothing answers the body's bytes.
    match c.read(false) {
        Ok(r) => assert_eq!((r.status, r.body.as_slice()), (200, CACHED_BODY), "{r:?}"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
    }
    assert!(c.is_closed());
}

#[test]
fn other_major_versions_are_refused_at_once() {
    let daemon = Daemon::start(PATIENT);
    // 505 says it best (RFC 9110 §15.6.6); 400 is hyper's answer.
    for version in ["HTTP/2.0", "HTTP/3.0"] {
        let (mut c, r) = answer_to(
            &daemon,
            format!("GET / {version}\r\nHost: test\r\n\r\n").as_bytes(),
        );
        assert!(matches!(r.status, 505 | 400), "{version}: {r:?}");
        assert!(c.is_closed(), "{version}");
    }
    assert_eq!(http::get(daemon.addr, "/").status, 200);
}

#[test]
fn the_http_2_preface_is_refused_with_a_status() {
    let daemon = Daemon::start(PATIENT);
    let (mut c, r) = answer_to(&daemon, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(matches!(r.status, 505 | 400), "{r:?}");
    assert!(c.is_closed());
}

#[test]
fn pipelined_requests_of_every_kind_are_answered_in_order() {
    let origin = Origin::start();
    let daemon = Daemon::start(&format!("Remap-m: /m ; {}\n{PATIENT}", origin.url("/debian")));
    let file = data(100_000);
    put(&daemon.cache(), "m/pool/f.deb", &file);
    put(
        &daemon.cache(),
        "m/pool/f.deb.head",
        acng_head(file.len()).as_bytes(),
    );
    let missing = http::get(daemon.addr, "/m/pool/missing.deb");
    assert!(missing.status >= 400, "{missing:?}");

    let since = [("If-Modified-Since", crate::support::origin::LAST_MODIFIED)];
    let burst = [
        http::request("HEAD", "/m/pool/f.deb", &[]),
        http::request("GET", "/m/pool/f.deb", &since),
        http::request("GET", "/m/pool/f.deb", &[("Range", "bytes=0-9")]),
        http::request("GET", "/m/pool/missing.deb", &[]),
        http::request("GET", "/m/pool/f.deb", &[]),
    ];
    let mut c = Conn::open(daemon.addr);
    c.send_raw(burst.concat().as_bytes());
    let head = c.read(true).unwrap();
    let length = file.len().to_string();
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some(length.as_str()))
    );
    assert_eq!(c.read(false).unwrap().status, 304);
    let r = c.read(false).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (206, &file[..10]));
    let r = c.read(false).unwrap();
    assert_eq!((r.status, r.body), (missing.status, missing.body));
    let r = c.read(false).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == file, "the whole file, exact");
    c.send("GET", "/m/pool/f.deb", &[("Range", "bytes=10-19")]);
    assert_eq!(
        c.read(false).unwrap().body,
        &file[10..20],
        "nothing was left over: HEAD and 304 sent no body"
    );
}

#[test]
fn a_body_of_unknown_length_is_chunked_for_1_1_and_ends_with_the_connection_for_1_0() {
    let origin = Origin::start();
    let file = data(300_000);
    for name in ["a", "b"] {
        let path = format!("/debian/pool/{name}.deb");
        origin.put(&path, file.clone());
        origin.fault(&path, Fault::Chunked, 1);
    }
    let daemon = Daemon::start(&format!("Remap-m: /m ; {}\n{PATIENT}", origin.url("/debian")));
    let mut c = Conn::open(daemon.addr);
    let r = c.get("/m/pool/a.deb", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{r:?}");
    assert!(r.header("content-length").is_none());
    assert!(r.body == file, "every chunk, then the last one");
    // The connection goes on after the last chunk.
    assert_eq!(c.get("/", &[]).status, 200);

    let mut c = Conn::open(daemon.addr);
    c.send_raw(request_10("/m/pool/b.deb", &[]).as_bytes());
    let r = c.read(false).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("transfer-encoding").is_none(), "no chunks for 1.0");
    assert!(r.header("content-length").is_none(), "{r:?}");
    assert!(r.body == file, "the whole body, then the end of the connection");
}
