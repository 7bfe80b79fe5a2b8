//! The Key Vault REST calls the driver makes (api-version 7.4): list and get keys, sign,
//! create, import. Every call carries a bearer token, is retried on throttling, server
//! errors and timeouts (never on 400/401/403/404), and goes only to the configured vault:
//! key URLs are rebuilt from it and a `nextLink` elsewhere is refused.

use super::credential::TokenCache;
use crate::net::{self, CallCounters, Failure, RetryPolicy};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use signatory_signer::vault::VaultError;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

pub(crate) const API_VERSION: &str = "7.4";
pub(crate) const B64URL: base64::engine::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One page of `GET /keys`.
#[derive(Debug, Deserialize)]
pub(crate) struct KeyList {
    #[serde(default)]
    pub value: Vec<KeyItem>,
    #[serde(default, rename = "nextLink")]
    pub next_link: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyItem {
    pub kid: String,
}

/// A key bundle (`GET /keys/{name}`, create, import).
#[derive(Debug, Deserialize)]
pub(crate) struct KeyBundle {
    pub key: Jwk,
    #[serde(default)]
    pub attributes: Attributes,
}

/// The public JWK Key Vault returns (never a private part).
#[derive(Debug, Deserialize)]
pub(crate) struct Jwk {
    pub kid: String,
    pub kty: String,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub key_ops: Vec<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Attributes {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Not-before and expiry, seconds since the epoch.
    #[serde(default)]
    pub nbf: Option<u64>,
    #[serde(default)]
    pub exp: Option<u64>,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignResult {
    pub value: String,
}

/// Key Vault's error body `{"error":{"code","message"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
}

fn error_detail(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error: Some(e) }) => {
            let mut text = format!(
                "{}: {}",
                e.code.unwrap_or_else(|| "Error".to_owned()),
                e.message.unwrap_or_default()
            );
            text.truncate(400);
            text
        }
        _ => "(no Key Vault error in the answer)".to_owned(),
    }
}

/// What one attempt saw: the answer, or a 401 (the token is stale: get another once).
enum Answer<T> {
    Done(T),
    Unauthorized(String),
}

/// An HTTP client bound to one vault, with its tokens and retry policy.
#[derive(Debug)]
pub(crate) struct KeyVaultClient {
    pub vault: String,
    pub base: String,
    pub http: reqwest::Client,
    pub tokens: TokenCache,
    pub counters: CallCounters,
    pub policy: RetryPolicy,
    /// The whole call's budget: a Retry-After beyond it is not waited for.
    pub deadline: Duration,
}

