//! Golden-bytes generator: encodes the messages dfdaemon 1.5.10 exchanges with a scheduler and
//! with a parent's upload server, filled the way dfdaemon/dfget fill them (see the comments
//! naming the client source), using the REAL `dragonfly-api` 2.3.8 types, and writes each as
//! `<name>.hex` (lower-case hex, one line) into the directory given as the only argument.
//! Maps hold at most one entry so that the upstream `HashMap` encodes deterministically.

use dragonfly_api::common::v2::{
    Build, CgroupCpu, Cpu, CpuTimes, Disk, Download, Host, Memory, Network, Peer, Piece, Priority,
    SchedulingPolicy, SizeScope, Task, TaskType, TrafficType,
};
use dragonfly_api::dfdaemon::v2::{SyncHostRequest, SyncPiecesRequest, SyncPiecesResponse};
use dragonfly_api::errordetails::v2::Backend;
use dragonfly_api::scheduler::v2::{
    announce_peer_request, announce_peer_response, download_piece_back_to_source_failed_request,
    AnnounceHostRequest, AnnouncePeerRequest, AnnouncePeerResponse, DeleteHostRequest,
    DeletePeerRequest, DeleteTaskRequest, DownloadPeerBackToSourceFailedRequest,
    DownloadPeerBackToSourceFinishedRequest, DownloadPeerBackToSourceStartedRequest,
    DownloadPeerFailedRequest, DownloadPeerFinishedRequest, DownloadPeerStartedRequest,
    DownloadPieceBackToSourceFailedRequest, DownloadPieceBackToSourceFinishedRequest,
    DownloadPieceFailedRequest, DownloadPieceFinishedRequest, EmptyTaskResponse,
    NeedBackToSourceResponse, NormalTaskResponse, RegisterPeerRequest, ReschedulePeerRequest,
    StatTaskRequest,
};
use prost::Message;
use std::collections::HashMap;
use std::path::PathBuf;

const TASK_ID: &str = "4f1e3a7c9b2d8e6f0a5c4b3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f";
const HOST_ID: &str = "10.0.0.7-child-host";
const PEER_ID: &str = "10.0.0.7-child-host-7b0f3f8e-2a4c-4d7e-9f41-0c6a1b2d3e4f";
const SEED_HOST_ID: &str = "10.0.0.2-seed-1";
const SEED_PEER_ID: &str = "10.0.0.2-seed-1-4f1e3a7c-seed";

fn ts(seconds: i64, nanos: i32) -> prost_wkt_types::Timestamp {
    prost_wkt_types::Timestamp { seconds, nanos }
}

fn dur(seconds: i64, nanos: i32) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration { seconds, nanos }
}

/// The Download dfget sends (dfget/main.rs) after dfdaemon filled the actual_* fields
/// (grpc/dfdaemon_download.rs).
fn download() -> Download {
    Download {
        url: "http://10.0.0.9:8080/blobs/model.bin?X-Amz-Signature=abc&b=2&a=1".to_string(),
        digest: None,
        range: None,
        r#type: TaskType::Standard as i32,
        tag: Some(String::new()),
        application: Some(String::new()),
        priority: Priority::Level6 as i32,
        filtered_query_params: vec![
            "X-Amz-Algorithm".to_string(),
            "X-Amz-Credential".to_string(),
            "X-Amz-Signature".to_string(),
            "X-Goog-Signature".to_string(),
            "ns".to_string(),
        ],
        request_header: HashMap::from([("Authorization".to_string(), "Bearer t0k3n".to_string())]),
        piece_length: None,
        output_path: Some("/tmp/out/model.bin".to_string()),
        timeout: Some(dur(7200, 0)),
        disable_back_to_source: false,
        need_back_to_source: false,
        certificate_chain: Vec::new(),
        prefetch: false,
        object_storage: None,
        hdfs: None,
        is_prefetch: false,
        need_piece_content: false,
        force_hard_link: false,
        content_for_calculating_task_id: None,
        remote_ip: Some("10.0.0.7".to_string()),
        concurrent_piece_count: None,
        overwrite: false,
        actual_piece_length: Some(4 * 1024 * 1024),
        actual_content_length: Some(104_857_601),
        actual_piece_count: Some(26),
        enable_task_id_based_blob_digest: false,
        hugging_face: None,
        model_scope: None,
        metadata_only: false,
        open_csg: None,
        scheduling_policy: SchedulingPolicy::Always as i32,
    }
}

