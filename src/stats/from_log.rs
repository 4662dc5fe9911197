//! Hours rebuilt from transfer logs (spec §9.1: `time|I|bytes|…` for bytes
//! from a mirror, `O` for bytes to a client, `E` for an error answer), by
//! acng's own reckoning (spec §8.4): per hour, the `I` lines are misses and
//! what the `O` lines exceed them by are hits, in requests and in bytes.
//! Read line by line: memory does not grow with the logs.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use super::counters::Totals;

/// The lines of one hour, by kind: (count, bytes).
#[derive(Default)]
struct Lines {
    fetched: (u64, u64),
    served: (u64, u64),
    errors: (u64, u64),
}

impl Lines {
    fn totals(&self) -> Totals {
        let (i, o) = (self.fetched, self.served);
        Totals {
            requests: i.0.max(o.0) + self.errors.0,
            hits: i.0.max(o.0) - i.0,
            misses: i.0,
            errors: self.errors.0,
            bytes_served: o.1 + self.errors.1,
            bytes_from_cache: i.1.max(o.1) - i.1,
            bytes_fetched: i.1,
            ..Totals::default()
        }
    }
}

/// Lines read between two questions to `keep_going`.
const ASK_EVERY: usize = 64 * 1024;

/// The hours from `since` on that the logs in `dir` (the files whose names
/// begin with `name`) tell of, and how many lines counted. Reading stops
/// early (with what it has) once `keep_going`, asked before each file and
/// every [`ASK_EVERY`] lines, says no.
pub fn hours(
    dir: &Path,
    name: &str,
    since: u64,
    keep_going: &dyn Fn() -> bool,
) -> io::Result<(Vec<(u64, Totals)>, usize)> {
    let mut by_hour: BTreeMap<u64, Lines> = BTreeMap::new();
    let mut counted = 0;
    for entry in std::fs::read_dir(dir)? {
        if !keep_going() {
            break;
        }
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str().filter(|n| n.starts_with(name)) else {
            continue;
        };
        if !entry.file_type()?.is_file() {
            continue;
        }
        let file = std::fs::File::open(entry.path())?;
        let reader: Box<dyn Read> = if file_name.ends_with(".gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else if file_name.ends_with(".xz") {
            Box::new(xz2::read::XzDecoder::new_multi_decoder(file))
        } else if file_name.ends_with(".bz2") {
            Box::new(bzip2::read::MultiBzDecoder::new(file))
        } else {
            Box::new(file)
        };
        match count(BufReader::new(reader), since, &mut by_hour, keep_going) {
            Ok(n) => counted += n,
            // A damaged rotated log: what came before the damage counts.
            Err(e) => tracing::warn!("{}: {e}", entry.path().display()),
        }
    }
    let hours = by_hour.into_iter().map(|(h, l)| (h, l.totals())).collect();
    Ok((hours, counted))
}

fn count(
    mut reader: impl BufRead,
    since: u64,
    by_hour: &mut BTreeMap<u64, Lines>,
    keep_going: &dyn Fn() -> bool,
) -> io::Result<usize> {
    let mut counted = 0;
    let mut line = Vec::new();
    for read in 1usize.. {
        if read % ASK_EVERY == 0 && !keep_going() {
            break;
        }
        line.clear();
        // Bounded: a line without an end in sight is cut at 64 KiB.
        if (&mut reader).take(64 * 1024).read_until(b'\n', &mut line)? == 0 {
            return Ok(counted);
        }
        let Some((time, kind, bytes)) = parse(&line) else {
            continue;
        };
        let hour = time / 3600;
        if hour < since {
            continue;
        }
        let lines = by_hour.entry(hour).or_default();
        let slot = match kind {
            b'I' => &mut lines.fetched,
            b'O' => &mut lines.served,
            _ => &mut lines.errors,
        };
        slot.0 += 1;
        slot.1 = slot.1.saturating_add(bytes);
        counted += 1;
    }
    Ok(counted)
}

/// `time|kind|bytes|…`; anything else (acng's other lines) is skipped.
fn parse(line: &[u8]) -> Option<(u64, u8, u64)> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let mut fields = text.split('|');
    let time = fields.next()?.parse().ok()?;
    let kind = match fields.next()? {
        "I" => b'I',
        "O" => b'O',
        "E" => b'E',
        _ => return None,
    };
    let bytes = fields.next()?.parse().ok()?;
    Some((time, kind, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rotated_and_compressed_logs_count_by_acngs_reckoning() {
        let dir = tempfile::tempdir().unwrap();
        let hour = 500_000u64;
        let t = hour * 3600;
        std::fs::write(
            dir.path().join("apt-cacher.log"),
            format!("{t}|I|100|c|r/a.deb\n{t}|O|110|c|r/a.deb\n{t}|O|110|c|r/a.deb\nnot a record\n"),
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(dir.path().join("apt-cacher.log.2.gz")).unwrap(),
            flate2::Compression::fast(),
        );
        write!(
            gz,
            "{}|E|50|c|r/x.deb [HTTP error, code: 503]\n{}|O|7\n",
            t + 60,
            t - 3600
        )
        .unwrap();
        gz.finish().unwrap();
        std::fs::write(dir.path().join("apt-cacher.err"), format!("{t}|O|1000|c|r/b\n")).unwrap();
        std::fs::write(
            dir.path().join("apt-cacher.log.1"),
            format!("{}|O|1|c|r/old\n", t - 7200),
        )
        .unwrap();

        let (hours, lines) = hours(dir.path(), "apt-cacher.log", hour - 1, &|| true).unwrap();
        assert_eq!(lines, 5, "the too old line and other files are not counted");
        assert_eq!(hours.len(), 2);
        let (h, last) = hours[1];
        assert_eq!(h, hour);
        assert_eq!((last.requests, last.misses, last.hits, last.errors), (3, 1, 1, 1));
        assert_eq!(
            (last.bytes_fetched, last.bytes_served, last.bytes_from_cache),
            (100, 270, 120)
        );
        assert_eq!(
            hours[0],
            (
                hour - 1,
                Totals {
                    requests: 1,
                    hits: 1,
                    bytes_served: 7,
                    bytes_from_cache: 7,
                    ..Totals::default()
                }
            )
        );
        let (none, lines) = super::hours(dir.path(), "apt-cacher.log", hour - 1, &|| false).unwrap();
        assert_eq!((none.len(), lines), (0, 0), "stopped before the first file");
    }
}
