//! Octez's socket protocol over real TCP and Unix sockets, driven as Octez's `socket.ml`
//! client drives it: Authorized_keys then Sign on one connection, and the other requests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{http, SlowVault};
use signatory_e2e::requests::{authentication_message, octez_preattestation, Consensus};
use signatory_e2e::socket;
use signatory_server::UnixSocket;
use signatory_server::{serve_listeners, Listeners, ServerConfig, ServerError, SocketListener};
use signatory_signer::policy::KeyPolicy;
use signatory_signer::service::{KeyEntry, SignService};
use signatory_signer::vault::Vault;
use signatory_stores::MemStore;
use signatory_vaults::MemVault;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tezos_crypto::{Curve, PublicKeyHash, SecretKey, Signature, SigningVersion};
use tezos_encoding::signer_messages::{decode_reply, SignMessage, SocketRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixStream};

struct Keys {
    baker: SecretKey,
    bls: SecretKey,
    service: Arc<SignService>,
}

fn keys(delay: Duration) -> Keys {
    let baker = SecretKey::generate(Curve::Ed25519);
    let bls = SecretKey::generate(Curve::Bls12_381);
    let vault: Arc<dyn Vault> = Arc::new(SlowVault {
        inner: MemVault::with_keys("mem", [baker.clone(), bls.clone()]),
        delay,
    });
    let mut entries = HashMap::new();
    entries.insert(
        baker.public_key().hash(),
        KeyEntry {
            public_key: baker.public_key(),
            vault: vault.clone(),
            policy: Some(KeyPolicy::default()),
        },
    );
    entries.insert(
        bls.public_key().hash(),
        KeyEntry {
            public_key: bls.public_key(),
            vault,
            policy: Some(KeyPolicy {
                allow_proof_of_possession: true,
                ..KeyPolicy::default()
            }),
        },
    );
    Keys {
        baker,
        bls,
        service: Arc::new(SignService::new(entries, Arc::new(MemStore::new()))),
    }
}

struct Running {
    api: SocketAddr,
    utility: SocketAddr,
    tcp: SocketAddr,
    unix: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), ServerError>>,
    _dir: tempfile::TempDir,
}

async fn start(cfg: ServerConfig, service: Arc<SignService>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let unix = dir.path().join("signer.sock");
    let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let utility = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let utility_addr = utility.local_addr().unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let api_addr = api.local_addr().unwrap();
    let listeners = Listeners {
        api,
        utility: Some(utility),
        octez: vec![
            SocketListener::Tcp(tcp),
            SocketListener::Unix(UnixSocket::bind(&unix).unwrap()),
        ],
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_listeners(cfg, listeners, service, async {
        let _ = stopped.await;
    }));
    Running {
        api: api_addr,
        utility: utility_addr,
        tcp: tcp_addr,
        unix,
        stop,
        server,
        _dir: dir,
    }
}

fn cfg() -> ServerConfig {
    ServerConfig::new(([127, 0, 0, 1], 0).into())
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, payload: &[u8]) -> Vec<u8> {
    socket::exchange(stream, payload).await.unwrap()
}

/// The value of a successful reply, or the messages of an error.
async fn call<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &SocketRequest,
) -> Result<Vec<u8>, Vec<String>> {
    socket::call(stream, request).await.unwrap()
}

/// The messages of an error reply.
fn error_of(reply: Result<Vec<u8>, Vec<String>>) -> String {
    match reply {
        Ok(value) => panic!("expected an error, got {}", hex::encode(value)),
        Err(messages) => messages.join("; "),
    }
}

fn sign(pkh: PublicKeyHash, data: Vec<u8>) -> SocketRequest {
    SocketRequest::Sign(SignMessage {
        pkh,
        version: None,
        data,
        authentication: None,
    })
}

