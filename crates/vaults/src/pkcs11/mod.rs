//! The `pkcs11` driver: keys in a PKCS#11 token (an HSM, AWS CloudHSM, SoftHSM2), with
//! ECAD Signatory's configuration.
//!
//! ```yaml
//! vaults:
//!   hsm:
//!     driver: pkcs11
//!     config:
//!       library_path: /usr/lib/softhsm/libsofthsm2.so   # or PKCS11_PATH
//!       slot: 0x1d2c3e4f          # or PKCS11_SLOT; default: the first initialised token
//!       pin: ${HSM_PIN}           # or PKCS11_PIN
//!       keys:                     # optional: default, every private key of the token
//!         - private: {label: baker}
//!           public_value: edpk…   # optional: else a public key object, see below
//!       public_keys_search_options: {match_label: true, match_id: true, extended_private: true}
//!       max_sessions: 8           # ours: sessions open at once (one per signature)
//! ```
//!
//! Signing: tz1 with `CKM_EDDSA`, tz2 and tz3 with `CKM_ECDSA` over the Blake2b-256
//! digest, as Octez signs; ECDSA signatures normalised to low S. The token's library is
//! loaded at run time (`dlopen`), so the build needs no HSM SDK.
//!
//! Sessions are pooled: a signature takes an idle session or opens one, up to
//! `max_sessions`, and gives it back. The user logs in once (a PKCS#11 login holds for every
//! session of the process). A session the token closed, or a token that went away and came
//! back, is reopened and the call retried once. A wrong PIN is never retried: tokens lock
//! the PIN after a few failures.

mod ec;
mod settings;

use crate::error::OpenError;
use crate::password::EnvPasswords;
use crate::registry::Driver;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use parking_lot::{Mutex, RwLock};
use settings::{KeyPairSetting, Locator, PublicSource, SearchOptions, Settings, SlotChoice};
use signatory_config::DriverSettings;
use signatory_signer::vault::{SessionUse, UnusableKey, Vault, VaultError, VaultKey};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tezos_crypto::{
    blake2b_256, Curve, PublicKey, PublicKeyHash, SecretKey, Signature, SigningVersion,
};
use tokio::sync::Semaphore;

/// The `pkcs11` driver of the registry.
pub(crate) struct Pkcs11Driver;

#[async_trait::async_trait]
impl Driver for Pkcs11Driver {
    fn name(&self) -> &'static str {
        "pkcs11"
    }

    fn check_settings(&self, vault: &str, settings: &DriverSettings) -> Result<(), OpenError> {
        parse_without_pin(vault, settings).map(drop)
    }

    fn preflight(
        &self,
        vault: &str,
        settings: &DriverSettings,
    ) -> Option<Result<String, OpenError>> {
        let checked = parse_without_pin(vault, settings).and_then(|settings| {
            if settings.library_path.is_file() {
                Ok(format!(
                    "PKCS#11 library {}",
                    settings.library_path.display()
                ))
            } else {
                Err(library_missing(vault, &settings))
            }
        });
        Some(checked)
    }

    fn secret_variables(&self, _vault: &str, settings: &DriverSettings) -> Vec<String> {
        crate::password::fallback_variable(settings, "pin", "PKCS11_PIN")
    }

    async fn open(
        &self,
        vault: &str,
        settings: &DriverSettings,
        passwords: &EnvPasswords,
    ) -> Result<Arc<dyn Vault>, OpenError> {
        let settings = settings::parse(vault, settings, &|name| passwords.lookup(name))?;
        let name = vault.to_owned();
        crate::registry::open_blocking(vault, move || Pkcs11Vault::open(&name, settings)).await
    }
}

/// The settings as far as they can be checked before opening: the PIN fallback has been
/// taken out of the environment by then (a missing PIN is reported at open).
fn parse_without_pin(vault: &str, settings: &DriverSettings) -> Result<Settings, OpenError> {
    settings::parse(
        vault,
        settings,
        &crate::password::environment_before_open("PKCS11_PIN"),
    )
}

fn library_missing(vault: &str, settings: &Settings) -> OpenError {
    OpenError::Config {
        vault: vault.to_owned(),
        key_path: format!("vaults.{vault}.config.library_path"),
        message: format!(
            "{} does not exist or is not a file; install the token's PKCS#11 library \
             (for SoftHSM2: the Debian package softhsm2, /usr/lib/softhsm/libsofthsm2.so)",
            settings.library_path.display()
        ),
    }
}

/// A key the vault signs with.
#[derive(Debug, Clone)]
struct TokenKey {
    key: VaultKey,
    curve: Curve,
    /// How to find the private key object again after the token lost its handles.
    locator: Locator,
    /// The private key object, and the library generation its handle belongs to.
    handle: Arc<Mutex<(u64, ObjectHandle)>>,
}

