//! Seeding orders over real tonic channels on 127.0.0.1: `DfdaemonUpload/DownloadTask` served by
//! an [`UploadService`] over a [`MemorySource`] with a scripted [`SeedOrders`] (the fetch's
//! status is driven by the test), and [`RemoteSeeding`] (the standalone scheduler's dispatcher)
//! calling it: progress stream, failure, bounds, dedupe and unreachable seeds.

use hawker_control::origin::{SeedHandle, SeedStatus};
use hawker_control::proto::common::v2::{Download, Host};
use hawker_control::proto::dfdaemon::v2::dfdaemon_upload_client::DfdaemonUploadClient;
use hawker_control::proto::dfdaemon::v2::dfdaemon_upload_server::DfdaemonUploadServer;
use hawker_control::proto::dfdaemon::v2::download_task_response::Response as R;
use hawker_control::proto::dfdaemon::v2::DownloadTaskRequest;
use hawker_control::scheduler::state::{seed_peer_id, Limits, SeedOrder};
use hawker_control::scheduler::{
    RemoteSeeding, RemoteSeedingLimits, SchedulerCore, SeedDispatcher,
};
use hawker_control::seed::order::task_id_of;
use hawker_control::seed::{MemorySource, SeedOrders, UploadLimits, UploadService};
use hawker_shared::ids::TaskId;
use hawker_shared::layout::Layout;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(10);
const SEED_HOST: &str = "127.0.0.1-orders-seed";

/// A fetch the test drives: every order joins the same status channel.
struct Scripted {
    status: watch::Sender<SeedStatus>,
    orders: Mutex<Vec<TaskId>>,
}

impl SeedOrders for Scripted {
    fn order(&self, task_id: TaskId, _download: &Download) -> SeedHandle {
        self.orders.lock().expect("orders").push(task_id);
        SeedHandle::from_receiver(self.status.subscribe())
    }
}

struct Seed {
    addr: SocketAddr,
    source: Arc<MemorySource>,
    script: Arc<Scripted>,
}

async fn seed(max_download_tasks: usize, with_orders: bool) -> Seed {
    let source = Arc::new(MemorySource::default());
    let script = Arc::new(Scripted {
        status: watch::channel(SeedStatus::Fetching {
            landed: 0,
            total: 0,
        })
        .0,
        orders: Mutex::new(Vec::new()),
    });
    let mut limits = UploadLimits::new("127.0.0.1".parse().expect("ip"), 4105);
    limits.max_download_tasks = max_download_tasks;
    limits.poll_interval_ms = 20;
    let mut service = UploadService::new(source.clone(), limits);
    if with_orders {
        service = service.with_orders(script.clone(), SEED_HOST.into());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(DfdaemonUploadServer::new(service))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    Seed {
        addr,
        source,
        script,
    }
}

fn download() -> Download {
    Download {
        url: "http://origin.invalid/blob".into(),
        tag: Some(String::new()),
        application: Some(String::new()),
        ..Download::default()
    }
}

async fn client(addr: SocketAddr) -> DfdaemonUploadClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    DfdaemonUploadClient::new(channel)
}

async fn next(
    stream: &mut tonic::Streaming<hawker_control::proto::dfdaemon::v2::DownloadTaskResponse>,
) -> Result<Option<R>, tonic::Status> {
    let m = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("in time")?;
    Ok(m.map(|m| m.response.expect("a response")))
}

#[tokio::test]
async fn download_task_streams_started_then_each_piece_then_ends_ok() {
    let s = seed(4, true).await;
    let id = task_id_of(&download()).expect("task id");
    let layout = Layout::new(10 << 20, 4 << 20).expect("layout");
    s.source.begin(id, layout);
    s.source.land(&id, 1);
    let mut c = client(s.addr).await;
    let mut stream = c
        .download_task(DownloadTaskRequest {
            download: Some(download()),
        })
        .await
        .expect("call")
        .into_inner();
    let first = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("in time")
        .expect("ok")
        .expect("a message");
    assert_eq!(first.task_id, id.as_str());
    assert_eq!(first.host_id, SEED_HOST);
    assert_eq!(first.peer_id, seed_peer_id(SEED_HOST, id.as_str()));
    match first.response {
        Some(R::DownloadTaskStartedResponse(r)) => {
            assert_eq!(r.content_length, 10 << 20);
            assert!(!r.is_finished);
        }
        other => panic!("started first: {other:?}"),
    }
    let piece = |r: Option<R>| match r {
        Some(R::DownloadPieceFinishedResponse(p)) => p.piece.expect("piece"),
        other => panic!("a piece: {other:?}"),
    };
    let p1 = piece(next(&mut stream).await.expect("ok"));
    assert_eq!((p1.number, p1.offset, p1.length), (1, 4 << 20, 4 << 20));
    s.source.land(&id, 2);
    let p2 = piece(next(&mut stream).await.expect("ok"));
    assert_eq!((p2.number, p2.offset, p2.length), (2, 8 << 20, 2 << 20));
    s.source.land(&id, 0);
    s.script.status.send_replace(SeedStatus::Complete);
    let p0 = piece(next(&mut stream).await.expect("ok"));
    assert_eq!(p0.number, 0);
    assert!(next(&mut stream).await.expect("ends OK").is_none());
    assert_eq!(*s.script.orders.lock().expect("orders"), vec![id]);
}

