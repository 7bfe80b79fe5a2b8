//! The service signs while the reservation is being written, and releases nothing before
//! the store says it is durable. A store whose durability the test opens and closes by
//! hand, and a vault that reports when it signed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use async_trait::async_trait;
use signatory_e2e::requests::octez_preattestation;
use signatory_signer::policy::KeyPolicy;
use signatory_signer::service::{KeyEntry, SignError, SignRequest, SignService};
use signatory_signer::store::{DurabilityTicket, Recorded, Reserved, StoreError, WatermarkStore};
use signatory_signer::vault::{Vault, VaultError, VaultKey};
use signatory_signer::watermark::{Decision, Watermark, WatermarkKey, WatermarkRequest};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tezos_crypto::{Curve, PublicKeyHash, SecretKey, Signature, SigningVersion};
use tokio::sync::{watch, Notify};

/// Whether the pending record reached the disk: not yet, yes, or the write failed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Gate {
    Closed,
    Durable,
    Failed,
}

#[derive(Debug)]
struct GatedStore {
    decision: Decision,
    gate: watch::Sender<Gate>,
    recorded: Mutex<Vec<String>>,
    /// A signature of the same bytes that another signer sharing the store recorded first.
    existing: Mutex<Option<String>>,
}

#[async_trait]
impl WatermarkStore for GatedStore {
    async fn check_and_advance(
        &self,
        key: WatermarkKey,
        req: WatermarkRequest,
    ) -> Result<Decision, StoreError> {
        let r = self.reserve(key, req).await?;
        self.wait_durable(r.durability).await?;
        Ok(r.decision)
    }
    async fn reserve(&self, _: WatermarkKey, _: WatermarkRequest) -> Result<Reserved, StoreError> {
        Ok(Reserved {
            decision: self.decision.clone(),
            durability: DurabilityTicket(1),
        })
    }
    async fn wait_durable(&self, _: DurabilityTicket) -> Result<(), StoreError> {
        let mut rx = self.gate.subscribe();
        let gate = *rx.wait_for(|g| *g != Gate::Closed).await.unwrap();
        match gate {
            Gate::Durable => Ok(()),
            _ => Err(StoreError::Failed("injected write failure".into())),
        }
    }
    async fn record_signature(
        &self,
        _: WatermarkKey,
        _: WatermarkRequest,
        signature_b58: &str,
    ) -> Result<Recorded, StoreError> {
        self.recorded.lock().unwrap().push(signature_b58.to_owned());
        Ok(match self.existing.lock().unwrap().clone() {
            Some(existing) => Recorded::Existing(existing),
            None => Recorded::Ours,
        })
    }
    async fn get(&self, _: WatermarkKey) -> Result<Option<Watermark>, StoreError> {
        Ok(None)
    }
    async fn export(&self) -> Result<Vec<(WatermarkKey, Watermark)>, StoreError> {
        Ok(Vec::new())
    }
    async fn set(&self, _: WatermarkKey, _: Watermark, _: bool) -> Result<(), StoreError> {
        Ok(())
    }
    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn name(&self) -> &'static str {
        "gated"
    }
}

#[derive(Debug)]
struct ReportingVault {
    key: SecretKey,
    signed: Notify,
}

#[async_trait]
impl Vault for ReportingVault {
    fn name(&self) -> &str {
        "reporting"
    }
    fn driver(&self) -> &'static str {
        "test"
    }
    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        Ok(vec![VaultKey::new(self.key.public_key(), "reporting")])
    }
    async fn sign(
        &self,
        _: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        let sig = self.key.sign(message, version).unwrap();
        self.signed.notify_one();
        Ok(sig)
    }
}

struct Setup {
    service: Arc<SignService>,
    store: Arc<GatedStore>,
    vault: Arc<ReportingVault>,
    pkh: PublicKeyHash,
}

fn setup(decision: Decision) -> Setup {
    setup_with(decision, Curve::Ed25519)
}

