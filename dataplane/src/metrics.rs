//! Per-core counters and their Prometheus text rendering.
//!
//! Each core owns one [`CoreMetrics`] (its own cache lines); only that core writes it, with
//! relaxed atomic adds on uncontended lines, and `/metrics` (served by whichever core gets the
//! request) reads all of them. There is no lock and no cross-core write on the hot path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

use crate::config::SendMode;

/// The two wire protocols a core serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Vortex = 0,
    Http = 1,
}

impl Proto {
    pub const ALL: [Proto; 2] = [Proto::Vortex, Proto::Http];
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Vortex => "vortex",
            Proto::Http => "http",
        }
    }
}

/// The strategy that actually moved a body chunk (never `Auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Copy = 0,
    Zerocopy = 1,
    Sendfile = 2,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::Copy, Strategy::Zerocopy, Strategy::Sendfile];
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Copy => "copy",
            Strategy::Zerocopy => "zerocopy",
            Strategy::Sendfile => "sendfile",
        }
    }
    pub fn from_mode(mode: SendMode) -> Option<Strategy> {
        match mode {
            SendMode::Auto => None,
            SendMode::Copy => Some(Strategy::Copy),
            SendMode::Zerocopy => Some(Strategy::Zerocopy),
            SendMode::Sendfile => Some(Strategy::Sendfile),
        }
    }
}

/// Why a request failed or a connection was cut. Labels of `hawker_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Unknown task or piece number.
    NotFound = 0,
    /// The piece exists but has not landed yet (a task still seeding).
    NotAvailable,
    /// A malformed or out-of-bounds Vortex frame.
    BadFrame,
    /// A malformed HTTP request (4xx other than 404/416).
    BadHttp,
    /// A Range that cannot be satisfied (416).
    RangeNotSatisfiable,
    /// A request head that was not complete within the request timeout (slowloris).
    RequestTimeout,
    /// A response that made no progress within the send-stall timeout.
    SendStall,
    /// The peer reset or closed the connection in the middle of a response.
    PeerGone,
    /// A connection refused because the core was at its connection limit.
    ConnectionLimit,
    /// A system call failed unexpectedly.
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::NotFound,
        ErrorKind::NotAvailable,
        ErrorKind::BadFrame,
        ErrorKind::BadHttp,
        ErrorKind::RangeNotSatisfiable,
        ErrorKind::RequestTimeout,
        ErrorKind::SendStall,
        ErrorKind::PeerGone,
        ErrorKind::ConnectionLimit,
        ErrorKind::Internal,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::NotAvailable => "not_available",
            ErrorKind::BadFrame => "bad_frame",
            ErrorKind::BadHttp => "bad_http",
            ErrorKind::RangeNotSatisfiable => "range_not_satisfiable",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::SendStall => "send_stall",
            ErrorKind::PeerGone => "peer_gone",
            ErrorKind::ConnectionLimit => "connection_limit",
            ErrorKind::Internal => "internal",
        }
    }
}

/// One core's counters. Written by that core only.
#[repr(align(128))]
#[derive(Default)]
pub struct CoreMetrics {
    pub connections_open: [AtomicU64; 2],
    pub connections_accepted: [AtomicU64; 2],
    pub idle_closed: AtomicU64,
    pub requests: [AtomicU64; 2],
    pub pieces_served: [AtomicU64; 2],
    pub body_bytes: [AtomicU64; 2],
    pub errors: [AtomicU64; ErrorKind::ALL.len()],
    pub send_ops: [AtomicU64; 3],
    pub send_bytes: [AtomicU64; 3],
    pub zerocopy_copied: AtomicU64,
    pub zerocopy_budget_fallback: AtomicU64,
    pub zerocopy_inflight_bytes: AtomicU64,
    pub tasks: AtomicU64,
    pub loop_turns: AtomicU64,
}

#[inline]
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

#[inline]
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Relaxed);
}

/// The process's health, as `/healthz` reports it to load balancers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Serving = 0,
    Draining = 1,
    Failed = 2,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Serving => "serving",
            Health::Draining => "draining",
            Health::Failed => "failed",
        }
    }
}

/// State shared read-mostly by all cores: health and every core's counters.
pub struct Shared {
    health: AtomicU8,
    pub cores: Vec<CoreMetrics>,
    pub core_ids: Vec<usize>,
    pub send_mode: SendMode,
    pub zerocopy_budget_bytes_per_core: u64,
}

impl Shared {
    pub fn new(core_ids: Vec<usize>, send_mode: SendMode, zc_budget: u64) -> Shared {
        Shared {
            health: AtomicU8::new(Health::Serving as u8),
            cores: core_ids.iter().map(|_| CoreMetrics::default()).collect(),
            core_ids,
            send_mode,
            zerocopy_budget_bytes_per_core: zc_budget,
        }
    }

    pub fn health(&self) -> Health {
        match self.health.load(Relaxed) {
            0 => Health::Serving,
            1 => Health::Draining,
            _ => Health::Failed,
        }
    }

    /// Moves health forward only: serving → draining → failed never goes back.
    pub fn set_health(&self, h: Health) {
        self.health.fetch_max(h as u8, Relaxed);
    }

