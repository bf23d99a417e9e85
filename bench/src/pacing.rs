//! When each request starts, from when its latency is measured, and when the run stops.
//!
//! Closed loop (the default): a connection sends its next request as soon as the previous one
//! finished; latency runs from the actual send to the last content byte.
//!
//! Open loop (`--rate R`): every request has an INTENDED start time on a fixed schedule that
//! does not care how the server is doing. Connection i of C sends its k-th request at
//! `t0 + i/R + k*C/R`, so the C connections together offer R requests per second, evenly
//! spread. If a response is late, the next request starts late, but its latency is still
//! measured from its intended start: a server that stalls for one second therefore produces
//! about R one-second-ish latencies (what R users arriving during the stall would have seen),
//! not a single one. This is the correction for coordinated omission (Gil Tene; wrk2 does the
//! same). Nothing is skipped: requests the schedule owes are sent back to back until the
//! connection catches up.
//!
//! The stop condition is shared by all connections of all threads: `--duration` stops
//! requests whose start (intended start in open loop) would fall at or after the deadline;
//! `--requests N` hands out exactly N tickets, first come first served.
//!
//! Invariants: a pacer's intended times strictly increase by `interval`; [`Stop::claim`]
//! returns true at most `requests` times over all threads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When to send one request and from when to measure its latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Do not send before this instant.
    pub send_at: Instant,
    /// Latency is measured from here: the intended start in open loop; `None` in closed loop,
    /// where it is the actual send.
    pub intended: Option<Instant>,
}

/// One connection's schedule.
#[derive(Debug, Clone)]
pub enum Pacer {
    /// Send as soon as the previous response is complete.
    Closed,
    /// Send on a fixed schedule.
    Open {
        /// The intended start of the next request.
        next: Instant,
        /// Time between this connection's intended starts.
        interval: Duration,
    },
}

impl Pacer {
    /// The open-loop pacer of connection `index` of `connections` sharing `rate_per_s`.
    pub fn open(t0: Instant, rate_per_s: f64, index: usize, connections: usize) -> Pacer {
        debug_assert!(rate_per_s > 0.0 && index < connections);
        let gap_s = 1.0 / rate_per_s;
        Pacer::Open {
            next: t0 + Duration::from_secs_f64(gap_s * index as f64),
            interval: Duration::from_secs_f64(gap_s * connections as f64),
        }
    }

    /// The slot of the next request when asked at `now`.
    pub fn next_slot(&mut self, now: Instant) -> Slot {
        match self {
            Pacer::Closed => Slot {
                send_at: now,
                intended: None,
            },
            Pacer::Open { next, interval } => {
                let intended = *next;
                *next += *interval;
                Slot {
                    send_at: intended,
                    intended: Some(intended),
                }
            }
        }
    }
}

/// The shared stop condition of a run.
#[derive(Debug)]
pub struct Stop {
    deadline: Option<Instant>,
    requests: Option<u64>,
    issued: AtomicU64,
    aborted: AtomicBool,
}

impl Stop {
    /// Stops at `deadline` and/or after `requests` requests, whichever comes first.
    pub fn new(deadline: Option<Instant>, requests: Option<u64>) -> Stop {
        Stop {
            deadline,
            requests,
            issued: AtomicU64::new(0),
            aborted: AtomicBool::new(false),
        }
    }

