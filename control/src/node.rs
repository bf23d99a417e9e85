//! A seed node: what `hawker serve` runs beside its data plane. It wires the pieces of this
//! crate together over the data plane's store:
//!
//! - [`OriginDispatcher`]: the [`SeedDispatcher`] that turns the scheduler's seeding orders into
//!   [`Seeder::seed`] calls, watches each fetch (counters, change signal for SyncPieces) and
//!   reports a failed fetch back to the scheduler ([`Scheduler::handle_seed_failed`]) so later
//!   schedules skip this seed and children go back to source.
//! - [`SeedingSource`]: [`StorePieces`] plus the fetches that failed, so a child's SyncPieces on
//!   a failed task ends with UNAVAILABLE at once (it then reschedules) instead of idling.
//! - [`start_seed_node`]: the control plane ([`spawn_control_plane_with_orders`]) with both of
//!   the above, `OriginDispatcher` also taking remote schedulers' seeding orders
//!   (`DfdaemonUpload/DownloadTask`, [`SeedOrders`]), `Seeder::resume_partials` at start, and
//!   the admin HTTP endpoint ([`crate::admin`]).
//!
//! Invariants: dispatching never blocks (the seeder's `seed` takes two short locks; the watch
//! is a spawned task). One watcher per task at a time (`watching`). Bounds: failed tasks are
//! remembered `failure_memory_ms` (the seeder's own memory) and at most `MAX_FAILED_TASKS`.
//!
//! [`Scheduler::handle_seed_failed`]: crate::scheduler::state::Scheduler::handle_seed_failed

use crate::admin::{self, AdminState};
use crate::config::{AdminConfig, ControlPlaneConfig};
use crate::origin::{OriginConfig, SeedHandle, SeedRequest, SeedStatus, Seeder};
use crate::proto::common::v2::Download;
use crate::scheduler::state::SeedOrder;
use crate::scheduler::{SchedulerCore, SeedDispatcher};
use crate::seed::SeedOrders;
use crate::seed::{PieceSource, StorePieces, TaskProgress, TaskView};
use crate::{spawn_control_plane_with_orders, ControlError, ControlPlaneHandle};
use hawker_dataplane::edge::EdgeSender;
use hawker_dataplane::store::Store;
use hawker_shared::ids::TaskId;
use hawker_shared::layout::Layout;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Failed tasks remembered at once by [`SeedingSource`]; the oldest go first.
pub const MAX_FAILED_TASKS: usize = 4096;

/// Counters of seeding from origin (exported on `/metrics` as `hawker_seeding_*`).
#[derive(Debug, Default)]
pub struct SeedingCounters {
    /// Fetches started (orders and resumes; joining a running fetch does not count).
    pub tasks_started: AtomicU64,
    /// Fetches that completed.
    pub tasks_completed: AtomicU64,
    /// Fetches that failed (the seeding errors).
    pub tasks_failed: AtomicU64,
    /// Pieces landed in the store by seeding.
    pub pieces: AtomicU64,
    /// Content bytes landed in the store by seeding.
    pub bytes: AtomicU64,
}

struct Inner {
    seeder: Seeder,
    store: Arc<Mutex<Store>>,
    scheduler: OnceLock<Weak<SchedulerCore>>,
    host_id: OnceLock<String>,
    counters: Arc<SeedingCounters>,
    changes: watch::Sender<u64>,
    watching: Mutex<HashSet<TaskId>>,
    failed: Mutex<HashMap<TaskId, Instant>>,
    failure_memory: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Seeding orders to the origin seeder (see the module doc). Cheap to clone.
#[derive(Clone)]
pub struct OriginDispatcher {
    inner: Arc<Inner>,
}

impl OriginDispatcher {
    /// A dispatcher seeding with `seeder` into `store`. `failure_memory_ms` is the seeder's
    /// `OriginConfig::failure_memory_ms`.
    pub fn new(seeder: Seeder, store: Arc<Mutex<Store>>, failure_memory_ms: u64) -> Self {
        OriginDispatcher {
            inner: Arc::new(Inner {
                seeder,
                store,
                scheduler: OnceLock::new(),
                host_id: OnceLock::new(),
                counters: Arc::new(SeedingCounters::default()),
                changes: watch::channel(0).0,
                watching: Mutex::new(HashSet::new()),
                failed: Mutex::new(HashMap::new()),
                failure_memory: Duration::from_millis(failure_memory_ms),
            }),
        }
    }

