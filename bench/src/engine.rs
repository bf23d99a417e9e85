//! The load engine: `--threads` worker threads, each running a current-thread tokio runtime
//! with its share of the `--concurrency` connections (connection i lives on thread i % T).
//!
//! A run has three phases:
//! 1. every connection opens its TCP connection (failures are counted as `connect` errors and
//!    retried at the connection's first request);
//! 2. all threads meet at a barrier, the main thread takes `t0` (and the observer samples CPU
//!    counters), the measured run starts;
//! 3. each connection loops: take a slot from its [`Pacer`], claim a ticket from the shared
//!    [`Stop`], pick a piece, send one request, read and verify the whole response, record.
//!    One request in flight per connection; the connection is kept open unless the response
//!    left it out of step (then it is closed and re-opened for the next request).
//!
//! After the deadline no request starts; requests in flight finish (each is bounded by
//! `--timeout`) and count. The run's elapsed time ends at the last completion, or at the
//! deadline if that is later and the run was stopped by it.
//!
//! The main thread wakes once a second, empties every worker's interval recording and hands
//! the merged interval to the [`Observer`] (progress line, time series).
//!
//! Bounds: [`MAX_CONCURRENCY`] connections, [`MAX_THREADS`] threads, one
//! [`RECV_BUFFER_BYTES`](crate::client::RECV_BUFFER_BYTES) buffer per connection (10,000
//! connections: 10 GiB, so large concurrencies want fewer, larger machines or `--threads`
//! spread over hosts), a connect timeout and a per-request timeout, [`CONNECT_BACKOFF_MS`]
//! between a failed connect and the next attempt on that connection.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::client::http::{self, HttpTarget};
use crate::client::{vortex, ConnBuf, FetchError, Fetched};
use crate::pacing::{Pacer, Stop};
use crate::stats::{ErrorKind, Recorded, Totals};
use crate::workload::{PieceRef, Workload};

/// The most connections a run may open.
pub const MAX_CONCURRENCY: usize = 10_000;
/// The most worker threads a run may start.
pub const MAX_THREADS: usize = 1024;
/// The pause after a failed connect before the connection tries again, in milliseconds.
pub const CONNECT_BACKOFF_MS: u64 = 100;
/// The interval between observer ticks, in milliseconds.
pub const TICK_MS: u64 = 1000;

/// What to load.
#[derive(Debug, Clone)]
pub enum Target {
    /// A Vortex (Dragonfly TCP piece protocol) server.
    Vortex {
        /// Its address.
        addr: SocketAddr,
    },
    /// An HTTP/1.1 server.
    Http {
        /// Its address.
        addr: SocketAddr,
        /// URLs and style.
        http: HttpTarget,
    },
}

impl Target {
    fn addr(&self) -> SocketAddr {
        match self {
            Target::Vortex { addr } | Target::Http { addr, .. } => *addr,
        }
    }
}

/// How to load it.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The server.
    pub target: Target,
    /// Connections, each with one request in flight (1..=[`MAX_CONCURRENCY`]).
    pub concurrency: usize,
    /// Worker threads (1..=[`MAX_THREADS`]; more than `concurrency` are not started).
    pub threads: usize,
    /// Stop starting requests this long after t0.
    pub duration: Option<Duration>,
    /// Stop after this many requests (successes and failures) in total.
    pub requests: Option<u64>,
    /// Open loop: requests per second over all connections; `None` = closed loop.
    pub rate_per_s: Option<f64>,
    /// Bound on one request, connect included.
    pub timeout: Duration,
    /// Bound on opening one TCP connection.
    pub connect_timeout: Duration,
    /// Check lengths and crc32 of every piece.
    pub verify: bool,
}

