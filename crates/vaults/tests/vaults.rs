//! The `file` and `mem` drivers through the `Vault` trait: every curve, encrypted keys,
//! refused files, persistence of new keys, the registry, and secrets kept out of `Debug`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use signatory_signer::vault::{Vault, VaultError};
use signatory_vaults::{
    driver_names, open, FileVault, FileVaultOptions, MemVault, OpenError, PasswordSource,
};
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tezos_crypto::{
    encrypted, Curve, PublicKey, PublicKeyHash, SecretKey, Signature, SigningVersion,
};
use zeroize::Zeroizing;

/// A published test key and what it is known to produce (testdata/public-vectors.json).
struct Vector {
    curve: Curve,
    secret: String,
    public: String,
    pkh: String,
    message: Option<Vec<u8>>,
    /// A signature that must be reproduced exactly (deterministic schemes only).
    signature: Option<String>,
    proof_of_possession: Option<String>,
}

fn workspace_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(workspace_file("testdata/public-vectors.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let curve = |s: &str| match s {
        "ed25519" => Curve::Ed25519,
        "secp256k1" => Curve::Secp256k1,
        "p256" => Curve::P256,
        "bls12_381" => Curve::Bls12_381,
        other => panic!("curve {other}"),
    };
    let text =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_owned);
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let c = curve(k["curve"].as_str().unwrap());
            // P-256 signatures use a random nonce: verify only.
            let signature = match c {
                Curve::P256 => None,
                Curve::Bls12_381 => text(k, "signature"),
                _ => text(k, "signature_generic"),
            };
            let secret = text(k, "secret_key").unwrap();
            // One published key comes without its public key: derive it.
            let derived = SecretKey::from_b58check(&secret)
                .unwrap()
                .public_key()
                .to_b58check();
            let public = text(k, "public_key").unwrap_or(derived.clone());
            assert_eq!(
                public, derived,
                "the published public key belongs to the secret"
            );
            Vector {
                curve: c,
                secret,
                public,
                pkh: text(k, "pkh").unwrap(),
                message: text(k, "signed_message_hex").map(|h| hex_decode(&h)),
                signature,
                proof_of_possession: text(k, "proof_of_possession"),
            }
        })
        .collect()
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn pkh(s: &str) -> PublicKeyHash {
    PublicKeyHash::from_b58check(s).unwrap()
}

