//! Store tests on a real file system: import, reopen and verify, quarantine, partial tasks, rescan, ids.
//! Run with `cargo test -p hawker-dataplane store`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hawker_dataplane::store::{
    import_file, Layout, Store, StoreError, StoreEvent, StoreWatcher, TaskId, TaskState, Verify,
};
use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;

fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn write_src(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);
impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// Runs `f` with a subscriber capturing the log lines at WARN and above.
fn warn_lines<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    let cap = Capture::default();
    let sub = tracing_subscriber::fmt()
        .with_writer(cap.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let r = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    (r, text.lines().map(str::to_owned).collect())
}

fn quarantined(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir.join("quarantine")).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            for f in fs::read_dir(&p).unwrap() {
                out.push(f.unwrap().path());
            }
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn tasks_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir.join("tasks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn check_task_matches(store: &Store, id: &TaskId, bytes: &[u8]) {
    let task = store.get(id).expect("task loaded");
    assert!(task.is_complete());
    assert_eq!(task.bytes(), bytes);
    assert_eq!(task.sha256(), Some(sha_hex(bytes).as_str()));
    let layout = task.layout();
    assert_eq!(layout.content_length, bytes.len() as u64);
    assert_eq!(task.pieces_landed(), layout.piece_count());
    for r in layout.pieces() {
        let slice = &bytes[r.offset as usize..(r.offset + r.length) as usize];
        assert_eq!(
            task.piece_crc(r.number),
            Some(crc32fast::hash(slice)),
            "piece {}",
            r.number
        );
    }
    assert_eq!(task.piece_crc(layout.piece_count()), None);
}

#[test]
fn store_import_sizes_and_reopen_full() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let four = 4 * MIB;
    let cases: [(usize, u32); 5] = [
        (0, 0),
        (1, 1),
        (four, 1),
        (four + 1, 2),
        (3 * four + 12345, 4),
    ];
    let mut ids = Vec::new();
    for (i, (len, pieces)) in cases.iter().enumerate() {
        let bytes = content(*len, i as u64);
        let src = write_src(tmp.path(), &format!("src{i}"), &bytes);
        let meta = import_file(&dir, &src, None).unwrap();
        assert_eq!(
            meta.id.as_str(),
            sha_hex(&bytes),
            "content id is the sha256"
        );
        assert_eq!(meta.content_length, *len as u64);
        assert_eq!(meta.piece_length, four as u64);
        assert_eq!(meta.piece_count, *pieces);
        assert_eq!(meta.state, TaskState::Complete);
        assert_eq!(meta.sha256.as_deref(), Some(sha_hex(&bytes).as_str()));
        let want: Vec<String> = bytes
            .chunks(four)
            .map(|c| format!("crc32:{}", crc32fast::hash(c)))
            .collect();
        assert_eq!(meta.piece_digests, want);
        ids.push((meta.id, bytes));
    }
    // Nothing left in tmp/.
    assert_eq!(fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
    for verify in [Verify::Full, Verify::Quick] {
        let (store, warns) = warn_lines(|| Store::open(&dir, verify).unwrap());
        assert!(warns.is_empty(), "{warns:?}");
        assert_eq!(store.tasks().count(), cases.len());
        for (id, bytes) in &ids {
            check_task_matches(&store, id, bytes);
        }
        let empty = store.get(&ids[0].0).unwrap();
        assert!(empty.bytes().is_empty());
        assert!(empty.fd() >= 0);
    }
}

#[test]
fn store_import_is_idempotent_and_keeps_the_served_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let bytes = content(5 * MIB + 7, 9);
    let src = write_src(tmp.path(), "a", &bytes);
    let m1 = import_file(&dir, &src, None).unwrap();
    let inode = fs::metadata(dir.join("tasks").join(format!("{}.data", m1.id)))
        .unwrap()
        .ino();
    let m2 = import_file(&dir, &src, None).unwrap();
    assert_eq!(m1, m2);
    let inode2 = fs::metadata(dir.join("tasks").join(format!("{}.data", m1.id)))
        .unwrap()
        .ino();
    assert_eq!(inode, inode2, "the served file was not replaced");
    assert_eq!(fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
}

