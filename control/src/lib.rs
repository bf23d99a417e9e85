//! hawker's control plane.
pub mod proto;