/// A private (0600) secret key file in a fresh directory.
struct KeyFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn key_file(entries: &[(String, String)]) -> KeyFile {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.json");
    let list: Vec<serde_json::Value> = entries
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    std::fs::write(&path, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
    chmod(&path, 0o600);
    KeyFile { _dir: dir, path }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn options(path: &Path, password: PasswordSource) -> FileVaultOptions {
    FileVaultOptions {
        password,
        prompt: false,
        ..FileVaultOptions::new(path)
    }
}

fn given(password: &str) -> PasswordSource {
    PasswordSource::Given(Zeroizing::new(password.to_owned()))
}

fn open_file(path: &Path, password: PasswordSource) -> Result<Arc<dyn Vault>, OpenError> {
    FileVault::open("local", &options(path, password)).map(|v| Arc::new(v) as Arc<dyn Vault>)
}

/// Sign through the trait and check the result against the public key, and against the
/// published signature where the scheme is deterministic.
/// The key hashes a vault lists, sorted (duplicates kept).
async fn listed_keys(vault: &dyn Vault) -> Vec<PublicKeyHash> {
    let mut listed: Vec<_> = vault
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.pkh)
        .collect();
    listed.sort();
    listed
}

async fn check_signing(vault: &dyn Vault, v: &Vector) {
    let pk = PublicKey::from_b58check(&v.public).unwrap();
    let message = v
        .message
        .clone()
        .unwrap_or_else(|| b"\x03some generic bytes".to_vec());
    let versions = match v.curve {
        Curve::Bls12_381 => vec![SigningVersion::V1, SigningVersion::V2, SigningVersion::V3],
        _ => SigningVersion::ALL.to_vec(),
    };
    for version in versions {
        let sig = vault.sign(&pkh(&v.pkh), &message, version).await.unwrap();
        assert_eq!(sig.curve(), Some(v.curve));
        pk.verify(&message, &sig, version).unwrap();
        // BLS signs differently per version (the vectors use the POP scheme of v2/v3);
        // the other curves sign the same whatever the version.
        let comparable = v.curve != Curve::Bls12_381 || version >= SigningVersion::V2;
        if let (Some(expected), true) = (&v.signature, comparable) {
            let expected = Signature::from_b58check(expected).unwrap();
            assert_eq!(sig.as_bytes(), expected.as_bytes(), "{} v{version}", v.pkh);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Loading

#[tokio::test]
async fn file_vault_loads_and_signs_with_every_curve() {
    let vectors = vectors();
    let entries: Vec<(String, String)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("key{i}"), format!("unencrypted:{}", v.secret)))
        .collect();
    let file = key_file(&entries);
    let vault = open_file(&file.path, PasswordSource::None).unwrap();
    assert_eq!(vault.name(), "local");
    assert_eq!(vault.driver(), "file");
    let listed = vault.list_keys().await.unwrap();
    let listed_pkhs: BTreeSet<String> = listed.iter().map(|k| k.pkh.to_string()).collect();
    let expected: BTreeSet<String> = vectors.iter().map(|v| v.pkh.clone()).collect();
    assert_eq!(listed_pkhs, expected);
    let curves: BTreeSet<Curve> = listed.iter().map(|k| k.pkh.curve()).collect();
    assert_eq!(curves.len(), 4, "every curve is covered");
    for key in &listed {
        assert_eq!(key.vault, "local");
        assert_eq!(key.public_key.hash(), key.pkh);
        assert!(key.label.as_deref().unwrap().starts_with("key"));
        let v = vectors
            .iter()
            .find(|v| v.pkh == key.pkh.to_string())
            .unwrap();
        assert_eq!(key.public_key.to_b58check(), v.public);
    }
    for v in &vectors {
        check_signing(&*vault, v).await;
    }
}

#[tokio::test]
async fn encrypted_keys_of_every_curve_load_with_their_password() {
    let vectors = vectors();
    let mut entries: Vec<(String, String)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let key = SecretKey::from_b58check(&v.secret).unwrap();
            (
                format!("key{i}"),
                format!("encrypted:{}", encrypted::encrypt(&key, b"test1234")),
            )
        })
        .collect();
    // An encrypted key written by Taquito, with its published password.
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_file("testdata/public-vectors.json")).unwrap(),
    )
    .unwrap();
    let taquito = &doc["encrypted_keys"][0];
    assert_eq!(taquito["password"], "test1234");
    entries.push((
        "taquito".to_owned(),
        format!("encrypted:{}", taquito["encrypted"].as_str().unwrap()),
    ));
    let decrypted_pkh = SecretKey::from_b58check(taquito["decrypted"].as_str().unwrap())
        .unwrap()
        .public_key()
        .hash();
    let file = key_file(&entries);

    let vault = open_file(&file.path, given("test1234")).unwrap();
    let listed: BTreeSet<PublicKeyHash> = listed_keys(&*vault).await.into_iter().collect();
    assert_eq!(listed.len(), vectors.len() + 1);
    assert!(listed.contains(&decrypted_pkh));
    for v in &vectors {
        check_signing(&*vault, v).await;
    }

    // A password file works the same, one trailing newline ignored.
    let password_file = file.path.with_file_name("password");
    std::fs::write(&password_file, "test1234\n").unwrap();
    chmod(&password_file, 0o600);
    let vault = open_file(&file.path, PasswordSource::File(password_file.clone())).unwrap();
    assert_eq!(vault.list_keys().await.unwrap().len(), vectors.len() + 1);

    // So does an environment variable (cargo sets this one for test processes).
    let pkg = env!("CARGO_PKG_NAME");
    let key = SecretKey::generate(Curve::P256);
    let env_file = key_file(&[(
        "k".to_owned(),
        format!("encrypted:{}", encrypted::encrypt(&key, pkg.as_bytes())),
    )]);
    let vault = open_file(
        &env_file.path,
        PasswordSource::Env("CARGO_PKG_NAME".to_owned()),
    )
    .unwrap();
    assert_eq!(
        vault.list_keys().await.unwrap()[0].pkh,
        key.public_key().hash()
    );
}

