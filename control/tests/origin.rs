//! Seeding from origin against a local test origin: a tiny HTTP/1.1 server on 127.0.0.1 with
//! Range support and fault knobs (dies mid-body, stalls, wrong status, short bodies, a content
//! change, a piece budget), written here. No network beyond 127.0.0.1, no timing assertions.

use hawker_control::origin::{OriginConfig, SeedRequest, SeedStatus, Seeder};
use hawker_dataplane::edge::{edge, EdgeMsg, EdgeReceiver, EdgeSender};
use hawker_dataplane::store::{Store, Task, Verify};
use hawker_shared::ids::{task_id_from_url, TaskId, TaskIdParams};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: usize = 1 << 20;
const SMALL_PIECE: u64 = 64 << 10;

/// One request as the origin saw it.
#[derive(Debug, Clone)]
struct Logged {
    /// Header names lower-cased, values verbatim.
    headers: Vec<(String, String)>,
}

impl Logged {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn range(&self) -> Option<&str> {
        self.header("range")
    }
    fn is_probe(&self) -> bool {
        self.range() == Some("bytes=0-0")
    }
}

/// The test origin's content and fault knobs. Knobs marked "piece" apply to every request
/// that is not the `bytes=0-0` length probe.
#[derive(Default)]
struct Knobs {
    content: Mutex<(Arc<Vec<u8>>, Option<String>)>,
    no_ranges: AtomicBool,
    log: Mutex<Vec<Logged>>,
    /// Piece: the next N responses send half the body, then close.
    die_mid_body: AtomicUsize,
    /// Piece: the next N responses send half the body, then stall for 10 s.
    stall: AtomicUsize,
    /// Piece: answer every request with this status (200 = the whole content).
    piece_status: Mutex<Option<u16>>,
    /// Probe: answer with this status.
    probe_status: Mutex<Option<u16>>,
    /// Piece: a consistent 206 whose body and Content-Length are one byte short.
    short_by_one: AtomicBool,
    /// Piece: after this many piece requests were admitted, answer 503.
    piece_budget: Mutex<Option<usize>>,
    pieces_served: AtomicUsize,
    /// Piece: after this many piece requests, switch to this content and ETag.
    change_after: Mutex<Option<(usize, Vec<u8>, String)>>,
    piece_requests: AtomicUsize,
}

struct Origin {
    addr: SocketAddr,
    knobs: Arc<Knobs>,
}

impl Origin {
    async fn start(content: Vec<u8>) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let knobs = Arc::new(Knobs::default());
        *knobs.content.lock().unwrap() = (Arc::new(content), Some("\"v1\"".into()));
        let k = Arc::clone(&knobs);
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(handle(sock, Arc::clone(&k)));
            }
        });
        Origin { addr, knobs }
    }

    fn url(&self) -> String {
        format!(
            "http://{}/blobs/sha256:abc?X-Amz-Signature=secret",
            self.addr
        )
    }

    fn log(&self) -> Vec<Logged> {
        self.knobs.log.lock().unwrap().clone()
    }

    fn clear_log(&self) {
        self.knobs.log.lock().unwrap().clear();
    }

    /// How often each Range value (other than the probe) was asked.
    fn piece_ranges(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for l in self.log().iter().filter(|l| !l.is_probe()) {
            *m.entry(l.range().unwrap_or("none").to_owned()).or_default() += 1;
        }
        m
    }
}

