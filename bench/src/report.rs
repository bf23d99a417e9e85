//! What a run reports: the live progress line (stderr, once a second), the per-second time
//! series, the human summary, and the JSON document (`--json`) with every figure, the
//! configuration and the series.
//!
//! Units: GB and Gbit are decimal (1e9 bytes, 1e9 bits); MiB/GiB are binary; latencies are
//! microseconds in JSON (`_us`) and adaptive in text. Throughput is content bytes of pieces
//! that arrived whole and verified, divided by the run's elapsed time (t0 to the last
//! completion). The fair-share ideal p99 is `concurrency x mean piece bytes / throughput`: the
//! time one piece takes when the measured throughput is split evenly over all connections;
//! p99/ideal near 1 means the server shares its bandwidth fairly, far above 1 means some
//! requests wait behind others (queueing, head-of-line blocking, an unfair scheduler).
//!
//! Invariants: a run with any error, no completed piece, or an interruption has `ok: false`,
//! says so on the FIRST line of the summary, and makes dp-bench exit non-zero.
//! The series holds at most [`MAX_SERIES_POINTS`] points (one day of seconds).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::{Observer, RunOutcome};
use crate::procstat::{self, CpuTime, ProcWatcher};
use crate::stats::{ErrorKind, Recorded};
use crate::units::{format_bytes, format_us};

/// The most per-second points kept.
pub const MAX_SERIES_POINTS: usize = 24 * 3600;

/// One interval of the time series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// End of the interval, seconds after t0.
    pub t_s: f64,
    /// Length of the interval, seconds.
    pub dt_s: f64,
    /// Pieces completed in the interval.
    pub pieces: u64,
    /// Content bytes of those pieces.
    pub bytes: u64,
    /// Failed requests in the interval.
    pub errors: u64,
    /// Throughput, 1e9 bytes per second.
    pub gb_per_s: f64,
    /// Completed pieces per second.
    pub pieces_per_s: f64,
    /// Latency percentiles of the pieces completed in the interval (null when none).
    pub p50_us: Option<u64>,
    /// 90th percentile.
    pub p90_us: Option<u64>,
    /// 99th percentile.
    pub p99_us: Option<u64>,
    /// Largest.
    pub max_us: Option<u64>,
}

impl SeriesPoint {
    /// The point for an interval ending `end` after t0 and lasting `dt`.
    pub fn new(end: Duration, dt: Duration, interval: &Recorded) -> SeriesPoint {
        let dt_s = dt.as_secs_f64().max(1e-9);
        let h = &interval.latency_us;
        let q = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q));
        SeriesPoint {
            t_s: end.as_secs_f64(),
            dt_s,
            pieces: interval.counts.pieces,
            bytes: interval.counts.bytes,
            errors: interval.counts.errors.total(),
            gb_per_s: interval.counts.bytes as f64 / dt_s / 1e9,
            pieces_per_s: interval.counts.pieces as f64 / dt_s,
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            max_us: (!h.is_empty()).then(|| h.max()),
        }
    }
}

/// Watches the run: keeps the series, prints progress, samples CPU at t0.
pub struct Monitor {
    /// The per-second series so far.
    pub series: Vec<SeriesPoint>,
    /// True when points were dropped past [`MAX_SERIES_POINTS`].
    pub series_truncated: bool,
    progress: bool,
    tty: bool,
    last_end: Duration,
    errors_so_far: u64,
    /// When the measured run started.
    pub t0: Option<Instant>,
    /// The bench's CPU time at t0.
    pub client_cpu_t0: CpuTime,
    /// The server's CPU time at t0, when watched.
    pub server_cpu_t0: Option<CpuTime>,
    server: Option<ProcWatcher>,
}

impl Monitor {
    /// A monitor; `progress` prints the live line on stderr; `server` is watched over the run.
    pub fn new(progress: bool, server: Option<ProcWatcher>) -> Monitor {
        Monitor {
            series: Vec::new(),
            series_truncated: false,
            progress,
            tty: std::io::stderr().is_terminal(),
            last_end: Duration::ZERO,
            errors_so_far: 0,
            t0: None,
            client_cpu_t0: CpuTime::default(),
            server_cpu_t0: None,
            server,
        }
    }

    /// The watched server, if any.
    pub fn server(&self) -> Option<&ProcWatcher> {
        self.server.as_ref()
    }

