//! The Vault token: given, or from an AppRole login that is kept, renewed before it
//! expires (`auth/token/renew-self`) and replaced by a new login when renewal is refused or
//! the role's max TTL is near. Callers share one token behind an async lock, so concurrent
//! requests that find it due wait for one renewal or login instead of each making their own.

use super::api::{at, Answer, Api, Method, Payload};
use serde_json::{json, Value};
use signatory_signer::vault::VaultError;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How the driver gets a token.
pub(crate) enum Credential {
    /// A fixed token; renewed while renewable, never replaced.
    Fixed(Zeroizing<String>),
    AppRole {
        role_id: String,
        secret_id: Zeroizing<String>,
    },
}

/// A token in use, with the login it came from (so a 403 replaces it once, not once per
/// request that saw it).
pub(crate) struct Token {
    pub secret: Zeroizing<String>,
    generation: u64,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

struct Lease {
    token: Zeroizing<String>,
    generation: u64,
    /// When to renew (two thirds into the TTL); `None`: the token does not expire.
    renew_at: Option<Instant>,
    expires_at: Option<Instant>,
    renewable: bool,
    /// The TTL the login gave: a renewal granting much less means the max TTL is near.
    granted: Duration,
}

impl Lease {
    fn new(token: Zeroizing<String>, generation: u64, ttl: Duration, renewable: bool) -> Lease {
        let now = Instant::now();
        let expiring = !ttl.is_zero();
        Lease {
            token,
            generation,
            renew_at: expiring.then(|| now + ttl * 2 / 3),
            expires_at: expiring.then(|| now + ttl),
            renewable,
            granted: ttl,
        }
    }

