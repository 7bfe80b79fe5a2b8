//! Signatures: 64 bytes for tz1–tz3 (Ed25519 `R‖S`, ECDSA `r‖s`), 96 for tz4 (a
//! compressed G2 point), and the curve-agnostic `sig…` form clients also use for tz1–tz3.

use crate::base58::{self, Base58Error, Prefix};
use crate::error::CryptoError;
use crate::ids::{b58_string_forms, Curve};

/// A Tezos signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signature {
    Ed25519([u8; 64]),
    /// ECDSA `r ‖ s`, big-endian.
    Secp256k1([u8; 64]),
    /// ECDSA `r ‖ s`, big-endian.
    P256([u8; 64]),
    /// A compressed BLS12-381 G2 point (min-pk).
    Bls([u8; 96]),
    /// A `sig…` signature: 64 bytes whose curve is that of the key that checks it.
    Generic([u8; 64]),
}

const SIGNATURE_PREFIXES: [Prefix; 5] = [
    Prefix::Edsig,
    Prefix::Spsig,
    Prefix::P2sig,
    Prefix::GenericSig,
    Prefix::BLsig,
];

impl Signature {
    /// Parse `edsig…`, `spsig1…`, `p2sig…`, `sig…` or `BLsig…`.
    pub fn from_b58check(s: &str) -> Result<Self, CryptoError> {
        let (prefix, payload) =
            base58::decode_any(s, &SIGNATURE_PREFIXES).map_err(|e| match e {
                Base58Error::UnknownPrefix => CryptoError::UnexpectedKind {
                    expected: "a signature (edsig, spsig1, p2sig, sig or BLsig)",
                },
                other => CryptoError::Base58(other),
            })?;
        match prefix {
            Prefix::Edsig => Self::from_bytes(Curve::Ed25519, &payload),
            Prefix::Spsig => Self::from_bytes(Curve::Secp256k1, &payload),
            Prefix::P2sig => Self::from_bytes(Curve::P256, &payload),
            Prefix::BLsig => Self::from_bytes(Curve::Bls12_381, &payload),
            _ => Ok(Signature::Generic(array(&payload, "a generic signature")?)),
        }
    }

    /// The curve's own prefix (`edsig`, `spsig1`, `p2sig`, `BLsig`), or `sig` for a
    /// signature whose curve is unknown.
    pub fn to_b58check(&self) -> String {
        base58::encode(self.prefix(), self.as_bytes())
    }

    /// The curve-agnostic `sig…` form of a tz1–tz3 signature; `None` for BLS, which has none.
    pub fn to_generic_b58check(&self) -> Option<String> {
        match self {
            Signature::Ed25519(b)
            | Signature::Secp256k1(b)
            | Signature::P256(b)
            | Signature::Generic(b) => Some(base58::encode(Prefix::GenericSig, b)),
            Signature::Bls(_) => None,
        }
    }

