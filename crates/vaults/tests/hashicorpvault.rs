//! The `hashicorpvault` driver through the `Vault` trait: against a real OpenBao dev server
//! (sealing data keys, one renewal for many concurrent requests, a rotated key, skipped
//! keys, sign latency) and against the transit fake of `signatory-e2e` (retries of 503 and
//! 429, refusals not retried).
#![cfg(feature = "hashicorpvault")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use signatory_e2e::fakes::transit::{Failing, FakeTransit};
use signatory_e2e::openbao::{OpenBao, LEAST_POLICY};
use signatory_signer::vault::Vault;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tezos_crypto::{Curve, PublicKey, SigningVersion};

const MESSAGE: &[u8] = b"\x03\x01\x02signatory transit test operation";

fn settings(text: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(text).unwrap()
}

/// OpenBao with transit, the least policy and an AppRole role with token TTL `ttl`.
async fn openbao(ttl: &str) -> (OpenBao, String, String) {
    let bao = OpenBao::start().await.unwrap();
    bao.enable_transit("transit").await.unwrap();
    bao.put_policy("signatory", LEAST_POLICY).await.unwrap();
    let (role_id, secret_id) = bao.approle("signer", "signatory", ttl, "1h").await.unwrap();
    (bao, role_id, secret_id)
}

async fn open_approle(bao: &OpenBao, role_id: &str, secret_id: &str) -> Arc<dyn Vault> {
    signatory_vaults::open(
        "hv",
        "hashicorpvault",
        &settings(&format!(
            "{{address: '{}', roleID: '{role_id}', secretID: '{secret_id}', \
             transitConfig: {{mountPoint: transit}}}}",
            bao.address
        )),
    )
    .await
    .unwrap()
}

/// The vault's key listed under transit name `name`.
async fn listed(vault: &dyn Vault, name: &str) -> PublicKey {
    vault
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.label.as_deref() == Some(name))
        .unwrap()
        .public_key
}

#[tokio::test]
async fn data_keys_seal_and_unseal_with_transit_and_the_least_policy() {
    let (bao, role_id, secret_id) = openbao("1h").await;
    let vault = open_approle(&bao, &role_id, &secret_id).await;
    let sealer = vault.sealer().expect("transit vaults seal");
    let data_key = [0x5au8; 32];
    let sealed = sealer.seal("signatory-sealer", &data_key).await.unwrap();
    let text = String::from_utf8(sealed.clone()).unwrap();
    assert!(text.starts_with("vault:v1:"), "{text}");
    assert!(
        !text.contains("WlpaWlpa"),
        "the sealed form is not the plaintext's base64"
    );
    let opened = sealer.unseal("signatory-sealer", &sealed).await.unwrap();
    assert_eq!(opened.as_slice(), &data_key);
    // The key the policy names is the only one it can use; a damaged ciphertext is refused.
    let other = sealer.seal("another-key", &data_key).await.unwrap_err();
    assert!(
        !other.is_transient() && other.to_string().contains("permission denied"),
        "{other}"
    );
    let mut damaged = sealed.clone();
    let last = damaged.len() - 3;
    damaged[last] ^= 1;
    let e = sealer
        .unseal("signatory-sealer", &damaged)
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert!(sealer
        .unseal("signatory-sealer", b"not sealed")
        .await
        .is_err());
}

