//! The report page (`ReportPage`, default `acng-report.html`): what the
//! cache did (the last 24 hours, the last 7 days, since start; per
//! repository; failed downloads), what is wrong now, and the actions. Also
//! as JSON (`?format=json`): the same numbers for scripts.
//!
//! Rendered from `templates/report.html` (askama: compiled in, every value
//! HTML-escaped by construction); the chart is inline SVG, and nothing
//! needs JavaScript.

use std::time::{Duration, SystemTime};

use askama::Template;
use serde::Serialize;

use super::health::{human_bytes, Status};
use super::maintenance::CountSummary;
use super::trace::Traced;
use crate::stats::{Snapshot, Totals};

/// What the page says above the numbers after an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    StatsReset,
    TraceStarted,
    TraceStopped,
    TraceCleared,
}

/// The maintenance tasks, as the page tells of them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tasks {
    /// The task running now, and when it started.
    pub running: Option<(&'static str, SystemTime)>,
    /// What the last count that ran to its end found.
    pub last_count: Option<CountSummary>,
    /// `ExAbortOnProblems`: the expiration form's "stop on errors" box is
    /// ticked.
    pub abort_on_problems: bool,
}

/// Renders the HTML page.
pub fn html(
    snapshot: &Snapshot,
    status: &Status,
    authority: &str,
    notice: Option<Notice>,
    tasks: &Tasks,
    trace: Traced,
) -> Result<String, askama::Error> {
    let now = SystemTime::now();
    let mut since_start = Row::new("Since start".into(), &snapshot.since_start);
    since_start.note = Some(utc(snapshot.started));
    let windows = vec![
        Row::new("Last 24 hours".into(), &snapshot.days[0]),
        Row::new("Last 7 days".into(), &snapshot.week()),
        since_start,
    ];
    let repos = snapshot
        .repos
        .iter()
        .filter(|(_, t)| !t.is_empty())
        .map(|(name, t)| Row::new(name.clone(), t))
        .collect();
    let failures = snapshot
        .failures
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(class, n)| (class.label(), *n))
        .collect();
    let problems: Vec<String> = status.problems.iter().map(ToString::to_string).collect();
    let mut working = Vec::new();
    if snapshot.active > 0 {
        working.push(format!("{} response(s) being sent", snapshot.active));
    }
    if let Some((name, started)) = tasks.running {
        let secs = now.duration_since(started).map_or(0, |d| d.as_secs());
        working.push(format!("Maintenance task {name} running (for {secs} s)"));
    }
    ReportPage {
        authority,
        version: env!("CARGO_PKG_VERSION"),
        serving: status.serving(),
        problems,
        working,
        notice: notice.map(|n| match n {
            Notice::StatsReset => "The statistics were reset.",
            Notice::TraceStarted => {
                "Pattern tracing is on: files no pattern knows are served as volatile and listed below."
            }
            Notice::TraceStopped => "Pattern tracing is off.",
            Notice::TraceCleared => "The traced URLs were cleared.",
        }),
        disk: status
            .space
            .map(|(free, total)| format!("{} free of {}", human_bytes(free), human_bytes(total))),
        windows,
        chart: Chart::of(&snapshot.days, now),
        repos,
        failures,
        last_count: tasks.last_count.as_ref().map(CountView::new),
        abort_on_problems: tasks.abort_on_problems,
        trace,
    }
    .render()
}

