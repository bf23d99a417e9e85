//! Property tests for every codec of hawker-shared: round trips, and "peer bytes never panic"
//! for every decoder, plus the split invariance of the Vortex request decoder.

use hawker_shared::digest::{parse_piece_digest, piece_digest_string, DigestBuf};
use hawker_shared::http::{
    parse_range, parse_request, resolve_range, ContentRange, Method, RangeSpec, ResolvedRange,
    ResponseHead, Route,
};
use hawker_shared::ids::TaskId;
use hawker_shared::layout::{piece_length_for, Layout, MAX_PIECE_LENGTH, MIN_PIECE_LENGTH};
use hawker_shared::vortex::{
    encode_close, Decoded, DownloadPiece, ErrorCode, ErrorFrame, FrameError, Header, PieceMetadata,
    RequestDecoder, Tag, DOWNLOAD_PIECE_VALUE_LEN, HEADER_LEN, MAX_ERROR_VALUE_LEN,
    REQUEST_BUFFER_LEN,
};
use proptest::prelude::*;

fn arb_task_id() -> impl Strategy<Value = TaskId> {
    "[0-9a-f]{64}".prop_map(|s| TaskId::parse(s.as_bytes()).unwrap())
}

// ---------- ids, digest, layout ----------

proptest! {
    #[test]
    fn task_id_round_trips(id in arb_task_id()) {
        prop_assert_eq!(TaskId::parse(id.as_str().as_bytes()), Ok(id));
        prop_assert_eq!(id.to_string().parse::<TaskId>(), Ok(id));
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(serde_json::from_str::<TaskId>(&json).unwrap(), id);
    }

    #[test]
    fn task_id_parse_accepts_exactly_lower_hex(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let valid = bytes.len() == 64 && bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        prop_assert_eq!(TaskId::parse(&bytes).is_ok(), valid);
    }

    #[test]
    fn digest_round_trips(crc in any::<u32>()) {
        let buf = DigestBuf::new(crc);
        prop_assert_eq!(buf.as_str(), format!("crc32:{crc}"));
        prop_assert_eq!(piece_digest_string(crc), buf.as_str());
        prop_assert_eq!(parse_piece_digest(buf.as_str()), Some(crc));
    }

    #[test]
    fn parse_piece_digest_never_panics(s in "\\PC{0,24}") {
        if let Some(crc) = parse_piece_digest(&s) {
            prop_assert_eq!(piece_digest_string(crc), s);
        }
    }

    #[test]
    fn piece_length_is_a_clamped_power_of_two(content_length in any::<u64>()) {
        let p = piece_length_for(content_length);
        prop_assert!(p.is_power_of_two());
        prop_assert!((MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&p));
        prop_assert!(p >= piece_length_for(content_length / 2));
    }

    #[test]
    fn layout_pieces_tile_the_content(
        content_length in 0u64..1 << 40,
        piece_length in 1u64..1 << 32,
        start in 0u64..1 << 41,
        span in 0u64..1 << 36,
    ) {
        prop_assume!(content_length.div_ceil(piece_length) <= 100_000);
        let layout = Layout::new(content_length, piece_length).unwrap();
        let mut next = 0;
        let mut count = 0u32;
        for piece in layout.pieces() {
            prop_assert_eq!(piece.number, count);
            prop_assert_eq!(piece.offset, next);
            prop_assert!(piece.length > 0 && piece.length <= piece_length);
            prop_assert_eq!(layout.piece(piece.number), Some(piece));
            next += piece.length;
            count += 1;
        }
        prop_assert_eq!(next, content_length);
        prop_assert_eq!(count, layout.piece_count());
        prop_assert_eq!(layout.piece(count), None);

        let end = start.saturating_add(span);
        let range = layout.pieces_overlapping(start, end);
        let expected: Vec<u32> = layout
            .pieces()
            .filter(|p| p.offset <= end && p.offset + p.length > start)
            .map(|p| p.number)
            .collect();
        prop_assert_eq!(range.collect::<Vec<u32>>(), expected);
    }
}

// ---------- vortex ----------

