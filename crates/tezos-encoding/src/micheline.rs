//! The extent of one binary Micheline expression (only needed where the protocol embeds a
//! raw expression without a length prefix: zk rollup tickets). The walk is iterative, so
//! deep nesting cannot overflow the stack; its work stack only grows as input is consumed.

use crate::error::{DecodeError, DecodeErrorKind};
use crate::reader::{Reader, Result};

/// Number of Michelson primitives in protocol 024 (023 has 159; 024 adds two).
const PRIMITIVE_COUNT: u8 = 161;

enum Pending {
    /// This many nodes still to read.
    Nodes(u8),
    /// Nodes until this absolute offset (a sequence or argument list).
    Until(usize),
    /// An annotation string after the arguments.
    Annots,
}

fn truncated<T>(at: usize, expected: &'static str) -> Result<T> {
    Err(DecodeError::new(
        at,
        DecodeErrorKind::Truncated { expected },
    ))
}

/// Reads one expression and returns its bytes.
pub(crate) fn read_expr<'a>(r: &mut Reader<'a>) -> Result<&'a [u8]> {
    let start = r.pos();
    let scope_end = start + r.remaining();
    let mut stack: Vec<Pending> = vec![Pending::Nodes(1)];
    // Ends of the open length-delimited scopes, innermost last.
    let mut limits: Vec<usize> = vec![scope_end];
    let bytes = r.peek_rest();
    let mut pos = start;
    let byte_at = |pos: usize| -> Option<u8> { bytes.get(pos - start).copied() };

    // A u32 length prefix at `pos`, checked against the innermost scope.
    let length = |pos: usize, limit: usize, what: &'static str| -> Result<usize> {
        let b: Vec<u8> = (0..4).filter_map(|i| byte_at(pos + i)).collect();
        let [a, b, c, d] = b.as_slice() else {
            return truncated(pos, "4-byte Micheline length");
        };
        let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
        let remaining = limit.saturating_sub(pos + 4);
        if len > remaining {
            return Err(DecodeError::new(
                pos,
                DecodeErrorKind::LengthBeyondInput {
                    what,
                    announced: len as u64,
                    remaining,
                },
            ));
        }
        Ok(len)
    };

    while let Some(top) = stack.last_mut() {
        let limit = limits.last().copied().unwrap_or(scope_end);
        match top {
            Pending::Nodes(0) => {
                stack.pop();
                continue;
            }
            Pending::Nodes(n) => *n -= 1,
            Pending::Until(end) => {
                if pos == *end {
                    stack.pop();
                    limits.pop();
                    continue;
                }
            }
            Pending::Annots => {
                stack.pop();
                let len = length(pos, limit, "Micheline annotations")?;
                pos += 4 + len;
                continue;
            }
        }
        // One node at `pos`.
        let Some(tag) = byte_at(pos) else {
            return truncated(pos, "1-byte Micheline node tag");
        };
        let node_at = pos;
        pos += 1;
        let prim = |pos: &mut usize| -> Result<()> {
            let Some(p) = byte_at(*pos).filter(|_| *pos < limit) else {
                return truncated(*pos, "1-byte Michelson primitive");
            };
            if p >= PRIMITIVE_COUNT {
                return Err(DecodeError::new(
                    *pos,
                    DecodeErrorKind::UnknownTag {
                        what: "Michelson primitive",
                        tag: p,
                    },
                ));
            }
            *pos += 1;
            Ok(())
        };
        match tag {
            0 => {
                // Zarith integer, canonical, unbounded in the protocol: bounded by input.
                let first = pos;
                loop {
                    let Some(b) = byte_at(pos).filter(|_| pos < limit) else {
                        return truncated(pos, "the rest of a Micheline integer");
                    };
                    pos += 1;
                    if b & 0x80 == 0 {
                        if pos - first > 1 && b == 0 {
                            return Err(DecodeError::new(
                                pos - 1,
                                DecodeErrorKind::InvalidZarith {
                                    what: "Micheline integer",
                                    reason: "non-canonical trailing zero byte",
                                },
                            ));
                        }
                        break;
                    }
                }
            }
            1 | 10 => {
                let len = length(pos, limit, "Micheline string or bytes")?;
                pos += 4 + len;
            }
            2 => {
                let len = length(pos, limit, "Micheline sequence")?;
                pos += 4;
                stack.push(Pending::Until(pos + len));
                limits.push(pos + len);
            }
            3 => prim(&mut pos)?,
            4 => {
                prim(&mut pos)?;
                stack.push(Pending::Annots);
            }
            5..=8 => {
                prim(&mut pos)?;
                if tag == 6 || tag == 8 {
                    stack.push(Pending::Annots);
                }
                stack.push(Pending::Nodes(if tag <= 6 { 1 } else { 2 }));
            }
            9 => {
                prim(&mut pos)?;
                let len = length(pos, limit, "Micheline arguments")?;
                pos += 4;
                stack.push(Pending::Annots);
                stack.push(Pending::Until(pos + len));
                limits.push(pos + len);
            }
            _ => {
                return Err(DecodeError::new(
                    node_at,
                    DecodeErrorKind::UnknownTag {
                        what: "Micheline node",
                        tag,
                    },
                ))
            }
        }
        if pos > limit {
            return truncated(node_at, "a Micheline node within its sequence");
        }
    }
    r.take(pos - start, "a Micheline expression")
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

    fn extent(hex: &str) -> std::result::Result<usize, DecodeError> {
        let bytes = hex::decode(hex).unwrap();
        let mut r = Reader::new(&bytes, crate::Protocol::DEFAULT);
        read_expr(&mut r).map(|e| e.len())
    }

    #[test]
    fn measures_common_expressions() {
        // Unit
        assert_eq!(extent("030b"), Ok(2));
        // Pair (Int 1) (String "a")  followed by a trailing byte that is not consumed
        assert_eq!(extent(concat!("070700010100000001", "61ff")), Ok(10));
        // { Unit ; Unit }
        assert_eq!(extent("0200000004030b030b"), Ok(9));
        // generic prim with args list and empty annots: Pair {Unit} ""
        assert_eq!(extent(concat!("0907000000020300", "00000000")), Ok(12));
        // prim with annotation "%a"
        assert_eq!(extent(concat!("04020000000225", "61")), Ok(8));
    }

    #[test]
    fn refuses_bad_expressions() {
        assert!(extent("").is_err());
        assert!(extent("0b").is_err());
        assert!(extent("03ff").is_err());
        assert!(extent("0200000005030b").is_err());
        assert!(extent("008000").is_err());
        // a sequence whose element runs past its end
        assert!(extent("02000000010100000001610000").is_err());
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        // 200_000 nested `Some` (prim 1 arg) then Unit.
        let mut bytes = Vec::new();
        for _ in 0..200_000 {
            bytes.extend_from_slice(&[0x05, 0x09]);
        }
        bytes.extend_from_slice(&[0x03, 0x0b]);
        let mut r = Reader::new(&bytes, crate::Protocol::DEFAULT);
        assert_eq!(read_expr(&mut r).map(|e| e.len()), Ok(bytes.len()));
    }
}
