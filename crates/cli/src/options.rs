//! Options every subcommand takes, and loading the configuration they point at.

use crate::error::CliError;
use signatory_config::{Config, ConfigError};
use std::path::{Path, PathBuf};

/// Where the configuration is read from when `-c` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/signatory.yaml";

#[derive(Debug, Clone, clap::Args)]
pub struct GlobalOptions {
    /// Configuration file (ECAD Signatory's YAML schema) [default: /etc/signatory.yaml].
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        help_heading = "Global options",
        env = "SIGNATORY_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Data directory; overrides `base_dir` of the configuration (file watermarks live
    /// under it).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "SIGNATORY_BASE_DIR",
        value_name = "DIR"
    )]
    pub base_dir: Option<PathBuf>,
    /// Log level or filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing filter
    /// such as `info,signatory_server=debug`) [default: info for serve, warn otherwise].
    #[arg(
        long = "log",
        global = true,
        help_heading = "Global options",
        env = "SIGNATORY_LOG",
        value_name = "LEVEL"
    )]
    pub log: Option<String>,
    /// Write logs as JSON lines (for log collectors) instead of text.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json_log: bool,
}

impl GlobalOptions {
    /// The configuration file to read.
    pub fn config_path(&self) -> &Path {
        self.config
            .as_deref()
            .unwrap_or_else(|| Path::new(DEFAULT_CONFIG))
    }

    /// Load and validate the configuration, with `--base-dir` applied.
    pub fn load_config(&self) -> Result<Config, CliError> {
        let mut config = Config::load(self.config_path()).map_err(|e| match e {
            // Nobody chose this file: say how to choose one rather than only that it is
            // missing.
            ConfigError::Read { path, source }
                if self.config.is_none() && source.kind() == std::io::ErrorKind::NotFound =>
            {
                CliError::NoDefaultConfig { path }
            }
            other => CliError::Config(other),
        })?;
        if let Some(base_dir) = &self.base_dir {
            config.base_dir.clone_from(base_dir);
        }
        Ok(config)
    }

    /// Like [`GlobalOptions::load_config`], but when no `-c` was given, the default file
    /// does not exist and `--base-dir` was given, there is nothing to load: `None`.
    /// Watermark commands only need the base directory.
    pub fn load_config_if_needed(&self) -> Result<Option<Config>, CliError> {
        if self.config.is_none() && self.base_dir.is_some() && !Path::new(DEFAULT_CONFIG).exists() {
            return Ok(None);
        }
        self.load_config().map(Some)
    }

    /// `-c <file>` as the operator would repeat it in a suggested command.
    pub fn config_flag(&self) -> String {
        match &self.config {
            Some(path) => format!(" -c {}", path.display()),
            None => String::new(),
        }
    }

    /// `-c <file>` and `--base-dir <dir>`, as given, for a suggested `signatory watermark`
    /// command.
    pub fn store_flags(&self) -> String {
        format!("{}{}", self.config_flag(), self.base_dir_flag())
    }

    /// `--base-dir <dir>` as the operator would repeat it, when it was given.
    pub fn base_dir_flag(&self) -> String {
        match &self.base_dir {
            Some(dir) => format!(" --base-dir {}", dir.display()),
            None => String::new(),
        }
    }
}
