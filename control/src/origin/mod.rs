//! Seeding from origin: when a peer asks for a task no seed holds, the responsible seed fetches
//! it from the origin ONCE, with HTTP(S) range requests, into the data plane's store, and tells
//! the serving cores about each piece as it lands.
//!
//! What it is for: [`Seeder::seed`] starts (or joins) the fetch of one task and returns a
//! [`SeedHandle`] to watch it; [`Seeder::resume_partials`] picks partial tasks up after a
//! restart. What it is not for: deciding which seed fetches (the scheduler), serving pieces
//! (the data plane), or answering SyncPieces (`crate::seed`, which sees pieces in the store).
//!
//! The life of one task (docs/seeding.md has the state machine and every number):
//! 1. *Queued*: at most `max_concurrent_tasks` tasks fetch at once; the rest wait
//!    (`Fetching{landed: 0, total: 0}`).
//! 2. *Probe*: `GET` with `Range: bytes=0-0` gives the length from `Content-Range` (a `200`
//!    means the origin ignores ranges: its body is then streamed whole and cut into pieces; a
//!    `416 bytes */0` means empty content) and the validators (`ETag`, `Last-Modified`).
//! 3. *Begin*: the version is recorded next to the store ([`sidecar`]), then `Store::begin`
//!    creates the task or resumes its journaled pieces; `TaskAdded` goes to the data plane.
//! 4. *Pieces*: up to `concurrent_pieces_per_task` range requests, each checked (status 206,
//!    exact `Content-Range`, same validators, exactly `length` bytes, no stall longer than
//!    `read_timeout_ms`) before `write_piece` (crc32, fdatasync, journal) and `PieceLanded`.
//! 5. *Finish*: `TaskWriter::finish` computes the sha256 and publishes the task complete;
//!    `TaskCompleted` goes to the data plane. Status `Complete`.
//!
//! Failures: each request is retried `piece_attempts` times with doubling backoff
//! (`backoff_initial_ms` .. `backoff_max_ms`), then the task is `Failed` with the reason, and
//! that failure is remembered `failure_memory_ms`. An origin whose content changes mid-seed
//! (validators or length differ) has the task removed and restarted from scratch, at most
//! `max_content_changes` times. No byte is announced before it was checked and synced, so a
//! half-seeded task never serves a wrong byte; after a crash, `resume_partials` fetches only
//! the pieces the journal lacks (from the same version, or from scratch if it changed).
//!
//! Bounds: `max_tracked_tasks` entries in the in-flight table, `max_concurrent_tasks` x
//! `concurrent_pieces_per_task` piece buffers of one piece each (≤ 64 MiB), forwarded headers
//! ≤ `max_forwarded_header_bytes`.

pub mod config;
mod fetch;
pub mod http;
pub mod sidecar;

pub use config::OriginConfig;

use crate::proto::common::v2::Download;
use hawker_dataplane::edge::EdgeSender;
use hawker_dataplane::store::Store;
use hawker_shared::ids::TaskId;
use http::Forwarded;
use sidecar::Sidecars;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::AbortHandle;

/// What a peer asked for, as the seeder needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRequest {
    /// The task (computed by the scheduler from the URL and the peer's parameters).
    pub task_id: TaskId,
    /// The origin URL.
    pub url: String,
    /// The peer's request headers (e.g. a registry's `Authorization`); hop-by-hop ones are
    /// dropped before forwarding (see [`http`]).
    pub headers: Vec<(String, String)>,
    /// Bytes per piece; `None` for Dragonfly's default for the content length.
    pub piece_length: Option<u64>,
    /// The content length, if the peer already knows it (informational: the origin's answer
    /// wins, and a difference is logged).
    pub content_length: Option<u64>,
}

impl SeedRequest {
    /// The request for `task_id` from a peer's `Download` (scheduler.v2 RegisterPeerRequest):
    /// its URL, request headers, and the layout the peer computed (`actual_piece_length`,
    /// `actual_content_length`, else the `piece_length` it asked for).
    pub fn from_download(task_id: TaskId, download: &Download) -> SeedRequest {
        SeedRequest {
            task_id,
            url: download.url.clone(),
            headers: download
                .request_header
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            piece_length: download.actual_piece_length.or(download.piece_length),
            content_length: download.actual_content_length,
        }
    }
}

