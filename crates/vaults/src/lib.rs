//! Signing backends ("vaults") and the registry that opens them from the configuration.
//!
//! - `file`: keys from an octez-client / ECAD Signatory secret key file, encrypted keys
//!   included ([`FileVault`]);
//! - `mem`: keys given inline or generated at start, in memory only, for tests ([`MemVault`]);
//! - `ledger` (feature `ledger`): keys on a Ledger device running the Tezos Baking app
//!   ([`ledger::LedgerVault`]).
//!
//! [`open`] builds an `Arc<dyn Vault>` from a configured instance; an unknown driver or bad
//! settings fail with the instance name and the key path to fix.
#![forbid(unsafe_code)]

mod error;
mod file;
mod keyring;
#[cfg(feature = "ledger")]
pub mod ledger;
mod mem;
mod password;
mod private_file;
mod secret_file;

pub use error::OpenError;
pub use file::{FileVault, FileVaultOptions};
pub use mem::{parse_curve, MemVault};
pub use password::{EnvPasswords, PasswordSource};

use signatory_config::{DriverSettings, VaultConfig};
use signatory_signer::vault::Vault;
use std::sync::Arc;

/// The drivers this build can open.
pub const DRIVERS: &[&str] = &[
    "file",
    "mem",
    #[cfg(feature = "ledger")]
    "ledger",
];

/// Open the vault instance `name` of `driver` with its `settings` (the `config` value).
///
/// Opening may read files, ask for a password on the terminal and derive keys from
/// passwords, so it runs on the blocking pool.
pub async fn open(
    name: &str,
    driver: &str,
    settings: &DriverSettings,
) -> Result<Arc<dyn Vault>, OpenError> {
    open_with_passwords(name, driver, settings, &EnvPasswords::default()).await
}

/// [`open`], with the passwords [`EnvPasswords::take`] took from the environment.
pub async fn open_with_passwords(
    name: &str,
    driver: &str,
    settings: &DriverSettings,
    passwords: &EnvPasswords,
) -> Result<Arc<dyn Vault>, OpenError> {
    match driver {
        "file" => {
            let mut options = FileVaultOptions::from_settings(name, settings)?;
            passwords.apply(&mut options);
            let owned_name = name.to_owned();
            let vault = tokio::task::spawn_blocking(move || FileVault::open(&owned_name, &options))
                .await
                .map_err(|e| OpenError::Internal {
                    vault: name.to_owned(),
                    message: e.to_string(),
                })??;
            Ok(Arc::new(vault))
        }
        "mem" => Ok(Arc::new(MemVault::from_settings(name, settings)?)),
        #[cfg(feature = "ledger")]
        "ledger" => Ok(Arc::new(ledger::from_settings(name, settings)?)),
        other => Err(OpenError::UnknownDriver {
            vault: name.to_owned(),
            driver: other.to_owned(),
            known: DRIVERS.join(", "),
        }),
    }
}

/// [`open`] for a configured instance.
pub async fn open_configured(config: &VaultConfig) -> Result<Arc<dyn Vault>, OpenError> {
    open(&config.name, &config.driver, &config.config).await
}

/// [`open_with_passwords`] for a configured instance.
pub async fn open_configured_with(
    config: &VaultConfig,
    passwords: &EnvPasswords,
) -> Result<Arc<dyn Vault>, OpenError> {
    open_with_passwords(&config.name, &config.driver, &config.config, passwords).await
}
