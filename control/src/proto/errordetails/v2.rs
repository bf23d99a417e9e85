//! `errordetails.v2` messages of Dragonfly's API (dragonfly-api 2.3.8, `proto/errordetails.proto`): the subset
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

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Backend {
    #[prost(string, tag = "1")]
    pub message: ::prost::alloc::string::String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub header: ::prost::alloc::collections::BTreeMap<
        ::prost::alloc::string::String,
        ::prost::alloc::string::String,
    >,
    #[prost(int32, optional, tag = "3")]
    pub status_code: ::core::option::Option<i32>,
}
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Unknown {
    #[prost(string, optional, tag = "1")]
    pub message: ::core::option::Option<::prost::alloc::string::String>,
}
