//! The `yubihsm` driver: keys inside a YubiHSM 2, reached through `yubihsm-connector`'s
//! HTTP API. The settings are ECAD Signatory's:
//!
//! ```yaml
//! vaults:
//!   hsm:
//!     driver: yubihsm
//!     config:
//!       address: localhost:12345     # host:port of yubihsm-connector (YUBIHSM_CONNECT_ADDRESS)
//!       password: password           # the authentication key's password (YUBIHSM_PASSWORD)
//!       auth_key_id: 1               # the authentication key's object id (YUBIHSM_AUTH_KEY_ID)
//!       key_import_domains: 1        # domain bitmask for generated and imported keys
//!                                    # (YUBIHSM_KEY_IMPORT_DOMAINS; default 1: domain 1)
//! ```
//!
//! As in ECAD Signatory, a setting that is absent (or empty, or 0) is taken from its
//! environment variable. The keys are every asymmetric key object on the device with an
//! algorithm Tezos can use (Ed25519 → tz1, EC secp256k1 → tz2, EC P-256 → tz3) and the
//! matching sign capability; any other object is skipped with a warning. tz4 (BLS) keys
//! cannot live in a YubiHSM.
//!
//! Every call to the device runs on the blocking pool (the `yubihsm` client is blocking)
//! under a deadline of [`CALL_DEADLINE`]. A session the device or the connection lost is
//! opened again and the call retried once; a wrong password is never retried.

use crate::error::OpenError;
use crate::password::EnvPasswords;
use crate::registry::Driver;
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use signatory_config::DriverSettings;
use signatory_signer::vault::{UnusableKey, Vault, VaultError, VaultKey};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tezos_crypto::{blake2b_256, Curve, PublicKey, PublicKeyHash, SecretKey, Signature};
use tezos_crypto::{CryptoError, SigningVersion};
use yubihsm::{asymmetric, object, Capability, Client, Connector, Credentials, Domain};
use zeroize::Zeroizing;

const DRIVER: &str = "yubihsm";

/// How long one call (with its one retry) may take before it fails as a transient error.
pub const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// The environment variables ECAD Signatory reads when a setting is absent.
pub const ENV_ADDRESS: &str = "YUBIHSM_CONNECT_ADDRESS";
pub const ENV_PASSWORD: &str = "YUBIHSM_PASSWORD";
pub const ENV_AUTH_KEY_ID: &str = "YUBIHSM_AUTH_KEY_ID";
pub const ENV_KEY_IMPORT_DOMAINS: &str = "YUBIHSM_KEY_IMPORT_DOMAINS";

/// The domains of generated and imported keys when neither the setting nor the
/// environment gives any (ECAD's default: domain 1).
const DEFAULT_DOMAINS: u16 = 1;

/// What the health check echoes.
const HEALTH_ECHO: &[u8] = b"signatory health";

/// The `yubihsm` driver of the registry.
pub(crate) struct YubiHsmDriver;

#[async_trait::async_trait]
impl Driver for YubiHsmDriver {
    fn name(&self) -> &'static str {
        DRIVER
    }

    fn check_settings(&self, vault: &str, settings: &DriverSettings) -> Result<(), OpenError> {
        // The password fallback has been taken out of the environment by then: a missing
        // password is reported at open.
        YubiHsmOptions::from_settings_with(
            vault,
            settings,
            &crate::password::environment_before_open(ENV_PASSWORD),
        )
        .map(drop)
    }

    fn secret_variables(&self, _vault: &str, settings: &DriverSettings) -> Vec<String> {
        crate::password::fallback_variable(settings, "password", ENV_PASSWORD)
    }

    async fn open(
        &self,
        vault: &str,
        settings: &DriverSettings,
        passwords: &EnvPasswords,
    ) -> Result<Arc<dyn Vault>, OpenError> {
        let options =
            YubiHsmOptions::from_settings_with(vault, settings, &|name| passwords.lookup(name))?;
        Ok(Arc::new(YubiHsmVault::open(vault, options).await?))
    }

    fn deadline(&self) -> Option<Duration> {
        Some(CALL_DEADLINE)
    }
}

/// How to reach a YubiHSM and which domains new keys get.
#[derive(Clone)]
pub struct YubiHsmOptions {
    /// yubihsm-connector's host (a name, an IPv4 address or a bracketed IPv6 address).
    pub host: String,
    pub port: u16,
    pub password: Zeroizing<String>,
    pub auth_key_id: u16,
    /// The domain bitmask of generated and imported keys (bit 0 is domain 1).
    pub key_import_domains: u16,
    /// The deadline of each call (10 s by default).
    pub deadline: Duration,
}

