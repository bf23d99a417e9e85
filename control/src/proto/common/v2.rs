//! `common.v2` messages of Dragonfly's API (dragonfly-api 2.3.8, `proto/common.proto`): the subset
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
pub struct Peer {
    #[prost(string, tag = "1")]
    pub id: ::prost::alloc::string::String,
    #[prost(message, optional, tag = "2")]
    pub range: ::core::option::Option<Range>,
    #[prost(enumeration = "Priority", tag = "3")]
    pub priority: i32,
    #[prost(message, repeated, tag = "4")]
    pub pieces: ::prost::alloc::vec::Vec<Piece>,
    #[prost(message, optional, tag = "5")]
    pub cost: ::core::option::Option<::prost_types::Duration>,
    #[prost(string, tag = "6")]
    pub state: ::prost::alloc::string::String,
    #[prost(message, optional, tag = "7")]
    pub task: ::core::option::Option<Task>,
    #[prost(message, optional, tag = "8")]
    pub host: ::core::option::Option<Host>,
    #[prost(bool, tag = "9")]
    pub need_back_to_source: bool,
    #[prost(message, optional, tag = "10")]
    pub created_at: ::core::option::Option<::prost_types::Timestamp>,
    #[prost(message, optional, tag = "11")]
    pub updated_at: ::core::option::Option<::prost_types::Timestamp>,
    #[prost(uint32, optional, tag = "12")]
    pub concurrent_piece_count: ::core::option::Option<u32>,
}
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Task {
    #[prost(string, tag = "1")]
    pub id: ::prost::alloc::string::String,
    #[prost(enumeration = "TaskType", tag = "2")]
    pub r#type: i32,
    #[prost(string, tag = "3")]
    pub url: ::prost::alloc::string::String,
    #[prost(string, optional, tag = "4")]
    pub digest: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "5")]
    pub tag: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "6")]
    pub application: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, repeated, tag = "7")]
    pub filtered_query_params: ::prost::alloc::vec::Vec<::prost::alloc::string::String>,
    #[prost(btree_map = "string, string", tag = "8")]
    pub request_header: ::prost::alloc::collections::BTreeMap<
        ::prost::alloc::string::String,
        ::prost::alloc::string::String,
    >,
    #[prost(uint64, tag = "9")]
    pub content_length: u64,
    #[prost(uint32, tag = "10")]
    pub piece_count: u32,
    #[prost(enumeration = "SizeScope", tag = "11")]
    pub size_scope: i32,
    #[prost(message, repeated, tag = "12")]
    pub pieces: ::prost::alloc::vec::Vec<Piece>,
    #[prost(string, tag = "13")]
    pub state: ::prost::alloc::string::String,
    #[prost(uint32, tag = "14")]
    pub peer_count: u32,
    #[prost(bool, tag = "15")]
    pub has_available_peer: bool,
    #[prost(message, optional, tag = "16")]
    pub created_at: ::core::option::Option<::prost_types::Timestamp>,
    #[prost(message, optional, tag = "17")]
    pub updated_at: ::core::option::Option<::prost_types::Timestamp>,
}
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Host {
    #[prost(string, tag = "1")]
    pub id: ::prost::alloc::string::String,
    #[prost(uint32, tag = "2")]
    pub r#type: u32,
    #[prost(string, tag = "3")]
    pub hostname: ::prost::alloc::string::String,
    #[prost(string, tag = "4")]
    pub ip: ::prost::alloc::string::String,
    #[prost(int32, tag = "5")]
    pub port: i32,
    #[prost(int32, tag = "6")]
    pub download_port: i32,
    #[prost(string, tag = "7")]
    pub os: ::prost::alloc::string::String,
    #[prost(string, tag = "8")]
    pub platform: ::prost::alloc::string::String,
    #[prost(string, tag = "9")]
    pub platform_family: ::prost::alloc::string::String,
    #[prost(string, tag = "10")]
    pub platform_version: ::prost::alloc::string::String,
    #[prost(string, tag = "11")]
    pub kernel_version: ::prost::alloc::string::String,
    #[prost(message, optional, tag = "12")]
    pub cpu: ::core::option::Option<Cpu>,
    #[prost(message, optional, tag = "13")]
    pub memory: ::core::option::Option<Memory>,
    #[prost(message, optional, tag = "14")]
    pub network: ::core::option::Option<Network>,
    #[prost(message, optional, tag = "15")]
    pub disk: ::core::option::Option<Disk>,
    #[prost(message, optional, tag = "16")]
    pub build: ::core::option::Option<Build>,
    #[prost(uint64, tag = "17")]
    pub scheduler_cluster_id: u64,
    #[prost(bool, tag = "18")]
    pub disable_shared: bool,
    #[prost(int32, tag = "19")]
    pub proxy_port: i32,
    #[prost(string, tag = "20")]
    pub name: ::prost::alloc::string::String,
}
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct Cpu {
    #[prost(uint32, tag = "1")]
    pub logical_count: u32,
    #[prost(uint32, tag = "2")]
    pub physical_count: u32,
    #[prost(double, tag = "3")]
    pub percent: f64,
    #[prost(double, tag = "4")]
    pub process_percent: f64,
    #[prost(message, optional, tag = "5")]
    pub times: ::core::option::Option<CpuTimes>,
    #[prost(message, optional, tag = "6")]
    pub cgroup: ::core::option::Option<CgroupCpu>,
}
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct CgroupCpu {
    #[prost(uint64, tag = "1")]
    pub period: u64,
    #[prost(int64, tag = "2")]
    pub quota: i64,
    #[prost(double, tag = "3")]
    pub used_percent: f64,
}
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct CpuTimes {
    #[prost(double, tag = "1")]
    pub user: f64,
    #[prost(double, tag = "2")]
    pub system: f64,
    #[prost(double, tag = "3")]
    pub idle: f64,
    #[prost(double, tag = "4")]
    pub nice: f64,
    #[prost(double, tag = "5")]
    pub iowait: f64,
    #[prost(double, tag = "6")]
    pub irq: f64,
    #[prost(double, tag = "7")]
    pub softirq: f64,
    #[prost(double, tag = "8")]
    pub steal: f64,
    #[prost(double, tag = "9")]
    pub guest: f64,
    #[prost(double, tag = "10")]
    pub guest_nice: f64,
}
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct Memory {
    #[prost(uint64, tag = "1")]
    pub total: u64,
    #[prost(uint64, tag = "2")]
    pub available: u64,
    #[prost(uint64, tag = "3")]
    pub used: u64,
    #[prost(double, tag = "4")]
    pub used_percent: f64,
    #[prost(double, tag = "5")]
    pub process_used_percent: f64,
    #[prost(uint64, tag = "6")]
    pub free: u64,
    #[prost(message, optional, tag = "7")]
    pub cgroup: ::core::option::Option<CgroupMemory>,
}
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct CgroupMemory {
    #[prost(int64, tag = "1")]
    pub limit: i64,
    #[prost(uint64, tag = "2")]
    pub usage: u64,
    #[prost(double, tag = "3")]
    pub used_percent: f64,
}
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Network {
    #[prost(uint32, tag = "1")]
    pub tcp_connection_count: u32,
    #[prost(uint32, tag = "2")]
    pub upload_tcp_connection_count: u32,
    #[prost(string, optional, tag = "3")]
    pub location: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "4")]
    pub idc: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(uint64, tag = "9")]
    pub max_rx_bandwidth: u64,
    #[prost(uint64, optional, tag = "10")]
    pub rx_bandwidth: ::core::option::Option<u64>,
    #[prost(uint64, tag = "11")]
    pub max_tx_bandwidth: u64,
    #[prost(uint64, optional, tag = "12")]
    pub tx_bandwidth: ::core::option::Option<u64>,
}
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct Disk {
    #[prost(uint64, tag = "1")]
    pub total: u64,
    #[prost(uint64, tag = "2")]
    pub free: u64,
    #[prost(uint64, tag = "3")]
    pub used: u64,
    #[prost(double, tag = "4")]
    pub used_percent: f64,
    #[prost(uint64, tag = "5")]
    pub inodes_total: u64,
    #[prost(uint64, tag = "6")]
    pub inodes_used: u64,
    #[prost(uint64, tag = "7")]
    pub inodes_free: u64,
    #[prost(double, tag = "8")]
    pub inodes_used_percent: f64,
    #[prost(uint64, tag = "9")]
    pub read_bandwidth: u64,
    #[prost(uint64, tag = "10")]
    pub write_bandwidth: u64,
    #[prost(message, optional, tag = "11")]
    pub cgroup: ::core::option::Option<CgroupDisk>,
}
#[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
pub struct CgroupDisk {
    #[prost(uint64, tag = "1")]
    pub read_bandwidth: u64,
    #[prost(uint64, tag = "2")]
    pub write_bandwidth: u64,
}
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Build {
    #[prost(string, tag = "1")]
    pub git_version: ::prost::alloc::string::String,
    #[prost(string, optional, tag = "2")]
    pub git_commit: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "3")]
    pub go_version: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "4")]
    pub rust_version: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "5")]
    pub platform: ::core::option::Option<::prost::alloc::string::String>,
}
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Download {
    #[prost(string, tag = "1")]
    pub url: ::prost::alloc::string::String,
    #[prost(string, optional, tag = "2")]
    pub digest: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(message, optional, tag = "3")]
    pub range: ::core::option::Option<Range>,
    #[prost(enumeration = "TaskType", tag = "4")]
    pub r#type: i32,
    #[prost(string, optional, tag = "5")]
    pub tag: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "6")]
    pub application: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(enumeration = "Priority", tag = "7")]
    pub priority: i32,
    #[prost(string, repeated, tag = "8")]
    pub filtered_query_params: ::prost::alloc::vec::Vec<::prost::alloc::string::String>,
    #[prost(btree_map = "string, string", tag = "9")]
    pub request_header: ::prost::alloc::collections::BTreeMap<
        ::prost::alloc::string::String,
        ::prost::alloc::string::String,
    >,
    #[prost(uint64, optional, tag = "10")]
    pub piece_length: ::core::option::Option<u64>,
    #[prost(string, optional, tag = "11")]
    pub output_path: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(message, optional, tag = "12")]
    pub timeout: ::core::option::Option<::prost_types::Duration>,
    #[prost(bool, tag = "13")]
    pub disable_back_to_source: bool,
    #[prost(bool, tag = "14")]
    pub need_back_to_source: bool,
    #[prost(bytes = "vec", repeated, tag = "15")]
    pub certificate_chain: ::prost::alloc::vec::Vec<::prost::alloc::vec::Vec<u8>>,
    #[prost(bool, tag = "16")]
    pub prefetch: bool,
    #[prost(message, optional, tag = "17")]
    pub object_storage: ::core::option::Option<ObjectStorage>,
    #[prost(message, optional, tag = "18")]
    pub hdfs: ::core::option::Option<Hdfs>,
    #[prost(bool, tag = "19")]
    pub is_prefetch: bool,
    #[prost(bool, tag = "20")]
    pub need_piece_content: bool,
    #[prost(bool, tag = "22")]
    pub force_hard_link: bool,
    #[prost(string, optional, tag = "23")]
    pub content_for_calculating_task_id: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "24")]
    pub remote_ip: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(uint32, optional, tag = "25")]
    pub concurrent_piece_count: ::core::option::Option<u32>,
    #[prost(bool, tag = "26")]
    pub overwrite: bool,
    #[prost(uint64, optional, tag = "27")]
    pub actual_piece_length: ::core::option::Option<u64>,
    #[prost(uint64, optional, tag = "28")]
    pub actual_content_length: ::core::option::Option<u64>,
    #[prost(uint64, optional, tag = "29")]
    pub actual_piece_count: ::core::option::Option<u64>,
    #[prost(bool, tag = "30")]
    pub enable_task_id_based_blob_digest: bool,
    #[prost(message, optional, tag = "31")]
    pub hugging_face: ::core::option::Option<HuggingFace>,
    #[prost(message, optional, tag = "32")]
    pub model_scope: ::core::option::Option<ModelScope>,
    #[prost(bool, tag = "33")]
    pub metadata_only: bool,
    #[prost(message, optional, tag = "34")]
    pub open_csg: ::core::option::Option<OpenCsg>,
    #[prost(enumeration = "SchedulingPolicy", tag = "35")]
    pub scheduling_policy: i32,
}
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct ObjectStorage {
    #[prost(string, optional, tag = "1")]
    pub region: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "2")]
    pub endpoint: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "3")]
    pub access_key_id: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "4")]
    pub access_key_secret: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "5")]
    pub session_token: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "6")]
    pub credential_path: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "7")]
    pub predefined_acl: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, optional, tag = "8")]
    pub security_token: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(bool, optional, tag = "9")]
    pub insecure_skip_verify: ::core::option::Option<bool>,
}
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Hdfs {
    #[prost(string, optional, tag = "1")]
    pub delegation_token: ::core::option::Option<::prost::alloc::string::String>,
}
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct HuggingFace {
    #[prost(string, optional, tag = "1")]
    pub token: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, tag = "2")]
    pub revision: ::prost::alloc::string::String,
    #[prost(string, optional, tag = "3")]
    pub base_url: ::core::option::Option<::prost::alloc::string::String>,
}
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct ModelScope {
    #[prost(string, optional, tag = "1")]
    pub token: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, tag = "2")]
    pub revision: ::prost::alloc::string::String,
    #[prost(string, optional, tag = "3")]
    pub base_url: ::core::option::Option<::prost::alloc::string::String>,
}
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct OpenCsg {
    #[prost(string, optional, tag = "1")]
    pub token: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(string, tag = "2")]
    pub revision: ::prost::alloc::string::String,
    #[prost(string, optional, tag = "3")]
    pub base_url: ::core::option::Option<::prost::alloc::string::String>,
}
#[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Range {
    #[prost(uint64, tag = "1")]
    pub start: u64,
    #[prost(uint64, tag = "2")]
    pub length: u64,
}
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Piece {
    #[prost(uint32, tag = "1")]
    pub number: u32,
    #[prost(string, optional, tag = "2")]
    pub parent_id: ::core::option::Option<::prost::alloc::string::String>,
    #[prost(uint64, tag = "3")]
    pub offset: u64,
    #[prost(uint64, tag = "4")]
    pub length: u64,
    #[prost(string, tag = "5")]
    pub digest: ::prost::alloc::string::String,
    #[prost(bytes = "vec", optional, tag = "6")]
    pub content: ::core::option::Option<::prost::alloc::vec::Vec<u8>>,
    #[prost(enumeration = "TrafficType", optional, tag = "7")]
    pub traffic_type: ::core::option::Option<i32>,
    #[prost(message, optional, tag = "8")]
    pub cost: ::core::option::Option<::prost_types::Duration>,
    #[prost(message, optional, tag = "9")]
    pub created_at: ::core::option::Option<::prost_types::Timestamp>,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum SizeScope {
    Normal = 0,
    Small = 1,
    Tiny = 2,
    Empty = 3,
}
impl SizeScope {
    pub fn as_str_name(&self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Small => "SMALL",
            Self::Tiny => "TINY",
            Self::Empty => "EMPTY",
        }
    }
    pub fn from_str_name(value: &str) -> ::core::option::Option<Self> {
        match value {
            "NORMAL" => Some(Self::Normal),
            "SMALL" => Some(Self::Small),
            "TINY" => Some(Self::Tiny),
            "EMPTY" => Some(Self::Empty),
            _ => None,
        }
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum TaskType {
    Standard = 0,
    Persistent = 1,
    PersistentCache = 2,
    Cache = 3,
}
impl TaskType {
    pub fn as_str_name(&self) -> &'static str {
        match self {
            Self::Standard => "STANDARD",
            Self::Persistent => "PERSISTENT",
            Self::PersistentCache => "PERSISTENT_CACHE",
            Self::Cache => "CACHE",
        }
    }
    pub fn from_str_name(value: &str) -> ::core::option::Option<Self> {
        match value {
            "STANDARD" => Some(Self::Standard),
            "PERSISTENT" => Some(Self::Persistent),
            "PERSISTENT_CACHE" => Some(Self::PersistentCache),
            "CACHE" => Some(Self::Cache),
            _ => None,
        }
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum TrafficType {
    BackToSource = 0,
    RemotePeer = 1,
    LocalPeer = 2,
}
impl TrafficType {
    pub fn as_str_name(&self) -> &'static str {
        match self {
            Self::BackToSource => "BACK_TO_SOURCE",
            Self::RemotePeer => "REMOTE_PEER",
            Self::LocalPeer => "LOCAL_PEER",
        }
    }
    pub fn from_str_name(value: &str) -> ::core::option::Option<Self> {
        match value {
            "BACK_TO_SOURCE" => Some(Self::BackToSource),
            "REMOTE_PEER" => Some(Self::RemotePeer),
            "LOCAL_PEER" => Some(Self::LocalPeer),
            _ => None,
        }
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum Priority {
    Level0 = 0,
    Level1 = 1,
    Level2 = 2,
    Level3 = 3,
    Level4 = 4,
    Level5 = 5,
    Level6 = 6,
}
impl Priority {
    pub fn as_str_name(&self) -> &'static str {
        match self {
            Self::Level0 => "LEVEL0",
            Self::Level1 => "LEVEL1",
            Self::Level2 => "LEVEL2",
            Self::Level3 => "LEVEL3",
            Self::Level4 => "LEVEL4",
            Self::Level5 => "LEVEL5",
            Self::Level6 => "LEVEL6",
        }
    }
    pub fn from_str_name(value: &str) -> ::core::option::Option<Self> {
        match value {
            "LEVEL0" => Some(Self::Level0),
            "LEVEL1" => Some(Self::Level1),
            "LEVEL2" => Some(Self::Level2),
            "LEVEL3" => Some(Self::Level3),
            "LEVEL4" => Some(Self::Level4),
            "LEVEL5" => Some(Self::Level5),
            "LEVEL6" => Some(Self::Level6),
            _ => None,
        }
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum SchedulingPolicy {
    Auto = 0,
    Always = 1,
}
impl SchedulingPolicy {
    pub fn as_str_name(&self) -> &'static str {
        match self {
            Self::Auto => "AUTO",
            Self::Always => "ALWAYS",
        }
    }
    pub fn from_str_name(value: &str) -> ::core::option::Option<Self> {
        match value {
            "AUTO" => Some(Self::Auto),
            "ALWAYS" => Some(Self::Always),
            _ => None,
        }
    }
}
