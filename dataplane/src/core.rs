//! One serving core: a pinned thread, its own io_uring, its own listeners, its own connections.
//!
//! ```text
//!            edge (eventfd + bounded queue)          Vortex listener   HTTP listener
//!                         │                          (SO_REUSEPORT)    (SO_REUSEPORT)
//!                         ▼                                 │ multishot accept │
//!   ┌──────────────── Core (one thread, one ring) ──────────┴──────────────────┴─────┐
//!   │ task table: TaskId → Arc<Task> + landed-piece bitmap (this core's own copy)    │
//!   │ slab of connections: each one op in flight (recv | send | poll) + zc notifs   │
//!   │ timer tick: idle / request / send-stall deadlines, drain progress              │
//!   └────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Invariants:
//! - A connection has at most one operation in flight (`Conn::op`), plus zero-copy
//!   notifications still owed by the kernel (`Conn::zc_reserved`). Its slot, buffers and the
//!   `Arc<Task>` of the piece it sends are released only when both are zero, so the kernel never
//!   reads memory we have let go.
//! - A response body waits for its turn (FIFO across all cores, `crate::order`, under the core's
//!   byte budget), then goes out in chunks of at most `send_chunk_bytes` (`sendfile_chunk_bytes`
//!   per sendfile); each chunk's completion goes through the completion queue before the next
//!   chunk is issued, so admitted connections take turns instead of one fast reader draining
//!   the core.
//! - Nothing on this path takes a lock or allocates per piece: buffers are per connection slot
//!   and pooled; the piece body is a slice of the task's read-only mapping.
//! - Untrusted bytes only reach the sans-IO decoders of `hawker-shared`, which bound every
//!   declared length before any buffer is touched.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hawker_shared::digest::DigestBuf;
use hawker_shared::http::{
    self, ContentRange, Method, ResolvedRange, ResponseHead, Route, MAX_REQUEST_HEAD_BYTES,
};
use hawker_shared::ids::TaskId;
use hawker_shared::vortex::{
    Decoded, ErrorCode, ErrorFrame, PieceMetadata, RequestDecoder, REQUEST_BUFFER_LEN,
};
use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::config::{SendMode, ServeConfig};
use crate::edge::{EdgeMsg, EdgeReceiver};
use crate::metrics::{add, inc, CoreMetrics, ErrorKind, Health, Proto, Shared, Strategy};
use crate::order::Tickets;
use crate::store::Task;

// ---- user_data layout: kind (8 bits) | generation (32 bits) | slot (24 bits) ----
const SLOT_BITS: u64 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const GEN_MASK: u64 = 0xFFFF_FFFF;
const KIND_SHIFT: u64 = 56;

const K_ACCEPT: u64 = 1; // slot field = listener index (Proto)
const K_EDGE: u64 = 2;
const K_TIMER: u64 = 3;
const K_CANCEL: u64 = 4;
const K_RECV: u64 = 5;
const K_SEND: u64 = 6;
const K_SEND_ZC: u64 = 7;
const K_POLL_OUT: u64 = 8;
const K_POLL_IN: u64 = 9;
const K_RECHECK: u64 = 10;

fn ud(kind: u64, gen: u32, slot: usize) -> u64 {
    (kind << KIND_SHIFT) | ((u64::from(gen) & GEN_MASK) << SLOT_BITS) | (slot as u64 & SLOT_MASK)
}

/// From the kernel's uapi (`io_uring.h`); the crate keeps its `sys` module private.
const IORING_SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
const IORING_NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;

/// An admitted response without progress for this long stops holding the admission budget, so a
/// reader that stopped reading cannot hold up the queue behind it for the whole send-stall timeout.
const ADMISSION_STALL: Duration = Duration::from_millis(500);

/// A piece's readahead advice stands this many [`Core::ticks`] (100 ms each) on one core.
const ADVISE_INTERVAL_TICKS: u32 = 10;

/// A core whose next body waits only for its turn across cores looks again after this long.
const ORDER_RECHECK: Duration = Duration::from_millis(1);

/// sendfile(2) calls one POLLOUT readiness may carry for one connection before it goes back
/// behind the others (1 MiB chunks: up to 4 MiB, one piece).
const SENDFILE_CHUNKS_PER_TURN: usize = 4;

/// The timer tick: deadlines are checked at this granularity.
const TICK: Duration = Duration::from_millis(100);

/// Bytes of each connection's receive buffer: the larger of a Vortex request buffer and the
/// largest HTTP request head we accept.
const RECV_BUFFER_BYTES: usize = if REQUEST_BUFFER_LEN > MAX_REQUEST_HEAD_BYTES {
    REQUEST_BUFFER_LEN
} else {
    MAX_REQUEST_HEAD_BYTES
};

/// Initial capacity of a connection's output buffer (response heads, Vortex metadata, error
/// frames, small bodies). /metrics may grow it; it is pooled with the slot.
const OUT_BUFFER_BYTES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for (more of) a request.
    Reading,
    /// Sending a response head and body.
    Writing,
    /// Shutting down; freed once no operation and no notification is outstanding.
    Closing,
}

struct Body {
    task: Arc<Task>,
    /// Next byte of the content to send, and one past the last.
    pos: u64,
    end: u64,
}

struct Conn {
    fd: OwnedFd,
    gen: u32,
    proto: Proto,
    /// The strategy body chunks use now. `auto` may move it from zerocopy to sendfile.
    strategy: Strategy,
    auto: bool,
    rbuf: Box<[u8]>,
    rlen: usize,
    decoder: RequestDecoder,
    out: Vec<u8>,
    out_pos: usize,
    body: Option<Body>,
    close_after: bool,
    phase: Phase,
    /// An operation (recv, send, poll) is in flight.
    op: bool,
    /// Zero-copy sends whose notification the kernel still owes us.
    zc_reserved: u32,
    deadline: Instant,
    /// A request has started arriving (slowloris clock runs).
    request_started: bool,
    /// Body bytes this response holds of the core's admission budget (0: not admitted).
    admitted_bytes: u64,
    /// Waiting in `Core::admission` for an active-body slot.
    queued: bool,
}

struct Slot {
    gen: u32,
    conn: Option<Conn>,
}

struct LocalTask {
    task: Arc<Task>,
    /// Pieces this core may serve; `None` once the task is complete.
    landed: Option<Box<[u64]>>,
    /// Per piece: the core tick (see [`Core::ticks`]) at which this core last asked the kernel
    /// to read the piece's pages ahead; 0 = never. One u32 per piece (a 10 GiB task in 4 MiB
    /// pieces: 10 KiB per core).
    advised_tick: Box<[u32]>,
}

impl LocalTask {
    fn new(task: Arc<Task>) -> LocalTask {
        let landed = if task.is_complete() {
            None
        } else {
            let count = task.layout().piece_count();
            let mut bits = vec![0u64; (count as usize).div_ceil(64)].into_boxed_slice();
            for n in 0..count {
                if task.has_piece(n) {
                    bits[(n / 64) as usize] |= 1 << (n % 64);
                }
            }
            Some(bits)
        };
        let advised_tick = vec![0u32; task.layout().piece_count() as usize].into_boxed_slice();
        LocalTask {
            task,
            landed,
            advised_tick,
        }
    }

