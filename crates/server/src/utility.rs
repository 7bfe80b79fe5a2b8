//! The utility listener: Prometheus `/metrics`, `/healthz` (and `/ready`), `/live`.

use crate::api::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::time::Duration;

/// A backend that does not answer its health check within this time counts as down.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

/// The utility routes.
pub fn utility_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(health))
        .route("/ready", get(health))
        .route("/live", get(live))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    for vault in state.service.vaults() {
        if let Some(sessions) = vault.sessions() {
            state.metrics.vault_sessions(vault.name(), sessions);
        }
        if let Some(calls) = vault.call_stats() {
            state.metrics.vault_calls(vault.name(), calls);
        }
    }
    match state.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// 200 only when the watermark store and every vault really answered; `ready` is ECAD
/// Signatory's field, `status` the common one.
async fn health(State(state): State<AppState>) -> Response {
    let checked = tokio::time::timeout(HEALTH_TIMEOUT, state.service.health()).await;
    let failure = match checked {
        Ok(Ok(())) => None,
        Ok(Err(reason)) => Some(reason),
        Err(_) => Some(format!(
            "the health check did not finish within {} s",
            HEALTH_TIMEOUT.as_secs()
        )),
    };
    match failure {
        None => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "ready": true })),
        )
            .into_response(),
        Some(reason) => {
            tracing::warn!(%reason, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "ready": false, "error": reason })),
            )
                .into_response()
        }
    }
}

/// The process answers: nothing else is checked.
async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}
