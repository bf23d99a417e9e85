//! One piece over HTTP/1.1 keep-alive: `GET` a hawker piece URL (`/tasks/{id}/pieces/{n}`,
//! expecting `200` and an `X-Hawker-Piece-Digest: crc32:<decimal>` header) or a byte range of a
//! file from any HTTP server (`GET <template with {id}>` + `Range: bytes=a-b`, expecting `206`).
//!
//! Bounds: the response head must fit [`MAX_HEADER_BYTES`] and [`MAX_HEADERS`] fields; the
//! body must have a `Content-Length` (chunked bodies are a protocol error) equal to the piece
//! length; a body of an unexpected status is read and dropped only up to
//! [`MAX_ERROR_BODY_BYTES`], beyond that the connection is closed instead.
//!
//! The request is formatted into the connection's reused request buffer: no allocation per
//! piece once the buffer has grown to the longest request line.

use std::io::Write;

use hawker_shared::digest::parse_piece_digest;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{read_body, skip_bytes, ConnBuf, FetchError, Fetched};
use crate::stats::ErrorKind;
use crate::workload::TaskSpec;

/// The largest response head accepted, in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most header fields accepted in a response.
pub const MAX_HEADERS: usize = 64;
/// The largest body of an error status that is drained to keep the connection, in bytes.
pub const MAX_ERROR_BODY_BYTES: u64 = 64 * 1024;
/// The header carrying hawker's piece digest.
pub const DIGEST_HEADER: &str = "x-hawker-piece-digest";

/// Which URLs the HTTP target serves pieces at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpStyle {
    /// hawker's piece URLs: `GET {base}/tasks/{id}/pieces/{n}`.
    Hawker,
    /// Whole files with byte ranges: `GET {base}{template}` + `Range: bytes=a-b`.
    Range,
}

/// Where and how to ask an HTTP server for pieces.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    /// The `Host` header value (the URL's authority).
    pub host: String,
    /// The URL's path without a trailing `/` (may be empty).
    pub base_path: String,
    /// The URL style.
    pub style: HttpStyle,
    /// Range style: the path template split at each `{id}`.
    pub template_parts: Vec<String>,
}

impl HttpTarget {
    /// A target; `path_template` is used by the range style and must contain `{id}`.
    pub fn new(
        host: &str,
        base_path: &str,
        style: HttpStyle,
        path_template: &str,
    ) -> Result<HttpTarget, String> {
        if style == HttpStyle::Range && !path_template.contains("{id}") {
            return Err(format!(
                "--http-path-template {path_template:?} has no {{id}} placeholder"
            ));
        }
        if !path_template.starts_with('/') {
            return Err(format!(
                "--http-path-template {path_template:?} must start with /"
            ));
        }
        let bad = |s: &str| s.bytes().any(|b| b.is_ascii_control() || b == b' ');
        if bad(host) || bad(base_path) || bad(path_template) {
            return Err("the URL or path template has spaces or control characters".into());
        }
        Ok(HttpTarget {
            host: host.to_string(),
            base_path: base_path.trim_end_matches('/').to_string(),
            style,
            template_parts: path_template.split("{id}").map(str::to_string).collect(),
        })
    }

    /// Formats the request for piece `number` (at `offset`, `length` bytes) of `task`.
    pub fn write_request(
        &self,
        out: &mut Vec<u8>,
        task: &TaskSpec,
        number: u32,
        offset: u64,
        length: u64,
    ) {
        out.clear();
        // Writes into a Vec cannot fail.
        let _ = write!(out, "GET {}", self.base_path);
        match self.style {
            HttpStyle::Hawker => {
                let _ = write!(out, "/tasks/{}/pieces/{number}", task.id);
            }
            HttpStyle::Range => {
                for (i, part) in self.template_parts.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(task.id.as_str().as_bytes());
                    }
                    out.extend_from_slice(part.as_bytes());
                }
            }
        }
        let _ = write!(
            out,
            " HTTP/1.1\r\nHost: {}\r\nUser-Agent: dp-bench\r\n",
            self.host
        );
        if self.style == HttpStyle::Range {
            let last = offset + length.saturating_sub(1);
            let _ = write!(out, "Range: bytes={offset}-{last}\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    fn expected_status(&self) -> u16 {
        match self.style {
            HttpStyle::Hawker => 200,
            HttpStyle::Range => 206,
        }
    }
}

