//! [`StoreWatcher`]: blocks the server's store thread until `DIR/tasks/` changes, so it can `rescan()`.
//!
//! inotify (nix) on `DIR/tasks/` for renames in/out, creates, deletes and close-after-write; events are
//! drained and coalesced into one wake-up. Where inotify is unavailable (instance limit reached, exotic
//! filesystem), it falls back to polling a cheap signature of the directory (its mtime and entry count)
//! every [`POLL_INTERVAL_MS`]. Either way `wait` never blocks longer than its `timeout`.

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::fsutil::io_err;
use super::{Paths, StoreError};

/// Poll period of the fallback, in milliseconds.
pub const POLL_INTERVAL_MS: u64 = 500;
/// Most inotify reads drained per wake-up (each read takes up to nix's 4 KiB buffer of events).
const MAX_DRAIN_READS: usize = 64;

enum Mode {
    Inotify(Inotify),
    Poll { last: (Option<SystemTime>, usize) },
}

/// Blocking watcher of `DIR/tasks/`.
pub struct StoreWatcher {
    tasks: PathBuf,
    mode: Mode,
}

impl std::fmt::Debug for StoreWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Inotify(_) => "inotify",
            Mode::Poll { .. } => "poll",
        };
        f.debug_struct("StoreWatcher")
            .field("tasks", &self.tasks)
            .field("mode", &mode)
            .finish()
    }
}

fn signature(dir: &Path) -> (Option<SystemTime>, usize) {
    let mtime = fs::metadata(dir).and_then(|m| m.modified()).ok();
    let count = fs::read_dir(dir).map(|r| r.count()).unwrap_or(0);
    (mtime, count)
}

impl StoreWatcher {
    /// Watches `dir/tasks/` (created if missing).
    pub fn new(dir: &Path) -> Result<Self, StoreError> {
        let tasks = Paths::new(dir).tasks;
        fs::create_dir_all(&tasks).map_err(io_err("create", &tasks))?;
        let flags = AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF;
        let mode = match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .and_then(|ino| ino.add_watch(&tasks, flags).map(|_| ino))
        {
            Ok(ino) => Mode::Inotify(ino),
            Err(e) => {
                tracing::warn!(dir = %tasks.display(), "store: inotify unavailable ({e}); polling the directory every {POLL_INTERVAL_MS} ms instead (raise fs.inotify.max_user_instances to avoid this)");
                Mode::Poll {
                    last: signature(&tasks),
                }
            }
        };
        Ok(StoreWatcher { tasks, mode })
    }

    /// Whether inotify is in use (false: polling fallback).
    pub fn uses_inotify(&self) -> bool {
        matches!(self.mode, Mode::Inotify(_))
    }

    /// Returns true as soon as `DIR/tasks/` changed, false after `timeout` without change.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        match &mut self.mode {
            Mode::Inotify(ino) => {
                // Drain what is already queued first.
                if drain(ino) {
                    return true;
                }
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
                    let mut fds = [PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
                    match poll(&mut fds, PollTimeout::from(ms)) {
                        Ok(0) => {}
                        Ok(_) => {
                            if drain(ino) {
                                return true;
                            }
                        }
                        Err(nix::errno::Errno::EINTR) => {}
                        Err(_) => {
                            std::thread::sleep(left.min(Duration::from_millis(POLL_INTERVAL_MS)));
                        }
                    }
                    if Instant::now() >= deadline {
                        return false;
                    }
                }
            }
            Mode::Poll { last } => loop {
                let now = signature(&self.tasks);
                if now != *last {
                    *last = now;
                    return true;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                std::thread::sleep(left.min(Duration::from_millis(POLL_INTERVAL_MS)));
            },
        }
    }
}

/// Reads all queued events (bounded); true if there was at least one.
fn drain(ino: &Inotify) -> bool {
    let mut any = false;
    for _ in 0..MAX_DRAIN_READS {
        match ino.read_events() {
            Ok(events) if !events.is_empty() => any = true,
            _ => break,
        }
    }
    any
}
