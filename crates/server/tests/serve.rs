//! The listeners over real sockets: graceful shutdown with a request in flight, the
//! header-read, write and request timeouts, and the utility listener.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{http, SlowVault};
use http_body_util::BodyExt;
use signatory_e2e::requests::octez_preattestation as preattestation;
use signatory_server::{api_app, app_state, serve_listeners, Listeners, ServerConfig};
use signatory_signer::policy::KeyPolicy;
use signatory_signer::service::{KeyEntry, SignService};
use signatory_signer::vault::Vault;
use signatory_stores::MemStore;
use signatory_vaults::MemVault;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tezos_crypto::{Curve, SecretKey, Signature, SigningVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

fn slow_service(delay: Duration) -> (SecretKey, Arc<SignService>) {
    let key = SecretKey::generate(Curve::Ed25519);
    let vault: Arc<dyn Vault> = Arc::new(SlowVault {
        inner: MemVault::with_keys("slow", [key.clone()]),
        delay,
    });
    let mut keys = HashMap::new();
    keys.insert(
        key.public_key().hash(),
        KeyEntry {
            public_key: key.public_key(),
            vault,
            policy: Some(KeyPolicy::default()),
        },
    );
    (
        key,
        Arc::new(SignService::new(keys, Arc::new(MemStore::new()))),
    )
}

struct Running {
    api: SocketAddr,
    utility: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), signatory_server::ServerError>>,
}

async fn start(cfg: ServerConfig, service: Arc<SignService>) -> Running {
    let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let utility = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (api_addr, utility_addr) = (api.local_addr().unwrap(), utility.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listeners = Listeners {
        api,
        utility: Some(utility),
        octez: Vec::new(),
    };
    let server = tokio::spawn(serve_listeners(cfg, listeners, service, async {
        let _ = stopped.await;
    }));
    Running {
        api: api_addr,
        utility: utility_addr,
        stop,
        server,
    }
}

fn cfg() -> ServerConfig {
    ServerConfig::new(([127, 0, 0, 1], 0).into())
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let (key, service) = slow_service(Duration::from_millis(400));
    let running = start(cfg(), service).await;
    let pkh = key.public_key().hash();
    let bytes = preattestation(10, 1);
    let api = running.api;
    let in_flight = tokio::spawn(async move {
        let body = format!("\"{}\"", hex::encode(&bytes));
        http(api, "POST", &format!("/keys/{pkh}"), &body).await
    });
    // The request is now waiting on the vault.
    tokio::time::sleep(Duration::from_millis(150)).await;
    running.stop.send(()).unwrap();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("edsig"), "{body}");
    tokio::time::timeout(Duration::from_secs(5), running.server)
        .await
        .expect("the server stops once the request is answered")
        .unwrap()
        .unwrap();
    // No longer listening.
    assert!(TcpStream::connect(api).await.is_err());
}

