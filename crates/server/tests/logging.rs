//! The per-request log line: its fields, its level, and the payload only when asked for.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use signatory_server::{api_app, app_state, ServerConfig};
use signatory_signer::policy::KeyPolicy;
use signatory_signer::service::{KeyEntry, SignService};
use signatory_signer::vault::Vault;
use signatory_stores::MemStore;
use signatory_vaults::MemVault;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tezos_crypto::{Curve, SecretKey};
use tower::ServiceExt;

use signatory_e2e::requests::OCTEZ_PREATTESTATION as PREATTESTATION;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn one_line_per_request_and_payload_only_when_configured() {
    let quiet = SecretKey::generate(Curve::Ed25519);
    let verbose = SecretKey::generate(Curve::Ed25519);
    let vault: Arc<dyn Vault> = Arc::new(MemVault::with_keys(
        "hsm1",
        [quiet.clone(), verbose.clone()],
    ));
    let mut keys = HashMap::new();
    for (key, log_payloads) in [(&quiet, false), (&verbose, true)] {
        keys.insert(
            key.public_key().hash(),
            KeyEntry {
                public_key: key.public_key(),
                vault: vault.clone(),
                policy: Some(KeyPolicy {
                    log_payloads,
                    ..KeyPolicy::default()
                }),
            },
        );
    }
    let service = Arc::new(SignService::new(keys, Arc::new(MemStore::new())));
    let cfg = ServerConfig::new(([127, 0, 0, 1], 0).into());
    let api = api_app(&cfg, app_state(&cfg, service).unwrap());

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let post = |pkh: String, body: &str| {
        Request::post(format!("/keys/{pkh}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let body = format!("\"{PREATTESTATION}\"");
    let quiet_pkh = quiet.public_key().hash().to_b58check();
    let resp = api
        .clone()
        .oneshot(post(quiet_pkh.clone(), &body))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let line = captured.take();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains(" INFO "), "{line}");
    for field in [
        format!("pkh={quiet_pkh}"),
        "vault=\"hsm1\"".to_string(),
        "kind=\"preattestation\"".to_string(),
        "chain=NetXxkAx4woPLyu".to_string(),
        "level=2".to_string(),
        "round=4".to_string(),
        "decision=\"signed\"".to_string(),
        "status=200".to_string(),
        "duration_ms=".to_string(),
    ] {
        assert!(line.contains(&field), "`{field}` missing from {line}");
    }
    assert!(!line.contains("payload"), "{line}");
    assert!(!line.contains(&PREATTESTATION[10..]), "{line}");

    // The same key again at the same height with other bytes: one warning line.
    let mut other = PREATTESTATION.to_string();
    other.replace_range(other.len() - 2.., "00");
    let resp = api
        .clone()
        .oneshot(post(quiet_pkh.clone(), &format!("\"{other}\"")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let line = captured.take();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains(" WARN "), "{line}");
    assert!(line.contains("decision=\"refused\""), "{line}");
    assert!(line.contains("reason=\"conflict\""), "{line}");
    assert!(line.contains("status=409"), "{line}");

    // A key configured to log payloads.
    let verbose_pkh = verbose.public_key().hash().to_b58check();
    let resp = api.clone().oneshot(post(verbose_pkh, &body)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let line = captured.take();
    assert!(
        line.contains(&format!("payload={PREATTESTATION}")),
        "{line}"
    );

    // Bad input is logged too, with what is known.
    let resp = api
        .clone()
        .oneshot(post(quiet_pkh.clone(), "\"zz\""))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let line = captured.take();
    assert!(line.contains("reason=\"bad_request\""), "{line}");
    assert!(line.contains(&format!("pkh={quiet_pkh}")), "{line}");
}
