//! The `ledger` driver against a fake transport: recorded exchanges
//! (`fixtures/ledger/*.apdu`, written from the Baking app's documentation and sources) are
//! replayed byte for byte; where a real key's answer is needed (public keys of every
//! curve, signatures that must verify), a model of the app answers from real secret keys
//! (`signatory_e2e::speculos::Model`, which the end-to-end suite also serves over TCP).
//! Any command the script or the model does not expect fails the test.
//!
//! No device and no Speculos emulator was available: this is all the driver was run
//! against.
#![cfg(feature = "ledger")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use parking_lot::Mutex;
use signatory_e2e::speculos::Model;
use signatory_signer::vault::{Vault, VaultError};
use signatory_vaults::ledger::apdu::{self, KeyId, LevelRound};
use signatory_vaults::ledger::transport::{Connector, Transport, TransportError};
use signatory_vaults::ledger::{self, LedgerSettings, LedgerTarget, LedgerVault};
use signatory_vaults::{open, OpenError};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tezos_crypto::{Curve, SecretKey, Signature, SigningVersion};

/// The preattestation of the top-level README.
const PREATTESTATION: &str = "12ed9d217c2f50673bab6b20dfb0a88ca93b4a0c72a34c807af5dffbece2cba3d2b509835f14006000000002000000041f1ebb39759cc957216f88fb4d005abc206fb00a53f8d57ac01be00c084cba97";

// ---------------------------------------------------------------------------------------
// The fake device

#[derive(Default)]
struct State {
    script: VecDeque<(Vec<u8>, Vec<u8>)>,
    model: Option<Model>,
    unexpected: Vec<String>,
    seen: Vec<Vec<u8>>,
    opens: usize,
    /// Fail this many exchanges as a vanished device would.
    fail_exchanges: usize,
    no_device: bool,
    delay: Duration,
    in_flight: usize,
    max_in_flight: usize,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<State>>);

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fake")
    }
}

impl Fake {
    fn script(name: &str) -> Fake {
        let fake = Fake::default();
        fake.0.lock().script = load(name);
        fake
    }

    fn model(model: Model) -> Fake {
        let fake = Fake::default();
        fake.0.lock().model = Some(model);
        fake
    }

    fn connector(&self) -> Box<dyn Connector> {
        Box::new(self.clone())
    }

    /// Every scripted exchange happened and nothing else was asked.
    fn assert_done(&self) {
        let state = self.0.lock();
        assert!(
            state.unexpected.is_empty(),
            "unexpected APDUs: {:?}",
            state.unexpected
        );
        assert!(
            state.script.is_empty(),
            "{} scripted exchanges never happened, next: {}",
            state.script.len(),
            hex::encode(&state.script[0].0)
        );
    }

    fn opens(&self) -> usize {
        self.0.lock().opens
    }
}

fn load(name: &str) -> VecDeque<(Vec<u8>, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ledger")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = VecDeque::new();
    let mut request = None;
    for line in text.lines().map(str::trim) {
        if let Some(h) = line.strip_prefix("> ") {
            assert!(request.is_none(), "{name}: two requests in a row");
            request = Some(hex::decode(h).unwrap());
        } else if let Some(h) = line.strip_prefix("< ") {
            let req = request.take().expect("an answer without a request");
            out.push_back((req, hex::decode(h).unwrap()));
        }
    }
    assert!(request.is_none(), "{name}: a request without an answer");
    out
}

impl Connector for Fake {
    fn candidates(&self) -> Result<Vec<String>, TransportError> {
        Ok(if self.0.lock().no_device {
            vec![]
        } else {
            vec!["fake0".to_owned()]
        })
    }

    fn open(&self, _candidate: &str) -> Result<Box<dyn Transport>, TransportError> {
        self.0.lock().opens += 1;
        Ok(Box::new(FakeTransport(self.clone())))
    }
}

#[derive(Debug)]
struct FakeTransport(Fake);

