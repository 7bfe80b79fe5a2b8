//! Secret keys: parsing, signing as Octez signs, proofs of possession, deterministic
//! nonces, and key generation.
//!
//! Backends, chosen by measurement (see `benches/sign.rs`): Ed25519 with ed25519-dalek,
//! secp256k1 with libsecp256k1 (RFC 6979 nonces, low-S, byte-identical to Octez), P-256
//! with OpenSSL (random nonce, as Octez; normalised to low-S), BLS with blst.

use crate::base58::{self, Prefix};
use crate::error::CryptoError;
use crate::hash::blake2b_256;
use crate::ids::Curve;
use crate::public_key::{self, bls_dst, p256_group, P256PublicKey, PublicKey, SECP256K1};
use crate::signature::{ecdsa, Signature};
use crate::version::SigningVersion;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::pkey::Private;
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// A secret key of any of the four curves.
///
/// Secret bytes live only in buffers that are wiped on drop; `Debug` prints the curve
/// and `REDACTED`; there is no `Display` and no `Serialize`.
#[derive(Clone)]
pub struct SecretKey {
    /// The 32 bytes of the b58check payload (Ed25519 seed, big-endian ECDSA scalar,
    /// little-endian BLS scalar): what gets encrypted and what keys deterministic nonces.
    secret: Zeroizing<[u8; 32]>,
    signer: Signer,
    public: PublicKey,
}

#[derive(Clone)]
enum Signer {
    /// Wiped on drop by ed25519-dalek (`zeroize` feature).
    Ed25519(ed25519_dalek::SigningKey),
    Secp256k1(Secp256k1Secret),
    /// OpenSSL frees the private scalar with `BN_clear_free`.
    P256(EcKey<Private>),
    Bls(BlsSecret),
}

/// libsecp256k1's key does not wipe itself; this wrapper does on drop.
#[derive(Clone)]
struct Secp256k1Secret(secp256k1::SecretKey);

impl Secp256k1Secret {
    fn erase(&mut self) {
        self.0.non_secure_erase();
    }
}

impl Drop for Secp256k1Secret {
    fn drop(&mut self) {
        self.erase();
    }
}

/// blst wipes its key on drop too; this wrapper makes it explicit and testable.
#[derive(Clone)]
struct BlsSecret(blst::min_pk::SecretKey);

