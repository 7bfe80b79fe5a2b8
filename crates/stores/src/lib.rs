//! High-watermark stores: the durable [`FileStore`] (the default on one machine), the
//! in-memory [`MemStore`] for tests, and import/export of Octez, ECAD Signatory and this
//! signer's own interchange format.
#![forbid(unsafe_code)]

mod codec;
pub mod file;
pub mod interchange;
pub mod mem;
mod rules;

pub use file::{FileStore, FileStoreOptions, FileStoreStats, OpenReport};
pub use mem::MemStore;
pub use rules::DEFAULT_MAX_CHAINS;

#[cfg(test)]
pub(crate) mod test_support {
    use signatory_signer::watermark::WatermarkKey;
    use tezos_crypto::{ChainId, Curve, PublicKeyHash};
    use tezos_encoding::WatermarkKind;

    /// A distinct block key per `n`.
    pub(crate) fn key(n: u8) -> WatermarkKey {
        WatermarkKey::new(
            ChainId([0x7a, 0x06, 0xa7, 0x70]),
            PublicKeyHash::new(Curve::Ed25519, [n; 20]),
            WatermarkKind::Block,
        )
    }
}
