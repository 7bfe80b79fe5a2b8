//! One signing request, end to end: decode → policy → watermark → vault → verify → record.
//!
//! The order is the safety argument:
//! 1. nothing is recorded or signed for a request that can be refused without signing: bytes
//!    that do not decode, a policy refusal, a signing version the key's curve cannot sign
//!    with; every such check runs before the watermark store is touched, so a refused
//!    request never takes a height that the client's next, valid request needs;
//! 2. for watermarked requests (blocks, preattestations, attestations) the new high
//!    watermark is taken in the store *before* the vault is asked to sign, so a backend
//!    failure after that point can never let a second, different payload through at that
//!    level and round; the vault signs while the store writes the reservation, and the
//!    signature is held until the reservation is durable;
//! 3. the signature is verified against the key's public key and then recorded in the store
//!    (durably) *before* it is returned, so identical bytes asked again get the very same
//!    signature back (ECDSA with a random nonce would otherwise produce a second, different
//!    block at the same height);
//! 4. one key's watermark slot is a critical section from step 2 to step 3, so concurrent
//!    identical or conflicting requests are serialised.

use crate::policy::{KeyPolicy, PolicyDenial, RequestFacts};
use crate::store::{DurabilityTicket, Recorded, Reserved, StoreError, WatermarkStore};
use crate::vault::{Vault, VaultError};
use crate::verify::SignatureChecker;
use crate::watermark::{Decision, Refusal, WatermarkKey, WatermarkRequest};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tezos_crypto::{
    ChainId, CryptoError, Curve, PublicKey, PublicKeyHash, Signature, SigningVersion,
};
use tezos_encoding::{DecodeError, SigningRequest, WatermarkKind};

/// A key the service can sign with: where it lives and what it may sign.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub public_key: PublicKey,
    pub vault: Arc<dyn Vault>,
    /// `None`: the key is in a vault but not enabled in the configuration; its public key is
    /// served, but nothing is signed with it.
    pub policy: Option<KeyPolicy>,
}

/// A request to sign, as the transport hands it over.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    pub pkh: &'a PublicKeyHash,
    /// The bytes to sign, magic byte included.
    pub bytes: &'a [u8],
    pub version: SigningVersion,
    /// The authenticated client, if the request carried a valid authentication.
    pub client: Option<&'a PublicKeyHash>,
}

/// What a request was, for the log line and the metrics (whatever the outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSummary {
    /// Policy name of the request kind (`block`, `attestation_with_dal`, `generic` …).
    pub kind: &'static str,
    pub chain_id: Option<ChainId>,
    pub level: Option<i32>,
    pub round: Option<i32>,
    /// Operation kinds of a generic request, pseudo-kinds applied.
    pub operations: Vec<String>,
}

/// How long the parts of a request took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub watermark: Duration,
    pub vault: Duration,
}

/// The signature released to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub signature: Signature,
    /// `signature` in base58 (`edsig…`), encoded once for both the store and the reply.
    pub signature_b58: String,
    /// The same bytes were signed before: this is the recorded signature, not a new one.
    pub replayed: bool,
}

/// Everything known about one request after it was handled.
#[derive(Debug)]
pub struct SignReport {
    pub summary: Option<RequestSummary>,
    pub vault: Option<String>,
    pub timings: Timings,
    pub log_payloads: bool,
    pub result: Result<Signed, SignError>,
}

/// Why a request was not signed. [`SignError::class`] says how a transport should answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("key {0} is not known to this signer")]
    UnknownKey(PublicKeyHash),
    #[error("key {0} is not enabled: add it to the `tezos:` section of the configuration")]
    KeyNotEnabled(PublicKeyHash),
    #[error("cannot decode the request: {0}")]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Policy(#[from] PolicyDenial),
    #[error("{0}")]
    Watermark(Refusal),
    #[error("{}", store_error_message(.0))]
    Store(#[from] StoreError),
    #[error("signing backend failed: {0}")]
    Vault(#[from] VaultError),
    #[error("the backend returned a signature that does not verify against the public key of {pkh}; it was not released")]
    BadSignature {
        pkh: PublicKeyHash,
        #[source]
        source: CryptoError,
    },
    #[error("stored signature for identical bytes is unreadable: {0}")]
    StoredSignature(CryptoError),
    #[error("proof of possession exists only for tz4 (BLS) keys")]
    NotBls,
    #[error("{0} request without chain id or level cannot be watermarked; refusing to sign")]
    NoWatermarkPosition(WatermarkKind),
    #[error("{pkh} cannot sign with signing version {version}: tz4 (BLS) keys sign with versions 1 to 3")]
    UnsupportedVersion {
        pkh: PublicKeyHash,
        version: SigningVersion,
    },
}

/// How a transport should classify an error (maps to an HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Malformed input (400).
    BadRequest,
    /// Authentication required but missing (401).
    Unauthenticated,
    /// Policy refusal or authentication by an unauthorized client (403).
    Forbidden,
    /// Unknown key (404).
    NotFound,
    /// Watermark refusal (409).
    Conflict,
    /// The signer or one of its backends failed (500/503).
    Internal,
    /// A backend is temporarily unavailable (503).
    Unavailable,
}