    /// A signature of `curve` from its raw bytes (64, or 96 for BLS). Only the length is
    /// checked here; whether the bytes are a valid point or scalar is checked on verify.
    pub fn from_bytes(curve: Curve, bytes: &[u8]) -> Result<Self, CryptoError> {
        Ok(match curve {
            Curve::Ed25519 => Signature::Ed25519(array(bytes, "an Ed25519 signature")?),
            Curve::Secp256k1 => Signature::Secp256k1(array(bytes, "a secp256k1 signature")?),
            Curve::P256 => Signature::P256(array(bytes, "a P-256 signature")?),
            Curve::Bls12_381 => Signature::Bls(array(bytes, "a BLS signature")?),
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Signature::Ed25519(b)
            | Signature::Secp256k1(b)
            | Signature::P256(b)
            | Signature::Generic(b) => b,
            Signature::Bls(b) => b,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    /// The curve, or `None` for a generic `sig…` signature.
    pub const fn curve(&self) -> Option<Curve> {
        match self {
            Signature::Ed25519(_) => Some(Curve::Ed25519),
            Signature::Secp256k1(_) => Some(Curve::Secp256k1),
            Signature::P256(_) => Some(Curve::P256),
            Signature::Bls(_) => Some(Curve::Bls12_381),
            Signature::Generic(_) => None,
        }
    }

    /// This signature as one of `curve`: a generic signature takes the curve, a typed one
    /// must already have it.
    pub fn with_curve(&self, curve: Curve) -> Result<Self, CryptoError> {
        match (self, self.curve()) {
            (Signature::Generic(b), _) => {
                Self::from_bytes(curve, b).map_err(|_| CryptoError::WrongCurve {
                    expected: curve,
                    found: Prefix::GenericSig.name(),
                })
            }
            (_, Some(c)) if c == curve => Ok(*self),
            _ => Err(CryptoError::WrongCurve {
                expected: curve,
                found: self.prefix().name(),
            }),
        }
    }

    /// An ECDSA signature of `curve` (secp256k1 or P-256) from its DER encoding, as KMSs
    /// and HSMs return it, as `r ‖ s` in low-S form. Only strict DER is read: bytes that do
    /// not re-encode to the same DER (trailing data, padding) are refused.
    pub fn from_der_ecdsa(curve: Curve, der: &[u8]) -> Result<Self, CryptoError> {
        let bad = |reason| CryptoError::InvalidSignature { curve, reason };
        if !matches!(curve, Curve::Secp256k1 | Curve::P256) {
            return Err(bad("only secp256k1 and P-256 signatures are ECDSA"));
        }
        let sig = openssl::ecdsa::EcdsaSig::from_der(der).map_err(|_| bad("not DER ECDSA"))?;
        if sig.to_der().ok().as_deref() != Some(der) {
            return Err(bad("not strict DER ECDSA"));
        }
        let mut raw = Vec::with_capacity(64);
        for scalar in [sig.r(), sig.s()] {
            let padded = scalar
                .to_vec_padded(32)
                .map_err(|_| bad("an ECDSA scalar longer than 32 bytes"))?;
            raw.extend_from_slice(&padded);
        }
        Ok(Signature::from_bytes(curve, &raw)?.normalize_low_s())
    }

    /// Whether an ECDSA signature has its `s` in the lower half of the group order (the
    /// only form libsecp256k1, and so Octez, accepts for tz2). True for other curves.
    pub fn is_low_s(&self) -> bool {
        match self {
            Signature::Secp256k1(b) => !ecdsa::is_high_s(b, &ecdsa::SECP256K1_ORDER),
            Signature::P256(b) => !ecdsa::is_high_s(b, &ecdsa::P256_ORDER),
            _ => true,
        }
    }

    /// The low-S twin of an ECDSA signature (`s` replaced by `n − s` when high); both
    /// verify under standard ECDSA. Other signatures are returned unchanged, and so is a
    /// generic one, whose curve is not known here: call [`Signature::with_curve`] first.
    pub fn normalize_low_s(&self) -> Signature {
        match self {
            Signature::Secp256k1(b) => {
                Signature::Secp256k1(ecdsa::normalize_s(b, &ecdsa::SECP256K1_ORDER))
            }
            Signature::P256(b) => Signature::P256(ecdsa::normalize_s(b, &ecdsa::P256_ORDER)),
            other => *other,
        }
    }

    fn prefix(&self) -> Prefix {
        match self {
            Signature::Ed25519(_) => Prefix::Edsig,
            Signature::Secp256k1(_) => Prefix::Spsig,
            Signature::P256(_) => Prefix::P2sig,
            Signature::Bls(_) => Prefix::BLsig,
            Signature::Generic(_) => Prefix::GenericSig,
        }
    }
}

fn array<const N: usize>(bytes: &[u8], what: &'static str) -> Result<[u8; N], CryptoError> {
    bytes.try_into().map_err(|_| CryptoError::WrongLength {
        what,
        expected: N,
        found: bytes.len(),
    })
}

b58_string_forms!(Signature, CryptoError);

/// Big-endian 256-bit arithmetic for ECDSA `s` normalisation.
pub(crate) mod ecdsa {
    /// Order of the secp256k1 group.
    pub(crate) const SECP256K1_ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ];
    /// Order of the P-256 group.
    pub(crate) const P256_ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];

    fn half(n: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut carry = 0u8;
        for (o, &b) in out.iter_mut().zip(n) {
            *o = (b >> 1) | carry;
            carry = (b & 1) << 7;
        }
        out
    }

    /// `a − b` for `a ≥ b`.
    fn sub(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut borrow = 0u16;
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b).rev() {
            let d = u16::from(x).wrapping_sub(u16::from(y)).wrapping_sub(borrow);
            *o = d as u8;
            borrow = d >> 15;
        }
        out
    }