impl Transport for FakeTransport {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, TransportError> {
        let delay = {
            let mut state = self.0 .0.lock();
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
            state.delay
        };
        std::thread::sleep(delay);
        let mut state = self.0 .0.lock();
        state.in_flight -= 1;
        state.seen.push(request.to_vec());
        if state.fail_exchanges > 0 {
            state.fail_exchanges -= 1;
            return Err(TransportError::new("device unplugged (fake)"));
        }
        if let Some((expected, answer)) = state.script.pop_front() {
            if expected != request {
                let note = format!(
                    "got {} where the script has {}",
                    hex::encode(request),
                    hex::encode(&expected)
                );
                state.unexpected.push(note.clone());
                return Err(TransportError::new(note));
            }
            return Ok(answer);
        }
        let answer = match state.model.as_mut() {
            Some(model) => model.answer(request),
            None => Err("no script left and no model".to_owned()),
        };
        answer.map_err(|e| {
            let note = format!("{e}: {}", hex::encode(request));
            state.unexpected.push(note.clone());
            TransportError::new(note)
        })
    }
}

// ---------------------------------------------------------------------------------------
// Keys and settings

const ED: &str = "ed25519/44'/1729'/0'/0'";
const BIP: &str = "bip32-ed25519/0'/1'";
const SECP: &str = "secp256k1/0'/2'";
const P256: &str = "P-256/44'/1729'/0'/3'";

fn fixed_keys() -> Vec<(&'static str, SecretKey)> {
    vec![
        (
            ED,
            SecretKey::from_bytes(Curve::Ed25519, &[0x11; 32]).unwrap(),
        ),
        (
            BIP,
            SecretKey::from_bytes(Curve::Ed25519, &[0x22; 32]).unwrap(),
        ),
        (
            SECP,
            SecretKey::from_bytes(Curve::Secp256k1, &[0x33; 32]).unwrap(),
        ),
        (
            P256,
            SecretKey::from_bytes(Curve::P256, &[0x44; 32]).unwrap(),
        ),
    ]
}

fn model_of(keys: &[(&str, SecretKey)]) -> Model {
    let mut model = Model::new([1, 2, 5, 1]);
    for (id, key) in keys {
        let id = KeyId::parse(id).unwrap();
        model.keys.insert(
            (id.derivation.p2(), apdu::encode_path(&id.path)),
            key.clone(),
        );
    }
    model
}

fn settings(yaml: &str) -> LedgerSettings {
    LedgerSettings::from_settings("ledger", &serde_yaml_ng::from_str(yaml).unwrap()).unwrap()
}

