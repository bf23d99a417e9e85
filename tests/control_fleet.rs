//! Fleet mode: a standalone `hawker scheduler` and one `hawker serve --scheduler ADDR` seed (the
//! binaries, on free loopback ports), driven the way dfdaemon 1.5.10 drives them with the
//! control crate's gRPC client types, against a local range-capable origin that records every
//! request:
//!
//! 1. the seed announces itself and is listed on the scheduler's admin `/hosts`;
//! 2. a child's AnnouncePeer register is answered with the seed (its announced upload port);
//!    the scheduler sends the seed its seeding order (`DfdaemonUpload/DownloadTask`), so
//!    SyncPieces on the seed streams the pieces as it fetches them; every piece fetched over
//!    Vortex has the right crc32 and bytes; the origin saw one probe and each range once;
//! 3. a second child: the seed and the first child are its parents; no new origin traffic;
//! 4. an origin URL that answers 404: the seed's fetch fails, the scheduler learns it from the
//!    DownloadTask call, and a rescheduling child is sent back to source.

mod common;

use common::dragonfly::*;
use common::free_port;

use common::random_bytes;
use hawker_control::proto::dfdaemon::v2::dfdaemon_upload_client::DfdaemonUploadClient;
use hawker_control::proto::dfdaemon::v2::SyncPiecesRequest;
use hawker_control::proto::scheduler::v2::announce_peer_request::Request as R;
use hawker_control::proto::scheduler::v2::announce_peer_response::Response as A;
use hawker_control::proto::scheduler::v2::*;
use hawker_shared::layout::Layout;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HAWKER: &str = env!("CARGO_BIN_EXE_hawker");
const MIB: usize = 1 << 20;
const WAIT: Duration = Duration::from_secs(20);

