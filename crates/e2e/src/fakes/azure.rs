//! A fake of the Azure REST API subset the `azure` driver uses, on 127.0.0.1 (axum, on a
//! runtime of its own so that tests blocking on a `signatory` CLI process cannot stall it):
//!
//! - Key Vault (api-version 7.4): `GET /keys` (paged with `nextLink`), `GET /keys/{name}`
//!   (and `/{version}`), `POST /keys/{name}/create`, `PUT /keys/{name}` (import of a private
//!   JWK), `POST /keys/{name}/{version}/sign` (ES256 / ES256K over the given digest, real
//!   OpenSSL signatures, raw r ‖ s, high S left as it comes). Errors are Key Vault's JSON
//!   `{"error":{"code","message"}}`; a missing, unknown or expired bearer token is a 401
//!   with the `WWW-Authenticate: Bearer authorization=…, resource=…` challenge; an identity
//!   without the permission gets 403 `Forbidden`.
//! - Entra ID v2 token endpoint `POST /{tenant}/oauth2/v2.0/token`, client credentials
//!   with a client secret or an RS256 `client_assertion` whose signature, `x5t`, `aud`,
//!   `iss`/`sub` and lifetime are checked against the registered certificate. OAuth errors
//!   carry Entra's `AADSTS…` codes.
//! - The managed identity endpoints: IMDS `GET /metadata/identity/oauth2/token` (needs
//!   `Metadata: true`) and App Service `GET /msi/token` (needs `X-IDENTITY-HEADER`).
//!
//! Switches: a per-request `delay`, [`Mode::Down`] (503 from Key Vault) and
//! [`Mode::Throttle`] (429 with `Retry-After`), the token lifetime, and revoking every
//! token issued so far.

use crate::conformance::Outage;
use crate::HarnessError;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tezos_crypto::{Curve, PublicKey};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The tenant the fake directory answers for.
pub const TENANT: &str = "50c46f11-1d0a-4c56-b468-1bcb03a8f69e";
/// The audience Key Vault tokens are for.
pub const RESOURCE: &str = "https://vault.azure.net";
/// The principal the fake's managed identity is.
pub const MANAGED_IDENTITY: &str = "managed-identity";

/// What Key Vault does with each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    /// 503 ServiceUnavailable to everything.
    Down,
    /// 429 with `Retry-After: retry_after` to the next `remaining` requests.
    Throttle {
        remaining: usize,
        retry_after: u64,
    },
}

/// Key Vault permissions (access policy key permissions).
pub const ALL_PERMISSIONS: &[&str] = &["list", "get", "sign", "create", "import"];

enum Credential {
    Secret(String),
    Certificate(X509),
}

struct Identity {
    credential: Credential,
    permissions: Vec<String>,
}

enum Material {
    Ec(EcKey<Private>),
    Rsa,
}

struct FakeKey {
    version: String,
    kty: String,
    crv: Option<String>,
    enabled: bool,
    key_ops: Vec<String>,
    material: Material,
}

struct Issued {
    principal: String,
    expires: Instant,
}

struct Inner {
    url: String,
    keys: BTreeMap<String, FakeKey>,
    identities: BTreeMap<String, Identity>,
    managed_identity_permissions: Vec<String>,
    app_service_header: Option<String>,
    tokens: HashMap<String, Issued>,
    token_lifetime: Duration,
    mode: Mode,
    page_size: usize,
    /// Where `nextLink` points instead of this vault (a misbehaving or hostile service).
    next_link_base: Option<String>,
    delay: Duration,
    counts: BTreeMap<&'static str, usize>,
}

type Shared = Arc<Mutex<Inner>>;

/// The running fake. Dropping it stops the server.
pub struct FakeAzure {
    /// `http://127.0.0.1:<port>`: the vault URL, the authority host and the IMDS host.
    pub url: String,
    state: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeAzure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAzure").field("url", &self.url).finish()
    }
}

