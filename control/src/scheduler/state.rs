//! The scheduler's state machine, sans IO: hosts, tasks and peers in memory, and the decisions
//! of `scheduler.v2.Scheduler` as pure functions of that state, the message and the time.
//!
//! No sockets, no clock, no locks: every input is a `handle_*` call that receives `now`, every
//! output is a return value ([`Step`]: the response to send, whether to close the call, and
//! seeding orders). The tonic glue (`scheduler::service`) owns one [`Scheduler`] behind a mutex
//! and does the IO; the unit tests below drive it directly.
//!
//! Scheduling (register and reschedule), in order:
//! 1. `metadata_only` downloads (the client already holds the task) get `MetadataOnlyResponse`;
//!    zero-length content (`actual_content_length == 0`) gets `EmptyTaskResponse`;
//!    `need_back_to_source` gets `NeedBackToSourceResponse`.
//! 2. Candidates: the live seed hosts responsible for the task, by rendezvous hashing
//!    ([`super::hrw`]) over all live seed hosts, `seeds_per_task` of them; then the peers of the
//!    task on other hosts that hold at least one piece, least loaded first (load = children
//!    currently scheduled to that host), more pieces first on ties. Excluded: the child's own
//!    host, parents the child reported failing (`DownloadPieceFailed.parent_id`) or asked to
//!    replace (`ReschedulePeer.candidate_parents`), and seeds whose seeding of the task failed.
//!    At most `candidate_parents_max` are offered.
//! 3. No candidate: `NeedBackToSourceResponse` (the client fetches from origin itself).
//!
//! A seed offered for a task it has not been asked to fetch yet yields one [`SeedOrder`]; the
//! glue hands it to the seeding side, which reports back with [`Scheduler::handle_seed_failed`]
//! when it cannot fetch (origin error): later schedules then skip that seed.
//!
//! Bounds (all in [`Limits`]): hosts, tasks, peers, candidate parents per answer, pieces per
//! task, blocked parents per peer. Expiry ([`Scheduler::expire`]): a host that stops announcing
//! for its TTL (3 × its announce interval, clamped to `[host_ttl_min_ms, host_ttl_max_ms]`) is
//! dropped with its peers; a finished peer is kept as a parent for `peer_ttl_ms` after its last
//! message; a task with no peers is dropped after `task_ttl_ms`. Peers whose call ends before a
//! terminal message are removed at once ([`Scheduler::handle_stream_closed`]).

use super::hrw;
use crate::proto::common::v2::{Download, Host, Peer, Piece, Task};
use crate::proto::scheduler::v2::{
    announce_peer_request::Request, announce_peer_response::Response, AnnouncePeerResponse,
    EmptyTaskResponse, MetadataOnlyResponse, NeedBackToSourceResponse, NormalTaskResponse,
};
use hawker_shared::ids::TaskId;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

/// Resource bounds and timings of the scheduler. See the module doc for what each one limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Seed hosts responsible for one task (rendezvous hashing). 1 = one origin fetch per task.
    pub seeds_per_task: usize,
    /// Parents offered in one `NormalTaskResponse`.
    pub candidate_parents_max: usize,
    /// Hosts known at once; `AnnounceHost` of a new host beyond it is refused.
    pub max_hosts: usize,
    /// Tasks known at once; registering a new task beyond it is refused.
    pub max_tasks: usize,
    /// Peers known at once, all tasks together.
    pub max_peers: usize,
    /// Pieces of one task (`actual_piece_count`); bigger tasks are refused.
    pub max_pieces_per_task: u32,
    /// Parents one peer may block (failed or rescheduled away) before the oldest are forgotten.
    pub max_blocked_parents_per_peer: usize,
    /// Lower clamp of a host's TTL (3 × its announce interval).
    pub host_ttl_min_ms: u64,
    /// Upper clamp of a host's TTL, and the TTL of a host that sent no interval.
    pub host_ttl_max_ms: u64,
    /// How long a finished peer stays a parent after its last message.
    pub peer_ttl_ms: u64,
    /// How long a task without peers is remembered.
    pub task_ttl_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            seeds_per_task: 1,
            candidate_parents_max: 4,
            max_hosts: 10_000,
            max_tasks: 100_000,
            max_peers: 1_000_000,
            max_pieces_per_task: 1 << 20,
            max_blocked_parents_per_peer: 64,
            host_ttl_min_ms: 30_000,
            host_ttl_max_ms: 3_600_000,
            peer_ttl_ms: 86_400_000,
            task_ttl_ms: 3_600_000,
        }
    }
}

/// Why a message was refused; the glue maps it to a gRPC status.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    /// The message is malformed (gRPC INVALID_ARGUMENT).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The message arrived in the wrong state, e.g. before `RegisterPeerRequest`
    /// (gRPC FAILED_PRECONDITION).
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// The host, task or peer is unknown (gRPC NOT_FOUND).
    #[error("not found: {0}")]
    NotFound(String),
    /// A bound of [`Limits`] is reached (gRPC RESOURCE_EXHAUSTED).
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    /// The request asks for something hawker does not do (gRPC UNIMPLEMENTED).
    #[error("unimplemented: {0}")]
    Unimplemented(String),
}

/// An order for a seed host to fetch a task from origin (the download as the child sent it,
/// with its headers, so the seed can forward them).
#[derive(Debug, Clone, PartialEq)]
pub struct SeedOrder {
    /// The seed host that should fetch.
    pub seed_host_id: String,
    /// The task to fetch.
    pub task_id: String,
    /// The child's download request (url, headers, piece length...).
    pub download: Download,
}

/// What the glue must do after a message of an `AnnouncePeer` call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Step {
    /// The response to send on the call, if any.
    pub response: Option<AnnouncePeerResponse>,
    /// End the call with status OK after sending `response`.
    pub close: bool,
    /// Seeds to start fetching from origin.
    pub seed_orders: Vec<SeedOrder>,
}

impl Step {
    fn nothing() -> Step {
        Step::default()
    }
    fn close() -> Step {
        Step {
            close: true,
            ..Step::default()
        }
    }
    fn respond(response: Response) -> Step {
        Step {
            response: Some(AnnouncePeerResponse {
                response: Some(response),
            }),
            ..Step::default()
        }
    }
}