/// The same numbers as JSON.
pub fn json(snapshot: &Snapshot, status: &Status, downloads: usize, tasks: &Tasks) -> String {
    let view = JsonView {
        version: env!("CARGO_PKG_VERSION"),
        started: epoch_seconds(snapshot.started),
        serving: status.serving(),
        problems: status.problems.iter().map(ToString::to_string).collect(),
        last_24_hours: snapshot.days[0],
        last_7_days: snapshot.week(),
        since_start: snapshot.since_start,
        days: snapshot.days.clone(),
        repositories: snapshot.repos.iter().map(|(n, t)| (n.as_str(), *t)).collect(),
        download_failures: snapshot.failures.iter().map(|(c, n)| (c.label(), *n)).collect(),
        responses_in_progress: snapshot.active,
        downloads_in_progress: downloads,
        disk_free_bytes: status.space.map(|(free, _)| free),
        disk_size_bytes: status.space.map(|(_, total)| total),
        maintenance_task: tasks.running.map(|(name, _)| name),
        last_count: tasks.last_count.as_ref().map(CountJson::new),
    };
    serde_json::to_string_pretty(&view).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[derive(Serialize)]
struct JsonView<'a> {
    version: &'static str,
    started: u64,
    serving: bool,
    problems: Vec<String>,
    last_24_hours: Totals,
    last_7_days: Totals,
    since_start: Totals,
    /// The 7 rolling 24-hour windows, the latest first.
    days: Vec<Totals>,
    repositories: std::collections::BTreeMap<&'a str, Totals>,
    download_failures: std::collections::BTreeMap<&'static str, u64>,
    responses_in_progress: u64,
    downloads_in_progress: usize,
    disk_free_bytes: Option<u64>,
    disk_size_bytes: Option<u64>,
    /// The name of the maintenance task running now.
    maintenance_task: Option<&'static str>,
    last_count: Option<CountJson>,
}

#[derive(Serialize)]
struct CountJson {
    finished: u64,
    repositories: usize,
    complete_files: u64,
    complete_bytes: u64,
    partial_files: u64,
    partial_bytes: u64,
    heads_without_data: u64,
    unreadable_directories: u64,
}

impl CountJson {
    fn new(c: &CountSummary) -> CountJson {
        CountJson {
            finished: epoch_seconds(c.finished),
            repositories: c.repositories,
            complete_files: c.total.complete.count,
            complete_bytes: c.total.complete.bytes,
            partial_files: c.total.partial.count,
            partial_bytes: c.total.partial.bytes,
            heads_without_data: c.total.heads_alone,
            unreadable_directories: c.unreadable,
        }
    }
}

/// The last count, formatted.
struct CountView {
    when: String,
    complete: String,
    partial: String,
    heads_alone: u64,
    /// `2 repositories`.
    repositories: String,
    unreadable: u64,
}

impl CountView {
    fn new(c: &CountSummary) -> CountView {
        let files = |f: crate::cache::Files| {
            let s = if f.count == 1 { "" } else { "s" };
            format!("{} file{s} ({})", f.count, human_bytes(f.bytes))
        };
        CountView {
            when: utc(c.finished),
            complete: files(c.total.complete),
            partial: files(c.total.partial),
            heads_alone: c.total.heads_alone,
            repositories: match c.repositories {
                1 => "1 repository".to_string(),
                n => format!("{n} repositories"),
            },
            unreadable: c.unreadable,
        }
    }
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    authority: &'a str,
    version: &'static str,
    serving: bool,
    problems: Vec<String>,
    working: Vec<String>,
    notice: Option<&'static str>,
    disk: Option<String>,
    windows: Vec<Row>,
    chart: Chart,
    repos: Vec<Row>,
    failures: Vec<(&'static str, u64)>,
    last_count: Option<CountView>,
    abort_on_problems: bool,
    trace: Traced,
}

/// One line of a statistics table, formatted.
struct Row {
    label: String,
    /// A second, smaller line under the label.
    note: Option<String>,
    requests: u64,
    hits: String,
    misses: u64,
    coalesced: u64,
    revalidated: u64,
    errors: u64,
    served: String,
    from_cache: String,
    fetched: String,
}

impl Row {
    fn new(label: String, t: &Totals) -> Row {
        Row {
            label,
            note: None,
            requests: t.requests,
            hits: with_share(t.hits + t.revalidated + t.coalesced, t.hit_ratio()),
            misses: t.misses,
            coalesced: t.coalesced,
            revalidated: t.revalidated,
            errors: t.errors,
            served: human_bytes(t.bytes_served),
            from_cache: format!(
                "{}{}",
                human_bytes(t.bytes_from_cache),
                percent(t.byte_hit_ratio())
            ),
            fetched: human_bytes(t.bytes_fetched),
        }
    }
}

fn with_share(n: u64, ratio: Option<f64>) -> String {
    format!("{n}{}", percent(ratio))
}

fn percent(ratio: Option<f64>) -> String {
    ratio.map_or_else(String::new, |r| format!(" ({:.1} %)", r * 100.0))
}

/// Hits against misses in bytes, per 24-hour window: stacked bars.
struct Chart {
    width: u32,
    height: u32,
    bars: Vec<Bar>,
    /// The largest day, for the scale's label.
    top: String,
}

struct Bar {
    x: u32,
    width: u32,
    /// From the cache: the upper part.
    hit_y: u32,
    hit_height: u32,
    /// From mirrors: the lower part.
    miss_y: u32,
    miss_height: u32,
    label: String,
    title: String,
    label_x: u32,
}

impl Chart {
    const PLOT: u32 = 150;
    const TOP: u32 = 10;

