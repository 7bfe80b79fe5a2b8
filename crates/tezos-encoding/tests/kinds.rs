//! Every operation kind of protocols 023/024 and every request type, from hand-built
//! bytes: the decoder must find each field where the Octez encoding puts it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{block_body, block_request, consensus_request, inlined_attestation, B, UNIT};
use serde_json::{json, Value};
use tezos_encoding::{
    ConsensusKind, DecodeErrorKind, OperationContent, RequestKind, SigningRequest, WatermarkKind,
};

fn decode(b: &B) -> SigningRequest {
    SigningRequest::decode(b.bytes(), tezos_encoding::Protocol::DEFAULT)
        .unwrap_or_else(|e| panic!("{e}\n{}", hex::encode(b.bytes())))
}

fn decode_err(b: &B) -> tezos_encoding::DecodeError {
    match SigningRequest::decode(b.bytes(), tezos_encoding::Protocol::DEFAULT) {
        Ok(r) => panic!("decoded {r:?}"),
        Err(e) => e,
    }
}

/// Decodes a one-operation generic request and returns the operation as JSON.
fn single(b: &B, kind: &str) -> Value {
    let req = decode(b);
    assert_eq!(req.kind(), RequestKind::Generic);
    assert_eq!(req.operation_kinds(), vec![kind]);
    assert_eq!(req.chain_id(), None);
    assert_eq!(req.level_round(), None);
    assert_eq!(req.watermark_kind(), None);
    let json = serde_json::to_value(&req).unwrap();
    let content = json["contents"][0].clone();
    assert_eq!(content["kind"], kind);
    content
}

const TZ1_11: &str = "tz1MCGdC9qYbSjtWEbup9i17WkohvzwCm2HV";

fn tz1(fill: u8) -> String {
    tezos_crypto::PublicKeyHash::new(tezos_crypto::Curve::Ed25519, [fill; 20]).to_string()
}

#[test]
fn tz1_helper_matches_a_known_address() {
    assert_eq!(tz1(0x11), TZ1_11);
}

// ---------------------------------------------------------------- anonymous and voting

#[test]
fn seed_nonce_revelation() {
    let op = single(
        &B::generic().u8(1).i32(4096).fill(0xab, 32),
        "seed_nonce_revelation",
    );
    assert_eq!(op["level"], 4096);
    assert_eq!(op["nonce"], "ab".repeat(32));
}

#[test]
fn double_consensus_operation_evidence_with_inlined_operations() {
    let aggregate = B::new()
        .hash32(0x41)
        .u8(31)
        .i32(100)
        .i32(1)
        .hash32(0x42)
        .dynamic(B::new().u16(5).flag(true).z(97).u16(9).flag(false))
        .fill(0x44, 96);
    let b = B::generic()
        .u8(2)
        .u16(3)
        .dynamic(inlined_attestation(100, 1, true))
        .dynamic(aggregate);
    let op = single(&b, "double_consensus_operation_evidence");
    assert_eq!(op["slot"], 3);
    assert_eq!(op["op1"]["operations"]["kind"], "attestation");
    assert_eq!(op["op1"]["operations"]["level"], 100);
    assert!(op["op1"]["signature"].as_str().unwrap().starts_with("sig"));
    assert_eq!(op["op2"]["operations"]["kind"], "attestations_aggregate");
    assert_eq!(
        op["op2"]["operations"]["committee"],
        // 97 = bits 0, 5, 6: lag 0, one last chunk, slot 0.
        json!([
            {"slot": 5, "dal_attestation": "97", "dal_attested": [{"lag_index": 0, "slots": [0]}]},
            {"slot": 9}
        ])
    );
    assert!(op["op2"]["signature"]
        .as_str()
        .unwrap()
        .starts_with("BLsig"));

    // Unsigned inlined operations are allowed (the signature is optional).
    let b = B::generic()
        .u8(2)
        .u16(3)
        .dynamic(inlined_attestation(100, 1, false))
        .dynamic(inlined_attestation(100, 1, false));
    let op = single(&b, "double_consensus_operation_evidence");
    assert_eq!(op["op1"]["signature"], Value::Null);

    // A signature of another size is refused.
    let bad = B::generic()
        .u8(2)
        .u16(3)
        .dynamic(inlined_attestation(100, 1, false).fill(0, 10))
        .dynamic(inlined_attestation(100, 1, false));
    assert!(matches!(
        decode_err(&bad).kind(),
        DecodeErrorKind::Invalid {
            what: "signature",
            ..
        }
    ));
}

#[test]
fn double_baking_evidence_with_signed_headers() {
    let b = B::generic()
        .u8(3)
        .dynamic(block_body(500, 2, 1).fill(0x51, 64))
        .dynamic(block_body(500, 2, 0).fill(0x52, 96));
    let op = single(&b, "double_baking_evidence");
    assert_eq!(op["bh1"]["level"], 500);
    assert_eq!(op["bh1"]["round"], 2);
    assert_eq!(op["bh1"]["payload_round"], 1);
    assert!(op["bh2"]["signature"]
        .as_str()
        .unwrap()
        .starts_with("BLsig"));
}

