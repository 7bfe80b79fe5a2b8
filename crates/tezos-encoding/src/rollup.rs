//! Sub-encodings of smart rollup, zk rollup and DAL operations (protocols 023 and 024).

use crate::error::DecodeErrorKind;
use crate::hashes::{
    CommitmentHash, ContractHash, DalCommitment, HexBytes, ScriptExprHash, SmartRollupAddress,
    StateHash, ZkRollupAddress,
};
use crate::micheline;
use crate::numbers::{Integer, Natural};
use crate::reader::{Reader, Result};
use crate::types::{read_pkh, Contract};
use serde::{Serialize, Serializer};
use tezos_crypto::AccountHash;

/// Largest smart rollup message, and the bound of the raw-data reveal proof.
const SC_ROLLUP_MESSAGE_SIZE_LIMIT: usize = 4096;

/// BLS12-381 scalar field order r, little-endian (Octez scalars are little-endian and
/// must be canonical, i.e. below r).
const SCALAR_ORDER_LE: [u8; 32] = [
    0x01, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x5b, 0xfe, 0xff, 0x02, 0xa4, 0xbd, 0x53,
    0x05, 0xd8, 0xa1, 0x09, 0x08, 0xd8, 0x39, 0x33, 0x48, 0x7d, 0x9d, 0x29, 0x53, 0xa7, 0xed, 0x73,
];

fn read_scalar(r: &mut Reader<'_>) -> Result<HexBytes> {
    let at = r.pos();
    let bytes = r.array::<32>("32-byte BLS12-381 scalar")?;
    // Compare as little-endian numbers: most significant byte last.
    let below_order = bytes
        .iter()
        .rev()
        .zip(SCALAR_ORDER_LE.iter().rev())
        .find(|(a, b)| a != b)
        .is_some_and(|(a, b)| a < b);
    if !below_order {
        return Reader::err_at(
            at,
            DecodeErrorKind::Invalid {
                what: "scalar",
                reason: "not below the BLS12-381 group order",
            },
        );
    }
    Ok(HexBytes(bytes.to_vec()))
}

/// `array scalar`: a `u32`-prefixed run of 32-byte scalars.
fn read_scalar_array(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<HexBytes>> {
    r.list(what, "4-byte scalar array length", None, read_scalar)
}

/// A string printed as text when it is UTF-8 (names), else lossily.
fn read_name(r: &mut Reader<'_>, what: &'static str) -> Result<String> {
    let bytes = r.bytes_u32(what, "4-byte string length")?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// A 64-bit tick count, printed as a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticks(pub i64);

impl Serialize for Ticks {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// The PVM of a smart rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PvmKind {
    #[serde(rename = "arith")]
    Arith,
    #[serde(rename = "wasm_2_0_0")]
    Wasm200,
    #[serde(rename = "riscv")]
    Riscv,
}

impl PvmKind {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<PvmKind> {
        let at = r.pos();
        match r.u8("1-byte PVM kind")? {
            0 => Ok(PvmKind::Arith),
            1 => Ok(PvmKind::Wasm200),
            2 => Ok(PvmKind::Riscv),
            tag => Reader::err_at(
                at,
                DecodeErrorKind::UnknownTag {
                    what: "PVM kind",
                    tag,
                },
            ),
        }
    }
}

pub(crate) fn read_rollup(r: &mut Reader<'_>) -> Result<SmartRollupAddress> {
    Ok(SmartRollupAddress(r.array("20-byte smart rollup address")?))
}

/// `check_size 4094 (list pkh)`.
pub(crate) fn read_whitelist(r: &mut Reader<'_>) -> Result<Vec<AccountHash>> {
    let at = r.pos();
    let list = r.list("whitelist", "4-byte whitelist length", None, |r| {
        read_pkh(r, "21-byte whitelisted address")
    })?;
    let size = r.pos() - at;
    let max = SC_ROLLUP_MESSAGE_SIZE_LIMIT - 2;
    if size > max {
        return Reader::err_at(
            at,
            DecodeErrorKind::TooLong {
                what: "whitelist",
                len: size,
                max,
            },
        );
    }
    Ok(list)
}

/// A smart rollup commitment (V1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SmartRollupCommitment {
    pub compressed_state: StateHash,
    pub inbox_level: i32,
    pub predecessor: CommitmentHash,
    pub number_of_ticks: Ticks,
}

impl SmartRollupCommitment {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        let compressed_state = StateHash(r.array("32-byte compressed state hash")?);
        let inbox_level = r.non_negative_i32("inbox level", "4-byte inbox level")?;
        let predecessor = CommitmentHash(r.array("32-byte predecessor commitment hash")?);
        let at = r.pos();
        let ticks = r.i64("8-byte number of ticks")?;
        if ticks < 0 {
            return Reader::err_at(
                at,
                DecodeErrorKind::OutOfRange {
                    what: "number of ticks",
                    value: ticks,
                },
            );
        }
        Ok(SmartRollupCommitment {
            compressed_state,
            inbox_level,
            predecessor,
            number_of_ticks: Ticks(ticks),
        })
    }
}

