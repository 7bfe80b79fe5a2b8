//! From a configuration to a signing service: open the vaults, list the keys they hold
//! (public keys fetched once and cached), attach each configured key's policy, and check
//! that every key enabled in the configuration is held by some vault.

use crate::error::CliError;
use signatory_config::{Config, KeyPolicyConfig};
use signatory_signer::policy::KeyPolicy;
use signatory_signer::service::KeyEntry;
use signatory_signer::vault::{Vault, VaultKey};
use signatory_vaults::EnvPasswords;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tezos_crypto::PublicKeyHash;

/// The policy the service applies for a key's validated configuration.
pub fn key_policy(config: &KeyPolicyConfig) -> KeyPolicy {
    KeyPolicy {
        allowed_requests: config.allowed_requests.clone(),
        allowed_operations: config.allowed_operations.clone(),
        allowed_chains: config.allowed_chains.clone(),
        authorized_clients: config.authorized_key_hashes(),
        allow_proof_of_possession: config.allow_proof_of_possession,
        log_payloads: config.log_payloads,
    }
}

/// The configured vaults, opened or not.
#[derive(Debug, Default)]
pub struct OpenedVaults {
    pub vaults: Vec<Arc<dyn Vault>>,
    /// Vaults whose backend could not be reached (name, reason): the others serve.
    pub unavailable: Vec<(String, String)>,
}

/// Open every configured vault, in name order. Opening may ask for passwords on the
/// terminal and read key files.
pub async fn open_vaults(config: &Config) -> Result<OpenedVaults, CliError> {
    open_vaults_with(config, &EnvPasswords::default()).await
}

/// [`open_vaults`] with the passwords taken from the environment at start. A vault whose
/// backend is unavailable is logged and left out; any other failure (wrong settings, a
/// wrong password, an unreadable key file) stops everything.
pub async fn open_vaults_with(
    config: &Config,
    passwords: &EnvPasswords,
) -> Result<OpenedVaults, CliError> {
    let mut opened = OpenedVaults::default();
    // A vault may need one opened before it (a sealed key file, the vault that unseals
    // it): those unavailable in the first round are tried once more with every vault the
    // first round opened.
    let mut waiting: Vec<&signatory_config::VaultConfig> = config.vaults.values().collect();
    for last_round in [false, true] {
        let mut unavailable = Vec::new();
        for vault in waiting {
            match signatory_vaults::open_configured_among(vault, passwords, &opened.vaults).await {
                Ok(v) => {
                    tracing::info!(vault = %vault.name, driver = %vault.driver, "vault opened");
                    opened.vaults.push(v);
                }
                Err(e) if e.is_unavailable() => unavailable.push((vault, e)),
                Err(e) => return Err(CliError::vault_open(&config.origin)(e)),
            }
        }
        if last_round || unavailable.is_empty() {
            for (vault, e) in unavailable {
                let reason = signatory_signer::vault::error_chain(&e);
                tracing::error!(vault = %vault.name, driver = %vault.driver, error = %reason, "vault unavailable; the other vaults serve without it");
                opened.unavailable.push((vault.name.clone(), reason));
            }
            break;
        }
        waiting = unavailable.into_iter().map(|(vault, _)| vault).collect();
    }
    opened.vaults.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(opened)
}

/// What [`open_and_check_vaults`] found.
#[derive(Debug)]
pub struct OpenedService {
    pub keys: HashMap<PublicKeyHash, KeyEntry>,
    /// Vaults that could not be opened or listed (name, reason).
    pub unavailable: Vec<(String, String)>,
    /// Enabled keys no open vault holds (only when some vault is unavailable).
    pub missing: Vec<PublicKeyHash>,
    /// The vaults that opened, those holding no key included (a vault that only unseals
    /// key files).
    pub vaults: Vec<Arc<dyn Vault>>,
}

