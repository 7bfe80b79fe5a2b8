//! From the file's shape to typed, checked values, naming the key path of every problem.

use crate::address::ListenAddress;
use crate::duration;
use crate::env;
use crate::error::{ConfigError, ConfigWarning};
use crate::kinds;
use crate::raw::{RawConfig, RawDriver, RawLimits, RawPolicy, RawServer, UniqueMap};
use crate::{
    Config, DriverSettings, KeyPolicyConfig, ServerConfig, ServerLimits, VaultConfig,
    WatermarkConfig, DEFAULT_ADDRESS, DEFAULT_BASE_DIR, DEFAULT_UTILITY_ADDRESS,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;
use tezos_crypto::{ChainId, Curve, PublicKey, PublicKeyHash};

/// Parse the YAML into the raw schema, expanding environment references in its strings;
/// unknown keys and wrong types fail with their path. Also returns the strings expansion
/// changed (as expanded, as written), for [`crate::env::redact`].
pub(crate) fn parse_raw(
    text: &str,
    origin: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(RawConfig, Vec<(String, String)>), ConfigError> {
    if is_blank(text) {
        // An empty file is an empty mapping: every default applies.
        return parse_raw("{}", origin, lookup);
    }
    let expanded = match env::parse_expanded(text, lookup) {
        Ok(expanded) => expanded,
        Err(env::ParseError::Env(e)) => return Err(env_error(e, origin)),
        // A file with merge keys that does not parse (a key given twice, say): the parser's
        // own words, rather than "unknown field `<<`" from the schema.
        Err(env::ParseError::Yaml(e)) if text.contains("<<") => {
            return Err(ConfigError::Schema {
                origin: origin.to_owned(),
                key_path: String::new(),
                message: e.to_string(),
            })
        }
        // Not YAML, or a key given twice: the schema's reading of the text names the key
        // path. Never accepted on that reading alone (it saw no expansion).
        Err(env::ParseError::Yaml(e)) => {
            return Err(
                match deserialize_raw(serde_yaml_ng::Deserializer::from_str(text), origin) {
                    Err(schema) => schema,
                    Ok(_) => ConfigError::Schema {
                        origin: origin.to_owned(),
                        key_path: String::new(),
                        message: e.to_string(),
                    },
                },
            )
        }
    };
    let env::Expanded { mut value, sources } = expanded;
    let merges = has_merge_key(&value);
    // YAML merge keys (`<<: *policy`), which ECAD's YAML library applies, are applied
    // first. A file with neither merge keys nor references is read straight from the text,
    // so schema errors keep their line.
    let raw = if merges || !sources.is_empty() {
        if merges {
            value.apply_merge().map_err(|e| ConfigError::Schema {
                origin: origin.to_owned(),
                key_path: String::new(),
                message: format!("a merge key (`<<`) cannot be applied: {e}"),
            })?;
        }
        deserialize_raw(value, origin)
    } else {
        deserialize_raw(serde_yaml_ng::Deserializer::from_str(text), origin)
    };
    match raw {
        Ok(raw) => Ok((raw, sources)),
        Err(e) => Err(e.redacted(&sources)),
    }
}

fn env_error(e: env::EnvError, origin: &str) -> ConfigError {
    match e {
        env::EnvError::Unset { line, variable } => ConfigError::UnsetVariable {
            origin: origin.to_owned(),
            line,
            variable,
        },
        env::EnvError::Malformed { line, reason } => ConfigError::BadSubstitution {
            origin: origin.to_owned(),
            line,
            reason,
        },
    }
}

fn has_merge_key(value: &DriverSettings) -> bool {
    match value {
        DriverSettings::Mapping(mapping) => mapping
            .iter()
            .any(|(key, value)| key.as_str() == Some("<<") || has_merge_key(value)),
        DriverSettings::Sequence(items) => items.iter().any(has_merge_key),
        DriverSettings::Tagged(tagged) => has_merge_key(&tagged.value),
        _ => false,
    }
}

fn deserialize_raw<'de, D>(deserializer: D, origin: &str) -> Result<RawConfig, ConfigError>
where
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key_path = e.path().to_string();
        let message = e.into_inner().to_string();
        // The YAML parser starts nested errors with the path too; say it once.
        let message = message
            .split_once(": ")
            .filter(|(prefix, _)| !prefix.is_empty() && key_path.starts_with(prefix))
            .map_or(message.as_str(), |(_, rest)| rest)
            .to_owned();
        ConfigError::Schema {
            origin: origin.to_owned(),
            key_path,
            message,
        }
    })
}

