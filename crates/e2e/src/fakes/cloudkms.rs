//! A fake of the Google Cloud KMS REST API subset the `cloudkms` driver uses, with the
//! OAuth2 token endpoint and the GCE metadata server's token route, served by axum on
//! 127.0.0.1. No emulator of Cloud KMS exists; this follows the documented API:
//!
//! - `GET /v1/{keyRing}/cryptoKeys`, `GET /v1/{cryptoKey}/cryptoKeyVersions` (paginated
//!   with `pageSize` / `pageToken` / `nextPageToken`; pages here hold at most
//!   [`FakeCloudKms::set_max_page_size`] items so that clients must follow them);
//! - `GET /v1/{version}` and `GET /v1/{version}/publicKey` (PEM SPKI with `pemCrc32c`);
//! - `POST /v1/{version}:asymmetricSign` with `digest.sha256` (ECDSA: a 32-byte digest,
//!   DER signature) or `data` (EC_SIGN_ED25519), checking `digestCrc32c` / `dataCrc32c`
//!   and answering `verified…Crc32c` and `signatureCrc32c`;
//! - `POST /v1/{keyRing}/cryptoKeys?cryptoKeyId=` (ASYMMETRIC_SIGN, version 1 made
//!   PENDING_GENERATION then ENABLED, unless `skipInitialVersionCreation`);
//! - `POST /v1/{keyRing}/importJobs?importJobId=` and `GET /v1/{importJob}`
//!   (`RSA_OAEP_3072_SHA256_AES_256`, PENDING_GENERATION then ACTIVE), and
//!   `POST /v1/{cryptoKey}/cryptoKeyVersions:import`, which really unwraps the key
//!   (RSA-OAEP/SHA-256 then AES-KWP, RFC 5649) and parses its PKCS#8;
//! - `POST /token`: the JWT-bearer grant (RS256 assertion verified against the service
//!   account's public key; `iss`, `aud`, `scope`, `iat`, `exp` checked) and the
//!   refresh-token grant, with RFC 6749 error bodies;
//! - `GET /computeMetadata/v1/instance/service-accounts/default/token` (needs
//!   `Metadata-Flavor: Google`).
//!
//! Errors have Google's shape `{"error": {"code", "message", "status"}}`; a KMS request
//! without a valid, unexpired bearer token gets 401 UNAUTHENTICATED. A per-request delay,
//! a down / 503 / 429 switch and a queue of failures to answer next serve the outage,
//! retry and benchmark tests.
#![allow(clippy::indexing_slicing)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SCOPE: &str = "https://www.googleapis.com/auth/cloudkms";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How the fake answers, for outage and retry tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    /// New connections are closed at once; requests on open ones get 503.
    Down,
    /// Every request: 503 UNAVAILABLE.
    Unavailable,
    /// Every request: 429 RESOURCE_EXHAUSTED.
    Throttled,
}

/// What the fake has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tokens issued by the token endpoint (both grants).
    pub token_grants: usize,
    /// Tokens issued by the metadata route.
    pub metadata_tokens: usize,
    /// Requests to `/v1/…` (answered or failed).
    pub kms_requests: usize,
    /// asymmetricSign requests (answered or failed).
    pub sign_requests: usize,
    /// KMS requests refused with 401.
    pub unauthenticated: usize,
    /// KMS requests answered with a queued or switched failure.
    pub injected_failures: usize,
}

struct FakeVersion {
    state: String,
    algorithm: String,
    protection: String,
    key: Option<PKey<Private>>,
    /// GETs left before a PENDING_… state becomes ENABLED.
    polls_left: u32,
}

struct FakeKey {
    purpose: String,
    algorithm: String,
    protection: String,
    versions: Vec<FakeVersion>,
}

struct FakeJob {
    state: String,
    polls_left: u32,
    key: PKey<Private>,
    protection: String,
}

struct Data {
    keys: BTreeMap<String, FakeKey>,
    jobs: BTreeMap<String, FakeJob>,
    tokens: BTreeMap<String, Instant>,
    token_lifetime: u64,
    delay: Duration,
    mode: Mode,
    fail_next: VecDeque<u16>,
    deny_signing: bool,
    corrupt_signatures: usize,
    max_page_size: usize,
    stats: Stats,
    next_token: u64,
}

struct Shared {
    base_url: String,
    ring: String,
    account_email: String,
    account_key: PKey<Private>,
    user: (String, String, String),
    data: Mutex<Data>,
}

