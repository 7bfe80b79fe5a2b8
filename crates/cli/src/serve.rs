//! `signatory serve`: assemble the signer from the configuration and run it until SIGINT or
//! SIGTERM.
//!
//! Order of the start, each step failing with a message before the next:
//! configuration → watermark store (first: a missing store is the most common first-run
//! mistake, and it must be reported before any password is asked) → vaults → their keys
//! (public keys fetched once) → policies → service → listeners.

use crate::assemble::open_and_check_vaults;
use crate::error::CliError;
use crate::options::GlobalOptions;
use crate::watermark_store::StoreChoice;
use signatory_config::{Config, ListenAddress, ListenHost};
use signatory_server::ServerConfig;
use signatory_signer::service::SignService;
use signatory_signer::vault::Vault;
use signatory_vaults::EnvPasswords;
use std::net::SocketAddr;
use std::sync::Arc;
use tezos_crypto::PublicKey;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// API listen address; overrides `server.address` (`:6732` is every interface).
    #[arg(long, value_name = "HOST:PORT", value_parser = ListenAddress::parse)]
    pub address: Option<ListenAddress>,
    /// Metrics and health listen address; overrides `server.utility_address`.
    #[arg(long, value_name = "HOST:PORT", value_parser = ListenAddress::parse)]
    pub utility_address: Option<ListenAddress>,
}

/// Run the signer with the configuration loaded and the passwords taken from the
/// environment before any thread started.
pub fn run(
    args: &ServeArgs,
    opts: &GlobalOptions,
    mut config: Config,
    passwords: EnvPasswords,
) -> Result<(), CliError> {
    if let Some(address) = &args.address {
        config.server.address.clone_from(address);
    }
    if let Some(address) = &args.utility_address {
        config.server.utility_address.clone_from(address);
    }
    for warning in &config.warnings {
        tracing::warn!("{}: {warning}", config.origin);
    }
    for warning in crate::assemble::start_warnings(&config) {
        tracing::warn!("{}: {warning}", config.origin);
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config.origin,
        base_dir = %config.base_dir.display(),
        "starting signatory"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("signatory")
        .build()
        .map_err(CliError::Runtime)?;
    let store_flags = opts.store_flags();
    runtime.block_on(async move {
        let (service, opened) = assemble(&config, &store_flags, &passwords).await?;
        let service = Arc::new(service);
        // Vaults unavailable at start are tried again in the background; their keys join
        // the service when they open.
        let reopening = (!service.unavailable_vaults().is_empty()).then(|| {
            tokio::spawn(crate::assemble::reopen_unavailable(
                config.clone(),
                Arc::clone(&service),
                passwords,
                opened,
                crate::assemble::REOPEN_INTERVAL,
            ))
        });
        let served = run_server(&config, service).await;
        if let Some(task) = reopening {
            task.abort();
        }
        served
    })
}

/// Build the signing service the configuration describes, and give the vaults that
/// opened. `store_flags` are the `-c` and `--base-dir` flags to repeat in a command
/// suggested when the store is missing.
pub async fn assemble(
    config: &Config,
    store_flags: &str,
    passwords: &EnvPasswords,
) -> Result<(SignService, Vec<Arc<dyn Vault>>), CliError> {
    let choice = StoreChoice::from_config(config)?;
    let store_flags = store_flags.to_owned();
    let store = tokio::task::spawn_blocking(move || choice.open(&store_flags))
        .await
        .map_err(|e| CliError::Server(format!("opening the watermark store: {e}")))??;
    let opened = open_and_check_vaults(config, passwords).await?;
    let service = SignService::new(opened.keys, store)
        .with_protocol(config.tezos_protocol)
        .with_unavailable_vaults(opened.unavailable)
        .with_missing_keys(
            opened
                .missing
                .iter()
                .filter_map(|pkh| {
                    let policy = config.tezos.get(pkh)?;
                    Some((*pkh, crate::assemble::key_policy(policy)))
                })
                .collect(),
        );
    for (pkh, key) in service.keys() {
        match &key.policy {
            Some(policy) => {
                tracing::info!(%pkh, vault = key.vault.name(), allow = %policy, "key enabled")
            }
            None => tracing::info!(
                %pkh,
                vault = key.vault.name(),
                "key served but not enabled (not under `tezos:`)"
            ),
        }
    }
    Ok((service, opened.vaults))
}

/// Resolves when the process is asked to stop (SIGINT or SIGTERM).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); stop the signer with SIGINT");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stop requested; finishing requests in flight");
}

