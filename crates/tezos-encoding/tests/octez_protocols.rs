//! Octez's regression outputs for 024, 025 and alpha (`tests/fixtures/octez/`): every
//! sample decodes under its own protocol, with the kinds and field values of Octez's JSON,
//! and the fields that changed in 025 (entrapment lag index, multi-lag DAL content, tz5)
//! read as 025 reads them and differently under 024.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod octez_json;

use octez_json::{compare, scalar};
use serde_json::Value;
use tezos_encoding::{DalAttested, LagSlots, Protocol, SigningRequest};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Fields whose value must be equal wherever Octez's JSON has them as a scalar.
const MUST_MATCH: [&str; 19] = [
    "kind",
    "source",
    "fee",
    "counter",
    "gas_limit",
    "storage_limit",
    "amount",
    "destination",
    "public_key",
    "pk",
    "delegate",
    "level",
    "round",
    "slot",
    "dal_attestation",
    "consensus_slot",
    "slot_index",
    "lag_index",
    "ballot",
];

/// `(name, bytes with the 0x03 magic)` of one `.out` file.
fn samples(file: &str) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/octez/{file}")).unwrap();
    text.lines()
        .map(|line| {
            let (name, hex) = line.split_once(": ").unwrap();
            let name = name.trim_start_matches("operation.unsigned-").to_owned();
            (name, hex::decode(format!("03{hex}")).unwrap())
        })
        .collect()
}

fn sample(file: &str, name: &str) -> Vec<u8> {
    samples(file)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no sample {name} in {file}"))
        .1
}

/// Octez's JSON for a 025 (and alpha: the files are identical) sample.
fn u025_json(name: &str) -> Value {
    let path = format!("{FIXTURES}/octez/u025-json/operation.unsigned-{name}.sample.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Octez's JSON for a 024 sample, from the 023/024 fixture file.
fn t024_json(name: &str) -> Value {
    let all: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/octez_regression.json")).unwrap(),
    )
    .unwrap();
    all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["protocol"] == "t024" && c["name"] == name)
        .unwrap_or_else(|| panic!("no t024 JSON for {name}"))["octez_json"]
        .clone()
}

