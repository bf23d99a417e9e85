//! Configuration of the control plane, as TOML (serde): every key has a default and a doc
//! comment, units are in the names, and [`SchedulerConfig::validate`] /
//! [`ControlPlaneConfig::validate`] reject contradictions before anything binds a socket.

use crate::origin::OriginConfig;
use crate::scheduler::state::Limits;
use crate::seed::UploadLimits;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid control plane config: {0}")]
pub struct ConfigError(pub String);

/// The scheduler (`hawker scheduler`, or embedded in `hawker serve`). TOML table `[scheduler]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// gRPC listen address of `scheduler.v2.Scheduler` and `grpc.health.v1.Health`.
    /// Default `0.0.0.0:8002`, Dragonfly's scheduler port (dfdaemon's dynconfig points here).
    pub listen: SocketAddr,
    /// Seed hosts responsible for one task (rendezvous hashing). Default 1: one origin fetch.
    pub seeds_per_task: usize,
    /// Parents offered in one answer. Default 4.
    pub candidate_parents_max: usize,
    /// Hosts remembered at once. Default 10000.
    pub max_hosts: usize,
    /// Tasks remembered at once. Default 100000.
    pub max_tasks: usize,
    /// Peers remembered at once, all tasks together. Default 1000000.
    pub max_peers: usize,
    /// Pieces of one task; bigger tasks are refused. Default 1048576 (4 TiB at 4 MiB pieces).
    pub max_pieces_per_task: u32,
    /// Parents one peer may block before the oldest is forgotten. Default 64.
    pub max_blocked_parents_per_peer: usize,
    /// Lower clamp of a host's time to live (3 × its announce interval). Default 30000.
    pub host_ttl_min_ms: u64,
    /// Upper clamp of a host's time to live, and the TTL of hosts that send no interval.
    /// Default 3600000 (dfdaemon announces every 300 s, so its TTL is 900 s).
    pub host_ttl_max_ms: u64,
    /// How long a finished peer remains a parent after its last message. Default 86400000.
    pub peer_ttl_ms: u64,
    /// How long a task without peers is remembered. Default 3600000.
    pub task_ttl_ms: u64,
    /// Period of the expiry sweep. Default 10000.
    pub expire_interval_ms: u64,
    /// Concurrent `AnnouncePeer` calls; more are refused RESOURCE_EXHAUSTED. Default 10000.
    pub max_announce_streams: usize,
    /// An `AnnouncePeer` call without a message for this long is ended. Default 3600000
    /// (the client sends one per piece; its own piece timeout is 360 s).
    pub announce_idle_timeout_ms: u64,
    /// Largest gRPC message accepted. Default 4194304 (tonic's default).
    pub max_message_bytes: usize,
    /// After shutdown is asked, how long open calls may take to finish. Default 5000.
    pub shutdown_grace_ms: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        let l = Limits::default();
        SchedulerConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8002),
            seeds_per_task: l.seeds_per_task,
            candidate_parents_max: l.candidate_parents_max,
            max_hosts: l.max_hosts,
            max_tasks: l.max_tasks,
            max_peers: l.max_peers,
            max_pieces_per_task: l.max_pieces_per_task,
            max_blocked_parents_per_peer: l.max_blocked_parents_per_peer,
            host_ttl_min_ms: l.host_ttl_min_ms,
            host_ttl_max_ms: l.host_ttl_max_ms,
            peer_ttl_ms: l.peer_ttl_ms,
            task_ttl_ms: l.task_ttl_ms,
            expire_interval_ms: 10_000,
            max_announce_streams: 10_000,
            announce_idle_timeout_ms: 3_600_000,
            max_message_bytes: 4 << 20,
            shutdown_grace_ms: 5_000,
        }
    }
}