#[test]
fn activate_account() {
    let op = single(
        &B::generic().u8(4).fill(0x11, 20).fill(0x99, 20),
        "activate_account",
    );
    assert_eq!(op["pkh"], TZ1_11);
    assert_eq!(op["secret"], "99".repeat(20));
}

#[test]
fn proposals_and_their_limit() {
    let list = (0..3).fold(B::new(), |b, i| b.hash32(i));
    let op = single(
        &B::generic().u8(5).pkh(0, 0x11).i32(42).dynamic(list),
        "proposals",
    );
    assert_eq!(op["period"], 42);
    assert_eq!(op["proposals"].as_array().unwrap().len(), 3);
    assert!(op["proposals"][0].as_str().unwrap().starts_with('P'));

    let many = (0..21).fold(B::new(), |b, i| b.hash32(i));
    let err = decode_err(&B::generic().u8(5).pkh(0, 0x11).i32(42).dynamic(many));
    assert_eq!(
        err.kind(),
        &DecodeErrorKind::TooLong {
            what: "proposals",
            len: 21,
            max: 20
        }
    );
}

#[test]
fn ballot_votes_and_policy_kinds() {
    for (byte, vote) in [(0u8, "yay"), (1, "nay"), (2, "pass")] {
        let b = B::generic()
            .u8(6)
            .pkh(1, 0x11)
            .i32(-3)
            .hash32(0x77)
            .u8(byte);
        let op = single(&b, "ballot");
        assert_eq!(op["ballot"], vote);
        assert_eq!(op["period"], -3);
        assert!(op["source"].as_str().unwrap().starts_with("tz2"));
        assert_eq!(decode(&b).policy_kinds(), vec![format!("ballot:{vote}")]);
    }
    let bad = B::generic().u8(6).pkh(1, 0x11).i32(1).hash32(0x77).u8(3);
    assert_eq!(
        decode_err(&bad).kind(),
        &DecodeErrorKind::UnknownTag {
            what: "ballot",
            tag: 3
        }
    );
}

#[test]
fn vdf_revelation() {
    let op = single(
        &B::generic().u8(8).fill(0x01, 100).fill(0x02, 100),
        "vdf_revelation",
    );
    assert_eq!(op["solution"][0], "01".repeat(100));
    assert_eq!(op["solution"][1], "02".repeat(100));
}

#[test]
fn drain_delegate() {
    let op = single(
        &B::generic().u8(9).pkh(0, 0x11).pkh(2, 0x12).pkh(3, 0x13),
        "drain_delegate",
    );
    assert_eq!(op["consensus_key"], TZ1_11);
    assert!(op["delegate"].as_str().unwrap().starts_with("tz3"));
    assert!(op["destination"].as_str().unwrap().starts_with("tz4"));
}

#[test]
fn failing_noop() {
    let op = single(&B::generic().u8(17).lbytes(b"hello"), "failing_noop");
    assert_eq!(op["arbitrary"], hex::encode("hello"));
}

#[test]
fn consensus_operations_inside_a_generic_request() {
    let body = |b: B| b.i32(77).i32(2).hash32(0x61);
    let cases: [(B, &str); 5] = [
        (body(B::generic().u8(20).u16(4)), "preattestation"),
        (body(B::generic().u8(21).u16(4)), "attestation"),
        (
            body(B::generic().u8(23).u16(4)).n(5),
            "attestation_with_dal",
        ),
        (
            body(B::generic().u8(30)).dynamic(B::new().u16(1).u16(2)),
            "preattestations_aggregate",
        ),
        (
            body(B::generic().u8(31)).dynamic(B::new().u16(1).flag(false)),
            "attestations_aggregate",
        ),
    ];
    for (b, kind) in cases {
        let op = single(&b, kind);
        assert_eq!(op["level"], 77, "{kind}");
        assert_eq!(op["round"], 2, "{kind}");
    }
}

