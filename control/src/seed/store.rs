//! [`PieceSource`] over the data plane's real store (`hawker_dataplane::store::Store`), shared
//! as `Arc<Mutex<Store>>` like the origin seeder shares it. The lock is held only to look the
//! task up (`Store::get` clones an `Arc<Task>`); piece bits are read lock-free from the task's
//! atomic bitmap. The store has no "failed" state: a task whose seeding failed stays partial,
//! and SyncPieces then ends on its idle timeout. Changes are signalled through an optional
//! `watch` channel the seeding side bumps on every landed piece; without it, SyncPieces polls.

use super::{PieceSource, TaskProgress, TaskView};
use hawker_dataplane::store::Store;
use hawker_shared::ids::TaskId;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The real store as a [`PieceSource`].
#[derive(Clone)]
pub struct StorePieces {
    store: Arc<Mutex<Store>>,
    changes: Option<watch::Receiver<u64>>,
}

impl StorePieces {
    /// Reads `store`; `changes`, when given, must change whenever a piece lands or a task
    /// appears or completes.
    pub fn new(store: Arc<Mutex<Store>>, changes: Option<watch::Receiver<u64>>) -> StorePieces {
        StorePieces { store, changes }
    }

    fn task(&self, id: &TaskId) -> Option<Arc<hawker_dataplane::store::Task>> {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).get(id)
    }
}

impl PieceSource for StorePieces {
    fn lookup(&self, task_id: &TaskId) -> Option<TaskView> {
        let task = self.task(task_id)?;
        Some(TaskView {
            layout: task.layout(),
            progress: if task.is_complete() {
                TaskProgress::Complete
            } else {
                TaskProgress::Seeding
            },
        })
    }

    fn landed(&self, task_id: &TaskId, numbers: &[u32], out: &mut Vec<u32>) {
        if let Some(task) = self.task(task_id) {
            out.extend(numbers.iter().copied().filter(|n| task.has_piece(*n)));
        }
    }

    fn subscribe(&self) -> Option<watch::Receiver<u64>> {
        self.changes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hawker_dataplane::store::Verify;
    use hawker_shared::layout::Layout;

    #[test]
    fn reports_landed_pieces_and_completion() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), Verify::Quick).expect("open store");
        let store = Arc::new(Mutex::new(store));
        let source = StorePieces::new(store.clone(), None);
        let id = TaskId::parse(&[b'c'; 64]).expect("id");
        assert!(source.lookup(&id).is_none());
        let layout = Layout::new(2 * (4 << 20), 4 << 20).expect("layout");
        let (_task, mut writer) = store
            .lock()
            .expect("lock")
            .begin(id, Some("http://origin/x".into()), layout)
            .expect("begin");
        writer.write_piece(1, &vec![7u8; 4 << 20]).expect("piece 1");
        let view = source.lookup(&id).expect("known");
        assert_eq!(
            (view.layout, view.progress),
            (layout, TaskProgress::Seeding)
        );
        let mut out = Vec::new();
        source.landed(&id, &[0, 1, 5], &mut out);
        assert_eq!(out, [1]);
        writer.write_piece(0, &vec![8u8; 4 << 20]).expect("piece 0");
        writer.finish(None).expect("finish");
        assert_eq!(
            source.lookup(&id).expect("known").progress,
            TaskProgress::Complete
        );
    }
}
