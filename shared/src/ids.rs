//! Identities: task ids, host ids and peer ids, computed exactly as Dragonfly's client 1.5.10 does.
//!
//! A [`TaskId`] is the lower-case hex of a SHA-256 digest: always exactly [`TASK_ID_LEN`] (64)
//! ASCII bytes from `[0-9a-f]`. That invariant is checked once, in [`TaskId::parse`], and then
//! holds for the value's life, so the data plane can copy it (it is `Copy`, 64 bytes), hash it and
//! put it on the wire without re-validating or allocating. Upper-case hex is rejected: Dragonfly
//! only ever emits lower case and a task id is compared byte for byte.
//!
//! [`task_id_from_url`] is `IDGenerator::task_id(TaskIDParameter::URLBased {..})` of
//! `dragonfly-client-util` 1.5.10: sha256 over the canonical URL, then the tag, the application,
//! the revision, the decimal piece length (each only when given), then the literal `STANDARD`
//! (the name of `TaskType::Standard`). The canonical URL is [`filter_query_params`]: the client's
//! `url::filter_query_params`, which drops the filtered query keys, sorts the others by key
//! (stably: values of one key keep their order) and re-escapes them like Go's `url.QueryEscape`.
//! It uses the same `url` crate as the client so parsing and serialisation match byte for byte.
//! The unit tests below carry every vector of the client's own tests.
//!
//! Not here: OCI digest-based task ids, persistent and persistent-cache task ids (hawker does not
//! serve those task types).

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use url::{form_urlencoded, Position, Url};

/// Length in bytes (ASCII characters) of a task id: the hex of a 32-byte SHA-256 digest.
pub const TASK_ID_LEN: usize = 64;

/// The suffix Dragonfly appends to the host and peer ids of a seed peer.
const SEED_PEER_SUFFIX: &str = "seed";

/// The task type name that ends the hashed input of a standard task (`TaskType::Standard`).
const STANDARD_TASK_TYPE: &str = "STANDARD";

/// Why a task id or a URL was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum IdError {
    /// The task id does not have exactly 64 bytes.
    #[error("task id must be exactly {TASK_ID_LEN} lower-case hex characters, got {len} bytes")]
    TaskIdLength {
        /// The length received.
        len: usize,
    },
    /// The task id holds a byte that is not lower-case hex.
    #[error("task id byte {position} is {byte:#04x}, expected lower-case hex [0-9a-f]")]
    TaskIdByte {
        /// Zero-based position of the first bad byte.
        position: usize,
        /// The bad byte.
        byte: u8,
    },
    /// The URL could not be parsed (only checked when query parameters are filtered, like the
    /// client).
    #[error("invalid url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// The parser's explanation.
        reason: String,
    },
}

/// A task id: exactly 64 lower-case hex ASCII bytes (see the module doc).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId([u8; TASK_ID_LEN]);

