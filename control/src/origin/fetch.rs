//! The fetch of one task: probe the origin, begin (or resume) the task in the store, fetch the
//! missing pieces with checked range requests (or cut the whole body into pieces when the
//! origin ignores ranges), finish. See the parent module for the state machine.
//!
//! Invariants:
//! - A piece reaches `write_piece` only when its response was a 206 with exactly the asked
//!   `Content-Range` (or a 200 for a range covering the whole content), carried the validators
//!   of the probe, and delivered exactly the piece's length. Nothing else is ever written.
//! - At most `concurrent_pieces_per_task` workers per task, each with one reused buffer of one
//!   piece (≤ 64 MiB, the store's bound); the whole-body path uses one buffer.
//! - Every wait on the origin is bounded by `read_timeout_ms` (no progress) and every request
//!   by `piece_attempts` attempts; waiting on the store is done on the blocking pool.
//! - Before the task is removed or finished, every worker has ended, so no write is in flight
//!   and the one `TaskWriter` is free.

use super::http::{parse_content_range, redact_url, ContentRange, Forwarded, Validators};
use super::sidecar::Recorded;
use super::{SeedRequest, SeedStatus, Shared};
use hawker_dataplane::edge::{EdgeMsg, EdgeSender};
use hawker_dataplane::store::{Task, TaskWriter, MAX_PIECE_LENGTH_BYTES};
use hawker_shared::ids::TaskId;
use hawker_shared::layout::{Layout, PieceRange};
use reqwest::header::{HeaderMap, ACCEPT_ENCODING, CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How a task attempt ended badly.
#[derive(Debug)]
enum TaskError {
    /// The origin's content is another version than the one being seeded: start over.
    Changed(String),
    /// Give up with this reason.
    Failed(String),
}

/// How one request ended badly.
#[derive(Debug)]
enum Attempt {
    /// Worth another try (network error, 5xx, short body, stall, unexpected answer).
    Retry(String),
    /// Trying again will not help (e.g. 404, 403).
    Fatal(String),
    /// Another version of the content.
    Changed(String),
}

/// Fetches one task to completion. `Err` carries the reason for the waiting peers.
pub(super) async fn seed_task(
    shared: &Arc<Shared>,
    req: &SeedRequest,
    fwd: &Forwarded,
    tx: &Arc<watch::Sender<SeedStatus>>,
) -> Result<(), String> {
    let client = shared.client.as_ref().map_err(Clone::clone)?;
    let mut changes = 0u32;
    loop {
        match attempt_task(shared, client, req, fwd, tx).await {
            Ok(()) => return Ok(()),
            Err(TaskError::Failed(reason)) => return Err(reason),
            Err(TaskError::Changed(why)) => {
                remove_task(shared, req.task_id).await;
                if changes >= shared.cfg.max_content_changes {
                    return Err(format!(
                        "the origin's content changed while seeding ({why}), {} times, \
                         max_content_changes; the task was removed",
                        changes + 1
                    ));
                }
                changes += 1;
                tracing::warn!(task = %req.task_id, url = redact_url(&req.url), "origin: content changed while seeding ({why}); task removed, starting over");
                tx.send_replace(SeedStatus::Fetching {
                    landed: 0,
                    total: 0,
                });
            }
        }
    }
}

/// The result of the length probe.
struct Probe {
    content_length: u64,
    validators: Validators,
    /// `Some` when the origin ignored the range: its 200 response, to stream whole.
    whole: Option<reqwest::Response>,
}

/// Everything a piece worker needs; shared by the workers of one task.
struct PieceCtx {
    id: TaskId,
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
    layout: Layout,
    validators: Validators,
    read_timeout: Duration,
    attempts: u32,
    cfg: super::OriginConfig,
    edge: EdgeSender,
    writer: Mutex<Option<TaskWriter>>,
    queue: Mutex<VecDeque<u32>>,
    stop: AtomicBool,
    landed: AtomicU32,
    tx: Arc<watch::Sender<SeedStatus>>,
}

impl PieceCtx {
    fn next_piece(&self) -> Option<u32> {
        if self.stop.load(Ordering::Acquire) {
            return None;
        }
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    fn publish(&self) {
        self.tx.send_replace(SeedStatus::Fetching {
            landed: self.landed.load(Ordering::Acquire),
            total: self.layout.piece_count(),
        });
    }

    fn take_writer(&self) -> Option<TaskWriter> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// A GET with the forwarded headers, no content coding, and `range` if given.
    fn get(&self, range: Option<(u64, u64)>) -> reqwest::RequestBuilder {
        let mut rb = self
            .client
            .get(&self.url)
            .headers(self.headers.clone())
            .header(ACCEPT_ENCODING, "identity");
        if let Some((first, last)) = range {
            rb = rb.header(RANGE, format!("bytes={first}-{last}"));
        }
        rb
    }
}

async fn attempt_task(
    shared: &Arc<Shared>,
    client: &reqwest::Client,
    req: &SeedRequest,
    fwd: &Forwarded,
    tx: &Arc<watch::Sender<SeedStatus>>,
) -> Result<(), TaskError> {
    let cfg = &shared.cfg;
    let read_timeout = Duration::from_millis(cfg.read_timeout_ms);
    let probe = probe(client, req, fwd, cfg, read_timeout).await?;
    let len = probe.content_length;
    if let Some(asked) = req.content_length.filter(|c| *c != len) {
        tracing::info!(task = %req.task_id, asked, origin = len, "origin: the peer's content length differs from the origin's; using the origin's");
    }
    let layout = match req.piece_length {
        Some(p) if p == 0 || p > MAX_PIECE_LENGTH_BYTES => {
            return Err(TaskError::Failed(format!(
                "piece length {p} is outside 1..={MAX_PIECE_LENGTH_BYTES} bytes"
            )))
        }
        Some(p) => Layout::new(len, p),
        None => Layout::try_for_content(len),
    }
    .map_err(|e| TaskError::Failed(format!("cannot lay out {len} bytes: {e}")))?;
    let recorded = Recorded {
        url: redact_url(&req.url).to_owned(),
        content_length: len,
        validators: probe.validators.clone(),
    };
    let begun = {
        let shared = Arc::clone(shared);
        let (id, url) = (req.task_id, req.url.clone());
        blocking(move || begin(&shared, id, url, layout, &recorded)).await?
    };
    let Some((_task, writer)) = begun else {
        return Ok(()); // already complete in the store
    };
    let missing = writer.missing();
    let ctx = Arc::new(PieceCtx {
        id: req.task_id,
        client: client.clone(),
        url: req.url.clone(),
        headers: fwd.map.clone(),
        layout,
        validators: probe.validators.clone(),
        read_timeout,
        attempts: cfg.piece_attempts,
        cfg: cfg.clone(),
        edge: shared.edge.clone(),
        writer: Mutex::new(Some(writer)),
        queue: Mutex::new(missing.iter().copied().collect()),
        stop: AtomicBool::new(false),
        landed: AtomicU32::new(layout.piece_count() - missing.len() as u32),
        tx: Arc::clone(tx),
    });
    ctx.publish();
    let fetched = if missing.is_empty() {
        Ok(())
    } else if let Some(whole) = probe.whole {
        fetch_whole(&ctx, whole, &missing).await
    } else {
        fetch_ranges(&ctx, missing.len()).await
    };
    if let Err(e) = fetched {
        drop(ctx.take_writer());
        return Err(e);
    }
    let writer = ctx
        .take_writer()
        .ok_or_else(|| TaskError::Failed("internal: the task writer is gone".into()))?;
    let shared = Arc::clone(shared);
    let id = req.task_id;
    let task = blocking(move || {
        let task = writer
            .finish(None)
            .map_err(|e| TaskError::Failed(format!("finishing task {id} in the store: {e}")))?;
        shared.edge.broadcast(EdgeMsg::TaskCompleted { task: id });
        shared.sidecars.remove(&id);
        Ok(task)
    })
    .await?;
    tracing::info!(task = %id, bytes = len, pieces = layout.piece_count(), sha256 = task.sha256().unwrap_or(""), "origin: task seeded");
    Ok(())
}

/// Runs store work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TaskError> + Send + 'static,
) -> Result<T, TaskError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TaskError::Failed(format!("internal: store work panicked: {e}")))?
}

