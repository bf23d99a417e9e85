//! The piece journal of a partial task (`tasks/<id>.journal`): which pieces have landed, with their crc32.
//!
//! Layout (all integers little-endian, every unit 16 bytes so a record never straddles a 4 KiB page):
//! ```text
//! header  : "HWKJ" | u32 version (=1) | u32 piece_count | u32 crc32(previous 12 bytes)
//! record i: "HWKR" | u32 piece number | u32 piece crc32 | u32 crc32(previous 12 bytes)
//! ```
//! Invariants: the file is preallocated to `JOURNAL_HEADER_BYTES + piece_count * JOURNAL_RECORD_BYTES`
//! (its bound), the writer puts record k at offset `16 + 16 k` and fdatasyncs it before the piece is
//! announced; a record whose own crc does not match (torn write, zeroes of the preallocation, a flipped
//! bit) is skipped, never trusted. A piece number out of range or seen twice is ignored. Decoding never
//! panics on any bytes (it is fed whatever the disk holds).

use std::collections::HashMap;

/// Size of the journal header, in bytes.
pub const JOURNAL_HEADER_BYTES: usize = 16;
/// Size of one journal record, in bytes.
pub const JOURNAL_RECORD_BYTES: usize = 16;
const HEADER_MAGIC: &[u8; 4] = b"HWKJ";
const RECORD_MAGIC: &[u8; 4] = b"HWKR";
const JOURNAL_VERSION: u32 = 1;

/// The full size of a journal for `piece_count` pieces, in bytes (its bound on disk).
pub fn journal_len_bytes(piece_count: u32) -> u64 {
    JOURNAL_HEADER_BYTES as u64 + piece_count as u64 * JOURNAL_RECORD_BYTES as u64
}

/// Offset of record `index` (the index-th landed piece, counting from 0), in bytes.
pub fn record_offset(index: u32) -> u64 {
    JOURNAL_HEADER_BYTES as u64 + index as u64 * JOURNAL_RECORD_BYTES as u64
}

fn sealed(magic: &[u8; 4], a: u32, b: u32) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[0..4].copy_from_slice(magic);
    out[4..8].copy_from_slice(&a.to_le_bytes());
    out[8..12].copy_from_slice(&b.to_le_bytes());
    let crc = crc32fast::hash(&out[0..12]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    out
}

fn unseal(magic: &[u8; 4], unit: &[u8]) -> Option<(u32, u32)> {
    let unit: &[u8; 16] = unit.try_into().ok()?;
    if &unit[0..4] != magic {
        return None;
    }
    let want = u32::from_le_bytes(unit[12..16].try_into().ok()?);
    if crc32fast::hash(&unit[0..12]) != want {
        return None;
    }
    let a = u32::from_le_bytes(unit[4..8].try_into().ok()?);
    let b = u32::from_le_bytes(unit[8..12].try_into().ok()?);
    Some((a, b))
}

/// The header for a journal of `piece_count` pieces.
pub fn encode_header(piece_count: u32) -> [u8; JOURNAL_HEADER_BYTES] {
    sealed(HEADER_MAGIC, JOURNAL_VERSION, piece_count)
}

/// One record: piece `number` landed with crc32 `crc`.
pub fn encode_record(number: u32, crc: u32) -> [u8; JOURNAL_RECORD_BYTES] {
    sealed(RECORD_MAGIC, number, crc)
}

/// What a journal file says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Landed pieces (number -> crc32), in journal order of first appearance.
    pub pieces: Vec<(u32, u32)>,
    /// Records that failed their own crc (torn or corrupt), not counting all-zero preallocated units.
    pub bad_records: u32,
}

/// Why a journal cannot be used at all.
#[derive(Debug, PartialEq, Eq)]
pub enum JournalError {
    /// Missing, corrupt or of another version: the header is unusable.
    BadHeader,
    /// The header's piece count differs from the task's layout.
    PieceCountMismatch { journal: u32, layout: u32 },
}

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalError::BadHeader => f.write_str("journal header is missing or corrupt"),
            JournalError::PieceCountMismatch { journal, layout } => write!(
                f,
                "journal is for {journal} pieces but the metadata says {layout}"
            ),
        }
    }
}

/// Decodes a journal image for a task of `piece_count` pieces. Bytes past the journal's bound and a
/// trailing partial unit are ignored.
pub fn decode(bytes: &[u8], piece_count: u32) -> Result<Decoded, JournalError> {
    let header = bytes
        .get(..JOURNAL_HEADER_BYTES)
        .ok_or(JournalError::BadHeader)?;
    let (version, count) = unseal(HEADER_MAGIC, header).ok_or(JournalError::BadHeader)?;
    if version != JOURNAL_VERSION {
        return Err(JournalError::BadHeader);
    }
    if count != piece_count {
        return Err(JournalError::PieceCountMismatch {
            journal: count,
            layout: piece_count,
        });
    }
    let bound = usize::try_from(journal_len_bytes(piece_count)).unwrap_or(usize::MAX);
    let body = bytes
        .get(JOURNAL_HEADER_BYTES..bytes.len().min(bound))
        .unwrap_or(&[]);
    let mut seen: HashMap<u32, ()> = HashMap::new();
    let mut out = Decoded::default();
    for unit in body.chunks_exact(JOURNAL_RECORD_BYTES) {
        match unseal(RECORD_MAGIC, unit) {
            Some((number, crc)) if number < piece_count => {
                if seen.insert(number, ()).is_none() {
                    out.pieces.push((number, crc));
                }
            }
            Some(_) => out.bad_records += 1,
            None if unit.iter().all(|b| *b == 0) => {}
            None => out.bad_records += 1,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(count: u32, records: &[(u32, u32)]) -> Vec<u8> {
        let mut v = encode_header(count).to_vec();
        for (n, c) in records {
            v.extend_from_slice(&encode_record(*n, *c));
        }
        v.resize(journal_len_bytes(count) as usize, 0);
        v
    }

    #[test]
    fn store_journal_roundtrip() {
        let img = image(4, &[(2, 7), (0, 9)]);
        let d = decode(&img, 4).unwrap();
        assert_eq!(d.pieces, vec![(2, 7), (0, 9)]);
        assert_eq!(d.bad_records, 0);
    }

    #[test]
    fn store_journal_skips_torn_and_corrupt_records() {
        let mut img = image(4, &[(1, 11), (3, 33), (0, 5)]);
        img[record_offset(1) as usize + 9] ^= 0x40; // corrupt piece 3's crc
        img.truncate(record_offset(2) as usize + 7); // tear piece 0's record
        let d = decode(&img, 4).unwrap();
        assert_eq!(d.pieces, vec![(1, 11)]);
        assert_eq!(d.bad_records, 1);
    }

    #[test]
    fn store_journal_rejects_bad_header_and_out_of_range() {
        assert_eq!(decode(&[], 1), Err(JournalError::BadHeader));
        assert_eq!(
            decode(&image(3, &[]), 4),
            Err(JournalError::PieceCountMismatch {
                journal: 3,
                layout: 4
            })
        );
        let mut img = image(2, &[(5, 1), (1, 2), (1, 3)]);
        img.extend_from_slice(&encode_record(0, 4)); // beyond the bound: ignored
        let d = decode(&img, 2).unwrap();
        assert_eq!(d.pieces, vec![(1, 2)]);
        assert_eq!(d.bad_records, 1);
    }

    #[test]
    fn store_journal_decode_never_panics() {
        let mut x: u32 = 12345;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = decode(&bytes, 3);
        }
    }
}