/// A store that failed says so; a request the store refuses (a chain beyond its limit)
/// is told why without being blamed on the store.
fn store_error_message(e: &StoreError) -> String {
    if e.is_request_refused() {
        e.to_string()
    } else {
        format!("watermark store failed, refusing to sign: {e}")
    }
}

impl SignError {
    pub fn class(&self) -> ErrorClass {
        match self {
            SignError::UnknownKey(_) => ErrorClass::NotFound,
            SignError::KeyNotEnabled(_) | SignError::NotBls => ErrorClass::Forbidden,
            SignError::Decode(_)
            | SignError::NoWatermarkPosition(_)
            | SignError::UnsupportedVersion { .. } => ErrorClass::BadRequest,
            SignError::Policy(d) if d.is_authentication() => ErrorClass::Unauthenticated,
            SignError::Policy(_) => ErrorClass::Forbidden,
            SignError::Watermark(_) => ErrorClass::Conflict,
            SignError::Vault(e) if e.is_transient() => ErrorClass::Unavailable,
            SignError::Vault(e) if e.is_bad_request() => ErrorClass::BadRequest,
            SignError::Store(e) if e.is_transient() => ErrorClass::Unavailable,
            SignError::Store(e) if e.is_request_refused() => ErrorClass::Forbidden,
            SignError::Store(_)
            | SignError::Vault(_)
            | SignError::BadSignature { .. }
            | SignError::StoredSignature(_) => ErrorClass::Internal,
        }
    }
}

/// Fixed set of locks, one per watermark slot hash: bounded memory whatever chains and keys
/// clients name, and two different slots rarely share a stripe.
#[derive(Debug)]
struct SlotLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
}

impl SlotLocks {
    const STRIPES: usize = 1024;

