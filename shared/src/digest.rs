//! Piece digests: `"crc32:"` followed by the DECIMAL value of the CRC-32/IEEE of the piece
//! (crc32fast), exactly what Dragonfly's client 1.5.10 computes and compares.
//!
//! The longest digest is `"crc32:4294967295"`: 6 + 10 = [`PIECE_DIGEST_MAX_LEN`] (16) bytes, so
//! [`DigestBuf`] formats one on the stack with no allocation (for the per-piece hot path).
//! [`parse_piece_digest`] accepts only the canonical form this module writes: `crc32:`, then 1 to
//! 10 ASCII digits without a sign or leading zero, fitting a `u32`.
//!
//! Check value: `crc32(b"123456789")` is `0xCBF43926`, written `crc32:3421780262`.

use std::fmt;

/// The algorithm prefix of a piece digest.
const PREFIX: &str = "crc32:";

/// The longest piece digest in bytes: `"crc32:"` plus 10 decimal digits.
pub const PIECE_DIGEST_MAX_LEN: usize = 16;

const _: () = assert!(PREFIX.len() + 10 == PIECE_DIGEST_MAX_LEN);

/// CRC-32/IEEE (the checksum of zlib, gzip and Ethernet) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// A formatted piece digest held on the stack: `crc32:<decimal>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DigestBuf {
    bytes: [u8; PIECE_DIGEST_MAX_LEN],
    len: u8,
}

impl DigestBuf {
    /// Formats the digest of a CRC value, without allocating.
    pub fn new(crc: u32) -> DigestBuf {
        let mut bytes = [0u8; PIECE_DIGEST_MAX_LEN];
        bytes[..PREFIX.len()].copy_from_slice(PREFIX.as_bytes());
        // Write the decimal digits backwards into a scratch, then copy them after the prefix.
        let mut digits = [0u8; 10];
        let mut n = crc;
        let mut count = 0;
        loop {
            digits[digits.len() - 1 - count] = b'0' + (n % 10) as u8;
            count += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let end = PREFIX.len() + count;
        bytes[PREFIX.len()..end].copy_from_slice(&digits[digits.len() - count..]);
        DigestBuf {
            bytes,
            len: end as u8,
        }
    }

    /// The digest string, e.g. `crc32:3421780262`.
    pub fn as_str(&self) -> &str {
        match std::str::from_utf8(&self.bytes[..usize::from(self.len)]) {
            Ok(s) => s,
            // Only ASCII is ever written, so this is a bug in this module.
            Err(_) => unreachable!("DigestBuf holds non-ASCII bytes"),
        }
    }
}

impl fmt::Display for DigestBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DigestBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The digest string of a CRC value, `crc32:<decimal>`, as an owned `String`.
pub fn piece_digest_string(crc: u32) -> String {
    DigestBuf::new(crc).as_str().to_string()
}

/// Parses a canonical piece digest (see the module doc); `None` for anything else.
pub fn parse_piece_digest(s: &str) -> Option<u32> {
    let digits = s.strip_prefix(PREFIX)?;
    if digits.is_empty()
        || digits.len() > 10
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse::<u32>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 3_421_780_262);
        assert_eq!(piece_digest_string(crc32(b"123456789")), "crc32:3421780262");
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn digest_buf_formats_every_width() {
        let test_cases = vec![
            (0, "crc32:0"),
            (7, "crc32:7"),
            (10, "crc32:10"),
            (1_475_635_037, "crc32:1475635037"),
            (u32::MAX, "crc32:4294967295"),
        ];
        for (crc, expected) in test_cases {
            assert_eq!(DigestBuf::new(crc).as_str(), expected);
            assert_eq!(piece_digest_string(crc), expected);
            assert_eq!(parse_piece_digest(expected), Some(crc));
        }
        assert_eq!(
            DigestBuf::new(u32::MAX).as_str().len(),
            PIECE_DIGEST_MAX_LEN
        );
    }

    #[test]
    fn parse_rejects_non_canonical_digests() {
        for bad in [
            "",
            "crc32:",
            "crc32:+1",
            "crc32:-1",
            "crc32:01",
            "crc32:4294967296",
            "crc32:99999999999",
            "crc32: 1",
            "crc32:1 ",
            "CRC32:1",
            "sha256:1",
            "crc32:cbf43926",
        ] {
            assert_eq!(parse_piece_digest(bad), None, "{bad:?}");
        }
    }
}
