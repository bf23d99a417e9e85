//! `scheduler.v2.Scheduler` over tonic: the IO around the sans-IO [`state::Scheduler`].
//!
//! One `std::sync::Mutex<Scheduler>` (never held across an await; every `handle_*` is a few
//! hash-map operations), one spawned task per `AnnouncePeer` call that reads the client's
//! messages in order, feeds them to the state machine and writes its answers into a bounded
//! channel (`ANNOUNCE_RESPONSE_QUEUE` messages) that tonic drains. The call ends with OK after
//! a terminal message (the client waits for that before it returns), with the mapped error
//! status on a refused message, or with DEADLINE_EXCEEDED after `announce_idle_timeout_ms`
//! without a message. Seeding orders go to a [`SeedDispatcher`]: the node's origin fetcher when
//! the scheduler is embedded in `hawker serve`, [`RemoteSeeding`] (a `DownloadTask` call to the
//! seed) in a standalone `hawker scheduler`.

pub mod hrw;
pub mod remote;
pub mod state;

pub use remote::{RemoteSeeding, RemoteSeedingLimits};

use crate::proto::common::v2::{Peer, Task};
use crate::proto::scheduler::v2::scheduler_server::Scheduler as SchedulerRpc;
use crate::proto::scheduler::v2::{
    AnnounceHostRequest, AnnouncePeerRequest, AnnouncePeerResponse, DeleteHostRequest,
    DeletePeerRequest, DeleteTaskRequest, ListHostsRequest, ListHostsResponse, StatPeerRequest,
    StatTaskRequest,
};
use state::{Limits, ScheduleError, Scheduler, SeedOrder, Session};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Answers queued per `AnnouncePeer` call before the state machine waits for the client.
const ANNOUNCE_RESPONSE_QUEUE: usize = 4;

/// Where seeding orders go. Implementations must not block (queue the order and return).
pub trait SeedDispatcher: Send + Sync + 'static {
    /// Ask `order.seed_host_id` to fetch `order.task_id` from origin.
    fn dispatch(&self, order: SeedOrder);
}

/// A dispatcher that drops orders: seeds serve only what their store already holds (content
/// imported with `hawker import`). A child offered a seed without the task gets NOT_FOUND from
/// its SyncPieces, reschedules, and is sent back to source.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSeeding;

impl SeedDispatcher for NoSeeding {
    fn dispatch(&self, order: SeedOrder) {
        tracing::debug!(seed = %order.seed_host_id, task = %order.task_id, "seeding not enabled; order dropped");
    }
}

/// A dispatcher that forwards orders into a bounded channel (the in-process seeding side reads
/// it). A full channel drops the order with a warning: the child then falls back as above.
#[derive(Debug, Clone)]
pub struct ChannelSeeding(pub mpsc::Sender<SeedOrder>);

impl SeedDispatcher for ChannelSeeding {
    fn dispatch(&self, order: SeedOrder) {
        if let Err(e) = self.0.try_send(order) {
            tracing::warn!("seeding order dropped: {e}");
        }
    }
}

/// Counters of the scheduler service (exported on `/metrics` as `hawker_scheduler_*`).
#[derive(Debug, Default)]
pub struct SchedulerCounters {
    /// `AnnouncePeer` calls accepted.
    pub announce_calls: AtomicU64,
    /// Scheduling answers sent (every kind below).
    pub schedules: AtomicU64,
    /// `NormalTaskResponse`s (candidate parents).
    pub normal: AtomicU64,
    /// `NeedBackToSourceResponse`s.
    pub back_to_source: AtomicU64,
    /// `EmptyTaskResponse`s.
    pub empty: AtomicU64,
    /// `MetadataOnlyResponse`s.
    pub metadata_only: AtomicU64,
    /// Messages refused with an error status.
    pub refused: AtomicU64,
    /// `AnnounceHost` calls accepted.
    pub host_announces: AtomicU64,
    /// Seeding orders handed to the dispatcher.
    pub seed_orders: AtomicU64,
}

