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

// ----- a test origin (as in tests/control_seed.rs; `/missing` answers 404) -------------------

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
        let missing = req.path == Some("/missing");
        buf.drain(..end);
        log.lock()
            .expect("log")
            .push(range.clone().unwrap_or_else(|| "-".into()));
        if missing {
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        }
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

// ----- the two binaries ------------------------------------------------------------------------

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
}

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

// ----- playing dfdaemon (as in tests/control_seed.rs) --------------------------------------------

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
    for r in piece_ranges(layout) {
        assert_eq!(log.iter().filter(|l| **l == r).count(), 1, "{r} in {log:?}");
    }
    assert_eq!(log.len(), 1 + 5, "probe + 5 pieces: {log:?}");

    // A second child: the seed and the first child are its parents; nothing new at the origin.
    let (child2, answer) = Peer::register(f.scheduler, "child-2", &url, layout).await;
    let parents2 = parents(&answer);
    assert!(
        parents2.iter().any(|x| x.0.contains("child-1")),
        "first child offered: {parents2:?}"
    );
    assert!(
        parents2.iter().any(|x| x.0.ends_with("-seed")),
        "seed offered: {parents2:?}"
    );
    let synced = sync_pieces(f.upload, &child2.task, layout.piece_count(), |_| {}).await;
    assert_eq!(synced.len(), 5);
    fetch_all(&synced, &child2.task, &content, layout);
    child2.finish(layout.piece_count()).await;
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
