//! A TCP listener serving HTTP/1.1 with hyper: header-read and write timeouts,
//! `TCP_NODELAY`, the client address for handlers, graceful shutdown (requests in flight
//! finish), JSON bodies on the replies hyper writes itself for requests it cannot parse, and
//! an early 413 for an over-limit chunk declaration ([`crate::framing`]).

use crate::framing::ChunkLimit;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_io_timeout::TimeoutStream;
use tower::{Service, ServiceExt};

/// How connections are served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// A client must send a request's whole header within this time (`None`: no limit).
    pub header_read_timeout: Option<Duration>,
    /// A write blocked this long (the client does not read its answers) closes the
    /// connection (`None`: no limit).
    pub write_timeout: Option<Duration>,
    /// Time allowed to answer a request once read (the HTTP API applies its own, as a layer).
    pub request_timeout: Duration,
    /// Connections served at once; the accept loop waits for one to close beyond this.
    pub max_connections: usize,
    /// After shutdown is requested, how long requests in flight may take to finish.
    pub drain: Duration,
    /// Largest request body: a chunked body declaring more is refused at once (413).
    pub body_limit: usize,
}

fn http1_builder(limits: &ConnectionLimits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    // The timer must be set before the header-read timeout is used (hyper panics otherwise).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder
}

/// Accept on `listener` until `stop` turns true, then wait (at most `limits.drain`) for the
/// connections' requests in flight.
pub(crate) async fn run<S>(
    name: &'static str,
    listener: TcpListener,
    app: S,
    limits: ConnectionLimits,
    mut admission: Admission,
    mut stop: watch::Receiver<bool>,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let builder = http1_builder(&limits);
    let graceful = GracefulShutdown::new();
    while let Some((slot, (stream, remote))) = admission.next(&mut stop, || listener.accept()).await
    {
        // Small request, small answer: send it now rather than wait for more bytes.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(listener = name, error = %e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(remote));
            app.clone().oneshot(req.map(Body::new))
        });
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(limits.write_timeout);
        let stream = HttpStream::new(Box::pin(stream), limits.body_limit);
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(listener = name, client = %remote, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!(
        listener = name,
        "stopped accepting; finishing requests in flight"
    );
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            seconds = limits.drain.as_secs(),
            "connections still open after the shutdown grace period; no longer waiting for them"
        );
    }
}

/// Admits connections: at most `max` at once, each holding a slot until it closes.
pub(crate) struct Admission {
    name: &'static str,
    max: usize,
    slots: Arc<Semaphore>,
    last_warned: Option<Instant>,
}

impl Admission {
    pub(crate) fn new(name: &'static str, max: usize) -> Self {
        Self::sharing(name, max, &Arc::new(Semaphore::new(max)))
    }

    /// Admit connections into `slots`, which other listeners may share (`max` of them).
    pub(crate) fn sharing(name: &'static str, max: usize, slots: &Arc<Semaphore>) -> Self {
        Admission {
            name,
            max,
            slots: Arc::clone(slots),
            last_warned: None,
        }
    }

    /// The next connection `accept` gives, once a slot is free for it; `None` once `stop`
    /// turns true. The slot is taken after the connection is accepted: a listener waiting
    /// for a connection must not hold a slot that other listeners share. A listener keeps
    /// at most one accepted connection waiting for a slot.
    pub(crate) async fn next<T, F>(
        &mut self,
        stop: &mut watch::Receiver<bool>,
        mut accept: impl FnMut() -> F,
    ) -> Option<(OwnedSemaphorePermit, T)>
    where
        F: Future<Output = std::io::Result<T>>,
    {
        let conn = loop {
            let accepted = tokio::select! {
                accepted = accept() => accepted,
                _ = stop.wait_for(|stop| *stop) => return None,
            };
            match accepted {
                Ok(conn) => break conn,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::error!(listener = self.name, error = %e, "cannot accept connections; retrying in 1 s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = stop.wait_for(|stop| *stop) => return None,
                    }
                }
            }
        };
        let slot = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Once a minute at most: a listener that stays full must not flood the log.
                if self
                    .last_warned
                    .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
                {
                    tracing::warn!(
                        listener = self.name,
                        max_connections = self.max,
                        "connection limit reached; new connections wait until one closes"
                    );
                    self.last_warned = Some(Instant::now());
                }
                tokio::select! {
                    // The semaphore is never closed.
                    slot = Arc::clone(&self.slots).acquire_owned() => slot.ok()?,
                    _ = stop.wait_for(|stop| *stop) => return None,
                }
            }
        };
        Some((slot, conn))
    }
}

