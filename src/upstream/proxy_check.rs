//! `OptProxyCheckCommand` (spec §4.8): a shell command that says whether
//! the `Proxy` is to be used (exit status 0) or not (any other outcome),
//! run at most once per `OptProxyCheckInterval`, its answer kept meanwhile.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct ProxyCheck {
    command: String,
    every: Duration,
    /// How long the command may run before it counts as "no".
    limit: Duration,
    /// The last answer and when it was given; the lock also keeps two
    /// checks from running at once.
    last: Mutex<Option<(Instant, bool)>>,
}

impl ProxyCheck {
    pub fn new(command: String, every: Duration, limit: Duration) -> ProxyCheck {
        ProxyCheck {
            command,
            every,
            limit,
            last: Mutex::new(None),
        }
    }

    /// Whether to go through the proxy now.
    pub async fn use_proxy(&self) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = *last {
            if at.elapsed() < self.every {
                return answer;
            }
        }
        let answer = self.run().await;
        if last.is_none_or(|(_, previous)| previous != answer) {
            tracing::info!(
                "OptProxyCheckCommand: {}",
                if answer { "using the proxy" } else { "going direct" }
            );
        }
        *last = Some((Instant::now(), answer));
        answer
    }

    async fn run(&self) -> bool {
        match super::shell::run(&self.command, self.limit).await {
            Ok(()) => true,
            Err(super::shell::RunError::Failed(_)) => false,
            Err(e) => {
                tracing::warn!("OptProxyCheckCommand: {}; going direct", crate::error::Chain(&e));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_exit_status_decides_and_is_kept_for_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let command = format!("echo x >> {}; exit 1", runs.display());
        let check = ProxyCheck::new(command, Duration::from_secs(60), Duration::from_secs(10));
        assert!(!check.use_proxy().await);
        assert!(!check.use_proxy().await);
        assert_eq!(
            std::fs::read_to_string(&runs).unwrap().lines().count(),
            1,
            "run once per interval"
        );
        let yes = ProxyCheck::new("true".into(), Duration::ZERO, Duration::from_secs(10));
        assert!(yes.use_proxy().await);
    }
}