    fn s_of(sig: &[u8; 64]) -> [u8; 32] {
        let mut s = [0u8; 32];
        for (d, v) in s.iter_mut().zip(sig.iter().skip(32)) {
            *d = *v;
        }
        s
    }

    /// `s > n/2` (arrays compare lexicographically, which is big-endian order).
    pub(crate) fn is_high_s(sig: &[u8; 64], order: &[u8; 32]) -> bool {
        s_of(sig) > half(order)
    }

    /// A signature whose `s` is `s` or `n − s`, whichever is low. An out-of-range `s`
    /// (≥ n) is left alone: it is invalid either way and verification refuses it.
    pub(crate) fn normalize_s(sig: &[u8; 64], order: &[u8; 32]) -> [u8; 64] {
        let s = s_of(sig);
        if s <= half(order) || s >= *order {
            return *sig;
        }
        let mut out = *sig;
        for (d, v) in out.iter_mut().skip(32).zip(sub(order, &s)) {
            *d = v;
        }
        out
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
        fn half_and_sub_agree_with_the_order() {
            for n in [SECP256K1_ORDER, P256_ORDER] {
                let h = half(&n);
                // n is odd, so n − half − half = 1.
                let mut one = [0u8; 32];
                one[31] = 1;
                assert_eq!(sub(&sub(&n, &h), &h), one);
            }
        }

        #[test]
        fn normalisation_flips_only_high_s() {
            for n in [SECP256K1_ORDER, P256_ORDER] {
                let mut sig = [0x11u8; 64];
                sig[32..].copy_from_slice(&sub(&n, &[0x01; 32]));
                assert!(is_high_s(&sig, &n));
                let low = normalize_s(&sig, &n);
                assert!(!is_high_s(&low, &n));
                assert_eq!(&low[32..], &[0x01; 32]);
                assert_eq!(&low[..32], &sig[..32]);
                assert_eq!(normalize_s(&low, &n), low);
            }
        }
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
    fn each_prefix_parses_to_its_variant_and_round_trips() {
        for (prefix, curve) in [
            (Prefix::Edsig, Some(Curve::Ed25519)),
            (Prefix::Spsig, Some(Curve::Secp256k1)),
            (Prefix::P2sig, Some(Curve::P256)),
            (Prefix::BLsig, Some(Curve::Bls12_381)),
            (Prefix::GenericSig, None),
        ] {
            let s = base58::encode(prefix, &vec![3; prefix.payload_len()]);
            let sig: Signature = s.parse().unwrap_or(Signature::Generic([0; 64]));
            assert_eq!(sig.curve(), curve, "{s}");
            assert_eq!(sig.to_b58check(), s);
        }
    }

    #[test]
    fn generic_form_takes_the_curve_of_the_key() {
        let generic = Signature::Generic([9; 64]);
        assert_eq!(
            generic.with_curve(Curve::Secp256k1),
            Ok(Signature::Secp256k1([9; 64]))
        );
        assert!(matches!(
            generic.with_curve(Curve::Bls12_381),
            Err(CryptoError::WrongCurve { .. })
        ));
        assert!(matches!(
            Signature::Ed25519([9; 64]).with_curve(Curve::P256),
            Err(CryptoError::WrongCurve { .. })
        ));
        assert_eq!(
            Signature::Ed25519([9; 64]).to_generic_b58check(),
            generic.to_generic_b58check()
        );
        assert_eq!(Signature::Bls([1; 96]).to_generic_b58check(), None);
    }

    #[test]
    fn wrong_lengths_and_other_kinds_are_refused() {
        assert!(matches!(
            Signature::from_bytes(Curve::Bls12_381, &[0; 64]),
            Err(CryptoError::WrongLength {
                expected: 96,
                found: 64,
                ..
            })
        ));
        assert!(matches!(
            Signature::from_b58check("tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv"),
            Err(CryptoError::UnexpectedKind { .. })
        ));
    }
}