#[derive(Clone, Debug)]
enum Frame {
    Request(Tag, DownloadPiece),
    Reserved(u8, usize),
    Error(u8, String),
    Close,
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        4 => (prop::sample::select(vec![
                Tag::DownloadPiece,
                Tag::DownloadPersistentPiece,
                Tag::DownloadPersistentCachePiece,
                Tag::DownloadCachePiece,
            ]), arb_task_id(), any::<u32>())
            .prop_map(|(tag, task_id, piece_number)| Frame::Request(tag, DownloadPiece { task_id, piece_number })),
        1 => (8u8..=253, 0usize..600).prop_map(|(tag, len)| Frame::Reserved(tag, len)),
        1 => (any::<u8>(), "\\PC{0,300}").prop_map(|(code, m)| Frame::Error(code, m)),
        1 => Just(Frame::Close),
    ]
}

fn encode_frame(frame: &Frame, out: &mut Vec<u8>) -> Decoded {
    match frame {
        Frame::Request(tag, request) => {
            out.extend_from_slice(&request.encode_packet(*tag, 0));
            Decoded::Request {
                tag: *tag,
                request: *request,
            }
        }
        Frame::Reserved(tag, len) => {
            let header = Header {
                packet_id: 1,
                tag: Tag::Reserved(*tag),
                length: *len as u32,
            };
            out.extend_from_slice(&header.encode());
            out.extend((0..*len).map(|i| i as u8));
            Decoded::Skipped
        }
        Frame::Error(code, message) => {
            ErrorFrame {
                code: ErrorCode::from(*code),
                message,
            }
            .encode_packet(2, out);
            Decoded::PeerError {
                code: ErrorCode::from(*code),
            }
        }
        Frame::Close => {
            encode_close(3, out);
            Decoded::Close
        }
    }
}

/// Feeds `stream` to a fresh decoder, cut at `cuts`, the way the server does: unconsumed bytes
/// stay in a buffer that new bytes are appended to. Returns the events and the first error.
fn feed(stream: &[u8], cuts: &[usize]) -> (Vec<Decoded>, Option<FrameError>) {
    let mut decoder = RequestDecoder::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
    bounds.push(stream.len());
    bounds.sort_unstable();
    let mut from = 0;
    for to in bounds {
        buf.extend_from_slice(&stream[from..to]);
        from = to;
        loop {
            match decoder.decode(&buf) {
                Ok((0, None)) => {
                    // The decoder never asks the server to hold more than one request.
                    assert!(buf.len() < HEADER_LEN + DOWNLOAD_PIECE_VALUE_LEN);
                    assert!(buf.len() < REQUEST_BUFFER_LEN);
                    break;
                }
                Ok((n, event)) => {
                    assert!(n <= buf.len());
                    buf.drain(..n);
                    events.extend(event);
                }
                Err(err) => return (events, Some(err)),
            }
        }
    }
    (events, None)
}

