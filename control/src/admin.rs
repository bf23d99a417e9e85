//! The control plane's admin endpoint: a tiny HTTP/1.1 responder (tokio + httparse) for
//! operators and tests, on its own port (`[admin] listen`, default `0.0.0.0:4090`).
//!
//! - `GET /metrics`: Prometheus text: `hawker_control_{hosts,tasks,peers}` gauges, the
//!   scheduler's counters (`hawker_scheduler_*`: calls, answers by kind incl. back-to-source,
//!   refusals, host announces, seeding orders) and seeding's (`hawker_seeding_*`: tasks
//!   started/completed/failed, pieces, bytes). The data plane's own metrics (pieces served)
//!   stay on its HTTP port.
//! - `GET /hosts`, `GET /tasks`, `GET /peers`: JSON arrays, sorted by id, at most `max_listed`
//!   entries each. `/tasks` lists, per piece, its state in this node's store (`landed`) and the
//!   peers that reported holding it; on a seed without an embedded scheduler it lists the store.
//! - `GET /healthz`: `ok`.
//!
//! Bounds: `max_connections` at once (more are closed at accept), a request head of at most
//! `max_header_bytes` (else 431), read and write each within `request_timeout_ms`; one request
//! per connection (`Connection: close`). Nothing a client sends can panic the server: the
//! head is parsed by httparse and only the path is used.

use crate::config::AdminConfig;
use crate::node::SeedingCounters;
use crate::proto::common::v2::Host;
use crate::scheduler::SchedulerCore;
use crate::seed::{PieceSource, TaskProgress};
use crate::ControlError;
use hawker_dataplane::store::Store;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the admin endpoint reports on. Every part is optional (`hawker scheduler` has no store).
#[derive(Default)]
pub struct AdminState {
    /// The scheduler in this process.
    pub scheduler: Option<Arc<SchedulerCore>>,
    /// Seeding counters.
    pub seeding: Option<Arc<SeedingCounters>>,
    /// This node's pieces (SyncPieces' view).
    pub source: Option<Arc<dyn PieceSource>>,
    /// This node's store (to list its tasks).
    pub store: Option<Arc<Mutex<Store>>>,
    /// This node's seed host record.
    pub host: Option<Host>,
}

/// Binds `addr` (blocking std listener, non-blocking mode) so a port in use is reported
/// before anything starts.
pub fn bind_std(addr: SocketAddr) -> Result<std::net::TcpListener, ControlError> {
    let l =
        std::net::TcpListener::bind(addr).map_err(|source| ControlError::Bind { addr, source })?;
    l.set_nonblocking(true)
        .map_err(|source| ControlError::Bind { addr, source })?;
    Ok(l)
}

/// Serves until `stop` becomes true.
pub async fn serve(
    cfg: AdminConfig,
    listener: TcpListener,
    state: Arc<AdminState>,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(cfg.max_connections));
    let cfg = Arc::new(cfg);
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("admin accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = async { let _ = stop.wait_for(|s| *s).await; } => return,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue; // over max_connections: dropped (closed) at once
        };
        let (cfg, state) = (cfg.clone(), state.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let timeout = Duration::from_millis(cfg.request_timeout_ms);
            let _ = tokio::time::timeout(timeout, connection(stream, &cfg, &state)).await;
        });
    }
}

async fn connection(mut stream: TcpStream, cfg: &AdminConfig, state: &AdminState) {
    let mut buf = vec![0u8; cfg.max_header_bytes];
    let mut filled = 0;
    let path = loop {
        if filled == buf.len() {
            let _ = respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request head too large\n",
                false,
            )
            .await;
            return;
        }
        let n = match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(_)) => {
                let method = req.method.unwrap_or("");
                if method != "GET" && method != "HEAD" {
                    let _ = respond(
                        &mut stream,
                        "405 Method Not Allowed",
                        "text/plain",
                        b"GET only\n",
                        false,
                    )
                    .await;
                    return;
                }
                let head = method == "HEAD";
                break (req.path.unwrap_or("/").to_string(), head);
            }
            Ok(httparse::Status::Partial) => continue,
            Err(_) => {
                let _ = respond(
                    &mut stream,
                    "400 Bad Request",
                    "text/plain",
                    b"bad request\n",
                    false,
                )
                .await;
                return;
            }
        }
    };
    let (path, head) = path;
    let route = path.split('?').next().unwrap_or("");
    let max = cfg.max_listed;
    let (status, kind, body) = match route {
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4",
            metrics(state).into_bytes(),
        ),
        "/hosts" => ("200 OK", "application/json", json(&hosts(state, max))),
        "/tasks" => ("200 OK", "application/json", json(&tasks(state, max))),
        "/peers" => ("200 OK", "application/json", json(&peers(state, max))),
        "/healthz" => ("200 OK", "text/plain", b"ok\n".to_vec()),
        _ => (
            "404 Not Found",
            "text/plain",
            b"try /metrics, /hosts, /tasks, /peers, /healthz\n".to_vec(),
        ),
    };
    let _ = respond(&mut stream, status, kind, &body, head).await;
}

