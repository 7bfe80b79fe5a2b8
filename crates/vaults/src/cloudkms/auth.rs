//! OAuth2 access tokens for Cloud KMS, found in Application Default Credentials order:
//! the vault's own `application_credentials_data` / `application_credentials`, then
//! `GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's well-known file, then the metadata
//! server. Nothing is written into the process environment; the token, the private key and
//! refresh secrets never reach a log, an error or `Debug`.

use super::settings::{config_error, is_loopback, CloudKmsSettings};
use crate::error::OpenError;
use crate::net::{Failure, FailureClass};
use base64::Engine as _;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use parking_lot::RwLock;
use serde::Deserialize;
use signatory_signer::vault::VaultError;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// The OAuth2 scope of Cloud KMS.
pub(crate) const SCOPE: &str = "https://www.googleapis.com/auth/cloudkms";
/// Google's token endpoint when a credentials file names none.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The metadata server's link-local address when `GCE_METADATA_HOST` is unset.
const METADATA_HOST: &str = "169.254.169.254";
pub(crate) const ENV_CREDENTIALS: &str = "GOOGLE_APPLICATION_CREDENTIALS";
pub(crate) const ENV_METADATA_HOST: &str = "GCE_METADATA_HOST";
/// How long a self-signed assertion is valid (Google's maximum).
const ASSERTION_LIFETIME: u64 = 3600;
/// A token is replaced this long before it expires (or at half its life, if shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Where tokens come from.
pub(crate) enum Credentials {
    /// A service-account key: a self-signed RS256 assertion exchanged at `token_uri`.
    ServiceAccount {
        email: String,
        key_id: Option<String>,
        key: PKey<Private>,
        token_uri: String,
    },
    /// `gcloud auth application-default login`: a refresh token exchanged at `token_uri`.
    AuthorizedUser {
        client_id: String,
        client_secret: Zeroizing<String>,
        refresh_token: Zeroizing<String>,
        token_uri: String,
    },
    /// The GCE / GKE metadata server of the machine's service account.
    Metadata { token_url: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::ServiceAccount {
                email, token_uri, ..
            } => f
                .debug_struct("ServiceAccount")
                .field("email", email)
                .field("token_uri", token_uri)
                .finish_non_exhaustive(),
            Credentials::AuthorizedUser {
                client_id,
                token_uri,
                ..
            } => f
                .debug_struct("AuthorizedUser")
                .field("client_id", client_id)
                .field("token_uri", token_uri)
                .finish_non_exhaustive(),
            Credentials::Metadata { token_url } => f
                .debug_struct("Metadata")
                .field("token_url", token_url)
                .finish(),
        }
    }
}

impl Credentials {
    /// What the log may say about these credentials.
    pub(crate) fn describe(&self) -> String {
        match self {
            Credentials::ServiceAccount { email, .. } => format!("service account {email}"),
            Credentials::AuthorizedUser { client_id, .. } => {
                format!("gcloud user credentials (client {client_id})")
            }
            Credentials::Metadata { token_url } => format!("the metadata server ({token_url})"),
        }
    }
}

/// The credentials file's fields; secrets wiped on drop.
#[derive(Deserialize)]
struct CredentialsFile {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    client_email: Option<String>,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    private_key: Option<Zeroizing<String>>,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    client_secret: Option<Zeroizing<String>>,
    #[serde(default, deserialize_with = "secret")]
    refresh_token: Option<Zeroizing<String>>,
}

/// A secret string, straight into wiped memory.
fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Zeroizing<String>>, D::Error> {
    Option::<String>::deserialize(d).map(|s| s.map(Zeroizing::new))
}

fn required_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(d).map(Zeroizing::new)
}

