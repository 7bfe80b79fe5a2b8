//! `signatory decode <hex>`: what a request would make the signer sign, as JSON.

use std::io::Read;
use std::process::ExitCode;
use tezos_encoding::{DecodeError, RequestKind, SigningRequest, WatermarkKind};

#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// The request as hex, magic byte included (`0x` prefix, whitespace and surrounding
    /// quotes are ignored). `-` reads it from standard input.
    pub hex: String,
    /// Print the JSON on one line.
    #[arg(long)]
    pub compact: bool,
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
}

/// The watermark slot and the position it would advance to.
#[derive(serde::Serialize)]
struct Watermark {
    kind: WatermarkKind,
    level: i32,
    round: i32,
}

/// Decodes hex text into the JSON `signatory decode` prints.
pub fn decode_to_json(input: &str, compact: bool) -> Result<String, DecodeCommandError> {
    let bytes = hex::decode(clean_hex(input))?;
    let request = SigningRequest::decode(&bytes)?;
    let generic = request.kind() == RequestKind::Generic;
    let output = Output {
        request: &request,
        watermark: request
            .watermark_kind()
            .zip(request.level_round())
            .map(|(kind, (level, round))| Watermark { kind, level, round }),
        operation_kinds: generic.then(|| request.operation_kinds()),
        policy_kinds: generic.then(|| request.policy_kinds()),
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
    match decode_to_json(&input, args.compact) {
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
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn pasted_hex_is_cleaned() {
        assert_eq!(clean_hex(" \"0x05 0a\n0b\" "), "050a0b");
        assert_eq!(clean_hex("0X050A"), "050A");
    }

    #[test]
    fn errors_say_which_step_failed() {
        let e = decode_to_json("zz", false).unwrap_err();
        assert!(
            e.to_string().starts_with("the request is not valid hex"),
            "{e}"
        );
        let e = decode_to_json("13ed9d217c", false).unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot decode the request: truncated at offset 5"),
            "{e}"
        );
    }
}
