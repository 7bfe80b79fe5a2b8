//! Where the password of encrypted secret keys comes from: an environment variable, a
//! file, the caller, or (as ECAD Signatory does) a prompt on the terminal.

use crate::error::OpenError;
use crate::private_file;
use std::fmt;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// A configured source of the password for encrypted keys.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum PasswordSource {
    /// None configured: encrypted keys need the terminal prompt.
    #[default]
    None,
    /// The value of this environment variable.
    Env(String),
    /// The content of this file (which must be private, mode 0600), one trailing newline
    /// removed.
    File(PathBuf),
    /// Given by the caller (a CLI that already asked, a test).
    Given(Zeroizing<String>),
}

impl fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSource::None => f.write_str("None"),
            PasswordSource::Env(name) => f.debug_tuple("Env").field(name).finish(),
            PasswordSource::File(path) => f.debug_tuple("File").field(path).finish(),
            PasswordSource::Given(_) => f.write_str("Given(REDACTED)"),
        }
    }
}

impl PasswordSource {
    /// Read the password, if a source is configured.
    pub(crate) fn read(
        &self,
        vault: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Zeroizing<String>>, OpenError> {
        match self {
            PasswordSource::None => Ok(None),
            PasswordSource::Given(password) => Ok(Some(password.clone())),
            PasswordSource::Env(name) => match lookup(name) {
                Some(value) => Ok(Some(Zeroizing::new(value))),
                None => Err(OpenError::Password {
                    vault: vault.to_owned(),
                    message: format!(
                        "the key password is to come from environment variable `{name}`, which \
                         is not set"
                    ),
                }),
            },
            PasswordSource::File(path) => {
                let mut file = private_file::open(vault, path, "read the password file")?;
                let mut bytes = Zeroizing::new(Vec::with_capacity(256));
                file.read_to_end(&mut bytes).map_err(|e| {
                    private_file::io_error(vault, "read the password file", path, e)
                })?;
                let text = std::str::from_utf8(&bytes).map_err(|_| OpenError::Password {
                    vault: vault.to_owned(),
                    message: format!("the password file {} is not UTF-8 text", path.display()),
                })?;
                let text = text
                    .strip_suffix('\n')
                    .map(|t| t.strip_suffix('\r').unwrap_or(t))
                    .unwrap_or(text);
                Ok(Some(Zeroizing::new(text.to_owned())))
            }
        }
    }
}

/// Asks the operator for a key's password.
pub(crate) trait Prompter {
    /// `None` when no one can be asked.
    fn ask(&self, prompt: &str) -> Option<Zeroizing<String>>;
}

/// The controlling terminal, when the signer runs in one (never in a service manager).
pub(crate) struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn ask(&self, prompt: &str) -> Option<Zeroizing<String>> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        rpassword::prompt_password(prompt).ok().map(Zeroizing::new)
    }
}

/// Nobody to ask (tests, `prompt: false`).
pub(crate) struct NoPrompter;

impl Prompter for NoPrompter {
    fn ask(&self, _prompt: &str) -> Option<Zeroizing<String>> {
        None
    }
}

/// Passwords read from `password_env` variables and removed from the environment, so that
/// they cannot be read from it afterwards (child processes, `/proc/<pid>/environ`).
#[derive(Default)]
pub struct EnvPasswords {
    values: std::collections::BTreeMap<String, Zeroizing<String>>,
}

