//! `signatory ledger …`: prepare the Tezos Baking app on a Ledger for baking, as ECAD's
//! `signatory-cli ledger` does (same subcommands and options).
//!
//! The app asks for a confirmation on the device for `setup-baking` and
//! `set-high-watermark`. Written against the app's documentation; never run against a
//! device or Speculos (none was available).

use crate::options::GlobalOptions;
use signatory_vaults::ledger::apdu::{HighWatermarks, KeyId, LevelRound};
use signatory_vaults::ledger::{self, LedgerTarget};
use std::io::Write;
use std::process::ExitCode;
use tezos_crypto::ChainId;

#[derive(Debug, clap::Args)]
pub struct LedgerArgs {
    /// `usb` (the default) or `tcp://host:port` (the Speculos emulator's APDU port).
    #[arg(short = 't', long, global = true, default_value = "usb")]
    pub transport: String,
    #[command(subcommand)]
    pub command: LedgerCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// List connected Ledgers: path, app version, short id (for `id:` in the config).
    List,
    /// Authorise a key for baking, with the chain and the app's starting levels.
    #[command(
        long_about = "Authorise a key for baking in the Tezos Baking app (SETUP): the \
        app then signs blocks and consensus operations with it without asking, on the given \
        chain, above the given levels. Confirm on the device.\n\n\
        Example:\n  signatory ledger setup-baking -d 3944f7a0 --chain-id NetXdQprcVkpaWU \
        \"bip32-ed25519/44'/1729'/0'/0'\""
    )]
    SetupBaking {
        /// The key id, as in the vault's `keys` (`bip32-ed25519/0'/0'`).
        key: String,
        /// The chain the app will bake on (`Net…`); default: any chain.
        #[arg(long)]
        chain_id: Option<String>,
        /// The app's main chain level to start from.
        #[arg(long, default_value_t = 0)]
        main_hwm: u32,
        /// The app's test chain level to start from.
        #[arg(long, default_value_t = 0)]
        test_hwm: u32,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Forget the app's authorised baking key.
    DeauthorizeBaking {
        /// Accepted as ECAD's CLI accepts it; not used (the app has one baking key).
        #[arg(hide = true)]
        key: Option<String>,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Set the app's main and test chain levels (rounds to 0). Confirm on the device.
    SetHighWatermark {
        level: u32,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Print the app's levels and rounds and its chain (ECAD's `get-high-watermarks`
    /// too: this prints them all).
    #[command(alias = "get-high-watermarks")]
    GetHighWatermark {
        #[command(flatten)]
        device: DeviceArg,
    },
}

#[derive(Debug, clap::Args)]
pub struct DeviceArg {
    /// The device's short id (`signatory ledger list`); default: the first device.
    #[arg(short = 'd', long = "device")]
    pub id: Option<String>,
}

pub fn run(args: &LedgerArgs, opts: &GlobalOptions) -> ExitCode {
    let filter = opts.log.clone().unwrap_or_else(|| "warn".to_owned());
    let guard = crate::logging::init(&filter, opts.json_log);
    let result = execute(args, &mut std::io::stdout().lock());
    drop(guard);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signatory: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn target(args: &LedgerArgs, device: &DeviceArg) -> Result<LedgerTarget, String> {
    LedgerTarget::new(&args.transport, device.id.as_deref())
}

fn level_round(hwm: &LevelRound) -> String {
    match hwm.round {
        Some(round) => format!("level {}, round {round}", hwm.level),
        None => format!("level {} (this app version keeps no round)", hwm.level),
    }
}

fn print_watermarks(out: &mut dyn Write, hwm: &HighWatermarks) -> std::io::Result<()> {
    let chain = if hwm.chain_id == [0; 4] {
        "any (not set)".to_owned()
    } else {
        ChainId(hwm.chain_id).to_string()
    };
    writeln!(out, "Chain ID: {chain}")?;
    writeln!(out, "Main:     {}", level_round(&hwm.main))?;
    writeln!(out, "Test:     {}", level_round(&hwm.test))
}

/// Run one subcommand, printing to `out`.
pub fn execute(args: &LedgerArgs, out: &mut dyn Write) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    match &args.command {
        LedgerCommand::List => {
            let devices = ledger::list_devices(&args.transport).map_err(|e| e.to_string())?;
            if devices.is_empty() {
                writeln!(out, "No Ledger found.").map_err(io)?;
            }
            for d in devices {
                writeln!(
                    out,
                    "Path:    {}\nID:      {}\nVersion: {}\n",
                    d.path, d.short_id, d.version
                )
                .map_err(io)?;
            }
        }
        LedgerCommand::SetupBaking {
            key,
            chain_id,
            main_hwm,
            test_hwm,
            device,
        } => {
            let key = KeyId::parse(key)?;
            let chain = match chain_id {
                Some(text) => {
                    ChainId::from_b58check(text)
                        .map_err(|e| format!("--chain-id `{text}`: {e}"))?
                        .0
                }
                None => [0; 4],
            };
            let pk =
                ledger::setup_baking(&target(args, device)?, &key, chain, *main_hwm, *test_hwm)
                    .map_err(|e| e.to_string())?;
            writeln!(out, "Authorized baking for address: {}", pk.hash()).map_err(io)?;
        }
        LedgerCommand::DeauthorizeBaking { device, .. } => {
            ledger::deauthorize_baking(&target(args, device)?).map_err(|e| e.to_string())?;
            writeln!(out, "Baking deauthorized.").map_err(io)?;
        }
        LedgerCommand::SetHighWatermark { level, device } => {
            ledger::set_high_watermark(&target(args, device)?, *level)
                .map_err(|e| e.to_string())?;
            writeln!(out, "High watermark set to level {level}.").map_err(io)?;
        }
        LedgerCommand::GetHighWatermark { device } => {
            let hwm =
                ledger::get_high_watermark(&target(args, device)?).map_err(|e| e.to_string())?;
            print_watermarks(out, &hwm).map_err(io)?;
        }
    }
    Ok(())
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
    use clap::Parser;
    use std::io::Read;
    use std::net::TcpListener;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: LedgerArgs,
    }

    fn parse(argv: &[&str]) -> LedgerArgs {
        Cli::try_parse_from(std::iter::once("ledger").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    /// A stand-in for Speculos' APDU port: answers each expected command (Speculos'
    /// framing: 4-byte length then the APDU; the answer's length excludes the status
    /// word), then closes.
    fn speculos(
        script: Vec<(&'static str, &'static str)>,
    ) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            for (request, answer) in script {
                let mut len = [0u8; 4];
                stream.read_exact(&mut len).unwrap();
                let mut got = vec![0u8; u32::from_be_bytes(len) as usize];
                stream.read_exact(&mut got).unwrap();
                assert_eq!(hex::encode(&got), request);
                let answer = hex::decode(answer).unwrap();
                let data_len = (answer.len() - 2) as u32;
                stream.write_all(&data_len.to_be_bytes()).unwrap();
                stream.write_all(&answer).unwrap();
            }
        });
        (format!("tcp://{addr}"), handle)
    }

    #[test]
    fn ecad_command_lines_parse() {
        let args = parse(&[
            "setup-baking",
            "-d",
            "3944f7a0",
            "--chain-id",
            "NetXdQprcVkpaWU",
            "--main-hwm",
            "5000",
            "bip32-ed25519/44'/1729'/0'/0'",
        ]);
        assert_eq!(args.transport, "usb");
        match args.command {
            LedgerCommand::SetupBaking {
                key,
                main_hwm,
                test_hwm,
                device,
                ..
            } => {
                assert_eq!(key, "bip32-ed25519/44'/1729'/0'/0'");
                assert_eq!((main_hwm, test_hwm), (5000, 0));
                assert_eq!(device.id.as_deref(), Some("3944f7a0"));
            }
            other => panic!("{other:?}"),
        }
        let args = parse(&[
            "--transport",
            "tcp://127.0.0.1:9999",
            "set-high-watermark",
            "-d",
            "3944f7a0",
            "0",
        ]);
        assert!(matches!(
            args.command,
            LedgerCommand::SetHighWatermark { level: 0, .. }
        ));
        // ECAD's plural spelling.
        for spelling in ["get-high-watermark", "get-high-watermarks"] {
            assert!(matches!(
                parse(&[spelling]).command,
                LedgerCommand::GetHighWatermark { .. }
            ));
        }
        assert_eq!(args.transport, "tcp://127.0.0.1:9999");
        assert!(matches!(
            parse(&["deauthorize-baking", "bip25519/0'/0'"]).command,
            LedgerCommand::DeauthorizeBaking { .. }
        ));
        assert!(matches!(
            parse(&["get-high-watermark", "-t", "tcp://h:1"]).command,
            LedgerCommand::GetHighWatermark { .. }
        ));
    }

    #[test]
    fn get_high_watermark_over_the_speculos_framing() {
        let (url, server) = speculos(vec![
            ("8000000000", "010205019000"),
            ("800b000000", "000013880000000200000000000000007a06a7709000"),
        ]);
        let args = parse(&["-t", &url, "get-high-watermark"]);
        let mut out = Vec::new();
        execute(&args, &mut out).unwrap();
        server.join().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Chain ID: NetXdQprcVkpaWU\nMain:     level 5000, round 2\nTest:     level 0, round 0\n"
        );
    }

    #[test]
    fn setup_baking_over_the_speculos_framing() {
        let (url, server) = speculos(vec![
            ("8000000000", "010205019000"),
            (
                "800a00001d7a06a7700000138800000000048000002c800006c18000000080000000",
                "2102d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c97787379000",
            ),
        ]);
        let args = parse(&[
            "-t",
            &url,
            "setup-baking",
            "--chain-id",
            "NetXdQprcVkpaWU",
            "--main-hwm",
            "5000",
            "ed25519/0'/0'",
        ]);
        let mut out = Vec::new();
        execute(&args, &mut out).unwrap();
        server.join().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Authorized baking for address: tz1SuVm2EtvzCVfkgpgDWNnvXFNJpL6z1kCC\n"
        );
    }

    #[test]
    fn a_refused_reset_is_an_error_naming_the_status() {
        let (url, server) = speculos(vec![
            ("8000000000", "010205019000"),
            ("800600000400000064", "6985"),
        ]);
        let args = parse(&["-t", &url, "set-high-watermark", "100"]);
        let err = execute(&args, &mut Vec::new()).unwrap_err();
        server.join().unwrap();
        assert!(err.contains("0x6985"), "{err}");
        // A bad key id or chain is refused before any device is asked.
        let args = parse(&["-t", "tcp://127.0.0.1:1", "setup-baking", "ed25519/0/0"]);
        assert!(execute(&args, &mut Vec::new())
            .unwrap_err()
            .contains("hardened"));
    }
}
