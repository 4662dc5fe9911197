//! Signals (Decisions table): the first SIGTERM or SIGINT starts a graceful
//! stop, a second one ends the process at once; SIGUSR1 reopens the
//! transfer log (Debian's logrotate sends it); SIGHUP does the same and says
//! that the configuration is read at start-up only.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

use crate::log::TransferLog;

/// Installs the handlers; the returned future resolves at the first stop
/// signal. `ours` (the pid file, the unix socket) are removed when a second
/// signal ends the process at once, as a graceful stop removes them.
pub fn signals(log: Arc<TransferLog>, ours: Vec<PathBuf>) -> io::Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut first = Some(tx);
        loop {
            tokio::select! {
                _ = term.recv() => stop(&mut first, &log, &ours, libc::SIGTERM),
                _ = int.recv() => stop(&mut first, &log, &ours, libc::SIGINT),
                _ = usr1.recv() => reopen(&log),
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: configuration is read at start-up only; restart debcache to apply changes");
                    reopen(&log);
                }
            }
        }
    });
    Ok(async move {
        let _ = rx.await;
    })
}

fn stop(first: &mut Option<oneshot::Sender<()>>, log: &TransferLog, ours: &[PathBuf], signo: i32) {
    match first.take() {
        Some(tx) => {
            tracing::info!("signal {signo}: stopping; send it again to stop at once");
            let _ = tx.send(());
        }
        None => {
            tracing::warn!("signal {signo} again: stopping now");
            log.flush();
            for path in ours {
                let _ = std::fs::remove_file(path);
            }
            std::process::exit(128 + signo);
        }
    }
}

fn reopen(log: &TransferLog) {
    match log.reopen() {
        Ok(()) => tracing::info!("transfer log reopened"),
        Err(e) => tracing::error!("cannot reopen the transfer log: {e}"),
    }
}
