//! Public keys of tz1–tz4, parsed once and kept in the form each library verifies with,
//! so that checking a signature after every signing costs no re-parsing.

use crate::base58::{self, Base58Error, Prefix};
use crate::error::CryptoError;
use crate::hash::{blake2b_160, blake2b_256};
use crate::ids::{b58_string_forms, Curve, PublicKeyHash};
use crate::signature::Signature;
use crate::version::{BlsScheme, SigningVersion};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::Public;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

/// Domain separation tags of the BLS12-381 min-pk ciphersuites Tezos uses.
pub mod bls_dst {
    /// Signatures with signing version 2 and 3.
    pub const SIG_POP: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
    /// Signatures with signing version 1 (the message is prefixed with the public key).
    pub const SIG_AUG: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_AUG_";
    /// Proofs of possession.
    pub const POP: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
}

/// One secp256k1 context for the process: creating one costs far more than a signature.
pub(crate) static SECP256K1: LazyLock<secp256k1::Secp256k1<secp256k1::All>> =
    LazyLock::new(secp256k1::Secp256k1::new);

/// The P-256 group, built once; `None` only if OpenSSL lacks the curve.
pub(crate) static P256_GROUP: LazyLock<Option<EcGroup>> =
    LazyLock::new(|| EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).ok());

pub(crate) fn p256_group() -> Result<&'static EcGroup, CryptoError> {
    P256_GROUP.as_ref().ok_or_else(|| CryptoError::Backend {
        curve: Curve::P256,
        detail: "OpenSSL has no P-256 (prime256v1) group".to_owned(),
    })
}

/// A Tezos public key.
#[derive(Clone)]
#[non_exhaustive]
pub enum PublicKey {
    Ed25519(Ed25519PublicKey),
    Secp256k1(Secp256k1PublicKey),
    P256(P256PublicKey),
    Bls(BlsPublicKey),
}

/// An Ed25519 public key (32 bytes).
#[derive(Clone, Copy)]
pub struct Ed25519PublicKey(ed25519_dalek::VerifyingKey);

/// A secp256k1 public key (33 bytes, compressed).
#[derive(Clone, Copy)]
pub struct Secp256k1PublicKey {
    bytes: [u8; 33],
    key: secp256k1::PublicKey,
}

/// A P-256 public key (33 bytes, compressed).
#[derive(Clone)]
pub struct P256PublicKey {
    bytes: [u8; 33],
    key: EcKey<Public>,
}

/// A BLS12-381 min-pk public key (48 bytes, compressed G1), checked to be in the group.
#[derive(Clone, Copy)]
pub struct BlsPublicKey {
    bytes: [u8; 48],
    key: blst::min_pk::PublicKey,
}

const PUBLIC_KEY_PREFIXES: [Prefix; 4] = [Prefix::Edpk, Prefix::Sppk, Prefix::P2pk, Prefix::BLpk];

impl PublicKey {
    /// Parse `edpk…`, `sppk…`, `p2pk…` or `BLpk…`, checking that the key is a valid point.
    pub fn from_b58check(s: &str) -> Result<Self, CryptoError> {
        let (prefix, payload) =
            base58::decode_any(s, &PUBLIC_KEY_PREFIXES).map_err(|e| match e {
                Base58Error::UnknownPrefix => CryptoError::UnexpectedKind {
                    expected: "a public key (edpk, sppk, p2pk or BLpk)",
                },
                other => CryptoError::Base58(other),
            })?;
        let curve = match prefix {
            Prefix::Edpk => Curve::Ed25519,
            Prefix::Sppk => Curve::Secp256k1,
            Prefix::P2pk => Curve::P256,
            _ => Curve::Bls12_381,
        };
        Self::from_bytes(curve, &payload)
    }

    pub fn to_b58check(&self) -> String {
        base58::encode(self.prefix(), self.as_bytes())
    }