/// A blank string as no value: what an empty variable used to give when it was expanded
/// in the text, and still is now that an expanded value stays a string.
fn non_blank(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.trim().is_empty())
}

fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---"
    })
}

struct Checker<'a> {
    origin: &'a str,
    warnings: Vec<ConfigWarning>,
}

impl Checker<'_> {
    fn invalid(&self, key_path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            key_path: key_path.into(),
            message: message.into(),
        }
    }

    fn warn(&mut self, key_path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            key_path: key_path.into(),
            message: message.into(),
        });
    }
}

pub(crate) fn validate(raw: RawConfig, origin: &str) -> Result<Config, ConfigError> {
    let mut c = Checker {
        origin,
        warnings: Vec::new(),
    };
    if raw.policy_hook.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(c.invalid(
            "policy_hook",
            "external policy hooks are not supported by this signer; remove `policy_hook` \
             (each key's policy under `tezos` decides what is signed)",
        ));
    }
    let base_dir =
        match raw.base_dir {
            None => PathBuf::from(DEFAULT_BASE_DIR),
            Some(None) => return Err(c.invalid(
                "base_dir",
                "is empty; expected a directory path (is an environment variable it uses empty?)",
            )),
            Some(Some(dir)) if dir.trim().is_empty() => return Err(c.invalid(
                "base_dir",
                "is empty; expected a directory path (is an environment variable it uses empty?)",
            )),
            Some(Some(dir)) => PathBuf::from(dir),
        };
    let tezos_protocol = match raw.tezos_protocol {
        None => tezos_encoding::Protocol::DEFAULT,
        Some(name) => tezos_encoding::Protocol::parse(&name)
            .map_err(|e| c.invalid("tezos_protocol", e.to_string()))?,
    };
    let server = server(&mut c, raw.server)?;
    let vaults = vaults(&mut c, raw.vaults)?;
    let watermark = match raw.watermark {
        None => WatermarkConfig::default(),
        Some(RawDriver { driver, config }) => WatermarkConfig {
            driver: driver_name(&c, "watermark", driver, "`file` or `mem`")?,
            config,
        },
    };
    let mut tezos = BTreeMap::new();
    let mut raw_without_policy = Vec::new();
    for (key, policy) in raw.tezos.unwrap_or_default() {
        let path = format!("tezos.{key}");
        let pkh = PublicKeyHash::from_b58check(&key).map_err(|e| {
            c.invalid(
                &path,
                format!(
                    "`{key}` is not a public key hash ({e}); expected tz1…, tz2…, tz3… or tz4…"
                ),
            )
        })?;
        if policy.is_none() && pkh.curve() != Curve::Bls12_381 {
            raw_without_policy.push(key.clone());
        }
        let policy = key_policy(&mut c, &path, &pkh, policy)?;
        if tezos.insert(pkh, policy).is_some() {
            return Err(c.invalid(&path, "this key is listed twice"));
        }
    }
    if tezos.is_empty() {
        c.warn("tezos", "no keys are listed: nothing will be signed");
    }
    warn_default_policies_refuse_dal(&mut c, &raw_without_policy);
    warn_clients_octez_cannot_authenticate(&mut c, &server, &tezos);
    if vaults.is_empty() {
        c.warn("vaults", "no vaults are configured: no key can sign");
    }
    Ok(Config {
        origin: origin.to_owned(),
        base_dir,
        server,
        vaults,
        watermark,
        tezos,
        tezos_protocol,
        warnings: c.warnings,
    })
}

/// Keys listed with no value get block, preattestation and attestation, as in ECAD; a
/// baker with a DAL node also sends attestations with DAL content, and refusing them loses
/// the attestation itself, not only DAL rewards. tz4 keys are left out: their attestations
/// carry DAL content under the `attestation` kind. One warning for all such keys.
fn warn_default_policies_refuse_dal(c: &mut Checker<'_>, keys: &[String]) {
    let (path, which) = match keys {
        [] => return,
        [only] => (format!("tezos.{only}"), "listed with no value".to_owned()),
        [first, second, rest @ ..] => (
            "tezos".to_owned(),
            match rest.len() {
                0 => format!("{first} and {second} are listed with no value"),
                more => format!("{first}, {second} and {more} more keys are listed with no value"),
            },
        ),
    };
    c.warn(
        path,
        format!(
            "{which}: block, preattestation and attestation are allowed, but attestations with \
             DAL content are refused; if this baker runs a DAL node, write `allow: {{block:, \
             preattestation:, attestation:, attestation_with_dal:}}`"
        ),
    );
}

