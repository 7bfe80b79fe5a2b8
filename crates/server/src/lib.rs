//! Signatory's transports: the Octez remote-signer HTTP API, and the utility listener
//! (Prometheus `/metrics`, `/healthz`, `/ready`, `/live`).
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod error;
mod framing;
mod guard;
mod listener;
pub mod metrics;
mod names;
pub mod socket;
pub mod utility;

use crate::api::AppState;
use crate::auth::Authenticator;
use crate::error::ApiError;
use crate::guard::Guard;
use crate::listener::{Admission, ConnectionLimits};
use crate::metrics::{Metrics, MetricsError};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use signatory_signer::service::SignService;
use std::future::Future;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tezos_crypto::PublicKey;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

pub use crate::socket::{SocketListener, UnixSocket};
pub use crate::utility::utility_router;

/// How the listeners are set up; built by the CLI from the configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The API listener.
    pub listen: SocketAddr,
    /// The utility listener (metrics, health); `None` disables it.
    pub utility_listen: Option<SocketAddr>,
    /// Octez's socket protocol over TCP (`None`: off).
    pub octez_tcp_listen: Option<SocketAddr>,
    /// Octez's socket protocol on this Unix socket path (`None`: off).
    pub octez_unix_socket: Option<PathBuf>,
    /// Serve the API under this prefix (`/signer`), or at the root when empty.
    pub base_path: String,
    /// `server.authorized_keys`: when set and not empty, every request must be
    /// authenticated by one of these keys (or one its key's policy names).
    pub authorized_keys: Option<Vec<PublicKey>>,
    /// The public keys of the clients named in key policies (`tezos.<pkh>.authorized_keys`);
    /// the policies hold only their hashes.
    pub per_key_authorized_keys: Vec<PublicKey>,
    /// Largest request body accepted (413 above). The largest operation is 32 KiB, 64 KiB
    /// as hex.
    pub body_limit: usize,
    /// Time allowed to read a request's body and answer it (408 after).
    pub request_timeout: Duration,
    /// Time allowed to send a request's header; the connection is closed after.
    pub header_read_timeout: Duration,
    /// Longest a write to a client may stay blocked (the client stopped reading); the
    /// connection is closed after.
    pub write_timeout: Duration,
    /// Connections served at once by the signing listeners together (the API and the socket
    /// listeners), and by the utility listener apart; more wait until one closes, so the
    /// signer never runs out of file descriptors for its own files.
    pub max_connections: usize,
    /// Whether `GET /known_keys` lists the keys (403 otherwise).
    pub allow_list_known_keys: bool,
    /// `server.allowed_origins`: the web origins (`https://wallet.example`) whose pages may
    /// call the API. Empty by default: a request carrying any `Origin` is refused (403).
    pub allowed_origins: Vec<String>,
}

impl ServerConfig {
    pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Half of the usual default of 1,024 open files for a service.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

    pub fn new(listen: SocketAddr) -> Self {
        ServerConfig {
            listen,
            utility_listen: None,
            octez_tcp_listen: None,
            octez_unix_socket: None,
            base_path: String::new(),
            authorized_keys: None,
            per_key_authorized_keys: Vec::new(),
            body_limit: Self::DEFAULT_BODY_LIMIT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            allow_list_known_keys: false,
            allowed_origins: Vec::new(),
        }
    }

