//! What survives a reopen, and how damage on disk is handled.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{key, new_file_store, req};
use signatory_signer::store::{Recorded, StoreError, WatermarkStore};
use signatory_signer::watermark::{Decision, RefusalReason, Watermark};
use signatory_stores::{FileStore, FileStoreOptions};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn log_path(base: &Path, generation: u64) -> PathBuf {
    base.join("watermarks").join(format!("log-{generation}"))
}

/// Run `f` with a subscriber that captures log output; return `f`'s result and the text.
fn with_captured_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Arc::clone(&buffer);
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || Sink(Arc::clone(&sink)))
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    (out, text)
}

#[tokio::test]
async fn acknowledged_records_are_present_after_reopen() {
    let (base, store) = new_file_store();
    for i in 0..10u16 {
        assert_eq!(
            store
                .check_and_advance(key(i), req(100 + i32::from(i), 1, 7))
                .await
                .unwrap(),
            Decision::Advance
        );
        if i % 2 == 0 {
            store
                .record_signature(key(i), req(100 + i32::from(i), 1, 7), &format!("sig{i}"))
                .await
                .unwrap();
        }
    }
    let before = store.export().await.unwrap();
    drop(store);

    let store = FileStore::open(base.path()).unwrap();
    assert_eq!(store.export().await.unwrap(), before);
    assert_eq!(store.open_report().records_replayed, 15);
    // Decisions after the restart follow the recorded state.
    assert_eq!(
        store
            .check_and_advance(key(0), req(100, 1, 7))
            .await
            .unwrap(),
        Decision::ReturnStored("sig0".into())
    );
    assert_eq!(
        store
            .check_and_advance(key(1), req(101, 1, 7))
            .await
            .unwrap(),
        Decision::SignAgainSameBytes
    );
    match store
        .check_and_advance(key(2), req(102, 1, 8))
        .await
        .unwrap()
    {
        Decision::Refuse(r) => assert_eq!(r.reason, RefusalReason::DifferentPayload),
        other => panic!("{other:?}"),
    }
    match store
        .check_and_advance(key(3), req(102, 9, 7))
        .await
        .unwrap()
    {
        Decision::Refuse(r) => assert_eq!(r.reason, RefusalReason::LevelBelow),
        other => panic!("{other:?}"),
    }
}

/// Length of a log that holds its header alone, as `init` writes it.
fn log_header_len() -> usize {
    let base = tempfile::tempdir().unwrap();
    FileStore::init(base.path()).unwrap();
    usize::try_from(fs::metadata(log_path(base.path(), 1)).unwrap().len()).unwrap()
}

/// Offsets where the log's frames start, and its end (`len u32 ‖ crc u32 ‖ body` each).
fn frame_boundaries(log: &[u8]) -> Vec<usize> {
    let mut at = log_header_len();
    let mut out = vec![at];
    while at < log.len() {
        let len = u32::from_be_bytes(log[at..at + 4].try_into().unwrap());
        at += 8 + usize::try_from(len).unwrap();
        out.push(at);
    }
    assert_eq!(at, log.len(), "the log does not end at a frame boundary");
    out
}

/// A stopped store whose key 0 advanced to levels 1..=5 and signed level 5, one commit
/// group each; returns the log's bytes.
async fn five_commits() -> (tempfile::TempDir, Vec<u8>) {
    let (base, store) = new_file_store();
    for level in 1..=5 {
        store
            .check_and_advance(key(0), req(level, 0, 1))
            .await
            .unwrap();
    }
    store
        .record_signature(key(0), req(5, 0, 1), "sig5")
        .await
        .unwrap();
    drop(store);
    let log = fs::read(log_path(base.path(), 1)).unwrap();
    (base, log)
}

fn assert_acknowledged_lost(result: Result<FileStore, StoreError>, what: &str) {
    match result {
        Err(e @ StoreError::AcknowledgedLost { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("lost acknowledged watermarks"),
                "{what}: {text}"
            );
            assert!(
                text.contains("signatory watermark import")
                    && text.contains("signatory watermark set"),
                "{what}: the message says how to fence the keys: {text}"
            );
        }
        other => panic!("{what}: expected AcknowledgedLost, got {other:?}"),
    }
}

