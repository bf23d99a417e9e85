//! The immutable, mmapped task store of the data plane.
//!
//! What it is for: keeping each task (one content file + its metadata) on local disk so the serving cores
//! can send pieces straight from a read-only mapping (or `sendfile(2)` from its fd), while the control plane
//! seeds new tasks into it piece by piece and `hawker import` adds local files from another process.
//! What it is not for: deciding what to fetch (the control plane) or speaking any wire protocol.
//!
//! On disk (`docs/store.md` has the full story):
//! ```text
//! DIR/VERSION                  "hawker-store 1"
//! DIR/store.lock               flock'ed by the one Store (serving process) using DIR
//! DIR/tasks/<id>.data          complete content, never modified after its rename into place
//! DIR/tasks/<id>.partial       content of a task being seeded, created at full length
//! DIR/tasks/<id>.journal       16-byte records of landed pieces (see `journal`)
//! DIR/tasks/<id>.meta          JSON `TaskMeta`, always written last, atomically
//! DIR/tmp/                     temp files (each flock'ed while alive; stale ones removed at open)
//! DIR/quarantine/<id>.<ms>/    torn or corrupt tasks, moved aside at open/rescan, never served
//! ```
//!
//! Invariants:
//! - A content file is never truncated and never rewritten where a piece has been announced; deletion is by
//!   unlink only. So a mapping or an in-flight send always sees the bytes whose crc was announced.
//! - Every rename is preceded by an fsync of the file and followed by an fsync of its directory; metadata
//!   is renamed into place last, so a task with a `.meta` always has its content durable.
//! - A task that fails verification is moved to `DIR/quarantine/` with one `warn!` line and never served.
//!
//! Bounds (all checked before any allocation sized from disk or from a caller):
//! [`MAX_CONTENT_LENGTH_BYTES`] (1 TiB), [`MAX_PIECE_LENGTH_BYTES`] (64 MiB, one piece is passed in memory),
//! [`MAX_PIECE_COUNT`] (262,144: 1 MiB of crcs per task), [`MAX_URL_BYTES`] (8 KiB), [`MAX_META_BYTES`]
//! (8 MiB: 262,144 digests of at most 19 JSON bytes plus the rest), journal = 16 + 16 x pieces bytes,
//! [`MAX_TASKS`] (65,536 tasks, each keeping one fd and one mapping open).

mod fsutil;
mod import;
pub mod journal;
mod task;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

pub use hawker_shared::ids::TaskId;
pub use hawker_shared::layout::Layout;
pub use import::import_file;
use task::TaskHead;
pub use task::{Task, TaskWriter};
pub use watch::StoreWatcher;

use fsutil::{
    atomic_write, fsync_dir, io_err, is_locked_elsewhere, quarantine, unlink_if_exists, TmpFile,
};
use hawker_shared::digest::parse_piece_digest;

/// The on-disk format this code reads and writes (DIR/VERSION and `TaskMeta::format`).
pub const STORE_FORMAT: u32 = 1;
/// Largest content accepted, in bytes (1 TiB).
pub const MAX_CONTENT_LENGTH_BYTES: u64 = 1 << 40;
/// Largest piece accepted, in bytes (a piece is handed to `write_piece` in memory; Dragonfly's max).
pub const MAX_PIECE_LENGTH_BYTES: u64 = 64 << 20;
/// Most pieces per task (1 TiB at 4 MiB pieces).
pub const MAX_PIECE_COUNT: u32 = 1 << 18;
/// Longest source URL kept in metadata, in bytes.
pub const MAX_URL_BYTES: usize = 8 << 10;
/// Largest metadata file read, in bytes.
pub const MAX_META_BYTES: u64 = 8 << 20;
/// Most tasks one store holds (each keeps an fd and a mapping open).
pub const MAX_TASKS: usize = 1 << 16;

const VERSION_FILE: &str = "VERSION";
const LOCK_FILE: &str = "store.lock";

/// How much `Store::open` (and `rescan`) checks of a complete task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verify {
    /// Lengths, metadata, and every piece's crc32 against the metadata (reads all content once).
    #[default]
    Full,
    /// Lengths and metadata only.
    Quick,
}

/// Whether all pieces of a task have landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Complete,
    Partial,
}

