//! Import and export: Octez files, ECAD Signatory files, our interchange document.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use signatory_signer::store::WatermarkStore;
use signatory_signer::watermark::{Watermark, WatermarkKey};
use signatory_stores::interchange::{
    find_foreign_watermarks, from_interchange_json, import_into, read_ecad_dir, read_octez_dir,
    to_interchange_json, write_octez_dir, ImportError, ImportReport,
};
use signatory_stores::{FileStore, MemStore};
use std::fs;
use tezos_crypto::base58::{encode, Prefix};
use tezos_crypto::{ChainId, PublicKeyHash};
use tezos_encoding::WatermarkKind;

const MAINNET: &str = "NetXdQprcVkpaWU";
const GHOSTNET: &str = "NetXnHfVqm9iesp";
const BAKER: &str = "tz1b9kV41KV9N3sp69ycLdSoZ2Ak8jXwtNPv";
const BLS_BAKER: &str = "tz4JmbuiJGyC2thisABCS59PnGr749dsP4WY";

fn chain(s: &str) -> ChainId {
    s.parse().unwrap()
}

fn pkh(s: &str) -> PublicKeyHash {
    s.parse().unwrap()
}

fn k(chain_id: &str, baker: &str, kind: WatermarkKind) -> WatermarkKey {
    WatermarkKey::new(chain(chain_id), pkh(baker), kind)
}

fn edsig(n: u8) -> String {
    encode(Prefix::Edsig, &[n; 64])
}

fn find(records: &[(WatermarkKey, Watermark)], key: WatermarkKey) -> &Watermark {
    &records.iter().find(|(k, _)| *k == key).unwrap().1
}

fn octez_mark(chain_id: &str, baker: &str, level: i32, round: i32, h: u8) -> String {
    format!(
        r#"{{"{chain_id}":{{"{baker}":{{"level":{level},"round":{round},"hash":"{}"}}}}}}"#,
        hex::encode([h; 32])
    )
}

#[test]
fn an_octez_signer_base_dir_is_read_with_optional_round() {
    // Laid out as a current octez-signer leaves its base directory.
    let dir = tempfile::tempdir().unwrap();
    let hash_a = hex::encode([0xa1u8; 32]);
    let hash_b = hex::encode([0xb2u8; 32]);
    fs::write(dir.path().join("secret_keys"), "[]").unwrap();
    fs::write(dir.path().join("public_keys"), "[]").unwrap();
    fs::write(dir.path().join("public_key_hashs"), "[]").unwrap();
    fs::create_dir_all(dir.path().join("logs").join("octez-signer")).unwrap();
    fs::write(
        dir.path().join("block_high_watermarks"),
        format!(
            r#"{{"{MAINNET}":{{"{BAKER}":{{"level":5000123,"round":2,"hash":"{hash_a}","signature":"{sig}"}},
                "{BLS_BAKER}":{{"level":7,"hash":"{hash_b}"}}}},
               "{GHOSTNET}":{{"{BAKER}":{{"level":99,"round":0,"hash":"{hash_b}"}}}}}}"#,
            sig = edsig(1)
        ),
    )
    .unwrap();
    fs::write(
        dir.path().join("preattestation_high_watermarks"),
        octez_mark(MAINNET, BAKER, 400, 1, 0xa1),
    )
    .unwrap();
    fs::write(
        dir.path().join("attestation_high_watermarks"),
        octez_mark(MAINNET, BAKER, 399, 0, 0xb2),
    )
    .unwrap();

    let records = read_octez_dir(dir.path()).unwrap();
    assert_eq!(records.len(), 5);
    assert_eq!(
        find(&records, k(MAINNET, BAKER, WatermarkKind::Block)),
        &Watermark {
            level: 5_000_123,
            round: 2,
            request_hash: [0xa1; 32],
            signature: Some(edsig(1)),
        }
    );
    // No round (a pre-Tenderbake record): the whole level stays taken.
    let no_round = find(&records, k(MAINNET, BLS_BAKER, WatermarkKind::Block));
    assert_eq!((no_round.level, no_round.round), (7, i32::MAX));
    assert_eq!(
        find(&records, k(GHOSTNET, BAKER, WatermarkKind::Block)).level,
        99
    );
    let pre = find(&records, k(MAINNET, BAKER, WatermarkKind::Preattestation));
    assert_eq!((pre.level, pre.round), (400, 1));
    let att = find(&records, k(MAINNET, BAKER, WatermarkKind::Attestation));
    assert_eq!(
        (att.level, att.round, att.request_hash),
        (399, 0, [0xb2; 32])
    );
}

