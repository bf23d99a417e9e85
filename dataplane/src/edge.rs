//! The one edge between the planes: how serving cores learn about tasks and pieces.
//!
//! Every core owns a bounded queue (`std::sync::mpsc::sync_channel`, depth
//! [`ServeConfig::edge_queue_depth`](crate::config::ServeConfig)) and an eventfd that its ring
//! keeps a read armed on. The control side pushes a message into every core's queue and then
//! bumps the eventfd; the core wakes, drains its queue with `try_recv`, and updates its own task
//! table. Nothing else crosses from the control plane into a core, and a core never calls back:
//! the edge is one-way and bounded.
//!
//! Ordering: a producer that wrote a piece (pwrite + fdatasync) before sending
//! [`EdgeMsg::PieceLanded`] is guaranteed the core sees the bytes through its mapping: the
//! channel's send/receive pair is a happens-before edge, and the page cache is coherent.
//!
//! Back-pressure: when a core's queue is full the producer blocks (it is a control-plane thread,
//! never a core). A core that is alive drains its queue within one loop turn.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;

use hawker_shared::ids::TaskId;

use crate::store::Task;

/// What the control plane tells the serving cores.
#[derive(Clone)]
pub enum EdgeMsg {
    /// A task to serve: complete, or partial with the pieces that already landed.
    TaskAdded(Arc<Task>),
    /// Piece `number` of a partial task was written, synced and may be served.
    PieceLanded { task: TaskId, number: u32 },
    /// All pieces of a partial task landed.
    TaskCompleted { task: TaskId },
    /// Forget the task. In-flight sends keep the mapping alive until they finish.
    TaskRemoved { task: TaskId },
    /// Start draining: /healthz answers 503, then listeners close and in-flight responses end.
    Drain,
}

impl std::fmt::Debug for EdgeMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EdgeMsg::TaskAdded(t) => write!(f, "TaskAdded({})", t.id()),
            EdgeMsg::PieceLanded { task, number } => write!(f, "PieceLanded({task}, {number})"),
            EdgeMsg::TaskCompleted { task } => write!(f, "TaskCompleted({task})"),
            EdgeMsg::TaskRemoved { task } => write!(f, "TaskRemoved({task})"),
            EdgeMsg::Drain => write!(f, "Drain"),
        }
    }
}

/// The control side of one core's edge.
struct CoreEdge {
    tx: SyncSender<EdgeMsg>,
    eventfd: Arc<OwnedFd>,
}

/// The control side of the edge to every core. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct EdgeSender {
    cores: Arc<Vec<CoreEdge>>,
}

/// A core's side of the edge: owned by that core's thread only.
pub struct EdgeReceiver {
    rx: Receiver<EdgeMsg>,
    eventfd: Arc<OwnedFd>,
}

/// Creates the edge for `cores` cores, each queue `depth` messages deep.
pub fn edge(cores: usize, depth: usize) -> std::io::Result<(EdgeSender, Vec<EdgeReceiver>)> {
    let mut senders = Vec::with_capacity(cores);
    let mut receivers = Vec::with_capacity(cores);
    for _ in 0..cores {
        // SAFETY: eventfd(2) returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let eventfd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        let (tx, rx) = mpsc::sync_channel(depth);
        senders.push(CoreEdge {
            tx,
            eventfd: eventfd.clone(),
        });
        receivers.push(EdgeReceiver { rx, eventfd });
    }
    Ok((
        EdgeSender {
            cores: Arc::new(senders),
        },
        receivers,
    ))
}

impl EdgeSender {
    /// Sends `msg` to every core; blocks while a core's queue is full. Cores that have exited
    /// are skipped: a message to a stopped server has nobody to inform.
    pub fn broadcast(&self, msg: EdgeMsg) {
        for core in self.cores.iter() {
            if core.tx.send(msg.clone()).is_ok() {
                wake(core.eventfd.as_raw_fd());
            }
        }
    }

    pub fn cores(&self) -> usize {
        self.cores.len()
    }
}

fn wake(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid u64 to an eventfd. EAGAIN (counter saturated) means a
    // wake-up is already pending, which is all we need.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

impl EdgeReceiver {
    /// The eventfd the core keeps an 8-byte read armed on.
    pub fn eventfd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// The next queued message, if any. `Err(())` once every sender is gone.
    #[allow(clippy::result_unit_err)]
    pub fn try_recv(&self) -> Result<Option<EdgeMsg>, ()> {
        match self.rx.try_recv() {
            Ok(m) => Ok(Some(m)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(()),
        }
    }
}
