//! The `ledger` driver: keys on a Ledger device running the Tezos Baking app.
//!
//! ```yaml
//! vaults:
//!   ledger:
//!     driver: ledger
//!     config:
//!       id: 3944f7a0                 # optional: the device's short id; first device if absent
//!       keys:                        # derivation/path; `44'/1729'` may be left out
//!         - "bip32-ed25519/0'/0'"
//!         - "secp256k1/44'/1729'/0'/1'"
//!       close_after: 3600s           # optional: release the device after this idle time
//!       transport: tcp://127.0.0.1:9999   # optional: `usb` (default) or Speculos
//! ```
//!
//! The settings are ECAD Signatory's. The device derives the keys: `generate` and `import`
//! are not supported. Every exchange runs on the blocking pool with a 30-second deadline
//! (a human may have to confirm on the device), one at a time (the device serialises
//! anyway, and a SIGN is two commands that must not interleave with another request's).
//! A transport failure drops the device; the next call opens it again.
//!
//! The Baking app keeps its own high watermark and refuses (`0x6985`) what is below it;
//! Signatory's own watermark is checked and made durable before the vault is asked.
//!
//! Tested only against fakes: a transport that replays the exchanges the app's sources and
//! documentation describe (`tests/ledger.rs`), and a fake Speculos TCP port answering from
//! real keys (`signatory_e2e::speculos`, the vault conformance suite); never against a
//! device or the Speculos emulator, neither of which was available.

pub mod apdu;
pub mod transport;

use crate::error::OpenError;
use apdu::{AppVersion, Derivation, HighWatermarks, KeyId, LevelRound, StatusKind};
use async_trait::async_trait;
use serde::Deserialize;
use signatory_signer::vault::{Vault, VaultError, VaultKey};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tezos_crypto::{Curve, PublicKey, PublicKeyHash, Signature, SigningVersion};
use transport::{Connector, Transport, TransportError, TransportKind};

/// ECAD's default idle time before the device is released.
pub const DEFAULT_CLOSE_AFTER: Duration = Duration::from_secs(10);
/// How long one call may take, confirmation on the device included.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The driver's settings (`vaults.<name>.config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSettings {
    /// The device's short id (8 hex digits), or any device.
    pub id: Option<String>,
    pub keys: Vec<KeyId>,
    pub close_after: Duration,
    pub transport: TransportKind,
}