/// The metadata file `tasks/<id>.meta` (JSON). See docs/store.md for every field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskMeta {
    /// Always [`STORE_FORMAT`].
    pub format: u32,
    pub id: TaskId,
    /// The origin URL the task id was derived from, if any.
    pub url: Option<String>,
    pub content_length: u64,
    pub piece_length: u64,
    /// Redundant with the two above; checked on load.
    pub piece_count: u32,
    /// `crc32:<decimal>` for every piece of a complete task; empty for a partial one (its journal holds them).
    pub piece_digests: Vec<String>,
    /// Lower-case hex sha256 of the whole content; `Some` exactly when complete.
    pub sha256: Option<String>,
    pub state: TaskState,
    /// When the task was created (import or begin), milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
}

impl TaskMeta {
    /// The layout, after checking every field against the bounds and each other.
    pub fn validate(&self) -> Result<Layout, String> {
        if self.format != STORE_FORMAT {
            return Err(format!(
                "format {} (this hawker reads {STORE_FORMAT})",
                self.format
            ));
        }
        let layout =
            check_layout(self.content_length, self.piece_length).map_err(|e| e.to_string())?;
        if self.piece_count != layout.piece_count() {
            return Err(format!(
                "piece_count {} but {} bytes in {}-byte pieces make {}",
                self.piece_count,
                self.content_length,
                self.piece_length,
                layout.piece_count()
            ));
        }
        if self.url.as_ref().is_some_and(|u| u.len() > MAX_URL_BYTES) {
            return Err(format!("url longer than {MAX_URL_BYTES} bytes"));
        }
        match self.state {
            TaskState::Complete => {
                let sha = self
                    .sha256
                    .as_deref()
                    .ok_or("complete task without sha256")?;
                if sha.len() != 64 || !sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err("sha256 is not 64 lower-case hex characters".into());
                }
                if self.piece_digests.len() != self.piece_count as usize {
                    return Err(format!(
                        "{} piece digests for {} pieces",
                        self.piece_digests.len(),
                        self.piece_count
                    ));
                }
                if let Some(bad) = self
                    .piece_digests
                    .iter()
                    .position(|d| parse_piece_digest(d).is_none())
                {
                    return Err(format!("piece {bad} digest is not crc32:<decimal>"));
                }
            }
            TaskState::Partial => {
                if !self.piece_digests.is_empty() || self.sha256.is_some() {
                    return Err("partial task with digests or sha256".into());
                }
            }
        }
        Ok(layout)
    }

    /// The piece crcs of a complete task (validated).
    fn crcs(&self) -> Vec<u32> {
        self.piece_digests
            .iter()
            .map(|d| parse_piece_digest(d).unwrap_or(0))
            .collect()
    }

    pub(crate) fn to_json(&self) -> Result<Vec<u8>, StoreError> {
        let mut v =
            serde_json::to_vec_pretty(self).map_err(|e| StoreError::Internal(e.to_string()))?;
        v.push(b'\n');
        Ok(v)
    }

    /// Reads and validates `path` (bounded by [`MAX_META_BYTES`]).
    pub fn read(path: &Path) -> Result<(TaskMeta, Layout), String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut buf = Vec::new();
        file.take(MAX_META_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if buf.len() as u64 > MAX_META_BYTES {
            return Err(format!("metadata larger than {MAX_META_BYTES} bytes"));
        }
        let meta: TaskMeta =
            serde_json::from_slice(&buf).map_err(|e| format!("metadata is not valid: {e}"))?;
        let layout = meta.validate()?;
        Ok((meta, layout))
    }
}

/// Checks a layout against the store's bounds.
pub fn check_layout(content_length: u64, piece_length: u64) -> Result<Layout, StoreError> {
    if content_length > MAX_CONTENT_LENGTH_BYTES {
        return Err(StoreError::TooLarge {
            what: "content length",
            value: content_length,
            max: MAX_CONTENT_LENGTH_BYTES,
        });
    }
    if piece_length > MAX_PIECE_LENGTH_BYTES {
        return Err(StoreError::TooLarge {
            what: "piece length",
            value: piece_length,
            max: MAX_PIECE_LENGTH_BYTES,
        });
    }
    let layout = Layout::new(content_length, piece_length)
        .map_err(|e| StoreError::BadLayout(e.to_string()))?;
    if layout.piece_count() > MAX_PIECE_COUNT {
        return Err(StoreError::TooLarge {
            what: "piece count",
            value: layout.piece_count() as u64,
            max: MAX_PIECE_COUNT as u64,
        });
    }
    Ok(layout)
}

