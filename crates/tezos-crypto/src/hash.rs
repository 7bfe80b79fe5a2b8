//! Blake2b digests as Tezos uses them.

use blake2::digest::consts::{U20, U32};
use blake2::{Blake2b, Digest};

/// Blake2b-256: the prehash signed for tz1–tz3, and the watermark's request hash.
pub fn blake2b_256(data: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(data).into()
}

/// Blake2b-160: a public key hash.
pub fn blake2b_160(data: &[u8]) -> [u8; 20] {
    Blake2b::<U20>::digest(data).into()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_of_empty_input() {
        // RFC 7693 parameters: Blake2b-256("") is a published constant.
        assert_eq!(
            hex::encode(blake2b_256(b"")),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
        );
    }
}
