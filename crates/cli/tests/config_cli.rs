//! `signatory config check`, `version` and `--help` as an operator runs them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{stderr, write_private, Home, BIN};
use std::process::Command;
use std::time::{Duration, Instant};
use tezos_crypto::{Curve, SecretKey};

fn key(curve: Curve) -> SecretKey {
    SecretKey::generate(curve)
}

fn pkh(key: &SecretKey) -> String {
    key.public_key().hash().to_b58check()
}

/// The error line `signatory` printed.
fn error_line(output: &str) -> String {
    output
        .lines()
        .find(|line| line.starts_with("signatory: error: "))
        .unwrap_or_else(|| panic!("no error in:\n{output}"))
        .to_owned()
}

/// `serve` run until it exits on its own (it must: these configurations are refused).
fn serve_error(home: &Home) -> String {
    let mut child = home.spawn_serve();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "{}", home.serve_log());
            return error_line(&home.serve_log());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve kept running:\n{}", home.serve_log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `config check`, which must fail: its error line.
fn check_error(home: &Home) -> String {
    let out = home.run(&["config", "check"]);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    error_line(&stderr(&out))
}

/// A key under `tezos:` that no vault holds: `config check` refuses it as `serve` does.
#[test]
fn check_and_serve_refuse_a_key_no_vault_holds_alike() {
    let mut home = Home::new();
    let held = key(Curve::Ed25519);
    let absent = pkh(&key(Curve::P256));
    home.enable(&pkh(&held));
    home.enable(&absent);
    home.write_config();
    home.write_keys(&[&held]);
    home.ok(&["watermark", "init"]);
    let check = check_error(&home);
    assert!(
        check.contains(&absent) && check.contains("no vault holds it"),
        "{check}"
    );
    assert_eq!(check, serve_error(&home));
}

/// No vault at all: `config check` refuses it as `serve` does.
#[test]
fn check_and_serve_refuse_a_configuration_without_vaults_alike() {
    let home = Home::new();
    let baker = pkh(&key(Curve::Ed25519));
    for tezos in [format!("tezos:\n  {baker}:\n"), String::new()] {
        write_private(
            &home.config_path(),
            &format!(
                "base_dir: \"{}\"\nserver:\n  address: \"{}\"\n  utility_address: \"{}\"\n\
                 watermark:\n  driver: mem\n{tezos}",
                home.base_dir().display(),
                home.api,
                home.utility
            ),
        );
        let check = check_error(&home);
        assert!(check.contains("configures no vault"), "{check}");
        assert_eq!(check, serve_error(&home));
    }
}

/// A key that may sign consensus operations for any chain is pointed out; one bound to
/// its chain, or one that signs only other requests, is not.
#[test]
fn keys_without_allowed_chains_are_pointed_out() {
    let mut home = Home::new();
    let (open, bound, wallet) = (key(Curve::Ed25519), key(Curve::P256), key(Curve::Secp256k1));
    home.enable(&pkh(&open));
    home.enable_with(
        &pkh(&bound),
        &[
            "allowed_chains: [NetXdQprcVkpaWU]",
            "allow:",
            "  block:",
            "  attestation:",
        ],
    );
    home.enable_with(&pkh(&wallet), &["allow:", "  generic: [transaction]"]);
    home.write_config();
    home.write_keys(&[&open, &bound, &wallet]);
    home.ok(&["watermark", "init"]);
    let out = home.ok(&["config", "check"]);
    let warned: Vec<&str> = out
        .lines()
        .filter(|line| line.starts_with("warning: ") && line.contains("allowed_chains"))
        .collect();
    assert_eq!(warned.len(), 1, "{out}");
    assert!(warned[0].contains(&pkh(&open)), "{out}");
}

