//! hawker-bench: `dp-bench`, the load generator hawker is judged by.
//!
//! It loads a Vortex server (hawker or any dfdaemon's TCP piece port) or an HTTP server
//! (hawker's piece URLs, or any server with byte ranges such as nginx) with a seeded workload
//! of pieces, verifies every piece (length and crc32) as it arrives, and reports throughput,
//! latency percentiles (coordinated-omission corrected in open loop), the fair-share ideal,
//! errors by kind, and the CPU both sides spent. See `docs/dp-bench.md`.
//!
//! Layout: [`workload`] (which pieces), [`pacing`] (when, and until when), [`client`] (one
//! request per protocol, sans threads), [`engine`] (threads, runtimes, connections), [`stats`]
//! (histograms and counters), [`report`] and [`svg`] (what is printed and written),
//! [`procstat`] (CPU and memory of both sides), [`cli`] (flags), [`datadir`] (tasks of a
//! hawker data dir), [`units`].
//!
//! The client must not be the bottleneck it measures: one current-thread tokio runtime per
//! worker thread, one 1 MiB receive buffer per connection reused for every piece, content
//! hashed with crc32fast as it arrives and never copied elsewhere, no allocation per piece on
//! the success path; its own CPU time is reported next to the server's.

pub mod cli;
pub mod client;
pub mod datadir;
pub mod engine;
pub mod pacing;
pub mod procstat;
pub mod report;
pub mod stats;
pub mod svg;
pub mod units;
pub mod workload;
