//! One piece over Vortex (Dragonfly's TCP piece protocol): send the 74-byte DownloadPiece
//! request, read the 6-byte header, then either a PieceContent value (length-prefixed
//! metadata: number, offset, length, digest, ...) followed by exactly `length` raw content
//! bytes, or an Error frame. Encoding and decoding are `hawker_shared::vortex`'s; this module
//! only moves bytes and checks them against the layout.
//!
//! Checks: the header's value length against its tag's bound before reading it
//! (`Header::check_length`: 4 + 4 KiB of metadata for PieceContent, 64 KiB for Error, 1 MiB for
//! reserved tags, which are skipped, at most [`MAX_SKIPPED_FRAMES`] per request; all within the
//! 1 MiB receive buffer); the metadata's number, offset and length against the
//! task's layout; the content's crc32 against the metadata's digest and, when the task list
//! has one, against the list. An Error frame leaves the connection usable (the reference
//! server keeps it open); anything out of step closes it.

use hawker_shared::digest::parse_piece_digest;
use hawker_shared::vortex::{
    DownloadPiece, ErrorFrame, Header, PieceMetadata, Tag, HEADER_LEN, MAX_RESERVED_VALUE_LEN,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{read_body, skip_bytes, ConnBuf, FetchError, Fetched};
use crate::stats::ErrorKind;
use crate::workload::{TaskSpec, MAX_PIECE_BYTES};

/// The most reserved-tag frames skipped while waiting for one response.
pub const MAX_SKIPPED_FRAMES: usize = 16;

// Every bounded value fits the receive buffer, so read_exact never needs more room.
const _: () = assert!(MAX_RESERVED_VALUE_LEN as usize <= super::RECV_BUFFER_BYTES);

/// What the metadata said, copied out of the receive buffer.
struct Meta {
    number: u32,
    offset: u64,
    length: u64,
    digest: Option<u32>,
    digest_text_len: usize,
}

/// Fetches piece `number` of `task` and verifies it.
pub async fn fetch_piece<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut ConnBuf,
    task: &TaskSpec,
    number: u32,
    verify: bool,
) -> Result<Fetched, FetchError> {
    let (offset, length) = task.piece_range(number).ok_or_else(|| {
        FetchError::fatal(ErrorKind::Protocol, "piece number past the task's end")
    })?;
    let what = || format!("task {} piece {number}", task.id);
    let request = DownloadPiece {
        task_id: task.id,
        piece_number: number,
    }
    .encode_packet(Tag::DownloadPiece, 0);
    stream
        .write_all(&request)
        .await
        .map_err(|e| FetchError::io(e, "sending the request"))?;

    let mut skipped = 0;
    let meta = loop {
        let raw = buf
            .read_exact(stream, HEADER_LEN)
            .await
            .map_err(|e| FetchError::io(e, "reading the header"))?;
        let mut header_bytes = [0u8; HEADER_LEN];
        header_bytes.copy_from_slice(raw);
        let header = Header::decode(&header_bytes);
        header
            .check_length()
            .map_err(|e| FetchError::fatal(ErrorKind::Protocol, format!("{}: {e}", what())))?;
        // check_length bounded the value: at most MAX_RESERVED_VALUE_LEN (1 MiB).
        let value_len = header.length as usize;
        match header.tag {
            Tag::PieceContent => {
                let value = buf
                    .read_exact(stream, value_len)
                    .await
                    .map_err(|e| FetchError::io(e, "reading the piece metadata"))?;
                let m = PieceMetadata::decode(value).map_err(|e| {
                    FetchError::fatal(
                        ErrorKind::Protocol,
                        format!("{}: bad piece metadata: {e}", what()),
                    )
                })?;
                break Meta {
                    number: m.number,
                    offset: m.offset,
                    length: m.length,
                    digest: parse_piece_digest(m.digest),
                    digest_text_len: m.digest.len(),
                };
            }
            Tag::Error => {
                let value = buf
                    .read_exact(stream, value_len)
                    .await
                    .map_err(|e| FetchError::io(e, "reading the error frame"))?;
                let message = match ErrorFrame::decode(value) {
                    Ok(frame) => format!(
                        "{}: server error {:?}: {}",
                        what(),
                        frame.code,
                        frame.message
                    ),
                    Err(e) => format!("{}: undecodable error frame: {e}", what()),
                };
                return Err(FetchError::reusable(ErrorKind::ServerError, message));
            }
            Tag::Close => {
                return Err(FetchError::fatal(
                    ErrorKind::Protocol,
                    format!("{}: the server sent Close", what()),
                ));
            }
            Tag::Reserved(_) if skipped < MAX_SKIPPED_FRAMES => {
                skipped += 1;
                skip_bytes(stream, buf, value_len as u64).await?;
            }
            other => {
                return Err(FetchError::fatal(
                    ErrorKind::Protocol,
                    format!("{}: unexpected frame {other:?}", what()),
                ));
            }
        }
    };

    if meta.number != number || meta.offset != offset || meta.length != length {
        return Err(FetchError::fatal(
            ErrorKind::BadLength,
            format!(
                "{}: server sent piece {} at {} of {} bytes; the layout says piece {number} at \
                 {offset} of {length} bytes",
                what(),
                meta.number,
                meta.offset,
                meta.length
            ),
        ));
    }
    debug_assert!(length <= MAX_PIECE_BYTES);
    if verify && meta.digest.is_none() {
        return Err(FetchError::fatal(
            ErrorKind::Protocol,
            format!(
                "{}: the metadata's digest ({} bytes) is not crc32:<decimal>",
                what(),
                meta.digest_text_len
            ),
        ));
    }
    let crc = read_body(stream, buf, length, verify).await?;
    let fetched = Fetched {
        bytes: length,
        keep_alive: true,
    };
    if !verify {
        return Ok(fetched);
    }
    for (source, digest) in [
        ("the server", meta.digest),
        ("the task list", task.digest(number)),
    ] {
        if let Some(d) = digest {
            if d != crc {
                return Err(FetchError::reusable(
                    ErrorKind::BadDigest,
                    format!(
                        "{}: content has crc32:{crc}, {source} says crc32:{d}",
                        what()
                    ),
                ));
            }
        }
    }
    Ok(fetched)
}
