//! Signatory's configuration: ECAD Signatory's YAML schema, so existing files load as they
//! are, parsed strictly and validated into plain typed data.
//!
//! ```yaml
//! base_dir: /var/lib/signatory          # default
//! server:
//!   address: :6732                      # default; `:port` means every interface
//!   utility_address: :9583              # default
//!   authorized_keys: [edpk…]            # optional: clients must authenticate
//!   allow_list_known_keys: false        # default; `GET /known_keys` answers 403
//!   limits:                             # optional; each one has a default
//!     max_body_bytes: 262144
//!     max_connections: 512
//!     request_timeout: 30s              # Go durations: 30s, 1m30s, 500ms
//!     header_read_timeout: 10s
//!     write_timeout: 10s
//! vaults:
//!   local:
//!     driver: file
//!     config: { file: /etc/signatory/secret.json }
//! watermark:
//!   driver: file                        # default; or `mem`
//! tezos:
//!   tz1…:                               # no value: block, preattestation, attestation
//!   tz1…:
//!     log_payloads: true
//!     allowed_chains: [NetXdQprcVkpaWU]
//!     allow:
//!       block:
//!       generic: [transaction, reveal, stake]
//! ```
//!
//! `${VAR}`, `$VAR` and `${VAR:-default}` in strings are expanded from the environment after
//! parsing, so a value is always text inside one string and never YAML (a newline or a `#`
//! in it changes no other setting); an unset variable is an error. An expanded value is a
//! string: numeric settings also accept digits written as a string. Error messages show a
//! value taken from the environment as it was written (`${VAR}`), not as expanded. Unknown keys, wrong types and bad values fail with the
//! file, the key path and what was expected. Deprecated names (`endorsement`,
//! `allowed_operations` …) still work and add a [`ConfigWarning`] for the caller to log.
//! Loading reads the one file and nothing else: drivers check their own settings.
#![forbid(unsafe_code)]

mod address;
mod duration;
mod env;
mod error;
pub mod kinds;
mod raw;
mod scalars;
mod validate;

pub use address::{ListenAddress, ListenHost};
pub use error::{ConfigError, ConfigWarning};

/// Parse a duration as ECAD Signatory's settings write it (`30s`, `1m30s`, `500ms`, `2h`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    duration::parse(text)
}

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tezos_crypto::{ChainId, PublicKey, PublicKeyHash};

/// Untyped settings of a driver, parsed by the driver itself.
pub use serde_yaml_ng::Value as DriverSettings;

/// ECAD Signatory's default data directory.
pub const DEFAULT_BASE_DIR: &str = "/var/lib/signatory";
/// Default API listen address.
pub const DEFAULT_ADDRESS: &str = ":6732";
/// Default utility (metrics, health) listen address.
pub const DEFAULT_UTILITY_ADDRESS: &str = ":9583";
/// Default watermark driver.
pub const DEFAULT_WATERMARK_DRIVER: &str = "file";

/// A loaded, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the configuration came from (a path, or the name given to [`Config::parse`]).
    pub origin: String,
    /// Data directory (file watermarks live under it).
    pub base_dir: PathBuf,
    pub server: ServerConfig,
    /// Vault instances by name.
    pub vaults: BTreeMap<String, VaultConfig>,
    pub watermark: WatermarkConfig,
    /// The keys this signer serves and what each may sign.
    pub tezos: BTreeMap<PublicKeyHash, KeyPolicyConfig>,
    /// `tezos_protocol`: the protocol whose layouts requests are decoded with (default 025).
    pub tezos_protocol: tezos_encoding::Protocol,
    /// Accepted but worth logging: deprecated names, policies that allow nothing, …
    pub warnings: Vec<ConfigWarning>,
}

/// The HTTP listeners and client authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub address: ListenAddress,
    pub utility_address: ListenAddress,
    /// When set, every signing request must be authenticated by one of these keys.
    pub authorized_keys: Option<Vec<PublicKey>>,
    /// Serve the API under this prefix (`/signer`); empty for the root.
    pub base_path: String,
    /// Whether `GET /known_keys` lists the keys (off unless asked for, as in Octez).
    pub allow_list_known_keys: bool,
    /// `server.allowed_origins`: web origins whose pages may call the API (none by default).
    pub allowed_origins: Vec<String>,
    pub limits: ServerLimits,
    /// `server.tcp_address`: Octez's socket protocol over TCP (`None`: off).
    pub tcp_address: Option<ListenAddress>,
    /// `server.unix_socket`: Octez's socket protocol on this Unix socket path (`None`: off).
    pub unix_socket: Option<PathBuf>,
}

/// `server.limits`: `None` leaves the server's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerLimits {
    /// Largest request body accepted.
    pub max_body_bytes: Option<usize>,
    /// Connections served at once by the signing listeners together, and by the utility
    /// listener apart; more wait to be accepted.
    pub max_connections: Option<usize>,
    /// Time to read a request's body and answer it.
    pub request_timeout: Option<Duration>,
    /// Time a client has to send a request's header (also how long an idle connection stays
    /// open).
    pub header_read_timeout: Option<Duration>,
    /// Longest a write to a client that stopped reading may stay blocked.
    pub write_timeout: Option<Duration>,
}

