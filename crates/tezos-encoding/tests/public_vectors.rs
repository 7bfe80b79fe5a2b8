//! The three request vectors of `testdata/public-vectors.json` (from ECAD Signatory's
//! request tests) decode to the documented chain id, level, round, slot and payload round.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;
use tezos_encoding::{RequestKind, SigningRequest, WatermarkKind};

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/public-vectors.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["requests"].as_array().unwrap().clone()
}

fn int(v: &Value, key: &str) -> i32 {
    i32::try_from(v[key].as_i64().unwrap_or_else(|| panic!("{key} missing"))).unwrap()
}

#[test]
fn every_public_request_vector_decodes_to_its_documented_fields() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 3);
    for v in vectors {
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let req = SigningRequest::decode(&bytes, tezos_encoding::Protocol::DEFAULT)
            .unwrap_or_else(|e| panic!("{v}: {e}"));
        let kind = v["kind"].as_str().unwrap();
        assert_eq!(req.kind().as_str(), kind);
        assert_eq!(
            req.chain_id().unwrap().to_string(),
            v["chain_id"].as_str().unwrap()
        );
        assert_eq!(
            req.level_round(),
            Some((int(&v, "level"), int(&v, "round")))
        );
        match (&req, kind) {
            (SigningRequest::Block(b), "block") => {
                assert_eq!(b.contents.payload_round, int(&v, "payload_round"));
                assert_eq!(i32::from(b.shell.proto), int(&v, "proto"));
                assert_eq!(req.watermark_kind(), Some(WatermarkKind::Block));
            }
            (SigningRequest::Preattestation(op), "preattestation") => {
                assert_eq!(op.content.slot.map(i32::from), Some(int(&v, "slot")));
                assert_eq!(req.watermark_kind(), Some(WatermarkKind::Preattestation));
            }
            (SigningRequest::Attestation(op), "attestation") => {
                assert_eq!(op.content.slot.map(i32::from), Some(int(&v, "slot")));
                assert_eq!(req.kind(), RequestKind::Attestation);
                assert_eq!(req.watermark_kind(), Some(WatermarkKind::Attestation));
            }
            other => panic!("unexpected {other:?}"),
        }
        // The JSON view names the same things.
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(json["kind"], kind);
        assert_eq!(json["chain_id"], v["chain_id"]);
        assert_eq!(json["level"], v["level"]);
        assert_eq!(json["round"], v["round"]);
    }
}
