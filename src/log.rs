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
//! file or closes. Lines are buffered and flushed every second, at shutdown,
//! or at once with `UnbufferLogs`. SIGUSR1 reopens the file (logrotate).
//! Diagnostics go through `tracing` to stderr, not here.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub const FILE_NAME: &str = "apt-cacher.log";

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
    /// Received from upstream for this file (written as an `I` line before
    /// the record itself).
    fetched: u64,
    path: String,
    status: u16,
}

/// The log file, shared by every connection.
#[derive(Debug)]
pub struct TransferLog {
    path: Option<PathBuf>,
    writer: Mutex<Option<BufWriter<File>>>,
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
        Ok(TransferLog {
            path,
            writer: Mutex::new(writer),
            verbose,
            unbuffered,
        })
    }

    /// Writes `record`, after the `I` line of what it fetched, if anything.
    fn write(&self, client: &str, record: &Record) {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let Some(writer) = guard.as_mut() else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let fetched = (record.fetched > 0).then(|| Record {
            direction: Direction::In,
            bytes: record.fetched,
            fetched: 0,
            path: record.path.clone(),
            status: 200,
        });
        let result = fetched
            .iter()
            .chain([record])
            .try_for_each(|r| self.line(writer, now, client, r))
            .and_then(|()| if self.unbuffered { writer.flush() } else { Ok(()) });
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

    /// Closes and reopens the file, after logrotate moved it away.
    pub fn reopen(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut old) = guard.take() {
            let _ = old.flush();
        }
        *guard = Some(open_append(path)?);
        Ok(())
    }
}

/// About what a response head with these fields takes on the wire: the
/// byte counts of the transfer log.
pub fn head_bytes(headers: &http::HeaderMap) -> u64 {
    let fields: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    (fields + "HTTP/1.1 200 OK\r\n\r\n".len()) as u64
}

fn open_append(path: &std::path::Path) -> io::Result<BufWriter<File>> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    Ok(BufWriter::with_capacity(64 * 1024, file))
}

/// One connection's view of the log: its client name and the record being
/// summed.
#[derive(Debug)]
pub struct ConnLog {
    log: Arc<TransferLog>,
    client: Arc<str>,
    pending: Mutex<Option<Record>>,
}

impl ConnLog {
    pub fn new(log: Arc<TransferLog>, client: impl Into<Arc<str>>) -> Arc<ConnLog> {
        Arc::new(ConnLog {
            log,
            client: client.into(),
            pending: Mutex::new(None),
        })
    }

    pub fn client(&self) -> &str {
        &self.client
    }

    /// Starts the record of one response; it is logged when dropped.
    pub fn transfer(self: &Arc<Self>, path: String, status: u16, header_bytes: u64) -> Transfer {
        Transfer {
            conn: Arc::clone(self),
            path,
            status,
            bytes: header_bytes,
            fetched: None,
        }
    }

    /// Bytes a download started by this client received after the
    /// response that counted them had ended (`fetched`, emptied here): an
    /// `I` record of their own.
    pub fn fetched_late(&self, path: &str, fetched: &AtomicU64) {
        let bytes = fetched.swap(0, Ordering::Relaxed);
        if bytes > 0 {
            self.finish(Record {
                direction: Direction::In,
                bytes,
                fetched: 0,
                path: path.to_string(),
                status: 200,
            });
        }
    }

    fn finish(&self, record: Record) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.as_mut() {
            Some(p)
                if p.direction == record.direction
                    && p.path == record.path
                    && record.direction == Direction::Out =>
            {
                p.bytes += record.bytes;
                p.fetched += record.fetched;
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
        let pending = self.pending.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(record) = pending {
            self.log.write(&self.client, &record);
        }
    }
}

/// The accounting of one response: headers, then body bytes as they go.
#[derive(Debug)]
pub struct Transfer {
    conn: Arc<ConnLog>,
    path: String,
    status: u16,
    bytes: u64,
    /// Bytes received from upstream for this response, counted by the
    /// download it started.
    fetched: Option<Arc<AtomicU64>>,
}

impl Transfer {
    pub fn add_body(&mut self, n: u64) {
        self.bytes += n;
    }

    /// This response started a download that counts its bytes in `fetched`.
    pub fn with_fetched(mut self, fetched: Arc<AtomicU64>) -> Transfer {
        self.fetched = Some(fetched);
        self
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        let direction = if self.status >= 400 {
            Direction::Error
        } else {
            Direction::Out
        };
        self.conn.finish(Record {
            direction,
            bytes: self.bytes,
            fetched: self.fetched.as_ref().map_or(0, |f| f.swap(0, Ordering::Relaxed)),
            path: std::mem::take(&mut self.path),
            status: self.status,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let conn = ConnLog::new(Arc::clone(&log), "192.0.2.7");
        conn.transfer("debrep/a.deb".into(), 200, 100);
        conn.transfer("debrep/a.deb".into(), 206, 50);
        conn.transfer("debrep/b.deb".into(), 200, 10);
        conn.transfer("debrep/nope.html".into(), 403, 7);
        drop(conn);
        log.flush();
        assert_eq!(
            lines(dir.path()),
            [
                "O|150|192.0.2.7|debrep/a.deb",
                "O|10|192.0.2.7|debrep/b.deb",
                "E|7|192.0.2.7|debrep/nope.html [HTTP error, code: 403]"
            ]
        );
    }

    #[test]
    fn terse_lines_without_verbose_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(TransferLog::open(Some(dir.path()), false, true).unwrap());
        drop(ConnLog::new(Arc::clone(&log), "c").transfer("x/y.deb".into(), 200, 42));
        assert_eq!(lines(dir.path()), ["O|42"], "UnbufferLogs writes without a flush");
    }

    #[test]
    fn reopen_follows_a_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(TransferLog::open(Some(dir.path()), true, true).unwrap());
        drop(ConnLog::new(Arc::clone(&log), "c").transfer("x/1.deb".into(), 200, 1));
        std::fs::rename(dir.path().join(FILE_NAME), dir.path().join("apt-cacher.log.1")).unwrap();
        log.reopen().unwrap();
        drop(ConnLog::new(Arc::clone(&log), "c").transfer("x/2.deb".into(), 200, 2));
        assert_eq!(lines(dir.path()), ["O|2|c|x/2.deb"]);
    }
}