    /// The byte span of `[offset, offset + len)` whose pieces this core has not advised within
    /// [`ADVISE_INTERVAL_TICKS`] of `now` (from the first such piece to the last), marking them
    /// advised. None when every piece was advised recently: hot content is not advised again
    /// on every request (`MADV_WILLNEED` walks the page cache page by page even when every page
    /// is resident; it was 11.7 % of the server's CPU at 800 connections).
    fn stale_advice(&mut self, offset: u64, len: u64, now: u32) -> Option<(u64, u64)> {
        if len == 0 {
            return None;
        }
        let end = offset + len;
        let mut span: Option<(u64, u64)> = None;
        for n in self.task.layout().pieces_overlapping(offset, end - 1) {
            let Some(t) = self.advised_tick.get_mut(n as usize) else {
                break;
            };
            if *t != 0 && now.wrapping_sub(*t) < ADVISE_INTERVAL_TICKS {
                continue;
            }
            *t = now;
            let piece = self
                .task
                .layout()
                .piece(n)
                .expect("overlapping piece exists");
            let (a, b) = (piece.offset.max(offset), piece.end().min(end));
            span = Some(span.map_or((a, b), |(s, _)| (s, b)));
        }
        span
    }

    fn has(&self, n: u32) -> bool {
        match &self.landed {
            None => true,
            Some(bits) => bits
                .get((n / 64) as usize)
                .is_some_and(|w| w & (1 << (n % 64)) != 0),
        }
    }

    fn has_all(&self, first: u32, last: u32) -> bool {
        self.landed.is_none() || (first..=last).all(|n| self.has(n))
    }
}

/// Everything a core needs to start; built by the server on the main thread.
pub struct CoreSetup {
    pub index: usize,
    pub cpu: usize,
    pub cfg: Arc<ServeConfig>,
    pub shared: Arc<Shared>,
    pub edge: EdgeReceiver,
    /// Listening sockets, indexed by `Proto`.
    pub listeners: [OwnedFd; 2],
    pub tasks: Vec<Arc<Task>>,
    /// The server-wide admission order, one for all cores.
    pub tickets: Arc<Tickets>,
}

/// The per-core event loop.
pub struct Core {
    index: usize,
    cfg: Arc<ServeConfig>,
    shared: Arc<Shared>,
    ring: IoUring,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: u32,
    rbuf_pool: Vec<Box<[u8]>>,
    out_pool: Vec<Vec<u8>>,
    listeners: [Option<OwnedFd>; 2],
    accept_armed: [bool; 2],
    tasks: HashMap<TaskId, LocalTask>,
    edge: EdgeReceiver,
    edge_buf: Box<u64>,
    timespec: Box<types::Timespec>,
    cqes: Vec<(u64, i32, u32)>,
    /// Entries that did not fit the submission queue this turn (see `push`).
    backlog: std::collections::VecDeque<squeue::Entry>,
    now: Instant,
    /// When this core started (the origin of [`Core::ticks`]).
    started: Instant,
    scratch: String,
    packet_id: u8,
    zc_inflight_bytes: u64,
    zc_charge_bytes: u64,
    drain_started: Option<Instant>,
    /// Body bytes of the responses being sent now (see `start_write`).
    active_body_bytes: u64,
    /// Responses waiting for an active-body slot, first come first served:
    /// (slot, generation, ticket).
    admission: std::collections::VecDeque<(u32, u32, u64)>,
    /// The server-wide admission order (shared with every core; see `crate::order`).
    tickets: Arc<Tickets>,
    /// A recheck of the admission queue is pending (`K_RECHECK`).
    recheck_armed: bool,
    recheck_timespec: Box<types::Timespec>,
    /// Per listener (by `Proto`): its accept is being cancelled; it closes when that completes.
    closing: [bool; 2],
    /// Past the drain grace: no new piece work is taken (Vortex listener closed, HTTP answers
    /// 503 to anything but /healthz and /metrics).
    stop_work: bool,
}

impl Core {
    /// Builds the ring and arms accepts, the edge read and the timer. Runs on the core's thread.
    pub fn new(setup: CoreSetup) -> Result<Core, String> {
        let ring = crate::sys::build_ring(setup.cfg.ring_entries)?;
        let max = setup.cfg.max_connections_per_core as usize;
        let chunk = u64::from(setup.cfg.send_chunk_bytes);
        let mut core = Core {
            index: setup.index,
            cfg: setup.cfg.clone(),
            shared: setup.shared,
            ring,
            slots: Vec::with_capacity(max.min(65536)),
            free: Vec::new(),
            live: 0,
            rbuf_pool: Vec::new(),
            out_pool: Vec::new(),
            listeners: setup.listeners.map(Some),
            accept_armed: [false; 2],
            tasks: HashMap::with_capacity(setup.tasks.len().max(64)),
            edge: setup.edge,
            edge_buf: Box::new(0),
            timespec: Box::new(types::Timespec::from(TICK)),
            cqes: Vec::with_capacity(setup.cfg.ring_entries as usize * 4),
            backlog: std::collections::VecDeque::new(),
            now: Instant::now(),
            started: Instant::now(),
            scratch: String::with_capacity(256),
            packet_id: 0,
            zc_inflight_bytes: 0,
            // What one SEND_ZC of a full chunk charges against RLIMIT_MEMLOCK: len/4096 + 2 pages.
            zc_charge_bytes: (chunk / 4096 + 2) * 4096,
            drain_started: None,
            active_body_bytes: 0,
            admission: std::collections::VecDeque::new(),
            tickets: setup.tickets,
            recheck_armed: false,
            recheck_timespec: Box::new(types::Timespec::from(ORDER_RECHECK)),
            closing: [false; 2],
            stop_work: false,
        };
        for t in setup.tasks {
            core.tasks.insert(*t.id(), LocalTask::new(t));
        }
        core.metrics().tasks.store(
            core.tasks.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        core.arm_accept(Proto::Vortex);
        core.arm_accept(Proto::Http);
        core.arm_edge();
        core.arm_timer();
        Ok(core)
    }

    fn metrics(&self) -> &CoreMetrics {
        &self.shared.cores[self.index]
    }

    /// Runs until the core has drained. Returns an error only for a broken ring.
    pub fn run(mut self) -> Result<(), String> {
        loop {
            self.flush_backlog();
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {} // CQ full: reap below
                Err(e) => return Err(format!("core {}: io_uring_enter failed: {e}", self.index)),
            }
            self.now = Instant::now();
            inc(&self.metrics().loop_turns);
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.clear();
            cqes.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(user_data, res, flags) in &cqes {
                self.dispatch(user_data, res, flags);
            }
            self.cqes = cqes;
            if self.finished() {
                return Ok(());
            }
        }
    }

    fn finished(&self) -> bool {
        self.drain_started.is_some() && self.listeners.iter().all(Option::is_none) && self.live == 0
    }

    fn push(&mut self, entry: squeue::Entry) {
        if !self.backlog.is_empty() || !self.try_push(&entry) {
            // Submission queue full (more new operations in one turn than it has entries, or
            // the kernel refused a submit while its completion queue overflowed): keep the
            // entry and submit it next turn. Bounded: one operation per connection at most,
            // plus accepts, the edge read and the timer.
            self.backlog.push_back(entry);
        }
    }

