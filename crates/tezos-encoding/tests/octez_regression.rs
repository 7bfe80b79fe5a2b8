//! Octez's own encoding regression vectors for protocols 023 and 024: the binary of every
//! sample operation decodes, with the kinds and field values of Octez's JSON for it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod octez_json;

use octez_json::{compare, scalar};
use serde_json::Value;
use tezos_encoding::SigningRequest;

/// Fields whose value must be present and equal wherever Octez's JSON has them.
const MUST_MATCH: [&str; 26] = [
    "kind",
    "source",
    "fee",
    "counter",
    "gas_limit",
    "storage_limit",
    "amount",
    "destination",
    "public_key",
    "pk",
    "proof",
    "delegate",
    "level",
    "round",
    "slot",
    "block_payload_hash",
    "dal_attestation",
    "period",
    "ballot",
    "proposal",
    "proposals",
    "nonce",
    "pkh",
    "secret",
    "balance",
    "consensus_slot",
];

#[test]
fn octez_regression_vectors_decode_to_octez_json() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/octez_regression.json"
    );
    let fixtures: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = fixtures["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 56);
    let mut bad = Vec::new();
    let mut total = 0;
    for case in cases {
        let name = format!(
            "{}/{}",
            case["protocol"].as_str().unwrap(),
            case["name"].as_str().unwrap()
        );
        let bytes = hex::decode(case["hex"].as_str().unwrap()).unwrap();
        let protocol = tezos_encoding::Protocol::parse(case["protocol"].as_str().unwrap()).unwrap();
        let request =
            SigningRequest::decode(&bytes, protocol).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = serde_json::to_value(&request).unwrap();
        let octez = &case["octez_json"];
        let (octez_contents, our_contents) = match &request {
            SigningRequest::Generic(_) => {
                assert_eq!(ours["branch"], octez["branch"], "{name}");
                let kinds: Vec<&str> = octez["contents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["kind"].as_str().unwrap())
                    .collect();
                assert_eq!(request.operation_kinds(), kinds, "{name}");
                (octez["contents"].clone(), ours["contents"].clone())
            }
            // BLS-mode samples: one content, signed without its slot.
            _ => {
                assert_eq!(ours["branch"], octez["branch"], "{name}");
                let content = &octez["contents"][0];
                let mut ours = ours.clone();
                ours["kind"] = content["kind"].clone();
                (
                    Value::Array(vec![content.clone()]),
                    Value::Array(vec![ours]),
                )
            }
        };
        for (i, (o, u)) in octez_contents
            .as_array()
            .unwrap()
            .iter()
            .zip(our_contents.as_array().unwrap())
            .enumerate()
        {
            for key in MUST_MATCH {
                if let (Some(want), Some(_)) = (o.get(key), scalar(&o[key])) {
                    if key == "slot" && u.get("slot").is_none() && name.contains("bls_mode") {
                        continue; // BLS mode signs no slot
                    }
                    let got = u.get(key).and_then(scalar);
                    if got.as_deref() != scalar(want).as_deref() {
                        bad.push(format!("{name}[{i}].{key}: octez {want}, ours {got:?}"));
                    }
                }
            }
            total += compare(o, u, &format!("{name}[{i}]"), &mut bad);
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(total > 700, "only {total} fields compared");
    eprintln!("{total} fields compared with Octez");
}
