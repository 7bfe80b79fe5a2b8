//! A deadline on every backend call: a vault whose backend hangs (a network partition, a
//! token that stopped answering) fails the call as a transient error instead of holding the
//! request, and its watermark slot, until the client gives up.

use async_trait::async_trait;
use signatory_signer::vault::{
    CallStats, Sealer, SessionUse, UnusableKey, Vault, VaultError, VaultKey,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tezos_crypto::{Curve, PublicKey, PublicKeyHash, SecretKey, Signature, SigningVersion};
use zeroize::Zeroizing;

/// `inner`, each call bounded by `deadline`.
#[derive(Debug)]
pub(crate) struct Deadlined {
    inner: Arc<dyn Vault>,
    deadline: Duration,
}

impl Deadlined {
    pub(crate) fn new(inner: Arc<dyn Vault>, deadline: Duration) -> Self {
        Deadlined { inner, deadline }
    }

    async fn bounded<T>(
        &self,
        operation: &str,
        call: impl Future<Output = Result<T, VaultError>>,
    ) -> Result<T, VaultError> {
        match tokio::time::timeout(self.deadline, call).await {
            Ok(done) => done,
            Err(_) => Err(VaultError::backend(
                self.inner.name(),
                true,
                format!(
                    "{operation} did not finish within {:.1} s",
                    self.deadline.as_secs_f64()
                ),
            )),
        }
    }
}

#[async_trait]
impl Vault for Deadlined {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn driver(&self) -> &'static str {
        self.inner.driver()
    }

    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        self.bounded("listing the keys", self.inner.list_keys())
            .await
    }

    fn unusable_keys(&self) -> Vec<UnusableKey> {
        self.inner.unusable_keys()
    }

    async fn sign(
        &self,
        pkh: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        self.bounded("signing", self.inner.sign(pkh, message, version))
            .await
    }

    async fn prove_possession(
        &self,
        pkh: &PublicKeyHash,
        override_pk: Option<&PublicKey>,
    ) -> Result<Signature, VaultError> {
        self.bounded(
            "the proof of possession",
            self.inner.prove_possession(pkh, override_pk),
        )
        .await
    }

    fn signs_deterministically(&self, curve: Curve) -> bool {
        self.inner.signs_deterministically(curve)
    }

    fn supports_deterministic_nonces(&self) -> bool {
        self.inner.supports_deterministic_nonces()
    }

    async fn deterministic_nonce(
        &self,
        pkh: &PublicKeyHash,
        data: &[u8],
    ) -> Result<[u8; 32], VaultError> {
        self.bounded("the nonce", self.inner.deterministic_nonce(pkh, data))
            .await
    }

    async fn health(&self) -> Result<(), VaultError> {
        self.bounded("the health check", self.inner.health()).await
    }

    fn sessions(&self) -> Option<SessionUse> {
        self.inner.sessions()
    }

    fn call_stats(&self) -> Option<CallStats> {
        self.inner.call_stats()
    }

    fn sealer(&self) -> Option<&dyn Sealer> {
        // The inner sealer, its calls bounded too.
        self.inner.sealer().map(|_| self as &dyn Sealer)
    }

    async fn generate(&self, curve: Curve) -> Result<VaultKey, VaultError> {
        self.bounded("generating a key", self.inner.generate(curve))
            .await
    }

    async fn import(&self, key: SecretKey) -> Result<VaultKey, VaultError> {
        self.bounded("importing the key", self.inner.import(key))
            .await
    }
}

#[async_trait]
impl Sealer for Deadlined {
    async fn seal(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let sealer = self
            .inner
            .sealer()
            .ok_or_else(|| self.inner.unsupported("sealing data keys"))?;
        self.bounded("sealing a data key", sealer.seal(key, plaintext))
            .await
    }

    async fn unseal(&self, key: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let sealer = self
            .inner
            .sealer()
            .ok_or_else(|| self.inner.unsupported("sealing data keys"))?;
        self.bounded("unsealing a data key", sealer.unseal(key, sealed))
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A backend that never answers.
    #[derive(Debug)]
    struct Hung;

    #[async_trait]
    impl Vault for Hung {
        fn name(&self) -> &str {
            "hung"
        }
        fn driver(&self) -> &'static str {
            "test"
        }
        async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
            std::future::pending().await
        }
        async fn sign(
            &self,
            _pkh: &PublicKeyHash,
            _message: &[u8],
            _version: SigningVersion,
        ) -> Result<Signature, VaultError> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_hung_backend_fails_transiently_at_the_deadline() {
        let vault = Deadlined::new(Arc::new(Hung), Duration::from_millis(100));
        let pkh = SecretKey::generate(Curve::Ed25519).public_key().hash();
        let e = vault
            .sign(&pkh, b"\x11", SigningVersion::V1)
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        assert_eq!(
            e.to_string(),
            "vault `hung` failed (temporary): signing did not finish within 0.1 s"
        );
        assert!(vault.list_keys().await.unwrap_err().is_transient());
        // Calls that finish in time pass through.
        assert!(vault.health().await.is_ok());
    }
}
