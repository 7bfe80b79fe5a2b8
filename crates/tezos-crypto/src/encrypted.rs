//! Password-encrypted secret keys (`edesk…`, `spesk…`, `p2esk…`, `BLesk…`), as the
//! Octez client writes them.
//!
//! Payload: `salt(8) ‖ XSalsa20-Poly1305(key, nonce = 0²⁴, secret(32))`, the tag first
//! (NaCl `secretbox`), with key = PBKDF2-HMAC-SHA512(password, salt, 32768 rounds, 32 bytes).
//! The all-zero nonce is safe because every encryption draws a fresh salt, hence a fresh key.

use crate::base58::{self, Prefix};
use crate::error::CryptoError;
use crate::ids::Curve;
use crate::secret_key::SecretKey;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use rand_core::{OsRng, RngCore};
use sha2::Sha512;
use zeroize::Zeroizing;

/// PBKDF2 rounds Octez uses.
pub const PBKDF2_ROUNDS: u32 = 32_768;
const SALT_LEN: usize = 8;

const ENCRYPTED_PREFIXES: [Prefix; 4] =
    [Prefix::Edesk, Prefix::Spesk, Prefix::P2esk, Prefix::BLesk];

fn curve_of(prefix: Prefix) -> Curve {
    match prefix {
        Prefix::Edesk => Curve::Ed25519,
        Prefix::Spesk => Curve::Secp256k1,
        Prefix::P2esk => Curve::P256,
        _ => Curve::Bls12_381,
    }
}

fn prefix_of(curve: Curve) -> Prefix {
    match curve {
        Curve::Ed25519 => Prefix::Edesk,
        Curve::Secp256k1 => Prefix::Spesk,
        Curve::P256 => Prefix::P2esk,
        Curve::Bls12_381 => Prefix::BLesk,
    }
}

fn cipher(password: &[u8], salt: &[u8]) -> XSalsa20Poly1305 {
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, PBKDF2_ROUNDS, &mut *key);
    // The cipher wipes its own copy of the key on drop.
    XSalsa20Poly1305::new(&(*key).into())
}

/// Whether `s` is a well-formed encrypted secret key (checksum and length included).
pub fn is_encrypted(s: &str) -> bool {
    base58::decode_any(s, &ENCRYPTED_PREFIXES).is_ok()
}

/// Decrypt an encrypted secret key. A wrong password is [`CryptoError::BadPassword`].
pub fn decrypt(esk_b58: &str, password: &[u8]) -> Result<SecretKey, CryptoError> {
    let (prefix, payload) =
        base58::decode_any(esk_b58, &ENCRYPTED_PREFIXES).map_err(|e| match e {
            crate::Base58Error::UnknownPrefix => CryptoError::UnexpectedKind {
                expected: "an encrypted secret key (edesk, spesk, p2esk or BLesk)",
            },
            other => CryptoError::Base58(other),
        })?;
    let (salt, sealed) = payload.split_at(SALT_LEN.min(payload.len()));
    let plaintext = Zeroizing::new(
        cipher(password, salt)
            .decrypt(&Default::default(), sealed)
            .map_err(|_| CryptoError::BadPassword)?,
    );
    SecretKey::from_bytes(curve_of(prefix), &plaintext)
}

/// Encrypt `key` under `password` with a fresh random salt.
pub fn encrypt(key: &SecretKey, password: &[u8]) -> String {
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    encrypt_with_salt(key, password, salt)
}

/// Encrypt with a given salt: deterministic, for reproducing a known encrypted key.
/// Never reuse a salt with the same password for different keys.
pub fn encrypt_with_salt(key: &SecretKey, password: &[u8], salt: [u8; SALT_LEN]) -> String {
    let mut buffer = Zeroizing::new(Vec::with_capacity(32 + 16));
    buffer.extend_from_slice(key.secret_bytes());
    let sealed = cipher(password, &salt).encrypt(&Default::default(), buffer.as_slice());
    let mut payload = Vec::with_capacity(SALT_LEN + 48);
    payload.extend_from_slice(&salt);
    // Encryption of 32 bytes into a Vec cannot fail; an empty payload would not decode.
    payload.extend_from_slice(&sealed.unwrap_or_default());
    base58::encode(prefix_of(key.curve()), &payload)
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
    fn round_trip_each_curve_and_refuse_a_wrong_password() {
        for curve in Curve::ALL {
            let key = SecretKey::generate(curve);
            let esk = encrypt(&key, b"correct horse");
            assert!(esk.starts_with(prefix_of(curve).name()), "{esk}");
            assert!(is_encrypted(&esk));
            assert_eq!(
                decrypt(&esk, b"correct horse").map(|k| k.public_key()),
                Ok(key.public_key())
            );
            assert_eq!(
                decrypt(&esk, b"correct horsf").map(|k| k.public_key()),
                Err(CryptoError::BadPassword)
            );
            // The plain key is not mistaken for an encrypted one.
            assert!(!is_encrypted(&key.to_b58check()));
            assert!(matches!(
                SecretKey::from_b58check(&esk),
                Err(CryptoError::Encrypted { .. })
            ));
        }
    }

    #[test]
    fn a_fresh_salt_each_time() {
        let key = SecretKey::generate(Curve::Ed25519);
        assert_ne!(encrypt(&key, b"pw"), encrypt(&key, b"pw"));
        assert_eq!(
            encrypt_with_salt(&key, b"pw", [1; 8]),
            encrypt_with_salt(&key, b"pw", [1; 8])
        );
    }
}