#[test]
fn pre_v23_octez_names_are_read_into_the_attestation_slots() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("block_high_watermarks"),
        octez_mark(MAINNET, BAKER, 30, 0, 1),
    )
    .unwrap();
    fs::write(
        dir.path().join("preendorsement_high_watermarks"),
        octez_mark(MAINNET, BAKER, 29, 1, 2),
    )
    .unwrap();
    fs::write(
        dir.path().join("endorsement_high_watermarks"),
        octez_mark(MAINNET, BAKER, 28, 2, 3),
    )
    .unwrap();
    let records = read_octez_dir(dir.path()).unwrap();
    assert_eq!(records.len(), 3);
    let pre = find(&records, k(MAINNET, BAKER, WatermarkKind::Preattestation));
    assert_eq!((pre.level, pre.round, pre.request_hash), (29, 1, [2; 32]));
    let att = find(&records, k(MAINNET, BAKER, WatermarkKind::Attestation));
    assert_eq!((att.level, att.round, att.request_hash), (28, 2, [3; 32]));
}

#[test]
fn current_legacy_and_singular_octez_files_of_one_kind_keep_the_higher_mark() {
    let dir = tempfile::tempdir().unwrap();
    let both = |a: String, b: String| {
        // Two chains' worth of marks in one file: merge the two JSON objects.
        let mut a: serde_json::Value = serde_json::from_str(&a).unwrap();
        let b: serde_json::Value = serde_json::from_str(&b).unwrap();
        for (chain_id, marks) in b.as_object().unwrap() {
            a[chain_id] = marks.clone();
        }
        a.to_string()
    };
    // Mainnet: the legacy file is higher (Octez wrote it last before an upgrade that left
    // it behind). Ghostnet: the current file is higher.
    fs::write(
        dir.path().join("preattestation_high_watermarks"),
        both(
            octez_mark(MAINNET, BAKER, 400, 1, 1),
            octez_mark(GHOSTNET, BAKER, 80, 0, 1),
        ),
    )
    .unwrap();
    fs::write(
        dir.path().join("preendorsement_high_watermarks"),
        both(
            octez_mark(MAINNET, BAKER, 400, 3, 2),
            octez_mark(GHOSTNET, BAKER, 79, 5, 2),
        ),
    )
    .unwrap();
    // The singular spelling is read too, and is higher for attestations.
    fs::write(
        dir.path().join("attestation_high_watermarks"),
        octez_mark(MAINNET, BAKER, 12, 0, 3),
    )
    .unwrap();
    fs::write(
        dir.path().join("endorsement_high_watermarks"),
        octez_mark(MAINNET, BAKER, 11, 0, 4),
    )
    .unwrap();
    fs::write(
        dir.path().join("attestation_high_watermark"),
        octez_mark(MAINNET, BAKER, 13, 0, 5),
    )
    .unwrap();

    let records = read_octez_dir(dir.path()).unwrap();
    assert_eq!(records.len(), 3);
    let pre = find(&records, k(MAINNET, BAKER, WatermarkKind::Preattestation));
    assert_eq!((pre.level, pre.round, pre.request_hash), (400, 3, [2; 32]));
    let pre = find(&records, k(GHOSTNET, BAKER, WatermarkKind::Preattestation));
    assert_eq!((pre.level, pre.round, pre.request_hash), (80, 0, [1; 32]));
    let att = find(&records, k(MAINNET, BAKER, WatermarkKind::Attestation));
    assert_eq!((att.level, att.request_hash), (13, [5; 32]));
}

#[test]
fn octez_import_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_octez_dir(dir.path()).unwrap_err();
    assert!(matches!(err, ImportError::NothingFound { .. }), "{err}");
    // The message lists the names Octez really uses.
    let text = err.to_string();
    for name in [
        "block_high_watermarks",
        "preattestation_high_watermarks",
        "attestation_high_watermarks",
        "preendorsement_high_watermarks",
        "endorsement_high_watermarks",
    ] {
        assert!(text.contains(name), "{text}");
    }
    fs::write(
        dir.path().join("block_high_watermarks"),
        format!(r#"{{"{MAINNET}":{{"{BAKER}":{{"level":1,"round":0,"hash":"abcd"}}}}}}"#),
    )
    .unwrap();
    let err = read_octez_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("32 bytes"), "{err}");
    fs::write(
        dir.path().join("block_high_watermarks"),
        format!(
            r#"{{"{MAINNET}":{{"{BAKER}":{{"level":1,"round":0,"hash":"{}","signature":"edsigNOPE"}}}}}}"#,
            hex::encode([0u8; 32])
        ),
    )
    .unwrap();
    let err = read_octez_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("not a signature"), "{err}");
}

