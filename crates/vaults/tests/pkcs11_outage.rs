//! The `pkcs11` driver when its token goes away and comes back (SoftHSM2). In a process of
//! its own: recovering restarts the PKCS#11 library, which the other tests share.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use signatory_e2e::softhsm::{SoftHsm, LIBRARY, PIN};
use signatory_signer::vault::Vault;
use signatory_vaults::open;
use tezos_crypto::{Curve, SigningVersion};

const MESSAGE: &[u8] = b"\x03some operation bytes";

/// The token's files vanish (a removed token, an HSM that went down) and come back: the
/// vault fails while they are away (a transient error) and signs again once they are back,
/// restarting the library, which SoftHSM2 needs after such a loss.
#[tokio::test]
async fn a_token_that_goes_away_and_comes_back_signs_again() {
    let hsm = SoftHsm::new(&["other", "gone"]).unwrap();
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
    let settings = |token: &str| -> serde_yaml_ng::Value {
        serde_yaml_ng::from_str(&format!(
            "library_path: {LIBRARY}\nslot: {}\npin: '{PIN}'\n",
            hsm.slot(token)
        ))
        .unwrap()
    };
    let vault = open("hsm", "pkcs11", &settings("gone")).await.unwrap();
    let other = open("other", "pkcs11", &settings("other")).await.unwrap();
    let other_keys = [
        other.generate(Curve::Ed25519).await.unwrap(),
        other.generate(Curve::P256).await.unwrap(),
    ];
    let key = vault.generate(Curve::P256).await.unwrap();
    let second = vault.generate(Curve::Secp256k1).await.unwrap();
    assert_signs(vault.as_ref(), &key).await;
    assert_signs(vault.as_ref(), &second).await;
    let token_dirs = hsm.conf.parent().unwrap().join("tokens");
    let away = hsm.conf.parent().unwrap().join("tokens-away");
    // Token directories are named by serial: move only this token's.
    let serial_dir = std::fs::read_dir(&token_dirs)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|dir| {
            std::fs::read_dir(dir).unwrap().any(|file| {
                let path = file.unwrap().path();
                path.file_name().is_some_and(|n| n == "token.object")
                    && std::fs::read(&path)
                        .unwrap()
                        .windows(4)
                        .any(|w| w == b"gone")
            })
        })
        .unwrap();
    std::fs::create_dir_all(&away).unwrap();
    let parked = away.join(serial_dir.file_name().unwrap());
    std::fs::rename(&serial_dir, &parked).unwrap();
    let e = vault
        .sign(&key.pkh, MESSAGE, SigningVersion::V1)
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(vault.health().await.is_err());
    std::fs::rename(&parked, &serial_dir).unwrap();
    // At most one library restart a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_signs(vault.as_ref(), &key).await;
    assert!(vault.health().await.is_ok());
    // Every key, not only the one whose call noticed: a restarted library numbers its
    // objects anew, so each key's handle is looked up again.
    assert_signs(vault.as_ref(), &second).await;
    // The other token's vault shares the library that was restarted: it signs too.
    for key in &other_keys {
        assert_signs(other.as_ref(), key).await;
    }
}

async fn assert_signs(vault: &dyn Vault, key: &signatory_signer::vault::VaultKey) {
    let signature = vault
        .sign(&key.pkh, MESSAGE, SigningVersion::V1)
        .await
        .unwrap();
    key.public_key
        .verify(MESSAGE, &signature, SigningVersion::V1)
        .unwrap();
}
