//! hawker's wire formats and common types. No runtime, no sockets, no clock.
//!
//! What lives here, and why in one small crate: everything two hawker components (the io_uring
//! data plane, the tokio control plane, the store and `dp-bench`) must agree on byte for byte, and
//! everything that must agree byte for byte with an unmodified Dragonfly 1.5.10 client.
//!
//! - [`ids`]: task ids (`TaskId`, 64 lower-case hex bytes), Dragonfly's URL canonicalisation and
//!   task id derivation, host and peer ids.
//! - [`layout`]: how a task's content is cut into pieces (Dragonfly's piece-length rule).
//! - [`digest`]: the piece digest string `crc32:<decimal>`.
//! - [`vortex`]: the Vortex TLV protocol (Dragonfly's TCP piece protocol), sans-IO.
//! - [`http`]: the HTTP/1.1 request parser and response head writer of the piece server, sans-IO.
//!
//! Rules every module follows: decoding borrows from the caller's input and never panics on peer
//! bytes; every length a peer declares is checked against a named bound before anything is sized
//! from it; encoding appends to a caller-owned buffer and does not allocate when its capacity
//! suffices. `docs/protocol.md` describes the same formats for humans.

pub mod digest;
pub mod http;
pub mod ids;
pub mod layout;
pub mod vortex;

pub use ids::TaskId;
pub use layout::{Layout, PieceRange};
