//! A tiny Octez binary encoder to hand-build requests in tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[derive(Debug, Clone, Default)]
pub struct B(pub Vec<u8>);

impl B {
    pub fn new() -> B {
        B(Vec::new())
    }

    pub fn magic(m: u8) -> B {
        B(vec![m])
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn raw(mut self, b: &[u8]) -> B {
        self.0.extend_from_slice(b);
        self
    }

    pub fn fill(self, byte: u8, n: usize) -> B {
        self.raw(&vec![byte; n])
    }

    pub fn u8(self, v: u8) -> B {
        self.raw(&[v])
    }

    pub fn flag(self, v: bool) -> B {
        self.u8(if v { 0xff } else { 0 })
    }

    pub fn u16(self, v: u16) -> B {
        self.raw(&v.to_be_bytes())
    }

    pub fn i16(self, v: i16) -> B {
        self.raw(&v.to_be_bytes())
    }

    pub fn i32(self, v: i32) -> B {
        self.raw(&v.to_be_bytes())
    }

    pub fn u32(self, v: u32) -> B {
        self.raw(&v.to_be_bytes())
    }

    pub fn i64(self, v: i64) -> B {
        self.raw(&v.to_be_bytes())
    }

    /// Zarith natural.
    pub fn n(self, mut v: u128) -> B {
        let mut out = Vec::new();
        loop {
            let group = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(group);
                break;
            }
            out.push(group | 0x80);
        }
        self.raw(&out)
    }

    /// Zarith integer.
    pub fn z(self, v: i128) -> B {
        let mut mag = v.unsigned_abs();
        let sign = if v < 0 { 0x40 } else { 0 };
        let first = (mag & 0x3f) as u8 | sign;
        mag >>= 6;
        if mag == 0 {
            return self.u8(first);
        }
        self.u8(first | 0x80).n(mag)
    }

    /// `u32 length ‖ bytes`.
    pub fn lbytes(self, b: &[u8]) -> B {
        self.u32(b.len() as u32).raw(b)
    }

    /// `u32 length ‖ inner`.
    pub fn dynamic(self, inner: B) -> B {
        self.lbytes(&inner.0)
    }

    pub fn hash32(self, fill: u8) -> B {
        self.fill(fill, 32)
    }

    /// pkh21 with curve tag 0..3.
    pub fn pkh(self, tag: u8, fill: u8) -> B {
        self.u8(tag).fill(fill, 20)
    }

    /// Tagged public key.
    pub fn pk(self, tag: u8, fill: u8) -> B {
        let len = match tag {
            0 => 32,
            1 | 2 => 33,
            _ => 48,
        };
        self.u8(tag).fill(fill, len)
    }

    pub fn implicit(self, tag: u8, fill: u8) -> B {
        self.u8(0).pkh(tag, fill)
    }

    pub fn originated(self, fill: u8) -> B {
        self.u8(1).fill(fill, 20).u8(0)
    }

    /// Manager header after `tag`: source tz1(fill), fee 1000, counter 7, gas 10600,
    /// storage 300.
    pub fn manager(self, tag: u8, fill: u8) -> B {
        self.u8(tag).pkh(0, fill).n(1000).n(7).n(10600).n(300)
    }

    /// A generic request: magic 03 and a branch of 0x11 bytes.
    pub fn generic() -> B {
        B::magic(0x03).hash32(0x11)
    }
}

/// Micheline `Unit`.
pub const UNIT: [u8; 2] = [0x03, 0x0b];

/// A valid Tenderbake block shell + contents (no chain id, no magic), with `round`.
pub fn block_body(level: i32, round: i32, payload_round: i32) -> B {
    let fitness = B::new()
        .lbytes(&[0x02])
        .lbytes(&level.to_be_bytes())
        .lbytes(&[])
        .lbytes(&(-1i32).to_be_bytes())
        .lbytes(&round.to_be_bytes());
    B::new()
        .i32(level)
        .u8(2)
        .hash32(0x21)
        .i64(1_700_000_000)
        .u8(4)
        .hash32(0x22)
        .dynamic(fitness)
        .hash32(0x23)
        .hash32(0x24)
        .i32(payload_round)
        .fill(0x25, 8)
        .flag(false)
        .u8(0)
}

