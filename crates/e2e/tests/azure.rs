//! The `azure` driver against [`FakeAzure`], a fake of the documented Key Vault, Entra ID
//! and managed identity REST subset (no Azure emulator exists): the conformance suite
//! through `signatory serve`, ECAD's configuration, each credential source, token refresh,
//! retries, import, and discovery.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use signatory_e2e::conformance::{run, Backend};
use signatory_e2e::fakes::azure::{ClientCertificate, FakeAzure, Mode, ALL_PERMISSIONS, TENANT};
use signatory_e2e::requests::Consensus;
use signatory_e2e::{Policy, SignerConfig, TestSigner};
use signatory_signer::vault::{Vault, VaultError};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tezos_crypto::{Curve, SecretKey, Signature, SigningVersion};

const CLIENT: &str = "d5ccc5ea-8a1f-4dc1-9673-183a4c85e280";
const SECRET: &str = "fake-client-secret-value";
const MESSAGE: &[u8] = b"\x03\x01\x02signatory azure test operation";

fn secret_yaml(fake: &FakeAzure) -> String {
    format!(
        "vault: {url}\ntenant_id: {TENANT}\nclient_id: {CLIENT}\nclient_secret: {SECRET}\nauthority_host: {url}\n",
        url = fake.url
    )
}

fn settings(yaml: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(yaml).unwrap()
}

async fn open(yaml: &str) -> Result<Arc<dyn Vault>, signatory_vaults::OpenError> {
    signatory_vaults::open("az", "azure", &settings(yaml)).await
}

fn private_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// Sign with every listed key and check each signature against its public key (low-S).
async fn signs_with_every_key(vault: &dyn Vault) -> usize {
    let keys = vault.list_keys().await.unwrap();
    for key in &keys {
        let signature = vault
            .sign(&key.pkh, MESSAGE, SigningVersion::default())
            .await
            .unwrap();
        key.public_key
            .verify(MESSAGE, &signature, SigningVersion::default())
            .unwrap();
        assert!(signature.is_low_s(), "{signature:?}");
    }
    keys.len()
}

#[tokio::test]
async fn the_azure_driver_conforms_against_the_fake() {
    let fake = Arc::new(FakeAzure::start().unwrap());
    fake.add_secret_client(CLIENT, SECRET, ALL_PERMISSIONS);
    let yaml = secret_yaml(&fake)
        .lines()
        .map(|line| format!("      {line}\n"))
        .collect::<String>();
    run(Backend {
        vault: "azure".to_owned(),
        yaml: format!("    driver: azure\n    config:\n{yaml}"),
        env: Vec::new(),
        curves: vec![Curve::Secp256k1, Curve::P256],
        refused_curves: vec![Curve::Ed25519, Curve::Bls12_381],
        keys: Vec::new(),
        pooled: false,
        outage: Some(Box::new(Arc::clone(&fake))),
    })
    .await
    .unwrap();
    // `generate` made one key of each curve, in the HSM by default.
    let kinds: Vec<String> = fake.keys().into_iter().map(|(_, kty)| kty).collect();
    assert_eq!(kinds, vec!["EC-HSM", "EC-HSM"]);
}

