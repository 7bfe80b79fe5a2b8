//! `fake-backend`: a network vault's fake (the test suite's own, `signatory_e2e::fakes`)
//! answering every call after a fixed delay, holding `--keys` tz3 keys, for the
//! network-vault benchmark (`bench/network.sh`). It writes the vault's YAML and the keys'
//! addresses for `write-config`, prints how long its own delay really takes (a timer
//! wakes at least as late as asked, a little later), and serves until SIGTERM.

use crate::BenchError;
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tezos_crypto::{Curve, PublicKeyHash};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkDriver {
    Awskms,
    Cloudkms,
    Azure,
    Hashicorpvault,
}

#[derive(Debug, Args)]
pub struct FakeBackendArgs {
    #[arg(long, value_enum)]
    driver: NetworkDriver,
    /// How long the fake waits before it answers each call.
    #[arg(long, default_value_t = 20)]
    delay_ms: u64,
    /// How many tz3 keys it holds.
    #[arg(long, default_value_t = 32)]
    keys: usize,
    /// A directory for the files it writes: `vault.yaml` (the YAML under `vaults:`),
    /// `pkhs` (the keys' addresses), and credential files.
    #[arg(long)]
    dir: PathBuf,
}

/// A started fake; dropping it stops it.
type Running = Box<dyn std::any::Any + Send>;

/// What a fake gives the benchmark: the vault YAML and the addresses of its keys.
struct Started {
    fake: Running,
    yaml: String,
    pkhs: Vec<PublicKeyHash>,
}

fn harness(e: signatory_e2e::HarnessError) -> BenchError {
    BenchError::Setup(e.to_string())
}

async fn start(args: &FakeBackendArgs, delay: Duration) -> Result<Started, BenchError> {
    match args.driver {
        NetworkDriver::Azure => {
            use signatory_e2e::fakes::azure::{FakeAzure, TENANT};
            const CLIENT: &str = "bench-client";
            const SECRET: &str = "bench-secret";
            let fake = FakeAzure::start().map_err(harness)?;
            fake.add_secret_client(CLIENT, SECRET, &["list", "get", "sign"]);
            let mut pkhs = Vec::new();
            for i in 0..args.keys {
                let key = fake
                    .add_ec_key(&format!("bench-{i}"), Curve::P256)
                    .map_err(harness)?;
                pkhs.push(key.hash());
            }
            fake.set_delay(delay);
            let yaml = format!(
                "  azure:\n    driver: azure\n    config:\n      vault: {url}/\n      \
                 tenant_id: {TENANT}\n      client_id: {CLIENT}\n      client_secret: {SECRET}\n      \
                 authority_host: {url}\n",
                url = fake.url
            );
            Ok(Started {
                fake: Box::new(fake),
                yaml,
                pkhs,
            })
        }
        NetworkDriver::Cloudkms => {
            use signatory_e2e::fakes::cloudkms::FakeCloudKms;
            let fake = FakeCloudKms::start()
                .await
                .map_err(|source| BenchError::Io {
                    context: "starting the fake Cloud KMS".to_owned(),
                    source,
                })?;
            fake.set_max_page_size(1000);
            let mut pkhs = Vec::new();
            for i in 0..args.keys {
                let versions = fake.add_key(
                    &format!("bench-{i}"),
                    "ASYMMETRIC_SIGN",
                    &[("EC_SIGN_P256_SHA256", "ENABLED")],
                );
                let der = versions
                    .first()
                    .and_then(|version| fake.public_key_der(version))
                    .ok_or_else(|| BenchError::Setup("the fake made no key".to_owned()))?;
                let key = tezos_crypto::PublicKey::from_spki_der(&der)
                    .map_err(|e| BenchError::Setup(e.to_string()))?;
                pkhs.push(key.hash());
            }
            fake.set_delay(delay);
            let credentials = args.dir.join("service-account.json");
            write_private(&credentials, &fake.service_account_json())?;
            let yaml = format!(
                "  gcp:\n    driver: cloudkms\n    config:\n      project: {}\n      \
                 location: {}\n      key_ring: {}\n      application_credentials: {}\n      \
                 endpoint: {}\n",
                fake.project,
                fake.location,
                fake.key_ring,
                credentials.display(),
                fake.endpoint()
            );
            Ok(Started {
                fake: Box::new(fake),
                yaml,
                pkhs,
            })
        }
        NetworkDriver::Hashicorpvault => {
            use signatory_e2e::fakes::transit::FakeTransit;
            const TOKEN: &str = "bench-token";
            let fake = FakeTransit::start(TOKEN).await.map_err(harness)?;
            let mut pkhs = Vec::new();
            for i in 0..args.keys {
                let key = fake
                    .add_key(&format!("bench-{i}"), Curve::P256)
                    .map_err(harness)?;
                pkhs.push(key.hash());
            }
            fake.set_delay(delay);
            let yaml = format!(
                "  transit:\n    driver: hashicorpvault\n    config:\n      address: {}\n      \
                 token: {TOKEN}\n",
                fake.address
            );
            Ok(Started {
                fake: Box::new(fake),
                yaml,
                pkhs,
            })
        }
        NetworkDriver::Awskms => {
            use signatory_e2e::fakes::awskms::FakeKms;
            let fake = FakeKms::start().await.map_err(harness)?;
            let mut pkhs = Vec::new();
            for _ in 0..args.keys {
                let (_, key) = fake.add_key(Curve::P256).map_err(harness)?;
                pkhs.push(key.hash());
            }
            fake.set_delay(delay);
            let yaml = format!(
                "  aws:\n    driver: awskms\n    config:\n      access_key_id: AKIDBENCH\n      \
                 secret_access_key: bench-secret\n      region: us-east-1\n      endpoint: {}\n",
                fake.endpoint()
            );
            Ok(Started {
                fake: Box::new(fake),
                yaml,
                pkhs,
            })
        }
    }
}

