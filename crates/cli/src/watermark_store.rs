//! Choosing and opening the watermark store the configuration names (`watermark.driver`).

use crate::error::CliError;
use signatory_config::{Config, DriverSettings, WatermarkConfig};
use signatory_signer::store::{StoreError, WatermarkStore};
use signatory_stores::interchange::find_foreign_watermarks;
use signatory_stores::{FileStore, MemStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The watermark drivers this build can open.
pub const STORE_DRIVERS: [&str; 2] = ["file", "mem"];

/// A watermark driver, checked against what this build has.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreChoice {
    /// The durable file store under this base directory.
    File { base_dir: PathBuf },
    /// Memory only: everything is forgotten when the process stops.
    Mem,
}

impl StoreChoice {
    /// Check the configuration's `watermark` section.
    pub fn from_config(config: &Config) -> Result<Self, CliError> {
        Self::from_parts(&config.watermark, &config.base_dir, &config.origin)
    }

    pub fn from_parts(
        watermark: &WatermarkConfig,
        base_dir: &Path,
        origin: &str,
    ) -> Result<Self, CliError> {
        let choice = match watermark.driver.as_str() {
            "file" => StoreChoice::File {
                base_dir: base_dir.to_path_buf(),
            },
            "mem" => StoreChoice::Mem,
            other => {
                return Err(CliError::UnknownStoreDriver {
                    driver: other.to_owned(),
                    config: origin.to_owned(),
                    known: STORE_DRIVERS.join(", "),
                })
            }
        };
        // Settings a driver would silently ignore are refused: an operator who wrote a
        // path there expects the watermarks to be in it.
        if !matches!(watermark.config, DriverSettings::Null) {
            return Err(CliError::StoreSettings {
                driver: watermark.driver.clone(),
                config: origin.to_owned(),
                why: match choice {
                    StoreChoice::File { .. } => "; its files live under `base_dir` (or --base-dir)",
                    StoreChoice::Mem => "",
                },
            });
        }
        Ok(choice)
    }

    pub fn driver(&self) -> &'static str {
        match self {
            StoreChoice::File { .. } => "file",
            StoreChoice::Mem => "mem",
        }
    }

    /// Open the store. Blocking (the file store reads and replays its files): call it off
    /// the async runtime's workers. `store_flags` (`-c`, `--base-dir` as given) go into the
    /// command suggested when the file store is missing.
    pub fn open(&self, store_flags: &str) -> Result<Arc<dyn WatermarkStore>, CliError> {
        match self {
            StoreChoice::File { base_dir } => {
                let store = open_file_store(base_dir, store_flags)?;
                let report = store.open_report();
                if let Some(bytes) = report.torn_tail_bytes {
                    tracing::warn!(
                        dir = %store.dir().display(),
                        bytes,
                        "dropped the torn end of the watermark log, past what it records as \
                         acknowledged (a write interrupted by a crash)"
                    );
                }
                if let Some(version) = report.migrated_from_log_version {
                    tracing::warn!(
                        dir = %store.dir().display(),
                        from = version,
                        "migrated the watermark log to the format that records what was \
                         acknowledged; records lost before this start cannot be detected, so \
                         if the store was restored or damaged, fence the keys (see \
                         `signatory watermark set` and `import`)"
                    );
                }
                tracing::info!(
                    dir = %store.dir().display(),
                    keys = report.keys,
                    records_replayed = report.records_replayed,
                    "watermark store opened"
                );
                Ok(Arc::new(store))
            }
            StoreChoice::Mem => {
                tracing::warn!(
                    "watermarks are kept in memory only (`watermark.driver: mem`): a restart \
                     forgets them, so never use this for a key that bakes on a real network"
                );
                Ok(Arc::new(MemStore::new()))
            }
        }
    }
}

/// Open the file store under `base_dir`; a missing store names the command that creates
/// it: `init`, or `import` when another signer's watermarks are in `base_dir`, so a signer
/// replaced in place is never followed by an empty store.
pub fn open_file_store(base_dir: &Path, store_flags: &str) -> Result<FileStore, CliError> {
    FileStore::open(base_dir).map_err(|source| store_error_at_start(base_dir, store_flags, source))
}

/// How many watermarks the file store under `base_dir` holds, read as `serve` would replay
/// them but without its lock and without changing the disk (a signer may be running). A
/// missing or unreadable store is the error `serve` would stop with.
pub fn check_file_store(base_dir: &Path, store_flags: &str) -> Result<usize, CliError> {
    FileStore::read_committed(base_dir)
        .map(|watermarks| watermarks.len())
        .map_err(|source| store_error_at_start(base_dir, store_flags, source))
}

