//! Access tokens for Key Vault: from Entra ID (client secret, or a certificate's RS256
//! client assertion) or from the host's managed identity (IMDS, App Service), cached and
//! refreshed before they expire, one refresh at a time.

use super::settings::{CredentialSettings, ManagedIdentityEndpoint, Thumbprint};
use crate::error::OpenError;
use crate::net::{self, CallCounters, Failure, RetryPolicy};
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use serde::Deserialize;
use signatory_signer::vault::VaultError;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How long a client assertion is valid (Entra ID accepts up to ten minutes of skew).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);
/// Tokens are refreshed this long before they expire (or at half their life if shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub secret: Zeroizing<String>,
    refresh_at: Instant,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"REDACTED")
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

impl AccessToken {
    fn new(secret: String, lifetime: Duration) -> Self {
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        AccessToken {
            secret: Zeroizing::new(secret),
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
        }
    }
}

/// A loaded credential: the files are read and the key parsed at open.
pub(crate) enum Credential {
    ClientSecret {
        token_url: String,
        client_id: String,
        secret: Zeroizing<String>,
    },
    Certificate {
        token_url: String,
        client_id: String,
        key: PKey<Private>,
        /// base64url of the certificate's SHA-1 thumbprint: the JWT's `x5t`.
        x5t: String,
    },
    ManagedIdentity {
        client_id: Option<String>,
        endpoint: ManagedIdentityEndpoint,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

impl Credential {
    /// What kind of credential it is, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ClientSecret { .. } => "client secret",
            Credential::Certificate { .. } => "client certificate",
            Credential::ManagedIdentity {
                endpoint: ManagedIdentityEndpoint::Imds { .. },
                ..
            } => "managed identity (IMDS)",
            Credential::ManagedIdentity { .. } => "managed identity (App Service)",
        }
    }

    /// Read the certificate or key files the settings name.
    pub fn load(
        vault: &str,
        settings: &CredentialSettings,
        authority_host: &str,
    ) -> Result<Self, OpenError> {
        let token_url = |tenant: &str| format!("{authority_host}/{tenant}/oauth2/v2.0/token");
        let config = |key: &str, message: String| OpenError::Config {
            vault: vault.to_owned(),
            key_path: format!("vaults.{vault}.config.{key}"),
            message,
        };
        Ok(match settings {
            CredentialSettings::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => Credential::ClientSecret {
                token_url: token_url(tenant_id),
                client_id: client_id.clone(),
                secret: secret.clone(),
            },
            CredentialSettings::Pkcs12 {
                tenant_id,
                client_id,
                path,
                password,
            } => {
                let der = read_private(vault, path, "read the PKCS #12 certificate")?;
                let bad = |m: String| config("client_pkcs12_certificate", m);
                let parsed = openssl::pkcs12::Pkcs12::from_der(&der)
                    .and_then(|p| p.parse2(password.as_deref().map_or("", |p| p.as_str())))
                    .map_err(|e| {
                        bad(format!(
                            "{} is not a PKCS #12 file this password opens: {e}",
                            path.display()
                        ))
                    })?;
                let key = parsed
                    .pkey
                    .ok_or_else(|| bad(format!("{} holds no private key", path.display())))?;
                let cert = parsed
                    .cert
                    .ok_or_else(|| bad(format!("{} holds no certificate", path.display())))?;
                Credential::Certificate {
                    token_url: token_url(tenant_id),
                    client_id: client_id.clone(),
                    key: rsa_only(key).map_err(bad)?,
                    x5t: B64URL.encode(
                        cert.digest(MessageDigest::sha1())
                            .map_err(|e| bad(e.to_string()))?,
                    ),
                }
            }
            CredentialSettings::PrivateKey {
                tenant_id,
                client_id,
                key_path,
                password,
                thumbprint,
            } => {
                let pem = read_private(vault, key_path, "read the client private key")?;
                let bad = |m: String| config("client_private_key", m);
                let key = match password {
                    Some(p) => PKey::private_key_from_pem_passphrase(&pem, p.as_bytes()),
                    None => PKey::private_key_from_pem(&pem),
                }
                .map_err(|e| {
                    bad(format!(
                        "{} is not a PEM private key (or the password is wrong): {e}",
                        key_path.display()
                    ))
                })?;
                let thumbprint = match thumbprint {
                    Thumbprint::Given(bytes) => bytes.to_vec(),
                    Thumbprint::CertificateFile(path) => {
                        let bad = |m: String| config("client_certificate", m);
                        let pem = std::fs::read(path)
                            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
                        let cert = openssl::x509::X509::from_pem(&pem).map_err(|e| {
                            bad(format!("{} is not a PEM certificate: {e}", path.display()))
                        })?;
                        cert.digest(MessageDigest::sha1())
                            .map_err(|e| bad(e.to_string()))?
                            .to_vec()
                    }
                };
                Credential::Certificate {
                    token_url: token_url(tenant_id),
                    client_id: client_id.clone(),
                    key: rsa_only(key).map_err(bad)?,
                    x5t: B64URL.encode(thumbprint),
                }
            }
            CredentialSettings::ManagedIdentity {
                client_id,
                endpoint,
            } => Credential::ManagedIdentity {
                client_id: client_id.clone(),
                endpoint: endpoint.clone(),
            },
        })
    }