impl TokenKey {
    fn new(
        key: VaultKey,
        curve: Curve,
        locator: Locator,
        generation: u64,
        handle: ObjectHandle,
    ) -> Self {
        TokenKey {
            key,
            curve,
            locator,
            handle: Arc::new(Mutex::new((generation, handle))),
        }
    }

    /// The private key's handle in library generation `generation`: looked up again when
    /// it was found in another (a restarted library numbers its objects anew).
    fn handle(&self, session: &Session, generation: u64) -> Result<ObjectHandle, Pkcs11Error> {
        let (found_in, handle) = *self.handle.lock();
        if found_in == generation {
            return Ok(handle);
        }
        self.find_again(session, generation)
    }

    /// Find the private key object again: exactly one object must match, or the handle is
    /// reported lost (the token renumbered its objects after a restart, or the handle was
    /// only valid in a login that is gone).
    fn find_again(&self, session: &Session, generation: u64) -> Result<ObjectHandle, Pkcs11Error> {
        let handle = find_one(session, ObjectClass::PRIVATE_KEY, &self.locator)?.ok_or(
            Pkcs11Error::Pkcs11(
                RvError::KeyHandleInvalid,
                cryptoki::context::Function::FindObjects,
            ),
        )?;
        *self.handle.lock() = (generation, handle);
        Ok(handle)
    }
}

/// A PKCS#11 library, loaded and initialised once per process and shared by every vault
/// that uses it (two slots of one HSM).
///
/// Some libraries (SoftHSM2 among them) stay broken after their token went away and came
/// back until they are finalised and initialised again. That is done here, under `calls`:
/// every PKCS#11 call holds it for reading, a re-initialisation for writing, so none runs
/// while the library restarts. Sessions are tagged with the `generation` they were opened
/// in; after a restart their handles mean nothing (or another session), so they are
/// forgotten, never used or closed.
struct Library {
    ctx: Pkcs11,
    calls: RwLock<()>,
    generation: AtomicU64,
    restarted_at: Mutex<Option<Instant>>,
    /// Vaults open on this library: with none, restarting it disturbs nobody.
    users: AtomicUsize,
}

impl Library {
    /// Finalise and initialise the library again, unless another caller just did.
    fn restart(&self, vault: &str, seen_generation: u64) {
        let _exclusive = self.calls.write();
        if self.generation.load(Ordering::Acquire) != seen_generation {
            return;
        }
        let mut restarted_at = self.restarted_at.lock();
        if restarted_at.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return;
        }
        tracing::info!(vault, "re-initialising the PKCS#11 library");
        let _ = self.ctx.clone().finalize();
        if let Err(e) = self
            .ctx
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            tracing::error!(vault, error = %e, "the PKCS#11 library did not initialise again");
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        *restarted_at = Some(Instant::now());
    }
}

/// The token: its library, slot, PIN and pooled sessions.
struct Token {
    vault: String,
    library: Arc<Library>,
    slot: Slot,
    pin: AuthPin,
    /// Idle sessions, with the library generation they were opened in.
    idle: Mutex<Vec<(u64, Session)>>,
    /// One permit per session that may be open at once.
    permits: Arc<Semaphore>,
    max_sessions: usize,
    in_use: AtomicUsize,
    /// Set when a login failed for the PIN: nothing logs in again until restart.
    pin_refused: Mutex<Option<String>>,
    /// Held while logging in: concurrent requests after a lost login send the PIN once.
    login: Mutex<()>,
}

impl Drop for Token {
    fn drop(&mut self) {
        self.library.users.fetch_sub(1, Ordering::AcqRel);
        // Sessions of an older library generation are not theirs to close any more.
        let generation = self.library.generation.load(Ordering::Acquire);
        self.discard_idle(generation);
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("vault", &self.vault)
            .field("slot", &self.slot.id())
            .field("pin", &"<redacted>")
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

/// Whether `e` means the session, the login or the object handles are gone (token reset,
/// removed and reinserted, logged out): worth one retry on a fresh, logged-in session.
fn session_lost(e: &Pkcs11Error) -> bool {
    matches!(
        e,
        Pkcs11Error::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::DeviceError
                | RvError::UserNotLoggedIn
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::CryptokiNotInitialized,
            _
        )
    )
}

/// Whether a fresh session could not be had for a reason a library restart may cure.
fn library_broken(e: &Pkcs11Error) -> bool {
    session_lost(e)
        || matches!(
            e,
            Pkcs11Error::Pkcs11(RvError::GeneralError | RvError::SlotIdInvalid, _)
        )
}

fn pin_error(e: &Pkcs11Error) -> bool {
    matches!(
        e,
        Pkcs11Error::Pkcs11(
            RvError::PinIncorrect
                | RvError::PinInvalid
                | RvError::PinLocked
                | RvError::PinExpired
                | RvError::PinLenRange
                | RvError::UserPinNotInitialized,
            _
        )
    )
}

/// Failures worth a retry later: the token or its connection, not the request.
fn transient(e: &Pkcs11Error) -> bool {
    library_broken(e)
        || matches!(
            e,
            Pkcs11Error::Pkcs11(
                RvError::DeviceMemory
                    | RvError::FunctionFailed
                    | RvError::SessionCount
                    | RvError::TokenNotRecognized,
                _
            )
        )
}

/// Why one attempt failed.
enum Attempt {
    /// The session or the library is gone: worth one more attempt on a fresh session.
    Lost(Pkcs11Error),
    Failed(VaultError),
}

impl Token {
    fn backend_error(&self, what: &str, e: Pkcs11Error) -> VaultError {
        VaultError::backend(&self.vault, transient(&e), format!("{what}: {e}")).caused_by(e)
    }

