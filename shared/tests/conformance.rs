//! Conformance of `hawker_shared::vortex` with the reference `vortex-protocol` 0.2.0 (the crate
//! Dragonfly's client 1.5.10 links): every frame kind is encoded by one implementation and
//! decoded by the other, in both directions, byte for byte.

use chrono::DateTime;
use hawker_shared::ids::TaskId;
use hawker_shared::vortex::{
    self as ours, Decoded, DownloadPiece, ErrorCode, ErrorFrame, PieceMetadata, RequestDecoder,
};
use proptest::prelude::*;
use std::time::Duration;
use vortex_protocol::tlv::cache_piece_content::CachePieceContent;
use vortex_protocol::tlv::download_cache_piece::DownloadCachePiece;
use vortex_protocol::tlv::download_persistent_cache_piece::DownloadPersistentCachePiece;
use vortex_protocol::tlv::download_persistent_piece::DownloadPersistentPiece;
use vortex_protocol::tlv::download_piece::DownloadPiece as RefDownloadPiece;
use vortex_protocol::tlv::error::{Code, Error as RefError};
use vortex_protocol::tlv::persistent_cache_piece_content::PersistentCachePieceContent;
use vortex_protocol::tlv::persistent_piece_content::PersistentPieceContent;
use vortex_protocol::tlv::piece_content::PieceContent;
use vortex_protocol::tlv::piece_metadata::PieceMetadata as RefMetadata;
use vortex_protocol::tlv::Tag as RefTag;
use vortex_protocol::{Header as RefHeader, Message, Vortex, HEADER_SIZE};

const ID: &str = "e2d0fe1585a63ec6009c8016ff8dda8b17719a637405a4e23c0ff81339148249";

fn task() -> TaskId {
    TaskId::parse(ID.as_bytes()).unwrap()
}

/// Decodes a whole byte stream with our server decoder.
fn decode_all(bytes: &[u8]) -> Vec<Decoded> {
    let mut decoder = RequestDecoder::new();
    let mut events = Vec::new();
    let mut pos = 0;
    loop {
        match decoder.decode(&bytes[pos..]).unwrap() {
            (0, None) => break,
            (n, event) => {
                pos += n;
                events.extend(event);
            }
        }
    }
    assert_eq!(pos, bytes.len(), "stream not fully consumed");
    events
}

fn ref_metadata(m: &PieceMetadata<'_>) -> RefMetadata {
    RefMetadata {
        number: m.number,
        offset: m.offset,
        length: m.length,
        digest: m.digest.to_string(),
        parent_id: m.parent_id.to_string(),
        traffic_type: m.traffic_type,
        cost: Duration::from_secs(m.cost_secs),
        created_at: DateTime::from_timestamp(m.created_at_secs, 0)
            .unwrap()
            .naive_utc(),
    }
}

fn assert_same_metadata(theirs: &RefMetadata, m: &PieceMetadata<'_>) {
    assert_eq!(theirs, &ref_metadata(m));
}

fn sample_metadata() -> PieceMetadata<'static> {
    PieceMetadata {
        number: 42,
        offset: 42 * (4 << 20),
        length: 4 << 20,
        digest: "crc32:3421780262",
        parent_id: "10.0.0.1-seed-host-67e55044-10b1-426f-9247-bb680e5fe0c8-seed",
        traffic_type: 1,
        cost_secs: 3,
        created_at_secs: 1_700_000_000,
    }
}

#[test]
fn tag_numbers_agree_for_every_byte() {
    for value in 0..=255u8 {
        let theirs: u8 = RefTag::from(value).into();
        let mine: u8 = ours::Tag::from(value).into();
        assert_eq!(theirs, mine);
        assert_eq!(
            matches!(RefTag::from(value), RefTag::Reserved(_)),
            matches!(ours::Tag::from(value), ours::Tag::Reserved(_))
        );
    }
}