#[test]
fn ecad_files_merge_attestation_with_dal_into_attestation() {
    let base = tempfile::tempdir().unwrap();
    let wm = base.path().join("watermark_v2");
    fs::create_dir(&wm).unwrap();
    let vh = encode(Prefix::PayloadHash, &[0x5a; 32]);
    fs::write(
        wm.join(format!("{MAINNET}.json")),
        format!(
            r#"{{"{BAKER}":{{
                "block":{{"level":300,"round":0,"hash":"{vh}"}},
                "preattestation":{{"level":300,"round":1,"hash":null}},
                "attestation":{{"level":300,"round":0,"hash":"{vh}"}},
                "attestation_with_dal":{{"level":300,"round":1,"hash":"{vh}"}}
            }}}}"#
        ),
    )
    .unwrap();
    fs::write(
        wm.join(format!("{GHOSTNET}.json")),
        format!(r#"{{"{BLS_BAKER}":{{"endorsement":{{"level":8,"round":2}}}}}}"#),
    )
    .unwrap();
    fs::write(wm.join("README"), "not a chain file").unwrap();

    for dir in [base.path(), wm.as_path()] {
        let records = read_ecad_dir(dir).unwrap();
        assert_eq!(records.len(), 4);
        // ECAD keeps a block's payload round, possibly below its round: the level is taken.
        let block = find(&records, k(MAINNET, BAKER, WatermarkKind::Block));
        assert_eq!((block.level, block.round), (300, i32::MAX));
        let att = find(&records, k(MAINNET, BAKER, WatermarkKind::Attestation));
        assert_eq!(
            (att.level, att.round),
            (300, 1),
            "the higher of the two slots"
        );
        assert_eq!(att.request_hash, [0x5a; 32]);
        assert_eq!(att.signature, None);
        let pre = find(&records, k(MAINNET, BAKER, WatermarkKind::Preattestation));
        assert_eq!((pre.level, pre.round, pre.request_hash), (300, 1, [0; 32]));
        let old = find(&records, k(GHOSTNET, BLS_BAKER, WatermarkKind::Attestation));
        assert_eq!((old.level, old.round), (8, 2));
    }

    fs::write(
        wm.join(format!("{MAINNET}.json")),
        format!(r#"{{"{BAKER}":{{"generic":{{"level":1,"round":0}}}}}}"#),
    )
    .unwrap();
    let err = read_ecad_dir(base.path()).unwrap_err();
    assert!(err.to_string().contains("unknown request kind"), "{err}");
    assert!(matches!(
        read_ecad_dir(&base.path().join("absent")),
        Err(ImportError::NothingFound { .. })
    ));
}

/// Older ECAD releases left `watermark/` (kind → pkh → mark) or `watermark_v1/` (pkh → one
/// mark for all kinds); ECAD still migrates them at start, so a base directory may hold
/// only these. All are read, and the higher watermark wins.
#[test]
fn older_ecad_layouts_are_read_and_v1_takes_the_whole_level_for_every_kind() {
    let base = tempfile::tempdir().unwrap();
    let v0 = base.path().join("watermark");
    let v1 = base.path().join("watermark_v1");
    fs::create_dir(&v0).unwrap();
    fs::create_dir(&v1).unwrap();
    let vh = encode(Prefix::PayloadHash, &[0x33; 32]);
    fs::write(
        v0.join(format!("{MAINNET}.json")),
        format!(
            r#"{{"block":{{"{BAKER}":{{"level":90,"round":1,"hash":"{vh}"}}}},
                "endorsement":{{"{BAKER}":{{"level":91,"round":0,"hash":"{vh}"}}}},
                "preendorsement":{{"{BAKER}":{{"level":91,"round":2}}}}}}"#
        ),
    )
    .unwrap();
    // The last thing this key signed under v1 was an endorsement at level 120: a block or
    // preendorsement may have been signed at 120 before it.
    fs::write(
        v1.join(format!("{MAINNET}.json")),
        format!(r#"{{"{BAKER}":{{"level":120,"round":3,"order":2,"hash":"{vh}"}}}}"#),
    )
    .unwrap();
    fs::write(
        v1.join(format!("{GHOSTNET}.json")),
        format!(r#"{{"{BLS_BAKER}":{{"level":7,"round":null,"order":0,"hash":null}}}}"#),
    )
    .unwrap();

    let records = read_ecad_dir(base.path()).unwrap();
    for kind in [
        WatermarkKind::Block,
        WatermarkKind::Preattestation,
        WatermarkKind::Attestation,
    ] {
        let m = find(&records, k(MAINNET, BAKER, kind));
        assert_eq!((m.level, m.round), (120, i32::MAX), "{kind:?}");
        let m = find(&records, k(GHOSTNET, BLS_BAKER, kind));
        assert_eq!((m.level, m.round), (7, i32::MAX), "{kind:?}");
    }
    assert_eq!(records.len(), 6);

    // Each directory alone, named directly.
    let only_v0 = read_ecad_dir(&v0).unwrap();
    let block = find(&only_v0, k(MAINNET, BAKER, WatermarkKind::Block));
    assert_eq!((block.level, block.round), (90, i32::MAX));
    let att = find(&only_v0, k(MAINNET, BAKER, WatermarkKind::Attestation));
    assert_eq!(
        (att.level, att.round, att.request_hash),
        (91, 0, [0x33; 32])
    );
    let pre = find(&only_v0, k(MAINNET, BAKER, WatermarkKind::Preattestation));
    assert_eq!((pre.level, pre.round), (91, 2));
    assert_eq!(read_ecad_dir(&v1).unwrap().len(), 6);

    fs::write(
        v1.join(format!("{GHOSTNET}.json")),
        r#"{"tz1nope":{"level":1}}"#,
    )
    .unwrap();
    assert!(read_ecad_dir(base.path()).is_err());
    assert_eq!(
        find_foreign_watermarks(base.path()),
        [v1.clone(), v0.clone()],
        "both older directories are another signer's watermarks"
    );
}

fn mark(level: i32, round: i32, h: u8, sig: Option<String>) -> Watermark {
    Watermark {
        level,
        round,
        request_hash: [h; 32],
        signature: sig,
    }
}

#[tokio::test]
async fn import_takes_the_max_and_never_lowers() {
    let store = MemStore::new();
    let block = k(MAINNET, BAKER, WatermarkKind::Block);
    let pre = k(MAINNET, BAKER, WatermarkKind::Preattestation);
    let att = k(MAINNET, BAKER, WatermarkKind::Attestation);
    store
        .set(block, mark(200, 0, 1, None), false)
        .await
        .unwrap();
    store.set(pre, mark(100, 0, 1, None), false).await.unwrap();

    let report = import_into(
        &store,
        vec![
            (block, mark(150, 5, 2, None)),         // lower: kept
            (pre, mark(100, 2, 3, Some(edsig(3)))), // higher round: raised
            (att, mark(90, 0, 4, None)),
            (att, mark(91, 0, 5, None)), // same key twice: the higher is imported
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        report,
        ImportReport {
            added: 1,
            raised: 1,
            kept: 1
        }
    );
    assert_eq!(store.get(block).await.unwrap(), Some(mark(200, 0, 1, None)));
    assert_eq!(
        store.get(pre).await.unwrap(),
        Some(mark(100, 2, 3, Some(edsig(3))))
    );
    assert_eq!(store.get(att).await.unwrap(), Some(mark(91, 0, 5, None)));

    // Same height, other bytes: kept as is.
    let report = import_into(&store, vec![(block, mark(200, 0, 9, None))])
        .await
        .unwrap();
    assert_eq!(report.kept, 1);
    assert_eq!(store.get(block).await.unwrap(), Some(mark(200, 0, 1, None)));
}

#[tokio::test]
async fn interchange_round_trips_through_a_file_store() {
    let base = tempfile::tempdir().unwrap();
    FileStore::init(base.path()).unwrap();
    let store = FileStore::open(base.path()).unwrap();
    let records = vec![
        (
            k(MAINNET, BAKER, WatermarkKind::Block),
            mark(10, 1, 1, Some(edsig(1))),
        ),
        (
            k(GHOSTNET, BLS_BAKER, WatermarkKind::Attestation),
            mark(-1, 0, 2, None),
        ),
    ];
    import_into(&store, records.clone()).await.unwrap();
    let exported = store.export().await.unwrap();
    let json = to_interchange_json(&exported).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["format"], "signatory-watermarks");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["watermarks"][0]["chain_id"], MAINNET);
    assert_eq!(doc["watermarks"][0]["kind"], "block");
    assert_eq!(doc["watermarks"][0]["request_hash"], hex::encode([1u8; 32]));
    assert!(doc["watermarks"][1].get("signature").is_none());

    let mut expected = records;
    expected.sort_by_key(|(key, _)| *key);
    assert_eq!(from_interchange_json(&json, "test").unwrap(), expected);

    let newer = json.replace("\"version\": 1", "\"version\": 2");
    let err = from_interchange_json(&newer, "test").unwrap_err();
    assert!(
        err.to_string().contains("version 2 is not supported"),
        "{err}"
    );
    let extra = json.replace("\"version\": 1", "\"version\": 1, \"surprise\": true");
    assert!(matches!(
        from_interchange_json(&extra, "test"),
        Err(ImportError::Json { .. })
    ));
}