/// What the response head said, copied out of the receive buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Head {
    len: usize,
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
    digest: Option<u32>,
    bad_digest_header: bool,
    content_range: Option<(u64, u64)>,
    bad_content_range: bool,
}

fn parse_head(bytes: &[u8]) -> Result<Option<Head>, String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad response head: {e}")),
    };
    let mut head = Head {
        len,
        status: response.code.unwrap_or(0),
        close: response.version == Some(0),
        ..Head::default()
    };
    for field in response.headers.iter() {
        let value = std::str::from_utf8(field.value).unwrap_or("").trim();
        let name = field.name;
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<u64>() {
                Ok(n) if head.content_length.is_none_or(|m| m == n) => {
                    head.content_length = Some(n)
                }
                _ => return Err(format!("bad Content-Length {value:?}")),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                head.close = true;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                head.close = false;
            }
        } else if name.eq_ignore_ascii_case(DIGEST_HEADER) {
            match parse_piece_digest(value) {
                Some(d) => head.digest = Some(d),
                None => head.bad_digest_header = true,
            }
        } else if name.eq_ignore_ascii_case("content-range") {
            match parse_content_range(value) {
                Some(r) => head.content_range = Some(r),
                None => head.bad_content_range = true,
            }
        }
    }
    Ok(Some(head))
}

/// Parses `bytes FIRST-LAST/TOTAL` (TOTAL may be `*`) into (FIRST, LAST).
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let rest = value.strip_prefix("bytes ")?;
    let (range, _total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?))
}

