//! Why a command failed. Every message names what to look at (a file, a vault, a key) and
//! what to do; none contains key material or passwords.

use signatory_config::ConfigError;
use signatory_signer::store::StoreError;
use signatory_signer::vault::VaultError;
use signatory_stores::interchange::ImportError;
use signatory_vaults::OpenError;
use std::path::PathBuf;
use tezos_crypto::{CryptoError, PublicKeyHash};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error(
        "no configuration file at {} (the default): name one with `-c FILE` or \
         SIGNATORY_CONFIG=FILE (examples/signatory.yaml in the source tree is a working example)",
        path.display()
    )]
    NoDefaultConfig { path: PathBuf },
    #[error("{0}")]
    VaultOpen(#[from] OpenError),
    /// A vault's settings are wrong: the message names the configuration file too.
    #[error("{config}: {source}")]
    VaultSettings {
        config: String,
        source: Box<OpenError>,
    },
    #[error("{0}")]
    Vault(#[from] VaultError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Import(#[from] ImportError),
    /// Opening the watermark store failed at start; says how to create it when missing.
    #[error("cannot open the watermark store: {source}{hint}")]
    StoreAtStart {
        source: StoreError,
        /// The exact command to run, when the store does not exist yet.
        hint: String,
    },
    /// `watermark init` where another signer's watermarks would be ignored.
    #[error(
        "{} holds another signer's watermarks ({found}); an empty store would let these keys \
         sign again below them\n  import them instead (this creates the store): {import}\n  \
         or, only if these keys never signed with that signer: {init_empty}",
        base_dir.display()
    )]
    ForeignWatermarks {
        base_dir: PathBuf,
        found: String,
        import: String,
        init_empty: String,
    },
    #[error(
        "key {pkh} is enabled in {config} (under `tezos:`) but no vault holds it (vaults \
         searched: {vaults}); add its secret key to a vault, or remove it from `tezos:`"
    )]
    KeyNotInVault {
        pkh: PublicKeyHash,
        config: String,
        vaults: String,
    },
    #[error(
        "{config} configures no vault: no key could sign; add one under `vaults:` (e.g. \
         `driver: file`)"
    )]
    NoVaults { config: String },
    #[error("no vault named `{name}` in {config}; configured vaults: {known}")]
    UnknownVault {
        name: String,
        config: String,
        known: String,
    },
    #[error(
        "unknown watermark driver `{driver}` in {config} (`watermark.driver`); this build has: \
         {known}"
    )]
    UnknownStoreDriver {
        driver: String,
        config: String,
        known: String,
    },
    #[error(
        "{config}: `watermark.config`: the `{driver}` watermark driver takes no settings{why}"
    )]
    StoreSettings {
        driver: String,
        config: String,
        why: &'static str,
    },
    #[error(
        "the configured watermark driver is `{driver}`, which keeps nothing on disk; watermark \
         commands work on the `file` store"
    )]
    NotAFileStore { driver: String },
    #[error("the secret key is not valid: {0}")]
    BadSecretKey(CryptoError),
    #[error("{config} is valid, but `signatory serve` would not start with it:\n  - {problems}")]
    NotReady { config: String, problems: String },
    #[error("{0}")]
    Usage(String),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Server(String),
}

impl CliError {
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| CliError::Io {
            action,
            path,
            source,
        }
    }

    /// Opening a vault of the configuration `origin` failed: errors in its settings name the
    /// configuration file, the others (files, passwords, devices) speak for themselves.
    pub fn vault_open(origin: &str) -> impl FnOnce(OpenError) -> CliError + '_ {
        move |e| match e {
            OpenError::UnknownDriver { .. } | OpenError::Config { .. } => CliError::VaultSettings {
                config: origin.to_string(),
                source: Box::new(e),
            },
            e => CliError::VaultOpen(e),
        }
    }
}
