//! The `file` driver: keys from an octez-client / ECAD Signatory secret key file.
//!
//! ```yaml
//! vaults:
//!   local:
//!     driver: file
//!     config:
//!       file: /etc/signatory/secret.json   # ECAD also accepts `config: /etc/…/secret.json`
//!       password_env: SIGNATORY_KEY_PASSWORD  # optional: password of encrypted keys
//!       password_file: /run/secrets/key_password  # optional, instead of password_env
//!       prompt: true                       # default: ask on the terminal if there is one
//! ```
//!
//! The file (and a password file) must be private to the signer's user (`chmod 600`).
//! Every key is parsed, and encrypted ones decrypted, once at start; the secrets then live
//! only in memory that is wiped on drop. Without `password_env`/`password_file`, encrypted
//! keys are unlocked by asking on the terminal, as ECAD Signatory does; under a service
//! manager there is no terminal, so such a key stops the start with a message saying how
//! to provide the password.
//!
//! `generate` and `import` add the key to the file (rewritten atomically, mode 0600):
//! encrypted with the configured password if there is one; unencrypted only when the file
//! holds no encrypted key, so a protected file is never given an unprotected key.

use crate::error::OpenError;
use crate::keyring::Keyring;
use crate::password::EnvPasswords;
use crate::password::{PasswordSource, Prompter, TerminalPrompter};
use crate::private_file;
use crate::sealed::{DataKey, SealHeader, SealedBy};
use crate::secret_file::{self, Entry, KeyFile, SecretText, Stored};
use serde::Deserialize;
use signatory_config::DriverSettings;
use signatory_signer::vault::{Vault, VaultError, VaultKey};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tezos_crypto::{encrypted, CryptoError, SecretKey};
use zeroize::Zeroizing;

/// How many times the terminal asks for one key's password.
const PROMPT_ATTEMPTS: usize = 3;

/// Where a file vault's keys are and how to unlock them.
#[derive(Debug, Clone)]
pub struct FileVaultOptions {
    pub path: PathBuf,
    pub password: PasswordSource,
    /// Ask on the terminal for the password of encrypted keys when no password source is
    /// configured and the signer runs in a terminal.
    pub prompt: bool,
}

impl FileVaultOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileVaultOptions {
            path: path.into(),
            password: PasswordSource::None,
            prompt: true,
        }
    }

    /// Parse the driver's `config` value; errors name `vaults.<vault>.config…`.
    pub fn from_settings(vault: &str, settings: &serde_yaml_ng::Value) -> Result<Self, OpenError> {
        #[derive(Deserialize)]
        #[serde(
            deny_unknown_fields,
            expecting = "a mapping with `file` and optionally `password_env`, `password_file`, `prompt`"
        )]
        struct Settings {
            file: Option<PathBuf>,
            #[serde(default)]
            password_env: Option<String>,
            #[serde(default)]
            password_file: Option<PathBuf>,
            #[serde(default, deserialize_with = "bool_or_word")]
            prompt: Option<bool>,
        }
        let base = format!("vaults.{vault}.config");
        let config_error = |key_path: String, message: String| OpenError::Config {
            vault: vault.to_owned(),
            key_path,
            message,
        };
        let settings =
            match settings {
                serde_yaml_ng::Value::String(path) => Settings {
                    file: Some(PathBuf::from(path)),
                    password_env: None,
                    password_file: None,
                    prompt: None,
                },
                serde_yaml_ng::Value::Null => return Err(config_error(
                    base,
                    "is missing; give the secret key file: `config: {file: /path/to/secret.json}`"
                        .to_owned(),
                )),
                other => crate::error::parse_settings(vault, other)?,
            };
        let file = match settings.file {
            Some(file) if !file.as_os_str().is_empty() => file,
            _ => {
                return Err(config_error(
                    format!("{base}.file"),
                    "is missing; give the path of the secret key file".to_owned(),
                ))
            }
        };
        let password = match (settings.password_env, settings.password_file) {
            (Some(_), Some(_)) => {
                return Err(config_error(
                    base,
                    "give either `password_env` or `password_file`, not both".to_owned(),
                ))
            }
            (Some(name), None) => PasswordSource::Env(name),
            (None, Some(path)) => PasswordSource::File(path),
            (None, None) => PasswordSource::None,
        };
        Ok(FileVaultOptions {
            path: file,
            password,
            prompt: settings.prompt.unwrap_or(true),
        })
    }
}