    /// One token request for `resource` (no retry here).
    async fn fetch(
        &self,
        http: &reqwest::Client,
        vault: &str,
        resource: &str,
    ) -> Result<AccessToken, Failure> {
        const OP: &str = "getting an access token";
        let scope = format!("{resource}/.default");
        let request = match self {
            Credential::ClientSecret {
                token_url,
                client_id,
                secret,
            } => http.post(token_url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("scope", scope.as_str()),
                ("client_secret", secret.as_str()),
            ]),
            Credential::Certificate {
                token_url,
                client_id,
                key,
                x5t,
            } => {
                let assertion = client_assertion(token_url, client_id, key, x5t).map_err(|m| {
                    Failure::refused(VaultError::backend(vault, false, format!("{OP}: {m}")))
                })?;
                http.post(token_url).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("scope", scope.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
            }
            Credential::ManagedIdentity {
                client_id,
                endpoint: ManagedIdentityEndpoint::Imds { base },
            } => {
                let mut query = vec![("api-version", "2018-02-01"), ("resource", resource)];
                if let Some(id) = client_id {
                    query.push(("client_id", id.as_str()));
                }
                http.get(format!("{base}/metadata/identity/oauth2/token"))
                    .header("Metadata", "true")
                    .query(&query)
            }
            Credential::ManagedIdentity {
                client_id,
                endpoint: ManagedIdentityEndpoint::AppService { endpoint, header },
            } => {
                let mut query = vec![("api-version", "2019-08-01"), ("resource", resource)];
                if let Some(id) = client_id {
                    query.push(("client_id", id.as_str()));
                }
                http.get(endpoint.as_str())
                    .header("X-IDENTITY-HEADER", header.as_str())
                    .query(&query)
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| Failure::from_reqwest(vault, OP, e))?;
        let status = response.status().as_u16();
        let body = Zeroizing::new(
            response
                .bytes()
                .await
                .map_err(|e| Failure::from_reqwest(vault, OP, e))?
                .to_vec(),
        );
        if !(200..300).contains(&status) {
            return Err(Failure::from_status(
                vault,
                OP,
                status,
                &token_error_detail(&body),
            ));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            // serde's message names the field, never the token text.
            Failure::refused(VaultError::backend(
                vault,
                false,
                format!("{OP}: unreadable token response: {e}"),
            ))
        })?;
        let lifetime = parsed.lifetime().ok_or_else(|| {
            Failure::refused(VaultError::backend(
                vault,
                false,
                format!("{OP}: the token response gives no expiry"),
            ))
        })?;
        Ok(AccessToken::new(parsed.access_token, lifetime))
    }
}

fn read_private(
    vault: &str,
    path: &Path,
    action: &'static str,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let mut file = crate::private_file::open(vault, path, action)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.read_to_end(&mut bytes)
        .map_err(|e| crate::private_file::io_error(vault, action, path, e))?;
    Ok(bytes)
}

fn rsa_only(key: PKey<Private>) -> Result<PKey<Private>, String> {
    if key.id() == openssl::pkey::Id::RSA {
        Ok(key)
    } else {
        Err(
            "the client certificate's key must be RSA (Entra ID signs assertions with RS256 only)"
                .to_owned(),
        )
    }
}

/// The RS256 JWT proving possession of the certificate's key (Entra ID's certificate
/// credential): `x5t` names the certificate, `aud` is the token endpoint.
pub(crate) fn client_assertion(
    token_url: &str,
    client_id: &str,
    key: &PKey<Private>,
    x5t: &str,
) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let mut jti = [0u8; 16];
    openssl::rand::rand_bytes(&mut jti).map_err(|e| e.to_string())?;
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": x5t});
    let claims = serde_json::json!({
        "aud": token_url,
        "iss": client_id,
        "sub": client_id,
        "jti": hex::encode(jti),
        "iat": now,
        "nbf": now,
        "exp": now + ASSERTION_LIFETIME.as_secs(),
    });
    let signing_input = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let mut signer =
        openssl::sign::Signer::new(MessageDigest::sha256(), key).map_err(|e| e.to_string())?;
    signer
        .update(signing_input.as_bytes())
        .map_err(|e| e.to_string())?;
    let signature = signer.sign_to_vec().map_err(|e| e.to_string())?;
    Ok(format!("{signing_input}.{}", B64URL.encode(signature)))
}

/// Entra ID's v2 answer, IMDS's and App Service's (which give numbers as strings).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<NumberOrText>,
    #[serde(default)]
    expires_on: Option<NumberOrText>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(u64),
    Text(String),
}

impl NumberOrText {
    fn value(&self) -> Option<u64> {
        match self {
            NumberOrText::Number(n) => Some(*n),
            NumberOrText::Text(t) => t.trim().parse().ok(),
        }
    }
}

