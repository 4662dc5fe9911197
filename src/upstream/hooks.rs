//! A `Remap-` repository's link to its mirrors, brought up and down by its
//! hooks (spec §5.4): `PreUp` runs before the first upstream connection,
//! `Down` `DownTimeout` after the last one ended. A download holds a
//! [`Link`] from before its first request upstream to its end.
//!
//! | phase | a download arrives | the last `Link` goes |
//! |---|---|---|
//! | down | runs PreUp (once, however many arrive), waits for it | — |
//! | going up | waits for the same PreUp | (on PreUp's end) Down is due |
//! | up | goes on at once; a Down that was due is cancelled | Down is due in `DownTimeout` |
//! | going down | waits for Down to end, then runs PreUp | — |
//!
//! "Up" means "PreUp ran", successfully or not: a hook that fails or runs
//! past `HookTimeout` (its process group killed) is logged and the
//! download goes on. Every wait is bounded by the hook's limit. A repository
//! without hooks costs nothing: its `Link` is empty. Down is not run at
//! shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::shell::{self, RunError};
use crate::config::{Hooks, Remap};
use crate::error::Chain;

/// The repositories with hooks.
#[derive(Debug, Default)]
pub struct Links {
    repos: HashMap<String, Arc<Repo>>,
}

impl Links {
    /// Every repository of `remaps` with a command in its hooks file; each
    /// hook may run for `limit`.
    pub fn new(remaps: &[Remap], limit: Duration) -> Links {
        let repos = remaps
            .iter()
            .filter_map(|r| {
                let hooks = r.hooks.clone().filter(|h| !h.is_empty())?;
                let repo = Repo {
                    name: r.name.clone(),
                    hooks,
                    limit,
                    state: Mutex::new(State {
                        phase: Phase::Down,
                        users: 0,
                        epoch: 0,
                        pending: None,
                    }),
                };
                Some((r.name.clone(), Arc::new(repo)))
            })
            .collect();
        Links { repos }
    }

    /// The link of `repo` (a `Remap-` repository's name; `None` for a
    /// host's own directory), up: after its PreUp when it was down.
    pub async fn up(&self, repo: Option<&str>) -> Link {
        let Some(repo) = repo.and_then(|r| self.repos.get(r)) else {
            return Link(None);
        };
        // Taken first, so that a caller that goes away while waiting
        // releases it.
        let link = Link::take(repo);
        loop {
            let mut done = {
                let mut state = repo.lock();
                match &state.phase {
                    Phase::Up => return link,
                    Phase::GoingUp(done) | Phase::GoingDown(done) => done.clone(),
                    Phase::Down => {
                        let (tx, rx) = watch::channel(false);
                        state.phase = Phase::GoingUp(rx.clone());
                        // Made before the task, so that a task dropped
                        // unpolled (at shutdown) still ends the phase.
                        let up = Transition {
                            repo: Arc::clone(repo),
                            to: Some(Phase::Up),
                            done: tx,
                        };
                        tokio::spawn(go_up(up));
                        rx
                    }
                }
            };
            // Ends when the hook does (or its task is gone): bounded by
            // the hook's limit.
            let _ = done.wait_for(|done| *done).await;
        }
    }
}

/// One download's hold on its repository's link; dropping the last one
/// makes Down due.
pub struct Link(Option<Arc<Repo>>);

impl Link {
    fn take(repo: &Arc<Repo>) -> Link {
        let mut state = repo.lock();
        state.users += 1;
        state.cancel_down();
        Link(Some(Arc::clone(repo)))
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(repo) = self.0.take() {
            let mut state = repo.lock();
            state.users -= 1;
            if state.users == 0 && matches!(state.phase, Phase::Up) {
                state.schedule_down(&repo);
            }
        }
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Link")
            .field(&self.0.as_ref().map(|r| &r.name))
            .finish()
    }
}

#[derive(Debug)]
struct Repo {
    name: String,
    hooks: Hooks,
    limit: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// The `Link`s held.
    users: usize,
    /// Bumped by every `Link` taken and every Down made due: a Down timer
    /// that wakes to another value was cancelled.
    epoch: u64,
    /// The timer of the Down that is due, to stop it early.
    pending: Option<AbortHandle>,
}

#[derive(Debug)]
enum Phase {
    Down,
    /// PreUp runs; the value turns true when it ended.
    GoingUp(watch::Receiver<bool>),
    Up,
    /// Down runs; the value turns true when it ended.
    GoingDown(watch::Receiver<bool>),
}

impl State {
    fn cancel_down(&mut self) {
        self.epoch += 1;
        if let Some(timer) = self.pending.take() {
            timer.abort();
        }
    }

    /// Down in `DownTimeout`, unless a `Link` is taken meanwhile.
    fn schedule_down(&mut self, repo: &Arc<Repo>) {
        self.cancel_down();
        // A `Link` dropped outside the runtime (at its very end) leaves
        // the link up, as shutdown does.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let timer = runtime.spawn(down_after(Arc::clone(repo), self.epoch));
            self.pending = Some(timer.abort_handle());
        }
    }
}