proptest! {
    #[test]
    fn header_round_trips(bytes in any::<[u8; 6]>()) {
        prop_assert_eq!(Header::decode(&bytes).encode(), bytes);
    }

    #[test]
    fn download_piece_round_trips(tag_index in 0usize..4, task_id in arb_task_id(), n in any::<u32>(), id in any::<u8>()) {
        let tag = [Tag::DownloadPiece, Tag::DownloadPersistentPiece,
                   Tag::DownloadPersistentCachePiece, Tag::DownloadCachePiece][tag_index];
        let request = DownloadPiece { task_id, piece_number: n };
        let bytes = request.encode_packet(tag, id);
        let header = Header::decode(bytes[..HEADER_LEN].try_into().unwrap());
        prop_assert_eq!(header, Header { packet_id: id, tag, length: 68 });
        prop_assert_eq!(DownloadPiece::decode(&bytes[HEADER_LEN..]), Ok(request));
    }

    #[test]
    fn piece_metadata_round_trips(
        number in any::<u32>(), offset in any::<u64>(), length in any::<u64>(),
        digest in "\\PC{0,50}", parent_id in "\\PC{0,200}", traffic_type in any::<u8>(),
        cost_secs in any::<u64>(), created_at_secs in any::<i64>(), prefix in 0usize..10,
    ) {
        let m = PieceMetadata { number, offset, length, digest: &digest, parent_id: &parent_id,
                                traffic_type, cost_secs, created_at_secs };
        let mut out = vec![0xee; prefix];
        m.encode_packet(Tag::PieceContent, 0, &mut out);
        prop_assert_eq!(out.len(), prefix + m.packet_len());
        let header = Header::decode(out[prefix..prefix + HEADER_LEN].try_into().unwrap());
        prop_assert!(header.check_length().is_ok());
        prop_assert_eq!(header.length as usize, m.packet_len() - HEADER_LEN);
        prop_assert_eq!(PieceMetadata::decode(&out[prefix + HEADER_LEN..]), Ok(m));
    }

    #[test]
    fn error_frame_round_trips(code in any::<u8>(), message in "\\PC{0,300}") {
        let mut out = Vec::new();
        let frame = ErrorFrame { code: ErrorCode::from(code), message: &message };
        frame.encode_packet(0, &mut out);
        let header = Header::decode(out[..HEADER_LEN].try_into().unwrap());
        prop_assert!(header.check_length().is_ok());
        prop_assert!(header.length <= MAX_ERROR_VALUE_LEN);
        prop_assert_eq!(ErrorFrame::decode(&out[HEADER_LEN..]), Ok(frame));
    }

    #[test]
    fn value_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = PieceMetadata::decode(&bytes);
        let _ = ErrorFrame::decode(&bytes);
        let _ = DownloadPiece::decode(&bytes);
    }

    #[test]
    fn metadata_decoder_never_panics_near_valid_input(
        digest in "[a-z0-9:]{0,20}", flip in any::<usize>(), to in any::<u8>(), cut in any::<usize>(),
    ) {
        let m = PieceMetadata { number: 1, offset: 2, length: 3, digest: &digest, parent_id: "p",
                                traffic_type: 1, cost_secs: 4, created_at_secs: 5 };
        let mut out = Vec::new();
        m.encode_packet(Tag::PieceContent, 0, &mut out);
        let mut value = out[HEADER_LEN..].to_vec();
        let i = flip % value.len();
        value[i] = to;
        let _ = PieceMetadata::decode(&value);
        let _ = PieceMetadata::decode(&value[..cut % (value.len() + 1)]);
    }

    #[test]
    fn request_decoder_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        let whole = feed(&bytes, &[]);
        let split = feed(&bytes, &cuts);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn request_decoder_is_split_invariant(
        frames in proptest::collection::vec(arb_frame(), 1..8),
        garbage in proptest::collection::vec(any::<u8>(), 0..80),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let mut stream = Vec::new();
        let expected: Vec<Decoded> = frames.iter().map(|f| encode_frame(f, &mut stream)).collect();
        let (events, err) = feed(&stream, &[]);
        prop_assert_eq!(&events, &expected);
        prop_assert_eq!(err, None);

        // Every single split point, then arbitrary multi-way splits.
        for cut in 0..=stream.len() {
            prop_assert_eq!(feed(&stream, &[cut]), (expected.clone(), None));
        }
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        prop_assert_eq!(feed(&stream, &cuts), (expected.clone(), None));

        // Valid frames followed by garbage: same events first, whatever the split.
        stream.extend_from_slice(&garbage);
        let whole = feed(&stream, &[]);
        prop_assert!(whole.0.starts_with(&expected));
        prop_assert_eq!(feed(&stream, &cuts), whole);
    }
}

// ---------- http ----------

fn arb_route() -> impl Strategy<Value = (String, Route)> {
    prop_oneof![
        (arb_task_id(), any::<u32>()).prop_map(|(task, number)| (
            format!("/tasks/{task}/pieces/{number}"),
            Route::Piece { task, number }
        )),
        arb_task_id().prop_map(|task| (format!("/tasks/{task}"), Route::Task { task })),
        Just(("/healthz".to_string(), Route::Healthz)),
        Just(("/metrics".to_string(), Route::Metrics)),
    ]
}

fn arb_range() -> impl Strategy<Value = Option<RangeSpec>> {
    prop_oneof![
        Just(None),
        (any::<u64>(), any::<u64>()).prop_map(|(a, b)| Some(RangeSpec::FromTo(a.min(b), a.max(b)))),
        any::<u64>().prop_map(|a| Some(RangeSpec::From(a))),
        any::<u64>().prop_map(|n| Some(RangeSpec::Suffix(n))),
    ]
}

fn range_text(spec: RangeSpec) -> String {
    match spec {
        RangeSpec::FromTo(a, b) => format!("bytes={a}-{b}"),
        RangeSpec::From(a) => format!("bytes={a}-"),
        RangeSpec::Suffix(n) => format!("bytes=-{n}"),
    }
}

