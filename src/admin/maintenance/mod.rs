//! Maintenance tasks (spec §8.3): actions of the report page that run in
//! the background, one at a time, their progress streamed to the browser.
//!
//! | request | answer |
//! |---|---|
//! | a task's trigger, none running (`?doCount=Count+Objects`) | `200`, chunked `text/html`: the page head, a header line naming the task with its Cancel link, the task's lines as they come, the page end |
//! | a task's trigger while one runs | the same page for the running task, "A maintenance task is already running!", then that task's lines from its first (the last [`task::KEPT`] of them) to its end |
//! | `HEAD` of either | the headers only; nothing starts |
//! | `?…&sigabort=<id>` (the Cancel link) | `302` to the report page; the task of that id, if it runs, stops within a second |
//!
//! - Every line is also appended to `LogDir/maint_<unixtime>.log.html`
//!   (when LogDir is set), a document of its own.
//! - Errors are also acng's control lines ([`CONTROL_MARKER`]): cron mails
//!   them.
//! - The job runs on a thread of its own at the lowest CPU priority
//!   (`tasks::low_priority`), never on the runtime's workers, so clients'
//!   requests come first; it asks [`task::Ctx::should_stop`] between steps. A client that goes
//!   away stops only its own view; the task goes on.
//! - At shutdown ([`Maintenance::shut`]) the running task is told to stop
//!   and no other starts; the daemon waits for it ([`Maintenance::idle`]).
//!
//! This version's task is Count Objects (`count`). Resetting the
//! statistics is not a task: it is one store of zeros, answered with the
//! report page at once.

mod count;
mod expire;
mod output;
mod task;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use tokio::sync::mpsc;

use crate::body::ResponseBody;
use crate::cache::Cache;
pub use count::Summary as CountSummary;
pub use output::{control_line, ControlType, CONTROL_MARKER};
use output::{Frame, Kind};
use task::{Ctx, Stop, Task};

/// Pieces of a page waiting for a slow client, per viewer.
const VIEWER_QUEUE: usize = 8;

/// The task slot, and what the last count found.
#[derive(Debug)]
pub struct Maintenance {
    log_dir: Option<PathBuf>,
    slot: Mutex<Slot>,
    last_count: count::Last,
}

#[derive(Debug, Default)]
struct Slot {
    running: Option<Arc<Task>>,
    /// The daemon is stopping: nothing starts.
    stopping: bool,
    last_id: u64,
}

/// Where a task page links to.
#[derive(Clone, Copy, Debug)]
pub struct Links<'a> {
    /// How the client reached this server, for the page's title.
    pub authority: &'a str,
    /// The report page's path (`/acng-report.html`).
    pub report: &'a str,
}

/// How a request met the slot.
enum Joined {
    Started(Arc<Task>),
    AlreadyRunning(Arc<Task>),
}

type Job = Box<dyn FnOnce(&mut Ctx) + Send>;

impl Maintenance {
    /// Tasks writing their log files to `log_dir`.
    pub fn new(log_dir: Option<PathBuf>) -> Maintenance {
        Maintenance {
            log_dir,
            slot: Mutex::default(),
            last_count: count::Last::default(),
        }
    }

    /// Count Objects (`?doCount=`): starts it, or joins the running task.
    pub fn count(
        self: &Arc<Self>,
        cache: &Arc<Cache>,
        links: Links<'_>,
        head_only: bool,
    ) -> Result<Response<ResponseBody>, askama::Error> {
        if head_only {
            return Ok(answer(ResponseBody::empty()));
        }
        let job = count::job(
            Arc::clone(cache),
            self.log_dir.clone(),
            Arc::clone(&self.last_count),
        );
        let joined = self.start(
            crate::admin::auth::Action::Count.name(),
            count::QUERY,
            Box::new(job),
        );
        respond(joined, links)
    }

