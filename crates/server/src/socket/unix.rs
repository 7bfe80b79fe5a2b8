//! The Unix socket file: created private, never taken from a live signer, removed on stop.

use crate::ServerError;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::net::UnixListener;

/// A bound Unix socket; its file is removed when the listener is dropped, unless another
/// file has taken its place.
#[derive(Debug)]
pub struct UnixSocket {
    pub(super) listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file this listener created.
    file_id: (u64, u64),
}

impl UnixSocket {
    /// Owner and group may connect: put the baker's user in the signer's group, or run both
    /// as one user. Others may not ask for signatures.
    const MODE: u32 = 0o660;

    /// Bind `path`. A socket file left by a signer that died is replaced; one that a
    /// running process still answers on, or a file that is not a socket, is an error.
    ///
    /// The socket is bound inside a new directory only this user can enter, given its mode,
    /// then linked into place: whatever the umask, no other user can connect before the
    /// mode is set, and an existing file at `path` is never replaced.
    pub fn bind(path: &Path) -> Result<Self, ServerError> {
        let fail = bind_error(path);
        remove_stale(path)?;
        let parent = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let private = tempfile::Builder::new()
            .prefix(".signatory-socket-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)
            .map_err(fail)?;
        let staged = private.path().join("socket");
        let listener = UnixListener::bind(&staged).map_err(fail)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(Self::MODE))
            .map_err(fail)?;
        std::fs::hard_link(&staged, path).map_err(|e| {
            if e.kind() == ErrorKind::AlreadyExists {
                ServerError::SocketInUse(path.to_owned())
            } else {
                fail(e)
            }
        })?;
        let meta = std::fs::symlink_metadata(path).map_err(fail)?;
        Ok(UnixSocket {
            listener,
            path: path.to_owned(),
            file_id: (meta.dev(), meta.ino()),
        })
        // `private` and the staged name go here; the socket stays reachable at `path`.
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn bind_error(path: &Path) -> impl Fn(std::io::Error) -> ServerError + Copy + '_ {
    move |source| ServerError::BindUnix {
        path: path.to_owned(),
        source,
    }
}

/// Remove a socket file nobody answers on; refuse a live one or a file of another kind.
fn remove_stale(path: &Path) -> Result<(), ServerError> {
    let fail = bind_error(path);
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => Err(ServerError::NotASocket(path.to_owned())),
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => Err(ServerError::SocketInUse(path.to_owned())),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "removing a stale socket file");
                std::fs::remove_file(path).map_err(fail)
            }
            Err(e) => Err(fail(e)),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|meta| {
            meta.file_type().is_socket() && (meta.dev(), meta.ino()) == self.file_id
        });
        if !ours {
            return;
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), error = %e, "cannot remove the socket file");
        }
    }
}
