//! The file store's binary encodings: records, checksummed frames, log header, snapshot.
//!
//! All integers are big-endian. Checksums are CRC-32C (Castagnoli).
//!
//! ```text
//! record   = 0x01 ‖ chain_id(4) ‖ pkh_bin(21) ‖ kind u8 ‖ level i32 ‖ round i32 ‖ hash(32)
//!            ‖ has_signature u8 ‖ [len u16 ‖ signature (ASCII base58check)]
//! frame    = body_len u32 ‖ crc32c(body_len ‖ body) u32 ‖ body        (body = records)
//! log      = "SIGWMLOG" ‖ version u32 ‖ generation u64 ‖ crc32c(previous 20 bytes) u32
//!            ‖ ack_slot ‖ ack_slot ‖ frame*                            (version 2)
//! ack_slot = acknowledged_len u64 ‖ crc32c(generation ‖ acknowledged_len) u32
//! snapshot = "SIGWMSNP" ‖ version u32 ‖ log_generation u64 ‖ body_len u32 ‖ body
//!            ‖ crc32c(everything before) u32
//! ```
//!
//! `acknowledged_len` is how many bytes of the log (header included) were durable when the
//! store last answered a commit: every acknowledged frame lies below it. The two slots are
//! written in turn, each overwritten in place and synced after the frames it counts, so a
//! torn slot write leaves the other one, which counts everything acknowledged before it;
//! the valid slot with the larger length is the current one. Version 1 logs (24-byte
//! header, no slots) are still read, and migrated at the next open.

use signatory_signer::watermark::{Watermark, WatermarkKey};
use tezos_crypto::{ChainId, PublicKeyHash};
use tezos_encoding::WatermarkKind;

/// The snapshot's format version.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// The log's format version: 2 added the acknowledged-length slots.
pub(crate) const LOG_VERSION: u32 = 2;
/// The log format before the acknowledged-length slots, read for migration.
pub(crate) const LOG_VERSION_UNCOUNTED: u32 = 1;
pub(crate) const LOG_MAGIC: &[u8; 8] = b"SIGWMLOG";
pub(crate) const SNAPSHOT_MAGIC: &[u8; 8] = b"SIGWMSNP";
/// Magic, version, generation and their checksum.
const LOG_FIXED_LEN: usize = 24;
const ACK_SLOT_LEN: usize = 12;
const ACK_SLOTS: usize = 2;
/// Length of a version 2 log header, slots included.
pub(crate) const LOG_HEADER_LEN: usize = LOG_FIXED_LEN + ACK_SLOTS * ACK_SLOT_LEN;
pub(crate) const FRAME_HEADER_LEN: usize = 8;
/// No commit group is this large; a longer length field is damage, not a torn write.
pub(crate) const MAX_FRAME_BODY: usize = 256 << 20;

const RECORD_PUT: u8 = 1;
const RECORD_FIXED_LEN: usize = 1 + 4 + 21 + 1 + 4 + 4 + 32 + 1;

// `i` stays below 256 in this compile-time loop, so the indexing cannot fail.
#[allow(clippy::indexing_slicing)]
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-32C over the concatenation of `parts`.
pub(crate) fn crc32c(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for &byte in *part {
            let index = usize::from((crc as u8) ^ byte);
            crc = (crc >> 8) ^ CRC32C_TABLE.get(index).copied().unwrap_or(0);
        }
    }
    !crc
}

fn kind_tag(kind: WatermarkKind) -> u8 {
    match kind {
        WatermarkKind::Block => 0,
        WatermarkKind::Preattestation => 1,
        WatermarkKind::Attestation => 2,
    }
}

fn kind_from_tag(tag: u8) -> Option<WatermarkKind> {
    match tag {
        0 => Some(WatermarkKind::Block),
        1 => Some(WatermarkKind::Preattestation),
        2 => Some(WatermarkKind::Attestation),
        _ => None,
    }
}

/// Append one record. The signature length was bounded by the rules before it got here.
pub(crate) fn encode_record(key: &WatermarkKey, mark: &Watermark, out: &mut Vec<u8>) {
    out.push(RECORD_PUT);
    out.extend_from_slice(&key.chain_id.0);
    out.extend_from_slice(&key.pkh.to_bytes());
    out.push(kind_tag(key.kind));
    out.extend_from_slice(&mark.level.to_be_bytes());
    out.extend_from_slice(&mark.round.to_be_bytes());
    out.extend_from_slice(&mark.request_hash);
    match mark
        .signature
        .as_deref()
        .and_then(|s| u16::try_from(s.len()).ok().map(|len| (s, len)))
    {
        Some((signature, len)) => {
            out.push(1);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(signature.as_bytes());
        }
        None => out.push(0),
    }
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.data.len() < n {
            return Err(format!(
                "record truncated: needed {n} more bytes, {} left",
                self.data.len()
            ));
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self.take(N)?;
        bytes
            .try_into()
            .map_err(|_| "internal length mismatch".to_string())
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }
}

