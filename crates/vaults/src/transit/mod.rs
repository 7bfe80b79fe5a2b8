//! The `hashicorpvault` driver: keys in a HashiCorp Vault or OpenBao transit engine, used
//! through its HTTP API. The settings are ECAD Signatory's:
//!
//! ```yaml
//! vaults:
//!   transit:
//!     driver: hashicorpvault
//!     config:
//!       address: https://vault.example:8200
//!       roleID: 5970e31e-132b-d624-f3eb-10d1fcdd3fab   # AppRole (or `token` / `token_file`)
//!       secretID: aa9c4a24-c7f1-a278-a9db-bac58273fe7c # or VAULT_SECRET_ID
//!       tlsCaCert: /etc/signatory/vault-ca.pem
//!       transitConfig:
//!         mountPoint: transit/
//! ```
//!
//! Transit keys of type `ed25519` sign as tz1 and `ecdsa-p256` as tz3, always with the key
//! version whose public key was listed (a rotated key must be listed again before its new
//! version signs). Transit has no secp256k1 or BLS keys: tz2 and tz4 are refused.
//!
//! Plain REST on the shared `net` client rather than the `vaultrs` crate: the driver needs
//! seven endpoints, and owning the calls keeps one pooled HTTP/2 client, one retry policy
//! and one error classification for every network driver, with no second TLS stack.

mod api;
mod auth;
mod byok;
mod settings;

pub use settings::{Credentials, TransitSettings};

use crate::error::OpenError;
use crate::net::{ClientTls, RetryPolicy};
use crate::password::EnvPasswords;
use crate::registry::Driver;
use api::{at, Answer, Api, Method, Payload};
use auth::{refused, Auth, Credential, Token};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use parking_lot::RwLock;
use serde_json::{json, Value};
use signatory_config::DriverSettings;
use signatory_signer::vault::{CallStats, Sealer, UnusableKey, Vault, VaultError, VaultKey};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tezos_crypto::{
    blake2b_256, Curve, PublicKey, PublicKeyHash, SecretKey, Signature, SigningVersion,
};
use zeroize::Zeroizing;

const DRIVER: &str = "hashicorpvault";

/// The longest one HTTP request may take; retries stay within the driver's deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

/// The `hashicorpvault` driver of the registry.
pub(crate) struct TransitDriver;

#[async_trait::async_trait]
impl Driver for TransitDriver {
    fn name(&self) -> &'static str {
        DRIVER
    }

    fn check_settings(&self, vault: &str, settings: &DriverSettings) -> Result<(), OpenError> {
        let taken = TransitSettings::secret_variables(settings);
        TransitSettings::parse(vault, settings, &|name| {
            // Taken out of the environment by then: reported at open if it was not set.
            if taken.iter().any(|t| t == name) {
                Some(Zeroizing::new("(checked at open)".to_owned()))
            } else {
                None
            }
        })
        .map(drop)
    }

    fn secret_variables(&self, _vault: &str, settings: &DriverSettings) -> Vec<String> {
        TransitSettings::secret_variables(settings)
    }

    async fn open(
        &self,
        vault: &str,
        settings: &DriverSettings,
        passwords: &EnvPasswords,
    ) -> Result<Arc<dyn Vault>, OpenError> {
        let settings = TransitSettings::parse(vault, settings, &|name| passwords.lookup(name))?;
        Ok(Arc::new(TransitVault::open(vault, settings).await?))
    }
}

/// A transit key the vault signs with.
#[derive(Debug, Clone)]
struct TransitKey {
    name: String,
    version: u64,
    curve: Curve,
    public_key: PublicKey,
}

/// A vault whose keys live in a Vault/OpenBao transit engine.
pub struct TransitVault {
    api: Api,
    auth: Auth,
    mount: Vec<String>,
    keys: RwLock<BTreeMap<PublicKeyHash, TransitKey>>,
    unusable: RwLock<Vec<UnusableKey>>,
}

