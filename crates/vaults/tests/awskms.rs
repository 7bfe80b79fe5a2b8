//! The `awskms` vault opened in process, against the fake KMS of `signatory-e2e` (retries,
//! refusals, an outage, one key KMS refuses to describe) and against moto with its DIGEST
//! patch (discovery of real key states, sealing with Encrypt/Decrypt).
#![cfg(feature = "awskms")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use signatory_e2e::fakes::awskms::{FakeKms, Fault};
use signatory_e2e::moto::Moto;
use signatory_signer::vault::{Vault, VaultError};
use std::sync::Arc;
use tezos_crypto::{Curve, SigningVersion};

const MESSAGE: &[u8] = b"\x03\x01\x02signatory awskms test operation";

/// Static test credentials (neither moto nor the fake checks them) and the endpoint.
fn settings(endpoint: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&format!(
        "access_key_id: AKIDTEST\nsecret_access_key: test-secret\nregion: us-east-1\nendpoint: {endpoint}\n"
    ))
    .unwrap()
}

async fn open(endpoint: &str) -> Arc<dyn Vault> {
    signatory_vaults::open("kms", "awskms", &settings(endpoint))
        .await
        .unwrap()
}

async fn sign_and_verify(vault: &dyn Vault, public: &tezos_crypto::PublicKey) {
    let signature = vault
        .sign(&public.hash(), MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    public
        .verify(MESSAGE, &signature, SigningVersion::default())
        .unwrap();
    assert!(signature.is_low_s());
}

#[tokio::test]
async fn the_fake_kms_keys_are_found_and_sign_as_tezos_verifies() {
    let fake = FakeKms::start().await.unwrap();
    let (_, tz2) = fake.add_key(Curve::Secp256k1).unwrap();
    let (_, tz3) = fake.add_key(Curve::P256).unwrap();
    let vault = open(&fake.endpoint()).await;
    let mut listed: Vec<_> = vault
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.pkh)
        .collect();
    listed.sort();
    let mut expected = vec![tz2.hash(), tz3.hash()];
    expected.sort();
    assert_eq!(listed, expected);
    // Many signatures: KMS's ECDSA is not low-S normalised, the driver must be.
    for _ in 0..8 {
        sign_and_verify(vault.as_ref(), &tz2).await;
        sign_and_verify(vault.as_ref(), &tz3).await;
    }
    assert_eq!(
        fake.access_key_ids().into_iter().collect::<Vec<_>>(),
        ["AKIDTEST"]
    );
}

#[tokio::test]
async fn throttling_is_retried_and_counted() {
    let fake = FakeKms::start().await.unwrap();
    let (_, tz3) = fake.add_key(Curve::P256).unwrap();
    let vault = open(&fake.endpoint()).await;
    let before = fake.requests("Sign");
    fake.fail_next_of("Sign", 2, Fault::Throttling);
    sign_and_verify(vault.as_ref(), &tz3).await;
    assert_eq!(
        fake.requests("Sign") - before,
        3,
        "two throttled attempts, then one signed"
    );
    let stats = vault.call_stats().unwrap();
    assert_eq!((stats.retries, stats.throttled), (2, 2), "{stats:?}");
    assert_eq!(stats.refused, 0, "{stats:?}");
}

#[tokio::test]
async fn access_denied_is_never_retried() {
    let fake = FakeKms::start().await.unwrap();
    let (_, tz2) = fake.add_key(Curve::Secp256k1).unwrap();
    let vault = open(&fake.endpoint()).await;
    let before = fake.requests("Sign");
    fake.fail_next_of("Sign", 1, Fault::AccessDenied);
    let e = vault
        .sign(&tz2.hash(), MESSAGE, SigningVersion::default())
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert!(e.to_string().contains("AccessDeniedException"), "{e}");
    assert_eq!(fake.requests("Sign") - before, 1);
    let stats = vault.call_stats().unwrap();
    assert_eq!((stats.retries, stats.refused), (0, 1), "{stats:?}");
    // The next call is not affected.
    sign_and_verify(vault.as_ref(), &tz2).await;
}

