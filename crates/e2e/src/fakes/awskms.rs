//! A fake AWS KMS: the JSON 1.1 API subset the `awskms` driver uses (`X-Amz-Target:
//! TrentService.ListKeys`, `DescribeKey`, `GetPublicKey`, `Sign`, and `CreateKey` of the two
//! signing specs), in process on a loopback
//! port, for tests and the benchmark that need what moto cannot give: a per-call delay,
//! throttling, server errors, access denied, and an outage with the keys kept.
//!
//! What it reproduces of KMS (API reference): paginated ListKeys (`Limit`, `Marker`,
//! `Truncated`, `NextMarker`); key ids, ARNs and key metadata as KMS writes them; the SPKI DER
//! public key; Sign with `ECDSA_SHA_256` over a 32-byte `DIGEST` (or `RAW`, hashed with
//! SHA-256) with real OpenSSL keys, answering DER signatures (not low-S normalised, as KMS);
//! errors as `{"__type": …, "message": …}` with KMS's statuses (`NotFoundException`,
//! `DisabledException`, `ValidationException`, `InvalidKeyUsageException`,
//! `AccessDeniedException` 400; `ThrottlingException` 400; `KMSInternalException` 500).
//! It does not check SigV4 signatures (any credentials pass).

use crate::tcp_gate::TcpGate;
use crate::HarnessError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::Private;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tezos_crypto::{Curve, PublicKey};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// A failure the fake answers with instead of doing the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 `ThrottlingException` ("Rate exceeded"), as KMS answers over its request quota.
    Throttling,
    /// 500 `KMSInternalException`.
    Internal,
    /// 503 with KMS's `DependencyTimeoutException`.
    DependencyTimeout,
    /// 400 `AccessDeniedException` (an IAM policy without the action).
    AccessDenied,
}

impl Fault {
    fn answer(self, target: &str) -> Response {
        let action = target.strip_prefix("TrentService.").unwrap_or(target);
        match self {
            Fault::Throttling => error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded",
            ),
            Fault::Internal => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "KMSInternalException",
                "The request was rejected because an internal exception occurred.",
            ),
            Fault::DependencyTimeout => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "DependencyTimeoutException",
                "The system timed out while trying to fulfill the request.",
            ),
            Fault::AccessDenied => error(
                StatusCode::BAD_REQUEST,
                "AccessDeniedException",
                &format!(
                    "User: arn:aws:iam::{ACCOUNT}:user/signatory is not authorized to perform: \
                     kms:{action} because no identity-based policy allows the kms:{action} action"
                ),
            ),
        }
    }
}

struct FakeKey {
    id: String,
    spec: &'static str,
    usage: &'static str,
    enabled: bool,
    /// `None` for a symmetric key.
    secret: Option<EcKey<Private>>,
}

impl FakeKey {
    fn arn(&self) -> String {
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{}", self.id)
    }

    fn metadata(&self) -> Value {
        let mut meta = json!({
            "AWSAccountId": ACCOUNT,
            "KeyId": self.id,
            "Arn": self.arn(),
            "CreationDate": 1.7e9,
            "Enabled": self.enabled,
            "Description": "",
            "KeyUsage": self.usage,
            "KeyState": if self.enabled { "Enabled" } else { "Disabled" },
            "Origin": "AWS_KMS",
            "KeyManager": "CUSTOMER",
            "CustomerMasterKeySpec": self.spec,
            "KeySpec": self.spec,
            "MultiRegion": false,
        });
        if let Some(fields) = meta.as_object_mut() {
            if self.secret.is_some() {
                fields.insert("SigningAlgorithms".into(), json!(["ECDSA_SHA_256"]));
            } else {
                fields.insert("EncryptionAlgorithms".into(), json!(["SYMMETRIC_DEFAULT"]));
            }
        }
        meta
    }
}