impl SchedulerCounters {
    fn count_response(&self, response: &AnnouncePeerResponse) {
        use crate::proto::scheduler::v2::announce_peer_response::Response as R;
        let which = match &response.response {
            Some(R::NormalTaskResponse(_)) => &self.normal,
            Some(R::NeedBackToSourceResponse(_)) => &self.back_to_source,
            Some(R::EmptyTaskResponse(_)) => &self.empty,
            Some(R::MetadataOnlyResponse(_)) => &self.metadata_only,
            None => return,
        };
        which.fetch_add(1, Relaxed);
        self.schedules.fetch_add(1, Relaxed);
    }
}

/// Shared state of the scheduler service.
pub struct SchedulerCore {
    /// Counters for `/metrics`.
    pub counters: SchedulerCounters,
    state: Mutex<Scheduler>,
    seeding: Arc<dyn SeedDispatcher>,
    streams: Arc<tokio::sync::Semaphore>,
    announce_idle_timeout: Duration,
}

impl SchedulerCore {
    /// A core with the given limits. `max_announce_streams` bounds concurrent AnnouncePeer calls.
    pub fn new(
        limits: Limits,
        seeding: Arc<dyn SeedDispatcher>,
        max_announce_streams: usize,
        announce_idle_timeout: Duration,
    ) -> Arc<SchedulerCore> {
        Arc::new(SchedulerCore {
            counters: SchedulerCounters::default(),
            state: Mutex::new(Scheduler::new(limits)),
            seeding,
            streams: Arc::new(tokio::sync::Semaphore::new(max_announce_streams)),
            announce_idle_timeout,
        })
    }

    /// The state machine, locked. Never hold the guard across an await.
    pub fn lock(&self) -> MutexGuard<'_, Scheduler> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs expiry every `period` until the returned task is aborted or the runtime stops.
    pub fn spawn_expiry(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let core = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(core) = core.upgrade() else { return };
                let (h, p, t) = core.lock().expire(Instant::now());
                if h + p + t > 0 {
                    tracing::info!(hosts = h, peers = p, tasks = t, "expired");
                }
            }
        })
    }
}

fn status(e: ScheduleError) -> Status {
    match e {
        ScheduleError::InvalidArgument(m) => Status::invalid_argument(m),
        ScheduleError::FailedPrecondition(m) => Status::failed_precondition(m),
        ScheduleError::NotFound(m) => Status::not_found(m),
        ScheduleError::ResourceExhausted(m) => Status::resource_exhausted(m),
        ScheduleError::Unimplemented(m) => Status::unimplemented(m),
    }
}

/// The tonic service: wrap in [`crate::proto::scheduler::v2::scheduler_server::SchedulerServer`].
#[derive(Clone)]
pub struct SchedulerService {
    core: Arc<SchedulerCore>,
}

impl SchedulerService {
    /// A service over `core`.
    pub fn new(core: Arc<SchedulerCore>) -> SchedulerService {
        SchedulerService { core }
    }
}