/// Decode every record of a frame or snapshot body.
pub(crate) fn decode_records(body: &[u8]) -> Result<Vec<(WatermarkKey, Watermark)>, String> {
    let mut reader = Reader { data: body };
    let mut out = Vec::with_capacity(body.len() / RECORD_FIXED_LEN);
    while !reader.data.is_empty() {
        let tag = reader.u8()?;
        if tag != RECORD_PUT {
            return Err(format!("unknown record type {tag}"));
        }
        let chain_id = ChainId(reader.array::<4>()?);
        let pkh = PublicKeyHash::from_bytes(reader.take(21)?).map_err(|e| e.to_string())?;
        let kind_byte = reader.u8()?;
        let kind = kind_from_tag(kind_byte).ok_or_else(|| format!("unknown kind {kind_byte}"))?;
        let level = i32::from_be_bytes(reader.array::<4>()?);
        let round = i32::from_be_bytes(reader.array::<4>()?);
        let request_hash = reader.array::<32>()?;
        let signature = match reader.u8()? {
            0 => None,
            1 => {
                let len = u16::from_be_bytes(reader.array::<2>()?);
                let bytes = reader.take(usize::from(len))?;
                Some(
                    std::str::from_utf8(bytes)
                        .map_err(|_| "signature is not text".to_string())?
                        .to_string(),
                )
            }
            other => return Err(format!("bad signature flag {other}")),
        };
        out.push((
            WatermarkKey::new(chain_id, pkh, kind),
            Watermark {
                level,
                round,
                request_hash,
                signature,
            },
        ));
    }
    Ok(out)
}

/// Wrap `body` in a checksummed frame.
pub(crate) fn encode_frame(body: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c(&[&len, body]).to_be_bytes());
    out.extend_from_slice(body);
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(raw))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let raw: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(raw))
}

/// The body of a complete, intact frame starting at `at`, if there is one.
pub(crate) fn frame_at(data: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::try_from(be_u32(data, at)?).ok()?;
    if len == 0 || len > MAX_FRAME_BODY {
        return None;
    }
    let crc = be_u32(data, at.checked_add(4)?)?;
    let start = at.checked_add(FRAME_HEADER_LEN)?;
    let body = data.get(start..start.checked_add(len)?)?;
    let len_bytes = data.get(at..at.checked_add(4)?)?;
    (crc32c(&[len_bytes, body]) == crc).then_some(body)
}

/// A new log's header: its first slot acknowledges the header alone, its second is empty.
pub(crate) fn encode_log_header(generation: u64) -> [u8; LOG_HEADER_LEN] {
    let mut head = Vec::with_capacity(LOG_HEADER_LEN);
    head.extend_from_slice(LOG_MAGIC);
    head.extend_from_slice(&LOG_VERSION.to_be_bytes());
    head.extend_from_slice(&generation.to_be_bytes());
    let crc = crc32c(&[&head]);
    head.extend_from_slice(&crc.to_be_bytes());
    head.extend_from_slice(&encode_ack_slot(generation, LOG_HEADER_LEN as u64));
    head.resize(LOG_HEADER_LEN, 0);
    let mut out = [0u8; LOG_HEADER_LEN];
    out.copy_from_slice(&head);
    out
}

/// The bytes of an acknowledgement slot saying `len` bytes of log `generation` are durable.
pub(crate) fn encode_ack_slot(generation: u64, len: u64) -> [u8; ACK_SLOT_LEN] {
    let len = len.to_be_bytes();
    let crc = crc32c(&[&generation.to_be_bytes(), &len]).to_be_bytes();
    let mut out = [0u8; ACK_SLOT_LEN];
    for (slot, byte) in out.iter_mut().zip(len.iter().chain(crc.iter())) {
        *slot = *byte;
    }
    out
}

/// Where acknowledgement slot `index` (0 or 1, taken modulo 2) sits in the log.
pub(crate) fn ack_slot_offset(index: usize) -> u64 {
    (LOG_FIXED_LEN + (index % ACK_SLOTS) * ACK_SLOT_LEN) as u64
}