/// Removes the task and its record, and tells the data plane.
async fn remove_task(shared: &Arc<Shared>, id: TaskId) {
    let shared = Arc::clone(shared);
    let _ = blocking(move || {
        if let Err(e) = shared.store().remove(&id) {
            tracing::error!(task = %id, "origin: cannot remove the task from the store: {e}");
        }
        shared.edge.broadcast(EdgeMsg::TaskRemoved { task: id });
        shared.sidecars.remove(&id);
        Ok(())
    })
    .await;
}

/// Blocking: makes sure a partial task in the store is of this version (else removes it),
/// records the version, begins the task and announces it. `None` when it is already complete.
fn begin(
    shared: &Shared,
    id: TaskId,
    url: String,
    layout: Layout,
    recorded: &Recorded,
) -> Result<Option<(Arc<Task>, TaskWriter)>, TaskError> {
    let existing = shared.store().get(&id);
    if let Some(task) = existing {
        if task.is_complete() {
            if task.layout() == layout {
                return Ok(None);
            }
            return Err(TaskError::Failed(format!(
                "the store holds task {id} complete with layout {:?}, the origin now gives \
                 {:?}; remove the task to seed it again",
                task.layout(),
                layout
            )));
        }
        let stale = if task.layout() != layout {
            Some(format!(
                "its layout {:?} differs from the origin's {:?}",
                task.layout(),
                layout
            ))
        } else if task.pieces_landed() == 0 {
            None
        } else {
            match shared.sidecars.read(&id) {
                Some(old) if old.content_length != recorded.content_length => Some(format!(
                    "length changed from {} to {}",
                    old.content_length, recorded.content_length
                )),
                Some(old) => old.validators.differs(&recorded.validators),
                None if recorded.validators.any() => {
                    Some("no record of the version its pieces came from".into())
                }
                None => None,
            }
        };
        if let Some(why) = stale {
            tracing::warn!(task = %id, "origin: partial task is stale ({why}); removed, fetching from scratch");
            drop(task);
            shared
                .store()
                .remove(&id)
                .map_err(|e| TaskError::Failed(format!("removing stale task {id}: {e}")))?;
            shared.edge.broadcast(EdgeMsg::TaskRemoved { task: id });
        }
    }
    shared
        .sidecars
        .write(&id, recorded)
        .map_err(|e| TaskError::Failed(format!("recording the origin's version: {e}")))?;
    let (task, writer) = shared
        .store()
        .begin(id, Some(url), layout)
        .map_err(|e| TaskError::Failed(format!("starting task {id} in the store: {e}")))?;
    if task.is_complete() {
        return Ok(None);
    }
    shared.edge.broadcast(EdgeMsg::TaskAdded(Arc::clone(&task)));
    Ok(Some((task, writer)))
}