    /// A session of `generation` logged in as the user: an idle one, or a new one.
    /// Sessions of an older generation are forgotten (see [`Library`]).
    fn session(&self, generation: u64) -> Result<Session, Attempt> {
        loop {
            let Some((opened_in, session)) = self.idle.lock().pop() else {
                break;
            };
            if opened_in == generation {
                return Ok(session);
            }
            std::mem::forget(session);
        }
        let session = self.library.ctx.open_ro_session(self.slot).map_err(|e| {
            if library_broken(&e) {
                Attempt::Lost(e)
            } else {
                Attempt::Failed(self.backend_error("opening a session", e))
            }
        })?;
        self.log_in(&session)?;
        Ok(session)
    }

    /// Log in unless the process already is (a login holds for all its sessions).
    fn log_in(&self, session: &Session) -> Result<(), Attempt> {
        let _one_at_a_time = self.login.lock();
        if let Some(reason) = self.pin_refused.lock().clone() {
            return Err(Attempt::Failed(VaultError::backend(
                &self.vault,
                false,
                reason,
            )));
        }
        let state = session
            .get_session_info()
            .map_err(Attempt::Lost)?
            .session_state();
        if matches!(state, SessionState::RoUser | SessionState::RwUser) {
            return Ok(());
        }
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(e) if pin_error(&e) => {
                let reason = format!(
                    "the token refused the PIN ({e}); not retried until the signer restarts, \
                     as tokens lock the PIN after a few failures"
                );
                *self.pin_refused.lock() = Some(reason.clone());
                Err(Attempt::Failed(
                    VaultError::backend(&self.vault, false, reason).caused_by(e),
                ))
            }
            Err(e) if library_broken(&e) => Err(Attempt::Lost(e)),
            Err(e) => Err(Attempt::Failed(self.backend_error("logging in", e))),
        }
    }

    /// One attempt at `op` on a pooled session, `prepare` first on it.
    fn attempt<T>(
        &self,
        what: &str,
        prepare: &dyn Fn(&Session, u64) -> Result<(), Pkcs11Error>,
        op: &dyn Fn(&Session, u64) -> Result<T, Pkcs11Error>,
    ) -> Result<T, (u64, Attempt)> {
        let _calls = self.library.calls.read();
        let generation = self.library.generation.load(Ordering::Acquire);
        let session = self.session(generation).map_err(|a| (generation, a))?;
        match prepare(&session, generation).and_then(|()| op(&session, generation)) {
            Ok(done) => {
                self.idle.lock().push((generation, session));
                Ok(done)
            }
            Err(e) if session_lost(&e) => {
                // The idle sessions share its fate: closed with it, but those of an older
                // library generation only forgotten (their handles are not theirs any more).
                drop(session);
                self.discard_idle(generation);
                Err((generation, Attempt::Lost(e)))
            }
            Err(e) => {
                // The failed operation ended with the error; the session is reusable.
                self.idle.lock().push((generation, session));
                Err((generation, Attempt::Failed(self.backend_error(what, e))))
            }
        }
    }

    /// Run `op` on a pooled session. When the session, the login or the library is gone,
    /// the library is restarted if a fresh session cannot be had, `recover` runs on a new
    /// session (to find object handles again) and `op` is retried once.
    fn with_session<T>(
        &self,
        what: &str,
        op: impl Fn(&Session, u64) -> Result<T, Pkcs11Error>,
        recover: impl Fn(&Session, u64) -> Result<(), Pkcs11Error>,
    ) -> Result<T, VaultError> {
        let lost = match self.attempt(what, &|_, _| Ok(()), &op) {
            Ok(done) => return Ok(done),
            Err((_, Attempt::Failed(e))) => return Err(e),
            Err((generation, Attempt::Lost(e))) => (generation, e),
        };
        tracing::warn!(vault = %self.vault, error = %lost.1, "PKCS#11 session lost; retrying once on a new one");
        // A fresh session right away, or else a restarted library.
        let retried = match self.attempt(what, &recover, &op) {
            Err((generation, Attempt::Lost(e))) if library_broken(&e) => {
                self.library.restart(&self.vault, generation);
                self.attempt(what, &recover, &op)
            }
            other => other,
        };
        retried.map_err(|(_, failed)| match failed {
            Attempt::Failed(e) => e,
            Attempt::Lost(e) => self.backend_error(what, e),
        })
    }