impl Shared {
    fn data(&self) -> MutexGuard<'_, Data> {
        match self.data.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A running fake; stopped on drop.
pub struct FakeCloudKms {
    pub addr: SocketAddr,
    pub project: String,
    pub location: String,
    pub key_ring: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeCloudKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCloudKms")
            .field("addr", &self.addr)
            .field("key_ring", &self.shared.ring)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeCloudKms {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections, dropping them while the fake is down.
struct GateListener {
    inner: tokio::net::TcpListener,
    shared: Arc<Shared>,
}

impl axum::serve::Listener for GateListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if self.shared.data().mode == Mode::Down {
                        drop(stream);
                        continue;
                    }
                    return (stream, addr);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// CRC32C, table-driven (a second implementation beside the driver's bitwise one).
pub fn crc32c(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (i, slot) in table.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        table
    });
    let mut crc = !0u32;
    for &b in bytes {
        crc = table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// A fresh private key for a Cloud KMS algorithm.
fn generate_key(algorithm: &str) -> Option<PKey<Private>> {
    let ec = |nid| {
        let group = EcGroup::from_curve_name(nid).ok()?;
        PKey::from_ec_key(EcKey::generate(&group).ok()?).ok()
    };
    match algorithm {
        "EC_SIGN_P256_SHA256" => ec(Nid::X9_62_PRIME256V1),
        "EC_SIGN_SECP256K1_SHA256" => ec(Nid::SECP256K1),
        "EC_SIGN_ED25519" => PKey::generate_ed25519().ok(),
        "RSA_SIGN_PKCS1_2048_SHA256" | "RSA_SIGN_PSS_2048_SHA256" => {
            PKey::from_rsa(Rsa::generate(2048).ok()?).ok()
        }
        "EC_SIGN_P384_SHA384" => ec(Nid::SECP384R1),
        _ => None,
    }
}

/// Whether `key` is of `algorithm` (an import must match its declared algorithm).
fn key_matches(key: &PKey<Private>, algorithm: &str) -> bool {
    let curve = |nid| {
        key.ec_key()
            .ok()
            .and_then(|ec| ec.group().curve_name())
            .is_some_and(|n| n == nid)
    };
    match algorithm {
        "EC_SIGN_P256_SHA256" => curve(Nid::X9_62_PRIME256V1),
        "EC_SIGN_SECP256K1_SHA256" => curve(Nid::SECP256K1),
        "EC_SIGN_ED25519" => key.id() == Id::ED25519,
        _ => false,
    }
}

fn google_error(code: u16, status: &str, message: &str) -> Response {
    let http = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        http,
        axum::Json(json!({"error": {"code": code, "message": message, "status": status}})),
    )
        .into_response()
}

fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

fn oauth_error(code: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

impl FakeCloudKms {
    /// Start on 127.0.0.1, port 0, with key ring `projects/signatory-test/locations/
    /// europe-north1/keyRings/tezos` and no keys.
    pub async fn start() -> std::io::Result<FakeCloudKms> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let account_key = Rsa::generate(2048)
            .and_then(PKey::from_rsa)
            .map_err(std::io::Error::other)?;
        let (project, location, key_ring) = ("signatory-test", "europe-north1", "tezos");
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            ring: format!("projects/{project}/locations/{location}/keyRings/{key_ring}"),
            account_email: format!("signer@{project}.iam.gserviceaccount.com"),
            account_key,
            user: (
                "fake-client.apps.googleusercontent.com".to_owned(),
                "fake-client-secret".to_owned(),
                "fake-refresh-token".to_owned(),
            ),
            data: Mutex::new(Data {
                keys: BTreeMap::new(),
                jobs: BTreeMap::new(),
                tokens: BTreeMap::new(),
                token_lifetime: 3600,
                delay: Duration::ZERO,
                mode: Mode::Up,
                fail_next: VecDeque::new(),
                deny_signing: false,
                corrupt_signatures: 0,
                max_page_size: 2,
                stats: Stats::default(),
                next_token: 0,
            }),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let gate = GateListener {
            inner: listener,
            shared: shared.clone(),
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(gate, app).await;
        });
        Ok(FakeCloudKms {
            addr,
            project: project.to_owned(),
            location: location.to_owned(),
            key_ring: key_ring.to_owned(),
            shared,
            task,
        })
    }

    /// The `endpoint` setting that reaches this fake.
    pub fn endpoint(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The token endpoint (`token_uri` of the credentials files below).
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.shared.base_url)
    }

    /// `GCE_METADATA_HOST` for the metadata route.
    pub fn metadata_host(&self) -> String {
        self.addr.to_string()
    }

    /// `projects/…/keyRings/…`.
    pub fn key_ring_name(&self) -> String {
        self.shared.ring.clone()
    }