/// After attempt `attempt` (1-based) failed with `failure`: the wait before the next one, or
/// the task's error when the request is given up; `what` names the request in the reason.
fn after_failure(
    cfg: &super::OriginConfig,
    what: &str,
    attempt: u32,
    failure: Attempt,
) -> Result<Duration, TaskError> {
    match failure {
        Attempt::Changed(why) => Err(TaskError::Changed(why)),
        Attempt::Fatal(why) => Err(TaskError::Failed(format!("{what}: {why}"))),
        Attempt::Retry(why) if attempt >= cfg.piece_attempts => Err(TaskError::Failed(format!(
            "{what}: {why}; gave up after {attempt} attempts"
        ))),
        Attempt::Retry(why) => {
            let wait_ms = cfg.backoff_ms(attempt + 1);
            tracing::debug!(what, attempt, wait_ms, "origin: {why}; retrying");
            Ok(Duration::from_millis(wait_ms))
        }
    }
}

/// Sends a request, bounded by `read_timeout` to the response head.
async fn send(
    rb: reqwest::RequestBuilder,
    read_timeout: Duration,
) -> Result<reqwest::Response, Attempt> {
    match tokio::time::timeout(read_timeout, rb.send()).await {
        Err(_) => Err(Attempt::Retry(format!(
            "no response head within read_timeout_ms ({} ms)",
            read_timeout.as_millis()
        ))),
        Ok(Err(e)) => Err(Attempt::Retry(format!(
            "request failed: {}",
            error_chain(&e.without_url())
        ))),
        Ok(Ok(r)) => Ok(r),
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// What an unexpected status means.
fn unexpected_status(status: StatusCode) -> Attempt {
    let msg = format!("origin answered {status}");
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Attempt::Retry(msg)
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        Attempt::Fatal(format!(
            "{msg}; the peer's request headers (e.g. Authorization) were forwarded and refused"
        ))
    } else {
        Attempt::Fatal(msg)
    }
}

fn content_range(headers: &HeaderMap) -> Option<ContentRange> {
    headers
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_content_range)
}

fn show_content_range(headers: &HeaderMap) -> String {
    match headers.get(CONTENT_RANGE).map(|v| v.to_str()) {
        None => "none".into(),
        Some(Ok(v)) => format!("{:?}", v.chars().take(100).collect::<String>()),
        Some(Err(_)) => "not text".into(),
    }
}

