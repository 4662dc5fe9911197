//! The mock mirror checked with hand-written requests, so that the proxy's
//! tests can trust what it sends and counts.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::http::{request, sha256_hex, Conn, Response};
use crate::support::origin::{etag_of, Fault, Meta, Origin, LAST_MODIFIED};

const RELEASE: &str = "/debian/dists/sid/Release";
const DEB: &str = "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb";

/// `len` bytes that differ from their neighbours, so offsets show.
fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn origin_with(path: &str, len: usize) -> (Origin, Vec<u8>) {
    let origin = Origin::start();
    let bytes = body(len);
    origin.put(path, bytes.clone());
    (origin, bytes)
}

/// One request on its own connection, its response read piece by piece.
struct Raw(BufReader<TcpStream>);

impl Raw {
    fn send(origin: &Origin, method: &str, target: &str, headers: &[(&str, &str)]) -> Raw {
        let mut raw = Raw(BufReader::new(TcpStream::connect(origin.addr()).unwrap()));
        raw.0
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        raw.again(method, target, headers);
        raw
    }

    /// Another request on the same connection.
    fn again(&mut self, method: &str, target: &str, headers: &[(&str, &str)]) {
        use std::io::Write;
        let text = request(method, target, headers);
        self.0.get_mut().write_all(text.as_bytes()).unwrap();
    }

    /// The status line and headers, with an empty body.
    fn head(&mut self) -> std::io::Result<Response> {
        let mut line = String::new();
        self.0.read_line(&mut line)?;
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.0.read_line(&mut line)?;
            match line.trim_end().split_once(':') {
                Some((k, v)) => headers.push((k.trim().to_lowercase(), v.trim().to_string())),
                None => break,
            }
        }
        Ok(Response {
            status,
            reason: String::new(),
            headers,
            body: Vec::new(),
        })
    }

    fn exact(&mut self, n: usize) -> Vec<u8> {
        let mut bytes = vec![0; n];
        self.0.read_exact(&mut bytes).unwrap();
        bytes
    }

    /// Everything until the origin closes the connection.
    fn rest(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.0.read_to_end(&mut bytes).unwrap();
        bytes
    }

    /// A chunked body, and whether its terminating chunk arrived.
    fn chunked(&mut self) -> (Vec<u8>, bool) {
        let mut data = Vec::new();
        loop {
            let mut size = String::new();
            if self.0.read_line(&mut size).unwrap() == 0 {
                return (data, false);
            }
            let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            let mut chunk = vec![0; size + 2];
            if self.0.read_exact(&mut chunk).is_err() {
                return (data, false);
            }
            assert_eq!(&chunk[size..], b"\r\n");
            if size == 0 {
                return (data, true);
            }
            data.extend_from_slice(&chunk[..size]);
        }
    }

    /// Asserts that no byte is waiting, neither buffered nor in the socket.
    fn assert_idle(&mut self) {
        assert!(self.0.buffer().is_empty(), "bytes beyond the pause point");
        let stream = self.0.get_ref();
        stream.set_nonblocking(true).unwrap();
        let err = stream
            .peek(&mut [0; 1])
            .expect_err("bytes beyond the pause point");
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        stream.set_nonblocking(false).unwrap();
    }
}

#[test]
fn get_and_head_carry_length_validators_and_type() {
    let (origin, bytes) = origin_with(RELEASE, 100_000);
    let mut conn = Conn::open(origin.addr());
    let r = conn.get(RELEASE, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, bytes);
    assert_eq!(r.header("content-length"), Some("100000"));
    let etag = etag_of(&bytes);
    assert_eq!(etag, format!("\"100000-{}\"", &sha256_hex(&bytes)[..16]));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(r.header("last-modified"), Some(LAST_MODIFIED));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));

    conn.send("HEAD", RELEASE, &[]);
    let head = conn.read(true).unwrap();
    assert_eq!(head.status, 200);
    for name in [
        "content-length",
        "etag",
        "last-modified",
        "accept-ranges",
        "content-type",
    ] {
        assert_eq!(head.header(name), r.header(name), "{name}");
    }
    // The HEAD sent no body: the next response on the connection parses.
    assert_eq!(conn.get(RELEASE, &[]).body, bytes);
}

#[test]
fn put_with_overrides_or_drops_the_validators() {
    let origin = Origin::start();
    let date = "Mon, 01 Jan 2024 00:00:00 GMT";
    let meta = Meta {
        etag: Some("W/\"v1\"".into()),
        last_modified: Some(date.into()),
        content_type: Some("text/plain".into()),
        no_validators: false,
    };
    origin.put_with(RELEASE, "first", meta);
    let r = crate::support::http::get(origin.addr(), RELEASE);
    assert_eq!(r.header("etag"), Some("W/\"v1\""));
    assert_eq!(r.header("last-modified"), Some(date));
    assert_eq!(r.header("content-type"), Some("text/plain"));

    let bare = Meta {
        no_validators: true,
        ..Meta::default()
    };
    origin.put_with(RELEASE, "second", bare);
    let r = crate::support::http::get(origin.addr(), RELEASE);
    assert_eq!(r.text(), "second");
    assert_eq!((r.header("etag"), r.header("last-modified")), (None, None));
}