async fn handle(mut sock: TcpStream, k: Arc<Knobs>) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = sock.read(&mut tmp).await else {
            return;
        };
        if n == 0 || buf.len() > 64 << 10 {
            return;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: Vec<(String, String)> = head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let logged = Logged { headers };
    k.log.lock().unwrap().push(logged.clone());
    let probe = logged.is_probe();

    if !probe {
        let n = k.piece_requests.fetch_add(1, Ordering::SeqCst) + 1;
        let mut change = k.change_after.lock().unwrap();
        if change.as_ref().is_some_and(|(after, _, _)| n > *after) {
            let (_, content, etag) = change.take().unwrap();
            *k.content.lock().unwrap() = (Arc::new(content), Some(etag));
        }
    }
    let (content, etag) = k.content.lock().unwrap().clone();
    let len = content.len() as u64;
    let etag_line = etag.map(|e| format!("ETag: {e}\r\n")).unwrap_or_default();

    let forced = if probe {
        *k.probe_status.lock().unwrap()
    } else {
        *k.piece_status.lock().unwrap()
    };
    // Admission counts against the budget, so exactly `budget` good pieces go out.
    let budget = *k.piece_budget.lock().unwrap();
    let over_budget =
        !probe && budget.is_some_and(|b| k.pieces_served.fetch_add(1, Ordering::SeqCst) >= b);
    if over_budget || forced.is_some_and(|s| s != 200) {
        let status = if over_budget { 503 } else { forced.unwrap() };
        let body = b"no";
        let head = format!(
            "HTTP/1.1 {status} Test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = sock.write_all(head.as_bytes()).await;
        let _ = sock.write_all(body).await;
        return;
    }

    let range = logged
        .range()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
    let use_range = !k.no_ranges.load(Ordering::SeqCst) && forced != Some(200);
    let (status_line, extra, body): (String, String, &[u8]) = match range {
        Some((a, _)) if use_range && a >= len => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\n\
                 Content-Length: 0\r\n{etag_line}Connection: close\r\n\r\n"
            );
            let _ = sock.write_all(head.as_bytes()).await;
            return;
        }
        Some((a, b)) if use_range => {
            let b = b.min(len - 1);
            (
                "206 Partial Content".into(),
                format!("Content-Range: bytes {a}-{b}/{len}\r\n"),
                &content[a as usize..=b as usize],
            )
        }
        _ => ("200 OK".into(), String::new(), &content[..]),
    };
    let mut body = body;
    if !probe && k.short_by_one.load(Ordering::SeqCst) && !body.is_empty() {
        body = &body[..body.len() - 1];
    }
    let head = format!(
        "HTTP/1.1 {status_line}\r\n{extra}Content-Length: {}\r\n{etag_line}Connection: close\r\n\r\n",
        body.len()
    );
    let take = |c: &AtomicUsize| {
        c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
            .is_ok()
    };
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    if !probe && take(&k.die_mid_body) {
        let _ = sock.write_all(&body[..body.len() / 2]).await;
        return;
    }
    if !probe && take(&k.stall) {
        let _ = sock.write_all(&body[..body.len() / 2]).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        return;
    }
    let _ = sock.write_all(body).await;
    let _ = sock.shutdown().await;
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 12) as u8)
        .collect()
}

fn test_cfg() -> OriginConfig {
    OriginConfig {
        connect_timeout_ms: 2_000,
        read_timeout_ms: 300,
        piece_attempts: 4,
        backoff_initial_ms: 5,
        backoff_max_ms: 20,
        concurrent_pieces_per_task: 3,
        failure_memory_ms: 60_000,
        ..OriginConfig::default()
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<Mutex<Store>>,
    edge_tx: EdgeSender,
    edge_rx: Vec<EdgeReceiver>,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Mutex::new(Store::open(dir.path(), Verify::Full).unwrap()));
        let (edge_tx, edge_rx) = edge(1, 64).unwrap();
        Rig {
            _dir: dir,
            store,
            edge_tx,
            edge_rx,
        }
    }

    fn seeder(&self, cfg: OriginConfig) -> Seeder {
        Seeder::try_new(cfg, Arc::clone(&self.store), self.edge_tx.clone()).unwrap()
    }

    fn edge_msgs(&self) -> Vec<EdgeMsg> {
        let mut v = Vec::new();
        while let Ok(Some(m)) = self.edge_rx[0].try_recv() {
            v.push(m);
        }
        v
    }

    fn task(&self, id: &TaskId) -> Arc<Task> {
        self.store.lock().unwrap().get(id).expect("task in store")
    }
}

fn request(url: &str, piece_length: Option<u64>) -> SeedRequest {
    let task_id = task_id_from_url(&TaskIdParams {
        url,
        piece_length,
        tag: None,
        application: None,
        filtered_query_params: &hawker_shared::ids::default_filtered_query_params(),
        revision: None,
    })
    .unwrap();
    SeedRequest {
        task_id,
        url: url.to_owned(),
        headers: vec![],
        piece_length,
        content_length: None,
    }
}