    /// Ends the progress line (call after the run).
    pub fn finish(&self) {
        if self.progress && self.tty && !self.series.is_empty() {
            eprintln!();
        }
    }
}

impl Observer for Monitor {
    fn started(&mut self, t0: Instant) {
        self.t0 = Some(t0);
        self.client_cpu_t0 = procstat::self_cpu();
        self.server_cpu_t0 = self.server.as_ref().and_then(|s| s.cpu().ok());
    }

    fn tick(&mut self, elapsed: Duration, interval: &Recorded) {
        let dt = elapsed.saturating_sub(self.last_end);
        self.last_end = elapsed;
        if dt.is_zero() {
            return;
        }
        let point = SeriesPoint::new(elapsed, dt, interval);
        self.errors_so_far += point.errors;
        if self.progress {
            let line = format!(
                "[{:6.1}s] {:7.3} GB/s {:9.1} pieces/s  p99 {:>10}  errors {}",
                point.t_s,
                point.gb_per_s,
                point.pieces_per_s,
                point.p99_us.map_or("-".into(), |v| format_us(v as f64)),
                self.errors_so_far
            );
            let mut err = std::io::stderr().lock();
            if self.tty {
                let _ = write!(err, "\r{line}\x1b[K");
            } else {
                let _ = writeln!(err, "{line}");
            }
            let _ = err.flush();
        }
        if self.series.len() < MAX_SERIES_POINTS {
            self.series.push(point);
        } else {
            self.series_truncated = true;
        }
    }
}

/// The run's configuration as reported (filled by the command line front end).
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// `vortex` or `http`.
    pub protocol: String,
    /// The `--vortex` address or `--http` URL as given.
    pub target: String,
    /// The resolved socket address.
    pub addr: String,
    /// HTTP only: `hawker` or `range`.
    pub http_style: Option<String>,
    /// HTTP range style only: the path template.
    pub http_path_template: Option<String>,
    /// Where the tasks came from.
    pub tasks_source: String,
    /// Tasks with at least one piece.
    pub tasks: usize,
    /// Pieces over all tasks.
    pub pieces_total: u64,
    /// Mean piece size over all pieces of the workload, bytes.
    pub workload_mean_piece_bytes: f64,
    /// `uniform` or `zipf`.
    pub dist: String,
    /// Zipf exponent (zipf only).
    pub zipf_s: Option<f64>,
    /// The workload seed.
    pub seed: u64,
    /// Connections.
    pub concurrency: usize,
    /// Worker threads started.
    pub threads: usize,
    /// `--duration`, seconds.
    pub duration_s: Option<f64>,
    /// `--requests`.
    pub requests: Option<u64>,
    /// `--rate` (open loop), requests per second; null = closed loop.
    pub rate_per_s: Option<f64>,
    /// `--timeout`, seconds.
    pub timeout_s: f64,
    /// `--connect-timeout`, seconds.
    pub connect_timeout_s: f64,
    /// False with `--no-verify`.
    pub verify: bool,
}

/// Overall throughput.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Content bytes per second.
    pub bytes_per_s: f64,
    /// 1e9 bytes per second.
    pub gb_per_s: f64,
    /// 1e9 bits per second.
    pub gbit_per_s: f64,
    /// Completed pieces per second.
    pub pieces_per_s: f64,
}

/// Latency distribution of completed pieces, microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Completed pieces measured.
    pub count: u64,
    /// Smallest.
    pub min_us: u64,
    /// Mean.
    pub mean_us: f64,
    /// Standard deviation.
    pub stdev_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
    /// `actual_send` (closed loop) or `intended_start` (open loop, CO-corrected).
    pub measured_from: String,
}

/// The fair-share comparison (see the module doc).
#[derive(Debug, Clone, Serialize)]
pub struct FairShare {
    /// Connections.
    pub concurrency: usize,
    /// Mean size of the completed pieces, bytes.
    pub mean_piece_bytes: f64,
    /// `concurrency x mean_piece_bytes / throughput`, microseconds.
    pub ideal_p99_us: Option<f64>,
    /// Measured p99 over the ideal.
    pub p99_over_ideal: Option<f64>,
}