async fn probe(
    client: &reqwest::Client,
    req: &SeedRequest,
    fwd: &Forwarded,
    cfg: &super::OriginConfig,
    read_timeout: Duration,
) -> Result<Probe, TaskError> {
    let what = format!(
        "length probe (GET Range: bytes=0-0) of {}",
        redact_url(&req.url)
    );
    let mut attempt = 1;
    loop {
        match probe_once(client, req, fwd, read_timeout).await {
            Ok(p) => return Ok(p),
            Err(a) => tokio::time::sleep(after_failure(cfg, &what, attempt, a)?).await,
        }
        attempt += 1;
    }
}

async fn probe_once(
    client: &reqwest::Client,
    req: &SeedRequest,
    fwd: &Forwarded,
    read_timeout: Duration,
) -> Result<Probe, Attempt> {
    {
        let rb = client
            .get(&req.url)
            .headers(fwd.map.clone())
            .header(ACCEPT_ENCODING, "identity")
            .header(RANGE, "bytes=0-0");
        let resp = send(rb, read_timeout).await?;
        let status = resp.status();
        let validators = Validators::of(resp.headers());
        match status {
            StatusCode::PARTIAL_CONTENT => match content_range(resp.headers()) {
                Some(ContentRange::Bytes {
                    first: 0,
                    last: 0,
                    total: Some(total),
                }) => Ok(Probe {
                    content_length: total,
                    validators,
                    whole: None,
                }),
                _ => Err(Attempt::Retry(format!(
                    "206 with Content-Range {}, expected bytes 0-0/<length>",
                    show_content_range(resp.headers())
                ))),
            },
            StatusCode::OK => match resp.content_length() {
                Some(total) => Ok(Probe {
                    content_length: total,
                    validators,
                    whole: Some(resp),
                }),
                None => Err(Attempt::Fatal(
                    "the origin ignores Range and sends no Content-Length; pieces of an \
                     unknown length cannot be laid out"
                        .into(),
                )),
            },
            StatusCode::RANGE_NOT_SATISFIABLE => match content_range(resp.headers()) {
                Some(ContentRange::Unsatisfied { total: 0 }) => Ok(Probe {
                    content_length: 0,
                    validators,
                    whole: None,
                }),
                _ => Err(Attempt::Retry(format!(
                    "416 with Content-Range {}, expected bytes */0",
                    show_content_range(resp.headers())
                ))),
            },
            s => Err(unexpected_status(s)),
        }
    }
}

/// The next body chunk (`None` at the end), bounded by `read_timeout` without a byte.
async fn read_chunk(
    resp: &mut reqwest::Response,
    read_timeout: Duration,
) -> Result<Option<impl std::ops::Deref<Target = [u8]>>, String> {
    match tokio::time::timeout(read_timeout, resp.chunk()).await {
        Err(_) => Err(format!(
            "no byte for read_timeout_ms ({} ms): the origin stalled",
            read_timeout.as_millis()
        )),
        Ok(Err(e)) => Err(format!("body broken: {}", error_chain(&e.without_url()))),
        Ok(Ok(c)) => Ok(c),
    }
}

/// Checks one response's validators and total length against the probe's.
fn check_version(ctx: &PieceCtx, headers: &HeaderMap, total: Option<u64>) -> Result<(), Attempt> {
    if let Some(why) = ctx.validators.differs(&Validators::of(headers)) {
        return Err(Attempt::Changed(why));
    }
    match total {
        Some(t) if t != ctx.layout.content_length => Err(Attempt::Changed(format!(
            "length changed from {} to {t}",
            ctx.layout.content_length
        ))),
        _ => Ok(()),
    }
}

