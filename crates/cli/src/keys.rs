//! `signatory list`, `generate` and `import`: the keys the vaults hold.

use crate::assemble::{key_entries, list_vault_keys, open_vaults};
use crate::error::CliError;
use crate::options::GlobalOptions;
use signatory_config::{Config, VaultConfig};
use signatory_signer::vault::{Vault, VaultKey};
use signatory_vaults::{EnvPasswords, OpenError};
use std::fmt::Write as _;
use std::io::{IsTerminal, Read};
use std::sync::Arc;
use tezos_crypto::{encrypted, CryptoError, Curve, SecretKey};
use zeroize::Zeroizing;

/// At most this many keys per `generate`.
const MAX_GENERATE: u32 = 100;

#[derive(Debug, clap::Args)]
pub struct ListArgs {}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Key type: tz1 (Ed25519), tz2 (secp256k1), tz3 (P-256) or tz4 (BLS12-381).
    #[arg(short = 't', long = "type", value_name = "TYPE", value_parser = parse_key_type)]
    pub key_type: Curve,
    /// The vault (a name under `vaults:` in the configuration) to create the keys in.
    #[arg(long, value_name = "NAME")]
    pub vault: String,
    /// How many keys to create.
    #[arg(short = 'n', long = "count", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_GENERATE)))]
    pub count: u32,
    #[command(flatten)]
    pub seal: SealArgs,
}

/// Sealing a `file` vault's keys under a data key that another vault encrypts.
#[derive(Debug, clap::Args)]
pub struct SealArgs {
    /// Seal the `file` vault's key file with this vault (a KMS or Vault transit vault under
    /// `vaults:`): its keys are stored encrypted under a data key that this vault
    /// encrypts, and are unsealed through it at every start. The file must be new or hold
    /// no key yet; once sealed it stays sealed.
    #[arg(long, value_name = "VAULT", requires = "seal_key")]
    pub seal_with: Option<String>,
    /// The sealing vault's key that encrypts the data key: a KMS key id, ARN or alias
    /// (symmetric, ENCRYPT_DECRYPT), or a transit key name.
    #[arg(long, value_name = "KEY", requires = "seal_with")]
    pub seal_key: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The vault (a name under `vaults:` in the configuration) to store the key in.
    #[arg(long, value_name = "NAME")]
    pub vault: String,
    /// The secret key (`edsk…`, `spsk…`, `p2sk…`, `BLsk…`) or encrypted key (`edesk…` …),
    /// optionally with an `unencrypted:`/`encrypted:` prefix. Omit it to type it without
    /// echo, or to pipe it on standard input, so it stays out of the shell history.
    #[arg(value_name = "SECRET_KEY")]
    pub secret_key: Option<String>,
    /// For an encrypted key: read its password from this environment variable instead of
    /// asking on the terminal.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    #[command(flatten)]
    pub seal: SealArgs,
}

fn parse_key_type(s: &str) -> Result<Curve, String> {
    Curve::ALL
        .into_iter()
        .find(|c| c.address_kind() == s || c.to_string() == s)
        .ok_or_else(|| format!("`{s}` is not a key type: tz1, tz2, tz3 or tz4"))
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// `signatory list`: every key of every vault, and whether the configuration enables it.
pub fn list(opts: &GlobalOptions) -> Result<(), CliError> {
    let config = opts.load_config()?;
    log_warnings(&config);
    let (opened, found) = runtime()?.block_on(async {
        let opened = open_vaults(&config).await?;
        let found = list_vault_keys(&opened.vaults).await;
        Ok::<_, CliError>((opened, found))
    })?;
    let (entries, missing) = key_entries(&config.tezos, &found.keys);
    let mut rows: Vec<[String; 4]> = Vec::new();
    for (pkh, key) in &found.keys {
        let status = match entries.get(pkh).and_then(|e| e.policy.as_ref()) {
            Some(policy) => format!("enabled: {policy}"),
            None => "not enabled (add it under `tezos:` to sign with it)".to_owned(),
        };
        rows.push([
            pkh.to_b58check(),
            key.vault.name().to_owned(),
            pkh.curve().to_string(),
            status,
        ]);
    }
    for vault in &opened.vaults {
        for unusable in vault.unusable_keys() {
            rows.push([
                unusable.id,
                vault.name().to_owned(),
                "-".to_owned(),
                format!("UNUSABLE: {}", unusable.reason),
            ]);
        }
    }
    for (name, reason) in opened.unavailable.iter().chain(&found.unlisted) {
        rows.push([
            "-".to_owned(),
            name.clone(),
            "-".to_owned(),
            format!("VAULT UNAVAILABLE: {reason}"),
        ]);
    }
    for pkh in &missing {
        rows.push([
            pkh.to_b58check(),
            "-".to_owned(),
            pkh.curve().to_string(),
            "MISSING: enabled under `tezos:` but no vault holds it".to_owned(),
        ]);
    }
    print!("{}", render_keys(&rows));
    Ok(())
}

fn render_keys(rows: &[[String; 4]]) -> String {
    if rows.is_empty() {
        return "(no keys: the vaults hold none)\n".to_owned();
    }
    let vault_width = rows
        .iter()
        .map(|r| r[1].len())
        .chain([5])
        .max()
        .unwrap_or(5);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36}  {:<vault_width$}  {:<9}  POLICY",
        "KEY", "VAULT", "CURVE"
    );
    for [pkh, vault, curve, status] in rows {
        let _ = writeln!(
            out,
            "{pkh:<36}  {vault:<vault_width$}  {curve:<9}  {status}"
        );
    }
    out
}

