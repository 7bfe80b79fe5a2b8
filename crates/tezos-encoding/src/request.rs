//! The signing request: magic byte dispatch and what the policy and the watermark need.

use crate::block::BlockHeader;
use crate::consensus::{ConsensusKind, ConsensusOperation};
use crate::error::{DecodeError, DecodeErrorKind};
use crate::hashes::{HexBytes, PayloadHash};
use crate::operation::GenericOperation;
use crate::protocol::Protocol;
use crate::reader::Reader;
use crate::WatermarkKind;
use serde::{Serialize, Serializer};
use tezos_crypto::ChainId;

/// The kind of a request, as policies name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RequestKind {
    Block,
    Preattestation,
    Attestation,
    AttestationWithDal,
    Generic,
    Pack,
    LegacyBlock,
    LegacyEndorsement,
}

impl RequestKind {
    pub const ALL: [RequestKind; 8] = [
        RequestKind::Block,
        RequestKind::Preattestation,
        RequestKind::Attestation,
        RequestKind::AttestationWithDal,
        RequestKind::Generic,
        RequestKind::Pack,
        RequestKind::LegacyBlock,
        RequestKind::LegacyEndorsement,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RequestKind::Block => "block",
            RequestKind::Preattestation => "preattestation",
            RequestKind::Attestation => "attestation",
            RequestKind::AttestationWithDal => "attestation_with_dal",
            RequestKind::Generic => "generic",
            RequestKind::Pack => "pack",
            RequestKind::LegacyBlock => "legacy_block",
            RequestKind::LegacyEndorsement => "legacy_endorsement",
        }
    }

    pub fn parse(s: &str) -> Option<RequestKind> {
        RequestKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for RequestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Packed Michelson data (0x05), kept opaque.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PackedData {
    pub data: HexBytes,
}

/// A decoded signing request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningRequest {
    /// 0x01, Emmy block: only the chain id and level are read (level at offset 5).
    LegacyBlock { chain_id: ChainId, level: i32 },
    /// 0x02, Emmy endorsement: chain id, and the level in the last 4 bytes.
    LegacyEndorsement { chain_id: ChainId, level: i32 },
    /// 0x03.
    Generic(GenericOperation),
    /// 0x05.
    Pack(PackedData),
    /// 0x11.
    Block(BlockHeader),
    /// 0x12 (tags 20 and 40).
    Preattestation(ConsensusOperation),
    /// 0x13 (tags 21, 23 and 41).
    Attestation(ConsensusOperation),
}

impl SigningRequest {
    /// Decodes a request, magic byte included, with the layout of `protocol` (the one
    /// the chain runs; [`Protocol::DEFAULT`] when nothing is configured). The whole input
    /// must be one request.
    pub fn decode(bytes: &[u8], protocol: Protocol) -> Result<SigningRequest, DecodeError> {
        let mut r = Reader::new(bytes, protocol);
        let Some(&magic) = bytes.first() else {
            return Err(DecodeError::new(0, DecodeErrorKind::Empty));
        };
        r.u8("1-byte magic")?;
        match magic {
            0x01 => {
                let chain_id = ChainId(r.array("4-byte chain id")?);
                let level = r.non_negative_i32("level", "4-byte level")?;
                r.rest();
                Ok(SigningRequest::LegacyBlock { chain_id, level })
            }
            0x02 => {
                let chain_id = ChainId(r.array("4-byte chain id")?);
                let body = r.rest();
                let at = bytes.len().saturating_sub(4);
                let level = match body.len().checked_sub(4).and_then(|i| body.get(i..)) {
                    Some([a, b, c, d]) => i32::from_be_bytes([*a, *b, *c, *d]),
                    _ => {
                        return Err(DecodeError::new(
                            bytes.len(),
                            DecodeErrorKind::Truncated {
                                expected: "a 4-byte level at the end of the endorsement",
                            },
                        ))
                    }
                };
                if level < 0 {
                    return Err(DecodeError::new(
                        at,
                        DecodeErrorKind::OutOfRange {
                            what: "level",
                            value: i64::from(level),
                        },
                    ));
                }
                Ok(SigningRequest::LegacyEndorsement { chain_id, level })
            }
            0x03 => Ok(SigningRequest::Generic(GenericOperation::read_request(
                &mut r,
            )?)),
            0x04 => Err(DecodeError::new(
                0,
                DecodeErrorKind::Invalid {
                    what: "request",
                    reason: "0x04 authentication payloads are signed by clients with their \
                             authentication key, never by this signer",
                },
            )),
            0x05 => Ok(SigningRequest::Pack(PackedData {
                data: HexBytes::from_slice(r.rest()),
            })),
            0x11 => Ok(SigningRequest::Block(BlockHeader::read_request(&mut r)?)),
            0x12 => Ok(SigningRequest::Preattestation(
                ConsensusOperation::read_request(
                    &mut r,
                    &[
                        ConsensusKind::Preattestation,
                        ConsensusKind::BlsModePreattestation,
                    ],
                )?,
            )),
            0x13 => Ok(SigningRequest::Attestation(
                ConsensusOperation::read_request(
                    &mut r,
                    &[
                        ConsensusKind::Attestation,
                        ConsensusKind::AttestationWithDal,
                        ConsensusKind::BlsModeAttestation,
                    ],
                )?,
            )),
            other => Err(DecodeError::new(0, DecodeErrorKind::UnknownMagic(other))),
        }
    }

