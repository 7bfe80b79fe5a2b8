//! Base58check with Tezos prefixes.
//!
//! `base58(prefix ‖ payload ‖ sha256(sha256(prefix ‖ payload))[..4])`. Every prefix the
//! signer meets is listed in [`Prefix`], with the payload length it must carry, so a
//! decode names exactly what went wrong: wrong prefix, bad checksum or wrong length.

use crate::b58codec;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A Tezos base58check prefix: its raw bytes and the payload length that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Prefix {
    Tz1,
    Tz2,
    Tz3,
    Tz4,
    /// ML-DSA-44 address (operations name them; never a key of this signer).
    Tz5,
    Edpk,
    Sppk,
    P2pk,
    BLpk,
    /// ML-DSA-44 public key (1312 bytes).
    Mdpk,
    /// Ed25519 seed (32 bytes).
    EdskSeed,
    /// Ed25519 seed followed by its public key (64 bytes), as Octez writes it.
    EdskExpanded,
    Spsk,
    P2sk,
    /// BLS secret scalar, little-endian.
    BLsk,
    Edesk,
    Spesk,
    P2esk,
    BLesk,
    Edsig,
    Spsig,
    P2sig,
    /// The curve-agnostic signature prefix clients accept for tz1–tz3.
    GenericSig,
    BLsig,
    /// ML-DSA-44 signature (2420 bytes).
    Mdsig,
    ChainId,
    BlockHash,
    OperationHash,
    ProtocolHash,
    PayloadHash,
}

impl Prefix {
    /// Every prefix, for tests and for guessing what a string is.
    pub const ALL: [Prefix; 30] = [
        Prefix::Tz1,
        Prefix::Tz2,
        Prefix::Tz3,
        Prefix::Tz4,
        Prefix::Tz5,
        Prefix::Edpk,
        Prefix::Sppk,
        Prefix::P2pk,
        Prefix::BLpk,
        Prefix::Mdpk,
        Prefix::EdskSeed,
        Prefix::EdskExpanded,
        Prefix::Spsk,
        Prefix::P2sk,
        Prefix::BLsk,
        Prefix::Edesk,
        Prefix::Spesk,
        Prefix::P2esk,
        Prefix::BLesk,
        Prefix::Edsig,
        Prefix::Spsig,
        Prefix::P2sig,
        Prefix::GenericSig,
        Prefix::BLsig,
        Prefix::Mdsig,
        Prefix::ChainId,
        Prefix::BlockHash,
        Prefix::OperationHash,
        Prefix::ProtocolHash,
        Prefix::PayloadHash,
    ];

