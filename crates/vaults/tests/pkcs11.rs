//! The `pkcs11` driver against a real PKCS#11 library: SoftHSM2, tokens in a temporary
//! directory. Keys made by the signer (generate, import) and by `pkcs11-tool`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use signatory_e2e::softhsm::{SoftHsm, LIBRARY, PIN};
use signatory_signer::vault::{Vault, VaultError};
use signatory_vaults::{open, OpenError};
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use tezos_crypto::{Curve, SecretKey, SigningVersion};

/// One SoftHSM2 configuration for the whole test process: the library reads
/// `SOFTHSM2_CONF` once, when it is first initialised. One token per test.
fn hsm() -> &'static SoftHsm {
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let hsm = SoftHsm::new(&[
            "keys", "foreign", "config", "pool", "login", "setup", "gone",
        ])
        .unwrap();
        std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
        hsm
    })
}

fn settings(token: &str, extra: &str) -> serde_yaml_ng::Value {
    let yaml = format!(
        "library_path: {LIBRARY}\nslot: {}\npin: '{PIN}'\n{extra}",
        hsm().slot(token)
    );
    serde_yaml_ng::from_str(&yaml).unwrap()
}

async fn vault(token: &str, extra: &str) -> Arc<dyn Vault> {
    open("hsm", "pkcs11", &settings(token, extra))
        .await
        .unwrap()
}

const MESSAGE: &[u8] = b"\x03some operation bytes";

async fn assert_signs(vault: &dyn Vault, key: &signatory_signer::vault::VaultKey) {
    let signature = vault
        .sign(&key.pkh, MESSAGE, SigningVersion::V1)
        .await
        .unwrap();
    key.public_key
        .verify(MESSAGE, &signature, SigningVersion::V1)
        .unwrap_or_else(|e| panic!("{} signature does not verify: {e}", key.pkh));
    if matches!(key.pkh.curve(), Curve::Secp256k1 | Curve::P256) {
        assert!(signature.is_low_s(), "{}", key.pkh);
    }
}

#[tokio::test]
async fn generated_and_imported_keys_sign_verifiably_and_are_found_again() {
    let vault = vault("keys", "").await;
    assert!(vault.list_keys().await.unwrap().is_empty());
    let mut made = Vec::new();
    for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
        made.push(vault.generate(curve).await.unwrap());
    }
    let imported: Vec<SecretKey> = [Curve::Ed25519, Curve::Secp256k1, Curve::P256]
        .into_iter()
        .map(SecretKey::generate)
        .collect();
    for secret in &imported {
        let key = vault.import(secret.clone()).await.unwrap();
        assert_eq!(key.public_key, secret.public_key());
        made.push(key);
    }
    for key in &made {
        assert_signs(vault.as_ref(), key).await;
        // New keys are labelled with their address.
        assert_eq!(key.label.as_deref(), Some(key.pkh.to_b58check().as_str()));
    }
    // Ed25519 is deterministic: the token signs as the key file would, byte for byte.
    let by_token = vault
        .sign(
            &imported[0].public_key().hash(),
            MESSAGE,
            SigningVersion::V1,
        )
        .await
        .unwrap();
    assert_eq!(
        by_token,
        imported[0].sign(MESSAGE, SigningVersion::V1).unwrap()
    );
    // tz4 has no PKCS#11 mechanism.
    for e in [
        vault.generate(Curve::Bls12_381).await.unwrap_err(),
        vault
            .import(SecretKey::generate(Curve::Bls12_381))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(e, VaultError::Unsupported { .. }), "{e:?}");
    }
    // Opened again, the vault finds every key by discovery.
    let again = self::vault("keys", "").await;
    let listed: BTreeSet<_> = again
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.pkh)
        .collect();
    let expected: BTreeSet<_> = made.iter().map(|k| k.pkh).collect();
    assert_eq!(listed, expected);
    for key in again.list_keys().await.unwrap() {
        assert_signs(again.as_ref(), &key).await;
    }
    assert!(again.unusable_keys().is_empty());
}

