//! Starting and stopping the serving cores.
//!
//! [`Server::start`] binds one SO_REUSEPORT listener per protocol per core, spawns one pinned
//! thread per core, waits until every core has built its ring (so io_uring and memlock errors
//! surface here, as one clear line), and returns. [`Server::drain`] turns `/healthz` to 503 and
//! tells every core to drain through the edge; [`Server::join`] waits for them.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::ServeConfig;
use crate::core::{Core, CoreSetup};
use crate::edge::{edge, EdgeMsg, EdgeSender};
use crate::metrics::{Health, Shared};
use crate::order::Tickets;
use crate::store::Task;
use crate::sys::{self, ListenOpts};

pub struct Server {
    threads: Vec<JoinHandle<Result<(), String>>>,
    edge: EdgeSender,
    shared: Arc<Shared>,
    /// The bound addresses (port 0 resolved).
    pub vortex_addr: SocketAddr,
    pub http_addr: SocketAddr,
}

impl Server {
    /// Binds, spawns and initialises every core. `tasks` are served from the first request on.
    pub fn start(cfg: ServeConfig, tasks: Vec<Arc<Task>>) -> Result<Server, String> {
        cfg.validate()?;
        let opts = |flag_name| ListenOpts {
            freebind: cfg.freebind,
            tcp_max_segment: cfg.tcp_max_segment,
            tcp_notsent_lowat_bytes: (cfg.tcp_notsent_lowat_bytes > 0)
                .then_some(cfg.tcp_notsent_lowat_bytes),
            tcp_congestion: cfg.tcp_congestion.as_deref(),
            backlog: cfg.listen_backlog,
            flag_name,
        };
        let vortex_opts = opts("--vortex-listen");
        let http_opts = opts("--http-listen");
        // Probe both ports without SO_REUSEPORT first: with it, a second server would share the
        // port silently instead of failing.
        let vortex_addr = sys::probe_port(cfg.vortex_listen, vortex_opts)?;
        let http_addr = sys::probe_port(cfg.http_listen, http_opts)?;
        if vortex_addr == http_addr {
            return Err(format!(
                "--vortex-listen and --http-listen are the same address {vortex_addr}"
            ));
        }
        let mut listeners = Vec::with_capacity(cfg.cores.len());
        for _ in &cfg.cores {
            listeners.push([
                sys::listen_reuseport(vortex_addr, vortex_opts)?,
                sys::listen_reuseport(http_addr, http_opts)?,
            ]);
        }
        let shared = Arc::new(Shared::new(
            cfg.cores.clone(),
            cfg.send_mode,
            cfg.zerocopy_inflight_bytes_per_core,
        ));
        let (edge_tx, edge_rxs) = edge(cfg.cores.len(), cfg.edge_queue_depth)
            .map_err(|e| format!("cannot create the edge eventfds: {e}"))?;
        let tickets = Arc::new(Tickets::new(cfg.cores.len(), cfg.admission_order));
        let cfg = Arc::new(cfg);
        let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<(), String>)>();
        let mut threads = Vec::with_capacity(cfg.cores.len());
        for (index, (edge_rx, ls)) in edge_rxs.into_iter().zip(listeners).enumerate() {
            let cpu = cfg.cores[index];
            let setup = CoreSetup {
                index,
                cpu,
                cfg: cfg.clone(),
                shared: shared.clone(),
                edge: edge_rx,
                listeners: ls,
                tasks: tasks.clone(),
                tickets: tickets.clone(),
            };
            let ready = ready_tx.clone();
            let health = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("hawker-core-{cpu}"))
                .spawn(move || {
                    let init = sys::pin_to(cpu).and_then(|()| Core::new(setup));
                    match init {
                        Err(e) => {
                            let _ = ready.send((index, Err(e.clone())));
                            Err(e)
                        }
                        Ok(core) => {
                            let _ = ready.send((index, Ok(())));
                            drop(ready);
                            let result = core.run();
                            if let Err(e) = &result {
                                // The other cores go on serving, but a load balancer should
                                // take this host out: /healthz now answers 503 failed.
                                tracing::error!("serving core on CPU {cpu} failed: {e}");
                                health.set_health(Health::Failed);
                            }
                            result
                        }
                    }
                })
                .map_err(|e| format!("cannot spawn a serving thread: {e}"))?;
            threads.push(t);
        }
        drop(ready_tx);
        let mut first_err = None;
        for _ in 0..threads.len() {
            match ready_rx.recv() {
                Ok((_, Ok(()))) => {}
                Ok((i, Err(e))) => {
                    first_err.get_or_insert(format!("core {i}: {e}"));
                }
                Err(_) => {
                    first_err.get_or_insert("a serving thread died during start-up".into());
                }
            }
        }
        let server = Server {
            threads,
            edge: edge_tx,
            shared,
            vortex_addr,
            http_addr,
        };
        if let Some(e) = first_err {
            server.drain();
            let _ = server.join();
            return Err(e);
        }
        Ok(server)
    }

    /// The control side of the edge, for the store feeder and the control plane.
    pub fn edge(&self) -> EdgeSender {
        self.edge.clone()
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Starts a graceful drain. Idempotent.
    pub fn drain(&self) {
        self.shared.set_health(Health::Draining);
        self.edge.broadcast(EdgeMsg::Drain);
    }

    /// Waits for every core to finish; the first core error, if any.
    pub fn join(self) -> Result<(), String> {
        let mut result = Ok(());
        for t in self.threads {
            let r = t
                .join()
                .unwrap_or_else(|_| Err("a serving thread panicked".into()));
            if let (Ok(()), Err(e)) = (&result, r) {
                self.shared.set_health(Health::Failed);
                result = Err(e);
            }
        }
        result
    }
}
