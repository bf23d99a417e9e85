//! Golden bytes: every fixture in `tests/fixtures/` was encoded by the real `dragonfly-api`
//! 2.3.8 crate (generator: `tests/golden-gen/`). Decoding it with hawker's hand-written types
//! and encoding again must give the same bytes: a missing field, a wrong field number or a
//! wrong wire type would drop or change bytes. Selected fields are also checked by value, so a
//! field landing in the wrong struct member fails too.

use hawker_control::proto::common::v2::{Host, Task, TrafficType};
use hawker_control::proto::dfdaemon::v2::{SyncHostRequest, SyncPiecesRequest, SyncPiecesResponse};
use hawker_control::proto::health::v1::{
    health_check_response::ServingStatus, HealthCheckRequest, HealthCheckResponse,
};
use hawker_control::proto::scheduler::v2::{
    announce_peer_request::Request as R, announce_peer_response::Response as A,
    download_piece_back_to_source_failed_request::Response as BtsFailure, AnnounceHostRequest,
    AnnouncePeerRequest, AnnouncePeerResponse, DeleteHostRequest, DeletePeerRequest,
    DeleteTaskRequest, StatTaskRequest,
};
use prost::Message;
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.hex"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::decode(text.trim()).unwrap_or_else(|e| panic!("{name}: bad hex: {e}"))
}

/// Decodes the fixture as `M`, asserts the re-encoding is byte-identical, returns the value.
fn round_trip<M: Message + Default>(name: &str) -> M {
    let bytes = fixture(name);
    let message = M::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("{name}: decode: {e}"));
    let again = message.encode_to_vec();
    assert_eq!(
        hex::encode(&again),
        hex::encode(&bytes),
        "{name}: re-encoding differs from the dragonfly-api encoding"
    );
    message
}

fn announce(name: &str) -> R {
    let message: AnnouncePeerRequest = round_trip(name);
    assert_eq!(message.host_id, "10.0.0.7-child-host");
    assert_eq!(message.task_id.len(), 64);
    assert!(message.peer_id.starts_with("10.0.0.7-child-host-"));
    message.request.expect("oneof request set")
}

