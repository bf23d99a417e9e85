//! `--tasks-from-dir DIR`: the complete tasks of a hawker data dir (format: `docs/store.md`).
//!
//! Each task has `DIR/tasks/<id>.meta`, JSON written last and atomically, with `format` 1,
//! `id`, `content_length`, `piece_length`, `piece_digests` (`crc32:<decimal>` per piece),
//! `state` (`complete` or `partial`). This reader takes every complete task whose content file
//! `<id>.data` exists, with its layout and its digests, so even a plain Range server serving
//! the same files can be verified piece by piece. Partial tasks are skipped (their pieces are
//! not all there), as are files that are not metadata.
//!
//! Bounds: a metadata file is read only up to [`MAX_META_BYTES`] (the store's own bound);
//! at most [`crate::workload::MAX_TASKS`] tasks. Metadata that is unreadable, of another
//! format, naming another id, or inconsistent is an error naming the file: a bench run
//! against a store it cannot read is not a measurement of it.

use std::io::Read;
use std::path::Path;

use hawker_shared::digest::parse_piece_digest;
use hawker_shared::TaskId;
use serde::Deserialize;

use crate::workload::{TaskSpec, MAX_TASKS};

/// The largest metadata file read, in bytes (the store's `MAX_META_BYTES`).
pub const MAX_META_BYTES: u64 = 8 * 1024 * 1024;
/// The metadata format this reader understands (the store's `STORE_FORMAT`).
pub const STORE_FORMAT: u32 = 1;

/// The fields of `<id>.meta` dp-bench needs (others are ignored).
#[derive(Debug, Deserialize)]
struct TaskMeta {
    format: u32,
    id: String,
    content_length: u64,
    piece_length: u64,
    piece_count: u32,
    #[serde(default)]
    piece_digests: Vec<String>,
    state: String,
}

fn read_meta(path: &Path) -> Result<TaskMeta, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_META_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > MAX_META_BYTES {
        return Err(format!(
            "{}: longer than {MAX_META_BYTES} bytes",
            path.display()
        ));
    }
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The complete tasks of the data dir `dir`, sorted by id (so the workload order is stable).
pub fn read_tasks(dir: &Path) -> Result<Vec<TaskSpec>, String> {
    let tasks_dir = dir.join("tasks");
    let entries = std::fs::read_dir(&tasks_dir).map_err(|e| {
        format!(
            "{}: {e} (is {} a hawker data dir?)",
            tasks_dir.display(),
            dir.display()
        )
    })?;
    let mut tasks = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", tasks_dir.display()))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".meta")) else {
            continue;
        };
        let path = entry.path();
        let id = TaskId::parse(stem.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
        let meta = read_meta(&path)?;
        if meta.format != STORE_FORMAT {
            return Err(format!(
                "{}: format {} (dp-bench reads format {STORE_FORMAT})",
                path.display(),
                meta.format
            ));
        }
        if meta.id != stem {
            return Err(format!("{}: names task {}", path.display(), meta.id));
        }
        if meta.state != "complete" {
            continue;
        }
        if !tasks_dir.join(format!("{stem}.data")).is_file() {
            continue;
        }
        let digests = meta
            .piece_digests
            .iter()
            .map(|d| {
                parse_piece_digest(d).ok_or_else(|| {
                    format!("{}: digest {d:?} is not crc32:<decimal>", path.display())
                })
            })
            .collect::<Result<Vec<u32>, String>>()?;
        let task = TaskSpec::new(
            id,
            meta.content_length,
            Some(meta.piece_length),
            Some(digests),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        if task.piece_count() != meta.piece_count {
            return Err(format!(
                "{}: piece_count {} does not match the layout's {}",
                path.display(),
                meta.piece_count,
                task.piece_count()
            ));
        }
        tasks.push(task);
        if tasks.len() > MAX_TASKS {
            return Err(format!(
                "{}: more than {MAX_TASKS} tasks",
                tasks_dir.display()
            ));
        }
    }
    tasks.sort_by_key(|t| t.id);
    if tasks.is_empty() {
        return Err(format!(
            "{}: no complete task (<id>.meta with state complete and its <id>.data)",
            tasks_dir.display()
        ));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, content: &[u8], piece_length: u64, state: &str) -> String {
        let digests: Vec<String> = if state == "complete" {
            content
                .chunks(piece_length as usize)
                .map(|c| format!("\"crc32:{}\"", crc32fast::hash(c)))
                .collect()
        } else {
            Vec::new()
        };
        format!(
            r#"{{"format":1,"id":"{id}","url":null,"content_length":{},"piece_length":{piece_length},
               "piece_count":{},"piece_digests":[{}],"sha256":null,"state":"{state}",
               "created_unix_ms":1}}"#,
            content.len(),
            content.len().div_ceil(piece_length as usize),
            digests.join(",")
        )
    }

    #[test]
    fn complete_tasks_are_read_with_layout_and_digests() {
        let dir = tempfile::tempdir().unwrap();
        let tasks = dir.path().join("tasks");
        std::fs::create_dir(&tasks).unwrap();
        let a = format!("{:064x}", 2);
        let b = format!("{:064x}", 1);
        let c = format!("{:064x}", 3);
        let content: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        std::fs::write(tasks.join(format!("{a}.data")), &content).unwrap();
        std::fs::write(
            tasks.join(format!("{a}.meta")),
            meta(&a, &content, 1024, "complete"),
        )
        .unwrap();
        std::fs::write(tasks.join(format!("{b}.data")), b"abc").unwrap();
        std::fs::write(
            tasks.join(format!("{b}.meta")),
            meta(&b, b"abc", 4 << 20, "complete"),
        )
        .unwrap();
        std::fs::write(tasks.join(format!("{c}.partial")), &content).unwrap();
        std::fs::write(
            tasks.join(format!("{c}.meta")),
            meta(&c, &content, 1024, "partial"),
        )
        .unwrap();
        let found = read_tasks(dir.path()).unwrap();
        assert_eq!(found.len(), 2, "the partial task is skipped");
        assert_eq!(found[0].id.as_str(), b);
        assert_eq!(found[1].piece_count(), 5);
        assert_eq!(found[1].layout.piece_length, 1024);
        assert_eq!(found[1].digest(4), Some(crc32fast::hash(&content[4096..])));

        std::fs::write(
            tasks.join(format!("{b}.meta")),
            meta(&a, b"abc", 4 << 20, "complete"),
        )
        .unwrap();
        assert!(read_tasks(dir.path()).unwrap_err().contains("names task"));
        std::fs::write(tasks.join(format!("{b}.meta")), "{").unwrap();
        assert!(read_tasks(dir.path()).is_err());
        assert!(read_tasks(&dir.path().join("missing")).is_err());
    }
}