#[derive(Default)]
struct Shared {
    keys: Vec<FakeKey>,
    delay: Duration,
    /// Faults for the next requests (of one action, or any), first first.
    next_faults: VecDeque<(Option<String>, Fault)>,
    /// The access key ids of the requests' SigV4 `Authorization` headers.
    access_key_ids: BTreeSet<String>,
    /// The most keys one ListKeys page holds (KMS may answer fewer than `Limit`).
    page_cap: Option<usize>,
    /// Requests received, by target (`TrentService.Sign`), faulted ones included.
    requests: BTreeMap<String, usize>,
}

/// The fake KMS. Dropping it stops it.
pub struct FakeKms {
    shared: Arc<Mutex<Shared>>,
    gate: TcpGate,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKms")
            .field("addr", &self.gate.addr())
            .finish_non_exhaustive()
    }
}

impl Drop for FakeKms {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [("content-type", CONTENT_TYPE)],
        json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn random_key_id() -> String {
    let mut b = [0u8; 16];
    // OpenSSL's CSPRNG; a failure leaves zeros, which only makes ids less unique in a test.
    let _ = openssl::rand::rand_bytes(&mut b);
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    )
}

impl FakeKms {
    /// Start on a loopback port, with no keys.
    pub async fn start() -> Result<FakeKms, HarnessError> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(HarnessError::io("binding the fake KMS"))?;
        let inner = listener
            .local_addr()
            .map_err(HarnessError::io("reading the fake KMS's port"))?;
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let gate = TcpGate::open(inner).await?;
        Ok(FakeKms {
            shared,
            gate,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`, the driver's `endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.gate.addr())
    }

    pub fn addr(&self) -> SocketAddr {
        self.gate.addr()
    }

    /// A new enabled signing key of `curve` (secp256k1 or P-256): its key id and Tezos key.
    pub fn add_key(&self, curve: Curve) -> Result<(String, PublicKey), HarnessError> {
        let (nid, spec) = match curve {
            Curve::Secp256k1 => (Nid::SECP256K1, "ECC_SECG_P256K1"),
            Curve::P256 => (Nid::X9_62_PRIME256V1, "ECC_NIST_P256"),
            other => {
                return Err(HarnessError::Http {
                    addr: self.endpoint(),
                    detail: format!("the fake KMS has no {other} keys"),
                })
            }
        };
        let ssl = |e: openssl::error::ErrorStack| HarnessError::Http {
            addr: "fake KMS".to_owned(),
            detail: e.to_string(),
        };
        let group = EcGroup::from_curve_name(nid).map_err(ssl)?;
        let secret = EcKey::generate(&group).map_err(ssl)?;
        let der = secret.public_key_to_der().map_err(ssl)?;
        let public = PublicKey::from_spki_der(&der).map_err(|e| HarnessError::Http {
            addr: "fake KMS".to_owned(),
            detail: e.to_string(),
        })?;
        let id = random_key_id();
        lock(&self.shared).keys.push(FakeKey {
            id: id.clone(),
            spec,
            usage: "SIGN_VERIFY",
            enabled: true,
            secret: Some(secret),
        });
        Ok((id, public))
    }

    /// A symmetric encryption key (listed, never usable for signing).
    pub fn add_symmetric_key(&self) -> String {
        let id = random_key_id();
        lock(&self.shared).keys.push(FakeKey {
            id: id.clone(),
            spec: "SYMMETRIC_DEFAULT",
            usage: "ENCRYPT_DECRYPT",
            enabled: true,
            secret: None,
        });
        id
    }

    /// Disable (or enable) key `id`.
    pub fn set_enabled(&self, id: &str, enabled: bool) {
        for key in lock(&self.shared).keys.iter_mut().filter(|k| k.id == id) {
            key.enabled = enabled;
        }
    }

    /// Answer at most `keys` keys per ListKeys page, as KMS may.
    pub fn set_page_cap(&self, keys: usize) {
        lock(&self.shared).page_cap = Some(keys);
    }