    /// A service-account key file as Google issues it, whose `token_uri` is this fake.
    pub fn service_account_json(&self) -> String {
        let pem = self
            .shared
            .account_key
            .private_key_to_pem_pkcs8()
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .unwrap_or_default();
        json!({
            "type": "service_account",
            "project_id": self.project,
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": pem,
            "client_email": self.shared.account_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/signer",
            "universe_domain": "googleapis.com",
        })
        .to_string()
    }

    /// `gcloud auth application-default login`'s file, its token endpoint this fake.
    pub fn authorized_user_json(&self) -> String {
        let (id, secret, refresh) = &self.shared.user;
        json!({
            "type": "authorized_user",
            "client_id": id,
            "client_secret": secret,
            "refresh_token": refresh,
            "token_uri": self.token_uri(),
        })
        .to_string()
    }

    /// Add key `id` of `purpose` with one version per `(algorithm, state)`; returns the
    /// version names. Versions of an algorithm the fake can make get a real key.
    pub fn add_key(&self, id: &str, purpose: &str, versions: &[(&str, &str)]) -> Vec<String> {
        let mut data = self.shared.data();
        let algorithm = versions
            .first()
            .map(|v| v.0)
            .unwrap_or("EC_SIGN_P256_SHA256");
        let key = data.keys.entry(id.to_owned()).or_insert_with(|| FakeKey {
            purpose: purpose.to_owned(),
            algorithm: algorithm.to_owned(),
            protection: "HSM".to_owned(),
            versions: Vec::new(),
        });
        let mut names = Vec::new();
        for (algorithm, state) in versions {
            key.versions.push(FakeVersion {
                state: (*state).to_owned(),
                algorithm: (*algorithm).to_owned(),
                protection: "HSM".to_owned(),
                key: generate_key(algorithm),
                polls_left: 0,
            });
            names.push(format!(
                "{}/cryptoKeys/{id}/cryptoKeyVersions/{}",
                self.shared.ring,
                key.versions.len()
            ));
        }
        names
    }

    /// The SPKI DER public key of a version, if it has a key.
    pub fn public_key_der(&self, version: &str) -> Option<Vec<u8>> {
        let data = self.shared.data();
        let (key, n) = parse_version_name(&self.shared.ring, version)?;
        let v = data.keys.get(&key)?.versions.get(n.checked_sub(1)?)?;
        v.key.as_ref()?.public_key_to_der().ok()
    }

    pub fn set_delay(&self, delay: Duration) {
        self.shared.data().delay = delay;
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.data().mode = mode;
    }

    /// Answer the next `count` KMS requests with `status` (429, 503, 403, …).
    pub fn fail_next(&self, status: u16, count: usize) {
        let mut data = self.shared.data();
        for _ in 0..count {
            data.fail_next.push_back(status);
        }
    }

    /// The `expires_in` of tokens issued from now on.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.shared.data().token_lifetime = seconds;
    }

    /// asymmetricSign answers 403 PERMISSION_DENIED (the account lost useToSign).
    pub fn deny_signing(&self, deny: bool) {
        self.shared.data().deny_signing = deny;
    }

    /// The next `count` signatures reach the client altered, their `signatureCrc32c` that
    /// of the signature made (corruption in transit, which the checksum reveals).
    pub fn corrupt_next_signatures(&self, count: usize) {
        self.shared.data().corrupt_signatures = count;
    }

    /// Forget every issued token (revoked, or expired early): the next KMS call gets 401.
    pub fn revoke_tokens(&self) {
        self.shared.data().tokens.clear();
    }

    pub fn set_max_page_size(&self, size: usize) {
        self.shared.data().max_page_size = size.max(1);
    }

    pub fn stats(&self) -> Stats {
        self.shared.data().stats.clone()
    }

    /// Every version name of every key, in order.
    pub fn version_names(&self) -> Vec<String> {
        let data = self.shared.data();
        data.keys
            .iter()
            .flat_map(|(id, key)| {
                (1..=key.versions.len()).map(move |n| {
                    format!("{}/cryptoKeys/{id}/cryptoKeyVersions/{n}", self.shared.ring)
                })
            })
            .collect()
    }
}

fn parse_version_name(ring: &str, name: &str) -> Option<(String, usize)> {
    let rest = name.strip_prefix(ring)?.strip_prefix("/cryptoKeys/")?;
    let (key, n) = rest.split_once("/cryptoKeyVersions/")?;
    Some((key.to_owned(), n.parse().ok()?))
}

fn query_map(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .map(|q| {
            url_pairs(q.as_bytes())
                .into_iter()
                .collect::<BTreeMap<String, String>>()
        })
        .unwrap_or_default()
}