#[tokio::test]
async fn discovery_skips_keys_it_cannot_use_and_keeps_the_others() {
    let hsm = hsm();
    let ours = vault("foreign", "")
        .await
        .generate(Curve::P256)
        .await
        .unwrap();
    hsm.pkcs11_tool(
        "foreign",
        &[
            "--keypairgen",
            "--key-type",
            "EC:secp384r1",
            "--label",
            "p384",
            "--id",
            "a1",
        ],
    )
    .unwrap();
    hsm.pkcs11_tool(
        "foreign",
        &[
            "--keypairgen",
            "--key-type",
            "rsa:1024",
            "--label",
            "rsa",
            "--id",
            "a2",
        ],
    )
    .unwrap();
    let vault = vault("foreign", "").await;
    let keys = vault.list_keys().await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].pkh, ours.pkh);
    assert_signs(vault.as_ref(), &keys[0]).await;
    let mut unusable = vault.unusable_keys();
    unusable.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(unusable.len(), 2, "{unusable:?}");
    assert_eq!(unusable[0].id, "label `p384` id a1");
    assert!(
        unusable[0].reason.contains("06052b81040022"),
        "{unusable:?}"
    );
    assert_eq!(unusable[1].id, "label `rsa` id a2");
    assert!(
        unusable[1].reason.contains("not an elliptic-curve key"),
        "{unusable:?}"
    );
}

#[tokio::test]
async fn configured_keys_are_found_by_label_or_id_and_bad_locators_name_the_setting() {
    let hsm = hsm();
    let made = vault("config", "")
        .await
        .generate(Curve::Ed25519)
        .await
        .unwrap();
    let other = vault("config", "")
        .await
        .generate(Curve::Ed25519)
        .await
        .unwrap();
    let label = made.pkh.to_b58check();
    let by_label = vault(
        "config",
        &format!("keys:\n  - private: {{label: {label}}}\n"),
    )
    .await;
    assert_eq!(by_label.list_keys().await.unwrap(), vec![made.clone()]);
    assert_signs(by_label.as_ref(), &made).await;
    // The public key given as a value (ECAD's `public_value`).
    let by_value = vault(
        "config",
        &format!(
            "keys:\n  - private: {{label: {label}}}\n    public_value: {}\n",
            made.public_key.to_b58check()
        ),
    )
    .await;
    assert_eq!(by_value.list_keys().await.unwrap().len(), 1);

    hsm.pkcs11_tool(
        "config",
        &[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "dup",
            "--id",
            "01",
        ],
    )
    .unwrap();
    hsm.pkcs11_tool(
        "config",
        &[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "dup",
            "--id",
            "02",
        ],
    )
    .unwrap();
    // By id, a `dup` key is one key.
    let by_id = vault("config", "keys:\n  - private: {label: dup, id: '02'}\n").await;
    assert_eq!(by_id.list_keys().await.unwrap()[0].pkh.curve(), Curve::P256);

    let cases = [
        (
            "keys:\n  - private: {label: nosuch}\n".to_owned(),
            "vaults.hsm.config.keys[0].private",
            "no private key with label `nosuch`",
        ),
        (
            "keys:\n  - private: {label: dup}\n".to_owned(),
            "vaults.hsm.config.keys[0].private",
            "2 private keys have label `dup`",
        ),
        (
            format!(
                "keys:\n  - private: {{label: {label}}}\n    public_value: {}\n",
                SecretKey::generate(Curve::P256).public_key().to_b58check()
            ),
            "vaults.hsm.config.keys[0].public_value",
            "is a p256 key but the token's key is ed25519",
        ),
        (
            format!("keys:\n  - private: {{label: {label}}}\n    public: {{label: nosuch}}\n"),
            "vaults.hsm.config.keys[0].public",
            "no public key with label `nosuch`",
        ),
    ];
    for (extra, key_path, message) in cases {
        let e = open("hsm", "pkcs11", &settings("config", &extra))
            .await
            .unwrap_err();
        let OpenError::Config {
            key_path: at,
            message: text,
            ..
        } = &e
        else {
            panic!("{e:?}");
        };
        assert_eq!(at, key_path, "{extra}");
        assert!(text.contains(message), "{extra}: {text}");
    }
    drop(other);
}

