//! The vault conformance suite ([`signatory_e2e::conformance`]) for every driver that can
//! run here: `file` and `mem` (local), `pkcs11` against SoftHSM2, `ledger` against a fake
//! Speculos (its TCP framing, the Baking app's answers from real keys).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use signatory_e2e::conformance::{run, Backend, Outage};
use signatory_e2e::softhsm::{SoftHsm, LIBRARY, PIN};
use signatory_e2e::speculos::{Model, Speculos};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tezos_crypto::{Curve, SecretKey};

#[tokio::test]
async fn the_file_driver_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.json");
    run(Backend {
        vault: "keys".to_owned(),
        yaml: format!(
            "    driver: file\n    config:\n      file: {}\n",
            file.display()
        ),
        env: Vec::new(),
        curves: Curve::ALL.to_vec(),
        refused_curves: Vec::new(),
        keys: Vec::new(),
        pooled: false,
        outage: None,
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_mem_driver_conforms() {
    let secrets: Vec<SecretKey> = Curve::ALL.into_iter().map(SecretKey::generate).collect();
    let list: Vec<String> = secrets
        .iter()
        .map(|k| format!("\"{}\"", k.to_b58check().as_str()))
        .collect();
    run(Backend {
        vault: "scratch".to_owned(),
        yaml: format!("    driver: mem\n    config: [{}]\n", list.join(", ")),
        env: Vec::new(),
        curves: Curve::ALL.to_vec(),
        refused_curves: Vec::new(),
        keys: secrets.iter().map(|k| k.public_key().hash()).collect(),
        pooled: false,
        outage: None,
    })
    .await
    .unwrap();
}

/// The token's files moved away and back: the token is gone, then present again.
struct TokenRemoved {
    token: PathBuf,
    parked: PathBuf,
}

impl Outage for TokenRemoved {
    fn take_down(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move { std::fs::rename(&self.token, &self.parked).unwrap() })
    }
    fn bring_back(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move { std::fs::rename(&self.parked, &self.token).unwrap() })
    }
}

#[tokio::test]
async fn the_pkcs11_driver_conforms_on_softhsm2() {
    let hsm = SoftHsm::new(&["conformance"]).unwrap();
    let tokens = hsm.conf.parent().unwrap().join("tokens");
    let token = std::fs::read_dir(&tokens)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let parked = hsm.conf.parent().unwrap().join("parked-token");
    run(Backend {
        vault: "hsm".to_owned(),
        yaml: format!(
            "    driver: pkcs11\n    config:\n      library_path: {LIBRARY}\n      slot: {}\n      pin: '{PIN}'\n",
            hsm.slot("conformance")
        ),
        env: vec![("SOFTHSM2_CONF".to_owned(), hsm.conf.display().to_string())],
        curves: vec![Curve::Ed25519, Curve::Secp256k1, Curve::P256],
        refused_curves: vec![Curve::Bls12_381],
        keys: Vec::new(),
        pooled: true,
        outage: Some(Box::new(TokenRemoved { token, parked })),
    })
    .await
    .unwrap();
}

/// The `ledger` driver through `serve`, over the Speculos TCP framing, against the Baking
/// app's model holding one key per curve; the outage closes the port and every
/// connection, then listens again on the same port.
#[tokio::test]
async fn the_ledger_driver_conforms_over_the_speculos_framing() {
    // (key id as the configuration names it, P2, path, key)
    let keys = [
        (
            "ed25519/44'/1729'/0'/0'",
            0,
            [44, 1729, 0, 0],
            Curve::Ed25519,
        ),
        (
            "secp256k1/44'/1729'/0'/1'",
            1,
            [44, 1729, 0, 1],
            Curve::Secp256k1,
        ),
        ("P-256/44'/1729'/0'/2'", 2, [44, 1729, 0, 2], Curve::P256),
    ];
    let mut model = Model::new([1, 2, 5, 1]);
    let mut pkhs = Vec::new();
    for (_, p2, path, curve) in &keys {
        let secret = SecretKey::generate(*curve);
        pkhs.push(secret.public_key().hash());
        model = model.with_key(*p2, path, secret);
    }
    let speculos = Arc::new(Speculos::start(model).unwrap());
    let ids: Vec<String> = keys.iter().map(|(id, ..)| format!("\"{id}\"")).collect();
    run(Backend {
        vault: "nano".to_owned(),
        yaml: format!(
            "    driver: ledger\n    config:\n      transport: {}\n      keys: [{}]\n",
            speculos.transport(),
            ids.join(", ")
        ),
        env: Vec::new(),
        curves: vec![Curve::Ed25519, Curve::Secp256k1, Curve::P256],
        // The device derives its keys: `generate` is refused for every curve.
        refused_curves: Curve::ALL.to_vec(),
        keys: pkhs,
        pooled: false,
        outage: Some(Box::new(Arc::clone(&speculos))),
    })
    .await
    .unwrap();
    assert!(
        speculos.unexpected().is_empty(),
        "{:?}",
        speculos.unexpected()
    );
    // `list`, `generate` and `serve` each connect; `serve` again after the outage.
    assert!(speculos.connections() >= 3, "{}", speculos.connections());
}

