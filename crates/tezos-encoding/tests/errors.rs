//! Every class of decoding error, with the offset it names and the message an operator
//! reads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{block_request, consensus_request, B, UNIT};
use tezos_encoding::{DecodeError, DecodeErrorKind, SigningRequest};

fn err(bytes: &[u8]) -> DecodeError {
    match SigningRequest::decode(bytes, tezos_encoding::Protocol::DEFAULT) {
        Ok(r) => panic!("decoded {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn empty_input() {
    let e = err(&[]);
    assert_eq!((e.offset(), e.kind()), (0, &DecodeErrorKind::Empty));
    assert_eq!(
        e.to_string(),
        "empty request at offset 0: expected a magic byte"
    );
}

#[test]
fn unknown_magic_and_authentication_payloads() {
    let e = err(&[0x07, 1, 2]);
    assert_eq!(
        (e.offset(), e.kind()),
        (0, &DecodeErrorKind::UnknownMagic(7))
    );
    assert!(e
        .to_string()
        .starts_with("unknown magic byte 0x07 at offset 0"));
    let e = err(&[0x04, 0x01]);
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::Invalid {
            what: "request",
            ..
        }
    ));
}

#[test]
fn truncated_attestation_names_the_missing_field() {
    let full = consensus_request(0x13, 21, Some(1), 5, 0);
    // magic 1 + chain 4 + branch 32 = 37: the tag is missing.
    let e = err(&full.bytes()[..37]);
    assert_eq!(e.offset(), 37);
    assert_eq!(
        e.to_string(),
        "truncated at offset 37: expected 1-byte operation tag"
    );
    // Cut inside the level (tag at 37, slot 38..40, level 40..44).
    let e = err(&full.bytes()[..42]);
    assert_eq!(e.offset(), 40);
    assert_eq!(
        e.to_string(),
        "truncated at offset 40: expected 4-byte level"
    );
}

#[test]
fn length_prefix_beyond_the_input() {
    let b = B::generic().u8(17).u32(1000).raw(b"abc");
    let e = err(b.bytes());
    assert_eq!(e.offset(), 34);
    assert_eq!(
        e.kind(),
        &DecodeErrorKind::LengthBeyondInput {
            what: "failing_noop payload",
            announced: 1000,
            remaining: 3
        }
    );
    // Absurd lengths never allocate: this must fail fast, not try to reserve 1 GiB.
    let b = B::generic().u8(17).u32(0x3fff_ffff);
    assert!(matches!(
        err(b.bytes()).kind(),
        DecodeErrorKind::LengthBeyondInput { .. }
    ));
    let b = B::generic().u8(17).u32(0xffff_ffff);
    assert!(matches!(
        err(b.bytes()).kind(),
        DecodeErrorKind::OutOfRange { .. }
    ));
}

#[test]
fn unknown_operation_tag() {
    let b = B::generic().u8(99);
    let e = err(b.bytes());
    assert_eq!(e.offset(), 33);
    assert_eq!(e.to_string(), "unknown operation tag 99 at offset 33");
    // Removed or reserved tags are unknown too: tx rollups (150-157), 7, 255.
    for tag in [7u8, 150, 157, 255, 22, 116, 208, 231, 253] {
        let e = err(B::generic().u8(tag).fill(0, 64).bytes());
        assert_eq!(
            e.kind(),
            &DecodeErrorKind::UnknownTag {
                what: "operation",
                tag
            },
            "tag {tag}"
        );
    }
}

#[test]
fn trailing_bytes_after_complete_requests() {
    let block = block_request(1, 0, 0);
    let at = block.len();
    let e = err(block.u8(0).bytes());
    assert_eq!(e.offset(), at);
    assert_eq!(
        e.kind(),
        &DecodeErrorKind::TrailingBytes {
            what: "the block header",
            count: 1
        }
    );
    assert!(e
        .to_string()
        .starts_with(&format!("trailing bytes at offset {at}")));

    let att = consensus_request(0x13, 21, Some(1), 5, 0);
    let at = att.len();
    let e = err(att.raw(&[1, 2]).bytes());
    assert_eq!(e.offset(), at);
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::TrailingBytes { count: 2, .. }
    ));

    // In a generic request, leftover bytes are read as another operation.
    let tx = B::generic().manager(110, 0x11).flag(false);
    let at = tx.len();
    let e = err(tx.u8(0).bytes());
    assert_eq!(e.offset(), at);
}

#[test]
fn fields_too_long() {
    let name = "x".repeat(40);
    let b = B::generic()
        .manager(158, 0x11)
        .lbytes(&UNIT)
        .lbytes(&UNIT)
        .originated(1)
        .n(1)
        .originated(2);
    let at = b.len();
    let e = err(b.lbytes(name.as_bytes()).bytes());
    assert_eq!(e.offset(), at);
    assert_eq!(
        e.kind(),
        &DecodeErrorKind::TooLong {
            what: "entrypoint name",
            len: 40,
            max: 31
        }
    );
    assert!(e
        .to_string()
        .starts_with(&format!("field too long at offset {at}")));
}

