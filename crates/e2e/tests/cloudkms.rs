//! The `cloudkms` driver against the in-process fake of Cloud KMS's REST API
//! ([`signatory_e2e::fakes::cloudkms`]): the conformance suite through the `signatory`
//! binary, ECAD's documented configuration, credentials from a service-account file, the
//! metadata server and gcloud's user file, token refresh, retries, import jobs and
//! discovery. No real Google service is involved.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use signatory_e2e::conformance::{run, Backend, Outage};
use signatory_e2e::fakes::cloudkms::{FakeCloudKms, Mode};
use signatory_e2e::requests::Consensus;
use signatory_e2e::signer::{Policy, SignerConfig, TestSigner};
use signatory_signer::vault::Vault;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tezos_crypto::{Curve, PublicKey, SecretKey, SigningVersion};

const MESSAGE: &[u8] = b"\x03\x01\x02signatory cloudkms test operation";

/// A private file (credentials must be 0600).
fn private_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The vault's `config:` with a service-account file (ECAD's keys) and the fake's endpoint.
fn config(fake: &FakeCloudKms, credentials: &Path, extra: &str) -> String {
    format!(
        "project: {}\nlocation: {}\nkey_ring: {}\napplication_credentials: {}\nendpoint: {}\n{extra}",
        fake.project,
        fake.location,
        fake.key_ring,
        credentials.display(),
        fake.endpoint()
    )
}

async fn open(settings: &str) -> Result<Arc<dyn Vault>, signatory_vaults::OpenError> {
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(settings).unwrap();
    signatory_vaults::open("kms", "cloudkms", &value).await
}

struct FakeOutage(Arc<FakeCloudKms>);

impl Outage for FakeOutage {
    fn take_down(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move { self.0.set_mode(Mode::Down) })
    }
    fn bring_back(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move { self.0.set_mode(Mode::Up) })
    }
}

fn indent(text: &str, spaces: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(spaces)))
        .collect()
}

/// tz1, tz2 and tz3 made with `signatory generate`, tz4 refused, signing through `serve`,
/// and an outage (connections refused, 503 on open ones) answered 503 and recovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloudkms_driver_conforms() {
    let fake = Arc::new(FakeCloudKms::start().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let sa = private_file(dir.path(), "sa.json", &fake.service_account_json());
    run(Backend {
        vault: "gcp".to_owned(),
        yaml: format!(
            "    driver: cloudkms\n    config:\n{}",
            indent(&config(&fake, &sa, "max_retries: 1"), 6)
        ),
        env: Vec::new(),
        curves: vec![Curve::Ed25519, Curve::Secp256k1, Curve::P256],
        refused_curves: vec![Curve::Bls12_381],
        keys: Vec::new(),
        pooled: false,
        outage: Some(Box::new(FakeOutage(fake.clone()))),
    })
    .await
    .unwrap();
    assert!(fake.stats().token_grants >= 1);
}

