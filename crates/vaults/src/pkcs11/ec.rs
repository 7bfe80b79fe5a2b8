//! What PKCS#11 tokens return, in Tezos terms: the curve of `CKA_EC_PARAMS`, the public key
//! of `CKA_EC_POINT`, and signatures. Pure.

use cryptoki::object::KeyType;
use tezos_crypto::{Curve, PublicKey, Signature};

/// DER object identifiers of the curves, as `CKA_EC_PARAMS` holds them.
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const SECP256K1_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// PKCS#11 3.0 also allows the curve's name as a DER PrintableString.
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

/// The `CKA_EC_PARAMS` to generate a key of `curve`; `None` for curves PKCS#11 lacks.
pub(crate) fn ec_params(curve: Curve) -> Option<&'static [u8]> {
    match curve {
        Curve::Ed25519 => Some(ED25519_OID),
        Curve::Secp256k1 => Some(SECP256K1_OID),
        Curve::P256 => Some(P256_OID),
        Curve::Bls12_381 => None,
    }
}

/// The `CKA_KEY_TYPE` of a key of `curve` (BLS has none; it is refused before).
pub(crate) fn key_type(curve: Curve) -> KeyType {
    match curve {
        Curve::Ed25519 => KeyType::EC_EDWARDS,
        Curve::Secp256k1 | Curve::P256 | Curve::Bls12_381 => KeyType::EC,
    }
}

/// The `CKA_EC_POINT` of `public_key`, as the standard has it and [`public_key`] reads it:
/// a DER OCTET STRING around the raw Ed25519 point or the uncompressed EC point.
pub(crate) fn ec_point(public_key: &PublicKey) -> Vec<u8> {
    let point = public_key
        .to_uncompressed_point()
        .unwrap_or_else(|| public_key.as_bytes().to_vec());
    // 32 or 65 bytes: always the short DER length form.
    let mut out = vec![0x04, point.len() as u8];
    out.extend_from_slice(&point);
    out
}

/// The Tezos curve of `CKA_EC_PARAMS`, or what the parameters are when no Tezos key has them.
pub(crate) fn curve_of(params: &[u8]) -> Result<Curve, String> {
    match params {
        P256_OID => Ok(Curve::P256),
        SECP256K1_OID => Ok(Curve::Secp256k1),
        ED25519_OID | ED25519_NAME => Ok(Curve::Ed25519),
        other => Err(format!(
            "curve parameters {} are none of Ed25519, secp256k1, P-256",
            hex::encode(other)
        )),
    }
}

/// A public key from `CKA_EC_POINT`: a DER OCTET STRING around the point (what the
/// standard says; SoftHSM2 does so) or the bare point (some tokens); an uncompressed
/// secp256k1/P-256 point is compressed as Tezos keys are.
pub(crate) fn public_key(curve: Curve, ec_point: &[u8]) -> Result<PublicKey, String> {
    let expected = match curve {
        Curve::Ed25519 => &[32][..],
        Curve::Secp256k1 | Curve::P256 => &[33, 65][..],
        Curve::Bls12_381 => return Err("BLS keys are not PKCS#11 EC keys".to_owned()),
    };
    let point = match ec_point {
        bare if expected.contains(&bare.len()) && !is_octet_string(bare) => bare,
        wrapped => octet_string(wrapped)
            .filter(|inner| expected.contains(&inner.len()))
            .ok_or_else(|| {
                format!(
                    "CKA_EC_POINT of {} bytes is not a {curve} point",
                    ec_point.len()
                )
            })?,
    };
    match (curve, point) {
        (Curve::Secp256k1 | Curve::P256, [0x04, ..]) if point.len() == 65 => {
            PublicKey::from_uncompressed_point(curve, point).map_err(|e| e.to_string())
        }
        _ => PublicKey::from_bytes(curve, point).map_err(|e| e.to_string()),
    }
}