/// `GET /authorized_keys` is one list for all keys, and Octez clients authenticate only
/// when it names a key of theirs. Without a global list and with some key open to every
/// client, it must stay empty (else those keys' clients refuse to sign), so Octez clients
/// never authenticate and keys that name their clients refuse them (401).
fn warn_clients_octez_cannot_authenticate(
    c: &mut Checker<'_>,
    server: &ServerConfig,
    tezos: &BTreeMap<PublicKeyHash, KeyPolicyConfig>,
) {
    if server
        .authorized_keys
        .as_ref()
        .is_some_and(|keys| !keys.is_empty())
    {
        return;
    }
    let restricted: Vec<&PublicKeyHash> = tezos
        .iter()
        .filter(|(_, policy)| policy.authorized_keys.is_some())
        .map(|(pkh, _)| pkh)
        .collect();
    let Some(first) = restricted.first() else {
        return;
    };
    if restricted.len() == tezos.len() {
        return;
    }
    let which = match restricted.len() {
        1 => "this key names".to_owned(),
        n => format!("this key and {} other(s) name", n - 1),
    };
    c.warn(
        format!("tezos.{first}.authorized_keys"),
        format!(
            "{which} clients while other keys accept any client and `server.authorized_keys` \
             is not set: `GET /authorized_keys` then lists no key, Octez clients do not \
             authenticate, and their requests for these keys are refused (401); list the \
             clients under `server.authorized_keys` (every client then authenticates)"
        ),
    );
}

fn server(c: &mut Checker<'_>, raw: Option<RawServer>) -> Result<ServerConfig, ConfigError> {
    let raw = raw.unwrap_or(RawServer {
        base_path: None,
        address: None,
        utility_address: None,
        authorized_keys: None,
        jwt: None,
        allow_list_known_keys: None,
        allowed_origins: None,
        limits: None,
        tcp_address: None,
        unix_socket: None,
    });
    if raw.jwt.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(c.invalid(
            "server.jwt",
            "JWT authentication is not supported by this signer; remove `server.jwt` and \
             authenticate clients with `server.authorized_keys` (octez-client authentication keys)",
        ));
    }
    let address = listen_address(c, "server.address", raw.address, DEFAULT_ADDRESS)?;
    let utility_address = listen_address(
        c,
        "server.utility_address",
        raw.utility_address,
        DEFAULT_UTILITY_ADDRESS,
    )?;
    if address.port != 0 && address == utility_address {
        return Err(c.invalid(
            "server.utility_address",
            format!("is the same as `server.address` ({address}); give them different ports"),
        ));
    }
    let tcp_address = match raw.tcp_address.map(non_blank) {
        None => None,
        Some(None) => {
            return Err(c.invalid(
                "server.tcp_address",
                "is empty; expected `host:port` such as `127.0.0.1:7732`, or remove it (the \
                 socket protocol is then off)",
            ))
        }
        Some(Some(text)) => {
            let tcp =
                ListenAddress::parse(&text).map_err(|r| c.invalid("server.tcp_address", r))?;
            if tcp.port != 0 && (tcp == address || tcp == utility_address) {
                return Err(c.invalid(
                    "server.tcp_address",
                    format!("{tcp} is already used by `server.address` or `server.utility_address`; give it its own port (Octez's is 7732)"),
                ));
            }
            Some(tcp)
        }
    };
    let unix_socket = unix_socket(c, raw.unix_socket)?;
    let authorized_keys = public_keys(c, "server.authorized_keys", raw.authorized_keys)?;
    let base_path = base_path(c, raw.base_path)?;
    let limits = limits(c, raw.limits.unwrap_or_default())?;
    Ok(ServerConfig {
        address,
        utility_address,
        authorized_keys,
        base_path,
        allow_list_known_keys: raw.allow_list_known_keys.unwrap_or(false),
        allowed_origins: raw.allowed_origins.unwrap_or_default(),
        limits,
        tcp_address,
        unix_socket,
    })
}

/// An absolute path: a relative one would depend on the directory the signer starts in.
fn unix_socket(
    c: &Checker<'_>,
    raw: Option<Option<String>>,
) -> Result<Option<PathBuf>, ConfigError> {
    let path = match raw.map(non_blank) {
        None => return Ok(None),
        Some(None) => return Err(c.invalid("server.unix_socket", "is empty; expected the socket's absolute path, such as `/run/signatory/signer.sock`, or remove it")),
        Some(Some(text)) => PathBuf::from(text),
    };
    if !path.is_absolute() {
        return Err(c.invalid(
            "server.unix_socket",
            format!("`{}` is not an absolute path; write the whole path, such as `/run/signatory/signer.sock`", path.display()),
        ));
    }
    Ok(Some(path))
}

