//! The piece server's HTTP/1.1, sans-IO: a request-head parser (httparse underneath) and a
//! response-head writer.
//!
//! Routes (GET and HEAD only; the query string is ignored):
//! - `/tasks/{task_id}/pieces/{n}`: one piece. `n` is decimal, no sign, no leading zero, fits a
//!   `u32`. The response carries [`PIECE_DIGEST_HEADER`] (`crc32:<decimal>`) and
//!   [`PIECE_OFFSET_HEADER`] (the piece's offset in the task's content).
//! - `/tasks/{task_id}`: the whole content of a task.
//! - `/healthz`, `/metrics`.
//!
//! Any other path, a task id that is not 64 lower-case hex characters, or a bad piece number is
//! 404. Other methods are 405 (with `Allow: GET, HEAD`).
//!
//! Requests carry no body: `Content-Length` > 0 or any `Transfer-Encoding` is 413, a malformed
//! `Content-Length` is 400. A head must fit [`MAX_REQUEST_HEAD_BYTES`] (8 KiB) with at most
//! [`MAX_HEADERS`] (32) headers, else 431. HTTP/1.1 is keep-alive unless `Connection: close`;
//! HTTP/1.0 is accepted and closes unless `Connection: keep-alive`; other versions are 505.
//! `Host` is not required (hawker serves one origin). After answering any [`HttpError`] the
//! server closes the connection.
//!
//! Range (RFC 9110 §14): one `bytes=` range-spec is honoured (`a-b`, `a-`, `-n`). A `Range`
//! header that does not parse, uses another unit, has `last < first`, or appears twice is
//! ignored (200, the whole representation), as RFC 9110 allows. A multi-range request
//! (`bytes=0-1,5-6`) is also ignored (200 with everything) rather than answered 416 or with
//! multipart/byteranges: simple, valid, and no Dragonfly or dp-bench client sends one.
//! [`resolve_range`] applies the satisfiability rules: 206 for a satisfiable range (clamped to the
//! content), 416 with `Content-Range: bytes */len` otherwise.

use crate::ids::TaskId;

/// The largest request head (request line + headers + blank line) the server buffers, in bytes.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8192;

/// The most request headers parsed; more is 431.
pub const MAX_HEADERS: usize = 32;

/// The methods every route allows, for the `Allow` header of a 405.
pub const ALLOWED_METHODS: &str = "GET, HEAD";

/// Response header carrying a piece's digest, `crc32:<decimal>`.
pub const PIECE_DIGEST_HEADER: &str = "X-Hawker-Piece-Digest";

/// Response header carrying a piece's offset in its task's content, decimal.
pub const PIECE_OFFSET_HEADER: &str = "X-Hawker-Piece-Offset";

/// A supported method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD: the same head as GET, no body.
    Head,
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/tasks/{task}/pieces/{number}`.
    Piece {
        /// The task.
        task: TaskId,
        /// The piece number.
        number: u32,
    },
    /// `/tasks/{task}`.
    Task {
        /// The task.
        task: TaskId,
    },
    /// `/healthz`.
    Healthz,
    /// `/metrics`.
    Metrics,
}

/// A single byte range as requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=first-last` (inclusive, `first <= last`).
    FromTo(u64, u64),
    /// `bytes=first-`.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// A parsed request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// GET or HEAD.
    pub method: Method,
    /// The route.
    pub route: Route,
    /// The single range asked for, if any (see the module doc for what is ignored).
    pub range: Option<RangeSpec>,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Bytes of the head consumed from the buffer (requests have no body).
    pub head_len: usize,
}

/// A request the server refuses; [`HttpError::status`] is the status to answer with.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Not HTTP/1.x syntax, or a malformed header the server needs.
    #[error("malformed request: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// No route for the path (includes a bad task id or piece number).
    #[error("no such resource")]
    NotFound,
    /// A method other than GET or HEAD.
    #[error("method not allowed; allowed: {ALLOWED_METHODS}")]
    MethodNotAllowed,
    /// The request declares a body.
    #[error("requests must not carry a body")]
    BodyNotAllowed,
    /// The head is over MAX_REQUEST_HEAD_BYTES.
    #[error("request head of {len}+ bytes exceeds {MAX_REQUEST_HEAD_BYTES}")]
    HeadTooLarge {
        /// Bytes seen so far.
        len: usize,
    },
    /// More than MAX_HEADERS headers.
    #[error("more than {MAX_HEADERS} request headers")]
    TooManyHeaders,
    /// Not HTTP/1.0 or HTTP/1.1.
    #[error("only HTTP/1.0 and HTTP/1.1 are supported")]
    VersionNotSupported,
}

