//! The `awskms` driver: tz2 (secp256k1) and tz3 (P-256) keys in AWS KMS, with ECAD
//! Signatory's settings:
//!
//! ```yaml
//! vaults:
//!   kms:
//!     driver: awskms
//!     config:
//!       access_key_id: AKIA…            # optional: static credentials (with the secret)
//!       secret_access_key: …
//!       session_token: …                # optional, for temporary credentials
//!       region: eu-west-1               # else AWS_REGION / the profile
//!       endpoint: https://vpce-….kms.eu-west-1.vpce.amazonaws.com   # optional
//! ```
//!
//! Without static keys, the credentials are those of `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, else the SDK's chain (profile, web
//! identity, container, instance metadata). Nothing is written to the environment.
//!
//! Keys are found with ListKeys, DescribeKey and GetPublicKey; a key that cannot sign is
//! skipped with its reason, never failing the vault. Signing asks for ECDSA_SHA_256 over
//! the 32-byte Blake2b digest as a DIGEST. The SDK's retries are off: every call goes
//! through [`crate::net::with_retries`], which counts retries for `/metrics`.

mod failure;
mod keys;
mod settings;

use crate::error::OpenError;
use crate::net::{with_retries, CallCounters, RetryPolicy};
use crate::password::EnvPasswords;
use crate::registry::Driver;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kms::error::SdkError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyUsageType, MessageType, SigningAlgorithmSpec, Tag};
use parking_lot::RwLock;
use settings::AwsKmsOptions;
use signatory_config::DriverSettings;
use signatory_signer::vault::{CallStats, Sealer, UnusableKey, Vault, VaultError, VaultKey};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tezos_crypto::{blake2b_256, Curve, PublicKey, PublicKeyHash, Signature, SigningVersion};
use zeroize::Zeroizing;

const DRIVER: &str = "awskms";

/// How long one attempt of a call may take (the driver's deadline bounds all attempts).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// ListKeys page size (KMS's largest).
const LIST_PAGE: i32 = 1000;
/// Pages of ListKeys at most: a service that keeps answering "truncated" stops here.
const MAX_PAGES: usize = 100;

/// The encryption context every sealed blob is bound to: a ciphertext made for another
/// purpose with the same KMS key does not unseal here.
const SEAL_CONTEXT: (&str, &str) = ("purpose", "signatory-sealed-key");

/// The `awskms` driver of the registry.
pub(crate) struct AwsKmsDriver;

/// The environment as `config check` sees it: the secret variables were taken out at start,
/// so they read as set; whether they were is known at open.
fn lookup_before_open(name: &str) -> Option<Zeroizing<String>> {
    if settings::SECRET_VARIABLES.contains(&name) {
        Some(Zeroizing::new("(checked at open)".to_owned()))
    } else {
        std::env::var(name).ok().map(Zeroizing::new)
    }
}

#[async_trait::async_trait]
impl Driver for AwsKmsDriver {
    fn name(&self) -> &'static str {
        DRIVER
    }

    fn check_settings(&self, vault: &str, settings: &DriverSettings) -> Result<(), OpenError> {
        AwsKmsOptions::from_settings(vault, settings, &lookup_before_open).map(drop)
    }

    fn secret_variables(&self, _vault: &str, _settings: &DriverSettings) -> Vec<String> {
        settings::SECRET_VARIABLES
            .iter()
            .map(|name| (*name).to_owned())
            .collect()
    }

    async fn open(
        &self,
        vault: &str,
        settings: &DriverSettings,
        passwords: &EnvPasswords,
    ) -> Result<Arc<dyn Vault>, OpenError> {
        let options =
            AwsKmsOptions::from_settings(vault, settings, &|name| passwords.lookup(name))?;
        Ok(Arc::new(AwsKmsVault::open(vault, options).await?))
    }
}

/// A key the vault signs with.
#[derive(Debug, Clone)]
struct KmsKey {
    /// The key id KMS calls are made with.
    id: String,
    curve: Curve,
    public_key: PublicKey,
    /// The ARN, shown by `signatory list`.
    label: String,
}