#[test]
fn store_task_id_for_url_equals_dragonflys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let src = write_src(tmp.path(), "f", b"hello");
    // From dragonfly-client-util 1.5.10 id_generator tests: this URL with a non-empty filter list that
    // filters none of its keys (dfget always sends its default list) gives this id.
    let meta = import_file(&dir, &src, Some("https://example.com/file.txt?b=2&a=1&b=1")).unwrap();
    assert_eq!(
        meta.id.as_str(),
        "7c8801d0596be5e8f9449d5c4af23866c72fe5205119c0e5912981f3b16a37aa"
    );
    assert_eq!(
        meta.url.as_deref(),
        Some("https://example.com/file.txt?b=2&a=1&b=1")
    );
    // Other content under the same URL id is refused, not silently replaced.
    let other = write_src(tmp.path(), "g", b"world");
    let err = import_file(
        &dir,
        &other,
        Some("https://example.com/file.txt?b=2&a=1&b=1"),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("remove the task first"), "{err}");
}

#[test]
fn store_corrupt_byte_is_quarantined_with_one_warn_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let bytes = content(2 * 4 * MIB + 100, 3);
    let good = content(100, 4);
    let m = import_file(&dir, &write_src(tmp.path(), "a", &bytes), None).unwrap();
    let g = import_file(&dir, &write_src(tmp.path(), "b", &good), None).unwrap();
    let data = dir.join("tasks").join(format!("{}.data", m.id));
    // Flip one byte in piece 1 (in place: this is the corruption the store must catch).
    let mut on_disk = fs::read(&data).unwrap();
    on_disk[4 * MIB + 17] ^= 0x01;
    fs::write(&data, &on_disk).unwrap();

    // Quick does not read content: it still serves the task (documented cost/benefit).
    {
        let store = Store::open(&dir, Verify::Quick).unwrap();
        assert!(store.get(&m.id).is_some());
    }
    let (store, warns) = warn_lines(|| Store::open(&dir, Verify::Full).unwrap());
    assert!(store.get(&m.id).is_none(), "corrupt task is not served");
    check_task_matches(&store, &g.id, &good);
    assert_eq!(warns.len(), 1, "{warns:?}");
    let line = &warns[0];
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("quarantined") && line.contains(m.id.as_str()),
        "{line}"
    );
    assert!(line.contains("piece 1 has crc32"), "{line}");
    assert!(
        line.contains(&dir.join("quarantine").display().to_string()),
        "{line}"
    );
    let q = quarantined(&dir);
    assert_eq!(q.len(), 2, "{q:?}");
    assert!(q.iter().any(|p| p.ends_with(format!("{}.data", m.id))));
    assert!(q.iter().any(|p| p.ends_with(format!("{}.meta", m.id))));
    assert_eq!(
        tasks_files(&dir),
        vec![format!("{}.data", g.id), format!("{}.meta", g.id)]
    );
}

#[test]
fn store_truncated_missing_and_bad_metadata_are_quarantined() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let a = import_file(&dir, &write_src(tmp.path(), "a", &content(3000, 1)), None).unwrap();
    let b = import_file(&dir, &write_src(tmp.path(), "b", &content(3000, 2)), None).unwrap();
    let c = import_file(&dir, &write_src(tmp.path(), "c", &content(3000, 3)), None).unwrap();
    let d = import_file(&dir, &write_src(tmp.path(), "d", &content(3000, 4)), None).unwrap();
    let t = dir.join("tasks");
    // a: truncated content (done from outside; the store itself never truncates).
    fs::OpenOptions::new()
        .write(true)
        .open(t.join(format!("{}.data", a.id)))
        .unwrap()
        .set_len(2999)
        .unwrap();
    // b: content missing.
    fs::remove_file(t.join(format!("{}.data", b.id))).unwrap();
    // c: metadata garbage.
    fs::write(t.join(format!("{}.meta", c.id)), b"{\"format\":1,").unwrap();
    // d: content without metadata (an import that crashed before its metadata).
    fs::remove_file(t.join(format!("{}.meta", d.id))).unwrap();
    // A stranger.
    fs::write(t.join("notes.txt"), b"hi").unwrap();

    let (store, warns) = warn_lines(|| Store::open(&dir, Verify::Quick).unwrap());
    assert_eq!(store.tasks().count(), 0);
    assert_eq!(warns.len(), 5, "{warns:?}");
    let find = |needle: &str| {
        warns
            .iter()
            .find(|l| l.contains(needle))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        find(a.id.as_str()).contains("content is 2999 bytes, metadata says 3000"),
        "{warns:?}"
    );
    assert!(find(b.id.as_str()).contains("content file"), "{warns:?}");
    assert!(find(c.id.as_str()).contains("bad metadata"), "{warns:?}");
    assert!(
        find(d.id.as_str()).contains("without metadata"),
        "{warns:?}"
    );
    assert!(find("notes.txt").contains("quarantined"), "{warns:?}");
    assert!(tasks_files(&dir).is_empty(), "{:?}", tasks_files(&dir));
    assert_eq!(quarantined(&dir).len(), 7);
    drop(store);
    // A second open finds nothing more to complain about.
    let (store, warns) = warn_lines(|| Store::open(&dir, Verify::Full).unwrap());
    assert!(warns.is_empty() && store.tasks().count() == 0, "{warns:?}");
}

