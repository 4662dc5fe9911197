//! Count Objects (`?doCount=`): what the cache holds, per repository, and
//! acng's log analysis of the last 7 days (spec §8.4).
//!
//! 1. The cache is walked (`cache::scan`), a progress line every second.
//!    A directory that cannot be read is an error line and the count goes
//!    on without it.
//! 2. A table per repository: complete files and their bytes (served as
//!    hits), partial ones (not served as complete: partial downloads,
//!    files without a `.head`, damaged ones), `.head` files without data;
//!    and the totals. The totals are kept for the report page.
//! 3. The log analysis: the transfer logs in `LogDir` (rotated and
//!    compressed ones too) in 7 rolling 24-hour windows ending now, by
//!    acng's reckoning: the `I` lines are the misses, what the `O` lines
//!    exceed them by are the hits, in requests and in data.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::output::{utc_minute, Kind};
use super::task::Ctx;
use crate::admin::health::human_bytes;
use crate::admin::help::escape;
use crate::cache::Cache;
use crate::cache::{Census, Files, Found, Tally};
use crate::stats::{self, LogWindow};

/// The query of the report page's button, and of the Cancel link.
pub const QUERY: &str = "doCount=Count+Objects";

const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What the last count that ran to its end found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub finished: SystemTime,
    pub total: Tally,
    pub repositories: usize,
    /// Directories that could not be counted.
    pub unreadable: u64,
}

/// Where the last count's summary is kept.
pub type Last = Arc<Mutex<Option<Summary>>>;

/// The job: runs on a blocking thread.
pub fn job(cache: Arc<Cache>, log_dir: Option<PathBuf>, last: Last) -> impl FnOnce(&mut Ctx) + Send {
    move |ctx| {
        let Some(census) = scan(&cache, ctx) else {
            return;
        };
        ctx.html(repository_table(&census));
        *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Summary {
            finished: SystemTime::now(),
            total: census.total(),
            repositories: census.repos.len(),
            unreadable: census.unreadable,
        });
        log_analysis(ctx, log_dir.as_deref());
        if !ctx.should_stop() {
            ctx.say(Kind::Good, "Done.");
        }
    }
}

/// The walk, summed; `None` when it could not start or was stopped.
fn scan(cache: &Cache, ctx: &mut Ctx) -> Option<Census> {
    ctx.say(Kind::Plain, "Counting the files in the cache directory...");
    let walk = match cache.walk() {
        Ok(walk) => walk,
        Err(e) => {
            ctx.say(Kind::Error, &format!("Cannot read the cache directory: {e}"));
            return None;
        }
    };
    let mut census = Census::default();
    let mut seen = Files::default();
    let mut said = Instant::now();
    for found in walk {
        if ctx.should_stop() {
            return None;
        }
        match &found {
            Found::Data { len, .. } => {
                seen.count += 1;
                seen.bytes = seen.bytes.saturating_add(*len);
            }
            Found::Unreadable { path, problem } => {
                let path = if path.is_empty() {
                    "the cache directory"
                } else {
                    path
                };
                ctx.say(Kind::Error, &format!("Not counted: {path}: {problem}"));
            }
            Found::HeadAlone { .. } => {}
        }
        census.add(&found);
        if said.elapsed() >= PROGRESS_EVERY {
            ctx.say(Kind::Plain, &scanned(seen, "..."));
            said = Instant::now();
        }
    }
    ctx.say(Kind::Plain, &scanned(seen, "."));
    Some(census)
}

fn scanned(seen: Files, end: &str) -> String {
    format!("Scanned {} files, {}{end}", seen.count, human_bytes(seen.bytes))
}

/// A size as people read it, the exact count on hover.
fn size(bytes: u64) -> String {
    format!("<td title=\"{bytes} bytes\">{}</td>", human_bytes(bytes))
}

fn repository_table(census: &Census) -> String {
    let mut html = String::from(
        "<h3>Files in the cache</h3>\n<table class=\"count\">\n<thead><tr><th>Repository</th>\
         <th>Complete files</th><th>Complete data</th><th>Partial files</th><th>Partial data</th>\
         <th>.head without data</th></tr></thead>\n<tbody>\n",
    );
    let row = |html: &mut String, cell: &str, t: &Tally| {
        let _ = writeln!(
            html,
            "<tr>{cell}<td>{}</td>{}<td>{}</td>{}<td>{}</td></tr>",
            t.complete.count,
            size(t.complete.bytes),
            t.partial.count,
            size(t.partial.bytes),
            t.heads_alone
        );
    };
    for (repo, tally) in &census.repos {
        row(&mut html, &format!("<td>{}</td>", escape(repo)), tally);
    }
    html.push_str("</tbody>\n<tfoot>\n");
    row(&mut html, "<th>All</th>", &census.total());
    html.push_str("</tfoot>\n</table>\n");
    html
}

