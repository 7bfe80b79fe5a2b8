//! Arbitrary bytes as a signing request, under every protocol's layout: decoding must never
//! panic, and whatever decodes must serialise and answer every accessor without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tezos_encoding::{SigningRequest, PROTOCOLS};

fuzz_target!(|data: &[u8]| {
    for row in PROTOCOLS {
        let Ok(request) = SigningRequest::decode(data, row.protocol) else {
            continue;
        };
        let json = request.to_json();
        assert!(json.is_ok(), "serialisation failed: {json:?}");
        let _ = request.kind().as_str();
        let _ = request.chain_id();
        let _ = request.level_round();
        let _ = request.watermark_kind();
        let _ = request.payload_hash();
        let _ = request.operation_kinds();
        let _ = request.policy_kinds();
    }
});
