//! What is wrong now, if anything: `/health` (for load balancers: 503 when
//! this instance cannot serve), the report page's status line and
//! `/metrics`' `debcache_healthy`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;

/// Below both of these the disk is "nearly full".
const LOW_SPACE_BYTES: u64 = 1 << 30;
const LOW_SPACE_SHARE: f64 = 0.05;

/// The state of this instance at one moment.
#[derive(Debug)]
pub struct Status {
    pub problems: Vec<Problem>,
    /// Free and total bytes of the cache's file system, when known.
    pub space: Option<(u64, u64)>,
}

#[derive(Debug)]
pub enum Problem {
    /// No file can be made in the cache: misses cannot be stored.
    NotWritable(std::io::Error),
    DiskNearlyFull {
        free: u64,
        total: u64,
    },
    /// Mirrors that failed of late and are avoided for a while.
    MirrorsFailing(Vec<(String, Duration)>),
}

impl Problem {
    /// This instance should get no traffic while it lasts.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Problem::NotWritable(_))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotWritable(e) => write!(f, "the cache directory is not writable: {e}"),
            Problem::DiskNearlyFull { free, total } => write!(
                f,
                "the cache disk is nearly full: {} free of {}",
                human_bytes(*free),
                human_bytes(*total)
            ),
            Problem::MirrorsFailing(hosts) => {
                f.write_str("failing mirrors, avoided for now: ")?;
                for (i, (host, left)) in hosts.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{host} (another {} s)", left.as_secs().max(1))?;
                }
                Ok(())
            }
        }
    }
}

impl Status {
    pub fn serving(&self) -> bool {
        !self.problems.iter().any(Problem::is_fatal)
    }
}

/// Looks at the cache directory (on a blocking thread: a hung disk must
/// not stall the runtime's workers) and at the mirrors.
pub async fn check(cache: &Arc<Cache>) -> Status {
    let mirrors = cache.upstream().avoided();
    let cache = Arc::clone(cache);
    let disk = tokio::task::spawn_blocking(move || (cache.probe(), cache.space().ok())).await;
    let (writable, space) = match disk {
        Ok(found) => found,
        Err(e) => (Err(std::io::Error::other(e)), None),
    };
    let mut problems = Vec::new();
    if let Err(e) = writable {
        problems.push(Problem::NotWritable(e));
    }
    if let Some((free, total)) = space {
        if free < LOW_SPACE_BYTES && (free as f64) < total as f64 * LOW_SPACE_SHARE {
            problems.push(Problem::DiskNearlyFull { free, total });
        }
    }
    if !mirrors.is_empty() {
        problems.push(Problem::MirrorsFailing(mirrors));
    }
    Status { problems, space }
}

/// `1.5 GiB`: sizes as people read them.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_sizes() {
        assert_eq!(human_bytes(0), "0 bytes");
        assert_eq!(human_bytes(1023), "1023 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }

    #[test]
    fn problems_say_what_is_wrong() {
        let full = Problem::DiskNearlyFull {
            free: 100 << 20,
            total: 100 << 30,
        };
        assert_eq!(
            full.to_string(),
            "the cache disk is nearly full: 100.0 MiB free of 100.0 GiB"
        );
        assert!(!full.is_fatal());
        let failing = Problem::MirrorsFailing(vec![
            ("a.example:80".into(), Duration::from_secs(42)),
            ("b.example:443".into(), Duration::from_millis(300)),
        ]);
        assert_eq!(
            failing.to_string(),
            "failing mirrors, avoided for now: a.example:80 (another 42 s), b.example:443 (another 1 s)"
        );
        let status = Status {
            problems: vec![
                Problem::NotWritable(std::io::Error::from_raw_os_error(libc::EROFS)),
                full,
            ],
            space: None,
        };
        assert!(!status.serving());
    }
}
