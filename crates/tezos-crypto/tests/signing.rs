//! Signing and verification across curves and versions, ECDSA low-S rules, proofs of
//! possession and deterministic nonces.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use openssl::bn::{BigNum, BigNumContext};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use rand::RngCore;
use tezos_crypto::{
    blake2b_256, CryptoError, Curve, PublicKey, SecretKey, Signature, SigningVersion,
};

const SECP256K1_ORDER: &str = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141";
const P256_ORDER: &str = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";

fn versions_for(curve: Curve) -> Vec<SigningVersion> {
    SigningVersion::ALL
        .into_iter()
        .filter(|v| curve != Curve::Bls12_381 || *v != SigningVersion::V0)
        .collect()
}

#[test]
fn every_curve_and_version_signs_and_verifies_and_a_flipped_bit_fails() {
    let msg = b"\x11some block header bytes";
    for curve in Curve::ALL {
        let sk = SecretKey::generate(curve);
        let pk = sk.public_key();
        for version in versions_for(curve) {
            let sig = sk.sign(msg, version).unwrap();
            assert_eq!(sig.curve(), Some(curve));
            assert_eq!(pk.verify(msg, &sig, version), Ok(()), "{curve} v{version}");
            // A flipped message bit.
            let mut other = msg.to_vec();
            other[3] ^= 0x01;
            assert_eq!(
                pk.verify(&other, &sig, version),
                Err(CryptoError::VerificationFailed)
            );
            // A flipped signature bit, in each half: refused one way or another.
            for at in [5, sig.as_bytes().len() - 5] {
                let mut bytes = sig.to_bytes();
                bytes[at] ^= 0x10;
                let bad = Signature::from_bytes(curve, &bytes).unwrap();
                assert!(matches!(
                    pk.verify(msg, &bad, version),
                    Err(CryptoError::VerificationFailed | CryptoError::InvalidSignature { .. })
                ));
            }
            // Another key of the same curve does not verify it.
            let stranger = SecretKey::generate(curve).public_key();
            assert!(stranger.verify(msg, &sig, version).is_err());
        }
    }
}

#[test]
fn tz1_to_tz3_sign_alike_in_every_version_and_accept_the_generic_form() {
    let msg = b"\x03generic operation";
    for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
        let sk = SecretKey::generate(curve);
        let pk = sk.public_key();
        let sig = sk.sign(msg, SigningVersion::V0).unwrap();
        for version in SigningVersion::ALL {
            assert_eq!(pk.verify(msg, &sig, version), Ok(()));
            if curve != Curve::P256 {
                assert_eq!(sk.sign(msg, version).unwrap(), sig, "deterministic {curve}");
            }
        }
        let generic = Signature::from_b58check(&sig.to_generic_b58check().unwrap()).unwrap();
        assert_eq!(generic.curve(), None);
        assert_eq!(pk.verify(msg, &generic, SigningVersion::V2), Ok(()));
    }
}

#[test]
fn tz1_to_tz3_sign_the_blake2b_digest_of_the_message() {
    // Checked with independent implementations: OpenSSL Ed25519 over the digest, and
    // OpenSSL ECDSA verification of our P-256 signature over the digest.
    let msg = b"\x12preattestation";
    let digest = blake2b_256(msg);
    let sk = SecretKey::generate(Curve::Ed25519);
    let seed =
        tezos_crypto::base58::decode(&sk.to_b58check(), tezos_crypto::Prefix::EdskSeed).unwrap();
    let ossl = PKey::private_key_from_raw_bytes(&seed, openssl::pkey::Id::ED25519).unwrap();
    let mut signer = openssl::sign::Signer::new_without_digest(&ossl).unwrap();
    let expected = signer.sign_oneshot_to_vec(&digest).unwrap();
    assert_eq!(
        sk.sign(msg, SigningVersion::V3).unwrap().to_bytes(),
        expected
    );

    let sk = SecretKey::generate(Curve::P256);
    let sig = sk.sign(msg, SigningVersion::V3).unwrap();
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    let point =
        openssl::ec::EcPoint::from_bytes(&group, sk.public_key().as_bytes(), &mut ctx).unwrap();
    let key = openssl::ec::EcKey::from_public_key(&group, &point).unwrap();
    let b = sig.as_bytes();
    let ecdsa = openssl::ecdsa::EcdsaSig::from_private_components(
        BigNum::from_slice(&b[..32]).unwrap(),
        BigNum::from_slice(&b[32..]).unwrap(),
    )
    .unwrap();
    assert!(ecdsa.verify(&digest, &key).unwrap());
}

