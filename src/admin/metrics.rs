//! `GET /metrics`: the statistics in Prometheus' text exposition format
//! (version 0.0.4). Repository labels are the configured `Remap-` names and
//! `other`, never a client's choice, so the series are bounded.

use std::fmt::Write;
use std::time::UNIX_EPOCH;

use super::health::Status;
use crate::stats::{Snapshot, Totals};

/// The content type scrapers expect.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Gauges that are not statistics.
#[derive(Debug)]
pub struct Gauges {
    pub downloads: usize,
    /// Paths whose size and digest the cached indexes give.
    pub checksums: usize,
}

/// How one sample's value is read from the counters.
type Read = fn(&Totals) -> u64;

pub fn render(snapshot: &Snapshot, status: &Status, gauges: &Gauges) -> String {
    let mut out = String::with_capacity(4096);
    let results: [(&str, Read); 6] = [
        ("hit", |t| t.hits),
        ("revalidated", |t| t.revalidated),
        ("coalesced", |t| t.coalesced),
        ("miss", |t| t.misses),
        ("relayed", |t| t.relayed),
        ("error", |t| t.errors),
    ];
    family(
        &mut out,
        "debcache_requests_total",
        "counter",
        "Requests for files answered since start, by how they were answered.",
    );
    for (repo, t) in &snapshot.repos {
        for (result, count) in &results {
            sample(
                &mut out,
                "debcache_requests_total",
                &[("repository", repo), ("result", result)],
                count(t),
            );
        }
    }
    let bytes: [(&str, &str, Read); 3] = [
        (
            "debcache_sent_bytes_total",
            "Bytes sent to clients for files, headers included.",
            |t| t.bytes_served,
        ),
        (
            "debcache_sent_from_cache_bytes_total",
            "Bytes sent to clients that no download of their own brought.",
            |t| t.bytes_from_cache,
        ),
        (
            "debcache_fetched_bytes_total",
            "Bytes received from mirrors.",
            |t| t.bytes_fetched,
        ),
    ];
    for (name, help, value) in bytes {
        family(&mut out, name, "counter", help);
        for (repo, t) in &snapshot.repos {
            sample(&mut out, name, &[("repository", repo)], value(t));
        }
    }
    family(
        &mut out,
        "debcache_download_failures_total",
        "counter",
        "Downloads that failed, by why (once per download, however many clients waited).",
    );
    for (class, n) in &snapshot.failures {
        sample(
            &mut out,
            "debcache_download_failures_total",
            &[("class", class.label())],
            *n,
        );
    }
    let mut gauge = |name: &str, help: &str, value: u64| {
        family(&mut out, name, "gauge", help);
        sample(&mut out, name, &[], value);
    };
    gauge(
        "debcache_responses_in_progress",
        "Responses whose body is being sent.",
        snapshot.active,
    );
    gauge(
        "debcache_downloads_in_progress",
        "Downloads from mirrors running.",
        gauges.downloads as u64,
    );
    gauge(
        "debcache_index_checksums",
        "Files whose size and digest the cached indexes give: their downloads are verified.",
        gauges.checksums as u64,
    );
    gauge(
        "debcache_healthy",
        "1 when the cache can serve and store (as /health says), else 0.",
        u64::from(status.serving()),
    );
    if let Some((free, total)) = status.space {
        gauge(
            "debcache_cache_filesystem_free_bytes",
            "Bytes free on the cache directory's file system.",
            free,
        );
        gauge(
            "debcache_cache_filesystem_size_bytes",
            "Size of the cache directory's file system.",
            total,
        );
    }
    gauge(
        "debcache_start_time_seconds",
        "When this process started, in seconds since the Unix epoch.",
        snapshot
            .started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    family(&mut out, "debcache_build_info", "gauge", "The version running.");
    sample(
        &mut out,
        "debcache_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape_label(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape `\`, `"` and line feeds.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Served, Stats};

    #[test]
    fn every_family_has_help_and_type_and_labels_are_escaped() {
        let stats = Stats::new(["deb\"ian"]);
        stats.served(stats.repo("deb\"ian"), Served::Hit, 10);
        let status = Status {
            problems: Vec::new(),
            space: Some((1, 2)),
        };
        let text = render(
            &stats.snapshot(),
            &status,
            &Gauges {
                downloads: 3,
                checksums: 7,
            },
        );
        assert!(text.contains("debcache_requests_total{repository=\"deb\\\"ian\",result=\"hit\"} 1\n"));
        assert!(text.contains("debcache_requests_total{repository=\"other\",result=\"miss\"} 0\n"));
        assert!(text.contains("debcache_downloads_in_progress 3\n"));
        assert!(text.contains("debcache_healthy 1\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} has no TYPE");
            assert!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP");
        }
    }
}
