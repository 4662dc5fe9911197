//! The classifier, table-driven: every request form and every rejection.

use super::*;
use crate::config::{load, ConfigDir};

struct Fixture {
    requests: Requests,
    remap: RemapTable,
}

fn fixture(overrides: &[&str]) -> Fixture {
    let words: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let config = load(ConfigDir::Embedded, &words).config.unwrap();
    let remap = RemapTable::new(&config.remaps);
    Fixture {
        requests: config.requests,
        remap,
    }
}

impl Fixture {
    fn classify(&self, method: &str, target: &str) -> Result<Target, Reject> {
        self.classify_cc(method, target, None)
    }

    fn classify_cc(&self, method: &str, target: &str, cc: Option<&str>) -> Result<Target, Reject> {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let req = RequestLine {
            method: &method,
            target,
            cache_control: cc,
            tracing: false,
        };
        classify(req, &self.requests, &self.remap)
    }

    fn file(&self, target: &str) -> FileRequest {
        self.classify("GET", target).unwrap().file().unwrap().clone()
    }
}

/// `(form, scheme, host, port, path)` of a classified file request.
fn shape(t: &Target) -> (&'static str, String) {
    let form = match t {
        Target::Proxy(_) => "proxy",
        Target::Path(_) => "path",
        Target::Alias(_) => "alias",
        Target::HttpsProxy(_) => "https-proxy",
        Target::HttpsPath(_) => "https-path",
        other => panic!("not a file request: {other:?}"),
    };
    (form, t.file().unwrap().url.to_string())
}

#[test]
fn every_file_request_form() {
    let f = fixture(&["AllowUserPorts=80 8080"]);
    let cases = [
        (
            "http://deb.debian.org/debian/dists/bookworm/InRelease",
            "proxy",
            "http://deb.debian.org/debian/dists/bookworm/InRelease",
        ),
        (
            "HTTP://Deb.Debian.org/debian/pool/a.deb",
            "proxy",
            "http://Deb.Debian.org/debian/pool/a.deb",
        ),
        (
            "/deb.debian.org/debian/dists/bookworm/InRelease",
            "path",
            "http://deb.debian.org/debian/dists/bookworm/InRelease",
        ),
        (
            "/mirror.lan:8080/debian/pool/a.deb",
            "path",
            "http://mirror.lan:8080/debian/pool/a.deb",
        ),
        (
            "/debian/dists/bookworm/InRelease",
            "alias",
            "http://debian/dists/bookworm/InRelease",
        ),
        (
            "/debian-security/dists/bookworm-security/InRelease",
            "alias",
            "http://debian-security/dists/bookworm-security/InRelease",
        ),
        (
            "/debrep/dists/bookworm/InRelease",
            "alias",
            "http://debrep/dists/bookworm/InRelease",
        ),
        (
            "http://HTTPS///packages.example.com/debian/dists/stable/InRelease",
            "https-proxy",
            "https://packages.example.com/debian/dists/stable/InRelease",
        ),
        (
            "http://https///packages.example.com/debian/pool/a.deb",
            "https-proxy",
            "https://packages.example.com/debian/pool/a.deb",
        ),
        (
            "https://packages.example.com/debian/pool/a.deb",
            "https-proxy",
            "https://packages.example.com/debian/pool/a.deb",
        ),
        (
            "/HTTPS///packages.example.com/debian/dists/stable/InRelease",
            "https-path",
            "https://packages.example.com/debian/dists/stable/InRelease",
        ),
        (
            "/HTTPS///packages.example.com:8443/debian/pool/a.deb",
            "https-path",
            "https://packages.example.com:8443/debian/pool/a.deb",
        ),
    ];
    let f8443 = fixture(&["AllowUserPorts=8443"]);
    for (target, form, url) in cases {
        let f = if target.contains(":8443") { &f8443 } else { &f };
        let t = f
            .classify("GET", target)
            .unwrap_or_else(|e| panic!("{target}: {e:?}"));
        assert_eq!(shape(&t), (form, url.to_string()), "{target}");
        assert_eq!(
            f.classify("HEAD", target).map(|t| shape(&t)),
            Ok((form, url.to_string()))
        );
    }
}