/// The vault checks `serve` makes before it starts, and `config check` makes the same way:
/// some vault is configured, every vault opens or is unavailable, and every key under
/// `tezos:` is held by one. Keys missing while a vault is unavailable may be in it: `serve`
/// starts without them (logged); with every vault open, a missing key stops the start.
/// Returns the service's keys, the vaults that could not be opened and the enabled keys
/// no open vault holds.
pub async fn open_and_check_vaults(
    config: &Config,
    passwords: &EnvPasswords,
) -> Result<OpenedService, CliError> {
    // Without a vault nothing can sign: a configuration mistake, not a signer to run.
    if config.vaults.is_empty() {
        return Err(CliError::NoVaults {
            config: config.origin.clone(),
        });
    }
    let opened = open_vaults_with(config, passwords).await?;
    let found = list_vault_keys(&opened.vaults).await;
    let mut unavailable = opened.unavailable;
    unavailable.extend(found.unlisted);
    if unavailable.is_empty() {
        return Ok(OpenedService {
            keys: require_all_enabled(config, &found.keys)?,
            unavailable,
            missing: Vec::new(),
            vaults: opened.vaults,
        });
    }
    let (keys, missing) = key_entries(&config.tezos, &found.keys);
    for pkh in &missing {
        tracing::error!(%pkh, "enabled key not found in the open vaults; it may be in an unavailable vault and is not served");
    }
    Ok(OpenedService {
        keys,
        unavailable,
        missing,
        vaults: opened.vaults,
    })
}

/// How often a vault unavailable at start is tried again.
pub const REOPEN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Try the service's unavailable vaults again every `interval` until each has opened and
/// its keys joined the service (with their policies, as at start). A vault that now fails
/// for its settings (a PIN the token refuses) is logged and not tried again: retrying
/// could lock the token.
pub async fn reopen_unavailable(
    config: Config,
    service: Arc<signatory_signer::service::SignService>,
    passwords: EnvPasswords,
    mut opened: Vec<Arc<dyn Vault>>,
    interval: std::time::Duration,
) {
    let mut given_up: Vec<String> = Vec::new();
    loop {
        let waiting: Vec<String> = service
            .unavailable_vaults()
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| !given_up.contains(name))
            .collect();
        if waiting.is_empty() {
            return;
        }
        tokio::time::sleep(interval).await;
        for name in waiting {
            let Some(vault_config) = config.vaults.get(&name) else {
                given_up.push(name);
                continue;
            };
            let vault = match signatory_vaults::open_configured_among(
                vault_config,
                &passwords,
                &opened,
            )
            .await
            {
                Ok(vault) => vault,
                Err(e) if e.is_unavailable() => {
                    tracing::debug!(vault = %name, error = %signatory_signer::vault::error_chain(&e), "vault still unavailable");
                    continue;
                }
                Err(e) => {
                    tracing::error!(vault = %name, error = %e, "vault cannot open; not tried again until restart");
                    given_up.push(name);
                    continue;
                }
            };
            let found = list_vault_keys(std::slice::from_ref(&vault)).await;
            if !found.unlisted.is_empty() {
                continue;
            }
            opened.push(Arc::clone(&vault));
            let (entries, _) = key_entries(&config.tezos, &found.keys);
            let count = entries.len();
            service.add_vault_keys(&name, entries);
            tracing::info!(vault = %name, keys = count, "vault opened after start; its keys are served");
        }
    }
}

/// Request kinds a baker signs for consensus: a key allowed any of them should be bound to
/// its chain, or it signs for whichever chain asks (a test network's node, say).
const CONSENSUS_KINDS: [&str; 4] = [
    "block",
    "preattestation",
    "attestation",
    "attestation_with_dal",
];

/// Start-up warnings `serve` logs and `config check` prints: keys that may sign consensus
/// operations with no `allowed_chains`.
pub fn start_warnings(config: &Config) -> Vec<String> {
    config
        .tezos
        .iter()
        .filter(|(_, policy)| {
            policy.allowed_chains.is_none()
                && CONSENSUS_KINDS
                    .iter()
                    .any(|kind| policy.allowed_requests.contains(*kind))
        })
        .map(|(pkh, _)| {
            format!(
                "`tezos.{pkh}`: may sign blocks or (pre)attestations but has no \
                 `allowed_chains`: it signs them for any chain; list its chain (e.g. \
                 `allowed_chains: [NetXdQprcVkpaWU]` for mainnet)"
            )
        })
        .collect()
}

/// A key found in a vault.
#[derive(Debug, Clone)]
pub struct FoundKey {
    pub key: VaultKey,
    pub vault: Arc<dyn Vault>,
}

/// The keys the open vaults hold.
#[derive(Debug, Default)]
pub struct FoundKeys {
    pub keys: BTreeMap<PublicKeyHash, FoundKey>,
    /// Vaults whose keys could not be listed (name, reason): unavailable, like a vault
    /// that did not open.
    pub unlisted: Vec<(String, String)>,
}

