//! `signatory serve` as a process: what stops it from starting, what it answers, and how it
//! stops.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{attestation, pkhs, Home, MAINNET};
use std::time::{Duration, Instant};
use tezos_crypto::{Curve, PublicKey, SecretKey, Signature, SigningVersion};

fn hex_body(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(bytes))
}

/// Run `serve` expecting it to exit on its own; returns (success, output).
fn serve_until_exit(home: &Home) -> (bool, String) {
    let mut child = home.spawn_serve();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.success(), home.serve_log());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve kept running:\n{}", home.serve_log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_without_a_watermark_store_says_how_to_create_it() {
    let mut home = Home::new();
    let key = SecretKey::generate(Curve::Ed25519);
    home.write_keys(&[&key]);
    home.enable(&key.public_key().hash().to_b58check());
    home.write_config();
    let (ok, log) = serve_until_exit(&home);
    assert!(!ok, "{log}");
    assert!(log.contains("no watermark store at"), "{log}");
    assert!(
        log.contains(&format!(
            "signatory watermark init -c {}",
            home.config_path().display()
        )),
        "{log}"
    );
    // Nothing was created behind the operator's back.
    assert!(!home.base_dir().join("watermarks").exists());
}

#[test]
fn serve_without_a_store_beside_another_signers_watermarks_says_to_import_them() {
    let mut home = Home::new();
    let key = SecretKey::generate(Curve::Ed25519);
    home.write_keys(&[&key]);
    home.enable(&key.public_key().hash().to_b58check());
    home.write_config();
    // An ECAD Signatory base directory, reused in place.
    let ecad = home.base_dir().join("watermark_v2");
    std::fs::create_dir_all(&ecad).unwrap();
    std::fs::write(ecad.join(format!("{MAINNET}.json")), "{}").unwrap();
    let (ok, log) = serve_until_exit(&home);
    assert!(!ok, "{log}");
    assert!(log.contains("another signer's watermarks"), "{log}");
    assert!(log.contains(&ecad.display().to_string()), "{log}");
    assert!(log.contains(&home.import_base_dir_command()), "{log}");
    assert!(!home.base_dir().join("watermarks").exists());
}

#[test]
fn serve_refuses_an_enabled_key_that_no_vault_holds() {
    let mut home = Home::new();
    home.write_keys(&[&SecretKey::generate(Curve::Ed25519)]);
    let absent = SecretKey::generate(Curve::P256)
        .public_key()
        .hash()
        .to_b58check();
    home.enable(&absent);
    home.write_config();
    home.ok(&["watermark", "init"]);
    let (ok, log) = serve_until_exit(&home);
    assert!(!ok, "{log}");
    assert!(log.contains(&format!("key {absent} is enabled")), "{log}");
    assert!(log.contains("no vault holds it"), "{log}");
}

#[test]
fn serve_answers_signs_refuses_and_stops_cleanly_on_sigterm() {
    let mut home = Home::new();
    let baker = SecretKey::generate(Curve::Ed25519);
    let other = SecretKey::generate(Curve::Secp256k1);
    home.write_keys(&[&baker, &other]);
    let baker_pkh = baker.public_key().hash().to_b58check();
    let other_pkh = other.public_key().hash().to_b58check();
    home.enable(&baker_pkh);
    home.write_config();
    home.ok(&["watermark", "init"]);

    let server = home.start();
    let (status, body) = server.get("/authorized_keys");
    assert_eq!((status, body), (200, serde_json::json!({})));

    // Both keys are served; only the enabled one signs.
    let (status, body) = server.get(&format!("/keys/{baker_pkh}"));
    assert_eq!(status, 200);
    assert_eq!(body["public_key"], baker.public_key().to_b58check());
    let (status, body) = server.get(&format!("/keys/{other_pkh}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["public_key"], other.public_key().to_b58check());

    let request = attestation(1000, 0, 0xaa);
    let (status, body) = server.post(&format!("/keys/{baker_pkh}"), &hex_body(&request));
    assert_eq!(status, 200, "{body}");
    let signature = Signature::from_b58check(body["signature"].as_str().unwrap()).unwrap();
    baker
        .public_key()
        .verify(&request, &signature, SigningVersion::default())
        .unwrap();

    let (status, body) = server.post(&format!("/keys/{other_pkh}"), &hex_body(&request));
    assert_eq!(status, 403, "{body}");
    let unknown = SecretKey::generate(Curve::Ed25519).public_key().hash();
    let (status, _) = server.post(&format!("/keys/{unknown}"), &hex_body(&request));
    assert_eq!(status, 404);

    // A different payload at the same height is refused by the watermark.
    let conflicting = attestation(1000, 0, 0xbb);
    let (status, body) = server.post(&format!("/keys/{baker_pkh}"), &hex_body(&conflicting));
    assert_eq!(status, 409, "{body}");

    // The running signer holds the store: it can be read beside it (what the signer
    // committed, the attestation just signed included), not changed.
    let shown = home.ok(&["watermark", "show", "--key", &baker_pkh]);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with(MAINNET) && l.contains("attestation") && l.contains("1000")),
        "{shown}"
    );
    let out = home.run(&[
        "watermark",
        "set",
        "--chain",
        MAINNET,
        "--key",
        &baker_pkh,
        "--kind",
        "attestation",
        "--level",
        "2000",
        "--round",
        "0",
    ]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("stop the signer first"),
        "{}",
        common::stderr(&out)
    );

    let exit = server.terminate();
    assert!(exit.success(), "exit {exit}:\n{}", home.serve_log());

    // The store was released and holds the signed attestation.
    let shown = home.ok(&["watermark", "show", "--key", &baker_pkh]);
    let line = shown.lines().find(|l| l.starts_with(MAINNET)).unwrap();
    assert!(
        line.contains("attestation") && line.contains("1000"),
        "{shown}"
    );
    assert!(line.contains("recorded"), "{shown}");
}