#[tokio::test]
async fn a_slow_header_is_cut_off() {
    let (_, service) = slow_service(Duration::ZERO);
    let mut c = cfg();
    c.header_read_timeout = Duration::from_millis(300);
    c.allow_list_known_keys = true;
    let running = start(c, service).await;
    let mut stream = TcpStream::connect(running.api).await.unwrap();
    stream
        .write_all(b"GET /known_keys HTTP/1.1\r\nHost: sig")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was not closed");
    assert!(started.elapsed() >= Duration::from_millis(250));
    // Nothing was served to the incomplete request.
    assert!(!String::from_utf8_lossy(&buf).contains("known_keys"));
    // A complete request is served as usual.
    let (status, body) = http(running.api, "GET", "/known_keys", "").await;
    assert_eq!(status, 200, "{body}");
    // A keep-alive connection left idle after its answer is closed after the same time.
    let mut idle = TcpStream::connect(running.api).await.unwrap();
    idle.write_all(b"GET /authorized_keys HTTP/1.1\r\nHost: signer\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "an idle connection was kept open");
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

/// A client that sends requests but never reads the answers blocks the server's writes;
/// the write timeout lets the connection go instead of holding it forever.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    let (_, service) = slow_service(Duration::ZERO);
    let mut c = cfg();
    c.write_timeout = Duration::from_millis(300);
    let running = start(c, service).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(running.api).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // Far more answers than the socket buffers of both ends hold (a few MiB on loopback).
    const REQUESTS: usize = 40_000;
    let pipelined = "GET /authorized_keys HTTP/1.1\r\nHost: signer\r\n\r\n".repeat(REQUESTS);
    let sender = tokio::spawn(async move {
        // Fails once the server has closed the connection.
        let _ = writer.write_all(pipelined.as_bytes()).await;
        writer
    });
    // Not reading: the server's writes block and its deadline passes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut answers = Vec::new();
    let drained =
        tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut answers)).await;
    assert!(
        drained.is_ok(),
        "the connection is still open after the write timeout"
    );
    let served = String::from_utf8_lossy(&answers)
        .matches("HTTP/1.1 200")
        .count();
    assert!(served < REQUESTS, "every request was answered: {served}");
    drop(sender.await);
    // Other clients are served as usual.
    let (status, body) = http(running.api, "GET", "/authorized_keys", "").await;
    assert_eq!(status, 200, "{body}");
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