    /// How long each request waits before it is answered.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.shared).delay = delay;
    }

    /// Answer the next `count` requests with `fault`.
    pub fn fail_next(&self, count: usize, fault: Fault) {
        let mut shared = lock(&self.shared);
        for _ in 0..count {
            shared.next_faults.push_back((None, fault));
        }
    }

    /// Answer the next `count` requests for `action` (`DescribeKey`, …) with `fault`.
    pub fn fail_next_of(&self, action: &str, count: usize, fault: Fault) {
        let mut shared = lock(&self.shared);
        for _ in 0..count {
            shared
                .next_faults
                .push_back((Some(format!("TrentService.{action}")), fault));
        }
    }

    /// The access key ids requests were signed with (from `Credential=<id>/…`).
    pub fn access_key_ids(&self) -> BTreeSet<String> {
        lock(&self.shared).access_key_ids.clone()
    }

    /// Requests received for `action` (`Sign`, `ListKeys`, …), faulted ones included.
    pub fn requests(&self, action: &str) -> usize {
        lock(&self.shared)
            .requests
            .get(&format!("TrentService.{action}"))
            .copied()
            .unwrap_or(0)
    }

    /// Refuse connections and cut open ones (the keys stay).
    pub async fn down(&self) {
        self.gate.close().await;
    }

    /// Listen again on the same port.
    pub async fn up(&self) -> Result<(), HarnessError> {
        self.gate.reopen().await
    }
}

async fn handle(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let credential = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned);
    let (delay, fault) = {
        let mut shared = lock(&shared);
        *shared.requests.entry(target.clone()).or_insert(0) += 1;
        shared.access_key_ids.extend(credential);
        let due = shared
            .next_faults
            .iter()
            .position(|(action, _)| action.as_ref().is_none_or(|a| *a == target));
        let fault = due
            .and_then(|i| shared.next_faults.remove(i))
            .map(|(_, fault)| fault);
        (shared.delay, fault)
    };
    if !delay.is_zero() {
        super::wait(delay).await;
    }
    if let Some(fault) = fault {
        return fault.answer(&target);
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "Start of structure or map found where not expected.",
        );
    };
    let mut shared = lock(&shared);
    match target.as_str() {
        "TrentService.ListKeys" => list_keys(&shared, &request),
        "TrentService.DescribeKey" => match find(&shared, &request) {
            Ok(key) => ok(json!({ "KeyMetadata": key.metadata() })),
            Err(e) => *e,
        },
        "TrentService.GetPublicKey" => get_public_key(&shared, &request),
        "TrentService.Sign" => sign(&shared, &request),
        "TrentService.CreateKey" => create_key(&mut shared, &request),
        _ => error(StatusCode::BAD_REQUEST, "UnknownOperationException", ""),
    }
}

/// The key a request names (by id or ARN), or KMS's NotFoundException.
fn find<'a>(shared: &'a Shared, request: &Value) -> Result<&'a FakeKey, Box<Response>> {
    let wanted = request
        .get("KeyId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    shared
        .keys
        .iter()
        .find(|k| k.id == wanted || k.arn() == wanted)
        .ok_or_else(|| {
            let arn = if wanted.starts_with("arn:") {
                wanted.to_owned()
            } else {
                format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{wanted}")
            };
            Box::new(error(
                StatusCode::BAD_REQUEST,
                "NotFoundException",
                &format!("Key '{arn}' does not exist"),
            ))
        })
}

fn list_keys(shared: &Shared, request: &Value) -> Response {
    let limit = request
        .get("Limit")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .clamp(1, 1000) as usize;
    let limit = shared.page_cap.map_or(limit, |cap| limit.min(cap.max(1)));
    let start = request
        .get("Marker")
        .and_then(Value::as_str)
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(0);
    let page: Vec<Value> = shared
        .keys
        .iter()
        .skip(start)
        .take(limit)
        .map(|k| json!({"KeyId": k.id, "KeyArn": k.arn()}))
        .collect();
    let next = start + page.len();
    let mut body = json!({ "Keys": page, "Truncated": next < shared.keys.len() });
    if let (true, Some(fields)) = (next < shared.keys.len(), body.as_object_mut()) {
        fields.insert("NextMarker".into(), json!(next.to_string()));
    }
    ok(body)
}

