//! hawker's data plane: the immutable mmapped store and the thread-per-core io_uring server.
//!
//! - [`store`]: tasks on disk: content files written once, mmapped read-only.
//! - [`server`] / [`core`]: one pinned thread per core, each with its own io_uring, its own
//!   SO_REUSEPORT listeners and its own connections; Vortex and HTTP on every core.
//! - [`edge`]: the one bounded, one-way channel by which the control side tells cores about
//!   tasks and pieces.
//! - [`order`]: the server-wide first-come-first-served order of response bodies.
//! - [`metrics`]: per-core counters rendered at `/metrics`; health for `/healthz`.
//! - [`sys`]: start-up facts (memlock, io_uring, CPUs, listeners) with operator-facing errors.
//!
//! See `docs/architecture.md` for the picture and the request flow.

pub mod config;
pub mod core;
pub mod edge;
pub mod feeder;
pub mod metrics;
pub mod order;
pub mod server;
pub mod store;
pub mod sys;

pub use config::{SendMode, ServeConfig};
pub use server::Server;