impl fmt::Debug for TransitVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransitVault")
            .field("api", &self.api)
            .field("auth", &self.auth)
            .field("mount", &self.mount.join("/"))
            .field("keys", &self.keys.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The key file `what` at `path`, read for the TLS configuration.
fn read_file(
    vault: &str,
    what: &'static str,
    path: &std::path::Path,
) -> Result<Vec<u8>, OpenError> {
    std::fs::read(path).map_err(|e| OpenError::Io {
        vault: vault.to_owned(),
        action: what,
        path: path.to_owned(),
        source: Arc::new(e),
    })
}

impl TransitVault {
    /// Connect, authenticate and list the keys. Vault down, sealed or unreachable gives
    /// [`OpenError::Unavailable`]; refused credentials name the setting to fix.
    pub async fn open(name: &str, settings: TransitSettings) -> Result<TransitVault, OpenError> {
        // As ECAD Signatory does, the TLS files are used (and must be readable) only for an
        // https address.
        let https = settings.address.scheme() == "https";
        if !https && (settings.tls_ca_cert.is_some() || settings.tls_client.is_some()) {
            tracing::warn!(vault = %name, "the TLS settings are ignored: the address is http://");
        }
        let ca_pem = match settings.tls_ca_cert.as_ref().filter(|_| https) {
            Some(path) => Some(read_file(name, "read the CA certificate", path)?),
            None => None,
        };
        let identity_pem = match settings.tls_client.as_ref().filter(|_| https) {
            Some((cert, key)) => {
                let mut pem = Zeroizing::new(read_file(name, "read the client certificate", cert)?);
                let key = Zeroizing::new(read_file(name, "read the client key", key)?);
                pem.push(b'\n');
                pem.extend_from_slice(&key);
                Some(pem)
            }
            None => None,
        };
        let http = crate::net::http_client(
            name,
            &ClientTls {
                ca_pem,
                identity_pem,
            },
            REQUEST_TIMEOUT,
        )?;
        let (credential, key_path) = match settings.credentials {
            Credentials::Token(token) => (Credential::Fixed(token), "token"),
            Credentials::TokenFile(path) => {
                let bytes = Zeroizing::new(read_file(name, "read the token file", &path)?);
                let text = std::str::from_utf8(&bytes).map_err(|_| OpenError::Config {
                    vault: name.to_owned(),
                    key_path: format!("vaults.{name}.config.token_file"),
                    message: format!("{} is not UTF-8 text", path.display()),
                })?;
                (
                    Credential::Fixed(Zeroizing::new(text.trim().to_owned())),
                    "token_file",
                )
            }
            Credentials::AppRole { role_id, secret_id } => {
                (Credential::AppRole { role_id, secret_id }, "secretID")
            }
        };
        let vault = TransitVault {
            api: Api::new(
                name,
                http,
                settings.address,
                settings.namespace,
                RetryPolicy::default(),
            ),
            auth: Auth::new(credential),
            mount: settings.mount,
            keys: RwLock::new(BTreeMap::new()),
            unusable: RwLock::new(Vec::new()),
        };
        let unavailable = |e: VaultError| OpenError::Unavailable {
            vault: name.to_owned(),
            message: e.to_string(),
            source: Some(Arc::new(e)),
        };
        match vault.auth.start(&vault.api).await {
            Ok(()) => {}
            Err(e) if e.is_transient() => return Err(unavailable(e)),
            Err(e) => {
                return Err(OpenError::Config {
                    vault: name.to_owned(),
                    key_path: format!("vaults.{name}.config.{key_path}"),
                    message: e.to_string(),
                })
            }
        }
        vault.list_keys().await.map_err(unavailable)?;
        Ok(vault)
    }

    /// `<mount>/<rest…>` as path segments.
    fn path<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        self.mount
            .iter()
            .map(String::as_str)
            .chain(rest.iter().copied())
            .collect()
    }

    /// A call with the vault's token. A 403 drops the token and, with AppRole, logs in
    /// once more and repeats the call; a second 403 fails closed.
    async fn authed(
        &self,
        operation: &str,
        method: Method,
        path: &[&str],
        body: Option<Payload<'_>>,
    ) -> Result<Answer, VaultError> {
        let token = self.auth.token(&self.api).await?;
        let answer = self
            .once_with(&token, operation, method, path, body)
            .await?;
        let Answer::Forbidden(detail) = answer else {
            return Ok(answer);
        };
        if !self.auth.forbidden(&token).await {
            return Err(refused(&self.api, operation, &detail));
        }
        tracing::info!(vault = %self.api.vault, "{operation}: Vault answered 403 ({detail}); logging in again once");
        let token = self.auth.token(&self.api).await?;
        match self
            .once_with(&token, operation, method, path, body)
            .await?
        {
            Answer::Forbidden(detail) => Err(refused(&self.api, operation, &detail)),
            answer => Ok(answer),
        }
    }

    async fn once_with(
        &self,
        token: &Token,
        operation: &str,
        method: Method,
        path: &[&str],
        body: Option<Payload<'_>>,
    ) -> Result<Answer, VaultError> {
        self.api
            .call(operation, method, path, Some(&token.secret), body)
            .await
    }

    /// The data of a 2xx answer; 404 is a refusal naming what was missing.
    async fn data(
        &self,
        operation: &str,
        method: Method,
        path: &[&str],
        body: Option<Payload<'_>>,
    ) -> Result<Value, VaultError> {
        match self.authed(operation, method, path, body).await? {
            Answer::Done(v) => Ok(v),
            Answer::Forbidden(d) | Answer::NotFound(d) => Err(refused(&self.api, operation, &d)),
        }
    }

    fn bad_answer(&self, operation: &str, what: &str) -> VaultError {
        VaultError::backend(
            &self.api.vault,
            false,
            format!("{operation}: Vault's answer {what}"),
        )
    }

    /// Read key `name`: a signing key of a Tezos curve, or the reason it cannot sign.
    async fn read_key(&self, name: &str) -> Result<Result<TransitKey, String>, VaultError> {
        let operation = "reading a key";
        let data = self
            .data(operation, Method::Get, &self.path(&["keys", name]), None)
            .await?;
        Ok(describe_key(name, &data))
    }

    /// Every usable key, and the skipped ones with the reason.
    async fn discover(&self) -> Result<(Vec<TransitKey>, Vec<UnusableKey>), VaultError> {
        let operation = "listing keys";
        let names: Vec<String> = match self
            .authed(operation, Method::List, &self.path(&["keys"]), None)
            .await?
        {
            Answer::Done(data) => at(&data, &["data", "keys"])
                .and_then(Value::as_array)
                .ok_or_else(|| self.bad_answer(operation, "has no key list"))?
                .iter()
                .filter_map(Value::as_str)
                // Directories (`import/` in some versions) are not keys.
                .filter(|n| !n.ends_with('/'))
                .map(str::to_owned)
                .collect(),
            // An engine with no keys answers 404 with no error; a wrong mount names itself.
            Answer::NotFound(d) if d == api::NO_DETAIL => Vec::new(),
            Answer::NotFound(d) | Answer::Forbidden(d) => {
                return Err(refused(&self.api, operation, &d))
            }
        };
        let mut keys = Vec::new();
        let mut unusable = Vec::new();
        for name in names {
            match self.read_key(&name).await? {
                Ok(key) => keys.push(key),
                Err(reason) => {
                    tracing::warn!(vault = %self.api.vault, key = %name, "skipping transit key `{name}`: {reason}");
                    unusable.push(UnusableKey { id: name, reason });
                }
            }
        }
        Ok((keys, unusable))
    }

    fn key(&self, pkh: &PublicKeyHash) -> Result<TransitKey, VaultError> {
        self.keys
            .read()
            .get(pkh)
            .cloned()
            .ok_or_else(|| VaultError::KeyNotFound {
                vault: self.api.vault.clone(),
                pkh: *pkh,
            })
    }

    fn describe(&self, key: &TransitKey) -> VaultKey {
        VaultKey::new(key.public_key.clone(), &self.api.vault).with_label(&key.name)
    }

    async fn sign_with(&self, key: &TransitKey, message: &[u8]) -> Result<Signature, VaultError> {
        let operation = "signing";
        let digest = blake2b_256(message);
        let input = STANDARD.encode(digest);
        let body = match key.curve {
            // The digest is the ECDSA hash itself (Tezos's rule), and r ‖ s comes back raw.
            Curve::P256 => json!({
                "input": input, "key_version": key.version, "prehashed": true,
                "hash_algorithm": "sha2-256", "marshaling_algorithm": "jws",
            }),
            _ => json!({"input": input, "key_version": key.version}),
        };
        let data = self
            .data(
                operation,
                Method::Post,
                &self.path(&["sign", &key.name]),
                Some(Payload::Json(&body)),
            )
            .await?;
        let text = at(&data, &["data", "signature"])
            .and_then(Value::as_str)
            .ok_or_else(|| self.bad_answer(operation, "has no signature"))?;
        let raw = signature_bytes(text, key.version, key.curve)
            .map_err(|why| self.bad_answer(operation, &why))?;
        let signature = Signature::from_bytes(key.curve, &raw)
            .map_err(|e| self.bad_answer(operation, &format!("is not a signature: {e}")))?;
        Ok(signature.normalize_low_s())
    }
}

