//! The report page in a real browser: headless Chromium loads it after
//! some traffic, a screenshot is kept under `target/`, and the DOM it built
//! is checked for the statistics table and the chart. Chromium resolves no
//! name but loopback (`--host-resolver-rules`), so nothing leaves this
//! machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::http::Conn;
use crate::support::origin::Origin;
use crate::support::{wait_for, Daemon};

const PATH: &str = "/debian/pool/main/h/hello/hello_1.0_all.deb";
const URL: &str = "/m/pool/main/h/hello/hello_1.0_all.deb";

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| dirs.iter().map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `extra` flags; its stdout.
fn run(browser: &Path, profile: &Path, url: &str, extra: &[&str]) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--window-size=1280,1800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    out
}

#[test]
fn the_report_page_renders_in_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing on CI: .ci/run installs it"
        );
        eprintln!("\n*** SKIPPED the_report_page_renders_in_chromium: no chromium here (apt-get install chromium) ***\n");
        return;
    };
    let origin = Origin::start();
    origin.put(PATH, vec![9u8; 300_000]);
    let daemon = Daemon::start(&format!("Remap-m: /m ; {}\n", origin.url("/debian")));
    for _ in 0..3 {
        assert_eq!(Conn::open(daemon.addr).get(URL, &[]).status, 200);
        wait_for("the download's end", || {
            !crate::support::http::get(daemon.addr, "/metrics")
                .text()
                .contains("debcache_downloads_in_progress 1")
        });
    }
    let page = format!("http://{}/acng-report.html", daemon.addr);
    let profile = tempfile::tempdir().unwrap();

    let dom = run(&browser, profile.path(), &page, &["--dump-dom"]);
    for expected in [
        "Transfers",
        "Last 24 hours",
        "Healthy.",
        "<svg",
        "<rect",
        "Repositories, since start",
    ] {
        assert!(dom.contains(expected), "{expected} not in the DOM:\n{dom}");
    }
    assert!(dom.contains("2 (66.7 %)"), "two of three from the cache:\n{dom}");

    // Made fresh in a directory of this run, then kept under target/ for
    // people to look at (when this user may write there).
    let png = profile.path().join("report.png");
    run(
        &browser,
        profile.path(),
        &page,
        &[&format!("--screenshot={}", png.display())],
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser/report.png");
    let copied = std::fs::create_dir_all(kept.parent().unwrap()).and_then(|()| std::fs::write(&kept, &bytes));
    match copied {
        Ok(()) => eprintln!("screenshot: {}", kept.display()),
        Err(e) => eprintln!("screenshot not kept at {}: {e}", kept.display()),
    }
}
