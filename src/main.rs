//! `hawker`: the seed/cache piece server. One binary, subcommands:
//!
//! - `hawker serve`: the data plane and the control plane (embedded scheduler, seed upload
//!   service, seeding from origin, admin endpoint) in one process; `--scheduler ADDR` makes it a
//!   seed of a fleet whose schedulers run apart; `--no-control-plane` serves the store only;
//! - `hawker scheduler`: Dragonfly's scheduler API alone (fleet mode);
//! - `hawker import`: add a local file to a data directory as a task, print its task id.
//!
//! Settings: flags, else the `--config` TOML file (every key in tuning/hawker.example.toml),
//! else the flag's default. Logs: `HAWKER_LOG` (filter, default `info`),
//! `HAWKER_LOG_FORMAT=json` for one JSON object per line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use hawker_control::node::{start_seed_node, SeedNodeConfig};
use hawker_control::FileConfig;
use hawker_dataplane::order::AdmissionOrder;
use hawker_dataplane::store::{self, Store, StoreWatcher, Verify};
use hawker_dataplane::{sys, SendMode, ServeConfig, Server};

#[derive(Parser)]
#[command(
    name = "hawker",
    version,
    about = "A thread-per-core io_uring piece server for datacenter content distribution"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the tasks of a data directory over Vortex and HTTP.
    Serve(Box<ServeArgs>),
    /// Add a local file to a data directory as a task and print its task id.
    Import(ImportArgs),
    /// Run Dragonfly's scheduler API alone (seeds join with `hawker serve --scheduler ADDR`).
    Scheduler(SchedulerArgs),
}

