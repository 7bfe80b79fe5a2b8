//! Byte-level pieces of the Cloud KMS protocol: the CRC32C checksums its integrity fields
//! carry, and the wrapping of a key for an import job (`RSA_OAEP_3072_SHA256_AES_256`: a
//! fresh AES-256 key encrypted with RSA-OAEP/SHA-256 to the job's public key, followed by
//! the PKCS#8 key wrapped under it with AES key wrap with padding, RFC 5649).

use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use tezos_crypto::{Curve, SecretKey};
use zeroize::Zeroizing;

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as Cloud KMS checks it.
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}

/// The import job's public key must be the 3072-bit RSA key the method names.
const IMPORT_RSA_BITS: u32 = 3072;

/// The secret key as PKCS#8 DER, the form Cloud KMS imports.
pub(crate) fn pkcs8(key: &SecretKey) -> Result<Zeroizing<Vec<u8>>, String> {
    let secret = key.expose_secret_bytes();
    let fail = |e: openssl::error::ErrorStack| format!("encoding the key as PKCS#8: {e}");
    let pkey = match key.curve() {
        Curve::Ed25519 => {
            PKey::private_key_from_raw_bytes(&secret[..], Id::ED25519).map_err(fail)?
        }
        curve @ (Curve::Secp256k1 | Curve::P256) => {
            let nid = if curve == Curve::P256 {
                Nid::X9_62_PRIME256V1
            } else {
                Nid::SECP256K1
            };
            let group = EcGroup::from_curve_name(nid).map_err(fail)?;
            let d = openssl::bn::BigNum::from_slice(&secret[..]).map_err(fail)?;
            let mut ctx = openssl::bn::BigNumContext::new().map_err(fail)?;
            let mut point = EcPoint::new(&group).map_err(fail)?;
            point.mul_generator2(&group, &d, &mut ctx).map_err(fail)?;
            let ec = EcKey::from_private_components(&group, &d, &point).map_err(fail)?;
            PKey::from_ec_key(ec).map_err(fail)?
        }
        Curve::Bls12_381 => return Err("BLS keys cannot be imported into Cloud KMS".to_owned()),
    };
    Ok(Zeroizing::new(pkey.private_key_to_pkcs8().map_err(fail)?))
}

/// The `wrappedKey` of an import for the job whose public key is `job_pem`.
pub(crate) fn wrap_for_import(job_pem: &[u8], pkcs8: &[u8]) -> Result<Vec<u8>, String> {
    let fail = |e: openssl::error::ErrorStack| format!("wrapping the key: {e}");
    let job = PKey::public_key_from_pem(job_pem)
        .map_err(|_| "the import job's public key is not a PEM public key".to_owned())?;
    let rsa = job
        .rsa()
        .map_err(|_| "the import job's public key is not an RSA key".to_owned())?;
    if rsa.size() * 8 != IMPORT_RSA_BITS {
        return Err(format!(
            "the import job's RSA key has {} bits, not {IMPORT_RSA_BITS}",
            rsa.size() * 8
        ));
    }
    let mut aes_key = Zeroizing::new([0u8; 32]);
    openssl::rand::rand_bytes(&mut aes_key[..]).map_err(fail)?;

    let mut encrypter = openssl::encrypt::Encrypter::new(&job).map_err(fail)?;
    encrypter
        .set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP)
        .map_err(fail)?;
    encrypter
        .set_rsa_oaep_md(openssl::hash::MessageDigest::sha256())
        .map_err(fail)?;
    encrypter
        .set_rsa_mgf1_md(openssl::hash::MessageDigest::sha256())
        .map_err(fail)?;
    let mut encrypted = vec![0u8; encrypter.encrypt_len(&aes_key[..]).map_err(fail)?];
    let written = encrypter
        .encrypt(&aes_key[..], &mut encrypted)
        .map_err(fail)?;
    encrypted.truncate(written);

    let wrapped = kwp_wrap(&aes_key[..], pkcs8)?;
    encrypted.extend_from_slice(&wrapped);
    Ok(encrypted)
}

