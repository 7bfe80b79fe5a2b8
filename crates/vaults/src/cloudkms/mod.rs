//! The `cloudkms` driver: keys in a Google Cloud KMS key ring, over its REST API. ECAD
//! Signatory's settings:
//!
//! ```yaml
//! vaults:
//!   gcp:
//!     driver: cloudkms
//!     config:
//!       project: signatory-testing
//!       location: europe-north1
//!       key_ring: sigy-key
//!       application_credentials: /etc/signatory/gcp-sa.json   # or _data: inline JSON
//!       timeout: 10          # seconds per HTTP attempt
//!       max_retries: 3       # retries of throttled, 5xx and timed-out calls
//! ```
//!
//! Every ENABLED version of an ASYMMETRIC_SIGN key in the ring is a key:
//! `EC_SIGN_ED25519` → tz1, `EC_SIGN_SECP256K1_SHA256` → tz2, `EC_SIGN_P256_SHA256` → tz3.
//! ECDSA signs the 32-byte Blake2b digest passed as the "SHA-256" digest; Ed25519 signs
//! that digest as its data. Requests and answers carry CRC32C checksums, checked both ways.

mod api;
mod auth;
mod settings;
mod wrap;

use crate::error::OpenError;
use crate::net::{CallCounters, Failure, FailureClass, RetryPolicy};
use crate::password::EnvPasswords;
use crate::registry::Driver;
use api::{
    CryptoKey, CryptoKeyPage, CryptoKeyVersion, CryptoKeyVersionPage, ImportJob, Kms,
    PublicKeyAnswer, Request, SignAnswer,
};
use base64::Engine as _;
use parking_lot::RwLock;
use settings::{CloudKmsSettings, ProtectionLevel};
use signatory_config::DriverSettings;
use signatory_signer::vault::{CallStats, UnusableKey, Vault, VaultError, VaultKey};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tezos_crypto::SigningVersion;
use tezos_crypto::{blake2b_256, Curve, PublicKey, PublicKeyHash, SecretKey, Signature};

const DRIVER: &str = "cloudkms";
const PURPOSE: &str = "ASYMMETRIC_SIGN";
const PAGE_SIZE: &str = "1000";
/// How long `generate` and `import` wait for Cloud KMS to finish a key or an import job.
const PENDING_WAIT: Duration = Duration::from_secs(120);
const PENDING_POLL: Duration = Duration::from_millis(250);

/// The `cloudkms` driver of the registry.
pub(crate) struct CloudKmsDriver;

#[async_trait::async_trait]
impl Driver for CloudKmsDriver {
    fn name(&self) -> &'static str {
        DRIVER
    }

    fn check_settings(&self, vault: &str, settings: &DriverSettings) -> Result<(), OpenError> {
        CloudKmsSettings::parse(vault, settings).map(drop)
    }

    /// Which credentials the vault will use, found and read (a key file present, private
    /// and well-formed) without asking Google for anything.
    fn preflight(
        &self,
        vault: &str,
        settings: &DriverSettings,
    ) -> Option<Result<String, OpenError>> {
        let env = |var: &str| std::env::var(var).ok();
        Some(
            CloudKmsSettings::parse(vault, settings)
                .and_then(|s| auth::find(vault, &s, &env))
                .map(|c| format!("Google credentials: {}", c.describe())),
        )
    }

    async fn open(
        &self,
        vault: &str,
        settings: &DriverSettings,
        _passwords: &EnvPasswords,
    ) -> Result<Arc<dyn Vault>, OpenError> {
        let settings = CloudKmsSettings::parse(vault, settings)?;
        let env = |var: &str| std::env::var(var).ok();
        Ok(Arc::new(CloudKmsVault::open(vault, settings, &env).await?))
    }
}