impl SchedulerConfig {
    /// The state machine's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            seeds_per_task: self.seeds_per_task,
            candidate_parents_max: self.candidate_parents_max,
            max_hosts: self.max_hosts,
            max_tasks: self.max_tasks,
            max_peers: self.max_peers,
            max_pieces_per_task: self.max_pieces_per_task,
            max_blocked_parents_per_peer: self.max_blocked_parents_per_peer,
            host_ttl_min_ms: self.host_ttl_min_ms,
            host_ttl_max_ms: self.host_ttl_max_ms,
            peer_ttl_ms: self.peer_ttl_ms,
            task_ttl_ms: self.task_ttl_ms,
        }
    }

    /// Rejects values the scheduler cannot run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("seeds_per_task", self.seeds_per_task as u64),
            ("candidate_parents_max", self.candidate_parents_max as u64),
            ("max_hosts", self.max_hosts as u64),
            ("max_tasks", self.max_tasks as u64),
            ("max_peers", self.max_peers as u64),
            ("max_pieces_per_task", u64::from(self.max_pieces_per_task)),
            ("expire_interval_ms", self.expire_interval_ms),
            ("max_announce_streams", self.max_announce_streams as u64),
            ("announce_idle_timeout_ms", self.announce_idle_timeout_ms),
            ("max_message_bytes", self.max_message_bytes as u64),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(ConfigError(format!("scheduler.{name} must be > 0")));
            }
        }
        if self.seeds_per_task > self.candidate_parents_max {
            return Err(ConfigError(
                "scheduler.seeds_per_task must not exceed candidate_parents_max".into(),
            ));
        }
        if self.host_ttl_min_ms > self.host_ttl_max_ms {
            return Err(ConfigError(
                "scheduler.host_ttl_min_ms must not exceed host_ttl_max_ms".into(),
            ));
        }
        Ok(())
    }
}

/// The control plane inside `hawker serve` (TOML table `[control]`): the seed's upload service,
/// its host announcements, and optionally an embedded scheduler. `scheduler`, `advertise_ip` and
/// `vortex_tcp_port` are not TOML keys: `hawker serve` fills them from the `[scheduler]` table
/// and its `--scheduler`, `--advertise-addr` and `--vortex-listen` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlPlaneConfig {
    /// Run a scheduler in this process (the single-host default). `None` when the seed
    /// announces itself to `remote_schedulers` instead.
    #[serde(skip)]
    pub scheduler: Option<SchedulerConfig>,
    /// Schedulers (`IP:PORT`) this seed announces itself to (fleet mode).
    pub remote_schedulers: Vec<SocketAddr>,
    /// gRPC listen address of `dfdaemon.v2.DfdaemonUpload` (children's SyncPieces) and health.
    /// Default `0.0.0.0:4010` (dfdaemon's own upload port is 4000: both fit on one host).
    pub upload_listen: SocketAddr,
    /// The IP children use to reach this host (gRPC upload and Vortex): an IP literal, not
    /// `0.0.0.0`. Default `127.0.0.1` (single-host setups only).
    #[serde(skip)]
    pub advertise_ip: IpAddr,
    /// Host name of this seed; with `advertise_ip` it makes the host id `{ip}-{hostname}-seed`.
    /// Default: the `HOSTNAME` environment variable, else the kernel's host name, else `hawker`.
    pub hostname: String,
    /// TCP port of the data plane's Vortex listener, sent to children in SyncPieces. Default 4005.
    #[serde(skip)]
    pub vortex_tcp_port: u16,
    /// Period of this seed's host announcements. Default 30000.
    pub announce_interval_ms: u64,
    /// Tokio worker threads of the control plane (it runs beside the data plane's cores).
    /// 1 or 2. Default 2.
    pub worker_threads: usize,
    /// SyncPieces: interested piece numbers accepted per request. Default 1048576.
    pub max_interested_pieces: usize,
    /// SyncPieces: wait for an unknown task to appear before NOT_FOUND. Default 30000.
    pub sync_task_wait_ms: u64,
    /// SyncPieces: end the call after this long without a new piece. Default 300000.
    pub sync_idle_timeout_ms: u64,
    /// SyncPieces: store poll period when the store has no change signal. Default 200.
    pub sync_poll_interval_ms: u64,
    /// Concurrent SyncPieces/SyncHost calls. Default 4096.
    pub max_upload_streams: usize,
    /// After shutdown is asked, how long open upload calls may take to finish. Default 5000.
    pub shutdown_grace_ms: u64,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        let u = UploadLimits::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4005);
        ControlPlaneConfig {
            scheduler: Some(SchedulerConfig::default()),
            remote_schedulers: Vec::new(),
            upload_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 4010),
            advertise_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            hostname: default_hostname(),
            vortex_tcp_port: u.vortex_tcp_port,
            announce_interval_ms: 30_000,
            worker_threads: 2,
            max_interested_pieces: u.max_interested_pieces,
            sync_task_wait_ms: u.task_wait_ms,
            sync_idle_timeout_ms: u.idle_timeout_ms,
            sync_poll_interval_ms: u.poll_interval_ms,
            max_upload_streams: u.max_streams,
            shutdown_grace_ms: 5_000,
        }
    }
}