/// Per-call state the glue keeps for one `AnnouncePeer` stream.
#[derive(Debug, Default, Clone)]
pub struct Session {
    /// `(task_id, peer_id)` once the call registered.
    registered: Option<(String, String)>,
    /// A terminal message was handled; the call is closing.
    done: bool,
}

impl Session {
    /// The peer id this call registered, if any.
    pub fn peer_id(&self) -> Option<&str> {
        self.registered.as_ref().map(|(_, p)| p.as_str())
    }
    /// True once a terminal message (finished/failed) was handled.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// The lifecycle of a peer, as reported by its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Registered, scheduling answered, download not started.
    Registered,
    /// Downloading from parents.
    Running,
    /// Downloading from origin.
    BackToSource,
    /// Holds the whole task.
    Succeeded,
    /// Gave up.
    Failed,
}

impl PeerState {
    fn as_str(self) -> &'static str {
        match self {
            PeerState::Registered => "Pending",
            PeerState::Running => "Running",
            PeerState::BackToSource => "BackToSource",
            PeerState::Succeeded => "Succeeded",
            PeerState::Failed => "Failed",
        }
    }
}

#[derive(Debug, Clone)]
struct HostEntry {
    host: Host,
    is_seed: bool,
    ttl: Duration,
    last_seen: Instant,
    /// Children currently scheduled to download from this host (its load).
    children: u32,
    /// Peers on this host.
    peers: HashSet<String>,
}

#[derive(Debug, Clone)]
struct TaskEntry {
    download: Download,
    content_length: Option<u64>,
    piece_count: Option<u32>,
    peers: HashSet<String>,
    /// Seeds ordered to fetch this task.
    seed_ordered: HashSet<String>,
    /// Seeds whose fetch of this task failed.
    seed_failed: HashSet<String>,
    created_at: SystemTime,
    last_seen: Instant,
}

#[derive(Debug, Clone)]
struct PeerEntry {
    task_id: String,
    host_id: String,
    state: PeerState,
    pieces: HashSet<u32>,
    /// Parents not to offer again, oldest first.
    blocked: Vec<String>,
    /// Host ids of the parents currently offered (counted in their `children`).
    parent_hosts: Vec<String>,
    created_at: SystemTime,
    last_seen: Instant,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One host, as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostView {
    /// Host id (`{ip}-{hostname}`, `-seed` for seeds).
    pub id: String,
    /// Host name.
    pub hostname: String,
    /// The IP peers reach it at.
    pub ip: String,
    /// Its upload gRPC port.
    pub port: i32,
    /// A seed (announced a non-zero host type).
    pub seed: bool,
    /// Children currently scheduled to it.
    pub children: u32,
    /// Its peers (tasks it holds or downloads).
    pub peers: usize,
    /// Milliseconds since its last announce.
    pub last_seen_ms_ago: u64,
    /// Its time to live without an announce.
    pub ttl_ms: u64,
}

/// One task, as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskSnapshot {
    /// Task id.
    pub id: String,
    /// Origin URL (query string removed).
    pub url: String,
    /// Content length, once a client told it.
    pub content_length: Option<u64>,
    /// Piece length, once a client told it.
    pub piece_length: Option<u64>,
    /// Piece count, once a client told it.
    pub piece_count: Option<u32>,
    /// Peer ids of the task.
    pub peers: Vec<String>,
    /// Seed hosts ordered to fetch it.
    pub seeds_ordered: Vec<String>,
    /// Seed hosts whose fetch failed.
    pub seeds_failed: Vec<String>,
    /// Per piece number: the peers that reported holding it.
    pub piece_holders: Vec<Vec<String>>,
}

/// One peer, as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeerView {
    /// Peer id.
    pub id: String,
    /// Its task.
    pub task_id: String,
    /// Its host.
    pub host_id: String,
    /// Its state (`Pending`, `Running`, `BackToSource`, `Succeeded`, `Failed`).
    pub state: &'static str,
    /// Pieces it reported.
    pub pieces: usize,
    /// Hosts of the parents it was offered last.
    pub parent_hosts: Vec<String>,
    /// Parents it will not be offered again.
    pub blocked_parents: Vec<String>,
    /// Milliseconds since its last message.
    pub last_seen_ms_ago: u64,
}

/// The peer id hawker uses for a seed host's copy of a task.
pub fn seed_peer_id(seed_host_id: &str, task_id: &str) -> String {
    format!("{seed_host_id}-{task_id}-seed")
}

/// The in-memory scheduler. See the module doc.
#[derive(Debug)]
pub struct Scheduler {
    limits: Limits,
    hosts: HashMap<String, HostEntry>,
    tasks: HashMap<String, TaskEntry>,
    peers: HashMap<String, PeerEntry>,
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new(limits: Limits) -> Scheduler {
        assert!(
            limits.seeds_per_task >= 1,
            "seeds_per_task must be at least 1"
        );
        assert!(
            limits.candidate_parents_max >= 1,
            "candidate_parents_max must be at least 1"
        );
        assert!(limits.host_ttl_min_ms <= limits.host_ttl_max_ms);
        Scheduler {
            limits,
            hosts: HashMap::new(),
            tasks: HashMap::new(),
            peers: HashMap::new(),
        }
    }

