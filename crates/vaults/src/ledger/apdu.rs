//! The Tezos Baking app's APDUs: pure encoding of every command this driver sends and
//! decoding of every answer. No I/O here.
//!
//! Where each fact comes from (read for facts only; nothing copied):
//!
//! - `trilitech/ledger-app-tezos-baking`, commit `50ec8cfc` (2024-10-30, app version 2.5.1):
//!   `doc/apdu.md` (the header layout CLA `0x80`, INS, P1 packet index with `0x80` marking
//!   the last packet, P2 the derivation type, Lc, data; the instruction codes `0x00`–`0x0f`;
//!   the status words; the documented example `8001000011048000002c800006c18000000080000000`,
//!   AUTHORIZE_BAKING for Ed25519 `44'/1729'/0'/0'`), `src/apdu.h` (instruction codes; the
//!   doc's table gives PROMPT_PUBLIC_KEY and SIGN_WITH_HASH the wrong codes, the header has
//!   `0x03` and `0x0f`), `src/apdu.c` (P1 `0x00` first / `0x01` next / `0x80` last marker;
//!   `Lc` above 235 refused with `0x917e`), `src/keys.c` (public keys: Ed25519 as `0x02 ‖ 32
//!   bytes`, secp256k1 and P-256 uncompressed `0x04 ‖ x ‖ y`; ECDSA signatures over the
//!   Blake2b-256 digest, RFC 6979, DER-encoded with the parity of R or-ed into the first
//!   byte; Ed25519 signs the digest too), `src/apdu_sign.c` (the message must fit one
//!   packet: a second data packet is refused with `0x9405`), `src/apdu_query.c`
//!   (QUERY_ALL_HWM: main level, main round, test level, test round, chain id, 4 bytes
//!   big-endian each; QUERY_MAIN_HWM: level, round), `src/apdu_setup.c` (SETUP data: chain
//!   id, main level, test level, path), `src/apdu_reset.c` (RESET data: the level),
//!   `test/utils/client.py` (the app's own test client: 12-byte QUERY_ALL_HWM answers from
//!   apps that have not migrated their storage, `MAX_APDU_SIZE = 235`).
//! - `obsidiansystems/ledger-app-tezos`, commit `58797b2f` (2020-07-02, app version 2.2.8):
//!   `src/globals.h` (`MAX_APDU_SIZE 230`), `src/apdu_baking.c` (QUERY_ALL_HWM answers main
//!   level, test level, chain id; QUERY_MAIN_HWM answers the level alone), `src/apdu_sign.c`
//!   (the baking app also parses one packet only).
//! - ECAD Signatory `pkg/vault/ledger/tezosapp` (commit `1199064c`, 2026-04-22): the key id
//!   syntax `<derivation>/<bip32 path>` and its aliases, the optional `44'/1729'` root,
//!   hardened components only; the VERSION command sent with an explicit `Lc = 0`.
//!
//! BLS (tz4): the 2.5.1 sources have a derivation type 4 (not on Nano S) that signs with the
//! *augmented* BLS scheme (the public key prefixed to the message), which is signing
//! version 1 only, and no release note of the app mentions it. Octez's consensus keys sign
//! with the proof-of-possession scheme (versions 2 and 3), so this driver does not offer tz4.

use std::fmt;
use tezos_crypto::{Curve, PublicKey, Signature};

/// The only instruction class of the app.
pub const CLA: u8 = 0x80;

/// The instruction codes (`src/apdu.h`).
pub mod ins {
    pub const VERSION: u8 = 0x00;
    pub const AUTHORIZE_BAKING: u8 = 0x01;
    pub const GET_PUBLIC_KEY: u8 = 0x02;
    pub const PROMPT_PUBLIC_KEY: u8 = 0x03;
    pub const SIGN: u8 = 0x04;
    pub const RESET: u8 = 0x06;
    pub const QUERY_AUTH_KEY: u8 = 0x07;
    pub const QUERY_MAIN_HWM: u8 = 0x08;
    pub const GIT: u8 = 0x09;
    pub const SETUP: u8 = 0x0a;
    pub const QUERY_ALL_HWM: u8 = 0x0b;
    pub const DEAUTHORIZE: u8 = 0x0c;
    pub const QUERY_AUTH_KEY_WITH_CURVE: u8 = 0x0d;
    pub const HMAC: u8 = 0x0e;
    pub const SIGN_WITH_HASH: u8 = 0x0f;
}