    fn try_push(&mut self, entry: &squeue::Entry) -> bool {
        // SAFETY: every entry we build points into memory that outlives its completion: the
        // connection's boxed buffers (released only when no op is in flight), a task mapping
        // held by an Arc in the connection, or boxed fields of `Core`.
        unsafe {
            if self.ring.submission().push(entry).is_ok() {
                return true;
            }
            let _ = self.ring.submit();
            self.ring.submission().push(entry).is_ok()
        }
    }

    /// Moves entries kept back by [`Core::push`] into the submission queue, oldest first.
    fn flush_backlog(&mut self) {
        while let Some(e) = self.backlog.pop_front() {
            if !self.try_push(&e) {
                self.backlog.push_front(e);
                return;
            }
        }
    }

    // ---------------------------------------------------------------- dispatch

    fn dispatch(&mut self, user_data: u64, res: i32, flags: u32) {
        let kind = user_data >> KIND_SHIFT;
        let slot = (user_data & SLOT_MASK) as usize;
        let gen = ((user_data >> SLOT_BITS) & GEN_MASK) as u32;
        match kind {
            K_ACCEPT => self.on_accept(
                if slot == 0 {
                    Proto::Vortex
                } else {
                    Proto::Http
                },
                res,
                flags,
            ),
            K_EDGE => self.on_edge(res),
            K_TIMER => self.on_timer(),
            K_RECHECK => {
                self.recheck_armed = false;
                self.admit_waiting();
            }
            K_CANCEL => {}
            _ => {
                let Some(s) = self.slots.get(slot) else {
                    return;
                };
                if s.gen != gen || s.conn.is_none() {
                    return; // a completion for a connection already gone (cannot happen: we wait)
                }
                if cqueue::notif(flags) {
                    self.on_zc_notif(slot, res);
                } else {
                    self.on_conn_op(kind, slot, res, flags);
                }
                self.maybe_free(slot);
            }
        }
    }

    fn conn(&mut self, slot: usize) -> &mut Conn {
        self.slots[slot]
            .conn
            .as_mut()
            .expect("completion routed to an empty slot")
    }

