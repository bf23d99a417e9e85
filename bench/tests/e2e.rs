//! End-to-end: the dp-bench binary against in-process mock servers on loopback.
//!
//! - A Vortex server whose responses are encoded by Dragonfly's own `vortex-protocol` crate
//!   (so the bench is checked against the reference encoding, not against hawker-shared's).
//! - An HTTP/1.1 keep-alive server serving hawker piece URLs (with X-Hawker-Piece-Digest) and
//!   whole files with byte ranges.
//!
//! Each server counts what it sent; the tests check that dp-bench's JSON agrees exactly, that
//! clean runs exit 0 with zero errors, and that a wrong digest or corrupted content is
//! counted as `bad_digest` and makes the run exit 1. No timing assertions.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use vortex_protocol::tlv::error::{Code, Error as VortexError};
use vortex_protocol::tlv::piece_content::PieceContent;
use vortex_protocol::tlv::piece_metadata::PieceMetadata;
use vortex_protocol::{Message, Vortex, HEADER_SIZE};

const PIECE_LENGTH: u64 = 16 * 1024;

/// What the mock servers serve and how they misbehave.
struct Content {
    /// task id -> content
    tasks: HashMap<String, Vec<u8>>,
    /// Send a wrong digest (metadata or header) for this piece number.
    bad_digest_piece: Option<u32>,
    /// Flip a content byte of this piece number (digest stays the true one).
    corrupt_piece: Option<u32>,
    requests: AtomicU64,
    pieces: AtomicU64,
    bytes: AtomicU64,
    bad_digest_sent: AtomicU64,
    corrupt_sent: AtomicU64,
}

impl Content {
    fn new(bad_digest_piece: Option<u32>, corrupt_piece: Option<u32>) -> Arc<Content> {
        let mut tasks = HashMap::new();
        for (k, len) in [(1u64, 100_003usize), (2, 40_000), (3, 5)] {
            let content: Vec<u8> = (0..len as u64)
                .map(|i| {
                    ((i.wrapping_add(k * 7919)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
                })
                .collect();
            tasks.insert(format!("{k:064x}"), content);
        }
        Arc::new(Content {
            tasks,
            bad_digest_piece,
            corrupt_piece,
            requests: AtomicU64::new(0),
            pieces: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            bad_digest_sent: AtomicU64::new(0),
            corrupt_sent: AtomicU64::new(0),
        })
    }

    /// The piece's bytes (possibly corrupted) and the digest to announce (possibly wrong).
    fn piece(&self, id: &str, number: u32) -> Option<(u64, Vec<u8>, String)> {
        let content = self.tasks.get(id)?;
        let offset = u64::from(number) * PIECE_LENGTH;
        if offset >= content.len() as u64 {
            return None;
        }
        let end = (offset + PIECE_LENGTH).min(content.len() as u64);
        let mut bytes = content[offset as usize..end as usize].to_vec();
        let mut crc = crc32fast::hash(&bytes);
        if self.bad_digest_piece == Some(number) {
            crc = crc.wrapping_add(1);
            self.bad_digest_sent.fetch_add(1, Ordering::Relaxed);
        }
        if self.corrupt_piece == Some(number) {
            bytes[0] ^= 0xff;
            self.corrupt_sent.fetch_add(1, Ordering::Relaxed);
        }
        self.pieces.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Some((offset, bytes, format!("crc32:{crc}")))
    }

    fn write_task_file(&self, path: &Path, with_digests: bool) {
        let mut ids: Vec<&String> = self.tasks.keys().collect();
        ids.sort();
        let mut text = String::from("# id content_length piece_length digests\n");
        for id in ids {
            let content = &self.tasks[id];
            let digests = if with_digests {
                content
                    .chunks(PIECE_LENGTH as usize)
                    .map(|c| format!("crc32:{}", crc32fast::hash(c)))
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                "-".into()
            };
            text.push_str(&format!(
                "{id} {} {PIECE_LENGTH} {digests}\n",
                content.len()
            ));
        }
        std::fs::write(path, text).unwrap();
    }
}

fn serve(handler: fn(TcpStream, Arc<Content>), content: Arc<Content>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let content = Arc::clone(&content);
            std::thread::spawn(move || handler(stream, content));
        }
    });
    addr
}

