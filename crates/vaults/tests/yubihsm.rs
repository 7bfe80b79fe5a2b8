//! The `yubihsm` driver against the `yubihsm` crate's MockHsm, served by the crate's own
//! yubihsm-connector HTTP server on 127.0.0.1, so the vault speaks HTTP exactly as it does
//! to a real yubihsm-connector. Between the two sits a small HTTP proxy of this file: it
//! can be stopped and started again (the connector going away), can answer for the device
//! that a session is gone (as a YubiHSM does after its session timeout), and counts the
//! sessions the vault opens. No real YubiHSM is involved.
#![cfg(feature = "yubihsm")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use signatory_signer::vault::{Vault, VaultError};
use signatory_vaults::{driver_names, open, OpenError, YubiHsmOptions, YubiHsmVault};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;
use tezos_crypto::{Curve, SecretKey, Signature, SigningVersion};
use yubihsm::connector::http::Server;
use yubihsm::{asymmetric, object, Capability, Client, Connector, Credentials, Domain, HttpConfig};

const MESSAGE: &[u8] = b"\x03\x01\x02signatory yubihsm test operation";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Logs of the whole test binary, for the discovery warnings (the vault warns from the
/// blocking pool, so a thread-local subscriber would miss them).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the proxy knows and has been told to do.
#[derive(Default)]
struct ProxyState {
    /// Open downstream connections, to cut when the proxy stops.
    connections: Mutex<Vec<TcpStream>>,
    /// CreateSession commands seen (one per session the vault opens).
    create_sessions: AtomicUsize,
    /// Session ids seen in session messages, and those the "device" has forgotten.
    sessions: Mutex<(BTreeSet<u8>, BTreeSet<u8>)>,
    /// Session messages answered "invalid session" by the proxy.
    refused: AtomicUsize,
    /// While set, requests are read and left unanswered (a hung connector); when it is
    /// cleared, the held connections are closed.
    hold: AtomicBool,
}

/// A yubihsm-connector HTTP server with a MockHsm behind a proxy that can stop.
struct Connector_ {
    /// The port the vault is given (the proxy's).
    port: u16,
    /// The crate's connector server, reached directly by the test's own client.
    upstream: u16,
    state: Arc<ProxyState>,
    accepting: Mutex<Option<(Arc<AtomicBool>, thread::JoinHandle<()>)>>,
}

impl Connector_ {
    fn start() -> Arc<Connector_> {
        let upstream = free_port();
        let config = HttpConfig {
            addr: "127.0.0.1".to_owned(),
            port: upstream,
            timeout_ms: 5000,
        };
        let server = Server::new(&config, Connector::mockhsm()).unwrap();
        // `Server::run` returns at the first failed request; a real connector keeps going.
        thread::spawn(move || loop {
            let _ = server.handle_request();
        });
        let connector = Arc::new(Connector_ {
            port: free_port(),
            upstream,
            state: Arc::default(),
            accepting: Mutex::new(None),
        });
        connector.resume();
        connector
    }

    /// Start (again) accepting connections on the vault's port.
    fn resume(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (state, upstream, flag) = (self.state.clone(), self.upstream, stop.clone());
        let handle = thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        state
                            .connections
                            .lock()
                            .unwrap()
                            .push(stream.try_clone().unwrap());
                        let state = state.clone();
                        thread::spawn(move || relay(stream, upstream, &state));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => return,
                }
            }
        });
        *self.accepting.lock().unwrap() = Some((stop, handle));
    }

    /// Stop listening (connections are refused) and cut every open connection.
    fn stop(&self) {
        if let Some((stop, handle)) = self.accepting.lock().unwrap().take() {
            stop.store(true, Ordering::SeqCst);
            handle.join().unwrap();
        }
        for c in self.state.connections.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Answer every later message of the sessions open so far with the device's "invalid
    /// session" error, as a YubiHSM does once it has dropped a session.
    fn forget_sessions(&self) {
        let mut sessions = self.state.sessions.lock().unwrap();
        let seen = sessions.0.clone();
        sessions.1.extend(seen);
    }

    fn create_sessions(&self) -> usize {
        self.state.create_sessions.load(Ordering::SeqCst)
    }

    fn settings(&self, password: &str) -> serde_yaml_ng::Value {
        serde_yaml_ng::from_str(&format!(
            "address: 127.0.0.1:{}\npassword: {password}\nauth_key_id: 1\nkey_import_domains: 1\n",
            self.port
        ))
        .unwrap()
    }

    /// A client of the test's own, straight to the connector server (not through the proxy).
    fn direct_client(&self) -> Client {
        let connector = Connector::http(&HttpConfig {
            addr: "127.0.0.1".to_owned(),
            port: self.upstream,
            timeout_ms: 5000,
        });
        Client::open(connector, Credentials::default(), true).unwrap()
    }
}