#[test]
fn dal_entrapment_evidence() {
    let scalar = [0x05u8; 32];
    let b = B::generic()
        .u8(24)
        .dynamic(inlined_attestation(300, 0, true))
        .u16(12)
        .u8(7)
        .flag(true)
        .u8(2)
        .i32(3)
        .dynamic(B::new().raw(&scalar).raw(&scalar))
        .fill(0x66, 48);
    let op = single(&b, "dal_entrapment_evidence");
    assert_eq!(op["consensus_slot"], 12);
    assert_eq!(op["lag_index"], 2);
    assert_eq!(op["slot_index"], 7);
    assert_eq!(op["shard_with_proof"]["shard"][0], 3);
    assert_eq!(
        op["shard_with_proof"]["shard"][1].as_array().unwrap().len(),
        2
    );
    assert!(op["shard_with_proof"]["proof"]
        .as_str()
        .unwrap()
        .starts_with("sh"));
    assert_eq!(op["attestation"]["operations"]["level"], 300);

    // A scalar not below the BLS12-381 group order is refused, as Octez refuses it.
    let b = B::generic()
        .u8(24)
        .dynamic(inlined_attestation(300, 0, true))
        .u16(12)
        .u8(7)
        .flag(false)
        .i32(3)
        .dynamic(B::new().fill(0xff, 32))
        .fill(0x66, 48);
    assert!(matches!(
        decode_err(&b).kind(),
        DecodeErrorKind::Invalid { what: "scalar", .. }
    ));
}

// ---------------------------------------------------------------- manager operations

#[test]
fn manager_header_fields() {
    let b = B::generic()
        .u8(110)
        .pkh(0, 0x11)
        .n(u128::from(u64::MAX >> 1))
        .n((1 << 70) - 1)
        .n(0)
        .n(1 << 63)
        .flag(false);
    let op = single(&b, "delegation");
    assert_eq!(op["source"], TZ1_11);
    assert_eq!(op["fee"], "9223372036854775807");
    assert_eq!(op["counter"], "1180591620717411303423");
    assert_eq!(op["gas_limit"], "0");
    assert_eq!(op["storage_limit"], "9223372036854775808");
    assert_eq!(op["delegate"], Value::Null);
}

#[test]
fn reveal_for_each_curve_and_with_a_bls_proof() {
    for (tag, prefix) in [(0u8, "edpk"), (1, "sppk"), (2, "p2pk"), (3, "BLpk")] {
        let b = B::generic().manager(107, 0x11).pk(tag, 0x02).flag(false);
        let op = single(&b, "reveal");
        assert!(op["public_key"].as_str().unwrap().starts_with(prefix));
        assert_eq!(op["proof"], Value::Null);
    }
    let b = B::generic()
        .manager(107, 0x11)
        .pk(3, 0x02)
        .flag(true)
        .dynamic(B::new().fill(0x09, 96));
    let op = single(&b, "reveal");
    assert!(op["proof"].as_str().unwrap().starts_with("BLsig"));

    // The proof must be exactly 96 bytes.
    let b = B::generic()
        .manager(107, 0x11)
        .pk(3, 0x02)
        .flag(true)
        .dynamic(B::new().fill(0x09, 97));
    assert!(matches!(
        decode_err(&b).kind(),
        DecodeErrorKind::TrailingBytes { .. }
    ));
    // Tag 4 is ML-DSA-44 from 025 on; 5 is no key.
    let b = B::generic().manager(107, 0x11).pk(5, 0x02).flag(false);
    assert_eq!(
        decode_err(&b).kind(),
        &DecodeErrorKind::UnknownTag {
            what: "public key",
            tag: 5
        }
    );
}

#[test]
fn transaction_entrypoints_are_normalised() {
    let names = [
        "default",
        "root",
        "do",
        "set_delegate",
        "remove_delegate",
        "deposit",
        "stake",
        "unstake",
        "finalize_unstake",
        "set_delegate_parameters",
    ];
    for (tag, name) in names.iter().enumerate() {
        let b = B::generic()
            .manager(108, 0x11)
            .n(5)
            .originated(0x33)
            .flag(true)
            .u8(tag as u8)
            .lbytes(&UNIT);
        let op = single(&b, "transaction");
        assert_eq!(op["entrypoint"], *name);
        assert_eq!(op["parameters"], "030b");
        assert!(op["destination"].as_str().unwrap().starts_with("KT1"));
    }
    // A named entrypoint spelled like a built-in one is that built-in one, and the empty
    // name is `default`, exactly as the protocol reads them.
    for (name, expected) in [("stake", "stake"), ("", "default"), ("mint", "mint")] {
        let b = B::generic()
            .manager(108, 0x11)
            .n(5)
            .implicit(0, 0x11)
            .flag(true)
            .u8(0xff)
            .u8(name.len() as u8)
            .raw(name.as_bytes())
            .lbytes(&UNIT);
        let op = single(&b, "transaction");
        assert_eq!(op["entrypoint"], expected);
    }
    let long = "a".repeat(32);
    let b = B::generic()
        .manager(108, 0x11)
        .n(5)
        .implicit(0, 0x11)
        .flag(true)
        .u8(0xff)
        .u8(32)
        .raw(long.as_bytes())
        .lbytes(&UNIT);
    assert!(matches!(
        decode_err(&b).kind(),
        DecodeErrorKind::TooLong {
            what: "entrypoint name",
            ..
        }
    ));
    let b = B::generic()
        .manager(108, 0x11)
        .n(5)
        .implicit(0, 0x11)
        .flag(true)
        .u8(10)
        .lbytes(&UNIT);
    assert_eq!(
        decode_err(&b).kind(),
        &DecodeErrorKind::UnknownTag {
            what: "entrypoint",
            tag: 10
        }
    );
}

