//! `signatory serve`: assemble the signer from the configuration and run it until SIGINT or
//! SIGTERM.
//!
//! Order of the start, each step failing with a message before the next:
//! configuration → watermark store (first: a missing store is the most common first-run
//! mistake, and it must be reported before any password is asked) → vaults → their keys
//! (public keys fetched once) → policies → service → listeners.

use crate::assemble::{list_vault_keys, open_vaults, require_all_enabled};
use crate::error::CliError;
use crate::options::GlobalOptions;
use crate::watermark_store::StoreChoice;
use signatory_config::Config;
use signatory_signer::service::SignService;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub fn run(_args: &ServeArgs, opts: &GlobalOptions) -> Result<(), CliError> {
    let config = opts.load_config()?;
    for warning in &config.warnings {
        tracing::warn!("{}: {warning}", config.origin);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("signatory")
        .build()
        .map_err(CliError::Runtime)?;
    let init_command = format!(
        "signatory watermark init{}{}",
        opts.config_flag(),
        opts.base_dir_flag()
    );
    runtime.block_on(async move {
        let service = Arc::new(assemble(&config, &init_command).await?);
        run_server(&config, service).await
    })
}

/// Build the signing service the configuration describes.
pub async fn assemble(config: &Config, init_command: &str) -> Result<SignService, CliError> {
    let choice = StoreChoice::from_config(config)?;
    let init_command = init_command.to_owned();
    let store = tokio::task::spawn_blocking(move || choice.open(&init_command))
        .await
        .map_err(|e| CliError::Server(format!("opening the watermark store: {e}")))??;
    let vaults = open_vaults(config).await?;
    let found = list_vault_keys(&vaults).await?;
    let keys = require_all_enabled(config, &found)?;
    let service = SignService::new(keys, store);
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
    Ok(service)
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

async fn run_server(_config: &Config, _service: Arc<SignService>) -> Result<(), CliError> {
    Err(CliError::Server(
        "the HTTP server is not part of this build yet".to_owned(),
    ))
}
