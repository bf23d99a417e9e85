//! hawker's control plane.