/// A key's description from `GET <mount>/keys/<name>`.
fn describe_key(name: &str, data: &Value) -> Result<TransitKey, String> {
    let kind = at(data, &["data", "type"])
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let curve = match kind {
        "ed25519" => Curve::Ed25519,
        "ecdsa-p256" => Curve::P256,
        other => {
            return Err(format!(
                "type `{other}` is not one Tezos signs with (ed25519 → tz1, ecdsa-p256 → tz3)"
            ))
        }
    };
    if at(data, &["data", "supports_signing"]).and_then(Value::as_bool) == Some(false) {
        return Err("Vault says the key does not support signing".to_owned());
    }
    if at(data, &["data", "derived"]).and_then(Value::as_bool) == Some(true) {
        return Err("a derived key signs with a per-context key, not one public key".to_owned());
    }
    let version = at(data, &["data", "latest_version"])
        .and_then(Value::as_u64)
        .ok_or("the answer has no latest_version")?;
    let version_text = version.to_string();
    let public = at(data, &["data", "keys", &version_text, "public_key"])
        .and_then(Value::as_str)
        .ok_or_else(|| format!("version {version} has no public key"))?;
    let public_key = match curve {
        Curve::P256 => PublicKey::from_spki_pem(public.as_bytes()).map_err(|e| e.to_string())?,
        _ => {
            let raw = STANDARD
                .decode(public)
                .map_err(|e| format!("the public key is not base64: {e}"))?;
            PublicKey::from_bytes(curve, &raw).map_err(|e| e.to_string())?
        }
    };
    if public_key.curve() != curve {
        return Err(format!("its public key is not a {kind} key"));
    }
    Ok(TransitKey {
        name: name.to_owned(),
        version,
        curve,
        public_key,
    })
}

