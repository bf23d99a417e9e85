//! hawker's data plane.

pub mod store;
