//! The Cloud KMS REST calls the driver makes, each attempt authenticated with a bearer
//! token and retried through `net::with_retries` on throttling, 5xx and timeouts.

use super::auth::TokenSource;
use crate::net::{self, CallCounters, Failure, FailureClass, RetryPolicy};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use signatory_signer::vault::VaultError;
use std::sync::atomic::{AtomicU16, Ordering};

/// A `cryptoKeys` resource (the fields the driver reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CryptoKey {
    pub name: String,
    #[serde(default)]
    pub purpose: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CryptoKeyPage {
    #[serde(default)]
    pub crypto_keys: Vec<CryptoKey>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// A `cryptoKeyVersions` resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CryptoKeyVersion {
    pub name: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub algorithm: String,
    #[serde(default)]
    pub import_failure_reason: Option<String>,
    #[serde(default)]
    pub generation_failure_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CryptoKeyVersionPage {
    #[serde(default)]
    pub crypto_key_versions: Vec<CryptoKeyVersion>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// `getPublicKey`'s answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PublicKeyAnswer {
    pub pem: String,
    #[serde(default)]
    pub algorithm: String,
    /// An int64 as a JSON string.
    #[serde(default)]
    pub pem_crc32c: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `asymmetricSign`'s answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignAnswer {
    pub signature: String,
    #[serde(default)]
    pub signature_crc32c: Option<String>,
    #[serde(default)]
    pub verified_digest_crc32c: bool,
    #[serde(default)]
    pub verified_data_crc32c: bool,
    #[serde(default)]
    pub name: Option<String>,
}

/// An `importJobs` resource.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImportJob {
    pub name: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub public_key: Option<JobPublicKey>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct JobPublicKey {
    pub pem: String,
}

/// Google's error body: `{"error": {"code", "message", "status"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// One request: method, path under `/v1/`, query, JSON body.
pub(crate) struct Request<'a> {
    pub operation: &'a str,
    pub method: reqwest::Method,
    pub path: &'a str,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<serde_json::Value>,
}

impl<'a> Request<'a> {
    pub(crate) fn get(operation: &'a str, path: &'a str) -> Self {
        Request {
            operation,
            method: reqwest::Method::GET,
            path,
            query: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn post(operation: &'a str, path: &'a str, body: serde_json::Value) -> Self {
        Request {
            operation,
            method: reqwest::Method::POST,
            path,
            query: Vec::new(),
            body: Some(body),
        }
    }

    pub(crate) fn query(mut self, key: &'a str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }
}

/// A call that failed; `status` is the HTTP status of a refusal (403, 404, 409, …), `None`
/// when the call failed otherwise (transport, retries exhausted, bad answer).
#[derive(Debug)]
pub(crate) struct CallError {
    pub status: Option<u16>,
    pub error: VaultError,
}

impl From<CallError> for VaultError {
    fn from(e: CallError) -> Self {
        e.error
    }
}

/// The REST client of one vault.
#[derive(Debug)]
pub(crate) struct Kms {
    pub vault: String,
    /// `https://cloudkms.googleapis.com` or the configured endpoint.
    pub endpoint: String,
    pub client: reqwest::Client,
    pub tokens: TokenSource,
    pub counters: CallCounters,
    pub policy: RetryPolicy,
}

impl Kms {
    /// Run `request` with retries; `check` validates a decoded answer inside the attempt,
    /// so an answer that failed its integrity check is retried like a transient error.
    pub(crate) async fn call<T, U>(
        &self,
        request: &Request<'_>,
        check: impl Fn(T) -> Result<U, Failure> + Sync,
    ) -> Result<U, CallError>
    where
        T: DeserializeOwned,
    {
        self.call_with(&self.policy, request, check).await
    }

    /// One attempt, no retry (health probes: the next poll is the retry).
    pub(crate) async fn once<T: DeserializeOwned>(
        &self,
        request: &Request<'_>,
    ) -> Result<T, CallError> {
        let policy = RetryPolicy {
            max_retries: 0,
            ..self.policy.clone()
        };
        self.call_with(&policy, request, Ok).await
    }

    async fn call_with<T, U>(
        &self,
        policy: &RetryPolicy,
        request: &Request<'_>,
        check: impl Fn(T) -> Result<U, Failure> + Sync,
    ) -> Result<U, CallError>
    where
        T: DeserializeOwned,
    {
        let refused = AtomicU16::new(0);
        let result = net::with_retries(&self.counters, policy, || async {
            let answer = self.attempt::<T>(request, &refused).await?;
            check(answer)
        })
        .await;
        result.map_err(|error| {
            let status = refused.load(Ordering::Relaxed);
            CallError {
                status: (status != 0 && !error.is_transient()).then_some(status),
                error,
            }
        })
    }

    /// [`Kms::call`] without a check.
    pub(crate) async fn fetch<T: DeserializeOwned>(
        &self,
        request: &Request<'_>,
    ) -> Result<T, CallError> {
        self.call(request, Ok).await
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        request: &Request<'_>,
        refused: &AtomicU16,
    ) -> Result<T, Failure> {
        let operation = request.operation;
        let token = self.tokens.token().await?;
        let url = format!("{}/v1/{}", self.endpoint, request.path);
        let mut builder = self
            .client
            .request(request.method.clone(), &url)
            .bearer_auth(token.as_str());
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| Failure::from_reqwest(&self.vault, operation, e))?;
        let status = response.status().as_u16();
        let retry_after = net::retry_after(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| Failure::from_reqwest(&self.vault, operation, e))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body).map_err(|e| {
                Failure::refused(VaultError::backend(
                    &self.vault,
                    false,
                    format!("{operation}: Cloud KMS answered with unexpected JSON: {e}"),
                ))
            });
        }
        let detail = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(b) if !b.error.status.is_empty() => {
                format!("{}: {}", b.error.status, b.error.message)
            }
            Ok(b) => b.error.message,
            Err(_) => format!("HTTP {status}"),
        };
        if status == 401 {
            // The token expired early or was revoked: the next attempt fetches a new one.
            self.tokens.invalidate(token.as_str());
            return Err(Failure::transient(
                FailureClass::Server,
                VaultError::backend(
                    &self.vault,
                    true,
                    format!("{operation}: Cloud KMS refused the access token ({detail})"),
                ),
            ));
        }
        refused.store(status, Ordering::Relaxed);
        Err(
            Failure::from_status(&self.vault, operation, status, &detail)
                .with_retry_after(retry_after),
        )
    }
}