/// List the keys of every vault. A key held by two vaults is served from the first (in
/// name order); both sign identically, so this is only worth a warning. Keys a vault holds
/// but cannot use are logged, one line each; a vault that cannot list its keys is logged
/// and left out, the others still listed.
pub async fn list_vault_keys(vaults: &[Arc<dyn Vault>]) -> FoundKeys {
    let mut listed = FoundKeys::default();
    let found = &mut listed.keys;
    for vault in vaults {
        let keys = match vault.list_keys().await {
            Ok(keys) => keys,
            Err(e) => {
                let reason = signatory_signer::vault::error_chain(&e);
                tracing::error!(vault = vault.name(), error = %reason, "cannot list the vault's keys; the other vaults serve without it");
                listed.unlisted.push((vault.name().to_owned(), reason));
                continue;
            }
        };
        for unusable in vault.unusable_keys() {
            tracing::warn!(vault = vault.name(), key = %unusable.id, reason = %unusable.reason, "key skipped");
        }
        for key in keys {
            if let Some(first) = found.get(&key.pkh) {
                tracing::warn!(
                    pkh = %key.pkh,
                    used = first.vault.name(),
                    ignored = vault.name(),
                    "key held by two vaults; using the first"
                );
                continue;
            }
            found.insert(
                key.pkh,
                FoundKey {
                    key,
                    vault: Arc::clone(vault),
                },
            );
        }
    }
    listed
}

/// The service's keys: every key the vaults hold, with a policy when the configuration
/// enables it. Also returns the enabled keys no vault holds.
pub fn key_entries(
    tezos: &BTreeMap<PublicKeyHash, KeyPolicyConfig>,
    found: &BTreeMap<PublicKeyHash, FoundKey>,
) -> (HashMap<PublicKeyHash, KeyEntry>, Vec<PublicKeyHash>) {
    let entries = found
        .iter()
        .map(|(pkh, found)| {
            (
                *pkh,
                KeyEntry {
                    public_key: found.key.public_key.clone(),
                    vault: Arc::clone(&found.vault),
                    policy: tezos.get(pkh).map(key_policy),
                },
            )
        })
        .collect();
    let missing = tezos
        .keys()
        .filter(|pkh| !found.contains_key(pkh))
        .copied()
        .collect();
    (entries, missing)
}