    /// Empty the idle pool: sessions of `generation` are closed, older ones forgotten.
    fn discard_idle(&self, generation: u64) {
        for (opened_in, session) in self.idle.lock().drain(..) {
            if opened_in == generation {
                drop(session);
            } else {
                std::mem::forget(session);
            }
        }
    }

    /// A read-write session for creating keys (not pooled), and the guard that keeps the
    /// library from restarting while it is used.
    fn rw_session(&self) -> Result<(parking_lot::RwLockReadGuard<'_, ()>, Session), VaultError> {
        let calls = self.library.calls.read();
        let session = self
            .library
            .ctx
            .open_rw_session(self.slot)
            .map_err(|e| self.backend_error("opening a read-write session", e))?;
        self.log_in(&session).map_err(|a| match a {
            Attempt::Failed(e) => e,
            Attempt::Lost(e) => self.backend_error("logging in", e),
        })?;
        Ok((calls, session))
    }
}

/// A vault of keys held in a PKCS#11 token.
pub struct Pkcs11Vault {
    token: Arc<Token>,
    keys: Mutex<Vec<TokenKey>>,
    unusable: Mutex<Vec<UnusableKey>>,
}

impl fmt::Debug for Pkcs11Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Vault")
            .field("token", &self.token)
            .field("keys", &self.keys.lock().len())
            .finish()
    }
}

impl Pkcs11Vault {
    /// Load the library, find the slot, log in and find the keys. Blocking.
    fn open(vault: &str, settings: Settings) -> Result<Pkcs11Vault, OpenError> {
        if !settings.library_path.is_file() {
            return Err(library_missing(vault, &settings));
        }
        let unavailable = |what: &str, e: Pkcs11Error| OpenError::Unavailable {
            vault: vault.to_owned(),
            message: format!("{what}: {e}"),
            source: Some(Arc::new(e)),
        };
        let library = library(vault, &settings)?;
        // A library loaded before (by an earlier attempt while the token was absent) may
        // not see a token that appeared since: restarted, if no open vault uses it.
        let slot = match find_slot(vault, &library.ctx, settings.slot) {
            Err(OpenError::Unavailable { .. }) if library.users.load(Ordering::Acquire) == 0 => {
                library.restart(vault, library.generation.load(Ordering::Acquire));
                find_slot(vault, &library.ctx, settings.slot)?
            }
            other => other?,
        };
        library.users.fetch_add(1, Ordering::AcqRel);
        let token = Arc::new(Token {
            vault: vault.to_owned(),
            library,
            slot,
            pin: AuthPin::from(settings.pin.as_str()),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(settings.max_sessions)),
            max_sessions: settings.max_sessions,
            in_use: AtomicUsize::new(0),
            pin_refused: Mutex::new(None),
            login: Mutex::new(()),
        });
        let calls = token.library.calls.read();
        let generation = token.library.generation.load(Ordering::Acquire);
        let session = token.session(generation).map_err(|attempt| match attempt {
            Attempt::Failed(VaultError::Backend { message, .. })
                if token.pin_refused.lock().is_some() =>
            {
                OpenError::Config {
                    vault: vault.to_owned(),
                    key_path: format!("vaults.{vault}.config.pin"),
                    message,
                }
            }
            Attempt::Failed(other) => OpenError::Unavailable {
                vault: vault.to_owned(),
                message: other.to_string(),
                source: Some(Arc::new(other)),
            },
            Attempt::Lost(e) => unavailable("opening a session", e),
        })?;
        let found = match &settings.keys {
            Some(pairs) => configured_keys(vault, &session, pairs, generation)?,
            None => discover_keys(vault, &session, settings.search, generation)
                .map_err(|e| unavailable("listing the token's private keys", e))?,
        };
        token.idle.lock().push((generation, session));
        drop(calls);
        for unusable in &found.1 {
            tracing::warn!(vault, key = %unusable.id, reason = %unusable.reason, "PKCS#11 key skipped");
        }
        Ok(Pkcs11Vault {
            token,
            keys: Mutex::new(found.0),
            unusable: Mutex::new(found.1),
        })
    }

    fn key(&self, pkh: &PublicKeyHash) -> Result<TokenKey, VaultError> {
        self.keys
            .lock()
            .iter()
            .find(|key| key.key.pkh == *pkh)
            .cloned()
            .ok_or_else(|| VaultError::KeyNotFound {
                vault: self.token.vault.clone(),
                pkh: *pkh,
            })
    }

    /// Run `op` on the blocking pool once a session permit is free.
    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Token) -> Result<T, VaultError> + Send + 'static,
    ) -> Result<T, VaultError> {
        let permit = Arc::clone(&self.token.permits)
            .acquire_owned()
            .await
            .map_err(|e| VaultError::backend(&self.token.vault, false, e.to_string()))?;
        let token = Arc::clone(&self.token);
        let vault = self.token.vault.clone();
        tokio::task::spawn_blocking(move || {
            token.in_use.fetch_add(1, Ordering::Relaxed);
            let done = op(&token);
            token.in_use.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
            done
        })
        .await
        .map_err(|e| VaultError::backend(vault, false, format!("the PKCS#11 task failed: {e}")))?
    }

    async fn add(&self, key: TokenKey) -> VaultKey {
        let added = key.key.clone();
        self.keys.lock().push(key);
        added
    }
}

