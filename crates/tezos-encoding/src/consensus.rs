//! Consensus operations: (pre)attestation requests 0x12 / 0x13, and the consensus
//! operations inlined in denunciations.

use crate::dal::DalAttested;
use crate::error::DecodeErrorKind;
use crate::hashes::{BlockHash, PayloadHash};
use crate::numbers::Integer;
use crate::reader::{Reader, Result};
use crate::types::Signature;
use serde::Serialize;
use tezos_crypto::ChainId;

/// Which consensus operation, by its Octez tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConsensusKind {
    /// Tag 20.
    Preattestation,
    /// Tag 21.
    Attestation,
    /// Tag 23: an attestation carrying a DAL bitset.
    AttestationWithDal,
    /// Tag 40: tz4 preattestation as signed, without the slot.
    BlsModePreattestation,
    /// Tag 41: tz4 attestation as signed, without the slot.
    BlsModeAttestation,
}

impl ConsensusKind {
    pub const fn tag(self) -> u8 {
        match self {
            ConsensusKind::Preattestation => 20,
            ConsensusKind::Attestation => 21,
            ConsensusKind::AttestationWithDal => 23,
            ConsensusKind::BlsModePreattestation => 40,
            ConsensusKind::BlsModeAttestation => 41,
        }
    }

    /// The Octez operation kind name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConsensusKind::Preattestation => "preattestation",
            ConsensusKind::Attestation => "attestation",
            ConsensusKind::AttestationWithDal => "attestation_with_dal",
            ConsensusKind::BlsModePreattestation => "bls_mode_preattestation",
            ConsensusKind::BlsModeAttestation => "bls_mode_attestation",
        }
    }

    pub const fn is_preattestation(self) -> bool {
        matches!(
            self,
            ConsensusKind::Preattestation | ConsensusKind::BlsModePreattestation
        )
    }
}

/// The body of a (pre)attestation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ConsensusContent {
    pub kind: ConsensusKind,
    /// Absent in the BLS-mode encodings (tags 40 and 41).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u16>,
    pub level: i32,
    pub round: i32,
    pub block_payload_hash: PayloadHash,
    /// The DAL bitset of tag 23, as a decimal integer (Octez encodes bitsets as Zarith
    /// `z`, signed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dal_attestation: Option<Integer>,
    /// What that bitset attests, read with the protocol's DAL layout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dal_attested: Option<DalAttested>,
}

/// The DAL bitset and what it attests under the protocol being read.
fn read_dal_bitset(r: &mut Reader<'_>) -> Result<(Integer, DalAttested)> {
    let bitset = r.integer("DAL attestation bitset")?;
    let attested = DalAttested::read(&bitset, r.features().dal_layout);
    Ok((bitset, attested))
}

impl ConsensusContent {
    /// Reads the body after `tag` (already consumed).
    fn read_body(r: &mut Reader<'_>, kind: ConsensusKind) -> Result<ConsensusContent> {
        let slot = match kind {
            ConsensusKind::BlsModePreattestation | ConsensusKind::BlsModeAttestation => None,
            _ => Some(r.u16("2-byte slot")?),
        };
        let level = r.non_negative_i32("level", "4-byte level")?;
        let round = r.non_negative_i32("round", "4-byte round")?;
        let block_payload_hash = PayloadHash(r.array("32-byte block payload hash")?);
        let (dal_attestation, dal_attested) = match kind {
            ConsensusKind::AttestationWithDal => {
                let (bitset, attested) = read_dal_bitset(r)?;
                (Some(bitset), Some(attested))
            }
            _ => (None, None),
        };
        Ok(ConsensusContent {
            kind,
            slot,
            level,
            round,
            block_payload_hash,
            dal_attestation,
            dal_attested,
        })
    }
}

/// A 0x12 or 0x13 request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsensusOperation {
    pub chain_id: ChainId,
    pub branch: BlockHash,
    pub content: ConsensusContent,
}

impl Serialize for ConsensusOperation {
    /// Flat, with the operation's own kind as `operation_kind` (`kind` names the request).
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            chain_id: &'a ChainId,
            branch: &'a BlockHash,
            operation_kind: ConsensusKind,
            #[serde(skip_serializing_if = "Option::is_none")]
            slot: Option<u16>,
            level: i32,
            round: i32,
            block_payload_hash: &'a PayloadHash,
            #[serde(skip_serializing_if = "Option::is_none")]
            dal_attestation: Option<&'a Integer>,
            #[serde(skip_serializing_if = "Option::is_none")]
            dal_attested: Option<&'a DalAttested>,
        }
        View {
            chain_id: &self.chain_id,
            branch: &self.branch,
            operation_kind: self.content.kind,
            slot: self.content.slot,
            level: self.content.level,
            round: self.content.round,
            block_payload_hash: &self.content.block_payload_hash,
            dal_attestation: self.content.dal_attestation.as_ref(),
            dal_attested: self.content.dal_attested.as_ref(),
        }
        .serialize(s)
    }
}