/// One HTTP/1.1 message: the head (through the blank line) and the body.
fn read_message(r: &mut impl BufRead) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
        let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
        if let Some(v) = text.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    Some((head, body))
}

fn relay(down: TcpStream, upstream: u16, state: &ProxyState) {
    let mut reader = BufReader::new(down.try_clone().unwrap());
    let mut down = down;
    let mut up: Option<(TcpStream, BufReader<TcpStream>)> = None;
    while let Some((head, body)) = read_message(&mut reader) {
        if state.hold.load(Ordering::SeqCst) {
            while state.hold.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10));
            }
            let _ = down.shutdown(Shutdown::Both);
            return;
        }
        match body.first() {
            Some(0x03) => {
                state.create_sessions.fetch_add(1, Ordering::SeqCst);
            }
            Some(0x05) if body.len() > 3 => {
                let id = body[3];
                let mut sessions = state.sessions.lock().unwrap();
                if sessions.1.contains(&id) {
                    drop(sessions);
                    state.refused.fetch_add(1, Ordering::SeqCst);
                    // The device's error response: code 0x7f, one byte 0x03 (invalid session).
                    let answer = [0x7f, 0x00, 0x01, 0x03];
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                        answer.len()
                    );
                    if down
                        .write_all(&[reply.as_bytes(), &answer].concat())
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                sessions.0.insert(id);
            }
            _ => {}
        }
        if up.is_none() {
            let Ok(stream) = TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            let reader = BufReader::new(stream.try_clone().unwrap());
            up = Some((stream, reader));
        }
        let Some((stream, reader)) = up.as_mut() else {
            return;
        };
        if stream.write_all(&head).is_err() || stream.write_all(&body).is_err() {
            return;
        }
        let Some((rhead, rbody)) = read_message(reader) else {
            return;
        };
        // In one write: the yubihsm 0.42 client reads each chunk of a response into the
        // start of its buffer, so a response split over two reads comes out garbled.
        if down.write_all(&[rhead, rbody].concat()).is_err() {
            return;
        }
    }
}

async fn open_vault(connector: &Connector_, name: &str) -> Arc<dyn Vault> {
    open(name, "yubihsm", &connector.settings("password"))
        .await
        .unwrap()
}