proptest! {
    #[test]
    fn requests_round_trip(
        (path, route) in arb_route(),
        head in any::<bool>(),
        http10 in any::<bool>(),
        connection in prop::sample::select(vec!["", "close", "keep-alive", "Keep-Alive, TE"]),
        range in arb_range(),
        query in prop::option::of("[a-z0-9=&]{0,20}"),
    ) {
        let mut text = format!(
            "{} {}{} HTTP/1.{}\r\nHost: hawker\r\nUser-Agent: t\r\n",
            if head { "HEAD" } else { "GET" },
            path,
            query.map(|q| format!("?{q}")).unwrap_or_default(),
            if http10 { 0 } else { 1 },
        );
        if !connection.is_empty() {
            text.push_str(&format!("Connection: {connection}\r\n"));
        }
        if let Some(spec) = range {
            text.push_str(&format!("Range: {}\r\n", range_text(spec)));
        }
        text.push_str("\r\n");
        let req = parse_request(text.as_bytes()).unwrap().unwrap();
        prop_assert_eq!(req.method, if head { Method::Head } else { Method::Get });
        prop_assert_eq!(req.route, route);
        prop_assert_eq!(req.range, range);
        prop_assert_eq!(req.head_len, text.len());
        let lower = connection.to_ascii_lowercase();
        let expected_keep_alive = if http10 {
            lower.contains("keep-alive")
        } else {
            !lower.contains("close")
        };
        prop_assert_eq!(req.keep_alive, expected_keep_alive);
    }

    #[test]
    fn parse_request_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        if let Ok(Some(req)) = parse_request(&bytes) {
            prop_assert!(req.head_len <= bytes.len());
        }
    }

    #[test]
    fn parse_request_never_panics_on_near_http(
        method in "(GET|HEAD|POST|get)",
        path in "/[a-z0-9/?=%.]{0,80}",
        headers in proptest::collection::vec(("[A-Za-z-]{1,16}", "[ -~]{0,40}"), 0..40),
    ) {
        let mut text = format!("{method} {path} HTTP/1.1\r\n");
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        let _ = parse_request(text.as_bytes());
    }

    #[test]
    fn parse_range_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..60)) {
        let _ = parse_range(&bytes);
    }

    #[test]
    fn resolved_ranges_stay_inside_the_content(spec in arb_range(), len in any::<u64>()) {
        match resolve_range(spec, len) {
            ResolvedRange::Full => prop_assert!(spec.is_none()),
            ResolvedRange::Partial { start, end_inclusive } => {
                prop_assert!(start <= end_inclusive && end_inclusive < len);
                if let Some(RangeSpec::Suffix(n)) = spec {
                    prop_assert_eq!(end_inclusive - start + 1, n.min(len));
                }
            }
            ResolvedRange::Unsatisfiable => prop_assert!(spec.is_some()),
        }
    }

    #[test]
    fn response_heads_parse_back(
        status in prop::sample::select(vec![200u16, 206, 404, 416, 503]),
        content_length in any::<u64>(),
        keep_alive in any::<bool>(),
        start in any::<u64>(),
        digest in any::<u32>(),
    ) {
        let digest = DigestBuf::new(digest);
        let extra = [("X-Hawker-Piece-Digest", digest.as_str())];
        let head = ResponseHead {
            status,
            content_length,
            content_type: "application/octet-stream",
            content_range: (status == 206).then_some(ContentRange::Bytes {
                start, end_inclusive: start, total: content_length,
            }),
            keep_alive,
            extra: &extra,
        };
        let mut out = Vec::with_capacity(512);
        let ptr = out.as_ptr();
        head.encode(&mut out);
        prop_assert_eq!(out.as_ptr(), ptr, "no reallocation with enough capacity");
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        prop_assert_eq!(resp.parse(&out).unwrap(), httparse::Status::Complete(out.len()));
        prop_assert_eq!(resp.code, Some(status));
        let get = |name: &str| resp.headers.iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8(h.value.to_vec()).unwrap());
        prop_assert_eq!(get("content-length"), Some(content_length.to_string()));
        let connection = if keep_alive { "keep-alive" } else { "close" };
        prop_assert_eq!(get("connection"), Some(connection.to_string()));
        prop_assert_eq!(get("accept-ranges"), Some("bytes".to_string()));
        prop_assert_eq!(get("x-hawker-piece-digest"), Some(digest.as_str().to_string()));
    }
}
