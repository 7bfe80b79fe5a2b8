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

    /// The one-byte tag used in `pkh_bin` and tagged public keys.
    pub const fn tag(self) -> u8 {
        match self {
            Curve::Ed25519 => 0,
            Curve::Secp256k1 => 1,
            Curve::P256 => 2,
            Curve::Bls12_381 => 3,
        }
    }

    pub const fn from_tag(tag: u8) -> Option<Curve> {
        match tag {
            0 => Some(Curve::Ed25519),
            1 => Some(Curve::Secp256k1),
            2 => Some(Curve::P256),
            3 => Some(Curve::Bls12_381),
            _ => None,
        }
    }

    /// The address prefix (`tz1` …).
    pub const fn address_prefix(self) -> Prefix {
        match self {
            Curve::Ed25519 => Prefix::Tz1,
            Curve::Secp256k1 => Prefix::Tz2,
            Curve::P256 => Prefix::Tz3,
            Curve::Bls12_381 => Prefix::Tz4,
        }
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
        let curve = Curve::from_tag(tag).ok_or(IdError::UnknownTag(tag))?;
        Ok(PublicKeyHash { curve, hash })
    }

    pub fn to_b58check(&self) -> String {
        base58::encode(self.curve.address_prefix(), &self.hash)
    }

    pub fn from_b58check(s: &str) -> Result<Self, IdError> {
        let candidates = [Prefix::Tz1, Prefix::Tz2, Prefix::Tz3, Prefix::Tz4];
        let (prefix, payload) = base58::decode_any(s, &candidates).map_err(|e| match e {
            Base58Error::UnknownPrefix => IdError::NotAnAddress,
            other => IdError::Base58(other),
        })?;
        let curve = Curve::ALL
            .into_iter()
            .find(|c| c.address_prefix() == prefix)
            .ok_or(IdError::NotAnAddress)?;
        let hash: [u8; 20] = payload
            .try_into()
            .map_err(|v: Vec<u8>| IdError::BadLength(v.len() + 1))?;
        Ok(PublicKeyHash { curve, hash })
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
}