/// Errors of the store. Each message says what to do where it can.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data dir {dir} is not writable by uid {uid}: {source}; chown it to that user, or pass another data dir")]
    NotWritable {
        dir: PathBuf,
        uid: u32,
        source: io::Error,
    },
    #[error("another process (a running hawker server?) holds the store at {dir} (lock {dir}/store.lock); stop it, or pass another data dir")]
    Locked { dir: PathBuf },
    #[error("the store at {dir} has format {found:?}, this hawker reads format {STORE_FORMAT}; use the matching hawker or another data dir")]
    Version { dir: PathBuf, found: String },
    #[error("no space left on the device writing {path}; nothing was left half-written: free space on that filesystem and retry")]
    NoSpace { path: PathBuf },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{what} is {value}, over the store's bound of {max}")]
    TooLarge {
        what: &'static str,
        value: u64,
        max: u64,
    },
    #[error("invalid piece layout: {0}")]
    BadLayout(String),
    #[error("invalid url: {0}")]
    BadUrl(String),
    #[error("{path} is not a regular file; import needs a regular file")]
    NotRegularFile { path: PathBuf },
    #[error("{path} changed size while being imported; import it again once it is stable")]
    SourceChanged { path: PathBuf },
    #[error("task {id}: piece {number} does not exist (the task has {piece_count} pieces)")]
    PieceOutOfRange {
        id: TaskId,
        number: u32,
        piece_count: u32,
    },
    #[error("task {id}: piece {number} must be {expected} bytes, got {got}")]
    PieceLength {
        id: TaskId,
        number: u32,
        expected: u64,
        got: u64,
    },
    #[error("task {id}: piece {number} has already landed and is never rewritten")]
    PieceAlreadyLanded { id: TaskId, number: u32 },
    #[error("task {id}: {missing} pieces have not landed yet; write them before finish")]
    Incomplete { id: TaskId, missing: u32 },
    #[error("task {id}: content sha256 is {actual}, expected {expected}; remove the task and fetch it again")]
    Sha256Mismatch {
        id: TaskId,
        expected: String,
        actual: String,
    },
    #[error("task {id} exists with layout {existing:?}, asked for {requested:?}; remove it first to change it")]
    LayoutMismatch {
        id: TaskId,
        existing: Layout,
        requested: Layout,
    },
    #[error("task {id} already has a live TaskWriter; drop it before beginning again")]
    WriterBusy { id: TaskId },
    #[error("task {id}: {reason}")]
    Conflict { id: TaskId, reason: String },
    #[error("the store holds {MAX_TASKS} tasks, its bound; remove some before adding more")]
    Full,
    #[error("internal store error: {0}")]
    Internal(String),
}

/// What `rescan` found changed on disk.
#[derive(Debug)]
pub enum StoreEvent {
    Added(Arc<Task>),
    Removed(TaskId),
}

/// The paths of one store directory.
#[derive(Clone, Debug)]
pub(crate) struct Paths {
    pub root: PathBuf,
    pub tasks: PathBuf,
    pub tmp: PathBuf,
    pub quarantine: PathBuf,
}

impl Paths {
    pub fn new(root: &Path) -> Paths {
        Paths {
            root: root.to_path_buf(),
            tasks: root.join("tasks"),
            tmp: root.join("tmp"),
            quarantine: root.join("quarantine"),
        }
    }
    fn file(&self, id: &TaskId, ext: &str) -> PathBuf {
        self.tasks.join(format!("{id}.{ext}"))
    }
    pub fn meta(&self, id: &TaskId) -> PathBuf {
        self.file(id, "meta")
    }
    pub fn data(&self, id: &TaskId) -> PathBuf {
        self.file(id, "data")
    }
    pub fn partial(&self, id: &TaskId) -> PathBuf {
        self.file(id, "partial")
    }
    pub fn journal(&self, id: &TaskId) -> PathBuf {
        self.file(id, "journal")
    }
    pub fn all(&self, id: &TaskId) -> Vec<PathBuf> {
        vec![
            self.meta(id),
            self.data(id),
            self.partial(id),
            self.journal(id),
        ]
    }

