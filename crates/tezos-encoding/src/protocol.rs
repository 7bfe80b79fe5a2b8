//! Which protocol's layout applies, where the bytes alone cannot say.
//!
//! Operation tags are the same in 023, 024, 025 and alpha, so nothing in a request names its
//! protocol; a few fields changed shape underneath the same tags. Every such difference is
//! one field of [`ProtocolFeatures`], and every protocol is one row of [`PROTOCOLS`]. The
//! decoders read the row of the protocol the chain runs and nothing else, so adding a
//! protocol is adding a row.

use std::fmt;

/// A protocol whose operations this signer decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Protocol {
    /// 023, Seoul.
    S023,
    /// 024, Tallinn.
    T024,
    /// 025, Ushuaia: mainnet.
    U025,
    /// The protocol under development in Octez.
    Alpha,
}

/// How the DAL content of an attestation (tag 23, aggregate committees) maps to slots.
/// On the wire it is always a signed Zarith integer (Octez's `Bitset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DalLayout {
    /// Bit `i` attests slot `i` of the one attestation lag.
    SingleLag { number_of_slots: u16 },
    /// Several lags: a prefix of `number_of_lags` bits says which lags are attested, then
    /// each attested lag (in increasing order) has 8-bit chunks, bit 0 of each chunk
    /// "last chunk of this lag", bits 1..=7 seven slots.
    MultiLag {
        number_of_lags: u8,
        number_of_slots: u16,
    },
}

/// Everything that differs between protocols, for the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolFeatures {
    pub protocol: Protocol,
    /// The configuration name (`ushuaia`) and the protocol number (`025`).
    pub name: &'static str,
    pub number: &'static str,
    /// `dal_entrapment_evidence` (tag 24) carries `opt lag_index: uint8` after `slot_index`.
    pub entrapment_has_lag_index: bool,
    pub dal_layout: DalLayout,
    /// Tag 4 of public key hashes, public keys and signatures is ML-DSA-44 (tz5).
    pub ml_dsa_44: bool,
}

/// The table: one row per protocol. Mainnet DAL parameters (Octez `default_parameters.ml`:
/// 024 32 slots; 025 and alpha 160 slots, lags `[1; 2; 3; 4; 5]`).
pub const PROTOCOLS: [ProtocolFeatures; 4] = [
    ProtocolFeatures {
        protocol: Protocol::S023,
        name: "seoul",
        number: "023",
        entrapment_has_lag_index: false,
        dal_layout: DalLayout::SingleLag {
            number_of_slots: 32,
        },
        ml_dsa_44: false,
    },
    ProtocolFeatures {
        protocol: Protocol::T024,
        name: "tallinn",
        number: "024",
        entrapment_has_lag_index: false,
        dal_layout: DalLayout::SingleLag {
            number_of_slots: 32,
        },
        ml_dsa_44: false,
    },
    ProtocolFeatures {
        protocol: Protocol::U025,
        name: "ushuaia",
        number: "025",
        entrapment_has_lag_index: true,
        dal_layout: DalLayout::MultiLag {
            number_of_lags: 5,
            number_of_slots: 160,
        },
        ml_dsa_44: true,
    },
    ProtocolFeatures {
        protocol: Protocol::Alpha,
        name: "alpha",
        number: "alpha",
        entrapment_has_lag_index: true,
        dal_layout: DalLayout::MultiLag {
            number_of_lags: 5,
            number_of_slots: 160,
        },
        ml_dsa_44: true,
    },
];

/// A protocol name that is not in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Tezos protocol `{0}`; expected one of {list}", list = Protocol::names())]
pub struct UnknownProtocol(pub String);

impl Protocol {
    /// The protocol mainnet runs, used when nothing is configured.
    pub const DEFAULT: Protocol = Protocol::U025;

    /// The protocol's row of [`PROTOCOLS`].
    pub fn features(self) -> &'static ProtocolFeatures {
        // Every variant has a row (a unit test checks it); the fallback is the default's.
        PROTOCOLS
            .iter()
            .find(|row| row.protocol == self)
            .unwrap_or(&DEFAULT_FEATURES)
    }

    /// Parses `ushuaia`, `025`, `u025` or `PsUshuai…`-style names, case-insensitively.
    pub fn parse(text: &str) -> Result<Protocol, UnknownProtocol> {
        let wanted = text.trim().to_ascii_lowercase();
        PROTOCOLS
            .iter()
            .find(|row| {
                wanted == row.name
                    || wanted == row.number
                    || wanted.strip_prefix(row.name.get(..1).unwrap_or_default())
                        == Some(row.number)
            })
            .map(|row| row.protocol)
            .ok_or_else(|| UnknownProtocol(text.to_owned()))
    }

    fn names() -> String {
        PROTOCOLS
            .iter()
            .map(|row| format!("`{}` ({})", row.name, row.number))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol::DEFAULT
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.features().name)
    }
}

impl std::str::FromStr for Protocol {
    type Err = UnknownProtocol;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::parse(s)
    }
}

const DEFAULT_FEATURES: ProtocolFeatures = PROTOCOLS[2];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_has_exactly_its_own_row() {
        for p in [
            Protocol::S023,
            Protocol::T024,
            Protocol::U025,
            Protocol::Alpha,
        ] {
            assert_eq!(PROTOCOLS.iter().filter(|r| r.protocol == p).count(), 1);
            assert_eq!(p.features().protocol, p);
        }
        assert_eq!(DEFAULT_FEATURES.protocol, Protocol::DEFAULT);
        assert_eq!(Protocol::default(), Protocol::U025);
    }

    #[test]
    fn names_parse() {
        for (text, p) in [
            ("ushuaia", Protocol::U025),
            ("025", Protocol::U025),
            ("U025", Protocol::U025),
            ("tallinn", Protocol::T024),
            ("024", Protocol::T024),
            ("t024", Protocol::T024),
            ("Alpha", Protocol::Alpha),
            ("seoul", Protocol::S023),
        ] {
            assert_eq!(Protocol::parse(text), Ok(p), "{text}");
        }
        let err = Protocol::parse("026").unwrap_err();
        assert!(err.to_string().contains("`ushuaia` (025)"), "{err}");
        assert!(Protocol::parse("u024").is_err());
    }
}