fn settings_for(keys: &[&str]) -> LedgerSettings {
    settings(&format!(
        "keys: [{}]",
        keys.iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn vault(settings: &LedgerSettings, fake: &Fake) -> LedgerVault {
    LedgerVault::with_connector("ledger", settings, fake.connector())
}

// ---------------------------------------------------------------------------------------
// Configuration

#[test]
fn ecad_configurations_parse() {
    let s = settings(
        "id: 3944F7A0\nkeys: [\"bip32-ed25519/0'/0'\", \"secp256k1/0'/1'\"]\nclose_after: 3600s\ntransport: tcp://127.0.0.1:9999\n",
    );
    assert_eq!(s.id.as_deref(), Some("3944f7a0"));
    assert_eq!(s.keys[0].to_string(), "bip32-ed25519/44'/1729'/0'/0'");
    assert_eq!(s.keys[1].to_string(), "secp256k1/44'/1729'/0'/1'");
    assert_eq!(s.close_after, Duration::from_secs(3600));
    assert_eq!(
        s.transport,
        ledger::transport::TransportKind::Tcp("127.0.0.1:9999".to_owned())
    );
    let defaults = settings("keys: [\"ed25519/0'/0'\"]");
    assert_eq!(defaults.id, None);
    assert_eq!(defaults.close_after, ledger::DEFAULT_CLOSE_AFTER);
    assert_eq!(defaults.transport, ledger::transport::TransportKind::Usb);
}

#[tokio::test]
async fn bad_settings_name_the_key_to_fix() {
    let cases = [
        ("null", "vaults.v.config"),
        ("{keys: []}", "vaults.v.config.keys"),
        ("{keys: [\"ed25519/0'/0'\"], pin: 1}", "vaults.v.config.pin"),
        (
            "{keys: [\"ed25519/0'/0'\", \"ed25519/0/1\"]}",
            "vaults.v.config.keys[1]",
        ),
        ("{keys: [\"bls12_381/0'/0'\"]}", "vaults.v.config.keys[0]"),
        (
            "{keys: [\"ed25519/0'/0'\"], close_after: soon}",
            "vaults.v.config.close_after",
        ),
        (
            "{keys: [\"ed25519/0'/0'\"], transport: ble}",
            "vaults.v.config.transport",
        ),
        (
            "{keys: [\"ed25519/0'/0'\"], id: zesty-koala-usable-kiwi}",
            "vaults.v.config.id",
        ),
    ];
    for (yaml, key_path) in cases {
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
        let err = open("v", "ledger", &value).await.unwrap_err();
        match &err {
            OpenError::Config { key_path: at, .. } => assert_eq!(at, key_path, "{yaml}: {err}"),
            other => panic!("{yaml}: {other}"),
        }
    }
    assert!(signatory_vaults::driver_names().contains(&"ledger"));
    // A good configuration opens without touching any device.
    let value = serde_yaml_ng::from_str("{keys: [\"ed25519/0'/0'\"]}").unwrap();
    let vault = open("v", "ledger", &value).await.unwrap();
    assert_eq!(vault.driver(), "ledger");
}

// ---------------------------------------------------------------------------------------
// Listing and signing

#[tokio::test]
async fn keys_of_every_curve_are_listed_and_sign_verifiably() {
    let keys = fixed_keys();
    for high_s in [false, true] {
        let mut model = model_of(&keys);
        model.high_s = high_s;
        let fake = Fake::model(model);
        let vault = vault(&settings_for(&[ED, BIP, SECP, P256]), &fake);
        let listed = vault.list_keys().await.unwrap();
        assert_eq!(listed.len(), 4);
        for ((id, secret), key) in keys.iter().zip(&listed) {
            assert_eq!(key.public_key, secret.public_key(), "{id}");
            assert_eq!(
                key.label.as_deref(),
                Some(KeyId::parse(id).unwrap().to_string().as_str())
            );
            assert_eq!(key.vault, "ledger");
        }
        let message = hex::decode(PREATTESTATION).unwrap();
        for key in &listed {
            let sig = vault
                .sign(&key.pkh, &message, SigningVersion::V3)
                .await
                .unwrap();
            assert!(sig.is_low_s(), "{}", key.pkh);
            key.public_key
                .verify(&message, &sig, SigningVersion::V3)
                .unwrap();
        }
        fake.assert_done();
        // One device opened once: VERSION, 4 public keys, 4 × 2 SIGN commands.
        assert_eq!(fake.opens(), 1);
        assert_eq!(fake.0.lock().seen.len(), 1 + 4 + 8);
    }
    assert!(signs_deterministically_only_ed25519());
}

fn signs_deterministically_only_ed25519() -> bool {
    let vault = vault(&settings_for(&[ED]), &Fake::default());
    vault.signs_deterministically(Curve::Ed25519)
        && !vault.signs_deterministically(Curve::Secp256k1)
        && !vault.signs_deterministically(Curve::P256)
}

/// Log lines written while the test runs (on its own thread: a current-thread runtime).
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_key_the_device_refuses_is_skipped_and_the_others_listed() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let keys = fixed_keys();
    let mut model = model_of(&keys);
    let p256 = KeyId::parse(P256).unwrap();
    model.refuse.insert(
        (p256.derivation.p2(), apdu::encode_path(&p256.path)),
        0x6b00,
    );
    let fake = Fake::model(model);
    let vault = vault(&settings_for(&[ED, BIP, SECP, P256]), &fake);
    let listed = vault.list_keys().await.unwrap();
    let expected: Vec<_> = keys[..3].iter().map(|(_, k)| k.public_key()).collect();
    let got: Vec<_> = listed.iter().map(|k| k.public_key.clone()).collect();
    assert_eq!(got, expected);
    fake.assert_done();
    let logged = String::from_utf8(lines.0.lock().clone()).unwrap();
    assert_eq!(logged.lines().count(), 1, "{logged}");
    assert!(logged.contains("WARN"), "{logged}");
    assert!(logged.contains("P-256/44'/1729'/0'/3'"), "{logged}");
    assert!(logged.contains("0x6b00"), "{logged}");
    // The skipped key is unknown to the vault.
    let err = vault
        .sign(&keys[3].1.public_key().hash(), b"\x12", SigningVersion::V3)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::KeyNotFound { .. }), "{err}");
}

