//! The `azure` driver: EC keys in an Azure Key Vault or Managed HSM, over its REST API.
//! The settings are ECAD Signatory's (see `docs/vaults/azure.md`):
//!
//! ```yaml
//! vaults:
//!   azure:
//!     driver: azure
//!     config:
//!       vault: https://signatory.vault.azure.net/
//!       tenant_id: 50c46f11-1d0a-4c56-b468-1bcb03a8f69e
//!       client_id: d5ccc5ea-8a1f-4dc1-9673-183a4c85e280
//!       client_private_key: service-principal.key
//!       client_certificate_thumbprint: 6B7DDE60582104C37600BB337555E7517F5B834C
//! ```
//!
//! Keys: every enabled `EC`/`EC-HSM` key on curve P-256 (tz3) or P-256K (tz2) whose
//! `key_ops` allow `sign`; any other is listed as unusable with the reason. Signing sends
//! the 32-byte Blake2b digest as the ES256/ES256K hash; Key Vault answers raw r ‖ s, made
//! low-S here.

mod credential;
mod rest;
mod settings;

pub use settings::{AzureSettings, KeyType};

use crate::error::OpenError;
use crate::net::{self, CallCounters, ClientTls, RetryPolicy};
use crate::password::EnvPasswords;
use crate::registry::Driver;
use base64::Engine;
use credential::{Credential, TokenCache};
use parking_lot::RwLock;
use rest::{KeyBundle, KeyVaultClient, B64URL};
use signatory_config::DriverSettings;
use signatory_signer::vault::{CallStats, UnusableKey, Vault, VaultError, VaultKey};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tezos_crypto::{
    blake2b_256, Curve, PublicKey, PublicKeyHash, SecretKey, Signature, SigningVersion,
};
use zeroize::Zeroizing;

const DRIVER: &str = "azure";

/// The budget of one vault call, retries and a token refresh included.
pub const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// One HTTP request's limit: a hung connection leaves room for a retry.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

/// The `azure` driver of the registry.
pub(crate) struct AzureDriver;

/// The environment as the settings check sees it: the secret variables are gone by then.
fn environment_before_open(name: &str) -> Option<Zeroizing<String>> {
    if settings::SECRET_VARIABLES.contains(&name) {
        return None;
    }
    std::env::var(name).ok().map(Zeroizing::new)
}

#[async_trait::async_trait]
impl Driver for AzureDriver {
    fn name(&self) -> &'static str {
        DRIVER
    }

    fn check_settings(&self, vault: &str, settings: &DriverSettings) -> Result<(), OpenError> {
        AzureSettings::parse(vault, settings, &environment_before_open).map(drop)
    }

    /// The settings, and the credential files present and private (nothing is sent).
    fn preflight(
        &self,
        vault: &str,
        settings: &DriverSettings,
    ) -> Option<Result<String, OpenError>> {
        Some(preflight(vault, settings))
    }

    fn secret_variables(&self, _vault: &str, _settings: &DriverSettings) -> Vec<String> {
        settings::SECRET_VARIABLES
            .iter()
            .map(|v| (*v).to_owned())
            .collect()
    }

    async fn open(
        &self,
        vault: &str,
        settings: &DriverSettings,
        passwords: &EnvPasswords,
    ) -> Result<Arc<dyn Vault>, OpenError> {
        let settings = AzureSettings::parse(vault, settings, &|name| passwords.lookup(name))?;
        Ok(Arc::new(AzureVault::open(vault, settings).await?))
    }

    fn deadline(&self) -> Option<Duration> {
        Some(CALL_DEADLINE)
    }
}

fn preflight(vault: &str, settings: &DriverSettings) -> Result<String, OpenError> {
    use settings::CredentialSettings as C;
    let parsed = AzureSettings::parse(vault, settings, &environment_before_open)?;
    let (kind, private_files) = match &parsed.credential {
        C::ClientSecret { .. } => ("a client secret", Vec::new()),
        C::Pkcs12 { path, .. } => ("a PKCS #12 client certificate", vec![path]),
        C::PrivateKey { key_path, .. } => ("a client certificate's private key", vec![key_path]),
        C::ManagedIdentity { .. } => ("the host's managed identity", Vec::new()),
    };
    for path in private_files {
        crate::private_file::open(vault, path, "read the client credential")?;
    }
    Ok(format!("Azure Key Vault {} with {kind}", parsed.vault))
}