#[async_trait::async_trait]
impl Vault for Pkcs11Vault {
    fn name(&self) -> &str {
        &self.token.vault
    }

    fn driver(&self) -> &'static str {
        "pkcs11"
    }

    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        Ok(self.keys.lock().iter().map(|key| key.key.clone()).collect())
    }

    fn unusable_keys(&self) -> Vec<UnusableKey> {
        self.unusable.lock().clone()
    }

    async fn sign(
        &self,
        pkh: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        let _ = version; // tz1–tz3 sign alike in every version.
        let key = self.key(pkh)?;
        let digest = blake2b_256(message);
        self.blocking(move |token| {
            let mechanism = match key.curve {
                Curve::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                _ => Mechanism::Ecdsa,
            };
            let raw = token.with_session(
                "signing",
                |session, generation| {
                    session.sign(&mechanism, key.handle(session, generation)?, &digest)
                },
                |session, generation| key.find_again(session, generation).map(drop),
            )?;
            ec::signature(key.curve, &raw)
                .map_err(|message| VaultError::backend(&token.vault, false, message))
        })
        .await
    }

    async fn health(&self) -> Result<(), VaultError> {
        let Some(key) = self.keys.lock().first().cloned() else {
            return Ok(());
        };
        // The token answers and the login holds: read one attribute of one key.
        self.blocking(move |token| {
            token
                .with_session(
                    "the health check",
                    |session, generation| {
                        session.get_attributes(
                            key.handle(session, generation)?,
                            &[AttributeType::Sign],
                        )
                    },
                    |session, generation| key.find_again(session, generation).map(drop),
                )
                .map(drop)
        })
        .await
    }

    fn sessions(&self) -> Option<SessionUse> {
        Some(SessionUse {
            in_use: self.token.in_use.load(Ordering::Relaxed),
            idle: self.token.idle.lock().len(),
            max: self.token.max_sessions,
        })
    }

    async fn generate(&self, curve: Curve) -> Result<VaultKey, VaultError> {
        let params = ec::ec_params(curve).ok_or_else(|| self.unsupported("BLS (tz4) keys"))?;
        let created = self
            .blocking(move |token| {
                let (_calls, session) = token.rw_session()?;
                let id: [u8; 16] = rand_id();
                let mechanism = match curve {
                    Curve::Ed25519 => Mechanism::EccEdwardsKeyPairGen,
                    _ => Mechanism::EccKeyPairGen,
                };
                let key_type = ec::key_type(curve);
                let public_template = [
                    Attribute::Token(true),
                    Attribute::Verify(true),
                    Attribute::KeyType(key_type),
                    Attribute::EcParams(params.to_vec()),
                    Attribute::Id(id.to_vec()),
                ];
                let private_template = [
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sign(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::KeyType(key_type),
                    Attribute::Id(id.to_vec()),
                ];
                let (public, private) = session
                    .generate_key_pair(&mechanism, &public_template, &private_template)
                    .map_err(|e| token.backend_error("generating a key pair", e))?;
                let point = ec_point(&session, public)
                    .map_err(|e| token.backend_error("reading the new public key", e))?;
                let public_key = ec::public_key(curve, &point)
                    .map_err(|message| VaultError::backend(&token.vault, false, message))?;
                label_pair(token, &session, public_key, id, public, private)
            })
            .await?;
        Ok(self.add(created).await)
    }

    async fn import(&self, key: SecretKey) -> Result<VaultKey, VaultError> {
        let curve = key.curve();
        let params = ec::ec_params(curve).ok_or_else(|| self.unsupported("BLS (tz4) keys"))?;
        let created = self
            .blocking(move |token| {
                let (_calls, session) = token.rw_session()?;
                let id: [u8; 16] = rand_id();
                let public_key = key.public_key();
                let key_type = ec::key_type(curve);
                let secret = key.expose_secret_bytes();
                let private_template = [
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(key_type),
                    Attribute::EcParams(params.to_vec()),
                    Attribute::Value(secret.to_vec()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sign(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Id(id.to_vec()),
                ];
                let public_template = [
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(key_type),
                    Attribute::EcParams(params.to_vec()),
                    Attribute::EcPoint(ec::ec_point(&public_key)),
                    Attribute::Token(true),
                    Attribute::Verify(true),
                    Attribute::Id(id.to_vec()),
                ];
                let private = session
                    .create_object(&private_template)
                    .map_err(|e| token.backend_error("importing the private key", e))?;
                let public = session
                    .create_object(&public_template)
                    .map_err(|e| token.backend_error("importing the public key", e))?;
                label_pair(token, &session, public_key, id, public, private)
            })
            .await?;
        Ok(self.add(created).await)
    }
}

/// Label both objects of a new pair with the key's address, so operators and `keys`
/// locators can name it, and return it.
fn label_pair(
    token: &Token,
    session: &Session,
    public_key: PublicKey,
    id: [u8; 16],
    public: ObjectHandle,
    private: ObjectHandle,
) -> Result<TokenKey, VaultError> {
    let label = public_key.hash().to_b58check();
    for object in [public, private] {
        session
            .update_attributes(object, &[Attribute::Label(label.clone().into_bytes())])
            .map_err(|e| token.backend_error("labelling the new key", e))?;
    }
    let curve = public_key.curve();
    Ok(TokenKey::new(
        VaultKey::new(public_key, &token.vault).with_label(label.clone()),
        curve,
        Locator {
            label: Some(label),
            id: Some(id.to_vec()),
        },
        token.library.generation.load(Ordering::Acquire),
        private,
    ))
}

fn rand_id() -> [u8; 16] {
    use rand_core::RngCore;
    let mut id = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut id);
    id
}

/// The library at `settings.library_path`, loaded and initialised once per process: vaults
/// on two slots of one HSM share it, and it is never finalised (that would end the other
/// vault's sessions).
fn library(vault: &str, settings: &Settings) -> Result<Arc<Library>, OpenError> {
    static LOADED: Mutex<Vec<(std::path::PathBuf, Arc<Library>)>> = Mutex::new(Vec::new());
    let path = std::fs::canonicalize(&settings.library_path)
        .unwrap_or_else(|_| settings.library_path.clone());
    let mut loaded = LOADED.lock();
    if let Some((_, library)) = loaded.iter().find(|(loaded, _)| *loaded == path) {
        return Ok(Arc::clone(library));
    }
    let ctx = Pkcs11::new(&path).map_err(|e| OpenError::Config {
        vault: vault.to_owned(),
        key_path: format!("vaults.{vault}.config.library_path"),
        message: format!(
            "{} is not a PKCS#11 library that can be loaded: {e}",
            path.display()
        ),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(OpenError::Unavailable {
                vault: vault.to_owned(),
                message: format!("initialising the PKCS#11 library: {e}"),
                source: Some(Arc::new(e)),
            })
        }
    }
    let library = Arc::new(Library {
        ctx,
        calls: RwLock::new(()),
        generation: AtomicU64::new(0),
        restarted_at: Mutex::new(None),
        users: AtomicUsize::new(0),
    });
    loaded.push((path, Arc::clone(&library)));
    Ok(library)
}

/// The slot to use: the configured one, which must hold an initialised token, or the
/// first slot that does.
fn find_slot(vault: &str, ctx: &Pkcs11, choice: SlotChoice) -> Result<Slot, OpenError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| OpenError::Unavailable {
            vault: vault.to_owned(),
            message: format!("listing the token slots: {e}"),
            source: Some(Arc::new(e)),
        })?;
    // A slot whose token cannot say what it is (broken, being removed) is not ours to
    // fail on: the others are still looked at.
    let initialized = |slot: &Slot| {
        ctx.get_token_info(*slot)
            .is_ok_and(|info| info.token_initialized())
    };
    match choice {
        SlotChoice::FirstInitialized => {
            slots
                .iter()
                .copied()
                .find(initialized)
                .ok_or_else(|| OpenError::Unavailable {
                    vault: vault.to_owned(),
                    message: "no slot holds an initialised token (is the token present? for \
                          SoftHSM2: is SOFTHSM2_CONF pointing at its configuration?)"
                        .to_owned(),
                    source: None,
                })
        }
        SlotChoice::Id(id) => match slots.iter().copied().find(|slot| slot.id() == id) {
            Some(slot) => match ctx.get_token_info(slot) {
                Ok(info) if info.token_initialized() => Ok(slot),
                // A wrong slot, not a token that went away: the operator must fix it.
                Ok(_) => Err(OpenError::Config {
                    vault: vault.to_owned(),
                    key_path: format!("vaults.{vault}.config.slot"),
                    message: format!("the token in slot {id:#x} is not initialised"),
                }),
                Err(e) => Err(OpenError::Unavailable {
                    vault: vault.to_owned(),
                    message: format!("the token in slot {id:#x} does not answer: {e}"),
                    source: Some(Arc::new(e)),
                }),
            },
            None => {
                let known = slots
                    .iter()
                    .filter(|slot| initialized(slot))
                    .map(|slot| format!("{:#x}", slot.id()))
                    .collect::<Vec<_>>()
                    .join(", ");
                Err(OpenError::Config {
                    vault: vault.to_owned(),
                    key_path: format!("vaults.{vault}.config.slot"),
                    message: format!(
                        "slot {id:#x} holds no initialised token; slots with one: {}",
                        if known.is_empty() { "none" } else { &known }
                    ),
                })
            }
        },
    }
}

