//! A fake of the Vault/OpenBao transit API subset the `hashicorpvault` driver uses, served on
//! 127.0.0.1 by axum: `GET <mount>/keys?list=true`, `GET <mount>/keys/<name>`,
//! `POST <mount>/keys/<name>` (create), `POST <mount>/sign/<name>`,
//! `GET auth/token/lookup-self`, `POST auth/token/renew-self`. Bodies and statuses are
//! Vault's: `{"data": …}` envelopes, `{"errors": [...]}` with 400 for a missing key, 403
//! "permission denied" for another token, 404 for an empty key list, 503 "Vault is sealed",
//! 429 for a rate-limit quota. Keys sign for real (OpenSSL): Ed25519 over the input bytes,
//! ECDSA P-256 over the prehashed input (`marshaling_algorithm=jws` gives base64url r ‖ s,
//! left high-S half the time as Vault does, so the driver's low-S step is exercised).
//!
//! [`FakeTransit::set_delay`] holds every answer (the lead's benchmark uses 20 ms);
//! [`FakeTransit::set_failing`] switches every answer to a failure, [`FakeTransit::fail_next`] only
//! the next few.

use crate::HarnessError;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tezos_crypto::{Curve, PublicKey, SecretKey};

/// How the fake answers while failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failing {
    /// 503 `Vault is sealed` (also what a standby without forwarding gives).
    Sealed,
    /// 429 `rate limit quota exceeded`.
    Throttled,
    /// 500 `internal error`.
    Internal,
}

impl Failing {
    fn answer(self) -> Response {
        match self {
            Failing::Sealed => errors(StatusCode::SERVICE_UNAVAILABLE, "Vault is sealed"),
            Failing::Throttled => {
                errors(StatusCode::TOO_MANY_REQUESTS, "rate limit quota exceeded")
            }
            Failing::Internal => errors(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        }
    }
}

struct FakeKey {
    curve: Curve,
    secret: PKey<Private>,
    public_key: PublicKey,
    /// Vault's rendering: base64 raw bytes (Ed25519) or SPKI PEM (P-256).
    public_text: String,
}

#[derive(Default)]
struct Inner {
    token: String,
    keys: Mutex<BTreeMap<String, FakeKey>>,
    delay: Mutex<Duration>,
    failing: Mutex<Option<Failing>>,
    fail_next: Mutex<(u64, Option<Failing>)>,
    requests: AtomicU64,
    signs: AtomicU64,
}

/// A running fake transit server. Dropping it stops the server.
pub struct FakeTransit {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The token it accepts (any other gets 403).
    pub token: String,
    /// The transit mount it serves.
    pub mount: String,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeTransit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTransit")
            .field("address", &self.address)
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeTransit {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn errors(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"errors": [message]}))).into_response()
}

fn data(value: Value) -> Response {
    Json(
        json!({"request_id": "fake", "lease_id": "", "renewable": false,
                "lease_duration": 0, "data": value, "wrap_info": null,
                "warnings": null, "auth": null}),
    )
    .into_response()
}

fn fake_error(detail: impl std::fmt::Display) -> HarnessError {
    HarnessError::Http {
        addr: "fake transit".to_owned(),
        detail: detail.to_string(),
    }
}

fn make_key(curve: Curve) -> Result<FakeKey, HarnessError> {
    let secret = SecretKey::generate(curve);
    let bytes = secret.expose_secret_bytes();
    let public_key = secret.public_key();
    let (pkey, public_text) = match curve {
        Curve::Ed25519 => (
            PKey::private_key_from_raw_bytes(&bytes[..], Id::ED25519).map_err(fake_error)?,
            STANDARD.encode(public_key.as_bytes()),
        ),
        Curve::P256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(fake_error)?;
            let d = BigNum::from_slice(&bytes[..]).map_err(fake_error)?;
            let mut ctx = BigNumContext::new().map_err(fake_error)?;
            let mut q = EcPoint::new(&group).map_err(fake_error)?;
            q.mul_generator2(&group, &d, &mut ctx).map_err(fake_error)?;
            let ec = EcKey::from_private_components(&group, &d, &q).map_err(fake_error)?;
            let pem = ec.public_key_to_pem().map_err(fake_error)?;
            (
                PKey::from_ec_key(ec).map_err(fake_error)?,
                String::from_utf8(pem).map_err(fake_error)?,
            )
        }
        other => return Err(fake_error(format!("transit has no {other} keys"))),
    };
    Ok(FakeKey {
        curve,
        secret: pkey,
        public_key,
        public_text,
    })
}