impl HttpError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed { .. } => 400,
            HttpError::NotFound => 404,
            HttpError::MethodNotAllowed => 405,
            HttpError::BodyNotAllowed => 413,
            HttpError::HeadTooLarge { .. } | HttpError::TooManyHeaders => 431,
            HttpError::VersionNotSupported => 505,
        }
    }

    /// The reason phrase of [`HttpError::status`].
    pub fn reason(&self) -> &'static str {
        reason_phrase(self.status())
    }

    /// Headers the error response must carry (`Allow` for 405).
    pub fn extra_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            HttpError::MethodNotAllowed => &[("Allow", ALLOWED_METHODS)],
            _ => &[],
        }
    }

    /// Appends the whole error response (head only, empty body, `Connection: close`).
    pub fn encode_response(&self, out: &mut Vec<u8>) {
        ResponseHead {
            status: self.status(),
            content_length: 0,
            content_type: "",
            content_range: None,
            keep_alive: false,
            extra: self.extra_headers(),
        }
        .encode(out);
    }
}

/// The reason phrase of a status code (RFC 9110 names), `"Unknown"` for codes hawker never
/// sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)`: incomplete, read more. When `buf` already holds [`MAX_REQUEST_HEAD_BYTES`] or more
/// without a complete head, this returns `Err(HeadTooLarge)` (431) instead, so a caller that
/// reads into a buffer of that size never waits forever.
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= MAX_REQUEST_HEAD_BYTES {
                return Err(HttpError::HeadTooLarge { len: buf.len() });
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(HttpError::VersionNotSupported),
        Err(_) => {
            return Err(HttpError::Malformed {
                reason: "not an HTTP/1.x request head",
            })
        }
    };
    if head_len > MAX_REQUEST_HEAD_BYTES {
        return Err(HttpError::HeadTooLarge { len: head_len });
    }

    let http11 = match req.version {
        Some(1) => true,
        Some(0) => false,
        _ => return Err(HttpError::VersionNotSupported),
    };
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        _ => return Err(HttpError::MethodNotAllowed),
    };

    let mut close = false;
    let mut keep_alive_token = false;
    let mut range_value: Option<&[u8]> = None;
    let mut range_count = 0usize;
    for header in req.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_token = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            match parse_decimal(header.value.trim_ascii()) {
                Some(0) => {}
                Some(_) => return Err(HttpError::BodyNotAllowed),
                None => {
                    return Err(HttpError::Malformed {
                        reason: "invalid Content-Length",
                    })
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::BodyNotAllowed);
        } else if name.eq_ignore_ascii_case("range") {
            range_count += 1;
            range_value = Some(header.value);
        }
    }
    let keep_alive = if http11 {
        !close
    } else {
        keep_alive_token && !close
    };
    let range = match (range_count, range_value) {
        (1, Some(value)) => parse_range(value),
        _ => None,
    };

    let path = req.path.ok_or(HttpError::Malformed {
        reason: "missing request target",
    })?;
    let route = parse_route(path).ok_or(HttpError::NotFound)?;

    Ok(Some(Request {
        method,
        route,
        range,
        keep_alive,
        head_len,
    }))
}

/// A non-empty run of ASCII digits as a `u64`; `None` on anything else or overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Maps an origin-form request target to a route (query and fragment ignored).
fn parse_route(target: &str) -> Option<Route> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    match path {
        "/healthz" => return Some(Route::Healthz),
        "/metrics" => return Some(Route::Metrics),
        _ => {}
    }
    let rest = path.strip_prefix("/tasks/")?;
    match rest.split_once('/') {
        None => Some(Route::Task {
            task: TaskId::parse(rest.as_bytes()).ok()?,
        }),
        Some((id, tail)) => {
            let task = TaskId::parse(id.as_bytes()).ok()?;
            let number = tail.strip_prefix("pieces/")?.as_bytes();
            if number.len() > 1 && number[0] == b'0' {
                return None;
            }
            let number = u32::try_from(parse_decimal(number)?).ok()?;
            Some(Route::Piece { task, number })
        }
    }
}

