//! `hawker serve` (the binary, on free loopback ports) as a Dragonfly seed + scheduler, driven
//! the way dfdaemon 1.5.10 drives it with the control crate's gRPC client types, against a
//! local range-capable test origin that records every request:
//!
//! 1. AnnounceHost, AnnouncePeer register (task id computed the Dragonfly way) -> a
//!    NormalTaskResponse naming hawker's seed (advertise addr + upload port) -> SyncPieces there
//!    streams the pieces as the seed fetches them from origin -> every piece fetched over Vortex
//!    from the advertised ip:tcp_port has the right crc32 and bytes -> the origin saw each range
//!    once; a second peer gets the seed and the first peer as parents and the origin sees
//!    nothing new; the admin endpoint counts it all.
//! 2. `kill -9` in the middle of seeding, restart on the same data dir: the seed resumes,
//!    fetching only the pieces it did not have, and serves the whole task intact.

mod common;

use common::dragonfly::*;
use common::free_port;

use common::random_bytes;
use hawker_control::proto::dfdaemon::v2::dfdaemon_upload_client::DfdaemonUploadClient;
use hawker_control::proto::dfdaemon::v2::SyncPiecesRequest;
use hawker_shared::layout::Layout;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HAWKER: &str = env!("CARGO_BIN_EXE_hawker");
const MIB: usize = 1 << 20;
const WAIT: Duration = Duration::from_secs(20);

/// The address `hawker serve --advertise-addr` is given: not the one its Vortex port is bound to
/// (0.0.0.0) nor the one the test reaches its gRPC ports on (127.0.0.1).
const ADVERTISED: &str = "127.0.0.2";

// ----- hawker serve ------------------------------------------------------------------------

struct Ports {
    vortex: SocketAddr,
    http: SocketAddr,
    scheduler: SocketAddr,
    upload: SocketAddr,
    admin: SocketAddr,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            vortex: free_port(),
            http: free_port(),
            scheduler: free_port(),
            upload: free_port(),
            admin: free_port(),
        }
    }
}

struct Hawker(Child);

impl Drop for Hawker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &std::path::Path, p: &Ports, config: Option<&std::path::Path>) -> Hawker {
    let mut cmd = Command::new(HAWKER);
    cmd.args(["serve", "--data-dir"]).arg(dir);
    // Vortex listens on every address and the seed advertises another loopback address than
    // the one the test's other ports use: peers must be given the advertised address.
    let vortex_any = SocketAddr::from(([0, 0, 0, 0], p.vortex.port()));
    for (flag, addr) in [
        ("--vortex-listen", vortex_any),
        ("--http-listen", p.http),
        ("--scheduler-listen", p.scheduler),
        ("--upload-listen", p.upload),
        ("--admin-listen", p.admin),
    ] {
        cmd.args([flag, &addr.to_string()]);
    }
    cmd.args([
        "--cores",
        "0",
        "--advertise-addr",
        ADVERTISED,
        "--send-mode",
        "copy",
    ]);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let child = cmd
        .env("HAWKER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn hawker serve");
    let h = Hawker(child);
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(p.admin).is_err() || TcpStream::connect(p.scheduler).is_err() {
        assert!(Instant::now() < deadline, "hawker serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    h
}

// ----- the tests -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dfdaemon_like_child_gets_every_piece_from_hawker_and_origin_sees_each_once() {
    let content = Arc::new(random_bytes(4 * 4 * MIB + 12_345, 7));
    let layout = Layout::for_content(content.len() as u64);
    assert_eq!(layout.piece_count(), 5);
    let origin = Origin::start(content.clone(), Duration::ZERO);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Ports::new();
    let _hawker = serve(&dir.path().join("data"), &p, None);
    let url = origin.url();

    // The first child: hawker's seed is its parent; the pieces stream as the seed fetches them.
    let (child, answer) = Peer::register(p.scheduler, "child-1", &url, layout).await;
    let parents1 = parents(&answer);
    assert_eq!(parents1.len(), 1, "{parents1:?}");
    assert_eq!(
        (parents1[0].1.as_str(), parents1[0].2),
        (ADVERTISED, i32::from(p.upload.port()))
    );
    let synced = sync_pieces(p.upload, &child.task, layout.piece_count(), |m| {
        assert_eq!(m.ip, ADVERTISED);
        assert_eq!(m.tcp_port, Some(i32::from(p.vortex.port())));
    })
    .await;
    let mut numbers: Vec<u32> = synced.iter().map(|m| m.number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..5).collect::<Vec<_>>());
    fetch_all(&synced, &child.task, &content, layout);
    child.finish(layout.piece_count()).await;