    fn on_conn_op(&mut self, kind: u64, slot: usize, res: i32, flags: u32) {
        let c = self.conn(slot);
        c.op = false;
        if kind == K_SEND_ZC && !cqueue::more(flags) {
            // The kernel will not send a notification for this one: release its reservation.
            c.zc_reserved -= 1;
            self.release_zc();
        }
        if self.conn(slot).phase == Phase::Closing {
            return;
        }
        match kind {
            K_RECV => self.on_recv(slot, res),
            K_POLL_IN => {
                if res < 0 {
                    self.fail(slot, ErrorKind::PeerGone);
                } else {
                    self.arm_recv(slot);
                }
            }
            K_SEND | K_SEND_ZC => self.on_sent(slot, res, kind == K_SEND_ZC),
            K_POLL_OUT => {
                if res < 0 {
                    self.fail(slot, ErrorKind::PeerGone);
                } else {
                    self.on_writable(slot);
                }
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------- accept

    fn arm_accept(&mut self, proto: Proto) {
        let Some(fd) = self.listeners[proto as usize]
            .as_ref()
            .map(|f| f.as_raw_fd())
        else {
            return;
        };
        let e = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(ud(K_ACCEPT, 0, proto as usize));
        self.push(e);
        self.accept_armed[proto as usize] = true;
    }

    fn on_accept(&mut self, proto: Proto, res: i32, flags: u32) {
        if !cqueue::more(flags) {
            self.accept_armed[proto as usize] = false;
            if self.closing[proto as usize] {
                // The cancel went through: the listener can go.
                self.listeners[proto as usize] = None;
            } else {
                self.arm_accept(proto);
            }
        }
        if res < 0 {
            let err = -res;
            if err != libc::ECANCELED && err != libc::EINTR {
                tracing::warn!(
                    core = self.index,
                    proto = proto.as_str(),
                    "accept failed: {}{}",
                    std::io::Error::from_raw_os_error(err),
                    if err == libc::EMFILE || err == libc::ENFILE {
                        " (raise LimitNOFILE / ulimit -n)"
                    } else {
                        ""
                    }
                );
            }
            return;
        }
        // SAFETY: a successful accept returns a new descriptor that we now own.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(res) };
        if self.live >= self.cfg.max_connections_per_core || self.closing[proto as usize] {
            inc(&self.metrics().errors[ErrorKind::ConnectionLimit as usize]);
            return; // dropping `fd` closes it
        }
        inc(&self.metrics().connections_accepted[proto as usize]);
        let sock = socket2::SockRef::from(&fd);
        let _ = sock.set_tcp_nodelay(true);
        if let Some(b) = self.cfg.socket_send_buffer_bytes {
            let _ = sock.set_send_buffer_size(b as usize);
        }
        let (strategy, auto) = self.initial_strategy(&sock);
        if strategy == Strategy::Sendfile {
            // sendfile(2) must never block the core; ring operations do not care.
            let _ = sock.set_nonblocking(true);
        }
        let slot = match self.free.pop() {
            Some(s) => s as usize,
            None => {
                self.slots.push(Slot { gen: 0, conn: None });
                self.slots.len() - 1
            }
        };
        let rbuf = self
            .rbuf_pool
            .pop()
            .unwrap_or_else(|| vec![0u8; RECV_BUFFER_BYTES].into_boxed_slice());
        let mut out = self
            .out_pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(OUT_BUFFER_BYTES));
        out.clear();
        let s = &mut self.slots[slot];
        s.gen = s.gen.wrapping_add(1);
        s.conn = Some(Conn {
            fd,
            gen: s.gen,
            proto,
            strategy,
            auto,
            rbuf,
            rlen: 0,
            decoder: RequestDecoder::default(),
            out,
            out_pos: 0,
            body: None,
            close_after: false,
            phase: Phase::Reading,
            op: false,
            zc_reserved: 0,
            deadline: self.now + self.cfg.idle_timeout,
            request_started: false,
            admitted_bytes: 0,
            queued: false,
        });
        self.live += 1;
        inc(&self.metrics().connections_open[proto as usize]);
        self.arm_recv(slot);
    }

    fn initial_strategy(&self, sock: &socket2::SockRef<'_>) -> (Strategy, bool) {
        match self.cfg.send_mode {
            SendMode::Auto => {
                let loopback = sock
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_socket())
                    .is_some_and(|a| a.ip().is_loopback());
                // Loopback and veth always copy a zero-copy send: sendfile passes page-cache
                // pages instead. Elsewhere start with zero copy and watch the notifications.
                if loopback || self.cfg.zerocopy_inflight_bytes_per_core < self.zc_charge_bytes {
                    (Strategy::Sendfile, true)
                } else {
                    (Strategy::Zerocopy, true)
                }
            }
            mode => (Strategy::from_mode(mode).expect("non-auto mode"), false),
        }
    }

    // ---------------------------------------------------------------- receive and parse

    fn arm_recv(&mut self, slot: usize) {
        let c = self.conn(slot);
        debug_assert!(!c.op);
        let free = &mut c.rbuf[c.rlen..];
        if free.is_empty() {
            // Only reachable for HTTP heads at the buffer size; parse reports 431 before this.
            self.fail(slot, ErrorKind::BadHttp);
            return;
        }
        let e = opcode::Recv::new(
            types::Fd(c.fd.as_raw_fd()),
            free.as_mut_ptr(),
            free.len() as u32,
        )
        .build()
        .user_data(ud(K_RECV, c.gen, slot));
        c.op = true;
        self.push(e);
    }

    fn on_recv(&mut self, slot: usize, res: i32) {
        if res == -libc::EAGAIN {
            let c = self.conn(slot);
            let e = opcode::PollAdd::new(types::Fd(c.fd.as_raw_fd()), libc::POLLIN as u32)
                .build()
                .user_data(ud(K_POLL_IN, c.gen, slot));
            c.op = true;
            self.push(e);
            return;
        }
        if res <= 0 {
            let c = self.conn(slot);
            // EOF between requests is a normal close; EOF or an error inside one is not.
            let kind = if c.rlen > 0 {
                Some(ErrorKind::PeerGone)
            } else {
                None
            };
            if res < 0 && kind.is_none() && -res != libc::ECONNRESET {
                tracing::debug!(
                    core = self.index,
                    "recv failed: {}",
                    std::io::Error::from_raw_os_error(-res)
                );
            }
            match kind {
                Some(k) => self.fail(slot, k),
                None => self.begin_close(slot),
            }
            return;
        }
        let now = self.now;
        let request_timeout = self.cfg.request_timeout;
        let c = self.conn(slot);
        c.rlen += res as usize;
        if !c.request_started {
            c.request_started = true;
            c.deadline = now + request_timeout;
        }
        self.process_input(slot);
    }

    /// Decodes what is buffered: answers one request, or waits for more bytes.
    fn process_input(&mut self, slot: usize) {
        loop {
            let proto = self.conn(slot).proto;
            let step = match proto {
                Proto::Vortex => self.step_vortex(slot),
                Proto::Http => self.step_http(slot),
            };
            match step {
                Step::Again => continue,
                Step::NeedMore => {
                    let idle = self.cfg.idle_timeout;
                    let now = self.now;
                    let c = self.conn(slot);
                    if c.rlen == 0 {
                        c.request_started = false;
                        c.deadline = now + idle;
                        if self.stop_work {
                            self.begin_close(slot);
                            return;
                        }
                    }
                    self.arm_recv(slot);
                    return;
                }
                Step::Respond => {
                    self.start_write(slot);
                    return;
                }
                Step::Close => {
                    self.begin_close(slot);
                    return;
                }
            }
        }
    }

    fn consume(c: &mut Conn, n: usize) {
        debug_assert!(n <= c.rlen);
        c.rbuf.copy_within(n..c.rlen, 0);
        c.rlen -= n;
    }

    fn step_vortex(&mut self, slot: usize) -> Step {
        let c = self.conn(slot);
        let (consumed, event) = match c.decoder.decode(&c.rbuf[..c.rlen]) {
            Ok(x) => x,
            Err(e) => {
                inc(&self.metrics().errors[ErrorKind::BadFrame as usize]);
                self.scratch.clear();
                let _ = write!(self.scratch, "{e}");
                self.packet_id = self.packet_id.wrapping_add(1);
                let pid = self.packet_id;
                let c = self.slots[slot].conn.as_mut().expect("live");
                c.out.clear();
                c.out_pos = 0;
                ErrorFrame {
                    code: e.code(),
                    message: &self.scratch,
                }
                .encode_packet(pid, &mut c.out);
                c.close_after = true;
                c.rlen = 0;
                return Step::Respond;
            }
        };
        Self::consume(c, consumed);
        match event {
            None if consumed == 0 => Step::NeedMore,
            None | Some(Decoded::Skipped) | Some(Decoded::PeerError { .. }) => Step::Again,
            Some(Decoded::Close) => Step::Close,
            Some(Decoded::Request { tag, request }) => {
                inc(&self.metrics().requests[Proto::Vortex as usize]);
                let response_tag = tag
                    .response_tag()
                    .unwrap_or(hawker_shared::vortex::Tag::PieceContent);
                self.answer_vortex(slot, response_tag, request.task_id, request.piece_number);
                Step::Respond
            }
        }
    }

    fn answer_vortex(
        &mut self,
        slot: usize,
        tag: hawker_shared::vortex::Tag,
        task_id: TaskId,
        number: u32,
    ) {
        self.packet_id = self.packet_id.wrapping_add(1);
        let pid = self.packet_id;
        let lookup = match self.tasks.get(&task_id) {
            None => Err((ErrorKind::NotFound, "task not found")),
            Some(lt) => match lt.task.layout().piece(number) {
                None => Err((ErrorKind::NotFound, "piece number out of range")),
                Some(_) if !lt.has(number) => {
                    Err((ErrorKind::NotAvailable, "piece not yet available"))
                }
                Some(range) => match lt.task.piece_crc(number) {
                    Some(crc) => Ok((lt.task.clone(), range, crc)),
                    None => Err((ErrorKind::NotAvailable, "piece not yet available")),
                },
            },
        };
        let c = self.slots[slot].conn.as_mut().expect("live");
        c.out.clear();
        c.out_pos = 0;
        match lookup {
            Err((kind, why)) => {
                inc(&self.shared.cores[self.index].errors[kind as usize]);
                self.scratch.clear();
                let _ = write!(self.scratch, "{why}: task {task_id} piece {number}");
                ErrorFrame {
                    code: ErrorCode::NotFound,
                    message: &self.scratch,
                }
                .encode_packet(pid, &mut c.out);
            }
            Ok((task, range, crc)) => {
                let digest = DigestBuf::new(crc);
                let created = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                PieceMetadata {
                    number,
                    offset: range.offset,
                    length: range.length,
                    digest: digest.as_str(),
                    parent_id: "",
                    traffic_type: 1,
                    cost_secs: 0,
                    created_at_secs: created,
                }
                .encode_packet(tag, pid, &mut c.out);
                c.body = Some(Body {
                    task,
                    pos: range.offset,
                    end: range.offset + range.length,
                });
                self.advise(&task_id, range.offset, range.length);
            }
        }
    }

    /// Core time in ticks of 100 ms since the core started, never 0.
    fn ticks(&self) -> u32 {
        (self.now.duration_since(self.started).as_millis() / 100) as u32 + 1
    }

    /// Asks the kernel to read a response's pages ahead of the send, at most once per piece per
    /// [`ADVISE_INTERVAL_TICKS`] on this core.
    fn advise(&mut self, id: &TaskId, offset: u64, len: u64) {
        let now = self.ticks();
        if let Some(lt) = self.tasks.get_mut(id) {
            if let Some((start, end)) = lt.stale_advice(offset, len, now) {
                advise_willneed(&lt.task, start, end - start);
            }
        }
    }

    fn step_http(&mut self, slot: usize) -> Step {
        let max_head = self.cfg.max_request_head_bytes;
        let c = self.conn(slot);
        let parsed = http::parse_request(&c.rbuf[..c.rlen]);
        match parsed {
            Ok(None) => {
                if c.rlen >= max_head.min(c.rbuf.len()) {
                    self.http_error(
                        slot,
                        431,
                        "Request Header Fields Too Large",
                        ErrorKind::BadHttp,
                    );
                    return Step::Respond;
                }
                Step::NeedMore
            }
            Err(e) => {
                // We cannot tell where a request we could not parse ends: answer and close.
                let kind = if e.status() == 404 {
                    ErrorKind::NotFound
                } else {
                    ErrorKind::BadHttp
                };
                inc(&self.shared.cores[self.index].errors[kind as usize]);
                let c = self.slots[slot].conn.as_mut().expect("live");
                c.out.clear();
                c.out_pos = 0;
                e.encode_response(&mut c.out);
                c.close_after = true;
                c.rlen = 0;
                Step::Respond
            }
            Ok(Some(req)) => {
                Self::consume(c, req.head_len);
                c.close_after = !req.keep_alive;
                inc(&self.metrics().requests[Proto::Http as usize]);
                self.answer_http(slot, req);
                Step::Respond
            }
        }
    }

    fn http_error(&mut self, slot: usize, status: u16, reason: &str, kind: ErrorKind) {
        inc(&self.metrics().errors[kind as usize]);
        // Only a head we could not take in full leaves the stream in an unknown state.
        let close = status == 431;
        let c = self.conn(slot);
        if close {
            c.close_after = true;
            c.rlen = 0;
        }
        let keep_alive = !c.close_after;
        c.out.clear();
        c.out_pos = 0;
        ResponseHead {
            status,
            content_length: reason.len() as u64 + 1,
            content_type: "text/plain",
            content_range: None,
            keep_alive,
            extra: &[],
        }
        .encode(&mut c.out);
        c.out.extend_from_slice(reason.as_bytes());
        c.out.push(b'\n');
    }

    fn answer_http(&mut self, slot: usize, req: http::Request) {
        let draining = self.drain_started.is_some();
        if draining {
            self.conn(slot).close_after = true;
        }
        let head_only = req.method == Method::Head;
        if self.stop_work && matches!(req.route, Route::Piece { .. } | Route::Task { .. }) {
            return self.http_error(slot, 503, "draining", ErrorKind::NotAvailable);
        }
        match req.route {
            Route::Healthz => {
                let h = self.shared.health();
                let status = if h == Health::Serving { 200 } else { 503 };
                self.small_response(slot, status, "text/plain", h.as_str().as_bytes(), head_only);
            }
            Route::Metrics => {
                self.scratch.clear();
                let mut text = std::mem::take(&mut self.scratch);
                self.shared.render(&mut text);
                self.small_response(
                    slot,
                    200,
                    "text/plain; version=0.0.4",
                    text.as_bytes(),
                    head_only,
                );
                self.scratch = text;
            }
            Route::Piece { task, number } => {
                let found = self.tasks.get(&task).map(|lt| {
                    let piece = lt.task.layout().piece(number);
                    let crc = piece
                        .filter(|_| lt.has(number))
                        .and_then(|_| lt.task.piece_crc(number));
                    (lt.task.clone(), piece, crc)
                });
                match found {
                    None => self.http_error(slot, 404, "task not found", ErrorKind::NotFound),
                    Some((_, None, _)) => {
                        self.http_error(slot, 404, "piece number out of range", ErrorKind::NotFound)
                    }
                    Some((_, Some(_), None)) => self.http_error(
                        slot,
                        404,
                        "piece not yet available",
                        ErrorKind::NotAvailable,
                    ),
                    Some((t, Some(range), Some(crc))) => {
                        let digest = DigestBuf::new(crc);
                        let mut off = itoa::Buffer::new();
                        let extra = [
                            ("X-Hawker-Piece-Digest", digest.as_str()),
                            ("X-Hawker-Piece-Offset", off.format(range.offset)),
                        ];
                        let resolved = http::resolve_range(req.range, range.length);
                        self.answer_content(
                            slot,
                            t,
                            range.offset,
                            range.length,
                            resolved,
                            &extra,
                            head_only,
                        );
                    }
                }
            }
            Route::Task { task } => {
                let Some(lt) = self.tasks.get(&task) else {
                    return self.http_error(slot, 404, "task not found", ErrorKind::NotFound);
                };
                let layout = lt.task.layout();
                let resolved = http::resolve_range(req.range, layout.content_length);
                let span = match resolved {
                    ResolvedRange::Full if layout.content_length > 0 => {
                        Some((0, layout.content_length - 1))
                    }
                    ResolvedRange::Partial {
                        start,
                        end_inclusive,
                    } => Some((start, end_inclusive)),
                    _ => None,
                };
                if let Some((first, last)) = span {
                    let pieces = layout.pieces_overlapping(first, last);
                    if !lt.has_all(*pieces.start(), *pieces.end()) {
                        return self.http_error(
                            slot,
                            503,
                            "range not yet available",
                            ErrorKind::NotAvailable,
                        );
                    }
                }
                let t = lt.task.clone();
                self.answer_content(slot, t, 0, layout.content_length, resolved, &[], head_only);
            }
        }
    }

    /// Answers for the `total` bytes of `task` that start at content offset `base` (a piece or
    /// the whole task), as `resolved` from the request's Range: 200, 206 or 416. The body, if
    /// any, is a slice of the task's mapping.
    #[allow(clippy::too_many_arguments)]
    fn answer_content(
        &mut self,
        slot: usize,
        task: Arc<Task>,
        base: u64,
        total: u64,
        resolved: ResolvedRange,
        extra: &[(&str, &str)],
        head_only: bool,
    ) {
        let (status, start, len) = match resolved {
            ResolvedRange::Full => (200, 0, total),
            ResolvedRange::Partial {
                start,
                end_inclusive,
            } => (206, start, end_inclusive - start + 1),
            ResolvedRange::Unsatisfiable => (416, 0, 0),
        };
        if status == 416 {
            inc(&self.metrics().errors[ErrorKind::RangeNotSatisfiable as usize]);
        }
        let c = self.conn(slot);
        c.out.clear();
        c.out_pos = 0;
        ResponseHead {
            status,
            content_length: len,
            content_type: if status == 416 {
                "text/plain"
            } else {
                "application/octet-stream"
            },
            content_range: match status {
                206 => Some(ContentRange::Bytes {
                    start,
                    end_inclusive: start + len - 1,
                    total,
                }),
                416 => Some(ContentRange::Unsatisfied { total }),
                _ => None,
            },
            keep_alive: !c.close_after,
            extra: if status == 416 { &[] } else { extra },
        }
        .encode(&mut c.out);
        if !head_only && len > 0 {
            let id = *task.id();
            c.body = Some(Body {
                task,
                pos: base + start,
                end: base + start + len,
            });
            self.advise(&id, base + start, len);
        }
    }

    fn small_response(
        &mut self,
        slot: usize,
        status: u16,
        content_type: &str,
        body: &[u8],
        head_only: bool,
    ) {
        let c = self.slots[slot].conn.as_mut().expect("live");
        c.out.clear();
        c.out_pos = 0;
        ResponseHead {
            status,
            content_length: body.len() as u64,
            content_type,
            content_range: None,
            keep_alive: !c.close_after,
            extra: &[],
        }
        .encode(&mut c.out);
        if !head_only {
            c.out.extend_from_slice(body);
        }
    }

    // ---------------------------------------------------------------- send

    /// Starts sending a response. A response with a body is admitted when the core's budget of
    /// body bytes in flight has room (or nothing else is in flight); otherwise it waits, first
    /// come first served. The budget keeps what the core queues in socket buffers under the
    /// kernel's TCP memory-pressure threshold (past it the kernel prunes receive queues and drops
    /// packets, and connections stall for retransmission timeouts), and FIFO turns make every
    /// request wait about its fair share instead of a lucky few going first.
    fn start_write(&mut self, slot: usize) {
        let now = self.now;
        let stall = self.cfg.send_stall_timeout;
        let queue_timeout = self.cfg.admission_timeout;
        let c = self.slots[slot].conn.as_mut().expect("live");
        c.phase = Phase::Writing;
        if c.body.is_none() {
            c.deadline = now + stall;
            return self.continue_write(slot);
        }
        let ticket = self.tickets.draw();
        c.queued = true;
        c.deadline = now + queue_timeout;
        let gen = c.gen;
        self.admission.push_back((slot as u32, gen, ticket));
        self.admit_waiting();
    }

    /// A body in flight finished or its connection went: admit the oldest waiters that fit.
    fn release_active(&mut self, slot: usize) {
        let c = self.conn(slot);
        let freed = std::mem::take(&mut c.admitted_bytes);
        if freed == 0 {
            return;
        }
        self.active_body_bytes -= freed;
        self.admit_waiting();
    }

    /// Admits waiting bodies, oldest first, while they fit the budget (a body is always admitted
    /// when nothing else is in flight) and their ticket is within the lead of the oldest waiting
    /// on any core (`crate::order`). Blocked by order alone, it looks again in
    /// [`ORDER_RECHECK`]: the cores behind move on by themselves.
    fn admit_waiting(&mut self) {
        let budget = self.cfg.max_active_body_bytes_per_core;
        let mut blocked_by_order = false;
        while let Some(&(next, gen, ticket)) = self.admission.front() {
            let next = next as usize;
            let len = match self.slots[next].conn.as_ref() {
                Some(c) if c.gen == gen && c.queued && c.phase == Phase::Writing => {
                    c.body.as_ref().map_or(1, |b| (b.end - b.pos).max(1))
                }
                _ => {
                    self.admission.pop_front(); // gone or closed while waiting
                    continue;
                }
            };
            let active = self.active_body_bytes;
            if budget > 0 && active > 0 && active + len > budget {
                break;
            }
            if !self.tickets.may_admit(ticket) {
                blocked_by_order = true;
                break;
            }
            self.admission.pop_front();
            let deadline = self.now + self.cfg.send_stall_timeout;
            let c = self.conn(next);
            c.queued = false;
            c.admitted_bytes = len;
            c.deadline = deadline;
            self.active_body_bytes += len;
            self.continue_write(next);
            self.maybe_free(next);
        }
        self.publish_head();
        if blocked_by_order && !self.recheck_armed {
            let e = opcode::Timeout::new(&*self.recheck_timespec as *const types::Timespec)
                .build()
                .user_data(ud(K_RECHECK, 0, 0));
            self.recheck_armed = true;
            self.push(e);
        }
    }

    /// Tells the other cores which ticket waits longest here.
    fn publish_head(&self) {
        self.tickets
            .publish(self.index, self.admission.front().map(|&(_, _, t)| t));
    }

    fn continue_write(&mut self, slot: usize) {
        let chunk_max = u64::from(self.cfg.send_chunk_bytes);
        let c = self.slots[slot].conn.as_mut().expect("live");
        let fd = c.fd.as_raw_fd();
        if c.out_pos < c.out.len() {
            let rest = &c.out[c.out_pos..];
            let more = if c.body.is_some() { libc::MSG_MORE } else { 0 };
            let e = opcode::Send::new(types::Fd(fd), rest.as_ptr(), rest.len() as u32)
                .flags(libc::MSG_NOSIGNAL | more)
                .build()
                .user_data(ud(K_SEND, c.gen, slot));
            c.op = true;
            self.push(e);
            return;
        }
        let Some(body) = c.body.as_ref() else {
            return self.finish_response(slot);
        };
        if body.pos >= body.end {
            if c.zc_reserved > 0 {
                return; // the piece is held until its notifications arrive (on_zc_notif resumes)
            }
            let proto = c.proto;
            let m = &self.shared.cores[self.index];
            inc(&m.pieces_served[proto as usize]);
            return self.finish_response(slot);
        }
        let len = (body.end - body.pos).min(chunk_max);
        match c.strategy {
            Strategy::Sendfile => {
                let e = opcode::PollAdd::new(types::Fd(fd), libc::POLLOUT as u32)
                    .build()
                    .user_data(ud(K_POLL_OUT, c.gen, slot));
                c.op = true;
                self.push(e);
            }
            Strategy::Zerocopy
                if self.zc_inflight_bytes + self.zc_charge_bytes
                    <= self.cfg.zerocopy_inflight_bytes_per_core =>
            {
                let ptr = body.task.bytes()[body.pos as usize..].as_ptr();
                let e = opcode::SendZc::new(types::Fd(fd), ptr, len as u32)
                    .flags(libc::MSG_NOSIGNAL)
                    .zc_flags(IORING_SEND_ZC_REPORT_USAGE)
                    .build()
                    .user_data(ud(K_SEND_ZC, c.gen, slot));
                c.op = true;
                c.zc_reserved += 1;
                self.zc_inflight_bytes += self.zc_charge_bytes;
                let inflight = self.zc_inflight_bytes;
                self.push(e);
                self.metrics()
                    .zerocopy_inflight_bytes
                    .store(inflight, std::sync::atomic::Ordering::Relaxed);
            }
            strategy => {
                if strategy == Strategy::Zerocopy {
                    inc(&self.shared.cores[self.index].zerocopy_budget_fallback);
                }
                let ptr = body.task.bytes()[body.pos as usize..].as_ptr();
                let e = opcode::Send::new(types::Fd(fd), ptr, len as u32)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(ud(K_SEND, c.gen, slot));
                c.op = true;
                self.push(e);
            }
        }
    }

    fn on_sent(&mut self, slot: usize, res: i32, zerocopy: bool) {
        if res == -libc::EAGAIN {
            let c = self.conn(slot);
            let e = opcode::PollAdd::new(types::Fd(c.fd.as_raw_fd()), libc::POLLOUT as u32)
                .build()
                .user_data(ud(K_POLL_OUT, c.gen, slot));
            c.op = true;
            return self.push(e);
        }
        if res <= 0 {
            return self.fail(slot, ErrorKind::PeerGone);
        }
        let n = res as u64;
        let deadline = self.now + self.cfg.send_stall_timeout;
        let m = &self.shared.cores[self.index];
        let c = self.slots[slot].conn.as_mut().expect("live");
        c.deadline = deadline;
        if c.out_pos < c.out.len() {
            c.out_pos += n as usize;
        } else if let Some(body) = c.body.as_mut() {
            body.pos += n;
            let s = if zerocopy {
                Strategy::Zerocopy
            } else {
                Strategy::Copy
            };
            inc(&m.send_ops[s as usize]);
            add(&m.send_bytes[s as usize], n);
            add(&m.body_bytes[c.proto as usize], n);
        }
        self.continue_write(slot);
    }

    fn on_writable(&mut self, slot: usize) {
        let chunk_max = u64::from(self.cfg.sendfile_chunk_bytes);
        let m = &self.shared.cores[self.index];
        let c = self.slots[slot].conn.as_mut().expect("live");
        if c.out_pos < c.out.len() || c.strategy != Strategy::Sendfile {
            // Readiness after EAGAIN from a ring send: just retry it.
            return self.continue_write(slot);
        }
        let Some(body) = c.body.as_mut() else {
            return self.continue_write(slot);
        };
        // Up to SENDFILE_CHUNKS_PER_TURN chunks while the socket takes whole chunks (what one
        // readiness event is worth), then back through the completion queue behind the others.
        let mut sent = 0u64;
        for _ in 0..SENDFILE_CHUNKS_PER_TURN {
            let len = (body.end - body.pos).min(chunk_max) as usize;
            if len == 0 {
                break;
            }
            let mut off = body.pos as libc::off_t;
            // SAFETY: both descriptors are open (the socket by `c.fd`, the file by the
            // Arc<Task>), the offset pointer is a local; the socket is nonblocking so this never
            // waits.
            let n = unsafe { libc::sendfile(c.fd.as_raw_fd(), body.task.fd(), &mut off, len) };
            if n < 0 {
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EAGAIN) {
                    break; // full: continue_write re-arms POLLOUT
                }
                return self.fail(slot, ErrorKind::PeerGone);
            }
            if n == 0 {
                // The file is shorter than its layout says: the store broke an invariant.
                tracing::error!(core = self.index, task = %body.task.id(), "sendfile hit end of file at {}", body.pos);
                return self.fail(slot, ErrorKind::Internal);
            }
            body.pos += n as u64;
            sent += n as u64;
            inc(&m.send_ops[Strategy::Sendfile as usize]);
            if (n as usize) < len {
                break; // the socket took part of it: it is full now
            }
        }
        if sent > 0 {
            c.deadline = self.now + self.cfg.send_stall_timeout;
            add(&m.send_bytes[Strategy::Sendfile as usize], sent);
            add(&m.body_bytes[c.proto as usize], sent);
        }
        self.continue_write(slot);
    }