#[tokio::test]
async fn bad_setups_get_errors_that_name_the_setting_and_never_the_pin() {
    let slot = hsm().slot("setup");
    let open_with = |yaml: String| async move {
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        open("hsm", "pkcs11", &value).await.unwrap_err()
    };
    let wrong_pin = open_with(format!(
        "library_path: {LIBRARY}\nslot: {slot}\npin: '98765'\n"
    ))
    .await;
    let text = wrong_pin.to_string();
    assert!(
        matches!(&wrong_pin, OpenError::Config { key_path, .. } if key_path == "vaults.hsm.config.pin"),
        "{text}"
    );
    assert!(
        text.contains("refused the PIN") && !text.contains("98765"),
        "{text}"
    );
    // The right PIN still works afterwards: nothing was locked by retrying.
    vault("setup", "").await;

    let wrong_slot = open_with(format!(
        "library_path: {LIBRARY}\nslot: 424242\npin: '{PIN}'\n"
    ))
    .await;
    let text = wrong_slot.to_string();
    assert!(
        text.contains("`vaults.hsm.config.slot`: slot 0x67932 holds no initialised token"),
        "{text}"
    );
    assert!(text.contains(&format!("{slot:#x}")), "{text}");

    // SoftHSM2 always has a free slot with an uninitialised token: a wrong slot, refused.
    let free_slot = {
        use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
        let ctx = Pkcs11::new(LIBRARY).unwrap();
        let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
        let free = ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| !ctx.get_token_info(*s).unwrap().token_initialized())
            .unwrap()
            .id();
        std::mem::forget(ctx);
        free
    };
    let uninitialised = open_with(format!(
        "library_path: {LIBRARY}\nslot: {free_slot}\npin: '{PIN}'\n"
    ))
    .await;
    assert!(
        matches!(&uninitialised, OpenError::Config { key_path, .. } if key_path == "vaults.hsm.config.slot"),
        "{uninitialised}"
    );
    let no_library = open_with(format!(
        "library_path: /nonexistent/libpkcs11.so\npin: '{PIN}'\n"
    ))
    .await;
    assert!(
        no_library
            .to_string()
            .contains("`vaults.hsm.config.library_path`: /nonexistent/libpkcs11.so does not exist"),
        "{no_library}"
    );
    let not_a_library = open_with(format!("library_path: /etc/hostname\npin: '{PIN}'\n")).await;
    assert!(
        not_a_library
            .to_string()
            .contains("is not a PKCS#11 library"),
        "{not_a_library}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_session_pool_holds_several_sessions_and_a_pool_of_one_serves_everyone_in_turn() {
    let wide = vault("pool", "max_sessions: 4\n").await;
    let key = wide.generate(Curve::P256).await.unwrap();
    let sign_all = |vault: Arc<dyn Vault>, n: usize| {
        let key = key.clone();
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..n {
                let vault = Arc::clone(&vault);
                let key = key.clone();
                tasks.spawn(async move {
                    let message = format!("\x03message {i}").into_bytes();
                    let signature = vault
                        .sign(&key.pkh, &message, SigningVersion::V1)
                        .await
                        .unwrap();
                    key.public_key
                        .verify(&message, &signature, SigningVersion::V1)
                        .unwrap();
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.unwrap();
            }
        }
    };
    sign_all(Arc::clone(&wide), 64).await;
    // A session is opened only when none is idle: more than one means signatures ran at
    // the same time; never more than the bound.
    let sessions = wide.sessions().unwrap();
    assert!(sessions.idle >= 2 && sessions.idle <= 4, "{sessions:?}");
    assert_eq!((sessions.in_use, sessions.max), (0, 4));

    let narrow = vault("pool", "max_sessions: 1\n").await;
    sign_all(Arc::clone(&narrow), 32).await;
    let sessions = narrow.sessions().unwrap();
    assert_eq!((sessions.idle, sessions.in_use, sessions.max), (1, 0, 1));
}

#[tokio::test]
async fn a_login_lost_under_the_vault_is_recovered_by_a_fresh_session() {
    let vault = vault("login", "max_sessions: 2\n").await;
    let key = vault.generate(Curve::Ed25519).await.unwrap();
    assert_signs(vault.as_ref(), &key).await;
    // Another session of this process logs out: the login, shared by every session of the
    // process, is gone, and the vault's pooled session can no longer use the private key.
    {
        use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
        let ctx = Pkcs11::new(LIBRARY).unwrap();
        let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
        let slot = ctx
            .get_all_slots()
            .unwrap()
            .into_iter()
            .find(|s| s.id() == hsm().slot("login"))
            .unwrap();
        let session = ctx.open_ro_session(slot).unwrap();
        session.logout().unwrap();
        // Dropping the context must not finalise the library under the vault.
        std::mem::forget(ctx);
    }
    assert_signs(vault.as_ref(), &key).await;
    assert!(vault.health().await.is_ok());
}
