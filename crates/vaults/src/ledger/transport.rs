//! How APDUs reach a device: the [`Transport`] trait, the Speculos TCP transport and the
//! Linux USB HID transport (`/dev/hidraw*`, plain file I/O).
//!
//! Framing facts, each from one source (read for facts only):
//! - Speculos (`LedgerHQ/speculos`, `speculos/mcu/apdu.py`, commit `14f150fc`): a command
//!   is sent as a 4-byte big-endian length then the APDU; an answer comes as a 4-byte
//!   big-endian length of the data *without* the status word, then the data and the
//!   2-byte status word.
//! - Ledger USB HID (as ECAD Signatory's `pkg/vault/ledger/ledger/usbhid.go` frames it,
//!   commit `1199064c`): 64-byte reports, each `channel (2 bytes) ‖ tag 0x05 ‖ sequence
//!   (2 bytes, from 0)`, then for sequence 0 the APDU's 2-byte length, then the APDU
//!   bytes; answers are framed the same way. Ledger's vendor id is `0x2c97`; on Linux the
//!   APDU interface is USB interface 0.
//! - Linux hidraw (kernel `Documentation/hid/hidraw.rst`): a write starts with the report
//!   number, 0 for devices without numbered reports, so each 64-byte report is written as
//!   65 bytes.
//!
//! The framing is pure code with unit tests. The device I/O (opening `/dev/hidraw*`,
//! reading and writing reports, a TCP connection to Speculos) was not run against a device
//! or an emulator: neither exists where this was written.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why an exchange failed below the app: the device went away, the link broke, the
/// framing was wrong. A retry with a freshly opened device may succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

impl TransportError {
    pub fn new(message: impl Into<String>) -> Self {
        TransportError(message.into())
    }

    fn io(context: &str, e: &std::io::Error) -> Self {
        TransportError(format!("{context}: {e}"))
    }
}

/// One open device: send a command APDU, get `data ‖ SW1 SW2` back. Blocking; the vault
/// calls it from the blocking pool, one exchange at a time.
pub trait Transport: Send + fmt::Debug {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
}

/// Finds and opens devices of one kind.
pub trait Connector: Send + Sync + fmt::Debug {
    /// The devices present now (paths or addresses), in a stable order.
    fn candidates(&self) -> Result<Vec<String>, TransportError>;
    fn open(&self, candidate: &str) -> Result<Box<dyn Transport>, TransportError>;
}

/// The `transport` setting: `usb` (the default) or `tcp://host:port` (Speculos).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportKind {
    Usb,
    Tcp(String),
}