/// ECAD's documented configuration (client secret variant), only the URLs pointed at the
/// fake: `subscription_id` and `resource_group` are accepted.
#[tokio::test]
async fn an_ecad_configuration_with_a_client_secret_starts_and_signs() {
    let fake = FakeAzure::start().unwrap();
    fake.add_secret_client(CLIENT, SECRET, &["list", "get", "sign"]);
    let public_key = fake.add_ec_key("sigy-EC-HSM", Curve::P256).unwrap();
    let pkh = public_key.hash();
    let yaml = format!(
        "    driver: azure\n    config:\n      vault: {url}/\n      tenant_id: {TENANT}\n      \
         client_id: {CLIENT}\n      client_secret: {SECRET}\n      \
         subscription_id: be223726-6dc1-4cdc-ab26-15a082bdaaa9\n      resource_group: sigy\n      \
         authority_host: {url}\n",
        url = fake.url
    );
    let mut signer = TestSigner::new(SignerConfig {
        vaults: vec![("azure".to_owned(), yaml)],
        enabled: vec![(pkh, Some(Policy::allow(&["preattestation"])))],
        ..SignerConfig::default()
    })
    .unwrap();
    let listed = signer.cli(&["list"]).unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listing.contains(&pkh.to_b58check()), "{listing}");
    signer.start().await.unwrap();
    let bytes = Consensus::new(10, 0, 1).preattestation();
    let mut conn = signer.connect().await.unwrap();
    let response = conn.sign(&signer.key_path(&pkh), &bytes).await.unwrap();
    let signature = Signature::from_b58check(&response.json_str("signature").unwrap()).unwrap();
    public_key
        .verify(&bytes, &signature, SigningVersion::default())
        .unwrap();
    assert!(!signer.log().contains(SECRET), "the log shows the secret");
    let _ = signer.terminate();
}