fn log_warnings(config: &Config) {
    for warning in &config.warnings {
        tracing::warn!("{}: {warning}", config.origin);
    }
}

fn vault_config<'a>(config: &'a Config, name: &str) -> Result<&'a VaultConfig, CliError> {
    config
        .vaults
        .get(name)
        .ok_or_else(|| CliError::UnknownVault {
            name: name.to_owned(),
            config: config.origin.clone(),
            known: if config.vaults.is_empty() {
                "none".to_owned()
            } else {
                config.vault_names().join(", ")
            },
        })
}

/// Open the named vault for writing keys into it, after its driver made it ready (a new
/// `file` vault gets an empty key file, so a new signer can start from `generate`), and,
/// with `--seal-with`, after its key file was sealed.
async fn open_for_writing(
    config: &Config,
    name: &str,
    seal: &SealArgs,
) -> Result<Arc<dyn Vault>, CliError> {
    let vault = vault_config(config, name)?;
    let driver = signatory_vaults::driver(name, &vault.driver)
        .map_err(CliError::vault_open(&config.origin))?;
    if !driver.keeps_keys() {
        return Err(CliError::Usage(format!(
            "vault `{name}` uses the `{}` driver, which keeps keys in this process only: a key \
             added by this command would be lost when it exits; use a vault that stores them",
            driver.name()
        )));
    }
    let (Some(seal_with), Some(seal_key)) = (&seal.seal_with, &seal.seal_key) else {
        driver
            .prepare_for_writing(name, &vault.config)
            .map_err(CliError::vault_open(&config.origin))?;
        let opened = signatory_vaults::open_configured(vault).await;
        // A sealed key file names the vault that unseals it.
        let Err(OpenError::NeedsVault { needs, .. }) = &opened else {
            return opened.map_err(CliError::vault_open(&config.origin));
        };
        let sealing = signatory_vaults::open_configured(vault_config(config, needs)?)
            .await
            .map_err(CliError::vault_open(&config.origin))?;
        return signatory_vaults::open_configured_among(
            vault,
            &EnvPasswords::default(),
            &[sealing],
        )
        .await
        .map_err(CliError::vault_open(&config.origin));
    };
    if driver.name() != "file" {
        return Err(CliError::Usage(format!(
            "--seal-with seals a `file` vault's key file; vault `{name}` uses the `{}` driver",
            driver.name()
        )));
    }
    let sealing = signatory_vaults::open_configured(vault_config(config, seal_with)?)
        .await
        .map_err(CliError::vault_open(&config.origin))?;
    signatory_vaults::seal_key_file(name, &vault.config, &sealing, seal_key)
        .await
        .map_err(CliError::vault_open(&config.origin))?;
    signatory_vaults::open_configured_among(vault, &EnvPasswords::default(), &[sealing])
        .await
        .map_err(CliError::vault_open(&config.origin))
}

fn print_added(keys: &[VaultKey], vault: &str, config: &Config) {
    for key in keys {
        println!("{}  {}", key.pkh, key.public_key.to_b58check());
    }
    eprintln!(
        "{} key(s) in vault `{vault}`; to sign with them, list them under `tezos:` in {}",
        keys.len(),
        config.origin
    );
}

/// `signatory generate`: new keys in a vault.
pub fn generate(args: &GenerateArgs, opts: &GlobalOptions) -> Result<(), CliError> {
    let config = opts.load_config()?;
    let keys = runtime()?.block_on(async {
        let vault = open_for_writing(&config, &args.vault, &args.seal).await?;
        let mut keys = Vec::new();
        for _ in 0..args.count {
            keys.push(vault.generate(args.key_type).await?);
        }
        Ok::<_, CliError>(keys)
    })?;
    print_added(&keys, &args.vault, &config);
    Ok(())
}

/// `signatory import`: an existing secret key into a vault.
pub fn import(args: &ImportArgs, opts: &GlobalOptions) -> Result<(), CliError> {
    let config = opts.load_config()?;
    let text = match &args.secret_key {
        Some(text) => Zeroizing::new(text.clone()),
        None => read_secret_input()?,
    };
    let key = parse_secret(text.trim(), &|| password(args.password_env.as_deref()))?;
    let added = runtime()?.block_on(async {
        let vault = open_for_writing(&config, &args.vault, &args.seal).await?;
        Ok::<_, CliError>(vault.import(key).await?)
    })?;
    print_added(&[added], &args.vault, &config);
    Ok(())
}

