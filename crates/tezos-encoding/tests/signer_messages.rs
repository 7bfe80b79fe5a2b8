//! Octez socket-protocol messages from arbitrary bytes: decoding never panics, and what
//! decodes encodes back to a message that decodes the same.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use tezos_encoding::signer_messages::{decode_reply, decode_request, encode_request};

fn check(bytes: &[u8]) {
    if let Ok(request) = decode_request(bytes) {
        let again = decode_request(&encode_request(&request));
        assert_eq!(again, Ok(request), "input {}", hex::encode(bytes));
    }
    let _ = decode_reply(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check(&bytes);
    }

    /// Past the tag and key, so the data, signature and flags are reached often.
    #[test]
    fn arbitrary_bodies_after_each_request_and_key_never_panic(
        tag in 0u8..9,
        key_tag in 0u8..5,
        hash in proptest::array::uniform20(any::<u8>()),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = vec![tag, key_tag];
        bytes.extend_from_slice(&hash);
        bytes.extend_from_slice(&body);
        check(&bytes);
    }
}
