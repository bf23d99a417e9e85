//! Vortex, Dragonfly's TCP piece protocol (crate `vortex-protocol` 0.2.0), sans-IO.
//!
//! Every packet is a 6-byte header — `u8 packet_id` (random, ignored), `u8 tag`, `u32
//! value_length`, big-endian — followed by `value_length` value bytes. Tags:
//!
//! | tag | frame | value |
//! |---|---|---|
//! | 0, 2, 4, 6 | download (normal, persistent, persistent-cache, cache) piece request | 64 ASCII task id + `u32` piece number: exactly [`DOWNLOAD_PIECE_VALUE_LEN`] (68) bytes |
//! | 1, 3, 5, 7 | the matching piece content response | `u32 metadata_length` + metadata (below); then `length` raw content bytes that the header does NOT count |
//! | 8–253 | reserved | skipped by its length |
//! | 254 | Close | empty |
//! | 255 | Error | `u8` code + UTF-8 message |
//!
//! Piece metadata, after `u32 metadata_length` (= [`METADATA_FIXED_LEN`] (45) + D + P):
//! `u32 number` · `u64 offset` · `u64 length` · `u32 D` · D bytes digest · `u32 P` · P bytes
//! parent id · `u8 traffic_type` · `u64 cost_secs` · `i64 created_at_secs`. The header's
//! value_length is `4 + metadata_length`. Bytes after the last field but within
//! `metadata_length` are ignored (as `vortex-protocol` does, for forward compatibility).
//!
//! Bounds hawker enforces on what a peer declares, before any byte is buffered:
//! - requests: exactly 68 value bytes;
//! - Close: 0 value bytes;
//! - Error: 1 ..= [`MAX_ERROR_VALUE_LEN`] (64 KiB); the server skips the message unbuffered;
//! - reserved tags: ..= [`MAX_RESERVED_VALUE_LEN`] (1 MiB), skipped unbuffered;
//! - piece metadata (client side): ..= [`MAX_METADATA_LEN`] (4 KiB; a real one is ~45 + 16 +
//!   ~100 bytes).
//!
//! A violation is a [`FrameError`]; the server answers it with an Error frame carrying
//! [`FrameError::code`] and closes the connection, since the stream can no longer be framed.
//!
//! The server decodes with [`RequestDecoder`]: it keeps at most [`REQUEST_BUFFER_LEN`] received
//! bytes (a request is 74), calls [`RequestDecoder::decode`] on the unconsumed part and gets one
//! event per complete frame. Encoders append to a caller-owned `Vec` and never allocate when
//! its capacity suffices. Nothing here allocates on decode; decoded values borrow the input.

use crate::ids::{IdError, TaskId, TASK_ID_LEN};

/// Bytes in a packet header: packet id, tag, value length.
pub const HEADER_LEN: usize = 6;

/// Value bytes of every download request: a 64-byte task id and a `u32` piece number.
pub const DOWNLOAD_PIECE_VALUE_LEN: usize = TASK_ID_LEN + 4;

/// The longest Error value hawker accepts from a peer (code + message), in bytes; also the
/// longest it sends (longer messages are cut on a UTF-8 boundary).
pub const MAX_ERROR_VALUE_LEN: u32 = 64 * 1024;

/// The longest value of a reserved tag (8–253) hawker skips; longer ones are a protocol error.
pub const MAX_RESERVED_VALUE_LEN: u32 = 1 << 20;

/// The longest piece metadata (the `metadata_length` field) hawker accepts or writes, in bytes.
pub const MAX_METADATA_LEN: u32 = 4096;

/// Metadata bytes besides the digest and the parent id: 4+8+8+4 + 4 + 1+8+8.
pub const METADATA_FIXED_LEN: usize = 45;

/// The longest PieceContent value hawker accepts: the length field plus [`MAX_METADATA_LEN`].
pub const MAX_PIECE_CONTENT_VALUE_LEN: u32 = 4 + MAX_METADATA_LEN;

/// Bytes of the server's per-connection receive buffer for Vortex requests.
pub const REQUEST_BUFFER_LEN: usize = 4096;

// The decoder only ever needs a whole request (or an Error header plus its code byte) buffered.
const _: () = assert!(REQUEST_BUFFER_LEN >= HEADER_LEN + DOWNLOAD_PIECE_VALUE_LEN);
const _: () = assert!(REQUEST_BUFFER_LEN > HEADER_LEN);
const _: () = assert!(METADATA_FIXED_LEN == 4 + 8 + 8 + 4 + 4 + 1 + 8 + 8);
const _: () = assert!(MAX_METADATA_LEN as usize >= METADATA_FIXED_LEN + 2 * 256);

/// The tag of a packet (numbers as in `vortex-protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// 0: download a piece of a normal task.
    DownloadPiece,
    /// 1: the content of a normal piece.
    PieceContent,
    /// 2: download a piece of a persistent task.
    DownloadPersistentPiece,
    /// 3: the content of a persistent piece.
    PersistentPieceContent,
    /// 4: download a piece of a persistent cache task.
    DownloadPersistentCachePiece,
    /// 5: the content of a persistent cache piece.
    PersistentCachePieceContent,
    /// 6: download a piece of a cache task.
    DownloadCachePiece,
    /// 7: the content of a cache piece.
    CachePieceContent,
    /// 8–253: reserved; the value is skipped.
    Reserved(u8),
    /// 254: close the connection (empty value).
    Close,
    /// 255: an error (code + message).
    Error,
}

