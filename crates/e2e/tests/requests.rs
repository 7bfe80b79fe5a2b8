//! The hand-built requests the other tests send are what they claim to be: `signatory
//! decode` (the signer's own decoder, run as the binary) reads each with the kind, level,
//! round and operation kinds the builder meant. A disagreement is a bug on one side, and
//! the policy tests would otherwise pass or fail for the wrong reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;
use signatory_e2e::binary::signatory_bin;
use signatory_e2e::requests::{entrypoint, generic, Block, Consensus, Op, GHOSTNET, MAINNET};
use std::process::Command;
use tezos_crypto::{Curve, SecretKey};

fn decode(bytes: &[u8]) -> Value {
    let out = Command::new(signatory_bin().unwrap())
        .args(["decode", &hex::encode(bytes)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "signatory decode refused {}: {}",
        hex::encode(bytes),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn watermark(v: &Value) -> (String, i64, i64) {
    let w = &v["watermark"];
    (
        w["kind"].as_str().unwrap_or_default().to_string(),
        w["level"].as_i64().unwrap(),
        w["round"].as_i64().unwrap(),
    )
}

#[test]
fn chain_ids_are_the_networks_they_are_named_after() {
    assert_eq!(MAINNET.to_b58check(), "NetXdQprcVkpaWU");
    assert_eq!(GHOSTNET.to_b58check(), "NetXnHfVqm9iesp");
}

#[test]
fn consensus_requests_decode_as_built() {
    let c = Consensus::new(1234, 3, 9).on(GHOSTNET);
    for (bytes, kind, watermark_kind) in [
        (c.preattestation(), "preattestation", "preattestation"),
        (c.attestation(), "attestation", "attestation"),
        (
            c.attestation_with_dal(5),
            "attestation_with_dal",
            "attestation",
        ),
        (c.bls_attestation(), "attestation", "attestation"),
    ] {
        let v = decode(&bytes);
        assert_eq!(v["kind"], kind, "{v}");
        assert_eq!(v["chain_id"], "NetXnHfVqm9iesp", "{v}");
        assert_eq!(watermark(&v), (watermark_kind.to_string(), 1234, 3), "{v}");
    }
}

#[test]
fn blocks_decode_with_the_fitness_round() {
    let mut b = Block::new(77, 2, 1);
    b.payload_round = 1;
    let v = decode(&b.bytes());
    assert_eq!(v["kind"], "block", "{v}");
    assert_eq!(v["chain_id"], "NetXdQprcVkpaWU", "{v}");
    assert_eq!(watermark(&v), ("block".to_string(), 77, 2), "{v}");
}

/// The policy kinds `signatory decode` reports, wherever it puts them.
fn policy_kinds(v: &Value) -> Vec<String> {
    let list = v
        .get("policy_kinds")
        .or_else(|| v.get("operation_kinds"))
        .unwrap_or_else(|| panic!("no kind list in {v}"));
    list.as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn generic_operations_decode_with_their_policy_kinds() {
    let me = SecretKey::generate(Curve::Ed25519);
    let pkh = me.public_key().hash();
    let other = SecretKey::generate(Curve::P256).public_key().hash();
    let cases: Vec<(Vec<Op>, Vec<&str>)> = vec![
        (
            vec![Op::Transfer {
                to: other,
                amount: 5,
            }],
            vec!["transaction"],
        ),
        (
            vec![
                Op::Reveal {
                    public_key: me.public_key().to_tagged_bytes(),
                },
                Op::Transfer {
                    to: other,
                    amount: 5,
                },
            ],
            vec!["reveal", "transaction"],
        ),
        (
            vec![
                Op::Delegation {
                    delegate: Some(other),
                },
                Op::Delegation { delegate: None },
            ],
            vec!["delegation", "delegation"],
        ),
        (vec![Op::Origination], vec!["origination"]),
        // A ballot is never batched.
        (vec![Op::Ballot { vote: 0 }], vec!["ballot:yay"]),
        (vec![Op::Ballot { vote: 1 }], vec!["ballot:nay"]),
        (vec![Op::Ballot { vote: 2 }], vec!["ballot:pass"]),
        (
            vec![
                Op::Call {
                    to: pkh,
                    entrypoint: entrypoint::STAKE,
                },
                Op::Call {
                    to: pkh,
                    entrypoint: entrypoint::UNSTAKE,
                },
                Op::Call {
                    to: pkh,
                    entrypoint: entrypoint::FINALIZE_UNSTAKE,
                },
                Op::Call {
                    to: pkh,
                    entrypoint: entrypoint::SET_DELEGATE_PARAMETERS,
                },
                Op::Call {
                    to: pkh,
                    entrypoint: entrypoint::DEFAULT,
                },
                Op::Call {
                    to: other,
                    entrypoint: entrypoint::STAKE,
                },
            ],
            vec![
                "stake",
                "unstake",
                "finalize_unstake",
                "set_delegate_parameters",
                "transaction",
                "transaction",
            ],
        ),
        (vec![Op::FailingNoop], vec!["failing_noop"]),
    ];
    for (ops, expected) in cases {
        let v = decode(&generic(&pkh, &ops));
        assert_eq!(v["kind"], "generic", "{v}");
        assert_eq!(policy_kinds(&v), expected, "{v}");
    }
}