fn store_error_at_start(base_dir: &Path, store_flags: &str, source: StoreError) -> CliError {
    match source {
        StoreError::NotInitialised { path, hint } => {
            let foreign = find_foreign_watermarks(base_dir);
            if foreign.is_empty() {
                return CliError::StoreAtStart {
                    source: StoreError::NotInitialised { path, hint },
                    hint: format!(
                        "\n  for this configuration, run: signatory watermark init{store_flags}"
                    ),
                };
            }
            CliError::StoreAtStart {
                source: StoreError::NotInitialised {
                    path,
                    hint: format!(
                        "{} holds another signer's watermarks ({}); import them, which creates \
                         the store, so these keys never sign below them",
                        base_dir.display(),
                        list_paths(&foreign)
                    ),
                },
                hint: format!(
                    "\n  for this configuration, run: {}",
                    import_command(store_flags, base_dir)
                ),
            }
        }
        other => CliError::StoreAtStart {
            source: other,
            hint: String::new(),
        },
    }
}

/// The command that imports the watermarks of `from` into the store (creating it).
pub fn import_command(store_flags: &str, from: &Path) -> String {
    format!(
        "signatory watermark import{store_flags} --from {}",
        from.display()
    )
}

/// Paths for a message, comma-separated.
pub fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
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

    fn config(driver: &str, settings: DriverSettings) -> WatermarkConfig {
        WatermarkConfig {
            driver: driver.to_owned(),
            config: settings,
        }
    }

    #[test]
    fn known_drivers_are_chosen_and_others_refused_naming_the_known_ones() {
        let base = Path::new("/var/lib/signatory");
        assert_eq!(
            StoreChoice::from_parts(&config("file", DriverSettings::Null), base, "s.yaml").unwrap(),
            StoreChoice::File {
                base_dir: base.to_path_buf()
            }
        );
        assert_eq!(
            StoreChoice::from_parts(&config("mem", DriverSettings::Null), base, "s.yaml").unwrap(),
            StoreChoice::Mem
        );
        let e = StoreChoice::from_parts(&config("postgres", DriverSettings::Null), base, "s.yaml")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown watermark driver `postgres` in s.yaml (`watermark.driver`); this build has: \
             file, mem"
        );
    }

    #[test]
    fn settings_the_driver_would_ignore_are_refused() {
        let settings = DriverSettings::String("/srv/watermarks".into());
        let e = StoreChoice::from_parts(&config("file", settings), Path::new("/b"), "s.yaml")
            .unwrap_err();
        assert!(e.to_string().contains("takes no settings"), "{e}");
    }

    #[test]
    fn a_missing_file_store_names_the_init_command() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_file_store(dir.path(), " -c x.yaml").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("no watermark store at"), "{text}");
        assert!(
            text.contains("for this configuration, run: signatory watermark init -c x.yaml"),
            "{text}"
        );
        FileStore::init(dir.path()).unwrap();
        assert!(open_file_store(dir.path(), "unused").is_ok());
    }

    #[test]
    fn a_file_store_that_lost_acknowledged_watermarks_does_not_start() {
        let dir = tempfile::tempdir().unwrap();
        FileStore::init(dir.path()).unwrap();
        let choice = StoreChoice::File {
            base_dir: dir.path().to_path_buf(),
        };
        let store = choice.open("").unwrap();
        drop(advance_once(store));
        // The log cut back to its header: the acknowledged reservation is gone.
        let log = FileStore::store_dir(dir.path()).join("log-1");
        let bytes = std::fs::read(&log).unwrap();
        assert!(bytes.len() > header_len());
        std::fs::write(&log, &bytes[..header_len()]).unwrap();
        let text = choice.open("").unwrap_err().to_string();
        assert!(text.contains("lost acknowledged watermarks"), "{text}");
        assert!(text.contains("signatory watermark set"), "{text}");
        // Nothing was changed: the next start refuses again.
        assert!(choice.open("").is_err());
    }

    /// Reserve one block watermark and wait for it to be durable.
    fn advance_once(store: Arc<dyn WatermarkStore>) -> Arc<dyn WatermarkStore> {
        use signatory_signer::watermark::{WatermarkKey, WatermarkRequest};
        use tezos_crypto::{ChainId, Curve, PublicKeyHash};
        let key = WatermarkKey::new(
            ChainId([1, 2, 3, 4]),
            PublicKeyHash::new(Curve::Ed25519, [7; 20]),
            tezos_encoding::WatermarkKind::Block,
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(store.check_and_advance(key, WatermarkRequest::new(5, 0, [1; 32])))
            .unwrap();
        store
    }

    /// The length of a log holding its header alone, as `init` writes it.
    fn header_len() -> usize {
        let fresh = tempfile::tempdir().unwrap();
        FileStore::init(fresh.path()).unwrap();
        let log = FileStore::store_dir(fresh.path()).join("log-1");
        usize::try_from(std::fs::metadata(log).unwrap().len()).unwrap()
    }

    #[test]
    fn a_missing_file_store_beside_another_signers_watermarks_names_the_import_command() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("block_high_watermarks"), "{}").unwrap();
        let text = open_file_store(dir.path(), " -c x.yaml")
            .unwrap_err()
            .to_string();
        assert!(text.contains("another signer's watermarks"), "{text}");
        assert!(text.contains("block_high_watermarks"), "{text}");
        let import = format!(
            "run: signatory watermark import -c x.yaml --from {}",
            dir.path().display()
        );
        assert!(text.contains(&import), "{text}");
        assert!(!text.contains("create it with"), "{text}");
    }
}
