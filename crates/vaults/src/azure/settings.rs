//! The `azure` driver's settings: ECAD Signatory's keys (and its `AZURE_*` environment
//! fallbacks), plus `authority_host` and `key_type`. Parsing does no I/O; the files named
//! here are read when the vault opens.

use crate::error::{parse_settings, OpenError};
use serde::Deserialize;
use signatory_config::DriverSettings;
use std::fmt;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// ECAD's environment fallbacks, read when the setting is absent or empty.
pub const ENV_TENANT: &str = "AZURE_CLIENT_TENANT";
pub const ENV_CLIENT_ID: &str = "AZURE_CLIENT_ID";
pub const ENV_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
pub const ENV_PKCS12: &str = "AZURE_CLIENT_PKCS12_CERTIFICATE";
pub const ENV_CERTIFICATE: &str = "AZURE_CLIENT_CERTIFICATE";
pub const ENV_THUMBPRINT: &str = "AZURE_CLIENT_CERTIFICATE_THUMBPRINT";
pub const ENV_PRIVATE_KEY: &str = "AZURE_CLIENT_PRIVATE_KEY";
pub const ENV_DECRYPT_PASSWORD: &str = "AZURE_DECRYPT_PASSWORD";
/// App Service / Functions managed identity (set by the platform).
pub const ENV_IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
pub const ENV_IDENTITY_HEADER: &str = "IDENTITY_HEADER";
/// The Azure SDKs' override of the IMDS address (AKS pod identity; tests).
pub const ENV_IMDS_HOST: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";

/// The variables holding secrets: taken out of the environment at start.
pub const SECRET_VARIABLES: [&str; 3] =
    [ENV_CLIENT_SECRET, ENV_DECRYPT_PASSWORD, ENV_IDENTITY_HEADER];

const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
const DEFAULT_IMDS: &str = "http://169.254.169.254";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with at least `vault`")]
struct Raw {
    vault: Option<String>,
    tenant_id: Option<String>,
    client_id: Option<String>,
    #[serde(default, deserialize_with = "secret_text")]
    client_secret: Option<Zeroizing<String>>,
    client_pkcs12_certificate: Option<PathBuf>,
    client_certificate: Option<PathBuf>,
    client_certificate_thumbprint: Option<String>,
    client_private_key: Option<PathBuf>,
    #[serde(default, deserialize_with = "secret_text")]
    decrypt_password: Option<Zeroizing<String>>,
    /// ECAD: with `resource_group`, the Azure Resource Health check of the vault.
    subscription_id: Option<String>,
    resource_group: Option<String>,
    authority_host: Option<String>,
    key_type: Option<KeyType>,
}

/// A secret as a string; any other YAML value is refused without being echoed.
fn secret_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Zeroizing<String>>, D::Error> {
    match serde_yaml_ng::Value::deserialize(d)? {
        serde_yaml_ng::Value::Null => Ok(None),
        serde_yaml_ng::Value::String(s) => Ok(Some(Zeroizing::new(s))),
        _ => Err(serde::de::Error::custom("must be a string")),
    }
}

/// Where keys made by `generate` (and imported keys) live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KeyType {
    /// Inside the vault's HSMs (Key Vault Premium, Managed HSM).
    #[serde(rename = "EC-HSM")]
    EcHsm,
    /// Software-protected (Key Vault Standard).
    #[serde(rename = "EC")]
    Ec,
}

impl KeyType {
    pub fn kty(self) -> &'static str {
        match self {
            KeyType::EcHsm => "EC-HSM",
            KeyType::Ec => "EC",
        }
    }
}

