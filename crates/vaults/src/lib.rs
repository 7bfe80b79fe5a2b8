//! Signing backends ("vaults") and the registry that opens them from the configuration.
//!
//! - `file`: keys from an octez-client / ECAD Signatory secret key file, encrypted keys
//!   included ([`FileVault`]);
//! - `mem`: keys given inline or generated at start, in memory only, for tests ([`MemVault`]);
//! - `pkcs11`: keys in a PKCS#11 token (HSMs, SoftHSM2), feature `pkcs11`.
//! - `ledger` (feature `ledger`): keys on a Ledger device running the Tezos Baking app
//!   ([`ledger::LedgerVault`]).
//! - `yubihsm` (feature `yubihsm`): keys in a YubiHSM 2 through yubihsm-connector
//!   ([`YubiHsmVault`]).
//! - `awskms` (feature `awskms`): tz2 and tz3 keys in AWS KMS, which also seals with KMS
//!   Encrypt/Decrypt.
//! - `azure` (feature `azure`): EC keys in Azure Key Vault or Managed HSM over its REST API
//!   ([`azure::AzureVault`]).
//! - `cloudkms` (feature `cloudkms`): keys in a Google Cloud KMS key ring, over its REST API.
//! - `hashicorpvault` (feature `hashicorpvault`): keys in a HashiCorp Vault or OpenBao
//!   transit engine over its HTTP API ([`TransitVault`]).
//!
//! [`registry`] is the one list of drivers; [`open`] builds an `Arc<dyn Vault>` from a
//! configured instance through it; an unknown driver or bad settings fail with the
//! instance name and the key path to fix.
#![forbid(unsafe_code)]

#[cfg(feature = "awskms")]
mod awskms;
#[cfg(feature = "azure")]
pub mod azure;
#[cfg(feature = "cloudkms")]
mod cloudkms;
mod deadline;
mod error;
mod file;
mod keyring;
#[cfg(feature = "ledger")]
pub mod ledger;
mod mem;
#[cfg(feature = "net")]
// The HTTP client half serves the reqwest-based drivers; a build whose only network driver
// is `awskms` (the AWS SDK's own client) uses the retries alone.
#[allow(dead_code)]
mod net;
mod password;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod private_file;
pub mod registry;
mod sealed;
mod secret_file;
#[cfg(feature = "hashicorpvault")]
mod transit;
#[cfg(feature = "yubihsm")]
mod yubi;

pub use error::OpenError;
pub use file::{seal_key_file, FileVault, FileVaultOptions};
pub use mem::{parse_curve, MemVault};
pub use password::{EnvPasswords, PasswordSource};
pub use registry::{driver, driver_names, Driver, DRIVERS};
pub use sealed::SealedBy;
#[cfg(feature = "hashicorpvault")]
pub use transit::{TransitSettings, TransitVault};
#[cfg(feature = "yubihsm")]
pub use yubi::{YubiHsmOptions, YubiHsmVault};

use signatory_config::{DriverSettings, VaultConfig};
use signatory_signer::vault::Vault;
use std::sync::Arc;

/// Open the vault instance `name` of `driver` with its `settings` (the `config` value).
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
    registry::open_vault(name, driver, settings, passwords, &[]).await
}

/// [`open`] for a configured instance.
pub async fn open_configured(config: &VaultConfig) -> Result<Arc<dyn Vault>, OpenError> {
    open(&config.name, &config.driver, &config.config).await
}

/// [`open_configured_with`], with the vaults already open that this one may use (the
/// vault that unseals a sealed key file).
pub async fn open_configured_among(
    config: &VaultConfig,
    passwords: &EnvPasswords,
    opened: &[Arc<dyn Vault>],
) -> Result<Arc<dyn Vault>, OpenError> {
    registry::open_vault(
        &config.name,
        &config.driver,
        &config.config,
        passwords,
        opened,
    )
    .await
}

/// [`open_with_passwords`] for a configured instance.
pub async fn open_configured_with(
    config: &VaultConfig,
    passwords: &EnvPasswords,
) -> Result<Arc<dyn Vault>, OpenError> {
    open_with_passwords(&config.name, &config.driver, &config.config, passwords).await
}
