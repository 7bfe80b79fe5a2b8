//! Decoding of the bytes a Tezos baker or wallet asks a remote signer to sign.
#![forbid(unsafe_code)]

pub mod watermark_kind;
pub use watermark_kind::WatermarkKind;