/// P1 of SIGN: the first packet (the key), a later packet, and the last-packet marker.
pub const P1_FIRST: u8 = 0x00;
pub const P1_NEXT: u8 = 0x01;
pub const P1_LAST: u8 = 0x80;

/// The largest data field the Trilitech line of the app (2.4 onwards) takes.
pub const MAX_DATA_TRILITECH: usize = 235;
/// The largest data field the Obsidian line (2.2.x, 2.3.x) takes.
pub const MAX_DATA_OBSIDIAN: usize = 230;

/// The hardened bit of a BIP32 component.
pub const HARDENED: u32 = 0x8000_0000;
/// `44'/1729'`, the Tezos root every key id is under.
pub const TEZOS_ROOT: [u32; 2] = [44 | HARDENED, 1729 | HARDENED];
/// At most this many components (the app's `MAX_BIP32_PATH`).
pub const MAX_PATH_LEN: usize = 10;

/// How the app derives a key: P2 of the commands that take a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Derivation {
    /// SLIP-10 Ed25519 (`ed25519/…`).
    Ed25519,
    Secp256k1,
    /// `P-256/…` (also `p-256`, `secp256r1`).
    P256,
    /// BIP32-Ed25519 (`bip32-ed25519/…`, also `bip25519`).
    Bip32Ed25519,
}

impl Derivation {
    pub const fn p2(self) -> u8 {
        match self {
            Derivation::Ed25519 => 0,
            Derivation::Secp256k1 => 1,
            Derivation::P256 => 2,
            Derivation::Bip32Ed25519 => 3,
        }
    }

    pub const fn curve(self) -> Curve {
        match self {
            Derivation::Ed25519 | Derivation::Bip32Ed25519 => Curve::Ed25519,
            Derivation::Secp256k1 => Curve::Secp256k1,
            Derivation::P256 => Curve::P256,
        }
    }

    /// The name in key ids, as ECAD Signatory prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Derivation::Ed25519 => "ed25519",
            Derivation::Secp256k1 => "secp256k1",
            Derivation::P256 => "P-256",
            Derivation::Bip32Ed25519 => "bip32-ed25519",
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "ed25519" => Ok(Derivation::Ed25519),
            "secp256k1" => Ok(Derivation::Secp256k1),
            "p-256" | "secp256r1" => Ok(Derivation::P256),
            "bip25519" | "bip32-ed25519" => Ok(Derivation::Bip32Ed25519),
            "bls" | "bls12_381" | "bls12-381" => Err(
                "tz4 (BLS) keys are not offered by this driver: the Tezos Baking app's BLS \
                 signs with the augmented scheme only, which Octez's current signing versions \
                 do not use"
                    .to_owned(),
            ),
            other => Err(format!(
                "unknown derivation `{other}`; expected ed25519, secp256k1, P-256 (secp256r1) \
                 or bip32-ed25519 (bip25519)"
            )),
        }
    }
}

/// A key on the device: how it is derived and where.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId {
    pub derivation: Derivation,
    /// The full path, `44'/1729'` included.
    pub path: Vec<u32>,
}