#[test]
fn percent_encoding_is_decoded_once() {
    let f = fixture(&[]);
    assert_eq!(
        f.file("/deb.debian.org/debian/pool/main/g/gcc/g%2B%2B_12_amd64.deb")
            .url
            .path,
        "/debian/pool/main/g/gcc/g++_12_amd64.deb"
    );
    assert_eq!(
        f.file("/deb.debian.org/debian/pool/x_1%3a2.0~rc1_amd64.deb")
            .url
            .path,
        "/debian/pool/x_1:2.0~rc1_amd64.deb"
    );
    assert_eq!(
        f.file("/deb.debian.org/debian/pool/a%20b_1.0_amd64.deb").url.path,
        "/debian/pool/a b_1.0_amd64.deb"
    );
    assert_eq!(
        f.file("%2Fdeb.debian.org/debian/pool/a.deb").url.host,
        "deb.debian.org"
    );
    assert_eq!(
        f.file("/deb.debian.org/debian/pool/%zz.deb").url.path,
        "/debian/pool/%zz.deb"
    );
}

#[test]
fn double_slashes_collapse() {
    let f = fixture(&[]);
    assert_eq!(
        f.file("/deb.debian.org//debian///pool/a.deb").url.path,
        "/debian/pool/a.deb"
    );
    assert_eq!(
        f.file("http://deb.debian.org//debian//dists/x/Release").url.path,
        "/debian/dists/x/Release"
    );
}

#[test]
fn a_dot_segment_is_normalised_away_not_refused() {
    let f = fixture(&[]);
    for target in [
        "/deb.debian.org/debian/pool/./main/a.deb",
        "/deb.debian.org/debian/pool/%2e/main/a.deb",
        "/deb.debian.org/./debian/pool/main/./a.deb",
        "http://deb.debian.org/debian/./pool/main/a.deb",
    ] {
        assert_eq!(f.file(target).url.path, "/debian/pool/main/a.deb", "{target}");
    }
    assert_eq!(
        f.classify("GET", "/deb.debian.org/debian/./../pool/a.deb"),
        Err(Reject::Forbidden),
        "`..` stays refused"
    );
}

#[test]
fn local_pages() {
    let f = fixture(&["LocalDirs=acng-doc /usr/share/doc/apt-cacher-ng"]);
    assert_eq!(f.classify("GET", "/"), Ok(Target::Help));
    assert_eq!(f.classify("GET", "//"), Ok(Target::Help));
    assert_eq!(f.classify("GET", "/?x=1"), Ok(Target::Help));
    assert_eq!(
        f.classify("GET", "/acng-report.html"),
        Ok(Target::Report { query: None })
    );
    assert_eq!(
        f.classify("GET", "/acng-report.html?doCount=Count+Data"),
        Ok(Target::Report {
            query: Some("doCount=Count+Data".into())
        })
    );
    assert_eq!(f.classify("GET", "/style.css"), Ok(Target::Style));
    assert_eq!(f.classify("GET", "/metrics"), Ok(Target::Metrics));
    assert_eq!(f.classify("GET", "/favicon.ico"), Ok(Target::Icon));
    assert_eq!(f.classify("GET", "/health"), Ok(Target::Health));
    // Only addressed to the daemon itself: a proxy request for a host's
    // /metrics is for that host.
    assert!(f.classify("GET", "http://metrics.example/metrics").is_err());
    assert_eq!(
        f.classify("GET", "/acng-doc/html/index.html"),
        Ok(Target::LocalDir {
            name: "acng-doc".into(),
            path: "/html/index.html".into()
        })
    );
    assert_eq!(
        f.classify("GET", "http://acng-doc/README"),
        Ok(Target::LocalDir {
            name: "acng-doc".into(),
            path: "/README".into()
        })
    );
    let doc = |path: &str| {
        Ok(Target::LocalDir {
            name: "acng-doc".into(),
            path: path.into(),
        })
    };
    assert_eq!(f.classify("GET", "/acng-doc"), doc(""));
    assert_eq!(f.classify("GET", "/acng-doc?x=1"), doc(""));
    assert_eq!(f.classify("GET", "/acng-doc/"), doc("/"));
    assert_eq!(
        f.classify("HEAD", "/acng-doc//html/./a.html"),
        doc("/html/a.html")
    );
    assert_eq!(f.classify("GET", "http://acng-doc"), doc("/"));
    assert_eq!(
        f.classify("GET", "/acng-doc/../etc/passwd"),
        Err(Reject::Forbidden)
    );
    assert_eq!(
        f.classify("GET", "/acng-doc/%2e%2e/etc/passwd"),
        Err(Reject::Forbidden)
    );
    // GET and HEAD only: a local directory is read-only.
    for method in ["PUT", "DELETE", "POST", "OPTIONS"] {
        assert!(
            matches!(f.classify(method, "/acng-doc/README"), Err(Reject::Method(_))),
            "{method}"
        );
    }
    // Proxy style does not reach the report page (spec §2.5).
    assert_eq!(
        f.classify("GET", "http://cache/acng-report.html"),
        Err(Reject::Forbidden)
    );
}