/// Decodes every sample of `file` under `protocol` and checks it against `json`.
fn check_all(file: &str, protocol: Protocol, json: fn(&str) -> Value) -> usize {
    let all = samples(file);
    assert_eq!(all.len(), 26, "{file}");
    let mut bad = Vec::new();
    let mut compared = 0;
    for (name, bytes) in &all {
        let request = SigningRequest::decode(bytes, protocol)
            .unwrap_or_else(|e| panic!("{file} {name} under {protocol}: {e}"));
        let octez = json(name);
        let ours = serde_json::to_value(&request).unwrap();
        assert_eq!(ours["branch"], octez["branch"], "{name}");
        let kinds: Vec<&str> = octez["contents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["kind"].as_str().unwrap())
            .collect();
        assert_eq!(request.operation_kinds(), kinds, "{file} {name}");
        for (i, (o, u)) in octez["contents"]
            .as_array()
            .unwrap()
            .iter()
            .zip(ours["contents"].as_array().unwrap())
            .enumerate()
        {
            for key in MUST_MATCH {
                if let Some(want) = o.get(key).and_then(scalar) {
                    let got = u.get(key).and_then(scalar);
                    if got.as_deref() != Some(want.as_str()) {
                        bad.push(format!("{name}[{i}].{key}: octez {want}, ours {got:?}"));
                    }
                }
            }
            compared += compare(o, u, &format!("{name}[{i}]"), &mut bad);
        }
    }
    assert!(bad.is_empty(), "{file}: {}", bad.join("\n"));
    compared
}

#[test]
fn every_u025_sample_decodes_under_025_as_octez_reads_it() {
    let compared = check_all("U025-operation.unsigned.out", Protocol::U025, u025_json);
    assert!(compared > 300, "only {compared} fields compared");
}

#[test]
fn every_alpha_sample_decodes_under_alpha_as_octez_reads_it() {
    let compared = check_all("Alpha-operation.unsigned.out", Protocol::Alpha, u025_json);
    assert!(compared > 300, "only {compared} fields compared");
}

#[test]
fn every_t024_sample_decodes_under_024_as_octez_reads_it() {
    let compared = check_all("T024-operation.unsigned.out", Protocol::T024, t024_json);
    assert!(compared > 300, "only {compared} fields compared");
}

fn first_content(request: &SigningRequest) -> Value {
    serde_json::to_value(request).unwrap()["contents"][0].clone()
}

#[test]
fn entrapment_evidence_lag_index_is_read_from_025_on_and_only_then() {
    let bytes = sample("U025-operation.unsigned.out", "dal-entrapment-evidence");
    let op = first_content(&SigningRequest::decode(&bytes, Protocol::U025).unwrap());
    assert_eq!(op["slot_index"], 15);
    assert_eq!(op["lag_index"], 0);
    assert_eq!(op["consensus_slot"], 5);
    // The same bytes under 024 read the lag option as the shard index: refused.
    assert!(SigningRequest::decode(&bytes, Protocol::T024).is_err());
    // And the 024 layout (no lag option) is refused under 025.
    let old = sample("T024-operation.unsigned.out", "dal-entrapment-evidence");
    assert!(SigningRequest::decode(&old, Protocol::T024).is_ok());
    assert!(SigningRequest::decode(&old, Protocol::U025).is_err());
    let op = first_content(&SigningRequest::decode(&old, Protocol::T024).unwrap());
    assert!(op.get("lag_index").is_none());
    // The default is 025.
    assert!(SigningRequest::decode(&bytes, Protocol::DEFAULT).is_ok());
}

#[test]
fn aggregate_entrapment_evidence_lag_index_and_committee_dal_content() {
    let bytes = sample(
        "U025-operation.unsigned.out",
        "dal-entrapment-aggregate-evidence",
    );
    let request = SigningRequest::decode(&bytes, Protocol::U025).unwrap();
    let op = first_content(&request);
    let octez = &u025_json("dal-entrapment-aggregate-evidence")["contents"][0];
    assert_eq!(op["lag_index"], octez["lag_index"]);
    assert_eq!(op["lag_index"], 0);
    assert!(SigningRequest::decode(&bytes, Protocol::T024).is_err());
}

/// What the DAL bitsets of Octez's samples attest. Octez's samples keep 024-era values,
/// which the multi-lag layout reads differently (or not at all).
#[test]
fn dal_content_is_read_with_the_protocols_layout() {
    let bytes = sample("U025-operation.unsigned.out", "attestation-with-dal");
    let under_025 = first_content(&SigningRequest::decode(&bytes, Protocol::U025).unwrap());
    assert_eq!(under_025["dal_attestation"], "2048");
    // 2048 = bit 11: no lag bit in the 5-bit prefix, yet data bits: not a 025 bitset.
    assert_eq!(under_025["dal_attested"], "malformed");
    let under_024 = first_content(&SigningRequest::decode(&bytes, Protocol::T024).unwrap());
    assert_eq!(under_024["dal_attested"], serde_json::json!([11]));

    let bytes = sample("U025-operation.unsigned.out", "attestations-aggregate");
    let op = first_content(&SigningRequest::decode(&bytes, Protocol::U025).unwrap());
    let committee = op["committee"].as_array().unwrap();
    let attested: Vec<&Value> = committee.iter().map(|m| &m["dal_attested"]).collect();
    // Slot 0 has no DAL content; "2048" and "1" (lag 0 whose chunk never ends) are
    // malformed; "0" attests nothing at any lag.
    assert_eq!(
        attested,
        [
            &Value::Null,
            &Value::from("malformed"),
            &serde_json::json!([]),
            &Value::from("malformed"),
        ]
    );
}

/// A hand-built 0x13 attestation with DAL content: lag 0 slots 3 and 7, lag 2 slot 1.
#[test]
fn a_multi_lag_attestation_request_shows_lags_and_slots() {
    // Bits: prefix 0, 2; lag 0 chunk 0 at 5 (slot 3 = bit 9), chunk 1 at 13 (last, slot
    // 7 = bit 14); lag 2 chunk at 21 (last, slot 1 = bit 23).
    let value: u128 = [0u32, 2, 9, 13, 14, 21, 23]
        .iter()
        .map(|b| 1u128 << b)
        .sum();
    let mut bytes = vec![0x13, 0x7a, 0x06, 0xa7, 0x70];
    bytes.extend([0x31; 32]);
    bytes.push(23);
    bytes.extend(5u16.to_be_bytes());
    bytes.extend(100i32.to_be_bytes());
    bytes.extend(0i32.to_be_bytes());
    bytes.extend([0x32; 32]);
    bytes.extend(zarith_z(value));
    let SigningRequest::Attestation(op) = SigningRequest::decode(&bytes, Protocol::U025).unwrap()
    else {
        panic!("not an attestation");
    };
    let attested = op.content.dal_attested.clone().unwrap();
    assert_eq!(
        attested,
        DalAttested::Lags(vec![
            LagSlots {
                lag_index: 0,
                slots: vec![3, 7]
            },
            LagSlots {
                lag_index: 2,
                slots: vec![1]
            },
        ])
    );
    assert_eq!(attested.to_string(), "lag 0: slots 3, 7; lag 2: slot 1");
    // Under 024 the same integer is a plain slot set.
    let SigningRequest::Attestation(op) = SigningRequest::decode(&bytes, Protocol::T024).unwrap()
    else {
        panic!("not an attestation");
    };
    assert_eq!(
        op.content.dal_attested,
        Some(DalAttested::Slots(vec![0, 2, 9, 13, 14, 21, 23]))
    );
}

fn zarith_z(v: u128) -> Vec<u8> {
    let mut out = vec![(v & 0x3f) as u8];
    let mut rest = v >> 6;
    while rest != 0 {
        if let Some(last) = out.last_mut() {
            *last |= 0x80;
        }
        out.push((rest & 0x7f) as u8);
        rest >>= 7;
    }
    out
}

/// Octez's transaction-to-implicit sample with its tz1 destination made a tz5 one.
fn transaction_to_tz5() -> Vec<u8> {
    let mut bytes = sample("U025-operation.unsigned.out", "transaction-to-implicit");
    let request = SigningRequest::decode(&bytes, Protocol::U025).unwrap();
    let destination = first_content(&request)["destination"]
        .as_str()
        .unwrap()
        .to_owned();
    let hash: [u8; 20] = destination
        .parse::<tezos_crypto::AccountHash>()
        .unwrap()
        .hash()
        .to_owned();
    // `00 ‖ tag ‖ hash` of the implicit destination, found by its hash.
    let at = bytes
        .windows(20)
        .rposition(|w| w == hash)
        .expect("destination hash in the sample");
    bytes[at - 1] = 4;
    bytes
}

#[test]
fn a_transaction_to_a_tz5_destination_decodes_and_prints_tz5() {
    let bytes = transaction_to_tz5();
    let request = SigningRequest::decode(&bytes, Protocol::U025).unwrap();
    let op = first_content(&request);
    let destination = op["destination"].as_str().unwrap();
    assert!(
        destination.starts_with("tz5") && destination.len() == 36,
        "{destination}"
    );
    let account: tezos_crypto::AccountHash = destination.parse().unwrap();
    assert_eq!(account.scheme(), tezos_crypto::KeyScheme::MlDsa44);
    // tz5 is never a key this signer could sign with.
    assert!(account.signing_key().is_err());
    // 024 has no tag 4.
    let err = SigningRequest::decode(&bytes, Protocol::T024).unwrap_err();
    assert!(err.to_string().contains("public key hash tag 4"), "{err}");
}

#[test]
fn a_tz5_reveal_prints_mdpk() {
    // reveal (107): source tz5, fee, counter, gas, storage, pk tag 4 ‖ 1312 bytes, no proof.
    let mut bytes = vec![0x03];
    bytes.extend([0x11; 32]);
    bytes.push(107);
    bytes.push(4);
    bytes.extend([0x22; 20]);
    bytes.extend([0x0a, 0x01, 0x0a, 0x00]);
    bytes.push(4);
    bytes.extend([0x33; 1312]);
    bytes.push(0);
    let request = SigningRequest::decode(&bytes, Protocol::U025).unwrap();
    let op = first_content(&request);
    let pk = op["public_key"].as_str().unwrap();
    assert!(pk.starts_with("mdpk") && pk.len() == 1802, "{}", &pk[..10]);
    assert!(op["source"].as_str().unwrap().starts_with("tz5"));
    assert!(SigningRequest::decode(&bytes, Protocol::T024).is_err());
}
