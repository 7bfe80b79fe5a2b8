//! The `hashicorpvault` driver's settings: ECAD Signatory's keys (camelCase) plus a plain
//! `token`, `token_file` and `namespace`. Checked without I/O; files are read at open.

use crate::error::OpenError;
use serde::Deserialize;
use signatory_config::DriverSettings;
use std::fmt;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// The token when neither `token`, `token_file` nor AppRole is configured (the Vault and
/// OpenBao CLIs read it too).
pub const ENV_TOKEN: &str = "VAULT_TOKEN";
/// The AppRole secret id when `roleID` is given without `secretID`.
pub const ENV_SECRET_ID: &str = "VAULT_SECRET_ID";

/// The mount of the transit engine when `transitConfig.mountPoint` is absent.
const DEFAULT_MOUNT: &str = "transit";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    address: String,
    #[serde(default, rename = "roleID")]
    role_id: Option<String>,
    #[serde(default, rename = "secretID", deserialize_with = "secret")]
    secret_id: Option<Zeroizing<String>>,
    #[serde(default, deserialize_with = "secret")]
    token: Option<Zeroizing<String>>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default, rename = "tlsCaCert")]
    tls_ca_cert: Option<PathBuf>,
    #[serde(default, rename = "tlsClientCert")]
    tls_client_cert: Option<PathBuf>,
    #[serde(default, rename = "tlsClientKey")]
    tls_client_key: Option<PathBuf>,
    #[serde(default, rename = "transitConfig")]
    transit_config: Option<RawTransit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransit {
    #[serde(default, rename = "mountPoint")]
    mount_point: Option<String>,
}

/// A secret as a string; any other YAML value is refused without echoing it.
fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Zeroizing<String>>, D::Error> {
    match serde_yaml_ng::Value::deserialize(d)? {
        serde_yaml_ng::Value::Null => Ok(None),
        serde_yaml_ng::Value::String(s) => Ok(Some(Zeroizing::new(s))),
        _ => Err(serde::de::Error::custom("must be a string")),
    }
}

/// How the driver authenticates to Vault.
#[derive(Clone)]
pub enum Credentials {
    /// A token given as is (a periodic or long-lived token, or root in tests).
    Token(Zeroizing<String>),
    /// A token read from this file at open (a Vault Agent sink).
    TokenFile(PathBuf),
    /// AppRole: `auth/approle/login` with these ids; the token is kept and renewed.
    AppRole {
        role_id: String,
        secret_id: Zeroizing<String>,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token(REDACTED)"),
            Credentials::TokenFile(path) => f.debug_tuple("TokenFile").field(path).finish(),
            Credentials::AppRole { role_id, .. } => f
                .debug_struct("AppRole")
                .field("role_id", role_id)
                .field("secret_id", &"REDACTED")
                .finish(),
        }
    }
}

/// The parsed settings of one `hashicorpvault` vault.
#[derive(Debug, Clone)]
pub struct TransitSettings {
    /// `http(s)://host:port`, without a trailing slash.
    pub address: reqwest::Url,
    pub credentials: Credentials,
    pub namespace: Option<String>,
    /// The mount path of the transit engine, without leading or trailing slashes.
    pub mount: Vec<String>,
    pub tls_ca_cert: Option<PathBuf>,
    /// Client certificate and key (both or neither).
    pub tls_client: Option<(PathBuf, PathBuf)>,
}