    /// The raw prefix bytes.
    pub const fn bytes(self) -> &'static [u8] {
        match self {
            Prefix::Tz1 => &[0x06, 0xa1, 0x9f],
            Prefix::Tz2 => &[0x06, 0xa1, 0xa1],
            Prefix::Tz3 => &[0x06, 0xa1, 0xa4],
            Prefix::Tz4 => &[0x06, 0xa1, 0xa6],
            Prefix::Tz5 => &[0x06, 0xa1, 0xa9],
            Prefix::Edpk => &[0x0d, 0x0f, 0x25, 0xd9],
            Prefix::Sppk => &[0x03, 0xfe, 0xe2, 0x56],
            Prefix::P2pk => &[0x03, 0xb2, 0x8b, 0x7f],
            Prefix::BLpk => &[0x06, 0x95, 0x87, 0xcc],
            Prefix::Mdpk => &[0x0d, 0x07, 0xed, 0x43],
            Prefix::EdskSeed => &[0x0d, 0x0f, 0x3a, 0x07],
            Prefix::EdskExpanded => &[0x2b, 0xf6, 0x4e, 0x07],
            Prefix::Spsk => &[0x11, 0xa2, 0xe0, 0xc9],
            Prefix::P2sk => &[0x10, 0x51, 0xee, 0xbd],
            Prefix::BLsk => &[0x03, 0x96, 0xc0, 0x28],
            Prefix::Edesk => &[0x07, 0x5a, 0x3c, 0xb3, 0x29],
            Prefix::Spesk => &[0x09, 0xed, 0xf1, 0xae, 0x96],
            Prefix::P2esk => &[0x09, 0x30, 0x39, 0x73, 0xab],
            Prefix::BLesk => &[0x02, 0x05, 0x1e, 0x35, 0x19],
            Prefix::Edsig => &[0x09, 0xf5, 0xcd, 0x86, 0x12],
            Prefix::Spsig => &[0x0d, 0x73, 0x65, 0x13, 0x3f],
            Prefix::P2sig => &[0x36, 0xf0, 0x2c, 0x34],
            Prefix::GenericSig => &[0x04, 0x82, 0x2b],
            Prefix::BLsig => &[0x28, 0xab, 0x40, 0xcf],
            Prefix::Mdsig => &[0x01, 0x9c, 0x2d, 0xd2, 0x03],
            Prefix::ChainId => &[0x57, 0x52, 0x00],
            Prefix::BlockHash => &[0x01, 0x34],
            Prefix::OperationHash => &[0x05, 0x74],
            Prefix::ProtocolHash => &[0x02, 0xaa],
            Prefix::PayloadHash => &[0x01, 0x6a, 0xf2],
        }
    }

    /// The payload length this prefix carries.
    pub const fn payload_len(self) -> usize {
        match self {
            Prefix::Tz1 | Prefix::Tz2 | Prefix::Tz3 | Prefix::Tz4 | Prefix::Tz5 => 20,
            Prefix::Mdpk => 1312,
            Prefix::Mdsig => 2420,
            Prefix::Edpk => 32,
            Prefix::Sppk | Prefix::P2pk => 33,
            Prefix::BLpk => 48,
            Prefix::EdskSeed | Prefix::Spsk | Prefix::P2sk | Prefix::BLsk => 32,
            Prefix::EdskExpanded => 64,
            Prefix::Edesk | Prefix::Spesk | Prefix::P2esk | Prefix::BLesk => 56,
            Prefix::Edsig | Prefix::Spsig | Prefix::P2sig | Prefix::GenericSig => 64,
            Prefix::BLsig => 96,
            Prefix::ChainId => 4,
            Prefix::BlockHash
            | Prefix::OperationHash
            | Prefix::ProtocolHash
            | Prefix::PayloadHash => 32,
        }
    }

    /// The human-readable start of every string with this prefix (for messages).
    pub const fn name(self) -> &'static str {
        match self {
            Prefix::Tz1 => "tz1",
            Prefix::Tz2 => "tz2",
            Prefix::Tz3 => "tz3",
            Prefix::Tz4 => "tz4",
            Prefix::Tz5 => "tz5",
            Prefix::Edpk => "edpk",
            Prefix::Sppk => "sppk",
            Prefix::P2pk => "p2pk",
            Prefix::BLpk => "BLpk",
            Prefix::Mdpk => "mdpk",
            Prefix::EdskSeed | Prefix::EdskExpanded => "edsk",
            Prefix::Spsk => "spsk",
            Prefix::P2sk => "p2sk",
            Prefix::BLsk => "BLsk",
            Prefix::Edesk => "edesk",
            Prefix::Spesk => "spesk",
            Prefix::P2esk => "p2esk",
            Prefix::BLesk => "BLesk",
            Prefix::Edsig => "edsig",
            Prefix::Spsig => "spsig1",
            Prefix::P2sig => "p2sig",
            Prefix::GenericSig => "sig",
            Prefix::BLsig => "BLsig",
            Prefix::Mdsig => "mdsig",
            Prefix::ChainId => "Net",
            Prefix::BlockHash => "B",
            Prefix::OperationHash => "o",
            Prefix::ProtocolHash => "P",
            Prefix::PayloadHash => "vh",
        }
    }
}

/// Why a base58check string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Base58Error {
    #[error("not base58: invalid character at position {position}")]
    InvalidCharacter { position: usize },
    #[error("base58check checksum does not match")]
    BadChecksum,
    #[error("too short for base58check ({len} bytes)")]
    TooShort { len: usize },
    #[error("too long for base58check ({len} characters)")]
    TooLong { len: usize },
    #[error("expected a {expected} string, found another prefix")]
    WrongPrefix { expected: &'static str },
    #[error("{prefix} payload must be {expected} bytes, found {found}")]
    WrongLength {
        prefix: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("unknown base58check prefix")]
    UnknownPrefix,
}

fn checksum(data: &[u8]) -> [u8; 4] {
    let first = Sha256::digest(data);
    let second: [u8; 32] = Sha256::digest(first).into();
    let [a, b, c, d, ..] = second;
    [a, b, c, d]
}

/// Encode `payload` with `prefix`. The caller guarantees the payload length; a wrong one
/// would only produce a string that no decoder accepts, so it is checked in debug builds.
pub fn encode(prefix: Prefix, payload: &[u8]) -> String {
    debug_assert_eq!(payload.len(), prefix.payload_len());
    encode_with_prefix_bytes(prefix.bytes(), payload)
}