    /// Renders every counter in Prometheus text exposition format 0.0.4 into `out`.
    pub fn render(&self, out: &mut String) {
        let h = self.health();
        let _ = writeln!(
            out,
            "# HELP hawker_health 0 serving, 1 draining, 2 failed.\n# TYPE hawker_health gauge\nhawker_health{{state=\"{}\"}} {}",
            h.as_str(),
            h as u8
        );
        let _ = writeln!(
            out,
            "# HELP hawker_send_mode_info The configured send mode.\n# TYPE hawker_send_mode_info gauge\nhawker_send_mode_info{{mode=\"{}\"}} 1",
            self.send_mode.as_str()
        );
        let _ = writeln!(
            out,
            "# HELP hawker_zerocopy_budget_bytes Zero-copy bytes a core may have in flight.\n# TYPE hawker_zerocopy_budget_bytes gauge\nhawker_zerocopy_budget_bytes {}",
            self.zerocopy_budget_bytes_per_core
        );
        let protos = Some(("proto", &Proto::ALL.map(Proto::as_str)[..]));
        for (name, kind, help, get) in [
            (
                "hawker_connections_open",
                "gauge",
                "Open connections.",
                &|m: &CoreMetrics, i: usize| m.connections_open[i].load(Relaxed) as _,
            ),
            (
                "hawker_connections_accepted_total",
                "counter",
                "Accepted connections.",
                &|m: &CoreMetrics, i: usize| m.connections_accepted[i].load(Relaxed),
            ),
            (
                "hawker_requests_total",
                "counter",
                "Requests parsed.",
                &|m: &CoreMetrics, i: usize| m.requests[i].load(Relaxed),
            ),
            (
                "hawker_pieces_served_total",
                "counter",
                "Piece or range bodies sent in full.",
                &|m: &CoreMetrics, i: usize| m.pieces_served[i].load(Relaxed),
            ),
            (
                "hawker_body_bytes_total",
                "counter",
                "Body bytes handed to the kernel.",
                &|m: &CoreMetrics, i: usize| m.body_bytes[i].load(Relaxed),
            ),
        ]
            as [(&str, &str, &str, &dyn Fn(&CoreMetrics, usize) -> u64); 5]
        {
            self.family(out, name, kind, help, protos, get);
        }
        self.family(
            out,
            "hawker_errors_total",
            "counter",
            "Failed requests and cut connections by kind.",
            Some(("kind", &ErrorKind::ALL.map(ErrorKind::as_str)[..])),
            &|m, i| m.errors[i].load(Relaxed),
        );
        let strategies = Some(("strategy", &Strategy::ALL.map(Strategy::as_str)[..]));
        self.family(
            out,
            "hawker_send_ops_total",
            "counter",
            "Body send operations by the strategy that ran.",
            strategies,
            &|m, i| m.send_ops[i].load(Relaxed),
        );
        self.family(
            out,
            "hawker_send_bytes_total",
            "counter",
            "Body bytes by the strategy that moved them.",
            strategies,
            &|m, i| m.send_bytes[i].load(Relaxed),
        );
        for (name, kind, help, get) in [
            (
                "hawker_zerocopy_copied_total",
                "counter",
                "Zero-copy sends the kernel reported as copied.",
                &|m: &CoreMetrics, _| m.zerocopy_copied.load(Relaxed),
            ),
            (
                "hawker_zerocopy_budget_fallback_total",
                "counter",
                "Chunks sent by copy because the zero-copy budget was used up.",
                &|m: &CoreMetrics, _| m.zerocopy_budget_fallback.load(Relaxed),
            ),
            (
                "hawker_zerocopy_inflight_bytes",
                "gauge",
                "Zero-copy bytes awaiting their notification.",
                &|m: &CoreMetrics, _| m.zerocopy_inflight_bytes.load(Relaxed),
            ),
            (
                "hawker_idle_closed_total",
                "counter",
                "Keep-alive connections closed after the idle timeout.",
                &|m: &CoreMetrics, _| m.idle_closed.load(Relaxed),
            ),
            (
                "hawker_tasks",
                "gauge",
                "Tasks in the core's table.",
                &|m: &CoreMetrics, _| m.tasks.load(Relaxed),
            ),
            (
                "hawker_loop_turns_total",
                "counter",
                "Turns of the core's event loop.",
                &|m: &CoreMetrics, _| m.loop_turns.load(Relaxed),
            ),
        ]
            as [(&str, &str, &str, &dyn Fn(&CoreMetrics, usize) -> u64); 6]
        {
            self.family(out, name, kind, help, None, get);
        }
    }

    /// One metric family: its HELP and TYPE lines, then one sample per core, or per core and per
    /// value of `dim` (a label and its values, in the order of the counters' indices).
    fn family(
        &self,
        out: &mut String,
        name: &str,
        kind: &str,
        help: &str,
        dim: Option<(&str, &[&str])>,
        get: &dyn Fn(&CoreMetrics, usize) -> u64,
    ) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (m, core) in self.cores.iter().zip(&self.core_ids) {
            match dim {
                None => {
                    let _ = writeln!(out, "{name}{{core=\"{core}\"}} {}", get(m, 0));
                }
                Some((label, values)) => {
                    for (i, v) in values.iter().enumerate() {
                        let _ = writeln!(
                            out,
                            "{name}{{core=\"{core}\",{label}=\"{v}\"}} {}",
                            get(m, i)
                        );
                    }
                }
            }
        }
    }
}