/// A file only the signer's user can read (credential files must be).
fn write_private(path: &std::path::Path, text: &str) -> Result<(), BenchError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| BenchError::Io {
        context: format!("writing {}", path.display()),
        source,
    };
    std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new("."))).map_err(io)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(io)
}

/// Median and 99th percentile of `samples`.
fn p50_p99(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).saturating_sub(1);
        samples.get(rank).copied().unwrap_or_default()
    };
    (at(0.50), at(0.99))
}

pub async fn fake_backend(args: FakeBackendArgs) -> Result<(), BenchError> {
    let delay = Duration::from_millis(args.delay_ms);
    let started = start(&args, delay).await?;
    std::fs::create_dir_all(&args.dir).map_err(|source| BenchError::Io {
        context: format!("creating {}", args.dir.display()),
        source,
    })?;
    let write = |name: &str, text: String| {
        let path = args.dir.join(name);
        std::fs::write(&path, text).map_err(|source| BenchError::Io {
            context: format!("writing {}", path.display()),
            source,
        })
    };
    write("vault.yaml", started.yaml.clone())?;
    let pkhs: Vec<String> = started.pkhs.iter().map(|p| p.to_b58check()).collect();
    write("pkhs", pkhs.join("\n") + "\n")?;
    // The fakes' delay as it is really kept (`fakes::wait`): what the signer is measured
    // against ("the backend's own latency").
    let mut sleeps = Vec::with_capacity(200);
    for _ in 0..200 {
        let began = Instant::now();
        signatory_e2e::fakes::wait(delay).await;
        sleeps.push(began.elapsed());
    }
    let (p50, p99) = p50_p99(&mut sleeps);
    write(
        "delay",
        format!(
            "{:.2} {:.2}\n",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        ),
    )?;
    eprintln!(
        "fake {:?}: {} keys, delay {} ms (the timer's own: p50 {:.2} ms, p99 {:.2} ms)",
        args.driver,
        started.pkhs.len(),
        args.delay_ms,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| BenchError::Io {
            context: "waiting for SIGTERM".to_owned(),
            source,
        })?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(started.fake);
    Ok(())
}