impl TokenResponse {
    fn lifetime(&self) -> Option<Duration> {
        if let Some(seconds) = self.expires_in.as_ref().and_then(NumberOrText::value) {
            return Some(Duration::from_secs(seconds));
        }
        let on = self.expires_on.as_ref().and_then(NumberOrText::value)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        Some(Duration::from_secs(on.saturating_sub(now)))
    }
}

/// The OAuth error code and the first line of its description (Entra ID's `AADSTS…`
/// text names the problem, never the credential).
fn token_error_detail(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct OAuthError {
        error: Option<String>,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<OAuthError>(body) {
        Ok(OAuthError {
            error,
            error_description,
        }) => {
            let description = error_description.unwrap_or_default();
            let first = description.lines().next().unwrap_or_default();
            let mut text = format!("{}: {first}", error.unwrap_or_else(|| "error".to_owned()));
            text.truncate(300);
            text
        }
        Err(_) => "(no OAuth error in the answer)".to_owned(),
    }
}

/// The current token of one vault, refreshed by one caller at a time.
pub(crate) struct TokenCache {
    credential: Credential,
    resource: String,
    current: parking_lot::RwLock<Option<AccessToken>>,
    refreshing: tokio::sync::Mutex<()>,
    /// Tokens obtained so far, for tests and logs.
    issued: AtomicU64,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("credential", &self.credential.kind())
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub fn new(credential: Credential, resource: String) -> Self {
        TokenCache {
            credential,
            resource,
            current: parking_lot::RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            issued: AtomicU64::new(0),
        }
    }

    pub fn kind(&self) -> &'static str {
        self.credential.kind()
    }

    fn fresh(&self) -> Option<Zeroizing<String>> {
        let current = self.current.read();
        current
            .as_ref()
            .filter(|t| Instant::now() < t.refresh_at)
            .map(|t| t.secret.clone())
    }

    /// A token valid for a while yet: the cached one, else a new one (token requests are
    /// retried as Key Vault calls are).
    pub async fn token(
        &self,
        http: &reqwest::Client,
        vault: &str,
        counters: &CallCounters,
        policy: &RetryPolicy,
    ) -> Result<Zeroizing<String>, VaultError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _one_refresh = self.refreshing.lock().await;
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let token = net::with_retries(counters, policy, || {
            self.credential.fetch(http, vault, &self.resource)
        })
        .await?;
        self.issued.fetch_add(1, Ordering::Relaxed);
        let secret = token.secret.clone();
        *self.current.write() = Some(token);
        Ok(secret)
    }

    /// Forget `rejected` (Key Vault answered 401 to it) unless a newer token replaced it.
    pub fn reject(&self, rejected: &str) {
        let mut current = self.current.write();
        if current
            .as_ref()
            .is_some_and(|t| t.secret.as_str() == rejected)
        {
            *current = None;
        }
    }
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

    #[test]
    fn the_assertion_is_an_rs256_jwt_naming_the_certificate() {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let key = PKey::from_rsa(rsa).unwrap();
        let jwt = client_assertion(
            "https://login.example/t/oauth2/v2.0/token",
            "app",
            &key,
            "dGh1bWI",
        )
        .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["x5t"], "dGh1bWI");
        let claims: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://login.example/t/oauth2/v2.0/token");
        assert_eq!(claims["iss"], "app");
        assert_eq!(claims["sub"], "app");
        let mut verifier = openssl::sign::Verifier::new(MessageDigest::sha256(), &key).unwrap();
        verifier
            .update(format!("{}.{}", parts[0], parts[1]).as_bytes())
            .unwrap();
        assert!(verifier.verify(&B64URL.decode(parts[2]).unwrap()).unwrap());
    }

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        let long = AccessToken::new("t".to_owned(), Duration::from_secs(3600));
        assert!(long.refresh_at <= Instant::now() + Duration::from_secs(3300));
        let short = AccessToken::new("t".to_owned(), Duration::from_secs(4));
        assert!(short.refresh_at <= Instant::now() + Duration::from_secs(2));
        assert!(!format!("{short:?}").contains("\"t\""));
    }

    #[test]
    fn token_lifetimes_are_read_from_numbers_or_text() {
        let entra: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":3599,"token_type":"Bearer"}"#)
                .unwrap();
        assert_eq!(entra.lifetime(), Some(Duration::from_secs(3599)));
        let imds: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":"86399","expires_on":"1"}"#)
                .unwrap();
        assert_eq!(imds.lifetime(), Some(Duration::from_secs(86399)));
        let later = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 100;
        let app: TokenResponse =
            serde_json::from_str(&format!(r#"{{"access_token":"a","expires_on":"{later}"}}"#))
                .unwrap();
        let lifetime = app.lifetime().unwrap();
        assert!(lifetime <= Duration::from_secs(100) && lifetime >= Duration::from_secs(98));
    }

    #[test]
    fn token_errors_keep_the_code_and_first_line_only() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}"#;
        assert_eq!(
            token_error_detail(body),
            "invalid_client: AADSTS7000215: Invalid client secret provided."
        );
    }
}