/// The two stakers of a refutation game.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct GameStakers {
    pub alice: AccountHash,
    pub bob: AccountHash,
}

impl GameStakers {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(GameStakers {
            alice: read_pkh(r, "21-byte staker")?,
            bob: read_pkh(r, "21-byte staker")?,
        })
    }
}

/// A refutation move.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "refutation_kind", rename_all = "snake_case")]
pub enum Refutation {
    Start {
        player_commitment_hash: CommitmentHash,
        opponent_commitment_hash: CommitmentHash,
    },
    Move {
        choice: Natural,
        step: RefutationStep,
    },
}

/// The step of a refutation move.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "step_kind", rename_all = "snake_case")]
pub enum RefutationStep {
    Dissection {
        chunks: Vec<DissectionChunk>,
    },
    Proof {
        /// The PVM step proof: serialized by the PVM, opaque to the operation encoding.
        pvm_step: HexBytes,
        input_proof: Option<InputProof>,
    },
}

/// One section of a dissection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DissectionChunk {
    pub state: Option<StateHash>,
    pub tick: Natural,
}

/// The input part of a refutation proof.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "input_proof_kind", rename_all = "snake_case")]
pub enum InputProof {
    InboxProof {
        level: i32,
        message_counter: Natural,
        /// Serialized inbox proof, opaque to the operation encoding.
        serialized_proof: HexBytes,
    },
    RevealProof {
        reveal_proof: RevealProof,
    },
    FirstInput,
}

/// A reveal proof.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "reveal_proof_kind", rename_all = "snake_case")]
pub enum RevealProof {
    RawDataProof {
        raw_data: HexBytes,
    },
    MetadataProof,
    DalPageProof {
        dal_page_id: DalPageId,
        /// Serialized page proof, opaque to the operation encoding.
        dal_proof: HexBytes,
    },
    DalParametersProof,
}

/// A DAL page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DalPageId {
    pub published_level: i32,
    pub slot_index: u8,
    pub page_index: i16,
}

impl Refutation {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Refutation> {
        let at = r.pos();
        match r.u8("1-byte refutation tag")? {
            0 => Ok(Refutation::Start {
                player_commitment_hash: CommitmentHash(r.array("32-byte player commitment hash")?),
                opponent_commitment_hash: CommitmentHash(
                    r.array("32-byte opponent commitment hash")?,
                ),
            }),
            1 => {
                let choice = r.big_natural("refutation choice tick")?;
                let step = RefutationStep::read(r)?;
                Ok(Refutation::Move { choice, step })
            }
            tag => Reader::err_at(
                at,
                DecodeErrorKind::UnknownTag {
                    what: "refutation",
                    tag,
                },
            ),
        }
    }
}

impl RefutationStep {
    fn read(r: &mut Reader<'_>) -> Result<RefutationStep> {
        let at = r.pos();
        match r.u8("1-byte refutation step tag")? {
            0 => {
                let chunks = r.list("dissection", "4-byte dissection length", None, |r| {
                    let state = if r.flag("1-byte state hash presence tag")? {
                        Some(StateHash(r.array("32-byte state hash")?))
                    } else {
                        None
                    };
                    let tick = r.big_natural("dissection tick")?;
                    Ok(DissectionChunk { state, tick })
                })?;
                Ok(RefutationStep::Dissection { chunks })
            }
            1 => {
                let pvm_step =
                    HexBytes::from_slice(r.bytes_u32("PVM step proof", "4-byte PVM step length")?);
                let input_proof = if r.flag("1-byte input proof presence tag")? {
                    Some(InputProof::read(r)?)
                } else {
                    None
                };
                Ok(RefutationStep::Proof {
                    pvm_step,
                    input_proof,
                })
            }
            tag => Reader::err_at(
                at,
                DecodeErrorKind::UnknownTag {
                    what: "refutation step",
                    tag,
                },
            ),
        }
    }
}

