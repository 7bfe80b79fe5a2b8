//! The `awskms` driver through the real `signatory` binary: the vault conformance suite on
//! moto (with its DIGEST patch, `tests/services/moto_digest.py`), an outage through a
//! closable port in front of moto; released moto's wrong signatures refused before release;
//! ECAD's configuration as its docs write it; credentials from the standard variables of the
//! serve process.
//!
//! Multi-threaded runtimes: the conformance suite runs the CLI as a blocking child process,
//! during which the in-process port forwarders and fakes must keep answering.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use signatory_e2e::conformance::{run, Backend, Outage};
use signatory_e2e::fakes::awskms::FakeKms;
use signatory_e2e::moto::{hermetic_aws_env, Moto};
use signatory_e2e::requests::Consensus;
use signatory_e2e::{Policy, SignerConfig, TestSigner};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tezos_crypto::{Curve, PublicKey, Signature, SigningVersion};

/// moto's port closed and opened again: KMS unreachable, its keys kept.
struct MotoDown(Arc<Moto>);

impl Outage for MotoDown {
    fn take_down(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.0.take_down())
    }
    fn bring_back(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move { self.0.bring_back().await.unwrap() })
    }
}

/// The vault's YAML with ECAD's keys and the emulator's endpoint.
fn yaml(endpoint: &str) -> String {
    format!(
        "    driver: awskms\n    config:\n      access_key_id: AKIDTEST\n      \
         secret_access_key: test-secret\n      region: us-east-1\n      endpoint: {endpoint}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_awskms_driver_conforms_on_moto() {
    let moto = Arc::new(Moto::start().await.unwrap());
    run(Backend {
        vault: "kms".to_owned(),
        yaml: yaml(&moto.endpoint()),
        env: hermetic_aws_env(),
        curves: vec![Curve::Secp256k1, Curve::P256],
        refused_curves: vec![Curve::Ed25519, Curve::Bls12_381],
        keys: Vec::new(),
        pooled: false,
        outage: Some(Box::new(MotoDown(Arc::clone(&moto)))),
    })
    .await
    .unwrap();
}

/// Sign one preattestation with `pkh` through a signer of `vault_yaml`; the response.
async fn sign_once(
    vault_yaml: String,
    env: Vec<(String, String)>,
    public: &PublicKey,
) -> (TestSigner, signatory_e2e::Response, Vec<u8>) {
    let pkh = public.hash();
    let mut signer = TestSigner::new(SignerConfig {
        vaults: vec![("kms".to_owned(), vault_yaml)],
        enabled: vec![(pkh, Some(Policy::allow(&["preattestation"])))],
        env,
        ..SignerConfig::default()
    })
    .unwrap();
    signer.start().await.unwrap();
    let bytes = Consensus::new(7, 0, 1).preattestation();
    let mut conn = signer.connect().await.unwrap();
    let response = conn.sign(&signer.key_path(&pkh), &bytes).await.unwrap();
    (signer, response, bytes)
}

fn verified(public: &PublicKey, bytes: &[u8], response: &signatory_e2e::Response) {
    let text = response
        .json_str("signature")
        .unwrap_or_else(|| panic!("{} {}", response.status, response.text()));
    let signature = Signature::from_b58check(&text).unwrap();
    public
        .verify(bytes, &signature, SigningVersion::default())
        .unwrap();
}

/// Released moto signs SHA-256 of the digest it is sent: the signer's check against the
/// public key catches it and releases nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_signatures_of_unpatched_moto_are_never_released() {
    let moto = Moto::start_unpatched().await.unwrap();
    let id = moto
        .create_key("ECC_NIST_P256", "SIGN_VERIFY")
        .await
        .unwrap();
    let public = moto.public_key(&id).await.unwrap();
    let (mut signer, response, _) =
        sign_once(yaml(&moto.endpoint()), hermetic_aws_env(), &public).await;
    let text = response.text();
    assert!(response.status >= 500, "{} {text}", response.status);
    assert!(response.json_str("signature").is_none(), "{text}");
    assert!(
        text.contains("does not verify") || signer.log().contains("does not verify"),
        "{text}\n{}",
        signer.log()
    );
    let _ = signer.terminate();
}

/// ECAD's documented configuration (keys and region only) as is; the emulator's address
/// comes from the SDK's standard `AWS_ENDPOINT_URL`, as a user would point it elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecad_configuration_starts_and_signs_unchanged() {
    let moto = Moto::start().await.unwrap();
    let id = moto
        .create_key("ECC_SECG_P256K1", "SIGN_VERIFY")
        .await
        .unwrap();
    let public = moto.public_key(&id).await.unwrap();
    let ecad = "    driver: awskms\n    config:\n      access_key_id: AKIDEXAMPLE\n      \
                secret_access_key: wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\n      \
                region: us-east-1\n"
        .to_owned();
    let mut env = hermetic_aws_env();
    env.push(("AWS_ENDPOINT_URL".to_owned(), moto.endpoint()));
    let (mut signer, response, bytes) = sign_once(ecad, env, &public).await;
    verified(&public, &bytes, &response);
    assert!(!signer
        .log()
        .contains("wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"));
    let _ = signer.terminate();
}