#[derive(Args)]
struct SchedulerArgs {
    /// gRPC listen address of scheduler.v2.Scheduler (dfdaemon's dynconfig `scheduler.addrs`).
    #[arg(long, default_value = "0.0.0.0:8002")]
    listen: SocketAddr,
    /// TOML config file (tables `[scheduler]` and `[admin]` are used); flags win over it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the admin HTTP endpoint (/metrics, /hosts, /tasks, /peers) listens.
    #[arg(long, default_value = "0.0.0.0:4090")]
    admin_listen: SocketAddr,
    /// Do not serve the admin endpoint.
    #[arg(long)]
    no_admin: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// The store: one content file and one metadata file per task.
    #[arg(long, default_value = "./hawker-data")]
    data_dir: PathBuf,
    /// Where Vortex (Dragonfly's TCP piece protocol) is served.
    #[arg(long, default_value = "0.0.0.0:4015")]
    vortex_listen: SocketAddr,
    /// Where HTTP/1.1 (pieces, ranges, /healthz, /metrics) is served.
    #[arg(long, default_value = "0.0.0.0:4080")]
    http_listen: SocketAddr,
    /// CPUs to serve on, one pinned thread each, e.g. `0-3,6`. Default: every allowed CPU.
    #[arg(long)]
    cores: Option<String>,
    /// How piece bodies are sent: auto, copy, zerocopy (IORING_OP_SEND_ZC) or sendfile.
    #[arg(long, default_value = "auto")]
    send_mode: SendMode,
    /// Open connections per core; more are closed at once.
    #[arg(long, default_value_t = 4096)]
    max_connections_per_core: u32,
    /// Body bytes per send operation: the unit of round-robin between connections.
    #[arg(long, default_value_t = 256 * 1024)]
    send_chunk_bytes: u32,
    /// Body bytes per sendfile(2) call in the sendfile and auto modes.
    #[arg(long, default_value_t = 1024 * 1024)]
    sendfile_chunk_bytes: u32,
    /// Zero-copy bytes in flight per core wanted; bounded by RLIMIT_MEMLOCK at start-up.
    #[arg(long, default_value_t = 64 << 20)]
    zerocopy_inflight_bytes: u64,
    /// Close a keep-alive connection idle for this long.
    #[arg(long, default_value_t = 60_000)]
    idle_timeout_ms: u64,
    /// A request must arrive in full within this long of its first byte.
    #[arg(long, default_value_t = 10_000)]
    request_timeout_ms: u64,
    /// Abort a response that makes no progress for this long.
    #[arg(long, default_value_t = 30_000)]
    send_stall_timeout_ms: u64,
    /// After SIGTERM, keep taking work for this long (with /healthz already 503) before the
    /// Vortex listener closes and HTTP answers only /healthz and /metrics.
    #[arg(long, default_value_t = 0)]
    drain_grace_ms: u64,
    /// Then let in-flight responses finish for at most this long.
    #[arg(long, default_value_t = 30_000)]
    drain_timeout_ms: u64,
    /// TCP_MAXSEG for accepted connections (tunnelled DSR paths), e.g. 1440 for IPIP.
    #[arg(long)]
    tcp_max_segment: Option<u32>,
    /// Refuse to bind an address that is not on this host (disables IP_FREEBIND).
    #[arg(long)]
    no_freebind: bool,
    /// The IP schedulers give to peers (candidate parents, SyncPieces). Default: the Vortex
    /// listen IP; when that is 0.0.0.0, the host's first non-loopback IPv4, else 127.0.0.1.
    #[arg(long)]
    advertise_addr: Option<IpAddr>,
    /// SO_SNDBUF for accepted sockets (default: the kernel's autotuning).
    #[arg(long)]
    socket_send_buffer_bytes: Option<u32>,
    /// TCP_NOTSENT_LOWAT for accepted sockets: unsent bytes a connection may queue in the
    /// kernel (0: the host's net.ipv4.tcp_notsent_lowat).
    #[arg(long, default_value_t = 2 << 20)]
    tcp_notsent_lowat_bytes: u32,
    /// TCP congestion control for accepted sockets, from
    /// net.ipv4.tcp_available_congestion_control, or `host` for the host's default. Default:
    /// cubic where the kernel has it (BBR paces hawker's one-piece bursts too slowly; see
    /// docs/decisions/0003).
    #[arg(long)]
    tcp_congestion: Option<String>,
    /// Body bytes each core sends at once; further responses wait their turn, first come first
    /// served (0: no limit). Default: an eighth of net.ipv4.tcp_mem[0] shared among the cores.
    #[arg(long)]
    max_active_body_bytes_per_core: Option<u64>,
    /// Order of response bodies: `global` (first come, first served across all cores, each core
    /// at most 64 requests ahead of the oldest waiting anywhere) or `core` (each core alone).
    #[arg(long, default_value = "global")]
    admission_order: AdmissionOrder,
    /// Entries in each core's io_uring submission queue.
    #[arg(long, default_value_t = 1024)]
    ring_entries: u32,
    /// Check only lengths and metadata of stored tasks at start, not every piece's crc32.
    #[arg(long)]
    quick_verify: bool,
    /// TOML config file (see tuning/hawker.example.toml); flags win over it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve the data plane only: no scheduler, no SyncPieces, no seeding from origin.
    #[arg(long)]
    no_control_plane: bool,
    /// gRPC listen address of the embedded scheduler (dfdaemon's dynconfig `scheduler.addrs`).
    #[arg(long, default_value = "0.0.0.0:8002")]
    scheduler_listen: SocketAddr,
    /// gRPC listen address of the seed's DfdaemonUpload service (children's SyncPieces).
    #[arg(long, default_value = "0.0.0.0:4010")]
    upload_listen: SocketAddr,
    /// Where the admin HTTP endpoint (/metrics, /hosts, /tasks, /peers) listens.
    #[arg(long, default_value = "0.0.0.0:4090")]
    admin_listen: SocketAddr,
    /// Fleet mode: run no scheduler here; announce this seed to this scheduler (repeatable).
    #[arg(long = "scheduler", value_name = "ADDR")]
    schedulers: Vec<SocketAddr>,
}

