//! Maintenance tasks (spec §8.3): Count Objects streamed as it runs, one
//! task at a time with a second request following it, its Cancel link,
//! shutdown cutting it, its log file, and the admin gate in front of it.

use std::path::Path;

use crate::support::http::{dechunk, get, Conn, Response};
use crate::support::origin::Origin;
use crate::support::{acng_head, put, wait_for, Daemon};

const COUNT: &str = "/acng-report.html?doCount=Count+Objects";
const MARKER: &str = "41d_a6aeb8-26dfa";

fn json(daemon: &Daemon) -> serde_json::Value {
    let r = get(daemon.addr, "/acng-report.html?format=json");
    assert_eq!(r.status, 200);
    serde_json::from_str(&r.text()).expect("JSON")
}

/// A row of the count's table per repository.
fn row(repo: &str, complete: (u64, u64), partial: (u64, u64), heads: u64) -> String {
    let size = |n: u64| {
        let human = if n < 1024 {
            format!("{n} bytes")
        } else {
            format!("{:.1} KiB", n as f64 / 1024.0)
        };
        format!("<td title=\"{n} bytes\">{human}</td>")
    };
    format!(
        "{repo}<td>{}</td>{}<td>{}</td>{}<td>{heads}</td></tr>",
        complete.0,
        size(complete.1),
        partial.0,
        size(partial.1),
    )
}

/// Sends a count on a connection of its own and reads its answer's head.
fn start_count(daemon: &Daemon, headers: &[(&str, &str)]) -> (Conn, Response) {
    let mut conn = Conn::open(daemon.addr);
    conn.send("GET", COUNT, headers);
    let head = conn.read_head().expect("a response");
    (conn, head)
}

/// The whole page from what was read of it and the rest of its stream.
fn page_of(mut read: Vec<u8>, conn: &mut Conn) -> String {
    read.extend(conn.read_raw_to_end().expect("the rest of the page"));
    String::from_utf8(dechunk(&read).expect("a whole chunked body")).unwrap()
}