#[tokio::test]
async fn download_task_ends_unavailable_when_the_fetch_fails_and_refuses_past_its_bound() {
    let s = seed(1, true).await;
    let mut c = client(s.addr).await;
    let mut stream = c
        .download_task(DownloadTaskRequest {
            download: Some(download()),
        })
        .await
        .expect("call")
        .into_inner();
    // The one slot is taken: a second order is refused.
    let refused = c
        .download_task(DownloadTaskRequest {
            download: Some(download()),
        })
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    s.script.status.send_replace(SeedStatus::Failed {
        reason: "origin answered 404".into(),
        retry_after_ms: 1000,
    });
    let end = next(&mut stream).await.expect_err("fails");
    assert_eq!(end.code(), Code::Unavailable);
    assert!(end.message().contains("404"), "{}", end.message());
    // A missing download is refused.
    let mut c = client(s.addr).await;
    let missing = c
        .download_task(DownloadTaskRequest { download: None })
        .await
        .expect_err("refused");
    assert_eq!(missing.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn download_task_is_unimplemented_without_a_seeder() {
    let s = seed(4, false).await;
    let refused = client(s.addr)
        .await
        .download_task(DownloadTaskRequest {
            download: Some(download()),
        })
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::Unimplemented);
}

fn scheduler_with(remote: &RemoteSeeding, seed: Option<SocketAddr>) -> Arc<SchedulerCore> {
    let core = SchedulerCore::new(
        Limits::default(),
        Arc::new(remote.clone()),
        16,
        Duration::from_secs(10),
    );
    remote.set_scheduler(&core);
    if let Some(addr) = seed {
        core.lock()
            .handle_announce_host(
                Instant::now(),
                Host {
                    id: SEED_HOST.into(),
                    r#type: 1,
                    ip: addr.ip().to_string(),
                    port: i32::from(addr.port()),
                    ..Host::default()
                },
                None,
            )
            .expect("announce");
    }
    core
}

async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn remote_seeding_calls_the_seed_once_per_task_and_reports_failures() {
    let s = seed(4, true).await;
    let remote = RemoteSeeding::new(RemoteSeedingLimits::default());
    let _core = scheduler_with(&remote, Some(s.addr));
    let id = task_id_of(&download()).expect("task id");
    let order = SeedOrder {
        seed_host_id: SEED_HOST.into(),
        task_id: id.to_string(),
        download: download(),
    };
    remote.dispatch(order.clone());
    remote.dispatch(order.clone()); // joins the running call
    until("the seed got the order", || {
        s.script.orders.lock().expect("orders").len() == 1
    })
    .await;
    assert_eq!(remote.counters().joined.load(Relaxed), 1);
    assert_eq!(remote.in_flight(), 1);
    s.script.status.send_replace(SeedStatus::Complete);
    until("the call ended OK", || {
        remote.counters().completed.load(Relaxed) == 1
    })
    .await;
    assert_eq!(remote.in_flight(), 0);
    assert_eq!(remote.counters().failed.load(Relaxed), 0);

    // The next fetch fails on the seed: the call ends with its status, reported as failed.
    s.script.status.send_replace(SeedStatus::Fetching {
        landed: 0,
        total: 0,
    });
    remote.dispatch(order.clone());
    until("the seed got the second order", || {
        s.script.orders.lock().expect("orders").len() == 2
    })
    .await;
    s.script.status.send_replace(SeedStatus::Failed {
        reason: "origin answered 404".into(),
        retry_after_ms: 0,
    });
    until("the failure was reported", || {
        remote.counters().failed.load(Relaxed) == 1
    })
    .await;

    // An order whose task id the seed computes differently is a failure too.
    let other = SeedOrder {
        task_id: "0".repeat(64),
        ..order
    };
    s.script.status.send_replace(SeedStatus::Fetching {
        landed: 0,
        total: 0,
    });
    s.source
        .begin(id, Layout::new(1 << 20, 4 << 20).expect("layout"));
    remote.dispatch(other);
    until("the mismatch was reported", || {
        remote.counters().failed.load(Relaxed) == 2
    })
    .await;
}

#[tokio::test]
async fn remote_seeding_reports_unknown_and_unreachable_seeds_at_once() {
    // Unknown host: reported without a call.
    let remote = RemoteSeeding::new(RemoteSeedingLimits::default());
    let _core = scheduler_with(&remote, None);
    let order = SeedOrder {
        seed_host_id: SEED_HOST.into(),
        task_id: "1".repeat(64),
        download: download(),
    };
    remote.dispatch(order.clone());
    assert_eq!(remote.counters().failed.load(Relaxed), 1);
    assert_eq!(remote.counters().started.load(Relaxed), 0);

    // A seed announced on a port nobody listens on: the connection fails, reported.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let remote = RemoteSeeding::new(RemoteSeedingLimits {
        connect_timeout_ms: 1000,
        ..RemoteSeedingLimits::default()
    });
    let _core = scheduler_with(&remote, Some(closed));
    remote.dispatch(order);
    until("the unreachable seed was reported", || {
        remote.counters().failed.load(Relaxed) == 1
    })
    .await;
    assert_eq!(remote.in_flight(), 0);
}
