//! The high-watermark slot a request falls in.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The slot a request is watermarked in. Octez keeps one high watermark per kind, chain and
/// key: blocks (0x01 and 0x11), preattestations (0x12) and attestations (0x02 and 0x13, with
/// or without DAL content, and the tz4 BLS-mode tags) — so an attestation and an
/// attestation_with_dal at one level can never both be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatermarkKind {
    Block,
    Preattestation,
    Attestation,
}

impl WatermarkKind {
    pub const ALL: [WatermarkKind; 3] = [
        WatermarkKind::Block,
        WatermarkKind::Preattestation,
        WatermarkKind::Attestation,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            WatermarkKind::Block => "block",
            WatermarkKind::Preattestation => "preattestation",
            WatermarkKind::Attestation => "attestation",
        }
    }

    pub fn parse(s: &str) -> Option<WatermarkKind> {
        WatermarkKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for WatermarkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