    /// The tasks on the cache's files (expiration and its lists, the
    /// damaged files and their confirmation, import, precaching): starts
    /// the task, or joins the running one.
    pub fn upkeep(
        self: &Arc<Self>,
        action: crate::admin::auth::Action,
        context: crate::maint::Context,
        query: &str,
        links: Links<'_>,
        head_only: bool,
    ) -> Result<Response<ResponseBody>, askama::Error> {
        use crate::admin::auth::Action;
        use crate::maint::expire::OnDamaged;
        if head_only {
            return Ok(answer(ResponseBody::empty()));
        }
        let (job, trigger): (Job, &'static str) = match action {
            Action::ListOrphans => (
                Box::new(expire::show(context, links.report.to_string())),
                expire::SHOW,
            ),
            Action::RemoveOrphans => (Box::new(expire::remove(context)), expire::REMOVE),
            Action::Import => (Box::new(expire::import(context)), expire::IMPORT),
            Action::ListDamaged => (
                Box::new(expire::show_damaged(context, links.report.to_string())),
                expire::SHOW_DAMAGED,
            ),
            Action::RemoveDamaged | Action::TruncateDamaged | Action::Delete | Action::Truncate => {
                let what = if matches!(action, Action::RemoveDamaged | Action::Delete) {
                    OnDamaged::Remove
                } else {
                    OnDamaged::Truncate
                };
                // The confirmed ones act on the ticked files only.
                let only =
                    matches!(action, Action::Delete | Action::Truncate).then(|| expire::selected(query));
                let trigger = match action {
                    Action::RemoveDamaged => expire::REMOVE_DAMAGED,
                    Action::TruncateDamaged => expire::TRUNCATE_DAMAGED,
                    _ => expire::SHOW_DAMAGED,
                };
                (Box::new(expire::damaged(context, what, only)), trigger)
            }
            Action::ConfirmDelete | Action::ConfirmTruncate => {
                let what = if action == Action::ConfirmDelete {
                    OnDamaged::Remove
                } else {
                    OnDamaged::Truncate
                };
                let job = expire::confirm(context, what, expire::selected(query), links.report.to_string());
                (Box::new(job), expire::SHOW_DAMAGED)
            }
            Action::Mirror => (
                Box::new(expire::mirror(
                    context,
                    crate::maint::precache::Options::from_query(query),
                )),
                expire::MIRROR,
            ),
            _ => (
                Box::new(expire::run(
                    context,
                    crate::maint::expire::Options::from_query(query),
                )),
                expire::EXPIRE,
            ),
        };
        let joined = self.start(action.name(), trigger, job);
        respond(joined, links)
    }

    /// Runs the expiration every day at `minute` (of the day, UTC:
    /// `ExpireSchedule`), as acng's cron job would ask for it (stop on
    /// errors when `ExAbortOnProblems` says so, the trade-off gate on). A
    /// day whose time finds another task running is skipped, and logged.
    pub async fn expire_daily(self: Arc<Self>, context: crate::maint::Context, minute: u32) {
        let abort_on_errors = context.config.maintenance.expiration.abort_on_problems;
        loop {
            tokio::time::sleep(until_minute(SystemTime::now(), minute)).await;
            let options = crate::maint::expire::Options {
                abort_on_errors,
                ..Default::default()
            };
            let job = Box::new(expire::run(context.clone(), options));
            match self.start(crate::admin::auth::Action::Expire.name(), expire::EXPIRE, job) {
                Joined::Started(_) => tracing::info!("ExpireSchedule: the daily expiration started"),
                Joined::AlreadyRunning(task) => tracing::warn!(
                    "ExpireSchedule: the daily expiration skipped, {} was running",
                    task.name
                ),
            }
        }
    }

