//! `/metrics` and `/health`: what monitoring systems and load balancers
//! read, checked with a real exposition-format parser.

use std::collections::HashMap;
use std::thread;

use crate::support::http::{get, Conn};
use crate::support::origin::{Fault, Origin};
use crate::support::Daemon;

const PATH: &str = "/debian/pool/main/h/hello/hello_1.0_all.deb";
const URL: &str = "/m/pool/main/h/hello/hello_1.0_all.deb";

/// The samples of a scrape, by `name{label=value,...}` with labels sorted.
fn scrape(daemon: &Daemon) -> HashMap<String, f64> {
    let r = get(daemon.addr, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let lines = r.text().lines().map(|l| Ok(l.to_string())).collect::<Vec<_>>();
    let parsed = prometheus_parse::Scrape::parse(lines.into_iter()).expect("a valid exposition");
    for family in [
        "debcache_requests_total",
        "debcache_fetched_bytes_total",
        "debcache_healthy",
    ] {
        assert!(parsed.docs.contains_key(family), "{family} has no HELP");
    }
    parsed
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("{}: unexpected {other:?}", s.metric),
            };
            (format!("{}{{{}}}", s.metric, labels.join(",")), value)
        })
        .collect()
}

#[test]
fn metrics_count_a_miss_a_hit_and_a_coalesced_follower() {
    let origin = Origin::start();
    let body = vec![7u8; 200_000];
    origin.put(PATH, body.clone());
    let gate = origin.fault(PATH, Fault::PauseAt(1000), 1).unwrap();
    let daemon = Daemon::start(&format!("Remap-m: /m ; {}\n", origin.url("/debian")));
    // Two clients at once: one download, one follower.
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let addr = daemon.addr;
            thread::spawn(move || Conn::open(addr).get(URL, &[]).body.len())
        })
        .collect();
    gate.wait_reached();
    crate::support::wait_for("the follower", || {
        scrape(&daemon).get("debcache_responses_in_progress{}") == Some(&2.0)
    });
    gate.release();
    for c in clients {
        assert_eq!(c.join().unwrap(), body.len());
    }
    // Once the download is committed, the next request is a hit (before,
    // it would join the download's flight, a coalesced follower).
    crate::support::wait_for("the commit", || {
        scrape(&daemon).get("debcache_downloads_in_progress{}") == Some(&0.0)
    });
    assert_eq!(
        Conn::open(daemon.addr).get(URL, &[]).body.len(),
        body.len(),
        "a hit"
    );
    // Each request is recorded once its response is finished, which may be
    // after the client has read it.
    crate::support::wait_for("the records", || {
        let m = scrape(&daemon);
        ["miss", "coalesced", "hit"].iter().all(|result| {
            m.get(&format!(
                "debcache_requests_total{{repository=m,result={result}}}"
            )) == Some(&1.0)
        })
    });
    let m = scrape(&daemon);
    for (result, n) in [("miss", 1.0), ("coalesced", 1.0), ("hit", 1.0), ("error", 0.0)] {
        assert_eq!(
            m[&format!("debcache_requests_total{{repository=m,result={result}}}")],
            n,
            "{result}"
        );
    }
    assert_eq!(m["debcache_requests_total{repository=other,result=miss}"], 0.0);
    assert!(m["debcache_fetched_bytes_total{repository=m}"] >= body.len() as f64);
    let sent = m["debcache_sent_bytes_total{repository=m}"];
    assert!(sent >= 3.0 * body.len() as f64, "{sent}");
    assert!(m["debcache_sent_from_cache_bytes_total{repository=m}"] >= 2.0 * body.len() as f64);
    assert_eq!(m["debcache_healthy{}"], 1.0);
    assert_eq!(origin.requests(PATH), 1);
}

#[test]
fn metrics_count_download_failures_by_class() {
    let daemon = Daemon::start("Remap-m: /m ; http://127.0.0.1:9/debian\nDlMaxRetries: 0\n");
    let r = Conn::open(daemon.addr).get(URL, &[]);
    assert_eq!(r.status, 503);
    // As above: the request's record may come after the client's answer.
    crate::support::wait_for("the failure and the request", || {
        let m = scrape(&daemon);
        m.get("debcache_download_failures_total{class=connect}") == Some(&1.0)
            && m.get("debcache_requests_total{repository=m,result=error}") == Some(&1.0)
    });
    assert_eq!(
        scrape(&daemon)["debcache_download_failures_total{class=tls}"],
        0.0
    );
}

#[test]
fn health_is_ok_until_the_cache_cannot_take_a_file() {
    let daemon = Daemon::start("");
    let r = get(daemon.addr, "/health");
    assert_eq!((r.status, r.text()), (200, "OK\n".to_string()));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Where new files are made, a file: whoever runs the test (root too)
    // can no longer create one there.
    let tmp = daemon.cache().join("_debcache/tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::write(&tmp, "in the way").unwrap();
    let r = get(daemon.addr, "/health");
    assert_eq!(r.status, 503);
    assert_eq!(r.reason, "Cache directory not writable");
    assert!(
        r.text().starts_with("the cache directory is not writable"),
        "{}",
        r.text()
    );
    assert_eq!(scrape(&daemon)["debcache_healthy{}"], 0.0);
    std::fs::remove_file(&tmp).unwrap();
    assert_eq!(get(daemon.addr, "/health").status, 200, "well again");
}