/// Find the credentials in ADC order. `env` reads the environment (tests give their own).
pub(crate) fn find(
    vault: &str,
    settings: &CloudKmsSettings,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Credentials, OpenError> {
    if let Some(data) = &settings.application_credentials_data {
        return parse(vault, data.as_bytes(), "`application_credentials_data`")
            .map_err(|m| config_error(vault, "application_credentials_data", m));
    }
    if let Some(path) = &settings.application_credentials {
        return from_file(vault, path).map_err(|e| keyed(vault, "application_credentials", e));
    }
    if let Some(path) = env(ENV_CREDENTIALS).filter(|p| !p.is_empty()) {
        return from_file(vault, Path::new(&path)).map_err(|e| match e {
            FileError::Open(e) => e,
            FileError::Content(m) => OpenError::Config {
                vault: vault.to_owned(),
                key_path: ENV_CREDENTIALS.to_owned(),
                message: m,
            },
        });
    }
    if let Some(path) = well_known_file(env).filter(|p| p.is_file()) {
        return from_file(vault, &path).map_err(|e| match e {
            FileError::Open(e) => e,
            FileError::Content(m) => OpenError::Config {
                vault: vault.to_owned(),
                key_path: path.display().to_string(),
                message: m,
            },
        });
    }
    let host = env(ENV_METADATA_HOST)
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| METADATA_HOST.to_owned());
    if host.contains(['/', '?', '#', '@']) {
        return Err(OpenError::Config {
            vault: vault.to_owned(),
            key_path: ENV_METADATA_HOST.to_owned(),
            message: format!("`{host}` is not a host[:port]"),
        });
    }
    Ok(Credentials::Metadata {
        token_url: format!(
            "http://{host}/computeMetadata/v1/instance/service-accounts/default/token"
        ),
    })
}

/// gcloud's Application Default Credentials file.
fn well_known_file(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = env("CLOUDSDK_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("application_default_credentials.json"));
    }
    let home = env("HOME").filter(|h| !h.is_empty())?;
    Some(
        PathBuf::from(home)
            .join(".config/gcloud")
            .join("application_default_credentials.json"),
    )
}

enum FileError {
    Open(OpenError),
    Content(String),
}

fn keyed(vault: &str, key: &str, e: FileError) -> OpenError {
    match e {
        FileError::Open(e) => e,
        FileError::Content(m) => config_error(vault, key, m),
    }
}

/// Read a credentials file, which must be private to the signer's user (it holds a key).
fn from_file(vault: &str, path: &Path) -> Result<Credentials, FileError> {
    let action = "read the Google credentials file";
    let mut file = crate::private_file::open(vault, path, action).map_err(FileError::Open)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(4096));
    file.read_to_end(&mut bytes)
        .map_err(|e| FileError::Open(crate::private_file::io_error(vault, action, path, e)))?;
    parse(vault, &bytes, &path.display().to_string()).map_err(FileError::Content)
}

/// Parse a credentials JSON. Errors say where the JSON is wrong, never what it holds.
fn parse(vault: &str, bytes: &[u8], origin: &str) -> Result<Credentials, String> {
    let _ = vault;
    let file: CredentialsFile = serde_json::from_slice(bytes).map_err(|e| {
        // serde_json's message can quote a value; give only its position and kind.
        format!(
            "{origin} is not a Google credentials JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        )
    })?;
    let token_uri = |given: Option<String>| -> Result<String, String> {
        let uri = given
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_owned());
        check_token_uri(&uri).map_err(|m| format!("{origin}: `token_uri`: {m}"))?;
        Ok(uri)
    };
    let missing = |field: &str| format!("{origin}: `{field}` is missing");
    match file.kind.as_str() {
        "service_account" => {
            let pem = file.private_key.ok_or_else(|| missing("private_key"))?;
            let key = PKey::private_key_from_pem(pem.as_bytes())
                .map_err(|_| format!("{origin}: `private_key` is not a PEM private key"))?;
            if key.rsa().is_err() {
                return Err(format!("{origin}: `private_key` is not an RSA key"));
            }
            Ok(Credentials::ServiceAccount {
                email: file.client_email.ok_or_else(|| missing("client_email"))?,
                key_id: file.private_key_id.filter(|k| !k.is_empty()),
                key,
                token_uri: token_uri(file.token_uri)?,
            })
        }
        "authorized_user" => Ok(Credentials::AuthorizedUser {
            client_id: file.client_id.ok_or_else(|| missing("client_id"))?,
            client_secret: file.client_secret.ok_or_else(|| missing("client_secret"))?,
            refresh_token: file.refresh_token.ok_or_else(|| missing("refresh_token"))?,
            token_uri: token_uri(file.token_uri)?,
        }),
        other => Err(format!(
            "{origin}: credentials of type `{other}` are not supported (service_account or \
             authorized_user)"
        )),
    }
}