/// How the vault obtains its access tokens, in ECAD's order of preference.
#[derive(Clone)]
pub enum CredentialSettings {
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: Zeroizing<String>,
    },
    Pkcs12 {
        tenant_id: String,
        client_id: String,
        path: PathBuf,
        password: Option<Zeroizing<String>>,
    },
    PrivateKey {
        tenant_id: String,
        client_id: String,
        key_path: PathBuf,
        password: Option<Zeroizing<String>>,
        thumbprint: Thumbprint,
    },
    /// No client credential configured: the host's managed identity (user-assigned when
    /// `client_id` is given).
    ManagedIdentity {
        client_id: Option<String>,
        endpoint: ManagedIdentityEndpoint,
    },
}

/// Where the certificate's SHA-1 thumbprint comes from.
#[derive(Debug, Clone)]
pub enum Thumbprint {
    Given([u8; 20]),
    /// The PEM certificate file (ECAD's `client_certificate`).
    CertificateFile(PathBuf),
}

#[derive(Clone)]
pub enum ManagedIdentityEndpoint {
    /// The Instance Metadata Service (VMs, AKS, Container Instances).
    Imds { base: String },
    /// App Service / Functions: the endpoint and the header secret the platform sets.
    AppService {
        endpoint: String,
        header: Zeroizing<String>,
    },
}

impl fmt::Debug for ManagedIdentityEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagedIdentityEndpoint::Imds { base } => write!(f, "IMDS {base}"),
            ManagedIdentityEndpoint::AppService { endpoint, .. } => {
                write!(f, "App Service {endpoint} (header REDACTED)")
            }
        }
    }
}

impl fmt::Debug for CredentialSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSettings::ClientSecret {
                tenant_id,
                client_id,
                ..
            } => f
                .debug_struct("ClientSecret")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("secret", &"REDACTED")
                .finish(),
            CredentialSettings::Pkcs12 {
                tenant_id,
                client_id,
                path,
                ..
            } => f
                .debug_struct("Pkcs12")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("path", path)
                .finish_non_exhaustive(),
            CredentialSettings::PrivateKey {
                tenant_id,
                client_id,
                key_path,
                thumbprint,
                ..
            } => f
                .debug_struct("PrivateKey")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("key_path", key_path)
                .field("thumbprint", thumbprint)
                .finish_non_exhaustive(),
            CredentialSettings::ManagedIdentity {
                client_id,
                endpoint,
            } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .field("endpoint", endpoint)
                .finish(),
        }
    }
}

/// The parsed settings of one `azure` vault.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    /// The vault's base URL without a trailing slash (`https://name.vault.azure.net`).
    pub vault: String,
    /// The token audience: `https://vault.azure.net` (or the sovereign cloud's, or
    /// `https://managedhsm.azure.net`).
    pub resource: String,
    /// The Entra ID endpoint, without a trailing slash.
    pub authority_host: String,
    pub credential: CredentialSettings,
    pub key_type: KeyType,
    /// Accepted for ECAD configurations; see the doc page.
    pub subscription_id: Option<String>,
    pub resource_group: Option<String>,
}

