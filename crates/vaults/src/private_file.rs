//! Files that hold secrets: opened only when private to their owner, and replaced
//! atomically and durably.

use crate::error::OpenError;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub(crate) fn io_error(vault: &str, action: &'static str, path: &Path, e: io::Error) -> OpenError {
    OpenError::Io {
        vault: vault.to_owned(),
        action,
        path: path.to_owned(),
        source: Arc::new(e),
    }
}

/// Open `path` for reading, refusing it when group or others have any access. The mode is
/// read from the open handle, so the file checked is the file read.
pub(crate) fn open(vault: &str, path: &Path, action: &'static str) -> Result<File, OpenError> {
    let file = File::open(path).map_err(|e| io_error(vault, action, path, e))?;
    let metadata = file
        .metadata()
        .map_err(|e| io_error(vault, action, path, e))?;
    if let Some(mode) = loose_mode(&metadata) {
        return Err(OpenError::Permissions {
            vault: vault.to_owned(),
            path: path.to_owned(),
            mode,
        });
    }
    Ok(file)
}

/// The permission bits when group or others have any access.
#[cfg(unix)]
fn loose_mode(metadata: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_metadata: &fs::Metadata) -> Option<u32> {
    None
}

/// Replace `path` with `contents`: write a private temporary file beside it, flush it to
/// disk, rename it over `path`, then flush the directory so the rename itself survives a
/// crash. Readers see the old file or the new one, never a mix.
pub(crate) fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_new_private(&temp, contents).and_then(|()| fs::rename(&temp, path));
    if let Err(e) = written {
        // Best effort: a leftover temporary file holds secrets too.
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(&dir)
}

fn write_new_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
