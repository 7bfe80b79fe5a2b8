//! Properties: no input makes the decoder panic, and a valid request cut short is refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use proptest::prelude::*;
use serde_json::Value;
use tezos_encoding::SigningRequest;

/// Everything a caller may do with a decoded request must not panic either.
fn exercise(bytes: &[u8]) {
    if let Ok(req) = SigningRequest::decode(bytes, tezos_encoding::Protocol::DEFAULT) {
        let _ = serde_json::to_string(&req).unwrap();
        let _ = (req.kind().as_str(), req.chain_id(), req.level_round());
        let _ = (req.watermark_kind(), req.payload_hash());
        let _ = (req.operation_kinds(), req.policy_kinds());
    }
}

/// Valid requests: hand-built ones and the single-operation Taquito fixtures.
fn valid_requests() -> &'static [Vec<u8>] {
    static REQUESTS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    REQUESTS.get_or_init(load_valid_requests)
}

fn load_valid_requests() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = common::samples().into_iter().map(|b| b.0).collect();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/taquito_forged.json"
    );
    let fixtures: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in fixtures["cases"].as_array().unwrap() {
        if case["operation_kinds"].as_array().unwrap().len() == 1 {
            out.push(hex::decode(case["hex"].as_str().unwrap()).unwrap());
        }
    }
    // Octez's 025 regression vectors (the default protocol): all single operations.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/octez/U025-operation.unsigned.out"
    );
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let (_, hex) = line.split_once(": ").unwrap();
        out.push(hex::decode(format!("03{hex}")).unwrap());
    }
    out
}

#[test]
fn samples_are_valid() {
    for bytes in valid_requests() {
        SigningRequest::decode(bytes, tezos_encoding::Protocol::DEFAULT)
            .unwrap_or_else(|e| panic!("{e}: {}", hex::encode(bytes)));
    }
}

#[test]
fn every_strict_prefix_of_a_valid_request_is_refused() {
    let requests = valid_requests();
    assert!(requests.len() > 60);
    for bytes in requests {
        for cut in 0..bytes.len() {
            assert!(
                SigningRequest::decode(&bytes[..cut], tezos_encoding::Protocol::DEFAULT).is_err(),
                "prefix of {cut} bytes of {} decoded",
                hex::encode(bytes)
            );
        }
    }
}

#[test]
fn a_batch_cut_at_an_operation_boundary_is_a_shorter_batch() {
    // Generic operations carry no count: this is the format, and why the signer must sign
    // exactly the bytes it decoded.
    let one = common::B::generic().manager(110, 0x11).flag(false);
    let cut = one.len();
    let two = one.manager(110, 0x12).flag(false);
    assert_eq!(
        SigningRequest::decode(two.bytes(), tezos_encoding::Protocol::DEFAULT)
            .unwrap()
            .operation_kinds()
            .len(),
        2
    );
    assert_eq!(
        SigningRequest::decode(&two.bytes()[..cut], tezos_encoding::Protocol::DEFAULT)
            .unwrap()
            .operation_kinds()
            .len(),
        1
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(&bytes);
    }

    #[test]
    fn arbitrary_bodies_after_each_magic_never_panic(
        magic in prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x05, 0x11, 0x12, 0x13]),
        tag in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        // For generic requests put the operation tag right after the branch, so every
        // operation decoder is reached.
        let mut bytes = vec![magic];
        if magic == 0x03 {
            bytes.extend_from_slice(&[0x11; 32]);
            bytes.push(tag);
        }
        bytes.extend_from_slice(&body);
        exercise(&bytes);
    }

    #[test]
    fn mutated_valid_requests_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let requests = valid_requests();
        let mut bytes = pick.get(requests).clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        exercise(&bytes);
        let end = cut.index(bytes.len() + 1);
        exercise(&bytes[..end]);
    }
}
