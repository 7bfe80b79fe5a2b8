//! What a DAL attestation bitset attests, read with the protocol's [`DalLayout`].
//!
//! The wire value stays the raw integer (what Octez's JSON prints); this is the view an
//! operator reads: which slots, at which lag.

use crate::numbers::Integer;
use crate::protocol::DalLayout;
use serde::{Serialize, Serializer};
use std::fmt;

/// Slots attested at one lag (`lag_index` counts from 0 in the protocol's lag list).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct LagSlots {
    pub lag_index: u8,
    pub slots: Vec<u16>,
}

/// The attested slots of a DAL bitset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DalAttested {
    /// Single-lag layout (023, 024): the slots, in increasing order.
    Slots(Vec<u16>),
    /// Multi-lag layout (025 on): the lags that attest something, in increasing order.
    Lags(Vec<LagSlots>),
    /// Not a bitset of this layout (negative, a chunk run longer than the slots, bits
    /// after the last chunk, a slot beyond the slot count). The encoding accepts it; the
    /// protocol refuses the attestation when validating it.
    Malformed,
}

/// Bits of a chunk after its "last chunk" bit: seven slots each.
const SLOTS_PER_CHUNK: usize = 7;
const BITS_PER_CHUNK: usize = SLOTS_PER_CHUNK + 1;

impl DalAttested {
    pub(crate) fn read(bitset: &Integer, layout: DalLayout) -> DalAttested {
        if bitset.is_negative() {
            return DalAttested::Malformed;
        }
        let bits = bitset.magnitude();
        match layout {
            DalLayout::SingleLag { number_of_slots } => {
                if bits.bit_len() > usize::from(number_of_slots) {
                    return DalAttested::Malformed;
                }
                DalAttested::Slots(
                    (0..number_of_slots)
                        .filter(|&slot| bits.bit(usize::from(slot)))
                        .collect(),
                )
            }
            DalLayout::MultiLag {
                number_of_lags,
                number_of_slots,
            } => {
                let slot_count = usize::from(number_of_slots);
                let max_chunks = slot_count.div_ceil(SLOTS_PER_CHUNK);
                // The data section starts after the one-bit-per-lag prefix.
                let mut offset = usize::from(number_of_lags);
                let mut lags = Vec::new();
                for lag_index in 0..number_of_lags {
                    if !bits.bit(usize::from(lag_index)) {
                        continue;
                    }
                    let mut slots = Vec::new();
                    let mut chunk = 0;
                    loop {
                        if chunk >= max_chunks {
                            return DalAttested::Malformed;
                        }
                        for bit in 1..=SLOTS_PER_CHUNK {
                            let slot = chunk * SLOTS_PER_CHUNK + bit - 1;
                            if bits.bit(offset + bit) {
                                // Octez ignores set bits past the slot count here; a
                                // signer should not hide them, so they make it malformed.
                                match u16::try_from(slot) {
                                    Ok(slot) if usize::from(slot) < slot_count => slots.push(slot),
                                    _ => return DalAttested::Malformed,
                                }
                            }
                        }
                        let is_last = bits.bit(offset);
                        offset += BITS_PER_CHUNK;
                        chunk += 1;
                        if is_last {
                            break;
                        }
                    }
                    lags.push(LagSlots { lag_index, slots });
                }
                if bits.bit_len() > offset {
                    return DalAttested::Malformed;
                }
                DalAttested::Lags(lags)
            }
        }
    }
}

fn write_slots(f: &mut fmt::Formatter<'_>, slots: &[u16]) -> fmt::Result {
    match slots {
        [] => f.write_str("no slot"),
        [one] => write!(f, "slot {one}"),
        many => {
            f.write_str("slots ")?;
            for (i, slot) in many.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{slot}")?;
            }
            Ok(())
        }
    }
}

impl fmt::Display for DalAttested {
    /// `lag 0: slots 3, 7; lag 2: slot 1`, or `slots 3, 7` for the single-lag layout.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DalAttested::Slots(slots) => write_slots(f, slots),
            DalAttested::Lags(lags) if lags.is_empty() => f.write_str("no slot at any lag"),
            DalAttested::Lags(lags) => {
                for (i, lag) in lags.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "lag {}: ", lag.lag_index)?;
                    write_slots(f, &lag.slots)?;
                }
                Ok(())
            }
            DalAttested::Malformed => f.write_str("not a valid DAL bitset for this protocol"),
        }
    }
}

