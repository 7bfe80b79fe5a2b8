//! `signatory config check`: load and validate a configuration without starting anything.

use crate::error::CliError;
use crate::options::GlobalOptions;
use crate::watermark_store::StoreChoice;
use signatory_config::Config;
use signatory_vaults::FileVaultOptions;
use std::fmt::Write as _;

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print a summary.
    #[command(
        long_about = "Load the configuration, validate it, print its warnings and a \
        summary: listeners, authentication, the watermark store, the vaults and every key's \
        policy. Vaults are not opened (no password is asked); `signatory list` opens them. \
        Exits non-zero, naming the file and what is wrong, if the configuration is invalid.\n\n\
        Example:\n  signatory config check -c /etc/signatory.yaml"
    )]
    Check,
}

pub fn run(command: &ConfigCommand, opts: &GlobalOptions) -> Result<(), CliError> {
    match command {
        ConfigCommand::Check => {
            let config = opts.load_config()?;
            check_drivers(&config)?;
            print!("{}", summary(&config));
            Ok(())
        }
    }
}

/// What the configuration loader leaves to the drivers and can be checked without I/O:
/// driver names, and the `file` vault's settings.
fn check_drivers(config: &Config) -> Result<(), CliError> {
    StoreChoice::from_config(config)?;
    for vault in config.vaults.values() {
        if !signatory_vaults::DRIVERS.contains(&vault.driver.as_str()) {
            return Err(CliError::vault_open(&config.origin)(
                signatory_vaults::OpenError::UnknownDriver {
                    vault: vault.name.clone(),
                    driver: vault.driver.clone(),
                    known: signatory_vaults::DRIVERS.join(", "),
                },
            ));
        }
        if vault.driver == "file" {
            FileVaultOptions::from_settings(&vault.name, &vault.config)
                .map_err(CliError::vault_open(&config.origin))?;
        }
    }
    Ok(())
}

/// The report `config check` prints.
pub fn summary(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", config.origin);
    for warning in &config.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let _ = writeln!(out, "base_dir: {}", config.base_dir.display());
    let _ = writeln!(
        out,
        "server: API on {}, metrics and health on {}",
        config.server.address, config.server.utility_address
    );
    let _ = match &config.server.authorized_keys {
        Some(keys) => writeln!(
            out,
            "authentication: required for every request ({} authorized client key(s))",
            keys.len()
        ),
        None => writeln!(out, "authentication: not required"),
    };
    let store = match StoreChoice::from_config(config) {
        Ok(StoreChoice::File { base_dir }) => format!(
            "file, in {}",
            signatory_stores::FileStore::store_dir(&base_dir).display()
        ),
        Ok(StoreChoice::Mem) => "mem (memory only: forgotten at every restart)".to_owned(),
        Err(e) => e.to_string(),
    };
    let _ = writeln!(out, "watermark store: {store}");
    let _ = writeln!(out, "vaults ({}):", config.vaults.len());
    for vault in config.vaults.values() {
        let _ = writeln!(out, "  {}: driver {}", vault.name, vault.driver);
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
            server:\n  address: 127.0.0.1:6732\n\
            vaults:\n  local:\n    driver: file\n    config: {file: /srv/secret.json}\n\
            tezos:\n  tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv:\n  \
            tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD:\n    allow:\n      generic: [transaction]\n";
        let config = Config::parse(yaml, "s.yaml", &|_| None).unwrap();
        check_drivers(&config).unwrap();
        let text = summary(&config);
        assert!(text.starts_with("s.yaml: OK\n"), "{text}");
        assert!(text.contains("API on 127.0.0.1:6732"), "{text}");
        assert!(
            text.contains("watermark store: file, in /srv/signer/watermarks"),
            "{text}"
        );
        assert!(text.contains("  local: driver file"), "{text}");
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
        let yaml = "vaults:\n  hsm:\n    driver: pkcs11\n";
        let config = Config::parse(yaml, "s.yaml", &|_| None).unwrap();
        let e = check_drivers(&config).unwrap_err().to_string();
        assert!(e.contains("unknown driver `pkcs11`"), "{e}");
    }
}