#[tokio::test]
async fn a_log_cut_at_any_frame_boundary_or_to_its_header_is_refused() {
    let (base, log) = five_commits().await;
    let path = log_path(base.path(), 1);
    let boundaries = frame_boundaries(&log);
    assert_eq!(boundaries.len(), 7, "header, then six commit groups");
    for &cut in &boundaries[..boundaries.len() - 1] {
        fs::write(&path, &log[..cut]).unwrap();
        assert_acknowledged_lost(FileStore::open(base.path()), &format!("cut at {cut}"));
        // Reading beside a signer refuses it too, rather than listing rolled-back marks.
        assert!(
            matches!(
                FileStore::read_committed(base.path()),
                Err(StoreError::AcknowledgedLost { .. })
            ),
            "cut at {cut}"
        );
        // Refusing changed nothing on disk.
        assert_eq!(fs::read(&path).unwrap(), &log[..cut]);
    }
    fs::write(&path, &log).unwrap();
    let store = FileStore::open(base.path()).unwrap();
    let mark = store.get(key(0)).await.unwrap().unwrap();
    assert_eq!((mark.level, mark.signature.as_deref()), (5, Some("sig5")));
}

#[tokio::test]
async fn a_log_cut_anywhere_inside_acknowledged_commits_is_refused() {
    let (base, log) = five_commits().await;
    let path = log_path(base.path(), 1);
    let header = log_header_len();
    for cut in 0..log.len() {
        fs::write(&path, &log[..cut]).unwrap();
        let opened = FileStore::open(base.path());
        if cut < header {
            // Not even a header: damage of another kind, refused all the same.
            assert!(
                matches!(opened, Err(StoreError::Corrupt { .. })),
                "cut at {cut}: {opened:?}"
            );
        } else {
            assert_acknowledged_lost(opened, &format!("cut at {cut}"));
        }
    }
}

#[tokio::test]
async fn a_deleted_log_is_refused_as_lost_watermarks() {
    let (base, _log) = five_commits().await;
    fs::remove_file(log_path(base.path(), 1)).unwrap();
    assert_acknowledged_lost(FileStore::open(base.path()), "deleted log");
}

#[tokio::test]
async fn a_torn_write_after_the_acknowledged_end_is_dropped_with_a_warning() {
    let (base, log) = five_commits().await;
    let path = log_path(base.path(), 1);
    let boundaries = frame_boundaries(&log);
    let last = boundaries[boundaries.len() - 2];
    let frame = &log[last..];
    // A crash in the middle of writing the next commit group leaves any prefix of it.
    for torn in 1..frame.len() {
        let mut bytes = log.clone();
        bytes.extend_from_slice(&frame[..torn]);
        fs::write(&path, &bytes).unwrap();
        let (store, logs) = with_captured_logs(|| FileStore::open(base.path()));
        let store = store.unwrap_or_else(|e| panic!("torn {torn}: {e}"));
        assert_eq!(store.open_report().torn_tail_bytes, Some(torn as u64));
        assert!(
            logs.contains("WARN")
                && logs.contains("torn commit group")
                && logs.contains("past the length the log records as acknowledged"),
            "{logs}"
        );
        assert_eq!(store.get(key(0)).await.unwrap().unwrap().level, 5);
        drop(store);
        // Cut back to the acknowledged end.
        assert_eq!(fs::read(&path).unwrap(), log);
    }
    // Writing goes on from there, and the next open finds nothing to drop.
    let store = FileStore::open(base.path()).unwrap();
    store.check_and_advance(key(0), req(6, 0, 1)).await.unwrap();
    drop(store);
    let (store, logs) = with_captured_logs(|| FileStore::open(base.path()));
    let store = store.unwrap();
    assert_eq!(store.open_report().torn_tail_bytes, None, "{logs}");
    assert_eq!(store.get(key(0)).await.unwrap().unwrap().level, 6);
}

#[tokio::test]
async fn a_commit_synced_but_not_yet_acknowledged_is_kept() {
    // A crash between a frame's fdatasync and the one of its acknowledged length leaves an
    // intact frame past that length: the caller was not answered, keeping it is safe.
    let (base, store) = new_file_store();
    store.check_and_advance(key(0), req(1, 0, 1)).await.unwrap();
    drop(store);
    let path = log_path(base.path(), 1);
    let one = fs::read(&path).unwrap();
    let store = FileStore::open(base.path()).unwrap();
    store.check_and_advance(key(0), req(2, 0, 1)).await.unwrap();
    drop(store);
    let two = fs::read(&path).unwrap();
    let header = log_header_len();
    let mut crashed = one[..header].to_vec();
    crashed.extend_from_slice(&two[header..]);
    fs::write(&path, &crashed).unwrap();
    let store = FileStore::open(base.path()).unwrap();
    assert_eq!(store.open_report().torn_tail_bytes, None);
    assert_eq!(store.get(key(0)).await.unwrap().unwrap().level, 2);
    // Later commits acknowledge past it, so it is protected from then on.
    store.check_and_advance(key(0), req(3, 0, 1)).await.unwrap();
    drop(store);
    let three = fs::read(&path).unwrap();
    fs::write(&path, &three[..two.len()]).unwrap();
    assert_acknowledged_lost(FileStore::open(base.path()), "cut after a later commit");
}

