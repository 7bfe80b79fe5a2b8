//! The limit on distinct chains: a request for one more chain is refused before any state
//! is created, by every store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{key, req};
use signatory_signer::store::{StoreError, WatermarkStore};
use signatory_signer::watermark::{Decision, Watermark, WatermarkKey};
use signatory_stores::{FileStore, FileStoreOptions, MemStore, DEFAULT_MAX_CHAINS};
use tezos_crypto::ChainId;

fn on_chain(n: u8) -> WatermarkKey {
    WatermarkKey {
        chain_id: ChainId([0xc0, 0xff, 0xee, n]),
        ..key(0)
    }
}

/// With room for two chains: two are served, a third is refused and leaves no record,
/// the known ones go on, and an operator's `set` is not limited.
async fn third_chain_is_refused(store: &dyn WatermarkStore) {
    for n in [1, 2] {
        assert_eq!(
            store
                .check_and_advance(on_chain(n), req(1, 0, 1))
                .await
                .unwrap(),
            Decision::Advance
        );
    }
    let before = store.export().await.unwrap();
    match store.check_and_advance(on_chain(3), req(1, 0, 1)).await {
        Err(e @ StoreError::TooManyChains { max: 2, .. }) => {
            assert!(e.is_request_refused());
            assert!(e.to_string().contains("allowed_chains"), "{e}");
        }
        other => panic!("expected TooManyChains, got {other:?}"),
    }
    assert!(matches!(
        store.reserve(on_chain(4), req(1, 0, 1)).await,
        Err(StoreError::TooManyChains { .. })
    ));
    assert_eq!(
        store.export().await.unwrap(),
        before,
        "nothing was recorded"
    );
    assert_eq!(store.get(on_chain(3)).await.unwrap(), None);
    // Known chains, also with a new key or kind, are served as before.
    assert_eq!(
        store
            .check_and_advance(on_chain(1), req(2, 0, 1))
            .await
            .unwrap(),
        Decision::Advance
    );
    let other_key = WatermarkKey {
        pkh: key(9).pkh,
        ..on_chain(2)
    };
    assert_eq!(
        store
            .check_and_advance(other_key, req(1, 0, 1))
            .await
            .unwrap(),
        Decision::Advance
    );
    // An operator names a chain on purpose.
    let mark = Watermark {
        level: 5,
        round: 0,
        request_hash: [1; 32],
        signature: None,
    };
    store.set(on_chain(5), mark, false).await.unwrap();
    assert_eq!(store.get(on_chain(5)).await.unwrap().unwrap().level, 5);
}

#[tokio::test]
async fn the_mem_store_refuses_a_chain_beyond_its_limit() {
    third_chain_is_refused(&MemStore::with_max_chains(2)).await;
}

#[tokio::test]
async fn the_file_store_refuses_a_chain_beyond_its_limit_across_reopens() {
    let base = tempfile::tempdir().unwrap();
    FileStore::init(base.path()).unwrap();
    let options = FileStoreOptions::default().max_chains(2);
    let store = FileStore::open_with(base.path(), options.clone()).unwrap();
    let commits = store.stats().commits;
    third_chain_is_refused(&store).await;
    // One commit for each of the five records accepted, none for the refusals.
    assert_eq!(store.stats().commits - commits, 5);
    drop(store);
    // The chains are counted from what is on disk: three of them now (one set by hand).
    let store = FileStore::open_with(base.path(), options).unwrap();
    assert!(matches!(
        store.check_and_advance(on_chain(6), req(1, 0, 1)).await,
        Err(StoreError::TooManyChains { .. })
    ));
    store
        .check_and_advance(on_chain(5), req(6, 0, 1))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_default_limit_lets_a_few_networks_in_and_stops_a_flood() {
    let store = MemStore::new();
    let n = u8::try_from(DEFAULT_MAX_CHAINS).unwrap();
    for chain in 0..n {
        store
            .check_and_advance(on_chain(chain), req(1, 0, 1))
            .await
            .unwrap();
    }
    for chain in n..=u8::MAX {
        assert!(store
            .check_and_advance(on_chain(chain), req(1, 0, 1))
            .await
            .is_err());
    }
    assert_eq!(store.export().await.unwrap().len(), DEFAULT_MAX_CHAINS);
}