/// A key the vault signs with: its name and version in Key Vault.
#[derive(Debug, Clone)]
struct AzureKey {
    name: String,
    version: String,
    curve: Curve,
    public_key: PublicKey,
}

/// A vault whose keys live in Azure Key Vault or Managed HSM.
pub struct AzureVault {
    name: String,
    settings: AzureSettings,
    client: KeyVaultClient,
    keys: RwLock<BTreeMap<PublicKeyHash, AzureKey>>,
    unusable: RwLock<Vec<UnusableKey>>,
}

impl fmt::Debug for AzureVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureVault")
            .field("name", &self.name)
            .field("vault", &self.settings.vault)
            .field("credential", &self.client.tokens.kind())
            .field("keys", &self.keys.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AzureVault {
    /// Load the credential, get a token and list the keys: a backend that cannot be reached
    /// is [`OpenError::Unavailable`]; a refused credential or permission is a settings error.
    pub async fn open(name: &str, settings: AzureSettings) -> Result<AzureVault, OpenError> {
        let credential = Credential::load(name, &settings.credential, &settings.authority_host)?;
        let http = net::http_client(
            name,
            &ClientTls {
                ca_pem: None,
                identity_pem: None,
            },
            REQUEST_TIMEOUT,
        )?;
        tracing::info!(vault = %name, url = %settings.vault, "Azure Key Vault with a {}", credential.kind());
        let vault = AzureVault {
            name: name.to_owned(),
            client: KeyVaultClient {
                vault: name.to_owned(),
                base: settings.vault.clone(),
                http,
                tokens: TokenCache::new(credential, settings.resource.clone()),
                counters: CallCounters::default(),
                policy: RetryPolicy::default(),
                deadline: CALL_DEADLINE,
            },
            settings,
            keys: RwLock::new(BTreeMap::new()),
            unusable: RwLock::new(Vec::new()),
        };
        match tokio::time::timeout(CALL_DEADLINE, vault.list_keys()).await {
            Ok(Ok(_)) => Ok(vault),
            Ok(Err(e)) if !e.is_transient() => Err(OpenError::Config {
                vault: name.to_owned(),
                key_path: format!("vaults.{name}.config"),
                message: e.to_string(),
            }),
            Ok(Err(e)) => Err(OpenError::Unavailable {
                vault: name.to_owned(),
                message: e.to_string(),
                source: Some(Arc::new(e)),
            }),
            Err(_) => Err(OpenError::Unavailable {
                vault: name.to_owned(),
                message: format!(
                    "no answer from {} within {} s",
                    vault.settings.vault,
                    CALL_DEADLINE.as_secs()
                ),
                source: None,
            }),
        }
    }

    fn key(&self, pkh: &PublicKeyHash) -> Result<AzureKey, VaultError> {
        self.keys
            .read()
            .get(pkh)
            .cloned()
            .ok_or_else(|| VaultError::KeyNotFound {
                vault: self.name.clone(),
                pkh: *pkh,
            })
    }

    /// Remember `bundle`'s key (from create or import) and describe it.
    fn adopt(
        &self,
        bundle: &KeyBundle,
        expected: Option<&PublicKey>,
    ) -> Result<VaultKey, VaultError> {
        let key = usable_key(bundle).map_err(|reason| {
            VaultError::backend(
                &self.name,
                false,
                format!("Key Vault's new key is not usable: {reason}"),
            )
        })?;
        if expected.is_some_and(|pk| *pk != key.public_key) {
            return Err(VaultError::backend(
                &self.name,
                false,
                format!(
                    "importing a key: Key Vault's public key for `{}` is not the imported key's",
                    key.name
                ),
            ));
        }
        let described = describe(&self.name, &key);
        self.keys.write().insert(key.public_key.hash(), key);
        Ok(described)
    }

    fn unsupported_curve(&self, curve: Curve, importing: bool) -> VaultError {
        self.unsupported(match (curve, importing) {
            (Curve::Ed25519, false) => "generating tz1 (Ed25519) keys",
            (Curve::Ed25519, true) => "importing tz1 (Ed25519) keys",
            (_, false) => "generating tz4 (BLS) keys",
            (_, true) => "importing tz4 (BLS) keys",
        })
    }
}

fn describe(vault: &str, key: &AzureKey) -> VaultKey {
    VaultKey::new(key.public_key.clone(), vault).with_label(&key.name)
}

/// Key Vault's curve name of a Tezos curve, and the signing algorithm.
fn azure_curve(curve: Curve) -> Option<(&'static str, &'static str)> {
    match curve {
        Curve::P256 => Some(("P-256", "ES256")),
        Curve::Secp256k1 => Some(("P-256K", "ES256K")),
        Curve::Ed25519 | Curve::Bls12_381 => None,
    }
}

/// The key in `bundle` if Tezos can sign with it, else why not.
fn usable_key(bundle: &KeyBundle) -> Result<AzureKey, String> {
    let jwk = &bundle.key;
    let (name, version) = rest::split_kid(&jwk.kid)
        .ok_or_else(|| format!("its id `{}` is not a Key Vault key id", jwk.kid))?;
    let version = version.ok_or_else(|| "its id names no version".to_owned())?;
    if !bundle.attributes.enabled {
        return Err("it is disabled".to_owned());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if bundle.attributes.exp.is_some_and(|exp| exp <= now) {
        return Err("it has expired".to_owned());
    }
    if bundle.attributes.nbf.is_some_and(|nbf| nbf > now) {
        return Err("it is not valid yet (nbf)".to_owned());
    }
    if jwk.kty != "EC" && jwk.kty != "EC-HSM" {
        return Err(format!(
            "key type {} is not one Tezos signs with (EC P-256 → tz3, EC P-256K → tz2)",
            jwk.kty
        ));
    }
    let curve = match jwk.crv.as_deref() {
        Some("P-256") => Curve::P256,
        Some("P-256K") | Some("SECP256K1") => Curve::Secp256k1,
        other => {
            return Err(format!(
                "curve {} is not one Tezos signs with (P-256 → tz3, P-256K → tz2)",
                other.unwrap_or("(none)")
            ))
        }
    };
    if !jwk.key_ops.iter().any(|op| op == "sign") {
        return Err("its key_ops do not allow `sign`".to_owned());
    }
    let coordinate = |c: &Option<String>, which: &str| -> Result<Vec<u8>, String> {
        let text = c
            .as_deref()
            .ok_or_else(|| format!("its JWK has no {which}"))?;
        let bytes = B64URL
            .decode(text.trim_end_matches('='))
            .map_err(|e| format!("its JWK {which} is not base64url: {e}"))?;
        if bytes.len() > 32 {
            return Err(format!("its JWK {which} is {} bytes, not 32", bytes.len()));
        }
        // A coordinate may come without its leading zero bytes.
        let mut padded = vec![0u8; 32 - bytes.len()];
        padded.extend_from_slice(&bytes);
        Ok(padded)
    };
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&coordinate(&jwk.x, "x")?);
    point.extend_from_slice(&coordinate(&jwk.y, "y")?);
    let public_key = PublicKey::from_uncompressed_point(curve, &point)
        .map_err(|e| format!("its public key is not valid: {e}"))?;
    Ok(AzureKey {
        name,
        version,
        curve,
        public_key,
    })
}

/// A new key's name: `signatory-<tz2|tz3>-<unix seconds>-<random>`.
fn new_key_name(curve: Curve) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut random = [0u8; 4];
    openssl::rand::rand_bytes(&mut random).map_err(|e| e.to_string())?;
    Ok(format!(
        "signatory-{}-{now}-{}",
        curve.address_kind(),
        hex::encode(random)
    ))
}