fn verify(key: &signatory_signer::vault::VaultKey, sig: &Signature) {
    key.public_key
        .verify(MESSAGE, sig, SigningVersion::V1)
        .unwrap_or_else(|e| panic!("{} signature does not verify: {e}", key.pkh));
    assert!(sig.is_low_s(), "{} gave a high-S signature", key.pkh);
    assert_eq!(sig.curve(), Some(key.public_key.curve()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generates_lists_and_signs_tz1_tz2_tz3() {
    let connector = Connector_::start();
    let vault = open_vault(&connector, "hsm").await;
    assert_eq!(vault.driver(), "yubihsm");
    assert!(vault.list_keys().await.unwrap().is_empty());
    let mut generated = Vec::new();
    for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
        let key = vault.generate(curve).await.unwrap();
        assert_eq!(key.public_key.curve(), curve);
        assert_eq!(key.vault, "hsm");
        generated.push(key);
    }
    let listed = vault.list_keys().await.unwrap();
    assert_eq!(listed.len(), 3);
    for key in &generated {
        let found = listed.iter().find(|k| k.pkh == key.pkh).unwrap();
        assert_eq!(found.public_key, key.public_key);
        // The object id, then the label the key was created with.
        let label = found.label.as_deref().unwrap();
        assert!(
            label.starts_with("0x000") && label.contains(":signatory-"),
            "{label}"
        );
    }
    for key in &listed {
        // Several times each: MockHsm's ECDSA nonces are random and about half its raw
        // signatures are high-S; every one that leaves the vault must be low-S.
        for _ in 0..12 {
            let sig = vault
                .sign(&key.pkh, MESSAGE, SigningVersion::V1)
                .await
                .unwrap();
            verify(key, &sig);
        }
    }
    // Ed25519 is deterministic, and the vault says so; ECDSA on the device is not.
    let tz1 = &generated[0];
    let a = vault
        .sign(&tz1.pkh, MESSAGE, SigningVersion::V1)
        .await
        .unwrap();
    let b = vault
        .sign(&tz1.pkh, MESSAGE, SigningVersion::V2)
        .await
        .unwrap();
    assert_eq!(a, b);
    assert!(vault.signs_deterministically(Curve::Ed25519));
    assert!(!vault.signs_deterministically(Curve::P256));
    assert!(vault.health().await.is_ok());

    // A second signer finds the keys on the device.
    let again = open_vault(&connector, "hsm2").await;
    let relisted = again.list_keys().await.unwrap();
    let pkhs = |keys: &[signatory_signer::vault::VaultKey]| {
        keys.iter().map(|k| k.pkh).collect::<BTreeSet<_>>()
    };
    assert_eq!(pkhs(&relisted), pkhs(&listed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_keys_and_refuses_tz4() {
    let connector = Connector_::start();
    let vault = open_vault(&connector, "hsm").await;
    for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
        let secret = SecretKey::generate(curve);
        let public = secret.public_key();
        let key = vault.import(secret).await.unwrap();
        assert_eq!(key.public_key, public, "{curve}");
        let sig = vault
            .sign(&key.pkh, MESSAGE, SigningVersion::V1)
            .await
            .unwrap();
        verify(&key, &sig);
        assert!(key.label.as_deref().unwrap().contains("-imported-"));
    }
    assert_eq!(vault.list_keys().await.unwrap().len(), 3);
    // Importing a key the device already holds adds no second object.
    let secret = SecretKey::generate(Curve::P256);
    let first = vault.import(secret.clone()).await.unwrap();
    let second = vault.import(secret).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(vault.list_keys().await.unwrap().len(), 4);
    let e = vault.generate(Curve::Bls12_381).await.unwrap_err();
    assert!(matches!(e, VaultError::Unsupported { .. }), "{e:?}");
    let e = vault
        .import(SecretKey::generate(Curve::Bls12_381))
        .await
        .unwrap_err();
    assert!(matches!(e, VaultError::Unsupported { .. }), "{e:?}");
    assert_eq!(vault.list_keys().await.unwrap().len(), 4);
    // A key the vault does not hold.
    let other = SecretKey::generate(Curve::Ed25519).public_key().hash();
    let e = vault
        .sign(&other, MESSAGE, SigningVersion::V1)
        .await
        .unwrap_err();
    assert!(matches!(e, VaultError::KeyNotFound { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_skips_unusable_objects_with_one_warning_each() {
    let logs = logs();
    let connector = Connector_::start();
    let client = connector.direct_client();
    let label = |s: &str| object::Label::from(s);
    // 0x0010: Ed25519 without the sign capability; 0x0011: P-256 that may only sign EdDSA
    // (the wrong capability); 0x0012: a usable secp256k1 key.
    client
        .generate_asymmetric_key(
            0x10,
            label("no-sign"),
            Domain::DOM1,
            Capability::EXPORTABLE_UNDER_WRAP,
            asymmetric::Algorithm::Ed25519,
        )
        .unwrap();
    client
        .generate_asymmetric_key(
            0x11,
            label("wrong-cap"),
            Domain::DOM1,
            Capability::SIGN_EDDSA,
            asymmetric::Algorithm::EcP256,
        )
        .unwrap();
    client
        .generate_asymmetric_key(
            0x12,
            label("baker"),
            Domain::DOM1,
            Capability::SIGN_ECDSA,
            asymmetric::Algorithm::EcK256,
        )
        .unwrap();
    // An object of another type is not even looked at (the listing asks for asymmetric keys).
    client
        .put_opaque(
            0x13,
            label("data"),
            Domain::DOM1,
            Capability::empty(),
            yubihsm::opaque::Algorithm::Data,
            b"x".to_vec(),
        )
        .unwrap();

    let vault = open_vault(&connector, "discovery").await;
    let keys = vault.list_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].label.as_deref(), Some("0x0012:baker"));
    assert_eq!(keys[0].public_key.curve(), Curve::Secp256k1);
    let sig = vault
        .sign(&keys[0].pkh, MESSAGE, SigningVersion::V1)
        .await
        .unwrap();
    verify(&keys[0], &sig);
    // `signatory list` shows the skipped objects and why.
    let unusable = vault.unusable_keys();
    let ids: Vec<&str> = unusable.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["0x0010:no-sign", "0x0011:wrong-cap"]);
    assert!(unusable[0].reason.contains("`sign-eddsa`"), "{unusable:?}");

    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("vault=discovery"))
        .collect();
    // Opening lists once and the test lists once: one warning per object per listing.
    let count = |id: &str| warnings.iter().filter(|l| l.contains(id)).count();
    assert_eq!(count("object 0x0010"), 2, "{warnings:#?}");
    assert_eq!(count("object 0x0011"), 2, "{warnings:#?}");
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    assert!(warnings
        .iter()
        .any(|l| l.contains("0x0010") && l.contains("without the `sign-eddsa` capability")));
    assert!(warnings
        .iter()
        .any(|l| l.contains("0x0011") && l.contains("without the `sign-ecdsa` capability")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_once_and_never_shown() {
    let connector = Connector_::start();
    let password = "not-the-Password-7f3a";
    let before = connector.create_sessions();
    let e = open("hsm", "yubihsm", &connector.settings(password))
        .await
        .unwrap_err();
    let text = format!("{e} / {e:?}");
    assert!(!text.contains(password), "{text}");
    // A configuration error naming the setting, not a device that is down.
    assert!(
        matches!(e, OpenError::Config { ref key_path, .. } if key_path == "vaults.hsm.config.password"),
        "{e:?}"
    );
    assert!(text.contains("wrong password or auth_key_id"), "{text}");
    // Authentication failures are not retried: one session attempt.
    assert_eq!(connector.create_sessions() - before, 1);

    // The right password opens; neither the options nor the vault print it.
    let options = YubiHsmOptions::from_settings("hsm", &connector.settings(password)).unwrap();
    assert!(!format!("{options:?}").contains(password));
    let options = YubiHsmOptions::from_settings("hsm", &connector.settings("password")).unwrap();
    let vault = YubiHsmVault::open("hsm", options).await.unwrap();
    let shown = format!("{vault:?}");
    assert!(
        shown.contains("REDACTED") && !shown.contains("\"password\""),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_connector_is_a_transient_error_and_a_restarted_one_signs_again() {
    let connector = Connector_::start();
    let vault = open_vault(&connector, "hsm").await;
    let key = vault.generate(Curve::P256).await.unwrap();
    connector.stop();
    let e = vault
        .sign(&key.pkh, MESSAGE, SigningVersion::V1)
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(
        e.to_string().contains("cannot reach yubihsm-connector"),
        "{e}"
    );
    let e = vault.health().await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    let e = vault.list_keys().await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");

    connector.resume();
    let sig = vault
        .sign(&key.pkh, MESSAGE, SigningVersion::V1)
        .await
        .unwrap();
    verify(&key, &sig);
    assert!(vault.health().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_device_dropped_is_reopened_and_the_call_retried_once() {
    let connector = Connector_::start();
    let vault = open_vault(&connector, "hsm").await;
    let key = vault.generate(Curve::Secp256k1).await.unwrap();
    let sessions = connector.create_sessions();
    connector.forget_sessions();
    let sig = vault
        .sign(&key.pkh, MESSAGE, SigningVersion::V1)
        .await
        .unwrap();
    verify(&key, &sig);
    assert_eq!(connector.state.refused.load(Ordering::SeqCst), 1);
    assert_eq!(connector.create_sessions(), sessions + 1);
    // The new session carries on.
    let sig = vault
        .sign(&key.pkh, MESSAGE, SigningVersion::V1)
        .await
        .unwrap();
    verify(&key, &sig);
    assert_eq!(connector.create_sessions(), sessions + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_signatures_all_verify() {
    let connector = Connector_::start();
    let vault = open_vault(&connector, "hsm").await;
    let mut keys = Vec::new();
    for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
        keys.push(vault.generate(curve).await.unwrap());
    }
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let vault = vault.clone();
            let key = keys[i % keys.len()].clone();
            tokio::spawn(async move {
                let sig = vault
                    .sign(&key.pkh, MESSAGE, SigningVersion::V1)
                    .await
                    .unwrap();
                (key, sig)
            })
        })
        .collect();
    for task in tasks {
        let (key, sig) = task.await.unwrap();
        verify(&key, &sig);
    }
}

#[tokio::test]
async fn the_registry_knows_the_driver_and_names_bad_settings() {
    assert!(driver_names().contains(&"yubihsm"));
    let settings: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        "{address: 'localhost:12345', password: p, auth_key_id: 1, slot: 2}",
    )
    .unwrap();
    let e = open("hsm", "yubihsm", &settings).await.unwrap_err();
    assert!(e.to_string().contains("vaults.hsm.config"), "{e}");
    assert!(e.to_string().contains("slot"), "{e}");
}

/// `signatory serve` with a `yubihsm` vault in its configuration signs preattestations with
/// tz1, tz2 and tz3 keys held by the MockHsm, over the real HTTP API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatory_serve_signs_with_keys_in_the_hsm() {
    use signatory_e2e::requests::Consensus;
    use signatory_e2e::{SignerConfig, TestSigner};

    let connector = Connector_::start();
    let vault = open_vault(&connector, "setup").await;
    let mut keys = Vec::new();
    for curve in [Curve::Ed25519, Curve::Secp256k1, Curve::P256] {
        keys.push(vault.generate(curve).await.unwrap());
    }

    let mut signer = TestSigner::new(SignerConfig::default()).unwrap();
    let mut yaml = signer.render_config(signer.api, signer.utility).replacen(
        "vaults:\n",
        &format!(
            "vaults:\n  hsm:\n    driver: yubihsm\n    config:\n      address: 127.0.0.1:{}\n      \
             password: password\n      auth_key_id: 1\n",
            connector.port
        ),
        1,
    );
    std::fs::write(&signer.config_path, &yaml).unwrap();

    // `signatory import`, `generate` and `list` with the yubihsm vault.
    let imported = SecretKey::generate(Curve::Secp256k1);
    let out = signer
        .cli(&["import", "--vault", "hsm", imported.to_b58check().as_str()])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = signer
        .cli(&["generate", "-t", "tz3", "--vault", "hsm"])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = signer
        .cli(&["generate", "-t", "tz4", "--vault", "hsm"])
        .unwrap();
    assert!(!out.status.success());
    let out = signer.cli(&["list"]).unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{listing}");
    assert!(
        listing.contains(&imported.public_key().hash().to_string()),
        "{listing}"
    );
    assert_eq!(listing.matches("tz3").count(), 2, "{listing}");

    keys.push(signatory_signer::vault::VaultKey::new(
        imported.public_key(),
        "hsm",
    ));
    for key in &keys {
        yaml.push_str(&format!(
            "  {}:\n    allow:\n      preattestation:\n",
            key.pkh
        ));
    }
    std::fs::write(&signer.config_path, yaml).unwrap();
    signer.start().await.unwrap();

    let mut conn = signer.connect().await.unwrap();
    for (level, key) in (10..).zip(&keys) {
        let path = signer.key_path(&key.pkh);
        let resp = conn.get(&path).await.unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(
            resp.json_str("public_key"),
            Some(key.public_key.to_b58check())
        );

        let bytes = Consensus::new(level, 0, 1).preattestation();
        let resp = conn.sign(&path, &bytes).await.unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        let sig = Signature::from_b58check(&resp.json_str("signature").unwrap()).unwrap();
        key.public_key
            .verify(&bytes, &sig, SigningVersion::V1)
            .unwrap();
        assert!(sig.with_curve(key.public_key.curve()).unwrap().is_low_s());
    }
    // The same level and round with another payload is refused: the watermark holds.
    let bytes = Consensus::new(10, 0, 2).preattestation();
    let resp = conn
        .sign(&signer.key_path(&keys[0].pkh), &bytes)
        .await
        .unwrap();
    assert_eq!(resp.status, 409, "{}", resp.text());
}

/// The MockHsm's P-256 signatures are high-S about half the time (its nonces are random and
/// it does not normalise); every signature the vault returns is low-S and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_s_signatures_from_the_device_leave_the_vault_low_s() {
    let connector = Connector_::start();
    let client = connector.direct_client();
    client
        .generate_asymmetric_key(
            0x20,
            object::Label::from("p256"),
            Domain::DOM1,
            Capability::SIGN_ECDSA,
            asymmetric::Algorithm::EcP256,
        )
        .unwrap();
    let digest = tezos_crypto::blake2b_256(MESSAGE);
    let high = (0..32)
        .filter(|_| {
            let der = client
                .sign_ecdsa_prehash_raw(0x20, digest.to_vec())
                .unwrap();
            let sig = openssl::ecdsa::EcdsaSig::from_der(&der).unwrap();
            let mut raw = sig.r().to_vec_padded(32).unwrap();
            raw.extend(sig.s().to_vec_padded(32).unwrap());
            !Signature::from_bytes(Curve::P256, &raw).unwrap().is_low_s()
        })
        .count();
    assert!(high > 0, "32 raw MockHsm P-256 signatures, none high-S");

    let vault = open_vault(&connector, "hsm").await;
    let key = vault.list_keys().await.unwrap().pop().unwrap();
    for _ in 0..32 {
        let sig = vault
            .sign(&key.pkh, MESSAGE, SigningVersion::V1)
            .await
            .unwrap();
        verify(&key, &sig);
    }
}

/// A connector that accepts but never answers costs a call its deadline, as a transient
/// error; once it answers again, so does the vault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_connector_fails_the_call_at_its_deadline() {
    let connector = Connector_::start();
    let mut options =
        YubiHsmOptions::from_settings("hsm", &connector.settings("password")).unwrap();
    options.deadline = Duration::from_secs(1);
    let vault = YubiHsmVault::open("hsm", options).await.unwrap();
    let key = vault.generate(Curve::Ed25519).await.unwrap();
    connector.state.hold.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let e = vault
        .sign(&key.pkh, MESSAGE, SigningVersion::V1)
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("no answer from the YubiHSM"), "{e}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    connector.state.hold.store(false, Ordering::SeqCst);
    let sig = vault
        .sign(&key.pkh, MESSAGE, SigningVersion::V1)
        .await
        .unwrap();
    verify(&key, &sig);
}

/// The connector stopped (connections refused and cut), then listening again.
struct ConnectorStopped(Arc<Connector_>);

impl signatory_e2e::conformance::Outage for ConnectorStopped {
    fn take_down(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move { self.0.stop() })
    }
    fn bring_back(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move { self.0.resume() })
    }
}

/// The project's vault conformance suite through the `signatory` binary, the password given
/// only in ECAD's `YUBIHSM_PASSWORD`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_yubihsm_driver_conforms_on_the_mockhsm() {
    let connector = Connector_::start();
    signatory_e2e::conformance::run(signatory_e2e::conformance::Backend {
        vault: "hsm".to_owned(),
        yaml: format!(
            "    driver: yubihsm\n    config:\n      address: 127.0.0.1:{}\n      auth_key_id: 1\n",
            connector.port
        ),
        env: vec![("YUBIHSM_PASSWORD".to_owned(), "password".to_owned())],
        curves: vec![Curve::Ed25519, Curve::Secp256k1, Curve::P256],
        refused_curves: vec![Curve::Bls12_381],
        keys: Vec::new(),
        pooled: false,
        outage: Some(Box::new(ConnectorStopped(connector.clone()))),
    })
    .await
    .unwrap();
}