impl KeyId {
    /// Parse ECAD Signatory's form: `<derivation>/<path>`, the path with or without `m/`
    /// and with or without the `44'/1729'` root (`bip25519/0'/0'` is
    /// `bip32-ed25519/44'/1729'/0'/0'`); only hardened components (`'` or `h`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (derivation, path) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not a key id like `bip32-ed25519/0'/0'`"))?;
        let derivation = Derivation::parse(derivation)?;
        let mut parts: Vec<&str> = path.split('/').collect();
        if parts.first() == Some(&"m") {
            parts.remove(0);
        }
        let mut components = Vec::with_capacity(parts.len() + 2);
        for part in parts {
            let number = part
                .strip_suffix('\'')
                .or_else(|| part.strip_suffix('h'))
                .ok_or_else(|| {
                    format!(
                        "`{part}` in `{text}` is not hardened; the app derives hardened \
                         components only (write `{part}'`)"
                    )
                })?;
            let value: u32 = number
                .parse()
                .ok()
                .filter(|v| *v < HARDENED)
                .ok_or_else(|| format!("`{part}` in `{text}` is not a path component"))?;
            components.push(value | HARDENED);
        }
        if !components.starts_with(&TEZOS_ROOT) {
            let mut full = TEZOS_ROOT.to_vec();
            full.extend(components);
            components = full;
        }
        if components.len() <= TEZOS_ROOT.len() {
            return Err(format!(
                "`{text}` is the root key `44'/1729'`, which is not used for signing"
            ));
        }
        if components.len() > MAX_PATH_LEN {
            return Err(format!(
                "`{text}` has more than {MAX_PATH_LEN} path components"
            ));
        }
        Ok(KeyId {
            derivation,
            path: components,
        })
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.derivation.name())?;
        for c in &self.path {
            write!(f, "/{}", c & !HARDENED)?;
            if c & HARDENED != 0 {
                f.write_str("'")?;
            }
        }
        Ok(())
    }
}

/// A path as the app reads it: the count, then each component big-endian.
pub fn encode_path(path: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 4 * path.len());
    // The count fits: key ids are limited to MAX_PATH_LEN components.
    out.push(u8::try_from(path.len()).unwrap_or(u8::MAX));
    for c in path {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out
}

/// A command: `CLA INS P1 P2 Lc data`. Lc is always present (the app reads it even for
/// an empty data field, and ECAD sends it so).
pub fn command(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.extend_from_slice(&[CLA, ins, p1, p2]);
    out.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(data);
    out
}

pub fn version() -> Vec<u8> {
    command(ins::VERSION, 0, 0, &[])
}

pub fn get_public_key(key: &KeyId) -> Vec<u8> {
    command(
        ins::GET_PUBLIC_KEY,
        0,
        key.derivation.p2(),
        &encode_path(&key.path),
    )
}

/// The root key `44'/1729'` (Ed25519), whose hash names the device (ECAD's short id).
pub fn get_root_public_key() -> Vec<u8> {
    command(
        ins::GET_PUBLIC_KEY,
        0,
        Derivation::Ed25519.p2(),
        &encode_path(&TEZOS_ROOT),
    )
}

pub fn authorize_baking(key: &KeyId) -> Vec<u8> {
    command(
        ins::AUTHORIZE_BAKING,
        0,
        key.derivation.p2(),
        &encode_path(&key.path),
    )
}

/// The SIGN exchange for `message`: the key first, then the message in pieces of at most
/// `max_data` bytes, the last one marked. The baking app signs only what fits one piece;
/// longer messages are still split as the protocol says, and the app refuses them.
pub fn sign(key: &KeyId, message: &[u8], max_data: usize) -> Vec<Vec<u8>> {
    let mut out = vec![command(
        ins::SIGN,
        P1_FIRST,
        key.derivation.p2(),
        &encode_path(&key.path),
    )];
    let size = max_data.max(1);
    let count = message.len().div_ceil(size).max(1);
    for (i, piece) in message
        .chunks(size)
        .chain(std::iter::once(&[][..]))
        .take(count)
        .enumerate()
    {
        let p1 = if i + 1 == count {
            P1_NEXT | P1_LAST
        } else {
            P1_NEXT
        };
        out.push(command(ins::SIGN, p1, 0, piece));
    }
    out
}

/// SETUP: authorise `key` for baking on `chain_id`, with the main and test chain levels.
pub fn setup(key: &KeyId, chain_id: [u8; 4], main_level: u32, test_level: u32) -> Vec<u8> {
    let mut data = Vec::with_capacity(12 + 1 + 4 * key.path.len());
    data.extend_from_slice(&chain_id);
    data.extend_from_slice(&main_level.to_be_bytes());
    data.extend_from_slice(&test_level.to_be_bytes());
    data.extend_from_slice(&encode_path(&key.path));
    command(ins::SETUP, 0, key.derivation.p2(), &data)
}

