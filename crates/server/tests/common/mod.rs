//! What the listener tests share.

use async_trait::async_trait;
use signatory_signer::vault::{Vault, VaultError, VaultKey};
use signatory_vaults::MemVault;
use std::time::Duration;
use tezos_crypto::{PublicKey, PublicKeyHash, Signature, SigningVersion};

/// A vault that takes its time to sign.
#[derive(Debug)]
pub struct SlowVault {
    pub inner: MemVault,
    pub delay: Duration,
}

#[async_trait]
impl Vault for SlowVault {
    fn name(&self) -> &str {
        "slow"
    }
    fn driver(&self) -> &'static str {
        "test"
    }
    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        self.inner.list_keys().await
    }
    async fn sign(
        &self,
        pkh: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        tokio::time::sleep(self.delay).await;
        self.inner.sign(pkh, message, version).await
    }
    async fn prove_possession(
        &self,
        pkh: &PublicKeyHash,
        override_pk: Option<&PublicKey>,
    ) -> Result<Signature, VaultError> {
        self.inner.prove_possession(pkh, override_pk).await
    }
}