impl fmt::Debug for YubiHsmOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YubiHsmOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &"REDACTED")
            .field("auth_key_id", &self.auth_key_id)
            .field(
                "key_import_domains",
                &format_args!("{:#06x}", self.key_import_domains),
            )
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl YubiHsmOptions {
    /// Parse the driver's `config` value, with ECAD's environment fallbacks; errors name
    /// `vaults.<vault>.config…`.
    pub fn from_settings(vault: &str, settings: &serde_yaml_ng::Value) -> Result<Self, OpenError> {
        Self::from_settings_with(vault, settings, &|var| {
            std::env::var(var).ok().map(Zeroizing::new)
        })
    }

    /// [`YubiHsmOptions::from_settings`] with the environment read through `lookup`.
    pub fn from_settings_with(
        vault: &str,
        settings: &serde_yaml_ng::Value,
        lookup: &dyn Fn(&str) -> Option<Zeroizing<String>>,
    ) -> Result<Self, OpenError> {
        #[derive(Deserialize)]
        #[serde(
            deny_unknown_fields,
            expecting = "a mapping with `address`, `password`, `auth_key_id` and optionally \
                         `key_import_domains`"
        )]
        struct Settings {
            #[serde(default)]
            address: Option<String>,
            #[serde(default, deserialize_with = "password")]
            password: Option<Zeroizing<String>>,
            #[serde(default)]
            auth_key_id: Option<u16>,
            #[serde(default)]
            key_import_domains: Option<u16>,
        }
        let base = format!("vaults.{vault}.config");
        let config_error = |key: &str, message: String| OpenError::Config {
            vault: vault.to_owned(),
            key_path: if key.is_empty() {
                base.clone()
            } else {
                format!("{base}.{key}")
            },
            message,
        };
        let settings: Settings = match settings {
            // Everything from the environment, as ECAD allows.
            serde_yaml_ng::Value::Null => Settings {
                address: None,
                password: None,
                auth_key_id: None,
                key_import_domains: None,
            },
            other => serde_path_to_error::deserialize(other.clone()).map_err(|e| {
                let at = e.path().to_string();
                let key = if at == "." { String::new() } else { at };
                config_error(&key, e.into_inner().to_string())
            })?,
        };
        let env = |var: &str| lookup(var).filter(|v| !v.is_empty());

        let address = match settings.address.filter(|a| !a.is_empty()) {
            Some(a) => a,
            None => env(ENV_ADDRESS).map(|a| a.to_string()).ok_or_else(|| {
                config_error(
                    "address",
                    format!(
                        "is missing; give yubihsm-connector's host:port (e.g. localhost:12345) \
                         here or in {ENV_ADDRESS}"
                    ),
                )
            })?,
        };
        let (host, port) = split_address(&address).map_err(|m| config_error("address", m))?;

        let password = match settings.password.filter(|p| !p.is_empty()) {
            Some(p) => p,
            None => env(ENV_PASSWORD).ok_or_else(|| {
                config_error(
                    "password",
                    format!(
                        "is missing; give the authentication key's password here or in \
                         {ENV_PASSWORD}"
                    ),
                )
            })?,
        };

        let auth_key_id = match settings.auth_key_id.filter(|&id| id != 0) {
            Some(id) => id,
            None => match env(ENV_AUTH_KEY_ID) {
                Some(text) => parse_u16(&text).filter(|&id| id != 0).ok_or_else(|| {
                    config_error(
                        "auth_key_id",
                        format!("{ENV_AUTH_KEY_ID} is not an object id from 1 to 65535"),
                    )
                })?,
                None => {
                    return Err(config_error(
                        "auth_key_id",
                        format!(
                            "is missing; give the authentication key's object id (the \
                             factory key is 1) here or in {ENV_AUTH_KEY_ID}"
                        ),
                    ))
                }
            },
        };

        let key_import_domains = match settings.key_import_domains.filter(|&d| d != 0) {
            Some(d) => d,
            None => match env(ENV_KEY_IMPORT_DOMAINS) {
                Some(text) => parse_u16(&text).ok_or_else(|| {
                    config_error(
                        "key_import_domains",
                        format!("{ENV_KEY_IMPORT_DOMAINS} is not a domain bitmask from 0 to 65535"),
                    )
                })?,
                None => 0,
            },
        };
        let key_import_domains = if key_import_domains == 0 {
            DEFAULT_DOMAINS
        } else {
            key_import_domains
        };

        Ok(YubiHsmOptions {
            host,
            port,
            password,
            auth_key_id,
            key_import_domains,
            deadline: CALL_DEADLINE,
        })
    }
}