/// The listeners' settings from the configuration; host names are resolved here.
pub async fn server_config(config: &Config) -> Result<ServerConfig, CliError> {
    let mut server = ServerConfig::new(resolve(&config.server.address, "server.address").await?);
    server.utility_listen =
        Some(resolve(&config.server.utility_address, "server.utility_address").await?);
    if let Some(tcp) = &config.server.tcp_address {
        server.octez_tcp_listen = Some(resolve(tcp, "server.tcp_address").await?);
    }
    server
        .octez_unix_socket
        .clone_from(&config.server.unix_socket);
    server
        .authorized_keys
        .clone_from(&config.server.authorized_keys);
    // Every client key any policy names, so the authenticator knows them all.
    let mut per_key: Vec<PublicKey> = Vec::new();
    for key in config
        .tezos
        .values()
        .filter_map(|p| p.authorized_keys.as_ref())
        .flatten()
    {
        if !per_key.contains(key) {
            per_key.push(key.clone());
        }
    }
    server.per_key_authorized_keys = per_key;
    server.base_path.clone_from(&config.server.base_path);
    server.allow_list_known_keys = config.server.allow_list_known_keys;
    server
        .allowed_origins
        .clone_from(&config.server.allowed_origins);
    let limits = &config.server.limits;
    if let Some(bytes) = limits.max_body_bytes {
        server.body_limit = bytes;
    }
    if let Some(count) = limits.max_connections {
        server.max_connections = count;
    }
    if let Some(timeout) = limits.request_timeout {
        server.request_timeout = timeout;
    }
    if let Some(timeout) = limits.header_read_timeout {
        server.header_read_timeout = timeout;
    }
    if let Some(timeout) = limits.write_timeout {
        server.write_timeout = timeout;
    }
    Ok(server)
}

async fn resolve(address: &ListenAddress, key_path: &str) -> Result<SocketAddr, CliError> {
    if let Some(addr) = address.socket_addr() {
        return Ok(addr);
    }
    let ListenHost::Name(host) = &address.host else {
        return Err(CliError::Usage(format!(
            "`{key_path}`: cannot listen on {address}"
        )));
    };
    // IPv4 first, as Go's listeners (ECAD Signatory) pick: `localhost` often resolves to
    // `::1` first, and clients that connect to 127.0.0.1 would find nothing there.
    let resolved = tokio::net::lookup_host((host.as_str(), address.port))
        .await
        .map_err(|e| CliError::Usage(format!("`{key_path}`: cannot resolve {address}: {e}")))?
        .min_by_key(|addr| !addr.is_ipv4());
    resolved
        .ok_or_else(|| CliError::Usage(format!("`{key_path}`: {address} resolves to no address")))
}

/// The first signing listener (the API, then the socket protocol's TCP one) that listens on
/// every interface.
fn listens_everywhere(config: &Config) -> Option<&ListenAddress> {
    std::iter::once(&config.server.address)
        .chain(&config.server.tcp_address)
        .find(|address| address.host == ListenHost::All)
}