impl Drop for FakeAzure {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn error(context: &str) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |source| HarnessError::Io {
        context: context.to_owned(),
        source,
    }
}

fn other(context: &str, e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Io {
        context: context.to_owned(),
        source: std::io::Error::other(e.to_string()),
    }
}

impl FakeAzure {
    /// Listen on 127.0.0.1 (a free port) on a runtime of the fake's own.
    pub fn start() -> Result<FakeAzure, HarnessError> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").map_err(error("binding the fake"))?;
        listener
            .set_nonblocking(true)
            .map_err(error("binding the fake"))?;
        let url = format!(
            "http://{}",
            listener.local_addr().map_err(error("binding the fake"))?
        );
        let state: Shared = Arc::new(Mutex::new(Inner {
            url: url.clone(),
            keys: BTreeMap::new(),
            identities: BTreeMap::new(),
            managed_identity_permissions: Vec::new(),
            app_service_header: None,
            tokens: HashMap::new(),
            token_lifetime: Duration::from_secs(3599),
            mode: Mode::Up,
            page_size: 25,
            next_link_base: None,
            delay: Duration::ZERO,
            counts: BTreeMap::new(),
        }));
        let app = router(state.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(error("starting the fake's runtime"))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Ok(FakeAzure {
            url,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The token endpoint of the fake tenant.
    pub fn token_url(&self) -> String {
        format!("{}/{TENANT}/oauth2/v2.0/token", self.url)
    }

    /// Register an application with a client secret and these permissions.
    pub fn add_secret_client(&self, client_id: &str, secret: &str, permissions: &[&str]) {
        self.state.lock().identities.insert(
            client_id.to_owned(),
            Identity {
                credential: Credential::Secret(secret.to_owned()),
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            },
        );
    }

    /// Register an application whose credential is this certificate.
    pub fn add_certificate_client(
        &self,
        client_id: &str,
        certificate: &X509,
        permissions: &[&str],
    ) {
        self.state.lock().identities.insert(
            client_id.to_owned(),
            Identity {
                credential: Credential::Certificate(certificate.clone()),
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            },
        );
    }

    /// Give the host a managed identity; `app_service_header` also serves `/msi/token`.
    pub fn enable_managed_identity(&self, permissions: &[&str], app_service_header: Option<&str>) {
        let mut inner = self.state.lock();
        inner.managed_identity_permissions = permissions.iter().map(|p| (*p).to_owned()).collect();
        inner.app_service_header = app_service_header.map(str::to_owned);
    }

    /// Create EC key `name` (kty `EC-HSM`) on `curve` (P-256 or secp256k1).
    pub fn add_ec_key(&self, name: &str, curve: Curve) -> Result<PublicKey, HarnessError> {
        let crv = match curve {
            Curve::P256 => "P-256",
            Curve::Secp256k1 => "P-256K",
            other => {
                return Err(self::other(
                    "adding a key",
                    format!("no {other} keys in Key Vault"),
                ))
            }
        };
        let key = generate_ec(crv).map_err(|e| self::other("adding a key", e))?;
        let public = tezos_public_key(curve, &key).map_err(|e| self::other("adding a key", e))?;
        self.state.lock().keys.insert(
            name.to_owned(),
            FakeKey {
                version: new_version(),
                kty: "EC-HSM".to_owned(),
                crv: Some(crv.to_owned()),
                enabled: true,
                key_ops: vec!["sign".to_owned(), "verify".to_owned()],
                material: Material::Ec(key),
            },
        );
        Ok(public)
    }

    /// An RSA key (which Tezos cannot use).
    pub fn add_rsa_key(&self, name: &str) {
        self.state.lock().keys.insert(
            name.to_owned(),
            FakeKey {
                version: new_version(),
                kty: "RSA-HSM".to_owned(),
                crv: None,
                enabled: true,
                key_ops: vec!["sign".to_owned(), "verify".to_owned()],
                material: Material::Rsa,
            },
        );
    }

    pub fn disable_key(&self, name: &str) {
        if let Some(key) = self.state.lock().keys.get_mut(name) {
            key.enabled = false;
        }
    }

    pub fn set_key_ops(&self, name: &str, ops: &[&str]) {
        if let Some(key) = self.state.lock().keys.get_mut(name) {
            key.key_ops = ops.iter().map(|o| (*o).to_owned()).collect();
        }
    }

    /// Names of the keys held, and their kty.
    pub fn keys(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .keys
            .iter()
            .map(|(n, k)| (n.clone(), k.kty.clone()))
            .collect()
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().mode = mode;
    }

    /// Every Key Vault request waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().delay = delay;
    }

    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state.lock().token_lifetime = lifetime;
    }

    pub fn set_page_size(&self, size: usize) {
        self.state.lock().page_size = size.max(1);
    }

    /// Make `nextLink` point at `base` instead of this vault.
    pub fn set_next_link_base(&self, base: Option<&str>) {
        self.state.lock().next_link_base = base.map(str::to_owned);
    }

    /// Forget every token issued so far (they answer 401 from now on).
    pub fn revoke_tokens(&self) {
        self.state.lock().tokens.clear();
    }

    /// How many requests of `kind` were answered: `token`, `imds`, `app_service`, `list`,
    /// `get`, `sign`, `create`, `import`, `unauthorized`, `throttled`, `forbidden`.
    pub fn count(&self, kind: &str) -> usize {
        self.state.lock().counts.get(kind).copied().unwrap_or(0)
    }
}

impl Outage for Arc<FakeAzure> {
    fn take_down(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move { self.set_mode(Mode::Down) })
    }
    fn bring_back(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move { self.set_mode(Mode::Up) })
    }
}

