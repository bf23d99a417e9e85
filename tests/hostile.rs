//! Hostile peers: garbage, absurd lengths, slowloris, peers that vanish mid-body or stop
//! reading, and more connections than the limit. The server must keep serving well-behaved
//! peers, and its memory must stay bounded.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use hawker_dataplane::SendMode;
use hawker_shared::vortex::{ErrorCode, Tag};

fn hostile_config() -> hawker_dataplane::ServeConfig {
    let mut cfg = config(SendMode::Auto);
    cfg.request_timeout = Duration::from_millis(500);
    cfg.idle_timeout = Duration::from_secs(5);
    cfg.send_stall_timeout = Duration::from_millis(800);
    cfg
}

/// A well-behaved client still gets a verified piece.
fn still_serves(srv: &TestServer) {
    let t = &srv.tasks[0];
    let mut v = connect(srv.vortex);
    match vortex_request(&mut v, Tag::DownloadPiece, &t.id, 0).unwrap() {
        VortexReply::Piece { digest, bytes, .. } => check_piece(t, 0, &digest, &bytes),
        other => panic!("{other:?}"),
    }
    let mut h = connect(srv.http);
    let r = http_request(&mut h, "GET", &format!("/tasks/{}/pieces/0", t.id), &[]).unwrap();
    assert_eq!(r.status, 200);
}

/// Reads until EOF or the timeout; true if the server closed the connection.
fn closed_within(s: &mut std::net::TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
        if start.elapsed() > limit {
            return false;
        }
    }
}

