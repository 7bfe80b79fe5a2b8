//! Transit's "bring your own key" import format: the key's PKCS#8 DER wrapped with a fresh
//! AES-256 key (AES key wrap with padding, RFC 5649), that AES key encrypted to the engine's
//! RSA wrapping key (RSA-OAEP, SHA-256), the two concatenated. Everything secret stays in
//! wiped memory here; OpenSSL's own buffers are out of reach.

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::encrypt::Encrypter;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use openssl::rsa::Padding;
use tezos_crypto::{Curve, SecretKey};
use zeroize::Zeroizing;

/// RFC 5649's alternative initial value (the high half; the low half is the length).
const KWP_AIV: [u8; 4] = [0xa6, 0x59, 0x59, 0xa6];

/// The import ciphertext of `key` for the engine's wrapping key `wrapping_pem`.
pub(crate) fn wrap_for_import(key: &SecretKey, wrapping_pem: &[u8]) -> Result<Vec<u8>, String> {
    let pkcs8 = pkcs8(key)?;
    let mut ephemeral = Zeroizing::new([0u8; 32]);
    openssl::rand::rand_bytes(&mut ephemeral[..]).map_err(|e| e.to_string())?;
    let wrapping = PKey::public_key_from_pem(wrapping_pem)
        .map_err(|e| format!("the engine's wrapping key is not a PEM public key: {e}"))?;
    let mut encrypter = Encrypter::new(&wrapping).map_err(|e| e.to_string())?;
    encrypter
        .set_rsa_padding(Padding::PKCS1_OAEP)
        .and_then(|()| encrypter.set_rsa_oaep_md(MessageDigest::sha256()))
        .and_then(|()| encrypter.set_rsa_mgf1_md(MessageDigest::sha256()))
        .map_err(|e| e.to_string())?;
    let mut out = vec![
        0u8;
        encrypter
            .encrypt_len(&ephemeral[..])
            .map_err(|e| e.to_string())?
    ];
    let written = encrypter
        .encrypt(&ephemeral[..], &mut out)
        .map_err(|e| format!("RSA-OAEP: {e}"))?;
    out.truncate(written);
    out.extend_from_slice(&wrap_pad(&ephemeral, &pkcs8)?);
    Ok(out)
}

/// AES-256 key wrap with padding (RFC 5649).
fn wrap_pad(kek: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>, String> {
    let length = u32::try_from(plaintext.len()).map_err(|_| "the key is too long".to_owned())?;
    let mut iv = [0u8; 8];
    for (slot, byte) in iv
        .iter_mut()
        .zip(KWP_AIV.iter().chain(length.to_be_bytes().iter()))
    {
        *slot = *byte;
    }
    let mut padded = Zeroizing::new(plaintext.to_vec());
    padded.resize(plaintext.len().div_ceil(8) * 8, 0);
    let key = openssl::aes::AesKey::new_encrypt(kek).map_err(|_| "AES key".to_owned())?;
    if padded.len() <= 8 {
        // RFC 5649's one-semiblock case; a PKCS#8 key is always longer.
        return Err("the key is too short to wrap".to_owned());
    }
    let mut out = vec![0u8; padded.len() + 8];
    openssl::aes::wrap_key(&key, Some(iv), &mut out, &padded)
        .map_err(|_| "AES key wrap failed".to_owned())?;
    Ok(out)
}

/// The secret key as PKCS#8 DER, in wiped memory.
fn pkcs8(key: &SecretKey) -> Result<Zeroizing<Vec<u8>>, String> {
    let bytes = key.expose_secret_bytes();
    let pkey = match key.curve() {
        Curve::Ed25519 => PKey::private_key_from_raw_bytes(&bytes[..], Id::ED25519),
        Curve::P256 => (|| {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            let d = BigNum::from_slice(&bytes[..])?;
            let mut ctx = BigNumContext::new()?;
            let mut q = EcPoint::new(&group)?;
            q.mul_generator2(&group, &d, &mut ctx)?;
            PKey::from_ec_key(EcKey::from_private_components(&group, &d, &q)?)
        })(),
        other => return Err(format!("transit cannot hold {other} keys")),
    }
    .map_err(|e| e.to_string())?;
    pkey.private_key_to_pkcs8()
        .map(Zeroizing::new)
        .map_err(|e| e.to_string())
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

    /// The wrap opens with RFC 3394 unwrap under RFC 5649's AIV carrying the length, the
    /// padding zero (OpenBao's acceptance of the format is tested on the real server).
    #[test]
    fn key_wrap_with_padding_unwraps_to_the_plaintext_and_its_length() {
        let kek = [7u8; 32];
        let plaintext = b"twenty-octet secret!";
        let wrapped = wrap_pad(&kek, plaintext).unwrap();
        assert_eq!(wrapped.len(), 24 + 8);
        let key = openssl::aes::AesKey::new_decrypt(&kek).unwrap();
        let mut out = vec![0u8; 24];
        let mut iv = [0u8; 8];
        iv[..4].copy_from_slice(&KWP_AIV);
        iv[4..].copy_from_slice(&20u32.to_be_bytes());
        openssl::aes::unwrap_key(&key, Some(iv), &mut out, &wrapped).unwrap();
        assert_eq!(&out[..20], plaintext);
        assert!(out[20..].iter().all(|&b| b == 0));
    }
}
