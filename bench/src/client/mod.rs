//! The client side of one piece request, per protocol, over any async byte stream: Vortex
//! ([`vortex`]) and HTTP/1.1 ([`http`]). Both read through a [`ConnBuf`], the connection's one
//! receive buffer, and verify content as it arrives with [`read_body`].
//!
//! Invariants: a connection owns exactly one [`RECV_BUFFER_BYTES`] buffer for its life (no
//! allocation per piece); the content of a piece is never held whole in memory, only hashed
//! (crc32fast) chunk by chunk as each read returns; every length the server declares is checked
//! against a bound before it decides how much is read.

pub mod http;
pub mod vortex;

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::stats::ErrorKind;

/// The receive buffer of one connection, in bytes (1 MiB: large reads, few syscalls).
pub const RECV_BUFFER_BYTES: usize = 1024 * 1024;

/// Why one request failed, and whether its connection can carry the next request.
#[derive(Debug)]
pub struct FetchError {
    /// The error class counted in the report.
    pub kind: ErrorKind,
    /// True when the response was consumed exactly, so the connection is still in step.
    pub reusable: bool,
    /// What happened, for the report's error samples.
    pub message: String,
}

impl FetchError {
    /// An error after which the connection must be closed.
    pub fn fatal(kind: ErrorKind, message: impl Into<String>) -> FetchError {
        FetchError {
            kind,
            reusable: false,
            message: message.into(),
        }
    }

    /// An error after which the connection is still usable.
    pub fn reusable(kind: ErrorKind, message: impl Into<String>) -> FetchError {
        FetchError {
            kind,
            reusable: true,
            message: message.into(),
        }
    }

    /// Classifies a socket error while reading or writing `what`.
    pub fn io(err: io::Error, what: &str) -> FetchError {
        let kind = match err.kind() {
            io::ErrorKind::UnexpectedEof => ErrorKind::ShortBody,
            _ => ErrorKind::Io,
        };
        FetchError::fatal(kind, format!("{what}: {err}"))
    }
}

/// A piece that arrived whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    /// Content bytes received.
    pub bytes: u64,
    /// False when the server asked to close the connection after this response.
    pub keep_alive: bool,
}

/// A connection's receive buffer: bytes `start..end` of `data` are received but not consumed.
pub struct ConnBuf {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Default for ConnBuf {
    fn default() -> Self {
        ConnBuf::new(RECV_BUFFER_BYTES)
    }
}

impl ConnBuf {
    /// A buffer of `capacity` bytes (at least 64 KiB so any bounded header fits).
    pub fn new(capacity: usize) -> ConnBuf {
        ConnBuf {
            data: vec![0; capacity.max(64 * 1024)].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The buffer's size in bytes.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Forgets buffered bytes (after the connection was replaced).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Received, unconsumed bytes.
    pub fn buffered(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// Marks `n` buffered bytes consumed.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n.min(self.end - self.start);
    }

    /// Reads once more from the stream, appending to the buffered bytes; returns how many
    /// bytes arrived (0 at end of stream). Errors if the buffer is full of unconsumed bytes.
    pub async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.data.len() {
            if self.start == 0 {
                return Err(io::Error::other("receive buffer full"));
            }
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = stream.read(&mut self.data[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Returns exactly `n` bytes (n <= capacity) and consumes them.
    pub async fn read_exact<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        n: usize,
    ) -> io::Result<&[u8]> {
        if n > self.data.len() {
            return Err(io::Error::other("read larger than the receive buffer"));
        }
        if self.data.len() - self.start < n {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < n {
            if self.fill(stream).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        let begin = self.start;
        self.start += n;
        Ok(&self.data[begin..begin + n])
    }
}

/// Receives `length` content bytes, hashing them with crc32 when `verify`; returns the crc32
/// (0 when not verifying). An end of stream before the last byte is a short body.
pub async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut ConnBuf,
    length: u64,
    verify: bool,
) -> Result<u32, FetchError> {
    let mut hasher = crc32fast::Hasher::new();
    let mut remaining = length;
    while remaining > 0 {
        if buf.buffered().is_empty() {
            let n = buf
                .fill(stream)
                .await
                .map_err(|e| FetchError::io(e, "reading content"))?;
            if n == 0 {
                return Err(FetchError::fatal(
                    ErrorKind::ShortBody,
                    format!("connection closed with {remaining} of {length} content bytes missing"),
                ));
            }
        }
        let chunk = buf.buffered();
        let take = chunk
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        if verify {
            hasher.update(&chunk[..take]);
        }
        buf.consume(take);
        remaining -= take as u64;
    }
    Ok(if verify { hasher.finalize() } else { 0 })
}

/// Discards `length` bytes of a response the bench does not need.
pub async fn skip_bytes<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut ConnBuf,
    length: u64,
) -> Result<(), FetchError> {
    read_body(stream, buf, length, false).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn body_is_hashed_across_reads_and_leftovers_stay_buffered() {
        rt().block_on(async {
            let (mut client, mut server) = tokio::io::duplex(4096);
            let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
            let expected = crc32fast::hash(&content);
            let writer = tokio::spawn(async move {
                server.write_all(b"HEAD").await.unwrap();
                server.write_all(&content).await.unwrap();
                server.write_all(b"NEXT").await.unwrap();
                server
            });
            let mut buf = ConnBuf::new(64 * 1024);
            assert_eq!(buf.read_exact(&mut client, 4).await.unwrap(), b"HEAD");
            let crc = read_body(&mut client, &mut buf, 200_000, true)
                .await
                .unwrap();
            assert_eq!(crc, expected);
            assert_eq!(buf.read_exact(&mut client, 4).await.unwrap(), b"NEXT");
            drop(writer.await.unwrap());
            let err = read_body(&mut client, &mut buf, 1, true).await.unwrap_err();
            assert_eq!(err.kind, ErrorKind::ShortBody);
        });
    }
}
