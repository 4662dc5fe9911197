use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::thread::JoinHandle;

use super::*;

const SHORT: Duration = Duration::from_millis(200);

fn request(timeout: Duration) -> Request<'static> {
    Request {
        target: "/acng-report.html?doCount=Count+Objects",
        basic: Some("YWRtaW46c2VjcmV0"),
        timeout,
    }
}

/// Reads what a client sends until `heads` heads have ended.
fn read_heads(stream: &mut impl Read, heads: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.windows(4).filter(|w| w == b"\r\n\r\n").count() < heads {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// A unix socket that answers one connection with `answer`, a few bytes
/// at a time, then closes; the thread returns what the client sent.
fn unix_server(answer: &'static [u8]) -> (tempfile::TempDir, Endpoint, JoinHandle<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let got = read_heads(&mut stream, 2);
        for piece in answer.chunks(3) {
            if stream.write_all(piece).is_err() {
                break;
            }
        }
        got
    });
    (dir, Endpoint::Socket(path), server)
}

/// The same over TCP on an ephemeral loopback port.
fn tcp_server(answer: &'static [u8]) -> (Endpoint, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let got = read_heads(&mut stream, 1);
        let _ = stream.write_all(answer);
        got
    });
    (Endpoint::Tcp("127.0.0.1".into(), port), server)
}

fn ask(endpoint: &Endpoint, timeout: Duration) -> (Result<Answer, ExchangeError>, Vec<u8>) {
    let mut body = Vec::new();
    let result = exchange(endpoint, &request(timeout), &mut |b| body.extend_from_slice(b));
    (result, body)
}

const CHUNKED: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n";

#[test]
fn the_unix_socket_gets_the_identification_then_the_request() {
    let (_dir, endpoint, server) = unix_server(CHUNKED);
    let (result, body) = ask(&endpoint, Duration::from_secs(10));
    assert_eq!(
        result.unwrap(),
        Answer {
            status: 200,
            reason: "OK".into()
        }
    );
    assert_eq!(body, b"hello world");
    let sent = String::from_utf8(server.join().unwrap()).unwrap();
    assert!(
        sent.starts_with(
            "GET / HTTP/1.0\r\nX-Original-Source: localhost\r\n\r\n\
             GET /acng-report.html?doCount=Count+Objects HTTP/1.1\r\nHost: UNIX-DOMAIN-SOCKET\r\n"
        ),
        "{sent}"
    );
    assert!(sent.contains("\r\nAuthorization: Basic YWRtaW46c2VjcmV0\r\n"));
    assert!(sent.contains("\r\nConnection: close\r\n"));
}

#[test]
fn tcp_names_its_host_and_a_length_ends_the_body() {
    let (endpoint, server) =
        tcp_server(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 5\r\n\r\nabcdeEXTRA");
    let (result, body) = ask(&endpoint, Duration::from_secs(10));
    assert_eq!(result.unwrap().status, 501);
    assert_eq!(body, b"abcde");
    let sent = String::from_utf8(server.join().unwrap()).unwrap();
    assert!(sent.starts_with("GET /acng-report.html?doCount=Count+Objects HTTP/1.1\r\nHost: 127.0.0.1:"));
}

#[test]
fn a_close_delimited_body_ends_with_the_connection() {
    let (endpoint, _server) = tcp_server(b"HTTP/1.0 200 OK\r\n\r\nall of it");
    let (result, body) = ask(&endpoint, Duration::from_secs(10));
    assert_eq!(result.unwrap().status, 200);
    assert_eq!(body, b"all of it");
}

#[test]
fn an_answer_cut_short_is_an_error_after_the_status() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhel"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nnot a size\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
        b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
    ] {
        let (endpoint, _server) = tcp_server(answer);
        let (result, _) = ask(&endpoint, Duration::from_secs(10));
        assert!(
            matches!(result, Err(ExchangeError::Cut { status: 200, .. })),
            "{:?}: {result:?}",
            String::from_utf8_lossy(answer)
        );
    }
}

