//! `signatory`: a remote signer for Tezos bakers.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod assemble;
mod check;
mod commands;
mod decode;
mod error;
mod keys;
mod ledger;
mod logging;
mod options;
mod serve;
mod watermark;
mod watermark_store;

#[derive(Debug, Parser)]
#[command(
    name = "signatory",
    version,
    about = "A remote signer for Tezos bakers",
    long_about = "Signatory: a remote signer for Tezos bakers. An octez-baker (or \
        octez-client) sends it bytes to sign over HTTP; it decodes them, applies the key's \
        policy, advances a durable high watermark so the key can never sign twice at one \
        height, signs with a key from a vault, checks the signature and answers.\n\n\
        First run:\n  signatory config check -c signatory.yaml\n  \
        signatory watermark init -c signatory.yaml\n  signatory serve -c signatory.yaml"
)]
struct Cli {
    #[command(flatten)]
    global: options::GlobalOptions,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a signing request (hex, magic byte included) and print it as JSON.
    #[command(
        display_order = 90,
        long_about = "Decode a signing request (hex, magic byte included) and print \
        what the signer would see: its kind, chain, level and round, the watermark it would \
        advance and, for generic operations, the operation kinds a policy must allow. \
        Nothing is signed or recorded.\n\n\
        Example:\n  signatory decode 13ed9d217cfc…\n  echo 0x11… | signatory decode -"
    )]
    Decode(decode::DecodeArgs),
    /// Set up the Tezos Baking app on a Ledger (authorise a key, its watermarks).
    #[command(display_order = 80)]
    Ledger(ledger::LedgerArgs),
    #[command(flatten)]
    Signer(commands::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(&args),
        Command::Ledger(args) => ledger::run(&args, &cli.global),
        Command::Signer(command) => commands::run(&command, &cli.global),
    }
}
