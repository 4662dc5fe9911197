//! systemd's readiness protocol (sd_notify(3)), by hand: one datagram per
//! message to the unix socket `NOTIFY_SOCKET` names (a path, or an abstract
//! name written with a leading `@`). Without it every call does nothing, so
//! the daemon runs the same under any supervisor. The protocol is a few
//! lines of text; a crate would add nothing but a dependency.
//!
//! `WATCHDOG=1` is sent at half of `WATCHDOG_USEC` from a task on the
//! runtime: a runtime that stops making progress stops the pings, and
//! systemd restarts the service.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where the messages go, when systemd asked for them.
#[derive(Debug)]
pub struct Notifier {
    to: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`; a socket that cannot be used is logged and
    /// the notifications are dropped (the service still runs; systemd
    /// then says why it timed out waiting).
    pub fn from_env() -> Notifier {
        let Some(name) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier { to: None };
        };
        match connect(&name) {
            Ok(to) => Notifier { to: Some(to) },
            Err(e) => {
                tracing::warn!(
                    "NOTIFY_SOCKET {}: {e}; systemd is not told of readiness",
                    name.to_string_lossy()
                );
                Notifier { to: None }
            }
        }
    }

    /// Every listener is open and serving.
    pub fn ready(&self, status: &str) {
        self.send(&format!(
            "READY=1\nSTATUS={status}\nMAINPID={}",
            std::process::id()
        ));
    }

    /// What the daemon is doing, for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    /// The drain began.
    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={status}"));
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// How often to ping the watchdog: half of `WATCHDOG_USEC`, when it is
    /// set for this process (`WATCHDOG_PID` absent or ours).
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.to.as_ref()?;
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID") {
            if pid.parse::<u32>().ok() != Some(std::process::id()) {
                return None;
            }
        }
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }

    fn send(&self, message: &str) {
        if let Some((socket, addr)) = &self.to {
            if let Err(e) = socket.send_to_addr(message.as_bytes(), addr) {
                tracing::debug!("NOTIFY_SOCKET: {e}");
            }
        }
    }
}

fn connect(name: &std::ffi::OsStr) -> io::Result<(UnixDatagram, SocketAddr)> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(abstract_name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abstract_name)?
        }
        None if bytes.starts_with(b"/") => SocketAddr::from_pathname(name)?,
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "neither a path nor @name",
            ))
        }
    };
    Ok((UnixDatagram::unbound()?, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_path_and_an_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            to: Some(connect(path.as_os_str()).unwrap()),
        };
        notifier.stopping("draining");
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1\nSTATUS=draining");

        let name = format!("@debcache-test-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let abstract_listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name.as_bytes()[1..]).unwrap()).unwrap();
        let notifier = Notifier {
            to: Some(connect(std::ffi::OsStr::new(&name)).unwrap()),
        };
        notifier.watchdog();
        let n = abstract_listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
        assert!(connect(std::ffi::OsStr::new("relative")).is_err());
    }
}