impl From<u8> for Tag {
    fn from(value: u8) -> Tag {
        match value {
            0 => Tag::DownloadPiece,
            1 => Tag::PieceContent,
            2 => Tag::DownloadPersistentPiece,
            3 => Tag::PersistentPieceContent,
            4 => Tag::DownloadPersistentCachePiece,
            5 => Tag::PersistentCachePieceContent,
            6 => Tag::DownloadCachePiece,
            7 => Tag::CachePieceContent,
            254 => Tag::Close,
            255 => Tag::Error,
            other => Tag::Reserved(other),
        }
    }
}

impl From<Tag> for u8 {
    fn from(tag: Tag) -> u8 {
        match tag {
            Tag::DownloadPiece => 0,
            Tag::PieceContent => 1,
            Tag::DownloadPersistentPiece => 2,
            Tag::PersistentPieceContent => 3,
            Tag::DownloadPersistentCachePiece => 4,
            Tag::PersistentCachePieceContent => 5,
            Tag::DownloadCachePiece => 6,
            Tag::CachePieceContent => 7,
            Tag::Reserved(value) => value,
            Tag::Close => 254,
            Tag::Error => 255,
        }
    }
}

impl Tag {
    /// The content tag answering a request tag (0→1, 2→3, 4→5, 6→7); `None` for other tags.
    pub fn response_tag(self) -> Option<Tag> {
        match self {
            Tag::DownloadPiece => Some(Tag::PieceContent),
            Tag::DownloadPersistentPiece => Some(Tag::PersistentPieceContent),
            Tag::DownloadPersistentCachePiece => Some(Tag::PersistentCachePieceContent),
            Tag::DownloadCachePiece => Some(Tag::CachePieceContent),
            _ => None,
        }
    }

    /// Whether this is one of the four download request tags (0, 2, 4, 6).
    pub fn is_request(self) -> bool {
        self.response_tag().is_some()
    }

    /// Whether this is one of the four piece content tags (1, 3, 5, 7).
    pub fn is_content(self) -> bool {
        matches!(
            self,
            Tag::PieceContent
                | Tag::PersistentPieceContent
                | Tag::PersistentCachePieceContent
                | Tag::CachePieceContent
        )
    }

    /// The largest value_length hawker accepts for this tag (requests must match it exactly).
    pub fn max_value_len(self) -> u32 {
        match self {
            t if t.is_request() => DOWNLOAD_PIECE_VALUE_LEN as u32,
            t if t.is_content() => MAX_PIECE_CONTENT_VALUE_LEN,
            Tag::Close => 0,
            Tag::Error => MAX_ERROR_VALUE_LEN,
            _ => MAX_RESERVED_VALUE_LEN,
        }
    }
}

/// A packet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The packet id: any value; receivers ignore it.
    pub packet_id: u8,
    /// The tag of the value.
    pub tag: Tag,
    /// The value length in bytes (for piece content: the metadata only, not the content).
    pub length: u32,
}

impl Header {
    /// Decodes a header (every 6-byte string is a header).
    pub fn decode(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            packet_id: b[0],
            tag: Tag::from(b[1]),
            length: u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
        }
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let l = self.length.to_be_bytes();
        [self.packet_id, u8::from(self.tag), l[0], l[1], l[2], l[3]]
    }

    /// Checks the declared value length against hawker's bound for the tag (see the module
    /// doc): requests exactly 68, Close 0, Error 1 ..= 64 KiB, content ..= 4 + 4 KiB, reserved
    /// ..= 1 MiB. Call it before sizing any read from `length`.
    pub fn check_length(&self) -> Result<(), FrameError> {
        let tag = self.tag;
        let length = self.length;
        let max = tag.max_value_len();
        if tag.is_request() || tag == Tag::Close {
            if length != max {
                return Err(FrameError::ValueLength {
                    tag,
                    length,
                    expected: max,
                });
            }
        } else if length > max {
            return Err(FrameError::ValueTooLong { tag, length, max });
        } else if tag == Tag::Error && length == 0 {
            return Err(FrameError::ValueTooShort {
                tag,
                length,
                min: 1,
            });
        }
        Ok(())
    }
}