/// A self-signed RSA client certificate, as `az ad sp create-for-rbac --create-cert` makes.
pub struct ClientCertificate {
    pub key: PKey<Private>,
    pub certificate: X509,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("subject", &self.certificate.subject_name())
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    pub fn generate(common_name: &str) -> Result<Self, openssl::error::ErrorStack> {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048)?)?;
        let mut name = openssl::x509::X509NameBuilder::new()?;
        name.append_entry_by_text("CN", common_name)?;
        let name = name.build();
        let mut builder = X509::builder()?;
        builder.set_version(2)?;
        let serial = BigNum::from_u32(1)?.to_asn1_integer()?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(&name)?;
        builder.set_pubkey(&key)?;
        builder.set_not_before(openssl::asn1::Asn1Time::days_from_now(0)?.as_ref())?;
        builder.set_not_after(openssl::asn1::Asn1Time::days_from_now(365)?.as_ref())?;
        builder.sign(&key, MessageDigest::sha256())?;
        Ok(ClientCertificate {
            key,
            certificate: builder.build(),
        })
    }

    /// The certificate's SHA-1 thumbprint in hex (as the Azure portal shows it).
    pub fn thumbprint_hex(&self) -> Result<String, openssl::error::ErrorStack> {
        Ok(hex::encode_upper(
            self.certificate.digest(MessageDigest::sha1())?,
        ))
    }

    /// A PKCS #12 file of the key and certificate.
    pub fn pkcs12(&self, password: &str) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        openssl::pkcs12::Pkcs12::builder()
            .name("signatory")
            .pkey(&self.key)
            .cert(&self.certificate)
            .build2(password)?
            .to_der()
    }

    /// The private key, PKCS #8 PEM.
    pub fn key_pem(&self) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        self.key.private_key_to_pem_pkcs8()
    }

    pub fn certificate_pem(&self) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        self.certificate.to_pem()
    }
}

fn nid_of(crv: &str) -> Option<Nid> {
    match crv {
        "P-256" => Some(Nid::X9_62_PRIME256V1),
        "P-256K" => Some(Nid::SECP256K1),
        _ => None,
    }
}

