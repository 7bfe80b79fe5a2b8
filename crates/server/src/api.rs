//! The Octez remote-signer HTTP API.

use crate::auth::{Authenticator, ClientIdentity};
use crate::error::ApiError;
use crate::metrics::Metrics;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use signatory_signer::service::{SignReport, SignRequest, SignService};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tezos_crypto::{PublicKey, PublicKeyHash, SigningVersion};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub service: Arc<SignService>,
    pub auth: Arc<Authenticator>,
    pub metrics: Metrics,
}

/// Query of `POST /keys/{pkh}`; unknown parameters are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct SignQuery {
    authentication: Option<String>,
    version: Option<String>,
}

/// Query of `GET /bls_prove_possession/{pkh}`.
#[derive(Debug, Default, Deserialize)]
pub struct PopQuery {
    bls_pk: Option<String>,
    authentication: Option<String>,
}

type ClientAddr = Option<Extension<ConnectInfo<SocketAddr>>>;

fn client_ip(addr: &ClientAddr) -> String {
    addr.as_ref()
        .map(|Extension(ConnectInfo(a))| a.ip().to_string())
        .unwrap_or_default()
}

fn parse_pkh(s: &str) -> Result<PublicKeyHash, ApiError> {
    s.parse()
        .map_err(|e| ApiError::bad_request(format!("`{s}` is not a public key hash: {e}")))
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

pub async fn get_key(
    State(state): State<AppState>,
    Path(pkh): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pkh = parse_pkh(&pkh)?;
    let key = state
        .service
        .public_key(&pkh)
        .map_err(|e| ApiError::from(&e))?;
    Ok(Json(json!({ "public_key": key.to_b58check() })))
}

pub async fn sign(
    State(state): State<AppState>,
    Path(pkh_str): Path<String>,
    Query(query): Query<SignQuery>,
    addr: ClientAddr,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let pkh = match parse_pkh(&pkh_str) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let prepared = parse_version(query.version.as_deref()).and_then(|version| {
        let bytes = parse_body(&body)?;
        Ok((version, bytes))
    });
    let (version, bytes) = match prepared {
        Ok(p) => p,
        Err(e) => {
            log_bad_request(&pkh, &e);
            state.metrics.record_sign(
                &pkh_str,
                &empty_report(),
                state.service.store().name(),
                e.status.as_u16(),
                started.elapsed(),
            );
            return e.into_response();
        }
    };
    let client = match state.auth.authenticate(
        &pkh,
        &bytes,
        query.authentication.as_deref(),
        version,
    ) {
        Ok(c) => c,
        Err(e) => {
            state
                .metrics
                .authentication_failure(e.status.as_u16(), &client_ip(&addr));
            tracing::warn!(pkh = %pkh, status = e.status.as_u16(), error = %e.message, "authentication failed");
            return e.into_response();
        }
    };
    let report = state
        .service
        .sign(SignRequest {
            pkh: &pkh,
            bytes: &bytes,
            version,
            client: client.pkh(),
        })
        .await;
    let response = match &report.result {
        Ok(signed) => Ok(json!({ "signature": signed.signature.to_b58check() })),
        Err(e) => Err(ApiError::from(e)),
    };
    let status = match &response {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status,
    };
    let elapsed = started.elapsed();
    log_sign(&pkh, &report, &client, &bytes, status, elapsed);
    state.metrics.record_sign(
        &pkh_str,
        &report,
        state.service.store().name(),
        status.as_u16(),
        elapsed,
    );
    match response {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

fn empty_report() -> SignReport {
    SignReport {
        summary: None,
        vault: None,
        timings: Default::default(),
        log_payloads: false,
        result: Err(signatory_signer::service::SignError::NotBls),
    }
}

fn log_bad_request(pkh: &PublicKeyHash, e: &ApiError) {
    tracing::warn!(pkh = %pkh, status = e.status.as_u16(), error = %e.message, "bad signing request");
}

fn log_sign(
    pkh: &PublicKeyHash,
    report: &SignReport,
    client: &ClientIdentity,
    bytes: &[u8],
    status: StatusCode,
    elapsed: std::time::Duration,
) {
    let summary = report.summary.as_ref();
    let kind = summary.map(|s| s.kind).unwrap_or("");
    let chain = summary
        .and_then(|s| s.chain_id)
        .map(|c| c.to_b58check())
        .unwrap_or_default();
    let level = summary.and_then(|s| s.level);
    let round = summary.and_then(|s| s.round);
    let ops = summary.map(|s| s.operations.join(",")).unwrap_or_default();
    let vault = report.vault.as_deref().unwrap_or("");
    let client = client.pkh().map(|c| c.to_b58check()).unwrap_or_default();
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let payload = if report.log_payloads {
        hex::encode(bytes)
    } else {
        String::new()
    };
    match &report.result {
        Ok(signed) => tracing::info!(
            pkh = %pkh, vault, kind, chain, level, round, ops,
            decision = if signed.replayed { "replayed" } else { "signed" },
            status = status.as_u16(), duration_ms, client, payload,
            "signed"
        ),
        Err(e) => tracing::warn!(
            pkh = %pkh, vault, kind, chain, level, round, ops,
            decision = "refused", reason = %e,
            status = status.as_u16(), duration_ms, client, payload,
            "refused"
        ),
    }
}

pub async fn authorized_keys(State(state): State<AppState>) -> Json<serde_json::Value> {
    match state.auth.authorized_key_hashes() {
        None => Json(json!({})),
        Some(hashes) => {
            let list: Vec<String> = hashes.iter().map(PublicKeyHash::to_b58check).collect();
            Json(json!({ "authorized_keys": list }))
        }
    }
}

pub async fn known_keys(State(state): State<AppState>) -> Json<serde_json::Value> {
    let keys: Vec<String> = state
        .service
        .keys()
        .into_iter()
        .filter(|(_, entry)| entry.policy.is_some())
        .map(|(pkh, _)| pkh.to_b58check())
        .collect();
    Json(json!({ "known_keys": keys }))
}

pub async fn prove_possession(
    State(state): State<AppState>,
    Path(pkh): Path<String>,
    Query(query): Query<PopQuery>,
    addr: ClientAddr,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pkh = parse_pkh(&pkh)?;
    let override_pk = match query.bls_pk.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(PublicKey::from_b58check(s).map_err(|e| {
            ApiError::bad_request(format!("`bls_pk` is not a BLS public key: {e}"))
        })?),
    };
    // Proof-of-possession requests authenticate over empty data.
    let client = state
        .auth
        .authenticate(
            &pkh,
            &[],
            query.authentication.as_deref(),
            SigningVersion::default(),
        )
        .inspect_err(|e| {
            state
                .metrics
                .authentication_failure(e.status.as_u16(), &client_ip(&addr))
        })?;
    let proof = state
        .service
        .prove_possession(&pkh, override_pk.as_ref(), client.pkh())
        .await
        .map_err(|e| {
            tracing::warn!(pkh = %pkh, reason = %e, "proof of possession refused");
            ApiError::from(&e)
        })?;
    tracing::info!(pkh = %pkh, "proof of possession produced");
    Ok(Json(json!({ "bls_prove_possession": proof.to_b58check() })))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn body_parsing_names_the_problem() {
        assert_eq!(parse_body(br#""0311""#), Ok(vec![0x03, 0x11]));
        for bad in [&b"0311"[..], br#""""#, br#""zz""#, br#""031""#, b"[]"] {
            assert_eq!(parse_body(bad).unwrap_err().status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn version_defaults_to_latest_and_rejects_unknown() {
        assert_eq!(parse_version(None), Ok(SigningVersion::default()));
        assert_eq!(parse_version(Some("1")), Ok(SigningVersion::V1));
        assert!(parse_version(Some("9")).is_err());
        assert!(parse_version(Some("x")).is_err());
    }
}