    fn on_zc_notif(&mut self, slot: usize, res: i32) {
        let copied = (res as u32) & IORING_NOTIF_USAGE_ZC_COPIED != 0;
        self.release_zc();
        let c = self.conn(slot);
        c.zc_reserved -= 1;
        if copied {
            inc(&self.shared.cores[self.index].zerocopy_copied);
            let c = self.conn(slot);
            if c.auto && c.strategy == Strategy::Zerocopy {
                // The kernel copied anyway (loopback, veth, a NIC without SG): sendfile is
                // cheaper than paying for both the copy and the notification.
                c.strategy = Strategy::Sendfile;
                let _ = socket2::SockRef::from(&c.fd).set_nonblocking(true);
            }
        }
        let c = self.conn(slot);
        if c.phase == Phase::Writing && !c.op && c.zc_reserved == 0 {
            self.continue_write(slot);
        }
    }

    fn release_zc(&mut self) {
        self.zc_inflight_bytes = self.zc_inflight_bytes.saturating_sub(self.zc_charge_bytes);
        let v = self.zc_inflight_bytes;
        self.metrics()
            .zerocopy_inflight_bytes
            .store(v, std::sync::atomic::Ordering::Relaxed);
    }

    fn finish_response(&mut self, slot: usize) {
        self.release_active(slot);
        let idle = self.cfg.idle_timeout;
        let now = self.now;
        let c = self.conn(slot);
        c.body = None;
        c.out.clear();
        c.out_pos = 0;
        if c.close_after {
            return self.begin_close(slot);
        }
        c.phase = Phase::Reading;
        c.request_started = c.rlen > 0;
        c.deadline = now + idle;
        self.process_input(slot);
    }