/// One attempt at one piece: on success `buf` holds exactly its bytes.
async fn fetch_piece_once(ctx: &PieceCtx, r: PieceRange, buf: &mut Vec<u8>) -> Result<(), Attempt> {
    let last = r.end() - 1;
    let mut resp = send(ctx.get(Some((r.offset, last))), ctx.read_timeout).await?;
    let status = resp.status();
    match status {
        StatusCode::PARTIAL_CONTENT => match content_range(resp.headers()) {
            Some(ContentRange::Bytes {
                first,
                last: l,
                total,
            }) if first == r.offset && l == last => check_version(ctx, resp.headers(), total)?,
            Some(ContentRange::Bytes { total: Some(t), .. }) if t != ctx.layout.content_length => {
                check_version(ctx, resp.headers(), Some(t))?
            }
            _ => {
                return Err(Attempt::Retry(format!(
                    "206 with Content-Range {}, asked bytes {}-{last}",
                    show_content_range(resp.headers()),
                    r.offset
                )))
            }
        },
        StatusCode::OK if r.offset == 0 && r.length == ctx.layout.content_length => {
            check_version(ctx, resp.headers(), resp.content_length())?
        }
        StatusCode::OK => {
            return Err(Attempt::Retry(format!(
                "200 (the whole content) to a request for bytes {}-{last}: the origin no \
                 longer honours Range",
                r.offset
            )))
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let total = match content_range(resp.headers()) {
                Some(ContentRange::Unsatisfied { total }) => Some(total),
                _ => None,
            };
            check_version(ctx, resp.headers(), total)?;
            return Err(Attempt::Retry(format!(
                "416 to a request for bytes {}-{last}",
                r.offset
            )));
        }
        s => return Err(unexpected_status(s)),
    }
    if let Some(cl) = resp.content_length().filter(|cl| *cl != r.length) {
        return Err(Attempt::Retry(format!(
            "Content-Length {cl} for a {}-byte piece",
            r.length
        )));
    }
    buf.clear();
    let want = usize::try_from(r.length).map_err(|_| Attempt::Fatal("piece too long".into()))?;
    loop {
        let chunk = read_chunk(&mut resp, ctx.read_timeout)
            .await
            .map_err(|e| Attempt::Retry(format!("{e} after {} of {want} bytes", buf.len())))?;
        let Some(chunk) = chunk else { break };
        if chunk.len() > want - buf.len() {
            return Err(Attempt::Retry(format!(
                "the origin sent more than the {want} bytes asked"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    if buf.len() != want {
        return Err(Attempt::Retry(format!(
            "short body: {} of {want} bytes",
            buf.len()
        )));
    }
    Ok(())
}

/// Writes piece `n` from `buf` (blocking pool), announces it, and hands the buffer back.
async fn land(ctx: &Arc<PieceCtx>, n: u32, buf: Vec<u8>) -> Result<Vec<u8>, TaskError> {
    let c = Arc::clone(ctx);
    let buf = blocking(move || {
        let written = {
            let mut guard = c.writer.lock().unwrap_or_else(|e| e.into_inner());
            let writer = guard
                .as_mut()
                .ok_or_else(|| TaskError::Failed("internal: the task writer is gone".into()))?;
            writer.write_piece(n, &buf)
        };
        written.map_err(|e| TaskError::Failed(format!("writing piece {n} into the store: {e}")))?;
        c.edge.broadcast(EdgeMsg::PieceLanded {
            task: c.id,
            number: n,
        });
        Ok(buf)
    })
    .await?;
    ctx.landed.fetch_add(1, Ordering::AcqRel);
    ctx.publish();
    Ok(buf)
}

/// Up to `concurrent_pieces_per_task` workers take pieces from the queue until it is empty or
/// one fails; every worker is awaited before returning.
async fn fetch_ranges(ctx: &Arc<PieceCtx>, missing: usize) -> Result<(), TaskError> {
    let workers = ctx.cfg.concurrent_pieces_per_task.clamp(1, missing.max(1));
    let mut set = JoinSet::new();
    for _ in 0..workers {
        set.spawn(range_worker(Arc::clone(ctx)));
    }
    let mut first_error: Option<TaskError> = None;
    while let Some(joined) = set.join_next().await {
        let result = joined
            .map_err(|e| TaskError::Failed(format!("internal: piece worker ended: {e}")))
            .and_then(|r| r);
        if let Err(e) = result {
            ctx.stop.store(true, Ordering::Release);
            // A content change wins over other failures: it restarts rather than fails.
            if first_error.is_none() || matches!(e, TaskError::Changed(_)) {
                first_error = Some(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn range_worker(ctx: Arc<PieceCtx>) -> Result<(), TaskError> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(n) = ctx.next_piece() {
        let Some(r) = ctx.layout.piece(n) else {
            return Err(TaskError::Failed(format!(
                "internal: piece {n} outside the layout"
            )));
        };
        if buf.capacity() == 0 {
            buf.reserve_exact(usize::try_from(ctx.layout.piece_length).unwrap_or(0));
        }
        let what = format!(
            "piece {n} (bytes {}-{}) of {}",
            r.offset,
            r.end() - 1,
            redact_url(&ctx.url)
        );
        let mut attempt = 1;
        while let Err(a) = fetch_piece_once(&ctx, r, &mut buf).await {
            let wait = after_failure(&ctx.cfg, &what, attempt, a)?;
            tokio::time::sleep(wait).await;
            if ctx.stop.load(Ordering::Acquire) {
                return Ok(()); // another piece failed; its error is reported
            }
            attempt += 1;
        }
        buf = land(&ctx, n, buf).await?;
    }
    Ok(())
}

/// The origin ignores ranges: stream the whole body, cut it into pieces, write the missing
/// ones. A failed stream is started again from the beginning (pieces landed are skipped); a
/// stream that landed a piece resets the attempt count.
async fn fetch_whole(
    ctx: &Arc<PieceCtx>,
    first: reqwest::Response,
    missing: &[u32],
) -> Result<(), TaskError> {
    let count = ctx.layout.piece_count() as usize;
    let mut want = vec![false; count];
    for &n in missing {
        if let Some(w) = want.get_mut(n as usize) {
            *w = true;
        }
    }
    let what = format!("whole body of {}", redact_url(&ctx.url));
    let mut buf: Vec<u8> =
        Vec::with_capacity(usize::try_from(ctx.layout.piece_length).unwrap_or(0));
    let mut next = Some(first);
    let mut failures = 0u32;
    loop {
        let resp = match next.take() {
            Some(r) => Ok(r),
            None => get_whole(ctx).await,
        };
        let before = ctx.landed.load(Ordering::Acquire);
        let result = match resp {
            Ok(resp) => stream_whole(ctx, resp, &mut want, &mut buf).await,
            Err(a) => Err(a),
        };
        let err = match result {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if ctx.landed.load(Ordering::Acquire) > before {
            failures = 0;
        }
        failures += 1;
        match err {
            Attempt::Changed(why) => return Err(TaskError::Changed(why)),
            Attempt::Fatal(why) => return Err(TaskError::Failed(format!("{what}: {why}"))),
            Attempt::Retry(why) if failures >= ctx.attempts => {
                return Err(TaskError::Failed(format!(
                    "{what}: {why}; gave up after {failures} attempts without progress"
                )))
            }
            Attempt::Retry(why) => {
                let wait_ms = ctx.cfg.backoff_ms(failures + 1);
                tracing::debug!(task = %ctx.id, failures, wait_ms, "origin: {why}; streaming again");
                tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            }
        }
    }
}

async fn get_whole(ctx: &PieceCtx) -> Result<reqwest::Response, Attempt> {
    let resp = send(ctx.get(None), ctx.read_timeout).await?;
    match resp.status() {
        StatusCode::OK => {
            check_version(ctx, resp.headers(), resp.content_length())?;
            Ok(resp)
        }
        s => Err(unexpected_status(s)),
    }
}

/// Streams one whole-body response into pieces. A failure returns the `Attempt` to classify.
async fn stream_whole(
    ctx: &Arc<PieceCtx>,
    mut resp: reqwest::Response,
    want: &mut [bool],
    buf: &mut Vec<u8>,
) -> Result<(), Attempt> {
    if want.iter().all(|w| !w) {
        return Ok(());
    }
    let total = ctx.layout.content_length;
    let mut n: u32 = 0;
    let mut received: u64 = 0;
    buf.clear();
    loop {
        let chunk = read_chunk(&mut resp, ctx.read_timeout)
            .await
            .map_err(|e| Attempt::Retry(format!("{e} after {received} of {total} bytes")))?;
        let Some(chunk) = chunk else { break };
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let Some(r) = ctx.layout.piece(n) else {
                return Err(Attempt::Retry(format!(
                    "the origin sent more than its {total} bytes"
                )));
            };
            let room = usize::try_from(r.length).unwrap_or(usize::MAX) - buf.len();
            let (take, after) = rest.split_at(room.min(rest.len()));
            buf.extend_from_slice(take);
            received += take.len() as u64;
            rest = after;
            if buf.len() as u64 == r.length {
                if want.get(n as usize).copied().unwrap_or(false) {
                    let b = std::mem::take(buf);
                    *buf = land(ctx, n, b).await.map_err(|e| match e {
                        TaskError::Failed(w) | TaskError::Changed(w) => Attempt::Fatal(w),
                    })?;
                    if let Some(w) = want.get_mut(n as usize) {
                        *w = false;
                    }
                }
                buf.clear();
                n += 1;
            }
        }
    }
    if received != total {
        return Err(Attempt::Retry(format!(
            "short body: {received} of {total} bytes"
        )));
    }
    Ok(())
}
