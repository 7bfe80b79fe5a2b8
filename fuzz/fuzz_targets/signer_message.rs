//! Arbitrary bytes as an Octez socket-protocol request or reply: decoding must never
//! panic, and a decoded request must encode to bytes that decode to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tezos_encoding::signer_messages::{decode_reply, decode_request, encode_request};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode_request(data) {
        assert_eq!(decode_request(&encode_request(&request)), Ok(request));
    }
    let _ = decode_reply(data);
});
