//! Tezos cryptography for a remote signer: base58check, identifiers, keys and signatures
//! of tz1 (Ed25519), tz2 (secp256k1), tz3 (P-256) and tz4 (BLS12-381 min-pk), signed and
//! verified exactly as Octez does, and encrypted secret keys. tz5 (ML-DSA-44, protocol
//! 025) addresses, public keys and signatures are parsed and printed, for the operations
//! that name them ([`AccountHash`], [`KeyScheme`]); they never sign here.
#![forbid(unsafe_code)]

mod b58codec;
pub mod base58;
mod batch;
pub mod encrypted;
mod error;
pub mod hash;
pub mod ids;
mod public_key;
mod secret_key;
mod signature;
mod version;

pub use base58::{Base58Error, Prefix};
pub use batch::{verify_batch, BatchItem};
pub use error::CryptoError;
pub use hash::{blake2b_160, blake2b_256};
pub use ids::{AccountHash, ChainId, Curve, IdError, KeyScheme, NotASigningKey, PublicKeyHash};
pub use public_key::{
    bls_dst, BlsPublicKey, Ed25519PublicKey, P256PublicKey, PublicKey, Secp256k1PublicKey,
};
pub use secret_key::SecretKey;
pub use signature::Signature;
pub use version::{SigningVersion, UnknownSigningVersion};