/// `application/x-www-form-urlencoded` pairs.
fn url_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let s = s.replace('+', " ");
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                if let Ok(v) = u8::from_str_radix(hex, 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(bytes)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (delay, mode) = {
        let data = shared.data();
        (data.delay, data.mode)
    };
    if !delay.is_zero() {
        super::wait(delay).await;
    }
    match mode {
        Mode::Up => {}
        Mode::Down => {
            let mut r = google_error(503, "UNAVAILABLE", "The service is currently unavailable.");
            r.headers_mut()
                .insert("connection", HeaderValue::from_static("close"));
            shared.data().stats.injected_failures += 1;
            return r;
        }
        Mode::Unavailable => {
            shared.data().stats.injected_failures += 1;
            return google_error(503, "UNAVAILABLE", "The service is currently unavailable.");
        }
        Mode::Throttled => {
            shared.data().stats.injected_failures += 1;
            return google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Cryptographic requests'.",
            );
        }
    }
    let path = uri.path().to_owned();
    if path == "/token" && method == Method::POST {
        return token(&shared, &body);
    }
    if path == "/computeMetadata/v1/instance/service-accounts/default/token" {
        return metadata_token(&shared, &headers);
    }
    let Some(resource) = path.strip_prefix("/v1/") else {
        return google_error(404, "NOT_FOUND", "The requested URL was not found.");
    };
    {
        let mut data = shared.data();
        data.stats.kms_requests += 1;
        if resource.ends_with(":asymmetricSign") {
            data.stats.sign_requests += 1;
        }
        // The bearer token.
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let now = Instant::now();
        let valid = bearer
            .as_ref()
            .and_then(|t| data.tokens.get(t))
            .is_some_and(|expiry| *expiry > now);
        if !valid {
            data.stats.unauthenticated += 1;
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access \
                 token, login cookie or other valid authentication credential.",
            );
        }
        if let Some(status) = data.fail_next.pop_front() {
            data.stats.injected_failures += 1;
            return google_error(status, status_name(status), "Injected failure.");
        }
    }
    kms(&shared, &method, resource, &uri, &body)
}

fn token(shared: &Shared, body: &[u8]) -> Response {
    let form: BTreeMap<String, String> = url_pairs(body).into_iter().collect();
    match form.get("grant_type").map(String::as_str) {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let Some(assertion) = form.get("assertion") else {
                return oauth_error("invalid_request", "Missing required parameter: assertion");
            };
            if let Err(why) = check_assertion(shared, assertion) {
                return oauth_error("invalid_grant", why);
            }
        }
        Some("refresh_token") => {
            let (id, secret, refresh) = &shared.user;
            if form.get("client_id") != Some(id) || form.get("client_secret") != Some(secret) {
                return oauth_error("invalid_client", "The OAuth client was not found.");
            }
            if form.get("refresh_token") != Some(refresh) {
                return oauth_error("invalid_grant", "Bad Request");
            }
        }
        _ => return oauth_error("unsupported_grant_type", "Invalid grant_type"),
    }
    let mut data = shared.data();
    data.stats.token_grants += 1;
    issue(&mut data)
}

fn issue(data: &mut Data) -> Response {
    data.next_token += 1;
    let mut random = [0u8; 16];
    let _ = openssl::rand::rand_bytes(&mut random);
    let token = format!("ya29.fake-{}-{}", data.next_token, hex::encode(random));
    let lifetime = data.token_lifetime;
    data.tokens.insert(
        token.clone(),
        Instant::now() + Duration::from_secs(lifetime),
    );
    axum::Json(json!({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}))
        .into_response()
}

/// The checks Google's token endpoint makes of a service account's assertion.
fn check_assertion(shared: &Shared, jwt: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe.",
        );
    }
    let header: Value = B64URL
        .decode(parts[0])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("Invalid JWT header.")?;
    if header["alg"] != "RS256" {
        return Err("Invalid JWT header: alg must be RS256.");
    }
    let signature = B64URL
        .decode(parts[2])
        .map_err(|_| "Invalid JWT Signature.")?;
    let verified = (|| -> Result<bool, openssl::error::ErrorStack> {
        let mut verifier =
            openssl::sign::Verifier::new(MessageDigest::sha256(), &shared.account_key)?;
        verifier.update(format!("{}.{}", parts[0], parts[1]).as_bytes())?;
        verifier.verify(&signature)
    })()
    .unwrap_or(false);
    if !verified {
        return Err("Invalid JWT Signature.");
    }
    let claims: Value = B64URL
        .decode(parts[1])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("Invalid JWT claims.")?;
    if claims["iss"] != shared.account_email.as_str() {
        return Err("Invalid JWT: iss is not the service account.");
    }
    if claims["aud"] != format!("{}/token", shared.base_url).as_str() {
        return Err("Invalid JWT: Failed audience check.");
    }
    let scopes = claims["scope"].as_str().unwrap_or("");
    if !scopes.split(' ').any(|s| s == SCOPE) {
        return Err("Invalid OAuth scope or ID token audience provided.");
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
        return Err("Invalid JWT: iat and exp are required.");
    };
    let now = unix_now();
    if iat > now + 60 || exp <= now || exp < iat || exp - iat > 3600 {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.");
    }
    Ok(())
}