    /// A key of `curve` from its raw bytes (32, 33, 33 or 48).
    pub fn from_bytes(curve: Curve, bytes: &[u8]) -> Result<Self, CryptoError> {
        match curve {
            Curve::Ed25519 => {
                let raw: [u8; 32] = array(bytes, "an Ed25519 public key")?;
                ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map(|k| PublicKey::Ed25519(Ed25519PublicKey(k)))
                    .map_err(|_| invalid(curve, "not a point of the curve"))
            }
            Curve::Secp256k1 => {
                let raw: [u8; 33] = array(bytes, "a secp256k1 public key")?;
                let key = secp256k1::PublicKey::from_byte_array_compressed(&raw)
                    .map_err(|_| invalid(curve, "not a compressed point of the curve"))?;
                Ok(PublicKey::Secp256k1(Secp256k1PublicKey { bytes: raw, key }))
            }
            Curve::P256 => {
                let raw: [u8; 33] = array(bytes, "a P-256 public key")?;
                Ok(PublicKey::P256(P256PublicKey::from_compressed(raw)?))
            }
            Curve::Bls12_381 => {
                let raw: [u8; 48] = array(bytes, "a BLS public key")?;
                // Decompression, subgroup membership and not-infinity, as Octez checks.
                let key = blst::min_pk::PublicKey::key_validate(&raw)
                    .map_err(|_| invalid(curve, "not a valid G1 point of the prime subgroup"))?;
                Ok(PublicKey::Bls(BlsPublicKey { bytes: raw, key }))
            }
        }
    }