fn setup_with(decision: Decision, curve: Curve) -> Setup {
    let key = SecretKey::generate(curve);
    let pkh = key.public_key().hash();
    let vault = Arc::new(ReportingVault {
        key: key.clone(),
        signed: Notify::new(),
    });
    let store = Arc::new(GatedStore {
        decision,
        gate: watch::Sender::new(Gate::Closed),
        recorded: Mutex::new(Vec::new()),
        existing: Mutex::new(None),
    });
    let keys = HashMap::from([(
        pkh,
        KeyEntry {
            public_key: key.public_key(),
            vault: vault.clone(),
            policy: Some(KeyPolicy::default()),
        },
    )]);
    let service = Arc::new(SignService::new(keys, store.clone()));
    Setup {
        service,
        store,
        vault,
        pkh,
    }
}

fn spawn_sign(s: &Setup) -> tokio::task::JoinHandle<Result<(Signature, bool), SignError>> {
    let service = s.service.clone();
    let pkh = s.pkh;
    tokio::spawn(async move {
        let bytes = octez_preattestation(9, 1);
        let report = service
            .sign(SignRequest {
                pkh: &pkh,
                bytes: &bytes,
                version: SigningVersion::V3,
                client: None,
            })
            .await;
        report.result.map(|s| (s.signature, s.replayed))
    })
}

/// Long enough for a released answer to arrive; the assertion is that it does not.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_waits_for_its_reservation_to_be_durable() {
    let s = setup(Decision::Advance);
    let task = spawn_sign(&s);
    // The vault signs while the reservation is still being written ...
    s.vault.signed.notified().await;
    settle().await;
    // ... but the signature stays in the signer.
    assert!(!task.is_finished());
    assert!(s.store.recorded.lock().unwrap().is_empty());
    s.store.gate.send_replace(Gate::Durable);
    let (sig, replayed) = task.await.unwrap().unwrap();
    assert!(!replayed);
    let bytes = octez_preattestation(9, 1);
    s.vault
        .key
        .public_key()
        .verify(&bytes, &sig, SigningVersion::V3)
        .unwrap();
    assert_eq!(s.store.recorded.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_that_never_becomes_durable_releases_nothing() {
    let s = setup(Decision::Advance);
    let task = spawn_sign(&s);
    s.vault.signed.notified().await;
    s.store.gate.send_replace(Gate::Failed);
    let err = task.await.unwrap().unwrap_err();
    assert!(
        matches!(err, SignError::Store(StoreError::Failed(_))),
        "{err}"
    );
    assert!(s.store.recorded.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_signature_is_returned_only_once_durable() {
    let key = SecretKey::generate(Curve::Ed25519);
    let stored = key
        .sign(&octez_preattestation(9, 1), SigningVersion::V3)
        .unwrap();
    let s = setup(Decision::ReturnStored(stored.to_b58check()));
    let task = spawn_sign(&s);
    settle().await;
    assert!(!task.is_finished());
    s.store.gate.send_replace(Gate::Durable);
    let (sig, replayed) = task.await.unwrap().unwrap();
    assert!(replayed);
    assert_eq!(sig, stored);
}

/// Two signers share a store and sign the same bytes with a random-nonce key: the one that
/// records second releases the first one's signature, never a second, different one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_recorded_first_by_another_signer_is_the_one_released() {
    let s = setup_with(Decision::Advance, Curve::P256);
    let bytes = octez_preattestation(9, 1);
    let theirs = s.vault.key.sign(&bytes, SigningVersion::V3).unwrap();
    *s.store.existing.lock().unwrap() = Some(theirs.to_b58check());
    s.store.gate.send_replace(Gate::Durable);
    let (released, replayed) = spawn_sign(&s).await.unwrap().unwrap();
    assert_eq!(released, theirs);
    assert!(replayed);
    // Ours was made and offered to the store, and differs (P-256 nonces are random).
    let ours = s.store.recorded.lock().unwrap().clone();
    assert_eq!(ours.len(), 1);
    assert_ne!(ours[0], theirs.to_b58check());
}

/// A stored signature is checked like a fresh one before it leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_signature_that_does_not_verify_is_not_released() {
    let s = setup_with(Decision::Advance, Curve::P256);
    let other_bytes = octez_preattestation(10, 1);
    let wrong = s.vault.key.sign(&other_bytes, SigningVersion::V3).unwrap();
    *s.store.existing.lock().unwrap() = Some(wrong.to_b58check());
    s.store.gate.send_replace(Gate::Durable);
    let err = spawn_sign(&s).await.unwrap().unwrap_err();
    assert!(matches!(err, SignError::BadSignature { .. }), "{err}");
}
