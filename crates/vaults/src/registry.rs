//! The one list of vault drivers. Everything that depends on a driver's name (`serve`,
//! `config check`, `list`, `generate`, `import`, `version`) asks this registry; nothing
//! else matches on driver names.

use crate::deadline::Deadlined;
use crate::error::OpenError;
use crate::password::EnvPasswords;
use async_trait::async_trait;
use signatory_config::DriverSettings;
use signatory_signer::vault::Vault;
use std::sync::Arc;
use std::time::Duration;

/// A vault driver: how to read its settings and open an instance of it.
#[async_trait]
pub trait Driver: Sync {
    /// The name configurations give as `vaults.<name>.driver`.
    fn name(&self) -> &'static str;

    /// Parse `settings` without I/O; errors name the key path to fix. `serve` and
    /// `config check` call this before anything is opened.
    fn check_settings(&self, vault: &str, settings: &DriverSettings) -> Result<(), OpenError>;

    /// What `config check` can verify before the vault is opened, without asking for a
    /// secret (a key file present and private, a library present): a one-line description
    /// of what was checked, or what is wrong. `None`: nothing to check.
    fn preflight(
        &self,
        vault: &str,
        settings: &DriverSettings,
    ) -> Option<Result<String, OpenError>> {
        let _ = (vault, settings);
        None
    }

    /// Open the vault instance `vault`. A backend that cannot be reached gives
    /// [`OpenError::Unavailable`] (the other vaults still serve); wrong settings give the
    /// error that names them.
    async fn open(
        &self,
        vault: &str,
        settings: &DriverSettings,
        passwords: &EnvPasswords,
    ) -> Result<Arc<dyn Vault>, OpenError>;

    /// [`Driver::open`], for a driver that uses vaults opened before it (a sealed key
    /// file is unsealed by the vault it names). Other drivers ignore `opened`.
    async fn open_among(
        &self,
        vault: &str,
        settings: &DriverSettings,
        passwords: &EnvPasswords,
        opened: &[Arc<dyn Vault>],
    ) -> Result<Arc<dyn Vault>, OpenError> {
        let _ = opened;
        self.open(vault, settings, passwords).await
    }

    /// Environment variables holding secrets this vault reads at open (a PIN fallback):
    /// taken out of the environment at start, as `password_env` variables are.
    fn secret_variables(&self, vault: &str, settings: &DriverSettings) -> Vec<String> {
        let _ = (vault, settings);
        Vec::new()
    }

    /// Whether keys that `generate` and `import` add outlive the process (not so for `mem`).
    fn keeps_keys(&self) -> bool {
        true
    }

    /// Make a vault ready for `generate`/`import` before it is opened (the `file` driver
    /// creates an empty key file).
    fn prepare_for_writing(&self, vault: &str, settings: &DriverSettings) -> Result<(), OpenError> {
        let _ = (vault, settings);
        Ok(())
    }

    /// The longest a backend call may take before it fails as a transient error; `None`
    /// for local drivers whose calls cannot hang.
    fn deadline(&self) -> Option<Duration> {
        Some(DEFAULT_DEADLINE)
    }
}

/// Run a driver's blocking `open` (files, terminal prompts, key derivations, a token's
/// library) on the blocking pool.
pub(crate) async fn open_blocking<V: Vault + 'static>(
    vault: &str,
    open: impl FnOnce() -> Result<V, OpenError> + Send + 'static,
) -> Result<Arc<dyn Vault>, OpenError> {
    let opened = tokio::task::spawn_blocking(open)
        .await
        .map_err(|e| OpenError::Internal {
            vault: vault.to_owned(),
            message: e.to_string(),
        })??;
    Ok(Arc::new(opened))
}

