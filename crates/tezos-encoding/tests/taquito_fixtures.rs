//! Operations forged by an independent forger (Taquito's LocalForger, see
//! tests/interop/forging) decode to the kinds and fields that were forged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;
use tezos_encoding::SigningRequest;

#[test]
fn taquito_forged_operations_decode_to_what_was_forged() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/taquito_forged.json"
    );
    let fixtures: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = fixtures["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut kinds_seen = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let bytes = hex::decode(case["hex"].as_str().unwrap()).unwrap();
        let request = SigningRequest::decode(&bytes, tezos_encoding::Protocol::DEFAULT)
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let want_kinds: Vec<&str> = case["operation_kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(request.operation_kinds(), want_kinds, "{name}");
        kinds_seen.extend(want_kinds.iter().map(|k| (*k).to_owned()));
        let want_policy: Vec<String> =
            serde_json::from_value(case["policy_kinds"].clone()).unwrap();
        assert_eq!(request.policy_kinds(), want_policy, "{name}");

        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["kind"], "generic", "{name}");
        assert_eq!(json["branch"], case["branch"], "{name}");
        let contents = json["contents"].as_array().unwrap();
        let expected = case["contents"].as_array().unwrap();
        assert_eq!(contents.len(), expected.len(), "{name}");
        for (i, (got, want)) in contents.iter().zip(expected).enumerate() {
            for (field, value) in want.as_object().unwrap() {
                let actual = got.get(field).unwrap_or(&Value::Null);
                assert_eq!(actual, value, "{name}[{i}].{field}");
            }
        }
    }
    // One of every kind Taquito forges.
    assert_eq!(kinds_seen.len(), 22, "{kinds_seen:?}");
}
