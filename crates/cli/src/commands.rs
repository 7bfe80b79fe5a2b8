//! The signer's subcommands (everything but `decode`) and their dispatch.

use crate::check::{self, ConfigCommand};
use crate::error::CliError;
use crate::keys::{self, GenerateArgs, ImportArgs, ListArgs};
use crate::options::GlobalOptions;
use crate::serve::{self, ServeArgs};
use crate::watermark::{self, WatermarkCommand};
use signatory_vaults::EnvPasswords;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the signer: the HTTP API for bakers, and metrics and health.
    #[command(
        long_about = "Run the signer. It opens the watermark store (create it first \
        with `signatory watermark init`), opens the vaults and lists their keys, then serves \
        the Octez remote-signer HTTP API on `server.address` and metrics and health on \
        `server.utility_address`. Keys listed under `tezos:` sign what their policy allows; \
        other keys of the vaults are only shown (GET /keys/<pkh>). A key listed under \
        `tezos:` that no vault holds stops the start. SIGINT or SIGTERM stops it cleanly.\n\n\
        Example:\n  signatory serve -c /etc/signatory.yaml\n  \
        signatory serve -c signatory.yaml --base-dir ./data --log debug --json-log"
    )]
    Serve(ServeArgs),
    /// List the keys of every vault and what each may sign.
    #[command(
        long_about = "Open every vault of the configuration and list the keys they \
        hold: key hash, vault, curve and policy. Keys not under `tezos:` are served but never \
        sign; keys under `tezos:` that no vault holds are shown as MISSING.\n\n\
        Example:\n  signatory list -c /etc/signatory.yaml"
    )]
    List(ListArgs),
    /// Create new keys in a vault.
    #[command(
        long_about = "Create new keys of one type in a vault and print each key hash \
        and public key. A `file` vault writes them to its key file (encrypted when the vault \
        has a password configured), creating the file if it does not exist. List the new \
        keys under `tezos:` in the configuration to sign with them.\n\n\
        Example:\n  signatory generate -c /etc/signatory.yaml -t tz4 --vault local -n 2"
    )]
    Generate(GenerateArgs),
    /// Add an existing secret key to a vault.
    #[command(
        long_about = "Add a secret key (edsk…, spsk…, p2sk…, BLsk…) or an encrypted \
        one (edesk…, spesk…, p2esk…, BLesk…, as octez-client writes them) to a vault. Without \
        the key on the command line it is read from the terminal without echo, or from \
        standard input. The password of an encrypted key is asked on the terminal, or taken \
        from the variable named by --password-env.\n\n\
        Example:\n  signatory import -c /etc/signatory.yaml --vault local\n  \
        KEY_PASSWORD=… signatory import --vault local --password-env KEY_PASSWORD edesk1…"
    )]
    Import(ImportArgs),
    /// Manage the high watermarks that stop double signing.
    #[command(
        subcommand,
        long_about = "Manage the high watermarks: per chain, key and kind (block, \
        preattestation, attestation), the highest level and round signed, so no key ever signs \
        two different payloads at one height. The store lives in <base_dir>/watermarks.\n\n\
        Example:\n  signatory watermark init -c /etc/signatory.yaml\n  \
        signatory watermark import -c /etc/signatory.yaml --from ~/.tezos-signer"
    )]
    Watermark(WatermarkCommand),
    /// Check the configuration.
    #[command(
        subcommand,
        long_about = "Work with the configuration file.\n\n\
        Example:\n  signatory config check -c /etc/signatory.yaml"
    )]
    Config(ConfigCommand),
    /// Print the version and the drivers this build has.
    #[command(
        long_about = "Print the version, and the vault and watermark drivers compiled \
        into this build.\n\nExample:\n  signatory version"
    )]
    Version,
}

impl Command {
    /// The log filter when `--log` is not given: a running signer reports what it does,
    /// a one-shot command only what went wrong.
    fn default_log(&self) -> &'static str {
        match self {
            Command::Serve(_) => "info",
            _ => "warn",
        }
    }
}

pub fn run(command: &Command, opts: &GlobalOptions) -> ExitCode {
    // Commands that open every vault take the `password_env` passwords out of the
    // environment first, while this is the only thread (logging starts one).
    let loaded = match command {
        Command::Serve(_) | Command::Config(_) => match opts.load_config() {
            Ok(config) => {
                let passwords = EnvPasswords::take(config.vaults.values());
                Some((config, passwords))
            }
            Err(e) => return report(&e),
        },
        _ => None,
    };
    let filter = opts
        .log
        .clone()
        .unwrap_or_else(|| command.default_log().to_owned());
    let log_guard = match crate::logging::init(&filter, opts.json_log) {
        Ok(guard) => guard,
        Err(e) => return report(&e),
    };
    let result = match (command, loaded) {
        (Command::Serve(args), Some((config, passwords))) => {
            serve::run(args, opts, config, passwords)
        }
        (Command::Config(command), Some((config, passwords))) => {
            check::run(command, opts, config, &passwords)
        }
        (Command::Serve(_) | Command::Config(_), None) => Err(CliError::Server(
            "the configuration was not loaded".to_owned(),
        )),
        (command, _) => run_other(command, opts),
    };
    // The error is printed straight to stderr; log lines queued before it go out first.
    drop(log_guard);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// The commands that load the configuration themselves (or need none).
fn run_other(command: &Command, opts: &GlobalOptions) -> Result<(), CliError> {
    match command {
        Command::List(_) => keys::list(opts),
        Command::Generate(args) => keys::generate(args, opts),
        Command::Import(args) => keys::import(args, opts),
        Command::Watermark(command) => watermark::run(command, opts),
        Command::Version => {
            print!("{}", version());
            Ok(())
        }
        // Loaded before logging starts, in `run`.
        Command::Serve(_) | Command::Config(_) => Err(CliError::Server(
            "the configuration was not loaded".to_owned(),
        )),
    }
}

fn report(e: &CliError) -> ExitCode {
    eprintln!("signatory: error: {e}");
    ExitCode::FAILURE
}

fn version() -> String {
    format!(
        "signatory {}\nvault drivers: {}\nwatermark drivers: {}\n",
        env!("CARGO_PKG_VERSION"),
        signatory_vaults::driver_names().join(", "),
        crate::watermark_store::STORE_DRIVERS.join(", ")
    )
}
