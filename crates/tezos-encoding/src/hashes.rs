//! Fixed-size identifiers that print as base58check. Prefixes the shared `tezos-crypto`
//! table lacks (contracts, rollups, DAL commitments, nonce and script hashes, context and
//! operation-list hashes) live in a small local table with the same checksum rule:
//! `base58(prefix ‖ payload ‖ sha256(sha256(prefix ‖ payload))[..4])`.

use serde::{Serialize, Serializer};
use std::fmt;
use tezos_crypto::Prefix;

/// Base58check prefixes used by operations but absent from `tezos_crypto::Prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalPrefix {
    /// KT1
    ContractHash,
    /// sr1
    SmartRollupAddress,
    /// src1
    SmartRollupCommitment,
    /// srs1
    SmartRollupState,
    /// epx1
    ZkRollupAddress,
    /// sh
    DalCommitment,
    /// nce
    NonceHash,
    /// expr
    ScriptExprHash,
    /// Co
    ContextHash,
    /// LLo
    OperationListListHash,
}

impl LocalPrefix {
    const fn bytes(self) -> &'static [u8] {
        match self {
            LocalPrefix::ContractHash => &[0x02, 0x5a, 0x79],
            LocalPrefix::SmartRollupAddress => &[0x06, 0x7c, 0x75],
            LocalPrefix::SmartRollupCommitment => &[0x11, 0xa5, 0x86, 0x8a],
            LocalPrefix::SmartRollupState => &[0x11, 0xa5, 0xeb, 0xf0],
            LocalPrefix::ZkRollupAddress => &[0x01, 0x17, 0xe0, 0x7d],
            LocalPrefix::DalCommitment => &[0x02, 0x74, 0xb4],
            LocalPrefix::NonceHash => &[0x45, 0xdc, 0xa9],
            LocalPrefix::ScriptExprHash => &[0x0d, 0x2c, 0x40, 0x1b],
            LocalPrefix::ContextHash => &[0x4f, 0xc7],
            LocalPrefix::OperationListListHash => &[0x1d, 0x9f, 0x6d],
        }
    }
}

/// Base58check with a local prefix.
pub(crate) fn encode_local(prefix: LocalPrefix, payload: &[u8]) -> String {
    tezos_crypto::base58::encode_with_prefix_bytes(prefix.bytes(), payload)
}

/// Either table.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AnyPrefix {
    Shared(Prefix),
    Local(LocalPrefix),
}

pub(crate) fn encode_any(prefix: AnyPrefix, payload: &[u8]) -> String {
    match prefix {
        AnyPrefix::Shared(p) => tezos_crypto::base58::encode(p, payload),
        AnyPrefix::Local(p) => encode_local(p, payload),
    }
}

macro_rules! b58_hash {
    ($(#[$doc:meta])* $name:ident, $len:expr, $prefix:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub fn to_b58check(&self) -> String {
                encode_any($prefix, &self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_b58check())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_b58check())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_b58check())
            }
        }
    };
}

b58_hash!(
    /// A block hash (`B…`).
    BlockHash, 32, AnyPrefix::Shared(Prefix::BlockHash)
);
b58_hash!(
    /// A protocol hash (`P…`).
    ProtocolHash, 32, AnyPrefix::Shared(Prefix::ProtocolHash)
);
b58_hash!(
    /// A block payload hash (`vh…`).
    PayloadHash, 32, AnyPrefix::Shared(Prefix::PayloadHash)
);
b58_hash!(
    /// An originated contract (`KT1…`).
    ContractHash, 20, AnyPrefix::Local(LocalPrefix::ContractHash)
);
b58_hash!(
    /// A smart rollup address (`sr1…`).
    SmartRollupAddress, 20, AnyPrefix::Local(LocalPrefix::SmartRollupAddress)
);
b58_hash!(
    /// A smart rollup commitment hash (`src1…`).
    CommitmentHash, 32, AnyPrefix::Local(LocalPrefix::SmartRollupCommitment)
);
b58_hash!(
    /// A smart rollup PVM state hash (`srs1…`).
    StateHash, 32, AnyPrefix::Local(LocalPrefix::SmartRollupState)
);
b58_hash!(
    /// A zk rollup address (`epx1…`).
    ZkRollupAddress, 20, AnyPrefix::Local(LocalPrefix::ZkRollupAddress)
);
b58_hash!(
    /// A DAL slot commitment (`sh…`, a compressed G1 point).
    DalCommitment, 48, AnyPrefix::Local(LocalPrefix::DalCommitment)
);
b58_hash!(
    /// A seed nonce hash (`nce…`).
    NonceHash, 32, AnyPrefix::Local(LocalPrefix::NonceHash)
);
b58_hash!(
    /// A Michelson expression hash (`expr…`), e.g. a ticket hash.
    ScriptExprHash, 32, AnyPrefix::Local(LocalPrefix::ScriptExprHash)
);
b58_hash!(
    /// A context hash (`Co…`).
    ContextHash, 32, AnyPrefix::Local(LocalPrefix::ContextHash)
);
b58_hash!(
    /// The hash of a block's operation lists (`LLo…`).
    OperationListListHash, 32, AnyPrefix::Local(LocalPrefix::OperationListListHash)
);

