//! Decoding speed of the requests a baker sends most: a block, an attestation, and a
//! five-operation batch (forged by Taquito).
//!
//! cargo bench -p tezos-encoding --bench decode -- --warm-up-time 1 --measurement-time 3
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::Value;
use tezos_encoding::SigningRequest;

fn load(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn public_vector(kind: &str) -> Vec<u8> {
    let json = load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/public-vectors.json"
    ));
    let hex = json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == kind)
        .unwrap()["hex"]
        .as_str()
        .unwrap()
        .to_owned();
    hex::decode(hex).unwrap()
}

/// `03 ‖ branch ‖` five manager operations taken from single-operation Taquito fixtures.
fn five_operation_batch() -> Vec<u8> {
    let json = load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/taquito_forged.json"
    ));
    let cases = json["cases"].as_array().unwrap();
    let pick = [
        "reveal ed25519",
        "transaction without parameters",
        "transaction to a contract, custom entrypoint",
        "stake to self",
        "delegation",
    ];
    let mut out = Vec::new();
    for name in pick {
        let case = cases.iter().find(|c| c["name"] == name).unwrap();
        let bytes = hex::decode(case["hex"].as_str().unwrap()).unwrap();
        if out.is_empty() {
            out.extend_from_slice(&bytes[..33]);
        }
        out.extend_from_slice(&bytes[33..]);
    }
    out
}

fn bench(c: &mut Criterion) {
    let block = public_vector("block");
    let attestation = public_vector("attestation");
    let batch = five_operation_batch();
    assert_eq!(
        SigningRequest::decode(&batch, tezos_encoding::Protocol::DEFAULT)
            .unwrap()
            .operation_kinds()
            .len(),
        5
    );
    c.bench_function("decode block (0x11)", |b| {
        b.iter(|| {
            SigningRequest::decode(black_box(&block), tezos_encoding::Protocol::DEFAULT).unwrap()
        })
    });
    c.bench_function("decode attestation (0x13)", |b| {
        b.iter(|| {
            SigningRequest::decode(black_box(&attestation), tezos_encoding::Protocol::DEFAULT)
                .unwrap()
        })
    });
    c.bench_function("decode generic, 5 manager operations (0x03)", |b| {
        b.iter(|| {
            SigningRequest::decode(black_box(&batch), tezos_encoding::Protocol::DEFAULT).unwrap()
        })
    });
    c.bench_function("decode and kinds, 5 manager operations (0x03)", |b| {
        b.iter(|| {
            let req = SigningRequest::decode(black_box(&batch), tezos_encoding::Protocol::DEFAULT)
                .unwrap();
            black_box(req.policy_kinds())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
