//! `dfdaemon.v2.DfdaemonUpload/DownloadTask` on a seed: a scheduler's seeding order. The call
//! hands the `Download` to the seed's origin fetcher (a [`SeedOrders`], in `hawker serve` the
//! node's `OriginDispatcher`) and streams its progress back:
//!
//! 1. the task id is computed from the `Download` as the Dragonfly client does
//!    (`content_for_calculating_task_id`, else URL-based: url with filtered query params, tag,
//!    application, piece length); blob-digest ids and non-`STANDARD` tasks are refused with
//!    UNIMPLEMENTED, a missing `download` with INVALID_ARGUMENT;
//! 2. the fetch is started or joined (one origin fetch per task, however many orders);
//! 3. one `DownloadTaskStartedResponse{content_length, is_finished}` once the store knows the
//!    task's layout, then one `DownloadPieceFinishedResponse{piece{number, offset, length,
//!    traffic_type: BACK_TO_SOURCE}}` per piece as it lands (pieces already held are reported at
//!    once, ascending);
//! 4. the stream ends with OK when the fetch is complete, UNAVAILABLE with the seeder's reason
//!    when it failed or was aborted, DEADLINE_EXCEEDED after `download_task_idle_timeout_ms`
//!    without a landed piece.
//!
//! Invariants: the fetch belongs to the seeder, not to the call: a caller that hangs up (or an
//! idle timeout) ends the stream only. Bounds: `max_download_tasks` calls at once (more are
//! refused with RESOURCE_EXHAUSTED), `download_task_idle_timeout_ms`, 64 responses queued per
//! call.

use super::{wait_change, PieceSource, TaskProgress, UploadLimits};
use crate::origin::{SeedHandle, SeedStatus};
use crate::proto::common::v2::{Download, Piece, TaskType, TrafficType};
use crate::proto::dfdaemon::v2::download_task_response::Response as R;
use crate::proto::dfdaemon::v2::{
    DownloadPieceFinishedResponse, DownloadTaskResponse, DownloadTaskStartedResponse,
};
use crate::scheduler::state::seed_peer_id;
use hawker_shared::ids::{task_id_from_content, task_id_from_url, TaskId, TaskIdParams};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::Status;

/// Responses queued per DownloadTask call before the progress task waits for the caller.
pub const DOWNLOAD_TASK_QUEUE: usize = 64;

/// The seeding side of `DownloadTask`: starts, or joins, the origin fetch of a task.
/// Implementations must not block (the fetch runs in the background).
pub trait SeedOrders: Send + Sync + 'static {
    /// Starts or joins the fetch of `task_id` described by `download` (URL, request headers,
    /// layout) and returns a watch on it. Called within a tokio runtime.
    fn order(&self, task_id: TaskId, download: &Download) -> SeedHandle;
}

/// The task id of `download`, computed as the Dragonfly client's `IDGenerator::task_id` does
/// for the kinds hawker seeds; the error is the gRPC status to answer.
pub fn task_id_of(download: &Download) -> Result<TaskId, Status> {
    if download.r#type != TaskType::Standard as i32 {
        return Err(Status::unimplemented(format!(
            "task type {} is not seeded by hawker (STANDARD only)",
            download.r#type
        )));
    }
    if let Some(content) = &download.content_for_calculating_task_id {
        return Ok(task_id_from_content(content.as_bytes()));
    }
    if download.enable_task_id_based_blob_digest
        && (download.url.contains("/blobs/sha256:") || download.url.contains("/manifests/sha256:"))
    {
        return Err(Status::unimplemented(
            "blob-digest based task ids are not supported by hawker",
        ));
    }
    task_id_from_url(&TaskIdParams {
        url: &download.url,
        piece_length: download.piece_length,
        tag: download.tag.as_deref(),
        application: download.application.as_deref(),
        filtered_query_params: &download.filtered_query_params,
        revision: None,
    })
    .map_err(|e| Status::invalid_argument(format!("download url: {e}")))
}