fn metadata_token(shared: &Shared, headers: &HeaderMap) -> Response {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing required header: Metadata-Flavor\n",
        )
            .into_response();
    }
    let mut data = shared.data();
    data.stats.metadata_tokens += 1;
    issue(&mut data)
}

fn version_json(name: &str, v: &FakeVersion) -> Value {
    json!({
        "name": name,
        "state": v.state,
        "algorithm": v.algorithm,
        "protectionLevel": v.protection,
        "createTime": "2026-01-01T00:00:00Z",
    })
}

fn page<T: Clone>(items: &[T], uri: &Uri, max: usize) -> (Vec<T>, Option<String>) {
    let q = query_map(uri);
    let size = q
        .get("pageSize")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(max)
        .min(max);
    let start = q
        .get("pageToken")
        .and_then(|t| t.strip_prefix("offset-"))
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let end = (start + size).min(items.len());
    let slice = items.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    let next = (end < items.len()).then(|| format!("offset-{end}"));
    (slice, next)
}

fn kms(shared: &Shared, method: &Method, resource: &str, uri: &Uri, body: &[u8]) -> Response {
    let ring = shared.ring.as_str();
    let not_found = |what: &str| google_error(404, "NOT_FOUND", &format!("{what} not found."));
    let (name, verb) = match resource.rsplit_once(':') {
        Some((n, v)) if !v.contains('/') => (n, Some(v)),
        _ => (resource, None),
    };
    let Some(rest) = name.strip_prefix(ring) else {
        return google_error(
            403,
            "PERMISSION_DENIED",
            &format!("Permission 'cloudkms.cryptoKeys.list' denied on resource '{name}' (or it may not exist)."),
        );
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let request: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
            }
        }
    };
    let mut data = shared.data();
    let max_page = data.max_page_size;
    match (method.clone(), segments.as_slice(), verb) {
        (Method::GET, ["cryptoKeys"], None) => {
            let all: Vec<Value> = data
                .keys
                .iter()
                .map(|(id, k)| {
                    json!({
                        "name": format!("{ring}/cryptoKeys/{id}"),
                        "purpose": k.purpose,
                        "versionTemplate": {"algorithm": k.algorithm, "protectionLevel": k.protection},
                        "createTime": "2026-01-01T00:00:00Z",
                    })
                })
                .collect();
            let (items, next) = page(&all, uri, max_page);
            let mut answer = json!({"cryptoKeys": items, "totalSize": all.len()});
            if let Some(next) = next {
                answer["nextPageToken"] = json!(next);
            }
            axum::Json(answer).into_response()
        }
        (Method::POST, ["cryptoKeys"], None) => {
            let q = query_map(uri);
            let Some(id) = q.get("cryptoKeyId").filter(|id| {
                !id.is_empty()
                    && id.len() <= 63
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }) else {
                return google_error(400, "INVALID_ARGUMENT", "Invalid value for crypto_key_id.");
            };
            if data.keys.contains_key(id) {
                return google_error(
                    409,
                    "ALREADY_EXISTS",
                    &format!("CryptoKey {ring}/cryptoKeys/{id} already exists."),
                );
            }
            if request["purpose"] != "ASYMMETRIC_SIGN" {
                return google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "The fake makes ASYMMETRIC_SIGN keys only.",
                );
            }
            let algorithm = request["versionTemplate"]["algorithm"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let protection = request["versionTemplate"]["protectionLevel"]
                .as_str()
                .unwrap_or("SOFTWARE")
                .to_owned();
            if generate_key(&algorithm).is_none() {
                return google_error(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Algorithm {algorithm} is not valid for ASYMMETRIC_SIGN."),
                );
            }
            if algorithm == "EC_SIGN_SECP256K1_SHA256" && protection != "HSM" {
                return google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "EC_SIGN_SECP256K1_SHA256 requires protection level HSM.",
                );
            }
            let skip = q
                .get("skipInitialVersionCreation")
                .is_some_and(|v| v == "true");
            let mut key = FakeKey {
                purpose: "ASYMMETRIC_SIGN".to_owned(),
                algorithm: algorithm.clone(),
                protection: protection.clone(),
                versions: Vec::new(),
            };
            if !skip {
                key.versions.push(FakeVersion {
                    state: "PENDING_GENERATION".to_owned(),
                    algorithm: algorithm.clone(),
                    protection: protection.clone(),
                    key: generate_key(&algorithm),
                    polls_left: 1,
                });
            }
            data.keys.insert(id.clone(), key);
            axum::Json(json!({
                "name": format!("{ring}/cryptoKeys/{id}"),
                "purpose": "ASYMMETRIC_SIGN",
                "versionTemplate": {"algorithm": algorithm, "protectionLevel": protection},
                "createTime": "2026-01-01T00:00:00Z",
            }))
            .into_response()
        }
        (Method::GET, ["cryptoKeys", id, "cryptoKeyVersions"], None) => {
            let Some(key) = data.keys.get(*id) else {
                return not_found("CryptoKey");
            };
            let all: Vec<Value> = key
                .versions
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    version_json(
                        &format!("{ring}/cryptoKeys/{id}/cryptoKeyVersions/{}", i + 1),
                        v,
                    )
                })
                .collect();
            let (items, next) = page(&all, uri, max_page);
            let mut answer = json!({"cryptoKeyVersions": items, "totalSize": all.len()});
            if let Some(next) = next {
                answer["nextPageToken"] = json!(next);
            }
            axum::Json(answer).into_response()
        }
        (Method::GET, ["cryptoKeys", id, "cryptoKeyVersions", n], None) => {
            let full = format!("{ring}/cryptoKeys/{id}/cryptoKeyVersions/{n}");
            let Some(v) = version_mut(&mut data, id, n) else {
                return not_found("CryptoKeyVersion");
            };
            if v.state.starts_with("PENDING_") {
                if v.polls_left == 0 {
                    v.state = "ENABLED".to_owned();
                } else {
                    v.polls_left -= 1;
                }
            }
            axum::Json(version_json(&full, v)).into_response()
        }
        (Method::GET, ["cryptoKeys", id, "cryptoKeyVersions", n, "publicKey"], None) => {
            let full = format!("{ring}/cryptoKeys/{id}/cryptoKeyVersions/{n}");
            let Some(v) = version_mut(&mut data, id, n) else {
                return not_found("CryptoKeyVersion");
            };
            if v.state != "ENABLED" {
                return google_error(
                    400,
                    "FAILED_PRECONDITION",
                    &format!("{full} is not enabled, current state is: {}.", v.state),
                );
            }
            let Some(pem) = v.key.as_ref().and_then(|k| k.public_key_to_pem().ok()) else {
                return google_error(400, "FAILED_PRECONDITION", "No public key.");
            };
            let pem = String::from_utf8_lossy(&pem).into_owned();
            axum::Json(json!({
                "pem": pem,
                "algorithm": v.algorithm,
                "pemCrc32c": crc32c(pem.as_bytes()).to_string(),
                "name": full,
                "protectionLevel": v.protection,
            }))
            .into_response()
        }
        (Method::POST, ["cryptoKeys", id, "cryptoKeyVersions", n], Some("asymmetricSign")) => {
            let full = format!("{ring}/cryptoKeys/{id}/cryptoKeyVersions/{n}");
            if data.deny_signing {
                return google_error(403, "PERMISSION_DENIED", &format!("Permission 'cloudkms.cryptoKeyVersions.useToSign' denied on resource '{full}' (or it may not exist)."));
            }
            let corrupt = data.corrupt_signatures > 0;
            if corrupt {
                data.corrupt_signatures -= 1;
            }
            let Some(v) = version_mut(&mut data, id, n) else {
                return not_found("CryptoKeyVersion");
            };
            sign(&full, v, &request, corrupt)
        }
        (Method::POST, ["importJobs"], None) => {
            let q = query_map(uri);
            let Some(id) = q.get("importJobId").filter(|id| !id.is_empty()) else {
                return google_error(400, "INVALID_ARGUMENT", "Invalid value for import_job_id.");
            };
            let name = format!("{ring}/importJobs/{id}");
            if data.jobs.contains_key(&name) {
                return google_error(
                    409,
                    "ALREADY_EXISTS",
                    &format!("ImportJob {name} already exists."),
                );
            }
            if request["importMethod"] != "RSA_OAEP_3072_SHA256_AES_256" {
                return google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "The fake supports RSA_OAEP_3072_SHA256_AES_256 only.",
                );
            }
            let Ok(key) = Rsa::generate(3072).and_then(PKey::from_rsa) else {
                return google_error(500, "INTERNAL", "Internal error.");
            };
            let protection = request["protectionLevel"]
                .as_str()
                .unwrap_or("SOFTWARE")
                .to_owned();
            let job = FakeJob {
                state: "PENDING_GENERATION".to_owned(),
                polls_left: 1,
                key,
                protection,
            };
            let answer = job_json(&name, &job);
            data.jobs.insert(name, job);
            axum::Json(answer).into_response()
        }
        (Method::GET, ["importJobs", id], None) => {
            let name = format!("{ring}/importJobs/{id}");
            let Some(job) = data.jobs.get_mut(&name) else {
                return not_found("ImportJob");
            };
            if job.state == "PENDING_GENERATION" {
                if job.polls_left == 0 {
                    job.state = "ACTIVE".to_owned();
                } else {
                    job.polls_left -= 1;
                }
            }
            axum::Json(job_json(&name, job)).into_response()
        }
        (Method::POST, ["cryptoKeys", id, "cryptoKeyVersions"], Some("import")) => {
            import(&mut data, ring, id, &request)
        }
        _ => google_error(404, "NOT_FOUND", "The requested URL was not found."),
    }
}