fn generate_ec(crv: &str) -> Result<EcKey<Private>, String> {
    let nid = nid_of(crv).ok_or_else(|| format!("curve {crv}"))?;
    let group = EcGroup::from_curve_name(nid).map_err(|e| e.to_string())?;
    EcKey::generate(&group).map_err(|e| e.to_string())
}

fn coordinates(key: &EcKey<Private>) -> Result<(Vec<u8>, Vec<u8>), openssl::error::ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let (mut x, mut y) = (BigNum::new()?, BigNum::new()?);
    key.public_key()
        .affine_coordinates(key.group(), &mut x, &mut y, &mut ctx)?;
    Ok((x.to_vec_padded(32)?, y.to_vec_padded(32)?))
}

fn tezos_public_key(curve: Curve, key: &EcKey<Private>) -> Result<PublicKey, String> {
    let (x, y) = coordinates(key).map_err(|e| e.to_string())?;
    let mut point = vec![0x04];
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    PublicKey::from_uncompressed_point(curve, &point).map_err(|e| e.to_string())
}

fn new_version() -> String {
    let mut bytes = [0u8; 16];
    let _ = openssl::rand::rand_bytes(&mut bytes);
    hex::encode(bytes)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/metadata/identity/oauth2/token", get(imds))
        .route("/msi/token", get(app_service))
        .route("/keys", get(list))
        .route("/keys/{name}", get(get_latest).put(import))
        .route("/keys/{name}/create", post(create))
        .route("/keys/{name}/{version}", get(get_version))
        .route("/keys/{name}/{version}/sign", post(sign))
        .with_state(state)
}

/// Key Vault's error answer.
fn kv_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// Entra ID's OAuth error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let code: u64 = description
        .strip_prefix("AADSTS")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (
        status,
        axum::Json(json!({
            "error": error,
            "error_description": format!("{description}\r\nTrace ID: 00000000-0000-0000-0000-000000000000"),
            "error_codes": [code],
            "timestamp": "2026-01-01 00:00:00Z",
        })),
    )
        .into_response()
}

fn count(inner: &mut Inner, kind: &'static str) {
    *inner.counts.entry(kind).or_insert(0) += 1;
}

fn issue(inner: &mut Inner, principal: &str) -> (String, Duration) {
    let token = format!("fake-token-{}", new_version());
    let lifetime = inner.token_lifetime;
    inner.tokens.insert(
        token.clone(),
        Issued {
            principal: principal.to_owned(),
            expires: Instant::now() + lifetime,
        },
    );
    (token, lifetime)
}

async fn token(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let mut inner = state.lock();
    if tenant != TENANT {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    let client_id = field("client_id").to_owned();
    if field("scope") != format!("{RESOURCE}/.default") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS70011: The provided request must include a 'scope' input parameter.",
        );
    }
    let token_url = format!("{}/{TENANT}/oauth2/v2.0/token", inner.url);
    let verdict = match inner.identities.get(&client_id) {
        None => Err(oauth_error(StatusCode::BAD_REQUEST, "unauthorized_client", &format!("AADSTS700016: Application with identifier '{client_id}' was not found in the directory."))),
        Some(Identity { credential: Credential::Secret(secret), .. }) => {
            if form.contains_key("client_assertion") || field("client_secret") != secret {
                Err(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID."))
            } else {
                Ok(())
            }
        }
        Some(Identity { credential: Credential::Certificate(cert), .. }) => {
            if field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
                Err(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'."))
            } else {
                check_assertion(field("client_assertion"), cert, &client_id, &token_url)
                    .map_err(|m| oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &m))
            }
        }
    };
    if let Err(response) = verdict {
        return response;
    }
    count(&mut inner, "token");
    let (token, lifetime) = issue(&mut inner, &client_id);
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": token,
    }))
    .into_response()
}