/// The private JWK of `secret` for `PUT /keys/{name}`: the secret scalar `d` with the
/// public point, serialized into wiped memory.
fn import_body(secret: &SecretKey, crv: &str, hsm: bool) -> Result<Zeroizing<Vec<u8>>, String> {
    use openssl::bn::{BigNum, BigNumContext};
    use openssl::ec::{EcGroup, EcPoint};
    use openssl::nid::Nid;
    let nid = match secret.curve() {
        Curve::P256 => Nid::X9_62_PRIME256V1,
        Curve::Secp256k1 => Nid::SECP256K1,
        _ => return Err("only P-256 and secp256k1 keys can be imported".to_owned()),
    };
    let e = |e: openssl::error::ErrorStack| e.to_string();
    let group = EcGroup::from_curve_name(nid).map_err(e)?;
    let d_bytes = secret.expose_secret_bytes();
    let d = BigNum::from_slice(d_bytes.as_slice()).map_err(e)?;
    let mut ctx = BigNumContext::new().map_err(e)?;
    let mut point = EcPoint::new(&group).map_err(e)?;
    point.mul_generator2(&group, &d, &mut ctx).map_err(e)?;
    let (mut x, mut y) = (BigNum::new().map_err(e)?, BigNum::new().map_err(e)?);
    point
        .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
        .map_err(e)?;
    let x = x.to_vec_padded(32).map_err(e)?;
    let y = y.to_vec_padded(32).map_err(e)?;
    let d_text = Zeroizing::new(B64URL.encode(d_bytes.as_slice()));
    drop(d);
    let body = serde_json::json!({
        "key": {
            "kty": "EC",
            "crv": crv,
            "key_ops": ["sign", "verify"],
            "x": B64URL.encode(x),
            "y": B64URL.encode(y),
            "d": d_text.as_str(),
        },
        "hsm": hsm,
    });
    let bytes = Zeroizing::new(serde_json::to_vec(&body).map_err(|e| e.to_string())?);
    // The `Value` tree holds a copy of `d`: wipe it before it is dropped.
    if let serde_json::Value::Object(mut outer) = body {
        if let Some(serde_json::Value::Object(key)) = outer.get_mut("key") {
            if let Some(serde_json::Value::String(d)) = key.get_mut("d") {
                zeroize::Zeroize::zeroize(d);
            }
        }
    }
    Ok(bytes)
}