    /// Stops the task `id` if it runs (its Cancel link); its name if so.
    pub fn cancel(&self, id: u64) -> Option<&'static str> {
        let slot = self.lock();
        let task = slot.running.as_ref().filter(|t| t.id == id)?;
        task.stop(Stop::Cancelled);
        Some(task.name)
    }

    /// The daemon stops: the running task is told to stop, and no other
    /// starts. Its name, if one runs.
    pub fn shut(&self) -> Option<&'static str> {
        let mut slot = self.lock();
        slot.stopping = true;
        let task = slot.running.as_ref()?;
        task.stop(Stop::Shutdown);
        Some(task.name)
    }

    /// Waits until no task runs, up to `limit`; whether none does.
    pub async fn idle(&self, limit: Duration) -> bool {
        let Some(task) = self.lock().running.clone() else {
            return true;
        };
        let mut changed = task.subscribe();
        let ended = async { while !task.is_done() && changed.changed().await.is_ok() {} };
        tokio::time::timeout(limit, ended).await.is_ok()
    }

    /// The task running now, and when it started.
    pub fn running(&self) -> Option<(&'static str, SystemTime)> {
        self.lock().running.as_ref().map(|t| (t.name, t.started))
    }

    /// What the last count that ran to its end found.
    pub fn last_count(&self) -> Option<CountSummary> {
        *self.last_count.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(self: &Arc<Self>, name: &'static str, query: &'static str, job: Job) -> Joined {
        let mut slot = self.lock();
        if let Some(task) = &slot.running {
            return Joined::AlreadyRunning(Arc::clone(task));
        }
        // Ids differ between runs of the daemon too: a Cancel link from
        // before a restart stops nothing.
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let id = now_ms.max(slot.last_id + 1);
        slot.last_id = id;
        let task = Arc::new(Task::new(id, name, query));
        if slot.stopping {
            let mut ctx = Ctx::open(Arc::clone(&task), None);
            ctx.say(
                Kind::Error,
                "debcache is stopping: no maintenance task starts now.",
            );
            ctx.finish();
            return Joined::Started(task);
        }
        slot.running = Some(Arc::clone(&task));
        drop(slot);
        let (this, running) = (Arc::clone(self), Arc::clone(&task));
        if let Err(e) = crate::tasks::low_priority("debcache-maint", move || this.run(running, job)) {
            // No thread: the slot is freed and the page says why.
            self.lock().running = None;
            let mut ctx = Ctx::open(Arc::clone(&task), None);
            ctx.say(Kind::Error, &format!("Cannot start the task: {e}"));
            ctx.finish();
        }
        Joined::Started(task)
    }

    /// The task's life, on its blocking thread.
    fn run(&self, task: Arc<Task>, job: Job) {
        tracing::info!("maintenance task {} started", task.name);
        let mut ctx = Ctx::open(Arc::clone(&task), self.log_dir.as_deref());
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut ctx)));
        let ended = match (outcome, task.stopped()) {
            (Err(_), _) => {
                let text = format!("{} failed: a bug; the server log has more.", task.name);
                ctx.say(Kind::Error, &text);
                "failed"
            }
            (Ok(()), Some(Stop::Cancelled)) => {
                ctx.say(Kind::Warning, "Cancelled.");
                "cancelled"
            }
            (Ok(()), Some(Stop::Shutdown)) => {
                ctx.say(Kind::Error, "Cut short: debcache is stopping.");
                "cut short by the shutdown"
            }
            (Ok(()), None) => "done",
        };
        // Free before the end is told: whoever sees the end may start the
        // next task at once.
        {
            let mut slot = self.lock();
            if slot.running.as_ref().is_some_and(|t| t.id == task.id) {
                slot.running = None;
            }
        }
        // Logged before the end is told: a stopping daemon waits for the
        // page's connection, not for this thread.
        tracing::info!("maintenance task {}: {ended}", task.name);
        ctx.finish();
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The task's id in a Cancel link's query (`…&sigabort=<id>`).
pub fn abort_id(query: &str) -> Option<u64> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("sigabort="))
        .and_then(|id| id.parse().ok())
}

/// spec §8.3's response: HTML of no stated length (chunked), the
/// connection closed at its end.
/// How long from `now` until the next `minute` of a UTC day (a whole day
/// when it is that minute now).
fn until_minute(now: SystemTime, minute: u32) -> Duration {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    let at = u64::from(minute % 1440) * 60;
    let wait = (at + 86_400 - day) % 86_400;
    Duration::from_secs(if wait == 0 { 86_400 } else { wait })
}

fn answer(body: ResponseBody) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn respond(joined: Joined, links: Links<'_>) -> Result<Response<ResponseBody>, askama::Error> {
    let (task, already) = match joined {
        Joined::Started(task) => (task, false),
        Joined::AlreadyRunning(task) => (task, true),
    };
    let cancel = format!("?{}&sigabort={}", task.query, task.id);
    let frame = output::page(task.name, links.authority, &cancel, links.report)?;
    let (tx, rx) = mpsc::channel(VIEWER_QUEUE);
    tokio::spawn(follow(task, frame, already, tx));
    Ok(answer(ResponseBody::stream(rx)))
}