/// Streams the progress of `handle`'s fetch of `task_id` into `tx` (see the module doc).
pub(super) async fn stream_progress(
    source: Arc<dyn PieceSource>,
    limits: Arc<UploadLimits>,
    host_id: String,
    task_id: TaskId,
    handle: SeedHandle,
    tx: mpsc::Sender<Result<DownloadTaskResponse, Status>>,
) {
    let peer_id = seed_peer_id(&host_id, task_id.as_str());
    let message = |response: R| DownloadTaskResponse {
        host_id: host_id.clone(),
        task_id: task_id.to_string(),
        peer_id: peer_id.clone(),
        response: Some(response),
    };
    let poll = Duration::from_millis(limits.poll_interval_ms.max(1));
    let idle = Duration::from_millis(limits.download_task_idle_timeout_ms);
    let mut status_rx = handle.receiver();
    let mut status_open = true;
    let mut signal = source.subscribe();
    let mut last_progress = tokio::time::Instant::now();
    let mut layout = None;
    let mut pending: Vec<u32> = Vec::new();
    let mut landed = Vec::new();
    loop {
        // The status first: a fetch reads Complete only once the store holds the whole task,
        // so the store pass below then sees every piece.
        let status = status_rx.borrow_and_update().clone();
        if let Some(signal) = signal.as_mut() {
            signal.borrow_and_update();
        }
        if layout.is_none() {
            if let Some(view) = source.lookup(&task_id) {
                if view.progress != TaskProgress::Failed {
                    let started = DownloadTaskStartedResponse {
                        content_length: view.layout.content_length,
                        is_finished: view.progress == TaskProgress::Complete,
                        ..DownloadTaskStartedResponse::default()
                    };
                    if tx
                        .send(Ok(message(R::DownloadTaskStartedResponse(started))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    pending = (0..view.layout.piece_count()).collect();
                    layout = Some(view.layout);
                    last_progress = tokio::time::Instant::now();
                }
            }
        }
        if let Some(l) = layout {
            landed.clear();
            source.landed(&task_id, &pending, &mut landed);
            for &number in &landed {
                let Some(range) = l.piece(number) else {
                    continue;
                };
                let piece = Piece {
                    number,
                    offset: range.offset,
                    length: range.length,
                    traffic_type: Some(TrafficType::BackToSource as i32),
                    ..Piece::default()
                };
                let finished = DownloadPieceFinishedResponse { piece: Some(piece) };
                if tx
                    .send(Ok(message(R::DownloadPieceFinishedResponse(finished))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if !landed.is_empty() {
                last_progress = tokio::time::Instant::now();
                // Both ascending: drop what was reported.
                let mut sent = landed.iter().peekable();
                pending.retain(|n| {
                    if sent.peek() == Some(&n) {
                        sent.next();
                        false
                    } else {
                        true
                    }
                });
            }
        }
        match status {
            SeedStatus::Complete => return, // OK
            SeedStatus::Failed { reason, .. } => {
                let _ = tx
                    .send(Err(Status::unavailable(format!(
                        "seeding task {task_id} failed: {reason}"
                    ))))
                    .await;
                return;
            }
            SeedStatus::Fetching { .. } if !status_open => {
                let _ = tx
                    .send(Err(Status::unavailable(format!(
                        "seeding task {task_id} was aborted (the seed is shutting down)"
                    ))))
                    .await;
                return;
            }
            SeedStatus::Fetching { .. } => {}
        }
        let quiet = last_progress.elapsed();
        if quiet >= idle {
            let _ = tx
                .send(Err(Status::deadline_exceeded(format!(
                    "no piece of task {task_id} landed for {} ms",
                    limits.download_task_idle_timeout_ms
                ))))
                .await;
            return;
        }
        tokio::select! {
            r = status_rx.changed(), if status_open => {
                // A dropped sender keeps its last value: one more pass decides.
                status_open = r.is_ok();
            }
            _ = wait_change(&mut signal, poll) => {}
            _ = tokio::time::sleep(idle - quiet) => {}
            _ = tx.closed() => return,
        }
    }
}
