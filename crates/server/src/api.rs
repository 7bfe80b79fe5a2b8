//! The Octez remote-signer HTTP API.

use crate::auth::{Authenticator, ClientIdentity};
use crate::error::{ApiError, Rejected};
use crate::metrics::Metrics;
use crate::names::{ChainNames, ClientNames, Name};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use signatory_signer::service::{SignReport, SignRequest, SignService, Signed};
use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tezos_crypto::{PublicKey, PublicKeyHash, Signature, SigningVersion};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub service: Arc<SignService>,
    pub auth: Arc<Authenticator>,
    /// Shared, not cloned: the state is cloned for every request, and a `Metrics` clone
    /// touches a reference count per metric family.
    pub metrics: Arc<Metrics>,
    /// The chains requests name, for their metric labels and log lines.
    chain_names: Arc<ChainNames>,
    /// The addresses of clients that failed to authenticate, for their metric label.
    client_names: Arc<ClientNames>,
    /// `GET /authorized_keys` and `GET /known_keys` never change while running: their
    /// bodies are built once (octez-client asks for the first before every signature).
    authorized_keys_body: Bytes,
    /// The keys `GET /known_keys` and the socket protocol's Known_keys list: `None` unless
    /// the configuration allows listing them (as Octez, off by default: the list tells
    /// anyone who can reach the signer which bakers it serves).
    known_keys: Option<Arc<[PublicKeyHash]>>,
    known_keys_body: Option<Bytes>,
}

/// The answer to a request for the known keys when listing them is not allowed.
pub(crate) const KNOWN_KEYS_REFUSED: &str = "listing known keys is not allowed; set \
     `server.allow_list_known_keys: true` in the signer's configuration to allow it";

impl AppState {
    pub fn new(service: Arc<SignService>, auth: Authenticator, metrics: Metrics) -> Self {
        let authorized = match auth.authorized_key_hashes() {
            // An empty list would make octez-client abort: no authentication is `{}`.
            None => serde_json::json!({}),
            Some(hashes) => {
                let list: Vec<String> = hashes.iter().map(PublicKeyHash::to_b58check).collect();
                serde_json::json!({ "authorized_keys": list })
            }
        };
        AppState {
            service,
            auth: Arc::new(auth),
            metrics: Arc::new(metrics),
            chain_names: Arc::default(),
            client_names: Arc::default(),
            authorized_keys_body: Bytes::from(authorized.to_string()),
            known_keys: None,
            known_keys_body: None,
        }
    }

    /// The keys this signer serves, when the configuration allows listing them.
    pub(crate) fn known_keys(&self) -> Option<&[PublicKeyHash]> {
        self.known_keys.as_deref()
    }

    /// Let `GET /known_keys` list the keys this signer serves.
    pub fn list_known_keys(mut self) -> Self {
        let known: Arc<[PublicKeyHash]> = self
            .service
            .keys()
            .into_iter()
            .filter(|(_, entry)| entry.policy.is_some())
            .map(|(pkh, _)| pkh)
            .collect();
        let text: Vec<String> = known.iter().map(PublicKeyHash::to_b58check).collect();
        let body = serde_json::json!({ "known_keys": text });
        self.known_keys_body = Some(Bytes::from(body.to_string()));
        self.known_keys = Some(known);
        self
    }
}

/// A signing key named in the path; `text` is the key hash as sent (it parsed, so it is
/// the canonical form), reused as a metric label.
#[derive(Debug)]
pub struct KeyPath {
    pub pkh: PublicKeyHash,
    pub text: String,
}

impl<S: Send + Sync> FromRequestParts<S> for KeyPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(Rejected)?;
        match text.parse() {
            Ok(pkh) => Ok(KeyPath { pkh, text }),
            Err(e) => Err(ApiError::bad_request(format!(
                "`{text}` is not a public key hash (tz1, tz2, tz3 or tz4): {e}"
            ))),
        }
    }
}

