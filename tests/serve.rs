//! End to end over real sockets: every piece over Vortex and HTTP, for every send strategy,
//! Range edge cases, Vortex error handling.

mod common;

use common::*;
use hawker_dataplane::SendMode;
use hawker_shared::vortex::{ErrorCode, Tag};

/// Empty, one byte, exactly one piece, one byte over, several pieces (4 MiB each).
const SIZES: [usize; 5] = [0, 1, 4 * MIB, 4 * MIB + 1, 3 * 4 * MIB + 12345];

fn fetch_everything(mode: SendMode) {
    let srv = TestServer::start(&SIZES, config(mode));
    // One Vortex connection for everything: a kept-alive connection serves many pieces.
    let mut v = connect(srv.vortex);
    let mut h = connect(srv.http);
    for t in &srv.tasks {
        assert_eq!(
            t.layout.piece_count() as usize,
            t.content.len().div_ceil(4 * MIB)
        );
        for n in 0..t.layout.piece_count() {
            match vortex_request(&mut v, Tag::DownloadPiece, &t.id, n).unwrap() {
                VortexReply::Piece {
                    number,
                    offset,
                    digest,
                    bytes,
                    tag,
                } => {
                    assert_eq!((number, tag), (n, Tag::PieceContent));
                    assert_eq!(offset, t.layout.piece(n).unwrap().offset);
                    check_piece(t, n, &digest, &bytes);
                }
                other => panic!("{mode:?}: piece {n} of {}: {other:?}", t.id),
            }
            let r =
                http_request(&mut h, "GET", &format!("/tasks/{}/pieces/{n}", t.id), &[]).unwrap();
            assert_eq!(r.status, 200);
            let digest = r
                .header("X-Hawker-Piece-Digest")
                .expect("digest header")
                .to_string();
            check_piece(t, n, &digest, &r.body);
        }
        let r = http_request(&mut h, "GET", &format!("/tasks/{}", t.id), &[]).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body == t.content, "{mode:?}: whole task {} differs", t.id);
    }
    // The metrics say which strategy moved the bytes.
    let m = http_request(&mut h, "GET", "/metrics", &[]).unwrap();
    let text = String::from_utf8(m.body).unwrap();
    let strategy = match mode {
        SendMode::Copy => "copy",
        SendMode::Zerocopy => "zerocopy",
        SendMode::Sendfile | SendMode::Auto => "sendfile",
    };
    let moved: u64 = text
        .lines()
        .filter(|l| {
            l.starts_with("hawker_send_bytes_total{")
                && l.contains(&format!("strategy=\"{strategy}\""))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(moved > 0, "{mode:?}: no bytes moved by {strategy}:\n{text}");
}

#[test]
fn every_piece_copy() {
    fetch_everything(SendMode::Copy);
}

#[test]
fn every_piece_zerocopy() {
    fetch_everything(SendMode::Zerocopy);
}

#[test]
fn every_piece_sendfile() {
    fetch_everything(SendMode::Sendfile);
}

#[test]
fn every_piece_auto() {
    fetch_everything(SendMode::Auto);
}

#[test]
fn range_edge_cases() {
    let srv = TestServer::start(&[0, 1, 4 * MIB + 100], config(SendMode::Auto));
    let mut h = connect(srv.http);
    let [empty, one, big] = &srv.tasks[..] else {
        unreachable!()
    };
    let path = |t: &Imported| format!("/tasks/{}", t.id);
    let len = big.content.len();
    /// Range header, status, and the inclusive byte span expected in the body.
    type Case<'a> = (&'a str, u16, Option<(usize, usize)>);
    let cases: Vec<Case> = vec![
        ("bytes=0-0", 206, Some((0, 0))),
        ("bytes=-1", 206, Some((len - 1, len - 1))),
        ("bytes=5-", 206, Some((5, len - 1))),
        ("bytes=4194300-4194310", 206, Some((4194300, 4194310))), // across the piece boundary
        ("bytes=0-999999999", 206, Some((0, len - 1))),           // end clamped
        ("bytes=-999999999", 206, Some((0, len - 1))),            // suffix longer than content
        ("bytes=999999999-", 416, None),
        ("bytes=0-1,5-6", 200, Some((0, len - 1))), // several ranges: ignored, whole content
        ("bytes=x-y", 200, Some((0, len - 1))),     // unparseable: ignored
    ];
    for (range, status, want) in cases {
        let r = http_request(&mut h, "GET", &path(big), &[("Range", range)]).unwrap();
        assert_eq!(r.status, status, "Range: {range}");
        match want {
            Some((a, b)) => {
                assert!(r.body == big.content[a..=b], "Range: {range} body");
                if status == 206 {
                    assert_eq!(
                        r.header("Content-Range").unwrap(),
                        format!("bytes {a}-{b}/{len}")
                    );
                }
            }
            None => assert_eq!(r.header("Content-Range").unwrap(), format!("bytes */{len}")),
        }
    }
    // Ranges of one piece: relative to the piece; the digest header is the whole piece's.
    let piece1 = &big.content[4 * MIB..];
    let r = http_request(
        &mut h,
        "GET",
        &format!("/tasks/{}/pieces/1", big.id),
        &[("Range", "bytes=10-19")],
    )
    .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (206, &piece1[10..20]));
    assert_eq!(
        r.header("Content-Range").unwrap(),
        format!("bytes 10-19/{}", piece1.len())
    );
    let digest = r.header("X-Hawker-Piece-Digest").unwrap();
    assert_eq!(
        hawker_shared::digest::parse_piece_digest(digest),
        Some(hawker_shared::digest::crc32(piece1))
    );
    let r = http_request(
        &mut h,
        "GET",
        &format!("/tasks/{}/pieces/1", big.id),
        &[("Range", "bytes=100-")],
    )
    .unwrap();
    assert_eq!(r.status, 416);
    // One byte and empty content.
    let r = http_request(&mut h, "GET", &path(one), &[("Range", "bytes=0-0")]).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (206, &one.content[..]));
    let r = http_request(&mut h, "GET", &path(empty), &[("Range", "bytes=0-0")]).unwrap();
    assert_eq!(r.status, 416);
    let r = http_request(&mut h, "GET", &path(empty), &[]).unwrap();
    assert_eq!((r.status, r.body.len()), (200, 0));
    // HEAD: the length, no body; the connection stays usable.
    let r = http_request(&mut h, "HEAD", &path(big), &[]).unwrap();
    assert_eq!(
        (r.status, r.header("Content-Length").unwrap()),
        (200, len.to_string().as_str())
    );
    let r = http_request(&mut h, "GET", "/healthz", &[]).unwrap();
    assert_eq!(r.status, 200);
    // Unknown task and piece: 404, connection kept.
    let r = http_request(&mut h, "GET", &format!("/tasks/{}", "a".repeat(64)), &[]).unwrap();
    assert_eq!(r.status, 404);
    let r = http_request(&mut h, "GET", &format!("/tasks/{}/pieces/9", big.id), &[]).unwrap();
    assert_eq!(r.status, 404);
    let r = http_request(&mut h, "GET", &format!("/tasks/{}/pieces/1", big.id), &[]).unwrap();
    assert_eq!(r.status, 200);
    // A path we cannot route: 404, and the connection is closed (we answer, then close, any
    // request we could not parse).
    let r = http_request(&mut h, "GET", "/nope", &[]).unwrap();
    assert_eq!((r.status, r.header("Connection")), (404, Some("close")));
    let r = http_request(&mut connect(srv.http), "POST", "/healthz", &[]).unwrap();
    assert_eq!((r.status, r.header("Allow")), (405, Some("GET, HEAD")));
}