/// Errors by kind with the first message of each.
#[derive(Debug, Clone, Serialize)]
pub struct Errors {
    /// All failed requests.
    pub total: u64,
    /// Count per kind (every kind listed, zeros included).
    pub by_kind: BTreeMap<&'static str, u64>,
    /// The first message of each kind that occurred.
    pub samples: BTreeMap<&'static str, String>,
}

/// The bench's own CPU use over the run.
#[derive(Debug, Clone, Serialize)]
pub struct ClientCpu {
    /// User seconds.
    pub user_s: f64,
    /// System seconds.
    pub sys_s: f64,
    /// User plus system seconds.
    pub cpu_s: f64,
    /// cpu_s / elapsed: cores busy on average.
    pub cores: f64,
    /// Content bytes per CPU-second.
    pub bytes_per_cpu_s: Option<f64>,
}

/// The server's CPU use over the run and its peak memory.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStats {
    /// The watched pids (figures are summed over them).
    pub pids: Vec<u32>,
    /// User seconds.
    pub user_s: f64,
    /// System seconds.
    pub sys_s: f64,
    /// User plus system seconds (resolution: one clock tick).
    pub cpu_s: f64,
    /// cpu_s / elapsed.
    pub cores: f64,
    /// Content bytes per server CPU-second.
    pub bytes_per_cpu_s: Option<f64>,
    /// VmHWM at the end: peak RSS over the server's life, bytes (summed over the pids).
    pub peak_rss_bytes: Option<u64>,
    /// Why a figure is missing, if one is.
    pub note: Option<String>,
}

/// Everything a run reports; serialized as the `--json` document.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Always `dp-bench`.
    pub tool: &'static str,
    /// dp-bench's version.
    pub version: &'static str,
    /// True when every request succeeded, at least one piece completed, and the run was not
    /// interrupted.
    pub ok: bool,
    /// Why `ok` is false.
    pub problems: Vec<String>,
    /// The configuration.
    pub config: RunInfo,
    /// t0 to the last completion, seconds.
    pub elapsed_s: f64,
    /// Pieces completed (whole and verified).
    pub pieces: u64,
    /// Their content bytes.
    pub bytes: u64,
    /// Requests attempted: pieces + errors - preconnect_failures.
    pub requests: u64,
    /// Initial connects (before t0) that failed: counted in `errors` as `connect`, not in
    /// `requests`.
    pub preconnect_failures: u64,
    /// TCP connections opened, initial ones included.
    pub connects: u64,
    /// Throughput.
    pub throughput: Throughput,
    /// Latency.
    pub latency: Latency,
    /// Fair-share comparison.
    pub fair_share: FairShare,
    /// Errors.
    pub errors: Errors,
    /// Client CPU.
    pub client: ClientCpu,
    /// Server CPU and memory (with `--server-pid`).
    pub server: Option<ServerStats>,
    /// True when the series was cut at its bound.
    pub series_truncated: bool,
    /// The per-second series.
    pub series: Vec<SeriesPoint>,
}