/// Base58check of `prefix ‖ payload`, for prefixes outside [`Prefix`] (the many hash
/// kinds that operations carry and only the decoder's JSON shows).
pub fn encode_with_prefix_bytes(prefix: &[u8], payload: &[u8]) -> String {
    let mut data = Vec::with_capacity(prefix.len() + payload.len() + 4);
    data.extend_from_slice(prefix);
    data.extend_from_slice(payload);
    let sum = checksum(&data);
    data.extend_from_slice(&sum);
    let mut digits = Vec::with_capacity(data.len() * 138 / 100 + 1);
    b58codec::encode_into(&data, &mut Vec::new(), &mut digits);
    // The codec writes only alphabet bytes, which are ASCII.
    String::from_utf8(digits).unwrap_or_default()
}

/// Decode the raw bytes of a base58check string, checksum verified, prefix still on.
pub fn decode_raw(s: &str) -> Result<Vec<u8>, Base58Error> {
    decode_checked(s).map(|body| body.to_vec())
}

/// The checked body, in a buffer wiped on drop: secret keys pass through here.
fn decode_checked(s: &str) -> Result<Zeroizing<Vec<u8>>, Base58Error> {
    let mut data = Zeroizing::new(Vec::with_capacity(s.len() + 8));
    let mut limbs = Zeroizing::new(Vec::new());
    b58codec::decode_into(s.as_bytes(), &mut limbs, &mut data).map_err(|e| match e {
        b58codec::DecodeError::InvalidCharacter(position) => {
            Base58Error::InvalidCharacter { position }
        }
        b58codec::DecodeError::TooLong(len) => Base58Error::TooLong { len },
    })?;
    let Some(body_len) = data.len().checked_sub(4) else {
        return Err(Base58Error::TooShort { len: data.len() });
    };
    let (body, sum) = data.split_at(body_len);
    if checksum(body) != sum {
        return Err(Base58Error::BadChecksum);
    }
    data.truncate(body_len);
    Ok(data)
}

/// Decode `s`, which must carry `prefix` and exactly the payload length of that prefix.
pub fn decode(s: &str, prefix: Prefix) -> Result<Vec<u8>, Base58Error> {
    let body = decode_raw(s)?;
    let payload = body
        .strip_prefix(prefix.bytes())
        .ok_or(Base58Error::WrongPrefix {
            expected: prefix.name(),
        })?;
    if payload.len() != prefix.payload_len() {
        return Err(Base58Error::WrongLength {
            prefix: prefix.name(),
            expected: prefix.payload_len(),
            found: payload.len(),
        });
    }
    Ok(payload.to_vec())
}

/// Decode `s` into a fixed-size array, checking the prefix and length.
pub fn decode_array<const N: usize>(s: &str, prefix: Prefix) -> Result<[u8; N], Base58Error> {
    let payload = decode(s, prefix)?;
    <[u8; N]>::try_from(payload.as_slice()).map_err(|_| Base58Error::WrongLength {
        prefix: prefix.name(),
        expected: N,
        found: payload.len(),
    })
}

/// Decode a string whose prefix is one of `candidates`, returning which one matched.
/// Where two prefixes share leading bytes the longer match wins, and a payload of the
/// wrong length for the matched prefix is an error (not a silent fallback).
pub fn decode_any(s: &str, candidates: &[Prefix]) -> Result<(Prefix, Vec<u8>), Base58Error> {
    let body = decode_checked(s)?;
    let p = match_prefix(&body, candidates)?;
    let payload = body.get(p.bytes().len()..).unwrap_or_default().to_vec();
    Ok((p, payload))
}

/// [`decode_any`] for secret material: the payload comes back in a buffer wiped on drop.
pub(crate) fn decode_any_secret(
    s: &str,
    candidates: &[Prefix],
) -> Result<(Prefix, Zeroizing<Vec<u8>>), Base58Error> {
    let body = decode_checked(s)?;
    let p = match_prefix(&body, candidates)?;
    let payload = Zeroizing::new(body.get(p.bytes().len()..).unwrap_or_default().to_vec());
    Ok((p, payload))
}

