//! Property tests: base58check round trips, decoders that never panic, sign/verify.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use tezos_crypto::base58::{self, Prefix};
use tezos_crypto::{
    encrypted, Curve, PublicKey, PublicKeyHash, SecretKey, Signature, SigningVersion,
};

fn prefix() -> impl Strategy<Value = Prefix> {
    (0..Prefix::ALL.len()).prop_map(|i| Prefix::ALL[i])
}

fn config(cases: u32) -> ProptestConfig {
    // No regression files written into the source tree; failures print their input.
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn encode_then_decode_gives_the_payload_back(
        p in prefix(),
        seed in proptest::collection::vec(any::<u8>(), 2420),
    ) {
        let payload = &seed[..p.payload_len()];
        let s = base58::encode(p, payload);
        prop_assert!(s.starts_with(p.name()));
        prop_assert_eq!(base58::decode(&s, p), Ok(payload.to_vec()));
        let (found, back) = base58::decode_any(&s, &Prefix::ALL).unwrap();
        prop_assert_eq!(back.as_slice(), payload);
        prop_assert_eq!(found, p);
    }

    #[test]
    fn raw_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let encoded = {
            use sha2::Digest;
            let sum = sha2::Sha256::digest(sha2::Sha256::digest(&bytes));
            let mut data = bytes.clone();
            data.extend_from_slice(&sum[..4]);
            bs58::encode(data).into_string()
        };
        prop_assert_eq!(base58::decode_raw(&encoded), Ok(bytes));
    }

    #[test]
    fn decoding_arbitrary_text_never_panics(s in ".{0,120}") {
        let _ = base58::decode_raw(&s);
        let _ = base58::decode_any(&s, &Prefix::ALL);
        let _ = PublicKeyHash::from_b58check(&s);
        let _ = PublicKey::from_b58check(&s);
        let _ = Signature::from_b58check(&s);
        let _ = SecretKey::from_b58check(&s);
        let _ = encrypted::is_encrypted(&s);
    }

    #[test]
    fn decoding_base58_alphabet_text_never_panics(s in "[1-9A-HJ-NP-Za-km-z]{0,120}") {
        let _ = base58::decode_any(&s, &Prefix::ALL);
        let _ = PublicKey::from_b58check(&s);
        let _ = Signature::from_b58check(&s);
        let _ = SecretKey::from_b58check(&s);
    }

    #[test]
    fn well_formed_strings_with_random_payloads_never_panic(
        p in prefix(),
        seed in proptest::collection::vec(any::<u8>(), 2420),
    ) {
        // Valid checksums and lengths, arbitrary (mostly invalid) key and point bytes.
        let s = base58::encode(p, &seed[..p.payload_len()]);
        let _ = PublicKey::from_b58check(&s);
        let _ = SecretKey::from_b58check(&s);
        if let Ok(sig) = Signature::from_b58check(&s) {
            prop_assert_eq!(Signature::from_b58check(&sig.to_b58check()), Ok(sig));
            for curve in Curve::ALL {
                let pk = SecretKey::generate(curve).public_key();
                prop_assert!(pk.verify(b"m", &sig, SigningVersion::V2).is_err());
            }
        }
        let _ = PublicKey::from_tagged_bytes(&seed[..p.payload_len().min(49)]);
    }
}

proptest! {
    #![proptest_config(config(32))]

    #[test]
    fn any_message_signs_and_verifies(
        msg in proptest::collection::vec(any::<u8>(), 0..300),
        curve_index in 0usize..4,
    ) {
        let curve = Curve::ALL[curve_index];
        let sk = SecretKey::generate(curve);
        let sig = sk.sign(&msg, SigningVersion::V3).unwrap();
        prop_assert_eq!(sk.public_key().verify(&msg, &sig, SigningVersion::V3), Ok(()));
    }
}