    /// Claims the right to start one request at `send_at`; false once the run is over.
    pub fn claim(&self, send_at: Instant) -> bool {
        if self.aborted.load(Ordering::Relaxed) {
            return false;
        }
        if let Some(deadline) = self.deadline {
            if send_at >= deadline {
                return false;
            }
        }
        match self.requests {
            None => true,
            Some(limit) => self
                .issued
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < limit).then_some(n + 1)
                })
                .is_ok(),
        }
    }

    /// Ends the run early: no further claim succeeds.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::Relaxed);
    }

    /// True once every ticket of `--requests` has been handed out.
    pub fn requests_exhausted(&self) -> bool {
        self.requests
            .is_some_and(|limit| self.issued.load(Ordering::Relaxed) >= limit)
    }

    /// True once [`Stop::abort`] was called.
    pub fn aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }

    /// The deadline, if the run has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;
    use std::sync::Arc;

    /// Drives one connection against a simulated server on a simulated clock: each request
    /// takes `service_ms`, except that nothing completes during the stall
    /// [`stall_from_ms`, `stall_to_ms`). Returns the latencies (ms) the bench would record.
    fn simulate(
        mut pacer: Pacer,
        t0: Instant,
        run_ms: u64,
        service_ms: u64,
        stall_from_ms: u64,
        stall_to_ms: u64,
    ) -> Vec<u64> {
        let stop = Stop::new(Some(t0 + Duration::from_millis(run_ms)), None);
        let ms = |t: Instant| (t - t0).as_millis() as u64;
        let mut now = t0;
        let mut latencies = Vec::new();
        loop {
            let slot = pacer.next_slot(now);
            if !stop.claim(slot.send_at.max(now)) {
                break;
            }
            now = now.max(slot.send_at);
            let sent = now;
            let mut done_ms = ms(sent) + service_ms;
            if done_ms > stall_from_ms && ms(sent) < stall_to_ms {
                done_ms = done_ms.max(stall_to_ms + service_ms);
            }
            now = t0 + Duration::from_millis(done_ms);
            let from = slot.intended.unwrap_or(sent);
            latencies.push((now - from).as_millis() as u64);
        }
        latencies
    }

    fn p99(latencies: &[u64]) -> u64 {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for &l in latencies {
            h.record(l).unwrap();
        }
        h.value_at_quantile(0.99)
    }

    #[test]
    fn open_loop_charges_a_stall_to_every_request_it_delayed() {
        let t0 = Instant::now();
        // 100 requests/s on one connection for 10 s; the server stalls 1 s at t = 5 s.
        let open = simulate(Pacer::open(t0, 100.0, 0, 1), t0, 10_000, 1, 5_000, 6_000);
        assert_eq!(
            open.len(),
            1000,
            "the schedule owes exactly rate x duration requests"
        );
        // Requests intended during the stall waited for it: ~100 of them, up to ~1 s.
        let slow = open.iter().filter(|&&l| l >= 100).count();
        assert!((80..=110).contains(&slow), "{slow} slow requests");
        assert!(open.iter().max().copied().unwrap() >= 990);
        assert!(p99(&open) >= 900, "p99 {} ms", p99(&open));

        // The same stall in closed loop shows as a single slow request (coordinated omission).
        let closed = simulate(Pacer::Closed, t0, 10_000, 1, 5_000, 6_000);
        assert_eq!(closed.iter().filter(|&&l| l >= 100).count(), 1);
        assert!(p99(&closed) <= 2);
    }

    #[test]
    fn open_loop_spreads_connections_over_the_rate() {
        let t0 = Instant::now();
        let mut starts = Vec::new();
        for i in 0..4 {
            let mut p = Pacer::open(t0, 1000.0, i, 4);
            for _ in 0..3 {
                starts.push((p.next_slot(t0).send_at - t0).as_micros());
            }
        }
        starts.sort_unstable();
        let expected: Vec<u128> = (0..12).map(|k| k * 1000).collect();
        assert_eq!(starts, expected);
    }

    #[test]
    fn duration_stops_at_the_deadline() {
        let t0 = Instant::now();
        let stop = Stop::new(Some(t0 + Duration::from_secs(2)), None);
        assert!(stop.claim(t0));
        assert!(stop.claim(t0 + Duration::from_millis(1999)));
        assert!(!stop.claim(t0 + Duration::from_secs(2)));
        assert!(!stop.claim(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn request_count_hands_out_exactly_n_tickets() {
        let stop = Arc::new(Stop::new(None, Some(1000)));
        let now = Instant::now();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || (0..600).filter(|_| stop.claim(now)).count())
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1000);
        assert!(stop.requests_exhausted());
        assert!(!stop.claim(now));
    }

    #[test]
    fn abort_stops_everything() {
        let stop = Stop::new(None, None);
        assert!(stop.claim(Instant::now()));
        stop.abort();
        assert!(!stop.claim(Instant::now()));
    }
}
