//! One maintenance task: its output, kept in memory (the last [`KEPT`]
//! pieces) for everyone who watches it and appended to its log file, and
//! the flag that asks it to stop.
//!
//! The job runs on a blocking thread and writes through a [`Ctx`]; viewers
//! read from a cursor, woken by a watch value that changes with every
//! piece. A viewer that falls more than [`KEPT`] pieces behind is told how
//! many it missed (they are in the log file); the job never waits for a
//! viewer.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::watch;

use super::output::{self, Kind};

/// Pieces of output kept for viewers who join late.
pub const KEPT: usize = 1000;

/// Why a task was asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Its Cancel link.
    Cancelled = 1,
    /// The daemon is stopping.
    Shutdown = 2,
}

#[derive(Debug)]
pub struct Task {
    pub id: u64,
    pub name: &'static str,
    /// The query that starts it, before `&sigabort=` in its Cancel link.
    pub query: &'static str,
    pub started: SystemTime,
    stop: AtomicU8,
    output: Mutex<Output>,
    /// Changes with every piece and at the end.
    changed: watch::Sender<()>,
}

#[derive(Debug, Default)]
struct Output {
    kept: VecDeque<Arc<str>>,
    /// The number of the first piece kept (pieces are numbered from 0).
    first: u64,
    done: bool,
}

impl Task {
    pub fn new(id: u64, name: &'static str, query: &'static str) -> Task {
        Task {
            id,
            name,
            query,
            started: SystemTime::now(),
            stop: AtomicU8::new(0),
            output: Mutex::default(),
            changed: watch::channel(()).0,
        }
    }

    /// Asks the job to stop; the first reason given stays.
    pub fn stop(&self, why: Stop) {
        let _ = self
            .stop
            .compare_exchange(0, why as u8, Ordering::SeqCst, Ordering::SeqCst);
    }

    pub fn stopped(&self) -> Option<Stop> {
        match self.stop.load(Ordering::SeqCst) {
            1 => Some(Stop::Cancelled),
            2 => Some(Stop::Shutdown),
            _ => None,
        }
    }

    pub fn is_done(&self) -> bool {
        self.lock().done
    }

