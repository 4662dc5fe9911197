//! Which backend to try first (Decisions table, "failover"): backends in
//! their configured order, except that one that failed (connect error,
//! timeout, 5xx before the first body byte) is avoided by every request for
//! a minute, then tried again. When all are avoided they are all tried, in
//! order: a slow answer beats no answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::url::HttpUrl;

pub const AVOID_FOR: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Avoid {
    until: Mutex<HashMap<(String, u16), Instant>>,
}

impl Avoid {
    /// The order to try `backends` in, as indices.
    pub fn order(&self, backends: &[HttpUrl]) -> Vec<usize> {
        let now = Instant::now();
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        until.retain(|_, t| *t > now);
        let (good, avoided): (Vec<usize>, Vec<usize>) =
            (0..backends.len()).partition(|&i| !until.contains_key(&key(&backends[i])));
        if good.is_empty() {
            avoided
        } else {
            good
        }
    }

    /// The hosts avoided now, and for how much longer.
    pub fn current(&self) -> Vec<(String, Duration)> {
        let now = Instant::now();
        let until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        let mut hosts: Vec<(String, Duration)> = until
            .iter()
            .filter(|(_, t)| **t > now)
            .map(|((host, port), t)| (crate::url::host_port(host, *port), *t - now))
            .collect();
        hosts.sort();
        hosts
    }

    /// Avoids a backend's host for [`AVOID_FOR`]; the first time, says so.
    pub fn mark(&self, backend: &HttpUrl, why: &dyn std::fmt::Display) {
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        if until.insert(key(backend), Instant::now() + AVOID_FOR).is_none() {
            tracing::warn!(
                "avoiding {} for {}s: {why}",
                backend.authority(),
                AVOID_FOR.as_secs()
            );
        }
    }
}

/// Backends on one host and port fail together (spec §4.7).
fn key(url: &HttpUrl) -> (String, u16) {
    (url.host.clone(), url.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> Vec<HttpUrl> {
        [
            "http://a.example/d/",
            "http://b.example/d/",
            "http://a.example/other/",
            "http://c.example/d/",
        ]
        .iter()
        .map(|u| HttpUrl::parse(u).unwrap())
        .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_backend_is_avoided_for_a_minute() {
        let avoid = Avoid::default();
        let b = urls();
        assert_eq!(avoid.order(&b), [0, 1, 2, 3]);
        avoid.mark(&b[0], &"refused");
        assert_eq!(avoid.order(&b), [1, 3], "the same host:port is avoided with it");
        assert_eq!(avoid.current(), [("a.example:80".to_string(), AVOID_FOR)]);
        tokio::time::advance(AVOID_FOR - Duration::from_secs(1)).await;
        assert_eq!(avoid.order(&b), [1, 3]);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(avoid.order(&b), [0, 1, 2, 3], "tried again after a minute");
        assert!(avoid.current().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn when_all_are_avoided_all_are_tried() {
        let avoid = Avoid::default();
        let b = urls();
        for u in &b {
            avoid.mark(u, &"down");
        }
        assert_eq!(avoid.order(&b), [0, 1, 2, 3]);
    }
}