#[test]
fn a_wrong_password_is_refused_naming_the_key() {
    let key = SecretKey::generate(Curve::Bls12_381);
    let file = key_file(&[
        (
            "plain".to_owned(),
            format!(
                "unencrypted:{}",
                SecretKey::generate(Curve::Ed25519).to_b58check().as_str()
            ),
        ),
        (
            "vault-key".to_owned(),
            format!("encrypted:{}", encrypted::encrypt(&key, b"right")),
        ),
    ]);
    let err = open_file(&file.path, given("wrong")).unwrap_err();
    assert!(
        matches!(&err, OpenError::BadPassword { label, .. } if label == "vault-key"),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("wrong password for key `vault-key`"),
        "{message}"
    );
    assert!(
        !message.contains("wrong\"") && !message.contains("right"),
        "{message}"
    );

    // No password and no terminal: the key is locked, with the way out in the message.
    let err = open_file(&file.path, PasswordSource::None).unwrap_err();
    assert!(matches!(err, OpenError::Locked { .. }), "{err}");

    let err = open_file(
        &file.path,
        PasswordSource::Env("SIGNATORY_TEST_SURELY_UNSET_VAR".to_owned()),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("SIGNATORY_TEST_SURELY_UNSET_VAR"),
        "{err}"
    );
}

#[test]
fn key_files_readable_by_others_are_refused_with_the_fix() {
    let secret = SecretKey::generate(Curve::Ed25519);
    let file = key_file(&[(
        "k".to_owned(),
        format!("unencrypted:{}", secret.to_b58check().as_str()),
    )]);
    for mode in [0o644, 0o640, 0o604, 0o660, 0o610, 0o601] {
        chmod(&file.path, mode);
        let err = open_file(&file.path, PasswordSource::None).unwrap_err();
        assert!(
            matches!(err, OpenError::Permissions { mode: m, .. } if m == mode),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("run `chmod 600 {}`", file.path.display())),
            "{message}"
        );
        assert!(message.contains(&format!("{mode:03o}")), "{message}");
    }
    for mode in [0o600, 0o400] {
        chmod(&file.path, mode);
        assert!(
            open_file(&file.path, PasswordSource::None).is_ok(),
            "{mode:o}"
        );
    }

    // The password file is held to the same rule.
    chmod(&file.path, 0o600);
    let password_file = file.path.with_file_name("password");
    std::fs::write(&password_file, "pw").unwrap();
    chmod(&password_file, 0o644);
    let err = open_file(&file.path, PasswordSource::File(password_file.clone())).unwrap_err();
    assert!(
        matches!(&err, OpenError::Permissions { path, .. } if *path == password_file),
        "{err}"
    );
}