#[tokio::test]
async fn a_refusal_0x6985_is_a_permanent_error() {
    let fake = Fake::script("sign_rejected.apdu");
    let vault = vault(&settings_for(&[ED]), &fake);
    let listed = vault.list_keys().await.unwrap();
    let message = hex::decode(PREATTESTATION).unwrap();
    let err = vault
        .sign(&listed[0].pkh, &message, SigningVersion::V3)
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(matches!(err, VaultError::Backend { .. }), "{err}");
    assert!(err.to_string().contains("0x6985"), "{err}");
    fake.assert_done();
    // A refusal is the app's answer, not a broken link: the device stays open.
    assert!(vault.is_device_open());
}

#[tokio::test]
async fn a_locked_device_is_reported_as_locked() {
    let fake = Fake::script("locked.apdu");
    let vault = vault(&settings_for(&[ED]), &fake);
    let err = vault.list_keys().await.unwrap_err();
    assert!(matches!(err, VaultError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("PIN"), "{err}");
    fake.assert_done();
}

/// The Tezos Wallet app answers the same commands, but keeps no watermark and asks for a
/// button press on every signature: refused, the app to open named.
#[tokio::test]
async fn the_wallet_app_is_refused() {
    let keys = fixed_keys();
    let mut model = model_of(&keys);
    model.version = [0, 3, 0, 0];
    let fake = Fake::model(model);
    let vault = vault(&settings_for(&[ED]), &fake);
    let err = vault.list_keys().await.unwrap_err();
    assert!(err.to_string().contains("not Tezos Baking"), "{err}");
    assert!(
        err.to_string().contains("open the Tezos Baking app"),
        "{err}"
    );
}

#[tokio::test]
async fn a_device_that_went_away_is_transient_and_the_next_call_recovers() {
    let keys = fixed_keys();
    let fake = Fake::model(model_of(&keys));
    let vault = vault(&settings_for(&[ED, SECP]), &fake);
    let listed = vault.list_keys().await.unwrap();
    fake.0.lock().fail_exchanges = 1;
    let message = hex::decode(PREATTESTATION).unwrap();
    let err = vault
        .sign(&listed[1].pkh, &message, SigningVersion::V3)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(!vault.is_device_open());
    assert!(vault.health().await.unwrap_err().is_transient());
    let sig = vault
        .sign(&listed[1].pkh, &message, SigningVersion::V3)
        .await
        .unwrap();
    listed[1]
        .public_key
        .verify(&message, &sig, SigningVersion::V3)
        .unwrap();
    assert_eq!(fake.opens(), 2);
    assert!(vault.health().await.is_ok());
    fake.assert_done();

    // No device at all: transient too, and it recovers once one is there.
    fake.0.lock().fail_exchanges = 1;
    assert!(vault
        .sign(&listed[0].pkh, &message, SigningVersion::V3)
        .await
        .unwrap_err()
        .is_transient());
    fake.0.lock().no_device = true;
    let err = vault
        .sign(&listed[0].pkh, &message, SigningVersion::V3)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("no Ledger device"), "{err}");
    fake.0.lock().no_device = false;
    vault
        .sign(&listed[0].pkh, &message, SigningVersion::V3)
        .await
        .unwrap();
    fake.assert_done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_signs_are_serialised() {
    let keys = fixed_keys();
    let fake = Fake::model(model_of(&keys));
    let vault = Arc::new(vault(&settings_for(&[ED, BIP, SECP, P256]), &fake));
    let listed = vault.list_keys().await.unwrap();
    fake.0.lock().delay = Duration::from_millis(5);
    let message = hex::decode(PREATTESTATION).unwrap();
    let mut tasks = Vec::new();
    for round in 0..4 {
        for key in listed.clone() {
            let vault = Arc::clone(&vault);
            let mut message = message.clone();
            message[60] = round;
            tasks.push(tokio::spawn(async move {
                let sig: Signature = vault
                    .sign(&key.pkh, &message, SigningVersion::V3)
                    .await
                    .unwrap();
                key.public_key
                    .verify(&message, &sig, SigningVersion::V3)
                    .unwrap();
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let state = fake.0.lock();
    assert_eq!(state.max_in_flight, 1, "two exchanges overlapped");
    // Every SIGN's key packet is followed by its own message packet.
    let signs: Vec<&Vec<u8>> = state
        .seen
        .iter()
        .filter(|c| c[1] == apdu::ins::SIGN)
        .collect();
    assert_eq!(signs.len(), 32);
    for pair in signs.chunks(2) {
        assert_eq!((pair[0][2], pair[1][2]), (apdu::P1_FIRST, 0x81));
    }
    assert!(state.unexpected.is_empty(), "{:?}", state.unexpected);
}

#[tokio::test]
async fn the_device_is_released_after_close_after_and_reopened() {
    let keys = fixed_keys();
    let fake = Fake::model(model_of(&keys));
    let vault = vault(
        &settings("keys: [\"ed25519/0'/0'\"]\nclose_after: 100ms"),
        &fake,
    );
    let listed = vault.list_keys().await.unwrap();
    assert!(vault.is_device_open());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!vault.is_device_open(), "the idle device was not released");
    vault
        .sign(&listed[0].pkh, b"\x12abc", SigningVersion::V3)
        .await
        .unwrap();
    assert_eq!(fake.opens(), 2);
    fake.assert_done();
}

#[tokio::test]
async fn a_call_past_the_deadline_is_a_transient_error() {
    let keys = fixed_keys();
    let fake = Fake::model(model_of(&keys));
    fake.0.lock().delay = Duration::from_millis(300);
    let vault = vault(&settings_for(&[ED]), &fake).with_deadline(Duration::from_millis(100));
    let err = vault.list_keys().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("confirmation"), "{err}");
}

#[tokio::test]
async fn a_message_longer_than_one_packet_is_refused_by_the_app() {
    let keys = fixed_keys();
    let fake = Fake::model(model_of(&keys));
    let vault = vault(&settings_for(&[ED]), &fake);
    let listed = vault.list_keys().await.unwrap();
    let long = [vec![0x11], vec![0u8; 300]].concat();
    let err = vault
        .sign(&listed[0].pkh, &long, SigningVersion::V3)
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("0x9405"), "{err}");
    // 235 bytes (app 2.5.1) are still one packet.
    vault
        .sign(&listed[0].pkh, &[0x11; 235], SigningVersion::V3)
        .await
        .unwrap();
    let state = fake.0.lock();
    let last = state.seen.last().unwrap();
    assert_eq!((last[2], last[4]), (0x81, 235));
}

#[tokio::test]
async fn the_device_id_picks_the_device() {
    let fake = Fake::script("device_id.apdu");
    let v = vault(&settings("id: edb703b7\nkeys: [\"ed25519/0'/0'\"]"), &fake);
    assert_eq!(v.list_keys().await.unwrap().len(), 1);
    fake.assert_done();

    // Another id: the device is not the one configured.
    let mut script = load("device_id.apdu");
    script.truncate(2);
    let fake = Fake::default();
    fake.0.lock().script = script;
    let v = vault(&settings("id: 01020304\nkeys: [\"ed25519/0'/0'\"]"), &fake);
    let err = v.list_keys().await.unwrap_err();
    assert!(err.to_string().contains("with id 01020304"), "{err}");
    fake.assert_done();
}

#[tokio::test]
async fn generating_and_importing_are_unsupported() {
    let vault = vault(&settings_for(&[ED]), &Fake::default());
    for err in [
        vault.generate(Curve::Ed25519).await.unwrap_err(),
        vault
            .import(SecretKey::generate(Curve::Ed25519))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, VaultError::Unsupported { .. }), "{err}");
    }
}

// ---------------------------------------------------------------------------------------
// The CLI's library functions

fn target(fake: &Fake) -> LedgerTarget {
    LedgerTarget::with_connector(fake.connector(), None)
}

#[test]
fn the_documented_authorize_baking_exchange_is_replayed() {
    let fake = Fake::script("authorize_baking.apdu");
    let pk = ledger::authorize_baking(&target(&fake), &KeyId::parse(ED).unwrap()).unwrap();
    assert_eq!(pk, fixed_keys()[0].1.public_key());
    fake.assert_done();
}

#[test]
fn setup_baking_sends_chain_levels_and_path() {
    let fake = Fake::script("setup_baking.apdu");
    let chain = tezos_crypto::ChainId::from_b58check("NetXdQprcVkpaWU").unwrap();
    let pk =
        ledger::setup_baking(&target(&fake), &KeyId::parse(ED).unwrap(), chain.0, 5000, 0).unwrap();
    assert_eq!(
        pk.hash().to_string(),
        "tz1SuVm2EtvzCVfkgpgDWNnvXFNJpL6z1kCC"
    );
    fake.assert_done();
}

#[test]
fn deauthorize_and_set_high_watermark() {
    let fake = Fake::script("deauthorize.apdu");
    ledger::deauthorize_baking(&target(&fake)).unwrap();
    fake.assert_done();
    let fake = Fake::script("set_high_watermark.apdu");
    ledger::set_high_watermark(&target(&fake), 5000).unwrap();
    fake.assert_done();
}

#[test]
fn get_high_watermark_in_both_layouts() {
    let fake = Fake::script("get_high_watermark.apdu");
    let hwm = ledger::get_high_watermark(&target(&fake)).unwrap();
    assert_eq!(
        hwm.main,
        LevelRound {
            level: 5000,
            round: Some(2)
        }
    );
    assert_eq!(hwm.test.level, 0);
    assert_eq!(
        tezos_crypto::ChainId(hwm.chain_id).to_string(),
        "NetXdQprcVkpaWU"
    );
    fake.assert_done();
    let fake = Fake::script("get_high_watermark_legacy.apdu");
    let hwm = ledger::get_high_watermark(&target(&fake)).unwrap();
    assert_eq!(
        hwm.main,
        LevelRound {
            level: 5000,
            round: None
        }
    );
    fake.assert_done();
}

#[test]
fn an_unexpected_command_fails_the_exchange() {
    // The deauthorize script, but the CLI asks for the watermarks instead.
    let fake = Fake::script("deauthorize.apdu");
    let err = ledger::get_high_watermark(&target(&fake)).unwrap_err();
    assert!(err.to_string().contains("800b000000"), "{err}");
    assert_eq!(fake.0.lock().unexpected.len(), 1);
}

#[tokio::test]
async fn an_emulator_that_is_not_running_is_a_transient_error() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = settings(&format!(
        "keys: [\"ed25519/0'/0'\"]\ntransport: tcp://127.0.0.1:{port}"
    ));
    let vault = LedgerVault::open("ledger", &s);
    let err = vault.list_keys().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("tcp 127.0.0.1"), "{err}");
}