#[test]
fn single_ranges_answer_206_and_unsatisfiable_ones_416() {
    let (origin, bytes) = origin_with(DEB, 1000);
    let mut conn = Conn::open(origin.addr());
    let cases = [
        ("bytes=10-19", 10, 19),
        ("bytes=990-", 990, 999),
        ("bytes=-5", 995, 999),
        ("bytes=5-5000", 5, 999),
    ];
    for (range, first, last) in cases {
        let r = conn.get(DEB, &[("Range", range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {first}-{last}/1000").as_str())
        );
        assert_eq!(r.body, &bytes[first..=last], "{range}");
        assert_eq!(r.header("etag"), Some(etag_of(&bytes).as_str()));
    }
    for range in ["bytes=1000-", "bytes=2000-3000", "bytes=-0"] {
        let r = conn.get(DEB, &[("Range", range)]);
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */1000"));
    }
    // Several ranges, other units and bad syntax are ignored.
    for range in ["bytes=0-1,5-6", "items=0-1", "bytes=x-", "bytes=9-0", "bytes=5"] {
        let r = conn.get(DEB, &[("Range", range)]);
        assert_eq!((r.status, r.body.len()), (200, 1000), "{range}");
    }
}

#[test]
fn every_range_of_an_empty_file_is_unsatisfiable() {
    let origin = Origin::start();
    origin.put(RELEASE, "");
    let mut conn = Conn::open(origin.addr());
    for range in ["bytes=0-", "bytes=-1"] {
        let r = conn.get(RELEASE, &[("Range", range)]);
        assert_eq!(
            (r.status, r.header("content-range")),
            (416, Some("bytes */0")),
            "{range}"
        );
    }
    assert_eq!(conn.get(RELEASE, &[]).header("content-length"), Some("0"));
}

#[test]
fn if_range_honours_only_the_current_validator() {
    let (origin, bytes) = origin_with(DEB, 1000);
    let etag = etag_of(&bytes);
    let mut conn = Conn::open(origin.addr());
    let with = |conn: &mut Conn, cond: &str| conn.get(DEB, &[("Range", "bytes=100-"), ("If-Range", cond)]);
    assert_eq!(with(&mut conn, &etag).status, 206);
    assert_eq!(with(&mut conn, LAST_MODIFIED).status, 206);
    for stale in [
        "\"1000-0000000000000000\"",
        "Sat, 21 Nov 2026 02:58:26 GMT",
        "garbage",
    ] {
        let r = with(&mut conn, stale);
        assert_eq!((r.status, r.body.len()), (200, 1000), "{stale}");
    }
    // A weak tag never matches If-Range.
    let weak = Meta {
        etag: Some("W/\"w\"".into()),
        ..Meta::default()
    };
    origin.put_with(DEB, bytes, weak);
    assert_eq!(with(&mut conn, "W/\"w\"").status, 200);
}

#[test]
fn conditional_requests_turn_into_304() {
    let (origin, bytes) = origin_with(RELEASE, 500);
    let etag = etag_of(&bytes);
    let weak = format!("W/{etag}");
    let mut conn = Conn::open(origin.addr());
    let matching: [&[(&str, &str)]; 5] = [
        &[("If-None-Match", &etag)],
        &[("If-None-Match", &format!("\"other\", {weak}"))],
        &[("If-None-Match", "*")],
        &[("If-Modified-Since", LAST_MODIFIED)],
        &[("If-Modified-Since", "Mon, 23 Nov 2026 00:00:00 GMT")],
    ];
    for headers in matching {
        let r = conn.get(RELEASE, headers);
        assert_eq!(r.status, 304, "{headers:?}");
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(r.header("last-modified"), Some(LAST_MODIFIED));
        assert!(r.body.is_empty());
    }
    let stale: [&[(&str, &str)]; 3] = [
        &[("If-None-Match", "\"other\"")],
        &[("If-Modified-Since", "Sat, 21 Nov 2026 00:00:00 GMT")],
        // If-None-Match decides alone when present.
        &[
            ("If-None-Match", "\"other\""),
            ("If-Modified-Since", LAST_MODIFIED),
        ],
    ];
    for headers in stale {
        let r = conn.get(RELEASE, headers);
        assert_eq!((r.status, r.body.len()), (200, 500), "{headers:?}");
    }
}

#[test]
fn unknown_and_removed_paths_answer_404() {
    let (origin, _) = origin_with(RELEASE, 10);
    let mut conn = Conn::open(origin.addr());
    assert_eq!(conn.get("/debian/nothing", &[]).status, 404);
    assert_eq!(conn.get(RELEASE, &[]).status, 200);
    origin.remove(RELEASE);
    let r = conn.get(RELEASE, &[]);
    assert_eq!(r.status, 404);
    assert!(!r.body.is_empty());
}

#[test]
fn requests_are_counted_by_exact_target_and_recorded_with_headers() {
    let origin = Origin::start();
    origin.put("/pool/a%2Bb.deb", "deb");
    let mut conn = Conn::open(origin.addr());
    let r = conn.get(
        "/pool/a%2Bb.deb?x=1",
        &[("X-Test", "one"), ("Range", "bytes=0-0")],
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (206, "d"),
        "the query falls back to the path"
    );
    conn.send("HEAD", "/pool/a%2Bb.deb", &[]);
    conn.read(true).unwrap();
    conn.get("/pool/a+b.deb", &[]);
    origin.wait_requests("/pool/a+b.deb", 1);

    assert_eq!(origin.requests("/pool/a%2Bb.deb?x=1"), 1);
    assert_eq!(origin.requests("/pool/a%2Bb.deb"), 1);
    assert_eq!(origin.requests("/pool/a+b.deb"), 1);
    assert_eq!(origin.requests("/pool/a"), 0);
    let seen = origin.seen();
    let order: Vec<_> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("GET", "/pool/a%2Bb.deb?x=1"),
            ("HEAD", "/pool/a%2Bb.deb"),
            ("GET", "/pool/a+b.deb")
        ]
    );
    assert_eq!(seen[0].header("x-test"), Some("one"));
    assert_eq!(seen[0].header("RANGE"), Some("bytes=0-0"));
    assert!(seen[0].headers.iter().any(|(k, v)| k == "x-test" && v == "one"));
    assert_eq!(seen[1].header("x-test"), None);
}

