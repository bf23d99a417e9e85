//! [`RemoteSeeding`]: the [`SeedDispatcher`] of a standalone `hawker scheduler` (fleet mode).
//! A seeding order names a seed host that runs elsewhere; this dispatcher calls
//! `dfdaemon.v2.DfdaemonUpload/DownloadTask` on that seed's upload port (`host.ip:host.port`
//! as the seed announced it), which makes the seed fetch the task from origin once. Children
//! meanwhile call SyncPieces on the same seed and get the pieces as they land.
//!
//! Each order is one background call, read to its end: OK means the seed holds the task. A
//! call that fails (seed unknown or unreachable, refused, the seed's fetch failed, the stream
//! idle for `idle_timeout_ms`, or the seed computed another task id) is reported to the
//! scheduler with [`Scheduler::handle_seed_failed`], so that later schedules skip this seed for
//! the task and the children are sent back to source.
//!
//! Invariants: `dispatch` never blocks (one short lock of the scheduler, one of the in-flight
//! set, a spawn). At most one call per (task, seed) at a time: a second order while one runs is
//! dropped (the running call covers it). Bounds: `max_in_flight` calls at once (an order past
//! it is reported failed at once), `connect_timeout_ms` to reach the seed, `idle_timeout_ms`
//! between two responses of a call.
//!
//! [`Scheduler::handle_seed_failed`]: super::state::Scheduler::handle_seed_failed

use super::state::SeedOrder;
use super::{SchedulerCore, SeedDispatcher};
use crate::proto::dfdaemon::v2::dfdaemon_upload_client::DfdaemonUploadClient;
use crate::proto::dfdaemon::v2::DownloadTaskRequest;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

/// Bounds of [`RemoteSeeding`].
#[derive(Debug, Clone)]
pub struct RemoteSeedingLimits {
    /// DownloadTask calls in flight at once, all seeds together.
    pub max_in_flight: usize,
    /// Time to open the connection to a seed's upload port.
    pub connect_timeout_ms: u64,
    /// A call with no response for this long is given up (and reported failed).
    pub idle_timeout_ms: u64,
    /// Largest response message accepted from a seed.
    pub max_message_bytes: usize,
}

impl Default for RemoteSeedingLimits {
    fn default() -> Self {
        RemoteSeedingLimits {
            max_in_flight: 1024,
            connect_timeout_ms: 5_000,
            idle_timeout_ms: 300_000,
            max_message_bytes: 4 << 20,
        }
    }
}

/// Counters of [`RemoteSeeding`].
#[derive(Debug, Default)]
pub struct RemoteSeedingCounters {
    /// Calls started.
    pub started: AtomicU64,
    /// Calls that ended with OK (the seed holds the task).
    pub completed: AtomicU64,
    /// Orders reported failed to the scheduler.
    pub failed: AtomicU64,
    /// Orders dropped because a call for the same task and seed was running.
    pub joined: AtomicU64,
}

struct Inner {
    limits: RemoteSeedingLimits,
    core: OnceLock<Weak<SchedulerCore>>,
    in_flight: Mutex<HashSet<(String, String)>>,
    counters: RemoteSeedingCounters,
}

/// Seeding orders to remote seeds over `DownloadTask` (see the module doc). Cheap to clone.
#[derive(Clone)]
pub struct RemoteSeeding {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RemoteSeeding {
    /// A dispatcher with `limits`; call [`RemoteSeeding::set_scheduler`] before orders arrive.
    pub fn new(limits: RemoteSeedingLimits) -> RemoteSeeding {
        RemoteSeeding {
            inner: Arc::new(Inner {
                limits,
                core: OnceLock::new(),
                in_flight: Mutex::new(HashSet::new()),
                counters: RemoteSeedingCounters::default(),
            }),
        }
    }

    /// The scheduler whose hosts are looked up and to which failures are reported (set once;
    /// later calls are ignored).
    pub fn set_scheduler(&self, core: &Arc<SchedulerCore>) {
        let _ = self.inner.core.set(Arc::downgrade(core));
    }

