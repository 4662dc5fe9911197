//! Fuzz target: `request::classify`, then `RemapTable::resolve` and
//! `CacheKey::new` as the service does, with the embedded configuration
//! (its remaps and mirror lists) plus local directories, Cache-Control,
//! `DontCacheRequested`, the bugs.debian.org forwarding and extra ports.
//!
//! Input: three lines, the method, the request target and the
//! `Cache-Control` value (absent when there is no third line). Invalid
//! UTF-8 is replaced.
//!
//! Invariants: classification is deterministic; no file request, local
//! directory path or cache location climbs (`..`), holds a NUL, a control
//! byte or a backslash, or lands on a reserved `_` name or an absolute
//! path; a file request's upstream form, sent back through the classifier
//! (a debcache behind another), names the same file.

use std::sync::OnceLock;

use debcache::cache::CacheKey;
use debcache::config::{load, ConfigDir, Requests};
use debcache::remap::RemapTable;
use debcache::request::{classify, FileRequest, Reject, RequestLine, Target};
use debcache::url::Scheme;
use http::Method;

/// Settings beyond the embedded defaults, so that every branch of the
/// classifier is reachable.
const OVERRIDES: &[&str] = &[
    "AllowUserPorts=80 443 3142 8080",
    "LocalDirs=acng-doc /usr/share/doc/apt-cacher-ng",
    "ForwardBtsSoap=1",
    "PermitCacheControl=no-cache no-store",
    r"DontCacheRequested=\.iso$",
];

struct Fixture {
    requests: Requests,
    remap: RemapTable,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let words: Vec<String> = OVERRIDES.iter().map(|s| s.to_string()).collect();
        let loaded = load(ConfigDir::Embedded, &words);
        let Some(config) = loaded.config else {
            panic!("the fuzz configuration does not load: {:?}", loaded.diagnostics);
        };
        let remap = RemapTable::new(&config.remaps);
        Fixture {
            requests: config.requests,
            remap,
        }
    })
}

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.splitn(3, '\n');
    let method = fields.next().unwrap_or_default();
    let target = fields.next().unwrap_or_default();
    let cache_control = fields.next();
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let f = fixture();
    let req = RequestLine {
        method: &method,
        target,
        cache_control,
        tracing: false,
    };
    let got = classify(req, &f.requests, &f.remap);
    assert_eq!(
        got,
        classify(req, &f.requests, &f.remap),
        "not deterministic: {target:?}"
    );
    let Ok(t) = got else {
        if let Err(Reject::Port(port)) = got {
            assert!(!f.requests.allow_user_ports.allows(port), "{target:?}");
        }
        return;
    };
    match &t {
        Target::LocalDir { name, path } => {
            assert!(f.requests.local_dirs.contains_key(name), "{t:?}");
            // Empty: the directory itself, named without its slash.
            assert!(path.is_empty() || path.starts_with('/'), "{t:?}");
            safe_path(path, &t);
        }
        Target::Connect { host, port } => assert!(!host.is_empty() && *port > 0, "{t:?}"),
        Target::BtsSoap { location } => {
            assert!(location.starts_with("https://bugs.debian.org:443/"), "{t:?}")
        }
        _ => {}
    }
    if let Some(file) = t.file() {
        check_file(file, &t, f);
        upstream_form_names_the_same_file(&method, cache_control, &t, file, f);
    }
}

fn check_file(file: &FileRequest, t: &Target, f: &Fixture) {
    let url = &file.url;
    assert!(url.path.starts_with('/'), "{t:?}");
    safe_path(&url.path, t);
    let https = matches!(t, Target::HttpsProxy(_) | Target::HttpsPath(_));
    assert_eq!(url.scheme == Scheme::Https, https, "{t:?}");

    let resolved = f.remap.resolve(url);
    let repo = resolved.repo.as_str();
    assert!(
        !repo.is_empty() && !repo.contains('/') && !repo.starts_with(['_', '.']),
        "{t:?} → repository {repo:?}"
    );
    assert!(
        !resolved.rel_path.starts_with('/'),
        "{t:?} → {:?}",
        resolved.rel_path
    );
    safe_path(&resolved.rel_path, t);
    assert!(!resolved.backends.is_empty(), "{t:?}");
    if let Ok(key) = CacheKey::new(repo, &resolved.rel_path) {
        let key = key.as_str();
        assert!(!key.starts_with(['/', '_']), "{t:?} → {key:?}");
        safe_path(key, t);
    }
}

/// No `..` component, no NUL or other control byte, no backslash.
fn safe_path(path: &str, t: &Target) {
    assert!(
        !path.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\'),
        "{t:?}: control byte or backslash in {path:?}"
    );
    assert!(!path.split('/').any(|c| c == ".."), "{t:?}: `..` in {path:?}");
}

/// The request debcache sends upstream for a file (absolute form, the path
/// as `encoded_path` writes it), classified again, is the same file: a
/// debcache behind another caches it under the same name.
fn upstream_form_names_the_same_file(
    method: &Method,
    cache_control: Option<&str>,
    t: &Target,
    file: &FileRequest,
    f: &Fixture,
) {
    let url = &file.url;
    let prefix = match url.scheme {
        Scheme::Http => "http://",
        Scheme::Https => "http://HTTPS///",
    };
    let again = format!("{prefix}{}{}", url.authority(), url.encoded_path());
    let req = RequestLine {
        method,
        target: &again,
        cache_control,
        tracing: false,
    };
    let second = classify(req, &f.requests, &f.remap);
    let Some(other) = second.as_ref().ok().and_then(Target::file) else {
        panic!("{t:?} sent on as {again:?} gives {second:?}");
    };
    let mut expected = file.clone();
    expected.url.credentials = None;
    assert_eq!(other, &expected, "{t:?} sent on as {again:?}");
}