/// What a log header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogHeader {
    pub generation: u64,
    /// Where the first frame starts.
    pub len: usize,
    /// Bytes of the log acknowledged, `None` for a version 1 log (which does not say).
    pub acknowledged: Option<u64>,
    /// The slot the next acknowledgement overwrites: the one not holding `acknowledged`.
    pub next_slot: usize,
}

/// Decode a log header (either version).
pub(crate) fn decode_log_header(data: &[u8]) -> Result<LogHeader, String> {
    let head = data
        .get(..LOG_FIXED_LEN)
        .ok_or_else(|| format!("log is {} bytes, shorter than its header", data.len()))?;
    if head.get(..8) != Some(LOG_MAGIC.as_slice()) {
        return Err("not a watermark log (bad magic)".into());
    }
    let crc = be_u32(head, 20).unwrap_or(0);
    if crc32c(&[head.get(..20).unwrap_or_default()]) != crc {
        return Err("log header checksum does not match".into());
    }
    let generation = be_u64(head, 12).ok_or_else(|| "log header truncated".to_string())?;
    match be_u32(head, 8).unwrap_or(0) {
        LOG_VERSION_UNCOUNTED => Ok(LogHeader {
            generation,
            len: LOG_FIXED_LEN,
            acknowledged: None,
            next_slot: 0,
        }),
        LOG_VERSION => {
            let mut best: Option<(u64, usize)> = None;
            for index in 0..ACK_SLOTS {
                let at = LOG_FIXED_LEN + index * ACK_SLOT_LEN;
                let Some(slot) = data.get(at..at + ACK_SLOT_LEN) else {
                    return Err(format!(
                        "log is {} bytes, shorter than its header",
                        data.len()
                    ));
                };
                let valid = be_u64(slot, 0)
                    .filter(|len| slot == encode_ack_slot(generation, *len).as_slice());
                if let Some(len) = valid {
                    if best.is_none_or(|(b, _)| len > b) {
                        best = Some((len, index));
                    }
                }
            }
            // Slots are written one at a time after the header was synced whole, so one of
            // them is always intact; none means the header itself was damaged.
            let (acknowledged, index) = best.ok_or_else(|| {
                "neither acknowledged-length slot of the log header is intact".to_string()
            })?;
            if acknowledged < LOG_HEADER_LEN as u64 {
                return Err(format!(
                    "the log header acknowledges {acknowledged} bytes, less than the header"
                ));
            }
            Ok(LogHeader {
                generation,
                len: LOG_HEADER_LEN,
                acknowledged: Some(acknowledged),
                next_slot: (index + 1) % ACK_SLOTS,
            })
        }
        version => Err(format!(
            "log format version {version}, this signer reads {LOG_VERSION_UNCOUNTED} and \
             {LOG_VERSION}"
        )),
    }
}

pub(crate) fn encode_snapshot<'a>(
    log_generation: u64,
    records: impl Iterator<Item = (&'a WatermarkKey, &'a Watermark)>,
) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, mark) in records {
        encode_record(key, mark, &mut body);
    }
    let mut out = Vec::with_capacity(body.len() + 28);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&log_generation.to_be_bytes());
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&body);
    let crc = crc32c(&[&out]);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The log generation a snapshot names, and its records.
