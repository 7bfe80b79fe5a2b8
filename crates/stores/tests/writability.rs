//! A store directory that takes no new files is refused at open and reported by the health
//! check, rather than found at the next compaction.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{key, req};
use signatory_signer::store::{StoreError, WatermarkStore};
use signatory_stores::{FileStore, FileStoreOptions};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Makes a directory refuse new files while alive: `chmod 0500`, and where that does not
/// stop this user (root), the immutable attribute. Undone on drop.
struct ReadOnly {
    dir: PathBuf,
    immutable: bool,
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.immutable {
            let _ = Command::new("chattr").arg("-i").arg(&self.dir).status();
        }
        let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700));
    }
}

fn takes_new_files(dir: &Path) -> bool {
    let probe = dir.join("test-probe");
    let created = fs::write(&probe, b"x").is_ok();
    let _ = fs::remove_file(&probe);
    created
}

/// `None` (with the reason printed) when this machine offers no way to do it.
fn read_only(dir: &Path) -> Option<ReadOnly> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o500)).unwrap();
    let mut guard = ReadOnly {
        dir: dir.to_path_buf(),
        immutable: false,
    };
    if !takes_new_files(dir) {
        return Some(guard);
    }
    // Root ignores permissions; an immutable directory refuses root too.
    guard.immutable = Command::new("chattr")
        .arg("+i")
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if guard.immutable && !takes_new_files(dir) {
        return Some(guard);
    }
    eprintln!(
        "skipped: neither chmod nor `chattr +i` stops this user from creating files in {}",
        dir.display()
    );
    None
}

#[test]
fn a_store_directory_that_takes_no_new_files_is_refused_at_open() {
    // Never opened (no lock file yet), and opened before.
    for opened_before in [false, true] {
        let base = tempfile::tempdir().unwrap();
        FileStore::init(base.path()).unwrap();
        if opened_before {
            drop(FileStore::open(base.path()).unwrap());
        }
        let dir = FileStore::store_dir(base.path());
        let Some(guard) = read_only(&dir) else {
            return;
        };
        match FileStore::open(base.path()) {
            Err(e @ StoreError::NotWritable { .. }) => {
                assert!(e.to_string().contains("is not writable"), "{e}")
            }
            other => panic!("opened before: {opened_before}: expected NotWritable, got {other:?}"),
        }
        drop(guard);
        FileStore::open(base.path()).unwrap();
    }
}

#[tokio::test]
async fn the_health_check_reports_a_directory_that_stopped_taking_files() {
    let base = tempfile::tempdir().unwrap();
    FileStore::init(base.path()).unwrap();
    let every_time = FileStoreOptions::default().health_probe_every(Duration::ZERO);
    let store = FileStore::open_with(base.path(), every_time).unwrap();
    store.health().await.unwrap();
    let dir = FileStore::store_dir(base.path());
    let Some(guard) = read_only(&dir) else {
        return;
    };
    match store.health().await {
        Err(StoreError::NotWritable { path, .. }) => assert_eq!(path, dir),
        other => panic!("expected NotWritable, got {other:?}"),
    }
    // Appends to the open log still work and are durable: unhealthy, not stopped.
    store.check_and_advance(key(0), req(1, 0, 1)).await.unwrap();
    drop(guard);
    store.health().await.unwrap();
    // No probe file is left behind.
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("probe"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

/// `/healthz` is unauthenticated: a client polling it must not cost a file sync per call.
/// A success is trusted for the configured interval; a failure is never reused.
#[tokio::test]
async fn a_good_probe_is_reused_and_a_failed_one_is_not() {
    let base = tempfile::tempdir().unwrap();
    FileStore::init(base.path()).unwrap();
    let an_hour = FileStoreOptions::default().health_probe_every(Duration::from_secs(3600));
    let store = FileStore::open_with(base.path(), an_hour).unwrap();
    let dir = FileStore::store_dir(base.path());
    let Some(guard) = read_only(&dir) else {
        return;
    };
    // Opening probed, but does not stand in for a health check: this one probes and fails.
    assert!(matches!(
        store.health().await,
        Err(StoreError::NotWritable { .. })
    ));
    // The failure was not remembered: writable again, the next check probes and succeeds.
    drop(guard);
    store.health().await.unwrap();
    // Within the interval that success answers, without touching the directory.
    let Some(_guard) = read_only(&dir) else {
        return;
    };
    store.health().await.unwrap();
}