impl InputProof {
    fn read(r: &mut Reader<'_>) -> Result<InputProof> {
        let at = r.pos();
        match r.u8("1-byte input proof tag")? {
            0 => Ok(InputProof::InboxProof {
                level: r.non_negative_i32("inbox proof level", "4-byte level")?,
                message_counter: r.big_natural("message counter")?,
                serialized_proof: HexBytes::from_slice(
                    r.bytes_u32("inbox proof", "4-byte inbox proof length")?,
                ),
            }),
            1 => Ok(InputProof::RevealProof {
                reveal_proof: RevealProof::read(r)?,
            }),
            2 => Ok(InputProof::FirstInput),
            tag => Reader::err_at(
                at,
                DecodeErrorKind::UnknownTag {
                    what: "input proof",
                    tag,
                },
            ),
        }
    }
}

impl RevealProof {
    fn read(r: &mut Reader<'_>) -> Result<RevealProof> {
        let at = r.pos();
        match r.u8("1-byte reveal proof tag")? {
            0 => {
                let len_at = r.pos();
                let len = usize::from(r.u16("2-byte raw data length")?);
                if len > SC_ROLLUP_MESSAGE_SIZE_LIMIT {
                    return Reader::err_at(
                        len_at,
                        DecodeErrorKind::TooLong {
                            what: "raw data reveal proof",
                            len,
                            max: SC_ROLLUP_MESSAGE_SIZE_LIMIT,
                        },
                    );
                }
                let raw_data = HexBytes::from_slice(r.take(len, "raw data of a reveal proof")?);
                Ok(RevealProof::RawDataProof { raw_data })
            }
            1 => Ok(RevealProof::MetadataProof),
            2 => {
                let dal_page_id = DalPageId {
                    published_level: r.non_negative_i32("published level", "4-byte level")?,
                    slot_index: r.u8("1-byte slot index")?,
                    page_index: r.i16("2-byte page index")?,
                };
                let dal_proof =
                    HexBytes::from_slice(r.bytes_u32("DAL page proof", "4-byte proof length")?);
                Ok(RevealProof::DalPageProof {
                    dal_page_id,
                    dal_proof,
                })
            }
            3 => Ok(RevealProof::DalParametersProof),
            tag => Reader::err_at(
                at,
                DecodeErrorKind::UnknownTag {
                    what: "reveal proof",
                    tag,
                },
            ),
        }
    }
}

/// The header published by `dal_publish_commitment`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DalSlotHeader {
    pub slot_index: u8,
    pub commitment: DalCommitment,
    /// Degree proof: a compressed G2 point (96 bytes).
    pub commitment_proof: HexBytes,
}

impl DalSlotHeader {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(DalSlotHeader {
            slot_index: r.u8("1-byte slot index")?,
            commitment: DalCommitment(r.array("48-byte DAL commitment")?),
            commitment_proof: HexBytes::from_slice(r.take(96, "96-byte commitment proof")?),
        })
    }
}

/// A DAL shard: its index and its share (scalars); a pair in JSON, as in Octez.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Shard(pub i32, pub Vec<HexBytes>);

/// A DAL shard and its proof, as used by entrapment evidence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ShardWithProof {
    pub shard: Shard,
    /// A compressed G1 point, printed like a commitment (`sh…`) as Octez does.
    pub proof: DalCommitment,
}

impl ShardWithProof {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        let shard_index = r.int31("shard index", "4-byte shard index")?;
        let share = read_scalar_array(r, "shard share")?;
        let proof = DalCommitment(r.array("48-byte shard proof")?);
        Ok(ShardWithProof {
            shard: Shard(shard_index, share),
            proof,
        })
    }
}

/// The kind of a zk rollup circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitKind {
    Public,
    Private,
    Fee,
}

/// `list (string, circuit kind)`.
pub(crate) fn read_circuits_info(r: &mut Reader<'_>) -> Result<Vec<(String, CircuitKind)>> {
    let list_at = r.pos();
    let circuits = r.list("circuits info", "4-byte circuits info length", None, |r| {
        let name = read_name(r, "circuit name")?;
        let at = r.pos();
        let kind = match r.u8("1-byte circuit kind")? {
            0 => CircuitKind::Public,
            1 => CircuitKind::Private,
            2 => CircuitKind::Fee,
            tag => {
                return Reader::err_at(
                    at,
                    DecodeErrorKind::UnknownTag {
                        what: "circuit kind",
                        tag,
                    },
                )
            }
        };
        Ok((name, kind))
    })?;
    // The protocol refuses duplicated circuit names.
    let mut names: Vec<&str> = circuits.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w.first() == w.get(1)) {
        return Reader::err_at(
            list_at,
            DecodeErrorKind::Invalid {
                what: "circuits info",
                reason: "duplicated circuit name",
            },
        );
    }
    Ok(circuits)
}