fn match_prefix(body: &[u8], candidates: &[Prefix]) -> Result<Prefix, Base58Error> {
    let mut best: Option<Prefix> = None;
    for &p in candidates {
        if body.starts_with(p.bytes())
            && body.len() == p.bytes().len() + p.payload_len()
            && best.is_none_or(|b| p.bytes().len() > b.bytes().len())
        {
            best = Some(p);
        }
    }
    if let Some(p) = best {
        return Ok(p);
    }
    // No exact match: say which prefix it looked like, if any, with the length found.
    for &p in candidates {
        if let Some(payload) = body.strip_prefix(p.bytes()) {
            return Err(Base58Error::WrongLength {
                prefix: p.name(),
                expected: p.payload_len(),
                found: payload.len(),
            });
        }
    }
    Err(Base58Error::UnknownPrefix)
}

/// [`encode`] for secret material: every intermediate buffer is wiped, and so is the
/// returned string when dropped.
pub(crate) fn encode_secret(prefix: Prefix, payload: &[u8]) -> Zeroizing<String> {
    let mut data = Zeroizing::new(Vec::with_capacity(prefix.bytes().len() + payload.len() + 4));
    data.extend_from_slice(prefix.bytes());
    data.extend_from_slice(payload);
    let sum = checksum(&data);
    data.extend_from_slice(&sum);
    // Capacity reserved up front, so no copy of the digits is left behind by a reallocation.
    let mut digits = Zeroizing::new(Vec::with_capacity(data.len() * 2));
    let mut limbs = Zeroizing::new(Vec::with_capacity(data.len()));
    b58codec::encode_into(&data, &mut limbs, &mut digits);
    let mut out = Zeroizing::new(String::with_capacity(digits.len()));
    for &b in digits.iter() {
        out.push(char::from(b));
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
    fn every_prefix_round_trips_and_starts_with_its_name() {
        for p in Prefix::ALL {
            let payload = vec![0x5a; p.payload_len()];
            let s = encode(p, &payload);
            assert!(s.starts_with(p.name()), "{p:?} encoded as {s}");
            assert_eq!(decode(&s, p), Ok(payload));
        }
    }

    #[test]
    fn ml_dsa_strings_have_the_lengths_octez_checks() {
        // Octez registers mdpk with 1802 characters and mdsig with 3316 (lib_crypto).
        for (prefix, len) in [
            (Prefix::Tz5, 36),
            (Prefix::Mdpk, 1802),
            (Prefix::Mdsig, 3316),
        ] {
            for fill in [0x00, 0xff] {
                let s = encode(prefix, &vec![fill; prefix.payload_len()]);
                assert_eq!(s.len(), len, "{prefix:?}");
                assert_eq!(
                    decode(&s, prefix).map(|p| p.len()),
                    Ok(prefix.payload_len())
                );
            }
        }
    }

    #[test]
    fn errors_are_specific() {
        let s = encode(Prefix::Tz1, &[1; 20]);
        assert_eq!(
            decode(&s, Prefix::Tz2),
            Err(Base58Error::WrongPrefix { expected: "tz2" })
        );
        let mut broken = s.clone().into_bytes();
        let last = broken.len() - 1;
        broken[last] = if broken[last] == b'a' { b'b' } else { b'a' };
        let broken = String::from_utf8(broken).unwrap_or_default();
        assert_eq!(decode(&broken, Prefix::Tz1), Err(Base58Error::BadChecksum));
        assert!(matches!(
            decode("tz1O0", Prefix::Tz1),
            Err(Base58Error::InvalidCharacter { .. })
        ));
        // A tz1 prefix carrying 21 bytes.
        let mut data = Prefix::Tz1.bytes().to_vec();
        data.extend_from_slice(&[0; 21]);
        let sum = checksum(&data);
        data.extend_from_slice(&sum);
        let long = bs58::encode(data).into_string();
        assert_eq!(
            decode(&long, Prefix::Tz1),
            Err(Base58Error::WrongLength {
                prefix: "tz1",
                expected: 20,
                found: 21
            })
        );
    }

    #[test]
    fn secret_encoding_matches_the_plain_one() {
        for p in Prefix::ALL {
            let payload = vec![0xa5; p.payload_len()];
            assert_eq!(*encode_secret(p, &payload), encode(p, &payload));
            let back = decode_any_secret(&encode(p, &payload), &[p]).map(|(q, b)| (q, b.to_vec()));
            assert_eq!(back, Ok((p, payload)));
        }
    }

    #[test]
    fn decode_any_picks_the_matching_prefix() {
        let s = encode(Prefix::EdskExpanded, &[7; 64]);
        let (p, payload) = decode_any(&s, &[Prefix::EdskSeed, Prefix::EdskExpanded])
            .unwrap_or((Prefix::Tz1, vec![]));
        assert_eq!(p, Prefix::EdskExpanded);
        assert_eq!(payload, vec![7; 64]);
    }
}