    /// The scheduler to report failed fetches to (set once; later calls are ignored).
    pub fn set_scheduler(&self, core: &Arc<SchedulerCore>) {
        let _ = self.inner.scheduler.set(Arc::downgrade(core));
    }

    /// The counters.
    pub fn counters(&self) -> Arc<SeedingCounters> {
        self.inner.counters.clone()
    }

    /// A signal that changes whenever a seeded piece lands or a fetch ends.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// The seeder.
    pub fn seeder(&self) -> &Seeder {
        &self.inner.seeder
    }

    /// Starts (or joins) the fetch of `req` and watches it; `seed_host_id` is this seed's host
    /// id in the scheduler that ordered it (for failure reports). Call within a tokio runtime.
    pub fn seed(&self, req: SeedRequest, seed_host_id: Option<String>) -> SeedHandle {
        let id = req.task_id;
        let handle = self.inner.seeder.seed(req);
        if !matches!(handle.status(), SeedStatus::Failed { .. }) {
            lock(&self.inner.failed).remove(&id);
        }
        self.watch(id, handle.clone(), seed_host_id);
        handle
    }

    fn watch(&self, id: TaskId, handle: SeedHandle, seed_host_id: Option<String>) {
        if !lock(&self.inner.watching).insert(id) {
            return; // a watcher follows this task already
        }
        let inner = self.inner.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            lock(&inner.watching).remove(&id);
            return;
        };
        runtime.spawn(async move {
            watch_fetch(&inner, id, handle, seed_host_id).await;
            lock(&inner.watching).remove(&id);
            inner.changes.send_modify(|g| *g = g.wrapping_add(1));
        });
    }

    /// Is `id`'s fetch known failed (within the failure memory)?
    fn failed(&self, id: &TaskId) -> bool {
        let mut failed = lock(&self.inner.failed);
        match failed.get(id) {
            Some(at) if at.elapsed() < self.inner.failure_memory => true,
            Some(_) => {
                failed.remove(id);
                false
            }
            None => false,
        }
    }
}

/// Bytes of the first `landed` pieces' worth of `layout` (the pieces are equal but the last).
fn bytes_of(layout: Option<Layout>, landed: u32) -> u64 {
    layout.map_or(0, |l| {
        (u64::from(landed) * l.piece_length).min(l.content_length)
    })
}

async fn watch_fetch(inner: &Inner, id: TaskId, handle: SeedHandle, seed_host_id: Option<String>) {
    let c = &inner.counters;
    let layout = || lock(&inner.store).get(&id).map(|t| t.layout());
    let mut rx = handle.receiver();
    let mut baseline: Option<u32> = None;
    let started = matches!(&*rx.borrow(), SeedStatus::Fetching { .. });
    if started {
        c.tasks_started.fetch_add(1, Relaxed);
    }
    loop {
        let status = rx.borrow_and_update().clone();
        match status {
            SeedStatus::Fetching { landed, total } => {
                if total > 0 {
                    match baseline {
                        None => baseline = Some(landed),
                        Some(last) if landed > last => {
                            let l = layout();
                            c.pieces.fetch_add(u64::from(landed - last), Relaxed);
                            c.bytes
                                .fetch_add(bytes_of(l, landed) - bytes_of(l, last), Relaxed);
                            baseline = Some(landed);
                        }
                        Some(_) => {}
                    }
                    inner.changes.send_modify(|g| *g = g.wrapping_add(1));
                }
            }
            SeedStatus::Complete => {
                if started {
                    let l = layout();
                    let count = l.map_or(0, |l| l.piece_count());
                    let last = baseline.unwrap_or(0);
                    c.pieces
                        .fetch_add(u64::from(count.saturating_sub(last)), Relaxed);
                    c.bytes.fetch_add(
                        bytes_of(l, count).saturating_sub(bytes_of(l, last)),
                        Relaxed,
                    );
                    c.tasks_completed.fetch_add(1, Relaxed);
                    tracing::info!(task = %id, "seeded from origin");
                }
                return;
            }
            SeedStatus::Failed { reason, .. } => {
                c.tasks_failed.fetch_add(1, Relaxed);
                {
                    let mut failed = lock(&inner.failed);
                    if failed.len() >= MAX_FAILED_TASKS {
                        if let Some(oldest) =
                            failed.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k)
                        {
                            failed.remove(&oldest);
                        }
                    }
                    failed.insert(id, Instant::now());
                }
                let core = inner.scheduler.get().and_then(Weak::upgrade);
                match (core, seed_host_id.as_deref()) {
                    (Some(core), Some(host)) => {
                        core.lock().handle_seed_failed(id.as_str(), host);
                        tracing::warn!(task = %id, "seeding failed, reported to the scheduler: {reason}");
                    }
                    _ => tracing::warn!(task = %id, "seeding failed: {reason}"),
                }
                return;
            }
        }
        if rx.changed().await.is_err() {
            // The seeder forgot the fetch (shutdown): one last look at the final value.
            if matches!(&*rx.borrow(), SeedStatus::Fetching { .. }) {
                return;
            }
        }
    }
}