#[test]
fn generated_keys_of_every_curve_sign_through_the_served_signer() {
    let mut home = Home::new();
    home.write_config();
    let mut keys = Vec::new();
    for kind in ["tz1", "tz2", "tz3", "tz4"] {
        let out = home.ok(&["generate", "-t", kind, "--vault", "local"]);
        keys.extend(pkhs(&out));
    }
    assert_eq!(keys.len(), 4);
    for pkh in &keys {
        home.enable(pkh);
    }
    home.write_config();
    home.ok(&["watermark", "init"]);

    let server = home.start();
    for (i, pkh) in keys.iter().enumerate() {
        let (status, body) = server.get(&format!("/keys/{pkh}"));
        assert_eq!(status, 200, "{body}");
        let public_key = PublicKey::from_b58check(body["public_key"].as_str().unwrap()).unwrap();
        assert_eq!(public_key.hash().to_b58check(), *pkh);
        let request = attestation(500 + i as i32, 0, 0x10 + i as u8);
        let (status, body) = server.post(&format!("/keys/{pkh}"), &hex_body(&request));
        assert_eq!(status, 200, "{pkh}: {body}");
        let signature = Signature::from_b58check(body["signature"].as_str().unwrap()).unwrap();
        public_key
            .verify(&request, &signature, SigningVersion::default())
            .unwrap_or_else(|e| panic!("{pkh}: signature does not verify: {e}"));
    }
    assert!(server.terminate().success(), "{}", home.serve_log());
}

#[test]
fn a_mem_store_needs_no_init_warns_and_logs_json_when_asked() {
    let mut home = Home::new();
    let key = SecretKey::generate(Curve::P256);
    home.write_keys(&[&key]);
    home.enable(&key.public_key().hash().to_b58check());
    home.watermark_driver = "mem";
    home.write_config();
    let log = std::fs::File::create(home.path("serve.log")).unwrap();
    let mut child = std::process::Command::new(common::BIN)
        .args(["serve", "--json-log", "-c"])
        .arg(home.config_path())
        .env_remove("SIGNATORY_LOG")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::http(home.api, "GET", "/authorized_keys", None).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "{}", home.serve_log());
        assert!(Instant::now() < deadline, "{}", home.serve_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let server = common::Server { home: &home, child };
    assert!(server.terminate().success(), "{}", home.serve_log());
    let log = home.serve_log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN"
                && l["message"].as_str().unwrap_or("").contains("memory only")),
        "{log}"
    );
    // The secret never reaches the log.
    assert!(!log.contains(key.to_b58check().as_str()));
}

#[test]
fn address_flags_override_the_configuration() {
    let mut home = Home::new();
    let key = SecretKey::generate(Curve::Ed25519);
    home.write_keys(&[&key]);
    home.enable(&key.public_key().hash().to_b58check());
    home.write_config();
    home.ok(&["watermark", "init"]);
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    let log = std::fs::File::create(home.path("serve.log")).unwrap();
    let child = std::process::Command::new(common::BIN)
        .args(["serve", "--address", &api.to_string(), "-c"])
        .arg(home.config_path())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let server = common::Server { home: &home, child };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = common::http(api, "GET", "/authorized_keys", None) {
            break;
        }
        assert!(Instant::now() < deadline, "{}", home.serve_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(common::http(home.api, "GET", "/authorized_keys", None).is_err());
    assert!(server.terminate().success());
}