#[test]
fn store_leftover_tmp_files_are_cleaned_but_live_ones_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    drop(Store::open(&dir, Verify::Full).unwrap());
    let stale = dir.join("tmp").join("import.1234.1.0.tmp");
    fs::write(&stale, b"half an import").unwrap();
    let live = dir.join("tmp").join("import.99.1.1.tmp");
    fs::write(&live, b"an import in progress").unwrap();
    let held = nix::fcntl::Flock::lock(
        fs::File::open(&live).unwrap(),
        nix::fcntl::FlockArg::LockExclusive,
    )
    .unwrap();
    let store = Store::open(&dir, Verify::Full).unwrap();
    assert!(!stale.exists(), "stale temp file removed");
    assert!(live.exists(), "a temp file under a live lock is left alone");
    drop(held);
    drop(store);
    drop(Store::open(&dir, Verify::Full).unwrap());
    assert!(!live.exists());
}

#[test]
fn store_open_errors_tell_the_operator_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_src(tmp.path(), "plain-file", b"x");
    let err = Store::open(&file.join("store"), Verify::Full).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::NotWritable { .. }), "{msg}");
    assert!(
        msg.contains("is not writable by uid") && msg.contains("pass another data dir"),
        "{msg}"
    );

    let dir = tmp.path().join("store");
    let first = Store::open(&dir, Verify::Full).unwrap();
    let err = Store::open(&dir, Verify::Full).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    drop(first);
    fs::write(dir.join("VERSION"), "hawker-store 99\n").unwrap();
    let err = Store::open(&dir, Verify::Full).unwrap_err();
    assert!(
        err.to_string().contains("format \"hawker-store 99\""),
        "{err}"
    );
}

const P: u64 = 4096;

fn small_layout(len: usize) -> Layout {
    Layout::new(len as u64, P).unwrap()
}

fn piece(bytes: &[u8], n: u32) -> &[u8] {
    let s = n as usize * P as usize;
    &bytes[s..(s + P as usize).min(bytes.len())]
}

