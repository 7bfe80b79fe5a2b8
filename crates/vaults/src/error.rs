//! Why a vault could not be opened. Messages say what to fix; they never contain key
//! material or passwords.

use std::path::PathBuf;
use std::sync::Arc;
use tezos_crypto::CryptoError;

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("vault `{vault}`: `vaults.{vault}.driver`: unknown driver `{driver}`; this build has: {known}")]
    UnknownDriver {
        vault: String,
        driver: String,
        known: String,
    },
    #[error(
        "vault `{vault}`: `vaults.{vault}.driver`: driver `{driver}` is not in this build; \
         build with the cargo feature `{feature}` of signatory-vaults (on by default)"
    )]
    NotInBuild {
        vault: String,
        driver: String,
        feature: &'static str,
    },
    /// The backend cannot be reached or refused the session (library missing at run time,
    /// token absent, connection refused): the vault is down, the other vaults still serve.
    #[error("vault `{vault}` is unavailable: {message}")]
    Unavailable {
        vault: String,
        message: String,
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// The vault needs vault `needs` open first (its key file is sealed by it): it is
    /// unavailable until then.
    #[error("vault `{vault}` is unavailable: its key file is sealed by vault `{needs}`, which is not open")]
    NeedsVault { vault: String, needs: String },
    /// The driver's settings are wrong; `key_path` is where in the configuration.
    #[error("vault `{vault}`: `{key_path}`: {message}")]
    Config {
        vault: String,
        key_path: String,
        message: String,
    },
    #[error("vault `{vault}`: cannot {action} {}: {source}", path.display())]
    Io {
        vault: String,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error(
        "vault `{vault}`: {} is accessible by group or others (mode {mode:03o}); secrets must \
         be private to the signer's user: run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Permissions {
        vault: String,
        path: PathBuf,
        mode: u32,
    },
    #[error("vault `{vault}`: {} is not a secret key list: {message}", path.display())]
    KeyFile {
        vault: String,
        path: PathBuf,
        message: String,
    },
    #[error("vault `{vault}`: key `{label}` in {}: {source}", path.display())]
    Key {
        vault: String,
        path: PathBuf,
        label: String,
        #[source]
        source: CryptoError,
    },
    #[error(
        "vault `{vault}`: wrong password for key `{label}` in {} (or the encrypted key is damaged)",
        path.display()
    )]
    BadPassword {
        vault: String,
        path: PathBuf,
        label: String,
    },
    #[error("vault `{vault}`: key `{label}` is encrypted and no password is available: {hint}")]
    Locked {
        vault: String,
        label: String,
        hint: String,
    },
    /// The configured password source could not be read.
    #[error("vault `{vault}`: {message}")]
    Password { vault: String, message: String },
    #[error("vault `{vault}`: opening failed: {message}")]
    Internal { vault: String, message: String },
}

impl OpenError {
    /// The vault this error is about.
    pub fn vault(&self) -> &str {
        match self {
            OpenError::UnknownDriver { vault, .. }
            | OpenError::NotInBuild { vault, .. }
            | OpenError::Unavailable { vault, .. }
            | OpenError::NeedsVault { vault, .. }
            | OpenError::Config { vault, .. }
            | OpenError::Io { vault, .. }
            | OpenError::Permissions { vault, .. }
            | OpenError::KeyFile { vault, .. }
            | OpenError::Key { vault, .. }
            | OpenError::BadPassword { vault, .. }
            | OpenError::Locked { vault, .. }
            | OpenError::Password { vault, .. }
            | OpenError::Internal { vault, .. } => vault,
        }
    }

    /// Whether the vault is down rather than misconfigured: `serve` starts without it.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            OpenError::Unavailable { .. } | OpenError::NeedsVault { .. }
        )
    }
}

/// Deserialize the `config` value of vault `vault` into a driver's settings; an error names
/// the key to fix (`vaults.<vault>.config.<path>`) and serde's reason, which names fields
/// and types, not values.
pub(crate) fn parse_settings<T: serde::de::DeserializeOwned>(
    vault: &str,
    settings: &signatory_config::DriverSettings,
) -> Result<T, OpenError> {
    serde_path_to_error::deserialize(settings.clone()).map_err(|e| {
        let at = e.path().to_string();
        let base = format!("vaults.{vault}.config");
        OpenError::Config {
            vault: vault.to_owned(),
            key_path: if at == "." {
                base
            } else {
                format!("{base}.{at}")
            },
            message: e.into_inner().to_string(),
        }
    })
}