/// The task is complete and holds exactly `want`: bytes, per-piece crc32, sha256.
fn assert_task_holds(task: &Task, want: &[u8]) {
    assert!(task.is_complete());
    let layout = task.layout();
    assert_eq!(layout.content_length, want.len() as u64);
    assert_eq!(task.bytes(), want);
    for r in layout.pieces() {
        let piece = &want[r.offset as usize..r.end() as usize];
        assert_eq!(
            task.piece_crc(r.number),
            Some(crc32fast::hash(piece)),
            "piece {}",
            r.number
        );
    }
    assert_eq!(
        task.sha256(),
        Some(hex::encode(Sha256::digest(want)).as_str())
    );
}

/// TaskAdded first, a PieceLanded for each of `pieces`, TaskCompleted last.
fn assert_edge_story(msgs: &[EdgeMsg], id: &TaskId, pieces: &BTreeSet<u32>) {
    assert!(
        matches!(msgs.first(), Some(EdgeMsg::TaskAdded(t)) if t.id() == id),
        "{msgs:?}"
    );
    assert!(
        matches!(msgs.last(), Some(EdgeMsg::TaskCompleted { task }) if task == id),
        "{msgs:?}"
    );
    let landed: BTreeSet<u32> = msgs
        .iter()
        .filter_map(|m| match m {
            EdgeMsg::PieceLanded { task, number } if task == id => Some(*number),
            _ => None,
        })
        .collect();
    assert_eq!(&landed, pieces);
    let landed_msgs = msgs
        .iter()
        .filter(|m| matches!(m, EdgeMsg::PieceLanded { .. }))
        .count();
    assert_eq!(landed_msgs, pieces.len(), "each piece announced once");
}

