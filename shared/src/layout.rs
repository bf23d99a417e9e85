//! How a task's content is cut into pieces, exactly as Dragonfly's client 1.5.10 does it.
//!
//! Piece `n` covers bytes `[n·p, min((n+1)·p, content_length))` where `p` is the piece length:
//! every piece is `p` bytes except the last, which holds the rest; empty content has no pieces.
//! The client checks that a piece it receives has exactly the length it computed itself, so
//! this rule is part of the wire contract.
//!
//! The default piece length ([`piece_length_for`]) is the client's
//! `calculate_piece_length(OptimizeByFileLength)`: `next_power_of_two(content_length / 500)`
//! (the division done in `f64` and truncated, as the client does), clamped to
//! [`MIN_PIECE_LENGTH`] (4 MiB) ..= [`MAX_PIECE_LENGTH`] (64 MiB). So anything below
//! 2,097,152,500 bytes gets 4 MiB pieces, and at most ~500 pieces are made until 64 MiB pieces are
//! reached. A user-fixed piece length (`--piece-length`, ≥ 4 MiB) is used as is.
//!
//! Invariants of a [`Layout`]: `piece_length > 0` and the piece count fits a `u32` (the wire's
//! piece number), so `number · piece_length` never overflows for a valid piece number.

use std::ops::RangeInclusive;

/// The smallest piece length Dragonfly uses or accepts: 4 MiB.
pub const MIN_PIECE_LENGTH: u64 = 4 << 20;

/// The largest piece length Dragonfly chooses by itself: 64 MiB.
pub const MAX_PIECE_LENGTH: u64 = 64 << 20;

/// The piece count the default piece length aims to stay under (the client's `MAX_PIECE_COUNT`).
const TARGET_PIECE_COUNT: u64 = 500;

/// The largest content length [`Layout::for_content`] can lay out: `u32::MAX` pieces of
/// [`MAX_PIECE_LENGTH`] (just under 256 PiB).
pub const MAX_CONTENT_LENGTH: u64 = u32::MAX as u64 * MAX_PIECE_LENGTH;

/// Dragonfly's default piece length for a content length (see the module doc).
pub fn piece_length_for(content_length: u64) -> u64 {
    // Mirrors the client bit for bit, f64 division and truncation included.
    let piece_length = (content_length as f64 / TARGET_PIECE_COUNT as f64) as u64;
    let actual = piece_length.next_power_of_two();
    match (actual > MIN_PIECE_LENGTH, actual < MAX_PIECE_LENGTH) {
        (true, true) => actual,
        (_, false) => MAX_PIECE_LENGTH,
        (false, _) => MIN_PIECE_LENGTH,
    }
}

/// Why a layout was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// A piece length of zero.
    #[error("piece length must be greater than 0")]
    ZeroPieceLength,
    /// More pieces than a `u32` piece number can address.
    #[error(
        "content of {content_length} bytes in pieces of {piece_length} bytes needs more than \
         {} pieces; use a larger piece length",
        u32::MAX
    )]
    TooManyPieces {
        /// The content length asked for.
        content_length: u64,
        /// The piece length asked for.
        piece_length: u64,
    },
}

/// A task's content length and piece length (see the module doc for the invariants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Total bytes of the task's content.
    pub content_length: u64,
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u64,
}

/// One piece of a layout: its number, its first byte's offset in the content and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PieceRange {
    /// The piece number (0-based).
    pub number: u32,
    /// Offset of the piece's first byte in the content.
    pub offset: u64,
    /// Length of the piece in bytes (> 0).
    pub length: u64,
}

impl PieceRange {
    /// Offset one past the piece's last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

impl Layout {
    /// A layout with an explicit piece length: it must be > 0 and the piece count must fit a
    /// `u32`.
    pub fn new(content_length: u64, piece_length: u64) -> Result<Layout, LayoutError> {
        if piece_length == 0 {
            return Err(LayoutError::ZeroPieceLength);
        }
        if content_length.div_ceil(piece_length) > u64::from(u32::MAX) {
            return Err(LayoutError::TooManyPieces {
                content_length,
                piece_length,
            });
        }
        Ok(Layout {
            content_length,
            piece_length,
        })
    }

    /// The layout Dragonfly uses by default, with [`piece_length_for`]. Errors only above
    /// [`MAX_CONTENT_LENGTH`].
    pub fn try_for_content(content_length: u64) -> Result<Layout, LayoutError> {
        Layout::new(content_length, piece_length_for(content_length))
    }

    /// The layout Dragonfly uses by default, with [`piece_length_for`].
    ///
    /// # Panics
    /// Above [`MAX_CONTENT_LENGTH`] (~256 PiB); use [`Layout::try_for_content`] for a length
    /// that came from outside.
    pub fn for_content(content_length: u64) -> Layout {
        match Layout::try_for_content(content_length) {
            Ok(layout) => layout,
            Err(err) => panic!("Layout::for_content: {err}"),
        }
    }