/// CreateKey of the two signing specs the fake has (others are refused as unsupported here,
/// not as KMS would).
fn create_key(shared: &mut Shared, request: &Value) -> Response {
    let spec = request.get("KeySpec").and_then(Value::as_str);
    let usage = request.get("KeyUsage").and_then(Value::as_str);
    let (nid, spec) = match (spec, usage) {
        (Some("ECC_SECG_P256K1"), Some("SIGN_VERIFY")) => (Nid::SECP256K1, "ECC_SECG_P256K1"),
        (Some("ECC_NIST_P256"), Some("SIGN_VERIFY")) => (Nid::X9_62_PRIME256V1, "ECC_NIST_P256"),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "the fake KMS creates only ECC_SECG_P256K1 and ECC_NIST_P256 SIGN_VERIFY keys",
            )
        }
    };
    let Ok(secret) = EcGroup::from_curve_name(nid).and_then(|group| EcKey::generate(&group)) else {
        return internal();
    };
    let key = FakeKey {
        id: random_key_id(),
        spec,
        usage: "SIGN_VERIFY",
        enabled: true,
        secret: Some(secret),
    };
    let answer = ok(json!({ "KeyMetadata": key.metadata() }));
    shared.keys.push(key);
    answer
}

fn disabled(key: &FakeKey) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "DisabledException",
        &format!("{} is disabled.", key.arn()),
    )
}

fn get_public_key(shared: &Shared, request: &Value) -> Response {
    let key = match find(shared, request) {
        Ok(key) => key,
        Err(e) => return *e,
    };
    if !key.enabled {
        return disabled(key);
    }
    let Some(secret) = &key.secret else {
        return error(
            StatusCode::BAD_REQUEST,
            "UnsupportedOperationException",
            &format!(
                "{} key usage is ENCRYPT_DECRYPT which is not valid for GetPublicKey.",
                key.arn()
            ),
        );
    };
    match secret.public_key_to_der() {
        Ok(der) => ok(json!({
            "KeyId": key.arn(),
            "PublicKey": openssl::base64::encode_block(&der),
            "CustomerMasterKeySpec": key.spec,
            "KeySpec": key.spec,
            "KeyUsage": key.usage,
            "SigningAlgorithms": ["ECDSA_SHA_256"],
        })),
        Err(_) => internal(),
    }
}

fn internal() -> Response {
    Fault::Internal.answer("")
}

fn sign(shared: &Shared, request: &Value) -> Response {
    let key = match find(shared, request) {
        Ok(key) => key,
        Err(e) => return *e,
    };
    if !key.enabled {
        return disabled(key);
    }
    let Some(secret) = &key.secret else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidKeyUsageException",
            &format!(
                "{} key usage is ENCRYPT_DECRYPT which is not valid for signing.",
                key.arn()
            ),
        );
    };
    let algorithm = request
        .get("SigningAlgorithm")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if algorithm != "ECDSA_SHA_256" {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidKeyUsageException",
            &format!(
                "Algorithm {algorithm} is incompatible with key spec {}.",
                key.spec
            ),
        );
    }
    let Some(message) = request
        .get("Message")
        .and_then(Value::as_str)
        .and_then(|b64| openssl::base64::decode_block(b64).ok())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "1 validation error detected: Value at 'message' failed to satisfy constraint: \
             Member must not be null",
        );
    };
    let digest = match request.get("MessageType").and_then(Value::as_str) {
        Some("DIGEST") => {
            if message.len() != 32 {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    "Digest is invalid length for algorithm ECDSA_SHA_256.",
                );
            }
            message
        }
        None | Some("RAW") => openssl::sha::sha256(&message).to_vec(),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                &format!(
                    "1 validation error detected: Value '{other}' at 'messageType' failed to \
                     satisfy constraint: Member must satisfy enum value set: [EXTERNAL_MU, \
                     DIGEST, RAW]"
                ),
            )
        }
    };
    match EcdsaSig::sign(&digest, secret).and_then(|sig| sig.to_der()) {
        Ok(der) => ok(json!({
            "KeyId": key.arn(),
            "Signature": openssl::base64::encode_block(&der),
            "SigningAlgorithm": algorithm,
        })),
        Err(_) => internal(),
    }
}
