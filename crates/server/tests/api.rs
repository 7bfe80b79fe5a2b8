//! The HTTP API driven in-process (tower `oneshot`) over the real signing service, the
//! in-memory watermark store and the in-memory vault.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use signatory_e2e::requests::octez_preattestation as preattestation;
use signatory_server::{api_app, app_state, utility_router, ServerConfig};
use signatory_signer::policy::KeyPolicy;
use signatory_signer::service::{KeyEntry, SignService};
use signatory_signer::vault::{Vault, VaultError, VaultKey};
use signatory_stores::MemStore;
use signatory_vaults::MemVault;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use tezos_crypto::{Curve, PublicKey, PublicKeyHash, SecretKey, Signature, SigningVersion};
use tower::{Service, ServiceExt};

/// A vault that fails every call, for health and 5xx paths.
#[derive(Debug)]
struct BrokenVault;

#[async_trait]
impl Vault for BrokenVault {
    fn name(&self) -> &str {
        "broken"
    }
    fn driver(&self) -> &'static str {
        "test"
    }
    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        Ok(vec![])
    }
    async fn sign(
        &self,
        _pkh: &PublicKeyHash,
        _message: &[u8],
        _version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        Err(VaultError::backend("broken", false, "device unplugged"))
    }
    async fn prove_possession(
        &self,
        _pkh: &PublicKeyHash,
        _override_pk: Option<&PublicKey>,
    ) -> Result<Signature, VaultError> {
        Err(VaultError::Unsupported {
            vault: "broken".into(),
            driver: "test",
            operation: "proof of possession",
        })
    }
    async fn health(&self) -> Result<(), VaultError> {
        Err(VaultError::backend("broken", true, "device unplugged"))
    }
}

struct Fixture {
    baker: SecretKey,
    wallet: SecretKey,
    bls: SecretKey,
    disabled: SecretKey,
    broken: PublicKeyHash,
    service: Arc<SignService>,
}

fn fixture(client_policy: Option<PublicKeyHash>) -> Fixture {
    fixture_with_store(client_policy, MemStore::new())
}

fn fixture_with_store(client_policy: Option<PublicKeyHash>, store: MemStore) -> Fixture {
    let baker = SecretKey::generate(Curve::Ed25519);
    let wallet = SecretKey::generate(Curve::Secp256k1);
    let bls = SecretKey::generate(Curve::Bls12_381);
    let disabled = SecretKey::generate(Curve::P256);
    let broken_key = SecretKey::generate(Curve::Ed25519);
    let vault: Arc<dyn Vault> = Arc::new(MemVault::with_keys(
        "mem",
        [baker.clone(), wallet.clone(), bls.clone(), disabled.clone()],
    ));
    let broken: Arc<dyn Vault> = Arc::new(BrokenVault);
    let mut keys = HashMap::new();
    let baker_policy = KeyPolicy {
        authorized_clients: client_policy.map(|c| [c].into()),
        ..KeyPolicy::default()
    };
    keys.insert(
        baker.public_key().hash(),
        KeyEntry {
            public_key: baker.public_key(),
            vault: vault.clone(),
            policy: Some(baker_policy),
        },
    );
    keys.insert(
        wallet.public_key().hash(),
        KeyEntry {
            public_key: wallet.public_key(),
            vault: vault.clone(),
            policy: Some(KeyPolicy {
                allowed_requests: ["generic".to_string()].into(),
                allowed_operations: ["transaction".to_string()].into(),
                ..KeyPolicy::default()
            }),
        },
    );
    keys.insert(
        bls.public_key().hash(),
        KeyEntry {
            public_key: bls.public_key(),
            vault: vault.clone(),
            policy: Some(KeyPolicy {
                allow_proof_of_possession: true,
                ..KeyPolicy::default()
            }),
        },
    );
    keys.insert(
        disabled.public_key().hash(),
        KeyEntry {
            public_key: disabled.public_key(),
            vault: vault.clone(),
            policy: None,
        },
    );
    keys.insert(
        broken_key.public_key().hash(),
        KeyEntry {
            public_key: broken_key.public_key(),
            vault: broken,
            policy: Some(KeyPolicy::default()),
        },
    );
    let service = Arc::new(SignService::new(keys, Arc::new(store)));
    Fixture {
        baker,
        wallet,
        bls,
        disabled,
        broken: broken_key.public_key().hash(),
        service,
    }
}

fn cfg() -> ServerConfig {
    ServerConfig::new(([127, 0, 0, 1], 0).into())
}

type Api = tower_http::normalize_path::NormalizePath<Router>;

fn routers(cfg: &ServerConfig, f: &Fixture) -> (Api, Router) {
    let state = app_state(cfg, f.service.clone()).unwrap();
    (api_app(cfg, state.clone()), utility_router(state))
}

