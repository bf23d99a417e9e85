//! [`OriginConfig`]: every bound and timeout of seeding from origin, with its unit in its name,
//! a default for each, and [`OriginConfig::validate`] to refuse contradictions before use.
//!
//! Memory: each running task holds at most `concurrent_pieces_per_task` piece buffers, each as
//! long as one piece (4 MiB for content under ~2 GB, at most 64 MiB), so piece buffers total at
//! most `max_concurrent_tasks` x `concurrent_pieces_per_task` x piece length: 8 x 4 x 4 MiB =
//! 128 MiB with the defaults and typical pieces.

use serde::Deserialize;

/// Seeding from origin. TOML table `[origin]` (all keys optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginConfig {
    /// Milliseconds to establish a TCP (+TLS) connection to the origin. Default 10000.
    pub connect_timeout_ms: u64,
    /// Milliseconds without progress before a request counts as stalled and is retried: the time
    /// to the response head, and then between any two body chunks. Default 30000.
    pub read_timeout_ms: u64,
    /// Attempts per request (the length probe, each piece, each whole-body stream) before the
    /// task is failed; the first try counts. Default 5.
    pub piece_attempts: u32,
    /// Milliseconds to wait before the 2nd attempt; each later wait doubles. Default 200.
    pub backoff_initial_ms: u64,
    /// Upper bound of one wait between attempts, in milliseconds. Default 10000.
    pub backoff_max_ms: u64,
    /// Range requests in flight per task (each holds one piece buffer). Default 4.
    pub concurrent_pieces_per_task: usize,
    /// Tasks fetched at once; more wait in a queue (status `Fetching{landed: 0, ..}`). Default 8.
    pub max_concurrent_tasks: usize,
    /// Tasks the seeder tracks at once: fetching, queued, and failures remembered. Requests for
    /// new tasks beyond it are answered `Failed` at once. Default 4096.
    pub max_tracked_tasks: usize,
    /// Milliseconds a failed task is remembered (requests for it are answered `Failed` with
    /// the time left) before the next request tries the origin again. A request with other
    /// headers (e.g. fresh credentials) tries again at once. Default 30000.
    pub failure_memory_ms: u64,
    /// Times a task is restarted from scratch because the origin's content changed under it
    /// (ETag, Last-Modified or length differ) before it is failed. Default 2.
    pub max_content_changes: u32,
    /// Bytes of request headers forwarded from the peer (names + values + 4 per header); a
    /// request carrying more is refused. Default 16384.
    pub max_forwarded_header_bytes: usize,
    /// Redirects followed per request (registries redirect blobs to object storage). Default 10.
    pub max_redirects: usize,
    /// `User-Agent` sent to the origin unless the peer forwarded its own. Default
    /// `hawker/<version>`.
    pub user_agent: String,
}

impl Default for OriginConfig {
    fn default() -> Self {
        OriginConfig {
            connect_timeout_ms: 10_000,
            read_timeout_ms: 30_000,
            piece_attempts: 5,
            backoff_initial_ms: 200,
            backoff_max_ms: 10_000,
            concurrent_pieces_per_task: 4,
            max_concurrent_tasks: 8,
            max_tracked_tasks: 4096,
            failure_memory_ms: 30_000,
            max_content_changes: 2,
            max_forwarded_header_bytes: 16 << 10,
            max_redirects: 10,
            user_agent: concat!("hawker/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl OriginConfig {
    /// Refuses zero bounds and contradictions; the message names the key to fix.
    pub fn validate(&self) -> Result<(), String> {
        let positive: [(&str, u64); 7] = [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("read_timeout_ms", self.read_timeout_ms),
            ("piece_attempts", u64::from(self.piece_attempts)),
            (
                "concurrent_pieces_per_task",
                self.concurrent_pieces_per_task as u64,
            ),
            ("max_concurrent_tasks", self.max_concurrent_tasks as u64),
            ("max_tracked_tasks", self.max_tracked_tasks as u64),
            (
                "max_forwarded_header_bytes",
                self.max_forwarded_header_bytes as u64,
            ),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("origin.{name} must be greater than 0"));
            }
        }
        if self.backoff_initial_ms > self.backoff_max_ms {
            return Err(format!(
                "origin.backoff_initial_ms ({}) is above origin.backoff_max_ms ({})",
                self.backoff_initial_ms, self.backoff_max_ms
            ));
        }
        if self.max_tracked_tasks < self.max_concurrent_tasks {
            return Err(format!(
                "origin.max_tracked_tasks ({}) is below origin.max_concurrent_tasks ({})",
                self.max_tracked_tasks, self.max_concurrent_tasks
            ));
        }
        if self.concurrent_pieces_per_task > 64 {
            return Err(format!(
                "origin.concurrent_pieces_per_task ({}) is above 64: each holds a piece buffer of \
                 up to 64 MiB",
                self.concurrent_pieces_per_task
            ));
        }
        if self.user_agent.is_empty()
            || reqwest::header::HeaderValue::from_str(&self.user_agent).is_err()
        {
            return Err("origin.user_agent must be a non-empty, valid header value".into());
        }
        Ok(())
    }

    /// The wait before attempt `next_attempt` (2 for the first retry): `backoff_initial_ms`
    /// doubled per earlier retry, capped at `backoff_max_ms`.
    pub fn backoff_ms(&self, next_attempt: u32) -> u64 {
        let doublings = next_attempt.saturating_sub(2).min(32);
        self.backoff_initial_ms
            .saturating_mul(1u64 << doublings)
            .min(self.backoff_max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_config_defaults_validate_and_backoff_doubles_to_its_cap() {
        let c = OriginConfig::default();
        c.validate().unwrap();
        assert_eq!(c.backoff_ms(2), 200);
        assert_eq!(c.backoff_ms(3), 400);
        assert_eq!(c.backoff_ms(5), 1600);
        assert_eq!(c.backoff_ms(100), 10_000);
        let bad = OriginConfig {
            piece_attempts: 0,
            ..OriginConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("piece_attempts"));
        let bad = OriginConfig {
            backoff_initial_ms: 20_000,
            ..OriginConfig::default()
        };
        assert!(bad.validate().is_err());
        let parsed: OriginConfig = toml::from_str("read_timeout_ms = 5\n").unwrap();
        assert_eq!(parsed.read_timeout_ms, 5);
        assert_eq!(parsed.piece_attempts, 5);
        assert!(toml::from_str::<OriginConfig>("nope = 1\n").is_err());
    }
}