impl TaskId {
    /// Parses a task id: exactly 64 characters from `[0-9a-f]`; anything else (upper case
    /// included) is an error.
    pub fn parse(s: &[u8]) -> Result<TaskId, IdError> {
        let bytes: &[u8; TASK_ID_LEN] = s
            .try_into()
            .map_err(|_| IdError::TaskIdLength { len: s.len() })?;
        if let Some(position) = bytes
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(IdError::TaskIdByte {
                position,
                byte: bytes[position],
            });
        }
        Ok(TaskId(*bytes))
    }

    /// The id as a string slice (64 ASCII characters).
    pub fn as_str(&self) -> &str {
        match std::str::from_utf8(&self.0) {
            Ok(s) => s,
            // The constructors only admit ASCII hex, so this is a bug in this module.
            Err(_) => unreachable!("TaskId holds non-ASCII bytes"),
        }
    }

    /// The id as its 64 ASCII bytes, ready for the wire.
    pub fn as_bytes(&self) -> &[u8; TASK_ID_LEN] {
        &self.0
    }

    /// The task id of a SHA-256 digest: its lower-case hex.
    pub fn from_sha256(digest: &[u8; 32]) -> TaskId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; TASK_ID_LEN];
        for (i, byte) in digest.iter().enumerate() {
            out[2 * i] = HEX[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        TaskId(out)
    }

    fn from_hasher(hasher: Sha256) -> TaskId {
        let digest: [u8; 32] = hasher.finalize().into();
        TaskId::from_sha256(&digest)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<TaskId, IdError> {
        TaskId::parse(s.as_bytes())
    }
}

impl serde::Serialize for TaskId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for TaskId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<TaskId, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TaskId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a task id: 64 lower-case hex characters")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TaskId, E> {
                TaskId::parse(v.as_bytes()).map_err(E::custom)
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<TaskId, E> {
                TaskId::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// The inputs of a URL-based task id, as the client sends them in `Download`.
#[derive(Clone, Copy, Debug)]
pub struct TaskIdParams<'a> {
    /// The download URL as given by the user.
    pub url: &'a str,
    /// The piece length, only when fixed by the user (`--piece-length`).
    pub piece_length: Option<u64>,
    /// The task tag.
    pub tag: Option<&'a str>,
    /// The application name.
    pub application: Option<&'a str>,
    /// Query keys to drop from the URL; an empty list leaves the URL untouched.
    pub filtered_query_params: &'a [String],
    /// The repository revision (hub backends only).
    pub revision: Option<&'a str>,
}

/// The task id of a URL-based download, identical to the client's `IDGenerator::task_id`.
pub fn task_id_from_url(p: &TaskIdParams<'_>) -> Result<TaskId, IdError> {
    let final_url = filter_query_params(p.url, p.filtered_query_params)?;
    let mut hasher = Sha256::new();
    hasher.update(final_url.as_bytes());
    if let Some(tag) = p.tag {
        hasher.update(tag.as_bytes());
    }
    if let Some(application) = p.application {
        hasher.update(application.as_bytes());
    }
    if let Some(revision) = p.revision {
        hasher.update(revision.as_bytes());
    }
    if let Some(piece_length) = p.piece_length {
        hasher.update(piece_length.to_string().as_bytes());
    }
    hasher.update(STANDARD_TASK_TYPE.as_bytes());
    Ok(TaskId::from_hasher(hasher))
}

/// The task id of content: the hex of its SHA-256.
pub fn task_id_from_content(content: &[u8]) -> TaskId {
    let mut hasher = Sha256::new();
    hasher.update(content);
    TaskId::from_hasher(hasher)
}

/// Escapes like Go's `url.QueryEscape`: unreserved bytes stay, space becomes `+`, every other
/// byte becomes `%XX` (upper-case hex).
fn query_escape(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in s.as_bytes() {
        match byte {
            b'-' | b'.' | b'0'..=b'9' | b'A'..=b'Z' | b'_' | b'a'..=b'z' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
    }
}

/// Whether the URL has an empty path, splitting the authority like Go's `url.Parse` (the `url`
/// crate normalises an empty path to `/`).
fn has_empty_path(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split(['?', '#']).next())
        .is_some_and(|authority| !authority.contains('/'))
}

/// Canonicalises a URL like the client's `url::filter_query_params`: with an empty `filtered`
/// list the URL is returned unchanged (not even parsed); otherwise the query pairs whose key is
/// in `filtered` are dropped, query segments containing `;` are dropped, the rest are sorted by
/// key (stable) and re-escaped like Go's `QueryEscape`.
pub fn filter_query_params(url: &str, filtered: &[String]) -> Result<String, IdError> {
    if filtered.is_empty() {
        return Ok(url.to_string());
    }

    let empty_path = has_empty_path(url);
    let mut parsed = Url::parse(url).map_err(|err| IdError::InvalidUrl {
        url: url.to_string(),
        reason: err.to_string(),
    })?;
    let mut pairs: Vec<(String, String)> = parsed
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|segment| !segment.contains(';'))
        .flat_map(|segment| form_urlencoded::parse(segment.as_bytes()))
        .filter(|(k, _)| !filtered.iter().any(|param| param.as_str() == k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort_by(|(a, _), (b, _)| a.cmp(b));

    if pairs.is_empty() {
        parsed.set_query(None);
    } else {
        let mut query = String::new();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                query.push('&');
            }
            query_escape(k, &mut query);
            query.push('=');
            query_escape(v, &mut query);
        }
        parsed.set_query(Some(&query));
    }

    if empty_path {
        return Ok(format!(
            "{}{}",
            &parsed[..Position::BeforePath],
            &parsed[Position::AfterPath..]
        ));
    }
    Ok(parsed.into())
}