    /// `tag ‖ key`, as in the binary encoding (tag 0–3 as in `pkh_bin`).
    pub fn from_tagged_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let (&tag, key) = bytes.split_first().ok_or(CryptoError::WrongLength {
            what: "a tagged public key",
            expected: 33,
            found: 0,
        })?;
        let curve = Curve::from_tag(tag).ok_or(CryptoError::UnknownTag(tag))?;
        Self::from_bytes(curve, key)
    }

    pub fn to_tagged_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.as_bytes().len());
        out.push(self.curve().tag());
        out.extend_from_slice(self.as_bytes());
        out
    }

    /// The raw key bytes, without tag.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PublicKey::Ed25519(k) => k.0.as_bytes(),
            PublicKey::Secp256k1(k) => &k.bytes,
            PublicKey::P256(k) => &k.bytes,
            PublicKey::Bls(k) => &k.bytes,
        }
    }

    pub const fn curve(&self) -> Curve {
        match self {
            PublicKey::Ed25519(_) => Curve::Ed25519,
            PublicKey::Secp256k1(_) => Curve::Secp256k1,
            PublicKey::P256(_) => Curve::P256,
            PublicKey::Bls(_) => Curve::Bls12_381,
        }
    }

    /// A secp256k1 or P-256 key from an uncompressed SEC1 point (`04 ‖ x ‖ y`, the form
    /// HSMs and devices return), checked to be a point of the curve (x and y both: a
    /// corrupted y is refused, not rounded to a parity bit), then compressed.
    pub fn from_uncompressed_point(curve: Curve, point: &[u8]) -> Result<Self, CryptoError> {
        let wrong = || invalid(curve, "not an uncompressed point of the curve");
        if point.len() != 65 || point.first() != Some(&0x04) {
            return Err(wrong());
        }
        let compressed: Vec<u8> = match curve {
            Curve::Secp256k1 => secp256k1::PublicKey::from_slice(point)
                .map_err(|_| wrong())?
                .serialize()
                .to_vec(),
            Curve::P256 => {
                let group = p256_group()?;
                let mut ctx = openssl::bn::BigNumContext::new().map_err(backend)?;
                let point = EcPoint::from_bytes(group, point, &mut ctx).map_err(|_| wrong())?;
                point
                    .to_bytes(
                        group,
                        openssl::ec::PointConversionForm::COMPRESSED,
                        &mut ctx,
                    )
                    .map_err(backend)?
            }
            Curve::Ed25519 | Curve::Bls12_381 => return Err(wrong()),
        };
        PublicKey::from_bytes(curve, &compressed)
    }

    /// A key from a DER SubjectPublicKeyInfo, the form cloud KMSs return (AWS
    /// `GetPublicKey`): Ed25519, secp256k1 or P-256; any other algorithm or curve is refused.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        let key = openssl::pkey::PKey::public_key_from_der(der).map_err(|_| not_spki())?;
        Self::from_openssl(&key)
    }

    /// [`PublicKey::from_spki_der`] for a PEM `PUBLIC KEY` block (Google Cloud KMS, Vault
    /// transit).
    pub fn from_spki_pem(pem: &[u8]) -> Result<Self, CryptoError> {
        let key = openssl::pkey::PKey::public_key_from_pem(pem).map_err(|_| not_spki())?;
        Self::from_openssl(&key)
    }

    fn from_openssl(key: &openssl::pkey::PKey<Public>) -> Result<Self, CryptoError> {
        match key.id() {
            openssl::pkey::Id::ED25519 => {
                let raw = key.raw_public_key().map_err(|_| not_spki())?;
                PublicKey::from_bytes(Curve::Ed25519, &raw)
            }
            openssl::pkey::Id::EC => {
                let ec = key.ec_key().map_err(|_| not_spki())?;
                let curve = match ec.group().curve_name() {
                    Some(Nid::X9_62_PRIME256V1) => Curve::P256,
                    Some(Nid::SECP256K1) => Curve::Secp256k1,
                    _ => {
                        return Err(CryptoError::UnsupportedPublicKey(
                            "an EC key of another curve",
                        ))
                    }
                };
                let mut ctx = openssl::bn::BigNumContext::new().map_err(backend)?;
                let point = ec
                    .public_key()
                    .to_bytes(
                        ec.group(),
                        openssl::ec::PointConversionForm::UNCOMPRESSED,
                        &mut ctx,
                    )
                    .map_err(backend)?;
                PublicKey::from_uncompressed_point(curve, &point)
            }
            _ => Err(CryptoError::UnsupportedPublicKey(
                "a key of another algorithm than Ed25519 or ECDSA",
            )),
        }
    }

    /// The key as an uncompressed SEC1 point (`04 ‖ x ‖ y`), the form PKCS#11 tokens
    /// store; `None` for Ed25519 and BLS keys, which have no such form.
    pub fn to_uncompressed_point(&self) -> Option<Vec<u8>> {
        match self {
            PublicKey::Secp256k1(key) => Some(key.key.serialize_uncompressed().to_vec()),
            PublicKey::P256(key) => {
                let group = p256_group().ok()?;
                let mut ctx = openssl::bn::BigNumContext::new().ok()?;
                key.key
                    .public_key()
                    .to_bytes(
                        group,
                        openssl::ec::PointConversionForm::UNCOMPRESSED,
                        &mut ctx,
                    )
                    .ok()
            }
            PublicKey::Ed25519(_) | PublicKey::Bls(_) => None,
        }
    }

    /// The address: Blake2b-160 of the raw key bytes.
    pub fn hash(&self) -> PublicKeyHash {
        PublicKeyHash::new(self.curve(), blake2b_160(self.as_bytes()))
    }

    /// Check `sig` over `msg` as Octez does: tz1–tz3 sign Blake2b-256(msg) whatever the
    /// version; tz4 signs the raw message with the version's ciphersuite (none in v0).
    /// A generic `sig…` signature is read as one of this key's curve. For tz2 only low-S
    /// signatures verify (libsecp256k1's rule); for tz3 both forms do (HACL*'s rule).
    pub fn verify(
        &self,
        msg: &[u8],
        sig: &Signature,
        version: SigningVersion,
    ) -> Result<(), CryptoError> {
        let sig = sig.with_curve(self.curve())?;
        match (self, &sig) {
            (PublicKey::Ed25519(k), Signature::Ed25519(s)) => {
                use ed25519_dalek::Verifier;
                let digest = blake2b_256(msg);
                k.0.verify(&digest, &ed25519_dalek::Signature::from_bytes(s))
                    .map_err(|_| CryptoError::VerificationFailed)
            }
            (PublicKey::Secp256k1(k), Signature::Secp256k1(s)) => {
                let sig = secp256k1::ecdsa::Signature::from_compact(s).map_err(|_| {
                    CryptoError::InvalidSignature {
                        curve: Curve::Secp256k1,
                        reason: "r or s is not below the group order",
                    }
                })?;
                let digest = secp256k1::Message::from_digest(blake2b_256(msg));
                SECP256K1
                    .verify_ecdsa(&digest, &sig, &k.key)
                    .map_err(|_| CryptoError::VerificationFailed)
            }
            (PublicKey::P256(k), Signature::P256(s)) => k.verify_digest(&blake2b_256(msg), s),
            (PublicKey::Bls(k), Signature::Bls(s)) => {
                let (dst, aug) = k.signature_domain(version)?;
                k.verify(msg, s, dst, aug)
            }
            // `with_curve` returned a signature of this key's curve.
            _ => Err(CryptoError::WrongCurve {
                expected: self.curve(),
                found: "another curve",
            }),
        }
    }

    /// Check a proof of possession made by this tz4 key over its own public key.
    pub fn verify_proof_of_possession(&self, proof: &Signature) -> Result<(), CryptoError> {
        self.verify_proof_of_possession_over(proof, self)
    }

    /// Check a proof of possession made by this tz4 key over `signed_key` (Octez's
    /// `bls_pk` override: the key signs another BLS public key's bytes).
    pub fn verify_proof_of_possession_over(
        &self,
        proof: &Signature,
        signed_key: &PublicKey,
    ) -> Result<(), CryptoError> {
        let PublicKey::Bls(k) = self else {
            return Err(CryptoError::NotBls {
                curve: self.curve(),
            });
        };
        let PublicKey::Bls(signed) = signed_key else {
            return Err(CryptoError::WrongCurve {
                expected: Curve::Bls12_381,
                found: signed_key.prefix().name(),
            });
        };
        let Signature::Bls(s) = proof.with_curve(Curve::Bls12_381)? else {
            return Err(CryptoError::WrongCurve {
                expected: Curve::Bls12_381,
                found: "another curve",
            });
        };
        k.verify(&signed.bytes, &s, bls_dst::POP, &[])
    }

    fn prefix(&self) -> Prefix {
        match self {
            PublicKey::Ed25519(_) => Prefix::Edpk,
            PublicKey::Secp256k1(_) => Prefix::Sppk,
            PublicKey::P256(_) => Prefix::P2pk,
            PublicKey::Bls(_) => Prefix::BLpk,
        }
    }

    pub(crate) fn from_ed25519(key: ed25519_dalek::VerifyingKey) -> Self {
        PublicKey::Ed25519(Ed25519PublicKey(key))
    }

    pub(crate) fn from_secp256k1(key: secp256k1::PublicKey) -> Self {
        PublicKey::Secp256k1(Secp256k1PublicKey {
            bytes: key.serialize(),
            key,
        })
    }

    pub(crate) fn from_bls(key: blst::min_pk::PublicKey) -> Self {
        PublicKey::Bls(BlsPublicKey {
            bytes: key.compress(),
            key,
        })
    }
}

