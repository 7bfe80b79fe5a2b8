//! Vault's HTTP API as the driver uses it: `/v1/<path>` with the token header, JSON in and
//! out, Vault's `{"errors": [...]}` bodies turned into messages, and transient failures
//! (429, 5xx such as a sealed or standby node, timeouts, refused connections) retried.

use crate::net::{retry_after, with_retries, CallCounters, Failure, RetryPolicy};
use serde_json::Value;
use signatory_signer::vault::VaultError;
use std::fmt;
use zeroize::Zeroizing;

/// The header Vault reads the token from.
const TOKEN_HEADER: &str = "X-Vault-Token";
/// The header that selects a Vault Enterprise / OpenBao namespace.
const NAMESPACE_HEADER: &str = "X-Vault-Namespace";
/// The detail of an answer whose `errors` list is empty (Vault's LIST of an empty directory
/// is a 404 so, while a path with no handler, such as a wrong mount, names the problem).
pub(crate) const NO_DETAIL: &str = "no error text";
/// The longest piece of Vault's own error text kept in a message.
const DETAIL_LIMIT: usize = 300;

/// What Vault answered to a call that did not fail outright.
#[derive(Debug)]
pub(crate) enum Answer {
    /// 2xx: the JSON body (`Null` for 204).
    Done(Value),
    /// 403: the token expired or was revoked, or its policy does not allow the path.
    Forbidden(String),
    /// 404: nothing there (Vault answers a LIST of an empty directory so).
    NotFound(String),
}

/// A request body.
#[derive(Clone, Copy)]
pub(crate) enum Payload<'a> {
    Json(&'a Value),
    /// JSON holding a secret, serialised into wiped memory by the caller. The HTTP stack's
    /// own copy of the bytes is not wiped; nothing here can reach it.
    Secret(&'a [u8]),
}

/// The HTTP methods the driver uses (`List` is GET with `?list=true`, which Vault treats as
/// its LIST verb).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Method {
    Get,
    List,
    Post,
}

/// One vault's HTTP access to Vault: pooled client, base address, namespace, retry policy.
pub(crate) struct Api {
    pub vault: String,
    http: reqwest::Client,
    base: reqwest::Url,
    namespace: Option<String>,
    pub counters: CallCounters,
    policy: RetryPolicy,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("vault", &self.vault)
            .field("base", &self.base.as_str())
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Api {
    pub fn new(
        vault: &str,
        http: reqwest::Client,
        base: reqwest::Url,
        namespace: Option<String>,
        policy: RetryPolicy,
    ) -> Api {
        Api {
            vault: vault.to_owned(),
            http,
            base,
            namespace,
            counters: CallCounters::default(),
            policy,
        }
    }

    /// `<address>/v1/<segments…>`, each segment percent-encoded (a key name cannot add path
    /// segments or a query).
    fn url(&self, path: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("v1").extend(path);
        }
        url
    }

    /// Call `path`, retrying transient failures; `operation` names the call in errors.
    pub async fn call(
        &self,
        operation: &str,
        method: Method,
        path: &[&str],
        token: Option<&Zeroizing<String>>,
        body: Option<Payload<'_>>,
    ) -> Result<Answer, VaultError> {
        let url = self.url(path);
        with_retries(&self.counters, &self.policy, || {
            self.once(operation, method, url.clone(), token, body)
        })
        .await
    }

    async fn once(
        &self,
        operation: &str,
        method: Method,
        mut url: reqwest::Url,
        token: Option<&Zeroizing<String>>,
        body: Option<Payload<'_>>,
    ) -> Result<Answer, Failure> {
        let mut request = match method {
            Method::Get => self.http.get(url),
            Method::List => {
                url.query_pairs_mut().append_pair("list", "true");
                self.http.get(url)
            }
            Method::Post => self.http.post(url),
        };
        if let Some(token) = token {
            request = request.header(TOKEN_HEADER, token.as_str());
        }
        if let Some(namespace) = &self.namespace {
            request = request.header(NAMESPACE_HEADER, namespace);
        }
        match body {
            Some(Payload::Json(value)) => request = request.json(value),
            Some(Payload::Secret(bytes)) => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.to_vec());
            }
            None => {}
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::from_reqwest(&self.vault, operation, e))?;
        let status = response.status().as_u16();
        let asked_wait = retry_after(response.headers());
        // Wiped: a decryption's answer holds the plaintext.
        let text = Zeroizing::new(
            response
                .text()
                .await
                .map_err(|e| Failure::from_reqwest(&self.vault, operation, e))?,
        );
        match status {
            200..=299 => {
                if text.trim().is_empty() {
                    return Ok(Answer::Done(Value::Null));
                }
                serde_json::from_str(text.as_str())
                    .map(Answer::Done)
                    .map_err(|e| {
                        Failure::refused(VaultError::backend(
                            &self.vault,
                            false,
                            format!("{operation}: Vault's answer is not JSON: {e}"),
                        ))
                    })
            }
            403 => Ok(Answer::Forbidden(detail(&text))),
            404 => Ok(Answer::NotFound(detail(&text))),
            _ => Err(
                Failure::from_status(&self.vault, operation, status, &detail(&text))
                    .with_retry_after(asked_wait),
            ),
        }
    }
}

/// Vault's `errors` list, `; `-joined and bounded; a body that is not Vault's error JSON is
/// left out (a proxy's HTML page says nothing useful).
fn detail(body: &str) -> String {
    let errors = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("errors").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    let mut text = errors
        .iter()
        .filter_map(Value::as_str)
        .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; ");
    if text.len() > DETAIL_LIMIT {
        let mut end = DETAIL_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    if text.is_empty() {
        NO_DETAIL.to_owned()
    } else {
        text
    }
}

/// `value[k1][k2]…`, if every step exists.
pub(crate) fn at<'v>(value: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().try_fold(value, |v, k| v.get(*k))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn vaults_error_lists_become_one_line() {
        assert_eq!(
            detail(r#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#),
            "1 error occurred: * permission denied"
        );
        assert_eq!(detail("<html>bad gateway</html>"), "no error text");
        assert!(detail(&format!(r#"{{"errors":["{}"]}}"#, "x".repeat(999))).len() < 400);
    }

    #[test]
    fn key_names_are_one_percent_encoded_segment() {
        let api = Api::new(
            "hv",
            reqwest::Client::new(),
            reqwest::Url::parse("http://127.0.0.1:8200/").unwrap(),
            None,
            RetryPolicy::default(),
        );
        assert_eq!(
            api.url(&["transit", "sign", "../../sys/seal?x"]).as_str(),
            "http://127.0.0.1:8200/v1/transit/sign/..%2F..%2Fsys%2Fseal%3Fx"
        );
    }
}
