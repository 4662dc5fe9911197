//! The orphan list, `_expending_dat` in acng's format (spec §6.4): one line
//! per file no index referenced at the last expiration, with the time it
//! was first found so, `<unix time>\t<directory/>\t<file name>`. Kept in
//! acng's format so that an acng-written cache keeps its history, and acng
//! can go on from debcache's.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Files and when each was first found unreferenced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Orphans {
    since: HashMap<String, SystemTime>,
}

impl Orphans {
    /// Reads a list; lines that are not `time\tdir/\tname` are dropped (and
    /// counted): a damaged list costs those files their head start, never
    /// a deletion.
    pub fn parse(bytes: &[u8]) -> (Orphans, usize) {
        let mut orphans = Orphans::default();
        let mut bad = 0;
        for line in bytes.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            match parse_line(line) {
                Some((path, since)) => {
                    // The earliest wins: acng keeps the first time.
                    let entry = orphans.since.entry(path).or_insert(since);
                    *entry = (*entry).min(since);
                }
                None => bad += 1,
            }
        }
        (orphans, bad)
    }

    /// Since when `path` is unreferenced, if it was at the last run.
    pub fn since(&self, path: &str) -> Option<SystemTime> {
        self.since.get(path).copied()
    }

    pub fn insert(&mut self, path: String, since: SystemTime) {
        self.since.insert(path, since);
    }

    pub fn is_empty(&self) -> bool {
        self.since.is_empty()
    }

    /// The listed paths, sorted.
    pub fn paths(&self) -> Vec<&str> {
        let mut paths: Vec<&str> = self.since.keys().map(String::as_str).collect();
        paths.sort_unstable();
        paths
    }

    /// The list as acng writes it, sorted by path.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for path in self.paths() {
            let secs = self.since[path]
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            let _ = writeln!(out, "{secs}\t{dir}/\t{name}");
        }
        out
    }
}

fn parse_line(line: &[u8]) -> Option<(String, SystemTime)> {
    let line = std::str::from_utf8(line).ok()?;
    let mut fields = line.split('\t');
    let (secs, dir, name) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || name.is_empty() || name.contains('/') || !dir.ends_with('/') {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let dir = dir.trim_end_matches('/');
    let path = if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    };
    // A time past what the clock holds would overflow: a damaged line.
    Some((path, UNIX_EPOCH.checked_add(Duration::from_secs(secs))?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn acngs_lines_are_read_and_written_back_alike() {
        let text = "1795318600\tdebrep/pool/main/a/apt/\tapt_2.6_amd64.deb\n\
                    1795318000\tdebrep/dists/old/\tInRelease\n";
        let (orphans, bad) = Orphans::parse(text.as_bytes());
        assert_eq!(bad, 0);
        assert_eq!(
            orphans.since("debrep/pool/main/a/apt/apt_2.6_amd64.deb"),
            Some(at(1795318600))
        );
        assert_eq!(orphans.since("debrep/dists/old/InRelease"), Some(at(1795318000)));
        assert_eq!(
            orphans.render(),
            "1795318000\tdebrep/dists/old/\tInRelease\n\
             1795318600\tdebrep/pool/main/a/apt/\tapt_2.6_amd64.deb\n"
        );
    }

    #[test]
    fn damaged_lines_are_dropped_and_the_earliest_time_stays() {
        let text = b"x\ty/\tz\n12\tno-slash\tf\n13\td/\t\n14\td/\tf\textra\n\xff\td/\tf\n\
                     20\td/\tf\n10\td/\tf\n";
        let (orphans, bad) = Orphans::parse(text);
        assert_eq!(bad, 5);
        assert_eq!(orphans.paths(), ["d/f"]);
        assert_eq!(orphans.since("d/f"), Some(at(10)));
    }

    #[test]
    fn a_time_no_clock_can_hold_is_a_damaged_line() {
        let text = format!("{}\td/\tf\n{}\td/\tg\n", u64::MAX, i64::MAX as u64 + 1);
        let (orphans, bad) = Orphans::parse(text.as_bytes());
        assert_eq!((bad, orphans.is_empty()), (2, true));
    }

    proptest! {
        /// Whatever the file holds (times up to u64's and past it), what
        /// was read writes back as a list that reads again whole and the
        /// same.
        #[test]
        fn any_list_reads_and_what_was_read_writes_back(
            lines in proptest::collection::vec(
                (
                    prop_oneof![
                        any::<u64>().prop_map(|n| n.to_string()),
                        "[0-9]{1,21}|x",
                    ],
                    "[a-z/.]{0,12}",
                    "[a-z./]{0,6}",
                ),
                0..8,
            ),
            noise in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut text: Vec<u8> = lines
                .iter()
                .flat_map(|(secs, dir, name)| format!("{secs}\t{dir}\t{name}\n").into_bytes())
                .collect();
            text.extend(noise);
            let (orphans, _) = Orphans::parse(&text);
            let (again, bad) = Orphans::parse(orphans.render().as_bytes());
            prop_assert_eq!(bad, 0);
            prop_assert_eq!(again, orphans);
        }
    }
}
