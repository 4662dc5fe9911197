//! Fuzz target: `service::conditional::select`, which part of a complete
//! cached file a request gets (Range, If-Range, If-None-Match,
//! If-Modified-Since).
//!
//! Input, in the shape of a request followed by a sidecar:
//!
//! ```text
//! GET 1000                       method and the file's length
//! Range: bytes=0-99              request headers, up to an empty line
//! If-Range: "abc"
//!
//! HTTP/1.1 200 OK                the stored `.head` (validators)
//! ETag: "abc"
//! ```
//!
//! A length that is not a number is taken from the input's size. Header
//! lines hyper would refuse are left out.
//!
//! Invariants: a part lies inside the file and is not empty; only GET gets
//! a part or a 416, and only when it sent `Range`; only a conditional
//! request gets a 304; the same request always gets the same answer.

use debcache::cache::{Head, Meta};
use debcache::service::conditional::{select, Selection};
use http::header::{HeaderName, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, RANGE};
use http::{HeaderMap, Method};

pub fn run(data: &[u8]) {
    let (request, sidecar) = split_blank_line(data);
    let mut lines = request
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    let (method, len) = match first.iter().position(|&b| b == b' ') {
        Some(i) => (&first[..i], &first[i + 1..]),
        None => (first, &b""[..]),
    };
    let Ok(method) = Method::from_bytes(method) else {
        return;
    };
    let len = std::str::from_utf8(len)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(data.len() as u64);
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let meta = Meta::new(Head::parse(sidecar).unwrap_or_default());

    let selection = select(&method, &headers, len, &meta);
    assert_eq!(
        selection,
        select(&method, &headers, len, &meta),
        "not deterministic"
    );
    let ranged = method == Method::GET && headers.contains_key(RANGE);
    match selection {
        Selection::Part { start, end } => {
            assert!(start < end && end <= len, "{start}..{end} of {len}: {headers:?}");
            assert!(ranged, "a part without a Range: {method} {headers:?}");
        }
        Selection::Unsatisfiable => assert!(ranged, "416 without a Range: {method} {headers:?}"),
        Selection::NotModified => assert!(
            headers.contains_key(IF_NONE_MATCH) || headers.contains_key(IF_MODIFIED_SINCE),
            "304 to an unconditional request: {headers:?}"
        ),
        Selection::Whole => {}
    }
    let plain = headers.len() == 1 && method == Method::GET;
    if let Some(want) = headers
        .get(RANGE)
        .filter(|_| plain)
        .and_then(|v| canonical(v.as_bytes(), len))
    {
        assert_eq!(selection, want, "{headers:?} of {len}");
    }
}

/// RFC 9110 §14.1.2 for the forms apt and browsers send, `bytes=A-B`,
/// `bytes=A-` and `bytes=-N` with plain decimal numbers, written
/// independently of the code under test.
fn canonical(value: &[u8], len: u64) -> Option<Selection> {
    let spec = value.strip_prefix(b"bytes=")?;
    let dash = spec.iter().position(|&b| b == b'-')?;
    let number = |s: &[u8]| -> Option<Option<u64>> {
        if s.is_empty() {
            return Some(None);
        }
        if s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok().map(Some)
    };
    let (first, last) = (number(&spec[..dash])?, number(&spec[dash + 1..])?);
    Some(match (first, last) {
        (None, None) => return None,
        (None, Some(0)) => Selection::Unsatisfiable,
        (None, Some(_)) if len == 0 => Selection::Unsatisfiable,
        (None, Some(n)) => Selection::Part {
            start: len - n.min(len),
            end: len,
        },
        (Some(a), Some(b)) if b < a => Selection::Whole,
        (Some(a), _) if a >= len => Selection::Unsatisfiable,
        (Some(a), b) => Selection::Part {
            start: a,
            end: b.map_or(len, |b| (b + 1).min(len)),
        },
    })
}

/// The bytes before the first empty line (LF or CRLF) and those after it.
fn split_blank_line(data: &[u8]) -> (&[u8], &[u8]) {
    for (i, w) in data.windows(2).enumerate() {
        if w == b"\n\n" {
            return (&data[..i], &data[i + 2..]);
        }
        if w == b"\n\r" && data.get(i + 2) == Some(&b'\n') {
            return (&data[..i], &data[i + 3..]);
        }
    }
    (data, &[])
}
