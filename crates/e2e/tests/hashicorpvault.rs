//! The `hashicorpvault` driver through the real `signatory` binary against a real OpenBao
//! dev server (`bao server -dev`, in memory): the conformance suite with AppRole and the
//! documented least policy, ECAD Signatory's own configuration and policy, token reuse and
//! renewal counted in OpenBao's audit log, refusals that are not retried, and TLS with the
//! dev server's own CA.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::Engine as _;
use signatory_e2e::conformance::{run, Backend, Outage};
use signatory_e2e::openbao::{OpenBao, LEAST_POLICY};
use signatory_e2e::requests::{generic, Op};
use signatory_e2e::{Policy, SignerConfig, TestSigner};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tezos_crypto::{Curve, PublicKey, PublicKeyHash, Signature, SigningVersion};

/// OpenBao sealed (every call answered 503 "Vault is sealed") and unsealed with the dev
/// server's key: the keys and the driver's token survive, as with a real restart of a
/// server with persistent storage, which the in-memory dev server cannot do.
struct Sealed(Arc<OpenBao>);

impl Outage for Sealed {
    fn take_down(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move { self.0.seal().await.unwrap() })
    }
    fn bring_back(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move { self.0.unseal().await.unwrap() })
    }
}

/// OpenBao with transit at `transit/`, policy `signatory` = `policy`, and an AppRole role
/// `signer` with it: the server and the role's ids.
async fn openbao_with_role(
    policy: &str,
    token_ttl: &str,
    token_max_ttl: &str,
) -> (Arc<OpenBao>, String, String) {
    let bao = OpenBao::start().await.unwrap();
    bao.enable_transit("transit").await.unwrap();
    bao.put_policy("signatory", policy).await.unwrap();
    let (role_id, secret_id) = bao
        .approle("signer", "signatory", token_ttl, token_max_ttl)
        .await
        .unwrap();
    (Arc::new(bao), role_id, secret_id)
}

/// The vault's YAML as ECAD's documentation writes it (`transitConfig` nested four deep).
fn approle_yaml(address: &str, role_id: &str, secret_id: &str, extra: &str) -> String {
    format!(
        "    driver: hashicorpvault\n    config:\n      address: \"{address}\"\n      \
         roleID: \"{role_id}\"\n      secretID: \"{secret_id}\"\n      transitConfig:\n          \
         mountPoint: \"transit/\"\n{extra}"
    )
}

/// The public key of transit key `name`, read as root.
async fn transit_public_key(bao: &OpenBao, name: &str) -> PublicKey {
    let (status, key) = bao.get(&format!("transit/keys/{name}")).await.unwrap();
    assert_eq!(status, 200, "{key}");
    let text = key
        .pointer("/data/keys/1/public_key")
        .unwrap()
        .as_str()
        .unwrap();
    match key.pointer("/data/type").unwrap().as_str().unwrap() {
        "ed25519" => PublicKey::from_bytes(
            Curve::Ed25519,
            &base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap(),
        )
        .unwrap(),
        _ => PublicKey::from_spki_pem(text.as_bytes()).unwrap(),
    }
}

/// A signer with vault `transit` (`yaml`) and `keys` enabled for transfers, started.
async fn signer_for(yaml: String, keys: &[PublicKeyHash]) -> TestSigner {
    let mut signer = TestSigner::new(SignerConfig {
        vaults: vec![("transit".to_owned(), yaml)],
        ..SignerConfig::default()
    })
    .unwrap();
    for pkh in keys {
        signer
            .enable(*pkh, Some(Policy::allow(&[]).generic(&["transaction"])))
            .unwrap();
    }
    signer.start().await.unwrap();
    signer
}

/// Sign a transfer of `amount` through the signer: the HTTP status and, on 200, the
/// signature checked against `public_key`.
async fn sign_transfer(signer: &TestSigner, public_key: &PublicKey, amount: u64) -> (u16, String) {
    let pkh = public_key.hash();
    let bytes = generic(&pkh, &[Op::Transfer { to: pkh, amount }]);
    let mut conn = signer.connect().await.unwrap();
    let response = conn.sign(&signer.key_path(&pkh), &bytes).await.unwrap();
    if response.status == 200 {
        let text = response.json_str("signature").unwrap();
        let signature = Signature::from_b58check(&text).unwrap();
        public_key
            .verify(&bytes, &signature, SigningVersion::default())
            .unwrap();
        assert!(signature.with_curve(pkh.curve()).unwrap().is_low_s());
    }
    (response.status, response.text())
}

#[tokio::test]
async fn the_hashicorpvault_driver_conforms_on_openbao_with_approle_and_the_least_policy() {
    let (bao, role_id, secret_id) = openbao_with_role(LEAST_POLICY, "1h", "2h").await;
    run(Backend {
        vault: "transit".to_owned(),
        yaml: approle_yaml(&bao.address, &role_id, &secret_id, ""),
        env: Vec::new(),
        curves: vec![Curve::Ed25519, Curve::P256],
        // Transit has no secp256k1 and no BLS keys.
        refused_curves: vec![Curve::Secp256k1, Curve::Bls12_381],
        keys: Vec::new(),
        pooled: false,
        outage: Some(Box::new(Sealed(bao.clone()))),
    })
    .await
    .unwrap();
}