impl Summary {
    /// Builds the summary at the end of a run; `client_cpu_end` and the server's figures are
    /// sampled by the caller right after the engine returned.
    pub fn build(
        info: RunInfo,
        outcome: &RunOutcome,
        monitor: &Monitor,
        client_cpu_end: CpuTime,
    ) -> Summary {
        let totals = &outcome.totals;
        let counts = &totals.recorded.counts;
        let h = &totals.recorded.latency_us;
        let elapsed_s = outcome.elapsed.as_secs_f64();
        let per_s = |v: f64| if elapsed_s > 0.0 { v / elapsed_s } else { 0.0 };
        let bytes_per_s = per_s(counts.bytes as f64);
        let empty = h.is_empty();
        let q = |q: f64| if empty { 0 } else { h.value_at_quantile(q) };
        let latency = Latency {
            count: h.len(),
            min_us: if empty { 0 } else { h.min() },
            mean_us: if empty { 0.0 } else { h.mean() },
            stdev_us: if empty { 0.0 } else { h.stdev() },
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if empty { 0 } else { h.max() },
            measured_from: if info.rate_per_s.is_some() {
                "intended_start".into()
            } else {
                "actual_send".into()
            },
        };
        let mean_piece_bytes = if counts.pieces > 0 {
            counts.bytes as f64 / counts.pieces as f64
        } else {
            info.workload_mean_piece_bytes
        };
        let ideal_p99_us = (bytes_per_s > 0.0)
            .then(|| info.concurrency as f64 * mean_piece_bytes / bytes_per_s * 1e6);
        let fair_share = FairShare {
            concurrency: info.concurrency,
            mean_piece_bytes,
            ideal_p99_us,
            p99_over_ideal: ideal_p99_us
                .filter(|_| !empty)
                .map(|ideal| latency.p99_us as f64 / ideal),
        };
        let errors = Errors {
            total: counts.errors.total(),
            by_kind: ErrorKind::ALL
                .into_iter()
                .map(|k| (k.name(), counts.errors.get(k)))
                .collect(),
            samples: totals
                .error_samples()
                .map(|(k, s)| (k.name(), s.to_string()))
                .collect(),
        };
        let client_cpu = client_cpu_end.since(&monitor.client_cpu_t0);
        let per_cpu = |cpu: f64| (cpu > 0.0).then(|| counts.bytes as f64 / cpu);
        let client = ClientCpu {
            user_s: client_cpu.user_s,
            sys_s: client_cpu.sys_s,
            cpu_s: client_cpu.total_s(),
            cores: per_s(client_cpu.total_s()),
            bytes_per_cpu_s: per_cpu(client_cpu.total_s()),
        };
        let server = monitor.server().map(|watcher| {
            let end = watcher.cpu();
            let peak = watcher.peak_rss_bytes();
            let mut notes = Vec::new();
            let cpu = match (monitor.server_cpu_t0, &end) {
                (Some(start), Ok(end)) => end.since(&start),
                (None, _) => {
                    notes.push("no CPU sample at the start".to_string());
                    CpuTime::default()
                }
                (_, Err(e)) => {
                    notes.push(e.clone());
                    CpuTime::default()
                }
            };
            if let Err(e) = &peak {
                notes.push(e.clone());
            }
            ServerStats {
                pids: watcher.pids().to_vec(),
                user_s: cpu.user_s,
                sys_s: cpu.sys_s,
                cpu_s: cpu.total_s(),
                cores: per_s(cpu.total_s()),
                bytes_per_cpu_s: per_cpu(cpu.total_s()),
                peak_rss_bytes: peak.ok(),
                note: (!notes.is_empty()).then(|| notes.join("; ")),
            }
        });
        let mut problems = Vec::new();
        if errors.total > 0 {
            let kinds: Vec<String> = counts
                .errors
                .nonzero()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            problems.push(format!(
                "{} errors in {} requests ({})",
                errors.total,
                (counts.pieces + errors.total).saturating_sub(totals.preconnect_failures),
                kinds.join(", ")
            ));
        }
        if counts.pieces == 0 {
            problems.push("no piece completed".into());
        }
        if outcome.aborted {
            problems.push("the run was interrupted".into());
        }
        Summary {
            tool: "dp-bench",
            version: env!("CARGO_PKG_VERSION"),
            ok: problems.is_empty(),
            problems,
            config: info,
            elapsed_s,
            pieces: counts.pieces,
            bytes: counts.bytes,
            requests: (counts.pieces + errors.total).saturating_sub(totals.preconnect_failures),
            preconnect_failures: totals.preconnect_failures,
            connects: totals.connects,
            throughput: Throughput {
                bytes_per_s,
                gb_per_s: bytes_per_s / 1e9,
                gbit_per_s: bytes_per_s * 8.0 / 1e9,
                pieces_per_s: per_s(counts.pieces as f64),
            },
            latency,
            fair_share,
            errors,
            client,
            server,
            series_truncated: monitor.series_truncated,
            series: monitor.series.clone(),
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        // Serializing plain structs with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human summary; problems come first.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let c = &self.config;
        if !self.ok {
            out.push_str(&format!(
                "FAILED: {} -- the figures below are not a clean measurement\n",
                self.problems.join("; ")
            ));
        }
        let mode = match c.rate_per_s {
            Some(r) => format!("open loop at {r} requests/s"),
            None => "closed loop".into(),
        };
        let dist = match c.zipf_s {
            Some(s) => format!("zipf s={s}"),
            None => c.dist.clone(),
        };
        out.push_str(&format!(
            "dp-bench {} {} ({}): {} connections on {} threads, {mode}, {:.2} s\n",
            c.protocol, c.target, c.addr, c.concurrency, c.threads, self.elapsed_s
        ));
        out.push_str(&format!(
            "workload     {} tasks, {} pieces (mean {}), {dist}, seed {}, {}\n",
            c.tasks,
            c.pieces_total,
            format_bytes(c.workload_mean_piece_bytes),
            c.seed,
            if c.verify {
                "every piece verified (length, crc32)"
            } else {
                "NOT verified (--no-verify)"
            }
        ));
        let t = &self.throughput;
        out.push_str(&format!(
            "throughput   {:.3} GB/s ({:.2} Gbit/s), {:.1} pieces/s; {} pieces, {} in {:.2} s\n",
            t.gb_per_s,
            t.gbit_per_s,
            t.pieces_per_s,
            self.pieces,
            format_bytes(self.bytes as f64),
            self.elapsed_s
        ));
        let l = &self.latency;
        let f = |v: u64| format_us(v as f64);
        out.push_str(&format!(
            "latency      p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {}, from {})\n",
            f(l.p50_us),
            f(l.p90_us),
            f(l.p99_us),
            f(l.p999_us),
            f(l.max_us),
            format_us(l.mean_us),
            l.measured_from.replace('_', " ")
        ));
        let fs = &self.fair_share;
        match (fs.ideal_p99_us, fs.p99_over_ideal) {
            (Some(ideal), Some(ratio)) => out.push_str(&format!(
                "fair share   ideal p99 {} ({} x {} / {:.3} GB/s); p99/ideal {ratio:.2}\n",
                format_us(ideal),
                fs.concurrency,
                format_bytes(fs.mean_piece_bytes),
                t.gb_per_s
            )),
            _ => out.push_str("fair share   n/a (no throughput)\n"),
        }
        if self.errors.total == 0 {
            out.push_str(&format!(
                "errors       none ({} requests, {} connects)\n",
                self.requests, self.connects
            ));
        } else {
            let kinds: Vec<String> = self
                .errors
                .by_kind
                .iter()
                .filter(|(_, &n)| n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            out.push_str(&format!(
                "errors       {} in {} requests: {} ({} connects, {} failed before the start)\n",
                self.errors.total,
                self.requests,
                kinds.join(", "),
                self.connects,
                self.preconnect_failures
            ));
            for (kind, sample) in &self.errors.samples {
                out.push_str(&format!("  first {kind}: {sample}\n"));
            }
        }
        let cl = &self.client;
        out.push_str(&format!(
            "client cpu   {:.2} s (user {:.2} + sys {:.2}) = {:.2} cores; {} per CPU-second\n",
            cl.cpu_s,
            cl.user_s,
            cl.sys_s,
            cl.cores,
            cl.bytes_per_cpu_s
                .map_or("n/a".into(), |b| format!("{:.2} GB", b / 1e9))
        ));
        if let Some(s) = &self.server {
            out.push_str(&format!(
                "server cpu   pid {:?}: {:.2} s (user {:.2} + sys {:.2}) = {:.2} cores; {} per CPU-second; peak RSS {}\n",
                s.pids,
                s.cpu_s,
                s.user_s,
                s.sys_s,
                s.cores,
                s.bytes_per_cpu_s
                    .map_or("n/a".into(), |b| format!("{:.2} GB", b / 1e9)),
                s.peak_rss_bytes
                    .map_or("n/a".into(), |b| format!("{} (VmHWM, whole life)", format_bytes(b as f64)))
            ));
            if let Some(note) = &s.note {
                out.push_str(&format!("  server note: {note}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Totals;

    fn info() -> RunInfo {
        RunInfo {
            protocol: "vortex".into(),
            target: "127.0.0.1:4005".into(),
            addr: "127.0.0.1:4005".into(),
            http_style: None,
            http_path_template: None,
            tasks_source: "test".into(),
            tasks: 1,
            pieces_total: 10,
            workload_mean_piece_bytes: 1000.0,
            dist: "uniform".into(),
            zipf_s: None,
            seed: 1,
            concurrency: 4,
            threads: 2,
            duration_s: Some(2.0),
            requests: None,
            rate_per_s: None,
            timeout_s: 30.0,
            connect_timeout_s: 5.0,
            verify: true,
        }
    }

    fn outcome(errors: bool) -> (RunOutcome, Monitor) {
        let mut totals = Totals::default();
        for i in 0..100 {
            totals.recorded.piece(1_000_000, 1000 + i * 10);
        }
        if errors {
            totals.error(ErrorKind::BadDigest, "task x piece 1: crc mismatch");
        }
        let mut monitor = Monitor::new(false, None);
        monitor.started(Instant::now());
        let mut interval = Recorded::default();
        interval.piece(1_000_000, 1500);
        monitor.tick(Duration::from_secs(1), &interval);
        monitor.tick(Duration::from_secs(2), &Recorded::default());
        let outcome = RunOutcome {
            totals,
            elapsed: Duration::from_secs(2),
            threads: 2,
            aborted: false,
        };
        (outcome, monitor)
    }

    #[test]
    fn json_has_every_figure_in_a_stable_shape() {
        let (outcome, monitor) = outcome(false);
        let summary = Summary::build(info(), &outcome, &monitor, procstat::self_cpu());
        let v: serde_json::Value = serde_json::from_str(&summary.to_json()).unwrap();
        assert_eq!(v["tool"], "dp-bench");
        assert_eq!(v["ok"], true);
        assert_eq!(v["pieces"], 100);
        assert_eq!(v["bytes"], 100_000_000u64);
        assert_eq!(v["requests"], 100);
        assert_eq!(v["elapsed_s"], 2.0);
        assert_eq!(v["throughput"]["gb_per_s"], 0.05);
        assert_eq!(v["throughput"]["pieces_per_s"], 50.0);
        for key in [
            "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "min_us", "mean_us",
        ] {
            assert!(v["latency"][key].is_number(), "latency.{key}");
        }
        assert_eq!(v["latency"]["measured_from"], "actual_send");
        // 4 connections x 1 MB / 50 MB/s = 80 ms.
        let ideal = v["fair_share"]["ideal_p99_us"].as_f64().unwrap();
        assert!((ideal - 80_000.0).abs() < 1e-6, "{ideal}");
        assert!(v["fair_share"]["p99_over_ideal"].is_number());
        assert_eq!(v["errors"]["total"], 0);
        assert_eq!(v["errors"]["by_kind"].as_object().unwrap().len(), 9);
        assert!(v["client"]["cpu_s"].is_number());
        assert!(v["server"].is_null());
        assert_eq!(v["config"]["concurrency"], 4);
        assert_eq!(v["config"]["protocol"], "vortex");
        let series = v["series"].as_array().unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0]["pieces"], 1);
        assert_eq!(series[0]["p50_us"], 1500);
        assert!(series[1]["p50_us"].is_null());
        assert!(summary.to_text().starts_with("dp-bench vortex"));
    }

    #[test]
    fn errors_are_said_first_and_make_the_run_fail() {
        let (outcome, monitor) = outcome(true);
        let summary = Summary::build(info(), &outcome, &monitor, procstat::self_cpu());
        assert!(!summary.ok);
        let text = summary.to_text();
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("FAILED:"), "{first}");
        assert!(first.contains("bad_digest 1"), "{first}");
        assert!(text.contains("first bad_digest: task x piece 1"));
        let v: serde_json::Value = serde_json::from_str(&summary.to_json()).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["errors"]["by_kind"]["bad_digest"], 1);
        assert_eq!(v["requests"], 101);
    }

    #[test]
    fn svg_renders_full_and_empty_runs() {
        let (outcome, monitor) = outcome(true);
        let summary = Summary::build(info(), &outcome, &monitor, procstat::self_cpu());
        let picture = crate::svg::render(&summary);
        assert!(picture.starts_with("<svg") && picture.ends_with("</svg>\n"));
        assert_eq!(
            picture.matches("<polyline").count(),
            5,
            "throughput + 4 latency lines"
        );
        assert!(picture.contains("FAILED"));

        let empty = Monitor::new(false, None);
        let nothing = RunOutcome {
            totals: Totals::default(),
            elapsed: Duration::ZERO,
            threads: 1,
            aborted: true,
        };
        let summary = Summary::build(info(), &nothing, &empty, procstat::self_cpu());
        assert!(!summary.ok);
        let picture = crate::svg::render(&summary);
        assert!(picture.contains("no data") && picture.ends_with("</svg>\n"));
    }
}