/// Errors of one connection that never reached us, not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// The replies hyper writes on its own, before any service sees the request, when it cannot
/// parse one (400), its target is too long (414) or its header too large (431). hyper has no
/// option to give them a body; they are recognised on the way out (a status line of these
/// codes, `content-length: 0`, nothing after the head: the API never answers an error
/// without a body) and replaced by the same reply with the JSON error body every other
/// error has. hyper closes the connection after them.
const AUTOMATIC_REPLIES: [(&[u8], u16, &str); 3] = [
    (
        b" 400 ",
        400,
        "malformed HTTP request: its request line or a header could not be parsed",
    ),
    (
        b" 414 ",
        414,
        "the request target (path and query) is too long",
    ),
    (
        b" 431 ",
        431,
        "the request header is too large or has too many fields",
    ),
];

/// The JSON reply replacing hyper's bodiless one in `head`, if `head` is one.
fn json_parse_error_reply(head: &[u8]) -> Option<Vec<u8>> {
    let rest = head
        .strip_prefix(b"HTTP/1.1")
        .or_else(|| head.strip_prefix(b"HTTP/1.0"))?;
    let (_, code, message) = AUTOMATIC_REPLIES
        .iter()
        .find(|(prefix, _, _)| rest.starts_with(prefix))?;
    // The whole write is one head and nothing else, with no body.
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    if end + 4 != head.len() {
        return None;
    }
    let lowercase = head.to_ascii_lowercase();
    if !lowercase
        .windows(21)
        .any(|w| w == b"\r\ncontent-length: 0\r\n")
    {
        return None;
    }
    let status = axum::http::StatusCode::from_u16(*code).ok()?;
    let body = crate::error::octez_error_body(message);
    let mut reply = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(&body);
    Some(reply)
}

/// How long, and for how many bytes at most, a closing connection keeps reading what the
/// client still sends. A reply sent before the request was read (an early 413, a parse
/// error) is followed by a close; closing a socket with unread bytes makes the kernel send
/// a reset, which can destroy the reply before the client reads it. So after sending its
/// FIN the server reads and discards, within these bounds, until the client closes too.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 8 << 20;

/// A connection's stream: what the client sends goes through [`ChunkLimit`],
/// [`json_parse_error_reply`] is applied to what hyper writes, and closing lingers
/// (see [`LINGER`]).
struct HttpStream<S> {
    inner: S,
    chunk_limit: ChunkLimit,
    /// A replacement reply being written, and how much of it is out.
    replacing: Option<(Vec<u8>, usize)>,
    /// Once the write half is shut: the end of the lingering, and the bytes discarded.
    lingering: Option<(Pin<Box<tokio::time::Sleep>>, usize)>,
}

impl<S> HttpStream<S> {
    fn new(inner: S, body_limit: usize) -> Self {
        HttpStream {
            inner,
            chunk_limit: ChunkLimit::new(body_limit),
            replacing: None,
            lingering: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HttpStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            // Only what is ready is initialised: hyper's buffer can be large.
            let ready = this.chunk_limit.ready().min(buf.remaining());
            let n = this.chunk_limit.take(buf.initialize_unfilled_to(ready));
            if n > 0 {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            let mut scratch = [0u8; 8192];
            let mut read = ReadBuf::new(&mut scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // End of stream.
                return Poll::Ready(Ok(()));
            }
            this.chunk_limit.feed(read.filled());
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for HttpStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            this.replacing = json_parse_error_reply(buf).map(|reply| (reply, 0));
        }
        let Some((reply, sent)) = &mut this.replacing else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        // hyper offers the same bytes again after `Pending`; they count as written once
        // the whole replacement is.
        while let Some(unsent) = reply.get(*sent..).filter(|rest| !rest.is_empty()) {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, unsent))?;
            if n == 0 {
                return Poll::Ready(Err(ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        this.replacing = None;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.lingering.is_none() {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.lingering = Some((Box::pin(tokio::time::sleep(LINGER)), 0));
        }
        let Some((deadline, discarded)) = &mut this.lingering else {
            return Poll::Ready(Ok(()));
        };
        let mut scratch = [0u8; 8192];
        loop {
            if *discarded >= LINGER_BYTES || deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf)) {
                // The client closed (end of stream) or the connection broke: done.
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Err(_) => return Poll::Ready(Ok(())),
                Ok(()) => *discarded += buf.filled().len(),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_parse_error_replies_are_replaced() {
        let hyper_431 =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let reply = json_parse_error_reply(hyper_431).unwrap();
        let text = String::from_utf8(reply).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json[0]["id"], "failure");
        assert!(
            json_parse_error_reply(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n")
                .is_some()
        );
        assert!(
            json_parse_error_reply(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .is_some()
        );
        // The API's own replies are left alone: other codes, a body, a length.
        for ours in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n[]",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 20\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"[{\"kind\":\"temporary\"}]",
        ] {
            assert_eq!(json_parse_error_reply(ours), None);
        }
    }
}