impl P256PublicKey {
    fn from_compressed(raw: [u8; 33]) -> Result<Self, CryptoError> {
        let group = p256_group()?;
        let bad = || invalid(Curve::P256, "not a compressed point of the curve");
        if !matches!(raw.first(), Some(0x02 | 0x03)) {
            return Err(bad());
        }
        let mut ctx = openssl::bn::BigNumContext::new().map_err(backend)?;
        let point = EcPoint::from_bytes(group, &raw, &mut ctx).map_err(|_| bad())?;
        let key = EcKey::from_public_key(group, &point).map_err(|_| bad())?;
        key.check_key().map_err(|_| bad())?;
        Ok(P256PublicKey { bytes: raw, key })
    }

    pub(crate) fn from_point(
        group: &openssl::ec::EcGroupRef,
        point: &openssl::ec::EcPointRef,
    ) -> Result<PublicKey, CryptoError> {
        let mut ctx = openssl::bn::BigNumContext::new().map_err(backend)?;
        let compressed = point
            .to_bytes(
                group,
                openssl::ec::PointConversionForm::COMPRESSED,
                &mut ctx,
            )
            .map_err(backend)?;
        let raw: [u8; 33] = array(&compressed, "a P-256 public key")?;
        let key = EcKey::from_public_key(group, point).map_err(backend)?;
        Ok(PublicKey::P256(P256PublicKey { bytes: raw, key }))
    }

