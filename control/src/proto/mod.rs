//! The gRPC surface hawker shares with Dragonfly, without protoc.
//!
//! Messages are prost derive structs whose field numbers are copied from dragonfly-api 2.3.8
//! (`proto/*.proto`) and grpc-health v1; only the messages of the RPCs hawker serves (and the
//! client side of them, used by tests) are present. The service traits and clients
//! (`scheduler_server`, `dfdaemon_upload_server`, `health_server`, `*_client`) are generated
//! by `build.rs` with `tonic_build::manual`, codec `tonic_prost::ProstCodec`.
//!
//! Invariant: every field dfdaemon 1.5.10 sends or reads in these messages is declared, so a
//! decode followed by an encode reproduces the peer's bytes (checked by `tests/golden.rs`
//! against fixtures produced with the real `dragonfly-api` crate).

pub mod common {
    pub mod v2;
}
pub mod scheduler {
    pub mod v2;
}
pub mod dfdaemon {
    pub mod v2;
}
pub mod errordetails {
    pub mod v2;
}
pub mod health {
    pub mod v1;
}

/// `google.protobuf.Empty`: prost encodes `()` as the empty message.
pub type Empty = ();