/// The checks Entra ID makes of a certificate credential's assertion.
fn check_assertion(jwt: &str, cert: &X509, client_id: &str, token_url: &str) -> Result<(), String> {
    let invalid =
        |what: &str| format!("AADSTS700027: Client assertion failed signature validation: {what}");
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("AADSTS50027: JWT token is invalid or malformed.".to_owned());
    };
    let decode = |p: &str| {
        B64URL
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    };
    let (Some(header), Some(claims)) = (decode(h), decode(c)) else {
        return Err("AADSTS50027: JWT token is invalid or malformed.".to_owned());
    };
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(invalid("the algorithm is not RS256"));
    }
    let thumbprint = cert
        .digest(MessageDigest::sha1())
        .map_err(|e| e.to_string())?;
    if header.get("x5t").and_then(Value::as_str) != Some(B64URL.encode(thumbprint).as_str()) {
        return Err(format!("AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}']", header.get("x5t").and_then(Value::as_str).unwrap_or_default()));
    }
    let public = cert.public_key().map_err(|e| e.to_string())?;
    let signature = B64URL
        .decode(s)
        .map_err(|_| invalid("the signature is not base64url"))?;
    let mut verifier = openssl::sign::Verifier::new(MessageDigest::sha256(), &public)
        .map_err(|e| e.to_string())?;
    let valid = verifier
        .update(format!("{h}.{c}").as_bytes())
        .and_then(|()| verifier.verify(&signature))
        .unwrap_or(false);
    if !valid {
        return Err(invalid("the signature does not verify"));
    }
    let claim = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if claim("aud") != token_url {
        return Err("AADSTS700212: No matching federated identity record found for presented assertion audience.".to_owned());
    }
    if claim("iss") != client_id || claim("sub") != client_id {
        return Err("AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter.".to_owned());
    }
    let now = now_secs();
    let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    let nbf = claims.get("nbf").and_then(Value::as_u64).unwrap_or(0);
    if exp <= now {
        return Err(
            "AADSTS700024: Client assertion is not within its valid time range.".to_owned(),
        );
    }
    if nbf > now + 300 {
        return Err(
            "AADSTS700024: Client assertion is not within its valid time range.".to_owned(),
        );
    }
    Ok(())
}

/// Managed identity token body with IMDS's string-typed numbers.
fn managed_token(inner: &mut Inner, app_service: bool) -> Response {
    let (token, lifetime) = issue(inner, MANAGED_IDENTITY);
    let expires_on = (now_secs() + lifetime.as_secs()).to_string();
    let mut body = json!({
        "access_token": token,
        "expires_on": expires_on,
        "resource": RESOURCE,
        "token_type": "Bearer",
        "client_id": MANAGED_IDENTITY,
    });
    if !app_service {
        set(
            &mut body,
            "expires_in",
            json!(lifetime.as_secs().to_string()),
        );
        set(
            &mut body,
            "ext_expires_in",
            json!(lifetime.as_secs().to_string()),
        );
        set(&mut body, "not_before", json!(now_secs().to_string()));
    }
    axum::Json(body).into_response()
}

async fn imds(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = state.lock();
    if headers.get("Metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}))).into_response();
    }
    if query.get("resource").map(String::as_str) != Some(RESOURCE)
        || !query.contains_key("api-version")
    {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_resource", "error_description": "AADSTS500011: The resource principal was not found"}))).into_response();
    }
    if inner.managed_identity_permissions.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"error": "invalid_request", "error_description": "Identity not found"}),
            ),
        )
            .into_response();
    }
    count(&mut inner, "imds");
    managed_token(&mut inner, false)
}