/// The `file` driver of the registry.
pub(crate) struct FileDriver;

#[async_trait::async_trait]
impl crate::registry::Driver for FileDriver {
    fn name(&self) -> &'static str {
        "file"
    }

    fn check_settings(&self, vault: &str, settings: &DriverSettings) -> Result<(), OpenError> {
        FileVaultOptions::from_settings(vault, settings).map(drop)
    }

    fn secret_variables(&self, vault: &str, settings: &DriverSettings) -> Vec<String> {
        match FileVaultOptions::from_settings(vault, settings) {
            Ok(FileVaultOptions {
                password: PasswordSource::Env(name),
                ..
            }) => vec![name],
            _ => Vec::new(),
        }
    }

    fn preflight(
        &self,
        vault: &str,
        settings: &DriverSettings,
    ) -> Option<Result<String, OpenError>> {
        let checked = FileVaultOptions::from_settings(vault, settings).and_then(|options| {
            FileVault::check_key_file(vault, &options)
                .map(|()| format!("key file {}", options.path.display()))
        });
        Some(checked)
    }

    async fn open(
        &self,
        vault: &str,
        settings: &DriverSettings,
        passwords: &EnvPasswords,
    ) -> Result<Arc<dyn Vault>, OpenError> {
        self.open_among(vault, settings, passwords, &[]).await
    }

    /// A sealed key file is unsealed by the vault it names, which must be in `opened`;
    /// until it is, this vault is unavailable (and tried again).
    async fn open_among(
        &self,
        vault: &str,
        settings: &DriverSettings,
        passwords: &EnvPasswords,
        opened: &[Arc<dyn Vault>],
    ) -> Result<Arc<dyn Vault>, OpenError> {
        let mut options = FileVaultOptions::from_settings(vault, settings)?;
        passwords.apply(&mut options);
        let header = {
            let (name, path) = (vault.to_owned(), options.path.clone());
            tokio::task::spawn_blocking(move || read_key_file(&name, &path).map(|f| f.sealed))
                .await
                .map_err(|e| OpenError::Internal {
                    vault: vault.to_owned(),
                    message: e.to_string(),
                })??
        };
        let data_key = match header {
            Some(header) => Some(unseal_data_key(vault, &options.path, &header, opened).await?),
            None => None,
        };
        let name = vault.to_owned();
        crate::registry::open_blocking(vault, move || {
            FileVault::open_sealed(&name, &options, data_key)
        })
        .await
    }

    /// A new signer can start from `generate`: a key file that does not exist yet is
    /// created empty (private to the user).
    fn prepare_for_writing(&self, vault: &str, settings: &DriverSettings) -> Result<(), OpenError> {
        let options = FileVaultOptions::from_settings(vault, settings)?;
        create_empty_key_file(&options.path).map_err(|source| OpenError::Io {
            vault: vault.to_owned(),
            action: "create the empty key file",
            path: options.path.clone(),
            source: Arc::new(source),
        })
    }

    fn deadline(&self) -> Option<std::time::Duration> {
        None
    }
}

/// The data key of the sealed key file of vault `vault`, unsealed by the vault its header
/// names: a sealing vault not open (yet) or failing transiently leaves this vault
/// unavailable; a refusal or a wrong key stops it.
async fn unseal_data_key(
    vault: &str,
    path: &Path,
    header: &SealHeader,
    opened: &[Arc<dyn Vault>],
) -> Result<DataKey, OpenError> {
    let by = &header.sealed_by;
    let key_file_error = |message: String| OpenError::KeyFile {
        vault: vault.to_owned(),
        path: path.to_owned(),
        message,
    };
    let Some(sealing) = opened.iter().find(|v| v.name() == by.vault) else {
        return Err(OpenError::NeedsVault {
            vault: vault.to_owned(),
            needs: by.vault.clone(),
        });
    };
    let sealer = sealing.sealer().ok_or_else(|| {
        key_file_error(format!(
            "it is sealed by vault `{}`, whose driver `{}` cannot unseal",
            by.vault,
            sealing.driver()
        ))
    })?;
    let sealed = hex::decode(&header.data_key)
        .map_err(|_| key_file_error("its `data_key` is not hex".to_owned()))?;
    match sealer.unseal(&by.key, &sealed).await {
        Ok(unsealed) => DataKey::from_unsealed(&unsealed).map_err(|e| key_file_error(e.to_owned())),
        Err(e) if e.is_transient() => Err(OpenError::Unavailable {
            vault: vault.to_owned(),
            message: format!("vault `{}` cannot unseal its key file now", by.vault),
            source: Some(Arc::new(e)),
        }),
        Err(e) => Err(key_file_error(format!(
            "vault `{}` did not unseal its data key with key `{}`: {}",
            by.vault,
            by.key,
            signatory_signer::vault::error_chain(&e)
        ))),
    }
}

