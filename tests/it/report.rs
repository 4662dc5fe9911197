//! The report page and its JSON view: the numbers after real traffic, and
//! how they survive a restart or are rebuilt from the transfer log.

use crate::support::http::{get, Conn};
use crate::support::origin::Origin;
use crate::support::{wait_for, Daemon, Setup};

const PATH: &str = "/debian/pool/main/h/hello/hello_1.0_all.deb";
const URL: &str = "/m/pool/main/h/hello/hello_1.0_all.deb";

fn json(daemon: &Daemon) -> serde_json::Value {
    let r = get(daemon.addr, "/acng-report.html?format=json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    serde_json::from_str(&r.text()).expect("JSON")
}

/// A miss, then a hit, of one file.
fn traffic(daemon: &Daemon) {
    for _ in 0..2 {
        assert_eq!(Conn::open(daemon.addr).get(URL, &[]).status, 200);
        daemon.downloads_done();
    }
    wait_for("the records", || json(daemon)["since_start"]["requests"] == 2);
}

#[test]
fn the_page_shows_what_the_cache_did() {
    let origin = Origin::start();
    origin.put(PATH, vec![1u8; 50_000]);
    let daemon = Daemon::start(&format!("Remap-m: /m ; {}\n", origin.url("/debian")));
    traffic(&daemon);
    let page = get(daemon.addr, "/acng-report.html");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let text = page.text();
    for expected in [
        "Healthy.",
        "Last 24 hours",
        "Last 7 days",
        "Since start",
        "<svg",
        "1 (50.0 %)",
        ">m<",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    let v = json(&daemon);
    let t = &v["since_start"];
    assert_eq!((t["misses"].as_u64(), t["hits"].as_u64()), (Some(1), Some(1)));
    assert!(t["bytes_fetched"].as_u64().unwrap() >= 50_000);
    assert_eq!(v["repositories"]["m"]["requests"], 2);
    assert_eq!(v["last_24_hours"], v["since_start"]);
}

#[test]
fn the_week_survives_a_restart_and_is_rebuilt_from_the_log_without_its_file() {
    let origin = Origin::start();
    origin.put(PATH, vec![2u8; 10_000]);
    let conf = format!("Remap-m: /m ; {}\n", origin.url("/debian"));
    let mut first = Daemon::start(&conf);
    traffic(&first);
    assert!(first.stop().unwrap().success());
    let cache = first.cache();
    assert!(cache.join("_debcache/stats").exists(), "saved at shutdown");

    let log_dir = format!("LogDir={}", first.log_dir().display());
    let start = |args: &[&str]| {
        Daemon::start_with(Setup {
            conf: &conf,
            cache: Some(&cache),
            args,
            ..Setup::default()
        })
    };
    let mut second = start(&[&log_dir]);
    let v = json(&second);
    assert_eq!(v["since_start"]["requests"], 0, "since start is this process");
    assert_eq!(v["last_24_hours"]["requests"], 2);
    assert_eq!(v["last_24_hours"]["misses"], 1);
    assert!(second.stop().unwrap().success());

    // Without the file, the transfer log says the same (acng's reckoning:
    // the I line is the miss, the O line it does not exceed the hit).
    std::fs::remove_file(cache.join("_debcache/stats")).unwrap();
    let third = start(&[&log_dir]);
    let day = &json(&third)["last_24_hours"];
    assert_eq!(
        (day["misses"].as_u64(), day["hits"].as_u64()),
        (Some(1), Some(1)),
        "{day}"
    );
    wait_for("the rebuild logged", || {
        third.stderr().contains("statistics rebuilt from")
    });
}

#[test]
fn statistics_can_be_reset() {
    let origin = Origin::start();
    origin.put(PATH, vec![3u8; 1000]);
    let daemon = Daemon::start(&format!("Remap-m: /m ; {}\n", origin.url("/debian")));
    traffic(&daemon);
    let reset = get(daemon.addr, "/acng-report.html?doResetStats=Reset");
    assert_eq!(reset.status, 200);
    assert!(reset.text().contains("The statistics were reset."));
    let v = json(&daemon);
    assert_eq!(
        (
            v["since_start"]["requests"].as_u64(),
            v["last_24_hours"]["requests"].as_u64()
        ),
        (Some(0), Some(0))
    );
}

#[test]
fn pattern_tracing_serves_unknown_types_and_lists_them() {
    let origin = Origin::start();
    origin.put("/debian/odd/thing.xyz", b"unknown kind".to_vec());
    let daemon = Daemon::start(&format!("Remap-m: /m ; {}\n", origin.url("/debian")));
    let odd = "/m/odd/thing.xyz";
    assert_eq!(get(daemon.addr, odd).status, 403, "no pattern knows it");

    let page = get(daemon.addr, "/acng-report.html?doTraceStart=Start").text();
    assert!(page.contains("Pattern tracing is on"), "{page}");
    let r = get(daemon.addr, odd);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"unknown kind"[..]));
    let page = get(daemon.addr, "/acng-report.html").text();
    assert!(page.contains("odd/thing.xyz</code>"), "listed:\n{page}");

    let page = get(daemon.addr, "/acng-report.html?doTraceStop=Stop").text();
    assert!(page.contains("Pattern tracing is off."), "{page}");
    assert_eq!(get(daemon.addr, odd).status, 403, "refused again");
    assert!(
        page.contains("odd/thing.xyz</code>"),
        "the list stays until cleared"
    );
    let page = get(daemon.addr, "/acng-report.html?doTraceClear=Clear").text();
    assert!(!page.contains("odd/thing.xyz"), "{page}");
}

#[test]
fn patrace_starts_the_trace_with_the_daemon() {
    let origin = Origin::start();
    origin.put("/debian/odd/thing.xyz", b"x".to_vec());
    let daemon = Daemon::start(&format!("Patrace: 1\nRemap-m: /m ; {}\n", origin.url("/debian")));
    assert_eq!(get(daemon.addr, "/m/odd/thing.xyz").status, 200);
    assert!(get(daemon.addr, "/acng-report.html")
        .text()
        .contains("Stop tracing"));
}
