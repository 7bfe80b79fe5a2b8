//! Throughput of the file store on the signing path: one `check_and_advance` plus one
//! `record_signature` per signature, with 1 and 32 concurrent tasks (each its own key, as
//! many bakers' keys behind one signer), on a temporary directory of the local disk.
//!
//! `SIGNATORY_BENCH_DIR` chooses where the temporary store is created (for example a
//! tmpfs, to see the CPU ceiling without disk latency). After each case the store's commit
//! statistics are printed: records per commit shows how much fsyncs are shared.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use signatory_signer::store::WatermarkStore;
use signatory_signer::watermark::{Decision, WatermarkKey, WatermarkRequest};
use signatory_stores::FileStore;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tezos_crypto::base58::{encode, Prefix};
use tezos_crypto::{ChainId, Curve, PublicKeyHash};
use tezos_encoding::WatermarkKind;

fn key(n: usize) -> WatermarkKey {
    let mut hash = [0u8; 20];
    hash[..8].copy_from_slice(&(n as u64).to_be_bytes());
    WatermarkKey::new(
        ChainId([0x7a, 0x06, 0xa7, 0x70]),
        PublicKeyHash::new(Curve::Ed25519, hash),
        WatermarkKind::Attestation,
    )
}

fn bench_signing_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let signature = encode(Prefix::Edsig, &[0x42; 64]);
    let mut group = c.benchmark_group("file_store_sign");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));

    for tasks in [1usize, 32] {
        let base = match std::env::var_os("SIGNATORY_BENCH_DIR") {
            Some(dir) => tempfile::tempdir_in(dir).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        FileStore::init(base.path()).unwrap();
        let file_store = Arc::new(FileStore::open(base.path()).unwrap());
        let store: Arc<dyn WatermarkStore> = Arc::clone(&file_store) as Arc<dyn WatermarkStore>;
        // Levels keep rising across criterion's calls, so every request is a new height.
        let next_level = Arc::new(AtomicI32::new(1));
        group.bench_function(format!("{tasks}_tasks"), |b| {
            b.iter_custom(|iters| {
                let per_task = (iters as usize).div_ceil(tasks);
                let first = next_level.fetch_add(per_task as i32, Ordering::Relaxed);
                let start = Instant::now();
                runtime.block_on(async {
                    let mut handles = Vec::with_capacity(tasks);
                    for t in 0..tasks {
                        let store = Arc::clone(&store);
                        let signature = signature.clone();
                        handles.push(tokio::spawn(async move {
                            for level in first..first + per_task as i32 {
                                let mut request = [0u8; 16];
                                request[..8].copy_from_slice(&(t as u64).to_be_bytes());
                                request[8..12].copy_from_slice(&level.to_be_bytes());
                                let req = WatermarkRequest::for_bytes(level, 0, &request);
                                let d = store.check_and_advance(key(t), req).await.unwrap();
                                assert_eq!(d, Decision::Advance);
                                store
                                    .record_signature(key(t), req, &signature)
                                    .await
                                    .unwrap();
                            }
                        }));
                    }
                    for h in handles {
                        h.await.unwrap();
                    }
                });
                // Report per signature actually made (per_task * tasks ≥ iters).
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_task * tasks) as f64)
            });
        });
        let stats = file_store.stats();
        eprintln!(
            "{tasks} tasks: {} records in {} commits ({:.1} records per commit), {} fsyncs, {} compactions",
            stats.records_written,
            stats.commits,
            stats.records_written as f64 / stats.commits.max(1) as f64,
            stats.fsyncs,
            stats.compactions
        );
    }
    group.finish();
}

criterion_group!(benches, bench_signing_path);
criterion_main!(benches);