impl SeedDispatcher for OriginDispatcher {
    fn dispatch(&self, order: SeedOrder) {
        let id = match TaskId::parse(order.task_id.as_bytes()) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(task = %order.task_id, "seeding order with a bad task id: {e}");
                return;
            }
        };
        tracing::info!(task = %id, url = crate::origin::http::redact_url(&order.download.url), "seeding order");
        let req = SeedRequest::from_download(id, &order.download);
        self.seed(req, Some(order.seed_host_id));
    }
}

/// Seeding orders of remote schedulers (`DfdaemonUpload/DownloadTask`, fleet mode): the same
/// fetch as an order of the embedded scheduler; a failure is reported to the embedded scheduler
/// only (the remote one learns it from the call's status).
impl SeedOrders for OriginDispatcher {
    fn order(&self, task_id: TaskId, download: &Download) -> SeedHandle {
        let host = self
            .inner
            .scheduler
            .get()
            .and_then(Weak::upgrade)
            .and(self.inner.host_id.get().cloned());
        self.seed(SeedRequest::from_download(task_id, download), host)
    }
}

/// The store as SyncPieces sees it on a seeding node: [`StorePieces`], except that a task
/// whose fetch failed (and is not complete) reads as [`TaskProgress::Failed`], so children
/// waiting on it are ended at once.
pub struct SeedingSource {
    store: StorePieces,
    dispatcher: OriginDispatcher,
}

impl SeedingSource {
    /// The store with the dispatcher's failures and change signal.
    pub fn new(store: Arc<Mutex<Store>>, dispatcher: OriginDispatcher) -> SeedingSource {
        SeedingSource {
            store: StorePieces::new(store, Some(dispatcher.changes())),
            dispatcher,
        }
    }
}

impl PieceSource for SeedingSource {
    fn lookup(&self, task_id: &TaskId) -> Option<TaskView> {
        let view = self.store.lookup(task_id);
        let complete = view
            .as_ref()
            .is_some_and(|v| v.progress == TaskProgress::Complete);
        if !complete && self.dispatcher.failed(task_id) {
            // A task whose probe failed has no layout: an empty one is enough to fail the call.
            let layout = view
                .map(|v| v.layout)
                .or_else(|| Layout::new(0, hawker_shared::layout::piece_length_for(0)).ok())?;
            return Some(TaskView {
                layout,
                progress: TaskProgress::Failed,
            });
        }
        view
    }
    fn landed(&self, task_id: &TaskId, numbers: &[u32], out: &mut Vec<u32>) {
        self.store.landed(task_id, numbers, out);
    }
    fn subscribe(&self) -> Option<watch::Receiver<u64>> {
        self.store.subscribe()
    }
}

/// Everything [`start_seed_node`] needs.
#[derive(Debug, Clone)]
pub struct SeedNodeConfig {
    /// The control plane (embedded scheduler or remote schedulers, upload service).
    pub control: ControlPlaneConfig,
    /// Seeding from origin.
    pub origin: OriginConfig,
    /// The admin HTTP endpoint, if any.
    pub admin: Option<AdminConfig>,
}