/// Make the key file of vault `vault` a sealed one, its data key sealed by `sealing`
/// under `key`: a missing file, or one holding no key, gets a new data key; a file already
/// sealed by `sealing` is kept. A file holding keys is refused (they would stay in clear
/// or under a password beside the sealed ones). The new data key is unsealed again before
/// the file is written, so a sealing key that can encrypt but not decrypt is caught here
/// and not at the next start.
pub async fn seal_key_file(
    vault: &str,
    settings: &DriverSettings,
    sealing: &Arc<dyn Vault>,
    key: &str,
) -> Result<(), OpenError> {
    let options = FileVaultOptions::from_settings(vault, settings)?;
    let path = options.path.clone();
    let key_file_error = |message: String| OpenError::KeyFile {
        vault: vault.to_owned(),
        path: path.clone(),
        message,
    };
    let existing = if path.exists() {
        Some(read_key_file(vault, &path)?)
    } else {
        None
    };
    match existing.as_ref().map(|f| (&f.sealed, f.entries.len())) {
        Some((Some(header), _)) if header.sealed_by.vault == sealing.name() => return Ok(()),
        Some((Some(header), _)) => {
            return Err(key_file_error(format!(
                "it is already sealed by vault `{}`",
                header.sealed_by.vault
            )))
        }
        Some((None, held)) if held > 0 => {
            return Err(key_file_error(format!(
                "it holds {held} key(s) that are not sealed; seal keys into a new file"
            )))
        }
        _ => {}
    }
    let sealer = sealing.sealer().ok_or_else(|| OpenError::Config {
        vault: vault.to_owned(),
        key_path: "--seal-with".to_owned(),
        message: format!(
            "vault `{}` (driver `{}`) cannot seal data keys",
            sealing.name(),
            sealing.driver()
        ),
    })?;
    let data_key = DataKey::generate();
    let failed = |what: &str, e: VaultError| {
        key_file_error(format!(
            "vault `{}` did not {what} the data key with key `{key}`: {}",
            sealing.name(),
            signatory_signer::vault::error_chain(&e)
        ))
    };
    let sealed = sealer
        .seal(key, data_key.expose())
        .await
        .map_err(|e| failed("seal", e))?;
    let unsealed = sealer
        .unseal(key, &sealed)
        .await
        .map_err(|e| failed("unseal", e))?;
    if unsealed.as_slice() != data_key.expose() {
        return Err(key_file_error(format!(
            "vault `{}` unsealed another data key than it sealed",
            sealing.name()
        )));
    }
    let file = KeyFile {
        sealed: Some(SealHeader {
            sealed_by: SealedBy {
                vault: sealing.name().to_owned(),
                key: key.to_owned(),
            },
            data_key: hex::encode(&sealed),
        }),
        entries: Vec::new(),
    };
    let bytes = secret_file::serialize_file(&file);
    private_file::replace(&path, &bytes)
        .map_err(|e| private_file::io_error(vault, "write the sealed key file", &path, e))?;
    tracing::info!(vault, path = %path.display(), sealed_by = sealing.name(), "created a sealed key file");
    Ok(())
}

/// Create `path` holding an empty key list, mode 0600; an existing file is kept.
fn create_empty_key_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(b"[]\n").and_then(|()| file.sync_all())?;
            tracing::info!(path = %path.display(), "created an empty key file");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A vault of keys from a secret key file, held decrypted in memory.
pub struct FileVault {
    keys: Keyring,
    path: PathBuf,
    /// The password new keys are encrypted with, when one is configured.
    write_password: Option<Zeroizing<String>>,
    /// Whether the file holds encrypted keys (then new keys are never written in clear).
    holds_encrypted: bool,
    /// The data key of a sealed key file: new keys are sealed with it.
    sealing: Option<DataKey>,
    /// One rewrite of the file at a time.
    write_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for FileVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileVault")
            .field("name", &self.keys.vault())
            .field("path", &self.path)
            .field("keys", &self.keys)
            .field(
                "write_password",
                &self.write_password.as_ref().map(|_| "REDACTED"),
            )
            .finish()
    }
}

