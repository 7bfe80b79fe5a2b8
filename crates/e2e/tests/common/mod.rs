//! Assertions shared by the end-to-end tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]

use signatory_e2e::{Connection, Response, TestSigner};
use tezos_crypto::{Curve, PublicKey, SecretKey, Signature, SigningVersion};

/// One fresh key per curve, in tz1..tz4 order.
pub fn keys_of_every_curve() -> Vec<SecretKey> {
    Curve::ALL.iter().map(|c| SecretKey::generate(*c)).collect()
}

/// The signature prefix a signer must return for a curve (never the generic `sig`).
pub fn signature_prefix(curve: Curve) -> &'static str {
    match curve {
        Curve::Ed25519 => "edsig",
        Curve::Secp256k1 => "spsig1",
        Curve::P256 => "p2sig",
        Curve::Bls12_381 => "BLsig",
    }
}

/// Assert a 200 `{"signature": …}` that verifies over `bytes` with `pk`; return it.
pub fn assert_signed(
    resp: &Response,
    pk: &PublicKey,
    bytes: &[u8],
    version: SigningVersion,
) -> String {
    assert_eq!(
        resp.status,
        200,
        "expected a signature, got: {}",
        resp.text()
    );
    let sig = resp
        .json_str("signature")
        .unwrap_or_else(|| panic!("no `signature` field in {}", resp.text()));
    assert!(
        sig.starts_with(signature_prefix(pk.curve())),
        "{sig} does not carry the {} prefix",
        signature_prefix(pk.curve())
    );
    let parsed = Signature::from_b58check(&sig).unwrap_or_else(|e| panic!("{sig}: {e}"));
    pk.verify(bytes, &parsed, version)
        .unwrap_or_else(|e| panic!("signature {sig} does not verify for {pk}: {e}"));
    sig
}

/// Assert an error status with the JSON error body clients parse:
/// `[{"kind": "…", "id": "…", "msg": "<non-empty>"}]`. Returns the message.
pub fn assert_error(resp: &Response, status: u16) -> String {
    assert_eq!(
        resp.status,
        status,
        "expected {status}, got {} with body {}",
        resp.status,
        resp.text()
    );
    assert!(
        resp.content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json")),
        "{status} reply is not labelled JSON: {:?}",
        resp.content_type
    );
    let body = resp
        .json()
        .unwrap_or_else(|| panic!("{status} body is not JSON: {:?}", resp.text()));
    let errors = body
        .as_array()
        .unwrap_or_else(|| panic!("{status} body is not a JSON array: {body}"));
    assert!(!errors.is_empty(), "{status} body is an empty array");
    let mut msgs = Vec::new();
    for e in errors {
        for field in ["kind", "id", "msg"] {
            assert!(
                e.get(field).and_then(|v| v.as_str()).is_some(),
                "{status} error entry lacks string `{field}`: {e}"
            );
        }
        let msg = e["msg"].as_str().unwrap();
        assert!(
            !msg.trim().is_empty(),
            "{status} error has an empty message"
        );
        msgs.push(msg.to_string());
    }
    msgs.join("; ")
}

/// Sign `bytes` with `key` through the signer and check the reply.
pub async fn sign_ok(
    conn: &mut Connection,
    signer: &TestSigner,
    key: &SecretKey,
    bytes: &[u8],
) -> String {
    let resp = conn
        .sign(&signer.key_path(&key.public_key().hash()), bytes)
        .await
        .unwrap();
    assert_signed(&resp, &key.public_key(), bytes, SigningVersion::V3)
}

/// POST `bytes` for `key` and return the reply.
pub async fn post(
    conn: &mut Connection,
    signer: &TestSigner,
    key: &SecretKey,
    bytes: &[u8],
) -> Response {
    conn.sign(&signer.key_path(&key.public_key().hash()), bytes)
        .await
        .unwrap()
}