impl LedgerSettings {
    /// Parse the driver's `config` value; errors name `vaults.<vault>.config…`.
    pub fn from_settings(vault: &str, settings: &serde_yaml_ng::Value) -> Result<Self, OpenError> {
        #[derive(Deserialize)]
        #[serde(
            deny_unknown_fields,
            expecting = "a mapping with `keys` and optionally `id`, `close_after`, `transport`"
        )]
        struct Raw {
            #[serde(default)]
            id: Option<serde_yaml_ng::Value>,
            #[serde(default)]
            keys: Option<Vec<String>>,
            #[serde(default)]
            close_after: Option<serde_yaml_ng::Value>,
            #[serde(default)]
            transport: Option<String>,
        }
        let base = format!("vaults.{vault}.config");
        let config_error = |key_path: String, message: String| OpenError::Config {
            vault: vault.to_owned(),
            key_path,
            message,
        };
        if settings.is_null() {
            return Err(config_error(
                base,
                "is missing; give at least `keys: [\"bip32-ed25519/0'/0'\"]`".to_owned(),
            ));
        }
        let raw: Raw = crate::error::parse_settings(vault, settings)?;
        // An all-digit id is a number to YAML; ECAD (Go, yaml.v3) reads it as text.
        let id_text = match raw.id {
            None | Some(serde_yaml_ng::Value::Null) => None,
            Some(serde_yaml_ng::Value::String(s)) => Some(s),
            Some(serde_yaml_ng::Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                return Err(config_error(
                    format!("{base}.id"),
                    format!("{other:?} is not a device id"),
                ))
            }
        };
        let id = match id_text.map(|s| s.trim().to_owned()) {
            None => None,
            Some(s) if s.is_empty() => None,
            Some(s) if s.len() == 8 && s.chars().all(|c| c.is_ascii_hexdigit()) => {
                Some(s.to_ascii_lowercase())
            }
            Some(s) => {
                return Err(config_error(
                    format!("{base}.id"),
                    format!(
                        "`{s}` is not a short device id; give the 8 hex digits ECAD's \
                         `ledger list` prints after the slash (its word ids like \
                         `zesty-koala-usable-kiwi` are not supported here), or leave `id` \
                         out to use the first device"
                    ),
                ))
            }
        };
        let texts = raw.keys.unwrap_or_default();
        if texts.is_empty() {
            return Err(config_error(
                format!("{base}.keys"),
                "is missing or empty; list the keys to use, like `bip32-ed25519/0'/0'`".to_owned(),
            ));
        }
        let mut keys = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let key = KeyId::parse(text)
                .map_err(|message| config_error(format!("{base}.keys[{i}]"), message))?;
            if keys.contains(&key) {
                return Err(config_error(
                    format!("{base}.keys[{i}]"),
                    format!("`{key}` is listed twice"),
                ));
            }
            keys.push(key);
        }
        let close_after = match raw.close_after {
            None | Some(serde_yaml_ng::Value::Null) => DEFAULT_CLOSE_AFTER,
            Some(serde_yaml_ng::Value::String(text)) => {
                match signatory_config::parse_duration(&text) {
                    Ok(d) if d.is_zero() => DEFAULT_CLOSE_AFTER,
                    Ok(d) => d,
                    Err(message) => {
                        return Err(config_error(format!("{base}.close_after"), message))
                    }
                }
            }
            Some(other) => {
                return Err(config_error(
                    format!("{base}.close_after"),
                    format!("{other:?} is not a duration; write it like `3600s` or `1h`"),
                ))
            }
        };
        let transport = TransportKind::parse(raw.transport.as_deref().unwrap_or(""))
            .map_err(|message| config_error(format!("{base}.transport"), message))?;
        Ok(LedgerSettings {
            id,
            keys,
            close_after,
            transport,
        })
    }
}