/// The password as a string (or an unquoted number, as ECAD reads it); any other YAML
/// value is refused without being echoed (serde's message would quote it).
fn password<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Zeroizing<String>>, D::Error> {
    match serde_yaml_ng::Value::deserialize(d)? {
        serde_yaml_ng::Value::Null => Ok(None),
        serde_yaml_ng::Value::String(s) => Ok(Some(Zeroizing::new(s))),
        // ECAD's YAML library reads an unquoted number into the string (YAML has already
        // dropped any leading zeros: such a password must be quoted).
        serde_yaml_ng::Value::Number(n) => Ok(Some(Zeroizing::new(n.to_string()))),
        _ => Err(serde::de::Error::custom("must be a string")),
    }
}

/// `host:port`, as ECAD's `hostname_port` check wants it.
fn split_address(address: &str) -> Result<(String, u16), String> {
    let bad = || format!("`{address}` is not host:port (e.g. localhost:12345)");
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.contains('/') {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// A u16 written as Go's `strconv.ParseUint(s, 0, 16)` reads it: decimal, `0x…`, `0o…`/`0…`,
/// `0b…`.
fn parse_u16(text: &str) -> Option<u16> {
    let t = text.trim();
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or(t.strip_prefix("0X")) {
        (h, 16)
    } else if let Some(b) = t.strip_prefix("0b").or(t.strip_prefix("0B")) {
        (b, 2)
    } else if let Some(o) = t.strip_prefix("0o").or(t.strip_prefix("0O")) {
        (o, 8)
    } else if let Some(o) = t.strip_prefix('0').filter(|o| !o.is_empty()) {
        (o, 8)
    } else {
        (t, 10)
    };
    u16::from_str_radix(digits, radix).ok()
}

/// A key the vault can sign with: its object id, curve and public key.
#[derive(Debug, Clone)]
struct HsmKey {
    id: object::Id,
    curve: Curve,
    public_key: PublicKey,
    label: String,
}

/// Why a device call failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The password or the authentication key id is wrong: never retried.
    Authentication,
    /// The connector could not be reached or the connection broke: transient.
    Connection,
    /// The session is gone (closed, expired, or its channel broke): a new one may work.
    Session,
    /// The device refused the command (missing object, missing capability, bad data).
    Device,
}

fn classify(e: &yubihsm::client::Error) -> Failure {
    use yubihsm::client::ErrorKind as K;
    use yubihsm::device::ErrorKind as D;
    // The connection's own errors sit further down the chain, whatever the outer kind.
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>().is_some()
            || s.downcast_ref::<yubihsm::connector::Error>().is_some()
        {
            return Failure::Connection;
        }
        source = s.source();
    }
    match e.kind() {
        K::AuthenticationError => Failure::Authentication,
        K::ConnectorError => Failure::Connection,
        K::ClosedSessionError | K::CreateFailed | K::ProtocolError | K::ResponseError => {
            Failure::Session
        }
        K::DeviceError => match e.device_error() {
            Some(D::InvalidSession | D::SessionsFull | D::SessionFailed) => Failure::Session,
            Some(D::AuthenticationFailed) => Failure::Authentication,
            _ => Failure::Device,
        },
    }
}

/// The client in use and its generation, so that concurrent calls that all saw one session
/// fail replace it once.
struct Current {
    generation: u64,
    client: Option<Client>,
}

struct Inner {
    name: String,
    options: YubiHsmOptions,
    current: Mutex<Current>,
    keys: RwLock<BTreeMap<PublicKeyHash, HsmKey>>,
    /// The objects the last listing skipped, and why.
    unusable: RwLock<Vec<UnusableKey>>,
    /// One generate or import at a time, so two never pick the same free object id.
    store_lock: Mutex<()>,
}

/// A vault whose keys live in a YubiHSM 2.
#[derive(Clone)]
pub struct YubiHsmVault {
    inner: Arc<Inner>,
}

