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