#[test]
fn octez_export_writes_current_names_and_never_lowers_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let block = k(MAINNET, BAKER, WatermarkKind::Block);
    let pre = k(MAINNET, BAKER, WatermarkKind::Preattestation);
    let att = k(MAINNET, BAKER, WatermarkKind::Attestation);
    // The Octez signer already stands higher for attestations, and for preattestations
    // in a file under the pre-v23 name.
    fs::write(
        dir.path().join("attestation_high_watermarks"),
        octez_mark(MAINNET, BAKER, 500, 0, 7),
    )
    .unwrap();
    fs::write(
        dir.path().join("preendorsement_high_watermarks"),
        octez_mark(MAINNET, BAKER, 450, 1, 8),
    )
    .unwrap();
    let records = vec![
        (block, mark(42, 3, 1, Some(edsig(2)))),
        (pre, mark(410, 0, 3, None)),
        (att, mark(400, 0, 2, None)),
    ];
    let written = write_octez_dir(dir.path(), &records).unwrap();
    let names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "block_high_watermarks",
            "preattestation_high_watermarks",
            "attestation_high_watermarks"
        ]
    );
    assert!(!dir.path().join("block_high_watermark").exists());

    let raw: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(dir.path().join("block_high_watermarks")).unwrap(),
    )
    .unwrap();
    let entry = &raw[MAINNET][BAKER];
    assert_eq!(entry["level"], 42);
    assert_eq!(entry["round"], 3);
    assert_eq!(entry["hash"], hex::encode([1u8; 32]));
    assert_eq!(entry["signature"], edsig(2));
    // The legacy file's higher mark is carried into the file current Octez reads.
    let raw: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(dir.path().join("preattestation_high_watermarks")).unwrap(),
    )
    .unwrap();
    assert_eq!(raw[MAINNET][BAKER]["level"], 450);

    let back = read_octez_dir(dir.path()).unwrap();
    assert_eq!(find(&back, block), &mark(42, 3, 1, Some(edsig(2))));
    assert_eq!(find(&back, pre), &mark(450, 1, 8, None));
    assert_eq!(find(&back, att), &mark(500, 0, 7, None));
}

#[test]
fn foreign_watermarks_are_octez_files_and_ecad_chain_files_only() {
    let base = tempfile::tempdir().unwrap();
    assert!(find_foreign_watermarks(base.path()).is_empty());
    // This signer's own store, other files, and an ECAD directory without a chain file.
    FileStore::init(base.path()).unwrap();
    fs::write(base.path().join("secret_keys"), "[]").unwrap();
    fs::create_dir(base.path().join("watermark_v2")).unwrap();
    fs::write(base.path().join("watermark_v2").join("README"), "").unwrap();
    assert!(find_foreign_watermarks(base.path()).is_empty());
    assert!(find_foreign_watermarks(&base.path().join("absent")).is_empty());

    fs::write(
        base.path()
            .join("watermark_v2")
            .join(format!("{MAINNET}.json")),
        "{}",
    )
    .unwrap();
    fs::write(base.path().join("endorsement_high_watermarks"), "{}").unwrap();
    assert_eq!(
        find_foreign_watermarks(base.path()),
        [
            base.path().join("endorsement_high_watermarks"),
            base.path().join("watermark_v2")
        ]
    );
}
