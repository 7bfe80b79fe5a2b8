//! Concurrent requests: per-key atomicity, independence of keys, and group commit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{key, new_file_store, req};
use signatory_signer::store::WatermarkStore;
use signatory_signer::watermark::{Decision, RefusalReason, WatermarkRequest};
use signatory_stores::MemStore;
use std::sync::Arc;
use tokio::sync::Barrier;

/// Start `n` tasks together, each running `f(i)`, and collect their results in order.
async fn race<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let barrier = Arc::clone(&barrier);
        let fut = f(i);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            fut.await
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn one_winner_per_height(store: Arc<dyn WatermarkStore>) {
    const TASKS: usize = 32;
    for level in 1..=20 {
        let requests: Vec<WatermarkRequest> = (0..TASKS).map(|i| req(level, 0, i as u32)).collect();
        let decisions = race(TASKS, |i| {
            let store = Arc::clone(&store);
            let r = requests[i];
            async move { store.check_and_advance(key(0), r).await.unwrap() }
        })
        .await;
        let winners: Vec<usize> = (0..TASKS)
            .filter(|&i| decisions[i] == Decision::Advance)
            .collect();
        assert_eq!(winners.len(), 1, "level {level}: {decisions:?}");
        for (i, d) in decisions.iter().enumerate() {
            if i != winners[0] {
                match d {
                    Decision::Refuse(r) => assert_eq!(r.reason, RefusalReason::DifferentPayload),
                    other => panic!("level {level}: loser {i} got {other:?}"),
                }
            }
        }
        let stored = store.get(key(0)).await.unwrap().unwrap();
        assert!(
            stored.is_for(&requests[winners[0]]),
            "the record is the winner's"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_requests_on_one_key_get_one_advance_mem() {
    one_winner_per_height(Arc::new(MemStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_requests_on_one_key_get_one_advance_file() {
    let (_base, store) = new_file_store();
    one_winner_per_height(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_concurrent_requests_reserve_once_and_sign_the_same_bytes() {
    let (_base, store) = new_file_store();
    let store: Arc<dyn WatermarkStore> = Arc::new(store);
    let decisions = race(16, |_| {
        let store = Arc::clone(&store);
        async move {
            store
                .check_and_advance(key(1), req(5, 0, 42))
                .await
                .unwrap()
        }
    })
    .await;
    let advances = decisions
        .iter()
        .filter(|d| **d == Decision::Advance)
        .count();
    assert_eq!(advances, 1, "{decisions:?}");
    assert!(decisions
        .iter()
        .all(|d| matches!(d, Decision::Advance | Decision::SignAgainSameBytes)));
}

async fn keys_do_not_interfere(store: Arc<dyn WatermarkStore>) {
    const KEYS: usize = 64;
    // Every key asks for the same height with the same bytes: all must advance.
    let decisions = race(KEYS, |i| {
        let store = Arc::clone(&store);
        async move {
            let d = store
                .check_and_advance(key(i as u16), req(7, 1, 99))
                .await
                .unwrap();
            store
                .record_signature(key(i as u16), req(7, 1, 99), &format!("sig{i}"))
                .await
                .unwrap();
            d
        }
    })
    .await;
    assert!(
        decisions.iter().all(|d| *d == Decision::Advance),
        "{decisions:?}"
    );
    for i in 0..KEYS {
        let stored = store.get(key(i as u16)).await.unwrap().unwrap();
        assert_eq!(
            stored.signature.as_deref(),
            Some(format!("sig{i}").as_str())
        );
    }
    assert_eq!(store.export().await.unwrap().len(), KEYS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn different_keys_do_not_interfere_mem() {
    keys_do_not_interfere(Arc::new(MemStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn different_keys_do_not_interfere_file() {
    let (_base, store) = new_file_store();
    keys_do_not_interfere(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sequential_reservations_cost_one_commit_each() {
    // Baseline that shows the counter counts real commits: with no concurrency, every
    // acknowledged reservation needed its own commit, and a commit is two fdatasyncs (the
    // frame, then the acknowledged length in the log header).
    let (_base, store) = new_file_store();
    let before = store.stats();
    for level in 1..=20 {
        store
            .check_and_advance(key(0), req(level, 0, 1))
            .await
            .unwrap();
    }
    let after = store.stats();
    assert_eq!(after.fsyncs - before.fsyncs, 40);
    assert_eq!(after.commits - before.commits, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_share_fsyncs() {
    const TASKS: usize = 1000;
    let (_base, store) = new_file_store();
    let store = Arc::new(store);
    let before = store.stats();
    let decisions = race(TASKS, |i| {
        let store = Arc::clone(&store);
        async move {
            store
                .check_and_advance(key(i as u16), req(1, 0, 1))
                .await
                .unwrap()
        }
    })
    .await;
    assert!(decisions.iter().all(|d| *d == Decision::Advance));
    let after = store.stats();
    let fsyncs = after.fsyncs - before.fsyncs;
    assert_eq!(after.records_written - before.records_written, TASKS as u64);
    assert!(
        fsyncs * 10 <= TASKS as u64,
        "{TASKS} concurrent reservations used {fsyncs} fsyncs"
    );
}
