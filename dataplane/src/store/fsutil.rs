//! File-system helpers of the store: directory fsync, temp files that vanish unless committed, atomic
//! replace (tmp + fsync + rename + fsync dir), advisory locks, quarantine moves.
//!
//! Invariants: every temp file lives in `DIR/tmp/` and holds an exclusive `flock` for its whole life, so a
//! cleaner (the store at open) can tell a live temp file (lock busy) from a crash leftover (lock free). A
//! rename is only durable after its directory is fsynced; helpers here always do both.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use super::StoreError;

/// Maps an io error on `path` to a StoreError, turning ENOSPC into [`StoreError::NoSpace`].
pub(crate) fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| {
        if source.raw_os_error() == Some(libc::ENOSPC)
            || source.raw_os_error() == Some(libc::EDQUOT)
        {
            StoreError::NoSpace {
                path: path.to_path_buf(),
            }
        } else {
            StoreError::Io {
                what,
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// fsync a directory so the renames and unlinks inside it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

pub(crate) fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file in `DIR/tmp/`, exclusively flocked, unlinked on drop unless [`TmpFile::commit`] renamed it.
pub(crate) struct TmpFile {
    file: Option<Flock<File>>,
    pub path: PathBuf,
    armed: bool,
}

impl TmpFile {
    /// Creates `tmp_dir/<stem>.<pid>.<n>.tmp` (O_EXCL) and locks it.
    pub fn create(tmp_dir: &Path, stem: &str) -> Result<TmpFile, StoreError> {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = tmp_dir.join(format!(
            "{stem}.{}.{}.{n}.tmp",
            std::process::id(),
            unix_ms()
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_err("create temp file", &path))?;
        let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(f) => f,
            Err((_, errno)) => {
                let _ = fs::remove_file(&path);
                return Err(StoreError::Io {
                    what: "lock temp file",
                    path,
                    source: io::Error::from(errno),
                });
            }
        };
        Ok(TmpFile {
            file: Some(file),
            path,
            armed: true,
        })
    }

    /// The open temp file (always present until commit).
    pub fn file(&mut self) -> &mut File {
        // The Option is only emptied by `commit`, which consumes self.
        self.file.as_deref_mut().expect("TmpFile used after commit")
    }

    /// fsyncs the file, renames it to `dest`, fsyncs `dest`'s directory. The lock stays held (same inode)
    /// until the returned handle is dropped.
    pub fn commit(mut self, dest: &Path) -> Result<Flock<File>, StoreError> {
        let path = self.path.clone();
        self.file().sync_all().map_err(io_err("fsync", &path))?;
        fs::rename(&self.path, dest).map_err(io_err("rename temp file into", dest))?;
        self.armed = false;
        let file = self.file.take().expect("TmpFile committed twice");
        if let Some(parent) = dest.parent() {
            fsync_dir(parent)?;
        }
        Ok(file)
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Atomically replaces `dest` with `bytes`: temp file in `tmp_dir`, fsync, rename, fsync the directory.
pub(crate) fn atomic_write(
    tmp_dir: &Path,
    stem: &str,
    dest: &Path,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let mut tmp = TmpFile::create(tmp_dir, stem)?;
    let path = tmp.path.clone();
    tmp.file()
        .write_all(bytes)
        .map_err(io_err("write", &path))?;
    tmp.commit(dest)?;
    Ok(())
}

/// True when someone else holds an flock on `path` (a live importer or writer); false when free or gone.
pub(crate) fn is_locked_elsewhere(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(_unlocked_on_drop) => false,
        Err((_, errno)) => errno == nix::errno::Errno::EWOULDBLOCK,
    }
}

/// Moves `files` (those that exist) into a fresh `quarantine_dir/<label>.<unix_ms>/` and returns that dir.
pub(crate) fn quarantine(
    quarantine_dir: &Path,
    label: &str,
    files: &[PathBuf],
) -> Result<PathBuf, StoreError> {
    let mut dest = quarantine_dir.join(format!("{label}.{}", unix_ms()));
    let mut n = 0u32;
    while dest.exists() {
        n += 1;
        dest = quarantine_dir.join(format!("{label}.{}.{n}", unix_ms()));
    }
    fs::create_dir(&dest).map_err(io_err("create quarantine directory", &dest))?;
    for f in files {
        let Some(name) = f.file_name() else { continue };
        match fs::rename(f, dest.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("move into quarantine", f)(e)),
        }
    }
    if let Some(parent) = files.first().and_then(|f| f.parent()) {
        fsync_dir(parent)?;
    }
    fsync_dir(&dest)?;
    fsync_dir(quarantine_dir)?;
    Ok(dest)
}

/// Unlinks `path`; a missing file is not an error. Returns whether it existed.
pub(crate) fn unlink_if_exists(path: &Path) -> Result<bool, StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("unlink", path)(e)),
    }
}

/// Fails with [`StoreError::NoSpace`] when the filesystem holding `fd` has fewer than `needed_bytes`
/// available to this user, so a large reservation fails up front instead of filling the disk first.
/// If statvfs itself fails, it does not block the write (the write's own ENOSPC still applies).
pub(crate) fn check_free_space<Fd: std::os::fd::AsFd>(
    fd: Fd,
    path: &Path,
    needed_bytes: u64,
) -> Result<(), StoreError> {
    let Ok(st) = nix::sys::statvfs::fstatvfs(fd) else {
        return Ok(());
    };
    // fsblkcnt_t and c_ulong are u64 on 64-bit Linux but not everywhere.
    #[allow(clippy::unnecessary_cast)]
    let available = (st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64);
    if available < needed_bytes {
        return Err(StoreError::NoSpace {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}