#[test]
fn pause_holds_the_body_after_n_bytes_until_released() {
    let (origin, bytes) = origin_with(DEB, 300_000);
    let gate = origin.fault(DEB, Fault::PauseAt(100_001), 1).unwrap();
    let mut raw = Raw::send(&origin, "GET", DEB, &[]);
    gate.wait_reached();
    // Dropping a clone releases nothing.
    drop(gate.clone());
    let head = raw.head().unwrap();
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("300000"))
    );
    assert_eq!(raw.exact(100_001), &bytes[..100_001]);
    raw.assert_idle();
    gate.release();
    assert_eq!(raw.exact(300_000 - 100_001), &bytes[100_001..]);

    // Armed once: the next request goes through.
    assert_eq!(Conn::open(origin.addr()).get(DEB, &[]).body, bytes);
}

#[test]
fn pause_applies_to_ranges_and_may_be_released_early() {
    let (origin, bytes) = origin_with(DEB, 1000);
    let gate = origin.fault(DEB, Fault::PauseAt(0), 2).unwrap();
    let mut raw = Raw::send(&origin, "GET", DEB, &[("Range", "bytes=500-")]);
    gate.wait_reached();
    let head = raw.head().unwrap();
    assert_eq!(
        (head.status, head.header("content-range")),
        (206, Some("bytes 500-999/1000"))
    );
    raw.assert_idle();
    gate.release();
    assert_eq!(raw.exact(500), &bytes[500..]);
    // Released gates let later responses pass.
    assert_eq!(Conn::open(origin.addr()).get(DEB, &[]).body, bytes);
}

#[test]
fn one_gate_holds_every_response_it_paused() {
    let (origin, bytes) = origin_with(DEB, 1000);
    let gate = origin.fault(DEB, Fault::PauseAt(600), 2).unwrap();
    let mut raws = [(); 2].map(|()| Raw::send(&origin, "GET", DEB, &[]));
    gate.wait_reached();
    for raw in &mut raws {
        raw.head().unwrap();
        assert_eq!(raw.exact(600), &bytes[..600]);
    }
    gate.release();
    for raw in &mut raws {
        assert_eq!(raw.exact(400), &bytes[600..]);
    }
}

#[test]
fn cut_delivers_exactly_n_bytes_then_eof() {
    let (origin, bytes) = origin_with(DEB, 200_000);
    origin.fault(DEB, Fault::CutAt(70_000), 1);
    let mut raw = Raw::send(&origin, "GET", DEB, &[]);
    let head = raw.head().unwrap();
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("200000"))
    );
    assert_eq!(raw.rest(), &bytes[..70_000]);
    assert_eq!(Conn::open(origin.addr()).get(DEB, &[]).body, bytes);
}

