//! `write-config`: a signatory configuration that enables every key of a file vault (the
//! keys `signatory generate` wrote), with file watermarks under a base directory (or
//! in-memory ones, to measure what durability costs).

use crate::BenchError;
use clap::Args;
use serde::Deserialize;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tezos_crypto::{PublicKeyHash, SecretKey};

#[derive(Debug, Args)]
pub struct WriteConfigArgs {
    /// The file vault (JSON list of {"name", "value": `"unencrypted:<secret key>"`}).
    #[arg(long, required_unless_present = "pkhs_file")]
    vault_file: Option<PathBuf>,
    /// Instead of a file vault's keys, enable these addresses (one per line), held by the
    /// vault of `--vault-yaml` (a network vault's fake, say).
    #[arg(long, requires = "vault_yaml", conflicts_with = "vault_file")]
    pkhs_file: Option<PathBuf>,
    /// The signer's base directory (file watermarks live under it).
    #[arg(long)]
    base_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:6732")]
    address: String,
    #[arg(long, default_value = "127.0.0.1:9583")]
    utility_address: String,
    /// Where to write the configuration.
    #[arg(short, long)]
    output: PathBuf,
    /// The watermark store: `file` (durable, what the targets are measured with) or `mem`
    /// (nothing on disk, never for production: shows what durability costs).
    #[arg(long, value_enum, default_value_t = WatermarkDriver::File)]
    watermark_driver: WatermarkDriver,
    /// Instead of the file vault, this vault (YAML under `vaults:`, e.g. a `pkcs11` vault
    /// holding the same keys).
    #[arg(long)]
    vault_yaml: Option<PathBuf>,
    /// Enable only the keys of these curves (`tz1,tz3`); default all.
    #[arg(long, value_delimiter = ',')]
    curves: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatermarkDriver {
    File,
    Mem,
}

impl WatermarkDriver {
    fn name(self) -> &'static str {
        match self {
            WatermarkDriver::File => "file",
            WatermarkDriver::Mem => "mem",
        }
    }
}

#[derive(Debug, Deserialize)]
struct VaultEntry {
    value: String,
}

fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The secret keys of a file vault that `signatory generate` wrote (unencrypted only).
pub fn read_vault(path: &Path) -> Result<Vec<SecretKey>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    let entries: Vec<VaultEntry> = serde_json::from_str(&text)
        .map_err(|e| BenchError::Setup(format!("{} is not a file vault: {e}", path.display())))?;
    entries
        .iter()
        .map(|entry| {
            let secret = entry.value.strip_prefix("unencrypted:").ok_or_else(|| {
                BenchError::Setup(format!(
                    "{}: only unencrypted keys are supported by the benchmark",
                    path.display()
                ))
            })?;
            SecretKey::from_b58check(secret)
                .map_err(|e| BenchError::Setup(format!("{}: bad key: {e}", path.display())))
        })
        .collect()
}

/// Addresses, one per line.
fn read_pkhs(path: &Path) -> Result<Vec<PublicKeyHash>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            PublicKeyHash::from_b58check(line)
                .map_err(|e| BenchError::Setup(format!("{}: `{line}`: {e}", path.display())))
        })
        .collect()
}

pub fn write_config(args: &WriteConfigArgs) -> Result<(), BenchError> {
    let pkhs: Vec<PublicKeyHash> = match (&args.vault_file, &args.pkhs_file) {
        (Some(file), _) => read_vault(file)?
            .iter()
            .map(|key| key.public_key().hash())
            .collect(),
        (None, Some(list)) => read_pkhs(list)?,
        (None, None) => {
            return Err(BenchError::Setup(
                "give --vault-file or --pkhs-file".to_owned(),
            ))
        }
    };
    let pkhs: Vec<_> = pkhs
        .into_iter()
        .filter(|pkh| {
            args.curves.is_empty() || args.curves.iter().any(|c| c == pkh.curve().address_kind())
        })
        .collect();

    let mut y = String::new();
    let _ = writeln!(y, "base_dir: {}", quote(&args.base_dir.to_string_lossy()));
    let _ = writeln!(y, "server:");
    let _ = writeln!(y, "  address: {}", quote(&args.address));
    let _ = writeln!(y, "  utility_address: {}", quote(&args.utility_address));
    // The load generator finds the keys to use with `GET /known_keys`.
    let _ = writeln!(y, "  allow_list_known_keys: true");
    match &args.vault_yaml {
        Some(path) => {
            let vault = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
                context: format!("reading {}", path.display()),
                source,
            })?;
            let _ = writeln!(y, "vaults:\n{}", vault.trim_end());
        }
        None => {
            let file = args.vault_file.as_deref().unwrap_or(Path::new(""));
            let _ = writeln!(y, "vaults:\n  local:\n    driver: file\n    config:");
            let _ = writeln!(y, "      file: {}", quote(&file.to_string_lossy()));
        }
    }
    let _ = writeln!(y, "watermark:\n  driver: {}", args.watermark_driver.name());
    let _ = writeln!(y, "tezos:");
    for pkh in &pkhs {
        // No policy: block, preattestation and attestation.
        let _ = writeln!(y, "  {pkh}:");
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&args.output)
        .map_err(|source| BenchError::Io {
            context: format!("creating {}", args.output.display()),
            source,
        })?;
    f.write_all(y.as_bytes()).map_err(|source| BenchError::Io {
        context: format!("writing {}", args.output.display()),
        source,
    })?;
    eprintln!(
        "wrote {} enabling {} keys",
        args.output.display(),
        pkhs.len()
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tezos_crypto::Curve;

    fn written(dir: &std::path::Path, driver: WatermarkDriver) -> signatory_config::Config {
        let key = SecretKey::generate(Curve::Ed25519);
        let vault = dir.join("secret.json");
        let entry = serde_json::json!([{
            "name": "k",
            "value": format!("unencrypted:{}", key.to_b58check().as_str()),
        }]);
        std::fs::write(&vault, entry.to_string()).unwrap();
        let output = dir.join(format!("signatory-{}.yaml", driver.name()));
        write_config(&WriteConfigArgs {
            vault_file: Some(vault),
            pkhs_file: None,
            base_dir: dir.join("base"),
            address: "127.0.0.1:6732".to_string(),
            utility_address: "127.0.0.1:9583".to_string(),
            output: output.clone(),
            watermark_driver: driver,
            vault_yaml: None,
            curves: Vec::new(),
        })
        .unwrap();
        let config = signatory_config::Config::load_with_env(&output, &|_| None).unwrap();
        assert!(config.tezos.contains_key(&key.public_key().hash()));
        assert!(config.server.allow_list_known_keys);
        config
    }

    #[test]
    fn the_written_configuration_names_the_chosen_watermark_store() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            written(dir.path(), WatermarkDriver::File).watermark.driver,
            "file"
        );
        assert_eq!(
            written(dir.path(), WatermarkDriver::Mem).watermark.driver,
            "mem"
        );
    }
}
