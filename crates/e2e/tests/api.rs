//! The HTTP API of the real `signatory` binary: every endpoint, every error status with
//! its JSON body, policies per request kind, authentication, and signatures checked with
//! the public key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use signatory_e2e::requests::{
    authentication_message, entrypoint, generic, Block, Consensus, Op, GHOSTNET, MAINNET,
};
use signatory_e2e::{Connection, KeySpec, Policy, SignerConfig, TestSigner};
use std::collections::BTreeSet;
use tezos_crypto::{Curve, PublicKey, SecretKey, Signature, SigningVersion};

async fn start(config: SignerConfig) -> TestSigner {
    let mut signer = TestSigner::new(config).unwrap();
    signer.start().await.unwrap();
    signer
}

fn default_keys(keys: &[SecretKey]) -> SignerConfig {
    SignerConfig {
        keys: keys.iter().map(|k| KeySpec::new(k.clone(), None)).collect(),
        ..SignerConfig::default()
    }
}

#[tokio::test]
async fn public_keys_known_keys_and_authorized_keys_are_served() {
    let keys = keys_of_every_curve();
    let vault_only = SecretKey::generate(Curve::Ed25519);
    let mut config = default_keys(&keys);
    config.keys.push(KeySpec::vault_only(vault_only.clone()));
    config.allow_list_known_keys = true;
    let signer = start(config).await;
    let mut conn = signer.connect().await.unwrap();

    for key in keys.iter().chain([&vault_only]) {
        let pk = key.public_key();
        let resp = conn.get(&signer.key_path(&pk.hash())).await.unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.json_str("public_key"), Some(pk.to_b58check()));
    }

    // A key in no vault.
    let stranger = SecretKey::generate(Curve::Ed25519).public_key().hash();
    assert_error(&conn.get(&signer.key_path(&stranger)).await.unwrap(), 404);

    // Only enabled keys are listed as known.
    let resp = conn.get(&signer.path("/known_keys")).await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let listed: BTreeSet<String> = resp.json().unwrap()["known_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let enabled: BTreeSet<String> = keys
        .iter()
        .map(|k| k.public_key().hash().to_string())
        .collect();
    assert_eq!(listed, enabled);

    // No authentication anywhere: exactly `{}` (an empty list makes octez-client abort).
    let resp = conn.get(&signer.path("/authorized_keys")).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json().unwrap(), serde_json::json!({}));

    // A key that is only in a vault is served but never signs.
    let bytes = Consensus::new(5, 0, 1).attestation();
    assert_error(&post(&mut conn, &signer, &vault_only, &bytes).await, 403);
}