#[test]
fn garbage_and_absurd_lengths_get_an_error_and_a_close() {
    let srv = TestServer::start(&[4 * MIB], hostile_config());
    // A header declaring a 4 GiB DownloadPiece: refused before any buffer is sized.
    let mut s = connect(srv.vortex);
    s.write_all(&[1, 0, 0xff, 0xff, 0xff, 0xff]).unwrap();
    match vortex_read_reply(&mut s).unwrap() {
        VortexReply::Error { code, message } => {
            assert_eq!(code, ErrorCode::InvalidArgument, "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(closed_within(&mut s, Duration::from_secs(5)));
    // A reserved tag declaring 4 GiB: over the skip bound, refused too.
    let mut s = connect(srv.vortex);
    s.write_all(&[1, 77, 0xff, 0xff, 0xff, 0xff]).unwrap();
    assert!(matches!(
        vortex_read_reply(&mut s).unwrap(),
        VortexReply::Error { .. }
    ));
    // A content tag sent to a server; a bad task id.
    let mut s = connect(srv.vortex);
    s.write_all(&[1, 1, 0, 0, 0, 4, 0, 0, 0, 0]).unwrap();
    assert!(matches!(
        vortex_read_reply(&mut s).unwrap(),
        VortexReply::Error { .. }
    ));
    let mut s = connect(srv.vortex);
    let mut req = vec![1u8, 0, 0, 0, 0, 68];
    req.extend_from_slice(&[b'Z'; 64]);
    req.extend_from_slice(&[0, 0, 0, 0]);
    s.write_all(&req).unwrap();
    assert!(matches!(
        vortex_read_reply(&mut s).unwrap(),
        VortexReply::Error { .. }
    ));
    // Random garbage on both ports, many times: never a panic, never a wedge.
    for i in 0..50u64 {
        let junk = random_bytes(1 + (i as usize * 37) % 3000, i);
        for addr in [srv.vortex, srv.http] {
            let mut s = connect(addr);
            let _ = s.write_all(&junk);
            let _ = s.shutdown(std::net::Shutdown::Write);
            assert!(
                closed_within(&mut s, Duration::from_secs(5)),
                "garbage {i} left open"
            );
        }
    }
    // HTTP: a head over the limit gets 431.
    let mut h = connect(srv.http);
    let big = format!(
        "GET /healthz HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(20000)
    );
    let _ = h.write_all(big.as_bytes());
    let r = http_read_reply(&mut h, false).unwrap();
    assert_eq!(r.status, 431);
    still_serves(&srv);
}

#[test]
fn slowloris_is_cut_at_the_request_timeout() {
    let srv = TestServer::start(&[4 * MIB], hostile_config());
    let mut loris = Vec::new();
    for _ in 0..20 {
        let mut s = connect(srv.http);
        s.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").unwrap();
        loris.push(s);
    }
    let mut vloris = connect(srv.vortex);
    vloris.write_all(&[1, 0, 0, 0, 0, 68, b'a', b'b']).unwrap();
    still_serves(&srv);
    std::thread::sleep(Duration::from_millis(300));
    for s in loris.iter_mut() {
        let _ = s.write_all(b"x"); // dribbling does not extend the deadline
    }
    for s in loris.iter_mut() {
        assert!(
            closed_within(s, Duration::from_secs(3)),
            "slowloris not cut"
        );
    }
    assert!(closed_within(&mut vloris, Duration::from_secs(3)));
    still_serves(&srv);
}

#[test]
fn peers_that_vanish_or_stop_reading_do_not_hurt_others() {
    let srv = TestServer::start(&[4 * 4 * MIB], hostile_config());
    let t = &srv.tasks[0];
    // Vanish mid-body: ask for a 4 MiB piece, read a little, reset.
    for n in 0..20u32 {
        let mut s = connect(srv.vortex);
        let req = hawker_shared::vortex::DownloadPiece {
            task_id: t.id,
            piece_number: n % 4,
        }
        .encode_packet(Tag::DownloadPiece, 1);
        s.write_all(&req).unwrap();
        let mut some = [0u8; 1000];
        s.read_exact(&mut some).unwrap();
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)); // RST on close
        drop(s);
    }
    // Stop reading: the server's sends stall and are cut after send_stall_timeout.
    let mut stalled = Vec::new();
    for n in 0..10u32 {
        let mut s = connect(srv.http);
        s.write_all(format!("GET /tasks/{}/pieces/{} HTTP/1.1\r\n\r\n", t.id, n % 4).as_bytes())
            .unwrap();
        stalled.push(s);
    }
    still_serves(&srv);
    std::thread::sleep(Duration::from_millis(1500));
    for s in stalled.iter_mut() {
        // The body is cut short: reading ends well before 4 MiB + head.
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 20];
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        assert!(
            got < 4 * MIB,
            "a stalled reader got the whole piece ({got} bytes)"
        );
    }
    still_serves(&srv);
    let mut h = connect(srv.http);
    let m = String::from_utf8(http_request(&mut h, "GET", "/metrics", &[]).unwrap().body).unwrap();
    let stalls: u64 = m
        .lines()
        .filter(|l| l.starts_with("hawker_errors_total{") && l.contains("kind=\"send_stall\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(
        stalls >= 10,
        "expected the stalled sends to be counted:\n{m}"
    );
}

#[test]
fn connections_over_the_limit_are_refused_and_memory_stays_bounded() {
    let mut cfg = hostile_config();
    cfg.max_connections_per_core = 16;
    let cores = cfg.cores.len();
    let srv = TestServer::start(&[4 * MIB], cfg);
    let before = rss_anon_bytes();
    let mut held = Vec::new();
    for _ in 0..(16 * cores + 40) {
        if let Ok(s) = std::net::TcpStream::connect(srv.vortex) {
            held.push(s);
        }
    }
    // Some of these were closed by the server at once.
    let mut refused = 0;
    for s in held.iter_mut() {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 1];
        if let Ok(0) = s.read(&mut b) {
            refused += 1;
        }
    }
    assert!(
        refused >= 40,
        "only {refused} connections refused over the limit"
    );
    drop(held);
    // Once they are gone, service resumes.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let t = &srv.tasks[0];
        let mut v = connect(srv.vortex);
        if let Ok(VortexReply::Piece { digest, bytes, .. }) =
            vortex_request(&mut v, Tag::DownloadPiece, &t.id, 0)
        {
            check_piece(t, 0, &digest, &bytes);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "service did not resume after the flood"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A thousand hostile connections later, anonymous memory has not grown without bound.
    for i in 0..1000u64 {
        if let Ok(mut s) = std::net::TcpStream::connect(srv.http) {
            let _ = s.write_all(&random_bytes(64, i));
        }
    }
    still_serves(&srv);
    let after = rss_anon_bytes();
    assert!(
        after < before + (64 << 20),
        "anonymous memory grew from {before} to {after} bytes"
    );
}