    /// Woken by every new piece and by the end.
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.changed.subscribe()
    }

    /// The pieces from number `*cursor` on, joined, with `*cursor` moved
    /// past them; and whether the task has ended (nothing more will come).
    pub fn read(&self, cursor: &mut u64) -> (String, bool) {
        let out = self.lock();
        let mut text = String::new();
        if *cursor < out.first {
            let missed = out.first - *cursor;
            text.push_str(&output::line(
                Kind::Warning,
                &format!("({missed} earlier lines are only in the log file.)"),
            ));
            *cursor = out.first;
        }
        let skip = (*cursor - out.first) as usize;
        for piece in out.kept.iter().skip(skip) {
            text.push_str(piece);
        }
        *cursor = out.first + out.kept.len() as u64;
        (text, out.done)
    }

    fn push(&self, piece: Arc<str>) {
        let mut out = self.lock();
        if out.kept.len() == KEPT {
            out.kept.pop_front();
            out.first += 1;
        }
        out.kept.push_back(piece);
        drop(out);
        self.changed.send_replace(());
    }

    fn end(&self) {
        self.lock().done = true;
        self.changed.send_replace(());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Output> {
        self.output.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a job writes through, on its blocking thread.
#[derive(Debug)]
pub struct Ctx {
    task: Arc<Task>,
    log: Option<(File, PathBuf)>,
    /// The log file's end, written by [`Ctx::finish`].
    log_tail: String,
}

impl Ctx {
    /// Opens the task's log file in `log_dir` (when set) and writes its
    /// head; a log file that cannot be made is said as a warning.
    pub fn open(task: Arc<Task>, log_dir: Option<&Path>) -> Ctx {
        let mut ctx = Ctx {
            task,
            log: None,
            log_tail: String::new(),
        };
        if let Some(dir) = log_dir {
            match create_log(dir, ctx.task.started) {
                Ok((mut file, path)) => {
                    let started = output::utc_minute(unix_seconds(ctx.task.started)) + " UTC";
                    if let Ok(document) = output::log_document(ctx.task.name, &started) {
                        let _ = file.write_all(document.head.as_bytes());
                        ctx.log_tail = document.tail;
                    }
                    ctx.log = Some((file, path));
                }
                Err(e) => ctx.say(
                    Kind::Warning,
                    &format!("No log file for this task: cannot create it in LogDir: {e}"),
                ),
            }
        }
        ctx
    }

    /// Whether the job should stop now (cancelled, or the daemon stops).
    pub fn should_stop(&self) -> bool {
        self.task.stopped().is_some()
    }

    /// One line of text.
    pub fn say(&mut self, kind: Kind, text: &str) {
        if matches!(kind, Kind::Error | Kind::Problem) {
            tracing::warn!(task = self.task.name, "{text}");
        }
        self.html(output::line(kind, text));
    }

    /// Markup made by the job itself (a table), every text in it escaped.
    pub fn html(&mut self, html: String) {
        if let Some((file, path)) = &mut self.log {
            if let Err(e) = file.write_all(html.as_bytes()) {
                tracing::warn!(
                    "cannot write {}: {e}; the task goes on without it",
                    path.display()
                );
                self.log = None;
            }
        }
        self.task.push(Arc::from(html));
    }

    /// Ends the log file and tells every viewer that nothing more comes.
    pub fn finish(mut self) {
        if let Some((file, _)) = &mut self.log {
            let _ = file.write_all(self.log_tail.as_bytes());
        }
        self.task.end();
    }
}

/// `maint_<unixtime>.log.html` in `dir`, never one that exists: a later
/// second is taken when two tasks start in the same one.
fn create_log(dir: &Path, started: SystemTime) -> std::io::Result<(File, PathBuf)> {
    let t = unix_seconds(started);
    let mut last = None;
    for later in 0..60 {
        let path = dir.join(format!("maint_{}.log.html", t + later));
        match File::options().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into()))
}

pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Arc<Task> {
        Arc::new(Task::new(1, "Count Objects", "doCount=Count+Objects"))
    }

    #[test]
    fn a_viewer_reads_from_where_it_is_and_learns_the_end() {
        let task = task();
        let mut ctx = Ctx::open(Arc::clone(&task), None);
        ctx.say(Kind::Plain, "one");
        let mut cursor = 0;
        assert_eq!(task.read(&mut cursor), ("one<br>\n".to_string(), false));
        ctx.say(Kind::Good, "two");
        let mut late = 0;
        let (text, done) = task.read(&mut cursor);
        assert!(text.contains("two") && !text.contains("one") && !done);
        ctx.finish();
        assert_eq!(task.read(&mut cursor), (String::new(), true));
        let (all, done) = task.read(&mut late);
        assert!(
            all.starts_with("one<br>") && all.contains("two") && done,
            "a late viewer gets it all"
        );
    }

    #[test]
    fn memory_keeps_the_last_lines_and_says_what_a_late_viewer_missed() {
        let task = task();
        let mut ctx = Ctx::open(Arc::clone(&task), None);
        for i in 0..KEPT + 5 {
            ctx.say(Kind::Plain, &i.to_string());
        }
        let mut cursor = 0;
        let (text, _) = task.read(&mut cursor);
        assert!(
            text.starts_with("<span class=\"WARNING\">(5 earlier lines"),
            "{}",
            &text[..80]
        );
        assert!(text.contains("\n5<br>") && !text.contains("\n4<br>"));
        assert_eq!(cursor, (KEPT + 5) as u64);
    }

    #[test]
    fn the_first_reason_to_stop_stays() {
        let task = task();
        assert_eq!(task.stopped(), None);
        task.stop(Stop::Cancelled);
        task.stop(Stop::Shutdown);
        assert_eq!(task.stopped(), Some(Stop::Cancelled));
    }

    #[test]
    fn the_log_file_is_a_document_of_the_same_lines() {
        let dir = tempfile::tempdir().unwrap();
        let first = task();
        let mut ctx = Ctx::open(Arc::clone(&first), Some(dir.path()));
        ctx.say(Kind::Error, "broken <dir>");
        ctx.finish();
        // Started in the same second: the next second's name.
        let mut again = Ctx::open(task(), Some(dir.path()));
        again.say(Kind::Plain, "again");
        again.finish();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        let t = unix_seconds(first.started);
        assert_eq!(names[0], format!("maint_{t}.log.html"));
        let text = std::fs::read_to_string(dir.path().join(&names[0])).unwrap();
        assert!(text.starts_with("<!DOCTYPE html>") && text.trim_end().ends_with("</html>"));
        assert!(text.contains(".ERROR{color:red}"));
        assert!(text.contains("<span class=\"ERROR\">broken &lt;dir&gt;</span>"));
        assert!(text.contains("41d_a6aeb8-26dfa2broken <dir>"));
    }
}
