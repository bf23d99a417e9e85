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
        type Getter = fn(&CoreMetrics, usize) -> u64;
        type CoreGetter = fn(&CoreMetrics) -> u64;
        let per_proto: [(&str, &str, &str, Getter); 5] = [
            (
                "hawker_connections_open",
                "gauge",
                "Open connections.",
                |m, i| m.connections_open[i].load(Relaxed),
            ),
            (
                "hawker_connections_accepted_total",
                "counter",
                "Accepted connections.",
                |m, i| m.connections_accepted[i].load(Relaxed),
            ),
            (
                "hawker_requests_total",
                "counter",
                "Requests parsed.",
                |m, i| m.requests[i].load(Relaxed),
            ),
            (
                "hawker_pieces_served_total",
                "counter",
                "Piece or range bodies sent in full.",
                |m, i| m.pieces_served[i].load(Relaxed),
            ),
            (
                "hawker_body_bytes_total",
                "counter",
                "Body bytes handed to the kernel.",
                |m, i| m.body_bytes[i].load(Relaxed),
            ),
        ];
        for (name, kind, help, get) in per_proto {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (ci, m) in self.cores.iter().enumerate() {
                for p in Proto::ALL {
                    let _ = writeln!(
                        out,
                        "{name}{{core=\"{}\",proto=\"{}\"}} {}",
                        self.core_ids[ci],
                        p.as_str(),
                        get(m, p as usize)
                    );
                }
            }
        }
        let _ = writeln!(out, "# HELP hawker_errors_total Failed requests and cut connections by kind.\n# TYPE hawker_errors_total counter");
        for (ci, m) in self.cores.iter().enumerate() {
            for k in ErrorKind::ALL {
                let _ = writeln!(
                    out,
                    "hawker_errors_total{{core=\"{}\",kind=\"{}\"}} {}",
                    self.core_ids[ci],
                    k.as_str(),
                    m.errors[k as usize].load(Relaxed)
                );
            }
        }
        for (name, help, idx) in [
            (
                "hawker_send_ops_total",
                "Body send operations by the strategy that ran.",
                0,
            ),
            (
                "hawker_send_bytes_total",
                "Body bytes by the strategy that moved them.",
                1,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (ci, m) in self.cores.iter().enumerate() {
                for s in Strategy::ALL {
                    let v = if idx == 0 { &m.send_ops } else { &m.send_bytes }[s as usize]
                        .load(Relaxed);
                    let _ = writeln!(
                        out,
                        "{name}{{core=\"{}\",strategy=\"{}\"}} {v}",
                        self.core_ids[ci],
                        s.as_str()
                    );
                }
            }
        }
        let per_core: [(&str, &str, &str, CoreGetter); 6] = [
            (
                "hawker_zerocopy_copied_total",
                "counter",
                "Zero-copy sends the kernel reported as copied.",
                |m| m.zerocopy_copied.load(Relaxed),
            ),
            (
                "hawker_zerocopy_budget_fallback_total",
                "counter",
                "Chunks sent by copy because the zero-copy budget was used up.",
                |m| m.zerocopy_budget_fallback.load(Relaxed),
            ),
            (
                "hawker_zerocopy_inflight_bytes",
                "gauge",
                "Zero-copy bytes awaiting their notification.",
                |m| m.zerocopy_inflight_bytes.load(Relaxed),
            ),
            (
                "hawker_idle_closed_total",
                "counter",
                "Keep-alive connections closed after the idle timeout.",
                |m| m.idle_closed.load(Relaxed),
            ),
            ("hawker_tasks", "gauge", "Tasks in the core's table.", |m| {
                m.tasks.load(Relaxed)
            }),
            (
                "hawker_loop_turns_total",
                "counter",
                "Turns of the core's event loop.",
                |m| m.loop_turns.load(Relaxed),
            ),
        ];
        for (name, kind, help, get) in per_core {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (ci, m) in self.cores.iter().enumerate() {
                let _ = writeln!(out, "{name}{{core=\"{}\"}} {}", self.core_ids[ci], get(m));
            }
        }
    }
}
