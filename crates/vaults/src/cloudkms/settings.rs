//! The `cloudkms` settings: ECAD Signatory's keys plus `endpoint` and `protection_level`.

use crate::error::{parse_settings, OpenError};
use serde::Deserialize;
use signatory_config::DriverSettings;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// Cloud KMS's public REST endpoint.
pub(crate) const DEFAULT_ENDPOINT: &str = "https://cloudkms.googleapis.com";

/// ECAD's defaults and cap.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_RETRIES: u32 = 3;
const MAX_RETRIES_CAP: u32 = 100;

/// Where keys that `generate` and `import` create live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProtectionLevel {
    Hsm,
    Software,
}

impl ProtectionLevel {
    pub(crate) fn as_api(self) -> &'static str {
        match self {
            ProtectionLevel::Hsm => "HSM",
            ProtectionLevel::Software => "SOFTWARE",
        }
    }
}

/// The parsed settings of one `cloudkms` vault.
#[derive(Clone)]
pub(crate) struct CloudKmsSettings {
    pub project: String,
    pub location: String,
    pub key_ring: String,
    pub application_credentials: Option<PathBuf>,
    /// A service-account or authorized-user JSON given inline: a secret.
    pub application_credentials_data: Option<Zeroizing<String>>,
    /// Each HTTP attempt's bound (ECAD's `timeout`, in seconds).
    pub timeout: Duration,
    pub max_retries: u32,
    /// The REST endpoint's scheme and authority (no path).
    pub endpoint: String,
    pub protection_level: ProtectionLevel,
}

impl fmt::Debug for CloudKmsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudKmsSettings")
            .field("project", &self.project)
            .field("location", &self.location)
            .field("key_ring", &self.key_ring)
            .field("application_credentials", &self.application_credentials)
            .field(
                "application_credentials_data",
                &self
                    .application_credentials_data
                    .as_ref()
                    .map(|_| "REDACTED"),
            )
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("endpoint", &self.endpoint)
            .field("protection_level", &self.protection_level)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `project`, `location`, `key_ring` and optionally \
                 `application_credentials`, `application_credentials_data`, `timeout`, \
                 `max_retries`, `endpoint`, `protection_level`"
)]
struct Raw {
    project: String,
    location: String,
    key_ring: String,
    #[serde(default)]
    application_credentials: Option<PathBuf>,
    #[serde(default, deserialize_with = "secret_text")]
    application_credentials_data: Option<Zeroizing<String>>,
    #[serde(default)]
    timeout: Option<i64>,
    #[serde(default)]
    max_retries: Option<i64>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    protection_level: Option<String>,
}

/// A string secret; any other YAML value is refused without being echoed.
fn secret_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Zeroizing<String>>, D::Error> {
    match serde_yaml_ng::Value::deserialize(d)? {
        serde_yaml_ng::Value::Null => Ok(None),
        serde_yaml_ng::Value::String(s) => Ok(Some(Zeroizing::new(s))),
        _ => Err(serde::de::Error::custom(
            "must be a string (the credentials JSON)",
        )),
    }
}

impl CloudKmsSettings {
    pub(crate) fn parse(vault: &str, settings: &DriverSettings) -> Result<Self, OpenError> {
        if settings.is_null() {
            return Err(config_error(
                vault,
                "",
                "is missing; give `project`, `location` and `key_ring`".to_owned(),
            ));
        }
        let raw: Raw = parse_settings(vault, settings)?;
        for (key, value) in [
            ("project", &raw.project),
            ("location", &raw.location),
            ("key_ring", &raw.key_ring),
        ] {
            if !is_resource_id(value) {
                return Err(config_error(
                    vault,
                    key,
                    format!(
                        "`{value}` is not a Cloud KMS resource id (1 to 63 letters, digits, \
                         `-` or `_`)"
                    ),
                ));
            }
        }
        // ECAD: zero or negative is the default.
        let timeout = match raw.timeout {
            Some(seconds) if seconds > 0 => Duration::from_secs(seconds.unsigned_abs()),
            _ => DEFAULT_TIMEOUT,
        };
        // ECAD: absent or negative is the default; more than 100 is 100.
        let max_retries = match raw.max_retries {
            Some(n) if n >= 0 => u32::try_from(n)
                .unwrap_or(MAX_RETRIES_CAP)
                .min(MAX_RETRIES_CAP),
            _ => DEFAULT_MAX_RETRIES,
        };
        let endpoint = match raw.endpoint.as_deref() {
            None | Some("") => DEFAULT_ENDPOINT.to_owned(),
            Some(text) => check_endpoint(text).map_err(|m| config_error(vault, "endpoint", m))?,
        };
        let protection_level = match raw.protection_level.as_deref() {
            None | Some("") | Some("HSM") | Some("hsm") => ProtectionLevel::Hsm,
            Some("SOFTWARE") | Some("software") => ProtectionLevel::Software,
            Some(other) => {
                return Err(config_error(
                    vault,
                    "protection_level",
                    format!("`{other}` is neither HSM nor SOFTWARE"),
                ))
            }
        };
        Ok(CloudKmsSettings {
            project: raw.project,
            location: raw.location,
            key_ring: raw.key_ring,
            application_credentials: raw
                .application_credentials
                .filter(|p| !p.as_os_str().is_empty()),
            application_credentials_data: raw
                .application_credentials_data
                .filter(|d| !d.is_empty()),
            timeout,
            max_retries,
            endpoint,
            protection_level,
        })
    }

