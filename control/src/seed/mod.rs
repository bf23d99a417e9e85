//! Seed side of the control plane: `dfdaemon.v2.DfdaemonUpload/SyncPieces` and `SyncHost`, the
//! two RPCs a child dfdaemon calls on a parent's `host.ip:host.port` before fetching piece bytes
//! over Vortex from the data plane.
//!
//! The pieces come from a [`PieceSource`]: the small view of the data plane's store the control
//! plane needs (look a task up, which of some pieces have landed, a change signal).
//! [`StorePieces`] implements it over the data plane's store; [`MemorySource`] is an in-memory
//! one for tests and for embedding without a store.
//!
//! `SyncPieces{task_id, interested_piece_numbers}` streams one `SyncPiecesResponse{number,
//! offset, length, ip, tcp_port}` per interested piece the store holds, in ascending order,
//! then waits for the missing ones to land and streams them as they do; the stream ends with OK
//! when every interested piece was sent or the task is complete. Bounds: at most
//! `max_interested_pieces` numbers per request (the rest is refused), a task that does not
//! exist yet is waited for `task_wait_ms` then answered NOT_FOUND, and a call on which nothing
//! lands for `idle_timeout_ms` ends with DEADLINE_EXCEEDED (the client then reschedules).
//! Without a change signal the store is polled every `poll_interval_ms`.
//!
//! `DownloadTask{download}` is a scheduler's seeding order (fleet mode): served when the
//! service was given a [`SeedOrders`] ([`UploadService::with_orders`]), UNIMPLEMENTED otherwise;
//! see [`order`] for its stream and bounds (`max_download_tasks`,
//! `download_task_idle_timeout_ms`).

use crate::proto::common::v2::{Host, Network};
use crate::proto::dfdaemon::v2::dfdaemon_upload_server::DfdaemonUpload;
use crate::proto::dfdaemon::v2::{
    DownloadTaskRequest, DownloadTaskResponse, SyncHostRequest, SyncPiecesRequest,
    SyncPiecesResponse,
};
use hawker_shared::ids::TaskId;
use hawker_shared::layout::Layout;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

pub mod order;
mod store;
pub use order::SeedOrders;
pub use store::StorePieces;

/// The lifecycle of a task in the store, as the control plane sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskProgress {
    /// Pieces are still landing.
    Seeding,
    /// Every piece is in the store.
    Complete,
    /// Seeding gave up; no more pieces will land.
    Failed,
}

/// What [`PieceSource::lookup`] reports about a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// Content length and piece length: piece `n`'s offset and length.
    pub layout: Layout,
    /// Whether more pieces may land.
    pub progress: TaskProgress,
}

/// The data plane's store, as the control plane needs it. Implementations must be cheap and
/// non-blocking (they run on the control plane's tokio workers).
pub trait PieceSource: Send + Sync + 'static {
    /// The task's layout and progress, `None` when the store does not know it (yet).
    fn lookup(&self, task_id: &TaskId) -> Option<TaskView>;
    /// Appends to `out` those of `numbers` that have landed, in the order given.
    fn landed(&self, task_id: &TaskId, numbers: &[u32], out: &mut Vec<u32>);
    /// A receiver whose value changes whenever a piece lands or a task appears, completes or
    /// fails anywhere in the store; `None` when the store cannot signal (callers then poll).
    fn subscribe(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}

#[derive(Debug)]
struct MemoryTask {
    view: TaskView,
    landed: Vec<bool>,
}

/// An in-memory [`PieceSource`] with a change signal: tests, and embedding without a store.
#[derive(Debug)]
pub struct MemorySource {
    tasks: Mutex<HashMap<TaskId, MemoryTask>>,
    generation: watch::Sender<u64>,
}

impl Default for MemorySource {
    fn default() -> Self {
        MemorySource {
            tasks: Mutex::new(HashMap::new()),
            generation: watch::channel(0).0,
        }
    }
}

