//! The sans-IO half of talking to an origin: which of a peer's headers may be forwarded, how a
//! `Content-Range` reads, and which response validators identify one version of the content.
//!
//! Invariants:
//! - Hop-by-hop headers (RFC 9110 §7.6.1: `Connection` and every header it names,
//!   `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`) and the headers
//!   that describe the peer's own request rather than the content (`Host`, `Content-Length`,
//!   `Range`, `If-Range`, `Accept-Encoding`, `Expect`, conditional `If-*`) are never forwarded:
//!   the seeder sets `Range` and `Accept-Encoding: identity` itself, and a conditional header
//!   could turn a piece into a `304`.
//! - Forwarded headers total at most `max_forwarded_header_bytes` (names + values + 4 each);
//!   a peer's header that is not a valid HTTP name or value is dropped, never a panic.
//! - Validators longer than [`MAX_VALIDATOR_BYTES`] (1 KiB) are ignored.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::hash::{Hash, Hasher};

/// Longest `ETag` / `Last-Modified` value kept, in bytes.
pub const MAX_VALIDATOR_BYTES: usize = 1024;

/// Headers never forwarded to the origin (lower case).
const NEVER_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "range",
    "if-range",
    "accept-encoding",
    "expect",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

/// The peer's headers that may go to the origin, and a hash of them (to tell one set of
/// credentials from another without keeping them).
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    /// The headers, ready for reqwest.
    pub map: HeaderMap,
    /// A hash of the forwarded names and values (not stored anywhere durable).
    pub fingerprint: u64,
}

/// Filters `headers` for forwarding. Errors when they exceed `max_bytes` (see the module doc).
pub fn forwardable_headers(
    headers: &[(String, String)],
    max_bytes: usize,
) -> Result<Forwarded, String> {
    let total: usize = headers
        .iter()
        .map(|(n, v)| n.len().saturating_add(v.len()).saturating_add(4))
        .fold(0usize, usize::saturating_add);
    if total > max_bytes {
        return Err(format!(
            "the peer's request headers are {total} bytes, over max_forwarded_header_bytes \
             ({max_bytes})"
        ));
    }
    // Every header named by a Connection header is hop-by-hop too.
    let named_by_connection: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut map = HeaderMap::new();
    let mut kept: Vec<(String, &str)> = Vec::new();
    for (name, value) in headers {
        let lower = name.trim().to_ascii_lowercase();
        if NEVER_FORWARDED.contains(&lower.as_str()) || named_by_connection.contains(&lower) {
            continue;
        }
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(lower.as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) else {
            tracing::debug!(header = %lower, "origin: peer header is not valid HTTP; not forwarded");
            continue;
        };
        map.append(n, v);
        kept.push((lower, value.trim()));
    }
    kept.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    kept.hash(&mut h);
    Ok(Forwarded {
        map,
        fingerprint: h.finish(),
    })
}

/// A parsed `Content-Range` of a byte range response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes first-last/total` (`total` `None` for `*`).
    Bytes {
        /// First byte offset.
        first: u64,
        /// Last byte offset (inclusive).
        last: u64,
        /// Complete length, if the origin knows it.
        total: Option<u64>,
    },
    /// `bytes */total` (with a 416).
    Unsatisfied {
        /// Complete length.
        total: u64,
    },
}

/// Parses a `Content-Range` value (RFC 9110 §14.4); `None` when it is not one.
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?;
    let rest = rest.strip_prefix(' ')?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = total.trim();
    let digits = |s: &str| -> Option<u64> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if range.trim() == "*" {
        return Some(ContentRange::Unsatisfied {
            total: digits(total)?,
        });
    }
    let (first, last) = range.trim().split_once('-')?;
    let (first, last) = (digits(first)?, digits(last)?);
    let total = if total == "*" {
        None
    } else {
        Some(digits(total)?)
    };
    if last < first || total.is_some_and(|t| last >= t) {
        return None;
    }
    Some(ContentRange::Bytes { first, last, total })
}