    fn handle(&self) -> Token {
        Token {
            secret: self.token.clone(),
            generation: self.generation,
        }
    }
}

/// The token state of one vault.
pub(crate) struct Auth {
    method: Credential,
    lease: tokio::sync::Mutex<Option<Lease>>,
    generation: AtomicU64,
    logins: AtomicU64,
    renewals: AtomicU64,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field(
                "method",
                &match self.method {
                    Credential::Fixed(_) => "token",
                    Credential::AppRole { .. } => "approle",
                },
            )
            .field("logins", &self.logins.load(Ordering::Relaxed))
            .field("renewals", &self.renewals.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Auth {
    pub fn new(method: Credential) -> Auth {
        Auth {
            method,
            lease: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
        }
    }

    /// Whether a 403 may be cured by logging in again.
    pub fn can_log_in(&self) -> bool {
        matches!(self.method, Credential::AppRole { .. })
    }

    /// A token to use now: the current one, renewed or replaced first when it is due.
    pub async fn token(&self, api: &Api) -> Result<Token, VaultError> {
        let mut lease = self.lease.lock().await;
        let now = Instant::now();
        if let Some(current) = lease.as_ref() {
            if current.renew_at.is_none_or(|at| now < at) {
                return Ok(current.handle());
            }
            let alive = current.expires_at.is_none_or(|at| now < at);
            if current.renewable && alive {
                match self.renew(api, &current.token).await {
                    Ok(Some(ttl)) if !self.can_log_in() || ttl >= current.granted / 2 => {
                        let generation = current.generation;
                        let granted = current.granted.max(ttl);
                        let token = current.token.clone();
                        let mut renewed = Lease::new(token, generation, ttl, true);
                        renewed.granted = granted;
                        *lease = Some(renewed);
                        return lease
                            .as_ref()
                            .map(Lease::handle)
                            .ok_or_else(|| VaultError::backend(&api.vault, true, "no token"));
                    }
                    // Renewal refused, or the max TTL is near: log in again below.
                    Ok(_) => {}
                    // Vault is unreachable: the token is still valid, let the call try.
                    Err(e) if e.is_transient() => {
                        tracing::warn!(vault = %api.vault, "renewing the Vault token failed: {e}");
                        return Ok(current.handle());
                    }
                    Err(e) => return Err(e),
                }
            }
            if !self.can_log_in() {
                // A fixed token that can no longer be renewed: used until Vault refuses it,
                // without asking for a renewal on every call.
                let handle = current.handle();
                if let Some(current) = lease.as_mut() {
                    current.renew_at = None;
                }
                return Ok(handle);
            }
        }
        let fresh = self.log_in(api).await?;
        let handle = fresh.handle();
        *lease = Some(fresh);
        Ok(handle)
    }

    /// `used` got a 403: drop it (unless another request already replaced it) so that the
    /// next [`Auth::token`] logs in again. Whether that can help.
    pub async fn forbidden(&self, used: &Token) -> bool {
        if !self.can_log_in() {
            return false;
        }
        let mut lease = self.lease.lock().await;
        if lease
            .as_ref()
            .is_some_and(|l| l.generation == used.generation)
        {
            *lease = None;
        }
        true
    }

    /// The first token: a login, or the fixed token's own TTL from `lookup-self` (which also
    /// proves it valid).
    pub async fn start(&self, api: &Api) -> Result<(), VaultError> {
        let lease = match &self.method {
            Credential::AppRole { .. } => self.log_in(api).await?,
            Credential::Fixed(token) => {
                let data = match api
                    .call(
                        "looking up the token",
                        Method::Get,
                        &["auth", "token", "lookup-self"],
                        Some(token),
                        None,
                    )
                    .await?
                {
                    Answer::Done(v) => v,
                    Answer::Forbidden(d) | Answer::NotFound(d) => {
                        return Err(refused(api, "looking up the token", &d))
                    }
                };
                let ttl = at(&data, &["data", "ttl"])
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let renewable = at(&data, &["data", "renewable"])
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                Lease::new(
                    token.clone(),
                    self.next_generation(),
                    Duration::from_secs(ttl),
                    renewable,
                )
            }
        };
        *self.lease.lock().await = Some(lease);
        Ok(())
    }

    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    async fn log_in(&self, api: &Api) -> Result<Lease, VaultError> {
        let Credential::AppRole { role_id, secret_id } = &self.method else {
            return Err(VaultError::backend(
                &api.vault,
                false,
                "the configured Vault token was refused",
            ));
        };
        #[derive(serde::Serialize)]
        struct Login<'a> {
            role_id: &'a str,
            secret_id: &'a str,
        }
        let body = Zeroizing::new(
            serde_json::to_vec(&Login {
                role_id,
                secret_id: secret_id.as_str(),
            })
            .map_err(|e| VaultError::backend(&api.vault, false, format!("login body: {e}")))?,
        );
        self.logins.fetch_add(1, Ordering::Relaxed);
        let answer = api
            .call(
                "logging in with AppRole",
                Method::Post,
                &["auth", "approle", "login"],
                None,
                Some(Payload::Secret(&body)),
            )
            .await?;
        drop(body);
        let data = match answer {
            Answer::Done(v) => v,
            Answer::Forbidden(d) | Answer::NotFound(d) => {
                return Err(refused(api, "logging in with AppRole", &d))
            }
        };
        let token = at(&data, &["auth", "client_token"])
            .and_then(Value::as_str)
            .map(|t| Zeroizing::new(t.to_owned()))
            .ok_or_else(|| {
                VaultError::backend(
                    &api.vault,
                    false,
                    "logging in with AppRole: Vault's answer has no token",
                )
            })?;
        let ttl = at(&data, &["auth", "lease_duration"])
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let renewable = at(&data, &["auth", "renewable"])
            .and_then(Value::as_bool)
            .unwrap_or(false);
        tracing::info!(vault = %api.vault, ttl_s = ttl, "logged in to Vault with AppRole");
        Ok(Lease::new(
            token,
            self.next_generation(),
            Duration::from_secs(ttl),
            renewable,
        ))
    }

    /// The new TTL, or `None` when Vault refused to renew.
    async fn renew(
        &self,
        api: &Api,
        token: &Zeroizing<String>,
    ) -> Result<Option<Duration>, VaultError> {
        self.renewals.fetch_add(1, Ordering::Relaxed);
        let answer = api
            .call(
                "renewing the token",
                Method::Post,
                &["auth", "token", "renew-self"],
                Some(token),
                Some(Payload::Json(&json!({}))),
            )
            .await;
        match answer {
            Ok(Answer::Done(data)) => Ok(at(&data, &["auth", "lease_duration"])
                .and_then(Value::as_u64)
                .map(Duration::from_secs)),
            Ok(Answer::Forbidden(_) | Answer::NotFound(_)) => Ok(None),
            Err(e) if !e.is_transient() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A permanent error for a call Vault refused (403/404): fails closed, never retried.
pub(crate) fn refused(api: &Api, operation: &str, detail: &str) -> VaultError {
    VaultError::backend(
        &api.vault,
        false,
        format!("{operation}: Vault refused: {detail}"),
    )
}