#[test]
fn bls_versions_use_their_own_ciphersuite() {
    let sk = SecretKey::generate(Curve::Bls12_381);
    let pk = sk.public_key();
    let msg = b"\x13attestation";
    assert!(matches!(
        sk.sign(msg, SigningVersion::V0),
        Err(CryptoError::UnsupportedVersion {
            curve: Curve::Bls12_381,
            ..
        })
    ));
    let aug = sk.sign(msg, SigningVersion::V1).unwrap();
    let pop = sk.sign(msg, SigningVersion::V2).unwrap();
    assert_ne!(aug, pop);
    assert_eq!(sk.sign(msg, SigningVersion::V3).unwrap(), pop);
    assert_eq!(pk.verify(msg, &aug, SigningVersion::V1), Ok(()));
    assert_eq!(
        pk.verify(msg, &aug, SigningVersion::V2),
        Err(CryptoError::VerificationFailed)
    );
    assert_eq!(
        pk.verify(msg, &pop, SigningVersion::V1),
        Err(CryptoError::VerificationFailed)
    );
    // Independent check of the AUG rule: blst over pk ‖ msg with the AUG tag.
    let raw = blst::min_pk::Signature::from_bytes(aug.as_bytes()).unwrap();
    let blst_pk = blst::min_pk::PublicKey::from_bytes(pk.as_bytes()).unwrap();
    let mut augmented = pk.as_bytes().to_vec();
    augmented.extend_from_slice(msg);
    assert_eq!(
        raw.verify(
            true,
            &augmented,
            tezos_crypto::bls_dst::SIG_AUG,
            &[],
            &blst_pk,
            true
        ),
        blst::BLST_ERROR::BLST_SUCCESS
    );
}

#[test]
fn signatures_of_another_curve_are_a_typed_error() {
    let msg = b"\x11x";
    let keys: Vec<SecretKey> = Curve::ALL.into_iter().map(SecretKey::generate).collect();
    for signer in &keys {
        let sig = signer.sign(msg, SigningVersion::V2).unwrap();
        for checker in &keys {
            if checker.curve() == signer.curve() {
                continue;
            }
            assert!(
                matches!(
                    checker.public_key().verify(msg, &sig, SigningVersion::V2),
                    Err(CryptoError::WrongCurve { expected, .. }) if expected == checker.curve()
                ),
                "{} signature on {} key",
                signer.curve(),
                checker.curve()
            );
        }
    }
    // A 64-byte generic signature cannot be a BLS one.
    let bls = keys[3].public_key();
    assert!(matches!(
        bls.verify(msg, &Signature::Generic([1; 64]), SigningVersion::V2),
        Err(CryptoError::WrongCurve { .. })
    ));
}

fn flip_s(sig: &Signature, order_hex: &str, curve: Curve) -> Signature {
    let b = sig.as_bytes();
    let n = BigNum::from_hex_str(order_hex).unwrap();
    let s = BigNum::from_slice(&b[32..]).unwrap();
    let mut high = BigNum::new().unwrap();
    high.checked_sub(&n, &s).unwrap();
    let mut out = b[..32].to_vec();
    out.extend_from_slice(&high.to_vec_padded(32).unwrap());
    Signature::from_bytes(curve, &out).unwrap()
}

#[test]
fn ecdsa_signatures_are_always_low_s() {
    let mut rng = rand::thread_rng();
    for (curve, order) in [
        (Curve::Secp256k1, SECP256K1_ORDER),
        (Curve::P256, P256_ORDER),
    ] {
        let sk = SecretKey::generate(curve);
        let half = {
            let n = BigNum::from_hex_str(order).unwrap();
            let mut h = BigNum::new().unwrap();
            h.rshift1(&n).unwrap();
            h
        };
        let mut msg = [0u8; 64];
        for _ in 0..300 {
            rng.fill_bytes(&mut msg);
            let sig = sk.sign(&msg, SigningVersion::V3).unwrap();
            let s = BigNum::from_slice(&sig.as_bytes()[32..]).unwrap();
            assert!(s <= half, "{curve} high-S signature");
            assert!(sig.is_low_s());
        }
    }
}