    /// Creates the directories and VERSION, checks the format and that we can write. Used by the store and
    /// by `hawker import`.
    pub fn prepare(&self) -> Result<(), StoreError> {
        let not_writable = |dir: &Path, source: io::Error| StoreError::NotWritable {
            dir: dir.to_path_buf(),
            // SAFETY: geteuid has no preconditions and cannot fail.
            uid: unsafe { libc::geteuid() },
            source,
        };
        for d in [&self.root, &self.tasks, &self.tmp, &self.quarantine] {
            fs::create_dir_all(d).map_err(|e| not_writable(d, e))?;
        }
        match TmpFile::create(&self.tmp, "probe") {
            Ok(probe) => drop(probe),
            Err(StoreError::Io { source, .. }) => return Err(not_writable(&self.tmp, source)),
            Err(e) => return Err(e),
        }
        let version_path = self.root.join(VERSION_FILE);
        let want = format!("hawker-store {STORE_FORMAT}\n");
        match fs::read(&version_path) {
            Ok(found) => {
                if found != want.as_bytes() {
                    let found = String::from_utf8_lossy(&found[..found.len().min(64)])
                        .trim()
                        .to_owned();
                    return Err(StoreError::Version {
                        dir: self.root.clone(),
                        found,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                atomic_write(&self.tmp, "VERSION", &version_path, want.as_bytes())?;
            }
            Err(e) => return Err(io_err("read", &version_path)(e)),
        }
        Ok(())
    }
}

/// Kinds of files under DIR/tasks/.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Meta,
    Data,
    Partial,
    Journal,
}

/// DIR/tasks/ listed: files by task id, and the names that are not ours.
type Listing = (BTreeMap<TaskId, Vec<Kind>>, Vec<PathBuf>);

/// Lists DIR/tasks/: files grouped by task id, plus names that are not ours.
fn list_tasks_dir(tasks: &Path) -> Result<Listing, StoreError> {
    let mut groups: BTreeMap<TaskId, Vec<Kind>> = BTreeMap::new();
    let mut strangers = Vec::new();
    for entry in fs::read_dir(tasks).map_err(io_err("list", tasks))? {
        let entry = entry.map_err(io_err("list", tasks))?;
        let name = entry.file_name();
        let parsed = name
            .to_str()
            .and_then(|n| n.split_once('.'))
            .and_then(|(stem, ext)| {
                let id = TaskId::parse(stem.as_bytes()).ok()?;
                let kind = match ext {
                    "meta" => Kind::Meta,
                    "data" => Kind::Data,
                    "partial" => Kind::Partial,
                    "journal" => Kind::Journal,
                    _ => return None,
                };
                Some((id, kind))
            });
        match parsed {
            Some((id, kind)) => groups.entry(id).or_default().push(kind),
            None => strangers.push(entry.path()),
        }
    }
    Ok((groups, strangers))
}

/// Outcome of loading one task group from disk.
enum Loaded {
    Task(Arc<Task>),
    /// Moved to quarantine (already logged).
    Quarantined,
    /// Not ours to judge now (an import in flight, a partial task of another process).
    Skipped,
}

/// The store: owned by the control-plane side (one thread, or behind a Mutex there).
pub struct Store {
    paths: Paths,
    verify: Verify,
    tasks: HashMap<TaskId, Arc<Task>>,
    _lock: Flock<File>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.paths.root)
            .field("verify", &self.verify)
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `dir`, removes stale temp files, loads and verifies every task,
    /// quarantining torn or corrupt ones.
    pub fn open(dir: &Path, verify: Verify) -> Result<Store, StoreError> {
        let paths = Paths::new(dir);
        paths.prepare()?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|_| {
            StoreError::Locked {
                dir: dir.to_path_buf(),
            }
        })?;
        let mut store = Store {
            paths,
            verify,
            tasks: HashMap::new(),
            _lock: lock,
        };
        store.clean_tmp()?;
        let (groups, strangers) = list_tasks_dir(&store.paths.tasks)?;
        for path in strangers {
            let label = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            store.quarantine_files(&label, "not a file name the store writes", &[path]);
        }
        for (id, kinds) in groups {
            if store.tasks.len() >= MAX_TASKS {
                tracing::warn!(task = %id, "store: {MAX_TASKS} tasks loaded, the bound; task {id} left on disk, not served");
                continue;
            }
            if let Loaded::Task(task) = store.load_group(id, &kinds, true)? {
                store.tasks.insert(id, task);
            }
        }
        tracing::info!(dir = %dir.display(), tasks = store.tasks.len(), verify = ?verify, "store: opened");
        Ok(store)
    }