#[test]
fn report_page_can_be_renamed_or_disabled() {
    let f = fixture(&["ReportPage=/stats.html"]);
    assert_eq!(
        f.classify("GET", "/stats.html"),
        Ok(Target::Report { query: None })
    );
    let f = fixture(&["ReportPage="]);
    assert!(
        matches!(f.classify("GET", "/acng-report.html"), Ok(Target::Path(_))),
        "a host name then"
    );
}

#[test]
fn rejections_and_their_reasons() {
    let f = fixture(&[]);
    let cases: &[(&str, &str, Reject)] = &[
        (
            "GET",
            "/deb.debian.org/debian/../../etc/passwd",
            Reject::Forbidden,
        ),
        (
            "GET",
            "/deb.debian.org/debian/%2e%2e/%2e%2e/etc/passwd",
            Reject::Forbidden,
        ),
        (
            "GET",
            "/deb.debian.org/debian/%252e%252e/x.deb",
            Reject::Forbidden,
        ),
        ("GET", "/deb.debian.org/debian/pool/a%00.deb", Reject::Forbidden),
        ("GET", "/deb.debian.org/debian\\pool\\a.deb", Reject::Forbidden),
        ("GET", "/_xstore/qstats/i", Reject::Forbidden),
        ("GET", "/_debcache/lock", Reject::Forbidden),
        ("GET", "http://_internal/x.deb", Reject::Forbidden),
        (
            "GET",
            "/deb.debian.org/debian/pool/_actmp/a.deb",
            Reject::Forbidden,
        ),
        ("GET", "/deb.debian.org/debian/index.html", Reject::Forbidden),
        (
            "GET",
            "/deb.debian.org/debian/dists/bookworm/Release?x=1",
            Reject::Forbidden,
        ),
        (
            "GET",
            "http://deb.debian.org:3142/debian/pool/a.deb",
            Reject::Port(3142),
        ),
        (
            "GET",
            "/deb.debian.org:8080/debian/pool/a.deb",
            Reject::Port(8080),
        ),
        (
            "GET",
            "http://HTTPS///packages.example.com:8443/pool/a.deb",
            Reject::Port(8443),
        ),
        (
            "GET",
            "ftp://deb.debian.org/debian/pool/a.deb",
            Reject::BadUrl(UrlError::UnsupportedScheme("ftp".into())),
        ),
        (
            "GET",
            "/deb.debian.org:99999/pool/a.deb",
            Reject::BadUrl(UrlError::BadPort("99999".into())),
        ),
        (
            "PUT",
            "/deb.debian.org/debian/pool/a.deb",
            Reject::Method(Method::PUT),
        ),
        (
            "DELETE",
            "/deb.debian.org/debian/pool/a.deb",
            Reject::Method(Method::DELETE),
        ),
        ("OPTIONS", "*", Reject::Method(Method::OPTIONS)),
        (
            "POST",
            "/deb.debian.org/debian/pool/a.deb",
            Reject::Method(Method::POST),
        ),
    ];
    for (method, target, want) in cases {
        assert_eq!(
            &f.classify(method, target),
            &Err(want.clone()),
            "{method} {target}"
        );
    }
}