impl ServerConfig {
    /// The hashes of [`ServerConfig::authorized_keys`] (what `GET /authorized_keys` lists).
    pub fn authorized_key_hashes(&self) -> Option<BTreeSet<PublicKeyHash>> {
        hashes(&self.authorized_keys)
    }
}

/// One vault instance: a driver and its own settings.
#[derive(Clone, PartialEq)]
pub struct VaultConfig {
    /// The instance name (the key under `vaults`).
    pub name: String,
    pub driver: String,
    /// The `config` value as written (null when absent), for the driver to parse.
    pub config: DriverSettings,
}

/// The watermark backend: a driver and its own settings.
#[derive(Clone, PartialEq)]
pub struct WatermarkConfig {
    pub driver: String,
    /// The `config` value as written (null when absent), for the driver to parse.
    pub config: DriverSettings,
}

impl Default for WatermarkConfig {
    fn default() -> Self {
        WatermarkConfig {
            driver: DEFAULT_WATERMARK_DRIVER.to_owned(),
            config: DriverSettings::Null,
        }
    }
}

/// What one key may sign: the validated form of a `tezos.<pkh>` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicyConfig {
    /// Request kinds, current names only (see [`kinds::REQUEST_KINDS`]).
    pub allowed_requests: BTreeSet<String>,
    /// Operation kinds a generic request may contain, current names and pseudo-kinds
    /// (see [`kinds::OPERATION_KINDS`], [`kinds::PSEUDO_OPERATION_KINDS`]).
    pub allowed_operations: BTreeSet<String>,
    /// When set, requests that carry a chain id must carry one of these.
    pub allowed_chains: Option<BTreeSet<ChainId>>,
    /// When set, requests for this key must be authenticated by one of these keys.
    pub authorized_keys: Option<Vec<PublicKey>>,
    /// Only ever true for tz4 keys.
    pub allow_proof_of_possession: bool,
    pub log_payloads: bool,
}

impl KeyPolicyConfig {
    /// The policy of a key listed with no value: block, preattestation and attestation.
    pub fn listed_without_policy() -> Self {
        KeyPolicyConfig {
            allowed_requests: kinds::DEFAULT_REQUEST_KINDS
                .iter()
                .map(|kind| (*kind).to_owned())
                .collect(),
            ..KeyPolicyConfig::allow_nothing()
        }
    }

    /// A policy that allows nothing (an entry whose settings name no request kind).
    pub fn allow_nothing() -> Self {
        KeyPolicyConfig {
            allowed_requests: BTreeSet::new(),
            allowed_operations: BTreeSet::new(),
            allowed_chains: None,
            authorized_keys: None,
            allow_proof_of_possession: false,
            log_payloads: false,
        }
    }

    /// The hashes of [`KeyPolicyConfig::authorized_keys`]: the clients allowed for this key.
    pub fn authorized_key_hashes(&self) -> Option<BTreeSet<PublicKeyHash>> {
        hashes(&self.authorized_keys)
    }
}

fn hashes(keys: &Option<Vec<PublicKey>>) -> Option<BTreeSet<PublicKeyHash>> {
    keys.as_ref()
        .map(|keys| keys.iter().map(PublicKey::hash).collect())
}

impl Config {
    /// Read and validate the file at `path`, expanding variables from the process
    /// environment.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, &|name| std::env::var(name).ok())
    }

    /// [`Config::load`] with variables looked up by `lookup`.
    pub fn load_with_env(
        path: impl AsRef<Path>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), lookup)
    }

    /// Validate configuration `text`; `origin` names it in errors (usually the path).
    pub fn parse(
        text: &str,
        origin: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (raw, sources) = validate::parse_raw(text, origin, lookup)?;
        let mut config = validate::validate(raw, origin).map_err(|e| e.redacted(&sources))?;
        for warning in &mut config.warnings {
            warning.message = env::redact(&warning.message, &sources);
        }
        Ok(config)
    }

    /// The vault instances' names, for messages.
    pub fn vault_names(&self) -> Vec<&str> {
        self.vaults.keys().map(String::as_str).collect()
    }
}

/// Names the settings a driver was given without their values, which may be secrets.
struct SettingsOutline<'a>(&'a DriverSettings);

impl fmt::Debug for SettingsOutline<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            DriverSettings::Null => f.write_str("none"),
            DriverSettings::Mapping(map) => {
                let keys: Vec<String> = map
                    .keys()
                    .map(|k| match k {
                        DriverSettings::String(s) => s.clone(),
                        _ => "?".to_owned(),
                    })
                    .collect();
                write!(f, "{{{}: REDACTED}}", keys.join(", "))
            }
            _ => f.write_str("REDACTED"),
        }
    }
}

impl fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultConfig")
            .field("name", &self.name)
            .field("driver", &self.driver)
            .field("config", &SettingsOutline(&self.config))
            .finish()
    }
}

impl fmt::Debug for WatermarkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatermarkConfig")
            .field("driver", &self.driver)
            .field("config", &SettingsOutline(&self.config))
            .finish()
    }
}
