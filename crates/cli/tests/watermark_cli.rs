//! `signatory watermark init|show|set|export|import` on a real file store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{stderr, write_private, Home, MAINNET};
use std::process::{Command, Stdio};
use tezos_crypto::base58::{self, Prefix};

const KEY_A: &str = "tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv";
const KEY_B: &str = "tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD";
const GHOSTNET: &str = "NetXnHfVqm9iesp";

fn initialised() -> Home {
    let home = Home::new();
    home.write_config();
    home.ok(&["watermark", "init"]);
    home
}

/// The `(level, round)` column pair of `show`'s line for `key` and `kind`.
fn shown(home: &Home, chain: &str, key: &str, kind: &str) -> Option<(String, String)> {
    let out = home.ok(&["watermark", "show"]);
    out.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.len() >= 5 && cols[0] == chain && cols[1] == key && cols[2] == kind)
            .then(|| (cols[3].to_owned(), cols[4].to_owned()))
    })
}

fn set(
    home: &Home,
    chain: &str,
    key: &str,
    kind: &str,
    level: i32,
    round: i32,
) -> std::process::Output {
    home.run(&[
        "watermark",
        "set",
        "--chain",
        chain,
        "--key",
        key,
        "--kind",
        kind,
        "--level",
        &level.to_string(),
        "--round",
        &round.to_string(),
    ])
}