/// Beyond `max_connections` a new connection is not served until one closes: the signer
/// keeps its file descriptors for its own files however many clients connect.
#[tokio::test]
async fn connections_beyond_the_limit_wait_for_one_to_close() {
    let (_, service) = slow_service(Duration::ZERO);
    let mut c = cfg();
    c.max_connections = 1;
    let running = start(c, service).await;
    let mut first = TcpStream::connect(running.api).await.unwrap();
    first
        .write_all(b"GET /authorized_keys HTTP/1.1\r\nHost: signer\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let n = first.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    // The first connection stays open (keep-alive): the second waits in the backlog.
    let api = running.api;
    let second = tokio::spawn(async move { http(api, "GET", "/authorized_keys", "").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !second.is_finished(),
        "a connection beyond the limit was served"
    );
    drop(first);
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("served once the first connection closed")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    // The utility listener counts its own connections.
    let (status, _) = http(running.utility, "GET", "/live", "").await;
    assert_eq!(status, 200);
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

/// `:port` (every interface) answers on IPv4 and on IPv6 with one listener, as ECAD
/// Signatory's Go listener does.
#[tokio::test]
async fn every_interface_means_ipv4_and_ipv6() {
    let (_, service) = slow_service(Duration::ZERO);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = cfg();
    c.listen = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(signatory_server::serve(c, service, async {
        let _ = stopped.await;
    }));
    let v4 = SocketAddr::from(([127, 0, 0, 1], port));
    let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
    let ipv6_here = std::net::TcpListener::bind("[::1]:0").is_ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(v4).await.is_err() {
        assert!(Instant::now() < deadline, "never listened on {v4}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = http(v4, "GET", "/authorized_keys", "").await;
    assert_eq!(status, 200);
    if ipv6_here {
        let (status, _) = http(v6, "GET", "/authorized_keys", "").await;
        assert_eq!(status, 200);
    }
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn utility_listener_and_client_address() {
    let (key, service) = slow_service(Duration::ZERO);
    let mut c = cfg();
    let client = SecretKey::generate(Curve::Ed25519);
    c.authorized_keys = Some(vec![client.public_key()]);
    let running = start(c, service).await;
    let pkh = key.public_key().hash();
    let body = format!("\"{}\"", hex::encode(preattestation(5, 1)));
    let (status, answer) = http(running.api, "POST", &format!("/keys/{pkh}"), &body).await;
    assert_eq!(status, 401, "{answer}");
    let (status, metrics) = http(running.utility, "GET", "/metrics", "").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            r#"authentication_failure_total{auth_method="authentication",client_ip="127.0.0.1",status="401"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        r#"sign_handler_requests_total{{address="{pkh}",status="401"}} 1"#
    )));
    let (status, health) = http(running.utility, "GET", "/healthz", "").await;
    assert_eq!(
        (status, health.as_str()),
        (200, r#"{"ready":true,"status":"ok"}"#)
    );
    let (status, _) = http(running.utility, "GET", "/live", "").await;
    assert_eq!(status, 200);
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_timed_out_request_is_still_recorded() {
    let (key, service) = slow_service(Duration::from_millis(600));
    let mut c = cfg();
    c.request_timeout = Duration::from_millis(150);
    let state = app_state(&c, service).unwrap();
    let api = api_app(&c, state);
    let pkh = key.public_key().hash();
    let bytes = preattestation(20, 1);
    let post = |bytes: &[u8]| {
        Request::post(format!("/keys/{pkh}"))
            .header("content-type", "application/json")
            .body(Body::from(format!("\"{}\"", hex::encode(bytes))))
            .unwrap()
    };
    let resp = api.clone().oneshot(post(&bytes)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error[0]["id"], "failure");
    assert!(error[0]["msg"].as_str().unwrap().contains("150 ms"));
    // The signing went on without the client and was recorded: asked again, the same
    // bytes get the recorded signature at once, and another payload is refused.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let started = Instant::now();
    let resp = api.clone().oneshot(post(&bytes)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "replayed, not signed again"
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let sig = Signature::from_b58check(reply["signature"].as_str().unwrap()).unwrap();
    key.public_key()
        .verify(&bytes, &sig, SigningVersion::default())
        .unwrap();
    let other = api.oneshot(post(&preattestation(20, 2))).await.unwrap();
    assert_eq!(other.status(), StatusCode::CONFLICT);
}

/// Send `head` (and nothing more) on a fresh connection; the reply once the server closes
/// the connection, or whatever arrived within `wait`.
async fn raw_exchange(addr: SocketAddr, head: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut reply)).await;
    String::from_utf8_lossy(&reply).into_owned()
}

/// The status and the Octez error message of a raw reply; panics unless its body is the
/// JSON error body every error has.
fn json_error(reply: &str) -> (u16, String) {
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete reply: {reply:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(json[0]["kind"], "temporary", "{body}");
    assert_eq!(json[0]["id"], "failure", "{body}");
    (status, json[0]["msg"].as_str().unwrap().to_string())
}

/// A declared body over the limit is refused when the header arrives: the body is never
/// sent, and the request timeout (an hour here) would otherwise end it in 408.
#[tokio::test]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    let (key, service) = slow_service(Duration::ZERO);
    let mut c = cfg();
    c.body_limit = 1024;
    c.request_timeout = Duration::from_secs(3600);
    c.header_read_timeout = Duration::from_secs(3600);
    let running = start(c, service).await;
    let pkh = key.public_key().hash();
    let head = format!(
        "POST /keys/{pkh} HTTP/1.1\r\nHost: signer\r\nContent-Type: application/json\r\n\
         Content-Length: 1025\r\n\r\n"
    );
    let reply = raw_exchange(running.api, head.as_bytes(), Duration::from_secs(60)).await;
    let (status, msg) = json_error(&reply);
    assert_eq!(status, 413, "{reply}");
    assert!(msg.contains("1025 bytes declared"), "{msg}");

    // Chunked: refused once the chunks sent exceed the limit, though the chunk declared
    // (64 KiB) is not finished and the request never ends.
    let mut stream = TcpStream::connect(running.api).await.unwrap();
    let head = format!(
        "POST /keys/{pkh} HTTP/1.1\r\nHost: signer\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n10000\r\n\"{}",
        "0".repeat(2048)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reply = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut reply))
        .await
        .expect("no reply before the body ended")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply[..n]).into_owned();
    assert!(reply.starts_with("HTTP/1.1 413 "), "{reply}");

    // Chunked, refused on the declared chunk size alone: a small first chunk, then one
    // declaring 64 KiB, and not a byte of it. Without the refusal this waits an hour.
    let head = format!(
        "POST /keys/{pkh} HTTP/1.1\r\nHost: signer\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n4\r\n\"030\r\n10000;ext=x\r\n"
    );
    let reply = raw_exchange(running.api, head.as_bytes(), Duration::from_secs(60)).await;
    let (status, msg) = json_error(&reply);
    assert_eq!(status, 413, "{reply}");
    assert!(msg.contains("too large"), "{msg}");

    // The same connection's earlier requests are served normally.
    let mut pipelined = format!(
        "GET /authorized_keys HTTP/1.1\r\nHost: signer\r\n\r\n\
         POST /keys/{pkh} HTTP/1.1\r\nHost: signer\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    pipelined.push_str("ffffffffffffffffffff");
    let reply = raw_exchange(running.api, pipelined.as_bytes(), Duration::from_secs(60)).await;
    let (first, second) = reply.split_once("{}").unwrap_or_else(|| panic!("{reply}"));
    assert!(first.starts_with("HTTP/1.1 200 "), "{reply}");
    assert_eq!(json_error(second).0, 413, "{reply}");
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

/// The replies hyper writes itself for requests it cannot parse carry the JSON error body.
#[tokio::test]
async fn unparsable_requests_get_the_json_error_body() {
    let (_, service) = slow_service(Duration::ZERO);
    let running = start(cfg(), service).await;
    let wait = Duration::from_secs(30);
    let long_target = format!(
        "GET /keys/{} HTTP/1.1\r\nHost: signer\r\n\r\n",
        "a".repeat(70_000)
    );
    let reply = raw_exchange(running.api, long_target.as_bytes(), wait).await;
    assert_eq!(json_error(&reply).0, 414, "{reply}");

    let mut many_headers = String::from("GET /authorized_keys HTTP/1.1\r\nHost: signer\r\n");
    for i in 0..200 {
        many_headers.push_str(&format!("X-Field-{i}: {i}\r\n"));
    }
    many_headers.push_str("\r\n");
    let reply = raw_exchange(running.api, many_headers.as_bytes(), wait).await;
    assert_eq!(json_error(&reply).0, 431, "{reply}");

    let reply = raw_exchange(running.api, b"GET /\x01 nonsense\r\n\r\n", wait).await;
    assert_eq!(json_error(&reply).0, 400, "{reply}");
    let reply = raw_exchange(
        running.api,
        b"GET /authorized_keys HTTP/1.1\r\nHost: signer\r\nBad Header: x\r\n\r\n",
        wait,
    )
    .await;
    assert_eq!(json_error(&reply).0, 400, "{reply}");

    // The API's own answers are untouched.
    let (status, body) = http(running.api, "GET", "/authorized_keys", "").await;
    assert_eq!((status, body.as_str()), (200, "{}"));
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

/// What a page of another site can send from a browser without a preflight: a POST with
/// `Content-Type: text/plain` and its `Origin`. Refused, and nothing is signed.
#[tokio::test]
async fn a_cross_site_browser_request_is_refused() {
    let (key, service) = slow_service(Duration::ZERO);
    let running = start(cfg(), service).await;
    let pkh = key.public_key().hash();
    let body = format!("\"{}\"", hex::encode(preattestation(7, 1)));
    let request = |extra: &str| {
        format!(
            "POST /keys/{pkh} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let wait = Duration::from_secs(30);
    let browser =
        request("Origin: https://evil.example\r\nContent-Type: text/plain;charset=UTF-8\r\n");
    let (status, msg) = json_error(&raw_exchange(running.api, browser.as_bytes(), wait).await);
    assert_eq!(status, 403, "{msg}");
    assert!(msg.contains("server.allowed_origins"), "{msg}");
    let no_origin = request("Content-Type: text/plain\r\n");
    let (status, msg) = json_error(&raw_exchange(running.api, no_origin.as_bytes(), wait).await);
    assert_eq!(status, 415, "{msg}");
    // As octez-client sends it: signed, at the height nothing above took.
    let octez = request("Content-Type: application/json\r\n");
    let reply = raw_exchange(running.api, octez.as_bytes(), wait).await;
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}