    fn limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Some(self.header_read_timeout).filter(|d| !d.is_zero()),
            write_timeout: Some(self.write_timeout).filter(|d| !d.is_zero()),
            request_timeout: self.request_timeout,
            max_connections: self
                .max_connections
                .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            // A request admitted just before shutdown gets its whole time.
            drain: self.header_read_timeout + self.request_timeout + Duration::from_secs(1),
            body_limit: self.body_limit,
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
    #[error("cannot listen on the Unix socket {}: {source}", path.display())]
    BindUnix {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another process is listening on the Unix socket {} (is a signer already running?)", .0.display())]
    SocketInUse(PathBuf),
    #[error("{} exists and is not a socket; choose another `server.unix_socket` path", .0.display())]
    NotASocket(PathBuf),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// The bound sockets the signer serves on.
#[derive(Debug)]
pub struct Listeners {
    /// The HTTP API.
    pub api: TcpListener,
    /// Metrics and health.
    pub utility: Option<TcpListener>,
    /// Octez's socket protocol over TCP and on a Unix socket.
    pub octez: Vec<SocketListener>,
}

/// The shared state of every listener: the service, the authenticator built from
/// `cfg` and the keys' policies, and a fresh metrics registry.
pub fn app_state(cfg: &ServerConfig, service: Arc<SignService>) -> Result<AppState, ServerError> {
    let metrics = Metrics::new()?;
    let store = service.store();
    store.observe_io(metrics.store_io_observer(store.name()));
    // The keys served now and the enabled ones whose vault may open later: their
    // policies' clients are known to the authenticator from the start.
    let served = service.keys();
    let missing = service.missing_keys();
    let enabled = served
        .iter()
        .filter_map(|(pkh, entry)| entry.policy.as_ref().map(|policy| (*pkh, policy)))
        .chain(missing.iter().map(|(pkh, policy)| (*pkh, policy)));
    let mut policies = Vec::new();
    for (pkh, policy) in enabled {
        metrics.warm_up(&pkh);
        policies.push((pkh, policy.authorized_clients.as_ref()));
    }
    let auth = Authenticator::new(
        cfg.authorized_keys.clone(),
        &cfg.per_key_authorized_keys,
        policies,
    );
    for client in auth.unresolved_clients() {
        tracing::warn!(
            %client,
            "a key policy names this client but its public key is unknown: it cannot authenticate"
        );
    }
    let state = AppState::new(service.clone(), auth, metrics);
    Ok(if cfg.allow_list_known_keys {
        state.list_known_keys()
    } else {
        state
    })
}

/// The API routes, under `cfg.base_path`, with the request guard (origin, content type,
/// declared length), the body limit and the request timeout.
/// Trailing slashes are handled by [`api_app`].
pub fn api_router(cfg: &ServerConfig, state: AppState) -> Router {
    let routes = Router::new()
        .route("/keys/{pkh}", get(api::get_key).post(api::sign))
        .route("/authorized_keys", get(api::authorized_keys))
        .route("/known_keys", get(api::known_keys))
        .route("/bls_prove_possession/{pkh}", get(api::prove_possession))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(cfg.body_limit))
        .layer(axum::middleware::from_fn_with_state(
            cfg.request_timeout,
            request_timeout,
        ))
        .with_state(state);
    let prefix = cfg.base_path.trim_matches('/');
    let router = if prefix.is_empty() {
        routes
    } else {
        Router::new()
            .nest(&format!("/{prefix}"), routes)
            .fallback(api::not_found)
    };
    // Outermost, so that it sees every request (any path, any method) before anything
    // reads a body.
    router.layer(axum::middleware::from_fn_with_state(
        Guard::new(&cfg.allowed_origins, cfg.body_limit),
        guard::guard,
    ))
}

/// Answer 408 (in the Octez error shape) when reading the body and answering take longer
/// than `limit`. A signing pipeline already under way still finishes and is recorded.
async fn request_timeout(
    State(limit): State<Duration>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request was not read and answered within {} ms",
                limit.as_millis()
            ),
        )
        .into_response(),
    }
}

/// The API as served: [`api_router`] with trailing slashes tolerated (`/keys/tz1…/`).
pub fn api_app(cfg: &ServerConfig, state: AppState) -> NormalizePath<Router> {
    NormalizePathLayer::trim_trailing_slash().layer(api_router(cfg, state))
}

