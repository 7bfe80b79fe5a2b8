//! Errors and warnings of configuration loading.
//!
//! Every error names the file, where in it (a line, or the key path such as
//! `tezos.tz1….allow.generic[2]`), and what was expected. Values are quoted only where they
//! are names or identifiers; secret-bearing driver settings are never echoed.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{origin}, line {line}: environment variable `{variable}` is not set (set it, use \
         `${{{variable}:-default}}`, or write `$$` for a literal `$`)"
    )]
    UnsetVariable {
        origin: String,
        line: usize,
        variable: String,
    },
    #[error("{origin}, line {line}: {reason}")]
    BadSubstitution {
        origin: String,
        line: usize,
        reason: String,
    },
    /// The text is not YAML, or its shape does not match the schema (unknown key, wrong type).
    #[error("{origin}: {}: {message}", display_path(key_path))]
    Schema {
        origin: String,
        key_path: String,
        message: String,
    },
    /// A value has the right type but is not acceptable (a bad address, an unknown kind).
    #[error("{origin}: {}: {message}", display_path(key_path))]
    Invalid {
        origin: String,
        key_path: String,
        message: String,
    },
}

impl ConfigError {
    /// The key path the error is about, when it is about one.
    pub fn key_path(&self) -> Option<&str> {
        match self {
            ConfigError::Schema { key_path, .. } | ConfigError::Invalid { key_path, .. } => {
                Some(key_path)
            }
            _ => None,
        }
    }
}

impl ConfigError {
    /// The error with values taken from the environment shown as they were written.
    pub(crate) fn redacted(self, sources: &[(String, String)]) -> ConfigError {
        if sources.is_empty() {
            return self;
        }
        match self {
            ConfigError::Schema {
                origin,
                key_path,
                message,
            } => ConfigError::Schema {
                origin,
                key_path: crate::env::redact_path(&key_path, sources),
                message: crate::env::redact(&message, sources),
            },
            ConfigError::Invalid {
                origin,
                key_path,
                message,
            } => ConfigError::Invalid {
                origin,
                key_path: crate::env::redact_path(&key_path, sources),
                message: crate::env::redact(&message, sources),
            },
            other => other,
        }
    }
}

fn display_path(key_path: &str) -> String {
    if key_path.is_empty() || key_path == "." {
        "top level".to_owned()
    } else {
        format!("`{key_path}`")
    }
}

/// Something accepted but worth an operator's attention (a deprecated name, a policy that
/// allows nothing). The caller logs these after loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub key_path: String,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", display_path(&self.key_path), self.message)
    }
}