#[tokio::test]
async fn zeroes_after_the_last_commit_are_a_torn_tail() {
    let (base, store) = new_file_store();
    store.check_and_advance(key(0), req(1, 0, 1)).await.unwrap();
    drop(store);
    let log = log_path(base.path(), 1);
    let mut file = OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(&[0u8; 4096]).unwrap();
    drop(file);
    let store = FileStore::open(base.path()).unwrap();
    assert_eq!(store.open_report().torn_tail_bytes, Some(4096));
    assert_eq!(store.get(key(0)).await.unwrap().unwrap().level, 1);
}

#[tokio::test]
async fn a_damaged_commit_followed_by_intact_ones_is_corruption() {
    let (base, store) = new_file_store();
    for level in 1..=3 {
        store
            .check_and_advance(key(0), req(level, 0, 1))
            .await
            .unwrap();
    }
    drop(store);
    let log = log_path(base.path(), 1);
    let mut bytes = fs::read(&log).unwrap();
    // Inside the first frame's body (after the log header and the 8-byte frame header).
    bytes[log_header_len() + 8 + 40] ^= 0x01;
    fs::write(&log, &bytes).unwrap();
    match FileStore::open(base.path()) {
        Err(StoreError::Corrupt { path, detail }) => {
            assert_eq!(path, log);
            assert!(detail.contains("followed by intact data"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_damaged_snapshot_is_corruption() {
    let (base, store) = new_file_store();
    store.check_and_advance(key(0), req(1, 0, 1)).await.unwrap();
    drop(store);
    let snapshot = base.path().join("watermarks/snapshot");
    let mut bytes = fs::read(&snapshot).unwrap();
    bytes[10] ^= 0x40;
    fs::write(&snapshot, &bytes).unwrap();
    assert!(matches!(
        FileStore::open(base.path()),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_store_that_was_never_created_is_not_silently_started() {
    let base = tempfile::tempdir().unwrap();
    for dir in [base.path().to_path_buf(), base.path().join("absent")] {
        match FileStore::open(&dir) {
            Err(StoreError::NotInitialised { path, hint }) => {
                assert_eq!(path, dir.join("watermarks"));
                assert!(hint.contains("signatory watermark init"), "{hint}");
            }
            other => panic!("expected NotInitialised, got {other:?}"),
        }
    }
    // Opening must not have created anything.
    assert!(!base.path().join("watermarks").exists());
}

#[test]
fn init_refuses_an_existing_store() {
    let (base, store) = new_file_store();
    drop(store);
    assert!(matches!(
        FileStore::init(base.path()),
        Err(StoreError::AlreadyInitialised { .. })
    ));
    // No leftovers of the refused attempt beside the store.
    let names: Vec<_> = fs::read_dir(base.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["watermarks"]);
}

#[test]
fn missing_snapshot_or_log_is_refused_not_a_reset() {
    for victim in ["snapshot", "log-1"] {
        let (base, store) = new_file_store();
        drop(store);
        fs::remove_file(base.path().join("watermarks").join(victim)).unwrap();
        match FileStore::open(base.path()) {
            Err(
                StoreError::Corrupt { detail, .. } | StoreError::AcknowledgedLost { detail, .. },
            ) => {
                assert!(detail.contains("missing"), "{victim}: {detail}")
            }
            other => panic!("{victim}: expected a refusal, got {other:?}"),
        }
    }
}

#[test]
fn a_second_open_while_the_first_is_alive_is_locked() {
    let (base, store) = new_file_store();
    match FileStore::open(base.path()) {
        Err(e @ StoreError::Locked { .. }) => {
            assert!(e.to_string().contains("locked by another process"), "{e}")
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(store);
    FileStore::open(base.path()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_reopen_preserve_everything() {
    let base = tempfile::tempdir().unwrap();
    FileStore::init(base.path()).unwrap();
    let options = FileStoreOptions::default().compact_after_bytes(2048);
    let store = Arc::new(FileStore::open_with(base.path(), options.clone()).unwrap());
    let mut tasks = Vec::new();
    for k in 0..8u16 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for level in 1..=60 {
                let r = req(level, level % 3, u32::from(k));
                assert_eq!(
                    store.check_and_advance(key(k), r).await.unwrap(),
                    Decision::Advance
                );
                if level % 4 != 0 {
                    store
                        .record_signature(key(k), r, &format!("sig-{k}-{level}"))
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = store.stats();
    assert!(stats.compactions >= 3, "{stats:?}");
    let before = store.export().await.unwrap();
    assert_eq!(before.len(), 8);
    drop(store);

    let store = FileStore::open_with(base.path(), options).unwrap();
    assert_eq!(store.export().await.unwrap(), before);
    let report = store.open_report().clone();
    assert!(report.log_generation > 1, "{report:?}");
    // Only the current log remains.
    let mut names: Vec<String> = fs::read_dir(base.path().join("watermarks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "lock".to_string(),
            format!("log-{}", report.log_generation),
            "snapshot".to_string()
        ]
    );
    for k in 0..8u16 {
        assert_eq!(
            store.get(key(k)).await.unwrap().unwrap(),
            Watermark {
                level: 60,
                round: 0,
                request_hash: req(60, 0, u32::from(k)).request_hash,
                signature: None,
            }
        );
        match store
            .check_and_advance(key(k), req(59, 0, u32::from(k)))
            .await
            .unwrap()
        {
            Decision::Refuse(r) => assert_eq!(r.reason, RefusalReason::LevelBelow),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn leftovers_of_an_interrupted_compaction_are_cleaned_up() {
    let (base, store) = new_file_store();
    store.check_and_advance(key(0), req(5, 0, 1)).await.unwrap();
    drop(store);
    let dir = base.path().join("watermarks");
    // A crash after creating the next log but before the snapshot named it, and a temp
    // snapshot that never got renamed.
    fs::write(dir.join("log-2"), b"").unwrap();
    fs::write(dir.join("snapshot.tmp"), b"partial").unwrap();
    let store = FileStore::open(base.path()).unwrap();
    assert_eq!(store.open_report().stale_logs_removed, 1);
    assert!(!dir.join("log-2").exists() && !dir.join("snapshot.tmp").exists());
    assert_eq!(store.get(key(0)).await.unwrap().unwrap().level, 5);
    drop(store);

    // A newer log that holds data is not ours to delete.
    fs::write(dir.join("log-2"), vec![1u8; 200]).unwrap();
    assert!(matches!(
        FileStore::open(base.path()),
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn record_signature_needs_the_exact_reservation() {
    let (_base, store) = new_file_store();
    store.check_and_advance(key(0), req(5, 0, 1)).await.unwrap();
    for wrong in [req(5, 0, 2), req(5, 1, 1), req(4, 0, 1)] {
        assert!(matches!(
            store.record_signature(key(0), wrong, "sig").await,
            Err(StoreError::ReservationLost { .. })
        ));
    }
    assert!(matches!(
        store.record_signature(key(1), req(5, 0, 1), "sig").await,
        Err(StoreError::ReservationLost { found: None, .. })
    ));
    assert_eq!(
        store
            .record_signature(key(0), req(5, 0, 1), "sigA")
            .await
            .unwrap(),
        Recorded::Ours
    );
    // A second signature of the same bytes keeps the first, and says which to release.
    assert_eq!(
        store
            .record_signature(key(0), req(5, 0, 1), "sigB")
            .await
            .unwrap(),
        Recorded::Existing("sigA".into())
    );
    assert_eq!(
        store
            .get(key(0))
            .await
            .unwrap()
            .unwrap()
            .signature
            .as_deref(),
        Some("sigA")
    );
}

#[tokio::test]
async fn operator_set_only_lowers_with_force_and_persists() {
    let (base, store) = new_file_store();
    let high = Watermark {
        level: 50,
        round: 0,
        request_hash: [1; 32],
        signature: None,
    };
    store.set(key(0), high.clone(), false).await.unwrap();
    let low = Watermark {
        level: 10,
        ..high.clone()
    };
    assert!(matches!(
        store.set(key(0), low.clone(), false).await,
        Err(StoreError::NotAbove { .. })
    ));
    assert_eq!(store.get(key(0)).await.unwrap(), Some(high));
    store.set(key(0), low.clone(), true).await.unwrap();
    drop(store);
    let store = FileStore::open(base.path()).unwrap();
    assert_eq!(store.get(key(0)).await.unwrap(), Some(low));
    store.health().await.unwrap();
    assert_eq!(store.name(), "file");
}

#[tokio::test]
async fn a_reproducible_signature_nobody_waits_for_is_still_written() {
    let (_base, store) = new_file_store();
    let r = req(500, 0, 1);
    store.check_and_advance(key(1), r).await.unwrap();
    let before = store.stats().records_written;
    store
        .record_reproducible_signature(key(1), r, "sigdet")
        .await
        .unwrap();
    // No request follows to carry it: the writer must commit it on its own (after its
    // short lazy delay; the bound here is only against hanging forever).
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.stats().records_written == before {
        assert!(
            std::time::Instant::now() < give_up,
            "the lone signature record was never written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn reproducible_signatures_are_not_waited_for_but_reach_the_disk() {
    let (base, store) = new_file_store();
    let r = req(500, 0, 1);
    assert_eq!(
        store.check_and_advance(key(1), r).await.unwrap(),
        Decision::Advance
    );
    store
        .record_reproducible_signature(key(1), r, "sigdet")
        .await
        .unwrap();
    // A replay waits until the record it answers from is durable.
    assert_eq!(
        store.check_and_advance(key(1), r).await.unwrap(),
        Decision::ReturnStored("sigdet".to_string())
    );
    // A record for other bytes is refused, like the durable path.
    assert!(store
        .record_reproducible_signature(key(1), req(500, 0, 2), "other")
        .await
        .is_err());
    drop(store);
    let store = FileStore::open(base.path()).unwrap();
    assert_eq!(
        store.get(key(1)).await.unwrap().and_then(|w| w.signature),
        Some("sigdet".to_string())
    );
}

/// The level recorded for each key in `records`.
fn levels(records: &[(signatory_signer::watermark::WatermarkKey, Watermark)]) -> Vec<(u16, i32)> {
    let mut out = Vec::new();
    for (k, mark) in records {
        let n = (0..400u16).find(|n| key(*n) == *k).unwrap();
        out.push((n, mark.level));
    }
    out.sort();
    out
}

#[tokio::test]
async fn committed_watermarks_are_read_beside_an_open_store_without_its_lock() {
    let (base, store) = new_file_store();
    for i in 0..20u16 {
        store
            .check_and_advance(key(i), req(50 + i32::from(i), 0, 1))
            .await
            .unwrap();
    }
    // The store holds its lock: opening it again is refused, reading is not.
    assert!(matches!(
        FileStore::open(base.path()),
        Err(StoreError::Locked { .. })
    ));
    let read = FileStore::read_committed(base.path()).unwrap();
    let expected: Vec<(u16, i32)> = (0..20u16).map(|i| (i, 50 + i32::from(i))).collect();
    assert_eq!(levels(&read), expected);
    drop(store);
    let missing = tempfile::tempdir().unwrap();
    assert!(matches!(
        FileStore::read_committed(missing.path()),
        Err(StoreError::NotInitialised { .. })
    ));
}

#[tokio::test]
async fn reading_committed_watermarks_leaves_a_torn_tail_for_the_next_open() {
    let (base, store) = new_file_store();
    store.check_and_advance(key(1), req(7, 0, 1)).await.unwrap();
    drop(store);
    let log = log_path(base.path(), 1);
    let intact = fs::metadata(&log).unwrap().len();
    OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&[0xAB; 13])
        .unwrap();
    let read = FileStore::read_committed(base.path()).unwrap();
    assert_eq!(levels(&read), vec![(1, 7)]);
    // Nothing on disk changed: the next open still finds (and drops) the torn bytes.
    assert_eq!(fs::metadata(&log).unwrap().len(), intact + 13);
    let store = FileStore::open(base.path()).unwrap();
    assert_eq!(store.open_report().torn_tail_bytes, Some(13));
}

/// Reads racing with commits and compactions always see a state the store committed, and
/// never one older than an earlier read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_racing_with_compactions_see_committed_states() {
    let base = tempfile::tempdir().unwrap();
    FileStore::init(base.path()).unwrap();
    let options = FileStoreOptions::default().compact_after_bytes(1024);
    let store = FileStore::open_with(base.path(), options).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = Arc::clone(&stop);
        let base = base.path().to_path_buf();
        std::thread::spawn(move || {
            let mut previous: Vec<(u16, i32)> = Vec::new();
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let now = levels(&FileStore::read_committed(&base).unwrap());
                for (n, level) in &previous {
                    let later = now.iter().find(|(m, _)| m == n).map(|(_, l)| *l);
                    assert!(
                        later >= Some(*level),
                        "key {n} went back: {later:?} < {level}"
                    );
                }
                previous = now;
                reads += 1;
            }
            reads
        })
    };
    for level in 1..=30 {
        for i in 0..10u16 {
            store
                .check_and_advance(key(i), req(level, 0, 1))
                .await
                .unwrap();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);
    assert!(store.stats().compactions > 0);
    let expected: Vec<(u16, i32)> = (0..10u16).map(|i| (i, 30)).collect();
    assert_eq!(
        levels(&FileStore::read_committed(base.path()).unwrap()),
        expected
    );
}
