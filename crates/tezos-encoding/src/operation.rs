//! Generic operations (magic 0x03): `branch ‖ contents…` with every operation kind of
//! protocols 023 to 025 and alpha (the differences come from the protocol table). Contents
//! carry no length prefix, so each one is decoded completely to find where the next begins.

use crate::block::SignedBlockHeader;
use crate::consensus::{InlinedConsensusContent, InlinedConsensusOperation};
use crate::error::DecodeErrorKind;
use crate::hashes::{BlockHash, ContractHash, HexBytes, ProtocolHash, SmartRollupAddress};
use crate::numbers::{Bounded, Integer, Mutez, Natural};
use crate::reader::{Reader, Result};
use crate::rollup::{
    read_circuits_info, read_originated_only, read_rollup, read_whitelist, read_zk_published,
    read_zk_rollup, read_zk_state, CircuitKind, DalSlotHeader, GameStakers, PvmKind, Refutation,
    ShardWithProof, SmartRollupCommitment, ZkPublished, ZkUpdate,
};
use crate::types::{read_pkh, Contract, PublicKey, Signature};
use serde::Serialize;
use tezos_crypto::AccountHash;

/// Most proposals one `proposals` operation may carry.
const MAX_PROPOSALS_PER_DELEGATE: usize = 20;
/// Longest entrypoint name.
const MAX_ENTRYPOINT_LEN: usize = 31;

/// The fields every manager operation starts with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ManagerHeader {
    pub source: AccountHash,
    pub fee: Mutez,
    pub counter: Bounded,
    pub gas_limit: Bounded,
    pub storage_limit: Bounded,
}

impl ManagerHeader {
    fn read(r: &mut Reader<'_>) -> Result<ManagerHeader> {
        Ok(ManagerHeader {
            source: read_pkh(r, "21-byte source")?,
            fee: Mutez(r.mutez("fee")?),
            counter: Bounded(r.natural10("counter")?),
            gas_limit: Bounded(r.natural10("gas limit")?),
            storage_limit: Bounded(r.natural10("storage limit")?),
        })
    }
}

/// A ballot vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Vote {
    Yay,
    Nay,
    Pass,
}

impl Vote {
    pub const fn as_str(self) -> &'static str {
        match self {
            Vote::Yay => "yay",
            Vote::Nay => "nay",
            Vote::Pass => "pass",
        }
    }
}

/// Transaction parameters: the entrypoint (normalised: a named entrypoint spelled like a
/// built-in one is that built-in one, an empty name is `default`) and the Micheline value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Parameters {
    pub entrypoint: String,
    /// Binary Micheline, kept opaque (the protocol parses it lazily too).
    #[serde(rename = "parameters")]
    pub value: HexBytes,
}

const BUILTIN_ENTRYPOINTS: [&str; 10] = [
    "default",
    "root",
    "do",
    "set_delegate",
    "remove_delegate",
    "deposit",
    "stake",
    "unstake",
    "finalize_unstake",
    "set_delegate_parameters",
];

/// An entrypoint name from bytes: at most 31 bytes, UTF-8, empty meaning `default`.
fn entrypoint_name(r: &Reader<'_>, at: usize, bytes: &[u8]) -> Result<String> {
    if bytes.len() > MAX_ENTRYPOINT_LEN {
        return Reader::err_at(
            at,
            DecodeErrorKind::TooLong {
                what: "entrypoint name",
                len: bytes.len(),
                max: MAX_ENTRYPOINT_LEN,
            },
        );
    }
    let Ok(name) = std::str::from_utf8(bytes) else {
        return r.err(DecodeErrorKind::Invalid {
            what: "entrypoint name",
            reason: "not UTF-8",
        });
    };
    Ok(if name.is_empty() { "default" } else { name }.to_owned())
}

