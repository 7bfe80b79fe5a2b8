//! The file's shape, as written: every key ECAD Signatory knows, and no other.
//! Values stay strings here; `validate` turns them into typed data with key paths in errors.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of settings (base_dir, server, vaults, watermark, tezos, \
                 tezos_protocol)"
)]
pub(crate) struct RawConfig {
    /// `Some(None)`: written with no value, which is refused rather than defaulted (an
    /// empty environment variable must not move the watermarks to the default directory).
    #[serde(default, deserialize_with = "present")]
    pub base_dir: Option<Option<String>>,
    #[serde(default)]
    pub server: Option<RawServer>,
    #[serde(default)]
    pub vaults: Option<UniqueMap<Option<RawDriver>>>,
    #[serde(default)]
    pub watermark: Option<RawDriver>,
    #[serde(default)]
    pub tezos: Option<UniqueMap<Option<RawPolicy>>>,
    /// The protocol the chain runs (`ushuaia`, `025`, …), for the request layouts the
    /// bytes cannot tell apart. Not an ECAD key.
    #[serde(default)]
    pub tezos_protocol: Option<String>,
    /// Known to ECAD; refused here with an explanation rather than ignored.
    #[serde(default)]
    pub policy_hook: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of server settings (address, utility_address, tcp_address, \
                 unix_socket, authorized_keys, base_path, allow_list_known_keys, \
                 allowed_origins, limits)"
)]
pub(crate) struct RawServer {
    /// Serve the API under this path prefix (an extension of ECAD's schema).
    #[serde(default)]
    pub base_path: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub address: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub utility_address: Option<Option<String>>,
    /// A public key, or a (nested) list of them.
    #[serde(default)]
    pub authorized_keys: Option<Value>,
    /// Known to ECAD; refused here with an explanation rather than ignored.
    #[serde(default)]
    pub jwt: Option<Value>,
    /// Serve `GET /known_keys` (an extension; Octez's signer has `--allow-list-known-keys`).
    #[serde(default, deserialize_with = "yaml_bool")]
    pub allow_list_known_keys: Option<bool>,
    /// Web origins whose pages may call the API (an extension; none unless listed).
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
    /// Limits of the HTTP listeners (an extension of ECAD's schema).
    #[serde(default)]
    pub limits: Option<RawLimits>,
    /// Octez's socket protocol over TCP, for `tcp://host:port/tz1…` signers (an extension;
    /// off unless set).
    #[serde(default, deserialize_with = "present")]
    pub tcp_address: Option<Option<String>>,
    /// Octez's socket protocol over a Unix socket, for `unix:/path?pkh=tz1…` signers (an
    /// extension; off unless set).
    #[serde(default, deserialize_with = "present")]
    pub unix_socket: Option<Option<String>>,
}

/// `server.limits`: each one optional, the server's default applies when absent.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of limits (max_body_bytes, max_connections, request_timeout, \
                 header_read_timeout, write_timeout)"
)]
pub(crate) struct RawLimits {
    #[serde(default, deserialize_with = "crate::scalars::u64_or_digits")]
    pub max_body_bytes: Option<u64>,
    #[serde(default, deserialize_with = "crate::scalars::u64_or_digits")]
    pub max_connections: Option<u64>,
    /// Durations as Go writes them (`30s`, `1m30s`, `500ms`), as in ECAD's other settings.
    #[serde(default)]
    pub request_timeout: Option<String>,
    #[serde(default)]
    pub header_read_timeout: Option<String>,
    #[serde(default)]
    pub write_timeout: Option<String>,
}

/// A vault or a watermark backend: a driver name and its own settings.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `driver` and `config`"
)]
pub(crate) struct RawDriver {
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub config: Value,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a key policy mapping (allow, allowed_chains, authorized_keys, log_payloads, \
                 allow_proof_of_possession), or no value for the default policy"
)]
pub(crate) struct RawPolicy {
    /// Request kind → operation kinds (only `generic` has a list).
    #[serde(default)]
    pub allow: Option<UniqueMap<Option<Vec<String>>>>,
    /// Deprecated: the request kinds.
    #[serde(default)]
    pub allowed_operations: Option<Vec<String>>,
    /// Deprecated: the generic operation kinds.
    #[serde(default)]
    pub allowed_kinds: Option<Vec<String>>,
    #[serde(default)]
    pub allowed_chains: Option<Vec<String>>,
    #[serde(default, deserialize_with = "yaml_bool")]
    pub allow_proof_of_possession: Option<bool>,
    #[serde(default, deserialize_with = "yaml_bool")]
    pub log_payloads: Option<bool>,
    #[serde(default)]
    pub authorized_keys: Option<Value>,
    /// Known to ECAD; refused here with an explanation rather than ignored.
    #[serde(default)]
    pub jwt_users: Option<Value>,
}

/// A boolean as ECAD Signatory's YAML library reads one into a boolean setting: `true` and
/// `false`, and the YAML 1.1 spellings `yes`/`no`, `on`/`off`, `y`/`n` (lower, capitalised
/// or upper case), so existing files keep working.
fn yaml_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    struct YamlBool;
    impl Visitor<'_> for YamlBool {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a boolean (true or false)")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            const TRUE: [&str; 11] = [
                "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE",
            ];
            const FALSE: [&str; 11] = [
                "n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE",
            ];
            if TRUE.contains(&v) {
                Ok(Some(true))
            } else if FALSE.contains(&v) {
                Ok(Some(false))
            } else {
                Err(E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
    }
    deserializer.deserialize_any(YamlBool)
}

/// For a key that is present: its value, null included (`Some(None)`); an absent key is
/// `None` through `#[serde(default)]`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A mapping with string keys that refuses a key given twice (YAML parsers usually keep
/// the last one silently, which would let a second policy for a key override the first).
#[derive(Debug)]
pub(crate) struct UniqueMap<V>(pub BTreeMap<String, V>);

impl<V> Default for UniqueMap<V> {
    fn default() -> Self {
        UniqueMap(BTreeMap::new())
    }
}

impl<V> IntoIterator for UniqueMap<V> {
    type Item = (String, V);
    type IntoIter = std::collections::btree_map::IntoIter<String, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UniqueVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueVisitor<V> {
            type Value = UniqueMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(UniqueMap::default())
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = BTreeMap::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(de::Error::custom(format_args!(
                            "`{key}` is given twice in this mapping"
                        )));
                    }
                    let value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(UniqueMap(map))
            }
        }

        deserializer.deserialize_map(UniqueVisitor(PhantomData))
    }
}
