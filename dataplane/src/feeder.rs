//! The store feeder: a control-side thread that keeps the serving cores' task tables in step
//! with the data directory.
//!
//! It waits on the store's watcher (inotify on `DIR/tasks`, or at most `poll_interval`), calls
//! [`Store::rescan`], and broadcasts what changed over the edge. This is how a task added by
//! `hawker import` while the server runs becomes servable without a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::edge::{EdgeMsg, EdgeSender};
use crate::store::{Store, StoreEvent, StoreWatcher};

pub struct Feeder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Feeder {
    /// Spawns the feeder. `poll_interval` bounds how late a change is noticed when inotify is
    /// unavailable, and how late `stop` is noticed.
    pub fn spawn(
        store: Arc<Mutex<Store>>,
        mut watcher: StoreWatcher,
        edge: EdgeSender,
        poll_interval: Duration,
    ) -> std::io::Result<Feeder> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hawker-feeder".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    watcher.wait(poll_interval);
                    let events = match store.lock() {
                        Ok(mut s) => s.rescan(),
                        Err(_) => return, // a panicked holder: the process is going down
                    };
                    match events {
                        Ok(events) => {
                            for ev in events {
                                match ev {
                                    StoreEvent::Added(task) => {
                                        tracing::info!(task = %task.id(), "task added; serving it");
                                        edge.broadcast(EdgeMsg::TaskAdded(task));
                                    }
                                    StoreEvent::Removed(id) => {
                                        tracing::info!(task = %id, "task removed");
                                        edge.broadcast(EdgeMsg::TaskRemoved { task: id });
                                    }
                                }
                            }
                        }
                        Err(e) => tracing::warn!("rescanning the store failed: {e}"),
                    }
                }
            })?;
        Ok(Feeder {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