#[test]
fn headers_agree() {
    for (tag, length) in [(0u8, 68u32), (1, 1024), (42, u32::MAX), (254, 0), (255, 7)] {
        let mut theirs = Vec::new();
        let header = RefHeader::new(RefTag::from(tag), length);
        header.encode(&mut theirs);
        let mine = ours::Header::decode(theirs.as_slice().try_into().unwrap());
        assert_eq!(mine.packet_id, header.id());
        assert_eq!(u8::from(mine.tag), tag);
        assert_eq!(mine.length, length);
        assert_eq!(mine.encode().as_slice(), theirs.as_slice());
        assert_eq!(RefHeader::decode(&mine.encode()).unwrap(), header);
    }
}

#[test]
fn download_requests_reference_to_ours() {
    let mut stream = Vec::new();
    RefDownloadPiece::new(ID.to_string(), 1).encode_packet(&mut stream);
    DownloadPersistentPiece::new(ID.to_string(), 2).encode_packet(&mut stream);
    DownloadPersistentCachePiece::new(ID.to_string(), 3).encode_packet(&mut stream);
    DownloadCachePiece::new(ID.to_string(), u32::MAX).encode_packet(&mut stream);
    assert_eq!(stream.len(), 4 * (HEADER_SIZE + 68));
    let request = |number| DownloadPiece {
        task_id: task(),
        piece_number: number,
    };
    assert_eq!(
        decode_all(&stream),
        vec![
            Decoded::Request {
                tag: ours::Tag::DownloadPiece,
                request: request(1)
            },
            Decoded::Request {
                tag: ours::Tag::DownloadPersistentPiece,
                request: request(2)
            },
            Decoded::Request {
                tag: ours::Tag::DownloadPersistentCachePiece,
                request: request(3)
            },
            Decoded::Request {
                tag: ours::Tag::DownloadCachePiece,
                request: request(u32::MAX)
            },
        ]
    );
}

