//! What the control-plane tests share: a recording range origin and a client that plays
//! dfdaemon (AnnounceHost, AnnouncePeer, SyncPieces, Vortex fetches) against hawker.

use super::{connect, vortex_request, VortexReply};
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
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

pub const WAIT: Duration = Duration::from_secs(20);

// ----- a test origin (one file, Range support; `/missing` answers 404) ----------------------

/// A one-file HTTP origin with Range support; records `Range` values (or `-`) of every GET.
pub struct Origin {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Origin {
    /// Serves `content` at `/blob`, sleeping `delay` before each piece-sized answer.
    pub fn start(content: Arc<Vec<u8>>, delay: Duration) -> Origin {
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
    pub fn url(&self) -> String {
        format!("http://{}/blob", self.addr)
    }
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }
}

pub fn origin_conn(
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

// ----- playing dfdaemon: the gRPC client side of what dfdaemon 1.5.10 does --------------------

pub fn admin_get(addr: SocketAddr, path: &str) -> String {
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

pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

pub fn task_id(url: &str) -> TaskId {
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

pub fn download(url: &str, layout: Layout) -> Download {
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

pub async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

/// One child dfdaemon: its host, and an AnnouncePeer call.
pub struct Peer {
    pub host_id: String,
    pub peer_id: String,
    pub task: TaskId,
    pub tx: mpsc::Sender<AnnouncePeerRequest>,
    pub rx: tonic::Streaming<AnnouncePeerResponse>,
}

impl Peer {
    pub async fn register(
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

    pub async fn send(&mut self, r: R) {
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

    pub async fn finish(mut self, pieces: u32) {
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
pub fn parents(answer: &AnnouncePeerResponse) -> Vec<(String, String, i32)> {
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
pub async fn sync_pieces(
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
pub fn fetch_all(synced: &[SyncPiecesResponse], task: &TaskId, content: &[u8], layout: Layout) {
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

pub fn piece_ranges(layout: Layout) -> Vec<String> {
    layout
        .pieces()
        .map(|r| format!("bytes={}-{}", r.offset, r.end() - 1))
        .collect()
}

/// The origin served the one-byte probe and each piece's range exactly once, and nothing else.
pub fn assert_origin_served_each_range_once(origin: &Origin, layout: Layout) {
    let log = origin.log();
    for r in piece_ranges(layout) {
        assert_eq!(log.iter().filter(|l| **l == r).count(), 1, "{r} in {log:?}");
    }
    assert_eq!(
        log.len(),
        1 + layout.piece_count() as usize,
        "probe + {} pieces: {log:?}",
        layout.piece_count()
    );
}

/// A second child registers after the first finished: the seed and the first child are offered
/// as parents; it syncs and fetches every piece from them. Returns what SyncPieces streamed.
pub async fn second_child_from_seed_and_first_child(
    scheduler: SocketAddr,
    upload: SocketAddr,
    url: &str,
    layout: Layout,
    content: &[u8],
) -> Vec<SyncPiecesResponse> {
    let (child2, answer) = Peer::register(scheduler, "child-2", url, layout).await;
    let parents2 = parents(&answer);
    assert!(
        parents2.iter().any(|x| x.0.contains("child-1")),
        "first child offered: {parents2:?}"
    );
    assert!(
        parents2.iter().any(|x| x.0.ends_with("-seed")),
        "seed offered: {parents2:?}"
    );
    let synced = sync_pieces(upload, &child2.task, layout.piece_count(), |_| {}).await;
    fetch_all(&synced, &child2.task, content, layout);
    child2.finish(layout.piece_count()).await;
    synced
}