/// A request body holds the hex of the bytes to sign: an operation of Octez's largest size
/// (32 KiB) needs 64 KiB and its quotes.
const LARGEST_OPERATION_BODY: u64 = 2 * 32 * 1024 + 2;

/// More connections than any signer needs, far below the semaphore's limit.
const MAX_CONNECTIONS: u64 = 1 << 20;

fn limits(c: &mut Checker<'_>, raw: RawLimits) -> Result<ServerLimits, ConfigError> {
    let count = |c: &Checker<'_>, name: &str, value: Option<u64>| match value {
        None => Ok(None),
        Some(0) => Err(c.invalid(
            format!("server.limits.{name}"),
            "must be at least 1; remove it for the default",
        )),
        Some(n) => usize::try_from(n)
            .map(Some)
            .map_err(|_| c.invalid(format!("server.limits.{name}"), "is too large")),
    };
    let max_body_bytes = count(c, "max_body_bytes", raw.max_body_bytes)?;
    if raw
        .max_body_bytes
        .is_some_and(|n| n < LARGEST_OPERATION_BODY)
    {
        c.warn(
            "server.limits.max_body_bytes",
            format!(
                "is below {LARGEST_OPERATION_BODY}: the largest operations Octez forges (32 KiB) \
                 will be refused with 413"
            ),
        );
    }
    if raw.max_connections.is_some_and(|n| n > MAX_CONNECTIONS) {
        return Err(c.invalid(
            "server.limits.max_connections",
            format!("is more than {MAX_CONNECTIONS}; each connection holds a file descriptor"),
        ));
    }
    let max_connections = count(c, "max_connections", raw.max_connections)?;
    let timeout = |c: &Checker<'_>, name: &str, value: Option<String>| {
        let path = format!("server.limits.{name}");
        let Some(text) = value else {
            return Ok(None);
        };
        match duration::parse(&text) {
            Ok(d) if d < Duration::from_millis(1) => {
                Err(c.invalid(path, "must be at least 1ms; remove it for the default"))
            }
            Ok(d) => Ok(Some(d)),
            Err(reason) => Err(c.invalid(path, reason)),
        }
    };
    Ok(ServerLimits {
        max_body_bytes,
        max_connections,
        request_timeout: timeout(c, "request_timeout", raw.request_timeout)?,
        header_read_timeout: timeout(c, "header_read_timeout", raw.header_read_timeout)?,
        write_timeout: timeout(c, "write_timeout", raw.write_timeout)?,
    })
}

/// `server.base_path`: empty (the root) or `/segment[/segment…]`, normalised without a
/// trailing slash.
fn base_path(c: &Checker<'_>, raw: Option<String>) -> Result<String, ConfigError> {
    let Some(raw) = raw else {
        return Ok(String::new());
    };
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let valid = trimmed.starts_with('/')
        && trimmed
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "/-_.~".contains(ch))
        && !trimmed.contains("//");
    if !valid {
        return Err(c.invalid(
            "server.base_path",
            format!("`{raw}` is not a path prefix; write it like `/signer`"),
        ));
    }
    Ok(trimmed.to_string())
}

fn listen_address(
    c: &Checker<'_>,
    path: &str,
    raw: Option<Option<String>>,
    default: &str,
) -> Result<ListenAddress, ConfigError> {
    let raw = raw.map(non_blank);
    let text = match &raw {
        None => default,
        Some(None) => {
            return Err(c.invalid(
                path,
                format!("is empty; expected `host:port`, or remove it for the default `{default}`"),
            ))
        }
        Some(Some(text)) => text.as_str(),
    };
    ListenAddress::parse(text).map_err(|reason| c.invalid(path, reason))
}

fn vaults(
    c: &mut Checker<'_>,
    raw: Option<UniqueMap<Option<RawDriver>>>,
) -> Result<BTreeMap<String, VaultConfig>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, vault) in raw.unwrap_or_default() {
        let path = format!("vaults.{name}");
        if name.trim().is_empty() {
            return Err(c.invalid(&path, "a vault needs a non-empty name"));
        }
        let Some(RawDriver { driver, config }) = vault else {
            return Err(c.invalid(
                &path,
                "has no settings; expected `driver:` (e.g. `file`) and its `config:`",
            ));
        };
        let driver = driver_name(c, &path, driver, "e.g. `file` or `mem`")?;
        out.insert(
            name.clone(),
            VaultConfig {
                name,
                driver,
                config,
            },
        );
    }
    Ok(out)
}