fn version_mut<'a>(data: &'a mut Data, id: &str, n: &str) -> Option<&'a mut FakeVersion> {
    let n: usize = n.parse().ok()?;
    data.keys.get_mut(id)?.versions.get_mut(n.checked_sub(1)?)
}

fn job_json(name: &str, job: &FakeJob) -> Value {
    let mut answer = json!({
        "name": name,
        "importMethod": "RSA_OAEP_3072_SHA256_AES_256",
        "protectionLevel": job.protection,
        "state": job.state,
        "createTime": "2026-01-01T00:00:00Z",
    });
    if job.state == "ACTIVE" {
        let pem = job
            .key
            .public_key_to_pem()
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .unwrap_or_default();
        answer["publicKey"] = json!({"pem": pem});
    }
    answer
}

fn sign(full: &str, v: &FakeVersion, request: &Value, corrupt: bool) -> Response {
    if v.state != "ENABLED" {
        return google_error(
            400,
            "FAILED_PRECONDITION",
            &format!("{full} is not enabled, current state is: {}.", v.state),
        );
    }
    let Some(key) = v.key.as_ref() else {
        return google_error(400, "FAILED_PRECONDITION", "No key material.");
    };
    let ed25519 = v.algorithm == "EC_SIGN_ED25519";
    let (field, crc_field, input) = if ed25519 {
        ("data", "dataCrc32c", request["data"].as_str())
    } else {
        (
            "digest.sha256",
            "digestCrc32c",
            request["digest"]["sha256"].as_str(),
        )
    };
    if ed25519 && !request["digest"].is_null() {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "EC_SIGN_ED25519 keys sign data, not a digest.",
        );
    }
    let Some(bytes) = input.and_then(|t| B64.decode(t).ok()) else {
        return google_error(400, "INVALID_ARGUMENT", &format!("{field} is required."));
    };
    if !ed25519 && bytes.len() != 32 {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "The digest must be 32 bytes for SHA-256.",
        );
    }
    let verified = match request[crc_field].as_str() {
        Some(text) => {
            if text.parse::<u64>().ok() != Some(u64::from(crc32c(&bytes))) {
                return google_error(400, "INVALID_ARGUMENT", &format!("The checksum in field {crc_field} did not match the data in field {field}."));
            }
            true
        }
        None => false,
    };
    let signature = if ed25519 {
        openssl::sign::Signer::new_without_digest(key)
            .and_then(|mut s| s.sign_oneshot_to_vec(&bytes))
    } else {
        key.ec_key()
            .and_then(|ec| openssl::ecdsa::EcdsaSig::sign(&bytes, &ec))
            .and_then(|sig| sig.to_der())
    };
    let Ok(signature) = signature else {
        return google_error(500, "INTERNAL", "Internal error encountered.");
    };
    let crc = crc32c(&signature);
    let mut sent = signature;
    if corrupt {
        if let Some(b) = sent.last_mut() {
            *b ^= 0x01;
        }
    }
    let mut answer = json!({
        "signature": B64.encode(&sent),
        "signatureCrc32c": crc.to_string(),
        "name": full,
        "protectionLevel": v.protection,
    });
    answer[if ed25519 {
        "verifiedDataCrc32c"
    } else {
        "verifiedDigestCrc32c"
    }] = json!(verified);
    axum::Json(answer).into_response()
}