/// Parses a `Range` value holding one `bytes=` range-spec; `None` means "ignore the header".
pub fn parse_range(value: &[u8]) -> Option<RangeSpec> {
    let value = value.trim_ascii();
    let eq = value.iter().position(|&b| b == b'=')?;
    let (unit, set) = (&value[..eq], &value[eq + 1..]);
    if !unit.eq_ignore_ascii_case(b"bytes") || set.contains(&b',') {
        return None;
    }
    let dash = set.iter().position(|&b| b == b'-')?;
    let (first, last) = (set[..dash].trim_ascii(), set[dash + 1..].trim_ascii());
    match (first.is_empty(), last.is_empty()) {
        (true, true) => None,
        (true, false) => Some(RangeSpec::Suffix(parse_decimal(last)?)),
        (false, true) => Some(RangeSpec::From(parse_decimal(first)?)),
        (false, false) => {
            let (first, last) = (parse_decimal(first)?, parse_decimal(last)?);
            (first <= last).then_some(RangeSpec::FromTo(first, last))
        }
    }
}

/// What to send for a range against a representation of `content_length` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolvedRange {
    /// 200, the whole representation.
    Full,
    /// 206, bytes `start..=end_inclusive`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end_inclusive: u64,
    },
    /// 416 with `Content-Range: bytes */content_length`.
    Unsatisfiable,
}

/// Applies RFC 9110 §14.1.2–14.4: a range starting at or past the end, a zero suffix or any
/// range of empty content is unsatisfiable; the last byte is clamped to the content; a suffix
/// longer than the content selects all of it.
pub fn resolve_range(spec: Option<RangeSpec>, content_length: u64) -> ResolvedRange {
    let Some(spec) = spec else {
        return ResolvedRange::Full;
    };
    if content_length == 0 {
        return ResolvedRange::Unsatisfiable;
    }
    let last_byte = content_length - 1;
    let (start, end_inclusive) = match spec {
        RangeSpec::FromTo(first, last) if first <= last => (first, last.min(last_byte)),
        RangeSpec::FromTo(..) => return ResolvedRange::Unsatisfiable,
        RangeSpec::From(first) => (first, last_byte),
        RangeSpec::Suffix(0) => return ResolvedRange::Unsatisfiable,
        RangeSpec::Suffix(n) => (content_length - n.min(content_length), last_byte),
    };
    if start > last_byte {
        return ResolvedRange::Unsatisfiable;
    }
    ResolvedRange::Partial {
        start,
        end_inclusive,
    }
}

/// The `Content-Range` of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes start-end/total` (206).
    Bytes {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end_inclusive: u64,
        /// The representation's length.
        total: u64,
    },
    /// `bytes */total` (416).
    Unsatisfied {
        /// The representation's length.
        total: u64,
    },
}

/// A response head to encode.
#[derive(Clone, Copy, Debug)]
pub struct ResponseHead<'a> {
    /// Status code (100–999).
    pub status: u16,
    /// Body length (for HEAD: what GET would send).
    pub content_length: u64,
    /// `Content-Type`; omitted when empty.
    pub content_type: &'a str,
    /// `Content-Range`, for 206 and 416.
    pub content_range: Option<ContentRange>,
    /// `Connection: keep-alive` or `close`.
    pub keep_alive: bool,
    /// More headers, written as given.
    pub extra: &'a [(&'a str, &'a str)],
}

/// Appends `n` in decimal without allocating.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

