//! Which part of a complete cached file a GET or HEAD gets, per RFC 9110
//! §13 (conditional requests) and §14 (ranges): `If-None-Match`, then
//! `If-Modified-Since`, then `Range` guarded by `If-Range`. Single ranges,
//! suffix ranges and clamping are honoured; a multi-range request gets the
//! whole file (RFC 9110 lets a server ignore Range), as does any range a
//! client cannot have meant.

use std::time::SystemTime;

use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, RANGE};
use http::{HeaderMap, Method};

use crate::cache::Meta;

/// What to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// 200 with the whole file.
    Whole,
    /// 206 with bytes `[start, end)`.
    Part { start: u64, end: u64 },
    /// 304.
    NotModified,
    /// 416.
    Unsatisfiable,
}

pub fn select(method: &Method, headers: &HeaderMap, len: u64, meta: &Meta) -> Selection {
    if let Some(tags) = header(headers, IF_NONE_MATCH) {
        if none_match_fails(tags, meta) {
            return Selection::NotModified;
        }
    } else if let Some(since) =
        header(headers, IF_MODIFIED_SINCE).and_then(|v| httpdate::parse_http_date(v).ok())
    {
        if meta.last_modified.as_ref().is_some_and(|(_, lm)| *lm <= since) {
            return Selection::NotModified;
        }
    }
    if method != Method::GET {
        return Selection::Whole;
    }
    let Some(range) = header(headers, RANGE) else {
        return Selection::Whole;
    };
    if let Some(validator) = header(headers, IF_RANGE) {
        if !if_range_matches(validator, meta) {
            return Selection::Whole;
        }
    }
    parse_range(range, len)
}