impl fmt::Debug for YubiHsmVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YubiHsmVault")
            .field("name", &self.inner.name)
            .field("options", &self.inner.options)
            .field("keys", &self.inner.keys.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Inner {
    fn address(&self) -> String {
        format!("{}:{}", self.options.host, self.options.port)
    }

    /// The client to use, created (without I/O) when there is none.
    fn client(&self) -> Result<(u64, Client), yubihsm::client::Error> {
        let mut current = self.current.lock();
        if let Some(client) = &current.client {
            return Ok((current.generation, client.clone()));
        }
        let connector = Connector::http(&yubihsm::HttpConfig {
            addr: self.options.host.clone(),
            port: self.options.port,
            timeout_ms: u64::try_from(self.options.deadline.as_millis()).unwrap_or(u64::MAX),
        });
        let credentials =
            Credentials::from_password(self.options.auth_key_id, self.options.password.as_bytes());
        // `create` connects lazily: the first command opens the session, and a session the
        // client itself saw close (idle timeout, broken connection) is reopened with these
        // credentials.
        let client = Client::create(connector, credentials)?;
        current.generation += 1;
        current.client = Some(client.clone());
        Ok((current.generation, client))
    }

    /// Drop the client of `generation` (its session is lost) so the next call opens a new
    /// one.
    fn reset(&self, generation: u64) {
        let mut current = self.current.lock();
        if current.generation == generation {
            current.client = None;
        }
    }

    fn error(&self, what: &str, failure: Failure, e: yubihsm::client::Error) -> VaultError {
        let vault = self.name.clone();
        let error = match failure {
            Failure::Authentication => VaultError::Backend {
                vault,
                transient: false,
                message: format!(
                    "{what}: the YubiHSM at {} refused authentication key {:#06x}: wrong \
                     password or auth_key_id",
                    self.address(),
                    self.options.auth_key_id
                ),
                source: None,
            },
            Failure::Connection => VaultError::Backend {
                vault,
                transient: true,
                message: format!(
                    "{what}: cannot reach yubihsm-connector at {}: {e}",
                    self.address()
                ),
                source: None,
            },
            Failure::Session => VaultError::Backend {
                vault,
                transient: true,
                message: format!("{what}: YubiHSM session failed: {e}"),
                source: None,
            },
            Failure::Device => VaultError::Backend {
                vault,
                transient: false,
                message: format!("{what}: the YubiHSM refused: {e}"),
                source: None,
            },
        };
        error.caused_by(e)
    }

    /// Run `op` with the current client; a lost session or connection is replaced and `op`
    /// run once more. Blocking.
    fn run<T>(
        &self,
        what: &str,
        op: &dyn Fn(&Client) -> Result<T, yubihsm::client::Error>,
    ) -> Result<T, VaultError> {
        self.run_classified(what, op).map_err(|(_, e)| e)
    }

    /// [`Inner::run`], saying also which kind of failure it was.
    fn run_classified<T>(
        &self,
        what: &str,
        op: &dyn Fn(&Client) -> Result<T, yubihsm::client::Error>,
    ) -> Result<T, (Failure, VaultError)> {
        let fail = |e: yubihsm::client::Error| {
            let failure = classify(&e);
            (failure, self.error(what, failure, e))
        };
        let (generation, client) = self.client().map_err(fail)?;
        let e = match op(&client) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        match classify(&e) {
            Failure::Session | Failure::Connection => {
                tracing::info!(
                    vault = %self.name,
                    "{what}: YubiHSM session or connection lost ({e}); opening a new session \
                     and retrying once"
                );
                self.reset(generation);
                let (generation, client) = self.client().map_err(fail)?;
                op(&client).map_err(|e| {
                    let (failure, error) = fail(e);
                    if failure != Failure::Device {
                        self.reset(generation);
                    }
                    (failure, error)
                })
            }
            Failure::Authentication | Failure::Device => Err(fail(e)),
        }
    }

    /// Every usable key on the device. Blocking.
    fn discover(&self) -> Result<(Vec<HsmKey>, Vec<UnusableKey>), VaultError> {
        let filters = [object::Filter::Type(object::Type::AsymmetricKey)];
        let objects = self.run("listing keys", &|c| c.list_objects(&filters))?;
        let mut keys = Vec::new();
        let mut unusable = Vec::new();
        let mut skip = |id: object::Id, label: Option<&object::Label>, reason: String| {
            tracing::warn!(vault = %self.name, object_id = id, "skipping YubiHSM object {id:#06x}: {reason}");
            let id = match label {
                Some(label) => key_label(id, label),
                None => format!("{id:#06x}"),
            };
            unusable.push(UnusableKey { id, reason });
        };
        for entry in objects {
            let id = entry.object_id;
            let described = self.run_classified("listing keys", &|c| {
                let info = c.get_object_info(id, object::Type::AsymmetricKey)?;
                let usable = usable(&info);
                let public = match usable {
                    Ok(_) => Some(c.get_public_key(id)?),
                    Err(_) => None,
                };
                Ok((info, usable, public))
            });
            let (info, usable, public) = match described {
                Ok(found) => found,
                // One object the device will not describe is skipped; a lost connection or
                // session fails the whole listing.
                Err((Failure::Device, e)) => {
                    skip(id, None, e.to_string());
                    continue;
                }
                Err((_, e)) => return Err(e),
            };
            let curve = match usable {
                Ok(curve) => curve,
                Err(reason) => {
                    skip(id, Some(&info.label), reason);
                    continue;
                }
            };
            let Some(public) = public else { continue };
            match public_key(curve, &public.bytes) {
                Ok(public_key) => keys.push(HsmKey {
                    id,
                    curve,
                    public_key,
                    label: key_label(id, &info.label),
                }),
                Err(e) => skip(
                    id,
                    Some(&info.label),
                    format!("its public key is not a valid {curve} key: {e}"),
                ),
            }
        }
        Ok((keys, unusable))
    }

    fn remember(&self, (keys, unusable): (Vec<HsmKey>, Vec<UnusableKey>)) -> Vec<VaultKey> {
        *self.unusable.write() = unusable;
        let mut map = self.keys.write();
        map.clear();
        for key in &keys {
            map.insert(key.public_key.hash(), key.clone());
        }
        keys.iter().map(|k| self.describe(k)).collect()
    }

    fn describe(&self, key: &HsmKey) -> VaultKey {
        VaultKey::new(key.public_key.clone(), &self.name).with_label(&key.label)
    }

    fn sign_blocking(&self, key: &HsmKey, message: &[u8]) -> Result<Signature, VaultError> {
        let digest = blake2b_256(message);
        let id = key.id;
        let bad = |m: String| VaultError::Backend {
            vault: self.name.clone(),
            transient: false,
            message: format!("signing with YubiHSM key {id:#06x}: {m}"),
            source: None,
        };
        match key.curve {
            Curve::Ed25519 => {
                let sig = self.run("signing", &|c| c.sign_ed25519(id, digest.to_vec()))?;
                Ok(Signature::Ed25519(sig.to_bytes()))
            }
            Curve::Secp256k1 | Curve::P256 => {
                let der = self.run("signing", &|c| {
                    c.sign_ecdsa_prehash_raw(id, digest.to_vec())
                })?;
                let raw = der_to_raw(&der).map_err(bad)?;
                let sig = Signature::from_bytes(key.curve, &raw).map_err(|e| bad(e.to_string()))?;
                Ok(sig.normalize_low_s())
            }
            Curve::Bls12_381 => Err(bad("tz4 keys cannot live in a YubiHSM".to_owned())),
        }
    }

    fn store_blocking(
        &self,
        curve: Curve,
        secret: Option<&[u8; 32]>,
    ) -> Result<HsmKey, VaultError> {
        let (algorithm, capability) =
            algorithm_of(curve).ok_or_else(|| VaultError::Unsupported {
                vault: self.name.clone(),
                driver: DRIVER,
                operation: "tz4 (BLS) keys",
            })?;
        let domains = Domain::from_bits_truncate(self.options.key_import_domains);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let (what, kind) = if secret.is_some() {
            ("importing a key", "imported")
        } else {
            ("generating a key", "generated")
        };
        let mut label_text = format!("signatory-{}-{kind}-{now}", curve_word(curve));
        label_text.truncate(40);
        let label =
            object::Label::from_bytes(label_text.as_bytes()).map_err(|e| VaultError::Backend {
                vault: self.name.clone(),
                transient: false,
                message: format!("{what}: label `{label_text}`: {e}"),
                source: None,
            })?;
        // The lowest free object ids. A real YubiHSM would also pick one for id 0, as ECAD
        // asks it to, but the yubihsm crate's MockHsm stores an object under id 0 instead.
        // The listing shows only this auth key's domains, while ids are unique across the
        // device: an id another domain holds is answered "object exists", and the next one
        // is tried.
        let _one_at_a_time = self.store_lock.lock();
        let filters = [object::Filter::Type(object::Type::AsymmetricKey)];
        let taken: std::collections::BTreeSet<object::Id> = self
            .run(what, &|c| c.list_objects(&filters))?
            .into_iter()
            .map(|e| e.object_id)
            .collect();
        let candidates: Vec<object::Id> = (1..=0xfffe)
            .filter(|id| !taken.contains(id))
            .take(ID_ATTEMPTS)
            .collect();
        if candidates.is_empty() {
            return Err(VaultError::backend(
                &self.name,
                false,
                format!("{what}: no free object id left on the YubiHSM"),
            ));
        }
        let exists = |e: &yubihsm::client::Error| {
            e.device_error() == Some(yubihsm::device::ErrorKind::ObjectExists)
        };
        // Signing only: no export under wrap, no other capability.
        let id = self.run(what, &|c| {
            let mut last = None;
            for &id in &candidates {
                let stored = match secret {
                    None => {
                        c.generate_asymmetric_key(id, label.clone(), domains, capability, algorithm)
                    }
                    // The crate takes the bytes as a `Vec` into its command buffer and does
                    // not wipe it afterwards; nothing here can change that.
                    Some(bytes) => c.put_asymmetric_key(
                        id,
                        label.clone(),
                        domains,
                        capability,
                        algorithm,
                        bytes.to_vec(),
                    ),
                };
                match stored {
                    Err(e) if exists(&e) => last = Some(e),
                    done => return done,
                }
            }
            Err(last.unwrap_or_else(|| yubihsm::client::ErrorKind::ProtocolError.into()))
        })?;
        let public = self.run(what, &|c| c.get_public_key(id))?;
        let public_key = public_key(curve, &public.bytes).map_err(|e| VaultError::Backend {
            vault: self.name.clone(),
            transient: false,
            message: format!("{what}: the YubiHSM's public key for {id:#06x} is not valid: {e}"),
            source: None,
        })?;
        Ok(HsmKey {
            id,
            curve,
            public_key,
            label: key_label(id, &label),
        })
    }
}

/// Whether an object can sign Tezos requests, and as which curve.
fn usable(info: &object::Info) -> Result<Curve, String> {
    use yubihsm::Algorithm as A;
    let (curve, needed, needed_name) = match info.algorithm {
        A::Asymmetric(asymmetric::Algorithm::Ed25519) => {
            (Curve::Ed25519, Capability::SIGN_EDDSA, "sign-eddsa")
        }
        A::Asymmetric(asymmetric::Algorithm::EcK256) => {
            (Curve::Secp256k1, Capability::SIGN_ECDSA, "sign-ecdsa")
        }
        A::Asymmetric(asymmetric::Algorithm::EcP256) => {
            (Curve::P256, Capability::SIGN_ECDSA, "sign-ecdsa")
        }
        other => {
            return Err(format!(
                "algorithm {other:?} is not one Tezos signs with (Ed25519, EC secp256k1, EC P-256)"
            ))
        }
    };
    if !info.capabilities.contains(needed) {
        return Err(format!(
            "a {} key without the `{needed_name}` capability cannot sign",
            curve_word(curve)
        ));
    }
    Ok(curve)
}

fn algorithm_of(curve: Curve) -> Option<(asymmetric::Algorithm, Capability)> {
    match curve {
        Curve::Ed25519 => Some((asymmetric::Algorithm::Ed25519, Capability::SIGN_EDDSA)),
        Curve::Secp256k1 => Some((asymmetric::Algorithm::EcK256, Capability::SIGN_ECDSA)),
        Curve::P256 => Some((asymmetric::Algorithm::EcP256, Capability::SIGN_ECDSA)),
        Curve::Bls12_381 => None,
    }
}

fn curve_word(curve: Curve) -> &'static str {
    match curve {
        Curve::Ed25519 => "ed25519",
        Curve::Secp256k1 => "secp256k1",
        Curve::P256 => "p256",
        Curve::Bls12_381 => "bls",
    }
}