pub fn deauthorize() -> Vec<u8> {
    command(ins::DEAUTHORIZE, 0, 0, &[])
}

/// RESET: the main and test chain levels set to `level` (rounds to 0).
pub fn reset(level: u32) -> Vec<u8> {
    command(ins::RESET, 0, 0, &level.to_be_bytes())
}

pub fn query_all_hwm() -> Vec<u8> {
    command(ins::QUERY_ALL_HWM, 0, 0, &[])
}

pub fn query_main_hwm() -> Vec<u8> {
    command(ins::QUERY_MAIN_HWM, 0, 0, &[])
}

/// What the app answered: its data and status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub status: u16,
}

/// Split `data ‖ SW1 SW2`.
pub fn parse_response(bytes: &[u8]) -> Result<Response, DecodeError> {
    let split = bytes
        .len()
        .checked_sub(2)
        .ok_or(DecodeError("an answer shorter than its status word"))?;
    let (data, sw) = bytes.split_at(split);
    let status = match sw {
        [a, b] => u16::from_be_bytes([*a, *b]),
        _ => return Err(DecodeError("an answer shorter than its status word")),
    };
    Ok(Response {
        data: data.to_vec(),
        status,
    })
}

/// An answer that does not have the shape the app documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Ledger sent {0}")]
pub struct DecodeError(pub &'static str);

/// What a status word other than `0x9000` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// `0x6985`: refused, on the device or by the app's own checks (its high watermark,
    /// a key that is not the authorised baking key).
    Rejected,
    /// `0x6982`: the device is locked (PIN not entered).
    Locked,
    /// `0x6e00`, `0x6d00`, `0x6e01`, `0x6511`: not the Tezos Baking app (the dashboard, or
    /// another app, is open).
    WrongApp,
    /// Anything else: the app found the command or its data wrong.
    Invalid,
}

pub const SW_OK: u16 = 0x9000;

/// The meaning and name of a status word (the table of `doc/apdu.md`).
pub fn status(sw: u16) -> (StatusKind, &'static str) {
    match sw {
        0x6985 => (
            StatusKind::Rejected,
            "rejected (conditions of use not satisfied)",
        ),
        0x6982 => (
            StatusKind::Locked,
            "security condition not satisfied (device locked?)",
        ),
        0x6e00 => (StatusKind::WrongApp, "class not supported"),
        0x6d00 => (StatusKind::WrongApp, "instruction not supported"),
        0x6e01 | 0x6511 => (StatusKind::WrongApp, "no app open"),
        0x6b00 => (StatusKind::Invalid, "wrong parameter P1/P2"),
        0x6c00 => (StatusKind::Invalid, "wrong length"),
        0x917e => (StatusKind::Invalid, "command too long for the instruction"),
        0x9405 => (StatusKind::Invalid, "parse error in the data"),
        0x6a88 => (StatusKind::Invalid, "referenced data not found"),
        0x6a80 => (StatusKind::Invalid, "wrong values in the data"),
        0x6983 => (StatusKind::Invalid, "HID required"),
        0x9200 => (StatusKind::Invalid, "memory error"),
        0x9001 => (StatusKind::Invalid, "cryptographic error"),
        _ => (StatusKind::Invalid, "unknown status"),
    }
}

/// The app's VERSION answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppVersion {
    /// 1 for the baking app, 0 for the wallet app.
    pub kind: u8,
    pub major: u8,
    pub minor: u8,
    pub patch: u8,
}

impl AppVersion {
    pub fn is_baking(&self) -> bool {
        self.kind == 1
    }

    /// The largest data field of one command for this version.
    pub fn max_data(&self) -> usize {
        if (self.major, self.minor) >= (2, 4) {
            MAX_DATA_TRILITECH
        } else {
            MAX_DATA_OBSIDIAN
        }
    }
}

impl fmt::Display for AppVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            0 => "Tezos Wallet",
            1 => "Tezos Baking",
            _ => "unknown app",
        };
        write!(f, "{kind} {}.{}.{}", self.major, self.minor, self.patch)
    }
}