/// The algorithms Tezos signs with, and the curve of each.
fn curve_of(algorithm: &str) -> Option<Curve> {
    match algorithm {
        "EC_SIGN_ED25519" => Some(Curve::Ed25519),
        "EC_SIGN_SECP256K1_SHA256" => Some(Curve::Secp256k1),
        "EC_SIGN_P256_SHA256" => Some(Curve::P256),
        _ => None,
    }
}

fn algorithm_of(curve: Curve) -> Option<&'static str> {
    match curve {
        Curve::Ed25519 => Some("EC_SIGN_ED25519"),
        Curve::Secp256k1 => Some("EC_SIGN_SECP256K1_SHA256"),
        Curve::P256 => Some("EC_SIGN_P256_SHA256"),
        Curve::Bls12_381 => None,
    }
}

/// A key version the vault signs with.
#[derive(Debug, Clone)]
struct KmsKey {
    /// The full version name, `projects/…/cryptoKeyVersions/N`.
    version: String,
    curve: Curve,
    public_key: PublicKey,
}

struct Inner {
    name: String,
    key_ring: String,
    protection_level: ProtectionLevel,
    kms: Kms,
    keys: RwLock<BTreeMap<PublicKeyHash, KmsKey>>,
    unusable: RwLock<Vec<UnusableKey>>,
}

/// A vault whose keys live in a Cloud KMS key ring.
#[derive(Clone)]
pub struct CloudKmsVault {
    inner: Arc<Inner>,
}

impl fmt::Debug for CloudKmsVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudKmsVault")
            .field("name", &self.inner.name)
            .field("key_ring", &self.inner.key_ring)
            .field("endpoint", &self.inner.kms.endpoint)
            .field("credentials", self.inner.kms.tokens.credentials())
            .field("keys", &self.inner.keys.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Whether `name` is a resource name under `parent` made of URL-safe segments only, so a
/// name the service returned can be put back into a request path as it is.
fn is_child_name(name: &str, parent: &str) -> bool {
    name.strip_prefix(parent)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|rest| !rest.is_empty() && rest.split('/').all(settings::is_resource_id))
}

fn checksum(text: Option<&str>) -> Option<u32> {
    text.and_then(|t| t.parse::<u64>().ok())
        .and_then(|v| u32::try_from(v).ok())
}

