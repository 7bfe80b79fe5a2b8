//! Settings that take a number, read from a YAML number or from a string of digits: a value
//! taken from the environment (`max_connections: ${MAX}`) is a string, never re-read as YAML.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// An optional non-negative integer: a YAML integer, or a string of decimal digits.
pub(crate) fn u64_or_digits<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    struct Digits;
    impl Visitor<'_> for Digits {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("u64, a non-negative integer")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            // Digits only: no sign, no spaces, no `0x`; the message does not echo the text.
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                v.parse().map(Some).map_err(|_| E::custom("is too large"))
            } else {
                Err(E::custom(
                    "expected u64, a non-negative integer; the string given is not one",
                ))
            }
        }
    }
    deserializer.deserialize_any(Digits)
}