#[test]
fn high_s_is_refused_for_tz2_and_accepted_for_tz3_as_octez_does() {
    let msg = b"\x11block";
    // tz2: libsecp256k1 (Octez's verifier) accepts only low-S.
    let sk = SecretKey::generate(Curve::Secp256k1);
    let low = sk.sign(msg, SigningVersion::V3).unwrap();
    let high = flip_s(&low, SECP256K1_ORDER, Curve::Secp256k1);
    assert!(!high.is_low_s());
    assert_eq!(
        sk.public_key().verify(msg, &high, SigningVersion::V3),
        Err(CryptoError::VerificationFailed)
    );
    // A backend that returned the high form is fixed by normalising.
    assert_eq!(high.normalize_low_s(), low);
    assert_eq!(
        sk.public_key()
            .verify(msg, &high.normalize_low_s(), SigningVersion::V3),
        Ok(())
    );

    // tz3: HACL* (Octez's verifier) accepts both forms.
    let sk = SecretKey::generate(Curve::P256);
    let low = sk.sign(msg, SigningVersion::V3).unwrap();
    let high = flip_s(&low, P256_ORDER, Curve::P256);
    assert!(!high.is_low_s());
    assert_eq!(
        sk.public_key().verify(msg, &high, SigningVersion::V3),
        Ok(())
    );
    assert_eq!(high.normalize_low_s(), low);
}

#[test]
fn proofs_of_possession_sign_the_key_or_its_override() {
    let sk = SecretKey::generate(Curve::Bls12_381);
    let pk = sk.public_key();
    let proof = sk.prove_possession(None).unwrap();
    assert_eq!(pk.verify_proof_of_possession(&proof), Ok(()));
    // A proof is not a signature of the key bytes with the signing ciphersuite.
    assert_eq!(
        pk.verify(pk.as_bytes(), &proof, SigningVersion::V2),
        Err(CryptoError::VerificationFailed)
    );
    let other = SecretKey::generate(Curve::Bls12_381).public_key();
    let over_other = sk.prove_possession(Some(&other)).unwrap();
    assert_ne!(over_other, proof);
    assert_eq!(
        pk.verify_proof_of_possession_over(&over_other, &other),
        Ok(())
    );
    assert_eq!(
        pk.verify_proof_of_possession(&over_other),
        Err(CryptoError::VerificationFailed)
    );
    assert!(other.verify_proof_of_possession(&over_other).is_err());

    let tz1 = SecretKey::generate(Curve::Ed25519);
    assert_eq!(
        tz1.prove_possession(None).map(|_| ()),
        Err(CryptoError::NotBls {
            curve: Curve::Ed25519
        })
    );
    assert!(matches!(
        sk.prove_possession(Some(&tz1.public_key())),
        Err(CryptoError::WrongCurve { .. })
    ));
    assert!(matches!(
        tz1.public_key().verify_proof_of_possession(&proof),
        Err(CryptoError::NotBls { .. })
    ));
}

#[test]
fn deterministic_nonces_are_hmac_sha256_keyed_by_the_secret_payload() {
    let data = b"seed nonce request";
    let prefixes = [
        tezos_crypto::Prefix::EdskSeed,
        tezos_crypto::Prefix::Spsk,
        tezos_crypto::Prefix::P2sk,
        tezos_crypto::Prefix::BLsk,
    ];
    for (curve, prefix) in Curve::ALL.into_iter().zip(prefixes) {
        let sk = SecretKey::generate(curve);
        let secret = tezos_crypto::base58::decode(&sk.to_b58check(), prefix).unwrap();
        // OpenSSL's HMAC as the independent reference.
        let key = PKey::hmac(&secret).unwrap();
        let mut mac = openssl::sign::Signer::new(MessageDigest::sha256(), &key).unwrap();
        let expected = mac.sign_oneshot_to_vec(data).unwrap();
        let nonce = sk.deterministic_nonce(data);
        assert_eq!(nonce.to_vec(), expected, "{curve}");
        assert_eq!(sk.deterministic_nonce_hash(data), blake2b_256(&nonce));
        assert_ne!(sk.deterministic_nonce(b"other"), nonce);
    }
}

#[test]
fn public_keys_from_secret_keys_survive_every_encoding() {
    for curve in Curve::ALL {
        let pk = SecretKey::generate(curve).public_key();
        assert_eq!(PublicKey::from_b58check(&pk.to_b58check()).unwrap(), pk);
        assert_eq!(
            PublicKey::from_tagged_bytes(&pk.to_tagged_bytes()).unwrap(),
            pk
        );
        assert_eq!(PublicKey::from_bytes(curve, pk.as_bytes()).unwrap(), pk);
        assert_eq!(pk.hash().curve(), curve);
    }
}