impl MemorySource {
    fn bump(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }
    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, MemoryTask>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Starts a task with no piece landed.
    pub fn begin(&self, task_id: TaskId, layout: Layout) {
        let n = layout.piece_count() as usize;
        self.tasks().insert(
            task_id,
            MemoryTask {
                view: TaskView {
                    layout,
                    progress: if n == 0 {
                        TaskProgress::Complete
                    } else {
                        TaskProgress::Seeding
                    },
                },
                landed: vec![false; n],
            },
        );
        self.bump();
    }
    /// Marks piece `number` landed (the task completes with its last piece). Unknown tasks and
    /// out-of-range numbers are ignored.
    pub fn land(&self, task_id: &TaskId, number: u32) {
        if let Some(t) = self.tasks().get_mut(task_id) {
            if let Some(slot) = t.landed.get_mut(number as usize) {
                *slot = true;
            }
            if t.landed.iter().all(|l| *l) {
                t.view.progress = TaskProgress::Complete;
            }
        }
        self.bump();
    }
    /// Marks the task failed.
    pub fn fail(&self, task_id: &TaskId) {
        if let Some(t) = self.tasks().get_mut(task_id) {
            t.view.progress = TaskProgress::Failed;
        }
        self.bump();
    }
}

impl PieceSource for MemorySource {
    fn lookup(&self, task_id: &TaskId) -> Option<TaskView> {
        self.tasks().get(task_id).map(|t| t.view.clone())
    }
    fn landed(&self, task_id: &TaskId, numbers: &[u32], out: &mut Vec<u32>) {
        if let Some(t) = self.tasks().get(task_id) {
            out.extend(
                numbers
                    .iter()
                    .copied()
                    .filter(|n| t.landed.get(*n as usize).copied().unwrap_or(false)),
            );
        }
    }
    fn subscribe(&self) -> Option<watch::Receiver<u64>> {
        Some(self.generation.subscribe())
    }
}

/// Bounds and addresses of the upload service.
#[derive(Debug, Clone)]
pub struct UploadLimits {
    /// The IP children fetch piece bytes from (the data plane's Vortex listener); an IP literal.
    pub download_ip: IpAddr,
    /// The data plane's Vortex TCP port.
    pub vortex_tcp_port: u16,
    /// Interested piece numbers accepted in one SyncPieces request.
    pub max_interested_pieces: usize,
    /// How long SyncPieces waits for an unknown task to appear before NOT_FOUND.
    pub task_wait_ms: u64,
    /// SyncPieces ends with DEADLINE_EXCEEDED after this long without a new piece.
    pub idle_timeout_ms: u64,
    /// Store poll period when the source has no change signal.
    pub poll_interval_ms: u64,
    /// Period of the SyncHost stream's host reports.
    pub sync_host_interval_ms: u64,
    /// SyncPieces / SyncHost calls served at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_streams: usize,
    /// DownloadTask (seeding order) calls served at once; more are refused with
    /// RESOURCE_EXHAUSTED.
    pub max_download_tasks: usize,
    /// A DownloadTask call ends with DEADLINE_EXCEEDED after this long without a landed piece
    /// (the fetch itself goes on).
    pub download_task_idle_timeout_ms: u64,
}

impl UploadLimits {
    /// Defaults for a data plane at `download_ip:vortex_tcp_port`.
    pub fn new(download_ip: IpAddr, vortex_tcp_port: u16) -> UploadLimits {
        UploadLimits {
            download_ip,
            vortex_tcp_port,
            max_interested_pieces: 1 << 20,
            task_wait_ms: 30_000,
            idle_timeout_ms: 300_000,
            poll_interval_ms: 200,
            sync_host_interval_ms: 10_000,
            max_streams: 4096,
            max_download_tasks: 256,
            download_task_idle_timeout_ms: 300_000,
        }
    }
}

/// `dfdaemon.v2.DfdaemonUpload` served from a [`PieceSource`].
pub struct UploadService {
    source: Arc<dyn PieceSource>,
    limits: Arc<UploadLimits>,
    streams: Arc<tokio::sync::Semaphore>,
    orders: Option<(Arc<dyn SeedOrders>, String)>,
    order_calls: Arc<tokio::sync::Semaphore>,
}