/// Where the fetch of one task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedStatus {
    /// Queued or fetching: `landed` of `total` pieces are in the store (`total` is 0 until the
    /// origin told the length).
    Fetching {
        /// Pieces landed.
        landed: u32,
        /// Pieces of the task.
        total: u32,
    },
    /// Every piece landed and the task is complete in the store.
    Complete,
    /// The fetch failed; a request after `retry_after_ms` milliseconds tries the origin again.
    Failed {
        /// What went wrong and, where it can, what to do.
        reason: String,
        /// Milliseconds until a new request tries again.
        retry_after_ms: u64,
    },
}

/// A watch on the fetch of one task.
#[derive(Debug, Clone)]
pub struct SeedHandle {
    rx: watch::Receiver<SeedStatus>,
}

impl SeedHandle {
    /// A handle following `rx` (for a [`crate::seed::SeedOrders`] that is not a [`Seeder`],
    /// e.g. in tests).
    pub fn from_receiver(rx: watch::Receiver<SeedStatus>) -> SeedHandle {
        SeedHandle { rx }
    }

    fn settled(status: SeedStatus) -> SeedHandle {
        // The sender is dropped at once: the receiver keeps the last value.
        let (_tx, rx) = watch::channel(status);
        SeedHandle { rx }
    }

    /// The status now.
    pub fn status(&self) -> SeedStatus {
        self.rx.borrow().clone()
    }

    /// A receiver that changes with the status (for a caller that wants every step).
    pub fn receiver(&self) -> watch::Receiver<SeedStatus> {
        self.rx.clone()
    }

    /// Waits until the task is complete (`Ok`) or failed (`Err(reason)`).
    pub async fn done(&mut self) -> Result<(), String> {
        loop {
            match &*self.rx.borrow_and_update() {
                SeedStatus::Complete => return Ok(()),
                SeedStatus::Failed { reason, .. } => return Err(reason.clone()),
                SeedStatus::Fetching { .. } => {}
            }
            if self.rx.changed().await.is_err() {
                return match &*self.rx.borrow() {
                    SeedStatus::Complete => Ok(()),
                    SeedStatus::Failed { reason, .. } => Err(reason.clone()),
                    SeedStatus::Fetching { .. } => {
                        Err("the seeder stopped before the task was complete".into())
                    }
                };
            }
        }
    }
}

/// One task in the in-flight table.
struct Entry {
    tx: Arc<watch::Sender<SeedStatus>>,
    generation: u64,
    state: EntryState,
}

enum EntryState {
    Running {
        abort: Option<AbortHandle>,
    },
    Failed {
        reason: String,
        until: Instant,
        /// Which forwarded headers failed: other headers try again at once.
        fingerprint: u64,
    },
}

/// What every fetch shares.
pub(crate) struct Shared {
    cfg: OriginConfig,
    store: Arc<Mutex<Store>>,
    edge: EdgeSender,
    /// The HTTP client, or why there is none (then every seed fails with that reason).
    client: Result<reqwest::Client, String>,
    sidecars: Sidecars,
    table: Mutex<HashMap<TaskId, Entry>>,
    task_permits: Arc<Semaphore>,
    next_generation: AtomicU64,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, HashMap<TaskId, Entry>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Aborts every running fetch and forgets it (its watchers see the sender go).
    fn abort_all(&self) {
        self.table().retain(|_, entry| match &entry.state {
            EntryState::Running { abort } => {
                if let Some(a) = abort {
                    a.abort();
                }
                false
            }
            EntryState::Failed { .. } => true,
        });
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Aborts every fetch when the last [`Seeder`] clone goes.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.abort_all();
    }
}

/// Seeds tasks from origin into the store. `Clone` shares one in-flight table; dropping the
/// last clone aborts every fetch (pieces already written stay journaled for a resume).
#[derive(Clone)]
pub struct Seeder {
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Seeder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seeder")
            .field("tracked_tasks", &self.owner.shared.table().len())
            .finish()
    }
}

impl Seeder {
    /// A seeder writing into `store` and announcing to `edge`. An invalid `cfg` (see
    /// [`OriginConfig::validate`]) or an HTTP client that cannot be built makes every seed fail
    /// with that reason (logged here once); use [`Seeder::try_new`] to get the error instead.
    pub fn new(cfg: OriginConfig, store: Arc<Mutex<Store>>, edge: EdgeSender) -> Seeder {
        let client = cfg.validate().and_then(|()| build_client(&cfg));
        if let Err(e) = &client {
            tracing::error!("origin seeding disabled: {e}");
        }
        let store_dir = store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dir()
            .to_path_buf();
        let permits = cfg.max_concurrent_tasks.max(1);
        Seeder {
            owner: Arc::new(Owner {
                shared: Arc::new(Shared {
                    cfg,
                    store,
                    edge,
                    client,
                    sidecars: Sidecars::new(&store_dir),
                    table: Mutex::new(HashMap::new()),
                    task_permits: Arc::new(Semaphore::new(permits)),
                    next_generation: AtomicU64::new(1),
                }),
            }),
        }
    }