#[test]
fn missing_and_malformed_files_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let err = open_file(&missing, PasswordSource::None).unwrap_err();
    assert!(matches!(err, OpenError::Io { .. }), "{err}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let bad = dir.path().join("bad.json");
    let secret = SecretKey::generate(Curve::Secp256k1);
    let b58 = secret.to_b58check();
    std::fs::write(
        &bad,
        format!(
            "{{\"name\": \"k\", \"value\": \"unencrypted:{}\"}}",
            b58.as_str()
        ),
    )
    .unwrap();
    chmod(&bad, 0o600);
    let err = open_file(&bad, PasswordSource::None).unwrap_err();
    assert!(matches!(err, OpenError::KeyFile { .. }), "{err}");
    assert!(!err.to_string().contains(b58.as_str()), "{err}");

    // A damaged key names its entry and does not echo the value.
    let damaged = key_file(&[(
        "broken".to_owned(),
        format!("unencrypted:{}x", b58.as_str()),
    )]);
    let err = open_file(&damaged.path, PasswordSource::None).unwrap_err();
    assert!(
        matches!(&err, OpenError::Key { label, .. } if label == "broken"),
        "{err}"
    );
    assert!(!err.to_string().contains(b58.as_str()), "{err}");
}

#[tokio::test]
async fn entries_for_other_signers_are_skipped() {
    let secret = SecretKey::generate(Curve::Ed25519);
    let file = key_file(&[
        (
            "ledger".to_owned(),
            "ledger://prefer-kid/ed25519/0h/1h".to_owned(),
        ),
        (
            "remote".to_owned(),
            "http://localhost:6732/tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx".to_owned(),
        ),
        ("bare".to_owned(), secret.to_b58check().to_string()),
    ]);
    let vault = open_file(&file.path, PasswordSource::None).unwrap();
    let keys = vault.list_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].pkh, secret.public_key().hash());
}

/// Octez stored tz4 keys as `aggregate_unencrypted:` / `aggregate_encrypted:` before BLS
/// keys had the plain schemes, and still reads them (ECAD strips any scheme too).
#[tokio::test]
async fn octez_aggregate_schemes_load_bls_keys() {
    let plain = SecretKey::generate(Curve::Bls12_381);
    let sealed = SecretKey::generate(Curve::Bls12_381);
    let file = key_file(&[
        (
            "old_plain".to_owned(),
            format!("aggregate_unencrypted:{}", plain.to_b58check().as_str()),
        ),
        (
            "old_sealed".to_owned(),
            format!(
                "aggregate_encrypted:{}",
                tezos_crypto::encrypted::encrypt(&sealed, b"pw")
            ),
        ),
    ]);
    let vault = open_file(&file.path, given("pw")).unwrap();
    let mut expected = vec![plain.public_key().hash(), sealed.public_key().hash()];
    expected.sort();
    assert_eq!(listed_keys(&*vault).await, expected);
}

// ---------------------------------------------------------------------------------------
// Signing errors

#[tokio::test]
async fn refusals_are_typed() {
    let bls = SecretKey::generate(Curve::Bls12_381);
    let ed = SecretKey::generate(Curve::Ed25519);
    let vault: Arc<dyn Vault> = Arc::new(MemVault::with_keys("m", [bls.clone(), ed.clone()]));
    let unknown = SecretKey::generate(Curve::Ed25519).public_key().hash();
    let err = vault
        .sign(&unknown, b"\x03", SigningVersion::V3)
        .await
        .unwrap_err();
    assert!(
        matches!(err, VaultError::KeyNotFound { pkh, .. } if pkh == unknown),
        "{err}"
    );

    // BLS has no signing version 0: the request is at fault, not the vault.
    let err = vault
        .sign(&bls.public_key().hash(), b"\x03", SigningVersion::V0)
        .await
        .unwrap_err();
    assert!(err.is_bad_request() && !err.is_transient(), "{err}");
    let err = vault
        .prove_possession(&ed.public_key().hash(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Refused { .. }), "{err}");
}

