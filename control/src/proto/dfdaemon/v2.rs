//! `dfdaemon.v2` messages of Dragonfly's API (dragonfly-api 2.3.8, `proto/dfdaemon.proto`): the subset
//! hawker decodes or encodes, transcribed from the crate's prost output with field numbers,
//! wire types and oneof tags unchanged. Maps are `BTreeMap` (same wire format as upstream's
//! `HashMap`; deterministic encoding order). Well-known types are `prost_types`' (same wire
//! format as upstream's `prost_wkt_types`). Round trips against bytes produced by the real
//! crate are checked in `tests/golden.rs`.
#![allow(
    missing_docs,
    clippy::large_enum_variant,
    clippy::doc_lazy_continuation
)]

#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct SyncPiecesRequest {
    #[prost(string, tag = "1")]
    pub host_id: ::prost::alloc::string::String,
    #[prost(string, tag = "2")]
    pub task_id: ::prost::alloc::string::String,
    #[prost(uint32, repeated, tag = "3")]
    pub interested_piece_numbers: ::prost::alloc::vec::Vec<u32>,
}
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct SyncPiecesResponse {
    #[prost(uint32, tag = "1")]
    pub number: u32,
    #[prost(uint64, tag = "2")]
    pub offset: u64,
    #[prost(uint64, tag = "3")]
    pub length: u64,
    #[prost(string, tag = "4")]
    pub ip: ::prost::alloc::string::String,
    #[prost(int32, optional, tag = "5")]
    pub tcp_port: ::core::option::Option<i32>,
    #[prost(int32, optional, tag = "6")]
    pub quic_port: ::core::option::Option<i32>,
}
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct SyncHostRequest {
    #[prost(string, tag = "1")]
    pub host_id: ::prost::alloc::string::String,
    #[prost(string, tag = "2")]
    pub peer_id: ::prost::alloc::string::String,
}
include!(concat!(env!("OUT_DIR"), "/dfdaemon.v2.DfdaemonUpload.rs"));
