//! Secret keys held in this process's memory, shared by the `file` and `mem` drivers.

use parking_lot::RwLock;
use signatory_signer::vault::{VaultError, VaultKey};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tezos_crypto::{
    CryptoError, Curve, PublicKey, PublicKeyHash, SecretKey, Signature, SigningVersion,
};

/// The [`Vault`](signatory_signer::vault::Vault) implementation of a vault whose keys sit
/// in a [`Keyring`] field `keys` (`file`, `mem`): signing, proofs and nonces are the
/// keyring's. The vault type supplies its driver name and an inherent
/// `async fn store(&self, SecretKey) -> Result<VaultKey, VaultError>` that keeps a new key.
macro_rules! keyring_vault {
    ($vault:ty, $driver:literal) => {
        #[async_trait::async_trait]
        impl signatory_signer::vault::Vault for $vault {
            fn name(&self) -> &str {
                self.keys.vault()
            }

            fn driver(&self) -> &'static str {
                $driver
            }

            async fn list_keys(
                &self,
            ) -> Result<Vec<signatory_signer::vault::VaultKey>, signatory_signer::vault::VaultError>
            {
                Ok(self.keys.list())
            }

            async fn sign(
                &self,
                pkh: &tezos_crypto::PublicKeyHash,
                message: &[u8],
                version: tezos_crypto::SigningVersion,
            ) -> Result<tezos_crypto::Signature, signatory_signer::vault::VaultError> {
                self.keys.sign(pkh, message, version).await
            }

            async fn prove_possession(
                &self,
                pkh: &tezos_crypto::PublicKeyHash,
                override_pk: Option<&tezos_crypto::PublicKey>,
            ) -> Result<tezos_crypto::Signature, signatory_signer::vault::VaultError> {
                self.keys.prove_possession(pkh, override_pk).await
            }

            fn supports_deterministic_nonces(&self) -> bool {
                true
            }

            fn signs_deterministically(&self, curve: tezos_crypto::Curve) -> bool {
                $crate::keyring::signs_deterministically(curve)
            }

            async fn deterministic_nonce(
                &self,
                pkh: &tezos_crypto::PublicKeyHash,
                data: &[u8],
            ) -> Result<[u8; 32], signatory_signer::vault::VaultError> {
                self.keys.deterministic_nonce(pkh, data)
            }

            async fn health(&self) -> Result<(), signatory_signer::vault::VaultError> {
                self.keys.health().await
            }

            async fn generate(
                &self,
                curve: tezos_crypto::Curve,
            ) -> Result<signatory_signer::vault::VaultKey, signatory_signer::vault::VaultError>
            {
                self.store(tezos_crypto::SecretKey::generate(curve)).await
            }

            async fn import(
                &self,
                key: tezos_crypto::SecretKey,
            ) -> Result<signatory_signer::vault::VaultKey, signatory_signer::vault::VaultError>
            {
                self.store(key).await
            }
        }
    };
}
pub(crate) use keyring_vault;

/// What a health check signs: 0xff is no magic byte of any Tezos request, so this can
/// never pass for a block, an attestation or an operation (and it never leaves the process).
const HEALTH_PROBE: &[u8] = b"\xffsignatory vault health probe";

/// One key: its label (the secret file's alias), the decrypted secret, which wipes itself
/// on drop and prints as `REDACTED`, and its public key as derived when the key was loaded.
pub(crate) struct LocalKey {
    pub label: String,
    pub secret: SecretKey,
    pub public_key: PublicKey,
}

impl fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey")
            .field("label", &self.label)
            .field("pkh", &self.public_key.hash())
            .field("secret", &"REDACTED")
            .finish()
    }
}