/// `0x0042` or `0x0042:label`.
/// How many free-looking object ids a new key tries before giving up.
const ID_ATTEMPTS: usize = 16;

fn key_label(id: object::Id, label: &object::Label) -> String {
    match label.try_as_str() {
        Ok(text) if !text.trim_end_matches('\0').is_empty() => {
            format!("{id:#06x}:{}", text.trim_end_matches('\0'))
        }
        _ => format!("{id:#06x}"),
    }
}

/// A Tezos public key from the YubiHSM's bytes: the 32-byte Ed25519 point, or the
/// uncompressed EC point X ‖ Y (without the 0x04 tag), compressed here.
fn public_key(curve: Curve, raw: &[u8]) -> Result<PublicKey, CryptoError> {
    match curve {
        Curve::Ed25519 | Curve::Bls12_381 => PublicKey::from_bytes(curve, raw),
        Curve::Secp256k1 | Curve::P256 => {
            if raw.len() != 64 {
                return Err(CryptoError::WrongLength {
                    what: "an uncompressed EC point from the YubiHSM",
                    expected: 64,
                    found: raw.len(),
                });
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(raw);
            PublicKey::from_uncompressed_point(curve, &point)
        }
    }
}

/// A DER `SEQUENCE { r INTEGER, s INTEGER }` as 64 bytes r ‖ s.
fn der_to_raw(der: &[u8]) -> Result<[u8; 64], String> {
    let sig = openssl::ecdsa::EcdsaSig::from_der(der)
        .map_err(|e| format!("the HSM's ECDSA signature is not DER: {e}"))?;
    let r = sig.r().to_vec_padded(32).map_err(|e| format!("r: {e}"))?;
    let s = sig.s().to_vec_padded(32).map_err(|e| format!("s: {e}"))?;
    let mut out = [0u8; 64];
    for (d, v) in out.iter_mut().zip(r.iter().chain(s.iter())) {
        *d = *v;
    }
    Ok(out)
}

impl YubiHsmVault {
    /// Connect, authenticate and list the device's keys: a wrong password or an unreachable
    /// connector stops the start with a message saying which.
    pub async fn open(name: &str, options: YubiHsmOptions) -> Result<YubiHsmVault, OpenError> {
        let vault = YubiHsmVault {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                options,
                current: Mutex::new(Current {
                    generation: 0,
                    client: None,
                }),
                keys: RwLock::new(BTreeMap::new()),
                unusable: RwLock::new(Vec::new()),
                store_lock: Mutex::new(()),
            }),
        };
        // Authenticate first, so a wrong password is told apart from a device that is down.
        let authenticated = vault
            .call("opening a session", |inner| {
                Ok(inner.run_classified("opening a session", &|c| c.echo(HEALTH_ECHO)))
            })
            .await;
        let unavailable = |e: VaultError| OpenError::Unavailable {
            vault: name.to_owned(),
            message: e.to_string(),
            source: Some(Arc::new(e)),
        };
        match authenticated {
            Ok(Ok(_)) => {}
            Ok(Err((Failure::Authentication, e))) => {
                return Err(OpenError::Config {
                    vault: name.to_owned(),
                    key_path: format!("vaults.{name}.config.password"),
                    message: e.to_string(),
                })
            }
            Ok(Err((_, e))) | Err(e) => return Err(unavailable(e)),
        }
        vault.list_keys().await.map_err(unavailable)?;
        Ok(vault)
    }

    /// Run `f` on the blocking pool under the deadline.
    async fn call<T, F>(&self, what: &'static str, f: F) -> Result<T, VaultError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, VaultError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let deadline = inner.options.deadline;
        let task = tokio::task::spawn_blocking(move || f(&inner));
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => {
                // A panic inside the client may have poisoned its session lock: start over.
                let generation = self.inner.current.lock().generation;
                self.inner.reset(generation);
                Err(VaultError::Backend {
                    vault: self.inner.name.clone(),
                    transient: true,
                    message: format!("{what}: the YubiHSM call failed: {join}"),
                    source: None,
                })
            }
            Err(_) => Err(VaultError::Backend {
                vault: self.inner.name.clone(),
                transient: true,
                message: format!(
                    "{what}: no answer from the YubiHSM at {} within {} s",
                    self.inner.address(),
                    deadline.as_secs_f32()
                ),
                source: None,
            }),
        }
    }

    fn key(&self, pkh: &PublicKeyHash) -> Result<HsmKey, VaultError> {
        self.inner
            .keys
            .read()
            .get(pkh)
            .cloned()
            .ok_or_else(|| VaultError::KeyNotFound {
                vault: self.inner.name.clone(),
                pkh: *pkh,
            })
    }

    async fn store(&self, curve: Curve, secret: Option<SecretKey>) -> Result<VaultKey, VaultError> {
        if algorithm_of(curve).is_none() {
            return Err(self.unsupported(match secret {
                Some(_) => "importing tz4 (BLS) keys",
                None => "generating tz4 (BLS) keys",
            }));
        }
        let expected = secret.as_ref().map(SecretKey::public_key);
        if let Some(held) = expected
            .as_ref()
            .and_then(|pk| self.inner.keys.read().get(&pk.hash()).cloned())
        {
            // Already in the device: a second object would only be a second copy.
            return Ok(self.inner.describe(&held));
        }
        let key = self
            .call("storing a key", move |inner| {
                let bytes = secret.as_ref().map(SecretKey::expose_secret_bytes);
                inner.store_blocking(curve, bytes.as_deref())
            })
            .await?;
        if let Some(expected) = expected {
            if expected != key.public_key {
                return Err(VaultError::Backend {
                    vault: self.inner.name.clone(),
                    transient: false,
                    message: format!(
                        "importing a key: the YubiHSM's public key for object {:#06x} is not \
                         the imported key's",
                        key.id
                    ),
                    source: None,
                });
            }
        }
        self.inner
            .keys
            .write()
            .insert(key.public_key.hash(), key.clone());
        Ok(self.inner.describe(&key))
    }
}