/// [`key_entries`], refusing a configuration that enables a key no vault holds: the
/// operator expects it to sign, and finding out at the first block is too late.
pub fn require_all_enabled(
    config: &Config,
    found: &BTreeMap<PublicKeyHash, FoundKey>,
) -> Result<HashMap<PublicKeyHash, KeyEntry>, CliError> {
    let (entries, missing) = key_entries(&config.tezos, found);
    if let Some(pkh) = missing.first() {
        return Err(CliError::KeyNotInVault {
            pkh: *pkh,
            config: config.origin.clone(),
            vaults: if config.vaults.is_empty() {
                "none configured".to_owned()
            } else {
                config.vault_names().join(", ")
            },
        });
    }
    Ok(entries)
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
    use signatory_vaults::MemVault;
    use std::collections::BTreeSet;
    use tezos_crypto::{ChainId, Curve, SecretKey};

    fn config_with(tezos: BTreeMap<PublicKeyHash, KeyPolicyConfig>) -> Config {
        let mut config = Config::parse("{}", "test.yaml", &|_| None).unwrap();
        config.tezos = tezos;
        config
    }

    async fn found_in(vault: MemVault) -> BTreeMap<PublicKeyHash, FoundKey> {
        let vault: Arc<dyn Vault> = Arc::new(vault);
        list_vault_keys(&[vault]).await.keys
    }

    #[test]
    fn policy_config_maps_field_by_field() {
        let client = SecretKey::generate(Curve::Ed25519).public_key();
        let config = KeyPolicyConfig {
            allowed_requests: ["generic".to_owned()].into(),
            allowed_operations: ["transaction".to_owned()].into(),
            allowed_chains: Some([ChainId([1, 2, 3, 4])].into()),
            authorized_keys: Some(vec![client.clone()]),
            allow_proof_of_possession: true,
            log_payloads: true,
        };
        let policy = key_policy(&config);
        assert_eq!(policy.allowed_requests, config.allowed_requests);
        assert_eq!(policy.allowed_operations, config.allowed_operations);
        assert_eq!(policy.allowed_chains, config.allowed_chains);
        assert_eq!(
            policy.authorized_clients,
            Some(BTreeSet::from([client.hash()]))
        );
        assert!(policy.allow_proof_of_possession && policy.log_payloads);
        // No authorized keys: no authentication required.
        assert_eq!(
            key_policy(&KeyPolicyConfig::listed_without_policy()).authorized_clients,
            None
        );
    }

    #[tokio::test]
    async fn vault_keys_not_in_the_configuration_are_served_but_not_enabled() {
        let enabled = SecretKey::generate(Curve::Ed25519);
        let served = SecretKey::generate(Curve::P256);
        let enabled_pkh = enabled.public_key().hash();
        let served_pkh = served.public_key().hash();
        let found = found_in(MemVault::with_keys("local", [enabled, served])).await;
        let config = config_with(BTreeMap::from([(
            enabled_pkh,
            KeyPolicyConfig::listed_without_policy(),
        )]));
        let entries = require_all_enabled(&config, &found).unwrap();
        assert_eq!(entries.len(), 2);
        let policy = entries[&enabled_pkh].policy.as_ref().unwrap();
        assert!(policy.allowed_requests.contains("block"));
        assert!(entries[&served_pkh].policy.is_none());
        assert_eq!(entries[&served_pkh].vault.name(), "local");
    }

    #[tokio::test]
    async fn an_enabled_key_in_no_vault_stops_the_start_naming_it() {
        let held = SecretKey::generate(Curve::Ed25519);
        let absent = SecretKey::generate(Curve::Secp256k1).public_key().hash();
        let found = found_in(MemVault::with_keys("local", [held])).await;
        let config = config_with(BTreeMap::from([(
            absent,
            KeyPolicyConfig::listed_without_policy(),
        )]));
        let e = require_all_enabled(&config, &found)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&absent.to_b58check()), "{e}");
        assert!(e.contains("test.yaml"), "{e}");
        assert!(e.contains("no vault holds it"), "{e}");
        let (_, missing) = key_entries(&config.tezos, &found);
        assert_eq!(missing, vec![absent]);
    }

    /// A vault that cannot list its keys.
    #[derive(Debug)]
    struct Unlistable;

    #[async_trait::async_trait]
    impl Vault for Unlistable {
        fn name(&self) -> &str {
            "hsm"
        }
        fn driver(&self) -> &'static str {
            "test"
        }
        async fn list_keys(&self) -> Result<Vec<VaultKey>, signatory_signer::vault::VaultError> {
            Err(signatory_signer::vault::VaultError::backend(
                "hsm",
                true,
                "connection refused",
            ))
        }
        async fn sign(
            &self,
            pkh: &PublicKeyHash,
            _: &[u8],
            _: tezos_crypto::SigningVersion,
        ) -> Result<tezos_crypto::Signature, signatory_signer::vault::VaultError> {
            Err(signatory_signer::vault::VaultError::KeyNotFound {
                vault: "hsm".to_owned(),
                pkh: *pkh,
            })
        }
    }

    #[tokio::test]
    async fn a_vault_that_cannot_list_its_keys_leaves_the_others_listed() {
        let key = SecretKey::generate(Curve::Ed25519);
        let pkh = key.public_key().hash();
        let broken: Arc<dyn Vault> = Arc::new(Unlistable);
        let local: Arc<dyn Vault> = Arc::new(MemVault::with_keys("local", [key]));
        let found = list_vault_keys(&[broken, local]).await;
        assert_eq!(found.keys.len(), 1);
        assert_eq!(found.keys[&pkh].vault.name(), "local");
        assert_eq!(found.unlisted.len(), 1);
        assert_eq!(found.unlisted[0].0, "hsm");
        assert!(
            found.unlisted[0].1.contains("connection refused"),
            "{:?}",
            found.unlisted
        );
    }

    #[tokio::test]
    async fn a_key_in_two_vaults_is_served_from_the_first() {
        let key = SecretKey::generate(Curve::Ed25519);
        let pkh = key.public_key().hash();
        let a: Arc<dyn Vault> = Arc::new(MemVault::with_keys("a", [key.clone()]));
        let b: Arc<dyn Vault> = Arc::new(MemVault::with_keys("b", [key]));
        let found = list_vault_keys(&[a, b]).await.keys;
        assert_eq!(found.len(), 1);
        assert_eq!(found[&pkh].vault.name(), "a");
    }
}
