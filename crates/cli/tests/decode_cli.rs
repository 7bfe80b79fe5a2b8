//! `signatory decode` as an operator runs it: JSON on stdout for a good request, the
//! decoder's message on stderr and a failure status for a bad one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_signatory");

/// The attestation of testdata/public-vectors.json.
const ATTESTATION: &str = "13ed9d217cfc81eee810737b04018acef4db74d056b79edc43e6be46cae7e4c217c22a82f01500120000518d0000000003e7ea1f67dbb0bb6cfa372cb092cd9cf786b4f1b5e5139da95b915fb95e698d";

#[test]
fn a_good_request_prints_json_and_succeeds() {
    let out = Command::new(BIN)
        .args(["decode", ATTESTATION])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "attestation");
    assert_eq!(json["chain_id"], "NetXxkAx4woPLyu");
    assert_eq!(json["slot"], 18);
    assert_eq!(json["level"], 20877);
    assert_eq!(json["round"], 0);
    assert_eq!(
        json["watermark"],
        serde_json::json!({"kind": "attestation", "level": 20877, "round": 0})
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn a_generic_request_lists_operation_and_policy_kinds() {
    // branch, then a ballot (tag 6) by tz1 (00 ‖ hash), period 5, a proposal, vote yay.
    let hex = format!(
        "03{}0600{}00000005{}00",
        "11".repeat(32),
        "22".repeat(20),
        "33".repeat(32)
    );
    let out = Command::new(BIN)
        .args(["decode", "--compact", &hex])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["operation_kinds"], serde_json::json!(["ballot"]));
    assert_eq!(json["policy_kinds"], serde_json::json!(["ballot:yay"]));
    assert_eq!(
        out.stdout.iter().filter(|b| **b == b'\n').count(),
        1,
        "compact is one line"
    );
}

#[test]
fn hex_can_come_from_stdin_quoted_as_the_http_body() {
    let mut child = Command::new(BIN)
        .args(["decode", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("\"{ATTESTATION}\"\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["level"], 20877);
}

#[test]
fn a_malformed_request_fails_with_the_decoder_message() {
    // The attestation without its last byte: the payload hash is cut.
    let cut = &ATTESTATION[..ATTESTATION.len() - 2];
    let out = Command::new(BIN).args(["decode", cut]).output().unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("truncated at offset 48: expected 32-byte block payload hash"),
        "{stderr}"
    );

    let out = Command::new(BIN).args(["decode", "1363"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated at offset 1"));

    let out = Command::new(BIN)
        .args(["decode", "0xnothex"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid hex"));
}