impl BlsSecret {
    fn erase(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl Drop for BlsSecret {
    fn drop(&mut self) {
        self.erase();
    }
}

const SECRET_KEY_PREFIXES: [Prefix; 5] = [
    Prefix::EdskSeed,
    Prefix::EdskExpanded,
    Prefix::Spsk,
    Prefix::P2sk,
    Prefix::BLsk,
];

const ENCRYPTED_PREFIXES: [Prefix; 4] =
    [Prefix::Edesk, Prefix::Spesk, Prefix::P2esk, Prefix::BLesk];

impl SecretKey {
    /// Parse `edsk…` (32-byte seed, or Octez's 64-byte seed ‖ public key, whose public
    /// half must match the seed), `spsk…`, `p2sk…` or `BLsk…` (little-endian scalar).
    /// Encrypted keys (`edesk…` …) are refused with [`CryptoError::Encrypted`].
    pub fn from_b58check(s: &str) -> Result<Self, CryptoError> {
        let (prefix, payload) = match base58::decode_any_secret(s, &SECRET_KEY_PREFIXES) {
            Ok(found) => found,
            Err(crate::Base58Error::UnknownPrefix) => {
                return Err(match base58::decode_any(s, &ENCRYPTED_PREFIXES) {
                    Ok((p, _)) => CryptoError::Encrypted { prefix: p.name() },
                    Err(_) => CryptoError::UnexpectedKind {
                        expected: "a secret key (edsk, spsk, p2sk or BLsk)",
                    },
                })
            }
            Err(e) => return Err(e.into()),
        };
        let curve = match prefix {
            Prefix::EdskSeed | Prefix::EdskExpanded => Curve::Ed25519,
            Prefix::Spsk => Curve::Secp256k1,
            Prefix::P2sk => Curve::P256,
            _ => Curve::Bls12_381,
        };
        Self::from_bytes(curve, &payload)
    }

    /// The b58check form (`edsk…` 32-byte seed form, `spsk…`, `p2sk…`, `BLsk…`), in a
    /// [`Zeroizing`] string that is wiped when dropped.
    pub fn to_b58check(&self) -> Zeroizing<String> {
        let prefix = match self.curve() {
            Curve::Ed25519 => Prefix::EdskSeed,
            Curve::Secp256k1 => Prefix::Spsk,
            Curve::P256 => Prefix::P2sk,
            Curve::Bls12_381 => Prefix::BLsk,
        };
        base58::encode_secret(prefix, &*self.secret)
    }

    /// A key of `curve` from its raw payload bytes: 32 bytes (an Ed25519 seed, a
    /// big-endian secp256k1 or P-256 scalar, a little-endian BLS scalar), or for Ed25519
    /// also 64 bytes of seed ‖ public key.
    pub fn from_bytes(curve: Curve, bytes: &[u8]) -> Result<Self, CryptoError> {
        let (seed, expected_public) = match (curve, bytes.len()) {
            (Curve::Ed25519, 64) => bytes.split_at(32),
            _ => (bytes, &[][..]),
        };
        let secret: Zeroizing<[u8; 32]> =
            Zeroizing::new(seed.try_into().map_err(|_| CryptoError::WrongLength {
                what: "a secret key",
                expected: 32,
                found: bytes.len(),
            })?);
        let key = Self::from_secret(curve, secret)?;
        if !expected_public.is_empty() && key.public.as_bytes() != expected_public {
            // A 64-byte edsk whose halves disagree is a damaged key file: refuse it.
            return Err(CryptoError::InvalidSecretKey {
                curve,
                reason: "the public key stored after the seed does not belong to it",
            });
        }
        Ok(key)
    }

    fn from_secret(curve: Curve, secret: Zeroizing<[u8; 32]>) -> Result<Self, CryptoError> {
        let invalid = |reason| CryptoError::InvalidSecretKey { curve, reason };
        let (signer, public) = match curve {
            Curve::Ed25519 => {
                let key = ed25519_dalek::SigningKey::from_bytes(&secret);
                let public = PublicKey::from_ed25519(key.verifying_key());
                (Signer::Ed25519(key), public)
            }
            Curve::Secp256k1 => {
                let key = secp256k1::SecretKey::from_byte_array(&secret)
                    .map_err(|_| invalid("the scalar must be between 1 and the group order"))?;
                let public = PublicKey::from_secp256k1(secp256k1::PublicKey::from_secret_key(
                    &SECP256K1, &key,
                ));
                (Signer::Secp256k1(Secp256k1Secret(key)), public)
            }
            Curve::P256 => {
                if *secret == [0; 32] || *secret >= ecdsa::P256_ORDER {
                    return Err(invalid("the scalar must be between 1 and the group order"));
                }
                let (key, public) = p256_key(&secret)?;
                (Signer::P256(key), public)
            }
            Curve::Bls12_381 => {
                // Tezos writes the scalar little-endian; blst reads it big-endian.
                let mut big_endian = Zeroizing::new(*secret);
                big_endian.reverse();
                let key = blst::min_pk::SecretKey::from_bytes(&*big_endian)
                    .map_err(|_| invalid("the scalar must be between 1 and the group order"))?;
                let public = PublicKey::from_bls(key.sk_to_pk());
                (Signer::Bls(BlsSecret(key)), public)
            }
        };
        Ok(SecretKey {
            secret,
            signer,
            public,
        })
    }

    /// A new key from the operating system's random source.
    pub fn generate(curve: Curve) -> SecretKey {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            OsRng.fill_bytes(&mut *bytes);
            if curve == Curve::Bls12_381 {
                // As Octez: the IETF KeyGen from 32 bytes of input keying material.
                let Ok(key) = blst::min_pk::SecretKey::key_gen(&*bytes, &[]) else {
                    continue;
                };
                let mut little_endian = Zeroizing::new(key.to_bytes());
                little_endian.reverse();
                bytes = little_endian;
            }
            // Only a scalar ≥ the group order (probability ~2⁻¹²⁸) is refused: draw again.
            if let Ok(key) = Self::from_secret(curve, bytes) {
                return key;
            }
        }
    }

    pub fn curve(&self) -> Curve {
        self.public.curve()
    }

    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// The secret key's 32 payload bytes (see [`SecretKey::from_bytes`]), for handing the
    /// key to a backend that imports it (an HSM). Wiped when dropped.
    pub fn expose_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(*self.secret)
    }