/// A vault whose keys live in AWS KMS.
pub(crate) struct AwsKmsVault {
    name: String,
    client: aws_sdk_kms::Client,
    /// Where KMS is (the region or the endpoint), for messages.
    location: String,
    keys: RwLock<BTreeMap<PublicKeyHash, KmsKey>>,
    unusable: RwLock<Vec<UnusableKey>>,
    counters: CallCounters,
    retry: RetryPolicy,
}

impl fmt::Debug for AwsKmsVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsVault")
            .field("name", &self.name)
            .field("location", &self.location)
            .field("keys", &self.keys.read().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One key of a listing: kept, or skipped with the reason.
enum Described {
    Usable(Box<KmsKey>),
    Skipped(String),
}

impl AwsKmsVault {
    /// Build the client and list the keys: an unreachable KMS is [`OpenError::Unavailable`],
    /// a missing region a configuration error.
    pub(crate) async fn open(name: &str, options: AwsKmsOptions) -> Result<Self, OpenError> {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
            .timeout_config(timeouts);
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &options.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let credential_source = match &options.credentials {
            Some(c) => {
                loader = loader.credentials_provider(Credentials::new(
                    c.access_key_id.clone(),
                    c.secret_access_key.as_str(),
                    c.session_token.as_ref().map(|t| t.to_string()),
                    None,
                    "signatory-awskms",
                ));
                c.source
            }
            None => "the AWS SDK's default chain",
        };
        let config = loader.load().await;
        let Some(region) = config.region().map(|r| r.to_string()) else {
            return Err(OpenError::Config {
                vault: name.to_owned(),
                key_path: format!("vaults.{name}.config.region"),
                message: "is missing; give the key's region here or in AWS_REGION".to_owned(),
            });
        };
        let location = match &options.endpoint {
            Some(endpoint) => format!("{endpoint} ({region})"),
            None => region,
        };
        tracing::info!(vault = %name, kms = %location, credentials = credential_source, "opening AWS KMS vault");
        let vault = AwsKmsVault {
            name: name.to_owned(),
            client: aws_sdk_kms::Client::new(&config),
            location,
            keys: RwLock::new(BTreeMap::new()),
            unusable: RwLock::new(Vec::new()),
            counters: CallCounters::default(),
            retry: RetryPolicy::default(),
        };
        vault
            .list_keys()
            .await
            .map_err(|e| OpenError::Unavailable {
                vault: name.to_owned(),
                message: e.to_string(),
                source: Some(Arc::new(e)),
            })?;
        Ok(vault)
    }

    /// One KMS call, retried by `policy` on transient failures.
    async fn call<T, E, Fut>(
        &self,
        operation: &str,
        policy: &RetryPolicy,
        mut attempt: impl FnMut() -> Fut,
    ) -> Result<T, VaultError>
    where
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        with_retries(&self.counters, policy, || {
            let sent = attempt();
            async move {
                sent.await
                    .map_err(|e| failure::classify(&self.name, operation, e))
            }
        })
        .await
    }

    fn missing(&self, operation: &str, what: &str) -> VaultError {
        VaultError::backend(
            &self.name,
            false,
            format!("{operation}: KMS's answer has no {what}"),
        )
    }

    /// Every key id of the account and region, through all ListKeys pages.
    async fn key_ids(&self) -> Result<Vec<(String, String)>, VaultError> {
        let mut ids = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .call("listing keys", &self.retry, || {
                    self.client
                        .list_keys()
                        .limit(LIST_PAGE)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            for entry in page.keys() {
                if let Some(id) = entry.key_id() {
                    let arn = entry.key_arn().unwrap_or(id);
                    ids.push((id.to_owned(), arn.to_owned()));
                }
            }
            match page.next_marker() {
                Some(next) if page.truncated() => marker = Some(next.to_owned()),
                _ => return Ok(ids),
            }
        }
        Err(VaultError::backend(
            &self.name,
            false,
            format!("listing keys: KMS kept answering more pages after {MAX_PAGES}"),
        ))
    }

    /// DescribeKey and GetPublicKey of one key. A refusal (access denied, disabled, gone)
    /// skips the key; a transient failure fails the listing.
    async fn describe(&self, id: &str, arn: &str) -> Result<Described, VaultError> {
        let described = self
            .call("describing a key", &self.retry, || {
                self.client.describe_key().key_id(id).send()
            })
            .await;
        let meta = match described {
            Ok(out) => match out.key_metadata {
                Some(meta) => meta,
                None => return Ok(Described::Skipped("KMS described nothing".to_owned())),
            },
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => return Ok(Described::Skipped(e.to_string())),
        };
        let curve = match keys::usable(&meta) {
            Ok(curve) => curve,
            Err(reason) => return Ok(Described::Skipped(reason)),
        };
        let public = self
            .call("reading a public key", &self.retry, || {
                self.client.get_public_key().key_id(id).send()
            })
            .await;
        let der = match public {
            Ok(out) => match out.public_key {
                Some(der) => der,
                None => return Ok(Described::Skipped("KMS gave no public key".to_owned())),
            },
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => return Ok(Described::Skipped(e.to_string())),
        };
        let public_key = match PublicKey::from_spki_der(der.as_ref()) {
            Ok(pk) if pk.curve() == curve => pk,
            Ok(pk) => {
                return Ok(Described::Skipped(format!(
                    "its public key is a {} key, its spec says {curve}",
                    pk.curve()
                )))
            }
            Err(e) => {
                return Ok(Described::Skipped(format!(
                    "its public key is not a valid {curve} key: {e}"
                )))
            }
        };
        Ok(Described::Usable(Box::new(KmsKey {
            id: meta.key_id,
            curve,
            public_key,
            label: meta.arn.unwrap_or_else(|| arn.to_owned()),
        })))
    }

    fn key(&self, pkh: &PublicKeyHash) -> Result<KmsKey, VaultError> {
        self.keys
            .read()
            .get(pkh)
            .cloned()
            .ok_or_else(|| VaultError::KeyNotFound {
                vault: self.name.clone(),
                pkh: *pkh,
            })
    }

    fn describe_key(&self, key: &KmsKey) -> VaultKey {
        VaultKey::new(key.public_key.clone(), &self.name).with_label(&key.label)
    }

    /// The KMS key id or alias the lead's sealed files name, checked to be one.
    fn seal_key<'a>(&self, key: &'a str) -> Result<&'a str, VaultError> {
        if key.trim().is_empty() {
            return Err(VaultError::backend(
                &self.name,
                false,
                "sealing: no KMS key id or alias given",
            ));
        }
        Ok(key)
    }
}

