//! Decoding of the bytes a Tezos baker or wallet asks a remote signer to sign.
//!
//! [`SigningRequest::decode`] takes the request with its magic byte and decodes it
//! completely and exactly, as the given [`Protocol`] (023 Seoul, 024 Tallinn, 025 Ushuaia,
//! the default, or alpha) encodes it; what differs between protocols is one row of
//! [`PROTOCOLS`]. It decodes a
//! Tenderbake block header (0x11), a preattestation (0x12) or attestation (0x13), a
//! generic operation with every operation kind (0x03), legacy Emmy blocks and endorsements
//! (0x01, 0x02: chain id and level only) and packed data (0x05, opaque). Any other input,
//! including trailing bytes, is a [`DecodeError`] naming the offset and what was expected.
//!
//! The decoder is pure: no I/O, no panics on any input, no allocation driven by a length
//! prefix (every prefix is checked against the bytes that remain), no recursion deeper than
//! the fixed nesting of the encodings.
//!
//! [`signer_messages`] is the other encoding a signer speaks: the messages of Octez's
//! socket signer protocol.
#![forbid(unsafe_code)]

mod block;
mod consensus;
mod dal;
mod error;
mod hashes;
mod micheline;
mod numbers;
mod operation;
mod protocol;
mod reader;
mod request;
mod rollup;
pub mod signer_messages;
mod types;
pub mod watermark_kind;

pub use block::{
    AnyFitness, BlockContents, BlockHeader, Fitness, PerBlockVote, PerBlockVotes, ShellHeader,
    SignedBlockHeader, Timestamp,
};
pub use consensus::{
    AggregateKind, AggregateMember, ConsensusContent, ConsensusKind, ConsensusOperation,
    InlinedConsensusContent, InlinedConsensusOperation,
};
pub use dal::{DalAttested, LagSlots};
pub use error::{DecodeError, DecodeErrorKind};
pub use hashes::{
    BlockHash, CommitmentHash, ContextHash, ContractHash, DalCommitment, HexBytes, NonceHash,
    OperationListListHash, PayloadHash, ProtocolHash, ScriptExprHash, SmartRollupAddress,
    StateHash, ZkRollupAddress,
};
pub use numbers::{Bounded, Integer, Mutez, Natural, MAX_ZARITH_BYTES};
pub use operation::{
    ConsensusInGeneric, GenericOperation, ManagerHeader, OperationContent, Parameters, Vote,
};
pub use protocol::{DalLayout, Protocol, ProtocolFeatures, UnknownProtocol, PROTOCOLS};
pub use request::{PackedData, RequestKind, SigningRequest};
pub use rollup::{
    CircuitKind, DalPageId, DalSlotHeader, DissectionChunk, GameStakers, InputProof, PvmKind,
    Refutation, RefutationStep, RevealProof, Shard, ShardWithProof, SmartRollupCommitment, Ticks,
    ZkOpPublicInputs, ZkOperation, ZkPrivatePublicInputs, ZkPublished, ZkTicket, ZkUpdate,
};
pub use types::{Contract, PublicKey, Signature};
pub use watermark_kind::WatermarkKind;