    /// The store's root directory.
    pub fn dir(&self) -> &Path {
        &self.paths.root
    }

    pub fn tasks(&self) -> impl Iterator<Item = &Arc<Task>> {
        self.tasks.values()
    }

    pub fn get(&self, id: &TaskId) -> Option<Arc<Task>> {
        self.tasks.get(id).cloned()
    }

    /// Picks up tasks that another process (`hawker import`) added, and forgets ones removed on disk.
    /// New complete tasks are verified with the store's [`Verify`] mode.
    pub fn rescan(&mut self) -> Result<Vec<StoreEvent>, StoreError> {
        let (groups, _strangers) = list_tasks_dir(&self.paths.tasks)?;
        let mut events = Vec::new();
        let gone: Vec<TaskId> = self
            .tasks
            .keys()
            .filter(|id| !groups.get(id).is_some_and(|k| k.contains(&Kind::Meta)))
            .copied()
            .collect();
        for id in gone {
            self.tasks.remove(&id);
            tracing::info!(task = %id, "store: task removed on disk, forgotten");
            events.push(StoreEvent::Removed(id));
        }
        for (id, kinds) in groups {
            if self.tasks.contains_key(&id) || !kinds.contains(&Kind::Meta) {
                continue;
            }
            if self.tasks.len() >= MAX_TASKS {
                tracing::warn!(task = %id, "store: {MAX_TASKS} tasks loaded, the bound; task {id} not added");
                continue;
            }
            if let Loaded::Task(task) = self.load_group(id, &kinds, false)? {
                tracing::info!(task = %id, "store: task added on disk, now served");
                self.tasks.insert(id, Arc::clone(&task));
                events.push(StoreEvent::Added(task));
            }
        }
        Ok(events)
    }

    /// Forgets the task and unlinks its files (metadata first; never truncates: open mappings and in-flight
    /// sends keep the old inode). Returns whether anything existed.
    pub fn remove(&mut self, id: &TaskId) -> Result<bool, StoreError> {
        let mut existed = self.tasks.remove(id).is_some();
        for path in self.paths.all(id) {
            existed |= unlink_if_exists(&path)?;
        }
        fsync_dir(&self.paths.tasks)?;
        Ok(existed)
    }

    /// Seeding: creates (or resumes) a partial task and returns it with its one writer. For a task that is
    /// already complete the writer has nothing missing and `finish` returns the task.
    pub fn begin(
        &mut self,
        id: TaskId,
        url: Option<String>,
        layout: Layout,
    ) -> Result<(Arc<Task>, TaskWriter), StoreError> {
        let layout = check_layout(layout.content_length, layout.piece_length)?;
        if let Some(u) = &url {
            if u.len() > MAX_URL_BYTES {
                return Err(StoreError::TooLarge {
                    what: "url length",
                    value: u.len() as u64,
                    max: MAX_URL_BYTES as u64,
                });
            }
        }
        if !self.tasks.contains_key(&id) {
            // Perhaps imported since the last rescan, or left over on disk.
            let (groups, _) = list_tasks_dir(&self.paths.tasks)?;
            if let Some(kinds) = groups.get(&id) {
                if kinds.contains(&Kind::Meta) {
                    if let Loaded::Task(task) = self.load_group(id, kinds, true)? {
                        self.tasks.insert(id, task);
                    }
                } else if self.paths.all(&id).iter().any(|p| is_locked_elsewhere(p)) {
                    return Err(StoreError::Conflict {
                        id,
                        reason: "an import of this task is in progress; wait for it, then rescan"
                            .into(),
                    });
                } else {
                    self.quarantine_files(
                        id.as_str(),
                        "leftover files without metadata",
                        &self.paths.all(&id),
                    );
                }
            }
        }
        if let Some(task) = self.tasks.get(&id).cloned() {
            if task.layout() != layout {
                return Err(StoreError::LayoutMismatch {
                    id,
                    existing: task.layout(),
                    requested: layout,
                });
            }
            if !task.try_take_writer() {
                return Err(StoreError::WriterBusy { id });
            }
            let writer = if task.is_complete() {
                TaskWriter::new(Arc::clone(&task), self.paths.clone(), None, None)
            } else {
                match TaskWriter::open_files(&self.paths, &id).and_then(|(d, j)| {
                    preallocate_journal(&j, &self.paths.journal(&id), layout.piece_count())?;
                    Ok((d, j))
                }) {
                    Ok((d, j)) => {
                        TaskWriter::new(Arc::clone(&task), self.paths.clone(), Some(d), Some(j))
                    }
                    Err(e) => {
                        task.release_writer();
                        return Err(e);
                    }
                }
            };
            return Ok((task, writer));
        }
        if self.tasks.len() >= MAX_TASKS {
            return Err(StoreError::Full);
        }
        let created = self.create_partial(id, url, layout);
        if created.is_err() {
            for p in self.paths.all(&id) {
                let _ = unlink_if_exists(&p);
            }
        }
        let task = Arc::new(created?);
        let taken = task.try_take_writer();
        debug_assert!(taken, "fresh task has no writer");
        let (d, j) = TaskWriter::open_files(&self.paths, &id)?;
        self.tasks.insert(id, Arc::clone(&task));
        Ok((
            Arc::clone(&task),
            TaskWriter::new(task, self.paths.clone(), Some(d), Some(j)),
        ))
    }