    /// Number of pieces: `ceil(content_length / piece_length)`, 0 for empty content.
    pub fn piece_count(&self) -> u32 {
        let count = self.content_length.div_ceil(self.piece_length);
        // The constructors guarantee the count fits.
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// The piece with this number, or `None` past the last piece.
    pub fn piece(&self, number: u32) -> Option<PieceRange> {
        if number >= self.piece_count() {
            return None;
        }
        Some(self.piece_unchecked(number))
    }

    fn piece_unchecked(&self, number: u32) -> PieceRange {
        let offset = u64::from(number) * self.piece_length;
        PieceRange {
            number,
            offset,
            length: self.piece_length.min(self.content_length - offset),
        }
    }

    /// Every piece, in order.
    pub fn pieces(&self) -> impl Iterator<Item = PieceRange> {
        let layout = *self;
        (0..layout.piece_count()).map(move |number| layout.piece_unchecked(number))
    }

    /// The piece numbers holding any byte of `start..=end_inclusive` (an HTTP byte range),
    /// with `end_inclusive` clamped to the last byte. Empty (`start() > end()`) when the range
    /// starts past the content or `start > end_inclusive`.
    pub fn pieces_overlapping(&self, start: u64, end_inclusive: u64) -> RangeInclusive<u32> {
        #[allow(clippy::reversed_empty_ranges)]
        const EMPTY: RangeInclusive<u32> = 1..=0;
        if start >= self.content_length || start > end_inclusive {
            return EMPTY;
        }
        let last_byte = end_inclusive.min(self.content_length - 1);
        // Both quotients are below piece_count(), which fits u32.
        let first = u32::try_from(start / self.piece_length).unwrap_or(u32::MAX);
        let last = u32::try_from(last_byte / self.piece_length).unwrap_or(u32::MAX);
        first..=last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    // `calculate_piece_length_clamps_the_optimized_length` in dragonfly-client 1.5.10
    // resource/piece.rs, plus the boundaries.
    #[test]
    fn piece_length_matches_the_client() {
        let test_cases = vec![
            (0, MIN_PIECE_LENGTH),
            (1, MIN_PIECE_LENGTH),
            (500 * MIN_PIECE_LENGTH, MIN_PIECE_LENGTH),
            (500 * MIN_PIECE_LENGTH + 500, 8 * MIB),
            (2_097_152_499, MIN_PIECE_LENGTH),
            (500 * 5 * MIB, 8 * MIB),
            (500 * 32 * MIB, 32 * MIB),
            (500 * 32 * MIB + 500, MAX_PIECE_LENGTH),
            (500 * MAX_PIECE_LENGTH, MAX_PIECE_LENGTH),
            (1000 * MAX_PIECE_LENGTH, MAX_PIECE_LENGTH),
            (u64::MAX, MAX_PIECE_LENGTH),
        ];
        for (content_length, expected) in test_cases {
            assert_eq!(
                piece_length_for(content_length),
                expected,
                "{content_length}"
            );
        }
    }

    // `calculate_piece_count_rounds_up_to_whole_pieces` in resource/piece.rs.
    #[test]
    fn piece_count_rounds_up() {
        let test_cases = vec![(1000, 5000, 5), (1000, 5001, 6), (1000, 1, 1), (1000, 0, 0)];
        for (piece_length, content_length, expected) in test_cases {
            assert_eq!(
                Layout::new(content_length, piece_length)
                    .unwrap()
                    .piece_count(),
                expected
            );
        }
    }

    #[test]
    fn pieces_cover_the_content_exactly() {
        let layout = Layout::new(10_001, 1000).unwrap();
        let pieces: Vec<PieceRange> = layout.pieces().collect();
        assert_eq!(pieces.len(), 11);
        assert_eq!(
            pieces[0],
            PieceRange {
                number: 0,
                offset: 0,
                length: 1000
            }
        );
        assert_eq!(
            pieces[10],
            PieceRange {
                number: 10,
                offset: 10_000,
                length: 1
            }
        );
        let mut next = 0;
        for (i, piece) in pieces.iter().enumerate() {
            assert_eq!(piece.number as usize, i);
            assert_eq!(piece.offset, next);
            assert_eq!(Some(*piece), layout.piece(piece.number));
            next = piece.end();
        }
        assert_eq!(next, 10_001);
        assert_eq!(layout.piece(11), None);
        assert_eq!(layout.piece(u32::MAX), None);
    }

    #[test]
    fn empty_content_has_no_pieces() {
        let layout = Layout::for_content(0);
        assert_eq!(layout.piece_length, MIN_PIECE_LENGTH);
        assert_eq!(layout.piece_count(), 0);
        assert_eq!(layout.pieces().count(), 0);
        assert_eq!(layout.piece(0), None);
        assert!(layout.pieces_overlapping(0, 0).is_empty());
    }

    #[test]
    fn new_rejects_bad_layouts() {
        assert_eq!(Layout::new(10, 0), Err(LayoutError::ZeroPieceLength));
        assert!(matches!(
            Layout::new(u64::MAX, 1),
            Err(LayoutError::TooManyPieces { .. })
        ));
        assert!(Layout::new(u64::from(u32::MAX), 1).is_ok());
        assert!(Layout::new(u64::from(u32::MAX) + 1, 1).is_err());
        assert!(Layout::try_for_content(MAX_CONTENT_LENGTH).is_ok());
        assert!(Layout::try_for_content(MAX_CONTENT_LENGTH + 1).is_err());
        let huge = Layout::new(u64::MAX, u64::MAX).unwrap();
        assert_eq!(huge.piece_count(), 1);
        assert_eq!(huge.piece(0).unwrap().length, u64::MAX);
    }

    #[test]
    fn pieces_overlapping_maps_byte_ranges_to_pieces() {
        let layout = Layout::new(10_001, 1000).unwrap();
        assert_eq!(layout.pieces_overlapping(0, 0), 0..=0);
        assert_eq!(layout.pieces_overlapping(0, 999), 0..=0);
        assert_eq!(layout.pieces_overlapping(999, 1000), 0..=1);
        assert_eq!(layout.pieces_overlapping(1500, u64::MAX), 1..=10);
        assert_eq!(layout.pieces_overlapping(10_000, 10_000), 10..=10);
        assert!(layout.pieces_overlapping(10_001, 20_000).is_empty());
        assert!(layout.pieces_overlapping(5, 4).is_empty());
    }
}
