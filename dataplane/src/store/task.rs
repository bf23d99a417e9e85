//! One task of the store ([`Task`], shared read-only by the serving cores) and the single writer that fills
//! a partial task ([`TaskWriter`], owned by the control plane's seeding thread).
//!
//! Invariants:
//! - The content file is mapped read-only once, at its full length; it is never truncated, and a byte range
//!   is written (pwrite, by the one [`TaskWriter`]) only while its piece is not landed. So every byte a
//!   reader can reach through a landed piece is immutable for the life of the `Task`.
//! - A piece is *landed* (visible through [`Task::has_piece`] / [`Task::piece_crc`]) only after its bytes
//!   were fdatasync'ed and its journal record was fdatasync'ed. Its crc is stored before the bitmap bit is
//!   set with Release ordering; readers test the bit with Acquire, then read the crc.
//! - At most one `TaskWriter` per task at a time (`writer_live`).
//! - Memory per task: 4 bytes of crc + 1 bit per piece, bounded by `MAX_PIECE_COUNT` (1 MiB of crcs max).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use memmap2::{Mmap, MmapOptions};
use sha2::{Digest, Sha256};

use super::fsutil::{atomic_write, fsync_dir, io_err, unlink_if_exists};
use super::journal::{encode_record, record_offset};
use super::{Paths, StoreError, TaskMeta, TaskState, STORE_FORMAT};
use hawker_shared::digest::{crc32, piece_digest_string};
use hawker_shared::ids::TaskId;
use hawker_shared::layout::Layout;

/// Bytes hashed per step when computing a task's sha256 from its mapping.
pub(crate) const HASH_CHUNK_BYTES: usize = 1 << 20;

/// What a [`Task`] is built from besides its file: the metadata fields it keeps.
pub(crate) struct TaskHead {
    pub id: TaskId,
    pub url: Option<String>,
    pub layout: Layout,
    pub created_unix_ms: u64,
    /// `Some` exactly for a complete task.
    pub sha256: Option<String>,
}

/// One task, shared read-only by the serving cores through `Arc`. Never mutated after a piece is announced.
pub struct Task {
    id: TaskId,
    url: Option<String>,
    layout: Layout,
    created_unix_ms: u64,
    /// The content file, opened read-only; stays open (and valid across the .partial -> .data rename).
    file: File,
    /// `None` for empty content (a zero-length file cannot be mapped).
    map: Option<Mmap>,
    crcs: Box<[AtomicU32]>,
    landed: Box<[AtomicU64]>,
    landed_count: AtomicU32,
    complete: AtomicBool,
    sha256: OnceLock<String>,
    writer_live: AtomicBool,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("layout", &self.layout)
            .field("complete", &self.is_complete())
            .field("pieces_landed", &self.pieces_landed())
            .finish()
    }
}