#[derive(Args)]
struct ImportArgs {
    /// The store to add the task to (a server may be running on it).
    #[arg(long, default_value = "./hawker-data")]
    data_dir: PathBuf,
    /// The URL the content is known by: the task id is derived from it the Dragonfly way.
    /// Without it the task id is the sha256 of the content.
    #[arg(long)]
    url: Option<String>,
    /// The file to import.
    file: PathBuf,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HAWKER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("HAWKER_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let sub = |name: &str| {
        matches
            .subcommand_matches(name)
            .cloned()
            .unwrap_or_default()
    };
    let result = match cli.cmd {
        Cmd::Serve(a) => serve(*a, &sub("serve")),
        Cmd::Import(a) => import(a),
        Cmd::Scheduler(a) => scheduler(a, &sub("scheduler")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hawker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn import(a: ImportArgs) -> Result<()> {
    let meta = store::import_file(&a.data_dir, &a.file, a.url.as_deref())
        .with_context(|| format!("cannot import {}", a.file.display()))?;
    println!("{}", meta.id);
    Ok(())
}

/// Was flag `id` given on the command line (rather than defaulted)?
fn given(m: &ArgMatches, id: &str) -> bool {
    matches!(m.value_source(id), Some(ValueSource::CommandLine))
}

fn load_config(path: Option<&PathBuf>) -> Result<FileConfig> {
    let cfg = match path {
        Some(p) => FileConfig::load(p).map_err(anyhow::Error::msg)?,
        None => FileConfig::default(),
    };
    cfg.validate().map_err(anyhow::Error::msg)?;
    Ok(cfg)
}

/// Fills the flags not given on the command line from the file's `[serve]` table.
fn apply_file(
    a: &mut ServeArgs,
    f: &hawker_control::config::ServeFileConfig,
    m: &ArgMatches,
) -> Result<()> {
    macro_rules! take {
        ($($field:ident),*) => {$(
            if !given(m, stringify!($field)) {
                if let Some(v) = f.$field.clone() {
                    a.$field = v;
                }
            }
        )*};
    }
    take!(
        data_dir,
        vortex_listen,
        http_listen,
        max_connections_per_core,
        send_chunk_bytes,
        sendfile_chunk_bytes,
        tcp_notsent_lowat_bytes,
        zerocopy_inflight_bytes,
        idle_timeout_ms,
        request_timeout_ms,
        send_stall_timeout_ms,
        drain_grace_ms,
        drain_timeout_ms,
        ring_entries,
        quick_verify
    );
    macro_rules! take_opt {
        ($($field:ident),*) => {$(
            if !given(m, stringify!($field)) && f.$field.is_some() {
                a.$field = f.$field.clone();
            }
        )*};
    }
    take_opt!(
        cores,
        tcp_max_segment,
        advertise_addr,
        socket_send_buffer_bytes,
        tcp_congestion,
        max_active_body_bytes_per_core
    );
    if !given(m, "admission_order") {
        if let Some(order) = &f.admission_order {
            a.admission_order = order
                .parse()
                .map_err(|e| anyhow::anyhow!("config [serve] admission_order: {e}"))?;
        }
    }
    if !given(m, "send_mode") {
        if let Some(mode) = &f.send_mode {
            a.send_mode = mode
                .parse()
                .map_err(|e| anyhow::anyhow!("config [serve] send_mode: {e}"))?;
        }
    }
    if !given(m, "no_freebind") {
        if let Some(v) = f.freebind {
            a.no_freebind = !v;
        }
    }
    if !given(m, "no_control_plane") {
        if let Some(v) = f.control_plane {
            a.no_control_plane = !v;
        }
    }
    Ok(())
}

/// The IP peers are told: `--advertise-addr`, else the Vortex listen IP, else the host's first
/// non-loopback IPv4, else 127.0.0.1.
fn advertise_ip(a: &ServeArgs) -> IpAddr {
    if let Some(ip) = a.advertise_addr {
        return ip;
    }
    let listen = a.vortex_listen.ip();
    if !listen.is_unspecified() {
        return listen;
    }
    let found = nix::ifaddrs::getifaddrs().ok().and_then(|addrs| {
        addrs
            .filter(|i| {
                !i.flags
                    .contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK)
            })
            .filter_map(|i| i.address?.as_sockaddr_in().map(|s| s.ip()))
            .find(|ip| !ip.is_loopback() && !ip.is_unspecified())
    });
    let ip = IpAddr::V4(found.unwrap_or(Ipv4Addr::LOCALHOST));
    tracing::info!(
        %ip,
        "advertising {ip} to peers (no --advertise-addr; the listen address is 0.0.0.0): pass --advertise-addr if children reach this host by another address"
    );
    ip
}

fn scheduler(a: SchedulerArgs, m: &ArgMatches) -> Result<()> {
    let file = load_config(a.config.as_ref())?;
    let mut cfg = file.scheduler;
    if given(m, "listen") || a.config.is_none() {
        cfg.listen = a.listen;
    }
    let mut admin = file.admin;
    if given(m, "admin_listen") || a.config.is_none() {
        admin.listen = a.admin_listen;
    }
    let admin = (!a.no_admin).then_some(admin);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hawker-scheduler")
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!("cannot watch SIGTERM: {e}");
                        std::future::pending::<()>().await;
                        return;
                    }
                };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            }
        };
        hawker_control::run_scheduler_with_admin(cfg, admin, shutdown)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "{e} (change --listen / --admin-listen or [scheduler] listen / [admin] listen)"
                )
            })
    })?;
    tracing::info!("scheduler stopped");
    Ok(())
}