#[test]
fn store_partial_task_resumes_with_only_landed_pieces_then_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let bytes = content(10 * P as usize + 100, 5); // 11 pieces, the last 100 bytes
    let id = TaskId::from_sha256(&[1u8; 32]);
    let layout = small_layout(bytes.len());
    {
        let mut store = Store::open(&dir, Verify::Full).unwrap();
        let (task, mut w) = store.begin(id, Some("http://o/x".into()), layout).unwrap();
        assert!(!task.is_complete());
        assert_eq!(
            task.bytes().len(),
            bytes.len(),
            "partial content mapped at full length"
        );
        for n in [0u32, 3, 10] {
            let crc = w.write_piece(n, piece(&bytes, n)).unwrap();
            assert_eq!(crc, crc32fast::hash(piece(&bytes, n)));
            assert_eq!(task.piece_crc(n), Some(crc));
            assert_eq!(
                &task.bytes()[(n as u64 * P) as usize..][..piece(&bytes, n).len()],
                piece(&bytes, n)
            );
        }
        assert!(!task.has_piece(1));
        assert_eq!(task.pieces_landed(), 3);
        // A second writer while the first lives is refused.
        assert!(matches!(
            store.begin(id, None, layout),
            Err(StoreError::WriterBusy { .. })
        ));
        // Finish before all pieces is refused.
        let err = w.finish(None).unwrap_err();
        assert!(
            matches!(err, StoreError::Incomplete { missing: 8, .. }),
            "{err}"
        );
    }
    assert!(tasks_files(&dir).iter().any(|f| f.ends_with(".partial")));
    assert!(tasks_files(&dir).iter().any(|f| f.ends_with(".journal")));
    let mut store = Store::open(&dir, Verify::Full).unwrap();
    let task = store.get(&id).unwrap();
    assert!(!task.is_complete());
    assert_eq!(task.url(), Some("http://o/x"));
    assert_eq!(task.pieces_landed(), 3);
    for n in 0..11u32 {
        assert_eq!(task.has_piece(n), [0, 3, 10].contains(&n), "piece {n}");
    }
    assert_eq!(task.sha256(), None);
    // A different layout for the same id is refused.
    assert!(matches!(
        store.begin(id, None, Layout::new(bytes.len() as u64, 2 * P).unwrap()),
        Err(StoreError::LayoutMismatch { .. })
    ));
    let (task2, mut w) = store.begin(id, None, layout).unwrap();
    assert!(Arc::ptr_eq(&task, &task2));
    assert_eq!(w.missing(), vec![1, 2, 4, 5, 6, 7, 8, 9]);
    let early = task.bytes().as_ptr();
    for n in w.missing() {
        w.write_piece(n, piece(&bytes, n)).unwrap();
    }
    let err = w.write_piece(4, piece(&bytes, 4)).unwrap_err();
    assert!(
        matches!(err, StoreError::PieceAlreadyLanded { number: 4, .. }),
        "{err}"
    );
    // Wrong sha256: refused, the task stays partial.
    let (_, mut w) = {
        drop(w);
        store.begin(id, None, layout).unwrap()
    };
    let err = w.write_piece(0, piece(&bytes, 0)).unwrap_err();
    assert!(matches!(err, StoreError::PieceAlreadyLanded { .. }));
    let err = w.finish(Some(&"0".repeat(64))).unwrap_err();
    assert!(matches!(err, StoreError::Sha256Mismatch { .. }), "{err}");
    assert!(!task.is_complete());
    let (_, w) = store.begin(id, None, layout).unwrap();
    let done = w.finish(Some(&sha_hex(&bytes).to_uppercase())).unwrap();
    assert!(Arc::ptr_eq(&done, &task));
    assert!(task.is_complete());
    assert_eq!(task.sha256(), Some(sha_hex(&bytes).as_str()));
    assert_eq!(
        task.bytes().as_ptr(),
        early,
        "same mapping after the rename"
    );
    assert_eq!(task.bytes(), &bytes[..]);
    assert_eq!(
        tasks_files(&dir),
        vec![format!("{id}.data"), format!("{id}.meta")]
    );
    let meta = task.meta();
    assert_eq!(meta.state, TaskState::Complete);
    assert_eq!(meta.piece_digests.len(), 11);
    assert_eq!(
        meta.piece_digests[10],
        format!("crc32:{}", crc32fast::hash(piece(&bytes, 10)))
    );
    drop(store);
    let store = Store::open(&dir, Verify::Full).unwrap();
    check_task_matches(&store, &id, &bytes);
    assert_eq!(store.get(&id).unwrap().url(), Some("http://o/x"));
}

#[test]
fn store_double_write_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let bytes = content(3 * P as usize, 6);
    let id = TaskId::from_sha256(&[2u8; 32]);
    let mut store = Store::open(&dir, Verify::Full).unwrap();
    let (task, mut w) = store.begin(id, None, small_layout(bytes.len())).unwrap();
    w.write_piece(1, piece(&bytes, 1)).unwrap();
    let other = vec![0xAAu8; P as usize];
    let err = w.write_piece(1, &other).unwrap_err();
    assert!(
        matches!(err, StoreError::PieceAlreadyLanded { number: 1, .. }),
        "{err}"
    );
    assert_eq!(&task.bytes()[P as usize..2 * P as usize], piece(&bytes, 1));
    assert!(matches!(
        w.write_piece(3, &other),
        Err(StoreError::PieceOutOfRange { .. })
    ));
    assert!(matches!(
        w.write_piece(2, &other[..10]),
        Err(StoreError::PieceLength { .. })
    ));
    assert!(!task.has_piece(2));
    assert_eq!(task.pieces_landed(), 1);
}