/// Why a frame was rejected. Every variant names the tag and the lengths involved.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A frame whose value must have an exact length (requests: 68, Close: 0) had another.
    #[error("{tag:?} (tag {}) must carry exactly {expected} value bytes, got {length}", u8::from(*tag))]
    ValueLength {
        /// The tag of the frame.
        tag: Tag,
        /// The declared value length.
        length: u32,
        /// The required value length.
        expected: u32,
    },
    /// A declared value length over hawker's bound for the tag.
    #[error("{tag:?} (tag {}) declares {length} value bytes, over the bound of {max}", u8::from(*tag))]
    ValueTooLong {
        /// The tag of the frame.
        tag: Tag,
        /// The declared value length.
        length: u32,
        /// The bound.
        max: u32,
    },
    /// A value shorter than its fixed part.
    #[error("{tag:?} (tag {}) declares {length} value bytes, needs at least {min}", u8::from(*tag))]
    ValueTooShort {
        /// The tag of the frame.
        tag: Tag,
        /// The declared value length.
        length: u32,
        /// The minimum.
        min: u32,
    },
    /// A piece content frame sent to a server (servers only accept requests, Close and Error).
    #[error(
        "{tag:?} (tag {}) is a response; a piece server accepts only requests (tags 0, 2, 4, 6), \
         reserved tags, Close and Error",
        u8::from(*tag)
    )]
    UnexpectedTag {
        /// The tag received.
        tag: Tag,
    },
    /// A request whose task id is not 64 lower-case hex characters.
    #[error("{tag:?} (tag {}) carries a bad task id: {reason}", u8::from(*tag))]
    InvalidTaskId {
        /// The request tag.
        tag: Tag,
        /// What is wrong with the id.
        reason: IdError,
    },
    /// The metadata_length field disagrees with the value length.
    #[error(
        "piece metadata declares {declared} bytes but the value holds {actual} after the length \
         field"
    )]
    MetadataLength {
        /// The metadata_length field.
        declared: u32,
        /// Bytes actually present after the field.
        actual: usize,
    },
    /// A metadata_length over [`MAX_METADATA_LEN`].
    #[error("piece metadata declares {length} bytes, over the bound of {max}")]
    MetadataTooLong {
        /// The metadata_length field.
        length: u32,
        /// The bound.
        max: u32,
    },
    /// A value ended inside a field.
    #[error("value truncated in {field}: needs {need} more bytes, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        need: usize,
        /// Bytes left in the value.
        available: usize,
    },
    /// A text field that is not UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },
}

impl FrameError {
    /// The Error code to answer this with. Every frame error is the peer's fault, so it is
    /// [`ErrorCode::InvalidArgument`].
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidArgument
    }
}

/// A bounds-checked reader over a value.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], FrameError> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(FrameError::Truncated {
            field,
            need: n,
            available: self.rest.len(),
        })?;
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], FrameError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, FrameError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, FrameError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn str(&mut self, len: u32, field: &'static str) -> Result<&'a str, FrameError> {
        let bytes = self.take(len as usize, field)?;
        std::str::from_utf8(bytes).map_err(|_| FrameError::InvalidUtf8 { field })
    }
}

/// A download piece request (the value of tags 0, 2, 4 and 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadPiece {
    /// The task.
    pub task_id: TaskId,
    /// The piece number.
    pub piece_number: u32,
}

impl DownloadPiece {
    /// Decodes a request value (exactly 68 bytes). Errors name tag 0; [`RequestDecoder`]
    /// reports the tag actually received.
    pub fn decode(value: &[u8]) -> Result<DownloadPiece, FrameError> {
        DownloadPiece::decode_for(Tag::DownloadPiece, value)
    }

    fn decode_for(tag: Tag, value: &[u8]) -> Result<DownloadPiece, FrameError> {
        let value: &[u8; DOWNLOAD_PIECE_VALUE_LEN] =
            value.try_into().map_err(|_| FrameError::ValueLength {
                tag,
                length: u32::try_from(value.len()).unwrap_or(u32::MAX),
                expected: DOWNLOAD_PIECE_VALUE_LEN as u32,
            })?;
        let (id, number) = value.split_at(TASK_ID_LEN);
        let task_id =
            TaskId::parse(id).map_err(|reason| FrameError::InvalidTaskId { tag, reason })?;
        let piece_number = u32::from_be_bytes([number[0], number[1], number[2], number[3]]);
        Ok(DownloadPiece {
            task_id,
            piece_number,
        })
    }

    /// The whole request packet (74 bytes) with the given request tag.
    ///
    /// # Panics
    /// If `tag` is not a request tag (a bug in the caller).
    pub fn encode_packet(
        &self,
        tag: Tag,
        packet_id: u8,
    ) -> [u8; HEADER_LEN + DOWNLOAD_PIECE_VALUE_LEN] {
        assert!(tag.is_request(), "{tag:?} is not a download request tag");
        let mut out = [0u8; HEADER_LEN + DOWNLOAD_PIECE_VALUE_LEN];
        let header = Header {
            packet_id,
            tag,
            length: DOWNLOAD_PIECE_VALUE_LEN as u32,
        };
        out[..HEADER_LEN].copy_from_slice(&header.encode());
        out[HEADER_LEN..HEADER_LEN + TASK_ID_LEN].copy_from_slice(self.task_id.as_bytes());
        out[HEADER_LEN + TASK_ID_LEN..].copy_from_slice(&self.piece_number.to_be_bytes());
        out
    }
}