/// The request's `?…` parameters; unknown ones are ignored, as Octez clients expect.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    authentication: Option<String>,
    version: Option<String>,
    bls_pk: Option<String>,
}

impl Params {
    fn version(&self) -> Result<SigningVersion, ApiError> {
        parse_version(self.version.as_deref())
    }

    fn authentication(&self) -> Option<&str> {
        self.authentication.as_deref()
    }
}

/// [`Params`] with rejections in the Octez error shape.
#[derive(Debug)]
pub struct QueryParams(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(p) = Query::<Params>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("unreadable query parameters: {e}")))?;
        Ok(QueryParams(p))
    }
}

/// The body of `POST /keys/{pkh}`: a JSON string of hex, magic byte included.
#[derive(Debug)]
pub struct HexBody(pub Vec<u8>);

impl<S: Send + Sync> FromRequest<S> for HexBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large: a signing request is at most a few tens of KiB",
                )
            } else {
                ApiError::from(Rejected(e))
            }
        })?;
        parse_body(&body).map(HexBody)
    }
}

type ClientAddr = Option<Extension<ConnectInfo<SocketAddr>>>;

/// Count an authentication failure under the client's address (bounded: see [`ClientNames`]);
/// a Unix-socket client has none.
pub(crate) fn count_authentication_failure(
    state: &AppState,
    client_ip: Option<IpAddr>,
    status: StatusCode,
) {
    let client = client_ip.map(|ip| state.client_names.name(&ip));
    state
        .metrics
        .authentication_failure(status.as_u16(), client.as_ref().map_or("", Name::label));
}

fn parse_version(v: Option<&str>) -> Result<SigningVersion, ApiError> {
    match v {
        None | Some("") => Ok(SigningVersion::default()),
        Some(s) => s
            .parse::<u8>()
            .ok()
            .and_then(SigningVersion::from_u8)
            .ok_or_else(|| {
                ApiError::bad_request(format!("unknown signing version `{s}` (expected 0 to 3)"))
            }),
    }
}

/// The body is a JSON string of hex: `"11…"`.
fn parse_body(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let hex_str: Cow<'_, str> = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be a JSON string of hex bytes, like \"03…\": {e}"
        ))
    })?;
    if hex_str.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to sign: the body is an empty string",
        ));
    }
    hex::decode(hex_str.as_bytes())
        .map_err(|e| ApiError::bad_request(format!("the body is not valid hex: {e}")))
}

fn json_body(body: &Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.clone(),
    )
        .into_response()
}

pub async fn get_key(
    State(state): State<AppState>,
    key: Result<KeyPath, ApiError>,
) -> Result<Json<PublicKeyReply>, ApiError> {
    let key = key?;
    let public_key = state
        .service
        .public_key(&key.pkh)
        .map_err(|e| ApiError::from(&e))?;
    tracing::debug!(pkh = %key.pkh, "public key served");
    Ok(Json(PublicKeyReply {
        public_key: public_key.to_b58check(),
    }))
}

#[derive(Debug, Serialize)]
pub struct PublicKeyReply {
    public_key: String,
}

#[derive(Debug, Serialize)]
pub struct SignatureReply {
    signature: String,
}

#[derive(Debug, Serialize)]
pub struct ProofReply {
    bls_prove_possession: String,
}

/// What is known of a signing request as it goes through the steps, for its log line and
/// metrics.
#[derive(Debug, Default)]
pub(crate) struct SignAttempt {
    client: Option<PublicKeyHash>,
    bytes: Vec<u8>,
    report: Option<SignReport>,
}

