//! `hawker import`: adds a local file to a store directory as a complete task, safely while a server runs on
//! the same directory.
//!
//! Order: copy into a flock'ed temp file in `DIR/tmp/` (hashing sha256 and each piece's crc32 on the way,
//! [`COPY_BUFFER_BYTES`] at a time), fsync, rename to `DIR/tasks/<id>.data`, fsync the directory, then write
//! `<id>.meta` atomically. The temp file's flock stays held (same inode) until the metadata is in place, so
//! a store opening meanwhile sees a locked `.data` without metadata and leaves it alone. A server notices
//! the new `.meta` (inotify) and `rescan`s. Any failure, ENOSPC included, unlinks the temp file: nothing is
//! left half-visible.
//!
//! Idempotent: importing the same content (same id) again finds the valid metadata with the same sha256
//! and returns it without touching the served file.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::fsutil::{atomic_write, io_err, unix_ms, TmpFile};
use super::{
    check_layout, Paths, StoreError, TaskMeta, TaskState, MAX_CONTENT_LENGTH_BYTES, MAX_URL_BYTES,
    STORE_FORMAT,
};
use hawker_shared::digest::piece_digest_string;
use hawker_shared::ids::{default_filtered_query_params, task_id_from_url, TaskId, TaskIdParams};
use hawker_shared::layout::Layout;

/// Bytes copied per read/write step during import.
pub const COPY_BUFFER_BYTES: usize = 1 << 20;

/// Adds `file` to the store at `dir` as a complete task and returns its metadata. The task id comes from
/// `url` the Dragonfly way (default filtered query params, no tag/application/revision/piece length) or,
/// without a url, from the content's sha256.
pub fn import_file(dir: &Path, file: &Path, url: Option<&str>) -> Result<TaskMeta, StoreError> {
    let paths = Paths::new(dir);
    paths.prepare()?;
    let url_id = match url {
        Some(u) => {
            if u.len() > MAX_URL_BYTES {
                return Err(StoreError::TooLarge {
                    what: "url length",
                    value: u.len() as u64,
                    max: MAX_URL_BYTES as u64,
                });
            }
            let filtered = default_filtered_query_params();
            let params = TaskIdParams {
                url: u,
                piece_length: None,
                tag: None,
                application: None,
                filtered_query_params: &filtered,
                revision: None,
            };
            Some(task_id_from_url(&params).map_err(|e| StoreError::BadUrl(format!("{u}: {e}")))?)
        }
        None => None,
    };

    let mut src = File::open(file).map_err(io_err("open", file))?;
    let st = src.metadata().map_err(io_err("stat", file))?;
    if !st.is_file() {
        return Err(StoreError::NotRegularFile {
            path: file.to_path_buf(),
        });
    }
    let len = st.len();
    if len > MAX_CONTENT_LENGTH_BYTES {
        return Err(StoreError::TooLarge {
            what: "file size",
            value: len,
            max: MAX_CONTENT_LENGTH_BYTES,
        });
    }
    let layout = Layout::for_content(len);
    let layout = check_layout(layout.content_length, layout.piece_length)?;

    let mut tmp = TmpFile::create(&paths.tmp, "import")?;
    let tmp_path = tmp.path.clone();
    super::fsutil::check_free_space(&*tmp.file(), &tmp_path, len)?;
    let (sha, crcs) = copy_hashing(&mut src, tmp.file(), file, &tmp_path, layout)?;

    let id = url_id.unwrap_or_else(|| TaskId::from_sha256(&sha));
    let sha_hex = hex::encode(sha);
    let meta_path = paths.meta(&id);
    let data_path = paths.data(&id);

    if let Ok((existing, _)) = TaskMeta::read(&meta_path) {
        match existing.state {
            TaskState::Complete if existing.sha256.as_deref() == Some(sha_hex.as_str()) => {
                let data_ok = std::fs::metadata(&data_path).is_ok_and(|m| m.len() == existing.content_length);
                if data_ok {
                    // Same content already there: leave the served file alone; the temp file is dropped.
                    return Ok(existing);
                }
            }
            TaskState::Complete => {
                return Err(StoreError::Conflict {
                    id,
                    reason: format!(
                        "already stored with other content (sha256 {}, this file {sha_hex}); remove the task first",
                        existing.sha256.unwrap_or_default()
                    ),
                })
            }
            TaskState::Partial => {
                return Err(StoreError::Conflict {
                    id,
                    reason: "a server is seeding this task right now; wait for it or remove the task".into(),
                })
            }
        }
    }
    if paths.partial(&id).exists() {
        return Err(StoreError::Conflict {
            id,
            reason: "a partial download of this task exists; wait for it or remove the task".into(),
        });
    }

    let meta = TaskMeta {
        format: STORE_FORMAT,
        id,
        url: url.map(str::to_owned),
        content_length: layout.content_length,
        piece_length: layout.piece_length,
        piece_count: layout.piece_count(),
        piece_digests: crcs.into_iter().map(piece_digest_string).collect(),
        sha256: Some(sha_hex),
        state: TaskState::Complete,
        created_unix_ms: unix_ms() as u64,
    };
    let json = meta.to_json()?;
    // Keep the lock (held through the renamed inode) until the metadata is in place.
    let _locked_data = tmp.commit(&data_path)?;
    atomic_write(&paths.tmp, id.as_str(), &meta_path, &json)?;
    Ok(meta)
}