#[tokio::test]
async fn proofs_of_possession_and_nonces_match_the_key() {
    let v = vectors()
        .into_iter()
        .find(|v| v.curve == Curve::Bls12_381)
        .unwrap();
    let file = key_file(&[("bls".to_owned(), format!("unencrypted:{}", v.secret))]);
    let vault = open_file(&file.path, PasswordSource::None).unwrap();
    let proof = vault.prove_possession(&pkh(&v.pkh), None).await.unwrap();
    let pk = PublicKey::from_b58check(&v.public).unwrap();
    pk.verify_proof_of_possession(&proof).unwrap();
    assert_eq!(proof.to_b58check(), v.proof_of_possession.unwrap());

    assert!(vault.supports_deterministic_nonces());
    let key = SecretKey::from_b58check(&v.secret).unwrap();
    assert_eq!(
        vault
            .deterministic_nonce(&pkh(&v.pkh), b"data")
            .await
            .unwrap(),
        key.deterministic_nonce(b"data")
    );
    assert!(vault.health().await.is_ok());
}

// ---------------------------------------------------------------------------------------
// New keys

#[tokio::test]
async fn generated_keys_persist_privately_and_reload() {
    let file = key_file(&[]);
    let vault = open_file(&file.path, PasswordSource::None).unwrap();
    let mut generated = Vec::new();
    for curve in Curve::ALL {
        let key = vault.generate(curve).await.unwrap();
        assert_eq!(key.pkh.curve(), curve);
        generated.push(key);
    }
    assert_eq!(mode_of(&file.path), 0o600);
    let text = std::fs::read_to_string(&file.path).unwrap();
    assert_eq!(
        text.matches("unencrypted:").count(),
        4,
        "no password: stored as before"
    );
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(file.path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("secret.json")]);

    let reloaded = open_file(&file.path, PasswordSource::None).unwrap();
    let keys = reloaded.list_keys().await.unwrap();
    assert_eq!(keys.len(), 4);
    for key in &generated {
        let again = keys.iter().find(|k| k.pkh == key.pkh).unwrap();
        assert_eq!(again.public_key, key.public_key);
        let message = b"\x03after a restart";
        let sig = reloaded
            .sign(&key.pkh, message, SigningVersion::V2)
            .await
            .unwrap();
        key.public_key
            .verify(message, &sig, SigningVersion::V2)
            .unwrap();
    }
}

#[tokio::test]
async fn imported_keys_join_existing_entries_and_import_is_idempotent() {
    let existing = SecretKey::generate(Curve::Ed25519);
    let file = key_file(&[
        (
            "existing".to_owned(),
            format!("unencrypted:{}", existing.to_b58check().as_str()),
        ),
        (
            "ledger".to_owned(),
            "ledger://prefer-kid/ed25519/0h/1h".to_owned(),
        ),
    ]);
    let vault = open_file(&file.path, PasswordSource::None).unwrap();
    let new = SecretKey::generate(Curve::Secp256k1);
    let imported = vault.import(new.clone()).await.unwrap();
    assert_eq!(imported.pkh, new.public_key().hash());
    assert_eq!(
        imported.label.as_deref(),
        Some(imported.pkh.to_string().as_str())
    );
    let again = vault.import(new.clone()).await.unwrap();
    assert_eq!(again, imported);
    let again = vault.import(existing.clone()).await.unwrap();
    assert_eq!(again.label.as_deref(), Some("existing"));

    let text = std::fs::read_to_string(&file.path).unwrap();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["existing", "ledger", imported.pkh.to_string().as_str()]
    );
    assert_eq!(entries[1]["value"], "ledger://prefer-kid/ed25519/0h/1h");
}

#[tokio::test]
async fn new_keys_are_encrypted_when_a_password_is_configured() {
    let old = SecretKey::generate(Curve::P256);
    let file = key_file(&[(
        "old".to_owned(),
        format!("encrypted:{}", encrypted::encrypt(&old, b"pw")),
    )]);
    let vault = open_file(&file.path, given("pw")).unwrap();
    let key = vault.generate(Curve::Bls12_381).await.unwrap();
    let text = std::fs::read_to_string(&file.path).unwrap();
    assert!(!text.contains("unencrypted:"), "{text}");
    assert_eq!(text.matches("encrypted:BLesk").count(), 1, "{text}");
    let reloaded = open_file(&file.path, given("pw")).unwrap();
    assert!(reloaded
        .list_keys()
        .await
        .unwrap()
        .iter()
        .any(|k| k.pkh == key.pkh));
}

