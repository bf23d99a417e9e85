//! What a run counts: latencies (an hdrhistogram per worker thread, merged at the end),
//! completed pieces and bytes, errors by kind with the first message of each kind, and the
//! per-second interval figures the progress line and the time series are made of.
//!
//! Latencies are recorded in microseconds, from 1 us to [`MAX_LATENCY_US`] (one hour; longer
//! values are clamped to it), with 3 significant digits (a relative error under 0.1%).
//! A worker owns its [`Totals`]; its [`Interval`] sits behind a mutex that the reporter
//! thread empties once a second (one uncontended lock per completed piece: tens of ns against
//! a piece that takes hundreds of microseconds or more).

use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The largest latency the histograms hold, in microseconds (one hour).
pub const MAX_LATENCY_US: u64 = 3_600_000_000;
/// The longest error message kept as a sample, in bytes.
pub const MAX_ERROR_SAMPLE_BYTES: usize = 512;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connection could not be opened in time.
    Connect,
    /// The request did not complete within `--timeout`.
    Timeout,
    /// A socket error other than an early end of stream (reset, broken pipe).
    Io,
    /// The server closed the connection before the whole piece arrived.
    ShortBody,
    /// The server's piece number, offset or length differs from the layout.
    BadLength,
    /// The content's crc32 differs from the digest the server or the task list gave.
    BadDigest,
    /// The bytes were not the protocol (bad header, unknown tag, bad metadata, no length).
    Protocol,
    /// An HTTP status other than the expected 200 (piece URLs) or 206 (ranges).
    HttpStatus,
    /// The server answered with a Vortex Error frame.
    ServerError,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Io,
        ErrorKind::ShortBody,
        ErrorKind::BadLength,
        ErrorKind::BadDigest,
        ErrorKind::Protocol,
        ErrorKind::HttpStatus,
        ErrorKind::ServerError,
    ];

    /// The snake_case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Io => "io",
            ErrorKind::ShortBody => "short_body",
            ErrorKind::BadLength => "bad_length",
            ErrorKind::BadDigest => "bad_digest",
            ErrorKind::Protocol => "protocol",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::ServerError => "server_error",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error counts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts([u64; ErrorKind::ALL.len()]);

impl ErrorCounts {
    /// Counts one error.
    pub fn add(&mut self, kind: ErrorKind) {
        self.0[kind.index()] += 1;
    }

    /// The count of one kind.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0[kind.index()]
    }

    /// All errors.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// The kinds with a non-zero count, in report order.
    pub fn nonzero(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        ErrorKind::ALL
            .into_iter()
            .map(|k| (k, self.get(k)))
            .filter(|&(_, n)| n > 0)
    }
}

/// A new latency histogram (microseconds, 1 us ..= one hour, 3 significant digits).
pub fn new_latency_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; this cannot fail.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Counts of completed work, shared shape of totals and intervals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Pieces received whole (and verified, unless `--no-verify`).
    pub pieces: u64,
    /// Content bytes of those pieces.
    pub bytes: u64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
}

impl Counts {
    /// Adds another set of counts.
    pub fn merge(&mut self, other: &Counts) {
        self.pieces += other.pieces;
        self.bytes += other.bytes;
        self.errors.merge(&other.errors);
    }
}

/// A latency histogram with its counts.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Latencies of completed pieces, microseconds.
    pub latency_us: Histogram<u64>,
    /// What completed and what failed.
    pub counts: Counts,
}

impl Default for Recorded {
    fn default() -> Self {
        Recorded {
            latency_us: new_latency_histogram(),
            counts: Counts::default(),
        }
    }
}

impl Recorded {
    /// Records one completed piece of `bytes` bytes that took `latency_us`.
    pub fn piece(&mut self, bytes: u64, latency_us: u64) {
        self.latency_us
            .saturating_record(latency_us.clamp(1, MAX_LATENCY_US));
        self.counts.pieces += 1;
        self.counts.bytes += bytes;
    }

    /// Records one failed request.
    pub fn error(&mut self, kind: ErrorKind) {
        self.counts.errors.add(kind);
    }