pub fn parse_version(data: &[u8]) -> Result<AppVersion, DecodeError> {
    match data {
        [kind, major, minor, patch, ..] => Ok(AppVersion {
            kind: *kind,
            major: *major,
            minor: *minor,
            patch: *patch,
        }),
        _ => Err(DecodeError("a VERSION answer shorter than 4 bytes")),
    }
}

/// A public key answer: `length ‖ key`, the key as `0x02 ‖ 32 bytes` for Ed25519 and
/// `0x04 ‖ x ‖ y` for secp256k1 and P-256.
pub fn parse_public_key(data: &[u8], derivation: Derivation) -> Result<PublicKey, DecodeError> {
    let (&len, rest) = data
        .split_first()
        .ok_or(DecodeError("an empty public key answer"))?;
    let key = rest
        .get(..usize::from(len))
        .ok_or(DecodeError("a public key shorter than its length byte"))?;
    let curve = derivation.curve();
    match (curve, key) {
        (Curve::Ed25519, [0x02, raw @ ..]) if raw.len() == 32 => PublicKey::from_bytes(curve, raw)
            .map_err(|_| DecodeError("an Ed25519 public key that is not a point")),
        (Curve::Secp256k1 | Curve::P256, [0x04, xy @ ..]) if xy.len() == 64 => {
            PublicKey::from_uncompressed_point(curve, key)
                .map_err(|_| DecodeError("an ECDSA public key that is not a point of its curve"))
        }
        _ => Err(DecodeError(
            "a public key of the wrong form for its derivation",
        )),
    }
}

/// A SIGN answer: 64 bytes for Ed25519; for ECDSA a DER `SEQUENCE { r, s }` whose first
/// byte also carries R's parity in bit 0. ECDSA signatures come back as `r ‖ s` with a
/// low `s`.
pub fn parse_signature(data: &[u8], derivation: Derivation) -> Result<Signature, DecodeError> {
    let curve = derivation.curve();
    match curve {
        Curve::Ed25519 => Signature::from_bytes(curve, data)
            .map_err(|_| DecodeError("an Ed25519 signature that is not 64 bytes")),
        _ => {
            let rs = der_to_rs(data)?;
            let sig = Signature::from_bytes(curve, &rs)
                .map_err(|_| DecodeError("an ECDSA signature of the wrong size"))?;
            Ok(sig.normalize_low_s())
        }
    }
}

/// DER `30 L 02 Lr r 02 Ls s` (parity bit of the first byte ignored) to 64 bytes `r ‖ s`.
pub fn der_to_rs(data: &[u8]) -> Result<[u8; 64], DecodeError> {
    const BAD: DecodeError = DecodeError("an ECDSA signature that is not DER");
    let (&tag, rest) = data.split_first().ok_or(BAD)?;
    if tag & !1 != 0x30 {
        return Err(BAD);
    }
    let (&len, body) = rest.split_first().ok_or(BAD)?;
    if usize::from(len) != body.len() {
        return Err(BAD);
    }
    let (r, body) = der_integer(body)?;
    let (s, body) = der_integer(body)?;
    if !body.is_empty() {
        return Err(BAD);
    }
    let mut out = [0u8; 64];
    place(&mut out[..32], r)?;
    place(&mut out[32..], s)?;
    Ok(out)
}

fn der_integer(data: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    const BAD: DecodeError = DecodeError("an ECDSA signature that is not DER");
    match data {
        [0x02, len, rest @ ..] if usize::from(*len) <= rest.len() && *len > 0 => {
            let (value, tail) = rest.split_at(usize::from(*len));
            Ok((value, tail))
        }
        _ => Err(BAD),
    }
}

/// An unsigned big-endian integer (leading zeros allowed) into a fixed 32-byte slot.
fn place(slot: &mut [u8], value: &[u8]) -> Result<(), DecodeError> {
    let start = value.iter().position(|b| *b != 0).unwrap_or(value.len());
    let digits = value.get(start..).unwrap_or_default();
    let offset = slot
        .len()
        .checked_sub(digits.len())
        .ok_or(DecodeError("an ECDSA scalar longer than 32 bytes"))?;
    slot.get_mut(offset..)
        .ok_or(DecodeError("an ECDSA scalar longer than 32 bytes"))?
        .copy_from_slice(digits);
    Ok(())
}

