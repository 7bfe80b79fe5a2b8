//! Signing versions: which signature scheme a tz4 (BLS) key uses.
//!
//! The Octez client states the version it was built for in the `version` query
//! parameter. Versions change only BLS signing; tz1–tz3 sign the same way in all of them.
//! - v0: no BLS at all (tz4 keys cannot sign);
//! - v1: BLS "augmented" scheme, the message prefixed with the 48-byte public key;
//! - v2 and v3: BLS proof-of-possession scheme over the raw message.

use std::fmt;
use std::str::FromStr;

/// The signing version a client asks for (`version=0..3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum SigningVersion {
    V0,
    V1,
    V2,
    /// The latest version, used when a client does not name one.
    #[default]
    V3,
}

/// How a BLS signature binds its message, per signing version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlsScheme {
    /// `BLS_SIG_..._AUG_` over `pk(48) ‖ msg`.
    Augmented,
    /// `BLS_SIG_..._POP_` over `msg`.
    ProofOfPossession,
}

impl SigningVersion {
    pub const ALL: [SigningVersion; 4] = [
        SigningVersion::V0,
        SigningVersion::V1,
        SigningVersion::V2,
        SigningVersion::V3,
    ];

    /// The version for the number a client sends; `None` for versions we do not know.
    pub const fn from_u8(version: u8) -> Option<Self> {
        match version {
            0 => Some(SigningVersion::V0),
            1 => Some(SigningVersion::V1),
            2 => Some(SigningVersion::V2),
            3 => Some(SigningVersion::V3),
            _ => None,
        }
    }

    pub const fn as_u8(self) -> u8 {
        match self {
            SigningVersion::V0 => 0,
            SigningVersion::V1 => 1,
            SigningVersion::V2 => 2,
            SigningVersion::V3 => 3,
        }
    }

    /// The BLS scheme of this version, or `None` when the version has no BLS.
    pub(crate) const fn bls_scheme(self) -> Option<BlsScheme> {
        match self {
            SigningVersion::V0 => None,
            SigningVersion::V1 => Some(BlsScheme::Augmented),
            SigningVersion::V2 | SigningVersion::V3 => Some(BlsScheme::ProofOfPossession),
        }
    }
}

impl fmt::Display for SigningVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u8())
    }
}

/// Why a signing version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signing version {0:?} (expected 0, 1, 2 or 3)")]
pub struct UnknownSigningVersion(pub String);

impl FromStr for SigningVersion {
    type Err = UnknownSigningVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<u8>()
            .ok()
            .and_then(SigningVersion::from_u8)
            .ok_or_else(|| UnknownSigningVersion(s.to_owned()))
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
    fn numbers_round_trip_and_unknown_ones_are_refused() {
        for v in SigningVersion::ALL {
            assert_eq!(SigningVersion::from_u8(v.as_u8()), Some(v));
            assert_eq!(v.to_string().parse::<SigningVersion>(), Ok(v));
        }
        assert_eq!(SigningVersion::from_u8(4), None);
        assert!("4".parse::<SigningVersion>().is_err());
        assert!("".parse::<SigningVersion>().is_err());
        assert_eq!(SigningVersion::default(), SigningVersion::V3);
    }

    #[test]
    fn bls_schemes_follow_octez() {
        assert_eq!(SigningVersion::V0.bls_scheme(), None);
        assert_eq!(SigningVersion::V1.bls_scheme(), Some(BlsScheme::Augmented));
        assert_eq!(
            SigningVersion::V2.bls_scheme(),
            Some(BlsScheme::ProofOfPossession)
        );
        assert_eq!(
            SigningVersion::V3.bls_scheme(),
            Some(BlsScheme::ProofOfPossession)
        );
    }
}
