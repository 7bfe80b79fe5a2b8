//! `signatory`: a remote signer for Tezos bakers.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod decode;

#[derive(Debug, Parser)]
#[command(name = "signatory", version, about = "A remote signer for Tezos bakers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a signing request (hex, magic byte included) and print it as JSON.
    Decode(decode::DecodeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(&args),
    }
}