fn kind(curve: Curve) -> &'static str {
    match curve {
        Curve::P256 => "ecdsa-p256",
        _ => "ed25519",
    }
}

impl FakeKey {
    fn describe(&self, name: &str) -> Value {
        json!({
            "name": name, "type": kind(self.curve), "latest_version": 1,
            "min_decryption_version": 1, "min_encryption_version": 0,
            "supports_signing": true, "supports_encryption": false,
            "supports_decryption": false, "derived": false,
            "exportable": false, "deletion_allowed": false,
            "keys": {"1": {"name": if self.curve == Curve::P256 { "P-256" } else { "ed25519" },
                           "public_key": self.public_text, "certificate_chain": ""}},
        })
    }

    fn sign(&self, input: &[u8], jws: bool) -> Result<String, String> {
        match self.curve {
            Curve::P256 => {
                let ec = self.secret.ec_key().map_err(|e| e.to_string())?;
                let sig = EcdsaSig::sign(input, &ec).map_err(|e| e.to_string())?;
                let r = sig.r().to_vec_padded(32).map_err(|e| e.to_string())?;
                let s = sig.s().to_vec_padded(32).map_err(|e| e.to_string())?;
                if jws {
                    Ok(URL_SAFE_NO_PAD.encode([r, s].concat()))
                } else {
                    Ok(STANDARD.encode(sig.to_der().map_err(|e| e.to_string())?))
                }
            }
            _ => {
                let mut signer = openssl::sign::Signer::new_without_digest(&self.secret)
                    .map_err(|e| e.to_string())?;
                let sig = signer
                    .sign_oneshot_to_vec(input)
                    .map_err(|e| e.to_string())?;
                Ok(STANDARD.encode(sig))
            }
        }
    }
}

impl FakeTransit {
    /// Serve mount `transit` on a free port, accepting `token`.
    pub async fn start(token: &str) -> Result<FakeTransit, HarnessError> {
        let inner = Arc::new(Inner {
            token: token.to_owned(),
            ..Inner::default()
        });
        let mount = "transit".to_owned();
        let app = Router::new()
            .route("/v1/auth/token/lookup-self", get(lookup_self))
            .route("/v1/auth/token/renew-self", axum::routing::post(renew_self))
            .route(&format!("/v1/{mount}/keys"), get(list_keys))
            .route(
                &format!("/v1/{mount}/keys/{{name}}"),
                get(read_key).post(create_key),
            )
            .route(
                &format!("/v1/{mount}/sign/{{name}}"),
                axum::routing::post(sign),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(HarnessError::io("binding the fake transit server"))?;
        let port = listener
            .local_addr()
            .map_err(HarnessError::io("fake transit address"))?
            .port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeTransit {
            address: format!("http://127.0.0.1:{port}"),
            token: token.to_owned(),
            mount,
            inner,
            server,
        })
    }

    /// A new key `name` of `curve` (Ed25519 or P-256); its public key.
    pub fn add_key(&self, name: &str, curve: Curve) -> Result<PublicKey, HarnessError> {
        let key = make_key(curve)?;
        let public_key = key.public_key.clone();
        self.lock_keys().insert(name.to_owned(), key);
        Ok(public_key)
    }

    /// Delete key `name` (signing with it is then Vault's 400 "signing key not found").
    pub fn remove_key(&self, name: &str) {
        self.lock_keys().remove(name);
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, FakeKey>> {
        self.inner
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hold every answer this long.
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.inner.delay) = delay;
    }

    /// Answer every request with `failing` (`None`: answer normally again).
    pub fn set_failing(&self, failing: Option<Failing>) {
        *lock(&self.inner.failing) = failing;
    }

