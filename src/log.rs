//! The transfer log, `LogDir/apt-cacher.log`, in apt-cacher-ng's format
//! (spec §9.1), which log analysers and acng's own report page parse:
//!
//! ```text
//! <unix-time>|O|<bytes sent, headers included>|<client>|<cache path>
//! <unix-time>|I|<bytes received from upstream>|<client>|<cache path>
//! <unix-time>|E|<bytes sent>|<client>|<cache path> [HTTP error, code: 503]
//! ```
//!
//! As in acng, consecutive transfers of one file on one connection are
//! summed into one record, written when the connection moves to another
//! file or closes. Each finished transfer is counted in the statistics
//! (`stats`) as it is recorded here: the log and the counts are one record. Lines are buffered and flushed every second, at shutdown,
//! or at once with `UnbufferLogs`. SIGUSR1 reopens the file (logrotate).
//! Diagnostics go through `tracing` to stderr, not here.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::stats::{Sending, Served, Stats};

pub const FILE_NAME: &str = "apt-cacher.log";
/// The daemon's errors, beside it.
pub const ERR_FILE_NAME: &str = "apt-cacher.err";

/// The three kinds of record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received from upstream.
    In,
    /// Sent to a client.
    Out,
    /// A failed request; the bytes are what the client got.
    Error,
}

impl Direction {
    fn letter(self) -> char {
        match self {
            Direction::In => 'I',
            Direction::Out => 'O',
            Direction::Error => 'E',
        }
    }
}

#[derive(Debug)]
struct Record {
    direction: Direction,
    bytes: u64,
    path: String,
    status: u16,
}

/// The log file, shared by every connection.
#[derive(Debug)]
pub struct TransferLog {
    path: Option<PathBuf>,
    writer: Mutex<Option<BufWriter<File>>>,
    /// `apt-cacher.err` beside it: the daemon's warnings and errors, a line
    /// each, written at once (they are few).
    errors: Mutex<Option<File>>,
    verbose: bool,
    unbuffered: bool,
}

impl TransferLog {
    /// Opens `dir/apt-cacher.log` for appending; `None` logs nothing.
    pub fn open(dir: Option<&std::path::Path>, verbose: bool, unbuffered: bool) -> io::Result<TransferLog> {
        let path = dir.map(|d| d.join(FILE_NAME));
        let writer = match &path {
            Some(p) => {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                Some(open_append(p)?)
            }
            None => None,
        };
        let errors = match dir {
            Some(d) => Some(open_raw(&d.join(ERR_FILE_NAME))?),
            None => None,
        };
        Ok(TransferLog {
            path,
            writer: Mutex::new(writer),
            errors: Mutex::new(errors),
            verbose,
            unbuffered,
        })
    }

    fn write(&self, client: &str, record: &Record) {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let Some(writer) = guard.as_mut() else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let result = self.line(writer, now, client, record).and_then(|()| {
            if self.unbuffered {
                writer.flush()
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            tracing::error!("transfer log: {e}");
        }
    }

    /// One line of spec §9.1.
    fn line(&self, w: &mut impl Write, now: u64, client: &str, record: &Record) -> io::Result<()> {
        let (letter, path) = (record.direction.letter(), &record.path);
        if !self.verbose {
            writeln!(w, "{now}|{letter}|{}", record.bytes)
        } else if record.direction == Direction::Error {
            writeln!(
                w,
                "{now}|{letter}|{}|{client}|{path} [HTTP error, code: {}]",
                record.bytes, record.status
            )
        } else {
            writeln!(w, "{now}|{letter}|{}|{client}|{path}", record.bytes)
        }
    }

    pub fn flush(&self) {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Err(e)) = guard.as_mut().map(Write::flush) {
            tracing::error!("transfer log: {e}");
        }
    }

    /// Closes and reopens the files, after logrotate moved them away.
    pub fn reopen(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut old) = guard.take() {
            let _ = old.flush();
        }
        *guard = Some(open_append(path)?);
        drop(guard);
        let errors = open_raw(&path.with_file_name(ERR_FILE_NAME))?;
        *self.errors.lock().unwrap_or_else(|p| p.into_inner()) = Some(errors);
        Ok(())
    }

    /// One line of `apt-cacher.err` (spec §9.2): acng's local `ctime`
    /// time, `|`, the text. A line that cannot be written is lost: the log
    /// of a failing log would only fail again.
    pub fn error_line(&self, text: &str) {
        let mut guard = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = guard.as_mut() {
            let line = format!("{}|{}\n", ctime_now(), text.replace('\n', " "));
            let _ = file.write_all(line.as_bytes());
        }
    }
}