impl fmt::Debug for EnvPasswords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvPasswords")
            .field("variables", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl EnvPasswords {
    /// Take every secret variable a vault of `vaults` reads (a `file` vault's
    /// `password_env`, the `pkcs11` PIN fallback `PKCS11_PIN`, …): read it,
    /// then remove it from the environment and, on Linux, overwrite its text in the
    /// environment block the kernel shows in `/proc/<pid>/environ`.
    ///
    /// Call it while the process has one thread: changing the environment while another
    /// thread may read it is not sound.
    pub fn take<'a>(vaults: impl IntoIterator<Item = &'a signatory_config::VaultConfig>) -> Self {
        let mut values = std::collections::BTreeMap::new();
        for vault in vaults {
            for name in secret_variables(vault) {
                if values.contains_key(&name) {
                    continue;
                }
                let Some(value) = std::env::var_os(&name) else {
                    continue;
                };
                // `into_string` moves the buffer, so the only copy is the zeroizing one; a
                // non-UTF-8 value is converted as before and its raw bytes wiped.
                let value = match value.into_string() {
                    Ok(text) => Zeroizing::new(text),
                    Err(raw) => {
                        let raw = Zeroizing::new(raw.into_encoded_bytes());
                        Zeroizing::new(String::from_utf8_lossy(&raw).into_owned())
                    }
                };
                std::env::remove_var(&name);
                scrub_initial_environment(&name);
                values.insert(name, value);
            }
        }
        EnvPasswords { values }
    }

    /// Variable `name`: the value taken from it at start, else the environment's.
    #[cfg(any(
        feature = "pkcs11",
        feature = "yubihsm",
        feature = "azure",
        feature = "awskms",
        feature = "hashicorpvault"
    ))]
    pub(crate) fn lookup(&self, name: &str) -> Option<Zeroizing<String>> {
        self.values
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok().map(Zeroizing::new))
    }

    /// In `options`, a password to come from a variable taken here is the value taken.
    pub(crate) fn apply(&self, options: &mut crate::FileVaultOptions) {
        if let PasswordSource::Env(name) = &options.password {
            if let Some(value) = self.values.get(name) {
                options.password = PasswordSource::Given(value.clone());
            }
        }
    }
}

/// The environment as a driver's settings check (`config check`, before opening) reads it:
/// the secret `variable` has been taken out of it by then, so it reads as set; whether it
/// really was is reported when the vault is opened.
#[cfg(any(feature = "pkcs11", feature = "yubihsm"))]
pub(crate) fn environment_before_open(
    variable: &'static str,
) -> impl Fn(&str) -> Option<Zeroizing<String>> {
    move |name| {
        if name == variable {
            Some(Zeroizing::new("(checked at open)".to_owned()))
        } else {
            std::env::var(name).ok().map(Zeroizing::new)
        }
    }
}

/// A driver's [`crate::Driver::secret_variables`] for one secret setting `key` with the
/// fallback `variable`: the variable, unless the settings give the secret themselves.
#[cfg(any(feature = "pkcs11", feature = "yubihsm"))]
pub(crate) fn fallback_variable(
    settings: &signatory_config::DriverSettings,
    key: &str,
    variable: &str,
) -> Vec<String> {
    let given = settings
        .get(key)
        .and_then(signatory_config::DriverSettings::as_str)
        .is_some_and(|secret| !secret.is_empty());
    if given {
        Vec::new()
    } else {
        vec![variable.to_owned()]
    }
}

/// The secret variables `vault`'s driver says it reads. Settings errors are reported when
/// the vault is opened.
fn secret_variables(vault: &signatory_config::VaultConfig) -> Vec<String> {
    crate::registry::driver(&vault.name, &vault.driver)
        .map(|driver| driver.secret_variables(&vault.name, &vault.config))
        .unwrap_or_default()
}

/// `/proc/<pid>/environ` shows the environment block the process started with, which
/// removing a variable leaves as it was: overwrite `NAME=value` there with NUL bytes,
/// through `/proc/self/mem` (this process's own memory, no `unsafe`). Nothing refers to that
/// text any more: the variable was removed from the environment list first. Best effort:
/// a kernel that refuses the write leaves the text readable by the process's owner only.
#[cfg(target_os = "linux")]
fn scrub_initial_environment(name: &str) {
    use std::io::{Seek, SeekFrom, Write};
    let Some((start, end)) = initial_environment_range() else {
        return;
    };
    let Ok(block) = std::fs::read("/proc/self/environ") else {
        return;
    };
    let Ok(mut memory) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")
    else {
        return;
    };
    let prefix = format!("{name}=");
    let mut offset = 0u64;
    for entry in block.split(|b| *b == 0) {
        let len = entry.len() as u64;
        if entry.starts_with(prefix.as_bytes()) && start + offset + len <= end {
            let zeros = Zeroizing::new(vec![0u8; entry.len()]);
            let _ = memory
                .seek(SeekFrom::Start(start + offset))
                .and_then(|_| memory.write_all(&zeros));
        }
        offset += len + 1;
    }
}

#[cfg(not(target_os = "linux"))]
fn scrub_initial_environment(_name: &str) {}

/// `env_start` and `env_end` of `/proc/self/stat` (fields 50 and 51).
#[cfg(target_os = "linux")]
fn initial_environment_range() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `after_name` starts at field 3.
    let start = fields.get(50 - 3)?.parse().ok()?;
    let end = fields.get(51 - 3)?.parse().ok()?;
    (start < end).then_some((start, end))
}
