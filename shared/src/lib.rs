//! hawker's wire formats and common types. No runtime, no sockets, no clock.