/// One viewer: the page head, the task's pieces as they come, the page
/// end. Ends early when the client goes away; the task does not notice.
async fn follow(task: Arc<Task>, frame: Frame, already: bool, tx: mpsc::Sender<Bytes>) {
    let mut head = frame.head;
    if already {
        head.push_str(&output::line(
            Kind::Plain,
            "A maintenance task is already running!",
        ));
    }
    if tx.send(Bytes::from(head)).await.is_err() {
        return;
    }
    let mut changed = task.subscribe();
    let mut cursor = 0;
    loop {
        changed.borrow_and_update();
        let (text, done) = task.read(&mut cursor);
        if !text.is_empty() && tx.send(Bytes::from(text)).await.is_err() {
            return;
        }
        if done {
            break;
        }
        tokio::select! {
            woken = changed.changed() => if woken.is_err() { break },
            () = tx.closed() => return,
        }
    }
    let _ = tx.send(Bytes::from(frame.tail)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn links() -> Links<'static> {
        Links {
            authority: "cache:3142",
            report: "/acng-report.html",
        }
    }

    async fn text(response: Response<ResponseBody>) -> String {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// A job that says a line, then waits until it is told to stop.
    fn waiting(gate: Arc<std::sync::Barrier>) -> Job {
        Box::new(move |ctx: &mut Ctx| {
            ctx.say(Kind::Plain, "first");
            gate.wait();
            while !ctx.should_stop() {
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    }

    #[tokio::test]
    async fn one_task_at_a_time_a_second_request_follows_it_and_cancel_stops_it() {
        let maint = Arc::new(Maintenance::new(None));
        let gate = Arc::new(std::sync::Barrier::new(2));
        let first = maint.start("Slow", "doSlow=1", waiting(Arc::clone(&gate)));
        let Joined::Started(task) = &first else {
            panic!("the slot was free")
        };
        let id = task.id;
        tokio::task::spawn_blocking(move || gate.wait()).await.unwrap();
        assert_eq!(maint.running().map(|(name, _)| name), Some("Slow"));
        let second = maint.start("Other", "doOther=1", Box::new(|_: &mut Ctx| {}));
        assert!(matches!(second, Joined::AlreadyRunning(ref t) if t.id == id));
        let (a, b) = (
            respond(first, links()).unwrap(),
            respond(second, links()).unwrap(),
        );
        assert_eq!(a.headers()["connection"], "close");
        assert!(a.headers().get("content-length").is_none());
        assert_eq!(maint.cancel(id + 1), None, "another task's link");
        assert_eq!(maint.cancel(id), Some("Slow"));
        let (a, b) = (text(a).await, text(b).await);
        for page in [&a, &b] {
            assert!(page.contains("Maintenance task <b>Slow</b>"), "{page}");
            assert!(page.contains(&format!("?doSlow=1&#38;sigabort={id}")));
            assert!(page.contains("first<br>"));
            assert!(page.contains("<span class=\"WARNING\">Cancelled.</span>"));
            assert!(page.trim_end().ends_with("</html>"));
            assert!(!page.contains(CONTROL_MARKER), "a cancel is no error");
        }
        assert!(!a.contains("already running") && b.contains("A maintenance task is already running!"));
        assert!(maint.idle(Duration::from_secs(5)).await);
        assert_eq!(maint.running(), None);
    }

    #[tokio::test]
    async fn shutdown_cuts_the_task_and_refuses_new_ones() {
        let maint = Arc::new(Maintenance::new(None));
        let gate = Arc::new(std::sync::Barrier::new(2));
        let first = maint.start("Slow", "doSlow=1", waiting(Arc::clone(&gate)));
        tokio::task::spawn_blocking(move || gate.wait()).await.unwrap();
        assert_eq!(maint.shut(), Some("Slow"));
        assert!(maint.idle(Duration::from_secs(5)).await);
        let page = text(respond(first, links()).unwrap()).await;
        assert!(page.contains("Cut short: debcache is stopping."));
        assert!(page.contains(&format!("{CONTROL_MARKER}2Cut short")));
        let refused = maint.start(
            "Other",
            "doOther=1",
            Box::new(|_: &mut Ctx| panic!("must not run")),
        );
        let page = text(respond(refused, links()).unwrap()).await;
        assert!(page.contains("no maintenance task starts now"), "{page}");
        assert_eq!(maint.running(), None);
    }

    #[tokio::test]
    async fn a_job_that_panics_frees_the_slot_with_an_error() {
        let maint = Arc::new(Maintenance::new(None));
        let joined = maint.start("Buggy", "doBug=1", Box::new(|_: &mut Ctx| panic!("a bug")));
        let page = text(respond(joined, links()).unwrap()).await;
        assert!(page.contains("Buggy failed: a bug"), "{page}");
        assert!(maint.idle(Duration::from_secs(5)).await);
        assert!(matches!(
            maint.start("Next", "doNext=1", Box::new(|_: &mut Ctx| {})),
            Joined::Started(_)
        ));
    }

    #[test]
    fn the_daily_run_waits_for_its_next_minute() {
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let day = 20_000 * 86_400;
        assert_eq!(until_minute(at(day), 220), Duration::from_secs(220 * 60));
        assert_eq!(until_minute(at(day + 220 * 60), 220), Duration::from_secs(86_400));
        assert_eq!(
            until_minute(at(day + 220 * 60 + 1), 220),
            Duration::from_secs(86_399)
        );
        assert_eq!(until_minute(at(day + 86_399), 0), Duration::from_secs(1));
    }

    #[test]
    fn the_cancel_link_names_its_task() {
        assert_eq!(abort_id("doCount=Count+Objects&sigabort=1234"), Some(1234));
        assert_eq!(abort_id("sigabort=7&doCount=1"), Some(7));
        assert_eq!(abort_id("doCount=1&sigabort=x"), None);
        assert_eq!(abort_id("doCount=1"), None);
    }
}