/// The Host dfdaemon announces (announcer/mod.rs).
fn child_host() -> Host {
    Host {
        id: HOST_ID.to_string(),
        r#type: 0,
        hostname: "child-host".to_string(),
        ip: "10.0.0.7".to_string(),
        port: 4000,
        download_port: 4000,
        os: "linux".to_string(),
        platform: "linux".to_string(),
        platform_family: "unix".to_string(),
        platform_version: "12".to_string(),
        kernel_version: "6.1.0-18-amd64".to_string(),
        cpu: Some(Cpu {
            logical_count: 2,
            physical_count: 1,
            percent: 12.5,
            process_percent: 0.75,
            times: Some(CpuTimes {
                user: 1.5,
                system: 0.25,
                idle: 100.0,
                nice: 0.0,
                iowait: 0.125,
                irq: 0.0,
                softirq: 0.0625,
                steal: 0.0,
                guest: 0.0,
                guest_nice: 0.0,
            }),
            cgroup: Some(CgroupCpu {
                period: 100_000,
                quota: -1,
                used_percent: 0.5,
            }),
        }),
        memory: Some(Memory {
            total: 8 << 30,
            available: 6 << 30,
            used: 2 << 30,
            used_percent: 25.0,
            process_used_percent: 0.5,
            free: 5 << 30,
            cgroup: None,
        }),
        network: Some(Network {
            tcp_connection_count: 0,
            upload_tcp_connection_count: 0,
            location: None,
            idc: Some("idc-a".to_string()),
            max_rx_bandwidth: 10_000_000_000,
            rx_bandwidth: Some(1_234_567),
            max_tx_bandwidth: 10_000_000_000,
            tx_bandwidth: Some(7_654_321),
        }),
        disk: Some(Disk {
            total: 100 << 30,
            free: 60 << 30,
            used: 40 << 30,
            used_percent: 40.0,
            inodes_total: 0,
            inodes_used: 0,
            inodes_free: 0,
            inodes_used_percent: 0.0,
            read_bandwidth: 1000,
            write_bandwidth: 2000,
            cgroup: None,
        }),
        build: Some(Build {
            git_version: "1.5.10".to_string(),
            git_commit: Some("a1b2c3d".to_string()),
            go_version: None,
            rust_version: Some("1.89.0".to_string()),
            platform: None,
        }),
        scheduler_cluster_id: 1,
        disable_shared: false,
        proxy_port: 4001,
        name: "child-host".to_string(),
    }
}

/// The parent a scheduler offers: id and host{id, ip, port} are what the client reads.
fn seed_peer() -> Peer {
    Peer {
        id: SEED_PEER_ID.to_string(),
        range: None,
        priority: Priority::Level0 as i32,
        pieces: Vec::new(),
        cost: None,
        state: "Running".to_string(),
        task: None,
        host: Some(Host {
            id: SEED_HOST_ID.to_string(),
            r#type: 1,
            hostname: "seed-1".to_string(),
            ip: "10.0.0.2".to_string(),
            port: 4100,
            download_port: 4100,
            ..Default::default()
        }),
        need_back_to_source: false,
        created_at: Some(ts(1_760_000_000, 0)),
        updated_at: Some(ts(1_760_000_001, 5)),
        concurrent_piece_count: None,
    }
}

fn announce(request: announce_peer_request::Request) -> AnnouncePeerRequest {
    AnnouncePeerRequest {
        host_id: HOST_ID.to_string(),
        task_id: TASK_ID.to_string(),
        peer_id: PEER_ID.to_string(),
        request: Some(request),
    }
}