/// The secret key from the terminal (without echo) or from standard input.
fn read_secret_input() -> Result<Zeroizing<String>, CliError> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("Secret key: ")
            .map(Zeroizing::new)
            .map_err(CliError::io("read the secret key from", "the terminal"));
    }
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(CliError::io("read the secret key from", "standard input"))?;
    Ok(text)
}

/// The password of an encrypted key: from `env` if given, else asked on the terminal.
fn password(env: Option<&str>) -> Result<Zeroizing<String>, CliError> {
    if let Some(var) = env {
        return std::env::var(var).map(Zeroizing::new).map_err(|_| {
            CliError::Usage(format!(
                "the key is encrypted and environment variable `{var}` (--password-env) is not set"
            ))
        });
    }
    rpassword::prompt_password("Password of the encrypted key: ")
        .map(Zeroizing::new)
        .map_err(|_| {
            CliError::Usage(
                "the key is encrypted and no terminal is available to ask for its password: \
                 give it with --password-env VAR"
                    .to_owned(),
            )
        })
}

/// A secret key as octez-client and ECAD Signatory write it, decrypting it if needed.
pub fn parse_secret(
    text: &str,
    password: &dyn Fn() -> Result<Zeroizing<String>, CliError>,
) -> Result<SecretKey, CliError> {
    let (encrypted_form, body) = match text.split_once(':') {
        Some(("encrypted", body)) => (true, body),
        Some(("unencrypted", body)) => (false, body),
        Some((scheme, _)) => {
            return Err(CliError::Usage(format!(
                "`{scheme}:` keys are not stored in a vault; give the secret key itself"
            )))
        }
        None => (encrypted::is_encrypted(text), text),
    };
    if encrypted_form {
        let password = password()?;
        return encrypted::decrypt(body, password.as_bytes()).map_err(|e| match e {
            CryptoError::BadPassword => {
                CliError::Usage("wrong password for the encrypted key".to_owned())
            }
            other => CliError::BadSecretKey(other),
        });
    }
    SecretKey::from_b58check(body).map_err(CliError::BadSecretKey)
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

    const NO_SEAL: SealArgs = SealArgs {
        seal_with: None,
        seal_key: None,
    };

    fn no_password() -> Result<Zeroizing<String>, CliError> {
        panic!("a password was asked for an unencrypted key")
    }

    #[test]
    fn key_types_are_the_address_kinds() {
        assert_eq!(parse_key_type("tz1").unwrap(), Curve::Ed25519);
        assert_eq!(parse_key_type("tz2").unwrap(), Curve::Secp256k1);
        assert_eq!(parse_key_type("tz3").unwrap(), Curve::P256);
        assert_eq!(parse_key_type("tz4").unwrap(), Curve::Bls12_381);
        assert!(parse_key_type("tz5").is_err());
    }

    #[test]
    fn secret_keys_parse_with_or_without_their_prefix() {
        for curve in Curve::ALL {
            let key = SecretKey::generate(curve);
            let b58 = key.to_b58check();
            let plain = parse_secret(&b58, &no_password).unwrap();
            assert_eq!(plain.public_key(), key.public_key());
            let prefixed =
                parse_secret(&format!("unencrypted:{}", b58.as_str()), &no_password).unwrap();
            assert_eq!(prefixed.public_key(), key.public_key());
        }
    }

    #[test]
    fn encrypted_keys_are_decrypted_with_the_password_and_a_wrong_one_is_refused() {
        let key = SecretKey::generate(Curve::Ed25519);
        let esk = encrypted::encrypt(&key, b"right");
        let right = || Ok(Zeroizing::new("right".to_owned()));
        let wrong = || Ok(Zeroizing::new("wrong".to_owned()));
        assert_eq!(
            parse_secret(&esk, &right).unwrap().public_key(),
            key.public_key()
        );
        let prefixed = format!("encrypted:{esk}");
        assert_eq!(
            parse_secret(&prefixed, &right).unwrap().public_key(),
            key.public_key()
        );
        let e = parse_secret(&esk, &wrong).unwrap_err().to_string();
        assert_eq!(e, "wrong password for the encrypted key");
    }

    #[test]
    fn garbage_and_remote_keys_are_refused_without_echoing_them() {
        let e = parse_secret("edskNOTAKEY", &no_password)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("the secret key is not valid"), "{e}");
        assert!(!e.contains("edskNOTAKEY"), "{e}");
        let e = parse_secret("ledger://x/y", &no_password)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`ledger:`"), "{e}");
    }

    #[tokio::test]
    async fn keys_are_never_written_into_a_vault_that_forgets_them() {
        let yaml = "vaults:\n  scratch:\n    driver: mem\n";
        let config = Config::parse(yaml, "s.yaml", &|_| None).unwrap();
        let e = open_for_writing(&config, "scratch", &NO_SEAL)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("would be lost"), "{e}");
        let e = open_for_writing(&config, "other", &NO_SEAL)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("configured vaults: scratch"), "{e}");
    }
}