#[async_trait::async_trait]
impl Vault for AzureVault {
    fn name(&self) -> &str {
        &self.name
    }

    fn driver(&self) -> &'static str {
        DRIVER
    }

    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        let mut keys = Vec::new();
        let mut unusable = Vec::new();
        for kid in self.client.list().await? {
            let Some((name, _)) = rest::split_kid(&kid) else {
                unusable.push(UnusableKey {
                    id: kid.clone(),
                    reason: "not a Key Vault key id".to_owned(),
                });
                continue;
            };
            let bundle = self.client.get(&name).await?;
            match usable_key(&bundle) {
                Ok(key) => keys.push(key),
                Err(reason) => {
                    tracing::warn!(vault = %self.name, key = %name, "skipping Azure key `{name}`: {reason}");
                    unusable.push(UnusableKey { id: name, reason });
                }
            }
        }
        *self.unusable.write() = unusable;
        let mut map = self.keys.write();
        map.clear();
        for key in &keys {
            map.insert(key.public_key.hash(), key.clone());
        }
        Ok(keys.iter().map(|k| describe(&self.name, k)).collect())
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
        // tz2 and tz3 sign the Blake2b-256 digest whatever the version.
        let _ = version;
        let key = self.key(pkh)?;
        let (_, alg) =
            azure_curve(key.curve).ok_or_else(|| self.unsupported("signing with this curve"))?;
        let digest = blake2b_256(message);
        let raw = self
            .client
            .sign(&key.name, &key.version, alg, &digest)
            .await?;
        let signature = Signature::from_bytes(key.curve, &raw).map_err(|e| {
            VaultError::backend(
                &self.name,
                false,
                format!("signing with `{}`: Key Vault's signature: {e}", key.name),
            )
        })?;
        Ok(signature.normalize_low_s())
    }

    async fn health(&self) -> Result<(), VaultError> {
        self.client.probe().await
    }

    fn call_stats(&self) -> Option<CallStats> {
        Some(self.client.counters.stats())
    }

    async fn generate(&self, curve: Curve) -> Result<VaultKey, VaultError> {
        let (crv, _) = azure_curve(curve).ok_or_else(|| self.unsupported_curve(curve, false))?;
        let name = new_key_name(curve).map_err(|m| VaultError::backend(&self.name, false, m))?;
        let bundle = self
            .client
            .create(&name, self.settings.key_type.kty(), crv)
            .await?;
        self.adopt(&bundle, None)
    }

    async fn import(&self, key: SecretKey) -> Result<VaultKey, VaultError> {
        let curve = key.curve();
        let (crv, _) = azure_curve(curve).ok_or_else(|| self.unsupported_curve(curve, true))?;
        let expected = key.public_key();
        if let Some(held) = self.keys.read().get(&expected.hash()) {
            return Ok(describe(&self.name, held));
        }
        let name = new_key_name(curve).map_err(|m| VaultError::backend(&self.name, false, m))?;
        let body = import_body(&key, crv, self.settings.key_type == KeyType::EcHsm)
            .map_err(|m| VaultError::backend(&self.name, false, format!("importing a key: {m}")))?;
        drop(key);
        let bundle = self.client.import(&name, &body).await?;
        self.adopt(&bundle, Some(&expected))
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

    fn bundle(json: serde_json::Value) -> KeyBundle {
        serde_json::from_value(json).unwrap()
    }

    fn ec_jwk(curve: Curve) -> (serde_json::Value, PublicKey) {
        let secret = SecretKey::generate(curve);
        let body: serde_json::Value = serde_json::from_slice(
            &import_body(&secret, azure_curve(curve).unwrap().0, true).unwrap(),
        )
        .unwrap();
        (body["key"].clone(), secret.public_key())
    }

    #[test]
    fn ec_keys_that_can_sign_are_usable_with_their_jwk_public_key() {
        for curve in [Curve::P256, Curve::Secp256k1] {
            let (jwk, pk) = ec_jwk(curve);
            let b = bundle(serde_json::json!({
                "key": {"kid": "https://v.vault.azure.net/keys/k1/abc123", "kty": "EC-HSM", "crv": jwk["crv"], "key_ops": ["sign", "verify"], "x": jwk["x"], "y": jwk["y"]},
                "attributes": {"enabled": true}
            }));
            let key = usable_key(&b).unwrap();
            assert_eq!(key.public_key, pk);
            assert_eq!((key.name.as_str(), key.version.as_str()), ("k1", "abc123"));
        }
    }

    #[test]
    fn unusable_keys_say_why() {
        let (jwk, _) = ec_jwk(Curve::P256);
        let base = serde_json::json!({"kid": "https://v.vault.azure.net/keys/k/1", "kty": "EC", "crv": "P-256", "key_ops": ["sign"], "x": jwk["x"], "y": jwk["y"]});
        let with = |patch: &dyn Fn(&mut serde_json::Value), attributes: serde_json::Value| {
            let mut key = base.clone();
            patch(&mut key);
            usable_key(&bundle(
                serde_json::json!({"key": key, "attributes": attributes}),
            ))
            .unwrap_err()
        };
        assert!(with(&|_| {}, serde_json::json!({"enabled": false})).contains("disabled"));
        assert!(with(&|_| {}, serde_json::json!({"exp": 1})).contains("expired"));
        assert!(with(&|k| k["kty"] = "RSA".into(), serde_json::json!({})).contains("key type RSA"));
        assert!(with(&|k| k["crv"] = "P-384".into(), serde_json::json!({})).contains("curve P-384"));
        assert!(with(
            &|k| k["key_ops"] = serde_json::json!(["verify"]),
            serde_json::json!({})
        )
        .contains("sign"));
    }

    #[test]
    fn preflight_names_the_credential_and_refuses_a_readable_key_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("sp.key");
        std::fs::write(&key, b"not read here").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let settings: DriverSettings = serde_yaml_ng::from_str(&format!(
            "vault: https://v.vault.azure.net\ntenant_id: t\nclient_id: c\n\
             client_private_key: {}\nclient_certificate_thumbprint: \
             6B7DDE60582104C37600BB337555E7517F5B834C\n",
            key.display()
        ))
        .unwrap();
        let e = preflight("az", &settings).unwrap_err();
        assert!(matches!(e, OpenError::Permissions { .. }), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ok = preflight("az", &settings).unwrap();
        assert_eq!(
            ok,
            "Azure Key Vault https://v.vault.azure.net with a client certificate's private key"
        );
    }

    #[test]
    fn the_import_body_holds_the_key_and_its_public_point() {
        let secret = SecretKey::generate(Curve::Secp256k1);
        let body: serde_json::Value =
            serde_json::from_slice(&import_body(&secret, "P-256K", false).unwrap()).unwrap();
        assert_eq!(body["hsm"], false);
        assert_eq!(body["key"]["crv"], "P-256K");
        let d = B64URL.decode(body["key"]["d"].as_str().unwrap()).unwrap();
        assert_eq!(d.as_slice(), secret.expose_secret_bytes().as_slice());
    }
}