#[tokio::test]
async fn utility_endpoints_report_health_and_metrics() {
    let key = SecretKey::generate(Curve::Ed25519);
    let signer = start(default_keys(std::slice::from_ref(&key))).await;
    let mut conn = signer.connect().await.unwrap();
    sign_ok(
        &mut conn,
        &signer,
        &key,
        &Consensus::new(3, 0, 1).attestation(),
    )
    .await;

    let mut util = Connection::connect(signer.utility).await.unwrap();
    let health = util.get("/healthz").await.unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    let metrics = util.get("/metrics").await.unwrap();
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    // Prometheus text exposition, and the signature just made is counted under its key.
    assert!(text.contains("# TYPE"), "not Prometheus text:\n{text}");
    assert!(
        text.contains(&key.public_key().hash().to_string()),
        "metrics do not mention the key that signed:\n{text}"
    );
    // The file store's commits, under ECAD's names, and the process's own resources.
    for line in [
        r#"watermark_io_operations_total{backend="file",operation="write",result="success",table_name=""}"#,
        r#"watermark_io_latency_seconds_count{backend="file",operation="write",table_name=""}"#,
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
}

#[tokio::test]
async fn every_curve_signs_every_consensus_kind_verifiably_and_repeats_identically() {
    let keys = keys_of_every_curve();
    let signer = start(default_keys(&keys)).await;
    let mut conn = signer.connect().await.unwrap();

    for key in &keys {
        let requests = [
            Block::new(100, 0, 1).bytes(),
            Consensus::new(100, 0, 1).preattestation(),
            Consensus::new(100, 0, 1).attestation(),
        ];
        for bytes in &requests {
            let first = sign_ok(&mut conn, &signer, key, bytes).await;
            // Identical bytes again: the very same signature (for P-256 too, whose nonce is
            // random), not a second one.
            let again = sign_ok(&mut conn, &signer, key, bytes).await;
            assert_eq!(first, again, "{} signed identical bytes twice", key.curve());
        }
    }

    // tz4 consensus operations in BLS mode (no slot), and each signing version.
    let bls = &keys[3];
    let pk = bls.public_key();
    let path = signer.key_path(&pk.hash());
    sign_ok(
        &mut conn,
        &signer,
        bls,
        &Consensus::new(101, 0, 1).bls_attestation(),
    )
    .await;
    for (level, version) in [
        (102, SigningVersion::V1),
        (103, SigningVersion::V2),
        (104, SigningVersion::V3),
    ] {
        let bytes = Consensus::new(level, 0, 1).bls_attestation();
        let resp = conn
            .sign(&format!("{path}?version={}", version.as_u8()), &bytes)
            .await
            .unwrap();
        assert_signed(&resp, &pk, &bytes, version);
    }
    // Version 1 and 3 really differ for BLS (augmented vs proof-of-possession scheme).
    let bytes = Consensus::new(105, 0, 1).bls_attestation();
    let resp = conn
        .sign(&format!("{path}?version=1"), &bytes)
        .await
        .unwrap();
    let sig = Signature::from_b58check(&resp.json_str("signature").unwrap()).unwrap();
    assert!(pk.verify(&bytes, &sig, SigningVersion::V3).is_err());
}

#[tokio::test]
async fn malformed_requests_get_400_and_record_nothing() {
    let key = SecretKey::generate(Curve::Ed25519);
    let signer = start(default_keys(std::slice::from_ref(&key))).await;
    let mut conn = signer.connect().await.unwrap();
    let path = signer.key_path(&key.public_key().hash());

    let good = Consensus::new(50, 0, 1).attestation();
    let mut trailing = Consensus::new(50, 0, 2).attestation();
    trailing.push(0);
    let truncated = &good[..good.len() - 1];
    let bodies: Vec<(String, &str)> = vec![
        ("\"zz\"".into(), "bad hex"),
        ("\"130\"".into(), "odd-length hex"),
        ("not json".into(), "not JSON"),
        ("123".into(), "JSON number"),
        ("{\"data\":\"13\"}".into(), "JSON object"),
        ("\"\"".into(), "empty request"),
        (String::new(), "empty body"),
        ("\"ff00\"".into(), "unknown magic byte"),
        (
            format!("\"{}\"", hex::encode(truncated)),
            "truncated attestation",
        ),
        (
            format!("\"{}\"", hex::encode(&trailing)),
            "attestation with a trailing byte",
        ),
    ];
    for (body, what) in bodies {
        let resp = conn.post(&path, body).await.unwrap();
        let msg = assert_error(&resp, 400);
        assert!(!msg.is_empty(), "{what}");
    }
    for query in ["version=9", "version=x", "version=-1"] {
        let resp = conn.sign(&format!("{path}?{query}"), &good).await.unwrap();
        assert_error(&resp, 400);
    }
    // A bad public key hash in the path is bad input or an unknown key, never a signature.
    let resp = conn
        .sign(&signer.path("/keys/tz1notakey"), &good)
        .await
        .unwrap();
    assert!(resp.status == 400 || resp.status == 404, "{}", resp.status);
    assert_error(&resp, resp.status);

    // None of the refused requests moved the watermark: (50, 0) is still free. Unknown
    // query parameters are ignored.
    let resp = conn
        .sign(&format!("{path}?unknown=1&version=3"), &good)
        .await
        .unwrap();
    assert_signed(&resp, &key.public_key(), &good, SigningVersion::V3);

    // An unknown key.
    let stranger = SecretKey::generate(Curve::Ed25519);
    assert_error(&post(&mut conn, &signer, &stranger, &good).await, 404);
}

#[tokio::test]
async fn oversized_body_gets_413_and_the_signer_goes_on() {
    let key = SecretKey::generate(Curve::Ed25519);
    let signer = start(default_keys(std::slice::from_ref(&key))).await;
    let mut conn = signer.connect().await.unwrap();
    // Far beyond the largest operation (32 KiB raw): 2 MiB of hex.
    let huge = format!("\"03{}\"", "00".repeat(1 << 20));
    let resp = conn
        .post(&signer.key_path(&key.public_key().hash()), huge)
        .await
        .unwrap();
    assert_error(&resp, 413);
    // The server may close that connection; the signer itself goes on serving.
    let mut conn = signer.connect().await.unwrap();
    sign_ok(
        &mut conn,
        &signer,
        &key,
        &Consensus::new(1, 0, 1).attestation(),
    )
    .await;
}

/// `server.limits.max_body_bytes` from the configuration file reaches the listener.
#[tokio::test]
async fn the_body_limit_is_configurable() {
    let key = SecretKey::generate(Curve::Ed25519);
    let pkh = key.public_key().hash();
    // 600 bytes of hex: under the default limit, over a configured one of 512 bytes.
    let padded = format!("\"03{}\"", "00".repeat(300));
    let signer = start(default_keys(std::slice::from_ref(&key))).await;
    let mut conn = signer.connect().await.unwrap();
    let resp = conn
        .post(&signer.key_path(&pkh), padded.clone())
        .await
        .unwrap();
    assert_ne!(resp.status, 413, "{}", resp.text());
    drop(signer);

    let mut config = default_keys(std::slice::from_ref(&key));
    config.limits = vec![("max_body_bytes".into(), "512".into())];
    let signer = start(config).await;
    let mut conn = signer.connect().await.unwrap();
    assert_error(
        &conn.post(&signer.key_path(&pkh), padded).await.unwrap(),
        413,
    );
    let mut conn = signer.connect().await.unwrap();
    sign_ok(
        &mut conn,
        &signer,
        &key,
        &Consensus::new(1, 0, 1).attestation(),
    )
    .await;
}

#[tokio::test]
async fn watermark_refusals_get_409_per_kind_and_chain() {
    let keys = [
        SecretKey::generate(Curve::Ed25519),
        SecretKey::generate(Curve::P256),
    ];
    let signer = start(default_keys(&keys)).await;
    let mut conn = signer.connect().await.unwrap();

    for key in &keys {
        sign_ok(
            &mut conn,
            &signer,
            key,
            &Consensus::new(10, 1, 1).attestation(),
        )
        .await;
        for (level, round, payload, what) in [
            (10, 1, 2, "same level and round, other payload"),
            (10, 0, 1, "lower round"),
            (9, 5, 1, "lower level"),
        ] {
            let resp = post(
                &mut conn,
                &signer,
                key,
                &Consensus::new(level, round, payload).attestation(),
            )
            .await;
            let msg = assert_error(&resp, 409);
            assert!(!msg.is_empty(), "{what}");
        }
        sign_ok(
            &mut conn,
            &signer,
            key,
            &Consensus::new(10, 2, 3).attestation(),
        )
        .await;
        sign_ok(
            &mut conn,
            &signer,
            key,
            &Consensus::new(11, 0, 3).attestation(),
        )
        .await;
        // Kinds and chains have their own watermarks.
        sign_ok(
            &mut conn,
            &signer,
            key,
            &Consensus::new(10, 0, 4).preattestation(),
        )
        .await;
        sign_ok(
            &mut conn,
            &signer,
            key,
            &Consensus::new(5, 0, 4).on(GHOSTNET).attestation(),
        )
        .await;

        // Blocks are watermarked by the round in their fitness.
        sign_ok(&mut conn, &signer, key, &Block::new(20, 1, 1).bytes()).await;
        assert_error(
            &post(&mut conn, &signer, key, &Block::new(20, 0, 1).bytes()).await,
            409,
        );
        let mut reproposal = Block::new(20, 1, 2);
        reproposal.payload_round = 0;
        assert_error(
            &post(&mut conn, &signer, key, &reproposal.bytes()).await,
            409,
        );
        let mut next_round = Block::new(20, 2, 1);
        next_round.payload_round = 1;
        sign_ok(&mut conn, &signer, key, &next_round.bytes()).await;
    }
}

#[tokio::test]
async fn policy_allows_and_denies_by_request_kind() {
    let baker = SecretKey::generate(Curve::Ed25519);
    let dal = SecretKey::generate(Curve::Secp256k1);
    let attester = SecretKey::generate(Curve::P256);
    let signer = start(SignerConfig {
        keys: vec![
            KeySpec::new(baker.clone(), None),
            KeySpec::new(
                dal.clone(),
                Some(Policy::allow(&["preattestation", "attestation_with_dal"])),
            ),
            KeySpec::new(attester.clone(), Some(Policy::allow(&["attestation"]))),
        ],
        ..SignerConfig::default()
    })
    .await;
    let mut conn = signer.connect().await.unwrap();
    let c = Consensus::new(30, 0, 1);
    let transfer = |k: &SecretKey| {
        generic(
            &k.public_key().hash(),
            &[Op::Transfer {
                to: k.public_key().hash(),
                amount: 1,
            }],
        )
    };

    // No policy: block, preattestation, attestation only.
    sign_ok(&mut conn, &signer, &baker, &Block::new(30, 0, 1).bytes()).await;
    sign_ok(&mut conn, &signer, &baker, &c.preattestation()).await;
    sign_ok(&mut conn, &signer, &baker, &c.attestation()).await;
    assert_error(
        &post(
            &mut conn,
            &signer,
            &baker,
            &Consensus::new(31, 0, 1).attestation_with_dal(5),
        )
        .await,
        403,
    );
    assert_error(
        &post(&mut conn, &signer, &baker, &transfer(&baker)).await,
        403,
    );

    sign_ok(&mut conn, &signer, &dal, &c.attestation_with_dal(5)).await;
    sign_ok(&mut conn, &signer, &dal, &c.preattestation()).await;
    assert_error(
        &post(
            &mut conn,
            &signer,
            &dal,
            &Consensus::new(31, 0, 1).attestation(),
        )
        .await,
        403,
    );
    assert_error(
        &post(&mut conn, &signer, &dal, &Block::new(31, 0, 1).bytes()).await,
        403,
    );

    sign_ok(&mut conn, &signer, &attester, &c.attestation()).await;
    assert_error(
        &post(
            &mut conn,
            &signer,
            &attester,
            &Consensus::new(31, 0, 1).attestation_with_dal(1),
        )
        .await,
        403,
    );
    assert_error(
        &post(
            &mut conn,
            &signer,
            &attester,
            &Consensus::new(31, 0, 1).preattestation(),
        )
        .await,
        403,
    );
    assert_error(
        &post(&mut conn, &signer, &attester, &transfer(&attester)).await,
        403,
    );

    // A refused request recorded nothing: the same (level, round) still signs.
    sign_ok(
        &mut conn,
        &signer,
        &baker,
        &Consensus::new(31, 0, 2).attestation(),
    )
    .await;
}

#[tokio::test]
async fn policy_allows_and_denies_generic_operations_and_ballots() {
    let wallet = SecretKey::generate(Curve::Ed25519);
    let voter = SecretKey::generate(Curve::Secp256k1);
    let signer = start(SignerConfig {
        keys: vec![
            KeySpec::new(
                wallet.clone(),
                Some(Policy::default().generic(&[
                    "transaction",
                    "reveal",
                    "delegation",
                    "ballot:yay",
                    "stake",
                ])),
            ),
            KeySpec::new(voter.clone(), Some(Policy::default().generic(&["ballot"]))),
        ],
        ..SignerConfig::default()
    })
    .await;
    let mut conn = signer.connect().await.unwrap();
    let me = wallet.public_key().hash();
    let other = voter.public_key().hash();
    let call = |to, ep| Op::Call { to, entrypoint: ep };

    let allowed: Vec<(&str, Vec<Op>)> = vec![
        (
            "transfer",
            vec![Op::Transfer {
                to: other,
                amount: 1_000_000,
            }],
        ),
        (
            "reveal then transfer",
            vec![
                Op::Reveal {
                    public_key: wallet.public_key().to_tagged_bytes(),
                },
                Op::Transfer {
                    to: other,
                    amount: 1,
                },
            ],
        ),
        (
            "delegation",
            vec![Op::Delegation {
                delegate: Some(other),
            }],
        ),
        (
            "withdraw delegation",
            vec![Op::Delegation { delegate: None }],
        ),
        ("ballot yay", vec![Op::Ballot { vote: 0 }]),
        (
            "stake (transfer to self, entrypoint stake)",
            vec![call(me, entrypoint::STAKE)],
        ),
        (
            "call to another account's stake entrypoint is a transaction",
            vec![call(other, entrypoint::STAKE)],
        ),
        (
            "transfer to self, default entrypoint",
            vec![call(me, entrypoint::DEFAULT)],
        ),
    ];
    for (what, ops) in allowed {
        let bytes = generic(&me, &ops);
        let resp = post(&mut conn, &signer, &wallet, &bytes).await;
        assert_eq!(resp.status, 200, "{what}: {}", resp.text());
        assert_signed(&resp, &wallet.public_key(), &bytes, SigningVersion::V3);
    }
    let denied: Vec<(&str, Vec<Op>)> = vec![
        ("origination", vec![Op::Origination]),
        ("ballot nay", vec![Op::Ballot { vote: 1 }]),
        ("ballot pass", vec![Op::Ballot { vote: 2 }]),
        ("unstake", vec![call(me, entrypoint::UNSTAKE)]),
        (
            "finalize_unstake",
            vec![call(me, entrypoint::FINALIZE_UNSTAKE)],
        ),
        (
            "set_delegate_parameters",
            vec![call(me, entrypoint::SET_DELEGATE_PARAMETERS)],
        ),
        ("failing_noop", vec![Op::FailingNoop]),
        (
            "allowed then denied in one batch",
            vec![
                Op::Transfer {
                    to: other,
                    amount: 1,
                },
                Op::Origination,
            ],
        ),
    ];
    for (what, ops) in denied {
        let resp = post(&mut conn, &signer, &wallet, &generic(&me, &ops)).await;
        let msg = assert_error(&resp, 403);
        assert!(!msg.is_empty(), "{what}");
    }
    // The wallet policy names no consensus kind.
    assert_error(
        &post(
            &mut conn,
            &signer,
            &wallet,
            &Consensus::new(1, 0, 1).attestation(),
        )
        .await,
        403,
    );

    // `ballot` allows every vote.
    for vote in 0..3 {
        let bytes = generic(&other, &[Op::Ballot { vote }]);
        let resp = post(&mut conn, &signer, &voter, &bytes).await;
        assert_signed(&resp, &voter.public_key(), &bytes, SigningVersion::V3);
    }
    assert_error(
        &post(
            &mut conn,
            &signer,
            &voter,
            &generic(&other, &[Op::Transfer { to: me, amount: 1 }]),
        )
        .await,
        403,
    );
}

#[tokio::test]
async fn policy_allowed_chains() {
    let key = SecretKey::generate(Curve::P256);
    let signer = start(SignerConfig {
        keys: vec![KeySpec::new(
            key.clone(),
            Some(
                Policy::allow(&["block", "attestation"])
                    .generic(&["transaction"])
                    .chains(&[&MAINNET.to_b58check()]),
            ),
        )],
        ..SignerConfig::default()
    })
    .await;
    let mut conn = signer.connect().await.unwrap();
    sign_ok(
        &mut conn,
        &signer,
        &key,
        &Consensus::new(7, 0, 1).attestation(),
    )
    .await;
    sign_ok(&mut conn, &signer, &key, &Block::new(7, 0, 1).bytes()).await;
    assert_error(
        &post(
            &mut conn,
            &signer,
            &key,
            &Consensus::new(8, 0, 1).on(GHOSTNET).attestation(),
        )
        .await,
        403,
    );
    let mut block = Block::new(8, 0, 1);
    block.chain = GHOSTNET;
    assert_error(&post(&mut conn, &signer, &key, &block.bytes()).await, 403);
    // Generic operations carry no chain id: the chain list does not apply to them.
    let pkh = key.public_key().hash();
    sign_ok(
        &mut conn,
        &signer,
        &key,
        &generic(&pkh, &[Op::Transfer { to: pkh, amount: 5 }]),
    )
    .await;
}

fn authenticated(path: &str, client: &SecretKey, signed_for: &SecretKey, bytes: &[u8]) -> String {
    let msg = authentication_message(&signed_for.public_key().hash(), bytes);
    let auth = client.sign(&msg, SigningVersion::V3).unwrap();
    format!("{path}?authentication={}&version=3", auth.to_b58check())
}

#[tokio::test]
async fn authentication_with_global_and_per_key_client_lists() {
    let clients: Vec<SecretKey> = keys_of_every_curve();
    let outsider = SecretKey::generate(Curve::Ed25519);
    let key = SecretKey::generate(Curve::Ed25519);
    let restricted = SecretKey::generate(Curve::Secp256k1);
    let signer = start(SignerConfig {
        keys: vec![
            KeySpec::new(key.clone(), None),
            KeySpec::new(
                restricted.clone(),
                Some(Policy::allow(&["attestation"]).clients(&[clients[1].public_key()])),
            ),
        ],
        authorized_keys: clients.iter().map(SecretKey::public_key).collect(),
        ..SignerConfig::default()
    })
    .await;
    let mut conn = signer.connect().await.unwrap();

    let resp = conn.get(&signer.path("/authorized_keys")).await.unwrap();
    assert_eq!(resp.status, 200);
    let listed: BTreeSet<String> = resp.json().unwrap()["authorized_keys"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", resp.text()))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = clients
        .iter()
        .map(|c| c.public_key().hash().to_string())
        .collect();
    assert_eq!(listed, expected);

    let path = signer.key_path(&key.public_key().hash());
    let bytes = Consensus::new(40, 0, 1).attestation();
    assert_error(&conn.sign(&path, &bytes).await.unwrap(), 401);
    let by_outsider = authenticated(&path, &outsider, &key, &bytes);
    assert_error(&conn.sign(&by_outsider, &bytes).await.unwrap(), 403);
    // A valid client signature over other bytes (a replayed authentication).
    let other_bytes = Consensus::new(40, 0, 2).attestation();
    let replayed = authenticated(&path, &clients[0], &key, &other_bytes);
    assert_error(&conn.sign(&replayed, &bytes).await.unwrap(), 403);
    // ... or for another key.
    let wrong_key = authenticated(&path, &clients[0], &restricted, &bytes);
    assert_error(&conn.sign(&wrong_key, &bytes).await.unwrap(), 403);
    // An authentication that is not a signature at all: bad input or refused, never signed.
    for garbage in ["notasignature", "edsig", ""] {
        let resp = conn
            .sign(&format!("{path}?authentication={garbage}"), &bytes)
            .await
            .unwrap();
        assert!(
            [400, 401, 403].contains(&resp.status),
            "authentication={garbage:?}: {} {}",
            resp.status,
            resp.text()
        );
        assert_error(&resp, resp.status);
    }

    // Every client curve authenticates; the authentication does not touch the watermark,
    // so the same bytes signed for different clients give one signature.
    let mut signatures = BTreeSet::new();
    for client in &clients {
        let resp = conn
            .sign(&authenticated(&path, client, &key, &bytes), &bytes)
            .await
            .unwrap();
        signatures.insert(assert_signed(
            &resp,
            &key.public_key(),
            &bytes,
            SigningVersion::V3,
        ));
    }
    assert_eq!(signatures.len(), 1);

    // The per-key list narrows the global one.
    let rpath = signer.key_path(&restricted.public_key().hash());
    let rbytes = Consensus::new(41, 0, 1).attestation();
    assert_error(
        &conn
            .sign(
                &authenticated(&rpath, &clients[0], &restricted, &rbytes),
                &rbytes,
            )
            .await
            .unwrap(),
        403,
    );
    let resp = conn
        .sign(
            &authenticated(&rpath, &clients[1], &restricted, &rbytes),
            &rbytes,
        )
        .await
        .unwrap();
    assert_signed(&resp, &restricted.public_key(), &rbytes, SigningVersion::V3);
}

#[tokio::test]
async fn authentication_required_only_for_keys_that_name_clients() {
    let client = SecretKey::generate(Curve::P256);
    let open = SecretKey::generate(Curve::Ed25519);
    let guarded = SecretKey::generate(Curve::Ed25519);
    let signer = start(SignerConfig {
        keys: vec![
            KeySpec::new(open.clone(), None),
            KeySpec::new(
                guarded.clone(),
                Some(Policy::allow(&["attestation"]).clients(&[client.public_key()])),
            ),
        ],
        ..SignerConfig::default()
    })
    .await;
    let mut conn = signer.connect().await.unwrap();
    // Empty: an Octez client of `open` that found `client` listed would refuse to sign.
    let resp = conn.get(&signer.path("/authorized_keys")).await.unwrap();
    assert_eq!(resp.json().unwrap(), serde_json::json!({}));
    let bytes = Consensus::new(60, 0, 1).attestation();
    sign_ok(&mut conn, &signer, &open, &bytes).await;
    let gpath = signer.key_path(&guarded.public_key().hash());
    assert_error(&conn.sign(&gpath, &bytes).await.unwrap(), 401);
    let resp = conn
        .sign(&authenticated(&gpath, &client, &guarded, &bytes), &bytes)
        .await
        .unwrap();
    assert_signed(&resp, &guarded.public_key(), &bytes, SigningVersion::V3);
    // The operator was told at start why Octez clients will not authenticate for `guarded`.
    let log = std::fs::read_to_string(&signer.log_path).unwrap();
    assert!(
        log.contains("server.authorized_keys") && log.contains("401"),
        "{log}"
    );
}

#[tokio::test]
async fn bls_proof_of_possession() {
    let allowed = SecretKey::generate(Curve::Bls12_381);
    let refused = SecretKey::generate(Curve::Bls12_381);
    let ed = SecretKey::generate(Curve::Ed25519);
    let signer = start(SignerConfig {
        keys: vec![
            KeySpec::new(
                allowed.clone(),
                Some(Policy::allow(&["attestation"]).proof_of_possession()),
            ),
            KeySpec::new(refused.clone(), None),
            KeySpec::new(
                ed.clone(),
                Some(Policy::allow(&["attestation"]).proof_of_possession()),
            ),
        ],
        ..SignerConfig::default()
    })
    .await;
    let mut conn = signer.connect().await.unwrap();
    let pk = allowed.public_key();
    let pop_path =
        |pkh: &tezos_crypto::PublicKeyHash| signer.path(&format!("/bls_prove_possession/{pkh}"));

    let resp = conn.get(&pop_path(&pk.hash())).await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let proof = resp.json_str("bls_prove_possession").unwrap();
    assert!(proof.starts_with("BLsig"), "{proof}");
    pk.verify_proof_of_possession(&Signature::from_b58check(&proof).unwrap())
        .unwrap();

    // Octez's override: the key proves possession over another BLS public key.
    let other: PublicKey = refused.public_key();
    let resp = conn
        .get(&format!(
            "{}?bls_pk={}",
            pop_path(&pk.hash()),
            other.to_b58check()
        ))
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let proof = Signature::from_b58check(&resp.json_str("bls_prove_possession").unwrap()).unwrap();
    pk.verify_proof_of_possession_over(&proof, &other).unwrap();
    assert!(pk.verify_proof_of_possession(&proof).is_err());

    assert_error(
        &conn
            .get(&pop_path(&refused.public_key().hash()))
            .await
            .unwrap(),
        403,
    );
    let resp = conn.get(&pop_path(&ed.public_key().hash())).await.unwrap();
    assert!(resp.status == 400 || resp.status == 403, "{}", resp.text());
    assert_error(&resp, resp.status);
    let stranger = SecretKey::generate(Curve::Bls12_381).public_key().hash();
    assert_error(&conn.get(&pop_path(&stranger)).await.unwrap(), 404);
}

#[tokio::test]
async fn base_path_puts_every_route_under_the_prefix() {
    let key = SecretKey::generate(Curve::Secp256k1);
    let mut config = default_keys(std::slice::from_ref(&key));
    // Written with a trailing slash, as operators do; routes live under `/tezos/signer`.
    config.base_path = Some("/tezos/signer/".to_string());
    let signer = start(config).await;
    assert_eq!(signer.prefix, "/tezos/signer");
    let mut conn = signer.connect().await.unwrap();
    let pkh = key.public_key().hash();

    let resp = conn.get(&signer.key_path(&pkh)).await.unwrap();
    assert_eq!(
        resp.json_str("public_key"),
        Some(key.public_key().to_b58check())
    );
    let resp = conn.get(&signer.path("/authorized_keys")).await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Not allowed by this configuration: refused, as Octez refuses it without its flag.
    let resp = conn.get(&signer.path("/known_keys")).await.unwrap();
    assert_error(&resp, 403);
    sign_ok(
        &mut conn,
        &signer,
        &key,
        &Consensus::new(9, 0, 1).attestation(),
    )
    .await;

    // Nothing answers at the root.
    let resp = conn.get(&format!("/keys/{pkh}")).await.unwrap();
    assert_eq!(resp.status, 404, "{}", resp.text());
    let resp = conn
        .sign(
            &format!("/keys/{pkh}"),
            &Consensus::new(10, 0, 1).attestation(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 404, "{}", resp.text());
}