/// ECAD's documented setup, unchanged: its policy (`transit/*`), a key made with
/// `type=ed25519`, its configuration keys; plus keys Tezos cannot use, which are skipped.
#[tokio::test]
async fn an_ecad_configuration_and_policy_start_and_sign_unchanged() {
    let ecad_policy =
        "path \"transit/*\" {\n  capabilities = [\"read\", \"create\", \"update\", \"list\"]\n}\n";
    let (bao, role_id, secret_id) = openbao_with_role(ecad_policy, "20m", "30m").await;
    bao.create_key("transit", "my-key", "ed25519")
        .await
        .unwrap();
    bao.create_key("transit", "secrets", "aes256-gcm96")
        .await
        .unwrap();
    bao.create_key("transit", "legacy", "rsa-2048")
        .await
        .unwrap();
    let public_key = transit_public_key(&bao, "my-key").await;
    let signer = signer_for(
        approle_yaml(&bao.address, &role_id, &secret_id, ""),
        &[public_key.hash()],
    )
    .await;
    let (status, body) = sign_transfer(&signer, &public_key, 7).await;
    assert_eq!(status, 200, "{body}");
    let listed = signer.cli(&["list"]).unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains(&public_key.hash().to_b58check()),
        "{listing}"
    );
    let everything = format!("{listing}{}", String::from_utf8_lossy(&listed.stderr));
    assert!(everything.contains("aes256-gcm96"), "{everything}");
    assert!(everything.contains("rsa-2048"), "{everything}");
}

/// Signatures every 250 ms for 6 s with a 3 s token TTL: one AppRole login, the token
/// renewed in between (the audit log counts both), every signature released.
#[tokio::test]
async fn the_approle_token_is_reused_and_renewed_not_logged_in_per_signature() {
    let (bao, role_id, secret_id) = openbao_with_role(LEAST_POLICY, "3s", "1h").await;
    bao.create_key("transit", "baker", "ed25519").await.unwrap();
    let public_key = transit_public_key(&bao, "baker").await;
    let signer = signer_for(
        approle_yaml(&bao.address, &role_id, &secret_id, ""),
        &[public_key.hash()],
    )
    .await;
    let started = Instant::now();
    let mut signed = 0;
    while started.elapsed() < Duration::from_secs(6) {
        let (status, body) = sign_transfer(&signer, &public_key, 1 + signed).await;
        assert_eq!(status, 200, "{body}");
        signed += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let logins = bao.audited("auth/approle/login");
    let renewals = bao.audited("auth/token/renew-self");
    let signs = bao.audited("transit/sign/baker");
    assert_eq!(signs as u64, signed, "every signature reached OpenBao once");
    assert_eq!(logins, 1, "{signed} signatures, {renewals} renewals");
    assert!(renewals >= 2, "{renewals} renewals in 6 s of a 3 s TTL");
}

/// A role whose tokens live at most 4 s: renewal stops helping and the driver logs in
/// again, without a failed signature.
#[tokio::test]
async fn a_token_at_its_max_ttl_is_replaced_by_a_new_login() {
    let (bao, role_id, secret_id) = openbao_with_role(LEAST_POLICY, "2s", "4s").await;
    bao.create_key("transit", "baker", "ecdsa-p256")
        .await
        .unwrap();
    let public_key = transit_public_key(&bao, "baker").await;
    let signer = signer_for(
        approle_yaml(&bao.address, &role_id, &secret_id, ""),
        &[public_key.hash()],
    )
    .await;
    let started = Instant::now();
    let mut signed = 0;
    while started.elapsed() < Duration::from_secs(9) {
        let (status, body) = sign_transfer(&signer, &public_key, 1 + signed).await;
        assert_eq!(status, 200, "after {:?}: {body}", started.elapsed());
        signed += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let logins = bao.audited("auth/approle/login");
    assert!(
        (2..=4).contains(&logins),
        "{logins} logins in 9 s with a 4 s max TTL"
    );
}

/// The policy without `transit/sign`: with AppRole one re-login is tried, then the request
/// fails closed (500, not the 503 of a transient failure); with a fixed token it fails at
/// once. The audit log shows no retries.
#[tokio::test]
async fn a_token_without_sign_permission_is_refused_and_not_retried() {
    let no_sign: String = LEAST_POLICY
        .lines()
        .filter(|l| !l.contains("transit/sign"))
        .collect::<Vec<_>>()
        .join("\n");
    let (bao, role_id, secret_id) = openbao_with_role(&no_sign, "1h", "2h").await;
    bao.create_key("transit", "baker", "ed25519").await.unwrap();
    let public_key = transit_public_key(&bao, "baker").await;

    let signer = signer_for(
        approle_yaml(&bao.address, &role_id, &secret_id, ""),
        &[public_key.hash()],
    )
    .await;
    let (status, body) = sign_transfer(&signer, &public_key, 1).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        bao.audited("transit/sign/baker"),
        2,
        "one try, one after re-login"
    );
    assert_eq!(bao.audited("auth/approle/login"), 2);
    drop(signer);

    let token = bao.token("signatory", "1h").await.unwrap();
    let yaml = format!(
        "    driver: hashicorpvault\n    config:\n      address: \"{}\"\n      token: \"{token}\"\n",
        bao.address
    );
    let signer = signer_for(yaml, &[public_key.hash()]).await;
    let (status, body) = sign_transfer(&signer, &public_key, 2).await;
    assert_eq!(status, 500, "{body}");
    assert!(!body.contains(&token), "{body}");
    assert!(!signer.log().contains(&token), "the token is in the log");
    assert_eq!(bao.audited("transit/sign/baker"), 3);
}

/// `bao server -dev-tls`: its CA in `tlsCaCert` makes the connection; without it the
/// certificate is refused and the vault is unavailable.
#[tokio::test]
async fn tls_with_the_servers_ca_in_tls_ca_cert() {
    let bao = OpenBao::start_tls().await.unwrap();
    bao.enable_transit("transit").await.unwrap();
    bao.put_policy("signatory", LEAST_POLICY).await.unwrap();
    let (role_id, secret_id) = bao
        .approle("signer", "signatory", "1h", "2h")
        .await
        .unwrap();
    bao.create_key("transit", "baker", "ecdsa-p256")
        .await
        .unwrap();
    let public_key = transit_public_key(&bao, "baker").await;
    let ca: &Path = bao.ca_cert.as_deref().unwrap();
    let with_ca = format!("      tlsCaCert: \"{}\"\n", ca.display());
    let signer = signer_for(
        approle_yaml(&bao.address, &role_id, &secret_id, &with_ca),
        &[public_key.hash()],
    )
    .await;
    let (status, body) = sign_transfer(&signer, &public_key, 3).await;
    assert_eq!(status, 200, "{body}");

    let without = TestSigner::new(SignerConfig {
        vaults: vec![(
            "transit".to_owned(),
            approle_yaml(&bao.address, &role_id, &secret_id, ""),
        )],
        ..SignerConfig::default()
    })
    .unwrap();
    let listed = without.cli(&["list"]).unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&listed.stdout),
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(!text.contains(&public_key.hash().to_b58check()), "{text}");
    assert!(text.contains("unavailable"), "{text}");
}

