//! Serving configuration: every bound of the data plane, named with its unit.
//!
//! The relationships between bounds are checked once, in [`ServeConfig::validate`], so the
//! per-core loop can rely on them without re-checking.

use crate::order::AdmissionOrder;
use std::net::SocketAddr;
use std::time::Duration;

/// How piece bodies leave the process. See `docs/architecture.md` ("send strategies").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendMode {
    /// Per socket: `sendfile` towards loopback, `zerocopy` elsewhere, falling back to `sendfile`
    /// on a socket whose zero-copy sends the kernel reports as copied.
    Auto,
    /// `IORING_OP_SEND` from the read-only mapping: the kernel copies into the socket buffer.
    Copy,
    /// `IORING_OP_SEND_ZC` from the mapping with `IORING_SEND_ZC_REPORT_USAGE`; the piece is
    /// held until the kernel's notification. In-flight bytes are bounded by RLIMIT_MEMLOCK.
    Zerocopy,
    /// Write readiness from the ring, then `sendfile(2)` at an explicit offset.
    Sendfile,
}

impl SendMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SendMode::Auto => "auto",
            SendMode::Copy => "copy",
            SendMode::Zerocopy => "zerocopy",
            SendMode::Sendfile => "sendfile",
        }
    }
}

impl std::str::FromStr for SendMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(SendMode::Auto),
            "copy" => Ok(SendMode::Copy),
            "zerocopy" => Ok(SendMode::Zerocopy),
            "sendfile" => Ok(SendMode::Sendfile),
            other => Err(format!(
                "unknown send mode {other:?}: expected auto, copy, zerocopy or sendfile"
            )),
        }
    }
}

/// Everything one serving process needs to know. Defaults suit a seed host with 4 MiB pieces.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Where Vortex (Dragonfly's TCP piece protocol) is served.
    pub vortex_listen: SocketAddr,
    /// Where HTTP/1.1 (pieces, ranges, /healthz, /metrics) is served.
    pub http_listen: SocketAddr,
    /// CPUs to run one pinned serving thread on, each with its own ring and listeners.
    pub cores: Vec<usize>,
    pub send_mode: SendMode,
    /// Open connections a core accepts; past it, new connections are closed at once.
    pub max_connections_per_core: u32,
    /// Body bytes handed to the kernel per send operation: the unit of round-robin between
    /// connections, so a fast reader cannot starve the others.
    pub send_chunk_bytes: u32,
    /// Body bytes per sendfile(2) call (`sendfile` and `auto` modes): larger than
    /// `send_chunk_bytes` because a sendfile chunk costs a poll and a syscall, and pins no
    /// memory (a zero-copy chunk is charged to RLIMIT_MEMLOCK until its notification).
    pub sendfile_chunk_bytes: u32,
    /// Zero-copy bytes in flight (sent, not yet notified) per core; derived from RLIMIT_MEMLOCK
    /// at start-up by [`crate::sys::raise_memlock`]. 0 disables zero copy.
    pub zerocopy_inflight_bytes_per_core: u64,
    /// An HTTP request head larger than this is answered 431 and the connection closed.
    pub max_request_head_bytes: usize,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A request whose bytes started arriving must be complete within this (slowloris bound).
    pub request_timeout: Duration,
    /// A response that makes no progress for this long (a peer that stopped reading) is aborted.
    pub send_stall_timeout: Duration,
    /// After SIGTERM: /healthz answers 503 for this long while still accepting, so a load
    /// balancer's health checks see the drain before the listeners close.
    pub drain_grace: Duration,
    /// After the grace period: in-flight responses may finish for at most this long.
    pub drain_timeout: Duration,
    /// Entries in each core's submission queue.
    pub ring_entries: u32,
    /// Messages the control plane may queue to one core before it waits (the edge's depth).
    pub edge_queue_depth: usize,
    /// Bind even if the address is not (yet) configured on this host (IP_FREEBIND): a VIP on
    /// `lo` may be added after start.
    pub freebind: bool,
    /// TCP_MAXSEG for accepted connections, for tunnelled (IPIP DSR) paths; None = kernel's.
    pub tcp_max_segment: Option<u32>,
    /// listen(2) backlog per listener.
    pub listen_backlog: i32,
    /// SO_SNDBUF of accepted sockets; None leaves the kernel's autotuning. A bounded send
    /// buffer keeps the bytes queued per connection small, so the core's round-robin, not the
    /// kernel's memory pressure, decides who is served next.
    pub socket_send_buffer_bytes: Option<u32>,
    /// TCP_NOTSENT_LOWAT of accepted sockets: the most bytes a connection keeps queued in the
    /// kernel but not yet sent (0: the host's `net.ipv4.tcp_notsent_lowat`, unbounded by
    /// default). A response's admission ends when its last byte is handed to the kernel; with
    /// this bound that byte is close to the wire, not behind megabytes in a send buffer, so
    /// first come first served holds down to the socket (docs/decisions/0003).
    pub tcp_notsent_lowat_bytes: u32,
    /// TCP_CONGESTION of accepted sockets; None keeps the host's default
    /// (`net.ipv4.tcp_congestion_control`). Checked against the kernel at start-up. Default:
    /// [`DEFAULT_TCP_CONGESTION`] where the kernel has it (see docs/decisions/0003).
    pub tcp_congestion: Option<String>,
    /// Body bytes a core has in flight at once (responses being sent); more responses wait
    /// their turn, first come first served. See [`admission_budget_bytes`]. 0 = no limit.
    pub max_active_body_bytes_per_core: u64,
    /// A response that waits longer than this for its turn is dropped (its connection closed).
    pub admission_timeout: Duration,
    /// Whether bodies take turns across the whole server or per core (see [`crate::order`]).
    pub admission_order: AdmissionOrder,
}