/// Why a device exchange failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The link to the device failed (unplugged, emulator gone, framing broken).
    #[error("the device link failed: {0}")]
    Transport(#[from] TransportError),
    #[error("no Ledger device found{}", .0.as_deref().map(|id| format!(" with id {id}")).unwrap_or_default())]
    NoDevice(Option<String>),
    /// The app answered a status word other than `0x9000`.
    #[error("the app answered {status:#06x} ({name}) to instruction {ins:#04x}")]
    Status {
        ins: u8,
        status: u16,
        kind: StatusKind,
        name: &'static str,
    },
    #[error(transparent)]
    Decode(#[from] apdu::DecodeError),
}

impl LedgerError {
    fn transient(&self) -> bool {
        matches!(self, LedgerError::Transport(_) | LedgerError::NoDevice(_))
    }

    /// The device as a whole cannot answer now (locked, another app open), whatever key
    /// is asked.
    fn concerns_device(&self) -> bool {
        matches!(
            self,
            LedgerError::Status {
                kind: StatusKind::Locked | StatusKind::WrongApp,
                ..
            }
        )
    }
}

/// An open device and what we learnt when opening it.
#[derive(Debug)]
pub struct Device {
    transport: Box<dyn Transport>,
    version: AppVersion,
    last_used: Instant,
}

impl Device {
    /// Open the first device (of `connector`) whose short id is `id`, or the first one.
    pub fn open(connector: &dyn Connector, id: Option<&str>) -> Result<Device, LedgerError> {
        let mut last_error = None;
        for candidate in connector.candidates()? {
            let attempt = (|| {
                let transport = connector.open(&candidate)?;
                let mut device = Device {
                    transport,
                    version: AppVersion {
                        kind: 0,
                        major: 0,
                        minor: 0,
                        patch: 0,
                    },
                    last_used: Instant::now(),
                };
                let answer = device.exchange(&apdu::version())?;
                device.version = apdu::parse_version(&answer)?;
                // The Tezos Wallet app would answer too, but keeps no watermark and asks
                // for a button press on every signature.
                if !device.version.is_baking() {
                    return Err(LedgerError::Status {
                        ins: apdu::ins::VERSION,
                        status: 0x6e00,
                        kind: StatusKind::WrongApp,
                        name: "the open app is not Tezos Baking",
                    });
                }
                let matches = match id {
                    None => true,
                    Some(id) => device.short_id()? == id,
                };
                Ok::<_, LedgerError>(matches.then_some(device))
            })();
            match attempt {
                Ok(Some(device)) => {
                    tracing::debug!(device = %candidate, version = %device.version, "opened a Ledger");
                    return Ok(device);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(device = %candidate, error = %e, "skipping a device");
                    last_error = Some(e);
                }
            }
        }
        // With one device and no id, say why it could not be used.
        match (id, last_error) {
            (None, Some(e)) => Err(e),
            _ => Err(LedgerError::NoDevice(id.map(str::to_owned))),
        }
    }

    pub fn version(&self) -> AppVersion {
        self.version
    }

    /// One command; an answer other than `0x9000` is an error.
    pub fn exchange(&mut self, command: &[u8]) -> Result<Vec<u8>, LedgerError> {
        let raw = self.transport.exchange(command)?;
        self.last_used = Instant::now();
        let answer = apdu::parse_response(&raw).map_err(|e| TransportError::new(e.to_string()))?;
        if answer.status == apdu::SW_OK {
            return Ok(answer.data);
        }
        let (kind, name) = apdu::status(answer.status);
        Err(LedgerError::Status {
            ins: command.get(1).copied().unwrap_or_default(),
            status: answer.status,
            kind,
            name,
        })
    }

    /// ECAD's short id: the first 4 bytes of the hash of the Ed25519 key `44'/1729'`, hex.
    pub fn short_id(&mut self) -> Result<String, LedgerError> {
        let answer = self.exchange(&apdu::get_root_public_key())?;
        let pk = apdu::parse_public_key(&answer, Derivation::Ed25519)?;
        Ok(pk.hash().hash()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    pub fn public_key(&mut self, key: &KeyId) -> Result<PublicKey, LedgerError> {
        let answer = self.exchange(&apdu::get_public_key(key))?;
        Ok(apdu::parse_public_key(&answer, key.derivation)?)
    }

    /// SIGN `message` (magic byte included); the app hashes it.
    pub fn sign(&mut self, key: &KeyId, message: &[u8]) -> Result<Signature, LedgerError> {
        let mut answer = Vec::new();
        for command in apdu::sign(key, message, self.version.max_data()) {
            answer = self.exchange(&command)?;
        }
        Ok(apdu::parse_signature(&answer, key.derivation)?)
    }

    /// AUTHORIZE_BAKING: make `key` the app's baking key (confirmed on the device).
    pub fn authorize_baking(&mut self, key: &KeyId) -> Result<PublicKey, LedgerError> {
        let answer = self.exchange(&apdu::authorize_baking(key))?;
        Ok(apdu::parse_public_key(&answer, key.derivation)?)
    }

    pub fn setup_baking(
        &mut self,
        key: &KeyId,
        chain_id: [u8; 4],
        main_level: u32,
        test_level: u32,
    ) -> Result<PublicKey, LedgerError> {
        let answer = self.exchange(&apdu::setup(key, chain_id, main_level, test_level))?;
        Ok(apdu::parse_public_key(&answer, key.derivation)?)
    }

    pub fn deauthorize(&mut self) -> Result<(), LedgerError> {
        self.exchange(&apdu::deauthorize()).map(drop)
    }

    pub fn reset(&mut self, level: u32) -> Result<(), LedgerError> {
        self.exchange(&apdu::reset(level)).map(drop)
    }

    pub fn high_watermarks(&mut self) -> Result<HighWatermarks, LedgerError> {
        let answer = self.exchange(&apdu::query_all_hwm())?;
        Ok(apdu::parse_all_hwm(&answer)?)
    }

    pub fn main_high_watermark(&mut self) -> Result<LevelRound, LedgerError> {
        let answer = self.exchange(&apdu::query_main_hwm())?;
        Ok(apdu::parse_main_hwm(&answer)?)
    }
}

// ---------------------------------------------------------------------------------------
// Library functions of `signatory ledger …` (blocking: a human confirms on the device).

/// Which device the CLI talks to.
#[derive(Debug)]
pub struct LedgerTarget {
    connector: Box<dyn Connector>,
    id: Option<String>,
}

impl LedgerTarget {
    /// `transport` as in the `transport` setting; `id` the short id, or the first device.
    pub fn new(transport: &str, id: Option<&str>) -> Result<Self, String> {
        let kind = TransportKind::parse(transport)?;
        Ok(LedgerTarget::with_connector(kind.connector(), id))
    }

    pub fn with_connector(connector: Box<dyn Connector>, id: Option<&str>) -> Self {
        LedgerTarget {
            connector,
            id: id.map(|s| s.trim().to_ascii_lowercase()),
        }
    }

    fn open(&self) -> Result<Device, LedgerError> {
        Device::open(self.connector.as_ref(), self.id.as_deref())
    }
}

/// Authorise `key` for baking on `chain_id` (all zeros: any chain) with the given
/// main and test chain levels; the app asks for a confirmation. Returns the key.
pub fn setup_baking(
    target: &LedgerTarget,
    key: &KeyId,
    chain_id: [u8; 4],
    main_level: u32,
    test_level: u32,
) -> Result<PublicKey, LedgerError> {
    target
        .open()?
        .setup_baking(key, chain_id, main_level, test_level)
}

/// Make `key` the app's baking key without touching its watermarks or chain.
pub fn authorize_baking(target: &LedgerTarget, key: &KeyId) -> Result<PublicKey, LedgerError> {
    target.open()?.authorize_baking(key)
}

/// Forget the authorised baking key.
pub fn deauthorize_baking(target: &LedgerTarget) -> Result<(), LedgerError> {
    target.open()?.deauthorize()
}

/// Set the app's main and test chain levels to `level` (rounds to 0); the app asks for
/// a confirmation.
pub fn set_high_watermark(target: &LedgerTarget, level: u32) -> Result<(), LedgerError> {
    target.open()?.reset(level)
}

/// The app's watermarks and chain id.
pub fn get_high_watermark(target: &LedgerTarget) -> Result<HighWatermarks, LedgerError> {
    target.open()?.high_watermarks()
}

/// A device the CLI found: where, which app, its short id.
#[derive(Debug, Clone)]
pub struct FoundDevice {
    pub path: String,
    pub version: AppVersion,
    pub short_id: String,
}

/// Every device of `transport` that answers, with its short id.
pub fn list_devices(transport: &str) -> Result<Vec<FoundDevice>, LedgerError> {
    let connector = TransportKind::parse(transport)
        .map_err(TransportError::new)?
        .connector();
    let mut found = Vec::new();
    for path in connector.candidates()? {
        let device = Device::open(&OneCandidate(connector.as_ref(), path.clone()), None)
            .and_then(|mut d| Ok((d.version, d.short_id()?)));
        match device {
            Ok((version, short_id)) => found.push(FoundDevice {
                path,
                version,
                short_id,
            }),
            Err(e) => tracing::warn!(device = %path, error = %e, "a device did not answer"),
        }
    }
    Ok(found)
}

#[derive(Debug)]
struct OneCandidate<'a>(&'a dyn Connector, String);

impl Connector for OneCandidate<'_> {
    fn candidates(&self) -> Result<Vec<String>, TransportError> {
        Ok(vec![self.1.clone()])
    }
    fn open(&self, candidate: &str) -> Result<Box<dyn Transport>, TransportError> {
        self.0.open(candidate)
    }
}

// ---------------------------------------------------------------------------------------
// The vault

/// Keys on a Ledger device.
pub struct LedgerVault {
    inner: Arc<Inner>,
    deadline: Duration,
}

struct Inner {
    name: String,
    connector: Box<dyn Connector>,
    id: Option<String>,
    keys: Vec<KeyId>,
    close_after: Duration,
    device: parking_lot::Mutex<Option<Device>>,
    listed: parking_lot::Mutex<HashMap<PublicKeyHash, KeyId>>,
    /// The last call's temporary failure, until a call succeeds: what `health` reports,
    /// so health polls never hold the device open.
    last_failure: parking_lot::Mutex<Option<VaultError>>,
}

impl fmt::Debug for LedgerVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerVault")
            .field("name", &self.inner.name)
            .field("id", &self.inner.id)
            .field("keys", &self.inner.keys)
            .field("close_after", &self.inner.close_after)
            .finish()
    }
}