    pub fn kind(&self) -> RequestKind {
        match self {
            SigningRequest::LegacyBlock { .. } => RequestKind::LegacyBlock,
            SigningRequest::LegacyEndorsement { .. } => RequestKind::LegacyEndorsement,
            SigningRequest::Generic(_) => RequestKind::Generic,
            SigningRequest::Pack(_) => RequestKind::Pack,
            SigningRequest::Block(_) => RequestKind::Block,
            SigningRequest::Preattestation(_) => RequestKind::Preattestation,
            SigningRequest::Attestation(op) => match op.content.kind {
                ConsensusKind::AttestationWithDal => RequestKind::AttestationWithDal,
                _ => RequestKind::Attestation,
            },
        }
    }

    /// The chain the request is bound to; generic operations and packed data sign none.
    pub fn chain_id(&self) -> Option<ChainId> {
        match self {
            SigningRequest::LegacyBlock { chain_id, .. }
            | SigningRequest::LegacyEndorsement { chain_id, .. } => Some(*chain_id),
            SigningRequest::Block(b) => Some(b.chain_id),
            SigningRequest::Preattestation(op) | SigningRequest::Attestation(op) => {
                Some(op.chain_id)
            }
            SigningRequest::Generic(_) | SigningRequest::Pack(_) => None,
        }
    }

    /// What the high watermark compares: blocks → (level, fitness round) as Octez does
    /// (not the payload round); (pre)attestations → (level, round); legacy requests have
    /// no round and use (level, 0). `None` for requests without a watermark.
    pub fn level_round(&self) -> Option<(i32, i32)> {
        match self {
            SigningRequest::LegacyBlock { level, .. }
            | SigningRequest::LegacyEndorsement { level, .. } => Some((*level, 0)),
            SigningRequest::Block(b) => Some((b.level(), b.round())),
            SigningRequest::Preattestation(op) | SigningRequest::Attestation(op) => {
                Some((op.content.level, op.content.round))
            }
            SigningRequest::Generic(_) | SigningRequest::Pack(_) => None,
        }
    }

    /// The watermark slot: every attestation encoding (tags 21, 23, 41 and legacy
    /// endorsements) shares one, so two of them can never be signed at one level and round.
    pub fn watermark_kind(&self) -> Option<WatermarkKind> {
        match self {
            SigningRequest::LegacyBlock { .. } | SigningRequest::Block(_) => {
                Some(WatermarkKind::Block)
            }
            SigningRequest::Preattestation(_) => Some(WatermarkKind::Preattestation),
            SigningRequest::LegacyEndorsement { .. } | SigningRequest::Attestation(_) => {
                Some(WatermarkKind::Attestation)
            }
            SigningRequest::Generic(_) | SigningRequest::Pack(_) => None,
        }
    }

    /// The block payload hash of blocks and (pre)attestations.
    pub fn payload_hash(&self) -> Option<PayloadHash> {
        match self {
            SigningRequest::Block(b) => Some(b.contents.payload_hash),
            SigningRequest::Preattestation(op) | SigningRequest::Attestation(op) => {
                Some(op.content.block_payload_hash)
            }
            _ => None,
        }
    }

    /// The request as compact JSON (what `signatory decode` prints, without its derived
    /// fields), e.g. for audit logs.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Generic requests: the Octez kind of every operation, in order. Empty otherwise.
    pub fn operation_kinds(&self) -> Vec<&'static str> {
        match self {
            SigningRequest::Generic(g) => g.contents.iter().map(|c| c.kind()).collect(),
            _ => Vec::new(),
        }
    }

    /// Generic requests: one policy name per operation, in order, as ECAD Signatory's
    /// policy names them (see [`crate::OperationContent::policy_kind`]): the kind, a
    /// staking pseudo-kind, or `ballot:yay|nay|pass`. A policy allowing `ballot` must
    /// accept every `ballot:*`. Empty for other requests.
    pub fn policy_kinds(&self) -> Vec<String> {
        match self {
            SigningRequest::Generic(g) => g.contents.iter().map(|c| c.policy_kind()).collect(),
            _ => Vec::new(),
        }
    }
}

impl Serialize for SigningRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Tagged<'a, T: Serialize> {
            kind: &'static str,
            #[serde(flatten)]
            body: &'a T,
        }
        #[derive(Serialize)]
        struct Legacy {
            chain_id: ChainId,
            level: i32,
        }
        let kind = self.kind().as_str();
        match self {
            SigningRequest::LegacyBlock { chain_id, level }
            | SigningRequest::LegacyEndorsement { chain_id, level } => Tagged {
                kind,
                body: &Legacy {
                    chain_id: *chain_id,
                    level: *level,
                },
            }
            .serialize(s),
            SigningRequest::Generic(g) => Tagged { kind, body: g }.serialize(s),
            SigningRequest::Pack(p) => Tagged { kind, body: p }.serialize(s),
            SigningRequest::Block(b) => Tagged { kind, body: b }.serialize(s),
            SigningRequest::Preattestation(op) | SigningRequest::Attestation(op) => {
                Tagged { kind, body: op }.serialize(s)
            }
        }
    }
}