/// ECAD's documented example (project, location, key_ring, application_credentials),
/// with only `endpoint` added so that it reaches the fake, serves an existing tz3 key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecads_documented_configuration_starts_and_signs() {
    let fake = FakeCloudKms::start().await.unwrap();
    let version = fake.add_key(
        "sigyhsm",
        "ASYMMETRIC_SIGN",
        &[("EC_SIGN_P256_SHA256", "ENABLED")],
    );
    let public = PublicKey::from_spki_der(&fake.public_key_der(&version[0]).unwrap()).unwrap();
    let pkh = public.hash();
    let dir = tempfile::tempdir().unwrap();
    let sa = private_file(
        dir.path(),
        "signatory-testing-a7sdfew625aecb.json",
        &fake.service_account_json(),
    );
    let yaml = format!(
        "    driver: cloudkms\n    config:\n      project: {}\n      location: {}\n      \
         key_ring: {}\n      application_credentials: {}\n      endpoint: {}\n",
        fake.project,
        fake.location,
        fake.key_ring,
        sa.display(),
        fake.endpoint()
    );
    let mut signer = TestSigner::new(SignerConfig {
        vaults: vec![("gcp".to_owned(), yaml)],
        enabled: vec![(
            pkh,
            Some(Policy::allow(&["preattestation", "attestation", "block"])),
        )],
        ..SignerConfig::default()
    })
    .unwrap();
    let listed = signer.cli(&["list"]).unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listing.contains(&pkh.to_b58check()), "{listing}");
    signer.start().await.unwrap();
    let bytes = Consensus::new(7, 0, 1).preattestation();
    let mut conn = signer.connect().await.unwrap();
    let response = conn.sign(&signer.key_path(&pkh), &bytes).await.unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let signature =
        tezos_crypto::Signature::from_b58check(&response.json_str("signature").unwrap()).unwrap();
    public
        .verify(&bytes, &signature, SigningVersion::default())
        .unwrap();
    // A throttled call is retried, and /metrics counts it.
    fake.fail_next(429, 1);
    let bytes = Consensus::new(8, 0, 1).preattestation();
    let mut conn = signer.connect().await.unwrap();
    let response = conn.sign(&signer.key_path(&pkh), &bytes).await.unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let wanted = [
        "signatory_vault_retries_total{vault=\"gcp\"} 1",
        "signatory_vault_call_failures_total{class=\"throttled\",vault=\"gcp\"} 1",
    ];
    let mut metrics = String::new();
    for _ in 0..20 {
        let mut utility = signatory_e2e::Connection::connect(signer.utility)
            .await
            .unwrap();
        metrics = utility.get("/metrics").await.unwrap().text();
        if wanted.iter().all(|w| metrics.lines().any(|l| l == *w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for w in wanted {
        assert!(metrics.lines().any(|l| l == w), "{w} not in\n{metrics}");
    }
    let log = signer.log();
    assert!(
        !log.contains("PRIVATE KEY") && !log.contains("ya29."),
        "{log}"
    );
}

/// Credentials from the metadata server (`GCE_METADATA_HOST`, `Metadata-Flavor`), when no
/// file is configured, `GOOGLE_APPLICATION_CREDENTIALS` is unset and gcloud has no file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_server_gives_the_token_when_nothing_else_does() {
    let fake = FakeCloudKms::start().await.unwrap();
    let version = fake.add_key(
        "baker",
        "ASYMMETRIC_SIGN",
        &[("EC_SIGN_ED25519", "ENABLED")],
    );
    let public = PublicKey::from_spki_der(&fake.public_key_der(&version[0]).unwrap()).unwrap();
    let home = tempfile::tempdir().unwrap();
    let yaml = format!(
        "    driver: cloudkms\n    config:\n      project: {}\n      location: {}\n      \
         key_ring: {}\n      endpoint: {}\n",
        fake.project,
        fake.location,
        fake.key_ring,
        fake.endpoint()
    );
    let mut signer = TestSigner::new(SignerConfig {
        vaults: vec![("gcp".to_owned(), yaml)],
        enabled: vec![(public.hash(), Some(Policy::allow(&["preattestation"])))],
        env: vec![
            ("GCE_METADATA_HOST".to_owned(), fake.metadata_host()),
            ("HOME".to_owned(), home.path().display().to_string()),
            (
                "CLOUDSDK_CONFIG".to_owned(),
                home.path().join("none").display().to_string(),
            ),
            ("GOOGLE_APPLICATION_CREDENTIALS".to_owned(), String::new()),
        ],
        ..SignerConfig::default()
    })
    .unwrap();
    signer.start().await.unwrap();
    let bytes = Consensus::new(9, 0, 1).preattestation();
    let mut conn = signer.connect().await.unwrap();
    let response = conn
        .sign(&signer.key_path(&public.hash()), &bytes)
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let signature =
        tezos_crypto::Signature::from_b58check(&response.json_str("signature").unwrap()).unwrap();
    public
        .verify(&bytes, &signature, SigningVersion::default())
        .unwrap();
    let stats = fake.stats();
    assert!(
        stats.metadata_tokens >= 1 && stats.token_grants == 0,
        "{stats:?}"
    );
}

/// gcloud's `authorized_user` file as inline `application_credentials_data`: the
/// refresh-token grant.
#[tokio::test]
async fn gcloud_user_credentials_use_the_refresh_token_grant() {
    let fake = FakeCloudKms::start().await.unwrap();
    fake.add_key(
        "baker",
        "ASYMMETRIC_SIGN",
        &[("EC_SIGN_P256_SHA256", "ENABLED")],
    );
    let data = fake.authorized_user_json().replace('\'', "''");
    let vault = open(&format!(
        "{{project: {}, location: {}, key_ring: {}, endpoint: '{}', \
         application_credentials_data: '{data}'}}",
        fake.project,
        fake.location,
        fake.key_ring,
        fake.endpoint()
    ))
    .await
    .unwrap();
    assert_eq!(vault.list_keys().await.unwrap().len(), 1);
    assert_eq!(fake.stats().token_grants, 1);
}

/// A service account the token endpoint does not know: a configuration error naming the
/// vault (not "unavailable"), without the key in it.
#[tokio::test]
async fn a_refused_service_account_is_a_configuration_error() {
    let fake = FakeCloudKms::start().await.unwrap();
    let other = FakeCloudKms::start().await.unwrap();
    // Another account's key, with this fake's token endpoint.
    let foreign = other
        .service_account_json()
        .replace(&other.token_uri(), &fake.token_uri());
    let dir = tempfile::tempdir().unwrap();
    let sa = private_file(dir.path(), "sa.json", &foreign);
    let e = open(&config(&fake, &sa, "")).await.unwrap_err();
    let text = e.to_string();
    assert!(!e.is_unavailable(), "{text}");
    assert!(
        text.contains("invalid_grant") && text.contains("vault `kms`"),
        "{text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}

/// Tokens with a 2 s life are replaced before they expire, by one exchange even when many
/// requests need one at once; the service never saw an expired token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_before_they_expire_one_exchange_at_a_time() {
    let fake = FakeCloudKms::start().await.unwrap();
    fake.set_token_lifetime(2);
    let version = fake.add_key(
        "baker",
        "ASYMMETRIC_SIGN",
        &[("EC_SIGN_SECP256K1_SHA256", "ENABLED")],
    );
    let public = PublicKey::from_spki_der(&fake.public_key_der(&version[0]).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sa = private_file(dir.path(), "sa.json", &fake.service_account_json());
    let vault = open(&config(&fake, &sa, "")).await.unwrap();
    vault.list_keys().await.unwrap();
    let before = fake.stats().token_grants;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let vault = vault.clone();
        let pkh = public.hash();
        tasks.spawn(async move { vault.sign(&pkh, MESSAGE, SigningVersion::default()).await });
    }
    while let Some(done) = tasks.join_next().await {
        let signature = done.unwrap().unwrap();
        public
            .verify(MESSAGE, &signature, SigningVersion::default())
            .unwrap();
    }
    let stats = fake.stats();
    assert_eq!(stats.token_grants, before + 1, "{stats:?}");
    assert_eq!(stats.unauthenticated, 0, "{stats:?}");
}

/// 429 twice, then success: two retries counted; 403 is not retried.
#[tokio::test]
async fn throttling_is_retried_and_counted_a_refusal_is_not() {
    let fake = FakeCloudKms::start().await.unwrap();
    let version = fake.add_key(
        "baker",
        "ASYMMETRIC_SIGN",
        &[("EC_SIGN_P256_SHA256", "ENABLED")],
    );
    let public = PublicKey::from_spki_der(&fake.public_key_der(&version[0]).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sa = private_file(dir.path(), "sa.json", &fake.service_account_json());
    let vault = open(&config(&fake, &sa, "max_retries: 3")).await.unwrap();
    vault.list_keys().await.unwrap();
    let pkh = public.hash();

    fake.fail_next(429, 2);
    let before = fake.stats().sign_requests;
    let signature = vault
        .sign(&pkh, MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    public
        .verify(MESSAGE, &signature, SigningVersion::default())
        .unwrap();
    assert_eq!(fake.stats().sign_requests, before + 3);
    let stats = vault.call_stats().unwrap();
    assert_eq!((stats.retries, stats.throttled), (2, 2), "{stats:?}");

    fake.deny_signing(true);
    let before = fake.stats().sign_requests;
    let e = vault
        .sign(&pkh, MESSAGE, SigningVersion::default())
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert!(e.to_string().contains("PERMISSION_DENIED"), "{e}");
    assert_eq!(fake.stats().sign_requests, before + 1);
    assert_eq!(vault.call_stats().unwrap().retries, 2);

    // Retries exhausted: a transient error after 1 + max_retries attempts.
    fake.deny_signing(false);
    fake.fail_next(503, 4);
    let before = fake.stats().sign_requests;
    let e = vault
        .sign(&pkh, MESSAGE, SigningVersion::default())
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(fake.stats().sign_requests, before + 4);
}

/// Import of each curve through an import job (RSA-OAEP + AES-KWP, unwrapped by the fake),
/// then signing with the imported key verifies against the original public key.
#[tokio::test]
async fn keys_are_imported_through_an_import_job_and_sign() {
    let fake = FakeCloudKms::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sa = private_file(dir.path(), "sa.json", &fake.service_account_json());
    let vault = open(&config(&fake, &sa, "")).await.unwrap();
    for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
        let secret = SecretKey::generate(curve);
        let public = secret.public_key();
        let imported = vault.import(secret).await.unwrap();
        assert_eq!(imported.public_key, public, "{curve}");
        let label = imported.label.clone().unwrap();
        assert!(label.contains("/cryptoKeyVersions/"), "{label}");
        assert_eq!(
            PublicKey::from_spki_der(&fake.public_key_der(&label).unwrap()).unwrap(),
            public
        );
        let signature = vault
            .sign(&public.hash(), MESSAGE, SigningVersion::default())
            .await
            .unwrap();
        public
            .verify(MESSAGE, &signature, SigningVersion::default())
            .unwrap();
        // Tezos signs the Blake2b digest: ECDSA over it used as the hash, low-S.
        if curve != Curve::Ed25519 {
            assert!(signature.is_low_s(), "{curve}");
        }
    }
    let e = vault
        .import(SecretKey::generate(Curve::Bls12_381))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not support"), "{e}");
    // A new listing finds the imported keys.
    assert_eq!(vault.list_keys().await.unwrap().len(), 3);
}

/// Discovery follows pages, takes ENABLED versions of the three algorithms, and reports
/// a disabled version, another algorithm and another purpose with their reasons.
#[tokio::test]
async fn discovery_skips_what_it_cannot_use_with_reasons() {
    let fake = FakeCloudKms::start().await.unwrap();
    fake.set_max_page_size(1);
    let baker = fake.add_key(
        "baker",
        "ASYMMETRIC_SIGN",
        &[
            ("EC_SIGN_P256_SHA256", "ENABLED"),
            ("EC_SIGN_P256_SHA256", "DISABLED"),
        ],
    );
    fake.add_key(
        "rsa",
        "ASYMMETRIC_SIGN",
        &[("RSA_SIGN_PKCS1_2048_SHA256", "ENABLED")],
    );
    fake.add_key(
        "sym",
        "ENCRYPT_DECRYPT",
        &[("GOOGLE_SYMMETRIC_ENCRYPTION", "ENABLED")],
    );
    fake.add_key(
        "ed",
        "ASYMMETRIC_SIGN",
        &[
            ("EC_SIGN_ED25519", "DESTROYED"),
            ("EC_SIGN_ED25519", "ENABLED"),
        ],
    );
    fake.add_key(
        "k1",
        "ASYMMETRIC_SIGN",
        &[("EC_SIGN_SECP256K1_SHA256", "ENABLED")],
    );
    let dir = tempfile::tempdir().unwrap();
    let sa = private_file(dir.path(), "sa.json", &fake.service_account_json());
    let vault = open(&config(&fake, &sa, "")).await.unwrap();
    let keys = vault.list_keys().await.unwrap();
    let mut curves: Vec<Curve> = keys.iter().map(|k| k.pkh.curve()).collect();
    curves.sort_by_key(|c| c.address_kind());
    assert_eq!(curves, vec![Curve::Ed25519, Curve::Secp256k1, Curve::P256]);
    let unusable = vault.unusable_keys();
    let reason = |id: &str| {
        unusable
            .iter()
            .find(|u| u.id.ends_with(id))
            .map(|u| u.reason.clone())
            .unwrap_or_else(|| panic!("{id} not reported: {unusable:?}"))
    };
    assert!(baker[1].ends_with("baker/cryptoKeyVersions/2"));
    assert!(reason("baker/cryptoKeyVersions/2").contains("DISABLED"));
    assert!(reason("rsa/cryptoKeyVersions/1").contains("RSA_SIGN_PKCS1_2048_SHA256"));
    assert!(reason("cryptoKeys/sym").contains("ENCRYPT_DECRYPT"));
    assert!(
        !unusable.iter().any(|u| u.id.contains("/ed/")),
        "{unusable:?}"
    );
    assert_eq!(unusable.len(), 3, "{unusable:?}");
}

/// The per-request delay the benchmark uses holds every call (here one sign).
#[tokio::test]
async fn the_fakes_delay_holds_each_request() {
    let fake = FakeCloudKms::start().await.unwrap();
    let version = fake.add_key(
        "baker",
        "ASYMMETRIC_SIGN",
        &[("EC_SIGN_P256_SHA256", "ENABLED")],
    );
    let public = PublicKey::from_spki_der(&fake.public_key_der(&version[0]).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sa = private_file(dir.path(), "sa.json", &fake.service_account_json());
    let vault = open(&config(&fake, &sa, "")).await.unwrap();
    vault.list_keys().await.unwrap();
    fake.set_delay(Duration::from_millis(20));
    let started = std::time::Instant::now();
    vault
        .sign(&public.hash(), MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(20));
}

/// A signature altered in transit fails its CRC32C and is asked for again; a token the
/// service stopped accepting (401) is replaced and the call retried; the vault's `Debug`
/// shows neither the token nor the key.
#[tokio::test]
async fn corrupted_answers_and_rejected_tokens_are_retried() {
    let fake = FakeCloudKms::start().await.unwrap();
    let version = fake.add_key(
        "baker",
        "ASYMMETRIC_SIGN",
        &[("EC_SIGN_SECP256K1_SHA256", "ENABLED")],
    );
    let public = PublicKey::from_spki_der(&fake.public_key_der(&version[0]).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sa = private_file(dir.path(), "sa.json", &fake.service_account_json());
    let vault = open(&config(&fake, &sa, "max_retries: 2")).await.unwrap();
    vault.list_keys().await.unwrap();
    let pkh = public.hash();

    fake.corrupt_next_signatures(1);
    let before = fake.stats().sign_requests;
    let signature = vault
        .sign(&pkh, MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    public
        .verify(MESSAGE, &signature, SigningVersion::default())
        .unwrap();
    assert_eq!(fake.stats().sign_requests, before + 2);
    // Every answer corrupted: the call fails (transient) rather than return it.
    fake.corrupt_next_signatures(3);
    let e = vault
        .sign(&pkh, MESSAGE, SigningVersion::default())
        .await
        .unwrap_err();
    assert!(e.is_transient() && e.to_string().contains("CRC32C"), "{e}");

    let grants = fake.stats().token_grants;
    fake.revoke_tokens();
    vault
        .sign(&pkh, MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    let stats = fake.stats();
    assert_eq!(stats.unauthenticated, 1, "{stats:?}");
    assert_eq!(stats.token_grants, grants + 1, "{stats:?}");

    let debug = format!("{vault:?}");
    assert!(
        !debug.contains("ya29.") && !debug.contains("PRIVATE KEY"),
        "{debug}"
    );
    assert!(debug.contains("signer@"), "{debug}");
}