    /// Creates `<id>.partial` (full length, preallocated), `<id>.journal` (header, preallocated) and then
    /// the partial metadata.
    fn create_partial(
        &self,
        id: TaskId,
        url: Option<String>,
        layout: Layout,
    ) -> Result<Task, StoreError> {
        let partial = self.paths.partial(&id);
        let data = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&partial)
            .map_err(io_err("create", &partial))?;
        preallocate(&data, &partial, layout.content_length)?;
        data.sync_all().map_err(io_err("fsync", &partial))?;
        let jpath = self.paths.journal(&id);
        let journal = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&jpath)
            .map_err(io_err("create", &jpath))?;
        std::os::unix::fs::FileExt::write_all_at(
            &journal,
            &journal::encode_header(layout.piece_count()),
            0,
        )
        .map_err(io_err("write", &jpath))?;
        preallocate_journal(&journal, &jpath, layout.piece_count())?;
        journal.sync_all().map_err(io_err("fsync", &jpath))?;
        let created_unix_ms = fsutil::unix_ms() as u64;
        let meta = TaskMeta {
            format: STORE_FORMAT,
            id,
            url: url.clone(),
            content_length: layout.content_length,
            piece_length: layout.piece_length,
            piece_count: layout.piece_count(),
            piece_digests: Vec::new(),
            sha256: None,
            state: TaskState::Partial,
            created_unix_ms,
        };
        atomic_write(
            &self.paths.tmp,
            id.as_str(),
            &self.paths.meta(&id),
            &meta.to_json()?,
        )?;
        let ro = File::open(&partial).map_err(io_err("open", &partial))?;
        Task::new(
            TaskHead {
                id,
                url,
                layout,
                created_unix_ms,
                sha256: None,
            },
            ro,
            &[],
            &partial,
        )
    }

    /// Removes temp files nobody holds (crash leftovers); live ones (flock busy) are left alone.
    fn clean_tmp(&self) -> Result<(), StoreError> {
        for entry in fs::read_dir(&self.paths.tmp).map_err(io_err("list", &self.paths.tmp))? {
            let entry = entry.map_err(io_err("list", &self.paths.tmp))?;
            let path = entry.path();
            if !entry.file_type().map(|t| t.is_file()).unwrap_or(false)
                || is_locked_elsewhere(&path)
            {
                continue;
            }
            if unlink_if_exists(&path)? {
                tracing::info!(path = %path.display(), "store: removed leftover temp file");
            }
        }
        Ok(())
    }

    /// Moves files to quarantine and logs the one warn line. Errors moving are logged too (the task is not
    /// served either way).
    fn quarantine_files(&self, label: &str, reason: &str, files: &[PathBuf]) {
        let existing: Vec<PathBuf> = files.iter().filter(|p| p.exists()).cloned().collect();
        let names: Vec<String> = existing
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        match quarantine(&self.paths.quarantine, label, &existing) {
            Ok(dest) => tracing::warn!(
                task = label,
                "store: quarantined {label}: {reason}; moved [{}] to {}; it will not be served",
                names.join(", "),
                dest.display()
            ),
            Err(e) => tracing::warn!(
                task = label,
                "store: task {label} is corrupt ({reason}) and could not be moved to quarantine ({e}); it will not be served"
            ),
        }
    }

    /// Loads one task from its files. `at_open`: we may judge leftovers and repair a torn finish; during a
    /// rescan another process may be mid-import, so files without metadata are skipped.
    fn load_group(&self, id: TaskId, kinds: &[Kind], at_open: bool) -> Result<Loaded, StoreError> {
        let all = self.paths.all(&id);
        if !kinds.contains(&Kind::Meta) {
            if !at_open || all.iter().any(|p| is_locked_elsewhere(p)) {
                return Ok(Loaded::Skipped);
            }
            self.quarantine_files(
                id.as_str(),
                "leftover files without metadata (an interrupted import or seed)",
                &all,
            );
            return Ok(Loaded::Quarantined);
        }
        let bad = |reason: String| {
            self.quarantine_files(id.as_str(), &reason, &all);
            Ok(Loaded::Quarantined)
        };
        let (meta, layout) = match TaskMeta::read(&self.paths.meta(&id)) {
            Ok(m) => m,
            Err(reason) => return bad(format!("bad metadata: {reason}")),
        };
        if meta.id != id {
            return bad(format!("metadata names task {}", meta.id));
        }
        match meta.state {
            TaskState::Complete => {
                if kinds.contains(&Kind::Journal) {
                    // A crash between the metadata rename and the journal unlink: the journal is stale.
                    unlink_if_exists(&self.paths.journal(&id))?;
                }
                if kinds.contains(&Kind::Partial) {
                    self.quarantine_files(
                        &format!("{id}.partial"),
                        "stray partial content next to a complete task",
                        &[self.paths.partial(&id)],
                    );
                }
                let path = self.paths.data(&id);
                let file = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) => return bad(format!("content file {}: {e}", path.display())),
                };
                let len = file.metadata().map_err(io_err("stat", &path))?.len();
                if len != meta.content_length {
                    return bad(format!(
                        "content is {len} bytes, metadata says {}",
                        meta.content_length
                    ));
                }
                let crcs = meta.crcs();
                let landed: Vec<(u32, u32)> = crcs
                    .iter()
                    .enumerate()
                    .map(|(n, c)| (n as u32, *c))
                    .collect();
                let head = TaskHead {
                    id,
                    url: meta.url.clone(),
                    layout,
                    created_unix_ms: meta.created_unix_ms,
                    sha256: meta.sha256.clone(),
                };
                let task = Task::new(head, file, &landed, &path)?;
                if self.verify == Verify::Full {
                    for r in layout.pieces() {
                        let Some(actual) = task.crc_and_release(r.offset, r.length) else {
                            return bad(format!("piece {} outside the content", r.number));
                        };
                        let want = crcs.get(r.number as usize).copied().unwrap_or(0);
                        if actual != want {
                            drop(task);
                            return bad(format!(
                                "piece {} has crc32 {actual}, metadata says {want}",
                                r.number
                            ));
                        }
                    }
                }
                Ok(Loaded::Task(Arc::new(task)))
            }
            TaskState::Partial => {
                if !at_open {
                    // Only this process seeds into its store; a partial task appearing is not ours.
                    return Ok(Loaded::Skipped);
                }
                let path = self.paths.partial(&id);
                if !kinds.contains(&Kind::Partial) && kinds.contains(&Kind::Data) {
                    // A crash between the .partial -> .data rename and the metadata: undo the rename.
                    let data = self.paths.data(&id);
                    fs::rename(&data, &path).map_err(io_err("rename back to partial", &data))?;
                    fsync_dir(&self.paths.tasks)?;
                }
                let file = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) => return bad(format!("partial content file {}: {e}", path.display())),
                };
                let len = file.metadata().map_err(io_err("stat", &path))?.len();
                if len != meta.content_length {
                    return bad(format!(
                        "partial content is {len} bytes, metadata says {}",
                        meta.content_length
                    ));
                }
                let head = TaskHead {
                    id,
                    url: meta.url.clone(),
                    layout,
                    created_unix_ms: meta.created_unix_ms,
                    sha256: None,
                };
                let task = Task::new(head, file, &[], &path)?;
                let jpath = self.paths.journal(&id);
                let count = layout.piece_count();
                let decoded = read_journal(&jpath, count);
                let (journaled, bad_records) = match decoded {
                    Ok(d) => (d.pieces, d.bad_records),
                    Err(reason) => {
                        tracing::warn!(task = %id, "store: journal of partial task {id} unusable ({reason}); all its pieces will be fetched again");
                        (Vec::new(), 0)
                    }
                };
                let mut keep = Vec::with_capacity(journaled.len());
                let mut mismatched = 0u32;
                for (n, crc) in journaled {
                    let actual = layout
                        .piece(n)
                        .and_then(|r| task.crc_and_release(r.offset, r.length));
                    if actual == Some(crc) {
                        keep.push((n, crc));
                    } else {
                        mismatched += 1;
                    }
                }
                if mismatched > 0 || bad_records > 0 {
                    tracing::warn!(task = %id, mismatched, bad_records, "store: partial task {id}: {mismatched} journaled pieces no longer match their crc and {bad_records} journal records are corrupt; those pieces will be fetched again");
                }
                // Rewrite the journal compactly: record k <-> k-th landed piece, as the writer expects.
                let mut image = journal::encode_header(count).to_vec();
                for (n, crc) in &keep {
                    image.extend_from_slice(&journal::encode_record(*n, *crc));
                }
                atomic_write(&self.paths.tmp, id.as_str(), &jpath, &image)?;
                for (n, crc) in keep {
                    task.mark_landed(n, crc);
                }
                Ok(Loaded::Task(Arc::new(task)))
            }
        }
    }
}