impl EngineConfig {
    /// Checks the bounds and their relations.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(format!(
                "--concurrency {} is outside 1..={MAX_CONCURRENCY}",
                self.concurrency
            ));
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(format!(
                "--threads {} is outside 1..={MAX_THREADS}",
                self.threads
            ));
        }
        if self.duration.is_none() && self.requests.is_none() {
            return Err("give --duration or --requests".into());
        }
        if self.duration.is_some_and(|d| d.is_zero()) || self.requests == Some(0) {
            return Err("--duration and --requests must be greater than zero".into());
        }
        if let Some(rate) = self.rate_per_s {
            if !(rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0) {
                return Err(format!("--rate {rate} is outside (0, 10000000] per second"));
            }
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err("--timeout and --connect-timeout must be greater than zero".into());
        }
        Ok(())
    }
}

/// Watches a run from the main thread.
pub trait Observer {
    /// The measured run starts now (`t0`).
    fn started(&mut self, _t0: Instant) {}
    /// One interval ended `elapsed` after t0; `interval` holds what completed in it.
    fn tick(&mut self, _elapsed: Duration, _interval: &Recorded) {}
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// All workers' totals merged, pre-connect errors included.
    pub totals: Totals,
    /// From t0 to the last completion.
    pub elapsed: Duration,
    /// Worker threads actually started.
    pub threads: usize,
    /// True when the run was cut short by [`request_abort`] (SIGINT).
    pub aborted: bool,
}

static ABORT: AtomicBool = AtomicBool::new(false);

/// Asks a running engine to stop starting requests (for a SIGINT handler: only an atomic
/// store, async-signal-safe).
pub fn request_abort() {
    ABORT.store(true, Ordering::Relaxed);
}

struct Shared {
    config: EngineConfig,
    workload: Arc<Workload>,
    intervals: Vec<Mutex<Recorded>>,
    connected: Barrier,
    go: Barrier,
    start: OnceLock<(Instant, Stop)>,
}

struct WorkerResult {
    totals: Totals,
    last_done: Option<Instant>,
}

