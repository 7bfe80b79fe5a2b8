//! Arbitrary-precision naturals and integers as Zarith carries them. Values up to 128 bits
//! stay in a `u128` (no allocation on the hot path: DAL bitsets, counters); larger ones
//! keep their little-endian magnitude bytes and print as decimal on demand.

use serde::{Serialize, Serializer};
use std::fmt;

/// Longest Zarith number accepted where the protocol sets no bound (ticket amounts,
/// refutation ticks, DAL bitsets): 256 bytes carry 1792 bits, far beyond any real value,
/// and keep decimal printing cheap.
pub const MAX_ZARITH_BYTES: usize = 256;

/// A non-negative integer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Natural {
    Small(u128),
    /// Little-endian magnitude, no high zero byte, more than 128 bits.
    Large(Box<[u8]>),
}

impl Natural {
    /// Builds the value from Zarith groups; the first byte keeps `7 - sign_bits` data bits.
    pub(crate) fn from_zarith_groups(bytes: &[u8], sign_bits: u32) -> Natural {
        let groups = bytes.iter().enumerate().map(|(i, &b)| {
            if i == 0 {
                (b & (0x7f >> sign_bits), 7 - sign_bits)
            } else {
                (b & 0x7f, 7)
            }
        });
        let mut acc: u128 = 0;
        let mut shift: u32 = 0;
        let mut fits = true;
        for (data, width) in groups.clone() {
            let data = u128::from(data);
            if data != 0 {
                if shift > data.leading_zeros() {
                    fits = false;
                    break;
                }
                acc |= data << shift;
            }
            shift += width;
        }
        if fits {
            return Natural::Small(acc);
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut cur: u32 = 0;
        let mut nbits: u32 = 0;
        for (data, width) in groups {
            cur |= u32::from(data) << nbits;
            nbits += width;
            while nbits >= 8 {
                out.push((cur & 0xff) as u8);
                cur >>= 8;
                nbits -= 8;
            }
        }
        if nbits > 0 {
            out.push((cur & 0xff) as u8);
        }
        while out.last() == Some(&0) {
            out.pop();
        }
        Natural::Large(out.into_boxed_slice())
    }

    /// The value, when it fits 128 bits.
    pub const fn to_u128(&self) -> Option<u128> {
        match self {
            Natural::Small(v) => Some(*v),
            Natural::Large(_) => None,
        }
    }

    pub const fn is_zero(&self) -> bool {
        matches!(self, Natural::Small(0))
    }

    /// Bit `index` (0 = least significant).
    pub fn bit(&self, index: usize) -> bool {
        match self {
            Natural::Small(v) => index < 128 && (v >> index) & 1 == 1,
            Natural::Large(le) => le
                .get(index / 8)
                .is_some_and(|byte| (byte >> (index % 8)) & 1 == 1),
        }
    }

    /// Number of significant bits (0 for zero).
    pub fn bit_len(&self) -> usize {
        match self {
            Natural::Small(v) => 128 - v.leading_zeros() as usize,
            Natural::Large(le) => match le.last() {
                Some(top) => (le.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
                None => 0,
            },
        }
    }
}

impl fmt::Display for Natural {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Natural::Small(v) => write!(f, "{v}"),
            Natural::Large(le) => f.write_str(&large_to_decimal(le)),
        }
    }
}

/// Decimal digits of a little-endian magnitude, by repeated division by 10^9.
fn large_to_decimal(le: &[u8]) -> String {
    let mut limbs: Vec<u32> = le
        .chunks(4)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (8 * i)))
        })
        .collect();
    let mut chunks: Vec<u32> = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem: u64 = 0;
        for limb in limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let mut out = String::new();
    for (i, chunk) in chunks.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&chunk.to_string());
        } else {
            out.push_str(&format!("{chunk:09}"));
        }
    }
    if out.is_empty() {
        out.push('0');
    }
    out
}

impl Serialize for Natural {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A signed integer (Zarith `z`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Integer {
    negative: bool,
    magnitude: Natural,
}

impl Integer {
    pub(crate) fn new(negative: bool, magnitude: Natural) -> Self {
        // Octez reads "-0" as 0.
        let negative = negative && !magnitude.is_zero();
        Integer {
            negative,
            magnitude,
        }
    }

    pub const fn is_negative(&self) -> bool {
        self.negative
    }

    pub const fn magnitude(&self) -> &Natural {
        &self.magnitude
    }
}

impl fmt::Display for Integer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        self.magnitude.fmt(f)
    }
}

impl Serialize for Integer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An amount of mutez (always below 2^63), printed as a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mutez(pub u64);

impl Serialize for Mutez {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl fmt::Display for Mutez {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A natural bounded to 10 Zarith bytes (70 bits): counters, gas and storage limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bounded(pub u128);

impl Serialize for Bounded {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl fmt::Display for Bounded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
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
    fn small_values_decode() {
        // 300 = 0b1_0010_1100 → groups 0x2c|0x80, 0x02
        assert_eq!(
            Natural::from_zarith_groups(&[0xac, 0x02], 0),
            Natural::Small(300)
        );
        assert_eq!(Natural::from_zarith_groups(&[0x00], 0), Natural::Small(0));
        // z: 0x41 = -1
        let z = Integer::new(true, Natural::from_zarith_groups(&[0x41], 1));
        assert_eq!(z.to_string(), "-1");
        // -0 prints as 0
        let z = Integer::new(true, Natural::from_zarith_groups(&[0x40], 1));
        assert_eq!(z.to_string(), "0");
    }

    #[test]
    fn u128_max_stays_small_and_2_pow_128_goes_large() {
        // 2^128 - 1: 128 one-bits = 18 groups of 7 bits (126) + 2 bits.
        let mut bytes = vec![0xffu8; 18];
        bytes.push(0x03);
        assert_eq!(
            Natural::from_zarith_groups(&bytes, 0),
            Natural::Small(u128::MAX)
        );
        // 2^128: 18 zero groups with continuation, then bit 2 of group 19 → 0x04.
        let mut bytes = vec![0x80u8; 18];
        bytes.push(0x04);
        let n = Natural::from_zarith_groups(&bytes, 0);
        assert!(matches!(n, Natural::Large(_)));
        assert_eq!(n.to_string(), "340282366920938463463374607431768211456");
    }

    #[test]
    fn large_decimal_matches_known_value() {
        // 2^200 = 1606938044258990275541962092341162602522202993782792835301376
        let mut bytes = vec![0x80u8; 28];
        bytes.push(0x10); // 28 * 7 = 196; bit 4 of next group → 2^200
        let n = Natural::from_zarith_groups(&bytes, 0);
        assert_eq!(
            n.to_string(),
            "1606938044258990275541962092341162602522202993782792835301376"
        );
    }
}
