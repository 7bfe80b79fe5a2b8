//! `signatory config check`: load and validate a configuration without starting anything.

use crate::error::CliError;
use crate::options::GlobalOptions;
use crate::watermark_store::StoreChoice;
use signatory_config::Config;
use signatory_vaults::EnvPasswords;
use std::fmt::Write as _;

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print a summary.
    #[command(
        long_about = "Load the configuration, validate it, print its warnings and a \
        summary: listeners, authentication, the watermark store, the vaults and every key's \
        policy. Then check what `serve` needs on disk before it asks for any password: the \
        watermark store (read without its lock, so a running signer is not disturbed) and \
        each file vault's key file (present, private to its owner). Then open the vaults as \
        `serve` does (a password may be asked, as `serve` would) and make the same checks: \
        some vault is configured, and every key under `tezos:` is held by one. Exits \
        non-zero, naming the file and what is wrong, if the configuration is invalid or \
        `serve` would not start.\n\n\
        Example:\n  signatory config check -c /etc/signatory.yaml"
    )]
    Check,
}

pub fn run(
    command: &ConfigCommand,
    opts: &GlobalOptions,
    config: Config,
    passwords: &EnvPasswords,
) -> Result<(), CliError> {
    match command {
        ConfigCommand::Check => {
            check_drivers(&config)?;
            let readiness = Readiness::check(&config, &opts.store_flags());
            print!("{}", summary(&config, &readiness));
            readiness.into_result(&config)?;
            // The vaults are opened as `serve` opens them, through the same checks.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(CliError::Runtime)?;
            let unavailable = runtime
                .block_on(crate::assemble::open_and_check_vaults(&config, passwords))?
                .unavailable;
            // `serve` would start without these vaults: a check must not pass.
            if unavailable.is_empty() {
                return Ok(());
            }
            let problems: Vec<String> = unavailable
                .iter()
                .map(|(name, reason)| format!("vault `{name}` is unavailable: {reason}"))
                .collect();
            Err(CliError::NotReady {
                config: config.origin.clone(),
                problems: problems.join("\n  - "),
            })
        }
    }
}

/// What `serve` would find before asking for any password: the watermark store, and what
/// each vault's driver can check before opening it (a key file present and private …).
#[derive(Debug)]
pub struct Readiness {
    /// The file store's watermark count, `None` for the memory store.
    store: Result<Option<usize>, String>,
    /// Per vault whose driver checks something: what it checked, or why `serve` would
    /// refuse it.
    vaults: Vec<(String, Result<String, String>)>,
}

impl Readiness {
    fn check(config: &Config, store_flags: &str) -> Readiness {
        let store = match StoreChoice::from_config(config) {
            Ok(StoreChoice::File { base_dir }) => {
                crate::watermark_store::check_file_store(&base_dir, store_flags)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e.to_string()),
        };
        let vaults = config
            .vaults
            .values()
            .filter_map(|vault| {
                let checked = match signatory_vaults::driver(&vault.name, &vault.driver) {
                    Ok(driver) => driver.preflight(&vault.name, &vault.config)?,
                    Err(e) => Err(e),
                };
                Some((vault.name.clone(), checked.map_err(|e| e.to_string())))
            })
            .collect();
        Readiness { store, vaults }
    }

    fn problems(&self) -> Vec<&str> {
        let store = self.store.as_ref().err().map(String::as_str);
        let vaults = self
            .vaults
            .iter()
            .filter_map(|(_, checked)| checked.as_ref().err().map(String::as_str));
        store.into_iter().chain(vaults).collect()
    }

    fn into_result(self, config: &Config) -> Result<(), CliError> {
        let problems: Vec<String> = self.problems().into_iter().map(str::to_owned).collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CliError::NotReady {
                config: config.origin.clone(),
                problems: problems.join("\n  - "),
            })
        }
    }
}

/// What the configuration loader leaves to the drivers and can be checked without I/O:
/// the store's and each vault's driver and settings.
fn check_drivers(config: &Config) -> Result<(), CliError> {
    StoreChoice::from_config(config)?;
    for vault in config.vaults.values() {
        signatory_vaults::driver(&vault.name, &vault.driver)
            .and_then(|driver| driver.check_settings(&vault.name, &vault.config))
            .map_err(CliError::vault_open(&config.origin))?;
    }
    Ok(())
}