/// The keys of one vault instance, by key hash.
pub(crate) struct Keyring {
    vault: String,
    keys: RwLock<BTreeMap<PublicKeyHash, Arc<LocalKey>>>,
    /// Which key the next health check signs with.
    next_probe: AtomicUsize,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.read();
        f.debug_struct("Keyring")
            .field("vault", &self.vault)
            .field("keys", &keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    pub fn new(vault: &str) -> Self {
        Keyring {
            vault: vault.to_owned(),
            keys: RwLock::new(BTreeMap::new()),
            next_probe: AtomicUsize::new(0),
        }
    }

    pub fn vault(&self) -> &str {
        &self.vault
    }

    /// Add a key; `false` (and nothing changed) when the vault already holds it.
    pub fn insert(&self, label: String, secret: SecretKey) -> bool {
        let public_key = secret.public_key();
        let pkh = public_key.hash();
        let mut keys = self.keys.write();
        if keys.contains_key(&pkh) {
            return false;
        }
        keys.insert(
            pkh,
            Arc::new(LocalKey {
                label,
                secret,
                public_key,
            }),
        );
        true
    }

    pub fn len(&self) -> usize {
        self.keys.read().len()
    }

    pub fn key(&self, pkh: &PublicKeyHash) -> Option<VaultKey> {
        self.keys.read().get(pkh).map(|k| self.describe(k))
    }

    pub fn list(&self) -> Vec<VaultKey> {
        self.keys
            .read()
            .values()
            .map(|k| self.describe(k))
            .collect()
    }

    fn describe(&self, key: &LocalKey) -> VaultKey {
        VaultKey::new(key.public_key.clone(), &self.vault).with_label(&key.label)
    }

    fn get(&self, pkh: &PublicKeyHash) -> Result<Arc<LocalKey>, VaultError> {
        self.keys
            .read()
            .get(pkh)
            .cloned()
            .ok_or_else(|| VaultError::KeyNotFound {
                vault: self.vault.clone(),
                pkh: *pkh,
            })
    }

    pub async fn sign(
        &self,
        pkh: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        let key = self.get(pkh)?;
        let signed = if key.secret.curve() == Curve::Bls12_381 {
            // BLS signing takes ~400 µs (hash-to-G2 and a scalar multiplication): on the
            // async workers it would stall every other request for that long, so it moves
            // to the blocking pool. Ed25519 (~18 µs), secp256k1 (~31 µs) and P-256 (~20 µs)
            // cost about what the hop to another thread costs, so they sign in place.
            let message = message.to_vec();
            tokio::task::spawn_blocking(move || key.secret.sign(&message, version))
                .await
                .map_err(|e| self.join_failed(e))?
        } else {
            key.secret.sign(message, version)
        };
        signed.map_err(|e| self.crypto_error(pkh, e))
    }

    pub async fn prove_possession(
        &self,
        pkh: &PublicKeyHash,
        override_pk: Option<&PublicKey>,
    ) -> Result<Signature, VaultError> {
        let key = self.get(pkh)?;
        let override_pk = override_pk.cloned();
        // A BLS signature, as costly as signing: same reasoning as in `sign`.
        tokio::task::spawn_blocking(move || key.secret.prove_possession(override_pk.as_ref()))
            .await
            .map_err(|e| self.join_failed(e))?
            .map_err(|e| self.crypto_error(pkh, e))
    }

    /// Sign a fixed probe with one key and verify it with the public key derived at load, so
    /// a key that no longer signs what its address says shows. Each call takes the next key:
    /// every key is probed over successive checks, one signature per check. A keyring with
    /// no keys has nothing that could fail to sign.
    pub async fn health(&self) -> Result<(), VaultError> {
        let key = {
            let keys = self.keys.read();
            let count = keys.len().max(1);
            let turn = self.next_probe.fetch_add(1, Ordering::Relaxed) % count;
            keys.values().nth(turn).cloned()
        };
        let Some(key) = key else {
            return Ok(());
        };
        let pkh = key.public_key.hash();
        let signature = self
            .sign(&pkh, HEALTH_PROBE, SigningVersion::default())
            .await?;
        key.public_key
            .verify(HEALTH_PROBE, &signature, SigningVersion::default())
            .map_err(|e| {
                VaultError::backend(
                    self.vault.clone(),
                    false,
                    format!("key {pkh} made a signature that does not verify: {e}"),
                )
            })
    }

    pub fn deterministic_nonce(
        &self,
        pkh: &PublicKeyHash,
        data: &[u8],
    ) -> Result<[u8; 32], VaultError> {
        Ok(self.get(pkh)?.secret.deterministic_nonce(data))
    }

    fn crypto_error(&self, pkh: &PublicKeyHash, e: CryptoError) -> VaultError {
        match e {
            CryptoError::Backend { .. } => {
                VaultError::backend(self.vault.clone(), false, e.to_string())
            }
            source => VaultError::Refused {
                vault: self.vault.clone(),
                pkh: *pkh,
                source,
            },
        }
    }

    fn join_failed(&self, e: tokio::task::JoinError) -> VaultError {
        VaultError::backend(
            self.vault.clone(),
            false,
            format!("signing task failed: {e}"),
        )
    }
}

/// Whether this crate's software signing is deterministic for `curve`: Ed25519 (RFC 8032),
/// secp256k1 (libsecp256k1, RFC 6979 nonces) and BLS are; P-256 signs through OpenSSL with a
/// random nonce, as Octez does.
pub(crate) const fn signs_deterministically(curve: tezos_crypto::Curve) -> bool {
    !matches!(curve, tezos_crypto::Curve::P256)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn health_signs_with_every_curve_and_an_empty_keyring_is_healthy() {
        let keyring = Keyring::new("local");
        keyring.health().await.unwrap();
        for curve in [
            Curve::Ed25519,
            Curve::Secp256k1,
            Curve::P256,
            Curve::Bls12_381,
        ] {
            keyring.insert(curve.to_string(), SecretKey::generate(curve));
        }
        for _ in 0..8 {
            keyring.health().await.unwrap();
        }
    }

    #[tokio::test]
    async fn health_takes_the_keys_in_turn_and_names_one_that_does_not_sign_for_its_address() {
        let keyring = Keyring::new("local");
        keyring.insert("a".into(), SecretKey::generate(Curve::Ed25519));
        keyring.insert("b".into(), SecretKey::generate(Curve::Bls12_381));
        // A key whose secret no longer matches the public key it was loaded with.
        let secret = SecretKey::generate(Curve::Ed25519);
        let leaked = secret.to_b58check().as_str().to_owned();
        let claimed = SecretKey::generate(Curve::Ed25519).public_key();
        let pkh = claimed.hash();
        keyring.keys.write().insert(
            pkh,
            Arc::new(LocalKey {
                label: "broken".into(),
                secret,
                public_key: claimed,
            }),
        );
        let mut failures = Vec::new();
        for _ in 0..9 {
            if let Err(e) = keyring.health().await {
                failures.push(e.to_string());
            }
        }
        assert_eq!(failures.len(), 3, "{failures:?}");
        for text in failures {
            assert!(text.contains("vault `local`"), "{text}");
            assert!(text.contains(&pkh.to_string()), "{text}");
            assert!(!text.contains(&leaked), "{text}");
        }
    }
}
