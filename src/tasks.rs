//! Background work that outlives the request that started it (downloads),
//! registered in one place so that shutdown can stop it and say what it
//! cut, instead of the runtime dropping detached tasks unseen.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Notify};

#[derive(Debug)]
pub struct Tasks {
    running: AtomicUsize,
    /// Woken whenever a task ends.
    ended: Notify,
    stop: watch::Sender<bool>,
}

impl Default for Tasks {
    fn default() -> Tasks {
        Tasks {
            running: AtomicUsize::new(0),
            ended: Notify::new(),
            stop: watch::channel(false).0,
        }
    }
}

/// Counts a task as running until dropped (finished, or stopped).
struct Running(Arc<Tasks>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.ended.notify_waiters();
    }
}

impl Tasks {
    /// Runs `task` until it ends or [`Tasks::stop`] is called.
    pub fn spawn(self: &Arc<Self>, task: impl Future<Output = ()> + Send + 'static) {
        self.running.fetch_add(1, Ordering::SeqCst);
        let running = Running(Arc::clone(self));
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            let _running = running;
            tokio::select! {
                () = task => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Stops every task (each is dropped where it waits) and waits until
    /// they are gone; returns how many there were.
    pub async fn stop(&self) -> usize {
        let cut = self.running();
        self.stop.send_replace(true);
        loop {
            let ended = self.ended.notified();
            if self.running() == 0 {
                return cut;
            }
            ended.await;
        }
    }
}

/// Runs `job` on a thread of its own at the lowest CPU priority (nice 19),
/// so that maintenance walking a large cache never takes the CPU from the
/// clients' requests; the thread ends with the job. Its result comes
/// through the returned channel (closed if the job panics).
pub fn low_priority<T: Send + 'static>(
    name: &str,
    job: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<tokio::sync::oneshot::Receiver<T>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            // The nice value is a thread's own on Linux. Failing to lower it
            // costs only the clients' share of the CPU: the job still runs.
            let tid = rustix::thread::gettid();
            if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
                tracing::debug!("cannot lower the priority of a maintenance thread: {e}");
            }
            let _ = tx.send(job());
        })?;
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_cuts_what_runs_and_counts_it() {
        let tasks = Arc::new(Tasks::default());
        tasks.spawn(std::future::pending());
        tasks.spawn(async {});
        tokio::task::yield_now().await;
        assert_eq!(tasks.stop().await, 1, "the finished one is not counted");
        assert_eq!(tasks.running(), 0);
        // After the stop, new tasks end at once.
        tasks.spawn(std::future::pending());
        assert_eq!(tasks.stop().await, 1);
    }
}