/// A block request.
pub fn block_request(level: i32, round: i32, payload_round: i32) -> B {
    B::magic(0x11)
        .raw(&[0x7a, 0x06, 0xa7, 0x70])
        .raw(block_body(level, round, payload_round).bytes())
}

/// A consensus request: magic, chain id, branch, tag, body.
pub fn consensus_request(magic: u8, tag: u8, slot: Option<u16>, level: i32, round: i32) -> B {
    let mut b = B::magic(magic)
        .raw(&[0x7a, 0x06, 0xa7, 0x70])
        .hash32(0x31)
        .u8(tag);
    if let Some(s) = slot {
        b = b.u16(s);
    }
    b = b.i32(level).i32(round).hash32(0x32);
    if tag == 23 {
        b = b.n(0b1011);
    }
    b
}

/// A signed inlined consensus operation (for denunciations).
pub fn inlined_attestation(level: i32, round: i32, signed: bool) -> B {
    let mut b = B::new()
        .hash32(0x41)
        .u8(21)
        .u16(3)
        .i32(level)
        .i32(round)
        .hash32(0x42);
    if signed {
        b = b.fill(0x43, 64);
    }
    b
}

/// Valid requests of every shape whose strict prefixes are all invalid (single-operation
/// generic requests, blocks, consensus operations), for property tests and benchmarks.
pub fn samples() -> Vec<B> {
    let scalar = [0x01u8; 32];
    let mut out = vec![
        block_request(1000, 3, 1),
        consensus_request(0x12, 20, Some(5), 10, 0),
        consensus_request(0x12, 40, None, 10, 0),
        consensus_request(0x13, 21, Some(5), 10, 0),
        consensus_request(0x13, 23, Some(5), 10, 0),
        consensus_request(0x13, 41, None, 10, 0),
        B::generic()
            .u8(3)
            .dynamic(block_body(500, 2, 1).fill(0x51, 64))
            .dynamic(block_body(500, 2, 0).fill(0x52, 96)),
        B::generic()
            .u8(2)
            .u16(3)
            .dynamic(inlined_attestation(100, 1, true))
            .dynamic(inlined_attestation(100, 1, false)),
        B::generic()
            .u8(24)
            .dynamic(inlined_attestation(300, 0, true))
            .u16(12)
            .u8(7)
            .flag(true)
            .u8(2)
            .i32(3)
            .dynamic(B::new().raw(&scalar))
            .fill(0x66, 48),
        B::generic()
            .manager(204, 0x11)
            .fill(0x5a, 20)
            .pkh(0, 0x12)
            .u8(1)
            .n(7)
            .u8(1)
            .lbytes(&[0xde, 0xad])
            .flag(true)
            .u8(1)
            .u8(2)
            .i32(5)
            .u8(1)
            .i16(-1)
            .lbytes(&[8]),
        B::generic().manager(251, 0x11).fill(0x0f, 20).dynamic(
            B::new()
                .i32(1)
                .hash32(0x0e)
                .z(-5)
                .pkh(0, 0x11)
                .fill(0x0f, 20)
                .dynamic(B::new().raw(&scalar))
                .u8(1)
                .raw(&[0x07, 0x07, 0x00, 0x01, 0x01, 0, 0, 0, 1, 0x61])
                .raw(&[0x03, 0x6c])
                .originated(0x44),
        ),
    ];
    out.push(
        B::generic()
            .manager(108, 0x11)
            .n(5)
            .originated(0x33)
            .flag(true)
            .u8(0xff)
            .u8(4)
            .raw(b"mint")
            .lbytes(&UNIT),
    );
    out
}
