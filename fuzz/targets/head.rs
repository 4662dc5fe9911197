//! Fuzz target: `Head::parse`, the `.head` sidecar reader.
//!
//! Input: the bytes of a sidecar, as found on disk (written by debcache,
//! by any apt-cacher-ng version, or damaged).
//!
//! Invariants: a status line `HTTP/1.1 200…` within the size limit always
//! parses; what parses, written back and read again, is the same `Head`,
//! and writing it is then stable byte for byte; `is_complete` agrees with
//! the stored `Content-Length` for every size.

use debcache::cache::Head;
use debcache::cache::{HeadError, MAX_HEAD_SIZE};

pub fn run(data: &[u8]) {
    let head = match Head::parse(data) {
        Ok(head) => head,
        Err(HeadError::TooLarge) => return assert!(data.len() > MAX_HEAD_SIZE),
        Err(HeadError::NotOk(line)) => {
            assert!(line.chars().count() <= 80, "{line:?}");
            return assert!(data.len() > MAX_HEAD_SIZE || !data.starts_with(b"HTTP/1.1 200"));
        }
    };
    let written = head.render();
    assert!(written.starts_with("HTTP/1.1 200 OK\r\n") && written.ends_with("\r\n\r\n"));
    let shown = || {
        let start: String = written.chars().take(200).collect();
        format!("{} bytes written, starting {start:?},", written.len())
    };
    assert!(written.len() <= MAX_HEAD_SIZE, "{} are too many", shown());
    let reread =
        Head::parse(written.as_bytes()).unwrap_or_else(|e| panic!("{} do not read back: {e}", shown()));
    assert!(reread == head, "{} read back as another head", shown());
    assert_eq!(reread.came_over_tls(), head.came_over_tls());
    assert!(
        reread.render() == written,
        "{} are written differently again",
        shown()
    );

    let sizes = [
        Some(0),
        Some(data.len() as u64),
        Some(u64::MAX),
        head.content_length,
        head.content_length.map(|n| n.wrapping_add(1)),
        head.content_length.map(|n| n.wrapping_sub(1)),
        head.expected_length,
    ];
    for size in sizes.into_iter().flatten() {
        assert_eq!(
            head.is_complete(size),
            head.content_length == Some(size),
            "{size}"
        );
    }
}