#[test]
fn staking_pseudo_kinds_need_a_transaction_to_self() {
    let tx = |dest_fill: u8, entrypoint_tag: u8| {
        B::generic()
            .manager(108, 0x11)
            .n(1)
            .implicit(0, dest_fill)
            .flag(true)
            .u8(entrypoint_tag)
            .lbytes(&UNIT)
    };
    for (tag, pseudo) in [
        (6u8, "stake"),
        (7, "unstake"),
        (8, "finalize_unstake"),
        (9, "set_delegate_parameters"),
    ] {
        assert_eq!(decode(&tx(0x11, tag)).policy_kinds(), vec![pseudo]);
        assert_eq!(
            decode(&tx(0x11, tag)).operation_kinds(),
            vec!["transaction"]
        );
        // To someone else it is an ordinary transaction (the protocol would fail it).
        assert_eq!(decode(&tx(0x12, tag)).policy_kinds(), vec!["transaction"]);
    }
    // Same bytes for the destination but another curve: not the source.
    let b = B::generic()
        .manager(108, 0x11)
        .n(1)
        .implicit(1, 0x11)
        .flag(true)
        .u8(6)
        .lbytes(&UNIT);
    assert_eq!(decode(&b).policy_kinds(), vec!["transaction"]);
    // A named "stake" to self is stake, whatever the encoding.
    let b = B::generic()
        .manager(108, 0x11)
        .n(1)
        .implicit(0, 0x11)
        .flag(true)
        .u8(0xff)
        .u8(5)
        .raw(b"stake")
        .lbytes(&UNIT);
    assert_eq!(decode(&b).policy_kinds(), vec!["stake"]);
    // Without parameters: a plain transfer to self.
    let b = B::generic()
        .manager(108, 0x11)
        .n(1)
        .implicit(0, 0x11)
        .flag(false);
    assert_eq!(decode(&b).policy_kinds(), vec!["transaction"]);
}

#[test]
fn origination_delegation_constant_and_deposits_limit() {
    let b = B::generic()
        .manager(109, 0x11)
        .n(42)
        .flag(true)
        .pkh(2, 0x12)
        .lbytes(&[0x02, 0, 0, 0, 0])
        .lbytes(&UNIT);
    let op = single(&b, "origination");
    assert_eq!(op["balance"], "42");
    assert!(op["delegate"].as_str().unwrap().starts_with("tz3"));
    assert_eq!(op["code"], "0200000000");
    assert_eq!(op["storage"], "030b");

    let op = single(
        &B::generic().manager(110, 0x11).flag(true).pkh(3, 0x12),
        "delegation",
    );
    assert!(op["delegate"].as_str().unwrap().starts_with("tz4"));

    let op = single(
        &B::generic().manager(111, 0x11).lbytes(&UNIT),
        "register_global_constant",
    );
    assert_eq!(op["value"], "030b");

    let op = single(
        &B::generic().manager(112, 0x11).flag(true).n(123),
        "set_deposits_limit",
    );
    assert_eq!(op["limit"], "123");
    let op = single(
        &B::generic().manager(112, 0x11).flag(false),
        "set_deposits_limit",
    );
    assert_eq!(op["limit"], Value::Null);
}

#[test]
fn increase_paid_storage_takes_a_signed_amount_and_an_originated_contract() {
    let op = single(
        &B::generic().manager(113, 0x11).z(-300).originated(0x33),
        "increase_paid_storage",
    );
    assert_eq!(op["amount"], "-300");
    assert!(op["destination"].as_str().unwrap().starts_with("KT1"));
    let b = B::generic().manager(113, 0x11).z(1).implicit(0, 0x33);
    assert_eq!(
        decode_err(&b).kind(),
        &DecodeErrorKind::UnknownTag {
            what: "originated contract",
            tag: 0
        }
    );
}

#[test]
fn consensus_and_companion_key_updates() {
    for (tag, kind) in [
        (114u8, "update_consensus_key"),
        (115, "update_companion_key"),
    ] {
        let op = single(&B::generic().manager(tag, 0x11).pk(0, 1).flag(false), kind);
        assert!(op["pk"].as_str().unwrap().starts_with("edpk"));
        assert_eq!(op["proof"], Value::Null);
        let op = single(
            &B::generic()
                .manager(tag, 0x11)
                .pk(3, 1)
                .flag(true)
                .dynamic(B::new().fill(7, 96)),
            kind,
        );
        assert!(op["pk"].as_str().unwrap().starts_with("BLpk"));
        assert!(op["proof"].as_str().unwrap().starts_with("BLsig"));
    }
}