/// Runs the load and returns what it measured.
pub fn run(
    config: &EngineConfig,
    workload: Arc<Workload>,
    observer: &mut dyn Observer,
) -> Result<RunOutcome, String> {
    config.validate()?;
    ABORT.store(false, Ordering::Relaxed);
    let threads = config.threads.min(config.concurrency);
    let shared = Arc::new(Shared {
        config: config.clone(),
        workload,
        intervals: (0..threads)
            .map(|_| Mutex::new(Recorded::default()))
            .collect(),
        connected: Barrier::new(threads + 1),
        go: Barrier::new(threads + 1),
        start: OnceLock::new(),
    });
    let (results_tx, results_rx) = mpsc::channel::<Result<WorkerResult, String>>();
    let mut handles = Vec::with_capacity(threads);
    for index in 0..threads {
        let shared = Arc::clone(&shared);
        let tx = results_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("dp-bench-{index}"))
            .spawn(move || {
                let _ = tx.send(worker(index, threads, &shared));
            })
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        handles.push(handle);
    }
    drop(results_tx);

    shared.connected.wait();
    let t0 = Instant::now();
    let stop = Stop::new(config.duration.map(|d| t0 + d), config.requests);
    let _ = shared.start.set((t0, stop));
    observer.started(t0);
    shared.go.wait();
    let stop = &shared.start.get().expect("set above").1;

    let mut totals = Totals::default();
    let mut last_done: Option<Instant> = None;
    let mut errors = Vec::new();
    let mut pending = threads;
    let mut merged = Recorded::default();
    let mut next_tick = t0 + Duration::from_millis(TICK_MS);
    let mut aborted = false;
    let drain = |merged: &mut Recorded| {
        for interval in &shared.intervals {
            let mut guard = interval.lock().unwrap_or_else(|e| e.into_inner());
            merged.merge(&guard);
            guard.reset();
        }
    };
    while pending > 0 {
        let now = Instant::now();
        if now >= next_tick {
            drain(&mut merged);
            observer.tick(next_tick - t0, &merged);
            merged.reset();
            next_tick += Duration::from_millis(TICK_MS);
            continue;
        }
        if ABORT.load(Ordering::Relaxed) && !aborted {
            aborted = true;
            stop.abort();
        }
        let wait = (next_tick - now).min(Duration::from_millis(100));
        match results_rx.recv_timeout(wait) {
            Ok(Ok(result)) => {
                totals.merge(&result.totals);
                last_done = last_done.max(result.last_done);
                pending -= 1;
            }
            Ok(Err(e)) => {
                errors.push(e);
                pending -= 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // The measured window: to the last completion, but in a run stopped by its deadline at
    // least to the deadline (a run that offered load for 10 s is a 10 s run even if its last
    // open-loop request finished at 9.9 s).
    let mut end = last_done.unwrap_or(t0).max(t0);
    if let Some(deadline) = stop.deadline() {
        if !stop.requests_exhausted() && !stop.aborted() {
            end = end.max(deadline);
        }
    }
    drain(&mut merged);
    if merged.counts != Default::default() {
        observer.tick(end - t0, &merged);
    }
    for handle in handles {
        if handle.join().is_err() {
            errors.push("a worker thread panicked".into());
        }
    }
    if pending > 0 && errors.is_empty() {
        errors.push(format!("{pending} worker threads ended without a result"));
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    Ok(RunOutcome {
        totals,
        elapsed: end - t0,
        threads,
        aborted,
    })
}

/// One worker thread: its connections, on its own current-thread runtime.
fn worker(index: usize, threads: usize, shared: &Arc<Shared>) -> Result<WorkerResult, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            // Still meet the main thread at both barriers so it does not wait forever.
            shared.connected.wait();
            shared.go.wait();
            return Err(format!("worker {index}: cannot build a tokio runtime: {e}"));
        }
    };
    let config = &shared.config;
    let conns: Vec<usize> = (index..config.concurrency).step_by(threads).collect();
    let totals = Rc::new(RefCell::new(Totals::default()));

    // Phase 1: open every connection.
    let streams: Vec<Option<TcpStream>> = runtime.block_on(async {
        let local = tokio::task::LocalSet::new();
        let handles: Vec<_> = conns
            .iter()
            .map(|_| {
                let totals = Rc::clone(&totals);
                let target = config.target.addr();
                let timeout = config.connect_timeout;
                local.spawn_local(async move {
                    match connect(target, timeout).await {
                        Ok(s) => {
                            totals.borrow_mut().connects += 1;
                            Some(s)
                        }
                        Err(e) => {
                            let mut totals = totals.borrow_mut();
                            totals.error(e.kind, &e.message);
                            totals.preconnect_failures += 1;
                            None
                        }
                    }
                })
            })
            .collect();
        local
            .run_until(async {
                let mut out = Vec::with_capacity(handles.len());
                for h in handles {
                    out.push(h.await.unwrap_or(None));
                }
                out
            })
            .await
    });

    // Phase 2: meet the main thread, which sets t0.
    shared.connected.wait();
    shared.go.wait();
    let (t0, _) = shared.start.get().ok_or("the run never started")?;

    // Phase 3: the measured run.
    let last_done: Vec<Option<Instant>> = runtime.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let handles: Vec<_> = conns
                    .iter()
                    .zip(streams)
                    .map(|(&conn, stream)| {
                        let ctx = ConnCtx {
                            shared: Arc::clone(shared),
                            index: conn,
                            t0: *t0,
                            totals: Rc::clone(&totals),
                            worker: index,
                        };
                        tokio::task::spawn_local(connection_loop(ctx, stream))
                    })
                    .collect();
                let mut out = Vec::with_capacity(handles.len());
                for h in handles {
                    out.push(h.await.unwrap_or(None));
                }
                out
            })
            .await
    });
    let totals = totals.borrow().clone();
    Ok(WorkerResult {
        totals,
        last_done: last_done.into_iter().flatten().max(),
    })
}

struct ConnCtx {
    shared: Arc<Shared>,
    index: usize,
    t0: Instant,
    totals: Rc<RefCell<Totals>>,
    worker: usize,
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, FetchError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            // Requests are small and must leave at once.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(FetchError::fatal(
            ErrorKind::Connect,
            format!("connect to {addr}: {e}"),
        )),
        Err(_) => Err(FetchError::fatal(
            ErrorKind::Connect,
            format!("connect to {addr}: no answer within {timeout:?}"),
        )),
    }
}

