//! `signatory decode <hex>`: what a request would make the signer sign, as JSON.

use std::io::Read;
use std::process::ExitCode;
use tezos_encoding::{DecodeError, Protocol, RequestKind, SigningRequest, WatermarkKind};

#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// The request as hex, magic byte included (`0x` prefix, whitespace and surrounding
    /// quotes are ignored). `-` reads it from standard input.
    pub hex: String,
    /// Print the JSON on one line.
    #[arg(long)]
    pub compact: bool,
    /// The protocol whose layouts to decode with (`ushuaia`/`025`, `tallinn`/`024`,
    /// `alpha`, …); the signer's `tezos_protocol` setting. Default: 025.
    #[arg(long, default_value_t = Protocol::DEFAULT)]
    pub protocol: Protocol,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeCommandError {
    #[error("cannot read the request from standard input: {0}")]
    Stdin(#[from] std::io::Error),
    #[error("the request is not valid hex: {0}")]
    Hex(#[from] hex::FromHexError),
    #[error("cannot decode the request: {0}")]
    Decode(#[from] DecodeError),
    #[error("cannot print the decoded request as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Hex text as operators paste it: `"0x11ab…"`, with spaces or line breaks.
fn clean_hex(input: &str) -> String {
    let trimmed = input.trim().trim_matches('"');
    let body = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    body.chars().filter(|c| !c.is_whitespace()).collect()
}

/// What `signatory decode` prints: the request, plus what the signer derives from it.
#[derive(serde::Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    request: &'a SigningRequest,
    #[serde(skip_serializing_if = "Option::is_none")]
    watermark: Option<Watermark>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_kinds: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_kinds: Option<Vec<String>>,
    /// An attestation's DAL content as an operator reads it: `lag 0: slots 3, 7; lag 2: slot 1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    dal_summary: Option<String>,
}

/// The watermark slot and the position it would advance to.
#[derive(serde::Serialize)]
struct Watermark {
    kind: WatermarkKind,
    level: i32,
    round: i32,
}

/// Decodes hex text into the JSON `signatory decode` prints.
pub fn decode_to_json(
    input: &str,
    compact: bool,
    protocol: Protocol,
) -> Result<String, DecodeCommandError> {
    let bytes = hex::decode(clean_hex(input))?;
    let request = SigningRequest::decode(&bytes, protocol)?;
    let dal_summary = match &request {
        SigningRequest::Attestation(op) => op.content.dal_attested.as_ref().map(|d| d.to_string()),
        _ => None,
    };
    let generic = request.kind() == RequestKind::Generic;
    let output = Output {
        request: &request,
        watermark: request
            .watermark_kind()
            .zip(request.level_round())
            .map(|(kind, (level, round))| Watermark { kind, level, round }),
        operation_kinds: generic.then(|| request.operation_kinds()),
        policy_kinds: generic.then(|| request.policy_kinds()),
        dal_summary,
    };
    Ok(if compact {
        serde_json::to_string(&output)?
    } else {
        serde_json::to_string_pretty(&output)?
    })
}

pub fn run(args: &DecodeArgs) -> ExitCode {
    let input = if args.hex == "-" {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("signatory decode: {}", DecodeCommandError::Stdin(e));
            return ExitCode::FAILURE;
        }
        text
    } else {
        args.hex.clone()
    };
    match decode_to_json(&input, args.compact, args.protocol) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("signatory decode: {e}");
            ExitCode::FAILURE
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
    fn pasted_hex_is_cleaned() {
        assert_eq!(clean_hex(" \"0x05 0a\n0b\" "), "050a0b");
        assert_eq!(clean_hex("0X050A"), "050A");
    }

    #[test]
    fn errors_say_which_step_failed() {
        let e = decode_to_json("zz", false, Protocol::DEFAULT).unwrap_err();
        assert!(
            e.to_string().starts_with("the request is not valid hex"),
            "{e}"
        );
        let e = decode_to_json("13ed9d217c", false, Protocol::DEFAULT).unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot decode the request: truncated at offset 5"),
            "{e}"
        );
    }

    /// A 0x13 attestation with DAL content (tag 23): slot 5, level 100, round 0, then the
    /// bitset `dal_hex` (Zarith).
    fn attestation_with_dal(dal_hex: &str) -> String {
        format!(
            "137a06a770{}17000500000064{}{}{dal_hex}",
            "31".repeat(32),
            "00000000",
            "32".repeat(32)
        )
    }

    #[test]
    fn a_multi_lag_dal_attestation_shows_lags_and_slots() {
        // Bits 0, 2 (lags 0, 2), 9 (lag 0 slot 3), 13, 14 (last chunk, slot 7), 21, 23
        // (lag 2, last chunk, slot 1) = 0xa06205, as Zarith `z`: 85 88 83 0a.
        let hex = attestation_with_dal("8588830a");
        let json: serde_json::Value =
            serde_json::from_str(&decode_to_json(&hex, true, Protocol::DEFAULT).unwrap()).unwrap();
        assert_eq!(json["dal_summary"], "lag 0: slots 3, 7; lag 2: slot 1");
        assert_eq!(json["dal_attestation"], (0xa0_6205u32).to_string());
        assert_eq!(
            json["dal_attested"],
            serde_json::json!([{"lag_index": 0, "slots": [3, 7]}, {"lag_index": 2, "slots": [1]}])
        );
        // Under 024 the same bitset is a set of slots of one lag.
        let json: serde_json::Value =
            serde_json::from_str(&decode_to_json(&hex, true, Protocol::T024).unwrap()).unwrap();
        assert_eq!(json["dal_summary"], "slots 0, 2, 9, 13, 14, 21, 23");
    }

    #[test]
    fn the_protocol_flag_parses_names_and_numbers() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: DecodeArgs,
        }
        let cli = Cli::try_parse_from(["x", "--protocol", "tallinn", "05"]).unwrap();
        assert_eq!(cli.args.protocol, Protocol::T024);
        let cli = Cli::try_parse_from(["x", "05"]).unwrap();
        assert_eq!(cli.args.protocol, Protocol::U025);
        assert!(Cli::try_parse_from(["x", "--protocol", "026", "05"]).is_err());
    }
}