impl UploadService {
    /// A service answering from `source`.
    pub fn new(source: Arc<dyn PieceSource>, limits: UploadLimits) -> UploadService {
        UploadService {
            streams: Arc::new(tokio::sync::Semaphore::new(limits.max_streams)),
            order_calls: Arc::new(tokio::sync::Semaphore::new(limits.max_download_tasks)),
            source,
            limits: Arc::new(limits),
            orders: None,
        }
    }

    /// Serves `DownloadTask` (seeding orders) with `orders`; `host_id` is this seed's host id
    /// (as announced), reported in the responses.
    pub fn with_orders(mut self, orders: Arc<dyn SeedOrders>, host_id: String) -> UploadService {
        self.orders = Some((orders, host_id));
        self
    }
}

/// Waits for the next change: the source's signal, or a poll tick.
async fn wait_change(signal: &mut Option<watch::Receiver<u64>>, poll: Duration) {
    match signal {
        Some(rx) => {
            // A closed sender means no more signals: fall back to polling.
            if tokio::time::timeout(poll * 5, rx.changed())
                .await
                .is_ok_and(|r| r.is_err())
            {
                *signal = None;
            }
        }
        None => tokio::time::sleep(poll).await,
    }
}

async fn sync_pieces(
    source: Arc<dyn PieceSource>,
    limits: Arc<UploadLimits>,
    task_id: TaskId,
    mut wanted: Vec<u32>,
    tx: mpsc::Sender<Result<SyncPiecesResponse, Status>>,
) {
    let poll = Duration::from_millis(limits.poll_interval_ms.max(1));
    let mut signal = source.subscribe();
    // Wait for the task to appear.
    let appear_deadline = tokio::time::Instant::now() + Duration::from_millis(limits.task_wait_ms);
    let mut view = loop {
        if let Some(signal) = signal.as_mut() {
            signal.borrow_and_update();
        }
        if let Some(v) = source.lookup(&task_id) {
            break v;
        }
        if tokio::time::Instant::now() >= appear_deadline {
            let _ = tx
                .send(Err(Status::not_found(format!(
                    "task {task_id} is not in the store"
                ))))
                .await;
            return;
        }
        tokio::select! {
            _ = wait_change(&mut signal, poll) => {}
            _ = tokio::time::sleep_until(appear_deadline) => {}
            _ = tx.closed() => return,
        }
    };
    if view.progress == TaskProgress::Failed {
        // Before the numbers are checked against the layout: a task whose probe failed has an
        // empty one, and an emptied interest list would end the call with OK.
        let _ = tx
            .send(Err(Status::unavailable(format!(
                "seeding task {task_id} failed"
            ))))
            .await;
        return;
    }
    let count = view.layout.piece_count();
    wanted.retain(|n| *n < count);
    wanted.sort_unstable();
    wanted.dedup();
    let idle = Duration::from_millis(limits.idle_timeout_ms);
    let mut last_progress = tokio::time::Instant::now();
    let mut landed = Vec::new();
    loop {
        if let Some(signal) = signal.as_mut() {
            signal.borrow_and_update();
        }
        landed.clear();
        source.landed(&task_id, &wanted, &mut landed);
        for &number in &landed {
            let Some(range) = view.layout.piece(number) else {
                continue;
            };
            let message = SyncPiecesResponse {
                number,
                offset: range.offset,
                length: range.length,
                ip: limits.download_ip.to_string(),
                tcp_port: Some(i32::from(limits.vortex_tcp_port)),
                quic_port: None,
            };
            if tx.send(Ok(message)).await.is_err() {
                return; // the child hung up
            }
        }
        if !landed.is_empty() {
            last_progress = tokio::time::Instant::now();
            // Both ascending: drop what was sent.
            let mut sent = landed.iter().peekable();
            wanted.retain(|n| {
                if sent.peek() == Some(&n) {
                    sent.next();
                    false
                } else {
                    true
                }
            });
        }
        if wanted.is_empty() {
            return; // every interested piece was sent: end with OK
        }
        match source.lookup(&task_id) {
            Some(v) if v.progress == TaskProgress::Complete => {
                // Pieces that landed between our two reads are picked up by one more pass.
                if view.progress == TaskProgress::Complete {
                    return;
                }
                view = v;
                continue;
            }
            Some(v) if v.progress == TaskProgress::Failed => {
                let _ = tx
                    .send(Err(Status::unavailable(format!(
                        "seeding task {task_id} failed"
                    ))))
                    .await;
                return;
            }
            Some(v) => view = v,
            None => {
                let _ = tx
                    .send(Err(Status::not_found(format!(
                        "task {task_id} was removed"
                    ))))
                    .await;
                return;
            }
        }
        if last_progress.elapsed() >= idle {
            let _ = tx
                .send(Err(Status::deadline_exceeded(format!(
                    "no piece of task {task_id} landed for {} ms",
                    limits.idle_timeout_ms
                ))))
                .await;
            return;
        }
        tokio::select! {
            _ = wait_change(&mut signal, poll) => {}
            _ = tx.closed() => return,
        }
    }
}