impl AzureSettings {
    /// Parse `settings`, taking absent values from `lookup` (the environment as
    /// [`crate::EnvPasswords`] holds it); errors name `vaults.<vault>.config.<key>`.
    pub fn parse(
        vault: &str,
        settings: &DriverSettings,
        lookup: &dyn Fn(&str) -> Option<Zeroizing<String>>,
    ) -> Result<Self, OpenError> {
        let raw: Raw = parse_settings(vault, settings)?;
        let error = |key: &str, message: String| OpenError::Config {
            vault: vault.to_owned(),
            key_path: format!("vaults.{vault}.config.{key}"),
            message,
        };
        let env = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let text = |given: Option<String>, name: &str| {
            given
                .filter(|v| !v.is_empty())
                .or_else(|| env(name).map(|v| v.to_string()))
        };
        let secret = |given: Option<Zeroizing<String>>, name: &str| {
            given.filter(|v| !v.is_empty()).or_else(|| env(name))
        };
        let path = |given: Option<PathBuf>, name: &str| {
            given
                .filter(|p| !p.as_os_str().is_empty())
                .or_else(|| env(name).map(|v| PathBuf::from(v.as_str())))
        };

        let vault_url = raw.vault.filter(|v| !v.is_empty()).ok_or_else(|| {
            error(
                "vault",
                "is missing; give the vault's URL (https://<name>.vault.azure.net)".to_owned(),
            )
        })?;
        let (vault_url, host) = base_url(&vault_url).map_err(|m| error("vault", m))?;
        let authority_host = match raw.authority_host.filter(|a| !a.is_empty()) {
            Some(a) => base_url(&a).map_err(|m| error("authority_host", m))?.0,
            None => DEFAULT_AUTHORITY.to_owned(),
        };

        let tenant_id = text(raw.tenant_id, ENV_TENANT);
        let client_id = text(raw.client_id, ENV_CLIENT_ID);
        let password = secret(raw.decrypt_password, ENV_DECRYPT_PASSWORD);
        let needs_ids = |what: &str| -> Result<(String, String), OpenError> {
            let tenant = tenant_id.clone().ok_or_else(|| {
                error(
                    "tenant_id",
                    format!("is missing; {what} needs the tenant (directory) id (or {ENV_TENANT})"),
                )
            })?;
            let client = client_id.clone().ok_or_else(|| {
                error(
                    "client_id",
                    format!(
                        "is missing; {what} needs the application (client) id (or {ENV_CLIENT_ID})"
                    ),
                )
            })?;
            Ok((tenant, client))
        };

        let credential = if let Some(secret) = secret(raw.client_secret, ENV_CLIENT_SECRET) {
            let (tenant_id, client_id) = needs_ids("a client secret")?;
            CredentialSettings::ClientSecret {
                tenant_id,
                client_id,
                secret,
            }
        } else if let Some(path) = path(raw.client_pkcs12_certificate, ENV_PKCS12) {
            let (tenant_id, client_id) = needs_ids("a client certificate")?;
            CredentialSettings::Pkcs12 {
                tenant_id,
                client_id,
                path,
                password,
            }
        } else if let Some(key_path) = path(raw.client_private_key, ENV_PRIVATE_KEY) {
            let (tenant_id, client_id) = needs_ids("a client certificate")?;
            let thumbprint = match path(raw.client_certificate, ENV_CERTIFICATE) {
                Some(certificate) => Thumbprint::CertificateFile(certificate),
                None => {
                    let given = text(raw.client_certificate_thumbprint, ENV_THUMBPRINT)
                        .ok_or_else(|| {
                            error(
                                "client_certificate_thumbprint",
                                "is missing; `client_private_key` needs the certificate's SHA-1 \
                                 thumbprint (hex or base64) or `client_certificate`"
                                    .to_owned(),
                            )
                        })?;
                    Thumbprint::Given(
                        parse_thumbprint(&given)
                            .map_err(|m| error("client_certificate_thumbprint", m))?,
                    )
                }
            };
            CredentialSettings::PrivateKey {
                tenant_id,
                client_id,
                key_path,
                password,
                thumbprint,
            }
        } else {
            let endpoint = match (env(ENV_IDENTITY_ENDPOINT), env(ENV_IDENTITY_HEADER)) {
                (Some(endpoint), Some(header)) => {
                    let endpoint = endpoint.to_string();
                    check_transport(&endpoint).map_err(|m| {
                        error(
                            "vault",
                            format!("the managed identity endpoint {ENV_IDENTITY_ENDPOINT}: {m}"),
                        )
                    })?;
                    ManagedIdentityEndpoint::AppService { endpoint, header }
                }
                _ => ManagedIdentityEndpoint::Imds {
                    base: env(ENV_IMDS_HOST)
                        .map(|h| h.trim_end_matches('/').to_owned())
                        .unwrap_or_else(|| DEFAULT_IMDS.to_owned()),
                },
            };
            CredentialSettings::ManagedIdentity {
                client_id,
                endpoint,
            }
        };

        Ok(AzureSettings {
            resource: resource_of(&host),
            vault: vault_url,
            authority_host,
            credential,
            key_type: raw.key_type.unwrap_or(KeyType::EcHsm),
            subscription_id: raw.subscription_id.filter(|s| !s.is_empty()),
            resource_group: raw.resource_group.filter(|s| !s.is_empty()),
        })
    }
}