    /// [`Seeder::new`], refusing an invalid configuration or client.
    pub fn try_new(
        cfg: OriginConfig,
        store: Arc<Mutex<Store>>,
        edge: EdgeSender,
    ) -> Result<Seeder, String> {
        let s = Seeder::new(cfg, store, edge);
        match &s.owner.shared.client {
            Ok(_) => Ok(s),
            Err(e) => Err(e.clone()),
        }
    }

    /// Starts (or joins) the fetch of `req.task_id`. Returns a handle whose status can be
    /// awaited or watched. Must be called within a tokio runtime (the fetch is spawned on it);
    /// never blocks beyond two short lock holds.
    pub fn seed(&self, req: SeedRequest) -> SeedHandle {
        let shared = &self.owner.shared;
        if let Err(e) = &shared.client {
            return SeedHandle::settled(SeedStatus::Failed {
                reason: format!("origin seeding is disabled: {e}"),
                retry_after_ms: shared.cfg.failure_memory_ms,
            });
        }
        let fwd =
            match http::forwardable_headers(&req.headers, shared.cfg.max_forwarded_header_bytes) {
                Ok(f) => f,
                Err(reason) => {
                    return SeedHandle::settled(SeedStatus::Failed {
                        reason,
                        retry_after_ms: 0,
                    })
                }
            };
        if let Err(reason) = check_url(&req.url) {
            return SeedHandle::settled(SeedStatus::Failed {
                reason,
                retry_after_ms: 0,
            });
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return SeedHandle::settled(SeedStatus::Failed {
                reason: "Seeder::seed was called outside a tokio runtime".into(),
                retry_after_ms: 0,
            });
        };
        let now = Instant::now();
        let mut table = shared.table();
        if let Some(entry) = table.get(&req.task_id) {
            match &entry.state {
                EntryState::Running { .. } => {
                    return SeedHandle {
                        rx: entry.tx.subscribe(),
                    }
                }
                EntryState::Failed {
                    reason,
                    until,
                    fingerprint,
                } if *until > now && *fingerprint == fwd.fingerprint => {
                    entry.tx.send_replace(SeedStatus::Failed {
                        reason: reason.clone(),
                        retry_after_ms: remaining_ms(*until, now),
                    });
                    return SeedHandle {
                        rx: entry.tx.subscribe(),
                    };
                }
                EntryState::Failed { .. } => {
                    table.remove(&req.task_id);
                }
            }
        }
        // Checked under the table lock (order: table, then store): a fetch publishes the task
        // complete in the store before it leaves the table, so none is started twice.
        if shared
            .store()
            .get(&req.task_id)
            .is_some_and(|t| t.is_complete())
        {
            return SeedHandle::settled(SeedStatus::Complete);
        }
        if table.len() >= shared.cfg.max_tracked_tasks {
            table.retain(|_, e| match &e.state {
                EntryState::Failed { until, .. } => *until > now,
                EntryState::Running { .. } => true,
            });
        }
        if table.len() >= shared.cfg.max_tracked_tasks {
            return SeedHandle::settled(SeedStatus::Failed {
                reason: format!(
                    "the seeder tracks {} tasks, its max_tracked_tasks; try again later",
                    table.len()
                ),
                retry_after_ms: shared.cfg.backoff_max_ms,
            });
        }
        let generation = shared.next_generation.fetch_add(1, Ordering::Relaxed);
        let tx = Arc::new(
            watch::channel(SeedStatus::Fetching {
                landed: 0,
                total: 0,
            })
            .0,
        );
        let rx = tx.subscribe();
        let id = req.task_id;
        let job = runtime.spawn(run(
            Arc::clone(shared),
            req,
            fwd,
            Arc::clone(&tx),
            generation,
        ));
        table.insert(
            id,
            Entry {
                tx,
                generation,
                state: EntryState::Running {
                    abort: Some(job.abort_handle()),
                },
            },
        );
        SeedHandle { rx }
    }