/// `HOSTNAME`, else `/proc/sys/kernel/hostname`, else `hawker`.
fn default_hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hawker".into())
}

impl ControlPlaneConfig {
    /// The upload service's limits.
    pub fn upload_limits(&self) -> UploadLimits {
        UploadLimits {
            download_ip: self.advertise_ip,
            vortex_tcp_port: self.vortex_tcp_port,
            max_interested_pieces: self.max_interested_pieces,
            task_wait_ms: self.sync_task_wait_ms,
            idle_timeout_ms: self.sync_idle_timeout_ms,
            poll_interval_ms: self.sync_poll_interval_ms,
            sync_host_interval_ms: 10_000,
            max_streams: self.max_upload_streams,
            ..UploadLimits::new(self.advertise_ip, self.vortex_tcp_port)
        }
    }

    /// Rejects values the control plane cannot run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(s) = &self.scheduler {
            s.validate()?;
        }
        if self.advertise_ip.is_unspecified() {
            return Err(ConfigError(
                "control.advertise_ip must be the address children reach, not 0.0.0.0/::".into(),
            ));
        }
        if !(1..=2).contains(&self.worker_threads) {
            return Err(ConfigError("control.worker_threads must be 1 or 2".into()));
        }
        if self.hostname.is_empty() {
            return Err(ConfigError("control.hostname must not be empty".into()));
        }
        for (name, v) in [
            ("announce_interval_ms", self.announce_interval_ms),
            ("sync_poll_interval_ms", self.sync_poll_interval_ms),
            ("sync_idle_timeout_ms", self.sync_idle_timeout_ms),
            ("max_upload_streams", self.max_upload_streams as u64),
            ("max_interested_pieces", self.max_interested_pieces as u64),
        ] {
            if v == 0 {
                return Err(ConfigError(format!("control.{name} must be > 0")));
            }
        }
        if self.scheduler.is_none() && self.remote_schedulers.is_empty() {
            return Err(ConfigError(
                "control: no embedded scheduler and no remote_schedulers: nobody would schedule"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The admin HTTP endpoint (`/metrics`, `/hosts`, `/tasks`, `/peers`, `/healthz`). TOML table
/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// HTTP/1.1 listen address. Default `0.0.0.0:4090`.
    pub listen: SocketAddr,
    /// Connections served at once; more are closed at accept. Default 64.
    pub max_connections: usize,
    /// Bytes of one request head (request line + headers); bigger requests get 431. Default 8192.
    pub max_header_bytes: usize,
    /// A request head must arrive within this long, and the answer be written within it.
    /// Default 5000.
    pub request_timeout_ms: u64,
    /// Entries listed by `/hosts`, `/tasks` and `/peers` (the first, sorted by id). Default 1000.
    pub max_listed: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 4090),
            max_connections: 64,
            max_header_bytes: 8192,
            request_timeout_ms: 5_000,
            max_listed: 1000,
        }
    }
}

impl AdminConfig {
    /// Rejects zero bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("max_connections", self.max_connections as u64),
            ("max_header_bytes", self.max_header_bytes as u64),
            ("request_timeout_ms", self.request_timeout_ms),
            ("max_listed", self.max_listed as u64),
        ] {
            if v == 0 {
                return Err(ConfigError(format!("admin.{name} must be > 0")));
            }
        }
        Ok(())
    }
}

