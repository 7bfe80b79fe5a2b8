//! The `awskms` settings: ECAD Signatory's keys (`access_key_id`, `secret_access_key`,
//! `session_token`, `region`) plus `endpoint`, and where the credentials come from.

use crate::error::OpenError;
use serde::Deserialize;
use signatory_config::DriverSettings;
use std::fmt;
use zeroize::Zeroizing;

/// The standard AWS variables the driver reads itself (the SDK's environment step, done
/// here so the secret ones can be taken out of the environment at start).
pub(crate) const ENV_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub(crate) const ENV_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub(crate) const ENV_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";

/// The secret variables, which `serve` takes out of the environment at start.
pub(crate) const SECRET_VARIABLES: [&str; 2] = [ENV_SECRET_ACCESS_KEY, ENV_SESSION_TOKEN];

/// Static AWS credentials: from the settings, or from the standard variables.
#[derive(Clone)]
pub(crate) struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
    /// Where they came from, for the log (`settings` or `environment`).
    pub source: &'static str,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key id names an IAM user (not a secret, but no need to spread it either).
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &"REDACTED")
            .field("secret_access_key", &"REDACTED")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "REDACTED"),
            )
            .field("source", &self.source)
            .finish()
    }
}

/// How to reach KMS and as whom.
#[derive(Debug, Clone)]
pub(crate) struct AwsKmsOptions {
    /// `None`: the SDK's default chain (profile, web identity, container, IMDS).
    pub credentials: Option<StaticCredentials>,
    /// `None`: the SDK's region chain (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// An endpoint URL instead of the region's (a VPC endpoint, a test server).
    pub endpoint: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with optional `access_key_id`, `secret_access_key`, \
                 `session_token`, `region` and `endpoint`"
)]
struct Settings {
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    secret_access_key: Option<Zeroizing<String>>,
    #[serde(default, deserialize_with = "secret")]
    session_token: Option<Zeroizing<String>>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
}

/// A secret string; any other YAML value is refused without being echoed (serde's message
/// would quote it).
fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Zeroizing<String>>, D::Error> {
    match serde_yaml_ng::Value::deserialize(d)? {
        serde_yaml_ng::Value::Null => Ok(None),
        serde_yaml_ng::Value::String(s) => Ok(Some(Zeroizing::new(s))),
        _ => Err(serde::de::Error::custom("must be a string")),
    }
}

impl AwsKmsOptions {
    /// Parse the `config` value of vault `vault`, reading the standard variables through
    /// `lookup`. As in ECAD Signatory, an empty setting counts as absent, and a setting
    /// absent from the configuration may come from its variable.
    pub(crate) fn from_settings(
        vault: &str,
        settings: &DriverSettings,
        lookup: &dyn Fn(&str) -> Option<Zeroizing<String>>,
    ) -> Result<Self, OpenError> {
        let config_error = |key: &str, message: String| OpenError::Config {
            vault: vault.to_owned(),
            key_path: format!("vaults.{vault}.config.{key}"),
            message,
        };
        let settings: Settings = match settings {
            serde_yaml_ng::Value::Null => Settings::default(),
            other => crate::error::parse_settings(vault, other)?,
        };
        let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let given_secret = |v: Option<Zeroizing<String>>| v.filter(|s| !s.trim().is_empty());
        let env = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let key_id = given(settings.access_key_id);
        let secret = given_secret(settings.secret_access_key);
        let token = given_secret(settings.session_token);
        let credentials = if key_id.is_some() || secret.is_some() {
            // ECAD sets the given half in the environment and lets the SDK read both from
            // there: the other half may come from its variable.
            let access_key_id = match key_id {
                Some(id) => id,
                None => env(ENV_ACCESS_KEY_ID)
                    .map(|id| id.to_string())
                    .ok_or_else(|| {
                        config_error(
                            "access_key_id",
                            format!(
                                "is missing while `secret_access_key` is given; give it here \
                                 or in {ENV_ACCESS_KEY_ID}"
                            ),
                        )
                    })?,
            };
            let secret_access_key = match secret {
                Some(s) => s,
                None => env(ENV_SECRET_ACCESS_KEY).ok_or_else(|| {
                    config_error(
                        "secret_access_key",
                        format!(
                            "is missing while `access_key_id` is given; give it here or in \
                             {ENV_SECRET_ACCESS_KEY}"
                        ),
                    )
                })?,
            };
            Some(StaticCredentials {
                access_key_id,
                secret_access_key,
                session_token: token.or_else(|| env(ENV_SESSION_TOKEN)),
                source: "settings",
            })
        } else if token.is_some() {
            return Err(config_error(
                "session_token",
                "is given without `access_key_id` and `secret_access_key`".to_owned(),
            ));
        } else {
            // The SDK's chain starts with these variables; reading them here keeps the
            // chain's order while the secret ones are out of the environment.
            match (env(ENV_ACCESS_KEY_ID), env(ENV_SECRET_ACCESS_KEY)) {
                (Some(id), Some(secret_access_key)) => Some(StaticCredentials {
                    access_key_id: id.to_string(),
                    secret_access_key,
                    session_token: env(ENV_SESSION_TOKEN),
                    source: "environment",
                }),
                _ => None,
            }
        };

        let region = given(settings.region).map(|r| r.trim().to_owned());
        if let Some(region) = &region {
            let valid = region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                return Err(config_error(
                    "region",
                    format!("`{region}` is not an AWS region name (e.g. eu-west-1)"),
                ));
            }
        }
        let endpoint = given(settings.endpoint).map(|e| e.trim().to_owned());
        if let Some(endpoint) = &endpoint {
            let rest = endpoint
                .strip_prefix("https://")
                .or_else(|| endpoint.strip_prefix("http://"));
            if rest.is_none_or(|host| host.is_empty() || host.contains(char::is_whitespace)) {
                return Err(config_error(
                    "endpoint",
                    format!(
                        "`{endpoint}` is not an http:// or https:// URL (e.g. \
                         https://kms.eu-west-1.amazonaws.com)"
                    ),
                ));
            }
        }
        Ok(AwsKmsOptions {
            credentials,
            region,
            endpoint,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(yaml: &str, env: &[(&str, &str)]) -> Result<AwsKmsOptions, OpenError> {
        let settings: DriverSettings = serde_yaml_ng::from_str(yaml).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AwsKmsOptions::from_settings("kms", &settings, &|name| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| Zeroizing::new(v.clone()))
        })
    }

