//! hawker's data plane.