/// The metadata of a piece content response (tags 1, 3, 5, 7), borrowing its strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PieceMetadata<'a> {
    /// The piece number.
    pub number: u32,
    /// Offset of the piece in the content.
    pub offset: u64,
    /// Length of the content bytes that follow the packet.
    pub length: u64,
    /// The piece digest, e.g. `crc32:3421780262`.
    pub digest: &'a str,
    /// Id of the peer the piece came from (may be empty).
    pub parent_id: &'a str,
    /// Traffic type (1 = remote peer).
    pub traffic_type: u8,
    /// Download cost in whole seconds.
    pub cost_secs: u64,
    /// Creation time, Unix seconds.
    pub created_at_secs: i64,
}

impl<'a> PieceMetadata<'a> {
    /// The metadata_length field: [`METADATA_FIXED_LEN`] + digest + parent id.
    pub fn metadata_len(&self) -> usize {
        METADATA_FIXED_LEN + self.digest.len() + self.parent_id.len()
    }

    /// Bytes of the packet: header + value (the content that follows is not counted).
    pub fn packet_len(&self) -> usize {
        HEADER_LEN + 4 + self.metadata_len()
    }

    /// Appends the packet (header + value) to `out`; the caller then sends `length` content
    /// bytes. Does not allocate when `out` has `packet_len()` spare capacity.
    ///
    /// # Panics
    /// If `tag` is not a content tag or the metadata exceeds [`MAX_METADATA_LEN`] (bugs in the
    /// caller: hawker never writes what it would refuse to read).
    pub fn encode_packet(&self, tag: Tag, packet_id: u8, out: &mut Vec<u8>) {
        assert!(tag.is_content(), "{tag:?} is not a piece content tag");
        let metadata_len = self.metadata_len();
        assert!(
            metadata_len <= MAX_METADATA_LEN as usize,
            "piece metadata of {metadata_len} bytes exceeds MAX_METADATA_LEN"
        );
        // Bounded by MAX_METADATA_LEN above, so these casts are exact.
        let header = Header {
            packet_id,
            tag,
            length: (4 + metadata_len) as u32,
        };
        out.reserve(self.packet_len());
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(&(metadata_len as u32).to_be_bytes());
        out.extend_from_slice(&self.number.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
        out.extend_from_slice(&(self.digest.len() as u32).to_be_bytes());
        out.extend_from_slice(self.digest.as_bytes());
        out.extend_from_slice(&(self.parent_id.len() as u32).to_be_bytes());
        out.extend_from_slice(self.parent_id.as_bytes());
        out.push(self.traffic_type);
        out.extend_from_slice(&self.cost_secs.to_be_bytes());
        out.extend_from_slice(&self.created_at_secs.to_be_bytes());
    }

    /// Decodes a piece content value: the bytes after the header, exactly `header.length` of
    /// them. `metadata_length` must equal the bytes after it and be ≤ [`MAX_METADATA_LEN`];
    /// digest and parent id must be UTF-8; trailing bytes inside the metadata are ignored.
    pub fn decode(value: &'a [u8]) -> Result<PieceMetadata<'a>, FrameError> {
        let mut r = Reader { rest: value };
        let declared = r.u32("metadata_length")?;
        if declared > MAX_METADATA_LEN {
            return Err(FrameError::MetadataTooLong {
                length: declared,
                max: MAX_METADATA_LEN,
            });
        }
        if declared as usize != r.rest.len() {
            return Err(FrameError::MetadataLength {
                declared,
                actual: r.rest.len(),
            });
        }
        let number = r.u32("number")?;
        let offset = r.u64("offset")?;
        let length = r.u64("length")?;
        let digest_len = r.u32("digest_length")?;
        let digest = r.str(digest_len, "digest")?;
        let parent_id_len = r.u32("parent_id_length")?;
        let parent_id = r.str(parent_id_len, "parent_id")?;
        let [traffic_type] = r.array::<1>("traffic_type")?;
        let cost_secs = r.u64("cost")?;
        let created_at_secs = i64::from_be_bytes(r.array("created_at")?);
        Ok(PieceMetadata {
            number,
            offset,
            length,
            digest,
            parent_id,
            traffic_type,
            cost_secs,
            created_at_secs,
        })
    }
}

/// The code of an Error frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 0.
    Unknown,
    /// 1: a malformed request, bad task id or piece number.
    InvalidArgument,
    /// 2: the task or piece is not here.
    NotFound,
    /// 3: a server fault.
    Internal,
    /// 4–255: reserved.
    Other(u8),
}

impl From<u8> for ErrorCode {
    fn from(value: u8) -> ErrorCode {
        match value {
            0 => ErrorCode::Unknown,
            1 => ErrorCode::InvalidArgument,
            2 => ErrorCode::NotFound,
            3 => ErrorCode::Internal,
            other => ErrorCode::Other(other),
        }
    }
}

impl From<ErrorCode> for u8 {
    fn from(code: ErrorCode) -> u8 {
        match code {
            ErrorCode::Unknown => 0,
            ErrorCode::InvalidArgument => 1,
            ErrorCode::NotFound => 2,
            ErrorCode::Internal => 3,
            ErrorCode::Other(value) => value,
        }
    }
}

/// An Error frame (tag 255): a code and a UTF-8 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorFrame<'a> {
    /// The code.
    pub code: ErrorCode,
    /// A human-readable message.
    pub message: &'a str,
}

