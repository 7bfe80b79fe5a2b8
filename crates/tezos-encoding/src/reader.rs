//! A bounds-checked cursor over the request bytes, speaking Octez's binary encoding
//! (`data-encoding`): big-endian integers, Zarith naturals and integers, `u32`-prefixed
//! dynamic sizes, one-byte option and union tags.
//!
//! Positions are absolute in the request, so every error carries the offset an operator
//! sees in the hex dump. Nothing here allocates from a length prefix: a prefix is checked
//! against the bytes that remain before anything is read.

use crate::error::{DecodeError, DecodeErrorKind};
use crate::numbers::{Integer, Natural, MAX_ZARITH_BYTES};
use crate::protocol::{Protocol, ProtocolFeatures};

pub(crate) type Result<T> = std::result::Result<T, DecodeError>;

#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// End of the current dynamic-size scope (absolute).
    end: usize,
    /// The layout differences of the protocol the bytes are read for.
    features: &'static ProtocolFeatures,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], protocol: Protocol) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
            features: protocol.features(),
        }
    }

    pub(crate) const fn features(&self) -> &'static ProtocolFeatures {
        self.features
    }

    pub(crate) const fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) const fn remaining(&self) -> usize {
        self.end - self.pos
    }

    pub(crate) const fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    pub(crate) fn err<T>(&self, kind: DecodeErrorKind) -> Result<T> {
        Err(DecodeError::new(self.pos, kind))
    }

    pub(crate) fn err_at<T>(offset: usize, kind: DecodeErrorKind) -> Result<T> {
        Err(DecodeError::new(offset, kind))
    }

    /// The next `n` bytes. `expected` names the field for the error ("4-byte level").
    pub(crate) fn take(&mut self, n: usize, expected: &'static str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return self.err(DecodeErrorKind::Truncated { expected });
        }
        let start = self.pos;
        self.pos += n;
        self.buf.get(start..self.pos).ok_or(DecodeError::new(
            start,
            DecodeErrorKind::Truncated { expected },
        ))
    }

    pub(crate) fn array<const N: usize>(&mut self, expected: &'static str) -> Result<[u8; N]> {
        let start = self.pos;
        let bytes = self.take(N, expected)?;
        <[u8; N]>::try_from(bytes)
            .map_err(|_| DecodeError::new(start, DecodeErrorKind::Truncated { expected }))
    }

    /// The bytes up to the end of the current scope, without consuming them.
    pub(crate) fn peek_rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..self.end).unwrap_or_default()
    }

    /// Everything up to the end of the current scope.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let start = self.pos;
        self.pos = self.end;
        self.buf.get(start..self.end).unwrap_or_default()
    }

    pub(crate) fn u8(&mut self, expected: &'static str) -> Result<u8> {
        let [b] = self.array::<1>(expected)?;
        Ok(b)
    }

    pub(crate) fn u16(&mut self, expected: &'static str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(expected)?))
    }

    pub(crate) fn i16(&mut self, expected: &'static str) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array(expected)?))
    }

    pub(crate) fn i32(&mut self, expected: &'static str) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array(expected)?))
    }

    pub(crate) fn i64(&mut self, expected: &'static str) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array(expected)?))
    }

    /// An `int32` the protocol refuses when negative (levels, rounds).
    pub(crate) fn non_negative_i32(
        &mut self,
        what: &'static str,
        expected: &'static str,
    ) -> Result<i32> {
        self.i32_within(what, expected, 0..=i32::MAX)
    }

    /// Octez `int31`: a 4-byte integer in [-2^30, 2^30 - 1].
    pub(crate) fn int31(&mut self, what: &'static str, expected: &'static str) -> Result<i32> {
        self.i32_within(what, expected, -(1 << 30)..=(1 << 30) - 1)
    }

    /// A 4-byte integer, refused as out of range outside `range`.
    fn i32_within(
        &mut self,
        what: &'static str,
        expected: &'static str,
        range: std::ops::RangeInclusive<i32>,
    ) -> Result<i32> {
        let at = self.pos;
        let v = self.i32(expected)?;
        if !range.contains(&v) {
            return Self::err_at(
                at,
                DecodeErrorKind::OutOfRange {
                    what,
                    value: i64::from(v),
                },
            );
        }
        Ok(v)
    }

    /// The presence tag of an `opt` field, or a boolean. Octez reads any non-zero byte as
    /// "present"/true.
    pub(crate) fn flag(&mut self, expected: &'static str) -> Result<bool> {
        Ok(self.u8(expected)? != 0)
    }

    /// The tag of Octez's `option` combinator (unlike `opt` fields): 0 = None, 1 = Some.
    pub(crate) fn option_tag(
        &mut self,
        what: &'static str,
        expected: &'static str,
    ) -> Result<bool> {
        let at = self.pos;
        match self.u8(expected)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Self::err_at(at, DecodeErrorKind::UnknownTag { what, tag }),
        }
    }

    /// A `u32` length prefix, checked against the remaining input (never trusted for
    /// allocation).
    pub(crate) fn length_u32(
        &mut self,
        what: &'static str,
        expected: &'static str,
    ) -> Result<usize> {
        let at = self.pos;
        let len = u32::from_be_bytes(self.array(expected)?);
        // Octez lengths are uint30.
        if len > 0x3fff_ffff {
            return Self::err_at(
                at,
                DecodeErrorKind::OutOfRange {
                    what,
                    value: i64::from(len),
                },
            );
        }
        let len = len as usize;
        if len > self.remaining() {
            return Self::err_at(
                at,
                DecodeErrorKind::LengthBeyondInput {
                    what,
                    announced: u64::from(len as u32),
                    remaining: self.remaining(),
                },
            );
        }
        Ok(len)
    }

    /// `u32 length ‖ bytes`.
    pub(crate) fn bytes_u32(
        &mut self,
        what: &'static str,
        expected: &'static str,
    ) -> Result<&'a [u8]> {
        let len = self.length_u32(what, expected)?;
        self.take(len, expected)
    }

    /// Decode a `dynamic_size` value: `u32 length ‖ value`, where `f` must consume the
    /// value exactly.
    pub(crate) fn dynamic<T>(
        &mut self,
        what: &'static str,
        expected: &'static str,
        f: impl FnOnce(&mut Reader<'a>) -> Result<T>,
    ) -> Result<T> {
        let len = self.length_u32(what, expected)?;
        let saved_end = self.end;
        self.end = self.pos + len;
        let value = f(self)?;
        if self.pos != self.end {
            return self.err(DecodeErrorKind::TrailingBytes {
                what,
                count: self.end - self.pos,
            });
        }
        self.end = saved_end;
        Ok(value)
    }

    /// A `u32`-prefixed list: `f` is called until the list's bytes are consumed. Each
    /// element consumes at least one byte, so the list never outgrows the input.
    pub(crate) fn list<T>(
        &mut self,
        what: &'static str,
        expected: &'static str,
        max_items: Option<usize>,
        mut f: impl FnMut(&mut Reader<'a>) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.dynamic(what, expected, |r| {
            let mut items = Vec::new();
            while !r.is_empty() {
                let at = r.pos;
                items.push(f(r)?);
                if r.pos == at {
                    // A zero-width element would loop forever; no Octez encoding has one.
                    return r.err(DecodeErrorKind::Invalid {
                        what,
                        reason: "list element of zero bytes",
                    });
                }
                if let Some(max) = max_items {
                    if items.len() > max {
                        return Reader::err_at(
                            at,
                            DecodeErrorKind::TooLong {
                                what,
                                len: items.len(),
                                max,
                            },
                        );
                    }
                }
            }
            Ok(items)
        })
    }

    /// Fails unless the current scope is fully consumed.
    pub(crate) fn finish(&self, what: &'static str) -> Result<()> {
        if self.pos != self.end {
            return self.err(DecodeErrorKind::TrailingBytes {
                what,
                count: self.end - self.pos,
            });
        }
        Ok(())
    }

    /// Reads the bytes of one Zarith number (7-bit groups, low first, high bit = more),
    /// refusing more than `max_bytes` bytes and a non-canonical trailing zero group.
    fn zarith_bytes(&mut self, what: &'static str, max_bytes: usize) -> Result<&'a [u8]> {
        let start = self.pos;
        let scope = self.buf.get(start..self.end).unwrap_or_default();
        let Some(len) = scope.iter().position(|b| b & 0x80 == 0).map(|i| i + 1) else {
            if scope.len() >= max_bytes {
                return Self::err_at(
                    start,
                    DecodeErrorKind::InvalidZarith {
                        what,
                        reason: "longer than the field allows",
                    },
                );
            }
            self.pos = self.end;
            return self.err(DecodeErrorKind::Truncated {
                expected: "the rest of a Zarith number",
            });
        };
        if len > max_bytes {
            return Self::err_at(
                start,
                DecodeErrorKind::InvalidZarith {
                    what,
                    reason: "longer than the field allows",
                },
            );
        }
        let bytes = scope.get(..len).unwrap_or_default();
        if len > 1 && bytes.last() == Some(&0) {
            return Self::err_at(
                start + len - 1,
                DecodeErrorKind::InvalidZarith {
                    what,
                    reason: "non-canonical trailing zero byte",
                },
            );
        }
        self.pos += len;
        Ok(bytes)
    }

    /// A Zarith natural (`n`) of at most `max_bytes` bytes.
    pub(crate) fn natural(&mut self, what: &'static str, max_bytes: usize) -> Result<Natural> {
        let bytes = self.zarith_bytes(what, max_bytes)?;
        Ok(Natural::from_zarith_groups(bytes, 0))
    }

    /// A Zarith natural with no size limit in the protocol, capped at
    /// [`MAX_ZARITH_BYTES`].
    pub(crate) fn big_natural(&mut self, what: &'static str) -> Result<Natural> {
        self.natural(what, MAX_ZARITH_BYTES)
    }

    /// A Zarith natural bounded to 10 bytes (`check_size 10 n`), as a `u128`.
    pub(crate) fn natural10(&mut self, what: &'static str) -> Result<u128> {
        let at = self.pos;
        match self.natural(what, 10)? {
            Natural::Small(v) => Ok(v),
            Natural::Large(_) => Self::err_at(
                at,
                DecodeErrorKind::InvalidZarith {
                    what,
                    reason: "does not fit 10 bytes",
                },
            ),
        }
    }

    /// Tez amounts: `check_size 10 n` and at most `i64::MAX` mutez.
    pub(crate) fn mutez(&mut self, what: &'static str) -> Result<u64> {
        let at = self.pos;
        let v = self.natural10(what)?;
        if v > i64::MAX as u128 {
            return Self::err_at(
                at,
                DecodeErrorKind::InvalidZarith {
                    what,
                    reason: "more than the largest tez amount (2^63 - 1 mutez)",
                },
            );
        }
        Ok(v as u64)
    }

    /// A Zarith integer (`z`): sign in bit 6 of the first byte.
    pub(crate) fn integer(&mut self, what: &'static str) -> Result<Integer> {
        let bytes = self.zarith_bytes(what, MAX_ZARITH_BYTES)?;
        let negative = bytes.first().is_some_and(|b| b & 0x40 != 0);
        let magnitude = Natural::from_zarith_groups(bytes, 1);
        Ok(Integer::new(negative, magnitude))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(v: i32, f: impl Fn(&mut Reader<'_>) -> Result<i32>) -> Option<i32> {
        let bytes = v.to_be_bytes();
        f(&mut Reader::new(&bytes, Protocol::DEFAULT)).ok()
    }

    #[test]
    fn ranged_integers_stop_exactly_at_their_bounds() {
        let non_negative = |r: &mut Reader<'_>| r.non_negative_i32("level", "a level");
        assert_eq!(read(0, non_negative), Some(0));
        assert_eq!(read(i32::MAX, non_negative), Some(i32::MAX));
        assert_eq!(read(-1, non_negative), None);

        let int31 = |r: &mut Reader<'_>| r.int31("slot", "an int31");
        assert_eq!(read((1 << 30) - 1, int31), Some((1 << 30) - 1));
        assert_eq!(read(-(1 << 30), int31), Some(-(1 << 30)));
        assert_eq!(read(1 << 30, int31), None);
        assert_eq!(read(-(1 << 30) - 1, int31), None);
    }
}