#[tokio::test]
async fn server_errors_are_retried_until_the_retries_run_out() {
    let fake = FakeKms::start().await.unwrap();
    let (_, tz3) = fake.add_key(Curve::P256).unwrap();
    let vault = open(&fake.endpoint()).await;
    fake.fail_next_of("Sign", 1, Fault::Internal);
    fake.fail_next_of("Sign", 1, Fault::DependencyTimeout);
    sign_and_verify(vault.as_ref(), &tz3).await;
    let before = fake.requests("Sign");
    fake.fail_next_of("Sign", 10, Fault::Internal);
    let e = vault
        .sign(&tz3.hash(), MESSAGE, SigningVersion::default())
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains("KMSInternalException"), "{e}");
    // One attempt and the default policy's three retries.
    assert_eq!(fake.requests("Sign") - before, 4);
    let stats = vault.call_stats().unwrap();
    assert_eq!(
        (stats.server_errors, stats.timeouts, stats.retries),
        (5, 1, 5),
        "{stats:?}"
    );
}

#[tokio::test]
async fn an_unreachable_kms_is_a_transient_failure_and_the_vault_recovers() {
    let fake = FakeKms::start().await.unwrap();
    let (_, tz2) = fake.add_key(Curve::Secp256k1).unwrap();
    let vault = open(&fake.endpoint()).await;
    fake.down().await;
    let e = vault
        .sign(&tz2.hash(), MESSAGE, SigningVersion::default())
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(vault.call_stats().unwrap().connection_errors >= 4);
    assert!(vault.health().await.is_err());
    fake.up().await.unwrap();
    sign_and_verify(vault.as_ref(), &tz2).await;
    vault.health().await.unwrap();
}

#[tokio::test]
async fn a_kms_down_at_open_leaves_the_vault_unavailable() {
    let fake = FakeKms::start().await.unwrap();
    fake.down().await;
    let e = signatory_vaults::open("kms", "awskms", &settings(&fake.endpoint()))
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e}");
}

#[tokio::test]
async fn one_key_kms_will_not_describe_is_skipped_not_the_vault() {
    let fake = FakeKms::start().await.unwrap();
    let (denied, _) = fake.add_key(Curve::P256).unwrap();
    let (_, tz2) = fake.add_key(Curve::Secp256k1).unwrap();
    let vault = open(&fake.endpoint()).await;
    fake.fail_next_of("DescribeKey", 1, Fault::AccessDenied);
    let listed = vault.list_keys().await.unwrap();
    assert_eq!(
        listed.iter().map(|k| k.pkh).collect::<Vec<_>>(),
        [tz2.hash()]
    );
    let unusable = vault.unusable_keys();
    assert_eq!(unusable.len(), 1, "{unusable:?}");
    assert!(unusable[0].id.ends_with(&denied), "{unusable:?}");
    assert!(
        unusable[0].reason.contains("AccessDeniedException"),
        "{unusable:?}"
    );
    // A throttled listing is retried, not a reason to skip keys.
    fake.fail_next_of("GetPublicKey", 1, Fault::Throttling);
    assert_eq!(vault.list_keys().await.unwrap().len(), 2);
    assert!(vault.unusable_keys().is_empty());
}

#[tokio::test]
async fn listing_follows_every_page() {
    let fake = FakeKms::start().await.unwrap();
    // Two keys a page: the driver must follow `NextMarker` to the end.
    fake.set_page_cap(2);
    let mut expected = Vec::new();
    for i in 0..5 {
        if i == 2 {
            fake.add_symmetric_key();
        }
        expected.push(fake.add_key(Curve::P256).unwrap().1.hash());
    }
    let vault = open(&fake.endpoint()).await;
    let mut listed: Vec<_> = vault
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.pkh)
        .collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
    let unusable = vault.unusable_keys();
    assert_eq!(unusable.len(), 1);
    assert!(
        unusable[0].reason.contains("ENCRYPT_DECRYPT"),
        "{unusable:?}"
    );
    assert_eq!(
        fake.requests("ListKeys"),
        2 * 3,
        "three pages, at open and here"
    );
}