async fn app_service(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = state.lock();
    let given = headers
        .get("X-IDENTITY-HEADER")
        .and_then(|v| v.to_str().ok());
    if inner.app_service_header.is_none() || given != inner.app_service_header.as_deref() {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"statusCode": 401, "message": "Unauthorized request: the X-IDENTITY-HEADER is missing or wrong"}))).into_response();
    }
    if query.get("resource").map(String::as_str) != Some(RESOURCE) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"statusCode": 400, "message": "resource is missing or not Key Vault"}),
            ),
        )
            .into_response();
    }
    count(&mut inner, "app_service");
    managed_token(&mut inner, true)
}

/// What every Key Vault request goes through: the delay, the mode, the api-version, the
/// bearer token and the permission. Gives the locked state on success.
async fn admit<'a>(
    state: &'a Shared,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    permission: &str,
) -> Result<parking_lot::MutexGuard<'a, Inner>, Response> {
    let delay = state.lock().delay;
    if !delay.is_zero() {
        super::wait(delay).await;
    }
    let mut inner = state.lock();
    match inner.mode {
        Mode::Up => {}
        Mode::Down => {
            return Err(kv_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The service is temporarily unavailable. Please retry later.",
            ));
        }
        Mode::Throttle {
            remaining,
            retry_after,
        } => {
            if remaining > 0 {
                inner.mode = if remaining > 1 {
                    Mode::Throttle {
                        remaining: remaining - 1,
                        retry_after,
                    }
                } else {
                    Mode::Up
                };
                count(&mut inner, "throttled");
                let mut response = kv_error(StatusCode::TOO_MANY_REQUESTS, "Throttled", "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached");
                if let Ok(value) = retry_after.to_string().parse() {
                    response.headers_mut().insert("Retry-After", value);
                }
                return Err(response);
            }
        }
    }
    if query.get("api-version").map(String::as_str) != Some("7.4") {
        return Err(kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request URI contains an invalid or missing api-version",
        ));
    }
    let challenge = format!("Bearer authorization=\"https://login.microsoftonline.com/{TENANT}\", resource=\"{RESOURCE}\"");
    let unauthorized = |inner: &mut Inner, message: &str| {
        count(inner, "unauthorized");
        let mut response = kv_error(StatusCode::UNAUTHORIZED, "Unauthorized", message);
        if let Ok(value) = challenge.parse() {
            response.headers_mut().insert("WWW-Authenticate", value);
        }
        response
    };
    let Some(token) = headers
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Err(unauthorized(
            &mut inner,
            "AKV10000: Request is missing a Bearer or PoP token.",
        ));
    };
    let principal = match inner.tokens.get(token) {
        None => {
            return Err(unauthorized(
                &mut inner,
                "AKV10022: Invalid audience or token.",
            ))
        }
        Some(issued) if issued.expires <= Instant::now() => {
            return Err(unauthorized(
                &mut inner,
                "[TokenExpired] Error validating token: 'S2S12086'.",
            ));
        }
        Some(issued) => issued.principal.clone(),
    };
    let allowed = if principal == MANAGED_IDENTITY {
        inner
            .managed_identity_permissions
            .iter()
            .any(|p| p == permission)
    } else {
        inner
            .identities
            .get(&principal)
            .is_some_and(|i| i.permissions.iter().any(|p| p == permission))
    };
    if !allowed {
        count(&mut inner, "forbidden");
        return Err(kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("The user, group or application 'appid={principal}' does not have keys {permission} permission on key vault 'fake'."),
        ));
    }
    Ok(inner)
}

fn set(object: &mut Value, field: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(field.to_owned(), value);
    }
}

fn bundle(url: &str, name: &str, key: &FakeKey) -> Value {
    let mut jwk = json!({
        "kid": format!("{url}/keys/{name}/{}", key.version),
        "kty": key.kty,
        "key_ops": key.key_ops,
    });
    match &key.material {
        Material::Ec(ec) => {
            if let Ok((x, y)) = coordinates(ec) {
                set(&mut jwk, "crv", json!(key.crv));
                set(&mut jwk, "x", json!(B64URL.encode(x)));
                set(&mut jwk, "y", json!(B64URL.encode(y)));
            }
        }
        Material::Rsa => {
            set(&mut jwk, "n", json!(B64URL.encode([0xc5u8; 256])));
            set(&mut jwk, "e", json!("AQAB"));
        }
    }
    json!({"key": jwk, "attributes": attributes(key)})
}