/// AES key wrap with padding (RFC 5649) of `plain` (more than 8 bytes) under `kek`.
pub(crate) fn kwp_wrap(kek: &[u8], plain: &[u8]) -> Result<Vec<u8>, String> {
    let length = u32::try_from(plain.len()).map_err(|_| "key too long to wrap".to_owned())?;
    if plain.len() <= 8 {
        return Err("keys of 8 bytes or less are not wrapped here".to_owned());
    }
    let key = openssl::aes::AesKey::new_encrypt(kek)
        .map_err(|_| "the wrapping key is not an AES key".to_owned())?;
    // The alternative initial value: A65959A6 ‖ the plaintext length, big-endian.
    let mut iv = [0u8; 8];
    for (d, s) in iv.iter_mut().zip(
        [0xA6u8, 0x59, 0x59, 0xA6]
            .iter()
            .chain(length.to_be_bytes().iter()),
    ) {
        *d = *s;
    }
    let padded_len = plain.len().div_ceil(8) * 8;
    let mut padded = Zeroizing::new(vec![0u8; padded_len]);
    for (d, s) in padded.iter_mut().zip(plain) {
        *d = *s;
    }
    let mut out = vec![0u8; padded_len + 8];
    let written = openssl::aes::wrap_key(&key, Some(iv), &mut out, &padded)
        .map_err(|_| "AES key wrap failed".to_owned())?;
    out.truncate(written);
    Ok(out)
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
    fn crc32c_check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn kwp_matches_rfc_5649() {
        // RFC 5649 §6, the 20-octet example (a 192-bit KEK).
        let kek = hex::decode("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8").unwrap();
        let key = hex::decode("c37b7e6492584340bed12207808941155068f738").unwrap();
        assert_eq!(
            hex::encode(kwp_wrap(&kek, &key).unwrap()),
            "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"
        );
    }

    #[test]
    fn wrapped_keys_open_with_the_jobs_private_key() {
        let job = PKey::from_rsa(openssl::rsa::Rsa::generate(3072).unwrap()).unwrap();
        let pem = job.public_key_to_pem().unwrap();
        let secret = SecretKey::generate(Curve::P256);
        let der = pkcs8(&secret).unwrap();
        let wrapped = wrap_for_import(&pem, &der).unwrap();
        let (encrypted, kwp) = wrapped.split_at(384);
        let mut decrypter = openssl::encrypt::Decrypter::new(&job).unwrap();
        decrypter
            .set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP)
            .unwrap();
        decrypter
            .set_rsa_oaep_md(openssl::hash::MessageDigest::sha256())
            .unwrap();
        decrypter
            .set_rsa_mgf1_md(openssl::hash::MessageDigest::sha256())
            .unwrap();
        let mut aes = vec![0u8; decrypter.decrypt_len(encrypted).unwrap()];
        let n = decrypter.decrypt(encrypted, &mut aes).unwrap();
        assert_eq!(n, 32);
        assert_eq!(kwp.len(), der.len().div_ceil(8) * 8 + 8);
        // A 2048-bit job key is not the documented method's.
        let small = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        assert!(wrap_for_import(&small.public_key_to_pem().unwrap(), &der).is_err());
    }

    #[test]
    fn pkcs8_keys_hold_the_same_public_key() {
        for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
            let secret = SecretKey::generate(curve);
            let der = pkcs8(&secret).unwrap();
            let parsed = PKey::private_key_from_pkcs8(&der).unwrap();
            let spki = parsed.public_key_to_der().unwrap();
            let public = tezos_crypto::PublicKey::from_spki_der(&spki).unwrap();
            assert_eq!(public, secret.public_key(), "{curve}");
        }
        assert!(pkcs8(&SecretKey::generate(Curve::Bls12_381)).is_err());
    }
}