impl Parameters {
    fn read(r: &mut Reader<'_>) -> Result<Parameters> {
        let at = r.pos();
        let tag = r.u8("1-byte entrypoint tag")?;
        let entrypoint = match tag {
            255 => {
                let len_at = r.pos();
                let len = usize::from(r.u8("1-byte entrypoint name length")?);
                let bytes = r.take(len, "entrypoint name")?;
                entrypoint_name(r, len_at, bytes)?
            }
            t => match BUILTIN_ENTRYPOINTS.get(usize::from(t)) {
                Some(name) => (*name).to_owned(),
                None => {
                    return Reader::err_at(
                        at,
                        DecodeErrorKind::UnknownTag {
                            what: "entrypoint",
                            tag,
                        },
                    )
                }
            },
        };
        let value = HexBytes::from_slice(r.bytes_u32("parameters", "4-byte parameters length")?);
        Ok(Parameters { entrypoint, value })
    }
}

/// One operation in a generic request. Variant names serialise as the Octez kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OperationContent {
    SeedNonceRevelation {
        level: i32,
        nonce: HexBytes,
    },
    DoubleConsensusOperationEvidence {
        slot: u16,
        op1: Box<InlinedConsensusOperation>,
        op2: Box<InlinedConsensusOperation>,
    },
    DoubleBakingEvidence {
        bh1: Box<SignedBlockHeader>,
        bh2: Box<SignedBlockHeader>,
    },
    ActivateAccount {
        pkh: AccountHash,
        secret: HexBytes,
    },
    Proposals {
        source: AccountHash,
        period: i32,
        proposals: Vec<ProtocolHash>,
    },
    Ballot {
        source: AccountHash,
        period: i32,
        proposal: ProtocolHash,
        ballot: Vote,
    },
    VdfRevelation {
        /// Two class-group elements (result, proof), 100 bytes each.
        solution: [HexBytes; 2],
    },
    DrainDelegate {
        consensus_key: AccountHash,
        delegate: AccountHash,
        destination: AccountHash,
    },
    FailingNoop {
        arbitrary: HexBytes,
    },
    DalEntrapmentEvidence {
        attestation: Box<InlinedConsensusOperation>,
        consensus_slot: u16,
        slot_index: u8,
        /// From 025: which attestation lag the trapped shard was attested at.
        #[serde(skip_serializing_if = "Option::is_none")]
        lag_index: Option<u8>,
        shard_with_proof: Box<ShardWithProof>,
    },
    Reveal {
        #[serde(flatten)]
        manager: ManagerHeader,
        public_key: PublicKey,
        proof: Option<Signature>,
    },
    Transaction {
        #[serde(flatten)]
        manager: ManagerHeader,
        amount: Mutez,
        destination: Contract,
        #[serde(flatten)]
        parameters: Option<Parameters>,
    },
    Origination {
        #[serde(flatten)]
        manager: ManagerHeader,
        balance: Mutez,
        delegate: Option<AccountHash>,
        code: HexBytes,
        storage: HexBytes,
    },
    Delegation {
        #[serde(flatten)]
        manager: ManagerHeader,
        delegate: Option<AccountHash>,
    },
    RegisterGlobalConstant {
        #[serde(flatten)]
        manager: ManagerHeader,
        value: HexBytes,
    },
    SetDepositsLimit {
        #[serde(flatten)]
        manager: ManagerHeader,
        limit: Option<Mutez>,
    },
    IncreasePaidStorage {
        #[serde(flatten)]
        manager: ManagerHeader,
        amount: Integer,
        destination: ContractHash,
    },
    UpdateConsensusKey {
        #[serde(flatten)]
        manager: ManagerHeader,
        pk: PublicKey,
        proof: Option<Signature>,
    },
    UpdateCompanionKey {
        #[serde(flatten)]
        manager: ManagerHeader,
        pk: PublicKey,
        proof: Option<Signature>,
    },
    TransferTicket {
        #[serde(flatten)]
        manager: ManagerHeader,
        ticket_contents: HexBytes,
        ticket_ty: HexBytes,
        ticket_ticketer: Contract,
        ticket_amount: Natural,
        destination: Contract,
        entrypoint: String,
    },
    DalPublishCommitment {
        #[serde(flatten)]
        manager: ManagerHeader,
        slot_header: DalSlotHeader,
    },
    SmartRollupOriginate {
        #[serde(flatten)]
        manager: ManagerHeader,
        pvm_kind: PvmKind,
        kernel: HexBytes,
        parameters_ty: HexBytes,
        whitelist: Option<Vec<AccountHash>>,
    },
    SmartRollupAddMessages {
        #[serde(flatten)]
        manager: ManagerHeader,
        message: Vec<HexBytes>,
    },
    SmartRollupCement {
        #[serde(flatten)]
        manager: ManagerHeader,
        rollup: SmartRollupAddress,
    },
    SmartRollupPublish {
        #[serde(flatten)]
        manager: ManagerHeader,
        rollup: SmartRollupAddress,
        commitment: SmartRollupCommitment,
    },
    SmartRollupRefute {
        #[serde(flatten)]
        manager: ManagerHeader,
        rollup: SmartRollupAddress,
        opponent: AccountHash,
        refutation: Box<Refutation>,
    },
    SmartRollupTimeout {
        #[serde(flatten)]
        manager: ManagerHeader,
        rollup: SmartRollupAddress,
        stakers: GameStakers,
    },
    SmartRollupExecuteOutboxMessage {
        #[serde(flatten)]
        manager: ManagerHeader,
        rollup: SmartRollupAddress,
        cemented_commitment: crate::hashes::CommitmentHash,
        output_proof: HexBytes,
    },
    SmartRollupRecoverBond {
        #[serde(flatten)]
        manager: ManagerHeader,
        rollup: SmartRollupAddress,
        staker: AccountHash,
    },
    ZkRollupOrigination {
        #[serde(flatten)]
        manager: ManagerHeader,
        /// PlonK verifier parameters, serialized by the proving system (opaque).
        public_parameters: HexBytes,
        circuits_info: Vec<(String, CircuitKind)>,
        init_state: Vec<HexBytes>,
        nb_ops: i32,
    },
    ZkRollupPublish {
        #[serde(flatten)]
        manager: ManagerHeader,
        zk_rollup: crate::hashes::ZkRollupAddress,
        op: Vec<ZkPublished>,
    },
    ZkRollupUpdate {
        #[serde(flatten)]
        manager: ManagerHeader,
        zk_rollup: crate::hashes::ZkRollupAddress,
        update: Box<ZkUpdate>,
    },
    /// A consensus operation (tags 20, 21, 23, 30, 31) inside a generic request; it
    /// serialises with its own kind (serde requires untagged variants last).
    #[serde(untagged)]
    Consensus(ConsensusInGeneric),
}