    // The origin saw the probe and each piece's range exactly once.
    assert_origin_served_each_range_once(&origin, layout);

    // A second child: the seed and the first child are its parents; nothing new at the origin.
    second_child_from_seed_and_first_child(p.scheduler, p.upload, &url, layout, &content).await;
    assert_eq!(
        origin.log().len(),
        1 + layout.piece_count() as usize,
        "origin saw nothing new"
    );

    // The admin endpoint: metrics and JSON views.
    let m = admin_get(p.admin, "/metrics");
    assert_eq!(metric(&m, "hawker_seeding_pieces_total"), 5);
    assert_eq!(
        metric(&m, "hawker_seeding_bytes_total"),
        content.len() as u64
    );
    assert_eq!(metric(&m, "hawker_seeding_errors_total"), 0);
    assert_eq!(metric(&m, "hawker_scheduler_back_to_source_total"), 0);
    assert!(
        m.contains("hawker_scheduler_schedules_total{kind=\"normal\"} 2"),
        "{m}"
    );
    assert_eq!(metric(&m, "hawker_control_tasks"), 1);
    let tasks = admin_get(p.admin, "/tasks");
    assert!(tasks.contains(task_id(&url).as_str()), "{tasks}");
    assert!(tasks.contains("\"landed\""), "{tasks}");
    assert!(admin_get(p.admin, "/hosts").contains("child-2"));
    assert!(admin_get(p.admin, "/peers").contains("Succeeded"));
    // The data plane served the pieces (its own /metrics on the HTTP port).
    let dp = admin_get(p.http, "/metrics");
    let served: u64 = dp
        .lines()
        .filter(|l| l.starts_with("hawker_pieces_served_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(served >= 10, "pieces served {served}\n{dp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_seeding_then_restart_resumes_the_missing_pieces() {
    let content = Arc::new(random_bytes(10 * 4 * MIB, 9));
    let layout = Layout::for_content(content.len() as u64);
    let origin = Origin::start(content.clone(), Duration::from_millis(300));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hawker.toml");
    std::fs::write(&config, "[origin]\nconcurrent_pieces_per_task = 1\n").expect("config");
    let data = dir.path().join("data");
    let p = Ports::new();
    let url = origin.url();

    let mut hawker = serve(&data, &p, Some(&config));
    let (child, answer) = Peer::register(p.scheduler, "child-1", &url, layout).await;
    assert_eq!(parents(&answer).len(), 1);
    // Watch the pieces land; kill -9 once three did.
    let mut landed_before = Vec::new();
    {
        let mut client = DfdaemonUploadClient::new(channel(p.upload).await);
        let mut stream = client
            .sync_pieces(SyncPiecesRequest {
                host_id: "127.0.0.1-test".into(),
                task_id: child.task.as_str().into(),
                interested_piece_numbers: (0..layout.piece_count()).collect(),
            })
            .await
            .expect("sync")
            .into_inner();
        while landed_before.len() < 3 {
            let m = tokio::time::timeout(WAIT, stream.message())
                .await
                .expect("in time")
                .expect("ok")
                .expect("a piece");
            landed_before.push(m.number);
        }
    }
    hawker.0.kill().expect("kill -9");
    let _ = hawker.0.wait();
    drop(child);
    let before = origin.log();
    assert!(
        before.len() < 1 + layout.piece_count() as usize,
        "killed before the end: {before:?}"
    );

    // Restart: resume_partials fetches only what the journal lacks.
    let _hawker = serve(&data, &p, Some(&config));
    let (child, _answer) = Peer::register(p.scheduler, "child-2", &url, layout).await;
    let synced = sync_pieces(p.upload, &child.task, layout.piece_count(), |_| {}).await;
    assert_eq!(synced.len(), layout.piece_count() as usize);
    fetch_all(&synced, &child.task, &content, layout);
    child.finish(layout.piece_count()).await;

    let after: Vec<String> = origin.log().split_off(before.len());
    let ranges = piece_ranges(layout);
    for n in &landed_before {
        let r = &ranges[*n as usize];
        assert!(
            !after.contains(r),
            "piece {n} ({r}) fetched again: {after:?}"
        );
    }
    let all = origin.log();
    for r in &ranges {
        let times = all.iter().filter(|l| *l == r).count();
        assert!(
            (1..=2).contains(&times),
            "{r} fetched {times} times: {all:?}"
        );
    }
    assert!(
        all.iter().filter(|l| ranges.contains(l)).count() <= ranges.len() + 1,
        "at most the piece in flight at the kill is fetched twice: {all:?}"
    );
}