fn driver_name(
    c: &Checker<'_>,
    path: &str,
    driver: Option<String>,
    examples: &str,
) -> Result<String, ConfigError> {
    match driver {
        Some(d) if !d.trim().is_empty() => Ok(d),
        _ => Err(c.invalid(
            format!("{path}.driver"),
            format!("is missing; name the driver ({examples})"),
        )),
    }
}

/// `authorized_keys`: one public key, or a list (ECAD also accepts nested lists).
fn public_keys(
    c: &Checker<'_>,
    path: &str,
    raw: Option<DriverSettings>,
) -> Result<Option<Vec<PublicKey>>, ConfigError> {
    let Some(raw) = raw.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let mut keys = Vec::new();
    collect_public_keys(c, path, &raw, &mut keys)?;
    if keys.is_empty() {
        return Err(c.invalid(
            path,
            "is an empty list; list at least one client public key, or remove it to accept \
             unauthenticated requests",
        ));
    }
    let mut seen = BTreeSet::new();
    keys.retain(|k| seen.insert(k.to_b58check()));
    Ok(Some(keys))
}

fn collect_public_keys(
    c: &Checker<'_>,
    path: &str,
    value: &DriverSettings,
    out: &mut Vec<PublicKey>,
) -> Result<(), ConfigError> {
    match value {
        DriverSettings::String(s) => {
            let key = PublicKey::from_b58check(s.trim()).map_err(|e| {
                c.invalid(
                    path,
                    format!(
                        "`{s}` is not a public key ({e}); expected edpk…, sppk…, p2pk… or BLpk…"
                    ),
                )
            })?;
            out.push(key);
            Ok(())
        }
        DriverSettings::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_public_keys(c, &format!("{path}[{i}]"), item, out)?;
            }
            Ok(())
        }
        _ => Err(c.invalid(
            path,
            "expected a public key (edpk…, sppk…, p2pk…, BLpk…) or a list of them",
        )),
    }
}