/// A level and round the app keeps as its high watermark (the round is 0 on apps that
/// keep levels only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LevelRound {
    pub level: u32,
    pub round: Option<u32>,
}

/// The app's watermarks: QUERY_ALL_HWM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HighWatermarks {
    pub main: LevelRound,
    pub test: LevelRound,
    pub chain_id: [u8; 4],
}

fn be32(data: &[u8], at: usize) -> Result<u32, DecodeError> {
    data.get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .ok_or(DecodeError("a watermark answer that is too short"))
}

/// 20 bytes (level, round, test level, test round, chain id) or, from apps that keep
/// levels only, 12 bytes (level, test level, chain id).
pub fn parse_all_hwm(data: &[u8]) -> Result<HighWatermarks, DecodeError> {
    let (main, test, chain_at) = match data.len() {
        20 => (
            LevelRound {
                level: be32(data, 0)?,
                round: Some(be32(data, 4)?),
            },
            LevelRound {
                level: be32(data, 8)?,
                round: Some(be32(data, 12)?),
            },
            16,
        ),
        12 => (
            LevelRound {
                level: be32(data, 0)?,
                round: None,
            },
            LevelRound {
                level: be32(data, 4)?,
                round: None,
            },
            8,
        ),
        _ => {
            return Err(DecodeError(
                "a QUERY_ALL_HWM answer that is neither 12 nor 20 bytes",
            ))
        }
    };
    let chain_id = be32(data, chain_at)?.to_be_bytes();
    Ok(HighWatermarks {
        main,
        test,
        chain_id,
    })
}

