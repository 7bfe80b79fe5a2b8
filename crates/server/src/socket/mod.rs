//! Octez's socket signer protocol, over TCP (`tcp://host:port/tz1…`) and Unix sockets
//! (`unix:/path?pkh=tz1…`): the same keys, policy, watermarks, authentication, metrics and
//! log lines as the HTTP API; only the framing differs ([`tezos_encoding::signer_messages`]).
//!
//! A client opens a connection per operation (Authorized_keys, then Sign) and may send
//! several requests on it; each gets one reply, in order.

use crate::api::{self, AppState, SignAttempt};
use crate::error::ApiError;
use crate::listener::{Admission, ConnectionLimits};
use crate::ServerError;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tezos_crypto::SigningVersion;
use tezos_encoding::signer_messages::{self as wire, SignMessage, SocketRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A bound Unix socket; its file is removed when the listener is dropped, unless another
/// file has taken its place.
#[derive(Debug)]
pub struct UnixSocket {
    listener: UnixListener,
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
    pub fn bind(path: &Path) -> Result<Self, ServerError> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
        let fail = |source| ServerError::BindUnix {
            path: path.to_owned(),
            source,
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(ServerError::NotASocket(path.to_owned()))
            }
            Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => return Err(ServerError::SocketInUse(path.to_owned())),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    tracing::info!(path = %path.display(), "removing a stale socket file");
                    std::fs::remove_file(path).map_err(fail)?;
                }
                Err(e) => return Err(fail(e)),
            },
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(fail(e)),
        }
        let listener = UnixListener::bind(path).map_err(fail)?;
        let meta = std::fs::symlink_metadata(path).map_err(fail)?;
        let socket = UnixSocket {
            listener,
            path: path.to_owned(),
            file_id: (meta.dev(), meta.ino()),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(Self::MODE))
            .map_err(fail)?;
        Ok(socket)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| (meta.dev(), meta.ino()) == self.file_id);
        if !ours {
            return;
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), error = %e, "cannot remove the socket file");
        }
    }
}

/// A listener of the socket protocol.
#[derive(Debug)]
pub enum SocketListener {
    Tcp(TcpListener),
    Unix(UnixSocket),
}

