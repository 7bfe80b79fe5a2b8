//! Signatory's transports: the Octez remote-signer HTTP API, and the utility listener
//! (Prometheus `/metrics`, `/healthz`, `/live`, `/ready`).
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod error;
pub mod metrics;

use crate::api::AppState;
use crate::auth::Authenticator;
use crate::metrics::{Metrics, MetricsError};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use signatory_signer::service::SignService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tezos_crypto::PublicKey;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;
use tower_http::timeout::TimeoutLayer;

/// How the listeners are set up; built by the CLI from the configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The API listener.
    pub listen: SocketAddr,
    /// The utility listener (metrics, health); `None` disables it.
    pub utility_listen: Option<SocketAddr>,
    /// Serve the API under this prefix (`/signer`), or at the root when empty.
    pub base_path: String,
    /// `server.authorized_keys`: when set, every request must be authenticated.
    pub authorized_keys: Option<Vec<PublicKey>>,
    /// Client keys named in individual key policies (`tezos.<pkh>.authorized_keys`).
    pub per_key_authorized_keys: Vec<PublicKey>,
    /// Largest request body accepted. The largest operation is 32 KiB, 64 KiB as hex.
    pub body_limit: usize,
    /// Time allowed to read a request and produce its answer.
    pub request_timeout: Duration,
}

impl ServerConfig {
    pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

    pub fn new(listen: SocketAddr) -> Self {
        ServerConfig {
            listen,
            utility_listen: None,
            base_path: String::new(),
            authorized_keys: None,
            per_key_authorized_keys: Vec::new(),
            body_limit: Self::DEFAULT_BODY_LIMIT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("server on {addr} failed: {source}")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// The shared state of both listeners.
pub fn app_state(cfg: &ServerConfig, service: Arc<SignService>) -> Result<AppState, ServerError> {
    let metrics = Metrics::new()?;
    for (pkh, entry) in service.keys() {
        if entry.policy.is_some() {
            metrics.warm_up(pkh);
        }
    }
    Ok(AppState {
        service,
        auth: Arc::new(Authenticator::new(
            cfg.authorized_keys.clone(),
            cfg.per_key_authorized_keys.clone(),
        )),
        metrics,
    })
}

/// The API routes, under `cfg.base_path`.
pub fn api_router(cfg: &ServerConfig, state: AppState) -> Router {
    let routes = Router::new()
        .route("/keys/{pkh}", get(api::get_key).post(api::sign))
        .route("/authorized_keys", get(api::authorized_keys))
        .route("/known_keys", get(api::known_keys))
        .route("/bls_prove_possession/{pkh}", get(api::prove_possession))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(cfg.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            cfg.request_timeout,
        ))
        .with_state(state);
    let prefix = cfg.base_path.trim_end_matches('/');
    if prefix.is_empty() {
        routes
    } else {
        let prefix = if prefix.starts_with('/') {
            prefix.to_string()
        } else {
            format!("/{prefix}")
        };
        Router::new().nest(&prefix, routes).fallback(api::not_found)
    }
}

/// The utility routes: metrics and health.
pub fn utility_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(health_handler))
        .route("/ready", get(health_handler))
        .route("/live", get(|| async { "live\n" }))
        .with_state(state)
}

async fn metrics_handler(State(state): State<AppState>) -> impl IntoResponse {
    match state.metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [("content-type", "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Ready only when the watermark store and every vault really answer.
async fn health_handler(State(state): State<AppState>) -> impl IntoResponse {
    match state.service.health().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "ready": true }))),
        Err(reason) => {
            tracing::warn!(%reason, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "ready": false, "error": reason })),
            )
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServerError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Run the API and utility listeners until `shutdown` resolves, then let in-flight
/// requests finish.
pub async fn serve(
    cfg: ServerConfig,
    service: Arc<SignService>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let state = app_state(&cfg, service)?;
    let api = bind(cfg.listen).await?;
    let utility = match cfg.utility_listen {
        Some(addr) => Some((addr, bind(addr).await?)),
        None => None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let utility_task = utility.map(|(addr, listener)| {
        tracing::info!(%addr, "utility listener (metrics, health) started");
        let app = utility_router(state.clone());
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .map_err(|source| ServerError::Serve { addr, source })
        })
    });

    tracing::info!(addr = %cfg.listen, base_path = %cfg.base_path, "API listener started");
    let app = NormalizePathLayer::trim_trailing_slash().layer(api_router(&cfg, state));
    let result =
        axum::serve(
            api,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(app),
        )
        .with_graceful_shutdown(stopped(stop_rx))
        .await
        .map_err(|source| ServerError::Serve {
            addr: cfg.listen,
            source,
        });
    if let Some(task) = utility_task {
        match task.await {
            Ok(r) => r?,
            Err(e) => tracing::error!(error = %e, "utility listener task failed"),
        }
    }
    result
}