impl ServeConfig {
    pub const DEFAULT_VORTEX_PORT: u16 = 4015;
    pub const DEFAULT_HTTP_PORT: u16 = 4080;

    pub fn new(vortex_listen: SocketAddr, http_listen: SocketAddr, cores: Vec<usize>) -> Self {
        ServeConfig {
            vortex_listen,
            http_listen,
            cores,
            send_mode: SendMode::Auto,
            max_connections_per_core: 4096,
            send_chunk_bytes: 256 * 1024,
            sendfile_chunk_bytes: 1024 * 1024,
            zerocopy_inflight_bytes_per_core: 0,
            max_request_head_bytes: hawker_shared::http::MAX_REQUEST_HEAD_BYTES,
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            send_stall_timeout: Duration::from_secs(30),
            drain_grace: Duration::ZERO,
            drain_timeout: Duration::from_secs(30),
            ring_entries: 1024,
            edge_queue_depth: 1024,
            freebind: true,
            tcp_max_segment: None,
            listen_backlog: 4096,
            socket_send_buffer_bytes: None,
            tcp_notsent_lowat_bytes: 2 << 20,
            tcp_congestion: default_tcp_congestion(),
            max_active_body_bytes_per_core: 64 << 20,
            admission_timeout: Duration::from_secs(60),
            admission_order: AdmissionOrder::Global,
        }
    }

    /// Checks the relationships between bounds; the message says which flag to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.cores.is_empty() {
            return Err("--cores lists no CPU".into());
        }
        if self.max_connections_per_core == 0 || self.max_connections_per_core > (1 << 20) {
            return Err("--max-connections-per-core must be in 1..=1048576".into());
        }
        if !(4096..=64 << 20).contains(&self.send_chunk_bytes) {
            return Err("--send-chunk-bytes must be in 4096..=67108864".into());
        }
        if !(4096..=64 << 20).contains(&self.sendfile_chunk_bytes) {
            return Err("--sendfile-chunk-bytes must be in 4096..=67108864".into());
        }
        let head_max = hawker_shared::http::MAX_REQUEST_HEAD_BYTES;
        if self.max_request_head_bytes < 512 || self.max_request_head_bytes > head_max {
            return Err(format!(
                "--max-request-head-bytes must be in 512..={head_max}"
            ));
        }
        if !(64..=32768).contains(&self.ring_entries) {
            return Err("--ring-entries must be in 64..=32768".into());
        }
        if self.edge_queue_depth == 0 {
            return Err("--edge-queue-depth must be at least 1".into());
        }
        if let Some(mss) = self.tcp_max_segment {
            if !(536..=65495).contains(&mss) {
                return Err("--tcp-max-segment must be in 536..=65495 bytes".into());
            }
        }
        for d in [
            self.idle_timeout,
            self.request_timeout,
            self.send_stall_timeout,
        ] {
            if d.is_zero() {
                return Err("timeouts must be longer than zero".into());
            }
        }
        Ok(())
    }
}

/// The congestion control hawker's connections use unless told otherwise. FIFO admission
/// makes every connection an on/off sender (one piece, then a wait for its next turn); a
/// loss-based controller sends each burst at its window, while BBR paces it at a bandwidth
/// estimate from earlier bursts (docs/decisions/0003 has the measurements).
pub const DEFAULT_TCP_CONGESTION: &str = "cubic";

/// [`DEFAULT_TCP_CONGESTION`] if this kernel offers it to this process, else None (the host's
/// default). Without root a process may only pick from `tcp_allowed_congestion_control`, so a
/// default it may not set falls back to the host's instead of failing the start.
pub fn default_tcp_congestion() -> Option<String> {
    let listed = |name: &str| {
        ipv4_sysctl(name)
            .split_whitespace()
            .any(|a| a == DEFAULT_TCP_CONGESTION)
    };
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    (listed("tcp_available_congestion_control")
        && (root || listed("tcp_allowed_congestion_control")))
    .then(|| DEFAULT_TCP_CONGESTION.to_string())
}

/// `net.ipv4.NAME` as the kernel shows it, trimmed; empty when it cannot be read.
pub fn ipv4_sysctl(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The host's default congestion control (`net.ipv4.tcp_congestion_control`), for logs.
pub fn host_tcp_congestion() -> String {
    let cc = ipv4_sysctl("tcp_congestion_control");
    if cc.is_empty() {
        "unknown".into()
    } else {
        cc
    }
}

/// The default admission budget per core: an eighth of the kernel's TCP memory-pressure
/// threshold (`net.ipv4.tcp_mem[0]`, in pages) shared among the serving cores, clamped to
/// 16 MiB..1 GiB. Bytes in socket buffers cost about twice their size in kernel memory (skb
/// overhead), and other sockets share the pool, so this keeps a busy seed well clear of the
/// threshold, past which the kernel prunes receive queues and drops packets.
pub fn admission_budget_bytes(cores: usize) -> u64 {
    let pages = ipv4_sysctl("tcp_mem")
        .split_whitespace()
        .next()
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0);
    let budget = if pages == 0 {
        64 << 20
    } else {
        pages * 4096 / 8 / cores.max(1) as u64
    };
    budget.clamp(16 << 20, 1 << 30)
}
