//! Tenderbake block headers: the 0x11 signing request and the headers inlined in
//! double-baking evidence.

use crate::error::DecodeErrorKind;
use crate::hashes::{
    BlockHash, ContextHash, HexBytes, NonceHash, OperationListListHash, PayloadHash,
};
use crate::reader::{Reader, Result};
use crate::types::Signature;
use serde::{Serialize, Serializer};
use std::fmt;
use tezos_crypto::ChainId;

/// Seconds since the Unix epoch, printed as RFC 3339 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        // Civil date from days since 1970-01-01 (proleptic Gregorian).
        let z = i128::from(days) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i128::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A Tenderbake fitness: `[02, level, locked_round?, -predecessor_round-1, round]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Fitness {
    pub locked_round: Option<i32>,
    pub predecessor_round: i32,
    /// The block's round: what Octez watermarks a block by.
    pub round: i32,
}

impl Fitness {
    /// Reads the `u32`-prefixed list of `u32`-prefixed byte strings and checks it the
    /// way the protocol does (`Fitness_repr.from_raw` and the level check of validation).
    fn read(r: &mut Reader<'_>, level: i32) -> Result<Fitness> {
        r.dynamic("fitness", "4-byte fitness length", |r| {
            let start = r.pos();
            let version = r.bytes_u32("fitness version", "4-byte fitness element length")?;
            if version != [0x02] {
                return Reader::err_at(
                    start,
                    DecodeErrorKind::Invalid {
                        what: "fitness",
                        reason: "not a Tenderbake fitness (version 02)",
                    },
                );
            }
            let at = r.pos();
            let fitness_level = element_i32(r, "fitness level")?;
            if fitness_level != level {
                return Reader::err_at(
                    at,
                    DecodeErrorKind::Invalid {
                        what: "fitness",
                        reason: "fitness level differs from the block level",
                    },
                );
            }
            let at = r.pos();
            let locked = r.bytes_u32("fitness locked round", "4-byte fitness element length")?;
            let locked_round = match locked {
                [] => None,
                [a, b, c, d] => Some(non_negative(
                    at + 4,
                    "locked round",
                    i32::from_be_bytes([*a, *b, *c, *d]),
                )?),
                _ => {
                    return Reader::err_at(
                        at,
                        DecodeErrorKind::Invalid {
                            what: "fitness",
                            reason: "locked round must be 0 or 4 bytes",
                        },
                    )
                }
            };
            let at = r.pos();
            let neg_pred = element_i32(r, "fitness predecessor round")?;
            // Stored as -round - 1, with Octez's wrapping 32-bit arithmetic.
            let predecessor_round = non_negative(
                at + 4,
                "predecessor round",
                neg_pred.wrapping_neg().wrapping_sub(1),
            )?;
            let at = r.pos();
            let round = non_negative(at + 4, "round", element_i32(r, "fitness round")?)?;
            if let Some(locked) = locked_round {
                if round <= locked {
                    return Reader::err_at(
                        at,
                        DecodeErrorKind::Invalid {
                            what: "fitness",
                            reason: "round must be greater than the locked round",
                        },
                    );
                }
            }
            r.finish("the five fitness elements")?;
            Ok(Fitness {
                locked_round,
                predecessor_round,
                round,
            })
        })
    }
}

fn element_i32(r: &mut Reader<'_>, what: &'static str) -> Result<i32> {
    let at = r.pos();
    match r.bytes_u32(what, "4-byte fitness element length")? {
        [a, b, c, d] => Ok(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => Reader::err_at(
            at,
            DecodeErrorKind::Invalid {
                what,
                reason: "must be 4 bytes",
            },
        ),
    }
}

fn non_negative(at: usize, what: &'static str, v: i32) -> Result<i32> {
    if v < 0 {
        return Reader::err_at(
            at,
            DecodeErrorKind::OutOfRange {
                what,
                value: i64::from(v),
            },
        );
    }
    Ok(v)
}

/// The fitness of a header inlined in double-baking evidence: Octez decodes any list of
/// byte strings there, so a non-Tenderbake one is kept raw rather than refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum AnyFitness {
    Tenderbake(Fitness),
    Other { fitness: Vec<HexBytes> },
}

impl AnyFitness {
    fn read(r: &mut Reader<'_>, level: i32) -> Result<AnyFitness> {
        let mut probe = r.clone();
        if let Ok(fitness) = Fitness::read(&mut probe, level) {
            *r = probe;
            return Ok(AnyFitness::Tenderbake(fitness));
        }
        let fitness = r.list("fitness", "4-byte fitness length", None, |r| {
            Ok(HexBytes::from_slice(r.bytes_u32(
                "fitness element",
                "4-byte fitness element length",
            )?))
        })?;
        Ok(AnyFitness::Other { fitness })
    }
}

/// The shell part of a block header; `F` is [`Fitness`] for signing requests (checked
/// strictly: the watermark needs its round) and [`AnyFitness`] in evidence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ShellHeader<F = Fitness> {
    pub level: i32,
    pub proto: u8,
    pub predecessor: BlockHash,
    pub timestamp: Timestamp,
    pub validation_pass: u8,
    pub operations_hash: OperationListListHash,
    #[serde(flatten)]
    pub fitness: F,
    pub context: ContextHash,
}

impl<F> ShellHeader<F> {
    fn read(
        r: &mut Reader<'_>,
        read_fitness: impl FnOnce(&mut Reader<'_>, i32) -> Result<F>,
    ) -> Result<ShellHeader<F>> {
        let level = r.non_negative_i32("level", "4-byte level")?;
        let proto = r.u8("1-byte protocol level")?;
        let predecessor = BlockHash(r.array("32-byte predecessor hash")?);
        let timestamp = Timestamp(r.i64("8-byte timestamp")?);
        let validation_pass = r.u8("1-byte validation pass count")?;
        let operations_hash = OperationListListHash(r.array("32-byte operations hash")?);
        let fitness = read_fitness(r, level)?;
        let context = ContextHash(r.array("32-byte context hash")?);
        Ok(ShellHeader {
            level,
            proto,
            predecessor,
            timestamp,
            validation_pass,
            operations_hash,
            fitness,
            context,
        })
    }
}

/// A per-block vote (liquidity baking toggle; adaptive issuance in protocol 023).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PerBlockVote {
    On,
    Off,
    Pass,
}

/// The per-block votes byte: liquidity baking in bits 0–1, adaptive issuance in bits
/// 2–3 (023 only; 024 leaves them 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PerBlockVotes {
    pub liquidity_baking_vote: PerBlockVote,
    pub adaptive_issuance_vote: PerBlockVote,
}

impl PerBlockVotes {
    fn read(r: &mut Reader<'_>) -> Result<PerBlockVotes> {
        let at = r.pos();
        let b = r.u8("1-byte per-block votes")?;
        let vote = |bits: u8| match bits {
            0 => Some(PerBlockVote::On),
            1 => Some(PerBlockVote::Off),
            2 => Some(PerBlockVote::Pass),
            _ => None,
        };
        match (b & 0xf0, vote(b & 0x03), vote((b >> 2) & 0x03)) {
            (0, Some(liquidity_baking_vote), Some(adaptive_issuance_vote)) => Ok(PerBlockVotes {
                liquidity_baking_vote,
                adaptive_issuance_vote,
            }),
            _ => Reader::err_at(
                at,
                DecodeErrorKind::UnknownTag {
                    what: "per-block votes",
                    tag: b,
                },
            ),
        }
    }
}

/// The protocol part of a block header, without the signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BlockContents {
    pub payload_hash: PayloadHash,
    /// The round the payload was first proposed at; ECAD Signatory watermarks blocks by
    /// it, Octez by the fitness round.
    pub payload_round: i32,
    pub proof_of_work_nonce: HexBytes,
    pub seed_nonce_hash: Option<NonceHash>,
    #[serde(flatten)]
    pub per_block_votes: PerBlockVotes,
}

impl BlockContents {
    fn read(r: &mut Reader<'_>) -> Result<BlockContents> {
        let payload_hash = PayloadHash(r.array("32-byte payload hash")?);
        let payload_round = r.non_negative_i32("payload round", "4-byte payload round")?;
        let proof_of_work_nonce = HexBytes::from_slice(r.take(8, "8-byte proof-of-work nonce")?);
        let seed_nonce_hash = if r.flag("1-byte seed nonce hash presence tag")? {
            Some(NonceHash(r.array("32-byte seed nonce hash")?))
        } else {
            None
        };
        let per_block_votes = PerBlockVotes::read(r)?;
        Ok(BlockContents {
            payload_hash,
            payload_round,
            proof_of_work_nonce,
            seed_nonce_hash,
            per_block_votes,
        })
    }
}

/// A 0x11 request: an unsigned Tenderbake block header for one chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BlockHeader {
    pub chain_id: ChainId,
    #[serde(flatten)]
    pub shell: ShellHeader,
    #[serde(flatten)]
    pub contents: BlockContents,
}

impl BlockHeader {
    /// Decodes the bytes after the magic byte (`r` starts at offset 1).
    pub(crate) fn read_request(r: &mut Reader<'_>) -> Result<BlockHeader> {
        let chain_id = ChainId(r.array("4-byte chain id")?);
        let shell = ShellHeader::read(r, Fitness::read)?;
        let contents = BlockContents::read(r)?;
        r.finish("the block header")?;
        Ok(BlockHeader {
            chain_id,
            shell,
            contents,
        })
    }

    pub const fn level(&self) -> i32 {
        self.shell.level
    }

    /// The block's round, from its fitness.
    pub const fn round(&self) -> i32 {
        self.shell.fitness.round
    }
}

/// A signed block header, as inlined in double-baking evidence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SignedBlockHeader {
    #[serde(flatten)]
    pub shell: ShellHeader<AnyFitness>,
    #[serde(flatten)]
    pub contents: BlockContents,
    pub signature: Signature,
}

impl SignedBlockHeader {
    /// Reads one `u32`-prefixed header; the signature fills the rest of it.
    pub(crate) fn read_dynamic(r: &mut Reader<'_>) -> Result<SignedBlockHeader> {
        r.dynamic("block header", "4-byte block header length", |r| {
            let shell = ShellHeader::read(r, AnyFitness::read)?;
            let contents = BlockContents::read(r)?;
            let signature = Signature::read_rest(r)?;
            Ok(SignedBlockHeader {
                shell,
                contents,
                signature,
            })
        })
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
    fn timestamps_print_as_rfc3339() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(1_637_120_757).to_string(), "2021-11-17T03:45:57Z");
        assert_eq!(Timestamp(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59Z");
        // Extremes must not panic.
        let _ = Timestamp(i64::MAX).to_string();
        let _ = Timestamp(i64::MIN).to_string();
    }
}
