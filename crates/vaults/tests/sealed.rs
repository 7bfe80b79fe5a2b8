//! Sealed key files of the `file` driver, with a sealing vault that stands in for a KMS
//! (the drivers' own tests seal with moto's KMS and OpenBao transit): created empty, keys
//! added sealed, reopened through the sealing vault, and refused without it, with a wrong
//! sealing key, changed bytes or keys in clear.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use async_trait::async_trait;
use signatory_signer::vault::{Sealer, Vault, VaultError, VaultKey};
use signatory_vaults::{open_configured_among, seal_key_file, EnvPasswords, OpenError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tezos_crypto::{Curve, PublicKeyHash, SecretKey, Signature, SigningVersion};
use zeroize::Zeroizing;

/// A vault with no signing keys that "encrypts" under its key `good`: the key name, then
/// the bytes XORed with a pad. It refuses any other key, as a KMS refuses an unknown or
/// forbidden key id.
#[derive(Debug, Default)]
struct StandInKms {
    unseals: AtomicUsize,
}

const PAD: u8 = 0x5a;

#[async_trait]
impl Sealer for StandInKms {
    async fn seal(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        if key != "good" {
            return Err(VaultError::backend("kms", false, "AccessDenied"));
        }
        let mut out = key.as_bytes().to_vec();
        out.extend(plaintext.iter().map(|b| b ^ PAD));
        Ok(out)
    }

    async fn unseal(&self, key: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.unseals.fetch_add(1, Ordering::SeqCst);
        match sealed.strip_prefix(key.as_bytes()) {
            Some(body) if key == "good" => {
                Ok(Zeroizing::new(body.iter().map(|b| b ^ PAD).collect()))
            }
            _ => Err(VaultError::backend(
                "kms",
                false,
                "InvalidCiphertextException",
            )),
        }
    }
}

#[async_trait]
impl Vault for StandInKms {
    fn name(&self) -> &str {
        "kms"
    }
    fn driver(&self) -> &'static str {
        "stand-in"
    }
    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        Ok(Vec::new())
    }
    async fn sign(
        &self,
        pkh: &PublicKeyHash,
        _message: &[u8],
        _version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        Err(VaultError::KeyNotFound {
            vault: "kms".to_owned(),
            pkh: *pkh,
        })
    }
    fn sealer(&self) -> Option<&dyn Sealer> {
        Some(self)
    }
}

fn file_vault(path: &std::path::Path) -> signatory_config::VaultConfig {
    let yaml = format!("file: {}\n", path.display());
    signatory_config::VaultConfig {
        name: "sealed".to_owned(),
        driver: "file".to_owned(),
        config: serde_yaml_ng::from_str(&yaml).unwrap(),
    }
}

async fn open_with(
    config: &signatory_config::VaultConfig,
    opened: &[Arc<dyn Vault>],
) -> Result<Arc<dyn Vault>, OpenError> {
    open_configured_among(config, &EnvPasswords::default(), opened).await
}

#[tokio::test]
async fn a_sealed_file_keeps_its_keys_out_of_clear_and_opens_only_through_its_sealer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealed.json");
    let config = file_vault(&path);
    let kms: Arc<dyn Vault> = Arc::new(StandInKms::default());
    seal_key_file("sealed", &config.config, &kms, "good")
        .await
        .unwrap();

    let vault = open_with(&config, std::slice::from_ref(&kms))
        .await
        .unwrap();
    let bls = SecretKey::generate(Curve::Bls12_381);
    let ed = SecretKey::generate(Curve::Ed25519);
    let added = [
        vault.import(bls.clone()).await.unwrap(),
        vault.import(ed.clone()).await.unwrap(),
    ];
    let text = std::fs::read_to_string(&path).unwrap();
    for secret in [&bls, &ed] {
        assert!(!text.contains(secret.to_b58check().as_str()), "{text}");
    }
    assert!(!text.contains("unencrypted"), "{text}");
    assert!(text.contains("\"signatory_sealed_key_file\": 1"), "{text}");
    assert!(text.contains("\"sealed:"), "{text}");

    // A restart: the keys come back, unsealed through the vault, and sign.
    drop(vault);
    let vault = open_with(&config, std::slice::from_ref(&kms))
        .await
        .unwrap();
    let listed: Vec<PublicKeyHash> = vault
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.pkh)
        .collect();
    for key in &added {
        assert!(listed.contains(&key.pkh), "{listed:?}");
        let sig = vault
            .sign(&key.pkh, b"\x11block", SigningVersion::V2)
            .await
            .unwrap();
        key.public_key
            .verify(b"\x11block", &sig, SigningVersion::V2)
            .unwrap();
    }

    // Sealing again with the same vault keeps the file; another file's state is untouched.
    seal_key_file("sealed", &config.config, &kms, "good")
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    // Without the sealing vault open, the vault waits for it (unavailable, retried).
    let e = open_with(&config, &[]).await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    assert!(
        matches!(&e, OpenError::NeedsVault { needs, .. } if needs == "kms"),
        "{e}"
    );
}

#[tokio::test]
async fn a_sealing_key_that_does_not_unseal_or_changed_bytes_stop_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealed.json");
    let config = file_vault(&path);
    let kms: Arc<dyn Vault> = Arc::new(StandInKms::default());
    // A key the sealing vault refuses: nothing is written.
    let e = seal_key_file("sealed", &config.config, &kms, "forbidden")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("did not seal the data key with key `forbidden`"),
        "{e}"
    );
    assert!(!path.exists());

    seal_key_file("sealed", &config.config, &kms, "good")
        .await
        .unwrap();
    let vault = open_with(&config, std::slice::from_ref(&kms))
        .await
        .unwrap();
    vault
        .import(SecretKey::generate(Curve::Bls12_381))
        .await
        .unwrap();
    drop(vault);
    let text = std::fs::read_to_string(&path).unwrap();

    // The header names another sealing key: the vault refuses to unseal, the start stops.
    let renamed = text.replace("\"key\":\"good\"", "\"key\":\"other\"");
    assert_ne!(renamed, text);
    std::fs::write(&path, &renamed).unwrap();
    let e = open_with(&config, std::slice::from_ref(&kms))
        .await
        .unwrap_err();
    assert!(!e.is_unavailable(), "{e}");
    assert!(e.to_string().contains("did not unseal its data key"), "{e}");

    // One changed hex digit in a sealed key: refused, not read as another key.
    let at = text.find("\"sealed:").unwrap() + "\"sealed:".len() + 60;
    let mut changed = text.clone().into_bytes();
    changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&path, &changed).unwrap();
    let e = open_with(&config, std::slice::from_ref(&kms))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("does not open with this file's data key"),
        "{e}"
    );
}

#[tokio::test]
async fn a_file_with_keys_in_clear_is_not_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.json");
    let key = SecretKey::generate(Curve::Ed25519);
    std::fs::write(
        &path,
        format!(
            "[{{\"name\": \"a\", \"value\": \"unencrypted:{}\"}}]",
            key.to_b58check().as_str()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = file_vault(&path);
    let kms: Arc<dyn Vault> = Arc::new(StandInKms::default());
    let e = seal_key_file("sealed", &config.config, &kms, "good")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds 1 key(s) that are not sealed"), "{e}");
}