/// Reads a journal, bounded by its layout's size.
fn read_journal(path: &Path, piece_count: u32) -> Result<journal::Decoded, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let bound = journal::journal_len_bytes(piece_count);
    let mut buf = Vec::new();
    file.take(bound)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    journal::decode(&buf, piece_count).map_err(|e| e.to_string())
}

/// Reserves `len` bytes for `file` so later piece writes cannot hit ENOSPC; falls back to a sparse
/// `set_len` where the filesystem cannot preallocate.
fn preallocate(file: &File, path: &Path, len: u64) -> Result<(), StoreError> {
    if len == 0 {
        return Ok(());
    }
    let off_len = libc::off_t::try_from(len).map_err(|_| StoreError::TooLarge {
        what: "content length",
        value: len,
        max: libc::off_t::MAX as u64,
    })?;
    // Already allocated (a resumed journal) needs nothing more; otherwise check before reserving.
    let allocated = file.metadata().map(|m| m.blocks() * 512).unwrap_or(0);
    fsutil::check_free_space(file, path, len.saturating_sub(allocated))?;
    match nix::fcntl::posix_fallocate(file, 0, off_len) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ENOSPC) | Err(nix::errno::Errno::EDQUOT) => {
            Err(StoreError::NoSpace {
                path: path.to_path_buf(),
            })
        }
        Err(nix::errno::Errno::EOPNOTSUPP) | Err(nix::errno::Errno::EINVAL) => {
            file.set_len(len).map_err(io_err("extend", path))
        }
        Err(e) => Err(io_err("preallocate", path)(io::Error::from(e))),
    }
}

