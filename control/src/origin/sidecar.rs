//! What the seeder remembers on disk about a partial task besides the store's own files: the
//! version of the origin's content its landed pieces came from, so a seed resumed after a crash
//! never mixes two versions.
//!
//! One JSON file per partial task, `<store dir>/origin/<task id>.json` (a folder the store does
//! not scan), written atomically (temp file, fsync, rename, fsync of the folder) BEFORE the
//! task's first piece can land, and removed once the task is complete or removed. It holds the
//! URL without its query, the content length and the validators (`ETag`, `Last-Modified`);
//! never a forwarded header (credentials stay in memory). Files are bounded to
//! [`MAX_SIDECAR_BYTES`] (16 KiB) when read.

use super::http::Validators;
use hawker_shared::ids::TaskId;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Largest sidecar file read, in bytes.
pub const MAX_SIDECAR_BYTES: u64 = 16 << 10;

/// The recorded version of one partial task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// The URL without its query (for operators reading the file).
    pub url: String,
    /// The origin's content length when the task began.
    pub content_length: u64,
    /// The origin's validators when the task began.
    pub validators: Validators,
}

/// The sidecar folder of one store.
#[derive(Debug, Clone)]
pub struct Sidecars {
    dir: PathBuf,
}

impl Sidecars {
    /// Sidecars under `store_dir/origin` (created on first write).
    pub fn new(store_dir: &Path) -> Sidecars {
        Sidecars {
            dir: store_dir.join("origin"),
        }
    }

    fn path(&self, id: &TaskId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// The recorded version, `None` when there is none or it cannot be read (logged).
    pub fn read(&self, id: &TaskId) -> Option<Recorded> {
        let path = self.path(id);
        let file = std::fs::File::open(&path).ok()?;
        let mut buf = Vec::new();
        if let Err(e) = file.take(MAX_SIDECAR_BYTES + 1).read_to_end(&mut buf) {
            tracing::warn!(path = %path.display(), "origin: cannot read seeding record: {e}");
            return None;
        }
        if buf.len() as u64 > MAX_SIDECAR_BYTES {
            tracing::warn!(path = %path.display(), "origin: seeding record over {MAX_SIDECAR_BYTES} bytes; ignored");
            return None;
        }
        match serde_json::from_slice(&buf) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(path = %path.display(), "origin: seeding record unreadable ({e}); ignored");
                None
            }
        }
    }

    /// Writes the record durably (see the module doc).
    pub fn write(&self, id: &TaskId, rec: &Recorded) -> Result<(), String> {
        let fail =
            |what: &str, p: &Path, e: std::io::Error| format!("cannot {what} {}: {e}", p.display());
        std::fs::create_dir_all(&self.dir).map_err(|e| fail("create", &self.dir, e))?;
        let json = serde_json::to_vec_pretty(rec).map_err(|e| e.to_string())?;
        let path = self.path(id);
        let tmp = self.dir.join(format!("{id}.json.tmp"));
        let mut f = std::fs::File::create(&tmp).map_err(|e| fail("create", &tmp, e))?;
        f.write_all(&json).map_err(|e| fail("write", &tmp, e))?;
        f.sync_all().map_err(|e| fail("fsync", &tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(|e| fail("rename into place", &path, e))?;
        sync_dir(&self.dir).map_err(|e| fail("fsync", &self.dir, e))
    }

    /// Removes the record, if any.
    pub fn remove(&self, id: &TaskId) {
        let path = self.path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                let _ = sync_dir(&self.dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), "origin: cannot remove seeding record: {e}")
            }
        }
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_sidecar_round_trips_and_ignores_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sidecars::new(dir.path());
        let id = TaskId::from_sha256(&[3u8; 32]);
        assert_eq!(s.read(&id), None);
        let rec = Recorded {
            url: "http://o/x".into(),
            content_length: 7,
            validators: Validators {
                etag: Some("\"e\"".into()),
                last_modified: None,
            },
        };
        s.write(&id, &rec).unwrap();
        assert_eq!(s.read(&id), Some(rec));
        std::fs::write(s.path(&id), b"{not json").unwrap();
        assert_eq!(s.read(&id), None);
        s.remove(&id);
        s.remove(&id);
        assert!(!s.path(&id).exists());
    }
}
