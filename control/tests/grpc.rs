//! The control plane over real tonic channels on 127.0.0.1, driven the way dfdaemon 1.5.10
//! drives it (resource/task.rs: an mpsc-fed request stream, one response per register or
//! reschedule, and `in_stream_tx.closed()` awaited after the last message).

use hawker_control::proto::common::v2::{Download, Host, Peer, Piece};
use hawker_control::proto::dfdaemon::v2::dfdaemon_upload_client::DfdaemonUploadClient;
use hawker_control::proto::dfdaemon::v2::{SyncHostRequest, SyncPiecesRequest};
use hawker_control::proto::health::v1::health_check_response::ServingStatus;
use hawker_control::proto::health::v1::health_client::HealthClient;
use hawker_control::proto::health::v1::HealthCheckRequest;
use hawker_control::proto::scheduler::v2::announce_peer_request::Request as R;
use hawker_control::proto::scheduler::v2::announce_peer_response::Response as A;
use hawker_control::proto::scheduler::v2::scheduler_client::SchedulerClient;
use hawker_control::proto::scheduler::v2::*;
use hawker_control::scheduler::state::{seed_peer_id, SeedOrder};
use hawker_control::scheduler::ChannelSeeding;
use hawker_control::seed::MemorySource;
use hawker_control::{
    spawn_control_plane, ControlPlaneConfig, ControlPlaneHandle, SchedulerConfig,
};
use hawker_shared::ids::TaskId;
use hawker_shared::layout::Layout;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::Code;

const TASK: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const PIECES: u64 = 4;
const WAIT: Duration = Duration::from_secs(10);

fn start(source: Arc<MemorySource>) -> (ControlPlaneHandle, mpsc::Receiver<SeedOrder>) {
    let (tx, rx) = mpsc::channel(16);
    let cfg = ControlPlaneConfig {
        scheduler: Some(SchedulerConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            shutdown_grace_ms: 300,
            ..SchedulerConfig::default()
        }),
        upload_listen: "127.0.0.1:0".parse().expect("addr"),
        hostname: "seed-test".into(),
        vortex_tcp_port: 4105,
        worker_threads: 1,
        sync_task_wait_ms: 300,
        sync_poll_interval_ms: 50,
        shutdown_grace_ms: 300,
        ..ControlPlaneConfig::default()
    };
    let handle = spawn_control_plane(cfg, source, Arc::new(ChannelSeeding(tx))).expect("spawn");
    (handle, rx)
}

async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

fn host(id: &str, ip: &str) -> Host {
    Host {
        id: id.into(),
        hostname: id.into(),
        ip: ip.into(),
        port: 4000,
        ..Host::default()
    }
}

fn download() -> Download {
    Download {
        url: "http://127.0.0.1:9/blob".into(),
        tag: Some(String::new()),
        application: Some(String::new()),
        actual_content_length: Some(PIECES * (4 << 20) - 1),
        actual_piece_length: Some(4 << 20),
        actual_piece_count: Some(PIECES),
        ..Download::default()
    }
}

/// One dfdaemon-like AnnouncePeer call.
struct Call {
    host_id: String,
    peer_id: String,
    tx: mpsc::Sender<AnnouncePeerRequest>,
    rx: tonic::Streaming<AnnouncePeerResponse>,
}

impl Call {
    async fn open(
        client: &mut SchedulerClient<Channel>,
        host_id: &str,
        peer_id: &str,
        d: Download,
    ) -> Call {
        // Like dfdaemon: the register message is queued before the call is made.
        let (tx, in_rx) = mpsc::channel(4);
        tx.send(AnnouncePeerRequest {
            host_id: host_id.into(),
            task_id: TASK.into(),
            peer_id: peer_id.into(),
            request: Some(R::RegisterPeerRequest(RegisterPeerRequest {
                download: Some(d),
            })),
        })
        .await
        .expect("queue register");
        let rx = tokio::time::timeout(WAIT, client.announce_peer(ReceiverStream::new(in_rx)))
            .await
            .expect("call answered in time")
            .map(|r| r.into_inner())
            .unwrap_or_else(|e| panic!("announce_peer: {e}"));
        Call {
            host_id: host_id.into(),
            peer_id: peer_id.into(),
            tx,
            rx,
        }
    }

    async fn send(&mut self, request: R) {
        self.tx
            .send(AnnouncePeerRequest {
                host_id: self.host_id.clone(),
                task_id: TASK.into(),
                peer_id: self.peer_id.clone(),
                request: Some(request),
            })
            .await
            .expect("send");
    }

    async fn answer(&mut self) -> A {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("answer in time")
            .expect("answer ok")
            .expect("an answer, not the end")
            .response
            .expect("oneof set")
    }