    /// ECDSA over a 32-byte digest, used as is (no further hashing).
    fn verify_digest(&self, digest: &[u8; 32], sig: &[u8; 64]) -> Result<(), CryptoError> {
        let (r, s) = sig.split_at(32);
        let (r, s) = (
            BigNum::from_slice(r).map_err(backend)?,
            BigNum::from_slice(s).map_err(backend)?,
        );
        let sig = EcdsaSig::from_private_components(r, s).map_err(backend)?;
        // OpenSSL refuses r or s out of [1, n−1] with an error, a mismatch with `false`.
        match sig.verify(digest, &self.key) {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(CryptoError::VerificationFailed),
        }
    }
}

impl BlsPublicKey {
    /// The domain separation tag a signature with `version` uses, and what is hashed in
    /// front of the message (the public key, for the augmented scheme of version 1).
    pub(crate) fn signature_domain(
        &self,
        version: SigningVersion,
    ) -> Result<(&'static [u8], &[u8]), CryptoError> {
        let scheme = version
            .bls_scheme()
            .ok_or(CryptoError::UnsupportedVersion {
                curve: Curve::Bls12_381,
                version,
            })?;
        Ok(match scheme {
            BlsScheme::ProofOfPossession => (bls_dst::SIG_POP, &[]),
            BlsScheme::Augmented => (bls_dst::SIG_AUG, &self.bytes),
        })
    }

    pub(crate) fn blst_key(&self) -> &blst::min_pk::PublicKey {
        &self.key
    }

    fn verify(
        &self,
        msg: &[u8],
        sig: &[u8; 96],
        dst: &[u8],
        aug: &[u8],
    ) -> Result<(), CryptoError> {
        let sig = blst::min_pk::Signature::from_bytes(sig).map_err(|_| {
            CryptoError::InvalidSignature {
                curve: Curve::Bls12_381,
                reason: "not a compressed G2 point",
            }
        })?;
        // Signature subgroup check on; the key was validated when parsed.
        match sig.verify(true, msg, dst, aug, &self.key, false) {
            blst::BLST_ERROR::BLST_SUCCESS => Ok(()),
            _ => Err(CryptoError::VerificationFailed),
        }
    }
}

pub(crate) fn backend(e: openssl::error::ErrorStack) -> CryptoError {
    CryptoError::Backend {
        curve: Curve::P256,
        detail: e.to_string(),
    }
}

fn not_spki() -> CryptoError {
    CryptoError::UnsupportedPublicKey("not a DER or PEM SubjectPublicKeyInfo")
}

fn invalid(curve: Curve, reason: &'static str) -> CryptoError {
    CryptoError::InvalidPublicKey { curve, reason }
}

fn array<const N: usize>(bytes: &[u8], what: &'static str) -> Result<[u8; N], CryptoError> {
    bytes.try_into().map_err(|_| CryptoError::WrongLength {
        what,
        expected: N,
        found: bytes.len(),
    })
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.curve() == other.curve() && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.curve().hash(state);
        self.as_bytes().hash(state);
    }
}