impl FileVault {
    /// What `open` checks before it asks for any password: the key file exists, can be read
    /// and is private to its owner.
    pub fn check_key_file(name: &str, options: &FileVaultOptions) -> Result<(), OpenError> {
        private_file::open(name, &options.path, "read the secret key file").map(drop)
    }

    /// Read, check and decrypt the key file. Blocking: it reads files, may ask on the
    /// terminal, and each encrypted key costs a PBKDF2 derivation.
    pub fn open(name: &str, options: &FileVaultOptions) -> Result<FileVault, OpenError> {
        Self::open_sealed(name, options, None)
    }

    /// [`FileVault::open`] for a file that may be sealed, with its data key unsealed.
    fn open_sealed(
        name: &str,
        options: &FileVaultOptions,
        data_key: Option<DataKey>,
    ) -> Result<FileVault, OpenError> {
        let prompter: &dyn Prompter = if options.prompt {
            &TerminalPrompter
        } else {
            &crate::password::NoPrompter
        };
        Self::open_with(
            name,
            options,
            &|var| std::env::var(var).ok(),
            prompter,
            data_key,
        )
    }

    /// [`FileVault::open`] with the password lookup and prompter given, and the data key of
    /// a sealed key file already unsealed.
    pub(crate) fn open_with(
        name: &str,
        options: &FileVaultOptions,
        lookup: &dyn Fn(&str) -> Option<String>,
        prompter: &dyn Prompter,
        data_key: Option<DataKey>,
    ) -> Result<FileVault, OpenError> {
        let path = &options.path;
        let file = read_key_file(name, path)?;
        let key_file_error = |message: String| OpenError::KeyFile {
            vault: name.to_owned(),
            path: path.clone(),
            message,
        };
        if let (Some(header), None) = (&file.sealed, &data_key) {
            return Err(key_file_error(format!(
                "it is sealed by vault `{}`, which must be open to unseal it",
                header.sealed_by.vault
            )));
        }
        let entries = file.entries;
        let configured = options.password.read(name, lookup)?;
        let mut unlocker = Unlocker {
            vault: name,
            path,
            configured: configured.as_ref(),
            prompted: Vec::new(),
            prompter,
        };
        let keys = Keyring::new(name);
        let mut holds_encrypted = false;
        for entry in &entries {
            let label = &entry.name;
            let key = match secret_file::classify(&entry.value.0) {
                Stored::Plain(text) => {
                    SecretKey::from_b58check(text).map_err(|source| OpenError::Key {
                        vault: name.to_owned(),
                        path: path.clone(),
                        label: label.clone(),
                        source,
                    })?
                }
                Stored::Encrypted(text) => {
                    holds_encrypted = true;
                    unlocker.decrypt(label, text)?
                }
                Stored::Sealed(text) => {
                    let data_key = data_key.as_ref().ok_or_else(|| {
                        key_file_error(format!(
                            "key `{label}` is sealed but the file has no seal header"
                        ))
                    })?;
                    let opened = data_key
                        .open(text)
                        .map_err(|e| key_file_error(format!("key `{label}`: {e}")))?;
                    SecretKey::from_b58check(&opened).map_err(|source| OpenError::Key {
                        vault: name.to_owned(),
                        path: path.clone(),
                        label: label.clone(),
                        source,
                    })?
                }
                Stored::Elsewhere(scheme) => {
                    tracing::warn!(
                        vault = name,
                        key = %label,
                        scheme,
                        "skipping a key that is not stored in the file"
                    );
                    continue;
                }
            };
            let pkh = key.public_key().hash();
            if !keys.insert(label.clone(), key) {
                tracing::warn!(vault = name, key = %label, %pkh, "skipping a duplicate of a key already loaded");
            }
        }
        if keys.len() == 0 {
            tracing::warn!(vault = name, path = %path.display(), "the secret key file holds no usable key");
        }
        Ok(FileVault {
            keys,
            path: path.clone(),
            write_password: configured,
            holds_encrypted,
            sealing: data_key,
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Add `key` to the file and to memory; a key already held is returned as it is.
    async fn store(&self, key: SecretKey) -> Result<VaultKey, VaultError> {
        let pkh = key.public_key().hash();
        let _writing = self.write_lock.lock().await;
        if let Some(existing) = self.keys.key(&pkh) {
            return Ok(existing);
        }
        let value = match (&self.sealing, &self.write_password, self.holds_encrypted) {
            (Some(data_key), _, _) => data_key
                .seal(key.to_b58check().as_str())
                .map_err(|e| self.write_failed(e.to_owned()))?,
            (None, Some(password), _) => {
                let password = password.clone();
                let key = key.clone();
                // PBKDF2 with 32768 rounds takes tens of milliseconds.
                tokio::task::spawn_blocking(move || {
                    Zeroizing::new(format!(
                        "encrypted:{}",
                        encrypted::encrypt(&key, password.as_bytes())
                    ))
                })
                .await
                .map_err(|e| self.write_failed(e.to_string()))?
            }
            (None, None, true) => {
                return Err(VaultError::Locked {
                    vault: self.name().to_owned(),
                    key: pkh.to_string(),
                    hint: format!(
                        "{} holds encrypted keys and no password is configured to encrypt a new \
                         one; set `password_env` or `password_file` in the vault's config",
                        self.path.display()
                    ),
                })
            }
            (None, None, false) => {
                Zeroizing::new(format!("unencrypted:{}", key.to_b58check().as_str()))
            }
        };
        let vault = self.name().to_owned();
        let path = self.path.clone();
        let label = pkh.to_string();
        let entry_label = label.clone();
        tokio::task::spawn_blocking(move || append_entry(&vault, &path, entry_label, value))
            .await
            .map_err(|e| self.write_failed(e.to_string()))?
            .map_err(|e| self.write_failed(e.to_string()))?;
        self.keys.insert(label, key);
        self.keys
            .key(&pkh)
            .ok_or_else(|| self.write_failed("the key vanished after it was stored".to_owned()))
    }

    fn write_failed(&self, message: String) -> VaultError {
        VaultError::backend(
            self.name().to_owned(),
            false,
            format!("cannot add the key to {}: {message}", self.path.display()),
        )
    }
}

fn read_key_file(vault: &str, path: &Path) -> Result<KeyFile, OpenError> {
    let mut file = private_file::open(vault, path, "read the secret key file")?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        // Sized to the file so the buffer does not reallocate (leaving unwiped copies).
        file.metadata()
            .map_or(4096, |m| {
                usize::try_from(m.len()).unwrap_or(0).saturating_add(1)
            })
            .min(1 << 20),
    ));
    file.read_to_end(&mut bytes)
        .map_err(|e| private_file::io_error(vault, "read the secret key file", path, e))?;
    secret_file::parse(&bytes).map_err(|message| OpenError::KeyFile {
        vault: vault.to_owned(),
        path: path.to_owned(),
        message,
    })
}

/// Re-read the file (it may have been edited since start), add one entry, replace it.
fn append_entry(
    vault: &str,
    path: &Path,
    label: String,
    value: Zeroizing<String>,
) -> Result<(), OpenError> {
    let mut file = read_key_file(vault, path)?;
    file.entries.push(Entry {
        name: label,
        value: SecretText(value),
    });
    let bytes = secret_file::serialize_file(&file);
    private_file::replace(path, &bytes)
        .map_err(|e| private_file::io_error(vault, "rewrite the secret key file", path, e))
}

/// Decrypts encrypted entries with the configured password, or with passwords asked on
/// the terminal (trying those already given first: one password often opens every key).
struct Unlocker<'a> {
    vault: &'a str,
    path: &'a Path,
    configured: Option<&'a Zeroizing<String>>,
    prompted: Vec<Zeroizing<String>>,
    prompter: &'a dyn Prompter,
}