pub(crate) fn decode_snapshot(
    data: &[u8],
) -> Result<(u64, Vec<(WatermarkKey, Watermark)>), String> {
    if data.len() < 28 || data.get(..8) != Some(SNAPSHOT_MAGIC.as_slice()) {
        return Err("not a watermark snapshot (bad magic or too short)".into());
    }
    let (content, crc) = data.split_at(data.len() - 4);
    if be_u32(crc, 0) != Some(crc32c(&[content])) {
        return Err("snapshot checksum does not match".into());
    }
    let version = be_u32(content, 8).unwrap_or(0);
    if version != FORMAT_VERSION {
        return Err(format!(
            "snapshot format version {version}, this signer reads {FORMAT_VERSION}"
        ));
    }
    let generation = be_u64(content, 12).ok_or("snapshot truncated")?;
    let len = usize::try_from(be_u32(content, 20).ok_or("snapshot truncated")?)
        .map_err(|_| "snapshot too large")?;
    let body = content
        .get(24..)
        .filter(|b| b.len() == len)
        .ok_or("snapshot length does not match its content")?;
    Ok((generation, decode_records(body)?))
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
    use crate::test_support::key;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The published CRC-32C check value of "123456789".
        assert_eq!(crc32c(&[b"123456789"]), 0xE306_9283);
        assert_eq!(crc32c(&[b"1234", b"56789"]), 0xE306_9283);
    }

    #[test]
    fn records_round_trip() {
        let mut body = Vec::new();
        let a = (
            key(1),
            Watermark {
                level: -5,
                round: i32::MAX,
                request_hash: [7; 32],
                signature: None,
            },
        );
        let b = (
            key(2),
            Watermark {
                level: 1,
                round: 0,
                request_hash: [9; 32],
                signature: Some("edsigXYZ".into()),
            },
        );
        encode_record(&a.0, &a.1, &mut body);
        encode_record(&b.0, &b.1, &mut body);
        assert_eq!(decode_records(&body).unwrap(), vec![a, b]);
        assert!(decode_records(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn frames_detect_any_flipped_bit() {
        let mut framed = Vec::new();
        encode_frame(b"some records", &mut framed);
        assert_eq!(frame_at(&framed, 0), Some(b"some records".as_slice()));
        for i in 0..framed.len() {
            let mut damaged = framed.clone();
            damaged[i] ^= 0x10;
            assert_eq!(frame_at(&damaged, 0), None, "flip at {i} went unnoticed");
        }
        assert_eq!(frame_at(&framed[..framed.len() - 1], 0), None);
    }

    #[test]
    fn snapshot_and_header_round_trip_and_reject_damage() {
        let k = key(3);
        let m = Watermark {
            level: 3,
            round: 1,
            request_hash: [1; 32],
            signature: Some("sig".into()),
        };
        let snap = encode_snapshot(42, [(&k, &m)].into_iter());
        assert_eq!(decode_snapshot(&snap).unwrap(), (42, vec![(k, m)]));
        let mut bad = snap.clone();
        bad[30] ^= 1;
        assert!(decode_snapshot(&bad).is_err());
        let header = decode_log_header(&encode_log_header(7)).unwrap();
        assert_eq!(
            header,
            LogHeader {
                generation: 7,
                len: LOG_HEADER_LEN,
                acknowledged: Some(LOG_HEADER_LEN as u64),
                next_slot: 1,
            }
        );
        let mut bad = encode_log_header(7);
        bad[15] ^= 1;
        assert!(decode_log_header(&bad).is_err());
    }

    fn with_slot(mut header: [u8; LOG_HEADER_LEN], index: usize, len: u64) -> Vec<u8> {
        let at = usize::try_from(ack_slot_offset(index)).unwrap();
        header[at..at + ACK_SLOT_LEN].copy_from_slice(&encode_ack_slot(7, len));
        header.to_vec()
    }

    #[test]
    fn the_larger_intact_slot_is_the_acknowledged_length() {
        let header = with_slot(encode_log_header(7), 1, 500);
        let decoded = decode_log_header(&header).unwrap();
        assert_eq!((decoded.acknowledged, decoded.next_slot), (Some(500), 0));
        let header = with_slot(header.try_into().unwrap(), 0, 900);
        let decoded = decode_log_header(&header).unwrap();
        assert_eq!((decoded.acknowledged, decoded.next_slot), (Some(900), 1));
        // A torn write of slot 0 leaves slot 1, which counts what was acknowledged before.
        let mut torn = header.clone();
        torn[usize::try_from(ack_slot_offset(0)).unwrap() + 3] ^= 0xff;
        let decoded = decode_log_header(&torn).unwrap();
        assert_eq!((decoded.acknowledged, decoded.next_slot), (Some(500), 0));
        // A slot of another generation does not count.
        let mut foreign = encode_log_header(7);
        let at = usize::try_from(ack_slot_offset(1)).unwrap();
        foreign[at..at + ACK_SLOT_LEN].copy_from_slice(&encode_ack_slot(8, 900));
        assert_eq!(
            decode_log_header(&foreign).unwrap().acknowledged,
            Some(LOG_HEADER_LEN as u64)
        );
        // Neither slot intact: damage, not a length to trust.
        let mut both = torn;
        both[usize::try_from(ack_slot_offset(1)).unwrap()] ^= 0xff;
        assert!(decode_log_header(&both).is_err());
        // A header cut short is refused, not read as unacknowledged.
        assert!(decode_log_header(&encode_log_header(7)[..30]).is_err());
    }

    #[test]
    fn version_1_headers_are_read_without_an_acknowledged_length() {
        let mut head = Vec::new();
        head.extend_from_slice(LOG_MAGIC);
        head.extend_from_slice(&1u32.to_be_bytes());
        head.extend_from_slice(&3u64.to_be_bytes());
        let crc = crc32c(&[&head]);
        head.extend_from_slice(&crc.to_be_bytes());
        let decoded = decode_log_header(&head).unwrap();
        assert_eq!((decoded.generation, decoded.len), (3, 24));
        assert_eq!(decoded.acknowledged, None);
    }
}