    /// The counters.
    pub fn counters(&self) -> &RemoteSeedingCounters {
        &self.inner.counters
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        lock(&self.inner.in_flight).len()
    }
}

fn core(inner: &Inner) -> Option<Arc<SchedulerCore>> {
    inner.core.get().and_then(Weak::upgrade)
}

fn report_failed(inner: &Inner, order: &SeedOrder, reason: &str) {
    inner.counters.failed.fetch_add(1, Relaxed);
    tracing::warn!(seed = %order.seed_host_id, task = %order.task_id, "seeding order failed: {reason}");
    if let Some(core) = core(inner) {
        core.lock()
            .handle_seed_failed(&order.task_id, &order.seed_host_id);
    }
}

/// The seed's upload address as announced (`host.ip`, `host.port`).
fn seed_addr(core: &SchedulerCore, host_id: &str) -> Result<SocketAddr, String> {
    let state = core.lock();
    let host = state
        .host(host_id)
        .ok_or_else(|| "the seed host is not known (expired?)".to_string())?;
    let ip: IpAddr = host
        .ip
        .parse()
        .map_err(|_| format!("the seed announced ip {:?}, not an IP literal", host.ip))?;
    let port = u16::try_from(host.port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("the seed announced port {}", host.port))?;
    Ok(SocketAddr::new(ip, port))
}

/// One DownloadTask call, read to its end. `Ok` when the seed holds the task.
async fn call(
    limits: &RemoteSeedingLimits,
    addr: SocketAddr,
    order: &SeedOrder,
) -> Result<(), String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("seed address {addr}: {e}"))?
        .connect_timeout(Duration::from_millis(limits.connect_timeout_ms));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connecting to the seed at {addr}: {e}"))?;
    let mut client =
        DfdaemonUploadClient::new(channel).max_decoding_message_size(limits.max_message_bytes);
    let idle = Duration::from_millis(limits.idle_timeout_ms);
    let request = DownloadTaskRequest {
        download: Some(order.download.clone()),
    };
    let mut stream = tokio::time::timeout(idle, client.download_task(request))
        .await
        .map_err(|_| {
            format!(
                "DownloadTask on {addr}: no answer for {} ms",
                limits.idle_timeout_ms
            )
        })?
        .map_err(|s| format!("DownloadTask on {addr}: {}: {}", s.code(), s.message()))?
        .into_inner();
    loop {
        match tokio::time::timeout(idle, stream.message()).await {
            Err(_) => {
                return Err(format!(
                    "DownloadTask on {addr}: no progress for {} ms",
                    limits.idle_timeout_ms
                ))
            }
            Ok(Err(s)) => {
                return Err(format!(
                    "DownloadTask on {addr}: {}: {}",
                    s.code(),
                    s.message()
                ))
            }
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(m))) => {
                if m.task_id != order.task_id {
                    return Err(format!(
                        "the seed computed task id {:?} for the download, not {}",
                        m.task_id, order.task_id
                    ));
                }
            }
        }
    }
}

impl SeedDispatcher for RemoteSeeding {
    fn dispatch(&self, order: SeedOrder) {
        let inner = self.inner.clone();
        let Some(core) = core(&inner) else {
            tracing::warn!(task = %order.task_id, "remote seeding has no scheduler; order dropped");
            return;
        };
        let addr = match seed_addr(&core, &order.seed_host_id) {
            Ok(a) => a,
            Err(reason) => return report_failed(&inner, &order, &reason),
        };
        let key = (order.task_id.clone(), order.seed_host_id.clone());
        {
            let mut in_flight = lock(&inner.in_flight);
            if in_flight.contains(&key) {
                inner.counters.joined.fetch_add(1, Relaxed);
                return;
            }
            if in_flight.len() >= inner.limits.max_in_flight {
                drop(in_flight);
                return report_failed(&inner, &order, "max_in_flight seeding orders in progress");
            }
            in_flight.insert(key.clone());
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            lock(&inner.in_flight).remove(&key);
            return report_failed(&inner, &order, "no tokio runtime to call the seed on");
        };
        inner.counters.started.fetch_add(1, Relaxed);
        tracing::info!(seed = %order.seed_host_id, %addr, task = %order.task_id, "seeding order sent to the seed");
        runtime.spawn(async move {
            match call(&inner.limits, addr, &order).await {
                Ok(()) => {
                    inner.counters.completed.fetch_add(1, Relaxed);
                    tracing::info!(seed = %order.seed_host_id, task = %order.task_id, "the seed holds the task");
                }
                Err(reason) => report_failed(&inner, &order, &reason),
            }
            lock(&inner.in_flight).remove(&key);
        });
    }
}
