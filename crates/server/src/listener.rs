//! A TCP listener serving HTTP/1.1 with hyper: header-read and write timeouts,
//! `TCP_NODELAY`, the client address for handlers, and graceful shutdown (requests in flight
//! finish).

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
use std::sync::Arc;
use std::time::{Duration, Instant};
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
        let conn =
            graceful.watch(builder.serve_connection(TokioIo::new(Box::pin(stream)), service));
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
