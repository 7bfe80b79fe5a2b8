//! `ceiling`: what this host allows any signer, measured with the load generator.
//!
//! A server on the signer's HTTP stack (tokio, hyper, axum) that speaks just enough of the
//! signer API for `signatory-bench` (`/known_keys`, `/authorized_keys`, `GET` and
//! `POST /keys/{pkh}`) and does
//! only the cryptography of a request: no policy, no watermark, no log line, no metrics.
//! Its throughput bounds what any design of the signer can reach on the same machine;
//! the kinds of work separate what HTTP, signing and verifying (alone, or batched as the
//! signer does) each cost.

use crate::BenchError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::{Args, ValueEnum};
use signatory_signer::verify::SignatureChecker;
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tezos_crypto::{PublicKey, SecretKey, SigningVersion};

#[derive(Debug, Args)]
pub struct CeilingArgs {
    /// The file vault whose keys to serve (unencrypted, as `signatory generate` writes them).
    #[arg(long)]
    vault_file: PathBuf,
    #[arg(long, default_value = "127.0.0.1:6732")]
    addr: SocketAddr,
    /// What each signing request costs besides HTTP.
    #[arg(long, value_enum, default_value_t = Work::SignVerify)]
    work: Work,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Work {
    /// Parse the request and answer with the key's first signature: HTTP, JSON and hex only.
    Http,
    /// Sign every request.
    Sign,
    /// Sign and verify every request, each signature verified alone.
    SignVerify,
    /// Sign every request and verify it as the signer does: batched with concurrent
    /// requests' signatures (`signatory_signer::verify`).
    SignBatchVerify,
}

#[derive(Debug)]
struct Key {
    secret: SecretKey,
    public: PublicKey,
    /// For `Work::Http`: the signature of the first request, which the load generator checks.
    first_signature: OnceLock<String>,
}

#[derive(Debug)]
struct Ceiling {
    keys: HashMap<String, Key>,
    work: Work,
    checker: SignatureChecker,
}

/// Serve until killed.
pub fn serve(args: CeilingArgs) -> Result<(), BenchError> {
    let keys = crate::config::read_vault(&args.vault_file)?;
    // The signer's runtime: one worker per core.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    crate::load::block_on(workers, async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|source| BenchError::Io {
                context: format!("binding {}", args.addr),
                source,
            })?;
        run(listener, keys, args.work).await
    })
}

async fn run(
    listener: tokio::net::TcpListener,
    keys: Vec<SecretKey>,
    work: Work,
) -> Result<(), BenchError> {
    let keys = keys
        .into_iter()
        .map(|secret| {
            let public = secret.public_key();
            let key = Key {
                secret,
                public,
                first_signature: OnceLock::new(),
            };
            (key.public.hash().to_b58check(), key)
        })
        .collect();
    let app = Router::new()
        .route("/known_keys", get(known_keys))
        // `signatory-bench wait` asks for it: no client authentication here.
        .route(
            "/authorized_keys",
            get(|| async { Json(serde_json::json!({})) }),
        )
        .route("/keys/{pkh}", get(public_key).post(sign))
        .with_state(Arc::new(Ceiling {
            keys,
            work,
            checker: SignatureChecker::default(),
        }));
    axum::serve(listener, app)
        .await
        .map_err(|source| BenchError::Io {
            context: "serving".into(),
            source,
        })
}

async fn known_keys(State(state): State<Arc<Ceiling>>) -> Response {
    let keys: Vec<&String> = state.keys.keys().collect();
    Json(serde_json::json!({ "known_keys": keys })).into_response()
}