#[tokio::test]
async fn octez_client_flow_signs_replays_and_refuses_below_the_watermark() {
    let k = keys(Duration::ZERO);
    let running = start(cfg(), k.service.clone()).await;
    let pkh = k.baker.public_key().hash();
    let level_10 = octez_preattestation(10, 1);

    let mut conn = TcpStream::connect(running.tcp).await.unwrap();
    // No authentication configured: `00` (Ok) then `00` (No_authentication).
    assert_eq!(
        call(&mut conn, &SocketRequest::AuthorizedKeys).await,
        Ok(vec![0x00])
    );
    let raw = call(&mut conn, &sign(pkh, level_10.clone())).await.unwrap();
    assert_eq!(raw.len(), 64);
    let signature = Signature::from_bytes(Curve::Ed25519, &raw).unwrap();
    k.baker
        .public_key()
        .verify(&level_10, &signature, SigningVersion::default())
        .unwrap();
    // The same bytes again: the recorded signature.
    assert_eq!(call(&mut conn, &sign(pkh, level_10)).await, Ok(raw));

    // Below the watermark, or another payload at it: refused with the reason.
    let mut conn = TcpStream::connect(running.tcp).await.unwrap();
    let below = call(&mut conn, &sign(pkh, octez_preattestation(9, 1))).await;
    assert!(
        below.as_ref().unwrap_err()[0].contains("below the high watermark"),
        "{below:?}"
    );
    let conflict = call(&mut conn, &sign(pkh, octez_preattestation(10, 2))).await;
    assert!(
        conflict.as_ref().unwrap_err()[0].contains("already signed with different data"),
        "{conflict:?}"
    );
    // HTTP and the socket share one watermark.
    let body = format!("\"{}\"", hex::encode(octez_preattestation(10, 3)));
    let (status, response) = http(running.api, "POST", &format!("/keys/{pkh}"), &body).await;
    assert_eq!(status, 409, "{response}");

    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn conflicting_requests_on_many_connections_sign_one_payload() {
    let k = keys(Duration::from_millis(5));
    let running = start(cfg(), k.service.clone()).await;
    let pkh = k.baker.public_key().hash();
    let mut tasks = Vec::new();
    for payload in 0..8u8 {
        let addr = running.tcp;
        tasks.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(addr).await.unwrap();
            call(&mut conn, &sign(pkh, octez_preattestation(50, payload))).await
        }));
    }
    let mut signed = 0;
    for task in tasks {
        if task.await.unwrap().is_ok() {
            signed += 1;
        }
    }
    assert_eq!(signed, 1, "exactly one payload may be signed at one level");
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn public_keys_nonces_and_known_keys() {
    let k = keys(Duration::ZERO);
    let running = start(cfg(), k.service.clone()).await;
    let mut conn = UnixStream::connect(&running.unix).await.unwrap();
    let pkh = k.baker.public_key().hash();
    assert_eq!(
        call(&mut conn, &SocketRequest::PublicKey(pkh)).await,
        Ok(k.baker.public_key().to_tagged_bytes())
    );
    let stranger = SecretKey::generate(Curve::P256).public_key().hash();
    let unknown = call(&mut conn, &SocketRequest::PublicKey(stranger)).await;
    assert!(
        unknown.as_ref().unwrap_err()[0].contains("not known"),
        "{unknown:?}"
    );
    // The baker then makes its own nonces.
    assert_eq!(
        call(&mut conn, &SocketRequest::SupportsDeterministicNonces(pkh)).await,
        Ok(vec![0x00])
    );
    let nonce = SocketRequest::DeterministicNonce { hash: true, pkh };
    let refused = error_of(call(&mut conn, &nonce).await);
    assert!(refused.contains("deterministic nonces"), "{refused}");
    // Listing the keys is off unless the configuration allows it.
    let refused = call(&mut conn, &SocketRequest::KnownKeys).await;
    assert!(
        refused.as_ref().unwrap_err()[0].contains("allow_list_known_keys"),
        "{refused:?}"
    );
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();

    let mut allowed = cfg();
    allowed.allow_list_known_keys = true;
    let running = start(allowed, k.service.clone()).await;
    let mut conn = TcpStream::connect(running.tcp).await.unwrap();
    let listed = call(&mut conn, &SocketRequest::KnownKeys).await.unwrap();
    assert_eq!(u32::from_be_bytes(listed[..4].try_into().unwrap()), 42);
    let listed: Vec<PublicKeyHash> = listed[4..]
        .chunks(21)
        .map(|b| PublicKeyHash::from_bytes(b).unwrap())
        .collect();
    assert!(listed.contains(&pkh) && listed.contains(&k.bls.public_key().hash()));
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn clients_authenticate_as_over_http() {
    let k = keys(Duration::ZERO);
    let client = SecretKey::generate(Curve::Ed25519);
    let stranger = SecretKey::generate(Curve::Ed25519);
    let mut c = cfg();
    c.authorized_keys = Some(vec![client.public_key()]);
    let running = start(c, k.service.clone()).await;
    let pkh = k.baker.public_key().hash();
    let mut conn = TcpStream::connect(running.tcp).await.unwrap();

    let mut expected = vec![0x01, 0, 0, 0, 21];
    expected.extend_from_slice(&client.public_key().hash().to_bytes());
    assert_eq!(
        call(&mut conn, &SocketRequest::AuthorizedKeys).await,
        Ok(expected)
    );

    let data = octez_preattestation(20, 1);
    let missing = call(&mut conn, &sign(pkh, data.clone())).await;
    assert!(
        missing.as_ref().unwrap_err()[0].contains("authentication required"),
        "{missing:?}"
    );
    let by = |key: &SecretKey| {
        let proof = key
            .sign(
                &authentication_message(&pkh, &data),
                SigningVersion::default(),
            )
            .unwrap();
        SocketRequest::Sign(SignMessage {
            pkh,
            version: None,
            data: data.clone(),
            authentication: Some(Signature::Generic(proof.as_bytes().try_into().unwrap())),
        })
    };
    let refused = call(&mut conn, &by(&stranger)).await;
    assert!(
        refused.as_ref().unwrap_err()[0].contains("not from a client key"),
        "{refused:?}"
    );
    assert_eq!(call(&mut conn, &by(&client)).await.unwrap().len(), 64);
    // A proof of possession cannot carry authentication here: the client is sent to HTTP.
    let proof = SocketRequest::ProvePossession {
        pkh: k.bls.public_key().hash(),
        override_pk: None,
    };
    let refused = call(&mut conn, &proof).await;
    assert!(
        refused.as_ref().unwrap_err()[0].contains("ask over HTTP"),
        "{refused:?}"
    );
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn tz4_signs_with_the_clients_version_and_proves_possession() {
    let k = keys(Duration::ZERO);
    let running = start(cfg(), k.service.clone()).await;
    let tz4 = k.bls.public_key().hash();
    let data = Consensus::new(30, 0, 1).bls_attestation();
    let mut conn = TcpStream::connect(running.tcp).await.unwrap();
    let request = SocketRequest::Sign(SignMessage {
        pkh: tz4,
        version: Some(SigningVersion::V1),
        data: data.clone(),
        authentication: None,
    });
    let raw = call(&mut conn, &request).await.unwrap();
    let signature = Signature::from_bytes(Curve::Bls12_381, &raw).unwrap();
    k.bls
        .public_key()
        .verify(&data, &signature, SigningVersion::V1)
        .unwrap();
    assert!(k
        .bls
        .public_key()
        .verify(&data, &signature, SigningVersion::V3)
        .is_err());

    let proof = SocketRequest::ProvePossession {
        pkh: tz4,
        override_pk: None,
    };
    let raw = call(&mut conn, &proof).await.unwrap();
    let proof = Signature::from_bytes(Curve::Bls12_381, &raw).unwrap();
    k.bls
        .public_key()
        .verify_proof_of_possession(&proof)
        .unwrap();
    let not_bls = SocketRequest::ProvePossession {
        pkh: k.baker.public_key().hash(),
        override_pk: None,
    };
    let refused = error_of(call(&mut conn, &not_bls).await);
    assert!(refused.contains("only for tz4"), "{refused}");
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

/// A request refused without signing (here tz4 with version 0, which has no BLS scheme)
/// must not take the height: the client's real request there is signed.
#[tokio::test]
async fn a_tz4_request_refused_for_its_version_leaves_the_height_free() {
    let k = keys(Duration::ZERO);
    let running = start(cfg(), k.service.clone()).await;
    let tz4 = k.bls.public_key().hash();
    let mut conn = TcpStream::connect(running.tcp).await.unwrap();
    let with_version = |version, data: &Vec<u8>| {
        SocketRequest::Sign(SignMessage {
            pkh: tz4,
            version: Some(version),
            data: data.clone(),
            authentication: None,
        })
    };
    // Another payload at the same level and round than the real request.
    let other = Consensus::new(40, 0, 1).bls_attestation();
    let refused = error_of(call(&mut conn, &with_version(SigningVersion::V0, &other)).await);
    assert!(refused.contains("signing version 0"), "{refused}");
    let data = Consensus::new(40, 0, 2).bls_attestation();
    let raw = call(&mut conn, &with_version(SigningVersion::V3, &data))
        .await
        .unwrap();
    let signature = Signature::from_bytes(Curve::Bls12_381, &raw).unwrap();
    k.bls
        .public_key()
        .verify(&data, &signature, SigningVersion::V3)
        .unwrap();
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_malformed_request_gets_an_error_and_the_connection_goes_on() {
    let k = keys(Duration::ZERO);
    let running = start(cfg(), k.service.clone()).await;
    let mut conn = TcpStream::connect(running.tcp).await.unwrap();
    for bad in [&[9u8][..], &[], &[0x01, 0x00, 0x01]] {
        let reply = exchange(&mut conn, bad).await;
        let messages = decode_reply(&reply).unwrap().unwrap_err();
        assert!(messages[0].starts_with("malformed request"), "{messages:?}");
    }
    assert_eq!(
        call(&mut conn, &SocketRequest::AuthorizedKeys).await,
        Ok(vec![0x00])
    );
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_answers_a_request_in_flight() {
    let k = keys(Duration::from_millis(400));
    let running = start(cfg(), k.service.clone()).await;
    let pkh = k.baker.public_key().hash();
    let path = running.unix.clone();
    let in_flight = tokio::spawn(async move {
        let mut conn = UnixStream::connect(path).await.unwrap();
        call(&mut conn, &sign(pkh, octez_preattestation(40, 1))).await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    running.stop.send(()).unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap().len(), 64);
    tokio::time::timeout(Duration::from_secs(5), running.server)
        .await
        .expect("the server stops once the request is answered")
        .unwrap()
        .unwrap();
    // The socket file goes with the listener.
    assert!(!running.unix.exists());
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_unix_socket_is_private_and_never_taken_from_a_live_signer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.sock");
    let socket = UnixSocket::bind(&path).unwrap();
    assert_eq!(mode(&path), 0o660);
    // A second signer on the same path would split the watermarks' protection.
    assert!(matches!(
        UnixSocket::bind(&path),
        Err(ServerError::SocketInUse(p)) if p == path
    ));
    drop(socket);
    assert!(!path.exists());

    // A socket file left by a signer that died is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale);
    assert!(path.exists());
    let socket = UnixSocket::bind(&path).unwrap();
    drop(socket);

    // A file that took the socket's place is not the listener's to remove.
    let socket = UnixSocket::bind(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"someone else's").unwrap();
    drop(socket);
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
    std::fs::remove_file(&path).unwrap();

    // Any other file is left alone.
    std::fs::write(&path, b"not a socket").unwrap();
    assert!(matches!(
        UnixSocket::bind(&path),
        Err(ServerError::NotASocket(_))
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_one_to_close() {
    let k = keys(Duration::ZERO);
    let mut c = cfg();
    c.max_connections = 1;
    c.header_read_timeout = Duration::from_secs(30);
    let running = start(c, k.service.clone()).await;
    let mut first = TcpStream::connect(running.tcp).await.unwrap();
    assert_eq!(
        call(&mut first, &SocketRequest::AuthorizedKeys).await,
        Ok(vec![0x00])
    );
    // The signing listeners share the limit: neither another TCP connection, nor one on
    // the Unix socket, nor one to the HTTP API is served while the first stays open.
    let addr = running.tcp;
    let second = tokio::spawn(async move {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        call(&mut conn, &SocketRequest::AuthorizedKeys).await
    });
    let path = running.unix.clone();
    let third = tokio::spawn(async move {
        let mut conn = UnixStream::connect(path).await.unwrap();
        call(&mut conn, &SocketRequest::AuthorizedKeys).await
    });
    let api = running.api;
    let fourth = tokio::spawn(async move { http(api, "GET", "/authorized_keys", "").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "a second connection was served");
    assert!(!third.is_finished(), "a Unix connection was served");
    assert!(!fourth.is_finished(), "an HTTP connection was served");
    drop(first);
    let wait = Duration::from_secs(5);
    assert_eq!(
        tokio::time::timeout(wait, second).await.unwrap().unwrap(),
        Ok(vec![0x00])
    );
    assert_eq!(
        tokio::time::timeout(wait, third).await.unwrap().unwrap(),
        Ok(vec![0x00])
    );
    let (status, body) = tokio::time::timeout(wait, fourth).await.unwrap().unwrap();
    assert_eq!(status, 200, "{body}");
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_request_not_answered_in_time_is_still_recorded() {
    let k = keys(Duration::from_millis(600));
    let mut c = cfg();
    c.request_timeout = Duration::from_millis(200);
    let running = start(c, k.service.clone()).await;
    let pkh = k.baker.public_key().hash();
    let data = octez_preattestation(60, 1);
    let mut conn = TcpStream::connect(running.tcp).await.unwrap();
    let late = call(&mut conn, &sign(pkh, data.clone())).await;
    assert!(
        late.as_ref().unwrap_err()[0].contains("not answered within 200 ms"),
        "{late:?}"
    );
    // The pipeline went on: once it is done, the same bytes get the recorded signature and
    // another payload at that level is refused.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let conflict = error_of(call(&mut conn, &sign(pkh, octez_preattestation(60, 2))).await);
    assert!(
        conflict.contains("already signed with different data"),
        "{conflict}"
    );
    let k2 = k.baker.public_key();
    let resent = call(&mut conn, &sign(pkh, data.clone())).await;
    let raw = resent.unwrap_or_else(|e| panic!("resend refused: {e:?}"));
    let signature = Signature::from_bytes(Curve::Ed25519, &raw).unwrap();
    k2.verify(&data, &signature, SigningVersion::default())
        .unwrap();
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn idle_connections_are_closed_and_do_not_hold_up_shutdown() {
    let k = keys(Duration::ZERO);
    let mut c = cfg();
    c.header_read_timeout = Duration::from_millis(300);
    let running = start(c, k.service.clone()).await;
    // A client that connects and sends nothing is cut off after the header-read timeout.
    let mut idle = TcpStream::connect(running.tcp).await.unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "an idle connection was kept open");
    assert!(buf.is_empty());
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();

    // With no such limit, an idle connection does not keep the signer from stopping.
    let mut c = cfg();
    c.header_read_timeout = Duration::ZERO;
    let running = start(c, k.service.clone()).await;
    let mut idle = UnixStream::connect(&running.unix).await.unwrap();
    assert_eq!(
        call(&mut idle, &SocketRequest::AuthorizedKeys).await,
        Ok(vec![0x00])
    );
    running.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running.server)
        .await
        .expect("an idle connection held up the shutdown")
        .unwrap()
        .unwrap();
    let mut buf = Vec::new();
    idle.read_to_end(&mut buf).await.unwrap();
    assert!(buf.is_empty());
}

#[tokio::test]
async fn socket_requests_are_counted_as_http_requests_are() {
    let k = keys(Duration::ZERO);
    let running = start(cfg(), k.service.clone()).await;
    let pkh = k.baker.public_key().hash();
    let mut conn = TcpStream::connect(running.tcp).await.unwrap();
    call(&mut conn, &sign(pkh, octez_preattestation(70, 1)))
        .await
        .unwrap();
    let refused = error_of(call(&mut conn, &sign(pkh, octez_preattestation(70, 2))).await);
    assert!(refused.contains("different data"), "{refused}");
    let (status, metrics) = http(running.utility, "GET", "/metrics", "").await;
    assert_eq!(status, 200);
    for line in [
        format!("sign_handler_requests_total{{address=\"{pkh}\",status=\"200\"}} 1"),
        format!("sign_handler_requests_total{{address=\"{pkh}\",status=\"409\"}} 1"),
    ] {
        assert!(metrics.contains(&line), "missing `{line}` in:\n{metrics}");
    }
    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
}