    /// `projects/…/locations/…/keyRings/…`.
    pub(crate) fn key_ring_name(&self) -> String {
        format!(
            "projects/{}/locations/{}/keyRings/{}",
            self.project, self.location, self.key_ring
        )
    }
}

pub(crate) fn config_error(vault: &str, key: &str, message: String) -> OpenError {
    OpenError::Config {
        vault: vault.to_owned(),
        key_path: if key.is_empty() {
            format!("vaults.{vault}.config")
        } else {
            format!("vaults.{vault}.config.{key}")
        },
        message,
    }
}

/// A resource id as Cloud KMS allows it, so it can go into a URL path as it is.
pub(crate) fn is_resource_id(text: &str) -> bool {
    (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An endpoint is `https://host[:port]`; plain `http://` only to a loopback address (a
/// local fake or proxy), so a bearer token never crosses a network in clear.
pub(crate) fn check_endpoint(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if url.path() != "/" && !url.path().is_empty() {
        return Err(format!(
            "`{text}` has a path; give only the scheme and host (the API path is `/v1/…`)"
        ));
    }
    if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{text}` must be only a scheme, a host and a port"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "`{text}`: plain http is allowed only to a loopback address; use https"
            ))
        }
        other => return Err(format!("`{text}`: scheme `{other}` is not https")),
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Whether `url`'s host is 127.0.0.0/8, ::1 or `localhost`.
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

    fn parse(text: &str) -> Result<CloudKmsSettings, OpenError> {
        CloudKmsSettings::parse("kms", &serde_yaml_ng::from_str(text).unwrap())
    }

    #[test]
    fn ecads_example_parses_with_ecads_defaults() {
        let s = parse(
            "{project: signatory-testing, location: europe-north1, key_ring: sigy-key, \
             application_credentials: /etc/sa.json}",
        )
        .unwrap();
        assert_eq!(
            s.key_ring_name(),
            "projects/signatory-testing/locations/europe-north1/keyRings/sigy-key"
        );
        assert_eq!((s.timeout, s.max_retries), (Duration::from_secs(10), 3));
        assert_eq!(s.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(s.protection_level, ProtectionLevel::Hsm);
        let s =
            parse("{project: p, location: l, key_ring: r, timeout: 0, max_retries: 500}").unwrap();
        assert_eq!((s.timeout, s.max_retries), (Duration::from_secs(10), 100));
        let s =
            parse("{project: p, location: l, key_ring: r, timeout: 3, max_retries: 0}").unwrap();
        assert_eq!((s.timeout, s.max_retries), (Duration::from_secs(3), 0));
    }

    #[test]
    fn inline_credentials_stay_out_of_debug_and_errors() {
        let s = parse(
            "{project: p, location: l, key_ring: r, application_credentials_data: 'TOPSECRET'}",
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("TOPSECRET"));
        let e = parse(
            "{project: p, location: l, key_ring: r, application_credentials_data: [TOPSECRET]}",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("vaults.kms.config.application_credentials_data")
                && !e.contains("TOPSECRET"),
            "{e}"
        );
    }

    #[test]
    fn bad_settings_name_the_key() {
        let e = |t: &str| parse(t).unwrap_err().to_string();
        assert!(e("{project: p, location: l}").contains("key_ring"));
        assert!(
            e("{project: 'a/b', location: l, key_ring: r}").contains("vaults.kms.config.project")
        );
        assert!(e("{project: p, location: l, key_ring: r, pin: 1}").contains("vaults.kms.config"));
        let http = e("{project: p, location: l, key_ring: r, endpoint: 'http://kms.example.com'}");
        assert!(
            http.contains("vaults.kms.config.endpoint") && http.contains("loopback"),
            "{http}"
        );
        assert!(
            e("{project: p, location: l, key_ring: r, endpoint: 'https://h/v1'}").contains("path")
        );
        assert!(
            e("{project: p, location: l, key_ring: r, protection_level: EXTERNAL}")
                .contains("protection_level")
        );
        assert!(e("~").contains("vaults.kms.config"));
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            check_endpoint("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            check_endpoint("https://private.cloudkms.example:443").unwrap(),
            "https://private.cloudkms.example"
        );
        assert!(check_endpoint("http://[::1]:9").is_ok());
        assert!(check_endpoint("ftp://127.0.0.1").is_err());
    }
}