/// Copies `src` into `dst` exactly `layout.content_length` bytes, returning the sha256 and every piece's
/// crc32. A source that ends early or grows is an error.
fn copy_hashing(
    src: &mut File,
    dst: &mut File,
    src_path: &Path,
    dst_path: &Path,
    layout: Layout,
) -> Result<([u8; 32], Vec<u32>), StoreError> {
    let mut buf = vec![0u8; COPY_BUFFER_BYTES];
    let mut sha = Sha256::new();
    let mut crcs = Vec::with_capacity(layout.piece_count() as usize);
    let mut piece_crc = crc32fast::Hasher::new();
    let mut in_piece: u64 = 0;
    let mut done: u64 = 0;
    let changed = || StoreError::SourceChanged {
        path: src_path.to_path_buf(),
    };
    while done < layout.content_length {
        let want = (layout.content_length - done).min(buf.len() as u64) as usize;
        let chunk = buf
            .get_mut(..want)
            .ok_or_else(|| StoreError::Internal("copy buffer".into()))?;
        let n = match src.read(chunk) {
            Ok(0) => return Err(changed()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("read", src_path)(e)),
        };
        let got = chunk
            .get(..n)
            .ok_or_else(|| StoreError::Internal("short read".into()))?;
        sha.update(got);
        dst.write_all(got).map_err(io_err("write", dst_path))?;
        // Split the chunk on piece boundaries for the crcs.
        let mut rest = got;
        while !rest.is_empty() {
            let room = (layout.piece_length - in_piece).min(rest.len() as u64) as usize;
            let (head, tail) = rest.split_at(room);
            piece_crc.update(head);
            in_piece += room as u64;
            rest = tail;
            if in_piece == layout.piece_length {
                crcs.push(std::mem::take(&mut piece_crc).finalize());
                in_piece = 0;
            }
        }
        done += n as u64;
    }
    if in_piece > 0 {
        crcs.push(piece_crc.finalize());
    }
    let mut probe = [0u8; 1];
    if matches!(src.read(&mut probe), Ok(n) if n > 0) {
        return Err(changed());
    }
    if crcs.len() != layout.piece_count() as usize {
        return Err(StoreError::Internal(format!(
            "{} crcs for {} pieces",
            crcs.len(),
            layout.piece_count()
        )));
    }
    Ok((sha.finalize().into(), crcs))
}
