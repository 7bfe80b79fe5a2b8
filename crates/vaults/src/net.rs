//! TEMPORARY stand-in for the lead's `net` module (replaced by main's on merge).
#![allow(dead_code)]
use crate::error::OpenError;
use signatory_signer::vault::VaultError;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureClass {
    Throttled,
    Server,
    Timeout,
    Connection,
    Refused,
}
pub(crate) struct Failure {
    pub class: FailureClass,
    pub error: VaultError,
}
impl Failure {
    pub fn refused(error: VaultError) -> Failure {
        Failure {
            class: FailureClass::Refused,
            error,
        }
    }
    pub fn transient(class: FailureClass, error: VaultError) -> Failure {
        Failure { class, error }
    }
    pub fn from_status(vault: &str, operation: &str, status: u16, detail: &str) -> Failure {
        let class = match status {
            429 => FailureClass::Throttled,
            408 | 504 => FailureClass::Timeout,
            500..=599 => FailureClass::Server,
            _ => FailureClass::Refused,
        };
        let transient = class != FailureClass::Refused;
        Failure {
            class,
            error: VaultError::backend(
                vault,
                transient,
                format!("{operation}: HTTP {status}: {detail}"),
            ),
        }
    }
    pub fn from_reqwest(vault: &str, operation: &str, error: reqwest::Error) -> Failure {
        let class = if error.is_timeout() {
            FailureClass::Timeout
        } else {
            FailureClass::Connection
        };
        Failure {
            class,
            error: VaultError::backend(vault, true, format!("{operation}: {error}"))
                .caused_by(error),
        }
    }
}
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}
impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
        }
    }
}
#[derive(Debug, Default)]
pub(crate) struct CallCounters {
    pub retries: AtomicU64,
}
pub(crate) async fn with_retries<T, F, Fut>(
    counters: &CallCounters,
    policy: &RetryPolicy,
    mut attempt: F,
) -> Result<T, VaultError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut n = 0;
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(f) if f.class == FailureClass::Refused || n >= policy.max_retries => {
                return Err(f.error)
            }
            Err(_) => {
                n += 1;
                counters.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(policy.base_delay * n).await;
            }
        }
    }
}
pub(crate) struct ClientTls {
    pub ca_pem: Option<Vec<u8>>,
    pub identity_pem: Option<zeroize::Zeroizing<Vec<u8>>>,
}
pub(crate) fn http_client(
    vault: &str,
    _tls: &ClientTls,
    request_timeout: Duration,
) -> Result<reqwest::Client, OpenError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(request_timeout)
        .build()
        .map_err(|e| OpenError::Internal {
            vault: vault.to_owned(),
            message: e.to_string(),
        })
}
