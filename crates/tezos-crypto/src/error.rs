//! The one error type of key, signature and encrypted-key operations.
//!
//! Messages name the curve, the kind of data and what was wrong with it; they never
//! carry key material, passwords or decrypted bytes.

use crate::base58::Base58Error;
use crate::ids::Curve;
use crate::version::SigningVersion;

/// Why a key, a signature or an encrypted key was refused, or why signing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error(transparent)]
    Base58(#[from] Base58Error),
    /// A well-formed base58check string of another kind (e.g. a tz1 where a key was expected).
    #[error("not {expected}")]
    UnexpectedKind { expected: &'static str },
    #[error("this secret key is encrypted ({prefix}…); decrypt it with its password first")]
    Encrypted { prefix: &'static str },
    #[error("{what} must be {expected} bytes, found {found}")]
    WrongLength {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("unknown public key tag {0} (expected 0 to 3)")]
    UnknownTag(u8),
    #[error("invalid {curve} public key: {reason}")]
    InvalidPublicKey { curve: Curve, reason: &'static str },
    /// A public key in a container this library reads (SubjectPublicKeyInfo) but of no
    /// Tezos curve, or not such a container at all.
    #[error("unsupported public key: {0}")]
    UnsupportedPublicKey(&'static str),
    #[error("invalid {curve} secret key: {reason}")]
    InvalidSecretKey { curve: Curve, reason: &'static str },
    #[error("invalid {curve} signature: {reason}")]
    InvalidSignature { curve: Curve, reason: &'static str },
    /// A signature or key of one curve used with a key of another.
    #[error("expected a {expected} key or signature, found {found}")]
    WrongCurve {
        expected: Curve,
        found: &'static str,
    },
    #[error("signature does not verify against this public key")]
    VerificationFailed,
    #[error("{curve} keys cannot sign or verify with signing version {version}")]
    UnsupportedVersion {
        curve: Curve,
        version: SigningVersion,
    },
    #[error("proofs of possession exist only for BLS (tz4) keys, not {curve}")]
    NotBls { curve: Curve },
    /// Wrong password: the authenticated decryption cannot tell it apart from a damaged file.
    #[error("wrong password, or the encrypted key is corrupted")]
    BadPassword,
    /// The cryptographic library itself failed (not the input).
    #[error("{curve} cryptography backend failed: {detail}")]
    Backend { curve: Curve, detail: String },
}
