//! Where the `signatory` binary under test comes from.
//!
//! Stable Cargo cannot make one package's binary a dependency of another package's tests
//! (`artifact` dependencies are unstable), so the harness builds it itself: the first test
//! that needs it runs `cargo build -p signatory --locked` in the workspace (a no-op when the
//! binary is up to date) and uses `<target>/debug/signatory`. Every test process does this
//! once, so the tests always run the current sources, never a stale binary.
//!
//! Set `SIGNATORY_BIN` to test a binary built elsewhere (a release build, an installed
//! package); nothing is built then.

use crate::HarnessError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The path of the `signatory` binary to test, built on first call if needed.
pub fn signatory_bin() -> Result<PathBuf, HarnessError> {
    if let Some(path) = std::env::var_os("SIGNATORY_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(HarnessError::BinaryMissing {
            path,
            hint: "SIGNATORY_BIN names no file; unset it to build target/debug/signatory",
        });
    }
    static BUILT: OnceLock<Result<PathBuf, (String, String)>> = OnceLock::new();
    BUILT
        .get_or_init(build)
        .clone()
        .map_err(|(status, stderr)| HarnessError::Build { status, stderr })
}

fn build() -> Result<PathBuf, (String, String)> {
    // Cargo tells test processes which cargo ran them; fall back to the one on PATH.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "-p", "signatory", "--locked", "--quiet"])
        .output()
        .map_err(|e| ("not started".to_string(), e.to_string()))?;
    if !output.status.success() {
        return Err((
            output.status.to_string(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    let path = target_dir().join("debug").join("signatory");
    if path.is_file() {
        Ok(path)
    } else {
        Err((
            "0".to_string(),
            format!("cargo succeeded but {} does not exist", path.display()),
        ))
    }
}