#[test]
fn announce_host_request() {
    let message: AnnounceHostRequest = round_trip("announce_host_request");
    let host = message.host.expect("host");
    assert_eq!(host.id, "10.0.0.7-child-host");
    assert_eq!(host.ip, "10.0.0.7");
    assert_eq!(host.port, 4000);
    assert_eq!(host.r#type, 0);
    assert_eq!(host.network.expect("network").tx_bandwidth, Some(7_654_321));
    assert_eq!(host.build.expect("build").git_version, "1.5.10");
    assert_eq!(message.interval.expect("interval").seconds, 300);
}

#[test]
fn register_peer_request() {
    let R::RegisterPeerRequest(register) = announce("register_peer_request") else {
        panic!("not a register request")
    };
    let download = register.download.expect("download");
    assert!(download
        .url
        .starts_with("http://10.0.0.9:8080/blobs/model.bin?"));
    assert_eq!(download.tag.as_deref(), Some(""));
    assert_eq!(download.filtered_query_params.len(), 5);
    assert_eq!(
        download
            .request_header
            .get("Authorization")
            .map(String::as_str),
        Some("Bearer t0k3n")
    );
    assert_eq!(download.actual_content_length, Some(104_857_601));
    assert_eq!(download.actual_piece_length, Some(4 << 20));
    assert_eq!(download.actual_piece_count, Some(26));
    assert_eq!(download.remote_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(download.scheduling_policy, 1);
    assert!(!download.metadata_only);
}

#[test]
fn peer_lifecycle_requests() {
    assert!(matches!(
        announce("download_peer_started_request"),
        R::DownloadPeerStartedRequest(_)
    ));
    let R::DownloadPieceFinishedRequest(finished) = announce("download_piece_finished_request")
    else {
        panic!("not a piece finished request")
    };
    let piece = finished.piece.expect("piece");
    assert_eq!(piece.number, 3);
    assert_eq!(piece.offset, 3 << 22);
    assert_eq!(piece.length, 4 << 20);
    assert_eq!(piece.digest, "crc32:3421780262");
    assert_eq!(
        piece.parent_id.as_deref(),
        Some("10.0.0.2-seed-1-4f1e3a7c-seed")
    );
    assert_eq!(piece.traffic_type, Some(TrafficType::RemotePeer as i32));

    let R::DownloadPieceFailedRequest(failed) = announce("download_piece_failed_request") else {
        panic!("not a piece failed request")
    };
    assert_eq!(failed.piece_number, Some(4));
    assert_eq!(failed.parent_id, "10.0.0.2-seed-1-4f1e3a7c-seed");
    assert!(failed.temporary);

    let R::ReschedulePeerRequest(reschedule) = announce("reschedule_peer_request") else {
        panic!("not a reschedule request")
    };
    assert_eq!(reschedule.candidate_parents.len(), 1);
    assert_eq!(
        reschedule.candidate_parents[0]
            .host
            .as_ref()
            .map(|h| h.port),
        Some(4100)
    );

    assert!(matches!(
        announce("download_peer_finished_request"),
        R::DownloadPeerFinishedRequest(_)
    ));
    let R::DownloadPeerFailedRequest(failed) = announce("download_peer_failed_request") else {
        panic!("not a peer failed request")
    };
    assert_eq!(
        failed.description.as_deref(),
        Some("max schedule count exceeded")
    );
}

#[test]
fn back_to_source_requests() {
    assert!(matches!(
        announce("download_peer_back_to_source_started_request"),
        R::DownloadPeerBackToSourceStartedRequest(_)
    ));
    let R::DownloadPieceBackToSourceFinishedRequest(finished) =
        announce("download_piece_back_to_source_finished_request")
    else {
        panic!("not a back-to-source piece finished request")
    };
    assert_eq!(finished.piece.expect("piece").parent_id, None);
    let R::DownloadPieceBackToSourceFailedRequest(failed) =
        announce("download_piece_back_to_source_failed_request")
    else {
        panic!("not a back-to-source piece failed request")
    };
    assert_eq!(failed.piece_number, Some(7));
    let Some(BtsFailure::Backend(backend)) = failed.response else {
        panic!("backend error expected")
    };
    assert_eq!(backend.status_code, Some(503));
    assert_eq!(
        backend.header.get("retry-after").map(String::as_str),
        Some("1")
    );
    assert!(matches!(
        announce("download_peer_back_to_source_finished_request"),
        R::DownloadPeerBackToSourceFinishedRequest(_)
    ));
    assert!(matches!(
        announce("download_peer_back_to_source_failed_request"),
        R::DownloadPeerBackToSourceFailedRequest(_)
    ));
}

#[test]
fn announce_peer_responses() {
    let message: AnnouncePeerResponse = round_trip("normal_task_response");
    let Some(A::NormalTaskResponse(normal)) = message.response else {
        panic!("not a normal task response")
    };
    let parent = &normal.candidate_parents[0];
    assert_eq!(parent.id, "10.0.0.2-seed-1-4f1e3a7c-seed");
    let host = parent.host.as_ref().expect("host");
    assert_eq!((host.ip.as_str(), host.port), ("10.0.0.2", 4100));

    let message: AnnouncePeerResponse = round_trip("empty_task_response");
    assert!(matches!(message.response, Some(A::EmptyTaskResponse(_))));
    let message: AnnouncePeerResponse = round_trip("need_back_to_source_response");
    assert!(matches!(
        message.response,
        Some(A::NeedBackToSourceResponse(_))
    ));
}

#[test]
fn seed_side_messages() {
    let request: SyncPiecesRequest = round_trip("sync_pieces_request");
    assert_eq!(
        request.interested_piece_numbers,
        (0..26).collect::<Vec<u32>>()
    );
    let response: SyncPiecesResponse = round_trip("sync_pieces_response");
    assert_eq!(
        (response.number, response.offset, response.length),
        (25, 25 << 22, 1)
    );
    assert_eq!(
        (response.ip.as_str(), response.tcp_port, response.quic_port),
        ("10.0.0.2", Some(4005), Some(4006))
    );
    let request: SyncHostRequest = round_trip("sync_host_request");
    assert_eq!(request.host_id, "10.0.0.7-child-host");
    let host: Host = round_trip("sync_host_response");
    assert_eq!(host.network.expect("network").rx_bandwidth, Some(5));
}

#[test]
fn unary_scheduler_messages() {
    let _: StatTaskRequest = round_trip("stat_task_request");
    let task: Task = round_trip("stat_task_response");
    assert_eq!((task.content_length, task.piece_count), (104_857_601, 26));
    assert!(task.has_available_peer);
    let _: DeleteTaskRequest = round_trip("delete_task_request");
    let _: DeletePeerRequest = round_trip("delete_peer_request");
    let request: DeleteHostRequest = round_trip("delete_host_request");
    assert_eq!(request.host_id, "10.0.0.7-child-host");
}

#[test]
fn health_messages() {
    let request: HealthCheckRequest = round_trip("health_check_request");
    assert_eq!(request.service, "");
    let response: HealthCheckResponse = round_trip("health_check_response_serving");
    assert_eq!(response.status, ServingStatus::Serving as i32);
}

#[test]
fn every_fixture_is_checked() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let count = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .filter(|e| {
            e.as_ref()
                .map(|e| e.path().extension().is_some_and(|x| x == "hex"))
                .unwrap_or(false)
        })
        .count();
    // Keep in step with the generator (tests/golden-gen/src/main.rs) and the tests above.
    assert_eq!(count, 27, "a fixture was added or removed: test it here");
}