/// The data plane's settings in a config file (TOML table `[serve]`): each key is the
/// `hawker serve` flag of the same name (`--data-dir` is `data_dir`), flags win over the file,
/// and a missing key keeps the flag's default. `freebind = false` is `--no-freebind`,
/// `control_plane = false` is `--no-control-plane`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeFileConfig {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--vortex-listen`.
    pub vortex_listen: Option<SocketAddr>,
    /// `--http-listen`.
    pub http_listen: Option<SocketAddr>,
    /// `--cores`, e.g. `"2-15"`.
    pub cores: Option<String>,
    /// `--send-mode`: auto, copy, zerocopy or sendfile.
    pub send_mode: Option<String>,
    /// `--max-connections-per-core`.
    pub max_connections_per_core: Option<u32>,
    /// `--send-chunk-bytes`.
    pub send_chunk_bytes: Option<u32>,
    /// `--sendfile-chunk-bytes`.
    pub sendfile_chunk_bytes: Option<u32>,
    /// `--zerocopy-inflight-bytes`.
    pub zerocopy_inflight_bytes: Option<u64>,
    /// `--idle-timeout-ms`.
    pub idle_timeout_ms: Option<u64>,
    /// `--request-timeout-ms`.
    pub request_timeout_ms: Option<u64>,
    /// `--send-stall-timeout-ms`.
    pub send_stall_timeout_ms: Option<u64>,
    /// `--drain-grace-ms`.
    pub drain_grace_ms: Option<u64>,
    /// `--drain-timeout-ms`.
    pub drain_timeout_ms: Option<u64>,
    /// `--tcp-max-segment`.
    pub tcp_max_segment: Option<u32>,
    /// `false` = `--no-freebind`.
    pub freebind: Option<bool>,
    /// `--advertise-addr`.
    pub advertise_addr: Option<IpAddr>,
    /// `--socket-send-buffer-bytes`.
    pub socket_send_buffer_bytes: Option<u32>,
    /// `--tcp-notsent-lowat-bytes`.
    pub tcp_notsent_lowat_bytes: Option<u32>,
    /// `--tcp-congestion`: a name from `net.ipv4.tcp_available_congestion_control`, or `"host"`.
    pub tcp_congestion: Option<String>,
    /// `--max-active-body-bytes-per-core` (default: derived from `net.ipv4.tcp_mem`).
    pub max_active_body_bytes_per_core: Option<u64>,
    /// `--admission-order`: global or core.
    pub admission_order: Option<String>,
    /// `--ring-entries`.
    pub ring_entries: Option<u32>,
    /// `--quick-verify`.
    pub quick_verify: Option<bool>,
    /// `false` = `--no-control-plane`.
    pub control_plane: Option<bool>,
}

/// A `hawker` config file (`--config FILE`, TOML). Every table is optional; see
/// `tuning/hawker.example.toml` for every key with its default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// `[serve]`: the data plane (and the flags of `hawker serve`).
    pub serve: ServeFileConfig,
    /// `[control]`: the seed's upload service and announcements.
    pub control: ControlPlaneConfig,
    /// `[scheduler]`: `hawker scheduler`, and the scheduler embedded in `hawker serve`.
    pub scheduler: SchedulerConfig,
    /// `[origin]`: seeding from origin.
    pub origin: OriginConfig,
    /// `[admin]`: the admin HTTP endpoint.
    pub admin: AdminConfig,
}

impl FileConfig {
    /// Reads and parses `path`; the error names the file and the offending key.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        let cfg: FileConfig =
            toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Ok(cfg)
    }

    /// Validates the tables that have their own rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.scheduler.validate()?;
        self.origin.validate().map_err(ConfigError)?;
        self.admin.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_toml_overrides() {
        ControlPlaneConfig::default()
            .validate()
            .expect("defaults are valid");
        let c: FileConfig = toml::from_str(
            "[serve]\nadvertise_addr = \"10.0.0.2\"\nvortex_listen = \"0.0.0.0:4105\"\n[control]\nupload_listen = \"0.0.0.0:4111\"\n[scheduler]\nlisten = \"127.0.0.1:9002\"\nseeds_per_task = 2\n[origin]\npiece_attempts = 3\n[admin]\nlisten = \"127.0.0.1:1\"\n",
        )
        .expect("parse");
        c.validate().expect("valid");
        assert_eq!(c.scheduler.seeds_per_task, 2);
        assert_eq!(c.control.upload_listen.port(), 4111);
        assert_eq!(c.serve.vortex_listen.map(|a| a.port()), Some(4105));
        assert_eq!(c.origin.piece_attempts, 3);
        assert!(toml::from_str::<ControlPlaneConfig>("no_such_key = 1").is_err());
        assert!(toml::from_str::<FileConfig>("[control]\nadvertise_ip = \"1.2.3.4\"").is_err());
        assert!(toml::from_str::<FileConfig>("[serve]\nnope = 1").is_err());
        let bad: FileConfig = toml::from_str("[scheduler]\nseeds_per_task = 0").expect("parse");
        assert!(bad.validate().is_err());
        let bad = ControlPlaneConfig {
            advertise_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ..ControlPlaneConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
