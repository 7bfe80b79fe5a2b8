//! Octez's socket signer protocol, over TCP (`tcp://host:port/tz1…`) and Unix sockets
//! (`unix:/path?pkh=tz1…`): the same keys, policy, watermarks, authentication, metrics and
//! log lines as the HTTP API; only the framing differs ([`tezos_encoding::signer_messages`]).
//!
//! A client opens a connection per operation (Authorized_keys, then Sign) and may send
//! several requests on it; each gets one reply, in order.

mod unix;

pub use unix::UnixSocket;

use crate::api::{self, AppState, SignAttempt};
use crate::error::ApiError;
use crate::listener::{Admission, ConnectionLimits};
use axum::http::StatusCode;
use std::future::Future;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tezos_crypto::{PublicKey, PublicKeyHash, SigningVersion};
use tezos_encoding::signer_messages::{self as wire, SignMessage, SocketRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

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
    mut admission: Admission,
    mut stop: watch::Receiver<bool>,
) {
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
        let reply = answer(state, &payload, peer, limits.request_timeout).await;
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
    io: impl Future<Output = std::io::Result<T>>,
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

/// The reply to one request payload. Signing and proofs get `request_timeout`: as over
/// HTTP (408), a pipeline already under way still finishes and is recorded, and the same
/// bytes sent again get the recorded signature.
async fn answer(
    state: &AppState,
    payload: &[u8],
    peer: Option<IpAddr>,
    request_timeout: Duration,
) -> Vec<u8> {
    let request = match wire::decode_request(payload) {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(error = %e, "malformed socket request");
            return wire::error_reply(&format!("malformed request: {e}"));
        }
    };
    match request {
        SocketRequest::Sign(message) => sign(state, message, peer, request_timeout).await,
        SocketRequest::PublicKey(pkh) => match state.service.public_key(&pkh) {
            Ok(key) => wire::public_key_reply(&key),
            Err(e) => wire::error_reply(&ApiError::from(&e).message),
        },
        SocketRequest::AuthorizedKeys => {
            wire::authorized_keys_reply(state.auth.authorized_key_hashes())
        }
        SocketRequest::DeterministicNonce { .. } => wire::error_reply(NO_DETERMINISTIC_NONCES),
        SocketRequest::SupportsDeterministicNonces(_) => wire::bool_reply(false),
        SocketRequest::KnownKeys => match state.known_keys() {
            Some(keys) => wire::known_keys_reply(keys),
            None => wire::error_reply(api::KNOWN_KEYS_REFUSED),
        },
        SocketRequest::ProvePossession { pkh, override_pk } => {
            let result = prove(state, &pkh, override_pk.as_ref(), peer, request_timeout).await;
            api::log_proof(&pkh, &result);
            match result {
                Ok(proof) => wire::signature_reply(&proof),
                Err(e) => wire::error_reply(&e.message),
            }
        }
    }
}

const NO_DETERMINISTIC_NONCES: &str = "this signer does not give deterministic \
     nonces (its keys may live where their secret cannot be read); the baker makes its own";

/// `work`'s result, or a 408 once `limit` has passed (the work is then dropped; a signing
/// pipeline runs in its own task and still finishes).
async fn within<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request was not answered within {} ms",
                limit.as_millis()
            ),
        ))
    })
}

async fn prove(
    state: &AppState,
    pkh: &PublicKeyHash,
    override_pk: Option<&PublicKey>,
    peer: Option<IpAddr>,
    request_timeout: Duration,
) -> Result<tezos_crypto::Signature, ApiError> {
    // The protocol carries no authentication for this request.
    let authenticated = state
        .auth
        .authenticate_signature(pkh, &[], None, SigningVersion::default())
        .map_err(|e| {
            ApiError::new(
                e.status,
                "this signer requires authentication, which the socket protocol cannot carry \
                 for a proof of possession; ask over HTTP \
                 (GET /bls_prove_possession/<tz4>?authentication=…)",
            )
        });
    let proving = api::prove_authenticated(state, pkh, override_pk, authenticated, peer);
    within(request_timeout, proving).await
}

async fn sign(
    state: &AppState,
    message: SignMessage,
    peer: Option<IpAddr>,
    request_timeout: Duration,
) -> Vec<u8> {
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
        Ok(client) => {
            let signing = api::sign_authenticated(state, pkh, version, client, &mut attempt);
            within(request_timeout, signing).await
        }
        Err(e) => {
            api::count_authentication_failure(state, peer, e.status);
            Err(e)
        }
    };
    let text = pkh.to_b58check();
    api::record_sign_outcome(
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
