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

use common::{connect, random_bytes, vortex_request, VortexReply};
use hawker_control::proto::common::v2::{Download, Host, Piece as PieceMsg};
use hawker_control::proto::dfdaemon::v2::dfdaemon_upload_client::DfdaemonUploadClient;
use hawker_control::proto::dfdaemon::v2::{SyncPiecesRequest, SyncPiecesResponse};
use hawker_control::proto::scheduler::v2::announce_peer_request::Request as R;
use hawker_control::proto::scheduler::v2::announce_peer_response::Response as A;
use hawker_control::proto::scheduler::v2::scheduler_client::SchedulerClient;
use hawker_control::proto::scheduler::v2::*;
use hawker_shared::digest::crc32;
use hawker_shared::ids::{default_filtered_query_params, task_id_from_url, TaskId, TaskIdParams};
use hawker_shared::layout::Layout;
use hawker_shared::vortex::Tag;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

const HAWKER: &str = env!("CARGO_BIN_EXE_hawker");
const MIB: usize = 1 << 20;
const WAIT: Duration = Duration::from_secs(20);

// ----- a test origin -------------------------------------------------------------------------

/// A one-file HTTP origin with Range support; records `Range` values (or `-`) of every GET.
struct Origin {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Origin {
    /// Serves `content` at `/blob`, sleeping `delay` before each piece-sized answer.
    fn start(content: Arc<Vec<u8>>, delay: Duration) -> Origin {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        let addr = l.local_addr().expect("addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let (content, log) = (content.clone(), log2.clone());
                std::thread::spawn(move || {
                    let _ = origin_conn(s, &content, &log, delay);
                });
            }
        });
        Origin { addr, log }
    }
    fn url(&self) -> String {
        format!("http://{}/blob", self.addr)
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }
}

/// The address `hawker serve --advertise-addr` is given: not the one its Vortex port is bound to
/// (0.0.0.0) nor the one the test reaches its gRPC ports on (127.0.0.1).
const ADVERTISED: &str = "127.0.0.2";

fn origin_conn(
    mut s: TcpStream,
    content: &[u8],
    log: &Mutex<Vec<String>>,
    delay: Duration,
) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = Vec::new();
    loop {
        // One request head.
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        req.parse(&buf[..end]).map_err(std::io::Error::other)?;
        let range = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("range"))
            .map(|h| String::from_utf8_lossy(h.value).to_string());
        buf.drain(..end);
        log.lock()
            .expect("log")
            .push(range.clone().unwrap_or_else(|| "-".into()));
        let len = content.len() as u64;
        let (start, stop, status) = match range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
            Some(r) => {
                let (a, b) = r.split_once('-').unwrap_or((r, ""));
                let a: u64 = a.parse().unwrap_or(0);
                let b: u64 = b.parse().unwrap_or(len - 1).min(len - 1);
                (a, b, 206)
            }
            None => (0, len - 1, 200),
        };
        if stop > start {
            std::thread::sleep(delay);
        }
        let mut head = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nETag: \"v1\"\r\n",
            stop - start + 1
        );
        if status == 206 {
            head += &format!("Content-Range: bytes {start}-{stop}/{len}\r\n");
        }
        head += "\r\n";
        s.write_all(head.as_bytes())?;
        s.write_all(&content[start as usize..=stop as usize])?;
    }
}

// ----- hawker serve ------------------------------------------------------------------------

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
}

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