#[tonic::async_trait]
impl DfdaemonUpload for UploadService {
    type SyncPiecesStream = ReceiverStream<Result<SyncPiecesResponse, Status>>;
    type SyncHostStream = ReceiverStream<Result<Host, Status>>;
    type DownloadTaskStream = ReceiverStream<Result<DownloadTaskResponse, Status>>;

    async fn download_task(
        &self,
        request: Request<DownloadTaskRequest>,
    ) -> Result<Response<Self::DownloadTaskStream>, Status> {
        let Some((orders, host_id)) = &self.orders else {
            return Err(Status::unimplemented(
                "this seed does not take seeding orders",
            ));
        };
        let download = request
            .into_inner()
            .download
            .ok_or_else(|| Status::invalid_argument("missing download"))?;
        let task_id = order::task_id_of(&download)?;
        let permit = self
            .order_calls
            .clone()
            .try_acquire_owned()
            .map_err(|_| Status::resource_exhausted("max_download_tasks orders in progress"))?;
        tracing::info!(task = %task_id, url = crate::origin::http::redact_url(&download.url), "seeding order from a scheduler");
        let handle = orders.order(task_id, &download);
        let (tx, rx) = mpsc::channel(order::DOWNLOAD_TASK_QUEUE);
        let source = self.source.clone();
        let limits = self.limits.clone();
        let host_id = host_id.clone();
        tokio::spawn(async move {
            let _permit = permit;
            order::stream_progress(source, limits, host_id, task_id, handle, tx).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn sync_pieces(
        &self,
        request: Request<SyncPiecesRequest>,
    ) -> Result<Response<Self::SyncPiecesStream>, Status> {
        let request = request.into_inner();
        let task_id = TaskId::parse(request.task_id.as_bytes())
            .map_err(|e| Status::invalid_argument(format!("task_id: {e}")))?;
        if request.interested_piece_numbers.len() > self.limits.max_interested_pieces {
            return Err(Status::invalid_argument(format!(
                "{} interested pieces, at most {} accepted",
                request.interested_piece_numbers.len(),
                self.limits.max_interested_pieces
            )));
        }
        let permit = self
            .streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| Status::resource_exhausted("max_streams upload calls in progress"))?;
        tracing::debug!(task = %task_id, host = %request.host_id, pieces = request.interested_piece_numbers.len(), "sync pieces");
        let (tx, rx) = mpsc::channel(128);
        let source = self.source.clone();
        let limits = self.limits.clone();
        tokio::spawn(async move {
            let _permit = permit;
            sync_pieces(
                source,
                limits,
                task_id,
                request.interested_piece_numbers,
                tx,
            )
            .await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn sync_host(
        &self,
        request: Request<SyncHostRequest>,
    ) -> Result<Response<Self::SyncHostStream>, Status> {
        let permit = self
            .streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| Status::resource_exhausted("max_streams upload calls in progress"))?;
        tracing::debug!(host = %request.get_ref().host_id, "sync host");
        let (tx, rx) = mpsc::channel(4);
        let period = Duration::from_millis(self.limits.sync_host_interval_ms.max(100));
        tokio::spawn(async move {
            let _permit = permit;
            // hawker does not measure its bandwidth here: report an idle host so that the
            // client's parent selector weighs hawker seeds by their advertised capacity only.
            loop {
                let host = Host {
                    network: Some(Network::default()),
                    ..Host::default()
                };
                if tx.send(Ok(host)).await.is_err() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