impl Serialize for DalAttested {
    /// Single lag: `[3, 7]`; multi-lag: `[{"lag_index": 0, "slots": [3, 7]}]`;
    /// malformed: `"malformed"`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DalAttested::Slots(slots) => slots.serialize(s),
            DalAttested::Lags(lags) => lags.serialize(s),
            DalAttested::Malformed => s.serialize_str("malformed"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::numbers::Natural;

    const MAINNET: DalLayout = DalLayout::MultiLag {
        number_of_lags: 5,
        number_of_slots: 160,
    };

    fn of_bits(bits: &[usize]) -> Integer {
        let top = bits.iter().max().copied().unwrap_or(0);
        if top < 128 {
            let v = bits.iter().fold(0u128, |acc, &b| acc | 1 << b);
            return Integer::new(false, Natural::Small(v));
        }
        let mut le = vec![0u8; top / 8 + 1];
        for &b in bits {
            if let Some(byte) = le.get_mut(b / 8) {
                *byte |= 1 << (b % 8);
            }
        }
        Integer::new(false, Natural::Large(le.into_boxed_slice()))
    }

    #[test]
    fn the_octez_documentation_example_decodes() {
        // 4 lags, lag 1: slots 1, 5; lag 3: slots 0, 11 (dal_attestations_repr.mli).
        let layout = DalLayout::MultiLag {
            number_of_lags: 4,
            number_of_slots: 160,
        };
        // Prefix bits 1, 3; lag 1 chunk at 4..12: last(4), slot1(6), slot5(10);
        // lag 3 chunks at 12..28: slot0(13), then last(20), slot11(20+1+4=25).
        let value = of_bits(&[1, 3, 4, 6, 10, 13, 20, 25]);
        let got = DalAttested::read(&value, layout);
        assert_eq!(
            got,
            DalAttested::Lags(vec![
                LagSlots {
                    lag_index: 1,
                    slots: vec![1, 5]
                },
                LagSlots {
                    lag_index: 3,
                    slots: vec![0, 11]
                },
            ])
        );
        assert_eq!(got.to_string(), "lag 1: slots 1, 5; lag 3: slots 0, 11");
    }

    #[test]
    fn mainnet_lags_and_slots_print_as_operators_read_them() {
        // Lag 0: slots 3, 7 (chunk 0 at 5, chunk 1 last at 13); lag 2: slot 1 (at 21).
        let value = of_bits(&[0, 2, 5 + 1 + 3, 13, 13 + 1, 21, 21 + 2]);
        let got = DalAttested::read(&value, MAINNET);
        assert_eq!(got.to_string(), "lag 0: slots 3, 7; lag 2: slot 1");
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            r#"[{"lag_index":0,"slots":[3,7]},{"lag_index":2,"slots":[1]}]"#
        );
        // Slot 159, the last one, at lag 4: chunk 22, bit 1 + 159 % 7 = 6.
        let at = 5 + 22 * 8;
        let value = of_bits(&[4, at, at + 6]);
        let got = DalAttested::read(&value, MAINNET);
        assert_eq!(got.to_string(), "lag 4: slot 159");
    }

    #[test]
    fn malformed_bitsets_are_named_so() {
        // 2048 (Octez's 024-era sample): no lag in the prefix but data bits.
        assert_eq!(
            DalAttested::read(&of_bits(&[11]), MAINNET),
            DalAttested::Malformed
        );
        // Lag 0 whose chunks never end.
        assert_eq!(
            DalAttested::read(&of_bits(&[0]), MAINNET),
            DalAttested::Malformed
        );
        // A slot past 159 in the 23rd chunk (bit 1 + 160 % 7 = 7 of chunk 22).
        let at = 5 + 22 * 8;
        assert_eq!(
            DalAttested::read(&of_bits(&[0, at, at + 7]), MAINNET),
            DalAttested::Malformed
        );
        assert_eq!(
            DalAttested::read(&Integer::new(true, Natural::Small(1)), MAINNET),
            DalAttested::Malformed
        );
        assert_eq!(
            DalAttested::read(&of_bits(&[]), MAINNET),
            DalAttested::Lags(vec![])
        );
    }

    #[test]
    fn single_lag_bitsets_are_slot_sets() {
        let layout = DalLayout::SingleLag {
            number_of_slots: 32,
        };
        assert_eq!(
            DalAttested::read(&of_bits(&[0, 1, 3]), layout).to_string(),
            "slots 0, 1, 3"
        );
        assert_eq!(
            DalAttested::read(&of_bits(&[32]), layout),
            DalAttested::Malformed
        );
    }
}
