//! The software vaults claim deterministic signatures for Ed25519, secp256k1 and BLS, and
//! the signing service relies on that claim to record those signatures without waiting for
//! the disk. These tests hold the claim to account, and show what the service does when
//! such a record is lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use signatory_e2e::requests::octez_preattestation as preattestation;
use signatory_signer::policy::KeyPolicy;
use signatory_signer::service::{KeyEntry, SignRequest, SignService};
use signatory_signer::store::{Recorded, StoreError, WatermarkStore};
use signatory_signer::vault::Vault;
use signatory_signer::watermark::{Decision, Watermark, WatermarkKey, WatermarkRequest};
use signatory_stores::MemStore;
use signatory_vaults::MemVault;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tezos_crypto::{Curve, SecretKey, SigningVersion};

#[tokio::test]
async fn claimed_deterministic_curves_really_sign_identically() {
    for curve in Curve::ALL {
        let key = SecretKey::generate(curve);
        let pkh = key.public_key().hash();
        let vault = MemVault::with_keys("mem", [key]);
        let claims = vault.signs_deterministically(curve);
        assert_eq!(claims, curve != Curve::P256, "{curve}");
        let mut distinct = std::collections::BTreeSet::new();
        for _ in 0..8 {
            let sig = vault
                .sign(&pkh, b"\x13same bytes", SigningVersion::default())
                .await
                .unwrap();
            distinct.insert(sig.to_b58check());
        }
        if claims {
            assert_eq!(distinct.len(), 1, "{curve} claims determinism but varies");
        } else {
            // P-256 uses random nonces; the service must then wait for the record.
            assert!(distinct.len() > 1, "{curve}: expected random nonces");
        }
    }
}

/// A store that forgets reproducible signature records, as a crash before the next group
/// commit would; durable records are kept. Counts which path the service took.
#[derive(Debug, Default)]
struct ForgetfulStore {
    inner: MemStore,
    durable_records: AtomicUsize,
    forgotten_records: AtomicUsize,
}

#[async_trait]
impl WatermarkStore for ForgetfulStore {
    async fn check_and_advance(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
    ) -> Result<Decision, StoreError> {
        self.inner.check_and_advance(key, req).await
    }
    async fn record_signature(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
        signature_b58: &str,
    ) -> Result<Recorded, StoreError> {
        self.durable_records.fetch_add(1, Ordering::SeqCst);
        self.inner.record_signature(key, req, signature_b58).await
    }
    async fn record_reproducible_signature(
        &self,
        _key: WatermarkKey,
        _req: WatermarkRequest,
        _signature_b58: &str,
    ) -> Result<Recorded, StoreError> {
        self.forgotten_records.fetch_add(1, Ordering::SeqCst);
        Ok(Recorded::Ours)
    }
    async fn get(&self, key: WatermarkKey) -> Result<Option<Watermark>, StoreError> {
        self.inner.get(key).await
    }
    async fn export(&self) -> Result<Vec<(WatermarkKey, Watermark)>, StoreError> {
        self.inner.export().await
    }
    async fn set(&self, key: WatermarkKey, w: Watermark, force: bool) -> Result<(), StoreError> {
        self.inner.set(key, w, force).await
    }
    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn name(&self) -> &'static str {
        "forgetful"
    }
}

#[tokio::test]
async fn a_lost_reproducible_record_still_gives_the_same_signature_and_no_second_payload() {
    for curve in Curve::ALL {
        let key = SecretKey::generate(curve);
        let pkh = key.public_key().hash();
        let vault: Arc<dyn Vault> = Arc::new(MemVault::with_keys("mem", [key.clone()]));
        let store = Arc::new(ForgetfulStore::default());
        let mut keys = HashMap::new();
        keys.insert(
            pkh,
            KeyEntry {
                public_key: key.public_key(),
                vault,
                policy: Some(KeyPolicy::default()),
            },
        );
        let service = SignService::new(keys, store.clone());
        let bytes = preattestation(7, 1);
        let sign = |bytes: &[u8]| {
            let bytes = bytes.to_vec();
            let service = &service;
            async move {
                service
                    .sign(SignRequest {
                        pkh: &pkh,
                        bytes: &bytes,
                        version: SigningVersion::default(),
                        client: None,
                    })
                    .await
                    .result
            }
        };
        let first = sign(&bytes).await.unwrap();
        let again = sign(&bytes).await.unwrap();
        if curve == Curve::P256 {
            // Random nonces: recorded durably, and the stored signature is replayed.
            assert_eq!(store.durable_records.load(Ordering::SeqCst), 1);
            assert!(again.replayed);
        } else {
            // The record was "lost": identical bytes are signed again, identically.
            assert_eq!(store.forgotten_records.load(Ordering::SeqCst), 2, "{curve}");
            assert!(!again.replayed);
        }
        assert_eq!(first.signature, again.signature, "{curve}");
        // The reservation is durable either way: another payload at this height is refused.
        assert!(sign(&preattestation(7, 2)).await.is_err(), "{curve}");
    }
}
