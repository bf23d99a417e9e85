//! The command line of dp-bench: flags, their defaults and bounds, and their translation into
//! a workload, an engine configuration and the reported [`RunInfo`].
//!
//! Defaults: 16 connections, one thread per core, 15 s (when neither `--duration` nor
//! `--requests` is given), closed loop, uniform distribution, seed 1, 30 s request timeout,
//! 5 s connect timeout, verification on.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use hawker_shared::TaskId;

use crate::client::http::{HttpStyle, HttpTarget};
use crate::engine::{EngineConfig, Target, MAX_CONCURRENCY};
use crate::report::RunInfo;
use crate::units::parse_duration;
use crate::workload::{self, Dist, TaskSpec, Workload};

/// The default run length when neither `--duration` nor `--requests` is given, in seconds.
pub const DEFAULT_DURATION_S: u64 = 15;

/// dp-bench: load generator for Vortex and HTTP piece servers (hawker, dfdaemon, nginx...).
///
/// Every piece is verified (length and crc32) unless --no-verify. A run with any error says
/// so on the first line of its summary and exits with status 1.
#[derive(Debug, Parser)]
#[command(name = "dp-bench", version, about, long_about = None)]
pub struct Args {
    /// Load a Vortex (Dragonfly TCP piece protocol) server at HOST:PORT.
    #[arg(
        long,
        value_name = "ADDR",
        conflicts_with = "http",
        required_unless_present = "http"
    )]
    pub vortex: Option<String>,

    /// Load an HTTP/1.1 server at http://HOST[:PORT][/BASE].
    #[arg(long, value_name = "URL-BASE")]
    pub http: Option<String>,

    /// HTTP URL style: hawker piece URLs (/tasks/{id}/pieces/{n}) or whole files with Range.
    #[arg(long, value_enum, default_value = "hawker", value_name = "STYLE")]
    pub http_style: StyleArg,

    /// Range style: the file path under URL-BASE, {id} is replaced by the task id.
    #[arg(long, default_value = "/{id}", value_name = "TEMPLATE")]
    pub http_path_template: String,

    /// Read the tasks from a hawker data dir's metadata.
    #[arg(long, value_name = "DIR", group = "tasks", required_unless_present_any = ["tasks_file", "task"])]
    pub tasks_from_dir: Option<PathBuf>,

    /// Read the tasks from a list: `task_id content_length [piece_length|-] [crc32:D,crc32:D,..]`.
    #[arg(long, value_name = "FILE", group = "tasks")]
    pub tasks_file: Option<PathBuf>,

    /// Load one task (with --content-length).
    #[arg(long, value_name = "ID", group = "tasks", requires = "content_length")]
    pub task: Option<String>,

    /// --task only: its content length in bytes.
    #[arg(long, value_name = "BYTES", requires = "task")]
    pub content_length: Option<u64>,

    /// --task only: its piece length in bytes (default: Dragonfly's rule, 4 MiB..64 MiB).
    #[arg(long, value_name = "BYTES", requires = "task")]
    pub piece_length: Option<u64>,

    /// How requests choose pieces.
    #[arg(long, value_enum, default_value = "uniform")]
    pub dist: DistArg,

    /// Zipf exponent (with --dist zipf), in (0, 10].
    #[arg(long, default_value_t = 1.0, value_name = "S")]
    pub zipf_s: f64,

    /// Seed of the piece choices (same seed, connections and tasks: same requests).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Connections, each with one request in flight.
    #[arg(long, short = 'c', default_value_t = 16, value_name = "N")]
    pub concurrency: usize,

    /// Worker threads (default: one per core).
    #[arg(long, short = 't', value_name = "T")]
    pub threads: Option<usize>,

    /// Run length (`15s`, `2m`); no request starts after it. Default 15s without --requests.
    #[arg(long, short = 'd', value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,

    /// Stop after this many requests in total (successes and failures).
    #[arg(long, short = 'n', value_name = "N")]
    pub requests: Option<u64>,

    /// Open loop: requests per second over all connections; latency from intended start.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,

    /// Bound on one request, connect included.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Bound on opening one TCP connection.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// Do not verify lengths and digests; only count bytes.
    #[arg(long)]
    pub no_verify: bool,

    /// Write every figure, the configuration and the per-second series as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write a picture of throughput and latency over time.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,

    /// Report this process's CPU time over the run and its peak RSS (the server); repeat it
    /// for a server of several processes (nginx workers): figures are summed.
    #[arg(long, value_name = "PID")]
    pub server_pid: Vec<u32>,

    /// No live progress line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `--http-style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StyleArg {
    /// GET /tasks/{id}/pieces/{n}, 200, X-Hawker-Piece-Digest.
    Hawker,
    /// GET <template> with Range: bytes=a-b, 206.
    Range,
}