    /// Sign `msg` as Octez signs with `version`: tz1–tz3 over Blake2b-256(msg) (ECDSA
    /// signatures always low-S), tz4 over the raw message with the version's BLS
    /// ciphersuite (v0 has none: [`CryptoError::UnsupportedVersion`]).
    pub fn sign(&self, msg: &[u8], version: SigningVersion) -> Result<Signature, CryptoError> {
        match &self.signer {
            Signer::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                Ok(Signature::Ed25519(key.sign(&blake2b_256(msg)).to_bytes()))
            }
            Signer::Secp256k1(key) => {
                let digest = secp256k1::Message::from_digest(blake2b_256(msg));
                // RFC 6979 nonce; libsecp256k1 already returns the low-S form.
                let sig = SECP256K1.sign_ecdsa(&digest, &key.0).serialize_compact();
                Ok(Signature::Secp256k1(sig))
            }
            Signer::P256(key) => {
                let sig = EcdsaSig::sign(&blake2b_256(msg), key).map_err(public_key::backend)?;
                let mut out = [0u8; 64];
                let r = sig.r().to_vec_padded(32).map_err(public_key::backend)?;
                let s = sig.s().to_vec_padded(32).map_err(public_key::backend)?;
                for (d, v) in out.iter_mut().zip(r.iter().chain(s.iter())) {
                    *d = *v;
                }
                Ok(Signature::P256(ecdsa::normalize_s(
                    &out,
                    &ecdsa::P256_ORDER,
                )))
            }
            Signer::Bls(key) => {
                // A BLS signer's public key is BLS: both are built from the same secret.
                let PublicKey::Bls(public) = &self.public else {
                    return Err(CryptoError::NotBls {
                        curve: self.public.curve(),
                    });
                };
                let (dst, aug) = public.signature_domain(version)?;
                Ok(Signature::Bls(key.0.sign(msg, dst, aug).compress()))
            }
        }
    }

    /// A BLS proof of possession: this key signs, with the PoP ciphersuite, its own
    /// public key or, as Octez's `bls_pk` override does, the given BLS public key.
    pub fn prove_possession(
        &self,
        override_pk: Option<&PublicKey>,
    ) -> Result<Signature, CryptoError> {
        let Signer::Bls(key) = &self.signer else {
            return Err(CryptoError::NotBls {
                curve: self.curve(),
            });
        };
        let signed = override_pk.unwrap_or(&self.public);
        if signed.curve() != Curve::Bls12_381 {
            return Err(CryptoError::WrongCurve {
                expected: Curve::Bls12_381,
                found: "a public key of another curve",
            });
        }
        Ok(Signature::Bls(
            key.0.sign(signed.as_bytes(), bls_dst::POP, &[]).compress(),
        ))
    }

    /// HMAC-SHA256 keyed with the 32 secret bytes of the b58check payload, over `data`
    /// (Octez's `deterministic_nonce`, for every curve).
    pub fn deterministic_nonce(&self, data: &[u8]) -> [u8; 32] {
        // HMAC pads a short key with zeros to the block size, so a zero-padded 64-byte
        // key is the same key, and this constructor cannot fail.
        let mut block = Zeroizing::new([0u8; 64]);
        for (d, s) in block.iter_mut().zip(self.secret.iter()) {
            *d = *s;
        }
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&(*block).into());
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Blake2b-256 of [`SecretKey::deterministic_nonce`].
    pub fn deterministic_nonce_hash(&self, data: &[u8]) -> [u8; 32] {
        blake2b_256(&self.deterministic_nonce(data))
    }

    /// The 32 secret bytes, for encryption only.
    pub(crate) fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }
}

