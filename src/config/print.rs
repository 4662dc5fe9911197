//! What `--print-config` and `--check` print: the effective configuration,
//! and what was read with the verdict.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use super::{Config, Loaded, Remap, Severity, Source};

/// `--print-config`: one `Key: value` line per directive, then one line per
/// remap as it would be written (`Remap-NAME: merging ; backends ; flags`),
/// each list shown as its token and how many URLs it gave. `full` lists
/// every URL instead, a block of `merge`, `backend` and `flag` lines.
pub fn render(config: &Config, full: bool) -> String {
    let mut out = String::new();
    for (name, value) in &config.source.effective {
        let _ = writeln!(out, "{name}: {value}");
    }
    for r in &config.remaps {
        if full {
            render_full(&mut out, r);
            continue;
        }
        let words = |sources: &[Source]| {
            sources
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut sections = vec![
            words(&r.merge_sources),
            words(&r.backend_sources),
            r.flags.lines().join(" "),
        ];
        while sections.last().is_some_and(String::is_empty) {
            sections.pop();
        }
        let _ = write!(out, "Remap-{}: {}", r.name, sections.join(" ; "));
        out.push('\n');
    }
    out
}

fn render_full(out: &mut String, r: &Remap) {
    let _ = writeln!(out, "Remap-{}:", r.name);
    for m in &r.merges {
        let _ = writeln!(out, "  merge {m}");
    }
    for b in &r.backends {
        let _ = writeln!(out, "  backend {}", b.masked());
    }
    for f in r.flags.lines() {
        let _ = writeln!(out, "  flag {f}");
    }
}

/// `--check`: what was read (each configuration file, each remap with its
/// URL counts and the lists they came from), every diagnostic, and the
/// verdict: `no problems`, or the count of errors and warnings.
pub fn check_report(loaded: &Loaded) -> String {
    let mut out = String::new();
    if let Some(config) = &loaded.config {
        summary(&mut out, config);
    }
    for d in &loaded.diagnostics {
        let _ = writeln!(out, "{d}");
    }
    let tally = |severity| {
        loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    };
    let (errors, warnings) = (tally(Severity::Error), tally(Severity::Warning));
    let verdict = match (errors, warnings) {
        (0, 0) => "no problems".to_string(),
        (0, w) => format!("{}, no errors", count(w, "warning")),
        (e, 0) => format!("{}: debcache would not start", count(e, "error")),
        (e, w) => format!(
            "{}, {}: debcache would not start",
            count(e, "error"),
            count(w, "warning")
        ),
    };
    out.push_str(&verdict);
    out.push('\n');
    out
}

fn summary(out: &mut String, config: &Config) {
    for file in &config.source.conf_files {
        let _ = writeln!(out, "read {}", file.display());
    }
    let mut lists: Vec<&Arc<Path>> = Vec::new();
    let (mut merges, mut backends) = (0, 0);
    for r in &config.remaps {
        let backend_text = match r.backends.len() {
            0 => "no backend (downloads go to the URL asked for)".to_string(),
            n => count(n, "backend"),
        };
        let _ = writeln!(
            out,
            "Remap-{}: {}, {backend_text}",
            r.name,
            count(r.merges.len(), "merging URL")
        );
        for (file, n) in r
            .merge_sources
            .iter()
            .chain(&r.backend_sources)
            .flat_map(|s| &s.files)
        {
            let _ = writeln!(out, "  list {}: {}", file.display(), count(*n, "URL"));
            if !lists.contains(&file) {
                lists.push(file);
            }
        }
        if let Some(h) = &r.hooks {
            hooks_line(out, h);
        }
        merges += r.merges.len();
        backends += r.backends.len();
    }
    let _ = writeln!(
        out,
        "{}: {} and {}; {} read",
        count(config.remaps.len(), "remap"),
        count(merges, "merging URL"),
        count(backends, "backend"),
        count(lists.len(), "list file")
    );
    // Only a limit that is set: a config that never heard of the key (an
    // acng one) reads as before.
    if let Some(limit) = config.maintenance.size_limit {
        let _ = writeln!(
            out,
            "CacheSizeLimit: {limit} bytes ({:.1} GiB): past it, the least recently used files are removed",
            limit as f64 / (1u64 << 30) as f64
        );
    }
}

/// `  hooks /etc/debcache/debrep.hooks: PreUp, Down 30 s after the last
/// connection`.
fn hooks_line(out: &mut String, h: &super::Hooks) {
    let what = match (&h.pre_up, &h.down) {
        (None, None) => "no command".to_string(),
        (Some(_), None) => "PreUp".to_string(),
        (pre_up, Some(_)) => format!(
            "{}Down {} s after the last connection",
            if pre_up.is_some() { "PreUp, " } else { "" },
            h.down_timeout.as_secs()
        ),
    };
    let _ = writeln!(out, "  hooks {}: {what}", h.file.display());
}

/// `1 URL`, `505 URLs`.
pub fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
