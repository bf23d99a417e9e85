//! The order in which response bodies are admitted, across all cores.
//!
//! Each core admits bodies first come, first served under its own byte budget
//! (`Core::start_write`). With per-core queues alone, a core that gets less CPU than the others
//! (on a shared host, or a core with more connections) cycles its connections more slowly, and
//! their requests wait longer than those on other cores: at 800 connections on two cores the
//! pieces served per core differed by 1.3–1.45× in one run, and that was the tail of the
//! latency distribution (`docs/decisions/0003`).
//!
//! So every body draws a ticket from one server-wide counter when it asks to be sent, each core
//! publishes the ticket of the oldest body waiting in its queue, and a core admits a body only
//! while its ticket is at most [`ADMISSION_LEAD_REQUESTS`] past the oldest one waiting anywhere.
//! A core that runs ahead pauses (and its CPU goes to whoever is behind); the skew between
//! cores is bounded by that many pieces of server-wide progress.
//!
//! Invariants:
//! - The body holding the oldest waiting ticket can always be admitted as far as order goes
//!   (`ticket <= oldest + lead`), so order never deadlocks; the byte budget alone can make it
//!   wait, and bodies in flight always finish and release budget.
//! - Cores write only their own head; every access is a relaxed atomic on its own cache line.
//!   A stale read can only make a core wait a little longer (it sees an older head), never
//!   admit out of the bound by more than the staleness.
//! - Cost: one `fetch_add` per body and one load per core per admission decision: a few hundred
//!   nanoseconds against a 4 MiB piece.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How many tickets a core may admit past the oldest body waiting on any core. 64 pieces of
/// 4 MiB are 27 ms of a 10 GB/s server's progress.
pub const ADMISSION_LEAD_REQUESTS: u64 = 64;

/// The value a core publishes when nothing waits in its queue.
const NONE_WAITING: u64 = u64::MAX;

/// One atomic on a cache line of its own, so cores do not bounce each other's heads.
#[repr(align(128))]
struct Padded(AtomicU64);

/// How bodies are ordered across cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmissionOrder {
    /// First come, first served across the whole server, within [`ADMISSION_LEAD_REQUESTS`].
    Global,
    /// Each core orders only its own connections.
    PerCore,
}

impl std::str::FromStr for AdmissionOrder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "global" => Ok(AdmissionOrder::Global),
            "core" => Ok(AdmissionOrder::PerCore),
            other => Err(format!(
                "unknown admission order {other:?}: expected global or core"
            )),
        }
    }
}

impl AdmissionOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionOrder::Global => "global",
            AdmissionOrder::PerCore => "core",
        }
    }
}

/// The server-wide ticket counter and each core's oldest waiting ticket.
pub struct Tickets {
    next: Padded,
    heads: Box<[Padded]>,
    global: bool,
}

impl Tickets {
    pub fn new(cores: usize, order: AdmissionOrder) -> Tickets {
        Tickets {
            next: Padded(AtomicU64::new(0)),
            heads: (0..cores)
                .map(|_| Padded(AtomicU64::new(NONE_WAITING)))
                .collect(),
            global: order == AdmissionOrder::Global,
        }
    }

    /// A new body's place in line.
    pub fn draw(&self) -> u64 {
        self.next.0.fetch_add(1, Relaxed)
    }

    /// `core`'s oldest waiting body is now `ticket` (None: its queue is empty).
    pub fn publish(&self, core: usize, ticket: Option<u64>) {
        self.heads[core]
            .0
            .store(ticket.unwrap_or(NONE_WAITING), Relaxed);
    }

    /// Whether a body with `ticket` may be admitted now as far as order goes.
    pub fn may_admit(&self, ticket: u64) -> bool {
        if !self.global {
            return true;
        }
        let oldest = self
            .heads
            .iter()
            .map(|h| h.0.load(Relaxed))
            .min()
            .unwrap_or(NONE_WAITING);
        ticket <= oldest.saturating_add(ADMISSION_LEAD_REQUESTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_may_run_at_most_the_lead_ahead_of_the_oldest_waiter() {
        let t = Tickets::new(2, AdmissionOrder::Global);
        // Nobody waits: anything goes.
        assert!(t.may_admit(1_000_000));
        let oldest = t.draw();
        t.publish(1, Some(oldest));
        let mut last = oldest;
        for _ in 0..ADMISSION_LEAD_REQUESTS {
            last = t.draw();
        }
        assert!(t.may_admit(last), "exactly the lead ahead");
        assert!(!t.may_admit(t.draw()), "one past the lead");
        // The oldest waiter itself is always admissible: no deadlock.
        assert!(t.may_admit(oldest));
        // Core 1's queue empties: core 0 is free again.
        t.publish(1, None);
        assert!(t.may_admit(last + 1));
    }

    #[test]
    fn the_minimum_over_cores_counts() {
        let t = Tickets::new(3, AdmissionOrder::Global);
        t.publish(0, Some(500));
        t.publish(2, Some(100));
        assert!(t.may_admit(100 + ADMISSION_LEAD_REQUESTS));
        assert!(!t.may_admit(101 + ADMISSION_LEAD_REQUESTS));
        t.publish(2, Some(400));
        assert!(t.may_admit(400 + ADMISSION_LEAD_REQUESTS));
    }

    #[test]
    fn per_core_order_never_waits_for_other_cores() {
        let t = Tickets::new(2, AdmissionOrder::PerCore);
        t.publish(1, Some(0));
        assert!(t.may_admit(1 << 40));
        assert_eq!(
            "core".parse::<AdmissionOrder>(),
            Ok(AdmissionOrder::PerCore)
        );
        assert!("fifo"
            .parse::<AdmissionOrder>()
            .unwrap_err()
            .contains("global or core"));
    }
}