#[async_trait::async_trait]
impl Vault for YubiHsmVault {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn driver(&self) -> &'static str {
        DRIVER
    }

    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        let keys = self.call("listing keys", |inner| inner.discover()).await?;
        Ok(self.inner.remember(keys))
    }

    fn unusable_keys(&self) -> Vec<UnusableKey> {
        self.inner.unusable.read().clone()
    }

    async fn sign(
        &self,
        pkh: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        // tz1–tz3 sign the Blake2b-256 digest whatever the version.
        let _ = version;
        let key = self.key(pkh)?;
        let message = message.to_vec();
        self.call("signing", move |inner| inner.sign_blocking(&key, &message))
            .await
    }

    /// Ed25519 (RFC 8032) is deterministic by construction; the device's ECDSA draws its
    /// nonces at random.
    fn signs_deterministically(&self, curve: Curve) -> bool {
        curve == Curve::Ed25519
    }

    async fn health(&self) -> Result<(), VaultError> {
        let echoed = self
            .call("health check", |inner| {
                inner.run("health check", &|c| c.echo(HEALTH_ECHO))
            })
            .await?;
        if echoed != HEALTH_ECHO {
            return Err(VaultError::Backend {
                vault: self.inner.name.clone(),
                transient: true,
                message: "health check: the YubiHSM echoed other bytes".to_owned(),
                source: None,
            });
        }
        Ok(())
    }

    async fn generate(&self, curve: Curve) -> Result<VaultKey, VaultError> {
        self.store(curve, None).await
    }

    async fn import(&self, key: SecretKey) -> Result<VaultKey, VaultError> {
        let curve = key.curve();
        self.store(curve, Some(key)).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> serde_yaml_ng::Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    fn no_env(_: &str) -> Option<Zeroizing<String>> {
        None
    }

    #[test]
    fn ecad_settings_parse_and_the_password_stays_out_of_debug() {
        let o = YubiHsmOptions::from_settings_with(
            "hsm",
            &yaml("{address: 'localhost:12345', password: s3cret-pw, auth_key_id: 1}"),
            &no_env,
        )
        .unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.auth_key_id),
            ("localhost", 12345, 1)
        );
        assert_eq!(o.key_import_domains, 1);
        assert!(!format!("{o:?}").contains("s3cret-pw"));
    }

    #[test]
    fn absent_settings_come_from_ecads_environment_variables() {
        let env = |var: &str| match var {
            ENV_ADDRESS => Some(Zeroizing::new("10.0.0.7:12345".to_owned())),
            ENV_PASSWORD => Some(Zeroizing::new("from-env".to_owned())),
            ENV_AUTH_KEY_ID => Some(Zeroizing::new("0x0002".to_owned())),
            ENV_KEY_IMPORT_DOMAINS => Some(Zeroizing::new("3".to_owned())),
            _ => None,
        };
        let o =
            YubiHsmOptions::from_settings_with("hsm", &serde_yaml_ng::Value::Null, &env).unwrap();
        assert_eq!((o.host.as_str(), o.port), ("10.0.0.7", 12345));
        assert_eq!(o.password.as_str(), "from-env");
        assert_eq!((o.auth_key_id, o.key_import_domains), (2, 3));
        // Settings win over the environment.
        let o = YubiHsmOptions::from_settings_with(
            "hsm",
            &yaml("{address: 'h:1', password: p, auth_key_id: 5, key_import_domains: 0x8001}"),
            &env,
        )
        .unwrap();
        assert_eq!(
            (o.port, o.auth_key_id, o.key_import_domains),
            (1, 5, 0x8001)
        );
    }

    #[test]
    fn bad_settings_name_the_key_to_fix_without_echoing_the_password() {
        let err = |text: &str| {
            YubiHsmOptions::from_settings_with("hsm", &yaml(text), &no_env)
                .unwrap_err()
                .to_string()
        };
        let e = err("{address: 'h:1', password: p, auth_key_id: 1, pin: 3}");
        assert!(e.contains("vaults.hsm.config"), "{e}");
        let e = err("{address: localhost, password: p, auth_key_id: 1}");
        assert!(
            e.contains("vaults.hsm.config.address") && e.contains("host:port"),
            "{e}"
        );
        let e = err("{address: 'h:1', password: p, auth_key_id: 70000}");
        assert!(e.contains("vaults.hsm.config.auth_key_id"), "{e}");
        // An unquoted number is read as ECAD reads it; a mapping is refused, unechoed.
        let o = YubiHsmOptions::from_settings_with(
            "hsm",
            &yaml("{address: 'h:1', password: 918273645, auth_key_id: 1}"),
            &no_env,
        )
        .unwrap();
        assert_eq!(o.password.as_str(), "918273645");
        let e = err("{address: 'h:1', password: {secret: 918273645}, auth_key_id: 1}");
        assert!(
            e.contains("vaults.hsm.config.password") && !e.contains("918273645"),
            "{e}"
        );
        let e = err("{address: 'h:1', password: p}");
        assert!(
            e.contains("vaults.hsm.config.auth_key_id") && e.contains(ENV_AUTH_KEY_ID),
            "{e}"
        );
        let e = err("{address: 'h:1', auth_key_id: 1}");
        assert!(
            e.contains("vaults.hsm.config.password") && e.contains(ENV_PASSWORD),
            "{e}"
        );
    }

    #[test]
    fn go_style_numbers() {
        assert_eq!(parse_u16("12"), Some(12));
        assert_eq!(parse_u16("0x0a"), Some(10));
        assert_eq!(parse_u16("010"), Some(8));
        assert_eq!(parse_u16("0b11"), Some(3));
        assert_eq!(parse_u16("65536"), None);
        assert_eq!(parse_u16("x"), None);
    }

    #[test]
    fn der_signatures_become_r_and_s() {
        // r = 1, s = 0x80 (a leading zero byte in DER for the sign bit).
        let der = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80];
        let raw = der_to_raw(&der).unwrap();
        assert_eq!(raw[31], 1);
        assert_eq!(raw[63], 0x80);
        assert!(raw[..31].iter().chain(&raw[32..63]).all(|&b| b == 0));
        assert!(der_to_raw(b"\x30\x00junk").is_err());
    }
}
