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
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DownloadTaskRequest {
    #[prost(message, optional, tag = "1")]
    pub download: ::core::option::Option<super::super::common::v2::Download>,
}
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DownloadTaskStartedResponse {
    #[prost(uint64, tag = "1")]
    pub content_length: u64,
    #[prost(message, optional, tag = "2")]
    pub range: ::core::option::Option<super::super::common::v2::Range>,
    #[prost(btree_map = "string, string", tag = "3")]
    pub response_header: ::prost::alloc::collections::BTreeMap<
        ::prost::alloc::string::String,
        ::prost::alloc::string::String,
    >,
    #[prost(message, repeated, tag = "4")]
    pub pieces: ::prost::alloc::vec::Vec<super::super::common::v2::Piece>,
    #[prost(bool, tag = "5")]
    pub is_finished: bool,
}
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DownloadPieceFinishedResponse {
    #[prost(message, optional, tag = "1")]
    pub piece: ::core::option::Option<super::super::common::v2::Piece>,
}
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct DownloadTaskResponse {
    #[prost(string, tag = "1")]
    pub host_id: ::prost::alloc::string::String,
    #[prost(string, tag = "2")]
    pub task_id: ::prost::alloc::string::String,
    #[prost(string, tag = "3")]
    pub peer_id: ::prost::alloc::string::String,
    #[prost(oneof = "download_task_response::Response", tags = "4, 5")]
    pub response: ::core::option::Option<download_task_response::Response>,
}
pub mod download_task_response {
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Response {
        #[prost(message, tag = "4")]
        DownloadTaskStartedResponse(super::DownloadTaskStartedResponse),
        #[prost(message, tag = "5")]
        DownloadPieceFinishedResponse(super::DownloadPieceFinishedResponse),
    }
}
include!(concat!(env!("OUT_DIR"), "/dfdaemon.v2.DfdaemonUpload.rs"));