fn json(v: &serde_json::Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_else(|_| b"null".to_vec());
    out.push(b'\n');
    out
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    kind: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    if !head_only {
        stream.write_all(body).await?;
    }
    stream.shutdown().await
}

/// The Prometheus text of `state`.
pub fn metrics(state: &AdminState) -> String {
    let mut out = String::new();
    let mut line = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    if let Some(core) = &state.scheduler {
        let (h, t, p) = core.lock().counts();
        line(
            "hawker_control_hosts",
            "gauge",
            "Hosts the scheduler knows.",
            &[("", h as u64)],
        );
        line(
            "hawker_control_tasks",
            "gauge",
            "Tasks the scheduler knows.",
            &[("", t as u64)],
        );
        line(
            "hawker_control_peers",
            "gauge",
            "Peers the scheduler knows.",
            &[("", p as u64)],
        );
        let c = &core.counters;
        line(
            "hawker_scheduler_announce_peer_calls_total",
            "counter",
            "AnnouncePeer calls accepted.",
            &[("", c.announce_calls.load(Relaxed))],
        );
        line(
            "hawker_scheduler_schedules_total",
            "counter",
            "Scheduling answers sent, by kind.",
            &[
                ("{kind=\"normal\"}", c.normal.load(Relaxed)),
                ("{kind=\"back_to_source\"}", c.back_to_source.load(Relaxed)),
                ("{kind=\"empty\"}", c.empty.load(Relaxed)),
                ("{kind=\"metadata_only\"}", c.metadata_only.load(Relaxed)),
            ],
        );
        line(
            "hawker_scheduler_back_to_source_total",
            "counter",
            "NeedBackToSource answers (children sent to the origin).",
            &[("", c.back_to_source.load(Relaxed))],
        );
        line(
            "hawker_scheduler_refused_total",
            "counter",
            "AnnouncePeer messages refused with an error status.",
            &[("", c.refused.load(Relaxed))],
        );
        line(
            "hawker_scheduler_host_announces_total",
            "counter",
            "AnnounceHost calls accepted.",
            &[("", c.host_announces.load(Relaxed))],
        );
        line(
            "hawker_scheduler_seed_orders_total",
            "counter",
            "Seeding orders handed to the seeding side.",
            &[("", c.seed_orders.load(Relaxed))],
        );
    }
    if let Some(s) = &state.seeding {
        line(
            "hawker_seeding_tasks_total",
            "counter",
            "Fetches from origin, by result.",
            &[
                ("{result=\"started\"}", s.tasks_started.load(Relaxed)),
                ("{result=\"completed\"}", s.tasks_completed.load(Relaxed)),
                ("{result=\"failed\"}", s.tasks_failed.load(Relaxed)),
            ],
        );
        line(
            "hawker_seeding_errors_total",
            "counter",
            "Fetches from origin that failed.",
            &[("", s.tasks_failed.load(Relaxed))],
        );
        line(
            "hawker_seeding_pieces_total",
            "counter",
            "Pieces fetched from origin into the store.",
            &[("", s.pieces.load(Relaxed))],
        );
        line(
            "hawker_seeding_bytes_total",
            "counter",
            "Content bytes fetched from origin into the store.",
            &[("", s.bytes.load(Relaxed))],
        );
    }
    if let Some(store) = &state.store {
        let (complete, partial) = store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tasks()
            .fold((0u64, 0u64), |(c, p), t| {
                if t.is_complete() {
                    (c + 1, p)
                } else {
                    (c, p + 1)
                }
            });
        line(
            "hawker_store_tasks",
            "gauge",
            "Tasks in this node's store, by state.",
            &[
                ("{state=\"complete\"}", complete),
                ("{state=\"partial\"}", partial),
            ],
        );
    }
    out
}