/// BYOK: tz1 and tz3 keys imported (wrapped for the engine's wrapping key) sign as themselves.
#[tokio::test]
async fn keys_are_imported_with_byok_wrapping_and_sign() {
    let (bao, role_id, secret_id) = openbao("1h").await;
    let vault = open_approle(&bao, &role_id, &secret_id).await;
    for curve in [Curve::Ed25519, Curve::P256] {
        let secret = tezos_crypto::SecretKey::generate(curve);
        let public_key = secret.public_key();
        let imported = vault.import(secret).await.unwrap();
        assert_eq!(imported.public_key, public_key);
        let signature = vault
            .sign(&public_key.hash(), MESSAGE, SigningVersion::default())
            .await
            .unwrap();
        public_key
            .verify(MESSAGE, &signature, SigningVersion::default())
            .unwrap();
    }
    assert_eq!(vault.list_keys().await.unwrap().len(), 2);
    let e = vault
        .import(tezos_crypto::SecretKey::generate(Curve::Secp256k1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not support"), "{e}");
}

/// 32 requests that all find the token due for renewal share one renewal.
#[tokio::test]
async fn concurrent_requests_share_one_login_and_one_renewal() {
    let (bao, role_id, secret_id) = openbao("3s").await;
    bao.create_key("transit", "baker", "ed25519").await.unwrap();
    let vault = open_approle(&bao, &role_id, &secret_id).await;
    let public_key = listed(vault.as_ref(), "baker").await;
    // Two thirds of the TTL: the next call renews.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let vault = vault.clone();
        let pkh = public_key.hash();
        tasks.spawn(async move { vault.sign(&pkh, MESSAGE, SigningVersion::default()).await });
    }
    while let Some(done) = tasks.join_next().await {
        let signature = done.unwrap().unwrap();
        public_key
            .verify(MESSAGE, &signature, SigningVersion::default())
            .unwrap();
    }
    assert_eq!(bao.audited("auth/approle/login"), 1);
    assert_eq!(bao.audited("auth/token/renew-self"), 1);
    assert_eq!(bao.audited("transit/sign/baker"), 32);
}

/// After `rotate`, the listed key version keeps signing (so the signature matches the public
/// key the service verifies against) until the keys are listed again.
#[tokio::test]
async fn a_rotated_key_signs_with_the_listed_version_until_listed_again() {
    let (bao, role_id, secret_id) = openbao("1h").await;
    bao.create_key("transit", "baker", "ecdsa-p256")
        .await
        .unwrap();
    let vault = open_approle(&bao, &role_id, &secret_id).await;
    let first = listed(vault.as_ref(), "baker").await;
    bao.post("transit/keys/baker/rotate", json!({}))
        .await
        .unwrap();
    let signature = vault
        .sign(&first.hash(), MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    first
        .verify(MESSAGE, &signature, SigningVersion::default())
        .unwrap();
    assert!(signature.is_low_s());
    let second = listed(vault.as_ref(), "baker").await;
    assert_ne!(first, second);
    let signature = vault
        .sign(&second.hash(), MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    second
        .verify(MESSAGE, &signature, SigningVersion::default())
        .unwrap();
}

#[tokio::test]
async fn keys_tezos_cannot_use_are_skipped_with_the_reason_and_secrets_stay_out_of_debug() {
    let (bao, role_id, secret_id) = openbao("1h").await;
    bao.create_key("transit", "tz1-key", "ed25519")
        .await
        .unwrap();
    bao.create_key("transit", "aes", "aes256-gcm96")
        .await
        .unwrap();
    bao.create_key("transit", "rsa", "rsa-2048").await.unwrap();
    bao.create_key("transit", "p384", "ecdsa-p384")
        .await
        .unwrap();
    let vault = open_approle(&bao, &role_id, &secret_id).await;
    let keys = vault.list_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].pkh.curve(), Curve::Ed25519);
    let mut skipped: Vec<(String, String)> = vault
        .unusable_keys()
        .into_iter()
        .map(|k| (k.id, k.reason))
        .collect();
    skipped.sort();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped[0].1.contains("aes256-gcm96"), "{skipped:?}");
    assert!(skipped[1].1.contains("ecdsa-p384"), "{skipped:?}");
    assert!(skipped[2].1.contains("rsa-2048"), "{skipped:?}");
    let debug = format!("{vault:?}");
    assert!(!debug.contains(&secret_id), "{debug}");
    // tz2 and tz4 keys cannot be made in transit.
    for curve in [Curve::Secp256k1, Curve::Bls12_381] {
        let e = vault.generate(curve).await.unwrap_err();
        assert!(e.to_string().contains("does not support"), "{e}");
    }
}