fn serve(mut a: ServeArgs, m: &ArgMatches) -> Result<()> {
    let file = load_config(a.config.as_ref())?;
    apply_file(&mut a, &file.serve, m)?;
    let cores = match &a.cores {
        Some(list) => sys::parse_cpu_list(list).map_err(anyhow::Error::msg)?,
        None => sys::allowed_cpus(),
    };
    let allowed = sys::allowed_cpus();
    if let Some(c) = cores.iter().find(|c| !allowed.contains(c)) {
        bail!("--cores names CPU {c}, which this process may not run on (allowed: {allowed:?})");
    }
    let mut cfg = ServeConfig::new(a.vortex_listen, a.http_listen, cores.clone());
    cfg.send_mode = a.send_mode;
    cfg.max_connections_per_core = a.max_connections_per_core;
    cfg.send_chunk_bytes = a.send_chunk_bytes;
    cfg.sendfile_chunk_bytes = a.sendfile_chunk_bytes;
    cfg.idle_timeout = Duration::from_millis(a.idle_timeout_ms);
    cfg.request_timeout = Duration::from_millis(a.request_timeout_ms);
    cfg.send_stall_timeout = Duration::from_millis(a.send_stall_timeout_ms);
    cfg.drain_grace = Duration::from_millis(a.drain_grace_ms);
    cfg.drain_timeout = Duration::from_millis(a.drain_timeout_ms);
    cfg.tcp_max_segment = a.tcp_max_segment;
    cfg.freebind = !a.no_freebind;
    cfg.ring_entries = a.ring_entries;
    cfg.socket_send_buffer_bytes = a.socket_send_buffer_bytes;
    cfg.admission_order = a.admission_order;
    cfg.tcp_notsent_lowat_bytes = a.tcp_notsent_lowat_bytes;
    match a.tcp_congestion.as_deref() {
        None => {} // the config's default: cubic where available
        Some("host") => cfg.tcp_congestion = None,
        Some(cc) => cfg.tcp_congestion = Some(cc.to_string()),
    }
    cfg.max_active_body_bytes_per_core = a
        .max_active_body_bytes_per_core
        .unwrap_or_else(|| hawker_dataplane::config::admission_budget_bytes(cores.len()));
    cfg.validate().map_err(anyhow::Error::msg)?;

    // Locked memory: every ring is charged to RLIMIT_MEMLOCK, and so is every zero-copy send
    // until its notification. Ask for what we want, then live within what we got.
    let n = cores.len() as u64;
    let rings = sys::ring_memlock_bytes(cfg.ring_entries) * n;
    let zc_wanted = if matches!(cfg.send_mode, SendMode::Copy | SendMode::Sendfile) {
        0
    } else {
        a.zerocopy_inflight_bytes
    };
    let memlock = sys::raise_memlock(rings + zc_wanted * n);
    let zc_budget = if memlock.unlimited {
        zc_wanted
    } else {
        if memlock.now_bytes < rings {
            bail!(
                "RLIMIT_MEMLOCK is {} KiB but {} rings of {} entries need about {} KiB: run `ulimit -l unlimited` (or LimitMEMLOCK=infinity in the systemd unit), or lower --ring-entries / --cores",
                memlock.now_bytes / 1024, n, cfg.ring_entries, rings / 1024
            );
        }
        ((memlock.now_bytes - rings) / n).min(zc_wanted)
    };
    cfg.zerocopy_inflight_bytes_per_core = zc_budget;
    let show = |b: u64| {
        if b == u64::MAX {
            "unlimited".to_string()
        } else {
            format!("{} KiB", b / 1024)
        }
    };
    tracing::info!(
        "memlock: found {}, now {}; rings take ~{} KiB; zero-copy budget {} KiB per core{}",
        show(memlock.found_bytes),
        show(memlock.now_bytes),
        rings / 1024,
        zc_budget / 1024,
        if cfg.send_mode == SendMode::Zerocopy && zc_budget == 0 {
            " (zerocopy mode will send by copy: raise the memlock limit)"
        } else {
            ""
        }
    );

    let verify = if a.quick_verify {
        Verify::Quick
    } else {
        Verify::Full
    };
    let store = Store::open(&a.data_dir, verify).map_err(anyhow::Error::msg)?;
    let tasks: Vec<_> = store.tasks().cloned().collect();
    tracing::info!(tasks = tasks.len(), dir = %a.data_dir.display(), "store opened");
    let watcher = StoreWatcher::new(&a.data_dir).map_err(anyhow::Error::msg)?;
    let store = Arc::new(Mutex::new(store));

    // Signals: blocked in every thread (the mask is inherited), taken by one waiting thread.
    let mut mask = nix::sys::signal::SigSet::empty();
    mask.add(nix::sys::signal::Signal::SIGTERM);
    mask.add(nix::sys::signal::Signal::SIGINT);
    mask.thread_block().context("cannot block SIGTERM/SIGINT")?;
    // SAFETY: setting SIGPIPE to ignored is async-signal-safe and process-wide by design.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };

    let server = Server::start(cfg.clone(), tasks).map_err(anyhow::Error::msg)?;
    let feeder = hawker_dataplane::feeder::Feeder::spawn(
        store.clone(),
        watcher,
        server.edge(),
        Duration::from_secs(1),
    )?;
    tracing::info!(
        vortex = %server.vortex_addr,
        http = %server.http_addr,
        cores = ?cores,
        send_mode = cfg.send_mode.as_str(),
        admission_budget_bytes_per_core = cfg.max_active_body_bytes_per_core,
        admission_order = cfg.admission_order.as_str(),
        tcp_congestion = cfg.tcp_congestion.as_deref().unwrap_or("host's"),
        host_tcp_congestion = %hawker_dataplane::config::host_tcp_congestion(),
        advertise = ?a.advertise_addr,
        "serving"
    );

    let shared = server.shared();
    let edge = server.edge();
    std::thread::Builder::new()
        .name("hawker-signals".into())
        .spawn(move || {
            if let Ok(sig) = mask.wait() {
                tracing::info!("{sig:?}: draining (healthz now 503)");
                shared.set_health(hawker_dataplane::metrics::Health::Draining);
                edge.broadcast(hawker_dataplane::edge::EdgeMsg::Drain);
            }
        })?;
    let node = if a.no_control_plane {
        tracing::info!("control plane off (--no-control-plane): serving the store only");
        None
    } else {
        let mut control = file.control.clone();
        control.advertise_ip = advertise_ip(&a);
        control.vortex_tcp_port = server.vortex_addr.port();
        if given(m, "upload_listen") || a.config.is_none() {
            control.upload_listen = a.upload_listen;
        }
        if !a.schedulers.is_empty() {
            control.remote_schedulers = a.schedulers.clone();
        }
        control.scheduler = if control.remote_schedulers.is_empty() {
            let mut s = file.scheduler.clone();
            if given(m, "scheduler_listen") || a.config.is_none() {
                s.listen = a.scheduler_listen;
            }
            Some(s)
        } else {
            None
        };
        let mut admin = file.admin.clone();
        if given(m, "admin_listen") || a.config.is_none() {
            admin.listen = a.admin_listen;
        }
        let cfg = SeedNodeConfig {
            control,
            origin: file.origin.clone(),
            admin: Some(admin),
        };
        match start_seed_node(cfg, store.clone(), server.edge()) {
            Ok(n) => Some(n),
            Err(e) => bail!(
                "control plane: {e} (move it with --scheduler-listen / --upload-listen / --admin-listen, or run the data plane alone with --no-control-plane)"
            ),
        }
    };
    if let Some(n) = &node {
        tracing::info!(
            scheduler = ?n.control.scheduler_addr,
            upload = %n.control.upload_addr,
            admin = ?n.admin_addr,
            host = %n.control.host.id,
            advertise = %n.control.host.ip,
            remote_schedulers = ?a.schedulers,
            "control plane serving"
        );
    }

    let result = server.join();
    if let Some(n) = node {
        tracing::info!("stopping the control plane");
        if let Err(e) = n.shutdown() {
            tracing::warn!("control plane stopped with: {e}");
        }
    }
    feeder.stop();
    match result {
        Ok(()) => {
            tracing::info!("drained; exiting");
            Ok(())
        }
        Err(e) => bail!("{e}"),
    }
}