// ---------------------------------------------------------------------------------------
// Secrets stay out of Debug

#[tokio::test]
async fn debug_output_never_shows_secrets() {
    let vectors = vectors();
    let entries: Vec<(String, String)> = vectors
        .iter()
        .map(|v| {
            (
                v.pkh.clone(),
                format!(
                    "encrypted:{}",
                    encrypted::encrypt(&SecretKey::from_b58check(&v.secret).unwrap(), b"sesame-42")
                ),
            )
        })
        .collect();
    let file = key_file(&entries);
    let file_vault = FileVault::open("local", &options(&file.path, given("sesame-42"))).unwrap();
    let mem_vault = MemVault::with_keys(
        "mem",
        vectors
            .iter()
            .map(|v| SecretKey::from_b58check(&v.secret).unwrap()),
    );
    let file_vault: Arc<dyn Vault> = Arc::new(file_vault);
    let mem_vault: Arc<dyn Vault> = Arc::new(mem_vault);
    let options = options(&file.path, given("sesame-42"));
    for debug in [
        format!("{file_vault:?}"),
        format!("{file_vault:#?}"),
        format!("{mem_vault:?}"),
        format!("{:?}", file_vault.list_keys().await.unwrap()),
        format!("{:?}", mem_vault.list_keys().await.unwrap()),
        format!("{options:?}"),
    ] {
        assert!(!debug.contains("sesame"), "{debug}");
        for v in &vectors {
            assert!(!debug.contains(&v.secret), "{debug}");
            let key = SecretKey::from_b58check(&v.secret).unwrap();
            let raw = key.to_b58check();
            assert!(!debug.contains(raw.as_str()), "{debug}");
        }
        for (_, esk) in &entries {
            assert!(
                !debug.contains(esk.trim_start_matches("encrypted:")),
                "{debug}"
            );
        }
    }
    // It still says which keys are there.
    assert!(format!("{file_vault:?}").contains(&vectors[0].pkh));
}

// ---------------------------------------------------------------------------------------
// Registry

fn yaml(text: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(text).unwrap()
}

#[tokio::test]
async fn the_registry_opens_configured_vaults() {
    let secret = SecretKey::generate(Curve::Ed25519);
    let file = key_file(&[(
        "k".to_owned(),
        format!("unencrypted:{}", secret.to_b58check().as_str()),
    )]);
    let path = file.path.display().to_string();
    // ECAD's mapping form and its bare-path form.
    for settings in [yaml(&format!("file: {path}")), yaml(&format!("'{path}'"))] {
        let vault = open("local", "file", &settings).await.unwrap();
        assert_eq!(vault.driver(), "file");
        assert_eq!(
            vault.list_keys().await.unwrap()[0].pkh,
            secret.public_key().hash()
        );
    }
    let vault = open(
        "scratch",
        "mem",
        &yaml("generate: [tz1, secp256k1, tz3, bls12_381]"),
    )
    .await
    .unwrap();
    let curves: BTreeSet<Curve> = vault
        .list_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| k.pkh.curve())
        .collect();
    assert_eq!(curves.len(), 4);
    // ECAD's mem form: a list of secret keys.
    let vault = open(
        "m",
        "mem",
        &yaml(&format!("[unencrypted:{}]", secret.to_b58check().as_str())),
    )
    .await
    .unwrap();
    assert_eq!(vault.list_keys().await.unwrap().len(), 1);
    let vault = open("empty", "mem", &serde_yaml_ng::Value::Null)
        .await
        .unwrap();
    let generated = vault.generate(Curve::Bls12_381).await.unwrap();
    assert_eq!(vault.list_keys().await.unwrap(), vec![generated]);
}

