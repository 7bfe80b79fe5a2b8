//! The promise of a remote signer, tested against the real process: one payload per
//! (key, kind, chain, level, round), whatever the concurrency, crashes and restarts, and a
//! store that two processes can never share.
//!
//! Limits: SIGKILL stops the process, not the machine, so the kernel still writes what the
//! process had handed to it; these tests catch a signature released before its watermark
//! reached the store's files (or while it was only in process memory), not a missing
//! fsync. The store's own tests cover torn and lost writes. There is no fault injection
//! into vaults, so "the backend failed after the watermark was reserved" is covered by the
//! signer crate's unit tests, not here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use signatory_e2e::requests::{Block, Consensus};
use signatory_e2e::signer::free_port;
use signatory_e2e::{Connection, KeySpec, SignerConfig, TestSigner};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tezos_crypto::{blake2b_256, Curve, SecretKey, SigningVersion};
use tokio::sync::Barrier;

fn config_for(keys: &[SecretKey]) -> SignerConfig {
    SignerConfig {
        keys: keys.iter().map(|k| KeySpec::new(k.clone(), None)).collect(),
        ..SignerConfig::default()
    }
}

/// Builds a request from a payload seed.
type Build = fn(u64) -> Vec<u8>;

/// Send every request at once, each on its own connection; return the replies in order.
async fn race(
    addr: SocketAddr,
    path: &str,
    requests: Vec<Vec<u8>>,
) -> Vec<(Vec<u8>, signatory_e2e::Response)> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let mut tasks = Vec::new();
    for bytes in requests {
        let barrier = barrier.clone();
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::connect(addr).await.unwrap();
            // Warm the connection so the race is between requests, not TCP handshakes.
            let _ = conn.get("/authorized_keys").await;
            barrier.wait().await;
            let resp = conn.sign(&path, &bytes).await.unwrap();
            (bytes, resp)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conflicting_requests_sign_exactly_one_payload() {
    const N: u64 = 48;
    let keys: Vec<SecretKey> = keys_of_every_curve();
    let mut signer = TestSigner::new(config_for(&keys)).unwrap();
    signer.start().await.unwrap();

    for key in &keys {
        let pk = key.public_key();
        let path = signer.key_path(&pk.hash());
        let kinds: [(&str, Build); 3] = [
            ("attestation", |p| Consensus::new(1000, 0, p).attestation()),
            ("preattestation", |p| {
                Consensus::new(1000, 0, p).preattestation()
            }),
            ("block", |p| Block::new(1000, 0, p).bytes()),
        ];
        for (kind, build) in kinds {
            let requests: Vec<Vec<u8>> = (0..N).map(build).collect();
            let replies = race(signer.api, &path, requests).await;
            let winners: Vec<_> = replies.iter().filter(|(_, r)| r.status == 200).collect();
            assert_eq!(
                winners.len(),
                1,
                "{} {kind}: {} of {N} conflicting requests were signed",
                pk.curve(),
                winners.len()
            );
            for (_, r) in replies.iter().filter(|(_, r)| r.status != 200) {
                assert_error(r, 409);
            }
            let (winner_bytes, winner) = winners[0];
            let sig = assert_signed(winner, &pk, winner_bytes, SigningVersion::V3);
            // Afterwards: the winner's bytes give its signature back, every loser stays refused.
            let mut conn = signer.connect().await.unwrap();
            assert_eq!(sign_ok(&mut conn, &signer, key, winner_bytes).await, sig);
            for (bytes, _) in replies.iter().filter(|(_, r)| r.status != 200).take(4) {
                assert_error(&conn.sign(&path, bytes).await.unwrap(), 409);
            }
        }
        // Identical requests racing each other all get the one signature.
        let same = Consensus::new(1001, 0, 9).attestation();
        let replies = race(signer.api, &path, vec![same.clone(); 16]).await;
        let sigs: std::collections::BTreeSet<String> = replies
            .iter()
            .map(|(b, r)| assert_signed(r, &pk, b, SigningVersion::V3))
            .collect();
        assert_eq!(
            sigs.len(),
            1,
            "{}: identical racing requests got {} signatures",
            pk.curve(),
            sigs.len()
        );
    }
}

/// A signature a client received: which key, where, over what.
#[derive(Debug, Clone)]
struct Received {
    key: usize,
    level: i32,
    round: i32,
    bytes: Vec<u8>,
    signature: String,
}

/// Run `clients` load loops against the signer until `stop` or a connection error. Two
/// consecutive requests per key share a level with different payloads, so requests also
/// conflict while the signer is being killed.
async fn load(
    addr: SocketAddr,
    paths: Arc<Vec<String>>,
    counters: Arc<Vec<AtomicU64>>,
    clients: usize,
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<Received>>>,
) -> usize {
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (paths, counters, stop, received) = (
            paths.clone(),
            counters.clone(),
            stop.clone(),
            received.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let key = client % paths.len();
            let Ok(mut conn) = Connection::connect(addr).await else {
                return 0;
            };
            let mut refused = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let n = counters[key].fetch_add(1, Ordering::Relaxed);
                let level = 1 + (n / 2) as i32;
                let round = (n % 3) as i32 / 2;
                let bytes = Consensus::new(level, round, (client as u64) << 32 | n).attestation();
                match conn.sign(&paths[key], &bytes).await {
                    Ok(r) if r.status == 200 => {
                        let signature = r.json_str("signature").unwrap();
                        received.lock().unwrap().push(Received {
                            key,
                            level,
                            round,
                            bytes,
                            signature,
                        });
                    }
                    Ok(r) if r.status == 409 => refused += 1,
                    Ok(r) => panic!("unexpected reply under load: {} {}", r.status, r.text()),
                    // The signer was killed.
                    Err(_) => break,
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await.unwrap();
    }
    refused
}

/// The watermarks the store holds, read with `signatory watermark export` from a stopped
/// or running signer: (pkh, kind) → (level, round, request hash hex).
fn exported_watermarks(signer: &TestSigner) -> HashMap<(String, String), (i64, i64, String)> {
    let out = signer
        .cli(&["watermark", "export", "--format", "signatory"])
        .unwrap();
    assert!(
        out.status.success(),
        "watermark export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "export is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let mut marks = HashMap::new();
    for w in doc["watermarks"]
        .as_array()
        .unwrap_or_else(|| panic!("no `watermarks` list in {doc}"))
    {
        marks.insert(
            (
                w["pkh"].as_str().unwrap().to_string(),
                w["kind"].as_str().unwrap().to_string(),
            ),
            (
                w["level"].as_i64().unwrap(),
                w["round"].as_i64().unwrap(),
                w["request_hash"].as_str().unwrap_or_default().to_string(),
            ),
        );
    }
    marks
}

/// What a kill -9 run found: every broken promise, in words.
#[derive(Debug, Default)]
struct Findings {
    received: usize,
    refused_under_load: usize,
    violations: Vec<String>,
}

/// Sign under load, SIGKILL the signer `cycles` times, restart it, and check every
/// signature any client received against the restarted signer (and, for the file store,
/// against `signatory watermark export`).
async fn kill_9_scenario(watermark_driver: Option<&str>, cycles: usize) -> Findings {
    const CLIENTS: usize = 16;
    let keys: Vec<SecretKey> = keys_of_every_curve();
    let mut config = config_for(&keys);
    config.watermark_driver = watermark_driver.map(str::to_owned);
    let mut signer = TestSigner::new(config).unwrap();
    let paths: Arc<Vec<String>> = Arc::new(
        keys.iter()
            .map(|k| signer.key_path(&k.public_key().hash()))
            .collect(),
    );
    let counters: Arc<Vec<AtomicU64>> = Arc::new(keys.iter().map(|_| AtomicU64::new(0)).collect());
    let received = Arc::new(Mutex::new(Vec::<Received>::new()));
    let mut refused_under_load = 0;
    let mut violations = Vec::new();
    let mut violation = |v: String| violations.push(v);

    for cycle in 0..cycles {
        signer.start().await.unwrap();
        let before = received.lock().unwrap().len();
        let stop = Arc::new(AtomicBool::new(false));
        let loader = tokio::spawn(load(
            signer.api,
            paths.clone(),
            counters.clone(),
            CLIENTS,
            stop.clone(),
            received.clone(),
        ));
        // Kill once enough has been signed that requests are surely in flight.
        let started = Instant::now();
        while received.lock().unwrap().len() < before + 200
            && started.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        signer.kill9().unwrap();
        stop.store(true, Ordering::Relaxed);
        refused_under_load += loader.await.unwrap();
        let got = received.lock().unwrap().len() - before;
        assert!(
            got >= 200,
            "cycle {cycle}: only {got} signatures before the kill"
        );
    }
    let received = received.lock().unwrap().clone();

    // While running: never two different payloads signed at one (key, level, round).
    let mut by_height: BTreeMap<(usize, i32, i32), &Received> = BTreeMap::new();
    for r in &received {
        if let Some(prev) = by_height.insert((r.key, r.level, r.round), r) {
            if prev.bytes != r.bytes || prev.signature != r.signature {
                violation(format!(
                    "two payloads signed at {:?}",
                    (r.key, r.level, r.round)
                ));
            }
        }
    }
    let mut highest: BTreeMap<usize, &Received> = BTreeMap::new();
    for r in &received {
        let e = highest.entry(r.key).or_insert(r);
        if (r.level, r.round) > (e.level, e.round) {
            *e = r;
        }
    }

    // (c) The store, read by the CLI while no signer runs, holds marks at least as high as
    // every signature a client got, and the highest one is that signature's request.
    let marks = if watermark_driver.is_none() {
        Some(exported_watermarks(&signer))
    } else {
        None
    };
    if let Some(marks) = &marks {
        for (key, top) in &highest {
            let pkh = keys[*key].public_key().hash().to_string();
            let Some((level, round, hash)) = marks.get(&(pkh.clone(), "attestation".to_string()))
            else {
                violation(format!("no attestation watermark exported for {pkh}"));
                continue;
            };
            if (*level, *round) < (top.level as i64, top.round as i64) {
                violation(format!(
                    "{pkh}: exported mark ({level}, {round}) is below a released signature ({}, {})",
                    top.level, top.round
                ));
            }
            if (*level, *round) == (top.level as i64, top.round as i64)
                && hash != &hex::encode(blake2b_256(&top.bytes))
            {
                violation(format!(
                    "{pkh}: the mark at ({level}, {round}) is for another payload"
                ));
            }
        }
    }

    signer.start().await.unwrap();
    let mut conn = signer.connect().await.unwrap();
    // (b) Another payload at any (level, round) a client got a signature for, or one level
    // below: refused. (Checked before (a), so that a forgetful signer cannot hide behind a
    // mark that re-signing the same bytes would put back.)
    for r in &received {
        let pkh = keys[r.key].public_key().hash().to_string();
        for (level, round) in [(r.level, r.round), (r.level - 1, r.round)] {
            let other = Consensus::new(level, round, u64::MAX - 1).attestation();
            let resp = conn.sign(&paths[r.key], &other).await.unwrap();
            if resp.status != 409 {
                violation(format!(
                    "{pkh}: another payload at ({level}, {round}) after a signature at ({}, {}) got {}",
                    r.level, r.round, resp.status
                ));
            }
        }
    }
    for r in &received {
        // (a) The same bytes: the same signature, or a refusal when a higher mark exists;
        // never a second, different signature. The latest signature of each key must come
        // back when the store's mark is exactly there.
        let resp = conn.sign(&paths[r.key], &r.bytes).await.unwrap();
        let at_top = highest.get(&r.key).map(|t| (t.level, t.round)) == Some((r.level, r.round));
        let pkh = keys[r.key].public_key().hash().to_string();
        let mark_here = marks
            .as_ref()
            .and_then(|m| m.get(&(pkh.clone(), "attestation".to_string())))
            .is_some_and(|m| (m.0, m.1) == (r.level as i64, r.round as i64));
        match resp.status {
            200 if resp.json_str("signature").as_deref() != Some(r.signature.as_str()) => {
                violation(format!(
                    "{pkh} ({}, {}): a second, different signature for the same bytes",
                    r.level, r.round
                ));
            }
            200 => {}
            409 if at_top && mark_here => {
                violation(format!(
                    "{pkh} ({}, {}): the latest signature is not returned after restart",
                    r.level, r.round
                ));
            }
            409 => {}
            other => violation(format!(
                "{pkh}: same bytes after restart got {other}: {}",
                resp.text()
            )),
        }
    }
    // And the signer goes on signing above the marks.
    for (i, key) in keys.iter().enumerate() {
        let next = counters[i].load(Ordering::Relaxed) as i32 + 10;
        sign_ok(
            &mut conn,
            &signer,
            key,
            &Consensus::new(next, 0, 1).attestation(),
        )
        .await;
    }
    Findings {
        received: received.len(),
        refused_under_load,
        violations,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_never_forgets_a_released_signature() {
    let findings = kill_9_scenario(None, 3).await;
    eprintln!(
        "kill -9 test: {} signatures received over 3 kills, {} conflicting requests refused",
        findings.received, findings.refused_under_load
    );
    assert!(
        findings.violations.is_empty(),
        "{} violations, first ones:\n{}",
        findings.violations.len(),
        findings
            .violations
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The scenario above can fail: with watermarks kept only in memory (`watermark.driver:
/// mem`), a restarted signer has forgotten what it signed, and the checks must say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_scenario_detects_a_signer_that_forgets() {
    let findings = kill_9_scenario(Some("mem"), 1).await;
    assert!(
        findings
            .violations
            .iter()
            .any(|v| v.contains("another payload at")),
        "a memory-only store went unnoticed: {:?}",
        findings.violations.iter().take(5).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn sigterm_then_restart_keeps_watermarks_and_signatures() {
    let keys = keys_of_every_curve();
    let mut signer = TestSigner::new(config_for(&keys)).unwrap();
    signer.start().await.unwrap();
    let mut conn = signer.connect().await.unwrap();
    let bytes = Consensus::new(77, 1, 1).attestation();
    let mut sigs = Vec::new();
    for key in &keys {
        sigs.push(sign_ok(&mut conn, &signer, key, &bytes).await);
    }
    let status = signer.terminate().unwrap();
    assert!(
        status.success(),
        "SIGTERM exit: {status}; log:\n{}",
        signer.log()
    );

    signer.start().await.unwrap();
    let mut conn = signer.connect().await.unwrap();
    for (key, sig) in keys.iter().zip(&sigs) {
        assert_eq!(&sign_ok(&mut conn, &signer, key, &bytes).await, sig);
        assert_error(
            &post(
                &mut conn,
                &signer,
                key,
                &Consensus::new(77, 1, 2).attestation(),
            )
            .await,
            409,
        );
        assert_error(
            &post(
                &mut conn,
                &signer,
                key,
                &Consensus::new(77, 0, 1).attestation(),
            )
            .await,
            409,
        );
    }
}

#[tokio::test]
async fn a_second_signer_on_the_same_base_dir_refuses_to_start() {
    let key = SecretKey::generate(Curve::Ed25519);
    let mut first = TestSigner::new(config_for(std::slice::from_ref(&key))).unwrap();
    first.start().await.unwrap();

    let api2 = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let util2 = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let config2 = first.write_config_copy("second.yaml", api2, util2).unwrap();
    let log2 = first.new_file("second.log").unwrap();
    let mut second = first.spawn_serve(&config2, &log2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!(
                "a second signer kept running on the same store; its log:\n{}",
                std::fs::read_to_string(&log2).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(&log2).unwrap();
    assert!(!status.success(), "second signer exited with success");
    assert!(
        log.contains("locked by another process"),
        "the refusal does not say why:\n{log}"
    );
    // It never listened.
    assert!(Connection::connect(api2).await.is_err());

    // The first one is unaffected.
    let mut conn = first.connect().await.unwrap();
    sign_ok(
        &mut conn,
        &first,
        &key,
        &Consensus::new(3, 0, 1).attestation(),
    )
    .await;

    // Once the first has stopped, the lock is gone with it: the second starts.
    first.terminate().unwrap();
    let mut second = first.spawn_serve(&config2, &log2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answered = false;
    while Instant::now() < deadline && !answered {
        if let Ok(mut c) = Connection::connect(api2).await {
            answered = c
                .get("/authorized_keys")
                .await
                .map(|r| r.status == 200)
                .unwrap_or(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = second.kill();
    let _ = second.wait();
    assert!(
        answered,
        "the second signer did not start after the first stopped:\n{}",
        std::fs::read_to_string(&log2).unwrap_or_default()
    );
}

#[tokio::test]
async fn moving_the_watermark_store_away_stops_signing_and_health() {
    let key = SecretKey::generate(Curve::Ed25519);
    let mut signer = TestSigner::new(config_for(std::slice::from_ref(&key))).unwrap();
    signer.start().await.unwrap();
    let mut conn = signer.connect().await.unwrap();
    let mut util = Connection::connect(signer.utility).await.unwrap();
    sign_ok(
        &mut conn,
        &signer,
        &key,
        &Consensus::new(10, 0, 1).attestation(),
    )
    .await;
    assert_eq!(util.get("/healthz").await.unwrap().status, 200);

    // Where the next start would find no store, and `watermark init` would make a new one.
    let store = signer.base_dir.join("watermarks");
    std::fs::rename(&store, signer.base_dir.join("watermarks.moved")).unwrap();

    // Nobody polled /healthz: the next request itself is refused, not signed.
    let resp = post(
        &mut conn,
        &signer,
        &key,
        &Consensus::new(11, 0, 1).attestation(),
    )
    .await;
    let msg = assert_error(&resp, 500);
    assert!(msg.contains("watermark"), "{msg}");

    let health = util.get("/healthz").await.unwrap();
    assert_eq!(health.status, 503, "{}", health.text());
    let body = health.json().unwrap();
    assert_eq!(body["ready"], false);
    let reason = body["error"].as_str().unwrap();
    assert!(
        reason.contains(&store.display().to_string()) && reason.contains("moved"),
        "{reason}"
    );
    // Even the signature already given for the same bytes stays withheld.
    let resp = post(
        &mut conn,
        &signer,
        &key,
        &Consensus::new(10, 0, 1).attestation(),
    )
    .await;
    assert_error(&resp, 500);
}