impl Repo {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one hook, if set, and logs how it ended.
    async fn run(&self, which: &'static str, command: Option<&str>) {
        let Some(command) = command else { return };
        tracing::info!("{}: running the {which} hook: {command}", self.name);
        match shell::run(command, self.limit).await {
            Ok(()) => tracing::info!("{}: the {which} hook succeeded", self.name),
            Err(e @ (RunError::Failed(_) | RunError::TimedOut { .. })) => tracing::warn!(
                "{}: the {which} hook `{command}` {}; going on without it",
                self.name,
                Chain(&e)
            ),
            Err(e) => tracing::error!(
                "{}: the {which} hook `{command}`: {}; going on without it",
                self.name,
                Chain(&e)
            ),
        }
    }
}

/// Runs PreUp; then the link is up.
async fn go_up(up: Transition) {
    let repo = &up.repo;
    repo.run("PreUp", repo.hooks.pre_up.as_deref()).await;
}

/// Waits `DownTimeout`, then, unless cancelled, runs Down; then the link is
/// down.
async fn down_after(repo: Arc<Repo>, epoch: u64) {
    tokio::time::sleep(repo.hooks.down_timeout).await;
    let (tx, rx) = watch::channel(false);
    {
        let mut state = repo.lock();
        if state.epoch != epoch || state.users > 0 || !matches!(state.phase, Phase::Up) {
            return;
        }
        state.phase = Phase::GoingDown(rx);
        state.pending = None;
    }
    let down = Transition {
        repo,
        to: Some(Phase::Down),
        done: tx,
    };
    down.repo.run("Down", down.repo.hooks.down.as_deref()).await;
}

/// The end of a hook's run, however it ends (its task cancelled included):
/// the phase it leads to, and the waiters woken.
struct Transition {
    repo: Arc<Repo>,
    to: Option<Phase>,
    done: watch::Sender<bool>,
}

impl Drop for Transition {
    fn drop(&mut self) {
        let mut state = self.repo.lock();
        if let Some(to) = self.to.take() {
            state.phase = to;
        }
        // PreUp ended with nobody left to use the link.
        if state.users == 0 && matches!(state.phase, Phase::Up) {
            state.schedule_down(&self.repo);
        }
        drop(state);
        self.done.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A repository whose hooks append their names to a file.
    fn links(dir: &Path, down_timeout: u64) -> Links {
        let log = dir.join("ran");
        let hooks = Hooks {
            file: Arc::from(dir.join("r.hooks").as_path()),
            pre_up: Some(format!("echo up >> {}", log.display())),
            down: Some(format!("echo down >> {}", log.display())),
            down_timeout: Duration::from_secs(down_timeout),
        };
        let loaded = crate::config::load(crate::config::ConfigDir::Embedded, &["Remap-r=/r".to_string()]);
        let mut remaps = loaded.config.unwrap().remaps;
        remaps.retain(|r| r.name == "r");
        remaps[0].hooks = Some(hooks);
        Links::new(&remaps, Duration::from_secs(10))
    }

    fn ran(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("ran")).unwrap_or_default()
    }

    /// Lets spawned hook tasks and their children run to their end.
    async fn settle(dir: &Path, want: &str) {
        for _ in 0..1000 {
            if ran(dir) == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(ran(dir), want);
    }

    #[tokio::test]
    async fn concurrent_downloads_run_pre_up_once_and_down_once_after_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let links = links(dir.path(), 1);
        let (a, b) = tokio::join!(links.up(Some("r")), links.up(Some("r")));
        assert_eq!(ran(dir.path()), "up\n");
        drop(a);
        let c = links.up(Some("r")).await;
        drop((b, c));
        settle(dir.path(), "up\ndown\n").await;
        let _d = links.up(Some("r")).await;
        assert_eq!(ran(dir.path()), "up\ndown\nup\n");
    }

    #[tokio::test]
    async fn a_download_within_down_timeout_cancels_down_and_needs_no_pre_up() {
        let dir = tempfile::tempdir().unwrap();
        let links = links(dir.path(), 3600);
        drop(links.up(Some("r")).await);
        drop(links.up(Some("r")).await);
        assert_eq!(ran(dir.path()), "up\n");
        let state = links.repos["r"].lock();
        assert!(matches!(state.phase, Phase::Up) && state.pending.is_some());
    }

    #[tokio::test]
    async fn repositories_without_hooks_and_hosts_take_an_empty_link() {
        let dir = tempfile::tempdir().unwrap();
        let links = links(dir.path(), 1);
        assert!(links.up(None).await.0.is_none());
        assert!(links.up(Some("deb.debian.org")).await.0.is_none());
        assert_eq!(ran(dir.path()), "");
    }
}
