//! `hawker`: the seed/cache piece server. One binary, subcommands:
//!
//! - `hawker serve`: the data plane (and, with the control plane, everything) in one process;
//! - `hawker import`: add a local file to a data directory as a task, print its task id.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
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
    Serve(ServeArgs),
    /// Add a local file to a data directory as a task and print its task id.
    Import(ImportArgs),
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
    /// After SIGTERM, answer /healthz 503 for this long before the listeners close.
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
    /// The address schedulers should give to peers (defaults to the listen address).
    #[arg(long)]
    advertise_addr: Option<std::net::IpAddr>,
    /// SO_SNDBUF for accepted sockets (default: the kernel's autotuning).
    #[arg(long)]
    socket_send_buffer_bytes: Option<u32>,
    /// Turn fair pacing off: let every connection send as fast as its reader takes it.
    #[arg(long)]
    no_fair_pacing: bool,
    /// Entries in each core's io_uring submission queue.
    #[arg(long, default_value_t = 1024)]
    ring_entries: u32,
    /// Check only lengths and metadata of stored tasks at start, not every piece's crc32.
    #[arg(long)]
    quick_verify: bool,
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
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HAWKER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.cmd {
        Cmd::Serve(a) => serve(a),
        Cmd::Import(a) => import(a),
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

fn serve(a: ServeArgs) -> Result<()> {
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
    cfg.idle_timeout = Duration::from_millis(a.idle_timeout_ms);
    cfg.request_timeout = Duration::from_millis(a.request_timeout_ms);
    cfg.send_stall_timeout = Duration::from_millis(a.send_stall_timeout_ms);
    cfg.drain_grace = Duration::from_millis(a.drain_grace_ms);
    cfg.drain_timeout = Duration::from_millis(a.drain_timeout_ms);
    cfg.tcp_max_segment = a.tcp_max_segment;
    cfg.freebind = !a.no_freebind;
    cfg.ring_entries = a.ring_entries;
    cfg.socket_send_buffer_bytes = a.socket_send_buffer_bytes;
    cfg.fair_pacing = !a.no_fair_pacing;
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
    let result = server.join();
    feeder.stop();
    match result {
        Ok(()) => {
            tracing::info!("drained; exiting");
            Ok(())
        }
        Err(e) => bail!("{e}"),
    }
}