    fn of(days: &[Totals], now: SystemTime) -> Chart {
        let (bar, gap, left) = (56u32, 24u32, 8u32);
        let max = days
            .iter()
            .map(|d| d.bytes_from_cache + d.bytes_fetched)
            .max()
            .unwrap_or(0)
            .max(1);
        let scale = |bytes: u64| ((bytes as f64 / max as f64) * f64::from(Self::PLOT)).round() as u32;
        // Oldest on the left.
        let bars = days
            .iter()
            .enumerate()
            .rev()
            .enumerate()
            .map(|(slot, (ago, d))| {
                let x = left + slot as u32 * (bar + gap);
                let (hit, miss) = (scale(d.bytes_from_cache), scale(d.bytes_fetched));
                let bottom = Self::TOP + Self::PLOT;
                let end = now - Duration::from_secs(ago as u64 * 86_400);
                Bar {
                    x,
                    width: bar,
                    miss_y: bottom - miss,
                    miss_height: miss,
                    hit_y: bottom - miss - hit,
                    hit_height: hit,
                    label: if ago == 0 { "last 24 h".into() } else { day(end) },
                    title: format!(
                        "{} to {}: {} from the cache, {} from mirrors",
                        utc(end - Duration::from_secs(86_400)),
                        utc(end),
                        human_bytes(d.bytes_from_cache),
                        human_bytes(d.bytes_fetched)
                    ),
                    label_x: x + bar / 2,
                }
            })
            .collect();
        Chart {
            width: left * 2 + days.len() as u32 * (bar + gap),
            height: Self::TOP + Self::PLOT + 24,
            bars,
            top: human_bytes(max),
        }
    }
}

/// `02 Dec 2026 14:05 UTC`.
fn utc(t: SystemTime) -> String {
    let http = httpdate::fmt_http_date(t);
    match http.split(' ').collect::<Vec<_>>().as_slice() {
        [_, day, month, year, time, _] => format!("{day} {month} {year} {} UTC", &time[..5]),
        _ => http,
    }
}

/// `02 Dec`: a window's end, for the chart.
fn day(t: SystemTime) -> String {
    let http = httpdate::fmt_http_date(t);
    match http.split(' ').collect::<Vec<_>>().as_slice() {
        [_, day, month, ..] => format!("{day} {month}"),
        _ => http,
    }
}

fn epoch_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Served, Stats};

    fn status() -> Status {
        Status {
            problems: Vec::new(),
            space: Some((10 << 30, 100 << 30)),
        }
    }

    #[test]
    fn the_page_shows_the_numbers_the_status_and_the_chart() {
        let stats = Stats::new(["debian"]);
        let debian = stats.repo("debian");
        stats.served(debian, Served::Hit, 3 << 20);
        stats.served(debian, Served::Miss, 1 << 20);
        stats.fetched(debian, 1 << 20);
        let page = html(
            &stats.snapshot(),
            &status(),
            "cache:3142",
            None,
            &Tasks::default(),
            Traced::default(),
        )
        .unwrap();
        for expected in [
            "debcache at cache:3142",
            "Healthy",
            "Last 24 hours",
            "Last 7 days",
            "Since start",
            "1 (50.0 %)",
            "3.0 MiB (75.0 %)",
            "<svg",
            "debian",
            "10.0 GiB free of 100.0 GiB",
        ] {
            assert!(page.contains(expected), "{expected} missing in\n{page}");
        }
        assert!(!page.contains("<script"), "no JavaScript");
    }

    #[test]
    fn values_are_escaped_and_problems_shown() {
        let stats = Stats::new(["<b>repo</b>"]);
        stats.served(stats.repo("<b>repo</b>"), Served::Hit, 1);
        let status = Status {
            problems: vec![super::super::health::Problem::MirrorsFailing(vec![(
                "<evil>:80".into(),
                Duration::from_secs(5),
            )])],
            space: None,
        };
        let page = html(
            &stats.snapshot(),
            &status,
            "a\"b",
            Some(Notice::StatsReset),
            &Tasks::default(),
            Traced {
                on: true,
                urls: vec!["http://m/<x>.weird".into()],
                dropped: 0,
            },
        )
        .unwrap();
        assert!(page.contains("&#60;b&#62;repo&#60;/b&#62;") && !page.contains("<b>repo"));
        assert!(page.contains("http://m/&#60;x&#62;.weird") && page.contains("doTraceStop"));
        assert!(page.contains("&#60;evil&#62;:80") && !page.contains("a\"b"));
        assert!(page.contains("The statistics were reset."));
        assert!(!page.contains("Healthy"));
    }

    #[test]
    fn json_has_the_same_numbers() {
        let stats = Stats::new(["debian"]);
        stats.served(stats.repo("debian"), Served::Coalesced, 5);
        let text = json(&stats.snapshot(), &status(), 2, &Tasks::default());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["since_start"]["coalesced"], 1);
        assert_eq!(v["last_24_hours"]["bytes_served"], 5);
        assert_eq!(v["repositories"]["debian"]["requests"], 1);
        assert_eq!(v["downloads_in_progress"], 2);
        assert_eq!(v["days"].as_array().unwrap().len(), 7);
        assert_eq!(v["serving"], true);
        assert!(v["maintenance_task"].is_null() && v["last_count"].is_null());
    }

    #[test]
    fn the_page_tells_of_the_running_task_and_the_last_count() {
        use crate::cache::{Files, Tally};
        let stats = Stats::new([]);
        let tasks = Tasks {
            running: Some(("Count Objects", SystemTime::now())),
            last_count: Some(CountSummary {
                finished: SystemTime::now(),
                total: Tally {
                    complete: Files {
                        count: 3,
                        bytes: 3 << 20,
                    },
                    partial: Files { count: 1, bytes: 10 },
                    heads_alone: 2,
                },
                repositories: 2,
                unreadable: 0,
            }),
            abort_on_problems: true,
        };
        let page = html(
            &stats.snapshot(),
            &status(),
            "cache",
            None,
            &tasks,
            Traced::default(),
        )
        .unwrap();
        for expected in [
            "Maintenance task Count Objects running (for 0 s).",
            "3 files (3.0 MiB) complete, 1 file (10 bytes) partial, 2 .head files without data, in 2 repositories.",
            "<button type=\"submit\" name=\"doCount\" value=\"Count Objects\">Count Objects</button>",
            "<input type=\"checkbox\" name=\"abortOnErrors\" value=\"aOe\" checked>",
            "<button type=\"submit\" name=\"doExpire\" value=\"Start Expiration\">",
            "<button type=\"submit\" name=\"justShow\" value=\"Show unreferenced\">",
        ] {
            assert!(page.contains(expected), "{expected} missing in\n{page}");
        }
        let v: serde_json::Value =
            serde_json::from_str(&json(&stats.snapshot(), &status(), 0, &tasks)).unwrap();
        assert_eq!(v["maintenance_task"], "Count Objects");
        assert_eq!(v["last_count"]["complete_files"], 3);
        assert_eq!(v["last_count"]["heads_without_data"], 2);
    }
}