async fn run_server(config: &Config, service: Arc<SignService>) -> Result<(), CliError> {
    let server = server_config(config).await?;
    match (&server.authorized_keys, listens_everywhere(config)) {
        (Some(keys), _) => {
            tracing::info!(clients = keys.len(), "every request must be authenticated")
        }
        (None, Some(address)) => tracing::warn!(
            %address,
            "the signer listens on every interface and needs no authentication: anyone who \
             can reach this port can ask for signatures (set server.authorized_keys, or listen \
             on 127.0.0.1)"
        ),
        (None, None) => {
            tracing::info!("requests need no authentication (server.authorized_keys is not set)")
        }
    }
    signatory_server::serve(server, service, shutdown_signal())
        .await
        .map_err(|e| CliError::Server(e.to_string()))?;
    tracing::info!("signer stopped");
    Ok(())
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tezos_crypto::{Curve, SecretKey};

    #[tokio::test]
    async fn listeners_and_client_keys_come_from_the_configuration() {
        let global = SecretKey::generate(Curve::Ed25519).public_key();
        let per_key = SecretKey::generate(Curve::P256).public_key();
        let yaml = format!(
            "server:\n  address: :7000\n  utility_address: 127.0.0.1:7001\n  \
             authorized_keys: [{global}]\n\
             tezos:\n  tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv:\n    authorized_keys: [{per_key}]\n  \
             tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD:\n    authorized_keys: [{per_key}]\n",
            global = global.to_b58check(),
            per_key = per_key.to_b58check()
        );
        let config = Config::parse(&yaml, "s.yaml", &|_| None).unwrap();
        let server = server_config(&config).await.unwrap();
        assert_eq!(server.listen, "[::]:7000".parse().unwrap());
        assert_eq!(
            server.utility_listen,
            Some("127.0.0.1:7001".parse().unwrap())
        );
        assert_eq!(server.authorized_keys, Some(vec![global]));
        // Named by two policies, listed once.
        assert_eq!(server.per_key_authorized_keys, vec![per_key]);
        // Nothing else set: the server's defaults.
        assert!(!server.allow_list_known_keys);
        assert_eq!(server.octez_tcp_listen, None);
        assert_eq!(server.octez_unix_socket, None);
        assert_eq!(server.body_limit, ServerConfig::DEFAULT_BODY_LIMIT);
        assert_eq!(
            server.max_connections,
            ServerConfig::DEFAULT_MAX_CONNECTIONS
        );
        assert_eq!(
            server.request_timeout,
            ServerConfig::DEFAULT_REQUEST_TIMEOUT
        );
        assert_eq!(
            server.header_read_timeout,
            ServerConfig::DEFAULT_HEADER_READ_TIMEOUT
        );
        assert_eq!(server.write_timeout, ServerConfig::DEFAULT_WRITE_TIMEOUT);
    }

    #[test]
    fn listening_everywhere_is_found_on_the_api_or_the_tcp_socket() {
        let everywhere = |yaml: &str| {
            let config = Config::parse(yaml, "s.yaml", &|_| None).unwrap();
            listens_everywhere(&config).map(ToString::to_string)
        };
        assert_eq!(everywhere("server:\n  address: 127.0.0.1:6732\n"), None);
        assert_eq!(
            everywhere("server:\n  address: 127.0.0.1:6732\n  tcp_address: :7732\n"),
            Some(":7732".to_owned())
        );
        assert_eq!(
            everywhere("server:\n  tcp_address: 127.0.0.1:7732\n"),
            Some(":6732".to_owned())
        );
    }

    #[tokio::test]
    async fn octez_socket_listeners_come_from_the_configuration() {
        let yaml = "server:\n  tcp_address: 127.0.0.1:7732\n  unix_socket: /run/s.sock\n";
        let config = Config::parse(yaml, "s.yaml", &|_| None).unwrap();
        let server = server_config(&config).await.unwrap();
        assert_eq!(
            server.octez_tcp_listen,
            Some("127.0.0.1:7732".parse().unwrap())
        );
        assert_eq!(
            server.octez_unix_socket,
            Some(std::path::PathBuf::from("/run/s.sock"))
        );
    }

    #[tokio::test]
    async fn limits_and_known_keys_listing_come_from_the_configuration() {
        let yaml = "server:\n  allow_list_known_keys: true\n  limits:\n    \
                    max_body_bytes: 70000\n    max_connections: 8\n    request_timeout: 5s\n    \
                    header_read_timeout: 3s\n    write_timeout: 2s\n";
        let config = Config::parse(yaml, "s.yaml", &|_| None).unwrap();
        let server = server_config(&config).await.unwrap();
        assert!(server.allow_list_known_keys);
        assert_eq!(server.body_limit, 70_000);
        assert_eq!(server.max_connections, 8);
        assert_eq!(server.request_timeout, Duration::from_secs(5));
        assert_eq!(server.header_read_timeout, Duration::from_secs(3));
        assert_eq!(server.write_timeout, Duration::from_secs(2));
    }

    #[tokio::test]
    async fn host_names_are_resolved() {
        let address = ListenAddress::parse("localhost:7002").unwrap();
        let addr = resolve(&address, "server.address").await.unwrap();
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(addr.port(), 7002);
    }
}
