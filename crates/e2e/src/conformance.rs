//! The vault conformance suite: what "a driver works" means, checked end to end through
//! the `signatory` binary (`generate` and `list` through the CLI, signing through `serve`).
//! Every driver runs it with a [`Backend`] describing how to configure it.
//!
//! For each curve the backend signs: a key made with `signatory generate` (or given by the
//! backend when it cannot make keys), listed by `signatory list`, its public key served,
//! a signature that verifies against it (ECDSA low-S), sixteen concurrent signatures (of
//! transfers, which no watermark orders) that all verify; `generate` of a curve the backend
//! lacks refused with a message; and, for backends that can be taken down, a transient
//! failure (503, `/healthz` naming the vault) while down, while a key of a second vault
//! beside it still signs, and signing again once back.

use crate::requests::{generic, Consensus, Op};
use crate::signer::{Policy, SignerConfig, TestSigner};
use crate::HarnessError;
use std::future::Future;
use std::pin::Pin;
use tezos_crypto::{Curve, PublicKey, PublicKeyHash, Signature, SigningVersion};

/// The vault that runs beside the one under test.
const BYSTANDER: &str = "bystander";

/// A backend brought down and back by the test (a connector stopped, a token removed).
pub trait Outage: Send + Sync {
    fn take_down(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    fn bring_back(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// How to run a vault of one driver.
pub struct Backend {
    /// The vault's name in the configuration.
    pub vault: String,
    /// The YAML under `vaults.<vault>:`, four spaces in (`driver:` and `config:`).
    pub yaml: String,
    /// Environment the signer needs (`SOFTHSM2_CONF`, …).
    pub env: Vec<(String, String)>,
    /// The curves it signs with.
    pub curves: Vec<Curve>,
    /// Curves `signatory generate` must refuse for it.
    pub refused_curves: Vec<Curve>,
    /// Keys it already holds, by curve; a curve not here is made with `signatory generate`.
    pub keys: Vec<PublicKeyHash>,
    /// Whether `/metrics` shows its session pool.
    pub pooled: bool,
    pub outage: Option<Box<dyn Outage>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("vault", &self.vault)
            .field("curves", &self.curves)
            .field("outage", &self.outage.is_some())
            .finish_non_exhaustive()
    }
}

fn fail(message: String) -> HarnessError {
    HarnessError::Http {
        addr: "conformance".to_owned(),
        detail: message,
    }
}

/// `signatory generate --vault <vault> -t <curve's address kind>`.
fn generate(
    signer: &TestSigner,
    vault: &str,
    curve: Curve,
) -> Result<std::process::Output, HarnessError> {
    signer.cli(&["generate", "--vault", vault, "-t", curve.address_kind()])
}

/// Run the suite; an error says which step failed and how.
pub async fn run(backend: Backend) -> Result<(), HarnessError> {
    // A second vault beside the one under test: while that one is down, this one must
    // keep signing.
    let bystander = tezos_crypto::SecretKey::generate(Curve::Ed25519);
    let bystander_yaml = format!(
        "    driver: mem\n    config: [\"{}\"]\n",
        bystander.to_b58check().as_str()
    );
    let bystander = bystander.public_key().hash();
    let mut signer = TestSigner::new(SignerConfig {
        vaults: vec![
            (backend.vault.clone(), backend.yaml.clone()),
            (BYSTANDER.to_owned(), bystander_yaml),
        ],
        env: backend.env.clone(),
        ..SignerConfig::default()
    })?;
    let mut keys = backend.keys.clone();
    for curve in &backend.curves {
        if keys.iter().any(|pkh| pkh.curve() == *curve) {
            continue;
        }
        let out = generate(&signer, &backend.vault, *curve)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(fail(format!(
                "`generate -t {}` failed: {}",
                curve.address_kind(),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let pkh = stdout
            .split_whitespace()
            .next()
            .and_then(|text| PublicKeyHash::from_b58check(text).ok())
            .ok_or_else(|| fail(format!("`generate` printed no key: {stdout}")))?;
        keys.push(pkh);
    }
    for curve in &backend.refused_curves {
        let out = generate(&signer, &backend.vault, *curve)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !stderr.contains("does not support") {
            return Err(fail(format!(
                "`generate -t {}` should be refused: {}{stderr}",
                curve.address_kind(),
                out.status
            )));
        }
    }
    let listed = signer.cli(&["list"])?;
    let listing = String::from_utf8_lossy(&listed.stdout);
    for pkh in &keys {
        let line = listing
            .lines()
            .find(|line| line.starts_with(&pkh.to_b58check()))
            .ok_or_else(|| fail(format!("`list` does not show {pkh}:\n{listing}")))?;
        if !line.contains(&backend.vault) {
            return Err(fail(format!(
                "`list` does not name vault {}: {line}",
                backend.vault
            )));
        }
    }
    for pkh in keys.iter().chain([&bystander]) {
        signer.enable(
            *pkh,
            Some(
                Policy::allow(&["preattestation", "attestation", "block"])
                    .generic(&["transaction"]),
            ),
        )?;
    }
    signer.start().await?;

    let mut level = 100;
    for pkh in &keys {
        let public_key = public_key(&signer, pkh).await?;
        level += 1;
        sign_and_verify(&signer, pkh, &public_key, level).await?;
        // Concurrent requests, each on its own connection: transfers, which no watermark
        // orders, so every one of them is signed.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let path = signer.key_path(pkh);
            let api = signer.api;
            let bytes = generic(
                pkh,
                &[Op::Transfer {
                    to: *pkh,
                    amount: 1 + i,
                }],
            );
            tasks.spawn(async move {
                let mut conn = crate::Connection::connect(api).await?;
                let response = conn.sign(&path, &bytes).await?;
                Ok::<_, HarnessError>((bytes, response))
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (bytes, response) = done.map_err(|e| fail(e.to_string()))??;
            verify(pkh, &public_key, &bytes, &response)?;
        }
        level += 20;
    }

    if backend.pooled {
        let mut utility = crate::Connection::connect(signer.utility).await?;
        let metrics = utility.get("/metrics").await?.text();
        let series = format!(
            "signatory_vault_sessions{{state=\"max\",vault=\"{}\"}}",
            backend.vault
        );
        if !metrics.contains(&series) {
            return Err(fail(format!("/metrics has no `{series}`")));
        }
    }

    if let (Some(outage), Some(pkh)) = (&backend.outage, keys.first()) {
        outage.take_down().await;
        level += 1;
        let mut conn = signer.connect().await?;
        let down = conn
            .sign(
                &signer.key_path(pkh),
                &Consensus::new(level, 0, 1).preattestation(),
            )
            .await?;
        if down.status != 503 {
            return Err(fail(format!(
                "with the backend down: {} {}",
                down.status,
                down.text()
            )));
        }
        let bystander_key = public_key(&signer, &bystander).await?;
        level += 1;
        sign_and_verify(&signer, &bystander, &bystander_key, level)
            .await
            .map_err(|e| fail(format!("vault `{BYSTANDER}` while the other was down: {e}")))?;
        let mut utility = crate::Connection::connect(signer.utility).await?;
        let health = utility.get("/healthz").await?;
        if health.status != 503 || !health.text().contains(&backend.vault) {
            return Err(fail(format!(
                "/healthz with the backend down: {} {}",
                health.status,
                health.text()
            )));
        }
        outage.bring_back().await;
        // Every key signs again (the backend may need a moment: a library restart is
        // rate-limited to one a second).
        for pkh in &keys {
            let public_key = public_key(&signer, pkh).await?;
            let mut last = None;
            for _ in 0..20 {
                level += 1;
                match sign_and_verify(&signer, pkh, &public_key, level).await {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            if let Some(e) = last {
                return Err(fail(format!("{pkh} after the backend came back: {e}")));
            }
        }
    }
    let _ = signer.terminate();
    Ok(())
}

async fn public_key(signer: &TestSigner, pkh: &PublicKeyHash) -> Result<PublicKey, HarnessError> {
    let mut conn = signer.connect().await?;
    let response = conn.get(&signer.key_path(pkh)).await?;
    let text = response.json_str("public_key").ok_or_else(|| {
        fail(format!(
            "GET key {pkh}: {} {}",
            response.status,
            response.text()
        ))
    })?;
    let public_key = PublicKey::from_b58check(&text).map_err(|e| fail(e.to_string()))?;
    if public_key.hash() != *pkh {
        return Err(fail(format!(
            "{pkh} is served with the public key of {}",
            public_key.hash()
        )));
    }
    Ok(public_key)
}

async fn sign_and_verify(
    signer: &TestSigner,
    pkh: &PublicKeyHash,
    public_key: &PublicKey,
    level: i32,
) -> Result<(), HarnessError> {
    let bytes = Consensus::new(level, 0, 1).preattestation();
    let mut conn = signer.connect().await?;
    let response = conn.sign(&signer.key_path(pkh), &bytes).await?;
    verify(pkh, public_key, &bytes, &response)
}

fn verify(
    pkh: &PublicKeyHash,
    public_key: &PublicKey,
    bytes: &[u8],
    response: &crate::Response,
) -> Result<(), HarnessError> {
    let text = response.json_str("signature").ok_or_else(|| {
        fail(format!(
            "signing with {pkh}: {} {}",
            response.status,
            response.text()
        ))
    })?;
    let signature = Signature::from_b58check(&text).map_err(|e| fail(e.to_string()))?;
    public_key
        .verify(bytes, &signature, SigningVersion::default())
        .map_err(|e| fail(format!("{pkh}: the signature does not verify: {e}")))?;
    let typed = signature
        .with_curve(pkh.curve())
        .map_err(|e| fail(e.to_string()))?;
    if !typed.is_low_s() {
        return Err(fail(format!("{pkh}: a high-S signature was released")));
    }
    Ok(())
}