fn preallocate_journal(file: &File, path: &Path, piece_count: u32) -> Result<(), StoreError> {
    preallocate(file, path, journal::journal_len_bytes(piece_count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_meta_validate_rejects_inconsistent_fields() {
        let id = TaskId::from_sha256(&[7u8; 32]);
        let good = TaskMeta {
            format: STORE_FORMAT,
            id,
            url: None,
            content_length: 10,
            piece_length: 4,
            piece_count: 3,
            piece_digests: vec!["crc32:1".into(), "crc32:2".into(), "crc32:3".into()],
            sha256: Some("ab".repeat(32)),
            state: TaskState::Complete,
            created_unix_ms: 0,
        };
        assert!(good.validate().is_ok());
        let mut m = good.clone();
        m.piece_count = 2;
        assert!(m.validate().is_err());
        let mut m = good.clone();
        m.piece_digests.pop();
        assert!(m.validate().is_err());
        let mut m = good.clone();
        m.piece_digests[1] = "md5:1".into();
        assert!(m.validate().is_err());
        let mut m = good.clone();
        m.sha256 = None;
        assert!(m.validate().is_err());
        let mut m = good.clone();
        m.content_length = MAX_CONTENT_LENGTH_BYTES + 1;
        assert!(m.validate().is_err());
        let mut m = good.clone();
        m.format = 2;
        assert!(m.validate().is_err());
        let json = good.to_json().unwrap();
        let back: TaskMeta = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, good);
    }
}