// ----- the two binaries ------------------------------------------------------------------------

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_listening(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A standalone scheduler and one fleet seed announcing itself to it.
struct Fleet {
    scheduler: SocketAddr,
    scheduler_admin: SocketAddr,
    vortex: SocketAddr,
    upload: SocketAddr,
    seed_admin: SocketAddr,
    _dir: tempfile::TempDir,
    _procs: Vec<Proc>,
}

fn fleet() -> Fleet {
    let (scheduler, scheduler_admin) = (free_port(), free_port());
    let sched = Proc(
        Command::new(HAWKER)
            .args(["scheduler", "--listen", &scheduler.to_string()])
            .args(["--admin-listen", &scheduler_admin.to_string()])
            .env("HAWKER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hawker scheduler"),
    );
    wait_listening(scheduler, "hawker scheduler");
    wait_listening(scheduler_admin, "hawker scheduler admin");
    let dir = tempfile::tempdir().expect("tempdir");
    let (vortex, http, upload, seed_admin) = (free_port(), free_port(), free_port(), free_port());
    let seed = Proc(
        Command::new(HAWKER)
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--vortex-listen", &vortex.to_string()])
            .args(["--http-listen", &http.to_string()])
            .args(["--upload-listen", &upload.to_string()])
            .args(["--admin-listen", &seed_admin.to_string()])
            .args(["--scheduler", &scheduler.to_string()])
            .args(["--advertise-addr", "127.0.0.1"])
            .args(["--cores", "0", "--send-mode", "copy"])
            .env("HAWKER_LOG", "warn")
            .env("HOSTNAME", "fleet-seed")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hawker serve"),
    );
    wait_listening(upload, "the seed's upload service");
    wait_listening(seed_admin, "the seed's admin endpoint");
    // The seed announces itself at start: wait until the scheduler lists it.
    let deadline = Instant::now() + WAIT;
    loop {
        let hosts = admin_get(scheduler_admin, "/hosts");
        if hosts.contains("fleet-seed") {
            break;
        }
        assert!(Instant::now() < deadline, "seed never listed: {hosts}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Fleet {
        scheduler,
        scheduler_admin,
        vortex,
        upload,
        seed_admin,
        _dir: dir,
        _procs: vec![sched, seed],
    }
}

// ----- the tests -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_scheduler_orders_the_remote_seed_and_origin_sees_only_the_first_fetch() {
    let content = Arc::new(random_bytes(4 * 4 * MIB + 12_345, 11));
    let layout = Layout::for_content(content.len() as u64);
    assert_eq!(layout.piece_count(), 5);
    let origin = Origin::start(content.clone(), Duration::from_millis(50));
    let f = fleet();
    let url = origin.url();

    // The first child: the remote seed is its parent, ordered to fetch by the scheduler.
    let (child, answer) = Peer::register(f.scheduler, "child-1", &url, layout).await;
    let parents1 = parents(&answer);
    assert_eq!(parents1.len(), 1, "{parents1:?}");
    assert!(parents1[0].0.ends_with("-seed"), "{parents1:?}");
    assert_eq!(
        (parents1[0].1.as_str(), parents1[0].2),
        ("127.0.0.1", i32::from(f.upload.port()))
    );
    let synced = sync_pieces(f.upload, &child.task, layout.piece_count(), |m| {
        assert_eq!(m.ip, "127.0.0.1");
        assert_eq!(m.tcp_port, Some(i32::from(f.vortex.port())));
    })
    .await;
    let mut numbers: Vec<u32> = synced.iter().map(|m| m.number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..5).collect::<Vec<_>>());
    fetch_all(&synced, &child.task, &content, layout);
    child.finish(layout.piece_count()).await;

    // The origin saw one probe and each piece's range exactly once.
    let log = origin.log();
    assert_eq!(
        log.iter().filter(|l| *l == "bytes=0-0").count(),
        1,
        "one probe: {log:?}"
    );
    assert_origin_served_each_range_once(&origin, layout);

    // A second child: the seed and the first child are its parents; nothing new at the origin.
    let synced =
        second_child_from_seed_and_first_child(f.scheduler, f.upload, &url, layout, &content).await;
    assert_eq!(synced.len(), 5);
    assert_eq!(origin.log(), log, "origin saw nothing new");

    // One order from the scheduler, one fetch on the seed, nobody sent back to source.
    let m = admin_get(f.scheduler_admin, "/metrics");
    assert_eq!(metric(&m, "hawker_scheduler_seed_orders_total"), 1);
    assert_eq!(metric(&m, "hawker_scheduler_back_to_source_total"), 0);
    // The seed finishes the task (sha256 of the whole content, rename) after its last piece.
    let deadline = Instant::now() + WAIT;
    let m = loop {
        let m = admin_get(f.seed_admin, "/metrics");
        if m.contains("hawker_seeding_tasks_total{result=\"completed\"} 1") {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "the seed never completed the task: {m}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(metric(&m, "hawker_seeding_pieces_total"), 5);
    assert_eq!(metric(&m, "hawker_seeding_errors_total"), 0);
    assert!(
        m.contains("hawker_store_tasks{state=\"complete\"} 1"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_remote_seed_fetch_sends_the_child_back_to_source() {
    let content = Arc::new(random_bytes(MIB, 12));
    let layout = Layout::for_content(content.len() as u64);
    let origin = Origin::start(content, Duration::ZERO);
    let f = fleet();
    let url = format!("http://{}/missing", origin.addr);

    let (mut child, answer) = Peer::register(f.scheduler, "child-1", &url, layout).await;
    let parents1 = parents(&answer);
    assert_eq!(parents1.len(), 1, "{parents1:?}");
    // The seed's fetch fails at the probe (404): SyncPieces there ends with an error at once.
    let mut client = DfdaemonUploadClient::new(channel(f.upload).await);
    let started = Instant::now();
    let end = async {
        let mut stream = client
            .sync_pieces(SyncPiecesRequest {
                host_id: "127.0.0.1-test".into(),
                task_id: child.task.as_str().into(),
                interested_piece_numbers: (0..layout.piece_count()).collect(),
            })
            .await?
            .into_inner();
        while stream.message().await?.is_some() {}
        Ok::<(), tonic::Status>(())
    };
    let end = tokio::time::timeout(WAIT, end).await.expect("ends in time");
    assert!(
        end.is_err(),
        "SyncPieces on a failed task ends with an error"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // The scheduler learnt the failure from its DownloadTask call: a reschedule goes to source.
    let deadline = Instant::now() + WAIT;
    loop {
        let tasks = admin_get(f.scheduler_admin, "/tasks");
        let compact: String = tasks.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.contains("\"seeds_failed\":[\"127.0.0.1-fleet-seed") {
            break;
        }
        assert!(Instant::now() < deadline, "no failure reported: {tasks}");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
        .send(R::ReschedulePeerRequest(ReschedulePeerRequest {
            candidate_parents: Vec::new(),
            description: Some("seed failed".into()),
        }))
        .await;
    let answer = tokio::time::timeout(WAIT, child.rx.message())
        .await
        .expect("answer in time")
        .expect("answer ok")
        .expect("an answer");
    assert!(
        matches!(answer.response, Some(A::NeedBackToSourceResponse(_))),
        "{answer:?}"
    );
    // The seed asked the origin once (the probe); the 404 is not retried.
    assert_eq!(origin.log().len(), 1, "{:?}", origin.log());
}
