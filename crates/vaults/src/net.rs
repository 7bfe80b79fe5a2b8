//! What every network vault driver shares: one pooled HTTP client per vault, a
//! classification of failed calls, and retries with backoff and jitter for the failures a
//! retry can cure (throttling, 5xx, timeouts, lost connections), never for a refusal.
//!
//! The whole call, retries included, is still bounded by the driver's deadline
//! ([`crate::registry::Driver::deadline`]), so a retry never holds a request longer than that.

use crate::error::OpenError;
use rand_core::{OsRng, RngCore};
use signatory_signer::vault::{CallStats, VaultError};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use zeroize::Zeroizing;

/// Why a backend call failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureClass {
    /// The service asked to slow down (HTTP 429, a throttling error code).
    Throttled,
    /// The service failed (HTTP 5xx other than 504).
    Server,
    /// No answer in time (HTTP 408 or 504, or the request's own timeout).
    Timeout,
    /// No connection, or it broke before an answer.
    Connection,
    /// The service said no (bad credentials, no permission, no such key, bad input): a
    /// retry would get the same answer.
    Refused,
}

impl FailureClass {
    fn retryable(self) -> bool {
        self != FailureClass::Refused
    }
}

/// A failed backend call: its class, and the error the caller gets if it is not retried.
#[derive(Debug)]
pub(crate) struct Failure {
    pub class: FailureClass,
    pub error: VaultError,
    /// How long the service asked to wait (`Retry-After`), if it said.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure no retry can cure.
    pub fn refused(error: VaultError) -> Failure {
        Failure {
            class: FailureClass::Refused,
            error,
            retry_after: None,
        }
    }

    /// A failure of `class` (retried unless [`FailureClass::Refused`]).
    pub fn transient(class: FailureClass, error: VaultError) -> Failure {
        Failure {
            class,
            error,
            retry_after: None,
        }
    }

    /// The service's `Retry-After`, honoured (up to [`MAX_RETRY_AFTER`]) instead of the
    /// backoff.
    pub fn with_retry_after(mut self, wait: Option<Duration>) -> Failure {
        self.retry_after = wait;
        self
    }

    /// A non-2xx answer: 429 is throttling, 408 and 504 timeouts, other 5xx server
    /// failures (all retried, the error transient); anything else a refusal (not retried,
    /// the error permanent). `detail` is the service's own message, which carries no secret.
    pub fn from_status(vault: &str, operation: &str, status: u16, detail: &str) -> Failure {
        let class = match status {
            429 => FailureClass::Throttled,
            408 | 504 => FailureClass::Timeout,
            500..=599 => FailureClass::Server,
            _ => FailureClass::Refused,
        };
        let detail = detail.trim();
        let message = if detail.is_empty() {
            format!("{operation}: HTTP {status}")
        } else {
            format!("{operation}: HTTP {status}: {}", shorten(detail))
        };
        Failure::transient(
            class,
            VaultError::backend(vault, class.retryable(), message),
        )
    }

    /// A request that got no usable answer: timeouts and connection failures are retried;
    /// an answer that cannot be read is not. The URL is left out of the message.
    pub fn from_reqwest(vault: &str, operation: &str, error: reqwest::Error) -> Failure {
        let class = if error.is_timeout() {
            FailureClass::Timeout
        } else if error.is_connect() || error.is_request() || error.is_body() {
            FailureClass::Connection
        } else {
            FailureClass::Refused
        };
        let error = error.without_url();
        let message = match class {
            FailureClass::Timeout => format!("{operation}: no answer in time"),
            FailureClass::Connection => format!("{operation}: cannot reach the service"),
            _ => format!("{operation}: unreadable answer"),
        };
        Failure::transient(
            class,
            VaultError::backend(vault, class.retryable(), message).caused_by(error),
        )
    }
}

/// The longest `Retry-After` honoured; a service asking for more is failed sooner (the
/// client retries on its own schedule).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// A service's message, cut to a length a log line and an error body can carry.
fn shorten(detail: &str) -> String {
    const MAX: usize = 300;
    match detail.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", detail.get(..cut).unwrap_or_default()),
        None => detail.to_owned(),
    }
}

/// How often, and how patiently, a failed call is tried again.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    pub max_retries: u32,
    /// The backoff before the first retry; it doubles for each further one.
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