fn attributes(key: &FakeKey) -> Value {
    json!({"enabled": key.enabled, "created": 1_700_000_000, "updated": 1_700_000_000, "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90})
}

fn not_found(name: &str) -> Response {
    kv_error(StatusCode::NOT_FOUND, "KeyNotFound", &format!("A key with (name/id) {name} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command."))
}

async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = match admit(&state, &headers, &query, "list").await {
        Ok(inner) => inner,
        Err(response) => return response,
    };
    count(&mut inner, "list");
    let size = query
        .get("maxresults")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(25)
        .min(inner.page_size)
        .max(1);
    let skip: usize = query
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let url = inner.url.clone();
    let page: Vec<Value> = inner
        .keys
        .iter()
        .skip(skip)
        .take(size)
        .map(|(name, key)| json!({"kid": format!("{url}/keys/{name}"), "attributes": attributes(key)}))
        .collect();
    let next_base = inner.next_link_base.clone().unwrap_or_else(|| url.clone());
    let next = (skip + size < inner.keys.len()).then(|| {
        format!(
            "{next_base}/keys?api-version=7.4&$skiptoken={}&maxresults={size}",
            skip + size
        )
    });
    axum::Json(json!({"value": page, "nextLink": next})).into_response()
}

async fn get_latest(
    state: State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    query: Query<HashMap<String, String>>,
) -> Response {
    get_key(state, headers, name, None, query).await
}

async fn get_version(
    state: State<Shared>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
    query: Query<HashMap<String, String>>,
) -> Response {
    get_key(state, headers, name, Some(version), query).await
}

async fn get_key(
    State(state): State<Shared>,
    headers: HeaderMap,
    name: String,
    version: Option<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = match admit(&state, &headers, &query, "get").await {
        Ok(inner) => inner,
        Err(response) => return response,
    };
    count(&mut inner, "get");
    match inner.keys.get(&name) {
        Some(key) if version.as_ref().is_none_or(|v| *v == key.version) => {
            axum::Json(bundle(&inner.url, &name, key)).into_response()
        }
        _ => not_found(&name),
    }
}

async fn sign(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut inner = match admit(&state, &headers, &query, "sign").await {
        Ok(inner) => inner,
        Err(response) => return response,
    };
    count(&mut inner, "sign");
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request body is not valid JSON.",
        );
    };
    let url = inner.url.clone();
    let Some(key) = inner.keys.get(&name).filter(|k| k.version == version) else {
        return not_found(&name);
    };
    if !key.enabled {
        return kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Operation sign is not allowed on a disabled key.",
        );
    }
    if !key.key_ops.iter().any(|o| o == "sign") {
        return kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Operation sign is not permitted on this key.",
        );
    }
    let Material::Ec(ec) = &key.material else {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Algorithm is not supported for this key type.",
        );
    };
    let alg = request
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let expected = match key.crv.as_deref() {
        Some("P-256") => "ES256",
        Some("P-256K") => "ES256K",
        _ => "",
    };
    if alg != expected {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!(
                "Invalid algorithm '{alg}' for a key on curve {}.",
                key.crv.as_deref().unwrap_or_default()
            ),
        );
    }
    let Some(digest) = request
        .get("value")
        .and_then(Value::as_str)
        .and_then(|v| B64URL.decode(v).ok())
    else {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Property value is not valid base64url.",
        );
    };
    if digest.len() != 32 {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Invalid digest length for algorithm.",
        );
    }
    let signed = openssl::ecdsa::EcdsaSig::sign(&digest, ec).and_then(|sig| {
        let mut raw = sig.r().to_vec_padded(32)?;
        raw.extend(sig.s().to_vec_padded(32)?);
        Ok(raw)
    });
    match signed {
        Ok(raw) => axum::Json(
            json!({"kid": format!("{url}/keys/{name}/{version}"), "value": B64URL.encode(raw)}),
        )
        .into_response(),
        Err(e) => kv_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &e.to_string(),
        ),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

