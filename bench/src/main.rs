//! `signatory-bench`: a load generator for a running signatory.
//!
//! Every request is a real attestation at a strictly increasing level for its key, so the
//! signer decodes it, checks the policy, advances a durable watermark, signs, verifies and
//! answers: nothing is a replay of stored bytes. Each client owns one keep-alive HTTP/1.1
//! connection and a disjoint set of keys, so no request of the run is refused.
//!
//! `bench/run.sh` builds everything, starts a signer with file watermarks and runs
//! `signatory-bench run`; see bench/README.md.
#![forbid(unsafe_code)]

mod ceiling;
mod client;
mod config;
mod load;
mod network;
mod pkcs11;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "signatory-bench",
    about = "Measure a running signatory: latency and throughput of real signatures"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One client, sequential requests to one key of each curve: p50/p90/p99/max.
    Latency(load::LatencyArgs),
    /// C concurrent clients over K keys of each curve for D seconds: signatures/s, p50/p99.
    Throughput(load::ThroughputArgs),
    /// Both scenarios for every curve, printed as Markdown table rows.
    Run(load::RunArgs),
    /// Wait until the signer answers (for scripts).
    Wait(load::WaitArgs),
    /// Write a signatory configuration enabling every key of a file vault.
    WriteConfig(config::WriteConfigArgs),
    /// Serve the signer API doing only HTTP and cryptography: what this host allows.
    Ceiling(ceiling::CeilingArgs),
    /// What the `pkcs11` vault adds to a raw C_Sign on the same token, in one process.
    Pkcs11Overhead(pkcs11::OverheadArgs),
    /// A network vault's fake answering after a fixed delay, until SIGTERM.
    FakeBackend(network::FakeBackendArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::WriteConfig(args) => config::write_config(&args),
        Command::Latency(args) => load::block_on(args.threads, load::latency(args)),
        Command::Throughput(args) => load::block_on(args.threads, load::throughput(args)),
        Command::Run(args) => load::block_on(args.threads, load::run(args)),
        Command::Wait(args) => load::block_on(1, load::wait(args)),
        Command::Ceiling(args) => ceiling::serve(args),
        Command::Pkcs11Overhead(args) => load::block_on(2, pkcs11::overhead(args)),
        Command::FakeBackend(args) => load::block_on(2, network::fake_backend(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signatory-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP: {0}")]
    Http(String),
    #[error("the signer answered {status} to {what}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{0}")]
    Setup(String),
}