/// Whether `bytes` is exactly one DER OCTET STRING.
fn is_octet_string(bytes: &[u8]) -> bool {
    octet_string(bytes).is_some()
}

/// The content of the DER OCTET STRING that is the whole of `bytes`.
fn octet_string(bytes: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = bytes.split_first()?;
    if tag != 0x04 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, content) = match first {
        n if n < 0x80 => (usize::from(n), rest),
        0x81 => {
            let (&n, content) = rest.split_first()?;
            (usize::from(n), content)
        }
        _ => return None,
    };
    (content.len() == len).then_some(content)
}

/// A signature of `curve` from the token's output: Ed25519's 64 bytes, or ECDSA's r ‖ s
/// (PKCS#11's `CKM_ECDSA` format), normalised to low S as Tezos requires.
pub(crate) fn signature(curve: Curve, raw: &[u8]) -> Result<Signature, String> {
    if raw.len() != 64 {
        return Err(format!(
            "the token returned a {}-byte signature, not 64",
            raw.len()
        ));
    }
    // Ed25519 signatures come back unchanged.
    Ok(Signature::from_bytes(curve, raw)
        .map_err(|e| e.to_string())?
        .normalize_low_s())
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
    use tezos_crypto::SecretKey;

    #[test]
    fn curve_parameters_are_recognised_and_others_named() {
        for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
            assert_eq!(curve_of(ec_params(curve).unwrap()), Ok(curve));
        }
        assert_eq!(curve_of(ED25519_NAME), Ok(Curve::Ed25519));
        // P-384 (1.3.132.0.34).
        let e = curve_of(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]).unwrap_err();
        assert!(e.contains("06052b81040022"), "{e}");
        assert_eq!(ec_params(Curve::Bls12_381), None);
    }

    #[test]
    fn ec_points_wrapped_or_bare_compressed_or_not_give_the_key() {
        for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
            let key = SecretKey::generate(curve).public_key();
            let mut points = vec![key.as_bytes().to_vec()];
            if curve != Curve::Ed25519 {
                points.push(key.to_uncompressed_point().unwrap());
            }
            for point in points {
                let mut wrapped = vec![0x04, u8::try_from(point.len()).unwrap()];
                wrapped.extend_from_slice(&point);
                assert_eq!(public_key(curve, &wrapped).unwrap(), key, "{curve} wrapped");
                assert_eq!(public_key(curve, &point).unwrap(), key, "{curve} bare");
            }
        }
        assert!(public_key(Curve::P256, &[0x04, 0x02, 1, 2]).is_err());
        // What import writes is what discovery reads.
        for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
            let key = SecretKey::generate(curve).public_key();
            assert_eq!(public_key(curve, &ec_point(&key)).unwrap(), key);
        }
        assert!(public_key(Curve::Ed25519, &[0u8; 31]).is_err());
    }

    #[test]
    fn high_s_ecdsa_signatures_are_normalised() {
        let key = SecretKey::generate(Curve::Secp256k1);
        let message = b"\x03payload";
        let low = key.sign(message, tezos_crypto::SigningVersion::V1).unwrap();
        // n - s: the same signature with a high S.
        let order = hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
            .unwrap();
        let bytes = low.as_bytes();
        let mut high = bytes[..32].to_vec();
        let s = &bytes[32..];
        let mut borrow = 0i16;
        let mut negated = vec![0u8; 32];
        for i in (0..32).rev() {
            let d = i16::from(order[i]) - i16::from(s[i]) - borrow;
            negated[i] = (d.rem_euclid(256)) as u8;
            borrow = i16::from(d < 0);
        }
        high.extend_from_slice(&negated);
        let normalised = signature(Curve::Secp256k1, &high).unwrap();
        assert!(normalised.is_low_s());
        assert_eq!(normalised, low);
        assert!(signature(Curve::P256, &[0u8; 63]).is_err());
    }
}
