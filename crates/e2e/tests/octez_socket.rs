//! Octez's socket protocol against the real `signatory serve` process, with the durable file
//! store: one watermark for HTTP and the socket, a socket file cleaned up on SIGTERM and
//! replaced after `kill -9`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use signatory_e2e::requests::Consensus;
use signatory_e2e::socket;
use signatory_e2e::{KeySpec, SignerConfig, TestSigner};
use tezos_crypto::{Curve, SecretKey, Signature, SigningVersion};
use tezos_encoding::signer_messages::{SignMessage, SocketRequest};
use tokio::net::UnixStream;

/// Octez's client: Authorized_keys, then Sign, on one connection.
async fn sign_over_socket(
    signer: &TestSigner,
    key: &SecretKey,
    data: &[u8],
) -> Result<Signature, Vec<String>> {
    let mut conn = UnixStream::connect(signer.unix_socket()).await.unwrap();
    let authorized = socket::call(&mut conn, &SocketRequest::AuthorizedKeys).await;
    assert_eq!(authorized.unwrap(), Ok(vec![0x00]));
    let request = SocketRequest::Sign(SignMessage {
        pkh: key.public_key().hash(),
        version: None,
        data: data.to_vec(),
        authentication: None,
    });
    let raw = socket::call(&mut conn, &request).await.unwrap()?;
    Ok(Signature::from_bytes(key.public_key().curve(), &raw).unwrap())
}

#[tokio::test]
async fn the_socket_shares_the_durable_watermark_and_survives_restarts() {
    let key = SecretKey::generate(Curve::Ed25519);
    let config = SignerConfig {
        keys: vec![KeySpec::new(key.clone(), None)],
        unix_socket: true,
        ..SignerConfig::default()
    };
    let mut signer = TestSigner::new(config).unwrap();
    signer.start().await.unwrap();

    let level_5 = Consensus::new(5, 0, 1).preattestation();
    let signature = sign_over_socket(&signer, &key, &level_5).await.unwrap();
    key.public_key()
        .verify(&level_5, &signature, SigningVersion::default())
        .unwrap();
    // HTTP sees the socket's watermark, and returns the socket's signature for the same bytes.
    let mut conn = signer.connect().await.unwrap();
    assert_eq!(
        sign_ok(&mut conn, &signer, &key, &level_5).await,
        signature.to_b58check()
    );
    assert_error(
        &post(
            &mut conn,
            &signer,
            &key,
            &Consensus::new(5, 0, 2).preattestation(),
        )
        .await,
        409,
    );

    // SIGTERM removes the socket file.
    let status = signer.terminate().unwrap();
    assert!(
        status.success(),
        "SIGTERM exit: {status}; log:\n{}",
        signer.log()
    );
    assert!(!signer.unix_socket().exists());

    // After kill -9 the file stays behind; the next start replaces it.
    signer.start().await.unwrap();
    assert!(signer.unix_socket().exists());
    signer.kill9().unwrap();
    assert!(signer.unix_socket().exists());
    signer.start().await.unwrap();
    let refused = sign_over_socket(&signer, &key, &Consensus::new(5, 0, 3).preattestation()).await;
    assert!(
        refused.as_ref().unwrap_err()[0].contains("already signed with different data"),
        "{refused:?}"
    );
    assert_eq!(
        sign_over_socket(&signer, &key, &level_5).await,
        Ok(signature)
    );
}
