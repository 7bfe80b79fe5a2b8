//! `signatory generate`, `import` and `list` against a real file vault.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{pkhs, stderr, Home};
use std::os::unix::fs::PermissionsExt;
use tezos_crypto::{encrypted, Curve, PublicKeyHash, SecretKey};

#[test]
fn generate_creates_keys_of_every_type_in_a_new_private_key_file() {
    let home = Home::new();
    home.write_config();
    assert!(!home.secret_path().exists());
    let mut generated = Vec::new();
    for (kind, prefix, pk_prefix) in [
        ("tz1", "tz1", "edpk"),
        ("tz2", "tz2", "sppk"),
        ("tz3", "tz3", "p2pk"),
        ("tz4", "tz4", "BLpk"),
    ] {
        let out = home.ok(&["generate", "-t", kind, "--vault", "local", "-n", "2"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        for line in lines {
            let (pkh, pk) = line.split_once("  ").unwrap();
            assert!(pkh.starts_with(prefix), "{line}");
            assert!(pk.starts_with(pk_prefix), "{line}");
            // The printed public key is the key of the printed hash.
            let pk = tezos_crypto::PublicKey::from_b58check(pk).unwrap();
            assert_eq!(pk.hash().to_b58check(), pkh);
            generated.push(pkh.to_owned());
        }
    }
    let mode = std::fs::metadata(home.secret_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Every generated key is in the vault, not enabled, with its curve.
    let listed = home.ok(&["list"]);
    let mut listed_pkhs = pkhs(&listed);
    listed_pkhs.sort();
    generated.sort();
    assert_eq!(listed_pkhs, generated, "{listed}");
    assert!(listed.contains("bls12_381"), "{listed}");
    assert_eq!(listed.matches("not enabled").count(), 8, "{listed}");
}

#[test]
fn generate_into_an_unknown_vault_names_the_configured_ones() {
    let home = Home::new();
    home.write_config();
    let out = home.run(&["generate", "-t", "tz1", "--vault", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no vault named `nope`") && stderr(&out).contains("vaults: local"),
        "{}",
        stderr(&out)
    );
    let out = home.run(&["generate", "-t", "tz9", "--vault", "local"]);
    assert!(!out.status.success());
}

#[test]
fn import_takes_plain_encrypted_and_piped_keys() {
    let mut home = Home::new();
    let plain = SecretKey::generate(Curve::Secp256k1);
    let locked = SecretKey::generate(Curve::Ed25519);
    let piped = SecretKey::generate(Curve::Bls12_381);
    let plain_pkh = plain.public_key().hash().to_b58check();
    home.enable(&plain_pkh);
    home.write_config();

    let out = home.ok(&["import", "--vault", "local", plain.to_b58check().as_str()]);
    assert_eq!(pkhs(&out), vec![plain_pkh.clone()]);

    let esk = encrypted::encrypt(&locked, b"correct horse");
    let out = home.run_with(
        &[
            "import",
            "--vault",
            "local",
            "--password-env",
            "KEY_PW",
            &esk,
        ],
        &[("KEY_PW", "wrong")],
        None,
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    let out = home.run_with(
        &[
            "import",
            "--vault",
            "local",
            "--password-env",
            "KEY_PW",
            &esk,
        ],
        &[("KEY_PW", "correct horse")],
        None,
    );
    common::assert_success(&out, &["import", "encrypted"]);
    let locked_pkh = locked.public_key().hash().to_b58check();
    assert_eq!(
        pkhs(&String::from_utf8(out.stdout).unwrap()),
        vec![locked_pkh.clone()]
    );

    let input = format!("unencrypted:{}\n", piped.to_b58check().as_str());
    let out = home.run_with(&["import", "--vault", "local"], &[], Some(&input));
    common::assert_success(&out, &["import", "piped"]);
    let piped_pkh = piped.public_key().hash().to_b58check();

    // The key file holds the three keys, and secrets never reach the output.
    let listed = home.ok(&["list"]);
    let mut found = pkhs(&listed);
    found.sort();
    let mut expected = vec![plain_pkh.clone(), locked_pkh, piped_pkh];
    expected.sort();
    assert_eq!(found, expected, "{listed}");
    let line = listed.lines().find(|l| l.starts_with(&plain_pkh)).unwrap();
    assert!(
        line.contains("enabled: attestation,block,preattestation"),
        "{line}"
    );

    // A garbled key is refused without being echoed.
    let out = home.run(&["import", "--vault", "local", "edsk3garbage"]);
    assert!(!out.status.success());
    assert!(!stderr(&out).contains("edsk3garbage"), "{}", stderr(&out));
}

#[test]
fn list_shows_an_enabled_key_that_no_vault_holds() {
    let mut home = Home::new();
    let held = SecretKey::generate(Curve::P256);
    home.write_keys(&[&held]);
    let absent: PublicKeyHash = SecretKey::generate(Curve::Ed25519).public_key().hash();
    home.enable(&absent.to_b58check());
    home.write_config();
    let listed = home.ok(&["list"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&absent.to_b58check()))
        .unwrap();
    assert!(line.contains("MISSING"), "{listed}");
    assert!(listed.contains(&held.public_key().hash().to_b58check()));
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let home = Home::new();
    home.write_keys(&[&SecretKey::generate(Curve::Ed25519)]);
    std::fs::set_permissions(home.secret_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    home.write_config();
    let out = home.run(&["list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
}
