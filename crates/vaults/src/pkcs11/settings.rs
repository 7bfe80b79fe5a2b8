//! The `pkcs11` driver's settings, as ECAD Signatory names them, with its environment
//! fallbacks (`PKCS11_PATH`, `PKCS11_SLOT`, `PKCS11_PIN`). Pure: the environment is given.

use crate::error::OpenError;
use serde::Deserialize;
use signatory_config::DriverSettings;
use std::fmt;
use std::path::PathBuf;
use tezos_crypto::PublicKey;
use zeroize::Zeroizing;

/// Sessions opened at most by default: one per concurrent signature.
pub(crate) const DEFAULT_MAX_SESSIONS: usize = 8;

/// Where to find a key object: by label, by id, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Locator {
    pub label: Option<String>,
    pub id: Option<Vec<u8>>,
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.label, &self.id) {
            (Some(label), Some(id)) => write!(f, "label `{label}`, id {}", hex::encode(id)),
            (Some(label), None) => write!(f, "label `{label}`"),
            (None, Some(id)) => write!(f, "id {}", hex::encode(id)),
            (None, None) => f.write_str("any"),
        }
    }
}

/// Where a key pair's public key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicSource {
    /// Given in the configuration (`public_value`).
    Value(PublicKey),
    /// The `CKA_EC_POINT` of the private key object (`extended_private`, AWS CloudHSM).
    PrivateObject,
    /// A public key object found with this locator.
    Object(Locator),
}

/// A configured key pair (`keys[i]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyPairSetting {
    pub private: Locator,
    pub public: PublicSource,
    /// `vaults.<name>.config.keys[i]`, for errors.
    pub key_path: String,
}

/// How discovery pairs a private key with its public key (`public_keys_search_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SearchOptions {
    pub match_label: bool,
    pub match_id: bool,
    pub extended_private: bool,
}

/// The token to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotChoice {
    Id(u64),
    /// The first slot with an initialised token (ECAD's default).
    FirstInitialized,
}

/// Parsed, with fallbacks applied.
pub(crate) struct Settings {
    pub library_path: PathBuf,
    pub slot: SlotChoice,
    pub pin: Zeroizing<String>,
    /// `None`: discover every private key.
    pub keys: Option<Vec<KeyPairSetting>>,
    pub search: SearchOptions,
    pub max_sessions: usize,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("library_path", &self.library_path)
            .field("slot", &self.slot)
            .field("pin", &"<redacted>")
            .field("keys", &self.keys)
            .field("search", &self.search)
            .field("max_sessions", &self.max_sessions)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocator {
    #[serde(default, deserialize_with = "scalar_text")]
    label: Option<String>,
    #[serde(default, deserialize_with = "hex_text")]
    id: Option<String>,
}

/// A scalar read as text, as ECAD's YAML library reads an unquoted `pin: 1234` or
/// `label: 2024` into a string. (YAML drops the leading zeros of an unquoted number: such
/// a value must be quoted.)
fn scalar_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Bool(bool),
    }
    Ok(
        Option::<Scalar>::deserialize(d)?.map(|scalar| match scalar {
            Scalar::Text(text) => text,
            Scalar::Unsigned(n) => n.to_string(),
            Scalar::Signed(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }),
    )
}