impl TransportKind {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text == "usb" {
            return Ok(TransportKind::Usb);
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            // ECAD lets a Speculos model name ride in the user part (`tcp://nanos@host:port`);
            // the model changes nothing here.
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            let host = host.trim_end_matches('/');
            if host.is_empty() || !host.contains(':') {
                return Err(format!(
                    "`{text}` needs a host and a port: tcp://127.0.0.1:9999"
                ));
            }
            return Ok(TransportKind::Tcp(host.to_owned()));
        }
        Err(format!(
            "unknown transport `{text}`; expected `usb` or `tcp://host:port`"
        ))
    }

    pub fn connector(&self) -> Box<dyn Connector> {
        match self {
            TransportKind::Usb => Box::new(HidConnector::default()),
            TransportKind::Tcp(addr) => Box::new(TcpConnector {
                addr: addr.clone(),
                timeout: Duration::from_secs(30),
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Speculos over TCP

/// A command for Speculos' APDU port.
pub fn speculos_frame(apdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + apdu.len());
    out.extend_from_slice(&u32::try_from(apdu.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(apdu);
    out
}

/// How many bytes follow Speculos' 4-byte answer header (the data and the status word).
pub fn speculos_answer_len(header: [u8; 4]) -> usize {
    usize::try_from(u32::from_be_bytes(header))
        .unwrap_or(usize::MAX)
        .saturating_add(2)
}

/// Speculos' APDU port (`--apdu-port`, 9999 by default).
#[derive(Debug, Clone)]
pub struct TcpConnector {
    pub addr: String,
    pub timeout: Duration,
}

impl Connector for TcpConnector {
    fn candidates(&self) -> Result<Vec<String>, TransportError> {
        Ok(vec![self.addr.clone()])
    }

    fn open(&self, candidate: &str) -> Result<Box<dyn Transport>, TransportError> {
        let addr = candidate
            .to_socket_addrs()
            .map_err(|e| TransportError::io(&format!("tcp {candidate}"), &e))?
            .next()
            .ok_or_else(|| TransportError::new(format!("tcp {candidate}: no address")))?;
        let stream = TcpStream::connect_timeout(&addr, self.timeout)
            .map_err(|e| TransportError::io(&format!("tcp {candidate}"), &e))?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(|e| TransportError::io(&format!("tcp {candidate}"), &e))?;
        Ok(Box::new(TcpTransport { stream }))
    }
}

#[derive(Debug)]
struct TcpTransport {
    stream: TcpStream,
}

impl Transport for TcpTransport {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.stream
            .write_all(&speculos_frame(apdu))
            .map_err(|e| TransportError::io("tcp write", &e))?;
        let mut header = [0u8; 4];
        self.stream
            .read_exact(&mut header)
            .map_err(|e| TransportError::io("tcp read", &e))?;
        let len = speculos_answer_len(header);
        if len > 64 * 1024 {
            return Err(TransportError::new(format!(
                "tcp: an answer of {len} bytes is not an APDU answer"
            )));
        }
        let mut answer = vec![0u8; len];
        self.stream
            .read_exact(&mut answer)
            .map_err(|e| TransportError::io("tcp read", &e))?;
        Ok(answer)
    }
}

// ---------------------------------------------------------------------------------------
// USB HID framing (pure)

/// The size of one HID report.
pub const HID_REPORT: usize = 64;
/// The tag of APDU reports.
pub const HID_TAG_APDU: u8 = 0x05;
/// Ledger's USB vendor id.
pub const LEDGER_VENDOR_ID: u16 = 0x2c97;
/// The channel this driver uses (any value works; ledgerjs uses 0x0101).
pub const HID_CHANNEL: u16 = 0x0101;

/// The reports that carry `apdu` on `channel`.
pub fn hid_frames(channel: u16, apdu: &[u8]) -> Vec<[u8; HID_REPORT]> {
    let mut payload = Vec::with_capacity(2 + apdu.len());
    payload.extend_from_slice(&u16::try_from(apdu.len()).unwrap_or(u16::MAX).to_be_bytes());
    payload.extend_from_slice(apdu);
    payload
        .chunks(HID_REPORT - 5)
        .enumerate()
        .map(|(seq, piece)| {
            let mut report = [0u8; HID_REPORT];
            let seq = u16::try_from(seq).unwrap_or(u16::MAX);
            let header = [
                (channel >> 8) as u8,
                channel as u8,
                HID_TAG_APDU,
                (seq >> 8) as u8,
                seq as u8,
            ];
            for (slot, byte) in report.iter_mut().zip(header.iter().chain(piece)) {
                *slot = *byte;
            }
            report
        })
        .collect()
}

/// Reassembles an answer from reports, checking channel, tag and sequence.
#[derive(Debug)]
pub struct HidReassembler {
    channel: u16,
    next_seq: u16,
    expected: Option<usize>,
    data: Vec<u8>,
}

impl HidReassembler {
    pub fn new(channel: u16) -> Self {
        HidReassembler {
            channel,
            next_seq: 0,
            expected: None,
            data: Vec::new(),
        }
    }

    /// Take one report; `Some(answer)` once the answer is complete.
    pub fn push(&mut self, report: &[u8]) -> Result<Option<Vec<u8>>, TransportError> {
        let (header, body) = match report {
            [a, b, tag, s1, s2, body @ ..] => (
                (
                    u16::from_be_bytes([*a, *b]),
                    *tag,
                    u16::from_be_bytes([*s1, *s2]),
                ),
                body,
            ),
            _ => return Err(TransportError::new("hid: a report shorter than its header")),
        };
        let (channel, tag, seq) = header;
        if channel != self.channel {
            return Err(TransportError::new(format!(
                "hid: an answer on channel {channel:#06x}, not {:#06x}",
                self.channel
            )));
        }
        if tag != HID_TAG_APDU {
            return Err(TransportError::new(format!(
                "hid: unexpected tag {tag:#04x}"
            )));
        }
        if seq != self.next_seq {
            return Err(TransportError::new(format!(
                "hid: report {seq} where {} was expected",
                self.next_seq
            )));
        }
        self.next_seq = self.next_seq.wrapping_add(1);
        let body = match self.expected {
            None => match body {
                [l1, l2, rest @ ..] => {
                    self.expected = Some(usize::from(u16::from_be_bytes([*l1, *l2])));
                    rest
                }
                _ => return Err(TransportError::new("hid: a first report without a length")),
            },
            Some(_) => body,
        };
        let expected = self.expected.unwrap_or(0);
        let take = expected.saturating_sub(self.data.len()).min(body.len());
        self.data
            .extend_from_slice(body.get(..take).unwrap_or_default());
        if self.data.len() == expected {
            Ok(Some(std::mem::take(&mut self.data)))
        } else {
            Ok(None)
        }
    }
}

/// `HID_ID=0003:00002C97:00005011` from a hidraw device's `uevent`: (vendor, product).
pub fn parse_hid_uevent(text: &str) -> Option<(u16, u16)> {
    let id = text.lines().find_map(|l| l.strip_prefix("HID_ID="))?;
    let mut parts = id.trim().split(':');
    let _bus = parts.next()?;
    let vendor = u32::from_str_radix(parts.next()?, 16).ok()?;
    let product = u32::from_str_radix(parts.next()?, 16).ok()?;
    Some((u16::try_from(vendor).ok()?, u16::try_from(product).ok()?))
}

/// The USB interface number from a hidraw device's resolved sysfs path, whose parent
/// is the interface (`…/1-1:1.0/0003:2C97:5011.0001`): the number after the last `.`.
pub fn usb_interface_of(device_path: &Path) -> Option<u8> {
    device_path.ancestors().find_map(|p| {
        let name = p.file_name()?.to_str()?;
        let (_, config_iface) = name.split_once(':')?;
        let (_, iface) = config_iface.split_once('.')?;
        // `0003:2C97:5011.0001` is the HID device itself, not an interface.
        if name.matches(':').count() != 1 {
            return None;
        }
        iface.parse().ok()
    })
}

// ---------------------------------------------------------------------------------------
// USB HID on Linux

/// Ledger devices among `/dev/hidraw*` (interface 0 only).
#[derive(Debug, Clone)]
pub struct HidConnector {
    pub sys_class: PathBuf,
    pub dev: PathBuf,
}

impl Default for HidConnector {
    fn default() -> Self {
        HidConnector {
            sys_class: PathBuf::from("/sys/class/hidraw"),
            dev: PathBuf::from("/dev"),
        }
    }
}

impl Connector for HidConnector {
    fn candidates(&self) -> Result<Vec<String>, TransportError> {
        let entries = match std::fs::read_dir(&self.sys_class) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(TransportError::io(
                    &self.sys_class.display().to_string(),
                    &e,
                ))
            }
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let device = entry.path().join("device");
            let Ok(uevent) = std::fs::read_to_string(device.join("uevent")) else {
                continue;
            };
            let Some((vendor, _product)) = parse_hid_uevent(&uevent) else {
                continue;
            };
            if vendor != LEDGER_VENDOR_ID {
                continue;
            }
            let resolved = std::fs::canonicalize(&device).unwrap_or(device);
            if usb_interface_of(&resolved).is_some_and(|i| i != 0) {
                continue;
            }
            found.push(self.dev.join(entry.file_name()).display().to_string());
        }
        found.sort();
        Ok(found)
    }

    fn open(&self, candidate: &str) -> Result<Box<dyn Transport>, TransportError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(candidate)
            .map_err(|e| TransportError::io(candidate, &e))?;
        Ok(Box::new(HidTransport {
            file,
            path: candidate.to_owned(),
        }))
    }
}

#[derive(Debug)]
struct HidTransport {
    file: std::fs::File,
    path: String,
}

impl Transport for HidTransport {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        for report in hid_frames(HID_CHANNEL, apdu) {
            let mut out = [0u8; HID_REPORT + 1];
            for (slot, byte) in out.iter_mut().skip(1).zip(report.iter()) {
                *slot = *byte;
            }
            self.file
                .write_all(&out)
                .map_err(|e| TransportError::io(&self.path, &e))?;
        }
        let mut reassembler = HidReassembler::new(HID_CHANNEL);
        loop {
            let mut report = [0u8; HID_REPORT];
            let n = self
                .file
                .read(&mut report)
                .map_err(|e| TransportError::io(&self.path, &e))?;
            if n == 0 {
                return Err(TransportError::new(format!("{}: device closed", self.path)));
            }
            if let Some(answer) = reassembler.push(report.get(..n).unwrap_or_default())? {
                return Ok(answer);
            }
        }
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
    fn transports_parse_as_ecad_writes_them() {
        assert_eq!(TransportKind::parse("").unwrap(), TransportKind::Usb);
        assert_eq!(TransportKind::parse("usb").unwrap(), TransportKind::Usb);
        assert_eq!(
            TransportKind::parse("tcp://127.0.0.1:9999").unwrap(),
            TransportKind::Tcp("127.0.0.1:9999".to_owned())
        );
        assert_eq!(
            TransportKind::parse("tcp://nanosp@localhost:40000").unwrap(),
            TransportKind::Tcp("localhost:40000".to_owned())
        );
        assert!(TransportKind::parse("tcp://host").is_err());
        assert!(TransportKind::parse("ble").is_err());
    }

    #[test]
    fn speculos_framing() {
        assert_eq!(
            speculos_frame(&[0x80, 0x00, 0x00, 0x00, 0x00]),
            vec![0, 0, 0, 5, 0x80, 0, 0, 0, 0]
        );
        // Four data bytes announced: four plus the status word follow.
        assert_eq!(speculos_answer_len([0, 0, 0, 4]), 6);
        assert_eq!(speculos_answer_len([0, 0, 0, 0]), 2);
    }

    #[test]
    fn a_short_apdu_is_one_report() {
        let frames = hid_frames(0x0101, &[0x80, 0x00, 0x00, 0x00, 0x00]);
        assert_eq!(frames.len(), 1);
        assert_eq!(
            &frames[0][..12],
            &[0x01, 0x01, 0x05, 0x00, 0x00, 0x00, 0x05, 0x80, 0, 0, 0, 0]
        );
        assert!(frames[0][12..].iter().all(|b| *b == 0));
    }

    #[test]
    fn long_apdus_span_reports_with_sequence_numbers() {
        let apdu: Vec<u8> = (0..240u32).map(|i| i as u8).collect();
        let frames = hid_frames(0x0101, &apdu);
        // 2 + 240 bytes in pieces of 59.
        assert_eq!(frames.len(), 5);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(&f[..5], &[0x01, 0x01, 0x05, 0x00, i as u8]);
        }
        assert_eq!(&frames[0][5..7], &[0x00, 240]);
        // The same reports, as a device would answer them, reassemble to the APDU.
        let mut r = HidReassembler::new(0x0101);
        let mut out = None;
        for f in &frames {
            assert!(out.is_none());
            out = r.push(f).unwrap();
        }
        assert_eq!(out.unwrap(), apdu);
    }

    #[test]
    fn reassembly_refuses_wrong_channel_tag_or_order() {
        let frames = hid_frames(0x0101, &[0x55; 100]);
        assert!(HidReassembler::new(0x0202).push(&frames[0]).is_err());
        let mut tag = frames[0];
        tag[2] = 0x02;
        assert!(HidReassembler::new(0x0101).push(&tag).is_err());
        let mut r = HidReassembler::new(0x0101);
        assert!(r.push(&frames[1]).is_err());
        assert!(HidReassembler::new(0x0101).push(&[1, 1, 5]).is_err());
        // An answer of data and status word in one report.
        let answer = hid_frames(0x0101, &[0x90, 0x00]);
        assert_eq!(
            HidReassembler::new(0x0101).push(&answer[0]).unwrap(),
            Some(vec![0x90, 0x00])
        );
    }

    #[test]
    fn hidraw_sysfs_entries_are_read() {
        let uevent =
            "DRIVER=hid-generic\nHID_ID=0003:00002C97:00005011\nHID_NAME=Ledger Nano S Plus\n";
        assert_eq!(parse_hid_uevent(uevent), Some((0x2c97, 0x5011)));
        assert_eq!(parse_hid_uevent("HID_NAME=x\n"), None);
        let path =
            Path::new("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/0003:2C97:5011.0001");
        assert_eq!(usb_interface_of(path), Some(0));
        let path = Path::new("/sys/devices/pci0000:00/usb1/1-1/1-1:1.1/0003:2C97:5011.0002");
        assert_eq!(usb_interface_of(path), Some(1));
    }

    #[test]
    fn the_hid_connector_lists_ledger_interfaces_only() {
        let dir = tempfile::tempdir().unwrap();
        let class = dir.path().join("class");
        for (name, id) in [
            ("hidraw0", "0003:0000046D:0000C52B"),
            ("hidraw3", "0003:00002C97:00005011"),
        ] {
            let device = class.join(name).join("device");
            std::fs::create_dir_all(&device).unwrap();
            std::fs::write(device.join("uevent"), format!("HID_ID={id}\n")).unwrap();
        }
        let connector = HidConnector {
            sys_class: class,
            dev: PathBuf::from("/dev"),
        };
        assert_eq!(connector.candidates().unwrap(), vec!["/dev/hidraw3"]);
        let none = HidConnector {
            sys_class: dir.path().join("absent"),
            dev: PathBuf::from("/dev"),
        };
        assert!(none.candidates().unwrap().is_empty());
    }
}