#[tokio::test]
async fn a_pkcs12_client_certificate_signs_its_assertion() {
    let fake = FakeAzure::start().unwrap();
    let certificate = ClientCertificate::generate("signatory").unwrap();
    fake.add_certificate_client(CLIENT, &certificate.certificate, ALL_PERMISSIONS);
    fake.add_ec_key("baker", Curve::Secp256k1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p12 = private_file(
        dir.path(),
        "sp.p12",
        &certificate.pkcs12("p12-pass").unwrap(),
    );
    let vault = open(&format!(
        "vault: {url}\ntenant_id: {TENANT}\nclient_id: {CLIENT}\nclient_pkcs12_certificate: {p12}\n\
         decrypt_password: p12-pass\nauthority_host: {url}\n",
        url = fake.url
    ))
    .await
    .unwrap();
    assert_eq!(signs_with_every_key(vault.as_ref()).await, 1);
    assert_eq!(fake.count("token"), 1);
    assert!(!format!("{vault:?}").contains("p12-pass"));

    // The wrong password does not open the file, and says which setting to fix.
    let e = open(&format!(
        "vault: {url}\ntenant_id: {TENANT}\nclient_id: {CLIENT}\nclient_pkcs12_certificate: {p12}\n\
         decrypt_password: wrong-pass\nauthority_host: {url}\n",
        url = fake.url
    ))
    .await
    .unwrap_err();
    assert!(e.to_string().contains("client_pkcs12_certificate"), "{e}");
    assert!(!e.to_string().contains("wrong-pass"), "{e}");
}

#[tokio::test]
async fn a_pem_key_with_the_thumbprint_signs_its_assertion_and_a_wrong_thumbprint_is_refused() {
    let fake = FakeAzure::start().unwrap();
    let certificate = ClientCertificate::generate("signatory").unwrap();
    fake.add_certificate_client(CLIENT, &certificate.certificate, ALL_PERMISSIONS);
    fake.add_ec_key("baker", Curve::P256).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = private_file(dir.path(), "sp.key", &certificate.key_pem().unwrap());
    let yaml = |thumbprint: &str| {
        format!(
            "vault: {url}\ntenant_id: {TENANT}\nclient_id: {CLIENT}\nclient_private_key: {key}\n\
             client_certificate_thumbprint: {thumbprint}\nauthority_host: {url}\n",
            url = fake.url
        )
    };
    let vault = open(&yaml(&certificate.thumbprint_hex().unwrap()))
        .await
        .unwrap();
    assert_eq!(signs_with_every_key(vault.as_ref()).await, 1);

    // Another certificate's thumbprint: Entra ID does not find the key (AADSTS700027);
    // a refusal, not an outage, and not retried.
    let other = ClientCertificate::generate("other").unwrap();
    let before = fake.count("token");
    let e = open(&yaml(&other.thumbprint_hex().unwrap()))
        .await
        .unwrap_err();
    assert!(!e.is_unavailable(), "{e}");
    assert!(e.to_string().contains("AADSTS700027"), "{e}");
    assert_eq!(fake.count("token"), before);

    // ECAD's `client_certificate` (the PEM certificate) instead of the thumbprint.
    let cert = private_file(
        dir.path(),
        "sp.crt",
        &certificate.certificate_pem().unwrap(),
    );
    let vault = open(&format!(
        "vault: {url}\ntenant_id: {TENANT}\nclient_id: {CLIENT}\nclient_private_key: {key}\n\
         client_certificate: {cert}\nauthority_host: {url}\n",
        url = fake.url
    ))
    .await
    .unwrap();
    assert_eq!(signs_with_every_key(vault.as_ref()).await, 1);
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_without_showing_it() {
    let fake = FakeAzure::start().unwrap();
    fake.add_secret_client(CLIENT, "the-right-secret", ALL_PERMISSIONS);
    let e = open(&secret_yaml(&fake)).await.unwrap_err();
    let text = e.to_string();
    assert!(!e.is_unavailable(), "{text}");
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(
        !text.contains(SECRET) && !text.contains("the-right-secret"),
        "{text}"
    );
}

/// Managed identity through `signatory list` (the IMDS address and App Service variables
/// are the environment's, so the test gives them to the process).
#[tokio::test]
async fn managed_identity_through_imds_and_app_service() {
    let fake = FakeAzure::start().unwrap();
    fake.enable_managed_identity(&["list", "get", "sign"], Some("app-service-header-secret"));
    let pkh = fake.add_ec_key("baker", Curve::Secp256k1).unwrap().hash();
    let yaml = format!(
        "    driver: azure\n    config:\n      vault: {}\n",
        fake.url
    );
    for (env, counter) in [
        (
            vec![(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST".to_owned(),
                fake.url.clone(),
            )],
            "imds",
        ),
        (
            vec![
                (
                    "IDENTITY_ENDPOINT".to_owned(),
                    format!("{}/msi/token", fake.url),
                ),
                (
                    "IDENTITY_HEADER".to_owned(),
                    "app-service-header-secret".to_owned(),
                ),
            ],
            "app_service",
        ),
    ] {
        let signer = TestSigner::new(SignerConfig {
            vaults: vec![("azure".to_owned(), yaml.clone())],
            env,
            ..SignerConfig::default()
        })
        .unwrap();
        let listed = signer.cli(&["list"]).unwrap();
        let listing = String::from_utf8_lossy(&listed.stdout);
        assert!(
            listing.contains(&pkh.to_b58check()),
            "{counter}: {listing}{}",
            String::from_utf8_lossy(&listed.stderr)
        );
        assert_eq!(fake.count(counter), 1, "{counter}");
    }
}

#[tokio::test]
async fn tokens_are_refreshed_before_they_expire_and_a_rejected_one_is_replaced() {
    let fake = FakeAzure::start().unwrap();
    fake.add_secret_client(CLIENT, SECRET, ALL_PERMISSIONS);
    fake.add_ec_key("baker", Curve::P256).unwrap();
    fake.set_token_lifetime(Duration::from_secs(2));
    let vault = open(&secret_yaml(&fake)).await.unwrap();
    assert_eq!(signs_with_every_key(vault.as_ref()).await, 1);
    assert_eq!(fake.count("token"), 1);
    // Past half the token's life it is refreshed before use: no request meets a 401.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(signs_with_every_key(vault.as_ref()).await, 1);
    assert_eq!(fake.count("token"), 2);
    assert_eq!(fake.count("unauthorized"), 0);

    // A token the service stopped accepting: one 401, one new token, the call succeeds.
    fake.set_token_lifetime(Duration::from_secs(3600));
    fake.revoke_tokens();
    let pkh = vault.list_keys().await.unwrap()[0].pkh;
    vault
        .sign(&pkh, MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    assert_eq!(fake.count("unauthorized"), 1);
    assert_eq!(fake.count("token"), 3);
}

#[tokio::test]
async fn concurrent_calls_share_one_token_refresh() {
    let fake = FakeAzure::start().unwrap();
    fake.add_secret_client(CLIENT, SECRET, ALL_PERMISSIONS);
    fake.add_ec_key("baker", Curve::P256).unwrap();
    let vault = open(&secret_yaml(&fake)).await.unwrap();
    let pkh = vault.list_keys().await.unwrap()[0].pkh;
    fake.revoke_tokens();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let vault = vault.clone();
        tasks.spawn(async move { vault.sign(&pkh, MESSAGE, SigningVersion::default()).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    // Every call met the revoked token, but only one new token was asked for.
    assert_eq!(fake.count("token"), 2);
}

#[tokio::test]
async fn throttling_is_retried_and_counted_a_refusal_is_not() {
    let fake = FakeAzure::start().unwrap();
    fake.add_secret_client(CLIENT, SECRET, ALL_PERMISSIONS);
    fake.add_secret_client("no-sign", SECRET, &["list", "get"]);
    fake.add_ec_key("baker", Curve::Secp256k1).unwrap();
    let vault = open(&secret_yaml(&fake)).await.unwrap();
    let pkh = vault.list_keys().await.unwrap()[0].pkh;

    fake.set_mode(Mode::Throttle {
        remaining: 2,
        retry_after: 0,
    });
    vault
        .sign(&pkh, MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    let stats = vault.call_stats().unwrap();
    assert_eq!((stats.retries, stats.throttled), (2, 2), "{stats:?}");
    assert_eq!(fake.count("throttled"), 2);

    // Retry-After is waited for.
    fake.set_mode(Mode::Throttle {
        remaining: 1,
        retry_after: 1,
    });
    let started = Instant::now();
    vault
        .sign(&pkh, MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // A wait longer than the call's deadline: a temporary failure now, no retry.
    fake.set_mode(Mode::Throttle {
        remaining: 1,
        retry_after: 60,
    });
    let started = Instant::now();
    let e = vault
        .sign(&pkh, MESSAGE, SigningVersion::default())
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    fake.set_mode(Mode::Up);

    // 403: not retried, permanent.
    let denied = open(&secret_yaml(&fake).replace(CLIENT, "no-sign"))
        .await
        .unwrap();
    let pkh = denied.list_keys().await.unwrap()[0].pkh;
    let before = fake.count("sign");
    let e = denied
        .sign(&pkh, MESSAGE, SigningVersion::default())
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert!(
        e.to_string().contains("403") && e.to_string().contains("Forbidden"),
        "{e}"
    );
    assert_eq!(fake.count("sign"), before);
    assert_eq!(fake.count("forbidden"), 1);
    assert_eq!(denied.call_stats().unwrap().retries, 0);
}

#[tokio::test]
async fn a_key_vault_that_is_down_fails_temporarily_after_retries() {
    let fake = FakeAzure::start().unwrap();
    fake.add_secret_client(CLIENT, SECRET, ALL_PERMISSIONS);
    fake.add_ec_key("baker", Curve::P256).unwrap();
    fake.set_mode(Mode::Down);
    let e = open(&secret_yaml(&fake)).await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    fake.set_mode(Mode::Up);
    let vault = open(&secret_yaml(&fake)).await.unwrap();
    let pkh = vault.list_keys().await.unwrap()[0].pkh;
    fake.set_mode(Mode::Down);
    let e = vault
        .sign(&pkh, MESSAGE, SigningVersion::default())
        .await
        .unwrap_err();
    assert!(
        e.is_transient() && matches!(e, VaultError::Backend { .. }),
        "{e}"
    );
    let stats = vault.call_stats().unwrap();
    assert_eq!((stats.retries, stats.server_errors), (3, 4), "{stats:?}");
    assert!(vault.health().await.is_err());
}

#[tokio::test]
async fn an_imported_key_signs_and_generate_follows_key_type() {
    let fake = FakeAzure::start().unwrap();
    fake.add_secret_client(CLIENT, SECRET, ALL_PERMISSIONS);
    let vault = open(&format!("{}key_type: EC\n", secret_yaml(&fake)))
        .await
        .unwrap();
    for curve in [Curve::P256, Curve::Secp256k1] {
        let secret = SecretKey::generate(curve);
        let expected = secret.public_key();
        let imported = vault.import(secret).await.unwrap();
        assert_eq!(imported.public_key, expected);
        let signature = vault
            .sign(&imported.pkh, MESSAGE, SigningVersion::default())
            .await
            .unwrap();
        expected
            .verify(MESSAGE, &signature, SigningVersion::default())
            .unwrap();
    }
    let generated = vault.generate(Curve::P256).await.unwrap();
    assert!(vault
        .list_keys()
        .await
        .unwrap()
        .iter()
        .any(|k| k.pkh == generated.pkh));
    let kinds: Vec<String> = fake.keys().into_iter().map(|(_, kty)| kty).collect();
    assert_eq!(
        kinds,
        vec!["EC", "EC", "EC"],
        "software keys with key_type: EC"
    );
    let e = vault
        .import(SecretKey::generate(Curve::Ed25519))
        .await
        .unwrap_err();
    assert!(matches!(e, VaultError::Unsupported { .. }), "{e}");
}

#[tokio::test]
async fn discovery_pages_through_the_vault_and_skips_keys_tezos_cannot_use() {
    let fake = FakeAzure::start().unwrap();
    fake.add_secret_client(CLIENT, SECRET, ALL_PERMISSIONS);
    fake.set_page_size(2);
    let tz2 = fake.add_ec_key("a-tz2", Curve::Secp256k1).unwrap().hash();
    let tz3 = fake.add_ec_key("b-tz3", Curve::P256).unwrap().hash();
    fake.add_rsa_key("c-rsa");
    fake.add_ec_key("d-disabled", Curve::P256).unwrap();
    fake.disable_key("d-disabled");
    fake.add_ec_key("e-verify-only", Curve::P256).unwrap();
    fake.set_key_ops("e-verify-only", &["verify"]);
    let vault = open(&secret_yaml(&fake)).await.unwrap();
    let mut found: Vec<_> = vault
        .list_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| k.pkh)
        .collect();
    found.sort();
    let mut expected = vec![tz2, tz3];
    expected.sort();
    assert_eq!(found, expected);
    let unusable = vault.unusable_keys();
    let reason = |id: &str| {
        unusable
            .iter()
            .find(|k| k.id == id)
            .map(|k| k.reason.clone())
            .unwrap_or_else(|| panic!("{id} not listed as unusable: {unusable:?}"))
    };
    assert!(reason("c-rsa").contains("key type RSA-HSM"));
    assert!(reason("d-disabled").contains("disabled"));
    assert!(reason("e-verify-only").contains("sign"));
    assert_eq!(unusable.len(), 3);
    // Five keys in pages of two: three pages.
    assert!(fake.count("list") >= 3);
}

#[tokio::test]
async fn a_next_page_outside_the_vault_is_refused_without_sending_the_token() {
    let fake = FakeAzure::start().unwrap();
    let elsewhere = FakeAzure::start().unwrap();
    fake.add_secret_client(CLIENT, SECRET, ALL_PERMISSIONS);
    fake.set_page_size(1);
    fake.add_ec_key("a", Curve::P256).unwrap();
    fake.add_ec_key("b", Curve::P256).unwrap();
    fake.set_next_link_base(Some(&elsewhere.url));
    let e = open(&secret_yaml(&fake)).await.unwrap_err();
    assert!(e.to_string().contains("outside the vault"), "{e}");
    assert_eq!(elsewhere.count("list") + elsewhere.count("unauthorized"), 0);
}