#[tokio::test]
async fn the_registry_names_what_to_fix() {
    let err = open("hsm", "pkcs12", &serde_yaml_ng::Value::Null)
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::UnknownDriver { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "vault `hsm`: `vaults.hsm.driver`: unknown driver `pkcs12`; this build has: {}",
            driver_names().join(", ")
        )
    );
    let cases = [
        ("file", "null", "vaults.v.config"),
        ("file", "{password_env: X}", "vaults.v.config.file"),
        (
            "file",
            "{file: /x, pasword_env: X}",
            "vaults.v.config.pasword_env",
        ),
        (
            "file",
            "{file: /x, password_env: X, password_file: /p}",
            "vaults.v.config",
        ),
        (
            "file",
            "{file: /x, prompt: maybe}",
            "vaults.v.config.prompt",
        ),
        ("file", "[1]", "vaults.v.config"),
        ("mem", "[edsk-not-a-key]", "vaults.v.config[0]"),
        ("mem", "[1]", "vaults.v.config[0]"),
        ("mem", "{keys: [nope]}", "vaults.v.config.keys[0]"),
        (
            "mem",
            "{generate: [tz1, tz9]}",
            "vaults.v.config.generate[1]",
        ),
        ("mem", "{keys: [], extra: 1}", "vaults.v.config.extra"),
        ("mem", "[encrypted:edesk1]", "vaults.v.config[0]"),
    ];
    for (driver, settings, path) in cases {
        let err = open("v", driver, &yaml(settings)).await.unwrap_err();
        match &err {
            OpenError::Config { key_path, .. } => assert_eq!(key_path, path, "{err}"),
            other => panic!("{driver} {settings}: {other}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The bundled example

#[tokio::test]
async fn the_example_key_file_holds_every_key_the_example_config_lists() {
    // Git checks files out as 0644; the quick start makes the key file private first.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.json");
    std::fs::copy(workspace_file("examples/secret.json"), &secret).unwrap();
    chmod(&secret, 0o600);
    let config_path = workspace_file("examples/signatory.yaml");
    let secret_str = secret.display().to_string();
    let env = |name: &str| (name == "SIGNATORY_SECRET_FILE").then(|| secret_str.clone());
    let config = signatory_config::Config::load_with_env(&config_path, &env).unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.base_dir, PathBuf::from(".signatory"));
    assert_eq!(config.server.address.to_string(), "127.0.0.1:6732");
    assert_eq!(config.watermark.driver, "file");
    let vault_config = config.vaults.get("local").unwrap();
    let vault = signatory_vaults::open_configured(vault_config)
        .await
        .unwrap();
    let held: BTreeSet<PublicKeyHash> = listed_keys(&*vault).await.into_iter().collect();
    let listed: BTreeSet<PublicKeyHash> = config.tezos.keys().copied().collect();
    assert_eq!(held, listed);
    // They are the published test keys, nothing else.
    let published: BTreeSet<PublicKeyHash> = vectors().iter().map(|v| pkh(&v.pkh)).collect();
    assert!(held.is_subset(&published));
    // The baker signs consensus operations only; the wallets generic operations only.
    let baker = config
        .tezos
        .get(&pkh("tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx"))
        .unwrap();
    assert!(
        baker.allowed_requests.contains("block") && !baker.allowed_requests.contains("generic")
    );
    let wallet = config
        .tezos
        .get(&pkh("tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv"))
        .unwrap();
    assert_eq!(
        wallet.allowed_requests.iter().collect::<Vec<_>>(),
        vec!["generic"]
    );
    assert!(
        config
            .tezos
            .get(&pkh("tz4JmbuiJGyC2thisABCS59PnGr749dsP4WY"))
            .unwrap()
            .allow_proof_of_possession
    );

    // As checked out (0644), the file is refused with the fix.
    let mut loose = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
    loose
        .write_all(&std::fs::read(workspace_file("examples/secret.json")).unwrap())
        .unwrap();
    chmod(loose.path(), 0o644);
    let err = FileVault::open("local", &options(loose.path(), PasswordSource::None)).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}