impl Task {
    /// Builds a task over `file` (opened read-only, already at its full length) with `landed` pieces.
    pub(crate) fn new(
        head: TaskHead,
        file: File,
        landed: &[(u32, u32)],
        path: &std::path::Path,
    ) -> Result<Task, StoreError> {
        let TaskHead {
            id,
            url,
            layout,
            created_unix_ms,
            sha256,
        } = head;
        let map = if layout.content_length == 0 {
            None
        } else {
            let len = usize::try_from(layout.content_length).map_err(|_| StoreError::TooLarge {
                what: "content length",
                value: layout.content_length,
                max: usize::MAX as u64,
            })?;
            // SAFETY: the store never truncates or rewrites a landed range of a content file while a
            // `Task` maps it (see the module invariants); the caller checked the file length first.
            let map =
                unsafe { MmapOptions::new().len(len).map(&file) }.map_err(io_err("mmap", path))?;
            Some(map)
        };
        let count = layout.piece_count() as usize;
        let crcs: Box<[AtomicU32]> = (0..count).map(|_| AtomicU32::new(0)).collect();
        let landed_words: Box<[AtomicU64]> =
            (0..count.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        let task = Task {
            id,
            url,
            layout,
            created_unix_ms,
            file,
            map,
            crcs,
            landed: landed_words,
            landed_count: AtomicU32::new(0),
            complete: AtomicBool::new(false),
            sha256: OnceLock::new(),
            writer_live: AtomicBool::new(false),
        };
        for &(n, crc) in landed {
            if !task.has_piece(n) {
                task.mark_landed(n, crc);
            }
        }
        if let Some(sha) = sha256 {
            let _ = task.sha256.set(sha);
            task.complete.store(true, Ordering::Release);
        }
        Ok(task)
    }

    pub fn id(&self) -> &TaskId {
        &self.id
    }
    pub fn layout(&self) -> Layout {
        self.layout
    }
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }
    /// Hex sha256 of the whole content; `Some` once the task is complete.
    pub fn sha256(&self) -> Option<&str> {
        self.sha256.get().map(String::as_str)
    }
    /// Complete as of load time or [`TaskWriter::finish`].
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }
    /// The whole read-only mapping (empty for empty content). Only landed pieces' ranges are meaningful in a
    /// partial task.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
    /// crc32 of the content range, read through the mapping; afterwards the range's pages are
    /// dropped from this process's page tables (MADV_DONTNEED on a shared read-only file mapping:
    /// the page cache keeps them), so verifying a large store at start-up does not leave the
    /// whole store counted in the server's resident set.
    pub(crate) fn crc_and_release(&self, offset: u64, len: u64) -> Option<u32> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        let crc = crc32(self.bytes().get(start..end)?);
        if let Some(map) = self.map.as_ref() {
            if start % 4096 == 0 && len > 0 {
                // SAFETY: the mapping is a read-only MAP_SHARED file mapping; DONTNEED only drops
                // our page-table entries, later reads fault the same file pages back in.
                let _ = unsafe {
                    map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start,
                        end - start,
                    )
                };
            }
        }
        Some(crc)
    }

    /// The content file, for sendfile(2); open for the `Task`'s life.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
    /// The crc32 of piece `number`, `Some` only once it has landed.
    pub fn piece_crc(&self, number: u32) -> Option<u32> {
        if !self.has_piece(number) {
            return None;
        }
        self.crcs
            .get(number as usize)
            .map(|c| c.load(Ordering::Relaxed))
    }
    /// The digest string (`crc32:<decimal>`) of a landed piece.
    pub fn piece_digest(&self, number: u32) -> Option<String> {
        self.piece_crc(number).map(piece_digest_string)
    }
    /// The bytes of a landed piece.
    pub fn piece_bytes(&self, number: u32) -> Option<&[u8]> {
        if !self.has_piece(number) {
            return None;
        }
        let r = self.layout.piece(number)?;
        let start = usize::try_from(r.offset).ok()?;
        let end = start.checked_add(usize::try_from(r.length).ok()?)?;
        self.bytes().get(start..end)
    }
    pub fn has_piece(&self, number: u32) -> bool {
        let word = (number / 64) as usize;
        let bit = 1u64 << (number % 64);
        self.landed
            .get(word)
            .is_some_and(|w| w.load(Ordering::Acquire) & bit != 0)
    }
    pub fn pieces_landed(&self) -> u32 {
        self.landed_count.load(Ordering::Acquire)
    }
    /// A snapshot of this task's metadata (digests only for a complete task).
    pub fn meta(&self) -> TaskMeta {
        let complete = self.is_complete();
        TaskMeta {
            format: STORE_FORMAT,
            id: self.id,
            url: self.url.clone(),
            content_length: self.layout.content_length,
            piece_length: self.layout.piece_length,
            piece_count: self.layout.piece_count(),
            piece_digests: if complete {
                (0..self.layout.piece_count())
                    .map(|n| self.piece_digest(n).unwrap_or_default())
                    .collect()
            } else {
                Vec::new()
            },
            sha256: self.sha256().map(str::to_owned),
            state: if complete {
                TaskState::Complete
            } else {
                TaskState::Partial
            },
            created_unix_ms: self.created_unix_ms,
        }
    }

    pub(crate) fn mark_landed(&self, number: u32, crc: u32) {
        let (Some(slot), Some(word)) = (
            self.crcs.get(number as usize),
            self.landed.get((number / 64) as usize),
        ) else {
            debug_assert!(false, "mark_landed out of range");
            return;
        };
        slot.store(crc, Ordering::Relaxed);
        let prev = word.fetch_or(1u64 << (number % 64), Ordering::Release);
        if prev & (1u64 << (number % 64)) == 0 {
            self.landed_count.fetch_add(1, Ordering::Release);
        }
    }

    pub(crate) fn try_take_writer(&self) -> bool {
        self.writer_live
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    pub(crate) fn release_writer(&self) {
        self.writer_live.store(false, Ordering::Release);
    }

    /// sha256 of the whole mapping, hex.
    pub(crate) fn compute_sha256(&self) -> String {
        let mut h = Sha256::new();
        for chunk in self.bytes().chunks(HASH_CHUNK_BYTES) {
            h.update(chunk);
        }
        hex::encode(h.finalize())
    }
}

/// The one writer of a partial task. `Send`; use it from a blocking thread.
pub struct TaskWriter {
    task: Arc<Task>,
    paths: Paths,
    /// Read-write handle on `<id>.partial`; `None` when the task was already complete.
    data: Option<File>,
    /// `<id>.journal`, preallocated; `None` when the task was already complete.
    journal: Option<File>,
    /// Index of the next journal record: invariant `== task.pieces_landed()` between calls.
    next_record: u32,
}

impl std::fmt::Debug for TaskWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskWriter")
            .field("task", &self.task.id)
            .finish()
    }
}

impl TaskWriter {
    /// `data`/`journal` are `None` for an already complete task. The caller has taken the writer slot.
    pub(crate) fn new(
        task: Arc<Task>,
        paths: Paths,
        data: Option<File>,
        journal: Option<File>,
    ) -> TaskWriter {
        let next_record = task.pieces_landed();
        TaskWriter {
            task,
            paths,
            data,
            journal,
            next_record,
        }
    }