/// A Ledger idle for `close_after` is released by `serve` and opened again for the next
/// signature: a second connection to the emulator, and both signatures verify.
#[tokio::test]
async fn the_ledger_driver_reconnects_after_close_after() {
    use signatory_e2e::requests::Consensus;
    use signatory_e2e::{Policy, SignerConfig, TestSigner};
    use tezos_crypto::SigningVersion;
    let secret = SecretKey::generate(Curve::Ed25519);
    let pkh = secret.public_key().hash();
    let model = Model::new([1, 2, 5, 1]).with_key(0, &[44, 1729, 0, 0], secret.clone());
    let speculos = Speculos::start(model).unwrap();
    let mut signer = TestSigner::new(SignerConfig {
        vaults: vec![(
            "nano".to_owned(),
            format!(
                "    driver: ledger\n    config:\n      transport: {}\n      keys: [\"ed25519/0'/0'\"]\n      close_after: 100ms\n",
                speculos.transport()
            ),
        )],
        enabled: vec![(pkh, Some(Policy::allow(&["preattestation"])))],
        ..SignerConfig::default()
    })
    .unwrap();
    signer.start().await.unwrap();
    let opened = speculos.connections();
    for level in [10, 11] {
        let bytes = Consensus::new(level, 0, 1).preattestation();
        let mut conn = signer.connect().await.unwrap();
        let response = conn.sign(&signer.key_path(&pkh), &bytes).await.unwrap();
        let text = response
            .json_str("signature")
            .unwrap_or_else(|| panic!("{}", response.text()));
        let signature = tezos_crypto::Signature::from_b58check(&text).unwrap();
        secret
            .public_key()
            .verify(&bytes, &signature, SigningVersion::default())
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(
        speculos.connections() > opened,
        "no new connection after close_after: {} then {}",
        opened,
        speculos.connections()
    );
    assert!(
        speculos.unexpected().is_empty(),
        "{:?}",
        speculos.unexpected()
    );
}

/// A token that signs with another key than the one it claims (here: `public_value`
/// naming a different key, as a mixed-up configuration or a faulty HSM would): the
/// signature is checked before release, and never reaches the client.
#[tokio::test]
async fn a_pkcs11_signature_by_the_wrong_key_is_never_released() {
    use signatory_e2e::requests::Consensus;
    use signatory_e2e::{Policy, SignerConfig, TestSigner};
    let hsm = SoftHsm::new(&["impostor"]).unwrap();
    hsm.pkcs11_tool(
        "impostor",
        &[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "real",
            "--id",
            "01",
        ],
    )
    .unwrap();
    let claimed = SecretKey::generate(Curve::P256).public_key();
    let mut signer = TestSigner::new(SignerConfig {
        vaults: vec![(
            "hsm".to_owned(),
            format!(
                "    driver: pkcs11\n    config:\n      library_path: {LIBRARY}\n      slot: {}\n      pin: '{PIN}'\n      keys:\n        - private: {{label: real}}\n          public_value: {}\n",
                hsm.slot("impostor"),
                claimed.to_b58check()
            ),
        )],
        enabled: vec![(claimed.hash(), Some(Policy::allow(&["preattestation"])))],
        env: vec![("SOFTHSM2_CONF".to_owned(), hsm.conf.display().to_string())],
        ..SignerConfig::default()
    })
    .unwrap();
    signer.start().await.unwrap();
    let mut conn = signer.connect().await.unwrap();
    let response = conn
        .sign(
            &signer.key_path(&claimed.hash()),
            &Consensus::new(5, 0, 1).preattestation(),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 500, "{}", response.text());
    assert!(
        response.json_str("signature").is_none(),
        "{}",
        response.text()
    );
    assert!(!response.text().contains("p2sig"), "{}", response.text());
    // Refused by the check before release, not by a failing token (the log is written
    // out every 20 ms).
    let mut log = String::new();
    for _ in 0..100 {
        log = signer.log();
        if log.contains("does not verify") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(log.contains("does not verify"), "{log}");
}

/// A vault whose token is absent at start: the other vaults serve, and `/healthz`,
/// `signatory list` and `config check` name the missing one.
#[tokio::test]
async fn a_vault_that_cannot_open_leaves_the_others_serving() {
    use signatory_e2e::requests::Consensus;
    use signatory_e2e::{KeySpec, Policy, SignerConfig, TestSigner};
    let hsm = SoftHsm::new(&[]).unwrap();
    let local = SecretKey::generate(Curve::Ed25519);
    let ghost = SecretKey::generate(Curve::P256).public_key().hash();
    let mut signer = TestSigner::new(SignerConfig {
        keys: vec![KeySpec::new(local.clone(), Some(Policy::allow(&["preattestation"])))],
        vaults: vec![(
            "hsm".to_owned(),
            format!("    driver: pkcs11\n    config:\n      library_path: {LIBRARY}\n      pin: '{PIN}'\n"),
        )],
        env: vec![("SOFTHSM2_CONF".to_owned(), hsm.empty_conf().unwrap().display().to_string())],
        // A key enabled for the HSM, which is not there.
        enabled: vec![(ghost, Some(Policy::allow(&["preattestation"])))],
        ..SignerConfig::default()
    })
    .unwrap();
    let listed = signer.cli(&["list"]).unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains(&local.public_key().hash().to_b58check()),
        "{listing}"
    );
    let unavailable = listing
        .lines()
        .find(|l| l.contains("VAULT UNAVAILABLE"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        unavailable.contains("hsm") && unavailable.contains("no slot holds an initialised token"),
        "{listing}"
    );
    let checked = signer.cli(&["config", "check"]).unwrap();
    assert!(!checked.status.success());
    assert!(
        String::from_utf8_lossy(&checked.stderr).contains("vault `hsm` is unavailable"),
        "{checked:?}"
    );

    signer.start().await.unwrap();
    let mut conn = signer.connect().await.unwrap();
    let bytes = Consensus::new(5, 0, 1).preattestation();
    let response = conn
        .sign(&signer.key_path(&local.public_key().hash()), &bytes)
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let mut utility = signatory_e2e::Connection::connect(signer.utility)
        .await
        .unwrap();
    let health = utility.get("/healthz").await.unwrap();
    assert_eq!(health.status, 503);
    assert!(
        health.text().contains("vault hsm: not open"),
        "{}",
        health.text()
    );
    assert!(
        health
            .text()
            .contains(&format!("enabled keys no open vault holds: {ghost}")),
        "{}",
        health.text()
    );
    assert!(
        signer
            .log()
            .contains("vault unavailable; the other vaults serve without it"),
        "{}",
        signer.log()
    );
}

/// A vault unavailable at start (its token absent) is tried again while the signer runs:
/// once the token is there and holds the enabled key, the key is served, with no restart.
#[tokio::test]
async fn a_vault_unavailable_at_start_joins_once_its_token_appears() {
    use signatory_e2e::requests::Consensus;
    use signatory_e2e::{Policy, SignerConfig, TestSigner};
    let hsm = SoftHsm::new(&[]).unwrap();
    let conf = hsm.empty_conf().unwrap();
    let key = SecretKey::generate(Curve::P256);
    let pkh = key.public_key().hash();
    let mut signer = TestSigner::new(SignerConfig {
        vaults: vec![(
            "hsm".to_owned(),
            format!("    driver: pkcs11\n    config:\n      library_path: {LIBRARY}\n      pin: '{PIN}'\n"),
        )],
        enabled: vec![(pkh, Some(Policy::allow(&["preattestation"])))],
        env: vec![("SOFTHSM2_CONF".to_owned(), conf.display().to_string())],
        ..SignerConfig::default()
    })
    .unwrap();
    signer.start().await.unwrap();
    let mut conn = signer.connect().await.unwrap();
    let absent = conn
        .sign(
            &signer.key_path(&pkh),
            &Consensus::new(5, 0, 1).preattestation(),
        )
        .await
        .unwrap();
    assert_eq!(absent.status, 404, "{}", absent.text());

    // The token appears, and the key is put in it (by the CLI, another process).
    let made = std::process::Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "late",
            "--so-pin",
            "5678",
            "--pin",
            PIN,
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let imported = std::process::Command::new(signatory_e2e::binary::signatory_bin().unwrap())
        .args(["import", "--vault", "hsm", "-c"])
        .arg(&signer.config_path)
        .arg(key.to_b58check().as_str())
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(imported.status.success(), "{imported:?}");

    // Tried again every 10 s: within 30 s the key signs.
    let mut last = String::new();
    for level in 6..36 {
        let mut conn = signer.connect().await.unwrap();
        let bytes = Consensus::new(level, 0, 1).preattestation();
        let response = conn.sign(&signer.key_path(&pkh), &bytes).await.unwrap();
        if response.status == 200 {
            let signature =
                tezos_crypto::Signature::from_b58check(&response.json_str("signature").unwrap())
                    .unwrap();
            key.public_key()
                .verify(&bytes, &signature, tezos_crypto::SigningVersion::default())
                .unwrap();
            let mut utility = signatory_e2e::Connection::connect(signer.utility)
                .await
                .unwrap();
            let health = utility.get("/healthz").await.unwrap();
            assert_eq!(health.status, 200, "{}", health.text());
            assert!(
                signer.log().contains("vault opened after start"),
                "{}",
                signer.log()
            );
            return;
        }
        last = format!("{} {}", response.status, response.text());
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    panic!("the key was never served: {last}\n{}", signer.log());
}