#[test]
fn transfer_ticket() {
    let b = B::generic()
        .manager(158, 0x11)
        .lbytes(&[0x00, 0x05])
        .lbytes(&[0x03, 0x62])
        .originated(0x44)
        .n(1u128 << 100)
        .implicit(0, 0x11)
        .lbytes(b"withdraw");
    let op = single(&b, "transfer_ticket");
    assert_eq!(op["ticket_contents"], "0005");
    assert_eq!(op["ticket_ty"], "0362");
    assert!(op["ticket_ticketer"].as_str().unwrap().starts_with("KT1"));
    assert_eq!(op["ticket_amount"], "1267650600228229401496703205376");
    assert_eq!(op["destination"], TZ1_11);
    assert_eq!(op["entrypoint"], "withdraw");

    let zero = B::generic()
        .manager(158, 0x11)
        .lbytes(&[0x00, 0x05])
        .lbytes(&[0x03, 0x62])
        .originated(0x44)
        .n(0)
        .implicit(0, 0x11)
        .lbytes(b"");
    assert!(matches!(
        decode_err(&zero).kind(),
        DecodeErrorKind::OutOfRange {
            what: "ticket amount",
            ..
        }
    ));
}

#[test]
fn dal_publish_commitment() {
    let b = B::generic()
        .manager(230, 0x11)
        .u8(3)
        .fill(0xa0, 48)
        .fill(0xb0, 96);
    let op = single(&b, "dal_publish_commitment");
    assert_eq!(op["slot_header"]["slot_index"], 3);
    assert!(op["slot_header"]["commitment"]
        .as_str()
        .unwrap()
        .starts_with("sh"));
    assert_eq!(op["slot_header"]["commitment_proof"], "b0".repeat(96));
}

// ---------------------------------------------------------------- smart rollups

fn rollup(b: B) -> B {
    b.fill(0x5a, 20)
}

#[test]
fn smart_rollup_originate_add_messages_cement_publish() {
    let b = B::generic()
        .manager(200, 0x11)
        .u8(2)
        .lbytes(&[1, 2, 3])
        .lbytes(&[0x03, 0x69])
        .flag(true)
        .dynamic(B::new().pkh(0, 1).pkh(1, 2));
    let op = single(&b, "smart_rollup_originate");
    assert_eq!(op["pvm_kind"], "riscv");
    assert_eq!(op["kernel"], "010203");
    assert_eq!(op["whitelist"].as_array().unwrap().len(), 2);
    let bad_pvm = B::generic()
        .manager(200, 0x11)
        .u8(3)
        .lbytes(&[])
        .lbytes(&UNIT)
        .flag(false);
    assert!(matches!(
        decode_err(&bad_pvm).kind(),
        DecodeErrorKind::UnknownTag {
            what: "PVM kind",
            tag: 3
        }
    ));

    let b = B::generic()
        .manager(201, 0x11)
        .dynamic(B::new().lbytes(b"ab").lbytes(b""));
    let op = single(&b, "smart_rollup_add_messages");
    assert_eq!(op["message"], json!(["6162", ""]));

    let op = single(
        &rollup(B::generic().manager(202, 0x11)),
        "smart_rollup_cement",
    );
    assert!(op["rollup"].as_str().unwrap().starts_with("sr1"));

    let b = rollup(B::generic().manager(203, 0x11))
        .hash32(1)
        .i32(99)
        .hash32(2)
        .i64(1_000_000);
    let op = single(&b, "smart_rollup_publish");
    assert!(op["commitment"]["compressed_state"]
        .as_str()
        .unwrap()
        .starts_with("srs1"));
    assert!(op["commitment"]["predecessor"]
        .as_str()
        .unwrap()
        .starts_with("src1"));
    assert_eq!(op["commitment"]["inbox_level"], 99);
    assert_eq!(op["commitment"]["number_of_ticks"], "1000000");
}