impl KeyVaultClient {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}?api-version={API_VERSION}", self.base)
    }

    /// `method` on `url` with a JSON `body`; retried as the module says; a 401 gets one
    /// more try with a new token.
    async fn call<T: DeserializeOwned>(
        &self,
        operation: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<&Zeroizing<Vec<u8>>>,
    ) -> Result<T, VaultError> {
        let started = Instant::now();
        for fresh_token in [false, true] {
            let token = self
                .tokens
                .token(&self.http, &self.vault, &self.counters, &self.policy)
                .await?;
            let answer = net::with_retries(&self.counters, &self.policy, || {
                self.attempt(operation, method.clone(), url, body, &token, started)
            })
            .await?;
            match answer {
                Answer::Done(value) => return Ok(value),
                Answer::Unauthorized(detail) => {
                    self.tokens.reject(token.as_str());
                    if fresh_token {
                        return Err(VaultError::backend(
                            &self.vault,
                            false,
                            format!("{operation}: Key Vault refused a new token (401): {detail}"),
                        ));
                    }
                    tracing::info!(vault = %self.vault, "{operation}: Key Vault refused the token (401); getting a new one");
                }
            }
        }
        Err(VaultError::backend(
            &self.vault,
            false,
            format!("{operation}: unauthorized"),
        ))
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        operation: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<&Zeroizing<Vec<u8>>>,
        token: &str,
        started: Instant,
    ) -> Result<Answer<T>, Failure> {
        let mut request = self.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            // reqwest keeps its own copy of the body until the request is sent; an import's
            // JSON (with `d`) cannot be wiped inside it.
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::from_reqwest(&self.vault, operation, e))?;
        let status = response.status().as_u16();
        let retry_after = net::retry_after(response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::from_reqwest(&self.vault, operation, e))?;
        if status == 401 {
            return Ok(Answer::Unauthorized(error_detail(&bytes)));
        }
        if !(200..300).contains(&status) {
            let detail = error_detail(&bytes);
            if status == 429 {
                if let Some(wait) = retry_after {
                    if started.elapsed() + wait >= self.deadline {
                        // Waiting would outlast the call: fail now, as a temporary error.
                        return Err(Failure::refused(VaultError::backend(
                            &self.vault,
                            true,
                            format!(
                                "{operation}: Key Vault is throttling (429) and asks to wait {} s: {detail}",
                                wait.as_secs()
                            ),
                        )));
                    }
                }
            }
            // `with_retries` waits what Retry-After asks (up to its cap) before the retry.
            return Err(
                Failure::from_status(&self.vault, operation, status, &detail)
                    .with_retry_after(retry_after),
            );
        }
        serde_json::from_slice(&bytes)
            .map(Answer::Done)
            .map_err(|e| {
                Failure::refused(VaultError::backend(
                    &self.vault,
                    false,
                    format!("{operation}: unreadable answer from Key Vault: {e}"),
                ))
            })
    }

    /// Every key id in the vault, following `nextLink` within the vault.
    pub async fn list(&self) -> Result<Vec<String>, VaultError> {
        let mut url = format!("{}&maxresults=25", self.url("keys"));
        let mut kids = Vec::new();
        for _page in 0..10_000 {
            let page: KeyList = self
                .call("listing keys", reqwest::Method::GET, &url, None)
                .await?;
            kids.extend(page.value.into_iter().map(|k| k.kid));
            match page.next_link.filter(|l| !l.is_empty()) {
                None => return Ok(kids),
                Some(next) => {
                    if !within(&self.base, &next) {
                        return Err(VaultError::backend(
                            &self.vault,
                            false,
                            format!("listing keys: the next page is outside the vault ({next}); not sending the token there"),
                        ));
                    }
                    url = next;
                }
            }
        }
        Err(VaultError::backend(
            &self.vault,
            false,
            "listing keys: too many pages",
        ))
    }

    /// The newest version of key `name`.
    pub async fn get(&self, name: &str) -> Result<KeyBundle, VaultError> {
        self.call(
            "reading a key",
            reqwest::Method::GET,
            &self.url(&format!("keys/{name}")),
            None,
        )
        .await
    }

    /// Whether the vault answers a listing (the health check).
    pub async fn probe(&self) -> Result<(), VaultError> {
        let url = format!("{}&maxresults=1", self.url("keys"));
        self.call::<KeyList>("health check", reqwest::Method::GET, &url, None)
            .await
            .map(drop)
    }

    /// Sign the 32-byte `digest` with version `version` of key `name`: raw r ‖ s.
    pub async fn sign(
        &self,
        name: &str,
        version: &str,
        alg: &str,
        digest: &[u8; 32],
    ) -> Result<Vec<u8>, VaultError> {
        let body = Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({"alg": alg, "value": B64URL.encode(digest)}))
                .map_err(|e| VaultError::backend(&self.vault, false, e.to_string()))?,
        );
        let url = self.url(&format!("keys/{name}/{version}/sign"));
        let result: SignResult = self
            .call("signing", reqwest::Method::POST, &url, Some(&body))
            .await?;
        B64URL
            .decode(result.value.trim_end_matches('='))
            .map_err(|e| {
                VaultError::backend(
                    &self.vault,
                    false,
                    format!("signing: the signature is not base64url: {e}"),
                )
            })
    }

    pub async fn create(&self, name: &str, kty: &str, crv: &str) -> Result<KeyBundle, VaultError> {
        let body = Zeroizing::new(
            serde_json::to_vec(
                &serde_json::json!({"kty": kty, "crv": crv, "key_ops": ["sign", "verify"]}),
            )
            .map_err(|e| VaultError::backend(&self.vault, false, e.to_string()))?,
        );
        let url = self.url(&format!("keys/{name}/create"));
        self.call("creating a key", reqwest::Method::POST, &url, Some(&body))
            .await
    }

    /// `PUT /keys/{name}` with the private JWK already serialized in `body`.
    pub async fn import(
        &self,
        name: &str,
        body: &Zeroizing<Vec<u8>>,
    ) -> Result<KeyBundle, VaultError> {
        let url = self.url(&format!("keys/{name}"));
        self.call("importing a key", reqwest::Method::PUT, &url, Some(body))
            .await
    }
}

/// Whether `url` is on the vault's origin and under its path.
fn within(base: &str, url: &str) -> bool {
    url.strip_prefix(base)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The key name and version in a key id `{vault}/keys/{name}[/{version}]`, each checked
/// to be what Key Vault allows in a name (letters, digits, dashes).
pub(crate) fn split_kid(kid: &str) -> Option<(String, Option<String>)> {
    let path = kid.split(['?', '#']).next()?;
    let (_, after) = path.rsplit_once("/keys/")?;
    let mut parts = after.trim_end_matches('/').split('/');
    let name = parts.next().filter(|n| valid_segment(n))?;
    let version = match parts.next() {
        Some(v) if valid_segment(v) => Some(v.to_owned()),
        Some(_) => return None,
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((name.to_owned(), version))
}

fn valid_segment(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 127
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_split_into_name_and_version() {
        assert_eq!(
            split_kid("https://v.vault.azure.net/keys/baker-1/0123abcd"),
            Some(("baker-1".to_owned(), Some("0123abcd".to_owned())))
        );
        assert_eq!(
            split_kid("https://v.vault.azure.net/keys/baker"),
            Some(("baker".to_owned(), None))
        );
        assert_eq!(split_kid("https://v.vault.azure.net/keys/../x"), None);
        assert_eq!(split_kid("https://v.vault.azure.net/keys/a/b/c"), None);
        assert_eq!(split_kid("https://v.vault.azure.net/secrets/a"), None);
    }

    #[test]
    fn next_pages_must_stay_in_the_vault() {
        let base = "https://v.vault.azure.net";
        assert!(within(
            base,
            "https://v.vault.azure.net/keys?api-version=7.4&$skiptoken=x"
        ));
        assert!(!within(base, "https://v.vault.azure.net.evil.example/keys"));
        assert!(!within(base, "https://other.vault.azure.net/keys"));
    }

    #[test]
    fn key_vault_errors_read_as_code_and_message() {
        let body = br#"{"error":{"code":"Forbidden","message":"The user does not have keys sign permission","innererror":{"code":"ForbiddenByRbac"}}}"#;
        assert_eq!(
            error_detail(body),
            "Forbidden: The user does not have keys sign permission"
        );
        assert_eq!(
            error_detail(b"<html>"),
            "(no Key Vault error in the answer)"
        );
    }
}