fn ec_point(session: &Session, object: ObjectHandle) -> Result<Vec<u8>, Pkcs11Error> {
    let attributes = session.get_attributes(object, &[AttributeType::EcPoint])?;
    Ok(attributes
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(point) => Some(point),
            _ => None,
        })
        .unwrap_or_default())
}

/// The template that finds objects of `class` matching `locator`.
fn template(class: ObjectClass, locator: &Locator) -> Vec<Attribute> {
    let mut template = vec![Attribute::Class(class)];
    if let Some(label) = &locator.label {
        template.push(Attribute::Label(label.clone().into_bytes()));
    }
    if let Some(id) = &locator.id {
        template.push(Attribute::Id(id.clone()));
    }
    template
}

/// The one object of `class` matching `locator`: `Ok(None)` when none does.
fn find_one(
    session: &Session,
    class: ObjectClass,
    locator: &Locator,
) -> Result<Option<ObjectHandle>, Pkcs11Error> {
    let found = session.find_objects(&template(class, locator))?;
    Ok(match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    })
}

/// What a private key object says of itself.
struct PrivateKeyInfo {
    curve: Result<Curve, String>,
    can_sign: bool,
    label: Option<String>,
    id: Option<Vec<u8>>,
    /// `CKA_EC_POINT` on the private object (AWS CloudHSM), if present.
    ec_point: Option<Vec<u8>>,
}