#[async_trait::async_trait]
impl Vault for AwsKmsVault {
    fn name(&self) -> &str {
        &self.name
    }

    fn driver(&self) -> &'static str {
        DRIVER
    }

    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        let mut found = Vec::new();
        let mut unusable = Vec::new();
        for (id, arn) in self.key_ids().await? {
            match self.describe(&id, &arn).await? {
                Described::Usable(key) => found.push(*key),
                Described::Skipped(reason) => {
                    tracing::warn!(vault = %self.name, key = %arn, "skipping KMS key: {reason}");
                    unusable.push(UnusableKey { id: arn, reason });
                }
            }
        }
        *self.unusable.write() = unusable;
        let mut map = self.keys.write();
        map.clear();
        for key in &found {
            map.insert(key.public_key.hash(), key.clone());
        }
        Ok(found.iter().map(|k| self.describe_key(k)).collect())
    }

    fn unusable_keys(&self) -> Vec<UnusableKey> {
        self.unusable.read().clone()
    }

    async fn sign(
        &self,
        pkh: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        // tz2/tz3 sign the Blake2b-256 digest whatever the version.
        let _ = version;
        let key = self.key(pkh)?;
        let digest = blake2b_256(message);
        let out = self
            .call("signing", &self.retry, || {
                self.client
                    .sign()
                    .key_id(&key.id)
                    .message(Blob::new(digest))
                    .message_type(MessageType::Digest)
                    .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
                    .send()
            })
            .await?;
        let der = out
            .signature
            .ok_or_else(|| self.missing("signing", "signature"))?;
        Signature::from_der_ecdsa(key.curve, der.as_ref()).map_err(|e| {
            VaultError::backend(
                &self.name,
                false,
                format!(
                    "signing with {}: KMS's signature is not DER ECDSA: {e}",
                    key.id
                ),
            )
        })
    }

    async fn health(&self) -> Result<(), VaultError> {
        self.call("health check", &self.retry, || {
            self.client.list_keys().limit(1).send()
        })
        .await
        .map(drop)
    }

    async fn generate(&self, curve: Curve) -> Result<VaultKey, VaultError> {
        let Some(spec) = keys::key_spec(curve) else {
            return Err(self.unsupported(match curve {
                Curve::Ed25519 => "generating tz1 (Ed25519) keys",
                _ => "generating tz4 (BLS) keys",
            }));
        };
        let description = format!(
            "Tezos {} signing key created by signatory",
            curve.address_kind()
        );
        let tag = Tag::builder()
            .tag_key("created-by")
            .tag_value("signatory")
            .build()
            .map_err(|e| VaultError::backend(&self.name, false, e.to_string()))?;
        // Never retried: a CreateKey whose answer was lost may have made a key, and a
        // second attempt would make another.
        let once = RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        };
        let created = self
            .call("creating a key", &once, || {
                self.client
                    .create_key()
                    .key_spec(spec.clone())
                    .key_usage(KeyUsageType::SignVerify)
                    .description(description.clone())
                    .tags(tag.clone())
                    .send()
            })
            .await?;
        let meta = created
            .key_metadata
            .ok_or_else(|| self.missing("creating a key", "key metadata"))?;
        let arn = meta.arn.clone().unwrap_or_else(|| meta.key_id.clone());
        match self.describe(&meta.key_id, &arn).await? {
            Described::Usable(key) => {
                self.keys
                    .write()
                    .insert(key.public_key.hash(), (*key).clone());
                Ok(self.describe_key(&key))
            }
            Described::Skipped(reason) => Err(VaultError::backend(
                &self.name,
                false,
                format!("the new key {arn} cannot sign: {reason}"),
            )),
        }
    }

    fn call_stats(&self) -> Option<CallStats> {
        Some(self.counters.stats())
    }

    fn sealer(&self) -> Option<&dyn Sealer> {
        Some(self)
    }
}

