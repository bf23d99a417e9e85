//! Test harness: a data dir with imported random files, a server on loopback ports, and
//! minimal blocking Vortex and HTTP clients written against `hawker-shared`'s codecs.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hawker_dataplane::store::{self, Store, Verify};
use hawker_dataplane::{SendMode, ServeConfig, Server};
use hawker_shared::digest::{crc32, parse_piece_digest};
use hawker_shared::ids::TaskId;
use hawker_shared::layout::Layout;
use hawker_shared::vortex::{DownloadPiece, ErrorFrame, Header, PieceMetadata, Tag, HEADER_LEN};
use rand::{Rng, SeedableRng};

pub mod dragonfly;

pub const MIB: usize = 1 << 20;

/// Content of `len` bytes from a seeded generator: reproducible and incompressible.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

pub struct Imported {
    pub id: TaskId,
    pub content: Vec<u8>,
    pub layout: Layout,
}

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub server: Option<Server>,
    pub tasks: Vec<Imported>,
    pub vortex: SocketAddr,
    pub http: SocketAddr,
}

/// Imports `sizes` random files into a fresh data dir.
pub fn data_dir_with(sizes: &[usize]) -> (tempfile::TempDir, Vec<Imported>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tasks = Vec::new();
    for (i, &len) in sizes.iter().enumerate() {
        let content = random_bytes(len, 1000 + i as u64);
        let path: PathBuf = dir.path().join(format!("src-{i}"));
        std::fs::write(&path, &content).unwrap();
        let meta = store::import_file(&dir.path().join("data"), &path, None).expect("import");
        tasks.push(Imported {
            id: meta.id,
            layout: Layout::for_content(len as u64),
            content,
        });
    }
    (dir, tasks)
}

pub fn config(mode: SendMode) -> ServeConfig {
    let cores = hawker_dataplane::sys::allowed_cpus();
    let cores = cores.into_iter().take(2).collect();
    let mut cfg = ServeConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        cores,
    );
    cfg.send_mode = mode;
    cfg.zerocopy_inflight_bytes_per_core = if mode == SendMode::Zerocopy {
        4 << 20
    } else {
        0
    };
    cfg
}

impl TestServer {
    pub fn start(sizes: &[usize], cfg: ServeConfig) -> TestServer {
        let (dir, tasks) = data_dir_with(sizes);
        let mem = hawker_dataplane::sys::raise_memlock(64 << 20);
        assert!(
            mem.unlimited || mem.now_bytes >= 8 << 20,
            "memlock too low for tests: {mem:?}"
        );
        let store = Store::open(&dir.path().join("data"), Verify::Full).expect("open store");
        let all: Vec<Arc<_>> = store.tasks().cloned().collect();
        let server = Server::start(cfg, all).expect("server start");
        TestServer {
            vortex: server.vortex_addr,
            http: server.http_addr,
            dir,
            server: Some(server),
            tasks,
        }
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.drain();
            s.join().expect("clean drain");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// What a Vortex piece request came back with.
#[derive(Debug)]
pub enum VortexReply {
    Piece {
        number: u32,
        offset: u64,
        digest: String,
        bytes: Vec<u8>,
        tag: Tag,
    },
    Error {
        code: hawker_shared::vortex::ErrorCode,
        message: String,
    },
}

pub fn vortex_request(
    s: &mut TcpStream,
    tag: Tag,
    id: &TaskId,
    number: u32,
) -> std::io::Result<VortexReply> {
    let req = DownloadPiece {
        task_id: *id,
        piece_number: number,
    }
    .encode_packet(tag, 7);
    s.write_all(&req)?;
    vortex_read_reply(s)
}

pub fn vortex_read_reply(s: &mut TcpStream) -> std::io::Result<VortexReply> {
    let mut h = [0u8; HEADER_LEN];
    s.read_exact(&mut h)?;
    let header = Header::decode(&h);
    let mut value = vec![0u8; header.length as usize];
    assert!(
        header.length < 1 << 20,
        "absurd value length {}",
        header.length
    );
    s.read_exact(&mut value)?;
    match header.tag {
        Tag::Error => {
            let e = ErrorFrame::decode(&value).expect("decode error frame");
            Ok(VortexReply::Error {
                code: e.code,
                message: e.message.to_string(),
            })
        }
        tag => {
            let m = PieceMetadata::decode(&value).expect("decode metadata");
            let mut bytes = vec![0u8; m.length as usize];
            s.read_exact(&mut bytes)?;
            Ok(VortexReply::Piece {
                number: m.number,
                offset: m.offset,
                digest: m.digest.to_string(),
                bytes,
                tag,
            })
        }
    }
}

pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request on a kept-alive connection and reads the whole reply.
pub fn http_request(
    s: &mut TcpStream,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> std::io::Result<HttpReply> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    http_read_reply(s, method == "HEAD")
}

pub fn http_read_reply(s: &mut TcpStream, head_only: bool) -> std::io::Result<HttpReply> {
    let mut buf = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "eof in head",
            ));
        }
        buf.push(byte[0]);
        assert!(buf.len() < 16384, "response head too long");
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(&buf).expect("parse response head");
    let status = resp.code.unwrap();
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).to_string(),
            )
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; if head_only { 0 } else { len }];
    s.read_exact(&mut body)?;
    Ok(HttpReply {
        status,
        headers,
        body,
    })
}

/// Checks a piece's bytes against the content and its digest string.
pub fn check_piece(t: &Imported, number: u32, digest: &str, bytes: &[u8]) {
    let r = t.layout.piece(number).expect("piece in layout");
    let want = &t.content[r.offset as usize..(r.offset + r.length) as usize];
    assert_eq!(bytes.len(), want.len(), "piece {number} length");
    assert!(bytes == want, "piece {number} bytes differ");
    assert_eq!(
        parse_piece_digest(digest),
        Some(crc32(want)),
        "piece {number} digest {digest}"
    );
}

/// Anonymous resident memory of this process (heap, stacks: not the page cache or mappings).
pub fn rss_anon_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A free port on 127.0.0.1 (bound, then released: the caller binds it again at once).
pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
}