/// The report `config check` prints.
pub fn summary(config: &Config, readiness: &Readiness) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", config.origin);
    for warning in &config.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    for warning in crate::assemble::start_warnings(config) {
        let _ = writeln!(out, "warning: {warning}");
    }
    let _ = writeln!(out, "base_dir: {}", config.base_dir.display());
    let _ = writeln!(
        out,
        "server: API on {}, metrics and health on {}",
        config.server.address, config.server.utility_address
    );
    if let Some(tcp) = &config.server.tcp_address {
        let _ = writeln!(out, "server: Octez socket protocol on tcp {tcp}");
    }
    if let Some(path) = &config.server.unix_socket {
        let _ = writeln!(
            out,
            "server: Octez socket protocol on unix {}",
            path.display()
        );
    }
    let restricted = config
        .tezos
        .values()
        .filter(|policy| policy.authorized_keys.is_some())
        .count();
    let _ = match &config.server.authorized_keys {
        Some(keys) if !keys.is_empty() => writeln!(
            out,
            "authentication: required for every request ({} authorized client key(s))",
            keys.len()
        ),
        _ if restricted > 0 => writeln!(
            out,
            "authentication: required for the {restricted} key(s) whose policy names clients, \
             not for the others"
        ),
        _ => writeln!(out, "authentication: not required"),
    };
    let store = match StoreChoice::from_config(config) {
        Ok(StoreChoice::File { base_dir }) => format!(
            "file, in {}",
            signatory_stores::FileStore::store_dir(&base_dir).display()
        ),
        Ok(StoreChoice::Mem) => "mem (memory only: forgotten at every restart)".to_owned(),
        Err(e) => e.to_string(),
    };
    let state = match &readiness.store {
        Ok(Some(count)) => format!(" ({count} watermarks)"),
        Ok(None) => String::new(),
        Err(_) => " (cannot be opened: see below)".to_owned(),
    };
    let _ = writeln!(out, "watermark store: {store}{state}");
    let _ = writeln!(out, "vaults ({}):", config.vaults.len());
    for vault in config.vaults.values() {
        let checked = readiness
            .vaults
            .iter()
            .find(|(name, _)| name == &vault.name)
            .map(|(_, checked)| match checked {
                Ok(what) => format!(", {what}"),
                Err(_) => ", not ready: see below".to_owned(),
            })
            .unwrap_or_default();
        let _ = writeln!(out, "  {}: driver {}{checked}", vault.name, vault.driver);
    }
    let _ = writeln!(out, "keys ({}):", config.tezos.len());
    for (pkh, policy) in &config.tezos {
        let policy = crate::assemble::key_policy(policy);
        let allows = policy.to_string();
        let _ = writeln!(
            out,
            "  {pkh}: {}{}",
            if allows.is_empty() {
                "allows nothing"
            } else {
                &allows
            },
            if policy.log_payloads {
                " (logs payloads)"
            } else {
                ""
            }
        );
    }
    out
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

    #[test]
    fn the_summary_names_keys_policies_vaults_and_the_store() {
        let yaml = "base_dir: /srv/signer\n\
            server:\n  address: 127.0.0.1:6732\n  unix_socket: /run/s.sock\n\
            vaults:\n  local:\n    driver: file\n    config: {file: /srv/secret.json}\n\
            tezos:\n  tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv:\n  \
            tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD:\n    allow:\n      generic: [transaction]\n";
        let config = Config::parse(yaml, "s.yaml", &|_| None).unwrap();
        check_drivers(&config).unwrap();
        let readiness = Readiness::check(&config, " -c s.yaml");
        let text = summary(&config, &readiness);
        assert!(text.starts_with("s.yaml: OK\n"), "{text}");
        assert!(text.contains("API on 127.0.0.1:6732"), "{text}");
        assert!(
            text.contains("Octez socket protocol on unix /run/s.sock"),
            "{text}"
        );
        assert!(!text.contains("on tcp"), "{text}");
        assert!(
            text.contains(
                "watermark store: file, in /srv/signer/watermarks (cannot be opened: see below)"
            ),
            "{text}"
        );
        assert!(
            text.contains("  local: driver file, not ready: see below"),
            "{text}"
        );
        // Neither exists here: both are named in the error.
        let problems = readiness.into_result(&config).unwrap_err().to_string();
        assert!(
            problems.contains("signatory watermark init -c s.yaml")
                && problems.contains("/srv/secret.json"),
            "{problems}"
        );
        assert!(
            text.contains(
                "  tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv: attestation,block,preattestation"
            ),
            "{text}"
        );
        assert!(
            text.contains("  tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD: generic generic=[transaction]"),
            "{text}"
        );
    }

    #[test]
    fn unknown_drivers_fail_the_check() {
        let yaml = "vaults:\n  hsm:\n    driver: nosuch\n";
        let config = Config::parse(yaml, "s.yaml", &|_| None).unwrap();
        let e = check_drivers(&config).unwrap_err().to_string();
        assert!(e.contains("unknown driver `nosuch`"), "{e}");
        let yaml = "vaults:\n  local:\n    driver: file\n    config: {path: x}\n";
        let config = Config::parse(yaml, "s.yaml", &|_| None).unwrap();
        let e = check_drivers(&config).unwrap_err().to_string();
        assert!(e.contains("vaults.local.config"), "{e}");
    }
}
