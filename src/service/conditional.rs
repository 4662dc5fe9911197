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
/// Leniency where it cannot change what a client meant, as apt-cacher-ng
/// has it: blanks after `=` and around the numbers, empty list elements
/// (RFC 9110 §5.6.1.2), the unit in any case (§14.1), numbers past `u64`
/// read as "beyond the end". Anything else, and several ranges, gets the
/// whole file, which RFC 9110 allows for any Range.
fn parse_range(value: &str, len: u64) -> Selection {
    let Some((unit, set)) = value.split_once('=') else {
        return Selection::Whole;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return Selection::Whole;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return Selection::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Selection::Whole;
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match position(suffix) {
            Some(0) => Selection::Unsatisfiable,
            Some(n) if len > 0 => Selection::Part {
                start: len.saturating_sub(n),
                end: len,
            },
            Some(_) => Selection::Unsatisfiable,
            None => Selection::Whole,
        },
        (start, end) => {
            let Some(start) = position(start) else {
                return Selection::Whole;
            };
            let end = match end {
                "" => len,
                e => match position(e) {
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

/// A byte position: ASCII digits only (no sign, no blank inside), and
/// `u64::MAX` for any number too large to hold, which lies past every end.
fn position(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
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
    fn range_edge_cases_parse_as_apt_cacher_ng_and_rfc_9110_agree() {
        let whole = Selection::Whole;
        let cases = [
            // Blanks: acng accepts them after `=` and around the numbers.
            ("bytes= 0-9", part(0, 10)),
            ("bytes=\t0-9", part(0, 10)),
            ("bytes=0- 9", part(0, 10)),
            ("bytes=0 -9", part(0, 10)),
            ("bytes=0-9 ", part(0, 10)),
            (" bytes=0-9", part(0, 10)),
            ("bytes= -100", part(900, 1000)),
            ("bytes= 990- ", part(990, 1000)),
            // Not around `=`: the unit is a token glued to it.
            ("bytes = 0-9", whole),
            ("bytes =0-9", whole),
            // The unit is case-insensitive (RFC 9110 §14.1).
            ("Bytes=0-9", part(0, 10)),
            ("BYTES=0-9", part(0, 10)),
            // Empty list elements are ignored (RFC 9110 §5.6.1.2).
            ("bytes=0-9,", part(0, 10)),
            ("bytes=, 0-9 ,,", part(0, 10)),
            ("bytes=,", whole),
            ("bytes=", whole),
            // Several ranges: the whole file.
            ("bytes=0-9, 20-29", whole),
            ("bytes=0-9,-5", whole),
            // Numbers: digits only, huge ones past every end.
            ("bytes=+5-9", whole),
            ("bytes=5-+9", whole),
            ("bytes=0x10-", whole),
            ("bytes=1 0-20", whole),
            ("bytes=--5", whole),
            ("bytes=5--9", whole),
            ("bytes=0-99999999999999999999999", part(0, 1000)),
            ("bytes=99999999999999999999999-", Selection::Unsatisfiable),
            ("bytes=-99999999999999999999999", part(0, 1000)),
            ("bytes=0-18446744073709551615", part(0, 1000)),
            ("bytes=5-5", part(5, 6)),
            ("bytes=999-999", part(999, 1000)),
            ("bytes=0", whole),
            ("bytes", whole),
            ("0-9", whole),
            ("=0-9", whole),
        ];
        for (range, want) in cases {
            assert_eq!(get(&[("range", range)]), want, "{range:?}");
        }
    }

    #[test]
    fn an_empty_file_satisfies_no_range() {
        for range in ["bytes=0-", "bytes=0-0", "bytes=-1"] {
            assert_eq!(parse_range(range, 0), Selection::Unsatisfiable, "{range}");
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