/// Query keys dropped from the URL before hashing when the user gives none: exactly the list
/// `dfget` 1.5.10 sends by default (`default_proxy_rule_filtered_query_params` of
/// `dragonfly-client-util`: S3, GCS, OSS, OBS, COS and containerd keys, de-duplicated in that
/// order).
pub fn default_filtered_query_params() -> Vec<String> {
    const S3: &[&str] = &[
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
        "X-Amz-User-Agent",
    ];
    const GCS: &[&str] = &[
        "X-Goog-Algorithm",
        "X-Goog-Credential",
        "X-Goog-Date",
        "X-Goog-Expires",
        "X-Goog-SignedHeaders",
        "X-Goog-Signature",
    ];
    const OSS: &[&str] = &["OSSAccessKeyId", "Expires", "Signature", "SecurityToken"];
    const OBS: &[&str] = &[
        "AccessKeyId",
        "Signature",
        "Expires",
        "X-Obs-Date",
        "X-Obs-Security-Token",
    ];
    const COS: &[&str] = &[
        "q-sign-algorithm",
        "q-ak",
        "q-sign-time",
        "q-key-time",
        "q-header-list",
        "q-url-param-list",
        "q-signature",
        "x-cos-security-token",
    ];
    const CONTAINERD: &[&str] = &["ns"];

    let mut params: Vec<String> = Vec::new();
    for param in [S3, GCS, OSS, OBS, COS, CONTAINERD].concat() {
        if !params.iter().any(|p| p == param) {
            params.push(param.to_string());
        }
    }
    params
}

/// The host id Dragonfly derives: `"{ip}-{hostname}"`, plus `"-seed"` for a seed peer.
pub fn host_id(ip: &str, hostname: &str, seed: bool) -> String {
    if seed {
        format!("{ip}-{hostname}-{SEED_PEER_SUFFIX}")
    } else {
        format!("{ip}-{hostname}")
    }
}