#[test]
fn smart_rollup_refute_start_dissection_and_every_proof() {
    let refute = |tail: B| {
        rollup(B::generic().manager(204, 0x11))
            .pkh(0, 0x12)
            .raw(tail.bytes())
    };
    let op = single(
        &refute(B::new().u8(0).hash32(1).hash32(2)),
        "smart_rollup_refute",
    );
    assert_eq!(op["refutation"]["refutation_kind"], "start");

    let chunks = B::new()
        .flag(true)
        .hash32(3)
        .n(0)
        .flag(false)
        .n(1u128 << 80);
    let op = single(
        &refute(B::new().u8(1).n(500).u8(0).dynamic(chunks)),
        "smart_rollup_refute",
    );
    assert_eq!(op["refutation"]["refutation_kind"], "move");
    assert_eq!(op["refutation"]["choice"], "500");
    assert_eq!(op["refutation"]["step"]["step_kind"], "dissection");
    assert_eq!(
        op["refutation"]["step"]["chunks"][1]["tick"],
        "1208925819614629174706176"
    );

    let proof = |input: Option<B>| {
        let b = B::new().u8(1).n(7).u8(1).lbytes(&[0xde, 0xad]);
        match input {
            None => b.flag(false),
            Some(i) => b.flag(true).raw(i.bytes()),
        }
    };
    let inputs: [(Option<B>, Value); 7] = [
        (None, Value::Null),
        (
            Some(B::new().u8(0).i32(12).n(3).lbytes(&[1])),
            json!("inbox_proof"),
        ),
        (
            Some(B::new().u8(1).u8(0).u16(2).raw(&[9, 9])),
            json!("raw_data_proof"),
        ),
        (Some(B::new().u8(1).u8(1)), json!("metadata_proof")),
        (
            Some(B::new().u8(1).u8(2).i32(5).u8(1).i16(-1).lbytes(&[8])),
            json!("dal_page_proof"),
        ),
        (Some(B::new().u8(1).u8(3)), json!("dal_parameters_proof")),
        (Some(B::new().u8(2)), json!("first_input")),
    ];
    for (input, kind) in inputs {
        let op = single(&refute(proof(input)), "smart_rollup_refute");
        let step = &op["refutation"]["step"];
        assert_eq!(step["step_kind"], "proof");
        assert_eq!(step["pvm_step"], "dead");
        let input_proof = &step["input_proof"];
        let got = input_proof
            .get("reveal_proof")
            .map(|r| r["reveal_proof_kind"].clone())
            .unwrap_or_else(|| input_proof["input_proof_kind"].clone());
        assert_eq!(got, kind);
    }
    // Raw data reveal proofs are bounded by the message size limit.
    let too_big = proof(Some(B::new().u8(1).u8(0).u16(4097).fill(0, 4097)));
    assert!(matches!(
        decode_err(&refute(too_big)).kind(),
        DecodeErrorKind::TooLong { .. }
    ));
}

#[test]
fn smart_rollup_timeout_execute_and_recover_bond() {
    let op = single(
        &rollup(B::generic().manager(205, 0x11)).pkh(0, 1).pkh(0, 2),
        "smart_rollup_timeout",
    );
    assert!(op["stakers"]["alice"].as_str().unwrap().starts_with("tz1"));

    let op = single(
        &rollup(B::generic().manager(206, 0x11))
            .hash32(3)
            .lbytes(&[4, 5]),
        "smart_rollup_execute_outbox_message",
    );
    assert_eq!(op["output_proof"], "0405");
    assert!(op["cemented_commitment"]
        .as_str()
        .unwrap()
        .starts_with("src1"));

    let op = single(
        &rollup(B::generic().manager(207, 0x11)).pkh(2, 1),
        "smart_rollup_recover_bond",
    );
    assert!(op["staker"].as_str().unwrap().starts_with("tz3"));
}

// ---------------------------------------------------------------- zk rollups

#[test]
fn zk_rollup_origination_publish_update() {
    let scalar = [0x01u8; 32];
    let circuits = B::new().lbytes(b"deposit").u8(0).lbytes(b"fees").u8(2);
    let b = B::generic()
        .manager(250, 0x11)
        .lbytes(&[0xaa; 10])
        .dynamic(circuits)
        .dynamic(B::new().raw(&scalar))
        .i32(8);
    let op = single(&b, "zk_rollup_origination");
    assert_eq!(
        op["circuits_info"],
        json!([["deposit", "public"], ["fees", "fee"]])
    );
    assert_eq!(op["nb_ops"], 8);

    let dup = B::new().lbytes(b"x").u8(0).lbytes(b"x").u8(1);
    let b = B::generic()
        .manager(250, 0x11)
        .lbytes(&[])
        .dynamic(dup)
        .dynamic(B::new())
        .i32(1);
    assert!(matches!(
        decode_err(&b).kind(),
        DecodeErrorKind::Invalid {
            what: "circuits info",
            ..
        }
    ));

    // One operation with a ticket (Micheline `Unit`, type `unit`), one without.
    let zk_op = |b: B| {
        b.i32(1)
            .hash32(0x0e)
            .z(-5)
            .pkh(0, 0x11)
            .fill(0x0f, 20)
            .dynamic(B::new().raw(&scalar))
    };
    let ops = zk_op(B::new())
        .u8(1)
        .raw(&UNIT)
        .raw(&[0x03, 0x6c])
        .originated(0x44);
    let ops = zk_op(ops).u8(0);
    let b = B::generic().manager(251, 0x11).fill(0x0f, 20).dynamic(ops);
    let op = single(&b, "zk_rollup_publish");
    assert!(op["zk_rollup"].as_str().unwrap().starts_with("epx1"));
    assert_eq!(op["op"][0]["operation"]["price_amount"], "-5");
    assert!(op["op"][0]["operation"]["price_id"]
        .as_str()
        .unwrap()
        .starts_with("expr"));
    assert_eq!(op["op"][0]["ticket"]["contents"], "030b");
    assert_eq!(op["op"][0]["ticket"]["ty"], "036c");
    assert_eq!(op["op"][1]["ticket"], Value::Null);
    // `option` (unlike `opt` fields) only knows tags 0 and 1.
    let bad = zk_op(B::new())
        .u8(0xff)
        .raw(&UNIT)
        .raw(&[0x03, 0x6c])
        .originated(0x44);
    let b = B::generic().manager(251, 0x11).fill(0x0f, 20).dynamic(bad);
    assert_eq!(
        decode_err(&b).kind(),
        &DecodeErrorKind::UnknownTag {
            what: "ticket option",
            tag: 0xff
        }
    );

    let pending = B::new()
        .lbytes(b"c")
        .dynamic(B::new().raw(&scalar))
        .raw(&scalar)
        .flag(true);
    let private = B::new().lbytes(b"p").dynamic(B::new()).raw(&scalar);
    let b = B::generic()
        .manager(252, 0x11)
        .fill(0x0f, 20)
        .dynamic(pending)
        .dynamic(private)
        .dynamic(B::new().raw(&scalar))
        .lbytes(&[0xcc; 4]);
    let op = single(&b, "zk_rollup_update");
    assert_eq!(op["update"]["pending_pis"][0][0], "c");
    assert_eq!(op["update"]["pending_pis"][0][1]["exit_validity"], true);
    assert_eq!(op["update"]["private_pis"][0][0], "p");
    assert_eq!(op["update"]["proof"], "cccccccc");
}