impl Unlocker<'_> {
    fn decrypt(&mut self, label: &str, esk: &str) -> Result<SecretKey, OpenError> {
        if let Some(password) = self.configured {
            return encrypted::decrypt(esk, password.as_bytes()).map_err(|e| self.error(label, e));
        }
        for password in &self.prompted {
            match encrypted::decrypt(esk, password.as_bytes()) {
                Ok(key) => return Ok(key),
                Err(CryptoError::BadPassword) => continue,
                Err(e) => return Err(self.error(label, e)),
            }
        }
        let prompt = format!("Password for key `{label}` of vault `{}`: ", self.vault);
        for _ in 0..PROMPT_ATTEMPTS {
            let Some(password) = self.prompter.ask(&prompt) else {
                return Err(OpenError::Locked {
                    vault: self.vault.to_owned(),
                    label: label.to_owned(),
                    hint: "set `password_env` or `password_file` in the vault's config, or start \
                           the signer in a terminal to be asked"
                        .to_owned(),
                });
            };
            match encrypted::decrypt(esk, password.as_bytes()) {
                Ok(key) => {
                    self.prompted.push(password);
                    return Ok(key);
                }
                Err(CryptoError::BadPassword) => {
                    tracing::warn!(vault = self.vault, key = label, "wrong password");
                }
                Err(e) => return Err(self.error(label, e)),
            }
        }
        Err(self.error(label, CryptoError::BadPassword))
    }

    fn error(&self, label: &str, e: CryptoError) -> OpenError {
        match e {
            CryptoError::BadPassword => OpenError::BadPassword {
                vault: self.vault.to_owned(),
                path: self.path.to_owned(),
                label: label.to_owned(),
            },
            source => OpenError::Key {
                vault: self.vault.to_owned(),
                path: self.path.to_owned(),
                label: label.to_owned(),
                source,
            },
        }
    }
}