fn vortex_connection(mut stream: TcpStream, content: Arc<Content>) {
    let mut request = [0u8; HEADER_SIZE + 68];
    let mut out = Vec::new();
    while stream.read_exact(&mut request).is_ok() {
        content.requests.fetch_add(1, Ordering::Relaxed);
        let Ok(Vortex::DownloadPiece(_, req)) = Vortex::decode(&request) else {
            return;
        };
        out.clear();
        match content.piece(&req.task_id, req.piece_number) {
            Some((offset, bytes, digest)) => {
                PieceContent {
                    metadata: PieceMetadata {
                        number: req.piece_number,
                        offset,
                        length: bytes.len() as u64,
                        digest,
                        parent_id: "127.0.0.1-mock-seed".into(),
                        traffic_type: 1,
                        cost: std::time::Duration::from_secs(0),
                        created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0)
                            .unwrap()
                            .naive_utc(),
                    },
                }
                .encode_packet(&mut out);
                out.extend_from_slice(&bytes);
            }
            None => {
                VortexError::new(Code::NotFound, "no such piece".into()).encode_packet(&mut out)
            }
        }
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

fn http_connection(stream: TcpStream, content: Arc<Content>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut range = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.strip_prefix("Range: bytes=") {
                let (a, b) = v.trim().split_once('-').unwrap();
                range = Some((a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap()));
            }
        }
        content.requests.fetch_add(1, Ordering::Relaxed);
        let parts: Vec<&str> = path.split('/').collect();
        let response = match (parts.as_slice(), range) {
            // /tasks/{id}/pieces/{n}
            (["", "tasks", id, "pieces", n], None) => {
                match content.piece(id, n.parse().unwrap_or(u32::MAX)) {
                    Some((_, bytes, digest)) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Hawker-Piece-Digest: {digest}\r\n\r\n",
                            bytes.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(&bytes);
                        r
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found".to_vec()
                    }
                }
            }
            // /files/{id} with a piece-aligned range
            (["", "files", id], Some((first, last))) => {
                let number = (first / PIECE_LENGTH) as u32;
                match content.piece(id, number) {
                    Some((offset, bytes, _)) if offset == first => {
                        assert_eq!(last, offset + bytes.len() as u64 - 1, "range end");
                        let total = content.tasks[*id].len();
                        let mut r = format!(
                            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {first}-{last}/{total}\r\n\r\n",
                            bytes.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(&bytes);
                        r
                    }
                    _ => {
                        b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n".to_vec()
                    }
                }
            }
            _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        };
        if writer.write_all(&response).is_err() {
            return;
        }
    }
}

struct Run {
    code: i32,
    stdout: String,
    json: serde_json::Value,
}

fn dp_bench(args: &[&str], content: &Content, digests_in_list: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("tasks.txt");
    content.write_task_file(&tasks, digests_in_list);
    let json = dir.path().join("out.json");
    let svg = dir.path().join("out.svg");
    let output = Command::new(env!("CARGO_BIN_EXE_dp-bench"))
        .args(args)
        .arg("--tasks-file")
        .arg(&tasks)
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .arg("--quiet")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let json_text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("no JSON ({e}); stdout:\n{stdout}\nstderr:\n{stderr}"));
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<svg") && svg_text.trim_end().ends_with("</svg>"));
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout,
        json: serde_json::from_str(&json_text).unwrap(),
    }
}

fn assert_clean(run: &Run, content: &Content, requests: u64) {
    let j = &run.json;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(j["ok"], true, "{}", run.stdout);
    assert_eq!(j["errors"]["total"], 0, "{}", run.stdout);
    assert_eq!(j["pieces"], requests);
    assert_eq!(j["requests"], requests);
    assert_eq!(content.requests.load(Ordering::Relaxed), requests);
    assert_eq!(j["bytes"], content.bytes.load(Ordering::Relaxed));
    assert_eq!(j["latency"]["count"], requests);
    assert!(!run.stdout.starts_with("FAILED"));
}

#[test]
fn vortex_clean_run_counts_right() {
    let content = Content::new(None, None);
    let addr = serve(vortex_connection, Arc::clone(&content)).to_string();
    let run = dp_bench(
        &[
            "--vortex", &addr, "-c", "4", "-t", "2", "-n", "300", "--dist", "zipf",
        ],
        &content,
        true,
    );
    assert_clean(&run, &content, 300);
    assert_eq!(run.json["config"]["protocol"], "vortex");
    assert_eq!(run.json["config"]["pieces_total"], 7 + 3 + 1);
    // Four connections, kept open: nothing re-connected.
    assert_eq!(run.json["connects"], 4);
}

#[test]
fn vortex_wrong_digest_is_an_error() {
    let content = Content::new(Some(1), None);
    let addr = serve(vortex_connection, Arc::clone(&content)).to_string();
    let run = dp_bench(
        &["--vortex", &addr, "-c", "3", "-n", "200"],
        &content,
        false,
    );
    let bad = content.bad_digest_sent.load(Ordering::Relaxed);
    assert!(bad > 0, "the workload never asked for piece 1");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.json["ok"], false);
    assert_eq!(run.json["errors"]["by_kind"]["bad_digest"], bad);
    assert_eq!(run.json["errors"]["total"], bad);
    assert_eq!(run.json["pieces"].as_u64().unwrap() + bad, 200);
    assert!(run.stdout.starts_with("FAILED:"), "{}", run.stdout);
    // A digest error leaves the Vortex connection in step: no re-connects.
    assert_eq!(run.json["connects"], 3);
}