/// `url` without its trailing slash, and its host: https, or http to a loopback address
/// only (a bearer token must not cross a network in clear); no query or credentials.
fn base_url(url: &str) -> Result<(String, String), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    check_transport(url)?;
    if parsed.query().is_some()
        || parsed.fragment().is_some()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err(format!("`{url}` must be a plain https://host[/path] URL"));
    }
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    Ok((url.trim_end_matches('/').to_owned(), host))
}

/// https anywhere, http only to a loopback address.
fn check_transport(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        scheme => Err(format!(
            "`{url}`: the scheme must be https (`{scheme}` is allowed only to a loopback address)"
        )),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// The token audience of a vault host: the host without the vault's own name
/// (`x.vault.azure.net` → `https://vault.azure.net`, `x.managedhsm.azure.net` →
/// `https://managedhsm.azure.net`, `x.vault.azure.cn` → `https://vault.azure.cn`); a
/// loopback or other host (tests) gets the public cloud's.
fn resource_of(host: &str) -> String {
    match host.split_once('.') {
        Some((_, rest))
            if rest.contains('.')
                && (rest.starts_with("vault.") || rest.starts_with("managedhsm.")) =>
        {
            format!("https://{rest}")
        }
        _ => "https://vault.azure.net".to_owned(),
    }
}

/// A SHA-1 thumbprint as ECAD reads it: 40 hex digits, else base64 (URL-safe or not,
/// padded or not) of 20 bytes. The message does not echo the value.
pub(crate) fn parse_thumbprint(text: &str) -> Result<[u8; 20], String> {
    use base64::Engine;
    let text = text.trim();
    let bytes = hex::decode(text)
        .ok()
        .filter(|b| b.len() == 20)
        .or_else(|| {
            let engines = [
                base64::engine::general_purpose::URL_SAFE,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::STANDARD_NO_PAD,
            ];
            engines
                .iter()
                .find_map(|e| e.decode(text).ok().filter(|b| b.len() == 20))
        })
        .ok_or_else(|| {
            "is not a SHA-1 thumbprint (40 hex digits, or base64 of 20 bytes)".to_owned()
        })?;
    let mut out = [0u8; 20];
    out.copy_from_slice(&bytes);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(yaml: &str, env: &[(&str, &str)]) -> Result<AzureSettings, OpenError> {
        let settings: DriverSettings = serde_yaml_ng::from_str(yaml).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AzureSettings::parse("az", &settings, &|name| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| Zeroizing::new(v.clone()))
        })
    }

    #[test]
    fn ecad_client_secret_settings_parse_and_hide_the_secret() {
        let s = parse(
            "vault: https://signatory.vault.azure.net/\ntenant_id: t\nclient_id: c\n\
             client_secret: s3cr3t-value\nsubscription_id: sub\nresource_group: rg\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.vault, "https://signatory.vault.azure.net");
        assert_eq!(s.resource, "https://vault.azure.net");
        assert_eq!(s.authority_host, "https://login.microsoftonline.com");
        assert!(matches!(
            s.credential,
            CredentialSettings::ClientSecret { .. }
        ));
        assert!(!format!("{s:?}").contains("s3cr3t-value"));
        assert_eq!(s.key_type, KeyType::EcHsm);
        assert_eq!(s.resource_group.as_deref(), Some("rg"));
    }

    #[test]
    fn the_environment_fills_absent_settings_as_ecad_reads_it() {
        let s = parse(
            "vault: https://v.vault.azure.net\n",
            &[
                (ENV_TENANT, "t"),
                (ENV_CLIENT_ID, "c"),
                (ENV_CLIENT_SECRET, "x"),
            ],
        )
        .unwrap();
        match s.credential {
            CredentialSettings::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => {
                assert_eq!(
                    (tenant_id.as_str(), client_id.as_str(), secret.as_str()),
                    ("t", "c", "x")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback() {
        let e = parse("vault: http://v.vault.azure.net\nclient_secret: x\n", &[]).unwrap_err();
        assert!(e.to_string().contains("vaults.az.config.vault"), "{e}");
        assert!(e.to_string().contains("must be https"), "{e}");
        let e = parse(
            "vault: https://v.vault.azure.net\nauthority_host: http://login.example\n",
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("authority_host"), "{e}");
        assert!(parse("vault: http://127.0.0.1:8080/\n", &[]).is_ok());
        assert!(parse("vault: http://[::1]:8080\n", &[]).is_ok());
        let e = parse(
            "vault: https://v.vault.azure.net\n",
            &[
                (ENV_IDENTITY_ENDPOINT, "http://10.0.0.1/msi"),
                (ENV_IDENTITY_HEADER, "h"),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("IDENTITY_ENDPOINT"), "{e}");
    }

    #[test]
    fn missing_ids_name_the_key_and_not_the_secret() {
        let e = parse(
            "vault: https://v.vault.azure.net\nclient_secret: hunter2\n",
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("vaults.az.config.tenant_id"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = parse(
            "vault: https://v.vault.azure.net\nclient_secret: x\nextra: 1\n",
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `extra`"), "{e}");
    }

    #[test]
    fn no_client_credential_means_managed_identity() {
        let s = parse("vault: https://v.vault.azure.net\nclient_id: uami\n", &[]).unwrap();
        match s.credential {
            CredentialSettings::ManagedIdentity {
                client_id,
                endpoint: ManagedIdentityEndpoint::Imds { base },
            } => {
                assert_eq!(client_id.as_deref(), Some("uami"));
                assert_eq!(base, "http://169.254.169.254");
            }
            other => panic!("{other:?}"),
        }
        let s = parse(
            "vault: https://v.vault.azure.net\n",
            &[
                (ENV_IDENTITY_ENDPOINT, "http://127.0.0.1:41/msi/token"),
                (ENV_IDENTITY_HEADER, "hdr-secret"),
            ],
        )
        .unwrap();
        assert!(matches!(
            s.credential,
            CredentialSettings::ManagedIdentity {
                endpoint: ManagedIdentityEndpoint::AppService { .. },
                ..
            }
        ));
        assert!(!format!("{s:?}").contains("hdr-secret"));
    }

    #[test]
    fn thumbprints_are_hex_or_base64_of_twenty_bytes() {
        use base64::Engine;
        let hex = "6B7DDE60582104C37600BB337555E7517F5B834C";
        let bytes = parse_thumbprint(hex).unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(parse_thumbprint(&b64).unwrap(), bytes);
        assert!(parse_thumbprint("abcd").is_err());
        let s = parse(
            &format!(
                "vault: https://v.vault.azure.net\ntenant_id: t\nclient_id: c\n\
                 client_private_key: k.pem\nclient_certificate_thumbprint: {hex}\n"
            ),
            &[],
        )
        .unwrap();
        assert!(matches!(
            s.credential,
            CredentialSettings::PrivateKey { thumbprint: Thumbprint::Given(b), .. } if b == bytes
        ));
    }

    #[test]
    fn the_token_audience_follows_the_vault_host() {
        assert_eq!(resource_of("x.vault.azure.net"), "https://vault.azure.net");
        assert_eq!(
            resource_of("x.managedhsm.azure.net"),
            "https://managedhsm.azure.net"
        );
        assert_eq!(resource_of("x.vault.azure.cn"), "https://vault.azure.cn");
        assert_eq!(resource_of("127.0.0.1"), "https://vault.azure.net");
    }
}