crate::keyring::keyring_vault!(FileVault, "file");

/// A YAML boolean, or the string `true`/`false`: a value taken from the environment
/// (`prompt: ${PROMPT}`) arrives as a string and is never re-read as YAML.
fn bool_or_word<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    struct BoolOrWord;
    impl serde::de::Visitor<'_> for BoolOrWord {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a boolean (true or false)")
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                // The text is not echoed: it may have come from the environment.
                _ => Err(E::custom("expected a boolean (true or false)")),
            }
        }
    }
    deserializer.deserialize_any(BoolOrWord)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_file_is_private_and_an_existing_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.json");
        create_empty_key_file(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[]\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(&path, "[{\"name\":\"a\",\"value\":\"x\"}]").unwrap();
        create_empty_key_file(&path).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("\"a\""));
    }
    use std::cell::RefCell;
    use std::io::Write;
    use tezos_crypto::{Curve, PublicKeyHash};

    #[test]
    fn prompt_is_read_from_a_boolean_or_the_words_true_and_false() {
        let parse = |yaml: &str| {
            let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
            FileVaultOptions::from_settings("local", &value)
        };
        // A quoted word is what an expanded `${PROMPT}` is after parsing.
        assert!(!parse("{file: /k.json, prompt: 'false'}").unwrap().prompt);
        assert!(parse("{file: /k.json, prompt: 'true'}").unwrap().prompt);
        assert!(!parse("{file: /k.json, prompt: false}").unwrap().prompt);
        assert!(parse("{file: /k.json}").unwrap().prompt);
        let refused = parse("{file: /k.json, prompt: 'secret-ish'}").unwrap_err();
        assert!(!refused.to_string().contains("secret-ish"), "{refused}");
    }

    /// Answers prompts from a script and counts them.
    struct Scripted(RefCell<Vec<&'static str>>, RefCell<usize>);

    impl Scripted {
        fn new(answers: &[&'static str]) -> Self {
            Scripted(
                RefCell::new(answers.iter().rev().copied().collect()),
                RefCell::new(0),
            )
        }
        fn asked(&self) -> usize {
            *self.1.borrow()
        }
    }

    impl Prompter for Scripted {
        fn ask(&self, prompt: &str) -> Option<Zeroizing<String>> {
            assert!(prompt.contains("of vault `v`"), "{prompt}");
            *self.1.borrow_mut() += 1;
            self.0
                .borrow_mut()
                .pop()
                .map(|s| Zeroizing::new(s.to_owned()))
        }
    }

    fn private_file_with(entries: &[(String, String)]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let list: Vec<serde_json::Value> = entries
            .iter()
            .map(|(n, v)| serde_json::json!({"name": n, "value": v}))
            .collect();
        write!(file, "{}", serde_json::Value::Array(list)).unwrap();
        file
    }

    fn encrypted_entries(passwords: &[&str]) -> (Vec<(String, String)>, Vec<PublicKeyHash>) {
        let keys: Vec<SecretKey> = passwords
            .iter()
            .map(|_| SecretKey::generate(Curve::Ed25519))
            .collect();
        let entries = keys
            .iter()
            .zip(passwords)
            .enumerate()
            .map(|(i, (k, p))| {
                (
                    format!("k{i}"),
                    format!("encrypted:{}", encrypted::encrypt(k, p.as_bytes())),
                )
            })
            .collect();
        (
            entries,
            keys.iter().map(|k| k.public_key().hash()).collect(),
        )
    }

    fn open(
        file: &tempfile::NamedTempFile,
        prompter: &dyn Prompter,
    ) -> Result<FileVault, OpenError> {
        FileVault::open_with(
            "v",
            &FileVaultOptions::new(file.path()),
            &|_| None,
            prompter,
            None,
        )
    }

    #[test]
    fn one_prompted_password_opens_every_key_it_fits() {
        let (entries, pkhs) = encrypted_entries(&["same", "same", "other"]);
        let file = private_file_with(&entries);
        let prompter = Scripted::new(&["same", "other"]);
        let vault = open(&file, &prompter).unwrap();
        // Asked for the first key and the third; the second reused the first answer.
        assert_eq!(prompter.asked(), 2);
        for pkh in pkhs {
            assert!(vault.keys.key(&pkh).is_some());
        }
        // Prompted passwords are not kept for writing.
        assert!(vault.write_password.is_none());
        assert!(vault.holds_encrypted);
    }

    #[test]
    fn a_wrong_prompted_password_is_asked_again_then_refused() {
        let (entries, _) = encrypted_entries(&["right"]);
        let file = private_file_with(&entries);
        let prompter = Scripted::new(&["wrong", "right"]);
        assert!(open(&file, &prompter).is_ok());
        assert_eq!(prompter.asked(), 2);

        let prompter = Scripted::new(&["a", "b", "c", "right"]);
        let err = open(&file, &prompter).unwrap_err();
        assert!(
            matches!(err, OpenError::BadPassword { ref label, .. } if label == "k0"),
            "{err}"
        );
        assert_eq!(prompter.asked(), PROMPT_ATTEMPTS);
    }

    #[test]
    fn with_no_one_to_ask_an_encrypted_key_is_locked() {
        let (entries, _) = encrypted_entries(&["pw"]);
        let file = private_file_with(&entries);
        let err = open(&file, &Scripted::new(&[])).unwrap_err();
        assert!(
            matches!(err, OpenError::Locked { ref label, .. } if label == "k0"),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("password_env") && message.contains("password_file"),
            "{message}"
        );
    }

    #[test]
    fn a_configured_password_is_never_followed_by_a_prompt() {
        let (entries, _) = encrypted_entries(&["pw"]);
        let file = private_file_with(&entries);
        let prompter = Scripted::new(&["pw"]);
        let options = FileVaultOptions {
            password: PasswordSource::Env("KEY_PASSWORD".to_owned()),
            ..FileVaultOptions::new(file.path())
        };
        let wrong = |_: &str| Some("not it".to_owned());
        let err = FileVault::open_with("v", &options, &wrong, &prompter, None).unwrap_err();
        assert!(matches!(err, OpenError::BadPassword { .. }), "{err}");
        assert_eq!(prompter.asked(), 0);
        let right = |name: &str| (name == "KEY_PASSWORD").then(|| "pw".to_owned());
        let vault = FileVault::open_with("v", &options, &right, &prompter, None).unwrap();
        assert_eq!(
            vault.write_password.as_deref().map(String::as_str),
            Some("pw")
        );
        let unset = |_: &str| None;
        let err = FileVault::open_with("v", &options, &unset, &prompter, None).unwrap_err();
        assert!(
            err.to_string().contains("`KEY_PASSWORD`, which is not set"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_file_unlocked_at_the_prompt_never_gets_a_key_in_clear() {
        let (entries, _) = encrypted_entries(&["pw"]);
        let file = private_file_with(&entries);
        let vault = open(&file, &Scripted::new(&["pw"])).unwrap();
        let before = std::fs::read(file.path()).unwrap();
        let err = vault.generate(Curve::Ed25519).await.unwrap_err();
        assert!(matches!(err, VaultError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("password_env"), "{err}");
        let key = SecretKey::generate(Curve::Ed25519);
        assert!(vault.import(key).await.is_err());
        assert_eq!(
            std::fs::read(file.path()).unwrap(),
            before,
            "the file is untouched"
        );
        assert_eq!(vault.keys.len(), 1);
    }
}