#[test]
fn vortex_errors_keep_the_connection_usable() {
    let srv = TestServer::start(&[4 * MIB + 1], config(SendMode::Auto));
    let t = &srv.tasks[0];
    let mut v = connect(srv.vortex);
    let unknown = hawker_shared::ids::TaskId::parse("b".repeat(64).as_bytes()).unwrap();
    match vortex_request(&mut v, Tag::DownloadPiece, &unknown, 0).unwrap() {
        VortexReply::Error { code, .. } => assert_eq!(code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    match vortex_request(&mut v, Tag::DownloadPiece, &t.id, 2).unwrap() {
        VortexReply::Error { code, .. } => assert_eq!(code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    // A reserved tag is skipped by its length; the next request is answered.
    use std::io::Write;
    v.write_all(&[9, 100, 0, 0, 0, 5, 1, 2, 3, 4, 5]).unwrap();
    match vortex_request(&mut v, Tag::DownloadPiece, &t.id, 1).unwrap() {
        VortexReply::Piece { digest, bytes, .. } => check_piece(t, 1, &digest, &bytes),
        other => panic!("{other:?}"),
    }
    // The other request tags are answered with their own content tags.
    for (req, resp) in [
        (Tag::DownloadPersistentPiece, Tag::PersistentPieceContent),
        (
            Tag::DownloadPersistentCachePiece,
            Tag::PersistentCachePieceContent,
        ),
        (Tag::DownloadCachePiece, Tag::CachePieceContent),
    ] {
        match vortex_request(&mut v, req, &t.id, 0).unwrap() {
            VortexReply::Piece {
                tag, digest, bytes, ..
            } => {
                assert_eq!(tag, resp);
                check_piece(t, 0, &digest, &bytes);
            }
            other => panic!("{other:?}"),
        }
    }
    // Close is honoured: the server closes its side.
    v.write_all(&[1, 254, 0, 0, 0, 0]).unwrap();
    let mut buf = [0u8; 1];
    use std::io::Read;
    assert_eq!(
        v.read(&mut buf).unwrap(),
        0,
        "server must close after Close"
    );
}

/// The real client's own codec (vortex-protocol 0.2.0) against our server's bytes.
#[test]
fn the_reference_codec_reads_our_replies() {
    use bytes::BytesMut;
    use std::io::{Read, Write};
    use vortex_protocol::tlv::download_piece::DownloadPiece;
    use vortex_protocol::tlv::piece_metadata::METADATA_LENGTH_SIZE;
    use vortex_protocol::{Header, Message, HEADER_SIZE};
    let srv = TestServer::start(&[4 * MIB + 7], config(SendMode::Auto));
    let t = &srv.tasks[0];
    let mut s = connect(srv.vortex);
    for n in 0..2u32 {
        let req = DownloadPiece::new(t.id.to_string(), n);
        let mut buf = BytesMut::new();
        req.encode_packet(&mut buf);
        s.write_all(&buf).unwrap();
        let mut h = [0u8; HEADER_SIZE];
        s.read_exact(&mut h).unwrap();
        let header = Header::decode(&h).unwrap();
        assert_eq!(header.tag(), vortex_protocol::tlv::Tag::PieceContent);
        // As dfdaemon 1.5.10 does: read the metadata length, then the metadata.
        let mut l = [0u8; METADATA_LENGTH_SIZE];
        s.read_exact(&mut l).unwrap();
        let mlen = u32::from_be_bytes(l) as usize;
        assert_eq!(header.length() as usize, METADATA_LENGTH_SIZE + mlen);
        let mut value = l.to_vec();
        value.resize(METADATA_LENGTH_SIZE + mlen, 0);
        s.read_exact(&mut value[METADATA_LENGTH_SIZE..]).unwrap();
        let pc = vortex_protocol::tlv::piece_content::PieceContent::decode(&value).unwrap();
        let mut bytes = vec![0u8; pc.metadata.length as usize];
        s.read_exact(&mut bytes).unwrap();
        assert_eq!(pc.metadata.number, n);
        check_piece(t, n, &pc.metadata.digest, &bytes);
    }
}

/// A task being seeded is served piece by piece as the edge announces each one.
#[test]
fn a_task_is_served_while_its_pieces_arrive() {
    use hawker_dataplane::edge::EdgeMsg;
    use hawker_dataplane::store::{Store, Verify};
    use hawker_shared::layout::Layout;
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(&tmp.path().join("data"), Verify::Full).unwrap();
    let content = random_bytes(3 * 4 * MIB + 5, 99);
    let layout = Layout::for_content(content.len() as u64);
    let id = hawker_shared::ids::task_id_from_content(&content);
    let (task, mut writer) = store.begin(id, None, layout).unwrap();
    let piece = |n: u32| {
        let r = layout.piece(n).unwrap();
        &content[r.offset as usize..(r.offset + r.length) as usize]
    };
    writer.write_piece(1, piece(1)).unwrap();
    let server =
        hawker_dataplane::Server::start(config(SendMode::Auto), vec![task.clone()]).unwrap();
    let imported = Imported {
        id,
        content: content.clone(),
        layout,
    };
    let mut v = connect(server.vortex_addr);
    let mut h = connect(server.http_addr);
    let get =
        |v: &mut std::net::TcpStream, n| vortex_request(v, Tag::DownloadPiece, &id, n).unwrap();
    // Landed before start: served. Not landed: not found, over both protocols.
    assert!(matches!(get(&mut v, 1), VortexReply::Piece { .. }));
    assert!(matches!(
        get(&mut v, 0),
        VortexReply::Error {
            code: ErrorCode::NotFound,
            ..
        }
    ));
    let r = http_request(&mut h, "GET", &format!("/tasks/{id}/pieces/0"), &[]).unwrap();
    assert_eq!(r.status, 404);
    let r = http_request(
        &mut h,
        "GET",
        &format!("/tasks/{id}"),
        &[("Range", "bytes=0-10")],
    )
    .unwrap();
    assert_eq!(r.status, 503);
    // Written but not yet announced: still not served (the edge is the only way in).
    writer.write_piece(0, piece(0)).unwrap();
    assert!(matches!(get(&mut v, 0), VortexReply::Error { .. }));
    server.edge().broadcast(EdgeMsg::PieceLanded {
        task: id,
        number: 0,
    });
    // Every core learns it within one loop turn; poll a few times on fresh connections.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut c = connect(server.vortex_addr);
        if let VortexReply::Piece { digest, bytes, .. } = get(&mut c, 0) {
            check_piece(&imported, 0, &digest, &bytes);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "piece 0 never became servable"
        );
    }
    let r = http_request(
        &mut h,
        "GET",
        &format!("/tasks/{id}"),
        &[("Range", "bytes=0-10")],
    )
    .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (206, &content[0..=10]));
    for n in 2..layout.piece_count() {
        writer.write_piece(n, piece(n)).unwrap();
    }
    let done = writer.finish(None).unwrap();
    assert!(done.is_complete());
    server.edge().broadcast(EdgeMsg::TaskCompleted { task: id });
    std::thread::sleep(std::time::Duration::from_millis(100));
    let r = http_request(
        &mut connect(server.http_addr),
        "GET",
        &format!("/tasks/{id}"),
        &[],
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == content);
    // Removed: gone from every core.
    server.edge().broadcast(EdgeMsg::TaskRemoved { task: id });
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(matches!(
        get(&mut connect(server.vortex_addr), 1),
        VortexReply::Error { .. }
    ));
    server.drain();
    server.join().unwrap();
}

/// /healthz tells a load balancer serving (200), draining (503) and failed (503) apart.
#[test]
fn healthz_reports_each_state() {
    use hawker_dataplane::metrics::Health;
    let srv = TestServer::start(&[1], config(SendMode::Auto));
    let shared = srv.server.as_ref().unwrap().shared();
    let check = |status: u16, body: &[u8]| {
        let r = http_request(&mut connect(srv.http), "GET", "/healthz", &[]).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (status, body));
    };
    check(200, b"serving");
    shared.set_health(Health::Failed);
    check(503, b"failed");
    // Health only moves forward: a failed host does not go back to serving or draining.
    shared.set_health(Health::Draining);
    check(503, b"failed");
    let r = http_request(&mut connect(srv.http), "GET", "/metrics", &[]).unwrap();
    assert!(String::from_utf8(r.body)
        .unwrap()
        .contains("hawker_health{state=\"failed\"} 2"));
}

/// More operations in one turn than the ring has entries: the core keeps the overflow and
/// submits it next turn; every connection is still answered.
#[test]
fn a_small_ring_still_answers_every_connection() {
    use std::io::Write;
    let mut cfg = config(SendMode::Copy);
    cfg.ring_entries = 64;
    let srv = TestServer::start(&[4 * MIB + 3], cfg);
    let t = &srv.tasks[0];
    let mut conns: Vec<_> = (0..300).map(|_| connect(srv.vortex)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let req = hawker_shared::vortex::DownloadPiece {
            task_id: t.id,
            piece_number: (i % 2) as u32,
        }
        .encode_packet(Tag::DownloadPiece, 1);
        c.write_all(&req).unwrap();
    }
    for (i, c) in conns.iter_mut().enumerate() {
        match vortex_read_reply(c).unwrap() {
            VortexReply::Piece {
                number,
                digest,
                bytes,
                ..
            } => {
                assert_eq!(number, (i % 2) as u32);
                check_piece(t, number, &digest, &bytes);
            }
            other => panic!("connection {i}: {other:?}"),
        }
    }
}

/// With a budget of one piece in flight per core, responses wait their turn, first come first
/// served. Peers that stop reading (a small receive window, never read) or leave while waiting
/// do not hold up the queue: a stalled response gives up its place after ADMISSION_STALL.
#[test]
fn responses_wait_their_turn_under_the_admission_budget() {
    use std::io::Write;
    let mut cfg = config(SendMode::Sendfile);
    cfg.max_active_body_bytes_per_core = 4 * MIB as u64;
    let srv = TestServer::start(&[2 * 4 * MIB], cfg);
    let t = &srv.tasks[0];
    let stalled_peer = || {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(16 * 1024).unwrap();
        sock.connect(&srv.vortex.into()).unwrap();
        std::net::TcpStream::from(sock)
    };
    // Peers 0, 3, 6, ... never read; 1, 4, 7, ... leave at once; the rest read.
    let mut conns: Vec<_> = (0..40)
        .map(|i| {
            if i % 3 == 0 {
                stalled_peer()
            } else {
                connect(srv.vortex)
            }
        })
        .collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let req = hawker_shared::vortex::DownloadPiece {
            task_id: t.id,
            piece_number: (i % 2) as u32,
        }
        .encode_packet(Tag::DownloadPiece, 1);
        c.write_all(&req).unwrap();
    }
    for c in conns.iter().skip(1).step_by(3) {
        let _ = c.shutdown(std::net::Shutdown::Both);
    }
    for (i, c) in conns.iter_mut().enumerate().filter(|(i, _)| i % 3 == 2) {
        match vortex_read_reply(c).unwrap() {
            VortexReply::Piece {
                number,
                digest,
                bytes,
                ..
            } => check_piece(t, number, &digest, &bytes),
            other => panic!("connection {i}: {other:?}"),
        }
    }
    still_serves_after(&srv);
}

fn still_serves_after(srv: &TestServer) {
    let t = &srv.tasks[0];
    let mut v = connect(srv.vortex);
    match vortex_request(&mut v, Tag::DownloadPiece, &t.id, 1).unwrap() {
        VortexReply::Piece { digest, bytes, .. } => check_piece(t, 1, &digest, &bytes),
        other => panic!("{other:?}"),
    }
}
