//! Identifiers: curves, public key hashes (tz1–tz4) and chain ids.

use crate::base58::{self, Base58Error, Prefix};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The four signature schemes of Tezos accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Curve {
    /// tz1
    Ed25519,
    /// tz2
    Secp256k1,
    /// tz3
    P256,
    /// tz4 (min-pk: 48-byte public keys, 96-byte signatures)
    Bls12_381,
}

impl Curve {
    pub const ALL: [Curve; 4] = [
        Curve::Ed25519,
        Curve::Secp256k1,
        Curve::P256,
        Curve::Bls12_381,
    ];

    /// The scheme of keys on this curve: tags and prefixes are [`KeyScheme`]'s, one table.
    pub const fn scheme(self) -> KeyScheme {
        match self {
            Curve::Ed25519 => KeyScheme::Ed25519,
            Curve::Secp256k1 => KeyScheme::Secp256k1,
            Curve::P256 => KeyScheme::P256,
            Curve::Bls12_381 => KeyScheme::Bls12_381,
        }
    }

    /// The one-byte tag used in `pkh_bin` and tagged public keys.
    pub const fn tag(self) -> u8 {
        self.scheme().tag()
    }

    /// The curve of a tag; tag 4 (ML-DSA-44) is a scheme but no curve of this signer.
    pub const fn from_tag(tag: u8) -> Option<Curve> {
        match KeyScheme::from_tag(tag) {
            Some(scheme) => match scheme.curve() {
                Ok(curve) => Some(curve),
                Err(_) => None,
            },
            None => None,
        }
    }

    /// The address prefix (`tz1` …).
    pub const fn address_prefix(self) -> Prefix {
        self.scheme().address_prefix()
    }

    /// The short name an operator types: `tz1` … `tz4`.
    pub const fn address_kind(self) -> &'static str {
        self.address_prefix().name()
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Curve::Ed25519 => "ed25519",
            Curve::Secp256k1 => "secp256k1",
            Curve::P256 => "p256",
            Curve::Bls12_381 => "bls12_381",
        })
    }
}

/// Why an identifier could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    #[error(transparent)]
    Base58(#[from] Base58Error),
    #[error("not a public key hash (expected tz1, tz2, tz3 or tz4)")]
    NotAnAddress,
    #[error("binary public key hash must be 21 bytes, found {0}")]
    BadLength(usize),
    #[error("unknown public key hash tag {0}")]
    UnknownTag(u8),
    /// A tz5 address where a key of this signer is expected.
    #[error("{0}")]
    NotASigningKey(#[from] NotASigningKey),
}

/// A tz5 (ML-DSA-44) account asked to be a key of this signer. Protocol 025 forbids tz5
/// consensus and companion keys, and this signer does not sign with ML-DSA-44 at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "tz5 (ML-DSA-44) accounts cannot be keys of this signer: they can never be consensus \
     or companion keys, and ML-DSA-44 signing is not supported"
)]
pub struct NotASigningKey;

/// Every signature scheme an operation may name: the four a key of this signer can use
/// ([`Curve`]) and ML-DSA-44 (tz5, from protocol 025), which operations may carry as
/// addresses, public keys and signatures but which never signs here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KeyScheme {
    Ed25519,
    Secp256k1,
    P256,
    Bls12_381,
    /// tz5: 1312-byte public keys, 2420-byte signatures.
    MlDsa44,
}

impl KeyScheme {
    pub const ALL: [KeyScheme; 5] = [
        KeyScheme::Ed25519,
        KeyScheme::Secp256k1,
        KeyScheme::P256,
        KeyScheme::Bls12_381,
        KeyScheme::MlDsa44,
    ];

    /// The one-byte tag of `pkh_bin`, tagged public keys and signature prefixes.
    pub const fn tag(self) -> u8 {
        match self {
            KeyScheme::Ed25519 => 0,
            KeyScheme::Secp256k1 => 1,
            KeyScheme::P256 => 2,
            KeyScheme::Bls12_381 => 3,
            KeyScheme::MlDsa44 => 4,
        }
    }

    pub const fn from_tag(tag: u8) -> Option<KeyScheme> {
        match tag {
            0 => Some(KeyScheme::Ed25519),
            1 => Some(KeyScheme::Secp256k1),
            2 => Some(KeyScheme::P256),
            3 => Some(KeyScheme::Bls12_381),
            4 => Some(KeyScheme::MlDsa44),
            _ => None,
        }
    }

    /// The curve of a scheme this signer can hold keys of; tz5 has none.
    pub const fn curve(self) -> Result<Curve, NotASigningKey> {
        match self {
            KeyScheme::Ed25519 => Ok(Curve::Ed25519),
            KeyScheme::Secp256k1 => Ok(Curve::Secp256k1),
            KeyScheme::P256 => Ok(Curve::P256),
            KeyScheme::Bls12_381 => Ok(Curve::Bls12_381),
            KeyScheme::MlDsa44 => Err(NotASigningKey),
        }
    }

