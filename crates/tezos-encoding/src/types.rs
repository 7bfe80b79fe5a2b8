//! Keys, addresses and signatures as operations carry them, with their readers.

use crate::error::DecodeErrorKind;
use crate::hashes::{ContractHash, HexBytes};
use crate::reader::{Reader, Result};
use serde::{Serialize, Serializer};
use std::fmt;
use tezos_crypto::{AccountHash, KeyScheme, Prefix};

/// The scheme of a key-type tag (pkh, public key): tags 0-3 always, tag 4 (ML-DSA-44)
/// only where the protocol has it.
fn read_scheme(
    r: &mut Reader<'_>,
    what: &'static str,
    expected: &'static str,
) -> Result<KeyScheme> {
    let at = r.pos();
    let tag = r.u8(expected)?;
    match KeyScheme::from_tag(tag) {
        Some(KeyScheme::MlDsa44) if !r.features().ml_dsa_44 => {
            Reader::err_at(at, DecodeErrorKind::UnknownTag { what, tag })
        }
        Some(scheme) => Ok(scheme),
        None => Reader::err_at(at, DecodeErrorKind::UnknownTag { what, tag }),
    }
}

/// Reads `pkh21`: key tag (tz1 0, tz2 1, tz3 2, tz4 3, tz5 4 from 025) then the 20-byte
/// hash.
pub(crate) fn read_pkh(r: &mut Reader<'_>, expected: &'static str) -> Result<AccountHash> {
    let scheme = read_scheme(r, "public key hash", expected)?;
    let hash = r.array::<20>(expected)?;
    Ok(AccountHash::new(scheme, hash))
}

/// A public key: scheme and raw bytes (32, 33, 33, 48 or 1312).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    scheme: KeyScheme,
    bytes: Vec<u8>,
}

impl PublicKey {
    pub const fn scheme(&self) -> KeyScheme {
        self.scheme
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn to_b58check(&self) -> String {
        tezos_crypto::base58::encode(self.scheme.public_key_prefix(), &self.bytes)
    }

    /// The address this key controls (Blake2b-160 of the key bytes).
    pub fn hash(&self) -> AccountHash {
        AccountHash::new(self.scheme, tezos_crypto::blake2b_160(&self.bytes))
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<PublicKey> {
        let scheme = read_scheme(r, "public key", "1-byte public key tag")?;
        let expected = match scheme {
            KeyScheme::Ed25519 => "32-byte Ed25519 public key",
            KeyScheme::Secp256k1 => "33-byte secp256k1 public key",
            KeyScheme::P256 => "33-byte P-256 public key",
            KeyScheme::Bls12_381 => "48-byte BLS public key",
            _ => "1312-byte ML-DSA-44 public key",
        };
        let bytes = r.take(scheme.public_key_len(), expected)?.to_vec();
        Ok(PublicKey { scheme, bytes })
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

/// Bytes of an ML-DSA-44 signature.
const ML_DSA_44_SIGNATURE_LEN: usize = 2420;

/// A contract: an implicit account or an originated contract.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contract {
    Implicit(AccountHash),
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
    pub const fn implicit(&self) -> Option<&AccountHash> {
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
/// is not recorded), 96 BLS bytes (`BLsig…`) or, from 025, 2420 ML-DSA-44 bytes
/// (`mdsig…`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Signature(HexBytes);

impl Signature {
    pub fn bytes(&self) -> &[u8] {
        &self.0 .0
    }

    pub fn to_b58check(&self) -> String {
        match self.0 .0.len() {
            96 => tezos_crypto::base58::encode(Prefix::BLsig, &self.0 .0),
            ML_DSA_44_SIGNATURE_LEN => tezos_crypto::base58::encode(Prefix::Mdsig, &self.0 .0),
            _ => tezos_crypto::base58::encode(Prefix::GenericSig, &self.0 .0),
        }
    }

    /// A signature filling the rest of the current scope (Octez `Signature.encoding`,
    /// variable size): 64 or 96 bytes, or 2420 where the protocol has ML-DSA-44.
    pub(crate) fn read_rest(r: &mut Reader<'_>) -> Result<Signature> {
        let at = r.pos();
        let ml_dsa = r.features().ml_dsa_44;
        let bytes = r.rest();
        let accepted = match bytes.len() {
            64 | 96 => true,
            ML_DSA_44_SIGNATURE_LEN => ml_dsa,
            _ => false,
        };
        if !accepted {
            return Reader::err_at(
                at,
                DecodeErrorKind::Invalid {
                    what: "signature",
                    reason: if ml_dsa {
                        "must be 64 bytes (tz1-tz3), 96 bytes (tz4) or 2420 bytes (tz5)"
                    } else {
                        "must be 64 bytes (tz1-tz3) or 96 bytes (tz4)"
                    },
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