/// A running seed node (see [`start_seed_node`]).
pub struct SeedNode {
    /// The control plane.
    pub control: ControlPlaneHandle,
    /// Where the admin endpoint listens, if it does.
    pub admin_addr: Option<SocketAddr>,
    dispatcher: OriginDispatcher,
    admin_stop: watch::Sender<bool>,
}

impl SeedNode {
    /// The seeding counters.
    pub fn seeding(&self) -> Arc<SeedingCounters> {
        self.dispatcher.counters()
    }

    /// Stops the admin endpoint, aborts running fetches (their pieces stay journaled for the
    /// next start) and shuts the control plane down (bounded by its `shutdown_grace_ms`).
    pub fn shutdown(self) -> Result<(), ControlError> {
        let _ = self.admin_stop.send(true);
        self.dispatcher.seeder().shutdown();
        self.control.shutdown()
    }
}

/// Starts the control plane of `hawker serve` over the data plane's `store` (the same
/// `Arc<Mutex<Store>>` its feeder uses) and `edge` (to announce seeded pieces to the cores):
/// seeding orders of the embedded scheduler go to the origin seeder, partial tasks are resumed,
/// and the admin endpoint serves `/metrics` and the JSON views. Returns once every listener is
/// bound.
pub fn start_seed_node(
    cfg: SeedNodeConfig,
    store: Arc<Mutex<Store>>,
    edge: EdgeSender,
) -> Result<SeedNode, ControlError> {
    cfg.control.validate()?;
    if let Some(a) = &cfg.admin {
        a.validate()?;
    }
    let failure_memory_ms = cfg.origin.failure_memory_ms;
    let seeder = Seeder::try_new(cfg.origin, store.clone(), edge)
        .map_err(|e| ControlError::Config(crate::ConfigError(e)))?;
    let dispatcher = OriginDispatcher::new(seeder, store.clone(), failure_memory_ms);
    let source: Arc<dyn PieceSource> =
        Arc::new(SeedingSource::new(store.clone(), dispatcher.clone()));
    // Bind the admin port first: a port in use is reported before anything starts.
    let admin_listener = match &cfg.admin {
        Some(a) => Some(admin::bind_std(a.listen)?),
        None => None,
    };
    let control = spawn_control_plane_with_orders(
        cfg.control.clone(),
        source.clone(),
        Arc::new(dispatcher.clone()),
        Some(Arc::new(dispatcher.clone())),
    )?;
    let _ = dispatcher.inner.host_id.set(control.host.id.clone());
    if let Some(core) = &control.scheduler {
        dispatcher.set_scheduler(core);
    }
    let runtime = control.runtime();
    let seed_host_id = control.host.id.clone();
    let resume = dispatcher.clone();
    runtime.spawn(async move {
        resume.seeder().resume_partials();
        // Follow the resumed fetches (joining them) for the counters and the change signal.
        let partials: Vec<SeedRequest> = lock(&resume.inner.store)
            .tasks()
            .filter(|t| !t.is_complete())
            .filter_map(|t| {
                let l = t.layout();
                Some(SeedRequest {
                    task_id: *t.id(),
                    url: t.url()?.to_owned(),
                    headers: Vec::new(),
                    piece_length: Some(l.piece_length),
                    content_length: Some(l.content_length),
                })
            })
            .collect();
        for req in partials {
            resume.seed(req, Some(seed_host_id.clone()));
        }
    });
    let (admin_stop, admin_stop_rx) = watch::channel(false);
    let mut admin_addr = None;
    if let (Some(a), Some(listener)) = (cfg.admin, admin_listener) {
        admin_addr = listener.local_addr().ok();
        let state = Arc::new(AdminState {
            scheduler: control.scheduler.clone(),
            seeding: Some(dispatcher.counters()),
            source: Some(source),
            store: Some(store),
            host: Some(control.host.clone()),
        });
        let _guard = runtime.enter();
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| ControlError::Runtime(format!("admin listener: {e}")))?;
        runtime.spawn(admin::serve(a, listener, state, admin_stop_rx));
        tracing::info!(admin = ?admin_addr, "admin endpoint listening");
    }
    Ok(SeedNode {
        control,
        admin_addr,
        dispatcher,
        admin_stop,
    })
}