fn header(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// `If-None-Match` with weak comparison: true when it names the stored tag
/// (or `*`), so the client's copy is current.
fn none_match_fails(tags: &str, meta: &Meta) -> bool {
    if tags == "*" {
        return true;
    }
    let Some(etag) = meta.head.etag.as_deref() else {
        return false;
    };
    let ours = opaque(etag);
    tags.split(',').any(|t| opaque(t) == ours)
}

/// An entity tag without its weakness mark, for weak comparison.
fn opaque(tag: &str) -> &str {
    tag.trim().trim_start_matches("W/")
}

/// `If-Range`: a strong entity tag equal to ours, or exactly our
/// Last-Modified date.
fn if_range_matches(validator: &str, meta: &Meta) -> bool {
    if validator.starts_with('"') || validator.starts_with("W/") {
        return !validator.starts_with("W/")
            && meta
                .head
                .etag
                .as_deref()
                .is_some_and(|e| !e.starts_with("W/") && e == validator);
    }
    let when: Option<SystemTime> = httpdate::parse_http_date(validator).ok();
    matches!((when, &meta.last_modified), (Some(t), Some((_, lm))) if t == *lm)
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against a file of `len` bytes.
fn parse_range(value: &str, len: u64) -> Selection {
    let Some(spec) = value.strip_prefix("bytes=") else {
        return Selection::Whole;
    };
    if spec.contains(',') {
        return Selection::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Selection::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            Some(0) => Selection::Unsatisfiable,
            Some(n) if len > 0 => Selection::Part {
                start: len.saturating_sub(n),
                end: len,
            },
            Some(_) => Selection::Unsatisfiable,
            None => Selection::Whole,
        },
        (start, end) => {
            let Some(start) = number(start) else {
                return Selection::Whole;
            };
            let end = match end {
                "" => len,
                e => match number(e) {
                    Some(e) if e >= start => e.saturating_add(1).min(len),
                    _ => return Selection::Whole,
                },
            };
            if start >= len {
                Selection::Unsatisfiable
            } else {
                Selection::Part { start, end }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Head;
    use http::HeaderValue;

    const LM: &str = "Sun, 22 Nov 2026 02:58:26 GMT";

    fn meta(etag: Option<&str>) -> Meta {
        let head = Head {
            content_length: Some(1000),
            last_modified: Some(LM.into()),
            etag: etag.map(Into::into),
            ..Head::default()
        };
        Meta {
            last_modified: Some((
                HeaderValue::from_static(LM),
                httpdate::parse_http_date(LM).unwrap(),
            )),
            etag: etag.map(|e| HeaderValue::from_str(e).unwrap()),
            head,
        }
    }

    fn sel(method: Method, headers: &[(&str, &str)], etag: Option<&str>) -> Selection {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        select(&method, &map, 1000, &meta(etag))
    }

    fn get(headers: &[(&str, &str)]) -> Selection {
        sel(Method::GET, headers, Some("\"abc\""))
    }

    fn part(start: u64, end: u64) -> Selection {
        Selection::Part { start, end }
    }

    #[test]
    fn ranges_per_rfc_9110() {
        let cases = [
            ("bytes=0-99", part(0, 100)),
            ("bytes=0-0", part(0, 1)),
            ("bytes=100-", part(100, 1000)),
            ("bytes=900-5000", part(900, 1000)),
            ("bytes=-100", part(900, 1000)),
            ("bytes=-5000", part(0, 1000)),
            ("bytes=999-", part(999, 1000)),
            ("bytes=1000-", Selection::Unsatisfiable),
            ("bytes=1000-1200", Selection::Unsatisfiable),
            ("bytes=-0", Selection::Unsatisfiable),
            ("bytes=50-10", Selection::Whole),
            ("bytes=0-1,5-9", Selection::Whole),
            ("bytes=x-", Selection::Whole),
            ("items=0-1", Selection::Whole),
            ("bytes=-", Selection::Whole),
        ];
        for (range, want) in cases {
            assert_eq!(get(&[("range", range)]), want, "{range}");
        }
    }

    #[test]
    fn if_range_guards_the_range() {
        let range = ("range", "bytes=10-19");
        assert_eq!(get(&[range, ("if-range", "\"abc\"")]), part(10, 20));
        assert_eq!(get(&[range, ("if-range", "\"other\"")]), Selection::Whole);
        assert_eq!(
            get(&[range, ("if-range", "W/\"abc\"")]),
            Selection::Whole,
            "weak tags never match"
        );
        assert_eq!(get(&[range, ("if-range", LM)]), part(10, 20));
        assert_eq!(
            get(&[range, ("if-range", "Sun, 22 Nov 2026 02:58:27 GMT")]),
            Selection::Whole
        );
        assert_eq!(get(&[range, ("if-range", "garbage")]), Selection::Whole);
    }

    #[test]
    fn conditional_requests() {
        assert_eq!(get(&[("if-modified-since", LM)]), Selection::NotModified);
        assert_eq!(
            get(&[("if-modified-since", "Mon, 23 Nov 2026 00:00:00 GMT")]),
            Selection::NotModified
        );
        assert_eq!(
            get(&[("if-modified-since", "Sat, 21 Nov 2026 00:00:00 GMT")]),
            Selection::Whole
        );
        assert_eq!(get(&[("if-modified-since", "not a date")]), Selection::Whole);
        assert_eq!(get(&[("if-none-match", "\"abc\"")]), Selection::NotModified);
        assert_eq!(
            get(&[("if-none-match", "W/\"abc\", \"x\"")]),
            Selection::NotModified
        );
        assert_eq!(get(&[("if-none-match", "*")]), Selection::NotModified);
        assert_eq!(
            get(&[("if-none-match", "\"zzz\""), ("if-modified-since", LM)]),
            Selection::Whole,
            "If-None-Match takes precedence"
        );
        assert_eq!(
            sel(Method::GET, &[("if-none-match", "\"abc\"")], None),
            Selection::Whole
        );
    }

    #[test]
    fn head_ignores_range() {
        assert_eq!(
            sel(Method::HEAD, &[("range", "bytes=0-9")], None),
            Selection::Whole
        );
        assert_eq!(
            sel(Method::HEAD, &[("if-modified-since", LM)], None),
            Selection::NotModified
        );
    }
}