/// Sealing with KMS Encrypt/Decrypt under a symmetric key (`SYMMETRIC_DEFAULT`), bound to
/// [`SEAL_CONTEXT`].
#[async_trait::async_trait]
impl Sealer for AwsKmsVault {
    async fn seal(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let key = self.seal_key(key)?;
        let out = self
            .call("sealing", &self.retry, || {
                self.client
                    .encrypt()
                    .key_id(key)
                    .plaintext(Blob::new(plaintext))
                    .encryption_context(SEAL_CONTEXT.0, SEAL_CONTEXT.1)
                    .send()
            })
            .await?;
        out.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| self.missing("sealing", "ciphertext"))
    }

    async fn unseal(&self, key: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let key = self.seal_key(key)?;
        let out = self
            .call("unsealing", &self.retry, || {
                self.client
                    .decrypt()
                    // Naming the key makes KMS refuse a ciphertext of any other key.
                    .key_id(key)
                    .ciphertext_blob(Blob::new(sealed))
                    .encryption_context(SEAL_CONTEXT.0, SEAL_CONTEXT.1)
                    .send()
            })
            .await?;
        out.plaintext
            .map(|p| Zeroizing::new(p.into_inner()))
            .ok_or_else(|| self.missing("unsealing", "plaintext"))
    }
}