#[test]
fn vortex_error_frames_are_server_errors() {
    let content = Content::new(None, None);
    let addr = serve(vortex_connection, Arc::clone(&content)).to_string();
    // A task the server does not have.
    let missing = format!("{:064x}", 99);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let output = Command::new(env!("CARGO_BIN_EXE_dp-bench"))
        .args(["--vortex", &addr, "-c", "2", "-n", "10", "--quiet"])
        .args([
            "--task",
            &missing,
            "--content-length",
            "1000",
            "--piece-length",
            "100",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["errors"]["by_kind"]["server_error"], 10);
    assert_eq!(j["pieces"], 0);
    assert_eq!(j["connects"], 2);
}

#[test]
fn http_hawker_style_clean_run_and_duration_stop() {
    let content = Content::new(None, None);
    let base = format!("http://{}", serve(http_connection, Arc::clone(&content)));
    let run = dp_bench(&["--http", &base, "-c", "4", "-n", "250"], &content, false);
    assert_clean(&run, &content, 250);

    // A duration-bound, open-loop run: it stops on its own and every request is accounted.
    let content = Content::new(None, None);
    let base = format!("http://{}", serve(http_connection, Arc::clone(&content)));
    let run = dp_bench(
        &[
            "--http",
            &base,
            "-c",
            "2",
            "--duration",
            "1500ms",
            "--rate",
            "100",
        ],
        &content,
        false,
    );
    let served = content.requests.load(Ordering::Relaxed);
    assert!(served > 0);
    assert_clean(&run, &content, served);
    assert_eq!(run.json["latency"]["measured_from"], "intended_start");
    assert!(!run.json["series"].as_array().unwrap().is_empty());
}

#[test]
fn http_wrong_digest_header_is_an_error() {
    let content = Content::new(Some(0), None);
    let base = format!("http://{}", serve(http_connection, Arc::clone(&content)));
    let run = dp_bench(&["--http", &base, "-c", "2", "-n", "100"], &content, false);
    let bad = content.bad_digest_sent.load(Ordering::Relaxed);
    assert!(bad > 0);
    assert_eq!(run.code, 1);
    assert_eq!(run.json["errors"]["by_kind"]["bad_digest"], bad);
    assert_eq!(run.json["pieces"].as_u64().unwrap() + bad, 100);
}

#[test]
fn http_range_style_verifies_against_the_task_list() {
    let content = Content::new(None, None);
    let base = format!("http://{}", serve(http_connection, Arc::clone(&content)));
    let range = [
        "--http",
        &base,
        "--http-style",
        "range",
        "--http-path-template",
        "/files/{id}",
        "-c",
        "3",
        "-n",
        "120",
    ];
    let run = dp_bench(&range, &content, true);
    assert_clean(&run, &content, 120);
    assert_eq!(run.json["config"]["http_style"], "range");

    // Corrupted content with the true digests in the task list: caught.
    let content = Content::new(None, Some(2));
    let base = format!("http://{}", serve(http_connection, Arc::clone(&content)));
    let mut corrupt = range;
    corrupt[1] = &base;
    let run = dp_bench(&corrupt, &content, true);
    let bad = content.corrupt_sent.load(Ordering::Relaxed);
    assert!(bad > 0);
    assert_eq!(run.code, 1);
    assert_eq!(run.json["errors"]["by_kind"]["bad_digest"], bad);

    // With --no-verify the same corruption goes unnoticed (and the run says it did not verify).
    let content = Content::new(None, Some(2));
    let base = format!("http://{}", serve(http_connection, Arc::clone(&content)));
    let mut unverified = corrupt.to_vec();
    unverified[1] = &base;
    unverified.push("--no-verify");
    let run = dp_bench(&unverified, &content, true);
    assert_clean(&run, &content, 120);
    assert_eq!(run.json["config"]["verify"], false);
}

#[test]
fn connect_failures_are_counted_and_fail_the_run() {
    // A port nobody listens on: bind, learn the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let content = Content::new(None, None);
    let run = dp_bench(
        &[
            "--vortex",
            &format!("127.0.0.1:{port}"),
            "-c",
            "2",
            "-n",
            "4",
        ],
        &content,
        false,
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.json["pieces"], 0);
    assert!(run.json["errors"]["by_kind"]["connect"].as_u64().unwrap() >= 4);
    assert!(run.stdout.starts_with("FAILED:"));
}