impl TransitSettings {
    /// Parse `settings`; `lookup` reads the environment fallbacks (`VAULT_TOKEN`,
    /// `VAULT_SECRET_ID`). Errors name `vaults.<vault>.config.<key>`.
    pub fn parse(
        vault: &str,
        settings: &DriverSettings,
        lookup: &dyn Fn(&str) -> Option<Zeroizing<String>>,
    ) -> Result<Self, OpenError> {
        let raw: Raw = crate::error::parse_settings(vault, settings)?;
        let error = |key: &str, message: String| OpenError::Config {
            vault: vault.to_owned(),
            key_path: format!("vaults.{vault}.config.{key}"),
            message,
        };
        let address = parse_address(&raw.address).map_err(|m| error("address", m))?;
        let nonempty = |s: Option<Zeroizing<String>>| s.filter(|s| !s.trim().is_empty());
        let env = |name: &str| nonempty(lookup(name));
        let role_id = raw.role_id.filter(|r| !r.trim().is_empty());
        let token = nonempty(raw.token);
        let credentials = match (role_id, token, raw.token_file) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(error(
                    "token",
                    "give either AppRole (`roleID`, `secretID`) or a token (`token`, \
                     `token_file`), not both"
                        .to_owned(),
                ))
            }
            (None, Some(_), Some(_)) => {
                return Err(error(
                    "token_file",
                    "give `token` or `token_file`, not both".to_owned(),
                ))
            }
            (Some(role_id), None, None) => {
                let secret_id = nonempty(raw.secret_id)
                    .or_else(|| env(ENV_SECRET_ID))
                    .ok_or_else(|| {
                        error(
                            "secretID",
                            format!(
                                "is missing; AppRole needs the secret id here or in \
                                 {ENV_SECRET_ID}"
                            ),
                        )
                    })?;
                Credentials::AppRole { role_id, secret_id }
            }
            (None, Some(token), None) => Credentials::Token(token),
            (None, None, Some(path)) => Credentials::TokenFile(path),
            (None, None, None) => {
                if nonempty(raw.secret_id).is_some() {
                    return Err(error(
                        "roleID",
                        "is missing; `secretID` needs the AppRole's role id".to_owned(),
                    ));
                }
                Credentials::Token(env(ENV_TOKEN).ok_or_else(|| {
                    error(
                        "roleID",
                        format!(
                            "no credentials: give AppRole (`roleID`, `secretID`), `token`, \
                             `token_file`, or set {ENV_TOKEN}"
                        ),
                    )
                })?)
            }
        };
        let mount_text = raw
            .transit_config
            .and_then(|t| t.mount_point)
            .unwrap_or_else(|| DEFAULT_MOUNT.to_owned());
        let mount = parse_mount(&mount_text).map_err(|m| error("transitConfig.mountPoint", m))?;
        let tls_client = match (raw.tls_client_cert, raw.tls_client_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(error(
                    "tlsClientKey",
                    "is missing; a client certificate needs its key".to_owned(),
                ))
            }
            (None, Some(_)) => {
                return Err(error(
                    "tlsClientCert",
                    "is missing; a client key needs its certificate".to_owned(),
                ))
            }
        };
        Ok(TransitSettings {
            address,
            credentials,
            namespace: raw.namespace.filter(|n| !n.trim().is_empty()),
            mount,
            tls_ca_cert: raw.tls_ca_cert,
            tls_client,
        })
    }

    /// The environment variables holding secrets these settings would fall back to.
    pub fn secret_variables(settings: &DriverSettings) -> Vec<String> {
        let given = |key: &str| {
            settings
                .get(key)
                .and_then(DriverSettings::as_str)
                .is_some_and(|v| !v.trim().is_empty())
                || settings
                    .get(key)
                    .is_some_and(|v| !v.is_null() && !v.is_string())
        };
        if given("roleID") {
            if given("secretID") {
                Vec::new()
            } else {
                vec![ENV_SECRET_ID.to_owned()]
            }
        } else if given("token") || given("token_file") {
            Vec::new()
        } else {
            vec![ENV_TOKEN.to_owned()]
        }
    }
}

/// An `http://` or `https://` URL with a host and nothing after the port.
fn parse_address(text: &str) -> Result<reqwest::Url, String> {
    let bad = |why: &str| {
        format!("`{text}` is not a Vault address ({why}); e.g. https://vault.example:8200")
    };
    let url = reqwest::Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("no user, query or fragment may follow"));
    }
    Ok(url)
}