#[test]
fn invalid_zarith() {
    // Non-canonical: a trailing zero group (1 encoded as 81 00).
    let b = B::generic().u8(110).pkh(0, 1);
    let at = b.len();
    let e = err(b.raw(&[0x81, 0x00]).n(1).n(1).n(1).flag(false).bytes());
    assert_eq!(e.offset(), at + 1);
    assert_eq!(
        e.kind(),
        &DecodeErrorKind::InvalidZarith {
            what: "fee",
            reason: "non-canonical trailing zero byte"
        }
    );
    assert_eq!(
        e.to_string(),
        format!(
            "invalid Zarith fee at offset {}: non-canonical trailing zero byte",
            at + 1
        )
    );
    // Eleven bytes where the protocol allows ten.
    let b = B::generic().u8(110).pkh(0, 1).n(1);
    let at = b.len();
    let e = err(b.fill(0x80, 10).u8(1).n(1).n(1).flag(false).bytes());
    assert_eq!(e.offset(), at);
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::InvalidZarith {
            what: "counter",
            ..
        }
    ));
    // A fee above 2^63 - 1 mutez.
    let b = B::generic().u8(110).pkh(0, 1);
    let at = b.len();
    let e = err(b.n(1 << 63).n(1).n(1).n(1).flag(false).bytes());
    assert_eq!(e.offset(), at);
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::InvalidZarith { what: "fee", .. }
    ));
    // An unbounded natural longer than the decoder's cap.
    let b = B::generic()
        .manager(158, 0x11)
        .lbytes(&UNIT)
        .lbytes(&UNIT)
        .originated(1);
    let at = b.len();
    let e = err(b.fill(0xff, 300).u8(1).originated(2).lbytes(b"").bytes());
    assert_eq!(e.offset(), at);
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::InvalidZarith {
            what: "ticket amount",
            ..
        }
    ));
}

#[test]
fn out_of_range_values() {
    let e = err(consensus_request(0x13, 21, Some(1), -1, 0).bytes());
    assert_eq!(e.offset(), 40);
    assert_eq!(
        e.kind(),
        &DecodeErrorKind::OutOfRange {
            what: "level",
            value: -1
        }
    );
    assert_eq!(
        e.to_string(),
        "value out of range at offset 40: level is -1"
    );
    let e = err(consensus_request(0x12, 20, Some(1), 1, -2).bytes());
    assert_eq!(e.offset(), 44);
    let e = err(block_request(10, 0, -1).bytes());
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::OutOfRange {
            what: "payload round",
            value: -1
        }
    ));
}

#[test]
fn invalid_fitness() {
    // Fitness level differs from the header level.
    let good = block_request(10, 1, 0);
    let mut bytes = good.bytes().to_vec();
    // fitness starts at 1+4+4+1+32+8+1+32 = 83: u32 len, then version (4+1), level (4+4)
    let level_at = 83 + 4 + 5 + 4;
    bytes[level_at + 3] = 11;
    let e = err(&bytes);
    assert_eq!(e.offset(), level_at - 4);
    assert!(matches!(
        e.kind(),
        DecodeErrorKind::Invalid {
            what: "fitness",
            ..
        }
    ));

    // Version 01 (Emmy) is not a Tenderbake fitness.
    let mut bytes = good.bytes().to_vec();
    bytes[83 + 4 + 4] = 1;
    assert!(matches!(
        err(&bytes).kind(),
        DecodeErrorKind::Invalid {
            what: "fitness",
            ..
        }
    ));

    // A locked round not below the round.
    let fitness = B::new()
        .lbytes(&[2])
        .lbytes(&10i32.to_be_bytes())
        .lbytes(&3i32.to_be_bytes())
        .lbytes(&(-1i32).to_be_bytes())
        .lbytes(&3i32.to_be_bytes());
    let b = B::magic(0x11)
        .fill(0, 4)
        .i32(10)
        .u8(1)
        .hash32(1)
        .i64(0)
        .u8(4)
        .hash32(2)
        .dynamic(fitness)
        .hash32(3)
        .hash32(4)
        .i32(0)
        .fill(0, 8)
        .flag(false)
        .u8(0);
    assert!(matches!(
        err(b.bytes()).kind(),
        DecodeErrorKind::Invalid {
            reason: "round must be greater than the locked round",
            ..
        }
    ));
}

#[test]
fn invalid_per_block_votes() {
    let good = block_request(10, 0, 0);
    let last = good.len() - 1;
    for bad in [0x03u8, 0x0c, 0x10, 0xff] {
        let mut bytes = good.bytes().to_vec();
        bytes[last] = bad;
        let e = err(&bytes);
        assert_eq!(e.offset(), last);
        assert_eq!(
            e.kind(),
            &DecodeErrorKind::UnknownTag {
                what: "per-block votes",
                tag: bad
            }
        );
    }
}

#[test]
fn generic_request_needs_an_operation() {
    let e = err(B::generic().bytes());
    assert_eq!(e.offset(), 33);
    assert!(matches!(e.kind(), DecodeErrorKind::Truncated { .. }));
}

#[test]
fn legacy_endorsement_needs_a_level() {
    let e = err(&[0x02, 1, 2, 3, 4, 0, 0]);
    assert!(matches!(e.kind(), DecodeErrorKind::Truncated { .. }));
}