/// The task's id, from its Cancel link.
fn task_id(page: &str) -> u64 {
    let at = page.find("sigabort=").expect("a Cancel link") + "sigabort=".len();
    let digits: String = page[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

/// A cache a count takes a while over: `pairs` complete files (hard links
/// of one, to make them fast), 1,000 to a directory.
fn many_files(cache: &Path, pairs: usize) {
    put(cache, "many/seed.deb", b"abc");
    put(cache, "many/seed.deb.head", acng_head(3).as_bytes());
    for i in 0..pairs {
        let dir = cache.join(format!("many/pool/d{}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::hard_link(cache.join("many/seed.deb"), dir.join(format!("f{i}.deb"))).unwrap();
        std::fs::hard_link(
            cache.join("many/seed.deb.head"),
            dir.join(format!("f{i}.deb.head")),
        )
        .unwrap();
    }
}

fn maint_logs(daemon: &Daemon) -> Vec<String> {
    let mut logs: Vec<String> = std::fs::read_dir(daemon.log_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("maint_") && n.ends_with(".log.html"))
        .collect();
    logs.sort();
    logs
}

#[test]
fn a_count_shows_each_repositorys_complete_and_partial_files_and_the_log_analysis() {
    let origin = Origin::start();
    origin.put("/debian/pool/a.deb", vec![1u8; 1000]);
    origin.put("/debian/pool/b.deb", vec![2u8; 2000]);
    origin.put("/ubuntu/pool/c.deb", vec![3u8; 3000]);
    let daemon = Daemon::start(&format!(
        "Remap-deb: /deb ; {}\nRemap-ubu: /ubu ; {}\n",
        origin.url("/debian"),
        origin.url("/ubuntu")
    ));
    for url in ["/deb/pool/a.deb", "/deb/pool/b.deb", "/ubu/pool/c.deb"] {
        assert_eq!(get(daemon.addr, url).status, 200, "{url}");
    }
    daemon.downloads_done();
    // Three misses: an I and an O line each, flushed within a second.
    wait_for("the transfer log", || daemon.transfer_log().len() >= 6);
    let cache = daemon.cache();
    put(&cache, "deb/pool/partial.deb", &[0u8; 10]);
    put(&cache, "deb/pool/partial.deb.head", acng_head(100).as_bytes());
    put(
        &cache,
        "ubu/pool/gone.deb.head",
        b"HTTP/1.1 404 Not Found\r\n\r\n",
    );
    put(&cache, "_xstore/rsnap/x", &[0u8; 50]);

    let (mut conn, head) = start_count(&daemon, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(head.header("content-length").is_none());
    let page = page_of(Vec::new(), &mut conn);
    assert!(
        page.contains("Maintenance task <b>Count Objects</b>, debcache "),
        "{page}"
    );
    for expected in [
        row("<tr><td>deb</td>", (2, 3000), (1, 10), 0),
        row("<tr><td>ubu</td>", (1, 3000), (0, 0), 1),
        row("<tr><th>All</th>", (3, 6000), (1, 10), 1),
        "Scanned 4 files, 5.9 KiB.".to_string(),
        // acng's reckoning: three misses, no hit.
        "<td>0 (0.00%)</td><td>3 (100.00%)</td><td>3</td>".to_string(),
        "<span class=\"GOOD\">Done.</span>".to_string(),
    ] {
        assert!(page.contains(&expected), "{expected} missing:\n{page}");
    }
    assert!(!page.contains(MARKER), "no error, no control line:\n{page}");
    assert!(page.trim_end().ends_with("</html>"));

    let logs = maint_logs(&daemon);
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(daemon.log_dir().join(&logs[0])).unwrap();
    assert!(log.contains(".WARNING{color:orange}") && log.contains(".ERROR{color:red}"));
    assert!(
        log.contains(&row("<tr><td>deb</td>", (2, 3000), (1, 10), 0)),
        "{log}"
    );
    assert!(log.trim_end().ends_with("</html>"));

    let report = get(daemon.addr, "/acng-report.html").text();
    assert!(
        report.contains("3 files (5.9 KiB) complete, 1 file (10 bytes) partial"),
        "{report}"
    );
    assert!(report.contains("name=\"doCount\" value=\"Count Objects\""));
    let last = &json(&daemon)["last_count"];
    assert_eq!(
        (last["complete_files"].as_u64(), last["partial_bytes"].as_u64()),
        (Some(3), Some(10))
    );
}

#[test]
fn a_second_request_follows_the_running_count_and_its_cancel_link_stops_it() {
    let daemon = Daemon::start("");
    many_files(&daemon.cache(), 30_000);
    let (mut first, head) = start_count(&daemon, &[]);
    assert_eq!(head.status, 200);
    // The page streams: its head and first line come before the count ends.
    let first_read = first.read_raw_until("Counting the files").unwrap();
    let id = task_id(&String::from_utf8_lossy(&first_read));
    assert_eq!(json(&daemon)["maintenance_task"], "Count Objects");

    let (mut second, head) = start_count(&daemon, &[]);
    assert_eq!(head.status, 200);
    let second_read = second.read_raw_until("already running").unwrap();

    let cancel = get(
        daemon.addr,
        &format!("/acng-report.html?doCount=Count+Objects&sigabort={id}"),
    );
    assert_eq!(cancel.status, 302);
    assert_eq!(cancel.header("location"), Some("/acng-report.html"));

    let (first, second) = (page_of(first_read, &mut first), page_of(second_read, &mut second));
    assert!(second.contains("A maintenance task is already running!"));
    assert!(!first.contains("already running"));
    for page in [&first, &second] {
        assert_eq!(task_id(page), id, "the same task");
        assert!(page.contains("Counting the files"), "from its first line");
        assert!(
            page.contains("<span class=\"WARNING\">Cancelled.</span>"),
            "{page}"
        );
        assert!(!page.contains("Files in the cache") && !page.contains("Done."));
        assert!(!page.contains(MARKER), "a cancel is no error");
        assert!(page.trim_end().ends_with("</html>"));
    }
    wait_for("the slot to be free", || {
        json(&daemon)["maintenance_task"].is_null()
    });
    assert!(
        json(&daemon)["last_count"].is_null(),
        "a cancelled count is not kept"
    );

    // The next count runs to its end.
    let (mut conn, _) = start_count(&daemon, &[]);
    let page = page_of(Vec::new(), &mut conn);
    assert!(
        page.contains(&row("<tr><td>many</td>", (30_001, 90_003), (0, 0), 0)),
        "{page}"
    );
    assert!(task_id(&page) > id);
}

#[test]
fn shutdown_cuts_a_running_count_and_says_so() {
    let mut daemon = Daemon::start("");
    many_files(&daemon.cache(), 30_000);
    let (mut conn, _) = start_count(&daemon, &[]);
    let read = conn.read_raw_until("Counting the files").unwrap();
    daemon.signal(libc::SIGTERM);
    let page = page_of(read, &mut conn);
    assert!(
        page.contains("<span class=\"ERROR\">Cut short: debcache is stopping.</span>"),
        "{page}"
    );
    assert!(page.contains(&format!("{MARKER}2Cut short: debcache is stopping.")));
    let status = daemon.wait(std::time::Duration::from_secs(30)).expect("stopped");
    assert!(status.success());
    let stderr = daemon.stderr();
    assert!(stderr.contains("maintenance task Count Objects cut"), "{stderr}");
    assert!(
        stderr.contains("Count Objects: cut short by the shutdown"),
        "{stderr}"
    );
}

#[test]
fn a_part_of_the_cache_not_counted_is_an_error_with_acngs_control_line() {
    let daemon = Daemon::start("");
    let cache = daemon.cache();
    put(&cache, "r/a.deb", b"12");
    put(&cache, "r/a.deb.head", acng_head(2).as_bytes());
    let deep = format!("r/{}", "d/".repeat(70));
    put(&cache, &format!("{deep}x.deb"), b"1");
    let (mut conn, _) = start_count(&daemon, &[]);
    let page = page_of(Vec::new(), &mut conn);
    let text = format!(
        "Not counted: r/{}: more than 64 directories deep",
        "d/".repeat(65).trim_end_matches('/')
    );
    assert!(
        page.contains(&format!("<span class=\"ERROR\">{text}</span>")),
        "{page}"
    );
    assert!(page.contains(&format!("<!--\n{MARKER}2{text}\n-->")), "{page}");
    assert!(
        page.contains(&row("<tr><td>r</td>", (1, 2), (0, 0), 0)),
        "the rest is counted"
    );
}

#[test]
fn the_count_passes_the_admin_gate_as_a_read_only_view() {
    let guarded = Daemon::start("AdminAuth: admin:secret");
    let (_, head) = start_count(&guarded, &[]);
    assert_eq!((head.status, head.reason.as_str()), (401, "Not Authorized"));
    let (mut conn, head) = start_count(&guarded, &[("Authorization", "Basic YWRtaW46c2VjcmV0")]);
    assert_eq!(head.status, 200);
    assert!(page_of(Vec::new(), &mut conn).contains("Done."));

    // Without AdminAuth anyone may count (here: through a balancer), but
    // only this host may cancel.
    let open = Daemon::start("");
    let xff = [("X-Forwarded-For", "192.0.2.7")];
    let (mut conn, head) = start_count(&open, &xff);
    assert_eq!(head.status, 200);
    let page = page_of(Vec::new(), &mut conn);
    let cancel = format!(
        "/acng-report.html?doCount=Count+Objects&sigabort={}",
        task_id(&page)
    );
    assert_eq!(Conn::open(open.addr).get(&cancel, &xff).status, 403);
    // HEAD says what a GET would get, and starts nothing.
    let mut conn = Conn::open(open.addr);
    conn.send("HEAD", COUNT, &[]);
    let head = conn.read(true).unwrap();
    assert_eq!(
        (head.status, head.header("content-type")),
        (200, Some("text/html; charset=utf-8"))
    );
    assert_eq!(maint_logs(&open).len(), 1, "the GET's only");
}