pub(crate) fn read_zk_rollup(r: &mut Reader<'_>) -> Result<ZkRollupAddress> {
    Ok(ZkRollupAddress(r.array("20-byte zk rollup address")?))
}

pub(crate) fn read_zk_state(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<HexBytes>> {
    read_scalar_array(r, what)
}

/// A zk rollup L2 operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ZkOperation {
    pub op_code: i32,
    pub price_id: ScriptExprHash,
    pub price_amount: Integer,
    pub l1_dst: AccountHash,
    pub rollup_id: ZkRollupAddress,
    pub payload: Vec<HexBytes>,
}

/// A ticket attached to a zk rollup operation (raw Micheline expressions, hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ZkTicket {
    pub contents: HexBytes,
    pub ty: HexBytes,
    pub ticketer: Contract,
}

/// One entry of `zk_rollup_publish`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ZkPublished {
    pub operation: ZkOperation,
    pub ticket: Option<ZkTicket>,
}

pub(crate) fn read_zk_published(r: &mut Reader<'_>) -> Result<Vec<ZkPublished>> {
    r.list(
        "zk rollup operations",
        "4-byte operation list length",
        None,
        |r| {
            let op_code = r.int31("zk operation code", "4-byte operation code")?;
            let price_id = ScriptExprHash(r.array("32-byte ticket hash")?);
            let price_amount = r.integer("price amount")?;
            let l1_dst = read_pkh(r, "21-byte L1 destination")?;
            let rollup_id = read_zk_rollup(r)?;
            let payload = read_scalar_array(r, "zk operation payload")?;
            let operation = ZkOperation {
                op_code,
                price_id,
                price_amount,
                l1_dst,
                rollup_id,
                payload,
            };
            let ticket = if r.option_tag("ticket option", "1-byte ticket option tag")? {
                let contents = HexBytes::from_slice(micheline::read_expr(r)?);
                let ty = HexBytes::from_slice(micheline::read_expr(r)?);
                let ticketer = Contract::read(r)?;
                Some(ZkTicket {
                    contents,
                    ty,
                    ticketer,
                })
            } else {
                None
            };
            Ok(ZkPublished { operation, ticket })
        },
    )
}

/// Public inputs of a public circuit in a zk rollup update.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ZkOpPublicInputs {
    pub new_state: Vec<HexBytes>,
    pub fee: HexBytes,
    pub exit_validity: bool,
}

/// Public inputs of a private circuit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ZkPrivatePublicInputs {
    pub new_state: Vec<HexBytes>,
    pub fee: HexBytes,
}

/// A zk rollup update.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ZkUpdate {
    pub pending_pis: Vec<(String, ZkOpPublicInputs)>,
    pub private_pis: Vec<(String, ZkPrivatePublicInputs)>,
    pub fee_pi_new_state: Vec<HexBytes>,
    /// The PlonK proof, serialized by the proving system (opaque).
    pub proof: HexBytes,
}

impl ZkUpdate {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<ZkUpdate> {
        let pending_pis = r.list("pending public inputs", "4-byte list length", None, |r| {
            let name = read_name(r, "circuit name")?;
            let new_state = read_zk_state(r, "new state")?;
            let fee = read_scalar(r)?;
            let exit_validity = r.flag("1-byte exit validity")?;
            Ok((
                name,
                ZkOpPublicInputs {
                    new_state,
                    fee,
                    exit_validity,
                },
            ))
        })?;
        let private_pis = r.list("private public inputs", "4-byte list length", None, |r| {
            let name = read_name(r, "circuit name")?;
            let new_state = read_zk_state(r, "new state")?;
            let fee = read_scalar(r)?;
            Ok((name, ZkPrivatePublicInputs { new_state, fee }))
        })?;
        let fee_pi_new_state = read_zk_state(r, "fee circuit new state")?;
        let proof = HexBytes::from_slice(r.bytes_u32("PlonK proof", "4-byte proof length")?);
        Ok(ZkUpdate {
            pending_pis,
            private_pis,
            fee_pi_new_state,
            proof,
        })
    }
}

/// `hash(20) ‖ padding`, for `increase_paid_storage` (originated contracts only).
pub(crate) fn read_originated_only(r: &mut Reader<'_>) -> Result<ContractHash> {
    let at = r.pos();
    match r.u8("1-byte contract tag")? {
        1 => crate::types::read_originated(r),
        tag => Reader::err_at(
            at,
            DecodeErrorKind::UnknownTag {
                what: "originated contract",
                tag,
            },
        ),
    }
}