impl RetryPolicy {
    /// The wait before retry number `retry`: what the service asked for, up to
    /// [`MAX_RETRY_AFTER`], or else the backoff.
    fn wait_before(&self, retry: u32, asked: Option<Duration>) -> Duration {
        match asked {
            Some(asked) => asked.min(MAX_RETRY_AFTER),
            None => self.backoff(retry),
        }
    }

    /// The wait before retry number `retry` (0 for the first): "full jitter", a uniform
    /// draw below the exponential backoff, so clients that failed together do not retry
    /// together.
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        if micros == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(OsRng.next_u64() % (micros + 1))
    }
}

/// The counts behind [`CallStats`], kept by each network vault.
#[derive(Debug, Default)]
pub(crate) struct CallCounters {
    retries: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    timeouts: AtomicU64,
    connection_errors: AtomicU64,
    refused: AtomicU64,
}

impl CallCounters {
    pub fn stats(&self) -> CallStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CallStats {
            retries: read(&self.retries),
            throttled: read(&self.throttled),
            server_errors: read(&self.server_errors),
            timeouts: read(&self.timeouts),
            connection_errors: read(&self.connection_errors),
            refused: read(&self.refused),
        }
    }

    fn count(&self, class: FailureClass) {
        let counter = match class {
            FailureClass::Throttled => &self.throttled,
            FailureClass::Server => &self.server_errors,
            FailureClass::Timeout => &self.timeouts,
            FailureClass::Connection => &self.connection_errors,
            FailureClass::Refused => &self.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Run `attempt` until it succeeds, fails with a refusal, or `policy`'s retries run out;
/// the error is the last attempt's.
pub(crate) async fn with_retries<T, F, Fut>(
    counters: &CallCounters,
    policy: &RetryPolicy,
    mut attempt: F,
) -> Result<T, VaultError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut retry = 0;
    loop {
        let failure = match attempt().await {
            Ok(done) => return Ok(done),
            Err(failure) => failure,
        };
        counters.count(failure.class);
        if !failure.class.retryable() || retry >= policy.max_retries {
            return Err(failure.error);
        }
        let wait = policy.wait_before(retry, failure.retry_after);
        retry += 1;
        counters.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
    }
}

/// TLS settings of a vault's client beyond the system's roots.
#[derive(Default)]
pub(crate) struct ClientTls {
    /// Extra CA certificates (PEM) to trust.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate and its private key, PEM, concatenated (mutual TLS).
    pub identity_pem: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_pem", &self.ca_pem.is_some())
            .field(
                "identity_pem",
                &self.identity_pem.as_ref().map(|_| "REDACTED"),
            )
            .finish()
    }
}

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle pooled connections are kept this long (below the usual 60–350 s of load balancers
/// in front of cloud APIs would risk reusing a connection they dropped; most close idle
/// ones after 60 s or more).
const POOL_IDLE: Duration = Duration::from_secs(50);

/// The one HTTP client of vault `vault`: pooled keep-alive connections (HTTP/2 where the
/// service offers it), TCP keep-alive, a connect timeout, each request bounded by
/// `request_timeout`, no redirects (a signing call is never sent elsewhere).
pub(crate) fn http_client(
    vault: &str,
    tls: &ClientTls,
    request_timeout: Duration,
) -> Result<reqwest::Client, OpenError> {
    let config_error = |what: &str, e: reqwest::Error| OpenError::Config {
        vault: vault.to_owned(),
        key_path: format!("vaults.{vault}.config"),
        message: format!("{what}: {}", e.without_url()),
    };
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(request_timeout)
        .pool_idle_timeout(POOL_IDLE)
        .tcp_keepalive(Duration::from_secs(30))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("signatory/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &tls.ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| config_error("the CA certificate is not PEM", e))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(pem) = &tls.identity_pem {
        let identity = reqwest::Identity::from_pem(pem)
            .map_err(|e| config_error("the client certificate or key is not PEM", e))?;
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|e| config_error("cannot build the HTTP client", e))
}

/// A `Retry-After` header given in seconds (the HTTP-date form is not used by these
/// services).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[test]
    fn statuses_are_classed_and_only_refusals_are_permanent() {
        for (status, class) in [
            (429, FailureClass::Throttled),
            (408, FailureClass::Timeout),
            (504, FailureClass::Timeout),
            (500, FailureClass::Server),
            (503, FailureClass::Server),
            (400, FailureClass::Refused),
            (401, FailureClass::Refused),
            (403, FailureClass::Refused),
            (404, FailureClass::Refused),
        ] {
            let failure = Failure::from_status("kms", "signing", status, "nope");
            assert_eq!(failure.class, class, "{status}");
            assert_eq!(failure.error.is_transient(), class.retryable(), "{status}");
            assert_eq!(
                failure.error.to_string(),
                format!(
                    "vault `kms` failed{}: signing: HTTP {status}: nope",
                    if class.retryable() {
                        " (temporary)"
                    } else {
                        ""
                    }
                )
            );
        }
        let long = "x".repeat(1000);
        let failure = Failure::from_status("kms", "signing", 500, &long);
        assert!(failure.error.to_string().len() < 400);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success_and_counted() {
        let counters = CallCounters::default();
        let tries = AtomicU32::new(0);
        let result = with_retries(&counters, &quick(), || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 => Err(Failure::from_status("kms", "signing", 429, "slow down")),
                1 => Err(Failure::from_status("kms", "signing", 503, "")),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        let stats = counters.stats();
        assert_eq!(
            (stats.retries, stats.throttled, stats.server_errors),
            (2, 1, 1)
        );
    }

    #[tokio::test]
    async fn a_refusal_is_never_retried() {
        let counters = CallCounters::default();
        let tries = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&counters, &quick(), || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(Failure::from_status("kms", "signing", 403, "AccessDenied"))
        })
        .await;
        assert!(!result.unwrap_err().is_transient());
        assert_eq!(tries.load(Ordering::SeqCst), 1);
        assert_eq!(counters.stats().retries, 0);
        assert_eq!(counters.stats().refused, 1);
    }

    #[tokio::test]
    async fn retries_stop_at_the_limit_with_the_last_error() {
        let counters = CallCounters::default();
        let tries = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&counters, &quick(), || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(Failure::from_status("kms", "signing", 500, "down"))
        })
        .await;
        let e = result.unwrap_err();
        assert!(e.is_transient());
        assert_eq!(tries.load(Ordering::SeqCst), 4);
        assert_eq!(counters.stats().retries, 3);
        assert_eq!(counters.stats().server_errors, 4);
    }

    #[test]
    fn backoff_is_jittered_below_its_exponential_ceiling() {
        let policy = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
        };
        let draws: Vec<Duration> = (0..64).map(|_| policy.backoff(0)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(50)));
        // Sixty-four equal draws from a uniform range of 50,001 values do not happen.
        assert!(draws.iter().any(|d| Some(d) != draws.first()));
        assert!((0..64).all(|_| policy.backoff(30) <= Duration::from_secs(1)));
    }

    #[test]
    fn retry_after_is_honoured_up_to_its_cap() {
        let policy = quick();
        let asked = |secs| policy.wait_before(0, Some(Duration::from_secs(secs)));
        assert_eq!(asked(2), Duration::from_secs(2));
        assert_eq!(asked(60), MAX_RETRY_AFTER);
        assert!(policy.wait_before(0, None) <= Duration::from_millis(1));
    }

    #[test]
    fn retry_after_headers_in_seconds_are_read() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[tokio::test]
    async fn unreachable_services_are_transient_connection_failures() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = http_client("kms", &ClientTls::default(), Duration::from_secs(2)).unwrap();
        let error = client
            .get(format!("http://127.0.0.1:{port}/secret-path"))
            .send()
            .await
            .unwrap_err();
        let failure = Failure::from_reqwest("kms", "listing the keys", error);
        assert_eq!(failure.class, FailureClass::Connection);
        assert!(failure.error.is_transient());
        let chain = signatory_signer::vault::error_chain(&failure.error);
        assert!(!chain.contains("secret-path"), "{chain}");
    }

    #[test]
    fn bad_tls_material_names_the_setting_and_hides_it() {
        let tls = ClientTls {
            ca_pem: None,
            identity_pem: Some(Zeroizing::new(b"-----BEGIN NOTHING-----".to_vec())),
        };
        let e = http_client("kms", &tls, Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("vaults.kms.config"), "{e}");
        assert!(!format!("{tls:?}").contains("NOTHING"));
    }
}