/// `transit`, `/transit/`, `team/transit` → path segments; `..`, empty or odd segments are
/// refused so that a key request cannot leave the mount.
fn parse_mount(text: &str) -> Result<Vec<String>, String> {
    let segments: Vec<String> = text
        .trim()
        .trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    let valid = |s: &String| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if segments.iter().all(valid) {
        Ok(segments)
    } else {
        Err(format!(
            "`{text}` is not a mount path (letters, digits, `-`, `_`, `.` between slashes)"
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> DriverSettings {
        serde_yaml_ng::from_str(text).unwrap()
    }

    fn no_env(_: &str) -> Option<Zeroizing<String>> {
        None
    }

    #[test]
    fn ecads_example_parses_as_approle_and_hides_the_secret_id() {
        let s = TransitSettings::parse(
            "hv",
            &yaml(
                "address: \"http://127.0.0.1:8200\"\nroleID: \"5970e31e\"\nsecretID: \
                 \"aa9c4a24-secret\"\ntransitConfig:\n    mountPoint: \"transit/\"\n",
            ),
            &no_env,
        )
        .unwrap();
        assert_eq!(s.mount, vec!["transit".to_owned()]);
        assert!(
            matches!(&s.credentials, Credentials::AppRole { role_id, .. } if role_id == "5970e31e")
        );
        assert!(!format!("{s:?}").contains("aa9c4a24-secret"));
        assert_eq!(s.address.as_str(), "http://127.0.0.1:8200/");
    }

    #[test]
    fn a_token_comes_from_the_settings_a_file_or_vault_token() {
        let s = TransitSettings::parse(
            "hv",
            &yaml("{address: 'https://v:8200', token: s.abc}"),
            &no_env,
        )
        .unwrap();
        assert!(matches!(&s.credentials, Credentials::Token(t) if t.as_str() == "s.abc"));
        assert!(!format!("{s:?}").contains("s.abc"));
        let env = |name: &str| (name == ENV_TOKEN).then(|| Zeroizing::new("s.env".to_owned()));
        let s = TransitSettings::parse("hv", &yaml("{address: 'https://v:8200'}"), &env).unwrap();
        assert!(matches!(&s.credentials, Credentials::Token(t) if t.as_str() == "s.env"));
        let s = TransitSettings::parse(
            "hv",
            &yaml("{address: 'https://v:8200', token_file: /run/token}"),
            &env,
        )
        .unwrap();
        assert!(matches!(&s.credentials, Credentials::TokenFile(_)));
        assert_eq!(
            TransitSettings::secret_variables(&yaml("{address: x}")),
            vec![ENV_TOKEN.to_owned()]
        );
        assert_eq!(
            TransitSettings::secret_variables(&yaml("{address: x, roleID: r}")),
            vec![ENV_SECRET_ID.to_owned()]
        );
        assert!(TransitSettings::secret_variables(&yaml("{address: x, token: t}")).is_empty());
    }

    #[test]
    fn bad_settings_name_the_key_without_echoing_secrets() {
        let err = |text: &str| {
            TransitSettings::parse("hv", &yaml(text), &no_env)
                .unwrap_err()
                .to_string()
        };
        let e = err("{address: 'ftp://v', token: t}");
        assert!(e.contains("vaults.hv.config.address"), "{e}");
        let e = err("{address: 'http://v', token: t, roleID: r, secretID: s}");
        assert!(
            e.contains("vaults.hv.config.token") && e.contains("not both"),
            "{e}"
        );
        let e = err("{address: 'http://v', roleID: r}");
        assert!(
            e.contains("vaults.hv.config.secretID") && e.contains(ENV_SECRET_ID),
            "{e}"
        );
        let e = err("{address: 'http://v'}");
        assert!(e.contains("no credentials"), "{e}");
        let e = err("{address: 'http://v', token: t, transitConfig: {mountPoint: '../sys'}}");
        assert!(
            e.contains("vaults.hv.config.transitConfig.mountPoint"),
            "{e}"
        );
        let e = err("{address: 'http://v', token: t, tlsClientCert: /c.pem}");
        assert!(e.contains("vaults.hv.config.tlsClientKey"), "{e}");
        let e = err("{address: 'http://v', token: {nested: hunter22}}");
        assert!(
            e.contains("vaults.hv.config.token") && !e.contains("hunter22"),
            "{e}"
        );
        let e = err("{address: 'http://v', token: t, mountpoint: x}");
        assert!(e.contains("vaults.hv.config"), "{e}");
    }

    #[test]
    fn nested_mounts_keep_their_segments() {
        assert_eq!(
            parse_mount("/team/transit/").unwrap(),
            vec!["team".to_owned(), "transit".to_owned()]
        );
        assert!(parse_mount("").is_err());
        assert!(parse_mount("a//b").is_err());
        assert!(parse_mount("a?b").is_err());
    }
}
