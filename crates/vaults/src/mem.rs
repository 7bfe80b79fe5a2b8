//! The `mem` driver: keys given in the configuration or generated at start, kept in
//! memory only. For tests and trials; nothing is persisted.
//!
//! ```yaml
//! vaults:
//!   test:
//!     driver: mem
//!     config: [edsk…, "unencrypted:spsk…"]     # ECAD's form: a list of secret keys
//!   scratch:
//!     driver: mem
//!     config:
//!       keys: [edsk…]
//!       generate: [tz1, tz4]                   # fresh random keys (ed25519 … bls12_381)
//! ```

use crate::error::OpenError;
use crate::keyring::Keyring;
use crate::secret_file::{self, Stored};
use serde::Deserialize;
use signatory_signer::vault::{VaultError, VaultKey};
use std::fmt;
use tezos_crypto::{Curve, SecretKey};

/// The `mem` driver of the registry.
pub(crate) struct MemDriver;

#[async_trait::async_trait]
impl crate::registry::Driver for MemDriver {
    fn name(&self) -> &'static str {
        "mem"
    }

    fn check_settings(
        &self,
        vault: &str,
        settings: &signatory_config::DriverSettings,
    ) -> Result<(), OpenError> {
        MemVault::from_settings(vault, settings).map(drop)
    }

    async fn open(
        &self,
        vault: &str,
        settings: &signatory_config::DriverSettings,
        _passwords: &crate::password::EnvPasswords,
    ) -> Result<std::sync::Arc<dyn signatory_signer::vault::Vault>, OpenError> {
        Ok(std::sync::Arc::new(MemVault::from_settings(
            vault, settings,
        )?))
    }

    fn keeps_keys(&self) -> bool {
        false
    }

    fn deadline(&self) -> Option<std::time::Duration> {
        None
    }
}

/// A vault whose keys live in this process only.
pub struct MemVault {
    keys: Keyring,
}

impl fmt::Debug for MemVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemVault")
            .field("keys", &self.keys)
            .finish()
    }
}

impl MemVault {
    pub fn new(name: &str) -> Self {
        MemVault {
            keys: Keyring::new(name),
        }
    }

    /// A vault holding `keys`, labelled by their key hashes.
    pub fn with_keys(name: &str, keys: impl IntoIterator<Item = SecretKey>) -> Self {
        let vault = MemVault::new(name);
        for key in keys {
            vault.add(key);
        }
        vault
    }

    /// Add a key; `false` when the vault already holds it.
    pub fn add(&self, key: SecretKey) -> bool {
        let label = key.public_key().hash().to_string();
        self.keys.insert(label, key)
    }

    /// Keep `key` (a key already held is returned as it is).
    async fn store(&self, key: SecretKey) -> Result<VaultKey, VaultError> {
        let pkh = key.public_key().hash();
        self.add(key);
        self.keys.key(&pkh).ok_or_else(|| {
            VaultError::backend(
                self.keys.vault().to_owned(),
                false,
                "the key vanished after it was added".to_owned(),
            )
        })
    }

    /// Build from the driver's `config` value; errors name `vaults.<vault>.config…`.
    pub fn from_settings(vault: &str, settings: &serde_yaml_ng::Value) -> Result<Self, OpenError> {
        #[derive(Deserialize, Default)]
        #[serde(
            deny_unknown_fields,
            expecting = "a list of secret keys, or a mapping with `keys` and `generate`"
        )]
        struct Settings {
            #[serde(default)]
            keys: Vec<String>,
            #[serde(default)]
            generate: Vec<String>,
        }
        let base = format!("vaults.{vault}.config");
        let config_error = |key_path: String, message: String| OpenError::Config {
            vault: vault.to_owned(),
            key_path,
            message,
        };
        let (settings, keys_path) = match settings {
            serde_yaml_ng::Value::Null => (Settings::default(), base.clone()),
            serde_yaml_ng::Value::Sequence(_) => {
                let keys = serde_path_to_error::deserialize(settings.clone()).map_err(|e| {
                    config_error(
                        format!("{base}{}", index_path(&e.path().to_string())),
                        e.into_inner().to_string(),
                    )
                })?;
                (
                    Settings {
                        keys,
                        generate: Vec::new(),
                    },
                    base.clone(),
                )
            }
            other => {
                let parsed: Settings = crate::error::parse_settings(vault, other)?;
                (parsed, format!("{base}.keys"))
            }
        };
        let vault_keys = MemVault::new(vault);
        for (i, text) in settings.keys.iter().enumerate() {
            let at = format!("{keys_path}[{i}]");
            let key = match secret_file::classify(text.trim()) {
                Stored::Plain(plain) => SecretKey::from_b58check(plain)
                    .map_err(|e| config_error(at, format!("not a usable secret key: {e}")))?,
                Stored::Encrypted(_) => {
                    return Err(config_error(
                        at,
                        "encrypted keys need a password; use the `file` driver for them"
                            .to_owned(),
                    ))
                }
                Stored::Sealed(_) => {
                    return Err(config_error(
                        at,
                        "sealed keys are read from a sealed key file; use the `file` driver for them"
                            .to_owned(),
                    ))
                }
                Stored::Elsewhere(scheme) => {
                    return Err(config_error(
                        at,
                        format!("`{scheme}:` keys cannot be held in memory; expected a secret key (edsk…, spsk…, p2sk…, BLsk…)"),
                    ))
                }
            };
            vault_keys.add(key);
        }
        for (i, name) in settings.generate.iter().enumerate() {
            let curve = parse_curve(name).ok_or_else(|| {
                config_error(
                    format!("{base}.generate[{i}]"),
                    format!("unknown curve `{name}`; expected tz1/ed25519, tz2/secp256k1, tz3/p256 or tz4/bls12_381"),
                )
            })?;
            vault_keys.add(SecretKey::generate(curve));
        }
        Ok(vault_keys)
    }
}

/// `[2]` from serde_path_to_error's `[2]` (or `.` for the list itself).
fn index_path(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_owned()
    }
}

/// A curve by its name or its address prefix.
pub fn parse_curve(name: &str) -> Option<Curve> {
    match name.trim().to_ascii_lowercase().as_str() {
        "tz1" | "ed25519" => Some(Curve::Ed25519),
        "tz2" | "secp256k1" => Some(Curve::Secp256k1),
        "tz3" | "p256" | "p-256" | "nistp256" => Some(Curve::P256),
        "tz4" | "bls" | "bls12_381" | "bls12-381" => Some(Curve::Bls12_381),
        _ => None,
    }
}

crate::keyring::keyring_vault!(MemVault, "mem");