fn admin_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("admin connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    assert!(out.starts_with("HTTP/1.1 200"), "{path}: {out}");
    out
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

// ----- playing dfdaemon ----------------------------------------------------------------------

fn task_id(url: &str) -> TaskId {
    task_id_from_url(&TaskIdParams {
        url,
        piece_length: None,
        tag: Some(""),
        application: Some(""),
        filtered_query_params: &default_filtered_query_params(),
        revision: None,
    })
    .expect("task id")
}

fn download(url: &str, layout: Layout) -> Download {
    Download {
        url: url.into(),
        tag: Some(String::new()),
        application: Some(String::new()),
        filtered_query_params: default_filtered_query_params(),
        actual_content_length: Some(layout.content_length),
        actual_piece_length: Some(layout.piece_length),
        actual_piece_count: Some(u64::from(layout.piece_count())),
        ..Download::default()
    }
}

async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

/// One child dfdaemon: its host, and an AnnouncePeer call.
struct Peer {
    host_id: String,
    peer_id: String,
    task: TaskId,
    tx: mpsc::Sender<AnnouncePeerRequest>,
    rx: tonic::Streaming<AnnouncePeerResponse>,
}

impl Peer {
    async fn register(
        scheduler: SocketAddr,
        name: &str,
        url: &str,
        layout: Layout,
    ) -> (Peer, AnnouncePeerResponse) {
        let mut client = SchedulerClient::new(channel(scheduler).await);
        let host_id = format!("127.0.0.1-{name}");
        client
            .announce_host(AnnounceHostRequest {
                host: Some(Host {
                    id: host_id.clone(),
                    hostname: name.into(),
                    ip: "127.0.0.1".into(),
                    port: 1,
                    ..Host::default()
                }),
                interval: None,
            })
            .await
            .expect("announce host");
        let task = task_id(url);
        let peer_id = format!("{host_id}-{name}-peer");
        let (tx, rx) = mpsc::channel(16);
        let mut child = Peer {
            host_id,
            peer_id,
            task,
            tx,
            rx: client
                .announce_peer(ReceiverStream::new(rx))
                .await
                .expect("announce peer")
                .into_inner(),
        };
        child
            .send(R::RegisterPeerRequest(RegisterPeerRequest {
                download: Some(download(url, layout)),
            }))
            .await;
        let answer = tokio::time::timeout(WAIT, child.rx.message())
            .await
            .expect("answer in time")
            .expect("answer ok")
            .expect("an answer");
        (child, answer)
    }

    async fn send(&mut self, r: R) {
        self.tx
            .send(AnnouncePeerRequest {
                host_id: self.host_id.clone(),
                task_id: self.task.as_str().into(),
                peer_id: self.peer_id.clone(),
                request: Some(r),
            })
            .await
            .expect("send");
    }

    async fn finish(mut self, pieces: u32) {
        self.send(R::DownloadPeerStartedRequest(Default::default()))
            .await;
        for number in 0..pieces {
            self.send(R::DownloadPieceFinishedRequest(
                DownloadPieceFinishedRequest {
                    piece: Some(PieceMsg {
                        number,
                        ..PieceMsg::default()
                    }),
                },
            ))
            .await;
        }
        self.send(R::DownloadPeerFinishedRequest(Default::default()))
            .await;
        let end = tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("call closed in time");
        assert!(matches!(end, Ok(None)), "call ends OK: {end:?}");
    }
}

/// The parents of a NormalTaskResponse as (peer id, ip, port).
fn parents(answer: &AnnouncePeerResponse) -> Vec<(String, String, i32)> {
    match &answer.response {
        Some(A::NormalTaskResponse(n)) => n
            .candidate_parents
            .iter()
            .map(|p| {
                let h = p.host.clone().unwrap_or_default();
                (p.id.clone(), h.ip, h.port)
            })
            .collect(),
        other => panic!("expected NormalTaskResponse, got {other:?}"),
    }
}

/// SyncPieces on `upload` for every piece; calls `each` per message as it arrives.
async fn sync_pieces(
    upload: SocketAddr,
    task: &TaskId,
    count: u32,
    mut each: impl FnMut(&SyncPiecesResponse),
) -> Vec<SyncPiecesResponse> {
    let mut client = DfdaemonUploadClient::new(channel(upload).await);
    let mut stream = client
        .sync_pieces(SyncPiecesRequest {
            host_id: "127.0.0.1-test".into(),
            task_id: task.as_str().into(),
            interested_piece_numbers: (0..count).collect(),
        })
        .await
        .expect("sync pieces")
        .into_inner();
    let mut got = Vec::new();
    while let Some(m) = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("piece in time")
        .expect("stream ok")
    {
        each(&m);
        got.push(m);
    }
    got
}

/// Fetches every synced piece over Vortex from the address it names; checks bytes and crc32.
fn fetch_all(synced: &[SyncPiecesResponse], task: &TaskId, content: &[u8], layout: Layout) {
    let mut conns: HashMap<SocketAddr, TcpStream> = HashMap::new();
    for m in synced {
        let addr: SocketAddr = format!("{}:{}", m.ip, m.tcp_port.expect("tcp_port"))
            .parse()
            .expect("ip:port");
        let s = conns.entry(addr).or_insert_with(|| connect(addr));
        match vortex_request(s, Tag::DownloadPiece, task, m.number).expect("vortex") {
            VortexReply::Piece {
                number,
                offset,
                digest,
                bytes,
                ..
            } => {
                let range = layout.piece(number).expect("piece in layout");
                assert_eq!((number, offset), (m.number, range.offset));
                assert_eq!(bytes.len() as u64, range.length);
                assert_eq!(
                    &bytes[..],
                    &content[range.offset as usize..range.end() as usize]
                );
                assert_eq!(digest, format!("crc32:{}", crc32(&bytes)));
            }
            VortexReply::Error { code, message } => {
                panic!("piece {}: {code:?} {message}", m.number)
            }
        }
    }
}

fn piece_ranges(layout: Layout) -> Vec<String> {
    layout
        .pieces()
        .map(|r| format!("bytes={}-{}", r.offset, r.end() - 1))
        .collect()
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
    let log = origin.log();
    for r in piece_ranges(layout) {
        assert_eq!(log.iter().filter(|l| **l == r).count(), 1, "{r} in {log:?}");
    }
    assert_eq!(log.len(), 1 + 5, "probe + 5 pieces: {log:?}");

    // A second child: the seed and the first child are its parents; nothing new at the origin.
    let (child2, answer) = Peer::register(p.scheduler, "child-2", &url, layout).await;
    let parents2 = parents(&answer);
    assert!(
        parents2.iter().any(|x| x.0.contains("child-1")),
        "first child offered: {parents2:?}"
    );
    assert!(
        parents2.iter().any(|x| x.0.ends_with("-seed")),
        "seed offered: {parents2:?}"
    );
    let synced = sync_pieces(p.upload, &child2.task, layout.piece_count(), |_| {}).await;
    fetch_all(&synced, &child2.task, &content, layout);
    child2.finish(layout.piece_count()).await;
    assert_eq!(origin.log().len(), log.len(), "origin saw nothing new");

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
