//! Decoding a request target once and refusing what must never reach the
//! cache (spec §2.4 steps 1–2): traversal in any encoding, NUL and control
//! bytes, backslashes, apt-cacher-ng's internal names. Everything after this
//! works on the decoded text, and [`normalise`] gives each file one spelling.

use std::borrow::Cow;

use crate::url::percent_decode;

/// Why a decoded target is refused; all of them are acng's
/// `403 Forbidden file type or location`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsafe {
    /// `..` followed by `/`, `%` or the end, after one or two decodings.
    Traversal,
    /// A byte below 0x20, DEL, or a backslash.
    ControlOrBackslash,
    /// Not UTF-8 once decoded.
    NotUtf8,
    /// `/_…` at the start or `/_actmp` anywhere: apt-cacher-ng's own files.
    Reserved,
}

/// Percent-decodes the whole target and checks it.
pub fn decode(target: &str) -> Result<String, Unsafe> {
    let once = percent_decode(target.as_bytes());
    if has_traversal(&once) {
        return Err(Unsafe::Traversal);
    }
    if once.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\\') {
        return Err(Unsafe::ControlOrBackslash);
    }
    // A second decoding must not reveal what the first one would have
    // refused: `%252e%252e%252f` is `../` to any layer that decodes again.
    if once.contains(&b'%') {
        let twice = percent_decode(&once);
        if has_traversal(&twice) || twice.iter().any(|&b| b == 0 || b == b'\\') {
            return Err(Unsafe::Traversal);
        }
    }
    let text = String::from_utf8(once).map_err(|_| Unsafe::NotUtf8)?;
    if text.starts_with("/_") || text.contains("/_actmp") {
        return Err(Unsafe::Reserved);
    }
    Ok(text)
}

/// acng's "nasty path" pattern `\.\.($|%|/)`, unanchored.
fn has_traversal(s: &[u8]) -> bool {
    s.windows(2)
        .enumerate()
        .any(|(i, w)| w == b".." && matches!(s.get(i + 2), None | Some(b'/') | Some(b'%')))
}

/// One spelling per file, so that one file has one cache key and one
/// upstream URL: runs of slashes collapse (spec §2.4 step 5) and `.`
/// segments go (RFC 3986 §5.2.4; `..` was refused by [`decode`]), in the
/// path before any query. `/a//./b/.` → `/a/b/`. `path` starts with `/`.
pub fn normalise(path: &str) -> Cow<'_, str> {
    let (dirs, query) = path.split_at(path.find('?').unwrap_or(path.len()));
    if !dirs.contains("//") && !dirs.contains("/./") && !dirs.ends_with("/.") {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    // Whether the last segment seen names a directory: empty, or `.`.
    let mut directory = true;
    for segment in dirs.split('/') {
        directory = segment.is_empty() || segment == ".";
        if !directory {
            out.push('/');
            out.push_str(segment);
        }
    }
    if directory {
        out.push('/');
    }
    out.push_str(query);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_encoded_and_double_encoded_traversal_is_refused() {
        for t in [
            "/deb.debian.org/../etc/passwd",
            "/deb.debian.org/debian/..",
            "/x/..%2fetc",
            "/x/%2e%2e/etc",
            "/x/%2E%2E%2Fetc",
            "/x/%252e%252e%252fetc",
            "/x/.%2e/etc",
            "http://host/a/../../b",
        ] {
            assert_eq!(decode(t), Err(Unsafe::Traversal), "{t}");
        }
    }

    #[test]
    fn dots_that_do_not_climb_are_fine() {
        for t in ["/h/pool/a..b.deb", "/h/pool/x...deb", "/h/..deb"] {
            assert!(decode(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn control_bytes_and_backslashes_are_refused() {
        for t in [
            "/h/a%00b",
            "/h/a%0ab",
            "/h/a%7fb",
            "/h/a\\b",
            "/h/a%5cb",
            "/h/a%255cb",
        ] {
            assert!(decode(t).is_err(), "{t}");
        }
    }

    #[test]
    fn internal_names_are_refused() {
        assert_eq!(decode("/_xstore/qstats"), Err(Unsafe::Reserved));
        assert_eq!(decode("/%5fdebcache/lock"), Err(Unsafe::Reserved));
        assert_eq!(decode("/h/x/_actmp/y"), Err(Unsafe::Reserved));
        assert!(decode("/h/_underscore_file.deb").is_ok());
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert_eq!(decode("/h/%ff%fe"), Err(Unsafe::NotUtf8));
        assert_eq!(decode("/h/caf%c3%a9.deb").unwrap(), "/h/café.deb");
    }

    #[test]
    fn dot_segments_and_slash_runs_normalise_away() {
        let cases = [
            (
                "/debian/pool/main/./h/hello/a.deb",
                "/debian/pool/main/h/hello/a.deb",
            ),
            ("/./debian/./././pool/a.deb", "/debian/pool/a.deb"),
            ("/debian//pool///a.deb", "/debian/pool/a.deb"),
            ("/debian/.//./pool/a.deb", "/debian/pool/a.deb"),
            ("/debian/pool/.", "/debian/pool/"),
            ("/debian/pool/./", "/debian/pool/"),
            ("/.", "/"),
            ("/a.deb?x=/./y", "/a.deb?x=/./y"),
            ("/d/./a.deb?x=//y", "/d/a.deb?x=//y"),
        ];
        for (path, want) in cases {
            assert_eq!(normalise(path), want, "{path}");
        }
        for path in [
            "/debian/pool/a.deb",
            "/h/..deb",
            "/h/.hidden/x.deb",
            "/h/a./b.deb",
            "/",
        ] {
            assert!(matches!(normalise(path), Cow::Borrowed(p) if p == path), "{path}");
        }
    }
}