async fn public_key(State(state): State<Arc<Ceiling>>, Path(pkh): Path<String>) -> Response {
    match state.keys.get(&pkh) {
        Some(key) => {
            Json(serde_json::json!({ "public_key": key.public.to_b58check() })).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn sign(
    State(state): State<Arc<Ceiling>>,
    Path(pkh): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Some(key) = state.keys.get(&pkh) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(bytes) = serde_json::from_slice::<Cow<'_, str>>(&body)
        .ok()
        .and_then(|text| hex::decode(text.as_bytes()).ok())
    else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let signature = match state.work {
        Work::Http => match key.first_signature.get() {
            Some(signature) => Ok(signature.clone()),
            None => sign_bytes(key, &bytes, false)
                .map(|signature| key.first_signature.get_or_init(|| signature).clone()),
        },
        Work::Sign => sign_bytes(key, &bytes, false),
        Work::SignVerify => sign_bytes(key, &bytes, true),
        Work::SignBatchVerify => match key.secret.sign(&bytes, SigningVersion::V3) {
            Ok(signature) => state
                .checker
                .verify(&key.public, &bytes, &signature, SigningVersion::V3)
                .await
                .map(|()| signature.to_b58check())
                .map_err(|_| ()),
            Err(_) => Err(()),
        },
    };
    match signature {
        Ok(signature) => Json(serde_json::json!({ "signature": signature })).into_response(),
        Err(()) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn sign_bytes(key: &Key, bytes: &[u8], verify: bool) -> Result<String, ()> {
    let signature = key.secret.sign(bytes, SigningVersion::V3).map_err(|_| ())?;
    if verify {
        key.public
            .verify(bytes, &signature, SigningVersion::V3)
            .map_err(|_| ())?;
    }
    Ok(signature.to_b58check())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::client::Connection;
    use bytes::Bytes;
    use tezos_crypto::{Curve, Signature};

    /// Start a ceiling server with one fresh tz1 key; its address and the key.
    async fn start(work: Work) -> (SocketAddr, PublicKey) {
        let secret = SecretKey::generate(Curve::Ed25519);
        let public = secret.public_key();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(run(listener, vec![secret], work));
        (addr, public)
    }

    async fn signature(conn: &mut Connection, pkh: &str, bytes: &[u8]) -> (u16, Option<Signature>) {
        let body = Bytes::from(format!("\"{}\"", hex::encode(bytes)));
        let (status, reply) = conn
            .send("POST", &format!("/keys/{pkh}"), body)
            .await
            .unwrap();
        let signature = serde_json::from_slice::<serde_json::Value>(&reply)
            .ok()
            .and_then(|v| Signature::from_b58check(v.get("signature")?.as_str()?).ok());
        (status, signature)
    }

    #[tokio::test]
    async fn signing_work_answers_signatures_of_each_request() {
        for work in [Work::Sign, Work::SignVerify, Work::SignBatchVerify] {
            let (addr, public) = start(work).await;
            let pkh = public.hash().to_b58check();
            let mut conn = Connection::connect(addr).await.unwrap();
            for bytes in [&b"\x13first"[..], b"\x13second"] {
                let (status, sig) = signature(&mut conn, &pkh, bytes).await;
                assert_eq!(status, 200, "{work:?}");
                public
                    .verify(bytes, &sig.unwrap(), SigningVersion::V3)
                    .unwrap();
            }
        }
    }

    #[tokio::test]
    async fn http_work_signs_only_the_first_request_of_a_key() {
        let (addr, public) = start(Work::Http).await;
        let pkh = public.hash().to_b58check();
        let mut conn = Connection::connect(addr).await.unwrap();
        let (_, first) = signature(&mut conn, &pkh, b"\x13first").await;
        let first = first.unwrap();
        public
            .verify(b"\x13first", &first, SigningVersion::V3)
            .unwrap();
        let (status, second) = signature(&mut conn, &pkh, b"\x13second").await;
        assert_eq!(status, 200);
        assert_eq!(second.unwrap().to_b58check(), first.to_b58check());
    }

    #[tokio::test]
    async fn unknown_keys_and_bad_bodies_are_refused() {
        let (addr, public) = start(Work::SignVerify).await;
        let mut conn = Connection::connect(addr).await.unwrap();
        let other = SecretKey::generate(Curve::Ed25519).public_key().hash();
        let (status, _) = signature(&mut conn, &other.to_b58check(), b"\x13").await;
        assert_eq!(status, 404);
        let path = format!("/keys/{}", public.hash().to_b58check());
        let (status, _) = conn
            .send("POST", &path, Bytes::from_static(b"\"zz\""))
            .await
            .unwrap();
        assert_eq!(status, 400);
    }
}
