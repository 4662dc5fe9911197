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
