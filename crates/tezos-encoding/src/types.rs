//! Keys, addresses and signatures as operations carry them, with their readers.

use crate::error::DecodeErrorKind;
use crate::hashes::{ContractHash, HexBytes};
use crate::reader::{Reader, Result};
use serde::{Serialize, Serializer};
use std::fmt;
use tezos_crypto::{Curve, Prefix, PublicKeyHash};

/// Reads `pkh21`: curve tag (tz1 0, tz2 1, tz3 2, tz4 3) then the 20-byte hash.
pub(crate) fn read_pkh(r: &mut Reader<'_>, expected: &'static str) -> Result<PublicKeyHash> {
    let at = r.pos();
    let tag = r.u8(expected)?;
    let curve = Curve::from_tag(tag).ok_or_else(|| {
        crate::error::DecodeError::new(
            at,
            DecodeErrorKind::UnknownTag {
                what: "public key hash",
                tag,
            },
        )
    })?;
    let hash = r.array::<20>(expected)?;
    Ok(PublicKeyHash::new(curve, hash))
}

/// A public key: curve and raw bytes (32, 33, 33 or 48).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    curve: Curve,
    bytes: Vec<u8>,
}

impl PublicKey {
    pub const fn curve(&self) -> Curve {
        self.curve
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn to_b58check(&self) -> String {
        let prefix = match self.curve {
            Curve::Ed25519 => Prefix::Edpk,
            Curve::Secp256k1 => Prefix::Sppk,
            Curve::P256 => Prefix::P2pk,
            Curve::Bls12_381 => Prefix::BLpk,
        };
        tezos_crypto::base58::encode(prefix, &self.bytes)
    }

    /// The address this key controls (Blake2b-160 of the key bytes).
    pub fn hash(&self) -> PublicKeyHash {
        PublicKeyHash::new(self.curve, tezos_crypto::blake2b_160(&self.bytes))
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<PublicKey> {
        let at = r.pos();
        let tag = r.u8("1-byte public key tag")?;
        let (curve, len, expected) = match tag {
            0 => (Curve::Ed25519, 32, "32-byte Ed25519 public key"),
            1 => (Curve::Secp256k1, 33, "33-byte secp256k1 public key"),
            2 => (Curve::P256, 33, "33-byte P-256 public key"),
            3 => (Curve::Bls12_381, 48, "48-byte BLS public key"),
            _ => {
                return Reader::err_at(
                    at,
                    DecodeErrorKind::UnknownTag {
                        what: "public key",
                        tag,
                    },
                )
            }
        };
        let bytes = r.take(len, expected)?.to_vec();
        Ok(PublicKey { curve, bytes })
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_b58check())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b58check())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_b58check())
    }
}

/// A contract: an implicit account or an originated contract.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contract {
    Implicit(PublicKeyHash),
    Originated(ContractHash),
}

impl Contract {
    /// `contract22`: `00 ‖ pkh21` or `01 ‖ hash(20) ‖ padding(1)`.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Contract> {
        let at = r.pos();
        match r.u8("1-byte contract tag")? {
            0 => Ok(Contract::Implicit(read_pkh(r, "21-byte implicit account")?)),
            1 => Ok(Contract::Originated(read_originated(r)?)),
            tag => Reader::err_at(
                at,
                DecodeErrorKind::UnknownTag {
                    what: "contract",
                    tag,
                },
            ),
        }
    }

    /// The implicit account, if this is one.
    pub const fn implicit(&self) -> Option<&PublicKeyHash> {
        match self {
            Contract::Implicit(pkh) => Some(pkh),
            Contract::Originated(_) => None,
        }
    }

    pub fn to_b58check(&self) -> String {
        match self {
            Contract::Implicit(pkh) => pkh.to_b58check(),
            Contract::Originated(h) => h.to_b58check(),
        }
    }
}

/// `hash(20) ‖ padding(1)`; Octez ignores the padding byte's value.
pub(crate) fn read_originated(r: &mut Reader<'_>) -> Result<ContractHash> {
    let hash = r.array::<20>("20-byte contract hash")?;
    r.take(1, "1 padding byte after a contract hash")?;
    Ok(ContractHash(hash))
}

impl fmt::Debug for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Contract({})", self.to_b58check())
    }
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b58check())
    }
}

impl Serialize for Contract {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_b58check())
    }
}

/// A signature inside an operation (inlined consensus operations, block headers in
/// evidence, BLS proofs of possession): 64 bytes of a tz1–tz3 curve (`sig…`, the curve
/// is not recorded) or 96 BLS bytes (`BLsig…`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Signature(HexBytes);

impl Signature {
    pub fn bytes(&self) -> &[u8] {
        &self.0 .0
    }

    pub fn to_b58check(&self) -> String {
        match self.0 .0.len() {
            96 => tezos_crypto::base58::encode(Prefix::BLsig, &self.0 .0),
            _ => tezos_crypto::base58::encode(Prefix::GenericSig, &self.0 .0),
        }
    }

    /// A signature filling the rest of the current scope (Octez `Signature.encoding`,
    /// variable size): 64 or 96 bytes.
    pub(crate) fn read_rest(r: &mut Reader<'_>) -> Result<Signature> {
        let at = r.pos();
        let bytes = r.rest();
        if bytes.len() != 64 && bytes.len() != 96 {
            return Reader::err_at(
                at,
                DecodeErrorKind::Invalid {
                    what: "signature",
                    reason: "must be 64 bytes (tz1-tz3) or 96 bytes (tz4)",
                },
            );
        }
        Ok(Signature(HexBytes::from_slice(bytes)))
    }

    /// `option(dynamic_size(BLS signature))`, the proof of possession of reveal and
    /// key updates.
    pub(crate) fn read_optional_bls_proof(r: &mut Reader<'_>) -> Result<Option<Signature>> {
        if !r.flag("1-byte proof presence tag")? {
            return Ok(None);
        }
        r.dynamic("BLS proof of possession", "4-byte proof length", |r| {
            let bytes = r.take(96, "96-byte BLS proof of possession")?;
            Ok(Some(Signature(HexBytes::from_slice(bytes))))
        })
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_b58check())
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_b58check())
    }
}