/// Bind `addr`. The IPv6 "every interface" address (`[::]`, what `:port` means) gets one
/// socket for IPv4 and IPv6 whatever the system's `bindv6only` default, as Go's listeners
/// (ECAD Signatory) do; on a host without IPv6 it falls back to `0.0.0.0`.
async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    let bind_error = |addr| move |source| ServerError::Bind { addr, source };
    if addr.ip() != IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
        return TcpListener::bind(addr).await.map_err(bind_error(addr));
    }
    match bind_dual_stack(addr) {
        Ok(listener) => Ok(listener),
        Err(e) if e.kind() == ErrorKind::AddrInUse || e.kind() == ErrorKind::PermissionDenied => {
            Err(bind_error(addr)(e))
        }
        Err(e) => {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            tracing::info!(error = %e, "no IPv6 on this host; listening on {v4}");
            TcpListener::bind(v4).await.map_err(bind_error(v4))
        }
    }
}

fn bind_dual_stack(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    // As tokio's own `bind`: a restarted signer can listen while old connections linger.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Bind every listener `cfg` names, then [`serve_listeners`].
pub async fn serve(
    cfg: ServerConfig,
    service: Arc<SignService>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let api = bind(cfg.listen).await?;
    let utility = match cfg.utility_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let mut octez = Vec::new();
    if let Some(addr) = cfg.octez_tcp_listen {
        octez.push(SocketListener::Tcp(bind(addr).await?));
    }
    if let Some(path) = &cfg.octez_unix_socket {
        octez.push(SocketListener::Unix(UnixSocket::bind(path)?));
    }
    let listeners = Listeners {
        api,
        utility,
        octez,
    };
    serve_listeners(cfg, listeners, service, shutdown).await
}

/// Run the listeners on sockets already bound, until `shutdown` resolves; then stop
/// accepting and let requests in flight finish.
pub async fn serve_listeners(
    cfg: ServerConfig,
    listeners: Listeners,
    service: Arc<SignService>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let Listeners {
        api,
        utility,
        octez,
    } = listeners;
    let state = app_state(&cfg, service)?;
    let limits = cfg.limits();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let api_addr = api.local_addr().ok();
    tracing::info!(
        addr = ?api_addr,
        base_path = %cfg.base_path,
        "API listener started"
    );
    // The listeners that sign share one connection limit, so together they never take
    // more file descriptors than `max_connections`; the utility listener has its own, so
    // health checks get through when signing clients fill theirs.
    let signing_slots = Arc::new(Semaphore::new(limits.max_connections));
    let admission = |name| Admission::sharing(name, limits.max_connections, &signing_slots);
    let api_task = listener::run(
        "api",
        api,
        api_app(&cfg, state.clone()),
        limits,
        admission("api"),
        stop_rx.clone(),
    );
    // Owned here: if this future is dropped, the socket listeners stop with it.
    let mut octez_tasks = JoinSet::new();
    for socket in octez {
        let name = match &socket {
            SocketListener::Tcp(l) => {
                tracing::info!(addr = ?l.local_addr().ok(), "Octez socket protocol listener (TCP) started");
                "octez-tcp"
            }
            SocketListener::Unix(u) => {
                tracing::info!(path = %u.path().display(), "Octez socket protocol listener (Unix) started");
                "octez-unix"
            }
        };
        let run = socket::run(
            name,
            socket,
            state.clone(),
            limits,
            admission(name),
            stop_rx.clone(),
        );
        octez_tasks.spawn(run);
    }
    let octez_done = async {
        while let Some(ended) = octez_tasks.join_next().await {
            if let Err(e) = ended {
                tracing::error!(error = %e, "an Octez socket listener failed");
            }
        }
    };
    let utility_task = async {
        if let Some(utility) = utility {
            tracing::info!(addr = ?utility.local_addr().ok(), "utility listener (metrics, health) started");
            let admission = Admission::new("utility", limits.max_connections);
            listener::run(
                "utility",
                utility,
                utility_router(state),
                limits,
                admission,
                stop_rx,
            )
            .await;
        }
    };
    let trigger = async move {
        shutdown.await;
        // Every listener holds a receiver until it stops, so this cannot fail while they run.
        let _ = stop_tx.send(true);
    };
    tokio::join!(trigger, api_task, utility_task, octez_done);
    Ok(())
}