// ---------------------------------------------------------------- batches

#[test]
fn batches_of_manager_operations_only() {
    let b = B::generic()
        .manager(107, 0x11)
        .pk(0, 1)
        .flag(false)
        .manager(108, 0x11)
        .n(1)
        .implicit(0, 2)
        .flag(false)
        .manager(110, 0x11)
        .flag(false);
    let req = decode(&b);
    assert_eq!(
        req.operation_kinds(),
        vec!["reveal", "transaction", "delegation"]
    );
    match &req {
        SigningRequest::Generic(g) => {
            assert!(g.contents.iter().all(|c| c.manager().is_some()));
            assert!(matches!(
                g.contents[1],
                OperationContent::Transaction { .. }
            ));
        }
        other => panic!("{other:?}"),
    }

    let first = B::generic().manager(110, 0x11).flag(false);
    let at = first.len();
    let mixed = first.u8(17).lbytes(b"x");
    let err = decode_err(&mixed);
    assert_eq!(err.offset(), at);
    assert!(matches!(
        err.kind(),
        DecodeErrorKind::Invalid {
            what: "operation batch",
            ..
        }
    ));
}

// ---------------------------------------------------------------- other requests

#[test]
fn block_round_comes_from_the_fitness_not_the_payload_round() {
    let req = decode(&block_request(1000, 3, 1));
    assert_eq!(req.kind(), RequestKind::Block);
    assert_eq!(req.level_round(), Some((1000, 3)));
    assert_eq!(req.watermark_kind(), Some(WatermarkKind::Block));
    assert_eq!(req.chain_id().unwrap().to_string(), "NetXdQprcVkpaWU");
    let SigningRequest::Block(b) = &req else {
        panic!()
    };
    assert_eq!(b.contents.payload_round, 1);
    assert_eq!(b.shell.fitness.predecessor_round, 0);
    assert_eq!(b.shell.fitness.locked_round, None);
    assert_eq!(req.payload_hash(), Some(b.contents.payload_hash));
}

#[test]
fn block_with_locked_round_seed_nonce_hash_and_votes() {
    let fitness = B::new()
        .lbytes(&[2])
        .lbytes(&9i32.to_be_bytes())
        .lbytes(&1i32.to_be_bytes())
        .lbytes(&(-3i32).to_be_bytes())
        .lbytes(&4i32.to_be_bytes());
    let b = B::magic(0x11)
        .raw(&[0x7a, 0x06, 0xa7, 0x70])
        .i32(9)
        .u8(2)
        .hash32(1)
        .i64(0)
        .u8(4)
        .hash32(2)
        .dynamic(fitness)
        .hash32(3)
        .hash32(4)
        .i32(0)
        .fill(0, 8)
        .flag(true)
        .hash32(5)
        .u8(0b0110);
    let json = serde_json::to_value(decode(&b)).unwrap();
    assert_eq!(json["locked_round"], 1);
    assert_eq!(json["predecessor_round"], 2);
    assert_eq!(json["round"], 4);
    assert!(json["seed_nonce_hash"].as_str().unwrap().starts_with("nce"));
    assert_eq!(json["liquidity_baking_vote"], "pass");
    assert_eq!(json["adaptive_issuance_vote"], "off");
    assert_eq!(json["timestamp"], "1970-01-01T00:00:00Z");
}