/// A consensus operation found inside a generic request, serialised with its own kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsensusInGeneric(pub InlinedConsensusContent);

impl Serialize for ConsensusInGeneric {
    /// The content carries its own `kind`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl OperationContent {
    /// The Octez operation kind name.
    pub const fn kind(&self) -> &'static str {
        match self {
            OperationContent::SeedNonceRevelation { .. } => "seed_nonce_revelation",
            OperationContent::DoubleConsensusOperationEvidence { .. } => {
                "double_consensus_operation_evidence"
            }
            OperationContent::DoubleBakingEvidence { .. } => "double_baking_evidence",
            OperationContent::ActivateAccount { .. } => "activate_account",
            OperationContent::Proposals { .. } => "proposals",
            OperationContent::Ballot { .. } => "ballot",
            OperationContent::VdfRevelation { .. } => "vdf_revelation",
            OperationContent::DrainDelegate { .. } => "drain_delegate",
            OperationContent::FailingNoop { .. } => "failing_noop",
            OperationContent::Consensus(c) => c.0.kind_str(),
            OperationContent::DalEntrapmentEvidence { .. } => "dal_entrapment_evidence",
            OperationContent::Reveal { .. } => "reveal",
            OperationContent::Transaction { .. } => "transaction",
            OperationContent::Origination { .. } => "origination",
            OperationContent::Delegation { .. } => "delegation",
            OperationContent::RegisterGlobalConstant { .. } => "register_global_constant",
            OperationContent::SetDepositsLimit { .. } => "set_deposits_limit",
            OperationContent::IncreasePaidStorage { .. } => "increase_paid_storage",
            OperationContent::UpdateConsensusKey { .. } => "update_consensus_key",
            OperationContent::UpdateCompanionKey { .. } => "update_companion_key",
            OperationContent::TransferTicket { .. } => "transfer_ticket",
            OperationContent::DalPublishCommitment { .. } => "dal_publish_commitment",
            OperationContent::SmartRollupOriginate { .. } => "smart_rollup_originate",
            OperationContent::SmartRollupAddMessages { .. } => "smart_rollup_add_messages",
            OperationContent::SmartRollupCement { .. } => "smart_rollup_cement",
            OperationContent::SmartRollupPublish { .. } => "smart_rollup_publish",
            OperationContent::SmartRollupRefute { .. } => "smart_rollup_refute",
            OperationContent::SmartRollupTimeout { .. } => "smart_rollup_timeout",
            OperationContent::SmartRollupExecuteOutboxMessage { .. } => {
                "smart_rollup_execute_outbox_message"
            }
            OperationContent::SmartRollupRecoverBond { .. } => "smart_rollup_recover_bond",
            OperationContent::ZkRollupOrigination { .. } => "zk_rollup_origination",
            OperationContent::ZkRollupPublish { .. } => "zk_rollup_publish",
            OperationContent::ZkRollupUpdate { .. } => "zk_rollup_update",
        }
    }

    /// The manager header, for manager operations.
    pub const fn manager(&self) -> Option<&ManagerHeader> {
        match self {
            OperationContent::Reveal { manager, .. }
            | OperationContent::Transaction { manager, .. }
            | OperationContent::Origination { manager, .. }
            | OperationContent::Delegation { manager, .. }
            | OperationContent::RegisterGlobalConstant { manager, .. }
            | OperationContent::SetDepositsLimit { manager, .. }
            | OperationContent::IncreasePaidStorage { manager, .. }
            | OperationContent::UpdateConsensusKey { manager, .. }
            | OperationContent::UpdateCompanionKey { manager, .. }
            | OperationContent::TransferTicket { manager, .. }
            | OperationContent::DalPublishCommitment { manager, .. }
            | OperationContent::SmartRollupOriginate { manager, .. }
            | OperationContent::SmartRollupAddMessages { manager, .. }
            | OperationContent::SmartRollupCement { manager, .. }
            | OperationContent::SmartRollupPublish { manager, .. }
            | OperationContent::SmartRollupRefute { manager, .. }
            | OperationContent::SmartRollupTimeout { manager, .. }
            | OperationContent::SmartRollupExecuteOutboxMessage { manager, .. }
            | OperationContent::SmartRollupRecoverBond { manager, .. }
            | OperationContent::ZkRollupOrigination { manager, .. }
            | OperationContent::ZkRollupPublish { manager, .. }
            | OperationContent::ZkRollupUpdate { manager, .. } => Some(manager),
            _ => None,
        }
    }

    /// The name ECAD Signatory's policy uses for this operation: `ballot:<vote>` for
    /// ballots; `stake`, `unstake`, `finalize_unstake` or `set_delegate_parameters` for a
    /// transaction from an implicit account to itself calling that entrypoint (the
    /// protocol's staking pseudo-operations); otherwise the kind.
    pub fn policy_kind(&self) -> String {
        match self {
            OperationContent::Ballot { ballot, .. } => format!("ballot:{}", ballot.as_str()),
            OperationContent::Transaction {
                manager,
                destination: Contract::Implicit(destination),
                parameters: Some(parameters),
                ..
            } if *destination == manager.source => match parameters.entrypoint.as_str() {
                pseudo @ ("stake" | "unstake" | "finalize_unstake" | "set_delegate_parameters") => {
                    pseudo.to_owned()
                }
                _ => "transaction".to_owned(),
            },
            other => other.kind().to_owned(),
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<OperationContent> {
        let at = r.pos();
        let tag = r.u8("1-byte operation tag")?;
        if let Some(content) = InlinedConsensusContent::read_tagged(r, tag)? {
            return Ok(OperationContent::Consensus(ConsensusInGeneric(content)));
        }
        let content = match tag {
            1 => OperationContent::SeedNonceRevelation {
                level: r.non_negative_i32("level", "4-byte level")?,
                nonce: HexBytes::from_slice(r.take(32, "32-byte nonce")?),
            },
            2 => OperationContent::DoubleConsensusOperationEvidence {
                slot: r.u16("2-byte slot")?,
                op1: Box::new(InlinedConsensusOperation::read_dynamic(r)?),
                op2: Box::new(InlinedConsensusOperation::read_dynamic(r)?),
            },
            3 => OperationContent::DoubleBakingEvidence {
                bh1: Box::new(SignedBlockHeader::read_dynamic(r)?),
                bh2: Box::new(SignedBlockHeader::read_dynamic(r)?),
            },
            4 => OperationContent::ActivateAccount {
                pkh: AccountHash::new(
                    tezos_crypto::KeyScheme::Ed25519,
                    r.array("20-byte tz1 address")?,
                ),
                secret: HexBytes::from_slice(r.take(20, "20-byte activation secret")?),
            },
            5 => OperationContent::Proposals {
                source: read_pkh(r, "21-byte source")?,
                period: r.i32("4-byte voting period")?,
                proposals: r.list(
                    "proposals",
                    "4-byte proposals length",
                    Some(MAX_PROPOSALS_PER_DELEGATE),
                    |r| Ok(ProtocolHash(r.array("32-byte protocol hash")?)),
                )?,
            },
            6 => OperationContent::Ballot {
                source: read_pkh(r, "21-byte source")?,
                period: r.i32("4-byte voting period")?,
                proposal: ProtocolHash(r.array("32-byte protocol hash")?),
                ballot: {
                    let at = r.pos();
                    match r.u8("1-byte ballot")? {
                        0 => Vote::Yay,
                        1 => Vote::Nay,
                        2 => Vote::Pass,
                        tag => {
                            return Reader::err_at(
                                at,
                                DecodeErrorKind::UnknownTag {
                                    what: "ballot",
                                    tag,
                                },
                            )
                        }
                    }
                },
            },
            8 => OperationContent::VdfRevelation {
                solution: [
                    HexBytes::from_slice(r.take(100, "100-byte VDF result")?),
                    HexBytes::from_slice(r.take(100, "100-byte VDF proof")?),
                ],
            },
            9 => OperationContent::DrainDelegate {
                consensus_key: read_pkh(r, "21-byte consensus key")?,
                delegate: read_pkh(r, "21-byte delegate")?,
                destination: read_pkh(r, "21-byte destination")?,
            },
            17 => OperationContent::FailingNoop {
                arbitrary: HexBytes::from_slice(
                    r.bytes_u32("failing_noop payload", "4-byte payload length")?,
                ),
            },
            24 => OperationContent::DalEntrapmentEvidence {
                attestation: Box::new(InlinedConsensusOperation::read_dynamic(r)?),
                consensus_slot: r.u16("2-byte consensus slot")?,
                slot_index: r.u8("1-byte slot index")?,
                lag_index: if r.features().entrapment_has_lag_index
                    && r.flag("1-byte lag index presence tag")?
                {
                    Some(r.u8("1-byte lag index")?)
                } else {
                    None
                },
                shard_with_proof: Box::new(ShardWithProof::read(r)?),
            },
            107..=115 | 158 | 200..=207 | 230 | 250..=252 => Self::read_manager(r, at, tag)?,
            _ => {
                return Reader::err_at(
                    at,
                    DecodeErrorKind::UnknownTag {
                        what: "operation",
                        tag,
                    },
                )
            }
        };
        Ok(content)
    }

    fn read_manager(r: &mut Reader<'_>, at: usize, tag: u8) -> Result<OperationContent> {
        let manager = ManagerHeader::read(r)?;
        let lazy = |r: &mut Reader<'_>, what: &'static str| -> Result<HexBytes> {
            Ok(HexBytes::from_slice(
                r.bytes_u32(what, "4-byte expression length")?,
            ))
        };
        let optional_pkh = |r: &mut Reader<'_>| -> Result<Option<AccountHash>> {
            if r.flag("1-byte delegate presence tag")? {
                Ok(Some(read_pkh(r, "21-byte delegate")?))
            } else {
                Ok(None)
            }
        };
        Ok(match tag {
            107 => OperationContent::Reveal {
                manager,
                public_key: PublicKey::read(r)?,
                proof: Signature::read_optional_bls_proof(r)?,
            },
            108 => OperationContent::Transaction {
                manager,
                amount: Mutez(r.mutez("amount")?),
                destination: Contract::read(r)?,
                parameters: if r.flag("1-byte parameters presence tag")? {
                    Some(Parameters::read(r)?)
                } else {
                    None
                },
            },
            109 => OperationContent::Origination {
                manager,
                balance: Mutez(r.mutez("balance")?),
                delegate: optional_pkh(r)?,
                code: lazy(r, "contract code")?,
                storage: lazy(r, "contract storage")?,
            },
            110 => OperationContent::Delegation {
                manager,
                delegate: optional_pkh(r)?,
            },
            111 => OperationContent::RegisterGlobalConstant {
                manager,
                value: lazy(r, "global constant")?,
            },
            112 => OperationContent::SetDepositsLimit {
                manager,
                limit: if r.flag("1-byte limit presence tag")? {
                    Some(Mutez(r.mutez("deposits limit")?))
                } else {
                    None
                },
            },
            113 => OperationContent::IncreasePaidStorage {
                manager,
                amount: r.integer("paid storage amount")?,
                destination: read_originated_only(r)?,
            },
            114 => OperationContent::UpdateConsensusKey {
                manager,
                pk: PublicKey::read(r)?,
                proof: Signature::read_optional_bls_proof(r)?,
            },
            115 => OperationContent::UpdateCompanionKey {
                manager,
                pk: PublicKey::read(r)?,
                proof: Signature::read_optional_bls_proof(r)?,
            },
            158 => {
                let ticket_contents = lazy(r, "ticket contents")?;
                let ticket_ty = lazy(r, "ticket type")?;
                let ticket_ticketer = Contract::read(r)?;
                let amount_at = r.pos();
                let ticket_amount = r.big_natural("ticket amount")?;
                if ticket_amount.is_zero() {
                    return Reader::err_at(
                        amount_at,
                        DecodeErrorKind::OutOfRange {
                            what: "ticket amount",
                            value: 0,
                        },
                    );
                }
                let destination = Contract::read(r)?;
                let name_at = r.pos();
                let name = r.bytes_u32("entrypoint name", "4-byte entrypoint length")?;
                let entrypoint = entrypoint_name(r, name_at, name)?;
                OperationContent::TransferTicket {
                    manager,
                    ticket_contents,
                    ticket_ty,
                    ticket_ticketer,
                    ticket_amount,
                    destination,
                    entrypoint,
                }
            }
            200 => OperationContent::SmartRollupOriginate {
                manager,
                pvm_kind: PvmKind::read(r)?,
                kernel: HexBytes::from_slice(r.bytes_u32("kernel", "4-byte kernel length")?),
                parameters_ty: lazy(r, "parameters type")?,
                whitelist: if r.flag("1-byte whitelist presence tag")? {
                    Some(read_whitelist(r)?)
                } else {
                    None
                },
            },
            201 => OperationContent::SmartRollupAddMessages {
                manager,
                message: r.list("messages", "4-byte messages length", None, |r| {
                    Ok(HexBytes::from_slice(
                        r.bytes_u32("message", "4-byte message length")?,
                    ))
                })?,
            },
            202 => OperationContent::SmartRollupCement {
                manager,
                rollup: read_rollup(r)?,
            },
            203 => OperationContent::SmartRollupPublish {
                manager,
                rollup: read_rollup(r)?,
                commitment: SmartRollupCommitment::read(r)?,
            },
            204 => OperationContent::SmartRollupRefute {
                manager,
                rollup: read_rollup(r)?,
                opponent: read_pkh(r, "21-byte opponent")?,
                refutation: Box::new(Refutation::read(r)?),
            },
            205 => OperationContent::SmartRollupTimeout {
                manager,
                rollup: read_rollup(r)?,
                stakers: GameStakers::read(r)?,
            },
            206 => OperationContent::SmartRollupExecuteOutboxMessage {
                manager,
                rollup: read_rollup(r)?,
                cemented_commitment: crate::hashes::CommitmentHash(
                    r.array("32-byte cemented commitment hash")?,
                ),
                output_proof: HexBytes::from_slice(
                    r.bytes_u32("output proof", "4-byte output proof length")?,
                ),
            },
            207 => OperationContent::SmartRollupRecoverBond {
                manager,
                rollup: read_rollup(r)?,
                staker: read_pkh(r, "21-byte staker")?,
            },
            230 => OperationContent::DalPublishCommitment {
                manager,
                slot_header: DalSlotHeader::read(r)?,
            },
            250 => OperationContent::ZkRollupOrigination {
                manager,
                public_parameters: HexBytes::from_slice(
                    r.bytes_u32("public parameters", "4-byte public parameters length")?,
                ),
                circuits_info: read_circuits_info(r)?,
                init_state: read_zk_state(r, "initial state")?,
                nb_ops: r.int31("number of operations", "4-byte number of operations")?,
            },
            251 => OperationContent::ZkRollupPublish {
                manager,
                zk_rollup: read_zk_rollup(r)?,
                op: read_zk_published(r)?,
            },
            252 => OperationContent::ZkRollupUpdate {
                manager,
                zk_rollup: read_zk_rollup(r)?,
                update: Box::new(ZkUpdate::read(r)?),
            },
            _ => {
                return Reader::err_at(
                    at,
                    DecodeErrorKind::UnknownTag {
                        what: "operation",
                        tag,
                    },
                )
            }
        })
    }
}

/// A 0x03 request: operations to sign, sharing one branch. No chain id is signed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct GenericOperation {
    pub branch: BlockHash,
    pub contents: Vec<OperationContent>,
}

impl GenericOperation {
    /// Decodes the bytes after the magic byte.
    pub(crate) fn read_request(r: &mut Reader<'_>) -> Result<GenericOperation> {
        let branch = BlockHash(r.array("32-byte branch")?);
        let mut contents = Vec::new();
        let mut starts = Vec::new();
        while !r.is_empty() {
            starts.push(r.pos());
            contents.push(OperationContent::read(r)?);
        }
        if contents.is_empty() {
            return r.err(DecodeErrorKind::Truncated {
                expected: "at least one operation after the branch",
            });
        }
        // Octez refuses batches that are not all manager operations.
        if contents.len() > 1 {
            if let Some((at, _)) = starts
                .iter()
                .zip(&contents)
                .find(|(_, c)| c.manager().is_none())
            {
                return Reader::err_at(
                    *at,
                    DecodeErrorKind::Invalid {
                        what: "operation batch",
                        reason: "a batch of several operations may only hold manager operations",
                    },
                );
            }
        }
        Ok(GenericOperation { branch, contents })
    }
}