impl<'a> ErrorFrame<'a> {
    /// The message bytes actually sent: cut to `MAX_ERROR_VALUE_LEN - 1` on a UTF-8 boundary.
    fn sent_message(&self) -> &'a str {
        let max = MAX_ERROR_VALUE_LEN as usize - 1;
        if self.message.len() <= max {
            return self.message;
        }
        let mut end = max;
        while !self.message.is_char_boundary(end) {
            end -= 1;
        }
        &self.message[..end]
    }

    /// Appends the packet to `out` (no allocation when capacity suffices). A message longer
    /// than `MAX_ERROR_VALUE_LEN - 1` bytes is cut on a UTF-8 boundary.
    pub fn encode_packet(&self, packet_id: u8, out: &mut Vec<u8>) {
        let message = self.sent_message();
        let header = Header {
            packet_id,
            tag: Tag::Error,
            // At most MAX_ERROR_VALUE_LEN, see sent_message.
            length: (1 + message.len()) as u32,
        };
        out.reserve(HEADER_LEN + 1 + message.len());
        out.extend_from_slice(&header.encode());
        out.push(u8::from(self.code));
        out.extend_from_slice(message.as_bytes());
    }

    /// Decodes an Error value: 1 ..= [`MAX_ERROR_VALUE_LEN`] bytes, a UTF-8 message.
    pub fn decode(value: &'a [u8]) -> Result<ErrorFrame<'a>, FrameError> {
        let length = u32::try_from(value.len()).unwrap_or(u32::MAX);
        if length > MAX_ERROR_VALUE_LEN {
            return Err(FrameError::ValueTooLong {
                tag: Tag::Error,
                length,
                max: MAX_ERROR_VALUE_LEN,
            });
        }
        let (&code, message) = value.split_first().ok_or(FrameError::ValueTooShort {
            tag: Tag::Error,
            length,
            min: 1,
        })?;
        let message = std::str::from_utf8(message).map_err(|_| FrameError::InvalidUtf8 {
            field: "error message",
        })?;
        Ok(ErrorFrame {
            code: ErrorCode::from(code),
            message,
        })
    }
}

/// Appends a Close packet (tag 254, empty value) to `out`.
pub fn encode_close(packet_id: u8, out: &mut Vec<u8>) {
    let header = Header {
        packet_id,
        tag: Tag::Close,
        length: 0,
    };
    out.extend_from_slice(&header.encode());
}

/// One complete frame decoded by [`RequestDecoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A download request; answer with `tag.response_tag()` (or an Error frame).
    Request {
        /// The request tag (0, 2, 4 or 6).
        tag: Tag,
        /// The request.
        request: DownloadPiece,
    },
    /// The peer asked to close the connection.
    Close,
    /// The peer sent an Error frame (its message was skipped).
    PeerError {
        /// Its code.
        code: ErrorCode,
    },
    /// A reserved-tag frame was skipped.
    Skipped,
}

/// A frame being skipped: bytes still to drop, and the event to report when done.
#[derive(Clone, Copy, Debug)]
struct Skip {
    remaining: u32,
    event: Decoded,
}

/// The server side's incremental Vortex decoder (sans-IO). See [`RequestDecoder::decode`].
#[derive(Default, Debug)]
pub struct RequestDecoder {
    skip: Option<Skip>,
}

impl RequestDecoder {
    /// A decoder at a frame boundary.
    pub fn new() -> RequestDecoder {
        RequestDecoder::default()
    }

    /// Whether the decoder is in the middle of skipping a frame.
    pub fn is_skipping(&self) -> bool {
        self.skip.is_some()
    }

