//! Signing requests built byte by byte from the wire format (magic byte included), so the
//! tests do not depend on the decoder they exercise.

use tezos_crypto::{ChainId, PublicKeyHash};

/// Mainnet (`NetXdQprcVkpaWU`).
pub const MAINNET: ChainId = ChainId([0x7a, 0x06, 0xa7, 0x70]);
/// Ghostnet (`NetXnHfVqm9iesp`).
pub const GHOSTNET: ChainId = ChainId([0xaf, 0x18, 0x64, 0xd9]);

/// A 32-byte value that differs with `seed`: branches, payload hashes, block hashes.
pub fn hash32(seed: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let v = seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(i as u64);
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// A consensus operation (0x12 preattestation, 0x13 attestation).
#[derive(Debug, Clone, Copy)]
pub struct Consensus {
    pub chain: ChainId,
    pub level: i32,
    pub round: i32,
    pub slot: u16,
    /// Changes the payload hash: two values at one (level, round) are a conflict.
    pub payload: u64,
}

impl Consensus {
    pub fn new(level: i32, round: i32, payload: u64) -> Self {
        Consensus {
            chain: MAINNET,
            level,
            round,
            slot: 7,
            payload,
        }
    }

    pub fn on(mut self, chain: ChainId) -> Self {
        self.chain = chain;
        self
    }

    fn header(&self, magic: u8, tag: u8) -> Vec<u8> {
        let mut b = Vec::with_capacity(120);
        b.push(magic);
        b.extend_from_slice(&self.chain.0);
        b.extend_from_slice(&hash32(self.level as u64));
        b.push(tag);
        b
    }

    fn body(&self, b: &mut Vec<u8>, with_slot: bool) {
        if with_slot {
            b.extend_from_slice(&self.slot.to_be_bytes());
        }
        b.extend_from_slice(&self.level.to_be_bytes());
        b.extend_from_slice(&self.round.to_be_bytes());
        b.extend_from_slice(&hash32(self.payload ^ 0x5a5a));
    }

    /// 0x12, tag 20.
    pub fn preattestation(&self) -> Vec<u8> {
        let mut b = self.header(0x12, 20);
        self.body(&mut b, true);
        b
    }

    /// 0x13, tag 21.
    pub fn attestation(&self) -> Vec<u8> {
        let mut b = self.header(0x13, 21);
        self.body(&mut b, true);
        b
    }

    /// 0x13, tag 23, with a DAL attestation bitset (Zarith).
    pub fn attestation_with_dal(&self, bitset: u64) -> Vec<u8> {
        let mut b = self.header(0x13, 23);
        self.body(&mut b, true);
        zarith_n(&mut b, bitset);
        b
    }

    /// 0x13, tag 41: a tz4 (BLS-mode) attestation, without slot.
    pub fn bls_attestation(&self) -> Vec<u8> {
        let mut b = self.header(0x13, 41);
        self.body(&mut b, false);
        b
    }
}

/// A Tenderbake block header (0x11).
#[derive(Debug, Clone, Copy)]
pub struct Block {
    pub chain: ChainId,
    pub level: i32,
    /// The block's round: the last element of its fitness.
    pub round: i32,
    pub payload_round: i32,
    pub payload: u64,
}

impl Block {
    pub fn new(level: i32, round: i32, payload: u64) -> Self {
        Block {
            chain: MAINNET,
            level,
            round,
            payload_round: round,
            payload,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(200);
        b.push(0x11);
        b.extend_from_slice(&self.chain.0);
        b.extend_from_slice(&self.level.to_be_bytes());
        b.push(1); // proto
        b.extend_from_slice(&hash32(self.level as u64 ^ 0xb10c)); // predecessor
        b.extend_from_slice(&1_700_000_000i64.to_be_bytes()); // timestamp
        b.push(4); // validation passes
        b.extend_from_slice(&hash32(self.payload ^ 0x0915)); // operations hash
                                                             // Tenderbake fitness: [02, level, locked round (none), -pred_round-1, round].
        let mut fitness = Vec::with_capacity(33);
        for element in [
            &[2u8][..],
            &self.level.to_be_bytes()[..],
            &[][..],
            &(-1i32).to_be_bytes()[..],
            &self.round.to_be_bytes()[..],
        ] {
            fitness.extend_from_slice(&(element.len() as u32).to_be_bytes());
            fitness.extend_from_slice(element);
        }
        b.extend_from_slice(&(fitness.len() as u32).to_be_bytes());
        b.extend_from_slice(&fitness);
        b.extend_from_slice(&hash32(self.payload ^ 0xc0)); // context
        b.extend_from_slice(&hash32(self.payload ^ 0x5a5a)); // payload hash
        b.extend_from_slice(&self.payload_round.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]); // proof-of-work nonce
        b.push(0); // no seed nonce hash
        b.push(0); // per-block votes
        b
    }
}

/// Zarith natural number: 7-bit groups, low first, high bit set while more follow.
pub fn zarith_n(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The binary Michelson `Unit`.
pub const MICHELINE_UNIT: [u8; 2] = [0x03, 0x0b];

/// One content of a generic operation.
#[derive(Debug, Clone)]
pub enum Op {
    /// A transaction of `amount` mutez to an implicit account, no parameters.
    Transfer {
        to: PublicKeyHash,
        amount: u64,
    },
    /// A transaction to `to` calling the named entrypoint (index in the protocol's table)
    /// with `Unit`; to the source itself this is a staking pseudo-operation.
    Call {
        to: PublicKeyHash,
        entrypoint: u8,
    },
    Reveal {
        public_key: Vec<u8>,
    },
    Delegation {
        delegate: Option<PublicKeyHash>,
    },
    Origination,
    /// 0 yay, 1 nay, 2 pass.
    Ballot {
        vote: u8,
    },
    FailingNoop,
}

/// Named entrypoints of the transaction encoding.
pub mod entrypoint {
    pub const DEFAULT: u8 = 0;
    pub const STAKE: u8 = 6;
    pub const UNSTAKE: u8 = 7;
    pub const FINALIZE_UNSTAKE: u8 = 8;
    pub const SET_DELEGATE_PARAMETERS: u8 = 9;
}

/// A generic operation (0x03): branch then contents, all from `source`.
pub fn generic(source: &PublicKeyHash, ops: &[Op]) -> Vec<u8> {
    let mut b = vec![0x03];
    b.extend_from_slice(&hash32(0xb4a7c4));
    for (i, op) in ops.iter().enumerate() {
        content(&mut b, source, op, i as u64 + 1);
    }
    b
}

fn manager_header(b: &mut Vec<u8>, tag: u8, source: &PublicKeyHash, counter: u64) {
    b.push(tag);
    b.extend_from_slice(&source.to_bytes());
    zarith_n(b, 1_000); // fee
    zarith_n(b, 42_000 + counter); // counter
    zarith_n(b, 10_000); // gas limit
    zarith_n(b, 300); // storage limit
}

fn content(b: &mut Vec<u8>, source: &PublicKeyHash, op: &Op, counter: u64) {
    match op {
        Op::Transfer { to, amount } => {
            manager_header(b, 108, source, counter);
            zarith_n(b, *amount);
            b.push(0); // implicit destination
            b.extend_from_slice(&to.to_bytes());
            b.push(0); // no parameters
        }
        Op::Call { to, entrypoint } => {
            manager_header(b, 108, source, counter);
            zarith_n(b, 0);
            b.push(0);
            b.extend_from_slice(&to.to_bytes());
            b.push(0xff);
            b.push(*entrypoint);
            b.extend_from_slice(&(MICHELINE_UNIT.len() as u32).to_be_bytes());
            b.extend_from_slice(&MICHELINE_UNIT);
        }
        Op::Reveal { public_key } => {
            manager_header(b, 107, source, counter);
            b.extend_from_slice(public_key);
            b.push(0); // no proof (only tz4 reveals carry one)
        }
        Op::Delegation { delegate } => {
            manager_header(b, 110, source, counter);
            match delegate {
                Some(d) => {
                    b.push(0xff);
                    b.extend_from_slice(&d.to_bytes());
                }
                None => b.push(0),
            }
        }
        Op::Origination => {
            manager_header(b, 109, source, counter);
            zarith_n(b, 0); // balance
            b.push(0); // no delegate
                       // parameter unit; storage unit; code { CDR; NIL operation; PAIR }
            let code_body: &[u8] = &[0x03, 0x17, 0x05, 0x3d, 0x03, 0x6d, 0x03, 0x42];
            let mut script = vec![0x05, 0x00, 0x03, 0x6c, 0x05, 0x01, 0x03, 0x6c, 0x05, 0x02];
            script.push(0x02);
            script.extend_from_slice(&(code_body.len() as u32).to_be_bytes());
            script.extend_from_slice(code_body);
            let mut code = vec![0x02];
            code.extend_from_slice(&(script.len() as u32).to_be_bytes());
            code.extend_from_slice(&script);
            b.extend_from_slice(&(code.len() as u32).to_be_bytes());
            b.extend_from_slice(&code);
            b.extend_from_slice(&(MICHELINE_UNIT.len() as u32).to_be_bytes());
            b.extend_from_slice(&MICHELINE_UNIT);
        }
        Op::Ballot { vote } => {
            b.push(6);
            b.extend_from_slice(&source.to_bytes());
            b.extend_from_slice(&120i32.to_be_bytes()); // voting period
            b.extend_from_slice(&hash32(0x9a0)); // proposal
            b.push(*vote);
        }
        Op::FailingNoop => {
            b.push(17);
            let msg = b"e2e failing noop";
            b.extend_from_slice(&(msg.len() as u32).to_be_bytes());
            b.extend_from_slice(msg);
        }
    }
}

/// What the Octez client signs to authenticate a request: `0x04 ‖ 0x01 ‖ pkh_bin ‖ data`.
pub fn authentication_message(pkh: &PublicKeyHash, data: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(23 + data.len());
    msg.extend_from_slice(&[0x04, 0x01]);
    msg.extend_from_slice(&pkh.to_bytes());
    msg.extend_from_slice(data);
    msg
}

/// A preattestation captured from Octez (chain `NetXxkAx4woPLyu`), as hex.
pub const OCTEZ_PREATTESTATION: &str = "12ed9d217c2f50673bab6b20dfb0a88ca93b4a0c72a34c807af5dffbece2cba3d2b509835f14006000000002000000041f1ebb39759cc957216f88fb4d005abc206fb00a53f8d57ac01be00c084cba97";

/// [`OCTEZ_PREATTESTATION`] moved to `level`, round 0, with `payload` as the last byte of
/// its payload hash: two payloads at one level are a conflict.
pub fn octez_preattestation(level: i32, payload: u8) -> Vec<u8> {
    let mut b = hex::decode(OCTEZ_PREATTESTATION).unwrap_or_default();
    if let Some(at) = b.get_mut(40..44) {
        at.copy_from_slice(&level.to_be_bytes());
    }
    if let Some(at) = b.get_mut(44..48) {
        at.copy_from_slice(&0i32.to_be_bytes());
    }
    if let Some(last) = b.last_mut() {
        *last = payload;
    }
    b
}