#[test]
fn cut_of_a_chunked_body_sends_no_terminator() {
    let (origin, bytes) = origin_with(DEB, 200_000);
    origin.fault(DEB, Fault::CutAt(65_537), 1);
    origin.fault(DEB, Fault::Chunked, 1);
    let mut raw = Raw::send(&origin, "GET", DEB, &[]);
    assert_eq!(raw.head().unwrap().header("transfer-encoding"), Some("chunked"));
    let (data, complete) = raw.chunked();
    assert!(!complete);
    assert_eq!(data, &bytes[..65_537]);
}

#[test]
fn ignore_range_sends_the_whole_body() {
    let (origin, bytes) = origin_with(DEB, 1000);
    origin.fault(DEB, Fault::IgnoreRange, 1);
    let mut conn = Conn::open(origin.addr());
    let r = conn.get(DEB, &[("Range", "bytes=100-")]);
    assert_eq!((r.status, r.header("content-range")), (200, None));
    assert_eq!(r.body, bytes);
    assert_eq!(conn.get(DEB, &[("Range", "bytes=100-")]).status, 206);
}

#[test]
fn status_fault_answers_times_then_stops() {
    let (origin, bytes) = origin_with(RELEASE, 100);
    origin.fault(RELEASE, Fault::Status(503), 2);
    let mut conn = Conn::open(origin.addr());
    for _ in 0..2 {
        let r = conn.get(RELEASE, &[]);
        assert_eq!(r.status, 503);
        assert!(r.text().contains("503"), "{}", r.text());
    }
    assert_eq!(conn.get(RELEASE, &[]).body, bytes);
    assert_eq!(origin.requests(RELEASE), 3);
}

#[test]
fn clear_faults_disarms_a_path() {
    let (origin, _) = origin_with(RELEASE, 100);
    origin.fault(RELEASE, Fault::Status(500), 10);
    let mut conn = Conn::open(origin.addr());
    assert_eq!(conn.get(RELEASE, &[]).status, 500);
    origin.clear_faults(RELEASE);
    assert_eq!(conn.get(RELEASE, &[]).status, 200);
}

#[test]
fn redirect_sends_the_location_verbatim() {
    let origin = Origin::start();
    origin.fault(
        "/old/Release",
        Fault::Redirect(302, "../new/Release?a=%20b".into()),
        1,
    );
    origin.fault("/moved", Fault::Redirect(301, origin.url("/there")), 1);
    // Armed zero times: never.
    origin.fault("/moved", Fault::Status(500), 0);
    let mut conn = Conn::open(origin.addr());
    let r = conn.get("/old/Release", &[]);
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("../new/Release?a=%20b"))
    );
    // Faults, like files, fall back to the path without the query.
    let r = conn.get("/moved?from=test", &[]);
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some(format!("http://{}/there", origin.addr()).as_str())
    );
    assert_eq!(conn.get("/moved", &[]).status, 404);
}

#[test]
fn chunked_fault_drops_the_length_and_keeps_the_connection() {
    let (origin, bytes) = origin_with(DEB, 150_000);
    origin.fault(DEB, Fault::Chunked, 1);
    let mut raw = Raw::send(&origin, "GET", DEB, &[]);
    let head = raw.head().unwrap();
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header("content-length"), None);
    assert_eq!(raw.chunked(), (bytes.clone(), true));
    raw.again("GET", DEB, &[]);
    assert_eq!(raw.head().unwrap().header("content-length"), Some("150000"));
    assert_eq!(raw.exact(150_000), bytes);
}

#[test]
fn mime_fault_changes_only_the_content_type() {
    let (origin, bytes) = origin_with(RELEASE, 100);
    origin.fault(RELEASE, Fault::Mime("text/html".into()), 1);
    let r = crate::support::http::get(origin.addr(), RELEASE);
    assert_eq!((r.status, r.header("content-type")), (200, Some("text/html")));
    assert_eq!(r.body, bytes);
}

#[test]
fn hang_reads_the_request_and_never_answers() {
    let (origin, bytes) = origin_with(RELEASE, 100);
    origin.fault(RELEASE, Fault::Hang, 1);
    let mut raw = Raw::send(&origin, "GET", RELEASE, &[]);
    origin.wait_requests(RELEASE, 1);
    let stream = raw.0.get_ref();
    stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let err = raw.head().expect_err("an answer from a hanging origin");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    // Other connections are served meanwhile.
    assert_eq!(crate::support::http::get(origin.addr(), RELEASE).body, bytes);
}

#[test]
fn dropping_the_origin_ends_a_paused_response() {
    let (origin, bytes) = origin_with(DEB, 1000);
    let gate = origin.fault(DEB, Fault::PauseAt(10), 1).unwrap();
    let mut raw = Raw::send(&origin, "GET", DEB, &[]);
    gate.wait_reached();
    drop(origin);
    raw.head().unwrap();
    assert_eq!(raw.rest(), &bytes[..10]);
}