    /// The status of `id`: its entry in the in-flight table (fetching, or a failure still
    /// remembered), `Complete` when the store holds it complete, else `None`.
    pub fn status(&self, id: &TaskId) -> Option<SeedStatus> {
        let shared = &self.owner.shared;
        if let Some(entry) = shared.table().get(id) {
            return Some(match &entry.state {
                EntryState::Failed { reason, until, .. } => SeedStatus::Failed {
                    reason: reason.clone(),
                    retry_after_ms: remaining_ms(*until, Instant::now()),
                },
                EntryState::Running { .. } => entry.tx.borrow().clone(),
            });
        }
        shared
            .store()
            .get(id)
            .filter(|t| t.is_complete())
            .map(|_| SeedStatus::Complete)
    }

    /// On start: resumes every partial task in the store whose URL is known (`Store::begin`
    /// keeps its journaled pieces). Returns how many fetches were started. Forwarded headers
    /// are never stored, so an origin that needs credentials fails these until a peer asks
    /// again with its headers (which then retries at once). Call within a tokio runtime.
    pub fn resume_partials(&self) -> usize {
        let partials: Vec<SeedRequest> = self
            .owner
            .shared
            .store()
            .tasks()
            .filter(|t| !t.is_complete())
            .filter_map(|t| {
                let layout = t.layout();
                Some(SeedRequest {
                    task_id: *t.id(),
                    url: t.url()?.to_owned(),
                    headers: Vec::new(),
                    piece_length: Some(layout.piece_length),
                    content_length: Some(layout.content_length),
                })
            })
            .collect();
        let mut started = 0;
        for req in partials {
            let id = req.task_id;
            let handle = self.seed(req);
            match handle.status() {
                SeedStatus::Failed { reason, .. } => {
                    tracing::warn!(task = %id, "origin: cannot resume partial task: {reason}")
                }
                _ => started += 1,
            }
        }
        tracing::info!(started, "origin: resumed partial tasks");
        started
    }

    /// Aborts every fetch now (as dropping the last clone does): their handles' `done()`
    /// returns an error. Pieces already written stay journaled; a store write in progress
    /// completes on the blocking pool, so a new `seed()` of that task at once may find its
    /// writer busy and fail.
    pub fn shutdown(&self) {
        self.owner.shared.abort_all();
    }
}

/// Refuses URLs the client cannot fetch, before any attempt.
fn check_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(format!(
            "cannot seed {}: only http and https URLs with a host are fetched, not {}",
            http::redact_url(url),
            u.scheme()
        )),
        Err(e) => Err(format!(
            "cannot seed {}: bad URL: {e}",
            http::redact_url(url)
        )),
    }
}

fn remaining_ms(until: Instant, now: Instant) -> u64 {
    u64::try_from(until.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
}

fn build_client(cfg: &OriginConfig) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
        .redirect(reqwest::redirect::Policy::limited(cfg.max_redirects))
        .user_agent(cfg.user_agent.clone())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// One task's fetch, from the queue to its final status.
async fn run(
    shared: Arc<Shared>,
    req: SeedRequest,
    fwd: Forwarded,
    tx: Arc<watch::Sender<SeedStatus>>,
    generation: u64,
) {
    let id = req.task_id;
    let result = match Arc::clone(&shared.task_permits).acquire_owned().await {
        Ok(_permit) => fetch::seed_task(&shared, &req, &fwd, &tx).await,
        Err(_) => Err("the seeder is shutting down".to_owned()),
    };
    let mut table = shared.table();
    let ours = table.get(&id).is_some_and(|e| e.generation == generation);
    match result {
        Ok(()) => {
            tx.send_replace(SeedStatus::Complete);
            if ours {
                table.remove(&id);
            }
        }
        Err(reason) => {
            tracing::warn!(task = %id, url = http::redact_url(&req.url), "origin: seeding failed: {reason}");
            let memory_ms = shared.cfg.failure_memory_ms;
            tx.send_replace(SeedStatus::Failed {
                reason: reason.clone(),
                retry_after_ms: memory_ms,
            });
            if let Some(entry) = table.get_mut(&id).filter(|_| ours) {
                entry.state = EntryState::Failed {
                    reason,
                    until: Instant::now() + Duration::from_millis(memory_ms),
                    fingerprint: fwd.fingerprint,
                };
            }
        }
    }
}