/// About what a response head with these fields takes on the wire: the
/// byte counts of the transfer log.
pub fn head_bytes(headers: &http::HeaderMap) -> u64 {
    let fields: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    (fields + "HTTP/1.1 200 OK\r\n\r\n".len()) as u64
}

fn open_append(path: &std::path::Path) -> io::Result<BufWriter<File>> {
    Ok(BufWriter::with_capacity(64 * 1024, open_raw(path)?))
}

fn open_raw(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Now as `ctime(3)` writes it in the local time zone, without its
/// newline: `Sun Nov 22 02:33:56 2026`.
fn ctime_now() -> String {
    let now: libc::time_t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as libc::time_t);
    // SAFETY: localtime_r and strftime write only into the buffers given,
    // whose sizes are passed; the format is a NUL-terminated literal.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return now.to_string();
        }
        let mut buf = [0u8; 64];
        let n = libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%a %b %e %H:%M:%S %Y".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// `I` records held for the responses they belong to, at most.
const MAX_HELD: usize = 64;

/// One connection's view of the log and the statistics: its client name
/// and the records not written yet.
#[derive(Debug)]
pub struct ConnLog {
    log: Arc<TransferLog>,
    stats: Arc<Stats>,
    client: Arc<str>,
    records: Mutex<Unwritten>,
}

#[derive(Debug, Default)]
struct Unwritten {
    /// The last record, which the next one of the same file adds to.
    pending: Option<Record>,
    /// `I` records of downloads that ended before their responses did
    /// (pipelined requests read ahead): each is written just before its
    /// file's response record, so that the log pairs them as acng's does.
    held: Vec<Record>,
}

impl ConnLog {
    pub fn new(log: Arc<TransferLog>, stats: Arc<Stats>, client: impl Into<Arc<str>>) -> Arc<ConnLog> {
        Arc::new(ConnLog {
            log,
            stats,
            client: client.into(),
            records: Mutex::default(),
        })
    }

    pub fn client(&self) -> &str {
        &self.client
    }

    /// Starts the record of one response, answered `how`; it is logged
    /// and counted when dropped.
    pub fn transfer(self: &Arc<Self>, path: String, status: u16, header_bytes: u64, how: Served) -> Transfer {
        Transfer {
            conn: Arc::clone(self),
            _sending: self.stats.sending(),
            path,
            status,
            how,
            bytes: header_bytes,
        }
    }

    /// A download this client started received `bytes` for `path` (a
    /// cache key, `repo/…`): an `I` record, before the response's own
    /// when the download ends first, as it does once all is written.
    pub fn fetched(&self, path: &str, bytes: u64) {
        if bytes == 0 {
            return;
        }
        self.stats.fetched(self.stats.repo(repo_of(path)), bytes);
        self.finish(Record {
            direction: Direction::In,
            bytes,
            path: path.to_string(),
            status: 200,
        });
    }

    /// A CONNECT tunnel ended: its bytes to the target (`I`, as nothing
    /// else goes that way) and to the client (`O`). Counted as relayed.
    pub fn tunnel(self: &Arc<Self>, name: String, up: u64, down: u64) {
        self.stats.fetched(self.stats.repo(""), down);
        if up > 0 {
            self.finish(Record {
                direction: Direction::In,
                bytes: up,
                path: name.clone(),
                status: 200,
            });
        }
        self.transfer(name, 200, 0, Served::Relayed).add_body(down);
    }

    fn finish(&self, record: Record) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let Unwritten { pending, held } = &mut *records;
        if record.direction == Direction::In {
            if held.len() >= MAX_HELD {
                let oldest = held.remove(0);
                self.emit(pending, oldest);
            }
            held.push(record);
            return;
        }
        if let Some(i) = held.iter().position(|h| h.path == record.path) {
            let fetched = held.remove(i);
            self.emit(pending, fetched);
        }
        self.emit(pending, record);
    }

    fn emit(&self, pending: &mut Option<Record>, record: Record) {
        match pending.as_mut() {
            Some(p)
                if p.direction == record.direction
                    && p.path == record.path
                    && record.direction == Direction::Out =>
            {
                p.bytes += record.bytes;
                return;
            }
            _ => {}
        }
        if let Some(previous) = pending.take() {
            self.log.write(&self.client, &previous);
        }
        if record.direction == Direction::Error {
            self.log.write(&self.client, &record);
        } else {
            *pending = Some(record);
        }
    }
}

impl Drop for ConnLog {
    fn drop(&mut self) {
        let records = std::mem::take(self.records.get_mut().unwrap_or_else(|p| p.into_inner()));
        for record in records.pending.iter().chain(&records.held) {
            self.log.write(&self.client, record);
        }
    }
}