/// The Piece the child reports after a download from a parent (resource/task.rs).
fn finished_piece(number: u32) -> Piece {
    Piece {
        number,
        parent_id: Some(SEED_PEER_ID.to_string()),
        offset: u64::from(number) * 4 * 1024 * 1024,
        length: 4 * 1024 * 1024,
        digest: "crc32:3421780262".to_string(),
        content: None,
        traffic_type: Some(TrafficType::RemotePeer as i32),
        cost: Some(dur(0, 12_345_678)),
        created_at: Some(ts(1_760_000_002, 999)),
    }
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: golden-gen OUT_DIR"));
    std::fs::create_dir_all(&dir).expect("create fixture dir");
    let mut n = 0;
    let mut write = |name: &str, bytes: Vec<u8>| {
        std::fs::write(
            dir.join(format!("{name}.hex")),
            format!("{}\n", hex::encode(bytes)),
        )
        .expect("write fixture");
        n += 1;
    };

    use announce_peer_request::Request as R;
    use announce_peer_response::Response as A;

    write(
        "announce_host_request",
        AnnounceHostRequest {
            host: Some(child_host()),
            interval: Some(dur(300, 0)),
        }
        .encode_to_vec(),
    );
    write(
        "register_peer_request",
        announce(R::RegisterPeerRequest(RegisterPeerRequest {
            download: Some(download()),
        }))
        .encode_to_vec(),
    );
    write(
        "download_peer_started_request",
        announce(R::DownloadPeerStartedRequest(DownloadPeerStartedRequest {})).encode_to_vec(),
    );
    write(
        "download_piece_finished_request",
        announce(R::DownloadPieceFinishedRequest(
            DownloadPieceFinishedRequest {
                piece: Some(finished_piece(3)),
            },
        ))
        .encode_to_vec(),
    );
    write(
        "download_piece_failed_request",
        announce(R::DownloadPieceFailedRequest(DownloadPieceFailedRequest {
            piece_number: Some(4),
            parent_id: SEED_PEER_ID.to_string(),
            temporary: true,
        }))
        .encode_to_vec(),
    );
    write(
        "reschedule_peer_request",
        announce(R::ReschedulePeerRequest(ReschedulePeerRequest {
            candidate_parents: vec![seed_peer()],
            description: Some("not all pieces are downloaded from parent".to_string()),
        }))
        .encode_to_vec(),
    );
    write(
        "download_peer_finished_request",
        announce(R::DownloadPeerFinishedRequest(
            DownloadPeerFinishedRequest {},
        ))
        .encode_to_vec(),
    );
    write(
        "download_peer_failed_request",
        announce(R::DownloadPeerFailedRequest(DownloadPeerFailedRequest {
            description: Some("max schedule count exceeded".to_string()),
        }))
        .encode_to_vec(),
    );
    write(
        "download_peer_back_to_source_started_request",
        announce(R::DownloadPeerBackToSourceStartedRequest(
            DownloadPeerBackToSourceStartedRequest { description: None },
        ))
        .encode_to_vec(),
    );
    write(
        "download_piece_back_to_source_finished_request",
        announce(R::DownloadPieceBackToSourceFinishedRequest(
            DownloadPieceBackToSourceFinishedRequest {
                piece: Some(Piece {
                    parent_id: None,
                    traffic_type: Some(TrafficType::BackToSource as i32),
                    ..finished_piece(0)
                }),
            },
        ))
        .encode_to_vec(),
    );
    write(
        "download_piece_back_to_source_failed_request",
        announce(R::DownloadPieceBackToSourceFailedRequest(
            DownloadPieceBackToSourceFailedRequest {
                piece_number: Some(7),
                response: Some(
                    download_piece_back_to_source_failed_request::Response::Backend(Backend {
                        message: "503 Service Unavailable".to_string(),
                        header: HashMap::from([("retry-after".to_string(), "1".to_string())]),
                        status_code: Some(503),
                    }),
                ),
            },
        ))
        .encode_to_vec(),
    );
    write(
        "download_peer_back_to_source_finished_request",
        announce(R::DownloadPeerBackToSourceFinishedRequest(
            DownloadPeerBackToSourceFinishedRequest {},
        ))
        .encode_to_vec(),
    );
    write(
        "download_peer_back_to_source_failed_request",
        announce(R::DownloadPeerBackToSourceFailedRequest(
            DownloadPeerBackToSourceFailedRequest {
                description: Some("not all pieces are downloaded from source".to_string()),
            },
        ))
        .encode_to_vec(),
    );
    write(
        "normal_task_response",
        AnnouncePeerResponse {
            response: Some(A::NormalTaskResponse(NormalTaskResponse {
                candidate_parents: vec![seed_peer()],
            })),
        }
        .encode_to_vec(),
    );
    write(
        "empty_task_response",
        AnnouncePeerResponse {
            response: Some(A::EmptyTaskResponse(EmptyTaskResponse {})),
        }
        .encode_to_vec(),
    );
    write(
        "need_back_to_source_response",
        AnnouncePeerResponse {
            response: Some(A::NeedBackToSourceResponse(NeedBackToSourceResponse {
                description: Some("no seed can serve the task".to_string()),
            })),
        }
        .encode_to_vec(),
    );
    write(
        "sync_pieces_request",
        SyncPiecesRequest {
            host_id: HOST_ID.to_string(),
            task_id: TASK_ID.to_string(),
            interested_piece_numbers: (0..26).collect(),
        }
        .encode_to_vec(),
    );
    write(
        "sync_pieces_response",
        SyncPiecesResponse {
            number: 25,
            offset: 25 * 4 * 1024 * 1024,
            length: 1,
            ip: "10.0.0.2".to_string(),
            tcp_port: Some(4005),
            quic_port: Some(4006),
        }
        .encode_to_vec(),
    );
    write(
        "sync_host_request",
        SyncHostRequest {
            host_id: HOST_ID.to_string(),
            peer_id: PEER_ID.to_string(),
        }
        .encode_to_vec(),
    );
    write(
        "sync_host_response",
        Host {
            network: Some(Network {
                max_rx_bandwidth: 10_000_000_000,
                rx_bandwidth: Some(5),
                max_tx_bandwidth: 10_000_000_000,
                tx_bandwidth: Some(6),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    write(
        "stat_task_request",
        StatTaskRequest {
            host_id: HOST_ID.to_string(),
            task_id: TASK_ID.to_string(),
        }
        .encode_to_vec(),
    );
    write(
        "stat_task_response",
        Task {
            id: TASK_ID.to_string(),
            r#type: TaskType::Standard as i32,
            url: "http://10.0.0.9:8080/blobs/model.bin".to_string(),
            digest: None,
            tag: Some(String::new()),
            application: Some(String::new()),
            filtered_query_params: vec!["X-Amz-Signature".to_string()],
            request_header: HashMap::new(),
            content_length: 104_857_601,
            piece_count: 26,
            size_scope: SizeScope::Normal as i32,
            pieces: Vec::new(),
            state: "Succeeded".to_string(),
            peer_count: 2,
            has_available_peer: true,
            created_at: Some(ts(1_760_000_000, 0)),
            updated_at: Some(ts(1_760_000_100, 0)),
        }
        .encode_to_vec(),
    );
    write(
        "delete_task_request",
        DeleteTaskRequest {
            host_id: HOST_ID.to_string(),
            task_id: TASK_ID.to_string(),
        }
        .encode_to_vec(),
    );
    write(
        "delete_peer_request",
        DeletePeerRequest {
            host_id: HOST_ID.to_string(),
            task_id: TASK_ID.to_string(),
            peer_id: PEER_ID.to_string(),
        }
        .encode_to_vec(),
    );
    write(
        "delete_host_request",
        DeleteHostRequest {
            host_id: HOST_ID.to_string(),
        }
        .encode_to_vec(),
    );
    write(
        "health_check_request",
        tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        }
        .encode_to_vec(),
    );
    write(
        "health_check_response_serving",
        tonic_health::pb::HealthCheckResponse {
            status: tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
        }
        .encode_to_vec(),
    );
    eprintln!("wrote {n} fixtures");
}