/// `--dist`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DistArg {
    /// Every piece equally likely.
    Uniform,
    /// Rank r drawn with probability proportional to 1/r^s.
    Zipf,
}

/// Everything a run needs, built from [`Args`].
pub struct Plan {
    /// The engine's configuration.
    pub engine: EngineConfig,
    /// The workload.
    pub workload: Arc<Workload>,
    /// The configuration as reported.
    pub info: RunInfo,
}

fn resolve(host_port: &str, default_port: u16) -> Result<SocketAddr, String> {
    let has_port = match host_port.rfind(':') {
        Some(i) => !host_port[i..].contains(']'),
        None => false,
    };
    let with_port = if has_port {
        host_port.to_string()
    } else {
        format!("{host_port}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host_port:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host_port:?} resolves to no address"))
}

/// Splits `http://AUTHORITY/PATH` into (authority, path).
pub fn split_http_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("--http {url:?} must start with http:// (https is not supported)")
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(format!("--http {url:?} has no host"));
    }
    if path.contains('?') || path.contains('#') {
        return Err(format!(
            "--http {url:?}: a base URL has no query or fragment"
        ));
    }
    Ok((authority.to_string(), path.to_string()))
}

fn load_tasks(args: &Args) -> Result<(Vec<TaskSpec>, String), String> {
    if let Some(path) = &args.tasks_file {
        let tasks = workload::read_task_file(path)?;
        return Ok((tasks, format!("tasks file {}", path.display())));
    }
    if let Some(id) = &args.task {
        let id = TaskId::parse(id.as_bytes())
            .map_err(|e| format!("--task {id:?}: {e} (want 64 lower-case hex digits)"))?;
        let content_length = args.content_length.ok_or("--task needs --content-length")?;
        let task = TaskSpec::new(id, content_length, args.piece_length, None)?;
        return Ok((vec![task], "--task".into()));
    }
    if let Some(dir) = &args.tasks_from_dir {
        let tasks = crate::datadir::read_tasks(dir)?;
        return Ok((tasks, format!("data dir {}", dir.display())));
    }
    Err("give --tasks-file, --task or --tasks-from-dir".into())
}