    /// Answer only the next `count` requests with `failing`.
    pub fn fail_next(&self, count: u64, failing: Failing) {
        *lock(&self.inner.fail_next) = (count, Some(failing));
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Signatures made so far.
    pub fn signs(&self) -> u64 {
        self.inner.signs.load(Ordering::SeqCst)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Delay, count, fail and check the token: the answer to give instead, if any.
async fn gate(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    inner.requests.fetch_add(1, Ordering::SeqCst);
    let delay = *lock(&inner.delay);
    if !delay.is_zero() {
        super::wait(delay).await;
    }
    {
        let mut next = lock(&inner.fail_next);
        if next.0 > 0 {
            next.0 -= 1;
            if let Some(failing) = next.1 {
                return Some(failing.answer());
            }
        }
    }
    if let Some(failing) = *lock(&inner.failing) {
        return Some(failing.answer());
    }
    let token = headers.get("x-vault-token").and_then(|v| v.to_str().ok());
    if token != Some(inner.token.as_str()) {
        return Some(errors(StatusCode::FORBIDDEN, "permission denied"));
    }
    None
}

async fn lookup_self(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if let Some(r) = gate(&inner, &headers).await {
        return r;
    }
    data(
        json!({"id": "REDACTED", "ttl": 0, "renewable": false, "policies": ["signer"],
                "type": "service", "display_name": "token"}),
    )
}

async fn renew_self(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if let Some(r) = gate(&inner, &headers).await {
        return r;
    }
    errors(StatusCode::BAD_REQUEST, "lease is not renewable")
}

async fn list_keys(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(r) = gate(&inner, &headers).await {
        return r;
    }
    if query.get("list").map(String::as_str) != Some("true") {
        return errors(
            StatusCode::METHOD_NOT_ALLOWED,
            "1 error occurred: unsupported operation",
        );
    }
    let names: Vec<String> = lock(&inner.keys).keys().cloned().collect();
    if names.is_empty() {
        return (StatusCode::NOT_FOUND, Json(json!({"errors": []}))).into_response();
    }
    data(json!({"keys": names}))
}

async fn read_key(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Some(r) = gate(&inner, &headers).await {
        return r;
    }
    match lock(&inner.keys).get(&name) {
        Some(key) => data(key.describe(&name)),
        None => (StatusCode::NOT_FOUND, Json(json!({"errors": []}))).into_response(),
    }
}

async fn create_key(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = gate(&inner, &headers).await {
        return r;
    }
    let curve = match body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("aes256-gcm96")
    {
        "ed25519" => Curve::Ed25519,
        "ecdsa-p256" => Curve::P256,
        other => {
            return errors(
                StatusCode::BAD_REQUEST,
                &format!("unknown key type: {other} (this fake makes ed25519 and ecdsa-p256)"),
            )
        }
    };
    let mut keys = lock(&inner.keys);
    if !keys.contains_key(&name) {
        match make_key(curve) {
            Ok(key) => {
                keys.insert(name.clone(), key);
            }
            Err(e) => return errors(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    }
    match keys.get(&name) {
        Some(key) => data(key.describe(&name)),
        None => errors(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

async fn sign(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = gate(&inner, &headers).await {
        return r;
    }
    let keys = lock(&inner.keys);
    let Some(key) = keys.get(&name) else {
        return errors(StatusCode::BAD_REQUEST, "signing key not found");
    };
    let Some(input) = body
        .get("input")
        .and_then(Value::as_str)
        .and_then(|b| STANDARD.decode(b).ok())
    else {
        return errors(StatusCode::BAD_REQUEST, "unable to decode input as base64");
    };
    if let Some(version) = body.get("key_version").and_then(Value::as_u64) {
        if version != 1 {
            return errors(
                StatusCode::BAD_REQUEST,
                "requested version for signing does not exist",
            );
        }
    }
    let prehashed = body.get("prehashed").and_then(Value::as_bool) == Some(true);
    let jws = body.get("marshaling_algorithm").and_then(Value::as_str) == Some("jws");
    if key.curve == Curve::P256 && (!prehashed || input.len() != 32) {
        // Without `prehashed` Vault would hash the input with SHA-256 first: not Tezos's
        // signature. The fake refuses rather than sign something else.
        return errors(
            StatusCode::BAD_REQUEST,
            "this fake signs P-256 only prehashed 32-byte input",
        );
    }
    match key.sign(&input, jws) {
        Ok(signature) => {
            inner.signs.fetch_add(1, Ordering::SeqCst);
            data(json!({"signature": format!("vault:v1:{signature}"), "key_version": 1}))
        }
        Err(e) => errors(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}