/// The peer id Dragonfly derives: `"{ip}-{hostname}-{uuid}"`, plus `"-seed"` for a seed peer.
/// `uuid` is a random UUID v4 in its hyphenated form; the caller supplies it (no randomness here).
pub fn peer_id(ip: &str, hostname: &str, uuid: &str, seed: bool) -> String {
    if seed {
        format!("{ip}-{hostname}-{uuid}-{SEED_PEER_SUFFIX}")
    } else {
        format!("{ip}-{hostname}-{uuid}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "e2d0fe1585a63ec6009c8016ff8dda8b17719a637405a4e23c0ff81339148249";

    #[test]
    fn parse_accepts_lower_hex_and_rejects_the_rest() {
        let id = TaskId::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(id.as_str(), SAMPLE);
        assert_eq!(id.as_bytes(), SAMPLE.as_bytes());
        assert_eq!(id.to_string(), SAMPLE);
        assert_eq!(format!("{id:?}"), SAMPLE);
        assert_eq!(SAMPLE.parse::<TaskId>().unwrap(), id);

        assert_eq!(
            TaskId::parse(&SAMPLE.as_bytes()[..63]),
            Err(IdError::TaskIdLength { len: 63 })
        );
        assert_eq!(
            TaskId::parse(format!("{SAMPLE}0").as_bytes()),
            Err(IdError::TaskIdLength { len: 65 })
        );
        assert_eq!(TaskId::parse(b""), Err(IdError::TaskIdLength { len: 0 }));
        let upper = SAMPLE.to_uppercase();
        assert!(matches!(
            TaskId::parse(upper.as_bytes()),
            Err(IdError::TaskIdByte { position: 0, .. })
        ));
        let mut bad = SAMPLE.as_bytes().to_vec();
        bad[10] = b'g';
        assert_eq!(
            TaskId::parse(&bad),
            Err(IdError::TaskIdByte {
                position: 10,
                byte: b'g'
            })
        );
        bad[10] = 0xff;
        assert!(TaskId::parse(&bad).is_err());
    }

    #[test]
    fn serde_uses_the_hex_string() {
        let id = TaskId::parse(SAMPLE.as_bytes()).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{SAMPLE}\""));
        assert_eq!(serde_json::from_str::<TaskId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<TaskId>("\"abc\"").is_err());
        assert!(serde_json::from_str::<TaskId>("12").is_err());
    }

    #[test]
    fn from_sha256_is_lower_hex() {
        let mut digest = [0u8; 32];
        digest[0] = 0xab;
        digest[31] = 0x0f;
        let id = TaskId::from_sha256(&digest);
        assert_eq!(&id.as_str()[..4], "ab00");
        assert_eq!(&id.as_str()[60..], "000f");
        assert_eq!(id.as_str(), hex::encode(digest));
    }

    // Vectors of `task_id_hashes_the_canonical_url_with_options` in dragonfly-client-util
    // 1.5.10 id_generator/mod.rs.
    #[test]
    #[allow(clippy::type_complexity)]
    fn task_id_matches_the_client_vectors() {
        let test_cases: Vec<(
            &str,
            Option<u64>,
            Option<&str>,
            Option<&str>,
            Vec<&str>,
            Option<&str>,
            &str,
        )> = vec![
            (
                "https://example.com",
                Some(1024),
                Some("foo"),
                Some("bar"),
                vec![],
                Some("v1.0"),
                "5844f27a257287e9b734256bb25603d8005422ced8c0377f15063ec11963b25f",
            ),
            (
                "https://example.com",
                None,
                Some("foo"),
                Some("bar"),
                vec![],
                None,
                "06408fbf247ddaca478f8cb9565fe5591c28efd0994b8fea80a6a87d3203c5ca",
            ),
            (
                "https://example.com",
                None,
                Some("foo"),
                None,
                vec![],
                None,
                "3c3f230ef9f191dd2821510346a7bc138e4894bee9aee184ba250a3040701d2a",
            ),
            (
                "https://example.com",
                None,
                None,
                Some("bar"),
                vec![],
                None,
                "c9f9261b7305c24371244f9f149f5d4589ed601348fdf22d7f6f4b10658fdba2",
            ),
            (
                "https://example.com",
                Some(1024),
                None,
                None,
                vec![],
                None,
                "9f7c9aafbc6f30f8f41a96ca77eeae80c5b60964b3034b0ee43ccf7b2f9e52b8",
            ),
            (
                "https://example.com?foo=foo&bar=bar",
                None,
                None,
                None,
                vec!["foo", "bar"],
                None,
                "457b4328cde278e422c9e243f7bfd1e97f511fec43a80f535cf6b0ef6b086776",
            ),
            (
                "https://example.com/file.txt?z=9&b=2&a=1",
                None,
                Some("foo"),
                Some("bar"),
                vec!["z"],
                None,
                "8b3f6e9b9b8fe20903bced565cfd1d0aaef354a4c17573f0c2c1979210443f9d",
            ),
            (
                "https://example.com/file.txt?b=2&a=1&b=1",
                None,
                None,
                None,
                vec!["c"],
                None,
                "7c8801d0596be5e8f9449d5c4af23866c72fe5205119c0e5912981f3b16a37aa",
            ),
            (
                "https://example.com/file.txt?k=a b&m=x*y&n=c~d",
                Some(1024),
                None,
                None,
                vec!["none"],
                None,
                "6196a6846023f6d3c1e4d30f6c86f3d4186e4c664a33e5692b0e04e49b26a9af",
            ),
            (
                "https://example.com/file.txt?a=1&b=2",
                None,
                Some("foo"),
                None,
                vec!["a", "b"],
                None,
                "c8f4b41117329d54af920010394f6f607bac707e933ab2f18d372e3dd4c7fcb3",
            ),
            (
                "https://example.com/file.txt?b=2&a=1",
                None,
                None,
                None,
                vec![],
                None,
                "980ee327518ccc5a7c30703e1a2232e8ba9047b39431f940636c85b6146f8b9a",
            ),
            (
                "https://example.com",
                None,
                None,
                None,
                vec![],
                Some("v1.0"),
                "b171331534b80e0bf91da38ebbfcdbf4d177898f4b9beac44f14733e3f004d4e",
            ),
        ];

        for (url, piece_length, tag, application, filtered, revision, expected) in test_cases {
            let filtered: Vec<String> = filtered.iter().map(|s| s.to_string()).collect();
            let id = task_id_from_url(&TaskIdParams {
                url,
                piece_length,
                tag,
                application,
                filtered_query_params: &filtered,
                revision,
            })
            .unwrap();
            assert_eq!(id.as_str(), expected, "url {url}");
        }
    }

    // `task_id_hashes_content` in id_generator/mod.rs.
    #[test]
    fn task_id_from_content_matches_the_client_vector() {
        assert_eq!(
            task_id_from_content(b"This is a test file").as_str(),
            "e2d0fe1585a63ec6009c8016ff8dda8b17719a637405a4e23c0ff81339148249"
        );
    }

    // `query_escape_encodes_like_go_query_escape` in url/mod.rs.
    #[test]
    fn query_escape_matches_the_client_vectors() {
        let test_cases = vec![
            ("a b", "a+b"),
            ("x*y", "x%2Ay"),
            ("c~d", "c~d"),
            ("1+1", "1%2B1"),
            ("中", "%E4%B8%AD"),
        ];
        for (query, expected) in test_cases {
            let mut out = String::new();
            query_escape(query, &mut out);
            assert_eq!(out, expected);
        }
    }

    // `filter_query_params_drops_filtered_keys_and_sorts_the_rest` in url/mod.rs.
    #[test]
    fn filter_query_params_matches_the_client_vectors() {
        let test_cases: Vec<(&str, Vec<&str>, &str)> = vec![
            (
                "https://example.com/file.txt?z=9&b=2&a=1",
                vec!["z"],
                "https://example.com/file.txt?a=1&b=2",
            ),
            (
                "https://example.com/file.txt?b=2&a=1&b=1",
                vec!["c"],
                "https://example.com/file.txt?a=1&b=2&b=1",
            ),
            (
                "https://example.com?foo=foo",
                vec!["foo"],
                "https://example.com",
            ),
            (
                "https://example.com?foo=foo&bar=bar",
                vec!["foo"],
                "https://example.com?bar=bar",
            ),
            (
                "https://example.com?foo=foo#size",
                vec!["foo"],
                "https://example.com#size",
            ),
            (
                "https://user:pass@[::1]:8080?foo=foo&bar=bar",
                vec!["foo"],
                "https://user:pass@[::1]:8080?bar=bar",
            ),
            (
                "https://example.com/?foo=foo",
                vec!["foo"],
                "https://example.com/",
            ),
            (
                "https://example.com/?foo=foo&bar=bar",
                vec!["foo"],
                "https://example.com/?bar=bar",
            ),
            (
                "https://example.com/file.txt?k=a b&m=x*y&n=c~d",
                vec!["none"],
                "https://example.com/file.txt?k=a+b&m=x%2Ay&n=c~d",
            ),
            (
                "http://www.xx.yy/path?u=f&x=y&m=z&x=s#size",
                vec!["x", "m"],
                "http://www.xx.yy/path?u=f#size",
            ),
            (
                "http://www.xx.yy/path?u=f&x=y&m=z&x=s#size",
                vec![],
                "http://www.xx.yy/path?u=f&x=y&m=z&x=s#size",
            ),
            (
                "https://example.com/file.txt?a=1;x&b=2",
                vec!["none"],
                "https://example.com/file.txt?b=2",
            ),
        ];
        for (url, filtered, expected) in test_cases {
            let filtered: Vec<String> = filtered.iter().map(|s| s.to_string()).collect();
            assert_eq!(filter_query_params(url, &filtered).unwrap(), expected);
        }
    }

    // `filter_query_params_fails_on_invalid_url` in url/mod.rs.
    #[test]
    fn filter_query_params_fails_on_invalid_url() {
        assert!(matches!(
            filter_query_params(":error_url", &["x".to_string()]),
            Err(IdError::InvalidUrl { .. })
        ));
        // Like the client, an empty filter list does not even parse the URL.
        assert_eq!(
            filter_query_params(":error_url", &[]).unwrap(),
            ":error_url"
        );
    }

    #[test]
    fn default_filtered_query_params_is_dfgets_list() {
        let params = default_filtered_query_params();
        assert_eq!(params.len(), 30);
        assert_eq!(params[0], "X-Amz-Algorithm");
        assert_eq!(params[8], "X-Goog-Algorithm");
        assert_eq!(
            &params[14..21],
            &[
                "OSSAccessKeyId",
                "Expires",
                "Signature",
                "SecurityToken",
                "AccessKeyId",
                "X-Obs-Date",
                "X-Obs-Security-Token"
            ]
        );
        assert_eq!(params[21], "q-sign-algorithm");
        assert_eq!(params[28], "x-cos-security-token");
        assert_eq!(params[29], "ns");
        // A signed URL hashes like its unsigned form.
        let signed = task_id_from_url(&TaskIdParams {
            url: "https://bucket.s3.amazonaws.com/blob?X-Amz-Date=1&X-Amz-Signature=abc&v=2",
            piece_length: None,
            tag: None,
            application: None,
            filtered_query_params: &params,
            revision: None,
        })
        .unwrap();
        let plain = task_id_from_url(&TaskIdParams {
            url: "https://bucket.s3.amazonaws.com/blob?v=2",
            piece_length: None,
            tag: None,
            application: None,
            filtered_query_params: &params,
            revision: None,
        })
        .unwrap();
        assert_eq!(signed, plain);
    }

    // `host_id_appends_seed_suffix_for_seed_peers` and the peer id format of id_generator/mod.rs.
    #[test]
    fn host_and_peer_ids_match_the_client_format() {
        assert_eq!(
            host_id("127.0.0.1", "localhost", false),
            "127.0.0.1-localhost"
        );
        assert_eq!(
            host_id("127.0.0.1", "localhost", true),
            "127.0.0.1-localhost-seed"
        );
        let uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        assert_eq!(
            peer_id("127.0.0.1", "localhost", uuid, false),
            format!("127.0.0.1-localhost-{uuid}")
        );
        assert_eq!(
            peer_id("127.0.0.1", "localhost", uuid, true),
            format!("127.0.0.1-localhost-{uuid}-seed")
        );
    }
}
