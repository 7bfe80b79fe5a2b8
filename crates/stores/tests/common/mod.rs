//! Helpers shared by the integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use signatory_signer::watermark::{WatermarkKey, WatermarkRequest};
use signatory_stores::FileStore;
use tezos_crypto::{ChainId, Curve, PublicKeyHash};
use tezos_encoding::WatermarkKind;

pub const CHAIN: ChainId = ChainId([0x7a, 0x06, 0xa7, 0x70]);

/// A distinct key per `n` (block watermarks of different bakers).
pub fn key(n: u16) -> WatermarkKey {
    let mut hash = [0u8; 20];
    hash[..2].copy_from_slice(&n.to_be_bytes());
    WatermarkKey::new(
        CHAIN,
        PublicKeyHash::new(Curve::Ed25519, hash),
        WatermarkKind::Block,
    )
}

/// A request whose hash is derived from `payload`, as the pipeline derives it from bytes.
pub fn req(level: i32, round: i32, payload: u32) -> WatermarkRequest {
    WatermarkRequest::for_bytes(level, round, &payload.to_be_bytes())
}

/// A fresh initialised store in a temporary base directory.
pub fn new_file_store() -> (tempfile::TempDir, FileStore) {
    let base = tempfile::tempdir().unwrap();
    FileStore::init(base.path()).unwrap();
    let store = FileStore::open(base.path()).unwrap();
    (base, store)
}