/// An OpenSSL P-256 key and its public key for a scalar already checked to be in range.
fn p256_key(secret: &[u8; 32]) -> Result<(EcKey<Private>, PublicKey), CryptoError> {
    let group = p256_group()?;
    let mut ctx = BigNumContext::new().map_err(public_key::backend)?;
    let mut scalar = BigNum::from_slice(secret).map_err(public_key::backend)?;
    let built = EcPoint::new(group).and_then(|mut point| {
        point.mul_generator2(group, &scalar, &mut ctx)?;
        let key = EcKey::from_private_components(group, &scalar, &point)?;
        Ok((key, point))
    });
    // OpenSSL copied the scalar into the key; wipe our copy whatever happened.
    scalar.clear();
    let (key, point) = built.map_err(public_key::backend)?;
    let public = P256PublicKey::from_point(group, &point)?;
    Ok((key, public))
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}, REDACTED)", self.curve())
    }
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
    fn exposed_secret_bytes_rebuild_the_key_and_ec_keys_have_their_uncompressed_point() {
        for curve in Curve::ALL {
            let key = SecretKey::generate(curve);
            let again = SecretKey::from_bytes(curve, &*key.expose_secret_bytes()).unwrap();
            assert_eq!(again.public_key(), key.public_key());
            let public = key.public_key();
            match (curve, public.to_uncompressed_point()) {
                (Curve::Secp256k1 | Curve::P256, Some(point)) => {
                    assert_eq!(point.len(), 65);
                    assert_eq!(point[0], 4);
                    assert_eq!(point[1..33], public.as_bytes()[1..]);
                    let odd = point[64] & 1 == 1;
                    assert_eq!(public.as_bytes()[0], if odd { 3 } else { 2 });
                    assert_eq!(
                        PublicKey::from_uncompressed_point(curve, &point).unwrap(),
                        public
                    );
                    // A y that is not the curve's for this x is refused, whatever its parity.
                    let mut bent = point.clone();
                    bent[64] ^= 0x02;
                    assert!(PublicKey::from_uncompressed_point(curve, &bent).is_err());
                    assert!(PublicKey::from_uncompressed_point(curve, &point[1..]).is_err());
                }
                (Curve::Ed25519 | Curve::Bls12_381, None) => {}
                (curve, point) => panic!("{curve}: {point:?}"),
            }
        }
    }
    use zeroize::ZeroizeOnDrop;

    #[test]
    fn debug_shows_the_curve_and_no_secret() {
        for curve in Curve::ALL {
            let key = SecretKey::generate(curve);
            let debug = format!("{key:?}");
            assert_eq!(debug, format!("SecretKey({curve}, REDACTED)"));
            assert!(!debug.contains(key.to_b58check().as_str()));
            assert!(!debug.contains(&hex::encode(*key.secret)));
        }
    }

    #[test]
    fn secret_holders_wipe_themselves_on_drop() {
        fn wipes_on_drop<T: ZeroizeOnDrop>() {}
        // Compile-time: each holder of secret bytes is a type that wipes on drop.
        wipes_on_drop::<Zeroizing<[u8; 32]>>();
        wipes_on_drop::<ed25519_dalek::SigningKey>();
        // The secp256k1 and BLS wrappers' drops erase the scalar.
        let key = SecretKey::generate(Curve::Secp256k1);
        let Signer::Secp256k1(inner) = &key.signer else {
            return assert_eq!(key.curve(), Curve::Secp256k1);
        };
        let mut copy = inner.clone();
        copy.erase();
        assert_ne!(copy.0.secret_bytes(), *key.secret);
        let key = SecretKey::generate(Curve::Bls12_381);
        let Signer::Bls(inner) = &key.signer else {
            return assert_eq!(key.curve(), Curve::Bls12_381);
        };
        let mut copy = inner.clone();
        assert_ne!(copy.0.to_bytes(), [0; 32]);
        copy.erase();
        assert_eq!(copy.0.to_bytes(), [0; 32]);
    }

    #[test]
    fn out_of_range_scalars_are_refused() {
        for curve in [Curve::Secp256k1, Curve::P256, Curve::Bls12_381] {
            assert!(matches!(
                SecretKey::from_bytes(curve, &[0; 32]),
                Err(CryptoError::InvalidSecretKey { .. })
            ));
            assert!(matches!(
                SecretKey::from_bytes(curve, &[0xff; 32]),
                Err(CryptoError::InvalidSecretKey { .. })
            ));
        }
        let order = ecdsa::P256_ORDER;
        assert!(SecretKey::from_bytes(Curve::P256, &order).is_err());
        let mut below = order;
        below[31] -= 1;
        assert!(SecretKey::from_bytes(Curve::P256, &below).is_ok());
        assert!(matches!(
            SecretKey::from_bytes(Curve::Ed25519, &[1; 31]),
            Err(CryptoError::WrongLength { .. })
        ));
    }

    #[test]
    fn generated_keys_round_trip_through_b58() {
        for curve in Curve::ALL {
            let key = SecretKey::generate(curve);
            let again = SecretKey::from_b58check(&key.to_b58check());
            assert_eq!(again.map(|k| k.public_key()), Ok(key.public_key()));
        }
    }
}