impl ConsensusOperation {
    /// Decodes the bytes after the magic byte; `allowed` lists the tags valid for it.
    pub(crate) fn read_request(
        r: &mut Reader<'_>,
        allowed: &[ConsensusKind],
    ) -> Result<ConsensusOperation> {
        let chain_id = ChainId(r.array("4-byte chain id")?);
        let branch = BlockHash(r.array("32-byte branch")?);
        let at = r.pos();
        let tag = r.u8("1-byte operation tag")?;
        let Some(&kind) = allowed.iter().find(|k| k.tag() == tag) else {
            return Reader::err_at(
                at,
                DecodeErrorKind::UnknownTag {
                    what: "consensus operation",
                    tag,
                },
            );
        };
        let content = ConsensusContent::read_body(r, kind)?;
        r.finish("the consensus operation")?;
        Ok(ConsensusOperation {
            chain_id,
            branch,
            content,
        })
    }
}

/// One member of an attestations aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct AggregateMember {
    pub slot: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dal_attestation: Option<Integer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dal_attested: Option<DalAttested>,
}

/// The consensus contents that may appear inlined in a denunciation or inside a generic
/// operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum InlinedConsensusContent {
    Single(ConsensusContent),
    Aggregate {
        kind: AggregateKind,
        level: i32,
        round: i32,
        block_payload_hash: PayloadHash,
        committee: Vec<AggregateMember>,
    },
}

/// Tags 30 and 31.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateKind {
    PreattestationsAggregate,
    AttestationsAggregate,
}

impl AggregateKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            AggregateKind::PreattestationsAggregate => "preattestations_aggregate",
            AggregateKind::AttestationsAggregate => "attestations_aggregate",
        }
    }
}

impl InlinedConsensusContent {
    /// Reads the body of a consensus content whose tag is `tag` (already consumed),
    /// or returns `None` when the tag is not a consensus tag of the generic encoding.
    pub(crate) fn read_tagged(r: &mut Reader<'_>, tag: u8) -> Result<Option<Self>> {
        let content = match tag {
            20 => Self::Single(ConsensusContent::read_body(
                r,
                ConsensusKind::Preattestation,
            )?),
            21 => Self::Single(ConsensusContent::read_body(r, ConsensusKind::Attestation)?),
            23 => Self::Single(ConsensusContent::read_body(
                r,
                ConsensusKind::AttestationWithDal,
            )?),
            30 | 31 => {
                let level = r.non_negative_i32("level", "4-byte level")?;
                let round = r.non_negative_i32("round", "4-byte round")?;
                let block_payload_hash = PayloadHash(r.array("32-byte block payload hash")?);
                let (kind, committee) = if tag == 30 {
                    let committee = r.list("committee", "4-byte committee length", None, |r| {
                        Ok(AggregateMember {
                            slot: r.u16("2-byte slot")?,
                            dal_attestation: None,
                            dal_attested: None,
                        })
                    })?;
                    (AggregateKind::PreattestationsAggregate, committee)
                } else {
                    let committee = r.list("committee", "4-byte committee length", None, |r| {
                        let slot = r.u16("2-byte slot")?;
                        let (dal_attestation, dal_attested) =
                            if r.flag("1-byte DAL attestation presence tag")? {
                                let (bitset, attested) = read_dal_bitset(r)?;
                                (Some(bitset), Some(attested))
                            } else {
                                (None, None)
                            };
                        Ok(AggregateMember {
                            slot,
                            dal_attestation,
                            dal_attested,
                        })
                    })?;
                    (AggregateKind::AttestationsAggregate, committee)
                };
                Self::Aggregate {
                    kind,
                    level,
                    round,
                    block_payload_hash,
                    committee,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(content))
    }

    pub const fn kind_str(&self) -> &'static str {
        match self {
            InlinedConsensusContent::Single(c) => c.kind.as_str(),
            InlinedConsensusContent::Aggregate { kind, .. } => kind.as_str(),
        }
    }
}

/// A signed consensus operation inlined in a denunciation: `branch ‖ content ‖
/// signature?`, the signature filling the rest of its length-prefixed extent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct InlinedConsensusOperation {
    pub branch: BlockHash,
    /// Named `operations` as in Octez's JSON.
    #[serde(rename = "operations")]
    pub operation: InlinedConsensusContent,
    pub signature: Option<Signature>,
}

impl InlinedConsensusOperation {
    pub(crate) fn read_dynamic(r: &mut Reader<'_>) -> Result<Self> {
        r.dynamic(
            "inlined consensus operation",
            "4-byte inlined operation length",
            |r| {
                let branch = BlockHash(r.array("32-byte branch")?);
                let at = r.pos();
                let tag = r.u8("1-byte consensus operation tag")?;
                let Some(operation) = InlinedConsensusContent::read_tagged(r, tag)? else {
                    return Reader::err_at(
                        at,
                        DecodeErrorKind::UnknownTag {
                            what: "inlined consensus operation",
                            tag,
                        },
                    );
                };
                let signature = if r.is_empty() {
                    None
                } else {
                    Some(Signature::read_rest(r)?)
                };
                Ok(InlinedConsensusOperation {
                    branch,
                    operation,
                    signature,
                })
            },
        )
    }
}