impl LedgerVault {
    /// The vault of `settings`, with the transport they name. Nothing is opened yet.
    pub fn open(name: &str, settings: &LedgerSettings) -> Self {
        LedgerVault::with_connector(name, settings, settings.transport.connector())
    }

    /// The vault of `settings`, talking through `connector` (tests pass a fake one).
    pub fn with_connector(
        name: &str,
        settings: &LedgerSettings,
        connector: Box<dyn Connector>,
    ) -> Self {
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            connector,
            id: settings.id.clone(),
            keys: settings.keys.clone(),
            close_after: settings.close_after,
            device: parking_lot::Mutex::new(None),
            listed: parking_lot::Mutex::new(HashMap::new()),
            last_failure: parking_lot::Mutex::new(None),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(close_when_idle(Arc::downgrade(&inner)));
        }
        LedgerVault {
            inner,
            deadline: DEADLINE,
        }
    }

    /// This vault with another deadline per call than [`DEADLINE`].
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Whether a device is open now (it is released after `close_after` of idleness).
    pub fn is_device_open(&self) -> bool {
        self.inner.device.lock().is_some()
    }

    /// Run `f` with the device, opened if needed, on the blocking pool, within the
    /// deadline; a link failure drops the device so the next call opens it afresh.
    async fn with_device<T, F>(&self, what: &'static str, f: F) -> Result<T, VaultError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Device) -> Result<T, LedgerError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || {
            let mut slot = inner.device.lock();
            let device = match slot.as_mut() {
                Some(device) => device,
                None => slot.insert(Device::open(inner.connector.as_ref(), inner.id.as_deref())?),
            };
            let result = f(device);
            if let Err(e) = &result {
                if e.transient() || e.concerns_device() {
                    *slot = None;
                }
            }
            result
        });
        let outcome = match tokio::time::timeout(self.deadline, task).await {
            Ok(Ok(result)) => result.map_err(|e| self.error(what, &e)),
            Ok(Err(join)) => Err(VaultError::backend(
                self.inner.name.clone(),
                false,
                format!("{what}: the device task failed: {join}"),
            )),
            Err(_) => Err(VaultError::backend(
                self.inner.name.clone(),
                true,
                format!(
                    "{what}: no answer from the Ledger within {} s (waiting for a \
                     confirmation on the device?)",
                    self.deadline.as_secs()
                ),
            )),
        };
        let mut last = self.inner.last_failure.lock();
        match &outcome {
            Ok(_) => *last = None,
            Err(e) if e.is_transient() || matches!(e, VaultError::Locked { .. }) => {
                *last = Some(e.clone());
            }
            Err(_) => {}
        }
        outcome
    }

    fn error(&self, what: &str, e: &LedgerError) -> VaultError {
        let vault = self.inner.name.clone();
        match e {
            LedgerError::Status {
                kind: StatusKind::Locked,
                ..
            } => VaultError::Locked {
                vault,
                key: what.to_owned(),
                hint: format!("{e}: unlock the Ledger with its PIN and open the Tezos Baking app"),
            },
            LedgerError::Status {
                kind: StatusKind::WrongApp,
                ..
            } => VaultError::backend(
                vault,
                false,
                format!("{what}: {e}: open the Tezos Baking app on the Ledger"),
            ),
            LedgerError::Status {
                kind: StatusKind::Rejected,
                ..
            } => VaultError::backend(
                vault,
                false,
                format!(
                    "{what}: {e}: refused on the device or by the app's own checks (its \
                     high watermark, the authorised baking key)"
                ),
            ),
            other => VaultError::backend(vault, other.transient(), format!("{what}: {other}")),
        }
    }

    fn find(&self, pkh: &PublicKeyHash) -> Option<KeyId> {
        self.inner.listed.lock().get(pkh).cloned()
    }
}