fn import(data: &mut Data, ring: &str, id: &str, request: &Value) -> Response {
    let algorithm = request["algorithm"].as_str().unwrap_or("").to_owned();
    let job_name = request["importJob"].as_str().unwrap_or("");
    let Some(job) = data.jobs.get(job_name) else {
        return google_error(404, "NOT_FOUND", "ImportJob not found.");
    };
    if job.state != "ACTIVE" {
        return google_error(
            400,
            "FAILED_PRECONDITION",
            &format!("ImportJob {job_name} is not active."),
        );
    }
    let wrapped = request["wrappedKey"]
        .as_str()
        .or(request["rsaAesWrappedKey"].as_str())
        .and_then(|t| B64.decode(t).ok());
    let Some(wrapped) = wrapped else {
        return google_error(400, "INVALID_ARGUMENT", "wrapped_key is required.");
    };
    let Some(pkcs8) = unwrap_import(&job.key, &wrapped) else {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "Failed to unwrap the key material.",
        );
    };
    let Ok(key) = PKey::private_key_from_pkcs8(&pkcs8) else {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "The imported key material is not PKCS#8.",
        );
    };
    if !key_matches(&key, &algorithm) {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            &format!("The imported key does not match algorithm {algorithm}."),
        );
    }
    let job_protection = job.protection.clone();
    let Some(fake_key) = data.keys.get_mut(id) else {
        return google_error(404, "NOT_FOUND", "CryptoKey not found.");
    };
    if fake_key.protection != job_protection {
        return google_error(
            400,
            "FAILED_PRECONDITION",
            "The import job's protection level is not the key's.",
        );
    }
    fake_key.versions.push(FakeVersion {
        state: "PENDING_IMPORT".to_owned(),
        algorithm,
        protection: job_protection,
        key: Some(key),
        polls_left: 1,
    });
    let name = format!(
        "{ring}/cryptoKeys/{id}/cryptoKeyVersions/{}",
        fake_key.versions.len()
    );
    let answer = fake_key
        .versions
        .last()
        .map(|v| version_json(&name, v))
        .unwrap_or(Value::Null);
    axum::Json(answer).into_response()
}