impl SignAttempt {
    pub(crate) fn with_bytes(bytes: Vec<u8>) -> Self {
        SignAttempt {
            bytes,
            ..SignAttempt::default()
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

pub async fn sign(
    State(state): State<AppState>,
    key: Result<KeyPath, ApiError>,
    params: Result<QueryParams, ApiError>,
    addr: ClientAddr,
    body: Result<HexBody, ApiError>,
) -> Response {
    let started = Instant::now();
    let mut attempt = SignAttempt::default();
    let client_ip = addr.map(|Extension(ConnectInfo(a))| a.ip());
    let result = sign_steps(&state, &key, params, body, client_ip, &mut attempt).await;
    let named = key.as_ref().ok().map(|k| (&k.pkh, k.text.as_str()));
    record_sign_outcome(&state, named, &attempt, &result, started.elapsed());
    match result {
        Ok(signed) => Json(SignatureReply {
            signature: signed.signature_b58,
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Count and log a signing request, whatever its fate; `key` is the key it names and that
/// name as text, when it named one that parsed.
pub(crate) fn record_sign_outcome(
    state: &AppState,
    key: Option<(&PublicKeyHash, &str)>,
    attempt: &SignAttempt,
    result: &Result<Signed, ApiError>,
    elapsed: std::time::Duration,
) {
    let status = match result {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status,
    };
    // Anyone can name any key: only keys this signer holds get a series of their own,
    // whatever the request's fate (a bad body or a failed authentication included).
    let address = match key {
        Some((pkh, text)) if state.service.key(pkh).is_some() => text,
        _ => "unknown",
    };
    state
        .metrics
        .sign_handler_request(address, status.as_u16(), elapsed);
    let chain = attempt
        .report
        .as_ref()
        .and_then(|r| r.summary.as_ref())
        .and_then(|s| s.chain_id.as_ref())
        .map(|c| state.chain_names.name(c));
    if let Some(report) = &attempt.report {
        state.metrics.sign_report(
            address,
            report,
            chain.as_ref().map_or("", Name::label),
            state.service.store().name(),
        );
    }
    let logged = LoggedNames {
        pkh: key.map(|(_, text)| text),
        chain: chain.as_ref().map(|name| &*name.text),
    };
    log_sign(attempt, &logged, result, status, elapsed);
}

/// Parse, authenticate, sign: each step fills `attempt` for the log line.
async fn sign_steps(
    state: &AppState,
    key: &Result<KeyPath, ApiError>,
    params: Result<QueryParams, ApiError>,
    body: Result<HexBody, ApiError>,
    client_ip: Option<IpAddr>,
    attempt: &mut SignAttempt,
) -> Result<Signed, ApiError> {
    let pkh = key.as_ref().map_err(Clone::clone)?.pkh;
    let QueryParams(params) = params?;
    let version = params.version()?;
    let HexBody(bytes) = body?;
    attempt.bytes = bytes;
    let client = state
        .auth
        .authenticate(&pkh, &attempt.bytes, params.authentication(), version)
        .inspect_err(|e| count_authentication_failure(state, client_ip, e.status))?;
    sign_authenticated(state, pkh, version, client, attempt).await
}

/// Run the signing pipeline for a request whose client is known, with `attempt.bytes`.
pub(crate) async fn sign_authenticated(
    state: &AppState,
    pkh: PublicKeyHash,
    version: SigningVersion,
    client: ClientIdentity,
    attempt: &mut SignAttempt,
) -> Result<Signed, ApiError> {
    attempt.client = client.pkh().copied();

    // The pipeline runs in its own task: a client that disconnects, or the request timeout,
    // cannot cut it between the watermark update and the recording of the signature.
    let service = state.service.clone();
    let bytes = std::mem::take(&mut attempt.bytes);
    let client = attempt.client;
    let task = tokio::spawn(async move {
        let report = service
            .sign(SignRequest {
                pkh: &pkh,
                bytes: &bytes,
                version,
                client: client.as_ref(),
            })
            .await;
        (report, bytes)
    });
    let (report, bytes) = task.await.map_err(|e| {
        tracing::error!(pkh = %pkh, error = %e, "signing task failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the signing task failed; nothing was released (see the signer's log)",
        )
    })?;
    attempt.bytes = bytes;
    let result = match &report.result {
        Ok(signed) => Ok(signed.clone()),
        Err(e) => Err(ApiError::from(e)),
    };
    attempt.report = Some(report);
    result
}

/// Formats only when the log line is written.
struct Joined<'a>(&'a [String]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

struct HexPayload<'a>(&'a [u8]);

impl fmt::Display for HexPayload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// `2.6`, not `2.6009689999999996`: whole microseconds, so the log shows only digits that
/// mean something.
fn millis_to_the_microsecond(d: std::time::Duration) -> f64 {
    // u32 microseconds reach 71 minutes, far beyond any request's timeout.
    f64::from(u32::try_from(d.as_micros()).unwrap_or(u32::MAX)) / 1000.0
}

/// The request's key hash and chain as text: the strings its metrics carry, not encoded again.
struct LoggedNames<'a> {
    /// The key hash as the path named it: it parsed, so it is the canonical form.
    pkh: Option<&'a str>,
    chain: Option<&'a str>,
}

/// One line per signing request: info when signed, warn when refused. The payload is
/// written only for keys configured with `log_payloads`.
fn log_sign(
    attempt: &SignAttempt,
    names: &LoggedNames<'_>,
    result: &Result<Signed, ApiError>,
    status: StatusCode,
    elapsed: std::time::Duration,
) {
    let report = attempt.report.as_ref();
    let summary = report.and_then(|r| r.summary.as_ref());
    let log_payload = report.is_some_and(|r| r.log_payloads);
    macro_rules! sign_line {
        ($level:ident, $decision:expr, $reason:expr, $error:expr, $msg:literal) => {
            tracing::$level!(
                pkh = names.pkh.map(tracing::field::display),
                vault = report.and_then(|r| r.vault.as_deref()),
                kind = summary.map(|s| s.kind),
                chain = names.chain.map(tracing::field::display),
                level = summary.and_then(|s| s.level),
                round = summary.and_then(|s| s.round),
                ops = summary
                    .filter(|s| !s.operations.is_empty())
                    .map(|s| tracing::field::display(Joined(&s.operations))),
                decision = $decision,
                reason = $reason,
                error = $error,
                status = status.as_u16(),
                duration_ms = millis_to_the_microsecond(elapsed),
                client = attempt.client.as_ref().map(tracing::field::display),
                payload = log_payload.then(|| tracing::field::display(HexPayload(&attempt.bytes))),
                $msg
            )
        };
    }
    match result {
        Ok(_) => {
            let replayed = report.is_some_and(|r| r.result.as_ref().is_ok_and(|s| s.replayed));
            let decision = if replayed { "replayed" } else { "signed" };
            sign_line!(info, decision, None::<&str>, None::<&str>, "sign request");
        }
        Err(e) => sign_line!(
            warn,
            "refused",
            Some(e.class_label()),
            Some(e.message.as_str()),
            "sign request"
        ),
    }
}

pub async fn authorized_keys(State(state): State<AppState>) -> Response {
    json_body(&state.authorized_keys_body)
}

pub async fn known_keys(State(state): State<AppState>) -> Response {
    match &state.known_keys_body {
        Some(body) => json_body(body),
        None => ApiError::new(StatusCode::FORBIDDEN, KNOWN_KEYS_REFUSED).into_response(),
    }
}

pub async fn prove_possession(
    State(state): State<AppState>,
    key: Result<KeyPath, ApiError>,
    params: Result<QueryParams, ApiError>,
    addr: ClientAddr,
) -> Result<Json<ProofReply>, ApiError> {
    let pkh = key?.pkh;
    let result = prove_steps(&state, &pkh, params, &addr).await;
    log_proof(&pkh, &result);
    result.map(|proof| {
        Json(ProofReply {
            bls_prove_possession: proof.to_b58check(),
        })
    })
}

/// One line per proof-of-possession request.
pub(crate) fn log_proof(pkh: &PublicKeyHash, result: &Result<Signature, ApiError>) {
    match result {
        Ok(_) => tracing::info!(pkh = %pkh, decision = "signed", "proof of possession"),
        Err(e) => tracing::warn!(
            pkh = %pkh,
            decision = "refused",
            reason = e.class_label(),
            error = %e.message,
            status = e.status.as_u16(),
            "proof of possession"
        ),
    }
}

async fn prove_steps(
    state: &AppState,
    pkh: &PublicKeyHash,
    params: Result<QueryParams, ApiError>,
    addr: &ClientAddr,
) -> Result<Signature, ApiError> {
    let QueryParams(params) = params?;
    let override_pk = match params.bls_pk.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match PublicKey::from_b58check(s) {
            Ok(pk @ PublicKey::Bls(_)) => Some(pk),
            Ok(_) => {
                return Err(ApiError::bad_request(
                    "`bls_pk` must be a BLS public key (BLpk…)",
                ))
            }
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "`bls_pk` is not a BLS public key: {e}"
                )))
            }
        },
    };
    // Proof-of-possession requests authenticate over empty data (as ECAD Signatory does).
    let authenticated =
        state
            .auth
            .authenticate(pkh, &[], params.authentication(), params.version()?);
    let client_ip = addr.as_ref().map(|Extension(ConnectInfo(a))| a.ip());
    prove_authenticated(state, pkh, override_pk.as_ref(), authenticated, client_ip).await
}