    // ---------------------------------------------------------------- close

    fn fail(&mut self, slot: usize, kind: ErrorKind) {
        inc(&self.metrics().errors[kind as usize]);
        self.begin_close(slot);
    }

    fn begin_close(&mut self, slot: usize) {
        let c = self.conn(slot);
        if c.phase == Phase::Closing {
            return;
        }
        c.phase = Phase::Closing;
        if c.op {
            // Wake the operation in flight; its completion frees the slot.
            // SAFETY: shutdown on a descriptor we own.
            unsafe { libc::shutdown(c.fd.as_raw_fd(), libc::SHUT_RDWR) };
        }
    }

    fn maybe_free(&mut self, slot: usize) {
        let Some(c) = self.slots[slot].conn.as_ref() else {
            return;
        };
        if c.phase != Phase::Closing || c.op || c.zc_reserved > 0 {
            return;
        }
        self.release_active(slot);
        let s = &mut self.slots[slot];
        let c = s.conn.take().expect("checked");
        let proto = c.proto;
        let was_queued = c.queued;
        self.rbuf_pool.push(c.rbuf);
        let mut out = c.out;
        if out.capacity() > 64 * 1024 {
            out = Vec::with_capacity(OUT_BUFFER_BYTES); // do not pool a grown /metrics buffer
        }
        self.out_pool.push(out);
        drop(c.fd); // closes the socket
        drop(c.body);
        self.free.push(slot as u32);
        self.live -= 1;
        self.metrics().connections_open[proto as usize]
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if was_queued {
            // Its entry may head the queue, holding other cores back: clear it now.
            self.admit_waiting();
        }
    }