#[test]
fn store_partial_reopen_drops_journaled_pieces_whose_bytes_rotted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let bytes = content(4 * P as usize, 7);
    let id = TaskId::from_sha256(&[3u8; 32]);
    {
        let mut store = Store::open(&dir, Verify::Full).unwrap();
        let (_, mut w) = store.begin(id, None, small_layout(bytes.len())).unwrap();
        for n in 0..3 {
            w.write_piece(n, piece(&bytes, n)).unwrap();
        }
    }
    let partial = dir.join("tasks").join(format!("{id}.partial"));
    let mut on_disk = fs::read(&partial).unwrap();
    on_disk[P as usize + 5] ^= 0xFF;
    fs::write(&partial, &on_disk).unwrap();
    let (mut store, warns) = warn_lines(|| Store::open(&dir, Verify::Quick).unwrap());
    assert_eq!(warns.len(), 1, "{warns:?}");
    let task = store.get(&id).unwrap();
    assert!(task.has_piece(0) && !task.has_piece(1) && task.has_piece(2) && !task.has_piece(3));
    let (_, mut w) = store.begin(id, None, small_layout(bytes.len())).unwrap();
    assert_eq!(w.missing(), vec![1, 3]);
    w.write_piece(1, piece(&bytes, 1)).unwrap();
    w.write_piece(3, piece(&bytes, 3)).unwrap();
    w.finish(Some(&sha_hex(&bytes))).unwrap();
    drop(store);
    let store = Store::open(&dir, Verify::Full).unwrap();
    check_task_matches(&store, &id, &bytes);
}

#[test]
fn store_crash_between_rename_and_metadata_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let bytes = content(2 * P as usize + 1, 8);
    let id = TaskId::from_sha256(&[4u8; 32]);
    {
        let mut store = Store::open(&dir, Verify::Full).unwrap();
        let (_, mut w) = store.begin(id, None, small_layout(bytes.len())).unwrap();
        for n in 0..3 {
            w.write_piece(n, piece(&bytes, n)).unwrap();
        }
    }
    // Simulate the crash: the content was renamed, the metadata still says partial.
    let t = dir.join("tasks");
    fs::rename(
        t.join(format!("{id}.partial")),
        t.join(format!("{id}.data")),
    )
    .unwrap();
    let mut store = Store::open(&dir, Verify::Full).unwrap();
    let task = store.get(&id).unwrap();
    assert!(!task.is_complete());
    assert_eq!(task.pieces_landed(), 3);
    let (_, w) = store.begin(id, None, small_layout(bytes.len())).unwrap();
    assert!(w.missing().is_empty());
    w.finish(None).unwrap();
    assert_eq!(
        tasks_files(&dir),
        vec![format!("{id}.data"), format!("{id}.meta")]
    );
}

#[test]
fn store_empty_partial_task_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let id = TaskId::from_sha256(&[5u8; 32]);
    let mut store = Store::open(&dir, Verify::Full).unwrap();
    let (task, w) = store.begin(id, None, small_layout(0)).unwrap();
    assert!(w.missing().is_empty());
    w.finish(None).unwrap();
    assert!(task.is_complete());
    assert_eq!(task.sha256(), Some(sha_hex(b"").as_str()));
    drop(store);
    let store = Store::open(&dir, Verify::Full).unwrap();
    assert!(store.get(&id).unwrap().bytes().is_empty());
}

#[test]
fn store_rescan_picks_up_imports_and_removals() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut store = Store::open(&dir, Verify::Full).unwrap();
    let mut watcher = StoreWatcher::new(&dir).unwrap();
    assert!(
        !watcher.wait(Duration::from_millis(50)),
        "nothing changed yet"
    );
    assert!(store.rescan().unwrap().is_empty());

    let bytes = content(5 * MIB, 10);
    let src = write_src(tmp.path(), "a", &bytes);
    let dir2 = dir.clone();
    let importer = std::thread::spawn(move || import_file(&dir2, &src, None).unwrap());
    assert!(
        watcher.wait(Duration::from_secs(10)),
        "watcher saw the import"
    );
    let meta = importer.join().unwrap();
    let mut added = Vec::new();
    // The watcher may wake before the metadata lands; rescan until it shows up (bounded).
    for _ in 0..100 {
        added.extend(store.rescan().unwrap());
        if !added.is_empty() {
            break;
        }
        watcher.wait(Duration::from_millis(100));
    }
    assert_eq!(added.len(), 1);
    match &added[0] {
        StoreEvent::Added(t) => assert_eq!(t.id(), &meta.id),
        other => panic!("{other:?}"),
    }
    check_task_matches(&store, &meta.id, &bytes);
    assert!(store.rescan().unwrap().is_empty(), "no event twice");

    // Removed on disk by another process: forgotten; a mapping taken before stays readable.
    let held = store.get(&meta.id).unwrap();
    fs::remove_file(dir.join("tasks").join(format!("{}.meta", meta.id))).unwrap();
    fs::remove_file(dir.join("tasks").join(format!("{}.data", meta.id))).unwrap();
    let ev = store.rescan().unwrap();
    assert!(
        matches!(ev.as_slice(), [StoreEvent::Removed(id)] if *id == meta.id),
        "{ev:?}"
    );
    assert!(store.get(&meta.id).is_none());
    assert_eq!(held.bytes(), &bytes[..]);

    // remove(): unlinks, returns whether it existed.
    let m2 = import_file(&dir, &write_src(tmp.path(), "b", b"bee"), None).unwrap();
    store.rescan().unwrap();
    assert!(store.get(&m2.id).is_some());
    assert!(store.remove(&m2.id).unwrap());
    assert!(!store.remove(&m2.id).unwrap());
    assert!(tasks_files(&dir).is_empty());
}