fn private_key_info(
    session: &Session,
    object: ObjectHandle,
) -> Result<PrivateKeyInfo, Pkcs11Error> {
    let wanted = [
        AttributeType::KeyType,
        AttributeType::EcParams,
        AttributeType::Sign,
        AttributeType::Label,
        AttributeType::Id,
    ];
    let mut info = PrivateKeyInfo {
        curve: Err("not an elliptic-curve key".to_owned()),
        can_sign: false,
        label: None,
        id: None,
        ec_point: None,
    };
    let mut key_type = None;
    let mut params = None;
    for attribute in session.get_attributes(object, &wanted)? {
        match attribute {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::EcParams(p) => params = Some(p),
            Attribute::Sign(sign) => info.can_sign = sign,
            Attribute::Label(label) => {
                info.label =
                    Some(String::from_utf8_lossy(&label).into_owned()).filter(|l| !l.is_empty())
            }
            Attribute::Id(id) => info.id = Some(id).filter(|id| !id.is_empty()),
            _ => {}
        }
    }
    // Asked apart: tokens without it on private keys fail the whole request otherwise.
    info.ec_point = ec_point(session, object).ok().filter(|p| !p.is_empty());
    info.curve = match (key_type, params) {
        (Some(t), Some(params)) if t == KeyType::EC || t == KeyType::EC_EDWARDS => {
            ec::curve_of(&params)
        }
        (Some(t), _) => Err(format!("key type {t} is not an elliptic-curve key")),
        (None, _) => Err("the token does not say the key's type".to_owned()),
    };
    Ok(info)
}

fn describe(info: &PrivateKeyInfo, object: ObjectHandle) -> String {
    match (&info.label, &info.id) {
        (Some(label), Some(id)) => format!("label `{label}` id {}", hex::encode(id)),
        (Some(label), None) => format!("label `{label}`"),
        (None, Some(id)) => format!("id {}", hex::encode(id)),
        (None, None) => format!("object {object}"),
    }
}

type Found = (Vec<TokenKey>, Vec<UnusableKey>);

