//! Support for end-to-end tests of the `signatory` binary: build and locate it, write a
//! configuration and a key file, run it as a real process on free ports, talk HTTP/1.1 to
//! it, and build signing requests byte by byte from the wire format (not with the
//! project's own decoder, so a decoder bug cannot hide itself).
//!
//! The tests live in `tests/`; run them with `cargo test -p signatory-e2e`. The binary is
//! built on first use with `cargo build -p signatory --locked` (see [`binary`]).
#![forbid(unsafe_code)]

pub mod binary;
pub mod client;
pub mod conformance;
pub mod fakes;
pub mod moto;
pub mod openbao;
pub mod requests;
pub mod signer;
pub mod socket;
pub mod softhsm;
pub mod speculos;
pub mod tcp_gate;

pub use client::{Connection, Response};
pub use signer::{KeySpec, Policy, SignerConfig, TestSigner};

use std::path::PathBuf;

/// Why the harness could not do what a test asked. Test code unwraps these: the message
/// says what went wrong and, for a signer that died, what it logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("building the signatory binary failed (exit {status}):\n{stderr}")]
    Build { status: String, stderr: String },
    #[error("signatory binary not found at {}: {hint}", path.display())]
    BinaryMissing { path: PathBuf, hint: &'static str },
    #[error("the signer exited before it was ready ({status}); its log:\n{log}")]
    Exited { status: String, log: String },
    #[error("the signer did not answer within {seconds} s; its log:\n{log}")]
    NotReady { seconds: u64, log: String },
    #[error("HTTP to {addr}: {detail}")]
    Http { addr: String, detail: String },
    #[error("no signer process is running")]
    NotRunning,
}

impl HarnessError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
        let context = context.into();
        move |source| HarnessError::Io { context, source }
    }
}