/// Wrong AppRole credentials name the setting; OpenBao down is "unavailable".
#[tokio::test]
async fn refused_credentials_name_the_setting_and_a_server_down_is_unavailable() {
    let (bao, role_id, _) = openbao("1h").await;
    let e = signatory_vaults::open(
        "hv",
        "hashicorpvault",
        &settings(&format!(
            "{{address: '{}', roleID: '{role_id}', secretID: wrong-secret-id}}",
            bao.address
        )),
    )
    .await
    .unwrap_err();
    assert!(!e.is_unavailable(), "{e}");
    assert!(e.to_string().contains("vaults.hv.config.secretID"), "{e}");
    assert!(!e.to_string().contains("wrong-secret-id"), "{e}");
    let address = bao.address.clone();
    drop(bao);
    let e = signatory_vaults::open(
        "hv",
        "hashicorpvault",
        &settings(&format!("{{address: '{address}', token: some-token}}")),
    )
    .await
    .unwrap_err();
    assert!(e.is_unavailable(), "{e}");
}

/// A token in `token_file` (as a Vault Agent sink writes it, newline included), with TLS
/// files that are ignored on an http address as ECAD ignores them.
#[tokio::test]
async fn a_token_file_is_read_and_tls_files_are_ignored_over_http() {
    let (bao, _, _) = openbao("1h").await;
    bao.create_key("transit", "baker", "ed25519").await.unwrap();
    let token = bao.token("signatory", "1h").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let vault = signatory_vaults::open(
        "hv",
        "hashicorpvault",
        &settings(&format!(
            "{{address: '{}', token_file: '{}', tlsCaCert: /nonexistent/ca.pem}}",
            bao.address,
            file.display()
        )),
    )
    .await
    .unwrap();
    let public_key = listed(vault.as_ref(), "baker").await;
    let signature = vault
        .sign(&public_key.hash(), MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    public_key
        .verify(MESSAGE, &signature, SigningVersion::default())
        .unwrap();
    assert!(!format!("{vault:?}").contains(&token));
}

/// `namespace` sends `X-Vault-Namespace`: the keys of transit in namespace `team`; without
/// it the mount is not found, which fails the listing instead of reading as "no keys".
#[tokio::test]
async fn the_namespace_setting_selects_the_namespace() {
    let bao = OpenBao::start().await.unwrap();
    bao.post("sys/namespaces/team", json!({})).await.unwrap();
    bao.post_in("team", "sys/mounts/transit", json!({"type": "transit"}))
        .await
        .unwrap();
    bao.post_in("team", "transit/keys/baker", json!({"type": "ed25519"}))
        .await
        .unwrap();
    let root = signatory_e2e::openbao::ROOT_TOKEN;
    let vault = signatory_vaults::open(
        "hv",
        "hashicorpvault",
        &settings(&format!(
            "{{address: '{}', token: {root}, namespace: team}}",
            bao.address
        )),
    )
    .await
    .unwrap();
    let public_key = listed(vault.as_ref(), "baker").await;
    let signature = vault
        .sign(&public_key.hash(), MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    public_key
        .verify(MESSAGE, &signature, SigningVersion::default())
        .unwrap();
    let e = signatory_vaults::open(
        "hv",
        "hashicorpvault",
        &settings(&format!("{{address: '{}', token: {root}}}", bao.address)),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("no handler for route"), "{e}");
}

/// Sequential signatures through the driver: p50 and p99 per curve, printed for
/// docs/benchmarks.md (`--nocapture`).
#[tokio::test]
async fn openbao_sign_latency() {
    let (bao, role_id, secret_id) = openbao("1h").await;
    bao.create_key("transit", "ed", "ed25519").await.unwrap();
    bao.create_key("transit", "p256", "ecdsa-p256")
        .await
        .unwrap();
    let vault = open_approle(&bao, &role_id, &secret_id).await;
    for name in ["ed", "p256"] {
        let public_key = listed(vault.as_ref(), name).await;
        let mut times = Vec::new();
        for i in 0..200u32 {
            let message = [MESSAGE, &i.to_be_bytes()].concat();
            let started = Instant::now();
            let signature = vault
                .sign(&public_key.hash(), &message, SigningVersion::default())
                .await
                .unwrap();
            times.push(started.elapsed());
            public_key
                .verify(&message, &signature, SigningVersion::default())
                .unwrap();
        }
        times.sort();
        println!(
            "OpenBao 2.7.2 dev server, transit {name}: 200 sequential signs, p50 {:?}, p99 {:?}",
            times[100], times[197]
        );
    }
}

async fn open_fake(fake: &FakeTransit) -> Arc<dyn Vault> {
    signatory_vaults::open(
        "hv",
        "hashicorpvault",
        &settings(&format!(
            "{{address: '{}', token: '{}'}}",
            fake.address, fake.token
        )),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn sealed_and_throttled_answers_are_retried_and_refusals_are_not() {
    let fake = FakeTransit::start("fake-token").await.unwrap();
    let ed = fake.add_key("ed", Curve::Ed25519).unwrap();
    let p256 = fake.add_key("p256", Curve::P256).unwrap();
    let vault = open_fake(&fake).await;
    // The fake leaves half its ECDSA signatures high-S, as Vault does: sixteen in a row
    // come out low-S only if the driver normalises them.
    for key in [&ed, &p256] {
        for i in 0..16u8 {
            let message = [MESSAGE, &[i]].concat();
            let s = vault
                .sign(&key.hash(), &message, SigningVersion::default())
                .await
                .unwrap();
            key.verify(&message, &s, SigningVersion::default()).unwrap();
            assert!(s.is_low_s());
        }
    }

    // Two 503s then an answer: signed, after two retries.
    fake.fail_next(2, Failing::Sealed);
    let before = fake.requests();
    let s = vault
        .sign(&ed.hash(), MESSAGE, SigningVersion::default())
        .await
        .unwrap();
    ed.verify(MESSAGE, &s, SigningVersion::default()).unwrap();
    assert_eq!(fake.requests() - before, 3);
    let stats = vault.call_stats().unwrap();
    assert_eq!((stats.retries, stats.server_errors), (2, 2), "{stats:?}");

    // Throttled throughout: a transient error after the retries run out.
    fake.set_failing(Some(Failing::Throttled));
    let before = fake.requests();
    let e = vault
        .sign(&ed.hash(), MESSAGE, SigningVersion::default())
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(fake.requests() - before, 4, "one try and three retries");
    fake.set_failing(None);

    // A key the backend lost since the listing (400 "signing key not found"): refused at
    // once, one request.
    fake.remove_key("ed");
    let before = fake.requests();
    let e = vault
        .sign(&ed.hash(), MESSAGE, SigningVersion::default())
        .await
        .unwrap_err();
    assert!(
        !e.is_transient() && e.to_string().contains("signing key not found"),
        "{e}"
    );
    assert_eq!(fake.requests() - before, 1);
}

#[tokio::test]
async fn an_internal_error_is_retried_and_a_refused_token_names_the_setting() {
    let fake = FakeTransit::start("fake-token").await.unwrap();
    let ed = fake.add_key("ed", Curve::Ed25519).unwrap();
    let vault = open_fake(&fake).await;
    let before = fake.requests();
    fake.fail_next(1, Failing::Internal);
    let s = vault
        .sign(&ed.hash(), MESSAGE, SigningVersion::default())
        .await;
    assert!(s.is_ok(), "an internal error is retried: {s:?}");
    assert_eq!(fake.requests() - before, 2);
    let e = signatory_vaults::open(
        "hv",
        "hashicorpvault",
        &settings(&format!(
            "{{address: '{}', token: not-the-token}}",
            fake.address
        )),
    )
    .await
    .unwrap_err();
    assert!(
        !e.is_unavailable() && e.to_string().contains("vaults.hv.config.token"),
        "{e}"
    );
    assert!(!e.to_string().contains("not-the-token"), "{e}");
}