    /// Numbers of known hosts, tasks and peers.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.hosts.len(), self.tasks.len(), self.peers.len())
    }

    // ----- hosts -------------------------------------------------------------------------

    /// `AnnounceHost`: remember or refresh a host. `interval` is the client's announce period;
    /// the host expires after 3 of them without an announce (clamped, see [`Limits`]).
    pub fn handle_announce_host(
        &mut self,
        now: Instant,
        host: Host,
        interval: Option<Duration>,
    ) -> Result<(), ScheduleError> {
        if host.id.is_empty() {
            return Err(ScheduleError::InvalidArgument("host.id is empty".into()));
        }
        if host.ip.parse::<std::net::IpAddr>().is_err() {
            return Err(ScheduleError::InvalidArgument(format!(
                "host.ip {:?} is not an IP literal",
                host.ip
            )));
        }
        if !(1..=65535).contains(&host.port) {
            return Err(ScheduleError::InvalidArgument(format!(
                "host.port {} is not a port",
                host.port
            )));
        }
        let ttl_ms = interval
            .map(|i| u64::try_from(i.as_millis().saturating_mul(3)).unwrap_or(u64::MAX))
            .unwrap_or(self.limits.host_ttl_max_ms)
            .clamp(self.limits.host_ttl_min_ms, self.limits.host_ttl_max_ms);
        let is_seed = host.r#type != 0;
        // Keep only what scheduling and answers need: the metrics blocks can be kilobytes.
        let slim = Host {
            id: host.id.clone(),
            r#type: host.r#type,
            hostname: host.hostname,
            ip: host.ip,
            port: host.port,
            download_port: host.download_port,
            os: host.os,
            platform: host.platform,
            scheduler_cluster_id: host.scheduler_cluster_id,
            disable_shared: host.disable_shared,
            proxy_port: host.proxy_port,
            name: host.name,
            ..Host::default()
        };
        match self.hosts.get_mut(&slim.id) {
            Some(entry) => {
                entry.host = slim;
                entry.is_seed = is_seed;
                entry.ttl = Duration::from_millis(ttl_ms);
                entry.last_seen = now;
            }
            None => {
                if self.hosts.len() >= self.limits.max_hosts {
                    return Err(ScheduleError::ResourceExhausted(format!(
                        "max_hosts {} reached",
                        self.limits.max_hosts
                    )));
                }
                self.hosts.insert(
                    slim.id.clone(),
                    HostEntry {
                        host: slim,
                        is_seed,
                        ttl: Duration::from_millis(ttl_ms),
                        last_seen: now,
                        children: 0,
                        peers: HashSet::new(),
                    },
                );
            }
        }
        Ok(())
    }

    /// `DeleteHost`: forget a host and its peers. Unknown hosts are fine (idempotent).
    pub fn handle_delete_host(&mut self, host_id: &str) {
        if let Some(entry) = self.hosts.remove(host_id) {
            for peer_id in entry.peers {
                self.remove_peer(&peer_id);
            }
        }
    }

    /// The host record of `host_id` as last announced, if it is known.
    pub fn host(&self, host_id: &str) -> Option<&Host> {
        self.hosts.get(host_id).map(|h| &h.host)
    }

    /// `ListHosts`: the known hosts (trimmed to identity and ports).
    pub fn list_hosts(&self) -> Vec<Host> {
        self.hosts.values().map(|h| h.host.clone()).collect()
    }

    // ----- the AnnouncePeer call ---------------------------------------------------------

    /// One message of an `AnnouncePeer` call. The first must be `RegisterPeerRequest`, and all
    /// must name the registered task and peer.
    pub fn handle_announce(
        &mut self,
        now: Instant,
        session: &mut Session,
        host_id: &str,
        task_id: &str,
        peer_id: &str,
        request: Option<Request>,
    ) -> Result<Step, ScheduleError> {
        let Some(request) = request else {
            return Err(ScheduleError::InvalidArgument(
                "AnnouncePeerRequest without a request".into(),
            ));
        };
        if session.done {
            return Err(ScheduleError::FailedPrecondition(
                "message after the peer finished or failed".into(),
            ));
        }
        if let Request::RegisterPeerRequest(register) = request {
            if session.registered.is_some() {
                return Err(ScheduleError::FailedPrecondition(
                    "RegisterPeerRequest sent twice on one call".into(),
                ));
            }
            let download = register.download.ok_or_else(|| {
                ScheduleError::InvalidArgument("register without download".into())
            })?;
            let step = self.handle_register(now, host_id, task_id, peer_id, download)?;
            session.registered = Some((task_id.to_string(), peer_id.to_string()));
            if step.close {
                session.done = true;
            }
            return Ok(step);
        }
        match &session.registered {
            None => {
                return Err(ScheduleError::FailedPrecondition(
                    "first message of AnnouncePeer must be RegisterPeerRequest".into(),
                ))
            }
            Some((t, p)) if t != task_id || p != peer_id => {
                return Err(ScheduleError::InvalidArgument(format!(
                    "call registered task {t} peer {p}, message names task {task_id} peer {peer_id}"
                )))
            }
            Some(_) => {}
        }
        let step = match request {
            Request::RegisterPeerRequest(_) => unreachable!("handled above"),
            Request::DownloadPeerStartedRequest(_) => {
                self.set_state(now, peer_id, PeerState::Running)?;
                Step::nothing()
            }
            Request::DownloadPeerBackToSourceStartedRequest(_) => {
                self.set_state(now, peer_id, PeerState::BackToSource)?;
                Step::nothing()
            }
            Request::ReschedulePeerRequest(r) => {
                let ids: Vec<String> = r.candidate_parents.into_iter().map(|p| p.id).collect();
                self.handle_reschedule(now, peer_id, &ids)?
            }
            Request::DownloadPieceFinishedRequest(r) => {
                self.piece_landed(now, peer_id, r.piece.as_ref())?;
                Step::nothing()
            }
            Request::DownloadPieceBackToSourceFinishedRequest(r) => {
                self.piece_landed(now, peer_id, r.piece.as_ref())?;
                Step::nothing()
            }
            Request::DownloadPieceFailedRequest(r) => {
                self.handle_piece_failed(now, peer_id, &r.parent_id)?;
                Step::nothing()
            }
            Request::DownloadPieceBackToSourceFailedRequest(_) => {
                // The client retries the piece from origin itself; nothing to schedule.
                self.touch(now, peer_id)?;
                Step::nothing()
            }
            Request::DownloadPeerFinishedRequest(_)
            | Request::DownloadPeerBackToSourceFinishedRequest(_) => {
                self.handle_peer_finished(now, peer_id)?;
                Step::close()
            }
            Request::DownloadPeerFailedRequest(_)
            | Request::DownloadPeerBackToSourceFailedRequest(_) => {
                self.remove_peer(peer_id);
                Step::close()
            }
        };
        if step.close {
            session.done = true;
        }
        Ok(step)
    }

    /// `RegisterPeerRequest`: create the task and peer, answer with a scheduling decision.
    pub fn handle_register(
        &mut self,
        now: Instant,
        host_id: &str,
        task_id: &str,
        peer_id: &str,
        download: Download,
    ) -> Result<Step, ScheduleError> {
        TaskId::parse(task_id.as_bytes())
            .map_err(|e| ScheduleError::InvalidArgument(format!("task_id: {e}")))?;
        if host_id.is_empty() || peer_id.is_empty() {
            return Err(ScheduleError::InvalidArgument(
                "empty host_id or peer_id".into(),
            ));
        }
        if download.r#type != 0 {
            return Err(ScheduleError::Unimplemented(format!(
                "task type {} (hawker schedules STANDARD tasks only)",
                download.r#type
            )));
        }
        let piece_count = match download.actual_piece_count {
            Some(n) if n > u64::from(self.limits.max_pieces_per_task) => {
                return Err(ScheduleError::ResourceExhausted(format!(
                    "task has {n} pieces, max_pieces_per_task is {}",
                    self.limits.max_pieces_per_task
                )))
            }
            // In range per the check above.
            Some(n) => Some(n as u32),
            None => None,
        };
        if self.peers.contains_key(peer_id) {
            return Err(ScheduleError::FailedPrecondition(format!(
                "peer {peer_id} is already registered"
            )));
        }
        if self.peers.len() >= self.limits.max_peers {
            return Err(ScheduleError::ResourceExhausted(format!(
                "max_peers {} reached",
                self.limits.max_peers
            )));
        }
        if !self.tasks.contains_key(task_id) && self.tasks.len() >= self.limits.max_tasks {
            return Err(ScheduleError::ResourceExhausted(format!(
                "max_tasks {} reached",
                self.limits.max_tasks
            )));
        }
        let metadata_only = download.metadata_only;
        let need_back_to_source = download.need_back_to_source;
        let content_length = download.actual_content_length;
        let task = self
            .tasks
            .entry(task_id.to_string())
            .or_insert_with(|| TaskEntry {
                download: download.clone(),
                content_length,
                piece_count,
                peers: HashSet::new(),
                seed_ordered: HashSet::new(),
                seed_failed: HashSet::new(),
                created_at: SystemTime::now(),
                last_seen: now,
            });
        task.last_seen = now;
        if task.content_length.is_none() {
            task.content_length = content_length;
        }
        if task.piece_count.is_none() {
            task.piece_count = piece_count;
        }
        task.peers.insert(peer_id.to_string());
        if let Some(host) = self.hosts.get_mut(host_id) {
            host.peers.insert(peer_id.to_string());
        }
        self.peers.insert(
            peer_id.to_string(),
            PeerEntry {
                task_id: task_id.to_string(),
                host_id: host_id.to_string(),
                state: PeerState::Registered,
                pieces: HashSet::new(),
                blocked: Vec::new(),
                parent_hosts: Vec::new(),
                created_at: SystemTime::now(),
                last_seen: now,
            },
        );

        if metadata_only {
            // The client holds the whole task already: it is a parent from now on.
            if let Some(peer) = self.peers.get_mut(peer_id) {
                peer.state = PeerState::Succeeded;
                if let Some(n) = piece_count {
                    peer.pieces.extend(0..n);
                }
            }
            return Ok(Step::respond(Response::MetadataOnlyResponse(
                MetadataOnlyResponse {},
            )));
        }
        if content_length == Some(0) {
            return Ok(Step::respond(Response::EmptyTaskResponse(
                EmptyTaskResponse {},
            )));
        }
        if need_back_to_source {
            return Ok(Step::respond(Response::NeedBackToSourceResponse(
                NeedBackToSourceResponse {
                    description: Some("the client asked to go back to source".into()),
                },
            )));
        }
        Ok(self.schedule(peer_id))
    }

    /// `ReschedulePeerRequest`: block the parents the client gives back, answer again.
    pub fn handle_reschedule(
        &mut self,
        now: Instant,
        peer_id: &str,
        returned_parents: &[String],
    ) -> Result<Step, ScheduleError> {
        self.touch(now, peer_id)?;
        for id in returned_parents {
            self.block(peer_id, id);
        }
        Ok(self.schedule(peer_id))
    }

    /// `DownloadPieceFailedRequest`: never offer `parent_id` to this peer again.
    pub fn handle_piece_failed(
        &mut self,
        now: Instant,
        peer_id: &str,
        parent_id: &str,
    ) -> Result<(), ScheduleError> {
        self.touch(now, peer_id)?;
        if !parent_id.is_empty() {
            self.block(peer_id, parent_id);
        }
        Ok(())
    }

    /// `DownloadPeerFinishedRequest` (or its back-to-source twin): the peer holds the task.
    pub fn handle_peer_finished(
        &mut self,
        now: Instant,
        peer_id: &str,
    ) -> Result<(), ScheduleError> {
        self.set_state(now, peer_id, PeerState::Succeeded)?;
        self.release_parents(peer_id);
        if let Some(peer) = self.peers.get_mut(peer_id) {
            if let Some(n) = self.tasks.get(&peer.task_id).and_then(|t| t.piece_count) {
                peer.pieces.extend(0..n);
            }
        }
        Ok(())
    }

    /// The call of `session` ended (client gone, error, or after a terminal message). A peer
    /// that did not finish is forgotten; a finished one stays a parent.
    pub fn handle_stream_closed(&mut self, session: &Session) {
        let Some((_, peer_id)) = &session.registered else {
            return;
        };
        let finished = self
            .peers
            .get(peer_id)
            .is_some_and(|p| p.state == PeerState::Succeeded);
        if !finished {
            self.remove_peer(peer_id);
        }
    }

    /// The seeding side reports that `seed_host_id` could not fetch `task_id`.
    pub fn handle_seed_failed(&mut self, task_id: &str, seed_host_id: &str) {
        if let Some(task) = self.tasks.get_mut(task_id) {
            task.seed_failed.insert(seed_host_id.to_string());
        }
    }

    // ----- unary RPCs --------------------------------------------------------------------

    /// `DeletePeer`: forget the peer (idempotent).
    pub fn handle_delete_peer(&mut self, peer_id: &str) {
        self.remove_peer(peer_id);
    }

    /// `DeleteTask` from a host: that host no longer holds the task (idempotent).
    pub fn handle_delete_task(&mut self, host_id: &str, task_id: &str) {
        let victims: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| p.task_id == task_id && p.host_id == host_id)
            .map(|(id, _)| id.clone())
            .collect();
        for id in victims {
            self.remove_peer(&id);
        }
    }

    /// `StatTask`.
    pub fn stat_task(&self, task_id: &str) -> Result<Task, ScheduleError> {
        let task = self
            .tasks
            .get(task_id)
            .ok_or_else(|| ScheduleError::NotFound(format!("task {task_id}")))?;
        let has_available_peer = task.peers.iter().any(|p| {
            self.peers
                .get(p)
                .is_some_and(|p| p.state == PeerState::Succeeded)
        });
        Ok(Task {
            id: task_id.to_string(),
            r#type: 0,
            url: task.download.url.clone(),
            digest: task.download.digest.clone(),
            tag: task.download.tag.clone(),
            application: task.download.application.clone(),
            filtered_query_params: task.download.filtered_query_params.clone(),
            content_length: task.content_length.unwrap_or(0),
            piece_count: task.piece_count.unwrap_or(0),
            state: if has_available_peer {
                "Succeeded"
            } else {
                "Running"
            }
            .to_string(),
            peer_count: u32::try_from(task.peers.len()).unwrap_or(u32::MAX),
            has_available_peer,
            created_at: Some(task.created_at.into()),
            ..Task::default()
        })
    }

    /// `StatPeer`.
    pub fn stat_peer(&self, peer_id: &str) -> Result<Peer, ScheduleError> {
        let peer = self
            .peers
            .get(peer_id)
            .ok_or_else(|| ScheduleError::NotFound(format!("peer {peer_id}")))?;
        let mut pieces: Vec<u32> = peer.pieces.iter().copied().collect();
        pieces.sort_unstable();
        Ok(Peer {
            id: peer_id.to_string(),
            state: peer.state.as_str().to_string(),
            host: self.hosts.get(&peer.host_id).map(|h| h.host.clone()),
            pieces: pieces
                .into_iter()
                .map(|number| Piece {
                    number,
                    ..Piece::default()
                })
                .collect(),
            created_at: Some(peer.created_at.into()),
            ..Peer::default()
        })
    }

    // ----- admin views -------------------------------------------------------------------

    /// The known hosts for the admin API (`GET /hosts`), sorted by id, at most `max`.
    pub fn host_views(&self, now: Instant, max: usize) -> Vec<HostView> {
        let mut v: Vec<HostView> = self
            .hosts
            .values()
            .map(|h| HostView {
                id: h.host.id.clone(),
                hostname: h.host.hostname.clone(),
                ip: h.host.ip.clone(),
                port: h.host.port,
                seed: h.is_seed,
                children: h.children,
                peers: h.peers.len(),
                last_seen_ms_ago: millis(now.saturating_duration_since(h.last_seen)),
                ttl_ms: millis(h.ttl),
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v.truncate(max);
        v
    }

    /// The known tasks for the admin API (`GET /tasks`), sorted by id, at most `max`: each with
    /// its peers and, per piece, the peers that reported holding it (seeds' own copies are not
    /// peers here: the caller adds the store's view).
    pub fn task_views(&self, max: usize) -> Vec<TaskSnapshot> {
        let mut ids: Vec<&String> = self.tasks.keys().collect();
        ids.sort();
        ids.truncate(max);
        ids.into_iter()
            .filter_map(|id| {
                let t = self.tasks.get(id)?;
                let mut peers: Vec<String> = t.peers.iter().cloned().collect();
                peers.sort();
                let count = t.piece_count.unwrap_or(0);
                let mut holders: Vec<Vec<String>> = vec![Vec::new(); count as usize];
                for pid in &peers {
                    if let Some(p) = self.peers.get(pid) {
                        for &n in &p.pieces {
                            if let Some(slot) = holders.get_mut(n as usize) {
                                slot.push(pid.clone());
                            }
                        }
                    }
                }
                let mut ordered: Vec<String> = t.seed_ordered.iter().cloned().collect();
                ordered.sort();
                let mut failed: Vec<String> = t.seed_failed.iter().cloned().collect();
                failed.sort();
                Some(TaskSnapshot {
                    id: id.clone(),
                    url: crate::origin::http::redact_url(&t.download.url).to_string(),
                    content_length: t.content_length,
                    piece_length: t.download.actual_piece_length.or(t.download.piece_length),
                    piece_count: t.piece_count,
                    peers,
                    seeds_ordered: ordered,
                    seeds_failed: failed,
                    piece_holders: holders,
                })
            })
            .collect()
    }

    /// The known peers for the admin API (`GET /peers`), sorted by id, at most `max`.
    pub fn peer_views(&self, now: Instant, max: usize) -> Vec<PeerView> {
        let mut ids: Vec<&String> = self.peers.keys().collect();
        ids.sort();
        ids.truncate(max);
        ids.into_iter()
            .filter_map(|id| {
                let p = self.peers.get(id)?;
                let mut parents = p.parent_hosts.clone();
                parents.sort();
                Some(PeerView {
                    id: id.clone(),
                    task_id: p.task_id.clone(),
                    host_id: p.host_id.clone(),
                    state: p.state.as_str(),
                    pieces: p.pieces.len(),
                    parent_hosts: parents,
                    blocked_parents: p.blocked.clone(),
                    last_seen_ms_ago: millis(now.saturating_duration_since(p.last_seen)),
                })
            })
            .collect()
    }

    // ----- expiry ------------------------------------------------------------------------

    /// Drops hosts, peers and tasks whose time is up (see the module doc). Returns how many
    /// hosts, peers and tasks were dropped.
    pub fn expire(&mut self, now: Instant) -> (usize, usize, usize) {
        let dead_hosts: Vec<String> = self
            .hosts
            .iter()
            .filter(|(_, h)| now.saturating_duration_since(h.last_seen) > h.ttl)
            .map(|(id, _)| id.clone())
            .collect();
        let peers_before = self.peers.len();
        for id in &dead_hosts {
            self.handle_delete_host(id);
        }
        let peer_ttl = Duration::from_millis(self.limits.peer_ttl_ms);
        let dead_peers: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.last_seen) > peer_ttl)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &dead_peers {
            self.remove_peer(id);
        }
        let task_ttl = Duration::from_millis(self.limits.task_ttl_ms);
        let tasks_before = self.tasks.len();
        self.tasks.retain(|_, t| {
            !t.peers.is_empty() || now.saturating_duration_since(t.last_seen) <= task_ttl
        });
        (
            dead_hosts.len(),
            peers_before - self.peers.len(),
            tasks_before - self.tasks.len(),
        )
    }

    // ----- internals ---------------------------------------------------------------------

    fn touch(&mut self, now: Instant, peer_id: &str) -> Result<&mut PeerEntry, ScheduleError> {
        let peer = self
            .peers
            .get_mut(peer_id)
            .ok_or_else(|| ScheduleError::NotFound(format!("peer {peer_id}")))?;
        peer.last_seen = now;
        if let Some(task) = self.tasks.get_mut(&peer.task_id) {
            task.last_seen = now;
        }
        Ok(peer)
    }

    fn set_state(
        &mut self,
        now: Instant,
        peer_id: &str,
        state: PeerState,
    ) -> Result<(), ScheduleError> {
        self.touch(now, peer_id)?.state = state;
        Ok(())
    }

    fn piece_landed(
        &mut self,
        now: Instant,
        peer_id: &str,
        piece: Option<&Piece>,
    ) -> Result<(), ScheduleError> {
        let piece = piece.ok_or_else(|| ScheduleError::InvalidArgument("piece missing".into()))?;
        let task_id = self.touch(now, peer_id)?.task_id.clone();
        let limit = self
            .tasks
            .get(&task_id)
            .and_then(|t| t.piece_count)
            .unwrap_or(self.limits.max_pieces_per_task);
        if piece.number >= limit {
            return Err(ScheduleError::InvalidArgument(format!(
                "piece {} is beyond the task's {limit} pieces",
                piece.number
            )));
        }
        if let Some(peer) = self.peers.get_mut(peer_id) {
            peer.pieces.insert(piece.number);
        }
        Ok(())
    }

    fn block(&mut self, peer_id: &str, parent_id: &str) {
        let max = self.limits.max_blocked_parents_per_peer;
        if let Some(peer) = self.peers.get_mut(peer_id) {
            if !peer.blocked.iter().any(|b| b == parent_id) {
                if peer.blocked.len() >= max {
                    peer.blocked.remove(0);
                }
                peer.blocked.push(parent_id.to_string());
            }
        }
    }

    fn release_parents(&mut self, peer_id: &str) {
        let Some(peer) = self.peers.get_mut(peer_id) else {
            return;
        };
        for host_id in std::mem::take(&mut peer.parent_hosts) {
            if let Some(h) = self.hosts.get_mut(&host_id) {
                h.children = h.children.saturating_sub(1);
            }
        }
    }

    fn remove_peer(&mut self, peer_id: &str) {
        self.release_parents(peer_id);
        let Some(peer) = self.peers.remove(peer_id) else {
            return;
        };
        if let Some(task) = self.tasks.get_mut(&peer.task_id) {
            task.peers.remove(peer_id);
        }
        if let Some(host) = self.hosts.get_mut(&peer.host_id) {
            host.peers.remove(peer_id);
        }
    }

    /// Picks the candidate parents of `peer_id` (see the module doc) and records the load.
    fn schedule(&mut self, peer_id: &str) -> Step {
        self.release_parents(peer_id);
        let Some(peer) = self.peers.get(peer_id) else {
            return Step::respond(Response::NeedBackToSourceResponse(
                NeedBackToSourceResponse {
                    description: Some("peer vanished".into()),
                },
            ));
        };
        let task_id = peer.task_id.clone();
        let child_host = peer.host_id.clone();
        let blocked: HashSet<&str> = peer.blocked.iter().map(String::as_str).collect();
        let Some(task) = self.tasks.get(&task_id) else {
            return Step::respond(Response::NeedBackToSourceResponse(
                NeedBackToSourceResponse {
                    description: Some("task vanished".into()),
                },
            ));
        };
        let max = self.limits.candidate_parents_max;
        let mut chosen: Vec<(String, String)> = Vec::new(); // (parent peer id, host id)
        let mut orders = Vec::new();

        // 1. Responsible seeds, by rendezvous hashing over all live seeds (so the choice does not
        //    depend on who asks), then filtered for this child.
        let seeds = hrw::rank(
            &task_id,
            self.hosts
                .values()
                .filter(|h| h.is_seed)
                .map(|h| h.host.id.as_str()),
        );
        for seed in seeds.into_iter().take(self.limits.seeds_per_task) {
            let parent_id = seed_peer_id(seed, &task_id);
            if seed == child_host
                || blocked.contains(parent_id.as_str())
                || task.seed_failed.contains(seed)
            {
                continue;
            }
            if !task.seed_ordered.contains(seed) {
                orders.push(SeedOrder {
                    seed_host_id: seed.to_string(),
                    task_id: task_id.clone(),
                    download: task.download.clone(),
                });
            }
            chosen.push((parent_id, seed.to_string()));
        }

        // 2. Peers of the task holding pieces, least loaded host first, most pieces first.
        let mut others: Vec<(u32, std::cmp::Reverse<usize>, &str, &str)> = task
            .peers
            .iter()
            .filter(|id| id.as_str() != peer_id && !blocked.contains(id.as_str()))
            .filter_map(|id| {
                let p = self.peers.get(id)?;
                if p.pieces.is_empty() || p.host_id == child_host || p.state == PeerState::Failed {
                    return None;
                }
                let host = self.hosts.get(&p.host_id)?;
                Some((
                    host.children,
                    std::cmp::Reverse(p.pieces.len()),
                    id.as_str(),
                    p.host_id.as_str(),
                ))
            })
            .collect();
        others.sort_unstable();
        for (_, _, id, host_id) in others {
            if chosen.len() >= max {
                break;
            }
            chosen.push((id.to_string(), host_id.to_string()));
        }
        chosen.truncate(max);
        orders.retain(|o| chosen.iter().any(|(_, h)| *h == o.seed_host_id));

        if chosen.is_empty() {
            return Step::respond(Response::NeedBackToSourceResponse(
                NeedBackToSourceResponse {
                    description: Some("no seed or peer can serve this task".into()),
                },
            ));
        }
        let candidate_parents: Vec<Peer> = chosen
            .iter()
            .filter_map(|(id, host_id)| {
                let host = self.hosts.get(host_id)?;
                Some(Peer {
                    id: id.clone(),
                    state: "Running".into(),
                    host: Some(host.host.clone()),
                    ..Peer::default()
                })
            })
            .collect();
        if let Some(task) = self.tasks.get_mut(&task_id) {
            for o in &orders {
                task.seed_ordered.insert(o.seed_host_id.clone());
            }
        }
        for (_, host_id) in &chosen {
            if let Some(h) = self.hosts.get_mut(host_id) {
                h.children = h.children.saturating_add(1);
            }
        }
        if let Some(peer) = self.peers.get_mut(peer_id) {
            peer.parent_hosts = chosen.into_iter().map(|(_, h)| h).collect();
        }
        Step {
            response: Some(AnnouncePeerResponse {
                response: Some(Response::NormalTaskResponse(NormalTaskResponse {
                    candidate_parents,
                })),
            }),
            close: false,
            seed_orders: orders,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::scheduler::v2::{
        DownloadPeerFinishedRequest, DownloadPeerStartedRequest, DownloadPieceFailedRequest,
        DownloadPieceFinishedRequest, RegisterPeerRequest, ReschedulePeerRequest,
    };

    const TASK: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn host(id: &str, ip: &str, seed: bool) -> Host {
        Host {
            id: id.into(),
            r#type: u32::from(seed),
            ip: ip.into(),
            port: 4000,
            hostname: id.into(),
            ..Host::default()
        }
    }

    fn download(len: u64) -> Download {
        Download {
            url: "http://origin/blob".into(),
            actual_content_length: Some(len),
            actual_piece_length: Some(4 << 20),
            actual_piece_count: Some(len.div_ceil(4 << 20)),
            ..Download::default()
        }
    }

    fn parents(step: &Step) -> Vec<String> {
        match step.response.as_ref().and_then(|r| r.response.as_ref()) {
            Some(Response::NormalTaskResponse(n)) => {
                n.candidate_parents.iter().map(|p| p.id.clone()).collect()
            }
            other => panic!("expected NormalTaskResponse, got {other:?}"),
        }
    }

    fn is_back_to_source(step: &Step) -> bool {
        matches!(
            step.response.as_ref().and_then(|r| r.response.as_ref()),
            Some(Response::NeedBackToSourceResponse(_))
        )
    }

    fn sched_with_seeds(seeds: &[&str]) -> (Scheduler, Instant) {
        let now = Instant::now();
        let mut s = Scheduler::new(Limits::default());
        for (i, id) in seeds.iter().enumerate() {
            s.handle_announce_host(now, host(id, &format!("10.0.0.{}", i + 1), true), None)
                .expect("announce seed");
        }
        s.handle_announce_host(now, host("child", "10.0.1.1", false), None)
            .expect("announce child");
        (s, now)
    }

    #[test]
    fn register_offers_the_responsible_seed_and_orders_it_once() {
        let (mut s, now) = sched_with_seeds(&["s1", "s2", "s3"]);
        let step = s
            .handle_register(now, "child", TASK, "p1", download(10 << 20))
            .expect("register");
        let expected = hrw::rank(TASK, ["s1", "s2", "s3"])[0];
        assert_eq!(parents(&step), vec![seed_peer_id(expected, TASK)]);
        assert_eq!(step.seed_orders.len(), 1);
        assert_eq!(step.seed_orders[0].seed_host_id, expected);
        // A second child of the same task: same seed, no second order.
        s.handle_announce_host(now, host("child2", "10.0.1.2", false), None)
            .expect("announce");
        let step = s
            .handle_register(now, "child2", TASK, "p2", download(10 << 20))
            .expect("register");
        assert_eq!(parents(&step), vec![seed_peer_id(expected, TASK)]);
        assert!(step.seed_orders.is_empty());
    }

    #[test]
    fn empty_content_and_no_seed_and_metadata_only() {
        let (mut s, now) = sched_with_seeds(&[]);
        let step = s
            .handle_register(now, "child", TASK, "p0", download(0))
            .expect("register");
        assert!(matches!(
            step.response.and_then(|r| r.response),
            Some(Response::EmptyTaskResponse(_))
        ));
        let step = s
            .handle_register(now, "child", TASK, "p1", download(1 << 30))
            .expect("register");
        assert!(is_back_to_source(&step), "no seed: back to source");
        let step = s
            .handle_register(
                now,
                "child",
                TASK,
                "p2",
                Download {
                    metadata_only: true,
                    ..download(1 << 30)
                },
            )
            .expect("register");
        assert!(matches!(
            step.response.and_then(|r| r.response),
            Some(Response::MetadataOnlyResponse(_))
        ));
    }

    #[test]
    fn peers_with_pieces_follow_seeds_ordered_by_load() {
        let (mut s, now) = sched_with_seeds(&["s1"]);
        for (i, h) in ["a", "b", "c"].iter().enumerate() {
            s.handle_announce_host(now, host(h, &format!("10.0.2.{i}"), false), None)
                .expect("announce");
        }
        let mut sess = Session::default();
        let reg = |d| {
            Some(Request::RegisterPeerRequest(RegisterPeerRequest {
                download: Some(d),
            }))
        };
        // Peer on host a holds 2 pieces, peer on host b holds 1.
        for (h, p, n) in [("a", "pa", 2u32), ("b", "pb", 1)] {
            let mut sess = Session::default();
            s.handle_announce(now, &mut sess, h, TASK, p, reg(download(40 << 20)))
                .expect("register");
            for i in 0..n {
                let piece = Piece {
                    number: i,
                    ..Piece::default()
                };
                s.handle_announce(
                    now,
                    &mut sess,
                    h,
                    TASK,
                    p,
                    Some(Request::DownloadPieceFinishedRequest(
                        DownloadPieceFinishedRequest { piece: Some(piece) },
                    )),
                )
                .expect("piece");
            }
        }
        let step = s
            .handle_announce(now, &mut sess, "c", TASK, "pc", reg(download(40 << 20)))
            .expect("register");
        let got = parents(&step);
        assert_eq!(got[0], seed_peer_id("s1", TASK));
        // pb's registration made host a a parent (load 1); host b has no children: least
        // loaded first, although pa holds more pieces.
        assert_eq!(&got[1..], ["pb", "pa"]);
    }

    #[test]
    fn failed_parent_is_not_offered_again_and_reschedule_blocks_returned_parents() {
        let (mut s, now) = sched_with_seeds(&["s1", "s2"]);
        s.limits.seeds_per_task = 2;
        let mut sess = Session::default();
        let step = s
            .handle_announce(
                now,
                &mut sess,
                "child",
                TASK,
                "p1",
                Some(Request::RegisterPeerRequest(RegisterPeerRequest {
                    download: Some(download(40 << 20)),
                })),
            )
            .expect("register");
        let first = parents(&step);
        assert_eq!(first.len(), 2);
        s.handle_announce(
            now,
            &mut sess,
            "child",
            TASK,
            "p1",
            Some(Request::DownloadPeerStartedRequest(
                DownloadPeerStartedRequest {},
            )),
        )
        .expect("started");
        s.handle_announce(
            now,
            &mut sess,
            "child",
            TASK,
            "p1",
            Some(Request::DownloadPieceFailedRequest(
                DownloadPieceFailedRequest {
                    piece_number: Some(3),
                    parent_id: first[0].clone(),
                    temporary: true,
                },
            )),
        )
        .expect("piece failed");
        let step = s
            .handle_announce(
                now,
                &mut sess,
                "child",
                TASK,
                "p1",
                Some(Request::ReschedulePeerRequest(ReschedulePeerRequest {
                    candidate_parents: vec![],
                    description: None,
                })),
            )
            .expect("reschedule");
        assert_eq!(parents(&step), vec![first[1].clone()]);
        // Returning the remaining parent leaves nothing: back to source.
        let step = s
            .handle_announce(
                now,
                &mut sess,
                "child",
                TASK,
                "p1",
                Some(Request::ReschedulePeerRequest(ReschedulePeerRequest {
                    candidate_parents: vec![Peer {
                        id: first[1].clone(),
                        ..Peer::default()
                    }],
                    description: None,
                })),
            )
            .expect("reschedule");
        assert!(is_back_to_source(&step));
        let step = s
            .handle_announce(
                now,
                &mut sess,
                "child",
                TASK,
                "p1",
                Some(Request::DownloadPeerFinishedRequest(
                    DownloadPeerFinishedRequest {},
                )),
            )
            .expect("finished");
        assert!(step.close && sess.is_done());
        assert_eq!(s.stat_peer("p1").expect("peer").state, "Succeeded");
    }

    #[test]
    fn seed_failure_falls_back_to_source() {
        let (mut s, now) = sched_with_seeds(&["s1"]);
        s.handle_register(now, "child", TASK, "p1", download(8 << 20))
            .expect("register");
        s.handle_seed_failed(TASK, "s1");
        let step = s.handle_reschedule(now, "p1", &[]).expect("reschedule");
        assert!(is_back_to_source(&step));
    }

    #[test]
    fn protocol_errors() {
        let (mut s, now) = sched_with_seeds(&["s1"]);
        let mut sess = Session::default();
        let started = Some(Request::DownloadPeerStartedRequest(
            DownloadPeerStartedRequest {},
        ));
        assert!(matches!(
            s.handle_announce(now, &mut sess, "child", TASK, "p1", started),
            Err(ScheduleError::FailedPrecondition(_))
        ));
        assert!(matches!(
            s.handle_register(now, "child", "not-a-task-id", "p1", download(1)),
            Err(ScheduleError::InvalidArgument(_))
        ));
        let mut big = download(1);
        big.actual_piece_count = Some(u64::from(u32::MAX) + 1);
        assert!(matches!(
            s.handle_register(now, "child", TASK, "p1", big),
            Err(ScheduleError::ResourceExhausted(_))
        ));
        s.handle_register(now, "child", TASK, "p1", download(8 << 20))
            .expect("register");
        let far = Piece {
            number: 2,
            ..Piece::default()
        };
        assert!(matches!(
            s.piece_landed(now, "p1", Some(&far)),
            Err(ScheduleError::InvalidArgument(_))
        ));
    }

    #[test]
    fn expiry_drops_silent_hosts_their_peers_and_then_tasks() {
        let (mut s, now) = sched_with_seeds(&["s1"]);
        s.limits.task_ttl_ms = 2 * s.limits.host_ttl_max_ms;
        s.handle_register(now, "child", TASK, "p1", download(8 << 20))
            .expect("register");
        s.handle_peer_finished(now, "p1").expect("finished");
        let sess = Session {
            registered: Some((TASK.into(), "p1".into())),
            ..Session::default()
        };
        s.handle_stream_closed(&sess);
        assert_eq!(
            s.counts(),
            (2, 1, 1),
            "a finished peer stays after its call"
        );
        // The seed keeps announcing, the child does not.
        let later = now + Duration::from_millis(Limits::default().host_ttl_max_ms + 1);
        s.handle_announce_host(later, host("s1", "10.0.0.1", true), None)
            .expect("announce");
        assert_eq!(s.expire(later), (1, 1, 0));
        let much_later = later + Duration::from_millis(s.limits.task_ttl_ms + 1);
        s.handle_announce_host(much_later, host("s1", "10.0.0.1", true), None)
            .expect("announce");
        assert_eq!(s.expire(much_later), (0, 0, 1));
        assert_eq!(s.counts(), (1, 0, 0));
    }

    #[test]
    fn unfinished_peer_is_dropped_when_its_call_ends_and_load_released() {
        let (mut s, now) = sched_with_seeds(&["s1"]);
        let mut sess = Session::default();
        s.handle_announce(
            now,
            &mut sess,
            "child",
            TASK,
            "p1",
            Some(Request::RegisterPeerRequest(RegisterPeerRequest {
                download: Some(download(8 << 20)),
            })),
        )
        .expect("register");
        assert_eq!(s.hosts["s1"].children, 1);
        s.handle_stream_closed(&sess);
        assert_eq!(s.hosts["s1"].children, 0);
        assert!(s.stat_peer("p1").is_err());
    }
}