    pub const fn address_prefix(self) -> Prefix {
        match self {
            KeyScheme::Ed25519 => Prefix::Tz1,
            KeyScheme::Secp256k1 => Prefix::Tz2,
            KeyScheme::P256 => Prefix::Tz3,
            KeyScheme::Bls12_381 => Prefix::Tz4,
            KeyScheme::MlDsa44 => Prefix::Tz5,
        }
    }

    pub const fn public_key_prefix(self) -> Prefix {
        match self {
            KeyScheme::Ed25519 => Prefix::Edpk,
            KeyScheme::Secp256k1 => Prefix::Sppk,
            KeyScheme::P256 => Prefix::P2pk,
            KeyScheme::Bls12_381 => Prefix::BLpk,
            KeyScheme::MlDsa44 => Prefix::Mdpk,
        }
    }

    /// Bytes of a public key of this scheme (32, 33, 33, 48, 1312).
    pub const fn public_key_len(self) -> usize {
        self.public_key_prefix().payload_len()
    }
}

impl From<Curve> for KeyScheme {
    fn from(curve: Curve) -> Self {
        curve.scheme()
    }
}

/// An implicit account as operations name it: tz1–tz4, or tz5 (ML-DSA-44). Unlike
/// [`PublicKeyHash`], which only holds addresses this signer can hold keys for, this one
/// can be any account a transfer, delegation or vote mentions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountHash {
    scheme: KeyScheme,
    hash: [u8; 20],
}

impl AccountHash {
    pub const fn new(scheme: KeyScheme, hash: [u8; 20]) -> Self {
        AccountHash { scheme, hash }
    }

    pub const fn scheme(&self) -> KeyScheme {
        self.scheme
    }

    pub const fn hash(&self) -> &[u8; 20] {
        &self.hash
    }

    /// This account as a possible key of this signer (consensus or otherwise); tz5 is
    /// refused with [`NotASigningKey`].
    pub const fn signing_key(&self) -> Result<PublicKeyHash, NotASigningKey> {
        match self.scheme.curve() {
            Ok(curve) => Ok(PublicKeyHash::new(curve, self.hash)),
            Err(e) => Err(e),
        }
    }

    pub fn to_b58check(&self) -> String {
        base58::encode(self.scheme.address_prefix(), &self.hash)
    }

    pub fn from_b58check(s: &str) -> Result<Self, IdError> {
        let candidates = KeyScheme::ALL.map(KeyScheme::address_prefix);
        let (prefix, payload) = base58::decode_any(s, &candidates).map_err(|e| match e {
            Base58Error::UnknownPrefix => IdError::NotAnAddress,
            other => IdError::Base58(other),
        })?;
        let scheme = KeyScheme::ALL
            .into_iter()
            .find(|k| k.address_prefix() == prefix)
            .ok_or(IdError::NotAnAddress)?;
        let hash: [u8; 20] = payload
            .try_into()
            .map_err(|v: Vec<u8>| IdError::BadLength(v.len() + 1))?;
        Ok(AccountHash { scheme, hash })
    }
}

impl From<PublicKeyHash> for AccountHash {
    fn from(pkh: PublicKeyHash) -> Self {
        AccountHash::new(pkh.curve().into(), *pkh.hash())
    }
}

impl PartialEq<PublicKeyHash> for AccountHash {
    fn eq(&self, other: &PublicKeyHash) -> bool {
        *self == AccountHash::from(*other)
    }
}

/// A public key hash: the curve and the Blake2b-160 of the public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKeyHash {
    curve: Curve,
    hash: [u8; 20],
}

impl PublicKeyHash {
    pub const fn new(curve: Curve, hash: [u8; 20]) -> Self {
        PublicKeyHash { curve, hash }
    }

    pub const fn curve(&self) -> Curve {
        self.curve
    }

    pub const fn hash(&self) -> &[u8; 20] {
        &self.hash
    }

    /// `pkh_bin`: tag byte then the 20-byte hash.
    pub fn to_bytes(&self) -> [u8; 21] {
        let mut out = [0u8; 21];
        out[0] = self.curve.tag();
        out[1..].copy_from_slice(&self.hash);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
        let (&tag, hash) = bytes.split_first().ok_or(IdError::BadLength(0))?;
        let hash: [u8; 20] = hash
            .try_into()
            .map_err(|_| IdError::BadLength(bytes.len()))?;
        if tag == KeyScheme::MlDsa44.tag() {
            return Err(IdError::NotASigningKey(NotASigningKey));
        }
        let curve = Curve::from_tag(tag).ok_or(IdError::UnknownTag(tag))?;
        Ok(PublicKeyHash { curve, hash })
    }

    pub fn to_b58check(&self) -> String {
        base58::encode(self.curve.address_prefix(), &self.hash)
    }