macro_rules! key_newtype {
    ($($t:ident => $prefix:ident),*) => {$(
        impl $t {
            /// The raw key bytes.
            pub fn as_bytes(&self) -> &[u8] {
                self.raw()
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), base58::encode(Prefix::$prefix, self.as_bytes()))
            }
        }
    )*};
}
key_newtype!(
    Ed25519PublicKey => Edpk,
    Secp256k1PublicKey => Sppk,
    P256PublicKey => P2pk,
    BlsPublicKey => BLpk
);

impl Ed25519PublicKey {
    fn raw(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub(crate) fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.0
    }
}
impl Secp256k1PublicKey {
    fn raw(&self) -> &[u8] {
        &self.bytes
    }
}
impl P256PublicKey {
    fn raw(&self) -> &[u8] {
        &self.bytes
    }
}
impl BlsPublicKey {
    fn raw(&self) -> &[u8] {
        &self.bytes
    }
}

b58_string_forms!(PublicKey, CryptoError);

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    const KEYS: [&str; 4] = [
        "edpkuhmrbunxumoiVdQuxBZUPMmwkPt7yLtY5Qnua3VJVTLWr3vXXa",
        "sppk7aqSksZan1AGXuKtCz9UBLZZ77e3ZWGpFxR7ig1Z17GneEhSSbH",
        "p2pk66tTYL5EvahKAXncbtbRPBkAnxo3CszzUho5wPCgWauBMyvybuB",
        "BLpk1oWB1ZbeKePu8FiRMpktQoZw1rPs67qu6zbnYxiCcJDyZih8PXUiGnLyMWR6Fay9cDNyCzj9",
    ];

    #[test]
    fn b58_tagged_and_serde_forms_round_trip() {
        for (s, curve) in KEYS.iter().zip(Curve::ALL) {
            let pk = PublicKey::from_b58check(s);
            assert!(pk.is_ok(), "{s}: {pk:?}");
            let Ok(pk) = pk else { continue };
            assert_eq!(pk.curve(), curve);
            assert_eq!(pk.to_b58check(), *s);
            assert_eq!(pk.to_string(), *s);
            let tagged = pk.to_tagged_bytes();
            assert_eq!(tagged.first(), Some(&curve.tag()));
            assert_eq!(PublicKey::from_tagged_bytes(&tagged).as_ref(), Ok(&pk));
            let json = serde_json::to_string(&pk).unwrap_or_default();
            assert_eq!(json, format!("\"{s}\""));
            let back: Result<PublicKey, _> = serde_json::from_str(&json);
            assert_eq!(back.ok().as_ref(), Some(&pk));
        }
    }

    #[test]
    fn subject_public_key_infos_of_the_three_curves_are_read_and_others_refused() {
        use openssl::ec::EcKey;
        use openssl::pkey::PKey;
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        for (nid, curve) in [
            (Nid::X9_62_PRIME256V1, Curve::P256),
            (Nid::SECP256K1, Curve::Secp256k1),
        ] {
            let group = EcGroup::from_curve_name(nid).unwrap();
            let key = EcKey::generate(&group).unwrap();
            let point = key
                .public_key()
                .to_bytes(
                    &group,
                    openssl::ec::PointConversionForm::UNCOMPRESSED,
                    &mut ctx,
                )
                .unwrap();
            let expected = PublicKey::from_uncompressed_point(curve, &point).unwrap();
            let pkey = PKey::from_ec_key(key).unwrap();
            let der = pkey.public_key_to_der().unwrap();
            assert_eq!(PublicKey::from_spki_der(&der).unwrap(), expected);
            let pem = pkey.public_key_to_pem().unwrap();
            assert_eq!(PublicKey::from_spki_pem(&pem).unwrap(), expected);
        }
        let ed = PKey::generate_ed25519().unwrap();
        let expected =
            PublicKey::from_bytes(Curve::Ed25519, &ed.raw_public_key().unwrap()).unwrap();
        let der = ed.public_key_to_der().unwrap();
        assert_eq!(PublicKey::from_spki_der(&der).unwrap(), expected);

        let p384 = EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap()).unwrap();
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        for other in [
            PKey::from_ec_key(p384)
                .unwrap()
                .public_key_to_der()
                .unwrap(),
            PKey::from_rsa(rsa).unwrap().public_key_to_der().unwrap(),
            b"not der".to_vec(),
        ] {
            assert!(matches!(
                PublicKey::from_spki_der(&other),
                Err(CryptoError::UnsupportedPublicKey(_))
            ));
        }
    }

    #[test]
    fn der_ecdsa_signatures_become_low_s_tezos_signatures_that_verify() {
        use openssl::ec::EcKey;
        let msg = b"\x03 an operation";
        let digest = blake2b_256(msg);
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        for (nid, curve) in [
            (Nid::X9_62_PRIME256V1, Curve::P256),
            (Nid::SECP256K1, Curve::Secp256k1),
        ] {
            let group = EcGroup::from_curve_name(nid).unwrap();
            let key = EcKey::generate(&group).unwrap();
            let point = key
                .public_key()
                .to_bytes(
                    &group,
                    openssl::ec::PointConversionForm::UNCOMPRESSED,
                    &mut ctx,
                )
                .unwrap();
            let pk = PublicKey::from_uncompressed_point(curve, &point).unwrap();
            // Half of raw ECDSA signatures are high-S: sixteen without normalisation would
            // all pass only once in 65,536 runs.
            for _ in 0..16 {
                let der = EcdsaSig::sign(&digest, &key).unwrap().to_der().unwrap();
                let sig = Signature::from_der_ecdsa(curve, &der).unwrap();
                assert!(sig.is_low_s());
                pk.verify(msg, &sig, SigningVersion::V0).unwrap();
                let mut trailing = der.clone();
                trailing.push(0);
                assert!(Signature::from_der_ecdsa(curve, &trailing).is_err());
                assert!(Signature::from_der_ecdsa(Curve::Ed25519, &der).is_err());
            }
        }
    }

    #[test]
    fn points_off_the_curve_are_refused() {
        // x = 7 is the abscissa of neither a P-256 nor a secp256k1 point (x³ + ax + b
        // is not a square modulo either prime), while x = 6 is of both.
        let mut raw = [0u8; 33];
        raw[0] = 2;
        raw[32] = 6;
        assert!(PublicKey::from_bytes(Curve::P256, &raw).is_ok());
        assert!(PublicKey::from_bytes(Curve::Secp256k1, &raw).is_ok());
        raw[32] = 7;
        assert!(matches!(
            PublicKey::from_bytes(Curve::P256, &raw),
            Err(CryptoError::InvalidPublicKey { .. })
        ));
        assert!(matches!(
            PublicKey::from_bytes(Curve::Secp256k1, &raw),
            Err(CryptoError::InvalidPublicKey { .. })
        ));
        // A bad compression byte.
        raw[0] = 7;
        assert!(PublicKey::from_bytes(Curve::P256, &raw).is_err());
        // The BLS point at infinity is refused (no subgroup key can be it).
        let mut inf = [0u8; 48];
        inf[0] = 0xc0;
        assert!(matches!(
            PublicKey::from_bytes(Curve::Bls12_381, &inf),
            Err(CryptoError::InvalidPublicKey { .. })
        ));
        assert!(matches!(
            PublicKey::from_tagged_bytes(&[9; 33]),
            Err(CryptoError::UnknownTag(9))
        ));
        assert!(matches!(
            PublicKey::from_tagged_bytes(&[0; 20]),
            Err(CryptoError::WrongLength { .. })
        ));
        assert!(matches!(
            PublicKey::from_b58check("tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv"),
            Err(CryptoError::UnexpectedKind { .. })
        ));
    }
}
