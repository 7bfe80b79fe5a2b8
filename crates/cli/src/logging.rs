//! Logs on standard error, as text or JSON lines. Nothing logged carries key material:
//! vaults, stores and the service log key hashes, vault names and paths only.

use crate::error::CliError;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `filter` is a level or a tracing filter directive.
pub fn init(filter: &str, json: bool) -> Result<(), CliError> {
    let filter = EnvFilter::try_new(filter).map_err(|e| {
        CliError::Usage(format!(
            "--log {filter:?} is not a log level or filter (try `info` or `debug`): {e}"
        ))
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into files or journals.
        .with_ansi(std::io::stderr().is_terminal());
    // A second installation (never happens in the binary) is harmless: keep the first.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_target(false).try_init()
    };
    Ok(())
}