impl ResponseHead<'_> {
    /// Appends `HTTP/1.1 <status> <reason>`, `Server: hawker`, `Content-Length`, `Content-Type`
    /// (if any), `Content-Range` (if any), `Accept-Ranges: bytes`, `Connection`, the extra
    /// headers and the blank line. Allocates only if `out` must grow.
    ///
    /// # Panics
    /// If the status is not three digits or an extra header contains CR or LF (caller bugs that
    /// would corrupt the response).
    pub fn encode(&self, out: &mut Vec<u8>) {
        assert!(
            (100..=999).contains(&self.status),
            "bad status {}",
            self.status
        );
        let clean = |s: &str| !s.bytes().any(|b| b == b'\r' || b == b'\n');
        assert!(clean(self.content_type), "CR/LF in Content-Type");
        for (name, value) in self.extra {
            assert!(
                clean(name) && clean(value) && !name.is_empty(),
                "bad extra header {name:?}"
            );
        }

        out.extend_from_slice(b"HTTP/1.1 ");
        push_u64(out, u64::from(self.status));
        out.push(b' ');
        out.extend_from_slice(reason_phrase(self.status).as_bytes());
        out.extend_from_slice(b"\r\nServer: hawker\r\nContent-Length: ");
        push_u64(out, self.content_length);
        out.extend_from_slice(b"\r\n");
        if !self.content_type.is_empty() {
            push_header(out, "Content-Type", self.content_type.as_bytes());
        }
        match self.content_range {
            Some(ContentRange::Bytes {
                start,
                end_inclusive,
                total,
            }) => {
                out.extend_from_slice(b"Content-Range: bytes ");
                push_u64(out, start);
                out.push(b'-');
                push_u64(out, end_inclusive);
                out.push(b'/');
                push_u64(out, total);
                out.extend_from_slice(b"\r\n");
            }
            Some(ContentRange::Unsatisfied { total }) => {
                out.extend_from_slice(b"Content-Range: bytes */");
                push_u64(out, total);
                out.extend_from_slice(b"\r\n");
            }
            None => {}
        }
        out.extend_from_slice(b"Accept-Ranges: bytes\r\n");
        out.extend_from_slice(if self.keep_alive {
            b"Connection: keep-alive\r\n"
        } else {
            b"Connection: close\r\n"
        });
        for (name, value) in self.extra {
            push_header(out, name, value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "e2d0fe1585a63ec6009c8016ff8dda8b17719a637405a4e23c0ff81339148249";

    fn task() -> TaskId {
        TaskId::parse(ID.as_bytes()).unwrap()
    }

    fn get(path: &str, extra: &str) -> Vec<u8> {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes()
    }

    #[test]
    fn parses_every_route() {
        let cases = vec![
            (
                format!("/tasks/{ID}/pieces/7"),
                Route::Piece {
                    task: task(),
                    number: 7,
                },
            ),
            (
                format!("/tasks/{ID}/pieces/0?x=1"),
                Route::Piece {
                    task: task(),
                    number: 0,
                },
            ),
            (
                format!("/tasks/{ID}/pieces/4294967295"),
                Route::Piece {
                    task: task(),
                    number: u32::MAX,
                },
            ),
            (format!("/tasks/{ID}"), Route::Task { task: task() }),
            (format!("/tasks/{ID}?a=b"), Route::Task { task: task() }),
            ("/healthz".to_string(), Route::Healthz),
            ("/metrics?format=prom".to_string(), Route::Metrics),
        ];
        for (path, route) in cases {
            let buf = get(&path, "");
            let req = parse_request(&buf).unwrap().unwrap();
            assert_eq!(req.route, route, "{path}");
            assert_eq!(req.method, Method::Get);
            assert!(req.keep_alive);
            assert_eq!(req.range, None);
            assert_eq!(req.head_len, buf.len());
        }
    }

    #[test]
    fn unknown_paths_are_404() {
        let upper = ID.to_uppercase();
        for path in [
            "/".to_string(),
            "/tasks".to_string(),
            "/tasks/".to_string(),
            "/tasks/abc".to_string(),
            format!("/tasks/{upper}"),
            format!("/tasks/{ID}/"),
            format!("/tasks/{ID}/pieces"),
            format!("/tasks/{ID}/pieces/"),
            format!("/tasks/{ID}/pieces/01"),
            format!("/tasks/{ID}/pieces/+1"),
            format!("/tasks/{ID}/pieces/-1"),
            format!("/tasks/{ID}/pieces/4294967296"),
            format!("/tasks/{ID}/pieces/1/x"),
            format!("/tasks/{ID}/other/1"),
            "/healthz/".to_string(),
            "*".to_string(),
            "http://host/healthz".to_string(),
        ] {
            assert_eq!(
                parse_request(&get(&path, "")),
                Err(HttpError::NotFound),
                "{path}"
            );
        }
    }

    #[test]
    fn incomplete_heads_wait_and_oversized_heads_fail() {
        let buf = get("/healthz", "");
        for len in 0..buf.len() {
            assert_eq!(parse_request(&buf[..len]), Ok(None), "{len}");
        }
        let mut big = b"GET /healthz HTTP/1.1\r\nX-Pad: ".to_vec();
        big.resize(MAX_REQUEST_HEAD_BYTES, b'a');
        assert!(matches!(
            parse_request(&big),
            Err(HttpError::HeadTooLarge { .. })
        ));
        let mut long = b"GET /healthz HTTP/1.1\r\nX-Pad: ".to_vec();
        long.resize(MAX_REQUEST_HEAD_BYTES + 10, b'a');
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            parse_request(&long).unwrap_err().status(),
            431,
            "complete but too long"
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            parse_request(&get("/healthz", &many)),
            Err(HttpError::TooManyHeaders)
        );
    }

    #[test]
    fn methods_versions_and_bodies() {
        let head = b"HEAD /healthz HTTP/1.1\r\n\r\n";
        assert_eq!(parse_request(head).unwrap().unwrap().method, Method::Head);
        let post = b"POST /healthz HTTP/1.1\r\n\r\n";
        let err = parse_request(post).unwrap_err();
        assert_eq!(err, HttpError::MethodNotAllowed);
        assert_eq!(err.status(), 405);
        assert_eq!(err.extra_headers(), &[("Allow", "GET, HEAD")]);
        assert_eq!(
            parse_request(b"get /healthz HTTP/1.1\r\n\r\n"),
            Err(HttpError::MethodNotAllowed)
        );
        assert_eq!(
            parse_request(b"GET /healthz HTTP/2.0\r\n\r\n"),
            Err(HttpError::VersionNotSupported)
        );
        assert_eq!(
            parse_request(b"\x16\x03\x01\x00").unwrap_err().status(),
            400
        );
        assert_eq!(
            parse_request(&get("/healthz", "Content-Length: 5\r\n")),
            Err(HttpError::BodyNotAllowed)
        );
        assert!(parse_request(&get("/healthz", "Content-Length: 0\r\n")).is_ok());
        assert_eq!(
            parse_request(&get("/healthz", "Content-Length: x\r\n"))
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            parse_request(&get("/healthz", "Transfer-Encoding: chunked\r\n"))
                .unwrap_err()
                .status(),
            413
        );
    }

    #[test]
    fn keep_alive_rules() {
        let cases: Vec<(&[u8], bool)> = vec![
            (b"GET /healthz HTTP/1.1\r\n\r\n", true),
            (b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", false),
            (
                b"GET /healthz HTTP/1.1\r\nConnection: Keep-Alive, Close\r\n\r\n",
                false,
            ),
            (
                b"GET /healthz HTTP/1.1\r\nconnection: upgrade\r\n\r\n",
                true,
            ),
            (b"GET /healthz HTTP/1.0\r\n\r\n", false),
            (
                b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                true,
            ),
            (b"GET /healthz HTTP/1.0\r\nConnection: close\r\n\r\n", false),
        ];
        for (buf, keep_alive) in cases {
            assert_eq!(
                parse_request(buf).unwrap().unwrap().keep_alive,
                keep_alive,
                "{}",
                String::from_utf8_lossy(buf)
            );
        }
    }

    #[test]
    fn pipelined_requests_report_their_head_length() {
        let mut buf = get("/healthz", "");
        let first = buf.len();
        buf.extend_from_slice(&get("/metrics", ""));
        let req = parse_request(&buf).unwrap().unwrap();
        assert_eq!(req.head_len, first);
        assert_eq!(req.route, Route::Healthz);
        let next = parse_request(&buf[first..]).unwrap().unwrap();
        assert_eq!(next.route, Route::Metrics);
    }

    #[test]
    fn range_headers() {
        let cases: Vec<(&str, Option<RangeSpec>)> = vec![
            ("bytes=0-0", Some(RangeSpec::FromTo(0, 0))),
            ("bytes=5-10", Some(RangeSpec::FromTo(5, 10))),
            ("Bytes=5-", Some(RangeSpec::From(5))),
            ("bytes=-7", Some(RangeSpec::Suffix(7))),
            ("bytes= 1-2 ", Some(RangeSpec::FromTo(1, 2))),
            ("bytes=10-5", None),
            ("bytes=0-1,5-6", None),
            ("bytes=-", None),
            ("bytes=a-b", None),
            ("bytes=1", None),
            ("items=0-1", None),
            ("bytes=18446744073709551616-", None),
            ("0-1", None),
        ];
        for (value, expected) in cases {
            let buf = get("/healthz", &format!("Range: {value}\r\n"));
            assert_eq!(
                parse_request(&buf).unwrap().unwrap().range,
                expected,
                "{value}"
            );
        }
        let twice = get("/healthz", "Range: bytes=0-1\r\nRange: bytes=2-3\r\n");
        assert_eq!(parse_request(&twice).unwrap().unwrap().range, None);
    }

    #[test]
    fn resolve_range_follows_rfc_9110() {
        use RangeSpec::*;
        use ResolvedRange::*;
        let p = |start, end_inclusive| Partial {
            start,
            end_inclusive,
        };
        let cases = vec![
            (None, 100, Full),
            (None, 0, Full),
            (Some(FromTo(0, 0)), 100, p(0, 0)),
            (Some(FromTo(10, 19)), 100, p(10, 19)),
            (Some(FromTo(90, 200)), 100, p(90, 99)),
            (Some(FromTo(100, 200)), 100, Unsatisfiable),
            (Some(FromTo(5, 4)), 100, Unsatisfiable),
            (Some(From(0)), 100, p(0, 99)),
            (Some(From(99)), 100, p(99, 99)),
            (Some(From(100)), 100, Unsatisfiable),
            (Some(Suffix(10)), 100, p(90, 99)),
            (Some(Suffix(1000)), 100, p(0, 99)),
            (Some(Suffix(0)), 100, Unsatisfiable),
            (Some(FromTo(0, 0)), 0, Unsatisfiable),
            (Some(Suffix(5)), 0, Unsatisfiable),
            (Some(From(u64::MAX)), u64::MAX, Unsatisfiable),
            (Some(Suffix(u64::MAX)), u64::MAX, p(0, u64::MAX - 1)),
        ];
        for (spec, len, expected) in cases {
            assert_eq!(resolve_range(spec, len), expected, "{spec:?} of {len}");
        }
    }

    #[test]
    fn response_head_encoding() {
        let mut out = b"prefix".to_vec();
        ResponseHead {
            status: 206,
            content_length: 10,
            content_type: "application/octet-stream",
            content_range: Some(ContentRange::Bytes {
                start: 0,
                end_inclusive: 9,
                total: 100,
            }),
            keep_alive: true,
            extra: &[
                (PIECE_DIGEST_HEADER, "crc32:3421780262"),
                (PIECE_OFFSET_HEADER, "4194304"),
            ],
        }
        .encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "prefixHTTP/1.1 206 Partial Content\r\n\
             Server: hawker\r\n\
             Content-Length: 10\r\n\
             Content-Type: application/octet-stream\r\n\
             Content-Range: bytes 0-9/100\r\n\
             Accept-Ranges: bytes\r\n\
             Connection: keep-alive\r\n\
             X-Hawker-Piece-Digest: crc32:3421780262\r\n\
             X-Hawker-Piece-Offset: 4194304\r\n\
             \r\n"
        );

        let mut out = Vec::new();
        ResponseHead {
            status: 416,
            content_length: 0,
            content_type: "",
            content_range: Some(ContentRange::Unsatisfied { total: u64::MAX }),
            keep_alive: false,
            extra: &[],
        }
        .encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 416 Range Not Satisfiable\r\n\
             Server: hawker\r\n\
             Content-Length: 0\r\n\
             Content-Range: bytes */18446744073709551615\r\n\
             Accept-Ranges: bytes\r\n\
             Connection: close\r\n\
             \r\n"
        );
    }

    #[test]
    fn error_responses_parse_back() {
        for err in [
            HttpError::Malformed { reason: "x" },
            HttpError::NotFound,
            HttpError::MethodNotAllowed,
            HttpError::BodyNotAllowed,
            HttpError::HeadTooLarge { len: 9000 },
            HttpError::TooManyHeaders,
            HttpError::VersionNotSupported,
        ] {
            let mut out = Vec::new();
            err.encode_response(&mut out);
            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut resp = httparse::Response::new(&mut headers);
            assert_eq!(
                resp.parse(&out).unwrap(),
                httparse::Status::Complete(out.len())
            );
            assert_eq!(resp.code, Some(err.status()));
            assert_eq!(resp.reason, Some(err.reason()));
            assert_ne!(err.reason(), "Unknown");
            let allow = resp.headers.iter().any(|h| h.name == "Allow");
            assert_eq!(allow, err.status() == 405);
        }
    }
}
