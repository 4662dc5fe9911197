//! The gate in front of the report page's actions (spec §8.2, Decisions
//! "admin"): credentials when `AdminAuth` is set, this host only for
//! destructive actions when it is not, never a cross-site request.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::support::http::{Conn, Response};
use crate::support::{wait_for, Daemon};

const REALM: &str = "Basic realm=\"For login data, see AdminAuth in Apt-Cacher NG config files\"";
/// `admin:secret`, and the same user with another password.
const RIGHT: &str = "Basic YWRtaW46c2VjcmV0";
const WRONG: &str = "Basic YWRtaW46d3Jvbmc=";

fn get(daemon: &Daemon, target: &str, headers: &[(&str, &str)]) -> Response {
    Conn::open(daemon.addr).get(target, headers)
}

#[test]
fn admin_auth_guards_every_query_but_not_the_page() {
    let daemon = Daemon::start("AdminAuth: admin:secret");
    assert_eq!(get(&daemon, "/acng-report.html", &[]).status, 200);

    // A read-only view and a destructive action, both built.
    for query in ["format=json", "doResetStats=Reset"] {
        let target = format!("/acng-report.html?{query}");
        let asked = get(&daemon, &target, &[]);
        assert_eq!(
            (asked.status, asked.reason.as_str()),
            (401, "Not Authorized"),
            "{query}"
        );
        assert_eq!(asked.header("www-authenticate"), Some(REALM), "{query}");

        let admitted = get(&daemon, &target, &[("Authorization", RIGHT)]);
        assert_eq!(admitted.status, 200, "{query}");
        assert!(
            admitted.text().contains("since_start") || admitted.text().contains("debcache at"),
            "{query}"
        );

        let wrong = get(&daemon, &target, &[("Authorization", WRONG)]);
        assert_eq!(
            (wrong.status, wrong.reason.as_str()),
            (401, "Not Authorized"),
            "{query}"
        );
        assert_eq!(wrong.header("www-authenticate"), Some(REALM), "{query}");
    }
    wait_for("the wrong password in the log", || {
        daemon.stderr().contains("wrong AdminAuth credentials")
    });
}

#[test]
fn without_admin_auth_destructive_queries_are_for_this_host_only() {
    let daemon = Daemon::start("");
    let reset = "/acng-report.html?doResetStats=Reset";
    let forwarded = get(&daemon, reset, &[("X-Forwarded-For", "192.0.2.1")]);
    assert_eq!(
        (forwarded.status, forwarded.reason.as_str()),
        (403, "Set AdminAuth to run maintenance from another host")
    );
    assert!(forwarded.header("www-authenticate").is_none());

    let local = get(&daemon, reset, &[]);
    assert_eq!(local.status, 200, "loopback passes the gate");
    assert!(local.text().contains("The statistics were reset."));

    let read_only = get(
        &daemon,
        "/acng-report.html?format=json",
        &[("X-Forwarded-For", "192.0.2.1")],
    );
    assert_eq!(read_only.status, 200, "read-only views are for everyone");
}

#[test]
fn cross_site_queries_are_refused() {
    let daemon = Daemon::start("");
    let count = "/acng-report.html?format=json";
    for header in [
        ("Sec-Fetch-Site", "cross-site"),
        ("Origin", "http://evil.example"),
    ] {
        let r = get(&daemon, count, &[header]);
        assert_eq!(
            (r.status, r.reason.as_str()),
            (403, "Cross-site request refused"),
            "{header:?}"
        );
    }
    // The page's own forms: the client's Host is `test`.
    for header in [("Sec-Fetch-Site", "same-origin"), ("Origin", "http://test")] {
        assert_eq!(get(&daemon, count, &[header]).status, 200, "{header:?}");
    }
    let page = get(&daemon, "/acng-report.html", &[("Sec-Fetch-Site", "cross-site")]);
    assert_eq!(page.status, 200, "the page itself is readable from anywhere");
}

#[test]
fn the_unix_socket_counts_as_this_host_unless_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("debcache.sock");
    let _daemon = Daemon::start(&format!("SocketPath: {}", socket.display()));
    let status = |extra: &str| {
        let mut s = UnixStream::connect(&socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let request = format!(
            "GET / HTTP/1.0\r\nX-Original-Source: cron\r\n\r\n\
             GET /acng-report.html?doResetStats=Reset HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"
        );
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer.lines().next().unwrap_or_default().to_string()
    };
    assert_eq!(status(""), "HTTP/1.1 200 OK");
    assert_eq!(
        status("X-Forwarded-For: 192.0.2.1\r\n"),
        "HTTP/1.1 403 Set AdminAuth to run maintenance from another host"
    );
}
