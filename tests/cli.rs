//! The `hawker` binary: import while a server runs, drain on SIGTERM, start-up errors.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hawker_shared::vortex::Tag;

const HAWKER: &str = env!("CARGO_BIN_EXE_hawker");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_serve(
    dir: &std::path::Path,
    vortex: SocketAddr,
    http: SocketAddr,
    extra: &[&str],
) -> Proc {
    let child = Command::new(HAWKER)
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args([
            "--vortex-listen",
            &vortex.to_string(),
            "--http-listen",
            &http.to_string(),
            "--cores",
            "0",
            // These tests are about the data plane and several run at once: no control plane
            // (its default ports would collide).
            "--no-control-plane",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hawker serve");
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(http).is_err() {
        assert!(
            Instant::now() < deadline,
            "hawker serve did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

fn import(dir: &std::path::Path, file: &std::path::Path, url: Option<&str>) -> String {
    let mut cmd = Command::new(HAWKER);
    cmd.args(["import", "--data-dir"]).arg(dir);
    if let Some(u) = url {
        cmd.args(["--url", u]);
    }
    let out = cmd.arg(file).output().expect("run hawker import");
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn import_while_serving_is_picked_up() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (v, h) = (free_port(), free_port());
    let _srv = spawn_serve(&data, v, h, &[]);
    let content = random_bytes(5 * MIB, 42);
    let file = tmp.path().join("f");
    std::fs::write(&file, &content).unwrap();
    let id = import(&data, &file, None);
    assert_eq!(id.len(), 64);
    // The id of content without a URL is its sha256.
    use sha2::Digest;
    assert_eq!(id, hex::encode(sha2::Sha256::digest(&content)));
    // With a URL, the Dragonfly task id (no tag, no application, default filtered params).
    let url_id = import(
        &data,
        &file,
        Some("https://example.com/blobs/x?X-Amz-Date=1&b=2&a=1"),
    );
    assert_ne!(url_id, id);
    let task_id = hawker_shared::ids::TaskId::parse(id.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = connect(v);
        match vortex_request(&mut s, Tag::DownloadPiece, &task_id, 1).unwrap() {
            VortexReply::Piece { bytes, .. } => {
                assert!(bytes == content[4 * MIB..], "piece 1 bytes");
                break;
            }
            VortexReply::Error { .. } => {
                assert!(
                    Instant::now() < deadline,
                    "imported task never became servable"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn sigterm_drains_healthz_then_finishes_in_flight_pieces_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let content = random_bytes(16 * MIB, 7);
    let file = tmp.path().join("f");
    std::fs::write(&file, &content).unwrap();
    let id = import(&data, &file, None);
    let task_id = hawker_shared::ids::TaskId::parse(id.as_bytes()).unwrap();
    let (v, h) = (free_port(), free_port());
    let mut srv = spawn_serve(
        &data,
        v,
        h,
        &["--drain-grace-ms", "1500", "--drain-timeout-ms", "10000"],
    );
    // Start a piece and read it slowly, so it is in flight when SIGTERM arrives.
    // A small receive window keeps most of the piece on the server side while we dawdle.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(64 * 1024).unwrap();
    sock.connect(&v.into()).unwrap();
    let mut slow: std::net::TcpStream = sock.into();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let req = hawker_shared::vortex::DownloadPiece {
        task_id,
        piece_number: 2,
    }
    .encode_packet(Tag::DownloadPiece, 1);
    slow.write_all(&req).unwrap();
    let mut first = [0u8; 4096];
    slow.read_exact(&mut first).unwrap();
    let pid = nix::unistd::Pid::from_raw(srv.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    // During the grace period the listener still accepts and /healthz says 503 draining.
    std::thread::sleep(Duration::from_millis(200));
    let mut hc = connect(h);
    let r = http_request(&mut hc, "GET", "/healthz", &[]).unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.body, b"draining");
    // Past the grace period, while the piece is still in flight: Vortex takes no new
    // connection, HTTP still answers /healthz 503 and refuses piece work with 503.
    std::thread::sleep(Duration::from_millis(1600));
    let refused = match std::net::TcpStream::connect(v) {
        Err(_) => true,
        Ok(mut s) => {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(&req);
            let mut b = [0u8; 1];
            matches!(s.read(&mut b), Ok(0) | Err(_))
        }
    };
    assert!(
        refused,
        "a new Vortex connection was served during the drain"
    );
    let r = http_request(&mut connect(h), "GET", "/healthz", &[]).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (503, b"draining".as_slice()));
    let r = http_request(
        &mut connect(h),
        "GET",
        &format!("/tasks/{id}/pieces/0"),
        &[],
    )
    .unwrap();
    assert_eq!(r.status, 503);
    // The in-flight piece completes, byte for byte.
    let mut rest = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    while rest.len() + first.len() < 4 * MIB + 200 {
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
            Err(e) => panic!("in-flight piece cut: {e}"),
        }
    }
    let mut all = first.to_vec();
    all.extend_from_slice(&rest);
    let value_len = u32::from_be_bytes(all[2..6].try_into().unwrap()) as usize;
    let body = &all[6 + value_len..];
    assert!(
        body[..4 * MIB] == content[8 * MIB..12 * MIB],
        "drained piece bytes differ"
    );
    // Then the process exits 0 by itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = srv.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "hawker did not exit after draining"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}

/// Runs `hawker serve` on loopback ports with `data_dir` and `extra` flags, expecting it to fail
/// at start-up; returns what it printed on stderr.
fn serve_start_up_error(data_dir: &std::path::Path, vortex: &str, extra: &[&str]) -> String {
    let out = Command::new(HAWKER)
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args([
            "--vortex-listen",
            vortex,
            "--http-listen",
            "127.0.0.1:0",
            "--cores",
            "0",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn start_up_errors_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    // Port in use.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let err = serve_start_up_error(&tmp.path().join("d"), &busy, &[]);
    assert!(
        err.contains("already in use") && err.contains("--vortex-listen"),
        "{err}"
    );
    // A data dir that cannot be created.
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let err = serve_start_up_error(&blocker.join("sub"), "127.0.0.1:0", &[]);
    assert!(
        err.contains("data dir") || err.contains("data directory"),
        "{err}"
    );
    // A congestion control this kernel does not have.
    let err = serve_start_up_error(
        &tmp.path().join("d2"),
        "127.0.0.1:0",
        &["--no-control-plane", "--tcp-congestion", "no-such-cc"],
    );
    assert!(
        err.contains("--tcp-congestion") && err.contains("available here"),
        "{err}"
    );
    // A bad CPU list.
    let out = Command::new(HAWKER)
        .args(["serve", "--cores", "9999"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CPU"));
}