/// One connection's measured loop; returns the instant of its last completion.
async fn connection_loop(ctx: ConnCtx, mut stream: Option<TcpStream>) -> Option<Instant> {
    let shared = &*ctx.shared;
    let config = &shared.config;
    let workload = &*shared.workload;
    let (_, stop) = shared.start.get()?;
    let interval = &shared.intervals[ctx.worker];
    let mut buf = ConnBuf::default();
    let mut request = Vec::with_capacity(512);
    let mut picker = workload.picker(ctx.index as u64);
    let mut pacer = match config.rate_per_s {
        Some(rate) => Pacer::open(ctx.t0, rate, ctx.index, config.concurrency),
        None => Pacer::Closed,
    };
    let mut last_done = None;
    loop {
        let slot = pacer.next_slot(Instant::now());
        if !stop.claim(slot.send_at) {
            break;
        }
        if slot.send_at > Instant::now() {
            tokio::time::sleep_until(slot.send_at.into()).await;
        }
        let sent = Instant::now();
        let from = slot.intended.unwrap_or(sent);
        let piece = picker.next(workload);
        let result = tokio::time::timeout(
            config.timeout,
            request_once(&ctx, &mut stream, &mut buf, &mut request, piece),
        )
        .await;
        let done = Instant::now();
        last_done = Some(done);
        let latency_us = u64::try_from((done - from).as_micros()).unwrap_or(u64::MAX);
        let outcome = match result {
            Ok(r) => r,
            Err(_) => Err(FetchError::fatal(
                ErrorKind::Timeout,
                format!(
                    "{} piece {}: no complete response within {:?}",
                    workload.tasks()[piece.task as usize].id,
                    piece.number,
                    config.timeout
                ),
            )),
        };
        {
            let mut interval = interval.lock().unwrap_or_else(|e| e.into_inner());
            match &outcome {
                Ok(fetched) => interval.piece(fetched.bytes, latency_us),
                Err(e) => interval.error(e.kind),
            }
        }
        match outcome {
            Ok(fetched) => {
                ctx.totals
                    .borrow_mut()
                    .recorded
                    .piece(fetched.bytes, latency_us);
                if !fetched.keep_alive {
                    stream = None;
                    buf.clear();
                }
            }
            Err(e) => {
                ctx.totals.borrow_mut().error(e.kind, &e.message);
                if !e.reusable {
                    stream = None;
                    buf.clear();
                }
                if e.kind == ErrorKind::Connect {
                    let mut until = Instant::now() + Duration::from_millis(CONNECT_BACKOFF_MS);
                    if let Some(deadline) = stop.deadline() {
                        until = until.min(deadline);
                    }
                    tokio::time::sleep_until(until.into()).await;
                }
            }
        }
    }
    last_done
}

/// One request on the connection, opening it first if needed.
async fn request_once(
    ctx: &ConnCtx,
    stream: &mut Option<TcpStream>,
    buf: &mut ConnBuf,
    request: &mut Vec<u8>,
    piece: PieceRef,
) -> Result<Fetched, FetchError> {
    let config = &ctx.shared.config;
    if stream.is_none() {
        let s = connect(config.target.addr(), config.connect_timeout).await?;
        ctx.totals.borrow_mut().connects += 1;
        buf.clear();
        *stream = Some(s);
    }
    let Some(s) = stream.as_mut() else {
        unreachable!("connected above");
    };
    let task = &ctx.shared.workload.tasks()[piece.task as usize];
    match &config.target {
        Target::Vortex { .. } => {
            vortex::fetch_piece(s, buf, task, piece.number, config.verify).await
        }
        Target::Http { http, .. } => {
            http::fetch_piece(s, buf, request, http, task, piece.number, config.verify).await
        }
    }
}