/// An object id: a string of hex digits. An unquoted number is refused: YAML has already
/// dropped its leading zeros, which are part of the id.
fn hex_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Other(serde::de::IgnoredAny),
    }
    match Option::<Id>::deserialize(d)? {
        None => Ok(None),
        Some(Id::Text(text)) => Ok(Some(text)),
        Some(Id::Other(_)) => Err(serde::de::Error::custom(
            "write the id in quotes (id: \"01\"): YAML reads an unquoted number and drops \
             its leading zeros",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyPair {
    private: Option<RawLocator>,
    public: Option<RawLocator>,
    public_value: Option<String>,
    #[serde(default)]
    extended_private: bool,
}

/// As ECAD reads it: a field left out of a given mapping is `false`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSearchOptions {
    #[serde(default)]
    match_label: bool,
    #[serde(default)]
    match_id: bool,
    #[serde(default)]
    extended_private: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSlot {
    Number(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `library_path`, `pin` and optionally `slot`, `keys`, \
                 `public_keys_search_options`, `max_sessions`"
)]
struct RawSettings {
    library_path: Option<PathBuf>,
    slot: Option<RawSlot>,
    #[serde(default, deserialize_with = "scalar_text")]
    pin: Option<String>,
    keys: Option<Vec<RawKeyPair>>,
    public_keys_search_options: Option<RawSearchOptions>,
    #[serde(default, deserialize_with = "scalar_text")]
    max_sessions: Option<String>,
}

/// Parse `settings` of vault `vault`; `env` gives the fallback variables.
pub(crate) fn parse(
    vault: &str,
    settings: &DriverSettings,
    env: &dyn Fn(&str) -> Option<Zeroizing<String>>,
) -> Result<Settings, OpenError> {
    let base = format!("vaults.{vault}.config");
    let error = |key_path: String, message: String| OpenError::Config {
        vault: vault.to_owned(),
        key_path,
        message,
    };
    let raw: RawSettings = match settings {
        DriverSettings::Null => RawSettings {
            library_path: None,
            slot: None,
            pin: None,
            keys: None,
            public_keys_search_options: None,
            max_sessions: None,
        },
        // The secrets (`pin`) take any scalar, so no type error can quote them.
        other => crate::error::parse_settings(vault, other)?,
    };
    let library_path = match raw.library_path {
        Some(path) if !path.as_os_str().is_empty() => path,
        _ => match env("PKCS11_PATH") {
            Some(path) if !path.is_empty() => PathBuf::from(path.as_str()),
            _ => {
                return Err(error(
                    format!("{base}.library_path"),
                    "is missing (and PKCS11_PATH is not set); give the token's PKCS#11 \
                     library, e.g. /usr/lib/softhsm/libsofthsm2.so"
                        .to_owned(),
                ))
            }
        },
    };
    let slot = match raw.slot {
        Some(RawSlot::Number(id)) => SlotChoice::Id(id),
        Some(RawSlot::Text(text)) => SlotChoice::Id(parse_slot(&text).ok_or_else(|| {
            error(
                format!("{base}.slot"),
                "is not a slot number (decimal, or hexadecimal with 0x)".to_owned(),
            )
        })?),
        None => match env("PKCS11_SLOT") {
            Some(text) if !text.is_empty() => {
                SlotChoice::Id(parse_slot(&text).ok_or_else(|| {
                    error(
                        format!("{base}.slot"),
                        "is not set and PKCS11_SLOT is not a slot number".to_owned(),
                    )
                })?)
            }
            _ => SlotChoice::FirstInitialized,
        },
    };
    let pin = match raw.pin {
        Some(pin) if !pin.is_empty() => Zeroizing::new(pin),
        _ => match env("PKCS11_PIN") {
            Some(pin) if !pin.is_empty() => pin,
            _ => {
                return Err(error(
                    format!("{base}.pin"),
                    "is missing (and PKCS11_PIN is not set); give the token's user PIN, \
                     e.g. `pin: ${SIGNATORY_PKCS11_PIN}`"
                        .to_owned(),
                ))
            }
        },
    };
    let keys = match raw.keys {
        None => None,
        Some(list) => Some(
            list.into_iter()
                .enumerate()
                .map(|(i, pair)| key_pair(&format!("{base}.keys[{i}]"), pair))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|message| match message.split_once('\0') {
                    Some((key_path, message)) => error(key_path.to_owned(), message.to_owned()),
                    None => error(base.clone(), message),
                })?,
        ),
    };
    let search = match raw.public_keys_search_options {
        None => SearchOptions {
            match_label: true,
            match_id: true,
            extended_private: true,
        },
        Some(options) => SearchOptions {
            match_label: options.match_label,
            match_id: options.match_id,
            extended_private: options.extended_private,
        },
    };
    let max_sessions = match raw.max_sessions.map(|text| text.trim().parse::<usize>()) {
        None => DEFAULT_MAX_SESSIONS,
        Some(Ok(n)) if (1..=1024).contains(&n) => n,
        Some(_) => {
            return Err(error(
                format!("{base}.max_sessions"),
                "must be between 1 and 1024".to_owned(),
            ))
        }
    };
    Ok(Settings {
        library_path,
        slot,
        pin,
        keys,
        search,
        max_sessions,
    })
}

/// A slot id as ECAD parses `PKCS11_SLOT` (Go's `ParseUint(s, 0, …)`): decimal, or
/// hexadecimal with `0x`, octal with `0o`/`0`, binary with `0b`.
fn parse_slot(text: &str) -> Option<u64> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok();
    }
    if let Some(bin) = lower.strip_prefix("0b") {
        return u64::from_str_radix(bin, 2).ok();
    }
    if let Some(oct) = lower.strip_prefix("0o") {
        return u64::from_str_radix(oct, 8).ok();
    }
    if lower.len() > 1 && lower.starts_with('0') {
        return u64::from_str_radix(lower.get(1..)?, 8).ok();
    }
    lower.parse().ok()
}

