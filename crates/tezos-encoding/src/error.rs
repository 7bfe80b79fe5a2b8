//! Decoding errors: each names the byte offset in the request (magic byte = offset 0) and
//! what the decoder expected there, so an operator can find the bad byte in a hex dump.

use std::fmt;

/// Why a request could not be decoded, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Display(self))]
pub struct DecodeError {
    offset: usize,
    kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) const fn new(offset: usize, kind: DecodeErrorKind) -> Self {
        DecodeError { offset, kind }
    }

    /// Offset of the offending byte, counted from the magic byte (offset 0).
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// What went wrong.
    pub const fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }
}

/// The class of a decoding error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The request is empty.
    Empty,
    /// The first byte is not a magic byte this signer knows.
    UnknownMagic(u8),
    /// The input ended inside a field.
    Truncated { expected: &'static str },
    /// A length prefix announces more bytes than the input holds.
    LengthBeyondInput {
        what: &'static str,
        announced: u64,
        remaining: usize,
    },
    /// A union tag with no case.
    UnknownTag { what: &'static str, tag: u8 },
    /// Bytes remain after a complete value.
    TrailingBytes { what: &'static str, count: usize },
    /// A field longer than its encoding allows.
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A Zarith number that is not canonical or too large for its field.
    InvalidZarith {
        what: &'static str,
        reason: &'static str,
    },
    /// A well-formed value outside the range its field accepts.
    OutOfRange { what: &'static str, value: i64 },
    /// A value the protocol's encoding refuses for another reason.
    Invalid {
        what: &'static str,
        reason: &'static str,
    },
}

struct Display<'a>(&'a DecodeError);

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = self.0.offset;
        match &self.0.kind {
            DecodeErrorKind::Empty => {
                write!(f, "empty request at offset {offset}: expected a magic byte")
            }
            DecodeErrorKind::UnknownMagic(b) => write!(
                f,
                "unknown magic byte 0x{b:02x} at offset {offset}: expected 0x01, 0x02, 0x03, \
                 0x05, 0x11, 0x12 or 0x13"
            ),
            DecodeErrorKind::Truncated { expected } => {
                write!(f, "truncated at offset {offset}: expected {expected}")
            }
            DecodeErrorKind::LengthBeyondInput {
                what,
                announced,
                remaining,
            } => write!(
                f,
                "length prefix at offset {offset} announces {announced} bytes of {what}, \
                 but only {remaining} bytes remain"
            ),
            DecodeErrorKind::UnknownTag { what, tag } => {
                write!(f, "unknown {what} tag {tag} at offset {offset}")
            }
            DecodeErrorKind::TrailingBytes { what, count } => write!(
                f,
                "trailing bytes at offset {offset}: {count} unexpected bytes after {what}"
            ),
            DecodeErrorKind::TooLong { what, len, max } => write!(
                f,
                "field too long at offset {offset}: {what} has length {len}, at most {max} \
                 allowed"
            ),
            DecodeErrorKind::InvalidZarith { what, reason } => {
                write!(f, "invalid Zarith {what} at offset {offset}: {reason}")
            }
            DecodeErrorKind::OutOfRange { what, value } => {
                write!(
                    f,
                    "value out of range at offset {offset}: {what} is {value}"
                )
            }
            DecodeErrorKind::Invalid { what, reason } => {
                write!(f, "invalid {what} at offset {offset}: {reason}")
            }
        }
    }
}