#[test]
fn preattestation_and_attestation_requests_for_every_tag() {
    let cases = [
        (
            0x12u8,
            20u8,
            Some(5u16),
            RequestKind::Preattestation,
            WatermarkKind::Preattestation,
            ConsensusKind::Preattestation,
        ),
        (
            0x12,
            40,
            None,
            RequestKind::Preattestation,
            WatermarkKind::Preattestation,
            ConsensusKind::BlsModePreattestation,
        ),
        (
            0x13,
            21,
            Some(5),
            RequestKind::Attestation,
            WatermarkKind::Attestation,
            ConsensusKind::Attestation,
        ),
        (
            0x13,
            23,
            Some(5),
            RequestKind::AttestationWithDal,
            WatermarkKind::Attestation,
            ConsensusKind::AttestationWithDal,
        ),
        (
            0x13,
            41,
            None,
            RequestKind::Attestation,
            WatermarkKind::Attestation,
            ConsensusKind::BlsModeAttestation,
        ),
    ];
    for (magic, tag, slot, kind, watermark, consensus) in cases {
        let req = decode(&consensus_request(magic, tag, slot, 123, 4));
        assert_eq!(req.kind(), kind, "tag {tag}");
        assert_eq!(req.watermark_kind(), Some(watermark), "tag {tag}");
        assert_eq!(req.level_round(), Some((123, 4)), "tag {tag}");
        let (SigningRequest::Preattestation(op) | SigningRequest::Attestation(op)) = &req else {
            panic!("{req:?}")
        };
        assert_eq!(op.content.kind, consensus);
        assert_eq!(op.content.slot, slot);
        if tag == 23 {
            assert_eq!(
                op.content.dal_attestation.as_ref().unwrap().to_string(),
                "11"
            );
        }
    }
}

#[test]
fn dal_bitsets_are_signed_zarith() {
    // Octez encodes bitsets with Data_encoding.z: 100 is a4 01 (as a natural it would be
    // 64 01 = 228), and the sign bit is honoured.
    for (bytes, value) in [
        (vec![0xa4u8, 0x01], "100"),
        (vec![0x41], "-1"),
        (vec![0x3f], "63"),
    ] {
        let b = B::magic(0x13)
            .raw(&[0x7a, 0x06, 0xa7, 0x70])
            .hash32(0x31)
            .u8(23)
            .u16(1)
            .i32(1)
            .i32(0)
            .hash32(0x32)
            .raw(&bytes);
        let SigningRequest::Attestation(op) = decode(&b) else {
            panic!()
        };
        assert_eq!(op.content.dal_attestation.unwrap().to_string(), value);
    }
}

#[test]
fn a_consensus_tag_under_the_other_magic_is_refused() {
    for (magic, tag, slot) in [
        (0x12u8, 21u8, Some(1u16)),
        (0x12, 23, Some(1)),
        (0x12, 41, None),
        (0x13, 20, Some(1)),
        (0x13, 40, None),
        (0x13, 30, None),
    ] {
        let err = decode_err(&consensus_request(magic, tag, slot, 1, 0));
        assert_eq!(err.offset(), 37, "magic {magic:#x} tag {tag}");
        assert_eq!(
            err.kind(),
            &DecodeErrorKind::UnknownTag {
                what: "consensus operation",
                tag
            }
        );
    }
}

#[test]
fn legacy_requests_give_chain_and_level() {
    let b = B::magic(0x01)
        .raw(&[0x7a, 0x06, 0xa7, 0x70])
        .i32(77)
        .fill(9, 50);
    let req = decode(&b);
    assert_eq!(req.kind(), RequestKind::LegacyBlock);
    assert_eq!(req.level_round(), Some((77, 0)));
    assert_eq!(req.watermark_kind(), Some(WatermarkKind::Block));

    let b = B::magic(0x02)
        .raw(&[0x7a, 0x06, 0xa7, 0x70])
        .hash32(1)
        .u8(0)
        .i32(88);
    let req = decode(&b);
    assert_eq!(req.kind(), RequestKind::LegacyEndorsement);
    assert_eq!(req.level_round(), Some((88, 0)));
    assert_eq!(req.watermark_kind(), Some(WatermarkKind::Attestation));
    assert_eq!(req.chain_id().unwrap().to_string(), "NetXdQprcVkpaWU");
}

#[test]
fn packed_data_is_opaque() {
    let req = decode(&B::magic(0x05).raw(&[0x01, 0, 0, 0, 1, 0x61]));
    assert_eq!(req.kind(), RequestKind::Pack);
    assert_eq!(req.watermark_kind(), None);
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        json!({"kind": "pack", "data": "010000000161"})
    );
}