/// QUERY_MAIN_HWM: 8 bytes (level, round) or 4 (level).
pub fn parse_main_hwm(data: &[u8]) -> Result<LevelRound, DecodeError> {
    match data.len() {
        8 => Ok(LevelRound {
            level: be32(data, 0)?,
            round: Some(be32(data, 4)?),
        }),
        4 => Ok(LevelRound {
            level: be32(data, 0)?,
            round: None,
        }),
        _ => Err(DecodeError(
            "a QUERY_MAIN_HWM answer that is neither 4 nor 8 bytes",
        )),
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
    use tezos_crypto::{SecretKey, SigningVersion};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_documented_example_is_encoded_byte_for_byte() {
        // doc/apdu.md: AUTHORIZE_BAKING, Ed25519, 44'/1729'/0'/0'.
        let key = KeyId::parse("ed25519/44'/1729'/0'/0'").unwrap();
        assert_eq!(
            hex(&authorize_baking(&key)),
            "8001000011048000002c800006c18000000080000000"
        );
        assert_eq!(
            hex(&encode_path(&key.path)),
            "048000002c800006c18000000080000000"
        );
    }

    #[test]
    fn key_ids_parse_as_ecad_writes_them() {
        let full = KeyId::parse("bip32-ed25519/m/44'/1729'/0'/0'").unwrap();
        for same in [
            "bip32-ed25519/44'/1729'/0'/0'",
            "bip25519/0'/0'",
            "BIP25519/0h/0h",
        ] {
            assert_eq!(KeyId::parse(same).unwrap(), full, "{same}");
        }
        assert_eq!(full.to_string(), "bip32-ed25519/44'/1729'/0'/0'");
        assert_eq!(
            KeyId::parse("secp256r1/0'/1'").unwrap().to_string(),
            "P-256/44'/1729'/0'/1'"
        );
        assert_eq!(
            KeyId::parse("p-256/0'").unwrap().derivation,
            Derivation::P256
        );
        for bad in [
            "ed25519",
            "ed25519/0/0'",
            "ed25519/44'/1729'",
            "ed25519/x'",
            "curve/0'",
            "ed25519/2147483648'",
            "ed25519/0'/0'/0'/0'/0'/0'/0'/0'/0'",
        ] {
            assert!(KeyId::parse(bad).is_err(), "{bad}");
        }
        assert!(KeyId::parse("bls12_381/0'")
            .unwrap_err()
            .contains("not offered"));
    }

    #[test]
    fn commands_have_the_documented_layout() {
        assert_eq!(hex(&version()), "8000000000");
        assert_eq!(hex(&deauthorize()), "800c000000");
        assert_eq!(hex(&query_all_hwm()), "800b000000");
        assert_eq!(hex(&query_main_hwm()), "8008000000");
        assert_eq!(hex(&reset(0x0102_0304)), "800600000401020304");
        let key = KeyId::parse("secp256k1/0'/1'").unwrap();
        assert_eq!(
            hex(&get_public_key(&key)),
            "8002000111048000002c800006c18000000080000001"
        );
        assert_eq!(
            hex(&setup(&key, [0x7a, 0x06, 0xa7, 0x70], 5, 6)),
            "800a00011d7a06a77000000005000000060\
             48000002c800006c18000000080000001"
        );
        assert_eq!(hex(&get_root_public_key()), "8002000009028000002c800006c1");
    }

    #[test]
    fn messages_are_chunked_first_next_last() {
        let key = KeyId::parse("ed25519/0'/0'").unwrap();
        let short = sign(&key, &[0x12; 10], 235);
        assert_eq!(short.len(), 2);
        assert_eq!(
            hex(&short[0]),
            "8004000011048000002c800006c18000000080000000"
        );
        assert_eq!(&short[1][..5], &[0x80, 0x04, 0x81, 0x00, 10]);
        let long = sign(&key, &[0x11; 500], 230);
        let p1s: Vec<u8> = long.iter().map(|c| c[2]).collect();
        assert_eq!(p1s, vec![0x00, 0x01, 0x01, 0x81]);
        let lens: Vec<u8> = long.iter().skip(1).map(|c| c[4]).collect();
        assert_eq!(lens, vec![230, 230, 40]);
        // Exactly one piece's worth is one piece.
        assert_eq!(sign(&key, &[0; 235], 235).len(), 2);
        assert_eq!(sign(&key, &[0; 236], 235).len(), 3);
    }

    #[test]
    fn status_words_have_kinds() {
        assert_eq!(status(0x6985).0, StatusKind::Rejected);
        assert_eq!(status(0x6982).0, StatusKind::Locked);
        assert_eq!(status(0x6e00).0, StatusKind::WrongApp);
        assert_eq!(status(0x6a80).0, StatusKind::Invalid);
        assert_eq!(status(0x9405).1, "parse error in the data");
        let r = parse_response(&unhex("01029000")).unwrap();
        assert_eq!((r.data, r.status), (vec![1, 2], 0x9000));
        assert!(parse_response(&[0x90]).is_err());
    }

    #[test]
    fn versions_choose_the_packet_size() {
        let v = parse_version(&[1, 2, 5, 1]).unwrap();
        assert!(v.is_baking());
        assert_eq!(v.max_data(), 235);
        assert_eq!(v.to_string(), "Tezos Baking 2.5.1");
        assert_eq!(parse_version(&[1, 2, 2, 11]).unwrap().max_data(), 230);
        assert!(parse_version(&[1, 2]).is_err());
    }

    fn ecdsa_answer(key: &SecretKey) -> Vec<u8> {
        let point = key.public_key().to_uncompressed_point().unwrap();
        let mut out = vec![65];
        out.extend_from_slice(&point);
        out
    }

    #[test]
    fn public_keys_parse_per_curve() {
        let ed = SecretKey::generate(Curve::Ed25519).public_key();
        let mut answer = vec![33, 0x02];
        answer.extend_from_slice(ed.as_bytes());
        assert_eq!(parse_public_key(&answer, Derivation::Ed25519).unwrap(), ed);
        assert_eq!(
            parse_public_key(&answer, Derivation::Bip32Ed25519).unwrap(),
            ed
        );
        assert!(parse_public_key(&answer, Derivation::Secp256k1).is_err());
        for (curve, derivation) in [
            (Curve::Secp256k1, Derivation::Secp256k1),
            (Curve::P256, Derivation::P256),
        ] {
            let key = SecretKey::generate(curve);
            let answer = ecdsa_answer(&key);
            assert_eq!(
                parse_public_key(&answer, derivation).unwrap(),
                key.public_key()
            );
            assert!(parse_public_key(&answer[..40], derivation).is_err());
            // A y that does not go with x is refused, not read for its parity.
            let mut bent = answer.clone();
            bent[65] ^= 0x02;
            assert!(parse_public_key(&bent, derivation).is_err());
        }
        assert!(parse_public_key(&[], Derivation::Ed25519).is_err());
    }

    fn der(r: &[u8], s: &[u8], parity: bool) -> Vec<u8> {
        let int = |v: &[u8]| {
            let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
            let mut out = vec![0x02];
            if v.first().is_some_and(|b| b & 0x80 != 0) {
                out.push(v.len() as u8 + 1);
                out.push(0);
            } else {
                out.push(v.len() as u8);
            }
            out.extend(v);
            out
        };
        let body: Vec<u8> = [int(r), int(s)].concat();
        let mut out = vec![0x30 | u8::from(parity), body.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn ecdsa_signatures_come_from_der_with_parity_and_low_s() {
        let key = SecretKey::generate(Curve::Secp256k1);
        let msg = b"\x12some bytes";
        let sig = key.sign(msg, SigningVersion::V3).unwrap();
        let (r, s) = sig.as_bytes().split_at(32);
        for parity in [false, true] {
            let parsed = parse_signature(&der(r, s, parity), Derivation::Secp256k1).unwrap();
            assert_eq!(parsed, sig);
        }
        // A high-S twin (s' = n - s) comes back low.
        let n = unhex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
        let high = sub_be(&n, s);
        let parsed = parse_signature(&der(r, &high, true), Derivation::Secp256k1).unwrap();
        assert_eq!(parsed, sig);
        assert!(parsed.is_low_s());
        key.public_key()
            .verify(msg, &parsed, SigningVersion::V3)
            .unwrap();
        for bad in [
            &[][..],
            &[0x31, 0x00],
            &[0x30, 0x02, 0x02, 0x00],
            &[0x20, 0x00],
        ] {
            assert!(parse_signature(bad, Derivation::P256).is_err());
        }
        // A 33-byte scalar that is not a sign byte is too long.
        let mut long = vec![0x01];
        long.extend_from_slice(s);
        assert!(der_to_rs(&der(r, &long, false)).is_err());
    }

    fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 32];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
            borrow = 0;
            if d < 0 {
                d += 256;
                borrow = 1;
            }
            out[i] = d as u8;
        }
        out
    }

    #[test]
    fn ed25519_signatures_are_64_bytes() {
        let key = SecretKey::generate(Curve::Ed25519);
        let sig = key.sign(b"\x11x", SigningVersion::V3).unwrap();
        assert_eq!(
            parse_signature(sig.as_bytes(), Derivation::Bip32Ed25519).unwrap(),
            sig
        );
        assert!(parse_signature(&sig.as_bytes()[..63], Derivation::Ed25519).is_err());
    }

    #[test]
    fn watermarks_parse_in_both_layouts() {
        let new = unhex("000000640000000200000005000000007a06a770");
        let hwm = parse_all_hwm(&new).unwrap();
        assert_eq!(
            hwm.main,
            LevelRound {
                level: 100,
                round: Some(2)
            }
        );
        assert_eq!(hwm.test.level, 5);
        assert_eq!(hwm.chain_id, [0x7a, 0x06, 0xa7, 0x70]);
        let old = unhex("00000064000000057a06a770");
        let hwm = parse_all_hwm(&old).unwrap();
        assert_eq!(hwm.main.round, None);
        assert_eq!(hwm.test.level, 5);
        assert_eq!(hwm.chain_id, [0x7a, 0x06, 0xa7, 0x70]);
        assert!(parse_all_hwm(&old[..11]).is_err());
        assert_eq!(
            parse_main_hwm(&unhex("0000006400000003")).unwrap().round,
            Some(3)
        );
        assert_eq!(parse_main_hwm(&unhex("00000064")).unwrap().level, 100);
        assert!(parse_main_hwm(&[0; 5]).is_err());
    }
}
