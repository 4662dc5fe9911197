//! Fuzz target: `HttpUrl::parse`, and `resolve` for redirects.
//!
//! Input: the first line is a URL, the second (optional) a `Location`
//! value resolved against it. Invalid UTF-8 is replaced, as the bytes would
//! be by any caller that holds a `&str`.
//!
//! Invariants: a parsed URL keeps the promises of its type (host safe as a
//! directory name, port 1..=65535, path absolute); printing and parsing
//! again gives the same value; `masked()` names the same URL with the
//! password hidden; `authority()` and `encoded_path()` say the same thing
//! the fields do; a resolved redirect is itself such a URL and never takes
//! the base's credentials to another host.

use debcache::url::{percent_decode, HttpUrl};

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (first, reference) = match text.split_once('\n') {
        Some((a, b)) => (a, Some(b)),
        None => (&*text, None),
    };
    let Ok(url) = HttpUrl::parse(first) else {
        return;
    };
    check(&url);
    let Some(reference) = reference else {
        return;
    };
    check(&url.join_path(reference));
    let Ok(resolved) = url.resolve(reference) else {
        return;
    };
    check(&resolved);
    if (resolved.host.as_str(), resolved.port) != (url.host.as_str(), url.port) && url.credentials.is_some() {
        assert!(
            resolved.credentials.is_none() || reference.contains('@'),
            "{url:?} + {reference:?} → {resolved:?}: credentials went to another host"
        );
    }
}

/// Everything a parsed `HttpUrl` promises.
fn check(url: &HttpUrl) {
    let host = url.host.as_str();
    assert!(!host.is_empty(), "{url:?}");
    assert!(!host.starts_with('_') && !host.starts_with('.'), "{url:?}");
    assert!(!host.contains("..") && !host.contains('/'), "{url:?}");
    assert!(
        host.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b)),
        "{url:?}"
    );
    assert!(url.port > 0, "{url:?}");
    assert!(
        url.path.starts_with('/') && !url.path.starts_with("//"),
        "{url:?}"
    );

    let printed = url.to_string();
    let again = HttpUrl::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} of {url:?}: {e}"));
    assert_eq!(&again, url, "{printed:?} does not parse back");

    let masked = url.masked();
    let shown = HttpUrl::parse(&masked).unwrap_or_else(|e| panic!("{masked:?} of {url:?}: {e}"));
    assert_eq!(
        (shown.scheme, &shown.host, shown.port, &shown.path),
        (url.scheme, &url.host, url.port, &url.path),
        "{masked:?} names another URL than {url:?}"
    );
    match (&url.credentials, &shown.credentials) {
        (None, None) => assert_eq!(masked, printed),
        (Some(real), Some(hidden)) => {
            assert_eq!(hidden.user, real.user, "{masked:?}");
            assert_eq!(hidden.password, "***", "{masked:?} shows a password");
        }
        _ => panic!("{masked:?}: credentials appeared or vanished ({url:?})"),
    }

    let authority = url.authority();
    let bare = HttpUrl::parse(&format!("{}://{authority}", url.scheme.as_str()))
        .unwrap_or_else(|e| panic!("authority {authority:?}: {e}"));
    assert_eq!((&bare.host, bare.port), (&url.host, url.port), "{authority:?}");

    let encoded = url.encoded_path();
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/?&=%".contains(&b)),
        "{encoded:?}"
    );
    assert_eq!(
        percent_decode(encoded.as_bytes()),
        url.path.as_bytes(),
        "{encoded:?}"
    );
}