fn hosts(state: &AdminState, max: usize) -> serde_json::Value {
    match &state.scheduler {
        Some(core) => serde_json::to_value(core.lock().host_views(Instant::now(), max))
            .unwrap_or_default(),
        None => serde_json::Value::Array(
            state
                .host
                .iter()
                .map(|h| serde_json::json!({"id": h.id, "ip": h.ip, "port": h.port, "seed": true, "this_node": true}))
                .collect(),
        ),
    }
}

fn peers(state: &AdminState, max: usize) -> serde_json::Value {
    match &state.scheduler {
        Some(core) => {
            serde_json::to_value(core.lock().peer_views(Instant::now(), max)).unwrap_or_default()
        }
        None => serde_json::Value::Array(Vec::new()),
    }
}

/// Per piece of `id` in this node's store: landed or not.
fn store_pieces(state: &AdminState, id: &str, count: u32) -> Option<(String, Vec<bool>)> {
    let source = state.source.as_ref()?;
    let id = hawker_shared::ids::TaskId::parse(id.as_bytes()).ok()?;
    let view = source.lookup(&id)?;
    let n = view.layout.piece_count().max(count);
    let numbers: Vec<u32> = (0..n).collect();
    let mut landed = Vec::new();
    source.landed(&id, &numbers, &mut landed);
    let mut bits = vec![false; n as usize];
    for l in landed {
        if let Some(b) = bits.get_mut(l as usize) {
            *b = true;
        }
    }
    let progress = match view.progress {
        TaskProgress::Seeding => "seeding",
        TaskProgress::Complete => "complete",
        TaskProgress::Failed => "failed",
    };
    Some((progress.to_string(), bits))
}

fn tasks(state: &AdminState, max: usize) -> serde_json::Value {
    let this = state.host.as_ref().map(|h| h.id.clone());
    let mut out = Vec::new();
    let mut listed = std::collections::HashSet::new();
    if let Some(core) = &state.scheduler {
        let views = core.lock().task_views(max);
        for t in views {
            let local = store_pieces(state, &t.id, t.piece_count.unwrap_or(0));
            let pieces: Vec<serde_json::Value> = t
                .piece_holders
                .iter()
                .enumerate()
                .map(|(n, holders)| {
                    let landed = local
                        .as_ref()
                        .and_then(|(_, b)| b.get(n).copied())
                        .unwrap_or(false);
                    let mut at: Vec<String> = holders.clone();
                    if landed {
                        if let Some(h) = &this {
                            at.insert(0, h.clone());
                        }
                    }
                    serde_json::json!({"number": n, "state": if landed { "landed" } else if holders.is_empty() { "missing" } else { "on_peers" }, "at": at})
                })
                .collect();
            listed.insert(t.id.clone());
            out.push(serde_json::json!({
                "id": t.id,
                "url": t.url,
                "content_length": t.content_length,
                "piece_length": t.piece_length,
                "piece_count": t.piece_count,
                "peers": t.peers,
                "seeds_ordered": t.seeds_ordered,
                "seeds_failed": t.seeds_failed,
                "seed_store": local.as_ref().map(|(p, _)| p.clone()),
                "pieces": pieces,
            }));
        }
    }
    if let Some(store) = &state.store {
        let tasks: Vec<_> = store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tasks()
            .cloned()
            .collect();
        for t in tasks {
            if out.len() >= max {
                break;
            }
            let id = t.id().as_str().to_string();
            if listed.contains(&id) {
                continue;
            }
            let l = t.layout();
            let pieces: Vec<serde_json::Value> = (0..l.piece_count())
                .map(|n| {
                    let landed = t.has_piece(n);
                    serde_json::json!({"number": n, "state": if landed { "landed" } else { "missing" }, "at": if landed { this.iter().cloned().collect::<Vec<_>>() } else { Vec::new() }})
                })
                .collect();
            out.push(serde_json::json!({
                "id": id,
                "url": t.url().map(crate::origin::http::redact_url),
                "content_length": l.content_length,
                "piece_length": l.piece_length,
                "piece_count": l.piece_count(),
                "seed_store": if t.is_complete() { "complete" } else { "seeding" },
                "pieces": pieces,
            }));
        }
    }
    serde_json::Value::Array(out)
}