#[tokio::test]
async fn discovery_on_moto_skips_disabled_symmetric_and_other_specs_with_a_reason() {
    let moto = Moto::start().await.unwrap();
    let tz2 = moto
        .create_key("ECC_SECG_P256K1", "SIGN_VERIFY")
        .await
        .unwrap();
    let tz3 = moto
        .create_key("ECC_NIST_P256", "SIGN_VERIFY")
        .await
        .unwrap();
    let disabled = moto
        .create_key("ECC_NIST_P256", "SIGN_VERIFY")
        .await
        .unwrap();
    moto.call("DisableKey", serde_json::json!({ "KeyId": disabled }))
        .await
        .unwrap();
    let symmetric = moto
        .create_key("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
        .await
        .unwrap();
    let p384 = moto
        .create_key("ECC_NIST_P384", "SIGN_VERIFY")
        .await
        .unwrap();
    let rsa = moto.create_key("RSA_2048", "SIGN_VERIFY").await.unwrap();

    let vault = open(&moto.endpoint()).await;
    let listed = vault.list_keys().await.unwrap();
    let labels: Vec<String> = listed.iter().filter_map(|k| k.label.clone()).collect();
    assert_eq!(listed.len(), 2, "{labels:?}");
    for id in [&tz2, &tz3] {
        assert!(
            labels.iter().any(|l| l.ends_with(id.as_str())),
            "{labels:?}"
        );
    }
    let curves: Vec<Curve> = listed.iter().map(|k| k.pkh.curve()).collect();
    assert!(curves.contains(&Curve::Secp256k1) && curves.contains(&Curve::P256));
    let unusable = vault.unusable_keys();
    let reason = |id: &str| {
        unusable
            .iter()
            .find(|k| k.id.ends_with(id))
            .map(|k| k.reason.clone())
            .unwrap_or_else(|| panic!("{id} not among the unusable keys: {unusable:?}"))
    };
    assert!(reason(&disabled).contains("Disabled"), "{unusable:?}");
    assert!(
        reason(&symmetric).contains("ENCRYPT_DECRYPT"),
        "{unusable:?}"
    );
    assert!(reason(&p384).contains("ECC_NIST_P384"), "{unusable:?}");
    assert!(reason(&rsa).contains("RSA_2048"), "{unusable:?}");
    for key in &listed {
        let public = key.public_key.clone();
        sign_and_verify(vault.as_ref(), &public).await;
    }
}

#[tokio::test]
async fn sealing_round_trips_on_moto_and_refuses_another_key_or_a_changed_blob() {
    let moto = Moto::start().await.unwrap();
    let key = moto
        .create_key("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
        .await
        .unwrap();
    let other = moto
        .create_key("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
        .await
        .unwrap();
    let vault = open(&moto.endpoint()).await;
    let sealer = vault.sealer().expect("the awskms vault seals");
    let secret = b"a BLS secret key's 32 bytes.....";
    let sealed = sealer.seal(&key, secret).await.unwrap();
    assert!(!sealed.windows(secret.len()).any(|w| w == secret));
    assert_eq!(
        sealer.unseal(&key, &sealed).await.unwrap().as_slice(),
        secret
    );

    let e = sealer.unseal(&other, &sealed).await.unwrap_err();
    assert!(!e.is_transient(), "{e}");
    let mut changed = sealed.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    assert!(sealer.unseal(&key, &changed).await.is_err());
    // A blob of the same key made without the driver's encryption context is refused.
    let foreign = moto
        .call(
            "Encrypt",
            serde_json::json!({"KeyId": key, "Plaintext": "c2VjcmV0"}),
        )
        .await
        .unwrap();
    let foreign = signatory_e2e::moto::decode_blob(foreign["CiphertextBlob"].as_str().unwrap());
    assert!(sealer.unseal(&key, &foreign).await.is_err());
    assert!(matches!(
        sealer.seal("", secret).await.unwrap_err(),
        VaultError::Backend {
            transient: false,
            ..
        }
    ));
}

#[tokio::test]
async fn generate_creates_a_signing_key_and_is_never_retried() {
    let fake = FakeKms::start().await.unwrap();
    let vault = open(&fake.endpoint()).await;
    let made = vault.generate(Curve::Secp256k1).await.unwrap();
    assert_eq!(made.pkh.curve(), Curve::Secp256k1);
    sign_and_verify(vault.as_ref(), &made.public_key).await;
    // A CreateKey whose answer was lost may have made a key: one attempt only.
    fake.fail_next_of("CreateKey", 1, Fault::Internal);
    let e = vault.generate(Curve::P256).await.unwrap_err();
    assert!(e.to_string().contains("KMSInternalException"), "{e}");
    assert_eq!(fake.requests("CreateKey"), 2);
    for curve in [Curve::Ed25519, Curve::Bls12_381] {
        let e = vault.generate(curve).await.unwrap_err();
        assert!(matches!(e, VaultError::Unsupported { .. }), "{e}");
    }
    assert_eq!(fake.requests("CreateKey"), 2);
}

#[tokio::test]
async fn the_fake_delay_holds_each_call() {
    let fake = FakeKms::start().await.unwrap();
    let (_, tz3) = fake.add_key(Curve::P256).unwrap();
    let vault = open(&fake.endpoint()).await;
    fake.set_delay(std::time::Duration::from_millis(20));
    let started = std::time::Instant::now();
    sign_and_verify(vault.as_ref(), &tz3).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(20));
}