async fn seed_and_check(len: usize, piece_length: Option<u64>) {
    let want = content(len, 7);
    let origin = Origin::start(want.clone()).await;
    let rig = Rig::new();
    let seeder = rig.seeder(test_cfg());
    let req = request(&origin.url(), piece_length);
    let id = req.task_id;
    let mut h = seeder.seed(req);
    h.done().await.unwrap();
    assert_eq!(seeder.status(&id), Some(SeedStatus::Complete));
    let task = rig.task(&id);
    assert_task_holds(&task, &want);
    let all: BTreeSet<u32> = (0..task.layout().piece_count()).collect();
    assert_edge_story(&rig.edge_msgs(), &id, &all);
    // One probe, then each piece exactly once (a 1-byte piece's range is the probe's too).
    let mut asked: Vec<String> = origin
        .log()
        .iter()
        .map(|l| l.range().unwrap_or("none").to_owned())
        .collect();
    asked.sort();
    let mut expected = vec!["bytes=0-0".to_owned()];
    expected.extend(
        task.layout()
            .pieces()
            .map(|r| format!("bytes={}-{}", r.offset, r.end() - 1)),
    );
    expected.sort();
    assert_eq!(asked, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_seeds_empty_content() {
    seed_and_check(0, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_seeds_one_byte() {
    seed_and_check(1, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_seeds_4_mib_as_one_piece() {
    seed_and_check(4 * MIB, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_seeds_4_mib_plus_one_as_two_pieces() {
    seed_and_check(4 * MIB + 1, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_seeds_many_pieces_with_a_short_last_one() {
    seed_and_check(10 * SMALL_PIECE as usize + 123, Some(SMALL_PIECE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_concurrent_requests_share_one_fetch() {
    let want = content(9 * SMALL_PIECE as usize + 5, 1);
    let origin = Origin::start(want.clone()).await;
    let rig = Rig::new();
    let seeder = rig.seeder(test_cfg());
    let req = request(&origin.url(), Some(SMALL_PIECE));
    let id = req.task_id;
    let mut handles: Vec<_> = (0..8).map(|_| seeder.clone().seed(req.clone())).collect();
    for h in handles.iter_mut() {
        h.done().await.unwrap();
    }
    assert_task_holds(&rig.task(&id), &want);
    let ranges = origin.piece_ranges();
    assert_eq!(ranges.len(), 10, "{ranges:?}");
    assert!(ranges.values().all(|c| *c == 1), "{ranges:?}");
    assert_eq!(origin.log().iter().filter(|l| l.is_probe()).count(), 1);
    // Once complete, a request is answered from the store without the origin.
    let before = origin.log().len();
    seeder.seed(req).done().await.unwrap();
    assert_eq!(origin.log().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_forwards_authorization_but_not_hop_by_hop_headers() {
    let want = content(3 * SMALL_PIECE as usize, 2);
    let origin = Origin::start(want.clone()).await;
    let rig = Rig::new();
    let seeder = rig.seeder(test_cfg());
    let mut req = request(&origin.url(), Some(SMALL_PIECE));
    req.headers = [
        ("Authorization", "Bearer registry-token"),
        ("Connection", "X-Hop-Secret"),
        ("X-Hop-Secret", "must-not-pass"),
        ("Transfer-Encoding", "chunked"),
        ("Proxy-Authorization", "Basic cHJveHk="),
        ("Range", "bytes=100-200"),
        ("Host", "peer.invalid"),
        ("Accept", "application/octet-stream"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let id = req.task_id;
    seeder.seed(req).done().await.unwrap();
    assert_task_holds(&rig.task(&id), &want);
    let log = origin.log();
    assert_eq!(log.len(), 4, "probe + 3 pieces");
    for l in &log {
        assert_eq!(l.header("authorization"), Some("Bearer registry-token"));
        assert_eq!(l.header("accept"), Some("application/octet-stream"));
        assert_eq!(l.header("x-hop-secret"), None);
        assert_eq!(l.header("proxy-authorization"), None);
        assert_eq!(l.header("transfer-encoding"), None);
        assert_eq!(l.header("host"), Some(origin.addr.to_string().as_str()));
        assert_ne!(l.range(), Some("bytes=100-200"));
        assert!(l.header("user-agent").unwrap().starts_with("hawker/"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_dying_mid_body_is_retried_and_succeeds() {
    let want = content(6 * SMALL_PIECE as usize, 3);
    let origin = Origin::start(want.clone()).await;
    origin.knobs.die_mid_body.store(3, Ordering::SeqCst);
    let rig = Rig::new();
    let seeder = rig.seeder(test_cfg());
    let req = request(&origin.url(), Some(SMALL_PIECE));
    let id = req.task_id;
    seeder.seed(req).done().await.unwrap();
    assert_task_holds(&rig.task(&id), &want);
    let asked: usize = origin.piece_ranges().values().sum();
    assert_eq!(asked, 6 + 3, "each death costs one retry");
    let all: BTreeSet<u32> = (0..6).collect();
    assert_edge_story(&rig.edge_msgs(), &id, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_stall_hits_the_read_timeout_and_is_retried() {
    let want = content(4 * SMALL_PIECE as usize, 4);
    let origin = Origin::start(want.clone()).await;
    origin.knobs.stall.store(1, Ordering::SeqCst);
    let rig = Rig::new();
    let seeder = rig.seeder(test_cfg());
    let req = request(&origin.url(), Some(SMALL_PIECE));
    let id = req.task_id;
    seeder.seed(req).done().await.unwrap();
    assert_task_holds(&rig.task(&id), &want);
    let asked: usize = origin.piece_ranges().values().sum();
    assert_eq!(asked, 4 + 1);
}

/// Seeds against a misbehaving origin and returns the failure reason; checks nothing was
/// announced as landed and the failure is remembered.
async fn seed_expecting_failure(origin: &Origin, rig: &Rig) -> String {
    let seeder = rig.seeder(test_cfg());
    let req = request(&origin.url(), Some(SMALL_PIECE));
    let id = req.task_id;
    let reason = seeder.seed(req.clone()).done().await.unwrap_err();
    assert!(
        !reason.contains("secret"),
        "no query string in reasons: {reason}"
    );
    let landed = rig
        .edge_msgs()
        .iter()
        .filter(|m| matches!(m, EdgeMsg::PieceLanded { .. }))
        .count();
    assert_eq!(landed, 0, "nothing wrong is ever announced");
    if let Some(t) = rig.store.lock().unwrap().get(&id) {
        assert_eq!(t.pieces_landed(), 0);
        assert!(!t.is_complete());
    }
    match seeder.status(&id) {
        Some(SeedStatus::Failed {
            reason: r,
            retry_after_ms,
        }) => {
            assert_eq!(r, reason);
            assert!(retry_after_ms > 0);
        }
        other => panic!("status {other:?}"),
    }
    // Remembered: a second request fails at once without asking the origin.
    let before = origin.log().len();
    let again = seeder.seed(req.clone()).done().await.unwrap_err();
    assert_eq!(again, reason);
    assert_eq!(origin.log().len(), before);
    // Other headers (fresh credentials) try again at once.
    let mut other = req;
    other.headers = vec![("Authorization".into(), "Bearer new".into())];
    let _ = seeder.seed(other).done().await;
    assert!(origin.log().len() > before);
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_500_is_retried_then_failed_with_the_status() {
    let origin = Origin::start(content(3 * SMALL_PIECE as usize, 5)).await;
    *origin.knobs.piece_status.lock().unwrap() = Some(500);
    let rig = Rig::new();
    let reason = seed_expecting_failure(&origin, &rig).await;
    assert!(reason.contains("500"), "{reason}");
    assert!(reason.contains("gave up after 4 attempts"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_500_on_the_probe_fails_with_the_probe_named() {
    let origin = Origin::start(content(3 * SMALL_PIECE as usize, 5)).await;
    *origin.knobs.probe_status.lock().unwrap() = Some(503);
    let rig = Rig::new();
    let reason = seed_expecting_failure(&origin, &rig).await;
    assert!(reason.contains("length probe"), "{reason}");
    assert!(reason.contains("503"), "{reason}");
    assert_eq!(
        origin.log().iter().filter(|l| l.is_probe()).count(),
        4 + 4,
        "4 attempts, twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_200_instead_of_206_is_retried_then_failed() {
    let origin = Origin::start(content(3 * SMALL_PIECE as usize, 6)).await;
    *origin.knobs.piece_status.lock().unwrap() = Some(200);
    let rig = Rig::new();
    let reason = seed_expecting_failure(&origin, &rig).await;
    assert!(reason.contains("200"), "{reason}");
    assert!(reason.contains("Range"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_wrong_length_is_retried_then_failed() {
    let origin = Origin::start(content(3 * SMALL_PIECE as usize, 8)).await;
    origin.knobs.short_by_one.store(true, Ordering::SeqCst);
    let rig = Rig::new();
    let reason = seed_expecting_failure(&origin, &rig).await;
    assert!(reason.contains("Content-Length"), "{reason}");
    assert!(reason.contains("gave up after 4 attempts"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_404_fails_at_once() {
    let origin = Origin::start(content(10, 9)).await;
    *origin.knobs.probe_status.lock().unwrap() = Some(404);
    let rig = Rig::new();
    let seeder = rig.seeder(test_cfg());
    let reason = seeder
        .seed(request(&origin.url(), None))
        .done()
        .await
        .unwrap_err();
    assert!(reason.contains("404"), "{reason}");
    assert_eq!(origin.log().len(), 1, "not worth a retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_without_range_support_is_streamed_whole_into_pieces() {
    let want = content(5 * SMALL_PIECE as usize + 77, 10);
    let origin = Origin::start(want.clone()).await;
    origin.knobs.no_ranges.store(true, Ordering::SeqCst);
    origin.knobs.die_mid_body.store(1, Ordering::SeqCst);
    let rig = Rig::new();
    let seeder = rig.seeder(test_cfg());
    let req = request(&origin.url(), Some(SMALL_PIECE));
    let id = req.task_id;
    seeder.seed(req).done().await.unwrap();
    assert_task_holds(&rig.task(&id), &want);
    let all: BTreeSet<u32> = (0..6).collect();
    assert_edge_story(&rig.edge_msgs(), &id, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_content_change_mid_seed_restarts_from_scratch() {
    let old = content(8 * SMALL_PIECE as usize, 11);
    let new = content(8 * SMALL_PIECE as usize, 12);
    let origin = Origin::start(old).await;
    *origin.knobs.change_after.lock().unwrap() = Some((3, new.clone(), "\"v2\"".into()));
    let rig = Rig::new();
    let seeder = rig.seeder(test_cfg());
    let req = request(&origin.url(), Some(SMALL_PIECE));
    let id = req.task_id;
    seeder.seed(req).done().await.unwrap();
    assert_task_holds(&rig.task(&id), &new);
    let msgs = rig.edge_msgs();
    assert!(
        msgs.iter()
            .any(|m| matches!(m, EdgeMsg::TaskRemoved { task } if *task == id)),
        "{msgs:?}"
    );
    assert!(matches!(msgs.last(), Some(EdgeMsg::TaskCompleted { .. })));
}

#[test]
fn origin_crash_mid_seed_resumes_only_the_missing_pieces() {
    crash_then_resume(false);
}

#[test]
fn origin_crash_without_a_version_record_restarts_from_scratch() {
    crash_then_resume(true);
}

/// Five of twelve pieces land, the seeder is dropped mid-task, the store reopened and
/// `resume_partials` run. With the version record lost, the validators cannot vouch for the
/// landed pieces: the task is removed and fetched whole again.
fn crash_then_resume(lose_record: bool) {
    const PIECES: u32 = 12;
    const BEFORE_CRASH: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let want = content(PIECES as usize * SMALL_PIECE as usize - 9, 13);
    let origin_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let origin = origin_rt.block_on(Origin::start(want.clone()));
    *origin.knobs.piece_budget.lock().unwrap() = Some(BEFORE_CRASH);
    let req = request(&origin.url(), Some(SMALL_PIECE));
    let id = req.task_id;
    let cfg = OriginConfig {
        piece_attempts: 1000,
        ..test_cfg()
    };

    // Phase 1: five pieces land, then the origin refuses; the process "crashes".
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let store = Arc::new(Mutex::new(Store::open(dir.path(), Verify::Full).unwrap()));
        let (edge_tx, _edge_rx) = edge(1, 64).unwrap();
        let seeder = Seeder::try_new(cfg.clone(), Arc::clone(&store), edge_tx).unwrap();
        rt.block_on(async {
            let h = seeder.seed(req.clone());
            let mut rx = h.receiver();
            rx.wait_for(|s| {
                matches!(s, SeedStatus::Fetching { landed, .. } if *landed as usize >= BEFORE_CRASH)
            })
            .await
            .unwrap();
        });
        drop(seeder); // aborts the fetch
        drop(rt); // waits for a store write in progress
        drop(store);
    }

    // Phase 2: reopen, resume; only the missing ranges are asked.
    let store = Arc::new(Mutex::new(Store::open(dir.path(), Verify::Full).unwrap()));
    let task = store.lock().unwrap().get(&id).expect("partial task kept");
    assert!(!task.is_complete());
    let landed: BTreeSet<u32> = (0..PIECES).filter(|n| task.has_piece(*n)).collect();
    assert_eq!(landed.len(), BEFORE_CRASH);
    let missing: Vec<String> = (0..PIECES)
        .filter(|n| !landed.contains(n))
        .map(|n| {
            let r = task.layout().piece(n).unwrap();
            format!("bytes={}-{}", r.offset, r.end() - 1)
        })
        .collect();
    drop(task);
    let record = dir.path().join("origin").join(format!("{id}.json"));
    assert!(
        record.exists(),
        "the version is recorded before pieces land"
    );
    if lose_record {
        std::fs::remove_file(&record).unwrap();
    }
    let (landed, missing) = if lose_record {
        let all = (0..PIECES)
            .map(|n| {
                let r = hawker_shared::layout::Layout::new(want.len() as u64, SMALL_PIECE)
                    .unwrap()
                    .piece(n)
                    .unwrap();
                format!("bytes={}-{}", r.offset, r.end() - 1)
            })
            .collect();
        (BTreeSet::new(), all)
    } else {
        (landed, missing)
    };
    origin.clear_log();
    *origin.knobs.piece_budget.lock().unwrap() = None;
    let (edge_tx, edge_rx) = edge(1, 64).unwrap();
    let seeder = Seeder::try_new(cfg, Arc::clone(&store), edge_tx).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(seeder.resume_partials(), 1);
        seeder.seed(req.clone()).done().await.unwrap();
    });
    let ranges = origin.piece_ranges();
    let asked: Vec<String> = ranges.keys().cloned().collect();
    let mut expected = missing.clone();
    expected.sort();
    assert_eq!(asked, expected);
    assert!(ranges.values().all(|c| *c == 1), "{ranges:?}");
    let task = store.lock().unwrap().get(&id).unwrap();
    assert_task_holds(&task, &want);
    let mut msgs: Vec<EdgeMsg> = Vec::new();
    while let Ok(Some(m)) = edge_rx[0].try_recv() {
        msgs.push(m);
    }
    if lose_record {
        assert!(
            matches!(msgs.first(), Some(EdgeMsg::TaskRemoved { task }) if *task == id),
            "{msgs:?}"
        );
        msgs.remove(0);
    }
    let resumed: BTreeSet<u32> = (0..PIECES).filter(|n| !landed.contains(n)).collect();
    assert_edge_story(&msgs, &id, &resumed);
    // The version record is gone once complete.
    assert!(!record.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_shutdown_ends_waiters_and_a_later_seed_completes() {
    let want = content(6 * SMALL_PIECE as usize, 15);
    let origin = Origin::start(want.clone()).await;
    *origin.knobs.piece_budget.lock().unwrap() = Some(2);
    let rig = Rig::new();
    let seeder = rig.seeder(OriginConfig {
        piece_attempts: 1000,
        ..test_cfg()
    });
    let req = request(&origin.url(), Some(SMALL_PIECE));
    let id = req.task_id;
    let mut h = seeder.seed(req.clone());
    h.receiver()
        .wait_for(|s| matches!(s, SeedStatus::Fetching { landed, .. } if *landed >= 2))
        .await
        .unwrap();
    seeder.shutdown();
    let reason = h.done().await.unwrap_err();
    assert!(reason.contains("stopped"), "{reason}");
    *origin.knobs.piece_budget.lock().unwrap() = None;
    // A store write of the aborted fetch may still hold the writer for a moment; such a
    // failure is remembered, so each try sends other headers (which retry at once).
    let mut last = String::new();
    for attempt in 0..100 {
        let mut r = req.clone();
        r.headers = vec![("X-Attempt".into(), attempt.to_string())];
        match seeder.seed(r).done().await {
            Ok(()) => {
                last.clear();
                break;
            }
            Err(e) if e.contains("live TaskWriter") => {
                last = e;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(last.is_empty(), "{last}");
    assert_task_holds(&rig.task(&id), &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_refuses_non_http_urls_at_once() {
    let rig = Rig::new();
    let seeder = rig.seeder(test_cfg());
    let mut req = request("http://127.0.0.1:1/x", None);
    req.url = "file:///etc/passwd".into();
    let reason = seeder.seed(req).done().await.unwrap_err();
    assert!(reason.contains("only http and https"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_bounds_refuse_oversized_headers_and_bad_piece_lengths() {
    let origin = Origin::start(content(10, 14)).await;
    let rig = Rig::new();
    let seeder = rig.seeder(OriginConfig {
        max_forwarded_header_bytes: 64,
        ..test_cfg()
    });
    let mut req = request(&origin.url(), None);
    req.headers = vec![("X-Big".into(), "v".repeat(100))];
    let reason = seeder.seed(req).done().await.unwrap_err();
    assert!(reason.contains("max_forwarded_header_bytes"), "{reason}");
    assert!(origin.log().is_empty());
    let reason = seeder
        .seed(request(&origin.url(), Some(128 << 20)))
        .done()
        .await
        .unwrap_err();
    assert!(reason.contains("piece length"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_unreachable_fails_without_leaking_the_query() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rig = Rig::new();
    let seeder = rig.seeder(test_cfg());
    let url = format!("http://127.0.0.1:{port}/blob?X-Amz-Signature=secret");
    let reason = seeder.seed(request(&url, None)).done().await.unwrap_err();
    assert!(reason.contains("request failed"), "{reason}");
    assert!(reason.contains("gave up after 4 attempts"), "{reason}");
    assert!(!reason.contains("secret"), "{reason}");
}