/// What identifies one version of the origin's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    /// The `ETag` header, verbatim.
    pub etag: Option<String>,
    /// The `Last-Modified` header, verbatim.
    pub last_modified: Option<String>,
}

impl Validators {
    /// The validators of a response's headers.
    pub fn of(headers: &HeaderMap) -> Validators {
        let get = |name: reqwest::header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR_BYTES)
                .map(str::to_owned)
        };
        Validators {
            etag: get(reqwest::header::ETAG),
            last_modified: get(reqwest::header::LAST_MODIFIED),
        }
    }

    /// Whether any validator is known.
    pub fn any(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }

    /// Why `other` (a later response) is another version than `self`, if it is: a validator
    /// both carry differs. A validator missing on either side proves nothing.
    pub fn differs(&self, other: &Validators) -> Option<String> {
        if let (Some(a), Some(b)) = (&self.etag, &other.etag) {
            if a != b {
                return Some(format!("ETag changed from {a} to {b}"));
            }
        }
        if let (Some(a), Some(b)) = (&self.last_modified, &other.last_modified) {
            if a != b {
                return Some(format!("Last-Modified changed from {a} to {b}"));
            }
        }
        None
    }
}

/// The URL without its query and fragment (which may carry signatures), for messages and logs.
pub fn redact_url(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url.get(..end).unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn origin_http_hop_by_hop_and_request_headers_are_not_forwarded() {
        let f = forwardable_headers(
            &h(&[
                ("Authorization", "Bearer abc"),
                ("Connection", "keep-alive, X-Secret-Hop"),
                ("X-Secret-Hop", "1"),
                ("Transfer-Encoding", "chunked"),
                ("Range", "bytes=0-10"),
                ("Host", "peer.example"),
                ("If-None-Match", "\"x\""),
                ("X-Custom", "yes"),
                ("Bad Name", "v"),
                ("X-Bad-Value", "a\nb"),
            ]),
            4096,
        )
        .unwrap();
        let names: Vec<&str> = f.map.keys().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(f.map["authorization"], "Bearer abc");
        assert_eq!(f.map["x-custom"], "yes");
        let again = forwardable_headers(
            &h(&[("X-Custom", "yes"), ("authorization", "Bearer abc")]),
            4096,
        )
        .unwrap();
        assert_eq!(f.fingerprint, again.fingerprint);
        let other = forwardable_headers(&h(&[("authorization", "Bearer xyz")]), 4096).unwrap();
        assert_ne!(f.fingerprint, other.fingerprint);
        let big = forwardable_headers(&h(&[("x-a", &"v".repeat(100))]), 50);
        assert!(big.unwrap_err().contains("max_forwarded_header_bytes"));
    }

    #[test]
    fn origin_http_content_range_parses_and_refuses_nonsense() {
        assert_eq!(
            parse_content_range("bytes 0-0/10"),
            Some(ContentRange::Bytes {
                first: 0,
                last: 0,
                total: Some(10)
            })
        );
        assert_eq!(
            parse_content_range("bytes 5-9/*"),
            Some(ContentRange::Bytes {
                first: 5,
                last: 9,
                total: None
            })
        );
        assert_eq!(
            parse_content_range("bytes */0"),
            Some(ContentRange::Unsatisfied { total: 0 })
        );
        for bad in [
            "",
            "bytes",
            "bytes 9-5/10",
            "bytes 0-10/10",
            "items 0-1/2",
            "bytes -1-2/3",
            "bytes 0-1/99999999999999999999999",
            "bytes 0-1/",
            "bytes a-b/c",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn origin_http_validators_differ_only_when_both_sides_know() {
        let a = Validators {
            etag: Some("\"1\"".into()),
            last_modified: None,
        };
        let b = Validators {
            etag: Some("\"2\"".into()),
            last_modified: Some("x".into()),
        };
        assert!(a.differs(&b).is_some());
        assert!(a.differs(&Validators::default()).is_none());
        assert!(a.differs(&a.clone()).is_none());
        assert_eq!(redact_url("http://h/p?sig=1#f"), "http://h/p");
        assert_eq!(redact_url("http://h/p"), "http://h/p");
    }
}