#[test]
fn init_creates_the_store_once() {
    let home = Home::new();
    home.write_config();
    let out = home.ok(&["watermark", "init"]);
    assert!(out.contains("created an empty watermark store"), "{out}");
    assert!(
        out.contains(&format!(
            "signatory watermark import -c {} --from <dir>",
            home.config_path().display()
        )),
        "{out}"
    );
    assert!(home.base_dir().join("watermarks").is_dir());
    let again = home.run(&["watermark", "init"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(home.ok(&["watermark", "show"]), "(no watermarks)\n");
}

/// Write an ECAD Signatory chain file under `base`, as ECAD leaves its base directory.
fn write_ecad(base: &std::path::Path, level: i32) {
    std::fs::create_dir_all(base.join("watermark_v2")).unwrap();
    let vh = base58::encode(Prefix::PayloadHash, &[7; 32]);
    write_private(
        &base.join("watermark_v2").join(format!("{MAINNET}.json")),
        &format!(
            r#"{{"{KEY_A}": {{"attestation": {{"level": {level}, "round": 0, "hash": "{vh}"}}}}}}"#
        ),
    );
}

#[test]
fn init_refuses_a_base_dir_holding_ecad_watermarks_and_its_import_command_works() {
    let home = Home::new();
    home.write_config();
    write_ecad(&home.base_dir(), 9000);
    let out = home.run(&["watermark", "init"]);
    assert!(
        !out.status.success(),
        "init made an empty store beside ECAD's"
    );
    let err = stderr(&out);
    assert!(err.contains("another signer's watermarks"), "{err}");
    assert!(
        err.contains(&home.base_dir().join("watermark_v2").display().to_string()),
        "{err}"
    );
    let import = home.import_base_dir_command();
    assert!(err.contains(&import), "{err}");
    assert!(err.contains("--empty"), "{err}");
    assert!(!home.base_dir().join("watermarks").exists());

    // The suggested command creates the store with ECAD's watermarks in it.
    let out = home.ok(&[
        "watermark",
        "import",
        "--from",
        &home.base_dir().display().to_string(),
    ]);
    assert!(out.contains("created the watermark store"), "{out}");
    assert!(out.contains("1 added"), "{out}");
    assert_eq!(
        shown(&home, MAINNET, KEY_A, "attestation"),
        Some(("9000".into(), "0".into()))
    );
}

/// An ECAD release before `watermark_v2` left only `watermark_v1/`: the same refusal, and
/// the import takes the whole level for every kind.
#[test]
fn init_refuses_an_older_ecad_layout_and_its_import_takes_the_level() {
    let home = Home::new();
    home.write_config();
    let v1 = home.base_dir().join("watermark_v1");
    std::fs::create_dir_all(&v1).unwrap();
    write_private(
        &v1.join(format!("{MAINNET}.json")),
        &format!(r#"{{"{KEY_A}": {{"level": 777, "round": 1, "order": 2, "hash": null}}}}"#),
    );
    let out = home.run(&["watermark", "init"]);
    assert!(
        !out.status.success(),
        "init made an empty store beside ECAD's"
    );
    let err = stderr(&out);
    assert!(err.contains(&v1.display().to_string()), "{err}");
    assert!(err.contains(&home.import_base_dir_command()), "{err}");
    let out = home.ok(&[
        "watermark",
        "import",
        "--from",
        &home.base_dir().display().to_string(),
    ]);
    assert!(out.contains("3 added"), "{out}");
    for kind in ["block", "preattestation", "attestation"] {
        let (level, _) = shown(&home, MAINNET, KEY_A, kind).unwrap();
        assert_eq!(level, "777", "{kind}");
    }
}

#[test]
fn init_refuses_a_base_dir_holding_octez_watermarks_unless_empty_is_given() {
    for name in [
        "block_high_watermarks",
        "preattestation_high_watermarks",
        "attestation_high_watermarks",
        "preendorsement_high_watermarks",
        "endorsement_high_watermarks",
        "block_high_watermark",
    ] {
        let home = Home::new();
        home.write_config();
        std::fs::create_dir_all(home.base_dir()).unwrap();
        write_private(
            &home.base_dir().join(name),
            &octez_file(MAINNET, KEY_A, 10, 0),
        );
        let out = home.run(&["watermark", "init"]);
        assert!(!out.status.success(), "{name}: init made an empty store");
        let err = stderr(&out);
        assert!(err.contains(name), "{err}");
        assert!(err.contains("signatory watermark import -c"), "{err}");
        assert!(!home.base_dir().join("watermarks").exists(), "{name}");

        let out = home.ok(&["watermark", "init", "--empty"]);
        assert!(out.contains("created an empty watermark store"), "{out}");
        assert_eq!(home.ok(&["watermark", "show"]), "(no watermarks)\n");
    }
}

#[test]
fn init_with_base_dir_suggests_commands_with_the_same_flags() {
    let home = Home::new();
    home.write_config();
    let other = home.path("other-base");
    let other_arg = other.display().to_string();
    let flags = format!("-c {} --base-dir {other_arg}", home.config_path().display());

    let out = home.ok(&["watermark", "init", "--base-dir", &other_arg]);
    assert!(
        out.contains(&format!("signatory watermark import {flags} --from <dir>")),
        "{out}"
    );

    let elsewhere = home.path("elsewhere");
    write_ecad(&elsewhere, 1);
    let elsewhere_arg = elsewhere.display().to_string();
    let out = home.run(&["watermark", "init", "--base-dir", &elsewhere_arg]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "signatory watermark import -c {} --base-dir {elsewhere_arg} --from {elsewhere_arg}",
            home.config_path().display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "signatory watermark init -c {} --base-dir {elsewhere_arg} --empty",
            home.config_path().display()
        )),
        "{err}"
    );
}

#[test]
fn commands_on_a_missing_store_beside_octez_files_say_to_import_them() {
    let home = Home::new();
    home.write_config();
    std::fs::create_dir_all(home.base_dir()).unwrap();
    write_private(
        &home.base_dir().join("attestation_high_watermarks"),
        &octez_file(MAINNET, KEY_A, 10, 0),
    );
    let out = home.run(&["watermark", "show"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&home.import_base_dir_command()), "{err}");
}

#[test]
fn commands_on_a_missing_store_say_to_run_init() {
    let home = Home::new();
    home.write_config();
    let out = home.run(&["watermark", "show"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("signatory watermark init"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn base_dir_flag_works_without_a_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(common::BIN)
            .args(args)
            .arg("--base-dir")
            .arg(dir.path())
            .env_remove("SIGNATORY_CONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // Only when /etc/signatory.yaml does not exist is the configuration optional.
    if std::path::Path::new("/etc/signatory.yaml").exists() {
        return;
    }
    common::assert_success(&run(&["watermark", "init"]), &["watermark", "init"]);
    assert!(dir.path().join("watermarks").is_dir());
    let out = run(&["watermark", "show"]);
    common::assert_success(&out, &["watermark", "show"]);
}

#[test]
fn set_raises_refuses_to_lower_and_lowers_only_with_force() {
    let home = initialised();
    common::assert_success(&set(&home, MAINNET, KEY_A, "block", 100, 2), &["set"]);
    assert_eq!(
        shown(&home, MAINNET, KEY_A, "block"),
        Some(("100".into(), "2".into()))
    );
    for (level, round) in [(100, 1), (99, 5)] {
        let out = set(&home, MAINNET, KEY_A, "block", level, round);
        assert!(!out.status.success(), "({level}, {round}) was accepted");
        assert!(
            stderr(&out).contains("force is required"),
            "{}",
            stderr(&out)
        );
    }
    // The same height with another request hash would replace what was signed there.
    let hash = "cd".repeat(32);
    let out = home.run(&[
        "watermark",
        "set",
        "--chain",
        MAINNET,
        "--key",
        KEY_A,
        "--kind",
        "block",
        "--level",
        "100",
        "--round",
        "2",
        "--hash",
        &hash,
    ]);
    assert!(
        !out.status.success(),
        "replacing at the same height was accepted"
    );
    assert!(
        stderr(&out).contains("force is required"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        shown(&home, MAINNET, KEY_A, "block"),
        Some(("100".into(), "2".into()))
    );
    common::assert_success(&set(&home, MAINNET, KEY_A, "block", 101, 0), &["set"]);
    let forced = home.ok(&[
        "watermark",
        "set",
        "--chain",
        MAINNET,
        "--key",
        KEY_A,
        "--kind",
        "block",
        "--level",
        "50",
        "--round",
        "0",
        "--force",
    ]);
    assert!(forced.contains("LOWERED"), "{forced}");
    assert_eq!(
        shown(&home, MAINNET, KEY_A, "block"),
        Some(("50".into(), "0".into()))
    );
    let bad_kind = set(&home, MAINNET, KEY_A, "endorsementt", 1, 0);
    assert!(!bad_kind.status.success());
}

#[test]
fn show_filters_by_chain_and_key() {
    let home = initialised();
    common::assert_success(&set(&home, MAINNET, KEY_A, "block", 10, 0), &["set"]);
    common::assert_success(&set(&home, GHOSTNET, KEY_B, "attestation", 20, 0), &["set"]);
    let only_b = home.ok(&["watermark", "show", "--key", KEY_B]);
    assert!(
        only_b.contains(KEY_B) && !only_b.contains(KEY_A),
        "{only_b}"
    );
    let only_main = home.ok(&["watermark", "show", "--chain", MAINNET]);
    assert!(
        only_main.contains(KEY_A) && !only_main.contains(GHOSTNET),
        "{only_main}"
    );
}

/// `show` and `export` read a store that a running signer holds; `set` still refuses.
#[test]
fn show_and_export_work_beside_a_running_signer() {
    let home = initialised();
    common::assert_success(&set(&home, MAINNET, KEY_A, "block", 42, 3), &["set"]);
    // What a running signer holds: the store's lock.
    let lock = std::fs::File::open(home.base_dir().join("watermarks").join("lock")).unwrap();
    lock.try_lock().unwrap();
    let out = home.run(&["watermark", "show"]);
    common::assert_success(&out, &["show"]);
    assert_eq!(
        shown(&home, MAINNET, KEY_A, "block"),
        Some(("42".to_owned(), "3".to_owned()))
    );
    assert!(
        stderr(&out).contains("a running signer holds"),
        "{}",
        stderr(&out)
    );
    let exported = home.ok(&["watermark", "export"]);
    assert!(exported.contains(KEY_A), "{exported}");
    let refused = set(&home, MAINNET, KEY_A, "block", 50, 0);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("stop the signer first"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn export_and_import_round_trip_and_import_never_lowers() {
    let source = initialised();
    common::assert_success(&set(&source, MAINNET, KEY_A, "block", 100, 1), &["set"]);
    common::assert_success(
        &set(&source, MAINNET, KEY_A, "preattestation", 100, 0),
        &["set"],
    );
    common::assert_success(
        &set(&source, GHOSTNET, KEY_B, "attestation", 7, 3),
        &["set"],
    );
    let stdout_export = source.ok(&["watermark", "export"]);
    let export_path = source.path("export.json");
    let export_arg = export_path.display().to_string();
    source.ok(&["watermark", "export", "-o", &export_arg]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&export_path).unwrap()).unwrap();
    assert_eq!(
        doc,
        serde_json::from_str::<serde_json::Value>(&stdout_export).unwrap()
    );
    assert_eq!(doc["format"], "signatory-watermarks");
    assert_eq!(doc["watermarks"].as_array().unwrap().len(), 3);

    // Into a store that stands higher for one key: that one is kept, the others added.
    let target = initialised();
    common::assert_success(&set(&target, MAINNET, KEY_A, "block", 200, 0), &["set"]);
    let out = target.ok(&["watermark", "import", "--from", &export_arg]);
    assert!(out.contains("2 added, 0 raised, 1 kept"), "{out}");
    assert_eq!(
        shown(&target, MAINNET, KEY_A, "block"),
        Some(("200".into(), "0".into()))
    );
    assert_eq!(
        shown(&target, GHOSTNET, KEY_B, "attestation"),
        Some(("7".into(), "3".into()))
    );
    // Importing again changes nothing.
    let out = target.ok(&["watermark", "import", "--from", &export_arg]);
    assert!(out.contains("0 added, 0 raised, 3 kept"), "{out}");
}

#[test]
fn octez_files_round_trip_through_export_and_import() {
    let home = initialised();
    common::assert_success(&set(&home, MAINNET, KEY_A, "block", 42, 1), &["set"]);
    common::assert_success(&set(&home, MAINNET, KEY_A, "attestation", 41, 0), &["set"]);
    let dir = home.path("octez-export");
    let dir_arg = dir.display().to_string();
    let out = home.run(&["watermark", "export", "--format", "octez"]);
    assert!(!out.status.success(), "octez export needs a directory");
    home.ok(&["watermark", "export", "--format", "octez", "-o", &dir_arg]);
    // The names octez-signer reads.
    let block: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("block_high_watermarks")).unwrap())
            .unwrap();
    assert_eq!(block[MAINNET][KEY_A]["level"], 42);
    assert_eq!(block[MAINNET][KEY_A]["round"], 1);
    assert!(dir.join("attestation_high_watermarks").is_file());
    assert!(!dir.join("block_high_watermark").exists());

    let fresh = initialised();
    let out = fresh.ok(&["watermark", "import", "--from", &dir_arg]);
    assert!(out.contains("Octez signer files"), "{out}");
    assert!(out.contains("2 added"), "{out}");
    assert_eq!(
        shown(&fresh, MAINNET, KEY_A, "block"),
        Some(("42".into(), "1".into()))
    );
}

fn octez_file(chain: &str, key: &str, level: i32, round: i32) -> String {
    let hash = "ab".repeat(32);
    format!(
        r#"{{"{chain}": {{"{key}": {{"level": {level}, "round": {round}, "hash": "{hash}"}}}}}}"#
    )
}

/// Lay out `files` (name, content) in a new directory `tezos-signer`, import it, and return
/// what the import printed.
fn import_octez_dir(home: &Home, files: &[(&str, String)]) -> String {
    let octez = home.path("tezos-signer");
    std::fs::create_dir(&octez).unwrap();
    for (name, content) in files {
        write_private(&octez.join(name), content);
    }
    home.ok(&[
        "watermark",
        "import",
        "--from",
        &octez.display().to_string(),
    ])
}

#[test]
fn a_current_octez_signer_directory_is_imported() {
    let home = initialised();
    // As octez-signer (v23 and later) leaves its base directory.
    let out = import_octez_dir(
        &home,
        &[
            ("secret_keys", "[]".into()),
            ("public_key_hashs", "[]".into()),
            ("public_keys", "[]".into()),
            ("block_high_watermarks", octez_file(MAINNET, KEY_A, 5000, 2)),
            (
                "preattestation_high_watermarks",
                octez_file(MAINNET, KEY_A, 5001, 1),
            ),
            (
                "attestation_high_watermarks",
                octez_file(MAINNET, KEY_B, 4999, 0),
            ),
        ],
    );
    assert!(out.contains("imported 3 watermarks"), "{out}");
    assert!(out.contains("Octez signer files"), "{out}");
    for (key, kind, level, round) in [
        (KEY_A, "block", "5000", "2"),
        (KEY_A, "preattestation", "5001", "1"),
        (KEY_B, "attestation", "4999", "0"),
    ] {
        assert_eq!(
            shown(&home, MAINNET, key, kind),
            Some((level.into(), round.into()))
        );
    }
}

#[test]
fn a_pre_v23_octez_signer_directory_is_imported() {
    let home = initialised();
    let out = import_octez_dir(
        &home,
        &[
            ("block_high_watermarks", octez_file(MAINNET, KEY_A, 700, 0)),
            (
                "preendorsement_high_watermarks",
                octez_file(MAINNET, KEY_A, 699, 3),
            ),
            (
                "endorsement_high_watermarks",
                octez_file(MAINNET, KEY_A, 698, 4),
            ),
        ],
    );
    assert!(out.contains("imported 3 watermarks"), "{out}");
    for (kind, level, round) in [("preattestation", "699", "3"), ("attestation", "698", "4")] {
        assert_eq!(
            shown(&home, MAINNET, KEY_A, kind),
            Some((level.into(), round.into()))
        );
    }
}

#[test]
fn a_directory_without_watermarks_names_the_octez_files_it_looked_for() {
    let home = initialised();
    let empty = home.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = home.run(&[
        "watermark",
        "import",
        "--from",
        &empty.display().to_string(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("attestation_high_watermarks"), "{err}");
    assert!(err.contains("preendorsement_high_watermarks"), "{err}");
}

#[test]
fn an_ecad_watermark_v2_directory_is_imported() {
    let home = initialised();
    let ecad = home.path("ecad");
    std::fs::create_dir_all(ecad.join("watermark_v2")).unwrap();
    let vh = base58::encode(Prefix::PayloadHash, &[7; 32]);
    write_private(
        &ecad.join("watermark_v2").join(format!("{MAINNET}.json")),
        &format!(
            r#"{{"{KEY_A}": {{
                "block": {{"level": 300, "round": 1, "hash": "{vh}"}},
                "preattestation": {{"level": 301, "round": 0, "hash": "{vh}"}},
                "attestation_with_dal": {{"level": 299, "round": 4, "hash": null}}
            }}}}"#
        ),
    );
    // A store already above the ECAD preattestation keeps its own.
    common::assert_success(
        &set(&home, MAINNET, KEY_A, "preattestation", 400, 0),
        &["set"],
    );
    let out = home.ok(&["watermark", "import", "--from", &ecad.display().to_string()]);
    assert!(out.contains("ECAD Signatory"), "{out}");
    assert!(out.contains("2 added, 0 raised, 1 kept"), "{out}");
    // ECAD blocks carry the payload round: the whole level is taken.
    assert_eq!(
        shown(&home, MAINNET, KEY_A, "block"),
        Some(("300".into(), "any".into()))
    );
    assert_eq!(
        shown(&home, MAINNET, KEY_A, "attestation"),
        Some(("299".into(), "4".into()))
    );
    assert_eq!(
        shown(&home, MAINNET, KEY_A, "preattestation"),
        Some(("400".into(), "0".into()))
    );
}

#[test]
fn a_mem_store_has_nothing_to_manage() {
    let mut home = Home::new();
    home.watermark_driver = "mem";
    home.write_config();
    let out = home.run(&["watermark", "init"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("`mem`"), "{}", stderr(&out));
}
