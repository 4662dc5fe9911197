//! Shell commands the daemon runs on the administrator's behalf (a
//! repository's hooks, `OptProxyCheckCommand`): `/bin/sh -c COMMAND` with
//! no input or output, in a process group of its own, without systemd's
//! variables (a child must neither take the daemon's sockets nor speak to
//! systemd in its name). A command still running at its limit is killed
//! with its whole group, so whatever it started goes too; one that ends in
//! time may leave background work behind (a tunnel it started), untouched.

use std::fmt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal};

/// The variables systemd passes to the daemon about itself.
const SYSTEMD_VARIABLES: [&str; 6] = [
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
];

/// How long a killed group's shell gets to be reaped before it is left to
/// tokio's reaper.
const REAP_LIMIT: Duration = Duration::from_secs(5);

/// Why a command did not succeed.
#[derive(Debug)]
pub enum RunError {
    /// `/bin/sh` could not be started.
    Spawn(std::io::Error),
    /// Waiting for it failed (its group was killed).
    Wait(std::io::Error),
    /// It ran longer than allowed; its group was killed.
    TimedOut { limit: Duration },
    /// It ended with a status other than 0, or by a signal.
    Failed(ExitStatus),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Spawn(_) => f.write_str("cannot start /bin/sh"),
            RunError::Wait(_) => f.write_str("cannot wait for it"),
            RunError::TimedOut { limit } => write!(
                f,
                "still running after {}s: killed with its process group",
                limit.as_secs()
            ),
            RunError::Failed(status) => write!(f, "failed ({status})"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Spawn(e) | RunError::Wait(e) => Some(e),
            RunError::TimedOut { .. } | RunError::Failed(_) => None,
        }
    }
}

/// Runs `command` for at most `limit`.
pub async fn run(command: &str, limit: Duration) -> Result<(), RunError> {
    let mut child = shell(command).spawn().map_err(RunError::Spawn)?;
    // The group's id is the shell's pid (`process_group(0)`).
    let mut group = Group(child.id().and_then(|id| Pid::from_raw(id as i32)));
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) => {
            group.0 = None;
            if status.success() {
                Ok(())
            } else {
                Err(RunError::Failed(status))
            }
        }
        Ok(Err(e)) => Err(RunError::Wait(e)),
        Err(_) => {
            drop(group);
            let _ = tokio::time::timeout(REAP_LIMIT, child.wait()).await;
            Err(RunError::TimedOut { limit })
        }
    }
}

/// `/bin/sh -c command`, as [`run`] starts it.
fn shell(command: &str) -> tokio::process::Command {
    let mut shell = tokio::process::Command::new("/bin/sh");
    shell
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    for name in SYSTEMD_VARIABLES {
        shell.env_remove(name);
    }
    shell
}

/// A command's process group, killed when dropped unless the command ended
/// (then `None`): a timeout, or a caller that went away, ends all of it.
struct Group(Option<Pid>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // Not reaped yet, so the id still names this group.
            let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_exit_status_is_reported() {
        assert!(run("exit 0", Duration::from_secs(10)).await.is_ok());
        match run("exit 3", Duration::from_secs(10)).await {
            Err(RunError::Failed(status)) => assert_eq!(status.code(), Some(3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn systemd_variables_are_not_passed_on() {
        let shell = shell("true");
        let removed: Vec<_> = shell
            .as_std()
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        for name in SYSTEMD_VARIABLES {
            assert!(removed.iter().any(|r| r == name), "{name} is passed on");
        }
    }

    #[tokio::test]
    async fn a_command_past_its_limit_is_killed_with_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // A grandchild in the background: only the group's kill reaches it.
        let command = format!("sleep 1000 & echo $! > {}; wait", pid_file.display());
        match run(&command, Duration::from_secs(1)).await {
            Err(RunError::TimedOut { .. }) => {}
            other => panic!("{other:?}"),
        }
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Gone, or a zombie until its reaper (init) collects it.
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z'))
            })
        };
        for _ in 0..500 {
            if gone() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("sleep {pid} survived its group's kill");
    }
}