/// The token endpoint gets a signed assertion or a refresh token: https, or http to
/// loopback (a local fake).
fn check_token_uri(uri: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(uri).map_err(|e| format!("`{uri}` is not a URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err(format!("`{uri}` is not an https URL")),
    }
}

/// A bearer token and when to stop using it.
struct Token {
    value: Zeroizing<String>,
    /// When to fetch the next one (some time before it expires).
    refresh_at: Instant,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(deserialize_with = "required_secret")]
    access_token: Zeroizing<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// An OAuth2 error answer (RFC 6749 §5.2); the description is the service's own words.
#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Tokens of one vault: cached, replaced before they expire, one refresh at a time.
pub(crate) struct TokenSource {
    vault: String,
    credentials: Credentials,
    client: reqwest::Client,
    current: RwLock<Option<Token>>,
    /// Held while a token is fetched, so concurrent callers wait for one exchange.
    refreshing: tokio::sync::Mutex<()>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("credentials", &self.credentials)
            .field("cached", &self.current.read().is_some())
            .finish()
    }
}

impl TokenSource {
    pub(crate) fn new(vault: &str, credentials: Credentials, client: reqwest::Client) -> Self {
        TokenSource {
            vault: vault.to_owned(),
            credentials,
            client,
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    fn cached(&self) -> Option<Zeroizing<String>> {
        let current = self.current.read();
        current
            .as_ref()
            .filter(|t| Instant::now() < t.refresh_at)
            .map(|t| t.value.clone())
    }

    /// A valid bearer token.
    pub(crate) async fn token(&self) -> Result<Zeroizing<String>, Failure> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        // Another caller may have refreshed while this one waited.
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let fetched = self.fetch().await?;
        let value = fetched.value.clone();
        *self.current.write() = Some(fetched);
        Ok(value)
    }

    /// Forget `rejected` (the service answered 401 to it), so the next call fetches anew.
    pub(crate) fn invalidate(&self, rejected: &str) {
        let mut current = self.current.write();
        if current
            .as_ref()
            .is_some_and(|t| t.value.as_str() == rejected)
        {
            *current = None;
        }
    }

    async fn fetch(&self) -> Result<Token, Failure> {
        let operation = "getting an access token";
        let request = match &self.credentials {
            Credentials::ServiceAccount {
                email,
                key_id,
                key,
                token_uri,
            } => {
                let assertion =
                    assertion(email, key_id.as_deref(), key, token_uri).map_err(|m| {
                        Failure::refused(self.error(false, format!("{operation}: {m}")))
                    })?;
                self.client.post(token_uri).form(&[
                    ("grant_type", JWT_BEARER),
                    ("assertion", assertion.as_str()),
                ])
            }
            Credentials::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
            } => self.client.post(token_uri).form(&[
                ("grant_type", "refresh_token"),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.as_str()),
                ("refresh_token", refresh_token.as_str()),
            ]),
            Credentials::Metadata { token_url } => self
                .client
                .get(token_url)
                .query(&[("scopes", SCOPE)])
                .header("Metadata-Flavor", "Google"),
        };
        let started = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| Failure::from_reqwest(&self.vault, operation, e))?;
        let status = response.status().as_u16();
        let body = Zeroizing::new(
            response
                .bytes()
                .await
                .map_err(|e| Failure::from_reqwest(&self.vault, operation, e))?
                .to_vec(),
        );
        if !(200..300).contains(&status) {
            let detail = match serde_json::from_slice::<OAuthError>(&body) {
                Ok(OAuthError {
                    error: Some(code),
                    error_description,
                }) => match error_description {
                    Some(d) => format!("{code}: {d}"),
                    None => code,
                },
                _ => format!("HTTP {status}"),
            };
            return Err(Failure::from_status(
                &self.vault,
                &format!("{operation} from {}", self.credentials.describe()),
                status,
                &detail,
            ));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
            Failure::transient(
                FailureClass::Server,
                self.error(
                    true,
                    format!("{operation}: the token endpoint's answer is not a token"),
                ),
            )
        })?;
        if answer.access_token.is_empty() {
            return Err(Failure::refused(self.error(
                false,
                format!("{operation}: the token endpoint gave an empty token"),
            )));
        }
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(ASSERTION_LIFETIME));
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        Ok(Token {
            value: answer.access_token,
            refresh_at: started + lifetime.saturating_sub(margin),
        })
    }

    fn error(&self, transient: bool, message: String) -> VaultError {
        VaultError::backend(&self.vault, transient, message)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The RS256 JWT a service account presents for a token (RFC 7523).
fn assertion(
    email: &str,
    key_id: Option<&str>,
    key: &PKey<Private>,
    audience: &str,
) -> Result<Zeroizing<String>, String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let (Some(kid), Some(map)) = (key_id, header.as_object_mut()) {
        map.insert("kid".to_owned(), serde_json::Value::from(kid));
    }
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": email,
        "scope": SCOPE,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    });
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let sign = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut signer = Signer::new(MessageDigest::sha256(), key)?;
        signer.update(signing_input.as_bytes())?;
        signer.sign_to_vec()
    };
    let signature = sign().map_err(|e| format!("signing the assertion failed: {e}"))?;
    Ok(Zeroizing::new(format!(
        "{signing_input}.{}",
        b64.encode(signature)
    )))
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
    use openssl::rsa::Rsa;
    use openssl::sign::Verifier;

    fn settings(extra: &str) -> CloudKmsSettings {
        let text = format!("{{project: p, location: l, key_ring: r{extra}}}");
        CloudKmsSettings::parse("kms", &serde_yaml_ng::from_str(&text).unwrap()).unwrap()
    }

    fn service_account_json(token_uri: &str) -> String {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        serde_json::json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "kid1",
            "private_key": pem,
            "client_email": "signer@p.iam.gserviceaccount.com",
            "token_uri": token_uri,
        })
        .to_string()
    }

    #[test]
    fn adc_order_settings_then_env_then_well_known_then_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            path
        };
        let from_env = write(
            "env.json",
            &service_account_json("https://oauth2.googleapis.com/token"),
        );
        let gcloud = dir.path().join("gcloud");
        std::fs::create_dir(&gcloud).unwrap();
        let user = serde_json::json!({"type": "authorized_user", "client_id": "cid",
            "client_secret": "csecret", "refresh_token": "rtoken"})
        .to_string();
        let well_known = gcloud.join("application_default_credentials.json");
        std::fs::write(&well_known, &user).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&well_known, std::fs::Permissions::from_mode(0o600)).unwrap();
        let env_path = from_env.display().to_string();
        let gcloud_dir = gcloud.display().to_string();
        let all = |var: &str| match var {
            ENV_CREDENTIALS => Some(env_path.clone()),
            "CLOUDSDK_CONFIG" => Some(gcloud_dir.clone()),
            ENV_METADATA_HOST => Some("127.0.0.1:9".to_owned()),
            _ => None,
        };
        // Inline data wins over everything.
        let inline = settings(&format!(
            ", application_credentials_data: '{}'",
            user.replace('\'', "''")
        ));
        assert!(matches!(
            find("kms", &inline, &all).unwrap(),
            Credentials::AuthorizedUser { .. }
        ));
        let c = find("kms", &settings(""), &all).unwrap();
        assert!(
            matches!(c, Credentials::ServiceAccount { ref email, .. } if email.starts_with("signer@"))
        );
        let no_adc_env = |var: &str| {
            if var == ENV_CREDENTIALS {
                None
            } else {
                all(var)
            }
        };
        assert!(matches!(
            find("kms", &settings(""), &no_adc_env).unwrap(),
            Credentials::AuthorizedUser { .. }
        ));
        let only_metadata = |var: &str| {
            if var == ENV_METADATA_HOST {
                all(var)
            } else {
                None
            }
        };
        match find("kms", &settings(""), &only_metadata).unwrap() {
            Credentials::Metadata { token_url } => assert_eq!(
                token_url,
                "http://127.0.0.1:9/computeMetadata/v1/instance/service-accounts/default/token"
            ),
            other => panic!("{other:?}"),
        }
        match find("kms", &settings(""), &|_| None).unwrap() {
            Credentials::Metadata { token_url } => {
                assert!(token_url.starts_with("http://169.254.169.254/"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn credential_files_must_be_private_and_errors_never_quote_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sa.json");
        std::fs::write(
            &path,
            service_account_json("https://oauth2.googleapis.com/token"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let s = settings(&format!(", application_credentials: '{}'", path.display()));
        let e = find("kms", &s, &|_| None).unwrap_err();
        assert!(matches!(e, OpenError::Permissions { .. }), "{e}");

        let secret = "-----BEGIN PRIVATE KEY-----TOPSECRET";
        let bad = format!(
            r#"{{"type": "service_account", "private_key": "{secret}", "client_email": 7}}"#
        );
        let e = parse("kms", bad.as_bytes(), "x").err().unwrap();
        assert!(!e.contains("TOPSECRET"), "{e}");
        let bad = format!(
            r#"{{"type": "service_account", "private_key": "{secret}", "client_email": "a@b"}}"#
        );
        let e = parse("kms", bad.as_bytes(), "x").err().unwrap();
        assert!(
            e.contains("not a PEM private key") && !e.contains("TOPSECRET"),
            "{e}"
        );
        let e = parse("kms", br#"{"type": "external_account"}"#, "x")
            .err()
            .unwrap();
        assert!(e.contains("external_account"), "{e}");
        let e = parse(
            "kms",
            service_account_json("http://oauth.example.com/token").as_bytes(),
            "x",
        )
        .err()
        .unwrap();
        assert!(e.contains("token_uri"), "{e}");
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_with_googles_claims() {
        let rsa = Rsa::generate(2048).unwrap();
        let key = PKey::from_rsa(rsa).unwrap();
        let jwt = assertion(
            "sa@p.iam.gserviceaccount.com",
            Some("kid1"),
            &key,
            "https://t/token",
        )
        .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: serde_json::Value =
            serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "kid1");
        let claims: serde_json::Value =
            serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://t/token");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            3600
        );
        let mut verifier = Verifier::new(MessageDigest::sha256(), &key).unwrap();
        verifier
            .update(format!("{}.{}", parts[0], parts[1]).as_bytes())
            .unwrap();
        assert!(verifier.verify(&b64.decode(parts[2]).unwrap()).unwrap());
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = Credentials::AuthorizedUser {
            client_id: "cid".to_owned(),
            client_secret: Zeroizing::new("csecret".to_owned()),
            refresh_token: Zeroizing::new("rtoken".to_owned()),
            token_uri: GOOGLE_TOKEN_URI.to_owned(),
        };
        let text = format!("{c:?}");
        assert!(
            !text.contains("csecret") && !text.contains("rtoken"),
            "{text}"
        );
    }
}