fn log_analysis(ctx: &mut Ctx, log_dir: Option<&Path>) {
    let Some(dir) = log_dir else {
        ctx.say(Kind::Plain, "LogDir is not set: no transfer log to analyse.");
        return;
    };
    if ctx.should_stop() {
        return;
    }
    let windows = {
        let keep_going = || !ctx.should_stop();
        stats::log_windows(dir, crate::log::FILE_NAME, &keep_going)
    };
    match windows {
        Ok(_) if ctx.should_stop() => {}
        Ok(windows) if windows.iter().all(|w| requests(w).2 == 0) => {
            ctx.say(
                Kind::Plain,
                "The transfer logs tell of no request in the last 7 days.",
            );
        }
        Ok(windows) => ctx.html(log_table(&windows)),
        Err(e) => ctx.say(
            Kind::Error,
            &format!("Cannot read the transfer logs in LogDir: {e}"),
        ),
    }
}

/// Hits, misses and their total in requests, as acng reckons them.
fn requests(w: &LogWindow) -> (u64, u64, u64) {
    let (hits, misses) = (w.totals.hits, w.totals.misses);
    (hits, misses, hits + misses)
}

/// acng's table: only the windows with requests, the latest first.
fn log_table(windows: &[LogWindow]) -> String {
    let mut html = String::from(
        "<h3>Transfer log analysis</h3>\n<table class=\"log\">\n<thead><tr><th>Period (UTC)</th>\
         <th>Cache hits</th><th>Cache misses</th><th>Total</th><th>Data hits</th>\
         <th>Data misses</th><th>Total data</th></tr></thead>\n<tbody>\n",
    );
    for w in windows.iter().filter(|w| requests(w).2 > 0) {
        let (hits, misses, total) = requests(w);
        let (data_hits, data_misses) = (w.totals.bytes_from_cache, w.totals.bytes_fetched);
        let data_total = data_hits.saturating_add(data_misses);
        let _ = writeln!(
            html,
            "<tr><td>{} - {}</td><td>{}</td><td>{}</td><td>{total}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            utc_minute(w.start),
            utc_minute(w.end),
            share(hits.to_string(), hits, total),
            share(misses.to_string(), misses, total),
            share(mib(data_hits), data_hits, data_total),
            share(mib(data_misses), data_misses, data_total),
            mib(data_total)
        );
    }
    html.push_str("</tbody>\n</table>\n");
    html
}

/// `13 (43.33%)`.
fn share(shown: String, part: u64, whole: u64) -> String {
    if whole == 0 {
        return shown;
    }
    format!("{shown} ({:.2}%)", part as f64 * 100.0 / whole as f64)
}

/// `0.45 MiB`, as acng's table has data.
fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Totals;

    #[test]
    fn the_log_table_has_acngs_columns_and_only_windows_with_requests() {
        let day = |hits, misses, from_cache, fetched| Totals {
            hits,
            misses,
            requests: hits + misses,
            bytes_from_cache: from_cache,
            bytes_fetched: fetched,
            ..Totals::default()
        };
        let windows = [
            LogWindow {
                start: 1_795_228_356,
                end: 1_795_314_756,
                totals: day(13, 17, 471_859, 1_604_321),
            },
            LogWindow {
                start: 1_795_141_956,
                end: 1_795_228_356,
                totals: Totals::default(),
            },
        ];
        let html = log_table(&windows);
        assert_eq!(html.matches("<tr><td>").count(), 1, "{html}");
        let row = "<tr><td>2026-11-21 02:32 - 2026-11-22 02:32</td><td>13 (43.33%)</td>\
                   <td>17 (56.67%)</td><td>30</td><td>0.45 MiB (22.73%)</td>\
                   <td>1.53 MiB (77.27%)</td><td>1.98 MiB</td></tr>";
        assert!(html.contains(row), "{html}");
    }

    #[test]
    fn the_repository_table_escapes_names_and_sums() {
        let mut census = Census::default();
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("<a>"), Arc::from("b"));
        for found in [
            Found::data(&a, 2048, true),
            Found::data(&a, 10, false),
            Found::HeadAlone { repo: Arc::clone(&b) },
        ] {
            census.add(&found);
        }
        let html = repository_table(&census);
        assert!(html.contains(
            "<tr><td>&lt;a&gt;</td><td>1</td><td title=\"2048 bytes\">2.0 KiB</td><td>1</td>\
             <td title=\"10 bytes\">10 bytes</td><td>0</td></tr>"
        ));
        assert!(html.contains("<tr><td>b</td><td>0</td>"));
        assert!(html.contains("<tr><th>All</th><td>1</td><td title=\"2048 bytes\">"));
        assert!(html.contains("</td><td>1</td></tr>\n</tfoot>"));
    }

    #[test]
    fn shares_have_two_decimals_and_none_without_a_whole() {
        assert_eq!(share("1".into(), 1, 3), "1 (33.33%)");
        assert_eq!(share("0".into(), 0, 0), "0");
        assert_eq!(mib(1 << 20), "1.00 MiB");
    }
}