/// Drop the device once it has been idle for `close_after`, so other programs (ECAD's
/// CLI, Ledger Live) can open it; ends with the vault.
async fn close_when_idle(inner: Weak<Inner>) {
    let tick = match inner.upgrade() {
        Some(inner) => {
            (inner.close_after / 4).clamp(Duration::from_millis(20), Duration::from_secs(30))
        }
        None => return,
    };
    loop {
        tokio::time::sleep(tick).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        // A busy device is in use, not idle: try_lock never waits on an exchange.
        let released = match inner.device.try_lock() {
            Some(mut slot)
                if slot
                    .as_ref()
                    .is_some_and(|d| d.last_used.elapsed() >= inner.close_after) =>
            {
                *slot = None;
                true
            }
            _ => false,
        };
        if released {
            tracing::debug!(vault = %inner.name, "released the idle Ledger");
        }
    }
}

#[async_trait]
impl Vault for LedgerVault {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn driver(&self) -> &'static str {
        "ledger"
    }

    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        let keys = self.inner.keys.clone();
        let answers = self
            .with_device("listing keys", move |device| {
                let mut answers = Vec::with_capacity(keys.len());
                for key in keys {
                    match device.public_key(&key) {
                        Ok(pk) => answers.push((key, Ok(pk))),
                        // The link is gone, or the device is locked: the other keys
                        // cannot be asked either.
                        Err(e) if e.transient() || e.concerns_device() => return Err(e),
                        Err(e) => answers.push((key, Err(e))),
                    }
                }
                Ok(answers)
            })
            .await?;
        let mut listed = Vec::with_capacity(answers.len());
        let mut known = HashMap::with_capacity(answers.len());
        for (key, answer) in answers {
            match answer {
                Ok(pk) => {
                    known.insert(pk.hash(), key.clone());
                    listed.push(
                        VaultKey::new(pk, self.inner.name.clone()).with_label(key.to_string()),
                    );
                }
                Err(e) => {
                    tracing::warn!(vault = %self.inner.name, key = %key, error = %e, "the Ledger did not give this key; skipping it");
                }
            }
        }
        *self.inner.listed.lock() = known;
        Ok(listed)
    }

    async fn sign(
        &self,
        pkh: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        let _ = version; // tz1–tz3 sign the same way in every version.
        let key = match self.find(pkh) {
            Some(key) => key,
            None => {
                self.list_keys().await?;
                self.find(pkh).ok_or_else(|| VaultError::KeyNotFound {
                    vault: self.inner.name.clone(),
                    pkh: *pkh,
                })?
            }
        };
        let message = message.to_vec();
        self.with_device("signing", move |device| device.sign(&key, &message))
            .await
    }

    /// The last call's temporary failure (device gone, locked, no answer) until a call
    /// succeeds. The device is not asked: a poll must not keep it open past `close_after`.
    async fn health(&self) -> Result<(), VaultError> {
        match self.inner.last_failure.lock().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn signs_deterministically(&self, curve: Curve) -> bool {
        // Ed25519 is deterministic by construction. The 2.5.1 sources ask for RFC 6979
        // ECDSA, but older app versions were not checked, so ECDSA stays `false`.
        curve == Curve::Ed25519
    }
}

/// Open a `ledger` vault from its settings (nothing is sent to the device yet).
pub fn from_settings(
    name: &str,
    settings: &serde_yaml_ng::Value,
) -> Result<LedgerVault, OpenError> {
    let settings = LedgerSettings::from_settings(name, settings)?;
    Ok(LedgerVault::open(name, &settings))
}

/// The `ledger` driver of the registry.
pub(crate) struct LedgerDriver;

#[async_trait::async_trait]
impl crate::registry::Driver for LedgerDriver {
    fn name(&self) -> &'static str {
        "ledger"
    }

    fn check_settings(
        &self,
        vault: &str,
        settings: &serde_yaml_ng::Value,
    ) -> Result<(), OpenError> {
        LedgerSettings::from_settings(vault, settings).map(drop)
    }

    async fn open(
        &self,
        vault: &str,
        settings: &serde_yaml_ng::Value,
        _passwords: &crate::password::EnvPasswords,
    ) -> Result<std::sync::Arc<dyn Vault>, OpenError> {
        Ok(std::sync::Arc::new(from_settings(vault, settings)?))
    }

    /// Its own, longer deadline ([`DEADLINE`]): a person may have to confirm on the device.
    fn deadline(&self) -> Option<Duration> {
        None
    }
}
