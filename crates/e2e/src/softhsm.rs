//! SoftHSM2 tokens in a temporary directory, for the `pkcs11` driver's tests: the real
//! PKCS#11 library (Debian `softhsm2`), tokens made with `softhsm2-util`, foreign keys made
//! with `pkcs11-tool` (Debian `opensc`).

use crate::HarnessError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian installs SoftHSM2's PKCS#11 library.
pub const LIBRARY: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of every token made here.
pub const PIN: &str = "1234";
const SO_PIN: &str = "5678";

/// A SoftHSM2 configuration and its tokens. Dropping it removes them.
#[derive(Debug)]
pub struct SoftHsm {
    dir: tempfile::TempDir,
    pub conf: PathBuf,
    /// Token label → slot id.
    pub tokens: Vec<(String, u64)>,
}

impl SoftHsm {
    /// A configuration with one initialised token per label (PIN [`PIN`]).
    pub fn new(labels: &[&str]) -> Result<SoftHsm, HarnessError> {
        if !Path::new(LIBRARY).is_file() {
            return Err(HarnessError::Io {
                context: format!("SoftHSM2 is not installed ({LIBRARY} is missing)"),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "install the Debian packages softhsm2 and opensc (scripts/test.sh does)",
                ),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("signatory-softhsm-")
            .tempdir()
            .map_err(HarnessError::io("creating the SoftHSM2 directory"))?;
        let tokens_dir = dir.path().join("tokens");
        std::fs::create_dir(&tokens_dir)
            .map_err(HarnessError::io("creating the token directory"))?;
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens_dir.display()
            ),
        )
        .map_err(HarnessError::io("writing softhsm2.conf"))?;
        let mut hsm = SoftHsm {
            dir,
            conf,
            tokens: Vec::new(),
        };
        for label in labels {
            let out = hsm.util(&[
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                SO_PIN,
                "--pin",
                PIN,
            ])?;
            // "The token has been initialized and is reassigned to slot 1833503507"
            let slot = out
                .rsplit("slot ")
                .next()
                .and_then(|id| id.trim().parse::<u64>().ok())
                .ok_or_else(|| HarnessError::Io {
                    context: format!("softhsm2-util did not say the slot of token {label}: {out}"),
                    source: std::io::Error::other("unexpected output"),
                })?;
            hsm.tokens.push(((*label).to_owned(), slot));
        }
        Ok(hsm)
    }

    /// The slot of token `label`.
    pub fn slot(&self, label: &str) -> u64 {
        self.tokens
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, slot)| *slot)
            .unwrap_or(u64::MAX)
    }

    /// A directory with no token at all (a token that is absent).
    pub fn empty_conf(&self) -> Result<PathBuf, HarnessError> {
        let empty = self.dir.path().join("empty");
        std::fs::create_dir_all(&empty)
            .map_err(HarnessError::io("creating an empty token directory"))?;
        let conf = self.dir.path().join("empty.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                empty.display()
            ),
        )
        .map_err(HarnessError::io("writing empty.conf"))?;
        Ok(conf)
    }

    fn util(&self, args: &[&str]) -> Result<String, HarnessError> {
        run(Command::new("softhsm2-util")
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf))
    }

    /// `pkcs11-tool` logged in to token `label`, for keys the signer did not make.
    pub fn pkcs11_tool(&self, label: &str, args: &[&str]) -> Result<String, HarnessError> {
        let slot = self.slot(label).to_string();
        run(Command::new("pkcs11-tool")
            .args([
                "--module", LIBRARY, "--slot", &slot, "--login", "--pin", PIN,
            ])
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf))
    }
}

fn run(command: &mut Command) -> Result<String, HarnessError> {
    let program = format!("{:?}", command.get_program());
    let out = command
        .output()
        .map_err(HarnessError::io(format!("running {program}")))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(HarnessError::Exited {
            status: format!("{program} {}", out.status),
            log: text,
        });
    }
    Ok(text)
}