/// Every private key of the token, each paired with its public key as `search` says;
/// those that cannot be used are listed with the reason.
fn discover_keys(
    vault: &str,
    session: &Session,
    search: SearchOptions,
    generation: u64,
) -> Result<Found, Pkcs11Error> {
    let mut keys = Vec::new();
    let mut unusable = Vec::new();
    for object in session.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])? {
        let info = private_key_info(session, object)?;
        let id = describe(&info, object);
        let skip = |reason: String| UnusableKey {
            id: id.clone(),
            reason,
        };
        let curve = match (&info.curve, info.can_sign) {
            (Ok(curve), true) => *curve,
            (Ok(_), false) => {
                unusable.push(skip("the key may not sign (CKA_SIGN is false)".to_owned()));
                continue;
            }
            (Err(reason), _) => {
                unusable.push(skip(reason.clone()));
                continue;
            }
        };
        let mut point = None;
        if search.match_label || search.match_id {
            let locator = Locator {
                label: info.label.clone().filter(|_| search.match_label),
                id: info.id.clone().filter(|_| search.match_id),
            };
            if locator.label.is_some() || locator.id.is_some() {
                if let Some(public) = find_one(session, ObjectClass::PUBLIC_KEY, &locator)? {
                    point = Some(ec_point(session, public)?);
                }
            }
        }
        if point.is_none() && search.extended_private {
            point = info.ec_point.clone();
        }
        let Some(point) = point else {
            unusable.push(skip(
                "no public key found for it (no public key object with its label \
                 or id, and no CKA_EC_POINT on the private key)"
                    .to_owned(),
            ));
            continue;
        };
        match ec::public_key(curve, &point) {
            Ok(public_key) => keys.push(token_key(vault, public_key, &info, object, generation)),
            Err(reason) => unusable.push(skip(reason)),
        }
    }
    Ok((keys, unusable))
}

fn token_key(
    vault: &str,
    public_key: PublicKey,
    info: &PrivateKeyInfo,
    object: ObjectHandle,
    generation: u64,
) -> TokenKey {
    let curve = public_key.curve();
    let mut key = VaultKey::new(public_key, vault);
    if let Some(label) = &info.label {
        key = key.with_label(label.clone());
    } else if let Some(id) = &info.id {
        key = key.with_label(hex::encode(id));
    }
    TokenKey::new(
        key,
        curve,
        Locator {
            label: info.label.clone(),
            id: info.id.clone(),
        },
        generation,
        object,
    )
}

/// The configured key pairs: each must be found exactly once and be usable, or the vault
/// does not open (the operator named it, and expects it to sign).
fn configured_keys(
    vault: &str,
    session: &Session,
    pairs: &[KeyPairSetting],
    generation: u64,
) -> Result<Found, OpenError> {
    let config_error = |key_path: &str, message: String| OpenError::Config {
        vault: vault.to_owned(),
        key_path: key_path.to_owned(),
        message,
    };
    let token_error = |e: Pkcs11Error| OpenError::Unavailable {
        vault: vault.to_owned(),
        message: format!("reading the token's keys: {e}"),
        source: Some(Arc::new(e)),
    };
    let mut keys = Vec::new();
    for pair in pairs {
        let private_path = format!("{}.private", pair.key_path);
        let found = session
            .find_objects(&template(ObjectClass::PRIVATE_KEY, &pair.private))
            .map_err(token_error)?;
        let object = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(config_error(
                    &private_path,
                    format!("no private key with {} in the token", pair.private),
                ))
            }
            many => {
                return Err(config_error(
                    &private_path,
                    format!(
                        "{} private keys have {}; name one (give both a label and an id)",
                        many.len(),
                        pair.private
                    ),
                ))
            }
        };
        let info = private_key_info(session, object).map_err(token_error)?;
        let curve = info.curve.clone().map_err(|reason| {
            config_error(
                &private_path,
                format!("cannot sign with this key: {reason}"),
            )
        })?;
        if !info.can_sign {
            return Err(config_error(
                &private_path,
                "the key may not sign (CKA_SIGN is false)".to_owned(),
            ));
        }
        let public_key = match &pair.public {
            PublicSource::Value(public_key) if public_key.curve() == curve => public_key.clone(),
            PublicSource::Value(public_key) => {
                return Err(config_error(
                    &format!("{}.public_value", pair.key_path),
                    format!(
                        "is a {} key but the token's key is {curve}",
                        public_key.curve()
                    ),
                ))
            }
            PublicSource::PrivateObject => {
                let point = info.ec_point.clone().ok_or_else(|| {
                    config_error(
                        &format!("{}.extended_private", pair.key_path),
                        "the private key object has no CKA_EC_POINT".to_owned(),
                    )
                })?;
                ec::public_key(curve, &point)
                    .map_err(|reason| config_error(&private_path, reason))?
            }
            PublicSource::Object(locator) => {
                let public_path = format!("{}.public", pair.key_path);
                let found = session
                    .find_objects(&template(ObjectClass::PUBLIC_KEY, locator))
                    .map_err(token_error)?;
                let object = match found.as_slice() {
                    [one] => *one,
                    [] => return Err(config_error(&public_path, format!("no public key with {locator} in the token; give `public` or `public_value`"))),
                    many => return Err(config_error(&public_path, format!("{} public keys have {locator}; name one", many.len()))),
                };
                let point = ec_point(session, object).map_err(token_error)?;
                ec::public_key(curve, &point)
                    .map_err(|reason| config_error(&public_path, reason))?
            }
        };
        keys.push(token_key(vault, public_key, &info, object, generation));
    }
    Ok((keys, Vec::new()))
}
