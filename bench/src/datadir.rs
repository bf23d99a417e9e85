//! `--tasks-from-dir DIR`: the tasks of a hawker data dir.
//!
//! hawker's store keeps one content file per complete task, `DIR/tasks/<task id>.data`
//! (written once, renamed into place; still-seeding tasks are `.partial` and are skipped here),
//! next to its `<task id>.meta`. This reader takes the task id from the file name and the
//! content length from the `.data` file's size, and lays the task out with Dragonfly's default
//! piece length. A task imported with a non-default piece length therefore shows up as
//! `bad_length` errors against a server that knows better: loud, not silent. (Reading the
//! piece length and digests from `.meta` comes with the store's documented format.)
//!
//! Bounds: at most [`crate::workload::MAX_TASKS`] tasks; other files are ignored; ids that
//! are not 64 lower-case hex digits are refused with the file's name.

use std::path::Path;

use hawker_shared::TaskId;

use crate::workload::{TaskSpec, MAX_TASKS};

/// The tasks of the data dir `dir`, sorted by id (so the workload order is stable).
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
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".data") else {
            continue;
        };
        let id = TaskId::parse(stem.as_bytes())
            .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        let meta = entry
            .metadata()
            .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        if !meta.is_file() {
            continue;
        }
        tasks.push(TaskSpec::new(id, meta.len(), None, None)?);
        if tasks.len() > MAX_TASKS {
            return Err(format!(
                "{}: more than {MAX_TASKS} tasks",
                tasks_dir.display()
            ));
        }
    }
    tasks.sort_by_key(|t| t.id);
    if tasks.is_empty() {
        return Err(format!("{}: no <task id>.data files", tasks_dir.display()));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_files_become_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let tasks = dir.path().join("tasks");
        std::fs::create_dir(&tasks).unwrap();
        let a = format!("{:064x}", 2);
        let b = format!("{:064x}", 1);
        std::fs::write(tasks.join(format!("{a}.data")), vec![0u8; 5 << 20]).unwrap();
        std::fs::write(tasks.join(format!("{a}.meta")), b"x").unwrap();
        std::fs::write(tasks.join(format!("{b}.data")), b"abc").unwrap();
        std::fs::write(tasks.join(format!("{:064x}.partial", 3)), b"abc").unwrap();
        let found = read_tasks(dir.path()).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].id.as_str(), b);
        assert_eq!(found[1].piece_count(), 2);
        std::fs::write(tasks.join("nothex.data"), b"").unwrap();
        assert!(read_tasks(dir.path()).is_err());
        assert!(read_tasks(&dir.path().join("missing")).is_err());
    }
}