/// Bytes printed as lowercase hex.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HexBytes(pub Vec<u8>);

impl HexBytes {
    pub(crate) fn from_slice(b: &[u8]) -> Self {
        HexBytes(b.to_vec())
    }
}

impl fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexBytes({})", hex::encode(&self.0))
    }
}

impl fmt::Display for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
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
    fn local_prefixes_produce_their_documented_leading_characters() {
        let cases: [(LocalPrefix, usize, &str, usize); 10] = [
            (LocalPrefix::ContractHash, 20, "KT1", 36),
            (LocalPrefix::SmartRollupAddress, 20, "sr1", 36),
            (LocalPrefix::SmartRollupCommitment, 32, "src1", 54),
            (LocalPrefix::SmartRollupState, 32, "srs1", 54),
            (LocalPrefix::ZkRollupAddress, 20, "epx1", 37),
            (LocalPrefix::DalCommitment, 48, "sh", 74),
            (LocalPrefix::NonceHash, 32, "nce", 53),
            (LocalPrefix::ScriptExprHash, 32, "expr", 54),
            (LocalPrefix::ContextHash, 32, "Co", 52),
            (LocalPrefix::OperationListListHash, 32, "LLo", 53),
        ];
        for (prefix, len, name, encoded_len) in cases {
            for fill in [0x00u8, 0xff] {
                let s = encode_local(prefix, &vec![fill; len]);
                assert!(s.starts_with(name), "{prefix:?} gave {s}");
                assert_eq!(s.len(), encoded_len, "{prefix:?} gave {s}");
            }
        }
    }

    #[test]
    fn local_prefixes_match_taquito() {
        // Payload = bytes 0, 1, 2, …; strings produced by @taquito/utils b58Encode.
        let cases: [(LocalPrefix, usize, &str); 10] = [
            (
                LocalPrefix::ContractHash,
                20,
                "KT18anmnvhqTsgqTwasxpLKYWcLJnGRX3m2D",
            ),
            (
                LocalPrefix::SmartRollupAddress,
                20,
                "sr163N83bpxaAsueGVijqp6e7G1RqEpRiMZz",
            ),
            (
                LocalPrefix::SmartRollupCommitment,
                32,
                "src12UK61S2BUKkMkZMDLx43HKHCHB4Z66idFGddxJSvfrPS1xardv",
            ),
            (
                LocalPrefix::SmartRollupState,
                32,
                "srs11RzP44xdQCGNmR9LLTNuYfQVCsd8JUUWMf8QE2UedRPCYZN3sp",
            ),
            (
                LocalPrefix::ZkRollupAddress,
                20,
                "epx167mU2B247ugvvYWNH8HenFuQcM8xDhB7z",
            ),
            (
                LocalPrefix::DalCommitment,
                48,
                "sh1MooACyzDLp53h8QdjFv9LurXFo6wAPZSjH69F6yde6Y1AmwUX744uusAxVfzkugTovZ8rae",
            ),
            (
                LocalPrefix::NonceHash,
                32,
                "nceUDx8J4VmvXRUTxYWYJAjaNewEg31BbjNvJN2hFcuaj7SD8kwsb",
            ),
            (
                LocalPrefix::ScriptExprHash,
                32,
                "exprtWszwfPPEToSfV3LhkLweivz7tziDfMLSrTCku4t2n486CmP2o",
            ),
            (
                LocalPrefix::ContextHash,
                32,
                "CoUeJxSgSEPoKyGNzcAQWUmSkAbWwgQdYBhmhSUF6qVCQW6AZRyT",
            ),
            (
                LocalPrefix::OperationListListHash,
                32,
                "LLoZKi7YfF6zf8vpKTbstYfpJaDu8fMmnJShSvApkx7uaQ2rsAa4T",
            ),
        ];
        for (prefix, len, expected) in cases {
            let payload: Vec<u8> = (0..len as u8).collect();
            assert_eq!(encode_local(prefix, &payload), expected, "{prefix:?}");
        }
    }
}