/// The accounting of one response: headers, then body bytes as they go.
#[derive(Debug)]
pub struct Transfer {
    conn: Arc<ConnLog>,
    _sending: Sending,
    path: String,
    status: u16,
    how: Served,
    bytes: u64,
}

impl Transfer {
    pub fn add_body(&mut self, n: u64) {
        self.bytes += n;
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        let (direction, how) = if self.status >= 400 {
            (Direction::Error, Served::Error)
        } else {
            (Direction::Out, self.how)
        };
        let stats = &self.conn.stats;
        stats.served(stats.repo(repo_of(&self.path)), how, self.bytes);
        self.conn.finish(Record {
            direction,
            bytes: self.bytes,
            path: std::mem::take(&mut self.path),
            status: self.status,
        });
    }
}

/// The repository of a record's path (a cache key, `repo/…`).
fn repo_of(path: &str) -> &str {
    path.split('/').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(log: &Arc<TransferLog>) -> Arc<ConnLog> {
        ConnLog::new(Arc::clone(log), Arc::new(Stats::new([])), "c")
    }

    fn lines(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(dir.join(FILE_NAME))
            .unwrap()
            .lines()
            .map(|l| l.split_once('|').unwrap().1.to_string())
            .collect()
    }

    #[test]
    fn consecutive_transfers_of_one_file_are_summed() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(TransferLog::open(Some(dir.path()), true, false).unwrap());
        let stats = Arc::new(Stats::new(["debrep"]));
        let conn = ConnLog::new(Arc::clone(&log), Arc::clone(&stats), "192.0.2.7");
        conn.fetched("debrep/a.deb", 90);
        conn.transfer("debrep/a.deb".into(), 200, 100, Served::Miss);
        conn.transfer("debrep/a.deb".into(), 206, 50, Served::Hit);
        conn.transfer("debrep/b.deb".into(), 200, 10, Served::Hit);
        conn.transfer("debrep/nope.html".into(), 403, 7, Served::Miss);
        drop(conn);
        log.flush();
        assert_eq!(
            lines(dir.path()),
            [
                "I|90|192.0.2.7|debrep/a.deb",
                "O|150|192.0.2.7|debrep/a.deb",
                "O|10|192.0.2.7|debrep/b.deb",
                "E|7|192.0.2.7|debrep/nope.html [HTTP error, code: 403]"
            ]
        );
        // The same records, counted.
        let s = stats.snapshot();
        let t = s.since_start;
        assert_eq!((t.requests, t.misses, t.hits, t.errors), (4, 1, 2, 1));
        assert_eq!(
            (t.bytes_served, t.bytes_fetched, t.bytes_from_cache),
            (167, 90, 60)
        );
        assert_eq!(s.repos[0].0, "debrep");
        assert_eq!(s.repos[0].1.requests, 4);
        assert_eq!(s.active, 0);
    }

    #[test]
    fn downloads_read_ahead_are_logged_with_their_responses() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(TransferLog::open(Some(dir.path()), true, false).unwrap());
        let conn = conn(&log);
        conn.fetched("r/a.deb", 1);
        conn.fetched("r/b.deb", 2);
        conn.fetched("r/gone.deb", 3);
        conn.transfer("r/a.deb".into(), 200, 10, Served::Miss);
        conn.transfer("r/b.deb".into(), 200, 20, Served::Miss);
        drop(conn);
        log.flush();
        assert_eq!(
            lines(dir.path()),
            [
                "I|1|c|r/a.deb",
                "O|10|c|r/a.deb",
                "I|2|c|r/b.deb",
                "O|20|c|r/b.deb",
                "I|3|c|r/gone.deb"
            ],
            "a download whose request never came is logged when the connection ends"
        );
    }

    #[test]
    fn terse_lines_without_verbose_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(TransferLog::open(Some(dir.path()), false, true).unwrap());
        drop(conn(&log).transfer("x/y.deb".into(), 200, 42, Served::Hit));
        assert_eq!(lines(dir.path()), ["O|42"], "UnbufferLogs writes without a flush");
    }

    #[test]
    fn reopen_follows_a_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(TransferLog::open(Some(dir.path()), true, true).unwrap());
        drop(conn(&log).transfer("x/1.deb".into(), 200, 1, Served::Hit));
        std::fs::rename(dir.path().join(FILE_NAME), dir.path().join("apt-cacher.log.1")).unwrap();
        log.reopen().unwrap();
        drop(conn(&log).transfer("x/2.deb".into(), 200, 2, Served::Hit));
        assert_eq!(lines(dir.path()), ["O|2|c|x/2.deb"]);
    }
}
