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

#[test]
fn a_good_configuration_is_summarised() {
    let mut home = Home::new();
    home.enable("tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv");
    home.enable_with(
        "tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD",
        &["allow:", "  generic: [transaction, reveal]"],
    );
    home.write_config();
    home.write_keys(&[]);
    home.ok(&["watermark", "init"]);
    let out = home.ok(&["config", "check"]);
    let config = home.config_path().display().to_string();
    assert!(out.starts_with(&format!("{config}: OK\n")), "{out}");
    assert!(out.contains("vaults (1):\n  local: driver file"), "{out}");
    assert!(out.contains("keys (2):"), "{out}");
    assert!(
        out.contains("tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv: attestation,block,preattestation"),
        "{out}"
    );
    assert!(
        out.contains("tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD: generic generic=[reveal,transaction]"),
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
    home.enable("tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv");
    home.write_config();
    home.write_keys(&[]);
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

    home.write_keys(&[]);
    home.ok(&["config", "check"]);
}

#[test]
fn deprecated_names_are_accepted_with_a_warning() {
    let mut home = Home::new();
    home.enable_with(
        "tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv",
        &["allowed_operations: [block, endorsement]"],
    );
    home.write_config();
    home.write_keys(&[]);
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
        "vaults:\n  hsm:\n    driver: pkcs11\nwatermark:\n  driver: file\n",
    );
    let out = home.run(&["config", "check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: vault `hsm`: `vaults.hsm.driver`: unknown driver `pkcs11`",
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
    assert!(text.contains("vault drivers: file, mem"), "{text}");
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