async fn create(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut inner = match admit(&state, &headers, &query, "create").await {
        Ok(inner) => inner,
        Err(response) => return response,
    };
    count(&mut inner, "create");
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request body is not valid JSON.",
        );
    };
    if !valid_name(&name) {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The key name is invalid.",
        );
    }
    let kty = request
        .get("kty")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kty != "EC" && kty != "EC-HSM" {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!("Key type '{kty}' is not supported by this fake."),
        );
    }
    let crv = request
        .get("crv")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Ok(ec) = generate_ec(&crv) else {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!("Curve '{crv}' is not supported."),
        );
    };
    let key_ops = request
        .get("key_ops")
        .and_then(Value::as_array)
        .map(|ops| {
            ops.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_else(|| vec!["sign".to_owned(), "verify".to_owned()]);
    let key = FakeKey {
        version: new_version(),
        kty: kty.to_owned(),
        crv: Some(crv),
        enabled: true,
        key_ops,
        material: Material::Ec(ec),
    };
    let answer = bundle(&inner.url, &name, &key);
    inner.keys.insert(name, key);
    axum::Json(answer).into_response()
}

async fn import(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut inner = match admit(&state, &headers, &query, "import").await {
        Ok(inner) => inner,
        Err(response) => return response,
    };
    count(&mut inner, "import");
    let bad = |m: &str| kv_error(StatusCode::BAD_REQUEST, "BadParameter", m);
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad("The request body is not valid JSON.");
    };
    if !valid_name(&name) {
        return bad("The key name is invalid.");
    }
    let jwk = request.get("key").cloned().unwrap_or(Value::Null);
    let text = |field: &str| {
        jwk.get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if text("kty") != "EC" && text("kty") != "EC-HSM" {
        return bad("JSON Web Key: key type is not supported by this fake.");
    }
    let crv = text("crv");
    let Some(nid) = nid_of(&crv) else {
        return bad("JSON Web Key: unsupported curve.");
    };
    let decoded = |field: &str| B64URL.decode(text(field)).ok();
    let (Some(d), Some(x), Some(y)) = (decoded("d"), decoded("x"), decoded("y")) else {
        return bad("JSON Web Key: the EC key is missing d, x or y.");
    };
    let built = (|| -> Result<EcKey<Private>, openssl::error::ErrorStack> {
        let group = EcGroup::from_curve_name(nid)?;
        let mut ctx = BigNumContext::new()?;
        let d = BigNum::from_slice(&d)?;
        let mut point = EcPoint::new(&group)?;
        point.mul_generator2(&group, &d, &mut ctx)?;
        EcKey::from_private_components(&group, &d, &point)
    })();
    let Ok(ec) = built else {
        return bad("JSON Web Key: d is not a valid private key.");
    };
    if coordinates(&ec).ok() != Some((x, y)) {
        return bad("JSON Web Key: x and y are not the public point of d.");
    }
    let hsm = request.get("hsm").and_then(Value::as_bool).unwrap_or(false);
    let key_ops = jwk
        .get("key_ops")
        .and_then(Value::as_array)
        .map(|ops| {
            ops.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_else(|| vec!["sign".to_owned(), "verify".to_owned()]);
    let key = FakeKey {
        version: new_version(),
        kty: if hsm { "EC-HSM" } else { "EC" }.to_owned(),
        crv: Some(crv),
        enabled: true,
        key_ops,
        material: Material::Ec(ec),
    };
    let answer = bundle(&inner.url, &name, &key);
    inner.keys.insert(name, key);
    axum::Json(answer).into_response()
}