/// A password from `password_env` is gone from the signer's environment once it started,
/// and the encrypted key it unlocks signs.
#[cfg(target_os = "linux")]
#[test]
fn a_password_from_the_environment_leaves_it() {
    const PASSWORD: &str = "correct horse battery staple";
    let mut home = Home::new();
    home.write_config();
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    let file_line = format!("      file: \"{}\"\n", home.secret_path().display());
    assert!(config.contains(&file_line));
    let with_password = config.replace(
        &file_line,
        &format!("{file_line}      password_env: KEY_PASSWORD\n"),
    );
    write_private(&home.config_path(), &with_password);
    // `generate` encrypts the new key with the vault's password.
    let out = home.run_with(
        &["generate", "-t", "tz1", "--vault", "local"],
        &[("KEY_PASSWORD", PASSWORD)],
        None,
    );
    common::assert_success(&out, &["generate"]);
    let generated = common::pkhs(&String::from_utf8(out.stdout).unwrap());
    let baker = generated.first().unwrap().clone();
    let secrets = std::fs::read_to_string(home.secret_path()).unwrap();
    assert!(secrets.contains("encrypted:"), "{secrets}");
    home.enable(&baker);
    home.write_config();
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    write_private(
        &home.config_path(),
        &config.replace(
            &file_line,
            &format!("{file_line}      password_env: KEY_PASSWORD\n"),
        ),
    );
    home.ok(&["watermark", "init"]);

    let server = home.start_with(&[("KEY_PASSWORD", PASSWORD)]);
    let environ = std::fs::read(format!("/proc/{}/environ", server.child.id())).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(!environ.contains("KEY_PASSWORD"), "{environ}");
    assert!(!environ.contains(PASSWORD), "{environ}");
    // The key was unlocked with it.
    let (status, body) = server.get(&format!("/keys/{baker}"));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_good_configuration_is_summarised() {
    let mut home = Home::new();
    let (baker, wallet) = (key(Curve::Ed25519), key(Curve::Secp256k1));
    let (baker_pkh, wallet_pkh) = (pkh(&baker), pkh(&wallet));
    home.enable(&baker_pkh);
    home.enable_with(&wallet_pkh, &["allow:", "  generic: [transaction, reveal]"]);
    home.write_config();
    home.write_keys(&[&baker, &wallet]);
    home.ok(&["watermark", "init"]);
    let out = home.ok(&["config", "check"]);
    let config = home.config_path().display().to_string();
    assert!(out.starts_with(&format!("{config}: OK\n")), "{out}");
    assert!(out.contains("vaults (1):\n  local: driver file"), "{out}");
    assert!(out.contains("keys (2):"), "{out}");
    assert!(
        out.contains(&format!("{baker_pkh}: attestation,block,preattestation")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{wallet_pkh}: generic generic=[reveal,transaction]"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("API on {}", home.api)), "{out}");
    assert!(
        out.contains(&format!(
            "watermark store: file, in {} (0 watermarks)",
            home.base_dir().join("watermarks").display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "local: driver file, key file {}",
            home.secret_path().display()
        )),
        "{out}"
    );
}

/// What `serve` would refuse at start is found before it: a missing watermark store, a
/// key file that others can read, a key file that is not there.
#[test]
fn the_check_fails_where_serve_would_not_start() {
    let mut home = Home::new();
    let baker = key(Curve::Ed25519);
    home.enable(&pkh(&baker));
    home.write_config();
    home.write_keys(&[&baker]);
    let out = home.run(&["config", "check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("would not start") && err.contains("signatory watermark init -c"),
        "{err}"
    );
    // The summary is still printed.
    assert!(String::from_utf8_lossy(&out.stdout).contains("keys (1):"));

    home.ok(&["watermark", "init"]);
    std::fs::set_permissions(
        home.secret_path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = home.run(&["config", "check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("chmod 600"), "{err}");

    std::fs::remove_file(home.secret_path()).unwrap();
    let out = home.run(&["config", "check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&home.secret_path().display().to_string()),
        "{err}"
    );

    home.write_keys(&[&baker]);
    home.ok(&["config", "check"]);
}

#[test]
fn deprecated_names_are_accepted_with_a_warning() {
    let mut home = Home::new();
    let baker = key(Curve::Ed25519);
    home.enable_with(&pkh(&baker), &["allowed_operations: [block, endorsement]"]);
    home.write_config();
    home.write_keys(&[&baker]);
    home.ok(&["watermark", "init"]);
    let out = home.ok(&["config", "check"]);
    assert!(out.contains("warning: "), "{out}");
}

#[test]
fn a_bad_configuration_fails_naming_the_file_the_key_and_the_reason() {
    let mut home = Home::new();
    home.enable_with(
        "tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv",
        &["allow:", "  generic: [transfer]"],
    );
    home.write_config();
    let out = home.run(&["config", "check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&home.config_path().display().to_string()),
        "{err}"
    );
    assert!(
        err.contains("tezos.tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv"),
        "{err}"
    );
    assert!(err.contains("transfer"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unknown_setting_and_an_unknown_driver_fail() {
    let home = Home::new();
    write_private(&home.config_path(), "server:\n  adress: :6732\n");
    let out = home.run(&["config", "check"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("adress"), "{}", stderr(&out));

    write_private(
        &home.config_path(),
        "vaults:\n  hsm:\n    driver: pkcs12\nwatermark:\n  driver: file\n",
    );
    let out = home.run(&["config", "check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: vault `hsm`: `vaults.hsm.driver`: unknown driver `pkcs12`",
            home.config_path().display()
        )),
        "{err}"
    );

    write_private(
        &home.config_path(),
        "vaults:\n  local:\n    driver: file\n    config:\n      fille: /x.json\n",
    );
    let out = home.run(&["config", "check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: vault `local`: `vaults.local.config",
            home.config_path().display()
        )) && err.contains("fille"),
        "{err}"
    );

    write_private(&home.config_path(), "watermark:\n  driver: etcd\n");
    let out = home.run(&["config", "check"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown watermark driver `etcd`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_file_is_named() {
    let home = Home::new();
    let out = home.run(&["config", "check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot read configuration file {}",
            home.config_path().display()
        )),
        "{err}"
    );
}

/// With no `-c` and no `/etc/signatory.yaml`, the error says how to name a file.
#[test]
fn a_missing_default_file_says_how_to_name_one() {
    if std::path::Path::new("/etc/signatory.yaml").exists() {
        return;
    }
    let out = Command::new(BIN)
        .args(["config", "check"])
        .env_remove("SIGNATORY_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no configuration file at /etc/signatory.yaml (the default)")
            && err.contains("-c FILE")
            && err.contains("SIGNATORY_CONFIG"),
        "{err}"
    );
}

#[test]
fn version_names_the_version_and_drivers() {
    let out = Command::new(BIN).arg("version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("signatory {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        text.contains("vault drivers: file, mem, pkcs11, ledger, yubihsm, awskms, azure, cloudkms, hashicorpvault\n"),
        "{text}"
    );
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for args in [
        &["serve"][..],
        &["list"],
        &["generate"],
        &["import"],
        &["decode"],
        &["config", "check"],
        &["watermark", "init"],
        &["watermark", "show"],
        &["watermark", "set"],
        &["watermark", "export"],
        &["watermark", "import"],
        &["version"],
    ] {
        let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Example:\n  signatory "), "{args:?}:\n{text}");
    }
}
