//! `CacheDir/_debcache/stats`: the last week's hours, one line each, under
//! a line naming the columns (so that a later version can add columns and
//! still read this one's files):
//!
//! ```text
//! # debcache statistics 1
//! hour requests hits revalidated coalesced misses relayed errors bytes_served bytes_from_cache bytes_fetched
//! 493152 12 10 0 1 1 0 0 6021 5900 121
//! ```
//!
//! Written to a temporary name, synced and renamed, so that a crash leaves
//! the previous file or the new one.

use std::io::{self, Write};
use std::path::Path;

use super::counters::{Totals, FIELDS};

const MAGIC: &str = "# debcache statistics 1";
/// Larger files are not ours to read whole.
const MAX_LEN: u64 = 1 << 20;

pub fn write(path: &Path, hours: &[(u64, Totals)]) -> io::Result<()> {
    let mut text = format!("{MAGIC}\nhour {}\n", FIELDS.join(" "));
    for (hour, totals) in hours {
        text.push_str(&hour.to_string());
        for v in totals.values() {
            text.push(' ');
            text.push_str(&v.to_string());
        }
        text.push('\n');
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("new");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The hours in `path`; `None` when it does not exist. A damaged file is
/// an error, which the caller logs and then counts from the logs instead.
pub fn read(path: &Path) -> io::Result<Option<Vec<(u64, Totals)>>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    io::Read::read_to_string(&mut io::Read::take(file, MAX_LEN), &mut text)?;
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {why}", path.display()));
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(bad("not a debcache statistics file"));
    }
    let columns: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    if columns.first() != Some(&"hour") {
        return Err(bad("no column names"));
    }
    // Where each of our fields is in the file's columns (absent: 0).
    let place: Vec<Option<usize>> = FIELDS
        .iter()
        .map(|f| columns.iter().position(|c| c == f))
        .collect();
    let mut hours = Vec::new();
    for line in lines {
        let numbers: Vec<u64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| bad("a line that is not numbers"))?;
        if numbers.len() != columns.len() {
            return Err(bad("a line with the wrong number of columns"));
        }
        let values = std::array::from_fn(|i| place[i].map_or(0, |p| numbers[p]));
        hours.push((numbers[0], Totals::from_values(values)));
    }
    Ok(Some(hours))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_read_back_by_column_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stats");
        let t = Totals {
            requests: 3,
            hits: 2,
            bytes_fetched: 9,
            ..Totals::default()
        };
        write(&path, &[(7, t), (8, Totals::default())]).unwrap();
        assert_eq!(read(&path).unwrap().unwrap(), [(7, t), (8, Totals::default())]);
        // A file with fewer, reordered columns (another version).
        std::fs::write(&path, format!("{MAGIC}\nhour hits requests\n5 1 4\n")).unwrap();
        let got = read(&path).unwrap().unwrap();
        assert_eq!((got[0].0, got[0].1.requests, got[0].1.hits), (5, 4, 1));
        assert!(read(&dir.path().join("none")).unwrap().is_none());
        for damaged in [
            "garbage",
            &format!("{MAGIC}\nhour hits\n1 x\n"),
            &format!("{MAGIC}\nhour hits\n1\n"),
        ] {
            std::fs::write(&path, damaged).unwrap();
            assert_eq!(
                read(&path).unwrap_err().kind(),
                io::ErrorKind::InvalidData,
                "{damaged}"
            );
        }
    }
}
