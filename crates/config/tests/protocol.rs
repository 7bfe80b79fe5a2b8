//! `tezos_protocol`: which protocol's layouts requests are decoded with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use signatory_config::Config;
use tezos_crypto::{AccountHash, KeyScheme};
use tezos_encoding::Protocol;

fn parse(text: &str) -> Result<Config, signatory_config::ConfigError> {
    Config::parse(text, "test.yaml", &|_| None)
}

#[test]
fn the_protocol_defaults_to_025_and_can_be_named() {
    assert_eq!(parse("tezos: {}\n").unwrap().tezos_protocol, Protocol::U025);
    for (name, protocol) in [
        ("tallinn", Protocol::T024),
        ("'024'", Protocol::T024),
        ("ushuaia", Protocol::U025),
        ("alpha", Protocol::Alpha),
    ] {
        let config = parse(&format!("tezos_protocol: {name}\n")).unwrap();
        assert_eq!(config.tezos_protocol, protocol, "{name}");
    }
}

#[test]
fn an_unknown_protocol_is_refused_with_its_key_path() {
    let err = parse("tezos_protocol: '026'\n").unwrap_err().to_string();
    assert!(err.contains("tezos_protocol"), "{err}");
    assert!(err.contains("ushuaia"), "{err}");
}

#[test]
fn a_tz5_key_cannot_be_configured() {
    let tz5 = AccountHash::new(KeyScheme::MlDsa44, [7; 20]).to_b58check();
    let err = parse(&format!("tezos:\n  {tz5}:\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("never be consensus"), "{err}");
}