    #[test]
    fn ecad_keys_give_static_credentials_and_the_region() {
        let options = parse(
            "access_key_id: AKIDEXAMPLE\nsecret_access_key: wJalrXUtnFEMI\nregion: eu-west-1\n",
            &[],
        )
        .unwrap();
        let credentials = options.credentials.unwrap();
        assert_eq!(credentials.access_key_id, "AKIDEXAMPLE");
        assert_eq!(credentials.secret_access_key.as_str(), "wJalrXUtnFEMI");
        assert_eq!(credentials.source, "settings");
        assert!(credentials.session_token.is_none());
        assert_eq!(options.region.as_deref(), Some("eu-west-1"));
        assert!(options.endpoint.is_none());
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let options = parse(
            "access_key_id: AKIDEXAMPLE\nsecret_access_key: wJalrXUtnFEMI\nsession_token: FwoGZXIvYXdzEJr\n",
            &[],
        )
        .unwrap();
        let debug = format!("{options:?}");
        for secret in ["AKIDEXAMPLE", "wJalrXUtnFEMI", "FwoGZXIvYXdzEJr"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("REDACTED"));
    }

    #[test]
    fn half_given_in_the_settings_takes_the_other_half_from_its_variable() {
        let options = parse(
            "access_key_id: AKIDEXAMPLE\n",
            &[(ENV_SECRET_ACCESS_KEY, "from-env")],
        )
        .unwrap();
        let credentials = options.credentials.unwrap();
        assert_eq!(credentials.secret_access_key.as_str(), "from-env");
        let e = parse("access_key_id: AKIDEXAMPLE\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`vaults.kms.config.secret_access_key`: is missing"),
            "{e}"
        );
    }

    #[test]
    fn the_standard_variables_are_read_when_the_settings_give_no_keys() {
        let options = parse(
            "region: us-east-1\n",
            &[
                (ENV_ACCESS_KEY_ID, "AKIDENV"),
                (ENV_SECRET_ACCESS_KEY, "secret"),
                (ENV_SESSION_TOKEN, "token"),
            ],
        )
        .unwrap();
        let credentials = options.credentials.unwrap();
        assert_eq!(credentials.source, "environment");
        assert_eq!(credentials.access_key_id, "AKIDENV");
        assert_eq!(credentials.session_token.unwrap().as_str(), "token");
        // Only the key id: not a credential, the SDK's chain goes on.
        let options = parse("region: us-east-1\n", &[(ENV_ACCESS_KEY_ID, "AKIDENV")]).unwrap();
        assert!(options.credentials.is_none());
        // Nothing at all (ECAD allows an empty config).
        assert!(parse("~\n", &[]).unwrap().credentials.is_none());
    }

    #[test]
    fn empty_settings_count_as_absent_as_in_ecad() {
        let options = parse(
            "access_key_id: ''\nsecret_access_key: ''\nsession_token: ''\nregion: ''\n",
            &[],
        )
        .unwrap();
        assert!(options.credentials.is_none() && options.region.is_none());
    }

    #[test]
    fn wrong_settings_name_their_key_without_echoing_secrets() {
        let e = parse("secret_access_key: [wJalrXUtnFEMI]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("vaults.kms.config.secret_access_key"), "{e}");
        assert!(!e.contains("wJalrXUtnFEMI"), "{e}");
        let e = parse("regoin: eu-west-1\n", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown field `regoin`"), "{e}");
        let e = parse("endpoint: localhost:4566\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`vaults.kms.config.endpoint`"), "{e}");
        let e = parse("region: 'eu west'\n", &[]).unwrap_err().to_string();
        assert!(e.contains("`vaults.kms.config.region`"), "{e}");
        let e = parse("session_token: t\n", &[]).unwrap_err().to_string();
        assert!(e.contains("`vaults.kms.config.session_token`"), "{e}");
    }

    #[test]
    fn an_endpoint_overrides_the_region_url() {
        let options = parse("endpoint: http://127.0.0.1:4566\n", &[]).unwrap();
        assert_eq!(options.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
    }
}