    async fn parents(&mut self) -> Vec<Peer> {
        match self.answer().await {
            A::NormalTaskResponse(n) => n.candidate_parents,
            other => panic!("expected NormalTaskResponse, got {other:?}"),
        }
    }

    async fn piece_finished(&mut self, number: u32, parent: &str) {
        let piece = Piece {
            number,
            parent_id: Some(parent.into()),
            offset: u64::from(number) << 22,
            length: 4 << 20,
            digest: "crc32:1".into(),
            ..Piece::default()
        };
        self.send(R::DownloadPieceFinishedRequest(
            DownloadPieceFinishedRequest { piece: Some(piece) },
        ))
        .await;
    }

    /// Sends the terminal message, then checks the call ends with OK and that the request
    /// stream is released (what dfdaemon awaits with `in_stream_tx.closed()`).
    async fn finish(mut self, terminal: R) {
        self.send(terminal).await;
        let end = tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("end in time");
        assert!(
            matches!(end, Ok(None)),
            "call must end with OK, got {end:?}"
        );
        tokio::time::timeout(WAIT, self.tx.closed())
            .await
            .expect("the scheduler releases the request stream");
    }
}

/// Messages of different calls are not ordered: wait until the scheduler saw `n` pieces of
/// `peer` before depending on them.
async fn wait_pieces(client: &mut SchedulerClient<Channel>, peer: &str, n: usize) {
    for _ in 0..200 {
        let r = client
            .stat_peer(StatPeerRequest {
                host_id: String::new(),
                task_id: TASK.into(),
                peer_id: peer.into(),
            })
            .await;
        if r.is_ok_and(|p| p.into_inner().pieces.len() >= n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{peer} never reported {n} pieces");
}

async fn wait_for_seed(handle: &ControlPlaneHandle) {
    let core = handle.scheduler.clone().expect("embedded scheduler");
    for _ in 0..200 {
        if core
            .lock()
            .list_hosts()
            .iter()
            .any(|h| h.id == handle.host.id)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the seed never announced itself");
}

#[tokio::test]
async fn health_check_serving_for_empty_service() {
    let (handle, _orders) = start(Arc::new(MemorySource::default()));
    for addr in [
        handle.scheduler_addr.expect("scheduler"),
        handle.upload_addr,
    ] {
        let mut health = HealthClient::new(channel(addr).await);
        let r = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("check");
        assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);
        let err = health
            .check(HealthCheckRequest {
                service: "no.such.Service".into(),
            })
            .await
            .expect_err("unknown service");
        assert_eq!(err.code(), Code::NotFound);
    }
    handle.shutdown().expect("shutdown");
}

#[tokio::test]
async fn announce_peer_lifecycle_like_dfdaemon() {
    let (handle, mut orders) = start(Arc::new(MemorySource::default()));
    wait_for_seed(&handle).await;
    let seed_parent = seed_peer_id(&handle.host.id, TASK);
    let mut client = SchedulerClient::new(channel(handle.scheduler_addr.expect("addr")).await);
    for (id, ip) in [
        ("host-a", "127.0.0.2"),
        ("host-b", "127.0.0.3"),
        ("host-c", "127.0.0.4"),
    ] {
        let request = AnnounceHostRequest {
            host: Some(host(id, ip)),
            interval: Some(prost_types::Duration {
                seconds: 300,
                nanos: 0,
            }),
        };
        client.announce_host(request).await.expect("announce host");
    }

    // B: the first child. The responsible seed is offered and ordered to fetch, once.
    let mut b = Call::open(&mut client, "host-b", "peer-b", download()).await;
    let parents = b.parents().await;
    assert_eq!(
        parents.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        [seed_parent.as_str()]
    );
    let seed_host = parents[0].host.clone().expect("parent host");
    assert_eq!(
        (seed_host.ip.as_str(), seed_host.port),
        ("127.0.0.1", i32::from(handle.upload_addr.port()))
    );
    let order = tokio::time::timeout(WAIT, orders.recv())
        .await
        .expect("order")
        .expect("order");
    assert_eq!(
        (order.task_id.as_str(), order.seed_host_id.as_str()),
        (TASK, handle.host.id.as_str())
    );
    assert_eq!(order.download.url, "http://127.0.0.1:9/blob");
    b.send(R::DownloadPeerStartedRequest(DownloadPeerStartedRequest {}))
        .await;
    for n in 0..PIECES as u32 {
        b.piece_finished(n, &seed_parent).await;
    }
    b.finish(R::DownloadPeerFinishedRequest(
        DownloadPeerFinishedRequest {},
    ))
    .await;

    // A: seed first, then B (holds pieces).
    let mut a = Call::open(&mut client, "host-a", "peer-a", download()).await;
    let first = a.parents().await;
    assert_eq!(
        first.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        [seed_parent.as_str(), "peer-b"]
    );
    assert_eq!(
        first[1].host.as_ref().map(|h| h.ip.as_str()),
        Some("127.0.0.3")
    );
    a.send(R::DownloadPeerStartedRequest(DownloadPeerStartedRequest {}))
        .await;
    a.piece_finished(0, "peer-b").await;
    a.send(R::DownloadPieceFailedRequest(DownloadPieceFailedRequest {
        piece_number: Some(1),
        parent_id: seed_parent.clone(),
        temporary: true,
    }))
    .await;
    wait_pieces(&mut client, "peer-a", 1).await;

    // C arrives, downloads piece 2 from B and stays running: a new parent with pieces.
    let mut c = Call::open(&mut client, "host-c", "peer-c", download()).await;
    let c_parents = c.parents().await;
    assert!(
        c_parents.iter().any(|p| p.id == "peer-a"),
        "A holds piece 0: {c_parents:?}"
    );
    c.send(R::DownloadPeerStartedRequest(DownloadPeerStartedRequest {}))
        .await;
    c.piece_finished(2, "peer-b").await;
    wait_pieces(&mut client, "peer-c", 1).await;

    // A reschedules, returning its parents as dfdaemon does: it gets other parents.
    a.send(R::ReschedulePeerRequest(ReschedulePeerRequest {
        candidate_parents: first.clone(),
        description: Some("not all pieces are downloaded from parent".into()),
    }))
    .await;
    let second = a.parents().await;
    assert_eq!(
        second.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["peer-c"]
    );
    // Nobody else: back to source.
    a.send(R::ReschedulePeerRequest(ReschedulePeerRequest {
        candidate_parents: second,
        description: None,
    }))
    .await;
    assert!(matches!(a.answer().await, A::NeedBackToSourceResponse(_)));
    a.send(R::DownloadPeerBackToSourceStartedRequest(
        DownloadPeerBackToSourceStartedRequest { description: None },
    ))
    .await;
    for n in 1..PIECES as u32 {
        a.send(R::DownloadPieceBackToSourceFinishedRequest(
            DownloadPieceBackToSourceFinishedRequest {
                piece: Some(Piece {
                    number: n,
                    ..Piece::default()
                }),
            },
        ))
        .await;
    }
    a.finish(R::DownloadPeerBackToSourceFinishedRequest(
        DownloadPeerBackToSourceFinishedRequest {},
    ))
    .await;

    // C gives up: its call closes with OK too and it is forgotten.
    c.finish(R::DownloadPeerFailedRequest(DownloadPeerFailedRequest {
        description: Some("test".into()),
    }))
    .await;
    let stat = client
        .stat_task(StatTaskRequest {
            host_id: "host-a".into(),
            task_id: TASK.into(),
        })
        .await
        .expect("stat task")
        .into_inner();
    assert_eq!(
        (stat.peer_count, stat.piece_count, stat.has_available_peer),
        (2, PIECES as u32, true)
    );
    let err = client
        .stat_peer(StatPeerRequest {
            host_id: "host-c".into(),
            task_id: TASK.into(),
            peer_id: "peer-c".into(),
        })
        .await
        .expect_err("failed peer is gone");
    assert_eq!(err.code(), Code::NotFound);

    // Unary deletes are answered OK.
    client
        .delete_task(DeleteTaskRequest {
            host_id: "host-a".into(),
            task_id: TASK.into(),
        })
        .await
        .expect("delete task");
    client
        .delete_peer(DeletePeerRequest {
            host_id: "host-b".into(),
            task_id: TASK.into(),
            peer_id: "peer-b".into(),
        })
        .await
        .expect("delete peer");
    client
        .delete_host(DeleteHostRequest {
            host_id: "host-c".into(),
        })
        .await
        .expect("delete host");
    let stat = client
        .stat_task(StatTaskRequest {
            host_id: "host-a".into(),
            task_id: TASK.into(),
        })
        .await
        .expect("stat task")
        .into_inner();
    assert_eq!(stat.peer_count, 0);
    handle.shutdown().expect("shutdown");
}

#[tokio::test]
async fn empty_task_and_protocol_errors() {
    let (handle, _orders) = start(Arc::new(MemorySource::default()));
    let mut client = SchedulerClient::new(channel(handle.scheduler_addr.expect("addr")).await);
    client
        .announce_host(AnnounceHostRequest {
            host: Some(host("host-a", "127.0.0.2")),
            interval: None,
        })
        .await
        .expect("announce host");
    let empty = Download {
        actual_content_length: Some(0),
        actual_piece_count: Some(0),
        ..download()
    };
    let mut call = Call::open(&mut client, "host-a", "peer-empty", empty).await;
    assert!(matches!(call.answer().await, A::EmptyTaskResponse(_)));
    call.send(R::DownloadPeerStartedRequest(DownloadPeerStartedRequest {}))
        .await;
    call.finish(R::DownloadPeerFinishedRequest(
        DownloadPeerFinishedRequest {},
    ))
    .await;

    // A first message that is not a register is refused with FAILED_PRECONDITION.
    let (tx, in_rx) = mpsc::channel(1);
    tx.send(AnnouncePeerRequest {
        host_id: "host-a".into(),
        task_id: TASK.into(),
        peer_id: "peer-x".into(),
        request: Some(R::DownloadPeerStartedRequest(DownloadPeerStartedRequest {})),
    })
    .await
    .expect("send");
    let mut rx = client
        .announce_peer(ReceiverStream::new(in_rx))
        .await
        .expect("call")
        .into_inner();
    let err = tokio::time::timeout(WAIT, rx.message())
        .await
        .expect("in time")
        .expect_err("refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    handle.shutdown().expect("shutdown");
}

async fn next<M>(s: &mut tonic::Streaming<M>) -> Option<M> {
    tokio::time::timeout(WAIT, s.message())
        .await
        .expect("in time")
        .expect("ok")
}

#[tokio::test]
async fn sync_pieces_streams_pieces_landing_after_the_call_started() {
    let source = Arc::new(MemorySource::default());
    let (handle, _orders) = start(source.clone());
    let task = TaskId::parse(TASK.as_bytes()).expect("task id");
    let layout = Layout::new(3 * (4 << 20) - 10, 4 << 20).expect("layout");
    source.begin(task, layout);
    source.land(&task, 1);
    let mut upload = DfdaemonUploadClient::new(channel(handle.upload_addr).await);
    let mut stream = upload
        .sync_pieces(SyncPiecesRequest {
            host_id: "host-a".into(),
            task_id: TASK.into(),
            interested_piece_numbers: vec![0, 1, 2, 99],
        })
        .await
        .expect("sync pieces")
        .into_inner();

    let first: hawker_control::proto::dfdaemon::v2::SyncPiecesResponse =
        next(&mut stream).await.expect("piece 1");
    assert_eq!(
        (first.number, first.offset, first.length),
        (1, 4 << 20, 4 << 20)
    );
    assert_eq!(
        (first.ip.as_str(), first.tcp_port),
        ("127.0.0.1", Some(4105))
    );
    let landing = {
        let source = source.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            source.land(&task, 2);
            tokio::time::sleep(Duration::from_millis(150)).await;
            source.land(&task, 0);
        })
    };
    let second = next(&mut stream).await.expect("piece 2");
    assert_eq!(
        (second.number, second.offset, second.length),
        (2, 8 << 20, (4 << 20) - 10)
    );
    let third = next(&mut stream).await.expect("piece 0");
    assert_eq!((third.number, third.offset), (0, 0));
    // Every existing interested piece was sent and the task is complete: the stream ends OK.
    assert!(next(&mut stream).await.is_none());
    landing.await.expect("landing task");

    // An unknown task is waited for (sync_task_wait_ms = 300), then NOT_FOUND.
    let other = "f".repeat(64);
    let mut stream = upload
        .sync_pieces(SyncPiecesRequest {
            host_id: "h".into(),
            task_id: other,
            interested_piece_numbers: vec![0],
        })
        .await
        .expect("call")
        .into_inner();
    let err = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("in time")
        .expect_err("not found");
    assert_eq!(err.code(), Code::NotFound);
    // A malformed task id is refused at once.
    let err = upload
        .sync_pieces(SyncPiecesRequest {
            host_id: "h".into(),
            task_id: "nope".into(),
            interested_piece_numbers: vec![],
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);

    // SyncHost answers with a host report.
    let mut hosts = upload
        .sync_host(SyncHostRequest {
            host_id: "host-a".into(),
            peer_id: "peer-a".into(),
        })
        .await
        .expect("sync host")
        .into_inner();
    let report = tokio::time::timeout(WAIT, hosts.message())
        .await
        .expect("in time")
        .expect("ok");
    assert!(report.expect("a host").network.is_some());
    handle.shutdown().expect("shutdown");
}

#[tokio::test]
async fn run_scheduler_serves_health_until_shutdown() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hawker_control::run_scheduler(
        SchedulerConfig {
            listen: addr,
            ..SchedulerConfig::default()
        },
        async {
            let _ = stop_rx.await;
        },
    ));
    let mut ok = false;
    for _ in 0..100 {
        if let Ok(ch) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("ep")
            .connect()
            .await
        {
            let r = HealthClient::new(ch)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            ok = r
                .map(|r| r.into_inner().status == ServingStatus::Serving as i32)
                .unwrap_or(false);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "health check SERVING");
    stop_tx.send(()).expect("stop");
    tokio::time::timeout(WAIT, server)
        .await
        .expect("stops")
        .expect("join")
        .expect("clean exit");
}