async fn call<S>(app: &S, method: &str, uri: &str, body: Option<String>) -> (StatusCode, Value)
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone,
{
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

async fn sign(app: &Api, pkh: &PublicKeyHash, bytes: &[u8], query: &str) -> (StatusCode, Value) {
    let uri = format!("/keys/{pkh}{query}");
    call(
        app,
        "POST",
        &uri,
        Some(format!("\"{}\"", hex::encode(bytes))),
    )
    .await
}

fn assert_octez_error(body: &Value, needle: &str) {
    let first = &body[0];
    assert_eq!(first["kind"], "temporary", "{body}");
    assert_eq!(first["id"], "failure", "{body}");
    let msg = first["msg"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "`{msg}` should mention `{needle}`");
}

#[tokio::test]
async fn public_keys_known_keys_and_lookups() {
    let f = fixture(None);
    let (api, _) = routers(&cfg(), &f);
    let pkh = f.baker.public_key().hash();
    let (s, body) = call(&api, "GET", &format!("/keys/{pkh}"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["public_key"], f.baker.public_key().to_b58check());
    // A key held by a vault but not enabled still has its public key served.
    let disabled = f.disabled.public_key().hash();
    let (s, _) = call(&api, "GET", &format!("/keys/{disabled}"), None).await;
    assert_eq!(s, StatusCode::OK);
    let unknown = SecretKey::generate(Curve::Ed25519).public_key().hash();
    let (s, body) = call(&api, "GET", &format!("/keys/{unknown}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_octez_error(&body, "not known");
    let (s, body) = call(&api, "GET", "/keys/tz1notakey", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_octez_error(&body, "not a public key hash");
    // Listing the keys is off unless the configuration allows it, as in Octez.
    let (s, body) = call(&api, "GET", "/known_keys", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_octez_error(&body, "allow_list_known_keys: true");
    let mut listing = cfg();
    listing.allow_list_known_keys = true;
    let (listing_api, _) = routers(&listing, &f);
    let (s, body) = call(&listing_api, "GET", "/known_keys", None).await;
    assert_eq!(s, StatusCode::OK);
    let known: Vec<String> = serde_json::from_value(body["known_keys"].clone()).unwrap();
    assert!(known.contains(&pkh.to_b58check()));
    assert!(!known.contains(&disabled.to_b58check()));
    let (s, body) = call(&api, "GET", "/authorized_keys", None).await;
    assert_eq!((s, body), (StatusCode::OK, serde_json::json!({})));
    let (s, _) = call(&api, "GET", "/nothing/here", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn watermark_refuses_conflicts_and_replays_identical_bytes() {
    let f = fixture(None);
    let (api, _) = routers(&cfg(), &f);
    let pkh = f.baker.public_key().hash();
    let first = preattestation(100, 1);
    let (s, body) = sign(&api, &pkh, &first, "?version=2&unknown=ignored").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let sig = Signature::from_b58check(body["signature"].as_str().unwrap()).unwrap();
    assert!(body["signature"].as_str().unwrap().starts_with("edsig"));
    f.baker
        .public_key()
        .verify(&first, &sig, SigningVersion::V2)
        .unwrap();
    // Identical bytes: the very same signature.
    let (s, again) = sign(&api, &pkh, &first, "").await;
    assert_eq!(
        (s, &again["signature"]),
        (StatusCode::OK, &body["signature"])
    );
    // Same level and round, other payload: refused.
    let (s, body) = sign(&api, &pkh, &preattestation(100, 2), "").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_octez_error(&body, "already signed with different data");
    // Below: refused. Above: signed.
    let (s, _) = sign(&api, &pkh, &preattestation(99, 1), "").await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = sign(&api, &pkh, &preattestation(101, 7), "").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn bad_input_is_400_and_nothing_is_recorded() {
    let f = fixture(None);
    let (api, _) = routers(&cfg(), &f);
    let pkh = f.baker.public_key().hash();
    let uri = format!("/keys/{pkh}");
    for body in ["not json", "\"zz\"", "\"\"", "\"12ed\"", "[1,2]"] {
        let (s, resp) = call(&api, "POST", &uri, Some(body.to_string())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert!(resp[0]["msg"].is_string());
    }
    let (s, _) = sign(&api, &pkh, &preattestation(5, 1), "?version=7").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Nothing above was recorded: the first real request at level 5 is signed.
    let (s, _) = sign(&api, &pkh, &preattestation(5, 1), "").await;
    assert_eq!(s, StatusCode::OK);
}

/// Every refusal that needs no signature comes before the watermark store: a tz4 request
/// with version 0 (no BLS scheme) is refused and the same height then signs.
#[tokio::test]
async fn a_tz4_request_refused_for_its_version_leaves_the_height_free() {
    let f = fixture(None);
    let (api, _) = routers(&cfg(), &f);
    let tz4 = f.bls.public_key().hash();
    // Another payload at the same level and round than the baker's real request: had
    // the refused one reserved the height, the real one would be refused (409).
    let refused = signatory_e2e::requests::Consensus::new(12, 0, 3).bls_attestation();
    let (s, body) = sign(&api, &tz4, &refused, "?version=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_octez_error(&body, "signing version 0");
    let bytes = signatory_e2e::requests::Consensus::new(12, 0, 4).bls_attestation();
    let (s, body) = sign(&api, &tz4, &bytes, "?version=3").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let signature = Signature::from_b58check(body["signature"].as_str().unwrap()).unwrap();
    f.bls
        .public_key()
        .verify(&bytes, &signature, SigningVersion::V3)
        .unwrap();
}

#[tokio::test]
async fn policy_refusals_are_403_and_unknown_key_404() {
    let f = fixture(None);
    let (api, _) = routers(&cfg(), &f);
    // A valid generic operation: a delegation withdrawal from the wallet.
    let generic = {
        let mut b = vec![0x03];
        b.extend_from_slice(&[7u8; 32]); // branch
        b.push(110); // delegation
        b.extend_from_slice(&f.wallet.public_key().hash().to_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]); // fee, counter, gas, storage
        b.push(0); // no delegate
        b
    };
    // The baker may not sign generic operations at all …
    let baker = f.baker.public_key().hash();
    let (s, body) = sign(&api, &baker, &generic, "").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_octez_error(&body, "request kind `generic`");
    // … the wallet may, but not this operation kind.
    let wallet = f.wallet.public_key().hash();
    let (s, body) = sign(&api, &wallet, &generic, "").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_octez_error(&body, "operation `delegation`");
    // The wallet may not sign a preattestation.
    let (s, body) = sign(&api, &wallet, &preattestation(1, 1), "").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_octez_error(&body, "preattestation");
    // A key in the vault but not in the configuration signs nothing.
    let disabled = f.disabled.public_key().hash();
    let (s, body) = sign(&api, &disabled, &preattestation(1, 1), "").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_octez_error(&body, "not enabled");
    let unknown = SecretKey::generate(Curve::Ed25519).public_key().hash();
    let (s, _) = sign(&api, &unknown, &preattestation(1, 1), "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn backend_failure_is_5xx_and_blocks_a_second_payload() {
    let f = fixture(None);
    let (api, _) = routers(&cfg(), &f);
    let (s, body) = sign(&api, &f.broken, &preattestation(10, 1), "").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_octez_error(&body, "signing backend failed");
    // The watermark advanced before the backend failed: another payload at that height
    // is refused even though nothing was signed.
    let (s, _) = sign(&api, &f.broken, &preattestation(10, 2), "").await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The same bytes again are not refused: they reach the backend again (a retry after a
    // transient failure signs).
    let (s, body) = sign(&api, &f.broken, &preattestation(10, 1), "").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_octez_error(&body, "signing backend failed");
}

#[tokio::test]
async fn global_authentication() {
    let f = fixture(None);
    let client = SecretKey::generate(Curve::Secp256k1);
    let stranger = SecretKey::generate(Curve::Ed25519);
    let mut c = cfg();
    c.authorized_keys = Some(vec![client.public_key()]);
    let (api, _) = routers(&c, &f);
    let pkh = f.baker.public_key().hash();
    let bytes = preattestation(20, 1);
    let auth = |k: &SecretKey| {
        let signed = signatory_server::auth::authenticated_bytes(&pkh, &bytes);
        k.sign(&signed, SigningVersion::default())
            .unwrap()
            .to_b58check()
    };
    let (s, body) = sign(&api, &pkh, &bytes, "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_octez_error(&body, "authentication required");
    let (s, _) = sign(
        &api,
        &pkh,
        &bytes,
        &format!("?authentication={}", auth(&stranger)),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = sign(&api, &pkh, &bytes, "?authentication=garbage").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, body) = sign(
        &api,
        &pkh,
        &bytes,
        &format!("?authentication={}", auth(&client)),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, body) = call(&api, "GET", "/authorized_keys", None).await;
    assert_eq!(
        body["authorized_keys"],
        serde_json::json!([client.public_key().hash().to_b58check()])
    );
}

fn auth_for(k: &SecretKey, pkh: &PublicKeyHash, bytes: &[u8]) -> String {
    let signed = signatory_server::auth::authenticated_bytes(pkh, bytes);
    let sig = k.sign(&signed, SigningVersion::default()).unwrap();
    format!("?authentication={}", sig.to_b58check())
}

#[tokio::test]
async fn per_key_authorized_clients() {
    let client = SecretKey::generate(Curve::P256);
    let other = SecretKey::generate(Curve::P256);
    let f = fixture(Some(client.public_key().hash()));
    let mut c = cfg();
    // `other` is a known client key, but no policy names it and there is no global list.
    c.per_key_authorized_keys = vec![client.public_key(), other.public_key()];
    let (api, _) = routers(&c, &f);
    let pkh = f.baker.public_key().hash();
    let bytes = preattestation(30, 1);
    // Unauthenticated: the key's policy requires a client.
    let (s, body) = sign(&api, &pkh, &bytes, "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_octez_error(&body, "authentication is required");
    // Authenticated by a key that this signing key does not accept.
    let (s, body) = sign(&api, &pkh, &bytes, &auth_for(&other, &pkh, &bytes)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_octez_error(&body, "not from a client key authorized");
    let (s, body) = sign(&api, &pkh, &bytes, &auth_for(&client, &pkh, &bytes)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // Other keys need no authentication here (no global list).
    let bls = f.bls.public_key().hash();
    let (s, _) = sign(&api, &bls, &preattestation(30, 1), "").await;
    assert_eq!(s, StatusCode::OK);
    // The list stays empty: an Octez client of another key that found `client` listed
    // would refuse to sign without that key in its wallet.
    let (_, body) = call(&api, "GET", "/authorized_keys", None).await;
    assert_eq!(body, serde_json::json!({}));
}

#[tokio::test]
async fn a_client_is_authorized_only_where_configured() {
    // `baker` names `client`; the global list names `global`.
    let client = SecretKey::generate(Curve::Ed25519);
    let global = SecretKey::generate(Curve::Secp256k1);
    let f = fixture(Some(client.public_key().hash()));
    let mut c = cfg();
    c.authorized_keys = Some(vec![global.public_key()]);
    c.per_key_authorized_keys = vec![client.public_key()];
    let (api, _) = routers(&c, &f);
    let baker = f.baker.public_key().hash();
    let bls = f.bls.public_key().hash();
    let bytes = preattestation(60, 1);
    // `client` may use `baker` only.
    let (s, body) = sign(&api, &baker, &bytes, &auth_for(&client, &baker, &bytes)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _) = sign(&api, &bls, &bytes, &auth_for(&client, &bls, &bytes)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // `global` may use `bls`, but not `baker`, whose policy names its own clients.
    let (s, _) = sign(&api, &bls, &bytes, &auth_for(&global, &bls, &bytes)).await;
    assert_eq!(s, StatusCode::OK);
    let next = preattestation(61, 1);
    let (s, body) = sign(&api, &baker, &next, &auth_for(&global, &baker, &next)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_octez_error(&body, "is not authorized for this key");
    // The list served is the union.
    let (_, body) = call(&api, "GET", "/authorized_keys", None).await;
    let mut listed: Vec<String> = serde_json::from_value(body["authorized_keys"].clone()).unwrap();
    listed.sort();
    let mut expected = vec![
        client.public_key().hash().to_b58check(),
        global.public_key().hash().to_b58check(),
    ];
    expected.sort();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn failed_authentication_never_moves_the_watermark() {
    let client = SecretKey::generate(Curve::Ed25519);
    let stranger = SecretKey::generate(Curve::Ed25519);
    let f = fixture(None);
    let mut c = cfg();
    c.authorized_keys = Some(vec![client.public_key()]);
    let (api, _) = routers(&c, &f);
    let pkh = f.baker.public_key().hash();
    // Refused requests at level 70 with payload 1 ...
    let first = preattestation(70, 1);
    let (s, _) = sign(&api, &pkh, &first, &auth_for(&stranger, &pkh, &first)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = sign(&api, &pkh, &first, "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // ... leave level 70 free for another payload.
    let second = preattestation(70, 2);
    let (s, body) = sign(&api, &pkh, &second, &auth_for(&client, &pkh, &second)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn base_path_and_body_limit() {
    let f = fixture(None);
    let mut c = cfg();
    c.base_path = "/signer/".into();
    c.body_limit = 1024;
    let (api, _) = routers(&c, &f);
    let pkh = f.baker.public_key().hash();
    let (s, _) = call(&api, "GET", &format!("/signer/keys/{pkh}"), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&api, "GET", &format!("/keys/{pkh}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Trailing slashes are tolerated.
    let (s, _) = call(&api, "GET", &format!("/signer/keys/{pkh}/"), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&api, "GET", "/signer/authorized_keys/", None).await;
    assert_eq!(s, StatusCode::OK);
    let big = format!("\"{}\"", "00".repeat(4096));
    let (s, body) = call(&api, "POST", &format!("/signer/keys/{pkh}"), Some(big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_octez_error(&body, "too large");
    // Just under the limit: read, then refused for what it is (not a valid request).
    let under = format!("\"{}\"", "00".repeat(500));
    let (s, _) = call(&api, "POST", &format!("/signer/keys/{pkh}"), Some(under)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // A signing request through the prefix, with a trailing slash.
    let bytes = preattestation(3, 1);
    let uri = format!("/signer/keys/{pkh}/?version=1");
    let (s, body) = call(
        &api,
        "POST",
        &uri,
        Some(format!("\"{}\"", hex::encode(&bytes))),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn default_limit_accepts_the_largest_operation() {
    let f = fixture(None);
    let (api, _) = routers(&cfg(), &f);
    let pkh = f.wallet.public_key().hash();
    // 32 KiB of bytes (64 KiB of hex) gets through the limit to the decoder.
    let mut big = vec![0x03];
    big.extend(std::iter::repeat_n(0u8, 32 * 1024 - 1));
    let (s, body) = sign(&api, &pkh, &big, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_octez_error(&body, "decode");
}

#[tokio::test]
async fn method_not_allowed_has_the_octez_shape() {
    let f = fixture(None);
    let (api, _) = routers(&cfg(), &f);
    let pkh = f.baker.public_key().hash();
    let (s, body) = call(&api, "DELETE", &format!("/keys/{pkh}"), None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_octez_error(&body, "method not allowed");
}

#[tokio::test]
async fn proof_of_possession() {
    let f = fixture(None);
    let (api, _) = routers(&cfg(), &f);
    let bls = f.bls.public_key();
    let (s, body) = call(
        &api,
        "GET",
        &format!("/bls_prove_possession/{}", bls.hash()),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let proof = Signature::from_b58check(body["bls_prove_possession"].as_str().unwrap()).unwrap();
    bls.verify_proof_of_possession(&proof).unwrap();
    // With an override, this key signs the other key's bytes.
    let other = SecretKey::generate(Curve::Bls12_381).public_key();
    let uri = format!(
        "/bls_prove_possession/{}?bls_pk={}",
        bls.hash(),
        other.to_b58check()
    );
    let (s, body) = call(&api, "GET", &uri, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let proof = Signature::from_b58check(body["bls_prove_possession"].as_str().unwrap()).unwrap();
    bls.verify_proof_of_possession_over(&proof, &other).unwrap();
    // Not allowed for a key without the flag, nor for a non-BLS key.
    let (s, _) = call(
        &api,
        "GET",
        &format!("/bls_prove_possession/{}", f.baker.public_key().hash()),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&api, "GET", &format!("{uri}x"), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Requests choose their chain id: past the store's limit, a new chain is refused with 403
/// before anything is recorded, and chains already known still sign.
#[tokio::test]
async fn chains_past_the_store_limit_are_refused_with_403() {
    let f = fixture_with_store(None, MemStore::with_max_chains(2));
    let (api, _utility) = routers(&cfg(), &f);
    let pkh = f.baker.public_key().hash();
    let on_chain = |chain: u8, level: i32| {
        let mut bytes = preattestation(level, 1);
        bytes[1..5].copy_from_slice(&[chain, 1, 2, 3]);
        bytes
    };
    for chain in 0..2u8 {
        let (s, body) = sign(&api, &pkh, &on_chain(chain, 7), "").await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let (s, body) = sign(&api, &pkh, &on_chain(2, 7), "").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let msg = body[0]["msg"].as_str().unwrap();
    assert!(msg.contains("allowed_chains"), "{msg}");
    assert!(!msg.contains("store failed"), "{msg}");
    let (s, body) = sign(&api, &pkh, &on_chain(1, 8), "").await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

/// Requests choose their chain and their client address: past the first few of each, the
/// metric labels say `other`, so no client can grow the metrics without bound.
#[tokio::test]
async fn chain_and_client_labels_are_bounded() {
    // More chains than the metrics name, so the store's own chain limit must be higher.
    let f = fixture_with_store(None, MemStore::with_max_chains(32));
    let client = SecretKey::generate(Curve::Ed25519);
    let (api, utility) = routers(&cfg(), &f);
    let pkh = f.baker.public_key().hash();
    // 20 chains: the first 16 are named, the other 4 share `other`.
    for chain in 0..20u8 {
        let mut bytes = preattestation(7, 1);
        bytes[1..5].copy_from_slice(&[chain, 1, 2, 3]);
        let (s, body) = sign(&api, &pkh, &bytes, "").await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    // 70 clients failing to authenticate: the first 64 by address, the rest as `other`.
    let mut authenticated = cfg();
    authenticated.authorized_keys = Some(vec![client.public_key()]);
    let (strict_api, strict_utility) = routers(&authenticated, &f);
    for i in 0..70u32 {
        let from = std::net::SocketAddr::from((std::net::Ipv4Addr::from(0x0a00_0000 + i), 4000));
        let req = Request::post(format!("/keys/{pkh}"))
            .header("content-type", "application/json")
            .extension(axum::extract::ConnectInfo(from))
            .body(Body::from(format!(
                "\"{}\"",
                hex::encode(preattestation(9, 1))
            )))
            .unwrap();
        let resp = strict_api.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let (_, text) = call(&utility, "GET", "/metrics", None).await;
    let text = text.as_str().unwrap();
    let signed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("signing_ops_total{"))
        .collect();
    assert_eq!(signed.len(), 17, "{signed:#?}");
    assert!(
        signed
            .iter()
            .any(|l| l.contains(r#"chain_id="other""#) && l.ends_with(" 4")),
        "{signed:#?}"
    );
    let first_chain = tezos_crypto::ChainId([0, 1, 2, 3]).to_b58check();
    assert!(signed.iter().any(|l| l.contains(&first_chain)));
    let (_, text) = call(&strict_utility, "GET", "/metrics", None).await;
    let failures: Vec<&str> = text
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("authentication_failure_total{"))
        .collect();
    assert_eq!(failures.len(), 65, "{failures:#?}");
    assert!(failures
        .iter()
        .any(|l| l.contains(r#"client_ip="10.0.0.63""#)));
    assert!(
        failures
            .iter()
            .any(|l| l.contains(r#"client_ip="other""#) && l.ends_with(" 6")),
        "{failures:#?}"
    );
}

#[tokio::test]
async fn metrics_and_health() {
    let f = fixture(None);
    let (api, utility) = routers(&cfg(), &f);
    let pkh = f.baker.public_key().hash();
    let wallet = f.wallet.public_key().hash();
    sign(&api, &pkh, &preattestation(40, 1), "").await;
    sign(&api, &pkh, &preattestation(40, 1), "").await; // replayed
    sign(&api, &pkh, &preattestation(40, 2), "").await; // 409
    sign(&api, &wallet, &preattestation(40, 1), "").await; // 403 policy
    sign(&api, &f.broken, &preattestation(40, 1), "").await; // 500 vault
    call(&api, "POST", "/keys/tz1nonsense", Some("\"00\"".into())).await;
    let stranger = SecretKey::generate(Curve::Ed25519).public_key().hash();
    // 404: not configured.
    sign(&api, &stranger, &preattestation(40, 1), "").await;
    // Refused before the key is looked up (a bad body, a bad version): still not labelled
    // with the key a client made up.
    let bad_body = Some("\"zz\"".to_string());
    call(&api, "POST", &format!("/keys/{stranger}"), bad_body).await; // 400
    sign(&api, &stranger, &preattestation(40, 1), "?version=9").await; // 400
    let (s, text) = call(&utility, "GET", "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    let chain_bytes: [u8; 4] = preattestation(0, 0)[1..5].try_into().unwrap();
    let chain = tezos_crypto::ChainId(chain_bytes).to_b58check();
    // ECAD Signatory's names, label sets and values (labels print sorted).
    for line in [
        format!(r#"signing_ops_total{{address="{pkh}",chain_id="{chain}",kind="preattestation",op="preattestation",vault="mem"}} 1"#),
        format!(r#"consensus_round_total{{address="{pkh}",chain_id="{chain}",operation_type="preattestation",round="0"}} 1"#),
        format!(r#"vault_sign_request_duration_milliseconds_count{{address="{pkh}",chain_id="{chain}",op="preattestation",vault="mem"}} 1"#),
        format!(r#"vault_sign_request_duration_milliseconds_bucket{{address="{pkh}",chain_id="{chain}",op="preattestation",vault="mem",le="100000"}} 1"#),
        format!(r#"sign_handler_requests_total{{address="{pkh}",status="200"}} 2"#),
        format!(r#"sign_handler_requests_total{{address="{pkh}",status="409"}} 1"#),
        format!(r#"sign_handler_requests_total{{address="{wallet}",status="403"}} 1"#),
        r#"sign_handler_requests_total{address="unknown",status="400"} 3"#.to_string(),
        r#"sign_handler_requests_total{address="unknown",status="404"} 1"#.to_string(),
        format!(r#"sign_handler_request_duration_milliseconds_count{{address="{pkh}",status="200"}} 2"#),
        format!(r#"watermark_rejection_total{{address="{pkh}",chain_id="{chain}",operation_type="preattestation",reason="different_payload"}} 1"#),
        r#"watermark_operations_total{backend="mem",request_type="preattestation",result="success"} 3"#.to_string(),
        r#"watermark_operations_total{backend="mem",request_type="preattestation",result="rejected"} 1"#.to_string(),
        format!(r#"policy_violation_total{{address="{wallet}",operation_type="request",violation_type="preattestation"}} 1"#),
        format!(r#"vault_sign_request_error_total{{chain_id="{chain}",code="500",vault="broken"}} 1"#),
        r#"signatory_vault_sign_duration_seconds_count{vault="mem"} 1"#.to_string(),
        r#"signatory_watermark_duration_seconds_count{backend="mem"} 4"#.to_string(),
        r#"watermark_operation_duration_seconds_count{backend="mem"} 4"#.to_string(),
        "# TYPE signatory_build_info gauge".to_string(),
        r#"signatory_build_info{branch="(unknown)",checksum="(unknown)",path="signatory","#.to_string(),
        "# TYPE process_resident_memory_bytes gauge".to_string(),
        "# TYPE process_cpu_seconds_total counter".to_string(),
        "# TYPE process_open_fds gauge".to_string(),
    ] {
        assert!(text.contains(&line), "missing `{line}` in\n{text}");
    }
    // A key nobody configured gets no series: anyone could add them without bound.
    assert!(!text.contains(&stranger.to_b58check()), "{text}");
    // One vault is broken: not ready.
    let (s, body) = call(&utility, "GET", "/healthz", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["ready"], false);
    assert_eq!(body["status"], "unavailable");
    assert!(body["error"].as_str().unwrap().contains("broken"));
    let (s, _) = call(&utility, "GET", "/live", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn health_is_ok_when_everything_answers() {
    let key = SecretKey::generate(Curve::Ed25519);
    let vault: Arc<dyn Vault> = Arc::new(MemVault::with_keys("mem", [key.clone()]));
    let mut keys = HashMap::new();
    keys.insert(
        key.public_key().hash(),
        KeyEntry {
            public_key: key.public_key(),
            vault,
            policy: Some(KeyPolicy::default()),
        },
    );
    let service = Arc::new(SignService::new(keys, Arc::new(MemStore::new())));
    let state = app_state(&cfg(), service).unwrap();
    let utility = utility_router(state);
    let (s, body) = call(&utility, "GET", "/healthz", None).await;
    assert_eq!(
        (s, body),
        (
            StatusCode::OK,
            serde_json::json!({"status": "ok", "ready": true})
        )
    );
}

/// A vault whose health check never answers.
#[derive(Debug)]
struct HungVault(MemVault);

#[async_trait]
impl Vault for HungVault {
    fn name(&self) -> &str {
        "hung"
    }
    fn driver(&self) -> &'static str {
        "test"
    }
    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        self.0.list_keys().await
    }
    async fn sign(
        &self,
        pkh: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        self.0.sign(pkh, message, version).await
    }
    async fn health(&self) -> Result<(), VaultError> {
        std::future::pending().await
    }
}

/// Every failure is named: a broken vault, one that never answers (its check times out
/// without holding up the others' verdict), and one that could not be opened at start.
#[tokio::test]
async fn health_names_every_vault_that_cannot_sign() {
    let mut keys = HashMap::new();
    let entry = |vault: Arc<dyn Vault>, key: &SecretKey| KeyEntry {
        public_key: key.public_key(),
        vault,
        policy: Some(KeyPolicy::default()),
    };
    let (good, hung_key, broken_key) = (
        SecretKey::generate(Curve::Ed25519),
        SecretKey::generate(Curve::Ed25519),
        SecretKey::generate(Curve::Ed25519),
    );
    let mem: Arc<dyn Vault> = Arc::new(MemVault::with_keys("mem", [good.clone()]));
    let hung: Arc<dyn Vault> = Arc::new(HungVault(MemVault::with_keys("hung", [hung_key.clone()])));
    keys.insert(good.public_key().hash(), entry(mem, &good));
    keys.insert(hung_key.public_key().hash(), entry(hung, &hung_key));
    keys.insert(
        broken_key.public_key().hash(),
        entry(Arc::new(BrokenVault), &broken_key),
    );
    let service = SignService::new(keys, Arc::new(MemStore::new()))
        .with_unavailable_vaults(vec![("hsm".to_owned(), "token not present".to_owned())]);
    let error = service.health().await.unwrap_err();
    assert_eq!(
        error,
        "vault broken: vault `broken` failed (temporary): device unplugged; \
         vault hung: no answer to the health check within 5 s; \
         vault hsm: not open: token not present"
    );
}

/// A vault that, for the keys in `forged`, answers with a signature by another key: a
/// faulty HSM or a mixed-up key slot, as the signer sees them.
#[derive(Debug)]
struct ImpostorVault {
    real: MemVault,
    impostor: MemVault,
    impostor_pkh: PublicKeyHash,
    forged: std::collections::HashSet<PublicKeyHash>,
}

#[async_trait]
impl Vault for ImpostorVault {
    fn name(&self) -> &str {
        "impostor"
    }
    fn driver(&self) -> &'static str {
        "test"
    }
    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        self.real.list_keys().await
    }
    async fn sign(
        &self,
        pkh: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        if self.forged.contains(pkh) {
            self.impostor
                .sign(&self.impostor_pkh, message, version)
                .await
        } else {
            self.real.sign(pkh, message, version).await
        }
    }
}

/// Signatures that do not verify are never released, also when they are checked in one
/// batch with good ones from concurrent requests; and the watermark they advanced stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_that_does_not_verify_is_never_released() {
    let keys: Vec<SecretKey> = (0..24)
        .map(|i| {
            SecretKey::generate(if i % 8 == 7 {
                Curve::Secp256k1
            } else {
                Curve::Ed25519
            })
        })
        .collect();
    let forged: std::collections::HashSet<PublicKeyHash> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 0)
        .map(|(_, k)| k.public_key().hash())
        .collect();
    let impostor = SecretKey::generate(Curve::Ed25519);
    let vault: Arc<dyn Vault> = Arc::new(ImpostorVault {
        real: MemVault::with_keys("real", keys.clone()),
        impostor_pkh: impostor.public_key().hash(),
        impostor: MemVault::with_keys("impostor", [impostor]),
        forged: forged.clone(),
    });
    let entries = keys
        .iter()
        .map(|k| {
            (
                k.public_key().hash(),
                KeyEntry {
                    public_key: k.public_key(),
                    vault: vault.clone(),
                    policy: Some(KeyPolicy::default()),
                },
            )
        })
        .collect();
    let service = Arc::new(SignService::new(entries, Arc::new(MemStore::new())));
    let state = app_state(&cfg(), service).unwrap();
    let api = api_app(&cfg(), state);
    let handles: Vec<_> = keys
        .iter()
        .map(|k| {
            let api = api.clone();
            let pk = k.public_key();
            tokio::spawn(async move {
                let bytes = preattestation(500, 1);
                let (s, body) = sign(&api, &pk.hash(), &bytes, "").await;
                (pk, bytes, s, body)
            })
        })
        .collect();
    for h in handles {
        let (pk, bytes, s, body) = h.await.unwrap();
        if forged.contains(&pk.hash()) {
            assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
            assert_octez_error(&body, "does not verify");
            let text = body.to_string();
            assert!(!text.contains("edsig") && !text.contains("spsig"), "{body}");
            // The level was reserved before signing: another payload there is refused.
            let (s, _) = sign(&api, &pk.hash(), &preattestation(500, 2), "").await;
            assert_eq!(s, StatusCode::CONFLICT);
        } else {
            assert_eq!(s, StatusCode::OK, "{body}");
            let sig = Signature::from_b58check(body["signature"].as_str().unwrap()).unwrap();
            pk.verify(&bytes, &sig, SigningVersion::default()).unwrap();
        }
    }
}

/// One request with exactly `headers`; the status, the answer's headers and its JSON body.
async fn call_with(
    app: &Api,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, value)
}

#[tokio::test]
async fn malformed_authentication_is_400_even_without_authentication() {
    let f = fixture(None);
    let (api, _) = routers(&cfg(), &f);
    let pkh = f.baker.public_key().hash();
    let (s, body) = sign(&api, &pkh, &preattestation(6, 1), "?authentication=garbage").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_octez_error(&body, "malformed `authentication`");
    // Nothing was recorded.
    let (s, body) = sign(&api, &pkh, &preattestation(6, 1), "").await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn requests_from_web_pages_and_non_json_bodies_are_refused() {
    let f = fixture(None);
    let (api, _) = routers(&cfg(), &f);
    let pkh = f.baker.public_key().hash();
    let uri = format!("/keys/{pkh}");
    let body = || Some(format!("\"{}\"", hex::encode(preattestation(8, 1))));
    let json = ("content-type", "application/json");
    // Any origin, by default, on every route.
    for (method, path) in [
        ("POST", uri.as_str()),
        ("GET", uri.as_str()),
        ("GET", "/authorized_keys"),
    ] {
        let headers = [json, ("origin", "http://localhost:3000")];
        let (s, _, resp) = call_with(&api, method, path, &headers, body()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {resp}");
        assert_octez_error(&resp, "Origin: http://localhost:3000");
    }
    let (s, _, resp) = call_with(&api, "POST", &uri, &[], body()).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{resp}");
    assert_octez_error(&resp, "Content-Type: application/json");
    for bad in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let (s, _, resp) = call_with(&api, "POST", &uri, &[("content-type", bad)], body()).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{bad}: {resp}");
    }
    // A preflight from a page is refused like the request it announces.
    let preflight = [
        ("origin", "https://evil.example"),
        ("access-control-request-method", "POST"),
    ];
    let (s, headers, _) = call_with(&api, "OPTIONS", &uri, &preflight, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(headers.get("access-control-allow-origin").is_none());
    // None of the above took the height; a charset is fine.
    let utf8 = [("content-type", "application/json; charset=utf-8")];
    let (s, _, resp) = call_with(&api, "POST", &uri, &utf8, body()).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
}

#[tokio::test]
async fn listed_origins_may_call_the_api() {
    let f = fixture(None);
    let mut c = cfg();
    c.allowed_origins = vec!["https://Wallet.example/".into()];
    let (api, _) = routers(&c, &f);
    let pkh = f.baker.public_key().hash();
    let uri = format!("/keys/{pkh}");
    let preflight = [
        ("origin", "https://wallet.example"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    let (s, headers, _) = call_with(&api, "OPTIONS", &uri, &preflight, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://wallet.example"
    );
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert_eq!(headers["access-control-allow-headers"], "content-type");
    let request = [
        ("origin", "https://wallet.example"),
        ("content-type", "application/json"),
    ];
    let body = Some(format!("\"{}\"", hex::encode(preattestation(9, 1))));
    let (s, headers, resp) = call_with(&api, "POST", &uri, &request, body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://wallet.example"
    );
    assert_eq!(headers["vary"], "origin");
    // Still JSON only, and other origins still refused.
    let text = [
        ("origin", "https://wallet.example"),
        ("content-type", "text/plain"),
    ];
    let (s, _, _) = call_with(&api, "POST", &uri, &text, body.clone()).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let other = [
        ("origin", "https://other.example"),
        ("content-type", "application/json"),
    ];
    let (s, _, _) = call_with(&api, "POST", &uri, &other, body).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