/// A tz4 key in a `file` vault sealed by transit (`--seal-with`): the data key is encrypted
/// under OpenBao's `signatory-sealer` key with the least policy, decrypted once at start,
/// and the tz4 key signs.
#[tokio::test]
async fn a_key_file_sealed_by_transit_serves_a_tz4_key() {
    let (bao, role_id, secret_id) = openbao_with_role(LEAST_POLICY, "1h", "2h").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("consensus.sealed.json");
    let consensus = format!(
        "    driver: file\n    config:\n      file: \"{}\"\n",
        file.display()
    );
    let mut signer = TestSigner::new(SignerConfig {
        vaults: vec![
            (
                "transit".to_owned(),
                approle_yaml(&bao.address, &role_id, &secret_id, ""),
            ),
            ("consensus".to_owned(), consensus),
        ],
        ..SignerConfig::default()
    })
    .unwrap();
    let out = signer
        .cli(&[
            "generate",
            "--vault",
            "consensus",
            "-t",
            "tz4",
            "--seal-with",
            "transit",
            "--seal-key",
            "signatory-sealer",
        ])
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pkh = stdout
        .split_whitespace()
        .find_map(|w| PublicKeyHash::from_b58check(w).ok())
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let sealed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(sealed["sealed_by"]["vault"], "transit", "{text}");
    assert_eq!(sealed["sealed_by"]["key"], "signatory-sealer", "{text}");
    let data_key = hex::decode(sealed["data_key"].as_str().unwrap()).unwrap();
    assert!(data_key.starts_with(b"vault:v1:"), "{text}");

    signer
        .enable(pkh, Some(Policy::allow(&[]).generic(&["transaction"])))
        .unwrap();
    let decrypts_before = bao.audited("transit/decrypt/signatory-sealer");
    signer.start().await.unwrap();
    let mut conn = signer.connect().await.unwrap();
    let response = conn.get(&signer.key_path(&pkh)).await.unwrap();
    let public_key = PublicKey::from_b58check(&response.json_str("public_key").unwrap()).unwrap();
    assert_eq!(public_key.hash(), pkh);
    let (status, body) = sign_transfer(&signer, &public_key, 9).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        bao.audited("transit/decrypt/signatory-sealer") - decrypts_before,
        1,
        "the data key is unsealed once at start"
    );
}