/// The 64 signature bytes of `vault:v<version>:<base64>` (standard base64 for Ed25519,
/// base64url for JWS-marshalled ECDSA), refused if another key version signed.
fn signature_bytes(text: &str, version: u64, curve: Curve) -> Result<Vec<u8>, String> {
    let rest = text
        .strip_prefix("vault:v")
        .ok_or("is not `vault:v<n>:…`")?;
    let (signed_by, encoded) = rest.split_once(':').ok_or("is not `vault:v<n>:…`")?;
    if signed_by != version.to_string() {
        return Err(format!(
            "is by key version {signed_by}, not the listed version {version}"
        ));
    }
    let raw = match curve {
        Curve::P256 => URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')),
        _ => STANDARD.decode(encoded),
    }
    .map_err(|e| format!("has a signature that is not base64: {e}"))?;
    if raw.len() != 64 {
        return Err(format!("has a signature of {} bytes, not 64", raw.len()));
    }
    Ok(raw)
}

/// A fresh transit key name: its address kind, the time and random bits (creating a key
/// under a taken name returns the existing key instead of failing).
fn fresh_name(curve: Curve) -> String {
    use rand_core::RngCore;
    let mut random = [0u8; 6];
    rand_core::OsRng.fill_bytes(&mut random);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "signatory-{}-{now}-{}",
        curve.address_kind(),
        hex::encode(random)
    )
}

#[async_trait::async_trait]
impl Vault for TransitVault {
    fn name(&self) -> &str {
        &self.api.vault
    }