    fn new() -> Self {
        SlotLocks {
            stripes: (0..Self::STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    async fn lock(&self, key: &WatermarkKey) -> tokio::sync::MutexGuard<'_, ()> {
        // The modulo keeps the index in range, so `get` cannot miss; fall back to stripe 0
        // rather than panic if that ever changed.
        let i = (self.hasher.hash_one(key) as usize) % self.stripes.len();
        match self.stripes.get(i).or_else(|| self.stripes.first()) {
            Some(m) => m.lock().await,
            None => unreachable_lock().await,
        }
    }
}

// `stripes` is never empty (built with STRIPES > 0); this only satisfies the type checker
// without a panic path.
async fn unreachable_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static FALLBACK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    FALLBACK.lock().await
}

/// The signing service: keys, their vaults and policies, and the watermark store.
#[derive(Debug)]
pub struct SignService {
    /// Keys can join while the service runs (a vault that was unavailable at start opens
    /// later); entries are shared, so a request holds its key without holding the lock.
    keys: std::sync::RwLock<HashMap<PublicKeyHash, Arc<KeyEntry>>>,
    store: Arc<dyn WatermarkStore>,
    locks: SlotLocks,
    checker: SignatureChecker,
    /// The protocol the chain runs: decides the layouts the bytes cannot tell apart.
    protocol: tezos_encoding::Protocol,
    /// Configured vaults that could not be opened, with the reason: health reports them.
    unavailable_vaults: std::sync::Mutex<Vec<(String, String)>>,
    /// Keys the configuration enables that no open vault holds (one may be in a vault
    /// that could not be opened), with their policies: health names them.
    missing_keys: std::sync::Mutex<Vec<(PublicKeyHash, KeyPolicy)>>,
}

/// How long one vault's health check may take before it counts as down.
pub const VAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

impl SignService {
    pub fn new(keys: HashMap<PublicKeyHash, KeyEntry>, store: Arc<dyn WatermarkStore>) -> Self {
        SignService {
            keys: std::sync::RwLock::new(
                keys.into_iter()
                    .map(|(pkh, entry)| (pkh, Arc::new(entry)))
                    .collect(),
            ),
            store,
            locks: SlotLocks::new(),
            checker: SignatureChecker::default(),
            protocol: tezos_encoding::Protocol::DEFAULT,
            unavailable_vaults: std::sync::Mutex::new(Vec::new()),
            missing_keys: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Keys the configuration enables that no open vault holds, with their policies.
    pub fn with_missing_keys(self, keys: Vec<(PublicKeyHash, KeyPolicy)>) -> Self {
        *lock(&self.missing_keys) = keys;
        self
    }

    /// Vaults of the configuration that could not be opened (name, reason): the service
    /// runs without them, and its health says so.
    pub fn with_unavailable_vaults(self, vaults: Vec<(String, String)>) -> Self {
        *lock(&self.unavailable_vaults) = vaults;
        self
    }

    /// The vaults still unavailable (name, reason).
    pub fn unavailable_vaults(&self) -> Vec<(String, String)> {
        lock(&self.unavailable_vaults).clone()
    }

    /// The enabled keys no open vault holds, with their policies.
    pub fn missing_keys(&self) -> Vec<(PublicKeyHash, KeyPolicy)> {
        lock(&self.missing_keys).clone()
    }

    /// Vault `vault`, unavailable until now, opened: serve `keys` (those it holds). A key
    /// the service already serves is kept as it is (the first vault holding a key serves
    /// it, as at start).
    pub fn add_vault_keys(&self, vault: &str, keys: HashMap<PublicKeyHash, KeyEntry>) {
        let mut served = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (pkh, entry) in keys {
            served.entry(pkh).or_insert_with(|| Arc::new(entry));
        }
        lock(&self.missing_keys).retain(|(pkh, _)| !served.contains_key(pkh));
        lock(&self.unavailable_vaults).retain(|(name, _)| name != vault);
    }

    /// Decode requests as `protocol` encodes them (default: [`tezos_encoding::Protocol::DEFAULT`]).
    pub fn with_protocol(mut self, protocol: tezos_encoding::Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    pub fn key(&self, pkh: &PublicKeyHash) -> Option<Arc<KeyEntry>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(pkh)
            .cloned()
    }

    /// The vaults that hold the service's keys, once each, by name.
    pub fn vaults(&self) -> Vec<Arc<dyn Vault>> {
        let mut vaults: Vec<Arc<dyn Vault>> = Vec::new();
        for (_, key) in self.keys() {
            if !vaults.iter().any(|v| v.name() == key.vault.name()) {
                vaults.push(Arc::clone(&key.vault));
            }
        }
        vaults.sort_by(|a, b| a.name().cmp(b.name()));
        vaults
    }

    /// Every key the vaults hold, enabled or not, sorted.
    pub fn keys(&self) -> Vec<(PublicKeyHash, Arc<KeyEntry>)> {
        let mut keys: Vec<_> = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(pkh, entry)| (*pkh, Arc::clone(entry)))
            .collect();
        keys.sort_by_key(|(pkh, _)| *pkh);
        keys
    }

    pub fn store(&self) -> &Arc<dyn WatermarkStore> {
        &self.store
    }

    pub fn public_key(&self, pkh: &PublicKeyHash) -> Result<PublicKey, SignError> {
        self.key(pkh)
            .map(|k| k.public_key.clone())
            .ok_or(SignError::UnknownKey(*pkh))
    }

    /// Handle one signing request. Never panics; every outcome is in the report.
    pub async fn sign(&self, req: SignRequest<'_>) -> SignReport {
        let mut report = SignReport {
            summary: None,
            vault: None,
            timings: Timings::default(),
            log_payloads: false,
            result: Err(SignError::UnknownKey(*req.pkh)),
        };
        let Some(key) = self.key(req.pkh) else {
            return report;
        };
        report.vault = Some(key.vault.name().to_string());
        let Some(policy) = &key.policy else {
            report.result = Err(SignError::KeyNotEnabled(*req.pkh));
            return report;
        };
        report.log_payloads = policy.log_payloads;
        let decoded = match SigningRequest::decode(req.bytes, self.protocol) {
            Ok(d) => d,
            Err(e) => {
                report.result = Err(SignError::Decode(e));
                return report;
            }
        };
        let summary = summarise(&decoded);
        let facts = RequestFacts {
            kind: summary.kind,
            chain_id: summary.chain_id,
            operation_kinds: &summary.operations,
        };
        let allowed = policy.check_sign(&facts, req.client);
        let slot = watermark_slot(&decoded, req.pkh, req.bytes);
        report.summary = Some(summary);
        if let Err(denial) = allowed {
            report.result = Err(SignError::Policy(denial));
            return report;
        }
        let slot = match slot {
            Ok(slot) => slot,
            Err(e) => {
                report.result = Err(e);
                return report;
            }
        };
        // Checked here, not left to the vault: the vault signs after the watermark is
        // reserved, and a refusal there would cost the key that height.
        if !signs_with(key.public_key.curve(), req.version) {
            report.result = Err(SignError::UnsupportedVersion {
                pkh: *req.pkh,
                version: req.version,
            });
            return report;
        }
        report.result = match slot {
            Some((wkey, wreq)) => {
                self.sign_watermarked(&key, &req, &wkey, &wreq, &mut report.timings)
                    .await
            }
            None => self
                .sign_and_verify(&key, &req, &mut report.timings)
                .await
                .map(|signature| Signed {
                    signature_b58: signature.to_b58check(),
                    signature,
                    replayed: false,
                }),
        };
        report
    }

    async fn sign_watermarked(
        &self,
        key: &KeyEntry,
        req: &SignRequest<'_>,
        wkey: &WatermarkKey,
        wreq: &WatermarkRequest,
        timings: &mut Timings,
    ) -> Result<Signed, SignError> {
        let _slot = self.locks.lock(wkey).await;
        let started = Instant::now();
        let reserved = self.store.reserve(*wkey, *wreq).await;
        timings.watermark += started.elapsed();
        let Reserved {
            decision,
            durability,
        } = reserved?;
        match decision {
            Decision::ReturnStored(stored) => {
                self.wait_durable(durability, timings).await?;
                return replayed(stored);
            }
            Decision::Refuse(refusal) => return Err(SignError::Watermark(refusal)),
            Decision::Advance | Decision::SignAgainSameBytes => {}
        }
        // The backend signs while the reservation is being written (the fsync and the
        // signing overlap); nothing is released before the reservation is durable.
        let signed = self.sign_and_verify(key, req, timings).await;
        self.wait_durable(durability, timings).await?;
        let signature = signed?;
        let started = Instant::now();
        let signature_b58 = signature.to_b58check();
        let recorded = if key.vault.signs_deterministically(key.public_key.curve()) {
            self.store
                .record_reproducible_signature(*wkey, *wreq, &signature_b58)
                .await
        } else {
            self.store
                .record_signature(*wkey, *wreq, &signature_b58)
                .await
        };
        timings.watermark += started.elapsed();
        match recorded? {
            Recorded::Ours => Ok(Signed {
                signature,
                signature_b58,
                replayed: false,
            }),
            // Another signer sharing the store signed these bytes first: release its
            // signature, so that the bytes have only one. Checked like any other.
            Recorded::Existing(stored) => {
                let signed = replayed(stored)?;
                self.verify(key, req, &signed.signature).await?;
                Ok(signed)
            }
        }
    }

    async fn wait_durable(
        &self,
        durability: DurabilityTicket,
        timings: &mut Timings,
    ) -> Result<(), SignError> {
        let started = Instant::now();
        let durable = self.store.wait_durable(durability).await;
        timings.watermark += started.elapsed();
        Ok(durable?)
    }

    async fn sign_and_verify(
        &self,
        key: &KeyEntry,
        req: &SignRequest<'_>,
        timings: &mut Timings,
    ) -> Result<Signature, SignError> {
        let started = Instant::now();
        let signed = key.vault.sign(req.pkh, req.bytes, req.version).await;
        timings.vault += started.elapsed();
        let signature = signed?;
        self.verify(key, req, &signature).await?;
        Ok(signature)
    }

    /// Verify-before-release of a signature of `req` by `key`, batched with concurrent
    /// checks.
    async fn verify(
        &self,
        key: &KeyEntry,
        req: &SignRequest<'_>,
        signature: &Signature,
    ) -> Result<(), SignError> {
        self.checker
            .verify(&key.public_key, req.bytes, signature, req.version)
            .await
            .map_err(|source| SignError::BadSignature {
                pkh: *req.pkh,
                source,
            })
    }

    /// Produce a BLS proof of possession for a tz4 key (no watermark applies).
    pub async fn prove_possession(
        &self,
        pkh: &PublicKeyHash,
        override_pk: Option<&PublicKey>,
        client: Option<&PublicKeyHash>,
    ) -> Result<Signature, SignError> {
        let key = self.key(pkh).ok_or(SignError::UnknownKey(*pkh))?;
        let policy = key.policy.as_ref().ok_or(SignError::KeyNotEnabled(*pkh))?;
        if !matches!(key.public_key, PublicKey::Bls(_)) {
            return Err(SignError::NotBls);
        }
        policy.check_proof_of_possession(client)?;
        let proof = key.vault.prove_possession(pkh, override_pk).await?;
        // With an override, this key signs the other BLS key's bytes (Octez's `bls_pk`).
        let signed_key = override_pk.unwrap_or(&key.public_key);
        key.public_key
            .verify_proof_of_possession_over(&proof, signed_key)
            .map_err(|source| SignError::BadSignature { pkh: *pkh, source })?;
        Ok(proof)
    }

    /// Check the watermark store and every vault that holds a key, the vaults concurrently,
    /// each within [`VAULT_HEALTH_TIMEOUT`]; every failure is named (the store, each vault,
    /// the vaults that could not be opened), `; `-separated. A configured vault with no
    /// keys is not asked: it signs nothing, so it cannot stop any signing.
    pub async fn health(&self) -> Result<(), String> {
        let vaults = self.vaults();
        let mut checks = tokio::task::JoinSet::new();
        for (index, vault) in vaults.iter().enumerate() {
            let vault = Arc::clone(vault);
            checks.spawn(async move {
                let checked = tokio::time::timeout(VAULT_HEALTH_TIMEOUT, vault.health()).await;
                let failure = match checked {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some(format!(
                        "no answer to the health check within {} s",
                        VAULT_HEALTH_TIMEOUT.as_secs()
                    )),
                };
                (
                    index,
                    failure.map(|e| format!("vault {}: {e}", vault.name())),
                )
            });
        }
        let store = self
            .store
            .health()
            .await
            .err()
            .map(|e| format!("watermark store {}: {e}", self.store.name()));
        let mut vault_failures: Vec<(usize, String)> = Vec::new();
        while let Some(done) = checks.join_next().await {
            match done {
                Ok((index, Some(failure))) => vault_failures.push((index, failure)),
                Ok((_, None)) => {}
                Err(e) => vault_failures.push((usize::MAX, format!("a health check failed: {e}"))),
            }
        }
        vault_failures.sort();
        let failures: Vec<String> = store
            .into_iter()
            .chain(vault_failures.into_iter().map(|(_, failure)| failure))
            .chain(
                self.unavailable_vaults()
                    .iter()
                    .map(|(name, reason)| format!("vault {name}: not open: {reason}")),
            )
            .chain({
                let missing = self.missing_keys();
                (!missing.is_empty()).then(|| {
                    let keys: Vec<String> = missing.iter().map(|(k, _)| k.to_b58check()).collect();
                    format!("enabled keys no open vault holds: {}", keys.join(", "))
                })
            })
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

/// Whether a key of `curve` can sign with `version`: tz1–tz3 sign alike in every version;
/// tz4 needs a version with a BLS scheme (version 0 has none). A version this code does not
/// know is refused for tz4 (fail closed).
fn signs_with(curve: Curve, version: SigningVersion) -> bool {
    match curve {
        Curve::Bls12_381 => matches!(
            version,
            SigningVersion::V1 | SigningVersion::V2 | SigningVersion::V3
        ),
        Curve::Ed25519 | Curve::Secp256k1 | Curve::P256 => true,
    }
}

fn summarise(decoded: &SigningRequest) -> RequestSummary {
    let (level, round) = match decoded.level_round() {
        Some((l, r)) => (Some(l), Some(r)),
        None => (None, None),
    };
    RequestSummary {
        kind: decoded.kind().as_str(),
        chain_id: decoded.chain_id(),
        level,
        round,
        operations: decoded.policy_kinds(),
    }
}

/// The watermark slot and request of a decoded request, if its kind is watermarked.
/// A watermarked kind without a chain id or a level is refused, never signed unguarded.
fn watermark_slot(
    decoded: &SigningRequest,
    pkh: &PublicKeyHash,
    bytes: &[u8],
) -> Result<Option<(WatermarkKey, WatermarkRequest)>, SignError> {
    let Some(kind): Option<WatermarkKind> = decoded.watermark_kind() else {
        return Ok(None);
    };
    let (Some(chain_id), Some((level, round))) = (decoded.chain_id(), decoded.level_round()) else {
        return Err(SignError::NoWatermarkPosition(kind));
    };
    Ok(Some((
        WatermarkKey {
            chain_id,
            pkh: *pkh,
            kind,
        },
        WatermarkRequest::for_bytes(level, round, bytes),
    )))
}

/// A signature recorded in the store, released again. Parsed so that a damaged record is
/// an error, not a reply.
fn replayed(stored: String) -> Result<Signed, SignError> {
    let signature = Signature::from_b58check(&stored).map_err(SignError::StoredSignature)?;
    Ok(Signed {
        signature,
        signature_b58: stored,
        replayed: true,
    })
}

/// A mutex's data, poisoned or not (its holders only replace or filter a list).
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