fn key_policy(
    c: &mut Checker<'_>,
    path: &str,
    pkh: &PublicKeyHash,
    raw: Option<RawPolicy>,
) -> Result<KeyPolicyConfig, ConfigError> {
    let Some(raw) = raw else {
        return Ok(KeyPolicyConfig::listed_without_policy());
    };
    if raw.jwt_users.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(c.invalid(
            format!("{path}.jwt_users"),
            "JWT authentication is not supported by this signer; remove `jwt_users` and \
             restrict clients with `authorized_keys`",
        ));
    }
    let mut policy = KeyPolicyConfig::allow_nothing();
    let legacy = raw.allowed_operations.is_some() || raw.allowed_kinds.is_some();
    match raw.allow {
        Some(allow) => {
            if legacy {
                c.warn(
                    path,
                    "`allowed_operations` and `allowed_kinds` are ignored because `allow` is \
                     set; remove them",
                );
            }
            for (kind, operations) in allow {
                let kind_path = format!("{path}.allow.{kind}");
                let kind = request_kind(c, &kind_path, &kind)?;
                if kind == "generic" {
                    let operations = operations.unwrap_or_default();
                    if operations.is_empty() {
                        c.warn(
                            &kind_path,
                            "lists no operation kinds: every generic request will be refused",
                        );
                    }
                    for (i, op) in operations.iter().enumerate() {
                        let op = operation_kind(c, &format!("{kind_path}[{i}]"), op)?;
                        policy.allowed_operations.insert(op);
                    }
                } else if operations.is_some_and(|ops| !ops.is_empty()) {
                    c.warn(
                        &kind_path,
                        "only `generic` takes a list of operation kinds; these items are ignored",
                    );
                }
                policy.allowed_requests.insert(kind);
            }
        }
        None if legacy => {
            for (i, kind) in raw.allowed_operations.iter().flatten().enumerate() {
                let kind = request_kind(c, &format!("{path}.allowed_operations[{i}]"), kind)?;
                policy.allowed_requests.insert(kind);
            }
            for (i, op) in raw.allowed_kinds.iter().flatten().enumerate() {
                let op = operation_kind(c, &format!("{path}.allowed_kinds[{i}]"), op)?;
                policy.allowed_operations.insert(op);
            }
            let replacement = allow_equivalent(&policy);
            c.warn(
                path,
                format!(
                    "`allowed_operations` and `allowed_kinds` are deprecated; replace them with \
                     `{replacement}`"
                ),
            );
            if !policy.allowed_operations.is_empty() && !policy.allowed_requests.contains("generic")
            {
                c.warn(
                    format!("{path}.allowed_kinds"),
                    "has no effect: `generic` is not among `allowed_operations`",
                );
            }
        }
        None => {}
    }
    if policy.allowed_requests.is_empty() {
        c.warn(
            path,
            "allows no request kind: every signing request for this key will be refused \
             (list the key with no value for block, preattestation and attestation)",
        );
    }
    if pkh.curve() == Curve::Bls12_381 && policy.allowed_requests.contains("attestation_with_dal") {
        c.warn(
            format!("{path}.allow.attestation_with_dal"),
            "has no effect for a tz4 key: BLS keys attest with the `attestation` kind, DAL \
             content included",
        );
    }
    if let Some(chains) = raw.allowed_chains {
        let mut set = BTreeSet::new();
        for (i, chain) in chains.iter().enumerate() {
            let id = ChainId::from_b58check(chain.trim()).map_err(|e| {
                c.invalid(
                    format!("{path}.allowed_chains[{i}]"),
                    format!(
                        "`{chain}` is not a chain id ({e}); expected Net… such as NetXdQprcVkpaWU"
                    ),
                )
            })?;
            set.insert(id);
        }
        if set.is_empty() {
            c.warn(
                format!("{path}.allowed_chains"),
                "is an empty list: every request that names a chain will be refused",
            );
        }
        policy.allowed_chains = Some(set);
    }
    if raw.allow_proof_of_possession == Some(true) {
        if pkh.curve() == Curve::Bls12_381 {
            policy.allow_proof_of_possession = true;
        } else {
            c.warn(
                format!("{path}.allow_proof_of_possession"),
                "is ignored: proofs of possession exist only for tz4 (BLS) keys",
            );
        }
    }
    policy.log_payloads = raw.log_payloads.unwrap_or(false);
    policy.authorized_keys =
        public_keys(c, &format!("{path}.authorized_keys"), raw.authorized_keys)?;
    Ok(policy)
}

fn request_kind(c: &mut Checker<'_>, path: &str, kind: &str) -> Result<String, ConfigError> {
    if kinds::is_request_kind(kind) {
        return Ok(kind.to_owned());
    }
    if let Some(current) = kinds::legacy_request_kind(kind) {
        c.warn(
            path,
            format!("`{kind}` is a deprecated name; write `{current}`"),
        );
        return Ok(current.to_owned());
    }
    Err(c.invalid(
        path,
        format!(
            "unknown request kind `{kind}`; expected one of {}",
            kinds::REQUEST_KINDS.join(", ")
        ),
    ))
}

fn operation_kind(c: &mut Checker<'_>, path: &str, kind: &str) -> Result<String, ConfigError> {
    if kinds::is_operation_kind(kind) {
        return Ok(kind.to_owned());
    }
    if let Some(current) = kinds::legacy_operation_kind(kind) {
        c.warn(
            path,
            format!("`{kind}` is a deprecated name; write `{current}`"),
        );
        return Ok(current.to_owned());
    }
    let hint = if let Some(vote) = kind.strip_prefix("ballot:") {
        format!("`{vote}` is not a vote; expected ballot:yay, ballot:nay or ballot:pass")
    } else {
        format!(
            "expected an operation kind ({}) or one of {}",
            kinds::OPERATION_KINDS.join(", "),
            kinds::PSEUDO_OPERATION_KINDS.join(", ")
        )
    };
    Err(c.invalid(path, format!("unknown operation kind `{kind}`; {hint}")))
}

/// The `allow:` mapping equivalent to a legacy policy, in YAML flow style.
fn allow_equivalent(policy: &KeyPolicyConfig) -> String {
    let entries: Vec<String> = policy
        .allowed_requests
        .iter()
        .map(|kind| {
            if kind == "generic" {
                let ops: Vec<&str> = policy
                    .allowed_operations
                    .iter()
                    .map(String::as_str)
                    .collect();
                format!("generic: [{}]", ops.join(", "))
            } else {
                format!("{kind}: []")
            }
        })
        .collect();
    format!("allow: {{{}}}", entries.join(", "))
}