impl Args {
    /// Builds the plan, checking every flag and bound.
    pub fn plan(&self) -> Result<Plan, String> {
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(format!(
                "--concurrency {} is outside 1..={MAX_CONCURRENCY}",
                self.concurrency
            ));
        }
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .min(self.concurrency);
        let duration = match (self.duration, self.requests) {
            (None, None) => Some(Duration::from_secs(DEFAULT_DURATION_S)),
            (d, _) => d,
        };
        let (target, protocol, target_text, style, template) = match (&self.vortex, &self.http) {
            (Some(addr), None) => (
                Target::Vortex {
                    addr: resolve(addr, 4005)?,
                },
                "vortex",
                addr.clone(),
                None,
                None,
            ),
            (None, Some(url)) => {
                let (authority, path) = split_http_url(url)?;
                let style = match self.http_style {
                    StyleArg::Hawker => HttpStyle::Hawker,
                    StyleArg::Range => HttpStyle::Range,
                };
                let http = HttpTarget::new(&authority, &path, style, &self.http_path_template)?;
                let template = (style == HttpStyle::Range).then(|| self.http_path_template.clone());
                (
                    Target::Http {
                        addr: resolve(&authority, 80)?,
                        http,
                    },
                    "http",
                    url.clone(),
                    Some(format!("{style:?}").to_lowercase()),
                    template,
                )
            }
            _ => return Err("give exactly one of --vortex and --http".into()),
        };
        let addr = match &target {
            Target::Vortex { addr } | Target::Http { addr, .. } => addr.to_string(),
        };
        let dist = match self.dist {
            DistArg::Uniform => Dist::Uniform,
            DistArg::Zipf => Dist::Zipf { s: self.zipf_s },
        };
        let (tasks, tasks_source) = load_tasks(self)?;
        let workload = Arc::new(Workload::new(tasks, dist, self.seed)?);
        let engine = EngineConfig {
            target,
            concurrency: self.concurrency,
            threads,
            duration,
            requests: self.requests,
            rate_per_s: self.rate,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            verify: !self.no_verify,
        };
        engine.validate()?;
        let info = RunInfo {
            protocol: protocol.into(),
            target: target_text,
            addr,
            http_style: style,
            http_path_template: template,
            tasks_source,
            tasks: workload.tasks().len(),
            pieces_total: workload.total_pieces(),
            workload_mean_piece_bytes: workload.mean_piece_bytes(),
            dist: match dist {
                Dist::Uniform => "uniform".into(),
                Dist::Zipf { .. } => "zipf".into(),
            },
            zipf_s: matches!(dist, Dist::Zipf { .. }).then_some(self.zipf_s),
            seed: self.seed,
            concurrency: self.concurrency,
            threads,
            duration_s: duration.map(|d| d.as_secs_f64()),
            requests: self.requests,
            rate_per_s: self.rate,
            timeout_s: self.timeout.as_secs_f64(),
            connect_timeout_s: self.connect_timeout.as_secs_f64(),
            verify: !self.no_verify,
        };
        Ok(Plan {
            engine,
            workload,
            info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<Args, clap::Error> {
        let id = format!("{:064x}", 5);
        let mut argv = vec!["dp-bench", "--task", &id, "--content-length", "10000000"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)
    }

    #[test]
    fn flags_build_a_plan() {
        let a = args(&[
            "--vortex",
            "127.0.0.1:4005",
            "-c",
            "4",
            "-t",
            "8",
            "-n",
            "100",
        ])
        .unwrap();
        let plan = a.plan().unwrap();
        assert_eq!(
            plan.engine.threads, 4,
            "threads are capped at the connections"
        );
        assert_eq!(plan.engine.duration, None);
        assert_eq!(plan.engine.requests, Some(100));
        assert_eq!(plan.info.pieces_total, 3);
        let a = args(&["--vortex", "127.0.0.1:4005"]).unwrap();
        assert_eq!(
            a.plan().unwrap().engine.duration,
            Some(Duration::from_secs(15))
        );
        let a = args(&[
            "--http",
            "http://127.0.0.1:8080/base",
            "--http-style",
            "range",
            "--http-path-template",
            "/files/{id}",
            "--rate",
            "100",
            "--dist",
            "zipf",
        ])
        .unwrap();
        let plan = a.plan().unwrap();
        assert_eq!(plan.info.http_style.as_deref(), Some("range"));
        assert_eq!(plan.info.zipf_s, Some(1.0));
        assert_eq!(plan.engine.rate_per_s, Some(100.0));
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(args(&[]).is_err(), "a target is required");
        assert!(args(&["--vortex", "a:1", "--http", "http://a"]).is_err());
        assert!(Args::try_parse_from(["dp-bench", "--vortex", "127.0.0.1:1"]).is_err());
        let plan = |extra: &[&str]| args(extra).unwrap().plan();
        assert!(plan(&["--vortex", "127.0.0.1:1", "-c", "0"]).is_err());
        assert!(plan(&["--vortex", "127.0.0.1:1", "-c", "10001"]).is_err());
        assert!(plan(&["--vortex", "127.0.0.1:1", "--rate", "0"]).is_err());
        assert!(plan(&["--http", "https://x", "-n", "1"]).is_err());
        assert!(plan(&[
            "--http",
            "http://127.0.0.1:1",
            "--http-style",
            "range",
            "--http-path-template",
            "/nothing"
        ])
        .is_err());
    }

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            split_http_url("http://h:80/a/b").unwrap(),
            ("h:80".into(), "/a/b".into())
        );
        assert_eq!(split_http_url("http://h").unwrap(), ("h".into(), "".into()));
        assert!(split_http_url("http:///x").is_err());
        assert!(split_http_url("http://h/?q").is_err());
        assert_eq!(resolve("127.0.0.1", 80).unwrap().port(), 80);
        assert_eq!(resolve("[::1]:81", 80).unwrap().port(), 81);
        assert_eq!(resolve("[::1]", 80).unwrap().port(), 80);
    }
}