impl CloudKmsVault {
    /// Find the credentials, get a token and list the key ring: a backend that cannot be
    /// reached is [`OpenError::Unavailable`]; refused credentials or settings are errors
    /// naming them.
    pub(crate) async fn open(
        name: &str,
        settings: CloudKmsSettings,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<CloudKmsVault, OpenError> {
        let credentials = auth::find(name, &settings, env)?;
        let client =
            crate::net::http_client(name, &crate::net::ClientTls::default(), settings.timeout)?;
        let described = credentials.describe();
        let policy = RetryPolicy {
            max_retries: settings.max_retries,
            ..RetryPolicy::default()
        };
        let vault = CloudKmsVault {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                key_ring: settings.key_ring_name(),
                protection_level: settings.protection_level,
                kms: Kms {
                    vault: name.to_owned(),
                    endpoint: settings.endpoint.clone(),
                    tokens: auth::TokenSource::new(name, credentials, client.clone()),
                    client,
                    counters: CallCounters::default(),
                    policy,
                },
                keys: RwLock::new(BTreeMap::new()),
                unusable: RwLock::new(Vec::new()),
            }),
        };
        tracing::info!(vault = %name, key_ring = %vault.inner.key_ring, "Cloud KMS credentials: {described}");
        match vault.list_keys().await {
            Ok(_) => Ok(vault),
            Err(e) if e.is_transient() => Err(OpenError::Unavailable {
                vault: name.to_owned(),
                message: e.to_string(),
                source: Some(Arc::new(e)),
            }),
            Err(e) => Err(OpenError::Config {
                vault: name.to_owned(),
                key_path: format!("vaults.{name}.config"),
                message: e.to_string(),
            }),
        }
    }

    fn key(&self, pkh: &PublicKeyHash) -> Result<KmsKey, VaultError> {
        self.inner
            .keys
            .read()
            .get(pkh)
            .cloned()
            .ok_or_else(|| VaultError::KeyNotFound {
                vault: self.inner.name.clone(),
                pkh: *pkh,
            })
    }

    fn backend(&self, message: String) -> VaultError {
        VaultError::backend(&self.inner.name, false, message)
    }

    fn describe(&self, key: &KmsKey) -> VaultKey {
        VaultKey::new(key.public_key.clone(), &self.inner.name).with_label(&key.version)
    }

    /// Every page of a listing.
    async fn pages<P, T>(
        &self,
        operation: &str,
        path: &str,
        items: impl Fn(P) -> (Vec<T>, Option<String>) + Sync,
    ) -> Result<Vec<T>, api::CallError>
    where
        P: serde::de::DeserializeOwned,
    {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut request = Request::get(operation, path).query("pageSize", PAGE_SIZE);
            if let Some(t) = token.take() {
                request = request.query("pageToken", t);
            }
            let page: P = self.inner.kms.fetch(&request).await?;
            let (mut found, next) = items(page);
            all.append(&mut found);
            match next.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// The public key of `version`, checked against its checksum, its name and `curve`.
    async fn public_key(&self, version: &str, curve: Curve) -> Result<PublicKey, api::CallError> {
        let path = format!("{version}/publicKey");
        let request = Request::get("getting a public key", &path);
        let name = self.inner.name.clone();
        self.inner
            .kms
            .call(&request, |answer: PublicKeyAnswer| {
                if let Some(expected) = checksum(answer.pem_crc32c.as_deref()) {
                    if wrap::crc32c(answer.pem.as_bytes()) != expected {
                        return Err(Failure::transient(
                            FailureClass::Server,
                            VaultError::backend(
                                &name,
                                true,
                                format!("the public key of {version} failed its CRC32C check"),
                            ),
                        ));
                    }
                }
                let refused = |m: String| Failure::refused(VaultError::backend(&name, false, m));
                if answer.name.as_deref().is_some_and(|n| n != version) {
                    return Err(refused(format!(
                        "asked for the public key of {version}, Cloud KMS answered for another"
                    )));
                }
                if !answer.algorithm.is_empty() && curve_of(&answer.algorithm) != Some(curve) {
                    return Err(refused(format!(
                        "the public key of {version} is of algorithm {}",
                        answer.algorithm
                    )));
                }
                let public = PublicKey::from_spki_pem(answer.pem.as_bytes())
                    .map_err(|e| refused(format!("the public key of {version}: {e}")))?;
                if public.curve() != curve {
                    return Err(refused(format!(
                        "the public key of {version} is not a {curve} key"
                    )));
                }
                Ok(public)
            })
            .await
    }

    /// Every usable key version of the ring, and what was skipped.
    async fn discover(&self) -> Result<(Vec<KmsKey>, Vec<UnusableKey>), VaultError> {
        let ring = &self.inner.key_ring;
        let keys_path = format!("{ring}/cryptoKeys");
        let crypto_keys: Vec<CryptoKey> = self
            .pages("listing keys", &keys_path, |p: CryptoKeyPage| {
                (p.crypto_keys, p.next_page_token)
            })
            .await?;
        let mut keys = Vec::new();
        let mut unusable = Vec::new();
        let mut skip = |id: &str, reason: String| {
            tracing::warn!(vault = %self.inner.name, key = %id, "skipping Cloud KMS key: {reason}");
            unusable.push(UnusableKey {
                id: id.to_owned(),
                reason,
            });
        };
        for key in crypto_keys {
            if !is_child_name(&key.name, &format!("{ring}/cryptoKeys")) {
                return Err(self.backend(format!(
                    "listing keys: Cloud KMS returned a key named `{}`, outside key ring {ring}",
                    key.name
                )));
            }
            if key.purpose != PURPOSE {
                skip(
                    &key.name,
                    format!("its purpose is {}, not {PURPOSE}", key.purpose),
                );
                continue;
            }
            let versions_path = format!("{}/cryptoKeyVersions", key.name);
            let versions = self
                .pages(
                    "listing key versions",
                    &versions_path,
                    |p: CryptoKeyVersionPage| (p.crypto_key_versions, p.next_page_token),
                )
                .await;
            let versions: Vec<CryptoKeyVersion> = match versions {
                Ok(v) => v,
                // As ECAD: a key the account may not list, or gone meanwhile, is skipped.
                Err(api::CallError {
                    status: Some(403 | 404),
                    error,
                }) => {
                    skip(&key.name, error.to_string());
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            for version in versions {
                if !is_child_name(&version.name, &versions_path) {
                    return Err(self.backend(format!(
                        "listing key versions: Cloud KMS returned a version named `{}`, \
                         outside key {}",
                        version.name, key.name
                    )));
                }
                if version.state == "DESTROYED" {
                    continue;
                }
                let Some(curve) = curve_of(&version.algorithm) else {
                    skip(
                        &version.name,
                        format!(
                            "algorithm {} is not one Tezos signs with (EC_SIGN_ED25519, \
                             EC_SIGN_SECP256K1_SHA256, EC_SIGN_P256_SHA256)",
                            version.algorithm
                        ),
                    );
                    continue;
                };
                if version.state != "ENABLED" {
                    skip(
                        &version.name,
                        format!("its state is {}, not ENABLED", version.state),
                    );
                    continue;
                }
                match self.public_key(&version.name, curve).await {
                    Ok(public_key) => keys.push(KmsKey {
                        version: version.name,
                        curve,
                        public_key,
                    }),
                    Err(api::CallError {
                        status: Some(400 | 403 | 404),
                        error,
                    }) => skip(&version.name, error.to_string()),
                    Err(e) if !e.error.is_transient() && e.status.is_none() => {
                        skip(&version.name, e.error.to_string())
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok((keys, unusable))
    }

    fn remember(&self, (keys, unusable): (Vec<KmsKey>, Vec<UnusableKey>)) -> Vec<VaultKey> {
        *self.inner.unusable.write() = unusable;
        let mut map = self.inner.keys.write();
        map.clear();
        for key in &keys {
            map.insert(key.public_key.hash(), key.clone());
        }
        keys.iter().map(|k| self.describe(k)).collect()
    }

    /// The signature of `digest` by `key`: integrity-checked, DER ECDSA made r ‖ s low-S.
    async fn sign_digest(&self, key: &KmsKey, digest: &[u8; 32]) -> Result<Signature, VaultError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let crc = wrap::crc32c(digest).to_string();
        let ed25519 = key.curve == Curve::Ed25519;
        let body = if ed25519 {
            serde_json::json!({"data": b64.encode(digest), "dataCrc32c": crc})
        } else {
            serde_json::json!({"digest": {"sha256": b64.encode(digest)}, "digestCrc32c": crc})
        };
        let path = format!("{}:asymmetricSign", key.version);
        let request = Request::post("signing", &path, body);
        let name = self.inner.name.clone();
        let version = key.version.clone();
        let curve = key.curve;
        self.inner
            .kms
            .call(&request, |answer: SignAnswer| {
                // Google: an unverified checksum or a corrupted answer is retried.
                let corrupted = |what: &str| {
                    Failure::transient(
                        FailureClass::Server,
                        VaultError::backend(&name, true, format!("signing with {version}: {what}")),
                    )
                };
                let verified = if ed25519 {
                    answer.verified_data_crc32c
                } else {
                    answer.verified_digest_crc32c
                };
                if !verified {
                    return Err(corrupted("Cloud KMS did not verify the request's CRC32C"));
                }
                if answer.name.as_deref().is_some_and(|n| n != version) {
                    return Err(Failure::refused(VaultError::backend(
                        &name,
                        false,
                        format!("signing with {version}: Cloud KMS signed with another key"),
                    )));
                }
                let bytes = b64
                    .decode(answer.signature.as_bytes())
                    .map_err(|_| corrupted("the signature is not base64"))?;
                match checksum(answer.signature_crc32c.as_deref()) {
                    Some(expected) if wrap::crc32c(&bytes) == expected => {}
                    _ => return Err(corrupted("the signature failed its CRC32C check")),
                }
                let refused = |e: tezos_crypto::CryptoError| {
                    Failure::refused(VaultError::backend(
                        &name,
                        false,
                        format!("signing with {version}: the signature is not valid: {e}"),
                    ))
                };
                match curve {
                    Curve::Ed25519 => Signature::from_bytes(curve, &bytes).map_err(refused),
                    _ => Signature::from_der_ecdsa(curve, &bytes).map_err(refused),
                }
            })
            .await
            .map_err(VaultError::from)
    }

    /// A unique cryptoKey id for a new key.
    fn new_key_id(curve: Curve, kind: &str) -> Result<String, VaultError> {
        let mut random = [0u8; 6];
        openssl::rand::rand_bytes(&mut random).map_err(|e| {
            VaultError::backend(DRIVER, false, format!("no random bytes for a key id: {e}"))
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let word = match curve {
            Curve::Ed25519 => "ed25519",
            Curve::Secp256k1 => "secp256k1",
            Curve::P256 => "p256",
            Curve::Bls12_381 => "bls",
        };
        Ok(format!(
            "signatory-{kind}-{word}-{now}-{}",
            hex::encode(random)
        ))
    }

    /// Create the cryptoKey `id`; a retried create that finds it made is done.
    async fn create_key(
        &self,
        id: &str,
        algorithm: &str,
        skip_initial_version: bool,
    ) -> Result<String, VaultError> {
        let path = format!("{}/cryptoKeys", self.inner.key_ring);
        let body = serde_json::json!({
            "purpose": PURPOSE,
            "versionTemplate": {
                "algorithm": algorithm,
                "protectionLevel": self.inner.protection_level.as_api(),
            },
        });
        let mut request = Request::post("creating a key", &path, body).query("cryptoKeyId", id);
        if skip_initial_version {
            request = request.query("skipInitialVersionCreation", "true");
        }
        let name = format!("{path}/{id}");
        match self.inner.kms.fetch::<CryptoKey>(&request).await {
            Ok(created) if created.name == name => Ok(name),
            Ok(created) => Err(self.backend(format!(
                "creating a key: Cloud KMS created `{}`, not {name}",
                created.name
            ))),
            // The id is random: an earlier attempt whose answer was lost made it.
            Err(api::CallError {
                status: Some(409), ..
            }) => Ok(name),
            Err(e) => Err(e.into()),
        }
    }

    /// Poll the version `name` until it leaves `pending`; it must end ENABLED.
    async fn wait_enabled(&self, name: &str, pending: &str) -> Result<(), VaultError> {
        let deadline = tokio::time::Instant::now() + PENDING_WAIT;
        loop {
            let version: CryptoKeyVersion = self
                .inner
                .kms
                .fetch(&Request::get("waiting for a key version", name))
                .await?;
            match version.state.as_str() {
                "ENABLED" => return Ok(()),
                state if state == pending && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(PENDING_POLL).await;
                }
                state => {
                    let reason = version
                        .import_failure_reason
                        .or(version.generation_failure_reason)
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default();
                    return Err(self.backend(format!("key version {name} is {state}{reason}")));
                }
            }
        }
    }

    async fn generate_key(&self, curve: Curve) -> Result<VaultKey, VaultError> {
        let Some(algorithm) = algorithm_of(curve) else {
            return Err(self.unsupported("generating tz4 (BLS) keys"));
        };
        let id = Self::new_key_id(curve, "generated")?;
        let key = self.create_key(&id, algorithm, false).await?;
        // Cloud KMS makes the first version of a new asymmetric key as version 1.
        let version = format!("{key}/cryptoKeyVersions/1");
        self.wait_enabled(&version, "PENDING_GENERATION").await?;
        let public_key = self.public_key(&version, curve).await?;
        Ok(self.keep(KmsKey {
            version,
            curve,
            public_key,
        }))
    }

    fn keep(&self, key: KmsKey) -> VaultKey {
        let described = self.describe(&key);
        self.inner.keys.write().insert(key.public_key.hash(), key);
        described
    }

    async fn import_key(&self, secret: SecretKey) -> Result<VaultKey, VaultError> {
        let curve = secret.curve();
        let Some(algorithm) = algorithm_of(curve) else {
            return Err(self.unsupported("importing tz4 (BLS) keys"));
        };
        let expected = secret.public_key();
        if let Some(held) = self.inner.keys.read().get(&expected.hash()).cloned() {
            return Ok(self.describe(&held));
        }
        let pkcs8 = wrap::pkcs8(&secret).map_err(|m| self.backend(format!("importing: {m}")))?;
        drop(secret);
        let id = Self::new_key_id(curve, "imported")?;
        let key = self.create_key(&id, algorithm, true).await?;

        let job_id = Self::new_key_id(curve, "import-job")?;
        let jobs = format!("{}/importJobs", self.inner.key_ring);
        let job_name = format!("{jobs}/{job_id}");
        let body = serde_json::json!({
            "importMethod": "RSA_OAEP_3072_SHA256_AES_256",
            "protectionLevel": self.inner.protection_level.as_api(),
        });
        let created = self
            .inner
            .kms
            .fetch::<ImportJob>(
                &Request::post("creating an import job", &jobs, body).query("importJobId", &job_id),
            )
            .await;
        match created {
            Ok(job) if job.name == job_name => {}
            Ok(job) => {
                return Err(self.backend(format!(
                    "creating an import job: Cloud KMS created `{}`, not {job_name}",
                    job.name
                )))
            }
            Err(api::CallError {
                status: Some(409), ..
            }) => {}
            Err(e) => return Err(e.into()),
        }
        let deadline = tokio::time::Instant::now() + PENDING_WAIT;
        let job_pem = loop {
            let job: ImportJob = self
                .inner
                .kms
                .fetch(&Request::get("waiting for the import job", &job_name))
                .await?;
            match (job.state.as_str(), job.public_key) {
                ("ACTIVE", Some(public)) => break public.pem,
                ("PENDING_GENERATION", _) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(PENDING_POLL).await
                }
                (state, _) => {
                    return Err(self.backend(format!(
                        "import job {job_name} is {state}, not ACTIVE with a public key"
                    )))
                }
            }
        };
        let wrapped = wrap::wrap_for_import(job_pem.as_bytes(), &pkcs8)
            .map_err(|m| self.backend(format!("importing: {m}")))?;
        drop(pkcs8);
        let b64 = base64::engine::general_purpose::STANDARD;
        let path = format!("{key}/cryptoKeyVersions:import");
        let body = serde_json::json!({
            "algorithm": algorithm,
            "importJob": job_name,
            "wrappedKey": b64.encode(&wrapped),
        });
        let version: CryptoKeyVersion = self
            .inner
            .kms
            .fetch(&Request::post("importing a key version", &path, body))
            .await?;
        if !is_child_name(&version.name, &format!("{key}/cryptoKeyVersions")) {
            return Err(self.backend(format!(
                "importing: Cloud KMS made version `{}`, outside key {key}",
                version.name
            )));
        }
        if version.state != "ENABLED" {
            self.wait_enabled(&version.name, "PENDING_IMPORT").await?;
        }
        let public_key = self.public_key(&version.name, curve).await?;
        if public_key != expected {
            return Err(self.backend(format!(
                "importing: the public key of {} is not the imported key's",
                version.name
            )));
        }
        Ok(self.keep(KmsKey {
            version: version.name,
            curve,
            public_key,
        }))
    }
}

#[async_trait::async_trait]
impl Vault for CloudKmsVault {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn driver(&self) -> &'static str {
        DRIVER
    }

    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        let found = self.discover().await?;
        Ok(self.remember(found))
    }

    fn unusable_keys(&self) -> Vec<UnusableKey> {
        self.inner.unusable.read().clone()
    }

    async fn sign(
        &self,
        pkh: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        // tz1–tz3 sign the Blake2b-256 digest whatever the version.
        let _ = version;
        let key = self.key(pkh)?;
        self.sign_digest(&key, &blake2b_256(message)).await
    }

    /// Ed25519 is deterministic; Cloud KMS's ECDSA nonces are its own (random).
    fn signs_deterministically(&self, curve: Curve) -> bool {
        curve == Curve::Ed25519
    }

    /// One page of one key of the ring, without retries: the credentials work, Cloud KMS
    /// answers and the account may still list the ring.
    async fn health(&self) -> Result<(), VaultError> {
        let path = format!("{}/cryptoKeys", self.inner.key_ring);
        let request = Request::get("health check", &path).query("pageSize", "1");
        self.inner
            .kms
            .once::<CryptoKeyPage>(&request)
            .await
            .map(drop)
            .map_err(VaultError::from)
    }

    fn call_stats(&self) -> Option<CallStats> {
        Some(self.inner.kms.counters.stats())
    }

    async fn generate(&self, curve: Curve) -> Result<VaultKey, VaultError> {
        self.generate_key(curve).await
    }

    async fn import(&self, key: SecretKey) -> Result<VaultKey, VaultError> {
        self.import_key(key).await
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn tezos_curves_map_to_cloud_kms_algorithms_and_back() {
        for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
            assert_eq!(curve_of(algorithm_of(curve).unwrap()), Some(curve));
        }
        assert_eq!(algorithm_of(Curve::Bls12_381), None);
        assert_eq!(curve_of("EC_SIGN_P384_SHA384"), None);
        assert_eq!(curve_of("RSA_SIGN_PSS_2048_SHA256"), None);
    }

    #[test]
    fn preflight_reads_the_credentials_file_without_the_network() {
        use std::os::unix::fs::PermissionsExt;
        let key = openssl::rsa::Rsa::generate(2048)
            .and_then(openssl::pkey::PKey::from_rsa)
            .unwrap();
        let pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let json = serde_json::json!({"type": "service_account", "private_key": pem,
            "client_email": "sa@p.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token"});
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sa.json");
        std::fs::write(&path, json.to_string()).unwrap();
        let settings: DriverSettings = serde_yaml_ng::from_str(&format!(
            "{{project: p, location: l, key_ring: r, application_credentials: '{}'}}",
            path.display()
        ))
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let loose = CloudKmsDriver.preflight("kms", &settings).unwrap();
        assert!(
            matches!(loose, Err(OpenError::Permissions { .. })),
            "{loose:?}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ok = CloudKmsDriver.preflight("kms", &settings).unwrap().unwrap();
        assert!(
            ok.contains("service account sa@p.iam.gserviceaccount.com"),
            "{ok}"
        );
    }

    #[test]
    fn service_names_must_stay_under_their_parent() {
        let ring = "projects/p/locations/l/keyRings/r/cryptoKeys";
        assert!(is_child_name(&format!("{ring}/k1"), ring));
        assert!(!is_child_name(&format!("{ring}/../x"), ring));
        assert!(!is_child_name(&format!("{ring}/k1?x=y"), ring));
        assert!(!is_child_name(&format!("{ring}x/k1"), ring));
        assert!(!is_child_name(ring, ring));
        assert!(!is_child_name(&format!("{ring}/k 1"), ring));
    }
}