#[test]
fn download_requests_ours_to_reference() {
    let request = DownloadPiece {
        task_id: task(),
        piece_number: 77,
    };
    let check = |tag: ours::Tag| Vortex::decode(&request.encode_packet(tag, 5)).unwrap();
    match check(ours::Tag::DownloadPiece) {
        Vortex::DownloadPiece(h, v) => {
            assert_eq!((h.id(), h.length()), (5, 68));
            assert_eq!((v.task_id.as_str(), v.piece_number), (ID, 77));
        }
        other => panic!("unexpected {other:?}"),
    }
    match check(ours::Tag::DownloadPersistentPiece) {
        Vortex::DownloadPersistentPiece(_, v) => {
            assert_eq!((v.task_id.as_str(), v.piece_number), (ID, 77))
        }
        other => panic!("unexpected {other:?}"),
    }
    match check(ours::Tag::DownloadPersistentCachePiece) {
        Vortex::DownloadPersistentCachePiece(_, v) => {
            assert_eq!((v.task_id.as_str(), v.piece_number), (ID, 77))
        }
        other => panic!("unexpected {other:?}"),
    }
    match check(ours::Tag::DownloadCachePiece) {
        Vortex::DownloadCachePiece(_, v) => {
            assert_eq!((v.task_id.as_str(), v.piece_number), (ID, 77))
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Our piece content packet for `tag`, decoded by the reference, gives back its metadata.
fn reference_decodes_our_content(m: &PieceMetadata<'_>, tag: ours::Tag) -> RefMetadata {
    let mut bytes = Vec::new();
    m.encode_packet(tag, 9, &mut bytes);
    assert_eq!(bytes.len(), m.packet_len());
    let header = RefHeader::decode(&bytes[..HEADER_SIZE]).unwrap();
    assert_eq!(header.length() as usize, bytes.len() - HEADER_SIZE);
    match Vortex::decode(&bytes).unwrap() {
        Vortex::PieceContent(_, c) if tag == ours::Tag::PieceContent => c.metadata,
        Vortex::PersistentPieceContent(_, c) if tag == ours::Tag::PersistentPieceContent => {
            c.metadata
        }
        Vortex::PersistentCachePieceContent(_, c)
            if tag == ours::Tag::PersistentCachePieceContent =>
        {
            c.metadata
        }
        Vortex::CachePieceContent(_, c) if tag == ours::Tag::CachePieceContent => c.metadata,
        other => panic!("unexpected {other:?} for {tag:?}"),
    }
}

/// The reference's piece content packet, decoded by us.
fn ours_decodes_reference_content(m: &RefMetadata, tag: ours::Tag) {
    let mut bytes = Vec::new();
    let metadata = m.clone();
    match tag {
        ours::Tag::PieceContent => PieceContent { metadata }.encode_packet(&mut bytes),
        ours::Tag::PersistentPieceContent => {
            PersistentPieceContent { metadata }.encode_packet(&mut bytes)
        }
        ours::Tag::PersistentCachePieceContent => {
            PersistentCachePieceContent { metadata }.encode_packet(&mut bytes)
        }
        ours::Tag::CachePieceContent => CachePieceContent { metadata }.encode_packet(&mut bytes),
        other => panic!("not a content tag: {other:?}"),
    }
    let header = ours::Header::decode(bytes[..ours::HEADER_LEN].try_into().unwrap());
    assert_eq!(header.tag, tag);
    header.check_length().unwrap();
    assert_eq!(header.length as usize, bytes.len() - ours::HEADER_LEN);
    let decoded = PieceMetadata::decode(&bytes[ours::HEADER_LEN..]).unwrap();
    assert_same_metadata(m, &decoded);
}

const CONTENT_TAGS: [ours::Tag; 4] = [
    ours::Tag::PieceContent,
    ours::Tag::PersistentPieceContent,
    ours::Tag::PersistentCachePieceContent,
    ours::Tag::CachePieceContent,
];

#[test]
fn piece_content_both_ways_for_every_content_tag() {
    let empty = PieceMetadata {
        digest: "",
        parent_id: "",
        number: 0,
        offset: 0,
        length: 0,
        traffic_type: 0,
        cost_secs: 0,
        created_at_secs: 0,
    };
    for m in [sample_metadata(), empty] {
        for tag in CONTENT_TAGS {
            let theirs = reference_decodes_our_content(&m, tag);
            assert_same_metadata(&theirs, &m);
            ours_decodes_reference_content(&ref_metadata(&m), tag);
        }
    }
}

#[test]
fn error_frames_both_ways() {
    for code in 0..=255u8 {
        let message = format!("piece {code} not found: ünïcode");
        let mut bytes = Vec::new();
        ErrorFrame {
            code: ErrorCode::from(code),
            message: &message,
        }
        .encode_packet(3, &mut bytes);
        match Vortex::decode(&bytes).unwrap() {
            Vortex::Error(h, e) => {
                assert_eq!(h.id(), 3);
                assert_eq!(u8::from(e.code), code);
                assert_eq!(e.message, message);
            }
            other => panic!("unexpected {other:?}"),
        }

        let mut theirs = Vec::new();
        RefError::new(Code::from(code), message.clone()).encode_packet(&mut theirs);
        assert_eq!(&theirs[1..], &bytes[1..], "same bytes but the packet id");
        let header = ours::Header::decode(theirs[..6].try_into().unwrap());
        header.check_length().unwrap();
        let decoded = ErrorFrame::decode(&theirs[6..]).unwrap();
        assert_eq!(u8::from(decoded.code), code);
        assert_eq!(decoded.message, message);
        assert_eq!(
            decode_all(&theirs),
            vec![Decoded::PeerError {
                code: ErrorCode::from(code)
            }]
        );
    }
}

#[test]
fn close_both_ways() {
    let mut theirs = Vec::new();
    Vortex::Close(RefHeader::new(RefTag::Close, 0)).encode(&mut theirs);
    assert_eq!(decode_all(&theirs), vec![Decoded::Close]);

    let mut mine = Vec::new();
    ours::encode_close(1, &mut mine);
    assert!(matches!(Vortex::decode(&mine).unwrap(), Vortex::Close(h) if h.length() == 0));
}

#[test]
fn reserved_both_ways() {
    for tag in [8u8, 42, 253] {
        // The reference encodes reserved packets with an empty value.
        let mut theirs = Vec::new();
        Vortex::Reserved(RefHeader::new(RefTag::Reserved(tag), 0)).encode(&mut theirs);
        assert_eq!(decode_all(&theirs), vec![Decoded::Skipped]);

        // A reserved packet with a value: both skip it by its length.
        let value = vec![0xab; 300];
        let mut bytes = ours::Header {
            packet_id: 0,
            tag: ours::Tag::Reserved(tag),
            length: value.len() as u32,
        }
        .encode()
        .to_vec();
        bytes.extend_from_slice(&value);
        assert!(matches!(
            Vortex::decode(&bytes).unwrap(),
            Vortex::Reserved(h) if h.length() == 300 && u8::from(h.tag()) == tag
        ));
        // Followed by a request, to show the stream stays framed.
        RefDownloadPiece::new(ID.to_string(), 4).encode_packet(&mut bytes);
        assert_eq!(
            decode_all(&bytes),
            vec![
                Decoded::Skipped,
                Decoded::Request {
                    tag: ours::Tag::DownloadPiece,
                    request: DownloadPiece {
                        task_id: task(),
                        piece_number: 4
                    }
                }
            ]
        );
    }
}

fn arb_metadata() -> impl Strategy<Value = (u32, u64, u64, String, String, u8, u64, i64)> {
    (
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        "\\PC{0,40}",
        "[a-z0-9.-]{0,120}",
        any::<u8>(),
        any::<u64>(),
        // The reference's chrono conversion covers years 0..=9999.
        -62_167_219_200i64..253_402_300_799,
    )
}

proptest! {
    #[test]
    fn arbitrary_metadata_agrees_both_ways(
        (number, offset, length, digest, parent_id, traffic_type, cost_secs, created_at_secs)
            in arb_metadata(),
        tag_index in 0usize..4,
    ) {
        let m = PieceMetadata {
            number, offset, length, digest: &digest, parent_id: &parent_id,
            traffic_type, cost_secs, created_at_secs,
        };
        let tag = CONTENT_TAGS[tag_index];
        let theirs = reference_decodes_our_content(&m, tag);
        prop_assert_eq!(&theirs, &ref_metadata(&m));
        ours_decodes_reference_content(&theirs, tag);
    }

    #[test]
    fn arbitrary_requests_agree_both_ways(id in "[0-9a-f]{64}", number in any::<u32>()) {
        let mut theirs = Vec::new();
        RefDownloadPiece::new(id.clone(), number).encode_packet(&mut theirs);
        let request = DownloadPiece { task_id: TaskId::parse(id.as_bytes()).unwrap(), piece_number: number };
        prop_assert_eq!(&theirs[1..], &request.encode_packet(ours::Tag::DownloadPiece, 0)[1..]);
        prop_assert_eq!(
            decode_all(&theirs),
            vec![Decoded::Request { tag: ours::Tag::DownloadPiece, request }]
        );
    }

    #[test]
    fn arbitrary_error_messages_agree(code in any::<u8>(), message in "\\PC{0,200}") {
        let mut theirs = Vec::new();
        RefError::new(Code::from(code), message.clone()).encode_packet(&mut theirs);
        let mut mine = Vec::new();
        ErrorFrame { code: ErrorCode::from(code), message: &message }.encode_packet(0, &mut mine);
        prop_assert_eq!(&theirs[1..], &mine[1..]);
    }
}