async fn announce_loop(
    core: Arc<SchedulerCore>,
    mut inbound: Streaming<AnnouncePeerRequest>,
    tx: mpsc::Sender<Result<AnnouncePeerResponse, Status>>,
) {
    let mut session = Session::default();
    loop {
        let message =
            match tokio::time::timeout(core.announce_idle_timeout, inbound.message()).await {
                Err(_) => {
                    let _ = tx
                        .send(Err(Status::deadline_exceeded(
                            "no AnnouncePeer message for too long",
                        )))
                        .await;
                    break;
                }
                Ok(Ok(Some(m))) => m,
                Ok(Ok(None)) => break, // the client closed its side
                Ok(Err(e)) => {
                    tracing::debug!(peer = ?session.peer_id(), "announce peer stream error: {e}");
                    break;
                }
            };
        let result = core.lock().handle_announce(
            Instant::now(),
            &mut session,
            &message.host_id,
            &message.task_id,
            &message.peer_id,
            message.request,
        );
        match result {
            Ok(step) => {
                for order in step.seed_orders {
                    core.counters.seed_orders.fetch_add(1, Relaxed);
                    core.seeding.dispatch(order);
                }
                if let Some(response) = step.response {
                    core.counters.count_response(&response);
                    if tx.send(Ok(response)).await.is_err() {
                        break;
                    }
                }
                if step.close {
                    break;
                }
            }
            Err(e) => {
                core.counters.refused.fetch_add(1, Relaxed);
                tracing::warn!(peer = %message.peer_id, task = %message.task_id, "announce peer refused: {e}");
                let _ = tx.send(Err(status(e))).await;
                break;
            }
        }
    }
    core.lock().handle_stream_closed(&session);
    // Dropping `tx` ends the response stream with OK (unless an error was sent); dropping
    // `inbound` releases the client's request stream, which is what it waits for.
}

#[tonic::async_trait]
impl SchedulerRpc for SchedulerService {
    type AnnouncePeerStream = ReceiverStream<Result<AnnouncePeerResponse, Status>>;

    async fn announce_peer(
        &self,
        request: Request<Streaming<AnnouncePeerRequest>>,
    ) -> Result<Response<Self::AnnouncePeerStream>, Status> {
        let permit =
            self.core.streams.clone().try_acquire_owned().map_err(|_| {
                Status::resource_exhausted("max_announce_streams calls in progress")
            })?;
        self.core.counters.announce_calls.fetch_add(1, Relaxed);
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(ANNOUNCE_RESPONSE_QUEUE);
        let core = self.core.clone();
        tokio::spawn(async move {
            let _permit = permit;
            announce_loop(core, inbound, tx).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn stat_peer(&self, request: Request<StatPeerRequest>) -> Result<Response<Peer>, Status> {
        let r = request.into_inner();
        self.core
            .lock()
            .stat_peer(&r.peer_id)
            .map(Response::new)
            .map_err(status)
    }

    async fn delete_peer(
        &self,
        request: Request<DeletePeerRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        tracing::info!(peer = %r.peer_id, task = %r.task_id, "delete peer");
        self.core.lock().handle_delete_peer(&r.peer_id);
        Ok(Response::new(()))
    }

    async fn stat_task(&self, request: Request<StatTaskRequest>) -> Result<Response<Task>, Status> {
        let r = request.into_inner();
        self.core
            .lock()
            .stat_task(&r.task_id)
            .map(Response::new)
            .map_err(status)
    }

    async fn delete_task(
        &self,
        request: Request<DeleteTaskRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        tracing::info!(host = %r.host_id, task = %r.task_id, "delete task");
        self.core.lock().handle_delete_task(&r.host_id, &r.task_id);
        Ok(Response::new(()))
    }

    async fn announce_host(
        &self,
        request: Request<AnnounceHostRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        let host = r
            .host
            .ok_or_else(|| Status::invalid_argument("AnnounceHostRequest without host"))?;
        let interval = r.interval.and_then(|d| Duration::try_from(d).ok());
        tracing::debug!(host = %host.id, ip = %host.ip, port = host.port, r#type = host.r#type, "announce host");
        self.core
            .lock()
            .handle_announce_host(Instant::now(), host, interval)
            .map_err(status)?;
        self.core.counters.host_announces.fetch_add(1, Relaxed);
        Ok(Response::new(()))
    }

    async fn list_hosts(
        &self,
        _request: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        Ok(Response::new(ListHostsResponse {
            hosts: self.core.lock().list_hosts(),
        }))
    }

    async fn delete_host(
        &self,
        request: Request<DeleteHostRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        tracing::info!(host = %r.host_id, "delete host");
        self.core.lock().handle_delete_host(&r.host_id);
        Ok(Response::new(()))
    }
}