#[test]
fn no_answer_lets_another_way_be_tried() {
    for answer in [
        &b""[..],
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    ] {
        let (endpoint, _server) = tcp_server(answer);
        let (result, body) = ask(&endpoint, Duration::from_secs(10));
        assert!(
            matches!(result, Err(ExchangeError::Unanswered(_))),
            "{:?}: {result:?}",
            String::from_utf8_lossy(answer)
        );
        assert!(body.is_empty());
    }
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = ask(&Endpoint::Socket(dir.path().join("none")), SHORT);
    assert!(matches!(
        result,
        Err(ExchangeError::Unanswered(Unanswered::Connect(_)))
    ));
}

#[test]
fn a_daemon_that_never_answers_is_given_up_on() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = Endpoint::Tcp("127.0.0.1".into(), listener.local_addr().unwrap().port());
    let (result, _) = ask(&endpoint, SHORT);
    assert!(
        matches!(result, Err(ExchangeError::Unanswered(Unanswered::Silent(_)))),
        "{result:?}"
    );
    assert_eq!(result.unwrap_err().to_string(), "no answer within 200ms");
    drop(listener);
}

#[test]
fn a_huge_head_is_refused() {
    let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
    while answer.len() <= MAX_HEAD + 10 {
        answer.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let answer: &'static [u8] = answer.leak();
    let (endpoint, _server) = tcp_server(answer);
    let (result, _) = ask(&endpoint, Duration::from_secs(10));
    assert!(
        matches!(result, Err(ExchangeError::Unanswered(Unanswered::NotHttp(_)))),
        "{result:?}"
    );
}

#[test]
fn interim_answers_without_end_are_refused() {
    let answer: &'static [u8] = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INTERIM + 1).leak();
    let (endpoint, _server) = tcp_server(answer);
    let (result, _) = ask(&endpoint, Duration::from_secs(10));
    assert!(
        matches!(result, Err(ExchangeError::Unanswered(Unanswered::NotHttp(_)))),
        "{result:?}"
    );
}

#[test]
fn framing_follows_rfc_9112() {
    let of = |status: u16, fields: &[(&str, &str)]| {
        let headers: Vec<httparse::Header<'_>> = fields
            .iter()
            .map(|(name, value)| httparse::Header {
                name,
                value: value.as_bytes(),
            })
            .collect();
        framing(status, &headers)
    };
    assert_eq!(of(200, &[("Transfer-Encoding", "chunked")]), Framing::Chunked);
    assert_eq!(
        of(200, &[("transfer-encoding", "gzip, Chunked")]),
        Framing::Chunked
    );
    assert_eq!(of(200, &[("Transfer-Encoding", "chunked, gzip")]), Framing::Close);
    assert_eq!(
        of(200, &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")]),
        Framing::Chunked
    );
    assert_eq!(of(200, &[("Content-Length", "42")]), Framing::Length(42));
    assert_eq!(of(200, &[("Content-Length", "42, 42")]), Framing::Length(42));
    assert_eq!(
        of(200, &[("Content-Length", "42, 43")]),
        Framing::Length(u64::MAX)
    );
    assert_eq!(of(200, &[("Content-Length", "x")]), Framing::Length(u64::MAX));
    assert_eq!(of(200, &[]), Framing::Close);
    assert_eq!(of(304, &[("Content-Length", "42")]), Framing::Length(0));
}

#[test]
fn endpoints_read_as_addresses() {
    assert_eq!(Endpoint::Tcp("::1".into(), 3142).to_string(), "[::1]:3142");
    assert_eq!(
        Endpoint::Tcp("cache.lan".into(), 3142).to_string(),
        "cache.lan:3142"
    );
    assert_eq!(
        Endpoint::Socket("/run/x/socket".into()).to_string(),
        "/run/x/socket"
    );
}