/// RSA-OAEP/SHA-256 of the AES key, then RFC 5649 unwrap of the rest.
fn unwrap_import(job_key: &PKey<Private>, wrapped: &[u8]) -> Option<Vec<u8>> {
    let rsa_len = usize::try_from(job_key.rsa().ok()?.size()).ok()?;
    if wrapped.len() <= rsa_len + 16 {
        return None;
    }
    let (encrypted, kwp) = wrapped.split_at(rsa_len);
    let mut decrypter = openssl::encrypt::Decrypter::new(job_key).ok()?;
    decrypter
        .set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP)
        .ok()?;
    decrypter.set_rsa_oaep_md(MessageDigest::sha256()).ok()?;
    decrypter.set_rsa_mgf1_md(MessageDigest::sha256()).ok()?;
    let mut aes = vec![0u8; decrypter.decrypt_len(encrypted).ok()?];
    let n = decrypter.decrypt(encrypted, &mut aes).ok()?;
    aes.truncate(n);
    if aes.len() != 32 {
        return None;
    }
    kwp_unwrap(&aes, kwp)
}

/// RFC 5649 unwrap (n > 1 semiblocks): RFC 3394's unwrap, whose integrity check value
/// must be A65959A6 ‖ MLI with MLI within the last semiblock and zero padding after it.
pub fn kwp_unwrap(kek: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return None;
    }
    let key = openssl::aes::AesKey::new_decrypt(kek).ok()?;
    let padded = wrapped.len() - 8;
    // openssl checks the IV it is given: try each length the padding allows.
    for mli in (padded - 7)..=padded {
        let mut iv = [0xA6u8, 0x59, 0x59, 0xA6, 0, 0, 0, 0];
        iv[4..].copy_from_slice(&u32::try_from(mli).ok()?.to_be_bytes());
        let mut out = vec![0u8; padded];
        if let Ok(n) = openssl::aes::unwrap_key(&key, Some(iv), &mut out, wrapped) {
            if n == padded && out[mli..].iter().all(|&b| b == 0) {
                out.truncate(mli);
                return Some(out);
            }
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn kwp_unwraps_rfc_5649() {
        let kek = hex::decode("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8").unwrap();
        let wrapped =
            hex::decode("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a")
                .unwrap();
        assert_eq!(
            hex::encode(kwp_unwrap(&kek, &wrapped).unwrap()),
            "c37b7e6492584340bed12207808941155068f738"
        );
        let mut bad = wrapped.clone();
        bad[5] ^= 1;
        assert!(kwp_unwrap(&kek, &bad).is_none());
    }
}
