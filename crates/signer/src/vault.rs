//! The vault interface: where keys live and how they sign.
//!
//! Shaped for network backends as much as for local files: PKCS#11 HSMs, YubiHSM, cloud
//! KMS, Vault transit and Ledger answer in tens of milliseconds, through pooled
//! connections, and sometimes fail transiently. So every call is async, a vault is shared
//! as `Arc<dyn Vault>` by concurrent requests, and [`VaultError::is_transient`] tells a
//! retryable failure from a permanent one.
//!
//! The caller lists keys once at start, caches each public key, and verifies every
//! signature against it before release; a vault does not need to verify its own output.

use async_trait::async_trait;
use std::fmt;
use std::sync::Arc;
use tezos_crypto::{
    CryptoError, Curve, PublicKey, PublicKeyHash, SecretKey, Signature, SigningVersion,
};

/// A key a vault holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VaultKey {
    pub pkh: PublicKeyHash,
    pub public_key: PublicKey,
    /// The instance name of the vault that holds the key.
    pub vault: String,
    /// The backend's own name for the key (an alias, a key label, a KMS key id), if any.
    pub label: Option<String>,
}

impl VaultKey {
    pub fn new(public_key: PublicKey, vault: impl Into<String>) -> Self {
        VaultKey {
            pkh: public_key.hash(),
            public_key,
            vault: vault.into(),
            label: None,
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// A key the backend holds but the vault cannot sign with: an unsupported curve or
/// algorithm, no signing permission, disabled. Listed by `signatory list`, logged at start;
/// it never stops the vault's other keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableKey {
    /// The backend's name for the key (label, object id, key id).
    pub id: String,
    pub reason: String,
}

/// How a backend's pooled sessions are used, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionUse {
    pub in_use: usize,
    pub idle: usize,
    pub max: usize,
}

/// What a network vault's backend calls met, counted since it opened, for `/metrics`:
/// retries, and failures by class (each failed attempt counts, retried or not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    pub retries: u64,
    /// The service asked to slow down (HTTP 429, a throttling error).
    pub throttled: u64,
    /// The service failed (HTTP 5xx).
    pub server_errors: u64,
    /// No answer in time.
    pub timeouts: u64,
    /// No connection, or it broke.
    pub connection_errors: u64,
    /// The service refused the call (bad credentials, no permission, no such key): never
    /// retried.
    pub refused: u64,
}

impl CallStats {
    /// The failure classes and their counts, as `/metrics` labels them.
    pub fn failures(&self) -> [(&'static str, u64); 5] {
        [
            ("throttled", self.throttled),
            ("server", self.server_errors),
            ("timeout", self.timeouts),
            ("connection", self.connection_errors),
            ("refused", self.refused),
        ]
    }
}

/// A backend that encrypts small secrets (the data key of a sealed key file) under a key
/// it never reveals: KMS Encrypt/Decrypt, Vault transit encrypt/decrypt. `key` is the
/// backend's name for that key (a KMS key id or alias, a transit key name).
#[async_trait]
pub trait Sealer: Send + Sync {
    async fn seal(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError>;
    async fn unseal(
        &self,
        key: &str,
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, VaultError>;
}

/// Why a vault could not do what was asked. Messages name the vault and the key, never
/// key material, passwords or backend credentials.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    #[error("vault `{vault}` has no key {pkh}")]
    KeyNotFound { vault: String, pkh: PublicKeyHash },
    /// The driver cannot do this at all (e.g. generate keys in a read-only backend).
    #[error("vault `{vault}` ({driver}) does not support {operation}")]
    Unsupported {
        vault: String,
        driver: &'static str,
        operation: &'static str,
    },
    /// The key exists but cannot be used until it is unlocked (a password, a PIN, a
    /// device confirmation).
    #[error("key {key} in vault `{vault}` is locked: {hint}")]
    Locked {
        vault: String,
        key: String,
        hint: String,
    },
    /// The key cannot do this with these inputs (a BLS key asked for signing version 0, a
    /// proof of possession over a non-BLS key, …): the request is at fault, not the vault.
    #[error("vault `{vault}` cannot sign this with {pkh}: {source}")]
    Refused {
        vault: String,
        pkh: PublicKeyHash,
        #[source]
        source: CryptoError,
    },
    /// The backend failed. `transient`: a retry may succeed (timeout, connection reset,
    /// throttling, session expired); otherwise an operator has to look. `source` is the
    /// backend library's own error, kept for logs (`{:#}`-style chains), never for clients.
    #[error("vault `{vault}` failed{}: {message}", if *transient { " (temporary)" } else { "" })]
    Backend {
        vault: String,
        transient: bool,
        message: String,
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl VaultError {
    /// A [`VaultError::Backend`] without a cause; add one with [`VaultError::caused_by`].
    pub fn backend(vault: impl Into<String>, transient: bool, message: impl Into<String>) -> Self {
        VaultError::Backend {
            vault: vault.into(),
            transient,
            message: message.into(),
            source: None,
        }
    }

    /// This error with `cause` as its source (only [`VaultError::Backend`] keeps one).
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        if let VaultError::Backend { source, .. } = &mut self {
            *source = Some(Arc::new(cause));
        }
        self
    }
}

/// The error and its causes, `: `-separated, for a log line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let more = e.to_string();
        // Libraries often repeat their cause in their own message.
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = e.source();
    }
    text
}

impl VaultError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            VaultError::Backend {
                transient: true,
                ..
            }
        )
    }

    /// Whether the request itself was at fault (a client error rather than a backend one).
    pub fn is_bad_request(&self) -> bool {
        matches!(self, VaultError::Refused { .. })
    }
}