/// Fetches piece `number` of `task` and verifies it; `request` is the connection's reused
/// request buffer.
#[allow(clippy::too_many_arguments)]
pub async fn fetch_piece<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut ConnBuf,
    request: &mut Vec<u8>,
    target: &HttpTarget,
    task: &TaskSpec,
    number: u32,
    verify: bool,
) -> Result<Fetched, FetchError> {
    let (offset, length) = task.piece_range(number).ok_or_else(|| {
        FetchError::fatal(ErrorKind::Protocol, "piece number past the task's end")
    })?;
    target.write_request(request, task, number, offset, length);
    stream
        .write_all(request)
        .await
        .map_err(|e| FetchError::io(e, "sending the request"))?;

    let head = loop {
        match parse_head(buf.buffered()) {
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(msg) => return Err(FetchError::fatal(ErrorKind::Protocol, msg)),
        }
        if buf.buffered().len() >= MAX_HEADER_BYTES {
            return Err(FetchError::fatal(
                ErrorKind::Protocol,
                format!("response head longer than {MAX_HEADER_BYTES} bytes"),
            ));
        }
        let before = buf.buffered().len();
        let n = buf
            .fill(stream)
            .await
            .map_err(|e| FetchError::io(e, "reading the response head"))?;
        if n == 0 {
            let kind = if before == 0 {
                ErrorKind::Io
            } else {
                ErrorKind::ShortBody
            };
            return Err(FetchError::fatal(
                kind,
                format!("connection closed after {before} bytes of the response head"),
            ));
        }
    };
    buf.consume(head.len);
    let what = || format!("task {} piece {number}", task.id);

    if head.chunked {
        return Err(FetchError::fatal(
            ErrorKind::Protocol,
            format!("{}: chunked body; a piece needs Content-Length", what()),
        ));
    }
    let Some(content_length) = head.content_length else {
        return Err(FetchError::fatal(
            ErrorKind::Protocol,
            format!("{}: status {} without Content-Length", what(), head.status),
        ));
    };
    if head.status != target.expected_status() {
        let message = format!(
            "{}: status {} (expected {})",
            what(),
            head.status,
            target.expected_status()
        );
        if content_length <= MAX_ERROR_BODY_BYTES && !head.close {
            skip_bytes(stream, buf, content_length).await?;
            return Err(FetchError::reusable(ErrorKind::HttpStatus, message));
        }
        return Err(FetchError::fatal(ErrorKind::HttpStatus, message));
    }
    if content_length != length {
        return Err(FetchError::fatal(
            ErrorKind::BadLength,
            format!(
                "{}: Content-Length {content_length}, the piece has {length} bytes",
                what()
            ),
        ));
    }
    if target.style == HttpStyle::Range {
        let want = (offset, offset + length - 1);
        if head.bad_content_range || head.content_range.is_some_and(|r| r != want) {
            return Err(FetchError::fatal(
                ErrorKind::BadLength,
                format!(
                    "{}: Content-Range {:?} is not bytes {}-{}",
                    what(),
                    head.content_range,
                    want.0,
                    want.1
                ),
            ));
        }
    }
    if head.bad_digest_header {
        return Err(FetchError::fatal(
            ErrorKind::Protocol,
            format!("{}: unparsable {DIGEST_HEADER} header", what()),
        ));
    }

    let crc = read_body(stream, buf, length, verify).await?;
    let fetched = Fetched {
        bytes: length,
        keep_alive: !head.close,
    };
    if !verify {
        return Ok(fetched);
    }
    let check = |source: &str, digest: Option<u32>| match digest {
        Some(d) if d != crc => Err(FetchError {
            kind: ErrorKind::BadDigest,
            reusable: !head.close,
            message: format!(
                "{}: content has crc32:{crc}, {source} says crc32:{d}",
                what()
            ),
        }),
        _ => Ok(()),
    };
    check("the server", head.digest)?;
    check("the task list", task.digest(number))?;
    if target.style == HttpStyle::Hawker && head.digest.is_none() {
        return Err(FetchError {
            kind: ErrorKind::Protocol,
            reusable: !head.close,
            message: format!("{}: no {DIGEST_HEADER} header", what()),
        });
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hawker_shared::TaskId;

    fn task() -> TaskSpec {
        let id = TaskId::parse(format!("{:064x}", 0xabcu32).as_bytes()).unwrap();
        TaskSpec::new(id, 2500, Some(1000), None).unwrap()
    }

    #[test]
    fn requests_are_formatted_per_style() {
        let t = task();
        let mut out = Vec::new();
        let hawker = HttpTarget::new("h:1", "/base/", HttpStyle::Hawker, "/{id}").unwrap();
        hawker.write_request(&mut out, &t, 2, 2000, 500);
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(
            text,
            format!(
                "GET /base/tasks/{}/pieces/2 HTTP/1.1\r\nHost: h:1\r\nUser-Agent: dp-bench\r\n\r\n",
                t.id
            )
        );
        let range = HttpTarget::new("h:1", "", HttpStyle::Range, "/files/{id}.bin").unwrap();
        range.write_request(&mut out, &t, 2, 2000, 500);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(&format!("GET /files/{}.bin HTTP/1.1\r\n", t.id)));
        assert!(text.contains("Range: bytes=2000-2499\r\n"));
        assert!(HttpTarget::new("h", "", HttpStyle::Range, "/files/x").is_err());
        assert!(HttpTarget::new("h", "", HttpStyle::Range, "files/{id}").is_err());
    }

    #[test]
    fn heads_parse_and_malformed_ones_are_errors() {
        let response: &[u8] = b"HTTP/1.1 206 Partial\r\nContent-Length: 5\r\n\
            Content-Range: bytes 10-14/100\r\nX-Hawker-Piece-Digest: crc32:42\r\n\
            Connection: close\r\n\r\nhello";
        let head = parse_head(response).unwrap().unwrap();
        assert_eq!(head.status, 206);
        assert_eq!(head.content_length, Some(5));
        assert_eq!(head.content_range, Some((10, 14)));
        assert_eq!(head.digest, Some(42));
        assert!(head.close);
        assert_eq!(head.len, response.len() - 5);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .is_err()
        );
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
        let old = parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(old.close);
    }
}