    // ---------------------------------------------------------------- edge

    fn arm_edge(&mut self) {
        let ptr = (&mut *self.edge_buf as *mut u64).cast::<u8>();
        let e = opcode::Read::new(types::Fd(self.edge.eventfd()), ptr, 8)
            .build()
            .user_data(ud(K_EDGE, 0, 0));
        self.push(e);
    }

    fn on_edge(&mut self, res: i32) {
        loop {
            match self.edge.try_recv() {
                Ok(Some(msg)) => self.apply(msg),
                Ok(None) => break,
                Err(()) => return, // every sender is gone: no more updates, do not re-arm
            }
        }
        if res >= 0 || res == -libc::EAGAIN || res == -libc::EINTR {
            self.arm_edge();
        }
    }

    fn apply(&mut self, msg: EdgeMsg) {
        match msg {
            EdgeMsg::TaskAdded(t) => {
                self.tasks.insert(*t.id(), LocalTask::new(t));
            }
            EdgeMsg::PieceLanded { task, number } => {
                if let Some(LocalTask {
                    landed: Some(bits), ..
                }) = self.tasks.get_mut(&task)
                {
                    if let Some(w) = bits.get_mut((number / 64) as usize) {
                        *w |= 1 << (number % 64);
                    }
                }
            }
            EdgeMsg::TaskCompleted { task } => {
                if let Some(lt) = self.tasks.get_mut(&task) {
                    lt.landed = None;
                }
            }
            EdgeMsg::TaskRemoved { task } => {
                self.tasks.remove(&task);
            }
            EdgeMsg::Drain => {
                if self.drain_started.is_none() {
                    self.drain_started = Some(self.now);
                    self.drain_tick();
                }
            }
        }
        let n = self.tasks.len() as u64;
        self.metrics()
            .tasks
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    // ---------------------------------------------------------------- timer

    fn arm_timer(&mut self) {
        let e = opcode::Timeout::new(&*self.timespec as *const types::Timespec)
            .build()
            .user_data(ud(K_TIMER, 0, 0));
        self.push(e);
    }

    fn on_timer(&mut self) {
        let now = self.now;
        let stall = self.cfg.send_stall_timeout;
        for slot in 0..self.slots.len() {
            let Some(c) = self.slots[slot].conn.as_ref() else {
                continue;
            };
            // An admitted response that made no progress for ADMISSION_STALL (its reader
            // stopped reading) gives its share of the budget to the next in line; it goes on
            // sending, unadmitted, until it finishes or the send-stall timeout cuts it.
            if c.admitted_bytes > 0
                && c.phase == Phase::Writing
                && now + stall >= c.deadline + ADMISSION_STALL
            {
                self.release_active(slot);
            }
            let Some(c) = self.slots[slot].conn.as_ref() else {
                continue;
            };
            if c.phase == Phase::Closing || now < c.deadline {
                continue;
            }
            match (c.phase, c.rlen > 0 || c.request_started) {
                (Phase::Reading, false) => {
                    inc(&self.metrics().idle_closed);
                    self.begin_close(slot);
                }
                (Phase::Reading, true) => self.fail(slot, ErrorKind::RequestTimeout),
                _ => self.fail(slot, ErrorKind::SendStall),
            }
            self.maybe_free(slot);
        }
        self.drain_tick();
        if !self.finished() {
            self.arm_timer();
        }
    }

    /// Drain progress. After the grace period: the Vortex listener closes, idle connections
    /// close, and HTTP takes no new piece work but keeps answering /healthz (503 draining) so a
    /// load balancer's checks see the drain. Once no response body is in flight, or after the
    /// drain timeout, the HTTP listener closes and every connection is cut.
    fn drain_tick(&mut self) {
        let Some(started) = self.drain_started else {
            return;
        };
        let now = self.now;
        if !self.stop_work && now >= started + self.cfg.drain_grace {
            self.stop_work = true;
            self.close_listener(Proto::Vortex);
            for slot in 0..self.slots.len() {
                let Some(c) = self.slots[slot].conn.as_mut() else {
                    continue;
                };
                match c.phase {
                    Phase::Reading if c.rlen == 0 => self.begin_close(slot),
                    Phase::Writing => c.close_after = true,
                    _ => {}
                }
            }
        }
        if !self.stop_work {
            return;
        }
        let in_flight = self.slots.iter().any(|s| {
            s.conn
                .as_ref()
                .is_some_and(|c| c.phase == Phase::Writing && c.body.is_some())
        });
        let timed_out = now >= started + self.cfg.drain_grace + self.cfg.drain_timeout;
        if !in_flight || timed_out {
            self.close_listener(Proto::Http);
            for slot in 0..self.slots.len() {
                if self.slots[slot].conn.is_some() {
                    if timed_out {
                        inc(&self.metrics().errors[ErrorKind::SendStall as usize]);
                    }
                    self.begin_close(slot);
                    self.maybe_free(slot);
                }
            }
        }
    }

    fn close_listener(&mut self, proto: Proto) {
        let i = proto as usize;
        if self.closing[i] {
            return;
        }
        self.closing[i] = true;
        if self.accept_armed[i] {
            let e = opcode::AsyncCancel::new(ud(K_ACCEPT, 0, i))
                .build()
                .user_data(ud(K_CANCEL, 0, 0));
            self.push(e);
        } else {
            self.listeners[i] = None;
        }
    }
}

enum Step {
    /// Something was consumed without an answer (a skipped frame): decode again.
    Again,
    NeedMore,
    Respond,
    Close,
}

/// Asks the kernel to start reading a piece's pages now, so the send does not fault on a cold
/// page inside this core's thread. Advisory: errors are ignored.
fn advise_willneed(task: &Task, offset: u64, len: u64) {
    let bytes = task.bytes();
    if len == 0 || bytes.is_empty() {
        return;
    }
    let page = 4096usize;
    let start = (offset as usize) & !(page - 1);
    // Read ahead at most this much per response; the kernel's own readahead takes it from there.
    const ADVISE_MAX_BYTES: u64 = 64 << 20;
    let end = ((offset + len.min(ADVISE_MAX_BYTES)) as usize).min(bytes.len());
    // SAFETY: [start, end) lies within the mapping (start rounded down to its page, which is
    // inside the mapping because the mapping starts page-aligned).
    unsafe {
        libc::madvise(
            bytes.as_ptr().add(start) as *mut libc::c_void,
            end - start,
            libc::MADV_WILLNEED,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ten_mib_task() -> (tempfile::TempDir, Arc<Task>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("content");
        std::fs::write(&file, vec![7u8; 10 << 20]).unwrap();
        let data = dir.path().join("data");
        crate::store::import_file(&data, &file, None).unwrap();
        let store = crate::store::Store::open(&data, crate::store::Verify::Quick).unwrap();
        let task = store.tasks().next().unwrap().clone();
        assert_eq!(task.layout().piece_count(), 3); // 4 MiB + 4 MiB + 2 MiB
        (dir, task)
    }

    #[test]
    fn readahead_advice_is_given_once_per_piece_per_interval() {
        let (_dir, task) = ten_mib_task();
        let mut lt = LocalTask::new(task);
        const MIB: u64 = 1 << 20;
        // A range inside piece 1 only: exactly that range.
        assert_eq!(lt.stale_advice(5 * MIB, MIB, 1), Some((5 * MIB, 6 * MIB)));
        // The whole content: pieces 0 and 2 are stale, 1 is not; the span covers 0..=2.
        assert_eq!(lt.stale_advice(0, 10 * MIB, 2), Some((0, 10 * MIB)));
        // Within the interval nothing is advised again, whatever the range.
        assert_eq!(lt.stale_advice(0, 10 * MIB, ADVISE_INTERVAL_TICKS), None);
        assert_eq!(lt.stale_advice(9 * MIB, 1, 5), None);
        // After it, again; piece 1 (advised at tick 1) is stale before the others.
        assert_eq!(
            lt.stale_advice(0, 10 * MIB, 1 + ADVISE_INTERVAL_TICKS),
            Some((4 * MIB, 8 * MIB))
        );
        assert_eq!(
            lt.stale_advice(0, 10 * MIB, 2 + ADVISE_INTERVAL_TICKS),
            Some((0, 10 * MIB))
        );
        assert_eq!(lt.stale_advice(0, 0, 1000), None);
    }

    #[test]
    fn user_data_round_trips() {
        let u = ud(K_SEND_ZC, 0xDEAD_BEEF, 0xAB_CDEF);
        assert_eq!(u >> KIND_SHIFT, K_SEND_ZC);
        assert_eq!(((u >> SLOT_BITS) & GEN_MASK) as u32, 0xDEAD_BEEF);
        assert_eq!((u & SLOT_MASK) as usize, 0xAB_CDEF);
    }
}