/// Produce a proof of possession once the request's authentication was checked; a failed
/// authentication is counted under the client's address.
pub(crate) async fn prove_authenticated(
    state: &AppState,
    pkh: &PublicKeyHash,
    override_pk: Option<&PublicKey>,
    authenticated: Result<ClientIdentity, ApiError>,
    client_ip: Option<IpAddr>,
) -> Result<Signature, ApiError> {
    let client =
        authenticated.inspect_err(|e| count_authentication_failure(state, client_ip, e.status))?;
    state
        .service
        .prove_possession(pkh, override_pk, client.pkh())
        .await
        .map_err(|e| ApiError::from(&e))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found(
        "no such endpoint: the signer answers /keys/<pkh>, /authorized_keys, \
         /known_keys and /bls_prove_possession/<pkh>",
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: /keys/<pkh> takes GET (public key) and POST (sign)",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn body_parsing_names_the_problem() {
        assert_eq!(parse_body(br#""0311""#), Ok(vec![0x03, 0x11]));
        for bad in [&b"0311"[..], br#""""#, br#""zz""#, br#""031""#, b"[]", b""] {
            assert_eq!(parse_body(bad).unwrap_err().status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn version_defaults_to_latest_and_rejects_unknown() {
        assert_eq!(parse_version(None), Ok(SigningVersion::default()));
        assert_eq!(parse_version(Some("")), Ok(SigningVersion::default()));
        assert_eq!(parse_version(Some("1")), Ok(SigningVersion::V1));
        assert_eq!(parse_version(Some("0")), Ok(SigningVersion::V0));
        for bad in ["4", "9", "x", "-1", "256"] {
            assert!(parse_version(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_are_logged_to_the_microsecond() {
        let d = std::time::Duration::from_nanos(2_600_969);
        assert_eq!(millis_to_the_microsecond(d).to_string(), "2.6");
        assert_eq!(
            millis_to_the_microsecond(std::time::Duration::from_micros(1_234_567)).to_string(),
            "1234.567"
        );
    }

    #[test]
    fn lazy_log_fields_format_as_expected() {
        assert_eq!(Joined(&["a".into(), "b".into()]).to_string(), "a,b");
        assert_eq!(Joined(&[]).to_string(), "");
        assert_eq!(HexPayload(&[0x03, 0xab]).to_string(), "03ab");
    }
}