    /// Adds another recording (histograms have the same bounds, so this cannot fail).
    pub fn merge(&mut self, other: &Recorded) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms share their bounds");
        self.counts.merge(&other.counts);
    }

    /// Empties the recording, keeping its memory.
    pub fn reset(&mut self) {
        self.latency_us.reset();
        self.counts = Counts::default();
    }
}

/// A worker thread's whole-run totals plus the first error message of each kind.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Latencies and counts.
    pub recorded: Recorded,
    /// TCP connections opened (initial and re-connects).
    pub connects: u64,
    /// Initial connects (before t0) that failed; also counted as `connect` errors, but not as
    /// requests.
    pub preconnect_failures: u64,
    /// The first message seen for each error kind, by `ErrorKind` order.
    pub samples: [Option<String>; ErrorKind::ALL.len()],
}

impl Totals {
    /// Records a failed request with its message (kept if it is the first of its kind).
    pub fn error(&mut self, kind: ErrorKind, message: &str) {
        self.recorded.error(kind);
        let slot = &mut self.samples[kind.index()];
        if slot.is_none() {
            let mut end = message.len().min(MAX_ERROR_SAMPLE_BYTES);
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            *slot = Some(message[..end].to_string());
        }
    }

    /// Adds another worker's totals (keeping the first sample of each kind).
    pub fn merge(&mut self, other: &Totals) {
        self.recorded.merge(&other.recorded);
        self.connects += other.connects;
        self.preconnect_failures += other.preconnect_failures;
        for (mine, theirs) in self.samples.iter_mut().zip(&other.samples) {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
    }

    /// The error samples that exist, with their kind.
    pub fn error_samples(&self) -> impl Iterator<Item = (ErrorKind, &str)> + '_ {
        ErrorKind::ALL
            .into_iter()
            .zip(&self.samples)
            .filter_map(|(k, s)| s.as_deref().map(|s| (k, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_merge_across_threads() {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut totals = Totals::default();
                    for i in 1..=1000u64 {
                        totals.recorded.piece(100, t * 1000 + i);
                    }
                    if t == 2 {
                        totals.error(ErrorKind::BadDigest, "first");
                        totals.error(ErrorKind::BadDigest, "second");
                    }
                    totals.connects = 1;
                    totals
                })
            })
            .collect();
        let mut merged = Totals::default();
        for h in handles {
            merged.merge(&h.join().unwrap());
        }
        let hist = &merged.recorded.latency_us;
        assert_eq!(hist.len(), 4000);
        assert_eq!(merged.recorded.counts.pieces, 4000);
        assert_eq!(merged.recorded.counts.bytes, 400_000);
        assert_eq!(merged.connects, 4);
        assert_eq!(hist.min(), 1);
        assert!(hist.equivalent(hist.max(), 4000));
        // Values 1..=4000 uniformly: the median is ~2000, p99 ~3960.
        assert!(hist.equivalent(hist.value_at_quantile(0.5), 2000));
        assert!(hist.equivalent(hist.value_at_quantile(0.99), 3960));
        assert_eq!(merged.recorded.counts.errors.get(ErrorKind::BadDigest), 2);
        assert_eq!(merged.recorded.counts.errors.total(), 2);
        let samples: Vec<_> = merged.error_samples().collect();
        assert_eq!(samples, vec![(ErrorKind::BadDigest, "first")]);
    }

    #[test]
    fn out_of_range_latencies_are_clamped_not_lost() {
        let mut r = Recorded::default();
        r.piece(1, 0);
        r.piece(1, u64::MAX);
        assert_eq!(r.latency_us.len(), 2);
        assert!(r.latency_us.equivalent(r.latency_us.max(), MAX_LATENCY_US));
        r.reset();
        assert_eq!(r.latency_us.len(), 0);
        assert_eq!(r.counts, Counts::default());
    }

    #[test]
    fn long_error_messages_are_cut_on_a_char_boundary() {
        let mut t = Totals::default();
        let long = "é".repeat(MAX_ERROR_SAMPLE_BYTES);
        t.error(ErrorKind::Protocol, &long);
        let kept = t.samples[ErrorKind::Protocol as usize].as_ref().unwrap();
        assert!(kept.len() <= MAX_ERROR_SAMPLE_BYTES);
    }
}