/// The deadline of a backend call unless its driver says otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// Every driver of the project, and the cargo feature of `signatory-vaults` that builds it.
pub const ALL_DRIVERS: [(&str, &str); 9] = [
    ("file", "file"),
    ("mem", "mem"),
    ("pkcs11", "pkcs11"),
    ("ledger", "ledger"),
    ("yubihsm", "yubihsm"),
    ("awskms", "awskms"),
    ("azure", "azure"),
    ("cloudkms", "cloudkms"),
    ("hashicorpvault", "hashicorpvault"),
];

/// The drivers in this build.
pub static DRIVERS: &[&dyn Driver] = &[
    &crate::file::FileDriver,
    &crate::mem::MemDriver,
    #[cfg(feature = "pkcs11")]
    &crate::pkcs11::Pkcs11Driver,
    #[cfg(feature = "ledger")]
    &crate::ledger::LedgerDriver,
    #[cfg(feature = "yubihsm")]
    &crate::yubi::YubiHsmDriver,
    #[cfg(feature = "awskms")]
    &crate::awskms::AwsKmsDriver,
    #[cfg(feature = "azure")]
    &crate::azure::AzureDriver,
    #[cfg(feature = "cloudkms")]
    &crate::cloudkms::CloudKmsDriver,
    #[cfg(feature = "hashicorpvault")]
    &crate::transit::TransitDriver,
];

/// The names of the drivers in this build, in registry order.
pub fn driver_names() -> Vec<&'static str> {
    DRIVERS.iter().map(|driver| driver.name()).collect()
}

/// The driver `name` of vault `vault`: an unknown name, or one this build left out (with
/// the feature that builds it), is an error naming the setting.
pub fn driver(vault: &str, name: &str) -> Result<&'static dyn Driver, OpenError> {
    if let Some(driver) = DRIVERS.iter().find(|driver| driver.name() == name) {
        return Ok(*driver);
    }
    match ALL_DRIVERS.iter().find(|(known, _)| *known == name) {
        Some((_, feature)) => Err(OpenError::NotInBuild {
            vault: vault.to_owned(),
            driver: name.to_owned(),
            feature,
        }),
        None => Err(OpenError::UnknownDriver {
            vault: vault.to_owned(),
            driver: name.to_owned(),
            known: driver_names().join(", "),
        }),
    }
}

/// Open vault `vault` of driver `name`, its backend calls bounded by the driver's deadline;
/// `opened` are the vaults already open, which it may use.
pub async fn open_vault(
    vault: &str,
    name: &str,
    settings: &DriverSettings,
    passwords: &EnvPasswords,
    opened: &[Arc<dyn Vault>],
) -> Result<Arc<dyn Vault>, OpenError> {
    let driver = driver(vault, name)?;
    let opened = driver
        .open_among(vault, settings, passwords, opened)
        .await?;
    Ok(match driver.deadline() {
        Some(deadline) => Arc::new(Deadlined::new(opened, deadline)),
        None => opened,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_driver_in_the_build_is_listed_once_with_its_feature() {
        let names = driver_names();
        for name in &names {
            assert_eq!(names.iter().filter(|n| *n == name).count(), 1, "{name}");
            assert!(ALL_DRIVERS.iter().any(|(known, _)| known == name), "{name}");
        }
        assert!(names.contains(&"file") && names.contains(&"mem"));
    }

    /// Run by `scripts/test.sh` in a build without the default features.
    #[cfg(not(feature = "pkcs11"))]
    #[test]
    fn a_driver_left_out_of_the_build_names_its_feature() {
        let e = driver("hsm", "pkcs11").err().unwrap().to_string();
        assert_eq!(
            e,
            "vault `hsm`: `vaults.hsm.driver`: driver `pkcs11` is not in this build; build \
             with the cargo feature `pkcs11` of signatory-vaults (on by default)"
        );
    }

    #[test]
    fn unknown_drivers_are_refused_naming_the_setting() {
        let e = driver("hsm", "nosuch").err().unwrap().to_string();
        assert!(
            e.contains("`vaults.hsm.driver`: unknown driver `nosuch`"),
            "{e}"
        );
        assert!(e.contains("file, mem"), "{e}");
    }
}