/// One `keys[i]`; errors are `key_path \0 message`.
fn key_pair(key_path: &str, raw: RawKeyPair) -> Result<KeyPairSetting, String> {
    let locator = |which: &str, raw: RawLocator| -> Result<Locator, String> {
        let id = match raw.id {
            Some(text) => Some(
                hex::decode(text.trim_start_matches("0x"))
                    .map_err(|_| format!("{key_path}.{which}.id\0is not hexadecimal"))?,
            ),
            None => None,
        };
        let label = raw.label.filter(|label| !label.is_empty());
        if label.is_none() && id.is_none() {
            return Err(format!(
                "{key_path}.{which}\0give a `label`, an `id`, or both"
            ));
        }
        Ok(Locator { label, id })
    };
    let private = match raw.private {
        Some(raw) => locator("private", raw)?,
        None => {
            return Err(format!(
                "{key_path}.private\0is missing; give the private key's `label` or `id`"
            ))
        }
    };
    // ECAD: `public_value` first, then `extended_private`, then `public`, else the
    // private key's locator.
    let public = match (raw.public_value, raw.extended_private, raw.public) {
        (Some(text), _, _) => PublicSource::Value(
            PublicKey::from_b58check(text.trim())
                .map_err(|e| format!("{key_path}.public_value\0is not a public key: {e}"))?,
        ),
        (None, true, _) => PublicSource::PrivateObject,
        (None, false, Some(raw)) => PublicSource::Object(locator("public", raw)?),
        (None, false, None) => PublicSource::Object(private.clone()),
    };
    Ok(KeyPairSetting {
        private,
        public,
        key_path: key_path.to_owned(),
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> DriverSettings {
        serde_yaml_ng::from_str(text).unwrap()
    }

    fn no_env(_: &str) -> Option<Zeroizing<String>> {
        None
    }

    #[test]
    fn ecad_settings_parse_with_their_defaults() {
        let settings = parse(
            "hsm",
            &yaml(
                "library_path: /usr/lib/softhsm/libsofthsm2.so\nslot: 0x1d\npin: '1234'\n\
                 keys:\n  - private: {label: baker}\n  - private: {id: 0a0b}\n    public: {label: pub}\n\
                 \x20 - private: {label: cloud}\n    extended_private: true\n",
            ),
            &no_env,
        )
        .unwrap();
        assert_eq!(settings.slot, SlotChoice::Id(0x1d));
        assert_eq!(settings.pin.as_str(), "1234");
        assert_eq!(settings.max_sessions, DEFAULT_MAX_SESSIONS);
        let keys = settings.keys.unwrap();
        assert_eq!(keys.len(), 3);
        // No public locator: the private key's is reused, as ECAD does.
        assert_eq!(
            keys[0].public,
            PublicSource::Object(keys[0].private.clone())
        );
        assert_eq!(keys[1].private.id, Some(vec![0x0a, 0x0b]));
        assert_eq!(
            keys[1].public,
            PublicSource::Object(Locator {
                label: Some("pub".into()),
                id: None
            })
        );
        assert_eq!(keys[2].public, PublicSource::PrivateObject);
        assert!(
            settings.search.match_label
                && settings.search.match_id
                && settings.search.extended_private
        );
        // A given options mapping: what it leaves out is off.
        let settings = parse(
            "hsm",
            &yaml("library_path: /x.so\npin: p\npublic_keys_search_options: {match_id: true}\n"),
            &no_env,
        )
        .unwrap();
        assert_eq!(
            settings.search,
            SearchOptions {
                match_label: false,
                match_id: true,
                extended_private: false
            }
        );
        assert_eq!(settings.slot, SlotChoice::FirstInitialized);
        assert!(settings.keys.is_none());
    }

    #[test]
    fn the_environment_fills_in_what_the_file_leaves_out() {
        let env = |name: &str| {
            Some(Zeroizing::new(
                match name {
                    "PKCS11_PATH" => "/env/lib.so",
                    "PKCS11_SLOT" => "0x10",
                    "PKCS11_PIN" => "from-env",
                    _ => return None,
                }
                .to_owned(),
            ))
        };
        let settings = parse("hsm", &DriverSettings::Null, &env).unwrap();
        assert_eq!(settings.library_path, PathBuf::from("/env/lib.so"));
        assert_eq!(settings.slot, SlotChoice::Id(16));
        assert_eq!(settings.pin.as_str(), "from-env");
        // The file wins over the environment.
        let settings = parse("hsm", &yaml("library_path: /f.so\nslot: 3\npin: f\n"), &env).unwrap();
        assert_eq!(settings.library_path, PathBuf::from("/f.so"));
        assert_eq!(settings.slot, SlotChoice::Id(3));
        assert_eq!(settings.pin.as_str(), "f");
    }

    #[test]
    fn bad_settings_name_the_key_path_and_never_the_pin() {
        let cases = [
            ("pin: secret-pin\n", "vaults.hsm.config.library_path"),
            ("library_path: /x.so\n", "vaults.hsm.config.pin"),
            ("library_path: /x.so\npin: secret-pin\nslot: seven\n", "vaults.hsm.config.slot"),
            ("library_path: /x.so\npin: secret-pin\nkeys: [{public: {label: a}}]\n", "vaults.hsm.config.keys[0].private"),
            ("library_path: /x.so\npin: secret-pin\nkeys: [{private: {}}]\n", "vaults.hsm.config.keys[0].private"),
            ("library_path: /x.so\npin: secret-pin\nkeys: [{private: {id: zz}}]\n", "vaults.hsm.config.keys[0].private.id"),
            ("library_path: /x.so\npin: secret-pin\nkeys: [{private: {id: '01'}, public_value: edpkX}]\n", "vaults.hsm.config.keys[0].public_value"),
            ("library_path: /x.so\npin: secret-pin\nmax_sessions: 0\n", "vaults.hsm.config.max_sessions"),
            ("library_path: /x.so\npin: secret-pin\nlabel: x\n", "vaults.hsm.config.label"),
        ];
        for (text, key_path) in cases {
            let e = parse("hsm", &yaml(text), &no_env).unwrap_err();
            let OpenError::Config { key_path: at, .. } = &e else {
                panic!("{e:?}");
            };
            assert_eq!(at, key_path, "{text}: {e}");
            assert!(!e.to_string().contains("secret-pin"), "{e}");
        }
        let settings = parse(
            "hsm",
            &yaml("library_path: /x.so\npin: secret-pin\n"),
            &no_env,
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("secret-pin"));
    }

    #[test]
    fn slots_parse_as_go_parses_them() {
        assert_eq!(parse_slot("17"), Some(17));
        assert_eq!(parse_slot("0x11"), Some(17));
        assert_eq!(parse_slot("021"), Some(17));
        assert_eq!(parse_slot("0b10001"), Some(17));
        assert_eq!(parse_slot("0"), Some(0));
        assert_eq!(parse_slot("x"), None);
    }
}