    pub(crate) fn open_files(paths: &Paths, id: &TaskId) -> Result<(File, File), StoreError> {
        let partial = paths.partial(id);
        let data = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&partial)
            .map_err(io_err("open partial content", &partial))?;
        let jpath = paths.journal(id);
        let journal = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&jpath)
            .map_err(io_err("open journal", &jpath))?;
        Ok((data, journal))
    }

    pub fn task(&self) -> &Arc<Task> {
        &self.task
    }

    /// Writes piece `number` (exactly its layout length), fdatasyncs it, journals it (fdatasync), marks it
    /// landed in the Task and returns its crc32. A piece already landed is refused and nothing is written.
    pub fn write_piece(&mut self, number: u32, bytes: &[u8]) -> Result<u32, StoreError> {
        let task = &self.task;
        let id = task.id;
        let range = task
            .layout
            .piece(number)
            .ok_or(StoreError::PieceOutOfRange {
                id,
                number,
                piece_count: task.layout.piece_count(),
            })?;
        if task.has_piece(number) {
            return Err(StoreError::PieceAlreadyLanded { id, number });
        }
        if bytes.len() as u64 != range.length {
            return Err(StoreError::PieceLength {
                id,
                number,
                expected: range.length,
                got: bytes.len() as u64,
            });
        }
        let (Some(data), Some(journal)) = (self.data.as_ref(), self.journal.as_ref()) else {
            // A complete task has every piece landed, so has_piece above already refused.
            return Err(StoreError::PieceAlreadyLanded { id, number });
        };
        let crc = crc32(bytes);
        let partial = self.paths.partial(&id);
        data.write_all_at(bytes, range.offset)
            .map_err(io_err("write piece into", &partial))?;
        data.sync_data().map_err(io_err("fdatasync", &partial))?;
        let jpath = self.paths.journal(&id);
        // A failed record write leaves at most a torn record at this slot; the next call rewrites the slot.
        journal
            .write_all_at(&encode_record(number, crc), record_offset(self.next_record))
            .map_err(io_err("append to journal", &jpath))?;
        journal.sync_data().map_err(io_err("fdatasync", &jpath))?;
        self.next_record += 1;
        task.mark_landed(number, crc);
        Ok(crc)
    }

    /// Pieces not landed yet, ascending.
    pub fn missing(&self) -> Vec<u32> {
        (0..self.task.layout.piece_count())
            .filter(|n| !self.task.has_piece(*n))
            .collect()
    }

    /// All pieces landed: checks sha256 against `expected_sha256` (if given, hex, any case), fsyncs the
    /// content, renames `<id>.partial` -> `<id>.data` (open mappings stay valid: same inode), writes the
    /// metadata atomically, drops the journal. Returns the (now complete) Task.
    pub fn finish(self, expected_sha256: Option<&str>) -> Result<Arc<Task>, StoreError> {
        let task = Arc::clone(&self.task);
        let id = task.id;
        if !task.is_complete() {
            let missing = task.layout.piece_count() - task.pieces_landed();
            if missing != 0 {
                return Err(StoreError::Incomplete { id, missing });
            }
        }
        let actual = match task.sha256() {
            Some(s) => s.to_owned(),
            None => task.compute_sha256(),
        };
        if let Some(expected) = expected_sha256 {
            if !expected.eq_ignore_ascii_case(&actual) {
                return Err(StoreError::Sha256Mismatch {
                    id,
                    expected: expected.to_owned(),
                    actual,
                });
            }
        }
        if task.is_complete() {
            return Ok(task);
        }
        let partial = self.paths.partial(&id);
        let data_path = self.paths.data(&id);
        if let Some(data) = self.data.as_ref() {
            data.sync_all().map_err(io_err("fsync", &partial))?;
        }
        // A retry after a failure past the rename finds the content already renamed.
        if partial.exists() || !data_path.exists() {
            std::fs::rename(&partial, &data_path)
                .map_err(io_err("rename partial content to", &data_path))?;
            fsync_dir(&self.paths.tasks)?;
        }
        let mut meta = task.meta();
        meta.state = TaskState::Complete;
        meta.sha256 = Some(actual.clone());
        meta.piece_digests = (0..task.layout.piece_count())
            .map(|n| task.piece_digest(n).unwrap_or_default())
            .collect();
        let json = meta.to_json()?;
        atomic_write(&self.paths.tmp, id.as_str(), &self.paths.meta(&id), &json)?;
        unlink_if_exists(&self.paths.journal(&id))?;
        fsync_dir(&self.paths.tasks)?;
        // Publish: sha256 first, then the complete flag (Release) that readers check.
        let _ = task.sha256.set(actual);
        task.complete.store(true, Ordering::Release);
        Ok(task)
    }
}

impl Drop for TaskWriter {
    fn drop(&mut self) {
        self.task.release_writer();
    }
}