/// Accept on `listener` until `stop` turns true, then wait (at most `limits.drain`) for
/// the connections' requests in flight.
pub(crate) async fn run(
    name: &'static str,
    listener: SocketListener,
    state: AppState,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut admission = Admission::new(name, limits.max_connections);
    let mut connections = JoinSet::new();
    while let Some((slot, (stream, peer))) = admission.next(&mut stop, || accept(&listener)).await {
        while connections.try_join_next().is_some() {}
        let state = state.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            if let Err(e) = serve_connection(stream, peer, &state, limits, stop).await {
                tracing::debug!(listener = name, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!(
        listener = name,
        "stopped accepting; finishing requests in flight"
    );
    let drained = tokio::time::timeout(limits.drain, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::warn!(
            listener = name,
            seconds = limits.drain.as_secs(),
            "connections still open after the shutdown grace period; no longer waiting for them"
        );
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn accept(listener: &SocketListener) -> std::io::Result<(Box<dyn Stream>, Option<IpAddr>)> {
    match listener {
        SocketListener::Tcp(l) => {
            let (stream, remote) = l.accept().await?;
            // One small reply per request: send it now.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            Ok((Box::new(stream), Some(remote.ip())))
        }
        SocketListener::Unix(u) => {
            let (stream, _) = u.listener.accept().await?;
            Ok((Box::new(stream), None))
        }
    }
}

/// Answer requests on one connection until the client closes it, a read or write times out,
/// or shutdown is requested (a request already read is still answered).
async fn serve_connection(
    mut stream: Box<dyn Stream>,
    peer: Option<IpAddr>,
    state: &AppState,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    loop {
        let payload = tokio::select! {
            payload = with_timeout(limits.header_read_timeout, read_frame(&mut stream)) => payload?,
            _ = stop.wait_for(|stop| *stop) => return Ok(()),
        };
        let Some(payload) = payload else {
            return Ok(());
        };
        // As over HTTP (408): a signing pipeline already under way still finishes and is
        // recorded; a resent request then gets the recorded signature.
        let reply = tokio::time::timeout(limits.request_timeout, answer(state, &payload, peer))
            .await
            .unwrap_or_else(|_| {
                wire::error_reply(&format!(
                    "the request was not answered within {} ms",
                    limits.request_timeout.as_millis()
                ))
            });
        let framed = wire::frame(&reply).unwrap_or_else(|| {
            tracing::error!(bytes = reply.len(), "a reply does not fit a frame");
            let error = wire::error_reply("the reply is too large for the socket protocol");
            wire::frame(&error).unwrap_or_default()
        });
        with_timeout(limits.write_timeout, async {
            stream.write_all(&framed).await?;
            stream.flush().await
        })
        .await?;
    }
}

async fn with_timeout<T>(
    limit: Option<Duration>,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    match limit {
        None => io.await,
        Some(limit) => tokio::time::timeout(limit, io)
            .await
            .map_err(|_| std::io::Error::new(ErrorKind::TimedOut, "timed out"))?,
    }
}

/// One frame's payload; `None` when the client closed the connection between frames.
async fn read_frame(stream: &mut Box<dyn Stream>) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut payload).await?;
    Ok(Some(payload))
}

/// The reply to one request payload.
async fn answer(state: &AppState, payload: &[u8], peer: Option<IpAddr>) -> Vec<u8> {
    let request = match wire::decode_request(payload) {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(error = %e, "malformed socket request");
            return wire::error_reply(&format!("malformed request: {e}"));
        }
    };
    match request {
        SocketRequest::Sign(message) => sign(state, message, peer).await,
        SocketRequest::PublicKey(pkh) => match state.service.public_key(&pkh) {
            Ok(key) => wire::public_key_reply(key),
            Err(e) => wire::error_reply(&ApiError::from(&e).message),
        },
        SocketRequest::AuthorizedKeys => {
            wire::authorized_keys_reply(state.auth.authorized_key_hashes())
        }
        SocketRequest::DeterministicNonce { .. } => wire::error_reply(
            "this signer does not give deterministic nonces (its keys may live where their \
             secret cannot be read); the baker makes its own nonces",
        ),
        SocketRequest::SupportsDeterministicNonces(_) => wire::bool_reply(false),
        SocketRequest::KnownKeys => match state.known_keys() {
            Some(keys) => wire::known_keys_reply(keys),
            None => wire::error_reply(api::KNOWN_KEYS_REFUSED),
        },
        SocketRequest::ProvePossession { pkh, override_pk } => {
            // The protocol carries no authentication for this request.
            let result =
                match state
                    .auth
                    .authenticate_signature(&pkh, &[], None, SigningVersion::default())
                {
                    Ok(client) => state
                        .service
                        .prove_possession(&pkh, override_pk.as_ref(), client.pkh())
                        .await
                        .map_err(|e| ApiError::from(&e)),
                    Err(e) => Err(ApiError::new(
                        e.status,
                        "this signer requires authentication, which the socket protocol cannot \
                         carry for a proof of possession; ask over HTTP \
                         (GET /bls_prove_possession/<tz4>?authentication=…)",
                    )),
                };
            api::log_proof(&pkh, &result);
            match result {
                Ok(proof) => wire::signature_reply(&proof),
                Err(e) => wire::error_reply(&e.message),
            }
        }
    }
}

async fn sign(state: &AppState, message: SignMessage, peer: Option<IpAddr>) -> Vec<u8> {
    let started = Instant::now();
    let SignMessage {
        pkh,
        version,
        data,
        authentication,
    } = message;
    let version = version.unwrap_or_default();
    let mut attempt = SignAttempt::with_bytes(data);
    let authenticated =
        state
            .auth
            .authenticate_signature(&pkh, attempt.bytes(), authentication.as_ref(), version);
    let result = match authenticated {
        Ok(client) => api::sign_authenticated(state, pkh, version, client, &mut attempt).await,
        Err(e) => {
            api::count_authentication_failure(state, peer, e.status);
            Err(e)
        }
    };
    let text = pkh.to_b58check();
    api::finish_sign(
        state,
        Some((&pkh, &text)),
        &attempt,
        &result,
        started.elapsed(),
    );
    match result {
        Ok(signed) => wire::signature_reply(&signed.signature),
        Err(e) => wire::error_reply(&e.message),
    }
}