    /// Decodes at most one frame from the start of `input` (the unconsumed received bytes).
    ///
    /// Returns how many bytes of `input` were consumed and the event decoded, if any:
    /// - `Ok((0, None))`: need more bytes (keep `input`, append to it, call again);
    /// - `Ok((n, None))` with `n > 0`: `n` bytes of a skipped frame were dropped, the frame is
    ///   not over yet;
    /// - `Ok((n, Some(event)))`: a whole frame of `n` bytes (or its last skipped part) was
    ///   consumed. Call again on the rest: `input` may hold more frames.
    ///
    /// Reserved tags and peer Error frames are skipped by their declared length (across calls,
    /// without buffering), bounded by [`MAX_RESERVED_VALUE_LEN`] / [`MAX_ERROR_VALUE_LEN`]. A
    /// request tag whose length is not exactly 68, a content tag (1/3/5/7), a Close with a value,
    /// an Error with an empty value, a length over its bound or a bad task id is an `Err`: answer
    /// it with an Error frame of `err.code()` and close; the decoder must not be used again.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Decoded>), FrameError> {
        if let Some(skip) = self.skip {
            self.skip = None;
            return Ok(self.skip_from(0, skip, input));
        }
        let Some(header_bytes) = input.first_chunk::<HEADER_LEN>() else {
            return Ok((0, None));
        };
        let header = Header::decode(header_bytes);
        let value = &input[HEADER_LEN..];
        let tag = header.tag;
        if tag.is_content() {
            return Err(FrameError::UnexpectedTag { tag });
        }
        header.check_length()?;
        match tag {
            Tag::Close => Ok((HEADER_LEN, Some(Decoded::Close))),
            Tag::Reserved(_) => {
                let skip = Skip {
                    remaining: header.length,
                    event: Decoded::Skipped,
                };
                Ok(self.skip_from(HEADER_LEN, skip, value))
            }
            Tag::Error => {
                // check_length guarantees length >= 1: the code byte.
                let Some((&code, message)) = value.split_first() else {
                    return Ok((0, None));
                };
                let skip = Skip {
                    remaining: header.length - 1,
                    event: Decoded::PeerError {
                        code: ErrorCode::from(code),
                    },
                };
                Ok(self.skip_from(HEADER_LEN + 1, skip, message))
            }
            _ => {
                // A request tag of exactly DOWNLOAD_PIECE_VALUE_LEN bytes (check_length).
                let Some(value) = value.get(..DOWNLOAD_PIECE_VALUE_LEN) else {
                    return Ok((0, None));
                };
                let request = DownloadPiece::decode_for(tag, value)?;
                Ok((
                    HEADER_LEN + DOWNLOAD_PIECE_VALUE_LEN,
                    Some(Decoded::Request { tag, request }),
                ))
            }
        }
    }

    /// Drops up to `skip.remaining` bytes of `rest`, after `consumed` bytes already taken.
    fn skip_from(
        &mut self,
        consumed: usize,
        mut skip: Skip,
        rest: &[u8],
    ) -> (usize, Option<Decoded>) {
        let n = rest.len().min(skip.remaining as usize);
        // n <= remaining, a u32.
        skip.remaining -= n as u32;
        if skip.remaining == 0 {
            (consumed + n, Some(skip.event))
        } else {
            self.skip = Some(skip);
            (consumed + n, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "e2d0fe1585a63ec6009c8016ff8dda8b17719a637405a4e23c0ff81339148249";

    fn task() -> TaskId {
        TaskId::parse(ID.as_bytes()).unwrap()
    }

    fn packet(packet_id: u8, tag: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![packet_id, tag];
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
        out
    }

    fn sample_metadata() -> PieceMetadata<'static> {
        PieceMetadata {
            number: 42,
            offset: 1024,
            length: 2048,
            digest: "short",
            parent_id: "",
            traffic_type: 1,
            cost_secs: 30,
            created_at_secs: 1_700_000_000,
        }
    }

    #[test]
    fn tags_convert_both_ways() {
        for value in 0..=255u8 {
            assert_eq!(u8::from(Tag::from(value)), value);
        }
        assert_eq!(Tag::from(8), Tag::Reserved(8));
        assert_eq!(Tag::from(253), Tag::Reserved(253));
        assert_eq!(Tag::from(254), Tag::Close);
        assert_eq!(Tag::from(255), Tag::Error);
        let pairs = [(0, 1), (2, 3), (4, 5), (6, 7)];
        for (request, response) in pairs {
            assert_eq!(Tag::from(request).response_tag(), Some(Tag::from(response)));
            assert!(Tag::from(response).is_content());
            assert_eq!(Tag::from(response).response_tag(), None);
        }
        assert_eq!(Tag::Close.response_tag(), None);
        assert_eq!(Tag::Reserved(9).response_tag(), None);
    }

    #[test]
    fn header_layout_is_big_endian() {
        let header = Header {
            packet_id: 7,
            tag: Tag::Close,
            length: 0x0102_0304,
        };
        assert_eq!(header.encode(), [7, 254, 1, 2, 3, 4]);
        assert_eq!(Header::decode(&header.encode()), header);
    }

    #[test]
    fn download_piece_wire_layout() {
        let request = DownloadPiece {
            task_id: task(),
            piece_number: 0x0102_0304,
        };
        let bytes = request.encode_packet(Tag::DownloadPersistentPiece, 9);
        assert_eq!(&bytes[..6], &[9, 2, 0, 0, 0, 68]);
        assert_eq!(&bytes[6..70], ID.as_bytes());
        assert_eq!(&bytes[70..], &[1, 2, 3, 4]);
        assert_eq!(DownloadPiece::decode(&bytes[6..]).unwrap(), request);
        assert!(matches!(
            DownloadPiece::decode(&bytes[6..73]),
            Err(FrameError::ValueLength { length: 67, .. })
        ));
        let mut bad = bytes;
        bad[6] = b'A';
        assert!(matches!(
            DownloadPiece::decode(&bad[6..]),
            Err(FrameError::InvalidTaskId { .. })
        ));
    }

    #[test]
    fn piece_metadata_wire_layout() {
        // The same layout `vortex-protocol`'s own test checks.
        let metadata = sample_metadata();
        let mut out = Vec::new();
        metadata.encode_packet(Tag::PieceContent, 3, &mut out);
        assert_eq!(out.len(), metadata.packet_len());
        assert_eq!(out.len(), 6 + 4 + 45 + 5);
        let header = Header::decode(out[..6].try_into().unwrap());
        assert_eq!(header.tag, Tag::PieceContent);
        assert_eq!(header.length as usize, 4 + 45 + 5);
        let v = &out[6..];
        assert_eq!(&v[..4], 50u32.to_be_bytes());
        assert_eq!(&v[4..8], 42u32.to_be_bytes());
        assert_eq!(&v[8..16], 1024u64.to_be_bytes());
        assert_eq!(&v[16..24], 2048u64.to_be_bytes());
        assert_eq!(&v[24..28], 5u32.to_be_bytes());
        assert_eq!(&v[28..33], b"short");
        assert_eq!(&v[33..37], 0u32.to_be_bytes());
        assert_eq!(v[37], 1);
        assert_eq!(&v[38..46], 30u64.to_be_bytes());
        assert_eq!(&v[46..54], 1_700_000_000i64.to_be_bytes());
        assert_eq!(PieceMetadata::decode(v).unwrap(), metadata);
    }

    #[test]
    fn piece_metadata_encode_appends_without_reallocating() {
        let metadata = PieceMetadata {
            parent_id: "127.0.0.1-host-seed",
            ..sample_metadata()
        };
        let mut out = Vec::with_capacity(metadata.packet_len() + 3);
        out.extend_from_slice(b"abc");
        let ptr = out.as_ptr();
        metadata.encode_packet(Tag::CachePieceContent, 0, &mut out);
        assert_eq!(out.as_ptr(), ptr);
        assert_eq!(&out[..3], b"abc");
        assert_eq!(PieceMetadata::decode(&out[3 + 6..]).unwrap(), metadata);
    }

    #[test]
    fn piece_metadata_decode_rejects_malformed_values() {
        let mut out = Vec::new();
        sample_metadata().encode_packet(Tag::PieceContent, 0, &mut out);
        let value = &out[6..];
        // Truncated anywhere: the length no longer matches.
        for cut in 0..value.len() {
            assert!(PieceMetadata::decode(&value[..cut]).is_err(), "cut {cut}");
        }
        // Declared length over the bound.
        let mut big = value.to_vec();
        big[..4].copy_from_slice(&(MAX_METADATA_LEN + 1).to_be_bytes());
        assert!(matches!(
            PieceMetadata::decode(&big),
            Err(FrameError::MetadataTooLong { .. })
        ));
        // Digest length pointing past the end.
        let mut bad = value.to_vec();
        bad[24..28].copy_from_slice(&1000u32.to_be_bytes());
        assert!(matches!(
            PieceMetadata::decode(&bad),
            Err(FrameError::Truncated {
                field: "digest",
                ..
            })
        ));
        // Non-UTF-8 digest.
        let mut bad = value.to_vec();
        bad[28] = 0xff;
        assert!(matches!(
            PieceMetadata::decode(&bad),
            Err(FrameError::InvalidUtf8 { field: "digest" })
        ));
        // Trailing bytes inside the declared length are ignored.
        let mut longer = value.to_vec();
        longer.extend_from_slice(b"xyz");
        longer[..4].copy_from_slice(&53u32.to_be_bytes());
        assert_eq!(PieceMetadata::decode(&longer).unwrap(), sample_metadata());
    }

    #[test]
    fn error_frame_round_trips_and_is_bounded() {
        let frame = ErrorFrame {
            code: ErrorCode::NotFound,
            message: "piece 3 not found",
        };
        let mut out = Vec::new();
        frame.encode_packet(1, &mut out);
        assert_eq!(&out[..6], &[1, 255, 0, 0, 0, 18]);
        assert_eq!(out[6], 2);
        assert_eq!(ErrorFrame::decode(&out[6..]).unwrap(), frame);
        assert!(matches!(
            ErrorFrame::decode(&[]),
            Err(FrameError::ValueTooShort { .. })
        ));
        assert!(ErrorFrame::decode(&[1, 0xff]).is_err());
        let long = "é".repeat(MAX_ERROR_VALUE_LEN as usize);
        let mut out = Vec::new();
        ErrorFrame {
            code: ErrorCode::Internal,
            message: &long,
        }
        .encode_packet(0, &mut out);
        let header = Header::decode(out[..6].try_into().unwrap());
        assert!(header.length <= MAX_ERROR_VALUE_LEN);
        assert_eq!(header.length as usize, out.len() - 6);
        let decoded = ErrorFrame::decode(&out[6..]).unwrap();
        assert!(long.starts_with(decoded.message));
        assert!(ErrorFrame::decode(&vec![0u8; MAX_ERROR_VALUE_LEN as usize + 1]).is_err());
        for code in 0..=255u8 {
            assert_eq!(u8::from(ErrorCode::from(code)), code);
        }
    }

    /// Feeds `stream` in chunks of `chunk` bytes through a REQUEST_BUFFER_LEN buffer, like the
    /// server does, collecting events until the end or the first error.
    fn run(stream: &[u8], chunk: usize) -> (Vec<Decoded>, Option<FrameError>) {
        let mut decoder = RequestDecoder::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut events = Vec::new();
        for piece in stream.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            assert!(buf.len() <= REQUEST_BUFFER_LEN + chunk);
            loop {
                match decoder.decode(&buf) {
                    Ok((0, None)) => break,
                    Ok((n, event)) => {
                        buf.drain(..n);
                        events.extend(event);
                    }
                    Err(err) => return (events, Some(err)),
                }
            }
        }
        (events, None)
    }

    #[test]
    fn decoder_handles_every_frame_kind_at_every_split() {
        let request = DownloadPiece {
            task_id: task(),
            piece_number: 5,
        };
        let mut stream = Vec::new();
        stream.extend_from_slice(&request.encode_packet(Tag::DownloadPiece, 1));
        stream.extend_from_slice(&packet(2, 9, &[0xaa; 300]));
        stream.extend_from_slice(&packet(2, 200, &[]));
        stream.extend_from_slice(&request.encode_packet(Tag::DownloadCachePiece, 1));
        ErrorFrame {
            code: ErrorCode::NotFound,
            message: "gone",
        }
        .encode_packet(3, &mut stream);
        stream.extend_from_slice(&packet(0, 255, &[3]));
        encode_close(4, &mut stream);
        let expected = vec![
            Decoded::Request {
                tag: Tag::DownloadPiece,
                request,
            },
            Decoded::Skipped,
            Decoded::Skipped,
            Decoded::Request {
                tag: Tag::DownloadCachePiece,
                request,
            },
            Decoded::PeerError {
                code: ErrorCode::NotFound,
            },
            Decoded::PeerError {
                code: ErrorCode::Internal,
            },
            Decoded::Close,
        ];
        for chunk in 1..=stream.len() {
            assert_eq!(
                run(&stream, chunk),
                (expected.clone(), None),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn decoder_skips_a_long_reserved_frame_without_buffering_it() {
        let big = packet(0, 100, &vec![0; MAX_RESERVED_VALUE_LEN as usize]);
        let (events, err) = run(&big, 1000);
        assert_eq!(events, vec![Decoded::Skipped]);
        assert_eq!(err, None);
    }

    #[test]
    fn decoder_rejects_protocol_violations() {
        let mut decoder = RequestDecoder::new();
        let cases: Vec<(Vec<u8>, FrameError)> = vec![
            (
                packet(0, 0, &[b'a'; 67]),
                FrameError::ValueLength {
                    tag: Tag::DownloadPiece,
                    length: 67,
                    expected: 68,
                },
            ),
            (
                [0, 6, 0xff, 0xff, 0xff, 0xff].to_vec(),
                FrameError::ValueLength {
                    tag: Tag::DownloadCachePiece,
                    length: u32::MAX,
                    expected: 68,
                },
            ),
            (
                packet(0, 1, &[0; 10]),
                FrameError::UnexpectedTag {
                    tag: Tag::PieceContent,
                },
            ),
            (
                packet(0, 7, &[]),
                FrameError::UnexpectedTag {
                    tag: Tag::CachePieceContent,
                },
            ),
            (
                packet(0, 254, &[0]),
                FrameError::ValueLength {
                    tag: Tag::Close,
                    length: 1,
                    expected: 0,
                },
            ),
            (
                packet(0, 255, &[]),
                FrameError::ValueTooShort {
                    tag: Tag::Error,
                    length: 0,
                    min: 1,
                },
            ),
            (
                [0, 255, 0, 1, 0, 1].to_vec(),
                FrameError::ValueTooLong {
                    tag: Tag::Error,
                    length: MAX_ERROR_VALUE_LEN + 1,
                    max: MAX_ERROR_VALUE_LEN,
                },
            ),
            (
                [0, 8, 0, 0x10, 0, 1].to_vec(),
                FrameError::ValueTooLong {
                    tag: Tag::Reserved(8),
                    length: MAX_RESERVED_VALUE_LEN + 1,
                    max: MAX_RESERVED_VALUE_LEN,
                },
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(decoder.decode(&bytes), Err(expected.clone()));
            assert_eq!(expected.code(), ErrorCode::InvalidArgument);
            assert!(!expected.to_string().is_empty());
        }
        let mut upper = packet(0, 0, ID.to_uppercase().as_bytes());
        upper.extend_from_slice(&[0, 0, 0, 1]);
        upper[5] = 68;
        assert!(matches!(
            decoder.decode(&upper),
            Err(FrameError::InvalidTaskId {
                tag: Tag::DownloadPiece,
                ..
            })
        ));
    }

    #[test]
    fn decoder_waits_for_whole_requests() {
        let request = DownloadPiece {
            task_id: task(),
            piece_number: 1,
        };
        let bytes = request.encode_packet(Tag::DownloadPiece, 0);
        let mut decoder = RequestDecoder::new();
        for len in 0..bytes.len() {
            assert_eq!(decoder.decode(&bytes[..len]), Ok((0, None)));
        }
        assert_eq!(
            decoder.decode(&bytes),
            Ok((
                74,
                Some(Decoded::Request {
                    tag: Tag::DownloadPiece,
                    request
                })
            ))
        );
    }
}