/// No keys in the configuration: the serve process's `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY` sign the requests (the fake records the key id of each SigV4
/// signature); the secret never reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_the_serve_environment_work_with_no_keys_in_the_config() {
    let fake = FakeKms::start().await.unwrap();
    let (_, public) = fake.add_key(Curve::P256).unwrap();
    let vault = format!(
        "    driver: awskms\n    config:\n      region: us-east-1\n      endpoint: {}\n",
        fake.endpoint()
    );
    let secret = "env-secret-0123456789";
    let mut env = hermetic_aws_env();
    env.push(("AWS_ACCESS_KEY_ID".to_owned(), "AKIDFROMENV".to_owned()));
    env.push(("AWS_SECRET_ACCESS_KEY".to_owned(), secret.to_owned()));
    let (mut signer, response, bytes) = sign_once(vault, env, &public).await;
    verified(&public, &bytes, &response);
    assert_eq!(
        fake.access_key_ids().into_iter().collect::<Vec<_>>(),
        ["AKIDFROMENV"]
    );
    assert!(!signer.log().contains(secret));
    let _ = signer.terminate();
}

/// Without any credentials (no keys, no variables, no profile, no instance metadata) the
/// vault does not open and says why; nothing reaches KMS unsigned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_anywhere_is_reported_not_guessed() {
    let fake = FakeKms::start().await.unwrap();
    let (_, public) = fake.add_key(Curve::P256).unwrap();
    let vault = format!(
        "    driver: awskms\n    config:\n      region: us-east-1\n      endpoint: {}\n",
        fake.endpoint()
    );
    let mut signer = TestSigner::new(SignerConfig {
        vaults: vec![("kms".to_owned(), vault)],
        enabled: vec![(public.hash(), Some(Policy::allow(&["preattestation"])))],
        env: hermetic_aws_env(),
        ..SignerConfig::default()
    })
    .unwrap();
    let listed = signer.cli(&["list"]).unwrap();
    let stdout = String::from_utf8_lossy(&listed.stdout).to_string();
    let stderr = String::from_utf8_lossy(&listed.stderr).to_string();
    // The key is listed only as missing, and the vault as unavailable for want of
    // credentials, said once (not retried as if KMS were down).
    let key_line = stdout
        .lines()
        .find(|l| l.starts_with(&public.hash().to_b58check()))
        .unwrap_or_default();
    assert!(key_line.contains("MISSING"), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("VAULT UNAVAILABLE") && stdout.contains("no usable AWS credentials"),
        "{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("(temporary)"), "{stdout}");
    assert_eq!(fake.requests("ListKeys"), 0, "nothing unsigned reaches KMS");
    let _ = signer.terminate();
}

/// A tz4 key (no KMS signs BLS) in a key file sealed by a moto KMS key: `import
/// --seal-with` writes it, `serve` unseals it through KMS Decrypt once and signs with it.
/// The file holds neither the key nor the data key in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_sealed_by_kms_serves_a_tz4_key() {
    let moto = Moto::start().await.unwrap();
    let sealing = moto
        .create_key("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("consensus.sealed.json");
    let consensus = format!(
        "    driver: file\n    config:\n      file: \"{}\"\n",
        file.display()
    );
    let secret = tezos_crypto::SecretKey::generate(Curve::Bls12_381);
    let public = secret.public_key();
    let mut signer = TestSigner::new(SignerConfig {
        vaults: vec![
            ("kms".to_owned(), yaml(&moto.endpoint())),
            ("consensus".to_owned(), consensus),
        ],
        env: hermetic_aws_env(),
        ..SignerConfig::default()
    })
    .unwrap();
    let out = signer
        .cli(&[
            "import",
            "--vault",
            "consensus",
            "--seal-with",
            "kms",
            "--seal-key",
            &sealing,
            secret.to_b58check().as_str(),
        ])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(secret.to_b58check().as_str()), "{text}");
    let sealed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(sealed["sealed_by"]["vault"], "kms", "{text}");
    assert_eq!(sealed["sealed_by"]["key"], sealing.as_str(), "{text}");
    assert_eq!(sealed["keys"].as_array().unwrap().len(), 1, "{text}");

    signer
        .enable(public.hash(), Some(Policy::allow(&["preattestation"])))
        .unwrap();
    signer.start().await.unwrap();
    let bytes = Consensus::new(7, 0, 1).preattestation();
    let mut conn = signer.connect().await.unwrap();
    let response = conn
        .sign(&signer.key_path(&public.hash()), &bytes)
        .await
        .unwrap();
    verified(&public, &bytes, &response);
    let _ = signer.terminate();
}