/// Measurement for docs/store.md, not a test: how long `Store::open` takes for one 1 GiB task.
/// `cargo test -p hawker-dataplane --test store store_measure -- --ignored --nocapture`
/// (`HAWKER_STORE_MEASURE_MIB` changes the size; the content file is evicted from the page cache with
/// posix_fadvise(DONTNEED) for the cold run).
#[test]
#[ignore]
fn store_measure_open_verify_cost() {
    let mib: usize = std::env::var("HAWKER_STORE_MEASURE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let block = content(4 * MIB, 11);
    let layout = Layout::new((mib * MIB) as u64, 4 * MIB as u64).unwrap();
    let id = TaskId::from_sha256(&[9u8; 32]);
    let t0 = std::time::Instant::now();
    {
        let mut store = Store::open(&dir, Verify::Full).unwrap();
        let (_, mut w) = store.begin(id, None, layout).unwrap();
        for n in w.missing() {
            let len = layout.piece(n).unwrap().length as usize;
            w.write_piece(n, &block[..len]).unwrap();
        }
        w.finish(None).unwrap();
    }
    println!(
        "setup (begin + {} write_piece + finish): {:?}",
        layout.piece_count(),
        t0.elapsed()
    );
    let data = dir.join("tasks").join(format!("{id}.data"));
    let evict = || {
        let f = fs::File::open(&data).unwrap();
        f.sync_all().unwrap();
        // SAFETY: plain syscall on an fd we own.
        let rc = unsafe {
            libc::posix_fadvise(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                0,
                0,
                libc::POSIX_FADV_DONTNEED,
            )
        };
        assert_eq!(rc, 0);
    };
    for (label, verify, cold) in [
        ("Quick", Verify::Quick, true),
        ("Full, cold page cache", Verify::Full, true),
        ("Full, warm page cache", Verify::Full, false),
    ] {
        if cold {
            evict();
        }
        let t = std::time::Instant::now();
        let store = Store::open(&dir, verify).unwrap();
        let took = t.elapsed();
        assert!(store.get(&id).is_some());
        println!(
            "open {label} ({mib} MiB): {took:?} = {:.0} MiB/s",
            mib as f64 / took.as_secs_f64()
        );
    }
}

#[test]
fn store_begin_larger_than_the_free_space_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut store = Store::open(&dir, Verify::Full).unwrap();
    let st = nix::sys::statvfs::statvfs(&dir).unwrap();
    let free = st.blocks_available() as u64 * st.fragment_size() as u64;
    let want = free + (1 << 30);
    if want > hawker_dataplane::store::MAX_CONTENT_LENGTH_BYTES {
        eprintln!("skipped: {free} bytes free, more than the store's bound");
        return;
    }
    let id = TaskId::from_sha256(&[6u8; 32]);
    let layout = Layout::new(want, 64 << 20).unwrap();
    let err = store.begin(id, None, layout).unwrap_err();
    assert!(matches!(err, StoreError::NoSpace { .. }), "{err}");
    assert!(err.to_string().contains("free space"), "{err}");
    assert!(tasks_files(&dir).is_empty(), "{:?}", tasks_files(&dir));
    assert!(store.get(&id).is_none());
    // The store is still usable.
    let (_, w) = store.begin(id, None, small_layout(10)).unwrap();
    assert_eq!(w.missing(), vec![0]);
}

#[test]
fn store_import_errors_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let err = import_file(&dir, tmp.path(), None).unwrap_err();
    assert!(matches!(err, StoreError::NotRegularFile { .. }), "{err}");
    let err = import_file(&dir, &tmp.path().join("missing"), None).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    let long = format!("http://o/{}", "a".repeat(9000));
    let src = write_src(tmp.path(), "f", b"x");
    let err = import_file(&dir, &src, Some(&long)).unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(tasks_files(&dir).is_empty());
    assert_eq!(fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
}
