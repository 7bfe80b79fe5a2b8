//! A file store whose files are moved, replaced or removed while it is open stops: its
//! writes would no longer be what the next open reads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{key, new_file_store, req};
use signatory_signer::store::{StoreError, WatermarkStore};
use signatory_signer::watermark::Decision;
use signatory_stores::{FileStore, FileStoreOptions};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn store_dir(base: &Path) -> PathBuf {
    base.join("watermarks")
}

fn log_path(base: &Path) -> PathBuf {
    store_dir(base).join("log-1")
}

/// `health` reports the change, naming the store, and every later call is refused.
async fn assert_stopped(store: &FileStore, base: &Path, says: &str) {
    let err = store.health().await.unwrap_err();
    assert!(matches!(err, StoreError::Displaced { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&store_dir(base).display().to_string()) && text.contains(says),
        "{text}"
    );
    let refused = store.check_and_advance(key(2), req(1, 0, 1)).await;
    assert!(matches!(refused, Err(StoreError::Failed(_))), "{refused:?}");
    let refused = store.reserve(key(2), req(1, 0, 1)).await;
    assert!(matches!(refused, Err(StoreError::Failed(_))), "{refused:?}");
    assert!(matches!(store.health().await, Err(StoreError::Failed(_))));
}

/// A store with one acknowledged record, healthy.
async fn used_store() -> (tempfile::TempDir, FileStore) {
    let (base, store) = new_file_store();
    assert_eq!(
        store.check_and_advance(key(1), req(1, 0, 1)).await.unwrap(),
        Decision::Advance
    );
    store.health().await.unwrap();
    (base, store)
}

#[tokio::test]
async fn moving_the_store_directory_stops_the_store() {
    let (base, store) = used_store().await;
    fs::rename(store_dir(base.path()), base.path().join("elsewhere")).unwrap();
    assert_stopped(&store, base.path(), "store directory was moved").await;
}

#[tokio::test]
async fn a_new_store_in_place_of_the_moved_one_stops_the_old_one() {
    let (base, store) = used_store().await;
    fs::rename(store_dir(base.path()), base.path().join("elsewhere")).unwrap();
    // The operator mistake the check exists for: a fresh store where the old one was.
    FileStore::init(base.path()).unwrap();
    assert_stopped(&store, base.path(), "never create a new store").await;
}

#[tokio::test]
async fn replacing_the_log_stops_the_store() {
    let (base, store) = used_store().await;
    let copy = store_dir(base.path()).join("copy");
    fs::copy(log_path(base.path()), &copy).unwrap();
    fs::rename(&copy, log_path(base.path())).unwrap();
    assert_stopped(&store, base.path(), "log-1 was moved, replaced or removed").await;
}

#[tokio::test]
async fn deleting_the_log_stops_the_store() {
    let (base, store) = used_store().await;
    fs::remove_file(log_path(base.path())).unwrap();
    assert_stopped(&store, base.path(), "log-1 was moved, replaced or removed").await;
}

#[tokio::test]
async fn deleting_the_lock_file_stops_the_store() {
    let (base, store) = used_store().await;
    fs::remove_file(store_dir(base.path()).join("lock")).unwrap();
    assert_stopped(&store, base.path(), "another process could open this store").await;
}

#[tokio::test]
async fn the_writer_refuses_to_acknowledge_without_a_health_check() {
    let (base, store) = used_store().await;
    fs::rename(store_dir(base.path()), base.path().join("elsewhere")).unwrap();
    // Nobody polls health: the next commit itself finds the move and is not acknowledged.
    let err = store
        .check_and_advance(key(1), req(2, 0, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    assert!(
        err.to_string().contains("store directory was moved"),
        "{err}"
    );
    assert!(matches!(
        store.check_and_advance(key(3), req(1, 0, 1)).await,
        Err(StoreError::Failed(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compactions_never_look_like_a_replaced_log() {
    let base = tempfile::tempdir().unwrap();
    FileStore::init(base.path()).unwrap();
    // Every commit compacts: a new log, a new snapshot, the old log removed.
    let options = FileStoreOptions::default().compact_after_bytes(1);
    let store = Arc::new(FileStore::open_with(base.path(), options).unwrap());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        tokio::spawn(async move {
            let mut polls = 0u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                store.health().await.unwrap();
                polls += 1;
            }
            polls
        })
    };
    for level in 1..=200 {
        assert_eq!(
            store
                .check_and_advance(key(1), req(level, 0, 1))
                .await
                .unwrap(),
            Decision::Advance
        );
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(poller.await.unwrap() > 0);
    // The last compaction may still be under way: it follows the acknowledgement.
    assert!(store.stats().compactions >= 199, "{:?}", store.stats());
    store.health().await.unwrap();
}