    fn driver(&self) -> &'static str {
        DRIVER
    }

    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        let (keys, unusable) = self.discover().await?;
        *self.unusable.write() = unusable;
        let mut map = self.keys.write();
        map.clear();
        for key in &keys {
            map.insert(key.public_key.hash(), key.clone());
        }
        Ok(keys.iter().map(|k| self.describe(k)).collect())
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
        // tz1 and tz3 sign the Blake2b-256 digest whatever the version.
        let _ = version;
        let key = self.key(pkh)?;
        self.sign_with(&key, message).await
    }

    /// Ed25519 is deterministic; transit's ECDSA draws random nonces.
    fn signs_deterministically(&self, curve: Curve) -> bool {
        curve == Curve::Ed25519
    }

    /// The token is valid and Vault unsealed: `lookup-self` answers (renewing the token
    /// first when it is due).
    async fn health(&self) -> Result<(), VaultError> {
        self.data(
            "health check",
            Method::Get,
            &["auth", "token", "lookup-self"],
            None,
        )
        .await
        .map(drop)
    }

    fn call_stats(&self) -> Option<CallStats> {
        Some(self.api.counters.stats())
    }

    fn sealer(&self) -> Option<&dyn Sealer> {
        Some(self)
    }

    async fn generate(&self, curve: Curve) -> Result<VaultKey, VaultError> {
        let kind = match curve {
            Curve::Ed25519 => "ed25519",
            Curve::P256 => "ecdsa-p256",
            Curve::Secp256k1 => return Err(self.unsupported("secp256k1 (tz2) keys")),
            Curve::Bls12_381 => return Err(self.unsupported("BLS (tz4) keys")),
        };
        let operation = "creating a key";
        let name = fresh_name(curve);
        self.data(
            operation,
            Method::Post,
            &self.path(&["keys", &name]),
            Some(Payload::Json(&json!({"type": kind, "exportable": false}))),
        )
        .await?;
        let key = self
            .read_key(&name)
            .await?
            .map_err(|why| self.bad_answer(operation, &format!("describes key `{name}`: {why}")))?;
        if key.curve != curve {
            return Err(self.bad_answer(operation, &format!("made key `{name}` of another type")));
        }
        self.keys.write().insert(key.public_key.hash(), key.clone());
        Ok(self.describe(&key))
    }

    /// Transit's BYOK import: the key wrapped for the engine's wrapping key, then checked to
    /// be the key transit now holds.
    async fn import(&self, secret: SecretKey) -> Result<VaultKey, VaultError> {
        let curve = secret.curve();
        let kind = match curve {
            Curve::Ed25519 => "ed25519",
            Curve::P256 => "ecdsa-p256",
            Curve::Secp256k1 => return Err(self.unsupported("importing secp256k1 (tz2) keys")),
            Curve::Bls12_381 => return Err(self.unsupported("importing BLS (tz4) keys")),
        };
        let expected = secret.public_key();
        if let Some(held) = self.keys.read().get(&expected.hash()) {
            return Ok(self.describe(held));
        }
        let operation = "importing a key";
        let wrapping = self
            .data(operation, Method::Get, &self.path(&["wrapping_key"]), None)
            .await?;
        let wrapping_pem = at(&wrapping, &["data", "public_key"])
            .and_then(Value::as_str)
            .ok_or_else(|| self.bad_answer(operation, "has no wrapping key"))?;
        let ciphertext =
            byok::wrap_for_import(&secret, wrapping_pem.as_bytes()).map_err(|why| {
                VaultError::backend(&self.api.vault, false, format!("{operation}: {why}"))
            })?;
        drop(secret);
        let name = fresh_name(curve);
        let body = json!({
            "ciphertext": STANDARD.encode(ciphertext), "type": kind,
            "hash_function": "SHA256", "exportable": false,
        });
        self.data(
            operation,
            Method::Post,
            &self.path(&["keys", &name, "import"]),
            Some(Payload::Json(&body)),
        )
        .await?;
        let key = self
            .read_key(&name)
            .await?
            .map_err(|why| self.bad_answer(operation, &format!("describes key `{name}`: {why}")))?;
        if key.public_key != expected {
            return Err(self.bad_answer(
                operation,
                &format!("holds another public key under `{name}` than the imported one"),
            ));
        }
        self.keys.write().insert(key.public_key.hash(), key.clone());
        Ok(self.describe(&key))
    }
}