#[test]
fn allowed_ports_follow_allow_user_ports() {
    assert!(fixture(&["AllowUserPorts=8080"])
        .classify("GET", "http://h:8080/d/pool/a.deb")
        .is_ok());
    assert_eq!(
        fixture(&["AllowUserPorts=8080"]).classify("GET", "http://h/d/pool/a.deb"),
        Err(Reject::Port(80))
    );
    assert!(fixture(&["AllowUserPorts=0"])
        .classify("GET", "http://h:1234/d/pool/a.deb")
        .is_ok());
    // HTTPS/// implies 443 even when AllowUserPorts leaves it out (spec §13 #1).
    assert!(fixture(&[]).classify("GET", "/HTTPS///h/d/pool/a.deb").is_ok());
}

#[test]
fn file_kinds_and_pass_through() {
    let f = fixture(&[r"DontCacheRequested=\.iso$ ^http://private\."]);
    assert_eq!(
        f.file("/deb.debian.org/debian/dists/bookworm/InRelease").kind,
        FileKind::Volatile
    );
    assert_eq!(f.file("/deb.debian.org/debian/pool/a.deb").kind, FileKind::Solid);
    let dir = f.file("/deb.debian.org/debian/");
    assert!(dir.pass_through && dir.kind == FileKind::Solid);
    assert!(f.file("http://private.lan/debian/pool/a.deb").pass_through);
    assert!(!f.file("http://public.lan/debian/pool/a.deb").pass_through);
}

#[test]
fn cache_control_tokens_anywhere_in_the_header() {
    let f = fixture(&[]);
    let file = |cc| {
        f.classify_cc("GET", "/h/debian/pool/a.deb", Some(cc))
            .unwrap()
            .file()
            .unwrap()
            .clone()
    };
    assert!(
        !file("max-age=0").no_cache,
        "apt always sends max-age=0; it means nothing here"
    );
    assert!(file("no-cache, max-age=0").no_cache);
    assert!(file("max-age=0, No-Cache").no_cache);
    assert!(file("no-store").pass_through);
    let strict = fixture(&["PermitCacheControl="]);
    let ignored = strict
        .classify_cc("GET", "/h/debian/pool/a.deb", Some("no-cache, no-store"))
        .unwrap();
    assert!(!ignored.file().unwrap().no_cache && !ignored.file().unwrap().pass_through);
}

#[test]
fn connect_and_bts_soap() {
    let f = fixture(&[]);
    assert_eq!(
        f.classify("CONNECT", "bugs.debian.org:443"),
        Ok(Target::Connect {
            host: "bugs.debian.org".into(),
            port: 443
        })
    );
    assert!(f.classify("CONNECT", "bugs.debian.org:443/x").is_err());
    assert_eq!(
        f.classify("POST", "http://bugs.debian.org:80/cgi-bin/soap.cgi"),
        Ok(Target::BtsSoap {
            location: "https://bugs.debian.org:443/cgi-bin/soap.cgi".into()
        })
    );
    let managed = fixture(&["ForceManaged=1"]);
    assert_eq!(
        managed.classify("POST", "http://bugs.debian.org:80/cgi-bin/soap.cgi"),
        Err(Reject::Method(Method::POST))
    );
}

#[test]
fn host_header_plays_no_part() {
    // The classifier never sees it: a proxy-style target wins over any Host.
    let f = fixture(&[]);
    assert_eq!(
        shape(
            &f.classify("GET", "http://deb.debian.org/debian/pool/a.deb")
                .unwrap()
        )
        .0,
        "proxy"
    );
}