    /// Parses tz1–tz4; a tz5 address is refused with [`IdError::NotASigningKey`].
    pub fn from_b58check(s: &str) -> Result<Self, IdError> {
        Ok(AccountHash::from_b58check(s)?.signing_key()?)
    }
}

/// A chain id: 4 bytes, `Net…` in base58.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(pub [u8; 4]);

impl ChainId {
    pub fn to_b58check(&self) -> String {
        base58::encode(Prefix::ChainId, &self.0)
    }

    pub fn from_b58check(s: &str) -> Result<Self, IdError> {
        Ok(ChainId(base58::decode_array(s, Prefix::ChainId)?))
    }
}

/// The text forms of a type whose canonical text is base58check: `Display` and `FromStr`
/// (`to_b58check` / `from_b58check`), a `Debug` that names the type, and serde as a string.
macro_rules! b58_string_forms {
    ($t:ident, $err:ty) => {
        impl ::std::fmt::Display for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.to_b58check())
            }
        }
        impl ::std::fmt::Debug for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($t), "({})"), self.to_b58check())
            }
        }
        impl ::std::str::FromStr for $t {
            type Err = $err;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_b58check(s)
            }
        }
        impl ::serde::Serialize for $t {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_b58check())
            }
        }
        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                <$t>::from_b58check(&s).map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use b58_string_forms;

b58_string_forms!(PublicKeyHash, IdError);
b58_string_forms!(AccountHash, IdError);
b58_string_forms!(ChainId, IdError);

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
    fn pkh_parses_each_curve_and_round_trips() {
        for s in [
            "tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv",
            "tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD",
            "tz3Lfm6CyfSTZ7EgMckptZZGiPxzs9GK59At",
            "tz4JmbuiJGyC2thisABCS59PnGr749dsP4WY",
        ] {
            let pkh: PublicKeyHash = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(pkh.to_string(), s);
            assert_eq!(PublicKeyHash::from_bytes(&pkh.to_bytes()), Ok(pkh));
        }
        assert_eq!(
            "NetXxkAx4woPLyu".parse::<ChainId>().map(|c| c.0),
            Ok([0xed, 0x9d, 0x21, 0x7c])
        );
    }

    #[test]
    fn non_addresses_are_refused() {
        assert_eq!(
            "NetXxkAx4woPLyu".parse::<PublicKeyHash>(),
            Err(IdError::NotAnAddress)
        );
        assert_eq!(
            PublicKeyHash::from_bytes(&[9; 21]),
            Err(IdError::UnknownTag(9))
        );
        assert_eq!(
            PublicKeyHash::from_bytes(&[0; 5]),
            Err(IdError::BadLength(5))
        );
    }

    #[test]
    fn tz5_prints_with_the_octez_prefix_and_length() {
        // Octez checks `tz5` and 36 characters for this prefix (lib_crypto/mldsa44.ml).
        for fill in [0u8, 0x5a, 0xff] {
            let account = AccountHash::new(KeyScheme::MlDsa44, [fill; 20]);
            let text = account.to_b58check();
            assert!(text.starts_with("tz5") && text.len() == 36, "{text}");
            assert_eq!(text.parse::<AccountHash>(), Ok(account));
        }
        let tz1 = PublicKeyHash::new(Curve::Ed25519, [7; 20]);
        assert_eq!(AccountHash::from(tz1).to_b58check(), tz1.to_b58check());
        assert_eq!(AccountHash::from(tz1).signing_key(), Ok(tz1));
    }

    #[test]
    fn tz5_is_never_a_key_of_this_signer() {
        let tz5 = AccountHash::new(KeyScheme::MlDsa44, [3; 20]);
        assert_eq!(tz5.signing_key(), Err(NotASigningKey));
        assert_eq!(KeyScheme::MlDsa44.curve(), Err(NotASigningKey));
        let err = tz5.to_b58check().parse::<PublicKeyHash>().unwrap_err();
        assert_eq!(err, IdError::NotASigningKey(NotASigningKey));
        assert!(err.to_string().contains("never be consensus"), "{err}");
        let mut bytes = [4u8; 21];
        bytes[0] = KeyScheme::MlDsa44.tag();
        assert_eq!(
            PublicKeyHash::from_bytes(&bytes),
            Err(IdError::NotASigningKey(NotASigningKey))
        );
    }

    #[test]
    fn key_scheme_tags_follow_octez() {
        for tag in 0..=4u8 {
            let scheme = KeyScheme::from_tag(tag).unwrap();
            assert_eq!(scheme.tag(), tag);
        }
        assert_eq!(KeyScheme::from_tag(5), None);
        assert_eq!(KeyScheme::MlDsa44.public_key_len(), 1312);
        for curve in Curve::ALL {
            assert_eq!(KeyScheme::from(curve).tag(), curve.tag());
            assert_eq!(KeyScheme::from(curve).curve(), Ok(curve));
        }
    }
}