/// Data keys sealed with transit `encrypt`/`decrypt` under the aes256-gcm96 key `key`
/// (created by the first `encrypt` if the policy allows it). The sealed form is Vault's
/// ciphertext text `vault:v<n>:…`, which names the key version that can open it.
#[async_trait::async_trait]
impl Sealer for TransitVault {
    async fn seal(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let operation = "sealing a data key";
        #[derive(serde::Serialize)]
        struct Encrypt<'a> {
            plaintext: &'a str,
            #[serde(rename = "type")]
            kind: &'static str,
        }
        let encoded = Zeroizing::new(STANDARD.encode(plaintext));
        let body = Zeroizing::new(
            serde_json::to_vec(&Encrypt {
                plaintext: &encoded,
                kind: "aes256-gcm96",
            })
            .map_err(|e| self.bad_answer(operation, &format!("cannot be asked for: {e}")))?,
        );
        let data = self
            .data(
                operation,
                Method::Post,
                &self.path(&["encrypt", key]),
                Some(Payload::Secret(&body)),
            )
            .await?;
        let ciphertext = at(&data, &["data", "ciphertext"])
            .and_then(Value::as_str)
            .filter(|c| c.starts_with("vault:v"))
            .ok_or_else(|| self.bad_answer(operation, "has no ciphertext"))?;
        Ok(ciphertext.as_bytes().to_vec())
    }

    async fn unseal(&self, key: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let operation = "unsealing a data key";
        let ciphertext = std::str::from_utf8(sealed)
            .ok()
            .filter(|c| c.starts_with("vault:v"))
            .ok_or_else(|| {
                VaultError::backend(
                    &self.api.vault,
                    false,
                    format!("{operation}: the sealed key is not a transit ciphertext"),
                )
            })?;
        let mut data = self
            .data(
                operation,
                Method::Post,
                &self.path(&["decrypt", key]),
                Some(Payload::Json(&json!({"ciphertext": ciphertext}))),
            )
            .await?;
        // Moved out of the answer, so this is the one copy, and it is wiped.
        let encoded = match data.pointer_mut("/data/plaintext") {
            Some(Value::String(text)) => Zeroizing::new(std::mem::take(text)),
            _ => return Err(self.bad_answer(operation, "has no plaintext")),
        };
        STANDARD
            .decode(encoded.as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| self.bad_answer(operation, "has a plaintext that is not base64"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn signatures_must_come_from_the_listed_key_version() {
        let b64 = STANDARD.encode([7u8; 64]);
        assert_eq!(
            signature_bytes(&format!("vault:v2:{b64}"), 2, Curve::Ed25519).unwrap(),
            vec![7u8; 64]
        );
        let e = signature_bytes(&format!("vault:v3:{b64}"), 2, Curve::Ed25519).unwrap_err();
        assert!(e.contains("version 3"), "{e}");
        let jws = URL_SAFE_NO_PAD.encode([0xfbu8; 64]);
        assert_eq!(
            signature_bytes(&format!("vault:v1:{jws}"), 1, Curve::P256).unwrap(),
            vec![0xfbu8; 64]
        );
        assert!(signature_bytes("vault:v1:AAAA", 1, Curve::Ed25519).is_err());
        assert!(signature_bytes("v1:AAAA", 1, Curve::Ed25519).is_err());
    }

    #[test]
    fn only_ed25519_and_p256_signing_keys_are_usable() {
        let key = tezos_crypto::SecretKey::generate(Curve::Ed25519).public_key();
        let ed = json!({"data": {"type": "ed25519", "latest_version": 2, "supports_signing": true,
            "keys": {"1": {"public_key": STANDARD.encode([1u8; 32])},
                     "2": {"public_key": STANDARD.encode(key.as_bytes())}}}});
        let found = describe_key("baker", &ed).unwrap();
        assert_eq!((found.version, found.public_key), (2, key));
        let aes = json!({"data": {"type": "aes256-gcm96", "latest_version": 1, "keys": {"1": 1}}});
        assert!(describe_key("a", &aes)
            .unwrap_err()
            .contains("aes256-gcm96"));
        let rsa = json!({"data": {"type": "rsa-2048", "latest_version": 1}});
        assert!(describe_key("r", &rsa).unwrap_err().contains("rsa-2048"));
        let derived = json!({"data": {"type": "ed25519", "derived": true, "latest_version": 1}});
        assert!(describe_key("d", &derived).unwrap_err().contains("derived"));
    }
}