/// A key backend.
///
/// Implementations are shared between concurrent requests (`Send + Sync`) and must not
/// print secrets in `Debug`.
#[async_trait]
pub trait Vault: Send + Sync + fmt::Debug {
    /// The instance name from the configuration (`vaults.<name>`).
    fn name(&self) -> &str;

    /// The driver (`file`, `mem`, `pkcs11`, …).
    fn driver(&self) -> &'static str;

    /// Every key this vault can sign with.
    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError>;

    /// The keys the last [`Vault::list_keys`] found but skipped, with the reason.
    fn unusable_keys(&self) -> Vec<UnusableKey> {
        Vec::new()
    }

    /// Sign `message` (the full request bytes, magic byte included) as Octez signs with
    /// `version`: tz1–tz3 over its Blake2b-256 digest (ECDSA low-S), tz4 over the raw bytes
    /// with the version's BLS ciphersuite.
    async fn sign(
        &self,
        pkh: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError>;

    /// A BLS proof of possession by the tz4 key `pkh`, over its own public key or over
    /// `override_pk` (Octez's `bls_pk` parameter).
    async fn prove_possession(
        &self,
        pkh: &PublicKeyHash,
        override_pk: Option<&PublicKey>,
    ) -> Result<Signature, VaultError> {
        let _ = (pkh, override_pk);
        Err(self.unsupported("proofs of possession"))
    }

    /// Whether this vault's signatures with keys of `curve` are a function of the key and
    /// the bytes alone (Ed25519, RFC 6979 ECDSA, BLS), so signing the same bytes again gives
    /// the very same signature. The service then records the signature without waiting for
    /// it to reach the disk: if that record is lost in a crash, the durable reservation stays
    /// and identical bytes are signed again to the same signature. Backends with random
    /// nonces (most HSMs and KMSs, OpenSSL P-256) must answer `false`, the default.
    fn signs_deterministically(&self, curve: Curve) -> bool {
        let _ = curve;
        false
    }

    /// Whether [`Vault::deterministic_nonce`] works (it needs the secret key bytes, which
    /// hardware and cloud backends never reveal).
    fn supports_deterministic_nonces(&self) -> bool {
        false
    }

    /// Octez's deterministic nonce: HMAC-SHA256 keyed with the secret key, over `data`.
    async fn deterministic_nonce(
        &self,
        pkh: &PublicKeyHash,
        data: &[u8],
    ) -> Result<[u8; 32], VaultError> {
        let _ = (pkh, data);
        Err(self.unsupported("deterministic nonces"))
    }

    /// Whether the backend can sign now (connection up, session open, keys unlocked). Runs
    /// on every health poll, so it stays cheap: at most one signature per call (the local
    /// vaults sign and verify a probe with one key, a different one each call).
    async fn health(&self) -> Result<(), VaultError> {
        Ok(())
    }

    /// The backend's session pool, for drivers that have one.
    fn sessions(&self) -> Option<SessionUse> {
        None
    }

    /// Counts of the backend calls of vaults that talk to a service over the network.
    fn call_stats(&self) -> Option<CallStats> {
        None
    }

    /// The backend's encryption of data keys, for vaults that offer it (sealed key files).
    fn sealer(&self) -> Option<&dyn Sealer> {
        None
    }

    /// Create a new key of `curve` in the backend and return it.
    async fn generate(&self, curve: Curve) -> Result<VaultKey, VaultError> {
        let _ = curve;
        Err(self.unsupported("generating keys"))
    }

    /// Store an existing secret key in the backend and return it.
    async fn import(&self, key: SecretKey) -> Result<VaultKey, VaultError> {
        drop(key);
        Err(self.unsupported("importing keys"))
    }

    /// The [`VaultError::Unsupported`] error of this vault for `operation`.
    fn unsupported(&self, operation: &'static str) -> VaultError {
        VaultError::Unsupported {
            vault: self.name().to_owned(),
            driver: self.driver(),
            operation,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A vault that implements only what is required.
    #[derive(Debug)]
    struct Minimal;

    #[async_trait]
    impl Vault for Minimal {
        fn name(&self) -> &str {
            "minimal"
        }
        fn driver(&self) -> &'static str {
            "test"
        }
        async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
            Ok(Vec::new())
        }
        async fn sign(
            &self,
            pkh: &PublicKeyHash,
            _message: &[u8],
            _version: SigningVersion,
        ) -> Result<Signature, VaultError> {
            Err(VaultError::KeyNotFound {
                vault: self.name().to_owned(),
                pkh: *pkh,
            })
        }
    }

    #[tokio::test]
    async fn optional_operations_default_to_unsupported_naming_the_vault() {
        let vault: std::sync::Arc<dyn Vault> = std::sync::Arc::new(Minimal);
        let key = SecretKey::generate(Curve::Bls12_381);
        let pkh = key.public_key().hash();
        let errors = [
            vault.prove_possession(&pkh, None).await.unwrap_err(),
            vault.deterministic_nonce(&pkh, b"x").await.unwrap_err(),
            vault.generate(Curve::Ed25519).await.unwrap_err(),
            vault.import(key).await.unwrap_err(),
        ];
        for e in errors {
            assert!(matches!(e, VaultError::Unsupported { .. }), "{e:?}");
            assert!(e
                .to_string()
                .starts_with("vault `minimal` (test) does not support"));
            assert!(!e.is_transient());
        }
        assert!(!vault.supports_deterministic_nonces());
        assert!(vault.health().await.is_ok());
    }

    #[test]
    fn only_transient_backend_failures_are_transient() {
        let backend = |transient| VaultError::backend("hsm", transient, "connection reset");
        assert!(backend(true).is_transient());
        assert!(!backend(false).is_transient());
        assert_eq!(
            backend(true).to_string(),
            "vault `hsm` failed (temporary): connection reset"
        );
        let pkh = SecretKey::generate(Curve::Ed25519).public_key().hash();
        let refused = VaultError::Refused {
            vault: "v".to_owned(),
            pkh,
            source: CryptoError::NotBls {
                curve: Curve::Ed25519,
            },
        };
        assert!(refused.is_bad_request() && !refused.is_transient());
    }

    #[test]
    fn backend_errors_keep_their_cause_for_the_log() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = VaultError::backend("hsm", true, "cannot reach the connector").caused_by(cause);
        assert_eq!(
            e.to_string(),
            "vault `hsm` failed (temporary): cannot reach the connector"
        );
        assert_eq!(
            std::error::Error::source(&e).map(|s| s.to_string()),
            Some("refused".to_owned())
        );
        assert_eq!(
            error_chain(&e),
            "vault `hsm` failed (temporary): cannot reach the connector: refused"
        );
    }

    #[test]
    fn vault_keys_carry_their_hash() {
        let pk = SecretKey::generate(Curve::P256).public_key();
        let key = VaultKey::new(pk.clone(), "local").with_label("baker");
        assert_eq!(key.pkh, pk.hash());
        assert_eq!(key.label.as_deref(), Some("baker"));
        assert_eq!(key.vault, "local");
    }
}
