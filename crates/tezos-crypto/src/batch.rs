//! Checking many signatures at once.
//!
//! A signer that verifies every signature before releasing it spends more on verifying than
//! on signing (Ed25519 here: about 50 µs against 25 µs). Ed25519 signatures can be checked
//! together: one multi-scalar multiplication with random-looking coefficients derived from
//! every input (ed25519-dalek's batch verification) costs about 30 µs per signature for
//! batches of 8 or more. Other curves are checked one by one.

use crate::error::CryptoError;
use crate::hash::blake2b_256;
use crate::public_key::PublicKey;
use crate::signature::Signature;
use crate::version::SigningVersion;

/// One signature to check: `signature` by `key` over `msg`, as [`PublicKey::verify`] takes.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    pub key: &'a PublicKey,
    pub msg: &'a [u8],
    pub signature: &'a Signature,
    pub version: SigningVersion,
}

/// Whether every item is a valid signature. A failure does not say which item failed:
/// callers that need to know check the items one by one ([`PublicKey::verify`]).
///
/// The Ed25519 items are checked together, and together they pass only if each one would
/// (up to a probability of 2^-128). The batch equation is the cofactored one, so a
/// signature differing from a valid one by a small-order point would pass it; signatures
/// made by this process's own signers never take that form.
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), CryptoError> {
    let mut digests = Vec::new();
    let mut signatures = Vec::new();
    let mut keys = Vec::new();
    for item in items {
        match (item.key, item.signature.with_curve(item.key.curve())?) {
            (PublicKey::Ed25519(k), Signature::Ed25519(s)) => {
                digests.push(blake2b_256(item.msg));
                signatures.push(ed25519_dalek::Signature::from_bytes(&s));
                keys.push(k.verifying_key());
            }
            _ => item.key.verify(item.msg, item.signature, item.version)?,
        }
    }
    match digests.len() {
        0 => Ok(()),
        // One alone: the plain check is cheaper than a batch of one.
        1 => items
            .iter()
            .filter(|i| matches!(i.key, PublicKey::Ed25519(_)))
            .try_for_each(|i| i.key.verify(i.msg, i.signature, i.version)),
        _ => {
            let messages: Vec<&[u8]> = digests.iter().map(|d| d.as_slice()).collect();
            ed25519_dalek::verify_batch(&messages, &signatures, &keys)
                .map_err(|_| CryptoError::VerificationFailed)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::{Curve, SecretKey};

    fn signed(curve: Curve, n: usize) -> Vec<(PublicKey, Vec<u8>, Signature)> {
        (0..n)
            .map(|i| {
                let sk = SecretKey::generate(curve);
                let msg = vec![0x13, i as u8, 7, 7];
                let sig = sk.sign(&msg, SigningVersion::V3).unwrap();
                (sk.public_key(), msg, sig)
            })
            .collect()
    }

    fn items(v: &[(PublicKey, Vec<u8>, Signature)]) -> Vec<BatchItem<'_>> {
        v.iter()
            .map(|(key, msg, signature)| BatchItem {
                key,
                msg,
                signature,
                version: SigningVersion::V3,
            })
            .collect()
    }

    #[test]
    fn valid_batches_pass_whatever_their_size_and_curves() {
        for n in [0, 1, 2, 8, 33] {
            let v = signed(Curve::Ed25519, n);
            verify_batch(&items(&v)).unwrap();
        }
        let mut mixed = signed(Curve::Ed25519, 3);
        mixed.extend(signed(Curve::Secp256k1, 2));
        mixed.extend(signed(Curve::P256, 1));
        verify_batch(&items(&mixed)).unwrap();
    }

    #[test]
    fn one_bad_signature_fails_the_batch_wherever_it_is() {
        for n in [1, 2, 9] {
            for bad in 0..n {
                let mut v = signed(Curve::Ed25519, n);
                // A flipped bit in s, then in R.
                for byte in [40, 3] {
                    let mut w = v.clone();
                    let Signature::Ed25519(s) = &mut w[bad].2 else {
                        unreachable!()
                    };
                    s[byte] ^= 1;
                    assert!(
                        verify_batch(&items(&w)).is_err(),
                        "n={n} bad={bad} byte={byte}"
                    );
                }
                // Right signature, other message.
                v[bad].1.push(0);
                assert!(verify_batch(&items(&v)).is_err());
            }
        }
    }

    #[test]
    fn a_signature_by_another_key_fails_the_batch() {
        let mut v = signed(Curve::Ed25519, 4);
        let other = signed(Curve::Ed25519, 1);
        v[2].0 = other[0].0.clone();
        assert!(verify_batch(&items(&v)).is_err());
    }

    #[test]
    fn a_bad_signature_of_another_curve_fails_a_mixed_batch() {
        let mut v = signed(Curve::Ed25519, 4);
        let mut tz2 = signed(Curve::Secp256k1, 1);
        tz2[0].1.push(1);
        v.extend(tz2);
        assert!(verify_batch(&items(&v)).is_err());
    }
}
